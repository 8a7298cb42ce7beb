/*
 * pop3d.h: the POP3 server (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034
 * SASL PLAIN), a front-end inside the mailbox role.
 *
 * The mailbox role creates one pop3d before yz_service_run (while it may
 * still be root: the TLS key is loaded here), hands it the "pop3" (plain +
 * STLS) and "pop3s" (implicit TLS) listening sockets, and stops it on a
 * graceful stop. Passwords are checked by the directory role over dir_link
 * (DIR_AUTH); the mail store is the account's Maildir INBOX.
 *
 * Guarantees: a dropped connection deletes nothing (DELE takes effect only at
 * QUIT); one session per mailbox at a time (flock on a lock file in the
 * account's Maildir, also across processes); the maildrop is a snapshot taken
 * at login; no per-session large buffers while idle.
 * Never: accepts USER/PASS/AUTH without TLS unless pop3_plaintext_auth = yes;
 * reads a line longer than pop3_command_line_limit; blocks.
 */
#ifndef YZ_POP3D_H
#define YZ_POP3D_H

#include <stddef.h>

struct pop3d;
struct yz_service;
struct yz_link;

/* Create the server in the mailbox role before yz_service_run. dir_link: the
 * role's link to the directory. on_idle(arg) is called whenever the session
 * count drops to 0 (the role then may exit after a stop). */
struct pop3d *pop3d_new(struct yz_service *svc, struct yz_link *dir_link,
			void (*on_idle)(void *arg), void *arg);
/* Serve a listening socket (owned from now on): name "pop3" (plaintext with
 * STLS) or "pop3s" (implicit TLS). */
void pop3d_listen(struct pop3d *p, const char *name, int fd);
/* Graceful stop: close the listeners; sessions go on until QUIT/timeout.
 * Does not call on_idle by itself: check pop3d_sessions() after it. */
void pop3d_stop(struct pop3d *p);
/* Open sessions. */
size_t pop3d_sessions(const struct pop3d *p);
/* Close listeners and every session (without UPDATE), free; *p = NULL. */
void pop3d_free(struct pop3d **p);

#endif

/*
 * pop3d_private.h: the POP3 server's internal state, shared by its files:
 * pop3d.c (listeners, sessions, the I/O driver), pop3d_cmd.c (command table,
 * AUTHORIZATION state, SASL), pop3d_maildrop.c (TRANSACTION and UPDATE
 * states, streaming RETR/TOP/LIST/UIDL), pop3d_dir.c (pop3d_new and password
 * checks through the directory role).
 *
 * Also the seam for unit tests: pop3d_new_with() builds a server on any loop
 * with explicit settings and an authentication backend, so sessions can be
 * driven over socketpairs without a master or a directory.
 */
#ifndef YZ_POP3D_PRIVATE_H
#define YZ_POP3D_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "pop3d/pop3_parse.h"
#include "pop3d/pop3d.h"

struct yz_loop;
struct yz_io;
struct yz_timer;
struct yz_tls_ctx;
struct maildir_msg;

#define POP3D_LISTENERS_MAX 8            /* listening sockets per server */
#define POP3D_ACCEPT_BATCH 64            /* accept(2) calls per readiness event */
#define POP3D_RBUF_SLACK 4096            /* read buffer beyond one line: pipelining */
#define POP3D_OUT_HIGH ((size_t)256 * 1024)  /* stop queueing output above this */
#define POP3D_WBUF_MAX ((size_t)1024 * 1024) /* io write cap: OUT_HIGH + a stuffed chunk + replies */
#define POP3D_READ_CHUNK ((size_t)64 * 1024) /* bytes read from a message file at once */
#define POP3D_PUMP_MAX ((size_t)1024 * 1024) /* bytes queued per callback before yielding */
#define POP3D_AUTH_TIMEOUT_MS 60000      /* the directory delays failures up to ~15 s */
#define POP3D_UIDL_MAX 70                /* RFC 1939: 1-70 characters 0x21-0x7E */
#define POP3D_LOCK_FILE "yizhan-pop3.lock" /* in the account's Maildir */
#define POP3D_SASL_ID_MAX 255            /* RFC 4616 authzid / authcid */
#define POP3D_IP_MAX 64                  /* printable client address */
#define POP3D_PATH_MAX 4096
#define POP3D_SEEN_QUEUE_MAX 8192        /* seen renames waiting for the marker thread */
#define POP3D_SEEN_NICE 10               /* the marker thread's nice value */

/* The result of a password check. */
enum pop3d_auth_result {
	POP3D_AUTH_OK,
	POP3D_AUTH_FAIL,
	POP3D_AUTH_DISABLED,
	POP3D_AUTH_TEMPFAIL,
};

/* Called exactly once per started check, never from inside start(). */
typedef void pop3d_auth_cb(void *ctx, enum pop3d_auth_result res, const char *canonical);

/* Where passwords are checked: the directory role, or a test double. */
struct pop3d_auth_backend {
	/* Start a check: 0 (cb will be called), or -1 (it will not: tempfail). */
	int (*start)(void *backend, const char *user, const char *password, const char *rip,
		     pop3d_auth_cb *cb, void *ctx);
	void *backend;
};

/* Everything the server takes from the configuration. */
struct pop3d_settings {
	size_t line_limit;          /* pop3_command_line_limit, CRLF included */
	uint64_t idle_timeout_ms;   /* pop3_idle_timeout */
	bool plaintext_auth;        /* pop3_plaintext_auth */
	unsigned max_auth_failures; /* pop3_max_auth_failures */
	size_t session_limit;       /* mailbox_session_limit */
	const char *maildir_root;   /* maildir_root (copied) */
	const char *hostname;       /* for the greeting (copied) */
};

enum pop3_state {
	POP3_ST_TLS = 1,    /* implicit TLS handshake before the greeting */
	POP3_ST_AUTH = 2,   /* AUTHORIZATION */
	POP3_ST_TRANS = 4,  /* TRANSACTION */
};

/* What an active multi-line answer is sending. */
enum pop3_stream_kind { POP3_STREAM_MSG, POP3_STREAM_LIST, POP3_STREAM_UIDL };

/* Allocated only while a multi-line answer is being sent. */
struct pop3_stream {
	enum pop3_stream_kind kind;
	size_t next;            /* LIST/UIDL: next message index */
	size_t msg;             /* RETR/TOP: message index */
	int fd;                 /* RETR/TOP: the message file */
	bool top;               /* TOP: stop after top_lines body lines */
	uint32_t top_lines;
	bool in_body;           /* TOP: past the empty line */
	bool line_start;        /* the next byte starts a line */
	bool line_blank;        /* the current line had only a CR so far */
	char last;              /* the last byte sent of the file ('\n' at start) */
	unsigned long long sent; /* file bytes sent */
};

struct pop3_auth_req;
struct yz_workq;

struct pop3_session {
	struct pop3d *d;
	struct pop3_session *prev, *next;
	struct yz_io *io;
	struct yz_timer *resume;      /* continue a stream after yielding */
	enum pop3_state state;
	bool closing;                 /* answer sent; free once flushed */
	bool ended;                   /* connection gone; freed once seen_pending is 0 */
	bool update_wait;             /* QUIT waits for seen_pending to reach 0 */
	bool want_stls;               /* start TLS after the reply is queued */
	bool sasl_wait;               /* "+ " sent: the next line is a SASL response */
	struct pop3_auth_req *auth;   /* a password check in flight */
	const char *close_reason;     /* for the disconnect log line */
	unsigned auth_failures;
	unsigned long progress;       /* bumped by output, seen by the idle timeout */
	unsigned long progress_seen;
	char *user;                   /* USER argument, until PASS */
	char *login;                  /* canonical account after login */
	char rip[POP3D_IP_MAX];
	/* TRANSACTION: the snapshot and its lock. */
	int lock_fd;
	int new_fd, cur_fd;       /* the folder's new/ and cur/, -1 if not open */
	char *folder_dir;
	struct maildir_msg *msgs;
	size_t nmsgs;
	unsigned char *deleted;
	unsigned char *seen_queued;   /* per message: a seen rename was queued */
	size_t seen_pending;          /* seen renames not yet applied (pop3d_seen.c) */
	unsigned long long drop_size; /* all messages of the snapshot */
	struct pop3_stream *stream;
	/* Disconnect log counters. */
	unsigned long top_count, retr_count, del_count;
	unsigned long long top_bytes, retr_bytes;
};

struct pop3d {
	struct yz_loop *loop;
	struct pop3d_settings set;
	char *maildir_root;
	char *hostname;
	struct yz_tls_ctx *tls;       /* NULL: no TLS (no STLS, no pop3s) */
	bool own_tls;                 /* free tls with the server */
	struct pop3d_auth_backend auth;
	void *dir_backend;            /* pop3d_dir.c state (pop3d_new only) */
	void (*dir_backend_free)(void **dir_backend);
	void (*on_idle)(void *arg);
	void *idle_arg;
	struct {
		int fd;
		bool implicit_tls;
	} listeners[POP3D_LISTENERS_MAX];
	size_t nlisteners;
	struct pop3_session *sessions;
	size_t nsessions;
	char *chunk;                  /* POP3D_READ_CHUNK bytes, shared by all sessions */
	struct yz_workq *seen;        /* the marker thread, started at the first RETR */
	bool seen_failed;             /* it could not start: RETR renames in place */
};

/* pop3d.c */
/* A server on loop with explicit settings; tls may be NULL and is not freed. */
struct pop3d *pop3d_new_with(struct yz_loop *loop, const struct pop3d_settings *set,
			     struct yz_tls_ctx *tls, const struct pop3d_auth_backend *auth,
			     void (*on_idle)(void *arg), void *arg);
/* Serve an already connected socket (tests; accept() uses it too). */
void pop3d_session_start(struct pop3d *d, int fd, const char *rip, bool implicit_tls);
/* Queue a reply line ("+OK ..."/"-ERR ..."); CRLF is added. */
void pop3_reply(struct pop3_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Queue raw bytes. */
void pop3_write(struct pop3_session *s, const void *p, size_t n);
/* Is authentication allowed on this connection now? */
bool pop3_auth_allowed(const struct pop3_session *s);
/* After an asynchronous wait: run buffered commands and flush; -1 if the
 * session was freed. */
int pop3_session_resume(struct pop3_session *s);
/* End the session after the queued output (no UPDATE unless done before). */
void pop3_close(struct pop3_session *s, const char *reason);
/* The session's last seen rename was applied: run a waiting UPDATE, or
 * free a session whose connection is gone. */
void pop3_session_settled(struct pop3_session *s);
/* Is folder_dir held by an ended session waiting for its seen marks? */
bool pop3_drop_settling(const struct pop3d *d, const char *folder_dir);

/* pop3d_cmd.c */
/* Run one parsed command line in the session's state. */
void pop3_cmd_run(struct pop3_session *s, const struct pop3_command *cmd);
/* A continuation line after "+ " of AUTH (CRLF stripped). */
void pop3_cmd_sasl_response(struct pop3_session *s, struct yz_slice line);
/* The session goes away: cancel a pending password check. */
void pop3_cmd_session_gone(struct pop3_session *s);
/* An ended session released its maildrop: retry logins waiting for it. */
void pop3_cmd_drop_released(struct pop3d *d);
/* Strict base64 decode (RFC 4648, padding required) into out (outsz
 * bytes): decoded length or -1. Exposed for tests. */
long pop3_base64_decode(const char *in, size_t len, unsigned char *out, size_t outsz);
/* Split a SASL PLAIN message into its parts (RFC 4616): 0 or -1. The
 * slices point into msg. */
int pop3_sasl_plain_split(const unsigned char *msg, size_t len, struct yz_slice *authzid_r,
			  struct yz_slice *authcid_r, struct yz_slice *passwd_r);

/* pop3d_maildrop.c */
/* Lock and snapshot the account's INBOX: 0, or -1 with *error_r ("-ERR ..."
 * text without the -ERR), or -2 when the lock is held by an ended session of
 * this server that is still writing seen marks (retry once it is freed). */
int pop3_maildrop_open(struct pop3_session *s, const char *account, const char **error_r);
/* Release the snapshot and the lock (no UPDATE). */
void pop3_maildrop_close(struct pop3_session *s);
/* TRANSACTION commands. */
void pop3_maildrop_cmd(struct pop3_session *s, const struct pop3_command *cmd);
/* QUIT in TRANSACTION: UPDATE (expunge DELEd messages) and answer. */
void pop3_maildrop_update(struct pop3_session *s);
/* Continue the active stream: queue output until POP3D_OUT_HIGH is
 * pending, POP3D_PUMP_MAX was queued, or the answer is complete (then
 * s->stream is NULL). A failure closes the session. */
void pop3_stream_pump(struct pop3_session *s);
/* Drop an active stream (the session ends). */
void pop3_stream_free(struct pop3_session *s);
/* The UIDL of a message: its Maildir unique part when that is 1-70 bytes of
 * 0x21-0x7E not starting with '~', else "~" + hex SHA-256 of it. out gets
 * at least POP3D_UIDL_MAX + 1 bytes. */
void pop3_uidl(const char *unique, char *out, size_t outsz);

/* pop3d_seen.c */
/* RETR sent message i (index) in full: mark it seen, off the loop when the
 * marker thread runs (s->seen_pending counts it until it is applied). */
void pop3_seen_mark(struct pop3_session *s, size_t i);
/* Run what is queued, stop the thread and apply the results without
 * session callbacks (the server is being freed). */
void pop3_seen_free(struct pop3d *d);
/* Tests: hold the marker thread (queued marks wait), or release it. */
void pop3_seen_hold(struct pop3d *d, bool hold);

#endif

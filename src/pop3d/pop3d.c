/*
 * pop3d.c: the POP3 server's listeners, sessions and I/O driver.
 *
 * Each session is one yz_io on the mailbox role's loop. The driver
 * (sess_run) takes complete lines from the read buffer, parses them with the
 * pure parser and runs them through the command table; replies to pipelined
 * commands are queued and flushed together. It stops taking lines while a
 * password check is in flight, while a multi-line answer is being streamed,
 * or while more than POP3D_OUT_HIGH bytes wait for the client, and resumes
 * on the events that end those waits.
 *
 * Guarantees: a session is freed in one place only (sess_end), never while a
 * function on the stack still uses it, and never while a seen rename of its
 * messages is in flight (then it lingers without io, holding its lock, until
 * the marker thread is done: pop3_session_settled); QUIT's UPDATE waits for
 * the renames of the messages it expunges; a dropped connection or a
 * timeout never runs UPDATE; a line longer than pop3_command_line_limit is
 * answered with -ERR and skipped through its LF.
 * Never: blocks; writes to a socket except through yz_io; keeps a listening
 * socket after pop3d_stop.
 */
#include "pop3d/pop3d_private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/io.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/mem.h"
#include "lib/tls.h"
#include "store/mailbox/maildir.h"

static int sess_run(struct pop3_session *s);
static void sess_end(struct pop3_session *s);

/* Queue a reply line with CRLF. */
void pop3_reply(struct pop3_session *s, const char *fmt, ...)
{
	if (s->io == NULL)
		return;
	va_list ap;
	char line[512];
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof line - 2 ? (size_t)n : sizeof line - 3;
	line[len++] = '\r';
	line[len++] = '\n';
	pop3_write(s, line, len);
}

/* Queue raw bytes; a full write buffer is a broken invariant of the driver
 * (it never queues past POP3D_OUT_HIGH + one chunk), so the session ends. */
void pop3_write(struct pop3_session *s, const void *p, size_t n)
{
	if (s->io == NULL || s->closing)
		return;
	if (yz_io_write(s->io, p, n) < 0) {
		yz_log_warn("pop3: write buffer full or closed: rip=%s", s->rip);
		pop3_close(s, "write failed");
	}
	s->progress++;
}

/* Is USER/PASS/AUTH allowed now (TLS on, or plaintext allowed)? */
bool pop3_auth_allowed(const struct pop3_session *s)
{
	return s->d->set.plaintext_auth || (s->io != NULL && yz_io_is_tls(s->io));
}

/* Mark the session to end once its output is flushed. */
void pop3_close(struct pop3_session *s, const char *reason)
{
	if (s->closing)
		return;
	s->closing = true;
	if (s->close_reason == NULL)
		s->close_reason = reason;
	pop3_stream_free(s);
	if (s->io != NULL)
		yz_io_pause(s->io, true);
}

/* Log the end of a session, Dovecot-shaped. */
static void sess_log_end(struct pop3_session *s)
{
	const char *reason = s->close_reason != NULL ? s->close_reason : "disconnected";
	if (s->login != NULL) {
		bool quit = strcmp(reason, "QUIT") == 0;
		yz_log_info("pop3: disconnect: user=<%s>, top=%lu/%llu, retr=%lu/%llu, del=%lu/%zu, "
			    "size=%llu%s%s",
			    s->login, s->top_count, s->top_bytes, s->retr_count, s->retr_bytes,
			    quit ? s->del_count : 0UL, s->nmsgs, s->drop_size,
			    quit ? "" : ", reason=", quit ? "" : reason);
	} else {
		yz_log_info("pop3: disconnect: rip=%s, auth failures=%u, reason=%s", s->rip,
			    s->auth_failures, reason);
	}
}

/* End the session: log, drop the io; then, once no seen rename is in flight
 * (pop3d_seen.c), release the maildrop and free it. A session waiting for
 * its renames stays on the list (and counted) with no io. */
static void sess_end(struct pop3_session *s)
{
	struct pop3d *d = s->d;
	if (!s->ended) {
		s->ended = true;
		sess_log_end(s);
		pop3_cmd_session_gone(s);
		pop3_stream_free(s);
		yz_timer_del(d->loop, &s->resume);
		yz_io_free(&s->io);
		if (s->user != NULL) {
			yz_wipe(s->user, strlen(s->user));
			free(s->user);
			s->user = NULL;
		}
	}
	if (s->seen_pending > 0)
		return; /* pop3_session_settled() finishes it */
	pop3_maildrop_close(s);
	free(s->login);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		d->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	free(s);
	d->nsessions--;
	if (d->nsessions == 0 && d->on_idle != NULL)
		d->on_idle(d->idle_arg);
}

/* Is folder_dir held by an ended session waiting for its seen marks? */
bool pop3_drop_settling(const struct pop3d *d, const char *folder_dir)
{
	for (const struct pop3_session *s = d->sessions; s != NULL; s = s->next) {
		if (s->ended && s->seen_pending > 0 && s->folder_dir != NULL &&
		    strcmp(s->folder_dir, folder_dir) == 0)
			return true;
	}
	return false;
}

/* The last seen rename of the session was applied. */
void pop3_session_settled(struct pop3_session *s)
{
	if (s->ended) {
		struct pop3d *d = s->d;
		sess_end(s); /* frees it, and releases the maildrop */
		pop3_cmd_drop_released(d);
		return;
	}
	if (s->update_wait && !s->closing) {
		pop3_maildrop_update(s);
		(void)sess_run(s);
	}
}

/* After a command batch: flush, and end a closing session once drained.
 * 0: the session lives on; -1: it was freed. */
static int sess_flush(struct pop3_session *s)
{
	if (yz_io_flush(s->io) < 0) {
		/* The handler would get YZ_IO_ERROR from the loop; end here. */
		if (s->close_reason == NULL)
			s->close_reason = yz_io_error(s->io) != NULL ? yz_io_error(s->io) : "write error";
		sess_end(s);
		return -1;
	}
	if (s->closing && yz_io_wpending(s->io) == 0) {
		sess_end(s);
		return -1;
	}
	return 0;
}

/* Continue a yielded stream from the loop. */
static void sess_resume_cb(struct yz_loop *loop, void *arg)
{
	struct pop3_session *s = arg;
	s->resume = NULL;
	(void)sess_run(s);
}

/* Take lines and run commands until input, output room or state stops us;
 * then flush. 0: the session lives on; -1: it was freed. */
static int sess_run(struct pop3_session *s)
{
	struct pop3d *d = s->d;
	size_t max = d->set.line_limit;
	bool out_full = false;

	while (!s->closing && s->auth == NULL && !s->want_stls && !s->update_wait &&
	       s->state != POP3_ST_TLS) {
		if (s->stream != NULL) {
			pop3_stream_pump(s);
			if (s->stream != NULL)
				break;
			continue;
		}
		if (yz_io_wpending(s->io) >= POP3D_OUT_HIGH) {
			out_full = true; /* YZ_IO_DRAINED brings us back */
			break;
		}
		struct yz_slice line;
		enum yz_line_result lr = yz_io_read_line(s->io, max - 1, &line);
		if (lr == YZ_LINE_AGAIN)
			break;
		if (lr == YZ_LINE_TOOLONG) {
			s->sasl_wait = false;
			pop3_reply(s, "-ERR Line too long");
			yz_io_skip_line(s->io);
			continue;
		}
		if (s->sasl_wait) {
			s->sasl_wait = false;
			pop3_cmd_sasl_response(s, pop3_line_strip(line));
			yz_io_consume(s->io, line.len);
			continue;
		}
		struct pop3_command cmd;
		size_t used;
		const char *error;
		enum pop3_parse_status ps = pop3_command_parse(line.p, line.len, max, &cmd, &used,
							       &error);
		if (ps == POP3_PARSE_OK)
			pop3_cmd_run(s, &cmd);
		else
			pop3_reply(s, "-ERR %s", error != NULL ? error : "Invalid command");
		yz_io_consume(s->io, line.len);
	}
	if (s->want_stls && !s->closing) {
		s->want_stls = false;
		/* The reply is still queued: starttls sends it first, and drops
		 * whatever plaintext the client pipelined after STLS. */
		if (yz_io_starttls(s->io, d->tls, true) < 0) {
			pop3_close(s, "STLS failed");
			sess_end(s);
			return -1;
		}
		return 0;
	}
	if (sess_flush(s) < 0)
		return -1;
	/* All of a stream's chunk (or the output that stopped the commands)
	 * left at once: no DRAINED will come, so continue from the loop
	 * (after other sessions had their turn). */
	if ((s->stream != NULL || out_full) && yz_io_wpending(s->io) == 0 && s->resume == NULL)
		s->resume = yz_timer_add(d->loop, 0, sess_resume_cb, s);
	return 0;
}

/* After an asynchronous wait (password check): run the buffered commands. */
int pop3_session_resume(struct pop3_session *s)
{
	return sess_run(s);
}

/* Send the greeting. */
static void sess_greet(struct pop3_session *s)
{
	pop3_reply(s, "+OK %s POP3 server ready", s->d->hostname);
}

/* Events of a session's io. */
static void sess_io_cb(struct yz_io *io, enum yz_io_event ev, void *arg)
{
	struct pop3_session *s = arg;
	switch (ev) {
	case YZ_IO_READABLE:
	case YZ_IO_DRAINED:
		if (s->closing)
			(void)sess_flush(s);
		else
			(void)sess_run(s);
		return;
	case YZ_IO_TLS_READY:
		if (s->state == POP3_ST_TLS) {
			s->state = POP3_ST_AUTH;
			sess_greet(s);
		}
		(void)sess_run(s);
		return;
	case YZ_IO_EOF:
		/* Run what the client sent before closing its side (e.g. a
		 * pipelined QUIT), then end: nothing more will come. A dropped
		 * connection never reaches UPDATE. */
		if (!s->closing && sess_run(s) < 0)
			return;
		if (s->update_wait)
			return; /* a pipelined QUIT still runs UPDATE, then ends */
		if (s->closing && yz_io_wpending(io) > 0)
			return; /* DRAINED or ERROR ends it */
		if (s->close_reason == NULL)
			s->close_reason = "connection closed";
		sess_end(s);
		return;
	case YZ_IO_ERROR:
		if (s->close_reason == NULL)
			s->close_reason = yz_io_error(io) != NULL ? yz_io_error(io) : "I/O error";
		sess_end(s);
		return;
	case YZ_IO_TIMEOUT:
		if (s->stream != NULL || yz_io_wpending(io) > 0) {
			/* A slow reader of a long answer: idle only if nothing moved. */
			if (s->progress != s->progress_seen) {
				s->progress_seen = s->progress;
				return;
			}
		}
		if (s->auth != NULL || s->update_wait)
			return; /* the directory answers within POP3D_AUTH_TIMEOUT_MS;
				 * the marker thread, sooner */
		if (!s->closing) {
			pop3_stream_free(s);
			pop3_reply(s, "-ERR Disconnected for inactivity");
			pop3_close(s, "idle timeout");
			(void)sess_flush(s);
		} else {
			sess_end(s);
		}
		return;
	}
}

/* Serve a connected socket. */
void pop3d_session_start(struct pop3d *d, int fd, const char *rip, bool implicit_tls)
{
	size_t rmax = d->set.line_limit + POP3D_RBUF_SLACK;
	struct yz_io *io = yz_io_new(d->loop, fd, rmax, POP3D_WBUF_MAX);
	if (io == NULL) {
		yz_log_warn("pop3: cannot serve a connection from %s: %s", rip, strerror(errno));
		close(fd);
		return;
	}
	struct pop3_session *s = yz_calloc(1, sizeof *s);
	s->d = d;
	s->io = io;
	s->lock_fd = -1;
	s->new_fd = s->cur_fd = -1;
	snprintf(s->rip, sizeof s->rip, "%s", rip);
	s->next = d->sessions;
	if (d->sessions != NULL)
		d->sessions->prev = s;
	d->sessions = s;
	d->nsessions++;
	yz_io_set_handler(io, sess_io_cb, s);
	yz_io_set_timeout(io, d->set.idle_timeout_ms);
	if (implicit_tls) {
		s->state = POP3_ST_TLS;
		if (yz_io_starttls(io, d->tls, true) < 0) {
			s->close_reason = "TLS setup failed";
			sess_end(s);
		}
		return;
	}
	s->state = POP3_ST_AUTH;
	sess_greet(s);
	(void)sess_flush(s);
}

/* The printable address of a peer, IPv4-mapped IPv6 shown as IPv4. */
static void peer_name(const struct sockaddr_storage *ss, char *out, size_t outsz)
{
	out[0] = '\0';
	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)outsz);
	} else if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a))
			inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)outsz);
		else
			inet_ntop(AF_INET6, a, out, (socklen_t)outsz);
	} else {
		snprintf(out, outsz, "local");
	}
}

/* A listener is readable: accept a batch of connections. */
static void listener_cb(struct yz_loop *loop, int fd, unsigned events, void *arg)
{
	struct pop3d *d = arg;
	bool implicit_tls = false;
	for (size_t i = 0; i < d->nlisteners; i++)
		if (d->listeners[i].fd == fd)
			implicit_tls = d->listeners[i].implicit_tls;

	for (int n = 0; n < POP3D_ACCEPT_BATCH; n++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int c = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				yz_log_warn("pop3: accept: %s", strerror(errno));
			return;
		}
		char rip[POP3D_IP_MAX];
		peer_name(&ss, rip, sizeof rip);
		if (d->nsessions >= d->set.session_limit) {
			static const char busy[] = "-ERR [SYS/TEMP] Too many sessions, try later\r\n";
			if (!implicit_tls)
				(void)!send(c, busy, sizeof busy - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
			yz_log_warn("pop3: session limit %zu reached: rip=%s", d->set.session_limit,
				    rip);
			close(c);
			continue;
		}
		pop3d_session_start(d, c, rip, implicit_tls);
	}
}

/* A server with explicit settings and backend. */
struct pop3d *pop3d_new_with(struct yz_loop *loop, const struct pop3d_settings *set,
			     struct yz_tls_ctx *tls, const struct pop3d_auth_backend *auth,
			     void (*on_idle)(void *arg), void *arg)
{
	struct pop3d *d = yz_calloc(1, sizeof *d);
	d->loop = loop;
	d->set = *set;
	if (d->set.line_limit < 2)
		d->set.line_limit = 2;
	d->maildir_root = yz_strdup(set->maildir_root != NULL ? set->maildir_root : "");
	d->hostname = yz_strdup(set->hostname != NULL && set->hostname[0] != '\0' ?
					set->hostname : "localhost");
	d->set.maildir_root = d->maildir_root;
	d->set.hostname = d->hostname;
	d->tls = tls;
	d->auth = *auth;
	d->on_idle = on_idle;
	d->idle_arg = arg;
	return d;
}

/* Serve a listening socket. */
void pop3d_listen(struct pop3d *p, const char *name, int fd)
{
	bool implicit_tls = strcmp(name, "pop3s") == 0;
	if (!implicit_tls && strcmp(name, "pop3") != 0) {
		yz_log_warn("pop3: unknown listener %s: closed", name);
		close(fd);
		return;
	}
	if (implicit_tls && p->tls == NULL) {
		yz_log_warn("pop3: no TLS certificate: listener pop3s closed");
		close(fd);
		return;
	}
	if (p->nlisteners == POP3D_LISTENERS_MAX ||
	    yz_loop_add_fd(p->loop, fd, YZ_EV_READ, listener_cb, p) < 0) {
		yz_log_warn("pop3: cannot serve listener %s", name);
		close(fd);
		return;
	}
	p->listeners[p->nlisteners].fd = fd;
	p->listeners[p->nlisteners].implicit_tls = implicit_tls;
	p->nlisteners++;
}

/* Close the listeners; sessions go on. */
void pop3d_stop(struct pop3d *p)
{
	for (size_t i = 0; i < p->nlisteners; i++) {
		yz_loop_del_fd(p->loop, p->listeners[i].fd);
		close(p->listeners[i].fd);
	}
	p->nlisteners = 0;
}

/* Open sessions. */
size_t pop3d_sessions(const struct pop3d *p)
{
	return p->nsessions;
}

/* Close everything and free. */
void pop3d_free(struct pop3d **pp)
{
	struct pop3d *p = *pp;
	if (p == NULL)
		return;
	*pp = NULL;
	pop3d_stop(p);
	p->on_idle = NULL;
	pop3_seen_free(p); /* no session waits for a rename after this */
	while (p->sessions != NULL) {
		p->sessions->close_reason = "server shutdown";
		sess_end(p->sessions);
	}
	if (p->own_tls)
		yz_tls_ctx_free(&p->tls);
	if (p->dir_backend_free != NULL)
		p->dir_backend_free(&p->dir_backend);
	free(p->chunk);
	free(p->maildir_root);
	free(p->hostname);
	free(p);
}

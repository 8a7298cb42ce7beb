/*
 * smtpd_session.c: one SMTP session: the connection's life (banner, greet
 * pause, timeouts, close), reading command lines and dispatching them
 * through the command table, replies with enhanced status codes, error
 * accounting, and the simple commands (HELO, EHLO, RSET, NOOP, QUIT, HELP,
 * VRFY/EXPN, STARTTLS).
 *
 * Guarantees: commands are handled strictly one after another in the order
 * received; while a command waits for another role (directory, mailbox) or
 * for the group commit, no further input is read, so pipelined replies go
 * out in order (RFC 2920) and are flushed together. A command line over
 * smtpd_command_line_limit gets 500 5.5.2 and the session resynchronises at
 * the next LF. Bare LF ends a command line, as in Postfix (the command
 * parser never sees the line end); inside DATA only CRLF.CRLF ends the text.
 * STARTTLS discards every byte the client sent after the command
 * (yz_io_starttls, CVE-2011-0411) and resets the session (RFC 3207 4.2).
 * Never: free a session while a callback may still reach it (holds), write
 * a reply out of order, read without a bound.
 */
#include "smtpd/smtpd_private.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/io.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/mem.h"
#include "lib/pool.h"
#include "lib/service.h"

static const char *const counter_names[SMTPD_C__COUNT] = {
	"helo", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "bdat",
	"rset", "noop", "vrfy", "expn", "help", "quit", "unknown",
};

static void session_io(struct yz_io *io, enum yz_io_event ev, void *arg);
static void session_free(struct smtpd_session *s);

/* The longest line read in command mode: commands and AUTH lines. */
static size_t session_line_max(const struct smtpd_session *s)
{
	size_t max = s->srv->set.command_line_limit;

	return max > SMTPD_AUTH_LINE_MAX ? max : SMTPD_AUTH_LINE_MAX;
}

/* Is the session on TLS (implicit or after STARTTLS)? */
bool smtpd_session_is_tls(const struct smtpd_session *s)
{
	return s->io != NULL && yz_io_is_tls(s->io);
}

/* The protocol name for Received and logs (RFC 3848, RFC 6531). */
const char *smtpd_session_protocol(const struct smtpd_session *s)
{
	static const char *const names[2][2][2][2] = {
		/* [utf8][esmtp][tls][auth] */
		{ { { "SMTP", "SMTPA" }, { "SMTPS", "SMTPSA" } },
		  { { "ESMTP", "ESMTPA" }, { "ESMTPS", "ESMTPSA" } } },
		{ { { "UTF8SMTP", "UTF8SMTPA" }, { "UTF8SMTPS", "UTF8SMTPSA" } },
		  { { "UTF8SMTP", "UTF8SMTPA" }, { "UTF8SMTPS", "UTF8SMTPSA" } } },
	};
	bool utf8 = s->txn.active && s->txn.params.smtputf8;

	return names[utf8][s->esmtp][smtpd_session_is_tls(s)][s->auth_user != NULL];
}

/* Queue a line; a full write buffer means a client that does not read:
 * give up on it. */
static void session_write(struct smtpd_session *s, const char *text, size_t len)
{
	if (s->io == NULL || s->input == SMTPD_IN_CLOSED)
		return;
	if (s->broken)
		return;
	if (yz_io_write(s->io, text, len) < 0 || yz_io_write(s->io, "\r\n", 2) < 0) {
		/* Closing here would free the session under its caller: mark
		 * it, and smtpd_session_process() closes it. */
		yz_log_info("write buffer full, disconnecting [%s]", s->ip);
		s->broken = true;
	}
}

/* Queue one reply "code enh text"; count errors and successes. */
void smtpd_reply(struct smtpd_session *s, int code, const char *enh, const char *fmt, ...)
{
	char text[SMTPD_TXT_MAX];
	char line[SMTPD_TXT_MAX + 32];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (enh != NULL)
		n = snprintf(line, sizeof(line), "%d %s %s", code, enh, text);
	else
		n = snprintf(line, sizeof(line), "%d %s", code, text);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	if (code >= 400 && code != 421)
		s->errors++;
	else if (code < 400 && s->cur_counter >= 0 && !s->cur_counted) {
		s->counts_ok[s->cur_counter]++;
		s->cur_counted = true;
	}
	session_write(s, line, (size_t)n);
}

/* Queue a raw line (EHLO continuation lines, 334 challenges). */
void smtpd_reply_raw(struct smtpd_session *s, const char *fmt, ...)
{
	char line[SMTPD_TXT_MAX + SMTPD_AUTH_LINE_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	session_write(s, line, (size_t)n);
}

/* Log a rejection, Postfix-shaped. */
void smtpd_log_reject(struct smtpd_session *s, const char *stage, int code, const char *enh,
		      const char *text)
{
	yz_log_info("%s: reject: %s from [%s]: %d %s %s; from=<%s> proto=%s helo=<%s>",
		    s->txn.qid[0] != '\0' ? s->txn.qid : "NOQUEUE", stage, s->ip, code,
		    enh != NULL ? enh : "", text,
		    s->txn.active && s->txn.sender != NULL ? s->txn.sender : "",
		    smtpd_session_protocol(s), s->helo);
}

/* Log "disconnect from [ip] ehlo=1 mail=1 ... commands=N". */
static void session_log_disconnect(struct smtpd_session *s)
{
	struct yz_buf b;
	unsigned ok = 0, all = 0;
	size_t i;

	yz_buf_init(&b, 4096);
	for (i = 0; i < SMTPD_C__COUNT; i++) {
		if (s->counts_all[i] == 0)
			continue;
		ok += s->counts_ok[i];
		all += s->counts_all[i];
		if (s->counts_ok[i] == s->counts_all[i])
			(void)yz_buf_printf(&b, " %s=%u", counter_names[i], s->counts_all[i]);
		else
			(void)yz_buf_printf(&b, " %s=%u/%u", counter_names[i], s->counts_ok[i],
					    s->counts_all[i]);
	}
	if (ok == all)
		(void)yz_buf_printf(&b, " commands=%u", all);
	else
		(void)yz_buf_printf(&b, " commands=%u/%u", ok, all);
	yz_log_info("disconnect from [%s]%s", s->ip, yz_buf_cstr(&b));
	yz_buf_free(&b);
}

/* Forget the transaction. */
void smtpd_txn_reset(struct smtpd_session *s)
{
	if (s->txn.writer != NULL)
		queue_writer_abort(&s->txn.writer);
	smtpd_data_clear(&s->txn);
	memset(&s->txn, 0, sizeof(s->txn));
	yz_pool_clear(s->txn_pool);
	if (s->state != SMTPD_S_INIT)
		s->state = SMTPD_S_READY;
}

/* Hold the session while a callback is pending. */
void smtpd_session_hold(struct smtpd_session *s)
{
	s->refs++;
	s->busy = true;
	if (s->io != NULL)
		yz_io_pause(s->io, true);
}

/* Drop a hold; false if the session is gone. */
bool smtpd_session_release(struct smtpd_session *s)
{
	if (s->refs > 0)
		s->refs--;
	if (s->dead) {
		if (s->refs == 0)
			session_free(s);
		return false;
	}
	return true;
}

/* Deferred continuation of input processing. */
static void session_resume_cb(struct yz_loop *loop, void *arg)
{
	struct smtpd_session *s = arg;

	s->defer_scheduled = false;
	if (!smtpd_session_release(s))
		return;
	smtpd_session_process(s);
}

/* Async work finished: continue with buffered input on the next turn. */
void smtpd_session_resume(struct smtpd_session *s)
{
	if (s->dead)
		return;
	s->busy = false;
	if (s->io != NULL)
		yz_io_pause(s->io, false);
	if (s->defer_scheduled)
		return;
	s->defer_scheduled = true;
	s->refs++;
	yz_loop_defer(s->srv->loop, session_resume_cb, s);
}

/* The reply to smtpd_session_ask() (or its failure). */
static void session_ask_reply(struct yz_ipc_conn *c, const struct yz_ipc_hdr *hdr,
			      struct yz_ipc_reader *r, void *arg)
{
	struct smtpd_session *s = arg;

	s->req_active = false;
	if (!smtpd_session_release(s))
		return;
	s->answer_cb(s, hdr, r);
}

/* Send the question now. */
static void session_ask_send(struct smtpd_session *s, struct yz_link *link, struct yz_ipc_msg *m)
{
	uint32_t seq = s->req_seq;

	s->refs++; /* for this frame: a synchronous answer may close */
	if (link == NULL) {
		yz_ipc_msg_free(m);
		session_ask_reply(NULL, NULL, NULL, s);
	} else if (yz_link_request(link, m, SMTPD_IPC_TIMEOUT_MS, session_ask_reply, s) < 0 &&
		   s->req_active && s->req_seq == seq) {
		session_ask_reply(NULL, NULL, NULL, s);
	}
	(void)smtpd_session_release(s);
}

/* Ask another role for the session. */
void smtpd_session_ask(struct smtpd_session *s, struct yz_link *link, struct yz_ipc_msg *m,
		       smtpd_answer_cb *cb)
{
	++s->req_seq;
	s->answer_cb = cb;
	s->req_active = true;
	smtpd_session_hold(s); /* for the request */
	/* A link that is down holds the request until it is up (or fails it
	 * after a few seconds): see yz_link_request. */
	session_ask_send(s, link, m);
}

/* Unlink, account and log; the memory goes when no hold is left. */
static void session_finish(struct smtpd_session *s)
{
	struct smtpd_server *srv = s->srv;

	if (s->dead)
		return;
	s->dead = true;
	s->input = SMTPD_IN_CLOSED;
	/* Holds whose callbacks will now never come: a TLS handshake (the io
	 * is gone) and an error sleep (its timer is deleted). */
	if (s->tls_handshaking) {
		s->tls_handshaking = false;
		if (s->refs > 0)
			s->refs--;
	}
	if (s->sleep_timer != NULL && s->sleep_holds && s->refs > 0)
		s->refs--;
	s->sleep_holds = false;
	yz_timer_del(srv->loop, &s->sleep_timer);
	yz_timer_del(srv->loop, &s->step_timer);
	if (s->in_commit)
		smtpd_queue_forget(srv, s);
	if (s->txn.writer != NULL)
		queue_writer_abort(&s->txn.writer);
	smtpd_auth_clear(s);
	session_log_disconnect(s);
	smtpd_limits_disconnect(srv->limits, s->ip);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	srv->nsessions--;
	if (s->refs == 0)
		session_free(s);
	smtpd_server_session_gone(srv);
}

/* Release the memory of a finished session. */
static void session_free(struct smtpd_session *s)
{
	if (s->io != NULL)
		yz_io_free(&s->io);
	smtpd_data_clear(&s->txn);
	yz_pool_free(&s->txn_pool);
	yz_buf_free(&s->line);
	yz_buf_wipe(&s->auth_user_buf);
	yz_buf_free(&s->auth_user_buf);
	free(s->auth_user);
	free(s);
}

/* Nothing to do once the closing io has flushed. */
static void session_closed_cb(void *arg)
{
	(void)arg;
}

/* Optionally reply, then flush and close the connection. */
void smtpd_session_close(struct smtpd_session *s, int code, const char *enh, const char *text)
{
	struct yz_io *io;

	if (s->dead || s->input == SMTPD_IN_CLOSED)
		return;
	if (code != 0)
		smtpd_reply(s, code, enh, "%s", text);
	s->input = SMTPD_IN_CLOSED;
	io = s->io;
	s->io = NULL;
	if (io != NULL) {
		yz_io_set_handler(io, NULL, NULL);
		yz_io_close_after_flush(io, session_closed_cb, NULL);
	}
	session_finish(s);
}

/* The connection is gone: EOF, error, or a fatal condition. */
static void session_drop(struct smtpd_session *s, const char *why)
{
	if (s->dead)
		return;
	if (!s->quitting)
		yz_log_info("%s after %s from [%s]", why,
			    s->last_cmd != NULL ? s->last_cmd : "CONNECT", s->ip);
	s->input = SMTPD_IN_CLOSED;
	if (s->io != NULL)
		yz_io_free(&s->io);
	session_finish(s);
}

/* Send the 220 banner and start reading commands. */
static void session_greet(struct smtpd_session *s)
{
	s->greeted = true;
	s->input = SMTPD_IN_COMMAND;
	smtpd_reply(s, 220, NULL, "%s", s->srv->set.banner);
	(void)yz_io_flush(s->io);
	smtpd_session_process(s);
}

/* The greet pause is over: greet, unless the client talked first. */
static void session_greet_timer(struct yz_loop *loop, void *arg)
{
	struct smtpd_session *s = arg;

	s->sleep_timer = NULL;
	if (yz_buf_len(yz_io_rbuf(s->io)) > 0) {
		/* An early talker (postscreen's pregreet test): real SMTP
		 * clients wait for the banner (RFC 5321 4.3.1). */
		yz_log_info("reject: early talker from [%s]", s->ip);
		smtpd_session_close(s, 554, "5.5.1", "Error: protocol error: talking before the banner");
		return;
	}
	session_greet(s);
}

/* End of the error sleep: go on with input. */
static void session_sleep_done(struct yz_loop *loop, void *arg)
{
	struct smtpd_session *s = arg;

	s->sleep_timer = NULL;
	s->sleep_holds = false;
	if (!smtpd_session_release(s))
		return;
	smtpd_session_resume(s);
}

/* Apply the error rules after a command. false if the session closed. */
static bool session_check_errors(struct smtpd_session *s, unsigned errors_before)
{
	const struct smtpd_settings *set = &s->srv->set;

	if (s->errors == errors_before || s->dead)
		return !s->dead;
	switch (smtpd_limits_error_action(s->errors, set->soft_error_limit, set->hard_error_limit)) {
	case SMTPD_ERR_DISCONNECT:
		yz_log_info("too many errors after %s from [%s]",
			    s->last_cmd != NULL ? s->last_cmd : "CONNECT", s->ip);
		smtpd_session_close(s, 421, "4.7.0", "Error: too many errors");
		return false;
	case SMTPD_ERR_SLEEP:
		if (set->error_sleep_ms > 0 && s->sleep_timer == NULL) {
			smtpd_session_hold(s);
			s->sleep_holds = true;
			s->sleep_timer = yz_timer_add(s->srv->loop, set->error_sleep_ms,
						      session_sleep_done, s);
		}
		return true;
	case SMTPD_ERR_NONE:
		break;
	}
	return true;
}

/* Handle one complete command line (without its line end). */
static void session_command(struct smtpd_session *s, const char *line, size_t len)
{
	struct smtp_command cmd;
	const struct smtpd_cmd *c;
	const char *enh, *error, *text;
	int code;

	s->cur_counter = -1;
	s->cur_counted = false;
	if (smtp_command_parse(line, len, &cmd, &code, &enh, &error) < 0) {
		s->counts_all[SMTPD_C_UNKNOWN]++;
		s->cur_counter = SMTPD_C_UNKNOWN;
		s->last_cmd = "UNKNOWN";
		smtpd_reply(s, code, enh, "Error: %s", error);
		return;
	}
	c = smtpd_cmd_find(cmd.verb);
	if (c == NULL) {
		s->counts_all[SMTPD_C_UNKNOWN]++;
		s->last_cmd = "UNKNOWN";
		smtpd_reply(s, 502, "5.5.2", "Error: command not recognized");
		return;
	}
	s->cur_counter = (int)c->counter;
	s->counts_all[c->counter]++;
	s->last_cmd = smtp_verb_name(cmd.verb);
	/* The limit counts the CRLF (RFC 5321 4.5.3.1.4); AUTH lines may be
	 * longer (RFC 4954 4) and are bounded by SMTPD_AUTH_LINE_MAX. */
	if (len + 2 > s->srv->set.command_line_limit && cmd.verb != SMTP_AUTH) {
		smtpd_reply(s, 500, "5.5.2", "Error: line too long");
		return;
	}
	if (smtpd_cmd_check(c, s->state, s->auth_user != NULL, &code, &enh, &text) < 0) {
		smtpd_reply(s, code, enh, "%s", text);
		return;
	}
	c->run(s, cmd.arg);
}

/* Read and handle one line; false when no complete line is buffered. */
static bool session_read_line(struct smtpd_session *s)
{
	struct yz_slice line;
	size_t len;
	unsigned errors_before = s->errors;

	switch (yz_io_read_line(s->io, session_line_max(s), &line)) {
	case YZ_LINE_AGAIN:
		return false;
	case YZ_LINE_TOOLONG:
		yz_io_skip_line(s->io);
		s->last_cmd = "UNKNOWN";
		smtpd_reply(s, 500, "5.5.2", "Error: line too long");
		(void)session_check_errors(s, errors_before);
		return true;
	case YZ_LINE_OK:
		break;
	}
	/* Copy the line: a handler may change the read buffer (STARTTLS
	 * empties it). Strip LF, then CR: bare LF is accepted as a line end. */
	len = line.len;
	if (len > 0 && line.p[len - 1] == '\n')
		len--;
	if (len > 0 && line.p[len - 1] == '\r')
		len--;
	yz_buf_reset(&s->line);
	(void)yz_buf_append(&s->line, line.p, len);
	yz_io_consume(s->io, line.len);
	if (s->input == SMTPD_IN_AUTH)
		smtpd_auth_line(s, yz_buf_slice(&s->line));
	else
		session_command(s, yz_buf_data(&s->line), yz_buf_len(&s->line));
	(void)session_check_errors(s, errors_before);
	return true;
}

/* Process buffered input until it runs out or async work starts. */
void smtpd_session_process(struct smtpd_session *s)
{
	if (s->dead)
		return;
	/* A handler may close the session: keep the memory until we are out. */
	s->refs++;
	while (!s->dead && !s->busy && !s->broken && s->io != NULL) {
		enum smtpd_input before = s->input;

		/* Backpressure: a client that pipelines without reading
		 * replies waits until they drained. */
		if (yz_io_wpending(s->io) > SMTPD_WBUF_HIGH)
			break;
		if (s->input == SMTPD_IN_DATA || s->input == SMTPD_IN_CHUNK) {
			smtpd_data_input(s);
			if (!s->dead && !s->busy && s->input == before)
				break; /* needs more bytes */
			continue;
		}
		if (s->input != SMTPD_IN_COMMAND && s->input != SMTPD_IN_AUTH)
			break;
		if (!session_read_line(s))
			break;
	}
	if (!s->dead && s->broken)
		session_drop(s, "write buffer full");
	if (!s->dead && s->io != NULL) {
		if (yz_io_flush(s->io) < 0) {
			session_drop(s, "lost connection");
			(void)smtpd_session_release(s);
			return;
		}
		if (s->tls_pending && yz_io_wpending(s->io) == 0) {
			s->tls_pending = false;
			smtpd_session_hold(s);
			s->tls_handshaking = true;
			if (yz_io_starttls(s->io, s->srv->tls, true) < 0) {
				s->tls_handshaking = false;
				(void)smtpd_session_release(s);
				session_drop(s, "TLS setup failed");
			}
		}
	}
	(void)smtpd_session_release(s);
}

/* The TLS handshake finished: everything starts afresh (RFC 3207 4.2). */
static void session_tls_ready(struct smtpd_session *s)
{
	s->tls_handshaking = false;
	yz_log_info("TLS connection established from [%s]: %s with cipher %s (%d/%d bits)",
		    s->ip, yz_io_tls_version(s->io), yz_io_tls_cipher(s->io),
		    yz_io_tls_bits(s->io), yz_io_tls_bits(s->io));
	smtpd_txn_reset(s);
	s->state = SMTPD_S_INIT;
	s->esmtp = false;
	s->helo[0] = '\0';
	if (!smtpd_session_release(s))
		return;
	s->busy = false;
	yz_io_pause(s->io, false);
	if (!s->greeted) {
		/* Implicit TLS (465): the banner comes after the handshake. */
		session_greet(s);
		return;
	}
	smtpd_session_process(s);
}

/* Events of the client connection. */
static void session_io(struct yz_io *io, enum yz_io_event ev, void *arg)
{
	struct smtpd_session *s = arg;

	if (s->dead)
		return;
	switch (ev) {
	case YZ_IO_READABLE:
		if (s->tls_handshaking || s->input == SMTPD_IN_GREET)
			return;
		smtpd_session_process(s);
		break;
	case YZ_IO_DRAINED:
		smtpd_session_process(s);
		break;
	case YZ_IO_TLS_READY:
		session_tls_ready(s);
		break;
	case YZ_IO_EOF:
		session_drop(s, "lost connection");
		break;
	case YZ_IO_ERROR:
		if (s->tls_handshaking) {
			/* session_finish() drops the handshake's hold. */
			yz_log_info("TLS handshake failed from [%s]: %s", s->ip, yz_io_error(io));
			session_drop(s, "lost connection");
			return;
		}
		session_drop(s, "lost connection");
		break;
	case YZ_IO_TIMEOUT:
		yz_log_info("timeout after %s from [%s]",
			    s->last_cmd != NULL ? s->last_cmd : "CONNECT", s->ip);
		smtpd_session_close(s, 421, "4.4.2", "Error: timeout exceeded");
		break;
	}
}

/* A new client connection: limits, then the banner (or TLS first). */
void smtpd_session_start(struct smtpd_server *srv, int fd, const char *ip, unsigned port,
			 enum smtpd_port_kind kind)
{
	const struct smtpd_settings *set = &srv->set;
	struct smtpd_session *s;
	enum smtpd_limit_verdict v;

	s = yz_calloc(1, sizeof(*s));
	s->srv = srv;
	s->kind = kind;
	s->port = port;
	s->cur_counter = -1;
	snprintf(s->ip, sizeof(s->ip), "%s", ip);
	s->io = yz_io_new(srv->loop, fd, session_line_max(s) + SMTPD_RBUF_SLACK, SMTPD_WBUF_MAX);
	yz_io_set_handler(s->io, session_io, s);
	yz_io_set_timeout(s->io, set->timeout_ms);
	s->txn_pool = yz_pool_new(4096);
	yz_buf_init(&s->line, session_line_max(s));
	yz_buf_init(&s->auth_user_buf, SMTPD_AUTH_LINE_MAX);
	s->in_mynetworks = policy_netlist_match(&srv->mynetworks, s->ip);
	yz_log_info("connect from [%s]", s->ip);

	v = smtpd_limits_connect(srv->limits, s->ip);
	if (v != SMTPD_LIMIT_OK) {
		const char *why = v == SMTPD_LIMIT_TOTAL ? "Error: too many connections"
							 : "Error: too many connections from your address";

		yz_log_warn("%s: %s [%s]", why, v == SMTPD_LIMIT_TOTAL ? "total" : "client", s->ip);
		/* Not counted: write the 421 and go, without session accounting. */
		s->input = SMTPD_IN_CLOSED;
		(void)yz_io_printf(s->io, "421 4.7.0 %s %s\r\n", set->hostname, why);
		yz_io_set_handler(s->io, NULL, NULL);
		yz_io_close_after_flush(s->io, session_closed_cb, NULL);
		s->io = NULL;
		yz_log_info("disconnect from [%s] commands=0", s->ip);
		yz_pool_free(&s->txn_pool);
		yz_buf_free(&s->line);
		yz_buf_free(&s->auth_user_buf);
		free(s);
		return;
	}
	s->next = srv->sessions;
	if (srv->sessions != NULL)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->nsessions++;

	if (kind == SMTPD_PORT_SUBMISSIONS) {
		if (srv->tls == NULL) {
			yz_log_warn("submissions connection from [%s] but TLS is not available: %s",
				    s->ip, srv->tls_error != NULL ? srv->tls_error : "no certificate");
			session_drop(s, "TLS not available");
			return;
		}
		s->input = SMTPD_IN_GREET;
		smtpd_session_hold(s);
		s->tls_handshaking = true;
		if (yz_io_starttls(s->io, srv->tls, true) < 0) {
			s->tls_handshaking = false;
			(void)smtpd_session_release(s);
			session_drop(s, "TLS setup failed");
		}
		return;
	}
	if (set->greet_pause_ms > 0) {
		s->input = SMTPD_IN_GREET;
		s->sleep_timer = yz_timer_add(srv->loop, set->greet_pause_ms, session_greet_timer, s);
		return;
	}
	session_greet(s);
}

/* Shutdown timeout: 421 to every remaining session. */
void smtpd_sessions_shutdown(struct smtpd_server *srv)
{
	while (srv->sessions != NULL)
		smtpd_session_close(srv->sessions, 421, "4.3.2", "Service shutting down, closing transmission channel");
}

/* ---- simple commands ---- */

/* Store the HELO/EHLO argument; false (and a reply) if unusable. */
static bool session_set_helo(struct smtpd_session *s, struct yz_slice arg, const char *verb)
{
	arg = yz_slice_trim(arg);
	if (arg.len == 0) {
		smtpd_reply(s, 501, "5.5.4", "Syntax: %s hostname", verb);
		return false;
	}
	if (arg.len > SMTPD_HOSTNAME_MAX) {
		smtpd_reply(s, 501, "5.5.4", "Error: %s name too long", verb);
		return false;
	}
	smtpd_sanitize(arg.p, arg.len, s->helo, sizeof(s->helo));
	smtpd_txn_reset(s);
	s->state = SMTPD_S_READY;
	return true;
}

/* HELO: plain SMTP greeting. */
void smtpd_cmd_helo(struct smtpd_session *s, struct yz_slice arg)
{
	if (!session_set_helo(s, arg, "HELO"))
		return;
	s->esmtp = false;
	smtpd_reply(s, 250, NULL, "%s", s->srv->set.hostname);
}

/* EHLO: the extension list (RFC 5321 4.1.1.1); resets the transaction. */
void smtpd_cmd_ehlo(struct smtpd_session *s, struct yz_slice arg)
{
	const struct smtpd_settings *set = &s->srv->set;

	if (!session_set_helo(s, arg, "EHLO"))
		return;
	s->esmtp = true;
	smtpd_reply_raw(s, "250-%s", set->hostname);
	smtpd_reply_raw(s, "250-PIPELINING");
	smtpd_reply_raw(s, "250-SIZE %llu", set->message_size_limit);
	if (s->srv->tls != NULL && !smtpd_session_is_tls(s))
		smtpd_reply_raw(s, "250-STARTTLS");
	if (smtpd_auth_offered(s))
		smtpd_reply_raw(s, "250-AUTH PLAIN LOGIN");
	smtpd_reply_raw(s, "250-ENHANCEDSTATUSCODES");
	smtpd_reply_raw(s, "250-8BITMIME");
	smtpd_reply_raw(s, "250-DSN");
	if (set->smtputf8)
		smtpd_reply_raw(s, "250-SMTPUTF8");
	smtpd_reply(s, 250, NULL, "CHUNKING");
}

/* RSET: forget the transaction. */
void smtpd_cmd_rset(struct smtpd_session *s, struct yz_slice arg)
{
	if (yz_slice_trim(arg).len != 0) {
		smtpd_reply(s, 501, "5.5.4", "Syntax: RSET");
		return;
	}
	smtpd_txn_reset(s);
	smtpd_reply(s, 250, "2.0.0", "Ok");
}

/* NOOP: nothing (an argument is allowed, RFC 5321 4.1.1.9). */
void smtpd_cmd_noop(struct smtpd_session *s, struct yz_slice arg)
{
	smtpd_reply(s, 250, "2.0.0", "Ok");
}

/* QUIT: say goodbye and close after the reply is out. */
void smtpd_cmd_quit(struct smtpd_session *s, struct yz_slice arg)
{
	s->quitting = true;
	smtpd_reply(s, 221, "2.0.0", "Bye");
	smtpd_session_close(s, 0, NULL, NULL);
}

/* HELP: the command list. */
void smtpd_cmd_help(struct smtpd_session *s, struct yz_slice arg)
{
	smtpd_reply(s, 214, "2.0.0", "Commands: HELO EHLO STARTTLS AUTH MAIL RCPT DATA BDAT RSET "
		    "NOOP VRFY EXPN HELP QUIT");
}

/* VRFY and EXPN: never reveal accounts (RFC 5321 3.5.3). */
void smtpd_cmd_vrfy(struct smtpd_session *s, struct yz_slice arg)
{
	if (yz_slice_trim(arg).len == 0) {
		smtpd_reply(s, 501, "5.5.4", "Syntax: VRFY/EXPN address");
		return;
	}
	smtpd_reply(s, 252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery");
}

/* STARTTLS: 220, then the handshake once the reply is written. */
void smtpd_cmd_starttls(struct smtpd_session *s, struct yz_slice arg)
{
	if (yz_slice_trim(arg).len != 0) {
		smtpd_reply(s, 501, "5.5.4", "Syntax: STARTTLS");
		return;
	}
	if (smtpd_session_is_tls(s)) {
		smtpd_reply(s, 554, "5.5.1", "Error: TLS already active");
		return;
	}
	if (s->srv->tls == NULL) {
		smtpd_reply(s, 454, "4.7.0", "TLS not available due to local problem");
		return;
	}
	smtpd_reply(s, 220, "2.0.0", "Ready to start TLS");
	/* Stop reading commands now: whatever the client pipelined after
	 * STARTTLS is plaintext injection and yz_io_starttls drops it. */
	s->tls_pending = true;
	s->busy = true;
	yz_io_pause(s->io, true);
}

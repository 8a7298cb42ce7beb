/*
 * pop3d_cmd.c: the POP3 command table and the AUTHORIZATION state: USER,
 * PASS, AUTH PLAIN (RFC 5034, with initial response or a "+ " continuation,
 * "*" cancels), STLS (RFC 2595), CAPA (RFC 2449), QUIT; the password check
 * through the authentication backend, and the switch to TRANSACTION.
 *
 * Guarantees: USER/PASS/AUTH are refused without TLS unless plaintext auth
 * is allowed, and CAPA advertises exactly what is accepted; a failed login
 * answers "-ERR [AUTH]" and the session ends after max_auth_failures; a
 * directory that cannot answer gives "-ERR [SYS/TEMP]" and does not count as
 * a failure; passwords are wiped from our memory after use.
 * Never: logs a password; runs a command outside the states the table lists.
 */
#include "pop3d/pop3d_private.h"

#include <stdlib.h>
#include <string.h>

#include "lib/io.h"
#include "lib/log.h"
#include "libmail/base64.h"
#include "lib/mem.h"

/* A password check in flight; outlives its session if need be. After a
 * successful check it may wait, as s->auth, for the mailbox's lock held by
 * an ended session of this process whose seen marks are still being
 * written (canonical set; no backend call pending then). */
struct pop3_auth_req {
	struct pop3_session *s; /* NULL once the session is gone */
	char *user;
	char *canonical;        /* waiting for the maildrop: the account */
	const char *method;
};

static void auth_req_free(struct pop3_auth_req *req)
{
	free(req->user);
	free(req->canonical);
	free(req);
}

/* Longest decoded SASL PLAIN message: authzid NUL authcid NUL passwd. */
#define POP3D_SASL_PLAIN_MAX (2 * POP3D_SASL_ID_MAX + 2 + POP3_SECRET_MAX)

static const char msg_plaintext[] =
	"-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections";

/* Strict base64 decode into a fixed buffer, through libmail's decoder:
 * the byte count, or -1 (bad base64, or more than outsz bytes). */
long pop3_base64_decode(const char *in, size_t len, unsigned char *out, size_t outsz)
{
	struct yz_buf b;
	const char *err;
	yz_buf_init(&b, outsz ? outsz : 1);
	long n = -1;
	if (base64_decode(in, len, &b, &err) == 0 && yz_buf_len(&b) <= outsz) {
		n = (long)yz_buf_len(&b);
		if (n > 0)
			memcpy(out, yz_buf_data(&b), (size_t)n);
	}
	yz_buf_wipe(&b); /* it held a password */
	yz_buf_free(&b);
	return n;
}

/* Split "authzid NUL authcid NUL passwd" (RFC 4616). */
int pop3_sasl_plain_split(const unsigned char *msg, size_t len, struct yz_slice *authzid_r,
			  struct yz_slice *authcid_r, struct yz_slice *passwd_r)
{
	const unsigned char *nul1 = memchr(msg, '\0', len);
	if (nul1 == NULL)
		return -1;
	size_t rest = len - (size_t)(nul1 + 1 - msg);
	const unsigned char *nul2 = memchr(nul1 + 1, '\0', rest);
	if (nul2 == NULL)
		return -1;
	*authzid_r = (struct yz_slice){ (const char *)msg, (size_t)(nul1 - msg) };
	*authcid_r = (struct yz_slice){ (const char *)nul1 + 1, (size_t)(nul2 - nul1 - 1) };
	*passwd_r = (struct yz_slice){ (const char *)nul2 + 1, len - (size_t)(nul2 + 1 - msg) };
	if (memchr(passwd_r->p, '\0', passwd_r->len) != NULL)
		return -1;
	if (authzid_r->len > POP3D_SASL_ID_MAX || authcid_r->len == 0 ||
	    authcid_r->len > POP3D_SASL_ID_MAX || passwd_r->len == 0 ||
	    passwd_r->len > POP3_SECRET_MAX)
		return -1;
	return 0;
}

/* Count a failed login; end the session at the limit. */
static void auth_failed(struct pop3_session *s, const char *user, const char *why)
{
	s->auth_failures++;
	yz_log_info("pop3: auth failed: user=<%s>, rip=%s, reason=%s, failures=%u", user, s->rip,
		    why, s->auth_failures);
	pop3_reply(s, "-ERR [AUTH] Authentication failed");
	if (s->auth_failures >= s->d->set.max_auth_failures)
		pop3_close(s, "too many authentication failures");
}

/* Open the maildrop after a successful check and answer. true: the lock
 * is held by an ended session still writing seen marks, so req stays the
 * session's pending request until pop3_cmd_drop_released(). */
static bool login_open(struct pop3_session *s, struct pop3_auth_req *req, const char *canonical)
{
	const char *error = NULL;
	if (canonical == NULL || canonical[0] == '\0') {
		pop3_reply(s, "-ERR [SYS/TEMP] Temporary authentication failure");
		return false;
	}
	int r = pop3_maildrop_open(s, canonical, &error);
	if (r == -2) {
		if (req->canonical == NULL)
			req->canonical = yz_strdup(canonical);
		s->auth = req;
		yz_io_pause(s->io, true);
		return true;
	}
	if (r < 0) {
		yz_log_info("pop3: login refused: user=<%s>, rip=%s, reason=%s", canonical, s->rip,
			    error);
		pop3_reply(s, "-ERR %s", error);
		return false;
	}
	s->login = yz_strdup(canonical);
	s->state = POP3_ST_TRANS;
	yz_log_info("pop3: login: user=<%s>, method=%s, rip=%s%s", canonical, req->method, s->rip,
		    yz_io_is_tls(s->io) ? ", tls" : "");
	pop3_reply(s, "+OK Logged in, %zu messages", s->nmsgs);
	return false;
}

/* The directory answered (or could not). */
static void auth_done(void *ctx, enum pop3d_auth_result res, const char *canonical)
{
	struct pop3_auth_req *req = ctx;
	struct pop3_session *s = req->s;
	if (s == NULL) {
		auth_req_free(req);
		return;
	}
	s->auth = NULL;
	if (s->io != NULL)
		yz_io_pause(s->io, false);

	switch (res) {
	case POP3D_AUTH_OK:
		if (login_open(s, req, canonical))
			return;
		break;
	case POP3D_AUTH_FAIL:
		auth_failed(s, req->user, "invalid credentials");
		break;
	case POP3D_AUTH_DISABLED:
		auth_failed(s, req->user, "account disabled");
		break;
	case POP3D_AUTH_TEMPFAIL:
		yz_log_warn("pop3: auth tempfail: user=<%s>, rip=%s", req->user, s->rip);
		pop3_reply(s, "-ERR [SYS/TEMP] Temporary authentication failure, try again later");
		break;
	}
	auth_req_free(req);
	(void)pop3_session_resume(s);
}

/* A session of this process released its maildrop: logins waiting for one
 * try again (each once; one may find it held again, then it waits on). */
void pop3_cmd_drop_released(struct pop3d *d)
{
	size_t n = 0;
	for (struct pop3_session *s = d->sessions; s != NULL; s = s->next)
		n += !s->ended && s->auth != NULL && s->auth->canonical != NULL;
	if (n == 0)
		return;
	/* Answering one session may free it, never another one. */
	struct pop3_session **waiting = yz_calloc(n, sizeof *waiting);
	size_t k = 0;
	for (struct pop3_session *s = d->sessions; s != NULL && k < n; s = s->next) {
		if (!s->ended && s->auth != NULL && s->auth->canonical != NULL)
			waiting[k++] = s;
	}
	for (size_t i = 0; i < k; i++) {
		struct pop3_session *s = waiting[i];
		struct pop3_auth_req *req = s->auth;
		char *canonical = req->canonical;
		req->canonical = NULL;
		s->auth = NULL;
		yz_io_pause(s->io, false);
		bool again = login_open(s, req, canonical);
		free(canonical);
		if (!again) {
			auth_req_free(req);
			(void)pop3_session_resume(s);
		}
	}
	free(waiting);
}

/* Ask the backend about user/password; input waits meanwhile. */
static void auth_start(struct pop3_session *s, const char *user, const char *password,
		       const char *method)
{
	struct pop3_auth_req *req = yz_calloc(1, sizeof *req);
	req->s = s;
	req->user = yz_strdup(user);
	req->method = method;
	s->auth = req;
	yz_io_pause(s->io, true);
	struct pop3d *d = s->d;
	if (d->auth.start(d->auth.backend, user, password, s->rip, auth_done, req) < 0) {
		s->auth = NULL;
		auth_req_free(req);
		yz_io_pause(s->io, false);
		yz_log_warn("pop3: directory unreachable: user=<%s>, rip=%s", user, s->rip);
		pop3_reply(s, "-ERR [SYS/TEMP] Temporary authentication failure, try again later");
	}
}

/* The session goes away: its pending check must not find it. */
void pop3_cmd_session_gone(struct pop3_session *s)
{
	if (s->auth != NULL) {
		if (s->auth->canonical != NULL)
			auth_req_free(s->auth); /* waiting for a maildrop: no call pending */
		else
			s->auth->s = NULL;  /* auth_done frees it */
		s->auth = NULL;
	}
}

/* USER name */
static void cmd_user(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (!pop3_auth_allowed(s)) {
		pop3_reply(s, "%s", msg_plaintext);
		return;
	}
	free(s->user);
	s->user = yz_slice_strdup(cmd->arg);
	pop3_reply(s, "+OK");
}

/* PASS password */
static void cmd_pass(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (!pop3_auth_allowed(s)) {
		pop3_reply(s, "%s", msg_plaintext);
		return;
	}
	if (s->user == NULL) {
		pop3_reply(s, "-ERR No user name given");
		return;
	}
	char password[POP3_SECRET_MAX + 1];
	memcpy(password, cmd->arg.p, cmd->arg.len); /* the parser bounds it */
	password[cmd->arg.len] = '\0';
	char *user = s->user;
	s->user = NULL; /* RFC 1939: a failed PASS needs a new USER */
	auth_start(s, user, password, "USER");
	yz_wipe(password, sizeof password);
	free(user);
}

/* Decode a SASL PLAIN response and check it. */
static void sasl_plain(struct pop3_session *s, struct yz_slice b64)
{
	unsigned char msg[POP3D_SASL_PLAIN_MAX];
	long n = -1;
	if (b64.len == 1 && b64.p[0] == '=')
		n = 0; /* an empty initial response */
	else if (b64.len <= (sizeof msg + 2) / 3 * 4)
		n = pop3_base64_decode(b64.p, b64.len, msg, sizeof msg);
	if (n < 0) {
		pop3_reply(s, "-ERR Invalid base64 data");
		return;
	}
	struct yz_slice authzid, authcid, passwd;
	if (pop3_sasl_plain_split(msg, (size_t)n, &authzid, &authcid, &passwd) < 0) {
		yz_wipe(msg, sizeof msg);
		auth_failed(s, "", "malformed SASL PLAIN message");
		return;
	}
	char user[POP3D_SASL_ID_MAX + 1], password[POP3_SECRET_MAX + 1];
	memcpy(user, authcid.p, authcid.len);
	user[authcid.len] = '\0';
	memcpy(password, passwd.p, passwd.len);
	password[passwd.len] = '\0';
	bool proxy = authzid.len > 0 && !yz_slice_eq(authzid, authcid);
	yz_wipe(msg, sizeof msg);
	if (proxy || memchr(user, '\0', authcid.len) != NULL)
		auth_failed(s, user, "authorization identity not permitted");
	else
		auth_start(s, user, password, "PLAIN");
	yz_wipe(password, sizeof password);
}

/* AUTH [mechanism [initial-response]] */
static void cmd_auth(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (cmd->arg.len == 0) {
		/* The RFC 1734 listing that some clients probe with. */
		pop3_reply(s, "+OK Mechanisms follow");
		if (pop3_auth_allowed(s))
			pop3_reply(s, "PLAIN");
		pop3_reply(s, ".");
		return;
	}
	if (!yz_slice_casecmp_str(cmd->arg, "PLAIN")) {
		pop3_reply(s, "-ERR Unsupported authentication mechanism");
		return;
	}
	if (!pop3_auth_allowed(s)) {
		pop3_reply(s, "%s", msg_plaintext);
		return;
	}
	free(s->user);
	s->user = NULL;
	if (cmd->arg2.len > 0) {
		sasl_plain(s, cmd->arg2);
		return;
	}
	pop3_write(s, "+ \r\n", 4);
	s->sasl_wait = true;
}

/* The line after "+ ". */
void pop3_cmd_sasl_response(struct pop3_session *s, struct yz_slice line)
{
	if (line.len == 1 && line.p[0] == '*') {
		pop3_reply(s, "-ERR Authentication cancelled");
		return;
	}
	sasl_plain(s, line);
}

/* STLS (RFC 2595) */
static void cmd_stls(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (s->d->tls == NULL) {
		pop3_reply(s, "-ERR TLS is not available");
		return;
	}
	if (yz_io_is_tls(s->io)) {
		pop3_reply(s, "-ERR TLS is already active");
		return;
	}
	free(s->user);
	s->user = NULL;
	pop3_reply(s, "+OK Begin TLS negotiation");
	s->want_stls = true;
}

/* CAPA (RFC 2449): what this session accepts now, truthfully. */
static void cmd_capa(struct pop3_session *s, const struct pop3_command *cmd)
{
	bool auth_state = s->state == POP3_ST_AUTH;
	pop3_reply(s, "+OK Capability list follows");
	pop3_reply(s, "TOP");
	pop3_reply(s, "UIDL");
	pop3_reply(s, "RESP-CODES");
	pop3_reply(s, "AUTH-RESP-CODE");
	pop3_reply(s, "PIPELINING");
	if (auth_state && pop3_auth_allowed(s)) {
		pop3_reply(s, "USER");
		pop3_reply(s, "SASL PLAIN");
	}
	if (auth_state && s->d->tls != NULL && !yz_io_is_tls(s->io))
		pop3_reply(s, "STLS");
	pop3_reply(s, "IMPLEMENTATION yizhan");
	pop3_reply(s, ".");
}

/* QUIT: AUTHORIZATION just ends; TRANSACTION enters UPDATE. */
static void cmd_quit(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (s->state == POP3_ST_TRANS) {
		pop3_maildrop_update(s);
		return;
	}
	pop3_reply(s, "+OK Logging out");
	pop3_close(s, "QUIT");
}

/* The TRANSACTION commands live in pop3d_maildrop.c. */
static void cmd_trans(struct pop3_session *s, const struct pop3_command *cmd)
{
	pop3_maildrop_cmd(s, cmd);
}

static const struct {
	unsigned states;
	void (*run)(struct pop3_session *s, const struct pop3_command *cmd);
} commands[POP3_VERB__COUNT] = {
	[POP3_USER] = { POP3_ST_AUTH, cmd_user },
	[POP3_PASS] = { POP3_ST_AUTH, cmd_pass },
	[POP3_AUTH] = { POP3_ST_AUTH, cmd_auth },
	[POP3_STLS] = { POP3_ST_AUTH, cmd_stls },
	[POP3_CAPA] = { POP3_ST_AUTH | POP3_ST_TRANS, cmd_capa },
	[POP3_QUIT] = { POP3_ST_AUTH | POP3_ST_TRANS, cmd_quit },
	[POP3_STAT] = { POP3_ST_TRANS, cmd_trans },
	[POP3_LIST] = { POP3_ST_TRANS, cmd_trans },
	[POP3_RETR] = { POP3_ST_TRANS, cmd_trans },
	[POP3_DELE] = { POP3_ST_TRANS, cmd_trans },
	[POP3_NOOP] = { POP3_ST_TRANS, cmd_trans },
	[POP3_RSET] = { POP3_ST_TRANS, cmd_trans },
	[POP3_TOP] = { POP3_ST_TRANS, cmd_trans },
	[POP3_UIDL] = { POP3_ST_TRANS, cmd_trans },
};

/* Run one parsed command in the session's state. */
void pop3_cmd_run(struct pop3_session *s, const struct pop3_command *cmd)
{
	if ((unsigned)cmd->verb >= POP3_VERB__COUNT || commands[cmd->verb].run == NULL) {
		pop3_reply(s, "-ERR Unknown command");
		return;
	}
	if ((commands[cmd->verb].states & s->state) == 0) {
		pop3_reply(s, s->state == POP3_ST_AUTH ? "-ERR Not logged in" :
							  "-ERR Already logged in");
		return;
	}
	commands[cmd->verb].run(s, cmd);
}

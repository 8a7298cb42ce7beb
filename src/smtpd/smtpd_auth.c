/*
 * smtpd_auth.c: SMTP AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN
 * mechanisms; the password check is the directory role's (DIR_AUTH), which
 * also delays answers after failures.
 *
 * AUTH is offered and accepted only over TLS unless
 * smtpd_auth_over_plaintext = yes (otherwise 538 5.7.11), only after EHLO,
 * not inside a transaction and not twice (503 5.5.1). Replies: 235 2.7.0
 * success; 535 5.7.8 bad credentials; 454 4.7.0 directory unreachable;
 * 501 5.7.0 client cancelled ("*"); 501 5.5.2 undecodable response;
 * 504 5.5.4 unknown mechanism; after smtpd_max_auth_failures failures,
 * 421 4.7.0 and the connection closes.
 * Guarantees: passwords live only in stack buffers and the IPC frame, and
 * the buffers are wiped as soon as the request is built.
 * Never: log a password, tell which of user or password was wrong.
 */
#include "smtpd/smtpd_private.h"

#include <stdlib.h>
#include <string.h>

#include "lib/ipc.h"
#include "lib/ipc_msg.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/service.h"
#include "libmail/sasl.h"

enum { AUTH_MECH_NONE, AUTH_MECH_PLAIN, AUTH_MECH_LOGIN };

/* Is AUTH offered in this session now? */
bool smtpd_auth_offered(const struct smtpd_session *s)
{
	if (s->srv->dir_link == NULL)
		return false;
	return smtpd_session_is_tls(s) || s->srv->set.auth_over_plaintext;
}

/* Drop the AUTH exchange state (wipes secrets). */
void smtpd_auth_clear(struct smtpd_session *s)
{
	s->auth_mech = AUTH_MECH_NONE;
	s->auth_step = 0;
	yz_buf_wipe(&s->auth_user_buf);
	if (s->input == SMTPD_IN_AUTH)
		s->input = SMTPD_IN_COMMAND;
}

/* The mechanism's name for logs. */
static const char *auth_mech_name(int mech)
{
	return mech == AUTH_MECH_PLAIN ? "PLAIN" : mech == AUTH_MECH_LOGIN ? "LOGIN" : "none";
}

/* The directory's verdict. */
static void auth_answer(struct smtpd_session *s, const struct yz_ipc_hdr *hdr,
			struct yz_ipc_reader *r)
{
	uint32_t result = YZ_WIRE_AUTH_TEMPFAIL;
	char *canonical = NULL;
	const char *mech = auth_mech_name(s->auth_mech);

	if (hdr != NULL && hdr->type == YZ_MSG_DIR_AUTH_REPLY) {
		(void)yz_ipc_get_u32(r, &result);
		(void)yz_ipc_get_str_dup(r, YZ_IPC_ADDR_MAX, NULL, &canonical);
		if (yz_ipc_end(r) < 0)
			result = YZ_WIRE_AUTH_TEMPFAIL;
	}
	switch (result) {
	case YZ_WIRE_AUTH_OK:
		if (canonical == NULL || canonical[0] == '\0') {
			free(canonical);
			canonical = yz_memdup(yz_buf_data(&s->auth_user_buf),
					      yz_buf_len(&s->auth_user_buf) + 1);
			canonical[yz_buf_len(&s->auth_user_buf)] = '\0';
		}
		free(s->auth_user);
		s->auth_user = canonical;
		canonical = NULL;
		yz_log_info("[%s]: sasl_method=%s, sasl_username=%s", s->ip, mech, s->auth_user);
		smtpd_reply(s, 235, "2.7.0", "Authentication successful");
		break;
	case YZ_WIRE_AUTH_FAIL:
	case YZ_WIRE_AUTH_DISABLED:
		s->auth_failures++;
		yz_log_warn("[%s]: SASL %s authentication failed", s->ip, mech);
		smtpd_reply(s, 535, "5.7.8", "Error: authentication failed");
		if (s->srv->set.max_auth_failures != 0 &&
		    s->auth_failures >= s->srv->set.max_auth_failures) {
			free(canonical);
			smtpd_auth_clear(s);
			smtpd_session_close(s, 421, "4.7.0", "Error: too many authentication failures");
			return;
		}
		break;
	default:
		yz_log_warn("[%s]: SASL %s authentication: directory %s", s->ip, mech,
			    hdr == NULL ? "not reachable" : "temporary failure");
		smtpd_reply(s, 454, "4.7.0", "Temporary authentication failure");
		break;
	}
	free(canonical);
	smtpd_auth_clear(s);
	smtpd_session_resume(s);
}

/* Ask the directory to check user and password. */
static void auth_check(struct smtpd_session *s, const char *user, const char *password)
{
	struct yz_ipc_msg m;

	/* Keep the user name for the answer (a LOGIN exchange has it already). */
	if (s->auth_mech == AUTH_MECH_PLAIN) {
		yz_buf_wipe(&s->auth_user_buf);
		(void)yz_buf_append_str(&s->auth_user_buf, user);
	}
	s->input = SMTPD_IN_COMMAND;
	yz_ipc_msg_init(&m, YZ_MSG_DIR_AUTH, 0);
	(void)yz_ipc_put_str(&m, user);
	(void)yz_ipc_put_str(&m, password);
	(void)yz_ipc_put_str(&m, s->ip);
	(void)yz_ipc_put_str(&m, s->kind == SMTPD_PORT_SMTP ? "smtp" : "submission");
	smtpd_session_ask(s, s->srv->dir_link, &m, auth_answer);
}

/* A PLAIN response (base64 of authzid NUL authcid NUL passwd). */
static void auth_plain(struct smtpd_session *s, struct yz_slice b64)
{
	struct sasl_plain p;
	const char *error;

	if (sasl_plain_decode_b64(b64.p, b64.len, &p, &error) < 0) {
		smtpd_auth_clear(s);
		smtpd_reply(s, 501, "5.5.2", "Error: cannot decode response: %s", error);
		return;
	}
	if (p.authzid[0] != '\0' && strcmp(p.authzid, p.authcid) != 0) {
		/* Acting for another user is not something we grant. */
		sasl_plain_wipe(&p);
		smtpd_auth_clear(s);
		s->auth_failures++;
		smtpd_reply(s, 535, "5.7.8", "Error: authentication failed");
		return;
	}
	auth_check(s, p.authcid, p.passwd);
	sasl_plain_wipe(&p);
}

/* A LOGIN response: the user name, then the password. */
static void auth_login(struct smtpd_session *s, struct yz_slice b64)
{
	char field[SASL_FIELD_MAX + 1];
	const char *error;

	if (sasl_login_decode(b64.p, b64.len, field, &error) < 0) {
		yz_wipe(field, sizeof(field));
		smtpd_auth_clear(s);
		smtpd_reply(s, 501, "5.5.2", "Error: cannot decode response: %s", error);
		return;
	}
	if (s->auth_step == 0) {
		yz_buf_wipe(&s->auth_user_buf);
		(void)yz_buf_append_str(&s->auth_user_buf, field);
		yz_wipe(field, sizeof(field));
		s->auth_step = 1;
		s->input = SMTPD_IN_AUTH;
		smtpd_reply_raw(s, "334 %s", SASL_LOGIN_PASSWORD_CHALLENGE);
		return;
	}
	auth_check(s, yz_buf_cstr(&s->auth_user_buf), field);
	yz_wipe(field, sizeof(field));
}

/* An AUTH continuation line arrived (without CRLF). */
void smtpd_auth_line(struct smtpd_session *s, struct yz_slice line)
{
	s->input = SMTPD_IN_COMMAND;
	if (line.len == 1 && line.p[0] == '*') {
		smtpd_auth_clear(s);
		smtpd_reply(s, 501, "5.7.0", "Authentication aborted");
		return;
	}
	if (s->auth_mech == AUTH_MECH_PLAIN)
		auth_plain(s, line);
	else if (s->auth_mech == AUTH_MECH_LOGIN)
		auth_login(s, line);
	else
		smtpd_reply(s, 503, "5.5.1", "Error: no authentication in progress");
}

/* AUTH mechanism [initial-response] */
void smtpd_cmd_auth(struct smtpd_session *s, struct yz_slice arg)
{
	struct yz_slice mech, initial;
	const char *error;

	if (!s->esmtp) {
		smtpd_reply(s, 503, "5.5.1", "Error: send EHLO first");
		return;
	}
	if (s->srv->dir_link == NULL) {
		smtpd_reply(s, 503, "5.5.1", "Error: authentication not enabled");
		return;
	}
	if (!smtpd_auth_offered(s)) {
		smtpd_reply(s, 538, "5.7.11", "Encryption required for requested authentication mechanism");
		return;
	}
	if (smtp_parse_auth(arg, &mech, &initial, &error) < 0) {
		smtpd_reply(s, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]: %s", error);
		return;
	}
	s->auth_step = 0;
	if (yz_slice_casecmp_str(mech, "PLAIN")) {
		s->auth_mech = AUTH_MECH_PLAIN;
		if (initial.len > 0) {
			auth_plain(s, initial);
			return;
		}
		s->input = SMTPD_IN_AUTH;
		smtpd_reply_raw(s, "334 ");
		return;
	}
	if (yz_slice_casecmp_str(mech, "LOGIN")) {
		s->auth_mech = AUTH_MECH_LOGIN;
		if (initial.len > 0) {
			auth_login(s, initial);
			return;
		}
		s->input = SMTPD_IN_AUTH;
		smtpd_reply_raw(s, "334 %s", SASL_LOGIN_USERNAME_CHALLENGE);
		return;
	}
	smtpd_reply(s, 504, "5.5.4", "Error: unsupported authentication mechanism");
}

/*
 * smtpd_rcpt.c: MAIL and RCPT: the envelope, checked as it arrives.
 *
 * MAIL: submission ports require AUTH first (530 5.7.0); SIZE above
 * message_size_limit is refused at once (552 5.3.4); too little free space
 * in the queue (queue_minfree_multiple x message_size_limit) gives
 * 452 4.3.1; an authenticated client may only use a sender it owns
 * (DIR_SENDER_OWNED, unless smtpd_sender_login_match = no): 553 5.7.1.
 * RCPT: the relay rule of src/policy (relay-sneaking forms 550 5.7.1,
 * remote domains for trusted clients only, else 554 5.7.1 "Relay access
 * denied"), then the directory (DIR_RESOLVE): unknown user 550 5.1.1,
 * disabled 550 5.2.1, alias loop 550 5.4.6, expansion too large 550 5.5.3,
 * lookup trouble 451 4.3.0; when the recipient is one local mailbox with a
 * quota, the mailbox role is asked (MBOX_QUOTA): over quota 452 4.2.2, or
 * 552 5.2.2 with smtpd_over_quota_permanent. More than
 * smtpd_recipient_limit recipients: 452 4.5.3.
 *
 * Guarantees: a recipient is added to the transaction only after every
 * check passed; every IPC answer is decoded completely (yz_ipc_end) and a
 * malformed one is a temporary failure, never an acceptance.
 * Never: accept a remote recipient from an untrusted client; reveal more
 * than "unknown" about an account.
 */
#include "smtpd/smtpd_private.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/ipc.h"
#include "lib/ipc_msg.h"
#include "lib/log.h"
#include "lib/pool.h"
#include "lib/service.h"
#include "policy/policy_relay.h"

static void rcpt_reject(struct smtpd_session *s, const char *stage, int code, const char *enh,
			const char *fmt, ...) __attribute__((format(printf, 5, 6)));


/* Enough free space in the queue for need bytes? A good answer is trusted
 * for SMTPD_SPACE_CHECK_MS (one statfs per second, not per MAIL); a bad
 * one, or a write error since (smtpd_space_recheck), is looked at again. */
static bool smtpd_space_ok(struct smtpd_server *srv, uint64_t need)
{
	uint64_t now = yz_now_ms();

	if (now < srv->space_ok_until_ms)
		return true;
	if (!queue_free_space_ok(srv->queue_dir, need)) {
		srv->space_ok_until_ms = 0;
		return false;
	}
	srv->space_ok_until_ms = now + SMTPD_SPACE_CHECK_MS;
	return true;
}

/* Reply and log a rejection of MAIL or RCPT. */
static void rcpt_reject(struct smtpd_session *s, const char *stage, int code, const char *enh,
			const char *fmt, ...)
{
	char text[SMTPD_TXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	smtpd_reply(s, code, enh, "%s", text);
	smtpd_log_reject(s, stage, code, enh, text);
}

/* Format a parsed address into the transaction pool. */
static char *rcpt_addr_text(struct smtpd_session *s, const struct mail_address *addr)
{
	struct yz_buf b;
	char *text;

	yz_buf_init(&b, YZ_ADDR_PATH_MAX * 4);
	if (mail_address_format(addr, &b) < 0) {
		yz_buf_free(&b);
		return NULL;
	}
	text = yz_pool_strndup(s->txn_pool, yz_buf_data(&b), yz_buf_len(&b));
	yz_buf_free(&b);
	return text;
}

/* Is MAIL on this port allowed only after AUTH? */
static bool mail_needs_auth(const struct smtpd_session *s)
{
	return s->kind != SMTPD_PORT_SMTP && s->auth_user == NULL;
}

/* MAIL is accepted: start the transaction. */
static void mail_accept(struct smtpd_session *s)
{
	s->txn.active = true;
	s->txn.sender = s->pending_sender;
	s->txn.params = s->pending_mparams;
	s->state = SMTPD_S_MAIL;
	smtpd_reply(s, 250, "2.1.0", "Ok");
}

/* The directory said whether the login owns the sender. */
static void mail_owned_answer(struct smtpd_session *s, const struct yz_ipc_hdr *hdr,
			      struct yz_ipc_reader *r)
{
	bool value = false, tempfail = true;

	if (hdr != NULL && hdr->type == YZ_MSG_DIR_BOOL_REPLY) {
		(void)yz_ipc_get_bool(r, &value);
		(void)yz_ipc_get_bool(r, &tempfail);
		if (yz_ipc_end(r) < 0) {
			value = false;
			tempfail = true;
		}
	}
	if (tempfail)
		rcpt_reject(s, "MAIL", 451, "4.3.0",
			    "<%s>: Sender address rejected: temporary lookup failure",
			    s->pending_sender);
	else if (!value)
		rcpt_reject(s, "MAIL", 553, "5.7.1",
			    "<%s>: Sender address rejected: not owned by the authenticated user",
			    s->pending_sender);
	else
		mail_accept(s);
	smtpd_session_resume(s);
}

/* MAIL FROM:<path> [params] */
void smtpd_cmd_mail(struct smtpd_session *s, struct yz_slice arg)
{
	const struct smtpd_settings *set = &s->srv->set;
	struct mail_address addr;
	bool is_null = false, had_route = false;
	const char *enh, *error;
	unsigned long long need;
	struct yz_ipc_msg m;
	int code;

	if (mail_needs_auth(s)) {
		smtpd_reply(s, 530, "5.7.0", "Authentication required");
		return;
	}
	memset(&s->pending_mparams, 0, sizeof(s->pending_mparams));
	if (smtp_parse_mail(arg, true, &addr, &is_null, &had_route, &s->pending_mparams, &code,
			    &enh, &error) < 0) {
		smtpd_reply(s, code, enh, "%s", error);
		return;
	}
	if (s->pending_mparams.smtputf8 && !set->smtputf8) {
		smtpd_reply(s, 555, "5.5.4", "Unsupported option: SMTPUTF8");
		return;
	}
	if (s->pending_mparams.body == SMTP_BODY_BINARYMIME) {
		smtpd_reply(s, 555, "5.5.4", "Unsupported option: BODY=BINARYMIME");
		return;
	}
	if (s->pending_mparams.has_size && s->pending_mparams.size > set->message_size_limit) {
		smtpd_reply(s, 552, "5.3.4", "Message size exceeds fixed limit");
		return;
	}
	need = set->minfree_multiple * set->message_size_limit;
	if (set->minfree_multiple != 0 && need / set->minfree_multiple != set->message_size_limit)
		need = ~0ULL; /* overflow: as much as can be asked */
	if (!smtpd_space_ok(s->srv, need)) {
		yz_log_warn("not enough free space in %s for new mail", s->srv->queue_dir);
		smtpd_reply(s, 452, "4.3.1", "Insufficient system storage");
		return;
	}
	s->pending_sender = is_null ? yz_pool_strdup(s->txn_pool, "") : rcpt_addr_text(s, &addr);
	if (s->pending_sender == NULL) {
		smtpd_reply(s, 501, "5.1.7", "Bad sender address syntax");
		return;
	}
	if (s->auth_user == NULL || is_null || !set->sender_login_match) {
		mail_accept(s);
		return;
	}
	yz_ipc_msg_init(&m, YZ_MSG_DIR_SENDER_OWNED, 0);
	(void)yz_ipc_put_str(&m, s->auth_user);
	(void)yz_ipc_put_str(&m, s->pending_sender);
	smtpd_session_ask(s, s->srv->dir_link, &m, mail_owned_answer);
}

/* Map libsmtp NOTIFY bits to the queue's. */
static unsigned rcpt_notify(unsigned n)
{
	unsigned q = 0;

	if (n & SMTP_NOTIFY_NEVER)
		q |= QUEUE_NOTIFY_NEVER;
	if (n & SMTP_NOTIFY_SUCCESS)
		q |= QUEUE_NOTIFY_SUCCESS;
	if (n & SMTP_NOTIFY_FAILURE)
		q |= QUEUE_NOTIFY_FAILURE;
	if (n & SMTP_NOTIFY_DELAY)
		q |= QUEUE_NOTIFY_DELAY;
	return q;
}

/* Every check passed: add the recipient. */
static void rcpt_accept(struct smtpd_session *s)
{
	struct smtpd_txn *t = &s->txn;
	struct smtpd_rcpt *r;

	if (t->nrcpt == t->rcpt_alloc) {
		size_t n = t->rcpt_alloc == 0 ? 8 : t->rcpt_alloc * 2;
		struct smtpd_rcpt *a = yz_pool_alloc(s->txn_pool, n * sizeof(*a));

		if (t->nrcpt > 0)
			memcpy(a, t->rcpts, t->nrcpt * sizeof(*a));
		t->rcpts = a;
		t->rcpt_alloc = n;
	}
	r = &t->rcpts[t->nrcpt++];
	r->addr = yz_pool_strdup(s->txn_pool, s->pending_rcpt_text);
	r->orcpt = s->pending_rparams.orcpt[0] != '\0'
			   ? yz_pool_strdup(s->txn_pool, s->pending_rparams.orcpt) : NULL;
	r->notify = rcpt_notify(s->pending_rparams.notify);
	s->state = SMTPD_S_RCPT;
	smtpd_reply(s, 250, "2.1.5", "Ok");
}

/* The mailbox role answered the quota question. */
static void rcpt_quota_answer(struct smtpd_session *s, const struct yz_ipc_hdr *hdr,
			      struct yz_ipc_reader *r)
{
	bool over = false, tempfail = true;
	uint64_t used = 0;

	if (hdr != NULL && hdr->type == YZ_MSG_MBOX_QUOTA_REPLY) {
		(void)yz_ipc_get_bool(r, &over);
		(void)yz_ipc_get_bool(r, &tempfail);
		(void)yz_ipc_get_u64(r, &used);
		if (yz_ipc_end(r) < 0) {
			over = false;
			tempfail = true;
		}
	}
	if (over && !tempfail) {
		if (s->srv->set.over_quota_permanent)
			rcpt_reject(s, "RCPT", 552, "5.2.2",
				    "<%s>: Recipient address rejected: Mailbox full",
				    s->pending_rcpt_text);
		else
			rcpt_reject(s, "RCPT", 452, "4.2.2",
				    "<%s>: Recipient address rejected: Mailbox full",
				    s->pending_rcpt_text);
	} else {
		/* Unknown usage (the mailbox role is down or busy): accept;
		 * the message is safe in the queue and delivery checks the
		 * quota again. */
		rcpt_accept(s);
	}
	smtpd_session_resume(s);
}

/* The directory resolved the recipient. */
static void rcpt_resolve_answer(struct smtpd_session *s, const struct yz_ipc_hdr *hdr,
				struct yz_ipc_reader *r)
{
	struct policy_relay_input in;
	uint32_t status = YZ_WIRE_RESOLVE_TEMPFAIL, n = 0, i;
	struct yz_slice error = { "", 0 }, account = { "", 0 }, folder;
	bool external = false, one_local = false;
	uint64_t quota = 0;

	if (hdr != NULL && hdr->type == YZ_MSG_DIR_RESOLVE_REPLY) {
		(void)yz_ipc_get_u32(r, &status);
		(void)yz_ipc_get_str(r, YZ_IPC_TEXT_MAX, &error);
		(void)yz_ipc_get_u32(r, &n);
		for (i = 0; i < n && !yz_ipc_reader_failed(r); i++) {
			struct yz_slice a;
			bool ext;
			uint64_t q;

			(void)yz_ipc_get_str(r, YZ_IPC_ADDR_MAX, &a);
			(void)yz_ipc_get_bool(r, &ext);
			(void)yz_ipc_get_str(r, YZ_IPC_ADDR_MAX, &folder);
			(void)yz_ipc_get_u64(r, &q);
			if (i == 0) {
				account = a;
				external = ext;
				quota = q;
			}
		}
		if (yz_ipc_end(r) < 0)
			status = YZ_WIRE_RESOLVE_TEMPFAIL;
		one_local = status == YZ_WIRE_RESOLVE_OK && n == 1 && !external;
	}
	memset(&in, 0, sizeof(in));
	in.suspicious = s->pending_suspicious;
	in.had_route = s->pending_route;
	in.authenticated = s->auth_user != NULL;
	in.in_mynetworks = s->in_mynetworks;

	switch (status) {
	case YZ_WIRE_RESOLVE_NOT_LOCAL:
		if (policy_relay_decide(&in, false) == POLICY_RELAY_OK)
			rcpt_accept(s);
		else
			rcpt_reject(s, "RCPT", 554, "5.7.1", "<%s>: Relay access denied",
				    s->pending_rcpt_text);
		break;
	case YZ_WIRE_RESOLVE_UNKNOWN:
		rcpt_reject(s, "RCPT", 550, "5.1.1",
			    "<%s>: Recipient address rejected: User unknown in virtual mailbox table",
			    s->pending_rcpt_text);
		break;
	case YZ_WIRE_RESOLVE_DISABLED:
		rcpt_reject(s, "RCPT", 550, "5.2.1",
			    "<%s>: Recipient address rejected: Mailbox disabled",
			    s->pending_rcpt_text);
		break;
	case YZ_WIRE_RESOLVE_LOOP:
		rcpt_reject(s, "RCPT", 550, "5.4.6",
			    "<%s>: Recipient address rejected: Alias expansion loop",
			    s->pending_rcpt_text);
		break;
	case YZ_WIRE_RESOLVE_TOO_MANY:
		rcpt_reject(s, "RCPT", 550, "5.5.3",
			    "<%s>: Recipient address rejected: Alias expansion too large",
			    s->pending_rcpt_text);
		break;
	case YZ_WIRE_RESOLVE_OK:
		if (one_local && quota > 0 && s->srv->mbox_link != NULL &&
		    yz_link_up(s->srv->mbox_link)) {
			struct yz_ipc_msg m;

			yz_ipc_msg_init(&m, YZ_MSG_MBOX_QUOTA, 0);
			(void)yz_ipc_put_slice(&m, account);
			(void)yz_ipc_put_u64(&m, quota);
			(void)yz_ipc_put_u64(&m, s->txn.params.has_size ? s->txn.params.size : 0);
			smtpd_session_ask(s, s->srv->mbox_link, &m, rcpt_quota_answer);
			return;
		}
		rcpt_accept(s);
		break;
	default:
		if (hdr == NULL || status != YZ_WIRE_RESOLVE_TEMPFAIL)
			yz_log_warn("recipient lookup for <%s> failed: %s", s->pending_rcpt_text,
				    hdr == NULL ? "directory not reachable" : "bad answer");
		rcpt_reject(s, "RCPT", 451, "4.3.0",
			    "<%s>: Recipient address rejected: Temporary lookup failure",
			    s->pending_rcpt_text);
		break;
	}
	smtpd_session_resume(s);
}

/* RCPT TO:<path> [params] */
void smtpd_cmd_rcpt(struct smtpd_session *s, struct yz_slice arg)
{
	struct policy_relay_input in;
	const char *enh, *error;
	struct yz_ipc_msg m;
	struct yz_buf b;
	int code;

	memset(&s->pending_rparams, 0, sizeof(s->pending_rparams));
	s->pending_route = false;
	if (smtp_parse_rcpt(arg, s->txn.params.smtputf8, &s->pending_addr, &s->pending_route,
			    &s->pending_rparams, &code, &enh, &error) < 0) {
		smtpd_reply(s, code, enh, "%s", error);
		return;
	}
	if (s->txn.nrcpt >= s->srv->set.recipient_limit) {
		smtpd_reply(s, 452, "4.5.3", "Error: too many recipients");
		return;
	}
	yz_buf_init(&b, sizeof(s->pending_rcpt_text) - 1);
	if (mail_address_format(&s->pending_addr, &b) < 0) {
		yz_buf_free(&b);
		smtpd_reply(s, 501, "5.1.3", "Bad recipient address syntax");
		return;
	}
	snprintf(s->pending_rcpt_text, sizeof(s->pending_rcpt_text), "%s", yz_buf_cstr(&b));
	yz_buf_free(&b);
	s->pending_suspicious = mail_address_is_suspicious(&s->pending_addr);

	memset(&in, 0, sizeof(in));
	in.suspicious = s->pending_suspicious;
	in.had_route = s->pending_route;
	in.authenticated = s->auth_user != NULL;
	in.in_mynetworks = s->in_mynetworks;
	if (policy_relay_syntax(&in) == POLICY_RELAY_SNEAK) {
		rcpt_reject(s, "RCPT", 550, "5.7.1",
			    "<%s>: Recipient address rejected: this address form is not accepted",
			    s->pending_rcpt_text);
		return;
	}
	yz_ipc_msg_init(&m, YZ_MSG_DIR_RESOLVE, 0);
	(void)yz_ipc_put_str(&m, s->pending_rcpt_text);
	smtpd_session_ask(s, s->srv->dir_link, &m, rcpt_resolve_answer);
}

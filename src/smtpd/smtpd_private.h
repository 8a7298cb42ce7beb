/*
 * smtpd_private.h: what the files of the smtpd room share: the settings
 * (every limit, read once from the configuration), the server (listeners,
 * links to other roles, connection accounting, the queue batch) and the
 * session (an explicit state machine, one per client connection).
 *
 * Never included outside src/smtpd/ and its unit tests.
 */
#ifndef YZ_SMTPD_PRIVATE_H
#define YZ_SMTPD_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lib/ipc_msg.h"
#include "lib/buf.h"
#include "lib/ipc.h"
#include "libmail/address.h"
#include "libmail/header.h"
#include "libsmtp/smtp_command.h"
#include "libsmtp/smtp_data.h"
#include "policy/policy_net.h"
#include "store/queue/queue_store.h"

struct yz_config;
struct yz_io;
struct yz_link;
struct yz_loop;
struct yz_pool;
struct yz_service;
struct yz_timer;
struct yz_tls_ctx;
struct yz_workq;
struct smtpd_limits;

/* ---- fixed bounds (the configurable ones live in struct smtpd_settings) ---- */
#define SMTPD_HOSTNAME_MAX 255       /* our host name, a HELO name */
#define SMTPD_BANNER_MAX 512         /* the 220 greeting text */
#define SMTPD_IP_MAX 64              /* printable client address */
#define SMTPD_AUTH_LINE_MAX 12288    /* RFC 4954 4: AUTH lines may be this long */
#define SMTPD_RBUF_SLACK 65536       /* read buffer beyond the longest line */
#define SMTPD_WBUF_MAX (1u << 20)    /* queued replies per session */
#define SMTPD_WBUF_HIGH (256u << 10) /* stop reading commands above this */
#define SMTPD_HEADER_MAX (1u << 20)  /* header section held to check it */
#define SMTPD_HEADER_FIELDS_MAX 10000 /* header fields in one message */
#define SMTPD_CHUNK_MAX 65536        /* decoded bytes handed to the writer at once */
#define SMTPD_IPC_TIMEOUT_MS 30000   /* a directory/mailbox question */
#define SMTPD_SPACE_CHECK_MS 1000    /* a good free-space answer is trusted this long */
#define SMTPD_STOP_GRACE_MS 2000     /* after the 421s at shutdown, exit anyway */
#define SMTPD_TXT_MAX 1024           /* one reply text */
#define SMTPD_LISTENERS_MAX 16

enum smtpd_port_kind {
	SMTPD_PORT_SMTP,        /* 25: relay rules, AUTH only over TLS */
	SMTPD_PORT_SUBMISSION,  /* 587: STARTTLS, AUTH required before MAIL */
	SMTPD_PORT_SUBMISSIONS, /* 465: implicit TLS, AUTH required */
};

/* Every limit and switch, read once at start (smtpd_settings_load). */
struct smtpd_settings {
	char hostname[SMTPD_HOSTNAME_MAX + 1];
	char banner[SMTPD_BANNER_MAX + 1];
	size_t command_line_limit;
	size_t text_line_limit;
	unsigned long long message_size_limit;
	unsigned recipient_limit;
	unsigned connection_limit;
	unsigned client_connection_limit;
	unsigned hard_error_limit;
	unsigned soft_error_limit;
	unsigned hopcount_limit;
	unsigned max_auth_failures;
	unsigned long long minfree_multiple;
	uint64_t error_sleep_ms;
	uint64_t timeout_ms;
	uint64_t data_timeout_ms;
	uint64_t greet_pause_ms;
	uint64_t group_commit_ms;
	uint64_t shutdown_timeout_ms;
	bool auth_over_plaintext;
	bool sender_login_match;
	bool over_quota_permanent;
	bool smtputf8;
};

/* Session states for the command table (a bit each). */
enum smtpd_state {
	SMTPD_S_INIT,   /* connected, no HELO/EHLO yet */
	SMTPD_S_READY,  /* HELO/EHLO done, no transaction */
	SMTPD_S_MAIL,   /* MAIL accepted, no recipient yet */
	SMTPD_S_RCPT,   /* at least one recipient accepted */
	SMTPD_S_BDAT,   /* inside a BDAT sequence (no LAST yet) */
	SMTPD_S__COUNT
};
#define SMTPD_SB(s) (1u << (s))
#define SMTPD_S_ANY ((1u << SMTPD_S__COUNT) - 1)

/* What the session reads next. */
enum smtpd_input {
	SMTPD_IN_GREET,    /* before the banner (greet pause) */
	SMTPD_IN_COMMAND,  /* a command line */
	SMTPD_IN_AUTH,     /* an AUTH continuation line */
	SMTPD_IN_DATA,     /* DATA text until CRLF.CRLF */
	SMTPD_IN_CHUNK,    /* BDAT chunk bytes */
	SMTPD_IN_CLOSED,   /* nothing more: closing */
};

struct smtpd_rcpt {
	char *addr;     /* canonical address as accepted */
	char *orcpt;    /* NULL = none */
	unsigned notify; /* QUEUE_NOTIFY_* */
};

/* One mail transaction: MAIL .. end of data. Strings in txn_pool. */
struct smtpd_txn {
	bool active;
	char *sender;                 /* "" = null sender */
	struct smtp_mail_params params;
	struct smtpd_rcpt *rcpts;
	size_t nrcpt, rcpt_alloc;
	/* data phase */
	struct queue_writer *writer;
	char qid[QUEUE_ID_MAX];
	struct smtp_data decoder;
	struct yz_buf chunk;          /* decoded bytes waiting for the writer */
	struct yz_buf header;         /* the header section, held until its end */
	struct mail_header_scan hscan;
	bool header_done;
	unsigned long long size;      /* content bytes of the client */
	unsigned received_count;      /* Received: fields seen */
	bool has_message_id, has_date;
	bool too_big;                 /* over message_size_limit: discarding */
	bool failed;                  /* write error: discarding, then 451 */
	bool header_too_big;
	const char *fail_text;
	/* BDAT */
	bool bdat;                    /* BDAT was used in this transaction */
	bool bdat_last;
	unsigned long long chunk_left;
	bool chunk_discard;           /* rejected BDAT: swallow the bytes */
	int chunk_reply_code;         /* reply to send after a discarded chunk */
	const char *chunk_reply_enh;
	const char *chunk_reply_text;
};

/* Per-command counters for the disconnect line. */
enum smtpd_counter {
	SMTPD_C_HELO, SMTPD_C_EHLO, SMTPD_C_STARTTLS, SMTPD_C_AUTH, SMTPD_C_MAIL,
	SMTPD_C_RCPT, SMTPD_C_DATA, SMTPD_C_BDAT, SMTPD_C_RSET, SMTPD_C_NOOP,
	SMTPD_C_VRFY, SMTPD_C_EXPN, SMTPD_C_HELP, SMTPD_C_QUIT, SMTPD_C_UNKNOWN,
	SMTPD_C__COUNT
};

struct smtpd_server;
struct smtpd_session;
struct yz_ipc_hdr;
struct yz_ipc_reader;
struct yz_ipc_msg;

/* The answer to a session's IPC question; hdr and r are NULL on failure. */
typedef void smtpd_answer_cb(struct smtpd_session *s, const struct yz_ipc_hdr *hdr,
			     struct yz_ipc_reader *r);

struct smtpd_session {
	struct smtpd_server *srv;
	struct smtpd_session *prev, *next;
	struct yz_io *io;
	struct yz_pool *txn_pool;
	enum smtpd_port_kind kind;
	enum smtpd_state state;
	enum smtpd_input input;
	char ip[SMTPD_IP_MAX];
	unsigned port;
	char helo[SMTPD_HOSTNAME_MAX + 1];
	bool esmtp;
	bool in_mynetworks;
	bool tls_handshaking;
	char *auth_user;          /* heap; NULL = not authenticated */
	unsigned auth_failures;
	unsigned errors;
	/* AUTH exchange in progress */
	int auth_mech;            /* smtpd_auth.c's enum */
	int auth_step;
	struct yz_buf auth_user_buf;  /* LOGIN: the user name so far (wiped) */
	/* asynchronous work in progress: input processing waits */
	bool busy;
	unsigned refs;            /* pending callbacks holding the session */
	bool dead;                /* closed; freed when refs reach 0 */
	bool in_commit;           /* a finished message waits for the group commit */
	bool quitting;
	struct yz_timer *sleep_timer;  /* error sleep or greet pause */
	bool sleep_holds;              /* the sleep timer holds the session */
	struct yz_timer *step_timer;   /* resume processing after a callback */
	/* the RCPT being checked across IPC */
	struct mail_address pending_addr;
	struct smtp_rcpt_params pending_rparams;
	char pending_rcpt_text[YZ_ADDR_PATH_MAX + 3];
	bool pending_route;
	bool pending_suspicious;
	/* the MAIL being checked across IPC */
	char *pending_sender;     /* in txn_pool */
	struct smtp_mail_params pending_mparams;
	/* the IPC question out (smtpd_session_ask) */
	uint32_t req_seq;
	smtpd_answer_cb *answer_cb;
	unsigned counts_ok[SMTPD_C__COUNT];
	unsigned counts_all[SMTPD_C__COUNT];
	struct smtpd_txn txn;
	struct yz_buf line;        /* the command line being handled (a copy) */
	int cur_counter;           /* counter of the command being handled, -1 none */
	bool cur_counted;          /* its success was counted */
	bool req_active;           /* an IPC request of this session is out */
	bool defer_scheduled;      /* a resume is scheduled */
	bool tls_pending;          /* start TLS once the 220 has been written */
	bool greeted;              /* the banner was sent */
	bool broken;               /* the write buffer overflowed: close */
	const char *last_cmd;      /* for "lost connection after X" */
};

struct smtpd_listener {
	struct smtpd_server *srv;
	int fd;
	bool active;
	enum smtpd_port_kind kind;
	char name[32];
};

struct smtpd_server {
	struct yz_service *svc;
	struct yz_loop *loop;
	struct yz_config *cfg;
	struct smtpd_settings set;
	struct policy_netlist mynetworks;
	struct yz_tls_ctx *tls;
	const char *tls_error;
	struct smtpd_listener listeners[SMTPD_LISTENERS_MAX];
	size_t nlisteners;
	struct smtpd_limits *limits;
	struct smtpd_session *sessions;
	size_t nsessions;
	struct yz_link *dir_link;
	struct yz_link *queue_link;
	struct yz_link *mbox_link;
	struct queue_store *queue;
	char queue_dir[QUEUE_DIR_MAX];
	/* Free space was enough until this time (yz_now_ms); 0 = look again. */
	uint64_t space_ok_until_ms;
	/* group commit */
	struct queue_batch *batch;
	struct smtpd_session **batch_sessions;
	size_t batch_alloc;
	bool commit_scheduled;
	struct yz_timer *commit_timer;
	/* the batch whose commit runs in the committer thread (smtpd_queue.c) */
	struct queue_batch *flight;
	struct smtpd_session **flight_sessions;
	size_t flight_count;
	struct yz_workq *committer; /* the commit thread; NULL: commits run in the loop */
	/* graceful stop */
	bool stopping;
	bool exiting;
	struct yz_timer *stop_timer;
	struct yz_timer *grace_timer;
};

/* ---- smtpd.c ---- */
/* A session closed and was freed: accounting, and exit when stopping. */
void smtpd_server_session_gone(struct smtpd_server *srv);
/* Load every setting from the configuration; host_fallback when myhostname is empty. */
void smtpd_settings_load(struct smtpd_settings *set, const struct yz_config *cfg);

/* ---- smtpd_limits.c: connection accounting ---- */
struct smtpd_limits *smtpd_limits_new(unsigned total_max, unsigned per_ip_max);
void smtpd_limits_free(struct smtpd_limits **lim);
enum smtpd_limit_verdict { SMTPD_LIMIT_OK, SMTPD_LIMIT_TOTAL, SMTPD_LIMIT_PER_IP };
/* Count a new connection from ip unless a limit is reached. */
enum smtpd_limit_verdict smtpd_limits_connect(struct smtpd_limits *lim, const char *ip);
/* Forget a connection counted by smtpd_limits_connect(). */
void smtpd_limits_disconnect(struct smtpd_limits *lim, const char *ip);
unsigned smtpd_limits_total(const struct smtpd_limits *lim);
unsigned smtpd_limits_of_ip(const struct smtpd_limits *lim, const char *ip);
/* Error accounting: what to do after the errors-th error reply. */
enum smtpd_error_action { SMTPD_ERR_NONE, SMTPD_ERR_SLEEP, SMTPD_ERR_DISCONNECT };
enum smtpd_error_action smtpd_limits_error_action(unsigned errors, unsigned soft, unsigned hard);

/* ---- smtpd_cmd.c: the command table ---- */
typedef void smtpd_cmd_run(struct smtpd_session *s, struct yz_slice arg);
struct smtpd_cmd {
	enum smtp_verb verb;
	const char *name;
	unsigned states;           /* SMTPD_SB() bits where it is allowed */
	enum smtpd_counter counter;
	smtpd_cmd_run *run;
};
const struct smtpd_cmd *smtpd_cmd_find(enum smtp_verb verb);
/* May verb run in state? 0, or -1 with the reply (code, enhanced, text). */
int smtpd_cmd_check(const struct smtpd_cmd *cmd, enum smtpd_state state, bool authenticated,
		    int *code_r, const char **enh_r, const char **text_r);
/* Handlers (in the files of their concept). */
void smtpd_cmd_helo(struct smtpd_session *s, struct yz_slice arg);
void smtpd_cmd_ehlo(struct smtpd_session *s, struct yz_slice arg);
void smtpd_cmd_rset(struct smtpd_session *s, struct yz_slice arg);
void smtpd_cmd_noop(struct smtpd_session *s, struct yz_slice arg);
void smtpd_cmd_quit(struct smtpd_session *s, struct yz_slice arg);
void smtpd_cmd_help(struct smtpd_session *s, struct yz_slice arg);
void smtpd_cmd_vrfy(struct smtpd_session *s, struct yz_slice arg);
void smtpd_cmd_starttls(struct smtpd_session *s, struct yz_slice arg);
void smtpd_cmd_auth(struct smtpd_session *s, struct yz_slice arg);
void smtpd_cmd_mail(struct smtpd_session *s, struct yz_slice arg);
void smtpd_cmd_rcpt(struct smtpd_session *s, struct yz_slice arg);
void smtpd_cmd_data(struct smtpd_session *s, struct yz_slice arg);
void smtpd_cmd_bdat(struct smtpd_session *s, struct yz_slice arg);

/* ---- smtpd_session.c ---- */
void smtpd_session_start(struct smtpd_server *srv, int fd, const char *ip, unsigned port,
			 enum smtpd_port_kind kind);
/* Queue one reply line "code enh text" (enh may be NULL); counts errors. */
void smtpd_reply(struct smtpd_session *s, int code, const char *enh, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Queue a raw line (CRLF added); no error accounting. */
void smtpd_reply_raw(struct smtpd_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Log a Postfix-shaped rejection line for the reply just sent. */
void smtpd_log_reject(struct smtpd_session *s, const char *stage, int code, const char *enh,
		      const char *text);
/* Send 421, flush and close. */
void smtpd_session_close(struct smtpd_session *s, int code, const char *enh, const char *text);
/* Async work: hold the session while a callback is pending. */
void smtpd_session_hold(struct smtpd_session *s);
/* The callback arrived: drop the hold; false if the session is gone (freed). */
bool smtpd_session_release(struct smtpd_session *s);
/* Ask another role; cb runs once (NULLs on failure), never after the
 * session is gone. The message is consumed. */
void smtpd_session_ask(struct smtpd_session *s, struct yz_link *link, struct yz_ipc_msg *m,
		       smtpd_answer_cb *cb);
/* Continue processing buffered input after async work finished. */
void smtpd_session_resume(struct smtpd_session *s);
/* Forget the transaction (RSET, EHLO, after the end of data). */
void smtpd_txn_reset(struct smtpd_session *s);
/* "ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA", "SMTP", "UTF8SMTPS"... (RFC 3848/6531). */
const char *smtpd_session_protocol(const struct smtpd_session *s);
bool smtpd_session_is_tls(const struct smtpd_session *s);
/* Stop the server: tell every session 421 4.3.2 and close it. */
void smtpd_sessions_shutdown(struct smtpd_server *srv);
/* Process input until it runs out or async work starts. */
void smtpd_session_process(struct smtpd_session *s);

/* ---- smtpd_auth.c ---- */
/* An AUTH continuation line arrived (without CRLF). */
void smtpd_auth_line(struct smtpd_session *s, struct yz_slice line);
/* Is AUTH offered in this session now? */
bool smtpd_auth_offered(const struct smtpd_session *s);
/* Drop the AUTH exchange state (wipes secrets). */
void smtpd_auth_clear(struct smtpd_session *s);

/* ---- smtpd_data.c ---- */
/* DATA text or BDAT bytes are buffered: consume what is there. */
void smtpd_data_input(struct smtpd_session *s);
/* The group commit finished for this session's message. */
void smtpd_data_committed(struct smtpd_session *s, bool ok, const char *qid, const char *error);
/* Free the data phase state of a transaction. */
void smtpd_data_clear(struct smtpd_txn *txn);

/* ---- smtpd_queue.c: group commit ---- */
/* Hand a finished writer to the next commit; smtpd_data_committed() follows. */
void smtpd_queue_submit(struct smtpd_session *s);
/* Commit whatever is pending now (also used at shutdown). */
void smtpd_queue_commit_now(struct smtpd_server *srv);
/* The session is going away: it no longer wants its commit answer. */
void smtpd_queue_forget(struct smtpd_server *srv, struct smtpd_session *s);
/* Stop the committer thread (after waiting for its commit); server_free. */
void smtpd_queue_committer_stop(struct smtpd_server *srv);

/* ---- smtpd_received.c: header text (pure) ---- */
struct smtpd_received_info {
	const char *helo;         /* may be empty */
	const char *ip;
	const char *hostname;     /* ours */
	const char *protocol;     /* smtpd_session_protocol() */
	const char *tls_version;  /* NULL = no TLS */
	const char *tls_cipher;
	int tls_bits;
	const char *qid;
	const char *rcpt;         /* NULL unless exactly one recipient */
	const char *date;         /* RFC 5322 date-time */
};
/* Append the Received: field (folded, CRLF-terminated) to out; -1 over cap. */
int smtpd_received_format(struct yz_buf *out, const struct smtpd_received_info *ri);
/* Copy text keeping printable ASCII only (others become '?'), at most max bytes. */
void smtpd_sanitize(const char *in, size_t len, char *out, size_t size);

#endif

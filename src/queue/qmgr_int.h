/*
 * qmgr_int.h: the queue role's private state (qmgr.c: process, recovery,
 * clients; qmgr_sched.c: scheduling and delivery; qmgr_bounce.c: DSNs).
 *
 * In memory the role keeps every committed message it knows (envelope and
 * recipient states, as loaded by queue_msg_load) and, per recipient, when
 * to try it next. The spool stays the truth: every state change is recorded
 * durably (queue_rcpt_batch_commit) before it is acted on (log line,
 * removal), so a crash at any point replays to the same decisions.
 */
#ifndef YZ_QMGR_INT_H
#define YZ_QMGR_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/service.h"
#include "store/queue/queue_store.h"

/* A retry after a lost IPC link (a role restarting) is quick and is not
 * counted as an attempt: the message did not fail, the transport blinked. */
#define QMGR_TRANSPORT_RETRY_MS 1000
#define QMGR_RESOLVE_TIMEOUT_MS 30000
#define QMGR_DELIVER_TIMEOUT_MS 600000
#define QMGR_TARGETS_LOG_MAX 2048

struct qmgr;

struct qmgr_rcpt {
	bool busy;          /* an attempt is in flight */
	bool queued;        /* on the ready list */
	uint64_t due_ms;    /* monotonic time of the next attempt */
	uint64_t tries_this_run;
};

struct qmgr_msg {
	struct qmgr_msg *next, *prev;  /* all known messages */
	struct qmgr_msg *hnext;        /* the chain of its bucket in qmgr.by_id */
	struct queue_msg *qm;          /* envelope + states (pool owned) */
	struct qmgr_rcpt *rs;          /* one per recipient */
	size_t busy;                   /* attempts or status commits in flight */
	bool removing;
	bool recovered;                /* found on disk: may have been delivered already */
	size_t batch_updates;          /* qmgr_commit scratch: its updates in this batch */
	bool remove_now;               /* qmgr_commit scratch: done by this batch */
	uint64_t arrival_ms;           /* monotonic estimate, for delay= */
};

/* One attempt of one recipient. */
struct qmgr_job {
	struct qmgr_job *next;
	struct qmgr *q;
	struct qmgr_msg *m;
	uint32_t index;
	uint64_t started_ms;
	/* resolution result: the local targets (an alias may have several) */
	struct qmgr_target *targets;
	size_t ntargets;
	size_t pending;      /* deliveries still in flight */
	int worst;           /* worst outcome so far (enum qmgr_outcome) */
	char text[QUEUE_STATUS_TEXT_MAX + 1];
};

struct qmgr_target {
	char account[QUEUE_ADDR_MAX + 1];
	char folder[QUEUE_ADDR_MAX + 1];
	uint64_t quota;
};

/* A state change waiting for the next status commit. */
struct qmgr_update {
	struct qmgr_update *next;
	struct qmgr_msg *m;
	uint32_t index;
	enum queue_rcpt_state state;
	unsigned flags;
	uint32_t attempts;
	int64_t next_retry;
	char status[QUEUE_STATUS_TEXT_MAX + 1];
	char relay[32];
	uint64_t delay_ms;
	/* The final local targets when they differ from the envelope recipient
	 * (an alias, a plus-address): logged as to=<target>, orig_to=<rcpt>,
	 * one line each, as Postfix does. Space-separated, bounded. */
	char targets[QMGR_TARGETS_LOG_MAX];
};

struct qmgr {
	struct yz_service *svc;
	struct yz_config *cfg;
	struct yz_loop *loop;
	struct queue_store *store;
	struct yz_link *dir_link;
	struct yz_link *mbox_link;
	struct qmgr_msg *msgs;         /* doubly linked */
	size_t nmsgs;
	/* By queue ID, so that a notice or a rescan of a large queue (a backlog
	 * of deferred forwards) costs O(1) per message, not O(n). */
	struct qmgr_msg **by_id;
	size_t nbuckets;               /* a power of two */
	struct qmgr_job *ready;        /* FIFO of attempts to start */
	struct qmgr_job *ready_tail;
	size_t inflight;
	size_t concurrency;
	struct qmgr_update *updates;   /* next status commit */
	bool commit_scheduled;
	bool run_scheduled;
	struct yz_timer *wake;         /* earliest due deferred recipient */
	uint64_t wake_at;
	struct yz_timer *scan_timer;   /* periodic rescan of active/ */
	size_t nclients;
	struct yz_ipc_conn **clients; /* the smtpd connections, freed at exit */
	size_t clients_cap;
	char hostname[256];
};

/* qmgr.c */
struct qmgr_msg *qmgr_find(struct qmgr *q, const char *qid);
int qmgr_adopt(struct qmgr *q, struct queue_msg *qm, bool recovered);
void qmgr_forget(struct qmgr *q, struct qmgr_msg *m);
void qmgr_maybe_exit(struct qmgr *q);
/* qmgr_sched.c */
void qmgr_schedule_msg(struct qmgr *q, struct qmgr_msg *m);
void qmgr_kick(struct qmgr *q);
void qmgr_record(struct qmgr *q, struct qmgr_msg *m, uint32_t index, enum queue_rcpt_state st,
		 unsigned flags, uint32_t attempts, int64_t next_retry, const char *status,
		 const char *relay, uint64_t delay_ms, const char *targets);
/* qmgr_bounce.c: queue a DSN for the failed recipients; 0 ok, -1 failed (retry later). */
int qmgr_bounce(struct qmgr *q, struct qmgr_msg *m, const uint32_t *idx, size_t n,
		bool delay_notice);

#endif

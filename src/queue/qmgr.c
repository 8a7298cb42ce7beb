/*
 * qmgr.c: the queue role process: opens the spool, recovers it, learns of
 * new messages (QUEUE_NEW from smtpd, or a rescan of active/), and keeps the
 * in-memory list of known messages. Scheduling is in qmgr_sched.c.
 * Never: a message is forgotten before its removal from the spool, or
 * removed before every recipient's final state is durable.
 */
#include "queue/queue.h"
#include "queue/qmgr_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/mem.h"

#define QMGR_CLIENT_PAYLOAD_MAX 4096
#define QMGR_SCAN_MIN_MS 10000

/* FNV-1a of a queue ID. */
static size_t qmgr_hash(const char *qid)
{
	uint64_t h = 1469598103934665603ULL;
	for (const unsigned char *p = (const unsigned char *)qid; *p != '\0'; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	return (size_t)h;
}

struct qmgr_msg *qmgr_find(struct qmgr *q, const char *qid)
{
	if (q->nbuckets == 0)
		return NULL;
	for (struct qmgr_msg *m = q->by_id[qmgr_hash(qid) & (q->nbuckets - 1)]; m != NULL; m = m->hnext)
		if (strcmp(m->qm->qid, qid) == 0)
			return m;
	return NULL;
}

/* Keep the table at most one message per bucket on average. */
static void qmgr_index_grow(struct qmgr *q)
{
	if (q->nmsgs < q->nbuckets)
		return;
	size_t n = q->nbuckets ? q->nbuckets * 2 : 1024;
	struct qmgr_msg **t = yz_calloc(n, sizeof *t);
	for (struct qmgr_msg *m = q->msgs; m != NULL; m = m->next) {
		size_t b = qmgr_hash(m->qm->qid) & (n - 1);
		m->hnext = t[b];
		t[b] = m;
	}
	free(q->by_id);
	q->by_id = t;
	q->nbuckets = n;
}

static void qmgr_index_del(struct qmgr *q, struct qmgr_msg *m)
{
	struct qmgr_msg **pp = &q->by_id[qmgr_hash(m->qm->qid) & (q->nbuckets - 1)];
	while (*pp != NULL && *pp != m)
		pp = &(*pp)->hnext;
	if (*pp == m)
		*pp = m->hnext;
}

/* Take ownership of a loaded message and schedule what is left of it. */
int qmgr_adopt(struct qmgr *q, struct queue_msg *qm, bool recovered)
{
	if (qmgr_find(q, qm->qid) != NULL) {
		queue_msg_free(&qm);
		return 0;
	}
	struct qmgr_msg *m = yz_calloc(1, sizeof *m);
	m->qm = qm;
	m->recovered = recovered;
	m->rs = yz_calloc(qm->env.rcpt_count ? qm->env.rcpt_count : 1, sizeof *m->rs);
	int64_t age_s = (int64_t)time(NULL) - qm->env.arrival;
	uint64_t now = yz_now_ms();
	m->arrival_ms = age_s > 0 && (uint64_t)age_s * 1000 < now ? now - (uint64_t)age_s * 1000 : now;
	q->nmsgs++;
	qmgr_index_grow(q); /* rebuilds from the list, before m joins it */
	m->next = q->msgs;
	if (q->msgs != NULL)
		q->msgs->prev = m;
	q->msgs = m;
	size_t b = qmgr_hash(qm->qid) & (q->nbuckets - 1);
	m->hnext = q->by_id[b];
	q->by_id[b] = m;
	qmgr_schedule_msg(q, m);
	return 0;
}

void qmgr_forget(struct qmgr *q, struct qmgr_msg *m)
{
	if (m->prev != NULL)
		m->prev->next = m->next;
	else
		q->msgs = m->next;
	if (m->next != NULL)
		m->next->prev = m->prev;
	q->nmsgs--;
	qmgr_index_del(q, m);
	queue_msg_free(&m->qm);
	free(m->rs);
	free(m);
}

/* Load a committed message we did not know yet. */
static int qmgr_learn(struct qmgr *q, const char *qid, bool recovered)
{
	if (!queue_id_valid(qid) || qmgr_find(q, qid) != NULL)
		return 0;
	struct queue_msg *qm;
	const char *err;
	if (queue_msg_load(q->store, qid, &qm, &err) < 0) {
		if (errno != ENOENT)
			yz_log_warn("%s: cannot load: %s", qid, err);
		return -1;
	}
	if (queue_msg_done(qm)) {
		/* A removal that a crash cut short. */
		queue_msg_free(&qm);
		(void)queue_msg_remove(q->store, qid, &err);
		return 0;
	}
	return qmgr_adopt(q, qm, recovered);
}

/* Pick up committed messages whose QUEUE_NEW was lost (an smtpd killed
 * between its commit and its notice). */
static void qmgr_rescan(struct qmgr *q)
{
	char(*ids)[QUEUE_ID_MAX];
	size_t n;
	const char *err;
	if (queue_list(q->store, &ids, &n, &err) < 0) {
		yz_log_warn("cannot list the queue: %s", err);
		return;
	}
	for (size_t i = 0; i < n; i++)
		(void)qmgr_learn(q, ids[i], true);
	free(ids);
}

static void qmgr_scan_timer(struct yz_loop *loop, void *arg)
{
	struct qmgr *q = arg;
	q->scan_timer = NULL;
	if (!yz_service_stopping(q->svc))
		qmgr_rescan(q);
	uint64_t every = yz_cfg_time_ms(q->cfg, YZ_P_QUEUE_RUN_DELAY);
	q->scan_timer = yz_timer_add(q->loop, every > QMGR_SCAN_MIN_MS ? every : QMGR_SCAN_MIN_MS,
				     qmgr_scan_timer, q);
}

static void qmgr_on_msg(struct yz_ipc_conn *c, const struct yz_ipc_hdr *hdr, struct yz_ipc_reader *r,
			void *arg)
{
	struct qmgr *q = arg;
	struct yz_slice qid, seg;
	uint64_t offset;
	if (hdr->type != YZ_MSG_QUEUE_NEW || yz_ipc_get_str(r, QUEUE_ID_LEN, &qid) < 0 ||
	    yz_ipc_get_str(r, QUEUE_ID_LEN, &seg) < 0 || yz_ipc_get_u64(r, &offset) < 0 ||
	    yz_ipc_end(r) < 0) {
		yz_log_warn("malformed request type %u: closing the connection", (unsigned)hdr->type);
		yz_ipc_conn_fail(c, "malformed request");
		return;
	}
	char id[QUEUE_ID_MAX], segname[QUEUE_ID_MAX];
	memcpy(id, qid.p, qid.len);
	id[qid.len] = '\0';
	memcpy(segname, seg.p, seg.len);
	segname[seg.len] = '\0';
	if (!queue_id_valid(id) || (segname[0] != '\0' && !queue_id_valid(segname))) {
		yz_log_warn("invalid queue id from smtpd: closing the connection");
		yz_ipc_conn_fail(c, "malformed request");
		return;
	}
	const char *err;
	if (queue_seg_note(q->store, id, segname, offset, &err) < 0)
		yz_log_warn("%s", err);
	(void)qmgr_learn(q, id, false);
	struct yz_ipc_msg m;
	yz_ipc_msg_init(&m, YZ_MSG_QUEUE_ACK, hdr->reqid);
	yz_ipc_conn_send(c, &m);
}

static void qmgr_on_close(struct yz_ipc_conn *c, const char *reason, void *arg)
{
	struct qmgr *q = arg;
	for (size_t i = 0; i < q->nclients; i++) {
		if (q->clients[i] == c) {
			q->clients[i] = q->clients[--q->nclients];
			break;
		}
	}
	yz_ipc_conn_free(&c);
}

static void qmgr_on_client(struct yz_service *svc, enum yz_role from, int fd)
{
	struct qmgr *q = yz_service_ctx(svc);
	struct yz_ipc_conn *c = yz_ipc_conn_new(q->loop, fd, QMGR_CLIENT_PAYLOAD_MAX, qmgr_on_msg,
						qmgr_on_close, q);
	if (c != NULL) {
		if (q->nclients == q->clients_cap) {
			q->clients_cap = q->clients_cap == 0 ? 4 : q->clients_cap * 2;
			q->clients = yz_realloc(q->clients, q->clients_cap * sizeof *q->clients);
		}
		q->clients[q->nclients++] = c;
	}
	/* A (re)started smtpd may have committed messages it never told us of. */
	qmgr_rescan(q);
}

void qmgr_maybe_exit(struct qmgr *q)
{
	if (!yz_service_stopping(q->svc))
		return;
	if (q->inflight == 0 && q->updates == NULL && !q->commit_scheduled)
		yz_service_exit(q->svc, 0);
}

/* Graceful stop: start nothing new, finish the attempts in flight and
 * record their results; what is left is resumed by the next generation. */
static void qmgr_on_stop(struct yz_service *svc)
{
	struct qmgr *q = yz_service_ctx(svc);
	yz_timer_del(q->loop, &q->wake);
	yz_timer_del(q->loop, &q->scan_timer);
	qmgr_maybe_exit(q);
}

static int qmgr_recover_cb(struct queue_msg *qm, void *ctx)
{
	struct qmgr *q = ctx;
	if (queue_msg_done(qm)) {
		const char *err;
		char id[QUEUE_ID_MAX];
		memcpy(id, qm->qid, sizeof id);
		queue_msg_free(&qm);
		(void)queue_msg_remove(q->store, id, &err);
		return 0;
	}
	return qmgr_adopt(q, qm, true);
}

static void qmgr_start(struct yz_loop *loop, void *arg)
{
	struct qmgr *q = arg;
	const char *err;
	if (queue_store_open(yz_cfg_str(q->cfg, YZ_P_QUEUE_DIRECTORY), &q->store, &err) < 0)
		yz_fatal("cannot open the queue %s: %s", yz_cfg_str(q->cfg, YZ_P_QUEUE_DIRECTORY), err);
	q->dir_link = yz_link_new(q->svc, YZ_ROLE_DIRECTORY);
	q->mbox_link = yz_link_new(q->svc, YZ_ROLE_MAILBOX);
	struct queue_recover_stats st;
	if (queue_recover(q->store, qmgr_recover_cb, q, &st, &err) < 0)
		yz_fatal("queue recovery failed: %s", err);
	yz_log_info("queue recovered: %zu messages, %zu uncommitted discarded, %zu corrupt moved aside",
		    st.loaded, st.incoming_removed, st.corrupt);
	qmgr_scan_timer(loop, q);
}

int queue_role_run(struct yz_config *cfg)
{
	struct qmgr q;
	memset(&q, 0, sizeof q);
	q.cfg = cfg;
	q.concurrency = (size_t)yz_cfg_int(cfg, YZ_P_LOCAL_DELIVERY_CONCURRENCY);
	const char *hn = yz_cfg_str(cfg, YZ_P_MYHOSTNAME);
	if (hn[0] != '\0')
		snprintf(q.hostname, sizeof q.hostname, "%s", hn);
	else if (gethostname(q.hostname, sizeof q.hostname - 1) < 0)
		snprintf(q.hostname, sizeof q.hostname, "localhost");
	static const struct yz_service_hooks hooks = {
		.on_client = qmgr_on_client,
		.on_stop = qmgr_on_stop,
	};
	q.svc = yz_service_new(YZ_ROLE_QUEUE, cfg, &hooks, &q);
	q.loop = yz_service_loop(q.svc);
	/* The spool is opened after the privilege drop (in yz_service_run). */
	yz_loop_defer(q.loop, qmgr_start, &q);
	int rc = yz_service_run(q.svc);
	yz_timer_del(q.loop, &q.wake);
	yz_timer_del(q.loop, &q.scan_timer);
	while (q.msgs != NULL)
		qmgr_forget(&q, q.msgs);
	while (q.nclients > 0)
		yz_ipc_conn_free(&q.clients[--q.nclients]);
	free(q.clients);
	free(q.by_id);
	yz_service_free(&q.svc);
	queue_store_close(&q.store);
	return rc;
}

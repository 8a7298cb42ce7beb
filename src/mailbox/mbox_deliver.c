/*
 * mbox_deliver.c: local delivery requests from the queue, made durable in
 * batches (group commit): every MBOX_DELIVER that arrives before the loop
 * next goes idle joins one maildir batch (its tmp file is written at once),
 * and the batch is committed with as few syncs as the store can manage;
 * each request is answered only after that commit, so the queue never marks
 * a recipient done before its file and directory entry are durable.
 * The Maildir folders seen are kept in the process's maildir_cache
 * (mb->dircache), so a delivery to a known account neither stats nor
 * creates its directories again.
 * Never: answers DELIVERED before maildir_batch_commit() returned.
 */
#include "mailbox/mbox_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/mem.h"
#include "store/mailbox/maildir.h"

#define MBOX_UNIQUE_MAX 96
#define MBOX_QID_MAX 64

struct mbox_pending {
	struct mbox_pending *next;
	struct yz_ipc_conn *conn;  /* NULL once the client went away */
	uint32_t reqid;
	int item;                  /* index in the batch */
};

static void mbox_reply(struct yz_ipc_conn *c, uint32_t reqid, enum yz_mbox_status st, const char *text)
{
	if (c == NULL)
		return;
	struct yz_ipc_msg m;
	yz_ipc_msg_init(&m, YZ_MSG_MBOX_DELIVER_REPLY, reqid);
	yz_ipc_put_u32(&m, (uint32_t)st);
	yz_ipc_put_str(&m, text != NULL ? text : "");
	yz_ipc_conn_send(c, &m);
}

static enum yz_mbox_status mbox_status_map(enum maildir_status st)
{
	switch (st) {
	case MAILDIR_OK: return YZ_MBOX_DELIVERED;
	case MAILDIR_DUPLICATE: return YZ_MBOX_DUPLICATE;
	case MAILDIR_OVER_QUOTA: return YZ_MBOX_OVER_QUOTA;
	case MAILDIR_PERMFAIL: return YZ_MBOX_PERMFAIL;
	case MAILDIR_TEMPFAIL: break;
	}
	return YZ_MBOX_TEMPFAIL;
}

/* Commit the batch being built, then answer each of its requests. */
static void mbox_commit(struct yz_loop *loop, void *arg)
{
	struct mbox *mb = arg;
	mb->commit_scheduled = false;
	struct maildir_batch *b = mb->batch;
	struct mbox_pending *list = mb->pending;
	mb->batch = NULL;
	mb->pending = NULL;
	mb->npending = 0;
	if (b == NULL)
		return;
	yz_log_debug("committing a batch of %d deliveries", maildir_batch_count(b));
	if (maildir_batch_commit(b) < 0)
		yz_log_warn("maildir commit failed: every delivery of the batch is deferred");
	while (list != NULL) {
		struct mbox_pending *p = list;
		list = p->next;
		const char *err = NULL;
		enum maildir_status st = maildir_batch_status(b, p->item, &err);
		const char *path = maildir_batch_path(b, p->item);
		mbox_reply(p->conn, p->reqid, mbox_status_map(st),
			   st == MAILDIR_OK || st == MAILDIR_DUPLICATE ? (path ? path : "") : err);
		free(p);
	}
	maildir_batch_free(&b);
	mbox_maybe_exit(mb);
}

void mbox_deliver_request(struct mbox *mb, struct yz_ipc_conn *c, uint32_t reqid,
			  struct yz_ipc_reader *r)
{
	struct yz_slice qid, rcpt, account, folder, header;
	uint32_t index;
	uint64_t quota, off, len;
	bool redelivery;
	int fd = -1;
	if (yz_ipc_get_str(r, MBOX_QID_MAX, &qid) < 0 || yz_ipc_get_u32(r, &index) < 0 ||
	    yz_ipc_get_str(r, YZ_IPC_ADDR_MAX, &rcpt) < 0 ||
	    yz_ipc_get_str(r, YZ_IPC_ADDR_MAX, &account) < 0 ||
	    yz_ipc_get_str(r, YZ_IPC_ADDR_MAX, &folder) < 0 || yz_ipc_get_u64(r, &quota) < 0 ||
	    yz_ipc_get_bool(r, &redelivery) < 0 ||
	    yz_ipc_get_str(r, YZ_IPC_HEADER_MAX, &header) < 0 || yz_ipc_get_fd(r, &fd) < 0 ||
	    yz_ipc_get_u64(r, &off) < 0 || yz_ipc_get_u64(r, &len) < 0 || yz_ipc_end(r) < 0 ||
	    off > (uint64_t)INT64_MAX || len > (uint64_t)SIZE_MAX) {
		if (fd >= 0)
			close(fd);
		yz_log_warn("malformed delivery request: closing the connection");
		yz_ipc_conn_fail(c, "malformed request");
		return;
	}
	char qidz[MBOX_QID_MAX + 1], acct[YZ_IPC_ADDR_MAX + 1], fold[YZ_IPC_ADDR_MAX + 1];
	memcpy(qidz, qid.p, qid.len);
	qidz[qid.len] = '\0';
	memcpy(acct, account.p, account.len);
	acct[account.len] = '\0';
	memcpy(fold, folder.p, folder.len);
	fold[folder.len] = '\0';
	char unique[MBOX_UNIQUE_MAX];
	int n = snprintf(unique, sizeof unique, "%s.R%u", qidz, index);
	if (n < 0 || (size_t)n >= sizeof unique || !maildir_unique_valid(unique)) {
		close(fd);
		mbox_reply(c, reqid, YZ_MBOX_PERMFAIL, "invalid queue id");
		return;
	}
	/* The batch validates the account and creates its Maildir on the first
	 * delivery; the process's cache spares the checks after that. */
	if (mb->batch != NULL && maildir_batch_count(mb->batch) >= MAILDIR_BATCH_MAX)
		mbox_commit(yz_service_loop(mb->svc), mb); /* full: commit it now */
	if (mb->batch == NULL) {
		if (mb->dircache == NULL)
			mb->dircache = maildir_cache_new(MAILDIR_CACHE_MAX);
		mb->batch = maildir_batch_new(mb->root, mb->hostname);
		maildir_batch_set_cache(mb->batch, mb->dircache);
	}
	int item = maildir_batch_add(mb->batch, acct, fold[0] ? fold : NULL, unique, redelivery,
				     header.p, header.len, fd, (off_t)off, (size_t)len, quota);
	close(fd);
	if (item < 0) {
		mbox_reply(c, reqid, YZ_MBOX_TEMPFAIL, "cannot add to the delivery batch");
		return;
	}
	struct mbox_pending *p = yz_calloc(1, sizeof *p);
	p->conn = c;
	p->reqid = reqid;
	p->item = item;
	p->next = mb->pending;
	mb->pending = p;
	mb->npending++;
	if (!mb->commit_scheduled) {
		mb->commit_scheduled = true;
		yz_loop_defer(yz_service_loop(mb->svc), mbox_commit, mb);
	}
}

void mbox_quota_request(struct mbox *mb, struct yz_ipc_conn *c, uint32_t reqid,
			struct yz_ipc_reader *r)
{
	struct yz_slice account;
	uint64_t quota, incoming;
	if (yz_ipc_get_str(r, YZ_IPC_ADDR_MAX, &account) < 0 || yz_ipc_get_u64(r, &quota) < 0 ||
	    yz_ipc_get_u64(r, &incoming) < 0 || yz_ipc_end(r) < 0) {
		yz_log_warn("malformed quota request: closing the connection");
		yz_ipc_conn_fail(c, "malformed request");
		return;
	}
	char acct[YZ_IPC_ADDR_MAX + 1];
	memcpy(acct, account.p, account.len);
	acct[account.len] = '\0';
	bool over = false, tempfail = false;
	unsigned long long bytes = 0, count = 0;
	char dir[PATH_MAX];
	if (quota > 0 && maildir_account_path(mb->root, acct, dir, sizeof dir) == 0) {
		struct stat st;
		if (stat(dir, &st) == 0) {
			if (maildir_quota_usage(dir, quota, &bytes, &count) < 0)
				tempfail = true;
			else
				over = bytes + incoming > quota;
		}
	}
	struct yz_ipc_msg m;
	yz_ipc_msg_init(&m, YZ_MSG_MBOX_QUOTA_REPLY, reqid);
	yz_ipc_put_bool(&m, over);
	yz_ipc_put_bool(&m, tempfail);
	yz_ipc_put_u64(&m, bytes);
	yz_ipc_conn_send(c, &m);
}

void mbox_forget_conn(struct mbox *mb, struct yz_ipc_conn *c)
{
	for (struct mbox_pending *p = mb->pending; p != NULL; p = p->next)
		if (p->conn == c)
			p->conn = NULL;
}

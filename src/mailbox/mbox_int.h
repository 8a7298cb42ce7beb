/*
 * mbox_int.h: the mailbox role's private state, shared by its files
 * (mbox_role.c: process and clients; mbox_deliver.c: batched delivery).
 */
#ifndef YZ_MBOX_INT_H
#define YZ_MBOX_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/ipc.h"
#include "lib/ipc_conn.h"
#include "lib/service.h"

struct mbox_pending;
struct pop3d;
struct maildir_batch;
struct maildir_cache;

struct mbox {
	struct yz_service *svc;
	struct yz_config *cfg;
	const char *root;          /* maildir_root */
	char hostname[256];
	size_t nclients;           /* IPC clients (queue, smtpd) */
	struct yz_link *dir_link;  /* authentication for the front-ends */
	struct pop3d *pop3d;
	struct maildir_batch *batch;  /* the batch being built, or NULL */
	struct mbox_pending *pending; /* its requests, newest first */
	size_t npending;
	bool commit_scheduled;
	struct maildir_cache *dircache; /* folders known to exist; outlives batches */
};

/* mbox_deliver.c */
void mbox_deliver_request(struct mbox *mb, struct yz_ipc_conn *c, uint32_t reqid,
			  struct yz_ipc_reader *r);
void mbox_quota_request(struct mbox *mb, struct yz_ipc_conn *c, uint32_t reqid,
			struct yz_ipc_reader *r);
void mbox_forget_conn(struct mbox *mb, struct yz_ipc_conn *c);
/* mbox_role.c */
void mbox_maybe_exit(struct mbox *mb);

#endif

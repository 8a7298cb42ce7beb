/*
 * mbox_role.c: the mailbox role process: IPC clients (queue, smtpd) and,
 * once they exist, the POP3/IMAP listeners. Runs as the vmail user: it is
 * the only role that can read or write the mail store.
 */
#include "mailbox/mailbox.h"
#include "mailbox/mbox_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/mem.h"
#include "pop3d/pop3d.h"
#include "store/mailbox/maildir.h"

#define MBOX_CLIENT_PAYLOAD_MAX (YZ_IPC_HEADER_MAX + 4096)

void mbox_maybe_exit(struct mbox *mb)
{
	if (yz_service_stopping(mb->svc) && mb->nclients == 0 && pop3d_sessions(mb->pop3d) == 0 &&
	    mb->batch == NULL)
		yz_service_exit(mb->svc, 0);
}

static void mbox_on_msg(struct yz_ipc_conn *c, const struct yz_ipc_hdr *hdr, struct yz_ipc_reader *r,
			void *arg)
{
	struct mbox *mb = arg;
	switch (hdr->type) {
	case YZ_MSG_MBOX_DELIVER:
		mbox_deliver_request(mb, c, hdr->reqid, r);
		return;
	case YZ_MSG_MBOX_QUOTA:
		mbox_quota_request(mb, c, hdr->reqid, r);
		return;
	default: {
		struct yz_ipc_msg m;
		yz_ipc_msg_init(&m, YZ_MSG_ERROR, hdr->reqid);
		yz_ipc_put_u32(&m, YZ_MSG_ERR_UNSUPPORTED);
		yz_ipc_put_str(&m, "unsupported request");
		yz_ipc_conn_send(c, &m);
		return;
	}
	}
}

static void mbox_on_close(struct yz_ipc_conn *c, const char *reason, void *arg)
{
	struct mbox *mb = arg;
	mbox_forget_conn(mb, c);
	yz_ipc_conn_free(&c);
	mb->nclients--;
	mbox_maybe_exit(mb);
}

static void mbox_on_client(struct yz_service *svc, enum yz_role from, int fd)
{
	struct mbox *mb = yz_service_ctx(svc);
	mb->nclients++;
	(void)yz_ipc_conn_new(yz_service_loop(svc), fd, MBOX_CLIENT_PAYLOAD_MAX, mbox_on_msg,
			      mbox_on_close, mb);
}

static void mbox_on_listener(struct yz_service *svc, const char *name, int fd)
{
	struct mbox *mb = yz_service_ctx(svc);
	if (strcmp(name, "pop3") == 0 || strcmp(name, "pop3s") == 0) {
		pop3d_listen(mb->pop3d, name, fd);
		return;
	}
	yz_log_warn("no front-end for listener %s in this build", name);
	close(fd);
}

static void mbox_on_stop(struct yz_service *svc)
{
	struct mbox *mb = yz_service_ctx(svc);
	pop3d_stop(mb->pop3d);
	mbox_maybe_exit(mb);
}

static void mbox_on_idle(void *arg)
{
	mbox_maybe_exit(arg);
}

int mailbox_role_run(struct yz_config *cfg)
{
	struct mbox mb;
	memset(&mb, 0, sizeof mb);
	mb.cfg = cfg;
	mb.root = yz_cfg_str(cfg, YZ_P_MAILDIR_ROOT);
	const char *hn = yz_cfg_str(cfg, YZ_P_MYHOSTNAME);
	if (hn[0] != '\0')
		snprintf(mb.hostname, sizeof mb.hostname, "%s", hn);
	else if (gethostname(mb.hostname, sizeof mb.hostname - 1) < 0)
		snprintf(mb.hostname, sizeof mb.hostname, "localhost");
	static const struct yz_service_hooks hooks = {
		.on_listener = mbox_on_listener,
		.on_client = mbox_on_client,
		.on_stop = mbox_on_stop,
	};
	mb.svc = yz_service_new(YZ_ROLE_MAILBOX, cfg, &hooks, &mb);
	mb.dir_link = yz_link_new(mb.svc, YZ_ROLE_DIRECTORY);
	/* Before yz_service_run: still root in production, so the TLS key is readable. */
	mb.pop3d = pop3d_new(mb.svc, mb.dir_link, mbox_on_idle, &mb);
	int rc = yz_service_run(mb.svc);
	pop3d_free(&mb.pop3d);
	yz_service_free(&mb.svc);
	maildir_batch_free(&mb.batch); /* normally NULL: committed before exit */
	maildir_cache_free(&mb.dircache);
	return rc;
}

/*
 * master_ctl.c: the control socket of `yizhan status|reload|stop`.
 * Only the owner of the run directory (root, or the dev-mode user) can open
 * it (mode 0600). Every frame is decoded strictly; anything else closes the
 * connection.
 */
#include "master/master_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/mem.h"
#include "lib/net.h"

#define CTL_CLIENTS_MAX 16

static size_t ctl_nclients;

static void ctl_reply(struct yz_ipc_conn *c, uint32_t reqid, enum yz_msg_type type, const char *text)
{
	struct yz_ipc_msg msg;
	yz_ipc_msg_init(&msg, type, reqid);
	yz_ipc_put_str(&msg, text);
	yz_ipc_conn_send(c, &msg);
}

static const char *proc_state(const struct master_proc *p)
{
	if (p->draining)
		return "draining";
	return p->ready ? "running" : "starting";
}

static void ctl_status(struct master *m, struct yz_ipc_conn *c, uint32_t reqid)
{
	uint64_t now = yz_now_ms();
	struct yz_ipc_msg msg;
	yz_ipc_msg_init(&msg, YZ_MSG_CTL_STATUS_REPLY, reqid);
	yz_ipc_put_str(&msg, YZ_VERSION);
	yz_ipc_put_u64(&msg, (uint64_t)getpid());
	yz_ipc_put_u64(&msg, (now - m->started_ms) / 1000);
	yz_ipc_put_bool(&msg, m->opts.dev);
	uint32_t n = 0;
	for (struct master_proc *p = m->procs; p != NULL; p = p->next)
		n++;
	/* Roles waiting for a restart are listed too, without a pid. */
	for (int r = 0; r < YZ_ROLE__COUNT; r++)
		if (m->slots[r].enabled && m->slots[r].current == NULL)
			n++;
	yz_ipc_put_u32(&msg, n);
	for (size_t i = 0; i < m->opts.nroles; i++) {
		enum yz_role role = m->opts.roles[i];
		struct master_slot *s = &m->slots[role];
		for (struct master_proc *p = m->procs; p != NULL; p = p->next) {
			if (p->role != role)
				continue;
			yz_ipc_put_str(&msg, yz_role_name(role));
			yz_ipc_put_u64(&msg, (uint64_t)p->pid);
			yz_ipc_put_u64(&msg, (now - p->started_ms) / 1000);
			yz_ipc_put_u32(&msg, s->restarts);
			yz_ipc_put_str(&msg, proc_state(p));
		}
		if (s->enabled && s->current == NULL) {
			yz_ipc_put_str(&msg, yz_role_name(role));
			yz_ipc_put_u64(&msg, 0);
			yz_ipc_put_u64(&msg, 0);
			yz_ipc_put_u32(&msg, s->restarts);
			yz_ipc_put_str(&msg, m->stopping ? "stopped" : "restarting");
		}
	}
	yz_ipc_conn_send(c, &msg);
}

static void ctl_on_msg(struct yz_ipc_conn *c, const struct yz_ipc_hdr *hdr,
		       struct yz_ipc_reader *r, void *arg)
{
	struct master *m = arg;
	const char *err;
	if (yz_ipc_end(r) < 0) {
		yz_ipc_conn_fail(c, "malformed request");
		return;
	}
	switch (hdr->type) {
	case YZ_MSG_CTL_STATUS:
		ctl_status(m, c, hdr->reqid);
		break;
	case YZ_MSG_CTL_RELOAD:
		if (master_reload(m, &err) < 0)
			ctl_reply(c, hdr->reqid, YZ_MSG_CTL_ERROR, err);
		else
			ctl_reply(c, hdr->reqid, YZ_MSG_CTL_OK, "reloading");
		break;
	case YZ_MSG_CTL_STOP:
		ctl_reply(c, hdr->reqid, YZ_MSG_CTL_OK, "stopping");
		master_stop(m, "yizhan stop");
		break;
	default:
		yz_log_warn("control socket: unexpected message type %u", (unsigned)hdr->type);
		yz_ipc_conn_fail(c, "malformed request");
		break;
	}
}

static void ctl_on_close(struct yz_ipc_conn *c, const char *reason, void *arg)
{
	yz_ipc_conn_free(&c);
	if (ctl_nclients > 0)
		ctl_nclients--;
}

static void ctl_on_accept(struct yz_loop *loop, int lfd, unsigned events, void *arg)
{
	struct master *m = arg;
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		if (ctl_nclients >= CTL_CLIENTS_MAX) {
			close(fd);
			continue;
		}
		ctl_nclients++;
		(void)yz_ipc_conn_new(m->loop, fd, MASTER_CTL_PAYLOAD_MAX, ctl_on_msg, ctl_on_close, m);
	}
}

int master_ctl_open(struct master *m, const char **error_r)
{
	m->ctl_lfd = yz_net_listen_unix(m->ctl_path, 0600, 16, error_r);
	return m->ctl_lfd < 0 ? -1 : 0;
}

void master_ctl_start(struct master *m)
{
	yz_loop_add_fd(m->loop, m->ctl_lfd, YZ_EV_READ, ctl_on_accept, m);
}

void master_ctl_close(struct master *m)
{
	if (m->ctl_lfd >= 0) {
		if (m->loop != NULL)
			yz_loop_del_fd(m->loop, m->ctl_lfd);
		close(m->ctl_lfd);
		m->ctl_lfd = -1;
		unlink(m->ctl_path);
	}
}

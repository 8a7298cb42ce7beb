/*
 * master_proc.c: role processes: spawn, control channel, connection
 * brokering, death and restart, graceful replacement.
 * Guarantees: each role process gets exactly its own listeners and nothing
 * else of the master's descriptors; a role is restarted after a delay that
 * doubles per quick death (master_restart_delay_min .. _max).
 */
#include "master/master_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/file.h"
#include "lib/log.h"
#include "lib/mem.h"

static void proc_on_msg(struct yz_ipc_conn *c, const struct yz_ipc_hdr *hdr,
			struct yz_ipc_reader *r, void *arg);
static void proc_on_close(struct yz_ipc_conn *c, const char *reason, void *arg);

/* The live, ready, non-draining process of a role, if any. */
static struct master_proc *master_current(struct master *m, enum yz_role role)
{
	struct master_proc *p = m->slots[role].current;
	return (p != NULL && p->ready && !p->draining) ? p : NULL;
}

/* Send every listener of the role to a freshly started process. */
static void proc_send_listeners(struct master *m, struct master_proc *p)
{
	for (size_t i = 0; i < m->nlisteners; i++) {
		struct master_listener *l = &m->listeners[i];
		if (l->role != p->role || l->fd < 0)
			continue;
		int fd = dup(l->fd);
		if (fd < 0) {
			yz_log_warn("dup listener %s: %s", l->name, strerror(errno));
			continue;
		}
		struct yz_ipc_msg msg;
		yz_ipc_msg_init(&msg, YZ_MSG_LISTENER, 0);
		yz_ipc_put_str(&msg, l->name);
		yz_ipc_put_fd(&msg, fd);
		yz_ipc_conn_send(p->ctl, &msg);
	}
	struct yz_ipc_msg done;
	yz_ipc_msg_init(&done, YZ_MSG_LISTENERS_DONE, 0);
	yz_ipc_conn_send(p->ctl, &done);
}

static void proc_connect_reply(struct master_proc *p, uint32_t reqid, int fd)
{
	struct yz_ipc_msg msg;
	yz_ipc_msg_init(&msg, YZ_MSG_CONNECT_REPLY, reqid);
	yz_ipc_put_bool(&msg, fd >= 0);
	if (fd >= 0)
		yz_ipc_put_fd(&msg, fd);
	yz_ipc_conn_send(p->ctl, &msg);
}

/* A role asks for a channel to another role: make a socketpair, give one end
 * to each. The target's NEW_CLIENT is sent before the asker's reply, so the
 * server knows the client before its first request can arrive. */
static void proc_broker(struct master *m, struct master_proc *p, uint32_t reqid, uint32_t target)
{
	struct master_proc *t = target < YZ_ROLE__COUNT ? master_current(m, (enum yz_role)target) : NULL;
	/* A draining client may still talk to a draining server of its own
	 * generation; a current client never gets a draining server, which
	 * would keep that server alive forever. It retries until the new one
	 * is ready. */
	if (t == NULL && p->draining && target < YZ_ROLE__COUNT) {
		for (struct master_proc *q = m->procs; q != NULL; q = q->next)
			if (q->role == target && q->ready && q->ctl != NULL)
				t = q;
	}
	int sv[2];
	if (t == NULL || t->ctl == NULL ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		proc_connect_reply(p, reqid, -1);
		return;
	}
	struct yz_ipc_msg msg;
	yz_ipc_msg_init(&msg, YZ_MSG_NEW_CLIENT, 0);
	yz_ipc_put_u32(&msg, (uint32_t)p->role);
	yz_ipc_put_fd(&msg, sv[0]);
	yz_ipc_conn_send(t->ctl, &msg);
	proc_connect_reply(p, reqid, sv[1]);
}

static void proc_on_msg(struct yz_ipc_conn *c, const struct yz_ipc_hdr *hdr,
			struct yz_ipc_reader *r, void *arg)
{
	struct master_proc *p = arg;
	struct master *m = p->m;
	uint32_t v;
	switch (hdr->type) {
	case YZ_MSG_ROLE_READY:
		if (yz_ipc_get_u32(r, &v) < 0 || yz_ipc_end(r) < 0 || v != p->role)
			break;
		p->ready = true;
		yz_log_debug("%s[%ld] ready", yz_role_name(p->role), (long)p->pid);
		return;
	case YZ_MSG_CONNECT:
		if (yz_ipc_get_u32(r, &v) < 0 || yz_ipc_end(r) < 0)
			break;
		proc_broker(m, p, hdr->reqid, v);
		return;
	default:
		break;
	}
	/* A role that sends garbage is broken or compromised: cut it off. */
	yz_log_warn("%s[%ld]: malformed control message type %u; stopping it",
		    yz_role_name(p->role), (long)p->pid, (unsigned)hdr->type);
	kill(p->pid, SIGKILL);
}

static void proc_on_close(struct yz_ipc_conn *c, const char *reason, void *arg)
{
	struct master_proc *p = arg;
	p->ctl = NULL;
	yz_ipc_conn_free(&c);
}

static struct master_proc *master_spawn(struct master *m, struct master_slot *s)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		yz_log_err("socketpair: %s", strerror(errno));
		return NULL;
	}
	const char *argv[12];
	size_t n = 0;
	argv[n++] = "yizhan";
	argv[n++] = "role";
	argv[n++] = yz_role_name(s->role);
	argv[n++] = "--config";
	argv[n++] = m->opts.config_path;
	if (m->opts.state_dir != NULL) {
		argv[n++] = "--state-dir";
		argv[n++] = m->opts.state_dir;
	}
	if (m->opts.dev)
		argv[n++] = "--dev";
	if (m->opts.daemonize)
		argv[n++] = "--syslog";
	argv[n] = NULL;

	pid_t pid = fork();
	if (pid < 0) {
		yz_log_err("fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return NULL;
	}
	if (pid == 0) {
		/* Child: control channel on fd 3, nothing else inherited. */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (sv[1] == 3) {
			(void)yz_fd_set_cloexec(3, false);
		} else if (dup2(sv[1], 3) < 0) {
			_exit(127);
		}
		/* Belt and braces: no descriptor of the master leaks into a role. */
		(void)close_range(4, ~0U, 0);
		execv(m->self_exe, (char *const *)argv);
		_exit(127);
	}
	close(sv[1]);
	struct master_proc *p = yz_calloc(1, sizeof *p);
	p->m = m;
	p->role = s->role;
	p->pid = pid;
	p->started_ms = yz_now_ms();
	p->generation = m->generation;
	p->ctl = yz_ipc_conn_new(m->loop, sv[0], MASTER_ROLE_PAYLOAD_MAX, proc_on_msg, proc_on_close, p);
	p->next = m->procs;
	m->procs = p;
	yz_log_info("started %s[%ld]", yz_role_name(s->role), (long)pid);
	proc_send_listeners(m, p);
	return p;
}

static void slot_restart_timer(struct yz_loop *loop, void *arg)
{
	struct master_slot *s = arg;
	struct master *m = s->m;
	s->restart_timer = NULL;
	if (!m->stopping)
		master_slot_start(m, s);
}

void master_slot_start(struct master *m, struct master_slot *s)
{
	if (m->stopping || !s->enabled || s->current != NULL)
		return;
	/* Singleton roles (the queue owns its spool) never overlap. */
	if (s->role == YZ_ROLE_QUEUE) {
		for (struct master_proc *p = m->procs; p != NULL; p = p->next) {
			if (p->role == s->role) {
				s->start_when_old_exits = true;
				return;
			}
		}
	}
	s->start_when_old_exits = false;
	s->current = master_spawn(m, s);
	if (s->current == NULL) {
		uint64_t d = yz_cfg_time_ms(m->cfg, YZ_P_MASTER_RESTART_DELAY_MIN);
		s->restart_timer = yz_timer_add(m->loop, d, slot_restart_timer, s);
	}
}

static void proc_kill_timer(struct yz_loop *loop, void *arg)
{
	struct master_proc *p = arg;
	p->kill_timer = NULL;
	yz_log_warn("%s[%ld] did not finish in time; killing it", yz_role_name(p->role), (long)p->pid);
	kill(p->pid, SIGKILL);
}

void master_proc_stop(struct master *m, struct master_proc *p)
{
	if (p->draining)
		return;
	p->draining = true;
	/* The role exits by itself at master_shutdown_timeout; this is the
	 * backstop for one that cannot. */
	p->kill_timer = yz_timer_add(m->loop, yz_cfg_time_ms(m->cfg, YZ_P_MASTER_SHUTDOWN_TIMEOUT) + 5000,
				     proc_kill_timer, p);
	if (p->ctl != NULL) {
		struct yz_ipc_msg msg;
		yz_ipc_msg_init(&msg, YZ_MSG_ROLE_STOP, 0);
		yz_ipc_conn_send(p->ctl, &msg);
	} else {
		kill(p->pid, SIGTERM);
	}
}

/* Reload: start the new generation, then let the old one drain. */
void master_slot_replace(struct master *m, struct master_slot *s)
{
	struct master_proc *old = s->current;
	s->current = NULL;
	if (old != NULL)
		master_proc_stop(m, old);
	yz_timer_del(m->loop, &s->restart_timer);
	s->delay_ms = 0;
	master_slot_start(m, s);
}

static void master_proc_gone(struct master *m, struct master_proc *p, int status)
{
	struct master_slot *s = &m->slots[p->role];
	char how[64];
	if (WIFSIGNALED(status))
		snprintf(how, sizeof how, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(how, sizeof how, "exit status %d", WEXITSTATUS(status));

	for (struct master_proc **pp = &m->procs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	if (p->ctl != NULL)
		yz_ipc_conn_free(&p->ctl);
	yz_timer_del(m->loop, &p->kill_timer);

	if (s->current == p) {
		s->current = NULL;
		uint64_t lived = yz_now_ms() - p->started_ms;
		uint64_t dmin = yz_cfg_time_ms(m->cfg, YZ_P_MASTER_RESTART_DELAY_MIN);
		uint64_t dmax = yz_cfg_time_ms(m->cfg, YZ_P_MASTER_RESTART_DELAY_MAX);
		if (lived >= MASTER_HEALTHY_MS || s->delay_ms == 0)
			s->delay_ms = dmin;
		else
			s->delay_ms = s->delay_ms * 2 > dmax ? dmax : s->delay_ms * 2;
		if (!m->stopping) {
			s->restarts++;
			yz_log_warn("%s[%ld] died (%s); restarting in %llu ms", yz_role_name(p->role),
				    (long)p->pid, how, (unsigned long long)s->delay_ms);
			s->restart_timer = yz_timer_add(m->loop, s->delay_ms, slot_restart_timer, s);
		}
	} else {
		yz_log_info("%s[%ld] finished (%s)", yz_role_name(p->role), (long)p->pid, how);
		if (s->start_when_old_exits)
			master_slot_start(m, s);
	}
	free(p);
	master_check_done(m);
}

void master_reap(struct master *m)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			return;
		for (struct master_proc *p = m->procs; p != NULL; p = p->next) {
			if (p->pid == pid) {
				master_proc_gone(m, p, status);
				break;
			}
		}
	}
}

/*
 * service.c: the shared runtime of role processes (see service.h).
 * Guarantees: a role never blocks on the master; a lost control channel
 * means the master is gone, and the role stops gracefully. Links to other
 * roles reconnect with a growing delay, and requests made while a link is
 * down fail at once so that callers answer with a temporary error.
 */
#include "lib/service.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/mem.h"
#include "lib/priv.h"

#define SERVICE_CTL_MAX (64 * 1024)
#define LINK_PAYLOAD_MAX (YZ_IPC_STATUS_MAX)
#define LINK_RETRY_MIN_MS 100
#define LINK_RETRY_MAX_MS 5000
#define SERVICE_LINKS_MAX 8
/* Requests held while a link connects; more fail at once (the caller answers 4xx). */
#define LINK_WAITING_MAX 4096
/* How long a request waits for a link that is down (the peer role starting
 * or restarting) before it fails; and how often that is checked. */
#define LINK_HOLD_MS 3000
#define LINK_HOLD_CHECK_MS 100

/* A request made while the link was being (re)established. */
struct link_waiting {
	struct link_waiting *next;
	struct yz_ipc_msg msg;   /* moved in: owns its buffer and fds */
	uint64_t timeout_ms;
	uint64_t deadline_ms;    /* fail it if the link is not up by then */
	yz_ipc_reply_cb *cb;
	void *arg;
};

struct yz_link {
	struct yz_service *svc;
	struct link_waiting *waiting, *waiting_tail;
	size_t nwaiting;
	enum yz_role target;
	struct yz_ipc_conn *conn;
	bool connecting;
	uint64_t retry_ms;
	struct yz_timer *retry_timer;
	struct yz_timer *hold_timer; /* expires waiting requests */
};

struct yz_service {
	enum yz_role role;
	struct yz_loop *loop;
	struct yz_config *cfg;
	struct yz_service_hooks hooks;
	void *ctx;
	struct yz_ipc_conn *ctl;
	bool stopping;
	struct yz_timer *stop_timer;
	int exit_status;
	struct yz_link *links[SERVICE_LINKS_MAX];
	size_t nlinks;
};

static void link_connect(struct yz_link *link);

/* A graceful stop has a deadline: master_shutdown_timeout. What is still
 * open then is cut (every store is crash-safe, so this loses nothing that
 * was acknowledged). */
static void service_stop_deadline(struct yz_loop *loop, void *arg)
{
	struct yz_service *svc = arg;
	svc->stop_timer = NULL;
	yz_log_warn("still busy after master_shutdown_timeout; exiting now");
	yz_service_exit(svc, 0);
}

static void service_begin_stop(struct yz_service *svc, const char *why)
{
	if (svc->stopping)
		return;
	svc->stopping = true;
	yz_log_info("stopping (%s)", why);
	svc->stop_timer = yz_timer_add(svc->loop, yz_cfg_time_ms(svc->cfg, YZ_P_MASTER_SHUTDOWN_TIMEOUT),
				       service_stop_deadline, svc);
	if (svc->hooks.on_stop != NULL)
		svc->hooks.on_stop(svc);
	else
		yz_service_exit(svc, 0);
}

static void service_on_signal(struct yz_loop *loop, int signo, void *arg)
{
	struct yz_service *svc = arg;
	service_begin_stop(svc, signo == SIGTERM ? "SIGTERM" : "signal");
}

/* CONNECT_REPLY for a link: the fd is the new channel, or the peer is down. */
static void link_on_connect_reply(struct yz_ipc_conn *c, const struct yz_ipc_hdr *hdr,
				  struct yz_ipc_reader *r, void *arg);

static void link_on_msg(struct yz_ipc_conn *c, const struct yz_ipc_hdr *hdr,
			struct yz_ipc_reader *r, void *arg)
{
	struct yz_link *link = arg;
	/* Peers only answer our requests; anything unsolicited is dropped. */
	yz_log_warn("unexpected message type %u from %s", (unsigned)hdr->type,
		    yz_role_name(link->target));
}

static void link_retry_cb(struct yz_loop *loop, void *arg)
{
	struct yz_link *link = arg;
	link->retry_timer = NULL;
	link_connect(link);
}

static void link_schedule_retry(struct yz_link *link)
{
	if (link->svc->stopping && link->target != YZ_ROLE_QUEUE)
		return;
	if (link->retry_timer != NULL)
		return;
	link->retry_ms = link->retry_ms ? link->retry_ms * 2 : LINK_RETRY_MIN_MS;
	if (link->retry_ms > LINK_RETRY_MAX_MS)
		link->retry_ms = LINK_RETRY_MAX_MS;
	/* Requests are waiting: keep trying at the shortest delay. */
	if (link->nwaiting > 0)
		link->retry_ms = LINK_RETRY_MIN_MS;
	link->retry_timer = yz_timer_add(link->svc->loop, link->retry_ms, link_retry_cb, link);
}

/* Send what waited for the connection, or fail it all. */
static void link_flush_waiting(struct yz_link *link, bool up)
{
	struct link_waiting *w = link->waiting;
	link->waiting = link->waiting_tail = NULL;
	link->nwaiting = 0;
	while (w != NULL) {
		struct link_waiting *next = w->next;
		if (up && link->conn != NULL)
			(void)yz_ipc_conn_request(link->conn, &w->msg, w->timeout_ms, w->cb, w->arg);
		else {
			yz_ipc_msg_free(&w->msg);
			w->cb(NULL, NULL, NULL, w->arg);
		}
		free(w);
		w = next;
	}
}

/* Fail the waiting requests whose hold is over; check again while any wait. */
static void link_hold_cb(struct yz_loop *loop, void *arg)
{
	struct yz_link *link = arg;
	link->hold_timer = NULL;
	uint64_t now = yz_now_ms();
	struct link_waiting **pp = &link->waiting, *last = NULL;
	while (*pp != NULL) {
		struct link_waiting *w = *pp;
		if (w->deadline_ms > now) {
			last = w;
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		link->nwaiting--;
		yz_ipc_msg_free(&w->msg);
		w->cb(NULL, NULL, NULL, w->arg);
		free(w);
	}
	link->waiting_tail = last;
	if (link->waiting != NULL)
		link->hold_timer = yz_timer_add(link->svc->loop, LINK_HOLD_CHECK_MS, link_hold_cb, link);
}

static void link_on_close(struct yz_ipc_conn *c, const char *reason, void *arg)
{
	struct yz_link *link = arg;
	yz_log_info("link to %s closed: %s", yz_role_name(link->target), reason);
	link->conn = NULL;
	yz_ipc_conn_free(&c); /* the owner frees a closed conn (ipc_conn.h) */
	link_schedule_retry(link);
}

static void link_on_connect_reply(struct yz_ipc_conn *c, const struct yz_ipc_hdr *hdr,
				  struct yz_ipc_reader *r, void *arg)
{
	struct yz_link *link = arg;
	link->connecting = false;
	bool ok = false;
	int fd = -1;
	if (r == NULL || hdr->type != YZ_MSG_CONNECT_REPLY ||
	    yz_ipc_get_bool(r, &ok) < 0 || (ok && yz_ipc_get_fd(r, &fd) < 0) ||
	    yz_ipc_end(r) < 0) {
		if (fd >= 0)
			close(fd);
		link_schedule_retry(link); /* waiting requests wait for their hold */
		return;
	}
	if (!ok) {
		link_schedule_retry(link);
		return;
	}
	link->conn = yz_ipc_conn_new(link->svc->loop, fd, LINK_PAYLOAD_MAX, link_on_msg,
				     link_on_close, link);
	link->retry_ms = 0;
	yz_timer_del(link->svc->loop, &link->hold_timer);
	link_flush_waiting(link, true);
}

static void link_connect(struct yz_link *link)
{
	struct yz_service *svc = link->svc;
	if (link->conn != NULL || link->connecting || svc->ctl == NULL)
		return;
	struct yz_ipc_msg m;
	yz_ipc_msg_init(&m, YZ_MSG_CONNECT, 0);
	yz_ipc_put_u32(&m, (uint32_t)link->target);
	link->connecting = true;
	if (yz_ipc_conn_request(svc->ctl, &m, 10000, link_on_connect_reply, link) < 0) {
		link->connecting = false;
		link_schedule_retry(link);
	}
}

struct yz_link *yz_link_new(struct yz_service *svc, enum yz_role target)
{
	if (svc->nlinks >= SERVICE_LINKS_MAX)
		yz_panic("too many links");
	struct yz_link *link = yz_calloc(1, sizeof *link);
	link->svc = svc;
	link->target = target;
	svc->links[svc->nlinks++] = link;
	link_connect(link);
	return link;
}

void yz_link_free(struct yz_link **linkp)
{
	struct yz_link *link = *linkp;
	if (link == NULL)
		return;
	struct yz_service *svc = link->svc;
	for (size_t i = 0; i < svc->nlinks; i++) {
		if (svc->links[i] == link) {
			svc->links[i] = svc->links[--svc->nlinks];
			break;
		}
	}
	yz_timer_del(svc->loop, &link->retry_timer);
	yz_timer_del(svc->loop, &link->hold_timer);
	link_flush_waiting(link, false);
	if (link->conn != NULL)
		yz_ipc_conn_free(&link->conn);
	free(link);
	*linkp = NULL;
}

bool yz_link_up(const struct yz_link *link)
{
	return link->conn != NULL;
}

uint32_t yz_link_next_id(struct yz_link *link)
{
	return link->conn != NULL ? yz_ipc_conn_next_id(link->conn) : 1;
}

int yz_link_request(struct yz_link *link, struct yz_ipc_msg *m, uint64_t timeout_ms,
		    yz_ipc_reply_cb *cb, void *arg)
{
	if (link->conn == NULL) {
		/* The peer is starting or restarting: hold the request for up to
		 * LINK_HOLD_MS (less if its own timeout is shorter) rather than
		 * fail it at once; the caller's callback gets NULLs if the link
		 * is not up by then. */
		if (link->nwaiting >= LINK_WAITING_MAX) {
			yz_ipc_msg_free(m);
			return -1;
		}
		struct link_waiting *w = yz_calloc(1, sizeof *w);
		w->msg = *m;
		memset(m, 0, sizeof *m);
		w->timeout_ms = timeout_ms;
		uint64_t hold = timeout_ms != 0 && timeout_ms < LINK_HOLD_MS ? timeout_ms : LINK_HOLD_MS;
		w->deadline_ms = yz_now_ms() + hold;
		w->cb = cb;
		w->arg = arg;
		if (link->waiting_tail != NULL)
			link->waiting_tail->next = w;
		else
			link->waiting = w;
		link->waiting_tail = w;
		link->nwaiting++;
		if (link->hold_timer == NULL)
			link->hold_timer = yz_timer_add(link->svc->loop, LINK_HOLD_CHECK_MS, link_hold_cb, link);
		link_connect(link); /* now, not at the end of a long retry delay */
		return 0;
	}
	return yz_ipc_conn_request(link->conn, m, timeout_ms, cb, arg);
}

/* Frames from the master on the control channel. */
static void ctl_on_msg(struct yz_ipc_conn *c, const struct yz_ipc_hdr *hdr,
		       struct yz_ipc_reader *r, void *arg)
{
	struct yz_service *svc = arg;
	switch (hdr->type) {
	case YZ_MSG_LISTENER: {
		struct yz_slice name;
		int fd = -1;
		if (yz_ipc_get_str(r, 64, &name) < 0 || yz_ipc_get_fd(r, &fd) < 0 ||
		    yz_ipc_end(r) < 0) {
			if (fd >= 0)
				close(fd);
			break;
		}
		char nm[65];
		memcpy(nm, name.p, name.len);
		nm[name.len] = '\0';
		if (svc->hooks.on_listener != NULL && !svc->stopping)
			svc->hooks.on_listener(svc, nm, fd);
		else
			close(fd);
		return;
	}
	case YZ_MSG_LISTENERS_DONE:
		if (yz_ipc_end(r) == 0) {
			if (svc->hooks.on_listeners_done != NULL)
				svc->hooks.on_listeners_done(svc);
			return;
		}
		break;
	case YZ_MSG_NEW_CLIENT: {
		uint32_t from;
		int fd = -1;
		if (yz_ipc_get_u32(r, &from) < 0 || yz_ipc_get_fd(r, &fd) < 0 ||
		    yz_ipc_end(r) < 0 || from >= YZ_ROLE__COUNT) {
			if (fd >= 0)
				close(fd);
			break;
		}
		if (svc->hooks.on_client != NULL)
			svc->hooks.on_client(svc, (enum yz_role)from, fd);
		else
			close(fd);
		return;
	}
	case YZ_MSG_ROLE_STOP:
		service_begin_stop(svc, "master asked");
		return;
	default:
		break;
	}
	yz_log_warn("malformed or unexpected control message type %u", (unsigned)hdr->type);
}

static void ctl_on_close(struct yz_ipc_conn *c, const char *reason, void *arg)
{
	struct yz_service *svc = arg;
	svc->ctl = NULL;
	yz_ipc_conn_free(&c);
	service_begin_stop(svc, "master went away");
}

struct yz_service *yz_service_new(enum yz_role role, struct yz_config *cfg,
				  const struct yz_service_hooks *hooks, void *ctx)
{
	struct yz_service *svc = yz_calloc(1, sizeof *svc);
	svc->role = role;
	svc->cfg = cfg;
	svc->hooks = *hooks;
	svc->ctx = ctx;
	svc->loop = yz_loop_new();
	signal(SIGPIPE, SIG_IGN);
	yz_loop_add_signal(svc->loop, SIGTERM, service_on_signal, svc);
	yz_loop_add_signal(svc->loop, SIGINT, service_on_signal, svc);
	svc->ctl = yz_ipc_conn_new(svc->loop, YZ_SERVICE_CTL_FD, SERVICE_CTL_MAX, ctl_on_msg,
				   ctl_on_close, svc);
	return svc;
}

struct yz_loop *yz_service_loop(struct yz_service *svc)
{
	return svc->loop;
}

struct yz_config *yz_service_config(struct yz_service *svc)
{
	return svc->cfg;
}

void *yz_service_ctx(struct yz_service *svc)
{
	return svc->ctx;
}

bool yz_service_stopping(const struct yz_service *svc)
{
	return svc->stopping;
}

/* Production: become the role's unprivileged user before serving. Whatever
 * needs root (reading the TLS key) was done before yz_service_run(). */
static void service_drop_privileges(struct yz_service *svc)
{
	if (yz_config_dev_mode(svc->cfg) || geteuid() != 0)
		return;
	const char *user = yz_cfg_str(svc->cfg, svc->role == YZ_ROLE_MAILBOX ? YZ_P_VMAIL_USER
									   : YZ_P_YIZHAN_USER);
	uid_t uid;
	gid_t gid;
	const char *err;
	if (yz_priv_lookup(user, &uid, &gid, &err) < 0)
		yz_fatal("user %s: %s", user, err);
	if (yz_priv_drop(uid, gid, NULL, &err) < 0)
		yz_fatal("cannot drop privileges to %s: %s", user, err);
}

int yz_service_run(struct yz_service *svc)
{
	service_drop_privileges(svc);
	if (svc->ctl != NULL) {
		struct yz_ipc_msg m;
		yz_ipc_msg_init(&m, YZ_MSG_ROLE_READY, 0);
		yz_ipc_put_u32(&m, (uint32_t)svc->role);
		yz_ipc_conn_send(svc->ctl, &m);
	}
	yz_loop_run(svc->loop);
	return svc->exit_status;
}

void yz_service_exit(struct yz_service *svc, int status)
{
	svc->exit_status = status;
	yz_loop_stop(svc->loop);
}

void yz_service_free(struct yz_service **svcp)
{
	struct yz_service *svc = *svcp;
	if (svc == NULL)
		return;
	yz_timer_del(svc->loop, &svc->stop_timer);
	while (svc->nlinks > 0) {
		struct yz_link *link = svc->links[0];
		yz_link_free(&link);
	}
	if (svc->ctl != NULL)
		yz_ipc_conn_free(&svc->ctl);
	yz_loop_free(&svc->loop);
	free(svc);
	*svcp = NULL;
}

/*
 * smtpd.c: the smtpd role: settings, listeners ("smtp", "submission",
 * "submissions" from the master), accepting connections, links to the
 * directory, queue and mailbox roles, and the graceful stop.
 *
 * Graceful stop (on_stop): the listeners close at once; open sessions may
 * finish (and still send mail); the role exits when the last one is gone,
 * or shortly before master_shutdown_timeout (SMTPD_STOP_GRACE_MS earlier,
 * since the service runtime exits at that deadline), when the remaining
 * ones get 421 4.3.2.
 * Pending commits are completed before exit, so no answered message is
 * lost and no unanswered message is half-written.
 * Guarantees: every limit comes from the configuration, read once here.
 * Never: block (no DNS, no synchronous IPC), parse anything the master did
 * not hand over, touch files other than the queue's incoming/ and active/.
 */
#include "smtpd/smtpd.h"
#include "smtpd/smtpd_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/file.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/mem.h"
#include "lib/net.h"
#include "lib/service.h"
#include "lib/tls.h"

/* Connections taken from one listener per readiness event (fairness). */
#define SMTPD_ACCEPT_BURST 64

/* An unsigned setting from an INT parameter (negative: 0). */
static unsigned cfg_uint(const struct yz_config *cfg, enum yz_param_id id)
{
	long long v = yz_cfg_int(cfg, id);

	if (v < 0)
		return 0;
	if ((unsigned long long)v > 0xffffffffULL)
		return 0xffffffffu;
	return (unsigned)v;
}

/* Load every setting from the configuration. */
void smtpd_settings_load(struct smtpd_settings *set, const struct yz_config *cfg)
{
	const char *host = yz_cfg_str(cfg, YZ_P_MYHOSTNAME);
	const char *banner = yz_cfg_str(cfg, YZ_P_SMTPD_BANNER);
	struct yz_slice b;

	memset(set, 0, sizeof(*set));
	if (host == NULL || host[0] == '\0') {
		if (gethostname(set->hostname, sizeof(set->hostname) - 1) < 0 ||
		    set->hostname[0] == '\0')
			snprintf(set->hostname, sizeof(set->hostname), "localhost");
		set->hostname[sizeof(set->hostname) - 1] = '\0';
	} else {
		snprintf(set->hostname, sizeof(set->hostname), "%s", host);
	}
	/* With an empty myhostname, "$myhostname ESMTP yizhan" expands to
	 * " ESMTP yizhan": the host name we found goes in front. */
	b = yz_slice_trim(yz_slice_from_str(banner != NULL ? banner : ""));
	if (b.len == 0)
		snprintf(set->banner, sizeof(set->banner), "%s ESMTP yizhan", set->hostname);
	else if (banner[0] == ' ' || banner[0] == '\t')
		snprintf(set->banner, sizeof(set->banner), "%s %.*s", set->hostname, (int)b.len, b.p);
	else
		snprintf(set->banner, sizeof(set->banner), "%.*s", (int)b.len, b.p);
	set->command_line_limit = (size_t)yz_cfg_size(cfg, YZ_P_SMTPD_COMMAND_LINE_LIMIT);
	set->text_line_limit = (size_t)yz_cfg_size(cfg, YZ_P_SMTPD_TEXT_LINE_LIMIT);
	set->message_size_limit = yz_cfg_size(cfg, YZ_P_MESSAGE_SIZE_LIMIT);
	set->recipient_limit = cfg_uint(cfg, YZ_P_SMTPD_RECIPIENT_LIMIT);
	set->connection_limit = cfg_uint(cfg, YZ_P_SMTPD_CONNECTION_LIMIT);
	set->client_connection_limit = cfg_uint(cfg, YZ_P_SMTPD_CLIENT_CONNECTION_COUNT_LIMIT);
	set->hard_error_limit = cfg_uint(cfg, YZ_P_SMTPD_HARD_ERROR_LIMIT);
	set->soft_error_limit = cfg_uint(cfg, YZ_P_SMTPD_SOFT_ERROR_LIMIT);
	set->hopcount_limit = cfg_uint(cfg, YZ_P_HOPCOUNT_LIMIT);
	set->max_auth_failures = cfg_uint(cfg, YZ_P_SMTPD_MAX_AUTH_FAILURES);
	set->minfree_multiple = cfg_uint(cfg, YZ_P_QUEUE_MINFREE_MULTIPLE);
	set->error_sleep_ms = yz_cfg_time_ms(cfg, YZ_P_SMTPD_ERROR_SLEEP_TIME);
	set->timeout_ms = yz_cfg_time_ms(cfg, YZ_P_SMTPD_TIMEOUT);
	set->data_timeout_ms = yz_cfg_time_ms(cfg, YZ_P_SMTPD_DATA_TIMEOUT);
	set->greet_pause_ms = yz_cfg_time_ms(cfg, YZ_P_SMTPD_GREET_PAUSE);
	set->group_commit_ms = yz_cfg_time_ms(cfg, YZ_P_QUEUE_GROUP_COMMIT_WINDOW);
	set->shutdown_timeout_ms = yz_cfg_time_ms(cfg, YZ_P_MASTER_SHUTDOWN_TIMEOUT);
	set->auth_over_plaintext = yz_cfg_bool(cfg, YZ_P_SMTPD_AUTH_OVER_PLAINTEXT);
	set->sender_login_match = yz_cfg_bool(cfg, YZ_P_SMTPD_SENDER_LOGIN_MATCH);
	set->over_quota_permanent = yz_cfg_bool(cfg, YZ_P_SMTPD_OVER_QUOTA_PERMANENT);
	set->smtputf8 = yz_cfg_bool(cfg, YZ_P_SMTPUTF8_ENABLE);
}

/* Leave the loop (deferred, so no caller's frame is left dangling). */
static void server_exit_cb(struct yz_loop *loop, void *arg)
{
	struct smtpd_server *srv = arg;

	smtpd_queue_commit_now(srv);
	yz_service_exit(srv->svc, 0);
}

/* Exit once, when stopping and nothing is left. */
static void server_maybe_exit(struct smtpd_server *srv)
{
	if (!srv->stopping || srv->nsessions > 0 || srv->exiting)
		return;
	srv->exiting = true;
	yz_timer_del(srv->loop, &srv->stop_timer);
	yz_timer_del(srv->loop, &srv->grace_timer);
	yz_loop_defer(srv->loop, server_exit_cb, srv);
}

/* A session closed. */
void smtpd_server_session_gone(struct smtpd_server *srv)
{
	server_maybe_exit(srv);
}

/* Accept what is waiting on a listener. */
static void server_accept(struct yz_loop *loop, int fd, unsigned events, void *arg)
{
	struct smtpd_listener *l = arg;
	int i;

	for (i = 0; i < SMTPD_ACCEPT_BURST; i++) {
		char ip[SMTPD_IP_MAX];
		unsigned port = 0;
		int cfd = yz_net_accept(fd, ip, sizeof(ip), &port);

		if (cfd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				yz_log_warn("accept on %s: %s", l->name, strerror(errno));
			return;
		}
		smtpd_session_start(l->srv, cfd, ip, port, l->kind);
	}
}

/* A listening socket from the master. */
static void server_on_listener(struct yz_service *svc, const char *name, int fd)
{
	struct smtpd_server *srv = yz_service_ctx(svc);
	struct smtpd_listener *l;
	enum smtpd_port_kind kind;

	if (strcmp(name, "smtp") == 0) {
		kind = SMTPD_PORT_SMTP;
	} else if (strcmp(name, "submission") == 0) {
		kind = SMTPD_PORT_SUBMISSION;
	} else if (strcmp(name, "submissions") == 0) {
		kind = SMTPD_PORT_SUBMISSIONS;
	} else {
		yz_log_warn("ignoring unknown listener \"%s\"", name);
		close(fd);
		return;
	}
	if (srv->nlisteners >= SMTPD_LISTENERS_MAX) {
		yz_log_warn("too many listeners; closing \"%s\"", name);
		close(fd);
		return;
	}
	l = &srv->listeners[srv->nlisteners++];
	l->srv = srv;
	l->fd = fd;
	l->kind = kind;
	l->active = false;
	snprintf(l->name, sizeof(l->name), "%s", name);
	(void)yz_fd_set_nonblock(fd, true);
}

/* Every listener arrived: start serving. */
static void server_on_listeners_done(struct yz_service *svc)
{
	struct smtpd_server *srv = yz_service_ctx(svc);
	size_t i;

	for (i = 0; i < srv->nlisteners; i++) {
		struct smtpd_listener *l = &srv->listeners[i];

		if (l->active || l->fd < 0)
			continue;
		if (yz_loop_add_fd(srv->loop, l->fd, YZ_EV_READ, server_accept, l) < 0) {
			yz_log_err("cannot watch listener %s: %s", l->name, strerror(errno));
			continue;
		}
		l->active = true;
	}
	yz_log_info("serving %zu listener(s)", srv->nlisteners);
}

/* No role connects to smtpd: refuse. */
static void server_on_client(struct yz_service *svc, enum yz_role from, int fd)
{
	yz_log_warn("unexpected connection from role %s", yz_role_name(from));
	close(fd);
}

/* master_shutdown_timeout passed: close whatever is still open. */
static void server_grace_done(struct yz_loop *loop, void *arg)
{
	struct smtpd_server *srv = arg;

	srv->grace_timer = NULL;
	if (!srv->exiting) {
		srv->exiting = true;
		yz_loop_defer(srv->loop, server_exit_cb, srv);
	}
}

/* master_shutdown_timeout passed: 421 to the remaining sessions. */
static void server_stop_timeout(struct yz_loop *loop, void *arg)
{
	struct smtpd_server *srv = arg;

	srv->stop_timer = NULL;
	yz_log_info("shutdown timeout: closing %zu session(s)", srv->nsessions);
	smtpd_queue_commit_now(srv);
	smtpd_sessions_shutdown(srv);
	/* The 421s are flushing; leave anyway after a short grace. */
	if (!srv->exiting)
		srv->grace_timer = yz_timer_add(srv->loop, SMTPD_STOP_GRACE_MS, server_grace_done, srv);
}

/* Graceful stop: close the listeners, let sessions finish. */
static void server_on_stop(struct yz_service *svc)
{
	struct smtpd_server *srv = yz_service_ctx(svc);
	size_t i;

	if (srv->stopping)
		return;
	srv->stopping = true;
	for (i = 0; i < srv->nlisteners; i++) {
		struct smtpd_listener *l = &srv->listeners[i];

		if (l->active)
			yz_loop_del_fd(srv->loop, l->fd);
		if (l->fd >= 0)
			close(l->fd);
		l->fd = -1;
		l->active = false;
	}
	yz_log_info("stopping: %zu session(s) open", srv->nsessions);
	if (srv->nsessions > 0) {
		/* The service runtime exits at master_shutdown_timeout: say
		 * 421 a little before, so the replies can still leave. */
		uint64_t t = srv->set.shutdown_timeout_ms;

		t = t > 2 * SMTPD_STOP_GRACE_MS ? t - SMTPD_STOP_GRACE_MS : t / 2;
		srv->stop_timer = yz_timer_add(srv->loop, t, server_stop_timeout, srv);
	}
	server_maybe_exit(srv);
}

/* Parse mynetworks; -1 (logged) on a bad entry. */
static int server_load_mynetworks(struct smtpd_server *srv)
{
	size_t i, n = yz_cfg_list_count(srv->cfg, YZ_P_MYNETWORKS);

	policy_netlist_init(&srv->mynetworks);
	for (i = 0; i < n; i++) {
		const char *entry = yz_cfg_list_item(srv->cfg, YZ_P_MYNETWORKS, i);
		const char *error;

		if (policy_netlist_add(&srv->mynetworks, entry, &error) < 0) {
			yz_log_err("mynetworks: \"%s\": %s", entry, error);
			return -1;
		}
	}
	return 0;
}

/* Free everything the server holds. */
static void server_free(struct smtpd_server *srv)
{
	size_t i;

	for (i = 0; i < srv->nlisteners; i++) {
		if (srv->listeners[i].fd >= 0)
			close(srv->listeners[i].fd);
	}
	if (srv->batch != NULL)
		queue_batch_free(&srv->batch);
	free(srv->batch_sessions);
	yz_link_free(&srv->dir_link);
	yz_link_free(&srv->queue_link);
	yz_link_free(&srv->mbox_link);
	if (srv->tls != NULL)
		yz_tls_ctx_free(&srv->tls);
	if (srv->queue != NULL)
		queue_store_close(&srv->queue);
	smtpd_limits_free(&srv->limits);
	policy_netlist_free(&srv->mynetworks);
	free(srv);
}

/* Create the service, serve until stopped; the exit status. */
int smtpd_role_run(struct yz_config *cfg)
{
	static const struct yz_service_hooks hooks = {
		.on_listener = server_on_listener,
		.on_listeners_done = server_on_listeners_done,
		.on_client = server_on_client,
		.on_stop = server_on_stop,
	};
	struct smtpd_server *srv = yz_calloc(1, sizeof(*srv));
	const char *error = NULL;
	int status;

	srv->cfg = cfg;
	smtpd_settings_load(&srv->set, cfg);
	if (server_load_mynetworks(srv) < 0) {
		server_free(srv);
		return 1;
	}
	snprintf(srv->queue_dir, sizeof(srv->queue_dir), "%s", yz_cfg_str(cfg, YZ_P_QUEUE_DIRECTORY));
	if (queue_store_open(srv->queue_dir, &srv->queue, &error) < 0) {
		yz_log_err("queue directory %s: %s", srv->queue_dir, error);
		server_free(srv);
		return 1;
	}
	/* Small messages go to this process's segment of the queue log. */
	queue_store_use_segments(srv->queue, true);
	srv->tls = yz_tls_server_ctx_new(yz_cfg_str(cfg, YZ_P_TLS_CERT_FILE),
					 yz_cfg_str(cfg, YZ_P_TLS_KEY_FILE), &error);
	if (srv->tls == NULL) {
		srv->tls_error = error;
		yz_log_warn("TLS is not available (STARTTLS not offered, submissions refused): %s",
			    error != NULL ? error : "unknown error");
	}
	srv->limits = smtpd_limits_new(srv->set.connection_limit, srv->set.client_connection_limit);
	for (size_t i = 0; i < SMTPD_LISTENERS_MAX; i++)
		srv->listeners[i].fd = -1;
	srv->svc = yz_service_new(YZ_ROLE_SMTPD, cfg, &hooks, srv);
	srv->loop = yz_service_loop(srv->svc);
	srv->dir_link = yz_link_new(srv->svc, YZ_ROLE_DIRECTORY);
	srv->queue_link = yz_link_new(srv->svc, YZ_ROLE_QUEUE);
	srv->mbox_link = yz_link_new(srv->svc, YZ_ROLE_MAILBOX);
	status = yz_service_run(srv->svc);
	smtpd_queue_commit_now(srv);
	smtpd_queue_committer_stop(srv); /* while the loop still exists */
	while (srv->sessions != NULL)
		smtpd_session_close(srv->sessions, 0, NULL, NULL);
	yz_link_free(&srv->dir_link);
	yz_link_free(&srv->queue_link);
	yz_link_free(&srv->mbox_link);
	yz_service_free(&srv->svc);
	server_free(srv);
	return status;
}

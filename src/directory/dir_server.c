/*
 * dir_server.c: the directory role's IPC server.
 * Every request is decoded strictly (yz_ipc_end); a malformed frame closes
 * that client's connection. Authentication failures are answered after the
 * growing per-client delay of dir_auth.c, on a timer, so the role never
 * sleeps. The database is opened after the privilege drop, so every file
 * SQLite creates belongs to the yizhan user.
 *
 * Lookups run in turns (dir_cache.h): the first lookup handled in a loop
 * turn opens one read transaction, a deferred call ends it once every ready
 * event of the turn was handled, and the lookups in between share it and
 * the cache of resolutions, which is dropped whenever the data generation
 * changed. Authentication never runs inside a turn: its argon2id takes tens
 * of milliseconds, and the read transaction (which holds back WAL
 * checkpoints of the CLI's writes) must stay short. The account lookup and
 * the cache run in the loop; the hashing runs in worker threads (one
 * per CPU, at most DIR_AUTH_THREADS_MAX), so a burst of logins uses every
 * core and lookups are answered meanwhile; the answers come back through
 * the loop (dir_auth_done, a yz_workq), in the order the hashes finish.
 *
 * Must never: answer from a cache whose generation was not checked in the
 * current turn; keep the read transaction past the end of a loop turn.
 */
#include "directory/dir_server.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "directory/dir_auth.h"
#include "directory/dir_cache.h"
#include "lib/ipc.h"
#include "lib/ipc_conn.h"
#include "lib/ipc_msg.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/service.h"
#include "lib/workq.h"
#include "store/directory/directory.h"

#define DIR_CLIENT_PAYLOAD_MAX (64 * 1024)
/* Password hashing threads: one per CPU, at most this many (each argon2id
 * verification holds its m_cost of memory while it runs). */
#define DIR_AUTH_THREADS_MAX 4
/* Password checks accepted and not yet answered; beyond, tempfail. */
#define DIR_AUTH_QUEUE_MAX 1024

/* The store's enums travel as they are: they must equal the wire values. */
_Static_assert((int)YZ_RESOLVE_OK == YZ_WIRE_RESOLVE_OK && (int)YZ_RESOLVE_NOT_LOCAL == YZ_WIRE_RESOLVE_NOT_LOCAL &&
		       (int)YZ_RESOLVE_UNKNOWN == YZ_WIRE_RESOLVE_UNKNOWN &&
		       (int)YZ_RESOLVE_DISABLED == YZ_WIRE_RESOLVE_DISABLED &&
		       (int)YZ_RESOLVE_LOOP == YZ_WIRE_RESOLVE_LOOP &&
		       (int)YZ_RESOLVE_TOO_MANY == YZ_WIRE_RESOLVE_TOO_MANY &&
		       (int)YZ_RESOLVE_TEMPFAIL == YZ_WIRE_RESOLVE_TEMPFAIL,
	       "resolve status wire values");
_Static_assert((int)YZ_AUTH_OK == YZ_WIRE_AUTH_OK && (int)YZ_AUTH_FAIL == YZ_WIRE_AUTH_FAIL &&
		       (int)YZ_AUTH_DISABLED == YZ_WIRE_AUTH_DISABLED &&
		       (int)YZ_AUTH_TEMPFAIL == YZ_WIRE_AUTH_TEMPFAIL,
	       "auth result wire values");

struct dir_server {
	struct yz_service *svc;
	struct yz_config *cfg;
	struct yz_dir *dir;
	struct yz_auth *auth;
	struct dir_cache *cache;
	bool turn_end_pending; /* dir_turn_end is deferred */
	size_t nclients;
	struct dir_delayed *delayed; /* AUTH answers waiting for their delay */
	struct yz_workq *workers;    /* password hashing threads; NULL: in the loop */
	struct dir_pending_auth *auths; /* checks handed to the workers */
};

/* A password check handed to the workers. */
struct dir_pending_auth {
	struct dir_pending_auth *prev, *next;
	struct yz_ipc_conn *conn;      /* NULL once the client is gone */
	uint32_t reqid;
	uint64_t delay;                /* failure delay, taken when it came */
	struct yz_auth_job *job;
	char *user, *ip, *service;
};

/* A delayed AUTH answer. */
struct dir_delayed {
	struct dir_delayed *next;
	struct dir_server *ds;
	struct yz_ipc_conn *conn;
	struct yz_ipc_msg msg;
};

static void dir_send_error(struct yz_ipc_conn *c, uint32_t reqid, enum yz_msg_error code, const char *text)
{
	struct yz_ipc_msg m;
	yz_ipc_msg_init(&m, YZ_MSG_ERROR, reqid);
	yz_ipc_put_u32(&m, code);
	yz_ipc_put_str(&m, text);
	yz_ipc_conn_send(c, &m);
}

/* Deferred: the loop turn is over; drop its read transaction. */
static void dir_turn_end(struct yz_loop *loop, void *arg)
{
	struct dir_server *ds = arg;
	(void)loop;
	ds->turn_end_pending = false;
	if (ds->cache != NULL)
		dir_cache_turn_end(ds->cache);
}

/* Before a lookup: make sure this loop turn has its read transaction (a
 * failure to open one leaves the lookups uncached, each in its own
 * transaction, which then report the error themselves). */
static void dir_turn(struct dir_server *ds)
{
	if (dir_cache_in_turn(ds->cache))
		return;
	(void)dir_cache_turn_begin(ds->cache);
	if (!ds->turn_end_pending) {
		ds->turn_end_pending = true;
		yz_loop_defer(yz_service_loop(ds->svc), dir_turn_end, ds);
	}
}

static void dir_resolve(struct dir_server *ds, struct yz_ipc_conn *c, uint32_t reqid, const char *addr)
{
	struct yz_resolve_result res;
	memset(&res, 0, sizeof res);
	dir_turn(ds);
	dir_cache_resolve(ds->cache, addr, yz_cfg_str(ds->cfg, YZ_P_PLUS_SEPARATOR),
		       (unsigned)yz_cfg_int(ds->cfg, YZ_P_ALIAS_MAX_DEPTH),
		       (unsigned)yz_cfg_int(ds->cfg, YZ_P_ALIAS_MAX_EXPANSION), &res);
	struct yz_ipc_msg m;
	yz_ipc_msg_init(&m, YZ_MSG_DIR_RESOLVE_REPLY, reqid);
	yz_ipc_put_u32(&m, (uint32_t)res.status);
	yz_ipc_put_str(&m, res.error != NULL ? res.error : "");
	yz_ipc_put_u32(&m, (uint32_t)res.count);
	for (size_t i = 0; i < res.count; i++) {
		yz_ipc_put_str(&m, res.targets[i].address);
		yz_ipc_put_bool(&m, res.targets[i].external);
		yz_ipc_put_str(&m, res.targets[i].folder != NULL ? res.targets[i].folder : "");
		yz_ipc_put_u64(&m, res.targets[i].quota);
	}
	yz_ipc_conn_send(c, &m);
	yz_resolve_result_clear(&res);
}

/* Does the logged-in user own this sender address? Their own address, a
 * plus-address of it, or an alias that delivers to them. */
static bool dir_sender_owned(struct dir_server *ds, const char *user, const char *sender, bool *tempfail_r)
{
	*tempfail_r = false;
	if (strcasecmp(user, sender) == 0)
		return true;
	struct yz_resolve_result res;
	memset(&res, 0, sizeof res);
	dir_turn(ds);
	dir_cache_resolve(ds->cache, sender, yz_cfg_str(ds->cfg, YZ_P_PLUS_SEPARATOR),
		       (unsigned)yz_cfg_int(ds->cfg, YZ_P_ALIAS_MAX_DEPTH),
		       (unsigned)yz_cfg_int(ds->cfg, YZ_P_ALIAS_MAX_EXPANSION), &res);
	bool owned = false;
	if (res.status == YZ_RESOLVE_TEMPFAIL)
		*tempfail_r = true;
	for (size_t i = 0; res.status == YZ_RESOLVE_OK && i < res.count; i++)
		if (!res.targets[i].external && strcasecmp(res.targets[i].address, user) == 0)
			owned = true;
	yz_resolve_result_clear(&res);
	return owned;
}

static void dir_bool_reply(struct yz_ipc_conn *c, uint32_t reqid, bool value, bool tempfail)
{
	struct yz_ipc_msg m;
	yz_ipc_msg_init(&m, YZ_MSG_DIR_BOOL_REPLY, reqid);
	yz_ipc_put_bool(&m, value);
	yz_ipc_put_bool(&m, tempfail);
	yz_ipc_conn_send(c, &m);
}

static void dir_delayed_send(struct yz_loop *loop, void *arg)
{
	struct dir_delayed *d = arg;
	for (struct dir_delayed **pp = &d->ds->delayed; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	}
	/* The client may have gone meanwhile (dir_on_close cleared conn). */
	if (d->conn != NULL)
		yz_ipc_conn_send(d->conn, &d->msg);
	else
		yz_ipc_msg_free(&d->msg);
	free(d);
}

/* Answer an AUTH request (after its failure delay); conn NULL: the client
 * went away, but the attempt still counts. */
static void dir_auth_answer(struct dir_server *ds, struct yz_ipc_conn *c, uint32_t reqid,
			    enum yz_auth_result res, const char *canonical, const char *user,
			    const char *ip, const char *service, uint64_t delay)
{
	uint64_t now = yz_now_ms();
	if (res == YZ_AUTH_OK || res == YZ_AUTH_FAIL || res == YZ_AUTH_DISABLED)
		yz_auth_record(ds->auth, ip, res == YZ_AUTH_OK, now);
	if (res == YZ_AUTH_OK)
		yz_log_info("auth ok: user=<%s> service=%s client=[%s]", canonical, service, ip);
	else
		yz_log_info("auth failed: user=<%s> service=%s client=[%s] result=%d", user, service, ip,
			    (int)res);
	if (c == NULL)
		return;
	struct dir_delayed *d = yz_calloc(1, sizeof *d);
	d->ds = ds;
	d->conn = c;
	yz_ipc_msg_init(&d->msg, YZ_MSG_DIR_AUTH_REPLY, reqid);
	yz_ipc_put_u32(&d->msg, (uint32_t)res);
	yz_ipc_put_str(&d->msg, res == YZ_AUTH_OK && canonical ? canonical : "");
	d->next = ds->delayed;
	ds->delayed = d;
	/* The delay applies to failures only: a right password is never slowed. */
	if (res == YZ_AUTH_OK || delay == 0)
		dir_delayed_send(NULL, d);
	else
		yz_timer_add(yz_service_loop(ds->svc), delay, dir_delayed_send, d);
}

/* Free a password check handed to the workers (job and strings). */
static void dir_pending_free(struct dir_pending_auth *p)
{
	yz_auth_job_free(&p->job);
	free(p->user);
	free(p->ip);
	free(p->service);
	free(p);
}

/* Unlink a password check from the server's list. */
static void dir_pending_unlink(struct dir_server *ds, struct dir_pending_auth *p)
{
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		ds->auths = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
}

/* Worker thread: the hashing of one check (touches only its job). */
static void dir_auth_work(void *arg)
{
	struct dir_pending_auth *p = arg;
	yz_auth_job_run(p->job);
}

/* Loop: a check came back from the workers. */
static void dir_auth_done(void *arg, void *ctx)
{
	struct dir_pending_auth *p = arg;
	struct dir_server *ds = ctx;
	dir_pending_unlink(ds, p);
	char *canonical = NULL;
	enum yz_auth_result res = yz_auth_finish(ds->auth, &p->job, yz_now_ms(), &canonical);
	dir_auth_answer(ds, p->conn, p->reqid, res, canonical, p->user, p->ip, p->service, p->delay);
	free(canonical);
	dir_pending_free(p);
}

static void dir_auth(struct dir_server *ds, struct yz_ipc_conn *c, uint32_t reqid, const char *user,
		     char *password, const char *ip, const char *service)
{
	/* Out of the turn: the lookup must not see a stale read transaction,
	 * and a check done here (no workers) must not hold it. */
	dir_cache_turn_end(ds->cache);
	uint64_t now = yz_now_ms();
	uint64_t delay = yz_auth_delay_ms(ds->auth, ip, now);
	char *canonical = NULL;
	enum yz_auth_result res;
	struct yz_auth_job *job = NULL;
	if (!yz_auth_begin(ds->auth, ds->dir, user, password, now, &res, &canonical, &job)) {
		if (ds->workers == NULL) {
			yz_auth_job_run(job);
			res = yz_auth_finish(ds->auth, &job, yz_now_ms(), &canonical);
		} else {
			struct dir_pending_auth *p = yz_calloc(1, sizeof *p);
			p->conn = c;
			p->reqid = reqid;
			p->delay = delay;
			p->job = job;
			p->user = yz_strdup(user);
			p->ip = yz_strdup(ip);
			p->service = yz_strdup(service);
			if (yz_workq_submit(ds->workers, p) == 0) {
				p->next = ds->auths;
				if (ds->auths != NULL)
					ds->auths->prev = p;
				ds->auths = p;
				return;
			}
			yz_log_warn("auth: %zu password checks in flight: user=<%s> client=[%s] "
				    "answered tempfail", yz_workq_pending(ds->workers), user, ip);
			dir_pending_free(p);
			res = YZ_AUTH_TEMPFAIL;
		}
	}
	dir_auth_answer(ds, c, reqid, res, canonical, user, ip, service, delay);
	free(canonical);
}

static void dir_on_msg(struct yz_ipc_conn *c, const struct yz_ipc_hdr *hdr, struct yz_ipc_reader *r,
		       void *arg)
{
	struct dir_server *ds = arg;
	char *a = NULL, *b = NULL, *ip = NULL, *svcname = NULL;
	if (ds->dir == NULL) {
		dir_send_error(c, hdr->reqid, YZ_MSG_ERR_TEMP, "directory not open");
		return;
	}
	switch (hdr->type) {
	case YZ_MSG_DIR_RESOLVE:
		if (yz_ipc_get_str_dup(r, YZ_IPC_ADDR_MAX, NULL, &a) < 0 || yz_ipc_end(r) < 0)
			goto malformed;
		dir_resolve(ds, c, hdr->reqid, a);
		break;
	case YZ_MSG_DIR_AUTH:
		if (yz_ipc_get_str_dup(r, YZ_IPC_ADDR_MAX, NULL, &a) < 0 ||
		    yz_ipc_get_str_dup(r, YZ_IPC_SECRET_MAX, NULL, &b) < 0 ||
		    yz_ipc_get_str_dup(r, 64, NULL, &ip) < 0 ||
		    yz_ipc_get_str_dup(r, 32, NULL, &svcname) < 0 || yz_ipc_end(r) < 0)
			goto malformed;
		dir_auth(ds, c, hdr->reqid, a, b, ip, svcname);
		break;
	case YZ_MSG_DIR_DOMAIN: {
		if (yz_ipc_get_str_dup(r, YZ_IPC_ADDR_MAX, NULL, &a) < 0 || yz_ipc_end(r) < 0)
			goto malformed;
		dir_turn(ds);
		int ex = dir_cache_domain_exists(ds->cache, a);
		dir_bool_reply(c, hdr->reqid, ex == 1, ex < 0);
		break;
	}
	case YZ_MSG_DIR_SENDER_OWNED: {
		if (yz_ipc_get_str_dup(r, YZ_IPC_ADDR_MAX, NULL, &a) < 0 ||
		    yz_ipc_get_str_dup(r, YZ_IPC_ADDR_MAX, NULL, &b) < 0 || yz_ipc_end(r) < 0)
			goto malformed;
		bool tempfail;
		bool owned = dir_sender_owned(ds, a, b, &tempfail);
		dir_bool_reply(c, hdr->reqid, owned, tempfail);
		break;
	}
	default:
		dir_send_error(c, hdr->reqid, YZ_MSG_ERR_UNSUPPORTED, "unsupported request");
		break;
	}
	free(a);
	if (b != NULL)
		yz_wipe(b, strlen(b));
	free(b);
	free(ip);
	free(svcname);
	return;
malformed:
	yz_log_warn("malformed request type %u: closing the connection", (unsigned)hdr->type);
	free(a);
	if (b != NULL)
		yz_wipe(b, strlen(b));
	free(b);
	free(ip);
	free(svcname);
	yz_ipc_conn_fail(c, "malformed request");
}

static void dir_on_close(struct yz_ipc_conn *c, const char *reason, void *arg)
{
	struct dir_server *ds = arg;
	for (struct dir_delayed *d = ds->delayed; d != NULL; d = d->next)
		if (d->conn == c)
			d->conn = NULL;
	for (struct dir_pending_auth *p = ds->auths; p != NULL; p = p->next)
		if (p->conn == c)
			p->conn = NULL;
	yz_ipc_conn_free(&c);
	ds->nclients--;
	if (yz_service_stopping(ds->svc) && ds->nclients == 0)
		yz_service_exit(ds->svc, 0);
}

static void dir_on_client(struct yz_service *svc, enum yz_role from, int fd)
{
	struct dir_server *ds = yz_service_ctx(svc);
	ds->nclients++;
	(void)yz_ipc_conn_new(yz_service_loop(svc), fd, DIR_CLIENT_PAYLOAD_MAX, dir_on_msg, dir_on_close, ds);
}

/* Graceful stop: serve the clients we have until they go (a draining smtpd
 * still asks us things), then exit. */
static void dir_on_stop(struct yz_service *svc)
{
	struct dir_server *ds = yz_service_ctx(svc);
	if (ds->nclients == 0)
		yz_service_exit(svc, 0);
}

static void dir_open_db(struct yz_loop *loop, void *arg)
{
	struct dir_server *ds = arg;
	const char *err;
	ds->dir = yz_dir_open(yz_cfg_str(ds->cfg, YZ_P_DIRECTORY_BACKEND),
			      yz_cfg_str(ds->cfg, YZ_P_DIRECTORY_SQLITE_PATH), &err);
	if (ds->dir == NULL)
		yz_fatal("cannot open the directory %s: %s",
			 yz_cfg_str(ds->cfg, YZ_P_DIRECTORY_SQLITE_PATH), err);
	yz_dir_set_hash_params(ds->dir, (uint32_t)yz_cfg_int(ds->cfg, YZ_P_AUTH_ARGON2_T_COST),
			       (uint32_t)yz_cfg_int(ds->cfg, YZ_P_AUTH_ARGON2_M_COST),
			       (uint32_t)yz_cfg_int(ds->cfg, YZ_P_AUTH_ARGON2_PARALLELISM));
	ds->cache = dir_cache_new(ds->dir, DIR_CACHE_MAX);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct yz_workq_opts o = {
		.threads = ncpu < 1 ? 1 : ncpu > DIR_AUTH_THREADS_MAX ? DIR_AUTH_THREADS_MAX
								    : (size_t)ncpu,
		.max_queued = DIR_AUTH_QUEUE_MAX,
	};
	ds->workers = yz_workq_new(loop, &o, dir_auth_work, dir_auth_done, ds);
}

int dir_role_run(struct yz_config *cfg)
{
	struct dir_server ds;
	memset(&ds, 0, sizeof ds);
	ds.cfg = cfg;
	ds.auth = yz_auth_new((size_t)yz_cfg_int(cfg, YZ_P_AUTH_CACHE_SIZE),
			      yz_cfg_time_ms(cfg, YZ_P_AUTH_CACHE_TTL),
			      yz_cfg_time_ms(cfg, YZ_P_AUTH_FAILURE_DELAY),
			      yz_cfg_time_ms(cfg, YZ_P_AUTH_FAILURE_DELAY_MAX));
	yz_auth_set_dummy_params(ds.auth, (uint32_t)yz_cfg_int(cfg, YZ_P_AUTH_ARGON2_T_COST),
				 (uint32_t)yz_cfg_int(cfg, YZ_P_AUTH_ARGON2_M_COST),
				 (uint32_t)yz_cfg_int(cfg, YZ_P_AUTH_ARGON2_PARALLELISM));
	static const struct yz_service_hooks hooks = {
		.on_client = dir_on_client,
		.on_stop = dir_on_stop,
	};
	ds.svc = yz_service_new(YZ_ROLE_DIRECTORY, cfg, &hooks, &ds);
	yz_loop_defer(yz_service_loop(ds.svc), dir_open_db, &ds);
	int rc = yz_service_run(ds.svc);
	yz_workq_free(&ds.workers, NULL);
	while (ds.auths != NULL) {
		struct dir_pending_auth *p = ds.auths;
		ds.auths = p->next;
		dir_pending_free(p);
	}
	yz_service_free(&ds.svc);
	dir_cache_free(&ds.cache);
	yz_dir_close(&ds.dir);
	yz_auth_free(&ds.auth);
	return rc;
}

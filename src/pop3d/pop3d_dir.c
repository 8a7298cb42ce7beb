/*
 * pop3d_dir.c: the production constructor pop3d_new() (settings from the
 * role's configuration, the TLS certificate) and password checks through the directory role (DIR_AUTH over
 * the mailbox role's yz_link): str user, str password, str client ip, str
 * service "pop3" -> DIR_AUTH_REPLY u32 result, str canonical user.
 *
 * Guarantees: the callback is called exactly once for every check that
 * started (timeout, dropped link and malformed or unexpected replies are
 * TEMPFAIL), never from inside start(); the directory itself delays failure
 * answers, so nothing here sleeps.
 * Never: logs or keeps the password.
 */
#include "pop3d/pop3d_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/ipc.h"
#include "lib/ipc_msg.h"
#include "lib/mem.h"
#include "lib/log.h"
#include "lib/service.h"
#include "lib/tls.h"

/* DIR_AUTH_REPLY results (enum yz_auth_result of the directory). */
enum { DIR_AUTH_OK = 0, DIR_AUTH_FAIL = 1, DIR_AUTH_DISABLED = 2, DIR_AUTH_TEMPFAIL = 3 };

struct pop3d_dir {
	struct yz_link *link;
};

/* One request in flight. */
struct pop3d_dir_req {
	pop3d_auth_cb *cb;
	void *ctx;
};

/* The directory's answer (or NULLs on timeout / close). */
static void dir_reply(struct yz_ipc_conn *c, const struct yz_ipc_hdr *hdr,
		      struct yz_ipc_reader *r, void *arg)
{
	struct pop3d_dir_req *req = arg;
	enum pop3d_auth_result res = POP3D_AUTH_TEMPFAIL;
	char *canonical = NULL;
	if (hdr != NULL && hdr->type == YZ_MSG_DIR_AUTH_REPLY) {
		uint32_t v = 0;
		if (yz_ipc_get_u32(r, &v) == 0 &&
		    yz_ipc_get_str_dup(r, YZ_IPC_ADDR_MAX, NULL, &canonical) == 0 &&
		    yz_ipc_end(r) == 0) {
			switch (v) {
			case DIR_AUTH_OK:
				res = canonical[0] != '\0' ? POP3D_AUTH_OK : POP3D_AUTH_TEMPFAIL;
				break;
			case DIR_AUTH_FAIL:
				res = POP3D_AUTH_FAIL;
				break;
			case DIR_AUTH_DISABLED:
				res = POP3D_AUTH_DISABLED;
				break;
			default:
				res = POP3D_AUTH_TEMPFAIL;
				break;
			}
		}
	} else if (hdr != NULL && hdr->type == YZ_MSG_ERROR) {
		/* Read it whole so that the connection stays valid. */
		uint32_t code;
		struct yz_slice text;
		(void)yz_ipc_get_u32(r, &code);
		(void)yz_ipc_get_str(r, YZ_IPC_TEXT_MAX, &text);
		(void)yz_ipc_end(r);
	}
	req->cb(req->ctx, res, res == POP3D_AUTH_OK ? canonical : NULL);
	free(canonical);
	free(req);
}

/* Send DIR_AUTH. */
static int dir_start(void *backend, const char *user, const char *password, const char *rip,
		     pop3d_auth_cb *cb, void *ctx)
{
	struct pop3d_dir *dir = backend;
	struct yz_ipc_msg m;
	yz_ipc_msg_init(&m, YZ_MSG_DIR_AUTH, 0);
	yz_ipc_put_str(&m, user);
	yz_ipc_put_str(&m, password);
	yz_ipc_put_str(&m, rip);
	yz_ipc_put_str(&m, "pop3");
	if (m.failed) {
		yz_ipc_msg_free(&m);
		return -1;
	}
	struct pop3d_dir_req *req = yz_calloc(1, sizeof *req);
	req->cb = cb;
	req->ctx = ctx;
	if (dir->link == NULL ||
	    yz_link_request(dir->link, &m, POP3D_AUTH_TIMEOUT_MS, dir_reply, req) < 0) {
		if (dir->link == NULL)
			yz_ipc_msg_free(&m);
		free(req);
		return -1;
	}
	return 0;
}

/* A backend over the directory link. */
static void *pop3d_dir_new(struct yz_link *link, struct pop3d_auth_backend *backend_r)
{
	struct pop3d_dir *dir = yz_calloc(1, sizeof *dir);
	dir->link = link;
	backend_r->start = dir_start;
	backend_r->backend = dir;
	return dir;
}

/* Free the backend (requests in flight belong to the link). */
static void pop3d_dir_free(void **dirp)
{
	free(*dirp);
	*dirp = NULL;
}

/* The production server: settings from the role's configuration. */
struct pop3d *pop3d_new(struct yz_service *svc, struct yz_link *dir_link,
			void (*on_idle)(void *arg), void *arg)
{
	const struct yz_config *cfg = yz_service_config(svc);
	char host[256] = "";
	const char *hostname = yz_cfg_str(cfg, YZ_P_MYHOSTNAME);
	if (hostname == NULL || hostname[0] == '\0') {
		if (gethostname(host, sizeof host - 1) < 0)
			snprintf(host, sizeof host, "localhost");
		hostname = host;
	}
	struct pop3d_settings set = {
		.line_limit = (size_t)yz_cfg_size(cfg, YZ_P_POP3_COMMAND_LINE_LIMIT),
		.idle_timeout_ms = yz_cfg_time_ms(cfg, YZ_P_POP3_IDLE_TIMEOUT),
		.plaintext_auth = yz_cfg_bool(cfg, YZ_P_POP3_PLAINTEXT_AUTH),
		.max_auth_failures = (unsigned)yz_cfg_int(cfg, YZ_P_POP3_MAX_AUTH_FAILURES),
		.session_limit = (size_t)yz_cfg_int(cfg, YZ_P_MAILBOX_SESSION_LIMIT),
		.maildir_root = yz_cfg_str(cfg, YZ_P_MAILDIR_ROOT),
		.hostname = hostname,
	};
	const char *error = NULL;
	struct yz_tls_ctx *tls = yz_tls_server_ctx_new(yz_cfg_str(cfg, YZ_P_TLS_CERT_FILE),
						       yz_cfg_str(cfg, YZ_P_TLS_KEY_FILE), &error);
	if (tls == NULL)
		yz_log_warn("pop3: TLS disabled (no STLS, no pop3s): %s",
			    error != NULL ? error : "cannot load the certificate");
	struct pop3d_auth_backend backend;
	void *dir = pop3d_dir_new(dir_link, &backend);
	struct pop3d *d = pop3d_new_with(yz_service_loop(svc), &set, tls, &backend, on_idle, arg);
	d->own_tls = true;
	d->dir_backend = dir;
	d->dir_backend_free = pop3d_dir_free;
	return d;
}


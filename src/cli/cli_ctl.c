/*
 * cli_ctl.c: run, start, status, reload, stop: the master's life cycle as
 * seen from the command line. status/reload/stop talk to the master's
 * control socket in run_directory.
 */
#include "cli/cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/config_load.h"
#include "lib/file.h"
#include "lib/ipc.h"
#include "lib/ipc_conn.h"
#include "lib/mem.h"
#include "lib/net.h"
#include "master/master.h"

#define CTL_TIMEOUT_MS 10000
#define CTL_REPLY_MAX (64 * 1024)

int cli_cmd_run(struct cli *c, bool daemonize)
{
	if (c->nargs != 0)
		return cli_fail("usage: yizhan %s [--dev] [--state-dir DIR]", daemonize ? "start" : "run");
	if (yz_config_path(c->config_arg, c->state_dir, c->dev, c->config_path,
			   sizeof c->config_path) < 0)
		return cli_fail("configuration path too long");
	if (access(c->config_path, R_OK) < 0)
		return cli_fail("cannot read %s: %s (run yizhan init first)", c->config_path,
				strerror(errno));
	enum yz_role roles[YZ_ROLE__COUNT];
	struct master_options opts = {
		.config_path = c->config_path,
		.state_dir = c->state_dir,
		.dev = c->dev,
		.daemonize = daemonize,
		.roles = roles,
		.nroles = cli_roles_list(roles, YZ_ROLE__COUNT),
		.listeners = cli_roles_listeners(),
	};
	return master_run(&opts);
}

/* The run directory even when the configuration has an error: an admin
 * must still be able to ask for status or stop the running instance. */
static int cli_run_dir(struct cli *c, char *out, size_t size, uint64_t *shutdown_ms_r)
{
	const char *err;
	if (yz_config_path(c->config_arg, c->state_dir, c->dev, c->config_path,
			   sizeof c->config_path) < 0)
		return cli_fail("configuration path too long");
	struct yz_config *cfg = yz_config_load_opt(c->config_path, c->state_dir, c->dev, true, &err);
	if (cfg == NULL) {
		fprintf(stderr, "yizhan: warning: %s (using defaults to find the running instance)\n", err);
		cfg = yz_config_load_opt(NULL, c->state_dir, c->dev, true, &err);
		if (cfg == NULL)
			return cli_fail("%s", err);
	}
	snprintf(out, size, "%s", yz_cfg_str(cfg, YZ_P_RUN_DIRECTORY));
	if (shutdown_ms_r != NULL)
		*shutdown_ms_r = yz_cfg_time_ms(cfg, YZ_P_MASTER_SHUTDOWN_TIMEOUT);
	yz_config_free(&cfg);
	return 0;
}

/* Send one control request and receive the reply into payload. */
static int cli_ctl_call(struct cli *c, enum yz_msg_type type, struct yz_ipc_hdr *hdr_r,
			struct yz_buf *payload)
{
	char run[4000], path[4096];
	if (cli_run_dir(c, run, sizeof run, NULL) != 0)
		return -1;
	snprintf(path, sizeof path, "%s/control.sock", run);
	const char *err;
	int fd = yz_net_connect_unix(path, false, &err);
	if (fd < 0) {
		cli_fail("yizhan is not running (%s)", err);
		return -1;
	}
	struct yz_ipc_msg m;
	yz_ipc_msg_init(&m, type, 1);
	size_t nfds = 0;
	int fds[1];
	int r = yz_ipc_call_blocking(fd, &m, CTL_TIMEOUT_MS, CTL_REPLY_MAX, hdr_r, payload, fds,
				     0, &nfds, &err);
	close(fd);
	if (r < 0) {
		cli_fail("control socket: %s", err);
		return -1;
	}
	return 0;
}

static void fmt_uptime(char *out, size_t size, uint64_t s)
{
	if (s >= 86400)
		snprintf(out, size, "%llud%02lluh", (unsigned long long)(s / 86400),
			 (unsigned long long)(s % 86400 / 3600));
	else if (s >= 3600)
		snprintf(out, size, "%lluh%02llum", (unsigned long long)(s / 3600),
			 (unsigned long long)(s % 3600 / 60));
	else
		snprintf(out, size, "%llum%02llus", (unsigned long long)(s / 60),
			 (unsigned long long)(s % 60));
}

int cli_cmd_status(struct cli *c)
{
	struct yz_ipc_hdr hdr;
	struct yz_buf payload;
	yz_buf_init(&payload, CTL_REPLY_MAX);
	if (cli_ctl_call(c, YZ_MSG_CTL_STATUS, &hdr, &payload) < 0) {
		yz_buf_free(&payload);
		return 3; /* as LSB status: not running */
	}
	struct yz_ipc_reader r;
	yz_ipc_reader_init(&r, yz_buf_data(&payload), yz_buf_len(&payload), NULL, 0);
	struct yz_slice version;
	uint64_t mpid, muptime;
	bool dev;
	uint32_t n;
	struct yz_buf out;
	yz_buf_init(&out, 0);
	int rc = 0;
	if (hdr.type != YZ_MSG_CTL_STATUS_REPLY || yz_ipc_get_str(&r, 64, &version) < 0 ||
	    yz_ipc_get_u64(&r, &mpid) < 0 || yz_ipc_get_u64(&r, &muptime) < 0 ||
	    yz_ipc_get_bool(&r, &dev) < 0 || yz_ipc_get_u32(&r, &n) < 0 || n > 1024) {
		rc = cli_fail("malformed status reply");
		goto done;
	}
	char up[32];
	fmt_uptime(up, sizeof up, muptime);
	if (c->json) {
		yz_buf_printf(&out, "{\"version\":\"%.*s\",\"pid\":%llu,\"uptime\":%llu,\"mode\":\"%s\",\"roles\":[",
			      (int)version.len, version.p, (unsigned long long)mpid,
			      (unsigned long long)muptime, dev ? "dev" : "production");
	} else {
		yz_buf_printf(&out, "yizhan %.*s, %s mode\n%-10s %8s %9s %8s  %s\n", (int)version.len,
			      version.p, dev ? "dev" : "production", "ROLE", "PID", "UPTIME",
			      "RESTARTS", "STATE");
		yz_buf_printf(&out, "%-10s %8llu %9s %8s  %s\n", "master", (unsigned long long)mpid, up,
			      "-", "running");
	}
	for (uint32_t i = 0; i < n; i++) {
		struct yz_slice role, state;
		uint64_t pid, uptime;
		uint32_t restarts;
		if (yz_ipc_get_str(&r, 32, &role) < 0 || yz_ipc_get_u64(&r, &pid) < 0 ||
		    yz_ipc_get_u64(&r, &uptime) < 0 || yz_ipc_get_u32(&r, &restarts) < 0 ||
		    yz_ipc_get_str(&r, 32, &state) < 0) {
			rc = cli_fail("malformed status reply");
			goto done;
		}
		fmt_uptime(up, sizeof up, uptime);
		if (c->json)
			yz_buf_printf(&out, "%s{\"role\":\"%.*s\",\"pid\":%llu,\"uptime\":%llu,\"restarts\":%u,\"state\":\"%.*s\"}",
				      i ? "," : "", (int)role.len, role.p, (unsigned long long)pid,
				      (unsigned long long)uptime, restarts, (int)state.len, state.p);
		else
			yz_buf_printf(&out, "%-10.*s %8llu %9s %8u  %.*s\n", (int)role.len, role.p,
				      (unsigned long long)pid, pid ? up : "-", restarts, (int)state.len,
				      state.p);
	}
	if (yz_ipc_end(&r) < 0) {
		rc = cli_fail("malformed status reply");
		goto done;
	}
	if (c->json)
		yz_buf_append_str(&out, "]}\n");
	fwrite(yz_buf_data(&out), 1, yz_buf_len(&out), stdout);
done:
	yz_ipc_reader_free(&r);
	yz_buf_free(&out);
	yz_buf_free(&payload);
	return rc;
}

static int cli_ctl_simple(struct cli *c, enum yz_msg_type type, const char *what)
{
	struct yz_ipc_hdr hdr;
	struct yz_buf payload;
	yz_buf_init(&payload, CTL_REPLY_MAX);
	if (cli_ctl_call(c, type, &hdr, &payload) < 0) {
		yz_buf_free(&payload);
		return 1;
	}
	struct yz_ipc_reader r;
	yz_ipc_reader_init(&r, yz_buf_data(&payload), yz_buf_len(&payload), NULL, 0);
	struct yz_slice text;
	int rc = 0;
	if ((hdr.type != YZ_MSG_CTL_OK && hdr.type != YZ_MSG_CTL_ERROR) ||
	    yz_ipc_get_str(&r, 4096, &text) < 0 || yz_ipc_end(&r) < 0)
		rc = cli_fail("malformed reply to %s", what);
	else if (hdr.type == YZ_MSG_CTL_ERROR)
		rc = cli_fail("%s refused: %.*s", what, (int)text.len, text.p);
	else if (!c->json)
		printf("yizhan: %.*s\n", (int)text.len, text.p);
	else
		printf("{\"ok\":true}\n");
	yz_ipc_reader_free(&r);
	yz_buf_free(&payload);
	return rc;
}

int cli_cmd_reload(struct cli *c)
{
	return cli_ctl_simple(c, YZ_MSG_CTL_RELOAD, "reload");
}

/* Stop, then wait until the master is gone so that scripts can go on. */
int cli_cmd_stop(struct cli *c)
{
	char run[4000], pidpath[4096];
	uint64_t wait_ms;
	if (cli_run_dir(c, run, sizeof run, &wait_ms) != 0)
		return 1;
	wait_ms += 5000;
	snprintf(pidpath, sizeof pidpath, "%s/master.pid", run);
	long pid = 0;
	char *data;
	size_t len;
	if (yz_file_read_all(pidpath, 64, &data, &len) == 0) {
		pid = strtol(data, NULL, 10);
		free(data);
	}
	int rc = cli_ctl_simple(c, YZ_MSG_CTL_STOP, "stop");
	if (rc != 0 || pid <= 0)
		return rc;
	for (uint64_t waited = 0; waited < wait_ms; waited += 50) {
		/* The master removes its pid file as it exits (a zombie still
		 * answers kill(0) until its parent reaps it). */
		if ((kill((pid_t)pid, 0) < 0 && errno == ESRCH) || access(pidpath, F_OK) < 0)
			return 0;
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return cli_fail("master (pid %ld) still running after %llu ms", pid, (unsigned long long)wait_ms);
}

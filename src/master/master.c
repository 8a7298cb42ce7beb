/*
 * master.c: the supervisor's life cycle: start, serve, reload, stop.
 * Guarantees: a bad configuration at reload leaves the running instance as
 * it was; a dying role is restarted with a delay that doubles up to
 * master_restart_delay_max; stop waits master_shutdown_timeout for open
 * sessions, then kills what is left.
 */
#include "master/master_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/config_load.h"
#include "lib/file.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/rlimit.h"

static void master_finish_stop(struct master *m)
{
	if (m->procs != NULL)
		return;
	yz_log_info("stopped");
	yz_loop_stop(m->loop);
}

/* Called whenever a process went away; ends the master once all are gone. */
void master_check_done(struct master *m)
{
	if (m->stopping)
		master_finish_stop(m);
}

static void master_kill_timer(struct yz_loop *loop, void *arg)
{
	struct master *m = arg;
	m->kill_timer = NULL;
	for (struct master_proc *p = m->procs; p != NULL; p = p->next) {
		yz_log_warn("%s[%ld] did not stop in time; killing it",
			    yz_role_name(p->role), (long)p->pid);
		kill(p->pid, SIGKILL);
	}
}

void master_stop(struct master *m, const char *why)
{
	if (m->stopping)
		return;
	m->stopping = true;
	yz_log_info("stopping (%s)", why);
	for (int r = 0; r < YZ_ROLE__COUNT; r++)
		yz_timer_del(m->loop, &m->slots[r].restart_timer);
	for (struct master_proc *p = m->procs; p != NULL; p = p->next)
		master_proc_stop(m, p);
	master_listeners_close(m);
	m->kill_timer = yz_timer_add(m->loop, yz_cfg_time_ms(m->cfg, YZ_P_MASTER_SHUTDOWN_TIMEOUT) + 1000,
				     master_kill_timer, m);
	master_finish_stop(m);
}

/* Re-read the configuration; on success start a new generation of roles. */
int master_reload(struct master *m, const char **error_r)
{
	struct yz_config *cfg = yz_config_load_standard(m->opts.config_path, m->opts.state_dir,
							  m->opts.dev, error_r);
	if (cfg == NULL) {
		yz_log_warn("reload refused: %s", *error_r);
		return -1;
	}
	struct yz_config *old = m->cfg;
	m->cfg = cfg;
	if (master_listeners_update(m, error_r) < 0) {
		m->cfg = old;
		yz_config_free(&cfg);
		yz_log_warn("reload refused: %s", *error_r);
		return -1;
	}
	yz_config_free(&old);
	m->generation++;
	yz_log_info("reloading configuration (generation %u)", m->generation);
	for (size_t i = 0; i < m->opts.nroles; i++)
		master_slot_replace(m, &m->slots[m->opts.roles[i]]);
	return 0;
}

static void master_on_signal(struct yz_loop *loop, int signo, void *arg)
{
	struct master *m = arg;
	const char *err;
	switch (signo) {
	case SIGTERM:
	case SIGINT:
		master_stop(m, signo == SIGTERM ? "SIGTERM" : "SIGINT");
		break;
	case SIGHUP:
		(void)master_reload(m, &err);
		break;
	case SIGCHLD:
		master_reap(m);
		break;
	default:
		break;
	}
}

static int master_write_pidfile(struct master *m)
{
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	return yz_file_write_atomic(m->pid_path, buf, (size_t)n, 0644);
}

/* Refuse to start a second master on the same state: the pid file names a live one. */
static bool master_already_running(const char *pid_path, long *pid_r)
{
	char *data;
	size_t len;
	if (yz_file_read_all(pid_path, 64, &data, &len) < 0)
		return false;
	long pid = strtol(data, NULL, 10);
	free(data);
	*pid_r = pid;
	return pid > 0 && kill((pid_t)pid, 0) == 0;
}

static int master_daemonize(void)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	return 0;
}

int master_run(const struct master_options *opts)
{
	const char *err;
	struct master *m = yz_calloc(1, sizeof *m);
	m->opts = *opts;
	m->cfg = yz_config_load_standard(opts->config_path, opts->state_dir, opts->dev, &err);
	if (m->cfg == NULL) {
		yz_log_err("%s", err);
		fprintf(stderr, "yizhan: %s\n", err);
		free(m);
		return 1;
	}
	yz_log_init("master", opts->daemonize);
	yz_config_apply_logging(m->cfg);
	const char *run_dir = yz_cfg_str(m->cfg, YZ_P_RUN_DIRECTORY);
	if (yz_mkdir_p(run_dir, 0755) < 0) {
		fprintf(stderr, "yizhan: cannot create %s: %s\n", run_dir, strerror(errno));
		return 1;
	}
	snprintf(m->pid_path, sizeof m->pid_path, "%s/master.pid", run_dir);
	snprintf(m->ctl_path, sizeof m->ctl_path, "%s/control.sock", run_dir);
	long other;
	if (master_already_running(m->pid_path, &other)) {
		fprintf(stderr, "yizhan: already running (pid %ld, %s)\n", other, m->pid_path);
		return 1;
	}
	if (readlink("/proc/self/exe", m->self_exe, sizeof m->self_exe - 1) < 0) {
		fprintf(stderr, "yizhan: cannot find my own executable: %s\n", strerror(errno));
		return 1;
	}
	unsigned long got;
	(void)yz_rlimit_nofile((unsigned long)yz_cfg_int(m->cfg, YZ_P_PROCESS_FD_LIMIT), &got);

	/* Bind everything before daemonizing, so errors reach the terminal. */
	if (master_listeners_open(m, &err) < 0) {
		fprintf(stderr, "yizhan: %s\n", err);
		yz_log_err("%s", err);
		return 1;
	}
	if (master_ctl_open(m, &err) < 0) {
		fprintf(stderr, "yizhan: %s\n", err);
		return 1;
	}
	if (opts->daemonize && master_daemonize() < 0) {
		fprintf(stderr, "yizhan: cannot daemonize: %s\n", strerror(errno));
		return 1;
	}
	if (master_write_pidfile(m) < 0)
		yz_log_warn("cannot write %s: %s", m->pid_path, strerror(errno));

	m->loop = yz_loop_new();
	signal(SIGPIPE, SIG_IGN);
	yz_loop_add_signal(m->loop, SIGTERM, master_on_signal, m);
	yz_loop_add_signal(m->loop, SIGINT, master_on_signal, m);
	yz_loop_add_signal(m->loop, SIGHUP, master_on_signal, m);
	yz_loop_add_signal(m->loop, SIGCHLD, master_on_signal, m);
	master_ctl_start(m);
	m->started_ms = yz_now_ms();
	yz_log_info("starting yizhan %s (%s mode, pid %ld)", YZ_VERSION, opts->dev ? "dev" : "production",
		    (long)getpid());
	for (size_t i = 0; i < opts->nroles; i++) {
		struct master_slot *s = &m->slots[opts->roles[i]];
		s->m = m;
		s->role = opts->roles[i];
		s->enabled = true;
		master_slot_start(m, s);
	}
	yz_loop_run(m->loop);

	master_ctl_close(m);
	master_listeners_close(m);
	unlink(m->pid_path);
	yz_timer_del(m->loop, &m->kill_timer);
	yz_loop_free(&m->loop);
	yz_config_free(&m->cfg);
	free(m);
	return 0;
}

/*
 * master_int.h: the master's private state, shared by its files
 * (master.c life cycle, master_proc.c processes, master_listen.c listeners,
 * master_ctl.c control socket).
 */
#ifndef YZ_MASTER_INT_H
#define YZ_MASTER_INT_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/config.h"
#include "lib/ipc.h"
#include "lib/ipc_conn.h"
#include "lib/loop.h"
#include "lib/version.h"
#include "master/master.h"

#define MASTER_LISTENERS_MAX 32
#define MASTER_CTL_PAYLOAD_MAX (64 * 1024)
#define MASTER_ROLE_PAYLOAD_MAX (64 * 1024)
/* A role that stayed up this long is healthy again: its restart delay resets. */
#define MASTER_HEALTHY_MS 60000

struct master;

struct master_listener {
	char name[16];     /* "smtp", "submission", ... */
	char addr[64];
	unsigned port;
	enum yz_role role; /* the role that serves it */
	int fd;
	bool keep;         /* reload bookkeeping */
};

struct master_proc {
	struct master *m;
	struct master_proc *next;
	enum yz_role role;
	pid_t pid;
	struct yz_ipc_conn *ctl;
	uint64_t started_ms;
	unsigned generation;
	bool ready;
	bool draining;     /* told to stop; finishing its sessions */
	struct yz_timer *kill_timer; /* a draining process past its deadline is killed */
};

struct master_slot {
	struct master *m;
	enum yz_role role;
	bool enabled;
	struct master_proc *current;
	unsigned restarts;
	uint64_t delay_ms;
	struct yz_timer *restart_timer;
	bool start_when_old_exits; /* singleton roles: wait for the draining one */
};

struct master {
	struct master_options opts;
	struct yz_config *cfg;
	struct yz_loop *loop;
	char self_exe[PATH_MAX];
	char pid_path[PATH_MAX];
	char ctl_path[PATH_MAX];
	int ctl_lfd;
	struct master_listener listeners[MASTER_LISTENERS_MAX];
	size_t nlisteners;
	struct master_slot slots[YZ_ROLE__COUNT];
	struct master_proc *procs;
	unsigned generation;
	bool stopping;
	uint64_t started_ms;
	struct yz_timer *kill_timer;
};

/* master.c */
void master_stop(struct master *m, const char *why);
int master_reload(struct master *m, const char **error_r);
void master_check_done(struct master *m);
/* master_proc.c */
void master_slot_start(struct master *m, struct master_slot *s);
void master_slot_replace(struct master *m, struct master_slot *s);
void master_proc_stop(struct master *m, struct master_proc *p);
void master_reap(struct master *m);
/* master_listen.c */
int master_listeners_open(struct master *m, const char **error_r);
int master_listeners_update(struct master *m, const char **error_r);
void master_listeners_close(struct master *m);
/* master_ctl.c */
int master_ctl_open(struct master *m, const char **error_r);
void master_ctl_start(struct master *m);
void master_ctl_close(struct master *m);

#endif

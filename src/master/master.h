/*
 * master.h: the privileged supervisor.
 *
 * The master reads the configuration, binds every listener, forks and
 * execs each role with its control channel on fd 3, hands the role its
 * listening sockets, brokers connections between roles, restarts a role
 * that dies (with a growing delay), replaces roles gracefully on reload, and
 * answers the yizhan CLI on a UNIX control socket.
 *
 * Never: the master accepts no network connection and reads no byte that
 * came from the network; it parses only IPC frames from its own children and
 * from the control socket, which only root (or the dev-mode user) can open.
 */
#ifndef YZ_MASTER_H
#define YZ_MASTER_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/ipc_msg.h"

struct master_options {
	const char *config_path;  /* the file roles re-read */
	const char *state_dir;    /* --state-dir, or NULL */
	bool dev;                 /* dev mode: everything as the invoking user */
	bool daemonize;           /* yizhan start */
	const enum yz_role *roles; /* roles this binary can run, in start order */
	size_t nroles;
	const char *listeners;     /* listener names this build serves, space-separated */
};

/* Run the master until it is stopped; returns the process exit status. */
int master_run(const struct master_options *opts);

#endif

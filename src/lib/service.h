/*
 * service.h: the runtime every role process shares.
 *
 * A role is started by the master as `yizhan role <name> -c <config>` with
 * its control channel to the master on fd 3 (YZ_SERVICE_CTL_FD). Over it the
 * role receives its listening sockets (LISTENER ... LISTENERS_DONE), client
 * connections from other roles (NEW_CLIENT) and the order to stop
 * gracefully (ROLE_STOP, or SIGTERM); it asks for connections to other roles
 * (CONNECT). A yz_link is such a connection that is re-established
 * automatically when the peer role restarts.
 *
 * Never: a role never opens a socket to another role by itself; every
 * channel comes through the master, so no filesystem permission is needed.
 */
#ifndef YZ_SERVICE_H
#define YZ_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/config.h"
#include "lib/ipc.h"
#include "lib/ipc_conn.h"
#include "lib/ipc_msg.h"
#include "lib/loop.h"

#define YZ_SERVICE_CTL_FD 3

struct yz_service;

struct yz_service_hooks {
	/* A listening socket the role must serve (name: "smtp", "submission", ...). */
	void (*on_listener)(struct yz_service *svc, const char *name, int fd);
	/* All listeners were delivered: start serving. */
	void (*on_listeners_done)(struct yz_service *svc);
	/* Another role connected to this one. */
	void (*on_client)(struct yz_service *svc, enum yz_role from, int fd);
	/* Graceful stop: close listeners, let sessions finish, then call
	 * yz_service_exit() when nothing is left. */
	void (*on_stop)(struct yz_service *svc);
};

struct yz_service *yz_service_new(enum yz_role role, struct yz_config *cfg,
				  const struct yz_service_hooks *hooks, void *ctx);
struct yz_loop *yz_service_loop(struct yz_service *svc);
struct yz_config *yz_service_config(struct yz_service *svc);
void *yz_service_ctx(struct yz_service *svc);
bool yz_service_stopping(const struct yz_service *svc);
/* Run the loop until yz_service_exit(); returns the exit status. */
int yz_service_run(struct yz_service *svc);
/* Leave the loop; the process then exits with status. */
void yz_service_exit(struct yz_service *svc, int status);
void yz_service_free(struct yz_service **svc);

/* A self-healing request channel to another role. */
struct yz_link;
struct yz_link *yz_link_new(struct yz_service *svc, enum yz_role target);
void yz_link_free(struct yz_link **link);
bool yz_link_up(const struct yz_link *link);
/* Send a request; cb gets the reply, or NULLs on timeout, on a dropped
 * connection, or when the link is still down after up to 3 s (the peer
 * starting or restarting: the request is held meanwhile); the caller then
 * answers 4xx. The message is consumed either way; -1 only when too many
 * requests are already held (cb is then not called). */
int yz_link_request(struct yz_link *link, struct yz_ipc_msg *m, uint64_t timeout_ms,
		    yz_ipc_reply_cb *cb, void *arg);
uint32_t yz_link_next_id(struct yz_link *link);

#endif

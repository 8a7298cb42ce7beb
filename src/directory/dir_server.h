/*
 * dir_server.h: the directory role: answers recipient resolution and
 * authentication over IPC (DIR_* messages of lib/ipc_msg.h).
 */
#ifndef YZ_DIR_SERVER_H
#define YZ_DIR_SERVER_H

#include "lib/config.h"

/* Entry of `yizhan role directory`: serve until stopped; the exit status. */
int dir_role_run(struct yz_config *cfg);

#endif

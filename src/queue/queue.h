/*
 * queue.h: the queue role: owns the spool after commit, schedules each
 * recipient's delivery (local: to the mailbox role over IPC; remote: later),
 * retries with backoff, bounces, and removes finished messages.
 */
#ifndef YZ_QUEUE_H
#define YZ_QUEUE_H

#include "lib/config.h"

/* Entry of `yizhan role queue`. */
int queue_role_run(struct yz_config *cfg);

#endif

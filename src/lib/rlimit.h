/*
 * rlimit.h: process resource limits a role sets at start.
 *
 * Guarantees: a limit is only raised up to the hard limit, never past it,
 * so these work unprivileged; failures are reported, never fatal.
 * Never: lower a soft limit below what the process already has (nofile).
 */
#ifndef YZ_RLIMIT_H
#define YZ_RLIMIT_H

#include <stdbool.h>

/* Raise the RLIMIT_NOFILE soft limit to min(want, hard); *got_r (may be
 * NULL) is the soft limit afterwards. 0, or -1 with errno. */
int yz_rlimit_nofile(unsigned long want, unsigned long *got_r);
/* Allow (soft = hard) or forbid (0) core dumps. 0, or -1 with errno. */
int yz_rlimit_core(bool on);

#endif

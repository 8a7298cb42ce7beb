/*
 * rlimit.c: RLIMIT_NOFILE and RLIMIT_CORE helpers (see rlimit.h).
 * Guarantees: never asks for more than the hard limit, never lowers the
 * descriptor limit. Never: exit or log; the caller decides.
 */
#include "lib/rlimit.h"

#include <stddef.h>
#include <sys/resource.h>

int yz_rlimit_nofile(unsigned long want, unsigned long *got_r)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	rlim_t target = (rlim_t)want;
	if (rl.rlim_max != RLIM_INFINITY && target > rl.rlim_max)
		target = rl.rlim_max;
	/* RLIM_INFINITY is the largest value, so an unlimited soft limit is
	 * never "raised" (and never lowered). */
	if (target > rl.rlim_cur) {
		rl.rlim_cur = target;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			return -1;
	}
	if (got_r != NULL)
		*got_r = (unsigned long)rl.rlim_cur;
	return 0;
}

int yz_rlimit_core(bool on)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_CORE, &rl) < 0)
		return -1;
	rl.rlim_cur = on ? rl.rlim_max : 0;
	return setrlimit(RLIMIT_CORE, &rl);
}

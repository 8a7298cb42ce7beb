/*
 * priv.h: dropping root for good, and the system users yizhan runs as.
 *
 * The master starts as root, binds its ports, then each role calls
 * yz_priv_drop() before it reads a byte of input: supplementary groups are
 * reduced to the one group, the optional chroot is entered, real/effective/
 * saved ids are all set, and the drop is VERIFIED (root cannot be regained,
 * every id is the target) before the function returns. In dev mode (the
 * target uid is the current euid) nothing changes and the result says so.
 *
 * Never: return success while any of the real, effective or saved uid/gid
 * is still privileged; call initgroups() (a role gets no extra groups);
 * run a shell (useradd is exec'd directly).
 */
#ifndef YZ_PRIV_H
#define YZ_PRIV_H

#include <sys/types.h>

/* Results of yz_priv_drop(). */
enum yz_priv_result {
	YZ_PRIV_ERROR = -1,
	YZ_PRIV_DROPPED = 0, /* was root, now uid:gid for good */
	YZ_PRIV_UNCHANGED = 1, /* dev mode: already running as uid, nothing done */
};

/* Longest user name yz_priv_ensure_user() accepts. */
#define YZ_PRIV_NAME_MAX 32

/* Find a user's uid and primary gid. 0, or -1 with *error_r. */
int yz_priv_lookup(const char *user, uid_t *uid_r, gid_t *gid_r, const char **error_r);
/* Become uid:gid irrevocably (see above); chroot_dir NULL = no chroot.
 * Returns an enum yz_priv_result; on YZ_PRIV_ERROR the process may be half
 * dropped and must exit. */
int yz_priv_drop(uid_t uid, gid_t gid, const char *chroot_dir, const char **error_r);
/* As root: create system user and group `name` (nologin shell, no home
 * created; home NULL = useradd's default) unless it exists. 0, or -1. */
int yz_priv_ensure_user(const char *name, const char *home, const char **error_r);

#endif

/*
 * priv.c: privilege drop and system user creation (see priv.h).
 *
 * Guarantees: yz_priv_drop() returns YZ_PRIV_DROPPED only after checking
 * with getresuid/getresgid/getgroups that every id is the target and that
 * setuid(0) fails; a drop that can be undone is a broken invariant and
 * panics. Never: run a shell, pass an unchecked name to useradd, return an
 * error string that is not static.
 */
#include "lib/priv.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/mem.h"

/* Buffer for getpwnam_r when sysconf gives no hint, and its upper bound. */
#define PRIV_PWBUF_DEFAULT 16384
#define PRIV_PWBUF_MAX (1024 * 1024)
#define PRIV_USERADD "/usr/sbin/useradd"
#define PRIV_NOLOGIN "/usr/sbin/nologin"
/* Bound on supplementary groups read back for verification. */
#define PRIV_GROUPS_MAX 64

int yz_priv_lookup(const char *user, uid_t *uid_r, gid_t *gid_r, const char **error_r)
{
	long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
	size_t size = hint > 0 ? (size_t)hint : PRIV_PWBUF_DEFAULT;
	struct passwd pw, *res = NULL;
	int err;

	for (;;) {
		char *buf = yz_malloc(size);
		err = getpwnam_r(user, &pw, buf, size, &res);
		if (err == 0 && res != NULL) {
			*uid_r = pw.pw_uid;
			*gid_r = pw.pw_gid;
		}
		free(buf);
		if (err != ERANGE || size >= PRIV_PWBUF_MAX)
			break;
		size *= 2;
	}
	if (err != 0) {
		*error_r = "user database lookup failed";
		return -1;
	}
	if (res == NULL) {
		*error_r = "no such user";
		return -1;
	}
	return 0;
}

/* Check that the process is exactly uid:gid with only gid as group. */
static int priv_verify(uid_t uid, gid_t gid, const char **error_r)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	gid_t groups[PRIV_GROUPS_MAX];

	if (getresuid(&ru, &eu, &su) < 0 || ru != uid || eu != uid || su != uid) {
		*error_r = "uid not fully changed";
		return -1;
	}
	if (getresgid(&rg, &eg, &sg) < 0 || rg != gid || eg != gid || sg != gid) {
		*error_r = "gid not fully changed";
		return -1;
	}
	int n = getgroups(PRIV_GROUPS_MAX, groups);
	if (n < 0 || n > 1 || (n == 1 && groups[0] != gid)) {
		*error_r = "supplementary groups not dropped";
		return -1;
	}
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
		yz_panic("privilege drop to uid %lu can be undone", (unsigned long)uid);
	return 0;
}

int yz_priv_drop(uid_t uid, gid_t gid, const char *chroot_dir, const char **error_r)
{
	if (uid == geteuid())
		return YZ_PRIV_UNCHANGED;
	if (geteuid() != 0) {
		*error_r = "not root: cannot change user";
		return YZ_PRIV_ERROR;
	}
	if (setgroups(1, &gid) < 0) {
		*error_r = "setgroups failed";
		return YZ_PRIV_ERROR;
	}
	if (chroot_dir != NULL) {
		if (chroot(chroot_dir) < 0) {
			*error_r = "chroot failed";
			return YZ_PRIV_ERROR;
		}
		if (chdir("/") < 0) {
			*error_r = "chdir to new root failed";
			return YZ_PRIV_ERROR;
		}
	}
	/* Groups first: once the uid is gone, the gid can no longer change. */
	if (setresgid(gid, gid, gid) < 0) {
		*error_r = "setresgid failed";
		return YZ_PRIV_ERROR;
	}
	if (setresuid(uid, uid, uid) < 0) {
		*error_r = "setresuid failed";
		return YZ_PRIV_ERROR;
	}
	if (priv_verify(uid, gid, error_r) < 0)
		return YZ_PRIV_ERROR;
	/* No exec can give privileges back, and no other process of the same
	 * user (another role) may ptrace this one or read its core. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		*error_r = "PR_SET_NO_NEW_PRIVS failed";
		return YZ_PRIV_ERROR;
	}
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		*error_r = "PR_SET_DUMPABLE failed";
		return YZ_PRIV_ERROR;
	}
	return YZ_PRIV_DROPPED;
}

/* A portable system user name: [a-z_][a-z0-9_-]*, never an option. */
static bool priv_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > YZ_PRIV_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || c == '_' ||
			  (i > 0 && ((c >= '0' && c <= '9') || c == '-'));
		if (!ok)
			return false;
	}
	return true;
}

int yz_priv_ensure_user(const char *name, const char *home, const char **error_r)
{
	uid_t uid;
	gid_t gid;
	const char *err;

	if (!priv_name_ok(name)) {
		*error_r = "invalid user name";
		return -1;
	}
	if (home != NULL && home[0] != '/') {
		*error_r = "home directory must be an absolute path";
		return -1;
	}
	if (yz_priv_lookup(name, &uid, &gid, &err) == 0)
		return 0;
	if (geteuid() != 0) {
		*error_r = "must be root to create a user";
		return -1;
	}
	char *argv[12];
	size_t argc = 0;
	argv[argc++] = (char *)PRIV_USERADD;
	argv[argc++] = (char *)"--system";
	argv[argc++] = (char *)"--no-create-home";
	if (home != NULL) {
		argv[argc++] = (char *)"--home-dir";
		argv[argc++] = (char *)home;
	}
	argv[argc++] = (char *)"--shell";
	argv[argc++] = (char *)PRIV_NOLOGIN;
	argv[argc++] = (char *)"--user-group";
	argv[argc++] = (char *)"--";
	argv[argc++] = (char *)name;
	argv[argc] = NULL;

	pid_t pid = fork();
	if (pid < 0) {
		*error_r = "fork failed";
		return -1;
	}
	if (pid == 0) {
		execv(PRIV_USERADD, argv);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			*error_r = "waitpid failed";
			return -1;
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		*error_r = WIFEXITED(status) && WEXITSTATUS(status) == 127
				   ? "cannot run " PRIV_USERADD
				   : PRIV_USERADD " failed";
		return -1;
	}
	if (yz_priv_lookup(name, &uid, &gid, &err) < 0) {
		*error_r = "user still missing after useradd";
		return -1;
	}
	return 0;
}

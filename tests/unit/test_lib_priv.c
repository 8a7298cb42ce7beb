/*
 * test_lib_priv.c: privilege drop (priv.h) and resource limits (rlimit.h).
 * The drop tests run in forked children, and only as root (CI runs the
 * tests as root); otherwise they are skipped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/priv.h"
#include "lib/rlimit.h"

static void test_lookup(void **state)
{
	uid_t uid = 1;
	gid_t gid = 1;
	const char *error = NULL;
	assert_int_equal(yz_priv_lookup("root", &uid, &gid, &error), 0);
	assert_int_equal(uid, 0);
	assert_int_equal(gid, 0);
	assert_int_equal(yz_priv_lookup("nobody", &uid, &gid, &error), 0);
	assert_true(uid != 0);
	assert_int_equal(yz_priv_lookup("yz-no-such-user-x", &uid, &gid, &error), -1);
	assert_string_equal(error, "no such user");
}

static void test_dev_mode(void **state)
{
	const char *error = NULL;
	assert_int_equal(yz_priv_drop(geteuid(), getegid(), NULL, &error), YZ_PRIV_UNCHANGED);
	assert_null(error);
}

/* Run fn in a child; returns its exit status (0 = every check passed). */
static int in_child(int (*fn)(void))
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn());
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static int child_drop(void)
{
	uid_t uid, ru, eu, su;
	gid_t gid, rg, eg, sg;
	const char *error;
	if (yz_priv_lookup("nobody", &uid, &gid, &error) < 0)
		return 10;
	if (yz_priv_drop(uid, gid, NULL, &error) != YZ_PRIV_DROPPED)
		return 11;
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0)
		return 12;
	if (getresuid(&ru, &eu, &su) < 0 || ru != uid || eu != uid || su != uid)
		return 13;
	if (getresgid(&rg, &eg, &sg) < 0 || rg != gid || eg != gid || sg != gid)
		return 14;
	gid_t groups[8];
	int n = getgroups(8, groups);
	if (n > 1 || (n == 1 && groups[0] != gid))
		return 15;
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return 16;
	if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
		return 17;
	/* As nobody, going back to root is an error, not a no-op. */
	error = NULL;
	if (yz_priv_drop(0, 0, NULL, &error) != YZ_PRIV_ERROR || error == NULL)
		return 18;
	return 0;
}

static void test_drop_to_nobody(void **state)
{
	if (geteuid() != 0)
		skip();
	assert_int_equal(in_child(child_drop), 0);
}

static char chroot_dir[64];

static int child_drop_chroot(void)
{
	uid_t uid;
	gid_t gid;
	const char *error;
	char cwd[64];
	if (yz_priv_lookup("nobody", &uid, &gid, &error) < 0)
		return 10;
	if (yz_priv_drop(uid, gid, chroot_dir, &error) != YZ_PRIV_DROPPED)
		return 11;
	if (getcwd(cwd, sizeof cwd) == NULL || strcmp(cwd, "/") != 0)
		return 12;
	if (access("/marker", F_OK) != 0)
		return 13; /* we are inside the new root */
	if (access("/etc/passwd", F_OK) == 0)
		return 14;
	if (chroot("/") == 0)
		return 15;
	return 0;
}

static void test_drop_chroot(void **state)
{
	if (geteuid() != 0)
		skip();
	snprintf(chroot_dir, sizeof chroot_dir, "/tmp/yz-priv-XXXXXX");
	assert_non_null(mkdtemp(chroot_dir));
	assert_int_equal(chmod(chroot_dir, 0755), 0); /* nobody must search it */
	char marker[96];
	snprintf(marker, sizeof marker, "%s/marker", chroot_dir);
	FILE *f = fopen(marker, "w");
	assert_non_null(f);
	fclose(f);
	int status = in_child(child_drop_chroot);
	unlink(marker);
	rmdir(chroot_dir);
	assert_int_equal(status, 0);
}

static int child_bad_chroot(void)
{
	const char *error = NULL;
	if (yz_priv_drop(65534, 65534, "/nonexistent/yz-no-such-dir", &error) != YZ_PRIV_ERROR)
		return 10;
	return strcmp(error, "chroot failed") == 0 ? 0 : 11;
}

static void test_drop_bad_chroot(void **state)
{
	if (geteuid() != 0)
		skip();
	assert_int_equal(in_child(child_bad_chroot), 0);
}

/* A 32-character name is valid; unprivileged, creation is refused. */
static int child_ensure_at_limit(void)
{
	char name[YZ_PRIV_NAME_MAX + 1];
	const char *error = NULL;
	uid_t uid;
	gid_t gid;
	memset(name, 'q', YZ_PRIV_NAME_MAX);
	name[YZ_PRIV_NAME_MAX] = '\0';
	if (geteuid() == 0) {
		if (yz_priv_lookup("nobody", &uid, &gid, &error) < 0 ||
		    yz_priv_drop(uid, gid, NULL, &error) != YZ_PRIV_DROPPED)
			return 10;
	}
	if (yz_priv_ensure_user(name, NULL, &error) != -1)
		return 11;
	return strcmp(error, "must be root to create a user") == 0 ? 0 : 12;
}

static void test_ensure_user_checks(void **state)
{
	const char *error = NULL;
	char longname[YZ_PRIV_NAME_MAX + 2];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	const char *bad[] = { "", "-rf", "Root", "a b", "9lives", "a/b", "a;b", longname };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		error = NULL;
		assert_int_equal(yz_priv_ensure_user(bad[i], NULL, &error), -1);
		assert_string_equal(error, "invalid user name");
	}
	assert_int_equal(yz_priv_ensure_user("nobody", "relative/home", &error), -1);
	/* at the limit the name passes the check; as non-root nothing is
	 * created (the test never adds users to the system) */
	assert_int_equal(in_child(child_ensure_at_limit), 0);
	/* existing users: nothing to do */
	assert_int_equal(yz_priv_ensure_user("root", NULL, &error), 0);
	assert_int_equal(yz_priv_ensure_user("nobody", "/nonexistent", &error), 0);
}

static void test_rlimit_nofile(void **state)
{
	struct rlimit rl;
	unsigned long got = 0;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rlim_t before = rl.rlim_cur;
	/* never lowered */
	assert_int_equal(yz_rlimit_nofile(16, &got), 0);
	assert_true(got == (unsigned long)before);
	/* raised up to the hard limit, not past it */
	assert_int_equal(yz_rlimit_nofile((unsigned long)-1, &got), 0);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	assert_true(rl.rlim_cur == rl.rlim_max);
	assert_true(got == (unsigned long)rl.rlim_max);
	assert_int_equal(yz_rlimit_nofile(1024, NULL), 0);
}

static void test_rlimit_core(void **state)
{
	struct rlimit rl;
	assert_int_equal(yz_rlimit_core(false), 0);
	assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
	assert_true(rl.rlim_cur == 0);
	assert_int_equal(yz_rlimit_core(true), 0);
	assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
	assert_true(rl.rlim_cur == rl.rlim_max);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_dev_mode),
		cmocka_unit_test(test_drop_to_nobody),
		cmocka_unit_test(test_drop_chroot),
		cmocka_unit_test(test_drop_bad_chroot),
		cmocka_unit_test(test_ensure_user_checks),
		cmocka_unit_test(test_rlimit_nofile),
		cmocka_unit_test(test_rlimit_core),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

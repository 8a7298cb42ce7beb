/*
 * test_store_maildir_access.c: Maildir++ paths and mailbox access: account
 * and folder name bounds, file name and maildirsize parsing (every prefix,
 * at and over the limits), list/open/set_flags/expunge including messages
 * moved by another session.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/file.h"
#include "store/mailbox/maildir.h"

static char root[PATH_MAX];
static char adir[PATH_MAX];

/* A fresh root with an empty account for each test. */
static int setup(void **state)
{
	(void)state;
	xfmt(root, sizeof root, "/tmp/yz_test_maildir_acc.XXXXXX");
	if (mkdtemp(root) == NULL)
		return -1;
	if (maildir_account_path(root, "alice@example.com", adir, sizeof adir) < 0)
		return -1;
	return maildir_create(adir);
}

static int teardown(void **state)
{
	(void)state;
	return rm_tree(root);
}

/* Create a message file with content in <folder>/<sub>/<name>. */
static void put(const char *folder, const char *sub, const char *name, const char *content)
{
	char p[PATH_MAX];
	xfmt(p, sizeof p, "%s/%s/%s", folder, sub, name);
	assert_int_equal(yz_file_write_atomic(p, content, strlen(content), 0600), 0);
}

static bool exists(const char *folder, const char *sub, const char *name)
{
	char p[PATH_MAX];
	struct stat st;
	xfmt(p, sizeof p, "%s/%s/%s", folder, sub, name);
	return stat(p, &st) == 0;
}

static void test_account_path(void **state)
{
	(void)state;
	char out[PATH_MAX], want[PATH_MAX], acc[400];
	assert_int_equal(maildir_account_path("/srv/mail", "bob@example.com", out, sizeof out), 0);
	assert_string_equal(out, "/srv/mail/example.com/bob");
	/* Local part at 64 bytes and over. */
	char local[MAILDIR_LOCALPART_MAX + 2];
	memset(local, 'l', sizeof local);
	local[MAILDIR_LOCALPART_MAX] = '\0';
	xfmt(acc, sizeof acc, "%s@example.com", local);
	assert_int_equal(maildir_account_path("/r", acc, out, sizeof out), 0);
	xfmt(want, sizeof want, "/r/example.com/%s", local);
	assert_string_equal(out, want);
	local[MAILDIR_LOCALPART_MAX] = 'l';
	local[MAILDIR_LOCALPART_MAX + 1] = '\0';
	xfmt(acc, sizeof acc, "%s@example.com", local);
	assert_int_equal(maildir_account_path("/r", acc, out, sizeof out), -1);
	assert_int_equal(errno, EINVAL);
	/* Domain at 253 bytes and over. */
	char dom[MAILDIR_DOMAIN_MAX + 2];
	memset(dom, 'd', sizeof dom);
	dom[MAILDIR_DOMAIN_MAX] = '\0';
	xfmt(acc, sizeof acc, "a@%s", dom);
	assert_int_equal(maildir_account_path("/r", acc, out, sizeof out), 0);
	dom[MAILDIR_DOMAIN_MAX] = 'd';
	dom[MAILDIR_DOMAIN_MAX + 1] = '\0';
	xfmt(acc, sizeof acc, "a@%s", dom);
	assert_int_equal(maildir_account_path("/r", acc, out, sizeof out), -1);
	/* Output buffer exactly large enough, and one byte short. */
	size_t need = strlen("/srv/mail/example.com/bob") + 1;
	assert_int_equal(maildir_account_path("/srv/mail", "bob@example.com", out, need), 0);
	assert_int_equal(maildir_account_path("/srv/mail", "bob@example.com", out, need - 1), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	/* Bad ones. */
	static const char *const bad[] = {
		"", "x", "@", "a@", "@b", "../a@b", "a@..", "a@.b", ".a@b", "a/b@c", "a@b/c",
		"a\tb@c", "a@b\x7f", "a@b\xc3\xa9",
	};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
		assert_int_equal(maildir_account_path("/r", bad[k], out, sizeof out), -1);
	/* UTF-8 local parts are fine. */
	assert_int_equal(maildir_account_path("/r", "j\xc3\xb6rg@b", out, sizeof out), 0);
	assert_int_equal(maildir_account_path(NULL, "a@b", out, sizeof out), -1);
	assert_int_equal(maildir_account_path("", "a@b", out, sizeof out), -1);
}

static void test_folder_names(void **state)
{
	(void)state;
	assert_true(maildir_folder_name_valid("Sent"));
	assert_true(maildir_folder_name_valid("Lists.yizhan-dev"));
	assert_true(maildir_folder_name_valid("&ZeVnLIqe-"));
	static const char *const bad[] = {
		"", ".Sent", "Sent.", "a..b", "a/b", "/", "..", "a\nb", "caf\xc3\xa9",
	};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
		assert_false(maildir_folder_name_valid(bad[k]));
	assert_false(maildir_folder_name_valid(NULL));
	char name[MAILDIR_FOLDER_MAX + 2];
	memset(name, 'f', sizeof name);
	name[MAILDIR_FOLDER_MAX] = '\0';
	assert_true(maildir_folder_name_valid(name));
	assert_int_equal(maildir_folder_create(adir, name), 0);
	assert_int_equal(maildir_folder_exists(adir, name), 1);
	name[MAILDIR_FOLDER_MAX] = 'f';
	name[MAILDIR_FOLDER_MAX + 1] = '\0';
	assert_false(maildir_folder_name_valid(name));
	assert_int_equal(maildir_folder_create(adir, name), -1);
	assert_int_equal(errno, EINVAL);

	char out[PATH_MAX], want[PATH_MAX];
	assert_int_equal(maildir_folder_path(adir, "INBOX", out, sizeof out), 0);
	assert_string_equal(out, adir);
	assert_int_equal(maildir_folder_path(adir, "A.B", out, sizeof out), 0);
	xfmt(want, sizeof want, "%s/.A.B", adir);
	assert_string_equal(out, want);
	/* Hierarchy: the child exists without the parent; maildirfolder is there. */
	assert_int_equal(maildir_folder_create(adir, "A.B"), 0);
	assert_int_equal(maildir_folder_create(adir, "A.B"), 0); /* idempotent */
	assert_int_equal(maildir_folder_exists(adir, "A"), 0);
	assert_true(exists(want, "", "maildirfolder"));

	assert_true(maildir_unique_valid("1700000000.Q1A2B3C.R12"));
	char u[MAILDIR_UNIQUE_MAX + 2];
	memset(u, 'u', sizeof u);
	u[MAILDIR_UNIQUE_MAX] = '\0';
	assert_true(maildir_unique_valid(u));
	u[MAILDIR_UNIQUE_MAX] = 'u';
	u[MAILDIR_UNIQUE_MAX + 1] = '\0';
	assert_false(maildir_unique_valid(u));
}

static void test_name_parse(void **state)
{
	(void)state;
	struct maildir_name_info info;
	const char *n = "Q1.R0.mx,S=1234,W=1300:2,TSRa";
	assert_int_equal(maildir_name_parse(n, strlen(n), &info), 0);
	assert_int_equal(info.unique_len, strlen("Q1.R0.mx"));
	assert_true(info.has_size);
	assert_int_equal(info.size, 1234);
	assert_string_equal(info.flags, "RST");
	assert_string_equal(info.info, "TSRa");

	n = "1700000000.M1P2.host:2,";
	assert_int_equal(maildir_name_parse(n, strlen(n), &info), 0);
	assert_false(info.has_size);
	assert_string_equal(info.flags, "");
	assert_int_equal(info.unique_len, strlen("1700000000.M1P2.host"));

	n = "x,W=5,S=10";
	assert_int_equal(maildir_name_parse(n, strlen(n), &info), 0);
	assert_int_equal(info.size, 10);
	assert_null(info.info);
	/* Largest value, and one more (overflow: no size). */
	n = "x,S=18446744073709551615";
	assert_int_equal(maildir_name_parse(n, strlen(n), &info), 0);
	assert_true(info.has_size);
	assert_int_equal(info.size, 18446744073709551615ULL);
	n = "x,S=18446744073709551616";
	assert_int_equal(maildir_name_parse(n, strlen(n), &info), 0);
	assert_false(info.has_size);
	static const char *const nosize[] = { "x,S=", "x,S=1a", "x,s=5", "x,S=-1", "x:2,S=5" };
	for (size_t k = 0; k < sizeof nosize / sizeof nosize[0]; k++) {
		assert_int_equal(maildir_name_parse(nosize[k], strlen(nosize[k]), &info), 0);
		assert_false(info.has_size);
	}
	/* ":1," info is not flags. */
	n = "x:1,S";
	assert_int_equal(maildir_name_parse(n, strlen(n), &info), 0);
	assert_string_equal(info.flags, "");
	/* Not message names. */
	static const char *const bad[] = { "", ".", "..", ".hidden", ":2,S", ",S=1" };
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
		assert_int_equal(maildir_name_parse(bad[k], strlen(bad[k]), &info), -1);
	/* Byte at a time: every prefix parses consistently and never reads past it. */
	n = "Q1.R0.mx,S=1234,W=1300:2,DFPRST";
	size_t len = strlen(n);
	for (size_t k = 1; k <= len; k++) {
		char *copy = malloc(k);
		memcpy(copy, n, k);
		assert_int_equal(maildir_name_parse(copy, k, &info), 0);
		assert_true(info.unique_len <= k);
		if (k > strlen("Q1.R0.mx,S=") && k <= strlen("Q1.R0.mx,S=1234"))
			assert_true(info.has_size);
		free(copy);
	}
	char longname[NAME_MAX + 2];
	memset(longname, 'n', sizeof longname);
	assert_int_equal(maildir_name_parse(longname, NAME_MAX, &info), 0);
	assert_int_equal(maildir_name_parse(longname, NAME_MAX + 1, &info), -1);
}

static void test_quota_parse(void **state)
{
	(void)state;
	char limit[32];
	long long bytes, count;
	const char *q = "1000S,10C\n100 1\n  -40   -1  \n";
	assert_int_equal(maildir_quota_parse(q, strlen(q), limit, sizeof limit, &bytes, &count), 0);
	assert_string_equal(limit, "1000S,10C");
	assert_int_equal(bytes, 60);
	assert_int_equal(count, 0);
	/* Only the limit line. */
	assert_int_equal(maildir_quota_parse("5S\n", 3, limit, sizeof limit, &bytes, &count), 0);
	assert_int_equal(bytes, 0);
	/* Limit line at the buffer size and over. */
	assert_int_equal(maildir_quota_parse("1234S\n", 6, limit, 6, &bytes, &count), 0);
	assert_int_equal(maildir_quota_parse("1234S\n", 6, limit, 5, &bytes, &count), -1);
	static const char *const bad[] = {
		"", "5S", "5S\n1\n", "5S\n1 x\n", "5S\n1 2 3\n", "5S\n\n", "5S\n1 2",
		"5S\n9223372036854775807 0\n1 0\n", "5S\n99999999999999999999 0\n", "5S\n- 1\n",
	};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
		assert_int_equal(maildir_quota_parse(bad[k], strlen(bad[k]), limit, sizeof limit,
						     &bytes, &count), -1);
	/* Byte at a time: each prefix ending in a newline parses, others are torn. */
	size_t len = strlen(q);
	for (size_t k = 0; k <= len; k++) {
		char *copy = malloc(k + 1);
		memcpy(copy, q, k);
		int r = maildir_quota_parse(copy, k, NULL, 0, &bytes, &count);
		bool complete = k > 0 && q[k - 1] == '\n';
		assert_int_equal(r, complete ? 0 : -1);
		free(copy);
	}
}

static void test_list_open(void **state)
{
	(void)state;
	put(adir, "new", "B2.h,S=5", "hello");
	put(adir, "new", "A1.h", "no size field");
	put(adir, "cur", "C3.h,S=3:2,SF", "abc");
	put(adir, "cur", ".hidden", "x");
	put(adir, "tmp", "T9.h,S=1", "t");
	char p[PATH_MAX], t[PATH_MAX];
	xfmt(p, sizeof p, "%s/cur/adir", adir);
	assert_int_equal(mkdir(p, 0700), 0);
	xfmt(p, sizeof p, "%s/cur/L4.h,S=1", adir);
	xfmt(t, sizeof t, "%s/new/B2.h,S=5", adir);
	assert_int_equal(symlink(t, p), 0);

	struct maildir_msg *m;
	size_t n;
	assert_int_equal(maildir_list(adir, &m, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(m[0].unique, "A1.h");
	assert_true(m[0].in_new);
	assert_int_equal(m[0].size, strlen("no size field"));
	assert_string_equal(m[1].name, "B2.h,S=5");
	assert_int_equal(m[1].size, 5);
	assert_string_equal(m[2].name, "C3.h,S=3:2,SF");
	assert_false(m[2].in_new);
	assert_string_equal(m[2].flags, "FS");
	assert_string_equal(m[2].unique, "C3.h");

	/* Open; then another session moves B2 to cur/ with flags: still found. */
	int fd = maildir_open(adir, &m[1]);
	assert_true(fd >= 0);
	char buf[16];
	assert_int_equal(read(fd, buf, sizeof buf), 5);
	close(fd);
	xfmt(p, sizeof p, "%s/new/B2.h,S=5", adir);
	xfmt(t, sizeof t, "%s/cur/B2.h,S=5:2,S", adir);
	assert_int_equal(rename(p, t), 0);
	fd = maildir_open(adir, &m[1]);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof buf), 5);
	assert_memory_equal(buf, "hello", 5);
	close(fd);
	/* Gone for good. */
	assert_int_equal(unlink(t), 0);
	assert_int_equal(maildir_open(adir, &m[1]), -1);
	assert_int_equal(errno, ENOENT);
	/* A name that tries to leave the folder. */
	struct maildir_msg evil = { .name = "../../x", .unique = "x", .in_new = true };
	assert_int_equal(maildir_open(adir, &evil), -1);
	assert_int_equal(errno, EINVAL);
	maildir_list_free(&m, n);
	assert_null(m);

	/* A missing folder is an error, an empty one is not. */
	xfmt(p, sizeof p, "%s/.nosuch", adir);
	assert_int_equal(maildir_list(p, &m, &n), -1);
	assert_int_equal(maildir_folder_create(adir, "Empty"), 0);
	xfmt(p, sizeof p, "%s/.Empty", adir);
	assert_int_equal(maildir_list(p, &m, &n), 0);
	assert_int_equal(n, 0);
	maildir_list_free(&m, n);
}

static void test_set_flags(void **state)
{
	(void)state;
	put(adir, "new", "F1.h,S=2", "ab");
	put(adir, "cur", "F2.h,S=2:2,Sab", "cd");
	struct maildir_msg *m;
	size_t n;
	assert_int_equal(maildir_list(adir, &m, &n), 0);
	assert_int_equal(n, 2);
	/* new/ -> cur/, flags sorted and de-duplicated. */
	assert_int_equal(maildir_set_flags(adir, &m[0], "TSSD"), 0);
	assert_string_equal(m[0].name, "F1.h,S=2:2,DST");
	assert_false(m[0].in_new);
	assert_string_equal(m[0].flags, "DST");
	assert_false(exists(adir, "new", "F1.h,S=2"));
	assert_true(exists(adir, "cur", "F1.h,S=2:2,DST"));
	/* Keywords kept; clearing all standard flags. */
	assert_int_equal(maildir_set_flags(adir, &m[1], "R"), 0);
	assert_string_equal(m[1].name, "F2.h,S=2:2,Rab");
	assert_int_equal(maildir_set_flags(adir, &m[1], ""), 0);
	assert_string_equal(m[1].name, "F2.h,S=2:2,ab");
	assert_int_equal(maildir_set_flags(adir, &m[1], ""), 0); /* no change */
	/* Invalid flags. */
	assert_int_equal(maildir_set_flags(adir, &m[1], "X"), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(maildir_set_flags(adir, &m[1], "s"), -1);
	/* Renamed meanwhile by another session: followed. */
	char p[PATH_MAX], t[PATH_MAX];
	xfmt(p, sizeof p, "%s/cur/F1.h,S=2:2,DST", adir);
	xfmt(t, sizeof t, "%s/cur/F1.h,S=2:2,FS", adir);
	assert_int_equal(rename(p, t), 0);
	assert_int_equal(maildir_set_flags(adir, &m[0], "P"), 0);
	assert_string_equal(m[0].name, "F1.h,S=2:2,P");
	assert_true(exists(adir, "cur", "F1.h,S=2:2,P"));
	assert_false(exists(adir, "cur", "F1.h,S=2:2,FS"));
	/* Gone: ENOENT. */
	xfmt(p, sizeof p, "%s/cur/F1.h,S=2:2,P", adir);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(maildir_set_flags(adir, &m[0], "S"), -1);
	assert_int_equal(errno, ENOENT);
	maildir_list_free(&m, n);
}

/* The fd-relative variants behave as the path ones, including a message
 * moved meanwhile by another session, and fall back to paths with -1. */
static void test_at_variants(void **state)
{
	(void)state;
	put(adir, "new", "G1.h,S=2", "gh");
	put(adir, "new", "G2.h,S=2", "ij");
	char p[PATH_MAX], t[PATH_MAX];
	xfmt(p, sizeof p, "%s/new", adir);
	int nfd = open(p, O_RDONLY | O_DIRECTORY);
	xfmt(p, sizeof p, "%s/cur", adir);
	int cfd = open(p, O_RDONLY | O_DIRECTORY);
	assert_true(nfd >= 0 && cfd >= 0);
	struct maildir_msg *m;
	size_t n;
	assert_int_equal(maildir_list(adir, &m, &n), 0);
	assert_int_equal(n, 2);
	char buf[4];
	int fd = maildir_open_at(nfd, cfd, adir, &m[0]);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof buf), 2);
	close(fd);
	assert_int_equal(maildir_set_flags_at(nfd, cfd, adir, &m[0], "S"), 0);
	assert_string_equal(m[0].name, "G1.h,S=2:2,S");
	assert_true(exists(adir, "cur", "G1.h,S=2:2,S"));
	assert_int_equal(maildir_set_flags_at(nfd, cfd, adir, &m[0], "S"), 0); /* no change */
	assert_int_equal(maildir_set_flags_at(nfd, cfd, adir, &m[0], "FS"), 0);
	assert_true(exists(adir, "cur", "G1.h,S=2:2,FS"));
	/* Moved by another session: still opened and marked. */
	xfmt(p, sizeof p, "%s/new/G2.h,S=2", adir);
	xfmt(t, sizeof t, "%s/cur/G2.h,S=2:2,R", adir);
	assert_int_equal(rename(p, t), 0);
	fd = maildir_open_at(nfd, cfd, adir, &m[1]);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof buf), 2);
	assert_memory_equal(buf, "ij", 2);
	close(fd);
	assert_int_equal(maildir_set_flags_at(nfd, cfd, adir, &m[1], "RS"), 0);
	assert_true(exists(adir, "cur", "G2.h,S=2:2,RS"));
	/* No fds: by path. */
	assert_int_equal(maildir_set_flags_at(-1, -1, adir, &m[1], "S"), 0);
	assert_true(exists(adir, "cur", "G2.h,S=2:2,S"));
	fd = maildir_open_at(-1, -1, adir, &m[1]);
	assert_true(fd >= 0);
	close(fd);
	/* A name that tries to leave the folder. */
	struct maildir_msg evil = { .name = "../../x", .unique = "x", .in_new = true };
	assert_int_equal(maildir_open_at(nfd, cfd, adir, &evil), -1);
	assert_int_equal(errno, EINVAL);
	maildir_list_free(&m, n);
	close(nfd);
	close(cfd);
}

static void test_expunge_quota(void **state)
{
	(void)state;
	assert_int_equal(maildir_folder_create(adir, "Trash"), 0);
	char trash[PATH_MAX];
	xfmt(trash, sizeof trash, "%s/.Trash", adir);
	put(adir, "new", "E1.h,S=10", "0123456789");
	put(adir, "cur", "E2.h,S=4:2,S", "abcd");
	put(trash, "cur", "E3.h,S=3:2,ST", "xyz");
	unsigned long long bytes, count;
	assert_int_equal(maildir_quota_usage(adir, 100, &bytes, &count), 0);
	assert_int_equal(bytes, 17);
	assert_int_equal(count, 3);

	struct maildir_msg *m;
	size_t n;
	assert_int_equal(maildir_list(adir, &m, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(maildir_expunge(adir, &m[0]), 0);
	assert_false(exists(adir, "new", "E1.h,S=10"));
	assert_int_equal(maildir_quota_usage(adir, 100, &bytes, &count), 0);
	assert_int_equal(bytes, 7);
	assert_int_equal(count, 2);
	/* Already expunged by another session: success, not counted twice. */
	assert_int_equal(maildir_expunge(adir, &m[0]), 0);
	/* Moved (flags changed) by another session: found and expunged. */
	char p[PATH_MAX], t[PATH_MAX];
	xfmt(p, sizeof p, "%s/cur/E2.h,S=4:2,S", adir);
	xfmt(t, sizeof t, "%s/cur/E2.h,S=4:2,RS", adir);
	assert_int_equal(rename(p, t), 0);
	assert_int_equal(maildir_expunge(adir, &m[1]), 0);
	assert_false(exists(adir, "cur", "E2.h,S=4:2,RS"));
	maildir_list_free(&m, n);
	/* Expunge in a folder records the delta in the account's maildirsize. */
	assert_int_equal(maildir_list(trash, &m, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(maildir_expunge(trash, &m[0]), 0);
	maildir_list_free(&m, n);
	char q[PATH_MAX];
	xfmt(q, sizeof q, "%s/maildirsize", adir);
	char *data;
	size_t len;
	assert_int_equal(yz_file_read_all(q, 4096, &data, &len), 0);
	assert_string_equal(data, "100S\n17 3\n-10 -1\n-4 -1\n-3 -1\n");
	free(data);
	assert_int_equal(maildir_quota_usage(adir, 100, &bytes, &count), 0);
	assert_int_equal(bytes, 0);
	assert_int_equal(count, 0);
	/* Without maildirsize an expunge does not create one. */
	assert_int_equal(unlink(q), 0);
	assert_int_equal(maildir_quota_add(adir, -5, -1), 0);
	struct stat st;
	assert_int_equal(stat(q, &st), -1);
}

static void test_tmp_clean(void **state)
{
	(void)state;
	put(adir, "tmp", "old.h,S=1", "o");
	put(adir, "tmp", "fresh.h,S=1", "f");
	char p[PATH_MAX];
	xfmt(p, sizeof p, "%s/tmp/old.h,S=1", adir);
	struct timespec ts[2];
	ts[0].tv_sec = ts[1].tv_sec = time(NULL) - (time_t)MAILDIR_TMP_MAX_AGE - 60;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	unsigned long removed;
	assert_int_equal(maildir_tmp_clean(adir, MAILDIR_TMP_MAX_AGE, &removed), 0);
	assert_int_equal(removed, 1);
	assert_false(exists(adir, "tmp", "old.h,S=1"));
	assert_true(exists(adir, "tmp", "fresh.h,S=1"));
	assert_int_equal(maildir_tmp_clean(adir, 0, NULL), 0);
	assert_false(exists(adir, "tmp", "fresh.h,S=1"));
	xfmt(p, sizeof p, "%s/.nosuch", adir);
	assert_int_equal(maildir_tmp_clean(p, 0, &removed), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_account_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_folder_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_name_parse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota_parse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_at_variants, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expunge_quota, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tmp_clean, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

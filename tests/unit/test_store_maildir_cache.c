/*
 * test_store_maildir_cache.c: the cheap delivery path of the Maildir++
 * store: unnamed (O_TMPFILE) files named by linkat() at commit, the fallback
 * to tmp/ when O_TMPFILE is refused or /proc is missing, and the per-process
 * folder cache (a Maildir removed or replaced under a warm cache is created
 * again, the cache and the open files stay within their bounds, no fd leaks),
 * with duplicates still detected on every path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/file.h"
#include "store/mailbox/maildir.h"

static char root[PATH_MAX];
static struct maildir_cache *cache;

static const char HDR[] = "Return-Path: <sender@example.org>\r\n";
static const char BODY[] = "From: sender@example.org\r\nSubject: hi\r\n\r\nhello\r\n";

static int fds_at_setup;

/* A fresh root and a fresh process cache for each test. */
static int setup(void **state)
{
	(void)state;
	xfmt(root, sizeof root, "/tmp/yz_test_mdcache.XXXXXX");
	if (mkdtemp(root) == NULL)
		return -1;
	fds_at_setup = count_fds();
	cache = maildir_cache_new(0);
	return 0;
}

/* Everything removed, and no fd left behind once the cache is gone. */
static int teardown(void **state)
{
	(void)state;
	maildir_cache_free(&cache);
	int leaked = count_fds() - fds_at_setup;
	int r = rm_tree(root);
	return leaked != 0 ? -1 : r;
}

/* Number of non-dot entries of <root>/example.com/<user>/<sub>. */
static int count_in(const char *user, const char *sub)
{
	char p[PATH_MAX];
	xfmt(p, sizeof p, "%s/example.com/%s/%s", root, user, sub);
	return count_entries(p);
}

/* Assert that path holds exactly HDR + body. */
static void assert_content(const char *path, const char *body)
{
	char *data;
	size_t len;
	assert_int_equal(yz_file_read_all(path, 1 << 20, &data, &len), 0);
	size_t hl = strlen(HDR), bl = strlen(body);
	assert_int_equal(len, hl + bl);
	assert_memory_equal(data, HDR, hl);
	assert_memory_equal(data + hl, body, bl);
	free(data);
}

/* A batch on the test's cache with optional hooks. */
static struct maildir_batch *batch_new(const struct maildir_io_hooks *hooks)
{
	struct maildir_batch *b = maildir_batch_new(root, "mx.example");
	maildir_batch_set_cache(b, cache);
	maildir_batch_set_io_hooks(b, hooks);
	return b;
}

/* Deliver one message in its own batch; the path (if path_r) and status. */
static enum maildir_status deliver(const char *account, const char *folder, const char *unique,
				   bool redelivery, const struct maildir_io_hooks *hooks,
				   char *path_r, size_t pathsz)
{
	struct maildir_batch *b = batch_new(hooks);
	int i = maildir_batch_add_mem(b, account, folder, unique, redelivery, HDR, strlen(HDR),
				      BODY, strlen(BODY), 0);
	assert_true(i >= 0);
	assert_int_equal(maildir_batch_commit(b), 0);
	enum maildir_status st = maildir_batch_status(b, i, NULL);
	if (path_r != NULL) {
		const char *p = maildir_batch_path(b, i);
		xfmt(path_r, pathsz, "%s", p != NULL ? p : "");
	}
	maildir_batch_free(&b);
	return st;
}

/* Hooks counting and refusing O_TMPFILE, and watching links. */
static int tmpfile_calls;
static int tmpfile_errno;
static int linkat_calls;
static int linkat_enoent_proc; /* fail the next link from /proc with ENOENT */

static int refusing_tmpfile(int dirfd, int flags, mode_t mode)
{
	tmpfile_calls++;
	if (tmpfile_errno != 0) {
		errno = tmpfile_errno;
		return -1;
	}
	return openat(dirfd, ".", flags, mode);
}

static int watching_linkat(int od, const char *from, int nd, const char *to, int flags)
{
	linkat_calls++;
	if (linkat_enoent_proc > 0 && strncmp(from, "/proc/", 6) == 0) {
		linkat_enoent_proc--;
		errno = ENOENT;
		return -1;
	}
	return linkat(od, from, nd, to, flags);
}

static void test_unnamed_invisible_until_commit(void **state)
{
	(void)state;
	struct maildir_io_hooks hooks = { .open_tmpfile = refusing_tmpfile };
	tmpfile_calls = 0;
	tmpfile_errno = 0;
	struct maildir_batch *b = batch_new(&hooks);
	int i = maildir_batch_add_mem(b, "a@example.com", NULL, "QA.R0", false, HDR, strlen(HDR),
				      BODY, strlen(BODY), 0);
	assert_int_equal(tmpfile_calls, 1);
	/* Written, not yet durable: in no directory at all. */
	assert_int_equal(count_in("a", "new"), 0);
	assert_int_equal(count_in("a", "tmp"), 0);
	assert_int_equal(maildir_batch_commit(b), 0);
	assert_int_equal(maildir_batch_status(b, i, NULL), MAILDIR_OK);
	assert_content(maildir_batch_path(b, i), BODY);
	struct stat st;
	assert_int_equal(stat(maildir_batch_path(b, i), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_nlink, 1);
	maildir_batch_free(&b);
	assert_int_equal(count_in("a", "new"), 1);
	assert_int_equal(count_in("a", "tmp"), 0);
	assert_int_equal(maildir_cache_count(cache), 1);
}

/* O_TMPFILE refused with err: the tmp/ path, remembered for the folder. */
static void run_refused(int err)
{
	struct maildir_io_hooks hooks = { .open_tmpfile = refusing_tmpfile };
	tmpfile_calls = 0;
	tmpfile_errno = err;
	struct maildir_batch *b = batch_new(&hooks);
	int i = maildir_batch_add_mem(b, "f@example.com", NULL, "QF.R0", false, HDR, strlen(HDR),
				      BODY, strlen(BODY), 0);
	assert_int_equal(count_in("f", "tmp"), 1); /* today's path */
	int j = maildir_batch_add_mem(b, "f@example.com", NULL, "QF.R1", false, "X: 1\r\n", 6,
				      BODY, strlen(BODY), 0);
	assert_int_equal(tmpfile_calls, 1); /* not asked again */
	assert_int_equal(maildir_batch_commit(b), 0);
	assert_int_equal(maildir_batch_status(b, i, NULL), MAILDIR_OK);
	assert_int_equal(maildir_batch_status(b, j, NULL), MAILDIR_OK);
	assert_content(maildir_batch_path(b, i), BODY);
	maildir_batch_free(&b);
	assert_int_equal(count_in("f", "tmp"), 0);
	assert_int_equal(count_in("f", "new"), 2);
	/* The cache remembers it for the next batch too. */
	assert_int_equal(deliver("f@example.com", NULL, "QF.R2", false, &hooks, NULL, 0),
			 MAILDIR_OK);
	assert_int_equal(tmpfile_calls, 1);
	/* And the duplicate is found on this path as on the other. */
	assert_int_equal(deliver("f@example.com", NULL, "QF.R2", false, &hooks, NULL, 0),
			 MAILDIR_DUPLICATE);
}

static void test_fallback_eopnotsupp(void **state)
{
	(void)state;
	run_refused(EOPNOTSUPP);
}

static void test_fallback_eisdir(void **state)
{
	(void)state;
	run_refused(EISDIR);
}

static void test_fallback_einval(void **state)
{
	(void)state;
	run_refused(EINVAL);
}

static void test_fallback_no_proc(void **state)
{
	(void)state;
	struct maildir_io_hooks hooks = { .proc_fd_dir = "/nonexistent/proc/self/fd" };
	struct maildir_batch *b = batch_new(&hooks);
	int i = maildir_batch_add_mem(b, "p@example.com", NULL, "QP.R0", false, HDR, strlen(HDR),
				      BODY, strlen(BODY), 0);
	assert_int_equal(count_in("p", "tmp"), 1); /* no /proc: tmp/ */
	assert_int_equal(maildir_batch_commit(b), 0);
	assert_int_equal(maildir_batch_status(b, i, NULL), MAILDIR_OK);
	assert_content(maildir_batch_path(b, i), BODY);
	maildir_batch_free(&b);
	assert_int_equal(count_in("p", "tmp"), 0);
	assert_int_equal(count_in("p", "new"), 1);
}

static void test_proc_vanishes_before_link(void **state)
{
	(void)state;
	struct maildir_io_hooks hooks = { .linkat = watching_linkat };
	linkat_enoent_proc = 1;
	assert_int_equal(deliver("v@example.com", NULL, "QV.R0", false, &hooks, NULL, 0),
			 MAILDIR_TEMPFAIL);
	assert_int_equal(count_in("v", "new"), 0);
	assert_int_equal(count_in("v", "tmp"), 0);
	/* The retry delivers. */
	char path[PATH_MAX];
	assert_int_equal(deliver("v@example.com", NULL, "QV.R0", true, &hooks, path, sizeof path),
			 MAILDIR_OK);
	assert_content(path, BODY);
}

static void test_duplicate_unnamed(void **state)
{
	(void)state;
	char p1[PATH_MAX], p2[PATH_MAX];
	assert_int_equal(deliver("d@example.com", NULL, "QD.R0", false, NULL, p1, sizeof p1),
			 MAILDIR_OK);
	/* Warm cache: the second delivery is found, nothing is written. */
	assert_int_equal(deliver("d@example.com", NULL, "QD.R0", false, NULL, p2, sizeof p2),
			 MAILDIR_DUPLICATE);
	assert_string_equal(p1, p2);
	/* Delivered by someone else between add and commit: linkat() does not
	 * replace it, and the earlier file stays as it was. */
	struct maildir_batch *b = batch_new(NULL);
	int i = maildir_batch_add_mem(b, "d@example.com", NULL, "QD.R1", false, HDR, strlen(HDR),
				      BODY, strlen(BODY), 0);
	char other[PATH_MAX];
	xfmt(other, sizeof other, "%s/example.com/d/new/QD.R1.mx.example,S=%zu", root,
	     strlen(HDR) + strlen(BODY));
	assert_int_equal(yz_file_write_atomic(other, "earlier", 7, 0600), 0);
	assert_int_equal(maildir_batch_commit(b), 0);
	assert_int_equal(maildir_batch_status(b, i, NULL), MAILDIR_DUPLICATE);
	maildir_batch_free(&b);
	char *data;
	size_t len;
	assert_int_equal(yz_file_read_all(other, 100, &data, &len), 0);
	assert_int_equal(len, 7);
	assert_memory_equal(data, "earlier", 7);
	free(data);
	assert_int_equal(count_in("d", "new"), 2);
}

static void test_deleted_maildir_recreated(void **state)
{
	(void)state;
	char acct[PATH_MAX], path[PATH_MAX];
	xfmt(acct, sizeof acct, "%s/example.com/r", root);
	assert_int_equal(deliver("r@example.com", NULL, "QR.R0", false, NULL, NULL, 0),
			 MAILDIR_OK);
	assert_int_equal(maildir_cache_count(cache), 1);
	/* An administrator removes the whole Maildir: the warm cache notices. */
	assert_int_equal(rm_tree(acct), 0);
	assert_int_equal(deliver("r@example.com", NULL, "QR.R1", false, NULL, path, sizeof path),
			 MAILDIR_OK);
	assert_content(path, BODY);
	assert_int_equal(count_in("r", "new"), 1);
	assert_int_equal(count_in("r", "cur"), 0);
	assert_int_equal(count_in("r", "tmp"), 0);
	assert_int_equal(maildir_cache_count(cache), 1);
	/* Replaced by another Maildir (moved away, a new one made): the new one
	 * gets the mail, not the moved one the cached fd points to. */
	char moved[PATH_MAX];
	xfmt(moved, sizeof moved, "%s/example.com/r.old", root);
	assert_int_equal(rename(acct, moved), 0);
	assert_int_equal(maildir_create(acct), 0);
	assert_int_equal(deliver("r@example.com", NULL, "QR.R2", false, NULL, path, sizeof path),
			 MAILDIR_OK);
	assert_non_null(strstr(path, "/example.com/r/new/QR.R2."));
	assert_int_equal(count_in("r", "new"), 1);
	assert_int_equal(count_in("r.old", "new"), 1);
	/* Only new/ removed: created again as well. */
	char newdir[PATH_MAX];
	xfmt(newdir, sizeof newdir, "%s/new", acct);
	assert_int_equal(rm_tree(newdir), 0);
	assert_int_equal(deliver("r@example.com", NULL, "QR.R3", false, NULL, NULL, 0),
			 MAILDIR_OK);
	assert_int_equal(count_in("r", "new"), 1);
}

static void test_deleted_between_add_and_commit(void **state)
{
	(void)state;
	char acct[PATH_MAX];
	xfmt(acct, sizeof acct, "%s/example.com/g", root);
	struct maildir_batch *b = batch_new(NULL);
	int i = maildir_batch_add_mem(b, "g@example.com", NULL, "QG.R0", false, HDR, strlen(HDR),
				      BODY, strlen(BODY), 0);
	assert_int_equal(rm_tree(acct), 0);
	assert_int_equal(maildir_batch_commit(b), 0);
	assert_int_equal(maildir_batch_status(b, i, NULL), MAILDIR_TEMPFAIL);
	maildir_batch_free(&b);
	/* The entry was dropped: the queue's retry recreates the Maildir. */
	assert_int_equal(deliver("g@example.com", NULL, "QG.R0", true, NULL, NULL, 0),
			 MAILDIR_OK);
	assert_int_equal(count_in("g", "new"), 1);
}

static void test_plus_folder_cached(void **state)
{
	(void)state;
	char acct[PATH_MAX], path[PATH_MAX];
	xfmt(acct, sizeof acct, "%s/example.com/pf", root);
	/* No folder yet: INBOX (and no negative entry is kept). */
	assert_int_equal(deliver("pf@example.com", "Lists", "QL.R0", false, NULL, path,
				 sizeof path), MAILDIR_OK);
	assert_non_null(strstr(path, "/pf/new/"));
	assert_int_equal(maildir_folder_create(acct, "Lists"), 0);
	assert_int_equal(deliver("pf@example.com", "Lists", "QL.R1", false, NULL, path,
				 sizeof path), MAILDIR_OK);
	assert_non_null(strstr(path, "/pf/.Lists/new/"));
	assert_int_equal(maildir_cache_count(cache), 2);
	assert_int_equal(deliver("pf@example.com", "Lists", "QL.R2", false, NULL, path,
				 sizeof path), MAILDIR_OK);
	assert_non_null(strstr(path, "/pf/.Lists/new/"));
	/* Quota counts INBOX and the folder across batches of the cache. */
	unsigned long long bytes, count;
	assert_int_equal(maildir_quota_usage(acct, 0, &bytes, &count), 0);
	assert_int_equal(count, 3);
	assert_int_equal(bytes, 3 * (strlen(HDR) + strlen(BODY)));
	/* The folder deleted under the warm cache: INBOX again. */
	char fdir[PATH_MAX];
	xfmt(fdir, sizeof fdir, "%s/.Lists", acct);
	assert_int_equal(rm_tree(fdir), 0);
	assert_int_equal(deliver("pf@example.com", "Lists", "QL.R3", false, NULL, path,
				 sizeof path), MAILDIR_OK);
	assert_non_null(strstr(path, "/pf/new/"));
}

static void test_quota_across_cached_batches(void **state)
{
	(void)state;
	size_t size = strlen(HDR) + strlen(BODY);
	unsigned long long quota = 2 * size;
	for (int k = 0; k < 3; k++) {
		char unique[32];
		xfmt(unique, sizeof unique, "QQ.R%d", k);
		struct maildir_batch *b = batch_new(NULL);
		int i = maildir_batch_add_mem(b, "q@example.com", NULL, unique, false, HDR,
					      strlen(HDR), BODY, strlen(BODY), quota);
		assert_int_equal(maildir_batch_commit(b), 0);
		assert_int_equal(maildir_batch_status(b, i, NULL),
				 k < 2 ? MAILDIR_OK : MAILDIR_OVER_QUOTA);
		maildir_batch_free(&b);
	}
	assert_int_equal(count_in("q", "new"), 2);
}

static void test_cache_bounded(void **state)
{
	(void)state;
	maildir_cache_free(&cache);
	cache = maildir_cache_new(2);
	int fds = count_fds();
	/* Three accounts in one batch with room for two: all delivered, the
	 * third through a detached entry closed with the batch. */
	struct maildir_batch *b = batch_new(NULL);
	int idx[3];
	for (int k = 0; k < 3; k++) {
		char acct[32], unique[32];
		xfmt(acct, sizeof acct, "c%d@example.com", k);
		xfmt(unique, sizeof unique, "QC.R%d", k);
		idx[k] = maildir_batch_add_mem(b, acct, NULL, unique, false, HDR, strlen(HDR),
					       BODY, strlen(BODY), 0);
	}
	assert_int_equal(maildir_cache_count(cache), 2);
	assert_int_equal(maildir_batch_commit(b), 0);
	for (int k = 0; k < 3; k++)
		assert_int_equal(maildir_batch_status(b, idx[k], NULL), MAILDIR_OK);
	maildir_batch_free(&b);
	assert_int_equal(count_fds(), fds + 2);
	/* Least recently used out, one batch at a time. */
	for (int k = 0; k < 6; k++) {
		char acct[32], unique[32];
		xfmt(acct, sizeof acct, "c%d@example.com", k);
		xfmt(unique, sizeof unique, "QC.S%d", k);
		assert_int_equal(deliver(acct, NULL, unique, false, NULL, NULL, 0), MAILDIR_OK);
		assert_true(maildir_cache_count(cache) <= 2);
	}
	assert_int_equal(count_fds(), fds + 2);
	maildir_cache_clear(cache);
	assert_int_equal(maildir_cache_count(cache), 0);
	assert_int_equal(count_fds(), fds);
	assert_int_equal(count_in("c0", "new"), 2);
	assert_int_equal(count_in("c5", "new"), 1);
}

static void test_open_files_bounded(void **state)
{
	(void)state;
	int fds = count_fds();
	int n = MAILDIR_BATCH_OPEN_MAX + 5;
	struct maildir_batch *b = batch_new(NULL);
	for (int k = 0; k < n; k++) {
		char unique[32], hdr[32];
		xfmt(unique, sizeof unique, "QO.R%d", k);
		xfmt(hdr, sizeof hdr, "X-N: %d\r\n", k); /* distinct files */
		assert_int_equal(maildir_batch_add_mem(b, "o@example.com", NULL, unique, false, hdr,
						       strlen(hdr), BODY, strlen(BODY), 0), k);
	}
	/* The cache's fd, the batch's syncfs fd, and at most the bound. */
	assert_true(count_fds() <= fds + 2 + MAILDIR_BATCH_OPEN_MAX);
	assert_int_equal(count_in("o", "tmp"), 5); /* the rest went the tmp/ way */
	assert_int_equal(maildir_batch_commit(b), 0);
	for (int k = 0; k < n; k++)
		assert_int_equal(maildir_batch_status(b, k, NULL), MAILDIR_OK);
	maildir_batch_free(&b);
	assert_int_equal(count_in("o", "new"), n);
	assert_int_equal(count_in("o", "tmp"), 0);
}

static void test_shared_unnamed_many_recipients(void **state)
{
	(void)state;
	/* One unnamed file, linked into every recipient's new/. */
	struct maildir_io_hooks hooks = { .open_tmpfile = refusing_tmpfile };
	tmpfile_calls = 0;
	tmpfile_errno = 0;
	struct maildir_batch *b = batch_new(&hooks);
	int idx[5];
	for (int k = 0; k < 5; k++) {
		char acct[32], unique[32];
		xfmt(acct, sizeof acct, "m%d@example.com", k);
		xfmt(unique, sizeof unique, "QM.R%d", k);
		idx[k] = maildir_batch_add_mem(b, acct, NULL, unique, false, HDR, strlen(HDR),
					       BODY, strlen(BODY), 0);
	}
	assert_int_equal(tmpfile_calls, 1);
	assert_int_equal(maildir_batch_commit(b), 0);
	for (int k = 0; k < 5; k++) {
		assert_int_equal(maildir_batch_status(b, idx[k], NULL), MAILDIR_OK);
		struct stat st;
		assert_int_equal(stat(maildir_batch_path(b, idx[k]), &st), 0);
		assert_int_equal(st.st_nlink, 5);
	}
	assert_content(maildir_batch_path(b, idx[4]), BODY);
	maildir_batch_free(&b);
}

static void test_write_fault_unnamed(void **state)
{
	(void)state;
	int fds = count_fds();
	/* A body fd that is shorter than announced: the item fails, nothing
	 * is left anywhere, no fd is kept. */
	char src[PATH_MAX];
	xfmt(src, sizeof src, "%s/body", root);
	assert_int_equal(yz_file_write_atomic(src, BODY, strlen(BODY), 0600), 0);
	int fd = open(src, O_RDONLY);
	assert_true(fd >= 0);
	struct maildir_batch *b = batch_new(NULL);
	int i = maildir_batch_add(b, "w@example.com", NULL, "QW.R0", false, HDR, strlen(HDR), fd,
				  3, strlen(BODY), 0);
	int j = maildir_batch_add(b, "w@example.com", NULL, "QW.R1", false, HDR, strlen(HDR), fd,
				  3, strlen(BODY) - 3, 0);
	close(fd);
	assert_int_equal(maildir_batch_status(b, i, NULL), MAILDIR_TEMPFAIL);
	assert_int_equal(maildir_batch_commit(b), 0);
	assert_int_equal(maildir_batch_status(b, j, NULL), MAILDIR_OK);
	assert_content(maildir_batch_path(b, j), BODY + 3);
	maildir_batch_free(&b);
	assert_int_equal(count_in("w", "new"), 1);
	assert_int_equal(count_in("w", "tmp"), 0);
	assert_int_equal(count_fds(), fds + 1); /* the cache's fd on w/new */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unnamed_invisible_until_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fallback_eopnotsupp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fallback_eisdir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fallback_einval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fallback_no_proc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_proc_vanishes_before_link, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_unnamed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deleted_maildir_recreated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deleted_between_add_and_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plus_folder_cached, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota_across_cached_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_files_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_unnamed_many_recipients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_fault_unnamed, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

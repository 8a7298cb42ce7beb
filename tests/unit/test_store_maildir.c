/*
 * test_store_maildir.c: Maildir++ delivery batches: byte-exact files,
 * idempotent redelivery, hard-linked multi-recipient delivery, plus-address
 * folders, quota at and over the limit, and fault injection (write, fsync,
 * syncfs, link failures) leaving no partial file in new/; each test runs
 * with unnamed (O_TMPFILE) files and with the tmp/ path, and with a cache
 * shared across tests.
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

static const char HDR[] = "Return-Path: <sender@example.org>\r\n";
static const char BODY[] = "From: sender@example.org\r\nSubject: hi\r\n\r\nhello\r\n.\r\n";

/* A fresh empty root for each test. */
static int setup(void **state)
{
	(void)state;
	xfmt(root, sizeof root, "/tmp/yz_test_maildir.XXXXXX");
	if (mkdtemp(root) == NULL)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return rm_tree(root);
}

/* Count files in <root>/<domain>/<user>/<sub>. */
static int count_in(const char *domain, const char *user, const char *sub)
{
	char p[PATH_MAX];
	xfmt(p, sizeof p, "%s/%s/%s/%s", root, domain, user, sub);
	return count_entries(p);
}

/* Read a whole file into a static buffer. */
static char *slurp(const char *path, size_t *len_r)
{
	char *data;
	size_t len;
	if (yz_file_read_all(path, 1 << 24, &data, &len) < 0)
		return NULL;
	*len_r = len;
	return data;
}

/* Assert that path holds exactly HDR + BODY. */
static void assert_content(const char *path, const char *hdr, const char *body)
{
	size_t len;
	char *data = slurp(path, &len);
	assert_non_null(data);
	size_t hl = strlen(hdr), bl = strlen(body);
	assert_int_equal(len, hl + bl);
	assert_memory_equal(data, hdr, hl);
	assert_memory_equal(data + hl, body, bl);
	free(data);
}

/* How the batches of a run are made: every test runs three times, with
 * unnamed files and a private cache, with unnamed files and one cache shared
 * by every batch (as the mailbox role does, across tests whose roots are
 * removed: stale entries must be noticed), and on the tmp/ path. */
static bool use_tmpfile = true;
static struct maildir_cache *shared_cache;

/* A batch under root for the current run mode. */
static struct maildir_batch *batch_new(const char *host)
{
	struct maildir_batch *b = maildir_batch_new(root, host);
	maildir_batch_set_tmpfile(b, use_tmpfile);
	if (shared_cache != NULL)
		maildir_batch_set_cache(b, shared_cache);
	return b;
}

/* Deliver one message in its own batch; returns the status. */
static enum maildir_status deliver1(const char *account, const char *folder, const char *unique,
				    bool redelivery, const char *body,
				    unsigned long long quota, char *path_r, size_t pathsz)
{
	struct maildir_batch *b = batch_new("mx.example");
	int i = maildir_batch_add_mem(b, account, folder, unique, redelivery, HDR, strlen(HDR),
				      body, strlen(body), quota);
	assert_true(i >= 0);
	assert_int_equal(maildir_batch_commit(b), 0);
	enum maildir_status st = maildir_batch_status(b, i, NULL);
	if (path_r != NULL) {
		const char *p = maildir_batch_path(b, i);
		xfmt(path_r, pathsz, "%s", p != NULL ? p : "");
	}
	maildir_batch_free(&b);
	assert_null(b);
	return st;
}

static void test_deliver_one(void **state)
{
	(void)state;
	char path[PATH_MAX], want[PATH_MAX];
	size_t size = strlen(HDR) + strlen(BODY);
	assert_int_equal(deliver1("alice@example.com", NULL, "Q1A2B3.R0", false, BODY, 0,
				  path, sizeof path), MAILDIR_OK);
	xfmt(want, sizeof want, "%s/example.com/alice/new/Q1A2B3.R0.mx.example,S=%zu",
		 root, size);
	assert_string_equal(path, want);
	assert_content(path, HDR, BODY);
	assert_int_equal(count_in("example.com", "alice", "tmp"), 0);
	assert_int_equal(count_in("example.com", "alice", "cur"), 0);
	assert_int_equal(count_in("example.com", "alice", "new"), 1);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	/* maildirsize: limit line, then one delta line. */
	char qpath[PATH_MAX], wantq[64];
	xfmt(qpath, sizeof qpath, "%s/example.com/alice/maildirsize", root);
	size_t len;
	char *q = slurp(qpath, &len);
	assert_non_null(q);
	xfmt(wantq, sizeof wantq, "0S\n0 0\n%zu 1\n", size);
	assert_string_equal(q, wantq);
	free(q);
}

static void test_deliver_fd(void **state)
{
	(void)state;
	char qf[PATH_MAX];
	xfmt(qf, sizeof qf, "%s/queuefile", root);
	int fd = open(qf, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(yz_write_full(fd, "ENVELOPE\n", 9), 0);
	assert_int_equal(yz_write_full(fd, BODY, strlen(BODY)), 0);
	assert_int_equal(yz_write_full(fd, "TRAILER", 7), 0);

	struct maildir_batch *b = batch_new("mx.example");
	int i = maildir_batch_add(b, "bob@example.com", NULL, "QFD.R1", false, HDR, strlen(HDR),
				  fd, 9, strlen(BODY), 0);
	/* A body announced longer than the file: TEMPFAIL, nothing left. */
	int j = maildir_batch_add(b, "carol@example.com", NULL, "QFD.R2", false, HDR,
				  strlen(HDR), fd, 9, 4096, 0);
	assert_int_equal(maildir_batch_commit(b), 0);
	assert_int_equal(maildir_batch_status(b, i, NULL), MAILDIR_OK);
	assert_content(maildir_batch_path(b, i), HDR, BODY);
	const char *err;
	assert_int_equal(maildir_batch_status(b, j, &err), MAILDIR_TEMPFAIL);
	assert_non_null(err);
	assert_null(maildir_batch_path(b, j));
	assert_int_equal(count_in("example.com", "carol", "tmp"), 0);
	assert_int_equal(count_in("example.com", "carol", "new"), 0);
	maildir_batch_free(&b);
	close(fd);
}

static void test_redelivery_new(void **state)
{
	(void)state;
	char p1[PATH_MAX], p2[PATH_MAX];
	assert_int_equal(deliver1("alice@example.com", NULL, "QDUP.R0", false, BODY, 0, p1,
				  sizeof p1), MAILDIR_OK);
	/* Found by one stat even without the redelivery hint. */
	assert_int_equal(deliver1("alice@example.com", NULL, "QDUP.R0", false, BODY, 0, p2,
				  sizeof p2), MAILDIR_DUPLICATE);
	assert_string_equal(p1, p2);
	assert_int_equal(deliver1("alice@example.com", NULL, "QDUP.R0", true, BODY, 0, NULL, 0),
			 MAILDIR_DUPLICATE);
	assert_int_equal(count_in("example.com", "alice", "new"), 1);
	/* Quota counted once. */
	unsigned long long bytes, count;
	char acct[PATH_MAX];
	xfmt(acct, sizeof acct, "%s/example.com/alice", root);
	assert_int_equal(maildir_quota_usage(acct, 0, &bytes, &count), 0);
	assert_int_equal(count, 1);
	assert_int_equal(bytes, strlen(HDR) + strlen(BODY));
}

static void test_redelivery_cur(void **state)
{
	(void)state;
	char p1[PATH_MAX], p2[PATH_MAX], acct[PATH_MAX];
	assert_int_equal(deliver1("alice@example.com", NULL, "QCUR.R3", false, BODY, 0, p1,
				  sizeof p1), MAILDIR_OK);
	xfmt(acct, sizeof acct, "%s/example.com/alice", root);
	struct maildir_msg *msgs;
	size_t n;
	assert_int_equal(maildir_list(acct, &msgs, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(maildir_set_flags(acct, &msgs[0], "SF"), 0);
	maildir_list_free(&msgs, n);
	assert_int_equal(count_in("example.com", "alice", "new"), 0);
	assert_int_equal(count_in("example.com", "alice", "cur"), 1);

	assert_int_equal(deliver1("alice@example.com", NULL, "QCUR.R3", true, BODY, 0, p2,
				  sizeof p2), MAILDIR_DUPLICATE);
	assert_non_null(strstr(p2, "/cur/QCUR.R3.mx.example,S="));
	assert_non_null(strstr(p2, ":2,FS"));
	/* Even if the header changed size meanwhile, the unique part matches. */
	struct maildir_batch *b = batch_new("mx.example");
	int i = maildir_batch_add_mem(b, "alice@example.com", NULL, "QCUR.R3", true,
				      "X: y\r\n", 6, BODY, strlen(BODY), 0);
	assert_int_equal(maildir_batch_commit(b), 0);
	assert_int_equal(maildir_batch_status(b, i, NULL), MAILDIR_DUPLICATE);
	maildir_batch_free(&b);
	assert_int_equal(count_in("example.com", "alice", "new"), 0);
	assert_int_equal(count_in("example.com", "alice", "cur"), 1);
}

static void test_same_destination_in_batch(void **state)
{
	(void)state;
	struct maildir_batch *b = batch_new("mx.example");
	int i = maildir_batch_add_mem(b, "alice@example.com", NULL, "QSAME.R0", false, HDR,
				      strlen(HDR), BODY, strlen(BODY), 0);
	int j = maildir_batch_add_mem(b, "alice@example.com", NULL, "QSAME.R0", false, HDR,
				      strlen(HDR), BODY, strlen(BODY), 0);
	assert_int_equal(maildir_batch_status(b, i, NULL), MAILDIR_TEMPFAIL); /* not committed */
	assert_int_equal(maildir_batch_commit(b), 0);
	assert_int_equal(maildir_batch_commit(b), -1); /* once only */
	assert_int_equal(maildir_batch_status(b, i, NULL), MAILDIR_OK);
	assert_int_equal(maildir_batch_status(b, j, NULL), MAILDIR_DUPLICATE);
	assert_string_equal(maildir_batch_path(b, i), maildir_batch_path(b, j));
	assert_int_equal(maildir_batch_add_mem(b, "alice@example.com", NULL, "QLATE.R0", false,
					       HDR, strlen(HDR), BODY, strlen(BODY), 0), -1);
	maildir_batch_free(&b);
	assert_int_equal(count_in("example.com", "alice", "new"), 1);
}

/* Many recipients: one tmp file linked into every new/. */
static void run_hundred(enum maildir_sync sync, bool from_fd)
{
	enum { N = 100 };
	int fd = -1;
	if (from_fd) {
		char qf[PATH_MAX];
		xfmt(qf, sizeof qf, "%s/queuefile", root);
		fd = open(qf, O_RDWR | O_CREAT | O_TRUNC, 0600);
		assert_true(fd >= 0);
		assert_int_equal(yz_write_full(fd, BODY, strlen(BODY)), 0);
	}
	struct maildir_batch *b = batch_new("mx.example");
	maildir_batch_set_sync(b, sync);
	int idx[N];
	for (int r = 0; r < N; r++) {
		char account[64], unique[64];
		xfmt(account, sizeof account, "user%d@example.com", r);
		xfmt(unique, sizeof unique, "QMANY.R%d", r);
		if (from_fd)
			idx[r] = maildir_batch_add(b, account, NULL, unique, false, HDR,
						   strlen(HDR), fd, 0, strlen(BODY), 0);
		else
			idx[r] = maildir_batch_add_mem(b, account, NULL, unique, false, HDR,
						       strlen(HDR), BODY, strlen(BODY), 0);
		assert_int_equal(idx[r], r);
	}
	assert_int_equal(maildir_batch_count(b), N);
	assert_int_equal(maildir_batch_commit(b), 0);
	struct stat first;
	assert_int_equal(stat(maildir_batch_path(b, 0), &first), 0);
	assert_int_equal(first.st_nlink, N);
	for (int r = 0; r < N; r++) {
		assert_int_equal(maildir_batch_status(b, idx[r], NULL), MAILDIR_OK);
		struct stat st;
		const char *p = maildir_batch_path(b, idx[r]);
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_ino, first.st_ino);
		char user[32];
		xfmt(user, sizeof user, "user%d", r);
		assert_int_equal(count_in("example.com", user, "tmp"), 0);
		assert_int_equal(count_in("example.com", user, "new"), 1);
	}
	assert_content(maildir_batch_path(b, N - 1), HDR, BODY);
	maildir_batch_free(&b);
	if (fd >= 0)
		close(fd);
}

static void test_hundred_recipients_auto(void **state)
{
	(void)state;
	run_hundred(MAILDIR_SYNC_AUTO, false);
}

static void test_hundred_recipients_per_file_fd(void **state)
{
	(void)state;
	run_hundred(MAILDIR_SYNC_PER_FILE, true);
}

static void test_different_content_not_shared(void **state)
{
	(void)state;
	struct maildir_batch *b = batch_new("mx.example");
	maildir_batch_set_sync(b, MAILDIR_SYNC_FS);
	int i = maildir_batch_add_mem(b, "a@example.com", NULL, "QD.R0", false, HDR, strlen(HDR),
				      BODY, strlen(BODY), 0);
	char other[sizeof BODY];
	memcpy(other, BODY, sizeof BODY);
	other[sizeof BODY - 4] = 'X'; /* same length, other bytes */
	int j = maildir_batch_add_mem(b, "b@example.com", NULL, "QD.R1", false, HDR, strlen(HDR),
				      other, strlen(other), 0);
	assert_int_equal(maildir_batch_commit(b), 0);
	struct stat s1, s2;
	assert_int_equal(stat(maildir_batch_path(b, i), &s1), 0);
	assert_int_equal(stat(maildir_batch_path(b, j), &s2), 0);
	assert_int_not_equal(s1.st_ino, s2.st_ino);
	assert_content(maildir_batch_path(b, j), HDR, other);
	maildir_batch_free(&b);
}

static void test_plus_folder(void **state)
{
	(void)state;
	char acct[PATH_MAX], path[PATH_MAX];
	xfmt(acct, sizeof acct, "%s/example.com/alice", root);
	assert_int_equal(maildir_folder_exists(acct, "lists"), 0);
	assert_int_equal(maildir_folder_create(acct, "lists"), 0);
	assert_int_equal(maildir_folder_exists(acct, "lists"), 1);
	assert_int_equal(maildir_folder_exists(acct, NULL), 1);
	assert_int_equal(maildir_folder_exists(acct, "../x"), -1);

	assert_int_equal(deliver1("alice@example.com", "lists", "QP.R0", false, BODY, 0, path,
				  sizeof path), MAILDIR_OK);
	assert_non_null(strstr(path, "/alice/.lists/new/QP.R0.mx.example,S="));
	assert_content(path, HDR, BODY);
	/* Missing folder, invalid folder, INBOX: all to INBOX. */
	assert_int_equal(deliver1("alice@example.com", "nosuch", "QP.R1", false, BODY, 0, path,
				  sizeof path), MAILDIR_OK);
	assert_non_null(strstr(path, "/alice/new/QP.R1."));
	assert_int_equal(deliver1("alice@example.com", "../../etc", "QP.R2", false, BODY, 0, path,
				  sizeof path), MAILDIR_OK);
	assert_non_null(strstr(path, "/alice/new/QP.R2."));
	assert_int_equal(deliver1("alice@example.com", "inbox", "QP.R3", false, BODY, 0, path,
				  sizeof path), MAILDIR_OK);
	assert_non_null(strstr(path, "/alice/new/QP.R3."));
	/* Folder messages count against the account's quota. */
	unsigned long long bytes, count;
	assert_int_equal(maildir_quota_recalc(acct, 0, &bytes, &count), 0);
	assert_int_equal(count, 4);
	assert_int_equal(bytes, 4 * (strlen(HDR) + strlen(BODY)));
}

static void test_quota_limits(void **state)
{
	(void)state;
	size_t size = strlen(HDR) + strlen(BODY);
	unsigned long long quota = 2 * size;
	struct maildir_batch *b = batch_new("mx.example");
	int i1 = maildir_batch_add_mem(b, "q@example.com", NULL, "QQ.R0", false, HDR, strlen(HDR),
				       BODY, strlen(BODY), quota);
	/* Exactly at the quota: accepted. */
	int i2 = maildir_batch_add_mem(b, "q@example.com", NULL, "QQ.R1", false, HDR, strlen(HDR),
				       BODY, strlen(BODY), quota);
	/* One byte over (the batch's earlier items count): refused. */
	int i3 = maildir_batch_add_mem(b, "q@example.com", NULL, "QQ.R2", false, NULL, 0, "x", 1,
				       quota);
	assert_int_equal(maildir_batch_commit(b), 0);
	assert_int_equal(maildir_batch_status(b, i1, NULL), MAILDIR_OK);
	assert_int_equal(maildir_batch_status(b, i2, NULL), MAILDIR_OK);
	const char *err;
	assert_int_equal(maildir_batch_status(b, i3, &err), MAILDIR_OVER_QUOTA);
	assert_non_null(strstr(err, "quota"));
	maildir_batch_free(&b);
	assert_int_equal(count_in("example.com", "q", "new"), 2);

	/* Next batch reads the usage back from maildirsize. */
	assert_int_equal(deliver1("q@example.com", NULL, "QQ.R3", false, "", quota, NULL, 0),
			 MAILDIR_OVER_QUOTA);
	/* Quota raised by one byte: the limit line changes, the file is
	 * recalculated, and the empty-header 1-byte message fits exactly. */
	b = batch_new("mx.example");
	int i4 = maildir_batch_add_mem(b, "q@example.com", NULL, "QQ.R4", false, NULL, 0, "y", 1,
				       quota + 1);
	assert_int_equal(maildir_batch_commit(b), 0);
	assert_int_equal(maildir_batch_status(b, i4, NULL), MAILDIR_OK);
	maildir_batch_free(&b);
	char qpath[PATH_MAX], want[128];
	xfmt(qpath, sizeof qpath, "%s/example.com/q/maildirsize", root);
	size_t len;
	char *q = slurp(qpath, &len);
	assert_non_null(q);
	xfmt(want, sizeof want, "%lluS\n%llu 2\n1 1\n", quota + 1, quota);
	assert_string_equal(q, want);
	free(q);
	/* A message larger than the whole quota. */
	assert_int_equal(deliver1("big@example.com", NULL, "QQ.R5", false, BODY, 10, NULL, 0),
			 MAILDIR_OVER_QUOTA);
}

static void test_quota_recalc(void **state)
{
	(void)state;
	char acct[PATH_MAX], qpath[PATH_MAX];
	size_t size = strlen(HDR) + strlen(BODY);
	assert_int_equal(deliver1("r@example.com", NULL, "QR.R0", false, BODY, 1000, NULL, 0),
			 MAILDIR_OK);
	xfmt(acct, sizeof acct, "%s/example.com/r", root);
	xfmt(qpath, sizeof qpath, "%s/maildirsize", acct);
	unsigned long long bytes, count;

	static const char *const bad[] = {
		"1000S\n5 1\n7",             /* torn last line */
		"1000S\nfoo bar\n",          /* garbage */
		"1000S\n-500 -3\n",          /* negative sum */
		"999S\n0 0\n",               /* another limit */
		"1000S",                     /* no newline */
	};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		assert_int_equal(yz_file_write_atomic(qpath, bad[k], strlen(bad[k]), 0600), 0);
		assert_int_equal(maildir_quota_usage(acct, 1000, &bytes, &count), 0);
		assert_int_equal(bytes, size);
		assert_int_equal(count, 1);
	}
	/* Larger than 5120 bytes (even if well-formed): recalculated. */
	char big[MAILDIR_QUOTA_FILE_MAX + 32];
	size_t n = (size_t)xfmt(big, sizeof big, "1000S\n");
	while (n <= MAILDIR_QUOTA_FILE_MAX)
		n += (size_t)xfmt(big + n, sizeof big - n, "  0 0\n");
	assert_true(n > MAILDIR_QUOTA_FILE_MAX);
	assert_int_equal(yz_file_write_atomic(qpath, big, n, 0600), 0);
	assert_int_equal(maildir_quota_usage(acct, 1000, &bytes, &count), 0);
	assert_int_equal(bytes, size);
	struct stat st;
	assert_int_equal(stat(qpath, &st), 0);
	assert_true(st.st_size < 64);
	/* Well-formed, Courier-padded lines are trusted as they are. */
	const char *courier = "1000S\n       100      2\n        -10     -1\n";
	assert_int_equal(yz_file_write_atomic(qpath, courier, strlen(courier), 0600), 0);
	assert_int_equal(maildir_quota_usage(acct, 1000, &bytes, &count), 0);
	assert_int_equal(bytes, 90);
	assert_int_equal(count, 1);
	/* Missing: rebuilt. */
	assert_int_equal(unlink(qpath), 0);
	assert_int_equal(maildir_quota_usage(acct, 1000, &bytes, &count), 0);
	assert_int_equal(bytes, size);
	assert_int_equal(stat(qpath, &st), 0);
}

/* Fault injection hooks. */
static int fail_errno;
static int calls_until_fail;

static ssize_t failing_write(int fd, const void *buf, size_t len)
{
	if (calls_until_fail-- <= 0) {
		/* A short write first, then the error, as a filling disk does. */
		if (len > 1 && calls_until_fail == -1)
			return write(fd, buf, len / 2);
		errno = fail_errno;
		return -1;
	}
	return write(fd, buf, len);
}

static int failing_sync(int fd)
{
	if (calls_until_fail-- <= 0) {
		errno = fail_errno;
		return -1;
	}
	return fsync(fd);
}

static int failing_linkat(int olddirfd, const char *a, int newdirfd, const char *b, int flags)
{
	if (calls_until_fail-- <= 0) {
		errno = fail_errno;
		return -1;
	}
	return linkat(olddirfd, a, newdirfd, b, flags);
}

static void test_fault_write(void **state)
{
	(void)state;
	struct maildir_io_hooks hooks = { .write = failing_write };
	fail_errno = ENOSPC;
	calls_until_fail = 1; /* the header goes through, the body fails */
	struct maildir_batch *b = batch_new("mx.example");
	maildir_batch_set_io_hooks(b, &hooks);
	int i = maildir_batch_add_mem(b, "w@example.com", NULL, "QW.R0", false, HDR, strlen(HDR),
				      BODY, strlen(BODY), 0);
	const char *err;
	assert_int_equal(maildir_batch_status(b, i, &err), MAILDIR_TEMPFAIL);
	assert_non_null(strstr(err, "No space left"));
	assert_int_equal(maildir_batch_commit(b), 0);
	assert_int_equal(maildir_batch_status(b, i, &err), MAILDIR_TEMPFAIL);
	assert_null(maildir_batch_path(b, i));
	maildir_batch_free(&b);
	assert_int_equal(count_in("example.com", "w", "tmp"), 0);
	assert_int_equal(count_in("example.com", "w", "new"), 0);
	/* The retry after the disk was freed delivers normally. */
	assert_int_equal(deliver1("w@example.com", NULL, "QW.R0", true, BODY, 0, NULL, 0),
			 MAILDIR_OK);
}

/* A sync failure in step 2 (data) or step 4 (directories) fails the batch. */
static void run_sync_fault(enum maildir_sync sync, int fail_at, bool use_syncfs)
{
	struct maildir_io_hooks hooks = { 0 };
	if (use_syncfs)
		hooks.syncfs = failing_sync;
	else {
		hooks.fdatasync = failing_sync;
		hooks.fsync = failing_sync;
	}
	fail_errno = EIO;
	calls_until_fail = fail_at;
	struct maildir_batch *b = batch_new("mx.example");
	maildir_batch_set_sync(b, sync);
	maildir_batch_set_io_hooks(b, &hooks);
	int idx[3];
	for (int r = 0; r < 3; r++) {
		char unique[32], hdr[32];
		xfmt(unique, sizeof unique, "QS.R%d", r);
		xfmt(hdr, sizeof hdr, "X-R: %d\r\n", r); /* three distinct files */
		idx[r] = maildir_batch_add_mem(b, "s@example.com", NULL, unique, false, hdr,
					       strlen(hdr), BODY, strlen(BODY), 0);
	}
	assert_int_equal(maildir_batch_commit(b), -1);
	assert_int_equal(calls_until_fail, -1); /* failed where intended, not retried */
	for (int r = 0; r < 3; r++) {
		const char *err;
		assert_int_equal(maildir_batch_status(b, idx[r], &err), MAILDIR_TEMPFAIL);
		assert_non_null(strstr(err, "Input/output error"));
	}
	maildir_batch_free(&b);
	assert_int_equal(count_in("example.com", "s", "tmp"), 0);
	assert_int_equal(count_in("example.com", "s", "new"), 0);
	char acct[PATH_MAX];
	unsigned long long bytes, count;
	xfmt(acct, sizeof acct, "%s/example.com/s", root);
	assert_int_equal(maildir_quota_usage(acct, 0, &bytes, &count), 0);
	assert_int_equal(bytes, 0);
	assert_int_equal(count, 0);
}

static void test_fault_fdatasync(void **state)
{
	(void)state;
	run_sync_fault(MAILDIR_SYNC_PER_FILE, 1, false); /* second file's data sync */
}

static void test_fault_dir_fsync(void **state)
{
	(void)state;
	run_sync_fault(MAILDIR_SYNC_PER_FILE, 3, false); /* the new/ directory */
}

static void test_fault_syncfs_data(void **state)
{
	(void)state;
	run_sync_fault(MAILDIR_SYNC_FS, 0, true);
}

static void test_fault_syncfs_dirs(void **state)
{
	(void)state;
	run_sync_fault(MAILDIR_SYNC_FS, 1, true); /* after the links: they are undone */
}

static void test_fault_link(void **state)
{
	(void)state;
	struct maildir_io_hooks hooks = { .linkat = failing_linkat };
	fail_errno = EMLINK;
	calls_until_fail = 1;
	struct maildir_batch *b = batch_new("mx.example");
	maildir_batch_set_io_hooks(b, &hooks);
	int i = maildir_batch_add_mem(b, "l1@example.com", NULL, "QL.R0", false, HDR, strlen(HDR),
				      BODY, strlen(BODY), 0);
	int j = maildir_batch_add_mem(b, "l2@example.com", NULL, "QL.R1", false, HDR, strlen(HDR),
				      BODY, strlen(BODY), 0);
	assert_int_equal(maildir_batch_commit(b), 0);
	assert_int_equal(maildir_batch_status(b, i, NULL), MAILDIR_OK);
	assert_int_equal(maildir_batch_status(b, j, NULL), MAILDIR_TEMPFAIL);
	maildir_batch_free(&b);
	assert_int_equal(count_in("example.com", "l1", "new"), 1);
	assert_int_equal(count_in("example.com", "l2", "new"), 0);
	assert_int_equal(count_in("example.com", "l1", "tmp"), 0);
	assert_int_equal(count_in("example.com", "l2", "tmp"), 0);
}

static void test_invalid_input(void **state)
{
	(void)state;
	static const char *const accounts[] = {
		"noat", "@example.com", "alice@", "../x@example.com", "a/b@example.com",
		".a@example.com", "a@.example.com", "a@ex/ample.com", "a b@example.com",
		"a@..",
	};
	struct maildir_batch *b = batch_new(NULL);
	for (size_t k = 0; k < sizeof accounts / sizeof accounts[0]; k++) {
		int i = maildir_batch_add_mem(b, accounts[k], NULL, "QI.R0", false, HDR,
					      strlen(HDR), BODY, strlen(BODY), 0);
		assert_int_equal(maildir_batch_status(b, i, NULL), MAILDIR_PERMFAIL);
	}
	char u128[MAILDIR_UNIQUE_MAX + 2];
	memset(u128, 'u', sizeof u128);
	u128[MAILDIR_UNIQUE_MAX + 1] = '\0';
	static const char *const uniques[] = { "", ".x", "a/b", "a:b", "a,b", "a b", "a\\b" };
	for (size_t k = 0; k < sizeof uniques / sizeof uniques[0]; k++) {
		int i = maildir_batch_add_mem(b, "ok@example.com", NULL, uniques[k], false, HDR,
					      strlen(HDR), BODY, strlen(BODY), 0);
		assert_int_equal(maildir_batch_status(b, i, NULL), MAILDIR_PERMFAIL);
	}
	int over = maildir_batch_add_mem(b, "ok@example.com", NULL, u128, false, HDR, strlen(HDR),
					 BODY, strlen(BODY), 0);
	u128[MAILDIR_UNIQUE_MAX] = '\0';
	int at = maildir_batch_add_mem(b, "ok@example.com", NULL, u128, false, HDR, strlen(HDR),
				       BODY, strlen(BODY), 0);
	assert_int_equal(maildir_batch_add_mem(b, "ok@example.com", NULL, "QN", false, HDR,
					       strlen(HDR), NULL, 5, 0), -1);
	assert_int_equal(maildir_batch_commit(b), 0);
	assert_int_equal(maildir_batch_status(b, over, NULL), MAILDIR_PERMFAIL);
	assert_int_equal(maildir_batch_status(b, at, NULL), MAILDIR_OK);
	assert_int_equal(maildir_batch_status(b, 9999, NULL), MAILDIR_PERMFAIL);
	assert_int_equal(maildir_batch_status(b, -1, NULL), MAILDIR_PERMFAIL);
	assert_null(maildir_batch_path(b, 9999));
	maildir_batch_free(&b);
	/* Nothing was created outside the root's domain directories. */
	assert_int_equal(count_entries(root), 1);
}

static void test_batch_full(void **state)
{
	(void)state;
	struct maildir_batch *b = batch_new("mx.example");
	for (int k = 0; k < MAILDIR_BATCH_MAX; k++)
		assert_int_equal(maildir_batch_add_mem(b, "x@example.com", NULL, "", false, NULL,
						       0, "", 0, 0), k);
	assert_int_equal(maildir_batch_add_mem(b, "x@example.com", NULL, "QF", false, NULL, 0,
					       "", 0, 0), -1);
	maildir_batch_free(&b);
}

static void test_uncommitted_free(void **state)
{
	(void)state;
	/* The unnamed file: nowhere to be seen, before and after. */
	struct maildir_batch *b = maildir_batch_new(root, "mx.example");
	int i = maildir_batch_add_mem(b, "u@example.com", NULL, "QU.R0", false, HDR, strlen(HDR),
				      BODY, strlen(BODY), 0);
	assert_int_equal(i, 0);
	assert_int_equal(count_in("example.com", "u", "tmp"), 0);
	assert_int_equal(count_in("example.com", "u", "new"), 0);
	maildir_batch_free(&b);
	assert_int_equal(count_in("example.com", "u", "tmp"), 0);
	assert_int_equal(count_in("example.com", "u", "new"), 0);
	/* The tmp/ path: its file is removed. */
	b = maildir_batch_new(root, "mx.example");
	maildir_batch_set_tmpfile(b, false);
	i = maildir_batch_add_mem(b, "u@example.com", NULL, "QU.R0", false, HDR, strlen(HDR),
				  BODY, strlen(BODY), 0);
	assert_int_equal(i, 0);
	assert_int_equal(count_in("example.com", "u", "tmp"), 1);
	maildir_batch_free(&b);
	assert_int_equal(count_in("example.com", "u", "tmp"), 0);
	assert_int_equal(count_in("example.com", "u", "new"), 0);
}

static void test_stale_tmp_and_host_encoding(void **state)
{
	(void)state;
	/* A tmp file left by a crash under the same name is harmless. */
	char acct[PATH_MAX], stale[PATH_MAX];
	xfmt(acct, sizeof acct, "%s/example.com/t", root);
	assert_int_equal(maildir_create(acct), 0);
	size_t size = strlen(HDR) + strlen(BODY);
	xfmt(stale, sizeof stale, "%s/tmp/QT.R0.h\\057o\\072s\\054t,S=%zu", acct, size);
	assert_int_equal(yz_file_write_atomic(stale, "partial", 7, 0600), 0);
	struct maildir_batch *b = batch_new("h/o:s,t");
	int i = maildir_batch_add_mem(b, "t@example.com", NULL, "QT.R0", false, HDR, strlen(HDR),
				      BODY, strlen(BODY), 0);
	assert_int_equal(maildir_batch_commit(b), 0);
	assert_int_equal(maildir_batch_status(b, i, NULL), MAILDIR_OK);
	assert_non_null(strstr(maildir_batch_path(b, i), "/new/QT.R0.h\\057o\\072s\\054t,S="));
	assert_content(maildir_batch_path(b, i), HDR, BODY);
	maildir_batch_free(&b);
	/* The tmp/ path replaced the leftover; an unnamed file never met it
	 * (maildir_tmp_clean() removes it in time). */
	assert_int_equal(count_in("example.com", "t", "tmp"), use_tmpfile ? 1 : 0);
	assert_string_equal(maildir_status_name(MAILDIR_OVER_QUOTA), "over quota");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_deliver_one, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redelivery_new, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redelivery_cur, setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_destination_in_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hundred_recipients_auto, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hundred_recipients_per_file_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_different_content_not_shared, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plus_folder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota_recalc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_fdatasync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_dir_fsync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_syncfs_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_syncfs_dirs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_link, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uncommitted_free, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_tmp_and_host_encoding, setup, teardown),
	};
	int failed = cmocka_run_group_tests_name("unnamed files, private cache", tests, NULL, NULL);
	shared_cache = maildir_cache_new(0);
	failed += cmocka_run_group_tests_name("unnamed files, shared cache", tests, NULL, NULL);
	use_tmpfile = false;
	failed += cmocka_run_group_tests_name("tmp/ files, shared cache", tests, NULL, NULL);
	maildir_cache_free(&shared_cache);
	return failed;
}

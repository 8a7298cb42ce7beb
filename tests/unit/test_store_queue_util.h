/*
 * test_store_queue_util.h: helpers shared by the queue store's unit tests:
 * temporary queue directories, envelopes, writing and committing messages,
 * and directory listings. Header-only (static functions), included once per
 * test binary after cmocka.h.
 */
#ifndef TEST_STORE_QUEUE_UTIL_H
#define TEST_STORE_QUEUE_UTIL_H

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

#include "store/queue/queue_private.h"

/* A test envelope that owns its strings. */
struct tenv {
	struct queue_envelope env;
	char **addrs;
	char **orcpts;
	size_t n; /* recipients allocated (tests may change env.rcpt_count) */
};

static char tq_dir[64]; /* small, so that the compiler sees every path fits */

/* nftw callback removing everything. */
static inline int tq_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Make a fresh temporary queue directory in tq_dir. */
static inline void tq_mkdir(void)
{
	snprintf(tq_dir, sizeof tq_dir, "/tmp/yzq.XXXXXX");
	assert_non_null(mkdtemp(tq_dir));
}

/* Remove tq_dir and everything below it. */
static inline void tq_rmdir(void)
{
	nftw(tq_dir, tq_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Open a store on tq_dir. */
static inline struct queue_store *tq_open(void)
{
	struct queue_store *s = NULL;
	const char *err = NULL;
	assert_int_equal(queue_store_open(tq_dir, &s, &err), 0);
	return s;
}

/* An envelope with n recipients "rcptN@example.org". */
static inline struct tenv *tenv_new(size_t n)
{
	struct tenv *t = calloc(1, sizeof *t);
	assert_non_null(t);
	t->env.sender = "sender@example.com";
	t->env.smtputf8 = true;
	t->env.body = QUEUE_BODY_8BITMIME;
	t->env.ret = QUEUE_RET_HDRS;
	t->env.envid = "env-id-1";
	t->env.client_name = "mx.example.com";
	t->env.client_addr = "192.0.2.1";
	t->env.helo = "mx.example.com";
	t->env.auth_user = "";
	t->env.rcpt_count = n;
	t->n = n;
	t->env.rcpts = calloc(n + 1, sizeof *t->env.rcpts);
	t->addrs = calloc(n + 1, sizeof *t->addrs);
	t->orcpts = calloc(n + 1, sizeof *t->orcpts);
	for (size_t i = 0; i < n; i++) {
		t->addrs[i] = malloc(64);
		t->orcpts[i] = malloc(80);
		snprintf(t->addrs[i], 64, "rcpt%zu@example.org", i);
		snprintf(t->orcpts[i], 80, "rfc822;orig%zu@example.org", i);
		t->env.rcpts[i].addr = t->addrs[i];
		t->env.rcpts[i].orcpt = (i % 2 == 0) ? t->orcpts[i] : NULL;
		t->env.rcpts[i].notify = (unsigned)(i % 8);
	}
	return t;
}

static inline void tenv_free(struct tenv *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->addrs[i]);
		free(t->orcpts[i]);
	}
	free(t->addrs);
	free(t->orcpts);
	free(t->env.rcpts);
	free(t);
}

/* Write content in chunks of chunk bytes and finish with env; returns the
 * finished writer. */
static inline struct queue_writer *tq_write(struct queue_store *s, const void *content, size_t len,
				     size_t chunk, const struct queue_envelope *env)
{
	struct queue_writer *w = NULL;
	const char *err = NULL;
	assert_int_equal(queue_writer_open(s, &w, &err), 0);
	const char *p = content;
	for (size_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		assert_int_equal(queue_writer_append(w, p + off, n, &err), 0);
	}
	assert_int_equal(queue_writer_finish(w, env, &err), 0);
	return w;
}

/* Write and commit one message alone; qid_r gets its ID. */
static inline void tq_commit_one(struct queue_store *s, const void *content, size_t len,
			  const struct queue_envelope *env, char qid_r[QUEUE_ID_MAX])
{
	struct queue_writer *w = tq_write(s, content, len, 4096, env);
	struct queue_batch *b = queue_batch_new(s);
	const char *err = NULL, *qid = NULL;
	assert_int_equal(queue_batch_add(b, &w, &err), 0);
	assert_null(w);
	assert_int_equal(queue_batch_commit(b), 0);
	assert_int_equal(queue_batch_result(b, 0, &qid, &err), 0);
	memcpy(qid_r, qid, QUEUE_ID_MAX);
	queue_batch_free(&b);
}

/* Number of entries (not . and ..) in tq_dir/sub. */
static inline size_t tq_count(const char *sub)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", tq_dir, sub);
	DIR *d = opendir(path);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	}
	closedir(d);
	return n;
}

/* true if tq_dir/sub/name exists. */
static inline bool tq_exists(const char *sub, const char *name)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s/%s", tq_dir, sub, name);
	struct stat st;
	return stat(path, &st) == 0;
}

/* Read the content of a committed message through queue_msg_content_fd()
 * and compare it with want. */
static inline void tq_check_content(struct queue_store *s, const char *qid, const void *want, size_t len)
{
	uint64_t off = 99, clen = 0;
	const char *err = NULL;
	int fd = queue_msg_content_fd(s, qid, &off, &clen, &err);
	assert_true(fd >= 0);
	assert_int_equal(off, 0);
	assert_int_equal(clen, len);
	char *got = malloc(len + 1);
	size_t have = 0;
	while (have < len) {
		ssize_t n = pread(fd, got + have, len - have, (off_t)(off + have));
		assert_true(n > 0);
		have += (size_t)n;
	}
	assert_memory_equal(got, want, len);
	free(got);
	close(fd);
}

/* Fault-injection hooks: counters and switches set by the tests. */
static int n_write, n_fdatasync, n_fsync, n_syncfs, n_rename, n_unlink;
static int fail_write_after = -1;    /* fail the write that passes this many bytes */
static long bytes_written;
static int fail_errno;
static bool fail_fdatasync, fail_fsync, fail_syncfs, fail_rename, short_writes;
static int fail_fdatasync_nth = -1;  /* fail only the nth (1-based) fdatasync */

static inline void hooks_reset(void)
{
	n_write = n_fdatasync = n_fsync = n_syncfs = n_rename = n_unlink = 0;
	fail_write_after = -1;
	fail_fdatasync_nth = -1;
	bytes_written = 0;
	fail_errno = EIO;
	fail_fdatasync = fail_fsync = fail_syncfs = fail_rename = short_writes = false;
}

static inline ssize_t h_write(int fd, const void *buf, size_t len)
{
	n_write++;
	if (fail_write_after >= 0 && bytes_written + (long)len > fail_write_after) {
		/* Write what fits, then fail like a full disk. */
		long room = fail_write_after - bytes_written;
		if (room > 0) {
			ssize_t n = write(fd, buf, (size_t)room);
			if (n > 0)
				bytes_written += n;
			return n;
		}
		errno = fail_errno;
		return -1;
	}
	if (short_writes && len > 3)
		len = 3;
	ssize_t n = write(fd, buf, len);
	if (n > 0)
		bytes_written += n;
	return n;
}

static inline int h_fdatasync(int fd)
{
	n_fdatasync++;
	if (fail_fdatasync || n_fdatasync == fail_fdatasync_nth) {
		errno = fail_errno;
		return -1;
	}
	return fdatasync(fd);
}

static inline int h_fsync(int fd)
{
	n_fsync++;
	if (fail_fsync) {
		errno = fail_errno;
		return -1;
	}
	return fsync(fd);
}

static inline int h_syncfs(int fd)
{
	n_syncfs++;
	if (fail_syncfs) {
		errno = fail_errno;
		return -1;
	}
	return syncfs(fd);
}

static inline int h_rename(const char *from, const char *to)
{
	n_rename++;
	if (fail_rename) {
		errno = fail_errno;
		return -1;
	}
	return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
}

static inline int h_unlink(const char *path)
{
	n_unlink++;
	return unlink(path);
}

static const struct queue_io_hooks hooks = {
	h_write, h_fdatasync, h_fsync, h_syncfs, h_rename, h_unlink,
};

#endif

/*
 * test_store_queue_fault.c: the queue store under injected faults and
 * crashes: ENOSPC during append, short writes, EIO on fdatasync / syncfs /
 * directory fsync / rename, failing status appends; a real process crash
 * (_exit) before every counted system call of a commit, a status batch and
 * a removal, followed by recovery; and the on-disk states a power loss can
 * leave (partial and complete files in incoming/, a live writer, corrupt
 * committed files, orphan status logs, a removal cut short).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/file.h>
#include <sys/wait.h>

#include "test_store_queue_util.h"

#include "lib/file.h"
#include "lib/log.h"

static int setup(void **state)
{
	(void)state;
	tq_mkdir();
	hooks_reset();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tq_rmdir();
	return 0;
}

/* A message committed before the fault, checked after it. */
struct witness {
	char qid[QUEUE_ID_MAX];
	struct tenv *t;
};

static void witness_make(struct queue_store *s, struct witness *w)
{
	w->t = tenv_new(2);
	tq_commit_one(s, "witness\r\n", 9, &w->t->env, w->qid);
}

/* The witness is still there, whole. */
static void witness_check(struct queue_store *s, struct witness *w)
{
	struct queue_msg *m = NULL;
	const char *err = NULL;
	assert_int_equal(queue_msg_load(s, w->qid, &m, &err), 0);
	assert_int_equal(m->env.rcpt_count, 2);
	queue_msg_free(&m);
	tq_check_content(s, w->qid, "witness\r\n", 9);
	tenv_free(w->t);
}

/* ENOSPC in the middle of content: the append fails, the partial file is
 * gone, nothing earlier is harmed; the same when the envelope write fails. */
static void test_enospc_append(void **state)
{
	(void)state;
	struct queue_store *s = tq_open();
	struct witness wit;
	witness_make(s, &wit);
	queue_store_set_io_hooks(s, &hooks);
	fail_errno = ENOSPC;
	fail_write_after = 100000;
	struct queue_writer *w = NULL;
	const char *err = NULL;
	assert_int_equal(queue_writer_open(s, &w, &err), 0);
	char chunk[8192];
	memset(chunk, 'c', sizeof chunk);
	int rc = 0;
	for (int i = 0; i < 100 && rc == 0; i++)
		rc = queue_writer_append(w, chunk, sizeof chunk, &err);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, "No space left"));
	assert_int_equal(tq_count("incoming"), 0);
	assert_int_equal(queue_writer_finish(w, &wit.t->env, &err), -1);
	queue_writer_abort(&w);

	/* The envelope write hits the full disk. */
	hooks_reset();
	fail_errno = ENOSPC;
	assert_int_equal(queue_writer_open(s, &w, &err), 0);
	assert_int_equal(queue_writer_append(w, "abc", 3, &err), 0);
	fail_write_after = 10; /* content (3 bytes) fits, the envelope does not */
	assert_int_equal(queue_writer_finish(w, &wit.t->env, &err), -1);
	assert_int_equal(tq_count("incoming"), 0);
	queue_writer_abort(&w);
	assert_int_equal(tq_count("active"), 1);
	queue_store_set_io_hooks(s, NULL);
	witness_check(s, &wit);
	queue_store_close(&s);
}

/* Short writes (3 bytes per call) are completed, not errors. */
static void test_short_writes(void **state)
{
	(void)state;
	struct queue_store *s = tq_open();
	queue_store_set_io_hooks(s, &hooks);
	short_writes = true;
	struct tenv *t = tenv_new(5);
	char content[40000];
	for (size_t i = 0; i < sizeof content; i++)
		content[i] = (char)('a' + i % 26);
	char qid[QUEUE_ID_MAX];
	tq_commit_one(s, content, sizeof content, &t->env, qid);
	assert_true(n_write > 1000);
	tq_check_content(s, qid, content, sizeof content);
	struct queue_rcpt_update u = { qid, 4, QUEUE_RCPT_DELIVERED, 0, 1, 0, "250 2.0.0 queued as X" };
	struct queue_rcpt_batch *b = queue_rcpt_batch_new(s);
	const char *err = NULL;
	assert_int_equal(queue_rcpt_batch_add(b, &u, &err), 0);
	assert_int_equal(queue_rcpt_batch_commit(b), 0);
	queue_rcpt_batch_free(&b);
	struct queue_msg *m = NULL;
	assert_int_equal(queue_msg_load(s, qid, &m, &err), 0);
	assert_string_equal(m->env.rcpts[4].status, "250 2.0.0 queued as X");
	queue_msg_free(&m);
	tenv_free(t);
	queue_store_close(&s);
}

/* Build a batch of n finished writers with contents "m<i>". */
static struct queue_batch *make_batch(struct queue_store *s, const struct queue_envelope *env,
				      size_t n)
{
	struct queue_batch *b = queue_batch_new(s);
	const char *err = NULL;
	for (size_t i = 0; i < n; i++) {
		char c[16];
		int len = snprintf(c, sizeof c, "m%zu", i);
		struct queue_writer *w = tq_write(s, c, (size_t)len, 2, env);
		assert_int_equal(queue_batch_add(b, &w, &err), (int)i);
	}
	return b;
}

/* EIO on the third fdatasync fails that item only; the others commit. */
static void test_eio_fdatasync_one(void **state)
{
	(void)state;
	struct queue_store *s = tq_open();
	struct witness wit;
	witness_make(s, &wit);
	queue_store_set_sync(s, QUEUE_SYNC_EACH);
	queue_store_set_io_hooks(s, &hooks);
	struct queue_batch *b = make_batch(s, &wit.t->env, 5);
	fail_fdatasync_nth = 3;
	assert_int_equal(queue_batch_commit(b), 1);
	assert_int_equal(n_fdatasync, 5); /* no retry of the failed one */
	for (size_t i = 0; i < 5; i++) {
		const char *qid = NULL, *err = NULL;
		int r = queue_batch_result(b, i, &qid, &err);
		if (i == 2) {
			assert_int_equal(r, -1);
			assert_non_null(strstr(err, "fdatasync"));
			assert_false(tq_exists("active", qid));
		} else {
			assert_int_equal(r, 0);
			assert_true(tq_exists("active", qid));
		}
	}
	assert_int_equal(tq_count("incoming"), 0);
	assert_int_equal(tq_count("active"), 5);
	queue_batch_free(&b);
	witness_check(s, &wit);
	queue_store_close(&s);
}

/* EIO on syncfs fails the whole batch and removes every file. */
static void test_eio_syncfs(void **state)
{
	(void)state;
	struct queue_store *s = tq_open();
	struct witness wit;
	witness_make(s, &wit);
	queue_store_set_sync(s, QUEUE_SYNC_FS);
	queue_store_set_io_hooks(s, &hooks);
	struct queue_batch *b = make_batch(s, &wit.t->env, 10);
	fail_syncfs = true;
	assert_int_equal(queue_batch_commit(b), 10);
	assert_int_equal(n_syncfs, 1);
	assert_int_equal(n_rename, 0); /* nothing became visible */
	const char *err = NULL;
	assert_int_equal(queue_batch_result(b, 7, NULL, &err), -1);
	assert_non_null(strstr(err, "syncfs"));
	assert_int_equal(tq_count("incoming"), 0);
	assert_int_equal(tq_count("active"), 1);
	queue_batch_free(&b);
	witness_check(s, &wit);
	queue_store_close(&s);
}

/* EIO on the directory fsync: every renamed item fails and is taken back
 * out of active/ (the clients get 451 and retry). */
static void test_eio_dir_fsync(void **state)
{
	(void)state;
	struct queue_store *s = tq_open();
	struct witness wit;
	witness_make(s, &wit);
	queue_store_set_io_hooks(s, &hooks);
	struct queue_batch *b = make_batch(s, &wit.t->env, 3);
	fail_fsync = true;
	assert_int_equal(queue_batch_commit(b), 3);
	assert_int_equal(n_rename, 3);
	assert_int_equal(n_fsync, 1);
	assert_int_equal(tq_count("incoming"), 0);
	assert_int_equal(tq_count("active"), 1);
	queue_batch_free(&b);
	queue_store_set_io_hooks(s, NULL);
	witness_check(s, &wit);
	queue_store_close(&s);
}

/* A failing rename fails the item and removes its incoming file. */
static void test_rename_fails(void **state)
{
	(void)state;
	struct queue_store *s = tq_open();
	struct witness wit;
	witness_make(s, &wit);
	queue_store_set_io_hooks(s, &hooks);
	struct queue_batch *b = make_batch(s, &wit.t->env, 2);
	fail_rename = true;
	fail_errno = EEXIST;
	assert_int_equal(queue_batch_commit(b), 2);
	assert_int_equal(n_fsync, 0); /* nothing renamed, nothing to sync */
	assert_int_equal(tq_count("incoming"), 0);
	assert_int_equal(tq_count("active"), 1);
	queue_batch_free(&b);
	witness_check(s, &wit);
	queue_store_close(&s);
}

/* Status appends that fail: nothing is reported durable, a torn append is
 * cut back, and the next update is readable. */
static void test_status_faults(void **state)
{
	(void)state;
	struct queue_store *s = tq_open();
	struct witness wit;
	witness_make(s, &wit);
	queue_store_set_io_hooks(s, &hooks);
	const char *err = NULL;
	struct queue_rcpt_update u = { wit.qid, 0, QUEUE_RCPT_DELIVERED, 0, 1, 0, "250 ok" };

	/* EIO on fdatasync of the log. */
	struct queue_rcpt_batch *b = queue_rcpt_batch_new(s);
	assert_int_equal(queue_rcpt_batch_add(b, &u, &err), 0);
	fail_fdatasync = true;
	assert_int_equal(queue_rcpt_batch_commit(b), 1);
	assert_int_equal(queue_rcpt_batch_result(b, 0, &err), -1);
	assert_non_null(strstr(err, "fdatasync"));
	queue_rcpt_batch_free(&b);

	/* ENOSPC in the middle of an append: the log is cut back. */
	hooks_reset();
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/status/%s", tq_dir, wit.qid);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	off_t before = st.st_size;
	b = queue_rcpt_batch_new(s);
	u.index = 1;
	assert_int_equal(queue_rcpt_batch_add(b, &u, &err), 0);
	fail_errno = ENOSPC;
	fail_write_after = 5; /* five bytes of the record, then a full disk */
	assert_int_equal(queue_rcpt_batch_commit(b), 1);
	queue_rcpt_batch_free(&b);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, before);

	/* The next update goes through and is readable after the failures. */
	hooks_reset();
	b = queue_rcpt_batch_new(s);
	u.state = QUEUE_RCPT_FAILED;
	assert_int_equal(queue_rcpt_batch_add(b, &u, &err), 0);
	assert_int_equal(queue_rcpt_batch_commit(b), 0);
	queue_rcpt_batch_free(&b);
	struct queue_msg *m = NULL;
	assert_int_equal(queue_msg_load(s, wit.qid, &m, &err), 0);
	assert_int_equal(m->env.rcpts[1].state, QUEUE_RCPT_FAILED);
	queue_msg_free(&m);

	/* syncfs failure over many logs fails them all. */
	struct tenv *t = tenv_new(1);
	char ids[8][QUEUE_ID_MAX];
	queue_store_set_io_hooks(s, NULL);
	for (int i = 0; i < 8; i++)
		tq_commit_one(s, "x", 1, &t->env, ids[i]);
	queue_store_set_io_hooks(s, &hooks);
	hooks_reset();
	fail_syncfs = true;
	b = queue_rcpt_batch_new(s);
	for (int i = 0; i < 8; i++) {
		struct queue_rcpt_update v = { ids[i], 0, QUEUE_RCPT_DELIVERED, 0, 1, 0, "" };
		assert_int_equal(queue_rcpt_batch_add(b, &v, &err), i);
	}
	assert_int_equal(queue_rcpt_batch_commit(b), 8);
	assert_int_equal(n_syncfs, 1);
	queue_rcpt_batch_free(&b);
	/* A failed directory fsync fails the logs it created. */
	hooks_reset();
	fail_fsync = true;
	b = queue_rcpt_batch_new(s);
	struct queue_rcpt_update v = { ids[0], 0, QUEUE_RCPT_DELIVERED, 0, 1, 0, "" };
	assert_int_equal(queue_rcpt_batch_add(b, &v, &err), 0);
	/* ids[0] already has a log (the failed batch created it): no dir sync. */
	assert_int_equal(queue_rcpt_batch_commit(b), 0);
	queue_rcpt_batch_free(&b);
	tenv_free(t);
	queue_store_set_io_hooks(s, NULL);
	witness_check(s, &wit);
	queue_store_close(&s);
}

/* Make a file in sub/name with the given bytes. */
static void put_file(const char *sub, const char *name, const void *data, size_t len)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s/%s", tq_dir, sub, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* Read a whole file of tq_dir/sub/name. */
static char *get_file(const char *sub, const char *name, size_t *len_r)
{
	char path[PATH_MAX], *data = NULL;
	snprintf(path, sizeof path, "%s/%s/%s", tq_dir, sub, name);
	assert_int_equal(yz_file_read_all(path, 1 << 26, &data, len_r), 0);
	return data;
}

/* Recovery callback: remember loaded IDs (up to 64). */
struct loaded {
	char ids[64][QUEUE_ID_MAX];
	size_t n;
};

static int collect(struct queue_msg *msg, void *ctx)
{
	struct loaded *l = ctx;
	if (l->n < 64)
		memcpy(l->ids[l->n++], msg->qid, QUEUE_ID_MAX);
	queue_msg_free(&msg);
	return 0;
}

static bool loaded_has(const struct loaded *l, const char *qid)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->ids[i], qid) == 0)
			return true;
	}
	return false;
}

/* The states a power loss can leave on disk, and what recovery does with
 * each: incoming/ files (partial, complete, or also in active/) go; a live
 * writer's file stays; a corrupt committed file moves to corrupt/ with its
 * log; a done message whose removal was cut short goes; an orphan log goes;
 * valid messages load in ID order with their states. */
static void test_recover_disk_states(void **state)
{
	(void)state;
	struct queue_store *s = tq_open();
	struct tenv *t = tenv_new(2);
	char good1[QUEUE_ID_MAX], good2[QUEUE_ID_MAX], done[QUEUE_ID_MAX], bad[QUEUE_ID_MAX];
	char bad2[QUEUE_ID_MAX], bad3[QUEUE_ID_MAX];
	tq_commit_one(s, "good1", 5, &t->env, good1);
	tq_commit_one(s, "done", 4, &t->env, done);
	tq_commit_one(s, "bad", 3, &t->env, bad);
	tq_commit_one(s, "bad2", 4, &t->env, bad2);
	tq_commit_one(s, "bad3", 4, &t->env, bad3);
	tq_commit_one(s, "good2", 5, &t->env, good2);
	const char *err = NULL;
	struct queue_rcpt_batch *rb = queue_rcpt_batch_new(s);
	struct queue_rcpt_update ups[] = {
		{ done, 0, QUEUE_RCPT_DELIVERED, 0, 1, 0, "" },
		{ done, 1, QUEUE_RCPT_FAILED, QUEUE_RCPT_F_DSN_SENT, 1, 0, "550 no" },
		{ good2, 1, QUEUE_RCPT_DEFERRED, 0, 1, 99, "451 later" },
		{ bad, 0, QUEUE_RCPT_DELIVERED, 0, 1, 0, "" },
	};
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(queue_rcpt_batch_add(rb, &ups[i], &err), (int)i);
	assert_int_equal(queue_rcpt_batch_commit(rb), 0);
	queue_rcpt_batch_free(&rb);

	/* bad: one byte flipped in the envelope (CRC). bad2: truncated (size
	 * does not match). bad3: trailer garbage. */
	size_t len;
	char *data = get_file("active", bad, &len);
	data[len - QUEUE_TRAILER_LEN - 3] ^= 0x20;
	put_file("active", bad, data, len);
	free(data);
	data = get_file("active", bad2, &len);
	put_file("active", bad2, data, len - 1);
	free(data);
	data = get_file("active", bad3, &len);
	memset(data + len - QUEUE_TRAILER_LEN, 'x', QUEUE_TRAILER_LEN);
	put_file("active", bad3, data, len);
	free(data);
	/* An earlier corrupt file of the same name must not be replaced. */
	put_file("corrupt", bad, "older", 5);

	/* incoming/: a partial write, a complete unrenamed file, a copy of
	 * good1 (rename persisted in active/ only), and a live writer. */
	put_file("incoming", "0000000000AA", "partial", 7);
	data = get_file("active", good1, &len);
	put_file("incoming", "0000000000AB", data, len);
	put_file("incoming", good1, data, len);
	free(data);
	struct queue_writer *live = NULL;
	assert_int_equal(queue_writer_open(s, &live, &err), 0);
	assert_int_equal(queue_writer_append(live, "live", 4, &err), 0);
	/* A status log without its message. */
	put_file("status", "0000000000AC", "junk", 4);

	struct loaded l = { .n = 0 };
	struct queue_recover_stats st;
	assert_int_equal(queue_recover(s, collect, &l, &st, &err), 0);
	assert_int_equal(st.incoming_removed, 3);
	assert_int_equal(st.loaded, 2);
	assert_int_equal(st.done_removed, 1);
	assert_int_equal(st.orphans_removed, 1);
	assert_int_equal(st.corrupt, 3);
	assert_int_equal(st.unreadable, 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.ids[0], good1);
	assert_string_equal(l.ids[1], good2);
	assert_int_equal(tq_count("incoming"), 1); /* the live writer */
	assert_true(tq_exists("incoming", queue_writer_id(live)));
	assert_false(tq_exists("active", done));
	assert_false(tq_exists("status", done));
	assert_false(tq_exists("status", "0000000000AC"));
	assert_true(tq_exists("corrupt", bad)); /* the older one, untouched */
	char name[64];
	snprintf(name, sizeof name, "%s.1", bad);
	assert_true(tq_exists("corrupt", name));
	snprintf(name, sizeof name, "%s.1.status", bad);
	assert_true(tq_exists("corrupt", name));
	assert_true(tq_exists("corrupt", bad2));
	assert_true(tq_exists("corrupt", bad3));
	data = get_file("corrupt", bad, &len);
	assert_int_equal(len, 5);
	free(data);
	assert_int_equal(tq_count("active"), 2);

	/* The live writer still commits after the sweep. */
	assert_int_equal(queue_writer_finish(live, &t->env, &err), 0);
	struct queue_batch *b = queue_batch_new(s);
	assert_int_equal(queue_batch_add(b, &live, &err), 0);
	assert_int_equal(queue_batch_commit(b), 0);
	queue_batch_free(&b);

	/* good2 keeps its recipient state through recovery. */
	struct queue_msg *m = NULL;
	assert_int_equal(queue_msg_load(s, good2, &m, &err), 0);
	assert_int_equal(m->env.rcpts[1].state, QUEUE_RCPT_DEFERRED);
	assert_int_equal(m->env.rcpts[1].next_retry, 99);
	queue_msg_free(&m);

	/* A callback that stops recovery. */
	tenv_free(t);
	queue_store_close(&s);
}

/* Recovery callback that refuses. */
static int refuse(struct queue_msg *msg, void *ctx)
{
	(void)ctx;
	queue_msg_free(&msg);
	return 1;
}

static void test_recover_stop(void **state)
{
	(void)state;
	struct queue_store *s = tq_open();
	struct tenv *t = tenv_new(1);
	char q[QUEUE_ID_MAX];
	tq_commit_one(s, "x", 1, &t->env, q);
	const char *err = NULL;
	assert_int_equal(queue_recover(s, refuse, NULL, NULL, &err), -1);
	assert_non_null(err);
	assert_true(tq_exists("active", q));
	tenv_free(t);
	queue_store_close(&s);
}

/* ---- real crashes: the child _exits before the k-th counted call ---- */

static int crash_at;      /* 1-based index of the call that does not happen */
static int crash_calls;

/* Count a call; die (as a crash would) when it is the chosen one. */
static void crash_point(void)
{
	if (++crash_calls == crash_at)
		_exit(42);
}

static ssize_t c_write(int fd, const void *buf, size_t len)
{
	crash_point();
	/* Half the bytes first, so a crash can also fall inside a write. */
	if (len > 1) {
		ssize_t n = write(fd, buf, len / 2);
		if (n <= 0)
			return n;
		crash_point();
		return n;
	}
	return write(fd, buf, len);
}

static int c_fdatasync(int fd)
{
	crash_point();
	return fdatasync(fd);
}

static int c_fsync(int fd)
{
	crash_point();
	return fsync(fd);
}

static int c_syncfs(int fd)
{
	crash_point();
	return syncfs(fd);
}

static int c_rename(const char *from, const char *to)
{
	crash_point();
	return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
}

static int c_unlink(const char *path)
{
	crash_point();
	return unlink(path);
}

static const struct queue_io_hooks crash_hooks = {
	c_write, c_fdatasync, c_fsync, c_syncfs, c_rename, c_unlink,
};

#define CRASH_MSGS 3

/* Content of crash-test message i. */
static size_t crash_content(size_t i, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "Subject: crash %zu\r\n\r\n%0*d\r\n", i, (int)(100 + 3000 * i), 7);
	return (size_t)n;
}

/* The child: commit CRASH_MSGS messages in one batch, record both
 * recipients of m0 as done, remove m0; report each acknowledged step on the
 * pipe as a line "A <qid>", "S", "R". */
/* The child's objects live in globals, so that a crash (_exit) leaves
 * them reachable rather than leaked in valgrind's eyes. */
static struct queue_store *child_s;
static struct tenv *child_t;
static struct queue_batch *child_b;
static struct queue_writer *child_w;
static struct queue_rcpt_batch *child_rb;

static void crash_child(int pfd, const char *m0, enum queue_sync mode)
{
	const char *err = NULL;
	if (queue_store_open(tq_dir, &child_s, &err) < 0)
		_exit(3);
	queue_store_set_sync(child_s, mode);
	queue_store_set_io_hooks(child_s, &crash_hooks);
	child_t = tenv_new(2);
	child_b = queue_batch_new(child_s);
	static char content[16384];
	for (size_t i = 0; i < CRASH_MSGS; i++) {
		size_t len = crash_content(i, content, sizeof content);
		if (queue_writer_open(child_s, &child_w, &err) < 0 ||
		    queue_writer_append(child_w, content, len, &err) < 0 ||
		    queue_writer_finish(child_w, &child_t->env, &err) < 0 ||
		    queue_batch_add(child_b, &child_w, &err) < 0)
			_exit(4);
	}
	queue_batch_commit(child_b);
	char line[64];
	for (size_t i = 0; i < CRASH_MSGS; i++) {
		const char *qid = NULL;
		if (queue_batch_result(child_b, i, &qid, &err) == 0) {
			int n = snprintf(line, sizeof line, "A %s\n", qid);
			if (write(pfd, line, (size_t)n) != n)
				_exit(5);
		}
	}
	child_rb = queue_rcpt_batch_new(child_s);
	struct queue_rcpt_update u0 = { m0, 0, QUEUE_RCPT_DELIVERED, 0, 1, 0, "250 ok" };
	struct queue_rcpt_update u1 = { m0, 1, QUEUE_RCPT_FAILED, QUEUE_RCPT_F_DSN_SENT, 1, 0, "550 no" };
	queue_rcpt_batch_add(child_rb, &u0, &err);
	queue_rcpt_batch_add(child_rb, &u1, &err);
	if (queue_rcpt_batch_commit(child_rb) == 0 && write(pfd, "S\n", 2) != 2)
		_exit(5);
	if (queue_msg_remove(child_s, m0, &err) == 0 && write(pfd, "R\n", 2) != 2)
		_exit(5);
	queue_rcpt_batch_free(&child_rb);
	queue_batch_free(&child_b);
	tenv_free(child_t);
	queue_store_close(&child_s);
	_exit(0);
}

/* Crash before every counted call in turn; after each crash, recovery must
 * find every acknowledged message whole, nothing in incoming/, and m0 in a
 * state consistent with what was acknowledged. */
static void crash_loop(enum queue_sync mode)
{
	int last_rc = 42;
	int k;
	for (k = 1; last_rc == 42 && k < 200; k++) {
		tq_rmdir();
		tq_mkdir();
		struct queue_store *s = tq_open();
		struct witness wit;
		witness_make(s, &wit);
		queue_store_close(&s);
		int p[2];
		assert_int_equal(pipe(p), 0);
		crash_at = k;
		crash_calls = 0;
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			crash_child(p[1], wit.qid, mode);
		}
		close(p[1]);
		char buf[1024];
		size_t have = 0;
		ssize_t n;
		while ((n = read(p[0], buf + have, sizeof buf - 1 - have)) > 0)
			have += (size_t)n;
		buf[have] = '\0';
		close(p[0]);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		last_rc = WEXITSTATUS(status);
		assert_true(last_rc == 0 || last_rc == 42);

		s = tq_open();
		struct loaded l = { .n = 0 };
		struct queue_recover_stats st;
		const char *err = NULL;
		assert_int_equal(queue_recover(s, collect, &l, &st, &err), 0);
		assert_int_equal(st.corrupt, 0);
		assert_int_equal(st.unreadable, 0);
		assert_int_equal(tq_count("incoming"), 0);
		size_t acked = 0;
		bool status_acked = strncmp(buf, "S\n", 2) == 0 || strstr(buf, "\nS\n") != NULL;
		for (char *line = strstr(buf, "A "); line != NULL; line = strstr(line + 1, "A ")) {
			char qid[QUEUE_ID_MAX];
			memcpy(qid, line + 2, QUEUE_ID_LEN);
			qid[QUEUE_ID_LEN] = '\0';
			assert_true(loaded_has(&l, qid));
			acked++;
		}
		/* Every message recovery loaded is whole (content checked). */
		for (size_t i = 0; i < l.n; i++) {
			if (strcmp(l.ids[i], wit.qid) == 0)
				continue;
			uint64_t off, clen;
			int fd = queue_msg_content_fd(s, l.ids[i], &off, &clen, &err);
			assert_true(fd >= 0);
			char want[16384], got[16384];
			bool match = false;
			for (size_t j = 0; j < CRASH_MSGS && !match; j++) {
				size_t wl = crash_content(j, want, sizeof want);
				if (wl == clen && pread(fd, got, clen, 0) == (ssize_t)clen &&
				    memcmp(got, want, clen) == 0)
					match = true;
			}
			assert_true(match);
			close(fd);
		}
		assert_true(l.n >= acked);
		/* m0: once its states were acknowledged it is never loaded as
		 * pending again; before that it is loaded or (states durable
		 * but not yet reported) removed as done. */
		if (status_acked)
			assert_false(loaded_has(&l, wit.qid));
		else
			assert_true(loaded_has(&l, wit.qid) || st.done_removed == 1);
		assert_false(tq_exists("status", wit.qid) && !tq_exists("active", wit.qid));
		if (last_rc == 0) {
			assert_int_equal(acked, CRASH_MSGS);
			assert_true(status_acked);
		}
		tenv_free(wit.t);
		queue_store_close(&s);
	}
	assert_int_equal(last_rc, 0);
	/* Sanity: the loop went through many crash points. */
	assert_true(k > 15);
}

static void test_crash_each(void **state)
{
	(void)state;
	crash_loop(QUEUE_SYNC_EACH);
}

static void test_crash_syncfs(void **state)
{
	(void)state;
	crash_loop(QUEUE_SYNC_FS);
}

int main(void)
{
	yz_log_set_level(YZ_LOG_ERR); /* the expected corrupt-file warnings */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_enospc_append, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eio_fdatasync_one, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eio_syncfs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eio_dir_fsync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_disk_states, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_each, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_syncfs, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_store_queue.c: the queue store's write path, loading and recipient
 * state: queue IDs, round trips with 0, 1 and 1000 recipients, a 10 MiB
 * content written in chunks and byte at a time, group commit of 50 writers,
 * abort, limits at and over, status records (batched, replayed, idempotent,
 * truncated tail), removal, listing order and the envelope/status decoders
 * on malformed bytes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_store_queue_util.h"

#include "lib/mem.h"

static int setup(void **state)
{
	(void)state;
	tq_mkdir();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tq_rmdir();
	return 0;
}

/* IDs are valid, unique and strictly increasing within a process. */
static void test_id(void **state)
{
	(void)state;
	char prev[QUEUE_ID_MAX] = "";
	for (int i = 0; i < 20000; i++) {
		char id[QUEUE_ID_MAX];
		queue_id_new(id);
		assert_int_equal(strlen(id), QUEUE_ID_LEN);
		assert_true(queue_id_valid(id));
		assert_true(strcmp(prev, id) < 0);
		memcpy(prev, id, sizeof id);
	}
	assert_false(queue_id_valid(NULL));
	assert_false(queue_id_valid(""));
	assert_false(queue_id_valid("0123456789A"));   /* 11 */
	assert_false(queue_id_valid("0123456789ABC")); /* 13 */
	assert_false(queue_id_valid("0123456789Ab"));  /* lower case */
	assert_false(queue_id_valid("0123456789AI"));  /* I not in the alphabet */
	assert_false(queue_id_valid("../../etc/pw"));
	assert_false(queue_id_valid("0123456789A/"));
	assert_true(queue_id_valid("0123456789AB"));
}

/* Compare a loaded envelope with the one written. */
static void check_env(const struct queue_envelope *got, const struct queue_envelope *want)
{
	assert_string_equal(got->sender, want->sender);
	assert_int_equal(got->smtputf8, want->smtputf8);
	assert_int_equal(got->body, want->body);
	assert_int_equal(got->ret, want->ret);
	assert_string_equal(got->envid, want->envid);
	assert_string_equal(got->client_name, want->client_name);
	assert_string_equal(got->client_addr, want->client_addr);
	assert_string_equal(got->helo, want->helo);
	assert_string_equal(got->auth_user, want->auth_user);
	assert_true(got->arrival > 0);
	assert_int_equal(got->rcpt_count, want->rcpt_count);
	for (size_t i = 0; i < want->rcpt_count; i++) {
		assert_string_equal(got->rcpts[i].addr, want->rcpts[i].addr);
		assert_string_equal(got->rcpts[i].orcpt,
				    want->rcpts[i].orcpt != NULL ? want->rcpts[i].orcpt : "");
		assert_int_equal(got->rcpts[i].notify, want->rcpts[i].notify);
		assert_int_equal(got->rcpts[i].state, QUEUE_RCPT_PENDING);
		assert_int_equal(got->rcpts[i].attempts, 0);
		assert_string_equal(got->rcpts[i].status, "");
	}
}

/* Write, commit, load, read content back for n recipients. */
static void roundtrip(size_t n)
{
	struct queue_store *s = tq_open();
	struct tenv *t = tenv_new(n);
	const char content[] = "Received: from x\r\nSubject: hi\r\n\r\nbody\r\n";
	char qid[QUEUE_ID_MAX];
	tq_commit_one(s, content, sizeof content - 1, &t->env, qid);
	assert_true(tq_exists("active", qid));
	assert_int_equal(tq_count("incoming"), 0);
	struct queue_msg *m = NULL;
	const char *err = NULL;
	assert_int_equal(queue_msg_load(s, qid, &m, &err), 0);
	assert_string_equal(m->qid, qid);
	assert_int_equal(m->content_len, sizeof content - 1);
	check_env(&m->env, &t->env);
	assert_int_equal(queue_msg_done(m), n == 0);
	queue_msg_free(&m);
	assert_null(m);
	tq_check_content(s, qid, content, sizeof content - 1);
	/* File mode 0600. */
	char path[PATH_MAX];
	struct stat st;
	snprintf(path, sizeof path, "%s/active/%s", tq_dir, qid);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	tenv_free(t);
	queue_store_close(&s);
	assert_null(s);
}

static void test_roundtrip_0(void **state)
{
	(void)state;
	roundtrip(0);
}

static void test_roundtrip_1(void **state)
{
	(void)state;
	roundtrip(1);
}

static void test_roundtrip_1000(void **state)
{
	(void)state;
	roundtrip(1000);
}

/* A null sender and empty optional fields round trip as "". */
static void test_null_sender(void **state)
{
	(void)state;
	struct queue_store *s = tq_open();
	struct queue_rcpt r = { .addr = "postmaster@example.org" };
	struct queue_envelope env = { .rcpt_count = 1, .rcpts = &r, .arrival = 12345 };
	char qid[QUEUE_ID_MAX];
	tq_commit_one(s, "", 0, &env, qid);
	struct queue_msg *m = NULL;
	const char *err = NULL;
	assert_int_equal(queue_msg_load(s, qid, &m, &err), 0);
	assert_string_equal(m->env.sender, "");
	assert_string_equal(m->env.envid, "");
	assert_string_equal(m->env.auth_user, "");
	assert_int_equal(m->env.arrival, 12345);
	assert_int_equal(m->env.body, QUEUE_BODY_NONE);
	assert_int_equal(m->content_len, 0);
	queue_msg_free(&m);
	tq_check_content(s, qid, "", 0);
	queue_store_close(&s);
}

/* Content of 10 MiB in chunks of varying sizes (1 byte up to more than
 * the writer's buffer) comes back byte-exact. */
static void test_big_content(void **state)
{
	(void)state;
	struct queue_store *s = tq_open();
	struct tenv *t = tenv_new(2);
	size_t len = 10u << 20;
	unsigned char *content = malloc(len);
	for (size_t i = 0; i < len; i++)
		content[i] = (unsigned char)((i * 2654435761u) >> 13);
	struct queue_writer *w = NULL;
	const char *err = NULL;
	assert_int_equal(queue_writer_open(s, &w, &err), 0);
	static const size_t sizes[] = { 1, 7, 4096, QUEUE_WRITE_BUF - 1, QUEUE_WRITE_BUF,
					QUEUE_WRITE_BUF + 1, 65536, 1000003 };
	size_t off = 0;
	for (size_t k = 0; off < len; k++) {
		size_t n = sizes[k % (sizeof sizes / sizeof sizes[0])];
		if (n > len - off)
			n = len - off;
		assert_int_equal(queue_writer_append(w, content + off, n, &err), 0);
		off += n;
		assert_int_equal(queue_writer_size(w), off);
	}
	assert_int_equal(queue_writer_finish(w, &t->env, &err), 0);
	struct queue_batch *b = queue_batch_new(s);
	assert_int_equal(queue_batch_add(b, &w, &err), 0);
	assert_int_equal(queue_batch_commit(b), 0);
	const char *qid = NULL;
	assert_int_equal(queue_batch_result(b, 0, &qid, &err), 0);
	tq_check_content(s, qid, content, len);
	struct queue_msg *m = NULL;
	assert_int_equal(queue_msg_load(s, qid, &m, &err), 0);
	assert_int_equal(m->content_len, len);
	queue_msg_free(&m);
	queue_batch_free(&b);
	free(content);
	tenv_free(t);
	queue_store_close(&s);
}

/* Content appended one byte at a time. */
static void test_byte_at_a_time(void **state)
{
	(void)state;
	struct queue_store *s = tq_open();
	struct tenv *t = tenv_new(1);
	char content[3000];
	for (size_t i = 0; i < sizeof content; i++)
		content[i] = (char)(i % 251);
	struct queue_writer *w = tq_write(s, content, sizeof content, 1, &t->env);
	struct queue_batch *b = queue_batch_new(s);
	const char *err = NULL, *qid = NULL;
	assert_int_equal(queue_batch_add(b, &w, &err), 0);
	assert_int_equal(queue_batch_commit(b), 0);
	assert_int_equal(queue_batch_result(b, 0, &qid, &err), 0);
	tq_check_content(s, qid, content, sizeof content);
	queue_batch_free(&b);
	tenv_free(t);
	queue_store_close(&s);
}

/* Commit n writers in one batch with the given sync mode. */
static void group_commit(enum queue_sync mode, size_t n)
{
	struct queue_store *s = tq_open();
	queue_store_set_sync(s, mode);
	hooks_reset();
	queue_store_set_io_hooks(s, &hooks);
	struct tenv *t = tenv_new(3);
	struct queue_batch *b = queue_batch_new(s);
	const char *err = NULL;
	for (size_t i = 0; i < n; i++) {
		char content[64];
		int len = snprintf(content, sizeof content, "message %zu\r\n", i);
		struct queue_writer *w = tq_write(s, content, (size_t)len, 5, &t->env);
		assert_int_equal(queue_batch_add(b, &w, &err), (int)i);
	}
	assert_int_equal(queue_batch_count(b), n);
	assert_int_equal(tq_count("incoming"), n);
	assert_int_equal(tq_count("active"), 0);
	assert_int_equal(queue_batch_commit(b), 0);
	/* The syncs are shared: one directory fsync for the whole batch. */
	assert_int_equal(n_fsync, 1);
	if (mode == QUEUE_SYNC_EACH) {
		assert_int_equal(n_fdatasync, (int)n);
		assert_int_equal(n_syncfs, 0);
	} else {
		assert_int_equal(n_fdatasync, 0);
		assert_int_equal(n_syncfs, 1);
	}
	assert_int_equal(tq_count("incoming"), 0);
	assert_int_equal(tq_count("active"), n);
	for (size_t i = 0; i < n; i++) {
		const char *qid = NULL;
		assert_int_equal(queue_batch_result(b, i, &qid, &err), 0);
		assert_null(err);
		char content[64];
		int len = snprintf(content, sizeof content, "message %zu\r\n", i);
		tq_check_content(s, qid, content, (size_t)len);
	}
	/* A second commit of the same batch does nothing. */
	assert_int_equal(queue_batch_commit(b), 0);
	assert_int_equal(n_fsync, 1);
	queue_batch_free(&b);
	assert_int_equal(tq_count("active"), n); /* committed items stay */
	tenv_free(t);
	queue_store_close(&s);
}

static void test_group_commit_50_auto(void **state)
{
	(void)state;
	group_commit(QUEUE_SYNC_AUTO, 50);
}

static void test_group_commit_50_each(void **state)
{
	(void)state;
	group_commit(QUEUE_SYNC_EACH, 50);
}

static void test_group_commit_empty(void **state)
{
	(void)state;
	struct queue_store *s = tq_open();
	struct queue_batch *b = queue_batch_new(s);
	assert_int_equal(queue_batch_commit(b), 0);
	const char *err = NULL;
	assert_int_equal(queue_batch_result(b, 0, NULL, &err), -1);
	queue_batch_free(&b);
	queue_store_close(&s);
}

/* Abort in every state leaves nothing behind. */
static void test_abort(void **state)
{
	(void)state;
	struct queue_store *s = tq_open();
	struct tenv *t = tenv_new(1);
	const char *err = NULL;
	struct queue_writer *w = NULL;
	/* While writing. */
	assert_int_equal(queue_writer_open(s, &w, &err), 0);
	assert_true(queue_id_valid(queue_writer_id(w)));
	assert_int_equal(queue_writer_append(w, "abc", 3, &err), 0);
	assert_int_equal(tq_count("incoming"), 1);
	queue_writer_abort(&w);
	assert_null(w);
	assert_int_equal(tq_count("incoming"), 0);
	/* After finish. */
	w = tq_write(s, "x\r\n", 3, 3, &t->env);
	queue_writer_abort(&w);
	/* A batch cleared before commit aborts its items. */
	struct queue_batch *b = queue_batch_new(s);
	w = tq_write(s, "y\r\n", 3, 3, &t->env);
	assert_int_equal(queue_batch_add(b, &w, &err), 0);
	queue_batch_clear(b);
	assert_int_equal(queue_batch_count(b), 0);
	queue_batch_free(&b);
	/* NULL is fine. */
	queue_writer_abort(&w);
	assert_int_equal(tq_count("incoming"), 0);
	assert_int_equal(tq_count("active"), 0);
	tenv_free(t);
	queue_store_close(&s);
}

/* Finish with env and expect failure; the file must be gone. */
static void finish_fails(struct queue_store *s, const struct queue_envelope *env)
{
	struct queue_writer *w = NULL;
	const char *err = NULL;
	assert_int_equal(queue_writer_open(s, &w, &err), 0);
	assert_int_equal(queue_writer_append(w, "x", 1, &err), 0);
	assert_int_equal(queue_writer_finish(w, env, &err), -1);
	assert_non_null(err);
	assert_int_equal(tq_count("incoming"), 0);
	/* A failed writer refuses more work and cannot join a batch. */
	assert_int_equal(queue_writer_append(w, "x", 1, &err), -1);
	struct queue_batch *b = queue_batch_new(s);
	assert_int_equal(queue_batch_add(b, &w, &err), -1);
	assert_non_null(w);
	queue_batch_free(&b);
	queue_writer_abort(&w);
}

/* Finish with env and commit; expect success. */
static void finish_ok(struct queue_store *s, const struct queue_envelope *env)
{
	char qid[QUEUE_ID_MAX];
	tq_commit_one(s, "x", 1, env, qid);
	struct queue_msg *m = NULL;
	const char *err = NULL;
	assert_int_equal(queue_msg_load(s, qid, &m, &err), 0);
	assert_int_equal(m->env.rcpt_count, env->rcpt_count);
	queue_msg_free(&m);
}

/* Every bound, at the limit and one over. */
static void test_limits(void **state)
{
	(void)state;
	struct queue_store *s = tq_open();
	struct tenv *t = tenv_new(QUEUE_RCPT_MAX + 1);
	t->env.rcpt_count = QUEUE_RCPT_MAX;
	finish_ok(s, &t->env);
	t->env.rcpt_count = QUEUE_RCPT_MAX + 1;
	finish_fails(s, &t->env);
	t->env.rcpt_count = 1;

	char addr[QUEUE_ADDR_MAX + 2];
	memset(addr, 'a', sizeof addr);
	addr[QUEUE_ADDR_MAX] = '\0';
	t->env.rcpts[0].addr = addr;
	finish_ok(s, &t->env);
	t->env.sender = addr;
	finish_ok(s, &t->env);
	addr[QUEUE_ADDR_MAX] = 'a';
	addr[QUEUE_ADDR_MAX + 1] = '\0';
	finish_fails(s, &t->env);      /* sender over */
	t->env.sender = "s@example.com";
	finish_fails(s, &t->env);      /* recipient over */
	t->env.rcpts[0].addr = "";
	finish_fails(s, &t->env);      /* empty recipient */
	t->env.rcpts[0].addr = "a\r\nb@example.org";
	finish_fails(s, &t->env);      /* control characters */
	t->env.rcpts[0].addr = "ok@example.org";

	char envid[QUEUE_ENVID_MAX + 2];
	memset(envid, 'e', sizeof envid);
	envid[QUEUE_ENVID_MAX] = '\0';
	t->env.envid = envid;
	finish_ok(s, &t->env);
	envid[QUEUE_ENVID_MAX] = 'e';
	envid[QUEUE_ENVID_MAX + 1] = '\0';
	finish_fails(s, &t->env);
	t->env.envid = "";

	char orcpt[QUEUE_ORCPT_MAX + 2];
	memset(orcpt, 'o', sizeof orcpt);
	orcpt[QUEUE_ORCPT_MAX] = '\0';
	t->env.rcpts[0].orcpt = orcpt;
	finish_ok(s, &t->env);
	orcpt[QUEUE_ORCPT_MAX] = 'o';
	orcpt[QUEUE_ORCPT_MAX + 1] = '\0';
	finish_fails(s, &t->env);
	t->env.rcpts[0].orcpt = NULL;

	char host[QUEUE_HOST_MAX + 2];
	memset(host, 'h', sizeof host);
	host[QUEUE_HOST_MAX + 1] = '\0';
	t->env.helo = host;
	finish_fails(s, &t->env);
	t->env.helo = "ok";

	t->env.rcpts[0].notify = QUEUE_NOTIFY_ALL + 1;
	finish_fails(s, &t->env);
	t->env.rcpts[0].notify = QUEUE_NOTIFY_ALL;
	t->env.body = (enum queue_body)9;
	finish_fails(s, &t->env);
	t->env.body = QUEUE_BODY_BINARYMIME;
	finish_ok(s, &t->env);

	/* Content over QUEUE_CONTENT_MAX is refused before a byte is read. */
	struct queue_writer *w = NULL;
	const char *err = NULL;
	assert_int_equal(queue_writer_open(s, &w, &err), 0);
	assert_int_equal(queue_writer_append(w, "ab", 2, &err), 0);
	assert_int_equal(queue_writer_append(w, "x", (size_t)(QUEUE_CONTENT_MAX - 1), &err), -1);
	assert_non_null(strstr(err, "too large"));
	queue_writer_abort(&w);
	assert_int_equal(tq_count("incoming"), 0);
	tenv_free(t);
	queue_store_close(&s);
}

/* Commit a status batch of the given updates; expect all to succeed. */
static void status_commit(struct queue_store *s, const struct queue_rcpt_update *u, size_t n)
{
	struct queue_rcpt_batch *b = queue_rcpt_batch_new(s);
	const char *err = NULL;
	for (size_t i = 0; i < n; i++)
		assert_int_equal(queue_rcpt_batch_add(b, &u[i], &err), (int)i);
	assert_int_equal(queue_rcpt_batch_count(b), n);
	assert_int_equal(queue_rcpt_batch_commit(b), 0);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(queue_rcpt_batch_result(b, i, &err), 0);
		assert_null(err);
	}
	queue_rcpt_batch_free(&b);
}

/* Recipient states are recorded in batches and applied on load; the last
 * record of a recipient wins; replaying twice changes nothing; the message
 * is removed once done. */
static void test_status(void **state)
{
	(void)state;
	struct queue_store *s = tq_open();
	struct tenv *t = tenv_new(3);
	char q1[QUEUE_ID_MAX], q2[QUEUE_ID_MAX];
	tq_commit_one(s, "one\r\n", 5, &t->env, q1);
	tq_commit_one(s, "two\r\n", 5, &t->env, q2);
	char longtext[QUEUE_STATUS_TEXT_MAX + 50];
	memset(longtext, 'z', sizeof longtext);
	longtext[sizeof longtext - 1] = '\0';
	struct queue_rcpt_update u[] = {
		{ q1, 0, QUEUE_RCPT_DEFERRED, 0, 1, 1000, "451 4.3.0 try later" },
		{ q2, 2, QUEUE_RCPT_DELIVERED, 0, 1, 0, "250 2.0.0 ok" },
		{ q1, 0, QUEUE_RCPT_DEFERRED, QUEUE_RCPT_F_DELAY_SENT, 2, 2000, "451\r\nagain" },
		{ q1, 1, QUEUE_RCPT_FAILED, QUEUE_RCPT_F_DSN_SENT, 1, 0, longtext },
	};
	status_commit(s, u, 4);
	struct queue_msg *m = NULL;
	const char *err = NULL;
	assert_int_equal(queue_msg_load(s, q1, &m, &err), 0);
	assert_int_equal(m->env.rcpts[0].state, QUEUE_RCPT_DEFERRED);
	assert_int_equal(m->env.rcpts[0].flags, QUEUE_RCPT_F_DELAY_SENT);
	assert_int_equal(m->env.rcpts[0].attempts, 2);
	assert_int_equal(m->env.rcpts[0].next_retry, 2000);
	assert_string_equal(m->env.rcpts[0].status, "451  again"); /* controls -> spaces */
	assert_int_equal(m->env.rcpts[1].state, QUEUE_RCPT_FAILED);
	assert_int_equal(strlen(m->env.rcpts[1].status), QUEUE_STATUS_TEXT_MAX);
	assert_int_equal(m->env.rcpts[2].state, QUEUE_RCPT_PENDING);
	assert_false(queue_msg_done(m));
	queue_msg_free(&m);

	/* Replaying the same records again (idempotent) gives the same state. */
	status_commit(s, u, 4);
	assert_int_equal(queue_msg_load(s, q1, &m, &err), 0);
	assert_int_equal(m->env.rcpts[0].attempts, 2);
	assert_int_equal(m->env.rcpts[1].state, QUEUE_RCPT_FAILED);
	queue_msg_free(&m);

	/* Finish q1; it is done and can be removed with its log. */
	struct queue_rcpt_update fin[] = {
		{ q1, 0, QUEUE_RCPT_DELIVERED, QUEUE_RCPT_F_DELAY_SENT, 3, 0, "250 ok" },
		{ q1, 2, QUEUE_RCPT_DELIVERED, 0, 1, 0, NULL },
	};
	status_commit(s, fin, 2);
	assert_int_equal(queue_msg_load(s, q1, &m, &err), 0);
	assert_true(queue_msg_done(m));
	assert_string_equal(m->env.rcpts[2].status, "");
	queue_msg_free(&m);
	assert_int_equal(queue_msg_remove(s, q1, &err), 0);
	assert_false(tq_exists("active", q1));
	assert_false(tq_exists("status", q1));
	assert_int_equal(queue_msg_load(s, q1, &m, &err), -1);
	assert_int_equal(errno, ENOENT);
	/* Removing again is harmless. */
	assert_int_equal(queue_msg_remove(s, q1, &err), 0);

	/* q2 is untouched by all of this. */
	assert_int_equal(queue_msg_load(s, q2, &m, &err), 0);
	assert_int_equal(m->env.rcpts[2].state, QUEUE_RCPT_DELIVERED);
	assert_int_equal(m->env.rcpts[0].state, QUEUE_RCPT_PENDING);
	queue_msg_free(&m);

	/* Updates for a message that does not exist, bad IDs, bad states. */
	struct queue_rcpt_batch *b = queue_rcpt_batch_new(s);
	struct queue_rcpt_update bad = { q1, 0, QUEUE_RCPT_DELIVERED, 0, 1, 0, "" };
	assert_int_equal(queue_rcpt_batch_add(b, &bad, &err), 0);
	bad.qid = "../../x";
	assert_int_equal(queue_rcpt_batch_add(b, &bad, &err), -1);
	bad.qid = q2;
	bad.state = (enum queue_rcpt_state)7;
	assert_int_equal(queue_rcpt_batch_add(b, &bad, &err), -1);
	bad.state = QUEUE_RCPT_DELIVERED;
	bad.flags = 0x80;
	assert_int_equal(queue_rcpt_batch_add(b, &bad, &err), -1);
	bad.flags = 0;
	bad.index = QUEUE_RCPT_MAX;
	assert_int_equal(queue_rcpt_batch_add(b, &bad, &err), -1);
	assert_int_equal(queue_rcpt_batch_commit(b), 1);
	assert_int_equal(queue_rcpt_batch_result(b, 0, &err), -1);
	assert_non_null(strstr(err, "no such message"));
	assert_false(tq_exists("status", q1));
	queue_rcpt_batch_free(&b);

	/* A record for an index beyond the envelope is ignored on load. */
	struct queue_rcpt_update beyond = { q2, 3, QUEUE_RCPT_DELIVERED, 0, 1, 0, "" };
	status_commit(s, &beyond, 1);
	assert_int_equal(queue_msg_load(s, q2, &m, &err), 0);
	assert_int_equal(m->env.rcpt_count, 3);
	queue_msg_free(&m);
	tenv_free(t);
	queue_store_close(&s);
}

/* Status text at the bound is kept whole; over it, it is cut without
 * splitting a UTF-8 sequence. */
static void test_status_text_bound(void **state)
{
	(void)state;
	struct queue_store *s = tq_open();
	struct tenv *t = tenv_new(3);
	char qid[QUEUE_ID_MAX];
	tq_commit_one(s, "m", 1, &t->env, qid);
	char at[QUEUE_STATUS_TEXT_MAX + 1], over[QUEUE_STATUS_TEXT_MAX + 2];
	memset(at, 'a', QUEUE_STATUS_TEXT_MAX);
	at[QUEUE_STATUS_TEXT_MAX] = '\0';
	/* 511 ASCII bytes, then a 2-byte sequence straddling the bound. */
	memset(over, 'b', QUEUE_STATUS_TEXT_MAX - 1);
	over[QUEUE_STATUS_TEXT_MAX - 1] = (char)0xc3;
	over[QUEUE_STATUS_TEXT_MAX] = (char)0xa9;
	over[QUEUE_STATUS_TEXT_MAX + 1] = '\0';
	struct queue_rcpt_update u[] = {
		{ qid, 0, QUEUE_RCPT_DEFERRED, 0, 1, 5, at },
		{ qid, 1, QUEUE_RCPT_DEFERRED, 0, 1, 5, over },
		{ qid, 2, QUEUE_RCPT_DEFERRED, 0, 1, 5, "\xe4\xb8\xad\xe6\x96\x87 ok" },
	};
	status_commit(s, u, 3);
	struct queue_msg *m = NULL;
	const char *err = NULL;
	assert_int_equal(queue_msg_load(s, qid, &m, &err), 0);
	assert_string_equal(m->env.rcpts[0].status, at);
	assert_int_equal(strlen(m->env.rcpts[1].status), QUEUE_STATUS_TEXT_MAX - 1);
	assert_string_equal(m->env.rcpts[2].status, "\xe4\xb8\xad\xe6\x96\x87 ok");
	queue_msg_free(&m);
	tenv_free(t);
	queue_store_close(&s);
}

/* Path of the status log of qid. */
static void status_path(const char *qid, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s/status/%s", tq_dir, qid);
}

/* A torn last record (every possible cut) and garbage tails are ignored;
 * the records before them apply. */
static void test_status_truncated(void **state)
{
	(void)state;
	struct queue_store *s = tq_open();
	struct tenv *t = tenv_new(2);
	char qid[QUEUE_ID_MAX];
	tq_commit_one(s, "m\r\n", 3, &t->env, qid);
	struct queue_rcpt_update a = { qid, 0, QUEUE_RCPT_DELIVERED, 0, 1, 0, "250 first" };
	status_commit(s, &a, 1);
	char path[PATH_MAX];
	status_path(qid, path, sizeof path);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	off_t first = st.st_size;
	struct queue_rcpt_update b = { qid, 1, QUEUE_RCPT_DELIVERED, 0, 1, 0, "250 second" };
	status_commit(s, &b, 1);
	assert_int_equal(stat(path, &st), 0);
	off_t full = st.st_size;
	for (off_t cut = first; cut < full; cut++) {
		assert_int_equal(truncate(path, cut), 0);
		struct queue_msg *m = NULL;
		const char *err = NULL;
		assert_int_equal(queue_msg_load(s, qid, &m, &err), 0);
		assert_int_equal(m->env.rcpts[0].state, QUEUE_RCPT_DELIVERED);
		assert_int_equal(m->env.rcpts[1].state, QUEUE_RCPT_PENDING);
		queue_msg_free(&m);
		/* Restore the full record for the next cut. */
		assert_int_equal(truncate(path, first), 0);
		status_commit(s, &b, 1);
	}
	/* A zero-filled tail (extended size without data after a crash). */
	assert_int_equal(truncate(path, full + 4096), 0);
	struct queue_msg *m = NULL;
	const char *err = NULL;
	assert_int_equal(queue_msg_load(s, qid, &m, &err), 0);
	assert_int_equal(m->env.rcpts[1].state, QUEUE_RCPT_DELIVERED);
	queue_msg_free(&m);
	/* A flipped byte in the first record hides everything after it. */
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "X", 1, 10), 1);
	close(fd);
	assert_int_equal(queue_msg_load(s, qid, &m, &err), 0);
	assert_int_equal(m->env.rcpts[0].state, QUEUE_RCPT_PENDING);
	queue_msg_free(&m);
	tenv_free(t);
	queue_store_close(&s);
}

/* Many records for many recipients (more than the replay buffer). */
static void test_status_large_log(void **state)
{
	(void)state;
	struct queue_store *s = tq_open();
	struct tenv *t = tenv_new(1000);
	char qid[QUEUE_ID_MAX];
	tq_commit_one(s, "m\r\n", 3, &t->env, qid);
	struct queue_rcpt_update *u = calloc(1000, sizeof *u);
	char text[200];
	memset(text, 't', sizeof text - 1);
	text[sizeof text - 1] = '\0';
	for (uint32_t round = 1; round <= 3; round++) {
		for (uint32_t i = 0; i < 1000; i++)
			u[i] = (struct queue_rcpt_update){ qid, i, round == 3 ? QUEUE_RCPT_DELIVERED :
							   QUEUE_RCPT_DEFERRED, 0, round,
							   (int64_t)round * 100 + i, text };
		status_commit(s, u, 1000);
	}
	struct queue_msg *m = NULL;
	const char *err = NULL;
	assert_int_equal(queue_msg_load(s, qid, &m, &err), 0);
	for (uint32_t i = 0; i < 1000; i++) {
		assert_int_equal(m->env.rcpts[i].state, QUEUE_RCPT_DELIVERED);
		assert_int_equal(m->env.rcpts[i].attempts, 3);
		assert_int_equal(m->env.rcpts[i].next_retry, 300 + i);
	}
	assert_true(queue_msg_done(m));
	queue_msg_free(&m);
	free(u);
	tenv_free(t);
	queue_store_close(&s);
}

/* queue_list returns IDs in order and skips foreign files. */
/* A removed message file goes to free/ and the next message reuses it
 * (same inode), truncated: the new content is exact, nothing of the old. */
static void test_recycle(void **state)
{
	(void)state;
	struct queue_store *s = tq_open();
	struct tenv *t = tenv_new(1);
	char big[8192], small[] = "Subject: second\r\n\r\nshort\r\n";
	memset(big, 'A', sizeof big);
	char qid1[QUEUE_ID_MAX], qid2[QUEUE_ID_MAX];
	tq_commit_one(s, big, sizeof big, &t->env, qid1);
	char path[256];
	struct stat st1, st2;
	snprintf(path, sizeof path, "%s/active/%s", tq_dir, qid1);
	assert_int_equal(stat(path, &st1), 0);
	const char *err = NULL;
	assert_int_equal(queue_msg_remove(s, qid1, &err), 0);
	assert_false(tq_exists("active", qid1));
	assert_true(tq_exists("free", qid1));
	/* A second store (another process) may take it at once. */
	struct queue_store *s2 = tq_open();
	tq_commit_one(s2, small, strlen(small), &t->env, qid2);
	assert_int_equal(tq_count("free"), 0);
	snprintf(path, sizeof path, "%s/active/%s", tq_dir, qid2);
	assert_int_equal(stat(path, &st2), 0);
	assert_true(st1.st_ino == st2.st_ino);
	tq_check_content(s2, qid2, small, strlen(small));
	/* Recovery ignores free/: remove, then recover finds nothing. */
	assert_int_equal(queue_msg_remove(s2, qid2, &err), 0);
	assert_int_equal(tq_count("active"), 0);
	queue_store_close(&s2);
	queue_store_close(&s);
	tenv_free(t);
}

static void test_list(void **state)
{
	(void)state;
	struct queue_store *s = tq_open();
	struct tenv *t = tenv_new(1);
	char ids[5][QUEUE_ID_MAX];
	for (int i = 0; i < 5; i++)
		tq_commit_one(s, "x", 1, &t->env, ids[i]);
	char junk[PATH_MAX];
	snprintf(junk, sizeof junk, "%s/active/README", tq_dir);
	int fd = open(junk, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	char (*got)[QUEUE_ID_MAX] = NULL;
	size_t n = 0;
	const char *err = NULL;
	assert_int_equal(queue_list(s, &got, &n, &err), 0);
	assert_int_equal(n, 5);
	for (int i = 0; i < 5; i++)
		assert_string_equal(got[i], ids[i]);
	free(got);
	tenv_free(t);
	queue_store_close(&s);
}

/* Loading checks the ID and refuses bad ones. */
static void test_load_bad_id(void **state)
{
	(void)state;
	struct queue_store *s = tq_open();
	struct queue_msg *m = NULL;
	const char *err = NULL;
	assert_int_equal(queue_msg_load(s, "../active/x", &m, &err), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(queue_msg_load(s, "0123456789AB", &m, &err), -1);
	assert_int_equal(errno, ENOENT);
	uint64_t off, len;
	assert_int_equal(queue_msg_content_fd(s, "bad", &off, &len, &err), -1);
	assert_int_equal(queue_msg_remove(s, "bad", &err), -1);
	queue_store_close(&s);
}

static void test_free_space(void **state)
{
	(void)state;
	assert_true(queue_free_space_ok(tq_dir, 0));
	assert_true(queue_free_space_ok(tq_dir, 4096));
	assert_false(queue_free_space_ok(tq_dir, UINT64_MAX));
	assert_false(queue_free_space_ok("/nonexistent/queue/dir", 0));
}

static void test_open_errors(void **state)
{
	(void)state;
	struct queue_store *s = NULL;
	const char *err = NULL;
	assert_int_equal(queue_store_open("", &s, &err), -1);
	char big[QUEUE_DIR_MAX + 10];
	memset(big, 'd', sizeof big);
	big[0] = '/';
	big[sizeof big - 1] = '\0';
	assert_int_equal(queue_store_open(big, &s, &err), -1);
	/* A file where the directory should be. */
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/file", tq_dir);
	int fd = open(path, O_WRONLY | O_CREAT, 0600);
	close(fd);
	assert_int_equal(queue_store_open(path, &s, &err), -1);
	assert_non_null(err);
	assert_null(s);
	/* Reopening an existing queue works. */
	s = tq_open();
	queue_store_close(&s);
	s = tq_open();
	struct stat st;
	snprintf(path, sizeof path, "%s/active", tq_dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	queue_store_close(&s);
}

/* The envelope decoder on every truncation and on flipped bytes of a
 * valid block never crashes and never accepts a truncation. */
static void test_envelope_decode_malformed(void **state)
{
	(void)state;
	struct tenv *t = tenv_new(3);
	t->env.arrival = 42;
	struct yz_buf out;
	yz_buf_init(&out, QUEUE_ENVELOPE_MAX);
	char qid[QUEUE_ID_MAX];
	queue_id_new(qid);
	const char *err = NULL;
	assert_int_equal(queue_envelope_check(&t->env, &err), 0);
	assert_int_equal(queue_envelope_encode(&out, qid, &t->env), 0);
	size_t len = yz_buf_len(&out);
	unsigned char *data = yz_memdup(yz_buf_data(&out), len);
	struct yz_pool *pool = yz_pool_new(1024);
	struct queue_envelope env;
	char got_qid[QUEUE_ID_MAX];
	assert_int_equal(queue_envelope_decode(pool, data, len, got_qid, &env, &err), 0);
	assert_string_equal(got_qid, qid);
	assert_int_equal(env.arrival, 42);
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(queue_envelope_decode(pool, data, cut, got_qid, &env, &err), -1);
	for (size_t i = 0; i < len; i++) {
		unsigned char saved = data[i];
		data[i] ^= 0xff;
		(void)queue_envelope_decode(pool, data, len, got_qid, &env, &err);
		data[i] = saved;
	}
	yz_pool_free(&pool);
	free(data);
	yz_buf_free(&out);
	tenv_free(t);
}

/* Status records byte at a time: 0 (need more) until complete. */
static void test_status_decode_bytewise(void **state)
{
	(void)state;
	unsigned char rec[QUEUE_STATUS_REC_MAX];
	struct queue_rcpt_update u = { "0123456789AB", 5, QUEUE_RCPT_DEFERRED, 1, 4, -7, "hello" };
	size_t n = queue_status_encode(rec, &u);
	struct queue_status_rec r;
	for (size_t i = 0; i < n; i++)
		assert_int_equal(queue_status_decode(rec, i, &r), 0);
	assert_int_equal(queue_status_decode(rec, n, &r), (long)n);
	assert_int_equal(r.index, 5);
	assert_int_equal(r.next_retry, -7);
	assert_int_equal(r.text_len, 5);
	assert_memory_equal(r.text, "hello", 5);
	rec[n - 1] ^= 1;
	assert_int_equal(queue_status_decode(rec, n, &r), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id),
		cmocka_unit_test_setup_teardown(test_roundtrip_0, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip_1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip_1000, setup, teardown),
		cmocka_unit_test_setup_teardown(test_null_sender, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_content, setup, teardown),
		cmocka_unit_test_setup_teardown(test_byte_at_a_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit_50_auto, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit_50_each, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_text_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_large_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_bad_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_space, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
		cmocka_unit_test(test_envelope_decode_malformed),
		cmocka_unit_test(test_status_decode_bytewise),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

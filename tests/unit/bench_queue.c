/*
 * bench_queue.c: messages per second through the queue store's write path
 * (open, append content, finish, batch commit) for group-commit batches of
 * 1, 5, 10, 20, 50 and 100, with fdatasync per file and with one syncfs per
 * batch. The two modes run in alternating rounds and the median round is
 * reported, so that other load on a shared disk hits both alike. It is what
 * QUEUE_SYNCFS_MIN_FILES was chosen from. Not a unit test (not
 * named test_*): build and run by hand, in a directory on the disk to
 * measure:
 *   make build/libyizhan.a
 *   cc -std=c11 -D_GNU_SOURCE -O2 -Isrc tests/unit/bench_queue.c build/libyizhan.a \
 *      -lssl -lcrypto -lsqlite3 -largon2 -lcrypt -lm -o /tmp/bench_queue
 *   /tmp/bench_queue [queue dir] [seconds per round] [rounds] [content bytes]
 * The directory is created and its messages removed afterwards.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/queue/queue_store.h"

/* Monotonic time in seconds. */
static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Remove every committed message (the bench leaves the queue empty). */
static void drain(struct queue_store *s)
{
	char (*ids)[QUEUE_ID_MAX] = NULL;
	size_t n = 0;
	const char *err = NULL;
	if (queue_list(s, &ids, &n, &err) < 0) {
		fprintf(stderr, "list: %s\n", err);
		exit(1);
	}
	for (size_t i = 0; i < n; i++) {
		if (queue_msg_remove(s, ids[i], &err) < 0)
			fprintf(stderr, "remove: %s\n", err);
	}
	free(ids);
}

/* Median of n values (sorts them). */
static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof *v, dbl_cmp);
	return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Run batches of size batch for about secs seconds; returns messages/s. */
static double run_case(struct queue_store *s, enum queue_sync sync, size_t batch, double secs,
		       const char *content, size_t clen, const struct queue_envelope *env)
{
	queue_store_set_sync(s, sync);
	struct queue_batch *b = queue_batch_new(s);
	size_t msgs = 0;
	double start = now_s();
	const char *err = NULL;
	while (now_s() - start < secs) {
		for (size_t i = 0; i < batch; i++) {
			struct queue_writer *w = NULL;
			if (queue_writer_open(s, &w, &err) < 0 ||
			    queue_writer_append(w, content, clen, &err) < 0 ||
			    queue_writer_finish(w, env, &err) < 0 ||
			    queue_batch_add(b, &w, &err) < 0) {
				fprintf(stderr, "write: %s\n", err);
				exit(1);
			}
		}
		size_t failed = queue_batch_commit(b);
		if (failed != 0) {
			fprintf(stderr, "commit: %zu failed\n", failed);
			exit(1);
		}
		msgs += batch;
		queue_batch_clear(b);
	}
	double rate = (double)msgs / (now_s() - start);
	queue_batch_free(&b);
	drain(s);
	return rate;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp/yizhan-bench-queue";
	double secs = argc > 2 ? atof(argv[2]) : 1.0;
	size_t rounds = argc > 3 ? (size_t)atol(argv[3]) : 5;
	size_t clen = argc > 4 ? (size_t)atol(argv[4]) : 4096;
	if (rounds < 1 || rounds > 100 || clen < 1 || clen > (64u << 20)) {
		fprintf(stderr, "rounds 1..100, content 1..64 MiB\n");
		return 2;
	}
	struct queue_store *s = NULL;
	const char *err = NULL;
	if (queue_store_open(dir, &s, &err) < 0) {
		fprintf(stderr, "open: %s\n", err);
		return 1;
	}
	char *content = malloc(clen);
	for (size_t i = 0; i < clen; i++)
		content[i] = (i % 78 == 77) ? '\n' : (char)('a' + i % 26);
	struct queue_rcpt rcpts[2] = {
		{ .addr = "alice@example.org" }, { .addr = "bob@example.org" },
	};
	struct queue_envelope env = {
		.sender = "sender@example.com", .client_name = "client.example.com",
		.client_addr = "192.0.2.7", .helo = "client.example.com",
		.rcpt_count = 2, .rcpts = rcpts,
	};
	static const size_t batches[] = { 1, 5, 10, 20, 50, 100 };
	printf("queue store group commit, %zu-byte messages, median of %zu rounds of %.1f s, dir %s\n",
	       clen, rounds, secs, dir);
	printf("%-6s %14s %14s\n", "batch", "fdatasync/s", "syncfs/s");
	double each[100], fs[100];
	for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
		for (size_t r = 0; r < rounds; r++) {
			each[r] = run_case(s, QUEUE_SYNC_EACH, batches[i], secs, content, clen, &env);
			fs[r] = run_case(s, QUEUE_SYNC_FS, batches[i], secs, content, clen, &env);
		}
		printf("%-6zu %14.0f %14.0f\n", batches[i], median(each, rounds), median(fs, rounds));
		fflush(stdout);
	}
	free(content);
	queue_store_close(&s);
	return 0;
}

/*
 * bench_maildir.c: deliveries per second of the Maildir++ store for each
 * durability strategy and batch size, on the disk of the given directory.
 * Not run by `make unit` (its name does not start with test_). Build:
 *   make build/libyizhan.a && cc -std=c11 -D_GNU_SOURCE -O2 -Isrc \
 *     tests/unit/bench_maildir.c build/libyizhan.a -o build/bench_maildir
 * Run: build/bench_maildir [dir (default /tmp)] [messages per run (default 2000)]
 * Each message is distinct (no hard-link sharing) and goes to one of 20
 * accounts, as a busy MX's deliveries do. Batches share one folder cache,
 * as in the mailbox role; files are unnamed (O_TMPFILE) except in the runs
 * marked "tmp/". Everything created is removed.
 */
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/mailbox/maildir.h"

#define BENCH_ACCOUNTS 20
#define BENCH_BODY_SIZE 4096

/* nftw callback removing everything. */
static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Seconds of the monotonic clock. */
static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Deliver total messages in batches of batch_size; returns messages/s. */
static double run(const char *root, enum maildir_sync sync, int batch_size, int total,
		  const char *body, int run_id, bool tmpfile, struct maildir_cache *cache)
{
	double t0 = now();
	int done = 0;
	while (done < total) {
		struct maildir_batch *b = maildir_batch_new(root, "bench");
		maildir_batch_set_sync(b, sync);
		maildir_batch_set_tmpfile(b, tmpfile);
		maildir_batch_set_cache(b, cache);
		int n = total - done < batch_size ? total - done : batch_size;
		for (int k = 0; k < n; k++) {
			char account[64], unique[64], hdr[64];
			int seq = done + k;
			snprintf(account, sizeof account, "user%d@bench.example",
				 seq % BENCH_ACCOUNTS);
			snprintf(unique, sizeof unique, "B%d.Q%d.R0", run_id, seq);
			int hl = snprintf(hdr, sizeof hdr, "X-Seq: %d\r\n", seq);
			maildir_batch_add_mem(b, account, NULL, unique, false, hdr, (size_t)hl,
					      body, BENCH_BODY_SIZE, 0);
		}
		if (maildir_batch_commit(b) < 0) {
			fprintf(stderr, "commit failed\n");
			exit(1);
		}
		for (int k = 0; k < n; k++) {
			const char *err;
			if (maildir_batch_status(b, k, &err) != MAILDIR_OK) {
				fprintf(stderr, "delivery failed: %s\n", err ? err : "?");
				exit(1);
			}
		}
		maildir_batch_free(&b);
		done += n;
	}
	return total / (now() - t0);
}

int main(int argc, char **argv)
{
	const char *base = argc > 1 ? argv[1] : "/tmp";
	int total = argc > 2 ? atoi(argv[2]) : 2000;
	if (total <= 0)
		total = 2000;
	char root[PATH_MAX];
	snprintf(root, sizeof root, "%s/yz_bench_maildir.XXXXXX", base);
	if (mkdtemp(root) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	char *body = malloc(BENCH_BODY_SIZE);
	memset(body, 'x', BENCH_BODY_SIZE);
	static const struct {
		const char *name;
		enum maildir_sync sync;
		int batch;
		bool tmp_dir;
	} runs[] = {
		{ "per-file fdatasync, batch 1", MAILDIR_SYNC_PER_FILE, 1, false },
		{ "syncfs, batch 1", MAILDIR_SYNC_FS, 1, false },
		{ "per-file fdatasync, batch 2", MAILDIR_SYNC_PER_FILE, 2, false },
		{ "syncfs, batch 2", MAILDIR_SYNC_FS, 2, false },
		{ "per-file fdatasync, batch 4", MAILDIR_SYNC_PER_FILE, 4, false },
		{ "syncfs, batch 4", MAILDIR_SYNC_FS, 4, false },
		{ "per-file fdatasync, batch 8", MAILDIR_SYNC_PER_FILE, 8, false },
		{ "syncfs, batch 8", MAILDIR_SYNC_FS, 8, false },
		{ "per-file fdatasync, batch 20", MAILDIR_SYNC_PER_FILE, 20, false },
		{ "syncfs, batch 20", MAILDIR_SYNC_FS, 20, false },
		{ "auto, batch 20", MAILDIR_SYNC_AUTO, 20, false },
		{ "syncfs, batch 100", MAILDIR_SYNC_FS, 100, false },
		{ "tmp/, auto, batch 20", MAILDIR_SYNC_AUTO, 20, true },
		{ "tmp/, syncfs, batch 100", MAILDIR_SYNC_FS, 100, true },
	};
	struct maildir_cache *cache = maildir_cache_new(0);
	for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
		double rate = run(root, runs[i].sync, runs[i].batch, total, body, (int)i,
				  !runs[i].tmp_dir, cache);
		printf("%-32s %8.0f messages/s\n", runs[i].name, rate);
		fflush(stdout);
	}
	maildir_cache_free(&cache);
	free(body);
	nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

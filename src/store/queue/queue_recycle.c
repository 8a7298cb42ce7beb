/*
 * queue_recycle.c: reuse of finished queue files.
 *
 * Creating and deleting one file per message makes the file system allocate
 * and free an inode per message; on ext4 (notably without a journal) the
 * allocator then scans past every recently freed inode, which showed as the
 * top kernel cost under load. So a finished message file is renamed into
 * free/ instead of being unlinked, and a new message takes one from there
 * (rename free/<x> -> incoming/<qid>, then truncate) before it creates one.
 *
 * Guarantees: a file in free/ is garbage: nothing reads it, recovery ignores
 * the directory, and a file taken from it is truncated before anything is
 * written. The rename that takes a file is exclusive (RENAME_NOREPLACE into
 * incoming/, and a file renamed away by another process is simply gone for
 * us). free/ holds at most about QUEUE_FREE_MAX files; past that, finished
 * files are unlinked. Removal through free/ is as durable as an unlink
 * (neither is synced: recovery redoes a removal a crash loses).
 * Never: a file reused without O_TRUNC; a name from free/ used as a path
 * without queue_id_valid().
 */
#include "store/queue/queue_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t recycle_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Read up to QUEUE_FREE_CACHE names of free/; returns how many files it has
 * (counting past the cache). */
static size_t recycle_scan(struct queue_store *s)
{
	s->nfree_names = 0;
	DIR *d = queue_dir_stream(s->free_fd);
	if (d == NULL)
		return 0;
	size_t count = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!queue_id_valid(de->d_name))
			continue;
		count++;
		if (s->nfree_names < QUEUE_FREE_CACHE)
			memcpy(s->free_names[s->nfree_names++], de->d_name, QUEUE_ID_MAX);
	}
	closedir(d);
	return count;
}

int queue_recycle_take(struct queue_store *s, const char *qid, const char *path)
{
	if (s->free_fd < 0) {
		errno = ENOENT;
		return -1;
	}
	if (s->nfree_names == 0) {
		/* Don't rescan an empty free/ for every message. */
		uint64_t now = recycle_now_ms();
		if (now - s->free_scan_ms < QUEUE_FREE_RESCAN_MS && s->free_scan_ms != 0) {
			errno = ENOENT;
			return -1;
		}
		s->free_scan_ms = now;
		(void)recycle_scan(s);
	}
	while (s->nfree_names > 0) {
		const char *name = s->free_names[--s->nfree_names];
		if (renameat2(s->free_fd, name, s->incoming_fd, qid, RENAME_NOREPLACE) < 0)
			continue; /* taken by another process meanwhile, or qid exists */
		int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
		if (fd < 0) {
			int saved = errno;
			(void)unlinkat(s->incoming_fd, qid, 0);
			errno = saved;
			return -1;
		}
		return fd;
	}
	errno = ENOENT;
	return -1;
}

int queue_recycle_put(struct queue_store *s, const char *qid)
{
	if (s->free_fd < 0)
		return -1;
	if (++s->removes_since_count >= QUEUE_FREE_RECOUNT || s->free_estimate == 0) {
		/* Other processes take files out: recount now and then. */
		s->removes_since_count = 0;
		s->free_estimate = recycle_scan(s);
		if (s->free_estimate == 0)
			s->free_estimate = 1; /* scanned: not "unknown" */
	}
	if (s->free_estimate >= QUEUE_FREE_MAX)
		return -1;
	if (renameat(s->active_fd, qid, s->free_fd, qid) < 0)
		return -1;
	s->free_estimate++;
	return 0;
}

/*
 * queue_recover.c: start-up recovery of the queue role and the sweep of
 * incoming/.
 *
 * Guarantees: every file left in incoming/ by a dead writer (never
 * committed, so never acknowledged) is removed, and no file a live writer
 * holds (its flock) is touched; every valid committed message is handed to
 * the caller in ID order with its recipient states; a message whose
 * recipients were all done is removed (a removal cut short by a crash); a
 * committed file that fails validation is moved to corrupt/ and logged;
 * status logs without a message are removed. Must never: delete a
 * committed message that is not done, or drop a corrupt one silently.
 */
#include "store/queue/queue_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/mem.h"

/* Suffixes tried when corrupt/<qid> already exists. */
#define QUEUE_CORRUPT_TRIES 100

int queue_incoming_sweep(struct queue_store *s, size_t *removed_r, const char **error_r)
{
	size_t removed = 0;
	DIR *d = queue_dir_stream(s->incoming_fd);
	if (d == NULL) {
		*error_r = queue_errf(s->err, sizeof s->err, errno, "opendir %s/incoming", s->dir);
		return -1;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		int fd = openat(s->incoming_fd, de->d_name,
				O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue; /* gone meanwhile, or not a file we can open */
		struct stat st;
		/* A live writer holds LOCK_EX; we unlink while holding the lock,
		 * so a writer that opened but had not locked yet sees st_nlink
		 * == 0 after its flock and starts over (queue_write.c). */
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    flock(fd, LOCK_EX | LOCK_NB) == 0) {
			char path[QUEUE_PATH_MAX];
			if (queue_path(s, QUEUE_SUB_INCOMING, de->d_name, path, sizeof path) == 0 &&
			    queue_io_unlink(s, path) == 0)
				removed++;
		}
		close(fd);
	}
	closedir(d);
	if (removed_r != NULL)
		*removed_r = removed;
	return 0;
}

/* Move active/<qid> (and its status log) to corrupt/; logs why. */
static int move_corrupt(struct queue_store *s, const char *qid, const char *why)
{
	char from[QUEUE_PATH_MAX], to[QUEUE_PATH_MAX], name[QUEUE_ID_MAX + 16];
	if (queue_path(s, QUEUE_SUB_ACTIVE, qid, from, sizeof from) < 0)
		return -1;
	/* Never replace an earlier corrupt file of the same name. */
	int r = -1;
	for (int i = 0; i < QUEUE_CORRUPT_TRIES && r < 0; i++) {
		if (i == 0)
			snprintf(name, sizeof name, "%s", qid);
		else
			snprintf(name, sizeof name, "%s.%d", qid, i);
		if (queue_path(s, QUEUE_SUB_CORRUPT, name, to, sizeof to) < 0)
			return -1;
		r = queue_io_rename(s, from, to);
		if (r < 0 && errno != EEXIST)
			break;
	}
	if (r < 0) {
		yz_log_err("%s: corrupt queue file (%s) could not be moved to corrupt/: %s",
			   qid, why, strerror(errno));
		return -1;
	}
	yz_log_warn("%s: corrupt queue file moved to %s: %s", qid, to, why);
	char sfrom[QUEUE_PATH_MAX], sto[QUEUE_PATH_MAX + 8];
	if (queue_path(s, QUEUE_SUB_STATUS, qid, sfrom, sizeof sfrom) == 0 &&
	    snprintf(sto, sizeof sto, "%s.status", to) < (int)sizeof sto &&
	    queue_io_rename(s, sfrom, sto) < 0 && errno != ENOENT)
		yz_log_warn("%s: status log not moved to corrupt/: %s", qid, strerror(errno));
	/* The move must survive a crash before the message is forgotten. */
	if (queue_io_fsync(s, s->corrupt_fd) < 0 || queue_io_fsync(s, s->active_fd) < 0)
		yz_log_warn("%s: fsync after moving to corrupt/: %s", qid, strerror(errno));
	return 0;
}

/* Remove status logs whose message is not in active/. */
static void remove_orphans(struct queue_store *s, struct queue_recover_stats *st)
{
	DIR *d = queue_dir_stream(s->status_fd);
	if (d == NULL) {
		yz_log_warn("opendir %s/status: %s", s->dir, strerror(errno));
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!queue_id_valid(de->d_name))
			continue;
		struct stat sb;
		if (fstatat(s->active_fd, de->d_name, &sb, 0) == 0 || errno != ENOENT)
			continue;
		char path[QUEUE_PATH_MAX];
		if (queue_path(s, QUEUE_SUB_STATUS, de->d_name, path, sizeof path) == 0 &&
		    queue_io_unlink(s, path) == 0)
			st->orphans_removed++;
	}
	closedir(d);
}

int queue_recover(struct queue_store *s, queue_recover_cb *cb, void *ctx,
		  struct queue_recover_stats *stats_r, const char **error_r)
{
	struct queue_recover_stats st;
	memset(&st, 0, sizeof st);
	if (queue_incoming_sweep(s, &st.incoming_removed, error_r) < 0)
		return -1;
	char (*ids)[QUEUE_ID_MAX];
	size_t n;
	if (queue_list(s, &ids, &n, error_r) < 0)
		return -1;
	int ret = 0;
	for (size_t i = 0; i < n; i++) {
		struct queue_msg *m;
		const char *err;
		if (queue_msg_load(s, ids[i], &m, &err) < 0) {
			if (errno == ENOENT)
				continue;
			if (errno == EBADMSG) {
				if (move_corrupt(s, ids[i], err) == 0)
					st.corrupt++;
				else
					st.unreadable++;
			} else {
				yz_log_warn("%s: queue file unreadable, left in place: %s", ids[i], err);
				st.unreadable++;
			}
			continue;
		}
		if (queue_msg_done(m)) {
			queue_msg_free(&m);
			if (queue_msg_remove(s, ids[i], &err) < 0)
				yz_log_warn("%s", err);
			else
				st.done_removed++;
			continue;
		}
		st.loaded++;
		if (cb(m, ctx) != 0) {
			*error_r = "recovery stopped by the caller";
			ret = -1;
			break;
		}
	}
	free(ids);
	if (ret == 0)
		remove_orphans(s, &st);
	if (stats_r != NULL)
		*stats_r = st;
	return ret;
}

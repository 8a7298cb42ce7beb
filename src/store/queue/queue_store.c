/*
 * queue_store.c: opening the queue directory, the system-call wrappers that
 * honour the fault-injection hooks, paths, free-space checks and the sorted
 * listing of committed messages.
 *
 * Guarantees: after queue_store_open() the four subdirectories exist (0700)
 * and their fds are open (syncfs on incoming_fd reports every write-back
 * error since the store was opened); every path fits QUEUE_PATH_MAX or the
 * call fails with ENAMETOOLONG. Must never: build a path from a name that is
 * not a valid queue ID, or list a file that is not one.
 */
#include "store/queue/queue_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/file.h"
#include "lib/mem.h"

#define QUEUE_NSUBDIRS 6
static const char *const queue_subdirs[QUEUE_NSUBDIRS] = {
	QUEUE_SUB_INCOMING, QUEUE_SUB_ACTIVE, QUEUE_SUB_STATUS,
	QUEUE_SUB_CORRUPT,  QUEUE_SUB_FREE,   QUEUE_SUB_LOG,
};

const char *queue_errf(char *buf, size_t bufsz, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, bufsz, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < bufsz && errnum != 0)
		snprintf(buf + n, bufsz - (size_t)n, ": %s", strerror(errnum));
	return buf;
}

int queue_path(const struct queue_store *s, const char *sub, const char *name,
	       char *out, size_t outsz)
{
	int n = name != NULL ? snprintf(out, outsz, "%s/%s/%s", s->dir, sub, name)
			     : snprintf(out, outsz, "%s/%s", s->dir, sub);
	if (n < 0 || (size_t)n >= outsz) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Open a directory fd for fsync/syncfs. */
static int open_dir(const char *path)
{
	return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int queue_store_open(const char *dir, struct queue_store **store_r, const char **error_r)
{
	static char err[256]; /* no store yet to hold the text */
	size_t len = strlen(dir);
	if (len == 0 || len >= QUEUE_DIR_MAX) {
		*error_r = "queue directory path empty or too long";
		return -1;
	}
	struct queue_store *s = yz_calloc(1, sizeof *s);
	memcpy(s->dir, dir, len + 1);
	s->incoming_fd = s->active_fd = s->status_fd = s->corrupt_fd = s->free_fd = -1;
	s->log_fd = s->wseg_fd = -1;
	int *fds[QUEUE_NSUBDIRS] = { &s->incoming_fd, &s->active_fd, &s->status_fd,
				     &s->corrupt_fd,  &s->free_fd,   &s->log_fd };
	if (yz_mkdir_p(dir, 0700) < 0) {
		*error_r = queue_errf(err, sizeof err, errno, "mkdir %s", dir);
		goto fail;
	}
	struct stat top;
	if (stat(dir, &top) < 0) {
		*error_r = queue_errf(err, sizeof err, errno, "stat %s", dir);
		goto fail;
	}
	for (int i = 0; i < QUEUE_NSUBDIRS; i++) {
		char path[QUEUE_PATH_MAX];
		bool made = false;
		int r = queue_path(s, queue_subdirs[i], NULL, path, sizeof path);
		if (r == 0) {
			made = mkdir(path, 0700) == 0;
			r = made || errno == EEXIST ? 0 : -1;
		}
		/* A subdirectory new in this version, made by a role that has not
		 * dropped root yet, belongs to the queue's owner like the rest. */
		if (r == 0 && made && geteuid() == 0 && top.st_uid != 0)
			r = chown(path, top.st_uid, top.st_gid);
		if (r < 0 || (*fds[i] = open_dir(path)) < 0) {
			*error_r = queue_errf(err, sizeof err, errno, "queue directory %s/%s",
					      dir, queue_subdirs[i]);
			goto fail;
		}
	}
	/* A created subdirectory must survive a crash before anything in it is
	 * trusted: fsync the queue directory once. */
	if (yz_fsync_dir(dir) < 0) {
		*error_r = queue_errf(err, sizeof err, errno, "fsync %s", dir);
		goto fail;
	}
	*store_r = s;
	return 0;
fail:
	queue_store_close(&s);
	return -1;
}

void queue_store_close(struct queue_store **sp)
{
	struct queue_store *s = *sp;
	if (s == NULL)
		return;
	queue_seg_close_all(s);
	if (s->wseg_fd >= 0)
		close(s->wseg_fd);
	int fds[QUEUE_NSUBDIRS] = { s->incoming_fd, s->active_fd, s->status_fd,
				    s->corrupt_fd,  s->free_fd,   s->log_fd };
	for (int i = 0; i < QUEUE_NSUBDIRS; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
	}
	free(s);
	*sp = NULL;
}

void queue_store_use_segments(struct queue_store *s, bool on)
{
	s->seg_write = on;
}

void queue_store_set_sync(struct queue_store *s, enum queue_sync sync)
{
	s->sync = sync;
}

void queue_store_set_io_hooks(struct queue_store *s, const struct queue_io_hooks *hooks)
{
	if (hooks != NULL)
		s->hooks = *hooks;
	else
		memset(&s->hooks, 0, sizeof s->hooks);
}

bool queue_use_syncfs(const struct queue_store *s, size_t n)
{
	switch (s->sync) {
	case QUEUE_SYNC_EACH:
		return false;
	case QUEUE_SYNC_FS:
		return true;
	case QUEUE_SYNC_AUTO:
	default:
		return n > QUEUE_SYNCFS_MIN_FILES;
	}
}

int queue_io_write_full(const struct queue_store *s, int fd, const void *buf, size_t len)
{
	return yz_write_full_with(s->hooks.write, fd, buf, len);
}

int queue_io_pwritev_full(const struct queue_store *s, int fd, struct iovec *iov, size_t n,
			  uint64_t off)
{
	if (s->hooks.write != NULL) {
		/* Tests inject faults through the write hook. */
		if (lseek(fd, (off_t)off, SEEK_SET) < 0)
			return -1;
		for (size_t i = 0; i < n; i++) {
			if (queue_io_write_full(s, fd, iov[i].iov_base, iov[i].iov_len) < 0)
				return -1;
		}
		return 0;
	}
	while (n > 0) {
		ssize_t w = pwritev(fd, iov, (int)n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		off += (uint64_t)w;
		size_t left = (size_t)w;
		while (n > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

int queue_io_fdatasync(const struct queue_store *s, int fd)
{
	return s->hooks.fdatasync != NULL ? s->hooks.fdatasync(fd) : fdatasync(fd);
}

int queue_io_fsync(const struct queue_store *s, int fd)
{
	return s->hooks.fsync != NULL ? s->hooks.fsync(fd) : fsync(fd);
}

int queue_io_syncfs(const struct queue_store *s, int fd)
{
	return s->hooks.syncfs != NULL ? s->hooks.syncfs(fd) : syncfs(fd);
}

/* rename that never replaces: renameat2(RENAME_NOREPLACE), or link + unlink
 * where the file system does not support it. */
static int rename_noreplace(const char *from, const char *to)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (link(from, to) < 0)
		return -1;
	if (unlink(from) < 0) {
		/* Never leave the file under both names: the caller fails it. */
		int saved = errno;
		(void)unlink(to);
		errno = saved;
		return -1;
	}
	return 0;
}

int queue_io_rename(const struct queue_store *s, const char *from, const char *to)
{
	return s->hooks.rename != NULL ? s->hooks.rename(from, to) : rename_noreplace(from, to);
}

int queue_io_unlink(const struct queue_store *s, const char *path)
{
	return s->hooks.unlink != NULL ? s->hooks.unlink(path) : unlink(path);
}

bool queue_free_space_ok(const char *dir, uint64_t need_bytes)
{
	unsigned long long avail;
	if (yz_fs_free_bytes(dir, &avail) < 0)
		return false;
	return avail >= need_bytes;
}

int queue_id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, QUEUE_ID_LEN);
}

DIR *queue_dir_stream(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	DIR *d = fdopendir(fd);
	if (d == NULL)
		close(fd);
	return d;
}

int queue_list(struct queue_store *s, char (**ids_r)[QUEUE_ID_MAX], size_t *count_r,
	       const char **error_r)
{
	DIR *d = queue_dir_stream(s->active_fd);
	if (d == NULL) {
		*error_r = queue_errf(s->err, sizeof s->err, errno, "opendir %s/active", s->dir);
		return -1;
	}
	char (*ids)[QUEUE_ID_MAX] = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (!queue_id_valid(de->d_name))
			continue; /* ".", "..", anything that is not ours */
		if (n == QUEUE_LIST_MAX) {
			free(ids);
			closedir(d);
			*error_r = "queue listing: too many messages";
			return -1;
		}
		if (n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			ids = yz_realloc(ids, cap * sizeof *ids);
		}
		memcpy(ids[n++], de->d_name, QUEUE_ID_MAX);
	}
	int saved = errno;
	closedir(d);
	if (saved != 0) {
		free(ids);
		*error_r = queue_errf(s->err, sizeof s->err, saved, "readdir %s/active", s->dir);
		return -1;
	}
	/* Then the live records of the segment log (small messages). */
	if (queue_seg_scan_all(s, error_r) < 0 || queue_seg_list(s, &ids, &n, &cap, error_r) < 0) {
		free(ids);
		return -1;
	}
	if (n > 1)
		qsort(ids, n, sizeof *ids, queue_id_cmp);
	/* An ID both in active/ and in a segment is listed once. */
	size_t u = 0;
	for (size_t i = 0; i < n; i++) {
		if (u == 0 || memcmp(ids[u - 1], ids[i], QUEUE_ID_MAX) != 0)
			memmove(ids[u++], ids[i], QUEUE_ID_MAX);
	}
	n = u;
	*ids_r = ids;
	*count_r = n;
	return 0;
}

const char *queue_rcpt_state_name(enum queue_rcpt_state st)
{
	switch (st) {
	case QUEUE_RCPT_PENDING:
		return "pending";
	case QUEUE_RCPT_DEFERRED:
		return "deferred";
	case QUEUE_RCPT_DELIVERED:
		return "delivered";
	case QUEUE_RCPT_FAILED:
		return "failed";
	}
	return "unknown";
}

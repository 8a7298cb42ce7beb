/*
 * test_util.h: helpers shared by the unit tests: formatting that fails the
 * test on truncation, removing a scratch tree, a scratch SQLite database,
 * counting directory entries and open fds, and reading what the kernel
 * holds in an epoll set.
 * Header-only (static functions), included after cmocka.h.
 */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <dirent.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

/* snprintf that fails the test on truncation. */
static inline int xfmt(char *out, size_t outsz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static inline int xfmt(char *out, size_t outsz, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, outsz, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < outsz);
	return n;
}

/* nftw callback removing everything. */
static inline int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove the tree at path (0, or what nftw answers). */
static inline int rm_tree(const char *path)
{
	return nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* A scratch database path for this process: $TMPDIR/yz-test-<tag>-<pid>.db. */
static inline void tmp_db(char *buf, size_t size, const char *tag)
{
	const char *t = getenv("TMPDIR");
	xfmt(buf, size, "%s/yz-test-%s-%ld.db", t != NULL ? t : "/tmp", tag, (long)getpid());
}

/* Remove a database and its WAL files. */
static inline void rm_db(const char *path)
{
	char b[4096];
	unlink(path);
	xfmt(b, sizeof b, "%s-wal", path);
	unlink(b);
	xfmt(b, sizeof b, "%s-shm", path);
	unlink(b);
}

/* Number of entries of dir whose name does not start with a dot; -1 if it
 * cannot be opened. */
static inline int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n;
}

/* Open fds of this process (not counting the one the count itself uses). */
static inline int count_fds(void)
{
	int n = count_entries("/proc/self/fd");
	assert_true(n > 0);
	return n - 1;
}

/* The (only) epoll fd of this process, found in /proc/self/fd. */
static inline int find_epoll_fd(void)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int found = -1;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		char target[64];
		ssize_t n = readlinkat(dirfd(d), de->d_name, target, sizeof target - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, "anon_inode:[eventpoll]") == 0) {
			assert_int_equal(found, -1); /* one loop at a time here */
			found = atoi(de->d_name);
		}
	}
	closedir(d);
	assert_true(found >= 0);
	return found;
}

/* EPOLLIN|EPOLLOUT as the kernel holds them for fd in epfd (ERR|HUP are
 * always on); -1 if fd is not in the set. */
static inline long kernel_events(int epfd, int fd)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/self/fdinfo/%d", epfd);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	long ev = -1;
	while (fgets(line, sizeof line, f) != NULL) {
		int tfd;
		unsigned int mask;
		if (sscanf(line, "tfd: %d events: %x", &tfd, &mask) == 2 && tfd == fd)
			ev = (long)(mask & (EPOLLIN | EPOLLOUT));
	}
	fclose(f);
	return ev;
}

#endif

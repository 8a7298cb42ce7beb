/*
 * file.c: durable writes and small file helpers. Guarantees: a successful
 * yz_file_write_atomic() has the content and the directory entry on stable
 * storage; a failed one leaves the destination as it was.
 */
#include "lib/file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "lib/mem.h"

int yz_write_full(int fd, const void *buf, size_t len)
{
	return yz_write_full_with(NULL, fd, buf, len);
}

int yz_write_full_with(ssize_t (*wr)(int fd, const void *buf, size_t len), int fd,
		       const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = wr != NULL ? wr(fd, p, len) : write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t yz_read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int yz_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = fsync(fd);
	int saved = errno;
	close(fd);
	errno = saved;
	return r;
}

int yz_fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (slash == NULL)
		return yz_fsync_dir(".");
	size_t n = (size_t)(slash - path);
	if (n == 0)
		return yz_fsync_dir("/");
	if (n >= sizeof dir) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(dir, path, n);
	dir[n] = '\0';
	return yz_fsync_dir(dir);
}

int yz_file_write_atomic(const char *path, const void *data, size_t len,
			 mode_t mode)
{
	char tmp[PATH_MAX];
	int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	(void)unlink(tmp); /* a leftover from a crashed earlier attempt */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	int saved;
	if (yz_write_full(fd, data, len) < 0 || fsync(fd) < 0) {
		saved = errno;
		close(fd);
		goto fail;
	}
	if (close(fd) < 0) {
		saved = errno;
		goto fail;
	}
	if (rename(tmp, path) < 0) {
		saved = errno;
		goto fail;
	}
	return yz_fsync_parent(path);
fail:
	(void)unlink(tmp);
	errno = saved;
	return -1;
}

int yz_file_read_all(const char *path, size_t max, char **data_r, size_t *len_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	if ((unsigned long long)st.st_size > max) {
		close(fd);
		errno = EFBIG;
		return -1;
	}
	size_t cap = (size_t)st.st_size;
	char *buf = yz_malloc(cap + 1);
	ssize_t got = yz_read_full(fd, buf, cap);
	int saved = errno;
	close(fd);
	if (got < 0) {
		free(buf);
		errno = saved;
		return -1;
	}
	buf[got] = '\0';
	*data_r = buf;
	*len_r = (size_t)got;
	return 0;
}

int yz_mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof tmp) {
		errno = len ? ENAMETOOLONG : EINVAL;
		return -1;
	}
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

int yz_fs_free_bytes(const char *path, unsigned long long *free_r)
{
	struct statvfs vfs;
	if (statvfs(path, &vfs) < 0)
		return -1;
	*free_r = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
	return 0;
}

int yz_fd_set_cloexec(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFD);
	if (fl < 0)
		return -1;
	fl = on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC);
	return fcntl(fd, F_SETFD, fl);
}

int yz_fd_set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -1;
	fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	return fcntl(fd, F_SETFL, fl);
}

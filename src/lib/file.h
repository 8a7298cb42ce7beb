/*
 * file.h: durable file operations.
 *
 * Every durable write is: open O_EXCL -> write -> fsync -> close (checked)
 * -> rename -> fsync the directory. A failed fsync is never retried and
 * trusted: the caller must treat the file as lost and report a temporary
 * error. All functions return 0 on success, -1 with errno set on failure.
 */
#ifndef YZ_FILE_H
#define YZ_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* write(2) all of buf, retrying on EINTR and short writes. */
int yz_write_full(int fd, const void *buf, size_t len);
/* The same through another write function (the stores' fault-injection
 * hooks); wr NULL means write(2). */
int yz_write_full_with(ssize_t (*wr)(int fd, const void *buf, size_t len), int fd,
		       const void *buf, size_t len);
/* read(2) until len bytes or EOF; returns bytes read or -1. */
ssize_t yz_read_full(int fd, void *buf, size_t len);

/* fsync a directory by path. */
int yz_fsync_dir(const char *dir);
/* fsync the directory containing path. */
int yz_fsync_parent(const char *path);

/*
 * Write data to path atomically and durably: a temporary file next to it is
 * created O_EXCL, written, fsync'd, closed, renamed over path, and the
 * directory fsync'd. On failure the temporary file is removed and path is
 * untouched.
 */
int yz_file_write_atomic(const char *path, const void *data, size_t len,
			 mode_t mode);

/* Read a whole file (at most max bytes; EFBIG if larger) into a heap buffer
 * with a trailing NUL. */
int yz_file_read_all(const char *path, size_t max, char **data_r, size_t *len_r);

/* mkdir -p with mode for each created component. */
int yz_mkdir_p(const char *path, mode_t mode);

/* Free bytes available to unprivileged users on the filesystem of path. */
int yz_fs_free_bytes(const char *path, unsigned long long *free_r);

/* Set FD_CLOEXEC / O_NONBLOCK. */
int yz_fd_set_cloexec(int fd, bool on);
int yz_fd_set_nonblock(int fd, bool on);

#endif

/*
 * maildir_quota.c: Maildir++ quota, the Courier "maildirsize" file.
 *
 * Format: a first line with the limit ("<bytes>S"; "0S" = unlimited), then
 * lines "<bytes> <count>" (whitespace-separated, may be negative) whose sum
 * is the usage. Guarantees: a file that is missing, larger than
 * MAILDIR_QUOTA_FILE_MAX, malformed (a torn last line included), with a
 * negative sum, or whose limit line is not the account's quota is rebuilt
 * from a scan of new/ and cur/ of the account and of every folder, and
 * written atomically. Deltas are appended with one O_APPEND write(2).
 * Never: create maildirsize from an append (only a recalculation does),
 * trust a sum that overflowed.
 */
#include "store/mailbox/maildir.h"
#include "store/mailbox/maildir_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/file.h"

/* Longest limit line we write or accept. */
#define MAILDIR_QUOTA_LIMIT_MAX 64

/* The limit line for a quota, without the newline. */
static void quota_limit_line(unsigned long long quota, char *out, size_t outsz)
{
	(void)snprintf(out, outsz, "%lluS", quota);
}

/* Parse one signed decimal integer at *p (after optional blanks). */
static bool parse_ll(const char **p, const char *end, long long *v_r)
{
	const char *s = *p;
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	bool neg = false;
	if (s < end && (*s == '-' || *s == '+')) {
		neg = *s == '-';
		s++;
	}
	if (s >= end || *s < '0' || *s > '9')
		return false;
	long long v = 0;
	while (s < end && *s >= '0' && *s <= '9') {
		if (__builtin_mul_overflow(v, 10LL, &v) ||
		    __builtin_add_overflow(v, (long long)(*s - '0'), &v))
			return false;
		s++;
	}
	*v_r = neg ? -v : v;
	*p = s;
	return true;
}

/* Parse maildirsize contents. */
int maildir_quota_parse(const char *data, size_t len, char *limit_r, size_t limitsz,
			long long *bytes_r, long long *count_r)
{
	const char *end = data + len;
	const char *nl = memchr(data, '\n', len);
	if (nl == NULL)
		return -1;
	size_t llen = (size_t)(nl - data);
	if (memchr(data, '\0', llen) != NULL)
		return -1;
	if (limit_r != NULL) {
		if (llen >= limitsz)
			return -1;
		memcpy(limit_r, data, llen);
		limit_r[llen] = '\0';
	}
	long long bytes = 0, count = 0;
	const char *p = nl + 1;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			return -1; /* a torn append */
		long long b, c;
		if (!parse_ll(&p, eol, &b) || p >= eol || (*p != ' ' && *p != '\t') ||
		    !parse_ll(&p, eol, &c))
			return -1;
		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		if (p != eol)
			return -1;
		if (__builtin_add_overflow(bytes, b, &bytes) ||
		    __builtin_add_overflow(count, c, &count))
			return -1;
		p = eol + 1;
	}
	*bytes_r = bytes;
	*count_r = count;
	return 0;
}

/* Add the messages of one new/ or cur/ directory. */
static int scan_msgs(const char *dir, unsigned long long *bytes, unsigned long long *count)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	int dfd = dirfd(d);
	int ret = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (de == NULL) {
			if (errno != 0)
				ret = -1;
			break;
		}
		struct maildir_name_info info;
		if (maildir_name_parse(de->d_name, strlen(de->d_name), &info) < 0)
			continue;
		unsigned long long size = info.size;
		if (!info.has_size || de->d_type != DT_REG) {
			struct stat st;
			if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
				if (errno == ENOENT)
					continue;
				ret = -1;
				break;
			}
			if (!S_ISREG(st.st_mode))
				continue;
			if (!info.has_size)
				size = (unsigned long long)st.st_size;
		}
		*bytes += size;
		*count += 1;
	}
	int saved = errno;
	closedir(d);
	errno = saved;
	return ret;
}

/* Add new/ and cur/ of one folder directory. */
static int scan_folder(const char *folder_dir, unsigned long long *bytes,
		       unsigned long long *count)
{
	char dir[PATH_MAX];
	if (maildir_pathf(dir, sizeof dir, "%s/new", folder_dir) < 0 ||
	    scan_msgs(dir, bytes, count) < 0 ||
	    maildir_pathf(dir, sizeof dir, "%s/cur", folder_dir) < 0 ||
	    scan_msgs(dir, bytes, count) < 0)
		return -1;
	return 0;
}

/* Scan the account and every Maildir++ folder, then rewrite maildirsize. */
int maildir_quota_recalc(const char *account_dir, unsigned long long quota,
			 unsigned long long *bytes_r, unsigned long long *count_r)
{
	unsigned long long bytes = 0, count = 0;
	char path[PATH_MAX];
	if (scan_folder(account_dir, &bytes, &count) < 0)
		return -1;
	DIR *d = opendir(account_dir);
	if (d == NULL)
		return -1;
	int ret = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (de == NULL) {
			if (errno != 0)
				ret = -1;
			break;
		}
		const char *n = de->d_name;
		if (n[0] != '.' || !maildir_folder_name_valid(n + 1))
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if (maildir_pathf(path, sizeof path, "%s/%s", account_dir, n) < 0 ||
		    scan_folder(path, &bytes, &count) < 0) {
			ret = -1;
			break;
		}
	}
	int saved = errno;
	closedir(d);
	if (ret < 0) {
		errno = saved;
		return -1;
	}
	char limit[MAILDIR_QUOTA_LIMIT_MAX];
	char data[MAILDIR_QUOTA_LIMIT_MAX + 64];
	quota_limit_line(quota, limit, sizeof limit);
	int n = snprintf(data, sizeof data, "%s\n%llu %llu\n", limit, bytes, count);
	if (n < 0 || (size_t)n >= sizeof data) {
		errno = EOVERFLOW;
		return -1;
	}
	if (maildir_pathf(path, sizeof path, "%s/%s", account_dir, MAILDIR_QUOTA_FILE) < 0 ||
	    yz_file_write_atomic(path, data, (size_t)n, 0600) < 0)
		return -1;
	*bytes_r = bytes;
	*count_r = count;
	return 0;
}

/* Usage from maildirsize, recalculated when it cannot be trusted. */
int maildir_quota_usage(const char *account_dir, unsigned long long quota,
			unsigned long long *bytes_r, unsigned long long *count_r)
{
	char path[PATH_MAX];
	if (maildir_pathf(path, sizeof path, "%s/%s", account_dir, MAILDIR_QUOTA_FILE) < 0)
		return -1;
	char *data = NULL;
	size_t len = 0;
	if (yz_file_read_all(path, MAILDIR_QUOTA_FILE_MAX, &data, &len) < 0) {
		if (errno != ENOENT && errno != EFBIG)
			return -1;
		return maildir_quota_recalc(account_dir, quota, bytes_r, count_r);
	}
	char limit[MAILDIR_QUOTA_LIMIT_MAX], want[MAILDIR_QUOTA_LIMIT_MAX];
	long long bytes, count;
	int r = maildir_quota_parse(data, len, limit, sizeof limit, &bytes, &count);
	free(data);
	quota_limit_line(quota, want, sizeof want);
	if (r < 0 || bytes < 0 || count < 0 || strcmp(limit, want) != 0)
		return maildir_quota_recalc(account_dir, quota, bytes_r, count_r);
	*bytes_r = (unsigned long long)bytes;
	*count_r = (unsigned long long)count;
	return 0;
}

/* Append one delta line to an existing maildirsize. */
int maildir_quota_add(const char *account_dir, long long bytes, long long count)
{
	char path[PATH_MAX], line[64];
	if (maildir_pathf(path, sizeof path, "%s/%s", account_dir, MAILDIR_QUOTA_FILE) < 0)
		return -1;
	int n = snprintf(line, sizeof line, "%lld %lld\n", bytes, count);
	if (n < 0 || (size_t)n >= sizeof line) {
		errno = EOVERFLOW;
		return -1;
	}
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	ssize_t w = write(fd, line, (size_t)n);
	int saved = errno;
	if (close(fd) < 0 && w == n) {
		w = -1;
		saved = errno;
	}
	if (w != n) {
		/* A torn or lost delta: make the next reader recalculate. */
		(void)unlink(path);
		errno = w < 0 ? saved : EIO;
		return -1;
	}
	return 0;
}

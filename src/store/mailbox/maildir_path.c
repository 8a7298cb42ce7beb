/*
 * maildir_path.c: validated paths of the Maildir++ store: account
 * directories, folders, and their creation.
 *
 * Guarantees: every path component built from input (domain, local part,
 * folder, unique part) was checked first: no '/', no leading '.', no control
 * bytes, bounded length, and the whole path fits PATH_MAX. Directories are
 * created 0700 and their entries made durable before success is returned.
 * Never: a path that escapes <root>/<domain>/<localpart>, a silent
 * truncation.
 */
#include "store/mailbox/maildir.h"
#include "store/mailbox/maildir_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/file.h"

/* snprintf into a path buffer, failing on truncation. */
int maildir_pathf(char *out, size_t outsz, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, outsz, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= outsz) {
		if (outsz > 0)
			out[0] = '\0';
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* A safe single path component of at most max bytes: not empty, no '/', no
 * leading '.', no control bytes or space. Bytes >= 0x80 are allowed only if
 * high_ok (UTF-8 local parts). */
static bool component_valid(const char *s, size_t len, size_t max, bool high_ok)
{
	if (len == 0 || len > max || len > NAME_MAX || s[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7f || c == '/')
			return false;
		if (c >= 0x80 && !high_ok)
			return false;
	}
	return true;
}

/* Folder names: printable ASCII, no '/', no empty hierarchy level. */
bool maildir_folder_name_valid(const char *folder)
{
	if (folder == NULL)
		return false;
	size_t len = strnlen(folder, MAILDIR_FOLDER_MAX + 1);
	if (len == 0 || len > MAILDIR_FOLDER_MAX)
		return false;
	if (folder[0] == '.' || folder[len - 1] == '.' || strstr(folder, "..") != NULL)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)folder[i];
		if (c < 0x20 || c >= 0x7f || c == '/')
			return false;
	}
	return true;
}

/* Unique parts: printable ASCII without '/', ':' and ',' (the separators of
 * the file name), not starting with '.', at most MAILDIR_UNIQUE_MAX bytes. */
bool maildir_unique_valid(const char *unique)
{
	if (unique == NULL)
		return false;
	size_t len = strnlen(unique, MAILDIR_UNIQUE_MAX + 1);
	if (len == 0 || len > MAILDIR_UNIQUE_MAX || unique[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)unique[i];
		if (c <= 0x20 || c >= 0x7f || c == '/' || c == ':' || c == ',' || c == '\\')
			return false;
	}
	return true;
}

/* Split "localpart@domain" at the last '@' and build the account path. */
int maildir_account_path(const char *root, const char *account, char *out, size_t outsz)
{
	if (root == NULL || account == NULL || root[0] == '\0') {
		errno = EINVAL;
		return -1;
	}
	size_t len = strnlen(account, MAILDIR_LOCALPART_MAX + 1 + MAILDIR_DOMAIN_MAX + 1);
	if (len > MAILDIR_LOCALPART_MAX + 1 + MAILDIR_DOMAIN_MAX) {
		errno = EINVAL;
		return -1;
	}
	const char *at = memrchr(account, '@', len);
	if (at == NULL) {
		errno = EINVAL;
		return -1;
	}
	size_t llen = (size_t)(at - account);
	const char *domain = at + 1;
	size_t dlen = len - llen - 1;
	if (!component_valid(account, llen, MAILDIR_LOCALPART_MAX, true) ||
	    !component_valid(domain, dlen, MAILDIR_DOMAIN_MAX, false) ||
	    memchr(domain, '@', dlen) != NULL) {
		errno = EINVAL;
		return -1;
	}
	return maildir_pathf(out, outsz, "%s/%.*s/%.*s", root, (int)dlen, domain,
			     (int)llen, account);
}

/* The directory of a folder: the account itself for INBOX. */
int maildir_folder_path(const char *account_dir, const char *folder, char *out, size_t outsz)
{
	if (folder == NULL || strcasecmp(folder, "INBOX") == 0)
		return maildir_pathf(out, outsz, "%s", account_dir);
	if (!maildir_folder_name_valid(folder)) {
		errno = EINVAL;
		return -1;
	}
	return maildir_pathf(out, outsz, "%s/.%s", account_dir, folder);
}

/* mkdir that reports whether it created the directory. */
static int mkdir_created(const char *path, bool *created)
{
	if (mkdir(path, 0700) == 0) {
		*created = true;
		return 0;
	}
	if (errno != EEXIST)
		return -1;
	struct stat st;
	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

/* tmp/ new/ cur/ inside dir; fsync dir when one was created. */
static int make_subdirs(const char *dir, bool *created)
{
	static const char *const subs[] = { "tmp", "new", "cur" };
	char path[PATH_MAX];
	bool made = false;
	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
		if (maildir_pathf(path, sizeof path, "%s/%s", dir, subs[i]) < 0 ||
		    mkdir_created(path, &made) < 0)
			return -1;
	}
	if (made && yz_fsync_dir(dir) < 0)
		return -1;
	*created = *created || made;
	return 0;
}

/* Create the account maildir and make every new directory entry durable. */
int maildir_create(const char *account_dir)
{
	bool created = false;
	if (mkdir(account_dir, 0700) == 0) {
		created = true;
	} else if (errno == ENOENT) {
		if (yz_mkdir_p(account_dir, 0700) < 0)
			return -1;
		created = true;
	} else if (mkdir_created(account_dir, &created) < 0) {
		return -1;
	}
	bool subs = false;
	if (make_subdirs(account_dir, &subs) < 0)
		return -1;
	if (!created)
		return 0;
	/* The account directory is new: its entry in the domain directory,
	 * and possibly the domain's entry in the root, must survive a crash. */
	char parent[PATH_MAX];
	if (maildir_pathf(parent, sizeof parent, "%s", account_dir) < 0)
		return -1;
	for (int level = 0; level < 2; level++) {
		char *slash = strrchr(parent, '/');
		if (slash == NULL || slash == parent)
			break;
		*slash = '\0';
		if (yz_fsync_dir(parent) < 0)
			return -1;
	}
	return 0;
}

/* Whether the folder (with its tmp/ and new/) exists. */
int maildir_folder_exists(const char *account_dir, const char *folder)
{
	char dir[PATH_MAX], path[PATH_MAX];
	if (maildir_folder_path(account_dir, folder, dir, sizeof dir) < 0)
		return -1;
	static const char *const subs[] = { "tmp", "new" };
	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
		struct stat st;
		if (maildir_pathf(path, sizeof path, "%s/%s", dir, subs[i]) < 0)
			return -1;
		if (stat(path, &st) < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				return 0;
			return -1;
		}
		if (!S_ISDIR(st.st_mode))
			return 0;
	}
	return 1;
}

/* Create a Maildir++ folder (the account is created first if needed). */
int maildir_folder_create(const char *account_dir, const char *folder)
{
	char dir[PATH_MAX], path[PATH_MAX];
	if (folder == NULL || !maildir_folder_name_valid(folder)) {
		errno = EINVAL;
		return -1;
	}
	if (maildir_create(account_dir) < 0 ||
	    maildir_folder_path(account_dir, folder, dir, sizeof dir) < 0)
		return -1;
	bool created = false;
	if (mkdir_created(dir, &created) < 0 || make_subdirs(dir, &created) < 0)
		return -1;
	if (maildir_pathf(path, sizeof path, "%s/maildirfolder", dir) < 0)
		return -1;
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || close(fd) < 0)
		return -1;
	if (created && (yz_fsync_dir(dir) < 0 || yz_fsync_dir(account_dir) < 0))
		return -1;
	return 0;
}

/* INBOX is its own account; a folder holding maildirfolder is in its parent. */
int maildir_account_of_folder(const char *folder_dir, char *out, size_t outsz)
{
	char path[PATH_MAX];
	struct stat st;
	if (maildir_pathf(path, sizeof path, "%s/maildirfolder", folder_dir) < 0)
		return -1;
	if (stat(path, &st) < 0) {
		if (errno != ENOENT)
			return -1;
		return maildir_pathf(out, outsz, "%s", folder_dir);
	}
	if (maildir_pathf(out, outsz, "%s", folder_dir) < 0)
		return -1;
	size_t len = strlen(out);
	while (len > 1 && out[len - 1] == '/')
		out[--len] = '\0';
	char *slash = strrchr(out, '/');
	if (slash == NULL) {
		return maildir_pathf(out, outsz, ".");
	}
	if (slash == out)
		slash[1] = '\0';
	else
		*slash = '\0';
	return 0;
}

/* Remove stale tmp/ files: deliveries that crashed and were never retried. */
int maildir_tmp_clean(const char *folder_dir, unsigned long max_age, unsigned long *removed_r)
{
	char dir[PATH_MAX];
	unsigned long removed = 0;
	if (removed_r != NULL)
		*removed_r = 0;
	if (maildir_pathf(dir, sizeof dir, "%s/tmp", folder_dir) < 0)
		return -1;
	DIR *d = opendir(dir);
	if (d == NULL)
		return -1;
	int dfd = dirfd(d);
	time_t now = time(NULL);
	int ret = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (de == NULL) {
			if (errno != 0)
				ret = -1;
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		struct stat st;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    S_ISDIR(st.st_mode))
			continue;
		if (now >= st.st_mtime && (unsigned long long)(now - st.st_mtime) < max_age)
			continue;
		if (now < st.st_mtime)
			continue; /* from the future: leave it to a later run */
		if (unlinkat(dfd, de->d_name, 0) == 0)
			removed++;
		else if (errno != ENOENT)
			ret = -1;
	}
	int saved = errno;
	closedir(d);
	if (removed_r != NULL)
		*removed_r = removed;
	errno = saved;
	return ret;
}

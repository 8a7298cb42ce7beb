/*
 * maildir_list.c: reading a Maildir folder for POP3/IMAP: file name
 * parsing, listing, opening, flag changes, expunge.
 *
 * Guarantees: a listing holds each message once (a message moved from new/
 * to cur/ during the scan is kept once, as its cur/ name); messages are
 * found again by their unique part when another session renamed them; flag
 * changes are one atomic rename(2). Never: write message content, follow a
 * name that is not a plain file in new/ or cur/, trust a size field that
 * overflows.
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

#include "lib/mem.h"

/* Longest keyword/flag list kept after ":2," (26 keywords + 6 flags). */
#define MAILDIR_INFO_MAX 64

/* Bit of a standard flag letter, 0 if not one. */
static unsigned flag_bit(char c)
{
	const char *p = c != '\0' ? strchr(MAILDIR_STD_FLAGS, c) : NULL;
	return p != NULL ? 1u << (p - MAILDIR_STD_FLAGS) : 0;
}

/* The sorted flag string of a bit set. */
static void flags_from_bits(unsigned bits, char out[8])
{
	size_t n = 0;
	for (size_t i = 0; MAILDIR_STD_FLAGS[i] != '\0'; i++) {
		if (bits & (1u << i))
			out[n++] = MAILDIR_STD_FLAGS[i];
	}
	out[n] = '\0';
}

/* Sort and de-duplicate standard flags. */
int maildir_flags_normalize(const char *flags, char out[8])
{
	unsigned bits = 0;
	size_t len = strnlen(flags, MAILDIR_INFO_MAX + 1);
	if (len > MAILDIR_INFO_MAX) {
		errno = EINVAL;
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned bit = flag_bit(flags[i]);
		if (bit == 0) {
			errno = EINVAL;
			return -1;
		}
		bits |= bit;
	}
	flags_from_bits(bits, out);
	return 0;
}

/* Parse "<unique>[,field...][:2,<flags>]". */
int maildir_name_parse(const char *name, size_t len, struct maildir_name_info *info_r)
{
	memset(info_r, 0, sizeof *info_r);
	if (len == 0 || name[0] == '.' || len > NAME_MAX)
		return -1;
	size_t i = 0;
	while (i < len && name[i] != ':' && name[i] != ',')
		i++;
	if (i == 0)
		return -1;
	info_r->unique_len = i;
	const char *colon = memchr(name + i, ':', len - i);
	size_t fields_end = colon != NULL ? (size_t)(colon - name) : len;

	/* Comma-separated fields before the info part: only S= matters. */
	size_t p = i;
	while (p < fields_end) {
		size_t start = p + 1; /* after the ',' */
		size_t q = start;
		while (q < fields_end && name[q] != ',')
			q++;
		if (!info_r->has_size && q - start >= 3 && name[start] == 'S' &&
		    name[start + 1] == '=') {
			unsigned long long v = 0;
			bool ok = true;
			for (size_t k = start + 2; k < q && ok; k++) {
				unsigned char c = (unsigned char)name[k];
				if (c < '0' || c > '9' ||
				    __builtin_mul_overflow(v, 10ULL, &v) ||
				    __builtin_add_overflow(v, (unsigned long long)(c - '0'), &v))
					ok = false;
			}
			if (ok) {
				info_r->has_size = true;
				info_r->size = v;
			}
		}
		p = q;
	}
	if (colon != NULL && len - fields_end >= 3 && colon[1] == '2' && colon[2] == ',') {
		unsigned bits = 0;
		info_r->info = colon + 3;
		for (size_t k = fields_end + 3; k < len; k++)
			bits |= flag_bit(name[k]);
		flags_from_bits(bits, info_r->flags);
	}
	return 0;
}

/* Find a message by unique part in new/ and/or cur/. */
int maildir_find_unique(const char *folder_dir, const char *unique, size_t unique_len,
			bool search_new, bool search_cur,
			char *name_r, size_t namesz, bool *in_new_r)
{
	static const char *const subs[] = { "new", "cur" };
	char dir[PATH_MAX];
	for (size_t s = 0; s < 2; s++) {
		if ((s == 0 && !search_new) || (s == 1 && !search_cur))
			continue;
		if (maildir_pathf(dir, sizeof dir, "%s/%s", folder_dir, subs[s]) < 0)
			return -1;
		DIR *d = opendir(dir);
		if (d == NULL) {
			if (errno == ENOENT)
				continue;
			return -1;
		}
		struct dirent *de;
		errno = 0;
		while ((de = readdir(d)) != NULL) {
			const char *n = de->d_name;
			if (n[0] == '.' || strncmp(n, unique, unique_len) != 0)
				continue;
			char c = n[unique_len];
			if (c != '\0' && c != ':' && c != ',')
				continue;
			int r = maildir_pathf(name_r, namesz, "%s", n);
			closedir(d);
			if (r < 0)
				return -1;
			*in_new_r = s == 0;
			return 1;
		}
		int saved = errno;
		closedir(d);
		if (saved != 0) {
			errno = saved;
			return -1;
		}
	}
	return 0;
}

/* Order by unique part, then cur/ before new/ (for de-duplication). */
static int msg_cmp(const void *a, const void *b)
{
	const struct maildir_msg *x = a, *y = b;
	int c = strcmp(x->unique, y->unique);
	if (c != 0)
		return c;
	if (x->in_new != y->in_new)
		return x->in_new ? 1 : -1;
	return strcmp(x->name, y->name);
}

/* Append the messages of one subdirectory to the growing array. */
static int list_dir(const char *folder_dir, bool in_new, struct maildir_msg **msgs,
		    size_t *count, size_t *cap)
{
	char dir[PATH_MAX];
	if (maildir_pathf(dir, sizeof dir, "%s/%s", folder_dir, in_new ? "new" : "cur") < 0)
		return -1;
	DIR *d = opendir(dir);
	if (d == NULL)
		return -1;
	int dfd = dirfd(d);
	struct dirent *de;
	int ret = 0;
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (de == NULL) {
			if (errno != 0)
				ret = -1;
			break;
		}
		const char *n = de->d_name;
		size_t len = strlen(n);
		struct maildir_name_info info;
		if (maildir_name_parse(n, len, &info) < 0)
			continue;
		struct stat st;
		bool have_st = false;
		if (de->d_type != DT_REG) {
			if (de->d_type != DT_UNKNOWN)
				continue;
			if (fstatat(dfd, n, &st, AT_SYMLINK_NOFOLLOW) < 0) {
				if (errno == ENOENT)
					continue; /* moved meanwhile */
				ret = -1;
				break;
			}
			if (!S_ISREG(st.st_mode))
				continue;
			have_st = true;
		}
		unsigned long long size = info.size;
		if (!info.has_size) {
			if (!have_st && fstatat(dfd, n, &st, AT_SYMLINK_NOFOLLOW) < 0) {
				if (errno == ENOENT)
					continue;
				ret = -1;
				break;
			}
			size = (unsigned long long)st.st_size;
		}
		if (*count >= MAILDIR_LIST_MAX) {
			errno = EFBIG;
			ret = -1;
			break;
		}
		if (*count == *cap) {
			*cap = *cap == 0 ? 64 : *cap * 2;
			*msgs = yz_realloc(*msgs, *cap * sizeof **msgs);
		}
		struct maildir_msg *m = &(*msgs)[(*count)++];
		memset(m, 0, sizeof *m);
		m->name = yz_strndup(n, len);
		m->unique = yz_strndup(n, info.unique_len);
		m->in_new = in_new;
		m->size = size;
		if (!in_new)
			memcpy(m->flags, info.flags, sizeof m->flags);
	}
	int saved = errno;
	closedir(d);
	errno = saved;
	return ret;
}

/* List new/ and cur/ of a folder, sorted, each message once. */
int maildir_list(const char *folder_dir, struct maildir_msg **msgs_r, size_t *count_r)
{
	struct maildir_msg *msgs = NULL;
	size_t count = 0, cap = 0;
	if (list_dir(folder_dir, true, &msgs, &count, &cap) < 0 ||
	    list_dir(folder_dir, false, &msgs, &count, &cap) < 0) {
		int saved = errno;
		maildir_list_free(&msgs, count);
		errno = saved;
		return -1;
	}
	if (count > 1)
		qsort(msgs, count, sizeof *msgs, msg_cmp);
	/* A message renamed new/ -> cur/ between the two scans appears twice;
	 * the cur/ entry sorts first and is the current one. */
	size_t out = 0;
	for (size_t i = 0; i < count; i++) {
		if (out > 0 && strcmp(msgs[out - 1].unique, msgs[i].unique) == 0) {
			free(msgs[i].name);
			free(msgs[i].unique);
			continue;
		}
		msgs[out++] = msgs[i];
	}
	*msgs_r = msgs;
	*count_r = out;
	return 0;
}

/* Free a listing and set *msgs to NULL. */
void maildir_list_free(struct maildir_msg **msgs, size_t count)
{
	if (*msgs == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free((*msgs)[i].name);
		free((*msgs)[i].unique);
	}
	free(*msgs);
	*msgs = NULL;
}

/* A name that can only mean a file of that directory. */
static bool msg_name_ok(const char *name)
{
	return name != NULL && name[0] != '.' && name[0] != '\0' && strchr(name, '/') == NULL;
}

/* Build the path of a message given its directory and name. */
static int msg_path(const char *folder_dir, bool in_new, const char *name, char *out,
		    size_t outsz)
{
	if (!msg_name_ok(name)) {
		errno = EINVAL;
		return -1;
	}
	return maildir_pathf(out, outsz, "%s/%s/%s", folder_dir, in_new ? "new" : "cur", name);
}

/* Locate the message's current name (it may have moved); 0 if gone. */
static int msg_relocate(const char *folder_dir, const struct maildir_msg *m, char *name_r,
			size_t namesz, bool *in_new_r)
{
	if (m->unique == NULL || m->unique[0] == '\0' || m->unique[0] == '.' ||
	    strnlen(m->unique, NAME_MAX + 1) > NAME_MAX || strpbrk(m->unique, "/:,") != NULL) {
		errno = EINVAL;
		return -1;
	}
	return maildir_find_unique(folder_dir, m->unique, strlen(m->unique), true, true,
				   name_r, namesz, in_new_r);
}

/* Open the message read-only, following a rename by another session. */
int maildir_open(const char *folder_dir, const struct maildir_msg *m)
{
	return maildir_open_at(-1, -1, folder_dir, m);
}

/* The directory fd for a message in new/ or cur/, or -1 (use paths). */
static int dir_fd_for(int new_fd, int cur_fd, bool in_new)
{
	return in_new ? new_fd : cur_fd;
}

int maildir_open_at(int new_fd, int cur_fd, const char *folder_dir, const struct maildir_msg *m)
{
	char path[PATH_MAX], name[NAME_MAX + 1];
	int dfd = dir_fd_for(new_fd, cur_fd, m->in_new);
	int fd;
	if (dfd >= 0 && msg_name_ok(m->name)) {
		/* The common case: no path to build. */
		fd = openat(dfd, m->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	} else {
		if (msg_path(folder_dir, m->in_new, m->name, path, sizeof path) < 0)
			return -1;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd >= 0 || errno != ENOENT)
		return fd;
	bool in_new;
	int r = msg_relocate(folder_dir, m, name, sizeof name, &in_new);
	if (r <= 0) {
		if (r == 0)
			errno = ENOENT;
		return -1;
	}
	if (msg_path(folder_dir, in_new, name, path, sizeof path) < 0)
		return -1;
	return open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
}

/* The cur/ name of a message with new standard flags, keeping keywords. */
static int flagged_name(const char *old, const char std[8], char *out, size_t outsz)
{
	const char *colon = strchr(old, ':');
	size_t base = colon != NULL ? (size_t)(colon - old) : strlen(old);
	char keywords[27];
	size_t nk = 0;
	if (colon != NULL && colon[1] == '2' && colon[2] == ',') {
		/* Keywords a..z, each once, in order. */
		unsigned seen = 0;
		for (const char *p = colon + 3; *p != '\0'; p++) {
			if (*p >= 'a' && *p <= 'z')
				seen |= 1u << (*p - 'a');
		}
		for (int k = 0; k < 26; k++) {
			if (seen & (1u << k))
				keywords[nk++] = (char)('a' + k);
		}
	}
	keywords[nk] = '\0';
	if (maildir_pathf(out, outsz, "%.*s:2,%s%s", (int)base, old, std, keywords) < 0)
		return -1;
	if (strlen(out) > NAME_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* The cur/ name for new standard flags (public form of flagged_name). */
int maildir_flagged_name(const char *name, const char *flags, char std_r[8], char *out,
			 size_t outsz)
{
	if (name == NULL || flags == NULL || maildir_flags_normalize(flags, std_r) < 0)
		return -1;
	return flagged_name(name, std_r, out, outsz);
}

/* Set the standard flags by renaming into cur/. */
int maildir_set_flags(const char *folder_dir, struct maildir_msg *m, const char *flags)
{
	return maildir_set_flags_at(-1, -1, folder_dir, m, flags);
}

int maildir_set_flags_at(int new_fd, int cur_fd, const char *folder_dir, struct maildir_msg *m,
			 const char *flags)
{
	char std[8], cur_name[NAME_MAX + 1], new_name[NAME_MAX + 1];
	char from[PATH_MAX], to[PATH_MAX];
	if (flags == NULL || maildir_flags_normalize(flags, std) < 0)
		return -1;
	if (m->name == NULL || maildir_pathf(cur_name, sizeof cur_name, "%s", m->name) < 0)
		return -1;
	bool in_new = m->in_new;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (flagged_name(cur_name, std, new_name, sizeof new_name) < 0 ||
		    msg_path(folder_dir, in_new, cur_name, from, sizeof from) < 0 ||
		    msg_path(folder_dir, false, new_name, to, sizeof to) < 0)
			return -1;
		/* Relative to the folder's open directories when the caller has
		 * them (no path walk per message), else by path. */
		int sfd = dir_fd_for(new_fd, cur_fd, in_new);
		bool at = sfd >= 0 && cur_fd >= 0;
		if (!in_new && strcmp(cur_name, new_name) == 0) {
			struct stat st;
			if ((at ? fstatat(cur_fd, cur_name, &st, AT_SYMLINK_NOFOLLOW) : stat(from, &st)) == 0)
				goto done;
		} else if ((at ? renameat(sfd, cur_name, cur_fd, new_name) : rename(from, to)) == 0) {
			goto done;
		}
		if (errno != ENOENT || attempt > 0)
			return -1;
		/* Renamed by another session: find its current name. */
		int r = msg_relocate(folder_dir, m, cur_name, sizeof cur_name, &in_new);
		if (r <= 0) {
			if (r == 0)
				errno = ENOENT;
			return -1;
		}
	}
	errno = ENOENT;
	return -1;
done:
	free(m->name);
	m->name = yz_strdup(new_name);
	m->in_new = false;
	memcpy(m->flags, std, sizeof m->flags);
	return 0;
}

/* Unlink the message and record the quota delta. */
int maildir_expunge(const char *folder_dir, const struct maildir_msg *m)
{
	char path[PATH_MAX], name[NAME_MAX + 1], acct[PATH_MAX];
	unsigned long long size = m->size;
	if (msg_path(folder_dir, m->in_new, m->name, path, sizeof path) < 0)
		return -1;
	if (unlink(path) < 0) {
		if (errno != ENOENT)
			return -1;
		bool in_new;
		int r = msg_relocate(folder_dir, m, name, sizeof name, &in_new);
		if (r < 0)
			return -1;
		if (r == 0)
			return 0; /* expunged by another session, which counted it */
		struct maildir_name_info info;
		if (maildir_name_parse(name, strlen(name), &info) == 0 && info.has_size)
			size = info.size;
		if (msg_path(folder_dir, in_new, name, path, sizeof path) < 0)
			return -1;
		if (unlink(path) < 0)
			return errno == ENOENT ? 0 : -1;
	}
	if (size > (unsigned long long)LLONG_MAX)
		size = (unsigned long long)LLONG_MAX;
	if (maildir_account_of_folder(folder_dir, acct, sizeof acct) < 0)
		return -1;
	return maildir_quota_add(acct, -(long long)size, -1);
}

/*
 * maildir_private.h: helpers shared by the files of the Maildir++ store
 * (paths, name scanning). Not for use outside src/store/mailbox/.
 */
#ifndef YZ_STORE_MAILDIR_PRIVATE_H
#define YZ_STORE_MAILDIR_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct maildir_cache;

/* snprintf into out; -1 with ENAMETOOLONG when it does not fit. */
int maildir_pathf(char *out, size_t outsz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Find the file in <folder_dir>/new (if in_new_ok) or /cur (if in_cur_ok)
 * whose unique part equals unique. 1 and the base name in name_r / its
 * directory in in_new_r when found, 0 when not, -1 with errno. */
int maildir_find_unique(const char *folder_dir, const char *unique, size_t unique_len,
			bool search_new, bool search_cur,
			char *name_r, size_t namesz, bool *in_new_r);

/* The account directory of a folder directory (itself for INBOX, the parent
 * for a Maildir++ folder holding "maildirfolder"). */
int maildir_account_of_folder(const char *folder_dir, char *out, size_t outsz);

/* Sort and de-duplicate standard flag letters of flags into out (8 bytes);
 * -1 (EINVAL) on a letter that is not a standard flag. */
int maildir_flags_normalize(const char *flags, char out[8]);

/* Whether O_TMPFILE works in a folder's new/ (learnt at the first try). */
enum maildir_tmpfile_state {
	MAILDIR_TMPFILE_UNKNOWN = 0,
	MAILDIR_TMPFILE_YES,
	MAILDIR_TMPFILE_NO,     /* refused (EOPNOTSUPP, EISDIR, EINVAL): use tmp/ */
};

/* A folder known to exist (maildir_cache.c). */
struct maildir_cache_entry {
	char *path;        /* the folder directory (the account's for INBOX) */
	unsigned hash;     /* of path */
	int new_fd;        /* O_RDONLY|O_DIRECTORY on <path>/new */
	dev_t dev;         /* of new/ (tmp/ is on the same file system) */
	ino_t ino;         /* of new/: a replaced directory has another */
	enum maildir_tmpfile_state tmpfile;
	unsigned refs;     /* batches holding it */
	bool cached;       /* in the table; else freed at its last release */
	unsigned long long used; /* LRU clock */
};

/* The entry of folder_dir or NULL; no system call, no reference taken. */
struct maildir_cache_entry *maildir_cache_lookup(struct maildir_cache *c, const char *folder_dir);
/* Open <folder_dir>/new and enter it, held; NULL with errno. */
struct maildir_cache_entry *maildir_cache_open(struct maildir_cache *c, const char *folder_dir);
/* Take / drop a batch's reference. */
void maildir_cache_hold(struct maildir_cache_entry *e);
void maildir_cache_release(struct maildir_cache_entry **ep);
/* The folder is gone or replaced: out of the table (freed when unheld). */
void maildir_cache_forget(struct maildir_cache *c, struct maildir_cache_entry *e);

#endif

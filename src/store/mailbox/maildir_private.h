/*
 * maildir_private.h: helpers shared by the files of the Maildir++ store
 * (paths, name scanning). Not for use outside src/store/mailbox/.
 */
#ifndef YZ_STORE_MAILDIR_PRIVATE_H
#define YZ_STORE_MAILDIR_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

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

#endif

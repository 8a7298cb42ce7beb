/*
 * maildir.h: the Maildir++ mail store: local delivery in durable batches,
 * and mailbox access for POP3 (and later IMAP). Files only: no IPC, no
 * sockets. Runs as the vmail user inside the mailbox role.
 *
 * Decisions (kept; change them only with the lead):
 * - Layout: <maildir_root>/<domain>/<localpart>/ with tmp/ new/ cur/; folders
 *   are Maildir++ ".Name/" directories (".Name.Sub" for hierarchy) holding
 *   their own tmp/ new/ cur/ and an empty "maildirfolder" file; the quota
 *   file "maildirsize" sits at the account root. Folder names arrive as
 *   plain ASCII / modified UTF-7 and are validated: no '/', no leading or
 *   trailing '.', no "..", printable ASCII, at most MAILDIR_FOLDER_MAX bytes.
 * - A message file holds the message exactly as received on the wire: CRLF
 *   line ends, dot-unstuffed (Dovecot's mail_save_crlf=yes). So the size POP3
 *   reports = the file size = S=. Names: "<unique>,S=<size>" in new/,
 *   "<unique>,S=<size>:2,<flags>" in cur/, standard flags sorted in ASCII
 *   order (D F P R S T); lowercase keyword letters written by other software
 *   are kept by maildir_set_flags().
 * - Idempotent delivery: the unique part is "<caller unique>.<host>" where
 *   the caller derives its part from the queue ID and the recipient index
 *   (e.g. "<queueid>.R<n>"), never from time or pid. A repeated delivery
 *   finds the earlier file: new/<name> is one stat(); only when the caller
 *   says maybe_redelivery are new/ and cur/ scanned for a file with the same
 *   unique part (it may have been read, flagged or re-sized meanwhile).
 *   The final link() into new/ never replaces a file (EEXIST = duplicate).
 * - Group commit, two-phase, so that no file is ever visible in new/ with
 *   incomplete content after a crash:
 *     (1) maildir_batch_add*(): write each file as an unnamed file in its
 *         new/ (open(O_TMPFILE), kept open: it has no name, so a crash
 *         leaves nothing); when O_TMPFILE is refused (EOPNOTSUPP, EISDIR,
 *         EINVAL: remembered per folder), /proc/self/fd is missing, or the
 *         batch already holds MAILDIR_BATCH_OPEN_MAX unnamed files, write it
 *         into tmp/ (O_EXCL) and close it instead;
 *     (2) commit: make the data durable: syncfs(2) once per filesystem when
 *         more than MAILDIR_SYNCFS_MIN_FILES files were written, else
 *         fdatasync() each (strategy selectable, see enum maildir_sync);
 *     (3) give each its name in new/ by linkat(2) (never overwrites): from
 *         "/proc/self/fd/<fd>" with AT_SYMLINK_FOLLOW for an unnamed file
 *         (AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH), from the tmp/ path
 *         otherwise; close the unnamed files, unlink the tmp/ ones; append the
 *         quota deltas to maildirsize;
 *     (4) make the directory entries durable: syncfs again, or fsync each
 *         distinct new/ directory once.
 *   Only after (4) does an item report MAILDIR_OK. A failed sync fails every
 *   item that the batch wrote (a failed fsync is never retried and trusted),
 *   and what can be removed is removed (files of step 1, links of step 3).
 * - Folder cache: the mailbox process keeps a struct maildir_cache of the
 *   folders it delivered to (at most MAILDIR_CACHE_MAX, least recently used
 *   out; entries a batch holds are never closed under it, so fds stay
 *   bounded), each with an fd on its new/ that serves the duplicate check
 *   (fstatat), O_TMPFILE, linkat and the directory fsync. A batch checks
 *   each folder once (one stat of <folder>/new compared with the cached
 *   fd's device and inode); when it was removed or replaced the entry is
 *   dropped and the Maildir created again as on a first delivery. A missing
 *   plus-address folder is not cached (it may be created at any time).
 *   tmp/ and new/ of one folder are on one file system.
 * - Many recipients of one message: when an item has the same bytes (same
 *   header bytes, same body bytes / same fd range of the same inode) as the
 *   previous content written in the batch, and its new/ is on the same
 *   filesystem, the one file of step 1 is hard-linked into each recipient's
 *   new/ instead of being written again. (So callers that want this must not put
 *   per-recipient lines such as Delivered-To into header for multi-recipient
 *   deliveries, as Dovecot's LMTP does.)
 * - Quota: "maildirsize" (Courier Maildir++): first line "<bytes>S" (the
 *   account's quota, "0S" = unlimited), then "<bytes> <count>" delta lines.
 *   One delta line per account per committed batch (the sum of the messages
 *   the batch delivered there); a negative line per expunge. Recalculated
 *   from a scan of new/ and cur/ of the account and all its folders when the
 *   file is missing, larger than MAILDIR_QUOTA_FILE_MAX, unreadable, or its
 *   first line differs from the account's quota. A message that would bring
 *   the usage (including earlier items of the same batch) above the quota
 *   fails with MAILDIR_OVER_QUOTA. The quota file is a cache, not the truth:
 *   it is not fsync'd on its own (a crash may lose a delta line; the next
 *   recalculation repairs it).
 *
 * Errors: functions return -1 with errno set (or an enum maildir_status with
 * an error text); nothing is printed. Never: a path built from input that
 * was not validated, a file visible in new/ before its data is durable, an
 * existing message file overwritten.
 */
#ifndef YZ_STORE_MAILDIR_H
#define YZ_STORE_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Bounds, each checked before the data is used. */
#define MAILDIR_UNIQUE_MAX 128       /* caller's unique part, bytes */
#define MAILDIR_HOST_MAX 64          /* encoded host name in file names */
#define MAILDIR_FOLDER_MAX 200       /* folder name (".Name" must fit NAME_MAX) */
#define MAILDIR_LOCALPART_MAX 64     /* RFC 5321 4.5.3.1.1 */
#define MAILDIR_DOMAIN_MAX 253       /* RFC 1035 */
#define MAILDIR_BATCH_MAX 4096       /* items in one batch */
#define MAILDIR_SYNCFS_MIN_FILES 4   /* AUTO: syncfs when more files than this (bench_maildir.c) */
#define MAILDIR_QUOTA_FILE "maildirsize"
#define MAILDIR_QUOTA_FILE_MAX 5120  /* recalculate when larger (Courier) */
#define MAILDIR_LIST_MAX (1u << 24)  /* messages in one folder listing */
#define MAILDIR_STD_FLAGS "DFPRST"   /* Draft Flagged Passed Replied Seen Trashed */
#define MAILDIR_TMP_MAX_AGE (36UL * 3600) /* tmp/ files older than this are garbage */
#define MAILDIR_CACHE_MAX 256        /* folders (and fds) in a maildir_cache */
#define MAILDIR_BATCH_OPEN_MAX 128   /* unnamed files a batch keeps open; then tmp/ */

enum maildir_status {
	MAILDIR_OK = 0,
	MAILDIR_DUPLICATE,   /* already delivered earlier: success */
	MAILDIR_OVER_QUOTA,  /* the account's quota would be exceeded */
	MAILDIR_TEMPFAIL,    /* ENOSPC, EIO, EDQUOT of the file system, sync failure */
	MAILDIR_PERMFAIL,    /* invalid account, unique part, ... */
};

/* How commit makes data and directory entries durable. */
enum maildir_sync {
	MAILDIR_SYNC_AUTO = 0,  /* syncfs above MAILDIR_SYNCFS_MIN_FILES files/dirs, else per file */
	MAILDIR_SYNC_PER_FILE,  /* fdatasync each file, fsync each new/ directory */
	MAILDIR_SYNC_FS,        /* syncfs(2) on each file system touched */
};

/* Fault injection for tests: a NULL member means the real system call. */
struct maildir_io_hooks {
	ssize_t (*write)(int fd, const void *buf, size_t len);
	int (*fdatasync)(int fd);
	int (*fsync)(int fd);
	int (*syncfs)(int fd);
	/* Every link into new/: from an unnamed file it is
	 * (AT_FDCWD, "<proc_fd_dir>/<fd>", new/ fd, name, AT_SYMLINK_FOLLOW),
	 * from a tmp/ file (AT_FDCWD, tmp path, new/ fd, name, 0). */
	int (*linkat)(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
		      int flags);
	/* openat(dirfd, ".", flags, mode) with O_TMPFILE in flags. */
	int (*open_tmpfile)(int dirfd, int flags, mode_t mode);
	/* Where the fd magic links are; NULL means "/proc/self/fd". */
	const char *proc_fd_dir;
};

struct maildir_batch;
struct maildir_cache;

/* A cache of at most max_entries Maildir folders known to exist, each with
 * an open fd on its new/ (0 means MAILDIR_CACHE_MAX, the most). One per
 * process; it must outlive the batches that use it. Never NULL. */
struct maildir_cache *maildir_cache_new(size_t max_entries);
void maildir_cache_free(struct maildir_cache **c);
/* Forget every folder (they are checked and opened again on next use). */
void maildir_cache_clear(struct maildir_cache *c);
size_t maildir_cache_count(const struct maildir_cache *c);

/* A new, empty delivery batch for accounts under maildir_root; hostname NULL
 * means gethostname(). Never NULL. */
struct maildir_batch *maildir_batch_new(const char *maildir_root, const char *hostname);
void maildir_batch_set_sync(struct maildir_batch *b, enum maildir_sync sync);
void maildir_batch_set_io_hooks(struct maildir_batch *b, const struct maildir_io_hooks *hooks);
/* Use the process's folder cache (before the first add); without one the
 * batch keeps a private cache for its own lifetime. */
void maildir_batch_set_cache(struct maildir_batch *b, struct maildir_cache *cache);
/* false: never O_TMPFILE, always the tmp/ path (tests, benchmarks). */
void maildir_batch_set_tmpfile(struct maildir_batch *b, bool use);

/*
 * Queue one delivery (the tmp file is written at once). account is
 * "localpart@domain", already validated and lower-cased by the directory;
 * folder NULL (or "INBOX") = INBOX, else a plus-address folder used only if
 * it exists (else INBOX). unique: derived from queue ID + recipient index.
 * header (hlen bytes) is written before the body: body_len bytes read from
 * body_fd at body_off (pread: the fd offset does not move). quota 0 =
 * unlimited. Returns the item index, or -1 (EINVAL) when the batch is full
 * or already committed. Errors of the item are recorded on it.
 */
int maildir_batch_add(struct maildir_batch *b, const char *account, const char *folder,
		      const char *unique, bool maybe_redelivery,
		      const void *header, size_t hlen,
		      int body_fd, off_t body_off, size_t body_len,
		      unsigned long long quota);
/* The same with the body in memory. */
int maildir_batch_add_mem(struct maildir_batch *b, const char *account, const char *folder,
			  const char *unique, bool maybe_redelivery,
			  const void *header, size_t hlen, const void *body, size_t blen,
			  unsigned long long quota);
/* Steps 2-4. Returns 0 when every item that could be committed was, -1 when
 * a sync failed (every written item is then MAILDIR_TEMPFAIL). Once only. */
int maildir_batch_commit(struct maildir_batch *b);
int maildir_batch_count(const struct maildir_batch *b);
/* An item's outcome; error_r (may be NULL) gets a text for failures, else NULL. */
enum maildir_status maildir_batch_status(const struct maildir_batch *b, int item,
					 const char **error_r);
/* Final path of a delivered (OK) or duplicate item, else NULL. */
const char *maildir_batch_path(const struct maildir_batch *b, int item);
void maildir_batch_free(struct maildir_batch **b);
const char *maildir_status_name(enum maildir_status st);

/* Paths and folders. All return 0 on success, -1 with errno. */
/* Validate account and write "<root>/<domain>/<localpart>" into out. */
int maildir_account_path(const char *root, const char *account, char *out, size_t outsz);
/* Create account_dir (and parents) with tmp/ new/ cur/, mode 0700, durably. */
int maildir_create(const char *account_dir);
/* 1 if the folder exists (NULL/"INBOX": the account itself), 0 if not, -1 with errno (EINVAL: bad name). */
int maildir_folder_exists(const char *account_dir, const char *folder);
/* Create folder ".<folder>" with tmp/ new/ cur/ and maildirfolder. */
int maildir_folder_create(const char *account_dir, const char *folder);
/* Write the directory of folder (NULL/"INBOX" = account_dir) into out. */
int maildir_folder_path(const char *account_dir, const char *folder, char *out, size_t outsz);
/* Remove files in <folder_dir>/tmp/ not modified for max_age seconds (the
 * maildir spec's 36 hours is MAILDIR_TMP_MAX_AGE); *removed_r (may be NULL)
 * gets how many. Leftovers of crashed deliveries that were never retried. */
int maildir_tmp_clean(const char *folder_dir, unsigned long max_age, unsigned long *removed_r);
/* true if folder is an acceptable Maildir++ folder name (INBOX excluded). */
bool maildir_folder_name_valid(const char *folder);
/* true if unique is an acceptable unique part for a file name. */
bool maildir_unique_valid(const char *unique);

/* Mailbox access. */
struct maildir_msg {
	char *name;     /* file base name in its directory */
	char *unique;   /* base name up to the first ':' or ',': stable, for UIDL */
	bool in_new;    /* in new/ (else cur/) */
	unsigned long long size; /* from S= when present, else stat */
	char flags[8];  /* standard flags, sorted, NUL-terminated */
};
/* Messages of new/ and cur/ sorted by unique (delivery order); skips dot
 * files and non-regular files. */
int maildir_list(const char *folder_dir, struct maildir_msg **msgs_r, size_t *count_r);
void maildir_list_free(struct maildir_msg **msgs, size_t count);
/* O_RDONLY fd of the message, found again by unique if it moved. */
int maildir_open(const char *folder_dir, const struct maildir_msg *m);
/* Replace the standard flags (letters of MAILDIR_STD_FLAGS, any order);
 * moves new/ -> cur/ by one rename; updates m. */
int maildir_set_flags(const char *folder_dir, struct maildir_msg *m, const char *flags);
/* The same two relative to open fds of the folder's new/ and cur/ (a
 * session keeps them: no path walk per message); a fd of -1 means "use
 * the path". A message moved meanwhile is still found by path. */
int maildir_open_at(int new_fd, int cur_fd, const char *folder_dir, const struct maildir_msg *m);
int maildir_set_flags_at(int new_fd, int cur_fd, const char *folder_dir, struct maildir_msg *m,
			 const char *flags);
/* The cur/ base name a message called name gets with the standard flags
 * flags (normalized into std_r, keywords kept), for callers that rename
 * themselves (pop3d marks seen off the loop): 0, or -1 (errno). */
int maildir_flagged_name(const char *name, const char *flags, char std_r[8], char *out,
			 size_t outsz);
/* Remove the message and record a negative quota delta. A message that is
 * already gone is not an error. */
int maildir_expunge(const char *folder_dir, const struct maildir_msg *m);
/* Current usage from maildirsize, recalculated (and rewritten) when needed. */
int maildir_quota_usage(const char *account_dir, unsigned long long quota,
			unsigned long long *bytes_r, unsigned long long *count_r);
/* Recalculate and rewrite maildirsize from a directory scan. */
int maildir_quota_recalc(const char *account_dir, unsigned long long quota,
			 unsigned long long *bytes_r, unsigned long long *count_r);
/* Append "<bytes> <count>" to an existing maildirsize (no-op if missing). */
int maildir_quota_add(const char *account_dir, long long bytes, long long count);

/* File name parsing (pure; exposed for tests and the fuzzer). */
struct maildir_name_info {
	size_t unique_len;          /* bytes before the first ':' or ',' */
	bool has_size;              /* ",S=<n>" present and valid */
	unsigned long long size;
	char flags[8];              /* standard flags found after ":2,", sorted */
	const char *info;           /* points after ":2," or NULL */
};
/* Parse a message file name; -1 if it is not a message name (empty, dot file). */
int maildir_name_parse(const char *name, size_t len, struct maildir_name_info *info_r);
/* Parse maildirsize contents: limit line into limit_r (may be NULL), the sum
 * of the delta lines into bytes_r/count_r. -1 if malformed. */
int maildir_quota_parse(const char *data, size_t len, char *limit_r, size_t limitsz,
			long long *bytes_r, long long *count_r);

#endif

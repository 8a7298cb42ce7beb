/*
 * maildir_batch.c: local delivery into Maildir++ with group commit.
 *
 * Guarantees (see maildir.h for the protocol): an item reports MAILDIR_OK
 * only after its content and its directory entry in new/ are on stable
 * storage; a file appears in new/ only by linkat(2) of an unnamed
 * (O_TMPFILE) file or a tmp/ file whose data was made durable first, so a
 * crash never shows a partial message (an unnamed file simply vanishes);
 * linkat(2) never replaces an existing message, so a repeated delivery is
 * detected (MAILDIR_DUPLICATE) instead of written twice. A failed sync fails
 * every item the batch wrote; its files and the links it made are removed.
 * Folders come from the process's maildir_cache: each is checked once per
 * batch (one stat of its new/, compared with the cached fd's inode), and
 * created again when an administrator removed it.
 * Never: retry a failed fsync, report success before step 4, write a path
 * not built from validated parts, let one item's error stop the others,
 * keep more than MAILDIR_BATCH_OPEN_MAX unnamed files open.
 */
#include "store/mailbox/maildir.h"
#include "store/mailbox/maildir_private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/file.h"
#include "lib/mem.h"
#include "lib/pool.h"

/* Distinct file systems one batch may touch (one syncfs fd each). */
#define MB_DEVS_MAX 16
/* Chunk for copying or comparing content through user space. */
#define MB_COPY_CHUNK 65536
/* The fd magic links that give an unnamed file its name (AT_EMPTY_PATH
 * would need CAP_DAC_READ_SEARCH). */
#define MB_PROC_FD_DIR "/proc/self/fd"

/* Whether /proc/self/fd works here; probed once per batch. */
enum mb_proc {
	MB_PROC_UNKNOWN,
	MB_PROC_YES,
	MB_PROC_NO,
};

enum mb_state {
	MB_FAILED,   /* status/error are final */
	MB_READY,    /* written (or shares a written file), waits for commit */
	MB_DUP_OF,   /* same destination as an earlier item: shares its outcome */
	MB_DONE,     /* status is final after commit */
};

struct mb_account {
	char *dir;
	int inbox;        /* index in the batch's dirs; -1 on failure */
	enum maildir_status status; /* MAILDIR_OK, or why every item fails */
	const char *error;
	unsigned long long used_bytes, used_count;
	unsigned long long pend_bytes;
	unsigned long long done_bytes, done_count;
	dev_t dev;
};

struct mb_item {
	enum mb_state state;
	enum maildir_status status;
	const char *error;
	int acct;
	int owner;        /* item whose tmp file holds the content */
	int dup_of;
	bool written;     /* this item wrote its file (tmp_fd, else tmp_path) */
	bool linked;      /* step 3 created new_path */
	unsigned long long size;
	dev_t dev;
	int dir;          /* index in the batch's dirs */
	int tmp_fd;       /* the unnamed file (O_TMPFILE in new/), or -1 */
	char *tmp_path;   /* the tmp/ file when there is no unnamed file */
	char *name;       /* base name in new/ */
	char *new_path;
	char *found_path; /* duplicate: where the earlier delivery is */
};

/* Where the body bytes come from. */
struct mb_source {
	const void *mem;  /* NULL: read from fd */
	int fd;
	off_t off;
	size_t len;
};

struct maildir_batch {
	struct yz_pool *pool;
	char *root;
	char host[MAILDIR_HOST_MAX + 1];
	enum maildir_sync sync;
	struct maildir_io_hooks hooks;
	struct mb_item *items;
	int nitems, items_cap;
	struct mb_account *accts;
	int naccts, accts_cap;
	struct { dev_t dev; int fd; } devs[MB_DEVS_MAX];
	int ndevs;
	/* Folders the batch uses, each held in the cache. */
	struct maildir_cache_entry **dirs;
	int ndirs, dirs_cap;
	struct maildir_cache *cache;
	bool own_cache;
	bool use_tmpfile;
	enum mb_proc proc;
	int nopen;        /* unnamed files open */
	bool committed;
	/* The content last written, to share it with the next recipient. */
	int last_owner;
	char *last_hdr;
	size_t last_hlen;
	bool last_from_fd;
	dev_t last_body_dev;
	ino_t last_body_ino;
	off_t last_body_off;
	size_t last_body_len;
};

/* Encode a host name for file names as the maildir spec asks ('/' -> \057,
 * ':' -> \072, and ',' -> \054 as Dovecot does), bounded. */
static void host_encode(const char *host, char *out, size_t outsz)
{
	size_t n = 0;
	for (const char *p = host; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
		size_t need = plain ? 1 : 4;
		if (n + need >= outsz)
			break;
		if (plain) {
			out[n++] = (char)c;
		} else {
			(void)snprintf(out + n, outsz - n, "\\%03o", c);
			n += 4;
		}
	}
	if (n == 0 && outsz > 9)
		n = (size_t)snprintf(out, outsz, "localhost");
	out[n] = '\0';
}

/* A new empty batch. */
struct maildir_batch *maildir_batch_new(const char *maildir_root, const char *hostname)
{
	struct maildir_batch *b = yz_calloc(1, sizeof *b);
	b->pool = yz_pool_new(8192);
	b->root = yz_pool_strdup(b->pool, maildir_root != NULL ? maildir_root : "");
	char hbuf[HOST_NAME_MAX + 1];
	if (hostname == NULL) {
		if (gethostname(hbuf, sizeof hbuf) < 0)
			hbuf[0] = '\0';
		hbuf[sizeof hbuf - 1] = '\0';
		hostname = hbuf;
	}
	host_encode(hostname, b->host, sizeof b->host);
	b->sync = MAILDIR_SYNC_AUTO;
	b->last_owner = -1;
	b->use_tmpfile = true;
	return b;
}

/* Use the process's folder cache; only before the first item. */
void maildir_batch_set_cache(struct maildir_batch *b, struct maildir_cache *cache)
{
	if (b->nitems > 0 || b->ndirs > 0)
		return;
	if (b->own_cache)
		maildir_cache_free(&b->cache);
	b->cache = cache;
	b->own_cache = false;
}

/* Allow or forbid unnamed (O_TMPFILE) files. */
void maildir_batch_set_tmpfile(struct maildir_batch *b, bool use)
{
	b->use_tmpfile = use;
}

/* Choose the durability strategy (default MAILDIR_SYNC_AUTO). */
void maildir_batch_set_sync(struct maildir_batch *b, enum maildir_sync sync)
{
	b->sync = sync;
}

/* Install fault-injection hooks (tests). */
void maildir_batch_set_io_hooks(struct maildir_batch *b, const struct maildir_io_hooks *hooks)
{
	if (hooks != NULL)
		b->hooks = *hooks;
	else
		memset(&b->hooks, 0, sizeof b->hooks);
}

/* write(2) all bytes through the hook. */
static int mb_write_full(struct maildir_batch *b, int fd, const void *buf, size_t len)
{
	return yz_write_full_with(b->hooks.write, fd, buf, len);
}

/* fdatasync(2), or the test hook. */
static int mb_fdatasync(struct maildir_batch *b, int fd)
{
	return b->hooks.fdatasync != NULL ? b->hooks.fdatasync(fd) : fdatasync(fd);
}

/* fsync(2), or the test hook. */
static int mb_fsync(struct maildir_batch *b, int fd)
{
	return b->hooks.fsync != NULL ? b->hooks.fsync(fd) : fsync(fd);
}

/* syncfs(2), or the test hook. */
static int mb_syncfs(struct maildir_batch *b, int fd)
{
	return b->hooks.syncfs != NULL ? b->hooks.syncfs(fd) : syncfs(fd);
}

/* linkat(2), or the test hook. */
static int mb_linkat(struct maildir_batch *b, int olddirfd, const char *from, int newdirfd,
		     const char *to, int flags)
{
	return b->hooks.linkat != NULL ? b->hooks.linkat(olddirfd, from, newdirfd, to, flags)
				       : linkat(olddirfd, from, newdirfd, to, flags);
}

/* An unnamed file in the directory of dirfd, or the test hook. */
static int mb_open_tmpfile(struct maildir_batch *b, int dirfd)
{
	int flags = O_TMPFILE | O_RDWR | O_CLOEXEC;
	return b->hooks.open_tmpfile != NULL ? b->hooks.open_tmpfile(dirfd, flags, 0600)
					     : openat(dirfd, ".", flags, 0600);
}

/* "<proc fd dir>/<fd>": the path that names an unnamed file. */
static int proc_fd_path(const struct maildir_batch *b, int fd, char *out, size_t outsz)
{
	const char *dir = b->hooks.proc_fd_dir != NULL ? b->hooks.proc_fd_dir : MB_PROC_FD_DIR;
	return maildir_pathf(out, outsz, "%s/%d", dir, fd);
}

/* Record a final failure on an item. */
static void item_fail(struct maildir_batch *b, struct mb_item *it, enum maildir_status st,
		      const char *what, int err)
{
	it->state = MB_FAILED;
	it->status = st;
	it->error = err != 0 ? yz_pool_printf(b->pool, "%s: %s", what, strerror(err))
			     : yz_pool_strdup(b->pool, what);
}

/* Temporary or permanent, from an errno of the file system. */
static enum maildir_status status_of_errno(int err)
{
	return err == EINVAL || err == ENAMETOOLONG ? MAILDIR_PERMFAIL : MAILDIR_TEMPFAIL;
}

/* Open a syncfs handle on the file system of dirfd unless the batch has
 * one; it is opened before anything is written there, so syncfs reports
 * every write-back error that follows. */
static int batch_watch_dev(struct maildir_batch *b, int dirfd, dev_t dev)
{
	for (int i = 0; i < b->ndevs; i++) {
		if (b->devs[i].dev == dev)
			return 0;
	}
	if (b->ndevs == MB_DEVS_MAX) {
		errno = EMLINK;
		return -1;
	}
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	b->devs[b->ndevs].dev = dev;
	b->devs[b->ndevs].fd = fd;
	b->ndevs++;
	return 0;
}

/* true if the cached folder still has, at its path, the new/ its fd is on:
 * not removed, not replaced. One stat, once per batch. */
static bool dir_still_there(const struct maildir_cache_entry *e)
{
	char path[PATH_MAX];
	struct stat st;
	return maildir_pathf(path, sizeof path, "%s/new", e->path) == 0 && stat(path, &st) == 0 &&
	       S_ISDIR(st.st_mode) && st.st_dev == e->dev && st.st_ino == e->ino;
}

/*
 * The batch's index of the folder at folder_dir, from the cache (checked
 * once per batch) or set up: for INBOX (folder NULL) the account Maildir is
 * created when missing; a folder must exist (else -1 with ENOENT). Its file
 * system is watched for syncfs. -1 with errno.
 */
static int batch_dir(struct maildir_batch *b, const char *folder_dir, const char *acct_dir,
		     const char *folder)
{
	for (int i = 0; i < b->ndirs; i++) {
		if (strcmp(b->dirs[i]->path, folder_dir) == 0)
			return i;
	}
	if (b->cache == NULL) {
		b->cache = maildir_cache_new(MAILDIR_CACHE_MAX);
		b->own_cache = true;
	}
	struct maildir_cache_entry *e = maildir_cache_lookup(b->cache, folder_dir);
	if (e != NULL && dir_still_there(e)) {
		maildir_cache_hold(e);
	} else {
		/* Removed or replaced by an administrator: set up again. */
		if (e != NULL)
			maildir_cache_forget(b->cache, e);
		if (folder == NULL) {
			if (maildir_create(folder_dir) < 0)
				return -1;
		} else {
			int r = maildir_folder_exists(acct_dir, folder);
			if (r <= 0) {
				if (r == 0)
					errno = ENOENT;
				return -1;
			}
		}
		e = maildir_cache_open(b->cache, folder_dir);
		if (e == NULL)
			return -1;
	}
	if (batch_watch_dev(b, e->new_fd, e->dev) < 0) {
		int saved = errno;
		maildir_cache_release(&e);
		errno = saved;
		return -1;
	}
	if (b->ndirs == b->dirs_cap) {
		b->dirs_cap = b->dirs_cap == 0 ? 8 : b->dirs_cap * 2;
		b->dirs = yz_realloc(b->dirs, (size_t)b->dirs_cap * sizeof *b->dirs);
	}
	b->dirs[b->ndirs] = e;
	return b->ndirs++;
}

/* Find or set up the account: maildir created, usage known, file system watched. */
static int batch_account(struct maildir_batch *b, const char *dir, unsigned long long quota)
{
	for (int i = 0; i < b->naccts; i++) {
		if (strcmp(b->accts[i].dir, dir) == 0)
			return i;
	}
	if (b->naccts == b->accts_cap) {
		b->accts_cap = b->accts_cap == 0 ? 16 : b->accts_cap * 2;
		b->accts = yz_realloc(b->accts, (size_t)b->accts_cap * sizeof *b->accts);
	}
	struct mb_account *a = &b->accts[b->naccts];
	memset(a, 0, sizeof *a);
	a->dir = yz_pool_strdup(b->pool, dir);
	a->status = MAILDIR_OK;
	a->inbox = batch_dir(b, dir, dir, NULL);
	if (a->inbox < 0) {
		a->status = status_of_errno(errno);
		a->error = yz_pool_printf(b->pool, "create maildir %s: %s", dir, strerror(errno));
	} else if (maildir_quota_usage(dir, quota, &a->used_bytes, &a->used_count) < 0) {
		a->status = MAILDIR_TEMPFAIL;
		a->error = yz_pool_printf(b->pool, "quota of %s: %s", dir, strerror(errno));
	} else {
		a->dev = b->dirs[a->inbox]->dev;
	}
	return b->naccts++;
}

/* Copy len bytes of fd from off to out through user space. */
static int copy_rw(struct maildir_batch *b, int out, int fd, off_t off, size_t len)
{
	char *buf = yz_malloc(MB_COPY_CHUNK);
	int ret = 0;
	while (len > 0) {
		size_t want = len < MB_COPY_CHUNK ? len : MB_COPY_CHUNK;
		ssize_t n = pread(fd, buf, want, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ENODATA; /* the source is shorter than announced */
			ret = -1;
			break;
		}
		if (mb_write_full(b, out, buf, (size_t)n) < 0) {
			ret = -1;
			break;
		}
		off += n;
		len -= (size_t)n;
	}
	free(buf);
	return ret;
}

/* Copy the body from an fd: in the kernel when possible. */
static int copy_body_fd(struct maildir_batch *b, int out, int fd, off_t off, size_t len)
{
	if (b->hooks.write != NULL)
		return copy_rw(b, out, fd, off, len);
	while (len > 0) {
		loff_t in_off = off;
		ssize_t n = copy_file_range(fd, &in_off, out, NULL, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
			    errno == EOPNOTSUPP || errno == EBADF)
				return copy_rw(b, out, fd, off, len);
			return -1;
		}
		if (n == 0) {
			errno = ENODATA;
			return -1;
		}
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Write header + body at the start of the empty file fd. */
static int write_content(struct maildir_batch *b, int fd, const void *hdr, size_t hlen,
			 const struct mb_source *src)
{
	int r = 0;
	if (hlen > 0)
		r = mb_write_full(b, fd, hdr, hlen);
	if (r == 0 && src->len > 0) {
		if (src->mem != NULL)
			r = mb_write_full(b, fd, src->mem, src->len);
		else
			r = copy_body_fd(b, fd, src->fd, src->off, src->len);
	}
	return r;
}

/* Write header + body into a new tmp file; nothing is left on failure. */
static int write_tmp(struct maildir_batch *b, const char *path, const void *hdr, size_t hlen,
		     const struct mb_source *src)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 && errno == EEXIST) {
		/* Only this delivery uses this name: a leftover of a crash. */
		if (unlink(path) < 0)
			return -1;
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	}
	if (fd < 0)
		return -1;
	int r = write_content(b, fd, hdr, hlen, src);
	int saved = errno;
	if (close(fd) < 0 && r == 0) {
		r = -1;
		saved = errno;
	}
	if (r < 0) {
		(void)unlink(path);
		errno = saved;
		return -1;
	}
	return 0;
}

/* true if an unnamed file can be tried in e's new/ now. */
static bool tmpfile_usable(const struct maildir_batch *b, const struct maildir_cache_entry *e)
{
	return b->use_tmpfile && e->tmpfile != MAILDIR_TMPFILE_NO && b->proc != MB_PROC_NO &&
	       b->nopen < MAILDIR_BATCH_OPEN_MAX;
}

/* An unnamed file in e's new/, ready to be written; -1 when the tmp/ path
 * must be used instead (refused, no /proc, no fd left), -2 with errno when
 * the folder is gone. */
static int open_unnamed(struct maildir_batch *b, struct maildir_cache_entry *e)
{
	int fd = mb_open_tmpfile(b, e->new_fd);
	if (fd < 0) {
		if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)
			e->tmpfile = MAILDIR_TMPFILE_NO; /* this file system: never again */
		if (errno == ENOENT) {
			/* new/ was removed since this batch checked it. */
			maildir_cache_forget(b->cache, e);
			return -2;
		}
		return -1;
	}
	e->tmpfile = MAILDIR_TMPFILE_YES;
	if (b->proc == MB_PROC_UNKNOWN) {
		/* Without /proc the file could never get its name. */
		char proc[64];
		b->proc = proc_fd_path(b, fd, proc, sizeof proc) == 0 &&
					  faccessat(AT_FDCWD, proc, F_OK, 0) == 0
				  ? MB_PROC_YES
				  : MB_PROC_NO;
	}
	if (b->proc == MB_PROC_NO) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Step 1's file for an item: unnamed in new/ when the kernel allows, else
 * tmp/<name>. Nothing is left on failure (-1 with errno). */
static int write_item(struct maildir_batch *b, struct mb_item *it, const void *hdr, size_t hlen,
		      const struct mb_source *src)
{
	struct maildir_cache_entry *e = b->dirs[it->dir];
	int fd = tmpfile_usable(b, e) ? open_unnamed(b, e) : -1;
	if (fd == -2)
		return -1;
	if (fd >= 0) {
		if (write_content(b, fd, hdr, hlen, src) < 0) {
			int saved = errno;
			close(fd);
			errno = saved;
			return -1;
		}
		it->tmp_fd = fd;
		b->nopen++;
		return 0;
	}
	char path[PATH_MAX];
	if (maildir_pathf(path, sizeof path, "%s/tmp/%s", e->path, it->name) < 0)
		return -1;
	if (write_tmp(b, path, hdr, hlen, src) < 0) {
		if (errno == ENOENT)
			maildir_cache_forget(b->cache, e); /* tmp/ removed: create it again next time */
		return -1;
	}
	it->tmp_path = yz_pool_strdup(b->pool, path);
	return 0;
}

/* true if the item's file holds hdr followed by body (memory). */
static bool file_equals(const struct mb_item *o, size_t hlen, const void *body, size_t blen)
{
	int fd = o->tmp_fd >= 0 ? o->tmp_fd : open(o->tmp_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return false;
	char *buf = yz_malloc(MB_COPY_CHUNK);
	const char *p = body;
	off_t off = (off_t)hlen;
	bool eq = true;
	while (blen > 0 && eq) {
		size_t want = blen < MB_COPY_CHUNK ? blen : MB_COPY_CHUNK;
		ssize_t n = pread(fd, buf, want, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || memcmp(buf, p, (size_t)n) != 0)
			eq = false;
		else {
			p += n;
			off += n;
			blen -= (size_t)n;
		}
	}
	free(buf);
	if (fd != o->tmp_fd)
		close(fd);
	return eq;
}

/* Whether the new item's content is the last written content of the batch. */
static bool same_content(struct maildir_batch *b, const void *hdr, size_t hlen,
			 const struct mb_source *src, const struct stat *body_st, dev_t dev)
{
	if (b->last_owner < 0)
		return false;
	const struct mb_item *o = &b->items[b->last_owner];
	if (o->state != MB_READY || o->dev != dev || o->size != hlen + src->len ||
	    b->last_hlen != hlen || (hlen > 0 && memcmp(b->last_hdr, hdr, hlen) != 0))
		return false;
	if (src->mem == NULL) {
		/* Queue files are immutable once committed: same inode and range,
		 * same bytes. */
		return b->last_from_fd && body_st != NULL && b->last_body_dev == body_st->st_dev &&
		       b->last_body_ino == body_st->st_ino && b->last_body_off == src->off &&
		       b->last_body_len == src->len;
	}
	return !b->last_from_fd && file_equals(o, hlen, src->mem, src->len);
}

/* Remember the content just written for sharing with the next item. */
static void remember_content(struct maildir_batch *b, int owner, const void *hdr, size_t hlen,
			     const struct mb_source *src, const struct stat *body_st)
{
	b->last_owner = owner;
	b->last_hdr = hlen > 0 ? yz_pool_strndup(b->pool, hdr, hlen) : NULL;
	b->last_hlen = hlen;
	b->last_from_fd = src->mem == NULL && body_st != NULL;
	if (b->last_from_fd) {
		b->last_body_dev = body_st->st_dev;
		b->last_body_ino = body_st->st_ino;
		b->last_body_off = src->off;
		b->last_body_len = src->len;
	}
}

/* A new item slot, or NULL when the batch cannot take more. */
static struct mb_item *item_new(struct maildir_batch *b)
{
	if (b->committed || b->nitems >= MAILDIR_BATCH_MAX)
		return NULL;
	if (b->nitems == b->items_cap) {
		b->items_cap = b->items_cap == 0 ? 16 : b->items_cap * 2;
		b->items = yz_realloc(b->items, (size_t)b->items_cap * sizeof *b->items);
	}
	struct mb_item *it = &b->items[b->nitems++];
	memset(it, 0, sizeof *it);
	it->state = MB_FAILED;
	it->status = MAILDIR_TEMPFAIL;
	it->acct = -1;
	it->owner = -1;
	it->dup_of = -1;
	it->dir = -1;
	it->tmp_fd = -1;
	return it;
}

/* The batch's index of the target folder: the plus-address folder if it
 * exists, else INBOX. -1 with errno. */
static int target_dir(struct maildir_batch *b, const struct mb_account *a, const char *folder)
{
	if (folder != NULL && folder[0] != '\0' && strcasecmp(folder, "INBOX") != 0 &&
	    maildir_folder_name_valid(folder)) {
		char dir[PATH_MAX];
		if (maildir_folder_path(a->dir, folder, dir, sizeof dir) < 0)
			return -1;
		int d = batch_dir(b, dir, a->dir, folder);
		if (d >= 0)
			return d;
		if (errno != ENOENT && errno != ENOTDIR)
			return -1;
	}
	return a->inbox;
}

/* Step 1 for one delivery: checks, duplicate detection, quota, tmp file. */
static int batch_add(struct maildir_batch *b, const char *account, const char *folder,
		     const char *unique, bool maybe_redelivery, const void *hdr, size_t hlen,
		     const struct mb_source *src, unsigned long long quota)
{
	struct mb_item *it = item_new(b);
	if (it == NULL) {
		errno = EINVAL;
		return -1;
	}
	int idx = b->nitems - 1;
	char acct_dir[PATH_MAX], full[MAILDIR_UNIQUE_MAX + MAILDIR_HOST_MAX + 2];
	char name[NAME_MAX + 1], path[PATH_MAX];

	if (!maildir_unique_valid(unique)) {
		item_fail(b, it, MAILDIR_PERMFAIL, "invalid unique part", 0);
		return idx;
	}
	if (hlen > SIZE_MAX - src->len || (hlen > 0 && hdr == NULL)) {
		item_fail(b, it, MAILDIR_PERMFAIL, "invalid message size", 0);
		return idx;
	}
	it->size = hlen + src->len;
	if (maildir_account_path(b->root, account, acct_dir, sizeof acct_dir) < 0) {
		item_fail(b, it, MAILDIR_PERMFAIL, "invalid account", errno);
		return idx;
	}
	it->acct = batch_account(b, acct_dir, quota);
	struct mb_account *a = &b->accts[it->acct];
	if (a->status != MAILDIR_OK) {
		item_fail(b, it, a->status, a->error, 0);
		return idx;
	}
	it->dir = target_dir(b, a, folder);
	if (it->dir < 0) {
		item_fail(b, it, status_of_errno(errno), "destination", errno);
		return idx;
	}
	const struct maildir_cache_entry *e = b->dirs[it->dir];
	const char *dir = e->path;
	if (maildir_pathf(full, sizeof full, "%s.%s", unique, b->host) < 0 ||
	    maildir_pathf(name, sizeof name, "%s,S=%llu", full, it->size) < 0 ||
	    maildir_pathf(path, sizeof path, "%s/new/%s", dir, name) < 0) {
		item_fail(b, it, status_of_errno(errno), "destination", errno);
		return idx;
	}
	it->name = yz_pool_strdup(b->pool, name);
	it->new_path = yz_pool_strdup(b->pool, path);

	/* The same destination twice in one batch: one file, shared outcome. */
	for (int j = 0; j < idx; j++) {
		struct mb_item *o = &b->items[j];
		if (o->acct == it->acct && o->new_path != NULL && o->state != MB_FAILED &&
		    strcmp(o->new_path, it->new_path) == 0) {
			it->state = MB_DUP_OF;
			it->dup_of = o->state == MB_DUP_OF ? o->dup_of : j;
			return idx;
		}
	}
	/* Delivered before (crash after link, lost reply): one stat, and a scan
	 * of new/ and cur/ only when the caller says this may be a retry. */
	struct stat st;
	if (fstatat(e->new_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		it->state = MB_FAILED;
		it->status = MAILDIR_DUPLICATE;
		it->found_path = it->new_path;
		return idx;
	}
	if (errno != ENOENT) {
		item_fail(b, it, MAILDIR_TEMPFAIL, "stat new", errno);
		return idx;
	}
	if (maybe_redelivery) {
		char found[NAME_MAX + 1];
		bool in_new;
		int r = maildir_find_unique(dir, full, strlen(full), true, true, found,
					    sizeof found, &in_new);
		if (r < 0) {
			item_fail(b, it, MAILDIR_TEMPFAIL, "search earlier delivery", errno);
			return idx;
		}
		if (r > 0) {
			it->state = MB_FAILED;
			it->status = MAILDIR_DUPLICATE;
			it->found_path = yz_pool_printf(b->pool, "%s/%s/%s", dir,
							in_new ? "new" : "cur", found);
			return idx;
		}
	}
	if (quota > 0 && (a->used_bytes + a->pend_bytes + it->size > quota ||
			  it->size > quota)) {
		it->state = MB_FAILED;
		it->status = MAILDIR_OVER_QUOTA;
		it->error = yz_pool_printf(b->pool,
					   "quota exceeded: %llu of %llu bytes used, message %llu bytes",
					   a->used_bytes + a->pend_bytes, quota, it->size);
		return idx;
	}

	/* A folder may be on another file system than the account. */
	it->dev = e->dev;
	struct stat body_st;
	bool have_body_st = src->mem == NULL && fstat(src->fd, &body_st) == 0 &&
			    S_ISREG(body_st.st_mode);
	if (same_content(b, hdr, hlen, src, have_body_st ? &body_st : NULL, it->dev)) {
		it->owner = b->last_owner;
	} else {
		if (write_item(b, it, hdr, hlen, src) < 0) {
			item_fail(b, it, MAILDIR_TEMPFAIL, "write message file", errno);
			return idx;
		}
		it->written = true;
		it->owner = idx;
		remember_content(b, idx, hdr, hlen, src, have_body_st ? &body_st : NULL);
	}
	it->state = MB_READY;
	a->pend_bytes += it->size;
	return idx;
}

/* Queue a delivery whose body is read from an fd. */
int maildir_batch_add(struct maildir_batch *b, const char *account, const char *folder,
		      const char *unique, bool maybe_redelivery,
		      const void *header, size_t hlen,
		      int body_fd, off_t body_off, size_t body_len,
		      unsigned long long quota)
{
	struct mb_source src = { NULL, body_fd, body_off, body_len };
	if (body_off < 0) {
		errno = EINVAL;
		return -1;
	}
	return batch_add(b, account, folder, unique, maybe_redelivery, header, hlen, &src, quota);
}

/* Queue a delivery whose body is in memory. */
int maildir_batch_add_mem(struct maildir_batch *b, const char *account, const char *folder,
			  const char *unique, bool maybe_redelivery,
			  const void *header, size_t hlen, const void *body, size_t blen,
			  unsigned long long quota)
{
	if (body == NULL && blen > 0) {
		errno = EINVAL;
		return -1;
	}
	struct mb_source src = { body != NULL ? body : "", -1, 0, blen };
	return batch_add(b, account, folder, unique, maybe_redelivery, header, hlen, &src, quota);
}

/* Let go of an item's file: close the unnamed one (it vanishes with its
 * last fd unless linked), remove the tmp/ one. */
static void item_discard(struct maildir_batch *b, struct mb_item *it)
{
	if (!it->written)
		return;
	if (it->tmp_fd >= 0) {
		close(it->tmp_fd);
		it->tmp_fd = -1;
		b->nopen--;
	} else {
		(void)unlink(it->tmp_path);
	}
	it->written = false;
}

/* Fail every item still waiting and remove the batch's files and links. */
static void fail_ready(struct maildir_batch *b, const char *what, int err)
{
	for (int i = 0; i < b->nitems; i++) {
		struct mb_item *it = &b->items[i];
		if (it->linked) {
			(void)unlink(it->new_path);
			it->linked = false;
		}
		item_discard(b, it);
		if (it->state == MB_READY || (it->state == MB_DONE && it->status == MAILDIR_OK))
			item_fail(b, it, MAILDIR_TEMPFAIL, what, err);
	}
	for (int i = 0; i < b->naccts; i++) {
		struct mb_account *a = &b->accts[i];
		if (a->done_count > 0)
			(void)maildir_quota_add(a->dir, -(long long)a->done_bytes,
						-(long long)a->done_count);
		a->done_bytes = a->done_count = 0;
	}
}

/* syncfs every file system the batch touched. */
static int sync_fs_all(struct maildir_batch *b)
{
	for (int i = 0; i < b->ndevs; i++) {
		if (mb_syncfs(b, b->devs[i].fd) < 0)
			return -1;
	}
	return 0;
}

/* Step 2: the content of every written tmp file on stable storage. */
static int commit_data(struct maildir_batch *b)
{
	int nwritten = 0;
	for (int i = 0; i < b->nitems; i++)
		nwritten += b->items[i].written;
	if (nwritten == 0)
		return 0;
	if (b->sync == MAILDIR_SYNC_FS ||
	    (b->sync == MAILDIR_SYNC_AUTO && nwritten > MAILDIR_SYNCFS_MIN_FILES))
		return sync_fs_all(b);
	for (int i = 0; i < b->nitems; i++) {
		struct mb_item *it = &b->items[i];
		if (!it->written)
			continue;
		/* A write-back error not yet seen by anyone is reported to an fd
		 * opened after it (errseq), so reopening a tmp/ file is as safe as
		 * keeping every fd of the batch open. */
		int fd = it->tmp_fd >= 0 ? it->tmp_fd
					 : open(it->tmp_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			return -1;
		int r = mb_fdatasync(b, fd);
		int saved = errno;
		if (fd != it->tmp_fd)
			close(fd);
		if (r < 0) {
			errno = saved;
			return -1;
		}
	}
	return 0;
}

/* Link the owner's file as the item's name in its new/. */
static int link_item(struct maildir_batch *b, const struct mb_item *it)
{
	const struct mb_item *o = &b->items[it->owner];
	int dirfd = b->dirs[it->dir]->new_fd;
	if (o->tmp_fd < 0)
		return mb_linkat(b, AT_FDCWD, o->tmp_path, dirfd, it->name, 0);
	char proc[64];
	if (proc_fd_path(b, o->tmp_fd, proc, sizeof proc) < 0)
		return -1;
	return mb_linkat(b, AT_FDCWD, proc, dirfd, it->name, AT_SYMLINK_FOLLOW);
}

/* After a failed link with ENOENT: forget the folder if it is gone (else
 * /proc vanished: later batches will see it at their probe). */
static void link_enoent(struct maildir_batch *b, const struct mb_item *it)
{
	struct maildir_cache_entry *e = b->dirs[it->dir];
	struct stat st;
	if (fstat(e->new_fd, &st) < 0 || st.st_nlink == 0 || !dir_still_there(e))
		maildir_cache_forget(b->cache, e);
	else if (b->items[it->owner].tmp_fd >= 0)
		b->proc = MB_PROC_NO;
}

/* Step 3: link each item into new/; per-item errors stay per item. */
static void commit_links(struct maildir_batch *b)
{
	for (int i = 0; i < b->nitems; i++) {
		struct mb_item *it = &b->items[i];
		if (it->state != MB_READY)
			continue;
		if (link_item(b, it) == 0) {
			it->linked = true;
			struct mb_account *a = &b->accts[it->acct];
			a->done_bytes += it->size;
			a->done_count++;
			continue;
		}
		if (errno == EEXIST) {
			/* Delivered meanwhile by someone else: never overwrite. */
			it->state = MB_DONE;
			it->status = MAILDIR_DUPLICATE;
			it->found_path = it->new_path;
		} else {
			int err = errno;
			if (err == ENOENT)
				link_enoent(b, it);
			item_fail(b, it, MAILDIR_TEMPFAIL, "link into new", err);
		}
	}
	for (int i = 0; i < b->nitems; i++)
		item_discard(b, &b->items[i]);
	for (int i = 0; i < b->naccts; i++) {
		struct mb_account *a = &b->accts[i];
		if (a->done_count > 0)
			(void)maildir_quota_add(a->dir, (long long)a->done_bytes,
						(long long)a->done_count);
	}
}

/* Step 4: the new directory entries on stable storage. */
static int commit_dirs(struct maildir_batch *b)
{
	if (b->sync == MAILDIR_SYNC_FS)
		return sync_fs_all(b);
	/* Each folder's new/ once, through the fd the cache holds on it. */
	bool *used = yz_calloc((size_t)b->ndirs + 1, sizeof *used);
	int ndirs = 0;
	for (int i = 0; i < b->nitems; i++) {
		struct mb_item *it = &b->items[i];
		if (it->linked && !used[it->dir]) {
			used[it->dir] = true;
			ndirs++;
		}
	}
	int r = 0;
	if (b->sync == MAILDIR_SYNC_AUTO && ndirs > MAILDIR_SYNCFS_MIN_FILES)
		r = sync_fs_all(b);
	else {
		for (int d = 0; d < b->ndirs && r == 0; d++) {
			if (used[d])
				r = mb_fsync(b, b->dirs[d]->new_fd);
		}
	}
	int saved = errno;
	free(used);
	errno = saved;
	return r;
}

/* Steps 2-4 of the group commit. */
int maildir_batch_commit(struct maildir_batch *b)
{
	if (b->committed) {
		errno = EINVAL;
		return -1;
	}
	b->committed = true;
	if (commit_data(b) < 0) {
		fail_ready(b, "sync message data", errno);
		return -1;
	}
	commit_links(b);
	bool any = false;
	for (int i = 0; i < b->nitems && !any; i++)
		any = b->items[i].linked;
	if (any && commit_dirs(b) < 0) {
		fail_ready(b, "sync new directory", errno);
		return -1;
	}
	for (int i = 0; i < b->nitems; i++) {
		struct mb_item *it = &b->items[i];
		if (it->state == MB_READY) {
			it->state = MB_DONE;
			it->status = MAILDIR_OK;
			it->linked = false;
		}
	}
	return 0;
}

/* Number of items added. */
int maildir_batch_count(const struct maildir_batch *b)
{
	return b->nitems;
}

/* The item an item's outcome comes from. */
static const struct mb_item *item_outcome(const struct maildir_batch *b, int item)
{
	const struct mb_item *it = &b->items[item];
	return it->state == MB_DUP_OF ? &b->items[it->dup_of] : it;
}

/* An item's status. */
enum maildir_status maildir_batch_status(const struct maildir_batch *b, int item,
					 const char **error_r)
{
	if (error_r != NULL)
		*error_r = NULL;
	if (item < 0 || item >= b->nitems) {
		if (error_r != NULL)
			*error_r = "no such item";
		return MAILDIR_PERMFAIL;
	}
	bool dup = b->items[item].state == MB_DUP_OF;
	const struct mb_item *it = item_outcome(b, item);
	if (it->state == MB_READY) {
		if (error_r != NULL)
			*error_r = "not committed";
		return MAILDIR_TEMPFAIL;
	}
	if (it->status != MAILDIR_OK && it->status != MAILDIR_DUPLICATE && error_r != NULL)
		*error_r = it->error;
	if (dup && (it->status == MAILDIR_OK || it->status == MAILDIR_DUPLICATE))
		return MAILDIR_DUPLICATE;
	return it->status;
}

/* Where a delivered or duplicate item's file is. */
const char *maildir_batch_path(const struct maildir_batch *b, int item)
{
	if (item < 0 || item >= b->nitems)
		return NULL;
	const struct mb_item *it = item_outcome(b, item);
	if (it->state == MB_READY)
		return NULL;
	if (it->status == MAILDIR_OK)
		return it->new_path;
	if (it->status == MAILDIR_DUPLICATE)
		return it->found_path;
	return NULL;
}

/* Free the batch; an uncommitted batch's tmp files are removed. */
void maildir_batch_free(struct maildir_batch **bp)
{
	struct maildir_batch *b = *bp;
	if (b == NULL)
		return;
	for (int i = 0; i < b->nitems; i++)
		item_discard(b, &b->items[i]);
	for (int i = 0; i < b->ndevs; i++)
		close(b->devs[i].fd);
	for (int i = 0; i < b->ndirs; i++)
		maildir_cache_release(&b->dirs[i]);
	free(b->dirs);
	if (b->own_cache)
		maildir_cache_free(&b->cache);
	free(b->items);
	free(b->accts);
	yz_pool_free(&b->pool);
	free(b);
	*bp = NULL;
}

/* A name for logs. */
const char *maildir_status_name(enum maildir_status st)
{
	switch (st) {
	case MAILDIR_OK: return "delivered";
	case MAILDIR_DUPLICATE: return "duplicate";
	case MAILDIR_OVER_QUOTA: return "over quota";
	case MAILDIR_TEMPFAIL: return "temporary failure";
	case MAILDIR_PERMFAIL: return "permanent failure";
	}
	return "unknown";
}

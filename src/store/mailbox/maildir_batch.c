/*
 * maildir_batch.c: local delivery into Maildir++ with group commit.
 *
 * Guarantees (see maildir.h for the protocol): an item reports MAILDIR_OK
 * only after its content and its directory entry in new/ are on stable
 * storage; a file appears in new/ only by link(2) of a tmp/ file whose data
 * was made durable first, so a crash never shows a partial message; link(2)
 * never replaces an existing message, so a repeated delivery is detected
 * (MAILDIR_DUPLICATE) instead of written twice. A failed sync fails every
 * item the batch wrote; its tmp files and the links it made are removed.
 * Never: retry a failed fsync, report success before step 4, write a path
 * not built from validated parts, let one item's error stop the others.
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

enum mb_state {
	MB_FAILED,   /* status/error are final */
	MB_READY,    /* written (or shares a written file), waits for commit */
	MB_DUP_OF,   /* same destination as an earlier item: shares its outcome */
	MB_DONE,     /* status is final after commit */
};

struct mb_account {
	char *dir;
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
	bool written;     /* this item wrote tmp_path */
	bool linked;      /* step 3 created new_path */
	unsigned long long size;
	dev_t dev;
	char *tmp_path;
	char *new_path;
	char *new_dir;
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
	return b;
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

/* link(2), or the test hook. */
static int mb_link(struct maildir_batch *b, const char *from, const char *to)
{
	return b->hooks.link != NULL ? b->hooks.link(from, to) : link(from, to);
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

/* Open a syncfs handle on dir's file system unless the batch has one; it is
 * opened before anything is written there, so syncfs reports every
 * write-back error that follows. */
static int batch_watch_dev(struct maildir_batch *b, const char *dir, dev_t dev)
{
	for (int i = 0; i < b->ndevs; i++) {
		if (b->devs[i].dev == dev)
			return 0;
	}
	if (b->ndevs == MB_DEVS_MAX) {
		errno = EMLINK;
		return -1;
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	b->devs[b->ndevs].dev = dev;
	b->devs[b->ndevs].fd = fd;
	b->ndevs++;
	return 0;
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
	char tmp[PATH_MAX];
	struct stat st;
	if (maildir_create(dir) < 0) {
		a->status = status_of_errno(errno);
		a->error = yz_pool_printf(b->pool, "create maildir %s: %s", dir, strerror(errno));
	} else if (maildir_quota_usage(dir, quota, &a->used_bytes, &a->used_count) < 0) {
		a->status = MAILDIR_TEMPFAIL;
		a->error = yz_pool_printf(b->pool, "quota of %s: %s", dir, strerror(errno));
	} else if (maildir_pathf(tmp, sizeof tmp, "%s/tmp", dir) < 0 || stat(tmp, &st) < 0 ||
		   batch_watch_dev(b, tmp, st.st_dev) < 0) {
		a->status = status_of_errno(errno);
		a->error = yz_pool_printf(b->pool, "%s: %s", tmp, strerror(errno));
	} else {
		a->dev = st.st_dev;
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

/* Write header + body into a new tmp file; nothing is left on failure. */
static int write_tmp(struct maildir_batch *b, const char *path, const void *hdr, size_t hlen,
		     const struct mb_source *src, dev_t *dev_r)
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
	struct stat st;
	int r = fstat(fd, &st);
	if (r == 0 && hlen > 0)
		r = mb_write_full(b, fd, hdr, hlen);
	if (r == 0 && src->len > 0) {
		if (src->mem != NULL)
			r = mb_write_full(b, fd, src->mem, src->len);
		else
			r = copy_body_fd(b, fd, src->fd, src->off, src->len);
	}
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
	*dev_r = st.st_dev;
	return 0;
}

/* true if the tmp file at path holds hdr followed by body (memory). */
static bool file_equals(const char *path, size_t hlen, const void *body, size_t blen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
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
	return !b->last_from_fd && file_equals(o->tmp_path, hlen, src->mem, src->len);
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
	return it;
}

/* Resolve the folder directory: the plus-address folder if it exists, else INBOX. */
static int target_dir(const char *acct_dir, const char *folder, char *out, size_t outsz)
{
	if (folder != NULL && folder[0] != '\0' && strcasecmp(folder, "INBOX") != 0 &&
	    maildir_folder_name_valid(folder)) {
		int r = maildir_folder_exists(acct_dir, folder);
		if (r < 0)
			return -1;
		if (r > 0)
			return maildir_folder_path(acct_dir, folder, out, outsz);
	}
	return maildir_pathf(out, outsz, "%s", acct_dir);
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
	char acct_dir[PATH_MAX], dir[PATH_MAX], full[MAILDIR_UNIQUE_MAX + MAILDIR_HOST_MAX + 2];
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
	if (target_dir(acct_dir, folder, dir, sizeof dir) < 0 ||
	    maildir_pathf(full, sizeof full, "%s.%s", unique, b->host) < 0 ||
	    maildir_pathf(name, sizeof name, "%s,S=%llu", full, it->size) < 0 ||
	    maildir_pathf(path, sizeof path, "%s/new/%s", dir, name) < 0) {
		item_fail(b, it, status_of_errno(errno), "destination", errno);
		return idx;
	}
	it->new_path = yz_pool_strdup(b->pool, path);
	it->new_dir = yz_pool_printf(b->pool, "%s/new", dir);

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
	if (stat(path, &st) == 0) {
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

	/* The tmp/ of a folder may be on another file system than the account's. */
	char tmpdir[PATH_MAX];
	if (maildir_pathf(tmpdir, sizeof tmpdir, "%s/tmp", dir) < 0 || stat(tmpdir, &st) < 0 ||
	    batch_watch_dev(b, tmpdir, st.st_dev) < 0) {
		item_fail(b, it, MAILDIR_TEMPFAIL, "tmp directory", errno);
		return idx;
	}
	it->dev = st.st_dev;
	struct stat body_st;
	bool have_body_st = src->mem == NULL && fstat(src->fd, &body_st) == 0 &&
			    S_ISREG(body_st.st_mode);
	if (same_content(b, hdr, hlen, src, have_body_st ? &body_st : NULL, it->dev)) {
		it->owner = b->last_owner;
	} else {
		if (maildir_pathf(path, sizeof path, "%s/%s", tmpdir, name) < 0) {
			item_fail(b, it, MAILDIR_PERMFAIL, "tmp path", errno);
			return idx;
		}
		dev_t dev;
		if (write_tmp(b, path, hdr, hlen, src, &dev) < 0) {
			item_fail(b, it, MAILDIR_TEMPFAIL, "write tmp file", errno);
			return idx;
		}
		it->tmp_path = yz_pool_strdup(b->pool, path);
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

/* Fail every item still waiting and remove the batch's tmp files and links. */
static void fail_ready(struct maildir_batch *b, const char *what, int err)
{
	for (int i = 0; i < b->nitems; i++) {
		struct mb_item *it = &b->items[i];
		if (it->linked) {
			(void)unlink(it->new_path);
			it->linked = false;
		}
		if (it->written) {
			(void)unlink(it->tmp_path);
			it->written = false;
		}
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
		 * opened after it (errseq), so reopening is as safe as keeping
		 * every fd of the batch open. */
		int fd = open(it->tmp_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			return -1;
		int r = mb_fdatasync(b, fd);
		int saved = errno;
		close(fd);
		if (r < 0) {
			errno = saved;
			return -1;
		}
	}
	return 0;
}

/* Step 3: link each item into new/; per-item errors stay per item. */
static void commit_links(struct maildir_batch *b)
{
	for (int i = 0; i < b->nitems; i++) {
		struct mb_item *it = &b->items[i];
		if (it->state != MB_READY)
			continue;
		const char *from = b->items[it->owner].tmp_path;
		if (mb_link(b, from, it->new_path) == 0) {
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
			item_fail(b, it, MAILDIR_TEMPFAIL, "link into new", errno);
		}
	}
	for (int i = 0; i < b->nitems; i++) {
		struct mb_item *it = &b->items[i];
		if (it->written) {
			(void)unlink(it->tmp_path);
			it->written = false;
		}
	}
	for (int i = 0; i < b->naccts; i++) {
		struct mb_account *a = &b->accts[i];
		if (a->done_count > 0)
			(void)maildir_quota_add(a->dir, (long long)a->done_bytes,
						(long long)a->done_count);
	}
}

/* fsync one directory by path through the hook. */
static int fsync_dir(struct maildir_batch *b, const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = mb_fsync(b, fd);
	int saved = errno;
	close(fd);
	errno = saved;
	return r;
}

/* Step 4: the new directory entries on stable storage. */
static int commit_dirs(struct maildir_batch *b)
{
	if (b->sync == MAILDIR_SYNC_FS)
		return sync_fs_all(b);
	const char **dirs = yz_malloc((size_t)b->nitems * sizeof *dirs);
	int ndirs = 0;
	bool use_fs = false;
	for (int i = 0; i < b->nitems && !use_fs; i++) {
		struct mb_item *it = &b->items[i];
		if (!it->linked)
			continue;
		bool seen = false;
		for (int j = 0; j < ndirs && !seen; j++)
			seen = strcmp(dirs[j], it->new_dir) == 0;
		if (!seen)
			dirs[ndirs++] = it->new_dir;
		use_fs = b->sync == MAILDIR_SYNC_AUTO && ndirs > MAILDIR_SYNCFS_MIN_FILES;
	}
	int r = 0;
	if (use_fs)
		r = sync_fs_all(b);
	for (int j = 0; j < ndirs && !use_fs && r == 0; j++)
		r = fsync_dir(b, dirs[j]);
	int saved = errno;
	free(dirs);
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
	for (int i = 0; i < b->nitems; i++) {
		if (b->items[i].written)
			(void)unlink(b->items[i].tmp_path);
	}
	for (int i = 0; i < b->ndevs; i++)
		close(b->devs[i].fd);
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

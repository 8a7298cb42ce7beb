/*
 * queue_seg.c: the segment log of the queue store. The smtpd role appends
 * small messages (content up to QUEUE_SEG_INLINE_MAX) as records to a
 * segment file log/<name> that it holds flock(LOCK_EX) on, one write and one
 * fdatasync per commit batch, instead of a file per message. The queue role
 * indexes the records by queue ID, reads them in place, records finished
 * ones in log/<name>.done, moves a message that must wait (its first status
 * record) into active/<qid>, and removes a segment once its writer is gone
 * and every record in it is finished. The state diagram is in
 * queue_store.h ("Segment log").
 *
 * Guarantees: a record is indexed only when its header and image checksums
 * hold (or the smtpd that committed it says where it is); a segment is
 * removed only when no writer holds it, it was read to its end, every
 * record is done and the done file is synced; a migrated message is durable
 * in active/ before its record is marked done. Must never: trust a length
 * read from disk before checking it, build a path from a name that is not a
 * queue ID, or remove a segment a writer may still append to.
 */
#include "store/queue/queue_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/mem.h"

/* Pool block for a loaded message. */
#define SEG_MSG_POOL_BLOCK 4096
#define SEG_IDX_MIN 64

struct queue_seg {
	struct queue_seg *next;
	char name[QUEUE_ID_MAX];
	int fd;           /* O_RDONLY */
	int done_fd;      /* O_WRONLY|O_APPEND, -1 until the first done record */
	uint64_t scanned; /* every record before this offset is indexed or done */
	size_t nlive;     /* records indexed */
	bool writer_gone; /* no writer holds it: it never grows again */
	int64_t mtime;
};

struct queue_seg_loc {
	char qid[QUEUE_ID_MAX];
	struct queue_seg *seg;
	uint64_t off; /* of the record header */
	uint32_t content_len, env_len;
};

/* Header: magic(4) version u16 hdr_len u16 qid(12) content_len u32 env_len
 * u32 image_crc u32 reserved u32 header_crc u32 (of bytes 0..35). */
void queue_seg_hdr_encode(unsigned char out[QUEUE_SEG_HDR_LEN], const struct queue_seg_hdr *h)
{
	memcpy(out, QUEUE_SEG_MAGIC, 4);
	out[4] = QUEUE_SEG_VERSION;
	out[5] = 0;
	out[6] = QUEUE_SEG_HDR_LEN;
	out[7] = 0;
	memcpy(out + 8, h->qid, QUEUE_ID_LEN);
	queue_put_u32(out + 20, h->content_len);
	queue_put_u32(out + 24, h->env_len);
	queue_put_u32(out + 28, h->image_crc);
	queue_put_u32(out + 32, 0);
	queue_put_u32(out + 36, queue_crc32c(0, out, 36));
}

int queue_seg_hdr_decode(const unsigned char in[QUEUE_SEG_HDR_LEN], struct queue_seg_hdr *h_r)
{
	if (memcmp(in, QUEUE_SEG_MAGIC, 4) != 0 || in[4] != QUEUE_SEG_VERSION || in[5] != 0 ||
	    in[6] != QUEUE_SEG_HDR_LEN || in[7] != 0 || queue_get_u32(in + 32) != 0 ||
	    queue_get_u32(in + 36) != queue_crc32c(0, in, 36))
		return -1;
	memcpy(h_r->qid, in + 8, QUEUE_ID_LEN);
	h_r->qid[QUEUE_ID_LEN] = '\0';
	h_r->content_len = queue_get_u32(in + 20);
	h_r->env_len = queue_get_u32(in + 24);
	h_r->image_crc = queue_get_u32(in + 28);
	if (!queue_id_valid(h_r->qid) || h_r->content_len > QUEUE_SEG_INLINE_MAX ||
	    h_r->env_len == 0 || h_r->env_len > QUEUE_ENVELOPE_MAX)
		return -1;
	return 0;
}

/* Bytes of the record image (content + envelope + trailer). */
static uint64_t image_len(uint32_t content_len, uint32_t env_len)
{
	return (uint64_t)content_len + env_len + QUEUE_TRAILER_LEN;
}

/* ---- writer side ---- */

int queue_seg_writer_open(struct queue_store *s)
{
	queue_seg_writer_close(s);
	for (int tries = 0; tries < QUEUE_SEG_OPEN_TRIES; tries++) {
		char name[QUEUE_ID_MAX];
		queue_id_new(name);
		int fd = openat(s->log_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			if (errno == EEXIST)
				continue;
			return -1;
		}
		/* The queue role removes an unlocked empty segment only when it
		 * is older than QUEUE_SEG_EMPTY_AGE_S, so this lock is in time. */
		if (flock(fd, LOCK_EX) < 0) {
			int saved = errno;
			close(fd);
			(void)unlinkat(s->log_fd, name, 0);
			errno = saved;
			return -1;
		}
		s->wseg_fd = fd;
		memcpy(s->wseg_name, name, QUEUE_ID_MAX);
		s->wseg_tail = 0;
		s->wseg_new = true;
		return 0;
	}
	errno = EEXIST;
	return -1;
}

void queue_seg_writer_close(struct queue_store *s)
{
	if (s->wseg_fd >= 0)
		close(s->wseg_fd);
	s->wseg_fd = -1;
	s->wseg_name[0] = '\0';
	s->wseg_tail = 0;
	s->wseg_new = false;
}

/* ---- the index of live records ---- */

/* FNV-1a of a queue ID. */
static size_t qid_hash(const char *qid)
{
	uint64_t h = 1469598103934665603ull;
	for (int i = 0; i < QUEUE_ID_LEN; i++) {
		h ^= (unsigned char)qid[i];
		h *= 1099511628211ull;
	}
	return (size_t)h;
}

/* Slot of qid, or of the empty slot where it would go. */
static size_t idx_slot(const struct queue_store *s, const char *qid)
{
	size_t mask = s->idx_cap - 1, i = qid_hash(qid) & mask;
	while (s->idx[i] != NULL && memcmp(s->idx[i]->qid, qid, QUEUE_ID_LEN) != 0)
		i = (i + 1) & mask;
	return i;
}

struct queue_seg_loc *queue_seg_find(struct queue_store *s, const char *qid)
{
	if (s->idx_count == 0)
		return NULL;
	return s->idx[idx_slot(s, qid)];
}

/* Insert l (its qid is not indexed yet); grows at half full. */
static void idx_put(struct queue_store *s, struct queue_seg_loc *l)
{
	if ((s->idx_count + 1) * 2 > s->idx_cap) {
		struct queue_seg_loc **old = s->idx;
		size_t oldcap = s->idx_cap;
		s->idx_cap = oldcap == 0 ? SEG_IDX_MIN : oldcap * 2;
		s->idx = yz_calloc(s->idx_cap, sizeof *s->idx);
		for (size_t i = 0; i < oldcap; i++) {
			if (old[i] != NULL)
				s->idx[idx_slot(s, old[i]->qid)] = old[i];
		}
		free(old);
	}
	s->idx[idx_slot(s, l->qid)] = l;
	s->idx_count++;
}

/* Remove l from the index (backward-shift deletion keeps probes intact). */
static void idx_del(struct queue_store *s, struct queue_seg_loc *l)
{
	size_t mask = s->idx_cap - 1, i = idx_slot(s, l->qid);
	if (s->idx[i] != l)
		return;
	s->idx[i] = NULL;
	s->idx_count--;
	for (size_t j = (i + 1) & mask; s->idx[j] != NULL; j = (j + 1) & mask) {
		size_t home = qid_hash(s->idx[j]->qid) & mask;
		/* Move j back to i when its home is not in (i, j]. */
		bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (!between) {
			s->idx[i] = s->idx[j];
			s->idx[j] = NULL;
			i = j;
		}
	}
}

/* ---- segments known to the reader ---- */

/* The segment called name, opened on first use (*fresh_r says so); NULL
 * with errno. */
static struct queue_seg *seg_get(struct queue_store *s, const char *name, bool *fresh_r)
{
	*fresh_r = false;
	for (struct queue_seg *g = s->segs; g != NULL; g = g->next) {
		if (strcmp(g->name, name) == 0)
			return g;
	}
	if (!queue_id_valid(name)) {
		errno = EINVAL;
		return NULL;
	}
	int fd = openat(s->log_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		int saved = errno;
		close(fd);
		errno = S_ISREG(st.st_mode) ? saved : EINVAL;
		return NULL;
	}
	struct queue_seg *g = yz_calloc(1, sizeof *g);
	memcpy(g->name, name, QUEUE_ID_MAX);
	g->fd = fd;
	g->done_fd = -1;
	g->mtime = (int64_t)st.st_mtime;
	g->next = s->segs;
	s->segs = g;
	*fresh_r = true;
	return g;
}

/* Forget a segment (its files are left alone). */
static void seg_drop(struct queue_store *s, struct queue_seg *g)
{
	for (struct queue_seg **pp = &s->segs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	}
	if (g->fd >= 0)
		close(g->fd);
	if (g->done_fd >= 0)
		close(g->done_fd);
	free(g);
}

void queue_seg_close_all(struct queue_store *s)
{
	for (size_t i = 0; i < s->idx_cap; i++)
		free(s->idx[i]);
	free(s->idx);
	s->idx = NULL;
	s->idx_cap = s->idx_count = 0;
	while (s->segs != NULL)
		seg_drop(s, s->segs);
}

/* "<name>.done" into out. */
static void done_name(const struct queue_seg *g, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s%s", g->name, QUEUE_SEG_DONE_SUFFIX);
}

/* Append "<qid>\n" to the done file of g. */
static int seg_mark_done(struct queue_store *s, struct queue_seg *g, const char *qid)
{
	if (g->done_fd < 0) {
		char dn[QUEUE_ID_MAX + 8];
		done_name(g, dn, sizeof dn);
		g->done_fd = openat(s->log_fd, dn, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (g->done_fd < 0)
			return -1;
	}
	char line[QUEUE_SEG_DONE_LINE];
	memcpy(line, qid, QUEUE_ID_LEN);
	line[QUEUE_ID_LEN] = '\n';
	return queue_io_write_full(s, g->done_fd, line, sizeof line);
}

/* Sorted queue IDs read from a done file (recovery). */
struct done_set {
	char (*ids)[QUEUE_ID_MAX];
	size_t n;
};

/* Read the done file of g (a torn last line is ignored). */
static void done_read(struct queue_store *s, struct queue_seg *g, struct done_set *d)
{
	char dn[QUEUE_ID_MAX + 8];
	d->ids = NULL;
	d->n = 0;
	done_name(g, dn, sizeof dn);
	int fd = openat(s->log_fd, dn, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size <= 0 || (uint64_t)st.st_size > QUEUE_SEG_DONE_MAX) {
		close(fd);
		return;
	}
	size_t len = (size_t)st.st_size;
	char *buf = yz_malloc(len);
	ssize_t got = pread(fd, buf, len, 0);
	close(fd);
	if (got <= 0) {
		free(buf);
		return;
	}
	size_t lines = (size_t)got / QUEUE_SEG_DONE_LINE;
	d->ids = yz_calloc(lines + 1, sizeof *d->ids);
	for (size_t i = 0; i < lines; i++) {
		const char *p = buf + i * QUEUE_SEG_DONE_LINE;
		if (p[QUEUE_ID_LEN] != '\n')
			continue;
		memcpy(d->ids[d->n], p, QUEUE_ID_LEN);
		d->ids[d->n][QUEUE_ID_LEN] = '\0';
		if (queue_id_valid(d->ids[d->n]))
			d->n++;
	}
	free(buf);
	if (d->n > 1)
		qsort(d->ids, d->n, sizeof *d->ids, queue_id_cmp);
}

/* Index the record of qid at off in g. */
static void seg_index(struct queue_store *s, struct queue_seg *g, const struct queue_seg_hdr *h,
		      uint64_t off)
{
	struct queue_seg_loc *l = yz_calloc(1, sizeof *l);
	memcpy(l->qid, h->qid, QUEUE_ID_MAX);
	l->seg = g;
	l->off = off;
	l->content_len = h->content_len;
	l->env_len = h->env_len;
	idx_put(s, l);
	g->nlive++;
}

/* A committed record failed its checksum: copy its image to corrupt/<qid>
 * for the admin (never replacing anything) and say so. */
static void seg_keep_corrupt(struct queue_store *s, const struct queue_seg *g, const char *qid,
			     const unsigned char *img, size_t len)
{
	int fd = openat(s->corrupt_fd, qid, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0) {
		(void)queue_io_write_full(s, fd, img, len);
		close(fd);
	}
	yz_log_warn("%s: segment %s: damaged record skipped%s", qid, g->name,
		    fd >= 0 ? ", copied to corrupt/" : "");
}

/* true when no writer holds g (it will never grow again). */
static bool seg_writer_gone(struct queue_seg *g)
{
	if (!g->writer_gone && flock(g->fd, LOCK_EX | LOCK_NB) == 0) {
		(void)flock(g->fd, LOCK_UN);
		g->writer_gone = true;
	}
	return g->writer_gone;
}

/* Read the records of g past g->scanned: index those not done (done =
 * listed in done, or already moved to active/). Stops at the first record
 * that is short or fails a checksum: a record still being written, or the
 * torn tail of a crashed writer. */
static void seg_scan(struct queue_store *s, struct queue_seg *g, const struct done_set *done)
{
	unsigned char hb[QUEUE_SEG_HDR_LEN];
	unsigned char *img = NULL;
	size_t img_cap = 0;
	for (;;) {
		struct queue_seg_hdr h;
		if (queue_pread_full(g->fd, hb, sizeof hb, g->scanned) < 0 || queue_seg_hdr_decode(hb, &h) < 0)
			break;
		uint64_t ilen = image_len(h.content_len, h.env_len);
		struct queue_seg_loc *known = queue_seg_find(s, h.qid);
		if (known == NULL || known->seg != g || known->off != g->scanned) {
			if (ilen > img_cap) {
				free(img);
				img_cap = (size_t)ilen;
				img = yz_malloc(img_cap);
			}
			if (queue_pread_full(g->fd, img, (size_t)ilen, g->scanned + QUEUE_SEG_HDR_LEN) < 0)
				break;
			if (queue_crc32c(0, img, (size_t)ilen) != h.image_crc) {
				/* Being written (live writer: look again later), or
				 * damaged for good: keep a copy, go on past it. */
				if (!g->writer_gone)
					break;
				seg_keep_corrupt(s, g, h.qid, img, (size_t)ilen);
				g->scanned += QUEUE_SEG_HDR_LEN + ilen;
				continue;
			}
			struct stat st;
			bool is_done = done != NULL && done->n > 0 &&
				       bsearch(h.qid, done->ids, done->n, sizeof *done->ids, queue_id_cmp) != NULL;
			if (is_done || known != NULL) {
				/* Done, or the same ID elsewhere (cannot be two messages). */
			} else if (fstatat(s->active_fd, h.qid, &st, 0) == 0) {
				/* Moved to active/; the done mark was lost. */
				(void)seg_mark_done(s, g, h.qid);
			} else {
				seg_index(s, g, &h, g->scanned);
			}
		}
		g->scanned += QUEUE_SEG_HDR_LEN + ilen;
	}
	free(img);
}

/* Remove g when its writer is gone, it was read to its end and nothing in
 * it is live; true if it was removed. */
static bool seg_maybe_recycle(struct queue_store *s, struct queue_seg *g)
{
	if (g->nlive > 0)
		return false;
	if (!g->writer_gone) {
		if (!seg_writer_gone(g))
			return false;
		/* Records written after our last look, whose notice never came. */
		struct done_set none = { NULL, 0 };
		seg_scan(s, g, &none);
		if (g->nlive > 0)
			return false;
	}
	if (g->scanned == 0 && (int64_t)time(NULL) - g->mtime < QUEUE_SEG_EMPTY_AGE_S)
		return false;
	/* The done marks first: a removal lost in a crash must not bring the
	 * messages back as undelivered. */
	if (g->done_fd >= 0 && queue_io_fdatasync(s, g->done_fd) < 0) {
		yz_log_warn("segment %s: fdatasync of its done file: %s; kept", g->name,
			    strerror(errno));
		return false;
	}
	char dn[QUEUE_ID_MAX + 8];
	done_name(g, dn, sizeof dn);
	if (unlinkat(s->log_fd, g->name, 0) < 0 && errno != ENOENT) {
		yz_log_warn("segment %s: remove: %s", g->name, strerror(errno));
		return false;
	}
	(void)unlinkat(s->log_fd, dn, 0);
	seg_drop(s, g);
	return true;
}

int queue_seg_note(struct queue_store *s, const char *qid, const char *seg, uint64_t offset,
		   const char **error_r)
{
	if (seg == NULL || seg[0] == '\0')
		return 0;
	bool fresh;
	struct queue_seg *g = seg_get(s, seg, &fresh);
	if (g == NULL) {
		*error_r = queue_errf(s->err, sizeof s->err, errno, "%s: segment %s", qid, seg);
		return -1;
	}
	if (offset < g->scanned)
		return 0; /* seen already */
	if (offset > g->scanned) {
		/* Records before it whose notices were lost. */
		struct done_set none = { NULL, 0 };
		seg_scan(s, g, &none);
		if (offset < g->scanned)
			return 0;
	}
	unsigned char hb[QUEUE_SEG_HDR_LEN];
	struct queue_seg_hdr h;
	if (queue_pread_full(g->fd, hb, sizeof hb, offset) < 0 || queue_seg_hdr_decode(hb, &h) < 0 ||
	    strcmp(h.qid, qid) != 0) {
		*error_r = queue_errf(s->err, sizeof s->err, 0, "%s: no valid record at %s:%llu", qid,
				      seg, (unsigned long long)offset);
		errno = EBADMSG;
		return -1;
	}
	if (queue_seg_find(s, qid) == NULL)
		seg_index(s, g, &h, offset);
	g->scanned = offset + QUEUE_SEG_HDR_LEN + image_len(h.content_len, h.env_len);
	if (fresh) {
		/* A new segment: the writer may have left older ones for good. */
		struct queue_seg *next;
		for (struct queue_seg *o = s->segs; o != NULL; o = next) {
			next = o->next;
			if (o != g)
				(void)seg_maybe_recycle(s, o);
		}
	}
	return 0;
}

int queue_seg_load(struct queue_store *s, struct queue_seg_loc *l, struct queue_msg **msg_r,
		   const char **error_r)
{
	size_t len = (size_t)l->env_len + QUEUE_TRAILER_LEN;
	unsigned char *env = yz_malloc(len);
	uint64_t at = l->off + QUEUE_SEG_HDR_LEN + l->content_len;
	if (queue_pread_full(l->seg->fd, env, len, at) < 0) {
		int saved = errno;
		free(env);
		*error_r = queue_errf(s->err, sizeof s->err, saved, "%s: read envelope", l->qid);
		errno = saved;
		return -1;
	}
	uint64_t clen;
	uint32_t elen, ecrc;
	if (queue_trailer_decode(env + l->env_len, &clen, &elen, &ecrc) < 0 ||
	    clen != l->content_len || elen != l->env_len || queue_crc32c(0, env, l->env_len) != ecrc) {
		free(env);
		*error_r = queue_errf(s->err, sizeof s->err, 0, "%s: bad segment record", l->qid);
		errno = EBADMSG;
		return -1;
	}
	struct queue_msg *m = yz_calloc(1, sizeof *m);
	m->pool = yz_pool_new(SEG_MSG_POOL_BLOCK);
	m->content_len = l->content_len;
	char qid[QUEUE_ID_MAX];
	const char *why;
	int r = queue_envelope_decode(m->pool, env, l->env_len, qid, &m->env, &why);
	free(env);
	if (r < 0 || strcmp(qid, l->qid) != 0) {
		*error_r = queue_errf(s->err, sizeof s->err, 0, "%s: %s", l->qid,
				      r < 0 ? why : "envelope names another queue ID");
		queue_msg_free(&m);
		errno = EBADMSG;
		return -1;
	}
	/* No status log: a message gets one only after its move to active/. */
	memcpy(m->qid, l->qid, QUEUE_ID_MAX);
	*msg_r = m;
	return 0;
}

int queue_seg_content_fd(struct queue_store *s, struct queue_seg_loc *l, uint64_t *offset_r,
			 uint64_t *len_r, const char **error_r)
{
	int fd = fcntl(l->seg->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = queue_errf(s->err, sizeof s->err, errno, "%s: dup", l->qid);
		return -1;
	}
	*offset_r = l->off + QUEUE_SEG_HDR_LEN;
	*len_r = l->content_len;
	return fd;
}

/* Drop l from the index; recycle its segment when it was the last live record. */
static void seg_forget(struct queue_store *s, struct queue_seg_loc *l)
{
	struct queue_seg *g = l->seg;
	idx_del(s, l);
	free(l);
	g->nlive--;
	if (g->nlive == 0)
		(void)seg_maybe_recycle(s, g);
}

int queue_seg_remove(struct queue_store *s, struct queue_seg_loc *l, const char **error_r)
{
	if (seg_mark_done(s, l->seg, l->qid) < 0) {
		*error_r = queue_errf(s->err, sizeof s->err, errno, "%s: segment %s: done mark",
				      l->qid, l->seg->name);
		return -1;
	}
	seg_forget(s, l);
	return 0;
}

int queue_seg_migrate(struct queue_store *s, struct queue_seg_loc *l, const char **error_r)
{
	uint64_t ilen = image_len(l->content_len, l->env_len);
	unsigned char *img = yz_malloc((size_t)ilen);
	char tmp[QUEUE_PATH_MAX], dst[QUEUE_PATH_MAX];
	const char *what = "read";
	int fd = -1, saved = 0;
	bool renamed = false;
	if (queue_pread_full(l->seg->fd, img, (size_t)ilen, l->off + QUEUE_SEG_HDR_LEN) < 0)
		goto fail;
	what = "path";
	if (queue_path(s, QUEUE_SUB_INCOMING, l->qid, tmp, sizeof tmp) < 0 ||
	    queue_path(s, QUEUE_SUB_ACTIVE, l->qid, dst, sizeof dst) < 0)
		goto fail;
	what = "create";
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	what = "write";
	if (queue_io_write_full(s, fd, img, (size_t)ilen) < 0)
		goto fail;
	what = "fdatasync";
	if (queue_io_fdatasync(s, fd) < 0)
		goto fail;
	what = "close";
	int cr = close(fd);
	fd = -1;
	if (cr < 0)
		goto fail;
	what = "rename into active";
	if (queue_io_rename(s, tmp, dst) < 0) {
		if (errno != EEXIST)
			goto fail;
		/* An earlier move whose done mark was lost. */
		(void)queue_io_unlink(s, tmp);
	} else {
		renamed = true;
	}
	what = "fsync active directory";
	if (queue_io_fsync(s, s->active_fd) < 0)
		goto fail;
	free(img);
	/* Now the record is done: the copy in active/ is the message. A lost
	 * done mark is harmless: a scan finds active/<qid> and skips it. */
	if (seg_mark_done(s, l->seg, l->qid) < 0)
		yz_log_warn("%s: segment %s: done mark: %s", l->qid, l->seg->name, strerror(errno));
	seg_forget(s, l);
	return 0;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	if (renamed)
		(void)queue_io_unlink(s, dst);
	else
		(void)queue_io_unlink(s, tmp);
	free(img);
	*error_r = queue_errf(s->err, sizeof s->err, saved, "%s: move to active/: %s", l->qid, what);
	errno = saved;
	return -1;
}

int queue_seg_scan_all(struct queue_store *s, const char **error_r)
{
	DIR *d = queue_dir_stream(s->log_fd);
	if (d == NULL) {
		*error_r = queue_errf(s->err, sizeof s->err, errno, "opendir %s/log", s->dir);
		return -1;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		const char *dot = strchr(de->d_name, '.');
		if (dot != NULL && dot != de->d_name && strcmp(dot, QUEUE_SEG_DONE_SUFFIX) == 0 &&
		    (size_t)(dot - de->d_name) == QUEUE_ID_LEN) {
			/* A done file whose segment is gone: a removal cut short. */
			char seg[QUEUE_ID_MAX];
			struct stat st;
			memcpy(seg, de->d_name, QUEUE_ID_LEN);
			seg[QUEUE_ID_LEN] = '\0';
			if (queue_id_valid(seg) && fstatat(s->log_fd, seg, &st, 0) < 0 && errno == ENOENT)
				(void)unlinkat(s->log_fd, de->d_name, 0);
			continue;
		}
		if (!queue_id_valid(de->d_name))
			continue;
		bool fresh;
		struct queue_seg *g = seg_get(s, de->d_name, &fresh);
		if (g == NULL)
			continue;
		if (fresh) {
			/* First look (recovery, or a writer we were never told
			 * of): its done file says what is finished. */
			(void)seg_writer_gone(g);
			struct done_set done;
			done_read(s, g, &done);
			seg_scan(s, g, &done);
			free(done.ids);
		} else {
			struct done_set none = { NULL, 0 };
			seg_scan(s, g, &none);
		}
	}
	closedir(d);
	struct queue_seg *next;
	for (struct queue_seg *g = s->segs; g != NULL; g = next) {
		next = g->next;
		(void)seg_maybe_recycle(s, g);
	}
	return 0;
}

int queue_seg_list(struct queue_store *s, char (**ids)[QUEUE_ID_MAX], size_t *n, size_t *cap,
		   const char **error_r)
{
	for (size_t i = 0; i < s->idx_cap; i++) {
		const struct queue_seg_loc *l = s->idx[i];
		if (l == NULL)
			continue;
		if (*n == QUEUE_LIST_MAX) {
			*error_r = "queue listing: too many messages";
			return -1;
		}
		if (*n == *cap) {
			*cap = *cap == 0 ? 64 : *cap * 2;
			*ids = yz_realloc(*ids, *cap * sizeof **ids);
		}
		memcpy((*ids)[(*n)++], l->qid, QUEUE_ID_MAX);
	}
	return 0;
}

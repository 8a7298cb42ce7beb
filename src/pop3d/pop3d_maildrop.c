/*
 * pop3d_maildrop.c: the TRANSACTION and UPDATE states of a POP3 session
 * over the account's Maildir INBOX: the login snapshot and its lock, STAT,
 * LIST, UIDL, RETR, TOP, DELE, RSET, NOOP, and QUIT's UPDATE.
 *
 * Guarantees:
 * - The maildrop is the snapshot maildir_list() gave at login (new/ and cur/
 *   in delivery order); numbers and sizes do not move during the session.
 * - Sizes are the octets RETR sends before dot-stuffing: the files hold CRLF
 *   wire format, so that is the file size.
 * - RETR/TOP stream the file in POP3D_READ_CHUNK pieces through one buffer
 *   shared by the process, dot-stuffing by a scan for "\n.", never queueing
 *   more than about POP3D_OUT_HIGH; a last line without CRLF gets one.
 * - DELE only marks; UPDATE (QUIT in TRANSACTION) expunges. A dropped
 *   connection or a timeout expunges nothing.
 * - One session per mailbox: flock(LOCK_EX|LOCK_NB) on POP3D_LOCK_FILE in
 *   the account's Maildir, held until the session ends (works across
 *   processes, e.g. during a reload).
 * - RETR marks the message seen (flag S, new/ -> cur/) for IMAP users too,
 *   through the marker thread (pop3d_seen.c); a session keeps its lock
 *   until its marks are on disk (a login of the same mailbox in this
 *   process waits for them), and UPDATE waits for those of messages it
 *   expunges.
 * - UIDLs are the Maildir unique parts (stable, unique, never reused),
 *   mapped deterministically into POP3's 1-70 characters 0x21-0x7E.
 * Never: reports a message that is DELEd; sends a line starting with a
 * lone "." that is not the terminator.
 */
#include "pop3d/pop3d_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "lib/io.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "store/mailbox/maildir.h"

/* The UIDL of a message (see the header). */
void pop3_uidl(const char *unique, char *out, size_t outsz)
{
	size_t len = strlen(unique);
	bool ok = len >= 1 && len <= POP3D_UIDL_MAX && unique[0] != '~';
	for (size_t i = 0; ok && i < len; i++)
		ok = unique[i] >= 0x21 && unique[i] <= 0x7e;
	if (ok) {
		snprintf(out, outsz, "%s", unique);
		return;
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (EVP_Digest(unique, len, md, &mdlen, EVP_sha256(), NULL) != 1)
		yz_fatal("pop3: SHA-256 is not available");
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (o + 1 < outsz)
		out[o++] = '~';
	for (unsigned i = 0; i < mdlen && o + 2 < outsz; i++) {
		out[o++] = hex[md[i] >> 4];
		out[o++] = hex[md[i] & 15];
	}
	out[o] = '\0';
}

/* Lock and snapshot the account's INBOX. */
int pop3_maildrop_open(struct pop3_session *s, const char *account, const char **error_r)
{
	char dir[POP3D_PATH_MAX], path[POP3D_PATH_MAX];
	if (maildir_account_path(s->d->maildir_root, account, dir, sizeof dir) < 0) {
		*error_r = "[SYS/PERM] Invalid mailbox name";
		return -1;
	}
	struct stat st;
	if (stat(dir, &st) < 0) {
		if (errno != ENOENT || maildir_create(dir) < 0) {
			yz_log_warn("pop3: cannot create maildir %s: %s", dir, strerror(errno));
			*error_r = "[SYS/TEMP] Cannot open the mailbox";
			return -1;
		}
	}
	int n = snprintf(path, sizeof path, "%s/%s", dir, POP3D_LOCK_FILE);
	if (n < 0 || (size_t)n >= sizeof path) {
		*error_r = "[SYS/PERM] Mailbox path too long";
		return -1;
	}
	char folder[POP3D_PATH_MAX];
	if (maildir_folder_path(dir, NULL, folder, sizeof folder) < 0) {
		*error_r = "[SYS/PERM] Invalid mailbox name";
		return -1;
	}
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		yz_log_warn("pop3: open %s: %s", path, strerror(errno));
		*error_r = "[SYS/TEMP] Cannot lock the mailbox";
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		*error_r = "[IN-USE] Mailbox is locked by another POP3 session";
		if (e == EWOULDBLOCK && pop3_drop_settling(s->d, folder))
			return -2; /* an ended session's last seen marks: moments */
		if (e != EWOULDBLOCK) {
			yz_log_warn("pop3: flock %s: %s", path, strerror(e));
			*error_r = "[SYS/TEMP] Cannot lock the mailbox";
		}
		return -1;
	}
	struct maildir_msg *msgs = NULL;
	size_t count = 0;
	if (maildir_list(folder, &msgs, &count) < 0) {
		yz_log_warn("pop3: cannot list %s: %s", dir, strerror(errno));
		close(fd);
		*error_r = "[SYS/TEMP] Cannot read the mailbox";
		return -1;
	}
	s->lock_fd = fd;
	s->folder_dir = yz_strdup(folder);
	/* RETR opens and marks messages relative to these (no path walk per
	 * message); where they cannot be opened, by path. */
	char sub[POP3D_PATH_MAX + 8];
	if (snprintf(sub, sizeof sub, "%s/new", folder) < (int)sizeof sub)
		s->new_fd = open(sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (snprintf(sub, sizeof sub, "%s/cur", folder) < (int)sizeof sub)
		s->cur_fd = open(sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	s->msgs = msgs;
	s->nmsgs = count;
	s->deleted = yz_calloc(count > 0 ? count : 1, 1);
	s->seen_queued = yz_calloc(count > 0 ? count : 1, 1);
	s->drop_size = 0;
	for (size_t i = 0; i < count; i++)
		s->drop_size += msgs[i].size;
	return 0;
}

/* Release the snapshot and the lock. */
void pop3_maildrop_close(struct pop3_session *s)
{
	if (s->msgs != NULL)
		maildir_list_free(&s->msgs, s->nmsgs);
	s->msgs = NULL;
	free(s->deleted);
	s->deleted = NULL;
	free(s->seen_queued);
	s->seen_queued = NULL;
	free(s->folder_dir);
	s->folder_dir = NULL;
	if (s->new_fd >= 0)
		close(s->new_fd);
	if (s->cur_fd >= 0)
		close(s->cur_fd);
	s->new_fd = s->cur_fd = -1;
	if (s->lock_fd >= 0)
		close(s->lock_fd); /* releases the flock */
	s->lock_fd = -1;
}

/* Message n (1-based) if it exists and is not deleted; else answer -ERR. */
static struct maildir_msg *msg_get(struct pop3_session *s, uint32_t n)
{
	if (n == 0 || n > s->nmsgs) {
		pop3_reply(s, "-ERR No such message");
		return NULL;
	}
	if (s->deleted[n - 1]) {
		pop3_reply(s, "-ERR Message %u already deleted", n);
		return NULL;
	}
	return &s->msgs[n - 1];
}

/* Messages and octets not marked deleted. */
static void drop_stat(const struct pop3_session *s, size_t *count_r, unsigned long long *size_r)
{
	size_t c = 0;
	unsigned long long sz = 0;
	for (size_t i = 0; i < s->nmsgs; i++) {
		if (!s->deleted[i]) {
			c++;
			sz += s->msgs[i].size;
		}
	}
	*count_r = c;
	*size_r = sz;
}

/* Start a multi-line answer. */
static struct pop3_stream *stream_new(struct pop3_session *s, enum pop3_stream_kind kind)
{
	struct pop3_stream *st = yz_calloc(1, sizeof *st);
	st->kind = kind;
	st->fd = -1;
	st->line_start = true;
	st->line_blank = true;
	st->last = '\n';
	s->stream = st;
	return st;
}

/* Drop the active stream. */
void pop3_stream_free(struct pop3_session *s)
{
	struct pop3_stream *st = s->stream;
	if (st == NULL)
		return;
	if (st->fd >= 0)
		close(st->fd);
	free(st);
	s->stream = NULL;
}

/* RETR n / TOP n lines: open the file and answer +OK. */
static void msg_start(struct pop3_session *s, uint32_t n, bool top, uint32_t lines)
{
	struct maildir_msg *m = msg_get(s, n);
	if (m == NULL)
		return;
	int fd = maildir_open_at(s->new_fd, s->cur_fd, s->folder_dir, m);
	if (fd < 0) {
		if (errno == ENOENT) {
			pop3_reply(s, "-ERR Message was removed by another session");
		} else {
			yz_log_warn("pop3: cannot open %s/%s: %s", s->folder_dir, m->name,
				    strerror(errno));
			pop3_reply(s, "-ERR [SYS/TEMP] Cannot read the message");
		}
		return;
	}
	/* A long read gains from a larger readahead; a few chunks do not
	 * (and the call costs a syscall per message). */
	if (m->size > 4 * POP3D_READ_CHUNK)
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	struct pop3_stream *st = stream_new(s, POP3_STREAM_MSG);
	st->fd = fd;
	st->msg = n - 1;
	st->top = top;
	st->top_lines = lines;
	if (top)
		pop3_reply(s, "+OK");
	else
		pop3_reply(s, "+OK %llu octets", m->size);
}

/* The first "\n." in [p, end), or NULL: memchr for each LF (vectorised)
 * beats memmem's two-byte search several times over on mail text. */
static const char *find_nl_dot(const char *p, const char *end)
{
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL || nl + 1 >= end)
			return NULL; /* a dot after a final LF is the next chunk's */
		if (nl[1] == '.')
			return nl;
		p = nl + 1;
	}
	return NULL;
}

/* Queue a RETR chunk, dot-stuffed by a scan for "\n.". */
static void stuff_all(struct pop3_session *s, struct pop3_stream *st, const char *p, size_t n)
{
	const char *end = p + n;
	if (st->line_start && p[0] == '.')
		pop3_write(s, ".", 1);
	while (p < end) {
		const char *q = find_nl_dot(p, end);
		if (q == NULL) {
			pop3_write(s, p, (size_t)(end - p));
			break;
		}
		pop3_write(s, p, (size_t)(q + 1 - p));
		pop3_write(s, ".", 1);
		p = q + 1;
	}
	st->line_start = end[-1] == '\n';
	st->last = end[-1];
	st->sent += n;
}

/* Queue a TOP chunk line by line; true once the requested lines are out. */
static bool stuff_top(struct pop3_session *s, struct pop3_stream *st, const char *p, size_t n)
{
	const char *end = p + n;
	while (p < end) {
		if (st->line_start) {
			if (st->in_body && st->top_lines == 0)
				return true;
			if (p[0] == '.')
				pop3_write(s, ".", 1);
			st->line_start = false;
			st->line_blank = true;
		}
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *seg_end = nl != NULL ? nl + 1 : end;
		size_t body = (size_t)((nl != NULL ? nl : end) - p);
		/* A line is blank if it holds at most one CR before its LF. */
		if (body > 0 && !(st->line_blank && st->last == '\n' && body == 1 && p[0] == '\r'))
			st->line_blank = false;
		pop3_write(s, p, (size_t)(seg_end - p));
		st->sent += (size_t)(seg_end - p);
		st->last = seg_end[-1];
		p = seg_end;
		if (nl != NULL) {
			st->line_start = true;
			if (!st->in_body) {
				if (st->line_blank)
					st->in_body = true;
			} else {
				st->top_lines--;
			}
		}
	}
	return st->line_start && st->in_body && st->top_lines == 0;
}

/* The file answer is complete: terminate it, count, mark seen. */
static void msg_finish(struct pop3_session *s, struct pop3_stream *st)
{
	if (st->last == '\r')
		pop3_write(s, "\n", 1);
	else if (st->last != '\n')
		pop3_write(s, "\r\n", 2);
	pop3_write(s, ".\r\n", 3);
	if (st->top) {
		s->top_count++;
		s->top_bytes += st->sent;
	} else {
		s->retr_count++;
		s->retr_bytes += st->sent;
		pop3_seen_mark(s, st->msg);
	}
	pop3_stream_free(s);
}

/* Continue RETR/TOP. */
static void pump_msg(struct pop3_session *s, struct pop3_stream *st)
{
	struct pop3d *d = s->d;
	if (d->chunk == NULL)
		d->chunk = yz_malloc(POP3D_READ_CHUNK);
	size_t queued = 0;
	while (queued < POP3D_PUMP_MAX && yz_io_wpending(s->io) < POP3D_OUT_HIGH) {
		ssize_t n = read(st->fd, d->chunk, POP3D_READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			/* Too late for -ERR: the client sees a cut answer. */
			yz_log_warn("pop3: read %s: %s", s->msgs[st->msg].name, strerror(errno));
			pop3_close(s, "message read error");
			return;
		}
		if (n == 0) {
			msg_finish(s, st);
			return;
		}
		queued += (size_t)n;
		if (st->top) {
			if (stuff_top(s, st, d->chunk, (size_t)n)) {
				msg_finish(s, st);
				return;
			}
		} else {
			stuff_all(s, st, d->chunk, (size_t)n);
		}
		if (s->closing)
			return;
		if ((size_t)n < POP3D_READ_CHUNK) {
			/* A short read of a regular file is its end (Maildir
			 * files never grow): no read just to see 0. */
			msg_finish(s, st);
			return;
		}
	}
}

/* Continue LIST/UIDL. */
static void pump_list(struct pop3_session *s, struct pop3_stream *st)
{
	while (st->next < s->nmsgs) {
		if (yz_io_wpending(s->io) >= POP3D_OUT_HIGH)
			return;
		size_t i = st->next++;
		if (s->deleted[i])
			continue;
		if (st->kind == POP3_STREAM_LIST) {
			pop3_reply(s, "%zu %llu", i + 1, s->msgs[i].size);
		} else {
			char uidl[POP3D_UIDL_MAX + 1];
			pop3_uidl(s->msgs[i].unique, uidl, sizeof uidl);
			pop3_reply(s, "%zu %s", i + 1, uidl);
		}
		if (s->closing)
			return;
	}
	pop3_write(s, ".\r\n", 3);
	pop3_stream_free(s);
}

/* Continue the active stream. */
void pop3_stream_pump(struct pop3_session *s)
{
	struct pop3_stream *st = s->stream;
	if (st == NULL || s->closing)
		return;
	if (st->kind == POP3_STREAM_MSG)
		pump_msg(s, st);
	else
		pump_list(s, st);
}

/* LIST [n] and UIDL [n]. */
static void cmd_listing(struct pop3_session *s, const struct pop3_command *cmd, bool uidl)
{
	if (cmd->nnums == 1) {
		struct maildir_msg *m = msg_get(s, cmd->num[0]);
		if (m == NULL)
			return;
		if (uidl) {
			char u[POP3D_UIDL_MAX + 1];
			pop3_uidl(m->unique, u, sizeof u);
			pop3_reply(s, "+OK %u %s", cmd->num[0], u);
		} else {
			pop3_reply(s, "+OK %u %llu", cmd->num[0], m->size);
		}
		return;
	}
	size_t count;
	unsigned long long size;
	drop_stat(s, &count, &size);
	if (uidl)
		pop3_reply(s, "+OK");
	else
		pop3_reply(s, "+OK %zu messages (%llu octets)", count, size);
	stream_new(s, uidl ? POP3_STREAM_UIDL : POP3_STREAM_LIST);
}

/* The TRANSACTION commands. */
void pop3_maildrop_cmd(struct pop3_session *s, const struct pop3_command *cmd)
{
	switch (cmd->verb) {
	case POP3_STAT: {
		size_t count;
		unsigned long long size;
		drop_stat(s, &count, &size);
		pop3_reply(s, "+OK %zu %llu", count, size);
		return;
	}
	case POP3_LIST:
		cmd_listing(s, cmd, false);
		return;
	case POP3_UIDL:
		cmd_listing(s, cmd, true);
		return;
	case POP3_RETR:
		msg_start(s, cmd->num[0], false, 0);
		return;
	case POP3_TOP:
		msg_start(s, cmd->num[0], true, cmd->num[1]);
		return;
	case POP3_DELE:
		if (msg_get(s, cmd->num[0]) != NULL) {
			s->deleted[cmd->num[0] - 1] = 1;
			pop3_reply(s, "+OK Marked to be deleted");
		}
		return;
	case POP3_RSET: {
		memset(s->deleted, 0, s->nmsgs);
		size_t count;
		unsigned long long size;
		drop_stat(s, &count, &size);
		pop3_reply(s, "+OK %zu messages (%llu octets)", count, size);
		return;
	}
	case POP3_NOOP:
		pop3_reply(s, "+OK");
		return;
	default:
		pop3_reply(s, "-ERR Unknown command");
		return;
	}
}

/* QUIT in TRANSACTION: the UPDATE state. */
void pop3_maildrop_update(struct pop3_session *s)
{
	/* A message to expunge whose seen mark is in flight: wait for the
	 * marks (pop3_session_settled() comes back here), so that it is
	 * removed under the name it has then. Marks of messages kept go on
	 * after the answer; the session keeps the lock until they are done. */
	for (size_t i = 0; i < s->nmsgs && s->seen_pending > 0; i++) {
		if (s->deleted[i] && s->seen_queued[i]) {
			s->update_wait = true;
			return;
		}
	}
	s->update_wait = false;
	size_t failed = 0;
	for (size_t i = 0; i < s->nmsgs; i++) {
		if (!s->deleted[i])
			continue;
		if (maildir_expunge(s->folder_dir, &s->msgs[i]) < 0) {
			yz_log_warn("pop3: cannot expunge %s/%s: %s", s->folder_dir,
				    s->msgs[i].name, strerror(errno));
			failed++;
		} else {
			s->del_count++;
		}
	}
	if (failed > 0)
		pop3_reply(s, "-ERR [SYS/TEMP] %zu deleted messages could not be removed", failed);
	else
		pop3_reply(s, "+OK Logging out, %lu messages deleted", s->del_count);
	pop3_close(s, "QUIT");
}

/*
 * queue_msg.c: reading committed messages: load the envelope with its
 * recipient states, hand out the content as fd + offset + length, and
 * remove a finished message.
 *
 * Guarantees: a loaded message passed every check of the file format (size,
 * trailer, CRCs, bounds, queue ID = file name); a file that fails them is
 * reported with errno EBADMSG, so recovery can move it aside; the content
 * range handed out lies inside the file. Must never: open a path built from
 * an invalid queue ID, or remove the status log before the message file.
 */
#include "store/queue/queue_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/mem.h"

/* Pool block for a loaded message: small envelopes fit the first block. */
#define QUEUE_MSG_POOL_BLOCK 4096

/* pread exactly len bytes at off; -1 with errno (EBADMSG when short). */
int queue_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;
	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EBADMSG;
			return -1;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Open active/<qid> and validate its size and trailer. Returns the fd, or
 * -1 with errno and error_r set. */
static int msg_open(struct queue_store *s, const char *qid, uint64_t *content_len_r,
		    uint32_t *env_len_r, uint32_t *env_crc_r, const char **error_r)
{
	char path[QUEUE_PATH_MAX];
	if (!queue_id_valid(qid)) {
		*error_r = "invalid queue ID";
		errno = EINVAL;
		return -1;
	}
	if (queue_path(s, QUEUE_SUB_ACTIVE, qid, path, sizeof path) < 0) {
		*error_r = "queue path too long";
		return -1;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int saved = errno;
		*error_r = queue_errf(s->err, sizeof s->err, saved, "%s: open", qid);
		errno = saved;
		return -1;
	}
	struct stat st;
	unsigned char tr[QUEUE_TRAILER_LEN];
	const char *why = NULL;
	int saved = 0;
	if (fstat(fd, &st) < 0) {
		saved = errno;
		why = "fstat";
	} else if (!S_ISREG(st.st_mode) || st.st_size < (off_t)QUEUE_TRAILER_LEN) {
		saved = EBADMSG;
		why = "not a queue file (too short)";
	} else if (queue_pread_full(fd, tr, sizeof tr, (uint64_t)st.st_size - QUEUE_TRAILER_LEN) < 0) {
		saved = errno;
		why = "read trailer";
	} else if (queue_trailer_decode(tr, content_len_r, env_len_r, env_crc_r) < 0) {
		saved = EBADMSG;
		why = "bad trailer";
	} else if ((uint64_t)st.st_size !=
		   *content_len_r + *env_len_r + QUEUE_TRAILER_LEN) {
		saved = EBADMSG;
		why = "file size does not match its trailer";
	}
	if (why != NULL) {
		close(fd);
		*error_r = queue_errf(s->err, sizeof s->err, saved == EBADMSG ? 0 : saved,
				      "%s: %s", qid, why);
		errno = saved;
		return -1;
	}
	return fd;
}

int queue_msg_load(struct queue_store *s, const char *qid, struct queue_msg **msg_r,
		   const char **error_r)
{
	struct queue_seg_loc *l = queue_id_valid(qid) ? queue_seg_find(s, qid) : NULL;
	if (l != NULL)
		return queue_seg_load(s, l, msg_r, error_r);
	uint64_t content_len;
	uint32_t env_len, env_crc;
	int fd = msg_open(s, qid, &content_len, &env_len, &env_crc, error_r);
	if (fd < 0)
		return -1;
	unsigned char *env = yz_malloc(env_len);
	int r = queue_pread_full(fd, env, env_len, content_len);
	int saved = errno;
	close(fd);
	if (r < 0) {
		free(env);
		*error_r = queue_errf(s->err, sizeof s->err, saved, "%s: read envelope", qid);
		errno = saved;
		return -1;
	}
	if (queue_crc32c(0, env, env_len) != env_crc) {
		free(env);
		*error_r = queue_errf(s->err, sizeof s->err, 0, "%s: envelope checksum mismatch", qid);
		errno = EBADMSG;
		return -1;
	}
	struct queue_msg *m = yz_calloc(1, sizeof *m);
	m->pool = yz_pool_new(QUEUE_MSG_POOL_BLOCK);
	m->content_len = content_len;
	const char *why;
	char file_qid[QUEUE_ID_MAX];
	r = queue_envelope_decode(m->pool, env, env_len, file_qid, &m->env, &why);
	free(env);
	if (r < 0 || strcmp(file_qid, qid) != 0) {
		*error_r = queue_errf(s->err, sizeof s->err, 0, "%s: %s", qid,
				      r < 0 ? why : "envelope names another queue ID");
		queue_msg_free(&m);
		errno = EBADMSG;
		return -1;
	}
	memcpy(m->qid, qid, QUEUE_ID_MAX);
	if (queue_status_replay(s, qid, m->pool, &m->env, error_r) < 0) {
		saved = errno;
		queue_msg_free(&m);
		errno = saved;
		return -1;
	}
	*msg_r = m;
	return 0;
}

void queue_msg_free(struct queue_msg **mp)
{
	struct queue_msg *m = *mp;
	if (m == NULL)
		return;
	yz_pool_free(&m->pool);
	free(m);
	*mp = NULL;
}

bool queue_msg_done(const struct queue_msg *msg)
{
	for (size_t i = 0; i < msg->env.rcpt_count; i++) {
		enum queue_rcpt_state st = msg->env.rcpts[i].state;
		if (st != QUEUE_RCPT_DELIVERED && st != QUEUE_RCPT_FAILED)
			return false;
	}
	return true;
}

int queue_msg_content_fd(struct queue_store *s, const char *qid, uint64_t *offset_r,
			 uint64_t *len_r, const char **error_r)
{
	struct queue_seg_loc *l = queue_id_valid(qid) ? queue_seg_find(s, qid) : NULL;
	if (l != NULL)
		return queue_seg_content_fd(s, l, offset_r, len_r, error_r);
	uint64_t content_len;
	uint32_t env_len, env_crc;
	int fd = msg_open(s, qid, &content_len, &env_len, &env_crc, error_r);
	if (fd < 0)
		return -1;
	*offset_r = 0;
	*len_r = content_len;
	return fd;
}

int queue_msg_remove(struct queue_store *s, const char *qid, const char **error_r)
{
	char path[QUEUE_PATH_MAX];
	if (!queue_id_valid(qid)) {
		*error_r = "invalid queue ID";
		errno = EINVAL;
		return -1;
	}
	struct queue_seg_loc *l = queue_seg_find(s, qid);
	if (l != NULL)
		return queue_seg_remove(s, l, error_r);
	/* The message first: a status log left behind is an orphan that
	 * recovery removes; the other order could resurrect a message with its
	 * recipients' states forgotten. */
	if (queue_path(s, QUEUE_SUB_ACTIVE, qid, path, sizeof path) < 0) {
		*error_r = queue_errf(s->err, sizeof s->err, errno, "%s: remove", qid);
		return -1;
	}
	/* Into free/ for reuse when there is room (queue_recycle.c); tests with
	 * fault-injection hooks see plain unlinks. */
	bool recycled = s->hooks.unlink == NULL && queue_recycle_put(s, qid) == 0;
	if (!recycled && queue_io_unlink(s, path) < 0 && errno != ENOENT) {
		*error_r = queue_errf(s->err, sizeof s->err, errno, "%s: remove", qid);
		return -1;
	}
	if (queue_path(s, QUEUE_SUB_STATUS, qid, path, sizeof path) < 0 ||
	    (queue_io_unlink(s, path) < 0 && errno != ENOENT)) {
		*error_r = queue_errf(s->err, sizeof s->err, errno, "%s: remove status log", qid);
		return -1;
	}
	return 0;
}

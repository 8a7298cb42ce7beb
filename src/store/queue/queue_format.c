/*
 * queue_format.c: the on-disk formats of the queue store: the envelope block
 * and trailer of a message file, and the records of a status log, plus the
 * CRC-32C that guards them. Pure functions: no I/O.
 *
 * Guarantees: an encoded envelope decodes to the same envelope; the decoders
 * accept only bytes that respect every bound of queue_store.h (lengths,
 * counts, no control characters, known enum values) and never read outside
 * the bytes they are given. Must never: trust a length read from disk before
 * checking it against both its bound and the bytes left.
 */
#include "store/queue/queue_private.h"

#include <string.h>

#include "lib/mem.h"

/* CRC-32C, bitwise: the portable fallback. */
static uint32_t crc32c_bitwise(uint32_t crc, const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
	}
	return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* CRC-32C with the SSE 4.2 instruction: segment records checksum their
 * whole content, so this runs over every byte of every small message. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const unsigned char *p,
								size_t len)
{
	uint64_t c = crc;
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (len > 0) {
		c32 = __builtin_ia32_crc32qi(c32, *p++);
		len--;
	}
	return c32;
}
#endif

uint32_t queue_crc32c(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	if (__builtin_cpu_supports("sse4.2"))
		return ~crc32c_sse42(~crc, p, len);
#endif
	return ~crc32c_bitwise(~crc, p, len);
}

/* Little-endian stores. */
static void put_u16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

void queue_put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* Little-endian loads. */
static uint16_t get_u16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t queue_get_u32(const unsigned char *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get_u64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* true if the n bytes hold no control character (C0, DEL) and no NUL. */
static bool text_clean(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

/* One envelope string: its bound and the error text when it is out of it. */
struct env_str {
	size_t max;
	const char *error;
};

/* The six envelope strings in their on-disk order. */
static const struct env_str env_strs[6] = {
	{ QUEUE_ADDR_MAX, "sender too long or invalid" },
	{ QUEUE_ENVID_MAX, "ENVID too long or invalid" },
	{ QUEUE_HOST_MAX, "client name too long or invalid" },
	{ QUEUE_CLIENT_ADDR_MAX, "client address too long or invalid" },
	{ QUEUE_HOST_MAX, "HELO name too long or invalid" },
	{ QUEUE_AUTH_MAX, "auth user too long or invalid" },
};

/* The envelope's six strings in on-disk order (NULL read as ""). */
static void env_get_strs(const struct queue_envelope *env, const char *out[6])
{
	const char *v[6] = { env->sender, env->envid, env->client_name,
			     env->client_addr, env->helo, env->auth_user };
	for (int i = 0; i < 6; i++)
		out[i] = v[i] != NULL ? v[i] : "";
}

/* true if s is at most max bytes, non-empty when required, and clean. */
static bool str_ok(const char *s, size_t max, bool required)
{
	size_t n = strnlen(s, max + 1);
	return n <= max && (!required || n > 0) && text_clean(s, n);
}

int queue_envelope_check(const struct queue_envelope *env, const char **error_r)
{
	const char *strs[6];
	env_get_strs(env, strs);
	for (int i = 0; i < 6; i++) {
		if (!str_ok(strs[i], env_strs[i].max, false)) {
			*error_r = env_strs[i].error;
			return -1;
		}
	}
	if ((int)env->body < QUEUE_BODY_NONE || env->body > QUEUE_BODY_BINARYMIME ||
	    (int)env->ret < QUEUE_RET_NONE || env->ret > QUEUE_RET_HDRS) {
		*error_r = "invalid BODY or RET";
		return -1;
	}
	if (env->rcpt_count > QUEUE_RCPT_MAX) {
		*error_r = "too many recipients";
		return -1;
	}
	if (env->rcpt_count > 0 && env->rcpts == NULL) {
		*error_r = "recipients missing";
		return -1;
	}
	for (size_t i = 0; i < env->rcpt_count; i++) {
		const struct queue_rcpt *r = &env->rcpts[i];
		if (r->addr == NULL || !str_ok(r->addr, QUEUE_ADDR_MAX, true)) {
			*error_r = "recipient address empty, too long or invalid";
			return -1;
		}
		if (r->orcpt != NULL && !str_ok(r->orcpt, QUEUE_ORCPT_MAX, false)) {
			*error_r = "ORCPT too long or invalid";
			return -1;
		}
		if ((r->notify & ~QUEUE_NOTIFY_ALL) != 0) {
			*error_r = "invalid NOTIFY";
			return -1;
		}
	}
	return 0;
}

/* Append a u16-length-prefixed string (already checked to fit). */
static int buf_put_str(struct yz_buf *out, const char *s)
{
	size_t n = strlen(s);
	unsigned char len[2];
	put_u16(len, (uint16_t)n);
	if (yz_buf_append(out, len, 2) < 0 || yz_buf_append(out, s, n) < 0)
		return -1;
	return 0;
}

int queue_envelope_encode(struct yz_buf *out, const char *qid, const struct queue_envelope *env)
{
	unsigned char fixed[4 + 2 + QUEUE_ID_LEN + 8 + 4];
	unsigned char *p = fixed;
	memcpy(p, QUEUE_ENV_MAGIC, 4);
	put_u16(p + 4, QUEUE_FORMAT_VERSION);
	memcpy(p + 6, qid, QUEUE_ID_LEN);
	put_u64(p + 6 + QUEUE_ID_LEN, (uint64_t)env->arrival);
	p += 6 + QUEUE_ID_LEN + 8;
	p[0] = env->smtputf8 ? 1 : 0;
	p[1] = (unsigned char)env->body;
	p[2] = (unsigned char)env->ret;
	p[3] = 0;
	if (yz_buf_append(out, fixed, sizeof fixed) < 0)
		return -1;
	const char *strs[6];
	env_get_strs(env, strs);
	for (int i = 0; i < 6; i++) {
		if (buf_put_str(out, strs[i]) < 0)
			return -1;
	}
	unsigned char cnt[4];
	queue_put_u32(cnt, (uint32_t)env->rcpt_count);
	if (yz_buf_append(out, cnt, 4) < 0)
		return -1;
	for (size_t i = 0; i < env->rcpt_count; i++) {
		const struct queue_rcpt *r = &env->rcpts[i];
		unsigned char notify = (unsigned char)r->notify;
		if (buf_put_str(out, r->addr) < 0 ||
		    buf_put_str(out, r->orcpt != NULL ? r->orcpt : "") < 0 ||
		    yz_buf_append(out, &notify, 1) < 0)
			return -1;
	}
	return 0;
}

/* A bounded reader over the bytes of an envelope block. */
struct rd {
	const unsigned char *p;
	size_t left;
};

/* Take n bytes; NULL if fewer are left. */
static const unsigned char *rd_take(struct rd *r, size_t n)
{
	if (n > r->left)
		return NULL;
	const unsigned char *p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

/* Read a u16-prefixed string of at most max bytes into the pool. */
static const char *rd_str(struct rd *r, struct yz_pool *pool, size_t max, bool required)
{
	const unsigned char *lp = rd_take(r, 2);
	if (lp == NULL)
		return NULL;
	size_t n = get_u16(lp);
	if (n > max || (required && n == 0))
		return NULL;
	const unsigned char *s = rd_take(r, n);
	if (s == NULL || !text_clean((const char *)s, n))
		return NULL;
	return yz_pool_strndup(pool, (const char *)s, n);
}

/* Test whether s is a queue ID without reading past a NUL. */
static bool qid_bytes_valid(const unsigned char *s)
{
	char tmp[QUEUE_ID_MAX];
	memcpy(tmp, s, QUEUE_ID_LEN);
	tmp[QUEUE_ID_LEN] = '\0';
	return queue_id_valid(tmp);
}

int queue_envelope_decode(struct yz_pool *pool, const void *data, size_t len,
			  char qid_r[QUEUE_ID_MAX], struct queue_envelope *env_r,
			  const char **error_r)
{
	struct rd r = { data, len };
	memset(env_r, 0, sizeof *env_r);
	const unsigned char *h = rd_take(&r, 4 + 2 + QUEUE_ID_LEN + 8 + 4);
	if (h == NULL || memcmp(h, QUEUE_ENV_MAGIC, 4) != 0) {
		*error_r = "envelope: bad magic";
		return -1;
	}
	if (get_u16(h + 4) != QUEUE_FORMAT_VERSION) {
		*error_r = "envelope: unknown version";
		return -1;
	}
	if (!qid_bytes_valid(h + 6)) {
		*error_r = "envelope: bad queue ID";
		return -1;
	}
	memcpy(qid_r, h + 6, QUEUE_ID_LEN);
	qid_r[QUEUE_ID_LEN] = '\0';
	env_r->arrival = (int64_t)get_u64(h + 6 + QUEUE_ID_LEN);
	const unsigned char *f = h + 6 + QUEUE_ID_LEN + 8;
	if (f[0] > 1 || f[1] > QUEUE_BODY_BINARYMIME || f[2] > QUEUE_RET_HDRS || f[3] != 0) {
		*error_r = "envelope: bad flags";
		return -1;
	}
	env_r->smtputf8 = f[0] == 1;
	env_r->body = (enum queue_body)f[1];
	env_r->ret = (enum queue_ret)f[2];
	const char *strs[6];
	for (int i = 0; i < 6; i++) {
		strs[i] = rd_str(&r, pool, env_strs[i].max, false);
		if (strs[i] == NULL) {
			*error_r = "envelope: bad string field";
			return -1;
		}
	}
	env_r->sender = strs[0];
	env_r->envid = strs[1];
	env_r->client_name = strs[2];
	env_r->client_addr = strs[3];
	env_r->helo = strs[4];
	env_r->auth_user = strs[5];
	const unsigned char *cp = rd_take(&r, 4);
	uint32_t count = cp != NULL ? queue_get_u32(cp) : 0;
	/* The count is checked against the bound and against the bytes left
	 * (each recipient takes at least 6 bytes) before anything is allocated. */
	if (cp == NULL || count > QUEUE_RCPT_MAX || (size_t)count * 6 > r.left) {
		*error_r = "envelope: bad recipient count";
		return -1;
	}
	env_r->rcpt_count = count;
	env_r->rcpts = count > 0 ? yz_pool_alloc(pool, count * sizeof *env_r->rcpts) : NULL;
	for (uint32_t i = 0; i < count; i++) {
		struct queue_rcpt *rc = &env_r->rcpts[i];
		rc->addr = rd_str(&r, pool, QUEUE_ADDR_MAX, true);
		rc->orcpt = rc->addr != NULL ? rd_str(&r, pool, QUEUE_ORCPT_MAX, false) : NULL;
		const unsigned char *np = rc->orcpt != NULL ? rd_take(&r, 1) : NULL;
		if (np == NULL || (*np & ~QUEUE_NOTIFY_ALL) != 0) {
			*error_r = "envelope: bad recipient";
			return -1;
		}
		rc->notify = *np;
		rc->state = QUEUE_RCPT_PENDING;
		rc->status = "";
	}
	if (r.left != 0) {
		*error_r = "envelope: trailing bytes";
		return -1;
	}
	return 0;
}

void queue_trailer_encode(unsigned char out[QUEUE_TRAILER_LEN], uint64_t content_len,
			  uint32_t env_len, uint32_t env_crc)
{
	memset(out, 0, QUEUE_TRAILER_LEN);
	memcpy(out, QUEUE_TRAILER_MAGIC, 4);
	put_u16(out + 4, QUEUE_FORMAT_VERSION);
	put_u64(out + 8, content_len);
	queue_put_u32(out + 16, env_len);
	queue_put_u32(out + 20, env_crc);
	/* bytes 24..27 reserved (zero) */
	queue_put_u32(out + 28, queue_crc32c(0, out, 28));
}

int queue_trailer_decode(const unsigned char in[QUEUE_TRAILER_LEN], uint64_t *content_len_r,
			 uint32_t *env_len_r, uint32_t *env_crc_r)
{
	if (memcmp(in, QUEUE_TRAILER_MAGIC, 4) != 0 ||
	    get_u16(in + 4) != QUEUE_FORMAT_VERSION || get_u16(in + 6) != 0 ||
	    queue_get_u32(in + 24) != 0 || queue_get_u32(in + 28) != queue_crc32c(0, in, 28))
		return -1;
	*content_len_r = get_u64(in + 8);
	*env_len_r = queue_get_u32(in + 16);
	*env_crc_r = queue_get_u32(in + 20);
	if (*content_len_r > QUEUE_CONTENT_MAX || *env_len_r > QUEUE_ENVELOPE_MAX ||
	    *env_len_r < QUEUE_ENV_FIXED)
		return -1;
	return 0;
}

/* Length of the status text to store: at most the bound, not splitting a
 * UTF-8 sequence. */
static size_t status_text_len(const char *s)
{
	size_t n = strnlen(s, QUEUE_STATUS_TEXT_MAX + 1);
	if (n <= QUEUE_STATUS_TEXT_MAX)
		return n;
	n = QUEUE_STATUS_TEXT_MAX;
	/* s[n] is the first byte cut off; back up over the lead bytes of a
	 * sequence that it continues. */
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

size_t queue_status_encode(unsigned char out[QUEUE_STATUS_REC_MAX], const struct queue_rcpt_update *u)
{
	const char *text = u->status != NULL ? u->status : "";
	size_t tlen = status_text_len(text);
	size_t body = QUEUE_STATUS_BODY_MIN + tlen;
	unsigned char *b = out + QUEUE_STATUS_HDR_LEN;
	put_u16(out + 4, (uint16_t)body);
	b[0] = QUEUE_FORMAT_VERSION;
	queue_put_u32(b + 1, u->index);
	b[5] = (unsigned char)u->state;
	b[6] = (unsigned char)u->flags;
	queue_put_u32(b + 7, u->attempts);
	put_u64(b + 11, (uint64_t)u->next_retry);
	put_u16(b + 19, (uint16_t)tlen);
	for (size_t i = 0; i < tlen; i++) {
		unsigned char c = (unsigned char)text[i];
		b[21 + i] = (c < 0x20 || c == 0x7f) ? ' ' : c;
	}
	queue_put_u32(out, queue_crc32c(0, out + 4, 2 + body));
	return QUEUE_STATUS_HDR_LEN + body;
}

long queue_status_decode(const void *data, size_t len, struct queue_status_rec *rec_r)
{
	const unsigned char *p = data;
	if (len < QUEUE_STATUS_HDR_LEN)
		return 0;
	size_t body = get_u16(p + 4);
	if (body < QUEUE_STATUS_BODY_MIN || body > QUEUE_STATUS_BODY_MAX)
		return -1;
	if (len < QUEUE_STATUS_HDR_LEN + body)
		return 0;
	if (queue_get_u32(p) != queue_crc32c(0, p + 4, 2 + body))
		return -1;
	const unsigned char *b = p + QUEUE_STATUS_HDR_LEN;
	size_t tlen = get_u16(b + 19);
	if (b[0] != QUEUE_FORMAT_VERSION || b[5] > QUEUE_RCPT_FAILED ||
	    (b[6] & ~QUEUE_RCPT_F_ALL) != 0 || QUEUE_STATUS_BODY_MIN + tlen != body ||
	    !text_clean((const char *)b + 21, tlen))
		return -1;
	rec_r->index = queue_get_u32(b + 1);
	rec_r->state = (enum queue_rcpt_state)b[5];
	rec_r->flags = b[6];
	rec_r->attempts = queue_get_u32(b + 7);
	rec_r->next_retry = (int64_t)get_u64(b + 11);
	rec_r->text = (const char *)b + 21;
	rec_r->text_len = tlen;
	return (long)(QUEUE_STATUS_HDR_LEN + body);
}

int queue_status_apply(struct yz_pool *pool, struct queue_envelope *env,
		       const struct queue_status_rec *rec)
{
	if (rec->index >= env->rcpt_count)
		return -1;
	struct queue_rcpt *r = &env->rcpts[rec->index];
	r->state = rec->state;
	r->flags = rec->flags;
	r->attempts = rec->attempts;
	r->next_retry = rec->next_retry;
	/* Keep the earlier copy when the text did not change: a recipient
	 * deferred many times with the same reply costs its text once. */
	if (r->status == NULL || strlen(r->status) != rec->text_len ||
	    memcmp(r->status, rec->text, rec->text_len) != 0)
		r->status = yz_pool_strndup(pool, rec->text, rec->text_len);
	return 0;
}

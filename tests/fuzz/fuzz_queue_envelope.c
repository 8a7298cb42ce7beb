/*
 * fuzz_queue_envelope.c: libFuzzer target for the queue store's on-disk
 * decoders (src/store/queue/queue_format.c): the trailer, the envelope block
 * and the status log records, as recovery meets them in files a crash or a
 * bad disk may have mangled. The input's first byte selects how the rest is
 * split: trailer + envelope + status log, mirroring queue_msg_load().
 * A decoded envelope is re-encoded and must decode to the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/pool.h"
#include "store/queue/queue_private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t split = (size_t)data[0] * 4; /* bytes given to the envelope */
	data++;
	size--;

	if (size >= QUEUE_TRAILER_LEN) {
		uint64_t clen;
		uint32_t elen, ecrc;
		(void)queue_trailer_decode(data, &clen, &elen, &ecrc);
	}

	struct yz_pool *pool = yz_pool_new(4096);
	size_t env_len = split < size ? split : size;
	struct queue_envelope env;
	char qid[QUEUE_ID_MAX];
	const char *err;
	if (queue_envelope_decode(pool, data, env_len, qid, &env, &err) == 0) {
		/* Round trip: what decodes must check and re-encode identically. */
		if (queue_envelope_check(&env, &err) != 0)
			abort();
		struct yz_buf out;
		yz_buf_init(&out, QUEUE_ENVELOPE_MAX);
		if (queue_envelope_encode(&out, qid, &env) != 0 || yz_buf_len(&out) != env_len ||
		    memcmp(yz_buf_data(&out), data, env_len) != 0)
			abort();
		yz_buf_free(&out);
	} else {
		memset(&env, 0, sizeof env);
	}

	/* The rest is a status log, replayed as queue_status_replay() does. */
	const uint8_t *p = data + env_len;
	size_t left = size - env_len;
	for (;;) {
		struct queue_status_rec rec;
		long n = queue_status_decode(p, left, &rec);
		if (n <= 0)
			break;
		if ((size_t)n > left)
			abort();
		(void)queue_status_apply(pool, &env, &rec);
		p += n;
		left -= (size_t)n;
	}
	yz_pool_free(&pool);
	return 0;
}

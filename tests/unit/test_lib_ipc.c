/*
 * test_lib_ipc.c: the IPC codec (ipc.h) and connections (ipc_conn.h):
 * round trips of every field type, truncation at every byte, limits just
 * at and just over, malformed frames, descriptors over a real socketpair,
 * and connections on the event loop (10,000 requests each way, delivery
 * one byte at a time, timeouts, close with pending requests).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/ipc.h"
#include "lib/ipc_conn.h"
#include "lib/loop.h"
#include "lib/mem.h"
#include "lib/pool.h"

/* Message types of these tests (the real ones are in lib/ipc_msg.h). */
enum { T_PING = 1, T_PONG = 2, T_NOTE = 3, T_FD = 4, T_SILENT = 5, T_BAD = 6 };

static bool fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* ---- codec ---- */

static void test_roundtrip_all_types(void **state)
{
	struct yz_ipc_msg m;
	struct yz_slice f;
	int p[2];
	assert_int_equal(pipe(p), 0);

	yz_ipc_msg_init(&m, 0xBEEF, 0xDEADBEEF);
	assert_int_equal(yz_ipc_put_u32(&m, 0), 0);
	assert_int_equal(yz_ipc_put_u32(&m, UINT32_MAX), 0);
	assert_int_equal(yz_ipc_put_u64(&m, 0x0102030405060708ULL), 0);
	assert_int_equal(yz_ipc_put_i64(&m, -42), 0);
	assert_int_equal(yz_ipc_put_i64(&m, INT64_MIN), 0);
	assert_int_equal(yz_ipc_put_bool(&m, true), 0);
	assert_int_equal(yz_ipc_put_bool(&m, false), 0);
	assert_int_equal(yz_ipc_put_str(&m, "hello"), 0);
	assert_int_equal(yz_ipc_put_str(&m, ""), 0);
	assert_int_equal(yz_ipc_put_slice(&m, YZ_SLICE_LIT("slice")), 0);
	assert_int_equal(yz_ipc_put_bytes(&m, "a\0b", 3), 0);
	assert_int_equal(yz_ipc_put_bytes(&m, NULL, 0), 0);
	assert_int_equal(yz_ipc_put_fd(&m, p[1]), 0);
	assert_int_equal(yz_ipc_msg_frame(&m, &f), 0);

	struct yz_ipc_hdr hdr;
	assert_int_equal(yz_ipc_frame_parse(f.p, f.len, &hdr), YZ_IPC_OK);
	assert_int_equal(hdr.version, YZ_IPC_VERSION);
	assert_int_equal(hdr.type, 0xBEEF);
	assert_int_equal(hdr.reqid, 0xDEADBEEF);
	assert_int_equal(hdr.len, f.len - YZ_IPC_HDR_SIZE);
	/* network byte order on the wire */
	assert_int_equal((unsigned char)f.p[0], 0);
	assert_int_equal((unsigned char)f.p[1], 1);
	assert_int_equal((unsigned char)f.p[2], 0xBE);

	size_t nfds;
	assert_int_equal(yz_ipc_payload_scan(f.p + YZ_IPC_HDR_SIZE, hdr.len, &nfds), 0);
	assert_int_equal(nfds, 1);

	struct yz_ipc_reader r;
	yz_ipc_reader_init(&r, f.p + YZ_IPC_HDR_SIZE, hdr.len, m.fds, m.nfds);
	m.nfds = 0; /* the reader owns it now */
	uint32_t u32;
	uint64_t u64;
	int64_t i64;
	bool b;
	struct yz_slice s;
	int fd;
	assert_int_equal(yz_ipc_get_u32(&r, &u32), 0);
	assert_int_equal(u32, 0);
	assert_int_equal(yz_ipc_get_u32(&r, &u32), 0);
	assert_int_equal(u32, UINT32_MAX);
	assert_int_equal(yz_ipc_get_u64(&r, &u64), 0);
	assert_true(u64 == 0x0102030405060708ULL);
	assert_int_equal(yz_ipc_get_i64(&r, &i64), 0);
	assert_true(i64 == -42);
	assert_int_equal(yz_ipc_get_i64(&r, &i64), 0);
	assert_true(i64 == INT64_MIN);
	assert_int_equal(yz_ipc_get_bool(&r, &b), 0);
	assert_true(b);
	assert_int_equal(yz_ipc_get_bool(&r, &b), 0);
	assert_false(b);
	assert_int_equal(yz_ipc_get_str(&r, 5, &s), 0);
	assert_true(yz_slice_eq_str(s, "hello"));
	assert_int_equal(yz_ipc_get_str(&r, 0, &s), 0);
	assert_int_equal(s.len, 0);
	assert_int_equal(yz_ipc_get_str(&r, 100, &s), 0);
	assert_true(yz_slice_eq_str(s, "slice"));
	assert_int_equal(yz_ipc_get_bytes(&r, 3, &s), 0);
	assert_int_equal(s.len, 3);
	assert_memory_equal(s.p, "a\0b", 3);
	assert_int_equal(yz_ipc_get_bytes(&r, 0, &s), 0);
	assert_int_equal(s.len, 0);
	assert_int_equal(yz_ipc_get_fd(&r, &fd), 0);
	assert_int_equal(fd, p[1]);
	assert_int_equal(yz_ipc_end(&r), 0);
	yz_ipc_reader_free(&r);
	assert_true(fd_is_open(fd)); /* taken: not closed by the reader */
	close(fd);
	close(p[0]);
	yz_ipc_msg_free(&m);
}

/* A frame with one of each field, for truncation tests. */
static void build_rich(struct yz_ipc_msg *m)
{
	yz_ipc_msg_init(m, T_NOTE, 7);
	yz_ipc_put_u32(m, 1);
	yz_ipc_put_u64(m, 2);
	yz_ipc_put_i64(m, -3);
	yz_ipc_put_bool(m, true);
	yz_ipc_put_str(m, "four");
	yz_ipc_put_bytes(m, "\0five", 5);
}

/* Decode build_rich's payload; 0 only if everything is there. */
static int decode_rich(const char *p, size_t len)
{
	struct yz_ipc_reader r;
	uint32_t u32;
	uint64_t u64;
	int64_t i64;
	bool b;
	struct yz_slice s1, s2;
	yz_ipc_reader_init(&r, p, len, NULL, 0);
	yz_ipc_get_u32(&r, &u32);
	yz_ipc_get_u64(&r, &u64);
	yz_ipc_get_i64(&r, &i64);
	yz_ipc_get_bool(&r, &b);
	yz_ipc_get_str(&r, 4, &s1);
	yz_ipc_get_bytes(&r, 5, &s2);
	int ret = yz_ipc_end(&r);
	yz_ipc_reader_free(&r);
	if (ret == 0) {
		assert_int_equal(u32, 1);
		assert_true(u64 == 2 && i64 == -3 && b);
		assert_true(yz_slice_eq_str(s1, "four"));
		assert_int_equal(s2.len, 5);
	}
	return ret;
}

static void test_truncated_every_offset(void **state)
{
	struct yz_ipc_msg m;
	struct yz_slice f;
	struct yz_ipc_hdr hdr;
	build_rich(&m);
	assert_int_equal(yz_ipc_msg_frame(&m, &f), 0);
	/* Byte-at-a-time: a copy that grows by one byte each step. */
	char *copy = yz_malloc(f.len + 1);
	for (size_t i = 0; i < f.len; i++) {
		memcpy(copy, f.p, i);
		assert_int_equal(yz_ipc_frame_parse(copy, i, &hdr), YZ_IPC_AGAIN);
	}
	memcpy(copy, f.p, f.len);
	assert_int_equal(yz_ipc_frame_parse(copy, f.len, &hdr), YZ_IPC_OK);
	/* Bytes of a next frame after it do not matter. */
	copy[f.len] = 0x7f;
	assert_int_equal(yz_ipc_frame_parse(copy, f.len + 1, &hdr), YZ_IPC_OK);

	/* The payload cut at every offset never decodes, never overreads. */
	const char *pl = f.p + YZ_IPC_HDR_SIZE;
	size_t n;
	for (size_t i = 0; i < hdr.len; i++) {
		char *cut = yz_memdup(pl, i); /* exact size: valgrind sees overreads */
		assert_int_equal(decode_rich(cut, i), -1);
		/* the scan accepts exactly the cuts at field boundaries */
		if (yz_ipc_payload_scan(cut, i, &n) == 0)
			assert_int_equal(n, 0);
		free(cut);
	}
	assert_int_equal(decode_rich(pl, hdr.len), 0);
	free(copy);
	yz_ipc_msg_free(&m);
}

/* Write a raw header. */
static void raw_hdr(unsigned char *h, uint16_t version, uint16_t type, uint32_t len, uint32_t id)
{
	h[0] = (unsigned char)(version >> 8);
	h[1] = (unsigned char)version;
	h[2] = (unsigned char)(type >> 8);
	h[3] = (unsigned char)type;
	h[4] = (unsigned char)(len >> 24);
	h[5] = (unsigned char)(len >> 16);
	h[6] = (unsigned char)(len >> 8);
	h[7] = (unsigned char)len;
	h[8] = (unsigned char)(id >> 24);
	h[9] = (unsigned char)(id >> 16);
	h[10] = (unsigned char)(id >> 8);
	h[11] = (unsigned char)id;
}

static void test_wrong_version(void **state)
{
	unsigned char h[YZ_IPC_HDR_SIZE];
	struct yz_ipc_hdr hdr;
	raw_hdr(h, 2, T_PING, 0, 0);
	assert_int_equal(yz_ipc_frame_parse((char *)h, 0, &hdr), YZ_IPC_AGAIN);
	assert_int_equal(yz_ipc_frame_parse((char *)h, 1, &hdr), YZ_IPC_AGAIN);
	for (size_t i = 2; i <= sizeof h; i++)
		assert_int_equal(yz_ipc_frame_parse((char *)h, i, &hdr), YZ_IPC_INVALID);
	raw_hdr(h, 0, T_PING, 0, 0);
	assert_int_equal(yz_ipc_frame_parse((char *)h, sizeof h, &hdr), YZ_IPC_INVALID);
	raw_hdr(h, YZ_IPC_VERSION, T_PING, 0, 0);
	assert_int_equal(yz_ipc_frame_parse((char *)h, sizeof h, &hdr), YZ_IPC_OK);
	assert_int_equal(hdr.len, 0);
}

static void test_oversized_header(void **state)
{
	unsigned char h[YZ_IPC_HDR_SIZE];
	struct yz_ipc_hdr hdr;
	/* at the limit: a valid header waiting for its payload */
	raw_hdr(h, YZ_IPC_VERSION, T_PING, (uint32_t)YZ_IPC_FRAME_MAX, 0);
	assert_int_equal(yz_ipc_hdr_parse((char *)h, sizeof h, &hdr), YZ_IPC_OK);
	assert_int_equal(yz_ipc_frame_parse((char *)h, sizeof h, &hdr), YZ_IPC_AGAIN);
	/* one over: invalid as soon as the length is there */
	raw_hdr(h, YZ_IPC_VERSION, T_PING, (uint32_t)YZ_IPC_FRAME_MAX + 1, 0);
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(yz_ipc_frame_parse((char *)h, i, &hdr), YZ_IPC_AGAIN);
	for (size_t i = 8; i <= sizeof h; i++)
		assert_int_equal(yz_ipc_frame_parse((char *)h, i, &hdr), YZ_IPC_INVALID);
	raw_hdr(h, YZ_IPC_VERSION, T_PING, UINT32_MAX, 0);
	assert_int_equal(yz_ipc_frame_parse((char *)h, sizeof h, &hdr), YZ_IPC_INVALID);
}

static void test_writer_frame_max(void **state)
{
	struct yz_ipc_msg m;
	struct yz_slice f;
	struct yz_ipc_hdr hdr;
	size_t n = YZ_IPC_FRAME_MAX - 5; /* tag + length + n == the cap */
	char *big = yz_calloc(1, n + 1);

	yz_ipc_msg_init(&m, T_NOTE, 0);
	assert_int_equal(yz_ipc_put_bytes(&m, big, n), 0);
	assert_int_equal(yz_ipc_msg_frame(&m, &f), 0);
	assert_int_equal(f.len, YZ_IPC_HDR_SIZE + YZ_IPC_FRAME_MAX);
	assert_int_equal(yz_ipc_frame_parse(f.p, f.len, &hdr), YZ_IPC_OK);
	assert_int_equal(hdr.len, YZ_IPC_FRAME_MAX);
	/* one byte more does not fit; the message is failed for good */
	assert_int_equal(yz_ipc_put_bool(&m, true), -1);
	assert_int_equal(yz_ipc_msg_frame(&m, &f), -1);
	assert_int_equal(yz_ipc_put_u32(&m, 1), -1);
	yz_ipc_msg_free(&m);

	yz_ipc_msg_init(&m, T_NOTE, 0);
	assert_int_equal(yz_ipc_put_bytes(&m, big, n + 1), -1);
	assert_int_equal(yz_ipc_msg_frame(&m, &f), -1);
	yz_ipc_msg_free(&m);
	free(big);

	/* Too many descriptors: the extra one is closed, not leaked. */
	yz_ipc_msg_init(&m, T_FD, 0);
	int p[2];
	assert_int_equal(pipe(p), 0);
	for (size_t i = 0; i < YZ_IPC_FDS_MAX; i++)
		assert_int_equal(yz_ipc_put_fd(&m, dup(p[0])), 0);
	int extra = dup(p[0]);
	assert_int_equal(yz_ipc_put_fd(&m, extra), -1);
	assert_false(fd_is_open(extra));
	assert_int_equal(yz_ipc_msg_frame(&m, &f), -1);
	int first = m.fds[0];
	yz_ipc_msg_free(&m); /* closes all sixteen */
	assert_false(fd_is_open(first));
	assert_int_equal(yz_ipc_put_fd(&m, -1), -1);
	close(p[0]);
	close(p[1]);

	/* slices with NUL cannot be strings */
	yz_ipc_msg_init(&m, T_NOTE, 0);
	assert_int_equal(yz_ipc_put_slice(&m, (struct yz_slice){ "a\0b", 3 }), -1);
	assert_int_equal(yz_ipc_msg_frame(&m, &f), -1);
	yz_ipc_msg_free(&m);
}

static void test_wrong_tag_and_sticky(void **state)
{
	struct yz_ipc_msg m;
	struct yz_slice f;
	yz_ipc_msg_init(&m, T_NOTE, 0);
	yz_ipc_put_u32(&m, 5);
	yz_ipc_put_u32(&m, 6);
	assert_int_equal(yz_ipc_msg_frame(&m, &f), 0);

	struct yz_ipc_reader r;
	uint64_t u64 = 99;
	uint32_t u32 = 99;
	yz_ipc_reader_init(&r, f.p + YZ_IPC_HDR_SIZE, f.len - YZ_IPC_HDR_SIZE, NULL, 0);
	assert_int_equal(yz_ipc_get_u64(&r, &u64), -1);
	assert_true(u64 == 0);
	assert_true(yz_ipc_reader_failed(&r));
	/* sticky: the right getter fails too now */
	assert_int_equal(yz_ipc_get_u32(&r, &u32), -1);
	assert_int_equal(u32, 0);
	assert_int_equal(yz_ipc_end(&r), -1);
	yz_ipc_reader_free(&r);

	/* every wrong getter on a u32 */
	int64_t i64;
	bool b;
	struct yz_slice s;
	int fd;
	char *str;
	yz_ipc_reader_init(&r, f.p + YZ_IPC_HDR_SIZE, f.len - YZ_IPC_HDR_SIZE, NULL, 0);
	assert_int_equal(yz_ipc_get_i64(&r, &i64), -1);
	yz_ipc_reader_free(&r);
	yz_ipc_reader_init(&r, f.p + YZ_IPC_HDR_SIZE, f.len - YZ_IPC_HDR_SIZE, NULL, 0);
	assert_int_equal(yz_ipc_get_bool(&r, &b), -1);
	yz_ipc_reader_free(&r);
	yz_ipc_reader_init(&r, f.p + YZ_IPC_HDR_SIZE, f.len - YZ_IPC_HDR_SIZE, NULL, 0);
	assert_int_equal(yz_ipc_get_str(&r, 100, &s), -1);
	yz_ipc_reader_free(&r);
	yz_ipc_reader_init(&r, f.p + YZ_IPC_HDR_SIZE, f.len - YZ_IPC_HDR_SIZE, NULL, 0);
	assert_int_equal(yz_ipc_get_str_dup(&r, 100, NULL, &str), -1);
	assert_null(str);
	yz_ipc_reader_free(&r);
	yz_ipc_reader_init(&r, f.p + YZ_IPC_HDR_SIZE, f.len - YZ_IPC_HDR_SIZE, NULL, 0);
	assert_int_equal(yz_ipc_get_bytes(&r, 100, &s), -1);
	yz_ipc_reader_free(&r);
	yz_ipc_reader_init(&r, f.p + YZ_IPC_HDR_SIZE, f.len - YZ_IPC_HDR_SIZE, NULL, 0);
	assert_int_equal(yz_ipc_get_fd(&r, &fd), -1);
	assert_int_equal(fd, -1);
	yz_ipc_reader_free(&r);

	/* leftover bytes: end fails */
	yz_ipc_reader_init(&r, f.p + YZ_IPC_HDR_SIZE, f.len - YZ_IPC_HDR_SIZE, NULL, 0);
	assert_int_equal(yz_ipc_get_u32(&r, &u32), 0);
	assert_int_equal(u32, 5);
	assert_int_equal(yz_ipc_end(&r), -1);
	assert_true(yz_ipc_reader_failed(&r));
	yz_ipc_reader_free(&r);

	/* reading past the end */
	yz_ipc_reader_init(&r, f.p + YZ_IPC_HDR_SIZE, f.len - YZ_IPC_HDR_SIZE, NULL, 0);
	assert_int_equal(yz_ipc_get_u32(&r, &u32), 0);
	assert_int_equal(yz_ipc_get_u32(&r, &u32), 0);
	assert_int_equal(yz_ipc_get_u32(&r, &u32), -1);
	assert_int_equal(yz_ipc_end(&r), -1);
	yz_ipc_reader_free(&r);
	yz_ipc_msg_free(&m);
}

static void test_strings(void **state)
{
	/* A STR with a NUL inside, as a hostile peer would send it. */
	const char bad[] = { YZ_IPC_T_STR, 0, 0, 0, 3, 'a', 0, 'b' };
	struct yz_ipc_reader r;
	struct yz_slice s;
	char *str = (char *)"x";
	yz_ipc_reader_init(&r, bad, sizeof bad, NULL, 0);
	assert_int_equal(yz_ipc_get_str(&r, 100, &s), -1);
	assert_int_equal(s.len, 0);
	yz_ipc_reader_free(&r);
	yz_ipc_reader_init(&r, bad, sizeof bad, NULL, 0);
	assert_int_equal(yz_ipc_get_str_dup(&r, 100, NULL, &str), -1);
	assert_null(str);
	yz_ipc_reader_free(&r);
	/* ...but the same bytes are fine as BYTES */
	char asbytes[sizeof bad];
	memcpy(asbytes, bad, sizeof bad);
	asbytes[0] = YZ_IPC_T_BYTES;
	yz_ipc_reader_init(&r, asbytes, sizeof asbytes, NULL, 0);
	assert_int_equal(yz_ipc_get_bytes(&r, 3, &s), 0);
	assert_int_equal(yz_ipc_end(&r), 0);
	yz_ipc_reader_free(&r);
	yz_ipc_reader_init(&r, asbytes, sizeof asbytes, NULL, 0);
	assert_int_equal(yz_ipc_get_bytes(&r, 2, &s), -1);
	yz_ipc_reader_free(&r);

	/* at the max and one over */
	struct yz_ipc_msg m;
	struct yz_slice f;
	yz_ipc_msg_init(&m, T_NOTE, 0);
	yz_ipc_put_str(&m, "abcd");
	assert_int_equal(yz_ipc_msg_frame(&m, &f), 0);
	yz_ipc_reader_init(&r, f.p + YZ_IPC_HDR_SIZE, f.len - YZ_IPC_HDR_SIZE, NULL, 0);
	assert_int_equal(yz_ipc_get_str(&r, 3, &s), -1);
	assert_int_equal(yz_ipc_end(&r), -1);
	yz_ipc_reader_free(&r);
	yz_ipc_reader_init(&r, f.p + YZ_IPC_HDR_SIZE, f.len - YZ_IPC_HDR_SIZE, NULL, 0);
	assert_int_equal(yz_ipc_get_str(&r, 4, &s), 0);
	assert_true(yz_slice_eq_str(s, "abcd"));
	assert_int_equal(yz_ipc_end(&r), 0);
	yz_ipc_reader_free(&r);

	/* dup into a pool and onto the heap */
	struct yz_pool *pool = yz_pool_new(1024);
	yz_ipc_reader_init(&r, f.p + YZ_IPC_HDR_SIZE, f.len - YZ_IPC_HDR_SIZE, NULL, 0);
	assert_int_equal(yz_ipc_get_str_dup(&r, 4, pool, &str), 0);
	assert_string_equal(str, "abcd");
	yz_ipc_reader_free(&r);
	yz_ipc_reader_init(&r, f.p + YZ_IPC_HDR_SIZE, f.len - YZ_IPC_HDR_SIZE, NULL, 0);
	assert_int_equal(yz_ipc_get_str_dup(&r, 4, NULL, &str), 0);
	assert_string_equal(str, "abcd");
	free(str);
	assert_int_equal(yz_ipc_end(&r), 0);
	yz_ipc_reader_free(&r);
	yz_pool_free(&pool);
	yz_ipc_msg_free(&m);

	/* a length that points past the payload */
	const char longlen[] = { YZ_IPC_T_STR, 0, 0, 0, 9, 'a' };
	yz_ipc_reader_init(&r, longlen, sizeof longlen, NULL, 0);
	assert_int_equal(yz_ipc_get_str(&r, 100, &s), -1);
	yz_ipc_reader_free(&r);
	const char hugelen[] = { YZ_IPC_T_BYTES, (char)0xff, (char)0xff, (char)0xff, (char)0xff };
	yz_ipc_reader_init(&r, hugelen, sizeof hugelen, NULL, 0);
	assert_int_equal(yz_ipc_get_bytes(&r, SIZE_MAX, &s), -1);
	yz_ipc_reader_free(&r);
}

static void test_payload_scan(void **state)
{
	size_t n = 99;
	const char bool2[] = { YZ_IPC_T_BOOL, 2 };
	assert_int_equal(yz_ipc_payload_scan(bool2, sizeof bool2, &n), -1);
	assert_int_equal(n, 0);
	struct yz_ipc_reader r;
	bool b = true;
	yz_ipc_reader_init(&r, bool2, sizeof bool2, NULL, 0);
	assert_int_equal(yz_ipc_get_bool(&r, &b), -1);
	assert_false(b);
	yz_ipc_reader_free(&r);

	const char tag0[] = { 0 };
	const char tag8[] = { 8 };
	const char short_u32[] = { YZ_IPC_T_U32, 0, 0, 0 };
	const char short_len[] = { YZ_IPC_T_STR, 0, 0 };
	const char ok[] = { YZ_IPC_T_FD, YZ_IPC_T_BOOL, 1, YZ_IPC_T_FD, YZ_IPC_T_BYTES, 0, 0, 0, 0 };
	assert_int_equal(yz_ipc_payload_scan(tag0, sizeof tag0, &n), -1);
	assert_int_equal(yz_ipc_payload_scan(tag8, sizeof tag8, &n), -1);
	assert_int_equal(yz_ipc_payload_scan(short_u32, sizeof short_u32, &n), -1);
	assert_int_equal(yz_ipc_payload_scan(short_len, sizeof short_len, &n), -1);
	assert_int_equal(yz_ipc_payload_scan(ok, sizeof ok, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(yz_ipc_payload_scan("", 0, &n), 0);
	assert_int_equal(n, 0);

	char fds[YZ_IPC_FDS_MAX + 1];
	memset(fds, YZ_IPC_T_FD, sizeof fds);
	assert_int_equal(yz_ipc_payload_scan(fds, YZ_IPC_FDS_MAX, &n), 0);
	assert_int_equal(n, YZ_IPC_FDS_MAX);
	assert_int_equal(yz_ipc_payload_scan(fds, sizeof fds, &n), -1);
}

static void test_reader_fds(void **state)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	/* An fd that no FD field claims: end fails, free closes it. */
	const char u32[] = { YZ_IPC_T_U32, 0, 0, 0, 1 };
	struct yz_ipc_reader r;
	uint32_t v;
	int fd = dup(p[0]);
	yz_ipc_reader_init(&r, u32, sizeof u32, &fd, 1);
	assert_int_equal(yz_ipc_get_u32(&r, &v), 0);
	assert_int_equal(yz_ipc_end(&r), -1);
	yz_ipc_reader_free(&r);
	assert_false(fd_is_open(fd));

	/* An FD field without an fd. */
	const char fdtag[] = { YZ_IPC_T_FD };
	yz_ipc_reader_init(&r, fdtag, sizeof fdtag, NULL, 0);
	assert_int_equal(yz_ipc_get_fd(&r, &fd), -1);
	assert_int_equal(fd, -1);
	yz_ipc_reader_free(&r);

	/* A failure before the FD field: the fd is closed by free. */
	const char both[] = { YZ_IPC_T_U32, 0, 0, 0, 1, YZ_IPC_T_FD };
	fd = dup(p[0]);
	yz_ipc_reader_init(&r, both, sizeof both, &fd, 1);
	bool b;
	assert_int_equal(yz_ipc_get_bool(&r, &b), -1);
	int got;
	assert_int_equal(yz_ipc_get_fd(&r, &got), -1);
	yz_ipc_reader_free(&r);
	assert_false(fd_is_open(fd));

	/* More fds than a frame may carry: the extra ones are closed. */
	int many[YZ_IPC_FDS_MAX + 2];
	for (size_t i = 0; i < YZ_IPC_FDS_MAX + 2; i++)
		many[i] = dup(p[0]);
	yz_ipc_reader_init(&r, "", 0, many, YZ_IPC_FDS_MAX + 2);
	assert_true(yz_ipc_reader_failed(&r));
	assert_false(fd_is_open(many[YZ_IPC_FDS_MAX + 1]));
	yz_ipc_reader_free(&r);
	for (size_t i = 0; i < YZ_IPC_FDS_MAX; i++)
		assert_false(fd_is_open(many[i]));
	close(p[0]);
	close(p[1]);
}

/* ---- connections ---- */

struct peer {
	struct yz_loop *loop;
	struct yz_ipc_conn *conn;
	int received;
	int replies;
	int nulls;
	int closes;
	int expect;
	bool echo;
	bool free_on_msg;
	char close_reason[128];
	int got_fd;
};

static void peer_close(struct yz_ipc_conn *c, const char *reason, void *arg)
{
	struct peer *p = arg;
	p->closes++;
	snprintf(p->close_reason, sizeof p->close_reason, "%s", reason);
	yz_loop_stop(p->loop);
}

/* Answer PING n with PONG n+1 (same request id); take an fd of T_FD. */
static void peer_msg(struct yz_ipc_conn *c, const struct yz_ipc_hdr *hdr, struct yz_ipc_reader *r,
		     void *arg)
{
	struct peer *p = arg;
	p->received++;
	if (hdr->type == T_PING && p->echo) {
		uint32_t n;
		if (yz_ipc_get_u32(r, &n) < 0 || yz_ipc_end(r) < 0)
			return;
		struct yz_ipc_msg m;
		yz_ipc_msg_init(&m, T_PONG, hdr->reqid);
		yz_ipc_put_u32(&m, n + 1);
		assert_int_equal(yz_ipc_conn_send(c, &m), 0);
	} else if (hdr->type == T_FD) {
		struct yz_slice s;
		int fd;
		if (yz_ipc_get_str(r, 16, &s) < 0 || yz_ipc_get_fd(r, &fd) < 0 || yz_ipc_end(r) < 0)
			return;
		/* write through the received descriptor */
		assert_int_equal(write(fd, s.p, s.len), (ssize_t)s.len);
		close(fd);
		p->got_fd++;
	} else if (hdr->type == T_BAD) {
		uint64_t v;
		yz_ipc_get_u64(r, &v); /* wrong: the frame holds a u32 */
	}
	if (p->free_on_msg)
		yz_ipc_conn_free(&p->conn);
	if (p->expect > 0 && p->received + p->replies >= p->expect)
		yz_loop_stop(p->loop);
}

static void peer_reply(struct yz_ipc_conn *c, const struct yz_ipc_hdr *hdr, struct yz_ipc_reader *r,
		       void *arg)
{
	struct peer *p = arg;
	if (hdr == NULL) {
		assert_null(r);
		p->nulls++;
	} else {
		uint32_t n;
		assert_int_equal(hdr->type, T_PONG);
		assert_int_equal(yz_ipc_get_u32(r, &n), 0);
		assert_int_equal(yz_ipc_end(r), 0);
		p->replies++;
	}
	if (p->expect > 0 && p->received + p->replies + p->nulls >= p->expect)
		yz_loop_stop(p->loop);
}

/* Stop a test that hangs. */
static void watchdog(struct yz_loop *loop, void *arg)
{
	bool *fired = arg;
	*fired = true;
	yz_loop_stop(loop);
}

static void pair_new(struct yz_loop *loop, struct peer *a, struct peer *b, size_t max_payload)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	memset(a, 0, sizeof *a);
	memset(b, 0, sizeof *b);
	a->loop = b->loop = loop;
	a->conn = yz_ipc_conn_new(loop, sv[0], max_payload, peer_msg, peer_close, a);
	b->conn = yz_ipc_conn_new(loop, sv[1], max_payload, peer_msg, peer_close, b);
	assert_non_null(a->conn);
	assert_non_null(b->conn);
}

static void send_ping(struct peer *p, uint32_t n, uint64_t timeout_ms)
{
	struct yz_ipc_msg m;
	yz_ipc_msg_init(&m, T_PING, 0);
	yz_ipc_put_u32(&m, n);
	assert_int_equal(yz_ipc_conn_request(p->conn, &m, timeout_ms, peer_reply, p), 0);
}

static void test_conn_10000_each_way(void **state)
{
	struct yz_loop *loop = yz_loop_new();
	struct peer a, b;
	bool fired = false;
	pair_new(loop, &a, &b, 1024);
	a.echo = b.echo = true;
	/* both ends send requests: disjoint id spaces */
	yz_ipc_conn_set_id_space(b.conn, true);
	for (uint32_t i = 0; i < 10000; i++) {
		send_ping(&a, i, 0);
		send_ping(&b, i, 0);
	}
	assert_int_equal(yz_ipc_conn_requests_pending(a.conn), 10000);
	a.expect = b.expect = 20000; /* 10,000 requests served + 10,000 replies */
	struct yz_timer *t = yz_timer_add(loop, 20000, watchdog, &fired);
	while (!fired && (a.received + a.replies < 20000 || b.received + b.replies < 20000))
		yz_loop_run(loop);
	assert_false(fired);
	yz_timer_del(loop, &t);
	assert_int_equal(a.replies, 10000);
	assert_int_equal(b.replies, 10000);
	assert_int_equal(a.received, 10000);
	assert_int_equal(a.nulls + b.nulls, 0);
	assert_int_equal(yz_ipc_conn_requests_pending(a.conn), 0);
	assert_int_equal(yz_ipc_conn_out_pending(a.conn), 0);
	yz_ipc_conn_free(&a.conn);
	yz_ipc_conn_free(&b.conn);
	assert_null(a.conn);
	yz_loop_free(&loop);
}

/* Frames queued in a turn go out at its end: a request and its reply
 * cost no epoll_ctl (no EPOLLOUT armed and disarmed around each). */
static void test_conn_send_no_epoll_ctl(void **state)
{
	(void)state;
	struct yz_loop *loop = yz_loop_new();
	struct peer a, b;
	bool fired = false;
	pair_new(loop, &a, &b, 1024);
	b.echo = true;
	struct yz_loop_stats st0, st1;
	yz_loop_get_stats(loop, &st0);
	for (uint32_t round = 0; round < 50; round++) {
		send_ping(&a, round, 0);
		send_ping(&a, round + 1000, 0);
		a.expect = 2 * (round + 1);
		struct yz_timer *t = yz_timer_add(loop, 5000, watchdog, &fired);
		while (!fired && a.replies < a.expect)
			yz_loop_run(loop);
		yz_timer_del(loop, &t);
		assert_false(fired);
	}
	yz_loop_get_stats(loop, &st1);
	assert_int_equal(st1.ctl_calls, st0.ctl_calls);
	assert_int_equal(a.replies, 100);
	/* A connection freed with frames queued and its flush pending: the
	 * flush is forgotten, nothing runs on freed memory. */
	send_ping(&a, 7, 0);
	yz_ipc_conn_free(&a.conn);
	yz_loop_defer(loop, watchdog, &fired);
	yz_loop_run(loop);
	yz_ipc_conn_free(&b.conn);
	yz_loop_free(&loop);
}

static void test_conn_pass_fd(void **state)
{
	struct yz_loop *loop = yz_loop_new();
	struct peer a, b;
	int p[2];
	bool fired = false;
	pair_new(loop, &a, &b, 1024);
	assert_int_equal(pipe(p), 0);
	for (int i = 0; i < 3; i++) {
		struct yz_ipc_msg m;
		yz_ipc_msg_init(&m, T_FD, 0);
		yz_ipc_put_str(&m, "hi!");
		yz_ipc_put_fd(&m, dup(p[1]));
		assert_int_equal(yz_ipc_conn_send(a.conn, &m), 0);
	}
	close(p[1]);
	b.expect = 3;
	struct yz_timer *t = yz_timer_add(loop, 5000, watchdog, &fired);
	yz_loop_run(loop);
	assert_false(fired);
	yz_timer_del(loop, &t);
	assert_int_equal(b.got_fd, 3);
	yz_ipc_conn_free(&a.conn);
	yz_ipc_conn_free(&b.conn);
	/* every copy of the write end is closed: we read the bytes then EOF */
	char buf[32];
	assert_int_equal(read(p[0], buf, sizeof buf), 9);
	assert_memory_equal(buf, "hi!hi!hi!", 9);
	assert_int_equal(read(p[0], buf, sizeof buf), 0);
	close(p[0]);
	yz_loop_free(&loop);
}

/* sendmsg raw bytes with n copies of fd. */
static void raw_send(int sock, const void *data, size_t len, int fd, size_t n)
{
	char control[CMSG_SPACE(sizeof(int) * 64)];
	struct iovec iov = { (void *)data, len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (n > 0) {
		memset(control, 0, sizeof control);
		msg.msg_control = control;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
		for (size_t i = 0; i < n; i++)
			memcpy(CMSG_DATA(cm) + i * sizeof(int), &fd, sizeof fd);
	}
	assert_int_equal(sendmsg(sock, &msg, MSG_NOSIGNAL), (ssize_t)len);
}

/* A conn on sv[1] fed raw bytes by the test through sv[0]. */
struct raw {
	struct yz_loop *loop;
	int sock;
	struct peer b;
	bool fired;
	struct yz_timer *watch;
};

static void raw_new(struct raw *x, size_t max_payload)
{
	int sv[2];
	memset(x, 0, sizeof *x);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	x->loop = yz_loop_new();
	x->sock = sv[0];
	x->b.loop = x->loop;
	x->b.conn = yz_ipc_conn_new(x->loop, sv[1], max_payload, peer_msg, peer_close, &x->b);
	assert_non_null(x->b.conn);
	x->watch = yz_timer_add(x->loop, 5000, watchdog, &x->fired);
}

static void raw_free(struct raw *x)
{
	yz_timer_del(x->loop, &x->watch);
	yz_ipc_conn_free(&x->b.conn);
	close(x->sock);
	yz_loop_free(&x->loop);
}

/* Send frame bytes with nfds fds and expect the conn to drop with reason. */
static void expect_drop(const void *data, size_t len, size_t nfds, size_t max_payload,
			const char *reason)
{
	struct raw x;
	int p[2];
	raw_new(&x, max_payload);
	assert_int_equal(pipe(p), 0);
	raw_send(x.sock, data, len, p[1], nfds);
	close(p[1]);
	yz_loop_run(x.loop);
	assert_false(x.fired);
	assert_int_equal(x.b.closes, 1);
	assert_string_equal(x.b.close_reason, reason);
	assert_true(yz_ipc_conn_closed(x.b.conn));
	/* every received copy of the descriptor was closed: EOF */
	char c;
	assert_int_equal(read(p[0], &c, 1), 0);
	close(p[0]);
	raw_free(&x);
}

static void test_conn_bad_frames(void **state)
{
	unsigned char f[64];
	/* wrong version */
	raw_hdr(f, 9, T_NOTE, 0, 0);
	expect_drop(f, YZ_IPC_HDR_SIZE, 0, 1024, "invalid frame header");
	/* over the connection's max_payload (at the max is fine: see below) */
	raw_hdr(f, YZ_IPC_VERSION, T_NOTE, 101, 0);
	expect_drop(f, YZ_IPC_HDR_SIZE, 0, 100, "frame too large");
	/* unknown tag */
	raw_hdr(f, YZ_IPC_VERSION, T_NOTE, 1, 0);
	f[12] = 0x42;
	expect_drop(f, 13, 0, 1024, "malformed payload");
	/* FD field but no descriptor */
	f[12] = YZ_IPC_T_FD;
	expect_drop(f, 13, 0, 1024, "frame declares descriptors that were not received");
	/* a descriptor no FD field claims */
	raw_hdr(f, YZ_IPC_VERSION, T_NOTE, 0, 0);
	expect_drop(f, YZ_IPC_HDR_SIZE, 1, 1024, "descriptors without a frame");
	/* two descriptors for one FD field */
	raw_hdr(f, YZ_IPC_VERSION, T_NOTE, 1, 0);
	f[12] = YZ_IPC_T_FD;
	expect_drop(f, 13, 2, 1024, "descriptors without a frame");
	/* more descriptors than the control buffer holds: MSG_CTRUNC */
	raw_hdr(f, YZ_IPC_VERSION, T_NOTE, 0, 0);
	expect_drop(f, YZ_IPC_HDR_SIZE, YZ_IPC_FDS_MAX + 4, 1024, "truncated control message");
	/* a handler whose getter fails: malformed frame */
	raw_hdr(f, YZ_IPC_VERSION, T_BAD, 5, 0);
	f[12] = YZ_IPC_T_U32;
	memset(f + 13, 0, 4);
	expect_drop(f, 17, 0, 1024, "malformed frame");
	/* EOF in the middle of a frame */
	raw_hdr(f, YZ_IPC_VERSION, T_NOTE, 10, 0);
	{
		struct raw x;
		raw_new(&x, 1024);
		raw_send(x.sock, f, YZ_IPC_HDR_SIZE + 3, -1, 0);
		shutdown(x.sock, SHUT_WR);
		yz_loop_run(x.loop);
		assert_string_equal(x.b.close_reason, "connection closed in the middle of a frame");
		raw_free(&x);
	}
}

static void test_conn_payload_at_max(void **state)
{
	struct yz_loop *loop = yz_loop_new();
	struct peer a, b;
	pair_new(loop, &a, &b, 100);
	struct yz_ipc_msg m;
	char data[95] = { 0 };
	yz_ipc_msg_init(&m, T_NOTE, 0);
	yz_ipc_put_bytes(&m, data, sizeof data); /* 1 + 4 + 95 = 100 */
	assert_int_equal(yz_ipc_conn_send(a.conn, &m), 0);
	b.expect = 1;
	yz_loop_run(loop);
	assert_int_equal(b.received, 1);
	assert_int_equal(b.closes, 0);
	yz_ipc_conn_free(&a.conn);
	yz_ipc_conn_free(&b.conn);
	yz_loop_free(&loop);
}

/* Byte-at-a-time delivery: a timer writes the next byte every ms. */
struct trickle {
	struct raw *x;
	const char *bytes;
	size_t len, pos;
	size_t fd_at; /* the byte that carries the descriptor */
	int fd;
};

static void trickle_step(struct yz_loop *loop, void *arg)
{
	struct trickle *t = arg;
	if (t->pos >= t->len)
		return;
	raw_send(t->x->sock, t->bytes + t->pos, 1, t->fd, t->pos == t->fd_at ? 1 : 0);
	t->pos++;
	yz_timer_add(loop, 1, trickle_step, t);
}

static void test_conn_byte_at_a_time(void **state)
{
	struct raw x;
	struct yz_buf all;
	struct yz_ipc_msg m;
	struct yz_slice f;
	int p[2];
	raw_new(&x, 1024);
	yz_buf_init(&all, 0);
	assert_int_equal(pipe(p), 0);

	yz_ipc_msg_init(&m, T_NOTE, 0);
	yz_ipc_put_str(&m, "one");
	yz_ipc_msg_frame(&m, &f);
	yz_buf_append_slice(&all, f);
	yz_ipc_msg_free(&m);
	size_t fd_at = yz_buf_len(&all);
	yz_ipc_msg_init(&m, T_FD, 0);
	yz_ipc_put_str(&m, "two");
	yz_ipc_put_fd(&m, dup(p[1])); /* not sent from m: raw_send attaches p[1] */
	yz_ipc_msg_frame(&m, &f);
	yz_buf_append_slice(&all, f);
	yz_ipc_msg_free(&m);
	yz_ipc_msg_init(&m, T_NOTE, 0);
	yz_ipc_put_u64(&m, 3);
	yz_ipc_msg_frame(&m, &f);
	yz_buf_append_slice(&all, f);
	yz_ipc_msg_free(&m);

	struct trickle t = { &x, yz_buf_data(&all), yz_buf_len(&all), 0, fd_at, p[1] };
	x.b.expect = 3;
	yz_timer_add(x.loop, 1, trickle_step, &t);
	yz_loop_run(x.loop);
	assert_false(x.fired);
	assert_int_equal(t.pos, t.len);
	assert_int_equal(x.b.received, 3);
	assert_int_equal(x.b.got_fd, 1);
	assert_int_equal(x.b.closes, 0);
	close(p[1]);
	char buf[8];
	assert_int_equal(read(p[0], buf, sizeof buf), 3);
	assert_memory_equal(buf, "two", 3);
	close(p[0]);
	yz_buf_free(&all);
	raw_free(&x);
}

/* Reply to a request late, after its timeout. */
static struct yz_ipc_conn *late_conn;
static uint32_t late_id;
static void late_reply(struct yz_loop *loop, void *arg)
{
	struct yz_ipc_msg m;
	yz_ipc_msg_init(&m, T_PONG, late_id);
	yz_ipc_put_u32(&m, 1);
	assert_int_equal(yz_ipc_conn_send(late_conn, &m), 0);
	yz_timer_add(loop, 50, watchdog, arg);
}

static void test_conn_request_timeout(void **state)
{
	struct yz_loop *loop = yz_loop_new();
	struct peer a, b;
	bool done = false;
	pair_new(loop, &a, &b, 1024);
	/* b does not echo: the request times out */
	struct yz_ipc_msg m;
	yz_ipc_msg_init(&m, T_PING, 0);
	yz_ipc_put_u32(&m, 1);
	uint64_t t0 = yz_now_ms();
	assert_int_equal(yz_ipc_conn_request(a.conn, &m, 50, peer_reply, &a), 0);
	a.expect = 1;
	yz_loop_run(loop);
	assert_true(yz_now_ms() - t0 >= 45);
	assert_int_equal(a.nulls, 1);
	assert_int_equal(a.replies, 0);
	assert_int_equal(yz_ipc_conn_requests_pending(a.conn), 0);
	assert_int_equal(b.received, 1);
	/* the late reply is dropped quietly: no on_msg, no second callback */
	late_conn = b.conn;
	late_id = (a.conn != NULL) ? 1 : 0; /* the first id of a connection */
	a.expect = 0;
	yz_timer_add(loop, 1, late_reply, &done);
	yz_loop_run(loop);
	assert_true(done);
	assert_int_equal(a.nulls, 1);
	assert_int_equal(a.received, 0);
	assert_int_equal(a.closes, 0);
	yz_ipc_conn_free(&a.conn);
	yz_ipc_conn_free(&b.conn);
	yz_loop_free(&loop);
}

static void test_conn_close_with_pending(void **state)
{
	struct yz_loop *loop = yz_loop_new();
	struct peer a, b;
	pair_new(loop, &a, &b, 1024);
	/* b frees itself from inside its first on_msg: a sees EOF */
	b.free_on_msg = true;
	for (uint32_t i = 0; i < 5; i++)
		send_ping(&a, i, 10000);
	yz_loop_run(loop); /* stops at a's on_close */
	assert_null(b.conn);
	assert_int_equal(b.received, 1);
	assert_int_equal(a.nulls, 5);
	assert_int_equal(a.closes, 1);
	assert_string_equal(a.close_reason, "connection closed by peer");
	assert_int_equal(yz_ipc_conn_requests_pending(a.conn), 0);
	/* sending on a closed connection fails and consumes the message */
	struct yz_ipc_msg m;
	int p[2];
	assert_int_equal(pipe(p), 0);
	yz_ipc_msg_init(&m, T_FD, 0);
	yz_ipc_put_fd(&m, p[1]);
	assert_int_equal(yz_ipc_conn_send(a.conn, &m), -1);
	assert_false(fd_is_open(p[1]));
	close(p[0]);
	yz_ipc_msg_init(&m, T_PING, 0);
	assert_int_equal(yz_ipc_conn_request(a.conn, &m, 0, peer_reply, &a), -1);
	yz_ipc_conn_free(&a.conn);

	/* freeing with pending requests: callbacks get NULLs, no on_close */
	pair_new(loop, &a, &b, 1024);
	for (uint32_t i = 0; i < 3; i++)
		send_ping(&a, i, 50);
	yz_ipc_conn_free(&a.conn);
	assert_int_equal(a.nulls, 3);
	assert_int_equal(a.closes, 0);
	/* b sees the close */
	yz_loop_run(loop);
	assert_int_equal(b.closes, 1);
	yz_ipc_conn_free(&b.conn);
	yz_loop_free(&loop);
}

static void test_conn_backpressure(void **state)
{
	struct yz_loop *loop = yz_loop_new();
	struct peer a, b;
	pair_new(loop, &a, &b, 0);
	yz_ipc_conn_set_out_max(a.conn, 0); /* raised to one maximal frame */
	size_t chunk = 1024 * 1024;
	char *data = yz_calloc(1, chunk);
	int ok = 0;
	for (int i = 0; i < 40; i++) {
		struct yz_ipc_msg m;
		yz_ipc_msg_init(&m, T_NOTE, 0);
		yz_ipc_put_bytes(&m, data, chunk);
		if (yz_ipc_conn_send(a.conn, &m) < 0)
			break;
		ok++;
	}
	/* nothing is written until the loop runs: the cap is reached */
	size_t frame_len = YZ_IPC_HDR_SIZE + 5 + chunk;
	assert_int_equal(ok, (YZ_IPC_HDR_SIZE + YZ_IPC_FRAME_MAX) / frame_len);
	assert_true(yz_ipc_conn_out_pending(a.conn) <= YZ_IPC_HDR_SIZE + YZ_IPC_FRAME_MAX);
	b.expect = ok;
	yz_loop_run(loop);
	assert_int_equal(b.received, ok);
	assert_int_equal(yz_ipc_conn_out_pending(a.conn), 0);
	free(data);
	yz_ipc_conn_free(&a.conn);
	yz_ipc_conn_free(&b.conn);
	yz_loop_free(&loop);
}


/* A reply callback that frees its own connection. */
static void reply_then_free(struct yz_ipc_conn *c, const struct yz_ipc_hdr *hdr,
			    struct yz_ipc_reader *r, void *arg)
{
	struct peer *p = arg;
	if (hdr == NULL) {
		p->nulls++;
		return;
	}
	p->replies++;
	yz_ipc_conn_free(&p->conn);
	/* the connection is closed but still usable as a handle here */
	yz_loop_stop(p->loop);
}

static void test_conn_free_in_reply(void **state)
{
	struct yz_loop *loop = yz_loop_new();
	struct peer a, b;
	pair_new(loop, &a, &b, 1024);
	b.echo = true;
	for (uint32_t i = 0; i < 4; i++) {
		struct yz_ipc_msg m;
		yz_ipc_msg_init(&m, T_PING, 0);
		yz_ipc_put_u32(&m, i);
		assert_int_equal(yz_ipc_conn_request(a.conn, &m, 10000, reply_then_free, &a), 0);
	}
	yz_loop_run(loop);
	assert_null(a.conn);
	assert_int_equal(a.replies, 1);
	assert_int_equal(a.nulls, 3); /* the others: NULLs, exactly once */
	assert_int_equal(a.closes, 0);
	yz_ipc_conn_free(&b.conn);
	yz_loop_free(&loop);
}

/* A decoder that finds a semantic error drops the connection itself. */
static void msg_fail(struct yz_ipc_conn *c, const struct yz_ipc_hdr *hdr, struct yz_ipc_reader *r,
		     void *arg)
{
	yz_ipc_conn_fail(c, "unknown message type");
}

static void test_conn_fail_from_handler(void **state)
{
	struct yz_loop *loop = yz_loop_new();
	struct peer a, b;
	pair_new(loop, &a, &b, 1024);
	yz_ipc_conn_free(&b.conn);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	yz_ipc_conn_free(&a.conn);
	a.conn = yz_ipc_conn_new(loop, sv[0], 1024, peer_msg, peer_close, &a);
	b.conn = yz_ipc_conn_new(loop, sv[1], 1024, msg_fail, peer_close, &b);
	for (int i = 0; i < 3; i++) {
		struct yz_ipc_msg m;
		yz_ipc_msg_init(&m, 999, 0);
		assert_int_equal(yz_ipc_conn_send(a.conn, &m), 0);
	}
	yz_loop_run(loop);
	assert_int_equal(b.closes, 1);
	assert_string_equal(b.close_reason, "unknown message type");
	assert_true(yz_ipc_conn_closed(b.conn));
	yz_ipc_conn_free(&a.conn);
	yz_ipc_conn_free(&b.conn);
	yz_loop_free(&loop);
}

/* ---- the blocking call against a server in a child process ---- */

static void server_msg(struct yz_ipc_conn *c, const struct yz_ipc_hdr *hdr, struct yz_ipc_reader *r,
		       void *arg)
{
	uint32_t n;
	if (yz_ipc_get_u32(r, &n) < 0 || yz_ipc_end(r) < 0)
		return;
	struct yz_ipc_msg m;
	/* an unrelated frame first, that the caller must skip */
	yz_ipc_msg_init(&m, T_NOTE, hdr->reqid + 1);
	yz_ipc_put_u32(&m, 0);
	yz_ipc_conn_send(c, &m);
	int p[2];
	if (pipe(p) < 0)
		_exit(3);
	if (write(p[1], "ok", 2) != 2)
		_exit(3);
	close(p[1]);
	yz_ipc_msg_init(&m, T_PONG, hdr->reqid);
	yz_ipc_put_u32(&m, n + 1);
	yz_ipc_put_fd(&m, p[0]);
	yz_ipc_conn_send(c, &m);
}

static void server_close(struct yz_ipc_conn *c, const char *reason, void *arg)
{
	yz_loop_stop(arg);
}

static void test_call_blocking(void **state)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		struct yz_loop *loop = yz_loop_new();
		struct yz_ipc_conn *c = yz_ipc_conn_new(loop, sv[1], 1024, server_msg, server_close, loop);
		yz_loop_run(loop);
		yz_ipc_conn_free(&c);
		yz_loop_free(&loop);
		_exit(0);
	}
	close(sv[1]);

	struct yz_ipc_msg m;
	struct yz_ipc_hdr hdr;
	struct yz_buf payload;
	int fds[2];
	size_t nfds;
	const char *error = NULL;
	yz_buf_init(&payload, 0);
	yz_ipc_msg_init(&m, T_PING, 77);
	yz_ipc_put_u32(&m, 41);
	assert_int_equal(yz_ipc_call_blocking(sv[0], &m, 5000, 1024, &hdr, &payload, fds, 2, &nfds,
					      &error),
			 0);
	assert_int_equal(hdr.type, T_PONG);
	assert_int_equal(hdr.reqid, 77);
	assert_int_equal(nfds, 1);
	struct yz_ipc_reader r;
	uint32_t n;
	int fd;
	yz_ipc_reader_init(&r, yz_buf_data(&payload), yz_buf_len(&payload), fds, nfds);
	assert_int_equal(yz_ipc_get_u32(&r, &n), 0);
	assert_int_equal(n, 42);
	assert_int_equal(yz_ipc_get_fd(&r, &fd), 0);
	assert_int_equal(yz_ipc_end(&r), 0);
	yz_ipc_reader_free(&r);
	char buf[4];
	assert_int_equal(read(fd, buf, sizeof buf), 2);
	close(fd);

	/* a reply with more descriptors than the caller allows */
	yz_ipc_msg_init(&m, T_PING, 78);
	yz_ipc_put_u32(&m, 1);
	assert_int_equal(yz_ipc_call_blocking(sv[0], &m, 5000, 1024, &hdr, &payload, fds, 0, &nfds,
					      &error),
			 -1);
	assert_string_equal(error, "too many descriptors in the reply");

	close(sv[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* nobody answers: timeout */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	yz_ipc_msg_init(&m, T_PING, 0);
	yz_ipc_put_u32(&m, 1);
	assert_int_equal(yz_ipc_call_blocking(sv[0], &m, 50, 1024, &hdr, &payload, fds, 2, &nfds,
					      &error),
			 -1);
	assert_string_equal(error, "timed out");
	/* the peer hangs up */
	close(sv[1]);
	yz_ipc_msg_init(&m, T_PING, 0);
	assert_int_equal(yz_ipc_call_blocking(sv[0], &m, 50, 1024, &hdr, &payload, fds, 2, &nfds,
					      &error),
			 -1);
	close(sv[0]);
	yz_buf_free(&payload);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_all_types),
		cmocka_unit_test(test_truncated_every_offset),
		cmocka_unit_test(test_wrong_version),
		cmocka_unit_test(test_oversized_header),
		cmocka_unit_test(test_writer_frame_max),
		cmocka_unit_test(test_wrong_tag_and_sticky),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_payload_scan),
		cmocka_unit_test(test_reader_fds),
		cmocka_unit_test(test_conn_10000_each_way),
		cmocka_unit_test(test_conn_send_no_epoll_ctl),
		cmocka_unit_test(test_conn_pass_fd),
		cmocka_unit_test(test_conn_bad_frames),
		cmocka_unit_test(test_conn_payload_at_max),
		cmocka_unit_test(test_conn_byte_at_a_time),
		cmocka_unit_test(test_conn_request_timeout),
		cmocka_unit_test(test_conn_close_with_pending),
		cmocka_unit_test(test_conn_backpressure),
		cmocka_unit_test(test_conn_free_in_reply),
		cmocka_unit_test(test_conn_fail_from_handler),
		cmocka_unit_test(test_call_blocking),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

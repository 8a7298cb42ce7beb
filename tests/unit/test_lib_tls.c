/*
 * test_lib_tls.c: TLS contexts and self-signed certificates (tls.h), and
 * TLS on buffered connections (io.h): a server io and a client io over a
 * socketpair in one loop.
 *
 * Covers: certificate generation (modes, errors, key mismatch), handshake,
 * version/cipher strings, lines both ways, the STARTTLS injection case
 * (plaintext pipelined after STARTTLS is discarded, never seen after the
 * handshake), a bulk transfer through a read buffer smaller than a TLS record,
 * a failed handshake, close_after_flush with close_notify, and the memory an
 * idle TLS session costs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/io.h"
#include "lib/loop.h"
#include "lib/tls.h"

#define GUARD_MS 5000
#define EV_MAX 128
#define LINE_MAX_TEST 512

static char tmpdir[] = "/tmp/yz-tls-XXXXXX";
static char cert_path[128], key_path[128];
static struct yz_tls_ctx *server_ctx, *client_ctx;

struct side {
	struct yz_io *io;
	struct tctx *t;
	enum yz_io_event ev[EV_MAX];
	size_t nev;
	int ready, errors, eofs, drained;
	bool auto_lines;          /* read and consume lines on READABLE */
	struct yz_buf got;        /* lines received */
	size_t lines;
	bool close_on_eof;
};

struct tctx {
	struct yz_loop *loop;
	struct side s, c;
	bool (*until)(struct tctx *t);
	size_t want_bytes;
};

static void on_guard(struct yz_loop *loop, void *arg)
{
	fail_msg("guard timer fired: the test hung");
}

/* Move complete lines from the io's buffer to sd->got. */
static void take_lines(struct side *sd)
{
	struct yz_slice line;
	while (yz_io_read_line(sd->io, LINE_MAX_TEST, &line) == YZ_LINE_OK) {
		assert_int_equal(yz_buf_append_slice(&sd->got, line), 0);
		sd->lines++;
		yz_io_consume(sd->io, line.len);
	}
}

/* Start collecting lines, including those already buffered. */
static void auto_lines(struct side *sd)
{
	sd->auto_lines = true;
	take_lines(sd);
}

static void handler(struct yz_io *io, enum yz_io_event ev, void *arg)
{
	struct side *sd = arg;
	if (sd->nev < EV_MAX)
		sd->ev[sd->nev++] = ev;
	switch (ev) {
	case YZ_IO_TLS_READY:
		sd->ready++;
		break;
	case YZ_IO_ERROR:
		sd->errors++;
		break;
	case YZ_IO_EOF:
		sd->eofs++;
		break;
	case YZ_IO_DRAINED:
		sd->drained++;
		break;
	case YZ_IO_READABLE:
		if (sd->auto_lines)
			take_lines(sd);
		break;
	default:
		break;
	}
	if (sd->t->until != NULL && sd->t->until(sd->t))
		yz_loop_stop(sd->t->loop);
}

static void run_until(struct tctx *t, bool (*until)(struct tctx *t))
{
	t->until = until;
	if (!until(t)) {
		struct yz_timer *guard = yz_timer_add(t->loop, GUARD_MS, on_guard, NULL);
		assert_int_equal(yz_loop_run(t->loop), 0);
		yz_timer_del(t->loop, &guard);
	}
	assert_true(until(t));
	t->until = NULL;
}

static void tctx_init(struct tctx *t, size_t s_rbuf, size_t wbuf)
{
	memset(t, 0, sizeof *t);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	t->loop = yz_loop_new();
	t->s.t = t->c.t = t;
	yz_buf_init(&t->s.got, 1 << 24);
	yz_buf_init(&t->c.got, 1 << 24);
	t->s.io = yz_io_new(t->loop, sv[0], s_rbuf, wbuf);
	t->c.io = yz_io_new(t->loop, sv[1], 4096, wbuf);
	assert_non_null(t->s.io);
	assert_non_null(t->c.io);
	yz_io_set_handler(t->s.io, handler, &t->s);
	yz_io_set_handler(t->c.io, handler, &t->c);
}

static void tctx_done(struct tctx *t)
{
	yz_io_free(&t->s.io);
	yz_io_free(&t->c.io);
	assert_int_equal(yz_loop_run(t->loop), 0);
	yz_loop_free(&t->loop);
	yz_buf_free(&t->s.got);
	yz_buf_free(&t->c.got);
}

static bool both_ready(struct tctx *t)
{
	return t->s.ready == 1 && t->c.ready == 1;
}

static int group_setup(void **state)
{
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	if (snprintf(cert_path, sizeof cert_path, "%s/cert.pem", tmpdir) >= (int)sizeof cert_path ||
	    snprintf(key_path, sizeof key_path, "%s/key.pem", tmpdir) >= (int)sizeof key_path)
		return -1;
	const char *error = NULL;
	if (yz_tls_make_selfsigned(cert_path, key_path, "mx.example.org", &error) < 0) {
		fprintf(stderr, "selfsigned: %s\n", error);
		return -1;
	}
	server_ctx = yz_tls_server_ctx_new(cert_path, key_path, &error);
	client_ctx = yz_tls_client_ctx_new(&error);
	return server_ctx != NULL && client_ctx != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
	yz_tls_ctx_free(&server_ctx);
	yz_tls_ctx_free(&client_ctx);
	yz_tls_ctx_free(&client_ctx); /* NULL-safe */
	unlink(cert_path);
	unlink(key_path);
	char path[160];
	if (snprintf(path, sizeof path, "%s/other-key.pem", tmpdir) < (int)sizeof path)
		unlink(path);
	if (snprintf(path, sizeof path, "%s/other-cert.pem", tmpdir) < (int)sizeof path)
		unlink(path);
	rmdir(tmpdir);
	return 0;
}

/* The generated files: modes, content, and the errors around them. */
static void test_selfsigned(void **state)
{
	struct stat st;
	assert_int_equal(stat(key_path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(cert_path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);

	const char *error = NULL;
	assert_int_equal(yz_tls_make_selfsigned(cert_path, key_path, "bad host/name", &error), -1);
	assert_non_null(strstr(error, "hostname"));
	assert_int_equal(yz_tls_make_selfsigned(cert_path, key_path, "", &error), -1);

	assert_null(yz_tls_server_ctx_new("/nonexistent/cert.pem", key_path, &error));
	assert_non_null(strstr(error, "/nonexistent/cert.pem"));

	/* A key that does not belong to the certificate. */
	char okey[160], ocert[160];
	assert_true(snprintf(okey, sizeof okey, "%s/other-key.pem", tmpdir) < (int)sizeof okey);
	assert_true(snprintf(ocert, sizeof ocert, "%s/other-cert.pem", tmpdir) < (int)sizeof ocert);
	assert_int_equal(yz_tls_make_selfsigned(ocert, okey, "other.example", &error), 0);
	assert_null(yz_tls_server_ctx_new(cert_path, okey, &error));
	assert_non_null(error);
	struct yz_tls_ctx *ctx = yz_tls_server_ctx_new(ocert, okey, &error);
	assert_non_null(ctx);
	yz_tls_ctx_free(&ctx);
	assert_null(ctx);
}

/* Handshake, strings, and lines both ways. */
static bool server_has_line(struct tctx *t)
{
	return t->s.lines >= 1;
}

static bool client_has_line(struct tctx *t)
{
	return t->c.lines >= 1;
}

static void test_handshake_and_lines(void **state)
{
	struct tctx t;
	tctx_init(&t, 4096, 65536);
	assert_false(yz_io_is_tls(t.s.io));
	assert_null(yz_io_tls_version(t.s.io));
	assert_null(yz_io_tls_cipher(t.s.io));
	assert_int_equal(yz_io_tls_bits(t.s.io), 0);
	assert_int_equal(yz_io_starttls(t.s.io, server_ctx, true), 0);
	assert_int_equal(yz_io_starttls(t.c.io, client_ctx, false), 0);
	assert_true(yz_io_is_tls(t.s.io));
	assert_int_equal(yz_io_starttls(t.s.io, server_ctx, true), -1); /* already on */
	/* Queued during the handshake: sent encrypted once it is done. */
	assert_int_equal(yz_io_write(t.c.io, "EHLO client.example\r\n", 21), 0);
	assert_int_equal(yz_io_flush(t.c.io), 0);
	run_until(&t, both_ready);
	assert_string_equal(yz_io_tls_version(t.s.io), "TLSv1.3");
	assert_string_equal(yz_io_tls_version(t.c.io), "TLSv1.3");
	const char *cipher = yz_io_tls_cipher(t.s.io);
	assert_non_null(cipher);
	assert_non_null(strstr(cipher, "TLS_"));
	assert_string_equal(cipher, yz_io_tls_cipher(t.c.io));
	assert_true(yz_io_tls_bits(t.s.io) >= 128);

	auto_lines(&t.s);
	auto_lines(&t.c);
	run_until(&t, server_has_line);
	assert_int_equal(yz_buf_len(&t.s.got), 21);
	assert_memory_equal(yz_buf_data(&t.s.got), "EHLO client.example\r\n", 21);
	assert_int_equal(yz_io_printf(t.s.io, "250-mx.example.org\r\n250 %s\r\n", "STARTTLS"), 0);
	assert_int_equal(yz_io_flush(t.s.io), 0);
	run_until(&t, client_has_line);
	if (t.c.lines < 2)
		run_until(&t, client_has_line);
	assert_string_equal(yz_buf_cstr(&t.c.got), "250-mx.example.org\r\n250 STARTTLS\r\n");
	assert_int_equal(t.s.errors + t.c.errors, 0);
	assert_null(yz_io_error(t.s.io));
	tctx_done(&t);
}

/* STARTTLS injection (CVE-2011-0411): "RSET" pipelined in plaintext after
 * STARTTLS must never be seen as a command after the handshake. */
static bool server_has_16(struct tctx *t)
{
	return yz_buf_len(yz_io_rbuf(t->s.io)) >= 16;
}

static bool client_has_220(struct tctx *t)
{
	return yz_buf_len(yz_io_rbuf(t->c.io)) >= 11;
}

static void test_starttls_injection(void **state)
{
	struct tctx t;
	tctx_init(&t, 4096, 65536);
	assert_int_equal(yz_io_write(t.c.io, "STARTTLS\r\nRSET\r\n", 16), 0);
	assert_int_equal(yz_io_flush(t.c.io), 0);
	run_until(&t, server_has_16);
	struct yz_slice line;
	assert_int_equal(yz_io_read_line(t.s.io, LINE_MAX_TEST, &line), YZ_LINE_OK);
	assert_int_equal(line.len, 10);
	assert_memory_equal(line.p, "STARTTLS\r\n", 10);
	yz_io_consume(t.s.io, line.len);
	assert_int_equal(yz_buf_len(yz_io_rbuf(t.s.io)), 6); /* the injected RSET */
	/* The reply is still queued: starttls sends it in clear first. */
	assert_int_equal(yz_io_write(t.s.io, "220 2.0.0 Ready\r\n", 17), 0);
	assert_int_equal(yz_io_starttls(t.s.io, server_ctx, true), 0);
	assert_int_equal(yz_buf_len(yz_io_rbuf(t.s.io)), 0); /* discarded */
	/* Queued after STARTTLS: must go out encrypted, after the handshake. */
	assert_int_equal(yz_io_write(t.s.io, "after\r\n", 7), 0);
	assert_int_equal(yz_io_flush(t.s.io), 0);

	run_until(&t, client_has_220);
	assert_int_equal(yz_io_read_line(t.c.io, LINE_MAX_TEST, &line), YZ_LINE_OK);
	assert_int_equal(line.len, 17);
	assert_memory_equal(line.p, "220 2.0.0 Ready\r\n", 17);
	yz_io_consume(t.c.io, line.len);
	assert_int_equal(yz_buf_len(yz_io_rbuf(t.c.io)), 0); /* "after" not in clear */
	assert_int_equal(yz_io_starttls(t.c.io, client_ctx, false), 0);
	run_until(&t, both_ready);

	auto_lines(&t.s);
	auto_lines(&t.c);
	assert_int_equal(yz_io_write(t.c.io, "NOOP\r\n", 6), 0);
	assert_int_equal(yz_io_flush(t.c.io), 0);
	run_until(&t, server_has_line);
	assert_string_equal(yz_buf_cstr(&t.s.got), "NOOP\r\n"); /* never RSET */
	run_until(&t, client_has_line);
	assert_string_equal(yz_buf_cstr(&t.c.got), "after\r\n");
	assert_int_equal(t.s.errors + t.c.errors, 0);
	tctx_done(&t);
}

/* Bulk data through a read buffer smaller than one TLS record: plaintext
 * left inside OpenSSL must still be delivered (no epoll event announces it). */
#define BULK_LINES 3000
#define BULK_LINE_LEN 100

static bool server_has_all(struct tctx *t)
{
	return t->s.lines >= BULK_LINES;
}

static void test_bulk_small_rbuf(void **state)
{
	struct tctx t;
	tctx_init(&t, 1000, 1 << 20);
	assert_int_equal(yz_io_starttls(t.s.io, server_ctx, true), 0);
	assert_int_equal(yz_io_starttls(t.c.io, client_ctx, false), 0);
	run_until(&t, both_ready);
	auto_lines(&t.s);
	char line[BULK_LINE_LEN + 1];
	for (int i = 0; i < BULK_LINES; i++) {
		int n = snprintf(line, sizeof line, "%06d ", i);
		assert_true(n > 0);
		memset(line + n, 'a' + i % 26, BULK_LINE_LEN - 2 - (size_t)n);
		line[BULK_LINE_LEN - 2] = '\r';
		line[BULK_LINE_LEN - 1] = '\n';
		assert_int_equal(yz_io_write(t.c.io, line, BULK_LINE_LEN), 0);
	}
	assert_int_equal(yz_io_flush(t.c.io), 0);
	run_until(&t, server_has_all);
	assert_int_equal(yz_buf_len(&t.s.got), (size_t)BULK_LINES * BULK_LINE_LEN);
	const char *p = yz_buf_data(&t.s.got);
	for (int i = 0; i < BULK_LINES; i++) {
		char want[8];
		assert_int_equal(snprintf(want, sizeof want, "%06d ", i), 7);
		assert_memory_equal(p + (size_t)i * BULK_LINE_LEN, want, 7);
		assert_int_equal(p[(size_t)i * BULK_LINE_LEN + 7], 'a' + i % 26);
	}
	assert_int_equal(yz_io_wpending(t.c.io), 0);
	assert_int_equal(t.s.errors + t.c.errors, 0);
	tctx_done(&t);
}

/* A peer that speaks plaintext instead of TLS: handshake error. */
static bool server_failed(struct tctx *t)
{
	return t->s.errors >= 1;
}

static void test_handshake_failure(void **state)
{
	struct tctx t;
	tctx_init(&t, 4096, 4096);
	assert_int_equal(yz_io_starttls(t.s.io, server_ctx, true), 0);
	assert_int_equal(yz_io_write(t.c.io, "GET / HTTP/1.0\r\n\r\n", 18), 0);
	assert_int_equal(yz_io_flush(t.c.io), 0);
	run_until(&t, server_failed);
	assert_int_equal(t.s.ready, 0);
	assert_non_null(yz_io_error(t.s.io));
	assert_non_null(strstr(yz_io_error(t.s.io), "TLS handshake failed"));
	assert_int_equal(yz_io_write(t.s.io, "x", 1), -1);
	assert_int_equal(yz_io_flush(t.s.io), -1);
	tctx_done(&t);
}

/* close_after_flush over TLS: the reply arrives, then a clean EOF. */
static int done_calls;

static void on_done(void *arg)
{
	done_calls++;
}

static bool client_eof(struct tctx *t)
{
	return t->c.eofs >= 1;
}

static void test_tls_close_after_flush(void **state)
{
	struct tctx t;
	tctx_init(&t, 4096, 65536);
	assert_int_equal(yz_io_starttls(t.s.io, server_ctx, true), 0);
	assert_int_equal(yz_io_starttls(t.c.io, client_ctx, false), 0);
	run_until(&t, both_ready);
	auto_lines(&t.c);
	assert_int_equal(yz_io_write(t.s.io, "221 2.0.0 Bye\r\n", 15), 0);
	done_calls = 0;
	yz_io_close_after_flush(t.s.io, on_done, NULL);
	t.s.io = NULL;
	run_until(&t, client_eof);
	assert_int_equal(done_calls, 1);
	assert_string_equal(yz_buf_cstr(&t.c.got), "221 2.0.0 Bye\r\n");
	assert_int_equal(t.c.errors, 0);
	tctx_done(&t);
}

/* Memory of idle TLS sessions, both ends counted (target < 32 KiB each). */
#define MEM_PAIRS 16

static bool mem_all_ready(struct tctx *t)
{
	return false;
}

struct mem_pair {
	struct tctx t;
};

static void test_idle_memory(void **state)
{
	/* Warm up OpenSSL's lazily built tables first. */
	struct tctx warm;
	tctx_init(&warm, 4096, 65536);
	assert_int_equal(yz_io_starttls(warm.s.io, server_ctx, true), 0);
	assert_int_equal(yz_io_starttls(warm.c.io, client_ctx, false), 0);
	run_until(&warm, both_ready);
	tctx_done(&warm);
	(void)mem_all_ready;

	struct mem_pair *pairs = calloc(MEM_PAIRS, sizeof *pairs);
	assert_non_null(pairs);
	struct mallinfo2 before = mallinfo2();
	for (int i = 0; i < MEM_PAIRS; i++) {
		struct tctx *t = &pairs[i].t;
		tctx_init(t, 0, 0);
		assert_int_equal(yz_io_starttls(t->s.io, server_ctx, true), 0);
		assert_int_equal(yz_io_starttls(t->c.io, client_ctx, false), 0);
		run_until(t, both_ready);
		/* One exchange each way, then idle. */
		auto_lines(&t->s);
		auto_lines(&t->c);
		assert_int_equal(yz_io_write(t->c.io, "NOOP\r\n", 6), 0);
		assert_int_equal(yz_io_flush(t->c.io), 0);
		run_until(t, server_has_line);
		assert_int_equal(yz_io_write(t->s.io, "250 OK\r\n", 8), 0);
		assert_int_equal(yz_io_flush(t->s.io), 0);
		run_until(t, client_has_line);
	}
	struct mallinfo2 after = mallinfo2();
	size_t per_session = (after.uordblks - before.uordblks) / (2 * MEM_PAIRS);
	/* The client ends hold the server's certificate and session tickets:
	 * free them to see what one idle server session costs. */
	for (int i = 0; i < MEM_PAIRS; i++)
		yz_io_free(&pairs[i].t.c.io);
	struct mallinfo2 servers = mallinfo2();
	size_t per_server = (servers.uordblks - before.uordblks) / MEM_PAIRS;
	print_message("idle TLS session: %zu bytes on average, %zu for a server end "
		      "(its loop and test buffers included)\n", per_session, per_server);
	assert_true(per_session < 32 * 1024);
	assert_true(per_server < 32 * 1024);
	for (int i = 0; i < MEM_PAIRS; i++)
		tctx_done(&pairs[i].t);
	free(pairs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_selfsigned),
		cmocka_unit_test(test_handshake_and_lines),
		cmocka_unit_test(test_starttls_injection),
		cmocka_unit_test(test_bulk_small_rbuf),
		cmocka_unit_test(test_handshake_failure),
		cmocka_unit_test(test_tls_close_after_flush),
		cmocka_unit_test(test_idle_memory),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

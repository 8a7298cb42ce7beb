/*
 * test_pop3d_session.c: POP3 sessions over socketpairs on one loop, with a
 * test double for the directory and a temporary Maildir: every command,
 * CAPA truthfulness, plaintext-auth refusal, USER/PASS and SASL PLAIN
 * (initial response, continuation, cancel), failures and the disconnect
 * limit, [SYS/TEMP], DELE/RSET/UPDATE and a dropped connection, IN-USE,
 * seen flags, dot-stuffing and a missing last CRLF, TOP, a large RETR that
 * needs several drains, the line limit just under and over, pipelining,
 * STLS with injected plaintext, implicit TLS, idle timeout, session limit,
 * on_idle; plus the UIDL mapping, base64 and SASL PLAIN helpers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/io.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/mem.h"
#include "lib/tls.h"
#include "pop3d/pop3d_private.h"
#include "store/mailbox/maildir.h"

#define GUARD_MS 5000
#define LIMIT 64 /* command line limit in these tests */

static char root[256];
static char alice_dir[512];
static struct yz_tls_ctx *server_tls, *client_tls;

/* ---- the directory double ---- */

struct fake_req {
	pop3d_auth_cb *cb;
	void *ctx;
	enum pop3d_auth_result res;
	char canonical[64];
};

static void fake_answer(struct yz_loop *loop, void *arg)
{
	struct fake_req *r = arg;
	r->cb(r->ctx, r->res, r->canonical);
	free(r);
}

static int fake_start(void *backend, const char *user, const char *password, const char *rip,
		      pop3d_auth_cb *cb, void *ctx)
{
	if (strcmp(user, "down") == 0)
		return -1;
	struct fake_req *r = yz_calloc(1, sizeof *r);
	r->cb = cb;
	r->ctx = ctx;
	r->res = POP3D_AUTH_FAIL;
	if (strcmp(user, "temp") == 0)
		r->res = POP3D_AUTH_TEMPFAIL;
	else if (strcmp(user, "off") == 0)
		r->res = POP3D_AUTH_DISABLED;
	else if ((strcmp(user, "alice") == 0 || strcmp(user, "alice@example.test") == 0) &&
		 strcmp(password, "pw alice") == 0)
		r->res = POP3D_AUTH_OK;
	snprintf(r->canonical, sizeof r->canonical, "alice@example.test");
	yz_timer_add(backend, 1, fake_answer, r);
	return 0;
}

/* ---- the client side ---- */

struct client {
	struct yz_loop *loop;
	struct yz_io *io;
	struct yz_buf in;
	const char *want;
	bool eof;
	bool tls_ready;
};

struct fixture {
	struct yz_loop *loop;
	struct pop3d *d;
	int idle_calls;
	struct pop3d_settings set;
};

static void on_idle(void *arg)
{
	struct fixture *f = arg;
	f->idle_calls++;
}

static void stop_cb(struct yz_loop *loop, void *arg)
{
	yz_loop_stop(loop);
}

static void guard_cb(struct yz_loop *loop, void *arg)
{
	fail_msg("guard timer fired: the test hung waiting for '%s'", (const char *)arg);
}

static void client_cb(struct yz_io *io, enum yz_io_event ev, void *arg)
{
	struct client *c = arg;
	switch (ev) {
	case YZ_IO_READABLE: {
		struct yz_buf *rb = yz_io_rbuf(io);
		yz_buf_append(&c->in, yz_buf_data(rb), yz_buf_len(rb));
		yz_io_consume(io, yz_buf_len(rb));
		if (c->want != NULL && memmem(yz_buf_data(&c->in), yz_buf_len(&c->in), c->want,
					      strlen(c->want)) != NULL)
			yz_loop_stop(c->loop);
		break;
	}
	case YZ_IO_TLS_READY:
		c->tls_ready = true;
		if (c->want == NULL)
			yz_loop_stop(c->loop);
		break;
	case YZ_IO_EOF:
	case YZ_IO_ERROR: {
		struct yz_buf *rb = yz_io_rbuf(io);
		yz_buf_append(&c->in, yz_buf_data(rb), yz_buf_len(rb));
		yz_io_consume(io, yz_buf_len(rb));
		c->eof = true;
		yz_loop_stop(c->loop);
		break;
	}
	default:
		break;
	}
}

/* Run the loop until the client's input holds want (or EOF); return
 * everything up to and including want (heap) and drop it from the input. */
static char *wait_for(struct client *c, const char *want)
{
	c->want = want;
	struct yz_timer *guard = yz_timer_add(c->loop, GUARD_MS, guard_cb, (void *)want);
	for (;;) {
		const char *hit = want != NULL ? memmem(yz_buf_data(&c->in), yz_buf_len(&c->in),
							want, strlen(want)) : NULL;
		if (hit != NULL) {
			size_t n = (size_t)(hit - yz_buf_data(&c->in)) + strlen(want);
			char *out = yz_strndup(yz_buf_data(&c->in), n);
			yz_buf_consume(&c->in, n);
			yz_timer_del(c->loop, &guard);
			c->want = NULL;
			return out;
		}
		if (c->eof)
			break;
		yz_loop_run(c->loop);
	}
	yz_timer_del(c->loop, &guard);
	c->want = NULL;
	return NULL;
}

/* Run the loop until the server closes the connection. */
static void wait_eof(struct client *c)
{
	struct yz_timer *guard = yz_timer_add(c->loop, GUARD_MS, guard_cb, "EOF");
	while (!c->eof)
		yz_loop_run(c->loop);
	yz_timer_del(c->loop, &guard);
}

static void send_raw(struct client *c, const char *s, size_t len)
{
	assert_int_equal(yz_io_write(c->io, s, len), 0);
	assert_true(yz_io_flush(c->io) >= 0);
}

/* Send a command and return the first reply line (heap). */
static char *cmd(struct client *c, const char *line)
{
	send_raw(c, line, strlen(line));
	return wait_for(c, "\r\n");
}

/* Send a command, expect a reply starting with prefix. */
static void cmd_expect(struct client *c, const char *line, const char *prefix)
{
	char *r = cmd(c, line);
	if (r == NULL || strncmp(r, prefix, strlen(prefix)) != 0)
		fail_msg("%s -> %s (wanted %s)", line, r ? r : "EOF", prefix);
	free(r);
}

/* Send a command and return the whole multi-line answer (heap). */
static char *cmd_multi(struct client *c, const char *line)
{
	send_raw(c, line, strlen(line));
	char *first = wait_for(c, "\r\n");
	assert_non_null(first);
	if (strncmp(first, "+OK", 3) != 0)
		return first;
	char *rest = wait_for(c, "\r\n.\r\n");
	assert_non_null(rest);
	size_t n1 = strlen(first), n2 = strlen(rest);
	char *all = yz_malloc(n1 + n2 + 1);
	memcpy(all, first, n1);
	memcpy(all + n1, rest, n2 + 1);
	free(first);
	free(rest);
	return all;
}

/* A new session of d and its client, greeting read. */
/* The same over sockets whose buffers hold sockbuf bytes (0: the default;
 * forced past the sysctl limits when the test may). */
static struct client *connect_client_buf(struct fixture *f, bool implicit_tls, int sockbuf)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	for (int i = 0; sockbuf > 0 && i < 2; i++) {
		if (setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &sockbuf, sizeof sockbuf) < 0)
			(void)setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &sockbuf, sizeof sockbuf);
		if (setsockopt(sv[i], SOL_SOCKET, SO_RCVBUFFORCE, &sockbuf, sizeof sockbuf) < 0)
			(void)setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &sockbuf, sizeof sockbuf);
	}
	struct client *c = yz_calloc(1, sizeof *c);
	c->loop = f->loop;
	yz_buf_init(&c->in, 64 << 20);
	c->io = yz_io_new(f->loop, sv[1], 1 << 20, 1 << 20);
	assert_non_null(c->io);
	yz_io_set_handler(c->io, client_cb, c);
	pop3d_session_start(f->d, sv[0], "192.0.2.1", implicit_tls);
	if (implicit_tls)
		assert_int_equal(yz_io_starttls(c->io, client_tls, false), 0);
	char *g = wait_for(c, "\r\n");
	assert_non_null(g);
	assert_true(strncmp(g, "+OK ", 4) == 0);
	free(g);
	return c;
}

static struct client *connect_client(struct fixture *f, bool implicit_tls)
{
	return connect_client_buf(f, implicit_tls, 0);
}

static void client_free(struct client *c)
{
	yz_io_free(&c->io);
	yz_buf_free(&c->in);
	free(c);
}

/* Close the client and let the server see it. */
static void client_drop(struct fixture *f, struct client *c)
{
	size_t before = pop3d_sessions(f->d);
	client_free(c);
	struct yz_timer *guard = yz_timer_add(f->loop, GUARD_MS, guard_cb, "drop");
	while (pop3d_sessions(f->d) == before) {
		struct yz_timer *t = yz_timer_add(f->loop, 5, stop_cb, NULL);
		(void)t;
		yz_loop_run(f->loop);
	}
	yz_timer_del(f->loop, &guard);
}

/* Run the loop until the server has n sessions (an ended one lingers while
 * its seen marks are written). */
static void wait_sessions(struct fixture *f, size_t n)
{
	struct yz_timer *guard = yz_timer_add(f->loop, GUARD_MS, guard_cb, "sessions");
	while (pop3d_sessions(f->d) != n) {
		struct yz_timer *t = yz_timer_add(f->loop, 5, stop_cb, NULL);
		(void)t;
		yz_loop_run(f->loop);
	}
	yz_timer_del(f->loop, &guard);
}

/* ---- the Maildir ---- */

static int rm_tree(const char *path)
{
	char cmdline[600];
	snprintf(cmdline, sizeof cmdline, "rm -rf '%s'", path);
	return system(cmdline);
}

/* Write a message file into alice's new/ with a given unique part. */
static void put_msg(const char *unique, const char *content, size_t len)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/new/%s,S=%zu", alice_dir, unique, len);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	close(fd);
}

/* Count files in alice's new/ and cur/, and those with the S flag. */
static void count_files(int *total_r, int *seen_r)
{
	*total_r = 0;
	*seen_r = 0;
	const char *sub[] = { "new", "cur" };
	for (int i = 0; i < 2; i++) {
		char path[600];
		snprintf(path, sizeof path, "%s/%s", alice_dir, sub[i]);
		DIR *dp = opendir(path);
		assert_non_null(dp);
		struct dirent *e;
		while ((e = readdir(dp)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			(*total_r)++;
			const char *info = strstr(e->d_name, ":2,");
			if (info != NULL && strchr(info, 'S') != NULL)
				(*seen_r)++;
		}
		closedir(dp);
	}
}

static const char msg1[] = "Subject: one\r\n\r\nbody one\r\n";
static const char msg2[] = "Subject: two\r\nX: y\r\n\r\n.leading dot\r\nline 2\r\n..two\r\n.\r\nlast";
static const char msg3[] = "Subject: three\r\n\r\nL1\r\nL2\r\nL3\r\n";

static int setup(void **state)
{
	snprintf(root, sizeof root, "/tmp/test_pop3d.%d", (int)getpid());
	rm_tree(root);
	assert_int_equal(maildir_account_path(root, "alice@example.test", alice_dir,
					      sizeof alice_dir), 0);
	assert_int_equal(maildir_create(alice_dir), 0);
	put_msg("1700000001.M1P1.host", msg1, sizeof msg1 - 1);
	put_msg("1700000002.M2P1.host", msg2, sizeof msg2 - 1);
	put_msg("1700000003.M3P1.host", msg3, sizeof msg3 - 1);

	struct fixture *f = yz_calloc(1, sizeof *f);
	f->loop = yz_loop_new();
	f->set = (struct pop3d_settings){
		.line_limit = LIMIT,
		.idle_timeout_ms = 600000,
		.plaintext_auth = true,
		.max_auth_failures = 3,
		.session_limit = 100,
		.maildir_root = root,
		.hostname = "mx.example.test",
	};
	struct pop3d_auth_backend be = { fake_start, f->loop };
	f->d = pop3d_new_with(f->loop, &f->set, server_tls, &be, on_idle, f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	pop3d_free(&f->d);
	/* Let pending fake answers run so they are freed. */
	struct yz_timer *t = yz_timer_add(f->loop, 20, stop_cb, NULL);
	(void)t;
	yz_loop_run(f->loop);
	yz_loop_free(&f->loop);
	free(f);
	rm_tree(root);
	return 0;
}

/* Recreate the server with other settings. */
static void reconfigure(struct fixture *f)
{
	pop3d_free(&f->d);
	struct pop3d_auth_backend be = { fake_start, f->loop };
	f->d = pop3d_new_with(f->loop, &f->set, server_tls, &be, on_idle, f);
}

static void login(struct client *c)
{
	cmd_expect(c, "USER alice\r\n", "+OK");
	cmd_expect(c, "PASS pw alice\r\n", "+OK");
}

/* ---- tests ---- */

static void test_capa_plaintext_off(void **state)
{
	struct fixture *f = *state;
	f->set.plaintext_auth = false;
	reconfigure(f);
	struct client *c = connect_client(f, false);
	char *capa = cmd_multi(c, "CAPA\r\n");
	assert_non_null(strstr(capa, "\r\nSTLS\r\n"));
	assert_non_null(strstr(capa, "\r\nUIDL\r\n"));
	assert_non_null(strstr(capa, "\r\nTOP\r\n"));
	assert_non_null(strstr(capa, "\r\nRESP-CODES\r\n"));
	assert_non_null(strstr(capa, "\r\nAUTH-RESP-CODE\r\n"));
	assert_non_null(strstr(capa, "\r\nPIPELINING\r\n"));
	assert_non_null(strstr(capa, "\r\nIMPLEMENTATION yizhan\r\n"));
	assert_null(strstr(capa, "\r\nUSER\r\n"));
	assert_null(strstr(capa, "SASL"));
	free(capa);
	cmd_expect(c, "USER alice\r\n", "-ERR [AUTH]");
	cmd_expect(c, "PASS x\r\n", "-ERR [AUTH]");
	cmd_expect(c, "AUTH PLAIN AGFsaWNlAHB3IGFsaWNl\r\n", "-ERR [AUTH]");
	cmd_expect(c, "AUTH\r\n", "+OK Mechanisms follow");
	char *l = wait_for(c, "\r\n");
	assert_string_equal(l, ".\r\n"); /* none offered without TLS */
	free(l);
	cmd_expect(c, "STAT\r\n", "-ERR");
	cmd_expect(c, "QUIT\r\n", "+OK");
	wait_eof(c);
	client_free(c);
}

static void test_transaction(void **state)
{
	struct fixture *f = *state;
	struct client *c = connect_client(f, false);
	char *capa = cmd_multi(c, "CAPA\r\n");
	assert_non_null(strstr(capa, "\r\nUSER\r\n"));
	assert_non_null(strstr(capa, "\r\nSASL PLAIN\r\n"));
	free(capa);
	cmd_expect(c, "PASS pw alice\r\n", "-ERR No user");
	login(c);
	char buf[256];
	snprintf(buf, sizeof buf, "+OK 3 %zu\r\n", sizeof msg1 + sizeof msg2 + sizeof msg3 - 3);
	char *r = cmd(c, "STAT\r\n");
	assert_string_equal(r, buf);
	free(r);
	r = cmd_multi(c, "LIST\r\n");
	snprintf(buf, sizeof buf, "+OK 3 messages (%zu octets)\r\n1 %zu\r\n2 %zu\r\n3 %zu\r\n.\r\n",
		 sizeof msg1 + sizeof msg2 + sizeof msg3 - 3, sizeof msg1 - 1, sizeof msg2 - 1,
		 sizeof msg3 - 1);
	assert_string_equal(r, buf);
	free(r);
	r = cmd(c, "LIST 2\r\n");
	snprintf(buf, sizeof buf, "+OK 2 %zu\r\n", sizeof msg2 - 1);
	assert_string_equal(r, buf);
	free(r);
	cmd_expect(c, "LIST 4\r\n", "-ERR No such message");
	r = cmd_multi(c, "UIDL\r\n");
	assert_string_equal(r, "+OK\r\n1 1700000001.M1P1.host\r\n2 1700000002.M2P1.host\r\n"
			       "3 1700000003.M3P1.host\r\n.\r\n");
	free(r);
	cmd_expect(c, "UIDL 3\r\n", "+OK 3 1700000003.M3P1.host");

	/* RETR: dot-stuffing and the missing last CRLF. */
	r = cmd_multi(c, "RETR 2\r\n");
	snprintf(buf, sizeof buf, "+OK %zu octets\r\n", sizeof msg2 - 1);
	assert_memory_equal(r, buf, strlen(buf));
	assert_string_equal(r + strlen(buf), "Subject: two\r\nX: y\r\n\r\n..leading dot\r\nline 2\r\n"
					     "...two\r\n..\r\nlast\r\n.\r\n");
	free(r);
	r = cmd_multi(c, "RETR 1\r\n");
	assert_non_null(strstr(r, "\r\nbody one\r\n.\r\n"));
	free(r);
	/* TOP: headers, the empty line, n body lines. */
	r = cmd_multi(c, "TOP 3 0\r\n");
	assert_string_equal(r, "+OK\r\nSubject: three\r\n\r\n.\r\n");
	free(r);
	r = cmd_multi(c, "TOP 3 2\r\n");
	assert_string_equal(r, "+OK\r\nSubject: three\r\n\r\nL1\r\nL2\r\n.\r\n");
	free(r);
	r = cmd_multi(c, "TOP 3 99\r\n");
	assert_string_equal(r, "+OK\r\nSubject: three\r\n\r\nL1\r\nL2\r\nL3\r\n.\r\n");
	free(r);
	r = cmd_multi(c, "TOP 2 1\r\n");
	assert_string_equal(r, "+OK\r\nSubject: two\r\nX: y\r\n\r\n..leading dot\r\n.\r\n");
	free(r);
	/* RETR marks seen (off the loop: on disk by QUIT's answer); TOP does
	 * not. */
	int total, seen;
	count_files(&total, &seen);
	assert_int_equal(total, 3);

	/* DELE, RSET, DELE, UPDATE. */
	cmd_expect(c, "DELE 1\r\n", "+OK");
	cmd_expect(c, "DELE 1\r\n", "-ERR Message 1 already deleted");
	cmd_expect(c, "RETR 1\r\n", "-ERR");
	cmd_expect(c, "STAT\r\n", "+OK 2 ");
	r = cmd_multi(c, "LIST\r\n");
	assert_null(strstr(r, "\r\n1 "));
	free(r);
	cmd_expect(c, "RSET\r\n", "+OK 3 messages");
	cmd_expect(c, "STAT\r\n", "+OK 3 ");
	cmd_expect(c, "DELE 2\r\n", "+OK");
	cmd_expect(c, "NOOP\r\n", "+OK");
	cmd_expect(c, "USER bob\r\n", "-ERR Already logged in");
	cmd_expect(c, "RETR 0\r\n", "-ERR");
	cmd_expect(c, "TOP 1\r\n", "-ERR");
	cmd_expect(c, "XYZZY\r\n", "-ERR Unknown command");
	cmd_expect(c, "QUIT\r\n", "+OK");
	wait_eof(c);
	client_free(c);
	wait_sessions(f, 0);
	count_files(&total, &seen);
	assert_int_equal(total, 2);
	assert_int_equal(seen, 1);
	assert_true(f->idle_calls >= 1);

	/* UIDLs are stable across sessions. */
	c = connect_client(f, false);
	login(c);
	r = cmd_multi(c, "UIDL\r\n");
	assert_string_equal(r, "+OK\r\n1 1700000001.M1P1.host\r\n2 1700000003.M3P1.host\r\n.\r\n");
	free(r);
	cmd_expect(c, "QUIT\r\n", "+OK");
	wait_eof(c);
	client_free(c);
}

static void test_drop_deletes_nothing_and_in_use(void **state)
{
	struct fixture *f = *state;
	struct client *c = connect_client(f, false);
	login(c);
	cmd_expect(c, "DELE 1\r\n", "+OK");
	cmd_expect(c, "DELE 2\r\n", "+OK");

	/* A second session of the same mailbox is refused while c holds it. */
	struct client *c2 = connect_client(f, false);
	cmd_expect(c2, "USER alice\r\n", "+OK");
	cmd_expect(c2, "PASS pw alice\r\n", "-ERR [IN-USE]");
	cmd_expect(c2, "STAT\r\n", "-ERR Not logged in");

	client_drop(f, c);
	int total, seen;
	count_files(&total, &seen);
	assert_int_equal(total, 3);
	/* The lock went with the dropped session. */
	login(c2);
	cmd_expect(c2, "STAT\r\n", "+OK 3 ");
	cmd_expect(c2, "QUIT\r\n", "+OK");
	wait_eof(c2);
	client_free(c2);
}

static void test_auth_failures(void **state)
{
	struct fixture *f = *state;
	struct client *c = connect_client(f, false);
	cmd_expect(c, "USER alice\r\n", "+OK");
	cmd_expect(c, "PASS wrong\r\n", "-ERR [AUTH]");
	cmd_expect(c, "USER off\r\n", "+OK");
	cmd_expect(c, "PASS pw alice\r\n", "-ERR [AUTH]");
	/* Not a failure: the directory could not answer. */
	cmd_expect(c, "USER temp\r\n", "+OK");
	cmd_expect(c, "PASS x\r\n", "-ERR [SYS/TEMP]");
	cmd_expect(c, "USER down\r\n", "+OK");
	cmd_expect(c, "PASS x\r\n", "-ERR [SYS/TEMP]");
	cmd_expect(c, "USER alice\r\n", "+OK");
	cmd_expect(c, "PASS wrong again\r\n", "-ERR [AUTH]");
	wait_eof(c); /* the third failure ends the session */
	client_free(c);
	assert_int_equal(pop3d_sessions(f->d), 0);
}

static void test_sasl_plain(void **state)
{
	struct fixture *f = *state;
	struct client *c = connect_client(f, false);
	cmd_expect(c, "AUTH CRAM-MD5\r\n", "-ERR Unsupported");
	char *l = cmd_multi(c, "AUTH\r\n");
	assert_string_equal(l, "+OK Mechanisms follow\r\nPLAIN\r\n.\r\n");
	free(l);
	/* Continuation form, cancelled. */
	cmd_expect(c, "AUTH PLAIN\r\n", "+ ");
	cmd_expect(c, "*\r\n", "-ERR Authentication cancelled");
	/* Bad base64. */
	cmd_expect(c, "AUTH PLAIN !!!!\r\n", "-ERR Invalid base64");
	/* authzid other than authcid: "bob\0alice\0pw alice". */
	cmd_expect(c, "AUTH PLAIN Ym9iAGFsaWNlAHB3IGFsaWNl\r\n", "-ERR [AUTH]");
	/* Continuation form, right: "\0alice\0pw alice". */
	cmd_expect(c, "AUTH PLAIN\r\n", "+ ");
	cmd_expect(c, "AGFsaWNlAHB3IGFsaWNl\r\n", "+OK");
	cmd_expect(c, "STAT\r\n", "+OK 3 ");
	cmd_expect(c, "QUIT\r\n", "+OK");
	wait_eof(c);
	client_free(c);
	/* Initial response with authzid = authcid. */
	c = connect_client(f, false);
	cmd_expect(c, "AUTH PLAIN YWxpY2UAYWxpY2UAcHcgYWxpY2U=\r\n", "+OK");
	cmd_expect(c, "QUIT\r\n", "+OK");
	wait_eof(c);
	client_free(c);
}

static void test_line_limit_and_pipelining(void **state)
{
	struct fixture *f = *state;
	struct client *c = connect_client(f, false);
	char line[LIMIT + 16];
	/* Exactly LIMIT bytes with CRLF: accepted (an unknown user is fine). */
	memset(line, 'u', sizeof line);
	memcpy(line, "USER ", 5);
	memcpy(line + LIMIT - 2, "\r\n", 2);
	send_raw(c, line, LIMIT);
	char *r = wait_for(c, "\r\n");
	assert_string_equal(r, "+OK\r\n");
	free(r);
	/* One more byte: -ERR, and the next command still works. */
	memcpy(line + LIMIT - 2, "u\r\n", 3);
	send_raw(c, line, LIMIT + 1);
	r = wait_for(c, "\r\n");
	assert_string_equal(r, "-ERR Line too long\r\n");
	free(r);
	cmd_expect(c, "CAPA\r\n", "+OK");
	free(wait_for(c, "\r\n.\r\n"));
	/* Byte at a time. */
	const char *noop = "USER alice\r\n";
	for (size_t i = 0; i < strlen(noop); i++)
		send_raw(c, noop + i, 1);
	r = wait_for(c, "\r\n");
	assert_string_equal(r, "+OK\r\n");
	free(r);
	/* Pipelined: one write, answers in order. */
	const char *batch = "PASS pw alice\r\nSTAT\r\nLIST 1\r\nUIDL 1\r\nNOOP\r\nBAD\r\nQUIT\r\n";
	send_raw(c, batch, strlen(batch));
	wait_eof(c);
	const char *in = yz_buf_cstr(&c->in);
	const char *p = in;
	const char *expect[] = { "+OK Logged in", "+OK 3 ", "+OK 1 ", "+OK 1 1700000001",
				 "+OK\r\n", "-ERR Unknown", "+OK Logging out" };
	for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
		p = strstr(p, expect[i]);
		if (p == NULL)
			fail_msg("missing %s in %s", expect[i], in);
	}
	client_free(c);
}

static void test_big_retr(void **state)
{
	struct fixture *f = *state;
	/* 3 MiB of lines, every third starting with a dot. */
	struct yz_buf m;
	yz_buf_init(&m, 0);
	yz_buf_append_str(&m, "Subject: big\r\n\r\n");
	for (int i = 0; yz_buf_len(&m) < (3u << 20); i++)
		yz_buf_printf(&m, "%sline %d of the big message, padded to be long enough\r\n",
			      i % 3 == 0 ? "." : "", i);
	put_msg("1700000009.M9P1.host", yz_buf_data(&m), yz_buf_len(&m));
	struct client *c = connect_client(f, false);
	login(c);
	char *r = cmd_multi(c, "RETR 4\r\n");
	char *body = strstr(r, "\r\n") + 2;
	/* Unstuff and compare. */
	struct yz_buf un;
	yz_buf_init(&un, 0);
	const char *p = body;
	bool bol = true;
	size_t blen = strlen(body) - 3; /* without ".\r\n" */
	for (size_t i = 0; i < blen; i++) {
		if (bol && p[i] == '.') {
			bol = false;
			continue;
		}
		yz_buf_append_c(&un, p[i]);
		bol = p[i] == '\n';
	}
	assert_int_equal(yz_buf_len(&un), yz_buf_len(&m));
	assert_memory_equal(yz_buf_data(&un), yz_buf_data(&m), yz_buf_len(&m));
	free(r);
	yz_buf_free(&un);
	yz_buf_free(&m);
	cmd_expect(c, "QUIT\r\n", "+OK");
	wait_eof(c);
	client_free(c);
}

/* Many pipelined RETRs over a connection whose buffers take everything at
 * once: when the answers queued reach the output high-water mark just as a
 * message ends, the remaining commands must not wait for a DRAINED event
 * that never comes. */
static void test_pipelined_retrs_fill_output(void **state)
{
	struct fixture *f = *state;
	size_t len = 5000;
	char *big = yz_malloc(len);
	for (size_t i = 0; i < len; i++)
		big[i] = (i % 70 == 68) ? '\r' : (i % 70 == 69) ? '\n' : 'x';
	put_msg("1700000009.M9P1.host", big, len);
	free(big);
	struct client *c = connect_client_buf(f, false, 16 << 20);
	login(c);
	/* All in the read buffer at once: no READABLE event will come either. */
	enum { N = 300, NOOPS = 100 };
	size_t cap = N * 8 + NOOPS * 6 + 8;
	char *cmds = yz_malloc(cap);
	size_t o = 0;
	for (int i = 0; i < N; i++)
		o += (size_t)snprintf(cmds + o, cap - o, "RETR 4\r\n");
	for (int i = 0; i < NOOPS; i++)
		o += (size_t)snprintf(cmds + o, cap - o, "NOOP\r\n");
	o += (size_t)snprintf(cmds + o, cap - o, "QUIT\r\n");
	send_raw(c, cmds, o);
	free(cmds);
	for (int i = 0; i < N; i++) {
		char *r = wait_for(c, "\r\n.\r\n");
		assert_non_null(r);
		assert_true(strncmp(r, "+OK ", 4) == 0);
		assert_true(strlen(r) > len);
		free(r);
	}
	for (int i = 0; i < NOOPS; i++) {
		char *r = wait_for(c, "\r\n");
		assert_non_null(r);
		assert_string_equal(r, "+OK\r\n");
		free(r);
	}
	char *q = wait_for(c, "\r\n");
	assert_non_null(q);
	assert_true(strncmp(q, "+OK Logging out", 15) == 0);
	free(q);
	wait_eof(c);
	client_free(c);
}

static void test_stls_injection(void **state)
{
	struct fixture *f = *state;
	f->set.plaintext_auth = false;
	reconfigure(f);
	struct client *c = connect_client(f, false);
	/* STLS and a pipelined plaintext command in one packet. */
	send_raw(c, "STLS\r\nUSER injected\r\n", 20);
	char *r = wait_for(c, "\r\n");
	assert_string_equal(r, "+OK Begin TLS negotiation\r\n");
	free(r);
	assert_int_equal(yz_io_starttls(c->io, client_tls, false), 0);
	r = cmd_multi(c, "CAPA\r\n");
	assert_true(c->tls_ready);
	assert_null(strstr(r, "STLS"));
	assert_non_null(strstr(r, "\r\nUSER\r\n"));
	assert_non_null(strstr(r, "\r\nSASL PLAIN\r\n"));
	free(r);
	/* Only one answer came: the injected USER was never run. */
	assert_int_equal(yz_buf_len(&c->in), 0);
	cmd_expect(c, "PASS pw alice\r\n", "-ERR No user");
	cmd_expect(c, "STLS\r\n", "-ERR");
	login(c);
	cmd_expect(c, "QUIT\r\n", "+OK");
	wait_eof(c);
	client_free(c);
}

static void test_implicit_tls(void **state)
{
	struct fixture *f = *state;
	f->set.plaintext_auth = false;
	reconfigure(f);
	struct client *c = connect_client(f, true);
	assert_true(c->tls_ready);
	char *r = cmd_multi(c, "CAPA\r\n");
	assert_null(strstr(r, "STLS"));
	assert_non_null(strstr(r, "\r\nUSER\r\n"));
	free(r);
	login(c);
	r = cmd_multi(c, "RETR 1\r\n");
	assert_non_null(strstr(r, "body one\r\n.\r\n"));
	free(r);
	cmd_expect(c, "QUIT\r\n", "+OK");
	wait_eof(c);
	client_free(c);
}

/* RETR's seen marks run off the loop: a dropped session is freed (and its
 * lock released) only once they are on disk; QUIT's UPDATE expunges a
 * message whose mark was still in flight; freeing the server applies what
 * is queued. */
static void test_seen_marks_settle(void **state)
{
	struct fixture *f = *state;
	int total, seen;

	struct client *c = connect_client(f, false);
	login(c);
	char *r = cmd_multi(c, "RETR 1\r\n");
	free(r);
	r = cmd_multi(c, "RETR 2\r\n");
	free(r);
	r = cmd_multi(c, "RETR 2\r\n"); /* again: one mark, the file found */
	assert_non_null(strstr(r, "\r\nlast\r\n.\r\n"));
	free(r);
	client_drop(f, c);
	count_files(&total, &seen);
	assert_int_equal(total, 3);
	assert_int_equal(seen, 2);

	/* Pipelined: the mark of 3 may be in flight when QUIT runs UPDATE. */
	c = connect_client(f, false);
	login(c);
	const char batch[] = "RETR 3\r\nDELE 3\r\nQUIT\r\n";
	send_raw(c, batch, sizeof batch - 1);
	char *all = wait_for(c, "+OK Logging out, 1 messages deleted\r\n");
	assert_non_null(all);
	free(all);
	wait_eof(c);
	client_free(c);
	wait_sessions(f, 0);
	count_files(&total, &seen);
	assert_int_equal(total, 2);
	assert_int_equal(seen, 2);

	/* A server freed with marks queued applies them first. */
	put_msg("1700000004.M4P1.host", msg1, sizeof msg1 - 1);
	put_msg("1700000005.M5P1.host", msg3, sizeof msg3 - 1);
	c = connect_client(f, false);
	login(c);
	r = cmd_multi(c, "RETR 3\r\n");
	free(r);
	r = cmd_multi(c, "RETR 4\r\n");
	free(r);
	pop3d_free(&f->d);
	count_files(&total, &seen);
	assert_int_equal(total, 4);
	assert_int_equal(seen, 4);
	client_free(c);
	reconfigure(f);

	/* QUIT answers while marks are still being written; the session keeps
	 * the lock until they are, and a new login of the mailbox waits for
	 * them (no [IN-USE]). */
	put_msg("1700000006.M6P1.host", msg1, sizeof msg1 - 1);
	put_msg("1700000007.M7P1.host", msg3, sizeof msg3 - 1);
	pop3_seen_hold(f->d, true);
	c = connect_client(f, false);
	login(c);
	r = cmd_multi(c, "RETR 1\r\n"); /* already seen: no mark */
	free(r);
	r = cmd_multi(c, "RETR 5\r\n");
	free(r);
	r = cmd_multi(c, "RETR 6\r\n");
	free(r);
	cmd_expect(c, "QUIT\r\n", "+OK Logging out, 0 messages deleted");
	wait_eof(c);
	client_free(c);
	assert_int_equal(pop3d_sessions(f->d), 1); /* lingering */
	struct client *c2 = connect_client(f, false);
	cmd_expect(c2, "USER alice\r\n", "+OK");
	send_raw(c2, "PASS pw alice\r\n", strlen("PASS pw alice\r\n"));
	struct yz_timer *t = yz_timer_add(f->loop, 50, stop_cb, NULL);
	(void)t;
	yz_loop_run(f->loop);
	assert_int_equal(yz_buf_len(&c2->in), 0); /* waits for the marks */
	pop3_seen_hold(f->d, false);
	r = wait_for(c2, "\r\n");
	assert_non_null(r);
	assert_true(strncmp(r, "+OK Logged in, 6 messages", 25) == 0);
	free(r);
	count_files(&total, &seen);
	assert_int_equal(total, 6);
	assert_int_equal(seen, 6);
	cmd_expect(c2, "QUIT\r\n", "+OK");
	wait_eof(c2);
	client_free(c2);
	wait_sessions(f, 0);
}

static void test_idle_timeout(void **state)
{
	struct fixture *f = *state;
	f->set.idle_timeout_ms = 100;
	reconfigure(f);
	struct client *c = connect_client(f, false);
	login(c);
	cmd_expect(c, "DELE 1\r\n", "+OK");
	wait_eof(c);
	assert_non_null(strstr(yz_buf_cstr(&c->in), "-ERR Disconnected for inactivity"));
	client_free(c);
	int total, seen;
	count_files(&total, &seen);
	assert_int_equal(total, 3); /* a timeout never runs UPDATE */
}

static void test_session_limit_and_stop(void **state)
{
	struct fixture *f = *state;
	f->set.session_limit = 1;
	reconfigure(f);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(lfd, 8), 0);
	socklen_t sl = sizeof sa;
	getsockname(lfd, (struct sockaddr *)&sa, &sl);
	pop3d_listen(f->d, "pop3", lfd);

	struct client *cl[2];
	for (int i = 0; i < 2; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
		cl[i] = yz_calloc(1, sizeof *cl[i]);
		cl[i]->loop = f->loop;
		yz_buf_init(&cl[i]->in, 0);
		cl[i]->io = yz_io_new(f->loop, fd, 4096, 4096);
		yz_io_set_handler(cl[i]->io, client_cb, cl[i]);
		char *g = wait_for(cl[i], "\r\n");
		assert_non_null(g);
		assert_true(strncmp(g, i == 0 ? "+OK" : "-ERR [SYS/TEMP]", 3) == 0);
		free(g);
	}
	assert_int_equal(pop3d_sessions(f->d), 1);
	pop3d_stop(f->d);
	/* The open session goes on after the stop. */
	cmd_expect(cl[0], "CAPA\r\n", "+OK");
	free(wait_for(cl[0], "\r\n.\r\n"));
	int idle_before = f->idle_calls;
	cmd_expect(cl[0], "QUIT\r\n", "+OK");
	wait_eof(cl[0]);
	assert_int_equal(f->idle_calls, idle_before + 1);
	client_free(cl[0]);
	client_free(cl[1]);
	/* pop3d_listen of an unknown name closes it. */
	int dummy = socket(AF_INET, SOCK_STREAM, 0);
	pop3d_listen(f->d, "imap", dummy);
	assert_int_equal(fcntl(dummy, F_GETFD), -1);
}

static void test_uidl_mapping(void **state)
{
	char out[POP3D_UIDL_MAX + 1];
	pop3_uidl("1700000000.M1P1.host", out, sizeof out);
	assert_string_equal(out, "1700000000.M1P1.host");
	char seventy[71], seventyone[72];
	memset(seventy, 'a', 70);
	seventy[70] = '\0';
	memset(seventyone, 'a', 71);
	seventyone[71] = '\0';
	pop3_uidl(seventy, out, sizeof out);
	assert_string_equal(out, seventy);
	pop3_uidl(seventyone, out, sizeof out);
	assert_int_equal(out[0], '~');
	assert_int_equal(strlen(out), 65);
	char again[POP3D_UIDL_MAX + 1];
	pop3_uidl(seventyone, again, sizeof again);
	assert_string_equal(out, again); /* deterministic */
	pop3_uidl("with space", out, sizeof out);
	assert_int_equal(out[0], '~');
	pop3_uidl("~tilde", again, sizeof again);
	assert_int_equal(again[0], '~');
	assert_string_not_equal(again, "~tilde");
	assert_string_not_equal(out, again);
	pop3_uidl("caf\xc3\xa9", out, sizeof out);
	for (size_t i = 0; out[i]; i++)
		assert_true(out[i] >= 0x21 && out[i] <= 0x7e);
}

static void test_base64_and_plain(void **state)
{
	unsigned char out[64];
	assert_int_equal(pop3_base64_decode("", 0, out, sizeof out), 0);
	assert_int_equal(pop3_base64_decode("YQ==", 4, out, sizeof out), 1);
	assert_int_equal(out[0], 'a');
	assert_int_equal(pop3_base64_decode("YWI=", 4, out, sizeof out), 2);
	assert_int_equal(pop3_base64_decode("YWJj", 4, out, sizeof out), 3);
	assert_int_equal(pop3_base64_decode("YWJj", 4, out, 2), -1); /* over outsz */
	assert_int_equal(pop3_base64_decode("YWJ", 3, out, sizeof out), -1);
	assert_int_equal(pop3_base64_decode("Y===", 4, out, sizeof out), -1);
	assert_int_equal(pop3_base64_decode("YR==", 4, out, sizeof out), -1); /* stray bits */
	assert_int_equal(pop3_base64_decode("YQ==YQ==", 8, out, sizeof out), -1);
	assert_int_equal(pop3_base64_decode("Y Q=", 4, out, sizeof out), -1);
	struct yz_slice z, a, p;
	assert_int_equal(pop3_sasl_plain_split((const unsigned char *)"\0u\0p", 4, &z, &a, &p), 0);
	assert_int_equal(z.len, 0);
	assert_int_equal(a.len, 1);
	assert_int_equal(p.len, 1);
	assert_int_equal(pop3_sasl_plain_split((const unsigned char *)"\0u\0", 3, &z, &a, &p), -1);
	assert_int_equal(pop3_sasl_plain_split((const unsigned char *)"\0\0p", 3, &z, &a, &p), -1);
	assert_int_equal(pop3_sasl_plain_split((const unsigned char *)"up", 2, &z, &a, &p), -1);
	assert_int_equal(pop3_sasl_plain_split((const unsigned char *)"\0u\0p\0q", 6, &z, &a, &p),
			 -1);
	unsigned char big[POP3D_SASL_ID_MAX + 4];
	memset(big, 'x', sizeof big);
	big[0] = '\0';
	big[POP3D_SASL_ID_MAX + 1] = '\0'; /* authcid of exactly the maximum */
	assert_int_equal(pop3_sasl_plain_split(big, POP3D_SASL_ID_MAX + 3, &z, &a, &p), 0);
	big[POP3D_SASL_ID_MAX + 1] = 'x';
	big[POP3D_SASL_ID_MAX + 2] = '\0'; /* one more */
	assert_int_equal(pop3_sasl_plain_split(big, POP3D_SASL_ID_MAX + 4, &z, &a, &p), -1);
}

static int group_setup(void **state)
{
	yz_log_init("test", false);
	yz_log_set_level(YZ_LOG_WARN);
	char dir[] = "/tmp/test_pop3d_tls.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char cert[128], key[128];
	snprintf(cert, sizeof cert, "%s/cert.pem", dir);
	snprintf(key, sizeof key, "%s/key.pem", dir);
	const char *error = NULL;
	if (yz_tls_make_selfsigned(cert, key, "mx.example.test", &error) < 0)
		fail_msg("selfsigned: %s", error);
	server_tls = yz_tls_server_ctx_new(cert, key, &error);
	client_tls = yz_tls_client_ctx_new(&error);
	assert_non_null(server_tls);
	assert_non_null(client_tls);
	unlink(cert);
	unlink(key);
	rmdir(dir);
	return 0;
}

static int group_teardown(void **state)
{
	yz_tls_ctx_free(&server_tls);
	yz_tls_ctx_free(&client_tls);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_capa_plaintext_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_deletes_nothing_and_in_use, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auth_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sasl_plain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_limit_and_pipelining, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_retr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_retrs_fill_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stls_injection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_implicit_tls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seen_marks_settle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_limit_and_stop, setup, teardown),
		cmocka_unit_test(test_uidl_mapping),
		cmocka_unit_test(test_base64_and_plain),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

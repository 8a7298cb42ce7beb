/*
 * fuzz_io_lines.c: the io line reader (yz_io_read_line/skip_line) fed by a
 * socketpair in fuzzer-chosen chunks, checked against a reference model:
 * every complete line of at most max bytes before its LF comes out raw and in
 * order; every longer line is skipped whole; nothing else comes out.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/io.h"
#include "lib/loop.h"

struct fz {
	struct yz_loop *loop;
	struct yz_io *io;
	size_t max;
	struct yz_buf out;   /* OK lines, concatenated */
	size_t toolong;
	int eof;
};

static void fz_handler(struct yz_io *io, enum yz_io_event ev, void *arg)
{
	struct fz *f = arg;
	if (ev == YZ_IO_EOF)
		f->eof = 1;
	for (;;) {
		struct yz_slice line;
		enum yz_line_result r = yz_io_read_line(io, f->max, &line);
		if (r == YZ_LINE_AGAIN)
			break;
		if (r == YZ_LINE_TOOLONG) {
			f->toolong++;
			yz_io_skip_line(io);
			continue;
		}
		if (line.len == 0 || line.len > f->max + 1 || line.p[line.len - 1] != '\n' ||
		    memchr(line.p, '\n', line.len - 1) != NULL)
			abort();
		if (yz_buf_append_slice(&f->out, line) < 0)
			abort();
		yz_io_consume(io, line.len);
	}
}

static void fz_stop(struct yz_loop *loop, void *arg)
{
	yz_loop_stop(loop);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	struct fz f;
	memset(&f, 0, sizeof f);
	f.max = data[0] % 64;
	size_t rbuf_max = f.max + 1 + data[1] % 64;
	data += 2;
	size -= 2;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	f.loop = yz_loop_new();
	f.io = yz_io_new(f.loop, sv[0], rbuf_max, 1024);
	yz_buf_init(&f.out, 1 << 20);
	yz_io_set_handler(f.io, fz_handler, &f);
	struct yz_buf stream;
	yz_buf_init(&stream, 1 << 20);
	size_t i = 0;
	while (i < size) {
		size_t n = 1 + data[i] % 16;
		i++;
		if (n > size - i)
			n = size - i;
		if (n > 0 && write(sv[1], data + i, n) != (ssize_t)n)
			abort();
		yz_buf_append(&stream, data + i, n);
		i += n;
		yz_timer_add(f.loop, 0, fz_stop, NULL);
		yz_loop_run(f.loop);
	}
	close(sv[1]);
	for (int rounds = 0; !f.eof && rounds < 10000; rounds++) {
		yz_timer_add(f.loop, 0, fz_stop, NULL);
		yz_loop_run(f.loop);
	}
	if (!f.eof)
		abort();
	/* Reference model. */
	struct yz_buf want;
	yz_buf_init(&want, 1 << 20);
	const char *p = yz_buf_data(&stream);
	size_t len = yz_buf_len(&stream), start = 0;
	size_t toolong = 0;
	for (size_t k = 0; k < len; k++) {
		if (p[k] != '\n')
			continue;
		if (k - start <= f.max)
			yz_buf_append(&want, p + start, k - start + 1);
		else
			toolong++;
		start = k + 1;
	}
	if (len - start > f.max)
		toolong++;
	if (!yz_slice_eq(yz_buf_slice(&want), yz_buf_slice(&f.out)) || toolong != f.toolong)
		abort();
	yz_buf_free(&want);
	yz_buf_free(&stream);
	yz_buf_free(&f.out);
	yz_io_free(&f.io);
	yz_loop_run(f.loop);
	yz_loop_free(&f.loop);
	return 0;
}

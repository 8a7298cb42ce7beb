/*
 * fuzz_queue_seg.c: libFuzzer target for the queue store's segment log
 * (src/store/queue/queue_seg.c) as the queue role meets it after a crash or
 * on a bad disk: the input becomes a segment file (and, after a 0xff byte,
 * its done file) in a scratch queue directory, which a fresh store then
 * lists, loads, reads and finishes. When the first byte is odd, the
 * checksums of every record laid out in the input are fixed up first, so
 * that the envelope decoder and the record bounds are reached too.
 */
#include <fcntl.h>
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/queue/queue_private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

/* nftw callback removing everything. */
static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Write len bytes to dir/log/name. */
static void put_file(const char *name, const uint8_t *p, size_t len)
{
	char path[128];
	snprintf(path, sizeof path, "%s/log/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		abort();
	if (len > 0 && write(fd, p, len) != (ssize_t)len)
		abort();
	close(fd);
}

/* Recompute header and image checksums of the records laid out in buf. */
static void fix_crcs(uint8_t *buf, size_t len)
{
	size_t off = 0;
	while (off + QUEUE_SEG_HDR_LEN <= len) {
		uint8_t *h = buf + off;
		uint32_t clen = (uint32_t)h[20] | (uint32_t)h[21] << 8;  /* small lengths only */
		uint32_t elen = (uint32_t)h[24] | (uint32_t)h[25] << 8;
		memcpy(h, QUEUE_SEG_MAGIC, 4);
		h[4] = QUEUE_SEG_VERSION;
		h[5] = 0;
		h[6] = QUEUE_SEG_HDR_LEN;
		h[7] = 0;
		memset(h + 22, 0, 2);
		memset(h + 26, 0, 2);
		memset(h + 32, 0, 4);
		size_t ilen = (size_t)clen + elen + QUEUE_TRAILER_LEN;
		size_t have = len - off - QUEUE_SEG_HDR_LEN;
		uint32_t icrc = queue_crc32c(0, h + QUEUE_SEG_HDR_LEN, ilen < have ? ilen : have);
		for (int i = 0; i < 4; i++)
			h[28 + i] = (uint8_t)(icrc >> (8 * i));
		uint32_t hcrc = queue_crc32c(0, h, 36);
		for (int i = 0; i < 4; i++)
			h[36 + i] = (uint8_t)(hcrc >> (8 * i));
		off += QUEUE_SEG_HDR_LEN + ilen;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (dir[0] == '\0') {
		snprintf(dir, sizeof dir, "/tmp/yz-fuzz-seg.XXXXXX");
		if (mkdtemp(dir) == NULL)
			abort();
	}
	struct queue_store *s;
	const char *err;
	if (queue_store_open(dir, &s, &err) < 0)
		abort();
	bool fix = data[0] & 1;
	data++;
	size--;
	const uint8_t *sep = memchr(data, 0xff, size);
	size_t seg_len = sep != NULL ? (size_t)(sep - data) : size;
	uint8_t *seg = malloc(seg_len + 1);
	if (seg == NULL)
		abort();
	memcpy(seg, data, seg_len);
	if (fix)
		fix_crcs(seg, seg_len);
	char name[QUEUE_ID_MAX], done[QUEUE_ID_MAX + 8];
	queue_id_new(name);
	snprintf(done, sizeof done, "%s.done", name);
	put_file(name, seg, seg_len);
	if (sep != NULL)
		put_file(done, sep + 1, size - seg_len - 1);
	free(seg);

	char(*ids)[QUEUE_ID_MAX];
	size_t n;
	if (queue_list(s, &ids, &n, &err) == 0) {
		for (size_t i = 0; i < n; i++) {
			struct queue_msg *m;
			if (queue_msg_load(s, ids[i], &m, &err) == 0)
				queue_msg_free(&m);
			uint64_t off, len;
			int fd = queue_msg_content_fd(s, ids[i], &off, &len, &err);
			if (fd >= 0)
				close(fd);
			(void)queue_msg_remove(s, ids[i], &err);
		}
		free(ids);
	}
	queue_store_close(&s);
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

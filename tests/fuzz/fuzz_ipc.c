/*
 * fuzz_ipc.c: libFuzzer target for the IPC codec (ipc.h).
 *
 * The input is a byte stream of frames: each frame found by
 * yz_ipc_frame_parse() has its payload scanned, then every field walked with
 * the typed getters, re-encoded with the writer, and the re-encoding must be
 * byte-identical to the input payload (the codec is a bijection on valid
 * payloads). Descriptors are stand-ins (-1): nothing is opened or closed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/ipc.h"

/* Walk the fields of a payload that the scan accepted; abort on any
 * disagreement between scan, reader and writer. */
static void walk(const struct yz_ipc_hdr *hdr, const char *payload, size_t nfds)
{
	int fds[YZ_IPC_FDS_MAX];
	struct yz_ipc_reader r;
	struct yz_ipc_msg m;

	for (size_t i = 0; i < YZ_IPC_FDS_MAX; i++)
		fds[i] = -1;
	yz_ipc_reader_init(&r, payload, hdr->len, fds, nfds);
	yz_ipc_msg_init(&m, hdr->type, hdr->reqid);
	while (r.pos < r.len && !r.failed) {
		uint32_t u32;
		uint64_t u64;
		int64_t i64;
		bool b;
		struct yz_slice s;
		int fd;
		switch (r.p[r.pos]) {
		case YZ_IPC_T_U32:
			if (yz_ipc_get_u32(&r, &u32) == 0)
				yz_ipc_put_u32(&m, u32);
			break;
		case YZ_IPC_T_U64:
			if (yz_ipc_get_u64(&r, &u64) == 0)
				yz_ipc_put_u64(&m, u64);
			break;
		case YZ_IPC_T_I64:
			if (yz_ipc_get_i64(&r, &i64) == 0)
				yz_ipc_put_i64(&m, i64);
			break;
		case YZ_IPC_T_BOOL:
			if (yz_ipc_get_bool(&r, &b) == 0)
				yz_ipc_put_bool(&m, b);
			break;
		case YZ_IPC_T_STR:
			if (yz_ipc_get_str(&r, YZ_IPC_FRAME_MAX, &s) == 0) {
				yz_ipc_put_slice(&m, s);
			} else {
				/* a NUL inside: the same bytes must be valid BYTES */
				r.failed = false;
				size_t save = r.pos;
				char *copy = malloc(hdr->len - save);
				if (copy == NULL)
					abort();
				memcpy(copy, payload + save, hdr->len - save);
				copy[0] = YZ_IPC_T_BYTES;
				struct yz_ipc_reader r2;
				yz_ipc_reader_init(&r2, copy, hdr->len - save, NULL, 0);
				if (yz_ipc_get_bytes(&r2, YZ_IPC_FRAME_MAX, &s) < 0 ||
				    memchr(s.p, '\0', s.len) == NULL)
					abort();
				yz_ipc_reader_free(&r2);
				free(copy);
				r.failed = true;
			}
			break;
		case YZ_IPC_T_BYTES:
			if (yz_ipc_get_bytes(&r, YZ_IPC_FRAME_MAX, &s) == 0)
				yz_ipc_put_bytes(&m, s.p, s.len);
			break;
		case YZ_IPC_T_FD:
			if (yz_ipc_get_fd(&r, &fd) == 0 && !m.failed) {
				/* the writer needs a real-looking fd; 0 is never closed here */
				yz_ipc_put_fd(&m, 0);
				m.fds[m.nfds - 1] = -1;
			}
			break;
		default:
			abort(); /* the scan accepted an unknown tag */
		}
	}
	bool had_nul = r.failed;
	if (!had_nul) {
		struct yz_slice f;
		if (yz_ipc_end(&r) < 0 || yz_ipc_msg_frame(&m, &f) < 0)
			abort();
		if (f.len != YZ_IPC_HDR_SIZE + hdr->len ||
		    memcmp(f.p + YZ_IPC_HDR_SIZE, payload, hdr->len) != 0)
			abort();
	}
	yz_ipc_reader_free(&r);
	yz_ipc_msg_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;

	while (size > 0) {
		struct yz_ipc_hdr hdr;
		enum yz_ipc_parse ret = yz_ipc_frame_parse(p, size, &hdr);
		if (ret != YZ_IPC_OK)
			break;
		const char *payload = p + YZ_IPC_HDR_SIZE;
		size_t nfds;
		if (yz_ipc_payload_scan(payload, hdr.len, &nfds) == 0) {
			walk(&hdr, payload, nfds);
		} else {
			/* A payload the scan rejects never decodes to the end. */
			struct yz_ipc_reader r;
			yz_ipc_reader_init(&r, payload, hdr.len, NULL, 0);
			uint32_t v;
			while (yz_ipc_get_u32(&r, &v) == 0)
				;
			if (yz_ipc_end(&r) == 0)
				abort();
			yz_ipc_reader_free(&r);
		}
		p += YZ_IPC_HDR_SIZE + hdr.len;
		size -= YZ_IPC_HDR_SIZE + hdr.len;
	}
	return 0;
}

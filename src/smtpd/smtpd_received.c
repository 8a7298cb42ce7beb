/*
 * smtpd_received.c: the text smtpd adds to a message: the Received: field
 * (RFC 5321 4.4, RFC 3848 protocol names, TLS details in a comment as
 * Postfix writes them).
 *
 * Guarantees: pure functions; every client-supplied string that goes into a
 * header (the HELO name, the recipient) is cleaned of control characters
 * first, so a client can never inject a header line; lines are folded so no
 * line of the field passes 998 octets.
 * Never: do I/O, trust the HELO name.
 */
#include "smtpd/smtpd_private.h"

#include <string.h>

/* Longest piece of client text put in one Received line. */
#define RECEIVED_TEXT_MAX 255

/* Copy text keeping printable ASCII only (others become '?'). */
void smtpd_sanitize(const char *in, size_t len, char *out, size_t size)
{
	size_t i, n = 0;

	if (size == 0)
		return;
	for (i = 0; i < len && n + 1 < size; i++) {
		unsigned char c = (unsigned char)in[i];

		out[n++] = (c >= 0x21 && c <= 0x7e) ? (char)c : '?';
	}
	out[n] = '\0';
}

/* Copy an address keeping UTF-8 bytes but no control characters. */
static void sanitize_addr(const char *in, char *out, size_t size)
{
	size_t i, n = 0;

	for (i = 0; in[i] != '\0' && n + 1 < size; i++) {
		unsigned char c = (unsigned char)in[i];

		out[n++] = (c < 0x21 || c == 0x7f) ? '?' : (char)c;
	}
	out[n] = '\0';
}

/* Append the Received: field to out. */
int smtpd_received_format(struct yz_buf *out, const struct smtpd_received_info *ri)
{
	char helo[RECEIVED_TEXT_MAX + 1];
	char rcpt[RECEIVED_TEXT_MAX * 2 + 1];
	char cipher[RECEIVED_TEXT_MAX + 1];
	int r = 0;

	if (ri->helo != NULL && ri->helo[0] != '\0')
		smtpd_sanitize(ri->helo, strlen(ri->helo), helo, sizeof(helo));
	else
		memcpy(helo, "unknown", sizeof("unknown"));
	r |= yz_buf_printf(out, "Received: from %s (unknown [%s])\r\n", helo, ri->ip);
	if (ri->tls_version != NULL) {
		smtpd_sanitize(ri->tls_cipher != NULL ? ri->tls_cipher : "unknown",
			       strlen(ri->tls_cipher != NULL ? ri->tls_cipher : "unknown"),
			       cipher, sizeof(cipher));
		r |= yz_buf_printf(out, "\t(using %s with cipher %s (%d/%d bits))\r\n",
				   ri->tls_version, cipher, ri->tls_bits, ri->tls_bits);
	}
	r |= yz_buf_printf(out, "\tby %s (yizhan) with %s id %s", ri->hostname, ri->protocol,
			   ri->qid);
	if (ri->rcpt != NULL) {
		sanitize_addr(ri->rcpt, rcpt, sizeof(rcpt));
		r |= yz_buf_printf(out, "\r\n\tfor <%s>", rcpt);
	}
	r |= yz_buf_printf(out, "; %s\r\n", ri->date);
	return r != 0 ? -1 : 0;
}

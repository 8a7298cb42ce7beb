/*
 * msgid.h: Message-ID generation (RFC 5322 §3.6.4 msg-id =
 * "<" id-left "@" id-right ">"), e.g. for messages submitted without one.
 *
 * Guarantees: the result is a valid msg-id with a dot-atom-text left part
 * and a domain right part. Must never emit characters that need quoting.
 */
#ifndef YZ_LIBMAIL_MSGID_H
#define YZ_LIBMAIL_MSGID_H

#include "lib/buf.h"

/* Longest msg-id we write: RFC 5322 line limit minus "Message-ID: " and CRLF. */
#define MAIL_MSGID_MAX 984

/* Append "<unique@hostname>" to out. unique must be dot-atom-text (e.g. a
 * queue ID plus a timestamp), hostname a domain name. -1 with *error_r if
 * either is malformed, the result exceeds MAIL_MSGID_MAX, or out is full. */
int mail_msgid_format(const char *unique, const char *hostname, struct yz_buf *out,
		      const char **error_r);

#endif

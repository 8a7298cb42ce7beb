/*
 * date.h: RFC 5322 §3.3 date-time, as written in Date: and Received:
 * headers: "Sat, 28 Nov 2026 22:50:34 +0000".
 *
 * Guarantees: the output does not depend on the locale (day and month names
 * come from fixed tables) and always fits MAIL_DATE_MAX bytes. Must never
 * write past the size given.
 */
#ifndef YZ_LIBMAIL_DATE_H
#define YZ_LIBMAIL_DATE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* "Sat, 28 Nov 2026 22:50:34 +0000" is 31 characters; room for a 5-digit
 * year and the NUL. */
#define MAIL_DATE_MAX 40

/* Format t into dst (dst_size >= MAIL_DATE_MAX suffices) in UTC (+0000) or
 * in the local time zone with its numeric offset. -1 if t cannot be
 * represented or dst is too small. */
int mail_date_format(time_t t, bool utc, char *dst, size_t dst_size);
/* The same for the current time, local zone. */
int mail_date_now(char *dst, size_t dst_size);

#endif

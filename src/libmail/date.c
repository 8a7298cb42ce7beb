/*
 * date.c: RFC 5322 date-time formatting.
 * Guarantees: locale-independent, bounded, NUL-terminated output. Must never
 * use strftime's %a/%b (they follow LC_TIME) or write past dst_size.
 */
#include "libmail/date.h"

#include <stdio.h>
#include <stdlib.h>

static const char *const date_days[7] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const date_months[12] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* Format t as an RFC 5322 date-time. */
int mail_date_format(time_t t, bool utc, char *dst, size_t dst_size)
{
	struct tm tm;
	long off;

	if (utc ? gmtime_r(&t, &tm) == NULL : localtime_r(&t, &tm) == NULL)
		return -1;
	off = utc ? 0 : tm.tm_gmtoff;
	if (tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 || tm.tm_mon > 11 ||
	    tm.tm_year < -1900 || tm.tm_year > 99999 - 1900)
		return -1;
	char sign = off < 0 ? '-' : '+';
	long aoff = labs(off) / 60;
	int n = snprintf(dst, dst_size, "%s, %d %s %04d %02d:%02d:%02d %c%02ld%02ld",
			 date_days[tm.tm_wday], tm.tm_mday, date_months[tm.tm_mon],
			 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign,
			 aoff / 60 % 100, aoff % 60);
	if (n < 0 || (size_t)n >= dst_size)
		return -1;
	return 0;
}

/* Format the current time, local zone. */
int mail_date_now(char *dst, size_t dst_size)
{
	return mail_date_format(time(NULL), false, dst, dst_size);
}

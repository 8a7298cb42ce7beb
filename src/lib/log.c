/*
 * log.c: line-per-event logging to stderr or syslog(LOG_MAIL).
 * Never allocates on the heap, so it is safe after out-of-memory; lines are
 * cut at a fixed length and control characters are escaped so that a peer's
 * bytes can never forge a second log line.
 */
#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static char log_role[32] = "yizhan";
static char log_ident[48] = "yizhan";
static bool log_syslog;
static int log_facility = LOG_MAIL;
static enum yz_log_level log_level = YZ_LOG_INFO;

void yz_log_init(const char *role, bool to_syslog)
{
	snprintf(log_role, sizeof log_role, "%s", role);
	snprintf(log_ident, sizeof log_ident, "yizhan/%s", role);
	if (log_syslog)
		closelog();
	log_syslog = to_syslog;
	if (log_syslog)
		openlog(log_ident, LOG_PID | LOG_NDELAY, log_facility);
}

void yz_log_set_level(enum yz_log_level level)
{
	log_level = level;
}

void yz_log_set_facility(int facility)
{
	log_facility = facility;
	if (log_syslog) {
		closelog();
		openlog(log_ident, LOG_PID | LOG_NDELAY, log_facility);
	}
}

const char *yz_log_role(void)
{
	return log_role;
}

/* Escape control bytes in place into out (bounded). */
static void log_sanitize(const char *in, char *out, size_t outsz)
{
	size_t o = 0;
	for (size_t i = 0; in[i] != '\0' && o + 5 < outsz; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
}

static void log_emit(enum yz_log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static void log_emit(enum yz_log_level level, const char *fmt, va_list ap)
{
	char raw[LOG_LINE_MAX];
	char clean[LOG_LINE_MAX];
	vsnprintf(raw, sizeof raw, fmt, ap);
	log_sanitize(raw, clean, sizeof clean);
	if (log_syslog) {
		static const int prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };
		syslog(prio[level], "%s", clean);
		return;
	}
	char stamp[32];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	char line[LOG_LINE_MAX + 128];
	int n = snprintf(line, sizeof line, "%s.%03ld %s[%ld]: %s\n", stamp,
			 ts.tv_nsec / 1000000, log_ident, (long)getpid(), clean);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line) {
		n = (int)sizeof line - 1;
		line[n - 1] = '\n';
	}
	/* One write per line keeps lines from different processes whole. */
	(void)!write(2, line, (size_t)n);
}

void yz_log(enum yz_log_level level, const char *fmt, ...)
{
	if (level < log_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_emit(level, fmt, ap);
	va_end(ap);
}

void yz_fatal(const char *fmt, ...)
{
	char msg[LOG_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	yz_log(YZ_LOG_ERR, "fatal: %s", msg);
	exit(1);
}

void yz_panic(const char *fmt, ...)
{
	char msg[LOG_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	yz_log(YZ_LOG_ERR, "panic: %s", msg);
	abort();
}

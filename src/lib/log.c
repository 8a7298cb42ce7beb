/*
 * log.c: line-per-event logging to stderr or syslog(LOG_MAIL).
 * Never allocates on the heap, so it is safe after out-of-memory; lines are
 * cut at a fixed length and control characters are escaped so that a peer's
 * bytes can never forge a second log line.
 *
 * The pid in each line is cached (glibc no longer caches getpid(), and a
 * busy role logs several lines per message). The cache is invalidated in the
 * child of every fork() through a pthread_atfork() handler registered at the
 * first use, and refetched at the next line; yz_log_pid_refresh() does the
 * same by hand. A child made by a raw clone(), vfork() or posix_spawn() skips
 * the atfork handlers: such a child must exec (or _exit) without logging, or
 * call yz_log_pid_refresh() first. Syslog gets the pid inside its ident
 * ("yizhan/smtpd[123]") instead of LOG_PID, which would cost glibc a getpid()
 * per line; the bytes sent to syslogd are the same.
 *
 * Never: calls getpid() per line, or blocks anywhere but in write()/syslog().
 */
#include "lib/log.h"

#include <pthread.h>
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
/* Ident given to openlog(): log_ident and the pid, as LOG_PID would add. */
static char log_sysident[72] = "yizhan";
static bool log_syslog;
/* Cached getpid(); 0 means "unknown, fetch at the next line". */
static pid_t log_pid;
/* The pid written in log_sysident. */
static pid_t log_sysident_pid;
static bool log_atfork_registered;
static int log_facility = LOG_MAIL;
static enum yz_log_level log_level = YZ_LOG_INFO;

/* fork() child handler: the cached pid is the parent's now. */
static void log_atfork_child(void)
{
	log_pid = 0;
}

/* Put pid into the syslog ident. openlog() keeps the pointer (POSIX), so
 * this takes effect without reconnecting to syslogd, which a chrooted
 * process could no longer do. */
static void log_sysident_set(pid_t pid)
{
	snprintf(log_sysident, sizeof log_sysident, "%s[%ld]", log_ident, (long)pid);
	log_sysident_pid = pid;
}

/* Open syslog for the current role, facility and pid. */
static void log_openlog(void)
{
	closelog();
	log_sysident_set(getpid());
	openlog(log_sysident, LOG_NDELAY, log_facility);
}

/* The pid for log lines: cached, fetched again after a fork. */
static pid_t log_getpid(void)
{
	if (log_pid != 0)
		return log_pid;
	if (!log_atfork_registered) {
		/* Failing to register (ENOMEM) only costs the cache: then every
		 * line asks the kernel, as before. */
		log_atfork_registered = pthread_atfork(NULL, NULL, log_atfork_child) == 0;
	}
	pid_t pid = getpid();
	if (log_atfork_registered)
		log_pid = pid;
	return pid;
}

/* Forget the cached pid (for a child not made by fork()). */
void yz_log_pid_refresh(void)
{
	log_pid = 0;
}

/* Name the role and choose stderr or syslog. */
void yz_log_init(const char *role, bool to_syslog)
{
	snprintf(log_role, sizeof log_role, "%s", role);
	snprintf(log_ident, sizeof log_ident, "yizhan/%s", role);
	if (log_syslog)
		closelog();
	log_syslog = to_syslog;
	log_pid = 0;
	(void)log_getpid();
	if (log_syslog)
		log_openlog();
}

void yz_log_set_level(enum yz_log_level level)
{
	log_level = level;
}

void yz_log_set_facility(int facility)
{
	log_facility = facility;
	if (log_syslog)
		log_openlog();
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
		pid_t pid = log_getpid();
		if (pid != log_sysident_pid)
			log_sysident_set(pid); /* a forked child */
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
			 ts.tv_nsec / 1000000, log_ident, (long)log_getpid(), clean);
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

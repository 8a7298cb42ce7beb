/*
 * log.h: one line per event, Postfix-shaped, so that pflogsumm-like tools and
 * admins' greps work: "yizhan/<role>[<pid>]: <queue-id or session>: text".
 *
 * In the foreground lines go to stderr with a timestamp; daemonized they go
 * to syslog with facility mail (configurable). yz_fatal() is for a failing
 * environment and exits; yz_panic() is for a broken invariant and aborts.
 */
#ifndef YZ_LOG_H
#define YZ_LOG_H

#include <stdbool.h>

enum yz_log_level { YZ_LOG_DEBUG, YZ_LOG_INFO, YZ_LOG_WARN, YZ_LOG_ERR };

/* role: "master", "smtpd", ...; to_syslog: use syslog instead of stderr. */
void yz_log_init(const char *role, bool to_syslog);
void yz_log_set_level(enum yz_log_level level);
void yz_log_set_facility(int facility); /* a LOG_* facility for syslog */
const char *yz_log_role(void);
/* The pid written in each line is cached and refreshed by itself in the
 * child of a fork() (pthread_atfork); a child made otherwise (raw clone,
 * vfork) that logs before exec calls this first. */
void yz_log_pid_refresh(void);

void yz_log(enum yz_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#define yz_log_debug(...) yz_log(YZ_LOG_DEBUG, __VA_ARGS__)
#define yz_log_info(...) yz_log(YZ_LOG_INFO, __VA_ARGS__)
#define yz_log_warn(...) yz_log(YZ_LOG_WARN, "warning: " __VA_ARGS__)
#define yz_log_err(...) yz_log(YZ_LOG_ERR, "error: " __VA_ARGS__)

void yz_fatal(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
void yz_panic(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

#endif

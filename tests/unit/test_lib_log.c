/*
 * test_lib_log.c: log lines (log.h) as written to stderr: the shape
 * "<stamp> yizhan/<role>[<pid>]: text", control bytes escaped so that a
 * peer cannot forge a line, levels filtered, and the cached pid: right in
 * the parent, right in a fork()ed child (the atfork hook), right after
 * yz_log_pid_refresh().
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/log.h"

#define OUT_MAX 8192

static int saved_stderr = -1;
static int pipe_r = -1;

/* Send fd 2 into a pipe that the test reads. */
static void capture_start(void)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	saved_stderr = dup(2);
	assert_true(saved_stderr >= 0);
	assert_int_equal(dup2(p[1], 2), 2);
	close(p[1]);
	pipe_r = p[0];
}

/* Put stderr back and return what was written (NUL-terminated, static). */
static const char *capture_end(void)
{
	static char out[OUT_MAX];
	assert_int_equal(dup2(saved_stderr, 2), 2);
	close(saved_stderr);
	size_t n = 0;
	ssize_t r;
	while (n < sizeof out - 1 && (r = read(pipe_r, out + n, sizeof out - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = '\0';
	close(pipe_r);
	pipe_r = -1;
	return out;
}

/* Does out hold "yizhan/<role>[<pid>]: <text>\n"? */
static bool has_line(const char *out, const char *role, long pid, const char *text)
{
	char want[256];
	snprintf(want, sizeof want, " yizhan/%s[%ld]: %s\n", role, pid, text);
	return strstr(out, want) != NULL;
}

static void test_line_shape_and_escape(void **state)
{
	yz_log_init("test", false);
	yz_log_set_level(YZ_LOG_INFO);
	capture_start();
	yz_log_info("hello %d", 42);
	yz_log_debug("not shown");
	yz_log_warn("forged\nyizhan/smtpd[1]: evil");
	const char *out = capture_end();
	assert_true(has_line(out, "test", (long)getpid(), "hello 42"));
	assert_null(strstr(out, "not shown"));
	assert_true(has_line(out, "test", (long)getpid(),
			     "warning: forged\\x0ayizhan/smtpd[1]: evil"));
	/* Two lines exactly: the newline was escaped. */
	size_t lines = 0;
	for (const char *p = out; *p != '\0'; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 2);
	assert_string_equal(yz_log_role(), "test");
}

/* The cached pid follows fork(): the child's lines carry the child's pid. */
static void test_pid_after_fork(void **state)
{
	yz_log_init("test", false);
	capture_start();
	yz_log_info("parent before");
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		yz_log_info("child says");
		_exit(0);
	}
	int status = 0;
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	yz_log_info("parent after");
	const char *out = capture_end();
	assert_true(has_line(out, "test", (long)getpid(), "parent before"));
	assert_true(has_line(out, "test", (long)child, "child says"));
	assert_true(has_line(out, "test", (long)getpid(), "parent after"));
}

/* A refresh by hand, and a new role, keep the pid right. */
static void test_pid_refresh(void **state)
{
	yz_log_init("first", false);
	capture_start();
	yz_log_info("one");
	yz_log_pid_refresh();
	yz_log_info("two");
	yz_log_init("second", false);
	yz_log_info("three");
	const char *out = capture_end();
	assert_true(has_line(out, "first", (long)getpid(), "one"));
	assert_true(has_line(out, "first", (long)getpid(), "two"));
	assert_true(has_line(out, "second", (long)getpid(), "three"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_shape_and_escape),
		cmocka_unit_test(test_pid_after_fork),
		cmocka_unit_test(test_pid_refresh),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

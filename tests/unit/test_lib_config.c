/*
 * test_lib_config.c: yizhan.conf parsing, expansion, typed validation,
 * limits (just under and just over each), printing and the generated docs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "lib/mem.h"

/* Load text (a C string) as file "t.conf" into cfg; returns the result. */
static int load(struct yz_config *cfg, const char *text, const char **error_r)
{
	return yz_config_load_buf(cfg, "t.conf", text, strlen(text), error_r);
}

/* Expect text to fail with exactly the message expected. */
static void expect_error(const char *text, const char *expected)
{
	struct yz_config *cfg = yz_config_new_defaults(false);
	const char *error = NULL;
	assert_int_equal(load(cfg, text, &error), -1);
	assert_non_null(error);
	assert_string_equal(error, expected);
	yz_config_free(&cfg);
}

/* Expect text to fail with a message that contains the fragment. */
static void expect_error_has(const char *text, const char *fragment)
{
	struct yz_config *cfg = yz_config_new_defaults(false);
	const char *error = NULL;
	assert_int_equal(load(cfg, text, &error), -1);
	assert_non_null(error);
	if (strstr(error, fragment) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", error, fragment);
	yz_config_free(&cfg);
}

/* Load text that must succeed into a fresh non-dev configuration. */
static struct yz_config *load_ok(const char *text)
{
	struct yz_config *cfg = yz_config_new_defaults(false);
	const char *error = NULL;
	if (load(cfg, text, &error) != 0)
		fail_msg("unexpected error: %s", error);
	return cfg;
}

/* A heap string of n copies of c. */
static char *filler(size_t n, char c)
{
	char *s = yz_malloc(n + 1);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void test_defaults(void **state)
{
	(void)state;
	struct yz_config *cfg = yz_config_new_defaults(false);
	assert_false(yz_config_dev_mode(cfg));
	assert_string_equal(yz_cfg_str(cfg, YZ_P_STATE_DIRECTORY), "/var/lib/yizhan");
	assert_string_equal(yz_cfg_str(cfg, YZ_P_RUN_DIRECTORY), "/var/lib/yizhan/run");
	assert_string_equal(yz_cfg_str(cfg, YZ_P_QUEUE_DIRECTORY), "/var/lib/yizhan/queue");
	assert_string_equal(yz_cfg_str(cfg, YZ_P_MYHOSTNAME), "");
	assert_string_equal(yz_cfg_str(cfg, YZ_P_SMTPD_BANNER), " ESMTP yizhan");
	assert_string_equal(yz_cfg_str(cfg, YZ_P_DIRECTORY_BACKEND), "sqlite");
	assert_int_equal(yz_cfg_enum(cfg, YZ_P_LOG_LEVEL), 1);
	assert_int_equal(yz_cfg_int(cfg, YZ_P_SMTP_PORT), 25);
	assert_int_equal(yz_cfg_int(cfg, YZ_P_SMTPD_RECIPIENT_LIMIT), 1000);
	assert_int_equal(yz_cfg_size(cfg, YZ_P_MESSAGE_SIZE_LIMIT), 50ULL << 20);
	assert_int_equal(yz_cfg_size(cfg, YZ_P_DEFAULT_QUOTA), 0);
	assert_int_equal(yz_cfg_time_ms(cfg, YZ_P_SMTPD_TIMEOUT), 300000);
	assert_int_equal(yz_cfg_time_ms(cfg, YZ_P_QUEUE_GROUP_COMMIT_WINDOW), 1);
	assert_int_equal(yz_cfg_time_ms(cfg, YZ_P_MAXIMAL_QUEUE_LIFETIME), 5ULL * 86400000);
	assert_int_equal(yz_cfg_time_ms(cfg, YZ_P_IMAP_IDLE_TIMEOUT), 30 * 60000);
	assert_false(yz_cfg_bool(cfg, YZ_P_SMTPD_AUTH_OVER_PLAINTEXT));
	assert_true(yz_cfg_bool(cfg, YZ_P_SMTPUTF8_ENABLE));
	assert_int_equal(yz_cfg_list_count(cfg, YZ_P_INET_INTERFACES), 1);
	assert_string_equal(yz_cfg_list_item(cfg, YZ_P_INET_INTERFACES, 0), "all");
	assert_int_equal(yz_cfg_list_count(cfg, YZ_P_MYNETWORKS), 2);
	assert_string_equal(yz_cfg_list_item(cfg, YZ_P_MYNETWORKS, 1), "[::1]/128");
	for (int id = 0; id < YZ_P__COUNT; id++)
		assert_false(yz_config_is_set(cfg, (enum yz_param_id)id));
	yz_config_free(&cfg);
	assert_null(cfg);
	yz_config_free(&cfg); /* NULL is fine */
}

static void test_dev_defaults(void **state)
{
	(void)state;
	struct yz_config *cfg = yz_config_new_defaults(true);
	assert_true(yz_config_dev_mode(cfg));
	assert_int_equal(yz_cfg_int(cfg, YZ_P_SMTP_PORT), 2525);
	assert_int_equal(yz_cfg_int(cfg, YZ_P_SUBMISSION_PORT), 5870);
	assert_int_equal(yz_cfg_int(cfg, YZ_P_SUBMISSIONS_PORT), 4650);
	assert_int_equal(yz_cfg_int(cfg, YZ_P_IMAP_PORT), 1430);
	assert_int_equal(yz_cfg_int(cfg, YZ_P_IMAPS_PORT), 9930);
	assert_int_equal(yz_cfg_int(cfg, YZ_P_POP3_PORT), 1100);
	assert_int_equal(yz_cfg_int(cfg, YZ_P_POP3S_PORT), 9950);
	assert_int_equal(yz_cfg_int(cfg, YZ_P_ADMIN_PORT), 8098);
	assert_string_equal(yz_cfg_list_item(cfg, YZ_P_INET_INTERFACES, 0), "loopback-only");
	/* Dev defaults do not count as changes for -n. */
	struct yz_buf out;
	const char *error;
	yz_buf_init(&out, 0);
	assert_int_equal(yz_config_print(cfg, &out, true, NULL, &error), 0);
	assert_int_equal(yz_buf_len(&out), 0);
	/* Setting the non-dev default in dev mode is a change. */
	assert_int_equal(yz_config_set(cfg, "smtp_port", "25", &error), 0);
	assert_int_equal(yz_config_print(cfg, &out, true, NULL, &error), 0);
	assert_string_equal(yz_buf_cstr(&out), "smtp_port = 25\n");
	yz_buf_free(&out);
	yz_config_free(&cfg);
}

static void test_param_names(void **state)
{
	(void)state;
	for (int id = 0; id < YZ_P__COUNT; id++) {
		const char *name = yz_config_param_name((enum yz_param_id)id);
		assert_int_equal(yz_config_param_id(name), id);
	}
	assert_int_equal(yz_config_param_id("smtpd_recipient_limit"), YZ_P_SMTPD_RECIPIENT_LIMIT);
	assert_int_equal(yz_config_param_id("no_such_thing"), -1);
	assert_int_equal(yz_config_param_id("smtpd_recipient_limi"), -1);
	assert_int_equal(yz_config_param_id(""), -1);
	assert_int_equal(yz_config_param_id(NULL), -1);
	assert_int_equal(yz_config_param_type(YZ_P_MESSAGE_SIZE_LIMIT), YZ_CT_SIZE);
}

static void test_int(void **state)
{
	(void)state;
	struct yz_config *cfg = load_ok("smtpd_recipient_limit = 1\nsmtp_port = 0\n"
					"imap_port = 65535\nalias_max_depth=100\n");
	assert_int_equal(yz_cfg_int(cfg, YZ_P_SMTPD_RECIPIENT_LIMIT), 1);
	assert_int_equal(yz_cfg_int(cfg, YZ_P_SMTP_PORT), 0);
	assert_int_equal(yz_cfg_int(cfg, YZ_P_IMAP_PORT), 65535);
	assert_int_equal(yz_cfg_int(cfg, YZ_P_ALIAS_MAX_DEPTH), 100);
	assert_true(yz_config_is_set(cfg, YZ_P_SMTP_PORT));
	yz_config_free(&cfg);
	cfg = load_ok("smtpd_recipient_limit = 100000\n");
	assert_int_equal(yz_cfg_int(cfg, YZ_P_SMTPD_RECIPIENT_LIMIT), 100000);
	yz_config_free(&cfg);

	expect_error("# comment\n\nsmtpd_recipient_limit = 0\n",
		     "t.conf:3: smtpd_recipient_limit: value 0 is below the minimum 1");
	expect_error("smtpd_recipient_limit = 100001\n",
		     "t.conf:1: smtpd_recipient_limit: value 100001 is above the maximum 100000");
	expect_error("smtp_port = 65536\n",
		     "t.conf:1: smtp_port: value 65536 is above the maximum 65535");
	expect_error("smtp_port = -1\n", "t.conf:1: smtp_port: value -1 is below the minimum 0");
	expect_error("smtp_port = 25x\n", "t.conf:1: smtp_port: value \"25x\" is not a number");
	expect_error("smtp_port =\n", "t.conf:1: smtp_port: value \"\" is not a number");
	expect_error("smtp_port = -\n", "t.conf:1: smtp_port: value \"-\" is not a number");
	expect_error("smtp_port = 2 5\n", "t.conf:1: smtp_port: value \"2 5\" is not a number");
	expect_error("smtp_port = 99999999999999999999\n",
		     "t.conf:1: smtp_port: value 99999999999999999999 is too large");
	expect_error("smtp_port = 9223372036854775808\n",
		     "t.conf:1: smtp_port: value 9223372036854775808 is too large");
	expect_error("smtp_port = 9223372036854775807\n",
		     "t.conf:1: smtp_port: value 9223372036854775807 is above the maximum 65535");
}

static void test_size(void **state)
{
	(void)state;
	struct yz_config *cfg = load_ok("message_size_limit = 10m\nimap_literal_limit = 1g\n"
					"smtpd_command_line_limit = 512\n"
					"smtpd_text_line_limit = 1k\n"
					"default_quota = 2G\npop3_command_line_limit = 64K\n");
	assert_int_equal(yz_cfg_size(cfg, YZ_P_MESSAGE_SIZE_LIMIT), 10ULL << 20);
	assert_int_equal(yz_cfg_size(cfg, YZ_P_IMAP_LITERAL_LIMIT), 1ULL << 30);
	assert_int_equal(yz_cfg_size(cfg, YZ_P_SMTPD_COMMAND_LINE_LIMIT), 512);
	assert_int_equal(yz_cfg_size(cfg, YZ_P_SMTPD_TEXT_LINE_LIMIT), 1024);
	assert_int_equal(yz_cfg_size(cfg, YZ_P_DEFAULT_QUOTA), 2ULL << 30);
	assert_int_equal(yz_cfg_size(cfg, YZ_P_POP3_COMMAND_LINE_LIMIT), 65536);
	yz_config_free(&cfg);
	cfg = load_ok("smtpd_text_line_limit = 1000\nmessage_size_limit = 4G\n"
		      "smtpd_command_line_limit = 65536\n");
	assert_int_equal(yz_cfg_size(cfg, YZ_P_SMTPD_TEXT_LINE_LIMIT), 1000);
	assert_int_equal(yz_cfg_size(cfg, YZ_P_MESSAGE_SIZE_LIMIT), 4ULL << 30);
	yz_config_free(&cfg);

	expect_error("smtpd_command_line_limit = 511\n",
		     "t.conf:1: smtpd_command_line_limit: value 511 is below the minimum 512");
	expect_error("smtpd_command_line_limit = 65537\n",
		     "t.conf:1: smtpd_command_line_limit: value 65537 is above the maximum 64K");
	expect_error("smtpd_text_line_limit = 999\n",
		     "t.conf:1: smtpd_text_line_limit: value 999 is below the minimum 1000");
	expect_error("message_size_limit = 4097M\n",
		     "t.conf:1: message_size_limit: value 4097M is above the maximum 4G");
	expect_error("message_size_limit = 5MB\n",
		     "t.conf:1: message_size_limit: value \"5MB\" has a bad size unit (use k, m or g)");
	expect_error("message_size_limit = 5 M\n",
		     "t.conf:1: message_size_limit: value \"5 M\" has a bad size unit (use k, m or g)");
	expect_error("message_size_limit = M\n",
		     "t.conf:1: message_size_limit: value \"M\" is not a size");
	expect_error("message_size_limit = -5\n",
		     "t.conf:1: message_size_limit: value \"-5\" is not a size");
	expect_error("message_size_limit = 17179869184G\n",
		     "t.conf:1: message_size_limit: value 17179869184G is too large");
}

static void test_time(void **state)
{
	(void)state;
	struct yz_config *cfg = load_ok("smtpd_timeout = 5m\nsmtpd_data_timeout = 1h\n"
					"maximal_queue_lifetime = 2w\nbounce_queue_lifetime = 3\n"
					"delay_warning_time = 2\nqueue_group_commit_window = 100\n"
					"minimal_backoff_time = 60\nmaximal_backoff_time = 1d\n"
					"smtpd_greet_pause = 1500ms\npop3_idle_timeout = 10s\n");
	assert_int_equal(yz_cfg_time_ms(cfg, YZ_P_SMTPD_TIMEOUT), 300000);
	assert_int_equal(yz_cfg_time_ms(cfg, YZ_P_SMTPD_DATA_TIMEOUT), 3600000);
	assert_int_equal(yz_cfg_time_ms(cfg, YZ_P_MAXIMAL_QUEUE_LIFETIME), 14ULL * 86400000);
	assert_int_equal(yz_cfg_time_ms(cfg, YZ_P_BOUNCE_QUEUE_LIFETIME), 3ULL * 86400000); /* plain: days */
	assert_int_equal(yz_cfg_time_ms(cfg, YZ_P_DELAY_WARNING_TIME), 2ULL * 3600000);     /* plain: hours */
	assert_int_equal(yz_cfg_time_ms(cfg, YZ_P_QUEUE_GROUP_COMMIT_WINDOW), 100);         /* plain: ms */
	assert_int_equal(yz_cfg_time_ms(cfg, YZ_P_MINIMAL_BACKOFF_TIME), 60000);            /* plain: s */
	assert_int_equal(yz_cfg_time_ms(cfg, YZ_P_SMTPD_GREET_PAUSE), 1500);
	assert_int_equal(yz_cfg_time_ms(cfg, YZ_P_POP3_IDLE_TIMEOUT), 10000);
	yz_config_free(&cfg);

	expect_error("queue_group_commit_window = 101\n",
		     "t.conf:1: queue_group_commit_window: value 101 is above the maximum 100ms");
	expect_error("queue_group_commit_window = 1s\n",
		     "t.conf:1: queue_group_commit_window: value 1s is above the maximum 100ms");
	expect_error("pop3_idle_timeout = 9s\n",
		     "t.conf:1: pop3_idle_timeout: value 9s is below the minimum 10s");
	expect_error("pop3_idle_timeout = 9999ms\n",
		     "t.conf:1: pop3_idle_timeout: value 9999ms is below the minimum 10s");
	expect_error("smtpd_timeout = 61m\n",
		     "t.conf:1: smtpd_timeout: value 61m is above the maximum 1h");
	expect_error("smtpd_timeout = 5y\n",
		     "t.conf:1: smtpd_timeout: value \"5y\" has a bad time unit (use ms, s, m, h, d or w)");
	expect_error("smtpd_timeout = 5sec\n",
		     "t.conf:1: smtpd_timeout: value \"5sec\" has a bad time unit (use ms, s, m, h, d or w)");
	expect_error("smtpd_timeout = s\n", "t.conf:1: smtpd_timeout: value \"s\" is not a time");
	expect_error("smtpd_timeout = 99999999999999999w\n",
		     "t.conf:1: smtpd_timeout: value 99999999999999999w is too large");
}

static void test_bool(void **state)
{
	(void)state;
	static const char *const yes[] = { "yes", "YES", "true", "True", "on", "ON", "1" };
	static const char *const no[] = { "no", "No", "false", "FALSE", "off", "Off", "0" };
	char text[64];
	for (size_t i = 0; i < 7; i++) {
		snprintf(text, sizeof text, "smtpd_auth_over_plaintext = %s\nsmtputf8_enable = %s\n", yes[i], no[i]);
		struct yz_config *cfg = load_ok(text);
		assert_true(yz_cfg_bool(cfg, YZ_P_SMTPD_AUTH_OVER_PLAINTEXT));
		assert_false(yz_cfg_bool(cfg, YZ_P_SMTPUTF8_ENABLE));
		yz_config_free(&cfg);
	}
	expect_error("smtpd_auth_over_plaintext = maybe\n",
		     "t.conf:1: smtpd_auth_over_plaintext: value \"maybe\" is not a boolean (yes/no, true/false, on/off, 1/0)");
	expect_error_has("smtpd_auth_over_plaintext = yess\n", "is not a boolean");
	expect_error_has("smtpd_auth_over_plaintext = 2\n", "is not a boolean");
	expect_error_has("smtpd_auth_over_plaintext =\n", "is not a boolean");
}

static void test_enum(void **state)
{
	(void)state;
	struct yz_config *cfg = load_ok("directory_backend = PostgreSQL\nlog_level = debug\n"
					"tls_min_protocol = tlsv1.3\nsyslog_facility = local7\n");
	assert_string_equal(yz_cfg_str(cfg, YZ_P_DIRECTORY_BACKEND), "postgresql");
	assert_int_equal(yz_cfg_enum(cfg, YZ_P_DIRECTORY_BACKEND), 1);
	assert_int_equal(yz_cfg_enum(cfg, YZ_P_LOG_LEVEL), 0);
	assert_string_equal(yz_cfg_str(cfg, YZ_P_TLS_MIN_PROTOCOL), "TLSv1.3");
	assert_int_equal(yz_cfg_enum(cfg, YZ_P_SYSLOG_FACILITY), 8);
	yz_config_free(&cfg);
	expect_error("log_level = verbose\n",
		     "t.conf:1: log_level: value \"verbose\" is not one of debug|info|warning|error");
	expect_error_has("syslog_facility = local8\n", "is not one of");
	expect_error_has("directory_backend = sqlit\n", "is not one of");
	expect_error_has("directory_backend = sqlitee\n", "is not one of");
}

static void test_list(void **state)
{
	(void)state;
	struct yz_config *cfg = load_ok("mynetworks = 10.0.0.0/8,192.168.0.0/16  ,, [::1]/128\t172.16.0.0/12,\n"
					"inet_interfaces = 127.0.0.1, [::1] 192.0.2.1\n");
	assert_int_equal(yz_cfg_list_count(cfg, YZ_P_MYNETWORKS), 4);
	assert_string_equal(yz_cfg_list_item(cfg, YZ_P_MYNETWORKS, 0), "10.0.0.0/8");
	assert_string_equal(yz_cfg_list_item(cfg, YZ_P_MYNETWORKS, 1), "192.168.0.0/16");
	assert_string_equal(yz_cfg_list_item(cfg, YZ_P_MYNETWORKS, 2), "[::1]/128");
	assert_string_equal(yz_cfg_list_item(cfg, YZ_P_MYNETWORKS, 3), "172.16.0.0/12");
	assert_int_equal(yz_cfg_list_count(cfg, YZ_P_INET_INTERFACES), 3);
	assert_string_equal(yz_cfg_list_item(cfg, YZ_P_INET_INTERFACES, 1), "[::1]");
	yz_config_free(&cfg);
	cfg = load_ok("mynetworks =\n");
	assert_int_equal(yz_cfg_list_count(cfg, YZ_P_MYNETWORKS), 0);
	yz_config_free(&cfg);
	cfg = load_ok("inet_interfaces = loopback-only\n");
	assert_string_equal(yz_cfg_list_item(cfg, YZ_P_INET_INTERFACES, 0), "loopback-only");
	yz_config_free(&cfg);
	expect_error("inet_interfaces = all 127.0.0.1\n",
		     "t.conf:1: inet_interfaces: \"all\" must be the only word");
	expect_error("inet_interfaces = mail.example.com\n",
		     "t.conf:1: inet_interfaces: \"mail.example.com\" is not all, loopback-only or an IP address");
	expect_error_has("inet_interfaces = 127.0.0.256\n", "is not all, loopback-only");

	/* The word count limit, just at and just over. */
	size_t n = YZ_CONFIG_LIST_WORDS_MAX;
	char *text = yz_malloc(16 + 2 * (n + 1));
	memcpy(text, "mynetworks =", 12);
	size_t o = 12;
	for (size_t i = 0; i < n; i++) {
		text[o++] = ' ';
		text[o++] = 'x';
	}
	text[o] = '\0';
	cfg = load_ok(text);
	assert_int_equal(yz_cfg_list_count(cfg, YZ_P_MYNETWORKS), n);
	yz_config_free(&cfg);
	text[o++] = ' ';
	text[o++] = 'x';
	text[o] = '\0';
	expect_error_has(text, "more than 4096 words");
	free(text);
}

static void test_syntax(void **state)
{
	(void)state;
	struct yz_config *cfg = load_ok(
		"# a comment\n"
		"   # an indented comment\n"
		"\n"
		"  \t \n"
		"smtpd_banner=x # not a comment\n"
		"myhostname   =   mx.example.org   \r\n"
		"mynetworks = 10.0.0.0/8\n"
		"   # a comment inside a continued value\n"
		"\n"
		"\t192.168.0.0/16   \n"
		"    [::1]/128\n"
		"state_directory = /srv/yz\n"
		"plus_separator =\n"
		"tls_cert_file = /a = b");
	assert_string_equal(yz_cfg_str(cfg, YZ_P_SMTPD_BANNER), "x # not a comment");
	assert_string_equal(yz_cfg_str(cfg, YZ_P_MYHOSTNAME), "mx.example.org");
	assert_int_equal(yz_cfg_list_count(cfg, YZ_P_MYNETWORKS), 3);
	assert_string_equal(yz_cfg_list_item(cfg, YZ_P_MYNETWORKS, 2), "[::1]/128");
	assert_string_equal(yz_cfg_str(cfg, YZ_P_STATE_DIRECTORY), "/srv/yz");
	assert_string_equal(yz_cfg_str(cfg, YZ_P_PLUS_SEPARATOR), "");
	assert_string_equal(yz_cfg_str(cfg, YZ_P_TLS_CERT_FILE), "/a = b");
	yz_config_free(&cfg);

	/* Continuation lines are joined with exactly one space. */
	cfg = load_ok("smtpd_banner = a  \n   b\n\t\tc   d\n");
	assert_string_equal(yz_cfg_str(cfg, YZ_P_SMTPD_BANNER), "a b c   d");
	yz_config_free(&cfg);

	/* Errors in a continued line name the line where it starts. */
	expect_error("smtpd_auth_over_plaintext = yes\n\nsmtp_port = 25\n  x\n",
		     "t.conf:3: smtp_port: value \"25 x\" is not a number");
	expect_error("  smtp_port = 25\n",
		     "t.conf:1: continuation line (starts with white space) without a parameter before it");
	expect_error("# only a comment\n\tsmtp_port = 25\n",
		     "t.conf:2: continuation line (starts with white space) without a parameter before it");
	expect_error("smtpd_auth_over_plaintext = no\nsmtp_port 25\n",
		     "t.conf:2: malformed line \"smtp_port 25\": expected \"name = value\"");
	expect_error("= 25\n", "t.conf:1: malformed line \"= 25\": expected \"name = value\"");
	expect_error("smtp-port = 25\n",
		     "t.conf:1: malformed line \"smtp-port = 25\": expected \"name = value\"");
	expect_error("smtpd_auth_over_plaintext = no\n\nno_such_parameter = 1\n",
		     "t.conf:3: no_such_parameter: unknown parameter");
	expect_error("smtpd_auth_over_plaintext = no\nsmtpd_banner = a\001b\n",
		     "t.conf:2: control character 0x01 in line");
	expect_error("smtpd_auth_over_plaintext = no\rsmtp_port = 1\n", "t.conf:1: control character 0x0d in line");

	/* A NUL byte is refused, not taken for the end of the data. */
	struct yz_config *c2 = yz_config_new_defaults(false);
	const char *error;
	static const char nul[] = "smtpd_auth_over_plaintext = yes\nsmtpd_banner = a\0b\n";
	assert_int_equal(yz_config_load_buf(c2, "t.conf", nul, sizeof nul - 1, &error), -1);
	assert_string_equal(error, "t.conf:2: control character 0x00 in line");
	assert_false(yz_cfg_bool(c2, YZ_P_SMTPD_AUTH_OVER_PLAINTEXT)); /* nothing applied */
	/* Empty input is a valid, empty file. */
	assert_int_equal(yz_config_load_buf(c2, "t.conf", "", 0, &error), 0);
	yz_config_free(&c2);
}

static void test_last_wins(void **state)
{
	(void)state;
	struct yz_config *cfg = load_ok("smtp_port = 26\nsmtp_port = 27\n");
	assert_int_equal(yz_cfg_int(cfg, YZ_P_SMTP_PORT), 27);
	yz_config_free(&cfg);
	/* A duplicate with a bad value is an error at its line... */
	expect_error("smtp_port = 26\nsmtpd_auth_over_plaintext = no\nsmtp_port = 70000\n",
		     "t.conf:3: smtp_port: value 70000 is above the maximum 65535");
	/* ...and so is a bad value that a later line overrides. */
	expect_error("smtp_port = 70000\nsmtp_port = 26\n",
		     "t.conf:1: smtp_port: value 70000 is above the maximum 65535");
	/* Loading a second file over the first: last wins too. */
	cfg = load_ok("smtp_port = 26\nimap_port = 144\n");
	const char *error;
	assert_int_equal(load(cfg, "smtp_port = 28\n", &error), 0);
	assert_int_equal(yz_cfg_int(cfg, YZ_P_SMTP_PORT), 28);
	assert_int_equal(yz_cfg_int(cfg, YZ_P_IMAP_PORT), 144);
	yz_config_free(&cfg);
}

static void test_failed_load_changes_nothing(void **state)
{
	(void)state;
	struct yz_config *cfg = load_ok("smtp_port = 26\nstate_directory = /a\n");
	const char *banner = yz_cfg_str(cfg, YZ_P_RUN_DIRECTORY);
	const char *error;
	assert_int_equal(load(cfg, "smtp_port = 30\nstate_directory = /b\nsmtpd_auth_over_plaintext = perhaps\n", &error), -1);
	assert_int_equal(yz_cfg_int(cfg, YZ_P_SMTP_PORT), 26);
	assert_string_equal(yz_cfg_str(cfg, YZ_P_RUN_DIRECTORY), "/a/run");
	assert_false(yz_config_is_set(cfg, YZ_P_SMTPD_AUTH_OVER_PLAINTEXT));
	/* Strings handed out earlier stay valid after later changes. */
	assert_int_equal(load(cfg, "state_directory = /c\n", &error), 0);
	assert_string_equal(yz_cfg_str(cfg, YZ_P_RUN_DIRECTORY), "/c/run");
	assert_string_equal(banner, "/a/run");
	yz_config_free(&cfg);
}

static void test_expansion(void **state)
{
	(void)state;
	/* A reference sees the last value, even one set further down. */
	struct yz_config *cfg = load_ok("smtpd_banner = ${myhostname} ESMTP $$5 $$$myhostname\n"
					"run_directory = $state_directory/r\n"
					"myhostname = mx.example.org\n"
					"state_directory = /srv\n"
					"smtpd_soft_error_limit = $hopcount_limit\n"
					"hopcount_limit = 30\n"
					"smtpd_hard_error_limit = ${hopcount_limit}0\n"
					"maildir_root = $state_directory\n");
	assert_string_equal(yz_cfg_str(cfg, YZ_P_SMTPD_BANNER), "mx.example.org ESMTP $5 $mx.example.org");
	assert_string_equal(yz_cfg_str(cfg, YZ_P_RUN_DIRECTORY), "/srv/r");
	assert_string_equal(yz_cfg_str(cfg, YZ_P_QUEUE_DIRECTORY), "/srv/queue");
	assert_string_equal(yz_cfg_str(cfg, YZ_P_MAILDIR_ROOT), "/srv");
	assert_int_equal(yz_cfg_int(cfg, YZ_P_SMTPD_SOFT_ERROR_LIMIT), 30);
	assert_int_equal(yz_cfg_int(cfg, YZ_P_SMTPD_HARD_ERROR_LIMIT), 300);
	yz_config_free(&cfg);

	/* A name ends at the first character that cannot be in a name. */
	cfg = load_ok("myhostname = h\nsmtpd_banner = $myhostname.example/$myhostname\n");
	assert_string_equal(yz_cfg_str(cfg, YZ_P_SMTPD_BANNER), "h.example/h");
	yz_config_free(&cfg);
	expect_error("myhostname = h\nsmtpd_banner = $myhostname.example $myhostname_x\n"
		     "smtp_port = 1\n",
		     "t.conf:2: smtpd_banner: $myhostname_x: unknown parameter");

	expect_error("smtpd_banner = $nothing here\n",
		     "t.conf:1: smtpd_banner: $nothing: unknown parameter");
	expect_error("smtpd_banner = ${nothing}\n",
		     "t.conf:1: smtpd_banner: $nothing: unknown parameter");
	expect_error("smtpd_banner = ${myhostname\n",
		     "t.conf:1: smtpd_banner: \"${\" without a closing \"}\"");
	expect_error("smtpd_banner = ${}\n",
		     "t.conf:1: smtpd_banner: \"$\" must be followed by a parameter name, {name} or $");
	expect_error("smtpd_banner = ${my-hostname}\n",
		     "t.conf:1: smtpd_banner: \"$\" must be followed by a parameter name, {name} or $");
	expect_error("smtpd_banner = cost $ 5\n",
		     "t.conf:1: smtpd_banner: \"$\" must be followed by a parameter name, {name} or $");
	expect_error("smtpd_banner = end$\n",
		     "t.conf:1: smtpd_banner: \"$\" must be followed by a parameter name, {name} or $");
	/* Numbers are checked after expansion. */
	expect_error("smtp_port = $$1\n", "t.conf:1: smtp_port: value \"$1\" is not a number");
	expect_error("myhostname = 70000\nsmtpd_auth_over_plaintext = no\nsmtp_port = $myhostname\n",
		     "t.conf:3: smtp_port: value 70000 is above the maximum 65535");
	/* Loops. */
	expect_error("myhostname = $myhostname\n",
		     "t.conf:1: myhostname: expansion loop myhostname -> myhostname");
	expect_error("myhostname = a$smtpd_banner\nsmtpd_banner = b$myhostname\n",
		     "t.conf:1: myhostname: expansion loop myhostname -> smtpd_banner -> myhostname");
	expect_error("smtpd_banner = $tls_key_file\ntls_key_file = ${smtpd_banner}\n"
		     "smtpd_auth_over_plaintext = no\nstate_directory = $smtpd_banner\n",
		     "t.conf:1: smtpd_banner: expansion loop smtpd_banner -> tls_key_file -> "
		     "smtpd_banner");
	/* A loop through a default value. */
	expect_error("state_directory = $run_directory\n",
		     "t.conf:1: state_directory: expansion loop state_directory -> run_directory -> "
		     "state_directory");
}

/* The INT parameters used for an expansion chain (all accept 5). */
static const char *const chain[] = {
	"alias_max_depth", "alias_max_expansion", "auth_cache_size", "auth_argon2_t_cost",
	"auth_argon2_parallelism", "smtpd_recipient_limit", "smtpd_connection_limit",
	"smtpd_client_connection_count_limit", "smtpd_hard_error_limit",
	"smtpd_soft_error_limit", "hopcount_limit", "smtpd_max_auth_failures",
	"queue_minfree_multiple", "local_delivery_concurrency",
	"default_destination_concurrency_limit", "pop3_max_auth_failures",
	"mailbox_session_limit", "smtp_port", "imap_port",
};

/* A file where chain[0] -> chain[1] -> ... -> chain[refs] = 5. */
static char *chain_text(size_t refs)
{
	struct yz_buf b;
	yz_buf_init(&b, 0);
	for (size_t i = 0; i < refs; i++)
		assert_int_equal(yz_buf_printf(&b, "%s = $%s\n", chain[i], chain[i + 1]), 0);
	assert_int_equal(yz_buf_printf(&b, "%s = 5\n", chain[refs]), 0);
	char *s = yz_strdup(yz_buf_cstr(&b));
	yz_buf_free(&b);
	return s;
}

static void test_expansion_depth(void **state)
{
	(void)state;
	assert_true(sizeof chain / sizeof chain[0] > YZ_CONFIG_EXPAND_DEPTH_MAX + 1);
	char *text = chain_text(YZ_CONFIG_EXPAND_DEPTH_MAX);
	struct yz_config *cfg = load_ok(text);
	assert_int_equal(yz_cfg_int(cfg, YZ_P_ALIAS_MAX_DEPTH), 5);
	yz_config_free(&cfg);
	free(text);
	text = chain_text(YZ_CONFIG_EXPAND_DEPTH_MAX + 1);
	expect_error(text, "t.conf:1: alias_max_depth: $name expansion nested deeper than 16 levels");
	free(text);
}

static void test_value_limit(void **state)
{
	(void)state;
	const size_t half = YZ_CONFIG_VALUE_MAX / 2;
	char *dir = filler(half, 'd');
	struct yz_buf b;
	yz_buf_init(&b, 0);
	/* Exactly YZ_CONFIG_VALUE_MAX after expansion. */
	assert_int_equal(yz_buf_printf(&b, "state_directory = %s\nsmtpd_banner = $state_directory${state_directory}\n", dir), 0);
	struct yz_config *cfg = load_ok(yz_buf_cstr(&b));
	assert_int_equal(strlen(yz_cfg_str(cfg, YZ_P_SMTPD_BANNER)), YZ_CONFIG_VALUE_MAX);
	/* run_directory's default grows too, and stays within the limit. */
	assert_int_equal(strlen(yz_cfg_str(cfg, YZ_P_RUN_DIRECTORY)), half + 4);
	yz_config_free(&cfg);
	/* One byte more. */
	yz_buf_reset(&b);
	assert_int_equal(yz_buf_printf(&b, "state_directory = %s\nsmtpd_banner = $state_directory${state_directory}X\n", dir), 0);
	expect_error(yz_buf_cstr(&b), "t.conf:2: smtpd_banner: value after expansion is longer than 65536 bytes");
	/* A default value that grows too long names the parameter and the file. */
	yz_buf_reset(&b);
	free(dir);
	dir = filler((YZ_CONFIG_VALUE_MAX - 4) / 2, 'd');
	/* state_directory is VALUE_MAX - 3 bytes: run_directory is 1 too long. */
	assert_int_equal(yz_buf_printf(&b, "myhostname = %s\nstate_directory = $myhostname$myhostname+\n", dir), 0);
	expect_error_has(yz_buf_cstr(&b), "t.conf: run_directory (default value): value after expansion is longer than 65536 bytes");
	yz_buf_free(&b);

	/* yz_config_set: at and over the limit. */
	cfg = yz_config_new_defaults(false);
	const char *error;
	free(dir);
	dir = filler(YZ_CONFIG_VALUE_MAX, 'e');
	assert_int_equal(yz_config_set(cfg, "smtpd_banner", dir, &error), 0);
	assert_string_equal(yz_cfg_str(cfg, YZ_P_SMTPD_BANNER), dir);
	free(dir);
	dir = filler(YZ_CONFIG_VALUE_MAX + 1, 'e');
	assert_int_equal(yz_config_set(cfg, "smtpd_banner", dir, &error), -1);
	assert_string_equal(error, "smtpd_banner: value is longer than 65536 bytes");
	free(dir);
	yz_config_free(&cfg);
}

static void test_line_limit(void **state)
{
	(void)state;
	const char *prefix = "smtpd_banner = ";
	size_t plen = strlen(prefix);
	char *line = filler(YZ_CONFIG_LINE_MAX + 1, 'x');
	memcpy(line, prefix, plen);
	/* A physical line of exactly YZ_CONFIG_LINE_MAX bytes (CRLF excluded). */
	line[YZ_CONFIG_LINE_MAX] = '\0';
	char *text = yz_malloc(YZ_CONFIG_LINE_MAX + 64);
	snprintf(text, YZ_CONFIG_LINE_MAX + 64, "%s\r\n", line);
	struct yz_config *cfg = load_ok(text);
	assert_int_equal(strlen(yz_cfg_str(cfg, YZ_P_SMTPD_BANNER)), YZ_CONFIG_LINE_MAX - plen);
	yz_config_free(&cfg);
	/* One more byte. */
	line[YZ_CONFIG_LINE_MAX] = 'x';
	snprintf(text, YZ_CONFIG_LINE_MAX + 64, "smtpd_auth_over_plaintext = no\n%s\n", line);
	expect_error(text, "t.conf:2: line is longer than 65536 bytes");
	free(text);
	free(line);

	/* Continuations: the joined line has the same limit. */
	struct yz_buf b;
	yz_buf_init(&b, 0);
	char *piece = filler(YZ_CONFIG_LINE_MAX / 2 - 8, 'y');
	assert_int_equal(yz_buf_printf(&b, "smtpd_auth_over_plaintext = no\nsmtpd_banner = %s\n %s\n", piece, piece), 0);
	cfg = load_ok(yz_buf_cstr(&b));
	yz_config_free(&cfg);
	assert_int_equal(yz_buf_printf(&b, " %s\n", piece), 0);
	expect_error(yz_buf_cstr(&b),
		     "t.conf:2: line with its continuations is longer than 65536 bytes");
	free(piece);
	/* Exactly at the limit when joined: prefix + value pieces. */
	yz_buf_reset(&b);
	size_t first = YZ_CONFIG_LINE_MAX - plen - 1 - 10; /* then " " + 10 bytes */
	piece = filler(first, 'z');
	assert_int_equal(yz_buf_printf(&b, "%s%s\n 0123456789\n", prefix, piece), 0);
	cfg = load_ok(yz_buf_cstr(&b));
	assert_int_equal(strlen(yz_cfg_str(cfg, YZ_P_SMTPD_BANNER)), YZ_CONFIG_LINE_MAX - plen);
	yz_config_free(&cfg);
	yz_buf_reset(&b);
	assert_int_equal(yz_buf_printf(&b, "%s%s\n 0123456789A\n", prefix, piece), 0);
	expect_error(yz_buf_cstr(&b),
		     "t.conf:1: line with its continuations is longer than 65536 bytes");
	free(piece);
	yz_buf_free(&b);
}

/* A valid file of exactly size bytes: one setting, then comment lines. */
static char *file_of_size(size_t size)
{
	char *s = filler(size, '#');
	static const char first[] = "smtpd_auth_over_plaintext = yes\n";
	memcpy(s, first, sizeof first - 1);
	for (size_t i = sizeof first - 1 + 1000; i < size; i += 1000)
		s[i] = '\n';
	return s;
}

static void test_file_limit(void **state)
{
	(void)state;
	struct yz_config *cfg = yz_config_new_defaults(false);
	const char *error;
	char *data = file_of_size(YZ_CONFIG_FILE_MAX + 1);
	assert_int_equal(yz_config_load_buf(cfg, "big.conf", data, YZ_CONFIG_FILE_MAX, &error), 0);
	assert_true(yz_cfg_bool(cfg, YZ_P_SMTPD_AUTH_OVER_PLAINTEXT));
	yz_config_free(&cfg);
	cfg = yz_config_new_defaults(false);
	assert_int_equal(yz_config_load_buf(cfg, "big.conf", data, YZ_CONFIG_FILE_MAX + 1, &error), -1);
	assert_string_equal(error, "big.conf: file is larger than 1048576 bytes");
	assert_false(yz_cfg_bool(cfg, YZ_P_SMTPD_AUTH_OVER_PLAINTEXT));

	/* The same through the file system. */
	char dir[] = "/tmp/test_lib_config.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[sizeof dir + 32];
	snprintf(path, sizeof path, "%s/yizhan.conf", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, YZ_CONFIG_FILE_MAX, f), YZ_CONFIG_FILE_MAX);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(yz_config_load(cfg, path, false, &error), 0);
	assert_true(yz_cfg_bool(cfg, YZ_P_SMTPD_AUTH_OVER_PLAINTEXT));
	f = fopen(path, "a");
	assert_non_null(f);
	assert_int_equal(fputc('\n', f), '\n');
	assert_int_equal(fclose(f), 0);
	assert_int_equal(yz_config_load(cfg, path, false, &error), -1);
	char expected[sizeof path + 64];
	snprintf(expected, sizeof expected, "%s: file is larger than 1048576 bytes", path);
	assert_string_equal(error, expected);

	/* A small file with an error names its path and line. */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("smtpd_auth_over_plaintext = no\nsmtpd_recipient_limit = 0\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(yz_config_load(cfg, path, false, &error), -1);
	snprintf(expected, sizeof expected, "%s:2: smtpd_recipient_limit: value 0 is below the minimum 1", path);
	assert_string_equal(error, expected);
	assert_int_equal(unlink(path), 0);

	/* A missing file. */
	assert_int_equal(yz_config_load(cfg, path, true, &error), 0);
	assert_int_equal(yz_config_load(cfg, path, false, &error), -1);
	snprintf(expected, sizeof expected, "%s: No such file or directory", path);
	assert_string_equal(error, expected);
	assert_int_equal(rmdir(dir), 0);
	free(data);
	yz_config_free(&cfg);
}

static void test_set(void **state)
{
	(void)state;
	struct yz_config *cfg = yz_config_new_defaults(false);
	const char *error;
	const char *old_banner = yz_cfg_str(cfg, YZ_P_SMTPD_BANNER);
	assert_int_equal(yz_config_set(cfg, "myhostname", "mx.example.net", &error), 0);
	assert_string_equal(yz_cfg_str(cfg, YZ_P_SMTPD_BANNER), "mx.example.net ESMTP yizhan");
	assert_string_equal(old_banner, " ESMTP yizhan");
	assert_int_equal(yz_config_set(cfg, "state_directory", "/tmp/x", &error), 0);
	assert_string_equal(yz_cfg_str(cfg, YZ_P_TLS_CERT_FILE), "/tmp/x/tls/cert.pem");
	assert_int_equal(yz_config_set(cfg, "smtpd_recipient_limit", "0", &error), -1);
	assert_string_equal(error, "smtpd_recipient_limit: value 0 is below the minimum 1");
	assert_int_equal(yz_cfg_int(cfg, YZ_P_SMTPD_RECIPIENT_LIMIT), 1000);
	assert_int_equal(yz_config_set(cfg, "bogus", "1", &error), -1);
	assert_string_equal(error, "bogus: unknown parameter");
	assert_int_equal(yz_config_set(cfg, "myhostname", "$smtpd_banner", &error), -1);
	assert_string_equal(error, "myhostname: expansion loop myhostname -> smtpd_banner -> myhostname");
	assert_string_equal(yz_cfg_str(cfg, YZ_P_MYHOSTNAME), "mx.example.net");
	/* The error string survives freeing the configuration. */
	yz_config_free(&cfg);
	assert_string_equal(error, "myhostname: expansion loop myhostname -> smtpd_banner -> myhostname");
}

static void test_order_rules(void **state)
{
	(void)state;
	expect_error("master_restart_delay_min = 2m\n",
		     "t.conf:1: master_restart_delay_min: value 2m is above master_restart_delay_max (60s)");
	expect_error("maximal_backoff_time = 60s\n",
		     "t.conf:1: maximal_backoff_time: value 60s is below minimal_backoff_time (300s)");
	expect_error("smtpd_soft_error_limit = 5\nsmtpd_hard_error_limit = 4\n",
		     "t.conf:2: smtpd_hard_error_limit: value 4 is below smtpd_soft_error_limit (5)");
	struct yz_config *cfg = load_ok("auth_failure_delay = 15s\n");
	yz_config_free(&cfg);
	expect_error_has("auth_failure_delay = 16s\n", "is above auth_failure_delay_max (15s)");
}

static void test_print(void **state)
{
	(void)state;
	struct yz_config *cfg = load_ok("smtp_port = 26\nimap_port = 143\nmyhostname = mx\n"
					"message_size_limit = 10M\nplus_separator =\n");
	struct yz_buf out;
	const char *error;
	yz_buf_init(&out, 0);
	assert_int_equal(yz_config_print(cfg, &out, false, NULL, &error), 0);
	/* Every parameter, one line each, sorted by name. */
	const char *p = yz_buf_cstr(&out);
	size_t lines = 0;
	char prev[128] = "";
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		assert_non_null(nl);
		const char *sp = strchr(p, ' ');
		assert_true(sp != NULL && sp < nl);
		char name[128];
		snprintf(name, sizeof name, "%.*s", (int)(sp - p), p);
		assert_true(strcmp(prev, name) < 0);
		assert_true(yz_config_param_id(name) >= 0);
		snprintf(prev, sizeof prev, "%s", name);
		lines++;
		p = nl + 1;
	}
	assert_int_equal(lines, YZ_P__COUNT);
	assert_non_null(strstr(yz_buf_cstr(&out), "\nsmtpd_banner = mx ESMTP yizhan\n"));
	assert_non_null(strstr(yz_buf_cstr(&out), "\nrun_directory = /var/lib/yizhan/run\n"));
	assert_non_null(strstr(yz_buf_cstr(&out), "\nplus_separator =\n"));

	/* -n: set to something else than the default (imap_port is not). */
	yz_buf_reset(&out);
	assert_int_equal(yz_config_print(cfg, &out, true, NULL, &error), 0);
	assert_string_equal(yz_buf_cstr(&out),
			    "message_size_limit = 10M\nmyhostname = mx\nplus_separator =\nsmtp_port = 26\n");

	/* Names, in the order given; with -n. */
	static const char *const names[] = { "smtpd_banner", "imap_port", "smtp_port", NULL };
	yz_buf_reset(&out);
	assert_int_equal(yz_config_print(cfg, &out, false, names, &error), 0);
	assert_string_equal(yz_buf_cstr(&out),
			    "smtpd_banner = mx ESMTP yizhan\nimap_port = 143\nsmtp_port = 26\n");
	yz_buf_reset(&out);
	assert_int_equal(yz_config_print(cfg, &out, true, names, &error), 0);
	assert_string_equal(yz_buf_cstr(&out), "smtp_port = 26\n");
	static const char *const bad[] = { "smtp_port", "nope", NULL };
	yz_buf_reset(&out);
	assert_int_equal(yz_config_print(cfg, &out, false, bad, &error), -1);
	assert_string_equal(error, "nope: unknown parameter");
	assert_int_equal(yz_buf_len(&out), 0);
	yz_buf_free(&out);

	/* A full output buffer is an error and leaves the buffer as it was. */
	yz_buf_init(&out, 100);
	assert_int_equal(yz_buf_append_str(&out, "keep"), 0);
	assert_int_equal(yz_config_print(cfg, &out, false, NULL, &error), -1);
	assert_string_equal(error, "output is larger than its buffer");
	assert_string_equal(yz_buf_cstr(&out), "keep");
	yz_buf_free(&out);
	yz_config_free(&cfg);
}

static void test_doc_markdown(void **state)
{
	(void)state;
	struct yz_buf out;
	yz_buf_init(&out, 0);
	yz_config_doc_markdown(&out);
	const char *doc = yz_buf_cstr(&out);
	assert_non_null(strstr(doc, "# yizhan configuration reference"));
	assert_non_null(strstr(doc, "`$$`"));
	assert_non_null(strstr(doc, "yizhan config check"));
	assert_non_null(strstr(doc, "\n## SMTP server\n"));
	for (int id = 0; id < YZ_P__COUNT; id++) {
		char heading[128];
		snprintf(heading, sizeof heading, "\n### `%s`\n",
			 yz_config_param_name((enum yz_param_id)id));
		if (strstr(doc, heading) == NULL)
			fail_msg("no entry for %s", heading);
	}
	assert_non_null(strstr(doc, "- default: `25`; dev mode: `2525`\n- range: `0` to `65535`\n"));
	assert_non_null(strstr(doc, "- type: time (a plain number is in milliseconds)\n"
				    "- default: `1ms`\n- range: `0` to `100ms`\n"));
	assert_non_null(strstr(doc, "- type: one of `sqlite`, `postgresql`\n"));
	assert_non_null(strstr(doc, "- default: (empty)\n"));
	yz_buf_free(&out);
}

/* Every prefix of a file, as if it arrived a byte at a time: no crash, and
 * each prefix either loads or fails with a file:line message. */
static void test_prefixes(void **state)
{
	(void)state;
	static const char text[] =
		"# yizhan.conf\n"
		"myhostname = mx.example.org\n"
		"smtpd_banner = ${myhostname} ESMTP\n"
		"mynetworks = 127.0.0.0/8,\n"
		"    [::1]/128\n"
		"message_size_limit = 25M\n"
		"smtpd_timeout = 120s\n"
		"smtpd_auth_over_plaintext = yes\n"
		"log_level = warning\n";
	for (size_t n = 0; n <= sizeof text - 1; n++) {
		struct yz_config *cfg = yz_config_new_defaults(false);
		const char *error = NULL;
		if (yz_config_load_buf(cfg, "t.conf", text, n, &error) < 0)
			assert_true(strncmp(error, "t.conf:", 7) == 0);
		yz_config_free(&cfg);
	}
	struct yz_config *cfg = load_ok(text);
	assert_string_equal(yz_cfg_str(cfg, YZ_P_SMTPD_BANNER), "mx.example.org ESMTP");
	assert_int_equal(yz_cfg_list_count(cfg, YZ_P_MYNETWORKS), 2);
	assert_int_equal(yz_cfg_size(cfg, YZ_P_MESSAGE_SIZE_LIMIT), 25ULL << 20);
	assert_int_equal(yz_cfg_time_ms(cfg, YZ_P_SMTPD_TIMEOUT), 120000);
	assert_true(yz_cfg_bool(cfg, YZ_P_SMTPD_AUTH_OVER_PLAINTEXT));
	assert_string_equal(yz_cfg_str(cfg, YZ_P_LOG_LEVEL), "warning");
	yz_config_free(&cfg);
}

/* Run fn in a child; true if the child died of a signal (yz_panic aborts). */
static bool dies(void (*fn)(const struct yz_config *), const struct yz_config *cfg)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Keep the panic message out of the test output. */
		if (freopen("/dev/null", "w", stderr) == NULL)
			_exit(2);
		fn(cfg);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFSIGNALED(status);
}

static void wrong_int(const struct yz_config *cfg) { (void)yz_cfg_int(cfg, YZ_P_MESSAGE_SIZE_LIMIT); }
static void wrong_str(const struct yz_config *cfg) { (void)yz_cfg_str(cfg, YZ_P_MYNETWORKS); }
static void wrong_bool(const struct yz_config *cfg) { (void)yz_cfg_bool(cfg, YZ_P_SMTP_PORT); }
static void wrong_item(const struct yz_config *cfg) { (void)yz_cfg_list_item(cfg, YZ_P_MYNETWORKS, 2); }
static void wrong_id(const struct yz_config *cfg) { (void)yz_cfg_int(cfg, YZ_P__COUNT); }
static void right_call(const struct yz_config *cfg) { (void)yz_cfg_int(cfg, YZ_P_SMTP_PORT); }

static void test_wrong_accessor_panics(void **state)
{
	(void)state;
	struct yz_config *cfg = yz_config_new_defaults(false);
	assert_true(dies(wrong_int, cfg));
	assert_true(dies(wrong_str, cfg));
	assert_true(dies(wrong_bool, cfg));
	assert_true(dies(wrong_item, cfg));
	assert_true(dies(wrong_id, cfg));
	assert_false(dies(right_call, cfg));
	yz_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_dev_defaults),
		cmocka_unit_test(test_param_names),
		cmocka_unit_test(test_int),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_enum),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_last_wins),
		cmocka_unit_test(test_failed_load_changes_nothing),
		cmocka_unit_test(test_expansion),
		cmocka_unit_test(test_expansion_depth),
		cmocka_unit_test(test_value_limit),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_file_limit),
		cmocka_unit_test(test_set),
		cmocka_unit_test(test_order_rules),
		cmocka_unit_test(test_print),
		cmocka_unit_test(test_doc_markdown),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_wrong_accessor_panics),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

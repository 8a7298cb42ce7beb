/*
 * cli_util.c: small helpers of the command line: errors, configuration,
 * JSON strings, password input.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <termios.h>
#include <unistd.h>

#include "lib/config_load.h"
#include "lib/mem.h"
#include "lib/priv.h"

int cli_fail(const char *fmt, ...)
{
	va_list ap;
	fputs("yizhan: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

struct yz_config *cli_config(struct cli *c, bool missing_ok)
{
	if (yz_config_path(c->config_arg, c->state_dir, c->dev, c->config_path,
			   sizeof c->config_path) < 0) {
		cli_fail("configuration path too long");
		return NULL;
	}
	const char *err;
	struct yz_config *cfg = yz_config_load_opt(c->config_path, c->state_dir, c->dev,
						   missing_ok, &err);
	if (cfg == NULL)
		cli_fail("%s", err);
	return cfg;
}

void cli_json_str(struct yz_buf *out, const char *s)
{
	yz_buf_append_c(out, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		switch (*p) {
		case '"': yz_buf_append_str(out, "\\\""); break;
		case '\\': yz_buf_append_str(out, "\\\\"); break;
		case '\n': yz_buf_append_str(out, "\\n"); break;
		case '\r': yz_buf_append_str(out, "\\r"); break;
		case '\t': yz_buf_append_str(out, "\\t"); break;
		default:
			if (*p < 0x20)
				yz_buf_printf(out, "\\u%04x", *p);
			else
				yz_buf_append_c(out, (char)*p);
		}
	}
	yz_buf_append_c(out, '"');
}

/* One line from stdin, or from the terminal with echo off. */
int cli_read_password(struct cli *c, const char *prompt, char *buf, size_t size)
{
	bool tty = !c->password_stdin && isatty(0);
	if (!c->password_stdin && !tty)
		return cli_fail("no password given: use --password-stdin, --generate-password, or a terminal");
	struct termios old, quiet;
	if (tty) {
		fputs(prompt, stderr);
		fflush(stderr);
		if (tcgetattr(0, &old) == 0) {
			quiet = old;
			quiet.c_lflag &= ~(tcflag_t)ECHO;
			tcsetattr(0, TCSAFLUSH, &quiet);
		}
	}
	char *got = fgets(buf, (int)size, stdin);
	if (tty) {
		tcsetattr(0, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (got == NULL)
		return cli_fail("no password read");
	size_t n = strlen(buf);
	if (n == size - 1 && buf[n - 1] != '\n') {
		yz_wipe(buf, size);
		return cli_fail("password too long (at most %zu bytes)", size - 2);
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	if (n == 0)
		return cli_fail("empty password");
	return 0;
}

/* 20 characters from an alphabet without look-alikes: ~115 bits. */
void cli_generate_password(char *buf, size_t size)
{
	static const char alphabet[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
	const size_t len = 20;
	unsigned char rnd[64];
	if (size < len + 1 || getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
		fprintf(stderr, "yizhan: no randomness\n");
		exit(1);
	}
	size_t o = 0;
	for (size_t i = 0; i < sizeof rnd && o < len; i++) {
		/* Rejection sampling keeps the distribution uniform. */
		if (rnd[i] >= 256 - 256 % (sizeof alphabet - 1))
			continue;
		buf[o++] = alphabet[rnd[i] % (sizeof alphabet - 1)];
	}
	while (o < len)
		buf[o++] = 'x'; /* practically unreachable */
	buf[o] = '\0';
	yz_wipe(rnd, sizeof rnd);
}

bool cli_is_root(void)
{
	return geteuid() == 0;
}

int cli_become_yizhan(struct yz_config *cfg)
{
	if (yz_config_dev_mode(cfg) || !cli_is_root())
		return 0;
	const char *user = yz_cfg_str(cfg, YZ_P_YIZHAN_USER);
	uid_t uid;
	gid_t gid;
	const char *err;
	if (yz_priv_lookup(user, &uid, &gid, &err) < 0)
		return cli_fail("user %s: %s (run yizhan init first)", user, err);
	if (yz_priv_drop(uid, gid, NULL, &err) < 0)
		return cli_fail("cannot become %s: %s", user, err);
	return 0;
}

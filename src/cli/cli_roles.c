/*
 * cli_roles.c: the table of roles this binary can run. The master starts
 * them in this order (the directory first: everybody asks it things). A role
 * appears here once its code exists; `yizhan status` lists what runs.
 */
#include "cli/cli.h"

#include <stdio.h>

#include "directory/dir_server.h"
#include "mailbox/mailbox.h"
#include "queue/queue.h"
#include "smtpd/smtpd.h"

static const struct cli_role roles[] = {
	{ YZ_ROLE_DIRECTORY, dir_role_run, "" },
	{ YZ_ROLE_MAILBOX, mailbox_role_run, "pop3 pop3s" },
	{ YZ_ROLE_QUEUE, queue_role_run, "" },
	{ YZ_ROLE_SMTPD, smtpd_role_run, "smtp submission submissions" },
};

const struct cli_role *cli_roles_find(int role)
{
	for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
		if ((int)roles[i].role == role)
			return &roles[i];
	return NULL;
}

size_t cli_roles_list(enum yz_role *out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < sizeof roles / sizeof roles[0] && n < max; i++)
		out[n++] = roles[i].role;
	return n;
}

const char *cli_roles_listeners(void)
{
	static char all[256];
	if (all[0] == '\0') {
		size_t o = 0;
		for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
			int n = snprintf(all + o, sizeof all - o, "%s ", roles[i].listeners);
			if (n > 0 && (size_t)n < sizeof all - o)
				o += (size_t)n;
		}
	}
	return all;
}

/*
 * ipc_msg.c: names of the roles of the IPC table (ipc_msg.h).
 */
#include "lib/ipc_msg.h"

#include <string.h>

static const char *const role_names[YZ_ROLE__COUNT] = {
	[YZ_ROLE_MASTER] = "master",   [YZ_ROLE_DIRECTORY] = "directory",
	[YZ_ROLE_SMTPD] = "smtpd",     [YZ_ROLE_QUEUE] = "queue",
	[YZ_ROLE_MAILBOX] = "mailbox", [YZ_ROLE_ADMIN] = "admin",
};

const char *yz_role_name(enum yz_role role)
{
	if ((unsigned)role >= YZ_ROLE__COUNT)
		return "unknown";
	return role_names[role];
}

int yz_role_from_name(const char *name)
{
	for (int i = 0; i < YZ_ROLE__COUNT; i++)
		if (strcmp(role_names[i], name) == 0)
			return i;
	return -1;
}

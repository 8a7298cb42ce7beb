/*
 * master_listen.c: the listening sockets. The master binds them (ports
 * below 1024 need root) and hands copies to the serving role; it never
 * accepts on them. Sockets survive role restarts and reloads, so clients
 * are queued by the kernel, never refused, while a role is replaced.
 */
#include "master/master_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/net.h"

#define LISTEN_BACKLOG 511

struct listen_spec {
	const char *name;
	enum yz_param_id port;
	enum yz_role role;
};

static const struct listen_spec listen_specs[] = {
	{ "smtp", YZ_P_SMTP_PORT, YZ_ROLE_SMTPD },
	{ "submission", YZ_P_SUBMISSION_PORT, YZ_ROLE_SMTPD },
	{ "submissions", YZ_P_SUBMISSIONS_PORT, YZ_ROLE_SMTPD },
	{ "imap", YZ_P_IMAP_PORT, YZ_ROLE_MAILBOX },
	{ "imaps", YZ_P_IMAPS_PORT, YZ_ROLE_MAILBOX },
	{ "pop3", YZ_P_POP3_PORT, YZ_ROLE_MAILBOX },
	{ "pop3s", YZ_P_POP3S_PORT, YZ_ROLE_MAILBOX },
	{ "admin", YZ_P_ADMIN_PORT, YZ_ROLE_ADMIN },
};

static bool master_role_enabled(const struct master *m, enum yz_role role)
{
	for (size_t i = 0; i < m->opts.nroles; i++)
		if (m->opts.roles[i] == role)
			return true;
	return false;
}

/* Does this build have a front-end for the listener? */
static bool master_serves(const struct master *m, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = m->opts.listeners; p != NULL && *p != '\0';) {
		const char *sp = strchr(p, ' ');
		size_t len = sp ? (size_t)(sp - p) : strlen(p);
		if (len == n && strncmp(p, name, n) == 0)
			return true;
		p = sp ? sp + 1 : NULL;
	}
	return false;
}

/* The addresses of inet_interfaces: "all", "loopback-only" or literals. */
static size_t master_addresses(const struct yz_config *cfg, const char **out, size_t max)
{
	size_t n = 0;
	size_t count = yz_cfg_list_count(cfg, YZ_P_INET_INTERFACES);
	for (size_t i = 0; i < count && n + 2 <= max; i++) {
		const char *w = yz_cfg_list_item(cfg, YZ_P_INET_INTERFACES, i);
		if (strcmp(w, "all") == 0) {
			out[n++] = "0.0.0.0";
			out[n++] = "::";
		} else if (strcmp(w, "loopback-only") == 0) {
			out[n++] = "127.0.0.1";
			out[n++] = "::1";
		} else {
			out[n++] = w;
		}
	}
	return n;
}

/* Build the wanted listener set in want[]; fds not yet opened. */
static size_t master_wanted(const struct master *m, struct master_listener *want, size_t max)
{
	const char *addrs[16];
	size_t naddrs = master_addresses(m->cfg, addrs, 16);
	size_t n = 0;
	for (size_t i = 0; i < sizeof listen_specs / sizeof listen_specs[0]; i++) {
		const struct listen_spec *sp = &listen_specs[i];
		long long port = yz_cfg_int(m->cfg, sp->port);
		if (port == 0 || !master_role_enabled(m, sp->role) ||
		    !master_serves(m, sp->name))
			continue;
		for (size_t a = 0; a < naddrs && n < max; a++) {
			struct master_listener *l = &want[n++];
			memset(l, 0, sizeof *l);
			snprintf(l->name, sizeof l->name, "%s", sp->name);
			snprintf(l->addr, sizeof l->addr, "%s", addrs[a]);
			l->port = (unsigned)port;
			l->role = sp->role;
			l->fd = -1;
		}
	}
	return n;
}

static char listen_err[512];

static int master_bind_one(struct master_listener *l, const char **error_r)
{
	const char *err;
	l->fd = yz_net_listen_tcp(l->addr, l->port, LISTEN_BACKLOG, &err);
	if (l->fd < 0) {
		/* A host without IPv6 still serves IPv4 on the wildcard. */
		if (strchr(l->addr, ':') != NULL && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL)) {
			yz_log_warn("%s: no IPv6 on %s: %s", l->name, l->addr, err);
			return 0;
		}
		snprintf(listen_err, sizeof listen_err, "cannot listen for %s on [%s]:%u: %s",
			 l->name, l->addr, l->port, err);
		*error_r = listen_err;
		return -1;
	}
	yz_log_info("listening for %s on [%s]:%u", l->name, l->addr, l->port);
	return 0;
}

int master_listeners_open(struct master *m, const char **error_r)
{
	m->nlisteners = master_wanted(m, m->listeners, MASTER_LISTENERS_MAX);
	for (size_t i = 0; i < m->nlisteners; i++) {
		if (master_bind_one(&m->listeners[i], error_r) < 0) {
			master_listeners_close(m);
			return -1;
		}
	}
	return 0;
}

/* Reload: keep sockets whose address and port are unchanged, bind new ones,
 * close the ones no longer configured. All or nothing. */
int master_listeners_update(struct master *m, const char **error_r)
{
	struct master_listener want[MASTER_LISTENERS_MAX];
	size_t n = master_wanted(m, want, MASTER_LISTENERS_MAX);
	for (size_t i = 0; i < m->nlisteners; i++)
		m->listeners[i].keep = false;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < m->nlisteners; j++) {
			struct master_listener *o = &m->listeners[j];
			if (!o->keep && o->port == want[i].port && strcmp(o->addr, want[i].addr) == 0 &&
			    strcmp(o->name, want[i].name) == 0) {
				want[i].fd = o->fd;
				o->keep = true;
				break;
			}
		}
		if (want[i].fd < 0 && master_bind_one(&want[i], error_r) < 0) {
			for (size_t k = 0; k < i; k++) {
				bool reused = false;
				for (size_t j = 0; j < m->nlisteners; j++)
					reused = reused || (m->listeners[j].fd == want[k].fd);
				if (!reused && want[k].fd >= 0)
					close(want[k].fd);
			}
			return -1;
		}
	}
	for (size_t j = 0; j < m->nlisteners; j++)
		if (!m->listeners[j].keep && m->listeners[j].fd >= 0)
			close(m->listeners[j].fd);
	memcpy(m->listeners, want, n * sizeof want[0]);
	m->nlisteners = n;
	return 0;
}

void master_listeners_close(struct master *m)
{
	for (size_t i = 0; i < m->nlisteners; i++) {
		if (m->listeners[i].fd >= 0)
			close(m->listeners[i].fd);
		m->listeners[i].fd = -1;
	}
	m->nlisteners = 0;
}

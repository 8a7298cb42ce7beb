/*
 * smtpd_limits.c: connection accounting (in total and per client address)
 * and the error counting rule of a session.
 *
 * Guarantees: the table holds one entry per client address that has open
 * connections, so it never holds more entries than connections are open
 * (bounded by smtpd_connection_limit); an entry is removed when its count
 * drops to zero.
 * Never: count a connection that was refused (a refused one is not
 * "connected" and is not disconnected later).
 */
#include "smtpd/smtpd_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"

#define LIMITS_BUCKETS 1024

struct limits_entry {
	struct limits_entry *next;
	unsigned count;
	char ip[SMTPD_IP_MAX];
};

struct smtpd_limits {
	unsigned total_max;
	unsigned per_ip_max;
	unsigned total;
	struct limits_entry *buckets[LIMITS_BUCKETS];
};

/* FNV-1a of the address text. */
static size_t limits_hash(const char *ip)
{
	uint32_t h = 2166136261u;

	for (; *ip != '\0'; ip++) {
		h ^= (unsigned char)*ip;
		h *= 16777619u;
	}
	return h % LIMITS_BUCKETS;
}

/* The entry of ip, or NULL. */
static struct limits_entry *limits_find(const struct smtpd_limits *lim, const char *ip)
{
	struct limits_entry *e;

	for (e = lim->buckets[limits_hash(ip)]; e != NULL; e = e->next) {
		if (strcmp(e->ip, ip) == 0)
			return e;
	}
	return NULL;
}

/* A new accounting table; 0 for a limit means "no limit". */
struct smtpd_limits *smtpd_limits_new(unsigned total_max, unsigned per_ip_max)
{
	struct smtpd_limits *lim = yz_calloc(1, sizeof(*lim));

	lim->total_max = total_max;
	lim->per_ip_max = per_ip_max;
	return lim;
}

/* Free the table and every entry. */
void smtpd_limits_free(struct smtpd_limits **limp)
{
	struct smtpd_limits *lim = *limp;
	size_t i;

	if (lim == NULL)
		return;
	for (i = 0; i < LIMITS_BUCKETS; i++) {
		while (lim->buckets[i] != NULL) {
			struct limits_entry *e = lim->buckets[i];

			lim->buckets[i] = e->next;
			free(e);
		}
	}
	free(lim);
	*limp = NULL;
}

/* Count a new connection unless a limit is reached. */
enum smtpd_limit_verdict smtpd_limits_connect(struct smtpd_limits *lim, const char *ip)
{
	struct limits_entry *e = limits_find(lim, ip);
	size_t h;

	if (lim->total_max != 0 && lim->total >= lim->total_max)
		return SMTPD_LIMIT_TOTAL;
	if (e != NULL && lim->per_ip_max != 0 && e->count >= lim->per_ip_max)
		return SMTPD_LIMIT_PER_IP;
	if (e == NULL) {
		e = yz_calloc(1, sizeof(*e));
		snprintf(e->ip, sizeof(e->ip), "%s", ip);
		h = limits_hash(e->ip);
		e->next = lim->buckets[h];
		lim->buckets[h] = e;
	}
	e->count++;
	lim->total++;
	return SMTPD_LIMIT_OK;
}

/* Forget one connection of ip. */
void smtpd_limits_disconnect(struct smtpd_limits *lim, const char *ip)
{
	struct limits_entry **pp = &lim->buckets[limits_hash(ip)];

	for (; *pp != NULL; pp = &(*pp)->next) {
		struct limits_entry *e = *pp;

		if (strcmp(e->ip, ip) != 0)
			continue;
		if (lim->total > 0)
			lim->total--;
		if (--e->count == 0) {
			*pp = e->next;
			free(e);
		}
		return;
	}
}

/* Connections open in total. */
unsigned smtpd_limits_total(const struct smtpd_limits *lim)
{
	return lim->total;
}

/* Connections open from ip. */
unsigned smtpd_limits_of_ip(const struct smtpd_limits *lim, const char *ip)
{
	const struct limits_entry *e = limits_find(lim, ip);

	return e != NULL ? e->count : 0;
}

/* What to do after the errors-th error reply (Postfix's rule: beyond the
 * soft limit each error reply is delayed; at the hard limit, disconnect). */
enum smtpd_error_action smtpd_limits_error_action(unsigned errors, unsigned soft, unsigned hard)
{
	if (hard != 0 && errors >= hard)
		return SMTPD_ERR_DISCONNECT;
	if (soft != 0 && errors > soft)
		return SMTPD_ERR_SLEEP;
	return SMTPD_ERR_NONE;
}

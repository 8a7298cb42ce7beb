/*
 * policy_net.c: CIDR network lists (mynetworks) for the relay decision.
 *
 * Guarantees: entries are parsed strictly with inet_pton (no host names, no
 * shorthand like "10/8"), prefixes are bounded by the address family, and
 * host bits beyond the prefix are an error (a typo such as 10.0.0.1/8 would
 * otherwise quietly mean something other than what the admin wrote).
 * Never: allocate without bound (POLICY_NETLIST_MAX), resolve names.
 */
#include "policy/policy_net.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/mem.h"

/* Parse a decimal prefix length of at most max; -1 if malformed. */
static int prefix_parse(const char *s, unsigned max, unsigned *prefix_r)
{
	unsigned v = 0;
	size_t i;

	if (s[0] == '\0' || strlen(s) > 3)
		return -1;
	/* A leading zero ("/08") is a typo, not a prefix. */
	if (s[0] == '0' && s[1] != '\0')
		return -1;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*prefix_r = v;
	return 0;
}

/* Are all bits after prefix zero? */
static bool host_bits_clear(const unsigned char *addr, size_t bytes, unsigned prefix)
{
	size_t i;

	for (i = 0; i < bytes; i++) {
		unsigned bit = (unsigned)i * 8;
		unsigned char mask;

		if (bit + 8 <= prefix)
			continue;
		mask = bit >= prefix ? 0xff : (unsigned char)(0xff >> (prefix - bit));
		if ((addr[i] & mask) != 0)
			return false;
	}
	return true;
}

/* Parse one entry such as "10.0.0.0/8" or "[::1]/128". */
int policy_net_parse(const char *entry, struct policy_net *net_r, const char **error_r)
{
	char text[POLICY_NET_ENTRY_MAX + 1];
	char *addr, *slash, *close;
	size_t len = strlen(entry);
	bool bracket = false;
	unsigned max;

	memset(net_r, 0, sizeof(*net_r));
	if (len == 0 || len > POLICY_NET_ENTRY_MAX) {
		*error_r = "network entry is empty or too long";
		return -1;
	}
	memcpy(text, entry, len + 1);
	addr = text;
	if (addr[0] == '[') {
		close = strchr(addr, ']');
		if (close == NULL) {
			*error_r = "network entry has '[' without ']'";
			return -1;
		}
		*close = '\0';
		addr++;
		bracket = true;
		slash = close + 1;
		if (*slash == '\0') {
			slash = NULL;
		} else if (*slash != '/') {
			*error_r = "network entry has text after ']'";
			return -1;
		}
	} else {
		slash = strchr(addr, '/');
	}
	if (slash != NULL)
		*slash++ = '\0';

	if (!bracket && inet_pton(AF_INET, addr, net_r->addr) == 1) {
		net_r->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, net_r->addr) == 1) {
		net_r->family = AF_INET6;
		max = 128;
	} else {
		*error_r = "network entry is not an IPv4 or IPv6 address (host names are not accepted)";
		return -1;
	}
	if (slash == NULL) {
		net_r->prefix = max;
	} else if (prefix_parse(slash, max, &net_r->prefix) < 0) {
		*error_r = "network entry has a bad prefix length";
		return -1;
	}
	if (!host_bits_clear(net_r->addr, max / 8, net_r->prefix)) {
		*error_r = "network entry has host bits set beyond its prefix length";
		return -1;
	}
	return 0;
}

/* Initialise an empty list. */
void policy_netlist_init(struct policy_netlist *list)
{
	memset(list, 0, sizeof(*list));
}

/* Parse and append one entry. */
int policy_netlist_add(struct policy_netlist *list, const char *entry, const char **error_r)
{
	struct policy_net net;

	if (policy_net_parse(entry, &net, error_r) < 0)
		return -1;
	if (list->count >= POLICY_NETLIST_MAX) {
		*error_r = "too many network entries";
		return -1;
	}
	if (list->count == list->alloc) {
		list->alloc = list->alloc == 0 ? 8 : list->alloc * 2;
		list->nets = yz_realloc(list->nets, list->alloc * sizeof(*list->nets));
	}
	list->nets[list->count++] = net;
	return 0;
}

/* Does the address fall inside one entry? */
bool policy_net_contains(const struct policy_net *net, int family, const unsigned char *addr)
{
	unsigned full, rest;

	if (net->family != family)
		return false;
	full = net->prefix / 8;
	rest = net->prefix % 8;
	if (memcmp(net->addr, addr, full) != 0)
		return false;
	if (rest != 0) {
		unsigned char mask = (unsigned char)(0xff << (8 - rest));

		if ((net->addr[full] & mask) != (addr[full] & mask))
			return false;
	}
	return true;
}

/* Is the printable client address in the list? */
bool policy_netlist_match(const struct policy_netlist *list, const char *ip)
{
	static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	unsigned char addr[16];
	unsigned char addr4[4];
	bool has4 = false, has6 = false;
	size_t i;

	if (inet_pton(AF_INET, ip, addr4) == 1) {
		has4 = true;
	} else if (inet_pton(AF_INET6, ip, addr) == 1) {
		has6 = true;
		if (memcmp(addr, v4mapped, sizeof(v4mapped)) == 0) {
			memcpy(addr4, addr + 12, 4);
			has4 = true;
		}
	} else {
		return false;
	}
	for (i = 0; i < list->count; i++) {
		if (has4 && policy_net_contains(&list->nets[i], AF_INET, addr4))
			return true;
		if (has6 && policy_net_contains(&list->nets[i], AF_INET6, addr))
			return true;
	}
	return false;
}

/* Free the entries. */
void policy_netlist_free(struct policy_netlist *list)
{
	free(list->nets);
	policy_netlist_init(list);
}

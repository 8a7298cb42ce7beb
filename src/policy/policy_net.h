/*
 * policy_net.h: network lists (mynetworks): CIDR entries for IPv4 and IPv6,
 * and the question "is this client address in the list".
 *
 * Accepted entry forms: "127.0.0.0/8", "192.0.2.7" (a host), "[::1]/128",
 * "[2001:db8::]/32", "::1" and "2001:db8::/32" without brackets, as Postfix
 * accepts them. An IPv4-mapped IPv6 client address (::ffff:192.0.2.7) is
 * matched against the IPv4 entries.
 *
 * Guarantees: a malformed entry (not an address literal, a prefix that is
 * not a decimal in range, host bits set beyond the prefix, a host name) is an
 * error naming the entry, never silently ignored nor widened to "match all".
 * Never: resolve a host name (no DNS here: this is called on the event loop).
 */
#ifndef YZ_POLICY_NET_H
#define YZ_POLICY_NET_H

#include <stdbool.h>
#include <stddef.h>

/* Longest entry text accepted ("[ffff:...:ffff]/128" fits easily). */
#define POLICY_NET_ENTRY_MAX 64
/* Cap on the number of entries in one list. */
#define POLICY_NETLIST_MAX 10000

struct policy_net {
	int family;              /* AF_INET or AF_INET6 */
	unsigned char addr[16];  /* network address, 4 or 16 bytes used */
	unsigned prefix;         /* prefix length in bits */
};

struct policy_netlist {
	struct policy_net *nets;
	size_t count;
	size_t alloc;
};

/* Parse one entry; 0, or -1 with *error_r a static sentence. */
int policy_net_parse(const char *entry, struct policy_net *net_r, const char **error_r);
/* Initialise an empty list. */
void policy_netlist_init(struct policy_netlist *list);
/* Parse and append one entry (at most POLICY_NETLIST_MAX); 0 or -1 + error_r. */
int policy_netlist_add(struct policy_netlist *list, const char *entry, const char **error_r);
/* Does the printable client address ("192.0.2.1", "::1") fall in the list?
 * An unparsable address never matches. */
bool policy_netlist_match(const struct policy_netlist *list, const char *ip);
/* Does the address fall inside one entry? */
bool policy_net_contains(const struct policy_net *net, int family, const unsigned char *addr);
/* Free the entries; the list is empty afterwards. */
void policy_netlist_free(struct policy_netlist *list);

#endif

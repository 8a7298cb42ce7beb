/* fuzz_policy_net.c: the mynetworks entry parser and the matcher.
 * Input: an entry, a NUL byte, a client address. Checks that a parsed entry
 * always contains its own network address and that nothing crashes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char entry[POLICY_NET_ENTRY_MAX * 2 + 1];
	char ip[128];
	const uint8_t *nul = memchr(data, 0, size);
	size_t elen = nul != NULL ? (size_t)(nul - data) : size;
	struct policy_netlist list;
	struct policy_net net;
	const char *error;
	size_t ilen = 0;

	if (nul != NULL) {
		ilen = size - elen - 1;
		if (ilen >= sizeof(ip))
			ilen = sizeof(ip) - 1;
		memcpy(ip, nul + 1, ilen);
	}
	if (elen >= sizeof(entry))
		elen = sizeof(entry) - 1;
	memcpy(entry, data, elen);
	entry[elen] = '\0';
	ip[ilen] = '\0';

	if (policy_net_parse(entry, &net, &error) == 0) {
		if (!policy_net_contains(&net, net.family, net.addr))
			abort();
	} else if (error == NULL) {
		abort();
	}
	policy_netlist_init(&list);
	(void)policy_netlist_add(&list, entry, &error);
	(void)policy_netlist_match(&list, ip);
	policy_netlist_free(&list);
	return 0;
}

/*
 * policy_relay.h: the relay decision for one recipient (pure, no I/O).
 *
 * The rule, in the order it is applied:
 *   1. A relay-sneaking form ('%' or '!' in the local part, a quoted local
 *      part hiding '@', '%' or '!') is rejected for every client, trusted or
 *      not: POLICY_RELAY_SNEAK (550 5.7.1).
 *   2. A source route (<@x,@y:user@domain>) from an untrusted client is
 *      rejected (POLICY_RELAY_SNEAK); from a trusted client (authenticated,
 *      or in mynetworks) the route has already been stripped per RFC 5321
 *      appendix C and the real address is used.
 *   3. A local domain is delivered locally: POLICY_RELAY_LOCAL (the
 *      directory then says whether the user exists).
 *   4. A remote domain is relayed for trusted clients only: POLICY_RELAY_OK;
 *      otherwise POLICY_RELAY_DENIED (554 5.7.1 "Relay access denied").
 * Never: let an untrusted client reach a remote domain, whatever the form of
 * the address.
 */
#ifndef YZ_POLICY_RELAY_H
#define YZ_POLICY_RELAY_H

#include <stdbool.h>

enum policy_relay_verdict {
	POLICY_RELAY_LOCAL,   /* a local domain: resolve the user */
	POLICY_RELAY_OK,      /* remote domain, trusted client */
	POLICY_RELAY_DENIED,  /* remote domain, untrusted client */
	POLICY_RELAY_SNEAK,   /* relay-sneaking form: never accepted */
};

struct policy_relay_input {
	bool suspicious;     /* mail_address_is_suspicious() */
	bool had_route;      /* the path carried a source route */
	bool authenticated;  /* SASL login succeeded in this session */
	bool in_mynetworks;  /* the client address is in mynetworks */
};

/* Steps 1 and 2: may the address be looked up at all? LOCAL means "go on". */
enum policy_relay_verdict policy_relay_syntax(const struct policy_relay_input *in);
/* Steps 3 and 4, once the directory said whether the domain is local. */
enum policy_relay_verdict policy_relay_decide(const struct policy_relay_input *in, bool domain_local);
/* A short name for logs and tests ("local", "relay", "denied", "sneak"). */
const char *policy_relay_verdict_name(enum policy_relay_verdict v);

#endif

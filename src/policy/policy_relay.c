/*
 * policy_relay.c: the relay decision (see policy_relay.h for the rule).
 *
 * Guarantees: a pure function of its inputs; an untrusted client never gets
 * POLICY_RELAY_OK. Never: look anything up; the caller brings the facts.
 */
#include "policy/policy_relay.h"

/* Is the client trusted to relay? */
static bool relay_trusted(const struct policy_relay_input *in)
{
	return in->authenticated || in->in_mynetworks;
}

/* Reject the sneaking forms before any lookup. */
enum policy_relay_verdict policy_relay_syntax(const struct policy_relay_input *in)
{
	if (in->suspicious)
		return POLICY_RELAY_SNEAK;
	if (in->had_route && !relay_trusted(in))
		return POLICY_RELAY_SNEAK;
	return POLICY_RELAY_LOCAL;
}

/* The full decision once the domain is known to be local or not. */
enum policy_relay_verdict policy_relay_decide(const struct policy_relay_input *in, bool domain_local)
{
	enum policy_relay_verdict v = policy_relay_syntax(in);

	if (v != POLICY_RELAY_LOCAL)
		return v;
	if (domain_local)
		return POLICY_RELAY_LOCAL;
	return relay_trusted(in) ? POLICY_RELAY_OK : POLICY_RELAY_DENIED;
}

/* A short name for logs and tests. */
const char *policy_relay_verdict_name(enum policy_relay_verdict v)
{
	switch (v) {
	case POLICY_RELAY_LOCAL:
		return "local";
	case POLICY_RELAY_OK:
		return "relay";
	case POLICY_RELAY_DENIED:
		return "denied";
	case POLICY_RELAY_SNEAK:
		return "sneak";
	}
	return "unknown";
}

/* test_policy_net.c: mynetworks CIDR parsing and matching, relay decision. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <sys/socket.h>

#include "policy/policy_net.h"
#include "policy/policy_relay.h"

static void add_ok(struct policy_netlist *l, const char *e)
{
	const char *err = NULL;

	if (policy_netlist_add(l, e, &err) != 0)
		fail_msg("entry %s: %s", e, err);
}

static void test_parse_forms(void **state)
{
	struct policy_net n;
	const char *err;

	(void)state;
	assert_int_equal(policy_net_parse("127.0.0.0/8", &n, &err), 0);
	assert_int_equal(n.family, AF_INET);
	assert_int_equal(n.prefix, 8);
	assert_int_equal(policy_net_parse("192.0.2.7", &n, &err), 0);
	assert_int_equal(n.prefix, 32);
	assert_int_equal(policy_net_parse("0.0.0.0/0", &n, &err), 0);
	assert_int_equal(n.prefix, 0);
	assert_int_equal(policy_net_parse("[::1]/128", &n, &err), 0);
	assert_int_equal(n.family, AF_INET6);
	assert_int_equal(n.prefix, 128);
	assert_int_equal(policy_net_parse("[::1]", &n, &err), 0);
	assert_int_equal(n.prefix, 128);
	assert_int_equal(policy_net_parse("2001:db8::/32", &n, &err), 0);
	assert_int_equal(policy_net_parse("[2001:db8::]/32", &n, &err), 0);
	assert_int_equal(policy_net_parse("::/0", &n, &err), 0);
}

static void test_parse_bad(void **state)
{
	static const char *const bad[] = {
		"", "10/8", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/", "10.0.0.0/08",
		"10.0.0.1/8", "[::1]/129", "::1/1x", "example.com", "[10.0.0.0]/8",
		"[::1", "[::1]x", "[::1]/", "256.0.0.0/8", "10.0.0.0/8/8", "1.2.3.4 /8",
		"2001:db8::1/32", "10.0.0.0/1000",
		"0123456789012345678901234567890123456789012345678901234567890123456789",
	};
	struct policy_net n;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *err = NULL;

		if (policy_net_parse(bad[i], &n, &err) == 0)
			fail_msg("accepted bad entry '%s'", bad[i]);
		assert_non_null(err);
	}
}

static void test_match_v4(void **state)
{
	struct policy_netlist l;

	(void)state;
	policy_netlist_init(&l);
	assert_false(policy_netlist_match(&l, "127.0.0.1"));
	add_ok(&l, "127.0.0.0/8");
	add_ok(&l, "192.0.2.128/25");
	add_ok(&l, "198.51.100.9");
	assert_true(policy_netlist_match(&l, "127.0.0.1"));
	assert_true(policy_netlist_match(&l, "127.255.255.255"));
	assert_false(policy_netlist_match(&l, "128.0.0.1"));
	assert_false(policy_netlist_match(&l, "192.0.2.127"));
	assert_true(policy_netlist_match(&l, "192.0.2.128"));
	assert_true(policy_netlist_match(&l, "192.0.2.255"));
	assert_true(policy_netlist_match(&l, "198.51.100.9"));
	assert_false(policy_netlist_match(&l, "198.51.100.8"));
	/* IPv4-mapped IPv6 matches IPv4 entries. */
	assert_true(policy_netlist_match(&l, "::ffff:127.0.0.1"));
	assert_false(policy_netlist_match(&l, "::ffff:10.0.0.1"));
	/* Garbage never matches. */
	assert_false(policy_netlist_match(&l, "localhost"));
	assert_false(policy_netlist_match(&l, ""));
	policy_netlist_free(&l);
}

static void test_match_v6(void **state)
{
	struct policy_netlist l;

	(void)state;
	policy_netlist_init(&l);
	add_ok(&l, "[::1]/128");
	add_ok(&l, "2001:db8:1000::/36");
	assert_true(policy_netlist_match(&l, "::1"));
	assert_false(policy_netlist_match(&l, "::2"));
	assert_true(policy_netlist_match(&l, "2001:db8:1000::5"));
	assert_true(policy_netlist_match(&l, "2001:db8:1fff:ffff::1"));
	assert_false(policy_netlist_match(&l, "2001:db8:2000::1"));
	assert_false(policy_netlist_match(&l, "127.0.0.1"));
	policy_netlist_free(&l);

	policy_netlist_init(&l);
	add_ok(&l, "::/0");
	assert_true(policy_netlist_match(&l, "2001:db8::1"));
	assert_false(policy_netlist_match(&l, "10.0.0.1"));
	policy_netlist_free(&l);
}

static void test_list_limit(void **state)
{
	struct policy_netlist l;
	const char *err = NULL;
	size_t i;

	(void)state;
	policy_netlist_init(&l);
	for (i = 0; i < POLICY_NETLIST_MAX; i++)
		add_ok(&l, "10.0.0.0/8");
	assert_int_equal(policy_netlist_add(&l, "10.0.0.0/8", &err), -1);
	assert_non_null(err);
	assert_int_equal(l.count, POLICY_NETLIST_MAX);
	policy_netlist_free(&l);
	assert_int_equal(l.count, 0);
}

static void test_relay_rules(void **state)
{
	struct policy_relay_input in;

	(void)state;
	memset(&in, 0, sizeof(in));
	assert_int_equal(policy_relay_decide(&in, true), POLICY_RELAY_LOCAL);
	assert_int_equal(policy_relay_decide(&in, false), POLICY_RELAY_DENIED);
	in.in_mynetworks = true;
	assert_int_equal(policy_relay_decide(&in, false), POLICY_RELAY_OK);
	in.in_mynetworks = false;
	in.authenticated = true;
	assert_int_equal(policy_relay_decide(&in, false), POLICY_RELAY_OK);
	/* Suspicious forms: rejected for everybody, even local. */
	in.suspicious = true;
	assert_int_equal(policy_relay_decide(&in, true), POLICY_RELAY_SNEAK);
	assert_int_equal(policy_relay_decide(&in, false), POLICY_RELAY_SNEAK);
	in.authenticated = false;
	in.in_mynetworks = true;
	assert_int_equal(policy_relay_syntax(&in), POLICY_RELAY_SNEAK);
	/* Source routes: stripped for trusted clients, rejected otherwise. */
	in.suspicious = false;
	in.had_route = true;
	assert_int_equal(policy_relay_decide(&in, false), POLICY_RELAY_OK);
	in.in_mynetworks = false;
	assert_int_equal(policy_relay_decide(&in, true), POLICY_RELAY_SNEAK);
	assert_string_equal(policy_relay_verdict_name(POLICY_RELAY_DENIED), "denied");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_forms),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_match_v4),
		cmocka_unit_test(test_match_v6),
		cmocka_unit_test(test_list_limit),
		cmocka_unit_test(test_relay_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

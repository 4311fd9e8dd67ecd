/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The link's option checks (tlslink.c, st_tlslink_opts_check(): tee --to and receive
 * --listen share them): --cert, --key and --ca only for a link without --insecure, and such a
 * link needs all three. (The handshakes: tests/integration/test_tee.sh,
 * test_receive_listen.sh.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tlslink.h"

static void test_opts_check(void **state)
{
	const struct st_tlslink_opts none = { 0 }, all = { "c.pem", "k.pem", "ca.pem" };
	const struct st_tlslink_opts no_ca = { "c.pem", "k.pem", NULL }, ca = { .ca = "ca.pem" };
	const char *to = "127.0.0.1:7700";

	/* no link: nothing of TLS may be given */
	assert_true(st_tlslink_opts_check(&none, NULL, false, "tee", "--to"));
	assert_false(st_tlslink_opts_check(&ca, NULL, false, "tee", "--to"));
	assert_false(st_tlslink_opts_check(&all, NULL, false, "tee", "--to"));
	/* a TLS link: all three */
	assert_true(st_tlslink_opts_check(&all, to, false, "tee", "--to"));
	assert_false(st_tlslink_opts_check(&none, to, false, "tee", "--to"));
	assert_false(st_tlslink_opts_check(&no_ca, to, false, "receive", "--listen"));
	assert_false(st_tlslink_opts_check(&ca, to, false, "receive", "--listen"));
	/* --insecure: none of them */
	assert_true(st_tlslink_opts_check(&none, to, true, "receive", "--listen"));
	assert_false(st_tlslink_opts_check(&all, to, true, "receive", "--listen"));
	assert_false(st_tlslink_opts_check(&ca, to, true, "tee", "--to"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_opts_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

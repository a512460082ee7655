/*
 * test_cli.c — the command line's small parsers (cli.c): cli_parse_size
 * (units, fractions, junk, zero, negatives, overflow) and cli_is_help.
 * Depends on: cmocka, cli.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli.h"

#include <stdlib.h>



static void test_size_units(void **state)
{
    assert_int_equal(cli_parse_size("1048576"), 1048576);
    assert_int_equal(cli_parse_size("256M"), 256LL << 20);
    assert_int_equal(cli_parse_size("256m"), 256LL << 20);
    assert_int_equal(cli_parse_size("256MB"), 256LL << 20);
    assert_int_equal(cli_parse_size("256MiB"), 256LL << 20);
    assert_int_equal(cli_parse_size("1G"), 1LL << 30);
    assert_int_equal(cli_parse_size("4g"), 4LL << 30);
    assert_int_equal(cli_parse_size("64k"), 64LL << 10);
    assert_int_equal(cli_parse_size("64KiB"), 64LL << 10);
    assert_int_equal(cli_parse_size("1"), 1);
}

static void test_size_fractions(void **state)
{
    assert_int_equal(cli_parse_size("1.5k"), 1536);
    assert_int_equal(cli_parse_size("0.5G"), 512LL << 20);
    assert_int_equal(cli_parse_size("1.5M"), 3LL << 19);
}

static void test_size_junk(void **state)
{
    assert_int_equal(cli_parse_size(NULL), -1);
    assert_int_equal(cli_parse_size(""), -1);
    assert_int_equal(cli_parse_size("M"), -1);
    assert_int_equal(cli_parse_size("abc"), -1);
    assert_int_equal(cli_parse_size("12x"), -1);
    assert_int_equal(cli_parse_size("12 M"), -1);
    assert_int_equal(cli_parse_size("12MM"), -1);
    assert_int_equal(cli_parse_size("1T"), -1);
    assert_int_equal(cli_parse_size("12M "), -1);
}

static void test_size_zero_negative(void **state)
{
    assert_int_equal(cli_parse_size("0"), -1);
    assert_int_equal(cli_parse_size("0M"), -1);
    assert_int_equal(cli_parse_size("0.0"), -1);
    assert_int_equal(cli_parse_size("-1"), -1);
    assert_int_equal(cli_parse_size("-256M"), -1);
}

static void test_size_overflow(void **state)
{
    assert_int_equal(cli_parse_size("99999999999999999999"), -1);
    assert_int_equal(cli_parse_size("9999999999G"), -1);
    assert_int_equal(cli_parse_size("1e300"), -1);
    assert_int_equal(cli_parse_size("inf"), -1);
    assert_int_equal(cli_parse_size("infinity"), -1);
}

/* Inputs that pass strtod but are not a size a person would write.
 * (Found as a bug: "nan" used to pass the range checks and convert to
 * LLONG_MIN.) */
static void test_size_nan(void **state)
{
    assert_int_equal(cli_parse_size("nan"), -1);
    assert_int_equal(cli_parse_size("NaN"), -1);
    assert_int_equal(cli_parse_size("nanM"), -1);
}

/* A positive size that rounds down to no bytes at all is not a size.
 * (Found as a bug: "0.5" used to return 0.) */
static void test_size_below_one_byte(void **state)
{
    assert_int_equal(cli_parse_size("0.5"), -1);
    assert_int_equal(cli_parse_size("0.0001k"), -1);
}

static void test_is_help(void **state)
{
    assert_int_equal(cli_is_help("-h"), 1);
    assert_int_equal(cli_is_help("--help"), 1);
    assert_int_equal(cli_is_help("help"), 1);
    assert_int_equal(cli_is_help(NULL), 0);
    assert_int_equal(cli_is_help(""), 0);
    assert_int_equal(cli_is_help("-help"), 0);
    assert_int_equal(cli_is_help("--helpme"), 0);
    assert_int_equal(cli_is_help("--HELP"), 0);
    assert_int_equal(cli_is_help("-H"), 0);
    assert_int_equal(cli_is_help("run"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size_units),
        cmocka_unit_test(test_size_fractions),
        cmocka_unit_test(test_size_junk),
        cmocka_unit_test(test_size_zero_negative),
        cmocka_unit_test(test_size_overflow),
        cmocka_unit_test(test_size_nan),
        cmocka_unit_test(test_size_below_one_byte),
        cmocka_unit_test(test_is_help),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

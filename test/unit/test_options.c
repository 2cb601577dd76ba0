/* test_options.c: the command line (options.c): --log-level and its
 * shorthands, and what it refuses, and why. */
#include <CUnit/CUnit.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "options.h"
#include "unit.h"

/* options_parse of "gen_cnode --cookie c" and the arguments given (up to a
 * NULL): its result, with the error in err and the log level it set in
 * *level (when level is not NULL). */
static int parse_level(enum log_level *level, char *err, size_t errlen, ...)
{
    char *argv[16] = {"gen_cnode", "--cookie", "c"};
    int argc = 3;
    va_list ap;
    va_start(ap, errlen);
    for (char *a; argc < 15 && (a = va_arg(ap, char *));)
        argv[argc++] = a;
    va_end(ap);
    options o;
    err[0] = '\0';
    int rc = options_parse(argc, argv, &o, err, errlen);
    if (level)
        *level = o.log_level;
    options_free(&o);
    return rc;
}

#define parse(err, errlen, ...) parse_level(NULL, err, errlen, __VA_ARGS__)

/* --log-level, and --verbose / --quiet as its shorthands; the last one given wins. */
static void test_log_level_option(void)
{
    enum log_level l;
    char err[256] = "";
    CU_ASSERT_EQUAL(parse_level(&l, err, sizeof err, NULL), 0);
    CU_ASSERT_EQUAL(l, LOG_INFO);
    const char *names[] = {"error", "warning", "notice", "info", "debug"};
    enum log_level want[] = {LOG_ERROR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG};
    for (size_t i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(parse_level(&l, err, sizeof err, "--log-level", names[i], NULL), 0);
        CU_ASSERT_EQUAL(l, want[i]);
    }
    CU_ASSERT_EQUAL(parse_level(&l, err, sizeof err, "--verbose", NULL), 0);
    CU_ASSERT_EQUAL(l, LOG_DEBUG);
    CU_ASSERT_EQUAL(parse_level(&l, err, sizeof err, "--quiet", NULL), 0);
    CU_ASSERT_EQUAL(l, LOG_WARNING);
    CU_ASSERT_EQUAL(parse_level(&l, err, sizeof err, "--quiet", "--log-level", "notice", NULL), 0);
    CU_ASSERT_EQUAL(l, LOG_NOTICE);
    CU_ASSERT_EQUAL(parse_level(&l, err, sizeof err, "--log-level", "error", "--verbose", NULL), 0);
    CU_ASSERT_EQUAL(l, LOG_DEBUG);
    CU_ASSERT_EQUAL(parse_level(&l, err, sizeof err, "--log-level", "loud", NULL), -1);
    CU_ASSERT_STRING_EQUAL(err, "--log-level: expected error, warning, notice, info or debug, got 'loud'");
    CU_ASSERT_EQUAL(parse_level(&l, err, sizeof err, "--log-level", NULL), -1);
}

/* An option that takes a value does not take the next option for one
 * (`--register --watch-stdin` registered the kv as "--watch-stdin"):
 * refused, naming both. */
static void test_a_value_is_no_option(void)
{
    char err[256];
    const char *opts[] = {"--name", "--cookie", "--register", "--data-dir", "--load", "--start",
                          "--connect", "--pg-scope", "--pg-join", "--listen", "--fsync", "--log-level",
                          "--port", "--workers"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        CU_ASSERT_EQUAL(parse(err, sizeof err, opts[i], "--watch-stdin", NULL), -1);
        char want[128];
        snprintf(want, sizeof want, "%s: expected a value, got the option '--watch-stdin'", opts[i]);
        CU_ASSERT_STRING_EQUAL(err, want);
    }
    CU_ASSERT_EQUAL(parse(err, sizeof err, "--name", "--foo", NULL), -1);
    /* given in the option's own argument, the value is meant as it is
     * (a cookie may be any atom) */
    CU_ASSERT_EQUAL(parse(err, sizeof err, "--cookie=--x", NULL), 0);
    CU_ASSERT_EQUAL(parse(err, sizeof err, "--register=--kv", NULL), 0);
    /* a value with a dash inside, or one dash first where that means something */
    CU_ASSERT_EQUAL(parse(err, sizeof err, "--register", "my-kv", "--data-dir", "a--b", NULL), 0);
    CU_ASSERT_EQUAL(parse(err, sizeof err, "--register", "-kv", NULL), 0);
}

/* A node name whose alive part starts with '-' reads as an option to
 * the tools that take it (erl -name, epmd -names): refused. */
static void test_node_names_do_not_start_with_a_dash(void)
{
    char err[256];
    CU_ASSERT_EQUAL(parse(err, sizeof err, "--name", "-x", NULL), -1);
    CU_ASSERT_STRING_EQUAL(err, "--name: '-x' starts with -");
    CU_ASSERT_EQUAL(parse(err, sizeof err, "--name", "-x@127.0.0.1", NULL), -1);
    CU_ASSERT_EQUAL(parse(err, sizeof err, "--connect", "-x@127.0.0.1", NULL), -1);
    CU_ASSERT_STRING_EQUAL(err, "--connect -x@127.0.0.1: expected a node name, name@host");
    CU_ASSERT_EQUAL(parse(err, sizeof err, "--name", "x-y", "--connect", "a-b@127.0.0.1", NULL), 0);
}

/* --listen is checked with the other options: a usage error (exit 2), not
 * a node that cannot come up (exit 1). */
static void test_listen_is_an_ipv4_address(void)
{
    char err[256];
    CU_ASSERT_EQUAL(parse(err, sizeof err, "--listen", "1.2.3.4.5", NULL), -1);
    CU_ASSERT_STRING_EQUAL(err, "--listen 1.2.3.4.5: not an IPv4 address");
    CU_ASSERT_EQUAL(parse(err, sizeof err, "--listen", "localhost", NULL), -1);
    CU_ASSERT_EQUAL(parse(err, sizeof err, "--listen", "::1", NULL), -1);
    CU_ASSERT_EQUAL(parse(err, sizeof err, "--listen", "0.0.0.0", NULL), 0);
    CU_ASSERT_EQUAL(parse(err, sizeof err, "--listen", "127.0.0.1", NULL), 0);
}

/* The KeyValue server's name: none that a BEAM cannot register
 * (undefined), nor nil or '', which name nothing. */
static void test_register_takes_a_name(void)
{
    char err[256];
    const char *none[] = {"undefined", "nil", ""};
    for (size_t i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(parse(err, sizeof err, "--register", none[i], NULL), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "--register"));
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "1 to 255 characters"));
    CU_ASSERT_EQUAL(parse(err, sizeof err, "--register", "undefined", NULL), -1);
    CU_ASSERT_STRING_EQUAL(err, "--register undefined: no name a BEAM registers (undefined, nil and '' are none)");
    CU_ASSERT_EQUAL(parse(err, sizeof err, "--register", "undefined2", NULL), 0);
}

void unit_suite_options(void)
{
    CU_pSuite suite = CU_add_suite("options", NULL, NULL);
    if (!suite)
        return;
    CU_add_test(suite, "--log-level option", test_log_level_option);
    CU_add_test(suite, "a value is no option", test_a_value_is_no_option);
    CU_add_test(suite, "node names do not start with a dash", test_node_names_do_not_start_with_a_dash);
    CU_add_test(suite, "--listen is an IPv4 address", test_listen_is_an_ipv4_address);
    CU_add_test(suite, "--register takes a name", test_register_takes_a_name);
}

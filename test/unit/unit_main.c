/* unit_main.c: runs every CUnit suite of the C modules; exits non-zero on any failure. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "unit.h"

int main(void)
{
    void (*suites[])(void) = {
        unit_suite_term, unit_suite_md5, unit_suite_siphash, unit_suite_store,
        unit_suite_handshake, unit_suite_gen_server, unit_suite_otp, unit_suite_durable, unit_suite_loop,
        unit_suite_process, unit_suite_node, unit_suite_term_api,
        unit_suite_timer_heap, unit_suite_workers, unit_suite_module,
        unit_suite_log, unit_suite_busy_poll, unit_suite_dist_memo, unit_suite_bytes_map, unit_suite_dial,
        unit_suite_options,
    };
    log_set_level(LOG_ERROR); /* the warnings the tests provoke on purpose */
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
        suites[i]();
    CU_basic_set_mode(CU_BRM_NORMAL);
    /* UNIT_SUITE=node (and UNIT_TEST="a test's name") runs just that. */
    const char *only = getenv("UNIT_SUITE"), *test = getenv("UNIT_TEST");
    CU_pSuite suite = only ? CU_get_suite(only) : NULL;
    if (only && !suite) {
        fprintf(stderr, "unit: no suite %s\n", only);
        return 2;
    }
    if (suite && test) {
        CU_pTest t = CU_get_test(suite, test);
        if (!t) {
            fprintf(stderr, "unit: no test '%s' in %s\n", test, only);
            return 2;
        }
        CU_basic_run_test(suite, t);
    } else if (suite) {
        CU_basic_run_suite(suite);
    } else {
        CU_basic_run_tests();
    }
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (ran == 0) {
        fprintf(stderr, "unit: no test ran\n");
        return 1;
    }
    return failed ? 1 : 0;
}

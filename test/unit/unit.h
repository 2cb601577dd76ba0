/*
 * unit.h: the CUnit suites of the C modules. Each test/unit/test_X.c defines
 * unit_suite_X(), which adds its suite to the registry; unit_main.c runs them all.
 */
#ifndef GEN_CNODE_UNIT_H
#define GEN_CNODE_UNIT_H

#include <stddef.h>

#include <CUnit/CUnit.h>

void unit_suite_term(void);
void unit_suite_md5(void);
void unit_suite_siphash(void);
void unit_suite_store(void);
void unit_suite_handshake(void);
void unit_suite_gen_server(void);
void unit_suite_otp(void);
void unit_suite_durable(void);
void unit_suite_loop(void);
void unit_suite_process(void);
void unit_suite_node(void);
void unit_suite_term_api(void);
void unit_suite_timer_heap(void);
void unit_suite_workers(void);
void unit_suite_module(void);
void unit_suite_log(void);
void unit_suite_busy_poll(void);
void unit_suite_dist_memo(void);
void unit_suite_bytes_map(void);
void unit_suite_dial(void);
void unit_suite_options(void);

/* realloc fails for more than this many bytes while it is not 0 (the unit
 * binary wraps realloc: test_dispatch.c). */
extern size_t fail_over;

#endif

/* test_process.c: the process table's index: thousands of processes, found
 * by pid and by registered name, and no longer found once stopped, whatever
 * the order they stop in. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "process.h"
#include "unit.h"
#include "wire.h"
#include "workers.h"

#define MANY 5000

static void on_message(process *self, term_view msg)
{
    (void)self;
    (void)msg;
}

static int destroyed;

static void on_destroy(process *self, term_view reason)
{
    (void)self;
    (void)reason;
    destroyed++;
}

static const process_behaviour quiet = {.message = on_message, .destroy = on_destroy};
static const char normal[] = {119, 6, 'n', 'o', 'r', 'm', 'a', 'l'};

static void test_thousands_found_by_pid_and_name(void)
{
    process_table *t = process_table_create(NODE, CREATION, &wire_router);
    CU_ASSERT_FATAL(t != NULL);
    static process *ps[MANY];
    char name[32];
    for (int i = 0; i < MANY; i++) {
        ps[i] = process_spawn(t, &quiet, NULL);
        CU_ASSERT_FATAL(ps[i] != NULL);
        if (i % 2 == 0) { /* every other one registered, in no sorted order */
            snprintf(name, sizeof name, "s%d", (i * 7919) % MANY);
            CU_ASSERT_EQUAL(process_register(ps[i], name), 0);
        }
    }
    CU_ASSERT_EQUAL(process_count(t), MANY);
    CU_ASSERT_EQUAL(process_register(ps[1], "s0"), -1); /* taken */
    for (int i = 0; i < MANY; i++) {
        CU_ASSERT_PTR_EQUAL(process_lookup(t, process_pid(ps[i])), ps[i]);
        if (i % 2 == 0) {
            snprintf(name, sizeof name, "s%d", (i * 7919) % MANY);
            CU_ASSERT_PTR_EQUAL(process_whereis(t, name, strlen(name)), ps[i]);
        }
    }
    CU_ASSERT_PTR_NULL(process_whereis(t, "s", 1));
    CU_ASSERT_PTR_NULL(process_whereis(t, "nobody", 6));

    /* Stop a third of them, scattered; keep copies of their pids. */
    static char gone_pid[MANY][64];
    static size_t gone_len[MANY];
    destroyed = 0;
    for (int i = 0; i < MANY; i += 3) {
        term_view pid = process_pid(ps[i]);
        CU_ASSERT_FATAL(pid.len <= sizeof gone_pid[i]);
        memcpy(gone_pid[i], pid.ptr, pid.len);
        gone_len[i] = pid.len;
        process_exit(ps[i], (term_view){normal, sizeof normal});
        ps[i] = NULL;
    }
    CU_ASSERT_EQUAL(destroyed, 0); /* marked only: torn down at the settle */
    process_table_settle(t);
    CU_ASSERT_EQUAL(destroyed, (MANY + 2) / 3);
    CU_ASSERT_EQUAL(process_count(t), MANY - (MANY + 2) / 3);
    for (int i = 0; i < MANY; i++) {
        snprintf(name, sizeof name, "s%d", (i * 7919) % MANY);
        if (ps[i]) {
            CU_ASSERT_PTR_EQUAL(process_lookup(t, process_pid(ps[i])), ps[i]);
            if (i % 2 == 0)
                CU_ASSERT_PTR_EQUAL(process_whereis(t, name, strlen(name)), ps[i]);
        } else {
            CU_ASSERT_PTR_NULL(process_lookup(t, (term_view){gone_pid[i], gone_len[i]}));
            if (i % 2 == 0) /* the name is free again */
                CU_ASSERT_PTR_NULL(process_whereis(t, name, strlen(name)));
        }
    }
    /* A new process gets a number of its own, and a freed name. */
    process *p = process_spawn(t, &quiet, NULL);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_EQUAL(process_register(p, "s0"), 0);
    CU_ASSERT_PTR_EQUAL(process_whereis(t, "s0", 2), p);
    CU_ASSERT_PTR_EQUAL(process_lookup(t, process_pid(p)), p);
    destroyed = 0;
    process_table_destroy(t);
    CU_ASSERT_EQUAL(destroyed, MANY - (MANY + 2) / 3 + 1);
}

/* 50,000 monitors of one process, removed oldest first (what 50,000
 * short calls leave behind when their DEMONITORs arrive late): each removal
 * finds its monitor in a few comparisons, not by a walk of the others. The
 * same for links. */
static void test_demonitor_and_unlink_are_constant_time(void)
{
    enum { N = 50000 };
    process_table *t = process_table_create(NODE, CREATION, &wire_router);
    process *p = process_spawn(t, &quiet, NULL);
    CU_ASSERT_FATAL(p != NULL);
    erlang_pid watcher = caller(1);
    ei_x_buff w, refs[2];
    ei_x_new(&w);
    ei_x_encode_pid(&w, &watcher);
    term_view watched = process_pid(p);
    for (int k = 0; k < 2; k++) { /* room first: ei grows a buffer a little at a time */
        ei_x_new(&refs[k]);
        term_reserve(&refs[k], (size_t)N * 64);
    }
    static int ref_at[N + 1];
    for (unsigned i = 0; i < N; i++) { /* all the references, one after another */
        erlang_ref r = ref(i);
        ref_at[i] = refs[0].index;
        ei_x_encode_ref(&refs[0], &r);
    }
    ref_at[N] = refs[0].index;
    for (int i = 0; i < N; i++) {
        term_view r = {refs[0].buff + ref_at[i], (size_t)(ref_at[i + 1] - ref_at[i])};
        CU_ASSERT_EQUAL_FATAL(process_monitor(p, (term_view){w.buff, (size_t)w.index}, r, watched), 0);
    }
    CU_ASSERT_EQUAL(process_monitor_count(p), N);
    uint64_t before = process_table_probes(t);
    for (int i = 0; i < N; i++) /* oldest first: the far end of any list */
        process_demonitor(p, (term_view){w.buff, (size_t)w.index}, (term_view){refs[0].buff + ref_at[i], (size_t)(ref_at[i + 1] - ref_at[i])});
    CU_ASSERT_EQUAL(process_monitor_count(p), 0);
    CU_ASSERT(process_table_probes(t) - before <= 3 * (uint64_t)N);
    /* links to N remote pids, unlinked oldest first */
    static int pid_at[N + 1];
    for (unsigned i = 0; i < N; i++) {
        erlang_pid other = caller(i + 10);
        pid_at[i] = refs[1].index;
        ei_x_encode_pid(&refs[1], &other);
    }
    pid_at[N] = refs[1].index;
    for (int i = 0; i < N; i++)
        CU_ASSERT_EQUAL_FATAL(
            process_link(p, (term_view){refs[1].buff + pid_at[i], (size_t)(pid_at[i + 1] - pid_at[i])}, 0), 0);
    CU_ASSERT_EQUAL(process_link_count(p), N);
    before = process_table_probes(t);
    for (int i = 0; i < N; i++)
        process_unlink(p, (term_view){refs[1].buff + pid_at[i], (size_t)(pid_at[i + 1] - pid_at[i])});
    CU_ASSERT_EQUAL(process_link_count(p), 0);
    CU_ASSERT(process_table_probes(t) - before <= 3 * (uint64_t)N);
    ei_x_free(&w);
    ei_x_free(&refs[0]);
    ei_x_free(&refs[1]);
    process_table_destroy(t);
    wire_reset();
}

/* A demonitor that follows its monitor (a call's) finds it first thing;
 * another watcher naming that reference, or another reference, does not
 * take it off. */
static void test_demonitor_of_the_newest(void)
{
    process_table *t = process_table_create(NODE, CREATION, &wire_router);
    process *p = process_spawn(t, &quiet, NULL);
    CU_ASSERT_FATAL(p != NULL);
    erlang_pid a = caller(1), b = caller(2);
    ei_x_buff wa, wb, r1, r2;
    ei_x_new(&wa);
    ei_x_new(&wb);
    ei_x_new(&r1);
    ei_x_new(&r2);
    ei_x_encode_pid(&wa, &a);
    ei_x_encode_pid(&wb, &b);
    erlang_ref x = ref(1), y = ref(2);
    ei_x_encode_ref(&r1, &x);
    ei_x_encode_ref(&r2, &y);
    term_view va = {wa.buff, (size_t)wa.index}, vb = {wb.buff, (size_t)wb.index};
    term_view ref1 = {r1.buff, (size_t)r1.index}, ref2 = {r2.buff, (size_t)r2.index};
    for (int i = 0; i < 1000; i++) {
        CU_ASSERT_EQUAL_FATAL(process_monitor(p, va, ref1, process_pid(p)), 0);
        process_demonitor(p, vb, ref1); /* not b's */
        process_demonitor(p, va, ref2); /* no such monitor */
        CU_ASSERT_EQUAL(process_monitor_count(p), 1);
        process_demonitor(p, va, ref1);
        CU_ASSERT_EQUAL_FATAL(process_monitor_count(p), 0);
    }
    /* with an older one under it, each is still found */
    CU_ASSERT_EQUAL(process_monitor(p, vb, ref2, process_pid(p)), 0);
    CU_ASSERT_EQUAL(process_monitor(p, va, ref1, process_pid(p)), 0);
    process_demonitor(p, vb, ref2);
    CU_ASSERT_EQUAL(process_monitor_count(p), 1);
    process_demonitor(p, va, ref1);
    CU_ASSERT_EQUAL(process_monitor_count(p), 0);
    ei_x_free(&wa);
    ei_x_free(&wb);
    ei_x_free(&r1);
    ei_x_free(&r2);
    process_table_destroy(t);
    wire_reset();
}

/* The monitor of a call, alone on its server, is never hashed: set and
 * taken off 1,000 times, no hash chain is looked at. A second monitor puts
 * the first in the table; either is then found, and neither reference makes
 * a second monitor, whatever the order it comes again in. */
static void test_a_lone_monitor_is_not_hashed(void)
{
    process_table *t = process_table_create(NODE, CREATION, &wire_router);
    process *p = process_spawn(t, &quiet, NULL);
    CU_ASSERT_FATAL(p != NULL);
    erlang_pid a = caller(1);
    ei_x_buff wa, r1, r2, r3;
    ei_x_new(&wa);
    ei_x_encode_pid(&wa, &a);
    ei_x_buff *bufs[] = {&r1, &r2, &r3};
    for (int k = 0; k < 3; k++) {
        erlang_ref r = ref((unsigned)k + 1);
        ei_x_new(bufs[k]);
        ei_x_encode_ref(bufs[k], &r);
    }
    term_view va = {wa.buff, (size_t)wa.index}, me = process_pid(p);
    term_view ref1 = {r1.buff, (size_t)r1.index}, ref2 = {r2.buff, (size_t)r2.index},
              ref3 = {r3.buff, (size_t)r3.index};
    uint64_t before = process_table_probes(t);
    for (int i = 0; i < 1000; i++) {
        CU_ASSERT_EQUAL_FATAL(process_monitor(p, va, ref1, me), 0);
        CU_ASSERT_EQUAL_FATAL(process_monitor(p, va, ref1, me), 0); /* the same again: one */
        process_demonitor(p, va, ref2);                              /* another: none */
        CU_ASSERT_EQUAL_FATAL(process_monitor_count(p), 1);
        process_demonitor(p, va, ref1);
        CU_ASSERT_EQUAL_FATAL(process_monitor_count(p), 0);
    }
    CU_ASSERT_EQUAL(process_table_probes(t), before);
    /* two, then each again in either order: still two */
    CU_ASSERT_EQUAL(process_monitor(p, va, ref1, me), 0);
    CU_ASSERT_EQUAL(process_monitor(p, va, ref2, me), 0);
    CU_ASSERT_EQUAL(process_monitor(p, va, ref1, me), 0);
    CU_ASSERT_EQUAL(process_monitor(p, va, ref2, me), 0);
    CU_ASSERT_EQUAL(process_monitor_count(p), 2);
    process_demonitor(p, va, ref3);
    CU_ASSERT_EQUAL(process_monitor_count(p), 2);
    process_demonitor(p, va, ref1); /* the older: found in the table */
    CU_ASSERT_EQUAL(process_monitor_count(p), 1);
    CU_ASSERT_EQUAL(process_monitor(p, va, ref2, me), 0);
    CU_ASSERT_EQUAL(process_monitor_count(p), 1);
    /* the one left is in the table: a new one joins it alone, and a stop
     * sends both their DOWNs */
    CU_ASSERT_EQUAL(process_monitor(p, va, ref3, me), 0);
    CU_ASSERT_EQUAL(process_monitor_count(p), 2);
    wire_reset();
    process_exit(p, (term_view){normal, sizeof normal});
    process_table_settle(t);
    int downs_sent = 0, ctrl, msg;
    const char *buf;
    for (; buffer_len(&wire) >= 4; drop_frame())
        downs_sent += next_frame(&buf, &ctrl, &msg) == 21; /* MONITOR_P_EXIT */
    CU_ASSERT_EQUAL(downs_sent, 2);
    ei_x_free(&wa);
    for (int k = 0; k < 3; k++)
        ei_x_free(bufs[k]);
    process_table_destroy(t);
    wire_reset();
}

/* A peer repeating one reference 40,000 times gets one monitor, not a
 * chain 40,000 long; and tearing 40,000 monitors down (the process stops,
 * or the watchers' node goes away) costs a few chain steps each. */
static void test_repeated_references_and_mass_teardown_stay_linear(void)
{
    enum { N = 40000 };
    process_table *t = process_table_create(NODE, CREATION, &wire_router);
    process *p = process_spawn(t, &quiet, NULL), *q = process_spawn(t, &quiet, NULL);
    erlang_pid watcher = caller(1);
    erlang_ref one = ref(7);
    ei_x_buff w, r1, refs;
    ei_x_new(&w);
    ei_x_encode_pid(&w, &watcher);
    ei_x_new(&r1);
    ei_x_encode_ref(&r1, &one);
    ei_x_new(&refs);
    term_reserve(&refs, (size_t)N * 64);
    static int at[N + 1];
    for (unsigned i = 0; i < N; i++) {
        erlang_ref r = ref(i + 100);
        at[i] = refs.index;
        ei_x_encode_ref(&refs, &r);
    }
    at[N] = refs.index;
    term_view wv = {w.buff, (size_t)w.index};
    uint64_t before = process_table_probes(t);
    for (int i = 0; i < N; i++)
        CU_ASSERT_EQUAL_FATAL(process_monitor(p, wv, (term_view){r1.buff, (size_t)r1.index}, process_pid(p)), 0);
    CU_ASSERT_EQUAL(process_monitor_count(p), 1);
    for (int i = 0; i < N; i++) {
        term_view r = {refs.buff + at[i], (size_t)(at[i + 1] - at[i])};
        CU_ASSERT_EQUAL_FATAL(process_monitor(p, wv, r, process_pid(p)), 0);
        CU_ASSERT_EQUAL_FATAL(process_monitor(q, wv, r, process_pid(q)), 0); /* the same refs on another */
    }
    CU_ASSERT_EQUAL(process_monitor_count(q), N);
    process_exit(p, (term_view){normal, sizeof normal}); /* N + 1 DOWNs */
    process_table_settle(t);
    process_forget_node(t, PEER, strlen(PEER));         /* q forgets its N */
    CU_ASSERT_EQUAL(process_monitor_count(q), 0);
    CU_ASSERT(process_table_probes(t) - before <= 10 * (uint64_t)N);
    ei_x_free(&w);
    ei_x_free(&r1);
    ei_x_free(&refs);
    process_table_destroy(t);
    wire_reset();
}

/* ---- monitors a process of ours sets (process_watch) ---- */

static int downs;
static char last_down[512];
static size_t last_down_len;

static void keep_message(process *self, term_view msg)
{
    (void)self;
    downs++;
    last_down_len = msg.len < sizeof last_down ? msg.len : sizeof last_down;
    memcpy(last_down, msg.ptr, last_down_len);
}

static const process_behaviour keeper = {.message = keep_message};

static term_view enc_pid(ei_x_buff *x, erlang_pid p)
{
    ei_x_new(x);
    ei_x_encode_pid(x, &p);
    return (term_view){x->buff, (size_t)x->index};
}

/* A DOWN comes only from the node of the process watched, and names that
 * process: a peer cannot fire, redirect or take off another's monitor. */
static void test_monitors_cannot_be_faked_or_taken(void)
{
    static const char boom[] = {119, 4, 'b', 'o', 'o', 'm'};
    process_table *t = process_table_create(NODE, CREATION, &wire_router);
    process *p = process_spawn(t, &keeper, NULL);
    CU_ASSERT_FATAL(p != NULL);
    ei_x_buff a, b, w2;
    term_view target = enc_pid(&a, caller(1)), other = enc_pid(&b, caller(2));
    char r[PROCESS_REF_MAX];
    int len = process_watch(p, target, r);
    CU_ASSERT_FATAL(len > 0);
    term_view ref = {r, (size_t)len};
    char r2[PROCESS_REF_MAX];
    int len2 = process_watch(p, target, r2);
    CU_ASSERT(len2 == len && memcmp(r, r2, (size_t)len) != 0); /* each its own */
    downs = 0;
    process_watch_fired(p, ref, other, (term_view){boom, sizeof boom}); /* not the one watched */
    process_table_settle(t);
    CU_ASSERT_EQUAL(downs, 0);
    process_watch_fired(p, ref, target, (term_view){boom, sizeof boom});
    process_table_settle(t);
    CU_ASSERT_EQUAL(downs, 1);
    CU_ASSERT(last_down_len > target.len && memmem(last_down, last_down_len, target.ptr, target.len) != NULL);
    process_watch_fired(p, ref, target, (term_view){boom, sizeof boom}); /* once only */
    process_table_settle(t);
    CU_ASSERT_EQUAL(downs, 1);

    /* A monitor of one of ours by a remote watcher: another watcher can
     * neither take it off nor reuse its reference. */
    process *q = process_spawn(t, &quiet, NULL);
    term_view watcher2 = enc_pid(&w2, caller(3));
    CU_ASSERT_EQUAL(process_monitor(q, target, ref, process_pid(q)), 0);
    CU_ASSERT_EQUAL(process_monitor(q, watcher2, ref, process_pid(q)), -1);
    process_demonitor(q, watcher2, ref);
    CU_ASSERT_EQUAL(process_monitor_count(q), 1);
    process_demonitor(q, target, ref);
    CU_ASSERT_EQUAL(process_monitor_count(q), 0);
    ei_x_free(&a);
    ei_x_free(&b);
    ei_x_free(&w2);
    process_table_destroy(t);
    wire_reset();
}

/* A behaviour that stops its own process while the node tears everything
 * down: nothing is freed twice (the sanitizer build watches). */
static process_table *teardown_table;

static void stop_self_on_destroy(process *self, term_view reason)
{
    (void)reason;
    process_exit(self, (term_view){normal, sizeof normal});
}

static const process_behaviour self_stopper = {.message = on_message, .destroy = stop_self_on_destroy};

static void test_teardown_survives_a_terminate_that_stops(void)
{
    teardown_table = process_table_create(NODE, CREATION, &wire_router);
    CU_ASSERT_FATAL(process_spawn(teardown_table, &self_stopper, NULL) != NULL);
    CU_ASSERT_FATAL(process_spawn(teardown_table, &self_stopper, NULL) != NULL);
    process_table_destroy(teardown_table);
    wire_reset();
}

/* Timers all due at once fire PROCESS_TIMERS_PER_TURN a turn, the rest at
 * the next turns, each once: a module that armed a million for the same
 * moment does not hold the node's sockets for all of them. */
static int timeouts_seen;

static void on_timeout(process *self, term_view msg)
{
    (void)self;
    (void)msg;
    timeouts_seen++;
}

static const process_behaviour timed = {.message = on_timeout};

static void test_timers_fire_in_batches(void)
{
    process_table *t = process_table_create(NODE, CREATION, &wire_router);
    CU_ASSERT_FATAL(t != NULL);
    process *p = process_spawn(t, &timed, NULL);
    CU_ASSERT_FATAL(p != NULL);
    static const char tick[] = {119, 4, 't', 'i', 'c', 'k'};
    size_t n = 2 * PROCESS_TIMERS_PER_TURN + 100;
    for (size_t i = 0; i < n; i++)
        CU_ASSERT_FATAL(process_send_after(p, 1000 + i % 7, (term_view){tick, sizeof tick}) != 0);
    timeouts_seen = 0;
    CU_ASSERT_EQUAL(process_table_run_timers(t, 999), 0); /* none due yet */
    CU_ASSERT_EQUAL(process_table_run_timers(t, 5000), PROCESS_TIMERS_PER_TURN);
    CU_ASSERT_EQUAL(process_table_run_timers(t, 5000), PROCESS_TIMERS_PER_TURN);
    CU_ASSERT_EQUAL(process_table_run_timers(t, 5000), 100);
    CU_ASSERT_EQUAL(process_table_run_timers(t, 5000), 0);
    CU_ASSERT_EQUAL(timeouts_seen, (int)n);
    uint64_t due;
    CU_ASSERT_EQUAL(process_table_next_timer(t, &due), 0);
    process_table_destroy(t);
    wire_reset();
}

/* process_monitor_nodes: {nodeup, Node} for every connection that comes
 * up, at the next settle, to the processes that asked, as long as they live. */
static int nodeups;
static char last_nodeup[MAXATOMLEN_UTF8];

static void on_nodeup(process *self, term_view msg)
{
    (void)self;
    char tag[16];
    int i = 0, arity;
    if (ei_decode_tuple_header(msg.ptr, &i, &arity) == 0 && arity == 2 && ei_decode_atom(msg.ptr, &i, tag) == 0 &&
        strcmp(tag, "nodeup") == 0 &&
        ei_decode_atom_as(msg.ptr, &i, last_nodeup, sizeof last_nodeup, ERLANG_UTF8, NULL, NULL) == 0)
        nodeups++;
}

static const process_behaviour watching = {.message = on_nodeup};

static void test_node_watchers_hear_of_new_connections(void)
{
    process_table *t = process_table_create(NODE, CREATION, &wire_router);
    CU_ASSERT_FATAL(t != NULL);
    process *a = process_spawn(t, &watching, NULL), *b = process_spawn(t, &watching, NULL);
    process_spawn(t, &watching, NULL); /* does not ask */
    CU_ASSERT_EQUAL(process_monitor_nodes(a), 0);
    CU_ASSERT_EQUAL(process_monitor_nodes(b), 0);
    nodeups = 0;
    process_table_node_up(t, "peer@127.0.0.1", 14);
    CU_ASSERT_EQUAL(nodeups, 0); /* queued, never delivered under the caller */
    while (process_table_settle(t))
        ;
    CU_ASSERT_EQUAL(nodeups, 2);
    CU_ASSERT_STRING_EQUAL(last_nodeup, "peer@127.0.0.1");
    process_exit(b, (term_view){normal, sizeof normal});
    while (process_table_settle(t))
        ;
    nodeups = 0;
    process_table_node_up(t, "other@127.0.0.1", 15);
    while (process_table_settle(t))
        ;
    CU_ASSERT_EQUAL(nodeups, 1); /* b is gone */
    CU_ASSERT_STRING_EQUAL(last_nodeup, "other@127.0.0.1");
    /* 255 characters, more bytes (the handshake lets such a name in): the
     * long atom form; there was no nodeup past 255 bytes. */
    char wide[300];
    size_t n = 0;
    for (int k = 0; k < 130; k++)
        wide[n++] = (char)0xc3, wide[n++] = (char)0xa9;
    memcpy(wide + n, "@h", 3);
    n += 2;
    nodeups = 0;
    process_table_node_up(t, wide, n);
    while (process_table_settle(t))
        ;
    CU_ASSERT_EQUAL(nodeups, 1);
    CU_ASSERT_STRING_EQUAL(last_nodeup, wide);
    process_table_destroy(t);
}

/* process_table_set_limit: no spawn beyond the limit, room again as soon as
 * one stops (a stopping process is no longer found by its pid either);
 * names are atoms' texts. */
static void test_the_limit_and_names(void)
{
    process_table *t = process_table_create(NODE, CREATION, &wire_router);
    CU_ASSERT_FATAL(t != NULL);
    process_table_set_limit(t, 3);
    process *a = process_spawn(t, &quiet, NULL);
    CU_ASSERT_FATAL(a && process_spawn(t, &quiet, NULL) && process_spawn(t, &quiet, NULL));
    CU_ASSERT(process_table_full(t));
    CU_ASSERT_PTR_NULL(process_spawn(t, &quiet, NULL));
    CU_ASSERT_PTR_NULL(process_spawn(t, &quiet, NULL));
    CU_ASSERT_EQUAL(process_count(t), 3);
    process_exit(a, (term_view){normal, sizeof normal});
    process *b = process_spawn(t, &quiet, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT(process_table_full(t));
    /* 255 characters of two bytes each: a name; 256 of them, or bad UTF-8: not. */
    char name[2 * 256 + 1];
    for (int i = 0; i < 256; i++)
        name[2 * i] = (char)0xC3, name[2 * i + 1] = (char)0xA9;
    name[2 * 256] = '\0';
    CU_ASSERT_EQUAL(process_register(b, name), -1);
    name[2 * 255] = '\0';
    name[0] = (char)0xC3, name[1] = (char)0x28;
    CU_ASSERT_EQUAL(process_register(b, name), -1);
    name[1] = (char)0xA9;
    CU_ASSERT_EQUAL(process_register(b, name), 0);
    CU_ASSERT_PTR_EQUAL(process_whereis(t, name, 2 * 255), b);
    process_table_set_limit(t, 0);
    CU_ASSERT(!process_table_full(t));
    CU_ASSERT_PTR_NOT_NULL(process_spawn(t, &quiet, NULL));
    process_table_destroy(t);
}

/* A table destroyed with a job running: every terminate first, then the
 * job is waited for and finished with no process, as when a server stops
 * alone (a terminate may still reach its jobs, whose done frees them). */
static char order[8];
static int norder;

static void note_terminate(process *self, term_view reason)
{
    (void)self;
    (void)reason;
    if (norder < (int)sizeof order)
        order[norder++] = 't';
}

static int jobs_started; /* __atomic: a worker thread sets it */

static void slow_job(void *job)
{
    (void)job;
    __atomic_add_fetch(&jobs_started, 1, __ATOMIC_SEQ_CST);
    nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
}

static void note_done(process *p, void *job, int ran)
{
    (void)job;
    if (norder < (int)sizeof order)
        order[norder++] = p ? 'P' : ran ? 'd' : 'x';
}

static const process_behaviour with_job = {.message = on_message, .destroy = note_terminate};

/* A table with a pool of one thread, and a process that submitted two slow
 * jobs to it (the first runs, the second is queued behind it). */
static process *two_jobs(process_table **t, workers **w)
{
    *t = process_table_create(NODE, CREATION, &wire_router);
    *w = workers_create(1);
    CU_ASSERT_FATAL(*t && *w);
    process_table_set_workers(*t, *w, -1);
    process *p = process_spawn(*t, &with_job, NULL);
    CU_ASSERT_FATAL(p != NULL);
    norder = 0;
    __atomic_store_n(&jobs_started, 0, __ATOMIC_SEQ_CST);
    CU_ASSERT_EQUAL(process_submit(p, NULL, slow_job, note_done, NULL), 0);
    CU_ASSERT_EQUAL(process_submit(p, NULL, slow_job, note_done, NULL), 0);
    return p;
}

static void test_terminate_before_jobs_at_the_end(void)
{
    process_table *t;
    workers *w;
    two_jobs(&t, &w);
    for (int i = 0; i < 5000 && !__atomic_load_n(&jobs_started, __ATOMIC_SEQ_CST); i++)
        nanosleep(&(struct timespec){0, 1000 * 1000}, NULL); /* the first has started */
    process_table_destroy(t);
    CU_ASSERT_EQUAL(norder, 3);
    CU_ASSERT_EQUAL(order[0], 't');
    /* then the running one (ran) and the queued one (dropped, unless the
     * first was done before the table went and it ran too), with no process */
    CU_ASSERT((order[1] == 'd' || order[1] == 'x') && (order[2] == 'd' || order[2] == 'x'));
    CU_ASSERT(order[1] == 'd' || order[2] == 'd');
}

/* A job that ends while its process is stopping (marked, its teardown
 * due at the next settle) gets its done after the terminate, as at the
 * end: the terminate may still reach the job (a cancel flag), and the
 * done, with no process to tell, frees it. It came first. */
static void test_a_job_ending_while_its_process_stops_is_done_after_terminate(void)
{
    static const char why[] = {119, 3, 'w', 'h', 'y'};
    process_table *t;
    workers *w;
    process *p = two_jobs(&t, &w);
    for (int i = 0; i < 5000 && (__atomic_load_n(&jobs_started, __ATOMIC_SEQ_CST) < 2 || workers_running(w)); i++)
        nanosleep(&(struct timespec){0, 1000 * 1000}, NULL); /* both ended, not yet collected */
    CU_ASSERT_EQUAL_FATAL(workers_running(w), 0);
    process_exit(p, (term_view){why, sizeof why});
    CU_ASSERT_EQUAL(process_table_collect_jobs(t, 10), 2);
    CU_ASSERT_EQUAL(norder, 0); /* nothing before the terminate */
    process_table_settle(t);
    CU_ASSERT_EQUAL(norder, 3);
    CU_ASSERT_EQUAL(order[0], 't');
    CU_ASSERT(order[1] == 'd' && order[2] == 'd');
    process_table_destroy(t);
    CU_ASSERT_EQUAL(norder, 3);
}

/* One process's jobs not back yet: PROCESS_MAX_JOBS at most, and another
 * process's still taken; one back, the first may submit again. */
static int quick_dones;

static void count_done(process *p, void *job, int ran)
{
    (void)p;
    (void)job;
    (void)ran;
    quick_dones++;
}

static void test_a_process_takes_a_share_of_the_queue(void)
{
    process_table *t = process_table_create(NODE, CREATION, &wire_router);
    workers *w = workers_create(1);
    CU_ASSERT_FATAL(t && w);
    process_table_set_workers(t, w, -1);
    process *p = process_spawn(t, &quiet, NULL), *q = process_spawn(t, &quiet, NULL);
    CU_ASSERT_FATAL(p && q);
    __atomic_store_n(&jobs_started, 0, __ATOMIC_SEQ_CST);
    CU_ASSERT_EQUAL(process_submit(p, NULL, slow_job, count_done, NULL), 0); /* runs 50 ms */
    /* started before the queue fills (the group's share of it counts queued jobs) */
    for (int i = 0; i < 5000 && workers_running(w) == 0; i++)
        nanosleep(&(struct timespec){0, 100 * 1000}, NULL);
    CU_ASSERT_EQUAL_FATAL(workers_running(w), 1);
    int taken = 1;
    while (taken < PROCESS_MAX_JOBS + 10 && process_submit(p, NULL, slow_job, count_done, NULL) == 0)
        taken++;
    CU_ASSERT_EQUAL(taken, PROCESS_MAX_JOBS);
    CU_ASSERT_EQUAL(process_submit(q, NULL, slow_job, count_done, NULL), 0);
    /* the first job back: p has room for one more */
    quick_dones = 0;
    for (int i = 0; i < 5000 && quick_dones == 0; i++) {
        process_table_collect_jobs(t, 1);
        if (quick_dones == 0)
            nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
    }
    CU_ASSERT_EQUAL_FATAL(quick_dones, 1);
    CU_ASSERT_EQUAL(process_submit(p, NULL, slow_job, count_done, NULL), 0);
    CU_ASSERT_NOT_EQUAL(process_submit(p, NULL, slow_job, count_done, NULL), 0);
    process_table_destroy(t); /* the queued ones dropped, done with no process */
    CU_ASSERT_EQUAL(quick_dones, PROCESS_MAX_JOBS + 2);
}

/* A demonitor after the monitor fired, its DOWN not yet delivered: the
 * DOWN is taken out (OTP's demonitor(Ref, [flush])), local or remote. */
static void test_demonitor_flushes_a_queued_down(void)
{
    static const char boom[] = {119, 4, 'b', 'o', 'o', 'm'};
    process_table *t = process_table_create(NODE, CREATION, &wire_router);
    process *p = process_spawn(t, &keeper, NULL), *q = process_spawn(t, &quiet, NULL);
    CU_ASSERT_FATAL(p && q);
    char r[PROCESS_REF_MAX];
    int len = process_watch(p, process_pid(q), r);
    CU_ASSERT_FATAL(len > 0);
    downs = 0;
    process_exit(q, (term_view){boom, sizeof boom});
    process_table_settle(t); /* q torn down: its DOWN queued for p */
    CU_ASSERT_EQUAL(downs, 0);
    CU_ASSERT_EQUAL(process_unwatch(p, (term_view){r, (size_t)len}), 0); /* fired already */
    while (process_table_settle(t))
        ;
    CU_ASSERT_EQUAL(downs, 0);
    /* the same for a monitor of a remote pid, fired by its node */
    ei_x_buff a;
    term_view target = enc_pid(&a, caller(3));
    len = process_watch(p, target, r);
    CU_ASSERT_FATAL(len > 0);
    process_watch_fired(p, (term_view){r, (size_t)len}, target, (term_view){boom, sizeof boom});
    CU_ASSERT_EQUAL(process_unwatch(p, (term_view){r, (size_t)len}), 0);
    while (process_table_settle(t))
        ;
    CU_ASSERT_EQUAL(downs, 0);
    /* and one that is not taken off arrives: an empty or broken reference,
     * or another monitor's, takes out nothing */
    char other[PROCESS_REF_MAX];
    int other_len = process_watch(p, target, other);
    CU_ASSERT_FATAL(other_len > 0);
    CU_ASSERT_EQUAL(process_unwatch(p, (term_view){other, (size_t)other_len}), 1);
    len = process_watch(p, target, r);
    process_watch_fired(p, (term_view){r, (size_t)len}, target, (term_view){boom, sizeof boom});
    CU_ASSERT_EQUAL(process_unwatch(p, (term_view){NULL, 0}), 0);
    CU_ASSERT_EQUAL(process_unwatch(p, (term_view){r, 3}), 0);
    CU_ASSERT_EQUAL(process_unwatch(p, (term_view){other, (size_t)other_len}), 0);
    while (process_table_settle(t))
        ;
    CU_ASSERT_EQUAL(downs, 1);
    ei_x_free(&a);
    process_table_destroy(t);
    wire_reset();
}

/* node_down is told once the links to that node are gone: it sees none,
 * and a link it makes again to that node stays. */
static size_t links_seen_in_node_down;
static term_view relink_to;

static void relink_on_node_down(process *self, const char *node, size_t len)
{
    (void)node;
    (void)len;
    links_seen_in_node_down = process_link_count(self);
    process_link(self, relink_to, 0);
}

static const process_behaviour relinker = {.message = on_message, .node_down = relink_on_node_down};

static void test_node_down_after_its_links_are_gone(void)
{
    process_table *t = process_table_create(NODE, CREATION, &wire_router);
    process *p = process_spawn(t, &relinker, NULL);
    CU_ASSERT_FATAL(p != NULL);
    process_want_node_down(p);
    process_set_trap_exit(p, 1);
    ei_x_buff a;
    relink_to = enc_pid(&a, caller(4));
    CU_ASSERT_EQUAL_FATAL(process_link(p, relink_to, 0), 0);
    CU_ASSERT_EQUAL(process_link_count(p), 1);
    const char *node;
    size_t len;
    CU_ASSERT_FATAL(process_term_node(relink_to, &node, &len) == 0);
    links_seen_in_node_down = 99;
    process_forget_node(t, node, len);
    CU_ASSERT_EQUAL(links_seen_in_node_down, 0);
    CU_ASSERT_EQUAL(process_link_count(p), 1);
    while (process_table_settle(t))
        ;
    ei_x_free(&a);
    process_table_destroy(t);
    wire_reset();
}

/* A pid of process num on node name. */
static term_view pid_on(ei_x_buff *x, const char *name, unsigned num)
{
    erlang_pid p = caller(num);
    snprintf(p.node, sizeof p.node, "%s", name);
    return enc_pid(x, p);
}

/* A node's going looks at a process's records of that node only: with
 * 20,000 monitors by x's processes and one by y's, y's going looks at one
 * record (the old walk looked at all 20,001), and x's at 20,000. */
static void test_a_node_s_going_looks_at_its_own_records_only(void)
{
    static const char x[] = "x@127.0.0.1", y[] = "y@127.0.0.1";
    process_table *t = process_table_create(NODE, CREATION, &wire_router);
    process *p = process_spawn(t, &keeper, NULL);
    CU_ASSERT_FATAL(p != NULL);
    ei_x_buff w, r;
    for (unsigned i = 0; i <= 20000; i++) {
        term_view watcher = pid_on(&w, i < 20000 ? x : y, 1 + i % 100);
        erlang_ref rf = ref(100 + i);
        ei_x_new(&r);
        ei_x_encode_ref(&r, &rf);
        CU_ASSERT_EQUAL_FATAL(process_monitor(p, watcher, (term_view){r.buff, (size_t)r.index}, process_pid(p)), 0);
        ei_x_free(&r);
        ei_x_free(&w);
    }
    CU_ASSERT_EQUAL(process_monitor_count(p), 20001);
    uint64_t r0 = process_table_forget_records(t);
    process_forget_node(t, y, strlen(y));
    CU_ASSERT_EQUAL(process_table_forget_records(t) - r0, 1);
    CU_ASSERT_EQUAL(process_monitor_count(p), 20000);
    process_forget_node(t, "z@127.0.0.1", strlen("z@127.0.0.1"));
    CU_ASSERT_EQUAL(process_table_forget_records(t) - r0, 1);
    process_forget_node(t, x, strlen(x));
    CU_ASSERT_EQUAL(process_table_forget_records(t) - r0, 20001);
    CU_ASSERT_EQUAL(process_monitor_count(p), 0);
    while (process_table_settle(t))
        ;
    process_table_destroy(t);
    wire_reset();
}

/* What a node's going tells a process, in order: which of four pids (of
 * the node that went) each message names. */
static ei_x_buff told_pids[5];
static char told[16];

static void note_told(process *self, term_view msg)
{
    (void)self;
    for (int k = 1; k <= 4; k++)
        if (told_pids[k].index && memmem(msg.ptr, msg.len, told_pids[k].buff, (size_t)told_pids[k].index)) {
            size_t l = strlen(told);
            told[l] = (char)('0' + k);
            told[l + 1] = '\0';
        }
}

static const process_behaviour teller = {.message = note_told};

/* A table with one teller, trapping exits, told nothing yet. */
static process *teller_in(process_table **t)
{
    *t = process_table_create(NODE, CREATION, &wire_router);
    process *p = process_spawn(*t, &teller, NULL);
    CU_ASSERT_FATAL(p != NULL);
    process_set_trap_exit(p, 1);
    told[0] = '\0';
    return p;
}

static void teller_done(process_table *t)
{
    for (int k = 1; k <= 4; k++)
        ei_x_free(&told_pids[k]);
    memset(told_pids, 0, sizeof told_pids);
    process_table_destroy(t);
    wire_reset();
}

/* Four watches (or links) of one node's pids, the fourth made after another
 * node's going sorted the first three into their group: that node's going
 * gives their DOWNs (EXITs) newest first, as the lists keep them and as the
 * walk before groups gave them, whatever sorting came between. */
static const char *order_told(int links, int sort_between)
{
    static const char n[] = "n@127.0.0.1";
    process_table *t;
    process *p = teller_in(&t);
    char r[PROCESS_REF_MAX];
    for (int k = 1; k <= 4; k++) {
        if (k == 4 && sort_between)
            process_forget_node(t, "z@127.0.0.1", strlen("z@127.0.0.1"));
        term_view pid = pid_on(&told_pids[k], n, 10 + (unsigned)k);
        int rc = links ? process_link(p, pid, 0) : process_watch(p, pid, r); /* (a watch: the ref's length) */
        CU_ASSERT(rc >= 0);
    }
    process_forget_node(t, n, strlen(n));
    while (process_table_settle(t))
        ;
    teller_done(t);
    return told;
}

static void test_a_node_s_going_tells_newest_first(void)
{
    for (int links = 0; links <= 1; links++)
        for (int sort_between = 0; sort_between <= 1; sort_between++)
            CU_ASSERT_STRING_EQUAL(order_told(links, sort_between), "4321");
}

/* Out of memory while a node's going keeps a link's pid: that link stays,
 * and the watch beside it still gets its DOWN. */
static void test_a_link_kept_out_of_memory_stops_nothing_else(void)
{
    static const char n[] = "n@127.0.0.1";
    process_table *t;
    process *p = teller_in(&t);
    char r[PROCESS_REF_MAX];
    CU_ASSERT_EQUAL(process_link(p, pid_on(&told_pids[1], n, 11), 0), 0);
    CU_ASSERT(process_watch(p, pid_on(&told_pids[2], n, 12), r) > 0);
    fail_over = 4000; /* realloc past it fails: t->gone cannot take the link's pid */
    process_forget_node(t, n, strlen(n));
    fail_over = 0;
    while (process_table_settle(t))
        ;
    CU_ASSERT_STRING_EQUAL(told, "2");
    CU_ASSERT_EQUAL(process_link_count(p), 1);
    teller_done(t);
}

extern int fail_put_of_b; /* test_node.c: the next bytes_map_put of "b@127.0.0.1" fails */

/* Thousands of processes, each monitored from a peer: the failed dials of
 * a hundred made-up nodes (a peer's calls from them) look at none of them.
 * Each looked at them all, the node busy with that while the peer went on. */
static void test_made_up_nodes_going_look_at_no_one(void)
{
    process_table *t = process_table_create(NODE, CREATION, &wire_router);
    CU_ASSERT_FATAL(t != NULL);
    ei_x_buff w, r;
    term_view watcher = pid_on(&w, "peer@127.0.0.1", 2);
    ei_x_new(&r);
    for (int i = 0; i < MANY; i++) {
        process *p = process_spawn(t, &keeper, NULL);
        CU_ASSERT_FATAL(p != NULL);
        erlang_ref rf = ref((unsigned)i + 1);
        r.index = 0;
        ei_x_encode_ref(&r, &rf);
        CU_ASSERT_EQUAL(process_monitor(p, watcher, (term_view){r.buff, (size_t)r.index}, process_pid(p)), 0);
    }
    uint64_t v0 = process_table_forget_visits(t);
    char name[32];
    for (int i = 0; i < 100; i++) {
        int len = snprintf(name, sizeof name, "z%d@127.0.0.1", i);
        process_forget_node(t, name, (size_t)len);
    }
    CU_ASSERT_EQUAL(process_table_forget_visits(t) - v0, 0);
    process_forget_node(t, "peer@127.0.0.1", strlen("peer@127.0.0.1")); /* the peer's own: all of them */
    CU_ASSERT_EQUAL(process_table_forget_visits(t) - v0, MANY);
    /* its records gone, and the groups they left empty: its failed dials now
     * look at no one either (the groups stayed, counted, and each looked at
     * all of them) */
    for (int i = 0; i < 10; i++)
        process_forget_node(t, "peer@127.0.0.1", strlen("peer@127.0.0.1"));
    CU_ASSERT_EQUAL(process_table_forget_visits(t) - v0, MANY);
    /* The counts lost for want of memory (a put that fails): the next going
     * looks at all and counts again; the ones after look at no one. */
    ei_x_buff wb;
    term_view b = pid_on(&wb, "b@127.0.0.1", 2);
    for (int i = 0; i < MANY; i++) {
        process *p = process_spawn(t, &keeper, NULL);
        CU_ASSERT_FATAL(p != NULL);
        erlang_ref rf = ref((unsigned)(MANY + i) + 1);
        r.index = 0;
        ei_x_encode_ref(&r, &rf);
        CU_ASSERT_EQUAL(process_monitor(p, b, (term_view){r.buff, (size_t)r.index}, process_pid(p)), 0);
    }
    fail_put_of_b = 1;
    uint64_t v1 = process_table_forget_visits(t);
    /* it sorts the new records, b's first count fails: it looks at all
     * (those with b's monitors) and counts again */
    process_forget_node(t, "z@127.0.0.1", strlen("z@127.0.0.1"));
    CU_ASSERT_EQUAL(fail_put_of_b, 0);
    CU_ASSERT_EQUAL(process_table_forget_visits(t) - v1, MANY);
    for (int i = 0; i < 10; i++)
        process_forget_node(t, "z@127.0.0.1", strlen("z@127.0.0.1"));
    CU_ASSERT_EQUAL(process_table_forget_visits(t) - v1, MANY);
    ei_x_free(&wb);
    ei_x_free(&w);
    ei_x_free(&r);
    process_table_destroy(t);
    wire_reset();
}

/* A node's going looks at the processes it may concern only: those with
 * monitors, links or watches set up since the last node went (a call's
 * monitor, set and taken off, counts once), and those that want node_down;
 * not the thousands that have nothing. A node no process holds a record
 * of (a made-up node's failed dial, say) is told to those that want
 * node_down only. */
static void test_a_node_s_going_looks_only_where_it_matters(void)
{
    static const char x[] = "x@127.0.0.1", y[] = "y@127.0.0.1";
    process_table *t = process_table_create(NODE, CREATION, &wire_router);
    process *linked = process_spawn(t, &keeper, NULL), *called = process_spawn(t, &keeper, NULL);
    process *told = process_spawn(t, &relinker, NULL);
    CU_ASSERT_FATAL(linked && called && told);
    for (int i = 0; i < MANY; i++)
        CU_ASSERT_FATAL(process_spawn(t, &quiet, NULL) != NULL);
    process_want_node_down(told);
    process_set_trap_exit(linked, 1);
    ei_x_buff a, w, r;
    CU_ASSERT_EQUAL(process_link(linked, pid_on(&a, x, 1), 0), 0);
    term_view watcher = pid_on(&w, y, 2);
    erlang_ref rf = ref(7);
    ei_x_new(&r);
    ei_x_encode_ref(&r, &rf);
    term_view tag = {r.buff, (size_t)r.index};
    CU_ASSERT_EQUAL(process_monitor(called, watcher, tag, process_pid(called)), 0);
    process_demonitor(called, watcher, tag);
    ei_x_free(&a);
    relink_to = pid_on(&a, "z@127.0.0.1", 3); /* told links to it at each node_down */
    uint64_t v0 = process_table_forget_visits(t);
    process_forget_node(t, "w@127.0.0.1", strlen("w@127.0.0.1"));
    CU_ASSERT_EQUAL(process_table_forget_visits(t) - v0, 1); /* told only */
    CU_ASSERT_EQUAL(process_link_count(told), 1); /* and told it: it linked to z */
    /* y: called's monitor of a pid there was taken off before it was
     * sorted: nobody holds a record of y */
    process_forget_node(t, y, strlen(y));
    CU_ASSERT_EQUAL(process_table_forget_visits(t) - v0, 2);
    CU_ASSERT_EQUAL(process_link_count(linked), 1);
    downs = 0;
    process_forget_node(t, x, strlen(x)); /* linked's link is of x: all three, an EXIT for linked */
    CU_ASSERT_EQUAL(process_table_forget_visits(t) - v0, 5);
    while (process_table_settle(t))
        ;
    CU_ASSERT_EQUAL(process_link_count(linked), 0);
    CU_ASSERT_EQUAL(downs, 1);
    /* linked and called have nothing left now: the next going skips them */
    process_forget_node(t, x, strlen(x));
    CU_ASSERT_EQUAL(process_table_forget_visits(t) - v0, 6);
    ei_x_free(&a);
    ei_x_free(&w);
    ei_x_free(&r);
    process_table_destroy(t);
    wire_reset();
}

/* Two nodes go at once. A process stopped by the first (its link there,
 * not trapped) holds a monitor by a process of the second: at its end no
 * DOWN goes to that node (it went: sending would dial it again), nor an
 * EXIT to the first. */
static void test_a_process_stopped_by_one_node_s_going_sends_nothing_to_another_gone(void)
{
    static const char x1[] = "x1@127.0.0.1", x2[] = "x2@127.0.0.1";
    process_table *t = process_table_create(NODE, CREATION, &wire_router);
    process *p = process_spawn(t, &quiet, NULL);
    CU_ASSERT_FATAL(p != NULL);
    ei_x_buff a, w, r;
    CU_ASSERT_EQUAL(process_link(p, pid_on(&a, x1, 1), 0), 0);
    erlang_ref rf = ref(9);
    ei_x_new(&r);
    ei_x_encode_ref(&r, &rf);
    CU_ASSERT_EQUAL(process_monitor(p, pid_on(&w, x2, 2), (term_view){r.buff, (size_t)r.index},
                                    process_pid(p)), 0);
    wire_reset();
    process_forget_node(t, x1, strlen(x1));
    CU_ASSERT_TRUE(process_exiting(p));
    process_forget_node(t, x2, strlen(x2));
    destroyed = 0;
    while (process_table_settle(t))
        ;
    CU_ASSERT_EQUAL(destroyed, 1);
    CU_ASSERT_EQUAL(buffer_len(&wire), 0); /* no frame for either node */
    ei_x_free(&a);
    ei_x_free(&w);
    ei_x_free(&r);
    process_table_destroy(t);
    wire_reset();
}

/* The same when the demonitor comes from a message delivered in the same
 * batch as the DOWN, just before it. */
static char off_ref[PROCESS_REF_MAX];
static size_t off_ref_len;
static int offs, others, unwatched;

static void off_then_count(process *self, term_view msg)
{
    static const char off[] = {119, 3, 'o', 'f', 'f'};
    if (msg.len == sizeof off && memcmp(msg.ptr, off, sizeof off) == 0) {
        offs++;
        unwatched = process_unwatch(self, (term_view){off_ref, off_ref_len});
    } else {
        others++;
    }
}

static const process_behaviour unwatcher = {.message = off_then_count};

static void test_demonitor_in_the_batch_of_its_down(void)
{
    static const char boom[] = {119, 4, 'b', 'o', 'o', 'm'};
    static const char off[] = {119, 3, 'o', 'f', 'f'};
    process_table *t = process_table_create(NODE, CREATION, &wire_router);
    process *p = process_spawn(t, &unwatcher, NULL), *q = process_spawn(t, &quiet, NULL);
    CU_ASSERT_FATAL(p && q);
    ei_x_buff a;
    term_view target = enc_pid(&a, caller(5));
    int len = process_watch(p, target, off_ref);
    CU_ASSERT_FATAL(len > 0);
    off_ref_len = (size_t)len;
    offs = others = 0;
    unwatched = -1;
    CU_ASSERT_EQUAL(process_send(q, process_pid(p), (term_view){off, sizeof off}), 0);
    process_watch_fired(p, (term_view){off_ref, off_ref_len}, target, (term_view){boom, sizeof boom});
    while (process_table_settle(t))
        ;
    CU_ASSERT_EQUAL(offs, 1);
    CU_ASSERT_EQUAL(unwatched, 0); /* it had fired */
    CU_ASSERT_EQUAL(others, 0);    /* and its DOWN, behind, was not delivered */
    ei_x_free(&a);
    process_table_destroy(t);
    wire_reset();
}

void unit_suite_process(void)
{
    CU_pSuite s = CU_add_suite("process", NULL, NULL);
    CU_add_test(s, "thousands of processes found by pid and name", test_thousands_found_by_pid_and_name);
    CU_add_test(s, "demonitor and unlink are constant time", test_demonitor_and_unlink_are_constant_time);
    CU_add_test(s, "a demonitor of the newest monitor", test_demonitor_of_the_newest);
    CU_add_test(s, "a lone monitor is not hashed", test_a_lone_monitor_is_not_hashed);
    CU_add_test(s, "repeated references and mass teardown stay linear",
                test_repeated_references_and_mass_teardown_stay_linear);
    CU_add_test(s, "monitors cannot be faked, redirected or taken off by another",
                test_monitors_cannot_be_faked_or_taken);
    CU_add_test(s, "teardown survives a terminate that stops", test_teardown_survives_a_terminate_that_stops);
    CU_add_test(s, "node watchers hear of new connections", test_node_watchers_hear_of_new_connections);
    CU_add_test(s, "at most the limit, and names are atoms' texts", test_the_limit_and_names);
    CU_add_test(s, "terminate before jobs, at the end", test_terminate_before_jobs_at_the_end);
    CU_add_test(s, "a job ending while its process stops is done after terminate",
                test_a_job_ending_while_its_process_stops_is_done_after_terminate);
    CU_add_test(s, "a demonitor flushes a queued DOWN", test_demonitor_flushes_a_queued_down);
    CU_add_test(s, "a demonitor in the batch of its DOWN", test_demonitor_in_the_batch_of_its_down);
    CU_add_test(s, "node_down after its links are gone", test_node_down_after_its_links_are_gone);
    CU_add_test(s, "made-up nodes' going look at no one", test_made_up_nodes_going_look_at_no_one);
    CU_add_test(s, "a node's going looks only where it matters", test_a_node_s_going_looks_only_where_it_matters);
    CU_add_test(s, "a node's going looks at its own records only", test_a_node_s_going_looks_at_its_own_records_only);
    CU_add_test(s, "a node's going tells newest first", test_a_node_s_going_tells_newest_first);
    CU_add_test(s, "a link kept out of memory stops nothing else", test_a_link_kept_out_of_memory_stops_nothing_else);
    CU_add_test(s, "a process stopped by one node's going sends nothing to another gone",
                test_a_process_stopped_by_one_node_s_going_sends_nothing_to_another_gone);
    CU_add_test(s, "timers all due at once fire in batches", test_timers_fire_in_batches);
    CU_add_test(s, "a process takes a share of the job queue", test_a_process_takes_a_share_of_the_queue);
}

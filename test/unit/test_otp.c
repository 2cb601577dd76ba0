/* test_otp.c: the OTP process semantics of the engine and the process table,
 * driven by frames as BEAM nodes send them: the starter, handle_continue,
 * sys messages (state, status, suspend/resume, terminate), exit signals,
 * links and unlinks, deferred replies and a node going away. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counter.h"
#include "gen_server.h"
#include "kv.h"
#include "module_table.h"
#include "starter.h"
#include "unit.h"
#include "wire.h"

static process_table *t;
static kv_options kvo = {.max_depth = 1000};
static module_table *startable;

/* probe: a module of this file, for the gen_server timeout and node_down
 * around suspend and handle_continue. Its arg: [] or continue (init asks
 * for a 0 ms timeout and handle_continue, which asks for none). A cast
 * {timeout, Ms} asks for a timeout; infos timeout are counted, as are
 * node_downs (here, since a suspended server cannot be asked). */
static int probe_timeouts, probe_node_downs;

static int probe_init(gcn_server *self, gcn_term arg, gcn_init *out, const char **error)
{
    (void)error;
    static int state;
    out->state = &state;
    if (gcn_match(arg, "continue")) {
        gcn_set_timeout(self, 0);
        out->want_continue = 1;
    }
    return 0;
}

static enum gcn_result probe_call(gcn_server *self, void *state, gcn_term req, const gcn_from *from,
                                  gcn_buf *reply)
{
    (void)self; (void)state; (void)req; (void)from;
    gcn_put_atom(reply, "ok");
    return GCN_REPLY;
}

static enum gcn_result probe_cast(gcn_server *self, void *state, gcn_term req)
{
    (void)state;
    long long ms;
    if (gcn_match(req, "{timeout, ~i}", &ms))
        gcn_set_timeout(self, (uint64_t)ms);
    return GCN_NOREPLY;
}

static enum gcn_result probe_info(gcn_server *self, void *state, gcn_term msg)
{
    (void)self; (void)state;
    probe_timeouts += gcn_match(msg, "timeout");
    return GCN_NOREPLY;
}

static void probe_continue(gcn_server *self, void *state) { (void)self; (void)state; }

static void probe_node_down(gcn_server *self, void *state, const char *node, size_t len)
{
    (void)self; (void)state; (void)node; (void)len;
    probe_node_downs++;
}

static const gcn_module probe_module = {
    .api_major = GEN_CNODE_API_MAJOR, .api_minor = GEN_CNODE_API_MINOR, .name = "probe",
    .init = probe_init, .handle_call = probe_call, .handle_cast = probe_cast, .handle_info = probe_info,
    .handle_continue = probe_continue, .node_down = probe_node_down};

/* quitter: its init asks for a flush, then fails. flush counts. */
static int quitter_flushes;

static int quitter_init(gcn_server *self, gcn_term arg, gcn_init *out, const char **error)
{
    (void)arg;
    (void)out;
    gcn_want_flush(self);
    *error = "quits";
    return -1;
}

static void quitter_flush(gcn_server *self, void *state)
{
    (void)self;
    (void)state;
    quitter_flushes++;
}

static const gcn_module quitter_module = {
    .api_major = GEN_CNODE_API_MAJOR, .api_minor = GEN_CNODE_API_MINOR, .name = "quitter",
    .init = quitter_init, .flush = quitter_flush};

static int setup(void)
{
    const char *why;
    char err[256];
    term_view none = {NULL, 0};
    t = process_table_create(NODE, CREATION, &wire_router);
    startable = module_table_create();
    if (!t || !startable || module_table_add(startable, &gcn_module_kv, &kvo, NULL, err, sizeof err) < 0 ||
        module_table_add(startable, &gcn_module_counter, NULL, NULL, err, sizeof err) < 0 ||
        module_table_add(startable, &probe_module, NULL, NULL, err, sizeof err) < 0)
        return 1;
    return gen_server_start(t, &gcn_module_gen_cnode, startable, none, "gen_cnode", &why) ? 0 : 1;
}

static int teardown(void)
{
    process_table_destroy(t);
    module_table_destroy(startable);
    wire_reset();
    return 0;
}

static term_view enc_pid(const erlang_pid *p, ei_x_buff *x)
{
    ei_x_new(x);
    ei_x_encode_pid(x, p);
    return (term_view){x->buff, (size_t)x->index};
}

/* linker: its init traps exits, then links to the pid it is given, whose
 * node the router refuses at once; it counts the infos it gets. */
static int linker_infos, linker_exits;

static int linker_init(gcn_server *self, gcn_term arg, gcn_init *out, const char **error)
{
    (void)error;
    out->state = &linker_infos;
    out->trap_exit = 1;
    gcn_link(self, arg);
    return 0;
}

static enum gcn_result linker_info(gcn_server *self, void *state, gcn_term msg)
{
    (void)self;
    (void)state;
    linker_infos++;
    linker_exits += gcn_match(msg, "{'EXIT', _, noconnection}");
    return GCN_NOREPLY;
}

static const gcn_module linker_module = {
    .api_major = GEN_CNODE_API_MAJOR, .api_minor = GEN_CNODE_API_MINOR, .name = "linker",
    .init = linker_init, .handle_info = linker_info};

static int refuse_link(void *ctx, term_view from, term_view to)
{
    (void)ctx, (void)from, (void)to;
    return -1; /* as for a node that failed a moment ago */
}

/* An init that traps exits and then links to a pid whose node cannot be
 * reached gets {'EXIT', Pid, noconnection} as an info, as an OTP init that
 * calls process_flag(trap_exit, true) before link/1 does; the start
 * succeeds. (trap_exit took effect only once init returned: the start
 * failed with noconnection.) */
static void test_trap_exit_set_in_init_covers_its_links(void)
{
    process_router router = wire_router;
    router.link = refuse_link;
    process_table *own = process_table_create(NODE, CREATION, &router);
    CU_ASSERT_FATAL(own != NULL);
    erlang_pid far = caller(7);
    ei_x_buff x;
    term_view pid = enc_pid(&far, &x);
    const char *why = NULL;
    linker_infos = linker_exits = 0;
    process *p = gen_server_start(own, &linker_module, NULL, pid, NULL, &why);
    CU_ASSERT_PTR_NOT_NULL(p);
    while (process_table_settle(own))
        ;
    CU_ASSERT_EQUAL(linker_exits, 1);
    CU_ASSERT_EQUAL(linker_infos, 1);
    CU_ASSERT_EQUAL(process_count(own), 1);
    ei_x_free(&x);
    process_table_destroy(own);
    wire_reset();
}

static term_view enc_atom(const char *a, ei_x_buff *x)
{
    ei_x_new(x);
    ei_x_encode_atom(x, a);
    return (term_view){x->buff, (size_t)x->index};
}

static int is_atom(const char *buf, int *i, const char *name)
{
    char a[MAXATOMLEN_UTF8];
    return ei_decode_atom(buf, i, a) == 0 && strcmp(a, name) == 0;
}

/* gen_cnode:start -> the new server, after checking the reply is {ok, Pid}. */
static process *start(const erlang_pid *from, const char *op, const char *module, ei_x_buff *arg)
{
    ei_x_buff m;
    const char *buf;
    int arity;
    erlang_pid pid;
    wire_request(&m, "$gen_call", from, 100);
    ei_x_encode_tuple_header(&m, 3);
    ei_x_encode_atom(&m, op);
    ei_x_encode_atom(&m, module);
    if (arg)
        ei_x_append_buf(&m, arg->buff, arg->index);
    else
        ei_x_encode_empty_list(&m);
    CU_ASSERT_EQUAL(wire_send(t, from, "gen_cnode", (term_view){0}, &m), DIST_OK);
    ei_x_free(&m);
    if (strcmp(op, "start_link") == 0) { /* linked before the caller hears of the pid */
        int ctrl, msg;
        CU_ASSERT_EQUAL(next_frame(&buf, &ctrl, &msg), DOP_LINK);
        drop_frame();
    }
    int i = wire_reply(100, &buf);
    CU_ASSERT_FATAL(ei_decode_tuple_header(buf, &i, &arity) == 0 && arity == 2);
    CU_ASSERT(is_atom(buf, &i, "ok"));
    CU_ASSERT_FATAL(ei_decode_pid(buf, &i, &pid) == 0);
    drop_frame();
    ei_x_buff x;
    process *p = process_lookup(t, enc_pid(&pid, &x));
    ei_x_free(&x);
    CU_ASSERT_PTR_NOT_NULL(p);
    return p;
}

/* A call to p's pid; the reply's index in *buf (the frame stays on the wire). */
static int call(process *p, const erlang_pid *from, unsigned tag, void (*req)(ei_x_buff *), const char **buf)
{
    ei_x_buff m;
    wire_request(&m, "$gen_call", from, tag);
    req(&m);
    CU_ASSERT_EQUAL(wire_send(t, from, NULL, process_pid(p), &m), DIST_OK);
    ei_x_free(&m);
    return buffer_len(&wire) ? wire_reply(tag, buf) : -1;
}

static void system_msg(process *p, const erlang_pid *from, unsigned tag, void (*req)(ei_x_buff *))
{
    ei_x_buff m;
    wire_request(&m, "system", from, tag);
    req(&m);
    CU_ASSERT_EQUAL(wire_send(t, from, NULL, process_pid(p), &m), DIST_OK);
    ei_x_free(&m);
}

static void req_size(ei_x_buff *m) { ei_x_encode_atom(m, "size"); }
static void req_get_state(ei_x_buff *m) { ei_x_encode_atom(m, "get_state"); }
static void req_get_status(ei_x_buff *m) { ei_x_encode_atom(m, "get_status"); }
static void req_suspend(ei_x_buff *m) { ei_x_encode_atom(m, "suspend"); }
static void req_resume(ei_x_buff *m) { ei_x_encode_atom(m, "resume"); }
static void req_put_x(ei_x_buff *m)
{
    ei_x_encode_tuple_header(m, 3);
    ei_x_encode_atom(m, "put");
    ei_x_encode_atom(m, "x");
    ei_x_encode_long(m, 1);
}
static void req_terminate_bye(ei_x_buff *m)
{
    ei_x_encode_tuple_header(m, 2);
    ei_x_encode_atom(m, "terminate");
    ei_x_encode_atom(m, "bye");
}
static void req_wait_for_10(ei_x_buff *m)
{
    ei_x_encode_tuple_header(m, 2);
    ei_x_encode_atom(m, "wait_for");
    ei_x_encode_long(m, 10);
}

static void preload_arg(ei_x_buff *x)
{
    ei_x_new(x);
    ei_x_encode_map_header(x, 1);
    ei_x_encode_atom(x, "preload");
    ei_x_encode_map_header(x, 2);
    ei_x_encode_atom(x, "a");
    ei_x_encode_long(x, 1);
    ei_x_encode_atom(x, "b");
    ei_x_encode_long(x, 2);
}

static void test_start_runs_continue_before_first_message(void)
{
    erlang_pid me = caller(1);
    ei_x_buff arg;
    const char *buf;
    long n;
    preload_arg(&arg);
    process *p = start(&me, "start", "kv", &arg);
    ei_x_free(&arg);
    int i = call(p, &me, 1, req_size, &buf);
    CU_ASSERT(ei_decode_long(buf, &i, &n) == 0 && n == 2);
    drop_frame();
    /* get_state for an OTP 25 caller: the map itself */
    system_msg(p, &me, 2, req_get_state);
    i = wire_reply(2, &buf);
    int arity;
    CU_ASSERT(ei_decode_map_header(buf, &i, &arity) == 0 && arity == 2);
    drop_frame();
    system_msg(p, &me, 3, req_get_status);
    i = wire_reply(3, &buf);
    CU_ASSERT(ei_decode_tuple_header(buf, &i, &arity) == 0 && arity == 4);
    CU_ASSERT(is_atom(buf, &i, "status"));
    drop_frame();
    process_exit(p, (term_view){"\x77\x04test", 6});
    CU_ASSERT_EQUAL(buffer_len(&wire), 0); /* no monitors, no links: nobody told */
}

static void test_unknown_module_is_refused(void)
{
    erlang_pid me = caller(2);
    ei_x_buff m;
    const char *buf;
    int arity;
    size_t before = process_count(t);
    wire_request(&m, "$gen_call", &me, 5);
    ei_x_encode_tuple_header(&m, 3);
    ei_x_encode_atom(&m, "start");
    ei_x_encode_atom(&m, "nosuch");
    ei_x_encode_empty_list(&m);
    wire_send(t, &me, "gen_cnode", (term_view){0}, &m);
    ei_x_free(&m);
    int i = wire_reply(5, &buf);
    CU_ASSERT(ei_decode_tuple_header(buf, &i, &arity) == 0 && is_atom(buf, &i, "error"));
    CU_ASSERT(ei_decode_tuple_header(buf, &i, &arity) == 0 && is_atom(buf, &i, "unknown_module"));
    drop_frame();
    CU_ASSERT_EQUAL(process_count(t), before);
}

static void test_suspend_holds_calls_and_resume_serves_them_in_order(void)
{
    erlang_pid me = caller(3), other = caller(4);
    const char *buf;
    process *p = start(&me, "start", "kv", NULL);
    system_msg(p, &me, 10, req_suspend);
    wire_reply(10, &buf);
    drop_frame();
    call(p, &other, 11, req_put_x, &buf);
    call(p, &other, 12, req_size, &buf);
    CU_ASSERT_EQUAL(buffer_len(&wire), 0); /* held */
    system_msg(p, &me, 13, req_resume);
    wire_reply(13, &buf);
    drop_frame();
    wire_reply(11, &buf); /* then the held calls, in the order they came */
    drop_frame();
    long n;
    int i = wire_reply(12, &buf);
    CU_ASSERT(ei_decode_long(buf, &i, &n) == 0 && n == 1);
    drop_frame();
    process_exit(p, (term_view){"\x77\x04test", 6});
}

/* me monitors p (MONITOR_P with reference n): mon is {me, p, Ref}, its
 * encodings in w and r. */
static void monitor_by(const erlang_pid *me, process *p, unsigned n, ei_x_buff *w, ei_x_buff *r,
                       term_view mon[3])
{
    erlang_ref mref = ref(n);
    ei_x_new(r);
    ei_x_encode_ref(r, &mref);
    mon[0] = enc_pid(me, w);
    mon[1] = process_pid(p);
    mon[2] = (term_view){r->buff, (size_t)r->index};
    CU_ASSERT_EQUAL(wire_control(t, DOP_MONITOR_P, 3, mon), DIST_OK);
}

/* The next frame is a DOWN (MONITOR_P_EXIT) with reason the atom why. */
static void expect_down(const char *why)
{
    const char *buf;
    int ctrl, msg;
    CU_ASSERT_EQUAL(next_frame(&buf, &ctrl, &msg), DOP_MONITOR_P_EXIT);
    ei_skip_term(buf, &ctrl); /* watched */
    ei_skip_term(buf, &ctrl); /* watcher */
    ei_skip_term(buf, &ctrl); /* ref */
    CU_ASSERT(is_atom(buf, &ctrl, why));
    drop_frame();
}

static void test_terminate_replies_ok_then_down_and_exit(void)
{
    erlang_pid me = caller(5);
    const char *buf;
    int ctrl, msg;
    ei_x_buff w, r;
    term_view mon[3];
    process *p = start(&me, "start_link", "counter", NULL);
    monitor_by(&me, p, 55, &w, &r, mon);
    system_msg(p, &me, 20, req_terminate_bye);
    wire_reply(20, &buf);
    drop_frame();
    expect_down("bye");
    CU_ASSERT_EQUAL(next_frame(&buf, &ctrl, &msg), DOP_EXIT);
    ei_skip_term(buf, &ctrl);
    ei_skip_term(buf, &ctrl);
    CU_ASSERT(is_atom(buf, &ctrl, "bye"));
    drop_frame();
    CU_ASSERT_EQUAL(buffer_len(&wire), 0);
    ei_x_free(&w);
    ei_x_free(&r);
}

/* A durable kv asked to stop in the batch that logged a put: the put's
 * caller is answered ok (the group commit runs before terminate), where it
 * was released unanswered though its change was on disk. */
static void test_a_change_in_the_batch_of_a_stop_is_answered(void)
{
    char dir[] = "/tmp/gen_cnode_otp_XXXXXX", cmd[96];
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    kv_options kvo = {.max_depth = 100, .data_dir = dir, .name = "dkv", .fsync = FSYNC_ALWAYS,
                      .compact_min = UINT64_MAX};
    const char *why;
    process *p = gen_server_start(t, &gcn_module_kv, &kvo, (term_view){NULL, 0}, "dkv", &why);
    CU_ASSERT_FATAL(p != NULL);
    erlang_pid me = caller(9);
    const char *buf;
    CU_ASSERT_EQUAL(call(p, &me, 21, req_put_x, &buf), -1); /* held for the flush */
    system_msg(p, &me, 22, req_terminate_bye);
    int i = wire_reply(22, &buf);
    CU_ASSERT(is_atom(buf, &i, "ok"));
    drop_frame();
    CU_ASSERT_FATAL(buffer_len(&wire) > 0);
    i = wire_reply(21, &buf);
    CU_ASSERT(is_atom(buf, &i, "ok"));
    drop_frame();
    while (process_table_settle(t))
        ;
    wire_reset();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CU_ASSERT(system(cmd) == 0);
}

static void test_exit_signals(void)
{
    erlang_pid me = caller(6);
    ei_x_buff w, a, b, k, tr;
    process *p = start(&me, "start", "kv", NULL);
    uint32_t num = process_number(p);
    term_view normal[3] = {enc_pid(&me, &w), process_pid(p), enc_atom("normal", &a)};
    CU_ASSERT_EQUAL(wire_control(t, DOP_EXIT2, 3, normal), DIST_OK);
    CU_ASSERT_EQUAL(process_number(process_lookup(t, process_pid(p))), num); /* normal: ignored */
    term_view unlinked[3] = {normal[0], process_pid(p), enc_atom("boom", &k)};
    CU_ASSERT_EQUAL(wire_control(t, DOP_EXIT, 3, unlinked), DIST_OK); /* not linked: dropped */
    CU_ASSERT_PTR_NOT_NULL(process_lookup(t, process_pid(p)));
    ei_x_free(&k);
    ei_x_buff pid_copy;
    ei_x_new(&pid_copy);
    ei_x_append_buf(&pid_copy, process_pid(p).ptr, (int)process_pid(p).len);
    term_view kill[3] = {normal[0], {pid_copy.buff, (size_t)pid_copy.index}, enc_atom("kill", &k)};
    CU_ASSERT_EQUAL(wire_control(t, DOP_EXIT2, 3, kill), DIST_OK);
    CU_ASSERT_PTR_NULL(process_lookup(t, kill[1]));
    /* a server that traps exits gets them as messages and keeps running */
    ei_x_new(&tr);
    ei_x_encode_map_header(&tr, 1);
    ei_x_encode_atom(&tr, "trap_exit");
    ei_x_encode_atom(&tr, "true");
    p = start(&me, "start", "kv", &tr);
    CU_ASSERT(process_trap_exit(p));
    term_view boom[3] = {normal[0], process_pid(p), enc_atom("boom", &b)};
    CU_ASSERT_EQUAL(wire_control(t, DOP_EXIT2, 3, boom), DIST_OK);
    CU_ASSERT_PTR_NOT_NULL(process_lookup(t, process_pid(p)));
    process_exit(p, (term_view){"\x77\x04test", 6});
    ei_x_free(&w); ei_x_free(&a); ei_x_free(&b); ei_x_free(&k); ei_x_free(&tr); ei_x_free(&pid_copy);
}

/* An exit signal whose reason is nested deeper than --max-depth (1000 in
 * these tests) is taken with the reason too_deep, in constant stack: the
 * server exits, its monitor's DOWN says too_deep. Deep anywhere else in the
 * control tuple, it is still malformed. */
static void test_deep_exit_reason_is_too_deep(void)
{
    erlang_pid me = caller(8);
    ei_x_buff w, r, deep, tok;
    term_view mon[3];
    process *p = start(&me, "start", "kv", NULL);
    monitor_by(&me, p, 56, &w, &r, mon);
    ei_x_new(&deep);
    for (int k = 0; k < 200000; k++)
        ei_x_encode_tuple_header(&deep, 1);
    ei_x_encode_atom(&deep, "crashed");
    term_view view = {deep.buff, (size_t)deep.index};
    /* deep in the token of an EXIT_TT: malformed, nothing happens */
    ei_x_new(&tok);
    ei_x_encode_atom(&tok, "boom");
    term_view tt[4] = {mon[0], process_pid(p), view, {tok.buff, (size_t)tok.index}};
    CU_ASSERT_EQUAL(wire_control(t, DOP_EXIT2_TT, 4, tt), DIST_EPROTO);
    CU_ASSERT_PTR_NOT_NULL(process_lookup(t, process_pid(p)));
    /* cut short: malformed too */
    term_view cut[3] = {mon[0], process_pid(p), {deep.buff, (size_t)deep.index - 1}};
    CU_ASSERT_EQUAL(wire_control(t, DOP_EXIT2, 3, cut), DIST_EPROTO);
    CU_ASSERT_PTR_NOT_NULL(process_lookup(t, process_pid(p)));
    /* whole: the server exits with too_deep */
    ei_x_buff pid_copy; /* the process's own pid goes with it */
    ei_x_new(&pid_copy);
    ei_x_append_buf(&pid_copy, process_pid(p).ptr, (int)process_pid(p).len);
    term_view ex[3] = {mon[0], {pid_copy.buff, (size_t)pid_copy.index}, view};
    CU_ASSERT_EQUAL(wire_control(t, DOP_EXIT2, 3, ex), DIST_ALTERED);
    CU_ASSERT_PTR_NULL(process_lookup(t, ex[1]));
    expect_down("too_deep");
    CU_ASSERT_EQUAL(buffer_len(&wire), 0);
    ei_x_free(&w); ei_x_free(&r); ei_x_free(&deep); ei_x_free(&tok); ei_x_free(&pid_copy);
}

/* {'$gen_cast', {Tag, N}} to p from from. */
static void cast_pair(process *p, const erlang_pid *from, const char *tag, long n)
{
    ei_x_buff m;
    ei_x_new_with_version(&m);
    ei_x_encode_tuple_header(&m, 2);
    ei_x_encode_atom(&m, "$gen_cast");
    ei_x_encode_tuple_header(&m, 2);
    ei_x_encode_atom(&m, tag);
    ei_x_encode_long(&m, n);
    CU_ASSERT_EQUAL(wire_send(t, from, NULL, process_pid(p), &m), DIST_OK);
    ei_x_free(&m);
}

static void run_due_timers(void)
{
    process_table_run_timers(t, UINT64_MAX / 2);
    process_table_settle(t);
}

/* The gen_server timeout and node_down around :sys.suspend, as OTP has
 * them: a pending timeout, 0 ms included ({noreply, S, 0}), is put aside
 * and armed again at resume; a node's going is told at resume, not while
 * suspended. And handle_continue's return decides the timeout, not init's. */
static void test_timeout_and_node_down_around_suspend(void)
{
    erlang_pid me = caller(9);
    const char *buf;
    process *p = start(&me, "start", "probe", NULL);
    probe_timeouts = probe_node_downs = 0;
    cast_pair(p, &me, "timeout", 0);
    system_msg(p, &me, 30, req_suspend);
    wire_reply(30, &buf);
    drop_frame();
    run_due_timers();
    CU_ASSERT_EQUAL(probe_timeouts, 0);
    process_forget_node(t, "gone@host", 9);
    CU_ASSERT_EQUAL(probe_node_downs, 0);
    system_msg(p, &me, 31, req_resume);
    wire_reply(31, &buf);
    drop_frame();
    CU_ASSERT_EQUAL(probe_node_downs, 1);
    run_due_timers();
    CU_ASSERT_EQUAL(probe_timeouts, 1);
    process_exit(p, (term_view){"\x77\x04test", 6});
    process_table_settle(t);

    ei_x_buff arg;
    ei_x_new(&arg);
    ei_x_encode_atom(&arg, "continue");
    probe_timeouts = 0;
    p = start(&me, "start", "probe", &arg);
    ei_x_free(&arg);
    run_due_timers();
    CU_ASSERT_EQUAL(probe_timeouts, 0);
    process_exit(p, (term_view){"\x77\x04test", 6});
    process_table_settle(t);
    CU_ASSERT_EQUAL(buffer_len(&wire), 0);
}

static void test_link_unlink_id_is_acked(void)
{
    erlang_pid me = caller(7);
    ei_x_buff w, id;
    const char *buf;
    int ctrl, msg;
    process *p = start(&me, "start", "kv", NULL);
    term_view link[2] = {enc_pid(&me, &w), process_pid(p)};
    CU_ASSERT_EQUAL(wire_control(t, DOP_LINK, 2, link), DIST_OK);
    CU_ASSERT_EQUAL(process_link_count(p), 1);
    ei_x_new(&id);
    ei_x_encode_ulonglong(&id, 987654321987ULL);
    term_view unlink[3] = {{id.buff, (size_t)id.index}, link[0], process_pid(p)};
    CU_ASSERT_EQUAL(wire_control(t, DOP_UNLINK_ID, 3, unlink), DIST_OK);
    CU_ASSERT_EQUAL(process_link_count(p), 0);
    CU_ASSERT_EQUAL(next_frame(&buf, &ctrl, &msg), DOP_UNLINK_ID_ACK);
    unsigned long long got;
    erlang_pid from, to;
    CU_ASSERT(ei_decode_ulonglong(buf, &ctrl, &got) == 0 && got == 987654321987ULL);
    CU_ASSERT(ei_decode_pid(buf, &ctrl, &from) == 0 && from.num == process_number(p));
    CU_ASSERT(ei_decode_pid(buf, &ctrl, &to) == 0 && to.num == 7);
    drop_frame();
    process_exit(p, (term_view){"\x77\x04test", 6});
    ei_x_free(&w);
    ei_x_free(&id);
}

static void test_node_down_stops_linked_servers_and_drops_waiters(void)
{
    erlang_pid me = caller(8), away = caller(9);
    const char *buf;
    strcpy(away.node, "away@127.0.0.1");
    process *linked = start(&away, "start_link", "kv", NULL);
    ei_x_buff copy;
    ei_x_new(&copy);
    ei_x_append_buf(&copy, process_pid(linked).ptr, (int)process_pid(linked).len);
    process *c = start(&me, "start", "counter", NULL);
    ei_x_buff m;
    wire_request(&m, "$gen_call", &away, 30);
    req_wait_for_10(&m);
    CU_ASSERT_EQUAL(wire_send(t, &away, NULL, process_pid(c), &m), DIST_OK);
    ei_x_free(&m);
    int ctrl, msg;
    CU_ASSERT_EQUAL(next_frame(&buf, &ctrl, &msg), DOP_MONITOR_P); /* deferred, its caller watched */
    drop_frame();
    CU_ASSERT_EQUAL(buffer_len(&wire), 0);
    process_forget_node(t, "away@127.0.0.1", strlen("away@127.0.0.1"));
    CU_ASSERT_PTR_NULL(process_lookup(t, (term_view){copy.buff, (size_t)copy.index}));
    system_msg(c, &me, 31, req_get_status);
    static const char none_waiting[] = {'w', 'a', 'i', 't', 'i', 'n', 'g', 97, 0}; /* waiting => 0 */
    wire_reply(31, &buf);
    CU_ASSERT_PTR_NOT_NULL(memmem(buffer_head(&wire), buffer_len(&wire), none_waiting, sizeof none_waiting));
    drop_frame();
    CU_ASSERT_EQUAL(buffer_len(&wire), 0); /* and the waiter's reply was never sent */
    process_exit(c, (term_view){"\x77\x04test", 6});
    ei_x_free(&copy);
}

/* {'$gen_call', {From, Tag}, {wait_for, N}} to c, and the MONITOR_P the
 * counter sends to watch its caller: its reference's bytes in ref. */
static void wait_for_n(process *c, const erlang_pid *from, unsigned tag, long n, ei_x_buff *ref)
{
    ei_x_buff m;
    const char *buf;
    int ctrl, msg;
    wire_request(&m, "$gen_call", from, tag);
    ei_x_encode_tuple_header(&m, 2);
    ei_x_encode_atom(&m, "wait_for");
    ei_x_encode_long(&m, n);
    CU_ASSERT_EQUAL(wire_send(t, from, NULL, process_pid(c), &m), DIST_OK);
    ei_x_free(&m);
    CU_ASSERT_EQUAL_FATAL(next_frame(&buf, &ctrl, &msg), DOP_MONITOR_P);
    ei_skip_term(buf, &ctrl); /* the counter */
    ei_skip_term(buf, &ctrl); /* the caller */
    int start = ctrl;
    CU_ASSERT_FATAL(ei_skip_term(buf, &ctrl) == 0);
    ei_x_new(ref);
    ei_x_append_buf(ref, buf + start, ctrl - start);
    drop_frame();
}

/* The reply {Tag, {ok, Count}} at the head of the wire, then the
 * DEMONITOR_P of its caller's watch. */
static void expect_woken(unsigned tag, long count)
{
    const char *buf;
    int ctrl, msg, arity;
    long got = -1;
    int i = wire_reply(tag, &buf);
    CU_ASSERT(ei_decode_tuple_header(buf, &i, &arity) == 0 && arity == 2 && is_atom(buf, &i, "ok") &&
              ei_decode_long(buf, &i, &got) == 0 && got == count);
    drop_frame();
    CU_ASSERT_EQUAL(next_frame(&buf, &ctrl, &msg), DOP_DEMONITOR_P);
    drop_frame();
}

/* A server whose init asked for a flush and then failed gets no flush on
 * its way out: there is no state to give it (a module's flush would read
 * through NULL). */
static void test_a_failed_init_gets_no_flush(void)
{
    const char *why = NULL;
    quitter_flushes = 0;
    CU_ASSERT_PTR_NULL(gen_server_start(t, &quitter_module, NULL, (term_view){NULL, 0}, NULL, &why));
    CU_ASSERT_PTR_NOT_NULL(why);
    while (process_table_settle(t))
        ;
    process_table_flush(t);
    CU_ASSERT_EQUAL(quitter_flushes, 0);
    wire_reset();
}

/* A forged DOWN (a plain message with a waiter's reference, from its
 * caller's node) drops that waiter and takes its monitor off too: no
 * monitor outlives its waiter. */
static void test_a_forged_down_leaves_no_monitor(void)
{
    erlang_pid a = caller(15);
    process *c = start(&a, "start", "counter", NULL);
    ei_x_buff r, m;
    wait_for_n(c, &a, 50, 99, &r);
    ei_x_new_with_version(&m);
    ei_x_encode_tuple_header(&m, 5);
    ei_x_encode_atom(&m, "DOWN");
    ei_x_append_buf(&m, r.buff, r.index);
    ei_x_encode_atom(&m, "process");
    ei_x_encode_pid(&m, &a);
    ei_x_encode_atom(&m, "normal");
    CU_ASSERT_EQUAL(wire_send(t, &a, NULL, process_pid(c), &m), DIST_OK);
    ei_x_free(&m);
    const char *buf;
    int ctrl, msg;
    CU_ASSERT_EQUAL(next_frame(&buf, &ctrl, &msg), DOP_DEMONITOR_P);
    drop_frame();
    CU_ASSERT_EQUAL(buffer_len(&wire), 0);
    process_exit(c, (term_view){"\x77\x04test", 6});
    while (process_table_settle(t))
        ;
    CU_ASSERT_EQUAL(buffer_len(&wire), 0); /* no monitor left to take off at its end */
    wire_reset();
    ei_x_free(&r);
}

/* Counter waiters: one whose caller stops goes (its DOWN), as the BEAM
 * reference's, where it stayed till its node went; the others are woken
 * lowest target first, and in the order they came among equal targets. */
static void test_waiters_go_with_their_callers_and_wake_in_order(void)
{
    erlang_pid a = caller(11), b = caller(12), d = caller(13), e = caller(14);
    process *c = start(&a, "start", "counter", NULL);
    ei_x_buff ra, rb, rd, re, x1, x2;
    wait_for_n(c, &a, 40, 10, &ra);
    wait_for_n(c, &b, 41, 5, &rb);
    wait_for_n(c, &d, 42, 5, &rd);
    wait_for_n(c, &e, 43, 5, &re);
    /* b stops: its node says so */
    term_view down[4] = {enc_pid(&b, &x1), process_pid(c), {rb.buff, (size_t)rb.index},
                         enc_atom("normal", &x2)};
    CU_ASSERT_EQUAL(wire_control(t, DOP_MONITOR_P_EXIT, 4, down), DIST_OK);
    CU_ASSERT_EQUAL(buffer_len(&wire), 0);
    const char *buf;
    system_msg(c, &a, 44, req_get_status);
    static const char three_waiting[] = {'w', 'a', 'i', 't', 'i', 'n', 'g', 97, 3};
    wire_reply(44, &buf);
    CU_ASSERT_PTR_NOT_NULL(memmem(buffer_head(&wire), buffer_len(&wire), three_waiting, sizeof three_waiting));
    drop_frame();
    cast_pair(c, &a, "add", 5);
    expect_woken(42, 5);
    expect_woken(43, 5);
    CU_ASSERT_EQUAL(buffer_len(&wire), 0); /* not b (gone), not a (10) */
    cast_pair(c, &a, "add", 5);
    expect_woken(40, 10);
    CU_ASSERT_EQUAL(buffer_len(&wire), 0);
    process_exit(c, (term_view){"\x77\x04test", 6});
    while (process_table_settle(t))
        ;
    wire_reset();
    ei_x_free(&ra);
    ei_x_free(&rb);
    ei_x_free(&rd);
    ei_x_free(&re);
    ei_x_free(&x1);
    ei_x_free(&x2);
}

void unit_suite_otp(void)
{
    CU_pSuite s = CU_add_suite("otp", setup, teardown);
    CU_add_test(s, "start runs handle_continue before the first message",
                test_start_runs_continue_before_first_message);
    CU_add_test(s, "an unknown module is refused", test_unknown_module_is_refused);
    CU_add_test(s, "trap_exit set in init covers its links", test_trap_exit_set_in_init_covers_its_links);
    CU_add_test(s, "suspend holds calls, resume serves them in order",
                test_suspend_holds_calls_and_resume_serves_them_in_order);
    CU_add_test(s, "terminate replies ok, then DOWN and EXIT", test_terminate_replies_ok_then_down_and_exit);
    CU_add_test(s, "a change in the batch of a stop is answered", test_a_change_in_the_batch_of_a_stop_is_answered);
    CU_add_test(s, "exit signals", test_exit_signals);
    CU_add_test(s, "an exit reason deeper than --max-depth is too_deep", test_deep_exit_reason_is_too_deep);
    CU_add_test(s, "the timeout and node_down around suspend and handle_continue",
                test_timeout_and_node_down_around_suspend);
    CU_add_test(s, "UNLINK_ID is acknowledged", test_link_unlink_id_is_acked);
    CU_add_test(s, "a node going away stops linked servers and drops its waiters",
                test_node_down_stops_linked_servers_and_drops_waiters);
    CU_add_test(s, "counter waiters go with their callers, and wake in order",
                test_waiters_go_with_their_callers_and_wake_in_order);
    CU_add_test(s, "a failed init gets no flush", test_a_failed_init_gets_no_flush);
    CU_add_test(s, "a forged DOWN leaves no monitor", test_a_forged_down_leaves_no_monitor);
}

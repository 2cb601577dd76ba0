/* test_node.c: the whole node (node.c, its connections and its servers)
 * driven over real TCP on 127.0.0.1 by peers written from scratch
 * (peer.h): what a hostile peer, or an unlucky disconnect, does to it.
 * Each case is one that used to crash the node: teardown ran inside a
 * send or a callback that still held what it freed. */
#include <linux/tcp.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dist.h"
#include "gen_server.h"
#include "node_env.h"
#include "peer.h"
#include "unit.h"

#define COOKIE NODE_ENV_COOKIE
#define BIG_TAG 1000 /* bytes of a call tag, copied back in the reply */

static node *start_node(size_t max_output)
{
    node *n = node_env_start(max_output, 0, 1);
    CU_ASSERT_FATAL(n != NULL);
    return n;
}

static term_view view(const ei_x_buff *x) { return (term_view){x->buff, (size_t)x->index}; }

/* The pid <kv@127.0.0.1.N.0> of the node (its creation taken from a server's pid). */
static void node_pid(node *n, uint32_t num, ei_x_buff *x)
{
    term_view nk = process_pid(process_whereis(node_processes(n), "net_kernel", 10));
    ei_x_new(x);
    ei_x_append_buf(x, nk.ptr, (int)nk.len);
    put_u32(x->buff + nk.len - 12, num);
}

/* REG_SEND {6, From, '', To} of msg from p. */
static void reg_send(peer *p, const char *to, const ei_x_buff *msg)
{
    ei_x_buff c;
    ei_x_new(&c);
    ei_x_encode_tuple_header(&c, 4);
    ei_x_encode_long(&c, DOP_REG_SEND);
    ei_x_append_buf(&c, p->pid, (int)p->pid_len);
    ei_x_encode_atom(&c, "");
    ei_x_encode_atom(&c, to);
    CU_ASSERT(peer_send(p, view(&c), view(msg)) == 0);
    ei_x_free(&c);
}

/* {'$gen_call', {Pid, Tag}, _}: the request follows. tag_bytes > 0 makes
 * the tag a binary that long (tags are opaque: any term does). */
static void call_head(ei_x_buff *m, peer *p, int tag, size_t tag_bytes)
{
    ei_x_new(m);
    ei_x_encode_tuple_header(m, 3);
    ei_x_encode_atom(m, "$gen_call");
    ei_x_encode_tuple_header(m, 2);
    ei_x_append_buf(m, p->pid, (int)p->pid_len);
    if (tag_bytes) {
        static char big[BIG_TAG];
        memset(big, 'x', sizeof big);
        ei_x_encode_binary(m, big, (long)(tag_bytes < sizeof big ? tag_bytes : sizeof big));
    } else {
        ei_x_encode_long(m, tag);
    }
}

/* The reply to the call tagged `tag`: its index in *frame. */
static int reply_to(peer *p, node *n, long tag, const char **frame)
{
    size_t len;
    int msg, arity;
    long got;
    while (peer_recv(p, n, 2000, frame, &len) == 1) {
        if (peer_frame_op(*frame, len, &msg) != DOP_SEND || msg < 0)
            continue; /* the release probe's call to rex, say */
        if (ei_decode_tuple_header(*frame, &msg, &arity) == 0 && arity == 2 &&
            ei_decode_long(*frame, &msg, &got) == 0 && got == tag)
            return msg;
    }
    return -1;
}

static long call_long(peer *p, node *n, const char *to, int tag, void (*req)(ei_x_buff *))
{
    ei_x_buff m;
    const char *f;
    long v = -1;
    call_head(&m, p, tag, 0);
    req(&m);
    reg_send(p, to, &m);
    ei_x_free(&m);
    int i = reply_to(p, n, tag, &f);
    CU_ASSERT(i >= 0);
    if (i >= 0)
        CU_ASSERT(ei_decode_long(f, &i, &v) == 0);
    return v;
}

static void req_get(ei_x_buff *m) { ei_x_encode_atom(m, "get"); }
static void req_size(ei_x_buff *m) { ei_x_encode_atom(m, "size"); }

static int is_auth_yes(peer *p, node *n)
{
    ei_x_buff m;
    const char *f;
    char a[MAXATOMLEN_UTF8] = "";
    call_head(&m, p, 77, 0);
    ei_x_encode_tuple_header(&m, 2);
    ei_x_encode_atom(&m, "is_auth");
    ei_x_encode_atom(&m, p->name);
    reg_send(p, "net_kernel", &m);
    ei_x_free(&m);
    int i = reply_to(p, n, 77, &f);
    return i >= 0 && ei_decode_atom(f, &i, a) == 0 && strcmp(a, "yes") == 0;
}

static void cast(peer *p, const char *to, const char *atom)
{
    ei_x_buff m;
    ei_x_new(&m);
    ei_x_encode_tuple_header(&m, 2);
    ei_x_encode_atom(&m, "$gen_cast");
    ei_x_encode_atom(&m, atom);
    reg_send(p, to, &m);
    ei_x_free(&m);
}

/* EXIT2 {8, From, To, Reason}. */
static void exit2(peer *p, const ei_x_buff *to, const char *reason)
{
    ei_x_buff c;
    ei_x_new(&c);
    ei_x_encode_tuple_header(&c, 4);
    ei_x_encode_long(&c, DOP_EXIT2);
    ei_x_append_buf(&c, p->pid, (int)p->pid_len);
    ei_x_append_buf(&c, to->buff, to->index);
    ei_x_encode_atom(&c, reason);
    CU_ASSERT(peer_send(p, view(&c), (term_view){NULL, 0}) == 0);
    ei_x_free(&c);
}

/* A peer kills the node's own processes (the release probe is <node.1.0>)
 * and stops them with sys:terminate: they stay, and the next peer's
 * handshake (which uses the probe) and ping (net_kernel) work. */
static void test_system_processes_outlive_exit_signals(void)
{
    node *n = start_node(0);
    peer a, b;
    CU_ASSERT_FATAL(peer_connect(&a, n, "a@127.0.0.1", COOKIE, 0) == 0);
    const char *reasons[] = {"kill", "shutdown", "normal"};
    for (uint32_t num = 1; num <= 3; num++) /* probe, net_kernel, gen_cnode */
        for (size_t r = 0; r < 3; r++) {
            ei_x_buff to;
            node_pid(n, num, &to);
            exit2(&a, &to, reasons[r]);
            ei_x_free(&to);
        }
    /* GenServer.stop(:net_kernel): {system, {Pid, Tag}, {terminate, normal}} */
    ei_x_buff m;
    const char *f;
    ei_x_new(&m);
    ei_x_encode_tuple_header(&m, 3);
    ei_x_encode_atom(&m, "system");
    ei_x_encode_tuple_header(&m, 2);
    ei_x_append_buf(&m, a.pid, (int)a.pid_len);
    ei_x_encode_long(&m, 5);
    ei_x_encode_tuple_header(&m, 2);
    ei_x_encode_atom(&m, "terminate");
    ei_x_encode_atom(&m, "normal");
    reg_send(&a, "net_kernel", &m);
    ei_x_free(&m);
    int i = reply_to(&a, n, 5, &f), arity;
    char atom[MAXATOMLEN_UTF8] = "";
    CU_ASSERT(i >= 0 && ei_decode_tuple_header(f, &i, &arity) == 0 && ei_decode_atom(f, &i, atom) == 0);
    CU_ASSERT_STRING_EQUAL(atom, "error");
    peer_run(n, 20);
    CU_ASSERT_PTR_NOT_NULL(process_whereis(node_processes(n), "net_kernel", 10));
    CU_ASSERT_PTR_NOT_NULL(process_whereis(node_processes(n), "gen_cnode", 9));
    CU_ASSERT_FATAL(peer_connect(&b, n, "b@127.0.0.1", COOKIE, 0) == 0);
    CU_ASSERT(is_auth_yes(&b, n));
    CU_ASSERT(is_auth_yes(&a, n));
    peer_close(&a);
    peer_close(&b);
    node_destroy(n);
}

/* A counter waiter whose reply (with a large tag) passes its peer's output
 * limit: the connection closes while the counter is waking its waiters.
 * The peer's waiters are dropped after the wake-up, not under it. */
static void test_waiter_reply_that_closes_its_peer(void)
{
    node *n = start_node(600);
    peer a, b;
    CU_ASSERT_FATAL(peer_connect(&a, n, "a@127.0.0.1", COOKIE, 0) == 0);
    CU_ASSERT_FATAL(peer_connect(&b, n, "b@127.0.0.1", COOKIE, 0) == 0);
    peer_drain(&b, n);
    for (int k = 0; k < 2; k++) { /* two waiters from b, each reply over the limit */
        ei_x_buff m;
        call_head(&m, &b, 0, BIG_TAG);
        ei_x_encode_tuple_header(&m, 2);
        ei_x_encode_atom(&m, "wait_for");
        ei_x_encode_long(&m, 1);
        reg_send(&b, "counter", &m);
        ei_x_free(&m);
    }
    peer_run(n, 20);
    cast(&a, "counter", "incr");
    CU_ASSERT(peer_closed(&b, n, 2000));
    CU_ASSERT_EQUAL(call_long(&a, n, "counter", 1, req_get), 1);
    /* b again: served as any peer. */
    peer_close(&b);
    CU_ASSERT_FATAL(peer_connect(&b, n, "b@127.0.0.1", COOKIE, 0) == 0);
    CU_ASSERT_EQUAL(call_long(&b, n, "counter", 2, req_get), 1);
    peer_close(&a);
    peer_close(&b);
    node_destroy(n);
}

/* {start_link, kv, []} whose {ok, Pid} reply passes the caller's output
 * limit: the connection closes while the starter still holds the new
 * server; the link then stops the server (noconnection), after the call. */
static void test_start_link_reply_that_closes_its_peer(void)
{
    node *n = start_node(600);
    peer a, b;
    CU_ASSERT_FATAL(peer_connect(&a, n, "a@127.0.0.1", COOKIE, 0) == 0);
    CU_ASSERT_FATAL(peer_connect(&b, n, "b@127.0.0.1", COOKIE, 0) == 0);
    peer_drain(&b, n);
    size_t before = process_count(node_processes(n));
    ei_x_buff m;
    call_head(&m, &b, 0, BIG_TAG);
    ei_x_encode_tuple_header(&m, 3);
    ei_x_encode_atom(&m, "start_link");
    ei_x_encode_atom(&m, "kv");
    ei_x_encode_empty_list(&m);
    reg_send(&b, "gen_cnode", &m);
    ei_x_free(&m);
    CU_ASSERT(peer_closed(&b, n, 2000));
    peer_run(n, 20);
    CU_ASSERT_EQUAL(process_count(node_processes(n)), before);
    CU_ASSERT_EQUAL(call_long(&a, n, "kv", 3, req_size), 0);
    peer_close(&a);
    peer_close(&b);
    node_destroy(n);
}

/* A peer that vanishes with a waiter and a call the node has not read yet:
 * what it held is let go, nobody else notices. */
static void test_peer_vanishing_mid_call(void)
{
    node *n = start_node(0);
    peer a, b;
    CU_ASSERT_FATAL(peer_connect(&a, n, "a@127.0.0.1", COOKIE, 0) == 0);
    CU_ASSERT_FATAL(peer_connect(&b, n, "b@127.0.0.1", COOKIE, 0) == 0);
    ei_x_buff m;
    call_head(&m, &b, 9, 0);
    ei_x_encode_tuple_header(&m, 2);
    ei_x_encode_atom(&m, "wait_for");
    ei_x_encode_long(&m, 5);
    reg_send(&b, "counter", &m);
    ei_x_free(&m);
    call_head(&m, &b, 10, 0);
    ei_x_encode_atom(&m, "size");
    reg_send(&b, "kv", &m);
    ei_x_free(&m);
    peer_close(&b); /* before the node read any of it */
    peer_run(n, 30);
    for (int k = 0; k < 5; k++)
        cast(&a, "counter", "incr");
    CU_ASSERT_EQUAL(call_long(&a, n, "counter", 4, req_get), 5);
    peer_close(&a);
    node_destroy(n);
}

/* Segments the peer's socket has received so far. */
static unsigned segments_in(const peer *p)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    CU_ASSERT_FATAL(getsockopt(p->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0);
    return ti.tcpi_segs_in;
}

/* A call's acknowledgement leaves with its answer (conn.h): a call written
 * in small pieces, as peer_send writes it, brings back one segment, the
 * answer, not a bare acknowledgement before it. */
static void test_answer_carries_the_acknowledgement(void)
{
    node *n = start_node(0);
    peer p;
    CU_ASSERT_FATAL(peer_connect(&p, n, "acks@127.0.0.1", COOKIE, 0) == 0);
    for (int k = 0; k < 20; k++) /* out of TCP's quick-acknowledgement start */
        call_long(&p, n, "kv", 100 + k, req_size);
    peer_drain(&p, n);
    int one = 0;
    for (int k = 0; k < 50; k++) {
        unsigned before = segments_in(&p);
        CU_ASSERT_EQUAL(call_long(&p, n, "kv", 200 + k, req_size), 0);
        one += segments_in(&p) - before == 1;
    }
    CU_ASSERT(one >= 45); /* a delayed-ACK timer may fire once in a while, on a loaded machine */
    peer_close(&p);
    node_destroy(n);
}

/* Bytes read by peeking are taken out of the socket exactly once: a stream
 * of casts written in pieces of every size, frames split anywhere, with the
 * node taking turns in between, is counted exactly. */
static void test_peeked_stream_is_read_once(void)
{
    enum { CASTS = 3000 };
    node *n = start_node(0);
    peer p;
    CU_ASSERT_FATAL(peer_connect(&p, n, "stream@127.0.0.1", COOKIE, 0) == 0);
    ei_x_buff all, c, m;
    ei_x_new(&all);
    ei_x_new(&c);
    ei_x_encode_tuple_header(&c, 4);
    ei_x_encode_long(&c, DOP_REG_SEND);
    ei_x_append_buf(&c, p.pid, (int)p.pid_len);
    ei_x_encode_atom(&c, "");
    ei_x_encode_atom(&c, "counter");
    ei_x_new(&m);
    ei_x_encode_tuple_header(&m, 2);
    ei_x_encode_atom(&m, "$gen_cast");
    ei_x_encode_atom(&m, "incr");
    char head[6] = {0, 0, 0, 0, 112, (char)131}, v = (char)131;
    put_u32(head, (uint32_t)(2 + c.index + 1 + m.index));
    for (int k = 0; k < CASTS; k++) {
        ei_x_append_buf(&all, head, sizeof head);
        ei_x_append_buf(&all, c.buff, c.index);
        ei_x_append_buf(&all, &v, 1);
        ei_x_append_buf(&all, m.buff, m.index);
    }
    size_t at = 0, piece = 1;
    while (at < (size_t)all.index) {
        size_t len = piece < (size_t)all.index - at ? piece : (size_t)all.index - at;
        CU_ASSERT_FATAL(peer_write(&p, all.buff + at, len) == 0);
        at += len;
        piece = piece * 7 % 997 + 1; /* 1 to 997 bytes, frames split anywhere */
        node_run_once(n, 0);
    }
    CU_ASSERT_EQUAL(call_long(&p, n, "counter", 1, req_get), CASTS);
    ei_x_free(&all);
    ei_x_free(&c);
    ei_x_free(&m);
    peer_close(&p);
    node_destroy(n);
}

/* A call whose reply is held for a peer still shaking hands, nearly as
 * large as the peer's output limit: once up, the peer gets the handshake's
 * last packet and the reply. (What was held counted against the limit, and
 * the first send after it, the release probe, dropped the connection as a
 * peer that does not read, the handshake unfinished.) */
struct midway_call {
    peer *caller, *x;
    node *n;
};

static void call_for_x(void *arg)
{
    struct midway_call *m = arg;
    ei_x_buff x;
    call_head(&x, m->x, 0, BIG_TAG); /* From: x's pid, x still shaking hands */
    ei_x_encode_atom(&x, "size");
    reg_send(m->caller, "kv", &x);
    ei_x_free(&x);
    peer_run(m->n, 30);
}

static void test_what_was_held_for_a_peer_goes_out_when_it_is_up(void)
{
    node *n = start_node(BIG_TAG + 100);
    peer a, x;
    CU_ASSERT_FATAL(peer_connect(&a, n, "a@127.0.0.1", COOKIE, 0) == 0);
    struct midway_call m = {&a, &x, n};
    CU_ASSERT_FATAL(peer_connect_midway(&x, n, "x@127.0.0.1", COOKIE, 0, call_for_x, &m) == 0);
    const char *f;
    size_t len;
    int replies = 0, msg, arity;
    while (peer_recv(&x, n, 300, &f, &len) == 1)
        if (peer_frame_op(f, len, &msg) == DOP_SEND && msg >= 0 &&
            ei_decode_tuple_header(f, &msg, &arity) == 0 && arity == 2)
            replies++; /* {Tag, Size} */
    CU_ASSERT_EQUAL(replies, 1);
    CU_ASSERT_FALSE(peer_closed(&x, n, 50));
    CU_ASSERT(is_auth_yes(&x, n));
    peer_close(&a);
    peer_close(&x);
    node_destroy(n);
}

/* Descriptors this process has open. */
static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ., .. and the directory's own */
}

/* A flood of connections (no cookie needed) is taken a few at a time: a
 * turn accepts 64 at most and goes on; the next turns take the rest, and
 * a real peer still gets in. */
static void test_a_connection_flood_is_taken_a_few_at_a_time(void)
{
    enum { FLOOD = 120 }; /* within the listener's backlog (128) */
    node *n = start_node(0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)node_port(n)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fds[FLOOD];
    for (int i = 0; i < FLOOD; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CU_ASSERT_FATAL(fds[i] >= 0);
        CU_ASSERT_FATAL(connect(fds[i], (struct sockaddr *)&sa, sizeof sa) == 0); /* into the backlog */
    }
    int before = open_fds();
    node_run_once(n, 0);
    int taken = open_fds() - before;
    CU_ASSERT(taken > 0 && taken <= 64);
    for (int turn = 0; turn < 100 && open_fds() - before < FLOOD; turn++)
        node_run_once(n, 10);
    CU_ASSERT_EQUAL(open_fds() - before, FLOOD);
    peer p;
    CU_ASSERT_FATAL(peer_connect(&p, n, "real@127.0.0.1", COOKIE, 0) == 0);
    CU_ASSERT_EQUAL(call_long(&p, n, "counter", 1, req_get), 0);
    peer_close(&p);
    for (int i = 0; i < FLOOD; i++)
        close(fds[i]);
    node_destroy(n);
}

/* The index of established connections by name (node.c): a connection
 * replaced by a newer one of the same name (over TCP, then through
 * node_attach), closed and freed, is never found again: a reply to a pid of
 * its node after it went is routed as to a node not connected (ASan sees a
 * stale entry). With the index dropped for want of memory (a put that
 * fails), the same holds, and it is made again at the next connection. */
int fail_put_of_b;
int __real_bytes_map_put(void *m, const void *key, size_t len, void *value);
int __wrap_bytes_map_put(void *m, const void *key, size_t len, void *value);
int __wrap_bytes_map_put(void *m, const void *key, size_t len, void *value)
{
    if (fail_put_of_b && len == 11 && memcmp(key, "b@127.0.0.1", 11) == 0) {
        fail_put_of_b = 0;
        return -1;
    }
    return __real_bytes_map_put(m, key, len, value);
}

/* From c, a call to counter whose reply goes to a pid of node `name`:
 * the reply is routed by conn_for(name). */
static void rev_call_for(peer *c, node *n, const char *name)
{
    ei_x_buff m;
    erlang_pid pid;
    memset(&pid, 0, sizeof pid);
    strcpy(pid.node, name);
    pid.num = 7;
    pid.creation = 1;
    ei_x_new(&m);
    ei_x_encode_tuple_header(&m, 3);
    ei_x_encode_atom(&m, "$gen_call");
    ei_x_encode_tuple_header(&m, 2);
    ei_x_encode_pid(&m, &pid);
    ei_x_encode_long(&m, 5);
    ei_x_encode_atom(&m, "get");
    reg_send(c, "counter", &m);
    ei_x_free(&m);
    peer_run(n, 30);
}

static peer *rev_other;
static void rev_cycle(node *n, const char *name, int base)
{
    peer a1, a2, a3;
    CU_ASSERT_FATAL(peer_connect(&a1, n, name, COOKIE, 0) == 0);
    CU_ASSERT_EQUAL(call_long(&a1, n, "counter", base + 1, req_get), 0);
    CU_ASSERT_FATAL(peer_connect(&a2, n, name, COOKIE, 0) == 0); /* replaces a1 */
    CU_ASSERT(peer_closed(&a1, n, 2000));
    peer_run(n, 20); /* a1 reaped */
    CU_ASSERT_EQUAL(call_long(&a2, n, "counter", base + 2, req_get), 0);
    peer_close(&a1);
    CU_ASSERT_FATAL(peer_attach(&a3, n, name) == 0); /* replaces a2 within node_attach */
    CU_ASSERT(peer_closed(&a2, n, 2000));
    peer_run(n, 20);
    CU_ASSERT_EQUAL(call_long(&a3, n, "counter", base + 3, req_get), 0);
    peer_close(&a2);
    peer_close(&a3);
    peer_run(n, 50);
    rev_call_for(rev_other, n, name); /* a stale entry would be used here */
    /* gone: a call from a fresh connection after it is closed */
    CU_ASSERT_FATAL(peer_connect(&a1, n, name, COOKIE, 0) == 0);
    CU_ASSERT_EQUAL(call_long(&a1, n, "counter", base + 4, req_get), 0);
    peer_close(&a1);
    peer_run(n, 50);
}

static void test_connections_replaced_are_not_found(void)
{
    node *n = start_node(0);
    peer c;
    CU_ASSERT_FATAL(peer_connect(&c, n, "c@127.0.0.1", COOKIE, 0) == 0);
    rev_other = &c;
    for (int i = 0; i < 3; i++)
        rev_cycle(n, "a@127.0.0.1", 10 * i);
    peer_close(&c);
    node_destroy(n);
}

static void test_connections_found_without_the_index(void)
{
    node *n = start_node(0);
    peer c;
    CU_ASSERT_FATAL(peer_connect(&c, n, "c@127.0.0.1", COOKIE, 0) == 0);
    rev_other = &c;
    fail_put_of_b = 1;
    for (int i = 0; i < 3; i++)
        rev_cycle(n, "b@127.0.0.1", 10 * i);
    CU_ASSERT_EQUAL(fail_put_of_b, 0);
    CU_ASSERT_EQUAL(call_long(&c, n, "counter", 99, req_get), 0);
    peer_close(&c);
    node_destroy(n);
}

void unit_suite_node(void)
{
    CU_pSuite s = CU_add_suite("node", NULL, NULL);
    CU_add_test(s, "system processes outlive exit signals", test_system_processes_outlive_exit_signals);
    CU_add_test(s, "a connection flood is taken a few at a time", test_a_connection_flood_is_taken_a_few_at_a_time);
    CU_add_test(s, "what was held for a peer goes out when it is up", test_what_was_held_for_a_peer_goes_out_when_it_is_up);
    CU_add_test(s, "a waiter's reply that closes its peer", test_waiter_reply_that_closes_its_peer);
    CU_add_test(s, "a start_link reply that closes its peer", test_start_link_reply_that_closes_its_peer);
    CU_add_test(s, "a peer vanishing mid-call", test_peer_vanishing_mid_call);
    CU_add_test(s, "an answer carries the acknowledgement", test_answer_carries_the_acknowledgement);
    CU_add_test(s, "a peeked stream is read once", test_peeked_stream_is_read_once);
    CU_add_test(s, "connections replaced are not found", test_connections_replaced_are_not_found);
    CU_add_test(s, "connections found without the index", test_connections_found_without_the_index);
}

/* test_dispatch.c: frames as a BEAM node sends them, fed to the distribution
 * layer, through the process table and the gen_server engine to the KeyValue
 * and net_kernel callbacks; the replies are captured as the frames the node
 * would write and decoded again. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "gen_server.h"
#include "kv.h"
#include "net_kernel.h"
#include "unit.h"
#include "wire.h"


static process_table *procs;
static process *kvp;
size_t fail_over; /* __wrap_realloc, below; unit.h */

static int setup(void)
{
    static kv_options kvo = {.max_depth = 1000};
    const char *why;
    term_view none = {NULL, 0};
    procs = process_table_create(NODE, CREATION, &wire_router);
    gen_server_start(procs, &gcn_module_net_kernel, NULL, none, "net_kernel", &why);
    kvp = gen_server_start(procs, &gcn_module_kv, &kvo, none, "kv", &why);
    return procs && kvp ? 0 : 1;
}

static int teardown(void)
{
    fail_over = 0; /* (a test that failed half way may have left it set) */
    process_table_destroy(procs);
    wire_reset();
    return 0;
}




static void reg_send_ctrl(ei_x_buff *c, const erlang_pid *from, const char *to)
{
    ei_x_new_with_version(c);
    ei_x_encode_tuple_header(c, 4);
    ei_x_encode_long(c, DOP_REG_SEND);
    ei_x_encode_pid(c, from);
    ei_x_encode_atom(c, "");
    ei_x_encode_atom(c, to);
}

/* {'$gen_call', {From, Tag}, Req}: Tag and Req are appended by the caller. */
static void gen_call_head(ei_x_buff *m, const erlang_pid *from)
{
    ei_x_new_with_version(m);
    ei_x_encode_tuple_header(m, 3);
    ei_x_encode_atom(m, "$gen_call");
    ei_x_encode_tuple_header(m, 2);
    ei_x_encode_pid(m, from);
}

/* The reply on the wire must be {Tag, Reply} with Tag's bytes as sent; returns Reply's index. */
static int expect_reply(const char *tag, int taglen, const char **buf)
{
    int ctrl, msg, arity;
    long op = next_frame(buf, &ctrl, &msg);
    CU_ASSERT_TRUE(op == DOP_SEND || op == DOP_ALIAS_SEND);
    CU_ASSERT_FATAL(msg > 0);
    CU_ASSERT_EQUAL(ei_decode_tuple_header(*buf, &msg, &arity), 0);
    CU_ASSERT_EQUAL(arity, 2);
    CU_ASSERT_EQUAL(memcmp(*buf + msg, tag, (size_t)taglen), 0);
    return msg + taglen;
}

static void call(const erlang_pid *from, ei_x_buff *tag, void (*req)(ei_x_buff *))
{
    ei_x_buff c, m;
    reg_send_ctrl(&c, from, "kv");
    gen_call_head(&m, from);
    ei_x_append_buf(&m, tag->buff, tag->index);
    req(&m);
    CU_ASSERT_EQUAL(feed(procs, &c, &m), DIST_OK);
    ei_x_free(&c);
    ei_x_free(&m);
}

static void tag_ref(ei_x_buff *t, unsigned n)
{
    erlang_ref r = ref(n);
    ei_x_new(t);
    ei_x_encode_ref(t, &r);
}

static void req_put_foo(ei_x_buff *m)
{
    ei_x_encode_tuple_header(m, 3);
    ei_x_encode_atom(m, "put");
    ei_x_encode_atom(m, "foo");
    ei_x_encode_binary(m, "bar", 3);
}
static void req_get_foo(ei_x_buff *m)
{
    ei_x_encode_tuple_header(m, 2);
    ei_x_encode_atom(m, "get");
    ei_x_encode_atom(m, "foo");
}
/* The same key, foo, as a latin1 ATOM_EXT instead of ei's UTF-8 atom. */
static void req_get_foo_latin1(ei_x_buff *m)
{
    static const char foo[] = {100, 0, 3, 'f', 'o', 'o'};
    ei_x_encode_tuple_header(m, 2);
    ei_x_encode_atom(m, "get");
    ei_x_append_buf(m, foo, sizeof foo);
}
static void req_get_missing(ei_x_buff *m)
{
    ei_x_encode_tuple_header(m, 2);
    ei_x_encode_atom(m, "get");
    ei_x_encode_long(m, 1);
}
static void req_bogus(ei_x_buff *m) { ei_x_encode_atom(m, "bogus"); }

static void test_call_put_then_get_by_name(void)
{
    erlang_pid me = caller(1);
    ei_x_buff tag;
    const char *buf;
    tag_ref(&tag, 1);
    call(&me, &tag, req_put_foo);
    int i = expect_reply(tag.buff, tag.index, &buf);
    char atom[MAXATOMLEN];
    CU_ASSERT(ei_decode_atom(buf, &i, atom) == 0 && strcmp(atom, "ok") == 0);
    drop_frame();
    call(&me, &tag, req_get_foo);
    i = expect_reply(tag.buff, tag.index, &buf);
    char bin[8];
    long len;
    CU_ASSERT(ei_decode_binary(buf, &i, bin, &len) == 0 && len == 3 && memcmp(bin, "bar", 3) == 0);
    drop_frame();
    call(&me, &tag, req_get_foo_latin1);
    i = expect_reply(tag.buff, tag.index, &buf);
    CU_ASSERT(ei_decode_binary(buf, &i, bin, &len) == 0 && len == 3);
    drop_frame();
    call(&me, &tag, req_get_missing);
    i = expect_reply(tag.buff, tag.index, &buf);
    CU_ASSERT(ei_decode_atom(buf, &i, atom) == 0 && strcmp(atom, "nil") == 0);
    drop_frame();
    ei_x_free(&tag);
}

static void test_every_tag_form_is_copied_back(void)
{
    erlang_pid me = caller(2);
    erlang_ref r = ref(9);
    ei_x_buff tags[3];
    /* {Ref, Node} as OTP 25's multi_call sends, [[alias|Ref]|x] as OTP 27's does
     * (its reply goes to the alias), and a plain integer */
    ei_x_new(&tags[0]);
    ei_x_encode_tuple_header(&tags[0], 2);
    ei_x_encode_ref(&tags[0], &r);
    ei_x_encode_atom(&tags[0], "t@127.0.0.1");
    ei_x_new(&tags[1]);
    ei_x_encode_list_header(&tags[1], 1);
    ei_x_encode_list_header(&tags[1], 1);
    ei_x_encode_atom(&tags[1], "alias");
    ei_x_encode_ref(&tags[1], &r);
    ei_x_encode_atom(&tags[1], "x");
    ei_x_new(&tags[2]);
    ei_x_encode_long(&tags[2], 123456789);
    for (int k = 0; k < 3; k++) {
        const char *buf;
        call(&me, &tags[k], req_get_missing);
        int ctrl, msg;
        CU_ASSERT_EQUAL(next_frame(&buf, &ctrl, &msg), k == 1 ? DOP_ALIAS_SEND : DOP_SEND);
        expect_reply(tags[k].buff, tags[k].index, &buf);
        drop_frame();
        ei_x_free(&tags[k]);
    }
}

static void test_alias_tag_replies_to_the_alias(void)
{
    erlang_pid me = caller(3);
    erlang_ref r = ref(77);
    ei_x_buff tag, alias;
    const char *buf;
    int ctrl, msg;
    ei_x_new(&tag);
    ei_x_encode_list_header(&tag, 1);
    ei_x_encode_atom(&tag, "alias");
    ei_x_encode_ref(&tag, &r);
    ei_x_new(&alias);
    ei_x_encode_ref(&alias, &r);
    call(&me, &tag, req_get_missing);
    CU_ASSERT_EQUAL(next_frame(&buf, &ctrl, &msg), DOP_ALIAS_SEND);
    /* {33, FromPid, Alias}: From is the kv server, Alias the ref in the tag */
    term_view kvpid = process_pid(kvp);
    CU_ASSERT_EQUAL(memcmp(buf + ctrl, kvpid.ptr, kvpid.len), 0);
    CU_ASSERT_EQUAL(memcmp(buf + ctrl + kvpid.len, alias.buff, (size_t)alias.index), 0);
    expect_reply(tag.buff, tag.index, &buf);
    drop_frame();
    ei_x_free(&tag);
    ei_x_free(&alias);
}

static void test_unknown_call_gets_error_and_server_goes_on(void)
{
    erlang_pid me = caller(4);
    ei_x_buff tag;
    const char *buf;
    char atom[MAXATOMLEN];
    int arity;
    tag_ref(&tag, 4);
    call(&me, &tag, req_bogus);
    int i = expect_reply(tag.buff, tag.index, &buf);
    CU_ASSERT(ei_decode_tuple_header(buf, &i, &arity) == 0 && arity == 2);
    CU_ASSERT(ei_decode_atom(buf, &i, atom) == 0 && strcmp(atom, "error") == 0);
    CU_ASSERT(ei_decode_tuple_header(buf, &i, &arity) == 0 && arity == 2);
    CU_ASSERT(ei_decode_atom(buf, &i, atom) == 0 && strcmp(atom, "unknown_call") == 0);
    CU_ASSERT(ei_decode_atom(buf, &i, atom) == 0 && strcmp(atom, "bogus") == 0);
    drop_frame();
    call(&me, &tag, req_get_foo);
    expect_reply(tag.buff, tag.index, &buf);
    drop_frame();
    ei_x_free(&tag);
}

/* realloc, wrapped (Makefile, UNIT_WRAP): one for more than fail_over bytes
 * fails while fail_over is set, as when memory runs short. */
void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n)
{
    if (fail_over && n > fail_over) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_realloc(p, n);
}

enum { BIG_VALUE = 3 << 19 }; /* 1.5 MiB */
static int big_key;
static void req_put_big(ei_x_buff *m)
{
    static char value[BIG_VALUE];
    ei_x_encode_tuple_header(m, 3);
    ei_x_encode_atom(m, "put");
    ei_x_encode_long(m, big_key);
    ei_x_encode_binary(m, value, sizeof value);
}
static void req_get_big(ei_x_buff *m)
{
    ei_x_encode_tuple_header(m, 2);
    ei_x_encode_atom(m, "get");
    ei_x_encode_long(m, big_key);
}
static void req_keys(ei_x_buff *m) { ei_x_encode_atom(m, "keys"); }
static void req_size(ei_x_buff *m) { ei_x_encode_atom(m, "size"); }

/* Memory short for a large reply: :keys (which reserved room for the whole
 * store, values included) still answers, a get of a large value answers
 * {error, out_of_memory}, and the server goes on with every entry (the
 * empty reply stopped it, bad_return_value: a memory-only store lost). */
static void test_a_reply_out_of_memory_costs_only_itself(void)
{
    erlang_pid me = caller(6);
    ei_x_buff tag;
    const char *buf;
    char atom[MAXATOMLEN];
    int arity, i;
    long n;
    tag_ref(&tag, 6);
    for (big_key = 1; big_key <= 3; big_key++) {
        call(&me, &tag, req_put_big);
        drop_frame();
    }
    fail_over = 1 << 20;
    call(&me, &tag, req_keys);
    i = expect_reply(tag.buff, tag.index, &buf);
    CU_ASSERT(ei_decode_list_header(buf, &i, &arity) == 0 && arity == 4); /* foo and the three */
    drop_frame();
    big_key = 2;
    call(&me, &tag, req_get_big);
    i = expect_reply(tag.buff, tag.index, &buf);
    CU_ASSERT(ei_decode_tuple_header(buf, &i, &arity) == 0 && arity == 2);
    CU_ASSERT(ei_decode_atom(buf, &i, atom) == 0 && strcmp(atom, "error") == 0);
    CU_ASSERT(ei_decode_atom(buf, &i, atom) == 0 && strcmp(atom, "out_of_memory") == 0);
    drop_frame();
    fail_over = 0;
    call(&me, &tag, req_size);
    i = expect_reply(tag.buff, tag.index, &buf);
    CU_ASSERT(ei_decode_long(buf, &i, &n) == 0 && n == 4);
    drop_frame();
    call(&me, &tag, req_get_big);
    i = expect_reply(tag.buff, tag.index, &buf);
    long len = 0;
    CU_ASSERT(ei_decode_binary(buf, &i, NULL, &len) == 0 && len == BIG_VALUE);
    drop_frame();
    ei_x_free(&tag);
}

static void monitor_ctrl(ei_x_buff *c, long op, const erlang_pid *from, const char *name, unsigned n)
{
    erlang_ref r = ref(n);
    ei_x_new_with_version(c);
    ei_x_encode_tuple_header(c, 4);
    ei_x_encode_long(c, op);
    ei_x_encode_pid(c, from);
    ei_x_encode_atom(c, name);
    ei_x_encode_ref(c, &r);
}

static void test_monitors(void)
{
    erlang_pid me = caller(5);
    ei_x_buff c;
    const char *buf;
    int ctrl, msg;
    monitor_ctrl(&c, DOP_MONITOR_P, &me, "kv", 50);
    CU_ASSERT_EQUAL(feed(procs, &c, NULL), DIST_OK);
    ei_x_free(&c);
    CU_ASSERT_EQUAL(buffer_len(&wire), 0);
    CU_ASSERT_EQUAL(process_monitor_count(kvp), 1);
    monitor_ctrl(&c, DOP_DEMONITOR_P, &me, "kv", 50);
    CU_ASSERT_EQUAL(feed(procs, &c, NULL), DIST_OK);
    ei_x_free(&c);
    CU_ASSERT_EQUAL(process_monitor_count(kvp), 0);
    /* a monitor of a name nobody has: DOWN noproc at once */
    monitor_ctrl(&c, DOP_MONITOR_P, &me, "nosuch", 51);
    CU_ASSERT_EQUAL(feed(procs, &c, NULL), DIST_OK);
    ei_x_free(&c);
    CU_ASSERT_EQUAL(next_frame(&buf, &ctrl, &msg), DOP_MONITOR_P_EXIT);
    char atom[MAXATOMLEN];
    erlang_pid watcher;
    erlang_ref r;
    CU_ASSERT(ei_decode_atom(buf, &ctrl, atom) == 0 && strcmp(atom, "nosuch") == 0);
    CU_ASSERT(ei_decode_pid(buf, &ctrl, &watcher) == 0 && watcher.num == 5);
    CU_ASSERT(ei_decode_ref(buf, &ctrl, &r) == 0 && r.n[0] == 51);
    CU_ASSERT(ei_decode_atom(buf, &ctrl, atom) == 0 && strcmp(atom, "noproc") == 0);
    drop_frame();
    /* monitors of a node that went away are forgotten */
    monitor_ctrl(&c, DOP_MONITOR_P, &me, "kv", 52);
    feed(procs, &c, NULL);
    ei_x_free(&c);
    CU_ASSERT_EQUAL(process_monitor_count(kvp), 1);
    process_forget_node(procs, "t@127.0.0.1", strlen("t@127.0.0.1"));
    CU_ASSERT_EQUAL(process_monitor_count(kvp), 0);
}

static void test_ping_is_answered_yes(void)
{
    erlang_pid me = caller(6);
    ei_x_buff c, m, tag;
    const char *buf;
    char atom[MAXATOMLEN];
    tag_ref(&tag, 6);
    reg_send_ctrl(&c, &me, "net_kernel");
    gen_call_head(&m, &me);
    ei_x_append_buf(&m, tag.buff, tag.index);
    ei_x_encode_tuple_header(&m, 2);
    ei_x_encode_atom(&m, "is_auth");
    ei_x_encode_atom(&m, "t@127.0.0.1");
    CU_ASSERT_EQUAL(feed(procs, &c, &m), DIST_OK);
    int i = expect_reply(tag.buff, tag.index, &buf);
    CU_ASSERT(ei_decode_atom(buf, &i, atom) == 0 && strcmp(atom, "yes") == 0);
    drop_frame();
    ei_x_free(&c);
    ei_x_free(&m);
    ei_x_free(&tag);
}

/* The reply to call ref(tag) at the head of the wire is {error, {bad_request, why}}. */
static void expect_bad_request(unsigned tag, const char *why)
{
    const char *b;
    int at = wire_reply(tag, &b), ar;
    char a1[MAXATOMLEN];
    CU_ASSERT(ei_decode_tuple_header(b, &at, &ar) == 0 && ei_decode_atom(b, &at, a1) == 0 &&
              strcmp(a1, "error") == 0);
    CU_ASSERT(ei_decode_tuple_header(b, &at, &ar) == 0 && ei_decode_atom(b, &at, a1) == 0 &&
              strcmp(a1, "bad_request") == 0);
    CU_ASSERT(ei_decode_atom(b, &at, a1) == 0 && strcmp(a1, why) == 0);
    drop_frame();
}

static void test_bad_frames_are_refused_and_data_kept(void)
{
    erlang_pid me = caller(7);
    char why[128];
    static const char junk[] = {112, 1, 2, 3};
    CU_ASSERT_EQUAL(dist_receive(procs, PEER, strlen(PEER), junk, sizeof junk, 1000, NULL, why, sizeof why), DIST_EPROTO);
    static const char atom_cache[] = {68, 0};
    CU_ASSERT_EQUAL(dist_receive(procs, PEER, strlen(PEER), atom_cache, sizeof atom_cache, 1000, NULL, why, sizeof why), DIST_EPROTO);
    /* a cast whose message is cut short */
    ei_x_buff c, m, f;
    reg_send_ctrl(&c, &me, "kv");
    ei_x_new_with_version(&m);
    ei_x_encode_tuple_header(&m, 2);
    ei_x_encode_atom(&m, "$gen_cast");
    req_put_foo(&m);
    ei_x_new(&f);
    ei_x_append_buf(&f, "p", 1);
    ei_x_append_buf(&f, c.buff, c.index);
    ei_x_append_buf(&f, m.buff, m.index - 2);
    CU_ASSERT_EQUAL(dist_receive(procs, PEER, strlen(PEER), f.buff, (size_t)f.index, 1000, NULL, why, sizeof why), DIST_EPROTO);
    /* a message nested deeper than the limit is dropped, not recursed into */
    ei_x_free(&m);
    ei_x_new_with_version(&m);
    for (int k = 0; k < 5000; k++)
        ei_x_encode_tuple_header(&m, 1);
    ei_x_encode_atom(&m, "deep");
    CU_ASSERT_EQUAL(feed(procs, &c, &m), DIST_DROPPED); /* refused; the node logs it */
    CU_ASSERT_EQUAL(buffer_len(&wire), 0);        /* not a call: nobody to answer */
    /* ... but a call that deep gets an error reply instead of a timeout */
    ei_x_buff deep;
    wire_request(&deep, "$gen_call", &me, 31);
    for (int k = 0; k < 5000; k++)
        ei_x_encode_list_header(&deep, 1);
    ei_x_encode_empty_list(&deep);
    CU_ASSERT_EQUAL(feed(procs, &c, &deep), DIST_DROPPED);
    expect_bad_request(31, "too_deep");
    ei_x_free(&deep);
    /* a call putting #{0.0 => a, -0.0 => b}, which OTP 27 sends and OTP 25
     * and 26 cannot read (a repeated key to them): refused as unsupported,
     * never stored for an older node to read and lose its connection over */
    ei_x_buff zeros;
    wire_request(&zeros, "$gen_call", &me, 32);
    ei_x_encode_tuple_header(&zeros, 3);
    ei_x_encode_atom(&zeros, "put");
    ei_x_encode_atom(&zeros, "zeros");
    ei_x_encode_map_header(&zeros, 2);
    ei_x_encode_double(&zeros, 0.0);
    ei_x_encode_atom(&zeros, "a");
    ei_x_encode_double(&zeros, -0.0);
    ei_x_encode_atom(&zeros, "b");
    CU_ASSERT_EQUAL(feed(procs, &c, &zeros), DIST_DROPPED);
    expect_bad_request(32, "unsupported");
    ei_x_free(&zeros);
    /* a message to nobody is dropped */
    ei_x_buff c2;
    reg_send_ctrl(&c2, &me, "nobody");
    CU_ASSERT_EQUAL(feed(procs, &c2, &m), DIST_DROPPED);
    CU_ASSERT_EQUAL(buffer_len(&wire), 0);
    /* and foo is still there */
    ei_x_buff tag;
    const char *buf;
    tag_ref(&tag, 8);
    call(&me, &tag, req_get_foo);
    int i = expect_reply(tag.buff, tag.index, &buf);
    char bin[8];
    long len;
    CU_ASSERT(ei_decode_binary(buf, &i, bin, &len) == 0 && len == 3 && memcmp(bin, "bar", 3) == 0);
    drop_frame();
    ei_x_free(&c);
    ei_x_free(&c2);
    ei_x_free(&m);
    ei_x_free(&f);
    ei_x_free(&tag);
}

/* Links, monitors and exit signals must come from the peer's own
 * processes (ERTS refuses the others as invalid): one naming a pid of
 * another node would never be forgotten when this peer goes. */
static void test_signals_from_another_nodes_pid_are_refused(void)
{
    erlang_pid ghost = caller(3);
    strcpy(ghost.node, "ghost@127.0.0.1");
    process *kv = process_whereis(procs, "kv", 2);
    size_t monitors = process_monitor_count(kv), links = process_link_count(kv);
    ei_x_buff pid, kvpid, name, r;
    ei_x_new(&pid);
    ei_x_encode_pid(&pid, &ghost);
    ei_x_new(&kvpid);
    ei_x_append_buf(&kvpid, process_pid(kv).ptr, (int)process_pid(kv).len);
    ei_x_new(&name);
    ei_x_encode_atom(&name, "kv");
    erlang_ref ref1 = ref(77);
    ei_x_new(&r);
    ei_x_encode_ref(&r, &ref1);
    term_view g = {pid.buff, (size_t)pid.index}, k = {kvpid.buff, (size_t)kvpid.index},
              n = {name.buff, (size_t)name.index}, rv = {r.buff, (size_t)r.index};
    CU_ASSERT_EQUAL(wire_control(procs, DOP_MONITOR_P, 3, (term_view[]){g, n, rv}), DIST_EPROTO);
    CU_ASSERT_EQUAL(wire_control(procs, DOP_LINK, 2, (term_view[]){g, k}), DIST_EPROTO);
    CU_ASSERT_EQUAL(wire_control(procs, DOP_EXIT2, 3, (term_view[]){g, k, n}), DIST_EPROTO);
    CU_ASSERT_EQUAL(process_monitor_count(kv), monitors);
    CU_ASSERT_EQUAL(process_link_count(kv), links);
    CU_ASSERT_PTR_EQUAL(process_whereis(procs, "kv", 2), kv);
    ei_x_free(&pid);
    ei_x_free(&kvpid);
    ei_x_free(&name);
    ei_x_free(&r);
}

/* A frame over --max-message, of which only its head is here (the node drains
 * the rest unread): a call gets {error, {bad_request, too_large}} and the
 * server goes on; a head whose control message is cut, or that is not a
 * message, cannot be trusted. */
static void test_oversized_heads(void)
{
    erlang_pid me = caller(20);
    ei_x_buff c, m, f;
    reg_send_ctrl(&c, &me, "kv");
    wire_request(&m, "$gen_call", &me, 41);
    /* {put, big, <<1 MB>>}: the head stops inside the binary */
    ei_x_encode_tuple_header(&m, 3);
    ei_x_encode_atom(&m, "put");
    ei_x_encode_atom(&m, "big");
    static char chunk[4096];
    ei_x_encode_binary(&m, chunk, sizeof chunk);
    ei_x_new(&f);
    ei_x_append_buf(&f, "p", 1);
    ei_x_append_buf(&f, c.buff, c.index);
    ei_x_append_buf(&f, m.buff, m.index);
    char why[256];
    size_t head = (size_t)f.index - 2000, len = 1 << 20;
    CU_ASSERT_EQUAL(dist_refuse_oversized(procs, f.buff, head, len, 100000, NULL, why, sizeof why), DIST_DROPPED);
    CU_ASSERT(strstr(why, "1048576 bytes") != NULL && strstr(why, "refused") != NULL);
    expect_bad_request(41, "too_large");
    /* A cast: dropped, nobody to answer. */
    ei_x_free(&m);
    ei_x_new_with_version(&m);
    ei_x_encode_tuple_header(&m, 2);
    ei_x_encode_atom(&m, "$gen_cast");
    ei_x_encode_binary(&m, chunk, sizeof chunk);
    f.index = 0;
    ei_x_append_buf(&f, "p", 1);
    ei_x_append_buf(&f, c.buff, c.index);
    ei_x_append_buf(&f, m.buff, m.index);
    CU_ASSERT_EQUAL(dist_refuse_oversized(procs, f.buff, 100, len, 100000, NULL, why, sizeof why), DIST_DROPPED);
    CU_ASSERT_EQUAL(buffer_len(&wire), 0);
    /* Cut inside the control message, or not a message at all: not trusted. */
    CU_ASSERT_EQUAL(dist_refuse_oversized(procs, f.buff, 12, len, 100000, NULL, why, sizeof why), DIST_EPROTO);
    f.buff[0] = 'q';
    CU_ASSERT_EQUAL(dist_refuse_oversized(procs, f.buff, 100, len, 100000, NULL, why, sizeof why), DIST_EPROTO);
    CU_ASSERT_EQUAL(dist_refuse_oversized(procs, f.buff, 0, len, 100000, NULL, why, sizeof why), DIST_EPROTO);
    ei_x_free(&c);
    ei_x_free(&m);
    ei_x_free(&f);
}

void unit_suite_gen_server(void)
{
    CU_pSuite s = CU_add_suite("dispatch", setup, teardown);
    CU_add_test(s, "call put then get by name", test_call_put_then_get_by_name);
    CU_add_test(s, "every tag form is copied back", test_every_tag_form_is_copied_back);
    CU_add_test(s, "alias tag replies to the alias", test_alias_tag_replies_to_the_alias);
    CU_add_test(s, "unknown call gets an error, server goes on",
                test_unknown_call_gets_error_and_server_goes_on);
    CU_add_test(s, "monitors", test_monitors);
    CU_add_test(s, "a reply out of memory costs only itself", test_a_reply_out_of_memory_costs_only_itself);
    CU_add_test(s, "ping is answered yes", test_ping_is_answered_yes);
    CU_add_test(s, "bad frames are refused and data kept", test_bad_frames_are_refused_and_data_kept);
    CU_add_test(s, "the head of a frame over --max-message", test_oversized_heads);
    CU_add_test(s, "signals from another node's pid are refused", test_signals_from_another_nodes_pid_are_refused);
}

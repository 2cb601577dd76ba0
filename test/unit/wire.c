/* wire.c: a capturing router and frame helpers for the unit tests; see wire.h. */
#include "wire.h"

#include <string.h>

#include <CUnit/CUnit.h>

buffer wire;

static int cap_send(void *ctx, term_view from, term_view to, term_view msg)
{
    (void)ctx; (void)from;
    return dist_encode_send(&wire, to, msg);
}
static int cap_alias(void *ctx, term_view from, term_view alias, term_view msg)
{
    (void)ctx;
    return dist_encode_alias_send(&wire, from, alias, msg);
}
static int cap_down(void *ctx, term_view watched, term_view watcher, term_view ref, term_view reason)
{
    (void)ctx;
    return dist_encode_monitor_exit(&wire, watched, watcher, ref, reason);
}
static int cap_link(void *ctx, term_view from, term_view to)
{
    (void)ctx;
    return dist_encode_link(&wire, from, to);
}
static int cap_exit(void *ctx, term_view from, term_view to, term_view reason)
{
    (void)ctx;
    return dist_encode_exit(&wire, from, to, reason);
}
static int cap_unlink_ack(void *ctx, term_view id, term_view from, term_view to)
{
    (void)ctx;
    return dist_encode_unlink_ack(&wire, id, from, to);
}
static int release_25(void *ctx, term_view pid)
{
    (void)ctx; (void)pid;
    return 25;
}

static int cap_reg_send(void *ctx, term_view from, term_view name, term_view node, term_view msg)
{
    (void)ctx; (void)node;
    return dist_encode_reg_send(&wire, from, name, msg);
}
static int cap_unlink(void *ctx, term_view id, term_view from, term_view to)
{
    (void)ctx;
    return dist_encode_unlink_id(&wire, id, from, to);
}

static int cap_monitor(void *ctx, term_view from, term_view to, term_view ref)
{
    (void)ctx;
    return dist_encode_monitor(&wire, from, to, ref);
}
static int cap_demonitor(void *ctx, term_view from, term_view to, term_view ref)
{
    (void)ctx;
    return dist_encode_demonitor(&wire, from, to, ref);
}

const process_router wire_router = {.send = cap_send, .send_alias = cap_alias, .monitor_exit = cap_down,
                                    .link = cap_link, .exit = cap_exit, .unlink_ack = cap_unlink_ack,
                                    .release = release_25, .reg_send = cap_reg_send, .unlink = cap_unlink,
                                    .monitor = cap_monitor, .demonitor = cap_demonitor};

long next_frame(const char **buf, int *ctrl, int *msg)
{
    CU_ASSERT_FATAL(buffer_len(&wire) >= 4);
    const char *f = buffer_head(&wire);
    size_t len = get_u32(f);
    int i = 2, arity; /* past 'p' and 131 */
    long op;
    *buf = f + 4;
    ei_decode_tuple_header(*buf, &i, &arity);
    ei_decode_long(*buf, &i, &op);
    *ctrl = i;
    for (int k = 1; k < arity; k++)
        ei_skip_term(*buf, &i);
    *msg = (size_t)i < len ? i + 1 : -1;
    return op;
}

void drop_frame(void) { buffer_consume(&wire, 4 + get_u32(buffer_head(&wire))); }

void wire_reset(void) { buffer_free(&wire); }

erlang_pid caller(unsigned num)
{
    erlang_pid p;
    memset(&p, 0, sizeof p);
    strcpy(p.node, PEER);
    p.num = num;
    p.creation = 7;
    return p;
}

erlang_ref ref(unsigned n)
{
    erlang_ref r;
    memset(&r, 0, sizeof r);
    strcpy(r.node, PEER);
    r.len = 3;
    r.n[0] = n; r.n[1] = 2; r.n[2] = 3;
    r.creation = 7;
    return r;
}

enum dist_result feed(process_table *t, ei_x_buff *ctrl, ei_x_buff *msg)
{
    ei_x_buff f;
    ei_x_new(&f);
    char p = 112;
    ei_x_append_buf(&f, &p, 1);
    ei_x_append_buf(&f, ctrl->buff, ctrl->index);
    if (msg)
        ei_x_append_buf(&f, msg->buff, msg->index);
    char why[128];
    /* One connection's memory for every test, as a peer's lasts across its
     * frames: frames of a shape seen before take the memo's path (and the
     * sanitizer build checks each of those whole as well). */
    static dist_seen seen;
    enum dist_result r = dist_receive(t, PEER, strlen(PEER), f.buff, (size_t)f.index, 1000, &seen, why, sizeof why);
    ei_x_free(&f);
    process_table_settle(t); /* as the node does at the end of the turn */
    return r;
}

enum dist_result wire_send(process_table *t, const erlang_pid *from, const char *to_name,
                           term_view to_pid, ei_x_buff *msg)
{
    ei_x_buff c;
    ei_x_new_with_version(&c);
    if (to_name) {
        ei_x_encode_tuple_header(&c, 4);
        ei_x_encode_long(&c, DOP_REG_SEND);
        ei_x_encode_pid(&c, from);
        ei_x_encode_atom(&c, "");
        ei_x_encode_atom(&c, to_name);
    } else {
        ei_x_encode_tuple_header(&c, 3);
        ei_x_encode_long(&c, DOP_SEND);
        ei_x_encode_atom(&c, "");
        ei_x_append_buf(&c, to_pid.ptr, (int)to_pid.len);
    }
    enum dist_result r = feed(t, &c, msg);
    ei_x_free(&c);
    return r;
}

void wire_request(ei_x_buff *m, const char *label, const erlang_pid *from, unsigned tag)
{
    erlang_ref r = ref(tag);
    ei_x_new_with_version(m);
    ei_x_encode_tuple_header(m, 3);
    ei_x_encode_atom(m, label);
    ei_x_encode_tuple_header(m, 2);
    ei_x_encode_pid(m, from);
    ei_x_encode_ref(m, &r);
}

enum dist_result wire_control(process_table *t, long op, int n, const term_view *parts)
{
    ei_x_buff c;
    ei_x_new_with_version(&c);
    ei_x_encode_tuple_header(&c, n + 1);
    ei_x_encode_long(&c, op);
    for (int i = 0; i < n; i++)
        ei_x_append_buf(&c, parts[i].ptr, (int)parts[i].len);
    enum dist_result r = feed(t, &c, NULL);
    ei_x_free(&c);
    return r;
}

int wire_reply(unsigned tag, const char **buf)
{
    int ctrl, msg, arity;
    erlang_ref r;
    long op = next_frame(buf, &ctrl, &msg);
    CU_ASSERT_EQUAL(op, DOP_SEND);
    CU_ASSERT_FATAL(msg > 0);
    CU_ASSERT_EQUAL(ei_decode_tuple_header(*buf, &msg, &arity), 0);
    CU_ASSERT_EQUAL(arity, 2);
    CU_ASSERT_EQUAL(ei_decode_ref(*buf, &msg, &r), 0);
    CU_ASSERT_EQUAL(r.n[0], tag);
    return msg;
}

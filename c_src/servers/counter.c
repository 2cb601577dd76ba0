/* counter.c: the counter server; see counter.h. Uses gen_cnode.h only. */
#define GEN_CNODE_STATIC /* linked into the node: no loadable entry point */
#include "counter.h"

#include <stdlib.h>

/* Waiters kept at most, and bytes of their From (a peer chooses the tag):
 * a waiter stays until the count gets there or its node goes, so peers
 * could otherwise pile up memory without end. */
#define MAX_WAITERS 65536
#define MAX_WAITER_BYTES (64u << 20)

typedef struct waiter {
    struct waiter *next;
    int64_t until;
    size_t bytes;
    gcn_caller *caller;
} waiter;

typedef struct counter {
    int64_t count;
    waiter *waiting;
    size_t nwaiting, waiting_bytes;
} counter;

static int counter_init(gcn_server *self, gcn_term arg, gcn_init *out, const char **error)
{
    (void)self;
    (void)arg;
    counter *c = calloc(1, sizeof *c);
    if (!c) {
        *error = "out_of_memory";
        return -1;
    }
    out->state = c;
    return 0;
}

static void drop(counter *c, waiter **pw)
{
    waiter *w = *pw;
    *pw = w->next;
    gcn_release(w->caller);
    c->waiting_bytes -= w->bytes;
    free(w);
    c->nwaiting--;
}

/* Answer every waiter whose target the count has reached. */
static void wake(gcn_server *self, counter *c)
{
    gcn_buf *b = NULL;
    for (waiter **pw = &c->waiting; *pw;) {
        if (c->count < (*pw)->until) {
            pw = &(*pw)->next;
            continue;
        }
        if (!b && !(b = gcn_buf_new()))
            return; /* out of memory: they wait for the next change */
        gcn_buf_reset(b);
        if (gcn_build(b, "{ok, ~i}", c->count) == 0) {
            gcn_reply_held(self, (*pw)->caller, gcn_buf_term(b));
            (*pw)->caller = NULL; /* released by gcn_reply_held */
        }
        drop(c, pw);
    }
    gcn_buf_free(b);
}

static enum gcn_result counter_call(gcn_server *self, void *state, gcn_term req, const gcn_from *from,
                                    gcn_buf *reply)
{
    (void)self;
    counter *c = state;
    int64_t n;
    if (gcn_is_atom(req, "get")) {
        gcn_put_int(reply, c->count);
    } else if (gcn_is_atom(req, "reset")) {
        c->count = 0;
        gcn_put_atom(reply, "ok");
    } else if (gcn_match(req, "{wait_for, ~i}", &n)) {
        if (c->count >= n) {
            gcn_build(reply, "{ok, ~i}", c->count);
            return GCN_REPLY;
        }
        size_t bytes = from->pid.len + from->tag.len;
        if (c->nwaiting >= MAX_WAITERS || c->waiting_bytes + bytes > MAX_WAITER_BYTES) {
            gcn_build(reply, "{error, too_many_waiters}");
            return GCN_REPLY;
        }
        waiter *w = malloc(sizeof *w);
        if (!w || !(w->caller = gcn_hold(from))) {
            free(w);
            gcn_build(reply, "{error, out_of_memory}");
            return GCN_REPLY;
        }
        w->until = n;
        w->bytes = bytes;
        w->next = c->waiting;
        c->waiting = w;
        c->nwaiting++;
        c->waiting_bytes += bytes;
        return GCN_NOREPLY; /* answered by wake() */
    } else {
        gcn_error(reply, "unknown_call", req);
    }
    return GCN_REPLY;
}

static enum gcn_result counter_cast(gcn_server *self, void *state, gcn_term req)
{
    counter *c = state;
    int64_t n, sum;
    if (gcn_is_atom(req, "incr")) {
        n = 1;
    } else if (!gcn_match(req, "{add, ~i}", &n)) {
        gcn_log(GCN_LOG_WARNING, "counter: ignoring an unknown cast");
        return GCN_NOREPLY;
    }
    if (__builtin_add_overflow(c->count, n, &sum)) {
        gcn_log(GCN_LOG_WARNING, "counter: ignoring an add that would overflow a 64-bit count");
        return GCN_NOREPLY;
    }
    c->count = sum;
    wake(self, c);
    return GCN_NOREPLY;
}

static void counter_node_down(gcn_server *self, void *state, const char *node, size_t len)
{
    (void)self;
    counter *c = state;
    for (waiter **pw = &c->waiting; *pw;) {
        if (gcn_caller_on((*pw)->caller, node, len))
            drop(c, pw);
        else
            pw = &(*pw)->next;
    }
}

static int counter_format_state(void *state, gcn_buf *out)
{
    const counter *c = state;
    return gcn_put_int(out, c->count);
}

static int counter_format_status(gcn_server *self, void *state, gcn_buf *out)
{
    (void)self;
    const counter *c = state;
    return gcn_build(out, "#{count => ~i, waiting => ~u}", c->count, (uint64_t)c->nwaiting);
}

static void counter_terminate(void *state, gcn_term reason)
{
    (void)reason;
    counter *c = state;
    while (c->waiting)
        drop(c, &c->waiting);
    free(c);
}

GEN_CNODE_MODULE(counter,
    .init = counter_init,
    .handle_call = counter_call,
    .handle_cast = counter_cast,
    .format_state = counter_format_state,
    .format_status = counter_format_status,
    .node_down = counter_node_down,
    .terminate = counter_terminate)

/* counter.c: the counter server; see counter.h. */
#include "counter.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

typedef struct waiter {
    struct waiter *next;
    long long until;
    gen_server_caller *caller;
} waiter;

typedef struct counter {
    long long count;
    waiter *waiting;
    size_t nwaiting;
} counter;

static int counter_init(const void *env, term_view arg, gen_server_init *out, const char **error)
{
    (void)env;
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
    gen_server_release(w->caller);
    free(w);
    c->nwaiting--;
}

/* Answer every waiter whose target the count has reached. */
static void wake(gen_server *self, counter *c)
{
    char buf[64];
    for (waiter **pw = &c->waiting; *pw;) {
        if (c->count < (*pw)->until) {
            pw = &(*pw)->next;
            continue;
        }
        int i = 0;
        ei_encode_tuple_header(buf, &i, 2);
        ei_encode_atom(buf, &i, "ok");
        ei_encode_longlong(buf, &i, c->count);
        gen_server_from to = gen_server_caller_from((*pw)->caller);
        gen_server_reply(self, &to, (term_view){buf, (size_t)i});
        drop(c, pw);
    }
}

/* {Atom, Integer} requests, or a bare atom (n stays 0). */
static int parse(term_view req, char *atom, long long *n)
{
    int i = 0, arity;
    *n = 0;
    if (ei_decode_atom(req.ptr, &i, atom) == 0)
        return 0;
    i = 0;
    return ei_decode_tuple_header(req.ptr, &i, &arity) == 0 && arity == 2 &&
                   ei_decode_atom(req.ptr, &i, atom) == 0 && ei_decode_longlong(req.ptr, &i, n) == 0
               ? 0
               : -1;
}

static enum gen_server_result counter_call(gen_server *self, void *state, term_view req,
                                           const gen_server_from *from, ei_x_buff *reply)
{
    (void)self;
    counter *c = state;
    char atom[MAXATOMLEN_UTF8];
    long long n;
    if (parse(req, atom, &n) == 0 && strcmp(atom, "get") == 0) {
        ei_x_encode_longlong(reply, c->count);
    } else if (parse(req, atom, &n) == 0 && strcmp(atom, "reset") == 0) {
        c->count = 0;
        ei_x_encode_atom(reply, "ok");
    } else if (parse(req, atom, &n) == 0 && strcmp(atom, "wait_for") == 0) {
        if (c->count >= n) {
            ei_x_encode_tuple_header(reply, 2);
            ei_x_encode_atom(reply, "ok");
            ei_x_encode_longlong(reply, c->count);
            return GEN_SERVER_REPLY;
        }
        waiter *w = malloc(sizeof *w);
        if (!w || !(w->caller = gen_server_hold(from))) {
            free(w);
            ei_x_encode_tuple_header(reply, 2);
            ei_x_encode_atom(reply, "error");
            ei_x_encode_atom(reply, "out_of_memory");
            return GEN_SERVER_REPLY;
        }
        w->until = n;
        w->next = c->waiting;
        c->waiting = w;
        c->nwaiting++;
        return GEN_SERVER_NOREPLY; /* answered by wake() */
    } else {
        gen_server_error(reply, "unknown_call", req);
    }
    return GEN_SERVER_REPLY;
}

static enum gen_server_result counter_cast(gen_server *self, void *state, term_view req)
{
    counter *c = state;
    char atom[MAXATOMLEN_UTF8];
    long long n;
    long long sum;
    if (parse(req, atom, &n) == 0 && strcmp(atom, "incr") == 0)
        n = 1;
    else if (parse(req, atom, &n) != 0 || strcmp(atom, "add") != 0) {
        log_warning("counter: ignoring an unknown cast");
        return GEN_SERVER_NOREPLY;
    }
    if (__builtin_add_overflow(c->count, n, &sum)) {
        log_warning("counter: ignoring an add that would overflow a 64-bit count");
        return GEN_SERVER_NOREPLY;
    }
    c->count = sum;
    wake(self, c);
    return GEN_SERVER_NOREPLY;
}

static void counter_node_down(gen_server *self, void *state, const char *node, size_t len)
{
    (void)self;
    counter *c = state;
    for (waiter **pw = &c->waiting; *pw;) {
        if (gen_server_caller_on((*pw)->caller, node, len))
            drop(c, pw);
        else
            pw = &(*pw)->next;
    }
}

static int counter_format_state(void *state, ei_x_buff *out)
{
    const counter *c = state;
    return ei_x_encode_longlong(out, c->count);
}

static int counter_format_status(gen_server *self, void *state, ei_x_buff *out)
{
    (void)self;
    const counter *c = state;
    ei_x_encode_map_header(out, 2);
    ei_x_encode_atom(out, "count");
    ei_x_encode_longlong(out, c->count);
    ei_x_encode_atom(out, "waiting");
    return ei_x_encode_ulong(out, c->nwaiting);
}

static void counter_terminate(void *state, term_view reason)
{
    (void)reason;
    counter *c = state;
    while (c->waiting)
        drop(c, &c->waiting);
    free(c);
}

const gen_server_callbacks counter_callbacks = {
    .module = "counter",
    .init = counter_init,
    .handle_call = counter_call,
    .handle_cast = counter_cast,
    .format_state = counter_format_state,
    .format_status = counter_format_status,
    .node_down = counter_node_down,
    .terminate = counter_terminate,
};

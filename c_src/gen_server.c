/* gen_server.c: the generic server behaviour; see gen_server.h. */
#include "gen_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buffer.h"
#include "log.h"

#define KEEP_REPLY_BUFFER (64 * 1024) /* reply memory kept between messages */

typedef struct queued {
    struct queued *next;
    size_t len;
    char msg[];
} queued;

struct gen_server {
    const gen_server_callbacks *cb;
    void *state;
    process *self;
    ei_x_buff out;   /* the reply to the call at hand, reused: no allocation per call */
    ei_x_buff later; /* replies sent with gen_server_reply, system replies */
    unsigned long long handled;
    int want_continue;
    int suspended;
    queued *queue, **queue_tail; /* what arrived while suspended, in order */
    char *parent;                /* start_link's caller; NULL: the server is its own parent */
    size_t parent_len;
};

struct gen_server_caller {
    size_t pid_len, tag_len;
    char bytes[]; /* pid, then tag */
};

/* ---- reading requests ---- */

/* Is the term v exactly the atom `name`? */
static int is(term_view v, const char *name)
{
    int i = 0;
    return term_atom_is(v, &i, name) && (size_t)i == v.len;
}

/* The Ref of a tag that is exactly [alias | Ref]. */
static int alias_ref(term_view tag, term_view *alias)
{
    int i = 0, arity, type, size;
    if (ei_decode_list_header(tag.ptr, &i, &arity) < 0 || arity != 1 || !term_atom_is(tag, &i, "alias") ||
        ei_get_type(tag.ptr, &i, &type, &size) < 0 ||
        (type != ERL_NEW_REFERENCE_EXT && type != ERL_NEWER_REFERENCE_EXT))
        return 0;
    *alias = (term_view){tag.ptr + i, tag.len - (size_t)i};
    return 1;
}

/* Where gen:reply sends: to the alias of a tag [alias | Ref] (OTP 24+ calls)
 * or [[alias | Ref] | _] (OTP 27 multi_call); otherwise (0) to the caller's pid. */
static int alias_of(term_view tag, term_view *alias)
{
    int i = 0, arity;
    term_view head;
    if (alias_ref(tag, alias))
        return 1;
    return ei_decode_list_header(tag.ptr, &i, &arity) == 0 && arity == 1 &&
           term_next(tag, &i, &head) == 0 && alias_ref(head, alias);
}

/* {Pid, Tag} of a call or a system message. */
static int decode_from(term_view msg, int *i, gen_server_from *from)
{
    int arity;
    return ei_decode_tuple_header(msg.ptr, i, &arity) == 0 && arity == 2 &&
                   term_next(msg, i, &from->pid) == 0 && term_next(msg, i, &from->tag) == 0 &&
                   (from->pid.ptr[0] == ERL_PID_EXT || from->pid.ptr[0] == ERL_NEW_PID_EXT)
               ? 0
               : -1;
}

/* ---- replying ---- */

/* Send msg (one of the server's reply buffers) and give the buffer's memory
 * back if a large reply went through it. */
static void send_to(gen_server *gs, const gen_server_from *to, ei_x_buff *msg)
{
    term_view m = {msg->buff, (size_t)msg->index};
    term_view alias;
    if (alias_of(to->tag, &alias))
        process_send_alias(gs->self, alias, m);
    else
        process_send(gs->self, to->pid, m);
    term_shrink(msg, KEEP_REPLY_BUFFER);
}

/* Start {Tag, _} in x; the reply term follows. */
static void begin_reply(ei_x_buff *x, const gen_server_from *to)
{
    x->index = 0;
    ei_x_encode_tuple_header(x, 2);
    ei_x_append_buf(x, to->tag.ptr, (int)to->tag.len);
}

int gen_server_reply(gen_server *self, const gen_server_from *to, term_view reply)
{
    begin_reply(&self->later, to);
    if (term_reserve(&self->later, reply.len) != TERM_OK ||
        ei_x_append_buf(&self->later, reply.ptr, (int)reply.len) < 0)
        return -1;
    send_to(self, to, &self->later);
    return 0;
}

gen_server_caller *gen_server_hold(const gen_server_from *from)
{
    gen_server_caller *c = malloc(sizeof *c + from->pid.len + from->tag.len);
    if (!c)
        return NULL;
    c->pid_len = from->pid.len;
    c->tag_len = from->tag.len;
    memcpy(c->bytes, from->pid.ptr, from->pid.len);
    memcpy(c->bytes + from->pid.len, from->tag.ptr, from->tag.len);
    return c;
}

gen_server_from gen_server_caller_from(const gen_server_caller *c)
{
    return (gen_server_from){{c->bytes, c->pid_len}, {c->bytes + c->pid_len, c->tag_len}};
}

void gen_server_release(gen_server_caller *c) { free(c); }

int gen_server_caller_on(const gen_server_caller *c, const char *node, size_t len)
{
    const char *n;
    size_t nlen;
    return process_term_node((term_view){c->bytes, c->pid_len}, &n, &nlen) == 0 && nlen == len &&
           memcmp(n, node, len) == 0;
}

process *gen_server_process(gen_server *self) { return self->self; }

/* ---- calls, casts, infos ---- */

static const char normal_atom[] = {119, 6, 'n', 'o', 'r', 'm', 'a', 'l'};

static void stop_normal(gen_server *gs) { process_exit(gs->self, (term_view){normal_atom, sizeof normal_atom}); }

static void handle_call(gen_server *gs, term_view msg, int i)
{
    gen_server_from from;
    term_view request;
    if (decode_from(msg, &i, &from) < 0 || term_next(msg, &i, &request) < 0) {
        log_warning("%s: ignoring a '$gen_call' whose From is not {Pid, Tag}", gs->cb->module);
        return;
    }
    begin_reply(&gs->out, &from);
    int before = gs->out.index;
    enum gen_server_result r = gs->cb->handle_call(gs, gs->state, request, &from, &gs->out);
    if (r != GEN_SERVER_NOREPLY) {
        if (gs->out.index == before) {
            log_error("%s: handle_call encoded no reply", gs->cb->module);
            ei_x_encode_atom(&gs->out, "error");
        }
        send_to(gs, &from, &gs->out);
    }
    if (r == GEN_SERVER_STOP)
        stop_normal(gs);
}

static void dispatch(gen_server *gs, term_view msg)
{
    int i = 0, arity;
    term_view request;
    enum gen_server_result r = GEN_SERVER_NOREPLY;
    if (ei_decode_tuple_header(msg.ptr, &i, &arity) == 0) {
        if (arity == 3 && term_atom_is(msg, &i, "$gen_call")) {
            handle_call(gs, msg, i);
            return;
        }
        if (arity == 2 && term_atom_is(msg, &i, "$gen_cast") && term_next(msg, &i, &request) == 0) {
            if (gs->cb->handle_cast)
                r = gs->cb->handle_cast(gs, gs->state, request);
            if (r == GEN_SERVER_STOP)
                stop_normal(gs);
            return;
        }
    }
    if (gs->cb->handle_info)
        r = gs->cb->handle_info(gs, gs->state, msg);
    if (r == GEN_SERVER_STOP)
        stop_normal(gs);
}

/* ---- system messages ---- */

/* The caller's OTP release: what its node told us, else a guess from the
 * tag (OTP 27 aliases are 5-word references, OTP 25's 3-word). */
static int caller_release(gen_server *gs, const gen_server_from *from)
{
    int r = process_release_of(process_table_of(gs->self), from->pid);
    term_view alias;
    if (r)
        return r;
    if (alias_of(from->tag, &alias) && (unsigned char)alias.ptr[0] == ERL_NEWER_REFERENCE_EXT &&
        alias.len >= 3 && get_u16(alias.ptr + 1) >= 5)
        return 27;
    return 25;
}

static void encode_parent(gen_server *gs, ei_x_buff *x)
{
    term_view p = gs->parent ? (term_view){gs->parent, gs->parent_len} : process_pid(gs->self);
    ei_x_append_buf(x, p.ptr, (int)p.len);
}

/* {status, Pid, {module, gen_server}, [PDict, SysState, Parent, [], Misc]}, as OTP 25-27. */
static void encode_status(gen_server *gs, ei_x_buff *x)
{
    const char *sys_state = gs->suspended ? "suspended" : "running";
    term_view pid = process_pid(gs->self);
    char header[512];
    const char *name = process_name(gs->self);
    if (name)
        snprintf(header, sizeof header, "Status for generic server %s", name);
    else
        snprintf(header, sizeof header, "Status for generic server <%s.%u.0>",
                 process_table_node(process_table_of(gs->self)), process_number(gs->self));
    ei_x_encode_tuple_header(x, 4);
    ei_x_encode_atom(x, "status");
    ei_x_append_buf(x, pid.ptr, (int)pid.len);
    ei_x_encode_tuple_header(x, 2);
    ei_x_encode_atom(x, "module");
    ei_x_encode_atom(x, "gen_server");
    ei_x_encode_list_header(x, 5);
    /* PDict */
    ei_x_encode_list_header(x, 2);
    ei_x_encode_tuple_header(x, 2);
    ei_x_encode_atom(x, "$initial_call");
    ei_x_encode_tuple_header(x, 3);
    ei_x_encode_atom(x, gs->cb->module);
    ei_x_encode_atom(x, "init");
    ei_x_encode_long(x, 1);
    ei_x_encode_tuple_header(x, 2);
    ei_x_encode_atom(x, "$ancestors");
    ei_x_encode_list_header(x, 1);
    encode_parent(gs, x);
    ei_x_encode_empty_list(x);
    ei_x_encode_empty_list(x);
    ei_x_encode_atom(x, sys_state);
    encode_parent(gs, x);
    ei_x_encode_empty_list(x); /* Debug */
    /* Misc, as gen_server:format_status builds it */
    ei_x_encode_list_header(x, 3);
    ei_x_encode_tuple_header(x, 2);
    ei_x_encode_atom(x, "header");
    ei_x_encode_string(x, header);
    ei_x_encode_tuple_header(x, 2);
    ei_x_encode_atom(x, "data");
    ei_x_encode_list_header(x, 3);
    ei_x_encode_tuple_header(x, 2);
    ei_x_encode_string(x, "Status");
    ei_x_encode_atom(x, sys_state);
    ei_x_encode_tuple_header(x, 2);
    ei_x_encode_string(x, "Parent");
    encode_parent(gs, x);
    ei_x_encode_tuple_header(x, 2);
    ei_x_encode_string(x, "Logged events");
    ei_x_encode_empty_list(x);
    ei_x_encode_empty_list(x);
    ei_x_encode_tuple_header(x, 2);
    ei_x_encode_atom(x, "data");
    ei_x_encode_list_header(x, 1);
    ei_x_encode_tuple_header(x, 2);
    ei_x_encode_string(x, "State");
    int rc = gs->cb->format_status ? gs->cb->format_status(gs, gs->state, x)
             : gs->cb->format_state ? gs->cb->format_state(gs->state, x) : -1;
    if (rc < 0)
        ei_x_encode_atom(x, "undefined");
    ei_x_encode_empty_list(x);
    ei_x_encode_empty_list(x);
    ei_x_encode_empty_list(x);
}

void gen_server_error(ei_x_buff *x, const char *what, term_view detail)
{
    ei_x_encode_tuple_header(x, 2);
    ei_x_encode_atom(x, "error");
    ei_x_encode_tuple_header(x, 2);
    ei_x_encode_atom(x, what);
    ei_x_append_buf(x, detail.ptr, (int)detail.len);
}

static void resume(gen_server *gs)
{
    gs->suspended = 0;
    while (gs->queue && !gs->suspended && !process_exiting(gs->self)) {
        queued *q = gs->queue;
        gs->queue = q->next;
        if (!gs->queue)
            gs->queue_tail = &gs->queue;
        dispatch(gs, (term_view){q->msg, q->len});
        free(q);
    }
}

static void handle_system(gen_server *gs, term_view msg, int i)
{
    gen_server_from from;
    term_view req;
    int arity, j;
    if (decode_from(msg, &i, &from) < 0 || term_next(msg, &i, &req) < 0) {
        log_warning("%s: ignoring a malformed system message", gs->cb->module);
        return;
    }
    ei_x_buff *x = &gs->later;
    begin_reply(x, &from);
    j = 0;
    if (is(req, "get_state")) {
        int ok = caller_release(gs, &from) >= 26; /* OTP 26.1+ wants {ok, State} */
        if (ok) {
            ei_x_encode_tuple_header(x, 2);
            ei_x_encode_atom(x, "ok");
        }
        if (!gs->cb->format_state || gs->cb->format_state(gs->state, x) < 0) {
            x->index = 0;
            begin_reply(x, &from);
            static const char none[] = {119, 8, 'n', 'o', '_', 's', 't', 'a', 't', 'e'};
            gen_server_error(x, "not_supported", (term_view){none, sizeof none});
        }
    } else if (is(req, "get_status")) {
        encode_status(gs, x);
    } else if (is(req, "suspend")) {
        gs->suspended = 1;
        ei_x_encode_atom(x, "ok");
    } else if (is(req, "resume")) {
        ei_x_encode_atom(x, "ok");
        send_to(gs, &from, x);
        resume(gs);
        return;
    } else if (ei_decode_tuple_header(req.ptr, &j, &arity) == 0 && arity == 2 &&
               term_atom_is(req, &j, "terminate") && process_is_system(gs->self)) {
        static const char why[] = {119, 14, 's', 'y', 's', 't', 'e', 'm', '_', 'p', 'r', 'o', 'c', 'e', 's', 's'};
        log_warning("%s: refused to stop: it is one of the node's own processes", gs->cb->module);
        gen_server_error(x, "not_supported_by_c_node", (term_view){why, sizeof why});
    } else if ((j = 0, ei_decode_tuple_header(req.ptr, &j, &arity)) == 0 && arity == 2 &&
               term_atom_is(req, &j, "terminate")) {
        term_view reason = {normal_atom, sizeof normal_atom};
        if (term_next(req, &j, &reason) < 0) /* cannot happen on a checked message */
            reason = (term_view){normal_atom, sizeof normal_atom};
        ei_x_encode_atom(x, "ok");
        send_to(gs, &from, x); /* ok first, then DOWN and EXIT: what proc_lib:stop waits for */
        process_exit(gs->self, reason);
        return;
    } else if ((j = 0, ei_decode_tuple_header(req.ptr, &j, &arity)) == 0 && arity == 2 &&
               term_atom_is(req, &j, "replace_state")) {
        static const char why[] = {119, 13, 'r', 'e', 'p', 'l', 'a', 'c', 'e', '_', 's', 't', 'a', 't', 'e'};
        gen_server_error(x, "not_supported_by_c_node", (term_view){why, sizeof why});
    } else {
        gen_server_error(x, "unknown_system_msg", req);
    }
    send_to(gs, &from, x);
}

/* ---- the behaviour ---- */

static void message(process *self, term_view msg)
{
    gen_server *gs = process_state(self);
    int i = 0, arity;
    gs->handled++;
    if (ei_decode_tuple_header(msg.ptr, &i, &arity) == 0 && arity == 3 && term_atom_is(msg, &i, "system")) {
        handle_system(gs, msg, i);
        return;
    }
    if (gs->suspended) {
        queued *q = malloc(sizeof *q + msg.len);
        if (!q) {
            log_error("%s: out of memory queueing a message while suspended", gs->cb->module);
            return;
        }
        q->next = NULL;
        q->len = msg.len;
        memcpy(q->msg, msg.ptr, msg.len);
        *gs->queue_tail = q;
        gs->queue_tail = &q->next;
        return;
    }
    dispatch(gs, msg);
}

static void free_server(gen_server *gs, term_view reason)
{
    if (gs->cb->terminate)
        gs->cb->terminate(gs->state, reason);
    while (gs->queue) {
        queued *q = gs->queue;
        gs->queue = q->next;
        free(q);
    }
    ei_x_free(&gs->out);
    ei_x_free(&gs->later);
    free(gs->parent);
    free(gs);
}

static void destroy(process *self, term_view reason) { free_server(process_state(self), reason); }

static void node_down(process *self, const char *node, size_t len)
{
    gen_server *gs = process_state(self);
    if (gs->cb->node_down)
        gs->cb->node_down(gs, gs->state, node, len);
}

static void flush(process *self)
{
    gen_server *gs = process_state(self);
    if (gs->cb->flush)
        gs->cb->flush(gs, gs->state);
}

void gen_server_want_flush(gen_server *self) { process_want_flush(self->self); }

/* A message too deep to accept: if it is a call, tell the caller so rather
 * than let it wait for its timeout. Only the envelope
 * {'$gen_call', {Pid, Tag}, _} is read, each part checked first. */
static void refused(process *self, term_view raw, const char *why)
{
    gen_server *gs = process_state(self);
    size_t i = 2, start;
    term_view label, from_term;
    gen_server_from from;
    int j = 0;
    log_warning("%s: refused a message of %zu bytes: %s", gs->cb->module, raw.len, why);
    if (raw.len < 2 || (unsigned char)raw.ptr[0] != ERL_SMALL_TUPLE_EXT || raw.ptr[1] != 3)
        return;
    start = i;
    if (term_skip(raw.ptr, raw.len, &i, 1) != TERM_OK)
        return;
    label = (term_view){raw.ptr + start, i - start};
    start = i;
    if (!is(label, "$gen_call") || term_skip(raw.ptr, raw.len, &i, 8) != TERM_OK)
        return;
    from_term = (term_view){raw.ptr + start, i - start};
    if (decode_from(from_term, &j, &from) < 0)
        return;
    static const char too_deep[] = {104, 2, 119, 11, 'b', 'a', 'd', '_', 'r', 'e', 'q', 'u', 'e', 's', 't',
                                    119, 8, 't', 'o', 'o', '_', 'd', 'e', 'e', 'p'};
    ei_x_buff *x = &gs->later;
    begin_reply(x, &from);
    ei_x_encode_tuple_header(x, 2);
    ei_x_encode_atom(x, "error");
    ei_x_append_buf(x, too_deep, sizeof too_deep);
    send_to(gs, &from, x);
}

static const process_behaviour gen_server_behaviour = {message, destroy, node_down, flush, refused};

process *gen_server_start(process_table *t, const gen_server_callbacks *cb, const void *env,
                          term_view arg, const char *name, const char **error)
{
    static const char shutdown[] = {119, 8, 's', 'h', 'u', 't', 'd', 'o', 'w', 'n'};
    gen_server_init init = {NULL, 0, 0};
    *error = "out_of_memory";
    if (name && process_whereis(t, name, strlen(name))) {
        *error = "already_started";
        return NULL;
    }
    gen_server *gs = calloc(1, sizeof *gs);
    if (!gs)
        return NULL;
    gs->cb = cb;
    gs->queue_tail = &gs->queue;
    if (ei_x_new(&gs->out) < 0 || ei_x_new(&gs->later) < 0) {
        ei_x_free(&gs->out);
        free(gs);
        return NULL;
    }
    if (cb->init && cb->init(env, arg, &init, error) != 0) {
        ei_x_free(&gs->out);
        ei_x_free(&gs->later);
        free(gs);
        return NULL;
    }
    gs->state = init.state;
    gs->want_continue = init.want_continue && cb->handle_continue;
    process *p = process_spawn(t, &gen_server_behaviour, gs);
    if (!p) {
        free_server(gs, (term_view){shutdown, sizeof shutdown});
        return NULL;
    }
    gs->self = p;
    process_set_trap_exit(p, init.trap_exit);
    if (name && process_register(p, name) < 0) {
        process_exit(p, (term_view){shutdown, sizeof shutdown});
        return NULL;
    }
    return p;
}

void gen_server_continue(process *p)
{
    gen_server *gs = process_state(p);
    if (gs->want_continue && !process_exiting(p)) {
        gs->want_continue = 0;
        gs->cb->handle_continue(gs, gs->state);
    }
}

void gen_server_set_parent(process *p, term_view parent)
{
    gen_server *gs = process_state(p);
    char *copy = malloc(parent.len);
    if (!copy)
        return;
    memcpy(copy, parent.ptr, parent.len);
    free(gs->parent);
    gs->parent = copy;
    gs->parent_len = parent.len;
}

unsigned long long gen_server_handled(const process *p)
{
    const gen_server *gs = process_state(p);
    return gs->handled;
}

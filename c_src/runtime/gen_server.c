/* gen_server.c: the generic server behaviour; see gen_server.h. */
#include "gen_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <time.h>

#include "buffer.h"
#include "clock.h"
#include "log.h"
#include "term_template.h"

#define KEEP_REPLY_BUFFER (64 * 1024) /* reply memory kept between messages */

typedef struct job job;

/* What came while the server was suspended: a message, a job that
 * finished, or a node that went down (its done and node_down wait too: no
 * module code runs while suspended). */
typedef struct queued {
    struct queued *next;
    job *job;      /* NULL: a message, or a node's going */
    int node_down; /* msg is the name of a node that went down */
    size_t len;
    char msg[];
} queued;

struct gcn_server {
    const gcn_module *cb;
    void *priv;      /* the module's, from its load */
    void *state;
    process *self;
    gcn_buf out;     /* the reply to the call at hand, reused: no allocation per call */
    gcn_buf later;   /* replies sent with gcn_reply */
    gcn_buf sys;     /* replies to system messages (a format_status may gcn_reply meanwhile) */
    unsigned long long handled;
    uint64_t timeout_timer; /* the pending gen_server timeout (0: none) */
    uint64_t timeout_ms;    /* asked for by the callback running now */
    int timeout_wanted;
    uint64_t armed_ms;      /* the timeout pending now, in ms (valid while timeout_timer) */
    uint64_t suspended_ms;  /* a timeout :sys.suspend put aside, to arm again at resume */
    int timeout_aside;      /* whether there is one (suspended_ms may be 0: {noreply, S, 0}) */
    int init_failed;        /* no state: terminate is not run */
    const gcn_init *initing; /* what init is filling in, while it runs */
    int want_continue;
    int suspended;
    queued *queue, **queue_tail; /* what arrived while suspended, in order */
    char *parent;                /* start_link's caller; NULL: the server is its own parent */
    size_t parent_len;
};

/* What arrives while the server is suspended waits, in order, for the
 * resume: 0, or -1 when out of memory. */
static int hold(gen_server *gs, job *j, int node_down, const char *bytes, size_t len)
{
    queued *q = malloc(sizeof *q + len);
    if (!q)
        return -1;
    q->next = NULL;
    q->job = j;
    q->node_down = node_down;
    q->len = len;
    if (len)
        memcpy(q->msg, bytes, len);
    *gs->queue_tail = q;
    gs->queue_tail = &q->next;
    return 0;
}

struct gcn_caller {
    uint32_t cause; /* whose doing the call was (process_cause): the reply is too */
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

/* [alias | Ref] as OTP 24 and later encode a call's tag: a LIST_EXT of one
 * element, the atom alias as SMALL_ATOM_UTF8_EXT, then Ref as the tail. */
static const char alias_head[12] = {108, 0, 0, 0, 1, 119, 5, 'a', 'l', 'i', 'a', 's'};

/* The Ref of a tag that is exactly [alias | Ref]. */
static int alias_ref(term_view tag, term_view *alias)
{
    if (tag.len > sizeof alias_head && memcmp(tag.ptr, alias_head, sizeof alias_head) == 0 &&
        (unsigned char)tag.ptr[sizeof alias_head] == ERL_NEWER_REFERENCE_EXT) {
        *alias = (term_view){tag.ptr + sizeof alias_head, tag.len - sizeof alias_head};
        return 1;
    }
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

/* {Pid, Tag} of a call or a system message, a term already checked. As OTP
 * 23 and later send it ({NEW_PID_EXT, [alias | NEWER_REFERENCE_EXT]}), its
 * parts' lengths are read off their headers; otherwise walked. */
static int decode_from(term_view msg, int *i, gcn_from *from)
{
    const char *p = msg.ptr + *i;
    size_t left = msg.len - (size_t)*i;
    if (left > 2 && p[0] == 104 && p[1] == 2) {
        size_t pid = term_checked_id_len(p + 2, left - 2), at = 2 + pid;
        if (pid && (unsigned char)p[2] == ERL_NEW_PID_EXT && left - at > sizeof alias_head &&
            memcmp(p + at, alias_head, sizeof alias_head) == 0) {
            size_t ref = term_checked_id_len(p + at + sizeof alias_head, left - at - sizeof alias_head);
            if (ref && (unsigned char)p[at + sizeof alias_head] == ERL_NEWER_REFERENCE_EXT) {
                from->pid = (term_view){p + 2, pid};
                from->tag = (term_view){p + at, sizeof alias_head + ref};
                *i += (int)(at + sizeof alias_head + ref);
                return 0;
            }
        }
    }
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
static int send_to(gen_server *gs, const gcn_from *to, gcn_buf *msg)
{
    ei_x_buff *x = gcn_buf_ei(msg);
    term_view m = {x->buff, (size_t)x->index};
    term_view alias;
    int rc = alias_of(to->tag, &alias) ? process_send_alias(gs->self, alias, m)
                                       : process_send(gs->self, to->pid, m);
    term_shrink(x, KEEP_REPLY_BUFFER);
    return rc;
}

/* Start {Tag, _} in b; the reply term follows. */
static void begin_reply(gcn_buf *b, const gcn_from *to)
{
    ei_x_buff *x = gcn_buf_ei(b);
    x->index = 0;
    b->failed = 0;
    if (term_reserve(x, 2 + to->tag.len) < 0) {
        b->failed = 1;
        return;
    }
    x->buff[0] = 104; /* SMALL_TUPLE_EXT, 2 */
    x->buff[1] = 2;
    memcpy(x->buff + 2, to->tag.ptr, to->tag.len);
    x->index = (int)(2 + to->tag.len);
}

int gcn_reply(gcn_server *self, const gcn_from *to, gcn_term reply)
{
    begin_reply(&self->later, to);
    if (gcn_put_term(&self->later, reply) < 0) {
        log_error("%s: gcn_reply: the reply is not one term (or out of memory); not sent", self->cb->name);
        return -1;
    }
    return send_to(self, to, &self->later);
}

gcn_caller *gcn_hold(const gcn_from *from)
{
    gcn_caller *c = malloc(sizeof *c + from->pid.len + from->tag.len);
    if (!c)
        return NULL;
    c->cause = process_cause();
    c->pid_len = from->pid.len;
    c->tag_len = from->tag.len;
    memcpy(c->bytes, from->pid.ptr, from->pid.len);
    memcpy(c->bytes + from->pid.len, from->tag.ptr, from->tag.len);
    return c;
}

gcn_from gcn_caller_from(const gcn_caller *c)
{
    return (gcn_from){{c->bytes, c->pid_len}, {c->bytes + c->pid_len, c->tag_len}};
}

void gcn_release(gcn_caller *c) { free(c); }

int gcn_reply_held(gcn_server *self, gcn_caller *c, gcn_term reply)
{
    gcn_from to = gcn_caller_from(c);
    uint32_t was = process_set_cause(c->cause);
    int rc = gcn_reply(self, &to, reply);
    process_set_cause(was);
    gcn_release(c);
    return rc;
}

int gcn_caller_on(const gcn_caller *c, const char *node, size_t len)
{
    const char *n;
    size_t nlen;
    return process_term_node((term_view){c->bytes, c->pid_len}, &n, &nlen) == 0 && nlen == len &&
           memcmp(n, node, len) == 0;
}

process *gen_server_process(gen_server *self) { return self->self; }

/* ---- the server's own view ---- */

gcn_term gcn_self(const gcn_server *self) { return process_pid(self->self); }
const char *gcn_name(const gcn_server *self) { return process_name(self->self); }
const char *gcn_node(const gcn_server *self) { return process_table_node(process_table_of(self->self)); }
void *gcn_priv(const gcn_server *self) { return self->priv; }
void gcn_want_flush(gcn_server *self) { process_want_flush(self->self); }
void gcn_stop(gcn_server *self, gcn_term reason)
{
    /* The reason goes out in DOWNs and EXITs to other nodes, which would
     * drop the connection over one that is no term. */
    static const char bad[] = {119, 15, 'b', 'a', 'd', '_', 's', 't', 'o', 'p', '_', 'r', 'e', 'a', 's', 'o', 'n'};
    if (term_skip_one(reason) < 0) {
        log_error("%s: gcn_stop: the reason is not one term; stopping with bad_stop_reason", self->cb->name);
        reason = (gcn_term){bad, sizeof bad};
    }
    process_exit(self->self, reason);
}

void gcn_log(enum gcn_log_level level, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    enum log_level internal = log_level_of_public((int)level);
    if (!log_enabled(internal))
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_msg(internal, "%s", line);
}

/* ---- checking what callbacks hand back ---- */

static const char normal_atom[] = {119, 6, 'n', 'o', 'r', 'm', 'a', 'l'};

static void stop_normal(gen_server *gs) { process_exit(gs->self, (term_view){normal_atom, sizeof normal_atom}); }

/* A callback broke its contract: stop with {bad_return_value, Callback}, as
 * gen_server stops on a bad return, so monitors and links see why. */
static void bad_return(gen_server *gs, const char *callback, const char *what)
{
    char reason[80];
    int i = 0;
    log_error("%s: %s %s; the server stops", gs->cb->name, callback, what);
    ei_encode_tuple_header(reason, &i, 2);
    ei_encode_atom(reason, &i, "bad_return_value");
    ei_encode_atom(reason, &i, callback);
    process_exit(gs->self, (term_view){reason, (size_t)i});
}

/* Act on a callback's result; 0, or -1 when it was none of gcn_result's. */
static int result(gen_server *gs, const char *callback, enum gcn_result r)
{
    if (r != GCN_REPLY && r != GCN_NOREPLY && r != GCN_STOP) {
        bad_return(gs, callback, "returned no gcn_result");
        return -1;
    }
    if (r == GCN_STOP)
        stop_normal(gs);
    return 0;
}

/* ---- timers and the gen_server timeout ---- */

/* ms from now, in µs. A delay is capped at 2^40 ms (about 35 years), so a
 * number a peer chose can never wrap a deadline or overflow the loop's
 * arithmetic (deadlines stay far below 2^63). */
#define MAX_DELAY_MS (1ull << 40)
static uint64_t due_in(uint64_t ms)
{
    return clock_us() + (ms > MAX_DELAY_MS ? MAX_DELAY_MS : ms) * 1000;
}

gcn_timer gcn_send_after(gcn_server *self, uint64_t ms, gcn_term msg)
{
    if (term_skip_one(msg) < 0) {
        log_error("%s: gcn_send_after: the message is not one term", self->cb->name);
        return 0;
    }
    return process_send_after(self->self, due_in(ms), msg);
}

int gcn_cancel_timer(gcn_server *self, gcn_timer t) { return process_cancel_timer(self->self, t); }

void gcn_set_timeout(gcn_server *self, uint64_t ms)
{
    self->timeout_wanted = 1;
    self->timeout_ms = ms;
}

/* Before a callback: a timeout it asks for is its own, not an earlier one's. */
static void timeout_clear(gen_server *gs) { gs->timeout_wanted = 0; }

/* A message arrived: the pending timeout, if any, is off. */
static void timeout_off(gen_server *gs)
{
    if (gs->timeout_timer)
        process_cancel_timer(gs->self, gs->timeout_timer);
    gs->timeout_timer = 0;
}

static void timeout_arm(gen_server *gs, uint64_t ms)
{
    static const char timeout_atom[] = {119, 7, 't', 'i', 'm', 'e', 'o', 'u', 't'};
    timeout_off(gs);
    if (process_exiting(gs->self))
        return;
    gs->armed_ms = ms;
    gs->timeout_timer = process_send_after(gs->self, due_in(ms), (term_view){timeout_atom, sizeof timeout_atom});
    if (!gs->timeout_timer) /* out of memory: a server waiting on it would wait for ever, unsaid */
        log_error("%s: out of memory arming the gen_server timeout of %llu ms; it will not come",
                  gs->cb->name, (unsigned long long)ms);
}

/* After a callback: arm the timeout it asked for. */
static void timeout_on(gen_server *gs)
{
    if (!gs->timeout_wanted)
        return;
    gs->timeout_wanted = 0;
    timeout_arm(gs, gs->timeout_ms);
}

/* A system message came, as gen_server's loop sees it: the timeout pending
 * starts again from now (OTP goes back to its receive with the same one). */
static void timeout_restart(gen_server *gs)
{
    if (gs->timeout_timer)
        timeout_arm(gs, gs->armed_ms);
}

/* ---- sending, links ---- */

static int on_this_node(gcn_server *self, term_view pid);

int gcn_send(gcn_server *self, gcn_term to, gcn_term msg)
{
    process_table *t = process_table_of(self->self);
    int i = 0, arity;
    term_view name, node;
    if (term_skip_one(to) < 0 || term_skip_one(msg) < 0) {
        log_error("%s: gcn_send: the destination or the message is not one term", self->cb->name);
        return -1;
    }
    int type = gcn_type(to);
    if (type == GCN_PID && on_this_node(self, to)) {
        process_send(self->self, to, msg); /* a dead local pid drops it, as OTP's send does */
        return 0;
    }
    if (type == GCN_PID) /* what cannot go out is logged by the node, once per node and interval */
        return process_send(self->self, to, msg);
    if (type == GCN_ATOM) {
        process *p = process_resolve(t, to);
        if (p)
            return process_send(self->self, process_pid(p), msg);
        const char *nm = "?";
        size_t nmlen = 1;
        term_atom(to, &i, &nm, &nmlen);
        log_warning("%s: gcn_send: no process is registered as %.*s here; message dropped",
                    self->cb->name, (int)nmlen, nm);
        return -1;
    }
    if (type == GCN_TUPLE && ei_decode_tuple_header(to.ptr, &i, &arity) == 0 && arity == 2 &&
        term_next(to, &i, &name) == 0 && term_next(to, &i, &node) == 0 &&
        gcn_type(name) == GCN_ATOM && gcn_type(node) == GCN_ATOM) {
        const char *nd;
        size_t ndlen;
        int j = 0;
        if (term_atom(node, &j, &nd, &ndlen) == 0 && ndlen == strlen(gcn_node(self)) &&
            memcmp(nd, gcn_node(self), ndlen) == 0)
            return gcn_send(self, name, msg);
        return process_send_registered(self->self, name, node, msg);
    }
    log_error("%s: gcn_send: the destination is no pid, name or {Name, Node}", self->cb->name);
    return -1;
}

/* Is pid one of this node's? */
static int on_this_node(gcn_server *self, term_view pid)
{
    const char *n;
    size_t len;
    const char *me = gcn_node(self);
    return process_term_node(pid, &n, &len) == 0 && len == strlen(me) && memcmp(n, me, len) == 0;
}

int gcn_link(gcn_server *self, gcn_term pid)
{
    if (gcn_type(pid) != GCN_PID || on_this_node(self, pid))
        return -1; /* links between two processes of this node are not kept */
    /* In init, trap_exit counts as init has set it so far, as an OTP init's
     * process_flag(trap_exit, true) does before its link/1: a link whose
     * node cannot be reached is then an {'EXIT', Pid, noconnection} info,
     * not the end of the start. */
    if (self->initing)
        process_set_trap_exit(self->self, self->initing->trap_exit);
    return process_link(self->self, pid, 1);
}

int gcn_connect(gcn_server *self, const char *node)
{
    if (!node)
        return -1;
    return process_connect(process_table_of(self->self), node, strlen(node));
}

int gcn_unlink(gcn_server *self, gcn_term pid)
{
    if (gcn_type(pid) != GCN_PID || on_this_node(self, pid))
        return -1;
    process_unlink_remote(self->self, pid);
    return 0;
}

int gcn_monitor(gcn_server *self, gcn_term pid, gcn_buf *ref)
{
    char r[PROCESS_REF_MAX];
    if (gcn_type(pid) != GCN_PID)
        return -1;
    int len = process_watch(self->self, pid, r);
    if (len < 0)
        return -1;
    if (ref && gcn_buf_append(ref, r, (size_t)len) < 0) {
        process_unwatch(self->self, (term_view){r, (size_t)len}); /* a monitor no one can take off */
        return -1;
    }
    return 0;
}

int gcn_demonitor(gcn_server *self, gcn_term ref)
{
    return process_unwatch(self->self, ref);
}

/* ---- worker jobs ---- */

struct job {
    gcn_job_run *run;
    gcn_job_done *done;
    void *arg;
};

static void job_run(void *arg)
{
    job *j = arg;
    j->run(j->arg);
}

static void job_done(process *p, void *arg, int ran)
{
    job *j = arg;
    gen_server *gs = p ? process_state(p) : NULL;
    if (!gs || !ran) {
        j->done(NULL, NULL, j->arg);
    } else if (gs->suspended) {
        if (hold(gs, j, 0, NULL, 0) == 0)
            return; /* j runs on resume (or is dropped with the server) */
        log_error("%s: out of memory holding a job's end while suspended: done runs now", gs->cb->name);
    }
    if (gs && ran) {
        gs->handled++;
        timeout_off(gs);
        timeout_clear(gs);
        if (result(gs, "job done", j->done(gs, gs->state, j->arg)) == 0)
            timeout_on(gs);
    }
    free(j);
}

int gcn_submit(gcn_server *self, gcn_job_run *run, gcn_job_done *done, void *arg)
{
    job *j = malloc(sizeof *j);
    if (!j || !run || !done) {
        free(j);
        return -1;
    }
    *j = (job){run, done, arg};
    /* One module's jobs, all blocked say, leave a thread to the others. */
    if (process_submit(self->self, self->cb, job_run, job_done, j) < 0) {
        free(j);
        return -1;
    }
    return 0;
}

/* ---- calls, casts, infos ---- */

static void handle_call(gen_server *gs, term_view msg, int i)
{
    gcn_from from;
    term_view request;
    if (decode_from(msg, &i, &from) < 0 || (size_t)i >= msg.len) {
        log_warning("%s: ignoring a '$gen_call' whose From is not {Pid, Tag}", gs->cb->name);
        return;
    }
    request = (term_view){msg.ptr + i, msg.len - (size_t)i}; /* the last element: to the end */
    begin_reply(&gs->out, &from);
    size_t before = (size_t)gcn_buf_ei(&gs->out)->index;
    gcn_buf_lend(&gs->out); /* the module sees its reply only, not the {Tag, before it */
    enum gcn_result r = gs->cb->handle_call(gs, gs->state, request, &from, &gs->out);
    gcn_buf_unlend(&gs->out);
    if (result(gs, "handle_call", r) < 0)
        return;
    if (r != GCN_NOREPLY) {
        int empty = (size_t)gcn_buf_ei(&gs->out)->index == before;
        if (gs->out.failed || (empty && (gs->out.out_of_memory || gs->out.bad_value))) {
            /* A reply that could not be written: out of memory (a reply of
             * every key of a large store, say), or a value no term can hold
             * (an atom's text from a peer that is not UTF-8, say), the
             * failed write undone by gcn_build and nothing written instead.
             * The caller is told so, and the server, whose state is whole,
             * goes on; stopping it would lose a memory-only store. */
            int oom = gs->out.out_of_memory || !gs->out.bad_value;
            const char *why = oom ? "out_of_memory" : "bad_reply";
            if (oom)
                log_error("%s: out of memory writing the reply to a call: answered {error, out_of_memory}",
                          gs->cb->name);
            else
                log_warning("%s: handle_call wrote a value no term can hold into its reply (an atom "
                            "that is not UTF-8, a NaN, ...): answered {error, bad_reply}", gs->cb->name);
            begin_reply(&gs->out, &from);
            ei_x_encode_tuple_header(gcn_buf_ei(&gs->out), 2);
            ei_x_encode_atom(gcn_buf_ei(&gs->out), "error");
            ei_x_encode_atom(gcn_buf_ei(&gs->out), why);
            if (!gs->out.failed)
                send_to(gs, &from, &gs->out);
            return;
        }
        if (!gcn_buf_ok_term(&gs->out, before)) {
            size_t at = before;
            if (term_skip(gcn_buf_ei(&gs->out)->buff, (size_t)gcn_buf_ei(&gs->out)->index, &at,
                          TERM_NEXT_MAX_DEPTH) != TERM_EZEROKEYS) {
                bad_return(gs, "handle_call", "wrote a reply that is not exactly one term");
                return;
            }
            /* A whole term, which not every node can read (a map whose keys
             * only the sign of a zero tells apart, which was stored before
             * such maps were refused on their way in, say): the caller is
             * told, the server goes on. */
            log_warning("%s: handle_call's reply holds a term some nodes cannot read (term.h): answered "
                        "{error, unsupported}", gs->cb->name);
            begin_reply(&gs->out, &from);
            ei_x_encode_tuple_header(gcn_buf_ei(&gs->out), 2);
            ei_x_encode_atom(gcn_buf_ei(&gs->out), "error");
            ei_x_encode_atom(gcn_buf_ei(&gs->out), "unsupported");
        }
        send_to(gs, &from, &gs->out);
    }
}

static void dispatch(gen_server *gs, term_view msg)
{
    int i = 0, arity;
    term_view request;
    timeout_off(gs);
    timeout_clear(gs);
    if (ei_decode_tuple_header(msg.ptr, &i, &arity) == 0) {
        if (arity == 3 && term_atom_is(msg, &i, "$gen_call")) {
            handle_call(gs, msg, i);
            timeout_on(gs);
            return;
        }
        if (arity == 2 && term_atom_is(msg, &i, "$gen_cast") && (size_t)i < msg.len) {
            request = (term_view){msg.ptr + i, msg.len - (size_t)i}; /* the last element: to the end */
            if (gs->cb->handle_cast && result(gs, "handle_cast", gs->cb->handle_cast(gs, gs->state, request)) < 0)
                return;
            timeout_on(gs);
            return;
        }
    }
    if (gs->cb->handle_info && result(gs, "handle_info", gs->cb->handle_info(gs, gs->state, msg)) < 0)
        return;
    timeout_on(gs);
}

/* ---- system messages ---- */

/* The caller's OTP release: what its node told us, else a guess from the
 * tag (OTP 27 aliases are 5-word references, OTP 25's 3-word). */
static int caller_release(gen_server *gs, const gcn_from *from)
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
/* The state as format_status (status) or format_state shows it, written
 * into b: 0, or -1 (b as it was) when the module has no such callback or it
 * wrote something other than one term (logged). */
static int format(gen_server *gs, gcn_buf *b, int status)
{
    size_t before = (size_t)gcn_buf_ei(b)->index;
    gcn_buf_lend(b);
    int rc = status && gs->cb->format_status ? gs->cb->format_status(gs, gs->state, b)
             : gs->cb->format_state          ? gs->cb->format_state(gs->state, b)
                                             : -1;
    gcn_buf_unlend(b);
    timeout_clear(gs); /* a timeout asked for here is not one gen_server has */
    if (rc == 0 && gcn_buf_ok_term(b, before))
        return 0;
    if (rc == 0)
        log_error("%s: %s wrote something other than one term", gs->cb->name,
                  status && gs->cb->format_status ? "format_status" : "format_state");
    gcn_buf_ei(b)->index = (int)before;
    b->failed = 0;
    return -1;
}

static void encode_status(gen_server *gs, ei_x_buff *x)
{
    const char *sys_state = gs->suspended ? "suspended" : "running";
    term_view pid = process_pid(gs->self);
    char header[64 + GCN_ATOM_MAX];
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
    ei_x_encode_atom(x, gs->cb->name);
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
    if (format(gs, &gs->sys, 1) < 0)
        ei_x_encode_atom(x, "undefined");
    ei_x_encode_empty_list(x);
    ei_x_encode_empty_list(x);
    ei_x_encode_empty_list(x);
}

static void node_down(process *self, const char *node, size_t len);

static void resume(gen_server *gs)
{
    /* Armed again, then what waited is handled: a message or a job's end
     * puts it off, as it would have, a node's going does not. */
    int put_aside = gs->timeout_aside;
    gs->suspended = 0;
    gs->timeout_aside = 0;
    if (put_aside)
        timeout_arm(gs, gs->suspended_ms);
    while (gs->queue && !gs->suspended && !process_exiting(gs->self)) {
        queued *q = gs->queue;
        gs->queue = q->next;
        if (!gs->queue)
            gs->queue_tail = &gs->queue;
        if (q->job)
            job_done(gs->self, q->job, 1);
        else if (q->node_down)
            node_down(gs->self, q->msg, q->len);
        else
            dispatch(gs, (term_view){q->msg, q->len});
        free(q);
    }
}

static void handle_system(gen_server *gs, term_view msg, int i)
{
    gcn_from from;
    term_view req;
    int arity, j;
    if (decode_from(msg, &i, &from) < 0 || term_next(msg, &i, &req) < 0) {
        log_warning("%s: ignoring a malformed system message", gs->cb->name);
        return;
    }
    gcn_buf *b = &gs->sys;
    ei_x_buff *x = gcn_buf_ei(b);
    begin_reply(b, &from);
    j = 0;
    if (is(req, "get_state")) {
        int ok = caller_release(gs, &from) >= 26; /* OTP 26.1+ wants {ok, State} */
        if (ok) {
            ei_x_encode_tuple_header(x, 2);
            ei_x_encode_atom(x, "ok");
        }
        if (format(gs, b, 0) < 0) {
            begin_reply(b, &from);
            static const char none[] = {119, 8, 'n', 'o', '_', 's', 't', 'a', 't', 'e'};
            gcn_error(b, "not_supported", (term_view){none, sizeof none});
        }
    } else if (is(req, "get_status")) {
        encode_status(gs, x);
    } else if (is(req, "suspend") && process_is_system(gs->self)) {
        /* Suspended, it would hold every peer's pings, starts or pg traffic,
         * queued without bound, until someone resumed it: refused, as stop is. */
        static const char why[] = {119, 14, 's', 'y', 's', 't', 'e', 'm', '_', 'p', 'r', 'o', 'c', 'e', 's', 's'};
        log_warning("%s: refused to suspend: it is one of the node's own processes", gs->cb->name);
        gcn_error(b, "not_supported_by_c_node", (term_view){why, sizeof why});
    } else if (is(req, "suspend")) {
        if (!gs->suspended && gs->timeout_timer) { /* no timeout while suspended, as in OTP */
            gs->suspended_ms = gs->armed_ms;
            gs->timeout_aside = 1;
            timeout_off(gs);
        }
        gs->suspended = 1;
        ei_x_encode_atom(x, "ok");
    } else if (is(req, "resume")) {
        ei_x_encode_atom(x, "ok");
        send_to(gs, &from, b);
        resume(gs);
        return;
    } else if (ei_decode_tuple_header(req.ptr, &j, &arity) == 0 && arity == 2 &&
               term_atom_is(req, &j, "terminate") && process_is_system(gs->self)) {
        static const char why[] = {119, 14, 's', 'y', 's', 't', 'e', 'm', '_', 'p', 'r', 'o', 'c', 'e', 's', 's'};
        log_warning("%s: refused to stop: it is one of the node's own processes", gs->cb->name);
        gcn_error(b, "not_supported_by_c_node", (term_view){why, sizeof why});
    } else if ((j = 0, ei_decode_tuple_header(req.ptr, &j, &arity)) == 0 && arity == 2 &&
               term_atom_is(req, &j, "terminate")) {
        term_view reason = {normal_atom, sizeof normal_atom};
        if (term_next(req, &j, &reason) < 0) /* cannot happen on a checked message */
            reason = (term_view){normal_atom, sizeof normal_atom};
        ei_x_encode_atom(x, "ok");
        send_to(gs, &from, b); /* ok first, then DOWN and EXIT: what proc_lib:stop waits for */
        process_exit(gs->self, reason);
        return;
    } else if ((j = 0, ei_decode_tuple_header(req.ptr, &j, &arity)) == 0 && arity == 2 &&
               term_atom_is(req, &j, "replace_state")) {
        static const char why[] = {119, 13, 'r', 'e', 'p', 'l', 'a', 'c', 'e', '_', 's', 't', 'a', 't', 'e'};
        gcn_error(b, "not_supported_by_c_node", (term_view){why, sizeof why});
    } else {
        gcn_error(b, "unknown_system_msg", req);
    }
    send_to(gs, &from, b);
}

/* ---- the behaviour ---- */

/* Are pids a and b the same (compared canonically: a peer may encode its
 * node's name either way)? */
static int same_pid(term_view a, term_view b)
{
    if (a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0)
        return 1;
    ei_x_buff ca = {0}, cb = {0};
    size_t i = 0, j = 0;
    int same = term_canonical(a.ptr, a.len, &i, 4, &ca) == TERM_OK &&
               term_canonical(b.ptr, b.len, &j, 4, &cb) == TERM_OK && ca.index == cb.index &&
               memcmp(ca.buff, cb.buff, (size_t)ca.index) == 0;
    free(ca.buff);
    free(cb.buff);
    return same;
}

/* {'EXIT', Parent, Reason} from start_link's caller, when trapping exits:
 * OTP's gen_server stops with Reason (terminate runs), suspended or not,
 * and so does this one. i is past the tuple's header. */
static int parent_exit(gen_server *gs, term_view msg, int i, term_view *reason)
{
    term_view from;
    if (!gs->parent || !term_atom_is(msg, &i, "EXIT") || term_next(msg, &i, &from) < 0 ||
        !same_pid(from, (term_view){gs->parent, gs->parent_len}))
        return 0;
    *reason = (term_view){msg.ptr + i, msg.len - (size_t)i};
    return 1;
}

static void message(process *self, term_view msg)
{
    gen_server *gs = process_state(self);
    int i = 0, arity = 0;
    term_view reason;
    gs->handled++;
    if (ei_decode_tuple_header(msg.ptr, &i, &arity) < 0)
        arity = 0;
    if (arity == 3 && term_atom_is(msg, &i, "system")) {
        handle_system(gs, msg, i);
        timeout_restart(gs);
        return;
    }
    if (arity == 3 && parent_exit(gs, msg, i, &reason)) {
        process_exit(gs->self, reason);
        return;
    }
    if (gs->suspended) {
        if (hold(gs, NULL, 0, msg.ptr, msg.len) < 0)
            log_error("%s: out of memory queueing a message while suspended", gs->cb->name);
        return;
    }
    dispatch(gs, msg);
}

static void free_server(gen_server *gs, term_view reason)
{
    if (gs->cb->terminate && !gs->init_failed)
        gs->cb->terminate(gs->state, reason);
    while (gs->queue) {
        queued *q = gs->queue;
        gs->queue = q->next;
        if (q->job) { /* finished while suspended: done with no server, as for any stopped one */
            q->job->done(NULL, NULL, q->job->arg);
            free(q->job);
        }
        free(q);
    }
    gcn_buf_release(&gs->out);
    gcn_buf_release(&gs->later);
    gcn_buf_release(&gs->sys);
    free(gs->parent);
    free(gs);
}

static void destroy(process *self, term_view reason) { free_server(process_state(self), reason); }

static void node_down(process *self, const char *node, size_t len)
{
    gen_server *gs = process_state(self);
    if (gs->cb->node_down && gs->suspended) { /* told at resume, in order with the messages */
        if (hold(gs, NULL, 1, node, len) == 0)
            return;
        log_error("%s: out of memory holding a node's going while suspended: node_down runs now", gs->cb->name);
    }
    if (gs->cb->node_down) {
        timeout_clear(gs);
        gs->cb->node_down(gs, gs->state, node, len);
        timeout_on(gs);
    }
}

static void flush(process *self)
{
    gen_server *gs = process_state(self);
    /* not for a server whose init failed (it may have asked, then failed:
     * its flush, run before it goes, would get no state) */
    if (gs->cb->flush && !gs->init_failed && gs->state) {
        timeout_clear(gs);
        gs->cb->flush(gs, gs->state);
        timeout_on(gs);
    }
}


/* A message the node could not accept (too deep, too large): if it is a
 * call, tell the caller so rather than let it wait for its timeout. Only the
 * envelope {'$gen_call', {Pid, Tag}, _} is read, each part checked first
 * (of a message too large, raw holds only its first bytes). */
static void refused(process *self, term_view raw, const char *why)
{
    gen_server *gs = process_state(self);
    size_t i = 2, start;
    term_view label, from_term;
    gcn_from from;
    int j = 0;
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
    gcn_buf *b = &gs->sys;
    begin_reply(b, &from);
    ei_x_encode_tuple_header(gcn_buf_ei(b), 2);
    ei_x_encode_atom(gcn_buf_ei(b), "error");
    ei_x_encode_tuple_header(gcn_buf_ei(b), 2);
    ei_x_encode_atom(gcn_buf_ei(b), "bad_request");
    ei_x_encode_atom(gcn_buf_ei(b), why);
    send_to(gs, &from, b);
}

static const process_behaviour gen_server_behaviour = {message, destroy, node_down, flush, refused};

void *gen_server_state_of(process *p, const gcn_module *cb, gen_server **server)
{
    if (!p || process_behaviour_of(p) != &gen_server_behaviour)
        return NULL;
    gen_server *gs = process_state(p);
    if (gs->cb != cb || gs->init_failed || !gs->state)
        return NULL;
    if (server)
        *server = gs;
    return gs->state;
}

/* A failed start exits with its error (an atom's text, at most 255 bytes),
 * as an OTP server whose init returns {stop, Reason}: links init made see it. */
static void exit_with_error(process *p, const char *error)
{
    char reason[2 + 255] = {119};
    size_t len = strlen(error);
    reason[1] = (char)len;
    memcpy(reason + 2, error, len);
    process_exit(p, (term_view){reason, 2 + len});
}

process *gen_server_start(process_table *t, const gcn_module *cb, void *priv, term_view arg,
                          const char *name, const char **error)
{
    static const char shutdown[] = {119, 8, 's', 'h', 'u', 't', 'd', 'o', 'w', 'n'};
    static const char nil[] = {106};
    gcn_init init = {NULL, 0, 0};
    *error = "out_of_memory";
    if (name && !atom_text_ok(name, strlen(name))) {
        *error = "badarg"; /* as register/2: no atom's text */
        return NULL;
    }
    if (name && process_whereis(t, name, strlen(name))) {
        *error = "already_started";
        return NULL;
    }
    gen_server *gs = calloc(1, sizeof *gs);
    if (!gs)
        return NULL;
    gs->cb = cb;
    gs->priv = priv;
    gs->queue_tail = &gs->queue;
    gs->init_failed = 1; /* until init says otherwise: no terminate */
    if (gcn_buf_init(&gs->out) < 0 || gcn_buf_init(&gs->later) < 0 || gcn_buf_init(&gs->sys) < 0) {
        gcn_buf_release(&gs->out);
        gcn_buf_release(&gs->later);
        gcn_buf_release(&gs->sys);
        free(gs);
        return NULL;
    }
    /* The process exists before init runs, so init may use gcn_self, timers
     * and jobs; if init fails it goes again without a trace (no monitor or
     * link can be on it yet). */
    process *p = process_spawn(t, &gen_server_behaviour, gs);
    if (!p) {
        if (process_table_full(t))
            *error = "system_limit"; /* as spawn beyond +P; process_spawn logged it */
        free_server(gs, (term_view){shutdown, sizeof shutdown});
        return NULL;
    }
    gs->self = p;
    if (cb->node_down)
        process_want_node_down(p);
    /* Registered before init runs, as OTP does: init may use its name. */
    if (name && process_register(p, name) < 0) {
        process_exit(p, (term_view){shutdown, sizeof shutdown});
        return NULL; /* out of memory: the name was free, and is an atom's text */
    }
    if (!arg.len)
        arg = (term_view){nil, sizeof nil};
    if (cb->init) {
        const char *why = NULL;
        gs->initing = &init;
        int failed = cb->init(gs, arg, &init, &why) != 0;
        gs->initing = NULL;
        if (failed) {
            /* The reason goes out as an atom: one that is none is the module's bug. */
            if (why && (strlen(why) > 255 || !atom_text_ok(why, strlen(why)))) {
                log_error("%s: init failed with an error that is no atom; reporting init_failed", cb->name);
                why = NULL;
            }
            *error = why ? why : "init_failed";
            exit_with_error(p, *error);
            return NULL;
        }
        if (!init.state) {
            log_error("%s: init returned no state; the server is not started", cb->name);
            *error = "bad_return_value";
            exit_with_error(p, *error);
            return NULL;
        }
    }
    gs->init_failed = 0;
    gs->state = init.state; /* terminate releases it, whatever follows */
    if (process_exiting(p)) {
        /* init called gcn_stop: a failed start, as an OTP init that exits
         * is one ({error, Reason} from the starter, when Reason is an atom). */
        static char stopped[4 * 255 + 1];
        term_view r = process_exit_reason(p);
        int at = 0;
        const char *text;
        size_t len;
        int utf8 = r.len && ((unsigned char)r.ptr[0] == 118 || (unsigned char)r.ptr[0] == 119);
        int atom = term_atom(r, &at, &text, &len) == 0 && (size_t)at == r.len && len > 0 &&
                   len < sizeof stopped && !memchr(text, '\0', len);
        for (size_t k = 0; atom && !utf8 && k < len; k++)
            atom = (unsigned char)text[k] < 128; /* latin1 beyond ASCII: not UTF-8 text as it stands */
        snprintf(stopped, sizeof stopped, "%.*s", atom ? (int)len : 0, atom ? text : "");
        *error = atom ? stopped : "init_stopped";
        return NULL;
    }
    gs->want_continue = init.want_continue && cb->handle_continue;
    process_set_trap_exit(p, init.trap_exit);
    timeout_on(gs); /* init may ask for a timeout, as {ok, State, Timeout} */
    return p;
}

void gen_server_continue(process *p)
{
    gen_server *gs = process_state(p);
    if (gs->want_continue && !process_exiting(p)) {
        gs->want_continue = 0;
        timeout_off(gs); /* handle_continue's return decides, as in OTP (init's has no timeout then) */
        timeout_clear(gs);
        gs->cb->handle_continue(gs, gs->state);
        timeout_on(gs);
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

/* starter.c: starting servers on request; see starter.h. */
#define GEN_CNODE_STATIC /* linked into the node: no loadable entry point */
#include "starter.h"

#include "pg_scope.h"

#include <stdlib.h>
#include <string.h>

/* A start whose name a stopped server still holds until its teardown (its
 * terminate runs at the node's next settle: process.h): it waits for that,
 * as a supervisor's restart waits for the EXIT, so that what the old server
 * held is free for the new one: a durable kv's folder lock, say. The
 * starter mails itself RETRY, which the settle delivers; the teardown
 * follows in that settle or the one before, so a start waits a settle or
 * two, within the turn. */
#define RETRY "$gen_cnode_retry_starts"
typedef struct waiting {
    struct waiting *next;
    gcn_caller *caller;
    char name[GCN_ATOM_MAX]; /* the name it waits for */
    size_t len;
    char req[]; /* the request, as it came */
} waiting;

typedef struct starter {
    const module_table *mods;
    gen_server *self; /* its own server: valid as long as this state is */
    waiting *waiting, **waiting_tail; /* in the order they came */
    int retry_sent;
} starter;

static int starter_init(gcn_server *self, term_view arg, gcn_init *out, const char **error)
{
    (void)arg;
    starter *st = malloc(sizeof *st);
    if (!st) {
        *error = "out_of_memory";
        return -1;
    }
    st->mods = gcn_priv(self);
    st->self = self;
    st->waiting = NULL;
    st->waiting_tail = &st->waiting;
    st->retry_sent = 0;
    out->state = st;
    return 0;
}

static void starter_terminate(void *state, term_view reason)
{
    (void)reason;
    starter *st = state;
    while (st->waiting) { /* unanswered: their callers' monitors tell them */
        waiting *w = st->waiting;
        st->waiting = w->next;
        gcn_release(w->caller);
        free(w);
    }
    free(st);
}

/* The stats map (starter.h): servers and modules from here, the rest from
 * the process table and the node. 0, or -1 with out as it was. */
static int encode_stats(const starter *st, gcn_buf *out)
{
    process *me = gen_server_process(st->self);
    process_table *t = process_table_of(me);
    ei_x_buff *x = gcn_buf_ei(out);
    int at = x->index;
    ei_x_buff pairs;
    if (ei_x_new(&pairs) < 0)
        return -1;
    int n = process_table_encode_stats(t, &pairs);
    size_t nmods = st->mods ? module_table_count(st->mods) : 0;
    int rc = n < 0 || ei_x_encode_map_header(x, n + 2) < 0 || ei_x_encode_atom(x, "servers") < 0 ||
             ei_x_encode_ulonglong(x, process_table_count_behaviour(t, process_behaviour_of(me))) < 0 ||
             ei_x_encode_atom(x, "modules") < 0 || ei_x_encode_list_header(x, (long)nmods) < 0
             ? -1 : 0;
    for (size_t i = 0; rc == 0 && i < nmods; i++) {
        const char *name = module_table_at(st->mods, i)->name;
        rc = ei_x_encode_atom_len_as(x, name, (int)strlen(name), ERLANG_UTF8, ERLANG_UTF8);
    }
    if (rc == 0 && nmods)
        rc = ei_x_encode_empty_list(x);
    if (rc == 0)
        rc = ei_x_append_buf(x, pairs.buff, pairs.index);
    ei_x_free(&pairs);
    if (rc < 0)
        x->index = at;
    return rc < 0 ? -1 : 0;
}

static int starter_format_state(void *state, gcn_buf *out) { return encode_stats(state, out); }

static int starter_format_status(gen_server *self, void *state, gcn_buf *out)
{
    (void)self;
    return encode_stats(state, out);
}


int starter_is_name(const char *name)
{
    return name[0] && strcmp(name, "undefined") != 0 && strcmp(name, "nil") != 0;
}

/* Start options: [{name, Name}] and [{pg, Group}] or [{pg, {Scope, Group}}]
 * (the default scope pg). name[0] is '\0' for none, group->ptr NULL. */
static int start_options(term_view opts, char *name, char *scope, gcn_term *group)
{
    gcn_iter it;
    gcn_term opt, g;
    name[0] = '\0';
    strcpy(scope, "pg");
    group->ptr = NULL;
    if (gcn_iter_list(opts, &it) < 0)
        return -1;
    while (gcn_next(&it, &opt)) {
        if (gcn_match(opt, "{name, ~a}", name)) {
            if (!starter_is_name(name))
                return -1;
            continue;
        }
        if (gcn_match(opt, "{pg, {~a, ~t}}", scope, &g) || gcn_match(opt, "{pg, ~t}", &g)) {
            *group = g;
            continue;
        }
        return -1;
    }
    return 0;
}

/* What a start request came to. */
enum started { ANSWERED, STARTED, WAIT };

/* Does a start wait for name already? A later one for it waits behind. */
static int name_waited_for(const starter *st, const char *name)
{
    for (const waiting *w = st->waiting; w; w = w->next)
        if (strcmp(w->name, name) == 0)
            return 1;
    return 0;
}

/* Start what req asks for, for from: STARTED with the server in *out (its
 * {ok, Pid} still to send), ANSWERED with the error in reply, or WAIT while
 * the name is held by a server on its way out, or a start before it waits
 * for that name (see waiting), with the name in wait_name. */
static enum started start(const starter *st, term_view req, const gcn_from *from, gcn_buf *reply,
                          process **out, char *wait_name)
{
    char op[MAXATOMLEN_UTF8], module[MAXATOMLEN_UTF8], name[GCN_ATOM_MAX] = "", scope[GCN_ATOM_MAX] = "pg";
    gcn_term group = {NULL, 0};
    int i = 0, arity;
    term_view mod_term, arg, opts;
    if (ei_decode_tuple_header(req.ptr, &i, &arity) < 0 || (arity != 3 && arity != 4) ||
        ei_decode_atom(req.ptr, &i, op) < 0 || (strcmp(op, "start") && strcmp(op, "start_link")) ||
        term_next(req, &i, &mod_term) < 0 || term_next(req, &i, &arg) < 0 ||
        (arity == 4 && (term_next(req, &i, &opts) < 0 || start_options(opts, name, scope, &group) < 0))) {
        gcn_error(reply, "unknown_call", req);
        return ANSWERED;
    }
    int j = 0;
    const gcn_module *m = NULL;
    void *priv = NULL;
    if (ei_decode_atom(mod_term.ptr, &j, module) == 0)
        m = module_table_find(st->mods, module, &priv);
    if (!m) {
        gcn_error(reply, "unknown_module", mod_term);
        return ANSWERED;
    }
    process_table *t = process_table_of(gen_server_process(st->self));
    process *existing = name[0] ? process_whereis(t, name, strlen(name)) : NULL;
    if (existing) {
        gcn_error(reply, "already_started", process_pid(existing));
        return ANSWERED;
    }
    if (name[0] && (process_name_releasing(t, name, strlen(name)) || name_waited_for(st, name))) {
        strcpy(wait_name, name);
        return WAIT;
    }
    if (group.ptr && !pg_scope_running(t, scope)) {
        gcn_build(reply, "{error, {unknown_scope, ~a}}", scope);
        return ANSWERED;
    }
    const char *error;
    process *p = gen_server_start(t, m, priv, arg, name[0] ? name : NULL, &error);
    if (!p) {
        gcn_build(reply, "{error, ~a}", error);
        return ANSWERED;
    }
    if (strcmp(op, "start_link") == 0) {
        process_link(p, from->pid, 1);
        gen_server_set_parent(p, from->pid);
    }
    if (group.ptr)
        pg_scope_join(t, scope, group, process_pid(p)); /* fails only when out of memory: logged */
    *out = p;
    return STARTED;
}

/* {ok, Pid} of a server of this node, in ok (of OK_BYTES). */
#define OK_BYTES (6 + 1 + 2 + 255 + 12)
static term_view ok_pid(const process *p, char *ok)
{
    static const char head[] = {104, 2, 119, 2, 'o', 'k'};
    term_view pid = process_pid(p);
    memcpy(ok, head, sizeof head);
    memcpy(ok + sizeof head, pid.ptr, pid.len); /* a pid of this node: never longer than that */
    return (term_view){ok, sizeof head + pid.len};
}

/* Keep a start for later (see waiting): 0, or -1 out of memory (for it,
 * or for the retry that would have woken it). */
static int wait_for_name(starter *st, term_view req, const char *name, gcn_caller *caller)
{
    if (!st->retry_sent) {
        char retry[2 + sizeof RETRY - 1] = {119, sizeof RETRY - 1};
        memcpy(retry + 2, RETRY, sizeof RETRY - 1);
        if (gcn_send(st->self, gcn_self(st->self), (term_view){retry, sizeof retry}) < 0)
            return -1;
        st->retry_sent = 1;
    }
    waiting *w = malloc(sizeof *w + req.len);
    if (!w)
        return -1;
    w->next = NULL;
    w->caller = caller;
    strcpy(w->name, name);
    w->len = req.len;
    memcpy(w->req, req.ptr, req.len);
    *st->waiting_tail = w;
    st->waiting_tail = &w->next;
    return 0;
}

static enum gcn_result starter_call(gen_server *self, void *state, term_view req,
                                           const gcn_from *from, gcn_buf *reply)
{
    starter *st = state;
    if (term_atom_is(req, &(int){0}, "stats")) {
        if (encode_stats(st, reply) < 0)
            gcn_build(reply, "{error, out_of_memory}");
        return GCN_REPLY;
    }
    char node[GCN_ATOM_MAX];
    if (gcn_match(req, "{connect, ~a}", node)) {
        if (gcn_connect(self, node) == 0)
            gcn_build(reply, "ok");
        else
            gcn_build(reply, "{error, {cannot_connect, ~a}}", node);
        return GCN_REPLY;
    }
    process *p = NULL;
    char name[GCN_ATOM_MAX];
    switch (start(st, req, from, reply, &p, name)) {
    case ANSWERED:
        return GCN_REPLY;
    case WAIT: {
        gcn_caller *c = gcn_hold(from);
        if (!c || wait_for_name(st, req, name, c) < 0) {
            if (c)
                gcn_release(c);
            gcn_build(reply, "{error, out_of_memory}");
            return GCN_REPLY;
        }
        return GCN_NOREPLY;
    }
    case STARTED:
        break;
    }
    /* {ok, Pid} first, then the new server's post-init work. */
    char ok[OK_BYTES];
    gcn_reply(self, from, ok_pid(p, ok));
    gen_server_continue(p);
    return GCN_NOREPLY;
}

/* RETRY: the starts that wait go again, in order; those whose name is
 * still on its way out wait on. Any other message is dropped. */
static enum gcn_result starter_info(gen_server *self, void *state, term_view msg)
{
    starter *st = state;
    if (!gcn_is_atom(msg, RETRY))
        return GCN_NOREPLY;
    st->retry_sent = 0;
    waiting *list = st->waiting;
    st->waiting = NULL;
    st->waiting_tail = &st->waiting;
    gcn_buf *reply = gcn_buf_new();
    while (list) {
        waiting *w = list;
        list = w->next;
        gcn_from from = gcn_caller_from(w->caller);
        process *p = NULL;
        char ok[OK_BYTES];
        enum started r = WAIT;
        if (reply) {
            gcn_buf_reset(reply);
            r = start(st, (term_view){w->req, w->len}, &from, reply, &p, w->name);
        }
        if (r == WAIT) {
            if (reply && wait_for_name(st, (term_view){w->req, w->len}, w->name, w->caller) == 0) {
                free(w);
                continue;
            }
            static const char oom[] = {104, 2, 119, 5, 'e', 'r', 'r', 'o', 'r', 119, 13, 'o', 'u', 't', '_',
                                       'o', 'f', '_', 'm', 'e', 'm', 'o', 'r', 'y'};
            gcn_reply_held(self, w->caller, (term_view){oom, sizeof oom}); /* {error, out_of_memory} */
        } else if (r == ANSWERED) {
            gcn_reply_held(self, w->caller, gcn_buf_term(reply));
        } else {
            gcn_reply_held(self, w->caller, ok_pid(p, ok));
            gen_server_continue(p);
        }
        free(w);
    }
    gcn_buf_free(reply);
    return GCN_NOREPLY;
}

GEN_CNODE_MODULE(gen_cnode, .init = starter_init, .handle_call = starter_call, .handle_info = starter_info,
                 .format_state = starter_format_state, .format_status = starter_format_status,
                 .terminate = starter_terminate)

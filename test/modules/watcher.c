/*
 * watcher.c: a module for the tests of sending, links and monitors from C
 * (gcn_send, gcn_link, gcn_unlink, gcn_monitor, gcn_demonitor), written only
 * against gen_cnode.h. It traps exits.
 *   {monitor, Pid}       {ok, Ref}
 *   {demonitor, Ref}     1 if the monitor was on, else 0
 *   {link, Pid}          ok | error        {unlink, Pid}   ok | error
 *   {send, To, Msg}      ok | error (To: a pid, a name, or {Name, Node})
 *   {connect, Node}      ok | error (gcn_connect; Node an atom)
 *   {pg_join, Scope, Group}, {pg_leave, Scope, Group}   ok | error (Scope
 *                        default: the scope pg; gcn_pg_join, gcn_pg_leave)
 *   seen                 every info so far ({'DOWN', ...}, {'EXIT', ...},
 *                        anything sent to it), oldest first; then forgets them
 *   {last_words, To, Msg}  ok | error: its terminate sends {Msg, Reason} to
 *                        To (gcn_send), in the order given (at most 8)
 */
#include <stdlib.h>
#include <string.h>

#include <gen_cnode.h>

typedef struct item {
    struct item *next;
    size_t len;
    char bytes[]; /* one info, encoded */
} item;

#define MAX_LAST_WORDS 8

typedef struct seen {
    item *first, **last;
    size_t count;
    gcn_server *self; /* for terminate's sends: valid as long as this state */
    gcn_buf *to[MAX_LAST_WORDS], *msg[MAX_LAST_WORDS];
    int nwords;
} seen;

static void forget(seen *s)
{
    while (s->first) {
        item *i = s->first;
        s->first = i->next;
        free(i);
    }
    s->last = &s->first;
    s->count = 0;
}

static int init(gcn_server *self, gcn_term arg, gcn_init *out, const char **error)
{
    (void)arg;
    seen *s = calloc(1, sizeof *s);
    if (!s) {
        *error = "out_of_memory";
        return -1;
    }
    s->self = self;
    s->last = &s->first;
    out->state = s;
    out->trap_exit = 1;
    return 0;
}

static enum gcn_result call(gcn_server *self, void *state, gcn_term req, const gcn_from *from,
                            gcn_buf *reply)
{
    (void)from;
    seen *s = state;
    gcn_term a, b;
    if (gcn_match(req, "{monitor, ~t}", &a)) {
        gcn_buf *ref = gcn_buf_new();
        if (ref && gcn_monitor(self, a, ref) == 0)
            gcn_build(reply, "{ok, ~t}", gcn_buf_term(ref));
        else
            gcn_put_atom(reply, "error");
        gcn_buf_free(ref);
    } else if (gcn_match(req, "{demonitor, ~t}", &a)) {
        gcn_put_int(reply, gcn_demonitor(self, a));
    } else if (gcn_match(req, "{link, ~t}", &a)) {
        gcn_put_atom(reply, gcn_link(self, a) == 0 ? "ok" : "error");
    } else if (gcn_match(req, "{unlink, ~t}", &a)) {
        gcn_put_atom(reply, gcn_unlink(self, a) == 0 ? "ok" : "error");
    } else if (gcn_match(req, "{send, ~t, ~t}", &a, &b)) {
        gcn_put_atom(reply, gcn_send(self, a, b) == 0 ? "ok" : "error");
    } else if (gcn_match(req, "{connect, ~t}", &a)) {
        char node[GCN_ATOM_MAX];
        gcn_put_atom(reply, gcn_get_atom(a, node) == 0 && gcn_connect(self, node) == 0 ? "ok" : "error");
    } else if (gcn_match(req, "{pg_join, ~t, ~t}", &a, &b) || gcn_match(req, "{pg_leave, ~t, ~t}", &a, &b)) {
        char scope[GCN_ATOM_MAX];
        const char *sc = gcn_is_atom(a, "default") ? NULL : scope;
        int join = gcn_match(req, "{pg_join, _, _}");
        if (sc && gcn_get_atom(a, scope) < 0)
            gcn_put_atom(reply, "error");
        else
            gcn_put_atom(reply, (join ? gcn_pg_join(self, sc, b) : gcn_pg_leave(self, sc, b)) == 0 ? "ok" : "error");
    } else if (gcn_match(req, "{last_words, ~t, ~t}", &a, &b)) {
        int k = s->nwords;
        int ok = k < MAX_LAST_WORDS && (s->to[k] = gcn_buf_new()) && (s->msg[k] = gcn_buf_new()) &&
                 gcn_put_term(s->to[k], a) == 0 && gcn_put_term(s->msg[k], b) == 0;
        if (ok) {
            s->nwords++;
        } else if (k < MAX_LAST_WORDS) {
            gcn_buf_free(s->to[k]);
            gcn_buf_free(s->msg[k]);
            s->to[k] = s->msg[k] = NULL;
        }
        gcn_put_atom(reply, ok ? "ok" : "error");
    } else if (gcn_match(req, "seen")) {
        gcn_put_list(reply, s->count);
        for (item *i = s->first; i; i = i->next)
            gcn_put_term(reply, (gcn_term){i->bytes, i->len});
        if (s->count)
            gcn_put_nil(reply);
        forget(s);
    } else {
        gcn_error(reply, "unknown_call", req);
    }
    return GCN_REPLY;
}

static enum gcn_result info(gcn_server *self, void *state, gcn_term msg)
{
    (void)self;
    seen *s = state;
    item *i = malloc(sizeof *i + msg.len);
    if (i) {
        i->next = NULL;
        i->len = msg.len;
        memcpy(i->bytes, msg.ptr, msg.len);
        *s->last = i;
        s->last = &i->next;
        s->count++;
    }
    return GCN_NOREPLY;
}

static void terminate(void *state, gcn_term reason)
{
    seen *s = state;
    for (int k = 0; k < s->nwords; k++) {
        gcn_buf *out = gcn_buf_new();
        if (out && gcn_build(out, "{~t, ~t}", gcn_buf_term(s->msg[k]), reason) == 0)
            gcn_send(s->self, gcn_buf_term(s->to[k]), gcn_buf_term(out));
        gcn_buf_free(out);
        gcn_buf_free(s->to[k]);
        gcn_buf_free(s->msg[k]);
    }
    forget(s);
    free(s);
}

GEN_CNODE_MODULE(watcher, .init = init, .handle_call = call, .handle_info = info,
                 .terminate = terminate)

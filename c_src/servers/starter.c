/* starter.c: starting servers on request; see starter.h. */
#define GEN_CNODE_STATIC /* linked into the node: no loadable entry point */
#include "starter.h"

#include "pg_scope.h"

#include <stdlib.h>
#include <string.h>

typedef struct starter {
    const module_table *mods;
    gen_server *self; /* its own server: valid as long as this state is */
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
    out->state = st;
    return 0;
}

static void starter_terminate(void *state, term_view reason)
{
    (void)reason;
    free(state);
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

static enum gcn_result starter_call(gen_server *self, void *state, term_view req,
                                           const gcn_from *from, gcn_buf *reply)
{
    const starter *st = state;
    const module_table *mods = st->mods;
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
    char op[MAXATOMLEN_UTF8], module[MAXATOMLEN_UTF8], name[GCN_ATOM_MAX] = "", scope[GCN_ATOM_MAX] = "pg";
    gcn_term group = {NULL, 0};
    int i = 0, arity;
    term_view mod_term, arg, opts;
    if (ei_decode_tuple_header(req.ptr, &i, &arity) < 0 || (arity != 3 && arity != 4) ||
        ei_decode_atom(req.ptr, &i, op) < 0 || (strcmp(op, "start") && strcmp(op, "start_link")) ||
        term_next(req, &i, &mod_term) < 0 || term_next(req, &i, &arg) < 0 ||
        (arity == 4 && (term_next(req, &i, &opts) < 0 || start_options(opts, name, scope, &group) < 0))) {
        gcn_error(reply, "unknown_call", req);
        return GCN_REPLY;
    }
    int j = 0;
    const gcn_module *m = NULL;
    void *priv = NULL;
    if (ei_decode_atom(mod_term.ptr, &j, module) == 0)
        m = module_table_find(mods, module, &priv);
    if (!m) {
        gcn_error(reply, "unknown_module", mod_term);
        return GCN_REPLY;
    }
    process_table *t = process_table_of(gen_server_process(self));
    process *existing = name[0] ? process_whereis(t, name, strlen(name)) : NULL;
    if (existing) {
        gcn_error(reply, "already_started", process_pid(existing));
        return GCN_REPLY;
    }
    if (group.ptr && !pg_scope_running(t, scope)) {
        gcn_build(reply, "{error, {unknown_scope, ~a}}", scope);
        return GCN_REPLY;
    }
    const char *error;
    process *p = gen_server_start(t, m, priv, arg, name[0] ? name : NULL, &error);
    if (!p) {
        gcn_build(reply, "{error, ~a}", error);
        return GCN_REPLY;
    }
    if (strcmp(op, "start_link") == 0) {
        process_link(p, from->pid, 1);
        gen_server_set_parent(p, from->pid);
    }
    if (group.ptr)
        pg_scope_join(t, scope, group, process_pid(p)); /* fails only when out of memory: logged */
    /* {ok, Pid} first, then the new server's post-init work. */
    term_view pid = process_pid(p);
    char ok[6 + 1 + 2 + 255 + 12] = {104, 2, 119, 2, 'o', 'k'};
    memcpy(ok + 6, pid.ptr, pid.len); /* a pid of this node: never longer than that */
    gcn_reply(self, from, (term_view){ok, 6 + pid.len});
    gen_server_continue(p);
    return GCN_NOREPLY;
}

GEN_CNODE_MODULE(gen_cnode, .init = starter_init, .handle_call = starter_call,
                 .format_state = starter_format_state, .format_status = starter_format_status,
                 .terminate = starter_terminate)

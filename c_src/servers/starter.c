/* starter.c: starting servers on request; see starter.h. */
#define GEN_CNODE_STATIC /* linked into the node: no loadable entry point */
#include "starter.h"

#include <string.h>

static int starter_init(gcn_server *self, term_view arg, gcn_init *out, const char **error)
{
    (void)arg;
    (void)error;
    out->state = gcn_priv(self);
    return 0;
}


/* The name in [{name, Name}], or none. */
static int name_option(term_view opts, char *name)
{
    int i = 0, n, arity;
    name[0] = '\0';
    if (ei_decode_list_header(opts.ptr, &i, &n) < 0)
        return -1;
    for (int k = 0; k < n; k++) {
        char key[MAXATOMLEN_UTF8];
        if (ei_decode_tuple_header(opts.ptr, &i, &arity) < 0 || arity != 2 ||
            ei_decode_atom(opts.ptr, &i, key) < 0 || strcmp(key, "name") != 0 ||
            ei_decode_atom(opts.ptr, &i, name) < 0)
            return -1;
    }
    return 0;
}

static enum gcn_result starter_call(gen_server *self, void *state, term_view req,
                                           const gcn_from *from, gcn_buf *reply)
{
    const module_table *mods = state;
    char op[MAXATOMLEN_UTF8], module[MAXATOMLEN_UTF8], name[MAXATOMLEN_UTF8] = "";
    int i = 0, arity;
    term_view mod_term, arg, opts;
    if (ei_decode_tuple_header(req.ptr, &i, &arity) < 0 || (arity != 3 && arity != 4) ||
        ei_decode_atom(req.ptr, &i, op) < 0 || (strcmp(op, "start") && strcmp(op, "start_link")) ||
        term_next(req, &i, &mod_term) < 0 || term_next(req, &i, &arg) < 0 ||
        (arity == 4 && (term_next(req, &i, &opts) < 0 || name_option(opts, name) < 0))) {
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
    /* {ok, Pid} first, then the new server's post-init work. */
    term_view pid = process_pid(p);
    char ok[6 + 1 + 2 + 255 + 12] = {104, 2, 119, 2, 'o', 'k'};
    memcpy(ok + 6, pid.ptr, pid.len); /* a pid of this node: never longer than that */
    gcn_reply(self, from, (term_view){ok, 6 + pid.len});
    gen_server_continue(p);
    return GCN_NOREPLY;
}

GEN_CNODE_MODULE(gen_cnode, .init = starter_init, .handle_call = starter_call)

/* failing_load.c: a module whose load function refuses (for the load-error
 * tests), and whose init fails on the argument fail, or with an error that
 * is no atom on no_atom. */
#include <string.h>

#include <gen_cnode.h>

static int load(const char *args, void **priv)
{
    (void)priv;
    return args && strcmp(args, "refuse") == 0 ? -1 : 0;
}

static int init(gcn_server *self, gcn_term arg, gcn_init *out, const char **error)
{
    (void)self;
    if (gcn_match(arg, "fail")) {
        *error = "asked_to_fail";
        return -1;
    }
    if (gcn_match(arg, "no_atom")) { /* an error no atom can carry: too long */
        static char long_error[300];
        memset(long_error, 'x', sizeof long_error - 1);
        *error = long_error;
        return -1;
    }
    out->state = (void *)1;
    return 0;
}

static enum gcn_result call(gcn_server *self, void *state, gcn_term req, const gcn_from *from,
                            gcn_buf *reply)
{
    (void)self, (void)state, (void)req, (void)from;
    return gcn_put_atom(reply, "ok"), GCN_REPLY;
}

GEN_CNODE_MODULE(failing_load, .load = load, .init = init, .handle_call = call)

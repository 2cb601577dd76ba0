/* wrong_version.c: a module that says it was built against API 99.0: the
 * node must refuse to load it, with a clear message. */
#include <gen_cnode.h>

static enum gcn_result call(gcn_server *self, void *state, gcn_term req, const gcn_from *from,
                            gcn_buf *reply)
{
    (void)self, (void)state, (void)req, (void)from;
    return gcn_put_atom(reply, "ok"), GCN_REPLY;
}

static const gcn_module module = {.api_major = 99, .api_minor = 0, .name = "wrong_version",
                                  .handle_call = call};

const gcn_module *gen_cnode_module(void);
const gcn_module *gen_cnode_module(void) { return &module; }

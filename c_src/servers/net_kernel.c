/* net_kernel.c: answers {is_auth, Node} with yes, so that pings get pong; see net_kernel.h. */
#define GEN_CNODE_STATIC /* linked into the node: no loadable entry point */
#include "net_kernel.h"

#include <string.h>

static enum gcn_result handle_call(gen_server *self, void *state, term_view req,
                                          const gcn_from *from, gcn_buf *reply_buf)
{
    ei_x_buff *reply = gcn_buf_ei(reply_buf);
    (void)self;
    (void)state;
    (void)from;
    char atom[MAXATOMLEN_UTF8];
    int i = 0, arity;
    if (ei_decode_tuple_header(req.ptr, &i, &arity) == 0 && arity == 2 &&
        ei_decode_atom(req.ptr, &i, atom) == 0 && strcmp(atom, "is_auth") == 0) {
        ei_x_encode_atom(reply, "yes");
    } else {
        ei_x_encode_tuple_header(reply, 2);
        ei_x_encode_atom(reply, "error");
        ei_x_encode_atom(reply, "not_supported");
    }
    return GCN_REPLY;
}

GEN_CNODE_MODULE(net_kernel, .handle_call = handle_call)

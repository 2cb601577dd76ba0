/* net_kernel.c: answers {is_auth, Node} with yes, so that pings get pong; see net_kernel.h. */
#include "net_kernel.h"

#include <string.h>

static enum gen_server_result handle_call(gen_server *self, void *state, term_view req,
                                          const gen_server_from *from, ei_x_buff *reply)
{
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
    return GEN_SERVER_REPLY;
}

const gen_server_callbacks net_kernel_callbacks = {
    .module = "net_kernel",
    .handle_call = handle_call,
};

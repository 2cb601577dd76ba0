/*
 * gen_server.h: the generic server behaviour, as OTP's gen_server.erl is for
 * Erlang. The engine receives what BEAM nodes send a gen_server
 * ({'$gen_call', {Pid, Tag}, Request}, {'$gen_cast', Request}, anything else
 * as info), calls the callback module, and sends {Tag, Reply} back: to the
 * caller's alias when the tag carries one ([alias | Ref], OTP 24+), else to
 * its pid. The tag is opaque: it is copied back byte for byte.
 *
 * Writing a server: fill a gen_server_callbacks with your functions and call
 * gen_server_start. Requests arrive as term_views (encoded terms, already
 * checked to be well formed, so ei's decode functions are safe on them);
 * handle_call encodes exactly one term, its reply, into `reply` with ei's
 * ei_x_encode_* functions (or ei_x_append_buf for bytes you keep) and returns
 * GEN_SERVER_REPLY. The engine knows nothing of any callback module's
 * messages; callback modules know nothing of connections or frames.
 */
#ifndef GEN_CNODE_GEN_SERVER_H
#define GEN_CNODE_GEN_SERVER_H

#include <ei.h>

#include "process.h"
#include "term.h"

enum gen_server_result {
    GEN_SERVER_REPLY,   /* handle_call: reply now with what was encoded */
    GEN_SERVER_NOREPLY, /* no reply (casts, info; a call that replies later) */
};

/* Who called: valid only during the callback. */
typedef struct gen_server_from {
    term_view pid;
    term_view tag;
} gen_server_from;

typedef struct gen_server_callbacks {
    const char *module; /* the name sys:get_status shows */
    /* Make the server's state from arg (may be NULL); 0 on success. */
    int (*init)(const void *arg, void **state);
    enum gen_server_result (*handle_call)(void *state, term_view request,
                                          const gen_server_from *from, ei_x_buff *reply);
    enum gen_server_result (*handle_cast)(void *state, term_view request);
    enum gen_server_result (*handle_info)(void *state, term_view msg);
    /* Encode the state as one term (what :sys.get_state shows); optional. */
    int (*format_state)(void *state, ei_x_buff *out);
    /* Release the state. */
    void (*terminate)(void *state);
} gen_server_callbacks;

/* Start a server on the node's process table: runs init(arg), then registers
 * it under `name` when name is not NULL. Returns the process, or NULL when
 * init failed, the name is taken or memory ran out. */
process *gen_server_start(process_table *t, const gen_server_callbacks *cb, const void *arg,
                          const char *name);

/* How many messages the server has handled (calls, casts and infos). */
unsigned long long gen_server_handled(const process *p);

#endif

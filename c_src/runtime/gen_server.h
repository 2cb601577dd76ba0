/*
 * gen_server.h: the generic server behaviour, as OTP's gen_server.erl is for
 * Erlang. The engine receives what BEAM nodes send a gen_server
 * ({'$gen_call', {Pid, Tag}, Request}, {'$gen_cast', Request}, system
 * messages from sys and proc_lib, anything else as info), calls the callback
 * module, and sends {Tag, Reply} back: to the caller's alias when the tag
 * carries one ([alias | Ref], OTP 24+), else to its pid. The tag is opaque:
 * it is copied back byte for byte.
 *
 * System messages are the engine's alone: sys:get_state (the reply shaped for
 * the caller's OTP release), sys:get_status, sys:suspend / sys:resume (other
 * messages wait, in order, while suspended), sys:terminate and GenServer.stop
 * (reply ok, run terminate, DOWN and EXIT with the reason), sys:replace_state
 * (refused: a C node cannot run an Erlang fun).
 *
 * Callback modules are gcn_modules, written against the public header
 * gen_cnode.h, whose gcn_* server functions this file implements (replies,
 * held callers, stopping, sending, links, timers, the gen_server timeout and
 * worker jobs). Requests arrive as terms already checked to be well formed.
 * What a callback hands back is checked too: a reply that is not exactly one
 * term, or a result that is none of gcn_result's, stops the server with
 * {bad_return_value, Callback} (logged), which its monitors and links see;
 * the node and its other servers carry on.
 *
 * The engine knows nothing of any callback module's messages; callback
 * modules know nothing of connections or frames.
 */
#ifndef GEN_CNODE_GEN_SERVER_H
#define GEN_CNODE_GEN_SERVER_H

#include <ei.h>

#include "gcn_buf.h"
#include "gen_cnode.h"
#include "process.h"
#include "term.h"

/* The engine's names for the public types. */
typedef gcn_server gen_server;

/* Start a server of module cb: run init, then register it under name (NULL:
 * none). priv is what gcn_priv gives the module's servers. A pending
 * handle_continue runs at gen_server_continue, so a starter can reply first.
 * Returns the process, or NULL with an atom in *error. */
process *gen_server_start(process_table *t, const gcn_module *cb, void *priv, term_view arg,
                          const char *name, const char **error);
/* Run the handle_continue init asked for, if any. */
void gen_server_continue(process *p);

process *gen_server_process(gen_server *self);
/* The state of p's callback module when p is a server of module cb, else
 * NULL (for a module's own functions that reach its servers by name). */
void *gen_server_state_of(process *p, const gcn_module *cb, gen_server **server);
/* The parent sys:get_status shows (start_link's caller); the server itself by default. */
void gen_server_set_parent(process *p, term_view parent);
/* How many messages the server has handled (calls, casts, infos, system). */
unsigned long long gen_server_handled(const process *p);

#endif

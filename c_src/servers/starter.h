/*
 * starter.h: the node's starter, registered as gen_cnode: it starts servers of
 * the modules it was given, on request from any node, as GenServer.start does:
 *   call {start, Module, Arg}              {ok, Pid} once Module's init has run
 *   call {start_link, Module, Arg}         the same, linked to the caller
 *   call {start | start_link, Module, Arg, [{name, Name}]}   also registers Name
 * Errors: {error, {unknown_module, M}}, {error, {already_started, Pid}},
 * {error, Reason} from init. The new server's handle_continue, if it asked for
 * one, runs after the reply is on its way and before its first message.
 * It knows servers only by their gcn_module.
 */
#ifndef GEN_CNODE_STARTER_H
#define GEN_CNODE_STARTER_H

#include "gen_server.h"
#include "module_table.h"

/* Start it with gen_server_start(t, &gcn_module_gen_cnode, modules, none, "gen_cnode", &err). */
extern const gcn_module gcn_module_gen_cnode;

#endif

/*
 * starter.h: the node's starter, registered as gen_cnode: it starts servers of
 * the modules it was given, on request from any node, as GenServer.start does:
 *   call {start, Module, Arg}              {ok, Pid} once Module's init has run
 *   call {start_link, Module, Arg}         the same, linked to the caller
 *   call {start | start_link, Module, Arg, [{name, Name}]}   also registers Name
 *   ... [{pg, Group}] or [{pg, {Scope, Group}}]  also joins Group in that pg scope
 *       (pg_scope.h; the default scope pg); {error, {unknown_scope, S}} if none runs
 * Errors: {error, {unknown_module, M}}, {error, {already_started, Pid}},
 * {error, Reason} from init, {error, {unknown_call, Req}} for a request of
 * another shape, a name that is no atom or that names nothing included
 * (starter_is_name). The new server's handle_continue, if it asked for
 * one, runs after the reply is on its way and before its first message.
 * A start under the name of a server that stopped and is not yet torn
 * down (stopped in the same batch of messages) waits for that teardown,
 * within the turn, so that the new server finds free what the old held.
 * It knows servers only by their gcn_module.
 *
 * It connects the node to another on request, as net_kernel:connect_node/1
 * without the wait (sends to that node wait for the connection meanwhile):
 *   call {connect, Node}                   ok, or {error, {cannot_connect, Node}}
 *
 * It also answers for the node's figures:
 *   call stats    #{node => Node, uptime_ms => N, processes => N,
 *                   servers => N (gen_servers, the node's own included),
 *                   timers => N (pending, of servers other than the node's own),
 *                   jobs_queued => N, jobs_running => N,
 *                   workers => N (threads), modules => [Name, ...] (known, in
 *                   the order added), connections => [#{node => Node,
 *                   since_ms => N (connected for), bytes_in => N, bytes_out => N,
 *                   messages_in => N, messages_out => N,
 *                   otp_release => 25 | 27 | ... | undefined}]}
 * and :sys.get_state and :sys.get_status show the same map as its state. The
 * connections, node and uptime come from the node through the process
 * table's stats hook (process.h): this file never sees a connection.
 */
#ifndef GEN_CNODE_STARTER_H
#define GEN_CNODE_STARTER_H

#include "gen_server.h"
#include "module_table.h"

/* Start it with gen_server_start(t, &gcn_module_gen_cnode, modules, none, "gen_cnode", &err). */
extern const gcn_module gcn_module_gen_cnode;

/* Whether a server may be registered as name: not undefined, which a BEAM's
 * register/2 refuses, nor nil (Elixir's "no name") or '', which name nothing. */
int starter_is_name(const char *name);

/* What a refusal of starter_is_name says, after the name. */
#define STARTER_NO_NAME "no name a BEAM registers (undefined, nil and '' are none)"

#endif

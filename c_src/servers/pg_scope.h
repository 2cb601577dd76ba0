/*
 * pg_scope.h: a scope of OTP's process groups (pg), so that servers of
 * this node can join groups that :pg.get_members on BEAM nodes lists. It
 * speaks pg's protocol with the scopes of the same name on the nodes this
 * one is connected to (lib/kernel/src/pg.erl, the same in OTP 25 and 27):
 *   - on every new connection it sends {discover, Self} to {Scope, Node},
 *     and again every few seconds until that node's scope answers (a hidden
 *     node is not discovered by BEAM scopes on their own: they watch visible
 *     nodes only);
 *   - {discover, Peer} (or {discover, Peer, Vsn}) gets the cast
 *     {sync, Self, [{Group, Pids}]} back, and a peer not known yet is
 *     monitored and sent {discover, Self} (as pg's handle_discover);
 *   - joins and leaves of its members go to every known peer scope as
 *     {join, Self, Group, PidOrPids} and {leave, Self, PidOrPids, Groups};
 *     members are monitored, and one that stops leaves all its groups;
 *   - when this node goes, BEAM scopes see their monitor of it fire and
 *     drop its members.
 * Any peer can send it plain messages; it takes from them what pg would,
 * or less: a 'DOWN' only with both the monitor's reference and pid (and a
 * peer's goes with its monitor); a discover or sync only from the node of
 * the pid it names, over its connection (process_sender_node: never from
 * this node's own processes); a {nodeup, Node} only for a node
 * that is connected (the one the node's process table sends; a peer's
 * forgery is ignored, logged once); and at most 4 peer scopes per node.
 * It keeps only its own members: what other nodes' scopes send of theirs
 * (sync contents, joins, leaves) is not kept, so `get_local_members` is
 * all it answers about membership.
 *
 * Calls it answers, as pg's scope process does for local callers:
 *   {join_local, Group, PidOrPids}   ok, or {error, {nolocal, Pid}} for a pid of another node,
 *                                    {error, {badarg, Group}} (-0.0 in it, deeper than 100, or
 *                                    over 64 KiB), {error, too_many_joins} (README, pg)
 *   {leave_local, Group, PidOrPids}  ok, or not_joined
 *   {get_local_members, Group}       [Pid]
 *   which_local_groups               [Group]
 * and :sys.get_state shows #{scope, groups => #{Group => [Pid]}, peers => [ScopePid]}.
 * Started as a system process, registered as its scope's name.
 */
#ifndef GEN_CNODE_PG_SCOPE_H
#define GEN_CNODE_PG_SCOPE_H

#include "gen_server.h"

/* Start it with the scope's name as an atom term for arg and as the name. */
extern const gcn_module gcn_module_pg_scope;

/* Is a scope named scope running here? */
int pg_scope_running(process_table *t, const char *scope);
/* Join pid (of this node) to group in the scope registered as scope: 0, or
 * -1 (no such scope here, or out of memory; logged). */
int pg_scope_join(process_table *t, const char *scope, term_view group, term_view pid);

#endif

%% gen_cnode_shard: one KeyValue store spread over several C nodes, on
%% Erlang's own distribution and nothing home-made for membership.
%%
%% Each C node's KeyValue server joins a pg group (the C node's option
%% --pg-join Group, or gen_cnode's pg_join => Group); this node runs the pg
%% scope (pg:start_link/0 in its supervision tree). Every key has one owner
%% among the group's current members, chosen by rendezvous hashing over
%% their node names: the member whose node scores highest for the key.
%% put/get/delete go to the owner as to one store.
%%
%% Every client (each node that calls this module) must be connected to
%% every member C node, before its first call and while it uses the group:
%% each computes owners from what its own pg scope knows, which holds a C
%% node's members only while connected to it, and nothing checks that
%% clients agree. One that sees fewer C nodes picks other owners (connected
%% to one of two, it writes every key there, where a client connected to
%% both does not look for half of them). Start each C node with --connect
%% for every client node (it keeps those connections up), or connect each
%% client to every C node and wait until members/1 lists them all.
%%
%% Membership is what pg says now (pg:get_members/2), so changes are
%% followed as pg sees them. A key's owner is stable while membership is,
%% and a change moves only the keys it must: when a node leaves, its keys
%% (and only they) are owned by others until it comes back; when it comes
%% back under the same node name, it owns exactly the keys it owned before.
%% Nothing is copied between nodes (no rebalancing):
%%   - while an owner is away, reads of its keys get what another node holds
%%     for them (usually nothing: nil, as kv answers), and writes to them land on that
%%     other node;
%%   - once it is back (with --data-dir it has every write it acknowledged),
%%     reads see its copy again, and what was written elsewhere meanwhile is
%%     not seen (it stays on that other node);
%%   - a node that joins for the first time takes over its share of the keys,
%%     which it does not have: give the group its final set of nodes before
%%     writing, or copy the keys over yourself.
%% A node is identified by its name, so one member per C node (its main
%% KeyValue server) is what this expects. A call to an owner whose node has
%% just gone, before pg has noticed, exits as gen_server:call/3 does
%% (noconnection, or the timeout); the next one goes to its stand-in.
%%
%% Options (a map, all optional): scope (pg), timeout (5000 ms).
-module(gen_cnode_shard).

-export([put/3, put/4, get/2, get/3, delete/2, delete/3,
         owner/2, owner/3, members/1, members/2]).

-define(TIMEOUT, 5000).

-type group() :: term().
-type opts() :: #{scope => atom(), timeout => timeout()}.
-export_type([opts/0]).

%% Store Value under Key on the key's owner; ok once it acknowledged it.
-spec put(group(), term(), term()) -> ok | {error, no_members}.
put(Group, Key, Value) -> put(Group, Key, Value, #{}).

-spec put(group(), term(), term(), opts()) -> ok | {error, no_members}.
put(Group, Key, Value, Opts) ->
    call(Group, Key, {put, Key, Value}, Opts).

%% The value of Key on its owner, or nil when it has none (as the KeyValue
%% server answers).
-spec get(group(), term()) -> term() | {error, no_members}.
get(Group, Key) -> get(Group, Key, #{}).

-spec get(group(), term(), opts()) -> term() | {error, no_members}.
get(Group, Key, Opts) ->
    call(Group, Key, {get, Key}, Opts).

-spec delete(group(), term()) -> ok | {error, no_members}.
delete(Group, Key) -> delete(Group, Key, #{}).

-spec delete(group(), term(), opts()) -> ok | {error, no_members}.
delete(Group, Key, Opts) ->
    call(Group, Key, {delete, Key}, Opts).

%% The member that owns Key now, or none.
-spec owner(group(), term()) -> pid() | none.
owner(Group, Key) -> owner(Group, Key, #{}).

-spec owner(group(), term(), opts()) -> pid() | none.
owner(Group, Key, Opts) ->
    rendezvous(Key, members(Group, Opts)).

%% The group's members now, one per node (the lowest pid where a node has
%% several), sorted by node.
-spec members(group()) -> [pid()].
members(Group) -> members(Group, #{}).

-spec members(group(), opts()) -> [pid()].
members(Group, Opts) ->
    ByNode = lists:foldl(fun(Pid, Acc) ->
                                 maps:update_with(node(Pid), fun(P) -> min(P, Pid) end, Pid, Acc)
                         end, #{}, pg:get_members(maps:get(scope, Opts, pg), Group)),
    [Pid || {_Node, Pid} <- lists:sort(maps:to_list(ByNode))].

%%% Internals

call(Group, Key, Request, Opts) ->
    case owner(Group, Key, Opts) of
        none -> {error, no_members};
        Pid -> gen_server:call(Pid, Request, maps:get(timeout, Opts, ?TIMEOUT))
    end.

%% Rendezvous (highest random weight) hashing: each node scores the key, the
%% highest score owns it (ties, unlikely, to the greater node name). Scores
%% depend on the key and the node's name only, so an owner stays the owner
%% while it is a member, whatever else joins or leaves.
rendezvous(_Key, []) ->
    none;
rendezvous(Key, Members) ->
    {_, _, Pid} = lists:max([{score(Key, node(P)), node(P), P} || P <- Members]),
    Pid.

score(Key, Node) ->
    <<S:64, _/binary>> = erlang:md5(term_to_binary({Key, Node}, [{minor_version, 2}, deterministic])),
    S.

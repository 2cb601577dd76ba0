%% gen_cnode_shard_SUITE: one KeyValue store over three C nodes
%% (gen_cnode_shard), used from two BEAM client nodes, with a C node killed
%% and restarted in the middle.
%%
%% The three C nodes run with --data-dir, join the pg group kvs at boot
%% (pg_join) and --connect to both clients (so that a restarted one is back
%% in their pg scopes by itself). The clients run pg and gen_cnode_shard;
%% this node only drives them.
-module(gen_cnode_shard_SUITE).

-define(config(Key, Config), proplists:get_value(Key, Config)).
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([keys_survive_a_kill_and_others_stay_readable/1,
         owners_follow_membership/1]).
%% Run on the client peers.
-export([write_keys/3, read_keys/3, read_until/3, watch_group/1, group_changes/1]).

-define(KEYS, 100000).
-define(WORKERS, 8).

suite() ->
    [{timetrap, {minutes, 5}}].

all() ->
    [owners_follow_membership,
     keys_survive_a_kill_and_others_stay_readable].

init_per_suite(Config) ->
    gen_cnode_test_env:init_suite(Config).

end_per_suite(Config) ->
    gen_cnode_test_env:end_suite(Config).

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, _Config) ->
    gen_cnode_test_env:reap().

%%% Set-up

client(Name) ->
    {Peer, Node} = gen_cnode_test_env:start_tracked_peer(Name),
    {ok, _} = peer:call(Peer, pg, start, [pg]),
    {Peer, Node}.

%% Three C nodes in the group kvs, each connecting to the clients.
cnodes(Config, Prefix, Clients) ->
    Connect = lists:append([["--connect", atom_to_list(N)] || {_, N} <- Clients]),
    [begin
         Name = list_to_atom(Prefix ++ integer_to_list(I)),
         Dir = filename:join(?config(priv_dir, Config), atom_to_list(Name)),
         ok = filelib:ensure_path(Dir),
         gen_cnode_test_env:start_cnode(Config, Name, #{data_dir => Dir, pg_join => kvs, args => Connect})
     end || I <- [1, 2, 3]].

wait_members(Clients, N) ->
    [ok = gen_cnode_test_env:wait_until(
            fun() -> length(peer:call(P, gen_cnode_shard, members, [kvs])) =:= N end, 15000)
     || {P, _} <- Clients],
    ok.

%%% Run on the clients

%% Put keys From..To, ?WORKERS at a time: the list of those not acknowledged.
write_keys(From, To, Tag) ->
    parallel(From, To, fun(I) -> gen_cnode_shard:put(kvs, {k, I}, {Tag, I}) =:= ok end).

%% Read keys From..To: the list of those that do not read {Tag, I}.
read_keys(From, To, Tag) ->
    parallel(From, To, fun(I) -> gen_cnode_shard:get(kvs, {k, I}) =:= {Tag, I} end).

%% A process that records the changes of Group in the scope pg, in order:
%% its pid, for group_changes/1.
watch_group(Group) ->
    Self = self(),
    W = spawn(fun() ->
                      {Ref, _} = pg:monitor(pg, Group),
                      Self ! {watching, self()},
                      watch_loop(Ref, [])
              end),
    receive {watching, W} -> W after 10000 -> ct:fail(no_watcher) end.

watch_loop(Ref, Changes) ->
    receive
        {Ref, Change, _Group, Pids} -> watch_loop(Ref, [{Change, Pids} | Changes]);
        {changes, From} -> From ! {changes, self(), lists:reverse(Changes)}, watch_loop(Ref, Changes)
    end.

%% The changes a watcher recorded so far: [{join | leave, Pids}].
group_changes(W) ->
    W ! {changes, self()},
    receive {changes, W, Changes} -> Changes after 5000 -> error(watcher_silent) end.

%% Read the keys Keys over and over until Stop() says so: {Reads, Failures}.
read_until(Keys, Tag, Stop) ->
    read_until(Keys, Tag, Stop, 0, []).

read_until(Keys, Tag, Stop, Reads, Failures) ->
    case Stop() of
        true ->
            {Reads, Failures};
        false ->
            Bad = [{I, R} || I <- Keys, R <- [catch gen_cnode_shard:get(kvs, {k, I})], R =/= {Tag, I}],
            read_until(Keys, Tag, Stop, Reads + length(Keys), Bad ++ Failures)
    end.

parallel(From, To, F) ->
    Self = self(),
    Chunk = (To - From + 1 + ?WORKERS - 1) div ?WORKERS,
    Pids = [spawn_link(fun() ->
                               Lo = From + W * Chunk,
                               Hi = min(To, Lo + Chunk - 1),
                               Self ! {self(), [I || I <- lists:seq(Lo, Hi), not (catch F(I))]}
                       end) || W <- lists:seq(0, ?WORKERS - 1)],
    lists:append([receive {P, Bad} -> Bad after 240000 -> ct:fail({worker_silent, P}) end || P <- Pids]).

%% Whether Changes has a member on Node leave, and later one on Node join.
left_and_back(Changes, Node) ->
    On = fun(Pids) -> lists:any(fun(P) -> node(P) =:= Node end, Pids) end,
    case lists:dropwhile(fun({C, Pids}) -> not (C =:= leave andalso On(Pids)) end, Changes) of
        [] -> false;
        [_ | After] -> lists:any(fun({C, Pids}) -> C =:= join andalso On(Pids) end, After)
    end.

%%% Test cases

%% Owners are spread over the members, stable while membership is, and a
%% member that leaves moves only its own keys.
owners_follow_membership(Config) ->
    Clients = [C1 = {P1, _}, _] = [client(shard_own_a), client(shard_own_b)],
    Nodes = cnodes(Config, "shard_own", Clients),
    wait_members(Clients, 3),
    Keys = lists:seq(1, 3000),
    Owner = fun(P, K) -> node(peer:call(P, gen_cnode_shard, owner, [kvs, {k, K}])) end,
    Before = [Owner(P1, K) || K <- Keys],
    %% both clients agree
    ?assertEqual(Before, [Owner(element(1, lists:last(Clients)), K) || K <- Keys]),
    Counts = [{N, length([O || O <- Before, O =:= N])} || {N, _, _} <- Nodes],
    ct:log("owners of ~p keys: ~p", [length(Keys), Counts]),
    [?assert(C > 800 andalso C < 1200) || {_, C} <- Counts],
    %% one member leaves (its server stops): only its keys move
    {Gone, _, _} = lists:nth(2, Nodes),
    ok = gen_server:stop({kv, Gone}),
    wait_members([C1], 2),
    After = [Owner(P1, K) || K <- Keys],
    Moved = [{B, A} || {B, A} <- lists:zip(Before, After), B =/= A],
    ?assertEqual([], [M || {B, _} = M <- Moved, B =/= Gone]),
    ?assertEqual(length([B || B <- Before, B =:= Gone]), length(Moved)),
    ?assertEqual({error, no_members}, gen_cnode_shard:put(nosuch_group, k, v)).

%% 100k keys put from two clients over three durable C nodes; one node is
%% killed (kill -9) and restarted by its owner: reads of the other nodes'
%% keys never fail meanwhile, and every acknowledged key reads back after.
keys_survive_a_kill_and_others_stay_readable(Config) ->
    Clients = [{P1, _}, {P2, _}] = [client(shard_a), client(shard_b)],
    Nodes = cnodes(Config, "shard", Clients),
    wait_members(Clients, 3),
    Half = ?KEYS div 2,
    T0 = erlang:monotonic_time(millisecond),
    Self = self(),
    [spawn_link(fun() -> Self ! {written, P, peer:call(P, ?MODULE, write_keys, [Lo, Hi, v1], 240000)} end)
     || {P, Lo, Hi} <- [{P1, 1, Half}, {P2, Half + 1, ?KEYS}]],
    Unacked = lists:append([receive {written, P, R} -> R after 250000 -> ct:fail({no_writes_from, P}) end
                            || P <- [P1, P2]]),
    ct:log("~p keys put from two clients in ~p ms", [?KEYS, erlang:monotonic_time(millisecond) - T0]),
    ?assertEqual([], Unacked),
    %% The victim, and keys of the other two to read while it is away.
    {Victim, _, VictimOwner} = lists:nth(2, Nodes),
    Owned = fun(K) -> node(peer:call(P1, gen_cnode_shard, owner, [kvs, {k, K}])) end,
    Others = [K || K <- lists:seq(1, 3000), Owned(K) =/= Victim],
    ?assert(length(Others) > 1500),
    OsPid = gen_cnode:os_pid(VictimOwner),
    ok = peer:call(P2, persistent_term, put, [shard_stop_reading, false]),
    Stop = fun() -> persistent_term:get(shard_stop_reading) end, %% runs on the peer
    spawn_link(fun() -> Self ! {reads, peer:call(P2, ?MODULE, read_until, [Others, v1, Stop], 120000)} end),
    %% Each client's pg reports the group's changes as they happen: the
    %% owner restarts the node within milliseconds, faster than polling
    %% the membership could catch it at two.
    Watchers = [{P, peer:call(P, ?MODULE, watch_group, [kvs])} || {P, _} <- Clients],
    timer:sleep(100),
    os:cmd("kill -9 " ++ integer_to_list(OsPid)),
    ct:log("killed ~p (os pid ~p)", [Victim, OsPid]),
    %% gone from the clients' view, then back (its owner restarts it)
    [ok = gen_cnode_test_env:wait_until(
            fun() -> left_and_back(peer:call(P, ?MODULE, group_changes, [W]), Victim) end, 15000)
     || {P, W} <- Watchers],
    wait_members(Clients, 3),
    ?assertNotEqual(OsPid, gen_cnode:os_pid(VictimOwner)),
    ok = peer:call(P2, persistent_term, put, [shard_stop_reading, true]),
    {Reads, Failures} = receive {reads, R2} -> R2 after 60000 -> error(reader_timeout) end,
    ct:log("while ~p was away and back: ~p reads of the other nodes' keys, ~p failed",
           [Victim, Reads, length(Failures)]),
    ?assert(Reads > 0),
    ?assertEqual([], lists:sublist(Failures, 10)),
    %% every acknowledged key, from the other client
    T1 = erlang:monotonic_time(millisecond),
    Missing = peer:call(P1, ?MODULE, read_keys, [1, ?KEYS, v1], 240000),
    ct:log("~p keys read back in ~p ms after the restart; ~p missing",
           [?KEYS, erlang:monotonic_time(millisecond) - T1, length(Missing)]),
    ?assertEqual([], lists:sublist(Missing, 10)).

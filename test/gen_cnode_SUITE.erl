%% gen_cnode_SUITE: the C node against real BEAM nodes, one test case per behaviour.
%%
%% Everything here is real: an epmd of the suite's own on loopback, the C node
%% (GEN_CNODE_EXE, else priv/gen_cnode) started with gen_cnode:start/1, peer
%% nodes started with OTP's peer module, sockets on 127.0.0.1. Nothing is
%% mocked.
%%
%% The CT node need not be distributed at boot: init_per_suite starts epmd on
%% $ERL_EPMD_PORT unless one answers there (tools/run-tests picks a free port;
%% erlexec turns the variable into -epmd_port, which cannot change after boot:
%% os:putenv/2 in the suite does not work, on OTP 25 nor 27), then net_kernel
%% with long names. tools/run-tests runs it as
%%   ERL_EPMD_PORT=P erl -start_epmd false -pa ebin -eval 'ct:run_test(...)'
%% `ct_run -name ct@127.0.0.1 -dir test -pa ebin` works too (ct_run alone makes
%% ct@HOST with short names, which cannot reach kv@127.0.0.1). Each test
%% case starts what it needs beyond the suite's C node and registers it with a
%% reaper process, so that end_per_testcase stops it by pid even when the case
%% failed or hit its timetrap. epmd, distribution, the reaper, peers and
%% waiting are gen_cnode_test_env's, shared with the other suites.
-module(gen_cnode_SUITE).

%% ct.hrl's one macro we use; Debian ships ct.hrl in erlang-dev, which the
%% OTP 27 chroot does not have.
-define(config(Key, Config), proplists:get_value(Key, Config)).
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

%% Test cases, in the order they run.
-export([iex_session_put_then_get/1,
         ping_answers_pong_as_hidden_node/1,
         get_returns_nil_when_absent/1,
         fetch_returns_ok_or_error/1,
         cast_delete_removes_key/1,
         call_put_and_delete_return_ok/1,
         client_api_round_trip/1,
         other_call_shapes_are_answered/1,
         unknown_call_replies_error_and_keeps_serving/1,
         unknown_cast_and_info_are_ignored/1,
         every_term_type_round_trips_as_key_and_value/1,
         binaries_up_to_8mb_round_trip/1,
         integer_and_float_keys_are_distinct/1,
         size_and_keys_track_the_table/1,
         register_option_names_the_server/1,
         cast_then_call_is_never_stale/1,
         concurrent_callers_from_two_nodes/1,
         unknown_name_gives_noproc_promptly/1,
         wrong_cookie_is_refused/1,
         idle_connection_survives_net_ticktime/1,
         peer_vanishing_mid_call_is_cleaned_up/1,
         oversized_message_costs_itself_only/1,
         busy_poll_is_bounded_and_can_be_off/1,
         busy_poll_is_off_by_default_on_one_cpu/1,
         invalid_option_exits_with_status_2/1,
         start_without_executable_fails/1,
         owner_death_stops_the_c_node/1,
         linked_owner_stops_with_its_parent/1,
         sigterm_stops_cleanly_and_unpublishes/1]).

%% Run on peer nodes (the suite's directory is in their code path).
-export([load/4, start_call_loops/3, idle_watch/2]).

-define(CALL_TIMEOUT, 10000).

suite() ->
    [{timetrap, {minutes, 2}}].

all() ->
    [iex_session_put_then_get,
     ping_answers_pong_as_hidden_node,
     get_returns_nil_when_absent,
     fetch_returns_ok_or_error,
     cast_delete_removes_key,
     call_put_and_delete_return_ok,
     client_api_round_trip,
     other_call_shapes_are_answered,
     unknown_call_replies_error_and_keeps_serving,
     unknown_cast_and_info_are_ignored,
     every_term_type_round_trips_as_key_and_value,
     binaries_up_to_8mb_round_trip,
     integer_and_float_keys_are_distinct,
     size_and_keys_track_the_table,
     register_option_names_the_server,
     cast_then_call_is_never_stale,
     concurrent_callers_from_two_nodes,
     unknown_name_gives_noproc_promptly,
     wrong_cookie_is_refused,
     idle_connection_survives_net_ticktime,
     peer_vanishing_mid_call_is_cleaned_up,
     oversized_message_costs_itself_only,
     busy_poll_is_bounded_and_can_be_off,
     busy_poll_is_off_by_default_on_one_cpu,
     invalid_option_exits_with_status_2,
     start_without_executable_fails,
     owner_death_stops_the_c_node,
     linked_owner_stops_with_its_parent,
     %% Last: it stops the suite's C node and checks how it exited.
     sigterm_stops_cleanly_and_unpublishes].

%%% Suite and test case setup

init_per_suite(Config) ->
    Log = filename:join(?config(priv_dir, Config), "kvct.log"),
    Name = 'kvct@127.0.0.1',
    Base = [{cnode_log, Log} | gen_cnode_test_env:init_suite(Config)],
    case gen_cnode:start(#{name => Name, log => Log}) of
        {ok, Owner} ->
            ct:log("C node ~p (os pid ~p, executable ~s), epmd port ~p, log ~s",
                   [Name, gen_cnode:os_pid(Owner), gen_cnode_test_env:executable(),
                    gen_cnode_test_env:epmd_port(), Log]),
            [{cnode, Name}, {server, {kv, Name}}, {owner, Owner} | Base];
        Error ->
            end_per_suite(Base),
            {fail, {c_node_did_not_start, gen_cnode_test_env:executable(), Error}}
    end.

end_per_suite(Config) ->
    gen_cnode_test_env:reap(),
    gen_cnode_test_env:stop_reaper(),
    case ?config(owner, Config) of
        undefined -> ok;
        Owner -> is_process_alive(Owner) andalso
                     ct:log("stopping the C node: ~p", [catch gen_cnode:stop(Owner)])
    end,
    gen_cnode_test_env:stop_distribution(Config).

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(sigterm_stops_cleanly_and_unpublishes, _Config) ->
    gen_cnode_test_env:reap();
end_per_testcase(Case, Config) ->
    gen_cnode_test_env:reap(),
    %% The suite's C node must have survived whatever the case did to it.
    Owner = ?config(owner, Config),
    Alive = is_process_alive(Owner)
        andalso (catch gen_server:call(?config(server, Config), size, 5000)),
    case is_integer(Alive) of
        true ->
            ok;
        false ->
            {fail, {c_node_not_serving_after, Case, Alive,
                    gen_cnode_test_env:sanitizer_reports(?config(cnode_log, Config))}}
    end.

%%% Test cases: the KeyValue server

%% What a user types in iex, in Erlang: a cast put, then a call get.
iex_session_put_then_get(Config) ->
    Server = ?config(server, Config),
    ?assertEqual(ok, gen_server:cast(Server, {put, foo, <<"bar">>})),
    ?assertEqual(<<"bar">>, gen_server:call(Server, {get, foo})).

ping_answers_pong_as_hidden_node(Config) ->
    Node = ?config(cnode, Config),
    ?assertEqual(pong, net_adm:ping(Node)),
    ?assert(lists:member(Node, nodes(hidden))),
    ?assertNot(lists:member(Node, nodes(visible))),
    {ok, Names} = net_adm:names("127.0.0.1"),
    ?assertMatch({_, Port} when is_integer(Port), lists:keyfind("kvct", 1, Names)).

get_returns_nil_when_absent(Config) ->
    Server = ?config(server, Config),
    ?assertEqual(nil, gen_server:call(Server, {get, {?FUNCTION_NAME, absent}})),
    ok = gen_server:cast(Server, {put, {?FUNCTION_NAME, present}, nil_is_not_absent}),
    ?assertEqual(nil_is_not_absent, gen_server:call(Server, {get, {?FUNCTION_NAME, present}})).

fetch_returns_ok_or_error(Config) ->
    Server = ?config(server, Config),
    K = {?FUNCTION_NAME, key},
    ?assertEqual(error, gen_server:call(Server, {fetch, K})),
    ok = gen_server:cast(Server, {put, K, nil}),
    ?assertEqual({ok, nil}, gen_server:call(Server, {fetch, K})),
    ok = gen_server:cast(Server, {put, K, [value]}),
    ?assertEqual({ok, [value]}, gen_server:call(Server, {fetch, K})).

cast_delete_removes_key(Config) ->
    Server = ?config(server, Config),
    K = {?FUNCTION_NAME, key},
    ok = gen_server:cast(Server, {put, K, v}),
    ?assertEqual(v, gen_server:call(Server, {get, K})),
    Size = gen_server:call(Server, size),
    ?assertEqual(ok, gen_server:cast(Server, {delete, K})),
    ?assertEqual(nil, gen_server:call(Server, {get, K})),
    ?assertEqual(error, gen_server:call(Server, {fetch, K})),
    ?assertEqual(Size - 1, gen_server:call(Server, size)),
    %% Deleting what is not there is not an error.
    ok = gen_server:cast(Server, {delete, K}),
    ?assertEqual(Size - 1, gen_server:call(Server, size)).

call_put_and_delete_return_ok(Config) ->
    Server = ?config(server, Config),
    K = {?FUNCTION_NAME, key},
    ?assertEqual(ok, gen_server:call(Server, {put, K, 1})),
    ?assertEqual(1, gen_server:call(Server, {get, K})),
    ?assertEqual(ok, gen_server:call(Server, {put, K, 2})),
    ?assertEqual(2, gen_server:call(Server, {get, K})),
    ?assertEqual(ok, gen_server:call(Server, {delete, K})),
    ?assertEqual(nil, gen_server:call(Server, {get, K})),
    ?assertEqual(ok, gen_server:call(Server, {delete, K})).

%% gen_cnode_kv, the client module, over the same server.
client_api_round_trip(Config) ->
    Server = ?config(server, Config),
    K = {?FUNCTION_NAME, key},
    Size = gen_cnode_kv:size(Server),
    ?assertEqual(ok, gen_cnode_kv:put(Server, K, "value")),
    ?assertEqual("value", gen_cnode_kv:get(Server, K)),
    ?assertEqual("value", gen_cnode_kv:get(Server, K, 1000)),
    ?assertEqual({ok, "value"}, gen_cnode_kv:fetch(Server, K)),
    ?assertEqual(Size + 1, gen_cnode_kv:size(Server)),
    ?assert(lists:member(K, gen_cnode_kv:keys(Server))),
    ?assertEqual(ok, gen_cnode_kv:delete(Server, K)),
    ?assertEqual(error, gen_cnode_kv:fetch(Server, K)),
    ?assertEqual(nil, gen_cnode_kv:get(Server, K)),
    ?assertEqual(Size, gen_cnode_kv:size(Server)).

%% The reply tag is opaque: multi_call's {Ref, Node}-style tags and
%% send_request/receive_response work as plain calls do.
other_call_shapes_are_answered(Config) ->
    Server = {kv, Node} = ?config(server, Config),
    K = {?FUNCTION_NAME, key},
    ok = gen_server:cast(Server, {put, K, shaped}),
    ?assertEqual({[{Node, shaped}], []}, gen_server:multi_call([Node], kv, {get, K}, 5000)),
    ?assertEqual({[], [Node]}, gen_server:multi_call([Node], nosuch, {get, K}, 5000)),
    ReqIds = [gen_server:send_request(Server, {get, K}) || _ <- lists:seq(1, 10)],
    [?assertEqual({reply, shaped}, gen_server:receive_response(R, 5000)) || R <- ReqIds],
    ?assertEqual({reply, shaped}, gen_server:wait_response(gen_server:send_request(Server, {get, K}), 5000)).

unknown_call_replies_error_and_keeps_serving(Config) ->
    Server = ?config(server, Config),
    K = {?FUNCTION_NAME, key},
    ok = gen_server:cast(Server, {put, K, before}),
    Requests = [frobnicate, {frobnicate, 1, [2]}, {get}, {get, a, b}, {put, only_key},
                <<"size">>, "keys", {}, #{get => K}],
    [?assertEqual({error, {unknown_call, R}}, gen_server:call(Server, R)) || R <- Requests],
    ?assertEqual(before, gen_server:call(Server, {get, K})).

unknown_cast_and_info_are_ignored(Config) ->
    Server = {kv, Node} = ?config(server, Config),
    K = {?FUNCTION_NAME, key},
    ok = gen_server:cast(Server, {put, K, before}),
    Size = gen_server:call(Server, size),
    [ok = gen_server:cast(Server, C) || C <- [frobnicate, {put, K}, {delete}, {get, K}, "x"]],
    [{kv, Node} ! I || I <- [hello, {put, K, changed}, {'$gen_call', not_a_from, size},
                             {'$gen_cast'}, {system, nope}, <<1, 2, 3>>]],
    ?assertEqual(before, gen_server:call(Server, {get, K})),
    ?assertEqual(Size, gen_server:call(Server, size)).

every_term_type_round_trips_as_key_and_value(Config) ->
    Server = ?config(server, Config),
    Terms = lists:enumerate(terms()),
    [ok = gen_server:cast(Server, {put, {as_value, ?FUNCTION_NAME, I}, T}) || {I, T} <- Terms],
    [ok = gen_server:cast(Server, {put, T, {as_key, I}}) || {I, T} <- Terms],
    Wrong = [{I, T, Got}
             || {I, T} <- Terms,
                Got <- [gen_server:call(Server, {get, {as_value, ?FUNCTION_NAME, I}})],
                not identical(Got, T)]
        ++ [{I, T, Got}
            || {I, T} <- Terms,
               Got <- [gen_server:call(Server, {fetch, T})],
               not identical(Got, {ok, {as_key, I}})],
    ?assertEqual([], Wrong),
    Keys = gen_server:call(Server, keys),
    Missing = [T || {_, T} <- Terms, not lists:any(fun(K) -> identical(K, T) end, Keys)],
    ?assertEqual([], Missing).

binaries_up_to_8mb_round_trip(Config) ->
    Server = ?config(server, Config),
    Sizes = [0, 1, 255, 256, 65535, 65536, 1 bsl 20, 8 bsl 20],
    Bins = [{S, fidelity_terms:pattern(S)} || S <- Sizes],
    [ok = gen_server:cast(Server, {put, {?FUNCTION_NAME, S}, B}) || {S, B} <- Bins],
    [?assert(gen_server:call(Server, {get, {?FUNCTION_NAME, S}}, 30000) =:= B) || {S, B} <- Bins],
    %% The same binaries as keys.
    [ok = gen_server:call(Server, {put, B, {?FUNCTION_NAME, S}}, 30000) || {S, B} <- Bins],
    [?assertEqual({?FUNCTION_NAME, S}, gen_server:call(Server, {get, B}, 30000)) || {S, B} <- Bins],
    [ok = gen_server:call(Server, {delete, B}, 30000) || {_, B} <- Bins],
    [?assertEqual(nil, gen_server:call(Server, {get, B}, 30000)) || {_, B} <- Bins].

%% Keys are equal exactly when =:= says so (as in OTP 27, 0.0 and -0.0 differ).
integer_and_float_keys_are_distinct(Config) ->
    {Owner, Server, Log} = start_cnode(Config, kvnum, []),
    Zero = positive_zero(),
    NegZero = negative_zero(),
    Pairs = [{1, int_one}, {1.0, float_one}, {Zero, zero}, {NegZero, negative_zero},
             {0, int_zero}, {1 bsl 70, big}, {float(1 bsl 70), big_float},
             {-1, minus_one}, {-1.0, minus_one_float}],
    [ok = gen_server:cast(Server, {put, K, V}) || {K, V} <- Pairs],
    ?assertEqual(length(Pairs), gen_server:call(Server, size)),
    Got = [{K, gen_server:call(Server, {get, K})} || {K, _} <- Pairs],
    ?assertEqual(Pairs, Got),
    ?assert(identical(negative_zero, gen_server:call(Server, {get, NegZero}))),
    %% The state, a map with keys 0.0 and -0.0, which OTP 25 and 26 cannot
    %% read, is not sent: sys:get_state fails here (on any release), and the
    %% connection stays (the old node sent it, and OTP 25 dropped it).
    {_, Node} = Server,
    monitor_node(Node, true),
    ?assertMatch({'EXIT', _}, catch sys:get_state(Server)),
    ?assertEqual(zero, gen_server:call(Server, {get, Zero})),
    receive {nodedown, Node} -> ct:fail(dropped_over_the_state) after 100 -> ok end,
    monitor_node(Node, false),
    ok = gen_server:cast(Server, {delete, 1.0}),
    ok = gen_server:cast(Server, {delete, NegZero}),
    ?assertEqual(int_one, gen_server:call(Server, {get, 1})),
    ?assertEqual(zero, gen_server:call(Server, {get, Zero})),
    ?assertEqual(nil, gen_server:call(Server, {get, 1.0})),
    ?assertEqual(nil, gen_server:call(Server, {get, NegZero})),
    ?assertEqual(length(Pairs) - 2, gen_server:call(Server, size)),
    stop_cnode(Owner, Log).

size_and_keys_track_the_table(Config) ->
    {Owner, Server, Log} = start_cnode(Config, kvsize, []),
    ?assertEqual(0, gen_server:call(Server, size)),
    ?assertEqual([], gen_server:call(Server, keys)),
    Keys = [{k, N} || N <- lists:seq(1, 500)] ++ [a, "a", <<"a">>, 1, 1.0, [], {}, #{}],
    [ok = gen_server:cast(Server, {put, K, N}) || {N, K} <- lists:enumerate(Keys)],
    ?assertEqual(length(Keys), gen_server:call(Server, size)),
    ?assertEqual(sort_exact(Keys), sort_exact(gen_server:call(Server, keys))),
    %% Overwriting does not grow the table.
    [ok = gen_server:cast(Server, {put, K, again}) || K <- Keys],
    ?assertEqual(length(Keys), gen_server:call(Server, size)),
    {Gone, Kept} = lists:split(300, Keys),
    [ok = gen_server:cast(Server, {delete, K}) || K <- Gone],
    ?assertEqual(length(Kept), gen_server:call(Server, size)),
    ?assertEqual(sort_exact(Kept), sort_exact(gen_server:call(Server, keys))),
    [ok = gen_server:cast(Server, {delete, K}) || K <- Kept],
    ?assertEqual(0, gen_server:call(Server, size)),
    ?assertEqual([], gen_server:call(Server, keys)),
    stop_cnode(Owner, Log).

register_option_names_the_server(Config) ->
    {Owner, {store, Node}, Log} = start_cnode(Config, kvreg, [], store),
    ok = gen_server:cast({store, Node}, {put, k, v}),
    ?assertEqual(v, gen_server:call({store, Node}, {get, k})),
    ?assertExit({noproc, _}, gen_server:call({kv, Node}, {get, k}, 5000)),
    stop_cnode(Owner, Log).

%% Signals from one process to another arrive in order: a get right after a
%% put from the same process always sees the put.
cast_then_call_is_never_stale(Config) ->
    Server = ?config(server, Config),
    K = {?FUNCTION_NAME, self()},
    Stale = lists:foldl(
              fun(I, Acc) ->
                      ok = gen_server:cast(Server, {put, K, I}),
                      case gen_server:call(Server, {get, K}, ?CALL_TIMEOUT) of
                          I -> Acc;
                          Other -> [{I, Other} | Acc]
                      end
              end, [], lists:seq(1, 10000)),
    ?assertEqual({0, []}, {length(Stale), lists:sublist(lists:reverse(Stale), 10)}).

%% 100 processes on the CT node and 100 on a peer, each casting and calling in
%% turn on keys of its own, every answer checked.
concurrent_callers_from_two_nodes(Config) ->
    Server = ?config(server, Config),
    Procs = 100, Rounds = 50,
    {Peer, _} = start_peer(Config, peer_load, erlang:get_cookie()),
    Self = self(),
    Remote = spawn_link(fun() ->
                                Self ! {remote, peer:call(Peer, ?MODULE, load,
                                                          [Server, peer, Procs, Rounds], 110000)}
                        end),
    Local = load(Server, ct, Procs, Rounds),
    Theirs = receive {remote, R} -> R after 110000 -> error({timeout, Remote}) end,
    ?assertEqual({Procs * Rounds, []}, Local),
    ?assertEqual({Procs * Rounds, []}, Theirs),
    %% Everything both nodes wrote is there afterwards.
    Missing = [K || Tag <- [ct, peer], P <- lists:seq(1, Procs), I <- [1, Rounds],
                    K <- [{load, Tag, P, I}],
                    gen_server:call(Server, {get, K}) =/= {final, K}],
    ?assertEqual([], Missing).

%% A call to a name nobody registered fails with noproc at once: the C node
%% answers the caller's monitor with a DOWN instead of staying silent.
unknown_name_gives_noproc_promptly(Config) ->
    Node = ?config(cnode, Config),
    Times = [begin
                 {T, R} = timer:tc(fun() -> catch gen_server:call({nosuch, Node}, {get, k}, 5000) end),
                 ?assertMatch({'EXIT', {noproc, {gen_server, call, _}}}, R),
                 T div 1000
             end || _ <- lists:seq(1, 5)],
    ct:log("noproc after ~p ms", [Times]),
    ?assert(lists:max(Times) < 1000),
    %% A cast to an unknown name is silently dropped, as for any node.
    ok = gen_server:cast({nosuch, Node}, {put, a, b}),
    ?assertEqual(pong, net_adm:ping(Node)).

wrong_cookie_is_refused(Config) ->
    Node = ?config(cnode, Config),
    Server = ?config(server, Config),
    ok = gen_server:cast(Server, {put, {?FUNCTION_NAME, key}, kept}),
    {Peer, _} = start_peer(Config, peer_bad_cookie, 'not_the_cookie'),
    ?assertEqual(pang, peer:call(Peer, net_adm, ping, [Node], 15000)),
    ?assertEqual(pang, peer:call(Peer, net_adm, ping, [Node], 15000)),
    ?assertEqual(pong, net_adm:ping(Node)),
    ?assertEqual(kept, gen_server:call(Server, {get, {?FUNCTION_NAME, key}})),
    %% A peer with the right cookie still gets in afterwards.
    {Good, _} = start_peer(Config, peer_good_cookie, erlang:get_cookie()),
    ?assertEqual(pong, peer:call(Good, net_adm, ping, [Node], 15000)),
    ?assertEqual(kept, peer:call(Good, gen_server, call,
                                 [Server, {get, {?FUNCTION_NAME, key}}], 15000)).

%% A peer with a 4 s net_ticktime connects and then says nothing for 10 s:
%% the C node must answer its ticks, or the peer drops the connection.
idle_connection_survives_net_ticktime(Config) ->
    Server = ?config(server, Config),
    ok = gen_server:cast(Server, {put, {?FUNCTION_NAME, key}, still_there}),
    {Peer, _} = start_peer(Config, peer_ticks, erlang:get_cookie(),
                           ["-kernel", "net_ticktime", "4"]),
    ?assertEqual({still_up, still_there},
                 peer:call(Peer, ?MODULE, idle_watch,
                           [{Server, {?FUNCTION_NAME, key}}, 10000], 30000)).

%% A peer issuing calls in a loop is killed with SIGKILL; the C node notices,
%% keeps its data, keeps serving, and accepts the same node name again.
peer_vanishing_mid_call_is_cleaned_up(Config) ->
    Node = ?config(cnode, Config),
    Server = ?config(server, Config),
    Kept = [{{?FUNCTION_NAME, kept, N}, N} || N <- lists:seq(1, 100)],
    [ok = gen_server:cast(Server, {put, K, V}) || {K, V} <- Kept],
    {Peer, PeerNode} = start_peer(Config, peer_vanish, erlang:get_cookie()),
    OsPid = peer:call(Peer, os, getpid, []),
    ok = peer:call(Peer, ?MODULE, start_call_loops, [Server, ?FUNCTION_NAME, 8]),
    %% Wait until the loops are well under way.
    gen_cnode_test_env:wait_until(
      fun() ->
              case gen_server:call(Server, {get, {?FUNCTION_NAME, progress, 1}}) of
                  C when is_integer(C) -> C > 50;
                  _ -> false
              end
      end, 20000),
    os:cmd("kill -9 " ++ OsPid),
    gen_cnode_test_env:wait_until(fun() -> os:cmd("kill -0 " ++ OsPid ++ " 2>&1") =/= "" end,
                                  5000),
    ?assertEqual(pong, net_adm:ping(Node)),
    [?assertEqual(V, gen_server:call(Server, {get, K})) || {K, V} <- Kept],
    [ok = gen_server:cast(Server, {put, {?FUNCTION_NAME, after_kill, N}, N}) || N <- lists:seq(1, 100)],
    [?assertEqual(N, gen_server:call(Server, {get, {?FUNCTION_NAME, after_kill, N}}))
     || N <- lists:seq(1, 100)],
    %% The same node name connects again (the old connection was let go).
    {Again, PeerNode} = start_peer(Config, peer_vanish, erlang:get_cookie()),
    ?assertEqual(pong, peer:call(Again, net_adm, ping, [Node], 15000)),
    ?assertEqual(50, peer:call(Again, gen_server, call,
                               [Server, {get, {?FUNCTION_NAME, kept, 50}}], 15000)).

%% A message bigger than --max-message costs that message only: a call gets
%% {error, {bad_request, too_large}}, a cast is dropped, each logged once
%% with its sender; the connection stays up (no nodedown) and the data is as
%% it was.
oversized_message_costs_itself_only(Config) ->
    {Owner, Server = {kv, Node}, Log} =
        start_cnode(Config, kvsmall, ["--max-message", "1000000"]),
    Small = [{{small, N}, fidelity_terms:pattern(1000 + N)} || N <- lists:seq(1, 20)],
    [ok = gen_server:cast(Server, {put, K, V}) || {K, V} <- Small],
    ?assertEqual(20, gen_server:call(Server, size)),
    Big = fidelity_terms:pattern(2 bsl 20),
    true = erlang:monitor_node(Node, true),
    ?assertEqual({error, {bad_request, too_large}}, gen_server:call(Server, {put, big, Big}, 10000)),
    ?assertEqual(nil, gen_server:call(Server, {get, big})),
    ?assertEqual(20, gen_server:call(Server, size)),
    [?assertEqual(V, gen_server:call(Server, {get, K})) || {K, V} <- Small],
    %% The same through a cast: dropped.
    ok = gen_server:cast(Server, {put, big, Big}),
    ?assertEqual(20, gen_server:call(Server, size)),
    receive {nodedown, Node} -> error(nodedown_for_an_oversized_message) after 0 -> ok end,
    erlang:monitor_node(Node, false),
    %% (the lines reach the log through the owner: wait for both)
    Refused = fun() ->
                      {ok, Text} = file:read_file(Log),
                      [L || L <- binary:split(Text, <<"\n">>, [global]),
                            binary:match(L, <<"over the 1000000-byte limit">>) =/= nomatch]
              end,
    ok = gen_cnode_test_env:wait_until(fun() -> length(Refused()) >= 2 end, 5000),
    timer:sleep(100),
    Lines = Refused(),
    ct:log("~p", [Lines]),
    ?assertMatch([_, _], Lines),
    [?assertNotEqual(nomatch, binary:match(L, atom_to_binary(node()))) || L <- Lines],
    %% Just under the limit still goes through.
    Fits = fidelity_terms:pattern(900000),
    ok = gen_server:cast(Server, {put, fits, Fits}),
    ?assert(gen_server:call(Server, {get, fits}) =:= Fits),
    stop_cnode(Owner, Log).

%% --busy-poll (measured by default, busy_poll.h): after answering, the node keeps polling
%% for the next request before it sleeps, for as long as asked and no longer:
%% idle, it takes next to no CPU. With --busy-poll 0 it never spins and serves
%% the same.
busy_poll_is_bounded_and_can_be_off(Config) ->
    Calls = fun(S) ->
                    K = {?FUNCTION_NAME, self()},
                    [begin
                         ok = gen_server:cast(S, {put, K, I}),
                         I = gen_server:call(S, {get, K}, ?CALL_TIMEOUT)
                     end || I <- lists:seq(1, 2000)],
                    ok
            end,
    %% The suite's node, with the default.
    Server = ?config(server, Config),
    ok = Calls(Server),
    timer:sleep(200),
    Idle = cpu_ms(gen_cnode:os_pid(?config(owner, Config)), 1000),
    ct:log("default node, idle after 2,000 calls: ~.1f ms of CPU in 1 s", [Idle]),
    ?assert(Idle < 100),
    %% Asked to poll for 300 ms after an answer: it does, then sleeps.
    {Long, LongServer, LongLog} = start_cnode(Config, kvlongpoll, ["--busy-poll", "300000"]),
    LongPid = gen_cnode:os_pid(Long),
    ok = Calls(LongServer),
    timer:sleep(400),
    Before = cpu_ms(LongPid, 500),
    ?assertEqual(1, gen_server:call(LongServer, size, ?CALL_TIMEOUT)),
    Polling = cpu_ms(LongPid, 200),
    timer:sleep(300),
    After = cpu_ms(LongPid, 500),
    ct:log("--busy-poll 300000: ~.1f ms of CPU in 500 ms before a call, ~.1f ms in the 200 ms "
           "after it, ~.1f ms in 500 ms once it stopped", [Before, Polling, After]),
    ?assert(Before < 50),
    ?assert(Polling > 20),
    ?assert(After < 50),
    stop_cnode(Long, LongLog),
    %% --busy-poll 0: the same service, and no polling after an answer.
    {Off, OffServer, OffLog} = start_cnode(Config, kvnospin, ["--busy-poll", "0", "--verbose"]),
    ok = Calls(OffServer),
    ?assertEqual(1, gen_server:call(OffServer, size, ?CALL_TIMEOUT)),
    ?assert(cpu_ms(gen_cnode:os_pid(Off), 200) < 20),
    stop_cnode(Off, OffLog),
    {ok, Text} = file:read_file(OffLog),
    ?assertMatch({_, _}, binary:match(Text, <<"busy-polling for 0 us">>)).

%% Pinned to one CPU (taskset, through a wrapper script), the node turns
%% busy-polling off by itself, says so, and serves as usual.
busy_poll_is_off_by_default_on_one_cpu(Config) ->
    Dir = ?config(priv_dir, Config),
    Real = case os:getenv("GEN_CNODE_EXE") of
               E when is_list(E), E =/= "" -> E;
               _ -> filename:join(code:priv_dir(gen_cnode), "gen_cnode")
           end,
    Taskset = os:find_executable("taskset"),
    ?assert(is_list(Taskset)),
    Wrapper = filename:join(Dir, "one_cpu.sh"),
    ok = file:write_file(Wrapper, ["#!/bin/sh\nexec ", Taskset, " -c ", integer_to_list(first_cpu()),
                                   " ", Real, " \"$@\"\n"]),
    ok = file:change_mode(Wrapper, 8#755),
    Log = filename:join(Dir, "kvonecpu.log"),
    {ok, Owner} = gen_cnode:start(#{name => 'kvonecpu@127.0.0.1', executable => Wrapper,
                                    args => ["--verbose"], log => Log}),
    gen_cnode_test_env:track({cnode, Owner}),
    Server = {kv, 'kvonecpu@127.0.0.1'},
    ok = gen_server:cast(Server, {put, one, cpu}),
    ?assertEqual(cpu, gen_server:call(Server, {get, one}, ?CALL_TIMEOUT)),
    stop_cnode(Owner, Log),
    {ok, Text} = file:read_file(Log),
    ?assertMatch({_, _}, binary:match(Text, <<"1 CPU usable: busy-polling off">>)).

%% The first CPU this node may run on (what taskset may pin a child to).
first_cpu() ->
    {ok, Status} = file:read_file("/proc/self/status"),
    {match, [First]} = re:run(Status, "Cpus_allowed_list:\\s*(\\d+)", [{capture, all_but_first, list}]),
    list_to_integer(First).

%% Milliseconds an OS process spent on a CPU over the next Ms milliseconds
%% (the scheduler's own account, /proc/PID/schedstat).
cpu_ms(OsPid, Ms) ->
    File = "/proc/" ++ integer_to_list(OsPid) ++ "/schedstat",
    Read = fun() ->
                   {ok, B} = file:read_file(File),
                   binary_to_integer(hd(binary:split(B, <<" ">>)))
           end,
    T0 = Read(),
    timer:sleep(Ms),
    (Read() - T0) / 1.0e6.

%%% Test cases: starting and stopping

invalid_option_exits_with_status_2(Config) ->
    Log = filename:join(?config(priv_dir, Config), "kvbadopt.log"),
    ?assertMatch({error, {exited, 2, _}},
                 gen_cnode_test_env:failed_start(#{name => kvbadopt, log => Log, start_timeout => 10000,
                                                   args => ["--no-such-option"]})),
    ?assertMatch({error, {exited, 2, _}},
                 gen_cnode_test_env:failed_start(#{name => kvbadopt, log => Log, start_timeout => 10000,
                                                   args => ["--port", "not-a-number"]})),
    ?assertMatch({error, {exited, 2, _}},
                 gen_cnode_test_env:failed_start(#{name => kvbadopt, log => Log, start_timeout => 10000,
                                                   args => ["--busy-poll", "-1"]})),
    ?assertMatch({error, {exited, 2, _}},
                 gen_cnode_test_env:failed_start(#{name => kvbadopt, log => Log, start_timeout => 10000,
                                                   args => ["--jobs-grace", "-5"]})),
    %% an option with no value does not take the next option for one (the
    %% kv registered as "--verbose"), and an address is checked as an option
    ?assertMatch({error, {exited, 2, _}},
                 gen_cnode_test_env:failed_start(#{name => kvbadopt, log => Log, start_timeout => 10000,
                                                   args => ["--register", "--verbose"]})),
    ?assertMatch({error, {exited, 2, _}},
                 gen_cnode_test_env:failed_start(#{name => kvbadopt, log => Log, start_timeout => 10000,
                                                   args => ["--listen", "1.2.3.4.5"]})).

start_without_executable_fails(_Config) ->
    Missing = "/nonexistent/gen_cnode",
    ?assertEqual({error, {no_executable, Missing}},
                 gen_cnode_test_env:failed_start(#{name => kvmissing, executable => Missing})).

%% The owner dies without stopping the C node: --watch-stdin sees EOF and the
%% C node exits by itself.
owner_death_stops_the_c_node(Config) ->
    {Owner, {kv, Node}, Log} = start_cnode(Config, kvorphan, []),
    {os_pid, Os} = gen_cnode_test_env:track({os_pid, gen_cnode:os_pid(Owner)}),
    OsPid = integer_to_list(Os),
    ?assertEqual(pong, net_adm:ping(Node)),
    exit(Owner, kill),
    gen_cnode_test_env:wait_until(fun() -> os:cmd("kill -0 " ++ OsPid ++ " 2>&1") =/= "" end,
                                  10000),
    ?assertEqual([], gen_cnode_test_env:sanitizer_reports(Log)).

%% start_link/1: when the parent exits, the owner stops the C node (SIGTERM,
%% through terminate/2) and the node leaves epmd.
linked_owner_stops_with_its_parent(Config) ->
    Log = filename:join(?config(priv_dir, Config), "kvlinked.log"),
    Self = self(),
    Parent = spawn(fun() ->
                           {ok, Owner} = gen_cnode:start_link(#{name => kvlinked, log => Log}),
                           Self ! {owner, Owner, gen_cnode:os_pid(Owner)},
                           receive never -> ok end
                   end),
    gen_cnode_test_env:track({pid, Parent}),
    {Owner, OsPid} = receive {owner, O, P} -> {O, P} after 15000 -> error(no_start) end,
    gen_cnode_test_env:track({cnode, Owner}),
    gen_cnode_test_env:track({os_pid, OsPid}),
    ?assertEqual(pong, net_adm:ping('kvlinked@127.0.0.1')),
    Ref = monitor(process, Owner),
    exit(Parent, shutdown),
    receive {'DOWN', Ref, process, Owner, _} -> ok after 10000 -> error(owner_still_up) end,
    ?assertNotEqual("", os:cmd("kill -0 " ++ integer_to_list(OsPid) ++ " 2>&1")),
    {ok, Names} = net_adm:names("127.0.0.1"),
    ?assertNot(lists:keymember("kvlinked", 1, Names)),
    ?assertEqual([], gen_cnode_test_env:sanitizer_reports(Log)),
    ?assertMatch({ok, <<_/binary>>}, file:read_file(Log)),
    {ok, Text} = file:read_file(Log),
    ?assertNotEqual(nomatch, binary:match(Text, <<"exited with status 0">>)).

%% SIGTERM: the C node unpublishes, exits 0, and (under AddressSanitizer)
%% reports no leak and no error.
sigterm_stops_cleanly_and_unpublishes(Config) ->
    Owner = ?config(owner, Config),
    Log = ?config(cnode_log, Config),
    Ref = monitor(process, Owner),
    Result = (catch gen_cnode:stop(Owner)),
    Down = receive {'DOWN', Ref, process, Owner, Why} -> Why after 10000 -> no_down end,
    {ok, Names} = net_adm:names("127.0.0.1"),
    ?assertEqual({ok, normal, false, []},
                 {Result, Down, lists:keymember("kvct", 1, Names),
                  gen_cnode_test_env:sanitizer_reports(Log)}).

%%% Run on peers (and on the CT node)

%% Procs processes, each doing Rounds of: cast put, call get, call put, call
%% fetch, on keys of its own. Returns {rounds done, wrong answers}.
load(Server, Tag, Procs, Rounds) ->
    Workers = [spawn_monitor(fun() -> exit({done, load_rounds(Server, Tag, P, Rounds)}) end)
               || P <- lists:seq(1, Procs)],
    lists:foldl(fun({Pid, Ref}, {Done, Wrong}) ->
                        receive
                            {'DOWN', Ref, process, Pid, {done, {D, W}}} -> {Done + D, W ++ Wrong};
                            {'DOWN', Ref, process, Pid, Crash} -> {Done, [{crash, Crash} | Wrong]}
                        after 100000 -> {Done, [{timeout, Pid} | Wrong]}
                        end
                end, {0, []}, Workers).

load_rounds(Server, Tag, P, Rounds) ->
    lists:foldl(
      fun(I, {Done, Wrong}) ->
              K = {load, Tag, P, I},
              V = {Tag, P, I, lists:seq(1, I rem 7)},
              ok = gen_server:cast(Server, {put, K, V}),
              A = gen_server:call(Server, {get, K}, ?CALL_TIMEOUT),
              B = gen_server:call(Server, {put, K, {final, K}}, ?CALL_TIMEOUT),
              C = gen_server:call(Server, {fetch, K}, ?CALL_TIMEOUT),
              case {A, B, C} of
                  {V, ok, {ok, {final, K}}} -> {Done + 1, Wrong};
                  Bad -> {Done + 1, [{K, Bad} | Wrong]}
              end
      end, {0, []}, lists:seq(1, Rounds)).

%% Connects to the server's node, stays idle for Ms, then reads Key:
%% {still_up | nodedown, Value}.
idle_watch({Server = {_, Node}, Key}, Ms) ->
    pong = net_adm:ping(Node),
    true = erlang:monitor_node(Node, true),
    Up = receive {nodedown, Node} -> nodedown after Ms -> still_up end,
    {Up, gen_server:call(Server, {get, Key}, ?CALL_TIMEOUT)}.

%% N processes calling in a loop, some with big values, counting progress under
%% {Tag, progress, N}. They run until their node dies.
start_call_loops(Server, Tag, N) ->
    [spawn(fun() -> call_loop(Server, Tag, I, 0) end) || I <- lists:seq(1, N)],
    ok.

call_loop(Server, Tag, I, Count) ->
    Value = case I rem 2 of
                0 -> fidelity_terms:pattern(256 * 1024 + Count);
                1 -> Count
            end,
    ok = gen_server:call(Server, {put, {Tag, loop, I}, Value}, ?CALL_TIMEOUT),
    _ = gen_server:call(Server, {get, {Tag, loop, I}}, ?CALL_TIMEOUT),
    ok = gen_server:cast(Server, {put, {Tag, progress, I}, Count}),
    call_loop(Server, Tag, I, Count + 1).

%%% Terms

terms() ->
    Port = fidelity_terms:a_port(),
    X = 42,
    [%% integers: small, 32-bit, big, negative big
     0, 1, -1, 255, 256, -256, (1 bsl 27) - 1, -(1 bsl 27), (1 bsl 31) - 1, -(1 bsl 31),
     1 bsl 31, -(1 bsl 31) - 1, 1 bsl 32, (1 bsl 63) - 1, -(1 bsl 63), 1 bsl 64,
     -(1 bsl 64) - 7, (1 bsl 1000) + 12345, -(1 bsl 2040) - 1,
     %% floats, 0.0 and -0.0 apart
     1.0, -1.5, 3.141592653589793, 1.0e300, -1.0e-300, 5.0e-324, positive_zero(),
     negative_zero(),
     %% atoms, unicode ones too
     a, '', 'hello world', 'ключ', '🙂', 'x🙂ключ', true, false, nil, undefined,
     list_to_atom(lists:duplicate(255, $x)), list_to_atom(lists:duplicate(255, 16#1F642)),
     %% binaries and bitstrings
     <<>>, <<"bar">>, <<0, 1, 2, 255>>, fidelity_terms:pattern(1000), <<1:1>>, <<5:3>>,
     <<"abc", 3:2>>, binary:part(fidelity_terms:pattern(5000), 17, 1000), <<"ключ 🙂"/utf8>>,
     %% tuples
     {}, {a}, {1, 2.0, "three", <<"four">>}, list_to_tuple(lists:seq(1, 300)),
     {{{{nested}}}, [{}]},
     %% lists, strings, improper lists
     [], "abc", [1 | 2], [a, b | c], [1.0 | <<>>], "ключ", lists:seq(1, 300), lists:seq(0, 255),
     lists:duplicate(70000, $a), [[], [[]], [[[]]]], [<<>> | <<1:1>>],
     fidelity_terms:nested_list(40),
     %% maps: flat, nested, large (hash map), keys 1 and 1.0 apart
     #{}, #{a => 1}, #{1 => a, 1.0 => b}, #{#{k => v} => [#{}], [m] => #{n => #{o => p}}},
     maps:from_list([{N, {v, N}} || N <- lists:seq(1, 100)]),
     maps:from_list([{integer_to_binary(N), N} || N <- lists:seq(1, 40)]),
     %% pids, references, ports: local and of other nodes
     self(), list_to_pid("<0.0.0>"), fidelity_terms:external_pid(), make_ref(),
     fidelity_terms:external_ref(), Port,
     %% funs: external, local, with an environment
     fun erlang:abs/1, fun lists:map/2, fun(Y) -> Y + 1 end, fun() -> X end,
     %% a bit of everything
     {record, 'ключ', [1, 2.5, <<"x">>], #{self() => make_ref()}, {<<7:3>>, [a | b]}}].

%% Built at run time so that no compiler folds them into one another.
positive_zero() -> <<Z/float>> = <<0:64>>, Z.
negative_zero() -> <<Z/float>> = <<1:1, 0:63>>, Z.

%% =:= and the same external representation: tells -0.0 from 0.0 on OTP 25
%% too, where they are =:=. But for a term holding a fun: a fun's encoding
%% carries a creator pid, no part of it, that the node's keys give as
%% nonode@nohost's <0.0.0> and OTP 25 keeps as decoded (README).
identical(A, B) ->
    A =:= B andalso (term_to_binary(A) =:= term_to_binary(B) orelse fidelity_terms:holds_fun(A)).

%% Sorted, with 1 and 1.0 (equal in term order) in a fixed order.
sort_exact(Terms) ->
    lists:sort([{T, term_to_binary(T)} || T <- Terms]).

%%% The C node, peers

start_cnode(Config, Name, Args) ->
    start_cnode(Config, Name, Args, kv).

start_cnode(Config, Name, Args, Register) ->
    Log = filename:join(?config(priv_dir, Config), atom_to_list(Name) ++ ".log"),
    Node = list_to_atom(atom_to_list(Name) ++ "@127.0.0.1"),
    {ok, Owner} = gen_cnode:start(#{name => Node, register => Register, args => Args,
                                    log => Log}),
    gen_cnode_test_env:track({cnode, Owner}),
    {Owner, {Register, Node}, Log}.

%% Stops a C node the test started and checks it exited 0 with nothing to
%% say from the sanitizers.
stop_cnode(Owner, Log) ->
    ?assertEqual({ok, []},
                 {gen_cnode:stop(Owner), gen_cnode_test_env:sanitizer_reports(Log)}).

%% A peer node with Cookie (gen_cnode_test_env:start_peer/2: this suite in its
%% code path), tracked. Returns {PeerPid, NodeName}.
start_peer(Config, Name, Cookie) ->
    start_peer(Config, Name, Cookie, []).

start_peer(_Config, Name, Cookie, Args) ->
    {Peer, Node} = gen_cnode_test_env:start_peer(Name,
                                                 ["-setcookie", atom_to_list(Cookie) | Args]),
    gen_cnode_test_env:track({peer, Peer}),
    {Peer, Node}.

%% gen_cnode_dial_SUITE: the C node dials out, as a BEAM node does.
%%
%% Each case starts a C node of its own (gen_cnode:start/1) and peers of this
%% release (and, under OTP 25 with the OTP 27 chroot there, one of OTP 27),
%% all on 127.0.0.1 with the suite's epmd. A "far" peer is one that never
%% connected to the C node: what the C node sends it (a reply to a call a
%% router forwarded, a held reply, a link) makes the C node connect to it.
%% Nodes that cannot be reached are made up: a name epmd does not know, and
%% one registered with epmd on a port where nothing listens.
-module(gen_cnode_dial_SUITE).

-define(config(Key, Config), proplists:get_value(Key, Config)).
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([replies_reach_a_far_caller/1,
         replies_reach_a_far_caller_of_the_other_release/1,
         held_reply_reaches_a_far_caller/1,
         start_link_from_a_far_caller_is_linked/1,
         unreachable_nodes_fail_promptly/1,
         made_up_nodes_cost_only_themselves/1,
         connect_option_dials_at_boot_and_again/1,
         connect_request_dials/1,
         no_auto_connect_dials_only_on_request/1,
         simultaneous_connects_settle_on_one/1]).

-define(CALL_TIMEOUT, 5000).

suite() ->
    [{timetrap, {minutes, 2}}].

% The case with a peer of the other release only where there is one (under
% OTP 25, as root, with the OTP 27 chroot); the ct27 stage runs the rest.
all() ->
    [replies_reach_a_far_caller_of_the_other_release || gen_cnode_test_env:other_release_runtime() =/= none] ++
    [replies_reach_a_far_caller,
     held_reply_reaches_a_far_caller,
     start_link_from_a_far_caller_is_linked,
     unreachable_nodes_fail_promptly,
     made_up_nodes_cost_only_themselves,
     connect_option_dials_at_boot_and_again,
     connect_request_dials,
     no_auto_connect_dials_only_on_request,
     simultaneous_connects_settle_on_one].

init_per_suite(Config) ->
    gen_cnode_test_env:init_suite(Config).

end_per_suite(Config) ->
    gen_cnode_test_env:end_suite(Config).

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, _Config) ->
    gen_cnode_test_env:reap().

%%% Helpers

%% A C node of this case's own, with its log in the case's priv_dir.
cnode(Config, Name, Args) ->
    {Node, Log, _Owner} = gen_cnode_test_env:start_cnode(Config, Name, #{args => Args}),
    {Node, Log}.

%% A process here that forwards {'$gen_call', From, {Dest, Request}} to Dest
%% as {'$gen_call', From, Request}: the caller's pid reaches the C node
%% without its node ever connecting to it.
router(Name) ->
    Router = spawn(fun Loop() ->
                           receive
                               {'$gen_call', From, {Dest, Req}} -> Dest ! {'$gen_call', From, Req}, Loop();
                               stop -> ok
                           end
                   end),
    true = register(Name, Router),
    gen_cnode_test_env:track({pid, Router}),
    {Name, node()}.

%% Lines of a C node's log that contain every one of Parts.
log_lines(Log, Parts) ->
    {ok, Text} = file:read_file(Log),
    [L || L <- binary:split(Text, <<"\n">>, [global]),
          lists:all(fun(P) -> binary:match(L, P) =/= nomatch end, Parts)].

hidden_nodes(Peer) ->
    peer:call(Peer, erlang, nodes, [hidden]).

%% A pid of Node (which need not exist): NEW_PID_EXT, by hand.
pid_on(Node) ->
    N = atom_to_binary(Node),
    binary_to_term(<<131, 88, 119, (byte_size(N)), N/binary, 1:32, 0:32, 1:32>>).

%% The C node's connections, as its stats list them.
connections(CNode) ->
    #{connections := Cs} = gen_server:call({gen_cnode, CNode}, stats, ?CALL_TIMEOUT),
    [maps:get(node, C) || C <- Cs].

%%% Test cases

%% The router case: calls from a node that never talked to the C node,
%% forwarded by a router, are answered (the C node dials the caller's node),
%% in order, and fast; the puts are applied.
replies_reach_a_far_caller(Config) ->
    {CNode, Log} = cnode(Config, dial_far, ["--log-level", "debug"]),
    Router = router(dial_router),
    {Peer, PeerNode} = gen_cnode_test_env:start_tracked_peer(dial_far_peer),
    ?assertNot(lists:member(CNode, hidden_nodes(Peer))),
    {Us, Results} = timer:tc(fun() ->
        peer:call(Peer, gen_server, call, [Router, {{kv, CNode}, {put, {far, 1}, 1}}, ?CALL_TIMEOUT],
                  ?CALL_TIMEOUT + 1000)
    end),
    ct:log("first reply after ~p us", [Us]),
    ?assertEqual(ok, Results),
    ?assert(Us < 2000000),
    ?assert(lists:member(CNode, hidden_nodes(Peer))),
    ?assertEqual(1, gen_server:call({kv, CNode}, {get, {far, 1}})),
    %% 200 requests sent at once from the far node (not connected before a
    %% second router round: disconnect first): the replies arrive, in order.
    true = peer:call(Peer, erlang, disconnect_node, [CNode]),
    ok = gen_cnode_test_env:wait_until(fun() -> not lists:member(PeerNode, connections(CNode)) end, 5000),
    Replies = peer:call(Peer, erlang, apply,
                        [fun() ->
                                 Tags = [begin
                                             T = make_ref(),
                                             Router ! {'$gen_call', {self(), T}, {{kv, CNode}, {put, {far, I}, I}}},
                                             T
                                         end || I <- lists:seq(1, 200)],
                                 [receive {T, R} -> R after 5000 -> timeout end || T <- Tags]
                                 ++ [receive Late -> {late, Late} after 0 -> none end]
                         end, []], 30000),
    ?assertEqual(lists:duplicate(200, ok) ++ [none], Replies),
    ?assertEqual(200, gen_server:call({kv, CNode}, {get, {far, 200}})),
    ?assertEqual([PeerNode], [N || N <- connections(CNode), N =:= PeerNode]),
    ?assertMatch([_ | _], log_lines(Log, [<<"connected to ">>, atom_to_binary(PeerNode), <<"(dialed)">>])),
    ?assertEqual([], log_lines(Log, [<<"dropped">>])).

%% The same from an OTP 27 far caller when this is OTP 25 (and the other way
%% round is the ct27 stage's run of the case above).
replies_reach_a_far_caller_of_the_other_release(Config) ->
    {CNode, _Log} = cnode(Config, dial_rel, []),
    Router = router(dial_rel_router),
    {Peer, PeerNode, Release} = gen_cnode_test_env:start_other_release_peer(dial_rel_far),
    ct:log("far caller ~p runs OTP ~s", [PeerNode, Release]),
    ?assertEqual(ok, peer:call(Peer, gen_server, call,
                               [Router, {{kv, CNode}, {put, rel, Release}}, ?CALL_TIMEOUT],
                               ?CALL_TIMEOUT + 1000)),
    ?assertEqual(Release, peer:call(Peer, gen_server, call,
                                    [Router, {{kv, CNode}, {get, rel}}, ?CALL_TIMEOUT],
                                    ?CALL_TIMEOUT + 1000)),
    #{connections := Cs} = gen_server:call({gen_cnode, CNode}, stats),
    ?assertMatch([#{otp_release := 27}], [C || C = #{node := N} <- Cs, N =:= PeerNode]),
    peer:stop(Peer).

%% A {wait_for, N} call from a far caller is held; the counter monitors the
%% caller, for which the C node dials its node (as erlang:monitor/2 on a
%% pid of a node not connected does); the reply, sent when a cast from here
%% wakes it, reaches the far node.
held_reply_reaches_a_far_caller(Config) ->
    {CNode, _Log} = cnode(Config, dial_held, ["--start", "counter:dial_counter"]),
    Counter = {dial_counter, CNode},
    Router = router(dial_held_router),
    {Peer, _PeerNode} = gen_cnode_test_env:start_tracked_peer(dial_held_peer),
    Self = self(),
    Caller = spawn_link(fun() ->
                                Self ! {held, peer:call(Peer, gen_server, call,
                                                        [Router, {Counter, {wait_for, 1}}, ?CALL_TIMEOUT],
                                                        ?CALL_TIMEOUT + 1000)}
                        end),
    %% The counter holds the call until the count is reached.
    ok = gen_cnode_test_env:wait_until(
           fun() -> maps:get(waiting, durable_harness:status(Counter)) =:= 1 end, 10000),
    ok = gen_cnode_test_env:wait_until(fun() -> lists:member(CNode, hidden_nodes(Peer)) end, 10000),
    ok = gen_server:cast(Counter, incr),
    ?assertEqual({held, {ok, 1}}, receive {held, _} = H -> H after ?CALL_TIMEOUT + 2000 -> {timeout, Caller} end).

%% {start_link, kv, []} on behalf of a far process: the new server is linked
%% to it (the C node dials its node to say so), so when the far process
%% exits with boom, the server stops with boom.
start_link_from_a_far_caller_is_linked(Config) ->
    {CNode, _Log} = cnode(Config, dial_link, []),
    Router = router(dial_link_router),
    {Peer, _PeerNode} = gen_cnode_test_env:start_tracked_peer(dial_link_peer),
    Self = self(),
    Far = peer:call(Peer, erlang, spawn,
                    [fun() ->
                             process_flag(trap_exit, true),
                             R = gen_server:call(Router, {{gen_cnode, CNode}, {start_link, kv, []}}, ?CALL_TIMEOUT),
                             Self ! {started, self(), R},
                             receive go -> exit(boom) end
                     end]),
    {ok, Server} = receive {started, Far, R} -> R after ?CALL_TIMEOUT + 1000 -> error(no_start) end,
    M = monitor(process, Server),
    ?assertEqual(ok, gen_server:call(Server, {put, linked, yes})),
    %% The link is there before the far process goes: it shows in its links.
    ok = gen_cnode_test_env:wait_until(
           fun() -> {links, Ls} = peer:call(Peer, erlang, process_info, [Far, links]),
                    lists:member(Server, Ls) end, 5000),
    Far ! go,
    ?assertEqual({'DOWN', M, process, Server, boom},
                 receive {'DOWN', M, _, _, _} = D -> D after ?CALL_TIMEOUT -> timeout end).

%% Nodes that cannot be reached fail at once and cleanly: a name epmd does
%% not know, and a name epmd knows on a port where nothing listens. A server
%% started_link on behalf of a pid there gets noconnection and stops; the
%% reply to it is dropped and logged once, with the reason; and the node
%% serves on.
unreachable_nodes_fail_promptly(Config) ->
    {CNode, Log} = cnode(Config, dial_down, []),
    %% A name registered with epmd, on a port nothing listens on.
    {ok, L} = gen_tcp:listen(0, [{ip, {127, 0, 0, 1}}]),
    {ok, DeadPort} = inet:port(L),
    gen_tcp:close(L),
    Alive = <<"dial_deadport">>,
    {ok, Epmd} = gen_tcp:connect({127, 0, 0, 1}, gen_cnode_test_env:epmd_port(), [binary, {active, false}]),
    Req = <<120, DeadPort:16, 72, 0, 6:16, 5:16, (byte_size(Alive)):16, Alive/binary, 0:16>>,
    ok = gen_tcp:send(Epmd, <<(byte_size(Req)):16, Req/binary>>),
    {ok, <<_, 0, _/binary>>} = gen_tcp:recv(Epmd, 0, 5000),
    try
        [begin
             Name = list_to_atom("dial_down_kv_" ++ atom_to_list(Ghost)),
             GhostNode = list_to_atom(atom_to_list(Ghost) ++ "@127.0.0.1"),
             Tag = make_ref(),
             T0 = erlang:monotonic_time(millisecond),
             {gen_cnode, CNode} ! {'$gen_call', {pid_on(GhostNode), Tag},
                                   {start_link, kv, [], [{name, Name}]}},
             ok = gen_cnode_test_env:wait_until(
                    fun() -> {'EXIT', {noproc, _}} = (catch gen_server:call({Name, CNode}, size, 1000)),
                             true end, 5000),
             Ms = erlang:monotonic_time(millisecond) - T0,
             ct:log("~p: the server linked to it stopped after ~p ms", [GhostNode, Ms]),
             ?assert(Ms < 3000),
             ok = gen_cnode_test_env:wait_until(
                    fun() -> log_lines(Log, [<<"cannot connect to ">>, atom_to_binary(GhostNode)]) =/= [] end,
                    5000),
             Lines = log_lines(Log, [<<"cannot connect to ">>, atom_to_binary(GhostNode)]),
             ct:log("~p", [Lines]),
             ?assertMatch([_], Lines),
             ?assertNotEqual(nomatch, binary:match(hd(Lines), Why))
         end || {Ghost, Why} <- [{dial_ghost, <<"epmd does not know it">>},
                                 {dial_deadport, <<"Connection refused">>}]],
        %% A send again at once (the last attempt failed a moment ago) is
        %% dropped without a new attempt, and logged.
        GhostPid = pid_on('dial_deadport@127.0.0.1'),
        ok = gen_server:call({kv, CNode}, {put, k, v}),
        {kv, CNode} ! {'$gen_call', {GhostPid, make_ref()}, {get, k}},
        ?assertEqual(v, gen_server:call({kv, CNode}, {get, k})),
        ok = gen_cnode_test_env:wait_until(
               fun() -> log_lines(Log, [<<"dropped: dial_deadport@127.0.0.1">>]) =/= [] end, 5000),
        ct:log("~p", [log_lines(Log, [<<"dropped: dial_deadport@127.0.0.1">>])]),
        ?assertMatch([_], log_lines(Log, [<<"cannot connect to dial_deadport@127.0.0.1">>])),
        ?assertEqual([], [N || N <- connections(CNode), N =/= node()])
    after
        gen_tcp:close(Epmd)
    end.

%% A peer that names 2,000 made-up nodes (as the callers of calls it sends)
%% costs only those replies: the node keeps serving promptly, at most 64
%% attempts run at once, and the warnings are limited to 10 a second, with a
%% line saying how many were left out.
made_up_nodes_cost_only_themselves(Config) ->
    {CNode, Log} = cnode(Config, dial_many, []),
    ok = gen_server:call({kv, CNode}, {put, k, v}),
    T0 = erlang:monotonic_time(millisecond),
    [{kv, CNode} ! {'$gen_call', {pid_on(list_to_atom("made_up_" ++ integer_to_list(I) ++ "@127.0.0.1")),
                                  make_ref()}, {get, k}}
     || I <- lists:seq(1, 2000)],
    Times = [begin
                 {Us, v} = timer:tc(fun() -> gen_server:call({kv, CNode}, {get, k}, 5000) end),
                 timer:sleep(50),
                 Us
             end || _ <- lists:seq(1, 20)],
    ct:log("calls while 2,000 made-up nodes failed: ~p us", [Times]),
    ?assert(lists:max(Times) < 1000000),
    ok = gen_cnode_test_env:wait_until(
           fun() -> log_lines(Log, [<<"were left out">>]) =/= [] end, 10000),
    timer:sleep(1500),
    Secs = (erlang:monotonic_time(millisecond) - T0) / 1000,
    Warned = length(log_lines(Log, [<<"made_up_">>])),
    ct:log("~p warnings naming a made-up node in ~.1f s; ~p", [Warned, Secs, log_lines(Log, [<<"were left out">>])]),
    ?assert(Warned =< 10 * (Secs + 1)),
    ?assertEqual([], [N || N <- connections(CNode), N =/= node()]),
    ?assertEqual(v, gen_server:call({kv, CNode}, {get, k})).

%% --connect NODE: the C node connects at boot to a node that never asked,
%% and connects again when that node drops the connection.
connect_option_dials_at_boot_and_again(Config) ->
    {Peer, PeerNode} = gen_cnode_test_env:start_tracked_peer(dial_boot_peer),
    {CNode, _Log} = cnode(Config, dial_boot, ["--connect", atom_to_list(PeerNode)]),
    ok = gen_cnode_test_env:wait_until(fun() -> lists:member(CNode, hidden_nodes(Peer)) end, 5000),
    ?assertEqual(ok, peer:call(Peer, gen_server, call, [{kv, CNode}, {put, boot, 1}])),
    true = peer:call(Peer, erlang, disconnect_node, [CNode]),
    ?assertNot(lists:member(CNode, hidden_nodes(Peer))),
    ok = gen_cnode_test_env:wait_until(fun() -> lists:member(CNode, hidden_nodes(Peer)) end, 10000).

%% {connect, Node} to the starter: ok, and the node connects; a name that is
%% not a node's is refused.
connect_request_dials(Config) ->
    {CNode, _Log} = cnode(Config, dial_req, []),
    {Peer, PeerNode} = gen_cnode_test_env:start_tracked_peer(dial_req_peer),
    ?assertEqual(ok, gen_server:call({gen_cnode, CNode}, {connect, PeerNode})),
    ok = gen_cnode_test_env:wait_until(fun() -> lists:member(CNode, hidden_nodes(Peer)) end, 5000),
    ?assertEqual(ok, gen_server:call({gen_cnode, CNode}, {connect, PeerNode})), %% already: ok
    ?assertEqual({error, {cannot_connect, nonode}}, gen_server:call({gen_cnode, CNode}, {connect, nonode})),
    ?assertEqual({error, {cannot_connect, CNode}}, gen_server:call({gen_cnode, CNode}, {connect, CNode})),
    ?assertEqual([PeerNode], [N || N <- connections(CNode), N =:= PeerNode]).

%% --no-auto-connect: a reply to a far caller is dropped (and logged, with
%% the reason), not a cause to connect; a connect request still connects,
%% and then the far caller is answered.
no_auto_connect_dials_only_on_request(Config) ->
    {CNode, Log} = cnode(Config, dial_noauto, ["--no-auto-connect"]),
    Router = router(dial_noauto_router),
    {Peer, PeerNode} = gen_cnode_test_env:start_tracked_peer(dial_noauto_peer),
    ?assertMatch({'EXIT', {timeout, _}},
                 peer:call(Peer, erlang, apply,
                           [fun() -> catch gen_server:call(Router, {{kv, CNode}, {put, noauto, 1}}, 1000) end,
                            []], 5000)),
    ?assertEqual(1, gen_server:call({kv, CNode}, {get, noauto})), %% applied, not answered
    ?assertNot(lists:member(CNode, hidden_nodes(Peer))),
    ok = gen_cnode_test_env:wait_until(
           fun() -> log_lines(Log, [<<"dropped: ">>, atom_to_binary(PeerNode), <<"--no-auto-connect">>]) =/= [] end,
           5000),
    ?assertEqual(ok, gen_server:call({gen_cnode, CNode}, {connect, PeerNode})),
    ok = gen_cnode_test_env:wait_until(fun() -> lists:member(CNode, hidden_nodes(Peer)) end, 5000),
    ?assertEqual(ok, peer:call(Peer, gen_server, call, [Router, {{kv, CNode}, {put, noauto, 2}}, 5000])).

%% Both sides connect at the same moment, over and over, with the C node's
%% name before and after the peer's: every time both say they connected
%% (the side that yields is told nok, as OTP tells it, and waits for the
%% other's connection rather than failing), exactly one connection is left,
%% and it serves.
simultaneous_connects_settle_on_one(Config) ->
    {Peer, PeerNode} = gen_cnode_test_env:start_tracked_peer(dial_mid_peer),
    Rounds = 15,
    [begin
         {CNode, Log} = cnode(Config, Name, ["--log-level", "debug"]),
         Results = [race(CNode, Peer, PeerNode) || _ <- lists:seq(1, Rounds)],
         Settled = length(log_lines(Log, [<<"simultaneous connect">>])),
         ct:log("~p against ~p: ~p rounds, ~p settled as simultaneous connects",
                [CNode, PeerNode, Rounds, Settled]),
         ?assertEqual(lists:duplicate(Rounds, ok), Results)
     end || Name <- [dial_aaa, dial_zzz]],
    ok.

race(CNode, Peer, PeerNode) ->
    Self = self(),
    Go = make_ref(),
    Racers = [spawn_link(fun() -> receive Go -> Self ! {Go, self(), F()} end end)
              || F <- [fun() -> gen_server:call({gen_cnode, CNode}, {connect, PeerNode}) end,
                       fun() -> peer:call(Peer, net_kernel, connect_node, [CNode]) end]],
    [R ! Go || R <- Racers],
    ?assertEqual([ok, true], [receive {Go, Racer, R} -> R after 10000 -> error(race_timeout) end || Racer <- Racers]),
    ok = gen_cnode_test_env:wait_until(
           fun() -> lists:member(CNode, hidden_nodes(Peer))
                        andalso [PeerNode] =:= [N || N <- connections(CNode), N =:= PeerNode] end, 10000),
    ok = peer:call(Peer, gen_server, call, [{kv, CNode}, {put, race, PeerNode}]),
    true = peer:call(Peer, erlang, disconnect_node, [CNode]),
    ok = gen_cnode_test_env:wait_until(fun() -> not lists:member(PeerNode, connections(CNode)) end, 5000).

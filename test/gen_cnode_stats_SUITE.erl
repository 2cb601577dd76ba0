%% gen_cnode_stats_SUITE: the node's figures, as the starter gen_cnode
%% answers GenServer.call({:gen_cnode, node}, :stats) and shows them to
%% :sys.get_state and :sys.get_status:
%%
%%   #{node, uptime_ms, processes, servers, timers, jobs_queued,
%%     jobs_running, workers, modules,
%%     connections => [#{node, since_ms, bytes_in, bytes_out, messages_in,
%%                       messages_out, messages_by_shape, otp_release}],
%%     busy_poll => #{mode, polling, in_trial, confirming, window_us, trials,
%%                    polling_turnaround_us, sleeping_turnaround_us},
%%     coalesce => #{window_us, now, sleeps}}
%%
%% Each case runs against a C node of its own (under ASan and UBSan in the
%% OTP 25 stage) with timer_probe and digest loaded, which must stop with
%% status 0 and no sanitizer report.
-module(gen_cnode_stats_SUITE).

-define(config(Key, Config), proplists:get_value(Key, Config)).
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

-export([stats_have_every_figure/1,
         this_nodes_connection_counts_up/1,
         calls_are_accepted_by_shape/1,
         a_peers_connection_comes_and_goes/1,
         servers_started_through_the_starter_count/1,
         pending_timers_count/1,
         workers_and_jobs_count/1,
         no_workers_means_zero/1,
         sys_get_state_and_get_status_show_the_map/1,
         other_calls_to_the_starter_still_work/1,
         busy_poll_is_measured_by_default/1,
         busy_poll_given_is_fixed/1,
         coalesces_under_load_only/1,
         coalesce_zero_never_sleeps/1]).

-define(KEYS, [busy_poll, coalesce, connections, jobs_queued, jobs_running, modules, node, processes,
               servers, timers, uptime_ms, workers]).
-define(BP_KEYS, [confirming, in_trial, mode, polling, polling_turnaround_us, sleeping_turnaround_us,
                  trials, window_us]).
-define(CONN_KEYS, [bytes_in, bytes_out, messages_by_shape, messages_in, messages_out, node, otp_release,
                    since_ms]).

suite() ->
    [{timetrap, {minutes, 2}}].

all() ->
    [stats_have_every_figure,
     this_nodes_connection_counts_up,
     calls_are_accepted_by_shape,
     a_peers_connection_comes_and_goes,
     servers_started_through_the_starter_count,
     pending_timers_count,
     workers_and_jobs_count,
     no_workers_means_zero,
     sys_get_state_and_get_status_show_the_map,
     other_calls_to_the_starter_still_work,
     busy_poll_is_measured_by_default,
     busy_poll_given_is_fixed,
     coalesces_under_load_only,
     coalesce_zero_never_sleeps].

init_per_suite(Config) ->
    durable_harness:init_suite(?MODULE, Config).

end_per_suite(Config) ->
    durable_harness:end_suite(Config).

init_per_testcase(Case, Config) ->
    Args = loads() ++ args(Case),
    Name = list_to_atom("s" ++ integer_to_list(erlang:unique_integer([positive]))),
    {Owner, {kv, Node}, Log} = durable_harness:start_cnode(Config, Name, Args),
    [{owner, Owner}, {cnode, Node}, {log, Log}, {args, Args} | Config].

args(workers_and_jobs_count) -> ["--workers", "2"];
args(no_workers_means_zero) -> ["--workers", "0"];
args(busy_poll_given_is_fixed) -> ["--workers", "1", "--busy-poll", "0"];
args(coalesce_zero_never_sleeps) -> ["--workers", "1", "--coalesce", "0"];
args(_) -> ["--workers", "3"].

end_per_testcase(_Case, Config) ->
    Owner = ?config(owner, Config),
    Log = ?config(log, Config),
    Stop = case is_process_alive(Owner) of
               true -> gen_cnode:stop(Owner);
               false -> owner_gone
           end,
    gen_cnode_test_env:reap(),
    case {Stop, gen_cnode_test_env:sanitizer_reports(Log)} of
        {ok, []} -> ok;
        Other -> {fail, {after_the_case, Other, durable_harness:log_lines(Log)}}
    end.

%%% Helpers

modules_dir() ->
    filename:dirname(gen_cnode_test_env:executable()).

loads() ->
    ["--load", filename:join([modules_dir(), "test_modules", "timer_probe.so"]),
     "--load", filename:join([modules_dir(), "examples", "digest.so"])].

stats(Node) ->
    gen_server:call({gen_cnode, Node}, stats, 10000).

%% The entry of connections for node Peer, or none.
conn(Stats, Peer) ->
    case [C || C = #{node := N} <- maps:get(connections, Stats), N =:= Peer] of
        [C] -> C;
        [] -> none
    end.

start(Node, Module, Arg, Name) ->
    gen_server:call({gen_cnode, Node}, {start, Module, Arg, [{name, Name}]}, 10000).

wait_until(Fun) ->
    ok = gen_cnode_test_env:wait_until(Fun, 10000).

release() ->
    list_to_integer(erlang:system_info(otp_release)).

check_shape(Node, S) ->
    ?assertEqual(?KEYS, lists:sort(maps:keys(S))),
    ?assertEqual(Node, maps:get(node, S)),
    [?assert(is_integer(maps:get(K, S)) andalso maps:get(K, S) >= 0)
     || K <- ?KEYS, K =/= node, K =/= modules, K =/= connections, K =/= busy_poll, K =/= coalesce],
    BP = maps:get(busy_poll, S),
    ?assertEqual(?BP_KEYS, lists:sort(maps:keys(BP))),
    ?assert(lists:member(maps:get(mode, BP), [auto, fixed])),
    ?assert(is_boolean(maps:get(polling, BP))),
    ?assert(is_boolean(maps:get(in_trial, BP))),
    ?assert(is_boolean(maps:get(confirming, BP))),
    [?assert(is_integer(maps:get(K, BP)) andalso maps:get(K, BP) >= 0) || K <- [trials, window_us]],
    [?assert(is_float(maps:get(K, BP)) andalso maps:get(K, BP) >= 0)
     || K <- [polling_turnaround_us, sleeping_turnaround_us]],
    CO = maps:get(coalesce, S),
    ?assertEqual([now, sleeps, window_us], lists:sort(maps:keys(CO))),
    ?assert(is_boolean(maps:get(now, CO))),
    [?assert(is_integer(maps:get(K, CO)) andalso maps:get(K, CO) >= 0) || K <- [sleeps, window_us]],
    ?assert(is_list(maps:get(modules, S))),
    ?assert(lists:all(fun is_atom/1, maps:get(modules, S))),
    [begin
         ?assertEqual(?CONN_KEYS, lists:sort(maps:keys(C))),
         ?assert(is_atom(maps:get(node, C))),
         [?assert(is_integer(maps:get(K, C)) andalso maps:get(K, C) >= 0)
          || K <- ?CONN_KEYS, K =/= node, K =/= otp_release],
         ?assert(lists:member(maps:get(otp_release, C), [25, 26, 27, 28, undefined]))
     end || C <- maps:get(connections, S)],
    ok.

%%% Cases

%% Every figure is there, of the right type; modules lists the bundled ones
%% and those loaded, in order; this node's connection is listed with its
%% OTP release.
stats_have_every_figure(Config) ->
    Node = ?config(cnode, Config),
    S = stats(Node),
    ct:log("~p", [S]),
    ok = check_shape(Node, S),
    ?assertEqual([kv, counter, timer_probe, digest], maps:get(modules, S)),
    %% net_kernel, gen_cnode, the pg scope, kv, counter: gen_servers; the
    %% release probe is not one.
    ?assertEqual(5, maps:get(servers, S)),
    ?assertEqual(6, maps:get(processes, S)),
    ?assertEqual(3, maps:get(workers, S)),
    ?assertEqual(0, maps:get(timers, S)),
    ?assertEqual(0, maps:get(jobs_queued, S)),
    ?assertEqual(0, maps:get(jobs_running, S)),
    ?assertMatch(#{}, conn(S, node())),
    wait_until(fun() -> maps:get(otp_release, conn(stats(Node), node())) =:= release() end),
    U1 = maps:get(uptime_ms, S),
    timer:sleep(50),
    ?assert(maps:get(uptime_ms, stats(Node)) >= U1 + 50).

%% Some kv calls later, every counter of this node's connection has grown:
%% by at least one message each way per call.
this_nodes_connection_counts_up(Config) ->
    Node = ?config(cnode, Config),
    C1 = conn(stats(Node), node()),
    Calls = 20,
    [ok = gen_server:call({kv, Node}, {put, K, list_to_binary(lists:duplicate(100, $x))})
     || K <- lists:seq(1, Calls)],
    C2 = conn(stats(Node), node()),
    ct:log("before ~p~nafter ~p", [C1, C2]),
    %% The stats call itself is one message in and one reply out.
    ?assert(maps:get(messages_in, C2) >= maps:get(messages_in, C1) + Calls + 1),
    ?assert(maps:get(messages_out, C2) >= maps:get(messages_out, C1) + Calls + 1),
    ?assert(maps:get(bytes_in, C2) >= maps:get(bytes_in, C1) + Calls * 100),
    ?assert(maps:get(bytes_out, C2) > maps:get(bytes_out, C1)),
    ?assert(maps:get(since_ms, C2) >= maps:get(since_ms, C1)),
    %% Nothing counts down.
    C3 = conn(stats(Node), node()),
    [?assert(maps:get(K, C3) >= maps:get(K, C2))
     || K <- [bytes_in, bytes_out, messages_in, messages_out, since_ms]].

%% A caller sends the same frames call after call, differing in references,
%% pids' IDs and integers only: after the first few, the node accepts them by
%% their shape (messages_by_shape), and every answer is still right. Calls
%% of other shapes (binary keys, tuple keys) are answered right too, also
%% where keys of one shape differ only in a binary's bytes or an integer.
calls_are_accepted_by_shape(Config) ->
    Node = ?config(cnode, Config),
    Calls = 300,
    [ok = gen_server:call({kv, Node}, {put, K, K * 2}) || K <- lists:seq(1000, 1000 + Calls)],
    C1 = conn(stats(Node), node()),
    Got = [gen_server:call({kv, Node}, {get, K}) || K <- lists:seq(1000, 1000 + Calls)],
    ?assertEqual([K * 2 || K <- lists:seq(1000, 1000 + Calls)], Got),
    C2 = conn(stats(Node), node()),
    ct:log("before ~p~nafter ~p", [C1, C2]),
    In = maps:get(messages_in, C2) - maps:get(messages_in, C1),
    ByShape = maps:get(messages_by_shape, C2) - maps:get(messages_by_shape, C1),
    %% each call is a monitor, the request and a demonitor (OTP 24+): all
    %% three by shape, but for the few a slot needs to learn them
    ?assert(In >= 3 * Calls),
    ?assert(ByShape >= 3 * Calls - 20),
    ?assert(ByShape =< In),
    %% other shapes, one after another: answered right all the same
    ok = gen_server:call({kv, Node}, {put, <<"k1">>, a}),
    ok = gen_server:call({kv, Node}, {put, {k, 1}, b}),
    [?assertEqual(a, gen_server:call({kv, Node}, {get, <<"k1">>})) || _ <- lists:seq(1, 5)],
    [?assertEqual(b, gen_server:call({kv, Node}, {get, {k, 1}})) || _ <- lists:seq(1, 5)],
    [?assertEqual(nil, gen_server:call({kv, Node}, {get, <<"k2">>})) || _ <- lists:seq(1, 5)],
    [?assertEqual(nil, gen_server:call({kv, Node}, {get, {k, 2}})) || _ <- lists:seq(1, 5)].

%% A peer node that connects is listed, with counters of its own, and is
%% gone from the list once it stops.
a_peers_connection_comes_and_goes(Config) ->
    Node = ?config(cnode, Config),
    {Peer, PeerNode} = gen_cnode_test_env:start_peer(
                         peer_stats, ["-setcookie", atom_to_list(erlang:get_cookie())]),
    gen_cnode_test_env:track({peer, Peer}),
    ?assertEqual(none, conn(stats(Node), PeerNode)),
    ok = peer:call(Peer, gen_server, call, [{kv, Node}, {put, from_peer, 1}]),
    S = stats(Node),
    ok = check_shape(Node, S),
    #{messages_in := In, messages_out := Out, since_ms := Since} = conn(S, PeerNode),
    ?assert(In >= 1),
    ?assert(Out >= 1),
    ?assert(Since >= 0),
    ?assertNotEqual(none, conn(S, node())),
    ?assertEqual(2, length(maps:get(connections, S))),
    peer:stop(Peer),
    wait_until(fun() -> conn(stats(Node), PeerNode) =:= none end),
    ?assertEqual(1, length(maps:get(connections, stats(Node)))).

%% A server started through the starter is one more process and one more
%% server; stopped, it is one less again.
servers_started_through_the_starter_count(Config) ->
    Node = ?config(cnode, Config),
    #{processes := P0, servers := S0} = stats(Node),
    {ok, Pid} = start(Node, timer_probe, [], probe),
    {ok, _} = gen_server:call({gen_cnode, Node}, {start, counter, []}),
    #{processes := P1, servers := S1} = stats(Node),
    ?assertEqual({P0 + 2, S0 + 2}, {P1, S1}),
    ok = gen_server:stop(Pid),
    wait_until(fun() -> maps:get(servers, stats(Node)) =:= S0 + 1 end),
    ?assertEqual(P0 + 1, maps:get(processes, stats(Node))).

%% Pending timers: none after {cancel_many, N}; one while a caller waits on
%% {'after', 60000}; none again once its server stops.
pending_timers_count(Config) ->
    Node = ?config(cnode, Config),
    ?assertEqual(0, maps:get(timers, stats(Node))),
    {ok, P} = start(Node, timer_probe, [], probe),
    ?assertEqual({cancelled, 1000}, gen_server:call(P, {cancel_many, 1000})),
    ?assertEqual(0, maps:get(timers, stats(Node))),
    Self = self(),
    spawn(fun() -> Self ! {late, catch gen_server:call(P, {'after', 60000}, 60000)} end),
    wait_until(fun() -> gen_server:call(P, pending) =:= 1 end),
    ?assertEqual(1, maps:get(timers, stats(Node))),
    {ok, P2} = start(Node, timer_probe, [], probe2),
    spawn(fun() -> Self ! {late, catch gen_server:call(P2, {'after', 60000}, 60000)} end),
    wait_until(fun() -> maps:get(timers, stats(Node)) =:= 2 end),
    ok = gen_server:stop(P),
    receive {late, {'EXIT', {normal, _}}} -> ok after 5000 -> ct:fail(caller_not_released) end,
    ?assertEqual(1, maps:get(timers, stats(Node))),
    ok = gen_server:stop(P2),
    receive {late, {'EXIT', {normal, _}}} -> ok after 5000 -> ct:fail(caller_not_released) end,
    ?assertEqual(0, maps:get(timers, stats(Node))).

%% --workers 2: workers is 2; three sleeping jobs are two running and one
%% queued; none once they are done.
workers_and_jobs_count(Config) ->
    Node = ?config(cnode, Config),
    ?assertMatch(#{workers := 2, jobs_queued := 0, jobs_running := 0}, stats(Node)),
    {ok, D} = start(Node, digest, [], digest),
    Self = self(),
    [spawn(fun() -> Self ! {slept, gen_server:call(D, {sleep, 1500}, 10000)} end)
     || _ <- lists:seq(1, 3)],
    wait_until(fun() -> gen_server:call(D, jobs) =:= {3, 0} end),
    S = stats(Node),
    ct:log("~p", [S]),
    ?assertMatch(#{jobs_running := 2, jobs_queued := 1}, S),
    [receive {slept, R} -> ?assertEqual(slept, R) after 10000 -> ct:fail(no_answer) end
     || _ <- lists:seq(1, 3)],
    ?assertMatch(#{jobs_running := 0, jobs_queued := 0}, stats(Node)).

%% --workers 0: no pool, and every figure of it is 0.
no_workers_means_zero(Config) ->
    Node = ?config(cnode, Config),
    ?assertMatch(#{workers := 0, jobs_queued := 0, jobs_running := 0}, stats(Node)).

%% :sys.get_state and :sys.get_status of gen_cnode show the stats map.
sys_get_state_and_get_status_show_the_map(Config) ->
    Node = ?config(cnode, Config),
    State = sys:get_state({gen_cnode, Node}),
    ct:log("~p", [State]),
    ok = check_shape(Node, State),
    ?assertEqual([kv, counter, timer_probe, digest], maps:get(modules, State)),
    ?assertEqual(3, maps:get(workers, State)),
    ?assertNotEqual(none, conn(State, node())),
    {status, Pid, {module, gen_server}, [_PDict, running, _Parent, _, Misc]} =
        sys:get_status({gen_cnode, Node}),
    ?assertEqual(Node, node(Pid)),
    [Shown] = [S || {data, [{"State", S}]} <- Misc],
    ct:log("~p", [Shown]),
    ok = check_shape(Node, Shown),
    Fixed = [modules, node, processes, servers, timers, workers, jobs_queued, jobs_running],
    ?assertEqual(maps:with(Fixed, State), maps:with(Fixed, Shown)),
    ?assertEqual(maps:with(Fixed, State), maps:with(Fixed, stats(Node))).

%% The starter still starts servers, and still answers other requests
%% with unknown_call.
other_calls_to_the_starter_still_work(Config) ->
    Node = ?config(cnode, Config),
    {ok, Pid} = start(Node, timer_probe, [], probe),
    ?assertEqual(0, gen_server:call(Pid, pending)),
    ?assertEqual({error, {unknown_call, statistics}},
                 gen_server:call({gen_cnode, Node}, statistics)),
    ?assertEqual({error, {unknown_call, {stats}}}, gen_server:call({gen_cnode, Node}, {stats})),
    ok = gen_server:stop(Pid).

%% With two CPUs or more and no --busy-poll, the node finds out whether
%% polling after an answer pays: the first answers are a trial that
%% alternates polling and sleeping (8 phases of 2000 answers), whose mean
%% intervals from one answer to the next the stats show; the loop stops
%% polling only after two trials in a row found it cut that mean by less than
%% 2 us.
busy_poll_is_measured_by_default(Config) ->
    Node = ?config(cnode, Config),
    #{busy_poll := BP0} = stats(Node),
    case erlang:system_info(logical_processors_available) of
        N when is_integer(N), N < 2 ->
            ?assertMatch(#{mode := fixed, polling := false}, BP0);
        _ ->
            ?assertMatch(#{mode := auto, window_us := 100, trials := 0, polling := true}, BP0),
            BP = call_until_trial(Node, 40),
            ct:log("~p", [BP]),
            %% It polls until two trials in a row say otherwise: one that
            %% does is a doubt, that the next (5 s of calls later) settles.
            ?assertMatch(#{mode := auto, trials := 1, in_trial := false, polling := true}, BP),
            #{confirming := Doubt, polling_turnaround_us := On, sleeping_turnaround_us := Off} = BP,
            ?assert(On > 0 andalso Off > 0),
            ?assertEqual(round((Off - On) * 1000) < 2000, Doubt) % the C rule, in ns
    end.

%% Calls one at a time, 2000 at a go, until the first trial is over: 16000
%% intervals, more where a loaded machine leaves some out as too long.
call_until_trial(Node, 0) ->
    ct:fail({no_trial_ended, stats(Node)});
call_until_trial(Node, Tries) ->
    [gen_server:call({kv, Node}, {get, K}) || K <- lists:seq(1, 2000)],
    case stats(Node) of
        #{busy_poll := #{trials := 0}} -> call_until_trial(Node, Tries - 1);
        #{busy_poll := BP} -> BP
    end.

%% --busy-poll given: that window, or none, and nothing measured.
busy_poll_given_is_fixed(Config) ->
    Node = ?config(cnode, Config),
    [gen_server:call({kv, Node}, {get, K}) || K <- lists:seq(1, 2000)],
    ?assertMatch(#{busy_poll := #{mode := fixed, polling := false, window_us := 0, trials := 0}},
                 stats(Node)).

%% Coalescing (--coalesce, default 40 us): one caller waiting for each answer
%% never makes the node sleep on the clock, however many calls; casts from
%% eight senders at once do, and while they stream every cast still lands in
%% order: a sender's call after its casts reads its last put.
coalesces_under_load_only(Config) ->
    Node = ?config(cnode, Config),
    ?assertMatch(#{coalesce := #{window_us := 40, now := false, sleeps := 0}}, stats(Node)),
    [gen_server:call({kv, Node}, {get, K}) || K <- lists:seq(1, 2000)],
    ?assertMatch(#{coalesce := #{sleeps := 0}}, stats(Node)),
    Sleeps = cast_until_it_coalesces(Node, 10),
    ct:log("sleeps after the casts: ~p", [Sleeps]),
    ?assert(Sleeps > 0),
    %% caught up: the next sleep finds nothing and ends it
    wait_until(fun() -> #{coalesce := #{now := Now}} = stats(Node), not Now end).

%% Rounds of 8 senders x 5,000 casts, each sender checking its own order
%% at the end, until the node has slept on the clock (at most Rounds).
cast_until_it_coalesces(Node, Rounds) ->
    Self = self(),
    Pids = [spawn_link(fun() ->
                               [gen_server:cast({kv, Node}, {put, {order, S}, I}) || I <- lists:seq(1, 5000)],
                               Self ! {self(), gen_server:call({kv, Node}, {get, {order, S}}, 20000)}
                       end) || S <- lists:seq(1, 8)],
    [?assertEqual(5000, receive {P, V} -> V after 30000 -> timeout end) || P <- Pids],
    case stats(Node) of
        #{coalesce := #{sleeps := N}} when N > 0; Rounds =< 1 -> N;
        _ -> cast_until_it_coalesces(Node, Rounds - 1)
    end.

%% --coalesce 0: the same casts, and never a sleep.
coalesce_zero_never_sleeps(Config) ->
    Node = ?config(cnode, Config),
    ?assertMatch(#{coalesce := #{window_us := 0, now := false, sleeps := 0}}, stats(Node)),
    ?assertEqual(0, cast_until_it_coalesces(Node, 2)),
    ?assertMatch(#{coalesce := #{window_us := 0, now := false, sleeps := 0}}, stats(Node)).

%% gen_cnode_otp_SUITE: full OTP process semantics, as a client sees them.
%%
%% One conformance suite, two targets, the same test cases and assertions:
%%
%%   beam   the reference servers (starter_reference, kv_reference,
%%          counter_reference: ordinary gen_servers) on a peer BEAM node
%%          started with OTP's peer module, booted as a C node boots:
%%          a starter registered as gen_cnode, kv and counter registered;
%%   cnode  the C node, started with gen_cnode:start/1 (GEN_CNODE_EXE, else
%%          priv/gen_cnode).
%%
%% Every case starts the servers it needs the same way on both targets,
%% gen_server:call({gen_cnode, Node}, {start | start_link, Module, Arg[, Opts]}),
%% and talks to them only with what any client uses: gen_server, sys, gen,
%% erlang:monitor/link/exit, peer nodes that come and go. The C node differs
%% from a BEAM gen_server on purpose in one thing only, said in differs/2.
%% Setting a target up (start_target/4) and reading its memory (memory_kb/1) are
%% the only other places that look at which target it is.
%%
%% Like gen_cnode_SUITE it brings up its own epmd on $ERL_EPMD_PORT (unless
%% one answers there) and distribution with long names, and stops what it
%% started (gen_cnode_test_env, the suites' shared set-up). tools/run-tests
%% runs it under OTP 25 on the host (against the sanitizer build) and OTP 27
%% in the chroot, so every caller-side path is exercised from both releases. Under OTP 25 on the host, when the OTP 27
%% chroot is there (tools/otp27-chroot, run as root), a third group, releases,
%% has callers of both releases take turns on one C node (C node only: an OTP
%% 27 caller's sys:get_state of an OTP 25 BEAM server ends in case_clause).
%% The memory cases read /proc/OSPID/status: tools/run-tests mounts /proc in
%% the chroot for the OTP 27 stages.
-module(gen_cnode_otp_SUITE).

-define(config(Key, Config), proplists:get_value(Key, Config)).
-include_lib("stdlib/include/assert.hrl").

-export([all/0, groups/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2, init_per_testcase/2, end_per_testcase/2]).

-export([start_returns_pid_after_init/1,
         start_link_links_server_to_caller/1,
         start_with_name_registers_it/1,
         start_errors/1,
         preload_is_done_before_any_other_message/1,
         kv_protocol_on_a_started_server/1,
         counter_protocol/1,
         wait_for_is_a_deferred_reply/1,
         monitor_down_carries_the_stop_reason/1,
         monitor_of_dead_pid_or_unknown_name_is_noproc/1,
         demonitor_is_honoured/1,
         blocked_call_exits_with_the_stop_reason/1,
         abnormal_stop_sends_exit_to_links/1,
         normal_stop_reaches_only_trapping_links/1,
         linked_process_exit_stops_the_server/1,
         trapping_server_survives_exit_signals/1,
         exit_kill_gives_killed/1,
         exit_normal_from_another_process_is_ignored/1,
         exit_other_stops_the_server/1,
         unlink_is_honoured/1,
         peer_disconnect_gives_noconnection/1,
         sys_get_state_is_the_store/1,
         sys_replace_state/1,
         sys_get_status_shape/1,
         sys_suspend_then_resume_serves_in_order/1,
         gen_server_stop_with_reason/1,
         unknown_system_message/1,
         multi_call_one_and_two_nodes/1,
         send_request_and_responses/1,
         call_with_infinity_timeout/1,
         late_reply_after_timeout_is_dropped/1,
         peer_disconnect_releases_monitors_links_and_calls/1,
         soak_monitor_calls_demonitor/1,
         target_stops_cleanly/1,
         one_c_node_serves_callers_of_both_releases/1]).

%% Run on client peer nodes.
-export([hold_resources/3, release_probe/3, collect_garbage/0]).

-define(QUIET, 300).             % ms to wait for a message that must not come
-define(PROMPT, 2000).           % ms within which a signal must arrive
-define(HUGE, (1 bsl 40)).       % a count the counter never reaches by itself

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [{group, beam}, {group, cnode}]
        ++ [{group, releases} || gen_cnode_test_env:other_release_runtime() =/= none].

groups() ->
    Cases = [start_returns_pid_after_init,
             start_link_links_server_to_caller,
             start_with_name_registers_it,
             start_errors,
             preload_is_done_before_any_other_message,
             kv_protocol_on_a_started_server,
             counter_protocol,
             wait_for_is_a_deferred_reply,
             monitor_down_carries_the_stop_reason,
             monitor_of_dead_pid_or_unknown_name_is_noproc,
             demonitor_is_honoured,
             blocked_call_exits_with_the_stop_reason,
             abnormal_stop_sends_exit_to_links,
             normal_stop_reaches_only_trapping_links,
             linked_process_exit_stops_the_server,
             trapping_server_survives_exit_signals,
             exit_kill_gives_killed,
             exit_normal_from_another_process_is_ignored,
             exit_other_stops_the_server,
             unlink_is_honoured,
             peer_disconnect_gives_noconnection,
             sys_get_state_is_the_store,
             sys_replace_state,
             sys_get_status_shape,
             sys_suspend_then_resume_serves_in_order,
             gen_server_stop_with_reason,
             unknown_system_message,
             multi_call_one_and_two_nodes,
             send_request_and_responses,
             call_with_infinity_timeout,
             late_reply_after_timeout_is_dropped,
             peer_disconnect_releases_monitors_links_and_calls,
             soak_monitor_calls_demonitor,
             %% Last: stops the group's target and checks how it went.
             target_stops_cleanly],
    [{beam, [], Cases}, {cnode, [], Cases},
     %% C node only: a BEAM server cannot do this (an OTP 27 caller's
     %% sys:get_state of an OTP 25 server ends in case_clause).
     {releases, [], [one_c_node_serves_callers_of_both_releases]}].

%%% The one intentional difference

%% What the C node does differently from a BEAM gen_server, on purpose:
%%   replace_state  a C node cannot run the fun sys:replace_state/2 sends: it
%%                  replies {error, {not_supported_by_c_node, replace_state}}
%%                  (README), so sys raises that in the caller, whatever the
%%                  fun, and the state is unchanged.
differs(replace_state, #{kind := cnode}) -> true;
differs(_, _) -> false.

%%% Suite, groups, cases

init_per_suite(Config) ->
    Config1 = gen_cnode_test_env:init_suite(Config),
    ct:log("OTP ~s caller, epmd port ~p",
           [erlang:system_info(otp_release), gen_cnode_test_env:epmd_port()]),
    Config1.

end_per_suite(Config) ->
    gen_cnode_test_env:end_suite(Config).

init_per_group(Group, Config) ->
    {Kind, Name} = case Group of
                       beam -> {beam, kvref};
                       cnode -> {cnode, kvotp};
                       releases -> {cnode, kvrel}
                   end,
    try start_target(Kind, Name, Config, []) of
        Target ->
            ct:log("target ~p", [Target]),
            [{target, Target} | Config]
    catch
        Class:Reason:Stack ->
            {fail, {target_did_not_start, Kind, {Class, Reason, Stack}}}
    end.

end_per_group(_Kind, Config) ->
    case ?config(target, Config) of
        undefined -> ok;
        Target -> ct:log("stopping the target: ~p", [catch stop_target(Target)])
    end,
    ok.

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(target_stops_cleanly, _Config) ->
    gen_cnode_test_env:reap();
end_per_testcase(Case, Config) ->
    gen_cnode_test_env:reap(),
    flush(),
    %% The group's target must still serve whatever the case did to it.
    #{node := Node} = ?config(target, Config),
    case catch gen_server:call({kv, Node}, size, 5000) of
        N when is_integer(N) -> ok;
        Other -> {fail, {target_not_serving_after, Case, Other}}
    end.

%%% Starting servers

%% {ok, Pid} once init has run, as a C node's server is started.
start_returns_pid_after_init(Config) ->
    T = #{node := Node} = target(Config),
    {ok, A} = start_kv(T, []),
    {ok, B} = start_kv(T, []),
    ?assert(is_pid(A)),
    ?assertEqual(Node, node(A)),
    ?assertNotEqual(A, B),
    %% Each has its own store, apart from the registered kv.
    ?assertEqual(0, gen_server:call(A, size)),
    ok = gen_server:cast(A, {put, k, a}),
    ?assertEqual(a, gen_server:call(A, {get, k})),
    ?assertEqual(nil, gen_server:call(B, {get, k})),
    ?assertEqual(nil, gen_server:call({kv, Node}, {get, {?FUNCTION_NAME, k}})),
    {ok, C} = start(T, {start, counter, []}),
    ?assertEqual(0, gen_server:call(C, get)).

%% start_link links the new server to the caller, both ways.
start_link_links_server_to_caller(Config) ->
    T = target(Config),
    Self = self(),
    %% A caller trapping exits gets the server's EXIT.
    {H, _} = spawn_monitor(fun() ->
                                      process_flag(trap_exit, true),
                                      Self ! {started, self(), start(T, {start_link, kv, []})},
                                      forward(Self)
                              end),
    {ok, Pid} = receive {started, H, R} -> R after ?PROMPT * 5 -> error(no_start) end,
    {links, Links} = process_info(H, links),
    ?assertEqual([Pid], Links),
    ok = gen_server:stop(Pid, boom, 5000),
    ?assertEqual({'EXIT', Pid, boom}, forwarded(H)),
    %% A caller exiting abnormally stops the server it start_linked.
    {H2, H2Ref} = spawn_monitor(fun() ->
                                        Self ! {started, self(), start(T, {start_link, kv, []})},
                                        receive {exit, Why} -> exit(Why) end
                                end),
    {ok, Pid2} = receive {started, H2, R2} -> R2 after ?PROMPT * 5 -> error(no_start) end,
    M2 = monitor(process, Pid2),
    H2 ! {exit, caller_crashed},
    ?assertEqual({'DOWN', H2Ref, process, H2, caller_crashed}, next_down(H2Ref)),
    ?assertEqual({'DOWN', M2, process, Pid2, caller_crashed}, next_down(M2)),
    %% start_link with a name.
    {H3, _} = spawn_monitor(fun() ->
                                    process_flag(trap_exit, true),
                                    Self ! {started, self(),
                                            start(T, {start_link, counter, [], [{name, otp_linked_counter}]})},
                                    forward(Self)
                            end),
    {ok, Pid3} = receive {started, H3, R3} -> R3 after ?PROMPT * 5 -> error(no_start) end,
    #{node := Node} = T,
    ?assertEqual(0, gen_server:call({otp_linked_counter, Node}, get)),
    ok = gen_server:stop({otp_linked_counter, Node}, {shutdown, done}, 5000),
    ?assertEqual({'EXIT', Pid3, {shutdown, done}}, forwarded(H3)),
    %% A server that traps exits stops all the same when its parent (the
    %% start_link caller) goes, with the parent's reason, normal included.
    [begin
         {H4, _} = spawn_monitor(fun() ->
                                         Self ! {started, self(), start(T, {start_link, kv, #{trap_exit => true}})},
                                         receive {exit, Why} -> exit(Why) end
                                 end),
         {ok, Pid4} = receive {started, H4, R4} -> R4 after ?PROMPT * 5 -> error(no_start) end,
         M4 = monitor(process, Pid4),
         exit(Pid4, not_the_parent),
         ?assertEqual(pong, ping(Pid4)),
         H4 ! {exit, ParentWhy},
         ?assertEqual({'DOWN', M4, process, Pid4, ParentWhy}, next_down(M4))
     end || ParentWhy <- [normal, parent_crashed]],
    exit(H, kill),
    exit(H3, kill).

%% A trapping kv is alive: it answers a call.
ping(Pid) ->
    gen_server:call(Pid, {get, nothing_here}, 5000) =:= nil andalso pong.

start_with_name_registers_it(Config) ->
    T = #{node := Node} = target(Config),
    {ok, Pid} = start(T, {start, kv, [], [{name, otp_named_kv}]}),
    ok = gen_server:cast({otp_named_kv, Node}, {put, k, by_name}),
    ?assertEqual(by_name, gen_server:call(Pid, {get, k})),
    ?assertEqual({error, {already_started, Pid}},
                 start(T, {start, kv, [], [{name, otp_named_kv}]})),
    ?assertEqual({error, {already_started, Pid}},
                 start(T, {start_link, counter, [], [{name, otp_named_kv}]})),
    %% The registered kv is taken from the start.
    ?assertMatch({error, {already_started, P}} when is_pid(P),
                 start(T, {start, kv, [], [{name, kv}]})),
    ?assertMatch({error, {already_started, P}} when is_pid(P),
                 start(T, {start, counter, [], [{name, counter}]})),
    %% Once the server is gone the name is free again.
    ok = gen_server:stop(Pid),
    {ok, Pid2} = start(T, {start, kv, [], [{name, otp_named_kv}]}),
    ?assertNotEqual(Pid, Pid2),
    ?assertEqual(nil, gen_server:call({otp_named_kv, Node}, {get, k})).

start_errors(Config) ->
    T = target(Config),
    ?assertEqual({error, {unknown_module, nosuch}}, start(T, {start, nosuch, []})),
    ?assertEqual({error, {unknown_module, nosuch}}, start(T, {start_link, nosuch, []})),
    ?assertEqual({error, {unknown_module, <<"kv">>}},
                 start(T, {start, <<"kv">>, [], [{name, otp_never}]})),
    ?assertEqual({error, {unknown_module, gen_server}}, start(T, {start, gen_server, []})).

%% The preload runs in a post-init step, yet before any other message.
preload_is_done_before_any_other_message(Config) ->
    T = #{node := Node} = target(Config),
    N = 10000,
    Preload = maps:from_list([{{pre, I}, {value, I, <<I:32>>}} || I <- lists:seq(1, N)]),
    {ok, Pid} = start_kv(T, #{preload => Preload}),
    ?assertEqual(N, gen_server:call(Pid, size, 30000)),
    ?assertEqual({value, 77, <<77:32>>}, gen_server:call(Pid, {get, {pre, 77}})),
    %% A cast sent at once is applied after the preload, not lost to it.
    {ok, Pid2} = start(T, {start, kv, #{preload => Preload}, [{name, otp_preloaded}]}),
    ok = gen_server:cast({otp_preloaded, Node}, {put, {pre, 1}, overwritten}),
    ok = gen_server:cast({otp_preloaded, Node}, {put, extra, 1}),
    ?assertEqual(N + 1, gen_server:call(Pid2, size, 30000)),
    ?assertEqual(overwritten, gen_server:call(Pid2, {get, {pre, 1}})),
    %% The same with the first message a sys request.
    {ok, Pid3} = start_kv(T, #{preload => Preload}),
    ?assert(sys:get_state(Pid3, 30000) =:= Preload),
    %% An empty preload, and trap_exit alongside it.
    {ok, Pid4} = start_kv(T, #{preload => #{}, trap_exit => false}),
    ?assertEqual(0, gen_server:call(Pid4, size)),
    {ok, Pid5} = start_kv(T, #{preload => #{a => 1}, trap_exit => true}),
    ?assertEqual({ok, 1}, gen_server:call(Pid5, {fetch, a})).

%% README's table, on a started server.
kv_protocol_on_a_started_server(Config) ->
    T = target(Config),
    {ok, S} = start_kv(T, []),
    ?assertEqual(nil, gen_server:call(S, {get, a})),
    ?assertEqual(error, gen_server:call(S, {fetch, a})),
    ok = gen_server:cast(S, {put, a, 1}),
    ?assertEqual(1, gen_server:call(S, {get, a})),
    ?assertEqual({ok, 1}, gen_server:call(S, {fetch, a})),
    ?assertEqual(ok, gen_server:call(S, {put, b, [2]})),
    ?assertEqual(2, gen_server:call(S, size)),
    ?assertEqual([a, b], lists:sort(gen_server:call(S, keys))),
    ok = gen_server:cast(S, {delete, a}),
    ?assertEqual(ok, gen_server:call(S, {delete, b})),
    ?assertEqual(ok, gen_server:call(S, {delete, b})),
    ?assertEqual(0, gen_server:call(S, size)),
    ?assertEqual([], gen_server:call(S, keys)),
    ?assertEqual({error, {unknown_call, what}}, gen_server:call(S, what)),
    ?assertEqual({error, {unknown_call, {get, a, b}}}, gen_server:call(S, {get, a, b})),
    ok = gen_server:cast(S, what),
    S ! {put, plain, message},
    ?assertEqual(0, gen_server:call(S, size)).

counter_protocol(Config) ->
    T = #{node := Node} = target(Config),
    ?assert(is_integer(gen_server:call({counter, Node}, get))),
    {ok, C} = start(T, {start, counter, []}),
    ?assertEqual(0, gen_server:call(C, get)),
    ok = gen_server:cast(C, incr),
    ok = gen_server:cast(C, incr),
    ok = gen_server:cast(C, {add, 40}),
    ?assertEqual(42, gen_server:call(C, get)),
    ok = gen_server:cast(C, {add, -2}),
    ?assertEqual(40, gen_server:call(C, get)),
    ?assertEqual({ok, 40}, gen_server:call(C, {wait_for, 40})),
    ?assertEqual({ok, 40}, gen_server:call(C, {wait_for, 3})),
    ?assertEqual(ok, gen_server:call(C, reset)),
    ?assertEqual(0, gen_server:call(C, get)).

%% {wait_for, N} is answered later, by gen_server:reply/2; meanwhile the
%% server serves others.
wait_for_is_a_deferred_reply(Config) ->
    T = target(Config),
    {ok, C} = start(T, {start, counter, []}),
    W2 = spawn_call(C, {wait_for, 2}, 10000),
    W5 = spawn_call(C, {wait_for, 5}, 10000),
    W3 = spawn_call(C, {wait_for, 3}, 10000),
    [wait_blocked(W) || W <- [W2, W5, W3]],
    ?assertEqual(none, call_result(W2, ?QUIET)),
    ?assertEqual(0, gen_server:call(C, get)),
    ok = gen_server:cast(C, incr),
    ok = gen_server:cast(C, incr),
    ?assertEqual({ok, 2}, call_result(W2, ?PROMPT)),
    ?assertEqual(2, gen_server:call(C, get)),
    ?assertEqual(none, call_result(W3, ?QUIET)),
    ?assertEqual(none, call_result(W5, 0)),
    ok = gen_server:cast(C, {add, 3}),
    ?assertEqual({ok, 5}, call_result(W3, ?PROMPT)),
    ?assertEqual({ok, 5}, call_result(W5, ?PROMPT)),
    %% Many waiters on one count, from one process each, all answered.
    Ws = [spawn_call(C, {wait_for, 100}, 10000) || _ <- lists:seq(1, 50)],
    [wait_blocked(W) || W <- Ws],
    ok = gen_server:cast(C, {add, 95}),
    ?assertEqual([{ok, 100} || _ <- Ws], [call_result(W, ?PROMPT) || W <- Ws]).

%%% Monitors

monitor_down_carries_the_stop_reason(Config) ->
    T = #{node := Node} = target(Config),
    {ok, Pid} = start(T, {start, kv, [], [{name, otp_monitored}]}),
    M1 = monitor(process, Pid),
    M2 = monitor(process, {otp_monitored, Node}),
    M3 = monitor(process, Pid),
    ok = gen_server:stop(Pid, {shutdown, because}, 5000),
    ?assertEqual({'DOWN', M1, process, Pid, {shutdown, because}}, next_down(M1)),
    ?assertEqual({'DOWN', M2, process, {otp_monitored, Node}, {shutdown, because}}, next_down(M2)),
    ?assertEqual({'DOWN', M3, process, Pid, {shutdown, because}}, next_down(M3)),
    %% A reason of any shape comes through as it was.
    {ok, Pid2} = start_kv(T, []),
    M4 = monitor(process, Pid2),
    Reason = {crash, "a string", <<"bin">>, #{self() => [1.5 | make_ref()]}},
    ok = gen_server:stop(Pid2, Reason, 5000),
    ?assertEqual({'DOWN', M4, process, Pid2, Reason}, next_down(M4)).

monitor_of_dead_pid_or_unknown_name_is_noproc(Config) ->
    T = #{node := Node} = target(Config),
    {ok, Pid} = start_kv(T, []),
    ok = gen_server:stop(Pid),
    {Us, Down} = timer:tc(fun() ->
                                  M = monitor(process, Pid),
                                  {M, next_down(M)}
                          end),
    {M, D} = Down,
    ?assertEqual({'DOWN', M, process, Pid, noproc}, D),
    ?assert(Us < 1000000),
    M2 = monitor(process, {otp_nobody, Node}),
    ?assertEqual({'DOWN', M2, process, {otp_nobody, Node}, noproc}, next_down(M2)),
    ?assertExit({noproc, {gen_server, call, _}}, gen_server:call(Pid, size, 5000)).

%% Monitors are told apart by their reference: the same pair can hold several.
demonitor_is_honoured(Config) ->
    T = target(Config),
    {ok, Pid} = start_kv(T, []),
    M1 = monitor(process, Pid),
    ?assert(demonitor(M1)),
    M2 = monitor(process, Pid),
    M3 = monitor(process, Pid),
    ?assert(demonitor(M2, [flush])),
    %% The demonitors reach the server before this call (signal order).
    ?assertEqual(0, gen_server:call(Pid, size)),
    ok = gen_server:stop(Pid, going, 5000),
    ?assertEqual({'DOWN', M3, process, Pid, going}, next_down(M3)),
    ?assertEqual([], messages(?QUIET)).

%% A caller blocked in a call to a server that stops exits with the stop
%% reason, not with a timeout.
blocked_call_exits_with_the_stop_reason(Config) ->
    T = target(Config),
    {ok, C} = start(T, {start, counter, []}),
    Req = {wait_for, 1000000},
    W = spawn_call(C, Req, 20000),
    wait_blocked(W),
    ok = gen_server:stop(C, {shutdown, stopping}, 5000),
    ?assertEqual({'EXIT', {{shutdown, stopping}, {gen_server, call, [C, Req, 20000]}}},
                 call_result(W, ?PROMPT)),
    %% Killed while a caller waits.
    {ok, C2} = start(T, {start, counter, []}),
    W2 = spawn_call(C2, Req, infinity),
    wait_blocked(W2),
    exit(C2, kill),
    ?assertEqual({'EXIT', {killed, {gen_server, call, [C2, Req, infinity]}}},
                 call_result(W2, ?PROMPT)).

%%% Links and exit signals

abnormal_stop_sends_exit_to_links(Config) ->
    T = target(Config),
    {ok, Pid} = start_kv(T, []),
    Trapping = watcher(Pid, true),
    Plain = watcher(Pid, false),
    PlainRef = monitor(process, Plain),
    ok = gen_server:stop(Pid, boom, 5000),
    ?assertEqual({'EXIT', Pid, boom}, forwarded(Trapping)),
    ?assertEqual({'DOWN', PlainRef, process, Plain, boom}, next_down(PlainRef)).

%% The normal stop: trapping links get {'EXIT', Pid, normal}, others live on.
normal_stop_reaches_only_trapping_links(Config) ->
    T = target(Config),
    {ok, Pid} = start_kv(T, []),
    Trapping = watcher(Pid, true),
    Plain = watcher(Pid, false),
    M = monitor(process, Pid),
    ok = gen_server:stop(Pid),
    ?assertEqual({'DOWN', M, process, Pid, normal}, next_down(M)),
    ?assertEqual({'EXIT', Pid, normal}, forwarded(Trapping)),
    timer:sleep(?QUIET),
    ?assert(is_process_alive(Plain)),
    ?assertEqual(none, forwarded(Plain, 0)).

linked_process_exit_stops_the_server(Config) ->
    T = target(Config),
    {ok, Pid} = start_kv(T, []),
    W = watcher(Pid, false),
    M = monitor(process, Pid),
    W ! {do_exit, linked_one_crashed},
    ?assertEqual({'DOWN', M, process, Pid, linked_one_crashed}, next_down(M)),
    %% A linked process exiting normally does not stop it.
    {ok, Pid2} = start_kv(T, []),
    W2 = watcher(Pid2, false),
    M2 = monitor(process, Pid2),
    W2 ! {do_exit, normal},
    ?assertEqual([], messages(?QUIET)),
    ?assertEqual(0, gen_server:call(Pid2, size)),
    %% Linked from the server's side (start_link), the same.
    Self = self(),
    {H, _} = spawn_monitor(fun() ->
                                   Self ! {started, self(), start(T, {start_link, kv, []})},
                                   receive {exit, Why} -> exit(Why) end
                           end),
    {ok, Pid3} = receive {started, H, R} -> R after ?PROMPT * 5 -> error(no_start) end,
    M3 = monitor(process, Pid3),
    H ! {exit, {parent, crashed}},
    ?assertEqual({'DOWN', M3, process, Pid3, {parent, crashed}}, next_down(M3)),
    demonitor(M2, [flush]).

%% trap_exit: exit signals other than kill become messages, handled as info.
trapping_server_survives_exit_signals(Config) ->
    T = target(Config),
    {ok, Pid} = start_kv(T, #{trap_exit => true}),
    ok = gen_server:cast(Pid, {put, k, kept}),
    M = monitor(process, Pid),
    W = watcher(Pid, false),
    W ! {do_exit, linked_one_crashed},
    exit(Pid, other),
    exit(Pid, normal),
    exit(Pid, {shutdown, please}),
    ?assertEqual(kept, gen_server:call(Pid, {get, k})),
    ?assertEqual([], messages(?QUIET)),
    ?assertEqual(kept, gen_server:call(Pid, {get, k})),
    %% kill cannot be trapped.
    exit(Pid, kill),
    ?assertEqual({'DOWN', M, process, Pid, killed}, next_down(M)).

exit_kill_gives_killed(Config) ->
    T = #{node := Node} = target(Config),
    {ok, Pid} = start(T, {start, kv, [], [{name, otp_killed}]}),
    M = monitor(process, Pid),
    MName = monitor(process, {otp_killed, Node}),
    Trapping = watcher(Pid, true),
    Plain = watcher(Pid, false),
    PlainRef = monitor(process, Plain),
    exit(Pid, kill),
    ?assertEqual({'DOWN', M, process, Pid, killed}, next_down(M)),
    ?assertEqual({'DOWN', MName, process, {otp_killed, Node}, killed}, next_down(MName)),
    ?assertEqual({'EXIT', Pid, killed}, forwarded(Trapping)),
    ?assertEqual({'DOWN', PlainRef, process, Plain, killed}, next_down(PlainRef)),
    ?assertExit({noproc, _}, gen_server:call(Pid, size, 5000)).

exit_normal_from_another_process_is_ignored(Config) ->
    T = target(Config),
    {ok, Pid} = start_kv(T, []),
    ok = gen_server:cast(Pid, {put, k, v}),
    M = monitor(process, Pid),
    exit(Pid, normal),
    ?assertEqual(v, gen_server:call(Pid, {get, k})),
    ?assertEqual([], messages(?QUIET)),
    demonitor(M, [flush]).

exit_other_stops_the_server(Config) ->
    T = target(Config),
    {ok, Pid} = start_kv(T, []),
    M = monitor(process, Pid),
    Trapping = watcher(Pid, true),
    exit(Pid, other),
    ?assertEqual({'DOWN', M, process, Pid, other}, next_down(M)),
    ?assertEqual({'EXIT', Pid, other}, forwarded(Trapping)),
    %% {shutdown, _} too.
    {ok, Pid2} = start_kv(T, []),
    M2 = monitor(process, Pid2),
    exit(Pid2, {shutdown, x}),
    ?assertEqual({'DOWN', M2, process, Pid2, {shutdown, x}}, next_down(M2)),
    %% A reason as deep as a crash's (which holds the state it crashed
    %% with), both ways, whole: the connection is not dropped over it.
    Deep = lists:foldl(fun(I, Acc) -> {I, [Acc]} end, crashed, lists:seq(1, 40)),
    {ok, Pid3} = start_kv(T, []),
    M3 = monitor(process, Pid3),
    Trapping3 = watcher(Pid3, true),
    exit(Pid3, Deep),
    ?assertEqual({'DOWN', M3, process, Pid3, Deep}, next_down(M3)),
    ?assertEqual({'EXIT', Pid3, Deep}, forwarded(Trapping3)).

unlink_is_honoured(Config) ->
    T = target(Config),
    %% Unlinked before the server stops: no EXIT.
    {ok, Pid} = start_kv(T, []),
    Trapping = watcher(Pid, true),
    ok = unlink_watcher(Trapping),
    M = monitor(process, Pid),
    ok = gen_server:stop(Pid, boom, 5000),
    ?assertEqual({'DOWN', M, process, Pid, boom}, next_down(M)),
    ?assertEqual(none, forwarded(Trapping, ?QUIET)),
    %% Unlinked before the process exits: the server lives on.
    {ok, Pid2} = start_kv(T, []),
    Plain = watcher(Pid2, false),
    ok = unlink_watcher(Plain),
    M2 = monitor(process, Pid2),
    Plain ! {do_exit, crash},
    ?assertEqual([], messages(?QUIET)),
    ?assertEqual(0, gen_server:call(Pid2, size)),
    demonitor(M2, [flush]),
    %% Link, unlink, link again: the link holds.
    {ok, Pid3} = start_kv(T, []),
    Again = watcher(Pid3, true),
    ok = unlink_watcher(Again),
    ok = relink_watcher(Again),
    ok = unlink_watcher(Again),
    ok = relink_watcher(Again),
    ok = gen_server:stop(Pid3, boom3, 5000),
    ?assertEqual({'EXIT', Pid3, boom3}, forwarded(Again)),
    %% Unlinked from the server's side: start_link, then the caller unlinks.
    Self = self(),
    {H, HRef} = spawn_monitor(fun() ->
                                      {ok, P} = start(T, {start_link, kv, []}),
                                      true = unlink(P),
                                      0 = gen_server:call(P, size),
                                      Self ! {started, self(), P},
                                      receive {exit, Why} -> exit(Why) end
                              end),
    Pid4 = receive {started, H, P4} -> P4 after ?PROMPT * 5 -> error(no_start) end,
    M4 = monitor(process, Pid4),
    H ! {exit, crash},
    ?assertEqual({'DOWN', HRef, process, H, crash}, next_down(HRef)),
    ?assertEqual([], messages(?QUIET)),
    ?assertEqual(0, gen_server:call(Pid4, size)),
    demonitor(M4, [flush]).

%% A node holding a link to the server goes away: noconnection.
peer_disconnect_gives_noconnection(Config) ->
    T = #{node := Node} = target(Config),
    {ok, Plain} = start_kv(T, []),
    {ok, Trapping} = start_kv(T, #{trap_exit => true}),
    ok = gen_server:cast(Trapping, {put, k, kept}),
    {Peer, _, OsPid} = start_client_peer(otp_linker),
    ok = peer:call(Peer, ?MODULE, hold_resources,
                   [Node, #{monitor => [Plain, Trapping], link => [Plain, Trapping]}, 1], 30000),
    MPlain = monitor(process, Plain),
    MTrapping = monitor(process, Trapping),
    kill_os_process(OsPid),
    ?assertEqual({'DOWN', MPlain, process, Plain, noconnection}, next_down(MPlain, 10000)),
    ?assertEqual(kept, gen_server:call(Trapping, {get, k})),
    ?assertEqual([], messages(?QUIET)),
    demonitor(MTrapping, [flush]).

%%% sys

sys_get_state_is_the_store(Config) ->
    T = #{node := Node} = target(Config),
    {ok, Pid} = start(T, {start, kv, [], [{name, otp_sys_state}]}),
    ?assertEqual(#{}, sys:get_state(Pid)),
    Entries = #{a => 1, {b, [2]} => <<"three">>, 4 => 4.0, 4.0 => four, "s" => #{n => [self()]}},
    [ok = gen_server:cast(Pid, {put, K, V}) || {K, V} <- maps:to_list(Entries)],
    ?assert(sys:get_state(Pid) =:= Entries),
    ?assert(sys:get_state({otp_sys_state, Node}, 5000) =:= Entries),
    ?assert(is_map(sys:get_state({kv, Node}))),
    %% Still serving afterwards.
    ?assertEqual(map_size(Entries), gen_server:call(Pid, size)).

sys_replace_state(Config) ->
    T = target(Config),
    {ok, Pid} = start_kv(T, #{preload => #{a => 1}}),
    Failing = fun(_) -> error(nope) end,
    Fun = fun(S) -> S#{replaced => true} end,
    case differs(replace_state, T) of
        false ->
            %% A fun that fails: OTP's callback_failed, state unchanged.
            ?assertError({callback_failed, {gen_server, system_replace_state}, {error, nope}},
                         sys:replace_state(Pid, Failing)),
            ?assertEqual(#{a => 1}, sys:get_state(Pid)),
            ?assertEqual(#{a => 1, replaced => true}, sys:replace_state(Pid, Fun)),
            ?assertEqual(#{a => 1, replaced => true}, sys:get_state(Pid)),
            ?assertEqual(true, gen_server:call(Pid, {get, replaced}));
        true ->
            %% Any fun: README's error raised in the caller (not a value
            %% returned, nor a case_clause from an ill-shaped reply), state
            %% unchanged.
            [?assertError({not_supported_by_c_node, replace_state}, sys:replace_state(Pid, F))
             || F <- [Failing, Fun]],
            ?assertEqual(#{a => 1}, sys:get_state(Pid)),
            ?assertEqual(nil, gen_server:call(Pid, {get, replaced}))
    end.

%% Shape only: the State summary's contents are the server's own business,
%% but a kv shows #{entries, memory, messages}.
sys_get_status_shape(Config) ->
    T = #{node := Node} = target(Config),
    {ok, Pid} = start(T, {start, kv, [], [{name, otp_status}]}),
    [ok = gen_server:cast(Pid, {put, I, I}) || I <- [1, 2, 3]],
    3 = gen_server:call(Pid, size),
    Status = sys:get_status({otp_status, Node}),
    ct:log("get_status: ~p", [Status]),
    ?assertMatch({status, Pid, {module, gen_server}, [_, running, _, [], _]}, Status),
    {status, _, _, [PDict, running, Parent, [], Misc]} = Status,
    ?assert(is_list(PDict)),
    ?assert(is_pid(Parent)),
    ?assertMatch([{header, _}, {data, _}, {data, [{"State", _}]}], Misc),
    [{header, Header}, {data, Data}, {data, [{"State", Summary}]}] = Misc,
    ?assertEqual("Status for generic server otp_status", Header),
    ?assertEqual([{"Status", running}, {"Parent", Parent}, {"Logged events", []}], Data),
    check_summary(Summary, 3),
    %% By pid, and with sys:get_status/2.
    {status, Pid, {module, gen_server}, [_, running, _, [], Misc2]} = sys:get_status(Pid, 5000),
    [{header, Header2}, {data, _}, {data, [{"State", Summary2}]}] = Misc2,
    %% A registered server's header names it, however it was asked.
    ?assertEqual(Header, Header2),
    check_summary(Summary2, 3),
    %% The registered kv and counter answer too.
    ?assertMatch({status, _, {module, gen_server}, [_, running, _, [], [_, _, _]]},
                 sys:get_status({kv, Node})),
    ?assertMatch({status, _, {module, gen_server}, [_, running, _, [], [_, _, _]]},
                 sys:get_status({counter, Node})),
    %% Suspended shows as such.
    ok = sys:suspend(Pid),
    {status, Pid, {module, gen_server}, [_, suspended, _, [], Misc3]} = sys:get_status(Pid),
    ?assertMatch([_, {data, [{"Status", suspended} | _]}, _], Misc3),
    ok = sys:resume(Pid),
    ?assertMatch({status, Pid, _, [_, running | _]}, sys:get_status(Pid)).

check_summary(Summary, Entries) ->
    ?assertMatch(#{entries := Entries, memory := M, messages := N}
                   when is_integer(M) andalso M > 0 andalso is_integer(N) andalso N >= 0,
                 Summary).

%% While suspended only system messages are handled; resume serves what
%% queued, in order.
sys_suspend_then_resume_serves_in_order(Config) ->
    T = target(Config),
    {ok, Pid} = start_kv(T, []),
    ok = gen_server:cast(Pid, {put, k, 0}),
    ?assertEqual(ok, sys:suspend(Pid)),
    %% Casts from this process and calls from others, interleaved; each caller
    %% is blocked (its request sent) before the next cast goes.
    Callers = lists:map(fun(I) ->
                                W = spawn_call(Pid, {get, k}, 20000),
                                wait_blocked(W),
                                ok = gen_server:cast(Pid, {put, k, I}),
                                W
                        end, lists:seq(1, 10)),
    Last = spawn_call(Pid, size, 20000),
    wait_blocked(Last),
    ?assertEqual(none, call_result(hd(Callers), ?QUIET)),
    %% System messages still are served.
    ?assertMatch({status, Pid, _, [_, suspended | _]}, sys:get_status(Pid)),
    ?assertEqual(ok, sys:suspend(Pid)),
    ?assertEqual(ok, sys:resume(Pid)),
    ?assertEqual(lists:seq(0, 9), [call_result(W, ?PROMPT) || W <- Callers]),
    ?assertEqual(1, call_result(Last, ?PROMPT)),
    ?assertEqual(10, gen_server:call(Pid, {get, k})),
    %% Stopping a suspended server works (sys:terminate is a system message).
    ok = sys:suspend(Pid),
    M = monitor(process, Pid),
    ok = gen_server:stop(Pid, {shutdown, suspended}, 5000),
    ?assertEqual({'DOWN', M, process, Pid, {shutdown, suspended}}, next_down(M)).

gen_server_stop_with_reason(Config) ->
    T = #{node := Node} = target(Config),
    {ok, Pid} = start(T, {start, kv, [], [{name, otp_stopped}]}),
    M = monitor(process, Pid),
    Trapping = watcher(Pid, true),
    ?assertEqual(ok, gen_server:stop({otp_stopped, Node}, {shutdown, by_name}, 5000)),
    ?assertEqual({'DOWN', M, process, Pid, {shutdown, by_name}}, next_down(M)),
    ?assertEqual({'EXIT', Pid, {shutdown, by_name}}, forwarded(Trapping)),
    %% gen_server:stop/1: reason normal.
    {ok, Pid2} = start_kv(T, []),
    M2 = monitor(process, Pid2),
    ?assertEqual(ok, gen_server:stop(Pid2)),
    ?assertEqual({'DOWN', M2, process, Pid2, normal}, next_down(M2)),
    %% A server that is gone: noproc.
    ?assertExit(noproc, gen_server:stop(Pid2)),
    ?assertExit(noproc, gen_server:stop({otp_stopped, Node}, normal, 5000)),
    %% The counter, with a waiter.
    {ok, C} = start(T, {start, counter, []}),
    W = spawn_call(C, {wait_for, 10}, 20000),
    wait_blocked(W),
    ?assertEqual(ok, gen_server:stop(C, shutdown, 5000)),
    ?assertMatch({'EXIT', {shutdown, {gen_server, call, _}}}, call_result(W, ?PROMPT)).

unknown_system_message(Config) ->
    T = #{node := Node} = target(Config),
    {ok, Pid} = start_kv(T, []),
    ?assertEqual({ok, {error, {unknown_system_msg, bogus}}}, gen:call(Pid, system, bogus)),
    ?assertEqual({ok, {error, {unknown_system_msg, {what, [1]}}}},
                 gen:call({kv, Node}, system, {what, [1]})),
    ?assertEqual({ok, {error, {unknown_system_msg, bogus}}}, gen:call({counter, Node}, system, bogus)),
    ?assertEqual(0, gen_server:call(Pid, size)).

%%% Other client paths

multi_call_one_and_two_nodes(Config) ->
    T = #{node := Node} = target(Config),
    Here = node(),
    {ok, _} = start(T, {start, kv, [], [{name, otp_multi}]}),
    %% The same name on this node, a BEAM server.
    {ok, Local} = gen_server:start({local, otp_multi}, kv_reference, {nolink, []}, []),
    gen_cnode_test_env:track({server, Local}),
    ok = gen_server:cast({otp_multi, Node}, {put, k, there}),
    ok = gen_server:cast(otp_multi, {put, k, here}),
    ?assertEqual({[{Node, there}], []}, gen_server:multi_call([Node], otp_multi, {get, k})),
    ?assertEqual({[{Node, there}], []}, gen_server:multi_call([Node], otp_multi, {get, k}, 5000)),
    {Replies, []} = gen_server:multi_call([Node, Here], otp_multi, {get, k}, 5000),
    ?assertEqual([{Here, here}, {Node, there}], lists:sort(Replies)),
    {Replies2, []} = gen_server:multi_call([Node, Here], otp_multi, {put, k, both}),
    ?assertEqual([{Here, ok}, {Node, ok}], lists:sort(Replies2)),
    ?assertEqual(both, gen_server:call({otp_multi, Node}, {get, k})),
    %% Bad nodes: an unknown name there, a node that is not up.
    ?assertEqual({[], [Node]}, gen_server:multi_call([Node], otp_nobody, size, 5000)),
    ?assertEqual({[{Node, 1}], ['otp_nonode@127.0.0.1']},
                 gen_server:multi_call([Node, 'otp_nonode@127.0.0.1'], otp_multi, size, 5000)),
    %% A multi_call that times out: the late reply never shows up.
    {ok, _} = start(T, {start, counter, [], [{name, otp_multi_counter}]}),
    ?assertEqual({[], [Node]},
                 gen_server:multi_call([Node], otp_multi_counter, {wait_for, 5}, 200)),
    ok = gen_server:cast({otp_multi_counter, Node}, {add, 5}),
    ?assertEqual(5, gen_server:call({otp_multi_counter, Node}, get)),
    ?assertEqual([], messages(?QUIET)).

send_request_and_responses(Config) ->
    T = target(Config),
    {ok, Pid} = start_kv(T, #{preload => #{k => v}}),
    R1 = gen_server:send_request(Pid, {get, k}),
    ?assertEqual({reply, v}, gen_server:receive_response(R1, 5000)),
    R2 = gen_server:send_request(Pid, {fetch, k}),
    ?assertEqual({reply, {ok, v}}, gen_server:wait_response(R2, 5000)),
    R3 = gen_server:send_request(Pid, size),
    Msg = receive M -> M after 5000 -> no_reply end,
    ?assertEqual({reply, 1}, gen_server:check_response(Msg, R3)),
    %% Many at once, answered each to its own request.
    Rs = [{I, gen_server:send_request(Pid, {put, I, I})} || I <- lists:seq(1, 100)],
    [?assertEqual({reply, ok}, gen_server:receive_response(R, 5000)) || {_, R} <- lists:reverse(Rs)],
    ?assertEqual(101, gen_server:call(Pid, size)),
    %% A request id collection.
    Coll = lists:foldl(fun(I, C) -> gen_server:send_request(Pid, {get, I}, {label, I}, C) end,
                       gen_server:reqids_new(), lists:seq(1, 10)),
    Got = collect(Coll, []),
    ?assertEqual([{{label, I}, {reply, I}} || I <- lists:seq(1, 10)], lists:sort(Got)),
    %% A deferred reply: wait_response times out, the request stays valid.
    {ok, C} = start(T, {start, counter, []}),
    R4 = gen_server:send_request(C, {wait_for, 3}),
    ?assertEqual(timeout, gen_server:wait_response(R4, 100)),
    ok = gen_server:cast(C, {add, 3}),
    ?assertEqual({reply, {ok, 3}}, gen_server:receive_response(R4, 5000)),
    %% A server that stops while a request is out.
    R5 = gen_server:send_request(C, {wait_for, 100}),
    ok = gen_server:stop(C, {shutdown, gone}, 5000),
    ?assertEqual({error, {{shutdown, gone}, C}}, gen_server:receive_response(R5, 5000)),
    R6 = gen_server:send_request(C, get),
    ?assertEqual({error, {noproc, C}}, gen_server:receive_response(R6, 5000)).

collect(Coll, Acc) ->
    case gen_server:receive_response(Coll, 5000, true) of
        no_request -> Acc;
        {Response, Label, Coll1} -> collect(Coll1, [{Label, Response} | Acc])
    end.

call_with_infinity_timeout(Config) ->
    T = #{node := Node} = target(Config),
    {ok, Pid} = start_kv(T, []),
    ?assertEqual(ok, gen_server:call(Pid, {put, k, v}, infinity)),
    ?assertEqual(v, gen_server:call(Pid, {get, k}, infinity)),
    ?assert(is_integer(gen_server:call({kv, Node}, size, infinity))),
    {ok, C} = start(T, {start, counter, []}),
    W = spawn_call(C, {wait_for, 2}, infinity),
    wait_blocked(W),
    ?assertEqual(none, call_result(W, ?QUIET)),
    ok = gen_server:cast(C, {add, 2}),
    ?assertEqual({ok, 2}, call_result(W, ?PROMPT)).

%% A reply that comes after the caller gave up is dropped (OTP 24+ aliases),
%% not left in the caller's mailbox.
late_reply_after_timeout_is_dropped(Config) ->
    T = target(Config),
    {ok, C} = start(T, {start, counter, []}),
    W = spawn_call(C, {wait_for, 7}, 100),
    ?assertMatch({'EXIT', {timeout, {gen_server, call, [C, {wait_for, 7}, 100]}}},
                 call_result(W, ?PROMPT)),
    ok = gen_server:cast(C, {add, 7}),
    %% The reply (if any) was sent before this call's.
    ?assertEqual(7, gen_server:call(C, get)),
    ?assertEqual([], mailbox_of(W, 200)),
    %% The same from this process.
    ok = gen_server:call(C, reset),
    ?assertExit({timeout, _}, gen_server:call(C, {wait_for, 3}, 100)),
    ok = gen_server:cast(C, {add, 3}),
    ?assertEqual(3, gen_server:call(C, get)),
    ?assertEqual([], messages(200)),
    %% And the counter still answers new waiters.
    ?assertEqual({ok, 3}, gen_server:call(C, {wait_for, 3}, 100)).

%%% Cleanup and memory

%% Peers hold monitors, links and deferred calls on a fresh target, then
%% vanish (SIGKILL). The servers keep serving, and the target's memory does not
%% grow: after a warm-up round, 4 more rounds of 2000 processes (each with 3
%% monitors, a link and a pending call) may add less than 2 MB, so a leak of
%% more than about 250 bytes per process shows.
peer_disconnect_releases_monitors_links_and_calls(Config) ->
    Kind = kind(Config),
    T = #{node := Node} = track_target(start_target(Kind, otpmem1, Config, [memory_check])),
    {ok, Trapping} = start(T, {start, kv, #{trap_exit => true}, [{name, otp_trapping}]}),
    {ok, Counter} = start(T, {start, counter, [], [{name, otp_counter}]}),
    Round = fun() ->
                    {Peer, _, OsPid} = start_client_peer(otp_holder),
                    ok = peer:call(Peer, ?MODULE, hold_resources,
                                   [Node, #{monitor => [{kv, Node}, Trapping, Counter],
                                            link => [Trapping], wait => Counter}, 2000], 60000),
                    ok = gen_cnode_test_env:wait_until(fun() -> held_calls(Counter) =:= 2000 end, 10000),
                    kill_os_process(OsPid),
                    %% The target saw the disconnect and let go: the pending
                    %% calls go in the same pass as the monitors and links.
                    ok = gen_cnode_test_env:wait_until(fun() -> held_calls(Counter) =:= 0 end, 10000),
                    ?assertEqual(1, gen_server:call(Trapping, {get, sentinel})),
                    ?assertEqual(0, gen_server:call(Counter, get))
            end,
    ok = gen_server:cast(Trapping, {put, sentinel, 1}),
    Round(),
    Warm = memory_kb(T),
    [Round() || _ <- lists:seq(1, 4)],
    After = memory_kb(T),
    ct:log("~p: memory ~p kB after the warm-up round, ~p kB after 4 more", [Kind, Warm, After]),
    %% Still serving; the pending calls are gone, so new ones start afresh.
    ?assertEqual(1, gen_server:call(Trapping, {get, sentinel})),
    ?assertEqual(0, gen_server:call(Counter, get)),
    ok = gen_server:cast(Counter, {add, 2}),
    ?assertEqual({ok, 2}, gen_server:call(Counter, {wait_for, 2})),
    ok = gen_server:cast(Counter, {add, ?HUGE}),
    ?assertEqual(?HUGE + 2, gen_server:call(Counter, get)),
    ?assertEqual(ok, stop_target(T)),
    ?assert(After - Warm < memory_budget_kb(T)).

%% 5000 short-lived callers, each: monitor, a few calls, demonitor; one in ten
%% dies mid-call. VmRSS after a second identical round stays put (< 2 MB more),
%% and after three more still (20000 callers: a leak of more than about 100
%% bytes a caller shows).
soak_monitor_calls_demonitor(Config) ->
    Kind = kind(Config),
    T = #{node := Node} = track_target(start_target(Kind, otpmem2, Config, [memory_check])),
    {ok, Kv} = start(T, {start, kv, [], [{name, otp_soak}]}),
    {ok, Counter} = start(T, {start, counter, []}),
    Round = fun() ->
                    soak_round(Kv, {otp_soak, Node}, Counter, 5000, 250),
                    %% Counts the callers that died waiting ever reach: the
                    %% counter answers (and forgets) whatever is left.
                    ok = gen_server:cast(Counter, {add, ?HUGE}),
                    ok = gen_server:call(Counter, reset),
                    5000 = gen_server:call(Kv, size, 30000)
            end,
    {T1, _} = timer:tc(Round),
    Warm = memory_kb(T),
    {T2, _} = timer:tc(Round),
    Second = memory_kb(T),
    {T3, _} = timer:tc(fun() -> [Round() || _ <- lists:seq(1, 3)] end),
    After = memory_kb(T),
    ct:log("~p: rounds of 5000 callers took ~p ms, ~p ms, then ~p ms for 3 more; memory ~p kB "
           "after the first, ~p kB after the second, ~p kB after the fifth",
           [Kind, T1 div 1000, T2 div 1000, T3 div 1000, Warm, Second, After]),
    ?assert(Second - Warm < memory_budget_kb(T)),
    ?assertEqual(0, gen_server:call(Counter, get)),
    ?assertEqual(ok, stop_target(T)),
    ?assert(After - Warm < memory_budget_kb(T)).

%% How many {wait_for, _} calls the counter holds: the C node's status shows
%% waiting => N, the reference's its waiters.
held_calls(Counter) ->
    {status, _, {module, gen_server}, [_, _, _, _, Misc]} = sys:get_status(Counter),
    case [S || {data, [{"State", S}]} <- Misc] of
        [#{waiting := N}] -> N;
        [#{waiters := W}] -> length(W)
    end.

soak_round(Kv, Name, Counter, N, Batch) ->
    Self = self(),
    Batches = chunks(lists:seq(1, N), Batch),
    lists:foreach(
      fun(Is) ->
              Ws = [spawn_monitor(fun() -> soak_caller(Kv, Name, Counter, I, Self) end)
                    || I <- Is],
              %% One in ten waits on the counter and is killed mid-call.
              Doomed = [P || {{P, _}, I} <- lists:zip(Ws, Is), I rem 10 =:= 0],
              [receive {waiting, P} -> ok after 10000 -> error({not_waiting, P}) end
               || P <- Doomed],
              [wait_blocked(P) || P <- Doomed],
              [exit(P, kill) || P <- Doomed],
              Bad = [{I, Why} || {{P, Ref}, I} <- lists:zip(Ws, Is),
                                 Why <- [receive {'DOWN', Ref, process, P, W} -> W
                                         after 30000 -> timeout end],
                                 not (Why =:= normal orelse (Why =:= killed andalso I rem 10 =:= 0))],
              ?assertEqual([], Bad)
      end, Batches).

soak_caller(Kv, Name, Counter, I, Parent) ->
    Target = case I rem 2 of 0 -> Kv; 1 -> Name end,
    Ref = monitor(process, Target),
    ok = gen_server:call(Target, {put, {soak, I}, I}),
    I = gen_server:call(Target, {get, {soak, I}}),
    {ok, I} = gen_server:call(Kv, {fetch, {soak, I}}),
    case I rem 10 of
        0 ->
            Parent ! {waiting, self()},
            gen_server:call(Counter, {wait_for, ?HUGE}, infinity);
        _ ->
            ok
    end,
    true = demonitor(Ref, [flush]),
    ok.

chunks([], _) -> [];
chunks(L, N) when length(L) =< N -> [L];
chunks(L, N) -> {A, B} = lists:split(N, L), [A | chunks(B, N)].

target_stops_cleanly(Config) ->
    T = target(Config),
    ?assertEqual(ok, stop_target(T)).

%%% Both releases against one C node

%% OTP 25 (this node) and OTP 27 (a peer run from the OTP 27 chroot) callers,
%% in turn, on the same C node and the same servers: the node shapes its sys
%% replies per caller, and each release's multi_call, alias and stop paths
%% work side by side.
one_c_node_serves_callers_of_both_releases(Config) ->
    T = #{node := Node} = target(Config),
    {Peer, _PeerNode, Release} = gen_cnode_test_env:start_other_release_peer(otp_other_release),
    ct:log("this node OTP ~s, the peer OTP ~s", [erlang:system_info(otp_release), Release]),
    {ok, Kv} = start(T, {start, kv, #{preload => #{a => 1}}, [{name, otp_rel_kv}]}),
    {ok, _} = start(T, {start, counter, [], [{name, otp_rel_counter}]}),
    {ok, Bin} = case code:get_object_code(?MODULE) of
                    {?MODULE, B, _} -> {ok, B};
                    error -> error(no_object_code)
                end,
    {module, ?MODULE} = peer:call(Peer, code, load_binary, [?MODULE, "gen_cnode_otp_SUITE.beam", Bin]),
    Here = fun(I) -> release_probe(Node, Kv, I) end,
    There = fun(I) -> peer:call(Peer, ?MODULE, release_probe, [Node, Kv, I], 30000) end,
    %% Both orders, twice: no release is remembered for the wrong caller.
    Results = [{Who, I, F(I)} || I <- lists:seq(1, 4),
                                 {Who, F} <- case I rem 2 of
                                                 1 -> [{here, Here}, {there, There}];
                                                 0 -> [{there, There}, {here, Here}]
                                             end],
    ct:log("~p", [Results]),
    ?assertEqual([], [R || R = {_, _, Res} <- Results, Res =/= ok]),
    %% gen_server:stop from the OTP 27 peer.
    M = monitor(process, Kv),
    ?assertEqual(ok, peer:call(Peer, gen_server, stop, [Kv, {shutdown, from_27}, 5000])),
    ?assertEqual({'DOWN', M, process, Kv, {shutdown, from_27}}, next_down(M)),
    ok = peer:stop(Peer).

%% Run on either release: ok, or what went wrong.
release_probe(Node, Kv, I) ->
    Key = {probe, node(), I},
    Checks =
        [{get_state, fun() -> ok = gen_server:cast(Kv, {put, Key, I}),
                              S = sys:get_state(Kv),
                              is_map(S) andalso maps:get(Key, S) =:= I end},
         {get_state_by_name, fun() -> is_map(sys:get_state({otp_rel_kv, Node}, 5000)) end},
         {replace_state, fun() ->
                                 try sys:replace_state(Kv, fun(S) -> S end) of
                                     _ -> false
                                 catch
                                     error:{not_supported_by_c_node, replace_state} -> true
                                 end
                         end},
         {get_status, fun() ->
                              case sys:get_status(Kv) of
                                  {status, Kv, {module, gen_server},
                                   [_, running, _, [], [{header, "Status for generic server otp_rel_kv"},
                                                        {data, [{"Status", running} | _]},
                                                        {data, [{"State", #{entries := _}}]}]]} -> true;
                                  _ -> false
                              end
                      end},
         {unknown_system_msg, fun() -> gen:call(Kv, system, bogus) =:=
                                           {ok, {error, {unknown_system_msg, bogus}}} end},
         {multi_call, fun() -> gen_server:multi_call([Node], otp_rel_kv, {get, Key}, 5000)
                                   =:= {[{Node, I}], []} end},
         {send_request, fun() -> gen_server:receive_response(
                                   gen_server:send_request(Kv, {get, Key}), 5000) =:= {reply, I} end},
         {late_reply, fun() ->
                              Counter = {otp_rel_counter, Node},
                              ok = gen_server:call(Counter, reset),
                              {'EXIT', {timeout, _}} = (catch gen_server:call(Counter, {wait_for, 1}, 100)),
                              ok = gen_server:cast(Counter, incr),
                              1 = gen_server:call(Counter, get),
                              messages(200) =:= []
                      end},
         {suspend_resume, fun() ->
                                  ok = sys:suspend(Kv),
                                  {status, _, _, [_, suspended | _]} = sys:get_status(Kv),
                                  ok = sys:resume(Kv),
                                  gen_server:call(Kv, {get, Key}) =:= I
                          end}],
    case [{Name, R} || {Name, F} <- Checks, R <- [catch F()], R =/= true] of
        [] -> ok;
        Failed -> {erlang:system_info(otp_release), Failed}
    end.

%%% Run on client peers

collect_garbage() ->
    [garbage_collect(P) || P <- processes()],
    ok.

%% N processes, each: a monitor on each of What's monitor list, a link to each
%% of its link list, and, if What has wait => Counter, a {wait_for, huge} call
%% to Counter left pending. Returns once every process has done its part; they
%% stay until their node dies.
hold_resources(_Node, What, N) ->
    Self = self(),
    Ps = [spawn(fun() -> hold(What, Self) end) || _ <- lists:seq(1, N)],
    [receive {held, P} -> ok after 30000 -> error({not_held, P}) end || P <- Ps],
    %% The pending calls are on their way (each process is blocked in gen).
    [wait_blocked(P) || P <- Ps, maps:is_key(wait, What)],
    ok.

hold(What, Parent) ->
    [_ = monitor(process, S) || S <- maps:get(monitor, What, [])],
    Linked = maps:get(link, What, []),
    [true = link(S) || S <- Linked],
    %% Signal order: the links are in place once these calls return.
    [sync(S) || S <- Linked],
    Parent ! {held, self()},
    case What of
        #{wait := Counter} -> gen_server:call(Counter, {wait_for, ?HUGE}, infinity);
        _ -> ok
    end,
    receive never -> ok end.

%%% Targets

target(Config) ->
    ?config(target, Config).

kind(Config) ->
    #{kind := Kind} = target(Config),
    Kind.

%% Starts a target node: Kind beam (a peer booted with starter_reference) or
%% cnode (gen_cnode:start/1). Opts: memory_check, for a target whose VmRSS is
%% measured: under AddressSanitizer, freed memory is held in a quarantine
%% (256 MB by default) and RSS would only grow, so that C node runs with the
%% quarantine off (the group's own C node keeps ASan's defaults).
start_target(beam, Name, _Config, _Opts) ->
    {Peer, Node, OsPid} = start_peer(Name, []),
    %% Stopped here if its boot fails. (Not tracked: a group's target must
    %% outlive the reap after each case.)
    try
        ok = peer:call(Peer, starter_reference, boot, []),
        pong = net_adm:ping(Node)
    catch
        Class:Reason:Stack ->
            catch peer:stop(Peer),
            erlang:raise(Class, Reason, Stack)
    end,
    #{kind => beam, node => Node, peer => Peer, os_pid => OsPid};
start_target(cnode, Name, Config, Opts) ->
    Log = filename:join(?config(priv_dir, Config), atom_to_list(Name) ++ ".log"),
    Node = list_to_atom(atom_to_list(Name) ++ "@127.0.0.1"),
    Env = case lists:member(memory_check, Opts) of
              true ->
                  Asan = case os:getenv("ASAN_OPTIONS") of
                             false -> "";
                             A -> A ++ ":"
                         end,
                  [{"ASAN_OPTIONS", Asan ++ "quarantine_size_mb=0:thread_local_quarantine_size_kb=0"}];
              false ->
                  []
          end,
    {ok, Owner} = gen_cnode:start(#{name => Node, log => Log, env => Env}),
    OsPid = gen_cnode:os_pid(Owner),
    ct:log("C node ~p, os pid ~p, executable ~s, log ~s",
           [Node, OsPid, gen_cnode_test_env:executable(), Log]),
    #{kind => cnode, node => Node, owner => Owner, log => Log, os_pid => OsPid}.

%% A target a case started: the reaper stops it if the case does not.
track_target(T = #{kind := beam, peer := Peer}) -> gen_cnode_test_env:track({peer, Peer}), T;
track_target(T = #{kind := cnode, owner := Owner}) -> gen_cnode_test_env:track({cnode, Owner}), T.

%% ok, or what went wrong (a C node must exit 0 with nothing from the
%% sanitizers).
stop_target(#{kind := beam, peer := Peer}) ->
    case is_process_alive(Peer) of
        true -> peer:stop(Peer);
        false -> ok
    end;
stop_target(#{kind := cnode, owner := Owner, log := Log}) ->
    Stopped = case is_process_alive(Owner) of
                  true -> catch gen_cnode:stop(Owner);
                  false -> owner_already_gone
              end,
    case {Stopped, gen_cnode_test_env:sanitizer_reports(Log)} of
        {ok, []} -> ok;
        Other -> {error, Other}
    end.

%% The target's memory in kB: a C node's VmRSS (/proc/OSPID/status). For a
%% How much a target's memory may grow over the rounds of a memory check. The
%% C node is what these checks are about: 2 MB. The reference BEAM node's
%% erlang:memory(total) moves by megabytes for reasons of its own (code
%% loading, distribution buffers of peers that come and go; +2.4 MB seen once
%% in a round where the C node stayed flat), so it gets a looser budget.
memory_budget_kb(#{kind := cnode}) -> 2048;
memory_budget_kb(#{kind := beam}) -> 8192.

%% BEAM node, erlang:memory(total) after collecting every process's garbage:
%% its VmRSS moves by megabytes as the VM's allocators keep or return carriers
%% (seen here: +2.6 MB over a round while erlang:memory(total) went down).
memory_kb(#{kind := beam, peer := Peer}) ->
    ok = peer:call(Peer, ?MODULE, collect_garbage, []),
    peer:call(Peer, erlang, memory, [total]) div 1024;
memory_kb(#{kind := cnode, os_pid := OsPid}) ->
    memory_kb(OsPid);
memory_kb(OsPid) when is_integer(OsPid) ->
    Path = "/proc/" ++ integer_to_list(OsPid) ++ "/status",
    {ok, Text} = case file:read_file(Path) of
                     {ok, _} = Ok -> Ok;
                     {error, Why} -> error({cannot_read, Path, Why})
                 end,
    [Kb] = [binary_to_integer(hd(binary:split(string:trim(Rest), <<" ">>)))
            || <<"VmRSS:", Rest/binary>> <- binary:split(Text, <<"\n">>, [global])],
    Kb.

%% The target's starter: {start | start_link, Module, Arg[, Opts]}.
start(#{node := Node}, Request) ->
    case gen_server:call({gen_cnode, Node}, Request, 30000) of
        {ok, Pid} = Ok ->
            gen_cnode_test_env:track({server, Pid}),
            Ok;
        Other ->
            Other
    end.

start_kv(T, Arg) ->
    start(T, {start, kv, Arg}).

%% A hidden peer BEAM node of this release with our cookie
%% (gen_cnode_test_env:start_peer/2: this suite in its code path).
start_peer(Name, Args) ->
    {Peer, Node} = gen_cnode_test_env:start_peer(
                     Name, ["-hidden", "-setcookie", atom_to_list(erlang:get_cookie()) | Args]),
    OsPid = list_to_integer(peer:call(Peer, os, getpid, [])),
    {Peer, Node, OsPid}.

%% A peer that the case kills; the reaper makes sure it is gone.
start_client_peer(Name) ->
    {Peer, Node, OsPid} = start_peer(Name, []),
    gen_cnode_test_env:track({os_pid, OsPid}),
    {Peer, Node, OsPid}.

kill_os_process(OsPid) ->
    os:cmd("kill -KILL " ++ integer_to_list(OsPid)),
    gen_cnode_test_env:wait_until(
      fun() -> os:cmd("kill -0 " ++ integer_to_list(OsPid) ++ " 2>&1") =/= "" end, 5000).

%%% Client processes

%% A process that calls Server and keeps the result for call_result/2.
spawn_call(Server, Req, Timeout) ->
    Self = self(),
    spawn(fun() ->
                  R = (catch gen_server:call(Server, Req, Timeout)),
                  Self ! {call_result, self(), R},
                  receive
                      {mailbox, From, Ms} ->
                          From ! {mailbox, self(), messages(Ms)}
                  end
          end).

%% The result of a spawn_call, or none if it does not come within Ms.
call_result(W, Ms) ->
    receive {call_result, W, R} -> R after Ms -> none end.

%% What reaches a spawn_call process within Ms after its call returned.
mailbox_of(W, Ms) ->
    W ! {mailbox, self(), Ms},
    receive {mailbox, W, Msgs} -> Msgs after Ms + ?PROMPT -> error(no_mailbox) end.

%% Waits until a process is blocked in a call (its request sent).
wait_blocked(P) ->
    gen_cnode_test_env:wait_until(
      fun() ->
              case process_info(P, [status, current_function]) of
                  [{status, waiting}, {current_function, {gen, _, _}}] -> true;
                  Other -> Other
              end
      end, 10000).

%% A process linked to Server, trapping exits or not, that forwards what it
%% receives to us. It runs until it is told to exit or a signal kills it.
watcher(Server, Trap) ->
    Self = self(),
    W = spawn(fun() ->
                      process_flag(trap_exit, Trap),
                      true = link(Server),
                      sync(Server),
                      Self ! {watching, self()},
                      watch(Server, Self)
              end),
    receive {watching, W} -> W after ?PROMPT * 5 -> error({watcher_not_linked, W}) end.

watch(Server, Parent) ->
    receive
        {do_exit, Why} ->
            exit(Why);
        {do_unlink, From} ->
            true = unlink(Server),
            sync(Server),
            From ! {unlinked, self()},
            watch(Server, Parent);
        {do_link, From} ->
            true = link(Server),
            sync(Server),
            From ! {linked, self()},
            watch(Server, Parent);
        Msg ->
            Parent ! {watched, self(), Msg},
            watch(Server, Parent)
    end.

%% A call after a link or unlink: signal order puts it behind them. Any
%% answer will do (size is a kv's, an unknown call to a counter).
sync(Server) ->
    _ = gen_server:call(Server, size, 10000),
    ok.

unlink_watcher(W) ->
    W ! {do_unlink, self()},
    receive {unlinked, W} -> ok after ?PROMPT * 5 -> error({no_unlink, W}) end.

relink_watcher(W) ->
    W ! {do_link, self()},
    receive {linked, W} -> ok after ?PROMPT * 5 -> error({no_link, W}) end.

forwarded(W) ->
    case forwarded(W, ?PROMPT) of
        none -> error({nothing_forwarded_by, W});
        Msg -> Msg
    end.

forwarded(W, Ms) ->
    receive {watched, W, Msg} -> Msg after Ms -> none end.

%% Forwards everything to Parent (for start_link callers trapping exits).
forward(Parent) ->
    receive Msg -> Parent ! {watched, self(), Msg}, forward(Parent) end.

next_down(Ref) ->
    next_down(Ref, ?PROMPT).

next_down(Ref, Ms) ->
    receive {'DOWN', Ref, _, _, _} = D -> D after Ms -> {no_down_within, Ms} end.

%% Whatever arrives within Ms.
messages(Ms) ->
    receive M -> [M | messages(Ms)] after Ms -> [] end.

flush() ->
    receive _ -> flush() after 0 -> ok end.

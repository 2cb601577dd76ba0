%% gen_cnode_module_SUITE: servers written in C against the public header
%% (gen_cnode.h), loaded into a C node with --load, started at boot with
%% --start or from this node through the starter, and driven from a real
%% BEAM node: the README's ticket module (compiled from README.md itself),
%% the examples (examples/ratelimit.c on timers, examples/digest.c on the
%% worker pool), and the test modules of test/modules/ (timer_probe,
%% misbehave, wrong_version, no_entry, failing_load).
%%
%% Each case runs against a C node of its own (under ASan and UBSan in the
%% OTP 25 stage) that must stop with status 0 and no sanitizer report, but
%% for the case that crashes one on purpose. Modules are found next to the
%% executable: priv/examples/ and priv/test_modules/.
-module(gen_cnode_module_SUITE).

-define(config(Key, Config), proplists:get_value(Key, Config)).
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

-export([readme_ticket_module/1,
         modules_start_at_boot_and_from_any_node/1,
         otp_tools_work_on_loaded_servers/1,
         ratelimit_refills_on_timers/1,
         idle_timeout_stops_a_limiter/1,
         timers_are_never_early_and_cancel/1,
         thousands_of_timers/1,
         gen_server_timeout/1,
         a_blocking_job_does_not_hold_up_the_node/1,
         digests_match_crypto/1,
         a_module_s_servers_take_turns_at_its_threads/1,
         a_module_whose_jobs_block_leaves_a_thread_to_others/1,
         two_modules_blocked_leave_a_thread_to_a_third/1,
         a_job_outliving_its_caller_is_harmless/1,
         stopping_the_node_waits_for_running_jobs/1,
         callbacks_that_break_the_contract_stop_only_their_server/1,
         a_crashing_module_takes_the_node_down_and_the_owner_says_so/1,
         load_errors_exit_2_with_one_line/1,
         an_embedded_binary_serves_its_own_module/1,
         sending_links_and_monitors_from_c/1,
         deep_exit_reasons_arrive_as_too_deep/1,
         last_words_when_the_node_stops/1]).

suite() ->
    [{timetrap, {minutes, 2}}].

all() ->
    [readme_ticket_module,
     modules_start_at_boot_and_from_any_node,
     otp_tools_work_on_loaded_servers,
     ratelimit_refills_on_timers,
     idle_timeout_stops_a_limiter,
     timers_are_never_early_and_cancel,
     thousands_of_timers,
     gen_server_timeout,
     a_blocking_job_does_not_hold_up_the_node,
     digests_match_crypto,
     a_module_s_servers_take_turns_at_its_threads,
     a_module_whose_jobs_block_leaves_a_thread_to_others,
     two_modules_blocked_leave_a_thread_to_a_third,
     a_job_outliving_its_caller_is_harmless,
     stopping_the_node_waits_for_running_jobs,
     callbacks_that_break_the_contract_stop_only_their_server,
     a_crashing_module_takes_the_node_down_and_the_owner_says_so,
     load_errors_exit_2_with_one_line,
     an_embedded_binary_serves_its_own_module,
     sending_links_and_monitors_from_c,
     deep_exit_reasons_arrive_as_too_deep,
     last_words_when_the_node_stops].

init_per_suite(Config) ->
    durable_harness:init_suite(?MODULE, Config).

end_per_suite(Config) ->
    durable_harness:end_suite(Config).

%% Each case: a C node of its own, with every module loaded.
init_per_testcase(load_errors_exit_2_with_one_line, Config) ->
    Config;
init_per_testcase(an_embedded_binary_serves_its_own_module, Config) ->
    Config;
init_per_testcase(Case, Config) ->
    Args = loads() ++ args(Case),
    Name = list_to_atom("m" ++ integer_to_list(erlang:unique_integer([positive]))),
    {Owner, {kv, Node}, Log} = durable_harness:start_cnode(Config, Name, Args),
    [{owner, Owner}, {cnode, Node}, {log, Log} | Config].

args(modules_start_at_boot_and_from_any_node) ->
    ["--start", "ratelimit:rl=#{rate => 1000, burst => 5}", "--start", "ticket:tickets",
     "--start", "ticket:from100={first, 100}"];
args(a_blocking_job_does_not_hold_up_the_node) -> ["--workers", "2"];
args(a_module_whose_jobs_block_leaves_a_thread_to_others) -> ["--workers", "1"];
args(two_modules_blocked_leave_a_thread_to_a_third) -> ["--workers", "1"];
args(a_module_s_servers_take_turns_at_its_threads) -> ["--workers", "1"];
args(deep_exit_reasons_arrive_as_too_deep) -> ["--max-depth", "50"];
args(_) -> [].

end_per_testcase(load_errors_exit_2_with_one_line, _Config) ->
    gen_cnode_test_env:reap();
end_per_testcase(an_embedded_binary_serves_its_own_module, _Config) ->
    gen_cnode_test_env:reap();
end_per_testcase(a_crashing_module_takes_the_node_down_and_the_owner_says_so, _Config) ->
    gen_cnode_test_env:reap();
end_per_testcase(Case, Config) ->
    Owner = ?config(owner, Config),
    Log = ?config(log, Config),
    Stop = case is_process_alive(Owner) of
               true -> gen_cnode:stop(Owner);
               false when Case =:= stopping_the_node_waits_for_running_jobs;
                          Case =:= last_words_when_the_node_stops -> ok;
               false -> owner_gone
           end,
    gen_cnode_test_env:reap(),
    case {Stop, gen_cnode_test_env:sanitizer_reports(Log)} of
        {ok, []} -> ok;
        Other -> {fail, {after_the_case, Other, durable_harness:log_lines(Log)}}
    end.

%%% Where the modules are

modules_dir() ->
    filename:dirname(gen_cnode_test_env:executable()).

example(Name) -> filename:join([modules_dir(), "examples", Name ++ ".so"]).
test_module(Name) -> filename:join([modules_dir(), "test_modules", Name ++ ".so"]).

loads() ->
    lists:append([["--load", example(E)] || E <- ["readme_ticket", "ratelimit", "digest"]])
        ++ lists:append([["--load", test_module(M)]
                         || M <- ["timer_probe", "misbehave", "watcher", "failing_load"]]).

start(Node, Module, Arg, Name) ->
    gen_server:call({gen_cnode, Node}, {start, Module, Arg, [{name, Name}]}, 10000).

%%% Cases

%% README.md's C example, compiled from the README by make, used as the
%% README's iex lines use it.
readme_ticket_module(Config) ->
    Node = ?config(cnode, Config),
    {ok, Pid} = start(Node, ticket, {first, 100}, t2),
    ?assertEqual(Node, node(Pid)),
    ?assertEqual({ticket, 100}, gen_server:call({t2, Node}, take)),
    ?assertEqual({tickets, 101, 103}, gen_server:call({t2, Node}, {take, 3})),
    ?assertEqual(#{next => 104}, sys:get_state({t2, Node})),
    ?assertEqual({error, {unknown_call, nope}}, gen_server:call({t2, Node}, nope)),
    ?assertEqual({error, badarg}, gen_server:call({gen_cnode, Node}, {start, ticket, {first, x}})),
    ok = gen_server:stop({t2, Node}).

%% --start MODULE[:NAME][=ARG] at boot; the starter starts more from here.
modules_start_at_boot_and_from_any_node(Config) ->
    Node = ?config(cnode, Config),
    ?assertEqual(5, gen_server:call({rl, Node}, tokens)),
    ?assertEqual({ticket, 1}, gen_server:call({tickets, Node}, take)),
    ?assertEqual({ticket, 100}, gen_server:call({from100, Node}, take)),
    {ok, P1} = gen_server:call({gen_cnode, Node}, {start, ticket, []}),
    {ok, P2} = gen_server:call({gen_cnode, Node}, {start_link, digest, []}),
    ?assertEqual({ticket, 1}, gen_server:call(P1, take)),
    ?assertEqual({0, 0}, gen_server:call(P2, jobs)),
    ?assertMatch({error, {already_started, _}}, start(Node, ticket, [], tickets)),
    ?assertEqual({error, {unknown_module, nosuch}},
                 gen_server:call({gen_cnode, Node}, {start, nosuch, []})),
    %% undefined (register/2 refuses it), nil (Elixir's no name) and '' are
    %% refused as any name that is no atom is; nothing starts
    Servers = maps:get(servers, gen_server:call({gen_cnode, Node}, stats)),
    [?assertEqual({error, {unknown_call, {How, counter, [], [{name, N}]}}},
                  gen_server:call({gen_cnode, Node}, {How, counter, [], [{name, N}]}))
     || N <- [undefined, nil, ''], How <- [start, start_link]],
    ?assertExit({noproc, _}, gen_server:call({undefined, Node}, get, 5000)),
    ?assertEqual(Servers, maps:get(servers, gen_server:call({gen_cnode, Node}, stats))),
    unlink(P2),
    [ok = gen_server:stop(P) || P <- [P1, P2]].

%% :sys.get_state, :sys.get_status, suspend/resume, monitors, links and
%% GenServer.stop on a server of a loaded module, as on kv.
otp_tools_work_on_loaded_servers(Config) ->
    Node = ?config(cnode, Config),
    {ok, Pid} = start(Node, ratelimit, #{rate => 10, burst => 3}, limiter),
    ?assertEqual(#{tokens => 3, burst => 3, rate => 10, waiting => 0}, sys:get_state(Pid)),
    {status, Pid, {module, gen_server}, [_PDict, running, _Parent, _, Misc]} = sys:get_status(Pid),
    ?assert(lists:member({data, [{"State", #{tokens => 3, burst => 3, rate => 10, waiting => 0}}]},
                         Misc)),
    ok = sys:suspend(Pid),
    Self = self(),
    spawn_link(fun() -> Self ! {took, gen_server:call(Pid, take)} end),
    receive {took, _} -> ct:fail(answered_while_suspended) after 200 -> ok end,
    ok = sys:resume(Pid),
    receive {took, R} -> ?assertEqual(ok, R) after 5000 -> ct:fail(no_answer_after_resume) end,
    Ref = monitor(process, Pid),
    {ok, Other} = start(Node, ratelimit, #{rate => 10, burst => 3}, other),
    spawn(fun() -> process_flag(trap_exit, true), link(Other), Self ! linked,
                   receive {'EXIT', Other, Why} -> Self ! {exit, Why} end end),
    receive linked -> ok after 5000 -> ct:fail(not_linked) end,
    ok = gen_server:stop(Pid, shutdown, 5000),
    receive {'DOWN', Ref, process, Pid, Reason} -> ?assertEqual(shutdown, Reason)
    after 5000 -> ct:fail(no_down) end,
    exit(Other, kill),
    receive {exit, Why} -> ?assertEqual(killed, Why) after 5000 -> ct:fail(no_exit) end.

%% The bucket refills on a timer, one token per 1000/rate ms; {wait, N}
%% holds the caller until the tokens are there.
ratelimit_refills_on_timers(Config) ->
    Node = ?config(cnode, Config),
    {ok, _} = start(Node, ratelimit, #{rate => 10, burst => 5}, rl),
    T0 = erlang:monotonic_time(microsecond),
    [ok = gen_server:call({rl, Node}, take) || _ <- lists:seq(1, 5)],
    ?assertEqual({error, rate_limited}, gen_server:call({rl, Node}, take)),
    {Us, ok} = timer:tc(fun() -> gen_server:call({rl, Node}, {wait, 5}) end),
    %% One token every 100 ms from the first take: the five are there 500 ms
    %% after it, never sooner.
    Since = erlang:monotonic_time(microsecond) - T0,
    ct:log("waited ~.1f ms for 5 tokens at 10/s; ~.1f ms after the first take", [Us / 1000, Since / 1000]),
    ?assert(Since >= 500000),
    ?assert(Since < 3000000),
    %% Waiters are served first come, first served.
    Self = self(),
    [spawn_link(fun() -> Self ! {served, I, gen_server:call({rl, Node}, {wait, 2})} end)
     || I <- lists:seq(1, 3)],
    Order = [receive {served, I, ok} -> I after 5000 -> timeout end || _ <- lists:seq(1, 3)],
    ?assertEqual([1, 2, 3], lists:sort(Order)),
    ok = wait_until(fun() -> gen_server:call({rl, Node}, tokens) =:= 5 end, 5000),
    ?assertEqual({error, {badarg, {take, 6}}}, gen_server:call({rl, Node}, {take, 6})),
    %% Above a token a millisecond, the rate holds: 3,000 tokens at 3,000/s
    %% come back in about a second (a token per timer tick took 3 s and more).
    {ok, _} = start(Node, ratelimit, #{rate => 3000, burst => 3000}, fast),
    ok = gen_server:call({fast, Node}, {take, 3000}),
    {FastUs, ok} = timer:tc(fun() -> gen_server:call({fast, Node}, {wait, 3000}, 10000) end),
    ct:log("3,000 tokens at 3,000/s refilled in ~.1f ms", [FastUs / 1000]),
    ?assert(FastUs >= 900000 andalso FastUs < 2500000).

%% idle => Ms: a full bucket with no request for Ms stops, reason normal
%% (the gen_server timeout, which any message puts off).
idle_timeout_stops_a_limiter(Config) ->
    Node = ?config(cnode, Config),
    {ok, Pid} = start(Node, ratelimit, #{rate => 100, burst => 2, idle => 300}, idler),
    Ref = monitor(process, Pid),
    T0 = erlang:monotonic_time(millisecond),
    [begin ok = gen_server:call(Pid, take), timer:sleep(100) end || _ <- lists:seq(1, 5)],
    receive {'DOWN', Ref, process, Pid, Reason} ->
            Lived = erlang:monotonic_time(millisecond) - T0,
            %% The last take was at about 400 ms; the bucket is full again
            %% 10 ms later, and idle 300 ms after that.
            ct:log("stopped ~b ms after its start, ~b ms after the last request", [Lived, Lived - 400]),
            ?assertEqual(normal, Reason),
            ?assert(Lived >= 400 + 300)
    after 5000 -> ct:fail(not_stopped_when_idle)
    end.

%% A timer never fires early; how late it is, by the node's own clock, is
%% logged (README states the accuracy). Cancel works once.
timers_are_never_early_and_cancel(Config) ->
    Node = ?config(cnode, Config),
    {ok, P} = start(Node, timer_probe, [], probe),
    Late = [begin
                {Us, {fired, Ms, LateUs}} = timer:tc(fun() -> gen_server:call(P, {'after', Ms}) end),
                ?assert(LateUs >= 0),
                ?assert(Us >= Ms * 1000),
                LateUs
            end || Ms <- lists:append(lists:duplicate(20, [0, 1, 5, 10, 20]))],
    Sorted = lists:sort(Late),
    N = length(Sorted),
    ct:log("~b timers of 0-20 ms: late by p50 ~b us, p90 ~b us, max ~b us (node clock)",
           [N, lists:nth(N div 2, Sorted), lists:nth(N * 9 div 10, Sorted), lists:last(Sorted)]),
    ?assertEqual({cancelled, 1, 0}, gen_server:call(P, {cancel, 1000})),
    ?assertEqual({cancelled, 20000}, gen_server:call(P, {cancel_many, 20000})),
    ?assertEqual(0, gen_server:call(P, pending)),
    %% A server stopped with timers pending: they go with it.
    {ok, P2} = start(Node, timer_probe, [], probe2),
    Self = self(),
    spawn(fun() -> Self ! {late, catch gen_server:call(P2, {'after', 60000}, 60000)} end),
    ok = wait_until(fun() -> gen_server:call(P2, pending) =:= 1 end, 5000),
    ok = gen_server:stop(P2),
    receive {late, {'EXIT', {normal, _}}} -> ok after 5000 -> ct:fail(caller_not_released) end.

%% Thousands of timers at once, over 1..500 ms: every one fires, none early.
thousands_of_timers(Config) ->
    Node = ?config(cnode, Config),
    {ok, P} = start(Node, timer_probe, [], many),
    {Us, Reply} = timer:tc(fun() -> gen_server:call(P, {many, 20000, 500}, 30000) end),
    ct:log("20,000 timers of 1..500 ms all fired after ~b ms", [Us div 1000]),
    ?assertEqual({all_fired, 20000, 0}, Reply),
    ?assertEqual(0, gen_server:call(P, pending)).

%% gcn_set_timeout: the atom timeout arrives when no message came in time;
%% any message puts it off. Whether it came is waited for on the node's
%% count of pending timers (from the starter: no message to the server).
gen_server_timeout(Config) ->
    Node = ?config(cnode, Config),
    {ok, P} = start(Node, timer_probe, [], tmo),
    Fired = fun() -> ok = wait_until(fun() -> timers(Node) =:= 0 end, 5000) end,
    ok = gen_server:call(P, {timeout, 100}),
    Fired(),
    ?assertEqual(1, gen_server:call(P, timeouts)),
    ok = gen_server:call(P, {timeout, 300}),
    [begin timer:sleep(50), 1 = gen_server:call(P, timeouts) end || _ <- lists:seq(1, 10)],
    timer:sleep(500),
    ?assertEqual(1, gen_server:call(P, timeouts)),
    %% A system message starts it again from the full time, as in OTP.
    ok = gen_server:call(P, {timeout, 300}),
    [begin timer:sleep(100), _ = sys:get_state(P) end || _ <- lists:seq(1, 6)],
    ?assertEqual(1, gen_server:call(P, timeouts)),
    ok = gen_server:call(P, {timeout, 300}),
    Fired(),
    ?assertEqual(2, gen_server:call(P, timeouts)),
    %% None while suspended; it runs again once resumed.
    ok = gen_server:call(P, {timeout, 200}),
    ok = sys:suspend(P),
    timer:sleep(400),
    ok = sys:resume(P),
    ?assertEqual(#{timeouts => 2, pending => 0}, sys:get_state(P)),
    Fired(),
    ?assertEqual(3, gen_server:call(P, timeouts)),
    %% Mail the server sent itself before asking for a timeout of 0 is in
    %% its mailbox already: it comes, the timeout never does. Whether the
    %% timeout is asked for in a callback a frame ran or in the first,
    %% second or third delivery of local mail of the node's turn. (The
    %% 20 ms keep the waits' calls out of the hops: a call puts a timeout off.)
    [begin
         ok = gen_server:call(P, {self_then_timeout, Hops}),
         timer:sleep(20),
         ok = wait_until(fun() -> gen_server:call(P, pokes) =:= Hops + 1 end, 5000),
         ?assertEqual(3, gen_server:call(P, timeouts))
     end || Hops <- lists:seq(0, 4)],
    %% A delay no clock reaches: nothing wraps, the node serves on, timers run.
    ok = gen_server:call(P, {timeout, 9223372036854775807}),
    ?assertMatch({fired, 5, _}, gen_server:call(P, {'after', 5})),
    ?assertEqual(3, gen_server:call(P, timeouts)),
    {ok, _} = start(Node, ratelimit, #{rate => 1, burst => 1, idle => 9223372036854775807}, forever),
    ?assertEqual(1, gen_server:call({forever, Node}, tokens)).

%% A 2 s job on the worker pool: meanwhile kv on the same node answers
%% every call at once.
a_blocking_job_does_not_hold_up_the_node(Config) ->
    Node = ?config(cnode, Config),
    {ok, D} = start(Node, digest, [], digest),
    ok = gen_server:call({kv, Node}, {put, k, v}),
    T0 = erlang:monotonic_time(microsecond),
    Job = gen_server:send_request(D, {sleep, 2000}),
    Lat = kv_calls_until(Node, T0 + 1800000, []),
    {reply, slept} = gen_server:wait_response(Job, 10000),
    JobUs = erlang:monotonic_time(microsecond) - T0,
    Sorted = lists:sort(Lat),
    Max = lists:last(Sorted),
    ct:log("during a ~b ms job: ~b kv calls, p50 ~b us, max ~b us",
           [JobUs div 1000, length(Sorted), lists:nth(length(Sorted) div 2, Sorted), Max]),
    ?assert(JobUs >= 2000000),
    ?assert(length(Sorted) > 50),
    ?assert(Max < 500000), %% a blocked node would take the job's 2 s
    ?assertEqual({0, 1}, gen_server:call(D, jobs)).

%% With --workers 1, digest's jobs run one at a time, and while two of its
%% sleeps hold (and wait for) that thread, another module's job still runs
%% at once, on the thread the pool keeps beyond --workers.
a_module_whose_jobs_block_leaves_a_thread_to_others(Config) ->
    Node = ?config(cnode, Config),
    {ok, D} = start(Node, digest, [], digest),
    {ok, D2} = start(Node, digest, [], digest2),
    {ok, P} = start(Node, timer_probe, [], probe),
    T0 = erlang:monotonic_time(millisecond),
    Job = gen_server:send_request(D, {sleep, 1500}),
    Job2 = gen_server:send_request(D2, {sleep, 1500}),
    ok = wait_until(fun() -> case gen_server:call({gen_cnode, Node}, stats) of
                                 #{jobs_running := 1, jobs_queued := 1} -> true;
                                 _ -> false
                             end
                    end, 1000),
    ?assertEqual(job_done, gen_server:call(P, job, 5000)),
    ?assert(erlang:monotonic_time(millisecond) - T0 < 1400), %% not behind digest's sleeps
    {reply, slept} = gen_server:wait_response(Job, 5000),
    {reply, slept} = gen_server:wait_response(Job2, 5000),
    %% one after the other: digest alone holds --workers threads at most
    ?assert(erlang:monotonic_time(millisecond) - T0 >= 3000).

%% With --workers 1, one digest server's ten sleeps queued ahead do not
%% hold up another digest server's first job: it starts once the sleep
%% running ends (the module's servers take turns), where it waited for all
%% ten.
a_module_s_servers_take_turns_at_its_threads(Config) ->
    Node = ?config(cnode, Config),
    {ok, D} = start(Node, digest, [], digest),
    {ok, D2} = start(Node, digest, [], digest2),
    Jobs = [gen_server:send_request(D, {sleep, 300}) || _ <- lists:seq(1, 10)],
    ok = wait_until(fun() -> case gen_server:call({gen_cnode, Node}, stats) of
                                 #{jobs_running := 1, jobs_queued := 9} -> true;
                                 _ -> false
                             end
                    end, 1000),
    T0 = erlang:monotonic_time(millisecond),
    ?assertEqual({ok, crypto:hash(sha256, <<"x">>)}, gen_server:call(D2, {sha256, <<"x">>}, 5000)),
    ?assert(erlang:monotonic_time(millisecond) - T0 < 1000), %% not behind the ten (3 s)
    [{reply, slept} = gen_server:wait_response(J, 5000) || J <- Jobs],
    ?assertEqual({0, 10}, gen_server:call(D, jobs)).

%% --workers 1 runs two threads: digest's sleep holds the one asked for,
%% misbehave's the spare; timer_probe's job gets a thread added for it.
two_modules_blocked_leave_a_thread_to_a_third(Config) ->
    Node = ?config(cnode, Config),
    {ok, D} = start(Node, digest, [], digest),
    {ok, M} = start(Node, misbehave, [], sleeper),
    {ok, P} = start(Node, timer_probe, [], probe),
    T0 = erlang:monotonic_time(millisecond),
    Job = gen_server:send_request(D, {sleep, 1500}),
    Job2 = gen_server:send_request(M, {sleep_job, 1500}),
    ok = wait_until(fun() -> case gen_server:call({gen_cnode, Node}, stats) of
                                 #{jobs_running := 2} -> true;
                                 _ -> false
                             end
                    end, 1000),
    ?assertEqual(job_done, gen_server:call(P, job, 5000)),
    ?assert(erlang:monotonic_time(millisecond) - T0 < 1400), %% not behind either sleep
    {reply, slept} = gen_server:wait_response(Job, 5000),
    {reply, slept} = gen_server:wait_response(Job2, 5000),
    %% side by side: each module had a thread
    ?assert(erlang:monotonic_time(millisecond) - T0 < 2900).

kv_calls_until(Node, Until, Acc) ->
    case erlang:monotonic_time(microsecond) < Until of
        false -> Acc;
        true ->
            {Us, v} = timer:tc(fun() -> gen_server:call({kv, Node}, {get, k}) end),
            timer:sleep(5),
            kv_calls_until(Node, Until, [Us | Acc])
    end.

digests_match_crypto(Config) ->
    Node = ?config(cnode, Config),
    {ok, D} = start(Node, digest, [], digest),
    Sizes = [0, 1, 55, 56, 63, 64, 65, 1000, 1 bsl 20],
    [begin
         Bin = rand:bytes(Size),
         ?assertEqual({ok, crypto:hash(sha256, Bin)}, gen_server:call(D, {sha256, Bin}, 10000))
     end || Size <- Sizes],
    %% Many at once, on however many workers: each caller gets its own.
    Self = self(),
    Bins = [rand:bytes(rand:uniform(100000)) || _ <- lists:seq(1, 40)],
    [spawn_link(fun() -> Self ! {digest, B, gen_server:call(D, {sha256, B}, 10000)} end) || B <- Bins],
    [receive {digest, B, R} -> ?assertEqual({ok, crypto:hash(sha256, B)}, R)
     after 15000 -> ct:fail({no_digest, byte_size(B)})
     end || B <- Bins],
    ?assertEqual({0, length(Sizes) + 40}, gen_server:call(D, jobs)).

%% The caller gives up before its job is done: the late reply is dropped,
%% the server and node carry on.
a_job_outliving_its_caller_is_harmless(Config) ->
    Node = ?config(cnode, Config),
    {ok, D} = start(Node, digest, [], digest),
    ?assertMatch({'EXIT', {timeout, _}}, catch gen_server:call(D, {sleep, 500}, 100)),
    %% and a server that stops with its job still running
    {ok, D2} = start(Node, digest, [], digest2),
    Job = gen_server:send_request(D2, {sleep, 300}),
    ok = gen_server:stop(D2),
    ?assertMatch({error, {normal, _}}, gen_server:wait_response(Job, 5000)),
    ok = wait_until(fun() -> gen_server:call(D, jobs) =:= {0, 1} end, 5000),
    timer:sleep(400),
    ?assertEqual(v, begin ok = gen_server:call({kv, Node}, {put, k, v}),
                          gen_server:call({kv, Node}, {get, k}) end),
    %% A job that ends while its server is suspended: its done waits for the
    %% resume, as everything else does (no module code runs meanwhile), and
    %% one whose server stops while suspended is dropped with it.
    {ok, D3} = start(Node, digest, [], digest3),
    Job3 = gen_server:send_request(D3, {sleep, 100}),
    ok = sys:suspend(D3),
    ?assertEqual(timeout, gen_server:wait_response(Job3, 400)),
    ok = sys:resume(D3),
    ?assertEqual({reply, slept}, gen_server:wait_response(Job3, 5000)),
    ?assertEqual({0, 1}, gen_server:call(D3, jobs)),
    Job4 = gen_server:send_request(D3, {sleep, 100}),
    ok = sys:suspend(D3),
    timer:sleep(300),
    ok = gen_server:stop(D3),
    ?assertMatch({error, {normal, _}}, gen_server:wait_response(Job4, 5000)).

%% SIGTERM while a job runs: the node waits for it, then exits 0.
%% Meanwhile it is already gone from epmd, so that a node started again
%% under its name (a supervisor's restart) can publish it at once.
stopping_the_node_waits_for_running_jobs(Config) ->
    Node = ?config(cnode, Config),
    [Alive, _] = string:split(atom_to_list(Node), "@"),
    Published = fun() -> {ok, Names} = net_adm:names("127.0.0.1"),
                         lists:keymember(Alive, 1, Names) end,
    ?assert(Published()),
    {ok, D} = start(Node, digest, [], digest),
    _ = gen_server:send_request(D, {sleep, 3000}),
    ok = wait_until(fun() -> gen_server:call(D, jobs) =:= {1, 0} end, 5000),
    Self = self(),
    Stopper = spawn_link(fun() ->
                                 Self ! {stopped, timer:tc(fun() -> gen_cnode:stop(?config(owner, Config)) end)}
                         end),
    ok = wait_until(fun() -> not Published() end, 1500),
    receive {stopped, Early} -> ct:fail({stopped_before_the_job_ended, Early}) after 0 -> ok end,
    {Us, Stop} = receive {stopped, R} -> R after 20000 -> ct:fail({no_stop, Stopper}) end,
    ct:log("stopped in ~b ms with a 3 s job running", [Us div 1000]),
    ?assert(Us > 1500000),
    ?assertEqual(ok, Stop).

%% Replies that are not one term, results that are no gcn_result, a NULL
%% state: that server stops with {bad_return_value, Callback}, its
%% monitors see it, the log says it once, and everything else carries on.
callbacks_that_break_the_contract_stop_only_their_server(Config) ->
    Node = ?config(cnode, Config),
    Log = ?config(log, Config),
    ok = gen_server:call({kv, Node}, {put, k, v}),
    [begin
         {ok, Pid} = start(Node, misbehave, [], M),
         Ref = monitor(process, Pid),
         ?assertMatch({'EXIT', {{bad_return_value, handle_call}, _}},
                      catch gen_server:call(Pid, Req, 5000)),
         receive {'DOWN', Ref, process, Pid, Why} -> ?assertEqual({bad_return_value, handle_call}, Why)
         after 5000 -> ct:fail({no_down, Req}) end
     end || {M, Req} <- [{m1, half_reply}, {m2, two_replies}, {m3, bad_result}, {m4, no_reply}]],
    ?assertEqual({error, bad_return_value},
                 gen_server:call({gen_cnode, Node}, {start, misbehave, null_state})),
    %% The reply buffer is the module's own to read and redo.
    {ok, M6} = start(Node, misbehave, [], m6),
    ?assertEqual(fine, gen_server:call(M6, second_thoughts)),
    %% A value no term can hold, from the module or from a peer's bytes:
    %% that caller is answered bad_reply, and the server goes on.
    ?assertEqual({ok, 'café'}, gen_server:call(M6, {atom_of, <<"café"/utf8>>})),
    ?assertEqual({error, bad_reply}, gen_server:call(M6, {atom_of, <<"caf", 233>>})),
    ?assertEqual({error, bad_reply}, gen_server:call(M6, nan)),
    %% A whole term some nodes cannot read (keys only a zero's sign tells
    %% apart, which OTP 25 and 26 refuse, dropping the connection): that
    %% caller is answered unsupported, and the server goes on.
    ?assertEqual({error, unsupported}, gen_server:call(M6, zeros)),
    ?assertEqual(pong, gen_server:call(M6, ping)),
    %% A stop reason that is no term: bad_stop_reason, and the DOWN gets
    %% here whole (the connection to this node is not dropped over it).
    monitor_node(Node, true),
    {ok, M7} = start(Node, misbehave, [], m7),
    Ref7 = monitor(process, M7),
    ?assertEqual(ok, gen_server:call(M7, bad_stop)),
    receive {'DOWN', Ref7, process, M7, Why7} -> ?assertEqual(bad_stop_reason, Why7)
    after 5000 -> ct:fail(no_down_of_bad_stop) end,
    receive {nodedown, Node} -> ct:fail(cut_off_by_a_bad_stop_reason) after 200 -> ok end,
    monitor_node(Node, false),
    %% An init that fails exits with its error, as OTP's with {stop, Reason}:
    %% a link it made is told that. One that calls gcn_stop is a failed
    %% start: {error, Reason} for an atom (OTP: any term), never {ok, Pid}.
    process_flag(trap_exit, true),
    ?assertEqual({error, refused_in_init},
                 gen_server:call({gen_cnode, Node}, {start, misbehave, {link_then_fail, self()}})),
    receive {'EXIT', _, InitWhy} -> ?assertEqual(refused_in_init, InitWhy)
    after 5000 -> ct:fail(no_exit_from_a_failed_init) end,
    %% So does one that returns no state, with bad_return_value.
    ?assertEqual({error, bad_return_value},
                 gen_server:call({gen_cnode, Node}, {start, misbehave, {link_then_null_state, self()}})),
    receive {'EXIT', _, NullWhy} -> ?assertEqual(bad_return_value, NullWhy)
    after 5000 -> ct:fail(no_exit_from_an_init_with_no_state) end,
    process_flag(trap_exit, false),
    ?assertEqual({error, gave_up},
                 gen_server:call({gen_cnode, Node}, {start, misbehave, {stop_in_init, gave_up}})),
    ?assertEqual({error, init_stopped},
                 gen_server:call({gen_cnode, Node}, {start, misbehave, {stop_in_init, {a, 1}}})),
    %% The name is registered before init runs, as in OTP.
    {ok, M8} = start(Node, misbehave, name_in_init, m8),
    ok = gen_server:stop(M8),
    ok = gen_server:stop(M6),
    %% An init error that no atom can carry: init_failed, and the starter serves on.
    ?assertEqual({error, init_failed},
                 gen_server:call({gen_cnode, Node}, {start, failing_load, no_atom})),
    ?assertMatch({ok, _}, gen_server:call({gen_cnode, Node}, {start, failing_load, []})),
    {ok, M5} = start(Node, misbehave, [], m5),
    ?assertEqual(fine, sys:get_state(M5)),
    ok = gen_server:call(M5, bad_state),
    ?assertMatch({'EXIT', _}, catch sys:get_state(M5)),
    ?assertEqual(pong, gen_server:call(M5, ping)),
    ?assertEqual(v, gen_server:call({kv, Node}, {get, k})),
    %% The owner writes the node's lines as they come: wait for the fourth.
    Kind = fun(L) -> case {string:find(L, "bad_reply"), string:find(L, "unsupported")} of
                         {nomatch, nomatch} -> stop;
                         {nomatch, _} -> unsupported;
                         _ -> bad_reply
                     end end,
    Said = fun(What) -> [L || L <- durable_harness:log_lines(Log),
                              string:find(L, "misbehave: handle_call") =/= nomatch, Kind(L) =:= What] end,
    ok = wait_until(fun() -> length(Said(stop)) >= 4 andalso length(Said(bad_reply)) >= 2
                                 andalso length(Said(unsupported)) >= 1 end, 5000),
    timer:sleep(200),
    ct:log("~p", [Said(stop) ++ Said(bad_reply) ++ Said(unsupported)]),
    ?assertEqual(4, length(Said(stop))),
    ?assertEqual(2, length(Said(bad_reply))),
    ?assertEqual(1, length(Said(unsupported))).

%% A module that crashes takes the node down with it (it runs in the node's
%% process); the owner says so, with the signal.
a_crashing_module_takes_the_node_down_and_the_owner_says_so(Config) ->
    Node = ?config(cnode, Config),
    Owner = ?config(owner, Config),
    Log = ?config(log, Config),
    {ok, Pid} = start(Node, misbehave, [], crasher),
    OwnerRef = monitor(process, Owner),
    ?assertMatch({'EXIT', _}, catch gen_server:call(Pid, crash, 5000)),
    receive {'DOWN', OwnerRef, process, Owner, Reason} ->
            ct:log("owner stopped: ~p", [Reason]),
            %% SIGSEGV (status 139), or under AddressSanitizer its report
            %% and its exit code.
            ?assertMatch({exit_status, S} when S =/= 0, Reason)
    after 10000 -> ct:fail(owner_did_not_notice)
    end,
    Lines = durable_harness:log_lines(Log),
    ct:log("~p", [lists:sublist(Lines, max(1, length(Lines) - 10), 10)]),
    %% The owner names the signal; under AddressSanitizer the node's own
    %% report names the SEGV.
    ?assert(lists:any(fun(L) -> string:find(L, "crashed (signal 11, SIGSEGV)") =/= nomatch orelse
                                    string:find(L, "SEGV") =/= nomatch end, Lines)).

%% At boot, a module that cannot be loaded or started: one clear line and
%% exit status 2.
load_errors_exit_2_with_one_line(_Config) ->
    Missing = filename:join(modules_dir(), "no/such/module.so"),
    Cases = [{["--load", Missing], "no/such/module.so"},
             {["--load", test_module("no_entry")], "no gen_cnode_module()"},
             {["--load", test_module("wrong_version")], "built against API 99.0"},
             {["--load", test_module("borrowed")], "returns a module that is not in the file"},
             {["--load", test_module("failing_load") ++ "=refuse"], "its load function failed"},
             {["--load", example("ratelimit"), "--load", example("ratelimit")], "already loaded"},
             {["--load", test_module("failing_load"), "--start", "failing_load=fail"], "asked_to_fail"},
             {["--start", "nosuch"], "no module named nosuch"},
             {["--load", example("readme_ticket"), "--start", "ticket={first"], "ARG is not a term"},
             {["--load", example("readme_ticket"), "--start", "ticket=~i"], "ARG is not a term"},
             %% names a BEAM cannot register, or that are none
             {["--start", "counter:undefined"], "no name a BEAM registers"},
             {["--start", "counter:nil"], "no name a BEAM registers"},
             {["--register", "undefined"], "no name a BEAM registers"}],
    [begin
         Name = "e" ++ integer_to_list(erlang:unique_integer([positive])),
         {Status, Out} = run_node(["--name", Name, "--cookie", "c" | Args]),
         Errors = [L || L <- string:split(Out, "\n", all), string:find(L, "error") =/= nomatch],
         ct:log("~p: status ~p, ~p", [Args, Status, Errors]),
         ?assertEqual({2, 1}, {Status, length(Errors)}),
         ?assertNotEqual(nomatch, string:find(hd(Errors), Expect))
     end || {Args, Expect} <- Cases].

%% priv/examples/ratelimit_node: examples/embedded/main.c and
%% examples/ratelimit.c linked with priv/libgen_cnode.a into one binary
%% (gen_cnode_main), with the standard options and the bundled servers.
an_embedded_binary_serves_its_own_module(Config) ->
    Node = list_to_atom("emb" ++ integer_to_list(erlang:unique_integer([positive])) ++ "@127.0.0.1"),
    Log = filename:join(?config(priv_dir, Config), "embedded.log"),
    {ok, Owner} = gen_cnode:start(#{name => Node, executable => filename:join([modules_dir(), "examples", "ratelimit_node"]),
                                    log => Log,
                                    args => ["--start", "ratelimit:rl=#{rate => 100, burst => 2}"]}),
    gen_cnode_test_env:track({cnode, Owner}),
    ?assertEqual(2, gen_server:call({rl, Node}, tokens)),
    ok = gen_server:call({rl, Node}, take),
    ?assertMatch(#{burst := 2, rate := 100}, sys:get_state({rl, Node})),
    {ok, _} = gen_server:call({gen_cnode, Node}, {start, ratelimit, #{rate => 1, burst => 1}, [{name, r2}]}),
    ok = gen_server:call({kv, Node}, {put, a, 1}),
    ?assertEqual(1, gen_server:call({kv, Node}, {get, a})),
    ?assertEqual({ok, []}, {gen_cnode:stop(Owner), gen_cnode_test_env:sanitizer_reports(Log)}).

%% gcn_send, gcn_link/unlink and gcn_monitor/demonitor from a C server
%% (test/modules/watcher.c, which traps exits and keeps every info).
sending_links_and_monitors_from_c(Config) ->
    Node = ?config(cnode, Config),
    {ok, W} = start(Node, watcher, [], w),
    Seen = fun() -> gen_server:call(W, seen) end,
    %% Sending: to a pid, to {Name, Node}, to a name of its own node.
    ok = gen_server:call(W, {send, self(), hello}),
    receive hello -> ok after 5000 -> ct:fail(no_hello) end,
    register(module_suite_inbox, self()),
    ok = gen_server:call(W, {send, {module_suite_inbox, node()}, by_name}),
    receive by_name -> ok after 5000 -> ct:fail(no_message_by_name) end,
    unregister(module_suite_inbox),
    ok = gen_server:call(W, {send, kv, {'$gen_cast', {put, sent_from_c, 1}}}),
    ok = wait_until(fun() -> gen_server:call({kv, Node}, {get, sent_from_c}) =:= 1 end, 5000),
    ok = gen_server:call(W, {send, w, to_myself}),
    ok = wait_until(fun() -> lists:member(to_myself, Seen()) end, 5000),
    ?assertEqual(error, gen_server:call(W, {send, nosuch, x})),
    %% To a node that does not exist: queued while the node tries to connect
    %% (as OTP's send), refused once it knows it cannot (for a second).
    ?assertEqual(ok, gen_server:call(W, {send, {x, 'nosuch@127.0.0.1'}, x})),
    ok = wait_until(fun() -> gen_server:call(W, {send, {x, 'nosuch@127.0.0.1'}, x}) =:= error end, 5000),
    %% A monitor of a process here: DOWN with its reason.
    P = spawn(fun() -> receive go -> exit(boom) end end),
    {ok, Ref} = gen_server:call(W, {monitor, P}),
    P ! go,
    ok = wait_until(fun() -> Seen() =:= [{'DOWN', Ref, process, P, boom}] end, 5000),
    %% Taken off: no DOWN.
    P2 = spawn(fun() -> receive go -> exit(boom) end end),
    {ok, Ref2} = gen_server:call(W, {monitor, P2}),
    ?assertEqual(1, gen_server:call(W, {demonitor, Ref2})),
    ?assertEqual(0, gen_server:call(W, {demonitor, Ref2})),
    P2 ! go,
    timer:sleep(200),
    ?assertEqual([], Seen()),
    %% Of a server of its own node: DOWN when it stops; noproc when gone.
    {ok, K} = gen_server:call({gen_cnode, Node}, {start, kv, []}),
    {ok, RefK} = gen_server:call(W, {monitor, K}),
    ok = gen_server:stop(K, shutdown, 5000),
    ok = wait_until(fun() -> Seen() =:= [{'DOWN', RefK, process, K, shutdown}] end, 5000),
    {ok, RefGone} = gen_server:call(W, {monitor, K}),
    ok = wait_until(fun() -> Seen() =:= [{'DOWN', RefGone, process, K, noproc}] end, 5000),
    %% Of a process on a node not connected to the C node: the C node
    %% connects to it and the monitor holds, until that node goes away
    %% (noconnection then). Of a pid of a node that cannot be reached:
    %% noconnection, promptly.
    {Peer, _PeerNode} = gen_cnode_test_env:start_peer(peer_name(), []),
    gen_cnode_test_env:track({peer, Peer}),
    Far = peer:call(Peer, erlang, spawn, [timer, sleep, [infinity]]),
    ?assertNot(lists:member(Node, peer:call(Peer, erlang, nodes, [hidden]))),
    {ok, RefFar} = gen_server:call(W, {monitor, Far}),
    ok = wait_until(fun() -> lists:member(Node, peer:call(Peer, erlang, nodes, [hidden])) end, 5000),
    timer:sleep(100),
    ?assertEqual([], Seen()),
    peer:stop(Peer),
    ok = wait_until(fun() -> Seen() =:= [{'DOWN', RefFar, process, Far, noconnection}] end, 5000),
    Ghost = binary_to_term(<<131, 88, 119, 20, "ghost_mon@127.0.0.1x", 1:32, 0:32, 1:32>>),
    {ok, RefGhost} = gen_server:call(W, {monitor, Ghost}),
    ok = wait_until(fun() -> Seen() =:= [{'DOWN', RefGhost, process, Ghost, noconnection}] end, 5000),
    %% Links: both ways, and unlink.
    Self = self(),
    L = spawn(fun() -> process_flag(trap_exit, true), Self ! ready,
                       receive {'EXIT', From, Why} -> Self ! {l_exit, From, Why} end end),
    receive ready -> ok after 5000 -> ct:fail(linker_not_ready) end,
    ok = gen_server:call(W, {link, L}),
    L2 = spawn(fun() -> receive go -> exit(bye) end end),
    ok = gen_server:call(W, {link, L2}),
    L2 ! go,
    ok = wait_until(fun() -> Seen() =:= [{'EXIT', L2, bye}] end, 5000),
    L3 = spawn(fun() -> receive go -> exit(bye) end end),
    ok = gen_server:call(W, {link, L3}),
    ok = gen_server:call(W, {unlink, L3}),
    L3 ! go,
    timer:sleep(200),
    ?assertEqual([], Seen()),
    ?assertEqual(error, gen_server:call(W, {link, W})),
    ok = gen_server:stop(W, shutdown, 5000),
    receive {l_exit, W, shutdown} -> ok after 5000 -> ct:fail(link_not_told) end.

%% --max-depth 50. A crash's reason holds the state it crashed with, and
%% may be nested deeper than that: such a reason, of an exit signal or a
%% DOWN, arrives as too_deep, in both directions, and the connection, which
%% carries everyone's traffic, stays up. A reason within the limit arrives
%% whole. Each is logged once.
deep_exit_reasons_arrive_as_too_deep(Config) ->
    Node = ?config(cnode, Config),
    Log = ?config(log, Config),
    {ok, W} = start(Node, watcher, [], wdeep),
    Seen = fun() -> gen_server:call(W, seen) end,
    Deep = lists:foldl(fun(I, Acc) -> {I, [Acc]} end, crashed, lists:seq(1, 200)),
    Fits = lists:foldl(fun(I, Acc) -> {I, Acc} end, crashed, lists:seq(1, 40)),
    true = erlang:monitor_node(Node, true),
    Dying = fun() -> spawn(fun() -> receive {go, Why} -> exit(Why) end end) end,
    %% A monitor from C: its DOWN.
    P = Dying(),
    {ok, Ref} = gen_server:call(W, {monitor, P}),
    P ! {go, Deep},
    ok = wait_until(fun() -> Seen() =:= [{'DOWN', Ref, process, P, too_deep}] end, 5000),
    P2 = Dying(),
    {ok, Ref2} = gen_server:call(W, {monitor, P2}),
    P2 ! {go, Fits},
    ok = wait_until(fun() -> Seen() =:= [{'DOWN', Ref2, process, P2, Fits}] end, 5000),
    %% A link from C, trapping: its EXIT; and exit/2 to it.
    L = Dying(),
    ok = gen_server:call(W, {link, L}),
    L ! {go, Deep},
    ok = wait_until(fun() -> Seen() =:= [{'EXIT', L, too_deep}] end, 5000),
    exit(W, Deep),
    ok = wait_until(fun() -> Seen() =:= [{'EXIT', self(), too_deep}] end, 5000),
    %% A server that does not trap: it exits, and its monitors and links
    %% are told too_deep (the BEAM's side of the DOWN and EXIT).
    {ok, K} = gen_server:call({gen_cnode, Node}, {start, kv, []}, 10000),
    MK = monitor(process, K),
    Self = self(),
    Linked = spawn(fun() -> process_flag(trap_exit, true), link(K), Self ! linked,
                            receive {'EXIT', K, Why} -> Self ! {linked_exit, Why} end end),
    receive linked -> ok after 5000 -> ct:fail(not_linked) end,
    exit(K, Deep),
    receive {'DOWN', MK, process, K, Why} -> ?assertEqual(too_deep, Why)
    after 5000 -> ct:fail(no_down)
    end,
    receive {linked_exit, LWhy} -> ?assertEqual(too_deep, LWhy)
    after 5000 -> ct:fail(no_exit)
    end,
    %% One connection all along, and everything else served.
    receive {nodedown, Node} -> ct:fail(connection_dropped_for_a_deep_reason) after 0 -> ok end,
    erlang:monitor_node(Node, false),
    ok = gen_server:call({kv, Node}, {put, after_deep, 1}),
    ?assertEqual(1, gen_server:call({kv, Node}, {get, after_deep})),
    ?assertEqual([], Seen()),
    Lines = fun() -> [X || X <- durable_harness:log_lines(Log), string:find(X, "nested deeper than --max-depth") =/= nomatch] end,
    ok = wait_until(fun() -> length(Lines()) =:= 4 end, 5000),
    timer:sleep(200),
    ?assertEqual(4, length(Lines())).

peer_name() ->
    list_to_atom("mpeer" ++ integer_to_list(erlang:unique_integer([positive]))).

run_node(Args) ->
    Port = open_port({spawn_executable, gen_cnode_test_env:executable()},
                     [{args, Args}, exit_status, stderr_to_stdout, binary]),
    collect(Port, <<>>).

collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, <<Acc/binary, D/binary>>);
        {Port, {exit_status, S}} -> {S, binary_to_list(Acc)}
    after 10000 ->
            {os_pid, OsPid} = erlang:port_info(Port, os_pid),
            os:cmd("kill -9 " ++ integer_to_list(OsPid)),
            {timeout, binary_to_list(Acc)}
    end.

wait_until(Fun, Timeout) ->
    gen_cnode_test_env:wait_until(Fun, Timeout).

%% The servers' pending timers, as the node counts them (a gen_server
%% timeout is one).
timers(Node) ->
    maps:get(timers, gen_server:call({gen_cnode, Node}, stats, 10000)).

%% Stopping the node (SIGTERM) stops its servers first, while it can still
%% send: what a terminate sends to a connected node arrives, by pid and by
%% {Name, Node}; to a node not connected it is dropped and logged, since a
%% stopping node dials no one (it once dialed through freed memory there).
%% The node exits 0, and the sanitizer build reports nothing.
last_words_when_the_node_stops(Config) ->
    Node = ?config(cnode, Config),
    Owner = ?config(owner, Config),
    Log = ?config(log, Config),
    {ok, W} = start(Node, watcher, [], lw),
    register(last_words_inbox, self()),
    Words = [{self(), bye}, {{last_words_inbox, node()}, by_name},
             {{inbox, 'nobody_here@127.0.0.1'}, lost}, {self(), after_lost}],
    [ok = gen_server:call(W, {last_words, To, Msg}) || {To, Msg} <- Words],
    ?assertEqual(ok, gen_cnode:stop(Owner)),
    Got = [receive {Msg, Why} -> {Msg, Why} after 5000 -> {Msg, none} end
           || Msg <- [bye, by_name, after_lost]],
    ?assertEqual([{bye, shutdown}, {by_name, shutdown}, {after_lost, shutdown}], Got),
    receive {lost, _} = Lost -> ct:fail({delivered, Lost}) after 0 -> ok end,
    ?assertEqual([], gen_cnode_test_env:sanitizer_reports(Log)),
    Dropped = [L || L <- durable_harness:log_lines(Log),
                    string:find(L, "nobody_here@127.0.0.1 is not connected (this node is stopping)") =/= nomatch],
    ?assertMatch([_], Dropped).


%% gen_cnode_test_env: the shared set-up of the integration suites
%% (gen_cnode_SUITE, gen_cnode_otp_SUITE, and through durable_harness
%% gen_cnode_durable_SUITE and gen_cnode_fidelity_SUITE).
%%
%%   - epmd on $ERL_EPMD_PORT (4369 when unset), started by the suite unless
%%     one answers there already, and stopped again by the suite that started
%%     it (tools/run-tests picks a free port; erlexec turns the variable into
%%     -epmd_port, which cannot change after boot);
%%   - distribution with long names, ctREL@127.0.0.1, unless the node is
%%     alive already (then it is left as it is);
%%   - OS processes held by an Erlang process of their own (test case
%%     processes come and go) and stopped by their OS pid;
%%   - peer nodes of this release on 127.0.0.1, with test/ and the
%%     application in their code path;
%%   - waiting for a condition with a deadline;
%%   - cleanup: a reaper process to which a case hands what it starts (C
%%     nodes, peers, OS pids, processes), and which stops it by pid in
%%     end_per_testcase, even when the case failed or hit its timetrap;
%%   - the sanitizers' reports in a C node's log.
%%
%% One reaper at a time (the suites run one after another): start_reaper/0
%% stops one left behind before it registers its own.
-module(gen_cnode_test_env).

-define(config(Key, Config), proplists:get_value(Key, Config)).

-export([init_suite/1, end_suite/1, stop_distribution/1,
         epmd_port/0, executable/0,
         os_alive/1,
         start_peer/2, start_tracked_peer/1, other_release_runtime/0, start_other_release_peer/1,
         start_cnode/3,
         stop_reaper/0, track/1, reap/0, failed_start/1,
         wait_until/2,
         sanitizer_reports/1]).

-define(REAPER, gen_cnode_test_env_reaper).

%%% Suite set-up

%% For init_per_suite: epmd, distribution, the reaper. Returns Config with
%% epmd (the holder of the epmd started here, or undefined) and started_dist
%% (whether distribution was started here).
init_suite(Config) ->
    Epmd = ensure_epmd(epmd_port()),
    StartedDist = ensure_distributed(),
    start_reaper(),
    [{epmd, Epmd}, {started_dist, StartedDist} | Config].

%% For end_per_suite: whatever is still tracked, the reaper, then
%% stop_distribution/1.
end_suite(Config) ->
    reap(),
    stop_reaper(),
    stop_distribution(Config).

%% Stops distribution and epmd if init_suite/1 started them.
stop_distribution(Config) ->
    ?config(started_dist, Config) =:= true andalso net_kernel:stop(),
    case ?config(epmd, Config) of
        undefined -> ok;
        Epmd -> ct:log("epmd: ~p", [stop_os_process(Epmd)])
    end,
    ok.

epmd_port() ->
    case os:getenv("ERL_EPMD_PORT") of
        false -> 4369;
        "" -> 4369;
        P -> list_to_integer(P)
    end.

%% The C node gen_cnode:start/1 runs, for the logs.
executable() ->
    case os:getenv("GEN_CNODE_EXE") of
        false -> "(priv/gen_cnode)";
        Exe -> Exe
    end.

%% Starts epmd on Port unless one answers there already; returns the holder of
%% the one it started, or undefined.
ensure_epmd(Port) ->
    case epmd_answers(Port) of
        true ->
            undefined;
        false ->
            Epmd = start_os_process(os:find_executable("epmd"),
                                    ["-port", integer_to_list(Port), "-address", "127.0.0.1"]),
            try wait_until(fun() -> epmd_answers(Port) end, 5000) of
                ok -> Epmd
            catch
                error:{wait_until_timed_out, _} ->
                    error({epmd_did_not_start, Port, stop_os_process(Epmd)})
            end
    end.

epmd_answers(Port) ->
    case gen_tcp:connect({127, 0, 0, 1}, Port, [], 1000) of
        {ok, S} -> gen_tcp:close(S), true;
        {error, _} -> false
    end.

%% Starts distribution with long names unless the node is alive; returns
%% whether it started it.
ensure_distributed() ->
    case erlang:is_alive() of
        true ->
            false;
        false ->
            Name = list_to_atom("ct" ++ erlang:system_info(otp_release) ++ "@127.0.0.1"),
            {ok, _} = net_kernel:start([Name, longnames]),
            true
    end.

%%% OS processes

%% An OS process owned by a process of its own (test case processes come and
%% go). Returns the holder's pid; stop_os_process/1 stops it by its os pid.
start_os_process(Exe, Args) ->
    Self = self(),
    Ref = make_ref(),
    Holder = spawn(fun() ->
                           Port = open_port({spawn_executable, Exe},
                                            [{args, Args}, exit_status, stderr_to_stdout,
                                             use_stdio, binary]),
                           {os_pid, OsPid} = erlang:port_info(Port, os_pid),
                           Self ! {Ref, OsPid},
                           hold(Port, OsPid, [])
                   end),
    receive {Ref, _OsPid} -> Holder after 5000 -> error({no_os_pid, Exe}) end.

hold(Port, OsPid, Out) ->
    receive
        {Port, {data, D}} ->
            hold(Port, OsPid, [D | Out]);
        {Port, {exit_status, S}} ->
            receive {stop, From, Ref} -> From ! {Ref, {exited, S, lists:reverse(Out)}} end;
        {stop, From, Ref} ->
            os:cmd("kill -TERM " ++ integer_to_list(OsPid)),
            receive
                {Port, {exit_status, S}} -> From ! {Ref, {exit_status, S}}
            after 5000 ->
                    os:cmd("kill -KILL " ++ integer_to_list(OsPid)),
                    receive {Port, {exit_status, S}} -> From ! {Ref, {killed, S}}
                    after 2000 -> From ! {Ref, {no_exit, OsPid}}
                    end
            end
    end.

%% SIGTERM, then SIGKILL after 5 s. Returns {exit_status, S}, {killed, S},
%% {exited, S, Output} (it had exited by itself), {no_exit, OsPid},
%% {holder_down, Why} or timeout.
stop_os_process(Holder) ->
    Ref = monitor(process, Holder),
    Holder ! {stop, self(), Ref},
    receive
        {Ref, Result} -> demonitor(Ref, [flush]), Result;
        {'DOWN', Ref, process, Holder, Why} -> {holder_down, Why}
    after 10000 -> timeout
    end.

%% (A zombie, exited and not yet reaped by whoever adopted it, is not alive.)
os_alive(OsPid) ->
    case file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/stat") of
        {ok, Stat} ->
            %% the state follows the command's closing parenthesis
            [_, After] = string:split(Stat, ")", trailing),
            not lists:prefix("Z", string:trim(binary_to_list(After), leading));
        {error, _} ->
            false
    end.

%%% C nodes of a case's own

%% A C node Name@127.0.0.1 started with gen_cnode:start/1 and Opts (log: a
%% file Name.log in the case's priv_dir), tracked for the reaper. Returns
%% {Node, Log, Owner}.
start_cnode(Config, Name, Opts) ->
    Log = filename:join(proplists:get_value(priv_dir, Config), atom_to_list(Name) ++ ".log"),
    Node = list_to_atom(atom_to_list(Name) ++ "@127.0.0.1"),
    {ok, Owner} = gen_cnode:start(maps:merge(#{name => Node, log => Log}, Opts)),
    track({cnode, Owner}),
    {Node, Log, Owner}.

%%% Peers

%% A peer node Name@127.0.0.1 of this release with long names, controlled
%% over its standard input and output (so it need not share our cookie), run
%% with Args, then test/ (the suites and their helpers) and the application's
%% ebin in its code path. Returns {Peer, Node}; not tracked (the caller hands
%% it to the reaper, as {peer, Peer} or {os_pid, OsPid}, to have it stopped).
start_peer(Name, Args) ->
    TestDir = filename:dirname(code:which(?MODULE)),
    Ebin = filename:dirname(code:which(gen_cnode)),
    {ok, Peer, Node} = peer:start(#{name => Name, host => "127.0.0.1", longnames => true,
                                    connection => standard_io,
                                    args => Args ++ ["-pa", TestDir, "-pa", Ebin],
                                    wait_boot => 30000}),
    {Peer, Node}.

%% The OTP 27 runtime of tools/otp27-chroot, when this is OTP 25 on the host
%% and the chroot is there (as root): {Chroot, Erl}, else none.
other_release_runtime() ->
    Dir = os:getenv("GEN_CNODE_CHROOT", "/var/cache/gen_cnode/trixie"),
    Chroot = os:find_executable("chroot", "/usr/sbin:/usr/bin:/sbin:/bin"),
    case erlang:system_info(otp_release) =:= "25"
        andalso Chroot =/= false
        andalso filelib:is_regular(filename:join(Dir, "usr/bin/erl"))
        andalso string:trim(os:cmd("id -u")) =:= "0" of
        true -> {Chroot, Dir};
        false -> none
    end.

start_other_release_peer(Name) ->
    {Chroot, Dir} = other_release_runtime(),
    Exec = {Chroot, [Dir, "/usr/bin/env", "-i", "HOME=/root", "PATH=/usr/bin:/bin",
                     "LANG=C.UTF-8",
                     "ERL_EPMD_PORT=" ++ integer_to_list(epmd_port()),
                     "/usr/bin/erl"]},
    {ok, Peer, Node} = peer:start(#{name => Name, host => "127.0.0.1", longnames => true,
                                    connection => standard_io, exec => Exec,
                                    args => ["-hidden", "-setcookie",
                                             atom_to_list(erlang:get_cookie())],
                                    wait_boot => 30000}),
    track({os_pid, list_to_integer(peer:call(Peer, os, getpid, []))}),
    {Peer, Node, peer:call(Peer, erlang, system_info, [otp_release])}.

%% A peer with this node's cookie, tracked for the reaper: {Peer, Node}.
start_tracked_peer(Name) ->
    {Peer, Node} = start_peer(Name, ["-setcookie", atom_to_list(erlang:get_cookie())]),
    track({peer, Peer}),
    {Peer, Node}.

%%% The reaper: stops, by pid, whatever a test case started.

start_reaper() ->
    case whereis(?REAPER) of
        undefined ->
            ok;
        Old ->
            Ref = monitor(process, Old),
            Old ! stop,
            receive {'DOWN', Ref, process, Old, _} -> ok
            after 60000 -> exit(Old, kill), receive {'DOWN', Ref, process, Old, _} -> ok end
            end
    end,
    register(?REAPER, spawn(fun() -> reaper([]) end)).

%% What is still tracked is cleaned up on the way out.
stop_reaper() ->
    catch (?REAPER ! stop),
    ok.

%% Thing: {cnode, Owner} | {peer, Peer} | {os_pid, OsPid} | {pid, LocalPid}
%% | {server, Pid} (a server on another node: killed, alive or not).
track(Thing) ->
    ?REAPER ! {track, Thing},
    Thing.

%% gen_cnode:start(Opts) for a case that expects it to fail: an owner that
%% started all the same is tracked, so that the failed case leaves no node.
failed_start(Opts) ->
    case gen_cnode:start(Opts) of
        {ok, Owner} = Started -> track({cnode, Owner}), Started;
        Error -> Error
    end.

%% Cleans up what was tracked since the last reap, and logs how it went.
reap() ->
    Ref = make_ref(),
    ?REAPER ! {reap, self(), Ref},
    receive {Ref, Results} -> [ct:log("reaped ~p: ~p", [T, R]) || {T, R} <- Results], ok
    after 60000 -> ct:log("reaper did not answer")
    end.

reaper(Things) ->
    receive
        {track, Thing} ->
            reaper([Thing | Things]);
        {reap, From, Ref} ->
            From ! {Ref, [{T, catch cleanup(T)} || T <- Things]},
            reaper([]);
        stop ->
            [catch cleanup(T) || T <- Things],
            ok
    end.

cleanup({peer, Peer}) ->
    case is_process_alive(Peer) of
        true -> catch peer:stop(Peer);
        false -> already_down
    end;
cleanup({cnode, Owner}) ->
    case is_process_alive(Owner) of
        true -> catch gen_cnode:stop(Owner);
        false -> already_down
    end;
cleanup({os_pid, OsPid}) ->
    case os_alive(OsPid) of
        true -> os:cmd("kill -KILL " ++ integer_to_list(OsPid)), killed;
        false -> already_down
    end;
cleanup({pid, Pid}) ->
    case is_process_alive(Pid) of
        true -> exit(Pid, kill), killed;
        false -> already_down
    end;
%% A server a case started: killed, so that no name or memory outlives the
%% case (a target that cannot kill yet keeps it: that is its bug to show).
cleanup({server, Pid}) ->
    exit(Pid, kill).

%%% Waiting

%% ok once Fun() returns true; error({wait_until_timed_out, Last}) after
%% Timeout ms, Last being what Fun last returned (or raised).
wait_until(Fun, Timeout) ->
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    wait_until_(Fun, Deadline).

wait_until_(Fun, Deadline) ->
    case catch Fun() of
        true ->
            ok;
        Other ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> error({wait_until_timed_out, Other});
                false -> timer:sleep(20), wait_until_(Fun, Deadline)
            end
    end.

%%% C node logs

%% The lines of a C node's log in which AddressSanitizer, LeakSanitizer or
%% UndefinedBehaviorSanitizer reported something ([] if there is no log).
sanitizer_reports(Log) ->
    case file:read_file(Log) of
        {ok, Text} ->
            [L || L <- binary:split(Text, <<"\n">>, [global]),
                  binary:match(L, [<<"AddressSanitizer">>, <<"LeakSanitizer">>,
                                   <<"runtime error:">>, <<"UndefinedBehaviorSanitizer">>])
                      =/= nomatch];
        {error, _} ->
            []
    end.

%% soak: what `make soak` runs (tools/run-soak): the C node under 10,000
%% concurrent callers from four BEAM nodes (two OTP 25 on the host, two OTP
%% 27 from the chroot of tools/otp27-chroot when it is there), while a fifth
%% node keeps connecting, calling, monitoring, linking and disconnecting.
%%
%% Every caller owns its keys and checks every answer: a put then a get
%% must give back what it put, a cast put followed by a get too (one
%% sender's order). A wrong answer or a call that times out (30 s) is
%% counted, never retried. The C node's resident size is read every second
%% from /proc. The report (also _build/soak/report.md) gives the calls, the
%% wrong and lost answers, and the RSS curve; the run fails if one answer
%% was wrong or lost, or if the RSS grew by more than 5% over the last
%% third (the first seconds fill what the node keeps for reuse).
%%
%% Environment: SOAK_SECONDS (60), SOAK_CALLERS (10000, over the four
%% nodes), SOAK_CNODE_EXE (priv/gen_cnode), SOAK_OUT (_build/soak),
%% GEN_CNODE_CHROOT (the OTP 27 chroot).
-module(soak).

-export([main/0]).
-export([callers/4, churn_round/2]).

-define(CALL_TIMEOUT, 30000).

main() ->
    try run() of
        ok -> halt(0);
        failed -> halt(1)
    catch
        Class:Reason:Stack ->
            io:format("soak: ~p:~p~n~p~n", [Class, Reason, Stack]),
            halt(2)
    end.

run() ->
    Seconds = env_int("SOAK_SECONDS", 60),
    Callers = env_int("SOAK_CALLERS", 10000),
    Out = os:getenv("SOAK_OUT", "_build/soak"),
    Exe = os:getenv("SOAK_CNODE_EXE", "priv/gen_cnode"),
    {ok, Owner} = gen_cnode:start(#{name => 'soak@127.0.0.1', executable => Exe,
                                    log => filename:join(Out, "cnode.log")}),
    OsPid = gen_cnode:os_pid(Owner),
    Node = gen_cnode:node(Owner),
    Clients = start_clients(),
    io:format("soak: C node ~p (os pid ~p, ~s); ~b callers on ~p for ~b s~n",
              [Node, OsPid, Exe, Callers, [{N, R} || {_, N, R} <- Clients], Seconds]),
    Deadline = erlang:monotonic_time(millisecond) + Seconds * 1000,
    Per = Callers div length(Clients),
    Self = self(),
    %% (Each node's monotonic clock has its own origin: they get a duration.)
    Runs = [spawn_link(fun() ->
                               Self ! {result, N, peer:call(P, ?MODULE, callers,
                                                            [Node, N, Per, Seconds * 1000],
                                                            Seconds * 1000 + 120000)}
                       end) || {P, N, _} <- Clients],
    Churner = spawn_link(fun() -> Self ! {churn, churn(Node, Deadline, 0, [])} end),
    Rss = sample_rss(OsPid, Deadline, []),
    Results = [receive {result, N, R} -> {N, R} end || _ <- Runs],
    Churn = receive {churn, C} -> C end,
    _ = Churner,
    [catch peer:stop(P) || {P, _, _} <- Clients],
    Stop = gen_cnode:stop(Owner),
    report(Out, Node, Results, Churn, Rss, Stop).

env_int(Var, Default) ->
    case os:getenv(Var) of
        false -> Default;
        "" -> Default;
        V -> list_to_integer(V)
    end.

%%% Client nodes

start_clients() ->
    {ok, Bin, File} = {ok, element(2, code:get_object_code(?MODULE)), "soak.erl"},
    Host = [start_peer(list_to_atom("soak_c25_" ++ integer_to_list(I)), host) || I <- [1, 2]],
    Other = case chroot_runtime() of
                none ->
                    io:format("soak: no OTP 27 chroot: all four client nodes run OTP ~s~n",
                              [erlang:system_info(otp_release)]),
                    [start_peer(list_to_atom("soak_c25_" ++ integer_to_list(I)), host) || I <- [3, 4]];
                Runtime ->
                    [start_peer(list_to_atom("soak_c27_" ++ integer_to_list(I)), Runtime) || I <- [1, 2]]
            end,
    Clients = Host ++ Other,
    [{module, ?MODULE} = peer:call(P, code, load_binary, [?MODULE, File, Bin]) || {P, _, _} <- Clients],
    Clients.

start_peer(Name, host) ->
    {ok, P, N} = peer:start(#{name => Name, host => "127.0.0.1", longnames => true,
                              connection => standard_io,
                              args => ["-setcookie", atom_to_list(erlang:get_cookie()),
                                       "+P", "1000000"],
                              wait_boot => 30000}),
    {P, N, peer:call(P, erlang, system_info, [otp_release])};
start_peer(Name, {Chroot, Dir}) ->
    Exec = {Chroot, [Dir, "/usr/bin/env", "-i", "HOME=/root", "PATH=/usr/bin:/bin", "LANG=C.UTF-8",
                     "ERL_EPMD_PORT=" ++ os:getenv("ERL_EPMD_PORT", "4369"), "/usr/bin/erl"]},
    {ok, P, N} = peer:start(#{name => Name, host => "127.0.0.1", longnames => true,
                              connection => standard_io, exec => Exec,
                              args => ["-setcookie", atom_to_list(erlang:get_cookie()),
                                       "+P", "1000000"],
                              wait_boot => 60000}),
    {P, N, peer:call(P, erlang, system_info, [otp_release])}.

chroot_runtime() ->
    Dir = os:getenv("GEN_CNODE_CHROOT", "/var/cache/gen_cnode/trixie"),
    Chroot = os:find_executable("chroot", "/usr/sbin:/usr/bin:/sbin:/bin"),
    case Chroot =/= false andalso filelib:is_regular(filename:join(Dir, "usr/bin/erl"))
        andalso string:trim(os:cmd("id -u")) =:= "0" of
        true -> {Chroot, Dir};
        false -> none
    end.

%%% Callers (run on the client nodes)

%% N callers for Ms milliseconds. Returns #{calls, wrong, lost, examples}.
callers(CNode, Tag, N, Ms) ->
    Kv = {kv, CNode},
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    Self = self(),
    Pids = [spawn(fun() -> Self ! {done, self(), caller(Kv, {Tag, I}, Deadline, 0, 0, 0, [])} end)
            || I <- lists:seq(1, N)],
    lists:foldl(fun(Pid, #{calls := C, wrong := W, lost := L, examples := E}) ->
                        receive {done, Pid, {C1, W1, L1, E1}} ->
                                #{calls => C + C1, wrong => W + W1, lost => L + L1,
                                  examples => lists:sublist(E1 ++ E, 5)}
                        end
                end, #{calls => 0, wrong => 0, lost => 0, examples => []}, Pids).

caller(Kv, Key, Deadline, Calls, Wrong, Lost, Ex) ->
    case erlang:monotonic_time(millisecond) >= Deadline of
        true ->
            {Calls, Wrong, Lost, Ex};
        false ->
            V = {Key, <<Calls:32>>}, %% the same size every time: the data does not grow
            R = try
                    case Calls rem 3 of
                        0 -> ok = gen_server:cast(Kv, {put, Key, V});
                        _ -> ok = gen_server:call(Kv, {put, Key, V}, ?CALL_TIMEOUT)
                    end,
                    gen_server:call(Kv, {get, Key}, ?CALL_TIMEOUT)
                catch
                    exit:{timeout, _} -> lost;
                    C:E -> {C, E}
                end,
            case R of
                V -> caller(Kv, Key, Deadline, Calls + 2, Wrong, Lost, Ex);
                lost -> caller(Kv, Key, Deadline, Calls + 2, Wrong, Lost + 1, Ex);
                Other -> caller(Kv, Key, Deadline, Calls + 2, Wrong + 1, Lost,
                                lists:sublist([{Key, V, Other} | Ex], 3))
            end
    end.

%%% The churning node: a new peer every round, which calls, monitors,
%%% start_links a server, and is stopped (a disconnect) with all of it held.

churn(CNode, Deadline, Rounds, Errors) ->
    case erlang:monotonic_time(millisecond) >= Deadline - 3000 of
        true ->
            #{rounds => Rounds, errors => lists:sublist(Errors, 5)};
        false ->
            Name = list_to_atom("soak_churn_" ++ integer_to_list(Rounds)),
            {P, _, _} = start_peer(Name, host),
            {ok, Bin, File} = {ok, element(2, code:get_object_code(?MODULE)), "soak.erl"},
            {module, ?MODULE} = peer:call(P, code, load_binary, [?MODULE, File, Bin]),
            R = (catch peer:call(P, ?MODULE, churn_round, [CNode, Rounds], 60000)),
            peer:stop(P),
            churn(CNode, Deadline, Rounds + 1, case R of ok -> Errors; _ -> [R | Errors] end)
    end.

%% On a churning node: 50 processes with a monitor of kv, a linked server,
%% a pending {wait_for, _} on the counter, and a few calls; left as they are.
churn_round(CNode, _Round) ->
    Kv = {kv, CNode},
    Self = self(),
    Pids = [spawn(fun() ->
                          _ = monitor(process, Kv),
                          K = {churn, I}, %% the same keys every round: the data stays the same size
                          ok = gen_server:call(Kv, {put, K, I}, ?CALL_TIMEOUT),
                          I = gen_server:call(Kv, {get, K}, ?CALL_TIMEOUT),
                          {ok, Pid} = gen_server:call({gen_cnode, CNode}, {start_link, kv, []},
                                                      ?CALL_TIMEOUT),
                          ok = gen_server:call(Pid, {put, a, 1}, ?CALL_TIMEOUT),
                          Self ! {ready, self()},
                          catch gen_server:call({counter, CNode}, {wait_for, 1 bsl 60}, infinity)
                  end) || I <- lists:seq(1, 50)],
    [receive {ready, Pid} -> ok after ?CALL_TIMEOUT -> error({churn_caller_stuck, Pid}) end
     || Pid <- Pids],
    ok.

%%% RSS

sample_rss(OsPid, Deadline, Acc) ->
    Now = erlang:monotonic_time(millisecond),
    case Now >= Deadline of
        true ->
            lists:reverse(Acc);
        false ->
            timer:sleep(1000),
            sample_rss(OsPid, Deadline, [rss_kb(OsPid) | Acc])
    end.

rss_kb(OsPid) ->
    {ok, Status} = file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/status"),
    {match, [Kb]} = re:run(Status, "VmRSS:\\s+(\\d+)", [{capture, all_but_first, list}]),
    list_to_integer(Kb).

%%% Report

report(Out, Node, Results, Churn, Rss, Stop) ->
    Calls = lists:sum([maps:get(calls, R) || {_, R} <- Results]),
    Wrong = lists:sum([maps:get(wrong, R) || {_, R} <- Results]),
    Lost = lists:sum([maps:get(lost, R) || {_, R} <- Results]),
    %% The first seconds fill what the node keeps for reuse (connection
    %% buffers, recycled monitor records); a leak keeps rising. Flat: the
    %% last third does not grow by more than 5%. (The callers' values keep
    %% one size: a value that grew, say an integer passing 255, would grow
    %% the store, not leak.)
    Third = lists:nthtail(2 * length(Rss) div 3, Rss),
    Growth = (lists:max(Third) - hd(Third)) / max(1, hd(Third)),
    Flat = Growth =< 0.05,
    Pass = Wrong =:= 0 andalso Lost =:= 0 andalso Flat andalso Stop =:= ok
        andalso maps:get(errors, Churn) =:= [],
    Lines =
        [io_lib:format("Soak of ~p: ~b s, ~b callers on ~b nodes (~s), a churning node (~b rounds of connect, "
                       "50 callers with monitors, links and pending calls, disconnect).~n~n",
                       [Node, length(Rss), env_int("SOAK_CALLERS", 10000), length(Results),
                        string:join([atom_to_list(N) || {N, _} <- Results], ", "),
                        maps:get(rounds, Churn)]),
         io_lib:format("| client node | calls | wrong | lost |~n|---|---|---|---|~n", []),
         [io_lib:format("| ~p | ~b | ~b | ~b |~n",
                        [N, maps:get(calls, R), maps:get(wrong, R), maps:get(lost, R)])
          || {N, R} <- Results],
         io_lib:format("| all | ~b | ~b | ~b |~n~n", [Calls, Wrong, Lost]),
         io_lib:format("Churn errors: ~p. Examples of wrong answers: ~p.~n~n",
                       [maps:get(errors, Churn), lists:append([maps:get(examples, R) || {_, R} <- Results])]),
         io_lib:format("C node RSS, kB, one sample a second:~n~s~n~n",
                       [string:join([integer_to_list(K) || K <- Rss], " ")]),
         io_lib:format("RSS: ~b kB after 1 s, at most ~b kB; over the last third from ~b to at most "
                       "~b kB (~.1f%); stopped: ~p.~n",
                       [hd(Rss), lists:max(Rss), hd(Third), lists:max(Third), 100 * Growth, Stop]),
         io_lib:format("Result: ~s~n", [case Pass of true -> "pass"; false -> "FAIL" end])],
    Text = iolist_to_binary(Lines),
    ok = file:write_file(filename:join(Out, "report.md"), Text),
    io:put_chars(Text),
    case Pass of true -> ok; false -> failed end.

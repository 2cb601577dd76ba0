%% kv_bench: the client node of `make bench` (started by tools/run-bench).
%%
%% Launches the KeyValue servers as OS processes of its own -- the C node
%% (priv/gen_cnode --quiet) and the same server written in Elixir
%% (bench/kv_server.ex) on a BEAM node, once with default flags and once with
%% scheduler busy-waiting off -- drives them from this one node over real
%% distribution on 127.0.0.1, and prints one table of every figure for every
%% server with the ratios C / BEAM. Every figure runs its repetitions
%% interleaved (C, BEAM, BEAM no-busy-wait, C, BEAM, ...) so drift hits all
%% servers alike. Server CPU comes from /proc/PID/stat (utime + stime of the
%% server's OS process), memory from VmRSS in /proc/PID/status; the client's
%% own CPU is measured the same way and reported beside.
%%
%% Settings come from the environment (tools/run-bench documents them); each
%% launched server's OS pid is appended to $BENCH_PIDFILE so the shell script
%% can kill whatever is left if this node dies.
-module(kv_bench).
-export([main/0, summary/1]).

-define(VALUE_BYTES, 100).
-define(CALL_TIMEOUT, 120000).
-define(START_TIMEOUT_MS, 30000).
-define(NBW_FLAGS, ["+sbwt", "none", "+sbwtdcpu", "none", "+sbwtdio", "none"]).

main() ->
    Code = try run(config()) of
               ok -> 0
           catch
               Class:Reason:Stack ->
                   io:format(standard_error, "kv_bench: ~p:~p~n~p~n", [Class, Reason, Stack]),
                   1
           end,
    erlang:halt(Code).

%%% Settings

config() ->
    Quick = os:getenv("BENCH_QUICK", "0") =:= "1",
    D = fun(Full, Q) -> case Quick of true -> Q; false -> Full end end,
    Out = os:getenv("BENCH_OUT", "_build/bench"),
    #{quick => Quick,
      repeat => int_env("BENCH_REPEAT", D(3, 1)),
      lat_calls => int_env("BENCH_LAT_CALLS", D(100000, 5000)),
      tp_seconds => num_env("BENCH_TP_SECONDS", D(1.5, 0.3)),
      tp_callers => list_env("BENCH_TP_CALLERS", [1, 8, 64, 512]),
      casts => int_env("BENCH_CASTS", D(300000, 20000)),
      cast_senders => list_env("BENCH_CAST_SENDERS", [1, 8]),
      mem_entries => int_env("BENCH_MEM_ENTRIES", D(1000000, 50000)),
      mem_batch => int_env("BENCH_MEM_BATCH", 10000),
      preload => int_env("BENCH_PRELOAD", D(10000, 1000)),
      warmup => int_env("BENCH_WARMUP_CALLS", D(20000, 2000)),
      shard => os:getenv("BENCH_SHARD", "1") =:= "1",
      shard_callers => int_env("BENCH_SHARD_CALLERS", 64),
      servers => [list_to_atom(S) || S <- string:lexemes(
                                               os:getenv("BENCH_SERVERS", "c,beam,c_nospin,beam_nbw"), ", ")],
      cnode_exe => os:getenv("BENCH_CNODE_EXE", "priv/gen_cnode"),
      erl_exe => os:find_executable("erl"),
      bench_ebin => os:getenv("BENCH_EBIN", filename:join(Out, "ebin")),
      elixir_ebin => os:getenv("ELIXIR_EBIN", code:lib_dir(elixir, ebin)),
      out => Out,
      pidfile => os:getenv("BENCH_PIDFILE", filename:join(Out, "pids")),
      quiet_wait => num_env("BENCH_QUIET_WAIT", D(30.0, 0.0)),
      clk_tck => int_env("BENCH_CLK_TCK", 100)}.

int_env(Name, Default) ->
    case os:getenv(Name) of
        false -> Default;
        "" -> Default;
        S -> list_to_integer(S)
    end.

num_env(Name, Default) ->
    case os:getenv(Name) of
        false -> Default;
        "" -> Default;
        S -> try list_to_float(S) catch error:badarg -> float(list_to_integer(S)) end
    end.

list_env(Name, Default) ->
    case os:getenv(Name) of
        false -> Default;
        "" -> Default;
        S -> [list_to_integer(X) || X <- string:lexemes(S, ", ")]
    end.

%%% The run

run(Cfg = #{servers := Kinds, repeat := R}) ->
    T0 = erlang:monotonic_time(millisecond),
    persistent_term:put({?MODULE, t0}, T0),
    ok = filelib:ensure_dir(filename:join([maps:get(out, Cfg), "logs", "x"])),
    say("client ~s (os pid ~s), servers ~w, ~b repetitions~s; load average ~s",
        [node(), os:getpid(), Kinds, R, case maps:get(quick, Cfg) of true -> " (BENCH_QUICK)"; false -> "" end,
         loadavg()]),
    %% Long-lived servers for latency, throughput and casts, each preloaded.
    Servers = [begin
                   S = launch(K, Cfg),
                   preload(S, Cfg),
                   warm_up(S, Cfg),
                   S
               end || K <- Kinds],
    figure_latency(Servers, Cfg),
    [figure_throughput(Servers, N, Cfg) || N <- maps:get(tp_callers, Cfg)],
    [figure_casts(Servers, N, Cfg) || N <- maps:get(cast_senders, Cfg)],
    [record_busy_poll(S) || S <- Servers],
    [stop(S) || S <- Servers],
    %% One store over one C node and over three (gen_cnode_shard).
    maps:get(shard, Cfg) andalso lists:member(c, Kinds) andalso figure_shard(Cfg),
    %% Fresh servers: memory per entry, and the startup of each.
    [figure_memory(Kinds, KeyType, Cfg) || KeyType <- [int, string]],
    Secs = (erlang:monotonic_time(millisecond) - T0) / 1000,
    say("done; load average ~s", [loadavg()]),
    Table = table(Cfg, Secs),
    io:put_chars(Table),
    ok = file:write_file(filename:join(maps:get(out, Cfg), "table.md"), Table),
    ok = file:write_file(filename:join(maps:get(out, Cfg), "results.eterm"),
                         io_lib:format("~p.~n", [get()])),
    ok = file:write_file(filename:join(maps:get(out, Cfg), "worst.eterm"),
                         io_lib:format("~p.~n", [worst_ratios(Cfg)])),
    ok.

%% What the C node's busy-poll policy decided during the run (its stats).
record_busy_poll(#{kind := K, node := Node}) ->
    case is_c(K) andalso (catch gen_server:call({gen_cnode, Node}, stats, 10000)) of
        false -> ok;
        #{busy_poll := BP} -> put({busy_poll, K}, BP);
        Other -> say("no stats from ~s: ~p", [Node, Other])
    end.

is_c(K) -> lists:member(K, [c, c_nospin, c_spin, c_nocoalesce]).

busy_poll_text(Kinds) ->
    [io_lib:format("~s busy-poll at the end of the run: ~s~n",
                   [label(K), case get({busy_poll, K}) of
                                  #{mode := fixed, window_us := W} ->
                                      io_lib:format("fixed, ~b us", [W]);
                                  #{mode := Mode, polling := P, trials := T,
                                    polling_turnaround_us := On, sleeping_turnaround_us := Off} ->
                                      io_lib:format("~s, polling: ~s; last trial (of ~b): mean turnaround "
                                                    "~.1f us polling, ~.1f us sleeping",
                                                    [Mode, P, T, On, Off]);
                                  _ -> "unknown"
                              end])
     || K <- Kinds, is_c(K), get({busy_poll, K}) =/= undefined].

%% [{Label, Target, WorstRatio}] of the figures with a target, C against the
%% BEAM with its defaults: what `BENCH_RUNS=N make bench` sums up.
worst_ratios(Cfg) ->
    [{lists:flatten(Label), Target, worst_ratio(Fig, c, beam, Target)}
     || {Fig, Label, _Unit, Target} <- figures(Cfg), Target =/= none].

%% The summary of several runs' worst.eterm files: per figure, the worst
%% C/BEAM ratio of each run, the worst of all, and whether that meets the
%% target. Printed as a markdown table.
summary(Files) ->
    Runs = [begin {ok, [W]} = file:consult(F), W end || F <- Files],
    Labels = [L || {L, _, _} <- hd(Runs)],
    Head = ["figure (worst C/BEAM of each run)"]
        ++ [io_lib:format("run ~b", [I]) || I <- lists:seq(1, length(Runs))]
        ++ ["worst of all", "target", "met"],
    Rows = [begin
                {_, Target, _} = lists:keyfind(L, 1, hd(Runs)),
                Rs = [case lists:keyfind(L, 1, W) of {_, _, R} -> R; false -> undefined end || W <- Runs],
                Known = [R || R <- Rs, R =/= undefined],
                Worst = case {Known, Target} of
                            {[], _} -> undefined;
                            {_, {ge, _}} -> lists:min(Known);
                            _ -> lists:max(Known)
                        end,
                [L] ++ [fmt_ratio(R) || R <- Rs] ++ [fmt_ratio(Worst), target_text(Target), met(Target, [Worst])]
            end || L <- Labels],
    io:put_chars(md([Head | Rows])),
    halt(0).

say(Fmt, Args) ->
    T = erlang:monotonic_time(millisecond) - persistent_term:get({?MODULE, t0}, 0),
    io:format(standard_error, "kv_bench ~5.1f s: " ++ Fmt ++ "~n", [T / 1000 | Args]).

%%% Servers: launch, first call, stop

label(c) -> "C node";
label(c_nospin) -> "C no-spin";
label(c_nocoalesce) -> "C no-coalesce";
label(c_spin) -> "C spin";
label(beam) -> "BEAM";
label(beam_nbw) -> "BEAM no-bw".

command({c_shard, Group}, Node, Cfg) ->
    {Exe, Args} = command(c, Node, Cfg),
    {Exe, ["--pg-join", atom_to_list(Group) | Args]};
command(Kind, Node, Cfg) when Kind =:= c; Kind =:= c_nospin; Kind =:= c_spin; Kind =:= c_nocoalesce ->
    Flags = case Kind of
                c -> [];
                c_nospin -> ["--busy-poll", "0"];
                c_spin -> ["--busy-poll", "100"];
                c_nocoalesce -> ["--coalesce", "0"]
            end,
    {maps:get(cnode_exe, Cfg),
     Flags ++ ["--name", atom_to_list(Node), "--cookie", atom_to_list(erlang:get_cookie()),
               "--register", "kv", "--quiet", "--watch-stdin"]};
command(Kind, Node, Cfg) when Kind =:= beam; Kind =:= beam_nbw ->
    Flags = case Kind of beam -> []; beam_nbw -> ?NBW_FLAGS end,
    {maps:get(erl_exe, Cfg),
     Flags ++ ["-name", atom_to_list(Node), "-setcookie", atom_to_list(erlang:get_cookie()),
               "-start_epmd", "false", "-noshell", "-noinput",
               "-pa", maps:get(elixir_ebin, Cfg), "-pa", maps:get(bench_ebin, Cfg),
               "-eval", "bench_boot:start('" ++ atom_to_list(node()) ++ "')"]}.

%% Starts a server's OS process and returns once a real gen_server call to it
%% has been answered; startup_ms is the time from just before the spawn to
%% that answer.
launch(Kind, Cfg) ->
    Name = case Kind of {c_shard, G} -> G; _ -> Kind end,
    Node = list_to_atom(lists:flatten(io_lib:format("kvb_~s_~b@127.0.0.1",
                                                   [Name, erlang:unique_integer([positive])]))),
    {Exe, Args} = command(Kind, Node, Cfg),
    Log = filename:join([maps:get(out, Cfg), "logs", atom_to_list(Node) ++ ".log"]),
    Main = self(),
    Owner = spawn(fun() -> owner_init(Main, Node, Exe, Args, Log) end),
    {OsPid, T0} = receive {Owner, launched, P, T} -> {P, T} end,
    ok = file:write_file(maps:get(pidfile, Cfg), io_lib:format("~b ~s~n", [OsPid, Node]), [append]),
    T1 = await_first_call({kv, Node}, T0 + ?START_TIMEOUT_MS * 1000000),
    check_exe(Kind, OsPid),
    #{kind => Kind, node => Node, dest => {kv, Node}, os_pid => OsPid, owner => Owner,
      startup_ms => (T1 - T0) / 1.0e6}.

await_first_call(Dest, Deadline) ->
    try gen_server:call(Dest, {get, '$bench_probe'}, 5000) of
        _ -> erlang:monotonic_time(nanosecond)
    catch
        exit:Reason ->
            case erlang:monotonic_time(nanosecond) > Deadline of
                true -> error({no_first_call, Dest, Reason});
                false -> await_first_call(Dest, Deadline)
            end
    end.

check_exe(Kind, OsPid) ->
    Exe = case file:read_link("/proc/" ++ integer_to_list(OsPid) ++ "/exe") of
              {ok, E} -> filename:basename(E);
              _ -> "?"
          end,
    Want = case Kind of beam -> "beam.smp"; beam_nbw -> "beam.smp"; _ -> "gen_cnode" end,
    Exe =:= Want orelse say("warning: os pid ~b of ~s is ~s, not ~s: its CPU and memory "
                            "figures are not the server's", [OsPid, Kind, Exe, Want]).

%% One process per server owns its port: keeps its output in a log file, stops
%% it on request (SIGTERM, then SIGKILL), and ends the whole run when the
%% server exits unasked.
owner_init(Main, Node, Exe, Args, Log) ->
    {ok, Fd} = file:open(Log, [write, raw, binary]),
    T0 = erlang:monotonic_time(nanosecond),
    Port = open_port({spawn_executable, Exe},
                     [{args, Args}, exit_status, use_stdio, stderr_to_stdout, binary, hide]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    Main ! {self(), launched, OsPid, T0},
    owner_loop(Port, OsPid, Node, Fd, Log).

owner_loop(Port, OsPid, Node, Fd, Log) ->
    receive
        {Port, {data, Data}} ->
            ok = file:write(Fd, Data),
            owner_loop(Port, OsPid, Node, Fd, Log);
        {Port, {exit_status, Status}} ->
            say("server ~s (os pid ~b) exited unasked with status ~b; its output: ~s",
                [Node, OsPid, Status, Log]),
            erlang:halt(1);
        {stop, From} ->
            signal("TERM", OsPid),
            Status = receive {Port, {exit_status, S}} -> S
                     after 10000 ->
                             signal("KILL", OsPid),
                             receive {Port, {exit_status, S}} -> {killed, S}
                             after 5000 -> {killed, no_status}
                             end
                     end,
            file:close(Fd),
            From ! {self(), stopped, Status}
    end.

signal(Sig, OsPid) ->
    _ = os:cmd("kill -" ++ Sig ++ " " ++ integer_to_list(OsPid) ++ " 2>/dev/null"),
    ok.

stop(#{owner := Owner, node := Node}) ->
    Owner ! {stop, self()},
    receive
        {Owner, stopped, 0} -> ok;
        {Owner, stopped, Status} -> say("server ~s stopped with status ~p", [Node, Status])
    end.

%%% /proc

%% utime + stime of an OS process, in clock ticks.
cpu_ticks(OsPid) ->
    {ok, Stat} = file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/stat"),
    {Pos, _} = lists:last(binary:matches(Stat, <<")">>)),
    <<_:(Pos + 2)/binary, Rest/binary>> = Stat,
    Fields = binary:split(Rest, <<" ">>, [global]),
    binary_to_integer(lists:nth(12, Fields)) + binary_to_integer(lists:nth(13, Fields)).

%% Time on a CPU of every thread of an OS process, in nanoseconds: the
%% scheduler's own account (/proc/PID/task/TID/schedstat, first field), exact
%% where utime + stime are sampled at each clock tick and so charge a process
%% that wakes up often for short bursts by where the ticks happen to fall.
cpu_ns(OsPid) ->
    Dir = "/proc/" ++ integer_to_list(OsPid) ++ "/task",
    {ok, Tids} = file:list_dir(Dir),
    lists:sum([case file:read_file(filename:join([Dir, T, "schedstat"])) of
                   {ok, B} -> binary_to_integer(hd(binary:split(B, <<" ">>)));
                   {error, _} -> 0      % a thread that ended meanwhile
               end || T <- Tids]).

%% TCP segments sent by the whole machine (/proc/net/snmp, OutSegs): on
%% loopback, both directions of every connection.
tcp_segments() ->
    {ok, Snmp} = file:read_file("/proc/net/snmp"),
    [Names, Values] = [binary:split(L, <<" ">>, [global, trim_all])
                       || <<"Tcp:", _/binary>> = L <- binary:split(Snmp, <<"\n">>, [global])],
    {_, Segs} = lists:keyfind(<<"OutSegs">>, 1, lists:zip(Names, Values)),
    binary_to_integer(Segs).

%% Busy clock ticks of the whole machine (every CPU), from /proc/stat.
machine_ticks() ->
    {ok, Stat} = file:read_file("/proc/stat"),
    [Line | _] = binary:split(Stat, <<"\n">>),
    [<<"cpu">>, User, Nice, System, _Idle, _IoWait, Irq, SoftIrq, Steal | _] =
        binary:split(Line, <<" ">>, [global, trim_all]),
    lists:sum([binary_to_integer(X) || X <- [User, Nice, System, Irq, SoftIrq, Steal]]).

loadavg() ->
    {ok, L} = file:read_file("/proc/loadavg"),
    lists:join(" ", lists:sublist(string:lexemes(binary_to_list(L), " "), 3)).

%% VmRSS in bytes.
rss(OsPid) ->
    {ok, Status} = file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/status"),
    [Line] = [L || L <- binary:split(Status, <<"\n">>, [global]), binary:match(L, <<"VmRSS:">>) =/= nomatch],
    [_, Kb, <<"kB">>] = binary:split(Line, [<<" ">>, <<"\t">>], [global, trim_all]),
    binary_to_integer(Kb) * 1024.

%% Runs Fun (which returns the number of operations it did, or {Ops, Extra})
%% and measures wall time and the CPU of the server and of this client node.
measure(#{os_pid := OsPid}, Cfg, Fun) ->
    Me = list_to_integer(os:getpid()),
    Tck = maps:get(clk_tck, Cfg),
    S0 = cpu_ticks(OsPid), C0 = cpu_ticks(Me), A0 = machine_ticks(),
    Sn0 = cpu_ns(OsPid), Cn0 = cpu_ns(Me), G0 = tcp_segments(),
    T0 = erlang:monotonic_time(nanosecond),
    {Ops, Extra, Wall} = case Fun() of
                             {O, E, W} -> {O, E, W};
                             {O, E} -> {O, E, undefined};
                             O -> {O, undefined, undefined}
                         end,
    T1 = erlang:monotonic_time(nanosecond), S1 = cpu_ticks(OsPid), C1 = cpu_ticks(Me),
    A1 = machine_ticks(), Sn1 = cpu_ns(OsPid), Cn1 = cpu_ns(Me), G1 = tcp_segments(),
    WallS = case Wall of undefined -> (T1 - T0) / 1.0e9; _ -> Wall end,
    ServerS = (S1 - S0) / Tck, ClientS = (C1 - C0) / Tck,
    OtherS = max(0, (A1 - A0) / Tck - ServerS - ClientS),
    #{ops => Ops, extra => Extra, wall => WallS,
      server_us_per_op => (Sn1 - Sn0) / 1000 / Ops, client_us_per_op => (Cn1 - Cn0) / 1000 / Ops,
      server_us_per_op_ticks => ServerS * 1.0e6 / Ops,
      segments_per_op => (G1 - G0) / Ops,
      server_core => (Sn1 - Sn0) / (T1 - T0), client_core => (Cn1 - Cn0) / (T1 - T0),
      other_core => OtherS / ((T1 - T0) / 1.0e9)}.

%%% Results, kept in the process dictionary: {Figure, Kind} -> [Value]

add(Figure, Kind, Value) ->
    put({Figure, Kind}, [Value | case get({Figure, Kind}) of undefined -> []; L -> L end]).

add_cpu(Workload, Kind, M) ->
    add({cpu, Workload}, Kind, M).

%% A throughput measurement M (its rate in extra) of server Kind: the rate as
%% Figure, the server's CPU per operation as CpuFigure, the CPU beside it, and
%% a line on the console.
add_rate(Figure, CpuFigure, Kind, M, Op) ->
    Rate = maps:get(extra, M),
    add(Figure, Kind, Rate),
    add(CpuFigure, Kind, maps:get(server_us_per_op, M)),
    add_cpu(Figure, Kind, M),
    say("  ~-10s ~b ~ss/s  server ~.2f us/~s (~.1f core)  client ~.2f us/~s (~.1f core)  other ~.1f core",
        [label(Kind), round(Rate), Op, maps:get(server_us_per_op, M), Op, maps:get(server_core, M),
         maps:get(client_us_per_op, M), Op, maps:get(client_core, M), maps:get(other_core, M)]).

%%% Workloads

value(I) ->
    <<I:64, 0:((?VALUE_BYTES - 8) * 8)>>.

preload(#{dest := Dest}, #{preload := N, mem_batch := B}) ->
    load(Dest, fun(I) -> I end, N, B).

%% Puts keys KeyFun(1..N) with casts, B at a time, each batch followed by a call
%% (ordered after the casts of this process) so the mailbox stays bounded.
load(Dest, KeyFun, N, B) ->
    load(Dest, KeyFun, 1, N, B).

load(_Dest, _KeyFun, I, N, _B) when I > N ->
    ok;
load(Dest, KeyFun, I, N, B) ->
    Last = min(N, I + B - 1),
    [gen_server:cast(Dest, {put, KeyFun(J), value(J)}) || J <- lists:seq(I, Last)],
    _ = gen_server:call(Dest, {get, KeyFun(Last)}, ?CALL_TIMEOUT),
    load(Dest, KeyFun, Last + 1, N, B).

warm_up(#{dest := Dest}, #{warmup := N, preload := P}) ->
    [gen_server:call(Dest, {get, (I rem P) + 1}, ?CALL_TIMEOUT) || I <- lists:seq(1, N)],
    ok.

each_rep(Servers, Cfg = #{repeat := R}, Fun) ->
    [[begin await_quiet(Cfg), Fun(S) end || S <- Servers] || _ <- lists:seq(1, R)],
    ok.

%% Waits (at most BENCH_QUIET_WAIT seconds) until the machine is quiet: less
%% than 0.2 of a core busy over 300 ms while this benchmark is idle, so that
%% other work on a shared machine disturbs as few measurements as possible.
await_quiet(#{quiet_wait := Max}) when Max =< 0 ->
    ok;
await_quiet(#{quiet_wait := Max, clk_tck := Tck}) ->
    Deadline = erlang:monotonic_time(millisecond) + round(Max * 1000),
    await_quiet(Deadline, Tck, 0).

await_quiet(Deadline, Tck, Waited) ->
    A0 = machine_ticks(),
    timer:sleep(300),
    Busy = (machine_ticks() - A0) / Tck / 0.3,
    if
        Busy < 0.2 ->
            Waited > 0 andalso say("  (waited ~.1f s for a quiet machine)", [Waited * 0.3]),
            ok;
        true ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true ->
                    say("  warning: the machine is busy (~.2f cores) without this benchmark; "
                        "measuring anyway", [Busy]);
                false ->
                    await_quiet(Deadline, Tck, Waited + 1)
            end
    end.

%% Sequential calls from one process: every call timed on its own.
figure_latency(Servers, Cfg = #{lat_calls := N, preload := P}) ->
    say("call latency: ~b sequential calls", [N]),
    each_rep(Servers, Cfg,
             fun(S = #{kind := K, dest := Dest}) ->
                     Main = self(),
                     M = measure(S, Cfg,
                                 fun() ->
                                         {W, Ref} = spawn_monitor(
                                                      fun() -> Main ! {self(), latencies(Dest, N, P)} end),
                                         receive {W, {Sorted, Sum}} ->
                                                 receive {'DOWN', Ref, _, _, _} -> ok end,
                                                 {N, {Sorted, Sum}}
                                         end
                                 end),
                     {Sorted, Sum} = maps:get(extra, M),
                     Pct = fun(Q) -> element(max(1, ceil(Q * N)), Sorted) / 1000 end,
                     add(lat_mean, K, Sum / N / 1000),
                     add(lat_p50, K, Pct(0.50)),
                     add(lat_p99, K, Pct(0.99)),
                     add(lat_p999, K, Pct(0.999)),
                     add(cpu_call_seq, K, maps:get(server_us_per_op, M)),
                     add_cpu(latency, K, M),
                     say("  ~-10s p50 ~.1f us  p99 ~.1f us  server ~.2f us/call (ticks ~.2f)  client ~.2f us/call",
                         [label(K), Pct(0.5), Pct(0.99), maps:get(server_us_per_op, M),
                          maps:get(server_us_per_op_ticks, M),
                          maps:get(client_us_per_op, M)])
             end).

latencies(Dest, N, P) ->
    latencies(Dest, N, P, 1, [], 0).

latencies(_Dest, 0, _P, _K, Acc, Sum) ->
    {list_to_tuple(lists:sort(Acc)), Sum};
latencies(Dest, N, P, K, Acc, Sum) ->
    T0 = erlang:monotonic_time(nanosecond),
    _ = gen_server:call(Dest, {get, K}, ?CALL_TIMEOUT),
    D = erlang:monotonic_time(nanosecond) - T0,
    latencies(Dest, N - 1, P, (K rem P) + 1, [D | Acc], Sum + D).

%% C caller processes, each calling in a loop for a fixed time; calls/s is
%% every call answered over the time from the start signal to the last answer.
figure_throughput(Servers, C, Cfg = #{tp_seconds := Secs, preload := P}) ->
    say("call throughput: ~b callers, ~.1f s", [C, Secs]),
    each_rep(Servers, Cfg,
             fun(S = #{kind := K, dest := Dest}) ->
                     Main = self(),
                     Ws = [spawn_link(fun() -> tp_worker(Main, Dest, (I * 7919) rem P + 1, P) end)
                           || I <- lists:seq(1, C)],
                     M = measure(S, Cfg,
                                 fun() ->
                                         T0 = erlang:monotonic_time(),
                                         Deadline = T0 + erlang:convert_time_unit(
                                                           round(Secs * 1000000), microsecond, native),
                                         [W ! {go, Deadline} || W <- Ws],
                                         Calls = lists:sum([receive {W, done, Nw} -> Nw end || W <- Ws]),
                                         T1 = erlang:monotonic_time(),
                                         Wall = erlang:convert_time_unit(T1 - T0, native, nanosecond) / 1.0e9,
                                         {Calls, Calls / Wall, Wall}
                                 end),
                     add_rate({tp, C}, {cpu_call_tp, C}, K, M, "call")
             end).

tp_worker(Main, Dest, K0, P) ->
    receive {go, Deadline} -> ok end,
    Main ! {self(), done, tp_loop(Dest, Deadline, K0, P, 0)}.

tp_loop(Dest, Deadline, K, P, N) ->
    _ = gen_server:call(Dest, {get, K}, ?CALL_TIMEOUT),
    case erlang:monotonic_time() < Deadline of
        true -> tp_loop(Dest, Deadline, (K rem P) + 1, P, N + 1);
        false -> N + 1
    end.

%% Senders each cast their share of {put, K, V} (existing keys, 100-byte
%% values), then make one call, answered only once their casts are applied;
%% casts/s is the total over the time from the start signal to the last
%% sender's answer.
figure_casts(Servers, Senders, Cfg = #{casts := Total, preload := P}) ->
    Each = Total div Senders,
    say("cast throughput: ~b senders x ~b casts", [Senders, Each]),
    V = value(0),
    each_rep(Servers, Cfg,
             fun(S = #{kind := K, dest := Dest}) ->
                     Main = self(),
                     Ws = [spawn_link(fun() -> cast_worker(Main, Dest, (I - 1) * Each, Each, P, V) end)
                           || I <- lists:seq(1, Senders)],
                     M = measure(S, Cfg,
                                 fun() ->
                                         T0 = erlang:monotonic_time(nanosecond),
                                         [W ! go || W <- Ws],
                                         [receive {W, applied} -> ok end || W <- Ws],
                                         Wall = (erlang:monotonic_time(nanosecond) - T0) / 1.0e9,
                                         {Each * Senders, Each * Senders / Wall, Wall}
                                 end),
                     add_rate({casts, Senders}, {cpu_cast, Senders}, K, M, "cast"),
                     add({client_cast, Senders}, K, maps:get(client_us_per_op, M)),
                     add({segments_cast, Senders}, K, maps:get(segments_per_op, M))
             end).

cast_worker(Main, Dest, Base, N, P, V) ->
    receive go -> ok end,
    cast_loop(Dest, Base, N, P, V),
    _ = gen_server:call(Dest, {get, (Base + N - 1) rem P + 1}, ?CALL_TIMEOUT),
    Main ! {self(), applied}.

cast_loop(_Dest, _I, 0, _P, _V) ->
    ok;
cast_loop(Dest, I, N, P, V) ->
    gen_server:cast(Dest, {put, I rem P + 1, V}),
    cast_loop(Dest, I + 1, N - 1, P, V).

%% One store over one C node and over three, from the same client: C
%% callers (64) each calling gen_cnode_shard:get/2 on keys spread over the
%% group for tp_seconds, the two groups in turn, repeat times. Reported: the
%% calls/s of each, their ratio, and where the machine's cores went (the
%% client node, the C nodes together), which says what bounds it here.
figure_shard(Cfg = #{tp_seconds := Secs, repeat := R, shard_callers := C, preload := P}) ->
    case pg:start(pg) of
        {ok, _} -> ok;
        {error, {already_started, _}} -> ok
    end,
    Groups = [{kvb_shard1, 1}, {kvb_shard3, 3}],
    Nodes = [{G, [launch({c_shard, G}, Cfg) || _ <- lists:seq(1, N)]} || {G, N} <- Groups],
    [await_members(G, N) || {G, N} <- Groups],
    say("one store over 1 and 3 C nodes (gen_cnode_shard): ~b callers, ~.1f s", [C, Secs]),
    [[begin
          await_quiet(Cfg),
          Ss = proplists:get_value(G, Nodes),
          Pids = [OsPid || #{os_pid := OsPid} <- Ss],
          Me = list_to_integer(os:getpid()),
          Sn0 = lists:sum([cpu_ns(X) || X <- Pids]), Cn0 = cpu_ns(Me),
          T0 = erlang:monotonic_time(),
          Deadline = T0 + erlang:convert_time_unit(round(Secs * 1000000), microsecond, native),
          Main = self(),
          Ws = [spawn_link(fun() -> Main ! {self(), shard_loop(G, Deadline, (I * 7919) rem P + 1, P, 0)} end)
                || I <- lists:seq(1, C)],
          Calls = lists:sum([receive {W, Nw} -> Nw end || W <- Ws]),
          T1 = erlang:monotonic_time(),
          Wall = erlang:convert_time_unit(T1 - T0, native, nanosecond),
          Sn1 = lists:sum([cpu_ns(X) || X <- Pids]), Cn1 = cpu_ns(Me),
          add({shard_rate, N}, c, Calls / (Wall / 1.0e9)),
          add({shard_client_core, N}, c, (Cn1 - Cn0) / Wall),
          add({shard_server_core, N}, c, (Sn1 - Sn0) / Wall),
          say("  ~b C node~s: ~b calls/s, client ~.2f cores, C nodes ~.2f cores",
              [N, plural(N), round(Calls / (Wall / 1.0e9)), (Cn1 - Cn0) / Wall, (Sn1 - Sn0) / Wall])
      end || {G, N} <- Groups] || _ <- lists:seq(1, R)],
    [stop(S) || {_, Ss} <- Nodes, S <- Ss],
    true.

await_members(Group, N) ->
    Deadline = erlang:monotonic_time(millisecond) + ?START_TIMEOUT_MS,
    await_members(Group, N, Deadline).

await_members(Group, N, Deadline) ->
    case length(gen_cnode_shard:members(Group)) of
        N -> ok;
        _ ->
            erlang:monotonic_time(millisecond) > Deadline andalso error({no_members, Group, N}),
            timer:sleep(20),
            await_members(Group, N, Deadline)
    end.

shard_loop(Group, Deadline, K, P, N) ->
    _ = gen_cnode_shard:get(Group, K),
    case erlang:monotonic_time() < Deadline of
        true -> shard_loop(Group, Deadline, (K rem P) + 1, P, N + 1);
        false -> N + 1
    end.

shard_text(Cfg) ->
    case get({{shard_rate, 1}, c}) of
        undefined ->
            "";
        _ ->
            M = fun(F, N) -> median(get({{F, N}, c})) end,
            Row = fun(N) -> [integer_to_list(N), cell(get({{shard_rate, N}, c})),
                             fmt(M(shard_client_core, N)), fmt(M(shard_server_core, N))] end,
            Cores = erlang:system_info(logical_processors),
            Busy = M(shard_client_core, 3) + M(shard_server_core, 3),
            ["\n### One store over 1 and 3 C nodes (gen_cnode_shard)\n\n",
             io_lib:format("~b callers on this client node, each calling gen_cnode_shard:get/2 "
                           "in a loop for ~.1f s; the group's members are C nodes with default "
                           "flags (--pg-join). Cores: CPU time over wall time, medians.~n~n",
                           [maps:get(shard_callers, Cfg), maps:get(tp_seconds, Cfg)]),
             md([["C nodes", "calls/s median [min-max]", "client cores", "C nodes' cores"], Row(1), Row(3)]),
             io_lib:format("~n3 nodes / 1 node: ~s (median ratio). With 3 nodes the client and "
                           "the C nodes kept ~.2f of the machine's ~b cores busy: ~s~n",
                           [fmt(M(shard_rate, 3) / M(shard_rate, 1)), Busy, Cores,
                            if
                                Busy >= 0.85 * Cores ->
                                    "the machine's cores bound it, shared by the client and the C "
                                    "nodes; more nodes only pay on more cores (or machines).";
                                true ->
                                    "the cores were not all busy: the round trips of the callers bound it."
                            end])]
    end.

%% A fresh server per figure: VmRSS after its first answered call, then after
%% N entries are in (casts in batches, each batch closed by a call).
figure_memory(Kinds, KeyType, Cfg = #{mem_entries := N, mem_batch := B, repeat := R}) ->
    say("memory: ~b entries, ~s keys, 100-byte values, fresh servers", [N, KeyType]),
    KeyFun = case KeyType of
                 int -> fun(I) -> I end;
                 string -> fun string_key/1
             end,
    [[begin
          await_quiet(Cfg),
          S = #{kind := K, os_pid := OsPid, dest := Dest, startup_ms := Ms} = launch(K, Cfg),
          add(startup, K, Ms),
          Rss0 = rss(OsPid),
          load(Dest, KeyFun, N, B),
          Size = gen_server:call(Dest, size, ?CALL_TIMEOUT),
          Size =:= N orelse error({size, K, Size, N}),
          Rss1 = rss(OsPid),
          stop(S),
          PerEntry = (Rss1 - Rss0) / N,
          add({mem, KeyType}, K, PerEntry),
          say("  ~-10s ~.1f bytes/entry (VmRSS ~.1f -> ~.1f MB)  startup ~.1f ms",
              [label(K), PerEntry, Rss0 / 1048576, Rss1 / 1048576, Ms])
      end || K <- Kinds] || _ <- lists:seq(1, R)],
    ok.

%% "key-000000" for 1, ..., "key-999999" for 1000000.
string_key(I) ->
    Digits = integer_to_binary(I - 1),
    Pad = binary:copy(<<"0">>, max(0, 6 - byte_size(Digits))),
    <<"key-", Pad/binary, Digits/binary>>.

%%% The table

%% {Figure, Label, Unit, Target}; Target is {le | ge, Ratio} or none.
figures(Cfg) ->
    [{lat_mean, "call latency, mean", "us", none},
     {lat_p50, "call latency, p50", "us", {le, 0.7}},
     {lat_p99, "call latency, p99", "us", {le, 0.7}},
     {lat_p999, "call latency, p99.9", "us", none}] ++
    [{{tp, C}, io_lib:format("call throughput, ~b caller~s", [C, plural(C)]), "calls/s",
      case C of 64 -> {ge, 1.2}; _ -> none end} || C <- maps:get(tp_callers, Cfg)] ++
    [{{casts, S}, io_lib:format("cast throughput, ~b sender~s", [S, plural(S)]), "casts/s", {ge, 1.5}}
     || S <- maps:get(cast_senders, Cfg)] ++
    [{cpu_call_seq, "server CPU per call, 1 caller (sequential)", "us", none}] ++
    [{{cpu_call_tp, C}, io_lib:format("server CPU per call, ~b callers", [C]), "us", {le, 0.6}}
     || C <- maps:get(tp_callers, Cfg), C =:= 64] ++
    [{{cpu_cast, S}, io_lib:format("server CPU per cast, ~b sender~s", [S, plural(S)]), "us", none}
     || S <- maps:get(cast_senders, Cfg)] ++
    [{{client_cast, S}, io_lib:format("client CPU per cast, ~b sender~s", [S, plural(S)]), "us", {le, 1.0}}
     || S <- maps:get(cast_senders, Cfg)] ++
    [{{segments_cast, S}, io_lib:format("TCP segments per cast, ~b sender~s", [S, plural(S)]), "segments",
      {le, 2.0}} || S <- maps:get(cast_senders, Cfg)] ++
    [{{mem, int}, "memory per entry, integer keys", "bytes", {le, 1 / 3}},
     {{mem, string}, "memory per entry, \"key-NNNNNN\" keys", "bytes", {le, 1 / 3}},
     {startup, "startup to first answered call", "ms", {le, 1 / 20}}].

plural(1) -> "";
plural(_) -> "s".

table(Cfg = #{servers := Kinds}, Secs) ->
    Pairs = pairs(Kinds),
    Head = ["figure", "unit"] ++ [label(K) ++ " median [min-max]" || K <- Kinds]
        ++ [pair_label(P) || P <- Pairs]
        ++ ["worst C/BEAM", "target C/BEAM",
            "met in the worst repetition (" ++ string:join([pair_label(P) || P <- Pairs], ", ") ++ ")"],
    Rows = [row(F, Kinds, Pairs) || F <- figures(Cfg)],
    CpuHead = ["workload"] ++ lists:append([[label(K) ++ " client us/op", label(K) ++ " client core",
                                             label(K) ++ " server core", label(K) ++ " other core",
                                             label(K) ++ " TCP segments/op"]
                                            || K <- Kinds]),
    CpuRows = [cpu_row(W, Kinds) || W <- [latency] ++ [{tp, C} || C <- maps:get(tp_callers, Cfg)]
                                        ++ [{casts, S} || S <- maps:get(cast_senders, Cfg)]],
    [io_lib:format("~n## Results (~s, ~b repetitions each, interleaved; run took ~b s)~n~n",
                   [case maps:get(quick, Cfg) of true -> "BENCH_QUICK"; false -> "full run" end,
                    maps:get(repeat, Cfg), round(Secs)]),
     case os:getenv("BENCH_MACHINE") of
         false -> "";
         Machine -> ["Machine: ", Machine, "\n\n"]
     end,
     md([Head | Rows]),
     "\nRatios are of medians. \"worst C/BEAM\" is the least favourable of the repetitions' "
     "own ratios (each repetition runs C and BEAM back to back), and \"met\" judges that worst "
     "ratio, per BEAM flavour; a miss shows how far it is from the target (e.g. x1.4 = 1.4 "
     "times the allowed ratio, or 1/1.4 of the required one).\n\n",
     "### CPU beside each workload (medians)\n\n",
     "\"client us/op\" is the client node's own CPU per operation; \"core\" is CPU time over wall "
     "time (1.00 = one core busy; the machine has ", integer_to_list(erlang:system_info(logical_processors)),
     "); \"other core\" is the rest of the machine's busy time (/proc/stat) over the same "
     "interval: other processes, idle BEAM servers, epmd, the kernel's own threads. Well above "
     "0.1 means something else ran during the figure. \"TCP segments/op\" counts the segments "
     "sent on the machine (/proc/net/snmp OutSegs, both directions on loopback) per operation: "
     "well under one per message when a side's writes queue up and leave in batches.\n\n",
     md([CpuHead | CpuRows]),
     "\n", busy_poll_text(Kinds),
     shard_text(Cfg),
     io_lib:format("~nSettings: ~s~n",
                   [string:join([io_lib:format("~s=~p", [Key, maps:get(Key, Cfg)])
                                 || Key <- [lat_calls, tp_seconds, tp_callers, casts, cast_senders,
                                            mem_entries, mem_batch, preload, warmup]], " ")])].

%% The ratios reported, each a C flavour over a BEAM flavour: both with their
%% defaults, the C node's defaults against the BEAM without busy-waiting (the
%% BEAM's lowest CPU), and both without spinning.
pairs(Kinds) ->
    [{C, B} || {C, B} <- [{c, beam}, {c, beam_nbw}, {c_nospin, beam_nbw}],
               lists:member(C, Kinds), lists:member(B, Kinds)].

pair_label({C, B}) ->
    case C of c -> "C"; _ -> label(C) end ++ "/" ++ label(B).

row({Fig, Label, Unit, Target}, Kinds, Pairs) ->
    Cells = [cell(get({Fig, K})) || K <- Kinds],
    Ratios = [ratio(Fig, C, B) || {C, B} <- Pairs],
    Worst = [worst_ratio(Fig, C, B, Target) || {C, B} <- Pairs],
    [lists:flatten(Label), Unit] ++ Cells ++ [fmt_ratio(R) || R <- Ratios]
        ++ [case Worst of [W | _] -> fmt_ratio(W); [] -> "-" end,
            target_text(Target), met(Target, Worst)].

%% The least favourable ratio of one repetition's A over the same
%% repetition's B (both lists are in the order of the repetitions); for a
%% figure without a target, the largest.
worst_ratio(Fig, A, B, Target) ->
    case {get({Fig, A}), get({Fig, B})} of
        {[_ | _] = Xa, [_ | _] = Xb} when length(Xa) =:= length(Xb) ->
            Rs = [Va / Vb || {Va, Vb} <- lists:zip(Xa, Xb), Vb /= 0],
            case {Rs, Target} of
                {[], _} -> undefined;
                {_, {ge, _}} -> lists:min(Rs);
                _ -> lists:max(Rs)
            end;
        _ -> undefined
    end.

ratio(Fig, A, B) ->
    case {get({Fig, A}), get({Fig, B})} of
        {[_ | _] = Xa, [_ | _] = Xb} ->
            case median(Xb) of
                0.0 -> undefined;
                Mb -> median(Xa) / Mb
            end;
        _ -> undefined
    end.

target_text(none) -> "-";
target_text({le, X}) -> "<= " ++ fmt_target(X);
target_text({ge, X}) -> ">= " ++ fmt_target(X).

fmt_target(X) when X == 1 / 3 -> "1/3";
fmt_target(X) when X == 1 / 20 -> "1/20";
fmt_target(X) -> fmt(X).

met(none, _) -> "-";
met(_, []) -> "-";
met(Target, Ratios) ->
    string:join([met1(Target, R) || R <- Ratios], " / ").

met1(_, undefined) -> "?";
met1({le, X}, R) when R =< X -> "yes";
met1({le, X}, R) -> "NO x" ++ fmt(R / X);
met1({ge, X}, R) when R >= X -> "yes";
met1({ge, X}, R) -> "NO x" ++ fmt(X / R).

cpu_row(W, Kinds) ->
    [workload_label(W)] ++
        lists:append([case get({{cpu, W}, K}) of
                          undefined -> ["-", "-", "-", "-", "-"];
                          Ms -> [fmt(median([maps:get(client_us_per_op, M) || M <- Ms])),
                                 fmt(median([maps:get(client_core, M) || M <- Ms])),
                                 fmt(median([maps:get(server_core, M) || M <- Ms])),
                                 fmt(median([maps:get(other_core, M) || M <- Ms])),
                                 fmt(median([maps:get(segments_per_op, M) || M <- Ms]))]
                      end || K <- Kinds]).

workload_label(latency) -> "sequential calls (latency)";
workload_label({tp, C}) -> lists:flatten(io_lib:format("calls, ~b callers", [C]));
workload_label({casts, S}) -> lists:flatten(io_lib:format("casts, ~b senders", [S])).

cell(undefined) -> "-";
cell(Xs) ->
    fmt(median(Xs)) ++ " [" ++ fmt(lists:min(Xs)) ++ "-" ++ fmt(lists:max(Xs)) ++ "]".

fmt_ratio(undefined) -> "-";
fmt_ratio(R) -> fmt(R).

median(Xs) ->
    S = lists:sort(Xs),
    N = length(S),
    case N rem 2 of
        1 -> float(lists:nth(N div 2 + 1, S));
        0 -> (lists:nth(N div 2, S) + lists:nth(N div 2 + 1, S)) / 2
    end.

%% Three significant digits, k and M above ten thousand.
fmt(X) when is_integer(X) -> fmt(float(X));
fmt(X) when abs(X) >= 1.0e7 -> sig(X / 1.0e6) ++ "M";
fmt(X) when abs(X) >= 1.0e4 -> sig(X / 1.0e3) ++ "k";
fmt(X) -> sig(X).

sig(X) when abs(X) >= 100 -> integer_to_list(round(X));
sig(X) when abs(X) >= 10 -> float_to_list(X, [{decimals, 1}]);
sig(X) when abs(X) >= 1 -> float_to_list(X, [{decimals, 2}]);
sig(X) -> float_to_list(X, [{decimals, 3}]).

%% A markdown table, columns padded so it also reads as plain text.
md(Rows0) ->
    Rows = [[lists:flatten(C) || C <- R] || R <- Rows0],
    Widths = lists:foldl(fun(R, W) -> [max(length(C), Wi) || {C, Wi} <- lists:zip(R, W)] end,
                         [0 || _ <- hd(Rows)], Rows),
    Line = fun(R) -> ["| ", lists:join(" | ", [string:pad(C, Wi) || {C, Wi} <- lists:zip(R, Widths)]), " |\n"] end,
    [Line(hd(Rows)),
     "|", lists:join("|", [lists:duplicate(Wi + 2, $-) || Wi <- Widths]), "|\n",
     [Line(R) || R <- tl(Rows)]].

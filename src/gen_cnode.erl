%% gen_cnode: starts, watches, restarts and stops one priv/gen_cnode OS process.
%%
%% Each C node is owned by one gen_server, the Pid that start/1 returns. The
%% owner opens the executable as a port with --watch-stdin, so the C node exits
%% by itself when its owner, or the whole VM, goes away; it forwards the C
%% node's log lines to a file or to the logger (at their own level, with
%% metadata gen_cnode_node and domain [gen_cnode]), and start/1 returns only
%% once the C node answers net_adm:ping/1. stop/1 sends SIGTERM, waits
%% (bounded) for the exit status, then SIGKILL. This module knows nothing of
%% keys and values: that is gen_cnode_kv.
%%
%% When the C node dies on its own (a crash, kill -9, an exit), the owner
%% starts it again with the same command line, so the servers it declares
%% (the KeyValue store, each `start`) come back under the same names and
%% {Name, Node} keeps working; a durable store recovers what it had
%% acknowledged. Like a supervisor, it gives up after more than `intensity`
%% restarts within `period` seconds and stops with {too_many_restarts,
%% LastExit}, for its own supervisor to decide; so it does after `intensity`
%% attempts in a row that did not come up, however slow. restart => false makes it stop
%% with the C node's exit instead ({exit_status, Status}; {shutdown,
%% {exit_status, 0}} for a clean one), and so does an exit while the VM stops.
%%
%% Options of start/1, start_link/1 and child_spec/1 (all optional):
%%   name          atom or string; a bare name gets @127.0.0.1 ('kv@127.0.0.1');
%%                 undefined, nil and '' are refused, as names of nothing
%%   cookie        atom (erlang:get_cookie())
%%   register      atom the KeyValue server registers as (kv; not undefined,
%%                 nil or '')
%%   data_dir      make that KeyValue store durable, in this folder
%%   load          server modules to load: [Path | "Path=Args"] (--load each)
%%   start         servers to start at boot: ["Module[:Name][=Arg]"] (--start each)
%%   workers       threads for blocking jobs (--workers)
%%   pg_join       Group or {Scope, Group} (atoms): the KeyValue server joins
%%                 that pg group at boot (--pg-join), e.g. for gen_cnode_shard;
%%                 a Scope other than pg is run too (--pg-scope)
%%   log_level     error | warning | notice | info | debug (--log-level; info)
%%   args          other command-line strings for the C node ([])
%%   executable    path (env GEN_CNODE_EXE, else priv/gen_cnode of this app)
%%   env           extra environment, as open_port's {env, _} ([])
%%   start_timeout ms to wait for the C node to answer ping (10000; at most
%%                 16#ffffffff - 10000, about 49 days)
%%   log           file the C node's lines are appended to (default: the logger)
%%   restart       #{intensity => 10, period => 60} (the default), or false
%%   id            the child id child_spec/1 gives (gen_cnode)
%% The C node finds epmd where this VM does: -epmd_port, else ERL_EPMD_PORT.
-module(gen_cnode).
-behaviour(gen_server).
-compile({no_auto_import, [node/1]}).

-export([start/1, start_link/1, child_spec/1, stop/1, node/1, os_pid/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-define(DEFAULT_HOST, "127.0.0.1").
-define(STOP_GRACE, 5000).    % ms between SIGTERM and SIGKILL
-define(KILL_GRACE, 2000).    % ms to wait for the exit status after SIGKILL
-define(PING_INTERVAL, 50).   % ms between two pings while starting
-define(TAIL_LINES, 40).      % stderr lines kept for error reasons
-define(INTENSITY, 10).       % restarts of the C node allowed...
-define(PERIOD, 60).          % ...within this many seconds
-define(RETRY_DELAY, 500).    % ms between two failed attempts to start it again
-define(MAX_PARTIAL, 65536).  % bytes of a line kept before it is cut (a line with no end)
-define(MAX_QUEUED, 2000).    % messages waiting before the owner drops lines unlogged...
-define(MAX_DROP, 200000).    % ...at most this many at a time
-define(START_MARGIN, 10000). % ms gen_server:start waits beyond start_timeout
%% The longest start_timeout: a receive waits 16#ffffffff ms at most, and
%% gen_server:start waits START_MARGIN more.
-define(MAX_START_TIMEOUT, (16#ffffffff - ?START_MARGIN)).

-record(state, {port :: port() | undefined,
                os_pid :: integer(),
                node :: node(),
                log :: file:io_device() | logger,
                partial = <<>> :: binary(),
                tail = [] :: [binary()],
                cfg = #{} :: map(),           % what launch/1 needs, to start it again
                restart = false :: false | {non_neg_integer(), pos_integer()},
                restarts = [] :: [integer()], % when the C node was restarted (ms)
                %% a restart under way: the pinger and the timer that ends it
                starting = undefined :: undefined | {pid(), reference(), reference()},
                failed = 0 :: non_neg_integer(), % attempts in a row that did not come up
                skipping = false :: boolean(),  % the rest of a line already cut
                last_exit :: term()}).        % why the C node went, for too_many_restarts

-type opts() :: #{name => atom() | string(), cookie => atom(), register => atom(),
                  data_dir => file:filename() | binary(),
                  load => [string() | binary()], start => [string() | binary()],
                  workers => non_neg_integer(),
                  pg_join => atom() | {atom(), atom()},
                  log_level => error | warning | notice | info | debug,
                  executable => file:filename(), args => [string() | binary()],
                  env => [{string(), string() | false}], start_timeout => non_neg_integer(),
                  log => file:filename(),
                  restart => false | #{intensity => non_neg_integer(), period => pos_integer()},
                  id => term()}.
-export_type([opts/0]).

%% The keys opts() has: any other is refused ({badopt, {Key, Value}}), so
%% that a misspelt data_dir does not run a store in memory unnoticed.
-define(OPTS, [name, cookie, register, data_dir, load, start, workers, pg_join, log_level,
               executable, args, env, start_timeout, log, restart, id]).

%%% API

%% Starts a C node and returns once it answers ping. Errors: not_distributed,
%% {needs_long_names, Node}, {needs_fully_qualified_host, Node} (a host with
%% no dot that is no address), {unsupported_proto_dist, Proto, Why},
%% {no_executable, Path}, {name_taken, Node} (held for the whole
%% start_timeout), {exited, Status, LastStderrLines}, {start_timeout,
%% LastStderrLines}, {ping_failed, Reason, LastStderrLines}, {open_port, Exe,
%% Reason}, {badopt, {Key, Value}} (a key it does not know included),
%% {log, Path, Reason}.
-spec start(opts()) -> {ok, pid()} | {error, term()}.
start(Opts) when is_map(Opts) ->
    launch_owner(start, Opts).

-spec start_link(opts()) -> {ok, pid()} | {error, term()}.
start_link(Opts) when is_map(Opts) ->
    launch_owner(start_link, Opts).

%% A child specification for a supervisor: the owner as a permanent worker
%% (it restarts the C node itself; see the top of this file).
-spec child_spec(opts()) -> supervisor:child_spec().
child_spec(Opts) when is_map(Opts) ->
    #{id => maps:get(id, Opts, ?MODULE),
      start => {?MODULE, start_link, [maps:remove(id, Opts)]},
      restart => permanent,
      shutdown => ?STOP_GRACE + ?KILL_GRACE + 1000,
      type => worker,
      modules => [?MODULE]}.

%% Stops the C node: ok when it exited with status 0 after SIGTERM,
%% {error, {exit_status, S}} when it exited otherwise, {error, {killed, S}}
%% when it had to be killed with SIGKILL. The owner exits normal, so a
%% supervisor restarts a permanent one: stop a supervised node with
%% supervisor:terminate_child/2.
-spec stop(pid()) -> ok | {error, term()}.
stop(Pid) ->
    gen_server:call(Pid, stop, ?STOP_GRACE + ?KILL_GRACE + 5000).

%% The C node's node name.
-spec node(pid()) -> node().
node(Pid) ->
    gen_server:call(Pid, node).

%% The C node's operating-system process id.
-spec os_pid(pid()) -> integer().
os_pid(Pid) ->
    gen_server:call(Pid, os_pid).

%%% gen_server callbacks

init(Opts) ->
    process_flag(trap_exit, true),
    case configure(Opts) of
        {ok, Cfg} ->
            case launch(Cfg) of
                {ok, S} -> {ok, S#state{cfg = Cfg, restart = maps:get(restart, Cfg)}};
                {error, Reason, S} ->
                    terminate(failed_start, S),
                    {stop, {shutdown, Reason}}
            end;
        {error, Reason} -> {stop, {shutdown, Reason}}
    end.

handle_call(node, _From, S) ->
    {reply, S#state.node, S};
handle_call(os_pid, _From, S) ->
    {reply, S#state.os_pid, S};
handle_call(stop, _From, S) ->
    {Reply, S1} = shutdown(end_attempt(S)),
    {stop, normal, Reply, S1}.

handle_cast(_Msg, S) ->
    {noreply, S}.

handle_info({Port, {data, Data}}, S = #state{port = Port}) ->
    {noreply, line(Data, S, Port)};
handle_info({Port, {exit_status, Status}}, S0 = #state{port = Port, starting = undefined}) ->
    S = last_words(S0),
    S1 = note(S, exit_line(Status), exit_level(Status)),
    restart(S1#state{port = undefined, last_exit = exit_reason(Status)});
handle_info({Port, {exit_status, Status}}, S0 = #state{port = Port}) ->
    S = last_words(S0),
    attempt_failed({exited, Status, tail(S)}, S#state{port = undefined});
handle_info({'DOWN', Ref, process, _, pong}, S = #state{starting = {_, Ref, _}}) ->
    {noreply, note(end_attempt(S#state{failed = 0}), "gen_cnode owner: C node up again", notice)};
handle_info({'DOWN', Ref, process, _, Why}, S = #state{starting = {_, Ref, _}}) ->
    attempt_failed({ping_failed, Why, tail(S)}, S);
handle_info({restart_timeout, Ref}, S = #state{starting = {_, Ref, _}}) ->
    attempt_failed({start_timeout, tail(S)}, S);
handle_info(restart_now, S = #state{port = undefined, starting = undefined}) ->
    restart(S);
handle_info({'EXIT', Port, _}, S) when is_port(Port) ->
    {noreply, S};
handle_info(_Msg, S) ->
    {noreply, S}.

terminate(_Reason, S) ->
    {_, S1} = shutdown(end_attempt(S)),
    case S1#state.log of
        logger -> ok;
        Fd -> file:close(Fd)
    end.


%%% Starting

configure(Opts) ->
    try
        erlang:is_alive() orelse throw(not_distributed),
        case maps:keys(Opts) -- ?OPTS of
            [] -> ok;
            [Unknown | _] -> throw({badopt, {Unknown, maps:get(Unknown, Opts)}})
        end,
        Node = node_name(named(name, maps:get(name, Opts, kv))),
        check_name_mode(Node),
        Cookie = atom_opt(cookie, Opts, erlang:get_cookie()),
        Register = named(register, atom_opt(register, Opts, kv)),
        Exe = executable(Opts),
        filelib:is_regular(Exe) orelse throw({no_executable, Exe}),
        Extra = data_dir(Opts) ++ workers(Opts) ++ log_level(Opts) ++ pg_join(Opts) ++ strings(args, Opts)
            ++ lists:append([["--load", L] || L <- strings(load, Opts)])
            ++ lists:append([["--start", S] || S <- strings(start, Opts)]),
        {UserCookie, Env} = lists:partition(fun({K, _}) -> K =:= "GEN_CNODE_COOKIE" end,
                                            env_opt(maps:get(env, Opts, []))),
        Restart = restart_opt(Opts),
        check_proto_dist(),
        Log = open_log(maps:get(log, Opts, logger)),
        Args = ["--name", atom_to_list(Node),
                "--register", atom_to_list(Register), "--watch-stdin" | Extra],
        %% The cookie (and a GEN_CNODE_COOKIE the user gives in env) is
        %% kept in a fun, which crash reports, sys:get_status/1 and
        %% sys:get_state/1 print as #Fun<...>, not by its value.
        {ok, #{node => Node, exe => Exe, args => Args, env => epmd_env(Env),
               secret => fun() -> {Cookie, UserCookie} end,
               log => Log, timeout => start_timeout(Opts), restart => Restart}}
    catch
        throw:Reason -> {error, Reason}
    end.

%% Opens the port and waits for a pong: {ok, State} | {error, Reason, State}.
launch(Cfg = #{node := Node, exe := Exe, args := Args, log := Log, timeout := Timeout}) ->
    S0 = #state{node = Node, log = Log},
    Deadline = now_ms() + Timeout,
    case name_free_by(Node, Deadline, S0, false) of
        {false, S1} -> {error, {name_taken, Node}, S1};
        {true, S1} -> launch_port(S1, Deadline, Exe, Args, node_env(Cfg))
    end.

%% The node's environment, with its cookie, which only its user reads,
%% never on its command line, which any local user reads (ps). The VM is
%% given the cookie for that node at each start, once the name is known to
%% be free (an owner refused the name must not change the cookie of the
%% node that holds it).
node_env(#{node := Node, env := Env, secret := Secret}) ->
    {Cookie, UserCookie} = Secret(),
    erlang:set_cookie(Node, Cookie),
    [{"GEN_CNODE_COOKIE", atom_to_list(Cookie)} | Env ++ UserCookie].

%% Wait for Node's name to be free, until Deadline: a node of that name that
%% is stopping (an earlier owner's, killed with its owner: it stops at its
%% stdin's end, but a node still recovering its store reads stdin only
%% once it has) lets it go in a moment. {Free, S}; the wait is logged once.
name_free_by(Node, Deadline, S, Noted) ->
    case {name_taken(Node), now_ms() >= Deadline} of
        {false, _} -> {true, S};
        {true, true} -> {false, S};
        {true, false} when Noted ->
            timer:sleep(?PING_INTERVAL),
            name_free_by(Node, Deadline, S, Noted);
        {true, false} ->
            S1 = note(S, io_lib:format("gen_cnode owner: waiting for ~s's name, held in epmd by another node",
                                       [Node]), notice),
            name_free_by(Node, Deadline, S1, true)
    end.

%% Is Node's name registered with epmd already (another node of that name
%% runs)? Then the pings would reach that one, and say ok for a node that
%% is not ours.
name_taken(Node) ->
    [Alive, Host] = string:split(atom_to_list(Node), "@"),
    case erl_epmd:port_please(Alive, Host, 5000) of
        {port, _, _} -> true;
        _ -> false
    end.

launch_port(S0, Deadline, Exe, Args, Env) ->
    Node = S0#state.node,
    try open_port({spawn_executable, Exe},
                  [{args, Args}, {env, Env}, exit_status, use_stdio, stderr_to_stdout,
                   binary, {line, 65536}, hide]) of
        Port ->
            {os_pid, OsPid} = erlang:port_info(Port, os_pid),
            S = S0#state{port = Port, os_pid = OsPid, partial = <<>>},
            await_ready(S, spawn_pinger(Node), Deadline)
    catch
        error:Reason ->
            {error, {open_port, Exe, Reason}, S0}
    end.

%% The C node exited on its own: start it again, unless restarts are off or
%% too many came too fast. The restart runs while the owner keeps serving
%% (stop/1, node/1, its parent's exit): the port is opened here, and its pong,
%% its exit or the start timeout arrive as messages.
restart(S = #state{restart = false, last_exit = Exit}) ->
    {stop, Exit, S};
restart(S = #state{restart = {Intensity, Period}, restarts = Past, cfg = Cfg, last_exit = Exit,
                   failed = Failed}) ->
    Now = now_ms(),
    %% A VM that is stopping (init:stop/0, or a service manager's SIGTERM to
    %% the VM and the node at once) is not to get a node started again.
    VmStopping = element(1, init:get_status()) =:= stopping,
    Recent = [T || T <- Past, Now - T < Period * 1000],
    %% Attempts that never come up may each take longer than Period /
    %% Intensity (a start timeout): so many in a row count as well.
    case VmStopping orelse length(Recent) >= Intensity orelse (Failed > 0 andalso Failed >= Intensity) of
        true when VmStopping ->
            {stop, Exit, note(S, "gen_cnode owner: the VM is stopping; not starting the C node again", notice)};
        true ->
            S1 = note(S, io_lib:format("gen_cnode owner: ~b restarts in ~b s (~b in a row that did "
                                       "not come up); giving up", [length(Recent), Period, Failed]),
                      error),
            {stop, {too_many_restarts, Exit}, S1};
        false ->
            S1 = note(S#state{restarts = [Now | Recent]},
                      "gen_cnode owner: starting the C node again", warning),
            #{exe := Exe, args := Args, timeout := Timeout} = Cfg,
            %% (No name_taken check here: epmd may not have seen the old
            %% node's exit yet, and the node itself refuses a name in use.)
            reopen(S1, Exe, Args, node_env(Cfg), Timeout)
    end.

%% The port of a restart: its pong, its exit or its timeout come as messages.
reopen(S, Exe, Args, Env, Timeout) ->
    try open_port({spawn_executable, Exe},
                  [{args, Args}, {env, Env}, exit_status, use_stdio, stderr_to_stdout,
                   binary, {line, 65536}, hide]) of
        Port ->
            {os_pid, OsPid} = erlang:port_info(Port, os_pid),
            {PingPid, PingRef} = spawn_pinger(S#state.node),
            Timer = erlang:send_after(Timeout, self(), {restart_timeout, PingRef}),
            {noreply, S#state{port = Port, os_pid = OsPid, partial = <<>>, skipping = false,
                              starting = {PingPid, PingRef, Timer}}}
    catch
        error:Reason -> attempt_failed({open_port, Exe, Reason}, S)
    end.

%% A restart that did not come up: the node is stopped if it runs, the
%% failure counts as a restart, and the next attempt comes a little later.
attempt_failed(Reason, S) ->
    S1 = kill_port(end_attempt(S)),
    %% The line names the failure, not the lines it carries: those are in
    %% the log already, and each failure's line would carry the last ones'.
    S2 = note(S1, io_lib:format("gen_cnode owner: restart failed: ~0p", [without_lines(Reason)]), error),
    erlang:send_after(?RETRY_DELAY, self(), restart_now),
    {noreply, S2#state{last_exit = {restart_failed, Reason}, failed = S2#state.failed + 1}}.

without_lines({start_timeout, _Lines}) -> start_timeout;
without_lines({exited, Status, _Lines}) -> {exited, Status};
without_lines({ping_failed, Why, _Lines}) -> {ping_failed, Why};
without_lines(Reason) -> Reason.

%% No restart under way any more: its pinger and timer go.
end_attempt(S = #state{starting = undefined}) ->
    S;
end_attempt(S = #state{starting = {PingPid, PingRef, Timer}}) ->
    demonitor(PingRef, [flush]),
    exit(PingPid, kill),
    erlang:cancel_timer(Timer),
    receive {restart_timeout, PingRef} -> ok after 0 -> ok end,
    S#state{starting = undefined}.

%% A node that did not come up is not waited for: SIGKILL, then its status.
kill_port(S = #state{port = undefined}) ->
    S;
kill_port(S0 = #state{os_pid = OsPid}) ->
    case exited_already(S0) of %% its pid may be another's by now
        {ok, _, S} -> S;
        {timeout, S} -> signal("KILL", OsPid), kill_port_wait(S)
    end.

kill_port_wait(S) ->
    case await_exit(S, now_ms() + ?KILL_GRACE) of
        {ok, _, S1} -> S1;
        {timeout, S1 = #state{port = Port}} -> catch port_close(Port), S1#state{port = undefined}
    end.

exit_reason(0) -> {shutdown, {exit_status, 0}};
exit_reason(Status) -> {exit_status, Status}.

%% Pings from a separate process: net_adm:ping/1 waits without a timeout for a
%% node that accepted the connection but never answers.
%% Linked too: it goes with an owner that is killed.
spawn_pinger(Node) ->
    spawn_opt(fun() -> ping_until_pong(Node) end, [link, monitor]).

ping_until_pong(Node) ->
    case net_adm:ping(Node) of
        pong -> exit(pong);
        pang -> timer:sleep(?PING_INTERVAL), ping_until_pong(Node)
    end.

await_ready(S = #state{port = Port}, Ping = {PingPid, PingRef}, Deadline) ->
    receive
        {Port, {data, Data}} ->
            S1 = line(Data, S, Port),
            case now_ms() >= Deadline of %% a node that keeps writing does not hold it off
                true -> ready_by_now(S1, Ping);
                false -> await_ready(S1, Ping, Deadline)
            end;
        {Port, {exit_status, _}} = Exit -> ready(Exit, S, Ping);
        {'DOWN', PingRef, process, PingPid, _} = Down -> ready(Down, S, Ping)
    after max(0, Deadline - now_ms()) ->
            ready(start_timeout, S, Ping)
    end.

%% The deadline passed while lines kept coming: the outcome if it is here
%% already, behind them, else the timeout.
ready_by_now(S = #state{port = Port}, Ping = {PingPid, PingRef}) ->
    receive
        {Port, {exit_status, _}} = Exit -> ready(Exit, S, Ping);
        {'DOWN', PingRef, process, PingPid, _} = Down -> ready(Down, S, Ping)
    after 0 ->
            ready(start_timeout, S, Ping)
    end.

ready({_, {exit_status, Status}}, S, {PingPid, PingRef}) ->
    demonitor(PingRef, [flush]),
    exit(PingPid, kill),
    S1 = S#state{port = undefined},
    {error, {exited, Status, tail(S1)}, S1};
ready({'DOWN', _, process, _, pong}, S, _) ->
    {ok, S};
ready({'DOWN', _, process, _, Reason}, S, _) ->
    {error, {ping_failed, Reason, tail(S)}, S};
ready(start_timeout, S, {PingPid, PingRef}) ->
    demonitor(PingRef, [flush]),
    exit(PingPid, kill),
    {error, {start_timeout, tail(S)}, S}.

%% What the owner says of an exit it did not ask for. A C node killed by a
%% signal crashed: in its own code or in a loaded module's, which runs in
%% the node's process (README: a module that crashes takes the node down).
exit_line(Status) when Status > 128, Status < 160 ->
    Sig = Status - 128,
    io_lib:format("gen_cnode owner: C node crashed (signal ~b, ~s), in its own code or a loaded "
                  "module's; exit status ~b", [Sig, signal_name(Sig), Status]);
exit_line(Status) ->
    io_lib:format("gen_cnode owner: C node exited with status ~b", [Status]).

signal_name(4) -> "SIGILL";
signal_name(6) -> "SIGABRT";
signal_name(7) -> "SIGBUS";
signal_name(8) -> "SIGFPE";
signal_name(9) -> "SIGKILL";
signal_name(11) -> "SIGSEGV";
signal_name(15) -> "SIGTERM";
signal_name(N) -> "signal " ++ integer_to_list(N).

%%% Stopping

%% SIGTERM, then SIGKILL; returns the reply for stop/1 and a state without port.
shutdown(S = #state{port = undefined}) ->
    {ok, S};
shutdown(S0 = #state{os_pid = OsPid}) ->
    %% An exit status already here: the pid is not signalled (it may be
    %% another process's by now).
    Exited = case exited_already(S0) of
                 {ok, _, _} = Already -> Already;
                 {timeout, S} -> signal("TERM", OsPid), await_exit(S, now_ms() + ?STOP_GRACE)
             end,
    case Exited of
        {ok, 0, S1} ->
            {ok, note(S1, "gen_cnode owner: C node exited with status 0", notice)};
        {ok, Status, S1} ->
            S2 = note(S1, io_lib:format("gen_cnode owner: C node exited with status ~b", [Status]), error),
            {{error, {exit_status, Status}}, S2};
        {timeout, S1} ->
            S2 = note(S1, "gen_cnode owner: no exit after SIGTERM, sending SIGKILL", warning),
            signal("KILL", OsPid),
            case await_exit(S2, now_ms() + ?KILL_GRACE) of
                {ok, Status, S3} ->
                    S4 = note(S3, io_lib:format("gen_cnode owner: C node killed, status ~b", [Status]), error),
                    {{error, {killed, Status}}, S4};
                {timeout, S3 = #state{port = Port}} ->
                    catch port_close(Port),
                    {{error, {killed, no_exit_status}}, S3#state{port = undefined}}
            end
    end.

%% The node's exit status by Deadline, logging its lines meanwhile. A node
%% that keeps writing does not hold the deadline off (one stuck in a loop
%% that logs, and ignores SIGTERM, still gets its SIGKILL).
await_exit(S = #state{port = Port}, Deadline) ->
    receive
        {Port, {data, Data}} ->
            S1 = line(Data, S, Port),
            case now_ms() >= Deadline of
                true -> exited_already(S1);
                false -> await_exit(S1, Deadline)
            end;
        {Port, {exit_status, Status}} ->
            {ok, Status, S#state{port = undefined}}
    after max(0, Deadline - now_ms()) ->
            {timeout, S}
    end.

%% Has the node exited already (its status waiting, maybe behind lines)? Then
%% {ok, Status, S} with the lines before it logged; else {timeout, S}, with
%% nothing taken from the mailbox.
exited_already(S = #state{port = Port}) ->
    receive
        {Port, {exit_status, Status}} -> {ok, Status, drain(S#state{port = undefined}, Port)}
    after 0 ->
            {timeout, S}
    end.

drain(S, Port) ->
    receive
        {Port, {data, Data}} -> drain(line(Data, S, Port), Port)
    after 0 ->
            S
    end.

signal(Sig, OsPid) ->
    _ = os:cmd("kill -" ++ Sig ++ " " ++ integer_to_list(OsPid) ++ " 2>/dev/null"),
    ok.

%%% The C node's stderr

%% A last line the node wrote without its newline (a module's message just
%% before an abort, say), kept when the node exits.
last_words(S = #state{partial = <<>>}) -> S;
last_words(S = #state{partial = P}) -> note(S#state{partial = <<>>}, P).

%% A piece of a line from the port, logged; but when more messages wait than
%% the owner can log (a module that writes in a loop), the lines waiting are
%% dropped, counted in one line: else they would hold a stop request off
%% for as long as they take, and fill this VM's memory.
line(Data, S, Port) ->
    S1 = output(Data, S),
    case process_info(self(), message_queue_len) of
        {message_queue_len, N} when N > ?MAX_QUEUED -> drop(S1, Port, 0, none);
        _ -> S1
    end.

drop(S, Port, N, Last) when N < ?MAX_DROP ->
    receive
        {Port, {data, {Kind, _}}} -> drop(S, Port, N + 1, Kind)
    after 0 ->
            dropped(S, N, Last)
    end;
drop(S, _Port, N, Last) ->
    dropped(S, N, Last).

%% The rest of a line cut by the drop is skipped too, and the part of one
%% before it goes.
dropped(S, 0, _) ->
    S;
dropped(S, N, Last) ->
    S1 = case Last of
             none -> S;
             eol -> S#state{partial = <<>>, skipping = false};
             noeol -> S#state{partial = <<>>, skipping = true}
         end,
    note(S1, io_lib:format("gen_cnode owner: dropped ~b of the C node's lines: it writes them "
                           "faster than they can be logged", [N]), warning).

output({noeol, _}, S = #state{skipping = true}) ->
    S;
output({eol, _}, S = #state{skipping = true}) ->
    S#state{skipping = false};
output({noeol, Part}, S = #state{partial = P}) ->
    case <<P/binary, Part/binary>> of
        Long when byte_size(Long) > ?MAX_PARTIAL -> %% no end in sight: cut, keep none of the rest
            note(S#state{partial = <<>>, skipping = true},
                 <<(binary:part(Long, 0, ?MAX_PARTIAL))/binary, " [cut: a line over 64 KiB]">>);
        Longer ->
            S#state{partial = Longer}
    end;
output({eol, Part}, S = #state{partial = P}) ->
    note(S#state{partial = <<>>}, <<P/binary, Part/binary>>).

%% A line of the C node's, at the level it carries; a line of the owner's
%% own, at the level given.
note(S, Line0) ->
    Line = iolist_to_binary(Line0),
    {Level, Text} = parse_line(Line),
    write_line(S, Line, Level, Text).

note(S, Line0, Level) ->
    Line = iolist_to_binary(Line0),
    write_line(S, Line, Level, Line).

write_line(S = #state{log = Log, tail = Tail, node = Node}, Line, Level, Text) ->
    case Log of
        logger -> logger:log(Level, "~ts: ~ts", [Node, printable(Text)],
                             #{gen_cnode_node => Node, domain => [gen_cnode]});
        Fd -> file:write(Fd, [Line, $\n])
    end,
    S#state{tail = lists:sublist([Line | Tail], ?TAIL_LINES)}.

%% The node writes UTF-8; a line that is not (a module's own bytes) is
%% taken as latin1 rather than lost.
printable(Text) ->
    case unicode:characters_to_binary(Text) of
        B when is_binary(B) -> B;
        _ -> unicode:characters_to_binary(Text, latin1)
    end.

%% "2026-11-27T19:05:01.123Z kv@127.0.0.1 info: text" -> {info, text}: the
%% third word a level, after a time and a node. Other lines (a sanitizer's
%% report, a module's own fprintf) are warnings, whole.
parse_line(Line) ->
    case re:run(Line, "^[0-9][0-9T:.Z-]+ \\S+ (error|warning|notice|info|debug): (.*)$",
                [{capture, all_but_first, binary}, dotall]) of
        {match, [Level, Text]} -> {binary_to_atom(Level), Text};
        nomatch -> {warning, Line}
    end.

exit_level(0) -> notice;
exit_level(_) -> error.

tail(#state{tail = Tail}) ->
    lists:reverse(Tail).

open_log(logger) ->
    show_in_default_handler(),
    logger;
open_log(Path) ->
    case file:open(Path, [append, raw, binary]) of
        {ok, Fd} -> Fd;
        {error, Reason} -> throw({log, Path, Reason})
    end.

%% OTP's default handler logs only events of no domain or of OTP's own, so
%% the node's lines (domain [gen_cnode]) would vanish in a plain erl or a
%% release: let them through, once. logger:remove_handler_filter(default,
%% gen_cnode) takes that back.
show_in_default_handler() ->
    case logger:get_handler_config(default) of
        {ok, #{filters := Filters}} ->
            lists:keymember(gen_cnode, 1, Filters) orelse
                logger:add_handler_filter(default, gen_cnode,
                                          {fun logger_filters:domain/2, {log, sub, [gen_cnode]}}),
            ok;
        _ -> ok
    end.

%%% Options

%% undefined (nil from Elixir) and '' name nothing: as the node's name or
%% the KeyValue server's they are refused (a BEAM's register/2 refuses
%% undefined; '' would make '@127.0.0.1').
named(Key, Name) ->
    lists:member(Name, [undefined, nil, '', "", <<>>]) andalso throw({badopt, {Key, Name}}),
    Name.

node_name(Name) when is_atom(Name) ->
    node_name(atom_to_list(Name));
node_name(Name) when is_binary(Name) ->
    node_name(unicode:characters_to_list(Name));
node_name(Name) when is_list(Name) ->
    case lists:member($@, Name) of
        true -> list_to_atom(Name);
        false -> list_to_atom(Name ++ "@" ++ ?DEFAULT_HOST)
    end;
node_name(Name) ->
    throw({badopt, {name, Name}}).

%% A node with short names cannot reach kv@127.0.0.1, and one with long
%% names refuses a host that is neither dotted nor an address (kv@localhost:
%% "Hostname localhost is illegal"): say so now rather than ping in vain
%% until the timeout.
check_name_mode(Node) ->
    [_, Host] = string:split(atom_to_list(Node), "@"),
    Dotted = lists:member($., Host),
    case net_kernel:longnames() of
        false when Dotted -> throw({needs_long_names, Node});
        true when not Dotted ->
            case inet:parse_address(Host) of
                {ok, _} -> ok;
                {error, _} -> throw({needs_fully_qualified_host, Node})
            end;
        _ -> ok
    end.

%% A list of strings (charlists or binaries), as charlists.
strings(Key, Opts) ->
    case maps:get(Key, Opts, []) of
        L when is_list(L) ->
            [case S of
                 B when is_binary(B) -> unicode:characters_to_list(B);
                 C -> io_lib:char_list(C) orelse throw({badopt, {Key, L}}), C
             end || S <- L];
        Other -> throw({badopt, {Key, Other}})
    end.

data_dir(#{data_dir := Dir}) when is_binary(Dir) -> ["--data-dir", unicode:characters_to_list(Dir)];
data_dir(#{data_dir := Dir}) when is_list(Dir) -> ["--data-dir", Dir];
data_dir(#{data_dir := Dir}) -> throw({badopt, {data_dir, Dir}});
data_dir(_) -> [].

workers(#{workers := N}) when is_integer(N), N >= 0 -> ["--workers", integer_to_list(N)];
workers(#{workers := N}) -> throw({badopt, {workers, N}});
workers(_) -> [].

pg_join(Opts = #{pg_join := {Scope, Group}}) when is_atom(Scope), is_atom(Group) ->
    pg_scope(atom_to_list(Scope), strings(args, Opts))
        ++ ["--pg-join", atom_to_list(Scope) ++ ":" ++ atom_to_list(Group)];
pg_join(#{pg_join := Group}) when is_atom(Group) -> ["--pg-join", atom_to_list(Group)];
pg_join(#{pg_join := G}) -> throw({badopt, {pg_join, G}});
pg_join(_) -> [].

%% The node runs pg; another scope only with --pg-scope, which it refuses
%% twice: asked for here unless args ask already.
pg_scope("pg", _Args) -> [];
pg_scope(Scope, Args) ->
    case scope_asked(Scope, Args) of
        true -> [];
        false -> ["--pg-scope", Scope]
    end.

scope_asked(Scope, ["--pg-scope", Scope | _]) -> true;
scope_asked(Scope, ["--pg-scope=" ++ Scope | _]) -> true;
scope_asked(Scope, [_ | Args]) -> scope_asked(Scope, Args);
scope_asked(_, []) -> false.

log_level(#{log_level := L}) ->
    lists:member(L, [error, warning, notice, info, debug]) orelse throw({badopt, {log_level, L}}),
    ["--log-level", atom_to_list(L)];
log_level(_) -> [].

restart_opt(Opts) ->
    case maps:get(restart, Opts, #{}) of
        false -> false;
        M when is_map(M) ->
            %% (a key it does not know, a misspelt period, is refused)
            case {maps:get(intensity, M, ?INTENSITY), maps:get(period, M, ?PERIOD),
                  maps:keys(maps:without([intensity, period], M))} of
                {I, P, []} when is_integer(I), I >= 0, is_integer(P), P > 0 -> {I, P};
                _ -> throw({badopt, {restart, M}})
            end;
        Other -> throw({badopt, {restart, Other}})
    end.

%% env: [{Name, Value | false}], strings as charlists or binaries.
env_opt(Env) when is_list(Env) ->
    [case E of
         {K, V} when (is_list(K) orelse is_binary(K)), (is_list(V) orelse is_binary(V) orelse V =:= false) ->
             {text(env, K), case V of false -> false; _ -> text(env, V) end};
         _ -> throw({badopt, {env, E}})
     end || E <- Env];
env_opt(Env) ->
    throw({badopt, {env, Env}}).

text(Key, T) ->
    case unicode:characters_to_list(T) of
        L when is_list(L) -> L;
        _ -> throw({badopt, {Key, T}})
    end.

%% The C node publishes itself to the epmd this VM uses: -epmd_port, else
%% ERL_EPMD_PORT (inherited), else 4369. An explicit env entry wins.
epmd_env(Env) ->
    case lists:keymember("ERL_EPMD_PORT", 1, Env) of
        true -> Env;
        false ->
            case init:get_argument(epmd_port) of
                {ok, [[Port | _] | _]} -> [{"ERL_EPMD_PORT", Port} | Env];
                _ -> Env
            end
    end.

%% The C node speaks IPv4 TCP distribution only: a VM on another carrier
%% could not reach it, so say so rather than time out.
check_proto_dist() ->
    case init:get_argument(proto_dist) of
        {ok, [[Proto | _] | _]} when Proto =/= "inet_tcp" ->
            throw({unsupported_proto_dist, list_to_atom(Proto), "the C node speaks inet_tcp (IPv4) only"});
        _ -> ok
    end.

atom_opt(Key, Opts, Default) ->
    case maps:get(Key, Opts, Default) of
        A when is_atom(A) -> A;
        Other -> throw({badopt, {Key, Other}})
    end.

start_timeout(Opts) ->
    case maps:get(start_timeout, Opts, 10000) of
        T when is_integer(T), T >= 0, T =< ?MAX_START_TIMEOUT -> T;
        T -> throw({badopt, {start_timeout, T}})
    end.

%% executable option, else $GEN_CNODE_EXE, else priv/gen_cnode of this
%% application, else priv/gen_cnode next to the ebin this module came from.
executable(#{executable := Exe}) ->
    Exe;
executable(_) ->
    case os:getenv("GEN_CNODE_EXE") of
        Exe when is_list(Exe), Exe =/= "" -> Exe;
        _ -> default_executable()
    end.

default_executable() ->
    Beside = filename:join([filename:dirname(filename:dirname(
                                filename:absname(code:which(?MODULE)))),
                            "priv", "gen_cnode"]),
    case code:priv_dir(gen_cnode) of
        {error, _} ->
            Beside;
        Dir ->
            Exe = filename:join(Dir, "gen_cnode"),
            case filelib:is_regular(Exe) of
                true -> Exe;
                false -> Beside
            end
    end.

launch_owner(How, Opts) ->
    try start_timeout(Opts) of
        Timeout ->
            case gen_server:How(?MODULE, Opts, [{timeout, Timeout + ?START_MARGIN}]) of
                {error, {shutdown, Reason}} -> {error, Reason};
                Other -> Other
            end
    catch
        throw:Reason -> {error, Reason}
    end.

now_ms() ->
    erlang:monotonic_time(millisecond).

%% gen_cnode_app_SUITE: the C node as an OTP child. gen_cnode:child_spec/1
%% under a supervisor, the owner restarting its C node after kill -9 (the
%% servers it declares come back under their names, a durable kv keeps what
%% it acknowledged, and nothing in the supervision tree restarts), restart
%% intensity, the reasons a node that cannot start gives, and its log lines
%% reaching Logger at their own level with metadata.
-module(gen_cnode_app_SUITE).

-define(config(Key, Config), proplists:get_value(Key, Config)).
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

-export([versions_agree/1,
         owner_serves_while_a_restart_hangs/1,
         odd_log_lines_do_not_hurt_the_owner/1,
         node_uses_the_vms_epmd_port/1,
         readme_supervisor_runs/1,
         supervised_node_survives_five_kill9s/1,
         too_many_restarts_stop_the_owner/1,
         the_cookie_is_in_no_report_or_status/1,
         a_host_that_is_not_fully_qualified_is_refused_at_once/1,
         names_no_beam_registers_are_refused/1,
         start_timeout_is_bounded/1,
         restart_keys_are_checked/1,
         tools_run_node_prints_the_cookie_and_name_the_node_uses/1,
         child_spec_is_a_permanent_worker/1,
         a_node_that_cannot_start_says_why/1,
         a_name_taken_is_refused/1,
         a_killed_owners_name_is_taken_again/1,
         a_node_that_ignores_sigterm_and_keeps_logging_is_killed/1,
         options_are_checked_and_the_cookie_is_hidden/1,
         restarts_that_never_come_up_stop_the_owner/1,
         a_killed_owner_leaves_no_pinger/1,
         a_line_with_no_end_is_cut/1,
         a_flood_of_lines_is_dropped_not_queued/1,
         a_start_that_floods_still_times_out/1,
         a_stuck_job_does_not_hold_the_stop_off/1,
         an_owner_gone_while_the_node_boots_takes_it_down/1,
         an_owner_gone_while_a_callback_holds_the_loop_takes_it_down/1,
         a_module_s_own_thread_does_not_take_the_stop/1,
         log_lines_reach_logger_at_their_level/1]).

%% A logger handler that forwards gen_cnode's events to a test process, and
%% the supervisor of the test's own.
-export([log/2, init/1]).

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [versions_agree,
     owner_serves_while_a_restart_hangs,
     odd_log_lines_do_not_hurt_the_owner,
     node_uses_the_vms_epmd_port,
     readme_supervisor_runs,
     supervised_node_survives_five_kill9s,
     too_many_restarts_stop_the_owner,
     the_cookie_is_in_no_report_or_status,
     a_host_that_is_not_fully_qualified_is_refused_at_once,
     names_no_beam_registers_are_refused,
     start_timeout_is_bounded,
     restart_keys_are_checked,
     tools_run_node_prints_the_cookie_and_name_the_node_uses,
     a_name_taken_is_refused,
     a_killed_owners_name_is_taken_again,
     a_node_that_ignores_sigterm_and_keeps_logging_is_killed,
     options_are_checked_and_the_cookie_is_hidden,
     restarts_that_never_come_up_stop_the_owner,
     a_killed_owner_leaves_no_pinger,
     a_line_with_no_end_is_cut,
     a_flood_of_lines_is_dropped_not_queued,
     a_start_that_floods_still_times_out,
     a_stuck_job_does_not_hold_the_stop_off,
     an_owner_gone_while_the_node_boots_takes_it_down,
     an_owner_gone_while_a_callback_holds_the_loop_takes_it_down,
     a_module_s_own_thread_does_not_take_the_stop,
     child_spec_is_a_permanent_worker,
     a_node_that_cannot_start_says_why,
     log_lines_reach_logger_at_their_level].

init_per_suite(Config) ->
    durable_harness:init_suite(?MODULE, Config).

end_per_suite(Config) ->
    durable_harness:end_suite(Config).

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, _Config) ->
    gen_cnode_test_env:reap().

name(Prefix) ->
    list_to_atom(Prefix ++ integer_to_list(erlang:unique_integer([positive])) ++ "@127.0.0.1").

%% A supervisor of the test's own, with OTP's default intensity (1 restart in
%% 5 s): the owner's restarts of its C node must never reach it.
start_sup(ChildSpec) ->
    Self = self(),
    Holder = spawn(fun() ->
                           process_flag(trap_exit, true),
                           {ok, S} = supervisor:start_link(?MODULE, {sup, ChildSpec}),
                           Self ! {sup, S},
                           receive {'EXIT', S, _} -> ok end
                   end),
    receive {sup, S} -> gen_cnode_test_env:track({pid, Holder}), gen_cnode_test_env:track({pid, S}), S
    after 30000 -> ct:fail(supervisor_did_not_start)
    end.

init({sup, ChildSpec}) ->
    {ok, {#{strategy => one_for_one, intensity => 1, period => 5}, [ChildSpec]}}.

owner_of(Sup) ->
    [{_, Owner, worker, _}] = supervisor:which_children(Sup),
    Owner.

kill9(Owner) ->
    OsPid = gen_cnode:os_pid(Owner),
    _ = os:cmd("kill -KILL " ++ integer_to_list(OsPid)),
    OsPid.

%%% Cases

%% One version: mix.exs's, the application's (gen_cnode.app.src) and the
%% CHANGELOG's latest entry.
versions_agree(_Config) ->
    Top = filename:dirname(filename:dirname(gen_cnode_test_env:executable())),
    {ok, Mix} = file:read_file(filename:join(Top, "mix.exs")),
    {match, [MixVsn]} = re:run(Mix, "@version \"([^\"]+)\"", [{capture, all_but_first, list}]),
    _ = application:load(gen_cnode),
    {ok, AppVsn} = application:get_key(gen_cnode, vsn),
    {ok, Log} = file:read_file(filename:join(Top, "CHANGELOG.md")),
    {match, [Latest | _]} = re:run(Log, "^## \\[?([0-9][^] ]*)", [multiline, global, {capture, all_but_first, list}]),
    ?assertEqual({MixVsn, MixVsn}, {AppVsn, hd(Latest)}).

%% The VM was told its epmd port with -epmd_port (erl turns ERL_EPMD_PORT
%% into it): with the variable gone from the environment the C node inherits,
%% the owner still points it at the same epmd.
node_uses_the_vms_epmd_port(Config) ->
    case init:get_argument(epmd_port) of
        {ok, [[_ | _] | _]} ->
            Saved = os:getenv("ERL_EPMD_PORT"),
            os:unsetenv("ERL_EPMD_PORT"),
            try
                Node = name("epmdport"),
                Log = filename:join(?config(priv_dir, Config), "epmdport.log"),
                {ok, Owner} = gen_cnode:start(#{name => Node, log => Log}),
                gen_cnode_test_env:track({cnode, Owner}),
                ?assertEqual(pong, net_adm:ping(Node)),
                ok = gen_cnode:stop(Owner)
            after
                Saved =/= false andalso os:putenv("ERL_EPMD_PORT", Saved)
            end;
        _ ->
            %% make test always starts the VM with one (ERL_EPMD_PORT): a
            %% VM without one has nothing to pass on, and nothing to test.
            ?assertEqual(false, os:getenv("ERL_EPMD_PORT")),
            {skip, "the VM has no -epmd_port"}
    end.

%% A wrapper around the C node: Script runs first (sh), then the node.
wrapper(Config, Name, Script) ->
    Path = filename:join(?config(priv_dir, Config), Name),
    ok = file:write_file(Path, ["#!/bin/sh\n", Script, "\nexec ",
                                gen_cnode_test_env:executable(), " \"$@\"\n"]),
    ok = file:change_mode(Path, 8#755),
    Path.

%% An owner of a node named Tag whose node was killed and is being started
%% again by a wrapper that hangs (it never answers): {Owner, Node}, both
%% tracked for the reaper.
hanging_restart(Config, Tag) ->
    Flag = filename:join(?config(priv_dir, Config), Tag ++ ".flag"),
    _ = file:delete(Flag),
    Exe = wrapper(Config, Tag ++ "-wrapper", ["[ -e ", Flag, " ] && exec sleep 60"]),
    Node = name(Tag),
    {ok, Owner} = gen_cnode:start(#{name => Node, executable => Exe, start_timeout => 20000,
                                    log => filename:join(?config(priv_dir, Config), Tag ++ ".log")}),
    gen_cnode_test_env:track({cnode, Owner}),
    ok = file:write_file(Flag, <<>>),
    OsPid = kill9(Owner),
    ok = gen_cnode_test_env:wait_until(fun() -> gen_cnode:os_pid(Owner) =/= OsPid end, 10000),
    gen_cnode_test_env:track({os_pid, gen_cnode:os_pid(Owner)}),
    {Owner, Node}.

%% A restart that hangs (the new node never answers) does not hold the
%% owner: it answers calls meanwhile, and stop/1 stops it at once.
owner_serves_while_a_restart_hangs(Config) ->
    {Owner, Node} = hanging_restart(Config, "hangs"),
    {Us, Node} = timer:tc(fun() -> gen_cnode:node(Owner) end),
    ?assert(Us < 1000000),
    {StopUs, _} = timer:tc(fun() -> gen_cnode:stop(Owner) end),
    ct:log("node/1 answered in ~b us and stop/1 took ~b ms during a hanging restart",
           [Us, StopUs div 1000]),
    ?assert(StopUs < 10000000),
    ?assertNot(is_process_alive(Owner)).

%% Lines the owner cannot parse, or that are not UTF-8, are logged as
%% they are, and cost nothing else.
odd_log_lines_do_not_hurt_the_owner(Config) ->
    Exe = wrapper(Config, "odd-wrapper",
                  "printf 'x y error:\\n2026-01-01T00:00:00.000Z n info:\\ncaf\\303\\251 \\351t\\351 ~p ~s\\n' >&2"),
    Node = name("odd"),
    ok = logger:add_handler(gen_cnode_app_test, ?MODULE, #{config => #{to => self()}, level => all}),
    try
        {ok, Owner} = gen_cnode:start(#{name => Node, executable => Exe}),
        gen_cnode_test_env:track({cnode, Owner}),
        ?assertEqual(pong, net_adm:ping(Node)),
        ?assert(is_process_alive(Owner)),
        {ok, #{filters := Filters}} = logger:get_handler_config(default),
        ?assert(lists:keymember(gen_cnode, 1, Filters)), %% the lines show in a plain erl
        ok = gen_cnode:stop(Owner),
        Events = collect_events([]),
        ct:log("~p", [Events]),
        %% each odd line whole, as a warning; the one that is not UTF-8 read
        %% as Latin-1, every byte of it
        Warned = [Text || {warning, _, Text} <- Events],
        [?assert(lists:member(atom_to_list(Node) ++ ": " ++ Line, Warned))
         || Line <- ["x y error:", "2026-01-01T00:00:00.000Z n info:",
                     binary_to_list(<<"caf", 16#c3, 16#a9, " ", 16#e9, "t", 16#e9, " ~p ~s">>)]]
    after
        logger:remove_handler(gen_cnode_app_test)
    end.

%% README.md's supervisor, as the README shows it (its node name made unique
%% for the test): compiled, started, used, stopped.
readme_supervisor_runs(Config) ->
    Readme = filename:join(filename:dirname(filename:dirname(gen_cnode_test_env:executable())),
                           "README.md"),
    {ok, Text} = file:read_file(Readme),
    [_, Section] = binary:split(Text, <<"### Under a supervisor">>),
    [_, Block] = binary:split(Section, <<"```erlang\n">>),
    [Code | _] = binary:split(Block, <<"```">>),
    Node = name("readme"),
    Source = binary:replace(Code, <<"'kv@127.0.0.1'">>, iolist_to_binary(io_lib:format("~p", [Node])), [global]),
    File = filename:join(?config(priv_dir, Config), "myapp_sup.erl"),
    ok = file:write_file(File, Source),
    {ok, myapp_sup, Beam} = compile:file(File, [binary, return_errors]),
    {module, myapp_sup} = code:load_binary(myapp_sup, "myapp_sup.erl", Beam),
    Dir = filename:join(?config(priv_dir, Config), "readme-data"),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Self = self(),
    Holder = spawn(fun() -> process_flag(trap_exit, true),
                            Self ! {sup, myapp_sup:start_link(Dir)},
                            receive stop -> ok end end),
    {ok, Sup} = receive {sup, R} -> R after 30000 -> ct:fail(no_supervisor) end,
    gen_cnode_test_env:track({pid, Holder}),
    ok = gen_server:call({kv, Node}, {put_sync, readme, 1}),
    ok = gen_server:cast({hits, Node}, incr),
    ok = gen_cnode_test_env:wait_until(fun() -> gen_server:call({hits, Node}, get) =:= 1 end, 5000),
    ok = supervisor:terminate_child(Sup, gen_cnode),
    Holder ! stop,
    code:purge(myapp_sup), code:delete(myapp_sup).


%% kill -9 five times in a row: each time the owner starts the C node again,
%% calls succeed, the servers declared with `start` are back, and the
%% durable kv has every key it acknowledged. The supervisor never restarts
%% its child.
supervised_node_survives_five_kill9s(Config) ->
    Node = name("crash"),
    Dir = filename:join(?config(priv_dir, Config), "crash-data"),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Log = filename:join(?config(priv_dir, Config), "crash.log"),
    Spec = gen_cnode:child_spec(#{name => Node, data_dir => Dir, log => Log,
                                  start => ["counter:tally"], restart => #{intensity => 10, period => 60}}),
    Sup = start_sup(Spec),
    Owner = owner_of(Sup),
    lists:foreach(
      fun(Round) ->
              [ok = gen_server:call({kv, Node}, {put_sync, {Round, K}, K}) || K <- lists:seq(1, 100)],
              ok = gen_server:cast({tally, Node}, {add, Round}),
              OsPid = kill9(Owner),
              %% Up again, with a new OS process, under the same owner.
              %% Calls fail while it restarts (noconnection, noproc): a
              %% client retries, as this one does, until every key is read.
              ok = gen_cnode_test_env:wait_until(
                     fun() -> (catch gen_cnode:os_pid(Owner)) =/= OsPid andalso
                                  (catch all_there(Node, Round)) =:= true
                     end, 30000),
              %% and the owner has seen it up (its pong) before the next kill
              ok = gen_cnode_test_env:wait_until(
                     fun() -> {ok, T} = file:read_file(Log),
                              length(binary:matches(T, <<"C node up again">>)) =:= Round
                     end, 30000),
              ?assertEqual(Owner, owner_of(Sup)),
              ?assertEqual(0, gen_server:call({tally, Node}, get)) %% memory only: back, empty
      end, lists:seq(1, 5)),
    {ok, Text} = file:read_file(Log),
    ?assertEqual(5, length(binary:matches(Text, <<"C node up again">>))),
    ok = supervisor:terminate_child(Sup, gen_cnode),
    ?assertEqual([], gen_cnode_test_env:sanitizer_reports(Log)).

%% Every key acknowledged in rounds 1..Round, and the declared counter.
all_there(Node, Round) ->
    lists:all(fun({R, K}) -> gen_server:call({kv, Node}, {get, {R, K}}, 2000) =:= K end,
              [{R, K} || R <- lists:seq(1, Round), K <- lists:seq(1, 100)])
        andalso is_integer(gen_server:call({tally, Node}, get, 2000)).

%% More than `intensity` restarts within `period`: the owner gives up with
%% too_many_restarts and the exit it saw last.
too_many_restarts_stop_the_owner(Config) ->
    Node = name("fragile"),
    Log = filename:join(?config(priv_dir, Config), "fragile.log"),
    {ok, Owner} = gen_cnode:start(#{name => Node, log => Log,
                                    restart => #{intensity => 2, period => 60}}),
    gen_cnode_test_env:track({cnode, Owner}),
    Ref = monitor(process, Owner),
    %% Each kill once the owner has seen the node up again (its pong), so
    %% that each counts as the exit of a running node, not a failed start.
    Ups = fun() -> {ok, Text} = file:read_file(Log),
                   length(binary:matches(Text, <<"C node up again">>)) end,
    Kill = fun(N) ->
                   kill9(Owner),
                   ok = gen_cnode_test_env:wait_until(fun() -> Ups() =:= N end, 30000)
           end,
    Kill(1), Kill(2),
    _ = kill9(Owner),
    receive {'DOWN', Ref, process, Owner, Why} ->
            ?assertEqual({too_many_restarts, {exit_status, 137}}, Why)
    after 30000 -> ct:fail(owner_did_not_give_up)
    end.

%% The cookie is in no crash report, no sys:get_status and no
%% sys:get_state of the owner: not while it runs, not after a restart, not
%% when it gives up (too_many_restarts, whose crash report prints its
%% state); and the node it restarts has it all the same (it answers the
%% ping). A GEN_CNODE_COOKIE a user passes in env is hidden from
%% sys:get_status too.
the_cookie_is_in_no_report_or_status(Config) ->
    Node = name("secret"),
    Log = filename:join(?config(priv_dir, Config), "secret.log"),
    Unique = integer_to_list(erlang:unique_integer([positive])),
    Cookie = list_to_atom("secretcookie" ++ Unique),
    Hidden = fun(Text, C) -> string:find(Text, C) =:= nomatch end,
    ok = logger:add_handler(gen_cnode_app_all, ?MODULE,
                            #{config => #{to => self(), all => true}, level => all}),
    try
        {ok, Owner} = gen_cnode:start(#{name => Node, log => Log, cookie => Cookie,
                                        env => [{"GEN_CNODE_TEST", "shown"}],
                                        restart => #{intensity => 1, period => 60}}),
        gen_cnode_test_env:track({cnode, Owner}),
        Ref = monitor(process, Owner),
        Shown = fun() -> lists:flatten(io_lib:format("~p ~p", [sys:get_status(Owner), sys:get_state(Owner)])) end,
        ?assert(Hidden(Shown(), atom_to_list(Cookie))),
        ?assertNotEqual(nomatch, string:find(Shown(), "GEN_CNODE_TEST")), %% the rest is there
        kill9(Owner),
        ok = gen_cnode_test_env:wait_until(
               fun() -> {ok, Text} = file:read_file(Log),
                        binary:match(Text, <<"C node up again">>) =/= nomatch end, 30000),
        erlang:set_cookie(Node, Cookie),
        ?assertEqual(pong, net_adm:ping(Node)),
        ?assert(Hidden(Shown(), atom_to_list(Cookie))),
        kill9(Owner),
        receive {'DOWN', Ref, process, Owner, Why} ->
                ?assertEqual({too_many_restarts, {exit_status, 137}}, Why)
        after 30000 -> ct:fail(owner_did_not_give_up)
        end,
        Events = collect_any_events([]),
        ?assertMatch([_], [E || E = #{msg := {report, #{label := {gen_server, terminate}}}} <- Events]),
        Text = lists:flatten(io_lib:format("~p", [Events])),
        ct:log("~ts", [Text]),
        ?assertNotEqual(nomatch, string:find(Text, "too_many_restarts")),
        ?assert(Hidden(Text, atom_to_list(Cookie)))
    after
        logger:remove_handler(gen_cnode_app_all)
    end,
    Other = "othercookie" ++ Unique,
    {ok, Owner2} = gen_cnode:start(#{name => name("secret"), log => Log, cookie => list_to_atom(Other),
                                     env => [{"GEN_CNODE_COOKIE", Other}]}),
    gen_cnode_test_env:track({cnode, Owner2}),
    ?assert(Hidden(lists:flatten(io_lib:format("~p ~p", [sys:get_status(Owner2), sys:get_state(Owner2)])),
                   Other)),
    ok = gen_cnode:stop(Owner2),
    %% An owner refused the name of a running node (name_taken) leaves the
    %% VM's cookie for that node alone: the running node's own owner starts
    %% it again with its cookie, and it answers.
    Shared = name("shared"),
    {ok, Owner3} = gen_cnode:start(#{name => Shared, log => Log, cookie => list_to_atom(Other)}),
    gen_cnode_test_env:track({cnode, Owner3}),
    ?assertMatch({error, {name_taken, _}},
                 gen_cnode:start(#{name => Shared, log => Log, cookie => intruder, start_timeout => 500})),
    ?assertEqual(list_to_atom(Other), erlang:get_cookie(Shared)),
    ok = gen_cnode:stop(Owner3).

collect_any_events(Acc) ->
    receive {gen_cnode_any_log, Event} -> collect_any_events([Event | Acc])
    after 500 -> lists:reverse(Acc)
    end.

%% Under long names, a host that is neither dotted nor an address
%% (kv@localhost) is one OTP will not connect to ("Hostname localhost is
%% illegal"): refused at once, not pinged in vain until the start timeout.
a_host_that_is_not_fully_qualified_is_refused_at_once(Config) ->
    Log = filename:join(?config(priv_dir, Config), "unqualified.log"),
    Node = list_to_atom("unqualified" ++ integer_to_list(erlang:unique_integer([positive])) ++ "@localhost"),
    {Us, Result} = timer:tc(fun() -> gen_cnode_test_env:failed_start(#{name => Node, log => Log,
                                                                        start_timeout => 5000}) end),
    ?assertEqual({error, {needs_fully_qualified_host, Node}}, Result),
    ?assert(Us < 1000000).

%% undefined (nil from Elixir) and '' name nothing: a BEAM's register/2
%% refuses undefined, and '' would make a node '@127.0.0.1'. The owner
%% refuses them as names of the node and of the KeyValue server.
names_no_beam_registers_are_refused(Config) ->
    Log = filename:join(?config(priv_dir, Config), "noname.log"),
    [?assertEqual({error, {badopt, {name, N}}}, gen_cnode_test_env:failed_start(#{name => N, log => Log}))
     || N <- [undefined, nil, '', "", <<>>]],
    [?assertEqual({error, {badopt, {register, R}}},
                  gen_cnode_test_env:failed_start(#{name => name("noname"), log => Log, register => R}))
     || R <- [undefined, nil, '']].

%% start_timeout beyond what a receive can wait (2^32-1 ms, with the 10 s
%% gen_server:start adds) is refused as a bad option, not a crash
%% (timeout_value); the largest it takes starts a node.
start_timeout_is_bounded(Config) ->
    Log = filename:join(?config(priv_dir, Config), "limits.log"),
    Max = 16#ffffffff - 10000,
    [?assertEqual({error, {badopt, {start_timeout, T}}},
                  catch gen_cnode_test_env:failed_start(#{name => name("limits"), log => Log,
                                                          start_timeout => T}))
     || T <- [Max + 1, 16#ffffffff, 1 bsl 64]],
    {ok, Owner} = gen_cnode:start(#{name => name("limits"), log => Log, start_timeout => Max}),
    gen_cnode_test_env:track({cnode, Owner}),
    ok = gen_cnode:stop(Owner).

%% A restart map with a key it does not know is refused, as an option is
%% (a misspelt period would leave the default in force unnoticed).
restart_keys_are_checked(Config) ->
    Log = filename:join(?config(priv_dir, Config), "restartkeys.log"),
    [?assertEqual({error, {badopt, {restart, R}}},
                  gen_cnode_test_env:failed_start(#{name => name("restartkeys"), log => Log, restart => R}))
     || R <- [#{intensity => 2, peroid => 60}, #{intensity => 2, period => 60, extra => x}]].

%% tools/run-node (make run) prints the cookie the node uses
%% ($GEN_CNODE_COOKIE before ~/.erlang.cookie, as the node takes it) and
%% its name, --name=NAME as well as --name NAME: the iex line it prints
%% connects.
tools_run_node_prints_the_cookie_and_name_the_node_uses(Config) ->
    Top = filename:dirname(filename:dirname(gen_cnode_test_env:executable())),
    Script = filename:join([Top, "tools", "run-node"]),
    Home = filename:join(?config(priv_dir, Config), "run-node-home"),
    ok = filelib:ensure_dir(filename:join(Home, "x")),
    ok = file:write_file(filename:join(Home, ".erlang.cookie"), <<"FILECOOKIE">>),
    Cookie = "envcookie" ++ integer_to_list(erlang:unique_integer([positive])),
    Run = fun(NameArgs, Node) ->
                  Port = open_port({spawn_executable, Script},
                                   [{args, NameArgs ++ ["--watch-stdin"]}, exit_status, stderr_to_stdout,
                                    use_stdio, binary, {line, 4096},
                                    {env, [{"HOME", Home}, {"GEN_CNODE_COOKIE", Cookie}]}]),
                  {os_pid, OsPid} = erlang:port_info(Port, os_pid),
                  gen_cnode_test_env:track({os_pid, OsPid}),
                  Lines = port_lines(Port, Node, []),
                  ct:log("~p", [Lines]),
                  ?assert(lists:member(<<"run-node: cookie ", (list_to_binary(Cookie))/binary>>, Lines)),
                  %% the lines to try in iex: GenServer.call({:kv, :"Node"}, ...)
                  Quoted = <<":\"", (atom_to_binary(Node))/binary, "\"">>,
                  ?assert(lists:any(fun(L) -> binary:match(L, Quoted) =/= nomatch end, Lines)),
                  erlang:set_cookie(Node, list_to_atom(Cookie)),
                  ?assertEqual(pong, net_adm:ping(Node)),
                  port_close(Port),
                  os:cmd("kill -TERM " ++ integer_to_list(OsPid)),
                  ok = gen_cnode_test_env:wait_until(fun() -> not gen_cnode_test_env:os_alive(OsPid) end, 10000)
          end,
    Unique = integer_to_list(erlang:unique_integer([positive])),
    Run(["--name=runnode" ++ Unique], list_to_atom("runnode" ++ Unique ++ "@127.0.0.1")),
    Run(["--name", "runnodeb" ++ Unique ++ "@127.0.0.1"], list_to_atom("runnodeb" ++ Unique ++ "@127.0.0.1")).

%% The lines of Port until the node says it is ready.
port_lines(Port, Node, Acc) ->
    receive
        {Port, {data, {_, Line}}} ->
            case binary:match(Line, <<"ready name=">>) of
                nomatch -> port_lines(Port, Node, [Line | Acc]);
                _ -> lists:reverse([Line | Acc])
            end;
        {Port, {exit_status, S}} -> ct:fail({run_node_exited, S, lists:reverse(Acc)})
    after 10000 -> ct:fail({run_node_not_ready, Node, lists:reverse(Acc)})
    end.

%% A second owner asked for a name a running node has: {error, {name_taken,
%% Node}} once the name stayed taken for its start_timeout, not ok because
%% the pings reach the other node; the first one is untouched.
a_name_taken_is_refused(Config) ->
    Node = name("taken"),
    Log = filename:join(?config(priv_dir, Config), "taken.log"),
    {ok, First} = gen_cnode:start(#{name => Node, log => Log}),
    gen_cnode_test_env:track({cnode, First}),
    {Us, Taken} = timer:tc(fun() -> gen_cnode_test_env:failed_start(#{name => Node, log => Log,
                                                                       start_timeout => 1500}) end),
    ?assertEqual({error, {name_taken, Node}}, Taken),
    ?assert(Us >= 1500000),
    ?assertEqual(pong, net_adm:ping(Node)),
    ok = gen_cnode:stop(First).

%% An owner killed (a supervisor's brutal_kill): its node stops at its
%% stdin's end, and an owner started at once under the same name (the
%% supervisor's restart) waits for the name rather than fail name_taken.
%% Ten times over, each with a node still starting when its owner dies.
a_killed_owners_name_is_taken_again(Config) ->
    Node = name("again"),
    Log = filename:join(?config(priv_dir, Config), "again.log"),
    {ok, First} = gen_cnode:start(#{name => Node, log => Log}),
    gen_cnode_test_env:track({cnode, First}),
    Last = lists:foldl(
             fun(_, Owner) ->
                     OsPid = gen_cnode:os_pid(Owner),
                     %% its node goes at its stdin's end, or by the reaper
                     gen_cnode_test_env:track({os_pid, OsPid}),
                     exit(Owner, kill),
                     {ok, Next} = gen_cnode:start(#{name => Node, log => Log}),
                     gen_cnode_test_env:track({cnode, Next}),
                     ok = gen_cnode_test_env:wait_until(fun() -> not gen_cnode_test_env:os_alive(OsPid) end, 5000),
                     ?assertEqual(pong, net_adm:ping(Node)),
                     Next
             end, First, lists:seq(1, 10)),
    ok = gen_cnode:stop(Last).

%% A node that ignores SIGTERM and keeps writing lines (a module stuck in a
%% loop that logs, played by a wrapper shell that runs the node beside it)
%% still gets its SIGKILL after the grace: stop returns {error, {killed,
%% _}} in time rather than wait on the lines. (Lines that come faster than
%% the owner logs them would queue ahead of the stop request itself: the
%% node's own log is throttled, a module's fprintf is not.)
a_node_that_ignores_sigterm_and_keeps_logging_is_killed(Config) ->
    Exe = filename:join(?config(priv_dir, Config), "chatty-wrapper"),
    %% (fd 3: a background job's stdin would be /dev/null, and the node
    %% watches its stdin)
    ok = file:write_file(Exe, ["#!/bin/sh\ntrap '' TERM\nexec 3<&0\n", gen_cnode_test_env:executable(),
                               " \"$@\" <&3 3<&- &\n",
                               "while :; do echo 'still here' >&2; sleep 0.002; done\n"]),
    ok = file:change_mode(Exe, 8#755),
    Node = name("chatty"),
    {ok, Owner} = gen_cnode:start(#{name => Node, executable => Exe,
                                    log => filename:join(?config(priv_dir, Config), "chatty.log")}),
    gen_cnode_test_env:track({cnode, Owner}),
    %% the shell ignores SIGTERM (and, as the VM's child, SIGPIPE): the
    %% reaper kills it by pid if the case fails
    gen_cnode_test_env:track({os_pid, gen_cnode:os_pid(Owner)}),
    {Us, Stop} = timer:tc(fun() -> catch gen_cnode:stop(Owner) end),
    ct:log("stopped in ~b ms: ~p", [Us div 1000, Stop]),
    ?assertMatch({error, {killed, _}}, Stop),
    %% the node beside the shell goes at its stdin's end
    ok = gen_cnode_test_env:wait_until(fun() -> net_adm:ping(Node) =:= pang end, 10000).

%% An option the owner does not know is refused, as one of the wrong type
%% is (a misspelt data_dir would run a store in memory unnoticed); env
%% takes binaries as Elixir passes them; the cookie reaches the node through
%% its environment, never its command line (any local user reads that).
options_are_checked_and_the_cookie_is_hidden(Config) ->
    Node = name("opts"),
    Log = filename:join(?config(priv_dir, Config), "opts.log"),
    ?assertEqual({error, {badopt, {datadir, "/tmp/x"}}},
                 gen_cnode_test_env:failed_start(#{name => Node, log => Log, datadir => "/tmp/x"})),
    ?assertMatch({error, {badopt, {env, {"A", 1}}}},
                 gen_cnode_test_env:failed_start(#{name => Node, log => Log, env => [{"A", 1}]})),
    %% a cookie of its own: the node must have it to answer the ping
    Cookie = list_to_atom("hidden" ++ integer_to_list(erlang:unique_integer([positive]))),
    {ok, Owner} = gen_cnode:start(#{name => Node, log => Log, cookie => Cookie,
                                    env => [{<<"GEN_CNODE_TEST">>, <<"yes">>}]}),
    gen_cnode_test_env:track({cnode, Owner}),
    OsPid = integer_to_list(gen_cnode:os_pid(Owner)),
    {ok, Cmdline} = file:read_file("/proc/" ++ OsPid ++ "/cmdline"),
    ?assertEqual(nomatch, binary:match(Cmdline, atom_to_binary(Cookie))),
    {ok, Environ} = file:read_file("/proc/" ++ OsPid ++ "/environ"),
    ?assertNotEqual(nomatch, binary:match(Environ, <<"GEN_CNODE_TEST=yes">>)),
    ?assertEqual(pong, net_adm:ping(Node)),
    ok = gen_cnode:stop(Owner).

%% Restarts that never come up (each one's start timeout longer than period
%% / intensity, so that never so many fall within the period) stop the
%% owner after `intensity` of them in a row, rather than SIGKILL a node
%% every few seconds forever.
restarts_that_never_come_up_stop_the_owner(Config) ->
    Flag = filename:join(?config(priv_dir, Config), "never"),
    _ = file:delete(Flag),
    Exe = wrapper(Config, "never-wrapper", ["[ -e ", Flag, " ] && exec sleep 60"]),
    Node = name("never"),
    {ok, Owner} = gen_cnode:start(#{name => Node, executable => Exe, start_timeout => 1500,
                                    restart => #{intensity => 3, period => 2},
                                    log => filename:join(?config(priv_dir, Config), "never.log")}),
    gen_cnode_test_env:track({cnode, Owner}),
    Ref = monitor(process, Owner),
    ok = file:write_file(Flag, <<>>),
    _ = kill9(Owner),
    receive {'DOWN', Ref, process, Owner, Why} ->
            ?assertMatch({too_many_restarts, {restart_failed, {start_timeout, _}}}, Why)
    after 30000 -> ct:fail(owner_did_not_give_up)
    end.

%% An owner killed (a supervisor's brutal_kill) in the middle of a restart
%% leaves no process pinging the node's name behind it.
a_killed_owner_leaves_no_pinger(Config) ->
    {Owner, _Node} = hanging_restart(Config, "pinger"),
    ok = gen_cnode_test_env:wait_until(fun() -> pingers() =/= [] end, 5000),
    Ref = monitor(process, Owner),
    exit(Owner, kill),
    receive {'DOWN', Ref, process, Owner, killed} -> ok after 5000 -> ct:fail(owner_not_killed) end,
    ok = gen_cnode_test_env:wait_until(fun() -> pingers() =:= [] end, 2000).

pingers() ->
    [P || P <- processes(), P =/= self(),
          {current_stacktrace, St} <- [process_info(P, current_stacktrace)],
          lists:any(fun(F) -> element(1, F) =:= gen_cnode andalso element(2, F) =:= ping_until_pong end, St)].

%% A line with no end (a module writing megabytes to stderr with no
%% newline) is cut at 64 KiB, the rest of it dropped; the lines after it
%% come through as they are.
a_line_with_no_end_is_cut(Config) ->
    Log = filename:join(?config(priv_dir, Config), "long.log"),
    Exe = wrapper(Config, "long-wrapper",
                  "head -c 300000 /dev/zero | tr '\\0' x >&2; echo ' end of the long one' >&2; "
                  "echo 'a short one' >&2"),
    {ok, Owner} = gen_cnode:start(#{name => name("long"), executable => Exe, log => Log}),
    gen_cnode_test_env:track({cnode, Owner}),
    ok = gen_cnode:stop(Owner),
    {ok, Text} = file:read_file(Log),
    Lines = binary:split(Text, <<"\n">>, [global]),
    [Cut] = [L || L <- Lines, binary:match(L, <<"[cut: a line over 64 KiB]">>) =/= nomatch],
    ?assert(byte_size(Cut) < 66000),
    ?assertEqual([], [L || L <- Lines, binary:match(L, <<"end of the long one">>) =/= nomatch]),
    ?assertMatch([_], [L || L <- Lines, L =:= <<"a short one">>]).

%% The VM that owns a node dies while the node boots (a module's init that
%% takes 20 s stands for a big store's recovery): the node goes at once,
%% not once it is booted, and says why.
an_owner_gone_while_the_node_boots_takes_it_down(Config) ->
    Log = filename:join(?config(priv_dir, Config), "boot.log"),
    Module = filename:join([filename:dirname(gen_cnode_test_env:executable()), "test_modules",
                            "misbehave.so"]),
    Node = name("boot"),
    {Peer, _} = gen_cnode_test_env:start_tracked_peer(boot_owner),
    Opts = #{name => Node, log => Log, load => [Module], start_timeout => 60000,
             executable => gen_cnode_test_env:executable(),
             start => ["misbehave:sleepy={sleep_in_init,20000}"]},
    Self = self(),
    Starter = spawn(fun() -> Self ! {started, catch peer:call(Peer, gen_cnode, start, [Opts], 60000)} end),
    gen_cnode_test_env:track({pid, Starter}),
    Find = fun() -> case string:lexemes(os:cmd("pgrep -f -- '--name[ ]" ++ atom_to_list(Node) ++ "'"), "\n") of
                        [P] -> list_to_integer(P);
                        _ -> false
                    end
           end,
    ok = gen_cnode_test_env:wait_until(fun() -> Find() =/= false end, 10000),
    OsPid = Find(),
    gen_cnode_test_env:track({os_pid, OsPid}),
    ok = gen_cnode_test_env:wait_until(
           fun() -> {ok, T} = file:read_file(Log),
                    binary:match(T, <<"loaded module misbehave">>) =/= nomatch end, 10000),
    T0 = erlang:monotonic_time(millisecond),
    peer:stop(Peer),
    ok = gen_cnode_test_env:wait_until(fun() -> not gen_cnode_test_env:os_alive(OsPid) end, 5000),
    ct:log("the node went ~b ms after its owner's VM", [erlang:monotonic_time(millisecond) - T0]),
    ?assert(erlang:monotonic_time(millisecond) - T0 < 5000).

%% The VM that owns a node dies while a module's callback holds the node's
%% loop (an init that sleeps 60 s): the node is asked to stop, and when its
%% loop cannot, it exits anyway once the jobs' grace (here 100 ms) and 5 s
%% more have passed, rather than stay for as long as the callback takes,
%% holding its name. The old node watched stdin on its loop, and stayed 60 s.
an_owner_gone_while_a_callback_holds_the_loop_takes_it_down(Config) ->
    Log = filename:join(?config(priv_dir, Config), "held.log"),
    Module = filename:join([filename:dirname(gen_cnode_test_env:executable()), "test_modules",
                            "misbehave.so"]),
    Node = name("held"),
    {Peer, _} = gen_cnode_test_env:start_tracked_peer(held_owner),
    Opts = #{name => Node, log => Log, load => [Module], args => ["--jobs-grace", "100"],
             executable => gen_cnode_test_env:executable()},
    {ok, Owner} = peer:call(Peer, gen_cnode, start, [Opts], 30000),
    OsPid = peer:call(Peer, gen_cnode, os_pid, [Owner]),
    gen_cnode_test_env:track({os_pid, OsPid}),
    pong = net_adm:ping(Node),
    Caller = spawn(fun() -> catch gen_server:call({gen_cnode, Node}, {start, misbehave, {sleep_in_init, 60000}},
                                                  infinity) end),
    gen_cnode_test_env:track({pid, Caller}),
    ok = gen_cnode_test_env:wait_until(
           fun() -> {ok, T} = file:read_file(Log),
                    binary:match(T, <<"sleeping">>) =/= nomatch end, 10000),
    T0 = erlang:monotonic_time(millisecond),
    peer:stop(Peer),
    ok = gen_cnode_test_env:wait_until(fun() -> not gen_cnode_test_env:os_alive(OsPid) end, 15000),
    Took = erlang:monotonic_time(millisecond) - T0,
    ct:log("the node went ~b ms after its owner's VM", [Took]),
    ?assert(Took >= 5000). %% asked first, and given its grace (its log went with its owner)

%% A module whose load starts a thread of its own (a library's background
%% thread): the owner's SIGTERM still reaches the node's loop, which stops
%% cleanly (status 0). The old node blocked SIGTERM only after the modules
%% were loaded, so their threads took it, with its default action: killed,
%% status 143, no terminate callbacks, no last flushes.
a_module_s_own_thread_does_not_take_the_stop(Config) ->
    Log = filename:join(?config(priv_dir, Config), "idle_thread.log"),
    Module = filename:join([filename:dirname(gen_cnode_test_env:executable()), "test_modules",
                            "idle_thread.so"]),
    Node = name("idlethread"),
    {ok, Owner} = gen_cnode:start(#{name => Node, log => Log, load => [Module],
                                    start => ["idle_thread:idler"],
                                    executable => gen_cnode_test_env:executable()}),
    gen_cnode_test_env:track({cnode, Owner}),
    ?assertEqual(pong, gen_server:call({idler, Node}, ping)),
    ?assertEqual(ok, gen_cnode:stop(Owner)),
    {ok, Text} = file:read_file(Log),
    ?assertNotEqual(nomatch, binary:match(Text, <<"notice: stopped">>)).

%% A module that writes lines faster than the owner can log them (here
%% 400,000 at once): the owner drops what waits, and says how many, rather
%% than queue them all in its mailbox, where they would fill the VM's memory
%% and hold a stop request off for as long as they take to log.
a_flood_of_lines_is_dropped_not_queued(Config) ->
    Log = filename:join(?config(priv_dir, Config), "flood.log"),
    Module = filename:join([filename:dirname(gen_cnode_test_env:executable()), "test_modules",
                            "misbehave.so"]),
    Node = name("flood"),
    {ok, Owner} = gen_cnode:start(#{name => Node, log => Log, load => [Module],
                                    start => ["misbehave:chatty"]}),
    gen_cnode_test_env:track({cnode, Owner}),
    Self = self(),
    Sampler = spawn_link(fun() -> sample_queue(Owner, Self, 0) end),
    gen_cnode_test_env:track({pid, Sampler}),
    ?assertEqual(ok, gen_server:call({chatty, Node}, {chatter, 400000}, 60000)),
    ?assertEqual(pong, gen_server:call({chatty, Node}, ping)),
    {Us, Stop} = timer:tc(fun() -> gen_cnode:stop(Owner) end),
    Sampler ! {stop, Self},
    Most = receive {most_queued, M} -> M after 5000 -> ct:fail(no_sampler) end,
    ct:log("most messages queued at the owner: ~b; stopped in ~b ms", [Most, Us div 1000]),
    ?assertEqual(ok, Stop),
    ?assert(Most < 200000), %% half the flood (the old owner held nearly all of it)
    {ok, Text} = file:read_file(Log),
    Dropped = [binary_to_integer(N)
               || [N] <- element(2, re:run(Text, "dropped ([0-9]+) of the C node's lines",
                                           [global, {capture, all_but_first, binary}]))],
    Logged = length(binary:matches(Text, <<"chatter ">>)),
    ct:log("dropped ~w, logged ~b", [Dropped, Logged]),
    ?assert(lists:all(fun(N) -> N > 0 end, Dropped)),
    %% every line is either logged or counted as dropped (a drop that cut a
    %% line counts the piece it took)
    ?assert(lists:sum(Dropped) + Logged >= 400000),
    ?assert(lists:sum(Dropped) > 0).

%% A node that writes without end and never answers ping: its start times
%% out all the same (the lines, always there, must not keep the owner from
%% noticing the deadline).
a_start_that_floods_still_times_out(Config) ->
    PidFile = filename:join(?config(priv_dir, Config), "yes.pid"),
    Exe = filename:join(?config(priv_dir, Config), "yes-wrapper"),
    ok = file:write_file(Exe, ["#!/bin/sh\necho $$ > ", PidFile, "\nexec yes 'no end to this' >&2\n"]),
    ok = file:change_mode(Exe, 8#755),
    _ = file:delete(PidFile),
    Self = self(),
    Starter = spawn(fun() ->
                            Self ! {started, gen_cnode:start(#{name => name("yes"), executable => Exe,
                                                               log => filename:join(?config(priv_dir, Config), "yes.log"),
                                                               start_timeout => 1000})}
                    end),
    gen_cnode_test_env:track({pid, Starter}),
    ok = gen_cnode_test_env:wait_until(fun() -> filelib:is_regular(PidFile) end, 10000),
    {ok, PidText} = file:read_file(PidFile),
    gen_cnode_test_env:track({os_pid, binary_to_integer(string:trim(PidText))}),
    receive
        {started, Result} ->
            ?assertMatch({error, {start_timeout, [_ | _]}}, Result)
    after 20000 ->
            ct:fail(start_never_returned)
    end.

%% A job that does not return (here a 60 s sleep on a worker, which no
%% signal reaches) holds a stopping node for --jobs-grace at most: the node
%% then says so and exits, 0, and the job goes with the process.
a_stuck_job_does_not_hold_the_stop_off(Config) ->
    Log = filename:join(?config(priv_dir, Config), "stuck.log"),
    Module = filename:join([filename:dirname(gen_cnode_test_env:executable()), "examples", "digest.so"]),
    Node = name("stuck"),
    {ok, Owner} = gen_cnode:start(#{name => Node, log => Log, load => [Module], workers => 2,
                                    start => ["digest:digest"], args => ["--jobs-grace", "300"]}),
    gen_cnode_test_env:track({cnode, Owner}),
    OsPid = gen_cnode:os_pid(Owner),
    gen_cnode_test_env:track({os_pid, OsPid}),
    _ = gen_server:send_request({digest, Node}, {sleep, 60000}),
    ok = gen_cnode_test_env:wait_until(
           fun() -> maps:get(jobs_running, gen_server:call({gen_cnode, Node}, stats)) =:= 1 end, 5000),
    {Us, Stop} = timer:tc(fun() -> gen_cnode:stop(Owner) end),
    ct:log("stopped in ~b ms: ~p", [Us div 1000, Stop]),
    ?assertEqual(ok, Stop), %% not {error, {killed, _}}: it exited by itself
    {ok, Text} = file:read_file(Log),
    ?assertMatch({match, _}, re:run(Text, "stopping: 1 job still running after 300 ms, left to the exit")),
    ?assertEqual(nomatch, re:run(Text, "no exit after SIGTERM")).

sample_queue(Owner, Parent, Most) ->
    receive
        {stop, Parent} -> Parent ! {most_queued, Most}
    after 1 ->
            case process_info(Owner, message_queue_len) of
                {message_queue_len, N} -> sample_queue(Owner, Parent, max(N, Most));
                undefined -> sample_queue(Owner, Parent, Most)
            end
    end.

child_spec_is_a_permanent_worker(_Config) ->
    Spec = gen_cnode:child_spec(#{name => x, id => my_node}),
    ?assertMatch(#{id := my_node, start := {gen_cnode, start_link, [#{name := x}]},
                   restart := permanent, type := worker}, Spec),
    {_, _, [Args]} = maps:get(start, Spec),
    ?assertNot(maps:is_key(id, Args)),
    ?assertEqual(ok, supervisor:check_childspecs([Spec])),
    ?assertMatch(#{id := gen_cnode}, gen_cnode:child_spec(#{})),
    ?assertEqual({error, {badopt, {workers, -1}}}, gen_cnode:start(#{workers => -1})),
    ?assertEqual({error, {badopt, {log_level, loud}}}, gen_cnode:start(#{log_level => loud})),
    ?assertEqual({error, {badopt, {restart, sometimes}}}, gen_cnode:start(#{restart => sometimes})).

%% A C node that cannot come up: the error carries its last log lines, not
%% a bare timeout.
a_node_that_cannot_start_says_why(Config) ->
    Log = filename:join(?config(priv_dir, Config), "cannot.log"),
    {ok, Taken} = gen_tcp:listen(0, [{ip, {127, 0, 0, 1}}]),
    {ok, Port} = inet:port(Taken),
    {error, {exited, 1, Lines}} =
        gen_cnode_test_env:failed_start(#{name => name("busy"), log => Log,
                                          args => ["--port", integer_to_list(Port)]}),
    ct:log("~p", [Lines]),
    ?assert(lists:any(fun(L) -> binary:match(L, <<"cannot listen">>) =/= nomatch end, Lines)),
    gen_tcp:close(Taken),
    {error, {exited, 2, Lines2}} =
        gen_cnode_test_env:failed_start(#{name => name("badload"), log => Log, load => ["/no/such.so"]}),
    ?assert(lists:any(fun(L) -> binary:match(L, <<"/no/such.so">>) =/= nomatch end, Lines2)).

%% With no log file, each line goes to Logger at the level the C node gave
%% it, with metadata gen_cnode_node and domain [gen_cnode].
log_lines_reach_logger_at_their_level(_Config) ->
    Node = name("logged"),
    ok = logger:add_handler(gen_cnode_app_test, ?MODULE, #{config => #{to => self()}, level => all}),
    #{level := Primary} = logger:get_primary_config(),
    ok = logger:set_primary_config(level, all), %% the default (notice) would drop info lines
    try
        {ok, Owner} = gen_cnode:start(#{name => Node, log_level => debug}),
        gen_cnode_test_env:track({cnode, Owner}),
        ok = gen_server:call({kv, Node}, {put, a, 1}),
        ok = gen_cnode:stop(Owner),
        Events = collect_events([]),
        ct:log("~p", [Events]),
        Levels = lists:usort([L || {L, _, _} <- Events]),
        ?assert(lists:member(info, Levels)),
        ?assert(lists:all(fun({_, #{gen_cnode_node := N, domain := [gen_cnode]}, _}) -> N =:= Node;
                             (_) -> false end, Events)),
        ?assert(lists:any(fun({_, _, Text}) -> string:find(Text, "connected") =/= nomatch end, Events))
    after
        logger:set_primary_config(level, Primary),
        logger:remove_handler(gen_cnode_app_test)
    end.

collect_events(Acc) ->
    receive {gen_cnode_log, Level, Meta, Text} -> collect_events([{Level, Meta, Text} | Acc])
    after 500 -> lists:reverse(Acc)
    end.

%% logger handler callback
log(Event, #{config := #{to := To, all := true}}) ->
    To ! {gen_cnode_any_log, Event};
log(#{level := Level, msg := Msg, meta := Meta}, #{config := #{to := To}}) ->
    case Meta of
        #{domain := [gen_cnode]} ->
            Text = case Msg of
                       {Format, Args} when is_list(Format) -> lists:flatten(io_lib:format(Format, Args));
                       {string, S} -> unicode:characters_to_list(S);
                       _ -> ""
                   end,
            To ! {gen_cnode_log, Level, maps:with([gen_cnode_node, domain], Meta), Text};
        _ -> ok
    end.

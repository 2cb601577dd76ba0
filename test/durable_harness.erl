%% durable_harness: what gen_cnode_durable_SUITE, gen_cnode_fidelity_SUITE
%% and gen_cnode_hostile_SUITE share beyond gen_cnode_test_env (their own epmd and distribution, and the
%% reaper that stops by pid whatever a test case started even when the case
%% fails or hits its timetrap: the suites call it for track/1, reap/0,
%% wait_until/2 and os_alive/1): the random seed, C nodes started with
%% gen_cnode:start/1 (tracked) and stopped or SIGKILLed by pid, :sys and
%% store helpers, and small file helpers.
%%
%% The seed: $GEN_CNODE_SEED if set (an integer), else one drawn at the start
%% of the suite; it is printed (ct:pal, so it is in the run's output) and each
%% case that uses randomness seeds exsss with {Seed, CaseHash}, so one case
%% is reproducible on its own: GEN_CNODE_SEED=N tools/run-tests ct25.
-module(durable_harness).

-define(config(Key, Config), proplists:get_value(Key, Config)).
-include_lib("stdlib/include/assert.hrl").

-export([init_suite/2, end_suite/1,
         start_cnode/3, try_start/3, stop_cnode/2, kill9/1, await_name_gone/2,
         state/1, status/1, status/2, fetch_many/2, verify_exact/2, log_lines/1,
         seed_case/2,
         list_dir/1, read_files/1, copy_dir/2, log_files/2, rm_rf/1,
         children_of/1]).

-define(SEED_KEY, {?MODULE, seed}).

%%% Suite setup

init_suite(Suite, Config) ->
    Config1 = gen_cnode_test_env:init_suite(Config),
    Seed = case os:getenv("GEN_CNODE_SEED") of
               S when is_list(S), S =/= "" -> list_to_integer(S);
               _ -> erlang:phash2({os:timestamp(), make_ref()}, 1 bsl 30)
           end,
    persistent_term:put(?SEED_KEY, Seed),
    ct:pal("~p: random seed ~b (rerun with GEN_CNODE_SEED=~b); C node ~s; epmd port ~b",
           [Suite, Seed, Seed, gen_cnode_test_env:executable(), gen_cnode_test_env:epmd_port()]),
    [{seed, Seed} | Config1].

end_suite(Config) ->
    gen_cnode_test_env:end_suite(Config).

%% Seeds this process's rand for Case and returns the seed used.
seed_case(Config, Case) ->
    Seed = case ?config(seed, Config) of
               undefined -> persistent_term:get(?SEED_KEY);
               S -> S
           end,
    _ = rand:seed(exsss, {Seed, erlang:phash2(Case), 16#5eed}),
    ct:log("~p: random seed ~b (GEN_CNODE_SEED=~b reproduces it)", [Case, Seed, Seed]),
    Seed.

%%% C nodes

%% Starts a C node (tracked: the reaper stops it by pid). Returns
%% {Owner, {Register, Node}, Log}; fails the case if it does not start.
start_cnode(Config, Name, Args) ->
    case try_start(Config, Name, Args) of
        {ok, Owner, Server, Log} ->
            {Owner, Server, Log};
        {error, Reason, Log} ->
            ct:fail({c_node_did_not_start, Name, Args, Reason, log_lines(Log)})
    end.

%% The same, returning {ok, Owner, Server, Log} | {error, Reason, Log}. Args
%% may hold {register, Atom}, {log, Path} and {env, [{Var, Value}]} besides
%% the strings.
try_start(Config, Name, Args0) ->
    Register = proplists:get_value(register, [A || A <- Args0, is_tuple(A)], kv),
    Log = case [P || {log, P} <- Args0] of
              [P | _] -> P;
              [] -> filename:join(?config(priv_dir, Config),
                                  atom_to_list(Name) ++ "-" ++ integer_to_list(
                                                                  erlang:unique_integer([positive]))
                                  ++ ".log")
          end,
    Env = proplists:get_value(env, [A || A <- Args0, is_tuple(A)], []),
    Args = [A || A <- Args0, not is_tuple(A)],
    Node = list_to_atom(atom_to_list(Name) ++ "@127.0.0.1"),
    %% restart => false: these suites kill C nodes and watch their owners go.
    case gen_cnode:start(#{name => Node, register => Register, args => Args, log => Log,
                           env => Env, start_timeout => 20000, restart => false}) of
        {ok, Owner} ->
            gen_cnode_test_env:track({cnode, Owner}),
            ct:log("started ~p (os pid ~p) ~p, log ~s",
                   [Node, gen_cnode:os_pid(Owner), Args, Log]),
            {ok, Owner, {Register, Node}, Log};
        {error, Reason} ->
            {error, Reason, Log}
    end.

%% Stops a C node by SIGTERM and checks it exited 0 with nothing from the
%% sanitizers.
stop_cnode(Owner, Log) ->
    ?assertEqual({ok, []},
                 {gen_cnode:stop(Owner), gen_cnode_test_env:sanitizer_reports(Log)}).

%% SIGKILL to the C node's OS process; returns once its owner saw it exit,
%% this node saw it go, and epmd no longer lists its name (so the same name
%% can be started again). Returns the exit status the owner saw.
kill9(Owner) ->
    OsPid = gen_cnode:os_pid(Owner),
    Node = gen_cnode:node(Owner),
    Ref = monitor(process, Owner),
    Connected = lists:member(Node, nodes(hidden)),
    Connected andalso erlang:monitor_node(Node, true),
    _ = os:cmd("kill -KILL " ++ integer_to_list(OsPid)),
    Why = receive {'DOWN', Ref, process, Owner, W} -> W
          after 10000 -> ct:fail({owner_did_not_see_the_kill, Owner, OsPid})
          end,
    Connected andalso
        receive {nodedown, Node} -> ok
        after 10000 -> ct:fail({no_nodedown_after_kill, Node})
        end,
    await_name_gone(Node, 10000),
    Why.

%% Waits until epmd no longer lists Node's name.
await_name_gone(Node, Timeout) ->
    [Name, _] = string:split(atom_to_list(Node), "@"),
    gen_cnode_test_env:wait_until(fun() ->
                                          {ok, Names} = net_adm:names("127.0.0.1"),
                                          not lists:keymember(Name, 1, Names)
                                  end, Timeout).

%% :sys.get_state of a server, whichever release we are (OTP 25 and 27 both
%% return the bare state from sys:get_state/2).
state(Server) ->
    sys:get_state(Server, 60000).

%% #{Key => Value} of those of Keys the server holds, asked with {fetch, K}
%% calls pipelined 500 at a time (a big store is checked this way rather than
%% with one :sys.get_state).
fetch_many(Server, Keys) ->
    fetch_many(Server, Keys, #{}).

fetch_many(_, [], Acc) ->
    Acc;
fetch_many(Server, Keys, Acc) ->
    {Window, Rest} = lists:split(min(500, length(Keys)), Keys),
    Ids = [{K, gen_server:send_request(Server, {fetch, K})} || K <- Window],
    Acc1 = lists:foldl(fun({K, Id}, A) ->
                               case gen_server:receive_response(Id, 30000) of
                                   {reply, {ok, V}} -> A#{K => V};
                                   {reply, error} -> A;
                                   Other -> error({fetch, K, Other})
                               end
                       end, Acc, Ids),
    fetch_many(Server, Rest, Acc1).

%% The server holds exactly Model: as many entries, and each key of Model
%% with its value (=:=). Fails with what differs.
verify_exact(Server, Model) ->
    Size = gen_server:call(Server, size, 30000),
    Got = fetch_many(Server, maps:keys(Model)),
    Wrong = lists:sublist([{K, V, maps:get(K, Got, '$absent')}
                           || {K, V} <- maps:to_list(Model), maps:get(K, Got, '$absent') =/= V], 5),
    ?assertEqual({size, maps:size(Model), wrong, []}, {size, Size, wrong, Wrong}).

%% The State map of :sys.get_status.
status(Server) ->
    status(Server, 30000).

status(Server, Timeout) ->
    {status, _, {module, gen_server}, [_, _, _, _, Misc]} = sys:get_status(Server, Timeout),
    [State] = [S || {data, [{"State", S}]} <- Misc],
    State.

log_lines(Log) ->
    case file:read_file(Log) of
        {ok, Text} -> [L || L <- binary:split(Text, <<"\n">>, [global]), L =/= <<>>];
        {error, _} -> []
    end.

%%% Files

list_dir(Dir) ->
    {ok, Names} = file:list_dir(Dir),
    lists:sort(Names).

%% [{Name, Contents}] of every file in Dir, sorted.
read_files(Dir) ->
    [{N, element(2, {ok, _} = file:read_file(filename:join(Dir, N)))} || N <- list_dir(Dir)].

copy_dir(From, To) ->
    ok = filelib:ensure_dir(filename:join(To, "x")),
    [{ok, _} = file:copy(filename:join(From, N), filename:join(To, N)) || N <- list_dir(From)],
    ok.

%% The generations of Register.log.N in Dir, sorted.
log_files(Dir, Register) ->
    Prefix = atom_to_list(Register) ++ ".log.",
    lists:sort([list_to_integer(lists:nthtail(length(Prefix), N))
                || N <- list_dir(Dir), lists:prefix(Prefix, N)]).

rm_rf(Dir) ->
    file:del_dir_r(Dir).

%%% OS processes

%% The child processes of OsPid (Linux /proc: the children file where the
%% kernel has it, else every process whose parent it is).
children_of(OsPid) ->
    P = integer_to_list(OsPid),
    case file:read_file("/proc/" ++ P ++ "/task/" ++ P ++ "/children") of
        {ok, Text} ->
            [binary_to_integer(C) || C <- binary:split(Text, <<" ">>, [global, trim_all])];
        {error, _} ->
            {ok, Names} = file:list_dir("/proc"),
            [list_to_integer(N) || N <- Names, lists:all(fun(C) -> C >= $0 andalso C =< $9 end, N),
                                   parent_of(N) =:= OsPid]
    end.

parent_of(Pid) ->
    case file:read_file("/proc/" ++ Pid ++ "/stat") of
        {ok, Stat} ->
            %% pid (comm) state ppid ...: comm may hold spaces, so after the last ')'.
            [_, After] = string:split(Stat, ")", trailing),
            [_State, PPid | _] = string:lexemes(After, " "),
            binary_to_integer(PPid);
        {error, _} ->
            none
    end.

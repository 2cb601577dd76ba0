%% erlang_app_SUITE: the application's C node, through its supervisor.
%%
%% init_per_suite brings up what the application needs, on 127.0.0.1: an epmd
%% of its own on $ERL_EPMD_PORT (4369 when unset) unless one answers there
%% already, and distribution with long names; then the application.
%% end_per_suite stops each again: the application (its supervisor stops the
%% C node by its OS pid within the child's shutdown time), distribution, and
%% epmd by its OS pid.
-module(erlang_app_SUITE).
-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([supervised/1, put_get/1, rate_limiter/1]).

suite() -> [{timetrap, {seconds, 60}}].

all() -> [supervised, put_get, rate_limiter].

init_per_suite(Config) ->
    Port = epmd_port(),
    Epmd = case epmd_answers(Port) of
               true -> undefined;
               false -> start_epmd(Port)
           end,
    StartedDist = case erlang:is_alive() of
                      true -> false;
                      false ->
                          {ok, _} = net_kernel:start(['erlang_app_test@127.0.0.1', longnames]),
                          true
                  end,
    Config1 = [{epmd, Epmd}, {started_dist, StartedDist} | Config],
    case application:ensure_all_started(erlang_app) of
        {ok, _} -> Config1;
        Error -> end_per_suite(Config1), ct:fail({erlang_app_did_not_start, Error})
    end.

end_per_suite(Config) ->
    application:stop(erlang_app),
    ?config(started_dist, Config) andalso net_kernel:stop(),
    case ?config(epmd, Config) of
        undefined -> ok;
        Epmd -> ct:log("epmd: ~p", [stop_epmd(Epmd)])
    end,
    ok.

%%% Cases

supervised(_Config) ->
    Node = erlang_app_sup:cnode(),
    [{_Id, Owner, worker, _}] = supervisor:which_children(erlang_app_sup),
    Node = gen_cnode:node(Owner),
    pong = net_adm:ping(Node).

put_get(_Config) ->
    Kv = {kv, erlang_app_sup:cnode()},
    ok = gen_cnode_kv:put(Kv, foo, #{any => ["term", 1.0]}),
    #{any := ["term", 1.0]} = gen_cnode_kv:get(Kv, foo),
    {ok, #{any := ["term", 1.0]}} = gen_cnode_kv:fetch(Kv, foo),
    nil = gen_cnode_kv:get(Kv, nothing),
    error = gen_cnode_kv:fetch(Kv, nothing, 1000),
    true = lists:member(foo, gen_cnode_kv:keys(Kv)),
    N = gen_cnode_kv:size(Kv),
    ok = gen_cnode_kv:delete(Kv, foo),
    N1 = N - 1,
    N1 = gen_cnode_kv:size(Kv).

%% The bucket holds 5 and refills one token per 10 ms, far slower than calls
%% come: take until refused, then wait for 3.
rate_limiter(_Config) ->
    Rl = {rl, erlang_app_sup:cnode()},
    #{rate := 100, burst := 5} = sys:get_state(Rl),
    {Taken, {error, rate_limited}} = take_until_refused(Rl, 0),
    true = Taken >= 5,
    ok = gen_server:call(Rl, {wait, 3}, 5000).

take_until_refused(Rl, Taken) ->
    case gen_server:call(Rl, take) of
        ok when Taken < 1000 -> take_until_refused(Rl, Taken + 1);
        Answer -> {Taken, Answer}
    end.

%%% epmd

epmd_port() ->
    case os:getenv("ERL_EPMD_PORT") of
        false -> 4369;
        "" -> 4369;
        P -> list_to_integer(P)
    end.

epmd_answers(Port) ->
    case gen_tcp:connect({127, 0, 0, 1}, Port, [], 1000) of
        {ok, S} -> gen_tcp:close(S), true;
        {error, _} -> false
    end.

%% epmd as a port of a process of its own: {Holder, OsPid}.
start_epmd(Port) ->
    Self = self(),
    Holder = spawn(fun() ->
                           P = open_port({spawn_executable, os:find_executable("epmd")},
                                         [exit_status, stderr_to_stdout,
                                          {args, ["-port", integer_to_list(Port),
                                                  "-address", "127.0.0.1"]}]),
                           {os_pid, OsPid} = erlang:port_info(P, os_pid),
                           Self ! {epmd, self(), OsPid},
                           hold_epmd(P)
                   end),
    receive
        {epmd, Holder, OsPid} ->
            wait_until(fun() -> epmd_answers(Port) end, 5000) orelse error(epmd_did_not_answer),
            {Holder, OsPid}
    after 5000 -> error(epmd_did_not_start)
    end.

%% Its output (a line per probe of epmd_answers/1) is dropped.
hold_epmd(P) ->
    receive
        {P, {data, _}} -> hold_epmd(P);
        {P, {exit_status, _}} -> ok
    end.

%% SIGTERM, then SIGKILL after 5 s; waits at most 7 s in all.
stop_epmd({Holder, OsPid}) ->
    Ref = monitor(process, Holder),
    os:cmd("kill -TERM " ++ integer_to_list(OsPid)),
    receive {'DOWN', Ref, _, _, _} -> stopped
    after 5000 ->
            os:cmd("kill -KILL " ++ integer_to_list(OsPid)),
            receive {'DOWN', Ref, _, _, _} -> killed
            after 2000 -> {still_running, OsPid}
            end
    end.

wait_until(Fun, Timeout) ->
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    wait_until1(Fun, Deadline).

wait_until1(Fun, Deadline) ->
    case Fun() of
        true -> true;
        false ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> false;
                false -> timer:sleep(20), wait_until1(Fun, Deadline)
            end
    end.

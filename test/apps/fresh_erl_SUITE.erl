%% test/fresh_erl_SUITE.erl of the project that `rebar3 new app fresh_erl`
%% makes in tools/run-tests' apps stages: a C node started with
%% gen_cnode:child_spec/1 under the generated supervisor, one put, one get.
%% Distribution with long names, on an epmd of our own on $ERL_EPMD_PORT
%% unless one answers there; both stopped at the end, epmd by its OS pid.
-module(fresh_erl_SUITE).
-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1, put_get/1]).

suite() -> [{timetrap, {seconds, 60}}].

all() -> [put_get].

init_per_suite(Config) ->
    Port = case os:getenv("ERL_EPMD_PORT") of
               P when P =:= false; P =:= "" -> 4369;
               P -> list_to_integer(P)
           end,
    Epmd = case answers(Port) of
               true -> undefined;
               false -> start_epmd(Port)
           end,
    {ok, _} = net_kernel:start(['fresh_erl_test@127.0.0.1', longnames]),
    [{epmd, Epmd} | Config].

end_per_suite(Config) ->
    net_kernel:stop(),
    case ?config(epmd, Config) of
        undefined -> ok;
        Epmd -> ct:log("epmd: ~p", [stop_epmd(Epmd)])
    end.

put_get(_Config) ->
    Node = 'fresh_erl_kv@127.0.0.1',
    {ok, Sup} = fresh_erl_sup:start_link(),
    try
        {ok, Owner} = supervisor:start_child(fresh_erl_sup, gen_cnode:child_spec(#{name => Node})),
        Node = gen_cnode:node(Owner),
        true = filelib:is_regular(filename:join(code:priv_dir(gen_cnode), "gen_cnode")),
        ok = gen_cnode_kv:put({kv, Node}, greeting, <<"hello">>),
        <<"hello">> = gen_cnode_kv:get({kv, Node}, greeting)
    after
        %% The owner stops the C node by its OS pid, within its shutdown time.
        gen_server:stop(Sup, normal, 20000)
    end.

answers(Port) ->
    case gen_tcp:connect({127, 0, 0, 1}, Port, [], 1000) of
        {ok, S} -> gen_tcp:close(S), true;
        {error, _} -> false
    end.

start_epmd(Port) ->
    Self = self(),
    Holder = spawn(fun() ->
                           P = open_port({spawn_executable, os:find_executable("epmd")},
                                         [exit_status, stderr_to_stdout,
                                          {args, ["-port", integer_to_list(Port),
                                                  "-address", "127.0.0.1"]}]),
                           {os_pid, OsPid} = erlang:port_info(P, os_pid),
                           Self ! {epmd, self(), OsPid},
                           hold(P)
                   end),
    receive
        {epmd, Holder, OsPid} ->
            lists:any(fun(_) -> answers(Port) orelse (timer:sleep(20) =:= no) end,
                      lists:seq(1, 250)) orelse error(epmd_did_not_answer),
            {Holder, OsPid}
    after 5000 -> error(epmd_did_not_start)
    end.

hold(P) ->
    receive
        {P, {data, _}} -> hold(P);
        {P, {exit_status, _}} -> ok
    end.

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

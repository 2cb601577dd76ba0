%% bench_boot: what a BEAM server node of `make bench` runs at boot
%% (erl ... -eval 'bench_boot:start(ClientNode)'): starts the elixir
%% application and KvServer registered as kv, as any Elixir node would, and a
%% watchdog that halts the node once the benchmark client node disconnects (or
%% has not connected within a minute), so no server outlives an aborted run.
%% The harness (tools/run-bench) also kills every server by pid at the end.
-module(bench_boot).
-export([start/1]).

start(ClientNode) ->
    {ok, _} = application:ensure_all_started(elixir),
    {ok, _} = 'Elixir.KvServer':start(kv),
    Parent = self(),
    Watchdog = spawn(fun() -> watch(ClientNode, Parent) end),
    receive {Watchdog, watching} -> ok end.

watch(ClientNode, Parent) ->
    ok = net_kernel:monitor_nodes(true),
    Parent ! {self(), watching},
    case lists:member(ClientNode, nodes()) of
        true -> erlang:monitor_node(ClientNode, true), wait_down(ClientNode);
        false -> wait_up(ClientNode)
    end.

wait_up(ClientNode) ->
    receive
        {nodeup, ClientNode} -> erlang:monitor_node(ClientNode, true), wait_down(ClientNode);
        _ -> wait_up(ClientNode)
    after 60000 -> erlang:halt(3)
    end.

wait_down(ClientNode) ->
    receive
        {nodedown, ClientNode} -> erlang:halt(0);
        _ -> wait_down(ClientNode)
    end.

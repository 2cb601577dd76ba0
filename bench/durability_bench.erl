%% durability_bench: the figures of a durable store at scale, against a C node
%% started by tools/run-bench-durability with --data-dir:
%%   load   N entries (integer keys, 100-byte binaries), by casts in batches;
%%   compact  calls compact while one process keeps calling {get, K}, and
%%          reports the fork pause the node measured (max_compaction_pause_ms)
%%          and the latencies the caller saw meanwhile (p50, p99, max);
%%   status prints the node's status map (recovery_ms after a restart).
-module(durability_bench).
-export([load/1, compact/1, status/1]).

-define(S(Node), {kv, Node}).

%% Arguments come from erl -run, as strings.
load([NodeName, Count]) ->
    Node = list_to_atom(NodeName),
    N = list_to_integer(Count),
    V = binary:copy(<<"x">>, 100),
    T0 = erlang:monotonic_time(millisecond),
    [begin
         [gen_server:cast(?S(Node), {put, I, V}) || I <- lists:seq(B, min(N, B + 9999))],
         gen_server:call(?S(Node), size, 60000)
     end || B <- lists:seq(1, N, 10000)],
    ok = gen_server:call(?S(Node), sync, 60000),
    io:format("loaded ~b entries in ~b ms~n",
              [gen_server:call(?S(Node), size), erlang:monotonic_time(millisecond) - T0]),
    halt().

compact([NodeName]) ->
    Node = list_to_atom(NodeName),
    Self = self(),
    Before = compactions(Node),
    Caller = spawn(fun() -> Self ! {lat, loop(Node, [])} end),
    timer:sleep(300),
    ok = gen_server:call(?S(Node), compact, 60000),
    wait_compacted(Node, Before, 600),
    Caller ! stop,
    L = receive {lat, Lat} -> lists:sort(Lat) end,
    Len = length(L),
    St = state(Node),
    io:format("compaction with ~b entries: fork pause ~.2f ms (max_compaction_pause_ms); "
              "~b calls meanwhile: p50 ~b us, p99 ~b us, max ~b us~n",
              [maps:get(entries, St), maps:get(max_compaction_pause_ms, St), Len,
               lists:nth(max(1, Len div 2), L), lists:nth(max(1, Len * 99 div 100), L), lists:last(L)]),
    halt().

status([NodeName]) ->
    Node = list_to_atom(NodeName),
    io:format("status: ~p~n", [state(Node)]),
    halt().

loop(Node, Acc) ->
    receive stop -> Acc
    after 0 ->
        T = erlang:monotonic_time(microsecond),
        gen_server:call(?S(Node), {get, 5}),
        loop(Node, [erlang:monotonic_time(microsecond) - T | Acc])
    end.

wait_compacted(_Node, _Before, 0) -> error(compaction_did_not_finish);
wait_compacted(Node, Before, Tries) ->
    case compactions(Node) > Before of
        true -> ok;
        false -> timer:sleep(100), wait_compacted(Node, Before, Tries - 1)
    end.

compactions(Node) -> maps:get(compactions, state(Node)).

state(Node) ->
    {status, _, _, [_, _, _, _, [_, _, {data, [{"State", St}]}]]} = sys:get_status(?S(Node), 60000),
    St.

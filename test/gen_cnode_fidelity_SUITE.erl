%% gen_cnode_fidelity_SUITE: what goes in comes out, =:=, and the limits.
%%
%% Every case starts a C node of its own with gen_cnode:start/1 (real epmd,
%% real distribution on 127.0.0.1; durable_harness) and checks:
%%   - every kind of term the external term format carries (fidelity_terms:
%%     big integers, floats, unicode atoms, bitstrings, improper lists, nested
%%     maps, pids, refs, ports, external and local funs, closures), as value
%%     and as key, read back =:= by get, fetch, keys and :sys.get_state;
%%   - 1 and 1.0 (and terms holding them) are different keys;
%%   - a seeded property test: random nested terms, random puts and deletes
%%     (casts and calls) against the C node and a map model, every read and
%%     the final :sys.get_state checked against the model;
%%   - --max-entries, --max-depth and --max-message: refused or dropped as
%%     documented, the node serving on and its data intact;
%%   - :sys.get_state of a store of some megabytes answers promptly.
%% The seed is printed; GEN_CNODE_SEED=N reruns with it (durable_harness).
-module(gen_cnode_fidelity_SUITE).

-define(config(Key, Config), proplists:get_value(Key, Config)).
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

-export([every_kind_round_trips_as_value_and_key/1,
         integer_and_float_keys_are_distinct/1,
         equal_funs_are_one_key/1,
         random_operations_match_a_map_model/1,
         max_entries_refuses_new_keys_only/1,
         max_depth_refuses_deep_requests_and_serves_on/1,
         max_message_refuses_one_message_of_twenty/1,
         get_state_of_megabytes_is_prompt/1]).

-define(H, durable_harness).
-define(T, fidelity_terms).
-define(CALL, 10000).

suite() ->
    [{timetrap, {seconds, 90}}].

all() ->
    [every_kind_round_trips_as_value_and_key,
     integer_and_float_keys_are_distinct,
     equal_funs_are_one_key,
     random_operations_match_a_map_model,
     max_entries_refuses_new_keys_only,
     max_depth_refuses_deep_requests_and_serves_on,
     max_message_refuses_one_message_of_twenty,
     get_state_of_megabytes_is_prompt].

init_per_suite(Config) ->
    ?H:init_suite(?MODULE, Config).

end_per_suite(Config) ->
    ?H:end_suite(Config).

init_per_testcase(_Case, Config) ->
    [{t0, erlang:monotonic_time(millisecond)} | Config].

end_per_testcase(Case, Config) ->
    gen_cnode_test_env:reap(),
    ct:log("~p took ~b ms", [Case, erlang:monotonic_time(millisecond) - ?config(t0, Config)]),
    ok.

%%% Every kind of term

every_kind_round_trips_as_value_and_key(Config) ->
    {Owner, Server, Log} = ?H:start_cnode(Config, kvkinds, []),
    Terms = lists:enumerate(?T:every_kind()),
    [ok = gen_server:cast(Server, {put, {as_value, I}, T}) || {I, T} <- Terms],
    [ok = gen_server:call(Server, {put, T, {as_key, I}}, ?CALL) || {I, T} <- Terms],
    BadValues = [{I, T, Got} || {I, T} <- Terms,
                                Got <- [gen_server:call(Server, {get, {as_value, I}}, ?CALL)],
                                not identical(Got, T)],
    ?assertEqual([], BadValues),
    BadFetch = [{I, T, Got} || {I, T} <- Terms,
                               Got <- [gen_server:call(Server, {fetch, {as_value, I}}, ?CALL)],
                               not identical(Got, {ok, T})],
    ?assertEqual([], BadFetch),
    BadKeys = [{I, T, Got} || {I, T} <- Terms,
                              Got <- [gen_server:call(Server, {get, T}, ?CALL)],
                              Got =/= {as_key, I}],
    ?assertEqual([], BadKeys),
    %% Terms that are =:= are one key (every_kind has no two such): the size.
    Distinct = length(lists:usort([{T, term_to_binary(T)} || {_, T} <- Terms])),
    ?assertEqual(length(Terms), Distinct),
    ?assertEqual(2 * length(Terms), gen_server:call(Server, size, ?CALL)),
    %% keys gives back each key =:= as put.
    Keys = gen_server:call(Server, keys, ?CALL),
    Missing = [{I, T} || {I, T} <- Terms, not lists:any(fun(K) -> identical(K, T) end, Keys)],
    ?assertEqual([], Missing),
    %% :sys.get_state is exactly the expected map.
    Expected = maps:from_list([{{as_value, I}, T} || {I, T} <- Terms]
                              ++ [{T, {as_key, I}} || {I, T} <- Terms]),
    State = ?H:state(Server),
    ?assertEqual({map_size(Expected), []},
                 {map_size(State), [{K, V, maps:get(K, State, '$absent')}
                                    || {K, V} <- maps:to_list(Expected),
                                       maps:get(K, State, '$absent') =/= V]}),
    ?assert(State =:= Expected),
    %% Deleting by each term as key leaves only the values.
    [ok = gen_server:cast(Server, {delete, T}) || {_, T} <- Terms],
    ?assert(?H:state(Server) =:= maps:from_list([{{as_value, I}, T} || {I, T} <- Terms])),
    ?H:stop_cnode(Owner, Log).

%% 1 and 1.0 are different keys, also inside tuples, lists and maps.
integer_and_float_keys_are_distinct(Config) ->
    {Owner, Server, Log} = ?H:start_cnode(Config, kvnum, []),
    Pairs = [{1, int}, {1.0, float}, {{1}, tuple_int}, {{1.0}, tuple_float},
             {[1], list_int}, {[1.0], list_float}, {#{1 => a}, map_key_int},
             {#{1.0 => a}, map_key_float}, {#{a => 1}, map_value_int},
             {#{a => 1.0}, map_value_float}, {1 bsl 70, big}, {float(1 bsl 70), big_float},
             {0, zero}, {0.0, zero_float}],
    [ok = gen_server:cast(Server, {put, K, V}) || {K, V} <- Pairs],
    ?assertEqual(length(Pairs), gen_server:call(Server, size, ?CALL)),
    ?assertEqual(Pairs, [{K, gen_server:call(Server, {get, K}, ?CALL)} || {K, _} <- Pairs]),
    ?assert(?H:state(Server) =:= maps:from_list(Pairs)),
    ok = gen_server:call(Server, {delete, 1.0}, ?CALL),
    ?assertEqual({int, nil}, {gen_server:call(Server, {get, 1}, ?CALL),
                              gen_server:call(Server, {get, 1.0}, ?CALL)}),
    ?H:stop_cnode(Owner, Log).

%% Funs that are =:= are one key, whoever made them. A fun's encoding
%% carries a pid that is no part of its identity: OTP 25 puts the process
%% that made it there, OTP 26 and later its node's init process. Made here
%% by two processes, and on a peer node that asks the C node itself.
equal_funs_are_one_key(Config) ->
    {Owner, Server, Log} = ?H:start_cnode(Config, kvfuns, []),
    Here = ?T:made_fun(7),
    Self = self(),
    spawn(fun() -> Self ! {made, ?T:made_fun(7)} end),
    Other = receive {made, F} -> F after 5000 -> ct:fail(no_fun_made) end,
    ?assert(Here =:= Other),
    ok = gen_server:call(Server, {put, Here, here}, ?CALL),
    ?assertEqual(here, gen_server:call(Server, {get, Other}, ?CALL)),
    ok = gen_server:call(Server, {put, #{k => [Other]}, inside}, ?CALL),
    ?assertEqual(inside, gen_server:call(Server, {get, #{k => [Here]}}, ?CALL)),
    ?assertEqual(nil, gen_server:call(Server, {get, ?T:made_fun(8)}, ?CALL)),
    {Peer, _} = gen_cnode_test_env:start_tracked_peer(
                  list_to_atom("fpeer" ++ integer_to_list(erlang:unique_integer([positive])))),
    ?assertEqual(here, peer:call(Peer, ?T, get_by_closure, [Server, 7])),
    ?assertEqual(nil, peer:call(Peer, ?T, get_by_closure, [Server, 8])),
    ok = gen_server:call(Server, {put, Other, again}, ?CALL),
    ?assertEqual(2, gen_server:call(Server, size, ?CALL)),
    [K] = [K || K <- gen_server:call(Server, keys, ?CALL), is_function(K)],
    ?assert(K =:= Here),
    ?assertEqual(again, (K =:= Here) andalso gen_server:call(Server, {get, K}, ?CALL)),
    ?H:stop_cnode(Owner, Log).

%%% The property test

%% 2000 random nested terms (depth up to 6, every kind mixed); 5000 random
%% operations, puts and deletes by cast and by call, gets, fetches and sizes,
%% applied to the C node and to a map. Every answer must be the model's;
%% afterwards every key of the pool is read back and :sys.get_state must be
%% =:= the model.
random_operations_match_a_map_model(Config) ->
    Seed = ?H:seed_case(Config, ?FUNCTION_NAME),
    {Owner, Server, Log} = ?H:start_cnode(Config, kvprop, []),
    Pool = list_to_tuple(?T:random_terms(2000, 6, 40)),
    Pick = fun() -> element(rand:uniform(tuple_size(Pool)), Pool) end,
    {Model, Wrong, Counts} =
        lists:foldl(
          fun(N, {M, W, C}) ->
                  K = Pick(),
                  {Op, M1, Check} = step(Server, rand:uniform(100), K, Pick, M),
                  W1 = case Check of
                           ok -> W;
                           {bad, Got, Want} when length(W) < 20 -> [{N, Op, K, got, Got, want, Want} | W];
                           _ -> W
                       end,
                  {M1, W1, maps:update_with(Op, fun(X) -> X + 1 end, 1, C)}
          end, {#{}, [], #{}}, lists:seq(1, 5000)),
    ct:log("seed ~b: operations ~p; model holds ~b entries", [Seed, Counts, map_size(Model)]),
    ?assertEqual({seed, Seed, wrong_answers, []}, {seed, Seed, wrong_answers, lists:reverse(Wrong)}),
    %% Every key of the pool, read back.
    Reads = [{K, gen_server:call(Server, {fetch, K}, ?CALL)} || K <- tuple_to_list(Pool)],
    BadReads = [{K, Got} || {K, Got} <- Reads, Got =/= fetch_model(K, Model)],
    ?assertEqual({seed, Seed, bad_reads, []}, {seed, Seed, bad_reads, lists:sublist(BadReads, 10)}),
    ?assertEqual(map_size(Model), gen_server:call(Server, size, ?CALL)),
    State = ?H:state(Server),
    StateDiff = lists:sublist([{K, V, maps:get(K, State, '$absent')}
                               || {K, V} <- maps:to_list(Model), maps:get(K, State, '$absent') =/= V], 10),
    ?assertEqual({seed, Seed, map_size(Model), []}, {seed, Seed, map_size(State), StateDiff}),
    ?assert(State =:= Model),
    ?H:stop_cnode(Owner, Log).

%% One random operation: {Name, NewModel, ok | {bad, Got, Want}}.
step(Server, R, K, Pick, M) when R =< 25 ->
    V = Pick(),
    ok = gen_server:cast(Server, {put, K, V}),
    {cast_put, M#{K => V}, ok};
step(Server, R, K, Pick, M) when R =< 40 ->
    V = Pick(),
    {call_put, M#{K => V}, expect(gen_server:call(Server, {put, K, V}, ?CALL), ok)};
step(Server, R, K, Pick, M) when R =< 45 ->
    V = Pick(),
    {call_put_sync, M#{K => V}, expect(gen_server:call(Server, {put_sync, K, V}, ?CALL), ok)};
step(Server, R, K, _Pick, M) when R =< 53 ->
    ok = gen_server:cast(Server, {delete, K}),
    {cast_delete, maps:remove(K, M), ok};
step(Server, R, K, _Pick, M) when R =< 60 ->
    {call_delete, maps:remove(K, M), expect(gen_server:call(Server, {delete, K}, ?CALL), ok)};
step(Server, R, K, _Pick, M) when R =< 80 ->
    {get, M, expect(gen_server:call(Server, {get, K}, ?CALL), maps:get(K, M, nil))};
step(Server, R, K, _Pick, M) when R =< 97 ->
    {fetch, M, expect(gen_server:call(Server, {fetch, K}, ?CALL), fetch_model(K, M))};
step(Server, _R, _K, _Pick, M) ->
    {size, M, expect(gen_server:call(Server, size, ?CALL), map_size(M))}.

expect(Got, Want) when Got =:= Want -> ok;
expect(Got, Want) -> {bad, Got, Want}.

fetch_model(K, M) ->
    case maps:find(K, M) of
        {ok, V} -> {ok, V};
        error -> error
    end.

%%% Limits

%% --max-entries 10: a call putting a new key into a full store gets
%% {error, store_full}, a cast doing so is dropped; replacing a key still
%% works, and so does a new key once one is deleted. With --data-dir the
%% refused puts are not logged: a restart recovers exactly the store.
max_entries_refuses_new_keys_only(Config) ->
    Dir = filename:join(?config(priv_dir, Config), "max_entries"),
    Args = ["--max-entries", "10", "--data-dir", Dir],
    {Owner, Server, Log} = ?H:start_cnode(Config, kvfull, Args),
    [?assertEqual(ok, gen_server:call(Server, {put, {k, I}, I}, ?CALL)) || I <- lists:seq(1, 10)],
    ?assertEqual({error, store_full}, gen_server:call(Server, {put, new, 1}, ?CALL)),
    ?assertEqual({error, store_full}, gen_server:call(Server, {put_sync, new, 1}, ?CALL)),
    ok = gen_server:cast(Server, {put, new_by_cast, 1}),
    ?assertEqual(nil, gen_server:call(Server, {get, new_by_cast}, ?CALL)),
    ?assertEqual(error, gen_server:call(Server, {fetch, new}, ?CALL)),
    ?assertEqual(10, gen_server:call(Server, size, ?CALL)),
    %% Replacing.
    ?assertEqual(ok, gen_server:call(Server, {put, {k, 1}, replaced}, ?CALL)),
    ?assertEqual(ok, gen_server:call(Server, {put_sync, {k, 2}, replaced_sync}, ?CALL)),
    ok = gen_server:cast(Server, {put, {k, 3}, replaced_by_cast}),
    ?assertEqual(replaced_by_cast, gen_server:call(Server, {get, {k, 3}}, ?CALL)),
    %% Room again after a delete.
    ok = gen_server:call(Server, {delete, {k, 10}}, ?CALL),
    ?assertEqual(ok, gen_server:call(Server, {put, new, 1}, ?CALL)),
    ?assertEqual({error, store_full}, gen_server:call(Server, {put, newer, 1}, ?CALL)),
    Expected = (maps:from_list([{{k, I}, I} || I <- lists:seq(4, 9)]))#{
                 {k, 1} => replaced, {k, 2} => replaced_sync, {k, 3} => replaced_by_cast,
                 new => 1},
    ?assert(?H:state(Server) =:= Expected),
    ?assertNotEqual([], [L || L <- ?H:log_lines(Log), binary:match(L, <<"full">>) =/= nomatch]),
    ?H:stop_cnode(Owner, Log),
    {Owner2, Server2, Log2} = ?H:start_cnode(Config, kvfull, Args),
    ?assert(?H:state(Server2) =:= Expected),
    ?assertEqual({error, store_full}, gen_server:call(Server2, {put, newer, 1}, ?CALL)),
    ?H:stop_cnode(Owner2, Log2).

%% --max-depth 50: a request nested deeper (in the value, or in the key) is
%% refused: a call gets {error, {bad_request, too_deep}}, a cast or a plain
%% message is dropped with a log line. The node serves on, the connection
%% stays up, and the data is as it was. A term within the limit is stored.
max_depth_refuses_deep_requests_and_serves_on(Config) ->
    {Owner, Server = {kv, Node}, Log} = ?H:start_cnode(Config, kvdeep, ["--max-depth", "50"]),
    Data = maps:from_list([{{d, I}, {I, ?T:nested_list(I)}} || I <- lists:seq(1, 20)]),
    [ok = gen_server:call(Server, {put, K, V}, ?CALL) || {K, V} <- maps:to_list(Data)],
    Shallow = ?T:nested_list(30),
    ?assertEqual(ok, gen_server:call(Server, {put, shallow, Shallow}, ?CALL)),
    ?assert(gen_server:call(Server, {get, shallow}, ?CALL) =:= Shallow),
    Deep = ?T:nested_list(200),
    DeepTuple = lists:foldl(fun(_, Acc) -> {Acc} end, x, lists:seq(1, 200)),
    DeepMap = lists:foldl(fun(_, Acc) -> #{k => Acc} end, x, lists:seq(1, 200)),
    true = erlang:monitor_node(Node, true),
    Refused = [{What, catch gen_server:call(Server, Req, 5000)}
               || {What, Req} <- [{deep_list_value, {put, deep, Deep}},
                                  {deep_tuple_value, {put, deep, DeepTuple}},
                                  {deep_map_value, {put_sync, deep, DeepMap}},
                                  {deep_key, {put, Deep, v}},
                                  {deep_get, {get, DeepTuple}}]],
    ct:log("calls too deep: ~p", [Refused]),
    ?assertEqual([], [R || R = {_, Got} <- Refused, Got =/= {error, {bad_request, too_deep}}]),
    ok = gen_server:cast(Server, {put, deep_cast, Deep}),
    ok = gen_server:cast(Server, {put, DeepMap, deep_key_cast}),
    Server ! {plain, Deep},
    %% Still serving, on the same connection, with the data intact.
    ?assertEqual(21, gen_server:call(Server, size, ?CALL)),
    ?assertEqual(nil, gen_server:call(Server, {get, deep_cast}, ?CALL)),
    ?assertEqual(nil, gen_server:call(Server, {get, deep}, ?CALL)),
    ?assert(?H:state(Server) =:= Data#{shallow => Shallow}),
    receive {nodedown, Node} -> ct:fail(connection_dropped_for_a_deep_message)
    after 0 -> ok
    end,
    erlang:monitor_node(Node, false),
    ?assertNotEqual([], [L || L <- ?H:log_lines(Log), binary:match(L, <<"deep">>) =/= nomatch]),
    ?H:stop_cnode(Owner, Log).

%% --max-message 100000: a bigger message costs itself only. 20 callers
%% call at once on this node's one connection, one of them with a put of
%% twice the limit: 20 answers, that one {error, {bad_request, too_large}},
%% no nodedown; a cast over the limit is dropped; the data is as it was; a
%% message just under the limit goes through.
max_message_refuses_one_message_of_twenty(Config) ->
    {Owner, Server = {kv, Node}, Log} =
        ?H:start_cnode(Config, kvbig, ["--max-message", "100000"]),
    Data = maps:from_list([{{m, I}, ?T:pattern(100 * I)} || I <- lists:seq(1, 20)]),
    [ok = gen_server:call(Server, {put, K, V}, ?CALL) || {K, V} <- maps:to_list(Data)],
    Big = ?T:pattern(200000),
    true = erlang:monitor_node(Node, true),
    Me = self(),
    Callers = [spawn_link(fun() ->
                                  Req = case I of
                                            10 -> {put, big, Big};
                                            _ -> {get, {m, I}}
                                        end,
                                  Me ! {self(), I, catch gen_server:call(Server, Req, ?CALL)}
                          end) || I <- lists:seq(1, 20)],
    Answers = [receive {P, I, A} -> {I, A} after ?CALL -> ct:fail({no_answer, P}) end || P <- Callers],
    ct:log("~p", [Answers]),
    ?assertEqual({10, {error, {bad_request, too_large}}}, lists:keyfind(10, 1, Answers)),
    [?assert(A =:= maps:get({m, I}, Data)) || {I, A} <- Answers, I =/= 10],
    ?assert(?H:state(Server) =:= Data),
    ok = gen_server:cast(Server, {put, big_cast, Big}),
    ?assertEqual(nil, gen_server:call(Server, {get, big_cast}, ?CALL)),
    receive {nodedown, Node} -> ct:fail(nodedown_for_an_oversized_message) after 0 -> ok end,
    erlang:monitor_node(Node, false),
    Fits = ?T:pattern(90000),
    ?assertEqual(ok, gen_server:call(Server, {put, fits, Fits}, ?CALL)),
    ?assert(?H:state(Server) =:= Data#{fits => Fits}),
    ?assertEqual(pong, net_adm:ping(Node)),
    ?H:stop_cnode(Owner, Log).

%%% :sys.get_state of a bigger store

%% 10,000 entries of about 300 bytes (3 MB): :sys.get_state answers in
%% seconds at most (a plain build takes some milliseconds; the sanitizer
%% build is slower, but not by minutes) and is =:= the store.
get_state_of_megabytes_is_prompt(Config) ->
    {Owner, Server, Log} = ?H:start_cnode(Config, kvmega, []),
    Model = maps:from_list([{{e, I}, {I, ?T:pattern(250 + I rem 100)}} || I <- lists:seq(1, 10000)]),
    [ok = gen_server:cast(Server, {put, K, V}) || {K, V} <- maps:to_list(Model)],
    ?assertEqual(10000, gen_server:call(Server, size, ?CALL)),
    {T, State} = timer:tc(fun() -> catch sys:get_state(Server, 8000) end),
    ct:log(":sys.get_state of 10,000 entries (~b bytes): ~b ms",
           [byte_size(term_to_binary(Model)), T div 1000]),
    ?assertMatch({ok, _}, {case is_map(State) of true -> ok; false -> State end, T div 1000}),
    ?assert(State =:= Model),
    ?assert(T div 1000 < 5000),
    ?H:stop_cnode(Owner, Log).

%%% Helpers

%% =:= and the same external representation (tells 0.0 from -0.0 on OTP 25).
%% =:=, and encoded alike: but for a fun's creator pid, no part of its
%% identity, which keys and :sys.get_state give as nonode@nohost's <0.0.0>
%% (OTP 25 keeps the pid it decodes; OTP 26 and later encode their own).
identical(A, B) ->
    A =:= B andalso (term_to_binary(A) =:= term_to_binary(B) orelse ?T:holds_fun(A)).

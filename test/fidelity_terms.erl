%% fidelity_terms: terms for gen_cnode_fidelity_SUITE: one of every kind the
%% external term format carries, and random nested terms mixing them all,
%% drawn from the process's rand state (the suite seeds it). gen_cnode_SUITE
%% builds its terms with the small helpers here too (pattern/1,
%% nested_list/1, external_pid/0, external_ref/0, a_port/0).
%%
%% Never -0.0: OTP 25's =:= says 0.0 =:= -0.0 while the C node keeps them
%% apart (as OTP 27 does), so a map model on OTP 25 could not hold both; the
%% suites test the two zeros on their own.
-module(fidelity_terms).

-export([every_kind/0, random_term/2, random_terms/3, nested_list/1, pattern/1,
         external_pid/0, external_ref/0, external_port/0, a_port/0,
         made_fun/1, get_by_closure/2, holds_fun/1]).

%% A fun over X, made by whoever calls this: the same fun (=:=) from
%% any process and any node running this module.
made_fun(X) ->
    fun() -> X end.

%% {get, made_fun(X)} to Server, the fun made here (on a peer, say).
get_by_closure(Server, X) ->
    gen_server:call(Server, {get, made_fun(X)}, 10000).

%% Whether T holds a fun anywhere (improper lists included).
holds_fun(T) when is_function(T) -> true;
holds_fun(T) when is_tuple(T) -> holds_fun(tuple_to_list(T));
holds_fun(T) when is_map(T) -> holds_fun(maps:to_list(T));
holds_fun([H | T]) -> holds_fun(H) orelse holds_fun(T);
holds_fun(_) -> false.

%% One (or a few) of every kind, each as its own term.
every_kind() ->
    X = 42,
    Y = {free, <<"var">>, [1.5]},
    [%% integers: small, 32-bit edges, big, negative big
     0, 1, -1, 255, 256, -256, (1 bsl 27) - 1, -(1 bsl 27), (1 bsl 31) - 1, -(1 bsl 31),
     1 bsl 31, (1 bsl 32) + 1, (1 bsl 63) - 1, -(1 bsl 63), 1 bsl 64, -(1 bsl 64) - 7,
     (1 bsl 1000) + 12345, -(1 bsl 2040) - 1, 1 bsl 8000,
     %% floats
     1.0, -1.5, 3.141592653589793, 1.0e300, -1.0e-300, 5.0e-324, 2.2250738585072014e-308,
     1.7976931348623157e308, 0.1, 123456789.0,
     %% atoms, unicode ones too
     a, '', 'hello world', 'ключ', '🙂', 'x🙂ключ', 'ÿ', true, false, nil, undefined,
     list_to_atom(lists:duplicate(255, $x)), list_to_atom(lists:duplicate(255, 16#1F642)),
     %% binaries and bitstrings
     <<>>, <<"bar">>, <<0, 1, 2, 255>>, pattern(1000), pattern(70000), <<1:1>>, <<5:3>>,
     <<"abc", 3:2>>, <<0:7>>, binary:part(pattern(5000), 17, 1000), <<"ключ 🙂"/utf8>>,
     %% tuples
     {}, {a}, {1, 2.0, "three", <<"four">>}, list_to_tuple(lists:seq(1, 300)),
     {{{{nested}}}, [{}]},
     %% lists, strings, improper lists
     [], "abc", [1 | 2], [a, b | c], [1.0 | <<>>], [[] | []], "ключ", [16#1F642, $a],
     lists:seq(1, 300), lists:seq(0, 255), lists:duplicate(70000, $a), [[], [[]], [[[]]]],
     [<<>> | <<1:1>>], [{a, 1}, {b, 2}], nested_list(40), [1, 2 | #{k => v}],
     %% maps: flat, nested, large (hash map), with 1 and 1.0 apart
     #{}, #{a => 1}, #{1 => a, 1.0 => b}, #{#{k => v} => [#{}], [m] => #{n => #{o => p}}},
     #{{1} => x, {1.0} => y}, maps:from_list([{N, {v, N}} || N <- lists:seq(1, 100)]),
     maps:from_list([{integer_to_binary(N), N} || N <- lists:seq(1, 40)]),
     #{fun erlang:abs/1 => self(), make_ref() => a_port()},
     %% pids, references, ports: local and of other nodes
     self(), list_to_pid("<0.0.0>"), external_pid(), make_ref(), external_ref(),
     a_port(), external_port(),
     %% funs: external, local, closures with free variables
     fun lists:reverse/1, fun erlang:abs/1, fun lists:map/2, fun() -> ok end,
     fun(A) -> A + 1 end, fun() -> X end, fun(A) -> {A, X, Y} end,
     fun(F) -> F(fun() -> Y end) end,
     %% a bit of everything
     {record, 'ключ', [1, 2.5, <<"x">>], #{self() => make_ref()}, {<<7:3>>, [a | b]},
      fun() -> {X, Y} end, a_port()}].

%% N random terms, each at most Depth deep.
random_terms(N, Depth, MaxSize) ->
    [random_term(Depth, rand:uniform(MaxSize)) || _ <- lists:seq(1, N)].

%% A random term at most Depth deep with about Size leaves.
random_term(Depth, Size) when Depth =< 0; Size =< 1 ->
    leaf();
random_term(Depth, Size) ->
    case rand:uniform(10) of
        N when N =< 3 -> leaf();
        4 -> list_to_tuple(children(Depth, Size, rand:uniform(5) - 1));
        5 -> children(Depth, Size, rand:uniform(5) - 1);
        6 -> improper(children(Depth, Size, rand:uniform(3)), leaf());
        7 -> maps:from_list(pairs(Depth, Size, rand:uniform(4) - 1));
        8 -> {pick([record, point, 'Elixir.Struct', 'ключ']), random_term(Depth - 1, Size div 2),
              random_term(Depth - 1, Size div 2)};
        9 -> closure(random_term(Depth - 1, Size - 1));
        10 -> [{pick([a, b, c, 'ü']), random_term(Depth - 1, Size div 2)},
               {pick([x, y]), random_term(Depth - 1, Size div 2)}]
    end.

children(_, _, 0) -> [];
children(Depth, Size, N) -> [random_term(Depth - 1, Size div N) || _ <- lists:seq(1, N)].

pairs(_, _, 0) -> [];
pairs(Depth, Size, N) ->
    [{random_term(Depth - 1, Size div (2 * N)), random_term(Depth - 1, Size div (2 * N))}
     || _ <- lists:seq(1, N)].

improper(Elems, Tail) ->
    lists:foldr(fun(E, Acc) -> [E | Acc] end, Tail, Elems).

closure(Free) ->
    case rand:uniform(3) of
        1 -> fun() -> Free end;
        2 -> fun(A) -> {A, Free} end;
        3 -> Other = leaf(), fun(A, B) -> [A, B, Free, Other] end
    end.

leaf() ->
    case rand:uniform(20) of
        1 -> rand:uniform(256) - 1;
        2 -> rand:uniform(2000000) - 1000000;
        3 -> pick([(1 bsl 27) - 1, -(1 bsl 27), (1 bsl 31) - 1, -(1 bsl 31), 1 bsl 31,
                   -(1 bsl 31) - 1]);
        4 -> big();
        5 -> float();
        6 -> pick(atoms());
        7 -> rand_bytes(rand:uniform(24) - 1);
        8 -> bits();
        9 -> string();
        10 -> pick([self(), list_to_pid("<0.0.0>"), external_pid(), spawned_pid()]);
        11 -> pick([make_ref(), external_ref()]);
        12 -> pick([a_port(), external_port()]);
        13 -> pick([fun lists:reverse/1, fun erlang:abs/1, fun maps:get/2,
                    fun() -> ok end, fun(A) -> A end]);
        14 -> pick([[], {}, #{}, <<>>, "", [[]]]);
        15 -> pick([1, 1.0, 2, 2.0, 0, 0.0, -1, -1.0]);
        16 -> rand:uniform(10);
        17 -> pick(atoms());
        18 -> [rand:uniform(255) | rand:uniform(255)];
        19 -> rand_bytes(100 + rand:uniform(200));
        20 -> unicode:characters_to_binary(string())
    end.

big() ->
    Bits = rand:uniform(300) + 60,
    N = rand:uniform(1 bsl Bits),
    case rand:uniform(2) of 1 -> N; 2 -> -N end.

%% Any float but -0.0 (a negative float here is never zero).
float() ->
    case rand:uniform(4) of
        1 -> rand:uniform() * 1000;
        2 -> -(rand:uniform() + 0.001) * math:pow(10, rand:uniform(300));
        3 -> rand:uniform() * math:pow(10, -rand:uniform(300));
        4 -> pick([0.0, 1.0, 0.5, 1.0e300, 5.0e-324, 1.7976931348623157e308])
    end.

atoms() ->
    [a, b, ok, error, nil, true, false, undefined, '', 'hello world', 'ключ', '🙂',
     'x🙂ключ', 'ÿ', 'Elixir.Foo.Bar', '$gen_call', put, get,
     list_to_atom(lists:duplicate(255, $z))].

bits() ->
    B = rand_bytes(rand:uniform(10) - 1),
    N = rand:uniform(7),
    <<B/binary, (rand:uniform(1 bsl N) - 1):N>>.

string() ->
    [pick([$a, $z, $0, $\s, 16#e9, 16#43a, 16#1F642, 0, 255, 256]) || _ <- lists:seq(1, rand:uniform(12))].

rand_bytes(N) ->
    << <<(rand:uniform(256) - 1)>> || _ <- lists:seq(1, N) >>.

pick(L) ->
    lists:nth(rand:uniform(length(L)), L).

spawned_pid() ->
    case get({?MODULE, pids}) of
        undefined ->
            Pids = [spawn(fun() -> ok end) || _ <- lists:seq(1, 5)],
            put({?MODULE, pids}, Pids),
            pick(Pids);
        Pids ->
            pick(Pids)
    end.

nested_list(0) -> [];
nested_list(N) -> [nested_list(N - 1)].

%% N bytes, not all alike.
pattern(N) ->
    Block = list_to_binary([(I * 7 + 3) rem 256 || I <- lists:seq(0, 1023)]),
    binary:part(binary:copy(Block, N div 1024 + 1), 0, N).

a_port() ->
    case erlang:ports() of
        [P | _] -> P;
        [] -> open_port({spawn, "true"}, [])
    end.

%% NEW_PID_EXT, NEWER_REFERENCE_EXT and NEW_PORT_EXT of a node that is not this one.
external_pid() ->
    Node = <<"elsewhere@127.0.0.1">>,
    binary_to_term(<<131, 88, 119, (byte_size(Node)), Node/binary, 77:32, 3:32, 123456:32>>).

external_ref() ->
    Node = <<"elsewhere@127.0.0.1">>,
    binary_to_term(<<131, 90, 3:16, 119, (byte_size(Node)), Node/binary, 123456:32,
                     1:32, 2:32, 3:32>>).

external_port() ->
    Node = <<"elsewhere@127.0.0.1">>,
    binary_to_term(<<131, 89, 119, (byte_size(Node)), Node/binary, 4711:32, 123456:32>>).

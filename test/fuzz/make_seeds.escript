#!/usr/bin/env escript
%% -*- erlang -*-
%%! -noshell
%% test/fuzz/make_seeds.escript: writes the committed seed corpus of each
%% harness (test/fuzz/corpus/NAME/) from terms Erlang itself encodes, so
%% that the fuzzers start from what BEAM nodes really send.
%% `make fuzz-seeds` runs it; its output is committed.
-mode(compile).

-define(PEER_CREATION, 16#1234567).   % test/unit/peer.c
-define(NODE_CREATION, 16#5eed).      % test/fuzz/fuzz_frame.c
-define(NODE, 'kv@127.0.0.1').

main([Dir]) ->
    term_seeds(filename:join(Dir, "term")),
    handshake_seeds(filename:join(Dir, "handshake")),
    recovery_seeds(filename:join(Dir, "recovery")),
    frame_seeds(filename:join(Dir, "frame")),
    ok;
main(_) ->
    io:format(standard_error, "usage: make_seeds.escript CORPUS_DIR~n", []),
    halt(2).

write(Dir, Name, Bytes) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    ok = file:write_file(filename:join(Dir, Name), Bytes).

%% term_to_binary without the version byte.
enc(T) -> <<131, B/binary>> = term_to_binary(T), B.
enc(T, Opts) -> <<131, B/binary>> = term_to_binary(T, Opts), B.

%% A pid, port or reference of another node, made from its external form.
pid(Node, Id, Creation) ->
    N = atom_to_binary(Node, utf8),
    binary_to_term(<<131, 88, 119, (byte_size(N)), N/binary, Id:32, 0:32, Creation:32>>).

%% A reference of another node, with the given ID words.
ref(Node, Words, Creation) ->
    N = atom_to_binary(Node, utf8),
    binary_to_term(<<131, 90, (length(Words)):16, 119, (byte_size(N)), N/binary, Creation:32,
                     << <<W:32>> || W <- Words >>/binary>>).

%%% terms

term_seeds(Dir) ->
    Pid = pid('n@h', 7, 3),
    Terms = [a, 'ünïcödé', '', 0, 255, 256, -1, 1 bsl 31, -(1 bsl 40), 1 bsl 300, -(1 bsl 2100),
             1.0, -0.0, 3.14159, "abc", "", [1, 2, 3], [a | b], [1, [2, [3, [4]]]], {}, {a, 1},
             list_to_tuple(lists:seq(1, 300)), #{}, #{a => 1, b => [2]}, #{{x} => #{y => z}},
             <<>>, <<"bytes">>, <<5:3>>, <<1, 2, 3:4>>, Pid, make_ref(),
             hd(erlang:ports()), fun lists:map/2, fun(X) -> {X, Pid} end,
             {Pid, make_ref(), [#{k => <<"v">>}], 1.5e300}, lists:seq(1, 2000),
             [$a | <<"improper">>]],
    lists:foreach(fun({I, T}) -> write(Dir, io_lib:format("t~3..0b", [I]), enc(T)) end,
                  lists:zip(lists:seq(1, length(Terms)), Terms)),
    %% Old and alternative encodings: atoms as ATOM_EXT, floats as text,
    %% old pids and references (creation below 4, first word below 2^18).
    Alternatives =
        [<<100, 0, 3, "abc">>, <<115, 3, "abc">>, <<118, 0, 3, "abc">>,
         <<99, (list_to_binary(io_lib:format("~-31.20e", [1.5])))/binary>>,
         <<103, 100, 0, 3, "n@h", 0, 0, 0, 7, 0, 0, 0, 2, 3>>,
         <<102, 100, 0, 3, "n@h", 0, 0, 0, 9, 3>>,
         <<101, 100, 0, 3, "n@h", 0, 0, 0, 5, 3>>,
         <<114, 0, 2, 100, 0, 3, "n@h", 3, 0, 0, 0, 5, 0, 0, 0, 6>>,
         <<108, 0, 0, 0, 2, 97, 1, 107, 0, 2, "bc">>,            % [1 | "bc"]
         enc(#{b => 1, a => 2}, [deterministic]),
         enc({"abc", [1 | 2]}, [{minor_version, 1}])],
    lists:foreach(fun({I, B}) -> write(Dir, io_lib:format("alt~3..0b", [I]), B) end,
                  lists:zip(lists:seq(1, length(Alternatives)), Alternatives)).

%%% handshake packets: [flags][u16 length][packet]...

handshake_seeds(Dir) ->
    Flags = 16#0000000d07df7fbd,
    Name = <<"a@127.0.0.1">>,
    N = <<$N, Flags:64, ?PEER_CREATION:32, (byte_size(Name)):16, Name/binary>>,
    Old = <<$n, 6:16, Flags:32, Name/binary>>,
    Complement = <<$c, (Flags bsr 32):32, ?PEER_CREATION:32>>,
    Reply = <<$r, 42:32, 0:128>>,
    P = fun(B) -> <<(byte_size(B)):16, B/binary>> end,
    write(Dir, "new", <<1, (P(N))/binary, (P(Reply))/binary>>),
    write(Dir, "old", <<1, (P(Old))/binary, (P(Complement))/binary, (P(Reply))/binary>>),
    write(Dir, "wrong-cookie", <<0, (P(N))/binary, (P(Reply))/binary>>),
    write(Dir, "bad-name", <<1, (P(<<$N, Flags:64, 1:32, 3:16, "abc">>))/binary>>),
    %% accepting while dialing the same peer (a simultaneous connect), and
    %% after this node's attempt yielded
    write(Dir, "simultaneous", <<(1 bor 4), (P(N))/binary, (P(Reply))/binary>>),
    write(Dir, "yielded", <<(1 bor 8), (P(N))/binary, (P(Reply))/binary>>),
    %% initiating, towards p@127.0.0.1: status, challenge, ack
    Dialed = <<"p@127.0.0.1">>,
    Challenge = <<$N, Flags:64, 99:32, ?PEER_CREATION:32, (byte_size(Dialed)):16, Dialed/binary>>,
    Ack = <<$a, 0:128>>,
    write(Dir, "initiate", <<3, (P(<<"sok">>))/binary, (P(Challenge))/binary, (P(Ack))/binary>>),
    write(Dir, "initiate-alive", <<3, (P(<<"salive">>))/binary, (P(Challenge))/binary, (P(Ack))/binary>>),
    write(Dir, "initiate-nok", <<3, (P(<<"snok">>))/binary>>).

%%% recovery: [flags][file][u16 length][bytes]...; flags 3 fixes every checksum

recovery_seeds(Dir) ->
    Entries = [{enc(K), enc(V)} || {K, V} <- [{a, 1}, {<<"k">>, [x, y]}, {{t, 1}, #{m => 1}}]],
    Snap = fun(Gen, Es) ->
                   Body = <<"GCNSNAP1", Gen:64, (length(Es)):64,
                            << <<(byte_size(K)):32, (byte_size(V)):32, K/binary, V/binary>>
                               || {K, V} <- Es >>/binary>>,
                   <<Body/binary, 0:32>>
           end,
    Put = fun(K, V) -> Payload = <<1, (byte_size(K)):32, K/binary, V/binary>>,
                       <<(byte_size(Payload)):32, 0:32, Payload/binary>> end,
    Del = fun(K) -> Payload = <<2, (byte_size(K)):32, K/binary>>,
                    <<(byte_size(Payload)):32, 0:32, Payload/binary>> end,
    F = fun(File, B) -> <<File, (byte_size(B)):16, B/binary>> end,
    Log1 = <<(Put(enc(a), enc(2)))/binary, (Put(enc(b), enc("bee")))/binary, (Del(enc(a)))/binary>>,
    Log2 = <<(Put(enc(c), enc(<<1, 2, 3>>)))/binary>>,
    write(Dir, "log-only", <<3, (F(1, Log1))/binary>>),
    write(Dir, "snapshot-and-log", <<3, (F(0, Snap(1, Entries)))/binary, (F(1, Log1))/binary>>),
    write(Dir, "compacted", <<3, (F(0, Snap(2, Entries)))/binary, (F(1, Log1))/binary,
                             (F(2, Log2))/binary>>),
    Torn = binary:part(Log2, 0, byte_size(Log2) - 3),
    write(Dir, "torn-tail", <<3, (F(1, Log1))/binary, (F(2, Torn))/binary>>),
    write(Dir, "unchecked", <<0, (F(0, Snap(1, Entries)))/binary, (F(1, Log1))/binary>>),
    %% version 2 of the log (aof.h): a magic, a checksum of each header
    Magic = <<0, 0, 0, 5, "gcnl", 0, "ogv", 2>>,
    Put2 = fun(K, V) -> Payload = <<1, (byte_size(K)):32, K/binary, V/binary>>,
                        <<(byte_size(Payload)):32, 0:32, 0:32, Payload/binary>> end,
    Del2 = fun(K) -> Payload = <<2, (byte_size(K)):32, K/binary>>,
                     <<(byte_size(Payload)):32, 0:32, 0:32, Payload/binary>> end,
    Log1v2 = <<Magic/binary, (Put2(enc(a), enc(2)))/binary, (Put2(enc(b), enc("bee")))/binary,
               (Del2(enc(a)))/binary>>,
    Inner = <<(Put2(enc(x), enc(1)))/binary, (Put2(enc(y), enc(2)))/binary>>,
    Holding = <<Magic/binary, (Put2(enc(c), enc(<<Magic/binary, Inner/binary>>)))/binary>>,
    write(Dir, "log-only-v2", <<3, (F(1, Log1v2))/binary>>),
    write(Dir, "v1-then-v2", <<3, (F(0, Snap(2, Entries)))/binary, (F(1, Log1))/binary,
                              (F(2, Log1v2))/binary>>),
    write(Dir, "torn-holding-records-v2",
          <<3, (F(1, binary:part(Holding, 0, byte_size(Holding) - 2)))/binary>>),
    write(Dir, "torn-magic", <<3, (F(1, <<0, 0, 0, 5, "g">>))/binary>>).

%%% frames: a script of ops (see fuzz_frame.c)

frame_seeds(Dir) ->
    A = pid('a@127.0.0.1', 1, ?PEER_CREATION),
    B = pid('b@127.0.0.1', 1, ?PEER_CREATION),
    Kv = pid(?NODE, 4, ?NODE_CREATION),              % the probe, net_kernel, gen_cnode, kv, counter
    Probe = pid(?NODE, 1, ?NODE_CREATION),
    NetKernel = pid(?NODE, 2, ?NODE_CREATION),
    Counter = pid(?NODE, 5, ?NODE_CREATION),
    W = pid(?NODE, 7, ?NODE_CREATION),               % the watcher the "platform" seed starts
    Big = binary:copy(<<"t">>, 3000),               % a tag whose reply passes the 2 KiB limit
    Call = fun(From, Tag, Req) -> {'$gen_call', {From, Tag}, Req} end,
    Send = fun(Who, From, To, Msg) ->
                   Ctrl = case is_atom(To) of
                              true -> {6, From, '', To};
                              false -> {2, '', To}
                          end,
                   frame(Who, Ctrl, Msg)
           end,
    Ctl = fun(Who, Ctrl) -> frame(Who, Ctrl, none) end,
    Run = <<2, 3>>,
    Ref = make_ref(),
    Alias = [alias | make_ref()],
    Seeds =
        #{"kv" => [Send(a, A, kv, Call(A, 1, {put, key, <<"value">>})), Run,
                   Send(a, A, kv, {'$gen_cast', {put, {k, 2}, [1, 2, 3]}}),
                   Send(a, A, kv, Call(A, 2, {get, {k, 2}})), Send(a, A, kv, Call(A, 3, keys)),
                   Send(a, A, kv, Call(A, 4, {fetch, key})), Send(a, A, Kv, Call(A, 5, size)),
                   Send(a, A, kv, {'$gen_cast', {delete, key}}), Run, <<3>>],
          "alias-tags" => [Send(a, A, kv, Call(A, Alias, {get, key})),
                           Send(a, A, kv, Call(A, [Alias | x], size)), Run, <<3>>],
          "waiter-closes-peer" => [<<5>>, Send(b, B, counter, Call(B, Big, {wait_for, 1})),
                                   Send(b, B, counter, Call(B, Big, {wait_for, 1})), Run,
                                   Send(a, A, counter, {'$gen_cast', incr}), Run, Run,
                                   Send(a, A, counter, Call(A, 9, get)), Run, <<3>>],
          "start-link-closes-peer" => [<<5>>, Send(b, B, gen_cnode, Call(B, Big, {start_link, kv, []})),
                                       Run, Run, Send(a, A, gen_cnode,
                                                      Call(A, 1, {start, counter, [], [{name, c2}]})),
                                       Run, <<3>>],
          "monitors" => [Ctl(a, {19, A, kv, Ref}), Ctl(a, {19, A, Kv, make_ref()}),
                         Ctl(a, {19, A, nosuch, make_ref()}), Run, Ctl(a, {20, A, kv, Ref}),
                         Run, <<3>>],
          "links-and-exits" => [Ctl(a, {1, A, Counter}), Ctl(a, {35, 7, A, Counter}),
                                Ctl(a, {1, A, Kv}), Ctl(a, {3, A, Kv, boom}),
                                Ctl(a, {8, A, Probe, kill}), Ctl(a, {8, A, NetKernel, kill}),
                                Ctl(a, {18, A, Counter, token, shutdown}), Run, <<3>>],
          "sys" => [Send(a, A, counter, {system, {A, 1}, get_state}),
                    Send(a, A, counter, {system, {A, 2}, get_status}),
                    Send(a, A, counter, {system, {A, 3}, suspend}),
                    Send(a, A, counter, {'$gen_cast', incr}),
                    Send(a, A, counter, {system, {A, 4}, resume}),
                    Send(a, A, counter, {system, {A, 5}, {replace_state, fun(S) -> S end}}),
                    Send(a, A, net_kernel, {system, {A, 6}, {terminate, normal}}),
                    Send(a, A, counter, {system, {A, 7}, {terminate, normal}}), Run, <<3>>],
          "node-down" => [<<5>>, Send(b, B, counter, Call(B, 1, {wait_for, 5})),
                          Ctl(b, {19, B, kv, make_ref()}), Ctl(b, {1, B, Kv}), Run, <<4>>, Run,
                          Send(a, A, counter, Call(A, 2, get)), Run, <<3>>],
          "ping-and-deep" => [Send(a, A, net_kernel, Call(A, 1, {is_auth, 'a@127.0.0.1'})),
                              Send(a, A, kv, Call(A, 2, {get, deep(3000)})), Run, <<3>>],
          "platform" => [Send(a, A, gen_cnode, Call(A, 1, {start, ratelimit, #{rate => 1000, burst => 2},
                                                        [{name, rl}]})), Run,
                         Send(a, A, rl, Call(A, 2, take)), Send(a, A, rl, Call(A, 3, {wait, 2})),
                         Send(a, A, rl, Call(A, 4, {take, 9})), Run, Run,
                         Send(a, A, gen_cnode, Call(A, 5, {start, watcher, [], [{name, w}]})), Run,
                         Send(a, A, w, Call(A, 6, {monitor, A})), Send(a, A, w, Call(A, 7, {link, A})),
                         Send(a, A, w, Call(A, 8, {send, A, hi})), Send(a, A, w, Call(A, 9, {monitor, Kv})),
                         Send(a, A, w, Call(A, 10, {send, {x, 'b@127.0.0.1'}, hi})),
                         Ctl(a, {21, A, W, Ref, boom}), Ctl(a, {3, A, W, boom}), Run,
                         <<5>>, Send(b, B, w, Call(B, 11, {monitor, B})), Run, <<4>>, Run,
                         Send(a, A, w, Call(A, 12, seen)), Send(a, A, w, {system, {A, 13}, {terminate, normal}}),
                         Run, <<3>>],
          %% Peer a passes on ids of peer b (connected) that b could not
          %% have made: each frame closes a's connection, not b's.
          "third-node-ids" => [<<5>>, Run, Send(a, A, kv, Call(pid('b@127.0.0.1', 1 bor (1 bsl 28), ?PEER_CREATION), 1,
                                                           {get, key})), Run,
                               Send(a, A, kv, Call(A, [alias | ref('b@127.0.0.1', [1 bsl 20, 2, 3], ?PEER_CREATION)],
                                                   size)), Run,
                               Send(a, A, kv, Call(A, [alias | ref('b@127.0.0.1', [1, 2, 3, 4, 5], ?PEER_CREATION)],
                                                   size)), Run,
                               Send(b, pid('b@127.0.0.1', 1 bsl 28, ?PEER_CREATION), kv,
                                    Call(pid('b@127.0.0.1', 1 bsl 28, ?PEER_CREATION), 2, size)), Run,
                               Send(a, A, kv, {'$gen_cast', {put, forged, ref('b@127.0.0.1', [1 bsl 31, 0, 0], 1)}}),
                               Run, <<3>>],
          "malformed" => [<<0, 0, 3, 112, 131, 104>>, <<6, 0, 4, 255, 255, 255, 255>>, Run],
          "stranger" => [stranger(<<$N, 16#0000000d07df7fbd:64, 1:32, 11:16, "s@127.0.0.1">>), Run]},
    maps:foreach(fun(Name, Parts) -> write(Dir, Name, iolist_to_binary(Parts)) end, Seeds).

%% op 7: a stranger sends one handshake packet.
stranger(Packet) ->
    Bytes = <<(byte_size(Packet)):16, Packet/binary>>,
    <<7, (byte_size(Bytes)):16, Bytes/binary>>.

deep(0) -> leaf;
deep(N) -> [deep(N - 1)].

%% op 0 (peer a) or 1 (peer b), then [u16 length][frame from 'p' on].
frame(Who, Ctrl, Msg) ->
    Body = case Msg of
               none -> <<112, (term_to_binary(Ctrl))/binary>>;
               _ -> <<112, (term_to_binary(Ctrl))/binary, (term_to_binary(Msg))/binary>>
           end,
    Op = case Who of a -> 0; b -> 1 end,
    <<Op, (byte_size(Body)):16, Body/binary>>.

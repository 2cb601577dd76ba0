%% gen_cnode_hostile_SUITE: what a hostile peer, or bad timing, does to the
%% C node. A raw distribution peer written from scratch (hostile_peer: the
%% real handshake with the cookie, then any bytes at all) sends mutated and
%% truncated frames, unknown control messages and bad atoms; sends exit
%% signals to every process of the node; stops reading while replies pile
%% up; vanishes in the middle of a call, a deferred reply, a start_link, a
%% sys:suspend and a compaction; opens a thousand idle connections and
%% trickles bytes into some; tries wrong cookies and absurd lengths.
%%
%% Each case runs against a C node of its own (under ASan and UBSan in the
%% OTP 25 stage), and ends the same way: the node still answers a
%% well-behaved BEAM client (this CT node: ping, then a kv it starts, put
%% and get), and, stopped with SIGTERM, exits 0 with no sanitizer report.
%% Random choices are seeded (GEN_CNODE_SEED=N reproduces a run).
-module(gen_cnode_hostile_SUITE).

-define(config(Key, Config), proplists:get_value(Key, Config)).
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

-export([mutated_and_truncated_frames/1,
         forged_ids_of_a_third_node/1,
         forged_release_of_another_peer/1,
         forged_messages_to_the_pg_scope/1,
         waiters_a_peer_piles_up_are_bounded/1,
         servers_a_peer_starts_are_bounded/1,
         monitors_with_another_nodes_reference/1,
         replies_to_gone_processes_of_the_node/1,
         unknown_control_messages_and_bad_atoms/1,
         a_map_with_a_repeated_key_is_refused/1,
         a_too_deep_call_from_a_forged_tag_is_refused/1,
         made_up_nodes_take_a_share_of_the_dial_slots/1,
         held_replies_to_made_up_nodes_count_as_their_callers/1,
         a_peer_connecting_takes_the_place_of_a_waiting_attempt/1,
         exit_signals_to_every_process_of_the_node/1,
         peer_that_stops_reading_is_dropped/1,
         waiters_of_a_peer_that_stops_reading/1,
         vanishing_mid_call_deferred_reply_and_start_link/1,
         vanishing_after_sys_suspend/1,
         vanishing_during_a_compaction/1,
         thousand_idle_connections_and_trickled_bytes/1,
         ids_of_other_nodes_cost_no_walk_of_connections/1,
         wrong_cookies_and_absurd_lengths/1,
         memory_of_a_large_value_is_given_back/1]).

-define(HOSTILE, 'hostile@127.0.0.1').
-define(MIB, (1 bsl 20)).

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [mutated_and_truncated_frames,
     forged_ids_of_a_third_node,
     forged_release_of_another_peer,
     forged_messages_to_the_pg_scope,
     waiters_a_peer_piles_up_are_bounded,
     servers_a_peer_starts_are_bounded,
     monitors_with_another_nodes_reference,
     replies_to_gone_processes_of_the_node,
     unknown_control_messages_and_bad_atoms,
     a_map_with_a_repeated_key_is_refused,
     a_too_deep_call_from_a_forged_tag_is_refused,
     made_up_nodes_take_a_share_of_the_dial_slots,
     held_replies_to_made_up_nodes_count_as_their_callers,
     a_peer_connecting_takes_the_place_of_a_waiting_attempt,
     exit_signals_to_every_process_of_the_node,
     peer_that_stops_reading_is_dropped,
     waiters_of_a_peer_that_stops_reading,
     vanishing_mid_call_deferred_reply_and_start_link,
     vanishing_after_sys_suspend,
     vanishing_during_a_compaction,
     thousand_idle_connections_and_trickled_bytes,
     ids_of_other_nodes_cost_no_walk_of_connections,
     wrong_cookies_and_absurd_lengths,
     memory_of_a_large_value_is_given_back].

init_per_suite(Config) ->
    durable_harness:init_suite(?MODULE, Config).

end_per_suite(Config) ->
    durable_harness:end_suite(Config).

%% Each case: a C node of its own, with the arguments the case needs.
init_per_testcase(Case, Config) ->
    durable_harness:seed_case(Config, Case),
    Dir = filename:join(?config(priv_dir, Config), atom_to_list(Case)),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Args = args(Case, Dir),
    Name = list_to_atom("h" ++ integer_to_list(erlang:unique_integer([positive]))),
    {Owner, {kv, Node}, Log} = durable_harness:start_cnode(Config, Name, Args),
    [{owner, Owner}, {cnode, Node}, {log, Log}, {dir, Dir}, {args, Args} | Config].

args(forged_ids_of_a_third_node, _) -> ["--max-message", "1000000"];
args(a_too_deep_call_from_a_forged_tag_is_refused, _) -> ["--max-depth", "3"];
args(servers_a_peer_starts_are_bounded, _) -> ["--max-processes", "40"];
args(peer_that_stops_reading_is_dropped, _) -> ["--max-message", "1000000"];
args(waiters_of_a_peer_that_stops_reading, _) -> ["--max-message", "1000000"];
args(held_replies_to_made_up_nodes_count_as_their_callers, Dir) -> ["--data-dir", Dir];
args(vanishing_during_a_compaction, Dir) -> ["--data-dir", Dir, "--fsync", "always"];
%% (AddressSanitizer's quarantine would hold the freed memory back.)
args(memory_of_a_large_value_is_given_back, _) ->
    [{env, [{"ASAN_OPTIONS", os:getenv("ASAN_OPTIONS", "") ++ ":quarantine_size_mb=0"}]},
     "--max-message", integer_to_list(256 * ?MIB)];
args(_, _) -> [].

%% Whatever the case did, a well-behaved client is served, and the node
%% stops cleanly with nothing from the sanitizers.
end_per_testcase(_Case, Config) ->
    {Owner, Log} = case persistent_term:get({?MODULE, replaced}, undefined) of
                       undefined -> {?config(owner, Config), ?config(log, Config)};
                       Replaced -> persistent_term:erase({?MODULE, replaced}), Replaced
                   end,
    Node = ?config(cnode, Config),
    Served = (catch served(Node)),
    Stop = case is_process_alive(Owner) of
               true -> gen_cnode:stop(Owner);
               false -> owner_gone
           end,
    gen_cnode_test_env:reap(),
    case {Served, Stop, gen_cnode_test_env:sanitizer_reports(Log)} of
        {ok, ok, []} -> ok;
        Other -> {fail, {after_the_case, Other, durable_harness:log_lines(Log)}}
    end.

%% A BEAM client's view: pong, and a kv of its own started, used, stopped.
served(Node) ->
    pong = net_adm:ping(Node),
    {ok, Pid} = gen_server:call({gen_cnode, Node}, {start, kv, []}, 10000),
    ok = gen_server:call(Pid, {put, k, <<"v">>}, 10000),
    <<"v">> = gen_server:call(Pid, {get, k}, 10000),
    ok = gen_server:stop(Pid, normal, 10000).

%%% Cases

%% Frames as a BEAM node sends them, then every truncation of each, then
%% a few thousand random mutations (bytes flipped, dropped, inserted,
%% chunks repeated). The node closes the connections it cannot trust and
%% reads on; the hostile peer reconnects and goes on.
mutated_and_truncated_frames(Config) ->
    Node = ?config(cnode, Config),
    {ok, Kv} = gen_server:call({gen_cnode, Node}, {start, kv, []}),
    Frames = frames(Kv),
    Truncated = [binary:part(F, 0, N) || F <- Frames, N <- cuts(byte_size(F))],
    Mutated = [mutate(lists:nth(rand:uniform(length(Frames)), Frames)) || _ <- lists:seq(1, 3000)],
    Closed = send_all(Node, Frames ++ Truncated ++ Mutated),
    ct:log("~b frames, ~b truncated, ~b mutated: the node closed the connection ~b times",
           [length(Frames), length(Truncated), length(Mutated), Closed]),
    ?assert(Closed > 0), %% some of them it must not trust
    ok = served(Node).

%% A peer passes on pids and references of a third node (this CT node) that
%% the third node could not have made: a reference whose first word has
%% more than 18 bits, a pid whose ID has more than 28. The CT node would take
%% either, coming back to it, for a corrupted term of its own and drop its
%% connection to the C node (a BEAM server in the C node's place would pass
%% them on). Put in a call's alias, in its From pid, in its tag (which the
%% reply copies), in a stored value: the C node refuses each frame,
%% closing the forger's connection, logged once, and the CT node stays
%% connected throughout. What passes: unusual ids of the forger's own node
%% (sent back, they cost the forger only), and an alias of the CT node as
%% it makes them (5 words on OTP 27).
forged_ids_of_a_third_node(Config) ->
    Node = ?config(cnode, Config),
    pong = net_adm:ping(Node),
    ok = gen_server:call({kv, Node}, {put, k, v}),
    monitor_node(Node, true),
    Me = hostile_peer:pid(?HOSTILE, 1),
    %% Once the node knows this node's release (it asks its rex), the rules
    %% of that release apply: on OTP 25, a pid's ID over 15 bits and a
    %% reference of 5 words are refused as well; OTP 27 makes both.
    Release = list_to_integer(erlang:system_info(otp_release)),
    gen_cnode_test_env:wait_until(
      fun() -> #{connections := Cs} = gen_server:call({gen_cnode, Node}, stats),
               [Release] =:= [R || #{node := N, otp_release := R} <- Cs, N =:= node()] end, 5000),
    Forged = [{fun(R, _) -> {{'$gen_call', {Me, [alias | R]}, {get, k}}, R} end, high_bits},
              {fun(_, P) -> {{'$gen_call', {P, make_ref()}, {get, k}}, P} end, high_bits},
              {fun(R, _) -> {{'$gen_call', {self(), R}, {get, k}}, R} end, high_bits},
              {fun(R, P) -> {{'$gen_cast', {put, forged, [R, P]}}, R} end, high_bits},
              {fun(R, _) -> {{'$gen_call', {Me, [alias | R]}, {get, k}}, R} end, otp27},
              {fun(_, P) -> {{'$gen_call', {P, make_ref()}, {get, k}}, P} end, otp27}],
    Outcomes = [begin
                    {Msg, Placeholder} = Make(make_ref(), spawn(fun() -> ok end)),
                    Frame = binary:replace(frame({6, Me, '', kv}, Msg), enc(Placeholder),
                                           forge(Placeholder, How)),
                    {ok, P} = hostile_peer:connect(Node, ?HOSTILE, erlang:get_cookie()),
                    ok = hostile_peer:send_payload(P, Frame),
                    case How =:= high_bits orelse Release =< 25 of
                        true -> ?assertEqual(closed, drain_until_closed(P, 10000)),
                                refused;
                        false -> ?assertEqual(timeout, drain_until_closed(P, 500)),
                                 hostile_peer:close(P),
                                 passed
                    end
                end || {Make, How} <- Forged],
    ct:log("on OTP ~b: ~p", [Release, lists:zip([How || {_, How} <- Forged], Outcomes)]),
    %% The same in the first bytes of a call over --max-message, which the
    %% node answers too_large without reading the rest.
    BigFrom = spawn(fun() -> ok end),
    Big = binary:replace(frame({6, Me, '', kv}, {'$gen_call', {BigFrom, make_ref()}, binary:copy(<<7>>, 2000000)}),
                         enc(BigFrom), forge(BigFrom, high_bits)),
    {ok, BigP} = hostile_peer:connect(Node, ?HOSTILE, erlang:get_cookie()),
    ok = hostile_peer:send_payload(BigP, Big),
    ?assertEqual(closed, drain_until_closed(BigP, 10000)),
    Refused = [R || R = refused <- [refused | Outcomes]],
    ?assertEqual(nil, gen_server:call({kv, Node}, {get, forged})),
    %% The forger's own unusual pid: answered, on its connection.
    {ok, P} = hostile_peer:connect(Node, ?HOSTILE, erlang:get_cookie()),
    Own = binary:replace(frame({6, Me, '', kv}, {'$gen_call', {Me, tag}, {get, k}}), enc(Me),
                         forge(Me, high_bits)),
    ok = hostile_peer:send_payload(P, Own),
    ?assertMatch({ok, _, _}, hostile_peer:recv(P, 5000)),
    %% The CT node's own alias, passed on: answered, to the alias.
    Alias = alias(),
    ok = hostile_peer:send(P, {6, Me, '', kv}, {'$gen_call', {Me, [alias | Alias]}, {get, k}}),
    receive {[alias | Alias], Reply} -> ?assertEqual(v, Reply) after 5000 -> ct:fail(no_reply_to_alias) end,
    hostile_peer:close(P),
    receive {nodedown, Node} -> ct:fail(the_ct_node_was_cut_off) after 200 -> ok end,
    monitor_node(Node, false),
    Logged = [L || L <- durable_harness:log_lines(?config(log, Config)),
                   string:find(L, "its own node would refuse") =/= nomatch],
    ?assertEqual(length(Refused), length(Logged)),
    ok = served(Node).

%% A call too deep for the node (--max-depth 3) is answered too_deep, to
%% the From in it; the walk that found it too deep may have stopped before
%% that From's ids, which are checked all the same: a forged reference of
%% the CT node there closes the forger's connection, and the answer never
%% goes to the CT node (which would refuse it, and the node with it).
a_too_deep_call_from_a_forged_tag_is_refused(Config) ->
    Node = ?config(cnode, Config),
    ok = gen_server:call({kv, Node}, {put, k, v}),
    monitor_node(Node, true),
    Me = hostile_peer:pid(?HOSTILE, 1),
    R = make_ref(),
    Frame = binary:replace(frame({6, Me, '', kv}, {'$gen_call', {Me, [[alias | R] | x]}, {get, k}}),
                           enc(R), forge(R, high_bits)),
    {ok, P} = hostile_peer:connect(Node, ?HOSTILE, erlang:get_cookie()),
    ok = hostile_peer:send_payload(P, Frame),
    ?assertEqual(closed, drain_until_closed(P, 10000)),
    %% The same call with the forger's own tag: answered too_deep, on its connection.
    {ok, P2} = hostile_peer:connect(Node, ?HOSTILE, erlang:get_cookie()),
    ok = hostile_peer:send(P2, {6, Me, '', kv}, {'$gen_call', {Me, [[tag] | x]}, {get, k}}),
    ?assertEqual({error, {bad_request, too_deep}}, reply_to(P2, [[tag] | x], 5000)),
    hostile_peer:close(P2),
    receive {nodedown, Node} -> ct:fail(the_ct_node_was_cut_off) after 200 -> ok end,
    monitor_node(Node, false),
    ok = served(Node).

%% A peer's calls from pids of 70 made-up nodes on a host whose epmd never
%% answers (a listener on 127.0.0.2 that accepts nothing): each reply makes
%% the node dial, and each attempt waits out its 7 s. Those attempts take
%% 48 of the 64 dial slots, no more; the other 22 wait for a slot. So:
%% - a reply to a real node not connected yet, caused by another peer's
%%   call, is dialed at once and delivered;
%% - one more caused by the same peer waits behind its 22, and is
%%   delivered once the first attempts end (7 s), not dropped.
made_up_nodes_take_a_share_of_the_dial_slots(Config) ->
    made_up_nodes(Config, {get, k}, v, both).

%% The same with put_sync to a durable kv: each reply is held until the
%% write is on disk, and sent from the kv's flush, between frames. Held
%% replies count as the doing of the connection that brought their call:
%% the made-up nodes' attempts are the hostile peer's, and a held reply to
%% a far caller the CT node passed on is dialed at once.
held_replies_to_made_up_nodes_count_as_their_callers(Config) ->
    made_up_nodes(Config, {put_sync, k, v}, ok, other_peer).

%% An attempt waiting for a dial slot has not reached its peer. When that
%% peer connects meanwhile, its connection takes the attempt's place and
%% what was held on it, whatever the names' order (the peer's name sorts
%% first here, which in a real simultaneous connect would make the C node
%% answer nok and the peer wait for the C node's own attempt).
a_peer_connecting_takes_the_place_of_a_waiting_attempt(Config) ->
    made_up_nodes(Config, {get, k}, v, takeover).

made_up_nodes(Config, Request, Answer, takeover) ->
    Node = ?config(cnode, Config),
    ok = gen_server:call({kv, Node}, {put, k, v}),
    {Peer, _} = gen_cnode_test_env:start_tracked_peer(a_far_peer),
    Self = self(),
    Far = peer:call(Peer, erlang, spawn, [fun() -> receive M -> Self ! {far_got, self(), M} after 30000 -> ok end end]),
    {ok, Hole} = gen_tcp:listen(gen_cnode_test_env:epmd_port(), [{ip, {127, 0, 0, 2}}, {backlog, 128}]),
    try
        {ok, P} = hostile_peer:connect(Node, ?HOSTILE, erlang:get_cookie()),
        flood_made_up_callers(P, Request, Answer),
        Tag = make_ref(),
        Me = hostile_peer:pid(?HOSTILE, 1),
        ok = hostile_peer:send(P, {6, Me, '', kv}, {'$gen_call', {Far, Tag}, Request}),
        ?assertEqual({ok, Answer}, hostile_peer:call(P, kv, Request, 5000)), %% (that one is waiting)
        T0 = erlang:monotonic_time(millisecond),
        ?assertEqual(pong, peer:call(Peer, net_adm, ping, [Node], 10000)),
        receive {far_got, Far, Reply} -> ?assertEqual({Tag, Answer}, Reply)
        after 5000 -> ct:fail(the_held_reply_did_not_go_with_the_peer_s_connection)
        end,
        ?assert(erlang:monotonic_time(millisecond) - T0 < 5000),
        hostile_peer:close(P)
    after
        gen_tcp:close(Hole)
    end,
    ok = served(Node);
made_up_nodes(Config, Request, Answer, Parts) ->
    Node = ?config(cnode, Config),
    ok = gen_server:call({kv, Node}, {put, k, v}),
    {ok, Hole} = gen_tcp:listen(gen_cnode_test_env:epmd_port(), [{ip, {127, 0, 0, 2}}, {backlog, 128}]),
    try
        {ok, P} = hostile_peer:connect(Node, ?HOSTILE, erlang:get_cookie()),
        Me = hostile_peer:pid(?HOSTILE, 1),
        flood_made_up_callers(P, Request, Answer),
        Self = self(),
        Spawn = fun(Peer) ->
                        peer:call(Peer, erlang, spawn,
                                  [fun() -> receive M -> Self ! {far_got, self(), M} after 30000 -> ok end end])
                end,
        %% A call from a process of a node the C node has never met, passed
        %% on by this node: the answer needs a dial of its own.
        {Peer, _} = gen_cnode_test_env:start_tracked_peer(hostile_far_peer),
        Far = Spawn(Peer),
        Tag = make_ref(),
        T0 = erlang:monotonic_time(millisecond),
        {kv, Node} ! {'$gen_call', {Far, Tag}, Request},
        receive {far_got, Far, Reply} -> ?assertEqual({Tag, Answer}, Reply)
        after 5000 -> ct:fail(the_far_caller_got_no_answer)
        end,
        ?assert(erlang:monotonic_time(millisecond) - T0 < 5000),
        Parts =:= both andalso begin
            %% The same, passed on by the peer that named the made-up nodes.
            {Peer2, _} = gen_cnode_test_env:start_tracked_peer(hostile_far_peer2),
            Far2 = Spawn(Peer2),
            Tag2 = make_ref(),
            ok = hostile_peer:send(P, {6, Me, '', kv}, {'$gen_call', {Far2, Tag2}, Request}),
            receive {far_got, Far2, Reply2} -> ?assertEqual({Tag2, Answer}, Reply2)
            after 20000 -> ct:fail(the_queued_reply_never_came)
            end
        end,
        Log = ?config(log, Config),
        ?assertEqual([], [L || L <- durable_harness:log_lines(Log),
                               binary:match(L, <<"too many attempts to connect wait">>) =/= nomatch]),
        hostile_peer:close(P)
    after
        gen_tcp:close(Hole)
    end,
    ok = served(Node).

%% 70 calls on P from pids of made-up nodes on 127.0.0.2, whose epmd port
%% accepts and never answers: 48 dials begin, 22 wait.
flood_made_up_callers(P, Request, Answer) ->
    Me = hostile_peer:pid(?HOSTILE, 1),
    Ghost = fun(I) -> hostile_peer:pid(list_to_atom("ghost" ++ integer_to_list(I) ++ "@127.0.0.2"), 1) end,
    [ok = hostile_peer:send(P, {6, Me, '', kv}, {'$gen_call', {Ghost(I), make_ref()}, Request})
     || I <- lists:seq(1, 70)],
    %% (the 70 calls answered and their dials begun or queued)
    ?assertEqual({ok, Answer}, hostile_peer:call(P, kv, Request, 5000)).

%% The reply sent to Tag on the hostile connection P, past other frames
%% (the node's question to the peer's rex), or timeout.
reply_to(P, Tag, Timeout) ->
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    Next = fun Next() ->
                   case hostile_peer:recv(P, max(0, Deadline - erlang:monotonic_time(millisecond))) of
                       {ok, _, {Tag, Reply}} -> Reply;
                       {ok, _, _} -> Next();
                       {error, _} -> timeout
                   end
           end,
    Next().

%% T (a reference or a pid) encoded with numbers its node could not have
%% made: with high_bits, the reference's first word with bit 20 set, the
%% pid's ID with bit 28 (no release makes them); with otp27, a reference of
%% 5 words, a pid's ID with bit 15 set (OTP 27 makes them, OTP 25 does not).
forge(T, How) when is_reference(T) ->
    <<90, Len:16, Rest/binary>> = Enc = enc(T),
    NodeLen = byte_size(Rest) - 4 - 4 * Len,
    <<Node:NodeLen/binary, Cre:32, W0:32, Ws/binary>> = Rest,
    Forged = case How of
                 high_bits -> <<90, Len:16, Node/binary, Cre:32, (W0 bor (1 bsl 20)):32, Ws/binary>>;
                 otp27 -> <<90, 5:16, Node/binary, Cre:32, W0:32, Ws/binary, 7:((5 - Len) * 32)>>
             end,
    true = Forged =/= Enc,
    Forged;
forge(T, How) when is_pid(T) ->
    <<88, Rest/binary>> = enc(T),
    NodeLen = byte_size(Rest) - 12,
    <<Node:NodeLen/binary, Num:32, Ser:32, Cre:32>> = Rest,
    Bit = case How of high_bits -> 28; otp27 -> 15 end,
    <<88, Node/binary, (Num bor (1 bsl Bit)):32, Ser:32, Cre:32>>.

%% Control messages no node sends (unknown ops, and ops a hidden node is not
%% offered: spawn requests, aliases of nobody), and atoms that are not: bad
%% UTF-8, atom cache references, over-long ones. Each costs its frame or
%% its connection, nothing more.
unknown_control_messages_and_bad_atoms(Config) ->
    Node = ?config(cnode, Config),
    Me = hostile_peer:pid(?HOSTILE, 1),
    PidBytes = enc(Me),
    Atom = fun(Tag, Bytes) -> <<Tag, (byte_size(Bytes)):16, Bytes/binary>> end,
    SmallAtom = fun(Bytes) -> <<119, (byte_size(Bytes)), Bytes/binary>> end,
    BadAtoms = [SmallAtom(<<255, 254>>), SmallAtom(<<16#C0, 16#80>>), <<82, 3>>,
                Atom(118, binary:copy(<<"a">>, 300)), Atom(100, binary:copy(<<"b">>, 256)),
                Atom(118, <<16#ED, 16#A0, 16#80>>)],
    Frames = [ctrl_frame({99, Me, kv}), ctrl_frame({-1, Me}), ctrl_frame({24, make_ref(), Me, Me,
                                                                         {m, f, 0}, [], []}),
              frame({33, Me, make_ref()}, hello), ctrl_frame({}), ctrl_frame(not_a_tuple),
              <<112, 131, 104, 4, 97, 6, PidBytes/binary, 106>>]
        ++ [<<112, 131, 104, 4, 97, 6, PidBytes/binary, 119, 0, BadAtom/binary, 131,
              (enc({'$gen_cast', x}))/binary>> || BadAtom <- BadAtoms]
        ++ [<<112, 131, (enc({6, Me, '', kv}))/binary, 131, 104, 2, BadAtom/binary, 97, 1>>
            || BadAtom <- BadAtoms]
        ++ [<<0, 1, 2>>, <<112>>, <<112, 131>>, <<113, 131, 106>>],
    _ = send_all(Node, Frames),
    ok = served(Node).

%% A map whose key repeats (#{a => 1, a => 2}, the second 'a' in Latin-1,
%% and #{1 => x, 1 => y} in two integer encodings), put as a value: the BEAM
%% refuses such a map, and would drop its connection to the node that
%% served it one. The node refuses it as the malformed term it is (the
%% sender's connection closed, as a BEAM closes it, logged); a BEAM reading
%% the key finds nothing, and stays connected.
a_map_with_a_repeated_key_is_refused(Config) ->
    Node = ?config(cnode, Config),
    Me = hostile_peer:pid(?HOSTILE, 1),
    Maps = [<<116, 0, 0, 0, 2, 119, 1, 97, 97, 1, 115, 1, 97, 97, 2>>,
            <<116, 0, 0, 0, 2, 97, 1, 119, 1, 120, 98, 0, 0, 0, 1, 119, 1, 121>>],
    Put = fun(Key, Map) ->
                  <<112, (term_to_binary({6, Me, '', kv}))/binary, 131, 104, 2, (enc('$gen_cast'))/binary,
                    104, 3, (enc(put))/binary, (enc(Key))/binary, Map/binary>>
          end,
    Fine = <<116, 0, 0, 0, 2, 119, 1, 97, 97, 1, 115, 1, 98, 97, 2>>, %% #{a => 1, b => 2}
    Log = ?config(log, Config),
    Closed = fun() -> length([L || L <- durable_harness:log_lines(Log),
                                   binary:match(L, <<"closed: malformed message">>) =/= nomatch])
             end,
    [begin %% one connection each: the first closes it
         _ = send_all(Node, [Put({dup, I}, M)]),
         ok = gen_cnode_test_env:wait_until(fun() -> Closed() =:= I end, 5000)
     end || {I, M} <- lists:enumerate(Maps)],
    _ = send_all(Node, [Put(fine, Fine)]),
    ok = gen_cnode_test_env:wait_until(fun() -> gen_server:call({kv, Node}, {get, fine}) =/= nil end, 5000),
    ?assertEqual(#{a => 1, b => 2}, gen_server:call({kv, Node}, {get, fine})),
    [?assertEqual(nil, gen_server:call({kv, Node}, {get, {dup, I}})) || I <- [1, 2]],
    ?assert(lists:member(Node, nodes(hidden))),
    ok = served(Node).

%% EXIT2 (kill and other reasons) and EXIT to every process the node has:
%% its own (the release probe <N.1.0>, net_kernel, the starter) ignore them,
%% and refuse sys:terminate and sys:suspend; kv and counter are ordinary servers, and die as
%% a BEAM server would. The next peer's handshake (which the probe serves)
%% and ping (net_kernel) work, and the starter starts what it is asked to.
exit_signals_to_every_process_of_the_node(Config) ->
    Node = ?config(cnode, Config),
    {ok, P} = hostile_peer:connect(Node, ?HOSTILE, erlang:get_cookie()),
    Me = hostile_peer:pid(?HOSTILE, 1),
    Creation = creation_of(whereis_remote({kv, Node})),
    Targets = [hostile_peer:node_pid(Node, N, Creation) || N <- lists:seq(1, 10)],
    [ok = hostile_peer:send_ctrl(P, Ctrl)
     || T <- Targets, R <- [shutdown, {weird, reason}, normal, kill],
        Ctrl <- [{8, Me, T, R}, {3, Me, T, R}, {18, Me, T, token, R}, {13, Me, T, token, R}]],
    %% GenServer.stop and sys:suspend of the node's own servers are refused
    %% (suspended, they would hold every peer's pings, starts and pg traffic).
    [?assertEqual({ok, {error, {not_supported_by_c_node, system_process}}},
                  hostile_peer:system_call(P, Name, Req, 5000))
     || Name <- [net_kernel, gen_cnode, pg], Req <- [{terminate, kill}, suspend]],
    %% As OTP's own callers see it (README): sys:suspend returns the error,
    %% gen_server:stop exits with it inside (proc_lib:stop takes only ok).
    [begin
         ?assertEqual({error, {not_supported_by_c_node, system_process}}, sys:suspend({Name, Node})),
         ?assertMatch({'EXIT', {{_, {error, {not_supported_by_c_node, system_process}}}, _}},
                      catch gen_server:stop({Name, Node}))
     end || Name <- [net_kernel, gen_cnode, pg]],
    hostile_peer:close(P),
    %% kv and counter were killed, like any server; the node's own processes were not.
    ?assertExit({noproc, _}, gen_server:call({kv, Node}, size, 5000)),
    ?assertExit({noproc, _}, gen_server:call({counter, Node}, get, 5000)),
    {ok, Q} = hostile_peer:connect(Node, 'hostile2@127.0.0.1', erlang:get_cookie()),
    ?assertEqual({ok, yes}, hostile_peer:call(Q, net_kernel, {is_auth, 'hostile2@127.0.0.1'}, 5000)),
    hostile_peer:close(Q),
    {ok, Kv} = gen_server:call({gen_cnode, Node}, {start, kv, []}),
    ok = gen_server:call(Kv, {put, a, 1}),
    ?assertEqual(#{a => 1}, sys:get_state(Kv)), %% shaped for this release: the probe asked it
    ok = served(Node).

%% A peer that asks for big replies and reads none: its output passes the
%% limit (2 x --max-message + 16 MiB), and the node drops it, logged once,
%% while it keeps answering everyone else.
peer_that_stops_reading_is_dropped(Config) ->
    Node = ?config(cnode, Config),
    Big = binary:copy(<<"0123456789abcdef">>, 900000 div 16),
    ok = gen_server:call({kv, Node}, {put, big, Big}),
    {ok, P} = hostile_peer:connect(Node, ?HOSTILE, erlang:get_cookie()),
    Me = hostile_peer:pid(?HOSTILE, 1),
    [ok = hostile_peer:send(P, {6, Me, '', kv}, {'$gen_call', {Me, N}, {get, big}})
     || N <- lists:seq(1, 60)],
    %% Meanwhile, others are served.
    [?assertEqual(Big, gen_server:call({kv, Node}, {get, big}, 5000)) || _ <- lists:seq(1, 20)],
    ?assertEqual(closed, drain_until_closed(P, 30000)),
    Log = ?config(log, Config),
    gen_cnode_test_env:wait_until(
      fun() -> length([L || L <- durable_harness:log_lines(Log),
                            string:find(L, "does not read what it is sent") =/= nomatch]) =:= 1 end,
      5000),
    ok = served(Node).

%% Counter waiters of one peer with large tags (the reply copies each tag
%% back): one cast wakes them all, their replies pass the peer's output
%% limit in the middle of the wake-up, and the peer is dropped after it,
%% not under it.
waiters_of_a_peer_that_stops_reading(Config) ->
    Node = ?config(cnode, Config),
    {ok, P} = hostile_peer:connect(Node, ?HOSTILE, erlang:get_cookie()),
    Me = hostile_peer:pid(?HOSTILE, 1),
    ok = gen_server:call({counter, Node}, reset),
    Tag = binary:copy(<<"t">>, 100000),
    [ok = hostile_peer:send(P, {6, Me, '', counter},
                            {'$gen_call', {Me, {N, Tag}}, {wait_for, 1}}) || N <- lists:seq(1, 200)],
    gen_cnode_test_env:wait_until(
      fun() -> maps:get(waiting, durable_harness:status({counter, Node})) =:= 200 end, 20000),
    ok = gen_server:cast({counter, Node}, incr),
    ?assertEqual(closed, drain_until_closed(P, 30000)),
    ?assertEqual(#{count => 1, waiting => 0}, durable_harness:status({counter, Node})),
    ok = served(Node).

%% A peer vanishes right after a call, after a {wait_for, N} whose reply
%% comes later, and after a start_link (whose server the link then stops:
%% noconnection).
vanishing_mid_call_deferred_reply_and_start_link(Config) ->
    Node = ?config(cnode, Config),
    ok = gen_server:call({counter, Node}, reset),
    Cookie = erlang:get_cookie(),
    Once = fun(F) -> {ok, P} = hostile_peer:connect(Node, ?HOSTILE, Cookie),
                     Me = hostile_peer:pid(?HOSTILE, 1),
                     F(P, Me),
                     hostile_peer:close(P)
           end,
    [Once(fun(P, Me) -> hostile_peer:send(P, {6, Me, '', kv}, {'$gen_call', {Me, 1}, {put, I, I}})
          end) || I <- lists:seq(1, 20)],
    Once(fun(P, Me) -> hostile_peer:send(P, {6, Me, '', counter}, {'$gen_call', {Me, 2}, {wait_for, 3}})
         end),
    Once(fun(P, Me) -> [hostile_peer:send(P, {6, Me, '', counter}, {'$gen_call', {Me, N}, {wait_for, N}})
                        || N <- lists:seq(1, 50)]
         end),
    [ok = gen_server:cast({counter, Node}, incr) || _ <- lists:seq(1, 60)],
    ?assertEqual(60, gen_server:call({counter, Node}, get)),
    Once(fun(P, Me) -> hostile_peer:send(P, {6, Me, '', gen_cnode},
                                         {'$gen_call', {Me, 3}, {start_link, kv, [], [{name, gone}]}})
         end),
    Once(fun(P, Me) -> hostile_peer:send(P, {6, Me, '', gen_cnode},
                                         {'$gen_call', {Me, 4}, {start_link, counter, [], [{name, gone2}]}}),
                       hostile_peer:send(P, {6, Me, '', gone2}, {'$gen_call', {Me, 5}, {wait_for, 1}})
         end),
    %% Linked to a peer that went away: stopped (noconnection), names free.
    gen_cnode_test_env:wait_until(fun() -> whereis_remote({gone, Node}) =:= undefined andalso
                                               whereis_remote({gone2, Node}) =:= undefined end, 10000),
    {ok, _} = gen_server:call({gen_cnode, Node}, {start, kv, [], [{name, gone}]}),
    ok = gen_server:stop({gone, Node}),
    %% Every put of the vanished callers was applied: they were read before the close.
    ?assertEqual(20, gen_server:call({kv, Node}, size)),
    ok = served(Node).

%% sys:suspend from a peer that then vanishes: the server stays suspended
%% (as a BEAM server would), holds what it is sent, and another node
%% resumes it.
vanishing_after_sys_suspend(Config) ->
    Node = ?config(cnode, Config),
    {ok, _} = gen_server:call({gen_cnode, Node}, {start, kv, [], [{name, held}]}),
    {ok, P} = hostile_peer:connect(Node, ?HOSTILE, erlang:get_cookie()),
    Me = hostile_peer:pid(?HOSTILE, 1),
    {ok, ok} = hostile_peer:system_call(P, held, suspend, 5000),
    ok = hostile_peer:send(P, {6, Me, '', held}, {'$gen_call', {Me, 1}, size}),
    hostile_peer:close(P),
    ok = gen_server:cast({held, Node}, {put, a, 1}),
    ?assertExit({timeout, _}, gen_server:call({held, Node}, size, 300)),
    ok = sys:resume({held, Node}),
    ?assertEqual(1, gen_server:call({held, Node}, size)),
    ok = gen_server:stop({held, Node}),
    ok = served(Node).

%% A peer fills the durable kv, starts a compaction and vanishes; writes
%% go on meanwhile. After a restart on the same folder, every acknowledged
%% write is there.
vanishing_during_a_compaction(Config) ->
    Node = ?config(cnode, Config),
    {ok, P} = hostile_peer:connect(Node, ?HOSTILE, erlang:get_cookie()),
    Me = hostile_peer:pid(?HOSTILE, 1),
    Value = binary:copy(<<"v">>, 200),
    [ok = hostile_peer:send(P, {6, Me, '', kv}, {'$gen_cast', {put, {h, I}, Value}})
     || I <- lists:seq(1, 20000)],
    {ok, ok} = hostile_peer:call(P, kv, sync, 30000),
    ok = hostile_peer:send(P, {6, Me, '', kv}, {'$gen_call', {Me, c}, compact}),
    hostile_peer:close(P),
    Acked = [begin ok = gen_server:call({kv, Node}, {put_sync, {b, I}, I}), {b, I} end
             || I <- lists:seq(1, 300)],
    gen_cnode_test_env:wait_until(
      fun() -> maps:get(compactions, durable_harness:status({kv, Node})) >= 1 end, 30000),
    %% Restart on the same folder.
    ok = gen_server:call({kv, Node}, sync),
    durable_harness:stop_cnode(?config(owner, Config), ?config(log, Config)),
    durable_harness:await_name_gone(Node, 10000),
    [Alive, _] = string:split(atom_to_list(Node), "@"),
    {Owner2, {kv, Node}, Log2} =
        durable_harness:start_cnode(Config, list_to_atom(Alive), ?config(args, Config)),
    ?assertEqual(20300, gen_server:call({kv, Node}, size, 30000)),
    [?assertEqual(I, gen_server:call({kv, Node}, {get, K})) || {b, I} = K <- Acked],
    ?assertEqual(Value, gen_server:call({kv, Node}, {get, {h, 20000}})),
    %% end_per_testcase stops this one.
    persistent_term:put({?MODULE, replaced}, {Owner2, Log2}).

%% 1,100 connections that never finish (or start) their handshake, twenty
%% of which trickle one byte a second: at most 1,024 may wait for their
%% handshake, so the oldest 76 are dropped at once; the node answers a
%% client meanwhile as ever, drops each of the others after the handshake
%% timeout (10 s), and its descriptors are back to what they were.
thousand_idle_connections_and_trickled_bytes(Config) ->
    Node = ?config(cnode, Config),
    OsPid = gen_cnode:os_pid(?config(owner, Config)),
    Fds0 = fd_count(OsPid),
    Idle0 = [S || _ <- lists:seq(1, 1100), {ok, S} <- [hostile_peer:connect_raw(Node)]],
    ?assertEqual(1100, length(Idle0)),
    {Oldest, Idle} = lists:split(76, Idle0),
    [?assertEqual(closed, recv_closed(S, 3000)) || S <- Oldest],
    ?assertEqual(timeout, recv_closed(hd(Idle), 100)),
    Trickling = lists:nthtail(length(Idle) - 20, Idle),
    Hello = <<0, 22, $N, 16#c07070fbc:64, 1:32, 7:16, "x@127.0">>,
    T0 = erlang:monotonic_time(millisecond),
    [begin
         [gen_tcp:send(S, binary:part(Hello, I, 1)) || S <- Trickling],
         [ok = gen_server:call({kv, Node}, {put, {I, J}, J}, 5000) || J <- lists:seq(1, 10)],
         timer:sleep(1000)
     end || I <- lists:seq(0, 4)],
    ct:log("5 s of trickling, 50 calls answered meanwhile, in ~b ms",
           [erlang:monotonic_time(millisecond) - T0]),
    %% The handshake timeout closes them all (10 s after they connected).
    [?assertEqual(closed, recv_closed(S, 20000)) || S <- Idle],
    gen_cnode_test_env:wait_until(fun() -> fd_count(OsPid) =< Fds0 + 2 end, 10000),
    ok = served(Node).

%% Ids of other nodes with numbers beyond the usual are checked against
%% the connection to their node, found by its name: a message of 2,000,000
%% such pids, with 600 half-open connections (no cookie needed for those),
%% walked every connection per pid: 13 s of a stalled node here (sanitizer
%% build); a call behind it now waits for its decoding only.
ids_of_other_nodes_cost_no_walk_of_connections(Config) ->
    Node = ?config(cnode, Config),
    Idle = [S || _ <- lists:seq(1, 600), {ok, S} <- [hostile_peer:connect_raw(Node)]],
    ?assertEqual(600, length(Idle)),
    One = fun(I) -> <<88, 119, 3, "q@h", (16#10000 + I):32, 0:32, 7:32>> end,
    Pids = binary_to_term(iolist_to_binary([<<131, 108, 2000000:32>>,
                                            [One(I) || I <- lists:seq(1, 2000000)], <<106>>])),
    ok = gen_server:call({kv, Node}, {put, k, v}),
    T0 = erlang:monotonic_time(millisecond),
    ok = gen_server:cast({kv, Node}, {unknown, Pids}),
    v = gen_server:call({kv, Node}, {get, k}, 60000),
    Ms = erlang:monotonic_time(millisecond) - T0,
    ct:log("a call behind 2,000,000 unusual pids, 600 connections open: ~b ms", [Ms]),
    ?assert(Ms < 3000),
    [gen_tcp:close(S) || S <- Idle],
    ok = served(Node).

%% 200 handshakes with the wrong cookie (each refused, the node serves on),
%% then, after a good handshake, a length prefix of 4 GB, a frame over
%% --max-message whose first 64 KiB are no control message (it cannot be
%% drained as one message: the stream is not to be trusted), and a frame that
%% is not 'p'.
wrong_cookies_and_absurd_lengths(Config) ->
    Node = ?config(cnode, Config),
    Refused = [hostile_peer:connect(Node, ?HOSTILE, list_to_atom("wrong" ++ integer_to_list(I)))
               || I <- lists:seq(1, 200)],
    ?assertEqual([], [R || R <- Refused, element(1, R) =/= error]),
    ok = served(Node),
    Absurd = [<<255, 255, 255, 255>>, <<4, 0, 0, 1, 112, 131, 107, 0:(65536 * 8)>>,
              <<0, 0, 0, 3, 1, 2, 3>>],
    [begin
         {ok, P} = hostile_peer:connect(Node, ?HOSTILE, erlang:get_cookie()),
         ok = hostile_peer:send_raw(P, Bytes),
         ?assertEqual(closed, drain_until_closed(P, 10000))
     end || Bytes <- Absurd],
    ok = served(Node).

%% A 200 MB value put, read back and deleted: the memory it took (in the
%% socket buffers, the reply buffer, the store) goes back to the system,
%% and the node's resident size returns to within twice what it was.
memory_of_a_large_value_is_given_back(Config) ->
    Node = ?config(cnode, Config),
    OsPid = gen_cnode:os_pid(?config(owner, Config)),
    {ok, Kv} = gen_server:call({gen_cnode, Node}, {start, kv, []}),
    [ok = gen_server:call(Kv, {put, I, lists:seq(1, 50)}) || I <- lists:seq(1, 1000)],
    Base = rss_kb(OsPid),
    Huge = binary:copy(<<"0123456789abcdef">>, 200 * ?MIB div 16),
    ok = gen_server:call(Kv, {put, huge, Huge}, 60000),
    Huge = gen_server:call(Kv, {get, huge}, 60000),
    Peak = rss_kb(OsPid),
    ok = gen_server:call(Kv, {delete, huge}, 60000),
    1000 = gen_server:call(Kv, size),
    gen_cnode_test_env:wait_until(fun() -> rss_kb(OsPid) =< 2 * Base end, 10000),
    ct:log("RSS: ~b kB before, ~b kB with the value, ~b kB after", [Base, Peak, rss_kb(OsPid)]),
    ok = gen_server:stop(Kv).

%%% Helpers

%% Sends each frame on a hostile connection, reconnecting whenever the node
%% closed it (and reading what it is sent, so that it is not dropped for not
%% reading). Returns how many times it found the connection closed.
send_all(Node, Frames) ->
    {ok, P} = hostile_peer:connect(Node, ?HOSTILE, erlang:get_cookie()),
    {P1, Closed} =
        lists:foldl(
          fun({I, F}, {Pp, C}) ->
                  Sent = hostile_peer:send_payload(Pp, F),
                  case I rem 50 of
                      0 -> ok = served(Node);
                      _ -> ok
                  end,
                  case Sent =:= ok andalso drain(Pp) of
                      ok -> {Pp, C};
                      _ -> hostile_peer:close(Pp),
                           {ok, Np} = hostile_peer:connect(Node, ?HOSTILE, erlang:get_cookie()),
                           {Np, C + 1}
                  end
          end, {P, 0}, lists:zip(lists:seq(1, length(Frames)), Frames)),
    hostile_peer:close(P1),
    Closed.

%% Reads what has arrived; closed when the node closed the connection.
drain(P) ->
    case hostile_peer:recv(P, 0) of
        {ok, _, _} -> drain(P);
        {error, timeout} -> ok;
        {error, _} -> closed
    end.

drain_until_closed(P, Timeout) ->
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    drain_until_closed_(P, Deadline).

drain_until_closed_(#{sock := S} = P, Deadline) ->
    ok = inet:setopts(S, [{packet, raw}]),
    case gen_tcp:recv(S, 0, max(0, Deadline - erlang:monotonic_time(millisecond))) of
        {ok, _} -> drain_until_closed_(P, Deadline);
        {error, closed} -> closed;
        {error, econnreset} -> closed;
        {error, Other} -> Other
    end.

recv_closed(S, Timeout) ->
    case gen_tcp:recv(S, 0, Timeout) of
        {ok, _} -> recv_closed(S, Timeout);
        {error, econnreset} -> closed;
        {error, Why} -> Why
    end.

%% Frames as a BEAM node sends them (payloads after the length), for the
%% hostile peer named ?HOSTILE, to the node's servers.
frames(Kv) ->
    Me = hostile_peer:pid(?HOSTILE, 1),
    Ref = make_ref(),
    Alias = [alias | make_ref()],
    Call = fun(To, Req) -> frame({6, Me, '', To}, {'$gen_call', {Me, make_ref()}, Req}) end,
    [Call(kv, {put, {key, 1}, #{a => [1.5, <<"b">>, {c}]}}), Call(kv, {get, {key, 1}}),
     Call(kv, keys), Call(kv, size), Call(kv, {fetch, {key, 1}}), Call(kv, {delete, nope}),
     frame({6, Me, '', kv}, {'$gen_call', {Me, Alias}, {get, {key, 1}}}),
     frame({6, Me, '', kv}, {'$gen_cast', {put, cast, [x | y]}}),
     frame({2, '', Kv}, {'$gen_call', {Me, Ref}, size}),
     frame({22, Me, Kv}, {'$gen_cast', {put, sender, 1}}),
     frame({16, Me, '', kv, token}, {'$gen_cast', {delete, cast}}),
     Call(counter, {wait_for, 3}), frame({6, Me, '', counter}, {'$gen_cast', {add, 2}}),
     Call(counter, get), Call(gen_cnode, {start, counter, []}),
     Call(gen_cnode, {start_link, kv, #{preload => #{p => 1}}, [{name, preloaded}]}),
     Call(net_kernel, {is_auth, ?HOSTILE}),
     ctrl_frame({19, Me, kv, Ref}), ctrl_frame({20, Me, kv, Ref}),
     ctrl_frame({19, Me, Kv, make_ref()}), ctrl_frame({19, Me, nobody, make_ref()}),
     ctrl_frame({1, Me, Kv}), ctrl_frame({35, 12, Me, Kv}), ctrl_frame({36, 12, Me, Kv}),
     ctrl_frame({4, Me, Kv}), ctrl_frame({8, Me, Kv, normal}), ctrl_frame({3, Me, Kv, normal}),
     frame({6, Me, '', Kv}, {system, {Me, Ref}, get_state}),
     frame({6, Me, '', kv}, {system, {Me, Ref}, get_status}),
     frame({6, Me, '', counter}, {system, {Me, Ref}, {change_code, x, y, z}}),
     frame({6, Me, '', kv}, {'$gen_call', {Me, Ref}, {get, deep(3000)}}),
     frame({2, '', Kv}, {plain, message, <<1, 2, 3>>}),
     frame({33, Me, Alias}, {reply, to, nobody}),
     <<>>].

frame(Ctrl, Msg) -> <<112, (term_to_binary(Ctrl))/binary, (term_to_binary(Msg))/binary>>.
ctrl_frame(Ctrl) -> <<112, (term_to_binary(Ctrl))/binary>>.
enc(T) -> <<131, B/binary>> = term_to_binary(T), B.

deep(0) -> leaf;
deep(N) -> [deep(N - 1)].

%% Where to cut a frame of Size bytes: everywhere in the first 300 bytes,
%% then at 50 random places.
cuts(Size) when Size =< 1 -> [];
cuts(Size) when Size =< 300 -> lists:seq(1, Size - 1);
cuts(Size) -> lists:seq(1, 300) ++ [300 + rand:uniform(Size - 301) || _ <- lists:seq(1, 50)].

%% 1 to 4 random edits of a frame.
mutate(F) ->
    lists:foldl(fun(_, B) -> edit(rand:uniform(5), B) end, F, lists:seq(1, rand:uniform(4))).

edit(_, <<>>) -> <<(rand:uniform(256) - 1)>>;
edit(1, B) -> %% flip a byte
    I = rand:uniform(byte_size(B)) - 1,
    <<H:I/binary, X, T/binary>> = B,
    <<H/binary, (X bxor (1 bsl (rand:uniform(8) - 1))), T/binary>>;
edit(2, B) -> %% drop a byte
    I = rand:uniform(byte_size(B)) - 1,
    <<H:I/binary, _, T/binary>> = B,
    <<H/binary, T/binary>>;
edit(3, B) -> %% insert a byte
    I = rand:uniform(byte_size(B) + 1) - 1,
    <<H:I/binary, T/binary>> = B,
    <<H/binary, (rand:uniform(256) - 1), T/binary>>;
edit(4, B) -> %% a byte to one of the values that matter
    I = rand:uniform(byte_size(B)) - 1,
    <<H:I/binary, _, T/binary>> = B,
    V = lists:nth(rand:uniform(6), [0, 1, 127, 128, 255, 131]),
    <<H/binary, V, T/binary>>;
edit(5, B) -> %% repeat a chunk
    I = rand:uniform(byte_size(B)) - 1,
    L = rand:uniform(byte_size(B) - I),
    <<H:I/binary, C:L/binary, T/binary>> = B,
    <<H/binary, C/binary, C/binary, T/binary>>.

%% The pid registered as Name on a node, found with a monitor (no rpc on a
%% C node): undefined when nothing is registered.
whereis_remote({Name, Node}) ->
    case catch sys:get_status({Name, Node}, 5000) of
        {status, Pid, _, _} -> Pid;
        _ -> undefined
    end.

%% The creation of a NEW_PID_EXT: its last four bytes.
creation_of(Pid) ->
    B = term_to_binary(Pid),
    <<_:(byte_size(B) - 4)/binary, Creation:32>> = B,
    Creation.

fd_count(OsPid) ->
    {ok, Fds} = file:list_dir("/proc/" ++ integer_to_list(OsPid) ++ "/fd"),
    length(Fds).

rss_kb(OsPid) ->
    {ok, Status} = file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/status"),
    [Line] = [L || L <- binary:split(Status, <<"\n">>, [global]), binary:match(L, <<"VmRSS:">>) =/= nomatch],
    [_, Kb | _] = string:lexemes(binary_to_list(Line), " \t"),
    list_to_integer(Kb).

%% The node asks each new peer's rex for its OTP release, from its probe
%% process; a peer learns the probe's pid from its own question. A hostile
%% peer answers in every other peer's name (every serial below its own,
%% with its own tag's shape and a guessed secret): the CT node's release,
%% as the node knows it, does not change, and the forger's own true answer
%% is taken.
forged_release_of_another_peer(Config) ->
    Node = ?config(cnode, Config),
    pong = net_adm:ping(Node),
    Release = list_to_integer(erlang:system_info(otp_release)),
    ReleaseOf = fun(Of) ->
                        #{connections := Cs} = gen_server:call({gen_cnode, Node}, stats),
                        [R || #{node := N, otp_release := R} <- Cs, N =:= Of]
                end,
    gen_cnode_test_env:wait_until(fun() -> ReleaseOf(node()) =:= [Release] end, 5000),
    {ok, P} = hostile_peer:connect(Node, ?HOSTILE, erlang:get_cookie()),
    {Probe, Tag} = rex_question(P),
    Serial = case Tag of {S0, _Secret} -> S0; S0 when is_integer(S0) -> S0 end,
    Forged = case Release of 25 -> "27"; _ -> "25" end,
    [ok = hostile_peer:send(P, {2, '', Probe}, {T, Forged})
     || S <- lists:seq(1, Serial), T <- [S, {S, 0}, {S, 1}, {S, Serial}]],
    ok = hostile_peer:send(P, {2, '', Probe}, {Tag, "26"}),
    %% A call on the same connection: what was sent before it was handled.
    {ok, yes} = hostile_peer:call(P, net_kernel, {is_auth, ?HOSTILE}, 5000),
    gen_cnode_test_env:wait_until(fun() -> ReleaseOf(?HOSTILE) =:= [26] end, 5000),
    ?assertEqual([Release], ReleaseOf(node())),
    hostile_peer:close(P),
    ok = served(Node).

%% What a peer can send the pg scope as plain messages, and pg itself
%% would not take from it:
%%   - a 'DOWN' for a member, with the member's pid (every peer learns it
%%     from the scope's sync) and references made up from one the peer saw
%%     (the monitor the scope sets on it): the member stays in its group;
%%   - {nodeup, Node} for nodes that are not connected: ignored, logged once,
%%     none of them dialed;
%%   - discovers from many pids of its own node: it is kept as at most a few
%%     scopes (it cannot fill the scope's table of peers);
%%   - discovers and syncs naming live pids of another node (this CT node):
%%     ignored, so no peer can take another node's places (pg sends them
%%     with its own pid only);
%%   - a discover relayed through a server of the C node (a stored value
%%     as the reply to a call whose From names the scope): ignored too.
forged_messages_to_the_pg_scope(Config) ->
    Node = ?config(cnode, Config),
    {ok, A} = gen_server:call({gen_cnode, Node}, {start, kv, [], [{pg, workers}]}, 10000),
    ?assertEqual([A], gen_server:call({pg, Node}, {get_local_members, workers})),
    {ok, P} = hostile_peer:connect(Node, ?HOSTILE, erlang:get_cookie()),
    Me = maps:get(pid, P),
    ok = hostile_peer:send(P, {6, Me, '', pg}, {discover, Me}),
    {Scope, Ref} = scope_monitor(P, Me),
    %% The reference's three words, and the ones next to them (the monitor
    %% on A was set before this one).
    %% (minor_version 2: atoms as the node writes them, so that the bytes of
    %% a right guess are the very bytes of the node's reference)
    Utf8 = [{minor_version, 2}],
    RefBin = term_to_binary(Ref, Utf8),
    HeadLen = byte_size(RefBin) - 12,
    <<Head:HeadLen/binary, W1:32, W2:32, W3:32>> = RefBin,
    Guesses = [binary_to_term(<<Head/binary, X:32, Y:32, Z:32>>)
               || X <- lists:seq(max(0, W1 - 64), W1 + 2), Y <- [W2, W2 - 1], Z <- [W3, W3 - 1, W3 + 1]],
    [ok = hostile_peer:send_payload(P, [112, term_to_binary({2, '', Scope}, Utf8),
                                        term_to_binary({'DOWN', G, process, A, killed}, Utf8)])
     || G <- Guesses],
    %% nodeups for nodes that are not connected (from a peer: ignored whatever they name)
    Ghosts = [list_to_atom("ghost" ++ integer_to_list(I) ++ "@127.0.0.1") || I <- lists:seq(1, 50)],
    [ok = hostile_peer:send(P, {6, Me, '', pg}, {nodeup, G}) || G <- Ghosts],
    %% discovers from 50 pids of the hostile node
    [ok = hostile_peer:send(P, {6, Me, '', pg}, {discover, hostile_peer:pid(?HOSTILE, I)})
     || I <- lists:seq(2, 51)],
    %% discovers and syncs in the name of live processes of this node (ones
    %% that ignore what they get: the node would send them syncs, as it
    %% would send any process a peer names, such as application_controller)
    Theirs = [spawn_link(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, 8)],
    [ok = hostile_peer:send(P, {6, Me, '', pg}, M)
     || T <- Theirs, M <- [{discover, T}, {'$gen_cast', {sync, T, []}}]],
    %% A replies {discover, A} to the scope: a message from the C node itself
    ok = gen_server:call(A, {put, relay, A}),
    ok = hostile_peer:send(P, {2, '', A}, {'$gen_call', {Scope, discover}, {get, relay}}),
    %% A call on the same connection: everything before it was handled.
    ?assertEqual({ok, [A]}, hostile_peer:call(P, pg, {get_local_members, workers}, 5000)),
    ?assertEqual([A], gen_server:call({pg, Node}, {get_local_members, workers})),
    #{peers := Peers} = sys:get_state({pg, Node}),
    OnHostile = [X || X <- Peers, node(X) =:= ?HOSTILE],
    ct:log("peers: ~p", [Peers]),
    ?assert(length(OnHostile) =< 4),
    ?assert(lists:member(Me, OnHostile)),
    ?assertEqual([], [X || X <- Peers, lists:member(X, Theirs) orelse X =:= A]),
    Ghostly = fun() ->
                      [L || L <- durable_harness:log_lines(?config(log, Config)),
                            binary:match(L, <<"ghost">>) =/= nomatch]
              end,
    %% (the log line travels through the owner: wait for it)
    ok = gen_cnode_test_env:wait_until(fun() -> Ghostly() =/= [] end, 5000),
    ct:log("lines about ghosts: ~p", [Ghostly()]),
    ?assertMatch([_], Ghostly()),
    %% the forged DOWNs, matching no monitor of the scope's: said once
    Downs = fun() ->
                    [L || L <- durable_harness:log_lines(?config(log, Config)),
                          binary:match(L, <<"matches none of its monitors">>) =/= nomatch]
            end,
    ok = gen_cnode_test_env:wait_until(fun() -> Downs() =/= [] end, 5000),
    ?assertMatch([_], Downs()),
    [T ! stop || T <- Theirs],
    hostile_peer:close(P),
    %% A is still a member, as every BEAM node sees it
    ok = gen_cnode_test_env:wait_until(
           fun() -> gen_server:call({pg, Node}, {get_local_members, workers}) =:= [A] end, 2000),
    ok = gen_server:stop(A).

%% A {wait_for, N} call to the counter is held until the count gets there
%% or its caller's node goes, and a peer chooses the call's tag: 15 calls
%% with tags of 4 MiB each, for counts that never come, nearly fill the 64
%% MiB the counter holds for waiters; the next gets {error,
%% too_many_waiters} at once. A waiter that can be answered still is.
waiters_a_peer_piles_up_are_bounded(Config) ->
    Node = ?config(cnode, Config),
    {ok, P} = hostile_peer:connect(Node, ?HOSTILE, erlang:get_cookie()),
    Me = maps:get(pid, P),
    Never = 1 bsl 62,
    [ok = hostile_peer:send(P, {6, Me, '', counter},
                            {'$gen_call', {Me, {I, binary:copy(<<I>>, 4 bsl 20)}}, {wait_for, Never}})
     || I <- lists:seq(1, 15)],
    ?assertEqual({ok, {error, too_many_waiters}},
                 hostile_peer:call(P, counter, {wait_for, Never}, {16, binary:copy(<<16>>, 4 bsl 20)}, 10000)),
    ?assertMatch(#{waiting := 15}, durable_harness:status({counter, Node})),
    Count = gen_server:call({counter, Node}, get),
    Pid = spawn_link(fun() -> exit({got, gen_server:call({counter, Node}, {wait_for, Count + 1})}) end),
    process_flag(trap_exit, true),
    ok = gen_cnode_test_env:wait_until(
           fun() -> maps:get(waiting, durable_harness:status({counter, Node})) =:= 16 end, 5000),
    ok = gen_server:cast({counter, Node}, incr),
    receive {'EXIT', Pid, Why} -> ?assertEqual({got, {ok, Count + 1}}, Why)
    after 5000 -> ct:fail(no_answer_to_a_small_waiter)
    end,
    process_flag(trap_exit, false),
    hostile_peer:close(P).

%% A peer starting servers in a loop gets {error, system_limit} at
%% --max-processes, logged once until one stops; what runs is served, and a
%% server stopped makes room for one more. A name of 255 characters (510
%% bytes of UTF-8) is registered as register/2 would.
servers_a_peer_starts_are_bounded(Config) ->
    Node = ?config(cnode, Config),
    Start = fun() -> gen_server:call({gen_cnode, Node}, {start, kv, []}) end,
    Started = start_until_refused(Start, []),
    ct:log("~b servers started before the first refusal", [length(Started)]),
    ?assert(length(Started) > 20 andalso length(Started) < 40),
    [?assertEqual({error, system_limit}, Start()) || _ <- lists:seq(1, 50)],
    Full = fun() -> [L || L <- durable_harness:log_lines(?config(log, Config)),
                          string:find(L, "as many as --max-processes allows") =/= nomatch] end,
    %% (The log comes through the owner as the node writes it.)
    ok = gen_cnode_test_env:wait_until(fun() -> length(Full()) >= 1 end, 5000),
    [ok = gen_server:cast(P, {put, k, P}) || P <- Started],
    [?assertEqual(P, gen_server:call(P, {get, k})) || P <- Started],
    ok = gen_server:stop(hd(Started)),
    Name = list_to_atom(lists:duplicate(255, 233)), %% é
    {ok, Named} = gen_server:call({gen_cnode, Node}, {start, kv, [], [{name, Name}]}),
    ok = gen_server:cast({Name, Node}, {put, k, named}),
    ?assertEqual(named, gen_server:call({Name, Node}, {get, k})),
    ?assertEqual({error, system_limit}, Start()),
    ok = gen_server:stop(Named),
    [ok = gen_server:stop(P) || P <- tl(Started)],
    %% Logged once until one stopped, then once again: two lines in all.
    ok = gen_cnode_test_env:wait_until(fun() -> length(Full()) >= 2 end, 5000),
    timer:sleep(200),
    ?assertEqual(2, length(Full())).

%% A monitor is keyed by its reference, made by the node that monitors. A
%% peer that sends MONITOR_P with another node's reference (one it could
%% only have predicted, to take that node's monitor first) is refused,
%% logged, and carries on; with a reference of its own, it gets its DOWN.
monitors_with_another_nodes_reference(Config) ->
    Node = ?config(cnode, Config),
    {ok, S} = gen_server:call({gen_cnode, Node}, {start, kv, []}),
    {ok, P} = hostile_peer:connect(Node, ?HOSTILE, erlang:get_cookie()),
    Me = maps:get(pid, P),
    Name = atom_to_binary(?HOSTILE, utf8),
    Own = binary_to_term(<<131, 90, 3:16, 119, (byte_size(Name)), Name/binary, 16#1234567:32, 7:32, 8:32, 9:32>>),
    Theirs = make_ref(), %% the CT node's
    ok = hostile_peer:send_ctrl(P, {19, Me, S, Theirs}),
    ok = hostile_peer:send_ctrl(P, {19, Me, S, Own}),
    ok = gen_server:stop(S, bye, 5000),
    Downs = downs(P, []),
    ?assertEqual([{21, S, Me, Own, bye}], Downs),
    Refused = fun() -> [L || L <- durable_harness:log_lines(?config(log, Config)),
                             string:find(L, "reference of another node") =/= nomatch] end,
    ok = gen_cnode_test_env:wait_until(fun() -> Refused() =/= [] end, 5000),
    ?assertEqual(1, length(Refused())),
    hostile_peer:close(P).

%% A call whose From is a process of the C node that has gone: its reply is
%% dropped, as the BEAM drops a send to a dead local pid, without the node
%% trying to reach itself (which it logged as an undeliverable message).
replies_to_gone_processes_of_the_node(Config) ->
    Node = ?config(cnode, Config),
    {ok, S} = gen_server:call({gen_cnode, Node}, {start, kv, []}),
    ok = gen_server:stop(S),
    {ok, P} = hostile_peer:connect(Node, ?HOSTILE, erlang:get_cookie()),
    Me = maps:get(pid, P),
    [ok = hostile_peer:send(P, {6, Me, '', kv}, {'$gen_call', {S, {tag, I}}, {get, k}}) || I <- lists:seq(1, 20)],
    ?assertMatch({ok, _}, hostile_peer:call(P, kv, {get, k}, tag, 5000)),
    hostile_peer:close(P),
    %% The log comes through the owner as it is written: its line about the
    %% closed connection comes after anything said of the replies.
    Lines = fun(Text) -> [L || L <- durable_harness:log_lines(?config(log, Config)),
                               string:find(L, Text) =/= nomatch] end,
    ok = gen_cnode_test_env:wait_until(fun() -> Lines("connection to hostile@127.0.0.1 closed") =/= [] end, 5000),
    ?assertEqual([], Lines("is this node")).

%% The MONITOR_P_EXITs a peer gets within half a second.
downs(P, Acc) ->
    case hostile_peer:recv(P, 500) of
        {ok, Down, _} when element(1, Down) =:= 21 -> downs(P, [Down | Acc]);
        {ok, _, _} -> downs(P, Acc);
        _ -> lists:reverse(Acc)
    end.

start_until_refused(Start, Acc) when length(Acc) < 100 ->
    case Start() of
        {ok, Pid} -> start_until_refused(Start, [Pid | Acc]);
        {error, system_limit} -> lists:reverse(Acc)
    end.

%% The monitor the scope sets on pid Me (MONITOR_P): {ScopePid, Ref}.
scope_monitor(P, Me) ->
    case hostile_peer:recv(P, 5000) of
        {ok, {19, Scope, Me, Ref}, _} -> {Scope, Ref};
        {ok, _, _} -> scope_monitor(P, Me);
        Other -> ct:fail({no_monitor_from_the_scope, Other})
    end.

%% The node's question to this peer's rex: {ProbePid, Tag}.
rex_question(P) ->
    case hostile_peer:recv(P, 5000) of
        {ok, {6, Probe, _, rex}, {'$gen_call', {Probe, Tag}, {call, erlang, system_info, [otp_release], user}}} ->
            {Probe, Tag};
        {ok, _, _} ->
            rex_question(P);
        Other ->
            ct:fail({no_question_to_rex, Other})
    end.


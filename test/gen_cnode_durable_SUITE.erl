%% gen_cnode_durable_SUITE: the durable KeyValue store (--data-dir), for real.
%%
%% Every case starts real C nodes with gen_cnode:start/1 on a folder of its
%% own under priv_dir, talks to them over real distribution, kills them with
%% SIGKILL, stops them with SIGTERM, cuts and corrupts their files, and starts
%% them again on the same (or a copied) folder. Nothing is mocked.
%%
%% What is checked:
%%   - an acknowledged write (an ok received) survives SIGKILL, under every
%%     --fsync policy, and nothing that was never written appears;
%%   - a log cut anywhere recovers exactly the records that are whole, with a
%%     warning, and the cut-off log takes new records;
%%   - a corrupt record that is not the torn tail makes the node refuse to
%%     start (exit 1, file and offset on stderr), touching no file;
%%   - compaction under load (asked for, or started by itself past
%%     --compact-min, or cut short by SIGKILL) loses nothing and drops the
%%     logs its snapshot covers;
%%   - without --data-dir nothing survives a restart;
%%   - sync and put_sync answer ok under every policy;
%%   - on a full disk (a file size limit set on the running node) no call is
%%     answered ok before its change is written, and nothing is lost.
%%
%% The file layout the cases read (record boundaries, the snapshot's
%% generation) is the one c_src/aof.h and c_src/snapshot.h document.
%% Randomness is seeded (durable_harness: $GEN_CNODE_SEED, printed).
-module(gen_cnode_durable_SUITE).

-define(config(Key, Config), proplists:get_value(Key, Config)).
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

-export([kill9_under_load_fsync_always/1,
         kill9_under_load_fsync_everysec/1,
         kill9_under_load_fsync_no/1,
         torn_tail_is_cut_at_any_point/1,
         corrupt_record_refuses_to_start/1,
         corrupt_length_is_not_taken_for_a_torn_tail/1,
         compaction_under_load_loses_nothing/1,
         compaction_starts_by_itself_past_compact_min/1,
         kill9_during_compaction_loses_nothing/1,
         memory_only_restart_is_empty/1,
         a_kv_started_again_under_the_store_s_name_is_durable/1,
         a_kv_killed_and_started_in_one_batch_reopens_the_store/1,
         sync_and_put_sync_reply_ok/1,
         full_disk_fails_calls_until_there_is_room/1]).

-define(CALL, 10000).
-define(MAGIC, 13).  %% a log's first bytes (aof.h, version 2)
-define(HEADER, 12). %% a record's header: length, payload checksum, header checksum
-define(H, durable_harness).

suite() ->
    [{timetrap, {seconds, 90}}].

all() ->
    [kill9_under_load_fsync_always,
     kill9_under_load_fsync_everysec,
     kill9_under_load_fsync_no,
     torn_tail_is_cut_at_any_point,
     corrupt_record_refuses_to_start,
     corrupt_length_is_not_taken_for_a_torn_tail,
     compaction_under_load_loses_nothing,
     compaction_starts_by_itself_past_compact_min,
     kill9_during_compaction_loses_nothing,
     memory_only_restart_is_empty,
     a_kv_started_again_under_the_store_s_name_is_durable,
     a_kv_killed_and_started_in_one_batch_reopens_the_store,
     sync_and_put_sync_reply_ok,
     full_disk_fails_calls_until_there_is_room].

init_per_suite(Config) ->
    ?H:init_suite(?MODULE, Config).

end_per_suite(Config) ->
    ?H:end_suite(Config).

init_per_testcase(Case, Config) ->
    Dir = filename:join(?config(priv_dir, Config), atom_to_list(Case)),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    [{case_dir, Dir}, {t0, erlang:monotonic_time(millisecond)} | Config].

end_per_testcase(Case, Config) ->
    gen_cnode_test_env:reap(),
    ct:log("~p took ~b ms", [Case, erlang:monotonic_time(millisecond) - ?config(t0, Config)]),
    ok.

%%% (a) SIGKILL under write load

kill9_under_load_fsync_always(Config) -> kill9_under_load(Config, "always").
kill9_under_load_fsync_everysec(Config) -> kill9_under_load(Config, "everysec").
kill9_under_load_fsync_no(Config) -> kill9_under_load(Config, "no").

%% Writers doing put_sync and call puts (new keys, a counter overwritten,
%% puts followed by deletes) until the node dies under them; the node is
%% SIGKILLed at a different moment in each of three rounds and started again
%% on the same folder. Each writer knows how many of its requests were
%% answered ok (N); the recovered keys of that writer must be exactly its
%% first N requests applied, or its first N + 1 (the one in flight when the
%% node died may or may not have made it). Earlier rounds' data must come back
%% exactly as it was recovered before; nothing else may appear.
kill9_under_load(Config, Policy) ->
    ?H:seed_case(Config, {kill9, Policy}),
    Dir = filename:join(?config(case_dir, Config), "data"),
    Name = list_to_atom("kvk9" ++ Policy),
    Args = ["--data-dir", Dir, "--fsync", Policy],
    Delays = [60 + rand:uniform(100), 250 + rand:uniform(250), 600 + rand:uniform(400)],
    Final = lists:foldl(
              fun({Round, Delay}, Baseline) ->
                      kill9_round(Config, Name, Args, Round, Delay, Baseline)
              end, #{}, lists:enumerate(Delays)),
    %% A last start: everything is still there, and a clean stop exits 0.
    {Owner, Server, Log} = ?H:start_cnode(Config, Name, Args),
    ?H:verify_exact(Server, Final),
    ?H:stop_cnode(Owner, Log).

kill9_round(Config, Name, Args, Round, Delay, Baseline) ->
    {Owner, Server, _Log} = ?H:start_cnode(Config, Name, Args),
    ?H:verify_exact(Server, Baseline),
    Writers = [{1, new_sync}, {2, new_sync}, {3, new_call}, {4, new_call}, {5, counter},
               {6, put_delete}],
    Procs = [{Id, Kind, spawn_monitor(fun() -> writer(Server, Round, Id, Kind, 1) end)}
             || {Id, Kind} <- Writers],
    [gen_cnode_test_env:track({pid, Pid}) || {_, _, {Pid, _}} <- Procs],
    timer:sleep(Delay),
    ?assertEqual({exit_status, 137}, ?H:kill9(Owner)),
    Acked = [receive
                 {'DOWN', Ref, process, Pid, {writer_done, Id, N, Why}} -> {Id, Kind, N, Why};
                 {'DOWN', Ref, process, Pid, Other} -> ct:fail({writer_crashed, Id, Other})
             after 15000 -> ct:fail({writer_still_running, Id})
             end || {Id, Kind, {Pid, Ref}} <- Procs],
    ct:log("round ~b: killed after ~b ms; acknowledged per writer: ~p",
           [Round, Delay, [{Id, Kind, N} || {Id, Kind, N, _} <- Acked]]),
    [?assertMatch({_, _, _, {'EXIT', _}}, A) || A <- Acked],
    ?assert(lists:sum([N || {_, _, N, _} <- Acked]) > 0),
    %% Start again on the same folder and compare: the earlier rounds' data
    %% exactly; each writer's keys (all it acknowledged, and the one in
    %% flight) against its model; and the size, so that nothing else is there.
    {Owner2, Server2, Log2} = ?H:start_cnode(Config, Name, Args),
    Old = ?H:fetch_many(Server2, maps:keys(Baseline)),
    ?assertEqual({earlier_rounds, maps:size(Baseline), []},
                 {earlier_rounds, maps:size(Old), diff(Baseline, Old)}),
    Checked = [begin
                   M0 = model(Round, Id, Kind, N),
                   M1 = model(Round, Id, Kind, N + 1),
                   Keys = lists:usort(maps:keys(M0) ++ maps:keys(M1) ++ [key_of(Round, Id, Kind, N + 1)]),
                   Mine = ?H:fetch_many(Server2, Keys),
                   {Id, Kind, N, Mine, Mine =:= M0 orelse Mine =:= M1,
                    {missing_or_changed, diff(M0, Mine), unexpected, diff(Mine, M1)}}
               end || {Id, Kind, N, _} <- Acked],
    ?assertEqual([], [{writer, Id, Kind, acked, N, Diff} || {Id, Kind, N, _, false, Diff} <- Checked]),
    State = lists:foldl(fun({_, _, _, Mine, _, _}, Acc) -> maps:merge(Acc, Mine) end,
                        Baseline, Checked),
    ?assertEqual({size, maps:size(State)}, {size, gen_server:call(Server2, size, ?CALL)}),
    ?H:stop_cnode(Owner2, Log2),
    State.

%% Issues the writer's requests in order until one is not answered ok; exits
%% with the number answered ok.
writer(Server, Round, Id, Kind, I) ->
    Req = op(Round, Id, Kind, I),
    case catch gen_server:call(Server, Req, ?CALL) of
        ok -> writer(Server, Round, Id, Kind, I + 1);
        Other -> exit({writer_done, Id, I - 1, Other})
    end.

op(R, Id, new_sync, I) -> {put_sync, {r, R, Id, I}, value(I)};
op(R, Id, new_call, I) -> {put, {r, R, Id, I}, value(I)};
op(R, Id, counter, I) when I rem 2 =:= 1 -> {put_sync, {r, R, Id, counter}, I};
op(R, Id, counter, I) -> {put, {r, R, Id, counter}, I};
op(R, Id, put_delete, I) when I rem 4 =:= 1 -> {put_sync, {r, R, Id, (I + 1) div 2}, value(I)};
op(R, Id, put_delete, I) when I rem 2 =:= 1 -> {put, {r, R, Id, (I + 1) div 2}, value(I)};
op(R, Id, put_delete, I) -> {delete, {r, R, Id, I div 2}}.

value(I) ->
    {I, binary:copy(<<(I rem 256)>>, (I * 37) rem 300), [I | I * I]}.

key_of(R, Id, Kind, I) ->
    element(2, op(R, Id, Kind, I)).

%% The writer's first N requests applied to an empty map.
model(R, Id, Kind, N) ->
    lists:foldl(fun(I, M) ->
                        case op(R, Id, Kind, I) of
                            {delete, K} -> maps:remove(K, M);
                            {_, K, V} -> M#{K => V}
                        end
                end, #{}, lists:seq(1, N)).

%% What A has that B lacks or holds differently (at most 5 of them).
diff(A, B) ->
    lists:sublist([{K, V, maps:get(K, B, '$absent')}
                   || {K, V} <- lists:sort(maps:to_list(A)), maps:get(K, B, '$absent') =/= V], 5).

%%% (b) a log cut anywhere

%% A known sequence of writes, one record each; the node stopped; then for
%% random cut points (and a few chosen ones: record boundaries, inside a
%% header, inside a payload), a copy of the folder whose log is cut there.
%% The node started on the copy must hold exactly the first M writes, M the
%% number of records wholly before the cut (and M falls as the cut falls);
%% a cut that is not on a boundary is reported on stderr as a torn tail and
%% cut off; and the recovered log takes new writes that survive a restart.
torn_tail_is_cut_at_any_point(Config) ->
    ?H:seed_case(Config, torn_tail),
    CaseDir = ?config(case_dir, Config),
    Dir = filename:join(CaseDir, "data"),
    Args = fun(D) -> ["--data-dir", D, "--fsync", "no"] end,
    N = 150,
    Writes = [{{seq, I}, torn_value(I)} || I <- lists:seq(1, N)],
    {Owner, Server, Log} = ?H:start_cnode(Config, kvtorn, Args(Dir)),
    [ok = gen_server:call(Server, {put, K, V}, ?CALL) || {K, V} <- Writes],
    ?H:stop_cnode(Owner, Log),
    ?assertEqual({[1], false}, {?H:log_files(Dir, kv), lists:member("kv.snap", ?H:list_dir(Dir))}),
    LogPath = filename:join(Dir, "kv.log.1"),
    {ok, Bin} = file:read_file(LogPath),
    Size = byte_size(Bin),
    Ends = record_ends(Bin),
    ?assertEqual({N, Size}, {length(Ends), lists:last(Ends)}),
    B = lists:nth(N div 2, Ends),
    Chosen = [Size - 1, B, B + 3, B + ?HEADER + 2, lists:nth(3, Ends) + 1, ?MAGIC + 1, ?MAGIC, 5, 0],
    Random = [rand:uniform(Size) - 1 || _ <- lists:seq(1, 10)],
    Cuts = lists:reverse(lists:usort(Chosen ++ Random)),
    ct:log("log of ~b bytes, ~b records; cuts ~w", [Size, N, Cuts]),
    Results =
        [begin
             Copy = filename:join(CaseDir, "cut" ++ integer_to_list(Cut)),
             ok = ?H:copy_dir(Dir, Copy),
             CopyLog = filename:join(Copy, "kv.log.1"),
             {ok, F} = file:open(CopyLog, [read, write, raw, binary]),
             {ok, _} = file:position(F, Cut),
             ok = file:truncate(F),
             ok = file:close(F),
             {O, S, L} = ?H:start_cnode(Config, kvtorn, Args(Copy)),
             State = ?H:state(S),
             Whole = length([E || E <- Ends, E =< Cut]),
             %% a cut inside the magic leaves an empty log, begun again
             Boundary = lists:max([?MAGIC | [E || E <- Ends, E =< Cut]]),
             M = prefix_length(State, Writes),
             Warned = torn_warnings(L, Copy),
             ct:log("cut at ~b: ~p of ~b writes back (~b whole records); warning ~p",
                    [Cut, M, N, Whole, Warned]),
             ?assertEqual({cut, Cut, prefix, Whole}, {cut, Cut, prefix, M}),
             ?assertEqual({cut, Cut, warned, Cut > Boundary},
                          {cut, Cut, warned, Warned =/= []}),
             ?assertEqual({cut, Cut, size_after_recovery, Boundary},
                          {cut, Cut, size_after_recovery, filelib:file_size(CopyLog)}),
             %% The recovered log takes new records, which come back.
             ok = gen_server:call(S, {put_sync, {after_cut, Cut}, Cut}, ?CALL),
             ?H:stop_cnode(O, L),
             {O2, S2, L2} = ?H:start_cnode(Config, kvtorn, Args(Copy)),
             Expect = (maps:from_list(lists:sublist(Writes, Whole)))#{{after_cut, Cut} => Cut},
             ?assert(?H:state(S2) =:= Expect),
             ?assertEqual([], torn_warnings(L2, Copy)),
             ?H:stop_cnode(O2, L2),
             ok = ?H:rm_rf(Copy),
             {Cut, M}
         end || Cut <- Cuts],
    %% Cuts are in decreasing order: M never grows.
    Ms = [M || {_, M} <- Results],
    ?assertEqual(lists:reverse(lists:sort(Ms)), Ms).

%% The lines of Log that name Dir's kv.log.1 and speak of a torn record (the
%% folder's own path left out, so that a case name cannot match).
torn_warnings(Log, Dir) ->
    Path = list_to_binary(filename:join(Dir, "kv.log.1")),
    [Line || Line <- ?H:log_lines(Log),
             binary:match(Line, Path) =/= nomatch,
             binary:match(binary:replace(Line, Path, <<>>, [global]), <<"torn">>) =/= nomatch].

torn_value(I) ->
    case I rem 5 of
        0 -> binary:copy(<<I:16>>, I);
        1 -> {I, "string", 1.5 * I};
        2 -> lists:seq(1, I rem 40);
        3 -> #{I => [I], <<"k">> => {I}};
        4 -> -(1 bsl (I + 64))
    end.

%% M if the state holds exactly the first M writes (the keys are distinct);
%% {not_a_prefix, State} otherwise.
prefix_length(State, Writes) ->
    M = length(lists:takewhile(fun({K, V}) -> maps:find(K, State) =:= {ok, V} end, Writes)),
    case maps:from_list(lists:sublist(Writes, M)) =:= State of
        true -> M;
        false -> {not_a_prefix, maps:size(State), M}
    end.

%% The end offsets of the records of a log (aof.h, version 2: a magic, then
%% [u32 len][u32 crc][u32 header crc][payload]).
record_ends(<<Magic:?MAGIC/binary, _/binary>> = Bin) ->
    <<0, 0, 0, 5, "gcnl", 0, "ogv", 2>> = Magic,
    record_ends(Bin, ?MAGIC, []).

record_ends(Bin, At, Acc) when At =:= byte_size(Bin) ->
    lists:reverse(Acc);
record_ends(Bin, At, Acc) ->
    <<_:At/binary, Len:32, _/binary>> = Bin,
    End = At + ?HEADER + Len,
    true = End =< byte_size(Bin),
    record_ends(Bin, End, [End | Acc]).

%%% (c) corruption

%% A byte changed inside a record that is not the last (in its payload, its
%% checksum, the low byte of its length), or inside the snapshot: the node
%% exits 1, says which file and (for a log) which offset, and leaves every
%% file as it was.
corrupt_record_refuses_to_start(Config) ->
    CaseDir = ?config(case_dir, Config),
    Dir = filename:join(CaseDir, "data"),
    {Ends, _} = corrupt_fixture(Config, Dir, []),
    Mid = lists:nth(20, Ends),
    Cases = [{first_record_payload, "kv.log.1", ?MAGIC + ?HEADER + 5 + 3, ?MAGIC},
             {first_record_checksum, "kv.log.1", ?MAGIC + 5, ?MAGIC},
             {first_record_header_checksum, "kv.log.1", ?MAGIC + 9, ?MAGIC},
             {first_record_length_low_byte, "kv.log.1", ?MAGIC + 3, ?MAGIC},
             {middle_record_payload, "kv.log.1", Mid + ?HEADER + 9, Mid},
             {middle_record_key_length, "kv.log.1", Mid + ?HEADER + 4, Mid},
             {the_log_s_magic, "kv.log.1", 3, none}],
    [refuses(Config, CaseDir, Dir, C) || C <- Cases],
    %% The snapshot: compact, then corrupt the snapshot's middle.
    SnapDir = filename:join(CaseDir, "snapdata"),
    corrupt_fixture(Config, SnapDir, [compact]),
    ?assert(lists:member("kv.snap", ?H:list_dir(SnapDir))),
    SnapSize = filelib:file_size(filename:join(SnapDir, "kv.snap")),
    refuses(Config, CaseDir, SnapDir, {snapshot_middle, "kv.snap", SnapSize div 2, none}).

%% The high byte of the first record's length changed: the record now claims
%% to run past the end of the file, as a torn last record would; but it is
%% the first of many, and 49 whole records follow it. The node must not take
%% it for a torn tail (which would cut the whole log off): it refuses to
%% start, as for any other corruption.
corrupt_length_is_not_taken_for_a_torn_tail(Config) ->
    CaseDir = ?config(case_dir, Config),
    Dir = filename:join(CaseDir, "data"),
    corrupt_fixture(Config, Dir, []),
    refuses(Config, CaseDir, Dir, {first_record_length_high_byte, "kv.log.1", ?MAGIC, ?MAGIC}).

%% 50 writes (and a compaction if asked), the node stopped. Returns the
%% record ends of kv.log.1 and the writes.
corrupt_fixture(Config, Dir, Opts) ->
    {Owner, Server, Log} = ?H:start_cnode(Config, kvcorrupt, ["--data-dir", Dir]),
    Writes = [{{c, I}, {I, lists:seq(1, I)}} || I <- lists:seq(1, 50)],
    [ok = gen_server:call(Server, {put, K, V}, ?CALL) || {K, V} <- Writes],
    case lists:member(compact, Opts) of
        true ->
            ok = gen_server:call(Server, compact, ?CALL),
            gen_cnode_test_env:wait_until(
              fun() -> maps:get(compactions, ?H:status(Server)) >= 1 end, 20000),
            ok = gen_server:call(Server, {put, extra, 1}, ?CALL);
        false ->
            ok
    end,
    ?H:stop_cnode(Owner, Log),
    Ends = case lists:member("kv.log.1", ?H:list_dir(Dir)) of
               true -> {ok, Bin} = file:read_file(filename:join(Dir, "kv.log.1")), record_ends(Bin);
               false -> []
           end,
    {Ends, Writes}.

refuses(Config, CaseDir, Dir, {What, File, At, Offset}) ->
    Copy = filename:join(CaseDir, atom_to_list(What)),
    ok = ?H:copy_dir(Dir, Copy),
    Path = filename:join(Copy, File),
    {ok, Bin} = file:read_file(Path),
    <<Before:At/binary, Byte, After/binary>> = Bin,
    ok = file:write_file(Path, <<Before/binary, (Byte bxor 16#40), After/binary>>),
    Files = ?H:read_files(Copy),
    Result = ?H:try_start(Config, kvcorrupt, ["--data-dir", Copy]),
    case Result of
        {ok, Owner, Server, Log} ->
            Got = (catch ?H:state(Server)),
            ?H:stop_cnode(Owner, Log),
            ct:fail({What, started_on_a_corrupt_file, Path, At,
                     {recovered_entries, catch maps:size(Got)}, ?H:log_lines(Log)});
        {error, Reason, Log} ->
            Lines = ?H:log_lines(Log),
            ct:log("~p (byte ~b of ~s): ~p~n~s", [What, At, File, Reason,
                                                  lists:join("\n", Lines)]),
            ?assertMatch({What, {exited, 1, _}}, {What, Reason}),
            Named = [L || L <- Lines, binary:match(L, list_to_binary(Path)) =/= nomatch,
                          Offset =:= none orelse names_offset(L, Offset)],
            ?assertMatch({_, [_ | _]}, {{What, no_line_naming, Path, {offset, Offset}}, Named}),
            ?assertEqual({What, files_untouched, true}, {What, files_untouched, ?H:read_files(Copy) =:= Files})
    end.

%% The line says "offset N" (N a whole word).
names_offset(Line, N) ->
    re:run(Line, "offset " ++ integer_to_list(N) ++ "([^0-9]|$)") =/= nomatch.

%%% (d) compaction

%% 200,000 entries, then compact while a writer keeps writing: the compaction
%% finishes (compactions goes up), the logs it covers are gone, and after a
%% restart every entry (those written during the compaction too) is back.
compaction_under_load_loses_nothing(Config) ->
    Dir = filename:join(?config(case_dir, Config), "data"),
    Args = ["--data-dir", Dir],
    {Owner, Server, Log} = ?H:start_cnode(Config, kvcompact, Args),
    Model0 = load(Server, 200000),
    S0 = ?H:status(Server),
    ct:log("before compaction: ~p, files ~p", [S0, ?H:list_dir(Dir)]),
    ?assertMatch(#{compactions := 0, entries := 200000}, S0),
    ?assertEqual([1], ?H:log_files(Dir, kv)),
    {Writer, WRef} = spawn_monitor(fun() -> during_writer(Server, 1) end),
    gen_cnode_test_env:track({pid, Writer}),
    timer:sleep(50),
    T0 = erlang:monotonic_time(millisecond),
    ?assertEqual(ok, gen_server:call(Server, compact, ?CALL)),
    Again = gen_server:call(Server, compact, ?CALL),
    ct:log("compact again at once: ~p", [Again]),
    ?assert(lists:member(Again, [ok, {error, {compact, already_running}}])),
    gen_cnode_test_env:wait_until(
      fun() -> maps:get(compactions, ?H:status(Server)) >= 1 end, 60000),
    T1 = erlang:monotonic_time(millisecond),
    Writer ! stop,
    During = receive {'DOWN', WRef, process, Writer, {written, W}} -> W;
                     {'DOWN', WRef, process, Writer, Other} -> ct:fail({writer, Other})
             after 15000 -> ct:fail(writer_did_not_stop)
             end,
    S1 = ?H:status(Server),
    ct:log("compaction done in ~b ms; ~b writes during it; status ~p; files ~p",
           [T1 - T0, During, S1, ?H:list_dir(Dir)]),
    ?assert(During > 0),
    ?assertMatch(#{max_compaction_pause_ms := P} when is_number(P), S1),
    %% The logs the snapshot covers are gone; the snapshot covers log 1.
    Gens = ?H:log_files(Dir, kv),
    SnapGen = snapshot_generation(filename:join(Dir, "kv.snap")),
    ?assertEqual({[], SnapGen}, {[G || G <- Gens, G < SnapGen], lists:min(Gens)}),
    ?assert(SnapGen >= 2),
    %% A few more after it.
    [ok = gen_server:call(Server, {put, {after_compaction, I}, I}, ?CALL) || I <- lists:seq(1, 100)],
    ok = gen_server:call(Server, {delete, 7}, ?CALL),
    Model = maps:remove(7, maps:merge(Model0, maps:merge(
                                                during_model(During),
                                                maps:from_list([{{after_compaction, I}, I}
                                                                || I <- lists:seq(1, 100)])))),
    ?H:verify_exact(Server, Model),
    ?H:stop_cnode(Owner, Log),
    {Owner2, Server2, Log2} = ?H:start_cnode(Config, kvcompact, Args),
    S2 = ?H:status(Server2),
    ct:log("after restart: ~p", [S2]),
    ?assertEqual(maps:size(Model), maps:get(entries, S2)),
    ?H:verify_exact(Server2, Model),
    ?assertEqual([], [G || G <- ?H:log_files(Dir, kv), G < SnapGen]),
    ?H:stop_cnode(Owner2, Log2).

%% Loads N entries by cast (a sync after every 20,000 for flow control);
%% returns the model.
load(Server, N) ->
    lists:foreach(
      fun(Chunk) ->
              [ok = gen_server:cast(Server, {put, I, {I, <<I:32>>}}) || I <- Chunk],
              ok = gen_server:call(Server, sync, 60000)
      end, chunks(lists:seq(1, N), 20000)),
    maps:from_list([{I, {I, <<I:32>>}} || I <- lists:seq(1, N)]).

chunks([], _) -> [];
chunks(L, N) when length(L) =< N -> [L];
chunks(L, N) -> {A, B} = lists:split(N, L), [A | chunks(B, N)].

during_writer(Server, I) ->
    receive stop -> exit({written, I - 1})
    after 0 ->
            ok = gen_server:call(Server, {put, {during, I}, {I, I * 2}}, ?CALL),
            case I rem 3 of
                0 -> ok = gen_server:call(Server, {put_sync, {during, I}, {I, I}}, ?CALL);
                _ -> ok
            end,
            during_writer(Server, I + 1)
    end.

during_model(N) ->
    maps:from_list([{{during, I}, case I rem 3 of 0 -> {I, I}; _ -> {I, I * 2} end}
                    || I <- lists:seq(1, N)]).

%% The generation in a snapshot's header (snapshot.h: "GCNSNAP1" [u64 gen]).
snapshot_generation(Path) ->
    {ok, <<"GCNSNAP1", Gen:64, _/binary>>} = file:read_file(Path),
    Gen.

%% Past --compact-min (and the snapshot's size) the logs are compacted
%% without being asked; the store comes back whole.
compaction_starts_by_itself_past_compact_min(Config) ->
    Dir = filename:join(?config(case_dir, Config), "data"),
    Args = ["--data-dir", Dir, "--compact-min", "200000"],
    {Owner, Server, Log} = ?H:start_cnode(Config, kvauto, Args),
    Big = binary:copy(<<"0123456789abcdef">>, 64),
    Writes = [{{k, I rem 50}, {I, Big}} || I <- lists:seq(1, 600)],
    [ok = gen_server:call(Server, {put, K, V}, ?CALL) || {K, V} <- Writes],
    gen_cnode_test_env:wait_until(
      fun() -> maps:get(compactions, ?H:status(Server)) >= 1 end, 30000),
    Status = ?H:status(Server),
    ct:log("status ~p, files ~p", [Status, ?H:list_dir(Dir)]),
    Model = maps:from_list(Writes),
    ?assert(?H:state(Server) =:= Model),
    ?H:stop_cnode(Owner, Log),
    {Owner2, Server2, Log2} = ?H:start_cnode(Config, kvauto, Args),
    ?assert(?H:state(Server2) =:= Model),
    SnapGen = snapshot_generation(filename:join(Dir, "kv.snap")),
    ?assertEqual([], [G || G <- ?H:log_files(Dir, kv), G < SnapGen]),
    ?H:stop_cnode(Owner2, Log2).

%% SIGKILL while the compaction's child is writing the snapshot: whether or
%% not the snapshot made it, the store comes back whole.
kill9_during_compaction_loses_nothing(Config) ->
    Dir = filename:join(?config(case_dir, Config), "data"),
    Args = ["--data-dir", Dir],
    {Owner, Server, _Log} = ?H:start_cnode(Config, kvk9compact, Args),
    Model0 = load(Server, 100000),
    OsPid = gen_cnode:os_pid(Owner),
    ok = gen_server:call(Server, compact, ?CALL),
    Children = ?H:children_of(OsPid),
    [gen_cnode_test_env:track({os_pid, C}) || C <- Children],
    ?assertNotEqual([], Children), %% else the kill below is not during a compaction
    [ok = gen_server:call(Server, {put, {late, I}, I}, ?CALL) || I <- lists:seq(1, 50)],
    ct:log("compaction child(ren) ~p; files ~p", [Children, ?H:list_dir(Dir)]),
    ?assertEqual({exit_status, 137}, ?H:kill9(Owner)),
    gen_cnode_test_env:wait_until(
      fun() -> not lists:any(fun gen_cnode_test_env:os_alive/1, Children) end, 20000),
    ct:log("files after the kill: ~p", [?H:list_dir(Dir)]),
    {Owner2, Server2, Log2} = ?H:start_cnode(Config, kvk9compact, Args),
    Model = maps:merge(Model0, maps:from_list([{{late, I}, I} || I <- lists:seq(1, 50)])),
    ?H:verify_exact(Server2, Model),
    %% And it compacts again, and still comes back whole.
    ok = gen_server:call(Server2, {put, final, 1}, ?CALL),
    Before = maps:get(compactions, ?H:status(Server2)),
    ok = gen_server:call(Server2, compact, ?CALL),
    gen_cnode_test_env:wait_until(
      fun() -> maps:get(compactions, ?H:status(Server2)) > Before end, 30000),
    ?H:stop_cnode(Owner2, Log2),
    {Owner3, Server3, Log3} = ?H:start_cnode(Config, kvk9compact, Args),
    ?H:verify_exact(Server3, Model#{final => 1}),
    ?H:stop_cnode(Owner3, Log3).

%%% (e) memory only

%% Without --data-dir: no durability fields in the status, and a restart
%% (clean, or after SIGKILL) comes back empty; sync and put_sync still answer.
memory_only_restart_is_empty(Config) ->
    {Owner, Server, Log} = ?H:start_cnode(Config, kvmem, []),
    [ok = gen_server:call(Server, {put, I, I}, ?CALL) || I <- lists:seq(1, 100)],
    ?assertEqual(ok, gen_server:call(Server, {put_sync, sync_key, 1}, ?CALL)),
    ?assertEqual(ok, gen_server:call(Server, sync, ?CALL)),
    ?assertEqual(101, gen_server:call(Server, size)),
    Status = ?H:status(Server),
    ?assertEqual([entries, memory, messages], lists:sort(maps:keys(Status))),
    ?H:stop_cnode(Owner, Log),
    {Owner2, Server2, _} = ?H:start_cnode(Config, kvmem, []),
    ?assert(?H:state(Server2) =:= #{}),
    [ok = gen_server:call(Server2, {put_sync, I, I}, ?CALL) || I <- lists:seq(1, 10)],
    ?assertEqual({exit_status, 137}, ?H:kill9(Owner2)),
    {Owner3, Server3, Log3} = ?H:start_cnode(Config, kvmem, []),
    ?assertEqual(0, gen_server:call(Server3, size)),
    ?assert(?H:state(Server3) =:= #{}),
    ?H:stop_cnode(Owner3, Log3).

%% The durable kv stopped (GenServer.stop, as any peer may), a kv started
%% again under its name reopens the store: what was there is back, and
%% put_sync's ok means on disk again. A kv under another name is memory
%% only. (A memory-only kv took the name, and answered put_sync ok for
%% changes never written.)
a_kv_started_again_under_the_store_s_name_is_durable(Config) ->
    Dir = filename:join(?config(case_dir, Config), "data"),
    Args = ["--data-dir", Dir],
    {Owner, {kv, Node} = Server, Log} = ?H:start_cnode(Config, kvagain, Args),
    ok = gen_server:call(Server, {put_sync, before, 1}, ?CALL),
    ok = gen_server:stop(Server),
    Start = fun(Name) -> gen_server:call({gen_cnode, Node}, {start, kv, [], [{name, Name}]}, ?CALL) end,
    {ok, _} = Start(kv),
    ?assertEqual(1, gen_server:call(Server, {get, before}, ?CALL)),
    ok = gen_server:call(Server, {put_sync, again, 2}, ?CALL),
    {ok, Other} = Start(other),
    ?assertEqual(nil, gen_server:call(Other, {get, before}, ?CALL)),
    ?assertEqual({error, {compact, not_durable}}, gen_server:call(Other, compact, ?CALL)),
    ?assertEqual({exit_status, 137}, ?H:kill9(Owner)),
    {Owner2, Server2, Log2} = ?H:start_cnode(Config, kvagain, Args),
    ?assert(?H:state(Server2) =:= #{before => 1, again => 2}),
    ?H:stop_cnode(Owner2, Log2),
    _ = Log.

%% A kill of the durable kv and a start under its name that reach the node
%% in one read: the start waits for the old server's teardown (which
%% closes the store) and then reopens the store, where it found the store
%% still locked and failed (data_dir_unavailable). A peer of the test's
%% writes both frames at once, for rounds of it (start and start_link).
a_kv_killed_and_started_in_one_batch_reopens_the_store(Config) ->
    Dir = filename:join(?config(case_dir, Config), "data"),
    {Owner, {kv, Node} = Server, Log} = ?H:start_cnode(Config, kvbatch, ["--data-dir", Dir]),
    {ok, Peer} = hostile_peer:connect(Node, 'batch@127.0.0.1', erlang:get_cookie()),
    #{pid := From} = Peer,
    Frame = fun(Ctrl, Msg) ->
                    B = iolist_to_binary([112, term_to_binary(Ctrl) | Msg]),
                    <<(byte_size(B)):32, B/binary>>
            end,
    Round = fun(I) ->
                    ok = gen_server:call(Server, {put_sync, I, I}, ?CALL),
                    {status, Old, _, _} = sys:get_status(Server, ?CALL),
                    Tag = make_ref(),
                    Op = element(1 + I rem 2, {start, start_link}),
                    Start = {'$gen_call', {From, Tag}, {Op, kv, [], [{name, kv}]}},
                    ok = hostile_peer:send_raw(Peer, [Frame({8, From, Old, kill}, []),
                                                      Frame({6, From, '', gen_cnode},
                                                            [term_to_binary(Start)])]),
                    {ok, {ok, New}} = await(Peer, Tag),
                    ?assertNotEqual(Old, New),
                    ?assertEqual(I, gen_server:call(Server, {get, I}, ?CALL))
            end,
    lists:foreach(Round, lists:seq(1, 10)),
    ?assertEqual(10, gen_server:call(Server, size, ?CALL)),
    %% Two starts behind the kill: the first starts, in the order they
    %% came, and the second finds it.
    {status, Old, _, _} = sys:get_status(Server, ?CALL),
    [T1, T2] = [make_ref(), make_ref()],
    StartAs = fun(Tag) -> Frame({6, From, '', gen_cnode},
                                [term_to_binary({'$gen_call', {From, Tag}, {start, kv, [], [{name, kv}]}})])
              end,
    ok = hostile_peer:send_raw(Peer, [Frame({8, From, Old, kill}, []), StartAs(T1), StartAs(T2)]),
    {ok, {ok, New}} = await(Peer, T1),
    ?assertEqual({ok, {error, {already_started, New}}}, await(Peer, T2)),
    ?assertEqual(10, gen_server:call(Server, size, ?CALL)),
    ?assertEqual({exit_status, 137}, ?H:kill9(Owner)),
    hostile_peer:close(Peer),
    {Owner2, Server2, Log2} = ?H:start_cnode(Config, kvbatch, ["--data-dir", Dir]),
    ?assertEqual(10, gen_server:call(Server2, size, ?CALL)),
    ?H:stop_cnode(Owner2, Log2),
    _ = Log.

%% The reply tagged Tag that the peer reads: {ok, Reply}.
await(Peer, Tag) ->
    case hostile_peer:recv(Peer, ?CALL) of
        {ok, _, {Tag, Reply}} -> {ok, Reply};
        {ok, _, _} -> await(Peer, Tag);
        Error -> Error
    end.

%%% (f) sync and put_sync

%% Under each policy put_sync and sync answer ok (promptly), a sync covers
%% the casts before it (they survive SIGKILL), and get_status reports the
%% durability fields, log_bytes matching the files. --register names the
%% files.
sync_and_put_sync_reply_ok(Config) ->
    CaseDir = ?config(case_dir, Config),
    [begin
         Dir = filename:join(CaseDir, Policy),
         Args = ["--data-dir", Dir, "--fsync", Policy, {register, store}],
         {Owner, Server, _} = ?H:start_cnode(Config, kvsync, Args),
         {T, Replies} = timer:tc(fun() ->
                                         [gen_server:call(Server, {put_sync, {ps, I}, I}, 5000)
                                          || I <- lists:seq(1, 20)]
                                 end),
         ?assertEqual({Policy, lists:duplicate(20, ok)}, {Policy, Replies}),
         [ok = gen_server:cast(Server, {put, {cast, I}, I}) || I <- lists:seq(1, 200)],
         ok = gen_server:cast(Server, {delete, {ps, 1}}),
         ?assertEqual({Policy, ok}, {Policy, gen_server:call(Server, sync, 5000)}),
         Status = ?H:status(Server),
         ct:log("fsync ~s: 20 put_sync in ~b us; status ~p; files ~p",
                [Policy, T, Status, ?H:list_dir(Dir)]),
         ?assertMatch(#{log_bytes := _, compactions := 0, compaction_failures := 0,
                        max_compaction_pause_ms := _,
                        recovery_ms := _, entries := 219, memory := _, messages := _}, Status),
         ?assertEqual([1], ?H:log_files(Dir, store)),
         ?assertEqual(filelib:file_size(filename:join(Dir, "store.log.1")),
                      maps:get(log_bytes, Status)),
         ?assertEqual({exit_status, 137}, ?H:kill9(Owner)),
         {Owner2, Server2, Log2} = ?H:start_cnode(Config, kvsync, Args),
         Expect = maps:from_list([{{ps, I}, I} || I <- lists:seq(2, 20)]
                                 ++ [{{cast, I}, I} || I <- lists:seq(1, 200)]),
         ?assert(?H:state(Server2) =:= Expect),
         ?assertMatch(#{recovery_ms := R} when is_float(R), ?H:status(Server2)),
         ?H:stop_cnode(Owner2, Log2)
     end || Policy <- ["always", "everysec", "no"]],
    ok.

%%% (g) a full disk

%% A full disk, played by a file size limit set on the running node with
%% prlimit (writes past it fail with EFBIG; the node ignores SIGXFSZ). Every
%% call that changes the store waits for its change to be written: plain put
%% and delete calls, like put_sync and sync, get {error, {disk, Why}}, not ok.
%% Reads are served from memory, the failure is logged once. (That the log
%% is cut back to its last whole record is test_durable.c's: here a retry
%% may be under way at any moment.) With room again the kept changes are
%% written, and after SIGKILL every change is there, the ones answered with
%% an error too (they were kept, not dropped: an error says "not known to be
%% on disk", as a timeout would).
full_disk_fails_calls_until_there_is_room(Config) ->
    Dir = filename:join(?config(case_dir, Config), "data"),
    Args = ["--data-dir", Dir, "--fsync", "always", {register, store}],
    {Owner, Server, Log} = ?H:start_cnode(Config, kvfull, Args),
    ok = gen_server:call(Server, {put, before, 1}, ?CALL),
    LogFile = filename:join(Dir, "store.log.1"),
    Size = filelib:file_size(LogFile),
    OsPid = gen_cnode:os_pid(Owner),
    fsize_limit(OsPid, integer_to_list(Size + 64)),
    Big = binary:copy(<<"x">>, 1000),
    ?assertMatch({error, {disk, _}}, gen_server:call(Server, {put, big, Big}, ?CALL)),
    ?assertMatch({error, {disk, _}}, gen_server:call(Server, {delete, before}, ?CALL)),
    ?assertMatch({error, {disk, _}}, gen_server:call(Server, {put_sync, big2, Big}, ?CALL)),
    ?assertMatch({error, {disk, _}}, gen_server:call(Server, sync, ?CALL)),
    ok = gen_server:cast(Server, {put, cast, 3}),
    ?assertEqual(Big, gen_server:call(Server, {get, big}, ?CALL)),
    ?assertEqual(nil, gen_server:call(Server, {get, before}, ?CALL)),
    fsize_limit(OsPid, "unlimited"),
    ?assertEqual(ok, gen_server:call(Server, {put, 'after', 2}, ?CALL)),
    ?assertEqual(ok, gen_server:call(Server, sync, ?CALL)),
    %% Log lines reach the file through the owner, after the answers: wait.
    Count = fun(Pattern) -> length([L || L <- ?H:log_lines(Log), binary:match(L, Pattern) =/= nomatch]) end,
    ok = gen_cnode_test_env:wait_until(fun() -> Count(<<"writing the log works again">>) >= 1 end, 5000),
    timer:sleep(100),
    ct:log("log:~n~s", [lists:join("\n", ?H:log_lines(Log))]),
    ?assertEqual(1, Count(<<"the changes are kept and written again once it works">>)),
    ?assertEqual(1, Count(<<"writing the log works again">>)),
    ?assertEqual({exit_status, 137}, ?H:kill9(Owner)),
    {Owner2, Server2, Log2} = ?H:start_cnode(Config, kvfull, Args),
    ?assert(?H:state(Server2) =:= #{big => Big, big2 => Big, cast => 3, 'after' => 2}),
    ?H:stop_cnode(Owner2, Log2).

%% The soft limit only: raising a hard limit back needs CAP_SYS_RESOURCE.
fsize_limit(OsPid, Limit) ->
    Cmd = "prlimit --pid " ++ integer_to_list(OsPid) ++ " --fsize=" ++ Limit ++ ": 2>&1; echo $?",
    ?assertEqual("0\n", os:cmd(Cmd)).

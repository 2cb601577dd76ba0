%% counter_reference: the C node's counter server as an ordinary gen_server,
%% for gen_cnode_otp_SUITE's conformance runs.
%%
%% cast incr, cast {add, N}; call get -> Count; call {wait_for, N} -> {ok, Count}
%% once the count reaches N (a deferred reply: gen_server:reply/2 when a cast
%% gets it there, waiters answered in the order they asked); call reset -> ok;
%% any other call -> {error, {unknown_call, Req}}. Started by starter_reference
%% (init gets {Link, Arg}). A waiter whose caller dies, or whose caller's node
%% goes away, is forgotten (the server monitors its waiters), as the C node
%% releases the pending calls of callers that are gone.
-module(counter_reference).
-behaviour(gen_server).

-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

init({Link, _Arg}) ->
    starter_reference:link_caller(Link),
    {ok, #{count => 0, waiters => []}}.

handle_call(get, _From, S = #{count := C}) ->
    {reply, C, S};
handle_call({wait_for, N}, _From, S = #{count := C}) when is_integer(N), C >= N ->
    {reply, {ok, C}, S};
handle_call({wait_for, N}, From = {Caller, _}, S = #{waiters := W}) when is_integer(N) ->
    Mon = monitor(process, Caller),
    {noreply, S#{waiters := W ++ [{N, From, Mon}]}};
handle_call(reset, _From, S) ->
    {reply, ok, S#{count := 0}};
handle_call(Req, _From, S) ->
    {reply, {error, {unknown_call, Req}}, S}.

handle_cast(incr, S) ->
    {noreply, add(1, S)};
handle_cast({add, N}, S) when is_integer(N) ->
    {noreply, add(N, S)};
handle_cast(_Msg, S) ->
    {noreply, S}.

handle_info({'DOWN', Mon, process, _, _}, S = #{waiters := W}) ->
    {noreply, S#{waiters := lists:keydelete(Mon, 3, W)}};
handle_info(_Info, S) ->
    {noreply, S}.

add(N, S = #{count := C0, waiters := W}) ->
    C = C0 + N,
    {Ready, Waiting} = lists:partition(fun({Want, _, _}) -> C >= Want end, W),
    [begin
         demonitor(Mon, [flush]),
         gen_server:reply(From, {ok, C})
     end || {_, From, Mon} <- Ready],
    S#{count := C, waiters := Waiting}.

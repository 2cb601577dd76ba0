%% kv_reference: the C node's KeyValue server written as an ordinary
%% gen_server, the BEAM side of gen_cnode_otp_SUITE's conformance runs.
%%
%% Same protocol as c_src/kv.c (README's table): cast {put,K,V} / {delete,K};
%% call {get,K} -> V | nil, {fetch,K} -> {ok,V} | error, {put,K,V} and
%% {delete,K} -> ok, size, keys, anything else -> {error,{unknown_call,Req}}.
%% Unknown casts and plain messages are ignored. The state is the store itself,
%% a plain map (what sys:get_state/1 returns).
%%
%% init/1 takes what the starter (starter_reference) hands it: {Link, Arg} with
%% Link = nolink | {link, Caller}, and Arg = [] or a map with optional keys
%%   preload   => Map   loaded in handle_continue, before any other message
%%   trap_exit => Bool  exit signals become {'EXIT', From, Reason} infos
%% sys:get_status/1 shows the state as #{entries, memory, messages}, as the C
%% node does.
-module(kv_reference).
-behaviour(gen_server).

-export([init/1, handle_continue/2, handle_call/3, handle_cast/2, handle_info/2,
         format_status/1]).

init({Link, Arg}) ->
    starter_reference:link_caller(Link),
    put(messages, 0),
    Opts = case Arg of
               [] -> #{};
               M when is_map(M) -> M
           end,
    case maps:get(trap_exit, Opts, false) of
        true -> process_flag(trap_exit, true);
        false -> ok
    end,
    case maps:find(preload, Opts) of
        {ok, Preload} when is_map(Preload) -> {ok, #{}, {continue, {preload, Preload}}};
        error -> {ok, #{}}
    end.

handle_continue({preload, Preload}, Store) ->
    {noreply, maps:merge(Store, Preload)}.

handle_call(Req, _From, Store) ->
    handled(),
    case Req of
        {get, K} -> {reply, maps:get(K, Store, nil), Store};
        {fetch, K} -> {reply, maps:find(K, Store), Store};
        {put, K, V} -> {reply, ok, Store#{K => V}};
        {delete, K} -> {reply, ok, maps:remove(K, Store)};
        size -> {reply, map_size(Store), Store};
        keys -> {reply, maps:keys(Store), Store};
        _ -> {reply, {error, {unknown_call, Req}}, Store}
    end.

handle_cast(Msg, Store) ->
    handled(),
    case Msg of
        {put, K, V} -> {noreply, Store#{K => V}};
        {delete, K} -> {noreply, maps:remove(K, Store)};
        _ -> {noreply, Store}
    end.

%% The start_link caller's exit (see starter_reference:parent/0), as
%% gen_server itself handles its parent's.
handle_info({'EXIT', Parent, Reason}, Store) ->
    case starter_reference:parent() of
        Parent -> {stop, Reason, Store};
        _ -> handled(), {noreply, Store}
    end;
handle_info(_Info, Store) ->
    handled(),
    {noreply, Store}.

format_status(Status = #{state := Store}) ->
    {memory, Bytes} = process_info(self(), memory),
    Status#{state := #{entries => map_size(Store), memory => Bytes,
                       messages => get(messages)}};
format_status(Status) ->
    Status.

handled() ->
    put(messages, get(messages) + 1).

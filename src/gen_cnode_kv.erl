%% gen_cnode_kv: the client API of the KeyValue server a C node hosts.
%%
%% Plain gen_server calls and casts, nothing more: Server is any gen_server
%% reference ({kv, 'kv@127.0.0.1'}, a pid, ...), and the same requests work
%% from any BEAM node without this module. Keys and values are any terms;
%% two keys are the same exactly when =:= says so.
-module(gen_cnode_kv).

-export([put/3, get/2, get/3, fetch/2, fetch/3, delete/2, size/1, size/2,
         keys/1, keys/2]).

-define(TIMEOUT, 5000).

%% Stores Value under Key; asynchronous (a cast), always ok.
-spec put(gen_server:server_ref(), term(), term()) -> ok.
put(Server, Key, Value) ->
    gen_server:cast(Server, {put, Key, Value}).

%% The value stored under Key, or the atom nil when there is none.
-spec get(gen_server:server_ref(), term()) -> term().
get(Server, Key) ->
    get(Server, Key, ?TIMEOUT).

-spec get(gen_server:server_ref(), term(), timeout()) -> term().
get(Server, Key, Timeout) ->
    gen_server:call(Server, {get, Key}, Timeout).

%% {ok, Value}, or error when Key is absent.
-spec fetch(gen_server:server_ref(), term()) -> {ok, term()} | error.
fetch(Server, Key) ->
    fetch(Server, Key, ?TIMEOUT).

-spec fetch(gen_server:server_ref(), term(), timeout()) -> {ok, term()} | error.
fetch(Server, Key, Timeout) ->
    gen_server:call(Server, {fetch, Key}, Timeout).

%% Removes Key; asynchronous (a cast), always ok.
-spec delete(gen_server:server_ref(), term()) -> ok.
delete(Server, Key) ->
    gen_server:cast(Server, {delete, Key}).

%% The number of keys stored.
-spec size(gen_server:server_ref()) -> non_neg_integer().
size(Server) ->
    size(Server, ?TIMEOUT).

-spec size(gen_server:server_ref(), timeout()) -> non_neg_integer().
size(Server, Timeout) ->
    gen_server:call(Server, size, Timeout).

%% Every key stored, in no particular order.
-spec keys(gen_server:server_ref()) -> [term()].
keys(Server) ->
    keys(Server, ?TIMEOUT).

-spec keys(gen_server:server_ref(), timeout()) -> [term()].
keys(Server, Timeout) ->
    gen_server:call(Server, keys, Timeout).

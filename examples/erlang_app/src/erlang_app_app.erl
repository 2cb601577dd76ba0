%% erlang_app_app: starts the supervisor. The VM must be distributed with long
%% names (erl -name app@127.0.0.1), as the C node joins its cluster.
-module(erlang_app_app).
-behaviour(application).

-export([start/2, stop/1]).

start(_Type, _Args) ->
    erlang_app_sup:start_link().

stop(_State) ->
    ok.

%% erlang_app_sup: one child, a gen_cnode C node with the KeyValue store
%% (registered as kv) and a rate limiter (rl, examples/ratelimit.c, loaded
%% from gen_cnode's priv/). The child is the node's owner: it restarts the C
%% node if it dies, and stops it when the supervisor stops it.
-module(erlang_app_sup).
-behaviour(supervisor).

-export([start_link/0, cnode/0]).
-export([init/1]).

start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%% The C node's name.
cnode() ->
    {ok, Node} = application:get_env(erlang_app, cnode),
    Node.

init([]) ->
    RateLimit = filename:join(code:priv_dir(gen_cnode), "examples/ratelimit.so"),
    Child = gen_cnode:child_spec(#{name => cnode(),
                                   load => [RateLimit],
                                   start => ["ratelimit:rl=#{rate => 100, burst => 5}"]}),
    {ok, {#{strategy => one_for_one, intensity => 3, period => 10}, [Child]}}.

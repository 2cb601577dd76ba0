%% starter_reference: the C node's `gen_cnode` starter process as an ordinary
%% gen_server on a BEAM node, so that gen_cnode_otp_SUITE starts servers the
%% same way on both targets:
%%
%%   gen_server:call({gen_cnode, Node}, {start | start_link, Module, Arg})
%%   gen_server:call({gen_cnode, Node}, {start | start_link, Module, Arg, [{name, Atom}]})
%%     -> {ok, Pid} once the server's init has run
%%      | {error, {unknown_module, M}} | {error, {already_started, Pid}}
%%
%% Modules: kv (kv_reference) and counter (counter_reference). The servers are
%% started with gen_server:start on this node; start_link links the new server
%% to the caller from its init (gen_server:start_link can only link to a local
%% caller), so the link exists when the caller gets {ok, Pid}.
%%
%% boot/0 brings a node up as the C node comes up: this starter registered as
%% gen_cnode, a kv server registered as kv, a counter registered as counter.
-module(starter_reference).
-behaviour(gen_server).

-export([boot/0, link_caller/1, parent/0]).
-export([init/1, handle_call/3, handle_cast/2]).

boot() ->
    {ok, _} = gen_server:start({local, gen_cnode}, ?MODULE, [], []),
    {ok, _} = gen_server:start({local, kv}, kv_reference, {nolink, []}, []),
    {ok, _} = gen_server:start({local, counter}, counter_reference, {nolink, []}, []),
    ok.

%% Called from the servers' init/1. The caller is remembered as the parent
%% (parent/0): gen_server:start_link would have made it the parent, whose
%% exit stops a server that traps exits.
link_caller(nolink) -> ok;
link_caller({link, Caller}) -> link(Caller), put({?MODULE, parent}, Caller), ok.

%% The caller of a start_link, or undefined.
parent() -> get({?MODULE, parent}).

init([]) ->
    {ok, no_state}.

handle_call({How, M, Arg}, From, S) when How =:= start; How =:= start_link ->
    handle_call({How, M, Arg, []}, From, S);
handle_call({How, M, Arg, Opts}, {Caller, _}, S) when How =:= start; How =:= start_link ->
    Link = case How of
               start -> nolink;
               start_link -> {link, Caller}
           end,
    Reply = case module(M) of
                undefined ->
                    {error, {unknown_module, M}};
                Mod ->
                    case proplists:get_value(name, Opts) of
                        undefined -> gen_server:start(Mod, {Link, Arg}, []);
                        Name -> gen_server:start({local, Name}, Mod, {Link, Arg}, [])
                    end
            end,
    {reply, Reply, S};
handle_call(Req, _From, S) ->
    {reply, {error, {unknown_call, Req}}, S}.

handle_cast(_Msg, S) ->
    {noreply, S}.

module(kv) -> kv_reference;
module(counter) -> counter_reference;
module(_) -> undefined.

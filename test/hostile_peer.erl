%% hostile_peer: a distribution peer written from scratch over gen_tcp, for
%% gen_cnode_hostile_SUITE. It does the real handshake (version 6, the
%% cookie's digest) as a node named Name, then writes whatever frames it is
%% told to, well-formed or not, reads what comes back when asked, and can
%% stop reading or vanish at any moment: what a hostile or broken node does,
%% which a BEAM node never would.
%%
%% A peer is a map: #{sock, name, pid}. Frames are
%% [u32 length][112][131 control][131 message], the control tuple and the
%% message as term_to_binary makes them; ticks (empty frames) are skipped.
-module(hostile_peer).

-export([connect/3, connect_raw/1, handshake_only/3, close/1,
         pid/2, node_pid/3,
         send/3, send_ctrl/2, send_payload/2, send_raw/2,
         recv/2, call/4, call/5, system_call/4, cast/3, port_of/1]).

%% What OTP 25 and 27 nodes offer (dist_util), hidden: not PUBLISHED.
-define(FLAGS, 16#0000000c07070fbc).
-define(CREATION, 16#1234567).
-define(CHALLENGE, 42).

%% The C node's distribution port, from epmd on 127.0.0.1.
port_of(Node) ->
    [Alive, _Host] = string:split(atom_to_list(Node), "@"),
    {port, Port, _} = erl_epmd:port_please(Alive, {127, 0, 0, 1}),
    Port.

%% A TCP connection to Node's distribution port, nothing sent yet.
connect_raw(Node) ->
    gen_tcp:connect({127, 0, 0, 1}, port_of(Node),
                    [binary, {packet, raw}, {active, false}, {nodelay, true}], 5000).

%% Connect to Node as Name (an atom alive@host) with Cookie (an atom), and
%% run the handshake. {ok, Peer} or {error, Why}.
connect(Node, Name, Cookie) ->
    case handshake_only(Node, Name, Cookie) of
        {ok, S} ->
            ok = inet:setopts(S, [{packet, 4}]),
            {ok, #{sock => S, name => Name, pid => pid(Name, 1)}};
        Error ->
            Error
    end.

%% The handshake alone: {ok, Socket} (packet 2 still set) or {error, Why}.
handshake_only(Node, Name, Cookie) ->
    {ok, S} = connect_raw(Node),
    ok = inet:setopts(S, [{packet, 2}]),
    N = atom_to_binary(Name, utf8),
    ok = gen_tcp:send(S, <<$N, ?FLAGS:64, ?CREATION:32, (byte_size(N)):16, N/binary>>),
    Result =
        case gen_tcp:recv(S, 0, 5000) of
            {ok, <<"sok">>} ->
                case gen_tcp:recv(S, 0, 5000) of
                    {ok, <<$N, _Flags:64, Challenge:32, _Creation:32, _/binary>>} ->
                        ok = gen_tcp:send(S, <<$r, ?CHALLENGE:32, (digest(Cookie, Challenge))/binary>>),
                        Expect = digest(Cookie, ?CHALLENGE),
                        case gen_tcp:recv(S, 0, 5000) of
                            {ok, <<$a, Expect/binary>>} -> ok;
                            Other -> {error, {no_ack, Other}}
                        end;
                    Other ->
                        {error, {no_challenge, Other}}
                end;
            Other ->
                {error, {status, Other}}
        end,
    case Result of
        ok -> {ok, S};
        _ -> gen_tcp:close(S), Result
    end.

digest(Cookie, Challenge) ->
    erlang:md5([atom_to_list(Cookie), integer_to_list(Challenge)]).

close(#{sock := S}) -> gen_tcp:close(S).

%% The pid <Node.Id.0> of a node of this peer's creation (or Creation).
pid(Node, Id) -> node_pid(Node, Id, ?CREATION).

node_pid(Node, Id, Creation) ->
    N = atom_to_binary(Node, utf8),
    binary_to_term(<<131, 88, 119, (byte_size(N)), N/binary, Id:32, 0:32, Creation:32>>).

send(#{sock := S}, Ctrl, Msg) ->
    gen_tcp:send(S, [112, term_to_binary(Ctrl), term_to_binary(Msg)]).

send_ctrl(#{sock := S}, Ctrl) ->
    gen_tcp:send(S, [112, term_to_binary(Ctrl)]).

%% One frame whose bytes (after the length) are Payload, as they are.
send_payload(#{sock := S}, Payload) ->
    gen_tcp:send(S, Payload).

%% Bytes on the socket with no framing added (a length prefix of its own).
send_raw(#{sock := S}, Bytes) ->
    ok = inet:setopts(S, [{packet, raw}]),
    R = gen_tcp:send(S, Bytes),
    inet:setopts(S, [{packet, 4}]),
    R.

%% The next frame that is not a tick: {ok, Ctrl, Msg | none} or {error, Why}.
%% A frame this VM cannot decode comes back as {ok, undecodable, Bytes}: the
%% node copies call tags back byte for byte, and a mutated tag can name a
%% reference of this very node that its binary_to_term refuses (OTP 27
%% checks the words of its own references). The hostile peer reaps what it
%% sowed; the node did as a BEAM server does.
recv(#{sock := S} = P, Timeout) ->
    case gen_tcp:recv(S, 0, Timeout) of
        {ok, <<>>} -> recv(P, Timeout);
        {ok, <<112, Rest/binary>>} ->
            try
                {Ctrl, Used} = binary_to_term(Rest, [used]),
                case Rest of
                    <<_:Used/binary>> -> {ok, Ctrl, none};
                    <<_:Used/binary, Msg/binary>> -> {ok, Ctrl, binary_to_term(Msg)}
                end
            catch
                error:badarg -> {ok, undecodable, Rest}
            end;
        {ok, Other} -> {error, {unexpected, Other}};
        Error -> Error
    end.

%% A gen_server call to the registered name To: {ok, Reply} or {error, Why}.
call(P, To, Req, Timeout) ->
    call(P, To, Req, make_ref(), Timeout).

%% The same with a tag of the caller's choosing (any term: the node copies
%% it back as it is).
call(#{pid := Pid} = P, To, Req, Tag, Timeout) ->
    ok = send(P, {6, Pid, '', To}, {'$gen_call', {Pid, Tag}, Req}),
    await_reply(P, Tag, erlang:monotonic_time(millisecond) + Timeout).

await_reply(P, Tag, Deadline) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    case recv(P, Left) of
        {ok, _Ctrl, {Tag, Reply}} -> {ok, Reply};
        {ok, _Ctrl, _Other} -> await_reply(P, Tag, Deadline);
        Error -> Error
    end.

%% A system message, as sys sends it: {ok, Reply} or {error, Why}.
system_call(#{pid := Pid} = P, To, Req, Timeout) ->
    Tag = make_ref(),
    ok = send(P, {6, Pid, '', To}, {system, {Pid, Tag}, Req}),
    await_reply(P, Tag, erlang:monotonic_time(millisecond) + Timeout).

cast(#{pid := Pid} = P, To, Req) ->
    send(P, {6, Pid, '', To}, {'$gen_cast', Req}).

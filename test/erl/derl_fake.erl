%% derl_fake: a node that registers with EPMD, lets one node connect,
%% and then misbehaves in the way asked, to check that derl closes just
%% that connection with a clear reason and keeps its memory bounded.
%%
%%   erl -noshell -run derl_fake start NAME COOKIE MODE
%%
%% MODE is one of:
%%   wrong_name   the challenge names another node than NAME@localhost
%%   arity        a SEND control message of the wrong arity
%%   atom_cache   a frame whose header names an atom cache entry never
%%                defined
%%   deep         a message nested 1,000,000 deep
%%   compressed   a compressed message inflating to 2 MB
%%   half         the first bytes of a frame, then silence
%%   big_node     a pid whose node name is the longest an atom can say
%%                (65,535 bytes)
%%   cut_short    a control message cut short
%%
%% Prints "derl_fake ready" once registered, and "derl_fake closed" when
%% the peer has hung up.  Uses ERL_EPMD_PORT.
%%
%% Copyright (C) 2026 The derl authors
%% SPDX-License-Identifier: GPL-3.0-or-later
-module(derl_fake).
-export([start/1, run/4]).
%% Also used by derl_liar, another fake node.
-export([register_with_epmd/2, handshake/3]).

%% What OTP requires of a node, the new link protocol, and the atom
%% cache in distribution headers.
-define(FLAGS, (16#4 bor 16#10 bor 16#80 bor 16#100 bor 16#200 bor 16#400
                bor 16#800 bor 16#2000 bor 16#10000 bor 16#20000
                bor 16#40000 bor 16#1000000 bor 16#2000000 bor (1 bsl 34))).

start([Name, Cookie, Mode]) ->
    run(Name, Cookie, Mode, "derl_fake ready").

%% As start/1, printing READY once registered.
run(Name, Cookie, Mode, Ready) ->
    {ok, Listen} = gen_tcp:listen(0, [binary, {packet, 2}, {active, false},
                                      {reuseaddr, true}]),
    {ok, Port} = inet:port(Listen),
    Epmd = register_with_epmd(Name, Port),
    io:format("~s~n", [Ready]),
    {ok, Sock} = gen_tcp:accept(Listen),
    Claimed = case Mode of
                  "wrong_name" -> Name ++ "x@localhost";
                  _ -> Name ++ "@localhost"
              end,
    {Peer, Creation} = handshake(Sock, Claimed, Cookie),
    ok = inet:setopts(Sock, [{packet, 0}]),
    misbehave(list_to_atom(Mode), Sock, Peer, Creation),
    wait_closed(Sock),
    io:format("derl_fake closed~n"),
    gen_tcp:close(Epmd),
    halt(0).

register_with_epmd(Name, Port) ->
    EpmdPort = case os:getenv("ERL_EPMD_PORT") of
                   false -> 4369;
                   P -> list_to_integer(P)
               end,
    {ok, S} = gen_tcp:connect("localhost", EpmdPort,
                              [binary, {packet, 0}, {active, false}]),
    NameBin = list_to_binary(Name),
    Req = <<120, Port:16, 77, 0, 6:16, 5:16, (byte_size(NameBin)):16,
            NameBin/binary, 0:16>>,
    ok = gen_tcp:send(S, <<(byte_size(Req)):16, Req/binary>>),
    {ok, <<118, 0, _Creation:32>>} = gen_tcp:recv(S, 6, 5000),
    S.

%% The acceptor's side; returns the connecting node's name and creation.
handshake(Sock, Claimed, Cookie) ->
    {ok, <<$N, _Flags:64, Creation:32, NLen:16, Peer:NLen/binary,
           _/binary>>} = gen_tcp:recv(Sock, 0, 5000),
    ok = gen_tcp:send(Sock, <<"sok">>),
    Challenge = rand:uniform(16#FFFFFFFF),
    Full = list_to_binary(Claimed),
    ok = gen_tcp:send(Sock, <<$N, ?FLAGS:64, Challenge:32, 7:32,
                              (byte_size(Full)):16, Full/binary>>),
    case gen_tcp:recv(Sock, 0, 5000) of
        {ok, <<$r, Theirs:32, _Digest:16/binary>>} ->
            ok = gen_tcp:send(Sock,
                              <<$a, (digest(Cookie, Theirs))/binary>>);
        _ ->
            %% Refused during the handshake, as it should be.
            ok
    end,
    {Peer, Creation}.

digest(Cookie, Challenge) ->
    erlang:md5([Cookie, integer_to_list(Challenge)]).

%% A pid of the connecting node, encoded without a version byte.
peer_pid(Peer, Creation) ->
    <<88, 119, (byte_size(Peer)), Peer/binary, 1:32, 0:32, Creation:32>>.

%% A pass-through frame: 112, then each term after its version byte.
frame(Terms) ->
    Body = [112 | [[131, T] || T <- Terms]],
    [<<(iolist_size(Body)):32>>, Body].

%% SEND: {2, '', Pid} and MSG.
send_to(Peer, Creation, Msg) ->
    frame([[<<104, 3, 97, 2, 119, 0>>, peer_pid(Peer, Creation)], Msg]).

misbehave(wrong_name, _Sock, _Peer, _Creation) ->
    ok;
misbehave(cut_short, Sock, _Peer, _Creation) ->
    gen_tcp:send(Sock, <<8:32, 112, 131, 104, 3, 97, 2, 100, 0>>);
misbehave(arity, Sock, Peer, Creation) ->
    %% {2, ''}: SEND with its pid missing.
    _ = Peer, _ = Creation,
    gen_tcp:send(Sock, frame([<<104, 2, 97, 2, 119, 0>>, <<97, 1>>]));
misbehave(atom_cache, Sock, Peer, Creation) ->
    %% Header: one reference, old entry 5 of segment 0, never defined;
    %% the control tuple then names it as its second element.
    Header = <<131, 68, 1, 0, 5>>,
    Control = [<<104, 3, 97, 2, 82, 0>>, peer_pid(Peer, Creation)],
    Body = [Header, Control, <<97, 1>>],
    gen_tcp:send(Sock, [<<(iolist_size(Body)):32>>, Body]);
misbehave(deep, Sock, Peer, Creation) ->
    N = 1000000,
    Deep = [binary:copy(<<104, 1>>, N), <<106>>],
    gen_tcp:send(Sock, send_to(Peer, Creation, Deep));
misbehave(compressed, Sock, Peer, Creation) ->
    Raw = binary:copy(<<0>>, 2 * 1024 * 1024),
    Inner = term_to_binary(Raw),
    <<131, Term/binary>> = Inner,
    Z = zlib:compress(Term),
    Compressed = <<80, (byte_size(Term)):32, Z/binary>>,
    gen_tcp:send(Sock, send_to(Peer, Creation, Compressed));
misbehave(half, Sock, _Peer, _Creation) ->
    gen_tcp:send(Sock, <<1000:32, "0123456789">>);
misbehave(big_node, Sock, Peer, Creation) ->
    Node = binary:copy(<<"a">>, 65535),
    Pid = <<88, 118, 65535:16, Node/binary, 1:32, 0:32, 1:32>>,
    gen_tcp:send(Sock, send_to(Peer, Creation, Pid)).

%% Until the peer hangs up; what it sends (ticks) is never answered.
wait_closed(Sock) ->
    case gen_tcp:recv(Sock, 0, 60000) of
        {ok, _} -> wait_closed(Sock);
        {error, timeout} -> wait_closed(Sock);
        {error, _} -> ok
    end.

%% derl_rogue: an Erlang program that registers with EPMD as a node,
%% completes a real handshake with whoever connects, and then sends a
%% malformed distribution frame, to check that derl closes just that
%% connection with a clear reason.
%%
%%   erl -noshell -run derl_rogue start NAME COOKIE
%%
%% Prints "derl_rogue ready" once registered.  Uses ERL_EPMD_PORT.
%%
%% Copyright (C) 2026 The derl authors
%% SPDX-License-Identifier: GPL-3.0-or-later
-module(derl_rogue).
-export([start/1]).
%% Also used by derl_liar, another fake node.
-export([register_with_epmd/2, handshake/3]).

%% What OTP requires of a node, and the new link protocol.
-define(FLAGS, (16#4 bor 16#10 bor 16#80 bor 16#100 bor 16#200 bor 16#400
                bor 16#800 bor 16#10000 bor 16#20000 bor 16#40000
                bor 16#1000000 bor 16#2000000 bor (1 bsl 34))).

start([Name, Cookie]) ->
    {ok, Listen} = gen_tcp:listen(0, [binary, {packet, 2}, {active, false},
                                      {reuseaddr, true}]),
    {ok, Port} = inet:port(Listen),
    Epmd = register_with_epmd(Name, Port),
    io:format("derl_rogue ready~n"),
    {ok, Sock} = gen_tcp:accept(Listen),
    handshake(Sock, Name, Cookie),
    ok = inet:setopts(Sock, [{packet, 4}]),
    %% A pass-through frame whose control message is cut short.
    ok = gen_tcp:send(Sock, <<112, 131, 104, 3, 97, 2, 100, 0>>),
    _ = gen_tcp:recv(Sock, 0, 5000),
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

handshake(Sock, Name, Cookie) ->
    {ok, <<$N, _Flags:64, _Creation:32, NLen:16, _Peer:NLen/binary,
           _/binary>>} = gen_tcp:recv(Sock, 0, 5000),
    ok = gen_tcp:send(Sock, <<"sok">>),
    Challenge = rand:uniform(16#FFFFFFFF),
    Full = list_to_binary(Name ++ "@localhost"),
    ok = gen_tcp:send(Sock, <<$N, ?FLAGS:64, Challenge:32, 7:32,
                              (byte_size(Full)):16, Full/binary>>),
    {ok, <<$r, Theirs:32, _Digest:16/binary>>} = gen_tcp:recv(Sock, 0, 5000),
    ok = gen_tcp:send(Sock, <<$a, (digest(Cookie, Theirs))/binary>>).

digest(Cookie, Challenge) ->
    erlang:md5([Cookie, integer_to_list(Challenge)]).

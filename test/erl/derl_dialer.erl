%% derl_dialer: a node that connects to a listening Emacs, written out
%% message by message, for what a real Erlang/OTP node will not do: a
%% version-5 name with the complement, a chosen answer to status alive,
%% signals addressed to a third node.
%%
%%   erl -noshell -run derl_dialer start NAME COOKIE EMACS MODE [ARG]
%%
%% NAME is the dialer's full node name, EMACS the alive part of Emacs's
%% (on localhost, found through EPMD at ERL_EPMD_PORT).  MODE:
%%   v6 | v5      handshake with that name form, then REG_SEND
%%                {self(), hello} to derl_listen_inbox
%%   alive_true   as v6, answering true to status alive
%%   alive_false  as v6, answering false to status alive
%%   relay        as v6, then a SEND to a pid of the node named ARG and
%%                an EXIT from a pid of that node, then REG_SEND hello
%%
%% Prints "dialer status S" for each status, "dialer up" and the
%% creation Emacs's challenge gave after the acknowledgement, "dialer got TERM" for each message that arrives,
%% "dialer closed" when Emacs hangs up.  Stays up for 60 s.
%%
%% Copyright (C) 2026 The derl authors
%% SPDX-License-Identifier: GPL-3.0-or-later
-module(derl_dialer).
-export([start/1]).

%% What OTP requires of a node, and the new link protocol.
-define(FLAGS, (16#4 bor 16#10 bor 16#80 bor 16#100 bor 16#200 bor 16#400
                bor 16#800 bor 16#10000 bor 16#20000 bor 16#40000
                bor 16#1000000 bor 16#2000000 bor (1 bsl 34))).
-define(CREATION, 4242).

start([Name, Cookie, Emacs, Mode | Args]) ->
    Port = port_please(Emacs),
    {ok, S} = gen_tcp:connect("localhost", Port,
                              [binary, {packet, 2}, {active, false}]),
    Me = list_to_binary(Name),
    case Mode of
        "v5" ->
            ok = gen_tcp:send(S, <<$n, 5:16, (?FLAGS band 16#ffffffff):32,
                                   Me/binary>>);
        _ ->
            ok = gen_tcp:send(S, <<$N, ?FLAGS:64, ?CREATION:32,
                                   (byte_size(Me)):16, Me/binary>>)
    end,
    status(S, Mode),
    {ok, <<$N, _Flags:64, Challenge:32, Creation:32, NLen:16,
           Peer:NLen/binary, _/binary>>} = gen_tcp:recv(S, 0, 10000),
    case Mode of
        "v5" -> ok = gen_tcp:send(S, <<$c, (?FLAGS bsr 32):32,
                                       ?CREATION:32>>);
        _ -> ok
    end,
    Mine = 987654321,
    ok = gen_tcp:send(S, <<$r, Mine:32, (digest(Cookie, Challenge))/binary>>),
    Expected = digest(Cookie, Mine),
    {ok, <<$a, Expected:16/binary>>} = gen_tcp:recv(S, 0, 10000),
    io:format("dialer up, Emacs's creation ~p~n", [Creation]),
    ok = inet:setopts(S, [{packet, 4}]),
    EmacsPid = {Peer, Creation},
    act(S, Me, list_to_atom(Mode), Args, EmacsPid),
    ok = gen_tcp:send(S, frame([reg_send_control(Me), {pid(Me), hello}])),
    listen(S).

status(S, Mode) ->
    {ok, <<$s, Status/binary>>} = gen_tcp:recv(S, 0, 10000),
    io:format("dialer status ~s~n", [Status]),
    case {Status, Mode} of
        {<<"alive">>, "alive_false"} ->
            ok = gen_tcp:send(S, <<"sfalse">>),
            listen(S);
        {<<"alive">>, _} ->
            ok = gen_tcp:send(S, <<"strue">>);
        {<<"ok">>, _} -> ok;
        _ -> listen(S)
    end.

act(S, _Me, relay, [Third], _EmacsPid) ->
    T = list_to_binary(Third),
    %% A message for a process of another node, and a signal claiming to
    %% come from one: Emacs must pass on neither.
    ok = gen_tcp:send(S, frame([{2, '', pid(T)}, relayed])),
    ok = gen_tcp:send(S, frame([{3, pid(T), pid(T), relayed_exit}]));
act(_S, _Me, _Mode, _Args, _EmacsPid) ->
    ok.

reg_send_control(Me) ->
    {6, pid(Me), '', derl_listen_inbox}.

%% A pid of node NODE (a binary), built from its external form.
pid(Node) ->
    binary_to_term(<<131, 88, 119, (byte_size(Node)), Node/binary,
                     1:32, 0:32, ?CREATION:32>>).

frame(Terms) ->
    [112 | [term_to_binary(T) || T <- Terms]].

listen(S) ->
    case gen_tcp:recv(S, 0, 60000) of
        {ok, <<>>} ->
            ok = gen_tcp:send(S, <<>>),
            listen(S);
        {ok, <<112, Rest/binary>>} ->
            {_Control, Used} = binary_to_term(Rest, [used]),
            case Used < byte_size(Rest) of
                true ->
                    <<_:Used/binary, Msg/binary>> = Rest,
                    io:format("dialer got ~p~n", [binary_to_term(Msg)]);
                false -> ok
            end,
            listen(S);
        {ok, _Other} ->
            listen(S);
        {error, _} ->
            io:format("dialer closed~n"),
            halt(0)
    end.

digest(Cookie, Challenge) ->
    erlang:md5([Cookie, integer_to_list(Challenge)]).

port_please(Alive) ->
    EpmdPort = case os:getenv("ERL_EPMD_PORT") of
                   false -> 4369;
                   P -> list_to_integer(P)
               end,
    {ok, E} = gen_tcp:connect("localhost", EpmdPort,
                              [binary, {packet, 0}, {active, false}]),
    A = list_to_binary(Alive),
    ok = gen_tcp:send(E, <<(1 + byte_size(A)):16, 122, A/binary>>),
    {ok, <<119, 0, Port:16, _/binary>>} = gen_tcp:recv(E, 0, 5000),
    gen_tcp:close(E),
    Port.

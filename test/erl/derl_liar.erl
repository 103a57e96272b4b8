%% derl_liar: a fake node that lies to Emacs on a test's behalf, and a
%% witness that shows whether anything reached a third node.
%%
%%   erl -noshell -run derl_liar start NAME COOKIE
%%
%% registers NAME with EPMD (ERL_EPMD_PORT), prints "derl_liar ready",
%% completes a real handshake with whoever connects (as derl_fake),
%% and then obeys the messages Emacs sends it: for {puppet, Frames} it
%% sends each {Control} or {Control, Message} back to Emacs as a
%% distribution frame, however false its pids, which is what a hostile
%% peer could do; {stall, Ms} among the frames stops it reading for Ms
%% milliseconds.  Ticks are answered.
%%
%% On a real node, `-s derl_liar witness' registers `witness', which
%% keeps every message it gets and every nodeup the node sees; it
%% answers {report, Pid} with Pid ! {witness, Seen}, oldest first.  It
%% prints "derl_liar witness ID SERIAL CREATION" (its pid's parts).
%%
%% Copyright (C) 2026 The derl authors
%% SPDX-License-Identifier: GPL-3.0-or-later
-module(derl_liar).
-export([start/1, witness/0]).

start([Name, Cookie]) ->
    {ok, Listen} = gen_tcp:listen(0, [binary, {packet, 2}, {active, false},
                                      {reuseaddr, true}]),
    {ok, Port} = inet:port(Listen),
    Epmd = derl_fake:register_with_epmd(Name, Port),
    io:format("derl_liar ready~n"),
    {ok, Sock} = gen_tcp:accept(Listen),
    _ = derl_fake:handshake(Sock, Name ++ "@localhost", Cookie),
    ok = inet:setopts(Sock, [{packet, 4}]),
    puppet(Sock),
    gen_tcp:close(Epmd),
    halt(0).

puppet(Sock) ->
    case gen_tcp:recv(Sock, 0, 120000) of
        {ok, <<>>} ->
            ok = gen_tcp:send(Sock, <<>>),
            puppet(Sock);
        {ok, <<112, Terms/binary>>} ->
            obey(Sock, Terms),
            puppet(Sock);
        {ok, <<131, 68, 0, Terms/binary>>} ->
            %% A distribution header naming no cached atoms: the terms
            %% follow without their version bytes.
            obey(Sock, unversioned(Terms)),
            puppet(Sock);
        {ok, _} ->
            puppet(Sock);
        {error, _} ->
            ok
    end.

%% The control term and the message of a header frame, each given the
%% version byte a pass-through frame has.
unversioned(Terms) ->
    {_, Used} = binary_to_term(<<131, Terms/binary>>, [used]),
    <<Control:(Used - 1)/binary, Message/binary>> = Terms,
    case Message of
        <<>> -> <<131, Control/binary>>;
        _ -> <<131, Control/binary, 131, Message/binary>>
    end.

%% A pass-through frame from Emacs: the control term, then the message.
obey(Sock, Terms) ->
    {_Control, Used} = binary_to_term(Terms, [used]),
    case Terms of
        <<_:Used/binary, Message/binary>> when Message =/= <<>> ->
            case binary_to_term(Message) of
                {puppet, Frames} -> [send_frame(Sock, F) || F <- Frames];
                _ -> ok
            end;
        _ ->
            ok
    end.

send_frame(_Sock, {stall, Ms}) ->
    %% Read nothing for a while: Emacs's queue to us fills.
    timer:sleep(Ms);
send_frame(Sock, {Control}) ->
    ok = gen_tcp:send(Sock, <<112, (term_to_binary(Control))/binary>>);
send_frame(Sock, {Control, Message}) ->
    ok = gen_tcp:send(Sock, <<112, (term_to_binary(Control))/binary,
                              (term_to_binary(Message))/binary>>).

witness() ->
    Pid = spawn(fun() ->
                        ok = net_kernel:monitor_nodes(true, [{node_type, all}]),
                        witness_loop([])
                end),
    register(witness, Pid),
    [_, Id, Serial] = string:lexemes(pid_to_list(Pid), "<.>"),
    io:format("derl_liar witness ~s ~s ~w~n",
              [Id, Serial, erlang:system_info(creation)]),
    ok.

witness_loop(Seen) ->
    receive
        {report, To} ->
            To ! {witness, lists:reverse(Seen)},
            witness_loop(Seen);
        Other ->
            witness_loop([Other | Seen])
    end.

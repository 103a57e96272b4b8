%% derl_flood: many connections to a listening Emacs, none of which
%% ever gets in, each claiming a node name of its own, as fast as they
%% go: what a hostile peer that does not know the cookie can do.
%%
%%   erl -noshell -run derl_flood start PORT SOURCE MODE WORKERS SECONDS PREFIX
%%
%% PORT is Emacs's listening port on 127.0.0.1, SOURCE the address the
%% connections come from (127.0.0.2 is another loopback address), PREFIX
%% the start of every claimed name: PREFIX_N@localhost, N counting from
%% 1.  WORKERS connections are under way at once for SECONDS seconds.
%% MODE:
%%   half     send the name, then close at once
%%   cookie   send the name, read the status and the challenge, answer
%%            with a wrong digest, wait for Emacs to close
%%
%% Each connection ends with a reset (linger 0), so that the flood
%% leaves no port of SOURCE in TIME_WAIT for a later program to trip on.
%%
%% Prints "flood second S connects C names N guesses G" for each second
%% S (C connections made, N names sent, G digests sent in that second),
%% then "flood done C N G" with the totals.
%%
%% Copyright (C) 2026 The derl authors
%% SPDX-License-Identifier: GPL-3.0-or-later
-module(derl_flood).
-export([start/1]).

-define(FLAGS, (16#4 bor 16#10 bor 16#80 bor 16#100 bor 16#200 bor 16#400
                bor 16#800 bor 16#10000 bor 16#20000 bor 16#40000
                bor 16#1000000 bor 16#2000000 bor (1 bsl 34))).
-define(CONNECTS, 1).
-define(NAMES, 2).
-define(GUESSES, 3).
-define(SERIAL, 4).

start([Port, Source, Mode, Workers, Seconds, Prefix]) ->
    {ok, Ip} = inet:parse_address(Source),
    C = counters:new(4, [write_concurrency]),
    End = erlang:monotonic_time(millisecond)
        + list_to_integer(Seconds) * 1000,
    Args = {list_to_integer(Port), Ip, list_to_atom(Mode), Prefix, C, End},
    Ws = [spawn_monitor(fun () -> work(Args) end)
          || _ <- lists:seq(1, list_to_integer(Workers))],
    report(C, 1, {0, 0, 0}, list_to_integer(Seconds)),
    [receive {'DOWN', R, _, _, _} -> ok end || {_, R} <- Ws],
    io:format("flood done ~p ~p ~p~n",
              [counters:get(C, ?CONNECTS), counters:get(C, ?NAMES),
               counters:get(C, ?GUESSES)]),
    halt(0).

report(_C, S, _Last, Seconds) when S > Seconds ->
    ok;
report(C, S, {C0, N0, G0}, Seconds) ->
    timer:sleep(1000),
    Now = {counters:get(C, ?CONNECTS), counters:get(C, ?NAMES),
           counters:get(C, ?GUESSES)},
    {C1, N1, G1} = Now,
    io:format("flood second ~p connects ~p names ~p guesses ~p~n",
              [S, C1 - C0, N1 - N0, G1 - G0]),
    report(C, S + 1, Now, Seconds).

work({Port, Ip, Mode, Prefix, C, End} = Args) ->
    case erlang:monotonic_time(millisecond) < End of
        false -> ok;
        true ->
            case gen_tcp:connect({127, 0, 0, 1}, Port,
                                 [binary, {packet, 2}, {active, false},
                                  {ip, Ip}, {linger, {true, 0}}], 5000) of
                {ok, S} ->
                    counters:add(C, ?CONNECTS, 1),
                    counters:add(C, ?SERIAL, 1),
                    Name = iolist_to_binary(
                             [Prefix, $_,
                              integer_to_list(counters:get(C, ?SERIAL)),
                              "@localhost"]),
                    attempt(S, Mode, Name, C),
                    gen_tcp:close(S);
                {error, _} ->
                    timer:sleep(1)
            end,
            work(Args)
    end.

attempt(S, Mode, Name, C) ->
    case gen_tcp:send(S, <<$N, ?FLAGS:64, 1:32, (byte_size(Name)):16,
                           Name/binary>>) of
        ok ->
            counters:add(C, ?NAMES, 1),
            case Mode of
                half -> ok;
                cookie -> guess(S, C)
            end;
        _ -> ok
    end.

guess(S, C) ->
    case gen_tcp:recv(S, 0, 5000) of
        {ok, <<$s, "ok">>} ->
            case gen_tcp:recv(S, 0, 5000) of
                {ok, <<$N, _:64, _Challenge:32, _/binary>>} ->
                    case gen_tcp:send(S, <<$r, 1:32, 0:128>>) of
                        ok ->
                            counters:add(C, ?GUESSES, 1),
                            gen_tcp:recv(S, 0, 5000);
                        _ -> ok
                    end;
                _ -> ok
            end;
        _ -> ok
    end.

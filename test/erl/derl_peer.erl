%% derl_peer: the Erlang side of the connection tests and the demo.
%%
%% Started with `-s derl_peer start', it registers `echo' and prints
%% "derl_peer ready" when it is.  `echo' understands:
%%   {Pid, Msg}              -> Pid ! Msg
%%   {stream, Pid, N}        -> Pid ! {seq, I} for I in 1..N, then Pid ! done
%%   {link, Pid}             -> link to Pid (from a fresh process that
%%                              reports exits to Pid as {linked_exit, Reason})
%%   {exit, Pid, Reason}     -> exit(Pid, Reason)
%%   {count, Pid, N}         -> receive N messages {n, I}; Pid ! {counted, Ok}
%%   {monitor, Pid}          -> monitor Pid, report `monitoring', then
%%                              report the 'DOWN' to the tester
%%   {register_tester, Pid}  -> remember Pid for reports
%%   {big, Pid, Bytes}       -> Pid ! a binary of Bytes bytes
%%   {spawn_plain, Pid}      -> Pid ! {plain, P}: P links to nobody, dies
%%                              on `die' and answers {links, To} with
%%                              To ! {links, P, ItsLinks}
%%   {spawn_trapper, Pid}    -> Pid ! {trapper, P}: P traps exits and
%%                              sends Pid {trapped, Msg} for each message
%%   {after_death, P, Pid}   -> Pid ! {watching, P} once P is monitored,
%%                              then Pid ! {dead, P, Reason} when it dies
%%   {spawn_request, Node, Pid}
%%                           -> ask Node to spawn a process
%%                              (erlang:spawn_request/5); Pid gets
%%                              {spawn_reply, Result, Reason}
%%
%% Copyright (C) 2026 The derl authors
%% SPDX-License-Identifier: GPL-3.0-or-later
-module(derl_peer).
-export([start/0, echo_loop/1, round_trip/2, stream/2]).

start() ->
    process_flag(trap_exit, true),
    register(echo, spawn(fun() -> echo_loop(undefined) end)),
    io:format("derl_peer ready~n"),
    ok.

echo_loop(Tester) ->
    receive
        {register_tester, Pid} ->
            echo_loop(Pid);
        {stream, Pid, N} ->
            stream(Pid, N),
            echo_loop(Tester);
        {link, Pid} ->
            Self = self(),
            spawn(fun() ->
                          process_flag(trap_exit, true),
                          link(Pid),
                          Self ! {linked, Pid},
                          receive
                              {'EXIT', Pid, Reason} ->
                                  report(Tester, {linked_exit, Reason})
                          end
                  end),
            echo_loop(Tester);
        {linked, _} ->
            report(Tester, linked),
            echo_loop(Tester);
        {exit, Pid, Reason} ->
            exit(Pid, Reason),
            echo_loop(Tester);
        {spawn_linked, Pid} ->
            %% A process linked to Pid that dies when asked.  It says so
            %% itself after linking: its LINK then arrives first.
            spawn(fun() ->
                          link(Pid),
                          Pid ! {spawned, self()},
                          receive die -> exit(died) end
                  end),
            echo_loop(Tester);
        {spawn_plain, Pid} ->
            %% A process not linked to anyone, that dies when asked.
            P = spawn(fun plain_loop/0),
            Pid ! {plain, P},
            echo_loop(Tester);
        {spawn_trapper, Pid} ->
            %% The trapper announces itself once it traps exits: an
            %% exit signal sent on its announcement must find it ready.
            spawn(fun() ->
                          process_flag(trap_exit, true),
                          Pid ! {trapper, self()},
                          trapper_loop(Pid)
                  end),
            echo_loop(Tester);
        {after_death, P, Pid} ->
            spawn(fun() ->
                          Ref = erlang:monitor(process, P),
                          Pid ! {watching, P},
                          receive
                              {'DOWN', Ref, process, P, Reason} ->
                                  Pid ! {dead, P, Reason}
                          end
                  end),
            echo_loop(Tester);
        {spawn_request, Node, Pid} ->
            spawn(fun() -> request_spawn(Node, Pid) end),
            echo_loop(Tester);
        {count, Pid, N} ->
            Pid ! {counted, count(1, N)},
            echo_loop(Tester);
        {monitor, Pid} ->
            Ref = erlang:monitor(process, Pid),
            %% The MONITOR_P went out before this report.
            report(Tester, monitoring),
            receive
                {'DOWN', Ref, process, Pid, Reason} ->
                    report(Tester, {down, Reason})
            after 10000 ->
                    report(Tester, no_down)
            end,
            echo_loop(Tester);
        {big, Pid, Bytes} ->
            Pid ! {big, crypto_free(Bytes)},
            echo_loop(Tester);
        {Pid, Msg} when is_pid(Pid) ->
            Pid ! Msg,
            echo_loop(Tester);
        _ ->
            echo_loop(Tester)
    end.

plain_loop() ->
    receive
        die ->
            exit(died);
        {links, To} ->
            {links, Links} = process_info(self(), links),
            To ! {links, self(), Links},
            plain_loop()
    end.

trapper_loop(Pid) ->
    receive Msg -> Pid ! {trapped, Msg} end,
    trapper_loop(Pid).

%% The reply to a spawn request, as the requesting process sees it.
request_spawn(Node, Pid) ->
    ReqId = erlang:spawn_request(Node, erlang, self, [], []),
    receive
        {spawn_reply, ReqId, Result, Reason} ->
            Pid ! {spawn_reply, Result, Reason}
    after 10000 ->
            Pid ! {spawn_reply, timeout, none}
    end.

report(undefined, _) -> ok;
report(Pid, Msg) -> Pid ! Msg.

stream(Pid, N) ->
    [Pid ! {seq, I} || I <- lists:seq(1, N)],
    Pid ! done.

count(I, N) when I > N -> ok;
count(I, N) ->
    receive
        {n, I} -> count(I + 1, N);
        {n, Other} -> {out_of_order, I, Other}
    after 10000 -> {timeout, I}
    end.

crypto_free(Bytes) ->
    binary:copy(<<"0123456789abcdef">>, Bytes div 16).

%% For the benchmark: N round trips to the `echo' of Node, in microseconds.
round_trip(Node, N) ->
    Self = self(),
    {T, ok} = timer:tc(fun() -> rt(Node, Self, N) end),
    T.

rt(_, _, 0) -> ok;
rt(Node, Self, N) ->
    {echo, Node} ! {Self, ping},
    receive ping -> rt(Node, Self, N - 1) end.

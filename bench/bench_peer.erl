%% bench_peer --- the Erlang side of derl's connection benchmarks.
%%
%% Started with `-s bench_peer start' on a node that also runs
%% derl_peer (whose `echo' the round trips go to), it registers
%% `bench' and `stamp'.  `bench' understands:
%%   {rt, From, Node, N}    -> N round trips from here to `echo' on
%%                             Node; From ! {rt, Microseconds}
%%   {rpc, From, Node, N}   -> N rpc:call(Node, erlang, node, []);
%%                             From ! {rpc, Microseconds}
%%   {stream, From, N}      -> From ! {seq, I} for I in 1..N, then
%%                             From ! done
%%   {stream_to, Dest, N}   -> the same to Dest, a pid or {Name, Node}
%%                             (the sender every receiver of the
%%                             stream comparison gets)
%%   {sink, Ready, Report, Name}
%%                          -> register Name for a new process that
%%                             counts {seq, I} until done, then does
%%                             Report ! {sunk, [Received, Disordered,
%%                             Micros]}, Micros os:system_time/1 at
%%                             done; Ready ! {sink, ok} once registered
%%   {big, From, Bytes}     -> From ! {big, Binary} of Bytes bytes
%%   {size, From, Term}     -> From ! {size, byte_size(Term)} for a
%%                             binary, or {size, not_a_binary}
%% `stamp' answers {From, ping} with From ! {pong, T}, T the time in
%% microseconds (os:system_time/1) at which it got the ping.
%%
%% Copyright (C) 2026 The derl authors
%% SPDX-License-Identifier: GPL-3.0-or-later
-module(bench_peer).
-export([start/0, bench_loop/0, stamp_loop/0]).

start() ->
    register(bench, spawn(fun bench_loop/0)),
    register(stamp, spawn(fun stamp_loop/0)),
    ok.

bench_loop() ->
    receive
        {rt, From, Node, N} ->
            From ! {rt, derl_peer:round_trip(Node, N)};
        {rpc, From, Node, N} ->
            {T, ok} = timer:tc(fun() -> rpc_calls(Node, N) end),
            From ! {rpc, T};
        {stream, From, N} ->
            derl_peer:stream(From, N);
        {stream_to, Dest, N} ->
            stream_to(Dest, 1, N);
        {sink, Ready, Report, Name} ->
            register(Name, spawn(fun() -> sink(Report, 1, 0, 0) end)),
            Ready ! {sink, ok};
        {big, From, Bytes} ->
            From ! {big, payload(Bytes)};
        {size, From, Bin} when is_binary(Bin) ->
            From ! {size, byte_size(Bin)};
        {size, From, _} ->
            From ! {size, not_a_binary};
        _ ->
            ok
    end,
    %% A big payload must not stay referenced from this loop's stack.
    erlang:garbage_collect(),
    ?MODULE:bench_loop().

stamp_loop() ->
    receive
        {From, ping} ->
            From ! {pong, os:system_time(microsecond)};
        _ ->
            ok
    end,
    stamp_loop().

stream_to(Dest, I, N) when I > N ->
    Dest ! done;
stream_to(Dest, I, N) ->
    Dest ! {seq, I},
    stream_to(Dest, I + 1, N).

sink(Report, Next, Received, Disordered) ->
    receive
        {seq, I} when I =:= Next ->
            sink(Report, I + 1, Received + 1, Disordered);
        {seq, I} ->
            sink(Report, I + 1, Received + 1, Disordered + 1);
        done ->
            Report ! {sunk, [Received, Disordered,
                             os:system_time(microsecond)]}
    end.

rpc_calls(_, 0) ->
    ok;
rpc_calls(Node, N) ->
    Node = rpc:call(Node, erlang, node, []),
    rpc_calls(Node, N - 1).

payload(Bytes) ->
    Block = <<"0123456789abcdef">>,
    iolist_to_binary([binary:copy(Block, Bytes div 16),
                      binary:part(Block, 0, Bytes rem 16)]).

%% derl_rpc_helper: the Erlang side of derl-rpc-tests.el.
%%
%%   watch(Target)        a process monitoring Target (pid or {Name, Node});
%%                        returns its pid once the monitor is set
%%   down(Watcher)        the DOWN reason Watcher saw, or none
%%   try_spawn(N, M, F, A) spawn_request to node N with link and monitor:
%%                        {ok, Pid} or {error, Reason}
%%   io_request(GL, Req)  send an I/O request to GL; its reply
%%
%% Copyright (C) 2026 The derl authors
%% SPDX-License-Identifier: GPL-3.0-or-later
-module(derl_rpc_helper).
-export([watch/1, down/1, try_spawn/4, io_request/2]).

watch(Target) ->
    Self = self(),
    Pid = spawn(fun() ->
                        Ref = erlang:monitor(process, Target),
                        Self ! {ready, self()},
                        receive
                            {'DOWN', Ref, process, _, Reason} -> hold(Reason)
                        end
                end),
    receive {ready, Pid} -> Pid end.

hold(Reason) ->
    receive
        {get, From} -> From ! {down, Reason}, hold(Reason)
    end.

down(Watcher) ->
    Watcher ! {get, self()},
    receive {down, Reason} -> Reason after 2000 -> none end.

try_spawn(Node, M, F, A) ->
    Ref = erlang:spawn_request(Node, M, F, A, [monitor]),
    receive
        {spawn_reply, Ref, ok, Pid} -> {ok, Pid};
        {spawn_reply, Ref, error, Reason} -> {error, Reason}
    after 5000 -> timeout
    end.

io_request(GL, Request) ->
    Ref = make_ref(),
    GL ! {io_request, self(), Ref, Request},
    receive {io_reply, Ref, Reply} -> Reply after 5000 -> timeout end.

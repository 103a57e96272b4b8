%% derl_rogue: an Erlang program that registers with EPMD as a node,
%% completes a real handshake with whoever connects, and then sends a
%% malformed distribution frame, to check that derl closes just that
%% connection with a clear reason.
%%
%%   erl -noshell -run derl_rogue start NAME COOKIE
%%
%% Prints "derl_rogue ready" once registered.  Uses ERL_EPMD_PORT.
%% The work is derl_fake's, in its mode cut_short.
%%
%% Copyright (C) 2026 The derl authors
%% SPDX-License-Identifier: GPL-3.0-or-later
-module(derl_rogue).
-export([start/1]).

start([Name, Cookie]) ->
    derl_fake:run(Name, Cookie, "cut_short", "derl_rogue ready").

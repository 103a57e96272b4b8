%% derl_distel_debuggee: code for the Distel tests to debug, find and reload.
%%
%% Copyright (C) 2026 The derl authors
%% SPDX-License-Identifier: GPL-3.0-or-later
-module(derl_distel_debuggee).
-compile(debug_info).
-export([add/2, twice/1, talk/1]).

add(A, B) ->
    Sum = A + B,
    twice(Sum).

twice(X) ->
    X * 2.

%% Print Text through the group leader, as code called from Emacs does.
talk(Text) ->
    io:format("~ts~n", [Text]).

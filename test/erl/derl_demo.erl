%% derl_demo: the Erlang side of `make demo'.
%%
%% Copyright (C) 2026 The derl authors
%% SPDX-License-Identifier: GPL-3.0-or-later
-module(derl_demo).
-export([terms/1, check/1]).

%% Write a few showcase terms, one record each, to File.
terms([File]) ->
    Port = open_port({spawn, "true"}, []),
    Terms = [{hello, "from", <<"Erlang">>, 42},
             #{name => <<"derl">>, version => {0, 1}, tags => [fast, safe]},
             [self(), make_ref(), Port],
             {float, 3.14159, big, 1 bsl 100, negative, -7},
             {improper, [1, 2 | tail], bits, <<5:3>>},
             {unicode, 'caf\x{e9}', "日本語", <<"日本語"/utf8>>},
             {funs, fun lists:map/2, fun(X) -> X * 2 end}],
    Bins = [term_to_binary(T) || T <- Terms],
    ok = file:write_file(File, [<<(byte_size(B)):32, B/binary>> || B <- Bins]),
    halt(0).

%% Compare the originals with what Emacs encoded back.
check([OrigFile, ReFile]) ->
    Orig = records(read(OrigFile)),
    Re = records(read(ReFile)),
    Same = [binary_to_term(O) =:= binary_to_term(R)
            || {O, R} <- lists:zip(Orig, Re)],
    io:format("Erlang checked ~b terms re-encoded by Emacs: ~b identical~n",
              [length(Same), length([S || S <- Same, S])]),
    halt(case lists:all(fun(S) -> S end, Same) of true -> 0; false -> 1 end).

read(File) -> {ok, Bin} = file:read_file(File), Bin.

records(<<>>) -> [];
records(<<N:32, B:N/binary, Rest/binary>>) -> [B | records(Rest)].

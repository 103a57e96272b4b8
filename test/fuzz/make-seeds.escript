#!/usr/bin/env escript
%% Copyright (C) 2026 The derl authors
%% SPDX-License-Identifier: GPL-3.0-or-later
%% make-seeds.escript --- write the fuzz seed corpus for fuzz_etf.
%%
%%   escript test/fuzz/make-seeds.escript
%%
%% Every seed is the output of term_to_binary on a real node, except the
%% "hand-*" seeds (old tags that today's encoder no longer emits, each
%% checked here with binary_to_term) and the "cache-*" seeds (a first
%% byte below 131 tells fuzz_etf to give the reader an atom cache table,
%% and the term then uses ATOM_CACHE_REF, which only the distribution
%% header can resolve).

main(_) ->
    Dir = filename:join(filename:dirname(escript:script_name()), "seeds"),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    [file:delete(F) || F <- filelib:wildcard(filename:join(Dir, "*.etf"))],
    Funs = compile_funs(),
    Seeds = terms(Funs) ++ hand_made() ++ cache_refs(),
    lists:foreach(fun({Name, Bin}) ->
                          ok = file:write_file(
                                 filename:join(Dir, Name ++ ".etf"), Bin)
                  end, Seeds),
    Total = lists:sum([byte_size(B) || {_, B} <- Seeds]),
    io:format("~w seeds, ~w bytes, in ~s~n", [length(Seeds), Total, Dir]).

%% A module compiled here rather than the escript's own funs: escript
%% names its module afresh on every run, and the seeds should not change.
compile_funs() ->
    Src = "-module(derl_seed_funs).
           -export([adder/1, nested/1, closed/0, holder/2]).
           adder(X) -> fun(Y) -> X + Y end.
           nested(X) -> F = fun() -> X end, fun(Z) -> {F, Z} end.
           closed() -> fun() -> ok end.
           holder(P, R) -> fun() -> {P, R, self()} end.",
    {ok, Tokens, _} = erl_scan:string(Src),
    Forms = split_forms(Tokens, [], []),
    {ok, Mod, Beam} = compile:forms(Forms, [binary]),
    {module, Mod} = code:load_binary(Mod, "derl_seed_funs.erl", Beam),
    Mod.

split_forms([], [], Acc) ->
    lists:reverse(Acc);
split_forms([{dot, _} = Dot | Rest], Cur, Acc) ->
    {ok, Form} = erl_parse:parse_form(lists:reverse([Dot | Cur])),
    split_forms(Rest, [], [Form | Acc]);
split_forms([T | Rest], Cur, Acc) ->
    split_forms(Rest, [T | Cur], Acc).

remote_pid() ->
    binary_to_term(<<131, 88, 119, 9, "derl@host", 7:32, 1:32, 16#5eed:32>>).
remote_port() ->
    binary_to_term(<<131, 89, 119, 9, "derl@host", 42:32, 16#5eed:32>>).
remote_v4_port() ->
    binary_to_term(<<131, 120, 119, 9, "derl@host", 16#123456789a:64,
                     16#5eed:32>>).
remote_ref(Words) ->
    Ids = << <<N:32>> || N <- lists:seq(1, Words) >>,
    binary_to_term(<<131, 90, Words:16, 119, 9, "derl@host", 16#5eed:32,
                     Ids/binary>>).

terms(M) ->
    LongAtom = list_to_atom(lists:duplicate(255, $a)),
    LongUtf8Atom = list_to_atom(lists:duplicate(255, 16#1F600)),
    Floats = [1.5, -0.0, 0.1, 1.0e300, -2.5e-308, 5.0e-324, 123456789.125],
    BigMap = maps:from_list([{K, K * K} || K <- lists:seq(1, 40)]),
    Deep = lists:foldl(fun(_, Acc) -> [Acc] end, [], lists:seq(1, 200)),
    DeepTuple = lists:foldl(fun(I, Acc) -> {I, Acc} end, nil,
                            lists:seq(1, 100)),
    Mixed = {[1, 2.5, atom, "str", <<"bin">>, <<5:3>>],
             #{key => {self(), make_ref()}, 3 => [x | y]},
             fun lists:map/2, M:adder(1), -(1 bsl 100)},
    Plain =
        [{"int-small", 42},
         {"int-boundaries", [0, 255, 256, -1, -16#80000000, 16#7fffffff,
                             16#80000000, -16#80000001]},
         {"big-int64", [16#7fffffffffffffff, -16#8000000000000000,
                        1 bsl 63, -(1 bsl 64), 1 bsl 64]},
         {"big-large", [1 bsl 2100, -(1 bsl 2100) + 1]},
         {"float-new", Floats},
         {"atom-latin1", ['abc', 'héllo', '', true]},
         {"atom-long", LongAtom},
         {"nil", []},
         {"string", "hello, world"},
         {"list", [a, 1000, "x", <<>>, {}]},
         {"list-improper", [1, 2 | 3]},
         {"list-improper-atom", [a | b]},
         {"tuple", {1, a, {}, {{}}}},
         {"tuple-large", list_to_tuple(lists:seq(1, 300))},
         {"map", #{a => 1, "k" => [1], {t} => #{}}},
         {"map-large", BigMap},
         {"binary", <<1, 2, 3>>},
         {"binary-empty", <<>>},
         {"binary-1k", list_to_binary(lists:duplicate(1000, 7))},
         {"bitstring", [<<1, 2, 3:3>>, <<1:1>>, <<255, 127:7>>]},
         {"pid-local", self()},
         {"pid-remote", remote_pid()},
         {"port-local", hd(erlang:ports())},
         {"port-remote", remote_port()},
         {"port-v4", remote_v4_port()},
         {"ref-local", make_ref()},
         {"ref-remote", [remote_ref(1), remote_ref(3), remote_ref(5)]},
         {"fun-free-var", M:adder(5)},
         {"fun-nested", M:nested(7)},
         {"fun-closed", M:closed()},
         {"fun-holder", M:holder(remote_pid(), remote_ref(3))},
         {"export", [fun lists:map/2, fun erlang:'+'/2]},
         {"deep-list", Deep},
         {"deep-tuple", DeepTuple},
         {"mixed", Mixed}],
    [{Name, term_to_binary(T)} || {Name, T} <- Plain]
        ++ [{"float-old", term_to_binary(Floats, [{minor_version, 0}])},
            {"atom-utf8", term_to_binary(['héllo', 'ẞ', LongUtf8Atom],
                                         [{minor_version, 2}])},
            {"compressed-list",
             term_to_binary(lists:duplicate(100, {a, 1}), [compressed])},
            {"compressed-string",
             term_to_binary(lists:duplicate(2000, $z), [{compressed, 9}])},
            {"compressed-mixed", term_to_binary({Mixed, Mixed, Mixed},
                                                [compressed])}].

%% Old encodings that term_to_binary no longer writes but a peer may.
hand_made() ->
    Node = <<100, 0, 9, "derl@host">>,
    Seeds =
        [{"hand-pid-ext", <<131, 103, Node/binary, 7:32, 1:32, 2>>},
         {"hand-port-ext", <<131, 102, Node/binary, 42:32, 2>>},
         {"hand-reference-ext", <<131, 101, Node/binary, 9:32, 2>>},
         {"hand-new-reference-ext",
          <<131, 114, 3:16, Node/binary, 2, 1:32, 2:32, 3:32>>},
         {"hand-small-atom", <<131, 115, 3, "abc">>},
         {"hand-list-utf8-atoms",
          <<131, 108, 2:32, 118, 2:16, "ok", 119, 2, 195, 169, 106>>}],
    [begin _ = binary_to_term(B), S end || {_, B} = S <- Seeds].

cache_refs() ->
    [{"cache-tuple", <<3, 131, 104, 3, 82, 0, 82, 1, 82, 2>>},
     {"cache-pid", <<2, 131, 88, 82, 1, 7:32, 0:32, 1:32>>},
     {"cache-export", <<4, 131, 113, 82, 0, 82, 3, 97, 2>>}].

%% derl_oracle: Erlang as the oracle for derl's term codec.
%%
%% generate: seeded random terms of every type, written with
%%   term_to_binary (several encodings) to a file of length-prefixed
%%   records.
%% verify: reads that file and the one Emacs wrote back (each term
%%   decoded and re-encoded) and checks binary_to_term(Reencoded) =:=
%%   Original for every one.
%% check_values: reads pairs of (Erlang expression, encoding made by
%%   Emacs) and checks each decodes to the expression's value, or
%%   satisfies it when the expression is a fun.
%%
%% Copyright (C) 2026 The derl authors
%% SPDX-License-Identifier: GPL-3.0-or-later
-module(derl_oracle).
-export([generate/1, verify/1, check_values/1, loop_fun/1]).

%% Process aliases came in OTP 24; before, an alias is a plain reference.
-if(?OTP_RELEASE >= 24).
-define(ALIAS(), alias()).
-else.
-define(ALIAS(), make_ref()).
-endif.

%% ------------------------------------------------------------------
%% Entry points, called with -run derl_oracle F Arg...

generate([SeedS, CountS, Out]) ->
    Seed = list_to_integer(SeedS),
    Count = list_to_integer(CountS),
    rand:seed(exsss, {Seed, Seed * 7 + 1, Seed * 13 + 2}),
    Env = env(),
    Records = [record(encode(gen(Env, 4), N)) || N <- lists:seq(1, Count)],
    ok = file:write_file(Out, Records),
    io:format("generated ~b~n", [Count]),
    halt(0).

verify([OrigFile, ReFile]) ->
    Orig = records(read(OrigFile)),
    Re = records(read(ReFile)),
    case length(Orig) =:= length(Re) of
        false ->
            io:format("count mismatch: ~b originals, ~b re-encoded~n",
                      [length(Orig), length(Re)]),
            halt(1);
        true ->
            Bad = [{N, O, R} || {N, O, R} <- lists:zip3(lists:seq(1, length(Orig)),
                                                        Orig, Re),
                                not same(O, R)],
            [io:format("MISMATCH ~b: ~P~n   got ~P~n",
                       [N, binary_to_term(O), 12, safe_decode(R), 12])
             || {N, O, R} <- lists:sublist(Bad, 10)],
            io:format("verified ~b, ~b mismatches~n",
                      [length(Orig), length(Bad)]),
            halt(case Bad of [] -> 0; _ -> 1 end)
    end.

check_values([File]) ->
    Pairs = pairs(records(read(File))),
    Results = [check_one(Expr, Bin) || {Expr, Bin} <- Pairs],
    Bad = [R || R <- Results, R =/= ok],
    [io:format("~ts~n", [R]) || R <- Bad],
    io:format("checked ~b, ~b failed~n", [length(Results), length(Bad)]),
    halt(case Bad of [] -> 0; _ -> 1 end).

%% ------------------------------------------------------------------
%% Files: records of <<Length:32, Bytes/binary>>

record(Bin) -> <<(byte_size(Bin)):32, Bin/binary>>.

records(<<>>) -> [];
records(<<N:32, Bin:N/binary, Rest/binary>>) -> [Bin | records(Rest)].

pairs([]) -> [];
pairs([E, B | Rest]) -> [{E, B} | pairs(Rest)].

read(File) -> {ok, Bin} = file:read_file(File), Bin.

same(Orig, Re) ->
    try binary_to_term(Re) =:= binary_to_term(Orig)
    catch _:_ -> false
    end.

safe_decode(Bin) ->
    try binary_to_term(Bin) catch _:_ -> {undecodable, Bin} end.

check_one(ExprBin, Bin) ->
    Expr = unicode:characters_to_list(ExprBin),
    try
        {ok, Tokens, _} = erl_scan:string(Expr ++ "."),
        {ok, Exprs} = erl_parse:parse_exprs(Tokens),
        {value, Expected, _} = erl_eval:exprs(Exprs, []),
        Got = binary_to_term(Bin),
        Ok = case is_function(Expected, 1) of
                 true -> Expected(Got) =:= true;
                 false -> Got =:= Expected
             end,
        case Ok of
            true -> ok;
            false -> io_lib:format("FAIL ~ts: got ~P", [Expr, Got, 20])
        end
    catch C:E ->
            io_lib:format("FAIL ~ts: ~p:~P", [Expr, C, E, 20])
    end.

%% ------------------------------------------------------------------
%% Random terms

%% Things only a live node has: pids, ports, references, funs.
env() ->
    Port = open_port({spawn, "true"}, []),
    Pid = spawn(fun() -> receive stop -> ok end end),
    N = rand:uniform(1000),
    #{pids => [self(), Pid, whereis(init), list_to_pid("<0.4242.7>")],
      ports => [Port | erlang:ports()],
      refs => [make_ref(), make_ref(), erlang:monitor(process, Pid),
               ?ALIAS()],
      funs => [fun(X) -> X + N end,
               fun loop_fun/1,
               loop_fun(N),
               loop_fun({Pid, <<"free">>, [1, 2]}),
               fun lists:map/2,
               fun erlang:self/0]}.

%% A fun with a free variable, compiled.
loop_fun(Free) -> fun(Y) -> {Free, Y} end.

encode(Term, N) ->
    Opts = case N rem 6 of
               0 -> [compressed];
               1 -> [{minor_version, 0}];
               2 -> [{minor_version, 2}];
               3 -> [{compressed, 9}, {minor_version, 0}];
               _ -> []
           end,
    term_to_binary(Term, Opts).

pick(List) -> lists:nth(rand:uniform(length(List)), List).

gen(Env, 0) -> leaf(Env);
gen(Env, Depth) ->
    case rand:uniform(10) of
        N when N =< 4 -> leaf(Env);
        5 -> [gen(Env, Depth - 1) || _ <- lists:seq(1, rand:uniform(6) - 1)];
        6 -> list_to_tuple([gen(Env, Depth - 1)
                            || _ <- lists:seq(1, rand:uniform(5) - 1)]);
        7 -> maps:from_list([{gen(Env, Depth - 1), gen(Env, Depth - 1)}
                             || _ <- lists:seq(1, rand:uniform(5) - 1)]);
        8 -> improper(Env, Depth);
        9 -> #{nested => #{map => gen(Env, Depth - 1),
                           gen(Env, Depth - 1) => #{}}};
        10 ->
            case rand:uniform(40) of
                1 -> big_container(Env);
                _ -> leaf(Env)
            end
    end.

improper(Env, Depth) ->
    Tail = case rand:uniform(4) of
               1 -> atom();
               2 -> rand:uniform(100);
               3 -> <<"tail">>;
               4 -> {gen(Env, Depth - 1)}
           end,
    lists:foldl(fun(_, Acc) -> [gen(Env, Depth - 1) | Acc] end, Tail,
                lists:seq(1, rand:uniform(3))).

big_container(Env) ->
    case rand:uniform(6) of
        1 -> list_to_tuple([leaf(Env) || _ <- lists:seq(1, 300)]);
        2 -> maps:from_list([{K, leaf(Env)} || K <- lists:seq(1, 40)]);
        3 -> lists:duplicate(70000, $a);  % longer than STRING_EXT holds
        4 -> [rand:uniform(16#10FFFF) || _ <- lists:seq(1, 70000)];
        5 -> crypto_free_bytes(200000);
        6 -> [leaf(Env) || _ <- lists:seq(1, 500)]
    end.

crypto_free_bytes(N) -> << <<(rand:uniform(256) - 1)>> || _ <- lists:seq(1, N) >>.

leaf(Env) ->
    case rand:uniform(16) of
        1 -> rand:uniform(256) - 1;
        2 -> integer();
        3 -> float();
        4 -> atom();
        5 -> string();
        6 -> crypto_free_bytes(rand:uniform(40) - 1);
        7 -> bitstring();
        8 -> pick(maps:get(pids, Env));
        9 -> pick(maps:get(ports, Env));
        10 -> pick(maps:get(refs, Env));
        11 -> pick(maps:get(funs, Env));
        12 -> [];
        13 -> {};
        14 -> #{};
        15 -> unicode_string();
        16 -> <<>>
    end.

integer() ->
    pick([0, 255, 256, -1, -256, 2147483647, -2147483648, 2147483648,
          -2147483649, 9223372036854775807, -9223372036854775808,
          9223372036854775808, 1 bsl 64, -(1 bsl 64) + 1,
          rand:uniform(1 bsl 40) - (1 bsl 39),
          rand:uniform(1 bsl 200) - (1 bsl 199),
          (1 bsl 2040) + rand:uniform(1000),
          -(1 bsl 3000) - rand:uniform(1000)]).

float() ->
    pick([0.0, 1.5, -2.25, 1.0e300, -1.0e-300, 5.0e-324, 2.2250738585072009e-308,
          1.7976931348623157e308, math:pi(),
          rand:uniform() * 1.0e10 - 5.0e9,
          rand:normal() * 1.0e-200]).

atom() ->
    pick(['', a, true, false, undefined, 'hello world', 'UPPER', 'with\'quote',
          'caf\x{e9}', list_to_atom([16#65e5, 16#672c]),
          list_to_atom([16#1F600, $x]),
          list_to_atom(lists:duplicate(255, $z)),
          list_to_atom(lists:duplicate(255, 16#e9)),
          list_to_atom(lists:duplicate(200, 16#4e2d)),
          'node@host.example', erlang:node()]).

string() ->
    [rand:uniform(255) || _ <- lists:seq(1, rand:uniform(30))].

unicode_string() ->
    [pick([$a, 16#e9, 16#4e2d, 16#1F600, 16#10FFFF, 16#7FF, 16#800])
     || _ <- lists:seq(1, rand:uniform(20))].

bitstring() ->
    Bits = rand:uniform(7),
    Bytes = crypto_free_bytes(rand:uniform(10) - 1),
    <<Bytes/binary, (rand:uniform(1 bsl Bits) - 1):Bits>>.

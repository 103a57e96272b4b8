%% bench_corpus --- the fixed corpus for derl's codec benchmark.
%%
%% Writes, for every item NAME, DIR/NAME.etf (term_to_binary of the term)
%% and DIR/NAME.json (the equivalent JSON document) plus DIR/README.txt
%% saying what each item is.  The corpus is deterministic: the random
%% numbers come from a fixed seed, so every run writes the same bytes.
%%
%% The JSON equivalent of a term: tuple -> array, list -> array,
%% atom -> string (true and false -> JSON booleans), binary -> string,
%% map with binary keys -> object, integer and float -> number.  JSON
%% cannot hold raw bytes, so the `binary' item's JSON is a string of as
%% many printable ASCII characters instead.
%%
%%   erl -noshell -pa build/bench-ebin -s bench_corpus main bench/corpus
%%
%% Copyright (C) 2026 The derl authors
%% SPDX-License-Identifier: GPL-3.0-or-later

-module(bench_corpus).
-export([main/0, main/1, write/1, items/0]).

main() ->
    main(["bench/corpus"]).

%% From `erl -s bench_corpus main DIR': DIR arrives as an atom.
main([Dir]) ->
    try
        write(to_list(Dir)),
        halt(0)
    catch Class:Reason:Stack ->
            io:format(standard_error, "bench_corpus: ~p:~p~n~p~n",
                      [Class, Reason, Stack]),
            halt(1)
    end.

to_list(A) when is_atom(A) -> atom_to_list(A);
to_list(L) when is_list(L) -> L.

write(Dir) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Readme =
        [begin
             %% minor_version 2: UTF-8 atoms, the default from OTP 26 on
             %% and what derl writes.
             Etf = term_to_binary(Term, [{minor_version, 2}]),
             Json = iolist_to_binary(json(JsonTerm)),
             ok = file:write_file(filename:join(Dir, Name ++ ".etf"), Etf),
             ok = file:write_file(filename:join(Dir, Name ++ ".json"), Json),
             io:format("bench_corpus: ~-8s ~9b bytes ETF, ~9b bytes JSON~n",
                       [Name, byte_size(Etf), byte_size(Json)]),
             io_lib:format("~s: ~s~n", [Name, Doc])
         end || {Name, Doc, Term, JsonTerm} <- items()],
    ok = file:write_file(filename:join(Dir, "README.txt"),
                         ["derl codec benchmark corpus, written by "
                          "bench/bench_corpus.erl (fixed seed).\n\n"
                          | Readme]).

%% [{Name, Description, Term, JsonTerm}]: JsonTerm is what the JSON file
%% holds, the same as Term except where JSON cannot say it.
items() ->
    _ = rand:seed(exsss, {1, 2, 3}),
    Records = records(10000),
    Bin = random_bytes(8 * 1024 * 1024),
    Tree = tree(16),
    Nested = [nested(1000, K) || K <- lists:seq(1, 50)],
    Ints = [rand:uniform(100000) - 1 || _ <- lists:seq(1, 100000)],
    Strings = [text(K) || K <- lists:seq(1, 20000)],
    [{"records",
      "10,000 records {person, Id, Name, Age, Score, Tags, "
      "#{city, zip}, Bool}: atoms, integers, binaries, floats, lists, "
      "maps (the headline item)",
      Records, Records},
     {"binary",
      "one 8 MiB binary of pseudo-random bytes; its JSON is a string of "
      "8 MiB printable ASCII characters, since JSON cannot hold raw bytes",
      Bin, {json_string, ascii(Bin)}},
     {"tree",
      "a balanced binary tree of {node, Left, Right, Value} tuples, "
      "16 levels deep (65,535 nodes, leaves the atom leaf)",
      Tree, Tree},
     {"nested",
      "50 lists nested 1,000 deep, [N, <<\"level\">>, [N-1, ...]]",
      Nested, Nested},
     {"ints",
      "a list of 100,000 integers from 0 to 99,999",
      Ints, Ints},
     {"strings",
      "a list of 20,000 UTF-8 binaries (ASCII, Latin-1, CJK text)",
      Strings, Strings}].

%% ---------------------------------------------------------------- items

%% UTF-8 binaries (a plain <<"ö">> would hold the Latin-1 byte).
-define(CITIES, [<<"Stockholm"/utf8>>, <<"Göteborg"/utf8>>,
                 <<"Malmö"/utf8>>, <<"Uppsala"/utf8>>,
                 <<"Linköping"/utf8>>, <<"Örebro"/utf8>>,
                 <<"Berlin"/utf8>>, <<"Zürich"/utf8>>,
                 <<"Kraków"/utf8>>, <<"Lisboa"/utf8>>]).
-define(TAGS, [admin, staff, guest, ops, dev, qa, sales, beta]).

records(N) ->
    [record(Id) || Id <- lists:seq(1, N)].

record(Id) ->
    Name = iolist_to_binary(["name-", integer_to_list(Id)]),
    Age = 18 + rand:uniform(70),
    Score = rand:uniform(1000000) / 1000,
    Tags = [T || T <- ?TAGS, rand:uniform(4) =:= 1],
    City = lists:nth(rand:uniform(length(?CITIES)), ?CITIES),
    Zip = 10000 + rand:uniform(89999),
    {person, Id, Name, Age, Score, Tags,
     #{<<"city">> => City, <<"zip">> => Zip},
     rand:uniform(2) =:= 1}.

random_bytes(N) ->
    %% rand gives 58 random bits a call with exsss; take 7 bytes of each.
    random_bytes(N, []).

random_bytes(N, Acc) when N =< 0 ->
    Bin = iolist_to_binary(Acc),
    binary:part(Bin, 0, byte_size(Bin) + N);
random_bytes(N, Acc) ->
    R = rand:uniform(1 bsl 56) - 1,
    random_bytes(N - 7, [<<R:56>> | Acc]).

%% The same length of printable ASCII, none of it needing a JSON escape.
ascii(Bin) ->
    << <<(32 + (B rem 94) + (case 32 + B rem 94 of 34 -> 1; 92 -> 1;
                                _ -> 0 end))>>
       || <<B>> <= Bin >>.

tree(0) ->
    leaf;
tree(Depth) ->
    {node, tree(Depth - 1), tree(Depth - 1), rand:uniform(1000)}.

nested(0, _) ->
    [];
nested(Depth, K) ->
    [K + Depth, <<"level">>, nested(Depth - 1, K)].

text(K) ->
    case K rem 3 of
        0 -> iolist_to_binary(["item number ", integer_to_list(K)]);
        1 -> unicode:characters_to_binary(
               ["Ärlig åsikt nummer ", integer_to_list(K), " på svenska"]);
        2 -> unicode:characters_to_binary(
               [[16#65E5, 16#672C, 16#8A9E], integer_to_list(K),
                [16#6587, 16#5B57, 16#5217]])
    end.

%% ---------------------------------------------------------------- JSON

%% A small JSON encoder for the terms above; returns iodata.
json({json_string, Bin}) ->
    json_string(Bin);
json(true) ->
    <<"true">>;
json(false) ->
    <<"false">>;
json(I) when is_integer(I) ->
    integer_to_binary(I);
json(F) when is_float(F) ->
    float_to_binary(F, [short]);
json(A) when is_atom(A) ->
    json_string(atom_to_binary(A, utf8));
json(B) when is_binary(B) ->
    json_string(B);
json(T) when is_tuple(T) ->
    json_array(tuple_to_list(T));
json(L) when is_list(L) ->
    json_array(L);
json(M) when is_map(M) ->
    Pairs = [[json_string(K), $:, json(V)]
             || {K, V} <- lists:sort(maps:to_list(M)), is_binary(K)],
    [${, join(Pairs), $}].

json_array(L) ->
    [$[, join([json(X) || X <- L]), $]].

join([]) -> [];
join([H | T]) -> [H | [[$, | X] || X <- T]].

%% UTF-8 passes through; quote, backslash and control bytes are escaped.
json_string(Bin) ->
    [$", escape(Bin), $"].

escape(Bin) ->
    case needs_escape(Bin) of
        false -> Bin;
        true -> [escape_byte(B) || <<B>> <= Bin]
    end.

needs_escape(<<>>) -> false;
needs_escape(<<B, _/binary>>) when B < 32; B =:= $"; B =:= $\\ -> true;
needs_escape(<<_, Rest/binary>>) -> needs_escape(Rest).

escape_byte($") -> <<"\\\"">>;
escape_byte($\\) -> <<"\\\\">>;
escape_byte($\n) -> <<"\\n">>;
escape_byte($\t) -> <<"\\t">>;
escape_byte(B) when B < 32 ->
    io_lib:format("\\u~4.16.0b", [B]);
escape_byte(B) ->
    B.

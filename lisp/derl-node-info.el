;;; derl-node-info.el --- What a live node knows of its code  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;; Keywords: erlang, languages, processes

;; This file is not part of GNU Emacs.

;; This program is free software: you can redistribute it and/or modify
;; it under the terms of the GNU General Public License as published by
;; the Free Software Foundation, either version 3 of the License, or
;; (at your option) any later version.

;; This program is distributed in the hope that it will be useful,
;; but WITHOUT ANY WARRANTY; without even the implied warranty of
;; MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
;; GNU General Public License for more details.

;; You should have received a copy of the GNU General Public License
;; along with this program.  If not, see <https://www.gnu.org/licenses/>.

;;; Commentary:

;; What completion, eldoc, `derl-describe' and `M-.' know of a node's
;; code, asked of the node itself with the functions every node has:
;; code:all_available/0, Mod:module_info/1 or the beam's chunks,
;; code:get_doc/1 (EEP 48 documentation), the debug info's abstract
;; code for lines and specs, and shell_docs for rendering.  Nothing is
;; loaded into the node: each question is a small Erlang program that
;; the node scans, parses and runs with erl_eval, as `derl-eval' does.
;;
;; The answers are kept per node, and asked again in the background
;; when older than `derl-knowledge-refresh' seconds; they are
;; forgotten when the node goes down, and by `derl-knowledge-forget'
;; (a module compiled and loaded through derl).
;;
;; Also here: which node and language a buffer is about, and the
;; references (module:function, Module.function, a module, a local
;; call) and calls around point.

;;; Code:

(require 'cl-lib)
(require 'subr-x)
(require 'derl-options)
(require 'derl-conn)
(require 'derl-events)
(require 'derl-rpc)
(require 'derl-commands)
(require 'derl-shell)

(declare-function derl-mode-node "derl-mode" (&optional ask))
(declare-function derl-mode--project-key "derl-mode" ())
(defvar derl-mode)
(defvar derl-mode--nodes)

(defcustom derl-knowledge-wait 1.0
  "Seconds completion waits for a node's first answer about a module.
The wait ends as soon as a key is typed, so it never holds up
typing; an answer that comes later is kept for the next time.
Eldoc never waits: its answer shows when it comes."
  :type 'number
  :group 'derl)

(defcustom derl-knowledge-refresh 60
  "Seconds after which what a node said of its code is asked again.
The old answer is used meanwhile, and the new one is asked in the
background.  nil keeps answers until the node goes down or
`derl-knowledge-forget' is called."
  :type '(choice (const :tag "Never" nil) number)
  :group 'derl)

(defcustom derl-knowledge-timeout 10
  "Seconds a node has to answer a question of completion, eldoc, docs or M-.."
  :type 'number
  :group 'derl)

;;;; The buffer's node and language

(defvar-local derl-knowledge-node nil
  "The node completion, eldoc, `derl-describe' and `M-.' ask, or nil.
When nil, `derl-knowledge-node-function' is asked, then the shell
session of a `derl-shell-mode' buffer, then `derl-mode'.")

(defvar-local derl-knowledge-node-function nil
  "A function that returns the current buffer's node, or nil.
It is called with one argument, ASK: when non-nil, it may read a
node from the user; when nil (completion and eldoc), it must not.")

(defvar-local derl-knowledge-language nil
  "The language of the current buffer: `erlang', `elixir' or nil.
nil tells it from the shell session, the major mode and the file
name.")

(defun derl-node-info--derl-mode-node (ask)
  "The node `derl-mode' knows for the current buffer's project.
With ASK non-nil, read it when it is not known yet."
  (cond ((not (bound-and-true-p derl-mode)) nil)
        (ask (derl-mode-node))
        ((and (boundp 'derl-mode--nodes) (fboundp 'derl-mode--project-key))
         (gethash (derl-mode--project-key) derl-mode--nodes))))

(defun derl-knowledge-buffer-node (&optional ask)
  "The node the current buffer's completion, docs and `M-.' ask, or nil.
With ASK non-nil a command is asking: the node may be read from the
user, as the other commands read one, when nothing else names it."
  (let ((node (or derl-knowledge-node
                  (and derl-knowledge-node-function
                       (funcall derl-knowledge-node-function ask))
                  (and derl-shell--current
                       (derl-shell--session-node derl-shell--current))
                  (derl-node-info--derl-mode-node ask)
                  (and ask
                       ;; Read once: the buffer's node from now on.
                       (setq-local derl-knowledge-node
                                   (derl-read-node "Node"
                                                   (derl-default-node)))))))
    (and node (derl--node-symbol node))))

(defun derl-knowledge-buffer-language ()
  "The language of the current buffer: `erlang' or `elixir'."
  (or derl-knowledge-language
      (and derl-shell--current
           (derl-shell--session-kind derl-shell--current))
      (if (or (derived-mode-p 'elixir-mode 'elixir-ts-mode 'heex-ts-mode)
              (and buffer-file-name
                   (string-match-p "\\.\\(?:exs?\\|heex\\)\\'"
                                   buffer-file-name)))
          'elixir
        'erlang)))

;;;; Module names as each language writes them

(defun derl-node-info-module-text (module language)
  "MODULE, the name of an Erlang module, as LANGUAGE writes it.
In Elixir, Elixir.String is String and lists is :lists."
  (if (eq language 'elixir)
      (if (string-prefix-p "Elixir." module)
          (substring module 7)
        (concat ":" module))
    (if (string-match-p "\\`[a-z][A-Za-z0-9_@]*\\'" module)
        module
      (concat "'" (string-replace "'" "\\'" module) "'"))))

(defun derl-node-info-reference-text (module function arity language)
  "MODULE:FUNCTION/ARITY as LANGUAGE writes it; FUNCTION and ARITY may be nil."
  (concat (derl-node-info-module-text module language)
          (if function (concat (if (eq language 'elixir) "." ":") function) "")
          (if arity (format "/%d" arity) "")))

;;;; Asking the node

;; Every question is an Erlang program the node runs with erl_eval:
;; the node scans and parses it itself (abstract forms would not
;; survive a trip through Lisp, where the atom nil becomes []), with
;; the variables given as bindings.  Names travel as binaries of
;; UTF-8 both ways, and lists of small integers never stand alone (they
;; would arrive as strings).

(defconst derl-node-info--prelude "
Bin = fun(B) when is_binary(B) -> B;
         (A) when is_atom(A) -> atom_to_binary(A, utf8);
         (L) -> try unicode:characters_to_binary(L) of
                    B when is_binary(B) -> B;
                    _ -> <<>>
                catch _:_ -> <<>>
                end
      end,
Line = fun(Anno) -> try erl_anno:line(Anno) of
                        L when is_integer(L) -> L;
                        _ -> 0
                    catch _:_ -> 0
                    end
       end,
Module = try binary_to_existing_atom(Name, utf8)
         catch error:badarg ->
                 case code:where_is_file(binary_to_list(Name) ++ \".beam\") of
                     non_existing -> undefined;
                     _ -> binary_to_atom(Name, utf8)
                 end
         end,
Beam = case Module of
           undefined -> non_existing;
           _ -> case code:which(Module) of
                    preloaded ->
                        filename:join([code:lib_dir(erts), \"ebin\",
                                       atom_to_list(Module) ++ \".beam\"]);
                    W -> W
                end
       end,
Loaded = Module =/= undefined andalso erlang:module_loaded(Module),
Chunk = fun(Id) when is_list(Beam) ->
                case beam_lib:chunks(Beam, [Id]) of
                    {ok, {_, [{_, Value}]}} -> {ok, Value};
                    _ -> none
                end;
           (_) -> none
        end,
Doc = case Module of
          undefined -> {error, non_existing};
          _ -> try code:get_doc(Module)
               catch DocClass:DocWhy -> {error, {DocClass, DocWhy}}
               end
      end,
Text = fun(#{<<\"en\">> := T}) -> T;
          (M) when is_map(M), map_size(M) > 0 -> hd(maps:values(M));
          (M) when is_map(M) -> none;
          (Other) -> Other
       end,
"
  "What the programs about one module share.
Given Name, the module's name as a binary, it binds Module (an atom,
or undefined when the node has no such module: no atom is made for
a name that names nothing), Beam (its beam file, or an atom), Loaded,
Chunk (a fun giving {ok, Value} or none for a chunk of the beam),
Doc (code:get_doc/1's answer), and the helpers Bin (a name or text
as a UTF-8 binary), Line (an annotation's line, or 0) and Text (a
documentation's English text, or none or hidden).")

(defconst derl-node-info--modules-program "
(fun() ->
Bin = fun(L) -> try unicode:characters_to_binary(L) catch _:_ -> none end end,
Names = try [N || {N, _, _} <- code:all_available()]
        catch error:undef -> [atom_to_list(M) || {M, _} <- code:all_loaded()]
        end,
[B || B <- [Bin(N) || N <- Names], is_binary(B)]
end)().
"
  "The program that lists the modules a node has, loaded or not.")

(defconst derl-node-info--functions-program
  (concat "
(fun() ->" derl-node-info--prelude "
Exports = case Loaded of
              true -> Module:module_info(exports);
              false -> case Chunk(exports) of
                           {ok, E} -> E;
                           none -> []
                       end
          end,
Flat = fun F(B) when is_binary(B) -> B;
           F({_, _, C}) -> F(C);
           F(L) when is_list(L) -> << <<(F(X))/binary>> || X <- L >>;
           F(_) -> <<>>
       end,
Re = fun(T, Pattern, Replacement) ->
             re:replace(T, Pattern, Replacement,
                        [global, unicode, {return, binary}])
     end,
Sentence = fun(T) ->
               One = string:trim(Re(T, \"\\\\s+\", \" \")),
               S = case re:run(One, \"^.*?[.!?](?=\\\\s|$)\",
                               [unicode, {capture, first, binary}]) of
                       {match, [Found]} -> Found;
                       _ -> One
                   end,
               Bin(string:slice(S, 0, 300))
           end,
Plain = fun(T) ->
            Re(Re(Re(T, \"\\\\[([^]]*)\\\\]\\\\([^)]*\\\\)\", \"\\\\1\"),
                  \"`([^`]*)`\", \"\\\\1\"),
               \"\\\\*\\\\*([^*]+)\\\\*\\\\*\", \"\\\\1\")
        end,
First = fun(<<\"application/erlang+html\">>, [H | _]) -> Sentence(Flat(H));
           (<<\"text/markdown\">>, T) when is_binary(T) ->
                Sentence(Plain(hd(binary:split(T, <<\"\\n\\n\">>))));
           (_, _) -> none
        end,
Summary = fun(Format, D) ->
                  case Text(D) of
                      none -> none;
                      hidden -> hidden;
                      T -> First(Format, T)
                  end
          end,
Docs = case Doc of
           {ok, {docs_v1, _, Lang, Format, MDoc, _, Entries}} ->
               {Lang, Summary(Format, MDoc),
                [{Kind, Bin(N), A, [Bin(S) || S <- Sig], Summary(Format, D)}
                 || {{Kind, N, A}, _, Sig, D, _} <- Entries,
                    Kind =:= function orelse Kind =:= macro]};
           {error, Why} -> {none, Why}
       end,
{Module =/= undefined, [{Bin(F), A} || {F, A} <- Exports], Docs}
end)().
")
  "The program that tells a module's functions, with their summaries.
It returns {Exists, Exports, Docs}: Exports [{Name, Arity}], Docs
{Language, ModuleSummary, [{Kind, Name, Arity, Signatures, Summary}]}
or {none, Reason}; a summary is the documentation's first sentence, on
one line, without Markdown's marks (at most 300 characters), or none or
hidden.")

(defconst derl-node-info--details-program
  (concat "
(fun() ->" derl-node-info--prelude "
Compile = case Loaded of
              true -> Module:module_info(compile);
              false -> case Chunk(compile_info) of
                           {ok, C} -> C;
                           none -> []
                       end
          end,
Forms = case Chunk(debug_info) of
            {ok, {debug_info_v1, Backend, Data}} ->
                try Backend:debug_info(erlang_v1, Module, Data, []) of
                    {ok, DFs} -> {Backend, DFs};
                    _ -> none
                catch _:_ -> none
                end;
            _ -> case Chunk(abstract_code) of
                     {ok, {raw_abstract_v1, AFs}} -> {erl_abstract_code, AFs};
                     _ -> none
                 end
        end,
DocEntries = case Doc of
                 {ok, {docs_v1, _, _, _, _, _, Es}} -> Es;
                 _ -> []
             end,
Elixir = case {Forms, Doc} of
             {{elixir_erl, _}, _} -> true;
             {_, {ok, {docs_v1, _, elixir, _, _, _, _}}} -> true;
             _ -> false
         end,
PrintSpec = case Elixir of
                true -> fun(N, Clause) ->
                                <<\"@spec \",
                                  (Bin('Elixir.Macro':to_string(
                                         'Elixir.Code.Typespec':spec_to_quoted(
                                           N, Clause))))/binary>>
                        end;
                false -> fun(N, Clause) ->
                                 Bin(erl_pp:form({attribute, 0, spec,
                                                  {{N, 0}, [Clause]}}))
                         end
            end,
Spec = fun(N, Clause) ->
               try PrintSpec(N, Clause)
               catch _:_ -> Bin(erl_pp:form({attribute, 0, spec,
                                             {{N, 0}, [Clause]}}))
               end
       end,
{Lines, Specs} =
    case Forms of
        {_, Fs} ->
            {[{Bin(N), A, Line(Anno)} || {function, Anno, N, A, _} <- Fs],
             [{Bin(N), A, [Spec(N, C) || C <- Cs]}
              || {attribute, _, spec, {{N, A}, Cs}} <- Fs]};
        none ->
            {[{Bin(N), A, Line(Anno)}
              || {{K, N, A}, Anno, _, _, _} <- DocEntries,
                 K =:= function orelse K =:= macro, Line(Anno) > 0],
             [{Bin(N), A, [Bin(erl_pp:form(S)) || S <- Sigs]}
              || {{function, N, A}, _, _, _, #{signature := Sigs}} <- DocEntries]}
    end,
Compiled = case proplists:get_value(source, Compile) of
               undefined -> none;
               S -> S
           end,
Base = case Compiled of
           none when Elixir -> none;
           none when Module =/= undefined -> atom_to_list(Module) ++ \".erl\";
           none -> none;
           _ -> filename:basename(Compiled)
       end,
Candidates =
    [Compiled || Compiled =/= none]
    ++ [Beam || is_list(Beam),
                lists:member(filename:extension(Beam), [\".erl\", \".ex\", \".exs\"])]
    ++ case {Beam, Base} of
           {B, _} when not is_list(B) -> [];
           {_, none} -> [];
           _ ->
               App = filename:dirname(filename:dirname(Beam)),
               [filename:join([App, \"src\", Base])]
               ++ filelib:wildcard(filename:join([App, \"src\", \"**\", Base]))
               ++ filelib:wildcard(filename:join([App, \"lib\", \"**\", Base]))
       end,
Source = case [P || P <- Candidates, filelib:is_regular(P)] of
             [P | _] -> {file, Bin(filename:absname(P)), filelib:file_size(P)};
             [] -> none
         end,
{Module =/= undefined, Elixir, Forms =/= none, Lines, Specs, Source,
 case Compiled of none -> none; _ -> Bin(Compiled) end,
 case Beam of _ when is_list(Beam) -> Bin(Beam); _ -> none end}
end)().
")
  "The program that tells where a module's functions are, and their specs.
It returns {Exists, Elixir, HasDebugInfo, Lines, Specs, Source,
CompiledFrom, Beam}: Lines [{Name, Arity, Line}] from the debug info
\(or the documentation's annotations), Specs [{Name, Arity, [Text]}]
printed as Erlang or Elixir writes them, Source {file, Path, Size}
or none, the file the node has: the one the module was compiled
from, else its beam's name where it was loaded as a source, else the
src directory beside its ebin.")

(defconst derl-node-info--doc-program
  (concat "
(fun() ->" derl-node-info--prelude "
Select = fun(Es) ->
             [{Kind, Bin(N), A, [Bin(S) || S <- Sig], Text(D)}
              || {{Kind, N, A}, _, Sig, D, _} <- Es,
                 Kind =:= function orelse Kind =:= macro,
                 Bin(N) =:= Fun, Arity =:= none orelse A =:= Arity]
         end,
case Doc of
    {ok, {docs_v1, _, Lang, <<\"application/erlang+html\">>, _, _, Es} = D} ->
        Cfg = #{ansi => false},
        Atom = fun() -> binary_to_existing_atom(Fun, utf8) end,
        Render = fun() ->
                     case {Fun, Arity} of
                         {none, _} -> shell_docs:render(Module, D, Cfg);
                         {_, none} -> shell_docs:render(Module, Atom(), D, Cfg);
                         _ -> shell_docs:render(Module, Atom(), Arity, D, Cfg)
                     end
                 end,
        Old = fun() ->
                  case {Fun, Arity} of
                      {none, _} -> shell_docs:render(Module, D);
                      {_, none} -> shell_docs:render(Module, Atom(), D);
                      _ -> shell_docs:render(Module, Atom(), Arity, D)
                  end
              end,
        Rendered = try Render()
                   catch error:badarg -> {error, function_missing};
                         error:_ -> try Old()
                                    catch error:badarg -> {error, function_missing}
                                    end
                   end,
        case Rendered of
            {error, Why} -> {missing, Why};
            _ when Fun =/= none -> {text, Lang, Bin(Rendered), Select(Es)};
            _ -> {text, Lang, Bin(Rendered), []}
        end;
    {ok, {docs_v1, _, Lang, <<\"text/markdown\">>, MDoc, _, Es}} ->
        case Fun of
            none -> {markdown, Lang, Text(MDoc), []};
            _ -> case Select(Es) of
                     [] -> {missing, function_missing};
                     Found -> {markdown, Lang, none, Found}
                 end
        end;
    {ok, {docs_v1, _, _, Format, _, _, _}} -> {missing, {format, Format}};
    {error, Why} -> {missing, Why}
end
end)().
")
  "The program that gives the documentation of a module or a function.
Given Name, Fun (a binary, or none for the module) and Arity (an
integer or none), it returns {text, Language, Text, Entries} for
documentation in Erlang's own format, rendered as text by
shell_docs; {markdown, Language, ModuleDoc, Entries} for Markdown
\(Elixir's), each entry {Kind, Name, Arity, Signatures, Doc}; or
{missing, Reason}.")

(defun derl-node-info--call-form (module function &rest args)
  "The abstract form of a call of MODULE:FUNCTION with ARGS, forms too."
  (vector 'call 1 (vector 'remote 1 (vector 'atom 1 module)
                          (vector 'atom 1 function))
          args))

(defconst derl-node-info--run-form
  (let ((element (lambda (form)
                   (derl-node-info--call-form 'erlang 'element
                                              [integer 1 2] form))))
    (funcall element
             (derl-node-info--call-form
              'erl_eval 'exprs
              (funcall element
                       (derl-node-info--call-form
                        'erl_parse 'parse_exprs
                        (funcall element
                                 (derl-node-info--call-form
                                  'erl_scan 'string [var 1 Program]))))
              [var 1 Bindings])))
  "The form that runs a program with its bindings and gives its value alone.")

(defun derl-node-info--arguments (program bindings)
  "The arguments of erl_eval:expr/5 that run PROGRAM with BINDINGS.
BINDINGS is an alist of variable names (symbols) and values."
  (list derl-node-info--run-form
        ;; An orddict: sorted by variable name.
        (list (vector 'Bindings
                      (mapcar (lambda (b) (vector (car b) (cdr b)))
                              (sort (copy-sequence bindings)
                                    (lambda (a b)
                                      (string< (car a) (car b))))))
              (vector 'Program program))
        'none 'none 'value))

(defun derl-node-info--binary (text)
  "TEXT, a string, as an Erlang binary of UTF-8."
  (erl-binary (encode-coding-string text 'utf-8-unix)))

(defun derl-node-info--string (term)
  "TERM, UTF-8 text from the node (a binary), as a string; nil for atoms."
  (cond ((erl-binaryp term)
         (decode-coding-string (erl-binary-string term) 'utf-8))
        ((stringp term) (decode-coding-string term 'utf-8))))

(defun derl-node-info-run (node program bindings callback on-error
                                &optional timeout)
  "Run PROGRAM, Erlang text, on NODE with BINDINGS; CALLBACK gets its value.
BINDINGS is an alist of variable names (symbols) and values.
ON-ERROR gets the error condition instead.  Return the call's handle."
  (derl-call-async node 'erl_eval 'expr
                   (derl-node-info--arguments program bindings)
                   callback :on-error on-error
                   :timeout (or timeout derl-knowledge-timeout)))

(defun derl-node-info-run-sync (node program bindings)
  "Run PROGRAM, Erlang text, on NODE with BINDINGS and return its value.
Wait at most `derl-knowledge-timeout' seconds."
  (derl-call node 'erl_eval 'expr (derl-node-info--arguments program bindings)
             derl-knowledge-timeout))

;;;; What the answers become

(cl-defstruct (derl-node-info-function (:constructor derl-node-info--make-function)
                                       (:copier nil))
  "A function of a module, as completion and eldoc show it."
  name
  (arities nil :documentation "Its arities, in increasing order.")
  (kind 'function :documentation "`function' or `macro'.")
  (summary nil :documentation "The first paragraph of its docs, or nil.")
  (signatures nil :documentation "The signatures its docs give (Elixir's)."))

(cl-defstruct (derl-node-info-module (:constructor derl-node-info--make-module)
                                     (:copier nil))
  "What completion and eldoc know of a module."
  name
  (exists nil :documentation "Non-nil if the node has the module.")
  (language nil :documentation "`erlang' or `elixir', as its docs say.")
  (docs nil :documentation "Non-nil if the node has documentation for it.")
  (docs-missing nil :documentation "Why it has none, a term, or nil.")
  (summary nil :documentation "The first paragraph of the module's docs.")
  (functions nil :documentation "Its functions, a hash table by name."))

(cl-defstruct (derl-node-info-details (:constructor derl-node-info--make-details)
                                      (:copier nil))
  "Where a module's functions are, and their specs."
  name exists elixir
  (debug-info nil :documentation "Non-nil if lines come from debug info.")
  (lines nil :documentation "((NAME ARITY LINE)...).")
  (specs nil :documentation "((NAME ARITY TEXT...)...).")
  (source nil :documentation "(PATH . SIZE): the node's source file, or nil.")
  (compiled-from nil :documentation "The source the module was compiled from.")
  (beam nil :documentation "Its beam file, or nil."))

(defun derl-node-info--summary (term)
  "TERM, a summary from the node, as a string, or nil.
The node made it one sentence, on one line, with no Markdown marks."
  (let ((text (derl-node-info--string term)))
    (and text (not (string-empty-p text)) text)))

(defun derl-node-info--hidden-name-p (name)
  "Non-nil if NAME is no function to offer: __info__, MACRO-..., __struct__."
  (or (string-prefix-p "MACRO-" name)
      (string-match-p "\\`__.*__\\'" name)))

(defun derl-node-info--exported (exports)
  "EXPORTS, [NAME ARITY] vectors from the node, as a hash table.
Its keys are (NAME . ARITY), its values `function' or `macro' (an
Elixir macro is exported as MACRO-NAME with one more argument)."
  (let ((table (make-hash-table :test 'equal)))
    (dolist (export (and (listp exports) exports))
      (pcase export
        (`[,fname ,arity]
         (let ((fname (derl-node-info--string fname)))
           (when (and fname (integerp arity))
             (if (string-prefix-p "MACRO-" fname)
                 (puthash (cons (substring fname 6) (1- arity)) 'macro table)
               (puthash (cons fname arity) 'function table)))))))
    table))

(defun derl-node-info--parse-functions (name result)
  "A `derl-node-info-module' for module NAME from RESULT, the node's answer.
Its functions are those exported, less those its documentation hides
and the internal ones (__info__, and module_info in Elixir), each
with what its documentation says."
  (pcase result
    (`[,exists ,exports ,docs]
     (let ((exported (derl-node-info--exported exports))
           (documented (make-hash-table :test 'equal))
           (functions (make-hash-table :test 'equal))
           (module (derl-node-info--make-module :name name
                                                :exists (eq exists 'true))))
       (pcase docs
         (`[none ,why]
          (setf (derl-node-info-module-docs-missing module) why))
         (`[,language ,summary ,(and (pred listp) entries)]
          (let ((any nil))
            (setf (derl-node-info-module-language module) language
                  (derl-node-info-module-summary module)
                  (derl-node-info--summary summary))
            (dolist (entry entries)
              (pcase entry
                (`[,_kind ,fname ,arity ,signatures ,summary]
                 (let ((fname (derl-node-info--string fname))
                       (text (derl-node-info--summary summary)))
                   (when text (setq any t))
                   (when (and fname (integerp arity))
                     (puthash (cons fname arity)
                              (if (eq summary 'hidden) 'hidden
                                (cons text
                                      (and (listp signatures)
                                           (delq nil (mapcar
                                                      #'derl-node-info--string
                                                      signatures)))))
                              documented))))))
            (if (or any (derl-node-info-module-summary module))
                (setf (derl-node-info-module-docs module) t)
              ;; Docs made from the abstract code have no text.
              (setf (derl-node-info-module-docs-missing module) 'no_text)))))
       (let ((elixir (eq (derl-node-info-module-language module) 'elixir)))
         (maphash
          (lambda (key kind)
            (let ((fname (car key))
                  (arity (cdr key))
                  (doc (gethash key documented)))
              (unless (or (eq doc 'hidden)
                          (derl-node-info--hidden-name-p fname)
                          (and elixir (equal fname "module_info")))
                (let ((f (or (gethash fname functions)
                             (puthash fname (derl-node-info--make-function
                                             :name fname :kind kind)
                                      functions))))
                  (setf (derl-node-info-function-arities f)
                        (sort (cons arity (derl-node-info-function-arities f))
                              #'<))
                  (when (and (car doc)
                             (not (derl-node-info-function-summary f)))
                    (setf (derl-node-info-function-summary f) (car doc)))
                  (setf (derl-node-info-function-signatures f)
                        (append (derl-node-info-function-signatures f)
                                (cdr doc)))))))
          exported))
       (setf (derl-node-info-module-functions module) functions)
       module))
    (_ (signal 'derl-error (list (format "Unexpected answer about %s: %s" name
                                         (derl-term-to-string result)))))))

(defun derl-node-info--parse-details (name result)
  "A `derl-node-info-details' for module NAME from RESULT, the node's answer."
  (pcase result
    (`[,exists ,elixir ,debug-info ,lines ,specs ,source ,compiled ,beam]
     (derl-node-info--make-details
      :name name :exists (eq exists 'true) :elixir (eq elixir 'true)
      :debug-info (eq debug-info 'true)
      :lines (delq nil (mapcar (lambda (l)
                                 (pcase l
                                   (`[,n ,a ,line]
                                    (list (derl-node-info--string n) a line))))
                               (and (listp lines) lines)))
      :specs (delq nil (mapcar (lambda (s)
                                 (pcase s
                                   (`[,n ,a ,(and (pred listp) texts)]
                                    (cons (derl-node-info--string n)
                                          (cons a (delq nil
                                                        (mapcar
                                                         #'derl-node-info--string
                                                         texts)))))))
                               (and (listp specs) specs)))
      :source (pcase source
                (`[file ,path ,size] (cons (derl-node-info--string path) size)))
      :compiled-from (derl-node-info--string compiled)
      :beam (derl-node-info--string beam)))
    (_ (signal 'derl-error (list (format "Unexpected answer about %s: %s" name
                                         (derl-term-to-string result)))))))

(defun derl-node-info--parse-modules (result)
  "The module names in RESULT, the node's answer, as strings."
  (if (listp result)
      (delq nil (mapcar #'derl-node-info--string result))
    (signal 'derl-error (list (format "Unexpected list of modules: %s"
                                      (derl-term-to-string result))))))

(defun derl-node-info--question (key)
  "The program, bindings and parser of the question KEY.
KEY is `modules', (functions . MODULE) or (details . MODULE)."
  (pcase key
    ('modules (list derl-node-info--modules-program nil
                    #'derl-node-info--parse-modules))
    (`(functions . ,module)
     (list derl-node-info--functions-program
           (list (cons 'Name (derl-node-info--binary module)))
           (lambda (result) (derl-node-info--parse-functions module result))))
    (`(details . ,module)
     (list derl-node-info--details-program
           (list (cons 'Name (derl-node-info--binary module)))
           (lambda (result) (derl-node-info--parse-details module result))))))

;;;; The answers kept, per node

(cl-defstruct (derl-node-info--cell (:constructor derl-node-info--make-cell)
                                    (:copier nil))
  "The answer to one question to one node."
  (value nil :documentation "The answer, once there.")
  (time nil :documentation "When it came, or nil.")
  (pending nil :documentation "Non-nil while the question is out.")
  (waiters nil :documentation "Functions to call with the answer.")
  (failed nil :documentation "(TIME . CONDITION) of the last failure."))

(defvar derl-node-info--nodes (make-hash-table :test 'eq)
  "What each node answered: node to a hash table of question to cell.")

(defvar derl-node-info--told (make-hash-table :test 'equal)
  "What was said once per node: (NODE . WHAT) to t.")

(defconst derl-node-info--retry-after 5
  "Seconds before a question that failed is asked again.")

(defun derl-node-info-say-once (node what format &rest args)
  "Show the message FORMAT with ARGS once for NODE and WHAT, a symbol.
It is said again only after NODE went down or was forgotten."
  (unless (gethash (cons node what) derl-node-info--told)
    (puthash (cons node what) t derl-node-info--told)
    (let ((message-log-max (or message-log-max t)))
      (apply #'message format args))))

(defun derl-node-info--table (node)
  "The answers of NODE, a hash table, made if there is none."
  (or (gethash node derl-node-info--nodes)
      (puthash node (make-hash-table :test 'equal) derl-node-info--nodes)))

(defun derl-node-info--fresh-p (cell)
  "Non-nil if CELL's answer is recent enough to be used without asking."
  (let ((time (derl-node-info--cell-time cell)))
    (and time (or (null derl-knowledge-refresh)
                  (< (- (float-time) time) derl-knowledge-refresh)))))

(defun derl-node-info--settle (node key cell value condition)
  "CELL, NODE's answer to KEY, is VALUE, or failed with CONDITION."
  (setf (derl-node-info--cell-pending cell) nil)
  ;; An answer to a question asked before `derl-knowledge-forget' (or
  ;; before the node went down) is handed to those waiting, but not
  ;; kept: its cell is no longer in the table.  Its failure is no news.
  (if condition
      (progn
        (setf (derl-node-info--cell-failed cell) (cons (float-time) condition))
        (when (let ((table (gethash node derl-node-info--nodes)))
                (and table (eq cell (gethash key table))))
          (derl-node-info-say-once
           node 'unreachable "derl: cannot ask %s about its code: %s" node
           (derl-error-reason condition))))
    (setf (derl-node-info--cell-failed cell) nil
          (derl-node-info--cell-value cell) value
          (derl-node-info--cell-time cell) (float-time)))
  (let ((waiters (derl-node-info--cell-waiters cell)))
    (setf (derl-node-info--cell-waiters cell) nil)
    (dolist (waiter (nreverse waiters))
      (with-demoted-errors "derl: %S"
        (funcall waiter (or value (derl-node-info--cell-value cell)))))))

(defun derl-node-info--ask (node key cell)
  "Ask NODE the question KEY, for CELL to keep the answer."
  (pcase-let ((`(,program ,bindings ,parse) (derl-node-info--question key)))
    (setf (derl-node-info--cell-pending cell) t)
    (let ((handle
           (derl-node-info-run
            node program bindings
            (lambda (result)
              (condition-case err
                  (derl-node-info--settle node key cell (funcall parse result)
                                          nil)
                (error (derl-node-info--settle node key cell nil err))))
            (lambda (condition)
              (derl-node-info--settle node key cell nil condition)))))
      ;; A call that failed at once has settled already.
      (when (eq (derl-node-info--cell-pending cell) t)
        (setf (derl-node-info--cell-pending cell) handle)))))

(defun derl-node-info-get (node key &optional callback)
  "Return NODE's answer to the question KEY, or nil when there is none yet.
KEY is `modules', (functions . MODULE) or (details . MODULE), MODULE
a module's name as Erlang writes it (\"lists\", \"Elixir.Enum\").
When there is no answer, or an old one, the question is asked, in
the background.  CALLBACK, when given and there is no answer yet,
is called with the answer when it comes (nil if the question
failed).  Return nil at once after a recent failure."
  (let* ((table (derl-node-info--table node))
         (cell (or (gethash key table)
                   (puthash key (derl-node-info--make-cell) table)))
         (failed (derl-node-info--cell-failed cell)))
    (unless (or (derl-node-info--fresh-p cell)
                (derl-node-info--cell-pending cell)
                (and failed (< (- (float-time) (car failed))
                               derl-node-info--retry-after)))
      (derl-node-info--ask node key cell))
    (let ((value (derl-node-info--cell-value cell)))
      (when (and callback (not value))
        (if (derl-node-info--cell-pending cell)
            (push callback (derl-node-info--cell-waiters cell))
          (funcall callback nil)))
      value)))

(defun derl-node-info-await (node key timeout)
  "Return NODE's answer to KEY, waiting for it at most TIMEOUT seconds.
The wait ends early when a key is typed; then, or on failure,
return nil.  See `derl-node-info-get'."
  (or (derl-node-info-get node key)
      (let ((done nil)
            (deadline (+ (float-time) timeout)))
        (derl-node-info-get node key (lambda (_) (setq done t)))
        (while (and (not done) (< (float-time) deadline)
                    (not (input-pending-p)))
          (accept-process-output nil 0.01))
        (derl-node-info-get node key))))

(defun derl-node-info-fetch (node key)
  "Return NODE's answer to KEY, waiting for it as a command does.
Signal `derl-error' when the node cannot answer, and `derl-timeout'
after `derl-knowledge-timeout' seconds; \\[keyboard-quit] stops the
wait."
  (or (derl-node-info-get node key)
      (let* ((table (derl-node-info--table node))
             (cell (gethash key table))
             (done nil))
        ;; Ask again now, even after a recent failure.
        (when (and (not (derl-node-info--cell-pending cell))
                   (derl-node-info--cell-failed cell))
          (setf (derl-node-info--cell-failed cell) nil)
          (derl-node-info-get node key))
        (derl-node-info-get node key (lambda (_) (setq done t)))
        (unless done
          (derl--wait (lambda () done) (+ derl-knowledge-timeout 1)
                      (format "for %s's answer" node)))
        (or (derl-node-info--cell-value cell)
            (let ((failed (derl-node-info--cell-failed cell)))
              (if failed
                  (signal (cadr failed) (cddr failed))
                (signal 'derl-error
                        (list (format "No answer from %s" node)))))))))

(defun derl-knowledge-forget (node &optional module)
  "Forget what NODE said of its code, or of MODULE only.
MODULE is a module's name, a string or symbol as Erlang writes it
\(\"lists\", \"Elixir.Enum\").  Call it when a module is compiled and
loaded: completion, eldoc and M-. ask again.  A new MODULE is added to
the module names known."
  (let ((node (derl--node-symbol node))
        (module (and module (format "%s" module))))
    (if (null module)
        (progn
          (remhash node derl-node-info--nodes)
          (derl-node-info--forget-told node))
      (let ((table (gethash node derl-node-info--nodes)))
        (when table
          (remhash (cons 'functions module) table)
          (remhash (cons 'details module) table)
          (let ((modules (gethash 'modules table)))
            (when (and modules (derl-node-info--cell-value modules)
                       (not (member module
                                    (derl-node-info--cell-value modules))))
              (push module (derl-node-info--cell-value modules)))))))))

(defun derl-node-info--forget-told (node)
  "Forget what was said once about NODE."
  (let ((keys nil))
    (maphash (lambda (key _) (when (eq (car key) node) (push key keys)))
             derl-node-info--told)
    (dolist (key keys)
      (remhash key derl-node-info--told))))

(defun derl-node-info--nodedown (node &rest _)
  "Forget what NODE, gone down, said: it may come back with other code."
  (derl-knowledge-forget node))

(add-hook 'erl-nodedown-hook #'derl-node-info--nodedown)

;;;; Lookups

(defvar derl-node-info--names (make-hash-table :test 'equal)
  "The module names of each node as each language writes them.
\(NODE . LANGUAGE) to (MODULES . NAMES), MODULES the answer they were
made from.")

(defun derl-node-info-module-names (node language)
  "The names of NODE's modules as LANGUAGE writes them, or nil if not known.
For Erlang, the modules that are not Elixir's."
  (let* ((modules (derl-node-info-get node 'modules))
         (key (cons node language))
         (made (gethash key derl-node-info--names)))
    (if (and made (eq (car made) modules))
        (cdr made)
      (cdr (puthash key
                    (cons modules
                          (if (eq language 'elixir)
                              (mapcar (lambda (m)
                                        (derl-node-info-module-text m 'elixir))
                                      modules)
                            (cl-remove-if (lambda (m)
                                            (string-prefix-p "Elixir." m))
                                          modules)))
                    derl-node-info--names)))))

(defun derl-node-info-lookup (module function)
  "The `derl-node-info-function' FUNCTION of MODULE, a `derl-node-info-module'."
  (and module (derl-node-info-module-functions module)
       (gethash function (derl-node-info-module-functions module))))

(defun derl-node-info-specs (details function &optional arity)
  "The specs of FUNCTION (of ARITY, or all) in DETAILS: ((ARITY TEXT...)...)."
  (cl-loop for (name a . texts) in (and details
                                        (derl-node-info-details-specs details))
           when (and (equal name function) (or (null arity) (eql a arity)))
           collect (cons a texts)))

(defun derl-node-info-note-missing (node module what)
  "Say once per NODE that MODULE, a module or details, lacks WHAT it could have."
  (pcase what
    ('docs
     (when (and (derl-node-info-module-p module)
                (derl-node-info-module-exists module)
                (not (derl-node-info-module-docs module)))
       (derl-node-info-say-once
        node 'no-docs
        "derl: %s has no documentation for %s%s; completion and M-. work without"
        node (derl-node-info-module-name module)
        (if (eq (derl-node-info-module-docs-missing module) 'no_text)
            " (no doc chunks installed)" ""))))
    ('debug-info
     (when (and (derl-node-info-details-p module)
                (derl-node-info-details-exists module)
                (not (derl-node-info-details-debug-info module)))
       (derl-node-info-say-once
        node 'no-debug-info
        "derl: %s has no debug info for %s: M-. searches the source instead"
        node (derl-node-info-details-name module))))))

;;;; References and calls in the buffer

(defconst derl-node-info--syntax-table
  (let ((table (make-syntax-table)))
    (modify-syntax-entry '(0 . 127) "." table)
    (modify-syntax-entry '(?a . ?z) "w" table)
    (modify-syntax-entry '(?A . ?Z) "w" table)
    (modify-syntax-entry '(?0 . ?9) "w" table)
    (modify-syntax-entry '(128 . #x3fffff) "w" table)
    (dolist (c '(?_ ?@)) (modify-syntax-entry c "_" table))
    (dolist (c '(?\s ?\t ?\f ?\r)) (modify-syntax-entry c " " table))
    (modify-syntax-entry ?\n ">" table)
    (modify-syntax-entry ?% "<" table)
    (modify-syntax-entry ?\" "\"" table)
    (modify-syntax-entry ?' "\"" table)
    (modify-syntax-entry ?\\ "\\" table)
    (modify-syntax-entry ?\( "()" table)
    (modify-syntax-entry ?\) ")(" table)
    (modify-syntax-entry ?\[ "(]" table)
    (modify-syntax-entry ?\] ")[" table)
    (modify-syntax-entry ?{ "(}" table)
    (modify-syntax-entry ?} "){" table)
    table)
  "How calls are read in Erlang buffers of no Erlang major mode.")

(defconst derl-node-info--elixir-syntax-table
  (let ((table (copy-syntax-table derl-node-info--syntax-table)))
    (modify-syntax-entry ?% "." table)
    (modify-syntax-entry ?# "<" table)
    (modify-syntax-entry ?' "\"" table)
    (dolist (c '(?? ?!)) (modify-syntax-entry c "_" table))
    table)
  "How calls are read in Elixir buffers of no Elixir major mode.")

(defconst derl-node-info--erlang-atom "[a-z][A-Za-z0-9_@]*"
  "An unquoted Erlang atom.")

(defconst derl-node-info--elixir-alias
  "[A-Z][A-Za-z0-9_]*\\(?:\\.[A-Z][A-Za-z0-9_]*\\)*"
  "An Elixir module's alias: String, Enum, Mix.Project.")

(defconst derl-node-info--elixir-name "[a-z_][A-Za-z0-9_]*[?!]?"
  "An Elixir function's name.")

(defun derl-node-info--input-start ()
  "Where the text that may hold a call around point begins."
  (cond
   (derl-shell--current
    (let ((process (get-buffer-process (current-buffer))))
      (if (and process (>= (point) (process-mark process)))
          (process-mark process)
        (line-beginning-position))))
   ((eq (derl-knowledge-buffer-language) 'erlang)
    ;; A form starts at the beginning of a line: a function clause
    ;; or an attribute.
    (save-excursion
      (forward-line 0)
      (if (re-search-backward "^[a-z'-]" (max (point-min) (- (point) 20000)) t)
          (point)
        (max (point-min) (- (point) 3000)))))
   (t (save-excursion
        (goto-char (max (point-min) (- (point) 3000)))
        (line-beginning-position)))))

(defmacro derl-node-info--with-syntax (&rest body)
  "Run BODY with the syntax table of the buffer's language."
  (declare (indent 0) (debug t))
  `(if (derived-mode-p 'prog-mode)
       (progn ,@body)
     (with-syntax-table (if (eq (derl-knowledge-buffer-language) 'elixir)
                            derl-node-info--elixir-syntax-table
                          derl-node-info--syntax-table)
       (let ((parse-sexp-lookup-properties nil))
         ,@body))))

(defun derl-node-info--parse-state (pos)
  "The `parse-partial-sexp' state at POS, read from where its text begins."
  (derl-node-info--with-syntax
    (save-excursion
      (goto-char pos)
      (if (derived-mode-p 'prog-mode)
          (syntax-ppss pos)
        (parse-partial-sexp (min pos (derl-node-info--input-start)) pos)))))

(defun derl-node-info-buffer-module ()
  "The module the buffer's text is part of, as Erlang names it, or nil.
Erlang: its -module attribute; Elixir: the defmodule around point."
  (save-excursion
    (save-restriction
      (widen)
      (if (eq (derl-knowledge-buffer-language) 'elixir)
          (let ((found nil))
            (while (and (not found)
                        (re-search-backward
                         (concat "^[ \t]*defmodule[ \t]+\\("
                                 derl-node-info--elixir-alias "\\)")
                         nil t))
              (setq found (concat "Elixir." (match-string-no-properties 1))))
            found)
        (goto-char (point-min))
        (and (re-search-forward
              (concat "^-module([ \t]*\\(" derl-node-info--erlang-atom
                      "\\)[ \t]*)")
              nil t)
             (match-string-no-properties 1))))))

(defun derl-node-info--elixir-aliases ()
  "The aliases of the buffer (alias A.B, alias A.B, as: C): ((C . A.B)...)."
  (let ((aliases nil))
    (save-excursion
      (save-restriction
        (widen)
        (goto-char (point-min))
        (while (re-search-forward
                (concat "^[ \t]*alias[ \t]+\\(" derl-node-info--elixir-alias
                        "\\)\\(?:[ \t]*,[ \t]*as:[ \t]*\\("
                        derl-node-info--elixir-alias "\\)\\)?")
                nil t)
          (let* ((full (match-string-no-properties 1))
                 (as (or (match-string-no-properties 2)
                         (car (last (split-string full "\\."))))))
            (push (cons as full) aliases)))))
    aliases))

(defun derl-node-info-elixir-module (alias)
  "The Erlang name of the Elixir module ALIAS, with the buffer's aliases."
  (let* ((parts (split-string alias "\\."))
         (full (cdr (assoc (car parts) (derl-node-info--elixir-aliases)))))
    (concat "Elixir." (if full
                          (string-join (cons full (cdr parts)) ".")
                        alias))))

(defun derl-node-info--reference-bounds ()
  "The bounds of the reference around point: (START . END), or nil."
  (let ((chars (if (eq (derl-knowledge-buffer-language) 'elixir)
                   "A-Za-z0-9_.:?!"
                 "A-Za-z0-9_@:")))
    (save-excursion
      (let ((start (progn (skip-chars-backward chars) (point)))
            (end (progn (skip-chars-forward chars) (point))))
        ;; A trailing dot or colon is no part of it.
        (while (and (> end start) (memq (char-before end) '(?. ?:)))
          (setq end (1- end)))
        (while (and (< start end) (memq (char-after start) '(?.))
                    (eq (derl-knowledge-buffer-language) 'elixir))
          (setq start (1+ start)))
        (and (< start end) (cons start end))))))

(defun derl-node-info-parse-reference (text &optional language)
  "Parse TEXT, a reference written in LANGUAGE (default the buffer's).
Return (MODULE FUNCTION ARITY): MODULE a module's Erlang name or
nil for a local call, FUNCTION nil for a module, ARITY an integer
or nil.  Return nil when TEXT is no reference.  Erlang: lists,
lists:seq, lists:seq/2, seq/2; Elixir: Enum, Enum.map/2, :lists.seq,
map/2."
  (let ((language (or language (derl-knowledge-buffer-language)))
        (case-fold-search nil))
    (save-match-data
      (if (eq language 'elixir)
          (cond
           ((string-match
             (concat "\\`\\(?:\\(" derl-node-info--elixir-alias "\\)\\|:\\("
                     derl-node-info--erlang-atom "\\)\\)"
                     "\\(?:\\.\\(" derl-node-info--elixir-name "\\)"
                     "\\(?:/\\([0-9]+\\)\\)?\\)?\\'")
             text)
            (list (if (match-beginning 1)
                      (derl-node-info-elixir-module (match-string 1 text))
                    (match-string 2 text))
                  (match-string 3 text)
                  (and (match-beginning 4)
                       (string-to-number (match-string 4 text)))))
           ((string-match (concat "\\`\\(" derl-node-info--elixir-name
                                  "\\)\\(?:/\\([0-9]+\\)\\)?\\'")
                          text)
            (list nil (match-string 1 text)
                  (and (match-beginning 2)
                       (string-to-number (match-string 2 text))))))
        (cond
         ((string-match (concat "\\`\\(" derl-node-info--erlang-atom "\\):\\("
                                derl-node-info--erlang-atom
                                "\\)\\(?:/\\([0-9]+\\)\\)?\\'")
                        text)
          (list (match-string 1 text) (match-string 2 text)
                (and (match-beginning 3)
                     (string-to-number (match-string 3 text)))))
         ((string-match (concat "\\`\\(" derl-node-info--erlang-atom
                                "\\)/\\([0-9]+\\)\\'")
                        text)
          (list nil (match-string 1 text)
                (string-to-number (match-string 2 text))))
         ((string-match (concat "\\`" derl-node-info--erlang-atom "\\'") text)
          (list text nil nil)))))))

(defun derl-node-info-parse-any-reference (text)
  "Parse TEXT as a reference in the buffer's language, else in the other.
See `derl-node-info-parse-reference'."
  (let ((language (derl-knowledge-buffer-language)))
    (or (derl-node-info-parse-reference text language)
        (derl-node-info-parse-reference
         text (if (eq language 'elixir) 'erlang 'elixir)))))

(defun derl-node-info--count-arguments (open)
  "How many arguments the call whose parenthesis is at OPEN has, or nil.
Nil when the parenthesis is not closed."
  (derl-node-info--with-syntax
    (save-excursion
      (let ((close (ignore-errors (scan-lists open 1 0))))
        (when close
          (goto-char (1+ open))
          (derl-node-info--count-commas (1- close) t))))))

(defun derl-node-info--count-commas (end &optional whole)
  "Count the arguments from point up to END, at the call's own depth.
With WHOLE nil, count those begun before END (the one at END too).
Point is just after the call's opening parenthesis."
  (let ((count 0)
        (any nil)
        (done nil))
    (while (not done)
      (forward-comment (buffer-size))
      (cond
       ((>= (point) end) (setq done t))
       ((eq (char-after) ?,)
        (setq count (1+ count))
        (forward-char 1))
       ((memq (char-syntax (char-after)) '(?\( ?\"))
        (setq any t)
        (unless (ignore-errors (forward-sexp 1) t)
          (goto-char end)))
       (t (setq any t) (forward-char 1))))
    (cond (whole (if any (1+ count) 0))
          (t (1+ count)))))

(defun derl-node-info--pipe-before-p (start)
  "Non-nil if an Elixir pipe |> comes just before START."
  (save-excursion
    (goto-char start)
    (skip-chars-backward " \t\n")
    (and (>= (- (point) 2) (point-min))
         (equal (buffer-substring-no-properties (- (point) 2) (point)) "|>"))))

(defun derl-node-info-reference-at-point ()
  "The reference around point: (MODULE FUNCTION ARITY START END), or nil.
As `derl-node-info-parse-reference' parses it; a reference followed by
an open parenthesis is a call, whose ARITY is counted (one more after
Elixir's |>), and a bare name is a local call, or a module when not
followed by a parenthesis.  Point on the module part of
module:function means the module."
  (let ((bounds (derl-node-info--reference-bounds)))
    (when bounds
      (let* ((start (car bounds)) (end (cdr bounds))
             (language (derl-knowledge-buffer-language))
             (text (buffer-substring-no-properties start end))
             (parsed (derl-node-info-parse-reference text language)))
        (when parsed
          (pcase-let ((`(,module ,function ,arity) parsed))
            (let ((call (eq (char-after end) ?\()))
              ;; A bare Erlang atom before a parenthesis is a local call.
              (when (and call (null function) (eq language 'erlang))
                (setq function module module nil))
              (when (and (null arity) call function)
                (setq arity (derl-node-info--count-arguments end))
                (when (and arity (eq language 'elixir)
                           (derl-node-info--pipe-before-p start))
                  (setq arity (1+ arity))))
              ;; On the module part: the module.
              (let ((separator (and module function
                                    (string-match (if (eq language 'elixir)
                                                      "\\.[a-z_][^.]*\\'"
                                                    ":")
                                                  text)
                                    (+ start (match-beginning 0)))))
                (when (and separator (< (point) separator))
                  (setq function nil arity nil end separator)))
              ;; An Elixir name alone, not called, is a variable.
              (unless (and (eq language 'elixir) (null module) (not call)
                           (null arity))
                (list module function arity start end)))))))))

(defun derl-node-info-call-at-point ()
  "The call point is in: (MODULE FUNCTION ARGUMENT START END), or nil.
MODULE and FUNCTION name the function called (MODULE nil for a local
call), ARGUMENT is the number of the argument point is at, from 1,
and START and END the bounds of the call's name.  With point on a
reference that is not in a call's parentheses, that reference, with
ARGUMENT nil."
  (let* ((state (derl-node-info--parse-state (point)))
         (opens (reverse (nth 9 state)))
         (found nil))
    (unless (or (nth 3 state) (nth 4 state))
      (while (and opens (not found))
        (let* ((open (pop opens))
               (reference (and (eq (char-after open) ?\()
                               (derl-node-info-reference-at-point-before open))))
          (when reference
            (let ((argument (derl-node-info--argument-number open)))
              (when (and (eq (derl-knowledge-buffer-language) 'elixir)
                         (derl-node-info--pipe-before-p (nth 2 reference)))
                (setq argument (1+ argument)))
              (setq found (list (nth 0 reference) (nth 1 reference) argument
                                (nth 2 reference) (nth 3 reference))))))))
    (or found
        (let ((reference (derl-node-info-reference-at-point)))
          (and reference (nth 1 reference)
               (list (nth 0 reference) (nth 1 reference) nil
                     (nth 3 reference) (nth 4 reference)))))))

(defun derl-node-info--argument-number (open)
  "The number of the argument point is at, in the call opened at OPEN."
  (let ((here (point)))
    (derl-node-info--with-syntax
      (save-excursion
        (goto-char (1+ open))
        (derl-node-info--count-commas here)))))

(defun derl-node-info-reference-at-point-before (open)
  "The function reference that ends just before OPEN, a parenthesis.
Return (MODULE FUNCTION START END), MODULE nil for a local call."
  (save-excursion
    (goto-char open)
    (when (and (> open (point-min))
               (string-match-p "[A-Za-z0-9_@?!]" (string (char-before open))))
      (goto-char (1- open))
      (let ((bounds (derl-node-info--reference-bounds)))
        (when (and bounds (= (cdr bounds) open))
          (let ((parsed (derl-node-info-parse-reference
                         (buffer-substring-no-properties (car bounds)
                                                         (cdr bounds)))))
            (pcase parsed
              (`(,module nil ,_)
               (and (eq (derl-knowledge-buffer-language) 'erlang)
                    (list nil module (car bounds) (cdr bounds))))
              (`(,module ,function ,_)
               (list module function (car bounds) (cdr bounds))))))))))

(defun derl-node-info-local-modules (node)
  "Where a local call of the current buffer may go on NODE, in order.
The buffer's own module, then the modules every such call sees:
erlang for Erlang (and shell_default in a shell); Kernel and, in a
shell, IEx.Helpers for Elixir."
  (ignore node)
  (let ((own (and (not derl-shell--current) (derl-node-info-buffer-module))))
    (delq nil
          (append (list own)
                  (if (eq (derl-knowledge-buffer-language) 'elixir)
                      (append '("Elixir.Kernel" "Elixir.Kernel.SpecialForms")
                              (and derl-shell--current '("Elixir.IEx.Helpers")))
                    (append '("erlang")
                            (and derl-shell--current '("shell_default"))))))))

(provide 'derl-node-info)

;;; derl-node-info.el ends here

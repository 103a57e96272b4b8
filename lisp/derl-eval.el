;;; derl-eval.el --- Evaluate Erlang expressions on a node  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

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

;; M-x derl-eval-expression reads an Erlang expression and a node,
;; evaluates the expression there and shows the result as the Erlang
;; shell would (~tp): in the echo area, or in the buffer *derl-result*
;; when it is long.  Output of the evaluation goes to *erl-output*.
;;
;; The node does all the work, with the modules every node has: a small
;; Erlang program, which the node parses itself, scans, parses and
;; evaluates the expression, and formats its value, or the syntax error
;; or exception, as text.

;;; Code:

(require 'subr-x)
(require 'derl-options)
(require 'derl-conn)
(require 'derl-rpc)
(require 'derl-commands)

(declare-function erlang-mode "erlang" ())

(define-error 'derl-eval-error "Evaluation failed" 'derl-error)

(defcustom derl-eval-max-inline-length 200
  "Results longer than this many characters go to *derl-result*.
So do results of more than one line."
  :type 'natnum
  :group 'derl)

(defvar derl-eval-history nil
  "Erlang expressions read by `derl-eval-expression'.")

(defconst derl-eval--program "
(fun() ->
Text = fun(Chars) -> unicode:characters_to_binary(Chars) end,
Where = fun({Line, Column}) -> io_lib:format(\"~w:~w: \", [Line, Column]);
           (Line) -> io_lib:format(\"~w: \", [Line]) end,
Syntax = fun({Loc, Mod, Desc}) ->
                 {syntax, Text([Where(Loc), Mod:format_error(Desc)])} end,
Trim = fun(M, _, _) -> lists:member(M, [erl_eval, rpc, erpc, proc_lib]) end,
try case erl_scan:string(Source, {1, 1}) of
        {ok, Tokens, _} ->
            case erl_parse:parse_exprs(Tokens) of
                {ok, Exprs} ->
                    {value, V, _} = erl_eval:exprs(Exprs,
                                                   erl_eval:new_bindings()),
                    {ok, Text(io_lib:format(\"~tp\", [V]))};
                {error, E} -> Syntax(E)
            end;
        {error, E, _} -> Syntax(E)
    end
catch
    Class:Reason:Stack ->
        {exception,
         Text(try erl_error:format_exception(Class, Reason, Stack,
                                             #{stack_trim_fun => Trim})
              catch error:undef ->
                      io_lib:format(\"exception ~w: ~tp\", [Class, Reason])
              end)}
end
end)().
"
  "The program that evaluates an expression, given as the string Source.
It returns {ok, Text}, {syntax, Text} or {exception, Text}.  Its
variables are local to a fun, so that the bindings erl_eval returns
hold Source alone.")

(defun derl-eval--call (module function &rest args)
  "The abstract form of a call of MODULE:FUNCTION with ARGS, forms too."
  (vector 'call 1 (vector 'remote 1 (vector 'atom 1 module)
                          (vector 'atom 1 function))
          args))

(defconst derl-eval--run-program
  (derl-eval--call
   'erl_eval 'exprs
   (derl-eval--call
    'erlang 'element [integer 1 2]
    (derl-eval--call
     'erl_parse 'parse_exprs
     (derl-eval--call 'erlang 'element [integer 1 2]
                      (derl-eval--call 'erl_scan 'string [var 1 Program]))))
   [var 1 Bindings])
  "The abstract form of the call that runs `derl-eval--program'.
The node itself parses the program: abstract forms do not survive a
trip through Lisp, where the atom nil of {nil, Line} becomes [].")

(defun derl-eval--source (expression)
  "EXPRESSION as the source of expressions: ended with a full stop."
  (let ((text (string-trim expression)))
    (if (string-suffix-p "." text) text (concat text "."))))

(defun derl-eval--text (bytes)
  "BYTES, UTF-8 text from the node, as a string."
  (decode-coding-string (if (erl-binaryp bytes) (erl-binary-string bytes) bytes)
                        'utf-8))

(defun derl-eval (node expression &optional timeout)
  "Evaluate EXPRESSION, a string of Erlang, on NODE; return the result text.
The text is the value printed as the Erlang shell does (~tp).  A
syntax error or an exception signals `derl-eval-error' whose data
is a readable text.  Output of the evaluation goes to *erl-output*.
Wait at most TIMEOUT seconds (default `derl-call-timeout'); errors
of `derl-call' are signalled as they are."
  (setq node (derl--node-symbol node))
  (let ((result (derl-call
                 node 'erl_eval 'expr
                 (list derl-eval--run-program
                       ;; An orddict: sorted by variable name.
                       (list (vector 'Bindings
                                     (list (vector 'Source
                                                   (derl-eval--source
                                                    expression))))
                             (vector 'Program derl-eval--program)))
                 timeout)))
    (pcase result
      (`[value [value [ok ,text] ,_] ,_] (derl-eval--text text))
      (`[value [value [syntax ,text] ,_] ,_]
       (signal 'derl-eval-error
               (list (concat "Syntax error: " (derl-eval--text text)))))
      (`[value [value [exception ,text] ,_] ,_]
       (signal 'derl-eval-error
               ;; As the shell shows them: "** exception error: ...".
               (list (concat "** " (string-trim (derl-eval--text text))))))
      (_ (signal 'derl-eval-error
                 (list (format "Unexpected answer from %s: %s" node
                               (derl-term-to-string result))))))))

(defun derl-eval-read-expression (node)
  "Read an Erlang expression to evaluate on NODE (nil when not known yet)."
  (read-string (if node (format "Erlang expression on %s: " node)
                 "Erlang expression: ")
               nil 'derl-eval-history))

(defun derl-eval-show (text &optional heading)
  "Show TEXT in the echo area, or in *derl-result* when it is long.
HEADING, when given, is the first line of the buffer, as a comment."
  (if (and (not (string-search "\n" text))
           (<= (length text) derl-eval-max-inline-length))
      (message "%s" text)
    (with-current-buffer (get-buffer-create "*derl-result*")
      (let ((inhibit-read-only t))
        (erase-buffer)
        (when heading
          (insert "%% " heading "\n"))
        (insert text "\n")
        (if (or (fboundp 'erlang-mode) (require 'erlang nil t))
            (erlang-mode)
          (fundamental-mode))
        (setq buffer-read-only t)
        (goto-char (point-min)))
      (display-buffer (current-buffer))
      (message "%s" (if (string-search "\n" text)
                        (concat (substring text 0 (string-search "\n" text))
                                "  (all of it in *derl-result*)")
                      "The result is in *derl-result*")))))

;;;###autoload
(defun derl-eval-expression (expression node)
  "Evaluate the Erlang EXPRESSION on NODE and show the result.
The result is printed the way the Erlang shell prints it, in the
echo area, or in the buffer *derl-result* when it is long.  Syntax
errors and exceptions are shown the same way; output of the
evaluation goes to *erl-output*.  Interactively, read EXPRESSION,
with its own history, then NODE, by default the last one used."
  (interactive
   (let ((expression (derl-eval-read-expression nil)))
     (list expression
           (derl-read-node "Evaluate on node" (derl-default-node)))))
  (setq node (derl--node-symbol node))
  (condition-case err
      (progn
        (derl-eval-show
         (derl-with-progress (format "Evaluating on %s..." node)
           (prog1 (derl-eval node expression)
             (derl-note-node-result node t)))
         (format "%s on %s" (string-trim expression) node)))
    (derl-error
     (unless (eq (car err) 'derl-eval-error)
       (derl-note-node-result node nil))
     (derl-eval-show (if (eq (car err) 'derl-eval-error)
                         (cadr err)
                       (format "Cannot evaluate on %s: %s" node
                               (derl-error-reason err)))
                     (format "%s on %s" (string-trim expression) node)))))

(provide 'derl-eval)

;;; derl-eval.el ends here

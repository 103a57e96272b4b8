;;; mcase.el --- Erlang-style pattern matching for Lisp  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;; Keywords: erlang, languages, lisp

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

;; Pattern matching with Distel's syntax and semantics: `mcase' (a
;; `case' whose clauses are patterns) and `mcase-let' (match one
;; pattern or exit).  `erl-receive' in erl.el uses the same patterns.
;;
;; Patterns:
;;
;;   _               the wild card: matches anything, binds nothing
;;   VAR             any other symbol binds VAR; a variable that occurs
;;                   twice in one pattern must match `equal' values both
;;                   times.  A variable never matches `erl-tag', so a
;;                   tuple pattern cannot match a pid, port or binary.
;;   'CONSTANT       a quoted object, matched with `equal'
;;   nil, t, :key,   self-evaluating constants, matched with `equal'
;;   42, "str", []
;;   ,VAR            the current value of the Lisp variable VAR
;;   (P1 P2 ...)     a list of that length whose elements match
;;   (P1 ... . PT)   a list whose first elements match P1..., and whose
;;                   remaining tail matches PT
;;   [P1 P2 ...]     a vector (an Erlang tuple) of that length
;;
;; Patterns are compiled when the macro is expanded into plain tests
;; and accessors (`consp', `car', `aref', `eq'...), so matching costs
;; what the hand-written tests would.  `mcase-match' interprets a
;; pattern at run time, for patterns that are only known then.
;;
;; When no clause of `mcase' matches, it signals `erl-exit-signal'
;; with the reason `case-clause'; `mcase-let' signals it with
;; [badmatch PATTERN VALUE].  Inside an erl.el process that signal
;; ends the process with that reason, as in Distel.

;;; Code:

(require 'erlext)                       ; `erl-tag'

(define-error 'erl-exit-signal "Erlang process exit")

;;;; Compiling patterns

(defun mcase--bound-var (pattern)
  "Return the variable if PATTERN is a bound-variable pattern, else nil.
That is ,VAR, read as (\\, VAR), or a symbol whose name starts with
a comma, which is how Emacs 26 and older read ,VAR outside a
backquote."
  (cond ((and (consp pattern) (eq (car pattern) '\,)
              (consp (cdr pattern)) (null (cddr pattern))
              (symbolp (cadr pattern)))
         (cadr pattern))
        ((and (symbolp pattern) (not (keywordp pattern))
              (let ((name (symbol-name pattern)))
                (and (> (length name) 1) (eq (aref name 0) ?,))))
         (intern (substring (symbol-name pattern) 1)))))

(defun mcase--quoted-p (pattern)
  "Return non-nil if PATTERN is a quoted constant, (quote X)."
  (and (consp pattern) (eq (car pattern) 'quote)
       (consp (cdr pattern)) (null (cddr pattern))))

(defun mcase--constant-test (value path)
  "Return a form testing that the object at PATH is `equal' to VALUE."
  (cond ((null value) `(null ,path))
        ((or (symbolp value) (fixnump value)) `(eq ,path ',value))
        ((numberp value) `(eql ,path ',value))
        (t `(equal ,path ',value))))

(defun mcase--variable-p (pattern)
  "Return non-nil if PATTERN is a symbol that binds a variable."
  (and (symbolp pattern) pattern (not (eq pattern t))
       (not (eq pattern '_)) (not (keywordp pattern))))

(defun mcase--compile (pattern path state)
  "Compile PATTERN, matched against the object at PATH, into STATE.
STATE is a cons (TESTS . BINDINGS), both in reverse order: TESTS
are forms that must all be true, BINDINGS are (VAR . PATH) pairs.
Return the updated STATE."
  (let ((var (mcase--bound-var pattern)))
    (cond
     ((eq pattern '_) state)
     (var (push `(equal ,path ,var) (car state)) state)
     ((mcase--quoted-p pattern)
      (push (mcase--constant-test (cadr pattern) path) (car state))
      state)
     ((mcase--variable-p pattern)
      (let ((seen (assq pattern (cdr state))))
        (if seen
            (push `(equal ,path ,(cdr seen)) (car state))
          (push `(not (eq ,path erl-tag)) (car state))
          (push (cons pattern path) (cdr state))))
      state)
     ((consp pattern)
      (push `(consp ,path) (car state))
      (mcase--compile (cdr pattern) `(cdr ,path)
                      (mcase--compile (car pattern) `(car ,path) state)))
     ((and (vectorp pattern) (> (length pattern) 0))
      (push `(vectorp ,path) (car state))
      (push `(eq (length ,path) ,(length pattern)) (car state))
      (dotimes (i (length pattern))
        (setq state (mcase--compile (aref pattern i) `(aref ,path ,i) state)))
      state)
     (t                                 ; nil, t, keywords, numbers, strings, []
      (push (mcase--constant-test pattern path) (car state))
      state))))

(defun mcase-compile-pattern (pattern value)
  "Compile PATTERN to match the value of the variable VALUE.
Return (TEST . BINDINGS): TEST is a form that is non-nil when the
value matches, BINDINGS a `let' binding list of the pattern's
variables to the matched parts, valid once TEST is true."
  (let* ((state (mcase--compile pattern value (cons nil nil)))
         (tests (reverse (car state))))
    (cons (cond ((null tests) t)
                ((null (cdr tests)) (car tests))
                (t `(and ,@tests)))
          (mapcar (lambda (b) (list (car b) (cdr b)))
                  (reverse (cdr state))))))

(defun mcase--wrap-body (bindings body)
  "Return BODY evaluated with BINDINGS, a `let' binding list.
The variables are also passed to `ignore', which costs nothing
once byte-compiled and keeps unused pattern variables from being
reported by the byte compiler."
  (if (null bindings)
      `(progn ,@body)
    (let ((used (delq nil (mapcar (lambda (b)
                                    (unless (eq (aref (symbol-name (car b)) 0)
                                                ?_)
                                      (car b)))
                                  bindings))))
      `(let ,bindings
         ,@(and used `((ignore ,@used)))
         ,@body))))

(defun mcase-compile-clauses (value clauses fallback)
  "Return a form that matches the value of variable VALUE against CLAUSES.
Each clause is (PATTERN BODY...).  The first clause whose pattern
matches runs its BODY with the pattern variables bound, and the
form returns the value of that BODY; when none matches, the form
evaluates FALLBACK.

A pattern that matches anything (such as _) makes the last clause
of the `cond': FALLBACK and any clauses after it could never run,
and Emacs 30's byte compiler warns about a clause that follows a
default one.  Clauses after such a pattern are reported with a
warning when the form is compiled."
  (let (compiled-clauses default)
    (dolist (clause clauses)
      (unless (consp clause)
        (error "Malformed mcase clause: %S" clause))
      (unless default
        (let ((compiled (mcase-compile-pattern (car clause) value)))
          (push (list (car compiled)
                      (mcase--wrap-body (cdr compiled) (cdr clause)))
                compiled-clauses)
          (setq default (eq (car compiled) t)))))
    (let* ((used (length compiled-clauses))
           (form `(cond ,@(nreverse compiled-clauses)
                        ,@(unless default `((t ,fallback))))))
      (if (< used (length clauses))
          (macroexp-warn-and-return
           (format "mcase: clauses after the pattern %S never match"
                   (car (nth (1- used) clauses)))
           form)
        form))))

;;;; The macros

;;;###autoload
(defmacro mcase (object &rest clauses)
  "Match OBJECT against the patterns of CLAUSES; run the first that matches.
The syntax is like `cl-case':

  (mcase EXPR
    (PATTERN BODY...)
    ...)

OBJECT is evaluated once.  The BODY of the first clause whose
PATTERN matches runs with the pattern's variables bound to the
matching parts, and its value is returned.  If no pattern
matches, signal `erl-exit-signal' with the reason `case-clause'.
See `mcase-let' for the pattern syntax."
  (declare (indent 1) (debug (form &rest (sexp body))))
  (let ((value (make-symbol "value")))
    `(let ((,value ,object))
       ,(mcase-compile-clauses value clauses
                               '(signal 'erl-exit-signal '(case-clause))))))

;;;###autoload
(defmacro mcase-let (pattern object &rest body)
  "Match PATTERN with OBJECT, and run BODY with the pattern's bindings.
If OBJECT does not match, signal `erl-exit-signal' with the
reason [badmatch PATTERN OBJECT].

The pattern syntax:

  _            Wild card: matches anything, binds nothing.
  VAR          Any other symbol: bind VAR.  A variable that occurs
               several times in one pattern must match `equal'
               values each time.  A variable never matches `erl-tag',
               so tuple patterns don't match pids, ports or binaries.
  \\='CONSTANT    A quoted constant, matched with `equal'.
  nil, t, 42,  Self-evaluating constants (numbers, strings, keywords,
  \"s\", :k, []  nil, t and the empty vector), matched with `equal'.
  ,VAR         The current value of the Lisp variable VAR.
  (P ...)      A list of that length; each element matches its P.
  (P ... . PT) A list whose leading elements match the Ps and whose
               remaining tail matches PT.
  [P ...]      A vector (an Erlang tuple) of that length."
  (declare (indent 2) (debug (sexp form body)))
  (let ((value (make-symbol "value")))
    `(let ((,value ,object))
       ,(mcase-compile-clauses
         value `((,pattern ,@body))
         `(signal 'erl-exit-signal
                  (list (vector 'badmatch ',pattern ,value)))))))

(define-obsolete-function-alias 'mlet #'mcase-let "2014-01-12")

;;;; Matching at run time

(defun mcase-match (pattern object &optional bindings)
  "Match OBJECT against PATTERN at run time; return the bindings or `fail'.
The result is an alist of (VARIABLE . VALUE) for the pattern's
variables, added to the alist BINDINGS, or the symbol `fail' when
OBJECT does not match.  A ,VAR pattern uses VAR's global or dynamic
value.  The macros `mcase' and `mcase-let' compile patterns instead
and are much faster; this function is for patterns only known at
run time."
  (let ((var (mcase--bound-var pattern)))
    (cond
     ((eq bindings 'fail) 'fail)
     ((eq pattern '_) bindings)
     (var (if (equal object (symbol-value var)) bindings 'fail))
     ((mcase--quoted-p pattern)
      (if (equal object (cadr pattern)) bindings 'fail))
     ((mcase--variable-p pattern)
      (let ((seen (assq pattern bindings)))
        (cond ((eq object erl-tag) 'fail)
              ((null seen) (cons (cons pattern object) bindings))
              ((equal (cdr seen) object) bindings)
              (t 'fail))))
     ((consp pattern)
      (if (consp object)
          (mcase-match (cdr pattern) (cdr object)
                       (mcase-match (car pattern) (car object) bindings))
        'fail))
     ((and (vectorp pattern) (> (length pattern) 0))
      (if (and (vectorp object) (= (length object) (length pattern)))
          (let ((i 0))
            (while (and (< i (length pattern)) (not (eq bindings 'fail)))
              (setq bindings (mcase-match (aref pattern i) (aref object i)
                                          bindings))
              (setq i (1+ i)))
            bindings)
        'fail))
     ((equal pattern object) bindings)
     (t 'fail))))

(provide 'mcase)

;;; mcase.el ends here

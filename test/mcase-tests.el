;;; mcase-tests.el --- ERT tests for mcase.el  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; Every pattern form of `mcase' and `mcase-let', compiled and
;; interpreted (`mcase-match'), in lexical and dynamic binding.

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'mcase)
(require 'erl)                          ; `erl-receive'

(defun mcase-tests--match (pattern object)
  "Return the bindings the compiled PATTERN gives OBJECT, or `fail'.
The bindings are an alist sorted by variable name."
  (let* ((vars (let (vs)
                 (cl-labels ((walk (p)
                               (cond ((and (symbolp p) p (not (eq p t))
                                           (not (eq p '_)) (not (keywordp p))
                                           (not (string-prefix-p
                                                 "," (symbol-name p))))
                                      (cl-pushnew p vs))
                                     ((and (consp p) (memq (car p)
                                                           '(quote \,))))
                                     ((consp p) (walk (car p)) (walk (cdr p)))
                                     ((vectorp p) (mapc #'walk p)))))
                   (walk pattern))
                 vs))
         (form `(mcase ',object
                  (,pattern (list ,@(mapcar (lambda (v) `(cons ',v ,v))
                                            vars)))
                  ;; Nothing follows a catch-all (it would warn).
                  ,@(unless (eq pattern '_) '((_ 'fail))))))
    (let ((result (eval form t)))
      (if (eq result 'fail)
          'fail
        (sort result (lambda (a b) (string< (car a) (car b))))))))

(defun mcase-tests--interp (pattern object)
  "Like `mcase-tests--match' for PATTERN and OBJECT, with `mcase-match'."
  (let ((result (mcase-match pattern object)))
    (if (eq result 'fail)
        'fail
      (sort (copy-sequence result)
            (lambda (a b) (string< (car a) (car b)))))))

(defmacro mcase-tests--expect (pattern object expected)
  "Check that PATTERN matched against OBJECT gives EXPECTED, both ways."
  `(progn
     (should (equal (mcase-tests--match ',pattern ',object) ',expected))
     (should (equal (mcase-tests--interp ',pattern ',object) ',expected))))

(ert-deftest mcase-variables-bind ()
  "A symbol binds the matched object."
  (mcase-tests--expect x 42 ((x . 42)))
  (mcase-tests--expect x (1 2) ((x 1 2)))
  (mcase-tests--expect (a b) (1 2) ((a . 1) (b . 2)))
  (should (equal (mcase '(1 . 2) ((a . b) (list b a))) '(2 1))))

(ert-deftest mcase-wildcard ()
  "`_' matches anything and binds nothing, even several times."
  (mcase-tests--expect _ (1 2) nil)
  (mcase-tests--expect (_ _) (1 2) nil)
  (mcase-tests--expect [_ x _] [1 2 3] ((x . 2))))

(ert-deftest mcase-repeated-variable ()
  "A variable that occurs twice must match equal values."
  (mcase-tests--expect (x x) (1 1) ((x . 1)))
  (mcase-tests--expect (x x) (1 2) fail)
  (mcase-tests--expect [x (y x)] [(1) (2 (1))] ((x 1) (y . 2)))
  (mcase-tests--expect [x (y x)] [(1) (2 (3))] fail))

(ert-deftest mcase-quoted-constants ()
  "Quoted constants match with `equal'."
  (mcase-tests--expect 'foo foo nil)
  (mcase-tests--expect 'foo bar fail)
  (mcase-tests--expect '(1 2 3) (1 2 3) nil)
  (mcase-tests--expect '(1 2 3) (1 2) fail)
  (mcase-tests--expect '"abc" "abc" nil)
  (mcase-tests--expect '[a b] [a b] nil)
  (mcase-tests--expect (x 'quote) (1 quote) ((x . 1)))
  (mcase-tests--expect 'nil nil nil))

(ert-deftest mcase-self-evaluating-constants ()
  "Numbers, strings, keywords, nil, t and [] match themselves."
  (mcase-tests--expect 42 42 nil)
  (mcase-tests--expect 42 43 fail)
  (mcase-tests--expect 42 42.0 fail)
  (mcase-tests--expect 1.5 1.5 nil)
  (mcase-tests--expect 1.5 1 fail)
  (mcase-tests--expect 100000000000000000000000 100000000000000000000000 nil)
  (mcase-tests--expect "abc" "abc" nil)
  (mcase-tests--expect "abc" "abd" fail)
  (mcase-tests--expect "abc" abc fail)
  (mcase-tests--expect :key :key nil)
  (mcase-tests--expect :key :other fail)
  (mcase-tests--expect nil nil nil)
  (mcase-tests--expect nil (1) fail)
  (mcase-tests--expect t t nil)
  (mcase-tests--expect t nil fail)
  (mcase-tests--expect [] [] nil)
  (mcase-tests--expect [] [1] fail)
  (mcase-tests--expect (t nil 1) (t nil 1) nil))

(ert-deftest mcase-bound-variables ()
  "A ,VAR pattern matches the current value of VAR."
  (let ((want 'foo))
    (should (eq (mcase 'foo (,want 'yes) (_ 'no)) 'yes))
    (should (eq (mcase 'bar (,want 'yes) (_ 'no)) 'no))
    (should (equal (mcase '(foo 1) ((,want n) n) (_ 'no)) 1))
    (should (equal (mcase [foo [foo]] ([x [,want]] x) (_ 'no)) 'foo)))
  (let ((want '(1 2)))
    (should (eq (mcase (list 1 2) (,want 'yes) (_ 'no)) 'yes)))
  ;; ,VAR refers to the variable as it was before the pattern binds it.
  (let ((x 1))
    (should (equal (mcase '(2 1) ((x ,x) x) (_ 'no)) 2)))
  ;; Emacs 26 read ,VAR outside a backquote as a symbol named ",VAR".
  (should (eq (eval `(let ((want 'foo))
                       (mcase 'foo (,(intern ",want") 'yes) (_ 'no)))
                    t)
              'yes)))

(defvar mcase-tests--special 'special-value
  "A dynamic variable for `mcase-match' ,VAR patterns.")

(ert-deftest mcase-match-bound-variable ()
  "`mcase-match' reads ,VAR from the variable's dynamic value."
  (should (equal (mcase-match '(\, mcase-tests--special) 'special-value) nil))
  (should (eq (mcase-match '(\, mcase-tests--special) 'other) 'fail)))

(ert-deftest mcase-lists ()
  "Lists match structurally, with their length."
  (mcase-tests--expect (a b c) (1 2 3) ((a . 1) (b . 2) (c . 3)))
  (mcase-tests--expect (a b c) (1 2) fail)
  (mcase-tests--expect (a b) (1 2 3) fail)
  (mcase-tests--expect (a b) [1 2] fail)
  (mcase-tests--expect (a) nil fail)
  (mcase-tests--expect ((a b) (c)) ((1 2) (3)) ((a . 1) (b . 2) (c . 3)))
  (mcase-tests--expect (call _ 'lists 'length (_))
                       (call 42 lists length ((1 2 3)))
                       ((call . call)))
  (mcase-tests--expect ('call _ 'lists 'length (_))
                       (call 42 lists length ((1 2 3)))
                       nil))

(ert-deftest mcase-dotted-tails ()
  "A dotted pattern binds or matches the rest of the list."
  (mcase-tests--expect (a . rest) (1 2 3) ((a . 1) (rest 2 3)))
  (mcase-tests--expect (a . rest) (1) ((a . 1) (rest)))
  (mcase-tests--expect (a b . _) (1 2 3 4) ((a . 1) (b . 2)))
  (mcase-tests--expect (a b . _) (1) fail)
  (mcase-tests--expect (a . 3) (1 . 3) ((a . 1)))
  (mcase-tests--expect (a . 3) (1 . 4) fail)
  (mcase-tests--expect (a . 'z) (1 . z) ((a . 1))))

(ert-deftest mcase-vectors ()
  "Vectors (Erlang tuples) match by length and elements."
  (mcase-tests--expect [a b] [1 2] ((a . 1) (b . 2)))
  (mcase-tests--expect [a b] [1 2 3] fail)
  (mcase-tests--expect [a b] (1 2) fail)
  (mcase-tests--expect ['rex ['ok x]] [rex [ok 5]] ((x . 5)))
  (mcase-tests--expect ['rex ['ok x]] [rex [error 5]] fail)
  (mcase-tests--expect ['int ['new_process (pid mfa status info)]]
                       [int [new_process (p m s i)]]
                       ((info . i) (mfa . m) (pid . p) (status . s))))

(ert-deftest mcase-variables-never-match-erl-tag ()
  "Tuple patterns don't match pids or binaries; the wild card does."
  (let ((pid (vector erl-tag 'erl-pid 'n@h 1 0 0)))
    (should (eq (mcase pid ([a b c d e f] (list a b c d e f)) (_ 'no)) 'no))
    (should (eq (mcase-match '[a b c d e f] pid) 'fail))
    (should (eq (mcase pid ([_ _ _ _ _ _] 'yes) (_ 'no)) 'yes))
    (should (equal (mcase pid ([,erl-tag 'erl-pid node _ _ _] node))
                   'n@h))
    (should (equal (mcase pid (p p)) pid))))

(ert-deftest mcase-first-clause-wins ()
  "Clauses are tried in order."
  (should (eq (mcase '(call 42 lists length ((1 2 3)))
                (t 'no)
                (1 'no)
                ((call _ 'lists 'length (_)) 'yes)
                (_ 'last))
              'yes))
  (should (eq (mcase 1 (x 'first) (1 'second)) 'first)))

(ert-deftest mcase-body-value-and-empty-body ()
  "The value is that of the clause's last form; an empty body gives nil."
  (should (equal (mcase 1 (x (setq x (+ x 1)) (* x 10))) 20))
  (should (null (mcase 1 (_)))))

(ert-deftest mcase-no-match-signals ()
  "Without a matching clause `mcase' exits with reason `case-clause'."
  (let ((err (should-error (mcase 3 (1 'a) (2 'b)) :type 'erl-exit-signal)))
    (should (equal (cdr err) '(case-clause))))
  (should (memq 'error (get 'erl-exit-signal 'error-conditions))))

(ert-deftest mcase-let-binds-or-signals-badmatch ()
  "`mcase-let' binds its pattern or signals [badmatch PATTERN VALUE]."
  (should (equal (mcase-let [a (b . c)] [1 (2 3)] (list a b c))
                 '(1 2 (3))))
  (let ((err (should-error (mcase-let [a b] [1 2 3] (list a b))
                           :type 'erl-exit-signal)))
    (should (equal (cdr err) (list [badmatch [a b] [1 2 3]])))))

(ert-deftest mcase-evaluates-object-once ()
  "The object expression is evaluated exactly once."
  (let ((n 0))
    (should (eq (mcase (progn (setq n (1+ n)) '(2 1))
                  ((1 _) 'a)
                  ((2 _) 'b)
                  (_ 'c))
                'b))
    (should (= n 1))))

(ert-deftest mcase-dynamic-binding ()
  "Under dynamic binding pattern variables and ,VAR work too."
  (should (equal (eval '(let ((want 'k))
                          (mcase '[k (1 2)]
                            ([,want (a . b)] (list a b))))
                        nil)
                 '(1 (2)))))

(ert-deftest mcase-compiles-to-plain-tests ()
  "The expansion is plain code: no run-time pattern interpretation."
  (let ((expansion (macroexpand-all '(mcase x ([a 'b (c . d)] a) (_ nil)))))
    (should-not (string-match-p "mcase-match" (format "%S" expansion)))
    (should (string-match-p "aref" (format "%S" expansion)))))

;; Emacs 30's byte compiler warns "Useless clause following default
;; `cond' clause", and derl compiles with warnings as errors.
(defun mcase-tests--clause-after-default (form)
  "Return the first `cond' in FORM with a clause after a t clause, or nil."
  (cond ((and (eq (car-safe form) 'cond)
              (let ((clauses (cdr form)))
                (cl-loop for (clause . rest) on clauses
                         thereis (and (eq (car-safe clause) t) rest))))
         form)
        ((consp form)
         (or (mcase-tests--clause-after-default (car form))
             (mcase-tests--clause-after-default (cdr form))))))

(ert-deftest mcase-no-clause-after-default ()
  "A pattern that matches anything ends the `cond': no fallback after it."
  (dolist (form '((mcase x ('a 1) (_ 2))
                  (mcase x (_ 2))
                  (mcase-let _ x 1)
                  (erl-receive () (('a 1) (_ nil)))
                  (erl-receive () (('a 1) (_ nil)) (message "after"))))
    (should-not (mcase-tests--clause-after-default (macroexpand-all form))))
  ;; Without a catch-all the fallback is still there.
  (should (equal (mcase 'b ('a 1) (_ 2)) 2))
  (should (equal (condition-case err (mcase 'b ('a 1))
                   (erl-exit-signal (cdr err)))
                 '(case-clause))))

(ert-deftest mcase-clauses-after-catch-all-warn ()
  "Clauses after a pattern that matches anything are dropped with a warning."
  (let ((lexical-binding t)
        (warnings nil))
    (let* ((byte-compile-log-warning-function
            (lambda (string &rest _) (push string warnings)))
           (f (byte-compile '(lambda (x) (mcase x (_ 'any) ('a 'never))))))
      (should (eq (funcall f 'a) 'any)))
    (should (cl-some (lambda (w) (string-match-p "never match" w))
                     warnings))))

(ert-deftest mcase-byte-compiles-cleanly ()
  "Unused pattern variables don't make the byte compiler complain."
  (let ((lexical-binding t)
        (byte-compile-error-on-warn t))
    (should (functionp
             (byte-compile
              '(lambda (msg)
                 (mcase msg
                   (['rex ['ok unused]] 'ok)
                   ([a _b] 'two)
                   (_ 'other))))))
    (should (eq (funcall (byte-compile
                          '(lambda (msg)
                             (mcase msg
                               (['rex ['ok unused]] 'ok)
                               (_ 'other))))
                         [rex [ok 1]])
                'ok))))

(ert-deftest mcase-interpreter-agrees-with-compiler ()
  "`mcase-match' and the compiled matcher agree on many cases."
  (let ((patterns '(x _ 'a 1 "s" :k nil t [] (x . y) (x y) (x x) [x y]
                      [x [y z]] (x (y . z)) [_ 'b] ('a . _) (x . x)))
        (objects '(a 1 "s" :k nil t [] (1 . 2) (1 2) (1 1) [1 2] [1 [2 3]]
                     (1 (2 3)) [a b] (a b c) ((1) . (1)) [1 2 3])))
    (dolist (p patterns)
      (dolist (o objects)
        (should (equal (list p o (mcase-tests--match p o))
                       (list p o (mcase-tests--interp p o))))))))

(provide 'mcase-tests)

;;; mcase-tests.el ends here

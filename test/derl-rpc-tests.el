;;; derl-rpc-tests.el --- remote calls, monitors, spawn and output  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; `derl-call', `derl-call-async' and Distel's `erl-rpc' against real
;; Erlang and Elixir nodes; the default group leader's I/O protocol.

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'derl-ert)
(require 'derl-tests)
(require 'derl-rpc)

;;;; derl-call

(ert-deftest derl-rpc-call-basics ()
  "Results come back decoded; lossless mode keeps binaries apart."
  (derl-test-with-node (node)
    (should (eq (derl-call node 'erlang 'node nil) node))
    (should (equal (derl-call node 'lists 'seq '(1 100000))
                   (number-sequence 1 100000)))
    (should (equal (derl-call node 'erlang 'list_to_binary '("abc")) "abc"))
    (should (equal (derl-call node 'erlang 'list_to_binary '("abc") nil t)
                   (erl-binary "abc")))
    (should (equal (derl-call node 'lists 'reverse '((a b c)) nil t)
                   '(c b a)))))

(ert-deftest derl-rpc-call-raises ()
  "A call that raises signals a readable `derl-rpc-error'."
  (derl-test-with-node (node)
    (let ((err (should-error (derl-call node 'erlang 'error '(badarith))
                             :type 'derl-rpc-error)))
      (should (string-match-p "erlang:error/1 on .*badarith"
                              (error-message-string err)))
      (should (eq (nth 2 err) 'badarith))
      (should (consp (nth 3 err))))
    (let ((err (should-error (derl-call node 'nosuchmodule 'f '(1))
                             :type 'derl-rpc-error)))
      (should (eq (nth 2 err) 'undef)))
    (let ((err (should-error (derl-call node 'erlang 'exit '(bye))
                             :type 'derl-rpc-error)))
      (should (eq (nth 2 err) 'bye)))
    ;; Raising in lossless mode gives the same reason.
    (let ((err (should-error (derl-call node 'erlang 'error '(oops) nil t)
                             :type 'derl-rpc-error)))
      (should (eq (nth 2 err) 'oops)))))

(ert-deftest derl-rpc-call-timeout-and-late-reply ()
  "A call past its timeout signals `derl-timeout'; its reply goes nowhere."
  (derl-test-with-node (node)
    (should-error (derl-call node 'timer 'sleep '(1500) 0.3)
                  :type 'derl-timeout)
    ;; The late reply (ok) arrives while this call waits: it must not
    ;; be taken for this call's result.
    (should (eq (derl-call node 'timer 'sleep '(2500)) 'ok))
    (should (equal (derl-call node 'erlang 'atom_to_list '(late)) "late"))
    (should (= (hash-table-count derl-rpc--pending) 0))))

(ert-deftest derl-rpc-call-quit ()
  "Quitting a call leaves nothing pending, and later calls work."
  (derl-test-with-node (node)
    (derl-connect node)
    (let ((timer (run-at-time 0.3 nil (lambda () (signal 'quit nil)))))
      (unwind-protect
          (should (eq (condition-case nil
                          (derl-call node 'timer 'sleep '(1000))
                        (quit 'quit))
                      'quit))
        (cancel-timer timer)))
    (should (= (hash-table-count derl-rpc--pending) 0))
    (should (eq (derl-call node 'erlang 'node nil) node))))

(ert-deftest derl-rpc-call-errors ()
  "A node that is not there fails the call with a connection error."
  (derl-test-configure)
  (should-error (derl-call 'nosuchnode@localhost 'erlang 'node nil 5)
                :type 'derl-error)
  (should (= (hash-table-count derl-rpc--pending) 0)))

(ert-deftest derl-rpc-call-async ()
  "`derl-call-async' calls back with the result, or with the error."
  (derl-test-with-node (node)
    (let (result failure)
      (derl-call-async node 'lists 'sum '((1 2 3))
                       (lambda (v) (setq result v)))
      (derl-call-async node 'erlang 'error '(nope) #'ignore
                       :on-error (lambda (c) (setq failure c)))
      (derl-test-wait (lambda () (and result failure)))
      (should (= result 6))
      (should (eq (car failure) 'derl-rpc-error))
      (should (eq (nth 2 failure) 'nope)))))

(ert-deftest derl-rpc-distel-api ()
  "`erl-rpc' delivers the reply to its continuation, as Distel's does."
  (derl-test-with-node (node)
    (let (got)
      (erl-rpc (lambda (reply tag) (setq got (list reply tag)))
               '(here) node 'lists 'reverse '((a b)))
      (derl-test-wait (lambda () got))
      (should (equal got '((b a) here))))))

(ert-deftest derl-rpc-call-elixir ()
  "Calls to an Elixir node: strings, sums, and a raised ArithmeticError."
  (skip-unless (executable-find "elixir"))
  (derl-test-configure)
  (let ((node (derl-test-start-elixir-node)))
    (unwind-protect
        (progn
          (should (equal (derl-call node 'Elixir.String 'upcase
                                    (list (erl-binary "héllo")))
                         (encode-coding-string "HÉLLO" 'utf-8)))
          (should (equal (derl-call node 'Elixir.String 'upcase
                                    (list (erl-binary "abc")) nil t)
                         (erl-binary "ABC")))
          (should (= (derl-call node 'Elixir.Enum 'sum '((1 2 3 4))) 10))
          (let ((err (should-error (derl-call node 'Elixir.Kernel 'div '(1 0))
                                   :type 'derl-rpc-error)))
            (should (eq (nth 2 err) 'badarith)))
          ;; What `raise ArithmeticError' does: error/1 of the struct.
          (let* ((exception (derl-call node 'Elixir.ArithmeticError
                                       'exception '(nil)))
                 (err (should-error
                       (derl-call node 'erlang 'error (list exception))
                       :type 'derl-rpc-error)))
            (should (hash-table-p (nth 2 err)))
            (should (eq (gethash '__struct__ (nth 2 err))
                        'Elixir.ArithmeticError))))
      (ignore-errors (derl-disconnect node))
      (derl-test-stop-node node))))

;;;; Output

(defun derl-rpc-test--output ()
  "The text of *erl-output*, or the empty string."
  (if (get-buffer "*erl-output*")
      (with-current-buffer "*erl-output*" (buffer-string))
    ""))

(ert-deftest derl-rpc-io-format-output ()
  "Code called from Emacs prints into *erl-output*, in Latin-1 and UTF-8."
  (derl-test-with-node (node)
    (let ((erl-popup-on-output nil))
      (when (get-buffer "*erl-output*") (kill-buffer "*erl-output*"))
      (should (eq (derl-call node 'io 'format
                             (list "héllo ~ts ∑ ~p~n"
                                   (list (erl-binary "wörld ⚙") 'ok)))
                  'ok))
      (should (equal (derl-rpc-test--output) "héllo wörld ⚙ ∑ ok\n"))
      ;; Latin-1 characters as a list of code points, and as a binary.
      (derl-call node 'io 'format (list "caf~c " '(233)))
      (derl-call node 'io 'request
                 (list (vector 'put_chars 'latin1 (erl-binary "\351t\351 "))))
      (derl-call node 'io 'put_chars (list (erl-binary "ünï ")))
      (derl-call node 'io 'put_chars (list (list "a" 8721 (erl-binary "b") "\n")))
      (should (equal (derl-rpc-test--output)
                     "héllo wörld ⚙ ∑ ok\ncafé été ünï a∑b\n"))
      ;; No input: reading gives eof.
      (should (eq (derl-call node 'io 'get_line '("prompt> ")) 'eof))
      (should (equal (derl-call node 'io 'getopts nil)
                     '([binary false] [encoding unicode] [echo false]))))))

(provide 'derl-rpc-tests)

;;; derl-rpc-tests.el ends here

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

;; The abstract forms of `fun (X) -> X + 1 end' and `fun () -> F end'.
(defconst derl-rpc-test--adder
  [fun 1 [clauses ([clause 1 ([var 1 X]) nil
                           ([op 1 + [var 1 X] [integer 1 1]])])]])
(defconst derl-rpc-test--closure
  [fun 1 [clauses ([clause 1 nil nil ([var 1 F])])]])

(ert-deftest derl-rpc-fun-goes-back ()
  "A fun a node sends goes back to it and runs, one in a fun's closure too.
Over a connection with an atom cache its bytes name atoms through
the frame's header; Emacs writes them out, or the node could not
read the fun back."
  (derl-test-with-node (node)
    (let* ((adder (aref (derl-call node 'erl_eval 'expr
                                   (list derl-rpc-test--adder nil))
                        1))
           (closure (aref (derl-call node 'erl_eval 'expr
                                     (list derl-rpc-test--closure
                                           (list (vector 'F adder))))
                          1)))
      (should (eq (aref adder 1) 'erl-fun))
      (should (equal (derl-call node 'erlang 'apply (list adder '(41))) 42))
      (should (equal (derl-call node 'erlang 'apply
                                (list (derl-call node 'erlang 'apply
                                                 (list closure nil))
                                      '(1)))
                     2)))))

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

(ert-deftest derl-rpc-call-nested ()
  "A `derl-call' made while another waits (from a timer) ends by itself.
Each gets its own result, or its own timeout naming its own function."
  (derl-test-with-node (node)
    (derl-connect node)
    (let* ((inner nil)
           (timer (run-at-time
                   0.1 nil
                   (lambda ()
                     (setq inner
                           (list (derl-call node 'lists 'sum '((1 2 3)))
                                 (condition-case err
                                     (derl-call node 'timer 'sleep '(1000) 0.2)
                                   (derl-timeout (cadr err)))))))))
      (unwind-protect
          (should (eq (derl-call node 'timer 'sleep '(800)) 'ok))
        (cancel-timer timer))
      (should (equal (car inner) 6))
      (should (string-match-p "timer:sleep/1 on " (cadr inner)))
      (should (= (hash-table-count derl-rpc--pending) 0)))))

(ert-deftest derl-rpc-call-node-goes-down ()
  "A `derl-call' whose node stops fails with a connection error at once."
  (derl-test-with-node (node)
    (derl-connect node)
    (let ((timer (run-at-time 0.3 nil (lambda ()
                                        (derl-call-async node 'erlang 'halt
                                                         nil #'ignore
                                                         :on-error #'ignore))))
          (start (float-time)))
      (unwind-protect
          (let ((err (should-error (derl-call node 'timer 'sleep '(20000))
                                   :type 'derl-connect-error)))
            (should (string-match-p "went down during timer:sleep/1"
                                    (cadr err)))
            (should (< (- (float-time) start) 10)))
        (cancel-timer timer))
      (should (= (hash-table-count derl-rpc--pending) 0)))))

(ert-deftest derl-rpc-call-inside-process ()
  "`derl-call' works inside a process too, where the scheduler is running."
  (derl-test-with-node (node)
    (let (got)
      (erl-spawn (setq got (list (derl-call node 'erlang 'node nil)
                                 (derl-call node 'lists 'max '((3 9 4))))))
      (should (equal got (list node 9))))))

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

(add-to-list 'derl-ert-must-run
             '(derl-rpc-call-elixir . (lambda () (executable-find "elixir"))))

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

(ert-deftest derl-rpc-io-protocol ()
  "The group leader answers every kind of I/O request."
  (derl-test-with-node (node)
    (let ((erl-popup-on-output nil)
          (gl (erl-group-leader)))
      (when (get-buffer "*erl-output*") (kill-buffer "*erl-output*"))
      (cl-flet ((ask (request) (derl-call node 'derl_rpc_helper 'io_request
                                          (list gl request))))
        ;; Old forms, without an encoding: Latin-1.
        (should (eq (ask (vector 'put_chars "caf\351 ")) 'ok))
        (should (eq (ask (vector 'put_chars 'io_lib 'format '("~p " ((a b))))) 'ok))
        (should (eq (ask (vector 'put_chars 'unicode 'io_lib 'format
                                 (list "~ts~n" (list (list 8721 233)))))
                    'ok))
        (should (eq (ask (vector 'requests
                                 (list (vector 'put_chars 'unicode "x")
                                       (vector 'put_chars 'latin1 "y\n"))))
                    'ok))
        (should (equal (derl-rpc-test--output) "café [a,b] ∑é\nxy\n"))
        (dolist (request (list (vector 'get_chars 'unicode "" 3)
                               (vector 'get_until 'unicode "" 'io_lib 'fread '("~d"))
                               (vector 'get_password 'unicode)
                               (vector 'get_line "")))
          (should (eq (ask request) 'eof)))
        (should (eq (ask (vector 'setopts '([binary true]))) 'ok))
        (should (equal (ask 'nonsense) [error request]))
        ;; A format that fails on the node is an error, not a hang.
        (should (eq (aref (ask (vector 'put_chars 'unicode 'io_lib 'format
                                       '("~p ~p" (1))))
                          0)
                    'error))))))

;;;; Monitors

(defun derl-rpc-test--down (inbox ref)
  "Wait until INBOX got the DOWN of monitor REF; return [OBJECT REASON]."
  (let ((down (derl-test-await-message
               inbox (lambda (m) (and (vectorp m) (eq (aref m 0) 'DOWN)
                                      (equal (aref m 1) ref))))))
    (vector (aref down 3) (aref down 4))))

(defun derl-rpc-test--monitor (inbox target)
  "Make the process of INBOX monitor TARGET; return the reference."
  (with-erl-process (car inbox) (erl-monitor target)))

(ert-deftest derl-rpc-monitor-remote ()
  "Monitors of remote processes: exit reason, noproc, names, demonitor."
  (derl-test-with-node (node)
    (let* ((inbox (derl-test-inbox))
           (sleep '(timer sleep (infinity)))
           (a (derl-call node 'erlang 'spawn sleep))
           (ref-a (derl-rpc-test--monitor inbox a)))
      (derl-call node 'erlang 'exit (list a 'bye))
      (should (equal (derl-rpc-test--down inbox ref-a) (vector a 'bye)))
      ;; Already gone: noproc.
      (let ((ref (derl-rpc-test--monitor inbox a)))
        (should (equal (derl-rpc-test--down inbox ref) (vector a 'noproc))))
      ;; By name: the object is [NAME NODE].
      (let ((ref (derl-rpc-test--monitor inbox (vector 'nobody node))))
        (should (equal (derl-rpc-test--down inbox ref)
                       (vector (vector 'nobody node) 'noproc))))
      (let* ((b (derl-call node 'erlang 'spawn sleep))
             (_ (derl-call node 'erlang 'register (list 'derl_b b)))
             (ref (derl-rpc-test--monitor inbox (vector 'derl_b node))))
        (derl-call node 'erlang 'exit (list b 'kill))
        (should (equal (derl-rpc-test--down inbox ref)
                       (vector (vector 'derl_b node) 'killed))))
      ;; Demonitored: no DOWN.
      (let* ((c (derl-call node 'erlang 'spawn sleep))
             (ref (derl-rpc-test--monitor inbox c)))
        (should (erl-demonitor ref))
        (derl-call node 'erlang 'exit (list c 'kill))
        (derl-call node 'erlang 'node nil)
        (should-not (cl-find-if (lambda (m) (and (vectorp m)
                                                 (equal (aref m 1) ref)))
                                (cadr inbox)))))))

(ert-deftest derl-rpc-monitor-noconnection ()
  "Monitors of processes and of the node itself fire when the node stops."
  (derl-test-configure)
  (let* ((node (derl-test-start-node))
         (inbox (derl-test-inbox))
         (pid (derl-call node 'erlang 'whereis '(echo)))
         (ref (derl-rpc-test--monitor inbox pid)))
    (with-erl-process (car inbox) (erl-monitor-node node))
    (derl-test-stop-node node)
    (should (equal (derl-rpc-test--down inbox ref) (vector pid 'noconnection)))
    (should (derl-test-await-message inbox (lambda (m) (equal m (vector 'nodedown node)))))
    ;; A node that cannot be reached: nodedown at once or soon.
    (with-erl-process (car inbox) (erl-monitor-node 'nosuchnode@localhost))
    (should (derl-test-await-message
             inbox (lambda (m) (equal m [nodedown nosuchnode@localhost]))))))

(ert-deftest derl-rpc-monitor-local-from-erlang ()
  "Erlang processes monitoring Emacs's: exit reason, noproc, noconnection."
  (derl-test-with-node (node)
    (let* ((victim (erl-spawn (erl-receive () ((_ (erl-exit 'bye))))))
           (w1 (derl-call node 'derl_rpc_helper 'watch (list victim))))
      (erl-send victim 'go)
      (should (eq (derl-test-wait
                   (lambda () (let ((r (derl-call node 'derl_rpc_helper 'down
                                                  (list w1))))
                                (and (not (eq r 'none)) r))))
                  'bye))
      (let ((w2 (derl-call node 'derl_rpc_helper 'watch (list victim))))
        (should (eq (derl-call node 'derl_rpc_helper 'down (list w2)) 'noproc)))
      (let* ((idle (erl-spawn (erl-idle)))
             (w3 (derl-call node 'derl_rpc_helper 'watch (list idle))))
        (derl-disconnect node)
        (derl-test-wait (lambda () (not (memq node (derl-nodes)))))
        (should (eq (derl-test-wait
                     (lambda () (let ((r (ignore-errors
                                           (derl-call node 'derl_rpc_helper 'down
                                                      (list w3)))))
                                  (and r (not (eq r 'none)) r))))
                    'noconnection))
        (erl-exit 'kill idle)))))

;;;; Remote spawn

(ert-deftest derl-rpc-spawn-remote ()
  "Spawning on a node with link and monitor; errors; the synchronous form."
  (derl-test-with-node (node)
    (let* ((inbox (derl-test-inbox))
           (req (with-erl-process (car inbox)
                  (setq erl-trap-exit t)
                  (erl-spawn-remote node 'timer 'sleep '(infinity)
                                    '(link monitor))))
           (reply (derl-test-await-message
                   inbox (lambda (m) (and (vectorp m)
                                          (eq (aref m 0) 'spawn_reply)))))
           (pid (aref reply 3)))
      (should (equal (aref reply 1) req))
      (should (eq (aref reply 2) 'ok))
      (should (equal (derl-call node 'erlang 'process_info (list pid 'links))
                     (vector 'links (list (car inbox)))))
      (derl-call node 'erlang 'exit (list pid 'bye))
      (should (derl-test-await-message
               inbox (lambda (m) (equal m (vector 'EXIT pid 'bye)))))
      (should (equal (derl-rpc-test--down inbox req) (vector pid 'bye)))
      ;; A bad option: the error comes back.
      (let ((req (with-erl-process (car inbox)
                   (erl-spawn-remote node 'timer 'sleep '(1) '(bogus)))))
        (should (equal (derl-test-await-message
                        inbox (lambda (m) (and (vectorp m)
                                               (equal (aref m 1) req))))
                       (vector 'spawn_reply req 'error 'badopt))))
      (let ((pid (derl-spawn node 'timer 'sleep '(infinity))))
        (should (eq (derl-call node 'erlang 'is_process_alive (list pid)) 'true))
        (derl-call node 'erlang 'exit (list pid 'kill)))
      (should-error (derl-spawn node 'timer 'sleep '(1) '(bogus))
                    :type 'derl-spawn-error))))

(defvar derl-rpc-test--spawned nil "What the allowed spawn function got.")

(defun derl-rpc-test-spawnable (x)
  "Record X: a function other nodes may spawn in the tests."
  (setq derl-rpc-test--spawned (list x erl-self)))

(ert-deftest derl-rpc-spawn-incoming ()
  "Nodes may spawn in Emacs only the functions the user allows."
  (derl-test-with-node (node)
    (derl-connect node)
    (should (equal (derl-call node 'derl_rpc_helper 'try_spawn
                              (list erl-node-name 'emacs 'shell-command '("ls")))
                   [error notsup]))
    (let ((derl-spawn-allowed-functions '(derl-rpc-test-spawnable))
          (derl-rpc-test--spawned nil))
      (should (equal (derl-call node 'derl_rpc_helper 'try_spawn
                                (list erl-node-name 'emacs 'shell-command '("ls")))
                     [error notsup]))
      (let ((result (derl-call node 'derl_rpc_helper 'try_spawn
                               (list erl-node-name 'emacs
                                     'derl-rpc-test-spawnable '(42)))))
        (should (eq (aref result 0) 'ok))
        (should (erl-local-pid-p (aref result 1)))
        (derl-test-wait (lambda () derl-rpc-test--spawned))
        (should (equal derl-rpc-test--spawned (list 42 (aref result 1))))))))

;;;; Binaries

(ert-deftest derl-rpc-load-binary ()
  "A .beam read as multibyte or unibyte text loads with code:load_binary."
  (derl-test-with-node (node)
    (let ((beam (expand-file-name "derl_rpc_helper.beam" derl-test-ebin)))
      (dolist (literally '(nil t))
        (let ((content (with-temp-buffer
                         (if literally
                             (progn (set-buffer-multibyte nil)
                                    (insert-file-contents-literally beam))
                           (insert-file-contents beam))
                         (buffer-string))))
          (should (eq (multibyte-string-p content) (not literally)))
          (should (equal (derl-call node 'code 'load_binary
                                    (list 'derl_rpc_helper beam
                                          (erl-binary content)))
                         [module derl_rpc_helper])))))))

(ert-deftest derl-rpc-group-leader-signal ()
  "GROUP_LEADER from a node sets a local process's group leader."
  (derl-test-with-node (node)
    (let* ((pid (erl-spawn (erl-idle)))
           (leader (derl-call node 'erlang 'whereis '(echo))))
      (derl-call node 'erlang 'group_leader (list leader pid))
      (derl-test-wait (lambda () (equal (with-erl-process pid erl-group-leader)
                                        leader)))
      (erl-exit 'kill pid))))

(ert-deftest derl-rpc-alias-send ()
  "A message to an active alias is delivered; after unalias it is dropped."
  (skip-unless (>= (derl-test-otp-release) 24)) ; aliases came in OTP 24
  (derl-test-with-node (node)
    (let* ((inbox (derl-test-inbox))
           (alias (with-erl-process (car inbox) (erl-alias))))
      (derl-call node 'erlang 'send (list alias 'hello))
      (should (derl-test-await-message inbox (lambda (m) (eq m 'hello))))
      (with-erl-process (car inbox) (erl-unalias alias))
      (derl-call node 'erlang 'send (list alias 'gone))
      (derl-call node 'erlang 'node nil)
      (should-not (memq 'gone (cadr inbox))))))

(provide 'derl-rpc-tests)

;;; derl-rpc-tests.el ends here

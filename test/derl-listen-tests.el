;;; derl-listen-tests.el --- Emacs as a node that Erlang connects to  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; Emacs listens (`derl-start-node') and real Erlang nodes, started by
;; the tests with the private epmd, connect to it: ping, send to a
;; registered Emacs process, get replies, dial at the same time as
;; Emacs, use a wrong cookie; plain sockets stall, send garbage and
;; flood the listener.  Emacs must refuse what it must, say why, and
;; keep serving good nodes.

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'derl-ert)
(require 'derl-tests)
(require 'derl)
(require 'derl-node)
(require 'erl)

;;;; Helpers

(defmacro derl-listen-with-node (&rest body)
  "Run BODY with Emacs a listening node under a fresh name; stop it after."
  (declare (indent 0))
  `(progn
     (derl-test-configure)
     (derl-stop-node)
     (derl-start-node (intern (format "emacs%s@localhost"
                                      (derl-test-random-string 6))))
     (unwind-protect
         (progn ,@body)
       (derl-stop-node))))

(defvar derl-listen--procs nil "Erlang processes started by these tests.")

(defun derl-listen-erl (expr &rest args)
  "Start erl evaluating EXPR, with ARGS before it; return the process.
The node has a random short name (unless ARGS say otherwise), the
test cookie (unless ARGS give another) and the private epmd; EMACS
in EXPR stands for Emacs's node name, quoted."
  (let* ((buffer (generate-new-buffer " *derl-listen-erl*"))
         (process-environment (derl-test-erl-environment))
         (expr (string-replace "EMACS" (format "'%s'" erl-node-name) expr))
         (proc (apply #'start-process "derl-listen-erl" buffer "erl"
                      "-noshell" "-pa" derl-test-ebin
                      (append (if (member "-sname" args) nil
                                (list "-sname" (derl-test-node-name "erl")))
                              (if (member "-setcookie" args) nil
                                (list "-setcookie" derl-test-cookie))
                              args
                              (list "-eval" expr)))))
    (set-process-query-on-exit-flag proc nil)
    (push proc derl-listen--procs)
    proc))

(defun derl-listen-output (proc regexp &optional timeout)
  "Wait until PROC's output matches REGEXP; return the first group or match."
  (let ((buffer (process-buffer proc)))
    (derl-test-wait (lambda ()
                      (with-current-buffer buffer
                        (save-excursion
                          (goto-char (point-min))
                          (re-search-forward regexp nil t))))
                    (or timeout 30))
    (with-current-buffer buffer
      (goto-char (point-min))
      (unless (re-search-forward regexp nil t)
        (error "No %S in the output of erl: %s" regexp (buffer-string)))
      (or (match-string 1) (match-string 0)))))

(defun derl-listen-stop-all ()
  "Kill the Erlang processes these tests started."
  (dolist (proc derl-listen--procs)
    (when (process-live-p proc)
      (kill-process proc))
    (when (buffer-live-p (process-buffer proc))
      (kill-buffer (process-buffer proc))))
  (setq derl-listen--procs nil))

(defun derl-listen-ping (&rest args)
  "Start a node (erl ARGS) that pings Emacs; return what it got."
  (derl-listen-output
   (apply #'derl-listen-erl
          "io:format(\"ping ~p~n\", [net_adm:ping(EMACS)]), halt()." args)
   "ping \\([a-z]+\\)"))

(defun derl-listen-epmd-names ()
  "The names registered with the private epmd, as `epmd -names' says."
  (with-temp-buffer
    (call-process "epmd" nil t nil "-port"
                  (number-to-string (derl-test-epmd-port)) "-names")
    (let (names)
      (goto-char (point-min))
      (while (re-search-forward "^name \\(.*\\) at port" nil t)
        (push (match-string 1) names))
      names)))

(defun derl-listen-alive-name ()
  "The part of `erl-node-name' before the @."
  (car (split-string (symbol-name erl-node-name) "@")))

(defun derl-listen-trace (node)
  "The text of NODE's trace buffer, or the empty string."
  (let ((buffer (get-buffer (format "*trace %s*" node))))
    (if buffer (with-current-buffer buffer (buffer-string)) "")))

;;;; Tests

(ert-deftest derl-listen-ping-and-reg-send ()
  "Erlang pings Emacs (pong), sends to a registered Emacs process and
gets the reply over the connection it made; local pids carry EPMD's
creation; nodeup runs for the incoming connection."
  (derl-listen-with-node
    (unwind-protect
        (let* ((ups nil)
               (erl-nodeup-hook (list (lambda (n _c) (push n ups))))
               (inbox (list nil))
               (responder
                (erl-spawn
                  (erl-register 'derl_listen_inbox)
                  (erl-receive (inbox)
                      (([from msg]
                        (push msg (car inbox))
                        (erl-send from (vector 'reply_from_emacs msg))))))))
          (should (derl-node-port))
          (should (member (derl-listen-alive-name) (derl-listen-epmd-names)))
          ;; Local pids carry the creation EPMD gave.
          (should (eql (erl-pid-creation responder) erl-node-creation))
          (let ((proc (derl-listen-erl
                       "R = net_adm:ping(EMACS),
                        {derl_listen_inbox, EMACS} ! {self(), hello},
                        receive M -> io:format(\"ping ~p got ~p~n\", [R, M])
                        after 20000 -> io:format(\"ping ~p got nothing~n\",
                                                 [R]) end,
                        halt().")))
            (should (equal (derl-listen-output proc "ping \\(.*\\)")
                           "pong got {reply_from_emacs,hello}"))
            (should (equal (car inbox) '(hello)))
            (should (= 1 (length ups)))
            (should (string-prefix-p "erl" (symbol-name (car ups))))))
      (derl-listen-stop-all))))

(ert-deftest derl-listen-stop-unregisters ()
  "Stopping the node takes its name out of EPMD and refuses pings."
  (derl-test-configure)
  (derl-stop-node)
  (derl-start-node (intern (format "emacs%s@localhost"
                                   (derl-test-random-string 6))))
  (let ((alive (derl-listen-alive-name)))
    (unwind-protect
        (progn
          (should (member alive (derl-listen-epmd-names)))
          (derl-stop-node)
          (should (null (derl-node-port)))
          (derl-test-wait (lambda ()
                            (not (member alive (derl-listen-epmd-names))))
                          10)
          (should-not (member alive (derl-listen-epmd-names)))
          (should (equal (derl-listen-ping) "pang")))
      (derl-stop-node)
      (derl-listen-stop-all))))

(ert-deftest derl-listen-name-taken ()
  "A name that EPMD already holds gives a clear error, and no node."
  (derl-test-configure)
  (derl-stop-node)
  (let* ((taken (derl-test-start-node))
         (before erl-node-name)
         (err (should-error (derl-start-node taken)
                            :type 'derl-epmd-error)))
    (unwind-protect
        (progn
          (should (string-match-p "already uses it" (cadr err)))
          (should (null (derl-node-port)))
          (should (eq erl-node-name before)))
      (derl-test-stop-node taken))))

(ert-deftest derl-listen-wrong-cookie ()
  "A node with a wrong cookie is refused (it gets pang), traced and
reported; a good node still gets in."
  (derl-listen-with-node
    (unwind-protect
        (let ((name (derl-test-node-name "erlbad")))
          (should (equal (derl-listen-ping "-sname" name
                                           "-setcookie" "notthecookie")
                         "pang"))
          (should-not (memq (intern name) (derl-nodes)))
          (derl-test-wait (lambda ()
                            (string-match-p "cookie mismatch"
                                            (derl-listen-trace name))))
          (should (string-match-p "refused a connection from .*cookie \
mismatch" (derl-listen-trace name)))
          (should-not (string-match-p "notthecookie"
                                      (derl-listen-trace name)))
          (should-not (string-match-p (regexp-quote derl-test-cookie)
                                      (derl-listen-trace name)))
          (should (equal (derl-listen-ping) "pong")))
      (derl-listen-stop-all))))

(provide 'derl-listen-tests)

;;; derl-listen-tests.el ends here

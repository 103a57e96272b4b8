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
                      (append (if (or (member "-sname" args)
                                      (member "-name" args))
                                  nil
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
  (derl-trace-flush)
  (let ((buffer (get-buffer (format "*trace %s*" node))))
    (if buffer (with-current-buffer buffer (buffer-string)) "")))

;;;; A dialer written message by message (test/erl/derl_dialer.erl)

(defun derl-listen-dialer (name mode &rest args)
  "Start derl_dialer as NAME (a string) in MODE with ARGS; return it."
  (let* ((buffer (generate-new-buffer " *derl-listen-dialer*"))
         (process-environment (derl-test-erl-environment))
         (proc (apply #'start-process "derl-listen-dialer" buffer "erl"
                      "-noshell" "-pa" derl-test-ebin "-run" "derl_dialer"
                      "start" name derl-test-cookie (derl-listen-alive-name)
                      mode args)))
    (set-process-query-on-exit-flag proc nil)
    (push proc derl-listen--procs)
    proc))

(defun derl-listen-inbox ()
  "Register an Emacs process derl_listen_inbox that answers [FROM MSG].
It replies [reply_from_emacs MSG SELF] to FROM; return the list of what it
got, as a cons whose car grows."
  (let ((inbox (list nil)))
    (erl-spawn
      (erl-register 'derl_listen_inbox)
      (derl-listen--answer inbox))
    inbox))

(defun derl-listen--answer (inbox)
  "Answer one message into INBOX, then the next."
  (erl-receive (inbox)
      (([from msg]
        (push msg (car inbox))
        (erl-send from (vector 'reply_from_emacs msg erl-self))))
    (derl-listen--answer inbox)))

;;;; Tests

(ert-deftest derl-listen-ping-and-reg-send ()
  "Erlang pings Emacs (pong), sends to a registered Emacs process and
gets the reply over the connection it made; nodeup runs for the
incoming connection.  The process was made before Emacs became a node:
its pid now carries the creation EPMD gave."
  (derl-test-configure)
  (derl-stop-node)
  (let* ((inbox (derl-listen-inbox))
         (responder (erl-whereis 'derl_listen_inbox))
         (before (erl-pid-creation responder)))
    (unwind-protect
        (derl-listen-with-node
          (let* ((ups nil)
                 (directions nil)
                 (erl-nodeup-hook
                  (list (lambda (n c)
                          (push n ups)
                          ;; The node list shows where it came from.
                          (push (nth 5 (derl--module-stats
                                        (derl-connection-id c)))
                                directions)))))
            (should (derl-node-port))
            (should (member (derl-listen-alive-name)
                            (derl-listen-epmd-names)))
            (should (eql (erl-pid-creation responder) erl-node-creation))
            (should (or (/= before erl-node-creation)
                        (erl-local-pid-alive-p responder)))
            (let ((proc (derl-listen-erl
                         "R = net_adm:ping(EMACS),
                          {derl_listen_inbox, EMACS} ! {self(), hello},
                          receive {reply_from_emacs, hello, P} ->
                            P ! {self(), again},
                            receive {reply_from_emacs, again, _} ->
                              io:format(\"ping ~p answered twice~n\", [R])
                            after 10000 ->
                              io:format(\"ping ~p answered once~n\", [R])
                            end
                          after 20000 ->
                            io:format(\"ping ~p got nothing~n\", [R])
                          end,
                          halt().")))
              ;; The second answer went to the pid Emacs gave, with the
              ;; creation of the handshake.
              (should (equal (derl-listen-output proc "ping \\(.*\\)")
                             "pong answered twice"))
              (should (equal (car inbox) '(again hello)))
              (should (= 1 (length ups)))
              (should (equal directions '("in")))
              (should (string-prefix-p "erl" (symbol-name (car ups)))))))
      (erl-unregister 'derl_listen_inbox)
      (derl-listen-stop-all))))

(ert-deftest derl-listen-hidden-or-published ()
  "Emacs is a hidden node by default, a published one with
`derl-published'; a node whose name kind differs is not allowed in."
  (unwind-protect
      (let ((expr "pong = net_adm:ping(EMACS),
                   io:format(\"visible ~p hidden ~p~n\",
                             [lists:member(EMACS, nodes()),
                              lists:member(EMACS, nodes(hidden))]),
                   halt()."))
        (derl-listen-with-node
          (should (equal (derl-listen-output (derl-listen-erl expr)
                                             "visible .*")
                         "visible false hidden true"))
          ;; A long name may not connect to a short-named Emacs.
          (should (equal (derl-listen-ping "-name" "erllong@127.0.0.1")
                         "pang")))
        (let ((derl-published t))
          (derl-listen-with-node
            (should (equal (derl-listen-output (derl-listen-erl expr)
                                               "visible .*")
                           "visible true hidden false")))))
    (derl-listen-stop-all)))

(ert-deftest derl-listen-version-5-initiator ()
  "A node that sends the old name form and then the complement gets
in, and Emacs's processes talk with it.  The handshake gives the
creation EPMD gave, which the pids of Emacs's processes now carry,
also those made before Emacs became a node."
  (derl-test-configure)
  (derl-stop-node)
  (let* ((inbox (derl-listen-inbox))
         (responder (erl-whereis 'derl_listen_inbox)))
    (unwind-protect
        (derl-listen-with-node
          (let* ((name (derl-test-node-name "dialer"))
                 (dialer (derl-listen-dialer name "v5")))
            (should (equal (derl-listen-output dialer
                                               "dialer status \\(.*\\)")
                           "ok"))
            (should (equal (string-to-number
                            (derl-listen-output
                             dialer "dialer up, Emacs's creation \\([0-9]+\\)"))
                           erl-node-creation))
            (should (eql (erl-pid-creation responder) erl-node-creation))
            (should (string-prefix-p
                     "{reply_from_emacs,hello,"
                     (derl-listen-output dialer "dialer got \\(.*\\)")))
            (should (equal (car inbox) '(hello)))
            (should (memq (intern name) (derl-nodes)))))
      (erl-unregister 'derl_listen_inbox)
      (derl-listen-stop-all))))

(ert-deftest derl-listen-alive ()
  "A node connecting again under a name already connected is asked
whether the old connection is dead: false leaves the old one alone,
true replaces it (nodedown for the old, nodeup for the new)."
  (derl-listen-with-node
    (unwind-protect
        (let* ((inbox (derl-listen-inbox))
               (name (derl-test-node-name "dialer"))
               (node (intern name))
               (first (derl-listen-dialer name "v6"))
               ups downs)
          (derl-listen-output first "dialer got")
          (let ((erl-nodeup-hook (list (lambda (n _c) (push n ups))))
                (erl-nodedown-hook (list (lambda (n) (push n downs)))))
            (let ((second (derl-listen-dialer name "alive_false")))
              (should (equal (derl-listen-output second
                                                 "dialer status \\(.*\\)")
                             "alive"))
              (derl-listen-output second "dialer closed")
              (should-not (or ups downs))
              (should (process-live-p first)))
            (let ((third (derl-listen-dialer name "alive_true")))
              (derl-listen-output third "dialer up")
              (derl-listen-output first "dialer closed")
              (derl-listen-output third "dialer got")
              (should (equal downs (list node)))
              (should (equal ups (list node)))
              (should (equal (car inbox) '(hello hello))))))
      (erl-unregister 'derl_listen_inbox)
      (derl-listen-stop-all))))

(ert-deftest derl-listen-not-allowed ()
  "A node calling itself by Emacs's name, or with a long name when
Emacs's is short, gets status not_allowed, and the trace says why."
  (derl-listen-with-node
    (unwind-protect
        (progn
          (let ((own (derl-listen-dialer (symbol-name erl-node-name) "v6")))
            (should (equal (derl-listen-output own "dialer status \\(.*\\)")
                           "not_allowed"))
            (derl-listen-output own "dialer closed"))
          (should (string-match-p "Emacs's own name"
                                  (derl-listen-trace erl-node-name)))
          (let* ((name (concat (derl-test-random-string 6) "@host.example"))
                 (long (derl-listen-dialer name "v6")))
            (should (equal (derl-listen-output long "dialer status \\(.*\\)")
                           "not_allowed"))
            ;; A name no handshake proved has no trace buffer of its
            ;; own: Emacs's trace tells.
            (derl-test-wait (lambda ()
                              (string-match-p "name is long"
                                              (derl-listen-trace
                                               erl-node-name))))
            (should-not (get-buffer (format "*trace %s*" name)))))
      (derl-listen-stop-all))))

(ert-deftest derl-listen-no-relay ()
  "A node that connected in cannot make Emacs pass signals on to a
third node, nor dial it."
  (derl-listen-with-node
    (unwind-protect
        (let* ((inbox (derl-listen-inbox))
               (name (derl-test-node-name "dialer"))
               (third (derl-test-node-name "third"))
               (dialer (derl-listen-dialer name "relay" third)))
          (derl-listen-output dialer "dialer got")
          (should (equal (car inbox) '(hello)))
          (should-not (memq (intern third) (derl-nodes)))
          (should (string-match-p "dropped SEND"
                                  (derl-listen-trace name)))
          (should (string-match-p "dropped EXIT"
                                  (derl-listen-trace name))))
      (erl-unregister 'derl_listen_inbox)
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

(ert-deftest derl-listen-port-and-address ()
  "A chosen port is the one listened on; a port in use or an address
that is not numeric gives a clear error, and leaves no registration."
  (derl-test-configure)
  (derl-stop-node)
  (let ((port (derl-test-free-port)))
    (let ((derl-listen-port port))
      (derl-listen-with-node
        (should (eql (derl-node-port) port))
        (should (equal (derl-listen-ping) "pong"))))
    ;; EPMD forgets the name once it sees the registration's socket
    ;; closed, a moment after the node stops.
    (derl-test-wait (lambda () (not (member (derl-listen-alive-name)
                                            (derl-listen-epmd-names))))
                    10)
    (let* ((server (make-network-process :name "derl-listen-busy" :server t
                                         :host "127.0.0.1" :service t
                                         :family 'ipv4 :noquery t))
           (derl-listen-port (process-contact server :service)))
      (unwind-protect
          (let ((err (should-error (derl-start-node) :type 'derl-error)))
            (should (string-match-p "cannot listen at 127.0.0.1 port [0-9]+: \
Address already in use" (cadr err)))
            (should-not (member (derl-listen-alive-name)
                                (derl-listen-epmd-names))))
        (delete-process server)
        (derl-stop-node)))
    (let ((derl-listen-address "localhost"))
      (should (string-match-p "not a numeric IP address"
                              (cadr (should-error (derl-start-node)
                                                  :type 'derl-error))))
      (should (null (derl-node-port))))
    (derl-listen-stop-all)))

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
          ;; Reported in Emacs's own trace, with the name it claimed.
          (derl-test-wait (lambda ()
                            (string-match-p "cookie mismatch"
                                            (derl-listen-trace
                                             erl-node-name))))
          (should (string-match-p (format "refused a connection from \
127\\.0\\.0\\.1, claiming to be %s: .*cookie mismatch" name)
                                  (derl-listen-trace erl-node-name)))
          (should-not (string-match-p "notthecookie"
                                      (derl-listen-trace erl-node-name)))
          (should-not (string-match-p (regexp-quote derl-test-cookie)
                                      (derl-listen-trace erl-node-name)))
          (should (equal (derl-listen-ping) "pong")))
      (derl-listen-stop-all))))

(defun derl-listen-simultaneous (prefix)
  "Let a node named PREFIX... and Emacs dial each other at once.
Both must end up on exactly one working connection."
  (let* ((name (derl-test-node-name prefix))
         (node (intern name))
         (go (derl-test-scratch-file (concat "go-" name)))
         (ups nil) (downs nil)
         (erl-nodeup-hook (list (lambda (n _c) (push n ups))))
         (erl-nodedown-hook (list (lambda (n) (push n downs))))
         (proc (derl-listen-erl
                (format "register(sim, self()),
                  io:format(\"waiting~n\"),
                  Wait = fun W() -> case filelib:is_file(\"%s\") of
                                      true -> ok;
                                      false -> timer:sleep(1), W()
                                    end end,
                  Wait(),
                  io:format(\"ping ~p~n\", [net_adm:ping(EMACS)]),
                  receive {From, M} -> From ! {echoed, M}
                  after 20000 -> ok end,
                  io:format(\"connections ~p~n\",
                            [length([N || N <- nodes(hidden) ++ nodes(),
                                          N =:= EMACS])]),
                  receive stop -> ok after 20000 -> ok end,
                  halt()." go)
                "-sname" name))
         (inbox (derl-test-inbox)))
    (derl-listen-output proc "waiting")
    (write-region "" nil go nil 'quiet)
    (erl-connect node)
    (should (equal (derl-listen-output proc "ping \\([a-z]+\\)") "pong"))
    (derl-test-wait (lambda ()
                      (let ((conn (gethash node derl--connections)))
                        (and conn (eq (derl-connection-state conn) 'up)))))
    (erl-send (vector 'sim node) (vector (car inbox) 'token))
    (should (derl-test-await-message
             inbox (lambda (m) (equal m [echoed token]))))
    (should (equal (derl-listen-output proc "connections \\([0-9]+\\)") "1"))
    (should (equal (cl-remove node ups :test-not #'eq) (list node)))
    (should-not (memq node downs))
    (erl-send (vector 'sim node) 'stop)))

(ert-deftest derl-listen-simultaneous-connect ()
  "Emacs and a node dial each other at once: exactly one connection
remains, whichever name is the greater (the rule of the name
comparison decides whose attempt survives)."
  (derl-listen-with-node
    (unwind-protect
        (progn
          (derl-listen-simultaneous "aaa")   ; less than emacs...
          (derl-listen-simultaneous "zzz"))  ; greater
      (derl-listen-stop-all))))

(defun derl-listen-raw (port &optional bytes)
  "Open a plain TCP connection to PORT and send BYTES; return the process."
  (let ((proc (make-network-process :name "derl-listen-raw" :buffer nil
                                    :host "127.0.0.1" :service port
                                    :coding 'binary :noquery t
                                    :sentinel #'ignore)))
    (when bytes
      (process-send-string proc bytes))
    proc))

(ert-deftest derl-listen-stall-and-garbage ()
  "A connection that stalls in the handshake meets the handshake
timeout, one that sends garbage is dropped at once; both with a trace
line; meanwhile good nodes get in."
  (let ((derl-connect-timeout 3))
    (derl-listen-with-node
      (unwind-protect
          (let* ((port (derl-node-port))
                 (stalled (derl-listen-raw port))
                 (half (derl-listen-raw port (unibyte-string 0 40 ?N 0)))
                 (garbage (derl-listen-raw port "\0\5hello")))
            (derl-test-wait (lambda () (not (process-live-p garbage))) 10)
            (should-not (process-live-p garbage))
            (should (string-match-p "refused a connection from 127.0.0.1.*\
expected a name message" (derl-listen-trace erl-node-name)))
            ;; The stalled ones do not block a good node.
            (should (equal (derl-listen-ping) "pong"))
            (should (process-live-p stalled))
            (derl-test-wait (lambda () (not (or (process-live-p stalled)
                                                (process-live-p half))))
                            20)
            (should-not (process-live-p stalled))
            (should-not (process-live-p half))
            (should (string-match-p "handshake timed out"
                                    (derl-listen-trace erl-node-name))))
        (derl-listen-stop-all)))))

(ert-deftest derl-listen-flood ()
  "1,000 connections that never say a word do not keep a good node out."
  (derl-listen-with-node
    (unwind-protect
        (let* ((buffer (generate-new-buffer " *derl-listen-flood*"))
               (flood (start-process
                       "derl-listen-flood" buffer "erl" "-noshell" "-eval"
                       (format "Ss = [begin {ok, S} = gen_tcp:connect(
                                  {127,0,0,1}, %d, [binary, {active, false}]),
                                  S end || _ <- lists:seq(1, 1000)],
                                io:format(\"flooded ~p~n\", [length(Ss)]),
                                timer:sleep(60000)." (derl-node-port)))))
          (set-process-query-on-exit-flag flood nil)
          (push flood derl-listen--procs)
          (should (equal (derl-listen-output flood "flooded \\([0-9]+\\)")
                         "1000"))
          (should (equal (derl-listen-ping) "pong"))
          (should (string-match-p "too many handshakes"
                                  (derl-listen-trace erl-node-name))))
      (derl-listen-stop-all))))

(provide 'derl-listen-tests)

;;; derl-listen-tests.el ends here

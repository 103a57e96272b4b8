;;; derl-tls-tests.el --- distribution over TLS against real TLS nodes  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; Against real `-proto_dist inet_tls' nodes, with the CAs,
;; certificates and `-ssl_dist_optfile's that test/derl-tls-ert.el
;; makes.

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'derl-ert)
(require 'derl-tests)
(require 'derl-listen-tests)
(require 'derl)
(require 'derl-tls)
(require 'derl-tls-ert)
(require 'erl)

(declare-function derl--module-stats "derl-module" (conn))

(defmacro derl-tls-test-with-node (spec &rest body)
  "Start a TLS node as in SPEC, (VAR OPTFILE ERL-ARGS...), run BODY.
BODY runs with Emacs set up for TLS with its own certificate, signed
by the test CA; the node is stopped afterwards."
  (declare (indent 1))
  (let ((var (car spec)))
    `(progn
       (derl-test-configure)
       (let ((,var (derl-tls-test-start-node ,@(cdr spec)))
             (derl-proto-dist 'tls)
             (derl-tls-certfile (derl-tls-test-file "emacs.pem"))
             (derl-tls-keyfile (derl-tls-test-file "emacs.key"))
             (derl-tls-cacertfile (derl-tls-test-file "ca.pem"))
             (derl-tls-verify-peer t))
         (unwind-protect
             (progn ,@body)
           (ignore-errors (derl-disconnect ,var))
           (derl-test-stop-node ,var))))))

(defun derl-tls-test-refused (node)
  "Connect to NODE, expecting `derl-tls-error'; return its message.
Check that the message shows nothing of a private key."
  (let* ((err (should-error (derl-connect node) :type 'derl-tls-error))
         (text (error-message-string err)))
    (dolist (key '("emacs.key" "node.key" "stranger.key"))
      (with-temp-buffer
        (insert-file-contents (derl-tls-test-file key))
        (dolist (line (split-string (buffer-string) "\n" t))
          (let ((case-fold-search nil))
            (should-not (string-search line text))))))
    text))

(defun derl-tls-test-echo-works (node)
  "Check a message makes the round trip through NODE's echo."
  (let ((inbox (derl-test-inbox)))
    (erl-send (derl-test-echo node) (vector (car inbox) '(hello "tls")))
    (should (derl-test-await-message
             inbox (lambda (m) (equal m '(hello "tls")))))))

;;;; Connecting out

(ert-deftest derl-tls-connect-and-exchange ()
  "Over TLS (both sides verified): messages, a stream and a big binary."
  (derl-tls-test-with-node (node (derl-tls-test-optfile "node"))
    (derl-connect node)
    (derl-tls-test-echo-works node)
    (should (string-match-p "connecting to .* over TLS"
                            (derl-listen-trace node)))
    ;; The node list shows it as TLS.
    (should (equal (nth 6 (derl--module-stats
                           (derl-connection-id (derl-connect node))))
                   "tls"))
    (let ((inbox (derl-test-inbox)))
      ;; Many TLS records in one read.
      (erl-send (derl-test-echo node) (vector 'stream (car inbox) 2000))
      (derl-test-await-message inbox (lambda (m) (eq m 'done)) 60)
      (should (equal (mapcar (lambda (m) (aref m 1))
                             (cl-remove-if-not #'vectorp (reverse (cadr inbox))))
                     (number-sequence 1 2000)))
      ;; A message far bigger than a TLS record and than one read's
      ;; budget, both ways.
      (let ((big (make-string (* 10 1024 1024) ?z)))
        (aset big 100000 ?q)
        (erl-send (derl-test-echo node)
                  (vector (car inbox) (vector 'big (erl-binary big))))
        (let ((reply (derl-test-await-message
                      inbox (lambda (m) (and (vectorp m) (eq (aref m 0) 'big)))
                      60)))
          (should (equal (aref reply 1) big)))))))

(ert-deftest derl-tls-connect-tls-1.2 ()
  "A node that speaks only TLS 1.2 is reached too."
  (derl-tls-test-with-node (node (derl-tls-test-optfile
                                  "node" "{verify, verify_peer}"
                                  "{fail_if_no_peer_cert, true}"
                                  "{versions, ['tlsv1.2']}"))
    (derl-connect node)
    (derl-tls-test-echo-works node)))

(ert-deftest derl-tls-ticks-while-busy ()
  "The I/O thread keeps a TLS connection ticking while Emacs is busy."
  (derl-tls-test-with-node (node (derl-tls-test-optfile "node")
                                 "-kernel" "net_ticktime" "3")
    (let* ((derl-net-ticktime 3)
           (downs nil)
           (erl-nodedown-hook (list (lambda (n) (push n downs))))
           (conn (derl-connect node)))
      ;; Busy without reading any process output, past the tick time.
      (let ((end (+ (float-time) 4.5)))
        (while (< (float-time) end)))
      (derl-tls-test-echo-works node)
      (should-not downs)
      (should (eq (gethash node derl--connections) conn))
      (should (eq (derl-connection-state conn) 'up)))))

;;;; Refusals

(ert-deftest derl-tls-unknown-ca-refused ()
  "A node whose certificate no CA of ours signed is refused, clearly."
  (derl-tls-test-with-node (node (derl-tls-test-optfile "node"))
    (let ((derl-tls-cacertfile (derl-tls-test-file "otherca.pem")))
      (should (string-match-p "unknown CA" (derl-tls-test-refused node))))))

(ert-deftest derl-tls-node-refuses-our-certificate ()
  "A node that does not trust our certificate's CA: a clear error.
In TLS 1.3 its alert comes after our side of the TLS handshake is
done; in TLS 1.2 during it."
  (dolist (version '("tlsv1.3" "tlsv1.2"))
    (derl-tls-test-with-node (node (derl-tls-test-optfile
                                    "node" "{verify, verify_peer}"
                                    "{fail_if_no_peer_cert, true}"
                                    (format "{versions, ['%s']}" version)))
      (let ((derl-tls-certfile (derl-tls-test-file "stranger.pem"))
            (derl-tls-keyfile (derl-tls-test-file "stranger.key")))
        (should (string-match-p "does not trust our certificate"
                                (derl-tls-test-refused node)))))))

(ert-deftest derl-tls-hostname-mismatch-refused ()
  "A certificate for another host is refused while verification is on."
  (derl-tls-test-with-node (node (derl-tls-test-optfile "elsewhere"))
    (should (string-match-p "not for the host" (derl-tls-test-refused node)))
    ;; With the check off, the same node is reached.
    (let ((derl-tls-verify-peer nil))
      (derl-connect node)
      (derl-tls-test-echo-works node))))

(ert-deftest derl-tls-verify-off-self-signed ()
  "With `derl-tls-verify-peer' off, a self-signed node is reached.
With it on, the same node is refused."
  (derl-tls-test-with-node (node (derl-tls-test-optfile
                                  "self" "{verify, verify_none}"))
    (let ((derl-tls-certfile nil)
          (derl-tls-keyfile nil)
          (derl-tls-cacertfile nil))
      (should (string-match-p "certificate" (derl-tls-test-refused node)))
      (let ((derl-tls-verify-peer nil))
        (derl-connect node)
        (derl-tls-test-echo-works node)))))

(ert-deftest derl-tls-client-certificate-required ()
  "A node that wants a client certificate, and Emacs has none: clear error."
  (derl-tls-test-with-node (node (derl-tls-test-optfile "node"))
    (let ((derl-tls-certfile nil)
          (derl-tls-keyfile nil))
      (should (string-match-p "certificate" (derl-tls-test-refused node))))))

(ert-deftest derl-tls-plain-node-refused ()
  "A TLS Emacs cannot reach a plain TCP node, and says why."
  (derl-test-configure)
  ;; The node gives up on our unreadable hello after its set-up time.
  (let ((node (derl-test-start-node "-kernel" "net_setuptime" "2"))
        (derl-proto-dist 'tls)
        (derl-tls-verify-peer nil))
    (unwind-protect
        (should (string-match-p "TLS" (derl-tls-test-refused node)))
      (derl-test-stop-node node))))

(ert-deftest derl-tls-plain-node-timeout ()
  "When our connect timeout comes before the plain node gives up, the
timeout says what may be wrong."
  (derl-test-configure)
  (let ((node (derl-test-start-node))
        (derl-proto-dist 'tls)
        (derl-tls-verify-peer nil)
        (derl-connect-timeout 2))
    (unwind-protect
        (should (string-match-p "TLS handshake timed out.*TLS node"
                                (cadr (should-error (derl-connect node)
                                                    :type 'derl-timeout))))
      (derl-test-stop-node node))))

(ert-deftest derl-tls-tls-node-refused-over-tcp ()
  "A plain TCP Emacs cannot reach a TLS node, and says why.
A node of OTP 24 or later answers with a TLS alert; one of OTP 23
closes without a word, and Emacs can only ask whether it is one."
  (derl-tls-test-with-node (node (derl-tls-test-optfile "node"))
    (let ((derl-proto-dist 'tcp))
      (if (>= (derl-test-otp-release) 24)
          (should (string-match-p "TLS" (derl-tls-test-refused node)))
        (let ((err (should-error (derl-connect node)
                                 :type 'derl-protocol-error)))
          (should (string-match-p "is it a TLS node"
                                  (error-message-string err))))))))

(ert-deftest derl-tls-bad-settings ()
  "Unreadable files, a key of another certificate, a bad
`derl-proto-dist': `derl-tls-error' at once, no key in the message."
  (derl-test-configure)
  (let ((derl-proto-dist 'tls)
        (derl-tls-certfile (derl-tls-test-file "emacs.pem"))
        (derl-tls-keyfile (derl-tls-test-file "emacs.key"))
        (derl-tls-cacertfile (derl-tls-test-file "ca.pem")))
    (let ((derl-tls-cacertfile (derl-test-scratch-file "no-such.pem")))
      (should (string-match-p "cannot read"
                              (derl-tls-test-refused 'x@localhost))))
    (let ((derl-tls-keyfile (derl-tls-test-file "node.key")))
      (should (string-match-p "does not belong"
                              (derl-tls-test-refused 'x@localhost))))
    (let ((derl-tls-keyfile (derl-tls-test-file "ca.pem")))
      (should (string-match-p "private key"
                              (derl-tls-test-refused 'x@localhost))))
    (let ((derl-proto-dist 'ssl))
      (should (string-match-p "derl-proto-dist"
                              (derl-tls-test-refused 'x@localhost))))
    (should-not (derl-nodes))))

;;;; Accepting

(defmacro derl-tls-test-with-emacs-node (&rest body)
  "Run BODY with Emacs a TLS node: its certificate from the test CA."
  (declare (indent 0))
  `(let ((derl-proto-dist 'tls)
         (derl-tls-certfile (derl-tls-test-file "emacs.pem"))
         (derl-tls-keyfile (derl-tls-test-file "emacs.key"))
         (derl-tls-cacertfile (derl-tls-test-file "ca.pem"))
         (derl-tls-verify-peer t))
     (derl-listen-with-node
       (unwind-protect
           (progn ,@body)
         (derl-listen-stop-all)))))

(defun derl-tls-test-ping (cert)
  "A TLS node with certificate CERT pings Emacs; return what it got."
  (derl-listen-ping "-proto_dist" "inet_tls"
                    "-ssl_dist_optfile" (derl-tls-test-optfile cert)))

(defun derl-tls-test-refusal (regexp)
  "Wait until the node's trace shows a refused connection matching REGEXP."
  (derl-test-wait (lambda ()
                    (string-match-p regexp (derl-listen-trace erl-node-name))))
  (should (string-match-p (concat "refused a connection from .*" regexp)
                          (derl-listen-trace erl-node-name))))

(ert-deftest derl-tls-accept-in ()
  "A TLS node reaches a TLS Emacs: ping, and a message and its reply."
  (derl-tls-test-with-emacs-node
    (let* ((inbox (list nil))
           (optfile (derl-tls-test-optfile "node")))
      (erl-spawn
        (erl-register 'derl_tls_inbox)
        (erl-receive (inbox)
            (([from msg]
              (push msg (car inbox))
              (erl-send from (vector 'reply_over_tls msg))))))
      (let ((proc (derl-listen-erl
                   "R = net_adm:ping(EMACS),
                    {derl_tls_inbox, EMACS} ! {self(), hello},
                    receive M -> io:format(\"ping ~p got ~p~n\", [R, M])
                    after 20000 -> io:format(\"ping ~p got nothing~n\", [R])
                    end,
                    halt()."
                   "-proto_dist" "inet_tls" "-ssl_dist_optfile" optfile)))
        (should (equal (derl-listen-output proc "ping \\(.*\\)")
                       "pong got {reply_over_tls,hello}"))
        (should (equal (car inbox) '(hello)))))))

(ert-deftest derl-tls-plain-node-cannot-reach-tls-emacs ()
  "A plain TCP node cannot connect to a TLS Emacs; Emacs says why."
  (derl-tls-test-with-emacs-node
    (should (equal (derl-listen-ping) "pang"))
    (derl-tls-test-refusal "does not speak TLS")))

(ert-deftest derl-tls-tls-node-cannot-reach-plain-emacs ()
  "A TLS node cannot connect to a plain Emacs; Emacs says why."
  (derl-listen-with-node
    (unwind-protect
        (progn
          (should (equal (derl-tls-test-ping "node") "pang"))
          (derl-tls-test-refusal "spoke TLS"))
      (derl-listen-stop-all))))

(ert-deftest derl-tls-accept-unknown-client-refused ()
  "A TLS node whose certificate no CA of Emacs's signed is refused."
  (derl-tls-test-with-emacs-node
    (should (equal (derl-tls-test-ping "stranger") "pang"))
    (derl-tls-test-refusal "unknown CA")
    ;; A good node still gets in.
    (should (equal (derl-tls-test-ping "node") "pong"))))

(ert-deftest derl-tls-accept-silent-flood ()
  "Silent connections to a TLS Emacs count as pending handshakes: past
`derl-listen-max-pending' the oldest go, and a good node gets in."
  (derl-tls-test-with-emacs-node
    (let ((derl-listen-max-pending 8)
          (socks nil))
      (derl-stop-node)
      (derl-start-node (intern (format "emacs%s@localhost"
                                       (derl-test-random-string 6))))
      (unwind-protect
          (progn
            (dotimes (_ 30)
              (push (make-network-process :name "derl-tls-silent"
                                          :host "127.0.0.1"
                                          :service (derl-node-port)
                                          :noquery t)
                    socks))
            (derl-tls-test-refusal "too many handshakes")
            (should (equal (derl-tls-test-ping "node") "pong")))
        (mapc #'delete-process socks)))))

(ert-deftest derl-tls-simultaneous-connect ()
  "Over TLS, Emacs and a node dial each other at once: one connection
remains, whichever name is the greater."
  (derl-tls-test-with-emacs-node
    (let ((tls-args (list "-proto_dist" "inet_tls" "-ssl_dist_optfile"
                          (derl-tls-test-optfile "node")))
          (erl (symbol-function 'derl-listen-erl)))
      ;; The nodes of `derl-listen-simultaneous', started for TLS.
      (cl-letf (((symbol-function 'derl-listen-erl)
                 (lambda (expr &rest args)
                   (apply erl expr (append args tls-args)))))
        (derl-listen-simultaneous "aaa")
        (derl-listen-simultaneous "zzz")))))

(ert-deftest derl-tls-start-node-needs-certificate ()
  "A TLS node without a certificate of its own: `derl-tls-error' at once."
  (derl-test-configure)
  (derl-stop-node)
  (let ((derl-proto-dist 'tls)
        (derl-tls-certfile nil))
    (should-error (derl-start-node (intern (format "emacs%s@localhost"
                                                   (derl-test-random-string 6))))
                  :type 'derl-tls-error)
    (should-not (derl-node-port))))

(provide 'derl-tls-tests)

;;; derl-tls-tests.el ends here

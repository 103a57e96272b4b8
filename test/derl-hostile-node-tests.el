;;; derl-hostile-node-tests.el --- hostile and careless peers  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; What a peer, or a second Emacs, can do to a connection: use our node
;; name, claim another node's name, flood us, stop reading, send
;; malformed or monstrous frames.  Each test runs against real nodes,
;; and a misbehaving node written in Erlang (test/erl/derl_fake.erl)
;; where a real node would not misbehave.  Emacs must close only the
;; connection concerned, say why, and carry on.

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'derl-ert)
(require 'derl-tests)
(require 'derl)
(require 'epmd)
(require 'erl)
(require 'derl-rpc)

;;;; Helpers

(defun derl-hostile-rss ()
  "This Emacs's resident memory in bytes."
  (with-temp-buffer
    (insert-file-contents "/proc/self/status")
    (re-search-forward "^VmRSS:[ \t]+\\([0-9]+\\) kB")
    (* 1024 (string-to-number (match-string 1)))))

(defun derl-hostile-trace (node)
  "The text of NODE's trace buffer, or the empty string."
  (derl-trace-flush)
  (let ((buffer (get-buffer (format "*trace %s*" node))))
    (if buffer (with-current-buffer buffer (buffer-string)) "")))

(defun derl-hostile-start-fake (mode)
  "Start test/erl/derl_fake.erl misbehaving as MODE; return (NODE . PROCESS)."
  (let* ((name (concat "fake" (derl-test-random-string 6)))
         (buffer (generate-new-buffer " *derl-fake*"))
         (process-environment (derl-test-erl-environment))
         (proc (start-process "derl-fake" buffer "erl" "-noshell"
                              "-pa" derl-test-ebin "-run" "derl_fake"
                              "start" name derl-test-cookie mode)))
    (set-process-query-on-exit-flag proc nil)
    (with-current-buffer buffer
      (derl-test-wait (lambda ()
                        (string-match-p "derl_fake ready" (buffer-string)))))
    (cons (intern (concat name "@localhost")) proc)))

(defun derl-hostile-stop (proc)
  "Kill PROC and its buffer."
  (when (process-live-p proc)
    (kill-process proc))
  (when (buffer-live-p (process-buffer proc))
    (kill-buffer (process-buffer proc))))

(defun derl-hostile-still-talks (good)
  "Check that the connection to GOOD still exchanges messages."
  (let ((inbox (derl-test-inbox))
        (token (intern (derl-test-random-string 8))))
    (erl-send (derl-test-echo good) (vector (car inbox) token))
    (should (derl-test-await-message inbox (lambda (m) (eq m token))))))

(defun derl-hostile-check-fake (mode reason-regexp &rest settings)
  "Let a fake node misbehave as MODE while a good node is connected.
The fake's connection must go down with a reason matching
REASON-REGEXP in its trace, the good one must keep working, and
memory must stay bounded.  SETTINGS are (VARIABLE VALUE ...) bound
around the connection to the fake."
  (derl-test-with-node (good)
    (derl-connect good)
    (let* ((rss (derl-hostile-rss))
           (fake (derl-hostile-start-fake mode))
           (node (car fake))
           downs)
      (unwind-protect
          (let ((erl-nodedown-hook (list (lambda (n) (push n downs)))))
            (cl-progv (cl-loop for (var _) on settings by #'cddr collect var)
                (cl-loop for (_ val) on settings by #'cddr collect val)
              (erl-connect node)
              (derl-test-wait (lambda () (memq node downs)) 30))
            (should (equal downs (list node)))
            (should (string-match-p reason-regexp (derl-hostile-trace node)))
            (derl-hostile-still-talks good)
            (should (< (- (derl-hostile-rss) rss) (* 200 1024 1024))))
        (derl-hostile-stop (cdr fake))))))

;;;; A second Emacs with our name

(defun derl-hostile-start-emacs (name node)
  "Start a batch Emacs called NAME that connects to NODE and pings it.
It prints \"up\" once connected, then \"pong\" for each reply to a ping
sent every 0.2 s, and \"down\" if the connection goes."
  (let* ((buffer (generate-new-buffer " *derl-second-emacs*"))
         (root derl-test-root)
         (form
          `(progn
             (setq load-prefer-newer t)
             (require 'derl)
             (setq derl-cookie ,derl-test-cookie
                   derl-epmd-port ,(derl-test-epmd-port))
             (customize-set-variable 'erl-node-name ',name)
             (add-hook 'erl-nodedown-hook
                       (lambda (_) (princ "down\n") (kill-emacs 3)))
             (derl-connect ',node)
             (princ "up\n")
             (let ((echo (vector 'echo ',node)))
               (erl-spawn
                 (let ((loop nil))
                   (setq loop
                         (lambda ()
                           (erl-send echo (vector erl-self 'ping))
                           (erl-receive (loop)
                               (('ping (princ "pong\n")
                                       (run-at-time 0.2 nil
                                                    (lambda ()
                                                      (erl-spawn
                                                        (funcall loop)))))))))
                   (funcall loop))))
             (while t (accept-process-output nil 1))))
         (proc (start-process "derl-second-emacs" buffer
                              (expand-file-name invocation-name
                                                invocation-directory)
                              "-Q" "--batch"
                              "-L" (expand-file-name "lisp" root)
                              "--eval" (prin1-to-string `(eval ',form t)))))
    (set-process-query-on-exit-flag proc nil)
    (with-current-buffer buffer
      (derl-test-wait (lambda ()
                        (or (string-match-p "^up$" (buffer-string))
                            (not (process-live-p proc))))
                      30)
      (unless (string-match-p "^up$" (buffer-string))
        (error "Second Emacs did not connect: %s" (buffer-string))))
    proc))

(defun derl-hostile-pongs (proc)
  "How many pongs PROC has printed."
  (with-current-buffer (process-buffer proc)
    (how-many "^pong$" (point-min) (point-max))))

(defmacro derl-hostile-with-name (name &rest body)
  "Run BODY with `erl-node-name' set to NAME, restoring it afterwards."
  (declare (indent 1))
  (let ((old (make-symbol "old")))
    `(let ((,old erl-node-name))
       (unwind-protect
           (progn (customize-set-variable 'erl-node-name ,name)
                  ,@body)
         (customize-set-variable 'erl-node-name ,old)))))

(defmacro derl-hostile-with-twin (spec &rest body)
  "Run BODY with a second Emacs connected to a fresh node.
SPEC is (NODE NAME FIRST): the node, the second Emacs's node name
(also what BODY may take on) and its process."
  (declare (indent 1))
  (cl-destructuring-bind (node name first) spec
    `(derl-test-with-node (,node)
       (let* ((,name (intern (format "twin%s@localhost"
                                     (derl-test-random-string 6))))
              (,first (derl-hostile-start-emacs ,name ,node)))
         (unwind-protect
             (progn ,@body)
           (derl-hostile-stop ,first))))))

(ert-deftest derl-hostile-node-name-clash ()
  "A second Emacs using a name already connected fails, and leaves the first."
  (derl-hostile-with-twin (node name first)
    (derl-test-wait (lambda () (> (derl-hostile-pongs first) 0)))
    (derl-hostile-with-name name
      (let ((err (should-error (derl-connect node)
                               :type 'derl-connect-error)))
        (should (string-match-p "already connected to a node named"
                                (cadr err)))
        (should (string-match-p (regexp-quote (symbol-name name))
                                (cadr err)))))
    ;; The first one carries on.
    (let ((pongs (derl-hostile-pongs first)))
      (derl-test-wait (lambda ()
                        (> (derl-hostile-pongs first) (+ pongs 2)))))
    (should (process-live-p first))
    (with-current-buffer (process-buffer first)
      (should-not (string-match-p "^down$" (buffer-string))))))

(ert-deftest derl-hostile-node-restart-same-name ()
  "An Emacs killed with SIGKILL can be replaced by one under its name."
  (derl-hostile-with-twin (node name first)
    (signal-process first 'KILL)
    (derl-test-wait (lambda () (not (process-live-p first))))
    (derl-hostile-with-name name
      ;; The node sees the old socket close at once; should a
      ;; connect still race it, a retry gets through.
      (let ((conn nil) (deadline (+ (float-time) 20)))
        (while (and (not conn) (< (float-time) deadline))
          (condition-case err
              (setq conn (derl-connect node))
            (derl-connect-error
             (unless (string-match-p "already connected" (cadr err))
               (signal (car err) (cdr err)))
             (sleep-for 0.2))))
        (should conn)
        (derl-hostile-still-talks node)
        (derl-disconnect node)))))

(ert-deftest derl-hostile-node-reconnect-at-once ()
  "This Emacs may replace its own connection the node has not yet dropped."
  (derl-test-with-node (node)
    (dotimes (_ 5)
      (derl-connect node)
      (derl-disconnect node)
      (derl-test-wait (lambda () (not (memq node (derl-nodes))))))
    (derl-connect node)
    (derl-hostile-still-talks node)))

;; While the node itself is still trying to reach Emacs (an attempt
;; that cannot succeed while Emacs is no node), it answers our dial with
;; status nok.  Emacs must dial again, not wait for a connection that
;; never comes.
(defun derl-hostile--silent-registration (name)
  "Register NAME with the test EPMD at a port that accepts and says nothing.
Return the processes to delete afterwards, the silent server first: its
property `dialled' is set once a node has connected to it."
  (let* ((silent (make-network-process :name "derl-silent" :server t
                                       :host 'local :service t
                                       :family 'ipv4 :noquery t
                                       :log (lambda (server _client _message)
                                              (process-put server 'dialled t))))
         (port (process-contact silent :service))
         (alive (make-network-process :name "derl-fake-alive"
                                      :host "127.0.0.1" :noquery t
                                      :service (derl-test-epmd-port)
                                      :coding 'binary))
         (body (concat (unibyte-string 120 (ash port -8) (logand port 255)
                                       72 0 0 6 0 5 0 (length name))
                       name (unibyte-string 0 0))))
    (process-send-string alive (concat (unibyte-string 0 (length body)) body))
    (accept-process-output alive 1)
    (list silent alive)))

(ert-deftest derl-hostile-node-nok-while-not-a-node ()
  "A node still dialling Emacs answers nok; Emacs dials again and gets in."
  (derl-test-with-node (node "-kernel" "net_setuptime" "2")
    (derl-connect node)
    (let ((fakes (derl-hostile--silent-registration
                  (car (split-string (symbol-name erl-node-name) "@")))))
      (unwind-protect
          (progn
            ;; The node starts its own attempt to reach Emacs once we are
            ;; gone; it hangs on the silent port for net_setuptime.
            (derl-call node 'timer 'apply_after
                       (list 300 'net_kernel 'connect_node
                             (list erl-node-name)))
            (derl-disconnect node)
            (derl-test-wait (lambda () (not (memq node (derl-nodes)))))
            (derl-test-wait (lambda () (process-get (car fakes) 'dialled)))
            (derl-connect node 15)
            (derl-hostile-still-talks node))
        (mapc #'delete-process fakes)))))

;;;; The peer must be the node dialled

(ert-deftest derl-hostile-node-wrong-name ()
  "A peer whose challenge names another node is refused."
  (derl-test-configure)
  (let* ((fake (derl-hostile-start-fake "wrong_name"))
         (node (car fake)))
    (unwind-protect
        (let ((err (should-error (derl-connect node)
                                 :type 'derl-protocol-error)))
          (should (string-match-p "calls itself .*x@localhost, not"
                                  (cadr err)))
          (should-not (memq node (derl-nodes))))
      (derl-hostile-stop (cdr fake)))))

(ert-deftest derl-hostile-node-host-alias ()
  "A node dialled under another host name is refused: one node, one connection."
  (let ((short (car (split-string (system-name) "\\."))))
    (skip-unless (and (not (equal short "localhost"))
                      (ignore-errors
                        (network-lookup-address-info short 'ipv4))))
    (derl-test-with-node (node)
      (let* ((alias (intern (concat (car (split-string (symbol-name node) "@"))
                                    "@" short)))
             (err (should-error (derl-connect alias)
                                :type 'derl-protocol-error)))
        ;; Alone: the node says who it is.
        (should (string-match-p (regexp-quote (format "calls itself %s" node))
                                (cadr err)))
        (should-not (derl-nodes))
        ;; Connected under its own name: the alias is that connection.
        (derl-connect node)
        (setq err (should-error (derl-connect alias)
                                :type 'derl-protocol-error))
        (should (string-match-p
                 (regexp-quote (format "already connected as %s" node))
                 (cadr err)))
        (should (equal (derl-nodes) (list node)))
        (derl-hostile-still-talks node)))))

;;;; Memory, both ways

(ert-deftest derl-hostile-node-batches ()
  "Events reach Lisp in bounded batches, none lost, order kept."
  (derl-test-with-node (node)
    (derl-connect node)
    (let* ((n 30000)
           (sizes nil)
           (record (lambda (events)
                     ;; Frames in a row come as one event: count them.
                     (push (cl-loop for e in events
                                    sum (pcase (car e)
                                          ('frames (/ (length (cddr e)) 2))
                                          ('traced-frames
                                           (/ (length (cdddr e)) 3))
                                          (_ 1)))
                           sizes)
                     events))
           (inbox (derl-test-inbox)))
      (advice-add 'derl--module-events :filter-return record)
      (unwind-protect
          (progn
            (erl-send (derl-test-echo node) (vector 'stream (car inbox) n))
            ;; Busy, not reading: the stream piles up in the module.
            (let ((end (+ (float-time) 2)))
              (while (< (float-time) end)))
            (derl-test-await-message inbox (lambda (m) (eq m 'done)) 60))
        (advice-remove 'derl--module-events record))
      (let ((seqs (cl-loop for m in (derl-test-messages inbox)
                           when (vectorp m) collect (aref m 1))))
        (should (equal seqs (number-sequence 1 n))))
      (should (<= (apply #'max sizes) 512))  ; NODE_BATCH_EVENTS
      (should (> (length sizes) 1)))))

(ert-deftest derl-hostile-node-send-queue-limit ()
  "Past `derl-max-send-queue' sending signals `derl-busy'; the loss is told."
  (derl-test-with-node (node)
    (let* ((derl-max-send-queue (* 4 1024 1024))
           (derl-net-ticktime 4)
           (proc (cl-find node derl-test--nodes
                          :key (lambda (p) (process-get p 'node))))
           (chunk (erl-binary (make-string (* 1024 1024) ?x)))
           (sent 0)
           downs busy)
      (derl-connect node)
      (signal-process proc 'STOP)
      (unwind-protect
          (let ((erl-nodedown-hook (list (lambda (n) (push n downs)))))
            (while (and (not busy) (< sent 200))
              (condition-case nil
                  (progn (erl-send (derl-test-echo node) chunk)
                         (cl-incf sent))
                (derl-busy (setq busy t))))
            (should busy)
            (should (< sent 100))
            ;; Nothing from the stopped node: down at the tick time,
            ;; and the reason counts what was lost.  The kernel takes
            ;; more of the queue as it grows its buffers: keep it full.
            (let ((deadline (+ (float-time) 30)))
              (while (and (not downs) (< (float-time) deadline))
                (condition-case nil
                    (erl-send (derl-test-echo node) chunk)
                  (derl-busy nil))
                (accept-process-output nil 0.1)))
            (should downs)
            (should (string-match-p
                     "[0-9]+ messages? ([0-9]+ bytes) queued for the node \\(was\\|were\\) discarded"
                     (derl-hostile-trace node))))
        (signal-process proc 'CONT)))))

(ert-deftest derl-hostile-node-receive-buffer-shrinks ()
  "After a big message the connection gives its receive buffer back."
  ;; AddressSanitizer keeps freed memory in quarantine: RSS tells nothing.
  (skip-unless (not (string-match-p "asan" (or (getenv "LD_PRELOAD") ""))))
  (derl-test-with-node (node)
    (derl-connect node)
    (let ((inbox (derl-test-inbox))
          (size (* 96 1024 1024)))
      (garbage-collect)
      (let ((rss (derl-hostile-rss)))
        (erl-send (derl-test-echo node) (vector 'big (car inbox) size))
        (derl-test-await-message
         inbox (lambda (m) (and (vectorp m) (eq (aref m 0) 'big))) 60)
        (setcar (cdr inbox) nil)
        (garbage-collect)
        ;; The connection still works, and holds no buffer of the
        ;; message's size.  (The Lisp string itself may outlive a
        ;; collection or two; with the buffer kept too, the growth
        ;; was twice the message.)
        (derl-hostile-still-talks node)
        (garbage-collect)
        (should (< (- (derl-hostile-rss) rss) (+ size (/ size 2))))))))

;;;; Ports

(ert-deftest derl-hostile-node-ports ()
  "EPMD ports outside 1 to 65535 are refused clearly, in Lisp and in C."
  (derl-test-configure)
  (dolist (port '(70000 -5 0))
    (let* ((derl-epmd-port port)
           (err (should-error (derl-connect 'nobody@localhost)
                              :type 'derl-epmd-error)))
      (should (string-match-p "not a port number" (cadr err)))))
  ;; The module checks too.
  (derl--ensure-started)
  (let* ((result nil)
         (id (derl--module-epmd-port-please "localhost" 70000 "nobody" 5000)))
    (puthash id (cons (lambda (&rest r) (setq result (cons 'ok r)))
                      (lambda (_kind reason) (setq result reason)))
             derl--event-handlers)
    (derl-test-wait (lambda () result))
    (should (stringp result))
    (should (string-match-p "70000 is not a port number" result))))

;;;; Malformed and monstrous frames

(ert-deftest derl-hostile-node-control-arity ()
  "A control message of the wrong arity closes that connection only."
  (derl-hostile-check-fake "arity" "malformed message"))

(ert-deftest derl-hostile-node-atom-cache-undefined ()
  "An atom cache reference never defined closes that connection only."
  (derl-hostile-check-fake "atom_cache" "malformed message.*atom cache"))

(ert-deftest derl-hostile-node-deep-term ()
  "A message nested 1,000,000 deep closes that connection only."
  (derl-hostile-check-fake "deep" "malformed message.*deep"))

(ert-deftest derl-hostile-node-compressed-bomb ()
  "A compressed term inflating past the size limit closes that connection."
  (derl-hostile-check-fake "compressed" "malformed message.*compressed"
                           'derl-max-message-size (* 1024 1024)))

(ert-deftest derl-hostile-node-half-frame ()
  "Half a frame and then silence ends at the tick time, that connection only."
  (derl-hostile-check-fake "half" "net tick timeout" 'derl-net-ticktime 3))

(ert-deftest derl-hostile-node-huge-node-name ()
  "A pid whose node name is 65,535 bytes closes that connection only."
  (derl-hostile-check-fake "big_node" "malformed message"))

(provide 'derl-hostile-node-tests)

;;; derl-hostile-node-tests.el ends here

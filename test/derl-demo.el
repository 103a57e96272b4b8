;;; derl-demo.el --- `make demo': Emacs talks to a live Erlang node  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; Starts a private epmd and an Erlang node (random name and cookie),
;; connects Emacs to it, exchanges messages with a process there, links,
;; streams, and shows the trace buffer; then stops everything.

;;; Code:

(require 'cl-lib)
(require 'derl-ert)
(require 'derl)
(require 'erl)

(defun derl-demo--say (format &rest args)
  "Print FORMAT with ARGS as a line of the demo."
  (princ (concat (apply #'format format args) "\n")))

(defun derl-demo--collect (box)
  "A process body: push every message onto the car of BOX."
  (erl-receive (box)
      ((msg (push msg (car box))
            (derl-demo--collect box)))))

(defun derl-demo--await (box predicate)
  "Wait for a message in BOX satisfying PREDICATE and return it."
  (derl--wait (lambda () (cl-find-if predicate (car box))) 30 "for a reply")
  (cl-find-if predicate (car box)))

(defun derl-demo ()
  "Run the demo."
  (let ((print-escape-newlines t)
        (derl-use-trace-buffer t))
    (setq derl-cookie derl-test-cookie
          derl-epmd-port (derl-test-epmd-port))
    (customize-set-variable 'erl-node-name
                            (intern (format "emacs%s@localhost"
                                            (derl-test-random-string 4))))
    (derl-demo--say "Starting an Erlang node (private epmd on port %d)..."
                    derl-epmd-port)
    (let* ((node (derl-test-start-node))
           (echo (vector 'echo node))
           (box (list nil))
           (me (erl-spawn (derl-demo--collect box))))
      (unwind-protect
          (progn
            (derl-demo--say "Emacs is %s; connecting to %s..." erl-node-name
                            node)
            (let ((start (float-time)))
              (derl-connect node)
              (derl-demo--say "Connected in %.1f ms (EPMD + handshake)."
                              (* 1000 (- (float-time) start))))

            (derl-demo--say "\nA process in Emacs, %s, sends to `echo' on %s:"
                            (erl-pid-to-string me) node)
            (let ((term (list 'hello "from Emacs" 42 3.5 (expt 2 100)
                              (vector 'a 'tuple)
                              (let ((h (make-hash-table :test 'equal)))
                                (puthash 'key (erl-binary "value") h)
                                h))))
              (derl-demo--say "  sent     %S" term)
              (with-erl-process me
                (erl-send echo (vector erl-self term)))
              (let ((reply (derl-demo--await box #'consp)))
                (derl-demo--say "  received %S" reply)))

            (derl-demo--say "\nThe node spawns a process linked to ours and \
lets it die:")
            (let* ((trapper-box (list nil))
                   (trapper (erl-spawn (setq erl-trap-exit t)
                                       (derl-demo--collect trapper-box))))
              (erl-send echo (vector 'spawn_linked trapper))
              (let ((spawned (derl-demo--await trapper-box #'vectorp)))
                (erl-send (aref spawned 1) 'die)
                (derl-demo--say
                 "  exit signal: %S"
                 (derl-demo--await trapper-box
                                   (lambda (m) (and (vectorp m)
                                                    (eq (aref m 0) 'EXIT)))))))

            (derl-demo--say "\n10,000 messages streamed from Erlang into the \
Emacs process:")
            (setcar box nil)
            (let ((derl-use-trace-buffer nil)
                  (start (float-time)))
              (erl-send echo (vector 'stream me 10000))
              (derl-demo--await box (lambda (m) (eq m 'done)))
              (derl-demo--say "  %d arrived, in order: %s, %.0f messages/s"
                              (1- (length (car box)))
                              (equal (mapcar (lambda (m) (aref m 1))
                                             (cdr (car box)))
                                     (number-sequence 10000 1 -1))
                              (/ 10000 (- (float-time) start))))

            (derl-demo--say "\nThe trace buffer, *trace %s*:" node)
            (with-current-buffer (format "*trace %s*" node)
              (dolist (line (seq-take (split-string (buffer-string) "\n" t)
                                      14))
                (derl-demo--say "  %s" line)))

            (derl-demo--say "\nDisconnecting.")
            (let (down)
              (let ((erl-nodedown-hook (list (lambda (n) (setq down n)))))
                (derl-disconnect node)
                (derl--wait (lambda () down) 10 "for nodedown"))
              (derl-demo--say "erl-nodedown-hook ran for %s." down)))
        (derl-test-stop-node node)))))

(derl-demo)

;;; derl-demo.el ends here

;;; derl-demo.el --- `make demo': Emacs talks to a live Erlang node  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; `make demo' (`derl-demo-batch'): starts a private epmd and an Erlang
;; node with a fresh random name and cookie, connects Emacs to it,
;; calls a function there, evaluates an expression, exchanges messages
;; with a process there, links, streams (measured as `make bench'
;; measures streams, the trace off), shows the node list and the trace
;; buffer, then stops everything.  Terms print as Erlang prints
;; them.
;;
;; `make demo-interactive' (`derl-demo-interactive'): the same start in
;; a terminal Emacs left open with the node list shown; the node and
;; epmd stop when that Emacs exits.

;;; Code:

(require 'cl-lib)
(require 'derl-ert)
(require 'derl)
(require 'erl)
(require 'derl-list)
(require 'derl-eval)

(defun derl-demo--say (format &rest args)
  "Print FORMAT with ARGS as a line of the demo."
  (princ (concat (apply #'format format args) "\n")))

(defun derl-demo--term (term)
  "TERM as Erlang prints it, for a line of the demo."
  (derl-term-to-string term 200))

(defun derl-demo--collect (box)
  "A process body: push every message onto the car of BOX."
  (erl-receive (box)
      ((msg (push msg (car box))
            (derl-demo--collect box)))))

(defun derl-demo--await (box predicate)
  "Wait for a message in BOX satisfying PREDICATE and return it."
  (derl--wait (lambda () (cl-find-if predicate (car box))) 30 "for a reply")
  (cl-find-if predicate (car box)))

(defun derl-demo--start ()
  "Start epmd and a demo node; point Emacs at them; return the node."
  (setq derl-cookie derl-test-cookie
        derl-epmd-port (derl-test-epmd-port))
  (customize-set-variable 'erl-node-name
                          (intern (format "emacs%s@localhost"
                                          (derl-test-random-string 4))))
  (derl-test-start-node))

(defun derl-demo--node-list ()
  "Print the node list as `derl-list-nodes' shows it."
  (derl-demo--say "  %-24s %-6s %-3s %-4s %7s %8s %8s %9s"
                  "Node" "State" "Dir" "Link" "Msgs in" "Bytes in"
                  "Msgs out" "Bytes out")
  (dolist (entry (derl-list-entries))
    (let ((row (cadr entry)))
      (derl-demo--say "  %-24s %-6s %-3s %-4s %7s %8s %8s %9s"
                      (aref row 0) (aref row 1) (aref row 2) (aref row 3)
                      (aref row 4) (aref row 5) (aref row 6) (aref row 7)))))

(defun derl-demo--exchange (node me box)
  "Send a term to `echo' on NODE from ME, whose messages land in BOX."
  (let ((echo (vector 'echo node))
        (term (list 'hello "from Emacs" 42 3.5 (expt 2 100)
                    (vector 'a 'tuple)
                    (let ((h (make-hash-table :test 'equal)))
                      (puthash 'key (erl-binary "value") h)
                      h))))
    (derl-demo--say "\nA process in Emacs, %s, sends to `echo' on %s:"
                    (derl-demo--term me) node)
    (derl-demo--say "  sent     %s" (derl-demo--term term))
    (with-erl-process me
      (erl-send echo (vector erl-self term)))
    (derl-demo--say "  received %s"
                    (derl-demo--term (derl-demo--await box #'consp)))))

(defun derl-demo--link (node)
  "Have NODE spawn a process linked to one of ours, and let it die."
  (derl-demo--say "\nThe node spawns a process linked to ours and lets it die:")
  (let* ((trapper-box (list nil))
         (trapper (erl-spawn (setq erl-trap-exit t)
                             (derl-demo--collect trapper-box))))
    (erl-send (vector 'echo node) (vector 'spawn_linked trapper))
    (let ((spawned (derl-demo--await trapper-box #'vectorp)))
      (erl-send (aref spawned 1) 'die)
      (derl-demo--say
       "  exit signal: %s"
       (derl-demo--term
        (derl-demo--await trapper-box
                          (lambda (m) (and (vectorp m)
                                           (eq (aref m 0) 'EXIT)))))))))

(defvar derl-demo-stream-size 200000
  "Messages in each stream the demo measures, as many as `make bench' sends.")

(defun derl-demo--sink (count)
  "Receive {seq, I} into COUNT until `done', as `make bench' does.
COUNT is [NEXT-EXPECTED RECEIVED OUT-OF-ORDER END-TIME].  It names
COUNT in `erl-receive's variables, as Distel's code does: each
receive then makes no closure."
  (erl-receive (count)
      ((['seq i]
        (unless (eql i (aref count 0))
          (aset count 2 (1+ (aref count 2))))
        (aset count 0 (1+ i))
        (aset count 1 (1+ (aref count 1)))
        (derl-demo--sink count))
       ('done (aset count 3 (float-time))))))

(defun derl-demo--stream-once (node n)
  "Stream N messages from NODE into a new Emacs process.
Return (RATE RECEIVED OUT-OF-ORDER), the rate in messages a second
from the request to the end marker."
  (let ((count (vector 1 0 0 nil))
        (start (float-time)))
    (erl-spawn
      (erl-send (vector 'echo node) (vector 'stream erl-self n))
      (derl-demo--sink count))
    (derl--wait (lambda () (aref count 3)) 600 "a stream")
    (list (/ n (- (aref count 3) start)) (aref count 1) (aref count 2))))

(defun derl-demo--stream (node)
  "Stream messages from NODE into Emacs processes, measured as the bench does.
Three streams of `derl-demo-stream-size' messages, the trace off;
print the median rate, the three, and what was lost or disordered."
  (let ((n derl-demo-stream-size))
    (derl-demo--say "\nThree streams of %d messages from Erlang into an Emacs \
process, the trace off,\nmeasured as `make bench' does (compiled, after a \
warm-up stream, from the request\nto the last message, median of 3):" n)
    ;; As the bench: compiled, as derl's own Lisp is (this file is
    ;; loaded as source), warm, and each stream from a settled heap.
    (byte-compile 'derl-demo--sink)
    (let* ((derl-use-trace-buffer nil)
           (runs (progn
                   (derl-demo--stream-once node (/ n 10))
                   (cl-loop repeat 3
                            collect (progn
                                      (garbage-collect)
                                      (derl-demo--stream-once node n)))))
           (rates (mapcar #'car runs)))
      (derl-demo--say "  %d arrived each time, in order: %s; %.0f messages/s \
\(the three: %s)"
                      n
                      (cl-every (lambda (run) (and (= (nth 1 run) n)
                                                   (zerop (nth 2 run))))
                                runs)
                      (nth 1 (sort (copy-sequence rates) #'<))
                      (mapconcat (lambda (rate) (format "%.0f" rate))
                                 rates ", "))
      (unless (cl-every (lambda (run) (= (nth 1 run) n)) runs)
        (derl-demo--say "  received: %s"
                        (mapconcat (lambda (run) (format "%d" (nth 1 run)))
                                   runs ", "))))))

(defun derl-demo--trace (node)
  "Print the start of NODE's trace buffer."
  (derl-demo--say "\nThe trace buffer, *trace %s* (M-x derl-show-trace):"
                  node)
  (derl-trace-flush)
  (with-current-buffer (format "*trace %s*" node)
    (dolist (line (seq-take (split-string (buffer-string) "\n" t) 12))
      (derl-demo--say "  %s" (truncate-string-to-width line 150 nil nil
                                                      "...")))))

(defun derl-demo-batch ()
  "Run the demo in batch, printing what happens; stop everything after."
  (let ((print-escape-newlines t)
        (derl-use-trace-buffer t))
    (derl-demo--say "Starting epmd (port %d) and an Erlang node with a \
fresh cookie..." (derl-test-epmd-port))
    (let* ((node (derl-demo--start))
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

            (derl-demo--say "\nA remote call, (derl-call '%s 'erlang \
'system_info '(otp_release)):" node)
            (derl-demo--say "  %s" (derl-demo--term
                                    (derl-call node 'erlang 'system_info
                                               '(otp_release))))
            (derl-demo--say "  and lists:seq(1, 5) there: %s"
                            (derl-demo--term
                             (derl-call node 'lists 'seq '(1 5))))

            (let ((expression "[{N, N * N} || N <- lists:seq(1, 4)]"))
              (derl-demo--say "\nAn expression evaluated on the node \
(M-x derl-eval-expression):\n  %s\n  => %s"
                              expression (derl-eval node expression)))
            (condition-case err
                (derl-eval node "1 / 0")
              (derl-eval-error
               (derl-demo--say "  1 / 0\n  => %s"
                               (replace-regexp-in-string
                                "\n" "\n     " (cadr err)))))

            (derl-demo--exchange node me box)
            (derl-demo--link node)
            (derl-demo--stream node)

            (derl-demo--say "\nThe node list (M-x derl-list-nodes):")
            (derl-demo--node-list)
            (derl-demo--trace node)

            (derl-demo--say "\nDisconnecting.")
            (let (down)
              (let ((erl-nodedown-hook (list (lambda (n) (setq down n)))))
                (derl-disconnect node)
                (derl--wait (lambda () down) 10 "for nodedown"))
              (derl-demo--say "erl-nodedown-hook ran for %s." down)))
        (derl-test-stop-node node)
        (derl-demo--say "Stopped the node and epmd.")))))

(defun derl-demo-interactive ()
  "Start a node, connect, and leave the node list shown.
The node and epmd stop when Emacs exits."
  (let* ((node (derl-demo--start)))
    (derl-connect node)
    (derl-call node 'erlang 'system_info '(otp_release))
    (setq derl-last-node node)
    (delete-other-windows)
    (derl-list-nodes)
    (delete-other-windows)
    (message "Connected to %s.  e: evaluate an expression, RET: trace, \
c: connect, C-x C-c: quit (stops the node)" node)))

(provide 'derl-demo)

;;; derl-demo.el ends here

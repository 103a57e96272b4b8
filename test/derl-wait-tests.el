;;; derl-wait-tests.el --- waiting in the module, and sending in place  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; `derl--wait' blocks in the module and takes events itself, without
;; the event pipe: C-g, timers and other processes' output must still
;; run, order must be kept when the event filter and a wait take turns,
;; and events a wait leaves behind must still wake the filter.  Big
;; messages are framed where they are encoded and handed over to the
;; connection; one queued behind another must arrive whole too.
;; Against real nodes; no timing is asserted.

;;; Code:

(require 'cl-lib)
(require 'ert)
(require 'derl-rpc)
(require 'derl-ert)
(require 'derl-tests)

(ert-deftest derl-wait-quit-in-module ()
  "A quit pending when the module waits ends the wait with `quit'."
  (derl-test-with-node (node)
    (derl-connect node)
    (should (eq (condition-case nil
                    (progn (setq quit-flag t)
                           ;; Would block for 100 s without the quit.
                           (derl--module-wait-events 100000000))
                  (quit 'quit))
                'quit))
    (derl--module-wait-events nil)
    ;; Nothing is left stuck: the connection still answers.
    (should (eq (derl-call node 'erlang 'node nil) node))))

(ert-deftest derl-wait-runs-timers-and-process-output ()
  "Timers fire and other processes' output is read during a wait."
  (derl-test-with-node (node)
    (derl-connect node)
    (let* ((fired nil)
           (output "")
           (timer (run-at-time 0.05 nil (lambda () (setq fired t))))
           (proc (make-process :name "derl-wait-test"
                               :command '("sh" "-c" "sleep 0.1; echo hello")
                               :filter (lambda (_ s)
                                         (setq output (concat output s)))
                               :noquery t)))
      (unwind-protect
          (progn
            (should (eq (derl-call node 'timer 'sleep '(800)) 'ok))
            (should fired)
            (should (string-match-p "hello" output)))
        (cancel-timer timer)
        (delete-process proc)))))

(ert-deftest derl-wait-order-with-filter-taking-turns ()
  "Waits in the module and the event filter take turns; order is kept."
  (derl-test-with-node (node)
    (derl-connect node)
    (let ((inbox (derl-test-inbox))
          (n 20000)
          (turn 0))
      (erl-send (derl-test-echo node) (vector 'stream (car inbox) n))
      (while (not (memq 'done (cadr inbox)))
        (setq turn (1+ turn))
        (if (cl-evenp turn)
            (ignore-errors
              (derl--wait (lambda () nil) 0.005 "a turn"))
          (accept-process-output nil 0.005)))
      (let ((seqs (cl-remove-if-not #'vectorp (derl-test-messages inbox))))
        (should (equal (mapcar (lambda (m) (aref m 1)) seqs)
                       (number-sequence 1 n)))))))

(ert-deftest derl-wait-leftover-events-wake-the-filter ()
  "Events a wait in the module saw but did not take reach the filter."
  (derl-test-with-node (node)
    (derl-connect node)
    (let ((inbox (derl-test-inbox))
          (deadline (+ (float-time) 20)))
      (erl-send (derl-test-echo node) (vector (car inbox) 'left-behind))
      ;; The reply is queued while the module waits: no pipe byte for
      ;; it.  Leave it there, as a quit at that moment would.
      (should (derl--module-wait-events 20000000))
      (derl--module-wait-events nil)
      ;; Only the event filter can take it now.
      (while (and (not (memq 'left-behind (cadr inbox)))
                  (< (float-time) deadline))
        (accept-process-output nil 0.1))
      (should (memq 'left-behind (cadr inbox))))))

(ert-deftest derl-wait-busy-between-waits-keeps-the-link ()
  "Lisp busy inside a wait, between two blocks in the module, stays up.
While the main thread waits in the module it reads the connections
itself; once it has been away long, the I/O thread must read them
again, or the node's ticks go unread and the link dies."
  :tags '(:slow)
  (derl-test-with-node (node "-kernel" "net_ticktime" "2")
    (let ((derl-net-ticktime 2)
          (inbox (derl-test-inbox))
          downs done)
      (let ((erl-nodedown-hook (list (lambda (n) (push n downs)))))
        (derl-connect node)
        (erl-spawn
          (erl-send (derl-test-echo node) (vector erl-self 'busy))
          (erl-receive ()
              (('busy
                ;; Runs from the wait's own taking of events: 5 s with
                ;; no read, more than twice the tick time.
                (let ((end (+ (float-time) 5)))
                  (while (< (float-time) end)
                    (dotimes (_ 10000) (sqrt 2.0))))
                (setq done t)))))
        (derl--wait (lambda () done) 30 "the busy process")
        (erl-send (derl-test-echo node) (vector (car inbox) 'still-here))
        (should (derl-test-await-message inbox
                                         (lambda (m) (eq m 'still-here))))
        (should-not downs)))))

(ert-deftest derl-wait-handed-back-socket-is-read ()
  "After the I/O thread took a connection back from a busy wait, it reads it.
A process busy inside a wait keeps the main thread away from its
poll long enough for the I/O thread to take the reading back.  Once
the wait is over, a message from the node must come through the
event filter at once, not when the next tick wakes the I/O thread
(up to 15 s with the default tick time; here, with ticks 150 s apart,
the message would not come in the 30 s it is given)."
  (derl-test-with-node (node)
    (let ((derl-net-ticktime 600))
      (derl-connect node))
    (let ((inbox (derl-test-inbox))
          done)
      (erl-spawn
        (erl-send (derl-test-echo node) (vector erl-self 'busy))
        (erl-receive ()
            (('busy
              (let ((end (+ (float-time) 0.2)))
                (while (< (float-time) end)))
              (setq done t)))))
      (derl--wait (lambda () done) 30 "the busy process")
      ;; Let the I/O thread notice the main thread has gone.
      (sleep-for 0.05)
      ;; Through the event filter: no wait in the module reads it.
      (erl-send (derl-test-echo node) (vector (car inbox) 'prompt))
      (let ((start (float-time)))
        (while (and (not (memq 'prompt (cadr inbox)))
                    (< (- (float-time) start) 30))
          (accept-process-output nil 0.01)))
      (should (memq 'prompt (cadr inbox))))))

(ert-deftest derl-wait-spin-settings-answer-alike ()
  "Round trips are answered alike whatever `derl-wait-spin' says."
  (derl-test-with-node (node)
    (derl-connect node)
    (dolist (spin '(0 1 100 5000))
      (let ((derl-wait-spin spin))
        (dotimes (k 50)
          (should (equal (derl-call node 'erlang 'abs (list (- k)))
                         k)))))))

(ert-deftest derl-send-big-messages-back-to-back ()
  "Big messages sent back to back, each framed in place, arrive whole."
  (derl-test-with-node (node)
    (derl-connect node)
    (let* ((inbox (derl-test-inbox))
           (sizes '(3000000 5 4000000 1 2500000))
           (payloads (cl-loop for size in sizes
                              for k from 0
                              collect (erl-binary
                                       (make-string size (+ ?a k))))))
      ;; Sent one after another: the later ones queue behind the
      ;; first, which the socket cannot take at once.
      (dolist (p payloads)
        (erl-send (derl-test-echo node) (vector (car inbox) p)))
      (derl-test-wait (lambda () (>= (length (cadr inbox)) (length sizes)))
                      60)
      (should (equal (derl-test-messages inbox)
                     (mapcar #'erl-binary-string payloads))))))

(provide 'derl-wait-tests)

;;; derl-wait-tests.el ends here

;;; derl-deliver.el --- delivering what nodes send to Emacs's processes  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;; This file is not part of GNU Emacs.

;; This program is free software: you can redistribute it and/or modify
;; it under the terms of the GNU General Public License as published by
;; the Free Software Foundation, either version 3 of the License, or
;; (at your option) any later version.

;; This program is distributed in the hope that it will be useful,
;; but WITHOUT ANY WARRANTY; without even the implied warranty of
;; MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
;; GNU General Public License for more details.

;; You should have received a copy of the GNU General Public License
;; along with this program.  If not, see <https://www.gnu.org/licenses/>.

;;; Commentary:

;; A peer may only address Emacs's own processes, and only on behalf
;; of its own: a signal to a pid of any other node, or claiming to come
;; from one, is dropped with a trace line.  Emacs never relays, and
;; never dials a node because a peer named it.
;;
;; Messages go to a process's mailbox, or to a receiver: a function that
;; takes what other nodes send to a pid, knowing the connection it came
;; over, so that it can answer over that one only (`derl--answer').  What
;; nobody takes is logged in *erl-lost-msgs*.

;;; Code:

(require 'erl)
(require 'derl-trace)
(require 'derl-conn)

(defvar derl-undeliverable-functions nil
  "Functions called with (CONN PID MESSAGE) for a message nobody can take.
PID, a local pid or a registered name, is not alive; MESSAGE came
over CONN.  The first function that returns non-nil takes charge of
the message; when none does, the message is logged in the trace
buffer and in *erl-lost-msgs*.")

(defun derl--local-pid-p (pid)
  "Return non-nil if PID is a pid of this Emacs's node, alive or not."
  (and (erl-pid-p pid) (eq (erl-pid-node pid) erl-node-name)))

(defun derl--drop (conn what reason)
  "Trace that the signal WHAT from CONN was dropped, for REASON."
  (derl--trace conn 'input "** dropped %s: %s" what reason)
  nil)

(defun derl--check-signal (conn what from to)
  "Return non-nil if a signal WHAT from FROM to TO may act here.
FROM, unless nil, must be a pid of CONN's node; TO a pid of this
Emacs.  Otherwise trace the drop and return nil."
  (cond ((and from (not (and (erl-pid-p from)
                             (eq (erl-pid-node from)
                                 (derl-connection-node conn)))))
         (derl--drop conn what (format "the sender %s is not a process of %s"
                                       (derl-trace-term from)
                                       (derl-connection-node conn))))
        ((not (derl--local-pid-p to))
         (derl--drop conn what (format "%s is not a process of this Emacs"
                                       (derl-trace-term to))))
        (t t)))

(defun derl--deliver (conn what to msg)
  "Deliver MSG, which came over CONN as WHAT, to TO, a local pid or name.
Return non-nil if it was delivered; if TO is not alive, or is a
receiver that does not take MSG, pass MSG to `derl--undeliverable'."
  (let ((pid (if (symbolp to) (erl-whereis to) to)))
    (or (and pid (let ((taken (derl--to-receiver conn pid msg)))
                   (if (eq taken 'none)
                       (erl--send-local pid msg)
                     taken)))
        (progn (derl--undeliverable conn what to msg)
               nil))))

(defvar derl--receivers (make-hash-table :test 'eql)
  "Receivers of messages from other nodes, by the id of their local pid.
Each is (FUNCTION . ARGUMENT): see `derl--make-receiver' and
`derl--serve'.")

(defun derl--make-receiver (function argument)
  "Return a new local pid whose messages from other nodes go to FUNCTION.
FUNCTION is called with ARGUMENT as `derl--serve' says, with no process and no
mailbox: cheaper than a process when one reply is awaited.  The pid
is not a live process for anything else; forget it with
`derl--forget-receiver', after which its messages are lost as those
to any dead process."
  (let ((pid (erl--make-local-pid (setq erl--pid-counter
                                        (1+ erl--pid-counter)))))
    (puthash (aref pid 3) (cons function argument) derl--receivers)
    pid))

(defun derl--serve (pid function argument)
  "Have FUNCTION, with ARGUMENT, take what other nodes send to PID.
PID is a local process.  FUNCTION is called with ARGUMENT, the
message and the connection it came over, as each is handled; it
returns non-nil when it takes the message, nil to have it logged
as lost.  Knowing the connection, it
can answer over that one only (see `derl--answer').  Messages sent
from Emacs itself still go to the process.  The serving ends when
PID exits, or with `derl--forget-receiver'."
  (puthash (aref pid 3) (cons function argument) derl--receivers))

(defun derl--forget-receiver (pid)
  "Forget the receiver PID made by `derl--make-receiver' or `derl--serve'."
  (remhash (aref pid 3) derl--receivers))

(defun derl--to-receiver (conn pid msg)
  "Pass MSG, which came over CONN, to the receiver PID.
Return what the receiver returns, or `none' if PID is not one."
  (let ((receiver (and (eql (aref pid 5) erl-node-creation)
                       (eql (aref pid 4) 0)
                       (gethash (aref pid 3) derl--receivers))))
    (if receiver
        (funcall (car receiver) (cdr receiver) msg conn)
      'none)))

(defun derl--answer (conn pid msg)
  "Send MSG to PID, a process of CONN's node, over CONN and no other way.
This is how Emacs answers a request that came over CONN: never by
dialling, and never to another node.  When CONN is down, or its
queue is full, the answer is dropped with a trace line, and nil
returned; otherwise non-nil."
  (cond ((not (and (erl-pid-p pid)
                   (eq (erl-pid-node pid) (derl-connection-node conn))))
         (derl--drop conn "an answer"
                     (format "%s is not a process of %s"
                             (derl-trace-term pid) (derl-connection-node conn))))
        ((not (derl--live-p conn))
         (derl--drop conn "an answer"
                     (format "the connection to %s is down"
                             (derl-connection-node conn))))
        (t
         (condition-case err
             (progn (derl--send-over conn pid msg)
                    t)
           (derl-busy
            (derl--drop conn "an answer"
                        (format "to %s: %s" (derl-trace-term pid)
                                (error-message-string err))))))))

(defun derl--undeliverable (conn what to msg)
  "Record MSG, which came over CONN as WHAT for TO, nobody alive.
Unless a function of `derl-undeliverable-functions' takes charge of
it, trace it with TO in full (its creation too) and log it in
*erl-lost-msgs*."
  (let ((taker (run-hook-with-args-until-success
                'derl-undeliverable-functions conn to msg)))
    (if taker
        (derl--trace conn 'input "%s: %s %s (no such process; handed on)"
                     what (derl-trace-pid to) (derl-trace-term msg))
      (derl--trace conn 'input "** lost %s: no process %s: %s (see \
*erl-lost-msgs*)" what (derl-trace-pid to) (derl-trace-term msg))
      (erl-lose-msg msg to))))

(provide 'derl-deliver)

;;; derl-deliver.el ends here

;;; derl-events.el --- events from the I/O thread, and waiting for them  -*- lexical-binding: t; -*-

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

;; The module's I/O thread keeps the connections; what happens on them
;; reaches Lisp as events through one pipe process: the thread writes a
;; byte when its event queue goes from empty to non-empty, and the filter
;; takes every pending event at once.  Here: taking events (C-g loses
;; none), a node coming up and going down, incoming operations handed to
;; the handler each file registers for its own (`derl--define-op-handler'),
;; and `derl--wait', which waits in the module for what a caller needs.

;;; Code:

(require 'cl-lib)
(require 'subr-x)
(require 'erlext)
(require 'erl)
(require 'derl-trace)
(require 'derl-options)
(require 'derl-ops)
(require 'derl-conn)

(declare-function derl--module-events "derl-module"
                  (&optional lossless max-depth trace-length max-memory))
(declare-function derl--module-wait-events "derl-module" (micros &optional spin))

(defvar derl--events-process nil
  "The pipe process through which the I/O thread wakes Emacs.")

(defvar derl--event-kind-handlers nil
  "Handlers of the module's events of other kinds: (KIND . FUNCTION).
FUNCTION is called with the event; the file that knows KIND adds it.")

(defvar derl--connection-down-functions nil
  "Functions called with a connection that just went down.
They forget what lived as long as the connection (links, monitors)
before `erl-nodedown-hook' runs.")

(defvar derl--event-handlers (make-hash-table :test 'eql)
  "Callbacks for EPMD queries, by query id: (ON-SUCCESS . ON-ERROR).")

;;;; Handlers

(defvar derl--op-handlers (make-vector 256 nil)
  "The handler of each incoming operation, indexed by its number.
Each is called with (CONN OP CONTROL MESSAGE): the connection, the
operation number, the control tuple and the message term (nil when
the operation carries none).  See `derl--set-op-handler'.")

(defun derl--set-op-handler (ops handler)
  "Make HANDLER handle the incoming operations OPS, a list of numbers.
HANDLER is called with (CONN OP CONTROL MESSAGE); it replaces the
handler those operations had, so other files can take them over."
  (dolist (op ops)
    (aset derl--op-handlers op handler)))

(defmacro derl--define-op-handler (name ops arglist docstring &rest body)
  "Define NAME as the handler of the operations OPS, with ARGLIST.
OPS is a list of forms giving operation numbers (such as
`derl--dop-send').  ARGLIST is (CONN OP CONTROL MESSAGE); DOCSTRING
and BODY as in `defun'."
  (declare (indent 3) (doc-string 4))
  `(progn
     (defun ,name ,arglist ,docstring ,@body)
     (derl--set-op-handler (list ,@ops) #',name)))

(defun derl--dispatch (conn control message)
  "Handle CONTROL, with MESSAGE (nil when none), from CONN.
The handler comes from `derl--op-handlers'."
  (let* ((op (aref control 0))
         (handler (and (natnump op) (< op (length derl--op-handlers))
                       (aref derl--op-handlers op))))
    (if handler
        (funcall handler conn op control message)
      (derl--trace-terms conn 'input "** ignored control message"
                         control))))

;;;; Waits

(defvar derl--waiters nil
  "The waits in progress, innermost first: each a list (DONE-P).
After each batch of events, the innermost wait whose DONE-P is
satisfied is ended by a throw to that list, its catch tag.")

(defconst derl--wait-slice-us 10000
  "Microseconds a wait blocks in the module before looking at the rest.
Between blocks, timers and other processes' output run; the module
looks at \\[keyboard-quit] more often.")

(defun derl--wait (done-p timeout what)
  "Wait until calling DONE-P gives non-nil; signal `derl-timeout' after TIMEOUT.
WHAT says what is being waited for: a string, or a function that
returns one (made only when the wait times out).  The wait blocks in the module
until an event comes, taking events at once as they come (no trip
through the event pipe), and in slices of `derl--wait-slice-us'
runs timers and process output in `accept-process-output', as
`jsonrpc-request' does; \\[keyboard-quit] ends it cleanly: the wait
is forgotten however it ends."
  ;; The waiter is also the tag `derl--wake-waiter' throws to.
  (let ((waiter (list done-p))
        (deadline (+ (float-time) timeout))
        (in-module (process-live-p derl--events-process)))
    (unwind-protect
        (progn
          (push waiter derl--waiters)
          (catch waiter
            (while (not (funcall done-p))
              (let ((left (- deadline (float-time))))
                (when (<= left 0)
                  (signal 'derl-timeout
                          (list (format "Timed out %s"
                                        (if (functionp what) (funcall what)
                                          what)))))
                (if (not in-module)
                    (accept-process-output nil (min left 0.1))
                  (if (derl--wait-in-module-for
                       (min derl--wait-slice-us (ceiling (* left 1e6))))
                      (derl--take-events-lingering
                       (lambda () (not (funcall done-p))))
                    (accept-process-output nil 0)))))))
      (when in-module
        ;; Done waiting: events left behind wake the pipe.
        (derl--module-wait-events nil))
      (setq derl--waiters (delq waiter derl--waiters)))))

(defun derl--wait-in-module-for (micros)
  "Wait in the module at most MICROS microseconds for an event.
Return non-nil when one is pending.  See `derl-wait-spin'."
  ;; The module holds the spin to 5000 itself.
  (derl--module-wait-events micros (and (natnump derl-wait-spin)
                                        derl-wait-spin)))

(defun derl--wake-waiter ()
  "End the innermost wait, if what it waits for has happened."
  (let ((waiter (car derl--waiters)))
    (when (and waiter (funcall (car waiter)))
      (throw waiter 'done))))

;;;; Events

(defconst derl--linger-us 1000
  "Microseconds the event filter waits for a reply to what it sent.")

(defconst derl--linger-max 0.02
  "Seconds one call of the event filter goes on taking events, at most.")

(defun derl--events-filter (_process _bytes)
  "Take every pending event from the module and handle it.
Then end the innermost wait whose condition now holds.  When handling
the events sent requests (a process answered, or asked a node
something), the reply is often a few microseconds away: take it here,
as `derl--take-events-lingering' does, rather than after a redisplay
and another trip through the event pipe, while each batch sends."
  (let ((sends derl--sends))
    (unwind-protect
        (derl--take-events-lingering
         (lambda ()
           (derl--wake-waiter)
           (prog1 (not (eq sends derl--sends))
             (setq sends derl--sends))))
      (derl--module-wait-events nil))))

(defun derl--take-events-lingering (more-p)
  "Take events, and the ones that follow while calling MORE-P gives non-nil.
After each batch, call MORE-P; while it gives non-nil, wait in
the module for more events, `derl--linger-us' at most, and take them
too, for `derl--linger-max' seconds in all.  The caller ends the
waiting in the module."
  (let ((start (float-time)))
    (derl--take-events)
    (while (and (funcall more-p)
                (< (- (float-time) start) derl--linger-max)
                (derl--wait-in-module-for derl--linger-us))
      (derl--take-events))))

(defun derl--take-events ()
  "Take a batch of pending events from the module and handle them.
Processes that get messages run once for the whole batch.

\[keyboard-quit] may interrupt the module while it makes the events
\(a big message takes a while), never their delivery: the module
keeps the events it did not hand over, for the next call; every
event handed over is handled, and the processes that got messages
run, as if no quit had come; then the quit goes on, to stop the
caller.  So a quit loses no message and kills no process it was
not aimed at."
  (let ((quit nil))
    (let ((inhibit-quit t))
      ;; With quits inhibited the module looks at C-g itself: it hands
      ;; over what it has made and leaves `quit-flag' set.
      (let ((events (derl--module-events
                     (eq erlext-decode-binaries-as 'erl-binary)
                     erlext-max-depth
                     (and derl-use-trace-buffer derl-trace-term-length)
                     derl-max-message-memory)))
        (setq quit quit-flag
              quit-flag nil)
        (erl-with-deferred-scheduling
          (dolist (event events)
            (condition-case-unless-debug err
                (derl--handle-event event)
              (error (message "derl: error handling %S: %s" (car event)
                              (error-message-string err)))))
          ;; Before the processes run: a quit typed meanwhile is the
          ;; caller's, not theirs.
          (setq quit (or quit quit-flag)
                quit-flag nil))))
    (when quit
      (setq quit-flag quit))))

(defun derl--handle-event (event)
  "Act on one EVENT from the module."
  (pcase event
    (`(frames ,id . ,items) (derl--handle-frames id nil items))
    (`(traced-frames ,id . ,items) (derl--handle-frames id t items))
    (`(up ,id ,_name ,creation ,flags)
     (let ((conn (gethash id derl--by-id)))
       (when conn
         (setf (derl-connection-state conn) 'up
               (derl-connection-flags conn) flags
               (derl-connection-creation conn) creation
               (derl-connection-up-since conn) (float-time))
         (remhash (derl-connection-node conn) derl--backoff)
         (derl--trace conn 'input "** nodeup")
         (derl--run-hook-quittably 'erl-nodeup-hook
                                   (derl-connection-node conn) conn))))
    (`(down ,id ,kind ,reason)
     (let ((conn (gethash id derl--by-id)))
       (when conn
         (derl--nodedown conn kind reason))))
    (`(bad-frame ,id ,reason)
     (let ((conn (gethash id derl--by-id)))
       (message "derl: dropped a message from %s: %s"
                (and conn (derl-connection-node conn)) reason)
       (when conn
         (derl--trace conn 'input "** dropped a message: %s" reason))))
    (`(too-big ,id ,estimate ,control)
     ;; Over `derl-max-message-memory': the module built nothing of
     ;; it.  CONTROL (nil when too big itself) names the addressee.
     (let* ((conn (gethash id derl--by-id))
            (op (and (vectorp control) (> (length control) 2)
                     (aref control 0)))
            (to (cond ((memql op (list derl--dop-reg-send
                                       derl--dop-reg-send-tt))
                       (and (> (length control) 3) (aref control 3)))
                      ((memql op (list derl--dop-send derl--dop-send-tt
                                       derl--dop-send-sender
                                       derl--dop-send-sender-tt
                                       derl--dop-alias-send
                                       derl--dop-alias-send-tt))
                       (aref control 2))))
            (what (format "a message of ~%d MB%s"
                          (round estimate (* 1024 1024))
                          (if to (concat " to " (derl-trace-pid to)) ""))))
       (message "derl: lost %s from %s: over `derl-max-message-memory' in \
Emacs" what (and conn (derl-connection-node conn)))
       (when conn
         (derl--trace conn 'input "** lost %s in Emacs (over \
`derl-max-message-memory'; see *erl-lost-msgs*)" what))
       (erl-lose-msg (vector 'too-big estimate)
                     (and (or (erl-pid-p to) (and to (symbolp to))) to))))
    (`(,(or 'epmd-port 'epmd-names) ,id . ,result)
     (let ((handler (gethash id derl--event-handlers)))
       (remhash id derl--event-handlers)
       (when handler
         (apply (car handler) result))))
    (`(epmd-error ,id ,kind ,reason)
     (let ((handler (gethash id derl--event-handlers)))
       (remhash id derl--event-handlers)
       (when handler
         (funcall (cdr handler) kind reason))))
    (`(,kind . ,_)
     ;; Emacs as a listening node, for one: derl-node.el.
     (let ((handler (alist-get kind derl--event-kind-handlers)))
       (when handler
         (funcall handler event))))))

(defvar derl--texts-depth 0
  "How many batches of traced frames are being handled, one inside another.")

(defun derl--texts-buffer (texts)
  "A buffer holding TEXTS, the trace texts of a batch of frames.
One buffer a depth of batches handled one inside another (a handler
may wait, and handle the next batch meanwhile)."
  (let ((buffer (get-buffer-create
                 (format " *derl-texts %d*" derl--texts-depth))))
    (with-current-buffer buffer
      (let ((inhibit-modification-hooks t))
        (erase-buffer)
        (insert texts)))
    buffer))

(defun derl--handle-frames (id traced items)
  "Dispatch, in order, the frames ITEMS that came over connection ID.
ITEMS holds CONTROL and MESSAGE (nil for none) of each frame; when
TRACED, after TEXTS, what the module printed of their trace lines,
and before each frame's CONTROL where its text ends in TEXTS (nil
when the module did not print it).  An error in one frame's handler
is reported, and the next frames are handled."
  (let ((conn (gethash id derl--by-id)))
    (when conn
      (if (not traced)
          (derl--dispatch-frames conn nil items)
        (let ((derl--texts-depth (1+ derl--texts-depth)))
          (derl--dispatch-frames conn (derl--texts-buffer (car items))
                                 (cdr items)))))))

(defun derl--dispatch-frames (conn texts items)
  "Dispatch the frames ITEMS of CONN, each with its trace text.
ITEMS are as for `derl--handle-frames'; TEXTS is the buffer of their
trace texts, or nil when untraced."
  (let ((start 1)
        (derl--frame-texts texts))
    (while items
      (let ((end (and texts (pop items)))
            (control (pop items))
            (message (pop items)))
        (condition-case-unless-debug err
            (if (or end derl--frame-text)
                ;; No text: not even that of a frame handled further
                ;; out.
                (let ((derl--frame-text (and end (1+ end)))
                      (derl--frame-text-start start))
                  (derl--dispatch conn control message))
              (derl--dispatch conn control message))
          (error (message "derl: error handling a message from %s: %s"
                          (derl-connection-node conn)
                          (error-message-string err))))
        (when end
          (setq start (1+ end)))))))

(defun derl--run-hook-quittably (hook &rest args)
  "Run HOOK with ARGS, letting \\[keyboard-quit] stop a runaway function.
Hooks run from the event filter too, where Emacs ignores quits: a
function that looped there would freeze Emacs.  A quit ends the
hook, says so, and the events are handled on."
  (condition-case nil
      (let ((inhibit-quit nil))
        (apply #'run-hook-with-args hook args))
    (quit (message "derl: quit stopped %s" hook))))

(defun derl--nodedown (conn kind reason)
  "CONN went down for REASON of KIND: tell everyone concerned."
  (let ((node (derl-connection-node conn))
        (was (derl-connection-state conn)))
    (setf (derl-connection-state conn) 'down
          (derl-connection-failure conn) (cons kind reason))
    (when (and (eq was 'connecting) (not (eq kind 'local)))
      (derl--note-failure conn))
    (remhash (derl-connection-id conn) derl--by-id)
    (when (eq (gethash node derl--connections) conn)
      (remhash node derl--connections))
    (derl--trace conn 'input "** nodedown: %s" reason)
    (cond ((not (eq was 'up))
           (unless (eq kind 'local)
             (message "derl: %s connection failed: %s" node reason)))
          (erl-report-nodes
           ;; Distel's words, with the reason.
           (message "nodedown: %s%s" node
                    (if (eq kind 'local) "" (format " (%s)" reason))))
          ((not (eq kind 'local))
           (message "derl: %s went down: %s" node reason)))
    (run-hook-with-args 'derl--connection-down-functions conn)
    (derl--run-hook-quittably 'erl-nodedown-hook node)))

(provide 'derl-events)

;;; derl-events.el ends here

;;; erl.el --- Erlang-style processes in Emacs Lisp  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;; Keywords: erlang, languages, processes

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

;; An Erlang-like process runtime, with the API and semantics of
;; Distel's erl.el, so that code written for Distel runs unchanged.
;;
;; A process is a buffer.  Its state lives in permanent buffer-local
;; variables: `erl-self' (its pid), `erl-mailbox', `erl-links',
;; `erl-trap-exit', `erl-group-leader', `erl-exit-reason',
;; `erl-process-name'.  Its code runs with that buffer current.
;;
;;   (erl-spawn BODY...)      start a process running BODY now
;;   (erl-send PID MESSAGE)   send to a pid, a registered name, or
;;                            [NAME NODE] for a name on another node
;;   (erl-receive (VARS...)   wait for a message matching one of the
;;       ((PATTERN BODY...)   patterns (the syntax of `mcase-let'),
;;        ...)                then run its BODY, then AFTER
;;     AFTER...)
;;
;; `erl-receive' never returns to its caller: it hands control back to
;; the scheduler, which runs the matching clause when a message
;; arrives.  A loop is written as a function whose receive clauses
;; call it again; each turn starts afresh from the scheduler, so the
;; Lisp stack does not grow.  When a process's code returns without
;; arranging to continue (with `erl-receive' or `erl-continue'), the
;; process exits with reason `normal'; a Lisp error exits it with the
;; reason [emacs-error "description"], and `erl-exit' with any reason.
;;
;; Exits travel over links as in Erlang: a linked process that does
;; not trap exits dies with the same reason (except `normal'); one that
;; traps them gets the message [EXIT PID REASON] instead.
;;
;; Scheduling is cooperative and never re-entrant.  Code outside any
;; process that sends a message or spawns a process runs the scheduler
;; until no process is runnable before it returns; code inside a
;; process only queues the work, which runs when the process yields.
;; Each delivered message costs O(1): mailboxes are queues, and a
;; waiting `erl-receive' tests each new message once.
;;
;; Pids of other nodes are handed to the distribution layer, derl.el,
;; which must define (the sender being `erl-self' at the call):
;;
;;   (erl-dist-send PID MSG)             send to a remote pid
;;   (erl-dist-reg-send NODE NAME MSG)   send to a name on NODE
;;   (erl-dist-link PID)                 `erl-self' links with PID
;;   (erl-dist-unlink PID)               `erl-self' unlinks from PID
;;   (erl-dist-exit FROM TO REASON)      local FROM, linked with the
;;                                       remote TO, exited
;;   (erl-dist-exit2 FROM TO REASON)     `erl-exit' on the remote TO
;;
;; and calls, for what arrives from other nodes:
;;
;;   (erl-send TO MSG)                   SEND, REG_SEND (TO a pid or name)
;;   (erl-add-link LOCAL REMOTE)         LINK
;;   (erl-remove-link LOCAL REMOTE)      UNLINK
;;   (erl-send-exit REMOTE LOCAL REASON 'link)   EXIT
;;   (erl-send-exit REMOTE LOCAL REASON 'exit2)  EXIT2
;;
;; It runs `erl-nodeup-hook' (NODE ...) and `erl-nodedown-hook' (NODE)
;; as Distel's derl.el did; erl.el keeps `erl-nodes' from them, and on
;; nodedown sends the exit signal `noconnection' to every local
;; process linked with a process of that node (so derl.el need not
;; keep links of its own).  It learns of every local exit from the
;; hook `erl-process-exit-functions' (for monitors), and should wrap the
;; handling of a burst of incoming messages in
;; `erl-with-deferred-scheduling', so that the receivers run once,
;; after the whole burst.

;;; Code:

(require 'cl-lib)
(require 'subr-x)
(require 'erlext)
(require 'mcase)
(require 'derl-trace)

(define-error 'derl-argument-error "Bad argument" 'derl-error)

(declare-function erl-dist-send "derl-send" (pid msg))
(declare-function erl-dist-reg-send "derl-send" (node name msg))
(declare-function erl-dist-link "derl-links" (pid))
(declare-function erl-dist-unlink "derl-links" (pid))
(declare-function erl-dist-exit "derl-links" (from to reason))
(declare-function erl-dist-exit2 "derl-links" (from to reason))

;;;; Node identity

(defun erl-determine-hostname ()
  "Return the short host name: function `system-name' up to its first dot."
  (let ((name (system-name)))
    (if (string-match "\\`[^.]+" name)
        (match-string 0 name)
      "localhost")))

(defvar erl-null-pid)

(defun erl--set-node-name (symbol value)
  "Set SYMBOL, `erl-node-name', to VALUE, renaming the live local pids.
VALUE is a symbol or string NAME@HOST; a NAME alone gets the short
host name.  The pids of running processes and `erl-null-pid' are
changed in place, so that every reference to them sees the new
node name."
  (let ((name (if (symbolp value) (symbol-name value) value)))
    (unless (and (stringp name)
                 (string-match-p "\\`[^@]+\\(@[^@]+\\)?\\'" name))
      (error "A node name is NAME@HOST, not %S" value))
    (unless (string-match-p "@" name)
      (setq name (concat name "@" (erl-determine-hostname))))
    (setq value (intern name)))
  ;; `erl--node-name-changed' renames the pids.
  (set-default symbol value))

(defun erl--node-name-changed (symbol newval operation where)
  "Rename the local pids when SYMBOL, `erl-node-name', becomes NEWVAL.
OPERATION and WHERE are as for `add-variable-watcher'.  The pids of
running processes and `erl-null-pid' are changed in place, so that
every reference to them sees the new name, however the variable is
set: `setq' and `let' included."
  (when (and (memq operation '(set let unlet))
             (null where)
             newval (symbolp newval)
             (boundp symbol) (boundp 'erl-null-pid))
    (let ((old (symbol-value symbol)))
      (unless (eq old newval)
        (dolist (pid (cons erl-null-pid (erl--live-pids)))
          (when (eq (aref pid 2) old)
            (aset pid 2 newval)))))))

(defcustom erl-node-name
  (intern (format "distel_%d@%s" (emacs-pid) (erl-determine-hostname)))
  "The Erlang node name of this Emacs, a symbol NAME@HOST.
The default, distel_PID@SHORTHOST, is unique per Emacs.  A long
name such as foo@host.example.com is fine too.  Set it before
Emacs connects to any node.  However it is changed, the pids of
running processes and `erl-null-pid' follow the new name; a plain
`setq' must give a full NAME@HOST symbol."
  :type 'symbol
  :set #'erl--set-node-name
  :group 'derl)

(defvar erl-node-creation (1+ (random #xfffffffe))
  "The creation of this Emacs node, a random non-zero 32-bit integer.
It is chosen once per Emacs session; every local pid and reference
carries it, so that pids of an earlier Emacs with the same node
name are told apart.")

(defun erl--set-node-creation (creation)
  "Make CREATION this node's creation, as EPMD gave it to a listening node.
The pids of running processes and `erl-null-pid' are changed in
place, as `erl--set-node-name' does for names, so that they stay
local."
  (let ((old erl-node-creation))
    (setq erl-node-creation creation)
    (dolist (pid (cons erl-null-pid (erl--live-pids)))
      (when (eql (aref pid 5) old)
        (aset pid 5 creation)))))

;;;; Options

(defcustom erl-stop-on-error nil
  "When non-nil, Lisp errors in processes are not caught.
They reach the debugger (with `debug-on-error') instead of ending
the process.  This interrupts scheduling: use the command
`erl-schedule' to resume it."
  :type 'boolean
  :group 'derl)

(defcustom erl-report-exits t
  "When non-nil, log abnormal process exits in the *Messages* buffer.
Exits with the reasons `normal' and `shutdown', or [shutdown ANY],
are never logged."
  :type 'boolean
  :group 'derl)

(defcustom erl-popup-on-output t
  "When non-nil, show *erl-output* when the group leader writes to it."
  :type 'boolean
  :group 'derl)

(defvar erl-process-exit-functions nil
  "Functions called with (PID REASON) whenever a local process exits.
They run with the exiting process's buffer current, after its
registered name is freed and exit signals are sent to its links,
just before the buffer is killed.  An error in one of them is
logged and does not stop the others.")

(defvar erl-nodes nil
  "The nodes this Emacs is connected to, as symbols.")

;;;; Pids

(defsubst erl-pid-p (x)
  "Return non-nil if X is a pid, [erl-tag erl-pid NODE ID SERIAL CREATION]."
  (and (vectorp x) (eq (length x) 6)
       (eq (aref x 0) erl-tag) (eq (aref x 1) 'erl-pid)))

(defsubst erl-pid-node (pid)
  "Return the node of PID, a symbol."
  (aref pid 2))

(defsubst erl-pid-id (pid)
  "Return the id number of PID."
  (aref pid 3))

(defsubst erl-pid-serial (pid)
  "Return the serial number of PID."
  (aref pid 4))

(defsubst erl-pid-creation (pid)
  "Return the creation of PID's node."
  (aref pid 5))

(defun erl--make-local-pid (id)
  "Return the local pid with number ID."
  (vector erl-tag 'erl-pid erl-node-name id 0 erl-node-creation))

(defvar erl-null-pid (erl--make-local-pid 0)
  "The null process, the /dev/null of processes.
Code that runs outside any process runs as the null process;
messages sent to it are logged in *erl-lost-msgs* and dropped.")

(add-variable-watcher 'erl-node-name #'erl--node-name-changed)

(defun erl-null-pid-p (pid)
  "Return non-nil if PID is the null process."
  (equal pid erl-null-pid))

(defun erl-local-pid-p (x)
  "Return non-nil if X is the pid of a process of this node."
  (and (erl-pid-p x) (eq (aref x 2) erl-node-name)))

(defun erl-remote-pid-p (x)
  "Return non-nil if X is the pid of a process of another node."
  (and (erl-pid-p x) (not (eq (aref x 2) erl-node-name))))

(defun erl-pid-to-string (pid)
  "Return PID printed as Erlang does: <0.ID.SERIAL>.
The node number is 0 for local pids and ? for others."
  (format "<%s.%S.%S>" (if (eq (erl-pid-node pid) erl-node-name) "0" "?")
          (erl-pid-id pid) (erl-pid-serial pid)))

;;;; References

(defvar erl--ref-counter 0
  "Number of references made so far.")

(defun erl--put-word (string at n)
  "Write the 32-bit integer N into the unibyte STRING at AT, big-endian."
  (aset string at (logand (ash n -24) 255))
  (aset string (+ at 1) (logand (ash n -16) 255))
  (aset string (+ at 2) (logand (ash n -8) 255))
  (aset string (+ at 3) (logand n 255)))

(defun erl-make-ref ()
  "Return a new reference, unique among this Emacs's references.
It is [erl-tag erl-new-ref NODE CREATION ID-BYTES], ID-BYTES being
a 12-byte unibyte string: a counter in the first two 32-bit words
\(the first below 2^18, as Erlang's own references), and a random
third word, so that no reference can be told from an earlier one."
  (setq erl--ref-counter (1+ erl--ref-counter))
  (let ((n erl--ref-counter)
        (bytes (make-string 12 0)))
    (erl--put-word bytes 0 (logand n #x3ffff))
    (erl--put-word bytes 4 (logand (ash n -18) #xffffffff))
    (erl--put-word bytes 8 (random #x100000000))
    (vector erl-tag 'erl-new-ref erl-node-name erl-node-creation bytes)))

;;;; Process state

(defmacro erl--defprocvar (symbol value docstring)
  "Define SYMBOL as a permanent buffer-local process variable.
VALUE is its default value and DOCSTRING its documentation.
Permanent, so that a major mode started in a process buffer keeps
the process alive."
  (declare (indent 2) (doc-string 3))
  `(progn (defvar-local ,symbol ,value ,docstring)
          (put ',symbol 'permanent-local t)))

(erl--defprocvar erl-self erl-null-pid
  "The pid of the current process.
In buffers that are not processes it is `erl-null-pid'.")

(erl--defprocvar erl-mailbox nil
  "The messages waiting for the current process, oldest first.
Read it freely.  Lisp code of the process may also set it (to nil,
say, to drop every waiting message); the runtime adopts the new
list when the process next receives or yields.")

(erl--defprocvar erl-group-leader nil
  "The group leader of processes spawned from this buffer, or nil.
A process inherits the value of the buffer that spawned it; nil
stands for the default group leader.  See the function
`erl-group-leader'.")

(erl--defprocvar erl-continuation nil
  "The function the scheduler calls the next time the process runs.")

(erl--defprocvar erl-continuation-args nil
  "The arguments for `erl-continuation'.")

(erl--defprocvar erl-links nil
  "The pids the current process is linked with: a hash table, or nil.
The pids are its keys; nil until the process links.  A table, so that
a process with many links links and unlinks at the same cost as one
with few.  See `erl-linked-p' and `erl-link-list'.")

(defun erl-linked-p (pid)
  "Return non-nil if the current process is linked with PID."
  (and erl-links (gethash pid erl-links)))

(defun erl-link-list ()
  "Return the pids the current process is linked with, as a list."
  (and erl-links (hash-table-keys erl-links)))

(erl--defprocvar erl-trap-exit nil
  "Non-nil when the current process traps exits.
Exit signals then arrive as messages [EXIT PID REASON] instead of
ending the process; only the reason `kill' sent with `erl-exit'
still kills it.")

(erl--defprocvar erl-exit-reason nil
  "The reason the process exited with, or nil while it is alive.")

(erl--defprocvar erl-reductions 0
  "How many times the scheduler has run the current process.")

(erl--defprocvar erl-process-name nil
  "A name for the process, a string, to help debugging.
See `erl-set-name'.")

(erl--defprocvar erl--proc nil
  "The runtime's record of the process of this buffer, or nil.")

;; The runtime's own record of a process, reached from the pid through
;; `erl--processes' without switching buffers, so that delivering a
;; message costs no buffer switch.  The mailbox is the list HEAD, with
;; TAIL its last cons; `erl-mailbox' is kept `eq' to HEAD whenever the
;; process's code can see it, and VIEW remembers the last value given
;; to `erl-mailbox', to notice Lisp code setting it.

(cl-defstruct (erl--proc (:constructor erl--make-proc (buffer pid))
                         (:copier nil)
                         (:predicate nil))
  "The runtime's record of a local process."
  (buffer nil :documentation "The process's buffer.")
  (pid nil :documentation "The process's pid.")
  (head nil :documentation "The mailbox, a list of messages, oldest first.")
  (tail nil :documentation "The last cons of the mailbox, or nil.")
  (scan nil :documentation "The last mailbox cons the waiting receive
tested, or nil.")
  (queued nil :documentation "Non-nil while in the run queue.")
  (next nil :documentation "The process after this one in the run queue.")
  (running nil :documentation "Non-nil while its code is on the Lisp stack.")
  (matcher nil :documentation "The function testing messages for the
waiting receive.")
  (margs nil :documentation "The extra arguments of the matcher, the
receive's VARS.")
  (view nil :documentation "The value last given to `erl-mailbox'.")
  (name nil :documentation "The name it is registered under, or nil.")
  (dead nil :documentation "Non-nil once it has exited.")
  (pending nil :documentation "Non-nil if it was due to run while it was
running already."))

(defvar erl--processes (make-hash-table :test 'eql)
  "Live local processes: pid id -> process record.")

(defvar erl--names (make-hash-table :test 'eq)
  "Registered names: symbol -> pid.")

(defun erl--live-pids ()
  "Return the pids of all live local processes."
  (let (pids)
    (maphash (lambda (_id proc) (push (erl--proc-pid proc) pids))
             erl--processes)
    pids))

(defsubst erl--pid-proc (pid)
  "Return the record of the live process PID, a pid of this node, or nil."
  (and (eql (aref pid 5) erl-node-creation)
       (eql (aref pid 4) 0)
       (gethash (aref pid 3) erl--processes)))

(defun erl--local-proc (pid)
  "Return the record of PID if it is a live local process, else nil."
  (and (erl-local-pid-p pid)
       (let ((proc (erl--pid-proc pid)))
         (and proc (buffer-live-p (erl--proc-buffer proc)) proc))))

(defun erl-local-pid-alive-p (pid)
  "Return non-nil if PID is a live process of this node."
  (and (erl--local-proc pid) t))

(defun erl-pid->buffer (pid)
  "Return the buffer of the live local process PID.
Signal an error if there is none."
  (let ((proc (erl--local-proc pid)))
    (if proc
        (erl--proc-buffer proc)
      (error "No buffer for pid %S" pid))))

(defun erl--sync (proc)
  "Bring `erl-mailbox' and PROC's mailbox together; PROC's buffer is current.
If Lisp code has set `erl-mailbox', its list becomes the mailbox;
otherwise `erl-mailbox' gets the mailbox's current list."
  (let ((mine erl-mailbox))
    (if (eq mine (erl--proc-view proc))
        (setq erl-mailbox (erl--proc-head proc))
      (setf (erl--proc-head proc) mine)
      (setf (erl--proc-tail proc) (last mine))
      (setf (erl--proc-scan proc) nil))
    (setf (erl--proc-view proc) erl-mailbox)))

(defmacro with-erl-process (pid &rest body)
  "Run BODY in the buffer of the local process PID.
Its process variables (`erl-self', `erl-mailbox'...) are then the
process's own."
  (declare (indent 1) (debug (form body)))
  `(with-current-buffer (erl-pid->buffer ,pid)
     (when erl--proc (erl--sync erl--proc))
     (prog1 (progn ,@body)
       (when erl--proc (erl--sync erl--proc)))))

(defun erl-set-name (fmt &rest args)
  "Set `erl-process-name' to (format FMT ARGS...)."
  (setq erl-process-name (apply #'format fmt args)))

;;;; The run queue and the scheduler

(defvar erl-in-scheduler-loop nil
  "Non-nil while the scheduler is on the Lisp stack.
Processes made runnable then wait for it instead of running a
scheduler of their own.")

(defvar erl--queue-head nil
  "The first process record in the run queue, or nil.")

(defvar erl--queue-tail nil
  "The last process record in the run queue, or nil.")

(defvar erl--current nil
  "The record of the process whose code is running, or nil.
Bound only inside the scheduler's catch for that process.")

(defvar erl--run-proc nil
  "The record of the process being run, for cleaning up after it.")

(defun erl--enqueue (proc)
  "Add the process record PROC to the end of the run queue."
  (setf (erl--proc-queued proc) t)
  (setf (erl--proc-next proc) nil)
  (if erl--queue-tail
      (setf (erl--proc-next erl--queue-tail) proc)
    (setq erl--queue-head proc))
  (setq erl--queue-tail proc))

(defun erl-maybe-schedule ()
  "Run the scheduler, unless it is running already."
  (unless erl-in-scheduler-loop
    (erl-schedule)))

(defun erl-schedule ()
  "Run processes until none is runnable."
  (interactive)
  (let ((erl-in-scheduler-loop t))
    (while erl--queue-head
      (let ((proc erl--queue-head))
        (setq erl--queue-head (erl--proc-next proc))
        (unless erl--queue-head
          (setq erl--queue-tail nil))
        (setf (erl--proc-next proc) nil)
        (erl--run-process proc)))))

(defmacro erl-with-deferred-scheduling (&rest body)
  "Run BODY, then run the processes it made runnable, and return BODY's value.
Messages sent by BODY from outside any process are delivered at
once, but their receivers run only after BODY, all in one pass of
the scheduler.  Handing over a burst of messages this way is much
faster than sending them one by one."
  (declare (indent 0) (debug (body)))
  `(prog1 (let ((erl-in-scheduler-loop t))
            ,@body)
     (erl-maybe-schedule)))

(defun erl--run-process (proc)
  "Run the process record PROC until it waits or exits."
  (setf (erl--proc-queued proc) nil)
  (let ((buffer (erl--proc-buffer proc)))
    (cond
     ((or (erl--proc-dead proc) (not (buffer-live-p buffer))))
     ((erl--proc-running proc)
      ;; Run from inside its own code (say, `erl-schedule' from the
      ;; debugger): run it again once that code is done.
      (setf (erl--proc-pending proc) t))
     (t
      (let ((erl--run-proc proc))
        (setf (erl--proc-running proc) t)
        (unwind-protect
            (with-current-buffer buffer
              (erl--sync proc)
              (if erl-continuation
                  (if erl-stop-on-error
                      (erl--run-loop proc buffer)
                    (condition-case err
                        (erl--run-loop proc buffer)
                      (error
                       (erl--terminate
                        proc (vector 'emacs-error (format "%S" err))))))
                (message "erl: %s has nothing to run; killing it"
                         (erl-pid-to-string erl-self))
                (erl--terminate proc 'zombie))
              (unless (erl--proc-dead proc)
                (set-buffer buffer)
                (erl--sync proc)))
          (erl--run-done)))))))

(defun erl--run-done ()
  "Clean up after running the process `erl--run-proc'."
  (let ((proc erl--run-proc))
    (setf (erl--proc-running proc) nil)
    (cond ((erl--proc-dead proc)
           (erl--kill-buffer (erl--proc-buffer proc)))
          ((erl--proc-pending proc)
           (setf (erl--proc-pending proc) nil)
           (unless (erl--proc-queued proc)
             (erl--enqueue proc))))))

(defun erl--run-loop (proc buffer)
  "Call the continuations of PROC, whose buffer BUFFER is current.
Go on while the process asks to run again at once; end it when
its code returns without a continuation, or exits.

The process's code may be quit: also when it runs from a process
filter, where Emacs inhibits quitting, \\[keyboard-quit] stops a
runaway process, which exits with the reason `quit'."
  (condition-case err
      (while (let ((k erl-continuation)
                   (result nil))
               (setq erl-continuation nil)
               (setq erl-reductions (1+ erl-reductions))
               (setq result (catch 'erl--schedule-out
                              (let ((erl--current proc)
                                    (inhibit-quit nil))
                                (apply k erl-continuation-args))
                              nil))
               (cond ((erl--proc-dead proc) nil)
                     (t (set-buffer buffer)
                        (cond (erl-continuation (eq result 'reschedule))
                              (t (erl--terminate proc 'normal) nil))))))
    (erl-exit-signal
     (erl--terminate proc (car (cdr err))))
    (quit
     (message "erl: quit stopped %s%s" (erl-pid-to-string (erl--proc-pid proc))
              (if (buffer-live-p buffer)
                  (let ((name (buffer-local-value 'erl-process-name buffer)))
                    (if name (format " (%s)" name) ""))
                ""))
     (erl--terminate proc 'quit))))

(defun erl--check-self ()
  "Leave the running process's code if that process has exited."
  (when (and erl--current (erl--proc-dead erl--current))
    (throw 'erl--schedule-out 'dead)))

;;;; Spawning

(defvar erl--pid-counter 0
  "The id of the last local pid made.")

(defun erl-spawn-fun (function &optional run-now link)
  "Start a process to call FUNCTION, and return its pid.
With RUN-NOW non-nil, FUNCTION runs at once, in the current dynamic
environment; otherwise the process is queued to run.  With LINK
non-nil, the new process is linked with the current one first."
  (let* ((id (setq erl--pid-counter (1+ erl--pid-counter)))
         (pid (erl--make-local-pid id))
         (group-leader erl-group-leader)
         (buffer (generate-new-buffer (format "*pid <0.%d.0>*" id)))
         (proc (erl--make-proc buffer pid)))
    (with-current-buffer buffer
      (setq erl-self pid)
      (setq erl--proc proc)
      (setq erl-group-leader group-leader)
      (setq erl-continuation function)
      (setq erl-continuation-args nil))
    (puthash id proc erl--processes)
    (when link
      (erl-link pid))
    (if run-now
        (let ((erl-in-scheduler-loop t))
          (erl--run-process proc))
      (erl--enqueue proc))
    (erl-maybe-schedule)
    (erl--check-self)
    pid))

(defmacro erl-spawn (&rest body)
  "Start a process running BODY at once; return its pid.
BODY runs in the new process's buffer, in the current dynamic
environment, before `erl-spawn' returns (until its first
`erl-receive')."
  (declare (indent 0) (debug (body)))
  `(erl-spawn-fun (lambda () ,@body) t))

(defmacro erl-spawn-async (&rest body)
  "Start a process running BODY; return its pid.
The process is queued, so BODY may run later, outside the current
dynamic environment; see `erl-spawn' for the alternative."
  (declare (indent 0) (debug (body)))
  `(erl-spawn-fun (lambda () ,@body)))

(defmacro erl-spawn-link (&rest body)
  "Like `erl-spawn' with BODY, but link the new process with this one."
  (declare (indent 0) (debug (body)))
  `(erl-spawn-fun (lambda () ,@body) t t))

(defmacro erl-spawn-link-async (&rest body)
  "Like `erl-spawn-async' with BODY, but link the new process with this one."
  (declare (indent 0) (debug (body)))
  `(erl-spawn-fun (lambda () ,@body) nil t))

;;;; Continuations

(defun erl-continue (k &rest args)
  "Make the current process call K with ARGS when it is next run.
The caller should then return; the process waits until a message
arrives, or `erl-reschedule' makes it run again at once."
  (setq erl-continuation k)
  (setq erl-continuation-args args))

(defun erl-reschedule ()
  "Return to the scheduler at once, and have it run this process again.
The process continues with the function given to `erl-continue'."
  (throw 'erl--schedule-out 'reschedule))

;;;; Sending

(defmacro erl--distribute (function &rest args)
  "Call the distribution layer's FUNCTION with ARGS.
Load derl.el first if it is not loaded yet.  A macro, so that a
message sent makes no list of arguments."
  (let ((f (make-symbol "function")))
    `(let ((,f ,function))
       (unless (fboundp ,f)
         (require 'derl))
       (funcall ,f ,@args))))

(defun erl--deliver (proc message)
  "Put MESSAGE in the mailbox of the live process record PROC.
Queue PROC to run, unless it is queued already."
  (let ((cell (list message)))
    (if (erl--proc-head proc)
        (setcdr (erl--proc-tail proc) cell)
      (setf (erl--proc-head proc) cell)
      (setf (erl--proc-scan proc) nil)
      (when (and (eq (current-buffer) (erl--proc-buffer proc))
                 (eq erl-mailbox (erl--proc-view proc)))
        (setq erl-mailbox cell)
        (setf (erl--proc-view proc) cell)))
    (setf (erl--proc-tail proc) cell))
  (unless (erl--proc-queued proc)
    (erl--enqueue proc)))

(defun erl-lose-msg (message &optional pid)
  "Log MESSAGE, sent to PID that nobody can take, in *erl-lost-msgs*.
PID defaults to the null process, and is left out of the log line
then, as Distel did; a local pid is written in full, creation
included.  The message prints as the trace buffers print terms,
and the buffer is trimmed as they are."
  (with-current-buffer (derl-trace-buffer "*erl-lost-msgs*")
    (save-excursion
      (goto-char (point-max))
      (insert (if (and pid (not (erl-null-pid-p pid)))
                  (concat "to " (derl-trace-pid pid) ": ")
                "")
              (derl-trace-term message) "\n"))
    (derl-trace-trim derl-trace-max-size)))

(defun erl--send-local (pid message)
  "Deliver MESSAGE to PID, a pid of this node; nil if it is not alive.
For the distribution layer, which has checked the node already."
  (let ((proc (erl--pid-proc pid)))
    (when proc
      (erl--deliver proc message)
      (unless erl-in-scheduler-loop
        (erl-schedule))
      t)))

(defun erl-send (who message)
  "Send the term MESSAGE to the process WHO.
WHO is a pid, a registered name (a symbol), or a tuple [NAME NODE]
naming a process registered on NODE.  Messages to the null process
and to local processes that are not alive (of an earlier Emacs
with this node name, too) are logged in *erl-lost-msgs*.  Sending
to a name nobody registered signals `erl-exit-signal' with the
reason [badarg [not-registered NAME]]."
  (cond
   ((erl-pid-p who)
    (if (eq (aref who 2) erl-node-name)
        (let ((proc (erl--pid-proc who)))
          (if proc
              (progn (erl--deliver proc message)
                     (unless erl-in-scheduler-loop
                       (erl-schedule)))
            (erl-lose-msg message who)))
      (erl--distribute #'erl-dist-send who message)))
   ((and who (symbolp who))
    (let ((pid (gethash who erl--names)))
      (if pid
          (erl-send pid message)
        (signal 'erl-exit-signal
                (list (vector 'badarg (vector 'not-registered who)))))))
   ((and (vectorp who) (eq (length who) 2) (symbolp (aref who 0)))
    (if (eq (aref who 1) erl-node-name)
        (erl-send (aref who 0) message)
      (erl--distribute #'erl-dist-reg-send (aref who 1) (aref who 0)
                       message)))
   (t (signal 'derl-argument-error
              (list (format "Cannot send to %S: not a pid, a registered \
name or [NAME NODE]" who))))))

;;;; Receiving

(defvar erl--scan-proc nil
  "The process record whose message is being matched.")

(defvar erl--scan-prev nil
  "The mailbox cons before the message being matched, or nil.")

(defvar erl--scan-cell nil
  "The mailbox cons of the message being matched.")

(defmacro erl-receive (vars clauses &rest after)
  "Receive a message matching one of CLAUSES, then run AFTER, with VARS.

  (erl-receive (VAR...)
      ((PATTERN BODY...)
       ...)
    AFTER...)

The oldest message in the mailbox that matches a PATTERN (the
syntax of `mcase-let') is taken out of the mailbox, and the BODY
of the first clause it matches runs with the pattern's variables
bound, followed by the AFTER forms.  Messages that match no
pattern stay in the mailbox, in order, for later receives.

`erl-receive' does not return: it goes back to the scheduler,
which runs the clause when a matching message is there, possibly
much later.  So it must be the last thing the process does, and a
BODY that calls `erl-receive' again (directly or through a
function) loops without growing the stack.  The clause runs with
the VARs bound to the values they have now; that is needed when
the calling code uses dynamic binding, and harmless with lexical
binding, where closures keep their variables anyway: so VARS may
be left empty in lexically scoped code."
  (declare (indent 2) (debug (sexp (&rest (sexp body)) body)))
  (unless (and (listp vars) (not (memq nil (mapcar #'symbolp vars))))
    (error "erl-receive: VARS must be a list of variables, not %S" vars))
  (let* ((msg (make-symbol "msg"))
         (dispatch (mcase-compile-clauses
                    msg
                    (mapcar (lambda (clause)
                              `(,(car clause) (erl--accept) ,@(cdr clause) t))
                            clauses)
                    nil)))
    `(erl--receive
      (lambda (,msg ,@vars)
        ,(if after `(when ,dispatch ,@after t) dispatch))
      ,(and vars `(list ,@vars)))))

(defun erl--receive (matcher args)
  "Wait for a message accepted by MATCHER, called with it and ARGS.
MATCHER returns non-nil when it took the message and ran its
clause.  This is `erl-receive' at run time: it never returns."
  (let ((proc erl--proc))
    (unless (and proc (eq proc erl--current))
      (error "No process context for erl-receive"))
    (unless (eq erl-mailbox (erl--proc-view proc))
      (erl--sync proc))
    (setf (erl--proc-matcher proc) matcher)
    (setf (erl--proc-margs proc) args)
    (setf (erl--proc-scan proc) nil)
    (setq erl-continuation #'erl--receive-resume)
    (setq erl-continuation-args nil)
    (throw 'erl--schedule-out (if (erl--proc-head proc) 'reschedule 'wait))))

(defun erl--receive-resume ()
  "Test the current process's untested messages until one matches.
When none does, keep waiting."
  (let* ((proc erl--proc)
         (matcher (erl--proc-matcher proc))
         (args (erl--proc-margs proc))
         (prev (erl--proc-scan proc))
         (cell (if prev (cdr prev) (erl--proc-head proc))))
    (setq erl--scan-proc proc)
    (while cell
      (setq erl--scan-prev prev)
      (setq erl--scan-cell cell)
      (if (if args
              (apply matcher (car cell) args)
            (funcall matcher (car cell)))
          (setq cell nil prev t)
        (setq prev cell)
        (setq cell (cdr cell))))
    (unless (eq prev t)
      (setf (erl--proc-scan proc) prev)
      (setq erl-continuation #'erl--receive-resume))))

(defun erl--accept ()
  "Take the message being matched out of the mailbox."
  (let ((proc erl--scan-proc)
        (prev erl--scan-prev)
        (cell erl--scan-cell))
    (if prev
        (setcdr prev (cdr cell))
      (let ((head (cdr cell)))
        (setf (erl--proc-head proc) head)
        (setq erl-mailbox head)
        (setf (erl--proc-view proc) head)))
    (when (eq cell (erl--proc-tail proc))
      (setf (erl--proc-tail proc) prev))
    (setf (erl--proc-scan proc) nil)))

(defun erl-idle ()
  "Wait forever, leaving every message in the mailbox."
  (erl-receive () ()))

;;;; Registered names

(defun erl-register (name &optional process)
  "Register PROCESS (by default the current one) under NAME, a symbol.
Signal `erl-exit-signal' with [badarg [already-registered NAME]] if
the name is taken or the process already has a name, and with
[badarg [not-alive PID]] if the process is not alive."
  (let* ((pid (or process erl-self))
         (proc (erl--local-proc pid)))
    (unless (and name (symbolp name))
      (error "Bad registered name: %S" name))
    (cond ((gethash name erl--names)
           (signal 'erl-exit-signal
                   (list (vector 'badarg (vector 'already-registered name)))))
          ((null proc)
           (signal 'erl-exit-signal
                   (list (vector 'badarg (vector 'not-alive pid)))))
          ((erl--proc-name proc)
           (signal 'erl-exit-signal
                   (list (vector 'badarg (vector 'already-registered
                                                 pid))))))
    (puthash name pid erl--names)
    (setf (erl--proc-name proc) name)
    (with-current-buffer (erl--proc-buffer proc)
      (rename-buffer (format "*reg %s*" name) t))
    t))

(defun erl-unregister (name)
  "Remove the registered name NAME; return non-nil if it was registered."
  (let ((pid (gethash name erl--names)))
    (when pid
      (remhash name erl--names)
      (let ((proc (erl--local-proc pid)))
        (when proc
          (setf (erl--proc-name proc) nil)))
      t)))

(defun erl-whereis (name)
  "Return the pid of the process registered as NAME, or nil."
  (gethash name erl--names))

;;;; Links and exits

(defun erl--exit-message-p (reason)
  "Return non-nil if an exit with REASON is worth logging."
  (not (or (memq reason '(normal shutdown))
           (and (vectorp reason) (eq (length reason) 2)
                (eq (aref reason 0) 'shutdown)))))

(defun erl--kill-buffer (buffer)
  "Kill the buffer of the dead process BUFFER."
  (when (buffer-live-p buffer)
    (let ((kill-buffer-query-functions nil))
      (kill-buffer buffer))))

(defvar erl--signals nil
  "Exit signals waiting to be handled: (FROM TO REASON KIND) lists.")

(defvar erl--signals-tail nil
  "The last cons of `erl--signals'.")

(defvar erl--handling-signals nil
  "Non-nil while exit signals are being handled.")

(defun erl--terminate (proc reason &optional keep-buffer)
  "End the process of the record PROC with REASON.
Free its name, signal its links, run `erl-process-exit-functions',
and kill its buffer unless its code is still running or
KEEP-BUFFER is non-nil."
  (unless (erl--proc-dead proc)
    (setf (erl--proc-dead proc) t)
    (let ((buffer (erl--proc-buffer proc))
          (pid (erl--proc-pid proc))
          (name (erl--proc-name proc)))
      (remhash (aref pid 3) erl--processes)
      (when (and name (eq (gethash name erl--names) pid))
        (remhash name erl--names))
      (when (buffer-live-p buffer)
        (save-current-buffer
          (set-buffer buffer)
          (setq erl-exit-reason reason)
          (setq erl-continuation nil)
          (when (and erl-report-exits (erl--exit-message-p reason))
            (message "EXIT: %s %s%s" (erl-pid-to-string pid)
                     (derl-term-to-string reason)
                     (if erl-process-name
                         (concat "\n  Process name: " erl-process-name)
                       "")))
          (dolist (link (erl-link-list))
            (if (erl-local-pid-p link)
                (erl--queue-signal pid link reason 'link)
              (condition-case err
                  (erl--distribute #'erl-dist-exit pid link reason)
                (error (message "erl: exit signal to %s failed: %s"
                                (derl-term-to-string link)
                                (error-message-string err))))))
          (run-hook-wrapped
           'erl-process-exit-functions
           (lambda (function)
             (condition-case err
                 (funcall function pid reason)
               (error (message "erl-process-exit-functions: %s failed: %S"
                               (if (symbolp function) function
                                 "a function")
                               err)))
             nil))
          (unless (or keep-buffer (erl--proc-running proc))
            (erl--kill-buffer buffer))))
      (erl--handle-signals))))

(defun erl--queue-signal (from to reason kind)
  "Queue an exit signal from FROM to the local pid TO with REASON.
KIND is `link' for a linked process's exit, `exit2' for `erl-exit'
on another process, or nil to choose by whether they are linked."
  (let ((cell (list (list from to reason kind))))
    (if erl--signals
        (setcdr erl--signals-tail cell)
      (setq erl--signals cell))
    (setq erl--signals-tail cell)))

(defun erl--handle-signals ()
  "Handle the queued exit signals, unless that is being done already.
Exits they cause queue more signals; all are handled in a loop,
so long chains of links don't grow the stack."
  (unless erl--handling-signals
    (let ((erl--handling-signals t))
      (while erl--signals
        (let ((signal (car erl--signals)))
          (setq erl--signals (cdr erl--signals))
          (unless erl--signals
            (setq erl--signals-tail nil))
          (apply #'erl--deliver-exit signal))))))

(defun erl--deliver-exit (from to reason kind)
  "Deliver an exit signal from FROM with REASON to the local pid TO.
KIND is `link', `exit2' or nil, as for `erl--queue-signal'."
  (let ((proc (erl--local-proc to)))
    (when (and proc (not (erl--proc-dead proc)))
      (with-current-buffer (erl--proc-buffer proc)
        (let ((linked (erl-linked-p from)))
          (unless kind
            (setq kind (if linked 'link 'exit2)))
          (if (eq kind 'link)
              (when linked
                (remhash from erl-links)
                (cond (erl-trap-exit
                       (erl--deliver proc (vector 'EXIT from reason)))
                      ((eq reason 'normal))
                      (t (erl--terminate proc reason))))
            (cond ((eq reason 'kill) (erl--terminate proc 'killed))
                  (erl-trap-exit
                   (erl--deliver proc (vector 'EXIT from reason)))
                  ((eq reason 'normal)
                   (when (equal from to)
                     (erl--terminate proc 'normal)))
                  (t (erl--terminate proc reason)))))))))

(defun erl-send-exit (from to reason &optional kind)
  "Send an exit signal with REASON from FROM to TO.
When TO is a local process that traps exits, it gets the message
[EXIT FROM REASON]; otherwise it exits with REASON, unless REASON
is `normal'.  KIND says what the signal is: `link' for the exit of
the linked process FROM (the link is removed; a signal from a
process that is not linked is ignored), `exit2' for Erlang's
exit/2 (the reason `kill' cannot be trapped and kills with reason
`killed').  When KIND is nil, it is `link' if FROM and TO are
linked and `exit2' otherwise.  When TO is on another node, the
signal goes to `erl-dist-exit' (`erl-dist-exit2' for KIND `exit2')."
  (cond ((erl-local-pid-p to)
         (erl--queue-signal from to reason kind)
         (erl--handle-signals)
         (erl-maybe-schedule)
         (erl--check-self))
        ((erl-pid-p to)
         (erl--distribute (if (eq kind 'exit2) #'erl-dist-exit2
                            #'erl-dist-exit)
                          from to reason))
        (t (signal 'derl-argument-error
                   (list (format "Cannot send an exit signal to %S: not a pid"
                                 to))))))

(defun erl-exit (why &optional who)
  "Exit the current process with reason WHY, as Erlang's exit/1.
With WHO, a pid, send it an exit signal with reason WHY instead,
as Erlang's exit/2: a process that traps exits gets the message
[EXIT SELF WHY], except that WHY `kill' kills it unconditionally
\(its exit reason is then `killed'); otherwise it exits with WHY,
unless WHY is `normal'."
  (if who
      (erl-send-exit erl-self who why 'exit2)
    (signal 'erl-exit-signal (list why))))

(defun erl-exit/2 (who why)
  "Send the process WHO an exit signal with reason WHY, as Erlang's exit/2."
  (erl-exit why who))

(defun erl-add-link (from to)
  "Add TO to the links of the local process FROM (one direction only).
The distribution layer calls this when a remote process TO links
with FROM.  When FROM is dead, a remote TO gets an exit signal
`noproc'."
  (when (and (erl-local-pid-p from) (not (erl-null-pid-p from)))
    (let ((proc (erl--local-proc from)))
      (cond (proc
             (with-current-buffer (erl--proc-buffer proc)
               (unless erl-links
                 (setq erl-links (make-hash-table :test 'equal)))
               (puthash to t erl-links)))
            ((erl-remote-pid-p to)
             (erl--distribute #'erl-dist-exit from to 'noproc))))))

(defun erl-remove-link (from to)
  "Remove TO from the links of the local process FROM (one direction only).
The distribution layer calls this when a remote process TO unlinks
from FROM."
  (let ((proc (erl--local-proc from)))
    (when proc
      (with-current-buffer (erl--proc-buffer proc)
        (when erl-links
          (remhash to erl-links))))))

(defun erl-link (pid)
  "Link the current process with PID.
If PID is a dead local process, the current process exits with
reason `noproc', or gets [EXIT PID noproc] if it traps exits.
Outside any process this does nothing."
  (let ((self erl-self))
    (cond ((or (erl-null-pid-p self) (equal pid self)))
          ((erl-local-pid-p pid)
           (cond ((erl-local-pid-alive-p pid)
                  (erl-add-link self pid)
                  (erl-add-link pid self))
                 (erl-trap-exit
                  (erl--deliver erl--proc (vector 'EXIT pid 'noproc)))
                 (t (signal 'erl-exit-signal (list 'noproc)))))
          ((erl-pid-p pid)
           (erl-add-link self pid)
           (erl--distribute #'erl-dist-link pid))
          (t (signal 'derl-argument-error
                     (list (format "Cannot link to %S: not a pid" pid)))))))

(defun erl-unlink (pid)
  "Remove the link between the current process and PID."
  (let ((self erl-self))
    (unless (erl-null-pid-p self)
      (erl-remove-link self pid)
      (cond ((erl-local-pid-p pid)
             (erl-remove-link pid self))
            ((erl-pid-p pid)
             (erl--distribute #'erl-dist-unlink pid))))))

(defun erl--buffer-killed ()
  "End the current buffer's process if the buffer is killed from outside."
  (let ((proc erl--proc))
    (when (and proc (not (erl--proc-dead proc)))
      (erl--terminate proc 'killed t)
      (erl-maybe-schedule))))

(add-hook 'kill-buffer-hook #'erl--buffer-killed)

;;;; Group leaders

(declare-function derl-io-server "derl-io" ())

(defvar erl-default-group-leader nil
  "The group leader of processes whose `erl-group-leader' is nil.
It is started when first needed; see the function `erl-group-leader'.")

(defun erl-group-leader ()
  "Return the group leader of the current process.
That is `erl-group-leader' if set, or else the default group
leader, a process registered as `group-leader' that speaks Erlang's
I/O protocol and writes output to the buffer *erl-output*."
  (or erl-group-leader
      (erl--default-group-leader)))

(defun erl--default-group-leader ()
  "Return the default group leader, starting it if it is not running."
  (or (and erl-default-group-leader
           (erl-local-pid-alive-p erl-default-group-leader)
           erl-default-group-leader)
      (progn
        (require 'derl-io)
        (setq erl-default-group-leader
              (let ((erl-group-leader nil))
                (erl-spawn
                  (erl-set-name "Default group leader")
                  (erl-register 'group-leader)
                  (derl-io-server)))))))

;;;; Nodes

(defcustom erl-report-nodes t
  "Non-nil shows \"nodeup: NODE\" and \"nodedown: NODE\" in the echo area.
As Distel did; a node that goes down on its own says why too."
  :type 'boolean
  :group 'derl)

(defun erl--nodeup (node &rest _)
  "Note that NODE is up; say so when `erl-report-nodes'."
  (unless (memq node erl-nodes)
    (push node erl-nodes))
  (when erl-report-nodes
    (message "nodeup: %s" node)))

(defun erl--nodedown (node &rest _)
  "Note that NODE is down; local processes linked there get `noconnection'."
  (when (stringp node)
    (setq node (intern node)))
  (setq erl-nodes (delq node erl-nodes))
  (maphash (lambda (_id proc)
             (let ((buffer (erl--proc-buffer proc)))
               (when (buffer-live-p buffer)
                 (dolist (link (with-current-buffer buffer (erl-link-list)))
                   (when (and (erl-pid-p link) (eq (aref link 2) node))
                     (erl--queue-signal link (erl--proc-pid proc)
                                        'noconnection 'link))))))
           erl--processes)
  (erl--handle-signals)
  (erl-maybe-schedule))

(add-hook 'erl-nodeup-hook #'erl--nodeup)
(add-hook 'erl-nodedown-hook #'erl--nodedown)

;;;; Odds and ends

(defun erl-remove-if (predicate list)
  "Return a copy of LIST without the elements that satisfy PREDICATE."
  (let (out)
    (dolist (x list)
      (unless (funcall predicate x)
        (push x out)))
    (nreverse out)))

(defalias 'erl-term-to-binary #'erlext-term-to-binary)
(defalias 'erl-binary-to-term #'erlext-binary-to-term)

(provide 'erl)

;;; erl.el ends here

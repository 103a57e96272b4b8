;;; derl.el --- Distributed Erlang connections for Emacs  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;; Keywords: erlang, languages, processes
;; Package-Requires: ((emacs "28.1"))

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

;; Connections to Erlang and Elixir nodes, with Distel's API:
;; `erl-connect', `erl-dist-send', `erl-dist-reg-send', `erl-dist-link',
;; `erl-dist-unlink', `erl-dist-exit', `erl-dist-exit2',
;; `erl-nodeup-hook', `erl-nodedown-hook', `derl-cookie',
;; `derl-use-trace-buffer' and the *trace NODE* buffers.
;;
;; The sockets, EPMD, the handshake, framing and ticks live in the derl
;; module's I/O thread, so a connection stays up while Emacs is busy.
;; Events reach Lisp through one pipe process: the thread writes a byte
;; when its event queue goes from empty to non-empty, and the filter
;; takes every pending event at once.
;;
;; `derl-connect' is the synchronous variant: it waits until the node is
;; up and signals `derl-epmd-error', `derl-connect-error',
;; `derl-auth-error', `derl-protocol-error' or `derl-timeout' otherwise.

;;; Code:

(require 'cl-lib)
(require 'erlext)
(require 'subr-x)
(require 'erl)
(require 'derl-trace)

(defgroup derl nil
  "Distributed Erlang for Emacs."
  :group 'languages
  :prefix "derl-")

(defcustom derl-cookie nil
  "The cookie for distributed Erlang connections, or nil.
When nil, the cookie is read from ~/.erlang.cookie.  The cookie is
never shown in messages or traces."
  :type '(choice (const :tag "Read ~/.erlang.cookie" nil) string))

(defcustom derl-net-ticktime 60
  "Seconds of silence after which a connection counts as down.
Ticks go out when a connection has been idle a quarter of this time,
and every tick from the node is answered, so connections stay up
while Emacs is busy.  Like Erlang's kernel parameter `net_ticktime'."
  :type 'natnum)

(defcustom derl-connect-timeout 10
  "Seconds allowed for EPMD, the TCP connect and the handshake."
  :type 'number)

(defcustom derl-max-message-size (* 128 1024 1024)
  "Largest message in bytes accepted from a node.
A bigger one closes that connection with a clear reason."
  :type 'natnum)

(defcustom derl-epmd-port
  (let ((env (getenv "ERL_EPMD_PORT")))
    (or (and env (string-to-number env)) 4369))
  "The port EPMD listens on; as Erlang, honours ERL_EPMD_PORT."
  :type 'natnum)

(defvar erl-nodeup-hook nil
  "Run when a node connection comes up, with two args: NODE and CONNECTION.
NODE is a symbol like mynode@host; CONNECTION a `derl-connection'.")

(defvar erl-nodedown-hook nil
  "Run when a node connection goes down or fails, with one arg: NODE.
The reason is in *Messages* and in the node's trace buffer.")

(define-error 'derl-epmd-error "EPMD error" 'derl-error)
(define-error 'derl-connect-error "Cannot connect to node" 'derl-error)
(define-error 'derl-auth-error "Authentication failed" 'derl-error)
(define-error 'derl-protocol-error "Distribution protocol error" 'derl-error)
(define-error 'derl-timeout "Timed out" 'derl-error)

(declare-function derl--module-start "derl-module" (process))
(declare-function derl--module-stop "derl-module" ())
(declare-function derl--module-connect "derl-module"
                  (alive host epmd-port cookie our-name creation ticktime-ms
                         timeout-ms max-message-size))
(declare-function derl--module-send "derl-module" (conn control &optional message))
(declare-function derl--module-close "derl-module" (conn))
(declare-function derl--module-events "derl-module" (&optional lossless max-depth))

;;;; Trace buffers

(defmacro derl--trace (conn direction format &rest args)
  "Log a line to CONN's trace buffer: DIRECTION `input' or `output'.
FORMAT and ARGS make the text; they are not even evaluated while
`derl-use-trace-buffer' is nil."
  `(when derl-use-trace-buffer
     (derl-trace-line (derl-connection-node ,conn) ,direction
                      (format ,format ,@args))))

;;;; Connections

(cl-defstruct (derl-connection (:constructor derl--make-connection)
                               (:copier nil))
  "A connection to one Erlang node."
  (node nil :documentation "The node, a symbol alive@host.")
  (id nil :documentation "The module's connection id.")
  (state 'connecting :documentation "`connecting', `up' or `down'.")
  (flags 0 :documentation "The node's capability flags, once up.")
  (creation 0 :documentation "The node's creation, once up.")
  (links nil :documentation "Links as (LOCAL-PID . REMOTE-PID).")
  (monitors nil
            :documentation "Remote monitors of local processes, as
(LOCAL-PID REMOTE-PID REF).")
  (failure nil :documentation "(KIND . REASON) when it went down.")
  (unlink-id 0 :documentation "Last UNLINK_ID sent."))

(defvar derl--connections (make-hash-table :test 'eq)
  "Live connections by node symbol.")

(defvar derl--by-id (make-hash-table :test 'eql)
  "Live connections by module id.")

(defvar derl--events-process nil
  "The pipe process through which the I/O thread wakes Emacs.")

(defvar derl--event-handlers (make-hash-table :test 'eql)
  "Callbacks for EPMD queries, by query id: (ON-SUCCESS . ON-ERROR).")

;; Capability flags the senders look at.
(defconst derl--flag-send-sender #x80000)
(defconst derl--flag-exit-payload #x400000)

(defun derl--split-node (node)
  "Return (ALIVE . HOST) of NODE, a symbol or string name@host.
Signal `derl-connect-error' when NODE is not of that form."
  (let ((name (if (symbolp node) (symbol-name node) node)))
    (unless (and (stringp name)
                 (string-match "\\`\\([^@]+\\)@\\([^@]+\\)\\'" name))
      (signal 'derl-connect-error
              (list (format "Node name %S is not of the form name@host"
                            node))))
    (cons (match-string 1 name) (match-string 2 name))))

(defun derl--node-symbol (node)
  "NODE as a symbol."
  (if (symbolp node) node (intern node)))

(defun derl--check-name-kinds (node host our-host)
  "Refuse NODE on HOST when its kind of name differs from ours (OUR-HOST).
Erlang nodes with long names (host.domain) and with short names never
connect to each other."
  (let ((long (string-match-p "\\." host))
        (our-long (string-match-p "\\." our-host)))
    (unless (eq (not long) (not our-long))
      (signal 'derl-connect-error
              (list (format "%s has a %s name but Emacs is %s; set \
`erl-node-name' to a %s name" node (if long "long" "short") erl-node-name
                            (if long "long" "short")))))))

(defun derl--cookie ()
  "Return the cookie as bytes, from `derl-cookie' or ~/.erlang.cookie."
  (let ((cookie
         (or derl-cookie
             (let ((file (expand-file-name "~/.erlang.cookie")))
               (unless (file-readable-p file)
                 (signal 'derl-auth-error
                         (list (format "No cookie: set `derl-cookie' or \
create a readable %s" file))))
               (with-temp-buffer
                 (insert-file-contents-literally file)
                 (string-trim (buffer-string)))))))
    (encode-coding-string cookie 'utf-8)))

(defun derl--ensure-started ()
  "Start the module's I/O thread and the event pipe, once."
  (unless (process-live-p derl--events-process)
    (let ((process-adaptive-read-buffering nil))
      ;; Without that binding Emacs delays reads from the pipe, and a
      ;; chain of wake-ups crawls at about 20 a second.
      (setq derl--events-process
            (make-pipe-process :name "derl-events"
                               :buffer nil
                               :coding 'binary
                               :noquery t
                               :filter #'derl--events-filter
                               :sentinel #'ignore)))
    (derl--module-start derl--events-process)
    (add-hook 'kill-emacs-hook #'derl--shutdown)))

(defun derl--shutdown ()
  "Stop the I/O thread, then delete the event pipe."
  (derl--module-stop)
  (when (process-live-p derl--events-process)
    (delete-process derl--events-process))
  (setq derl--events-process nil))

(defun derl--connection (node)
  "Return the live connection to NODE, starting one if there is none."
  ;; The event pipe may have been deleted by hand: make it anew.
  (derl--ensure-started)
  (let ((node (derl--node-symbol node)))
    (or (gethash node derl--connections)
        (derl--start-connection node))))

(defun derl--start-connection (node)
  "Start connecting to NODE; return the connection."
  (when (eq node erl-node-name)
    (signal 'derl-connect-error
            (list (format "Node %s has the same name as Emacs" node))))
  (let* ((parts (derl--split-node node))
         (ours (cdr (derl--split-node erl-node-name)))
         (cookie (progn (derl--check-name-kinds node (cdr parts) ours)
                        (derl--cookie))))
    (derl--ensure-started)
    (let* ((id (derl--module-connect
                (car parts) (cdr parts) derl-epmd-port cookie
                (symbol-name erl-node-name) erl-node-creation
                (round (* 1000 derl-net-ticktime))
                (round (* 1000 derl-connect-timeout))
                derl-max-message-size))
           (conn (derl--make-connection :node node :id id)))
      (clear-string cookie)
      (puthash node conn derl--connections)
      (puthash id conn derl--by-id)
      (derl--trace conn 'output "** connecting to %s" node)
      conn)))

;;;; Distribution operations

;; The control messages' operation numbers, as Erlang's DOP_* names.
(defconst derl--dop-link 1)
(defconst derl--dop-send 2)
(defconst derl--dop-exit 3)
(defconst derl--dop-unlink 4)
(defconst derl--dop-reg-send 6)
(defconst derl--dop-group-leader 7)
(defconst derl--dop-exit2 8)
(defconst derl--dop-send-tt 12)
(defconst derl--dop-exit-tt 13)
(defconst derl--dop-reg-send-tt 16)
(defconst derl--dop-exit2-tt 18)
(defconst derl--dop-monitor-p 19)
(defconst derl--dop-demonitor-p 20)
(defconst derl--dop-monitor-p-exit 21)
(defconst derl--dop-send-sender 22)
(defconst derl--dop-send-sender-tt 23)
(defconst derl--dop-payload-exit 24)
(defconst derl--dop-payload-exit-tt 25)
(defconst derl--dop-payload-exit2 26)
(defconst derl--dop-payload-exit2-tt 27)
(defconst derl--dop-payload-monitor-p-exit 28)
(defconst derl--dop-spawn-request 29)
(defconst derl--dop-spawn-request-tt 30)
(defconst derl--dop-spawn-reply 31)
(defconst derl--dop-spawn-reply-tt 32)
(defconst derl--dop-alias-send 33)
(defconst derl--dop-alias-send-tt 34)
(defconst derl--dop-unlink-id 35)
(defconst derl--dop-unlink-id-ack 36)

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

;;;; The public API

(defun erl-connect (node)
  "Connect to NODE asynchronously.
When the connection is up `erl-nodeup-hook' runs; when it fails, or
goes down later, `erl-nodedown-hook' runs.  Return the connection."
  (interactive (list (intern (read-string "Node: "))))
  (derl--connection node))

(defun derl-connect (node &optional timeout)
  "Connect to NODE and wait until it is up; return the connection.
Wait at most TIMEOUT seconds (default `derl-connect-timeout' plus a
second).  Signal `derl-epmd-error', `derl-connect-error',
`derl-auth-error', `derl-protocol-error' or `derl-timeout' when it
cannot be done."
  (interactive (list (intern (read-string "Node: "))))
  (let ((conn (derl--connection node)))
    (derl--wait (lambda () (not (eq (derl-connection-state conn) 'connecting)))
                (or timeout (1+ derl-connect-timeout))
                (format "connecting to %s" node))
    (if (eq (derl-connection-state conn) 'up)
        (progn (when (called-interactively-p 'interactive)
                 (message "Connected to %s" node))
               conn)
      (derl--signal-failure conn))))

(defun derl-disconnect (node)
  "Close the connection to NODE, if there is one."
  (interactive
   (list (intern (completing-read
                  "Disconnect node: "
                  (mapcar #'symbol-name (hash-table-keys derl--connections))
                  nil t))))
  (let ((conn (gethash (derl--node-symbol node) derl--connections)))
    (when conn
      (derl--module-close (derl-connection-id conn)))))

(defun derl-nodes ()
  "Return the nodes with a live or pending connection."
  (hash-table-keys derl--connections))

(defun derl--signal-failure (conn)
  "Signal the error that took CONN down."
  (let* ((failure (derl-connection-failure conn))
         (kind (car failure))
         (reason (format "%s: %s" (derl-connection-node conn) (cdr failure))))
    (signal (pcase kind
              ((or 'epmd 'not-registered) 'derl-epmd-error)
              ('auth 'derl-auth-error)
              ((or 'protocol 'too-large) 'derl-protocol-error)
              ('timeout 'derl-timeout)
              (_ 'derl-connect-error))
            (list reason))))

(defvar derl--waiters nil
  "The waits in progress, innermost first: (DONE-P . TAG) pairs.
After each batch of events, the innermost wait whose DONE-P is
satisfied is ended by a throw to its TAG.")

(defun derl--wait (done-p timeout what)
  "Wait until calling DONE-P gives non-nil; signal `derl-timeout' after TIMEOUT.
WHAT says what is being waited for.  As `jsonrpc-request' does, this
waits in `accept-process-output', so timers and process output run;
the event filter ends the wait with a throw as soon as DONE-P holds,
a timer ends it after TIMEOUT seconds, and \\[keyboard-quit] ends it
cleanly: the wait is forgotten however it ends."
  (let* ((tag (make-symbol "derl--wait"))
         (waiter (cons done-p tag))
         (timer nil))
    (unwind-protect
        (when (eq (catch tag
                    (push waiter derl--waiters)
                    (setq timer (run-at-time timeout nil
                                             (lambda () (throw tag 'timeout))))
                    (while (not (funcall done-p))
                      (accept-process-output nil 30))
                    'done)
                  'timeout)
          (signal 'derl-timeout (list (format "Timed out %s" what))))
      (when timer
        (cancel-timer timer))
      (setq derl--waiters (delq waiter derl--waiters)))))

(defun derl--wake-waiter ()
  "End the innermost wait, if what it waits for has happened."
  (let ((waiter (car derl--waiters)))
    (when (and waiter (funcall (car waiter)))
      (throw (cdr waiter) 'done))))

(defun derl--self ()
  "The current process, or the null pid outside one."
  (or erl-self erl-null-pid))

(defun derl--request (conn control &rest message)
  "Send CONTROL, and MESSAGE when given, on CONN.
CONN comes from `derl--connection', which connects first if needed;
the module queues what is sent before the node is up."
  (apply #'derl--module-send (derl-connection-id conn) control message))

(defun derl--peer-has (conn flag)
  "Return non-nil if CONN is up and its node has capability FLAG."
  (and (eq (derl-connection-state conn) 'up)
       (/= 0 (logand (derl-connection-flags conn) flag))))

(defun erl-dist-send (pid msg)
  "Send MSG to PID, a process on a remote node."
  (let* ((node (erl-pid-node pid))
         (conn (derl--connection node)))
    (if (derl--peer-has conn derl--flag-send-sender)
        (progn
          (derl--trace conn 'output "SEND_SENDER: %s %s %s"
                       (derl-trace-term (derl--self)) (derl-trace-term pid)
                       (derl-trace-term msg))
          (derl--request conn (vector derl--dop-send-sender (derl--self) pid)
                         msg))
      (derl--trace conn 'output "SEND: %s %s" (derl-trace-term pid)
                   (derl-trace-term msg))
      (derl--request conn (vector derl--dop-send erlext-empty-symbol pid)
                     msg))))

(defun erl-dist-reg-send (node name msg)
  "Send MSG to the process registered as NAME on NODE."
  (let ((conn (derl--connection node)))
    (derl--trace conn 'output "REG_SEND: %s %s %s"
                 (derl-trace-term (derl--self)) name (derl-trace-term msg))
    (derl--request conn (vector derl--dop-reg-send (derl--self)
                                erlext-empty-symbol name)
                   msg)))

(defun erl-dist-link (pid)
  "Link the current process with PID on a remote node."
  (let ((conn (derl--connection (erl-pid-node pid)))
        (self (derl--self)))
    (derl--trace conn 'output "LINK: %s %s" (derl-trace-term self)
                 (derl-trace-term pid))
    (cl-pushnew (cons self pid) (derl-connection-links conn) :test #'equal)
    (derl--request conn (vector derl--dop-link self pid))))

(defun erl-dist-unlink (pid)
  "Remove the link between the current process and PID on a remote node."
  (let* ((conn (derl--connection (erl-pid-node pid)))
         (self (derl--self))
         (id (cl-incf (derl-connection-unlink-id conn))))
    (derl--trace conn 'output "UNLINK_ID: %d %s %s" id (derl-trace-term self)
                 (derl-trace-term pid))
    (setf (derl-connection-links conn)
          (cl-remove (cons self pid) (derl-connection-links conn)
                     :test #'equal))
    (derl--request conn (vector derl--dop-unlink-id id self pid))))

(defun derl--send-exit (op payload-op from to reason)
  "Send an exit signal FROM to TO with REASON: as OP, or PAYLOAD-OP."
  (let ((conn (derl--connection (erl-pid-node to))))
    (derl--trace conn 'output "%s: %s %s %s"
                 (if (= op derl--dop-exit) "EXIT" "EXIT2")
                 (derl-trace-term from) (derl-trace-term to)
                 (derl-trace-term reason))
    (when (= op derl--dop-exit)
      (setf (derl-connection-links conn)
            (cl-remove (cons from to) (derl-connection-links conn)
                       :test #'equal)))
    (if (derl--peer-has conn derl--flag-exit-payload)
        (derl--request conn (vector payload-op from to) reason)
      (derl--request conn (vector op from to reason)))))

(defun erl-dist-exit (from to reason)
  "Send an exit signal with REASON from FROM to TO on a remote node.
This is the signal a linked process sends when it exits."
  (derl--send-exit derl--dop-exit derl--dop-payload-exit from to reason))

(defun erl-dist-exit2 (from to reason)
  "Send an `exit/2' signal with REASON from FROM to TO on a remote node."
  (derl--send-exit derl--dop-exit2 derl--dop-payload-exit2 from to reason))

;;;; Events

(defun derl--events-filter (_process _bytes)
  "Take every pending event from the module and handle it.
Processes that get messages run once for the whole batch."
  (erl-with-deferred-scheduling
    (dolist (event (derl--module-events
                    (eq erlext-decode-binaries-as 'erl-binary)
                    erlext-max-depth))
      (condition-case-unless-debug err
          (derl--handle-event event)
        (error (message "derl: error handling %S: %s" (car event)
                        (error-message-string err))))))
  (derl--wake-waiter))

(defun derl--handle-event (event)
  "Act on one EVENT from the module."
  (pcase event
    (`(frame ,id ,control . ,message)
     (let ((conn (gethash id derl--by-id)))
       (when conn
         (derl--dispatch conn control (car message)))))
    (`(up ,id ,_name ,creation ,flags)
     (let ((conn (gethash id derl--by-id)))
       (when conn
         (setf (derl-connection-state conn) 'up
               (derl-connection-flags conn) flags
               (derl-connection-creation conn) creation)
         (derl--trace conn 'input "** nodeup")
         (run-hook-with-args 'erl-nodeup-hook (derl-connection-node conn)
                             conn))))
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
    (`(,(or 'epmd-port 'epmd-names) ,id . ,result)
     (let ((handler (gethash id derl--event-handlers)))
       (remhash id derl--event-handlers)
       (when handler
         (apply (car handler) result))))
    (`(epmd-error ,id ,kind ,reason)
     (let ((handler (gethash id derl--event-handlers)))
       (remhash id derl--event-handlers)
       (when handler
         (funcall (cdr handler) kind reason))))))

(defun derl--nodedown (conn kind reason)
  "CONN went down for REASON of KIND: tell everyone concerned."
  (let ((node (derl-connection-node conn))
        (was (derl-connection-state conn)))
    (setf (derl-connection-state conn) 'down
          (derl-connection-failure conn) (cons kind reason))
    (remhash (derl-connection-id conn) derl--by-id)
    (when (eq (gethash node derl--connections) conn)
      (remhash node derl--connections))
    (derl--trace conn 'input "** nodedown: %s" reason)
    (unless (eq kind 'local)
      (message "derl: %s %s: %s" node
               (if (eq was 'up) "went down" "connection failed") reason))
    ;; Local processes linked to the node get `noconnection'.
    (dolist (link (derl-connection-links conn))
      (erl-send-exit (cdr link) (car link) 'noconnection 'link))
    (run-hook-with-args 'erl-nodedown-hook node)))

(defun derl--dispatch (conn control message)
  "Handle CONTROL, with MESSAGE (nil when none), from CONN.
The handler comes from `derl--op-handlers'."
  (let* ((op (aref control 0))
         (handler (and (natnump op) (< op (length derl--op-handlers))
                       (aref derl--op-handlers op))))
    (if handler
        (funcall handler conn op control message)
      (derl--trace conn 'input "** ignored control message %s"
                   (derl-trace-term control)))))

;;;; Handlers of incoming operations

(derl--define-op-handler derl--on-send
    (derl--dop-send derl--dop-send-tt
     derl--dop-send-sender derl--dop-send-sender-tt)
    (conn op control msg)
  "SEND and SEND_SENDER (OP) on CONN: deliver MSG as CONTROL says."
  (let ((to (aref control 2)))
    (if (memq op (list derl--dop-send derl--dop-send-tt))
        (derl--trace conn 'input "SEND: %s %s" (derl-trace-term to)
                     (derl-trace-term msg))
      (derl--trace conn 'input "SEND_SENDER: %s %s %s"
                   (derl-trace-term (aref control 1)) (derl-trace-term to)
                   (derl-trace-term msg)))
    (erl-send to msg)))

(derl--define-op-handler derl--on-reg-send
    (derl--dop-reg-send derl--dop-reg-send-tt)
    (conn _op control msg)
  "REG_SEND on CONN: deliver MSG to the name CONTROL gives."
  (let ((from (aref control 1))
        (name (aref control 3)))
    (derl--trace conn 'input "REG_SEND: %s %s %s" (derl-trace-term from)
                 name (derl-trace-term msg))
    (when (erl-whereis name)
      (erl-send name msg))))

(derl--define-op-handler derl--on-link (derl--dop-link)
    (conn _op control _msg)
  "LINK on CONN: a remote process links with a local one, per CONTROL."
  (let ((from (aref control 1)) (to (aref control 2)))
    (derl--trace conn 'input "LINK: %s %s" (derl-trace-term from)
                 (derl-trace-term to))
    (if (erl-local-pid-alive-p to)
        (progn
          (cl-pushnew (cons to from) (derl-connection-links conn)
                      :test #'equal)
          (erl-add-link to from))
      ;; Linking to a dead process: it exits at once with noproc.
      (derl--request conn (vector derl--dop-exit to from 'noproc)))))

(derl--define-op-handler derl--on-unlink
    (derl--dop-unlink derl--dop-unlink-id)
    (conn op control _msg)
  "UNLINK and UNLINK_ID (OP) on CONN, as CONTROL says."
  (let* ((id (and (= op derl--dop-unlink-id) (aref control 1)))
         (from (aref control (if id 2 1)))
         (to (aref control (if id 3 2))))
    (derl--trace conn 'input "%s: %s %s" (if id "UNLINK_ID" "UNLINK")
                 (derl-trace-term from) (derl-trace-term to))
    (setf (derl-connection-links conn)
          (cl-remove (cons to from) (derl-connection-links conn)
                     :test #'equal))
    (erl-remove-link to from)
    (when id
      (derl--request conn (vector derl--dop-unlink-id-ack id to from)))))

(derl--define-op-handler derl--on-unlink-id-ack (derl--dop-unlink-id-ack)
    (conn _op control _msg)
  "UNLINK_ID_ACK on CONN: trace CONTROL."
  (derl--trace conn 'input "UNLINK_ID_ACK: %s"
               (derl-trace-term (aref control 1))))

(derl--define-op-handler derl--on-exit
    (derl--dop-exit derl--dop-exit-tt derl--dop-exit2 derl--dop-exit2-tt
     derl--dop-payload-exit derl--dop-payload-exit-tt
     derl--dop-payload-exit2 derl--dop-payload-exit2-tt)
    (conn op control msg)
  "EXIT, EXIT2 and their variants (OP) on CONN, per CONTROL and MSG."
  (let* ((from (aref control 1))
         (to (aref control 2))
         (reason (cond ((>= op derl--dop-payload-exit) msg)
                       ((memq op (list derl--dop-exit-tt derl--dop-exit2-tt))
                        (aref control 4))
                       (t (aref control 3))))
         (exit2 (memq op (list derl--dop-exit2 derl--dop-exit2-tt
                               derl--dop-payload-exit2
                               derl--dop-payload-exit2-tt))))
    (derl--trace conn 'input "%s: %s %s %s" (if exit2 "EXIT2" "EXIT")
                 (derl-trace-term from) (derl-trace-term to)
                 (derl-trace-term reason))
    (unless exit2
      (setf (derl-connection-links conn)
            (cl-remove (cons to from) (derl-connection-links conn)
                       :test #'equal)))
    (erl-send-exit from to reason (if exit2 'exit2 'link))))

(derl--define-op-handler derl--on-monitor (derl--dop-monitor-p)
    (conn _op control _msg)
  "MONITOR_P on CONN: a remote process monitors a local one, per CONTROL."
  (let ((from (aref control 1)) (target (aref control 2))
        (ref (aref control 3)))
    (derl--trace conn 'input "MONITOR_P: %s %s" (derl-trace-term from)
                 (derl-trace-term target))
    (let ((pid (if (symbolp target) (erl-whereis target) target)))
      (if (and pid (erl-local-pid-alive-p pid))
          (push (list pid from ref target) (derl-connection-monitors conn))
        (derl--monitor-exit conn target from ref 'noproc)))))

(derl--define-op-handler derl--on-demonitor (derl--dop-demonitor-p)
    (conn _op control _msg)
  "DEMONITOR_P on CONN: forget the monitor CONTROL names."
  (let ((ref (aref control 3)))
    (derl--trace conn 'input "DEMONITOR_P: %s" (derl-trace-term ref))
    (setf (derl-connection-monitors conn)
          (cl-remove ref (derl-connection-monitors conn)
                     :key #'cl-third :test #'equal))))

(derl--define-op-handler derl--on-monitor-exit
    (derl--dop-monitor-p-exit derl--dop-payload-monitor-p-exit)
    (conn op control msg)
  "MONITOR_P_EXIT (OP) on CONN: a monitored remote process is gone."
  (let ((from (aref control 1)) (to (aref control 2))
        (ref (aref control 3))
        (reason (if (= op derl--dop-payload-monitor-p-exit) msg
                  (aref control 4))))
    (derl--trace conn 'input "MONITOR_P_EXIT: %s %s %s" (derl-trace-term from)
                 (derl-trace-term to) (derl-trace-term reason))
    (erl-send to (vector 'DOWN ref 'process from reason))))

(derl--define-op-handler derl--on-spawn-request
    (derl--dop-spawn-request derl--dop-spawn-request-tt)
    (conn _op control _msg)
  "SPAWN_REQUEST on CONN: refused, as Emacs runs no Erlang code."
  (let ((req (aref control 1)) (from (aref control 2)))
    (derl--trace conn 'input "SPAWN_REQUEST: %s" (derl-trace-term from))
    (derl--request conn (vector derl--dop-spawn-reply req from 0 'notsup))))

(derl--define-op-handler derl--on-spawn-reply
    (derl--dop-spawn-reply derl--dop-spawn-reply-tt)
    (conn _op control _msg)
  "SPAWN_REPLY on CONN: hand the result in CONTROL to the requester."
  (let ((req (aref control 1)) (to (aref control 2))
        (result (aref control 4)))
    (derl--trace conn 'input "SPAWN_REPLY: %s %s" (derl-trace-term to)
                 (derl-trace-term result))
    (erl-send to (vector 'spawn_reply req (aref control 3) result))))

(derl--define-op-handler derl--on-alias-send
    (derl--dop-alias-send derl--dop-alias-send-tt)
    (conn _op control _msg)
  "ALIAS_SEND on CONN: Emacs has no aliases, so it is dropped."
  (derl--trace conn 'input "ALIAS_SEND (dropped): %s"
               (derl-trace-term (aref control 2))))

(derl--define-op-handler derl--on-group-leader (derl--dop-group-leader)
    (conn _op control _msg)
  "GROUP_LEADER on CONN: traced only."
  (derl--trace conn 'input "GROUP_LEADER: %s %s"
               (derl-trace-term (aref control 1))
               (derl-trace-term (aref control 2))))

;;;; Monitors of local processes

(defun derl--monitor-exit (conn target watcher ref reason)
  "Tell WATCHER on CONN's node that TARGET it monitored with REF is gone."
  (derl--trace conn 'output "MONITOR_P_EXIT: %s %s %s" (derl-trace-term target)
               (derl-trace-term watcher) (derl-trace-term reason))
  (if (derl--peer-has conn derl--flag-exit-payload)
      (derl--request conn (vector derl--dop-payload-monitor-p-exit target watcher ref)
                     reason)
    (derl--request conn
                   (vector derl--dop-monitor-p-exit target watcher ref reason))))

(defun derl--local-exit (pid reason)
  "Local process PID exited with REASON: fire the remote monitors on it."
  (maphash
   (lambda (_node conn)
     (let (keep)
       (dolist (m (derl-connection-monitors conn))
         (if (equal (car m) pid)
             (derl--monitor-exit conn (nth 3 m) (nth 1 m) (nth 2 m) reason)
           (push m keep)))
       (setf (derl-connection-monitors conn) (nreverse keep))
       (setf (derl-connection-links conn)
             (cl-remove pid (derl-connection-links conn)
                        :key #'car :test #'equal))))
   derl--connections))

(add-hook 'erl-process-exit-functions #'derl--local-exit)

(provide 'derl)

;;; derl.el ends here

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
(require 'derl-tls)

(defgroup derl nil
  "Distributed Erlang for Emacs."
  :group 'languages
  :prefix "derl-")

(defcustom derl-cookie nil
  "The cookie for distributed Erlang connections, or nil.
When nil, the cookie is read from ~/.erlang.cookie.  The cookie is
never shown in messages or traces."
  :type '(choice (const :tag "Read ~/.erlang.cookie" nil) string))

(defcustom derl-use-trace-buffer t
  "Non-nil means log each signal to and from a node in *trace NODE*."
  :type 'boolean)

(defcustom derl-trace-max-size 500000
  "Trim a trace buffer to half when it grows past this many characters."
  :type 'natnum)

(defcustom derl-trace-term-length 300
  "Shorten each term printed in a trace buffer to this many characters."
  :type 'natnum)

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

(defcustom derl-max-send-queue (* 64 1024 1024)
  "Most bytes of messages waiting to go out to one node.
Past it, sending signals `derl-busy' and queues nothing, so callers can
back off; a message into an empty queue always goes.  When a
connection dies with messages queued, its nodedown reason says how
many were discarded.  0 means no limit.  A connection takes the value
in force when it is made."
  :type 'natnum)

(defcustom derl-epmd-port
  (let ((env (getenv "ERL_EPMD_PORT")))
    (or (and env (string-to-number env)) 4369))
  "The port EPMD listens on; as Erlang, honours ERL_EPMD_PORT."
  :type '(integer :match (lambda (_ v) (and (integerp v) (<= 1 v 65535)))))

(defvar erl-nodeup-hook nil
  "Run when a node connection comes up, with two args: NODE and CONNECTION.
NODE is a symbol like mynode@host; CONNECTION a `derl-connection'.")

(defvar erl-nodedown-hook nil
  "Run when a node connection goes down or fails, with one arg: NODE.
The reason is in *Messages* and in the node's trace buffer.")

(defface derl-trace-output-face
  '((t (:inherit font-lock-string-face)))
  "Face for outgoing signals in a trace buffer.")

(defface derl-trace-input-face
  '((t (:inherit font-lock-comment-face)))
  "Face for incoming signals in a trace buffer.")

(define-error 'derl-epmd-error "EPMD error" 'derl-error)
(define-error 'derl-connect-error "Cannot connect to node" 'derl-error)
(define-error 'derl-auth-error "Authentication failed" 'derl-error)
(define-error 'derl-protocol-error "Distribution protocol error" 'derl-error)
(define-error 'derl-timeout "Timed out" 'derl-error)
(define-error 'derl-busy "Too much queued for the node" 'derl-error)
(define-error 'derl-tls-error "TLS distribution failed" 'derl-connect-error)

(declare-function derl--module-start "derl-module" (process))
(declare-function derl--module-stop "derl-module" ())
(declare-function derl--module-connect "derl-module"
                  (alive host epmd-port cookie our-name creation ticktime-ms
                         timeout-ms max-message-size &optional max-send-queue
                         tls))
(declare-function derl--module-send "derl-module" (conn control &optional message))
(declare-function derl--module-close "derl-module" (conn))
(declare-function derl--module-events "derl-module" (&optional lossless max-depth))

;;;; Trace buffers

(defun derl--term (term)
  "TERM printed briefly for a trace line.
Pids, ports, references, funs and binaries print in Erlang's style,
as <node.1.0>; deep or long structures are elided."
  (let ((s (or (derl--tagged-text term)
               (if (derl--has-tagged term 0)
                   (derl--print-with-tags term)
                 (derl--print term)))))
    (if (> (length s) derl-trace-term-length)
        (concat (substring s 0 derl-trace-term-length) "...")
      s)))

(defun derl--print (form)
  "FORM printed with the trace's bounds."
  (let ((print-length 12)
        (print-level 5)
        (print-escape-newlines t)
        (print-escape-control-characters t)
        (print-gensym nil))
    (prin1-to-string form)))

(defun derl--tagged-text (term)
  "Erlang's way of showing TERM if it is a tagged vector, else nil."
  (and (vectorp term) (> (length term) 1) (eq (aref term 0) erl-tag)
       (pcase term
         ;; The common case, built without `format'.
         ((and `[,_ erl-pid ,node ,id ,serial ,_]
               (guard (and (symbolp node) (fixnump id) (fixnump serial))))
          (concat "<" (symbol-name node) "." (number-to-string id) "."
                  (number-to-string serial) ">"))
         (`[,_ erl-pid ,node ,id ,serial ,_] (format "<%s.%s.%s>" node id serial))
         (`[,_ erl-port ,node ,id ,_] (format "#Port<%s.%s>" node id))
         (`[,_ ,(or 'erl-new-ref 'erl-ref) ,node ,_ ,_] (format "#Ref<%s>" node))
         (`[,_ erl-binary ,(and (pred stringp) str)]
          (format "<<%s>>" (derl--print (if (> (length str) 40)
                                            (concat (substring str 0 40) "...")
                                          str))))
         (`[,_ erl-export ,m ,fn ,a] (format "fun %s:%s/%s" m fn a))
         (`[,_ erl-fun ,_] "#Fun")
         (`[,_ erl-bitstring ,_ ,_] "#Bits"))))

(defun derl--has-tagged (term depth)
  "Return non-nil if TERM has a tagged vector within the trace's bounds.
DEPTH is how deep TERM already is."
  (cond ((> depth 5) nil)
        ((vectorp term)
         (or (and (> (length term) 1) (eq (aref term 0) erl-tag))
             (cl-loop for i below (min (length term) 13)
                      thereis (derl--has-tagged (aref term i) (1+ depth)))))
        ((consp term)
         (let ((n 0) found)
           (while (and (consp term) (< n 13) (not found))
             (setq found (derl--has-tagged (car term) (1+ depth))
                   term (cdr term)
                   n (1+ n)))
           found))))

(defun derl--print-with-tags (term)
  "TERM printed, its tagged vectors shown as `derl--tagged-text' does."
  (let* ((texts nil)
         (form (derl--trace-form
                term 0 (lambda (text)
                         (push text texts)
                         (make-symbol (format "derl@%d@" (length texts))))))
         (s (derl--print form))
         (n (length texts)))
    (dolist (text texts)
      (setq s (string-replace (format "derl@%d@" n) text s)
            n (1- n)))
    s))

(defun derl--trace-form (term depth placeholder)
  "TERM with its tagged vectors replaced by PLACEHOLDER symbols.
PLACEHOLDER takes the text to show; DEPTH bounds the walk."
  (let ((text (derl--tagged-text term)))
    (cond
     (text (funcall placeholder text))
     ((> depth 5) term)
     ((vectorp term)
      (let ((n (min (length term) 13)))
        (vconcat (cl-loop for i below n
                          collect (derl--trace-form (aref term i) (1+ depth)
                                                    placeholder))
                 (nthcdr n (append term nil)))))
     ((consp term)
      (let ((out nil) (n 0))
        (while (and (consp term) (< n 13))
          (push (derl--trace-form (car term) (1+ depth) placeholder) out)
          (setq term (cdr term) n (1+ n)))
        (nconc (nreverse out) term)))
     (t term))))

(defmacro derl--trace (conn direction format &rest args)
  "Log a line to CONN's trace buffer: DIRECTION `input' or `output'.
FORMAT and ARGS make the text; they are not even evaluated while
`derl-use-trace-buffer' is nil."
  `(when derl-use-trace-buffer
     (derl--trace-line ,conn ,direction (format ,format ,@args))))

(defun derl--trace-line (conn direction text)
  "Append TEXT to CONN's trace buffer, marked for DIRECTION."
  (let ((line (concat (if (eq direction 'input) "<< " ">> ") text "\n")))
    (with-current-buffer (get-buffer-create
                          (format "*trace %s*" (derl-connection-node conn)))
      (let ((inhibit-read-only t))
        (save-excursion
          (goto-char (point-max))
          (insert (propertize line 'face
                              (if (eq direction 'input)
                                  'derl-trace-input-face
                                'derl-trace-output-face))))
        (when (> (buffer-size) derl-trace-max-size)
          (save-excursion
            (goto-char (/ (buffer-size) 2))
            (forward-line 1)
            (delete-region (point-min) (point))))))))

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
  (unless (and (integerp derl-epmd-port) (<= 1 derl-epmd-port 65535))
    (signal 'derl-epmd-error
            (list (format "`derl-epmd-port' is %S, not a port number (1 to \
65535)" derl-epmd-port))))
  (let* ((parts (derl--split-node node))
         (ours (cdr (derl--split-node erl-node-name)))
         (tls (derl-tls--module-options))
         (cookie (progn (derl--check-name-kinds node (cdr parts) ours)
                        (derl--cookie))))
    (derl--ensure-started)
    (let* ((id (derl--module-connect
                (car parts) (cdr parts) derl-epmd-port cookie
                (symbol-name erl-node-name) erl-node-creation
                (round (* 1000 derl-net-ticktime))
                (round (* 1000 derl-connect-timeout))
                derl-max-message-size derl-max-send-queue tls))
           (conn (derl--make-connection :node node :id id)))
      (clear-string cookie)
      (puthash node conn derl--connections)
      (puthash id conn derl--by-id)
      (derl--trace conn 'output "** connecting to %s" node)
      conn)))

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
              ('name-in-use 'derl-connect-error)
              ('tls 'derl-tls-error)
              (_ 'derl-connect-error))
            (list reason))))

(defun derl--wait (done-p timeout what)
  "Wait until calling DONE-P gives non-nil; signal `derl-timeout' after TIMEOUT.
WHAT says what is being waited for.  Waits in `accept-process-output',
so it never spins and returns as soon as events arrive."
  (let ((deadline (+ (float-time) timeout)))
    (while (not (funcall done-p))
      (let ((left (- deadline (float-time))))
        (when (<= left 0)
          (signal 'derl-timeout (list (format "Timed out %s" what))))
        (accept-process-output derl--events-process (min left 1.0))))))

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
                       (derl--term (derl--self)) (derl--term pid)
                       (derl--term msg))
          (derl--request conn (vector 22 (derl--self) pid) msg))
      (derl--trace conn 'output "SEND: %s %s" (derl--term pid) (derl--term msg))
      (derl--request conn (vector 2 erlext-empty-symbol pid) msg))))

(defun erl-dist-reg-send (node name msg)
  "Send MSG to the process registered as NAME on NODE."
  (let ((conn (derl--connection node)))
    (derl--trace conn 'output "REG_SEND: %s %s %s" (derl--term (derl--self))
                 name (derl--term msg))
    (derl--request conn (vector 6 (derl--self) erlext-empty-symbol name) msg)))

(defun erl-dist-link (pid)
  "Link the current process with PID on a remote node."
  (let ((conn (derl--connection (erl-pid-node pid)))
        (self (derl--self)))
    (derl--trace conn 'output "LINK: %s %s" (derl--term self) (derl--term pid))
    (cl-pushnew (cons self pid) (derl-connection-links conn) :test #'equal)
    (derl--request conn (vector 1 self pid))))

(defun erl-dist-unlink (pid)
  "Remove the link between the current process and PID on a remote node."
  (let* ((conn (derl--connection (erl-pid-node pid)))
         (self (derl--self))
         (id (cl-incf (derl-connection-unlink-id conn))))
    (derl--trace conn 'output "UNLINK_ID: %d %s %s" id (derl--term self)
                 (derl--term pid))
    (setf (derl-connection-links conn)
          (cl-remove (cons self pid) (derl-connection-links conn)
                     :test #'equal))
    (derl--request conn (vector 35 id self pid))))

(defun derl--send-exit (op payload-op from to reason)
  "Send an exit signal FROM to TO with REASON: as OP, or PAYLOAD-OP."
  (let ((conn (derl--connection (erl-pid-node to))))
    (derl--trace conn 'output "%s: %s %s %s" (if (= op 3) "EXIT" "EXIT2")
                 (derl--term from) (derl--term to) (derl--term reason))
    (when (= op 3)
      (setf (derl-connection-links conn)
            (cl-remove (cons from to) (derl-connection-links conn)
                       :test #'equal)))
    (if (derl--peer-has conn derl--flag-exit-payload)
        (derl--request conn (vector payload-op from to) reason)
      (derl--request conn (vector op from to reason)))))

(defun erl-dist-exit (from to reason)
  "Send an exit signal with REASON from FROM to TO on a remote node.
This is the signal a linked process sends when it exits."
  (derl--send-exit 3 24 from to reason))

(defun erl-dist-exit2 (from to reason)
  "Send an `exit/2' signal with REASON from FROM to TO on a remote node."
  (derl--send-exit 8 26 from to reason))

;;;; Events

(defun derl--events-filter (_process _bytes)
  "Take every pending event from the module and handle it.
Processes that get messages run once for the whole batch."
  (erl-with-deferred-scheduling
    (dolist (event (derl--module-events
                    (eq erlext-decode-binaries-as 'erl-binary)
                    erlext-max-depth))
      (condition-case err
          (derl--handle-event event)
        (error (message "derl: error handling %S: %s" (car event)
                        (error-message-string err)))))))

(defun derl--handle-event (event)
  "Act on one EVENT from the module."
  (pcase event
    (`(frame ,id ,control . ,message)
     (let ((conn (gethash id derl--by-id)))
       (when conn
         (derl--dispatch conn control message))))
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
  "Handle CONTROL (with MESSAGE, a list of zero or one term) from CONN."
  (let ((op (aref control 0))
        (msg (car message)))
    (pcase op
      ((or 2 12 22 23)                  ; SEND, SEND_TT, SEND_SENDER(_TT)
       (let ((to (aref control 2)))
         (if (< op 20)
             (derl--trace conn 'input "SEND: %s %s" (derl--term to)
                          (derl--term msg))
           (derl--trace conn 'input "SEND_SENDER: %s %s %s"
                        (derl--term (aref control 1)) (derl--term to)
                        (derl--term msg)))
         (erl-send to msg)))
      ((or 6 16)                        ; REG_SEND(_TT)
       (let ((from (aref control 1))
             (name (aref control 3)))
         (derl--trace conn 'input "REG_SEND: %s %s %s" (derl--term from)
                      name (derl--term msg))
         (when (erl-whereis name)
           (erl-send name msg))))
      (1                                ; LINK
       (let ((from (aref control 1)) (to (aref control 2)))
         (derl--trace conn 'input "LINK: %s %s" (derl--term from)
                      (derl--term to))
         (if (erl-local-pid-alive-p to)
             (progn
               (cl-pushnew (cons to from) (derl-connection-links conn)
                           :test #'equal)
               (erl-add-link to from))
           ;; Linking to a dead process: it exits at once with noproc.
           (derl--request conn
                          (vector 3 to from 'noproc)))))
      ((or 4 35)                        ; UNLINK, UNLINK_ID
       (let* ((id (and (= op 35) (aref control 1)))
              (from (aref control (if id 2 1)))
              (to (aref control (if id 3 2))))
         (derl--trace conn 'input "%s: %s %s" (if id "UNLINK_ID" "UNLINK")
                      (derl--term from) (derl--term to))
         (setf (derl-connection-links conn)
               (cl-remove (cons to from) (derl-connection-links conn)
                          :test #'equal))
         (erl-remove-link to from)
         (when id
           (derl--request conn
                          (vector 36 id to from)))))
      (36 (derl--trace conn 'input "UNLINK_ID_ACK: %s" (aref control 1)))
      ((or 3 8 13 18 24 25 26 27)       ; EXIT, EXIT2 and their variants
       (let* ((from (aref control 1))
              (to (aref control 2))
              (reason (cond ((>= op 24) msg)
                            ((memq op '(13 18)) (aref control 4))
                            (t (aref control 3))))
              (exit2 (memq op '(8 18 26 27))))
         (derl--trace conn 'input "%s: %s %s %s" (if exit2 "EXIT2" "EXIT")
                      (derl--term from) (derl--term to) (derl--term reason))
         (unless exit2
           (setf (derl-connection-links conn)
                 (cl-remove (cons to from) (derl-connection-links conn)
                            :test #'equal)))
         (erl-send-exit from to reason (if exit2 'exit2 'link))))
      (19                               ; MONITOR_P
       (let ((from (aref control 1)) (target (aref control 2))
             (ref (aref control 3)))
         (derl--trace conn 'input "MONITOR_P: %s %s" (derl--term from)
                      (derl--term target))
         (let ((pid (if (symbolp target) (erl-whereis target) target)))
           (if (and pid (erl-local-pid-alive-p pid))
               (push (list pid from ref target) (derl-connection-monitors conn))
             (derl--monitor-exit conn target from ref 'noproc)))))
      (20                               ; DEMONITOR_P
       (let ((ref (aref control 3)))
         (derl--trace conn 'input "DEMONITOR_P: %s" (derl--term ref))
         (setf (derl-connection-monitors conn)
               (cl-remove ref (derl-connection-monitors conn)
                          :key #'cl-third :test #'equal))))
      ((or 21 28)                       ; (PAYLOAD_)MONITOR_P_EXIT
       (let ((from (aref control 1)) (to (aref control 2))
             (ref (aref control 3))
             (reason (if (= op 28) msg (aref control 4))))
         (derl--trace conn 'input "MONITOR_P_EXIT: %s %s %s" (derl--term from)
                      (derl--term to) (derl--term reason))
         (erl-send to (vector 'DOWN ref 'process from reason))))
      ((or 29 30)                       ; SPAWN_REQUEST: Emacs runs no Erlang
       (let ((req (aref control 1)) (from (aref control 2)))
         (derl--trace conn 'input "SPAWN_REQUEST: %s" (derl--term from))
         (derl--request conn
                        (vector 31 req from 0 'notsup))))
      ((or 31 32)                       ; SPAWN_REPLY
       (let ((req (aref control 1)) (to (aref control 2))
             (result (aref control 4)))
         (derl--trace conn 'input "SPAWN_REPLY: %s %s" (derl--term to)
                      (derl--term result))
         (erl-send to (vector 'spawn_reply req (aref control 3) result))))
      ((or 33 34)                       ; ALIAS_SEND: no aliases here
       (derl--trace conn 'input "ALIAS_SEND (dropped): %s"
                    (derl--term (aref control 2))))
      (7 (derl--trace conn 'input "GROUP_LEADER: %s %s"
                      (derl--term (aref control 1))
                      (derl--term (aref control 2))))
      (_ (derl--trace conn 'input "** ignored control message %s"
                      (derl--term control))))))

(defun derl--monitor-exit (conn target watcher ref reason)
  "Tell WATCHER on CONN's node that TARGET it monitored with REF is gone."
  (derl--trace conn 'output "MONITOR_P_EXIT: %s %s %s" (derl--term target)
               (derl--term watcher) (derl--term reason))
  (if (derl--peer-has conn derl--flag-exit-payload)
      (derl--request conn (vector 28 target watcher ref)
                     reason)
    (derl--request conn
                   (vector 21 target watcher ref reason))))

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

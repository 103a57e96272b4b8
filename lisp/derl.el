;;; derl.el --- Distributed Erlang: talk to Erlang and Elixir nodes  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;; Version: 0.1.0
;; URL: https://github.com/derl-el/derl
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
(require 'derl-tls)

;;;###autoload
(defgroup derl nil
  "Distributed Erlang for Emacs."
  :group 'languages
  :prefix "derl-")

(defcustom derl-cookie nil
  "The cookie for distributed Erlang connections, or nil.
When nil, the cookie is read from ~/.erlang.cookie.  The cookie is
never shown in messages or traces."
  :type '(choice (const :tag "Read ~/.erlang.cookie" nil) string))

(defcustom derl-node-cookies nil
  "Cookies for particular nodes, an alist of (NODE . COOKIE).
NODE is a symbol name@host, COOKIE a string.  Nodes not listed use
`derl-cookie'.  \\[erl-connect] with a prefix argument asks for
the cookie of one node and keeps it here for this session.  The
cookies are never shown in messages or traces."
  :type '(alist :key-type (symbol :tag "Node")
                :value-type (string :tag "Cookie")))

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

(defcustom derl-max-message-memory (* 512 1024 1024)
  "Most bytes of Lisp objects one incoming message may make in Emacs.
Decoded terms can take far more memory than their bytes on the wire
\(a map costs Emacs some 300 bytes, and 5 on the wire), so
`derl-max-message-size' alone does not bound them.  The module
estimates what a message will cost before it builds anything; a
message over this is not built: it is traced as lost, logged in
*erl-lost-msgs* and reported in *Messages*, and the connection stays
up.  0 or nil means no limit."
  :type '(choice (const :tag "No limit" nil) natnum))

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
  "The port EPMD listens on; as Erlang, honours ERL_EPMD_PORT.
A port number from 1 to 65535; anything else is refused with a
`derl-epmd-error' when it is used."
  :type '(integer :match (lambda (_ v) (and (integerp v) (<= 1 v 65535)))))

(defcustom derl-reconnect-min-delay 1.0
  "Seconds before a node whose connection attempt failed is tried again.
Meanwhile requests to it fail at once with the error of the last
attempt.  The delay doubles with each failure in a row, up to
`derl-reconnect-max-delay', and is forgotten once a connection
comes up.  `derl-connect' always tries at once."
  :type 'number)

(defcustom derl-reconnect-max-delay 30.0
  "The longest delay between attempts to connect to a failing node.
See `derl-reconnect-min-delay'."
  :type 'number)

(defcustom derl-wait-spin 100
  "Microseconds a wait for a reply polls before it sleeps.
When Emacs waits for an answer from a node (`derl-call', `erl-rpc'
and the event filter taking a reply to what it just sent), the
module first polls the connections without sleeping for this long,
once after each send: a reply that comes meanwhile costs no thread
wake-up, which on many machines is a round trip's largest cost.  A
wait that goes on longer sleeps, so an idle Emacs never spins.
0 never spins, for the least CPU time; at most 5000."
  :type '(natnum :match (lambda (_ v) (and (natnump v) (<= v 5000)))))

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
(define-error 'derl-busy "Too much queued for the node" 'derl-error)
(define-error 'derl-tls-error "TLS distribution failed" 'derl-connect-error)

(declare-function derl--module-start "derl-module" (process))
(declare-function derl--module-stop "derl-module" ())
(declare-function derl--module-connect "derl-module"
                  (alive host epmd-port cookie our-name creation options))
(declare-function derl--module-send "derl-module" (conn control &optional message))
(declare-function derl--module-close "derl-module" (conn))
(declare-function derl--module-events "derl-module"
                  (&optional lossless max-depth trace-length max-memory))
(declare-function derl-node--handle-event "derl-node" (event))

;;;; Trace buffers

(defalias 'derl--term #'derl-trace-term
  "A term printed for a trace line; see `derl-trace-term'.")

(defmacro derl--trace-terms (conn direction label &rest terms)
  "Log a line to CONN's trace buffer: DIRECTION `input' or `output'.
The line is LABEL, then TERMS printed as Erlang does, shortened;
they are not even evaluated while `derl-use-trace-buffer' is nil."
  (if (<= (length terms) 3)
      `(when derl-use-trace-buffer
         (derl-trace--line (derl-connection-node ,conn) ,direction ,label
                           ,(length terms) ,@terms))
    `(when derl-use-trace-buffer
       (derl-trace-line (derl-connection-node ,conn) ,direction ,label
                        ,@terms))))

(defvar derl--frame-text nil
  "What the module printed of the frame being handled, or nil.
The text of its trace line after the label, for a SEND, SEND_SENDER
or REG_SEND whose terms the module could print itself (see
`derl--trace-message').")

(defmacro derl--trace-message (conn label &rest terms)
  "Log the line LABEL TERMS of the incoming message handled now on CONN.
The module's text of it, `derl--frame-text', is used when there is
one; otherwise TERMS are printed as `derl--trace-terms' does."
  `(when derl-use-trace-buffer
     (if derl--frame-text
         (derl-trace--text-line (derl-connection-node ,conn) 'input ,label
                                derl--frame-text)
       (derl--trace-terms ,conn 'input ,label ,@terms))))

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
  (links (make-hash-table :test 'equal)
         :documentation "Links, as keys (LOCAL-PID . REMOTE-PID).")
  (monitors (make-hash-table :test 'equal)
            :documentation "The node's monitors of local processes, by
reference: (LOCAL-PID REMOTE-PID REF TARGET).")
  (failure nil :documentation "(KIND . REASON) when it went down.")
  (up-since nil :documentation "When it came up, as a `float-time'.")
  (incoming nil :documentation "Non-nil if the node connected to Emacs.")
  (unlink-id 0 :documentation "Last UNLINK_ID sent."))

(defvar derl--connections (make-hash-table :test 'eq)
  "Live connections by node symbol.")

(defvar derl--by-id (make-hash-table :test 'eql)
  "Live connections by module id.")

(defvar derl--events-process nil
  "The pipe process through which the I/O thread wakes Emacs.")

(defvar derl--sends 0
  "How many requests were sent, modulo fixnum overflow: a change tells.")

(defvar derl--event-handlers (make-hash-table :test 'eql)
  "Callbacks for EPMD queries, by query id: (ON-SUCCESS . ON-ERROR).")

;; Capability flags the senders look at.
(defconst derl--flag-send-sender #x80000)
(defconst derl--flag-exit-payload #x400000)
(defconst derl--flag-unlink-id #x2000000)

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
              (list (format "%s has a %s name but Emacs is %s, and the \
two kinds never connect: set `erl-node-name' to a %s name, such as %s@%s"
                            node (if long "long" "short") erl-node-name
                            (if long "long" "short")
                            (car (derl--split-node erl-node-name))
                            (if long host
                              (car (split-string host "\\.")))))))))

(defun derl--cookie (&optional node)
  "Return the cookie for NODE as bytes.
It comes from `derl-node-cookies', `derl-cookie' or ~/.erlang.cookie.
Those are the bytes Erlang digests: a cookie's characters as
Latin-1, the cookie file's bytes as they are."
  (let ((own (cdr (assq node derl-node-cookies))))
    (cond (own (derl--latin-1-cookie own))
          (derl-cookie (derl--latin-1-cookie derl-cookie))
          (t (derl--cookie-file (expand-file-name "~/.erlang.cookie"))))))

(defun derl--latin-1-cookie (cookie)
  "Return COOKIE, a string, as the Latin-1 bytes of Erlang's digest."
  (unless (stringp cookie)
    (signal 'derl-auth-error (list "`derl-cookie' must be a string or nil")))
  (if (not (multibyte-string-p cookie))
      (copy-sequence cookie)
    (when (cl-find-if (lambda (c) (and (> c 255) (< c #x3fff80))) cookie)
      (signal 'derl-auth-error
              (list "`derl-cookie' has characters beyond Latin-1, \
which an Erlang cookie cannot hold")))
    (encode-coding-string cookie 'latin-1)))

(defun derl--cookie-file (file)
  "The cookie in FILE, as bytes; refused, as Erlang does, unless private."
  (unless (file-readable-p file)
    (signal 'derl-auth-error
            (list (format "No cookie: set `derl-cookie' or create a \
readable %s" file))))
  (unless (zerop (logand (file-modes file) #o077))
    (signal 'derl-auth-error
            (list (format "%s must be accessible by its owner only, as \
Erlang requires: run chmod 400 %s" file file))))
  (with-temp-buffer
    (set-buffer-multibyte nil)
    (insert-file-contents-literally file)
    (string-trim (buffer-string))))

(defun derl--check-epmd-port ()
  "Signal `derl-epmd-error' unless `derl-epmd-port' is a port number."
  (unless (and (integerp derl-epmd-port) (<= 1 derl-epmd-port 65535))
    (signal 'derl-epmd-error
            (list (format "`derl-epmd-port' is %S, not a port number (1 to \
65535)%s"
                          derl-epmd-port
                          (if (getenv "ERL_EPMD_PORT")
                              (format "; ERL_EPMD_PORT is %S"
                                      (getenv "ERL_EPMD_PORT"))
                            ""))))))

(defun derl--ensure-started ()
  "Start the module's I/O thread and the event pipe, once."
  ;; The module first (it may have to be built): a failure leaves no
  ;; pipe without a thread.
  (derl-module-load)
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
        (progn (derl--check-backoff node)
               (derl--start-connection node)))))

(defvar derl--backoff (make-hash-table :test 'eq)
  "Nodes whose last connection attempts failed, with when to try again.
NODE -> (RETRY-TIME DELAY . CONNECTION), CONNECTION the last failed.")

(defun derl--check-backoff (node)
  "Signal the last failure to connect to NODE, until it may be tried again."
  (let ((entry (gethash node derl--backoff)))
    (when (and entry (< (float-time) (car entry)))
      (derl--signal-failure (cddr entry)))))

(defun derl--note-failure (conn)
  "Delay the next attempt to reach the node of CONN, which failed to connect."
  (let* ((node (derl-connection-node conn))
         (old (gethash node derl--backoff))
         (delay (if old
                    (min derl-reconnect-max-delay (* 2 (cadr old)))
                  derl-reconnect-min-delay)))
    (puthash node (cons (+ (float-time) delay) (cons delay conn))
             derl--backoff)))

(defun derl--start-connection (node)
  "Start connecting to NODE; return the connection."
  (when (eq node erl-node-name)
    (signal 'derl-connect-error
            (list (format "Node %s has the same name as Emacs" node))))
  (derl--check-epmd-port)
  (let* ((parts (derl--split-node node))
         (ours (cdr (derl--split-node erl-node-name)))
         (tls (derl-tls--module-options))
         (cookie (progn (derl--check-name-kinds node (cdr parts) ours)
                        (derl--cookie node))))
    (derl--ensure-started)
    (let* ((id (derl--module-connect
                (car parts) (cdr parts) derl-epmd-port cookie
                (symbol-name erl-node-name) erl-node-creation
                (list :ticktime-ms (round (* 1000 derl-net-ticktime))
                      :timeout-ms (round (* 1000 derl-connect-timeout))
                      :max-message-size derl-max-message-size
                      :max-send-queue derl-max-send-queue :tls tls)))
           (conn (derl--make-connection :node node :id id)))
      (clear-string cookie)
      (puthash node conn derl--connections)
      (puthash id conn derl--by-id)
      (derl--trace conn 'output "** connecting to %s%s" node
                   (if tls " over TLS" ""))
      conn)))

;;;; Distribution operations

;; The control messages' operation numbers, as Erlang's DOP_* names.
(defmacro derl--define-ops (&rest ops)
  "Define the constant derl--dop-NAME for each (NAME . NUMBER) of OPS."
  `(progn
     ,@(mapcar (lambda (op)
                 `(defconst ,(intern (format "derl--dop-%s" (car op)))
                    ,(cdr op)
                    ,(format "The distribution operation DOP_%s."
                             (upcase (string-replace
                                      "-" "_" (symbol-name (car op)))))))
               ops)))

(derl--define-ops
  (link . 1) (send . 2) (exit . 3) (unlink . 4) (reg-send . 6)
  (group-leader . 7) (exit2 . 8) (send-tt . 12) (exit-tt . 13)
  (reg-send-tt . 16) (exit2-tt . 18) (monitor-p . 19) (demonitor-p . 20)
  (monitor-p-exit . 21) (send-sender . 22) (send-sender-tt . 23)
  (payload-exit . 24) (payload-exit-tt . 25) (payload-exit2 . 26)
  (payload-exit2-tt . 27) (payload-monitor-p-exit . 28) (spawn-request . 29)
  (spawn-request-tt . 30) (spawn-reply . 31) (spawn-reply-tt . 32)
  (alias-send . 33) (alias-send-tt . 34) (unlink-id . 35)
  (unlink-id-ack . 36))

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

(declare-function derl-read-connect-arguments "derl-commands" (ask-cookie))
(declare-function derl-connect-interactively "derl-commands" (node))

;;;###autoload
(defun erl-connect (node)
  "Connect to NODE asynchronously.
When the connection is up `erl-nodeup-hook' runs; when it fails, or
goes down later, `erl-nodedown-hook' runs.  Return the connection.

Interactively, read NODE with completion of the names EPMD knows on
this host and on `derl-epmd-hosts', wait for the connection and say
in the echo area how it went.  With a prefix argument, also read a
cookie for NODE alone (see `derl-node-cookies')."
  (interactive (derl-read-connect-arguments current-prefix-arg))
  (if (called-interactively-p 'interactive)
      (derl-connect-interactively node)
    (derl--connection node)))

;;;###autoload
(defun derl-connect (node &optional timeout)
  "Connect to NODE and wait until it is up; return the connection.
Wait at most TIMEOUT seconds (default `derl-connect-timeout' plus a
second).  Signal `derl-epmd-error', `derl-connect-error',
`derl-auth-error', `derl-protocol-error' or `derl-timeout' when it
cannot be done.  Interactively, read NODE as `erl-connect' does."
  (interactive (derl-read-connect-arguments current-prefix-arg))
  (setq node (derl--node-symbol node))
  (remhash node derl--backoff)
  (let ((conn (derl--connection node))
        (settled nil))
    (unwind-protect
        (progn
          (derl--wait (lambda ()
                        (not (eq (derl-connection-state conn) 'connecting)))
                      (or timeout (1+ derl-connect-timeout))
                      (format "connecting to %s" node))
          (setq settled t))
      ;; Stopped waiting (a timeout, C-g, `with-timeout'): leave no
      ;; attempt behind for later calls to join with stale settings.
      (unless settled
        (derl--abandon conn)))
    (if (eq (derl-connection-state conn) 'up)
        (progn (when (called-interactively-p 'interactive)
                 (message "Connected to %s" node))
               conn)
      (derl--signal-failure conn))))

;;;###autoload
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

(defun derl--abandon (conn)
  "Give up the attempt of CONN to connect, if it is still under way."
  (when (eq (derl-connection-state conn) 'connecting)
    (derl--module-close (derl-connection-id conn))
    (derl--nodedown conn 'local "connection attempt abandoned")))

(defun derl--failure-condition (conn)
  "The error condition, (ERROR-SYMBOL . DATA), that took CONN down."
  (let* ((failure (derl-connection-failure conn))
         (kind (car failure))
         (reason (format "%s: %s" (derl-connection-node conn) (cdr failure))))
    (list (pcase kind
            ((or 'epmd 'not-registered) 'derl-epmd-error)
            ('auth 'derl-auth-error)
            ((or 'protocol 'too-large) 'derl-protocol-error)
            ('timeout 'derl-timeout)
            ('name-in-use 'derl-connect-error)
            ('tls 'derl-tls-error)
            (_ 'derl-connect-error))
          reason)))

(defun derl--signal-failure (conn)
  "Signal the error that took CONN down."
  (let ((condition (derl--failure-condition conn)))
    (signal (car condition) (cdr condition))))

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

(defun derl--self ()
  "The current process, or the null pid outside one."
  (or erl-self erl-null-pid))

(defun derl--request (conn control &rest message)
  "Send CONTROL, and MESSAGE when given, on CONN.
CONN comes from `derl--connection', which connects first if needed;
the module queues what is sent before the node is up."
  (setq derl--sends (1+ derl--sends))
  (apply #'derl--module-send (derl-connection-id conn) control message))

(defun derl--peer-has (conn flag)
  "Return non-nil if CONN is up and its node has capability FLAG."
  (and (eq (derl-connection-state conn) 'up)
       (/= 0 (logand (derl-connection-flags conn) flag))))

(defun erl-dist-send (pid msg)
  "Send MSG to PID, a process on a remote node."
  (derl--send-over (derl--connection (erl-pid-node pid)) pid msg))

(defun derl--send-over (conn pid msg)
  "Send MSG to PID, a process of CONN's node, over CONN.
As SEND_SENDER, from the current process, where the node takes it."
  (if (derl--peer-has conn derl--flag-send-sender)
      (progn
        (derl--request conn (vector derl--dop-send-sender (derl--self) pid)
                       msg)
        (derl--trace-terms conn 'output "SEND_SENDER:" (derl--self) pid msg))
    (derl--request conn (vector derl--dop-send erlext-empty-symbol pid)
                   msg)
    (derl--trace-terms conn 'output "SEND:" pid msg)))

(defun erl-dist-reg-send (node name msg)
  "Send MSG to the process registered as NAME on NODE."
  (let ((conn (derl--connection node)))
    (derl--request conn (vector derl--dop-reg-send (derl--self)
                                erlext-empty-symbol name)
                   msg)
    (derl--trace-terms conn 'output "REG_SEND:" (derl--self) name msg)))

(defun erl-dist-link (pid)
  "Link the current process with PID on a remote node."
  (let ((conn (derl--connection (erl-pid-node pid)))
        (self (derl--self)))
    (derl--request conn (vector derl--dop-link self pid))
    (puthash (cons self pid) t (derl-connection-links conn))
    (derl--trace-terms conn 'output "LINK:" self pid)))

(defun erl-dist-unlink (pid)
  "Remove the link between the current process and PID on a remote node.
A node without the new link protocol (before Erlang/OTP 23.3) gets
the old UNLINK; any other UNLINK_ID, which it acknowledges."
  (let* ((conn (derl--connection (erl-pid-node pid)))
         (self (derl--self)))
    (if (or (not (eq (derl-connection-state conn) 'up))
            (derl--peer-has conn derl--flag-unlink-id))
        (let ((id (cl-incf (derl-connection-unlink-id conn))))
          (derl--request conn (vector derl--dop-unlink-id id self pid))
          (derl--trace-terms conn 'output "UNLINK_ID:" id self pid))
      (derl--request conn (vector derl--dop-unlink self pid))
      (derl--trace-terms conn 'output "UNLINK:" self pid))
    (derl--forget-link conn self pid)))

(defun derl--send-exit (conn op payload-op from to reason)
  "Send an exit signal FROM to TO with REASON over CONN: as OP, or PAYLOAD-OP."
  (if (derl--peer-has conn derl--flag-exit-payload)
      (derl--request conn (vector payload-op from to) reason)
    (derl--request conn (vector op from to reason)))
  (when (= op derl--dop-exit)
    (derl--forget-link conn from to))
  (derl--trace-terms conn 'output
                     (if (= op derl--dop-exit) "EXIT:" "EXIT2:")
                     from to reason))

(defun erl-dist-exit (from to reason)
  "Send an exit signal with REASON from FROM to TO on a remote node.
This is the signal a linked process sends when it exits.  A link
lives only as long as the connection to TO's node: with that
connection down there is no link left, and nothing is sent (the node
is never dialled for it)."
  (let ((conn (gethash (erl-pid-node to) derl--connections)))
    (when (and conn (derl--live-p conn))
      (derl--send-exit conn derl--dop-exit derl--dop-payload-exit
                       from to reason))))

(defun erl-dist-exit2 (from to reason)
  "Send an `exit/2' signal with REASON from FROM to TO on a remote node."
  (derl--send-exit (derl--connection (erl-pid-node to))
                   derl--dop-exit2 derl--dop-payload-exit2 from to reason))

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
    (`(frame ,id ,control . ,message)
     ;; No text: not even that of a frame handled further out.
     (derl--handle-frame id nil control (car message)))
    (`(traced-frame ,id ,text ,control . ,message)
     (derl--handle-frame id text control (car message)))
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
    ;; Emacs as a listening node: derl-node.el.
    (`(,(or 'listening 'accepted 'refused 'merged) . ,_)
     (derl-node--handle-event event))))

(defun derl--handle-frame (id text control message)
  "Dispatch CONTROL and MESSAGE, which came over connection ID.
TEXT is what the module printed of the frame's trace line, or nil."
  (let ((conn (gethash id derl--by-id))
        (derl--frame-text text))
    (when conn
      (derl--dispatch conn control message))))

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
    ;; Local processes linked to the node get `noconnection'; nothing
    ;; goes back to it (`erl-dist-exit' sends nothing over a dead
    ;; connection).
    (dolist (link (hash-table-keys (derl-connection-links conn)))
      (erl-send-exit (cdr link) (car link) 'noconnection 'link))
    (clrhash (derl-connection-links conn))
    (maphash (lambda (_ref monitor) (derl--unindex-monitor conn monitor))
             (derl-connection-monitors conn))
    (clrhash (derl-connection-monitors conn))
    (derl--run-hook-quittably 'erl-nodedown-hook node)))

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

;;;; Handlers of incoming operations

;; A peer may only address Emacs's own processes, and only on behalf
;; of its own: a signal to a pid of any other node, or claiming to come
;; from one, is dropped with a trace line.  Emacs never relays, and
;; never dials a node because a peer named it.

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

(defun derl--live-p (conn)
  "Return non-nil if CONN is up and still its node's connection."
  (and (eq (derl-connection-state conn) 'up)
       (eq (gethash (derl-connection-node conn) derl--connections) conn)))

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

(derl--define-op-handler derl--on-send
    (derl--dop-send derl--dop-send-tt
     derl--dop-send-sender derl--dop-send-sender-tt)
    (conn op control msg)
  "SEND and SEND_SENDER (OP) on CONN: deliver MSG as CONTROL says."
  (let ((to (aref control 2))
        (what (if (or (= op derl--dop-send) (= op derl--dop-send-tt))
                  "SEND" "SEND_SENDER")))
    (when (and (derl--check-signal conn what
                                   (and (equal what "SEND_SENDER")
                                        (aref control 1))
                                   to)
               (derl--deliver conn what to msg))
      (if (equal what "SEND")
          (derl--trace-message conn "SEND:" to msg)
        (derl--trace-message conn "SEND_SENDER:" (aref control 1) to
                             msg)))))

(derl--define-op-handler derl--on-reg-send
    (derl--dop-reg-send derl--dop-reg-send-tt)
    (conn _op control msg)
  "REG_SEND on CONN: deliver MSG to the name CONTROL gives."
  (let ((from (aref control 1))
        (name (aref control 3)))
    (cond ((not (and name (symbolp name)))
           (derl--drop conn "REG_SEND" (format "%s is not a name"
                                               (derl-trace-term name))))
          ((not (derl--check-signal conn "REG_SEND" from erl-null-pid)))
          ((derl--deliver conn "REG_SEND" name msg)
           (derl--trace-message conn "REG_SEND:" from name msg)))))

(derl--define-op-handler derl--on-link (derl--dop-link)
    (conn _op control _msg)
  "LINK on CONN: a remote process links with a local one, per CONTROL."
  (let ((from (aref control 1)) (to (aref control 2)))
    (when (derl--check-signal conn "LINK" from to)
      (derl--trace-terms conn 'input "LINK:" from to)
      (let ((refusal (cond ((not (erl-local-pid-alive-p to))
                            ;; Linking to a dead process: it exits at
                            ;; once with noproc.
                            'noproc)
                           ((not (derl--add-link conn to from))
                            'system_limit))))
        (if (not refusal)
            (erl-add-link to from)
          (derl--request conn (vector derl--dop-exit to from refusal))
          (derl--trace-terms conn 'output "EXIT:" to from refusal))))))

(derl--define-op-handler derl--on-unlink
    (derl--dop-unlink derl--dop-unlink-id)
    (conn op control _msg)
  "UNLINK and UNLINK_ID (OP) on CONN, as CONTROL says."
  (let* ((id (and (= op derl--dop-unlink-id) (aref control 1)))
         (what (if id "UNLINK_ID" "UNLINK"))
         (from (aref control (if id 2 1)))
         (to (aref control (if id 3 2))))
    (when (derl--check-signal conn what from to)
      (derl--forget-link conn to from)
      (erl-remove-link to from)
      (when id
        (derl--request conn (vector derl--dop-unlink-id-ack id to from)))
      (derl--trace-terms conn 'input (concat what ":") from to))))

(derl--define-op-handler derl--on-unlink-id-ack (derl--dop-unlink-id-ack)
    (conn _op control _msg)
  "UNLINK_ID_ACK on CONN: trace CONTROL."
  (derl--trace-terms conn 'input "UNLINK_ID_ACK:" (aref control 1)))

(derl--define-op-handler derl--on-exit
    (derl--dop-exit derl--dop-exit-tt derl--dop-exit2 derl--dop-exit2-tt
     derl--dop-payload-exit derl--dop-payload-exit-tt
     derl--dop-payload-exit2 derl--dop-payload-exit2-tt)
    (conn op control msg)
  "EXIT, EXIT2 and their variants (OP) on CONN, per CONTROL and MSG."
  (let* ((from (aref control 1))
         (to (aref control 2))
         (reason (cond ((>= op derl--dop-payload-exit) msg)
                       ((or (= op derl--dop-exit-tt) (= op derl--dop-exit2-tt))
                        (aref control 4))
                       (t (aref control 3))))
         (exit2 (memq op (list derl--dop-exit2 derl--dop-exit2-tt
                               derl--dop-payload-exit2
                               derl--dop-payload-exit2-tt)))
         (what (if exit2 "EXIT2" "EXIT")))
    (when (derl--check-signal conn what from to)
      (unless exit2
        (derl--forget-link conn to from))
      (erl-send-exit from to reason (if exit2 'exit2 'link))
      (derl--trace-terms conn 'input (concat what ":") from to reason))))

(derl--define-op-handler derl--on-monitor (derl--dop-monitor-p)
    (conn _op control _msg)
  "MONITOR_P on CONN: a remote process monitors a local one, per CONTROL."
  (let* ((from (aref control 1)) (target (aref control 2))
         (ref (aref control 3))
         (pid (if (and target (symbolp target)) (erl-whereis target) target)))
    (when (derl--check-signal conn "MONITOR_P" from
                              (if (symbolp target) erl-null-pid target))
      (derl--trace-terms conn 'input "MONITOR_P:" from target)
      (cond ((not (and pid (erl-local-pid-alive-p pid)))
             (derl--monitor-exit conn target from ref 'noproc))
            ((not (derl--add-monitor conn (list pid from ref target)))
             (derl--monitor-exit conn target from ref 'system_limit))))))

(derl--define-op-handler derl--on-demonitor (derl--dop-demonitor-p)
    (conn _op control _msg)
  "DEMONITOR_P on CONN: forget the monitor CONTROL names."
  (let* ((ref (aref control 3))
         (monitor (gethash ref (derl-connection-monitors conn))))
    ;; Only a monitor of the node's own process: a reference is no secret.
    (when (and monitor (equal (nth 1 monitor) (aref control 1)))
      (derl--forget-monitor conn monitor))
    (derl--trace-terms conn 'input "DEMONITOR_P:" ref)))

(derl--define-op-handler derl--on-monitor-exit
    (derl--dop-monitor-p-exit derl--dop-payload-monitor-p-exit)
    (conn op control msg)
  "MONITOR_P_EXIT (OP) on CONN: a monitored remote process is gone."
  (let ((from (aref control 1)) (to (aref control 2))
        (ref (aref control 3))
        (reason (if (= op derl--dop-payload-monitor-p-exit) msg
                  (aref control 4))))
    (when (and (derl--check-signal conn "MONITOR_P_EXIT" from to)
               (derl--deliver conn "MONITOR_P_EXIT" to
                              (vector 'DOWN ref 'process from reason)))
      (derl--trace-terms conn 'input "MONITOR_P_EXIT:" from to reason))))

(derl--define-op-handler derl--on-spawn-request
    (derl--dop-spawn-request derl--dop-spawn-request-tt)
    (conn _op control _msg)
  "SPAWN_REQUEST on CONN: refused, as Emacs runs no Erlang code."
  (let ((req (aref control 1)) (from (aref control 2)))
    (derl--request conn (vector derl--dop-spawn-reply req from 0 'notsup))
    (derl--trace-terms conn 'input "SPAWN_REQUEST:" from)))

(derl--define-op-handler derl--on-spawn-reply
    (derl--dop-spawn-reply derl--dop-spawn-reply-tt)
    (conn _op control _msg)
  "SPAWN_REPLY on CONN: hand the result in CONTROL to the requester."
  (let ((req (aref control 1)) (to (aref control 2))
        (result (aref control 4)))
    (when (and (derl--check-signal conn "SPAWN_REPLY" nil to)
               (derl--deliver conn "SPAWN_REPLY" to
                              (vector 'spawn_reply req (aref control 3)
                                      result)))
      (derl--trace-terms conn 'input "SPAWN_REPLY:" to result))))

(derl--define-op-handler derl--on-alias-send
    (derl--dop-alias-send derl--dop-alias-send-tt)
    (conn _op control _msg)
  "ALIAS_SEND on CONN: Emacs has no aliases, so it is dropped."
  (derl--drop conn "ALIAS_SEND" (format "no alias %s here"
                                        (derl-trace-term (aref control 2)))))

(derl--define-op-handler derl--on-group-leader (derl--dop-group-leader)
    (conn _op control _msg)
  "GROUP_LEADER on CONN: traced only."
  (derl--trace-terms conn 'input "GROUP_LEADER:" (aref control 1)
                     (aref control 2)))

;;;; Monitors of local processes

(defun derl--monitor-exit (conn target watcher ref reason)
  "Tell WATCHER on CONN's node that TARGET it monitored with REF is gone."
  (if (derl--peer-has conn derl--flag-exit-payload)
      (derl--request conn (vector derl--dop-payload-monitor-p-exit
                                  target watcher ref)
                     reason)
    (derl--request conn (vector derl--dop-monitor-p-exit target watcher ref
                                reason)))
  (derl--trace-terms conn 'output "MONITOR_P_EXIT:" target watcher reason))

(defvar derl--monitored (make-hash-table :test 'equal)
  "The monitors other nodes hold on local processes, by local pid.
Each value is a table MONITOR -> CONNECTION, MONITOR as kept in the
connection's monitors (see `derl-connection').")

(defcustom derl-max-links 100000
  "Most links the processes of one node may have with Emacs's processes.
A link asked for past it is refused at once: the asking process gets
an exit signal with the reason `system_limit', and the trace says
so.  Links and monitors are kept in hash tables, so each costs the
same however many there are.  0 means no limit."
  :type 'natnum
  :group 'derl)

(defcustom derl-max-monitors 100000
  "Most monitors the processes of one node may hold on Emacs's processes.
Past it, a monitor asked for fires at once with the reason
`system_limit', and the trace says so.  0 means no limit."
  :type 'natnum
  :group 'derl)

(defun derl--over-limit-p (conn table limit what)
  "Return non-nil, with a trace line, if TABLE of CONN is full at LIMIT.
WHAT names the table's entries for the trace."
  (when (and (natnump limit) (> limit 0)
             (>= (hash-table-count table) limit))
    (derl--trace conn 'input "** refused a %s: %s holds %d already (`derl-max-%ss')"
                 what (derl-connection-node conn) limit what)
    t))

(defun derl--add-link (conn local remote)
  "Note the link of LOCAL with REMOTE over CONN; nil if over the limit."
  (let ((links (derl-connection-links conn))
        (key (cons local remote)))
    (or (gethash key links)
        (and (not (derl--over-limit-p conn links derl-max-links "link"))
             (puthash key t links)))))

(defun derl--forget-link (conn local remote)
  "Forget the link of LOCAL with REMOTE over CONN."
  (remhash (cons local remote) (derl-connection-links conn)))

(defun derl--add-monitor (conn monitor)
  "Keep MONITOR, (LOCAL-PID REMOTE-PID REF TARGET), of CONN's node.
Return nil if over the limit."
  (let ((monitors (derl-connection-monitors conn)))
    (unless (derl--over-limit-p conn monitors derl-max-monitors "monitor")
      (puthash (nth 2 monitor) monitor monitors)
      (let ((by-pid (or (gethash (car monitor) derl--monitored)
                        (puthash (car monitor) (make-hash-table :test 'eq)
                                 derl--monitored))))
        (puthash monitor conn by-pid))
      t)))

(defun derl--unindex-monitor (conn monitor)
  "Remove MONITOR of CONN's node from `derl--monitored'."
  (ignore conn)
  (let ((by-pid (gethash (car monitor) derl--monitored)))
    (when by-pid
      (remhash monitor by-pid)
      (when (zerop (hash-table-count by-pid))
        (remhash (car monitor) derl--monitored)))))

(defun derl--forget-monitor (conn monitor)
  "Forget MONITOR of CONN's node."
  (remhash (nth 2 monitor) (derl-connection-monitors conn))
  (derl--unindex-monitor conn monitor))

(defun derl--local-exit (pid reason)
  "Local process PID exited with REASON: fire the remote monitors on it.
Its links were dissolved by the exit signals it sent."
  (let ((by-pid (gethash pid derl--monitored)))
    (when by-pid
      (remhash pid derl--monitored)
      (maphash (lambda (monitor conn)
                 (remhash (nth 2 monitor) (derl-connection-monitors conn))
                 (when (derl--live-p conn)
                   (derl--monitor-exit conn (nth 3 monitor) (nth 1 monitor)
                                       (nth 2 monitor) reason)))
               by-pid)))
  (remhash (aref pid 3) derl--receivers))

(add-hook 'erl-process-exit-functions #'derl--local-exit)

(provide 'derl)

;; The rest of the API: RPC, monitors, spawn and aliases, output.
;; Their handlers of incoming operations replace the ones above.
(require 'derl-monitor)
(require 'derl-spawn)
(require 'derl-rpc)
(require 'derl-io)
;; The commands, so that loading derl is all a user needs.
(require 'derl-commands)
(require 'derl-list)
(require 'derl-eval)
(require 'derl-node)
(require 'derl-distel)
(require 'derl-shell)
(require 'derl-mode)
(require 'derl-knowledge)

;;; derl.el ends here

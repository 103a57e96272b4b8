;;; derl-options.el --- derl's user options, hooks and error conditions  -*- lexical-binding: t; -*-

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

;; The settings of connections (cookies, tick time, timeouts, limits on
;; messages, queues, links and monitors, EPMD's port, reconnection and
;; waiting), the hooks that say when a node comes up and goes down, and
;; the error conditions the connection functions signal.

;;; Code:

(require 'erlext)

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

(provide 'derl-options)

;;; derl-options.el ends here

;;; derl-conn.el --- connections to nodes: their record and what goes out on them  -*- lexical-binding: t; -*-

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

;; A connection's record, the tables of live connections, node names,
;; trace lines, the back-off after failed attempts and the errors they
;; become, and sending: a control message (and a message) queued in the
;; module for one connection.  Nothing here waits or handles events.

;;; Code:

(require 'cl-lib)
(require 'subr-x)
(require 'erlext)
(require 'erl)
(require 'derl-trace)
(require 'derl-options)
(require 'derl-ops)

(declare-function derl--module-send "derl-module" (conn control &optional message))

;;;; Trace lines

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
  "Where what the module printed of the frame being handled ends, or nil.
The text of its trace line after the label, for a SEND, SEND_SENDER
or REG_SEND whose terms the module could print itself (see
`derl--trace-message'), is in the buffer `derl--frame-texts', from
`derl--frame-text-start' to this position.")

(defvar derl--frame-text-start nil
  "Where the text of `derl--frame-text' begins.")

(defvar derl--frame-texts nil
  "The buffer that holds the texts of the frames being handled.")

(defmacro derl--trace-message (conn label &rest terms)
  "Log the line LABEL TERMS of the incoming message handled now on CONN.
The module's text of it, `derl--frame-text', is used when there is
one; otherwise TERMS are printed as `derl--trace-terms' does."
  `(when derl-use-trace-buffer
     (if derl--frame-text
         (derl-trace--span-line (derl-connection-node ,conn) 'input ,label
                                derl--frame-texts derl--frame-text-start
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

(defvar derl--sends 0
  "How many requests were sent, modulo fixnum overflow: a change tells.")

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

(defun derl--live-p (conn)
  "Return non-nil if CONN is up and still its node's connection."
  (and (eq (derl-connection-state conn) 'up)
       (eq (gethash (derl-connection-node conn) derl--connections) conn)))

;;;; Sending

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

(provide 'derl-conn)

;;; derl-conn.el ends here

;;; derl-spawn.el --- Spawning across nodes, and group leaders set remotely  -*- lexical-binding: t; -*-

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

;; Emacs spawns processes on other nodes with SPAWN_REQUEST, as
;; erlang:spawn_request/5 does:
;;
;;   (erl-spawn-remote NODE M F A &optional OPTS)
;;       returns a request reference REQ at once; the current process
;;       later gets [spawn_reply REQ ok PID] or [spawn_reply REQ error
;;       REASON].  OPTS may hold `link' (the new process is linked
;;       with the caller) and `monitor' (the caller monitors it, with
;;       REQ as the monitor's reference), and other spawn options.
;;   (derl-spawn NODE M F A &optional OPTS TIMEOUT)
;;       waits for the pid and returns it.
;;
;; Other nodes may only spawn in Emacs what the user allows: an
;; incoming SPAWN_REQUEST for {emacs, F, Arity} starts an Emacs process
;; calling F with the arguments when F is in
;; `derl-spawn-allowed-functions'; every other request is refused with
;; `notsup'.
;;
;; A GROUP_LEADER signal sets the group leader of a local process.

;;; Code:

(require 'cl-lib)
(require 'erl)
(require 'derl-options)
(require 'derl-ops)
(require 'derl-conn)
(require 'derl-events)
(require 'derl-connect)
(require 'derl-deliver)
(require 'derl-links)
(require 'derl-monitor)

(define-error 'derl-spawn-error "Remote spawn failed" 'derl-error)

(defcustom derl-spawn-allowed-functions nil
  "Functions other nodes may start Emacs processes with, by SPAWN_REQUEST.
A request for {emacs, F, Arity} is granted when F is in this list:
an Emacs process then calls F with the request's arguments.  Every
other request is refused with `notsup'.  Empty by default: a node
must not make Emacs run arbitrary Lisp."
  :type '(repeat function)
  :group 'derl)

(defvar derl-spawn--requests (make-hash-table :test 'equal)
  "Spawn requests waiting for their reply: REQ -> (PID NODE OPTS).")

(defconst derl-spawn--flag-link 1 "SPAWN_REPLY flag: the link is set up.")
(defconst derl-spawn--flag-monitor 2 "SPAWN_REPLY flag: the monitor is.")

;;;; Spawning on other nodes

(defun erl-spawn-remote (node module function args &optional opts)
  "Start MODULE:FUNCTION(ARGS...) on NODE; return the request's reference.
The current process gets [spawn_reply REQ ok PID] when the process
started, or [spawn_reply REQ error REASON].  OPTS is a list of spawn
options: `link' links the new process with the current one,
`monitor' makes the current one monitor it (REQ is then the
monitor's reference, see `erl-monitor'); others go to the node as
they are, e.g. [priority high]."
  (let* ((node (derl--node-symbol node))
         (conn (derl--connection node))
         (self (derl--self))
         (req (erl-make-ref)))
    (puthash req (list self node opts) derl-spawn--requests)
    (derl--request conn (vector derl--dop-spawn-request req self
                                (erl-group-leader)
                                (vector module function (length args))
                                opts)
                   args)
    (derl--trace conn 'output "SPAWN_REQUEST: %s %s:%s/%d %s"
                 (derl-trace-term self) module function (length args)
                 (derl-trace-term opts))
    req))

(derl--define-op-handler derl-spawn--on-reply
    (derl--dop-spawn-reply derl--dop-spawn-reply-tt)
    (conn _op control _msg)
  "SPAWN_REPLY on CONN: tell the requester what became of its request.
CONTROL holds the request, the requester, the flags and the result."
  (let* ((req (aref control 1)) (to (aref control 2))
         (flags (aref control 3)) (result (aref control 4))
         (pending (gethash req derl-spawn--requests)))
    (cond
     ((not (derl--check-signal conn "SPAWN_REPLY" nil to)))
     ((not (and pending (equal (car pending) to)
                (eq (nth 1 pending) (derl-connection-node conn))
                (integerp flags)))
      (derl--drop conn "SPAWN_REPLY" (format "no request %s"
                                             (derl-trace-term req))))
     (t
      (remhash req derl-spawn--requests)
      (derl--trace conn 'input "SPAWN_REPLY: %s %s" (derl-trace-term to)
                   (derl-trace-term result))
      (if (not (and (erl-pid-p result)
                    (eq (erl-pid-node result) (derl-connection-node conn))))
          (derl--deliver conn "SPAWN_REPLY" to
                         (vector 'spawn_reply req 'error result))
        (when (/= 0 (logand flags derl-spawn--flag-link))
          (derl--add-link conn to result)
          (erl-add-link to result))
        (when (/= 0 (logand flags derl-spawn--flag-monitor))
          (puthash req (derl-monitor--make :watcher to :target result
                                           :object result
                                           :node (erl-pid-node result))
                   derl-monitor--entries))
        (derl--deliver conn "SPAWN_REPLY" to
                       (vector 'spawn_reply req 'ok result)))))))

(defun derl-spawn (node module function args &optional opts timeout)
  "Start MODULE:FUNCTION(ARGS...) on NODE and return the new pid.
OPTS are spawn options for the node (see `erl-spawn-remote'; `link'
and `monitor' would apply to a short-lived helper, and are
refused).  Wait at most TIMEOUT seconds (default
`derl-connect-timeout'); signal `derl-spawn-error' with the node's
reason when it cannot spawn, or `derl-timeout'."
  (when (or (memq 'link opts) (memq 'monitor opts))
    (signal 'derl-argument-error
            (list "Use `erl-spawn-remote' from a process to link or monitor")))
  (let* ((node (derl--node-symbol node))
         (wait (list nil nil node))
         (pid (derl--make-receiver #'derl-spawn--take-reply wait)))
    (unwind-protect
        (let ((erl-self pid)
              (erl-in-scheduler-loop nil))
          (setcar (cdr wait) (erl-spawn-remote node module function args opts))
          (derl--wait (lambda () (car wait))
                      (or timeout (1+ derl-connect-timeout))
                      (format "spawning %s:%s/%d on %s" module function
                              (length args) node)))
      (derl--forget-receiver pid)
      (remhash (cadr wait) derl-spawn--requests))
    (let ((outcome (car wait)))
      (if (eq (car outcome) 'ok)
          (cadr outcome)
        (signal 'derl-spawn-error
                (list (format "%s:%s/%d on %s: %s" module function
                              (length args) node (cadr outcome))
                      (cadr outcome)))))))

(defun derl-spawn--take-reply (wait message conn)
  "Take MESSAGE, sent over CONN, if it answers the spawn request of WAIT.
WAIT is (OUTCOME REQ NODE): the reply must come from NODE and carry
REQ; then OUTCOME becomes (STATUS RESULT).  Anything else is not
taken, and is logged as lost."
  (pcase message
    (`[spawn_reply ,req ,status ,result]
     (when (and (null (car wait))
                (equal req (cadr wait))
                (eq (derl-connection-node conn) (nth 2 wait)))
       (setcar wait (list status result))
       t))))

;;;; Spawn requests from other nodes

(defun derl-spawn--allowed-p (mfa args)
  "Return the function to run for the request MFA with ARGS, or nil."
  (pcase mfa
    (`[emacs ,(and (pred symbolp) function) ,arity]
     (and (memq function derl-spawn-allowed-functions)
          (fboundp function)
          (eql arity (length args))
          function))))

(derl--define-op-handler derl-spawn--on-request
    (derl--dop-spawn-request derl--dop-spawn-request-tt)
    (conn _op control msg)
  "SPAWN_REQUEST on CONN: start an allowed function, or refuse with notsup.
CONTROL holds the request; MSG the argument list."
  (let* ((req (aref control 1)) (from (aref control 2))
         (leader (aref control 3)) (mfa (aref control 4))
         (opts (aref control 5))
         ;; A list of small integers arrives as a string.
         (args (if (stringp msg) (append msg nil) msg))
         (function (and (listp args) (listp opts)
                        (derl-spawn--allowed-p mfa args))))
    (when (derl--check-signal conn "SPAWN_REQUEST" from erl-null-pid)
      (derl--trace conn 'input "SPAWN_REQUEST: %s %s" (derl-trace-term from)
                   (derl-trace-term mfa))
      (if (not function)
          (derl--request conn (vector derl--dop-spawn-reply req from 0
                                      'notsup))
        (let* ((erl-group-leader (and (erl-pid-p leader) leader))
               (pid (erl-spawn-async (apply function args)))
               (flags 0))
          (when (memq 'link opts)
            (derl--add-link conn pid from)
            (erl-add-link pid from)
            (setq flags (logior flags derl-spawn--flag-link)))
          (when (memq 'monitor opts)
            (derl--add-monitor conn (list pid from req pid))
            (setq flags (logior flags derl-spawn--flag-monitor)))
          (derl--request conn (vector derl--dop-spawn-reply req from flags
                                      pid)))))))

;;;; Group leaders

(derl--define-op-handler derl-spawn--on-group-leader (derl--dop-group-leader)
    (conn _op control _msg)
  "GROUP_LEADER on CONN: set a local process's group leader, per CONTROL.
The new leader must be a process of CONN's node or of this Emacs."
  (let ((leader (aref control 1)) (pid (aref control 2)))
    (cond ((not (and (erl-pid-p leader)
                     (memq (erl-pid-node leader)
                           (list (derl-connection-node conn) erl-node-name))))
           (derl--drop conn "GROUP_LEADER"
                       (format "%s is not a process of %s or of Emacs"
                               (derl-trace-term leader)
                               (derl-connection-node conn))))
          ((not (derl--check-signal conn "GROUP_LEADER" nil pid)))
          ((not (erl-local-pid-alive-p pid))
           (derl--drop conn "GROUP_LEADER" (format "no process %s"
                                                   (derl-trace-pid pid))))
          (t
           (with-current-buffer (erl-pid->buffer pid)
             (setq erl-group-leader leader))
           (derl--trace conn 'input "GROUP_LEADER: %s %s"
                        (derl-trace-term leader) (derl-trace-term pid))))))

(provide 'derl-spawn)

;;; derl-spawn.el ends here

;;; derl-monitor.el --- Monitors, node monitors and aliases  -*- lexical-binding: t; -*-

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

;; Erlang's monitors for Emacs's processes, local and remote targets
;; alike:
;;
;;   (erl-monitor TARGET)       TARGET a pid, a name or [NAME NODE];
;;                              returns a reference REF.  When the
;;                              target goes, the calling process gets
;;                              [DOWN REF process OBJECT REASON]: OBJECT
;;                              is the pid, or [NAME NODE]; REASON is
;;                              the exit reason, `noproc' when there
;;                              was no such process, `noconnection'
;;                              when its node went away.
;;   (erl-demonitor REF)        no DOWN will come for REF any more.
;;   (erl-monitor-node NODE)    the calling process gets [nodedown NODE]
;;                              when the connection to NODE goes down
;;                              (at once when it cannot be made).
;;   (erl-demonitor-node NODE)  undo one `erl-monitor-node'.
;;
;; And process aliases (Erlang's alias/0): (erl-alias) returns a
;; reference that other nodes may send to (ALIAS_SEND), delivered to
;; the process that made it until `erl-unalias' or its exit;
;; `erl-alias-send' sends to an alias, local or remote.
;;
;; Monitors of Emacs's processes made by other nodes (MONITOR_P) are
;; kept by derl.el.

;;; Code:

(require 'cl-lib)
(require 'erl)
(require 'derl-options)
(require 'derl-ops)
(require 'derl-conn)
(require 'derl-events)
(require 'derl-connect)
(require 'derl-deliver)

(cl-defstruct (derl-monitor--entry (:constructor derl-monitor--make)
                                   (:copier nil))
  "A monitor made by a local process."
  watcher     ; the local pid that gets the DOWN
  target      ; the pid or name monitored, as sent in MONITOR_P
  object      ; the OBJECT of the DOWN message: pid or [NAME NODE]
  node)       ; the target's node, nil for a local target

(defvar derl-monitor--entries (make-hash-table :test 'equal)
  "Monitors made by local processes, by reference.")

(defvar derl-monitor--node-watchers nil
  "Node monitors: (NODE . PID) pairs, one for each `erl-monitor-node'.")

(defvar derl-monitor--aliases (make-hash-table :test 'equal)
  "Active aliases of local processes: reference -> pid.")

;;;; Process monitors

(defun derl-monitor--down (ref entry reason)
  "Send the DOWN of monitor REF, ENTRY, with REASON to its watcher."
  (remhash ref derl-monitor--entries)
  (erl-send (derl-monitor--entry-watcher entry)
            (vector 'DOWN ref 'process (derl-monitor--entry-object entry)
                    reason)))

(defun derl-monitor--resolve (target)
  "Return (PID-OR-NAME OBJECT NODE) for TARGET of `erl-monitor'.
NODE is nil for a target of this Emacs."
  (cond ((erl-pid-p target)
         (list target target (and (erl-remote-pid-p target)
                                  (erl-pid-node target))))
        ((and target (symbolp target))
         (list target (vector target erl-node-name) nil))
        ((and (vectorp target) (= (length target) 2)
              (symbolp (aref target 0)) (symbolp (aref target 1)))
         (let ((node (aref target 1)))
           (list (aref target 0) target
                 (and (not (eq node erl-node-name)) node))))
        (t (error "Not a pid, name or [NAME NODE]: %S" target))))

(defun erl-monitor (target)
  "Monitor TARGET from the current process; return the monitor's reference.
TARGET is a pid, a registered name, or [NAME NODE] for a name on
NODE.  When the target exits, or is not there, or its node goes
away, the process gets [DOWN REF process OBJECT REASON], OBJECT
being the pid or [NAME NODE], REASON the exit reason, `noproc' or
`noconnection'."
  (let* ((self (derl--self))
         (ref (erl-make-ref))
         (parts (derl-monitor--resolve target))
         (entry (derl-monitor--make :watcher self :target (nth 0 parts)
                                    :object (nth 1 parts) :node (nth 2 parts))))
    (puthash ref entry derl-monitor--entries)
    (if (nth 2 parts)
        (condition-case nil
            (let ((conn (derl--connection (nth 2 parts))))
              (derl--request conn (vector derl--dop-monitor-p self
                                          (nth 0 parts) ref))
              (derl--trace conn 'output "MONITOR_P: %s %s"
                           (derl-trace-term self) (derl-trace-term target)))
          (derl-error (derl-monitor--down ref entry 'noconnection)))
      (let ((pid (if (symbolp (nth 0 parts)) (erl-whereis (nth 0 parts))
                   (nth 0 parts))))
        (if (and pid (erl-local-pid-alive-p pid))
            (setf (derl-monitor--entry-target entry) pid)
          (derl-monitor--down ref entry 'noproc))))
    ref))

(defun erl-demonitor (ref)
  "Remove the monitor REF made by `erl-monitor'; no DOWN comes for it after.
Return non-nil if it was active."
  (let ((entry (gethash ref derl-monitor--entries)))
    (when entry
      (remhash ref derl-monitor--entries)
      (let ((node (derl-monitor--entry-node entry)))
        (when node
          (let ((conn (gethash node derl--connections)))
            (when conn
              (derl--request conn (vector derl--dop-demonitor-p
                                          (derl-monitor--entry-watcher entry)
                                          (derl-monitor--entry-target entry)
                                          ref))
              (derl--trace conn 'output "DEMONITOR_P: %s"
                           (derl-trace-term ref))))))
      t)))

(derl--define-op-handler derl-monitor--on-monitor-exit
    (derl--dop-monitor-p-exit derl--dop-payload-monitor-p-exit)
    (conn op control msg)
  "MONITOR_P_EXIT (OP) on CONN: a process a local one monitors is gone.
CONTROL names it and the monitor; the reason is in CONTROL or MSG.
A monitor removed meanwhile gets no DOWN, as in Erlang."
  (let* ((from (aref control 1)) (to (aref control 2))
         (ref (aref control 3))
         (reason (if (= op derl--dop-payload-monitor-p-exit) msg
                   (aref control 4)))
         (entry (gethash ref derl-monitor--entries)))
    (cond ((not (derl--check-signal conn "MONITOR_P_EXIT"
                                    (and (erl-pid-p from) from) to)))
          ((not (and entry (equal (derl-monitor--entry-watcher entry) to)
                     (eq (derl-monitor--entry-node entry)
                         (derl-connection-node conn))))
           (derl--drop conn "MONITOR_P_EXIT"
                       (format "no monitor %s" (derl-trace-term ref))))
          (t
           (derl--trace conn 'input "MONITOR_P_EXIT: %s %s %s"
                        (derl-trace-term from) (derl-trace-term to)
                        (derl-trace-term reason))
           (derl-monitor--down ref entry reason)))))

;;;; Node monitors

(defun erl-monitor-node (node)
  "Monitor NODE: the current process gets [nodedown NODE] when it is down.
Connect to NODE if needed; when that cannot be done the message
comes at once.  Each call asks for one message."
  (let ((self (derl--self))
        (node (derl--node-symbol node)))
    (condition-case nil
        (progn (derl--connection node)
               (push (cons node self) derl-monitor--node-watchers))
      (derl-error (erl-send self (vector 'nodedown node))))
    t))

(defun erl-demonitor-node (node)
  "Undo one `erl-monitor-node' of NODE by the current process."
  (let ((pair (cl-find-if (lambda (p) (and (eq (car p) node)
                                           (equal (cdr p) (derl--self))))
                          derl-monitor--node-watchers)))
    (setq derl-monitor--node-watchers (delq pair derl-monitor--node-watchers))
    (and pair t)))

;;;; Aliases

(defun erl-alias ()
  "Return a new alias of the current process: a reference to send to."
  (let ((ref (erl-make-ref)))
    (puthash ref (derl--self) derl-monitor--aliases)
    ref))

(defun erl-unalias (alias)
  "Deactivate ALIAS; return non-nil if it was an active alias."
  (and (gethash alias derl-monitor--aliases)
       (progn (remhash alias derl-monitor--aliases) t)))

(defun erl-alias-send (alias message)
  "Send MESSAGE to ALIAS, a reference made by `erl-alias' here or elsewhere.
A message to an alias that is not active is dropped, as in Erlang."
  (let ((node (aref alias 2)))
    (if (eq node erl-node-name)
        (let ((pid (gethash alias derl-monitor--aliases)))
          (when pid (erl-send pid message)))
      (let ((conn (derl--connection node)))
        (derl--request conn (vector derl--dop-alias-send (derl--self) alias)
                       message)
        (derl--trace conn 'output "ALIAS_SEND: %s %s" (derl-trace-term alias)
                     (derl-trace-term message))))))

(derl--define-op-handler derl-monitor--on-alias-send
    (derl--dop-alias-send derl--dop-alias-send-tt)
    (conn _op control msg)
  "ALIAS_SEND on CONN: deliver MSG to the process whose alias CONTROL names.
An alias that is not active here drops the message, as in Erlang."
  (let* ((alias (aref control 2))
         (pid (gethash alias derl-monitor--aliases)))
    (if (and pid (erl-local-pid-alive-p pid))
        (progn (erl-send pid msg)
               (derl--trace conn 'input "ALIAS_SEND: %s %s"
                            (derl-trace-term alias) (derl-trace-term msg)))
      (derl--drop conn "ALIAS_SEND"
                  (format "%s is not an active alias here"
                          (derl-trace-term alias))))))

;;;; Exits and nodedown

(defun derl-monitor--exit (pid reason)
  "The local process PID exited with REASON: settle its monitors and aliases."
  (let ((fired nil) (dropped nil))
    (maphash (lambda (ref entry)
               (cond ((equal (derl-monitor--entry-watcher entry) pid)
                      (push ref dropped))
                     ((and (null (derl-monitor--entry-node entry))
                           (equal (derl-monitor--entry-target entry) pid))
                      (push (cons ref entry) fired))))
             derl-monitor--entries)
    (dolist (ref dropped)
      (erl-demonitor ref))
    (dolist (pair fired)
      (derl-monitor--down (car pair) (cdr pair) reason)))
  (setq derl-monitor--node-watchers
        (cl-remove pid derl-monitor--node-watchers :key #'cdr :test #'equal))
  (let ((aliases nil))
    (maphash (lambda (alias owner) (when (equal owner pid) (push alias aliases)))
             derl-monitor--aliases)
    (dolist (alias aliases) (remhash alias derl-monitor--aliases))))

(add-hook 'erl-process-exit-functions #'derl-monitor--exit)

(defun derl-monitor--nodedown (node &rest _)
  "NODE went down: fire the monitors of its processes and of itself."
  (let ((node (derl--node-symbol node))
        (fired nil))
    (maphash (lambda (ref entry)
               (when (eq (derl-monitor--entry-node entry) node)
                 (push (cons ref entry) fired)))
             derl-monitor--entries)
    (dolist (pair fired)
      (derl-monitor--down (car pair) (cdr pair) 'noconnection))
    (let ((watchers (cl-remove-if-not (lambda (p) (eq (car p) node))
                                      derl-monitor--node-watchers)))
      (setq derl-monitor--node-watchers
            (cl-set-difference derl-monitor--node-watchers watchers))
      (dolist (pair (reverse watchers))
        (erl-send (cdr pair) (vector 'nodedown node))))))

(add-hook 'erl-nodedown-hook #'derl-monitor--nodedown)

(provide 'derl-monitor)

;;; derl-monitor.el ends here

;;; derl-links.el --- links, exit signals, and monitors other nodes hold on Emacs's processes  -*- lexical-binding: t; -*-

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

;; Links between Emacs's processes and processes of other nodes, and the
;; exit signals that go along them, both ways; the monitors that other
;; nodes' processes hold on Emacs's processes (the monitors Emacs's
;; processes hold on others are derl-monitor.el's).  A link or monitor
;; lives as long as its connection: when the node goes down, local
;; processes linked to it get `noconnection' and its monitors are
;; forgotten.  Each node may hold at most `derl-max-links' links and
;; `derl-max-monitors' monitors.

;;; Code:

(require 'cl-lib)
(require 'subr-x)
(require 'erl)
(require 'derl-options)
(require 'derl-ops)
(require 'derl-conn)
(require 'derl-events)
(require 'derl-connect)
(require 'derl-deliver)

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

;;;; Incoming signals

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

;;;; The tables

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

(defun derl--links-down (conn)
  "CONN went down: its links and monitors go with it.
Local processes linked to the node get `noconnection'; nothing goes
back to it (`erl-dist-exit' sends nothing over a dead connection)."
  (dolist (link (hash-table-keys (derl-connection-links conn)))
    (erl-send-exit (cdr link) (car link) 'noconnection 'link))
  (clrhash (derl-connection-links conn))
  (maphash (lambda (_ref monitor) (derl--unindex-monitor conn monitor))
           (derl-connection-monitors conn))
  (clrhash (derl-connection-monitors conn)))

(add-hook 'erl-process-exit-functions #'derl--local-exit)
(add-hook 'derl--connection-down-functions #'derl--links-down)

(provide 'derl-links)

;;; derl-links.el ends here

;;; derl-connect.el --- connecting to nodes  -*- lexical-binding: t; -*-

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

;; Starting the module's I/O thread and its event pipe, starting a
;; connection (asynchronously, `erl-connect'; or waiting until it is up,
;; `derl-connect'), closing one, and listing them.  A node that failed
;; is tried again only after a delay (see `derl-reconnect-min-delay').

;;; Code:

(require 'subr-x)
(require 'erl)
(require 'derl-module)
(require 'derl-tls)
(require 'derl-options)
(require 'derl-cookie)
(require 'derl-conn)
(require 'derl-events)

(declare-function derl--module-start "derl-module" (process))
(declare-function derl--module-stop "derl-module" ())
(declare-function derl--module-close "derl-module" (conn))

(declare-function derl--module-connect "derl-module"
                  (alive host epmd-port cookie our-name creation options))

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

;;;; Commands

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

(provide 'derl-connect)

;;; derl-connect.el ends here

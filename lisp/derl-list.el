;;; derl-list.el --- A live list of the connections to Erlang nodes  -*- lexical-binding: t; -*-

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

;; M-x derl-list-nodes shows every connection, live or lately gone, in
;; a `tabulated-list-mode' buffer that refreshes itself while it is
;; shown: its state, direction, transport, messages and bytes each way,
;; when it came up and the last error.  RET opens its trace buffer, d
;; disconnects, c connects, e evaluates an expression there, g
;; refreshes.

;;; Code:

(require 'cl-lib)
(require 'tabulated-list)
(require 'derl-options)
(require 'derl-conn)
(require 'derl-connect)
(require 'derl-commands)

(declare-function derl--module-stats "derl-module" (conn))
(declare-function derl-eval-expression "derl-eval" (expression node))
(declare-function derl-eval-read-expression "derl-eval" (node))

(defcustom derl-list-refresh-interval 1.0
  "Seconds between refreshes of the node list while it is shown."
  :type 'number
  :group 'derl)

(defconst derl-list--buffer-name "*derl-nodes*"
  "The name of the node list's buffer.")

(defvar derl-list--known (make-hash-table :test 'eq)
  "The last connection to each node that came up, by node.
Kept after it goes down, so that the list can say why.")

(defvar derl-list--stats (make-hash-table :test 'eq :weakness 'key)
  "The counters last read of each connection, kept once it is gone.")

(defvar derl-list--timer nil
  "The timer that refreshes the node list.")

(defun derl-list--note-up (node conn)
  "Remember CONN, the connection to NODE that just came up."
  (puthash node conn derl-list--known)
  (derl-list--refresh-if-shown))

(defun derl-list--note-down (&rest _)
  "Show at once that a connection went down."
  (derl-list--refresh-if-shown))

(add-hook 'erl-nodeup-hook #'derl-list--note-up)
(add-hook 'erl-nodedown-hook #'derl-list--note-down)

;;;; What a row shows

(defun derl-list--counters (conn)
  "Return the module's figures of CONN: its counters and more.
That is (STATE MSGS-IN BYTES-IN MSGS-OUT BYTES-OUT DIRECTION
TRANSPORT), STATE the module's detailed state, or nil once CONN is
gone: then the rest is as last read."
  (let ((stats (and (not (eq (derl-connection-state conn) 'down))
                    (derl--module-stats (derl-connection-id conn)))))
    (if stats
        (puthash conn stats derl-list--stats)
      (cons nil (cdr (gethash conn derl-list--stats
                              (list nil 0 0 0 0
                                    (if (derl-connection-incoming conn)
                                        "in" "out")
                                    "tcp")))))))

(defun derl-list--state (conn detail)
  "The state of CONN as shown: DETAIL, the module's, while connecting."
  (pcase (derl-connection-state conn)
    ('up "up")
    ('down (format "down: %s" (cdr (derl-connection-failure conn))))
    (_ (or detail "connecting"))))

(defun derl-list--size (bytes)
  "BYTES as a short text, such as 12.3k."
  (if (< bytes 10000) (number-to-string bytes)
    (file-size-human-readable bytes)))

(defun derl-list--last-error (node conn)
  "The last error of NODE: of CONN if it is down, or of a failed attempt."
  (let ((failed (or (and (eq (derl-connection-state conn) 'down) conn)
                    (cddr (gethash node derl--backoff)))))
    (if (and failed (derl-connection-failure failed)
             (not (eq (car (derl-connection-failure failed)) 'local)))
        (format "%s" (cdr (derl-connection-failure failed)))
      "")))

(defun derl-list--time (time)
  "TIME as a short text: the time of day if it is today, else the date."
  (cond ((null time) "-")
        ((equal (format-time-string "%F" time) (format-time-string "%F"))
         (format-time-string "%T" time))
        (t (format-time-string "%F" time))))

(defun derl-list--row (node conn)
  "The tabulated-list entry of NODE, whose connection is CONN."
  (let* ((counters (derl-list--counters conn))
         (up-since (derl-connection-up-since conn)))
    (list node
          (vector (derl-term-to-string node 60)
                  (derl-list--state conn (car counters))
                  (nth 5 counters)
                  (nth 6 counters)
                  (number-to-string (nth 1 counters))
                  (derl-list--size (nth 2 counters))
                  (number-to-string (nth 3 counters))
                  (derl-list--size (nth 4 counters))
                  (derl-list--time up-since)
                  (derl-list--last-error node conn)))))

(defun derl-list-entries ()
  "The rows of the node list: every live connection and those lately gone.
Each is (NODE [NODE STATE DIRECTION TRANSPORT MSGS-IN BYTES-IN MSGS-OUT
BYTES-OUT UP-SINCE LAST-ERROR]), all texts."
  ;; A live connection is newer than a failed attempt, which is newer
  ;; than the last connection that came up (coming up clears it).
  (let ((conns (make-hash-table :test 'eq)))
    (maphash (lambda (node conn) (puthash node conn conns)) derl-list--known)
    (maphash (lambda (node entry) (puthash node (cddr entry) conns))
             derl--backoff)
    (maphash (lambda (node conn) (puthash node conn conns))
             derl--connections)
    (sort (let (rows)
            (maphash (lambda (node conn)
                       (push (derl-list--row node conn) rows))
                     conns)
            rows)
          (lambda (a b) (string< (car a) (car b))))))

;;;; The buffer

(defvar derl-list-mode-map
  (let ((map (make-sparse-keymap)))
    (define-key map (kbd "RET") #'derl-list-show-trace)
    (define-key map "d" #'derl-list-disconnect)
    (define-key map "c" #'erl-connect)
    (define-key map "e" #'derl-list-eval)
    map)
  "Keys of the node list; g refreshes, as in every tabulated list.")

(define-derived-mode derl-list-mode tabulated-list-mode "Erlang nodes"
  "The connections to Erlang nodes, refreshed while shown.
\\{derl-list-mode-map}"
  (setq tabulated-list-format
        [("Node" 24 t) ("State" 14 t) ("Dir" 3 t) ("Link" 4 t)
         ("Msgs in" 7 derl-list--numeric :right-align t)
         ("Bytes in" 8 nil :right-align t)
         ("Msgs out" 8 derl-list--numeric :right-align t)
         ("Bytes out" 9 nil :right-align t)
         ("Up since" 10 t) ("Last error" 0 t)]
        tabulated-list-sort-key nil
        tabulated-list-entries #'derl-list-entries
        ;; The header line gives the keys; the column names go on top
        ;; of the list itself.
        tabulated-list-use-header-line nil)
  (tabulated-list-init-header)
  (setq header-line-format
        (substitute-command-keys
         "\\<derl-list-mode-map>\\[derl-list-show-trace] trace  \
\\[derl-list-disconnect] disconnect  \\[erl-connect] connect  \
\\[derl-list-eval] evaluate  \\[revert-buffer] refresh")))

(defun derl-list--numeric (a b)
  "Whether row A comes before row B by the number in the sorted column."
  (let ((column (cl-position (car tabulated-list-sort-key)
                             tabulated-list-format
                             :key #'car :test #'equal)))
    (< (string-to-number (aref (cadr a) column))
       (string-to-number (aref (cadr b) column)))))

(defun derl-list--node-at-point ()
  "The node of the row at point; complain when there is none."
  (or (tabulated-list-get-id) (user-error "No node on this line")))

(defun derl-list-show-trace ()
  "Show the trace buffer of the node at point."
  (declare (modes derl-list-mode))
  (interactive)
  (derl-show-trace (derl-list--node-at-point)))

(defun derl-list-disconnect ()
  "Disconnect the node at point; if it is down already, drop its row."
  (declare (modes derl-list-mode))
  (interactive)
  (let ((node (derl-list--node-at-point)))
    (if (memq node (derl-nodes))
        (progn (derl-disconnect node)
               (message "Disconnected %s" node))
      (remhash node derl-list--known)
      (remhash node derl--backoff))
    (derl-list-refresh)))

(defun derl-list-eval ()
  "Evaluate an Erlang expression on the node at point.
Off the rows, ask for the node too."
  (declare (modes derl-list-mode))
  (interactive)
  (let ((node (tabulated-list-get-id)))
    (if node
        (derl-eval-expression (derl-eval-read-expression node) node)
      (call-interactively #'derl-eval-expression))))

(defun derl-list-refresh ()
  "Redraw the node list, if it exists."
  (let ((buffer (get-buffer derl-list--buffer-name)))
    (when buffer
      (with-current-buffer buffer
        (revert-buffer)))))

(defun derl-list--refresh-if-shown ()
  "Redraw the node list if it is shown; stop the timer once it is gone."
  (let ((buffer (get-buffer derl-list--buffer-name)))
    (cond ((not buffer)
           (when derl-list--timer
             (cancel-timer derl-list--timer)
             (setq derl-list--timer nil)))
          ((get-buffer-window buffer t)
           (condition-case-unless-debug err
               (derl-list-refresh)
             (error (message "derl-list: %s" (error-message-string err))))))))

;;;###autoload
(defun derl-list-nodes ()
  "List the connections to Erlang nodes, refreshed while shown.
\\<derl-list-mode-map>
\\[derl-list-show-trace] shows the trace of the node at point,
\\[derl-list-disconnect] disconnects it, \\[erl-connect] connects to a node,
\\[derl-list-eval] evaluates an expression on the node at point, and
\\[revert-buffer] refreshes the list."
  (interactive)
  (let ((buffer (get-buffer-create derl-list--buffer-name)))
    (with-current-buffer buffer
      (unless (derived-mode-p 'derl-list-mode)
        (derl-list-mode))
      (revert-buffer)
      ;; Start on the first node, below the column names.
      (unless (tabulated-list-get-id)
        (goto-char (point-min))
        (forward-line 1)))
    (unless derl-list--timer
      (setq derl-list--timer
            (run-at-time derl-list-refresh-interval derl-list-refresh-interval
                         #'derl-list--refresh-if-shown)))
    (pop-to-buffer buffer)))

(provide 'derl-list)

;;; derl-list.el ends here

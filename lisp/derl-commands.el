;;; derl-commands.el --- Commands to connect to nodes and watch them  -*- lexical-binding: t; -*-

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

;; What \\[erl-connect] and the other commands share: reading a node
;; name with completion from EPMD and a history, a cookie for one node,
;; a progress reporter for anything that takes more than a second, and
;; the trace commands `derl-show-trace' and `derl-toggle-trace'.

;;; Code:

(require 'cl-lib)
(require 'subr-x)
(require 'derl-options)
(require 'derl-conn)
(require 'derl-connect)
(require 'epmd)

(defcustom derl-epmd-hosts nil
  "Other hosts whose EPMD is asked for node names to complete.
The local host is always asked.  Each is a host name as it appears
after the @ of its nodes' names."
  :type '(repeat (string :tag "Host"))
  :group 'derl)

(defcustom derl-epmd-completion-timeout 2
  "Seconds to wait for each EPMD asked for names to complete."
  :type 'number
  :group 'derl)

(defcustom derl-progress-delay 1.0
  "Seconds a connection attempt or call runs before progress is shown."
  :type 'number
  :group 'derl)

(defvar derl-node-history nil
  "Node names read by derl's commands, most recent first.")

(defvar derl-last-node nil
  "The node last connected to or evaluated on, a symbol, or nil.
Only a node that answered becomes it.")

(defun derl-note-node-result (node ok)
  "Remember NODE, a symbol, as the default node if OK, else forget it.
A node name that never connected is taken out of `derl-node-history'
\(which `completing-read' put it in) and is not proposed again; one
that answered once stays."
  (if ok
      (setq derl-last-node node)
    (unless (or (gethash node derl--connections)
                (derl-connected-once-p node))
      (setq derl-node-history (delete (symbol-name node) derl-node-history))
      (when (eq derl-last-node node)
        (setq derl-last-node nil)))
    ;; A node that said its real name: offer that one next time.
    (let* ((failed (cddr (gethash node derl--backoff)))
           (reason (and failed (cdr (derl-connection-failure failed)))))
      (when (and (stringp reason)
                 (string-match "calls itself \\([^ ,@]+@[^ ,]+\\)," reason))
        (add-to-history 'derl-node-history (match-string 1 reason))))))

(defvar derl--connected-once (make-hash-table :test 'eq)
  "Nodes that came up at least once in this session.")

(defun derl-connected-once-p (node)
  "Return non-nil if NODE came up at least once in this session."
  (gethash node derl--connected-once))

(defun derl--note-connected (node &rest _)
  "Note that NODE came up."
  (puthash node t derl--connected-once))

(add-hook 'erl-nodeup-hook #'derl--note-connected)

(defun derl-default-node ()
  "Return the node derl's commands propose when asked for one, or nil.
That is `derl-last-node', or else a node connected now, however the
connection was made (by Lisp code or by Distel, say)."
  (or derl-last-node
      (cl-find-if (lambda (node)
                    (eq (derl-connection-state (gethash node derl--connections))
                        'up))
                  (derl-nodes))))

;;;; Progress

(defun derl-call-with-progress (text function)
  "Call FUNCTION; once it has run `derl-progress-delay' seconds, show TEXT.
TEXT is shown with a spinning progress reporter in the echo area
until FUNCTION returns or exits non-locally."
  (let* ((reporter nil)
         (timer (run-at-time derl-progress-delay 0.2
                             (lambda ()
                               (if reporter
                                   (progress-reporter-update reporter)
                                 (setq reporter
                                       (make-progress-reporter text)))))))
    (unwind-protect (funcall function)
      (cancel-timer timer)
      (when reporter
        (progress-reporter-done reporter)))))

(defmacro derl-with-progress (text &rest body)
  "Run BODY; show TEXT with a progress reporter if it takes over a second.
See `derl-call-with-progress'."
  (declare (indent 1) (debug (form body)))
  `(derl-call-with-progress ,text (lambda () ,@body)))

;;;; Reading node names

(defun derl--local-host ()
  "The host part of Emacs's own node name: how local nodes are named."
  (cdr (derl--split-node erl-node-name)))

(defun derl-epmd-node-names ()
  "Names of the nodes EPMD knows on this host and on `derl-epmd-hosts'.
A host whose EPMD cannot be reached in time adds nothing."
  (let ((derl-connect-timeout derl-epmd-completion-timeout)
        (names nil))
    (dolist (host (cons (derl--local-host) derl-epmd-hosts))
      (condition-case nil
          (dolist (entry (epmd-names host))
            (push (format "%s@%s" (car entry) host) names))
        (derl-error nil)))
    (nreverse names)))

(defun derl-read-node (prompt &optional default)
  "Read a node name with PROMPT; return it as a symbol.
Completion offers the nodes EPMD knows (see `derl-epmd-node-names'),
the connected ones and `derl-node-history'.  DEFAULT, a node, is
what an empty answer gives."
  (let* ((default (and default (format "%s" default)))
         (candidates (delete-dups
                      (append (derl-epmd-node-names)
                              (mapcar #'symbol-name (derl-nodes))
                              derl-node-history)))
         (name (completing-read
                (format-prompt prompt default)
                candidates nil nil nil 'derl-node-history default)))
    (when (string-empty-p name)
      (user-error "No node given"))
    (intern name)))

(defun derl-read-connect-arguments (ask-cookie)
  "Read the arguments of \\[erl-connect]: a list (NODE).
With ASK-COOKIE non-nil, also read a cookie for NODE alone and keep
it in `derl-node-cookies'."
  (let ((node (derl-read-node "Connect to node" (derl-default-node))))
    (when ask-cookie
      (let ((cookie (read-passwd (format "Cookie for %s: " node))))
        (setf (alist-get node derl-node-cookies) cookie)))
    (list node)))

;;;; Connecting

(defun derl-connect-interactively (node)
  "Connect to NODE; say in the echo area how it went.
Return the connection when it is up, nil otherwise.  A connection
attempt that takes longer than `derl-progress-delay' shows progress."
  (let ((start (float-time)))
    (condition-case err
        (let ((conn (derl-with-progress (format "Connecting to %s..." node)
                      (derl-connect node))))
          (derl-note-node-result node t)
          (message "Connected to %s in %.0f ms" node
                   (* 1000 (- (float-time) start)))
          conn)
      (derl-error
       (derl-note-node-result node nil)
       (message "Cannot connect to %s: %s" node
                (derl-error-reason err))
       nil))))

(defun derl-error-reason (condition)
  "The text of CONDITION, a `derl-error', as one sentence for a message.
The errors of `derl-connect' carry \"NODE: REASON\": the node is left
out, for the caller names it, and so is the prefix \"Cannot connect to
node\" that the caller's own words repeat.  An authentication error
says how to give the node a cookie of its own."
  (let* ((text (cadr condition))
         (reason (if (stringp text)
                     (if (string-match "\\`[^ :]+@[^ :]+: " text)
                         (substring text (match-end 0))
                       text)
                   (error-message-string condition)))
         (kind (get (car condition) 'error-message)))
    (concat (if (or (not (stringp text))
                    (memq (car condition) '(derl-connect-error derl-error)))
                ""
              (concat kind ": "))
            reason
            (if (eq (car condition) 'derl-auth-error)
                "; for a node with a cookie of its own, use C-u M-x erl-connect"
              ""))))

;;;; Trace buffers

(defun derl--trace-buffer-nodes ()
  "Nodes that have a trace buffer, as strings."
  (delq nil (mapcar (lambda (buffer)
                      (let ((name (buffer-name buffer)))
                        (and (string-match "\\`\\*trace \\(.+\\)\\*\\'" name)
                             (match-string 1 name))))
                    (buffer-list))))

;;;###autoload
(defun derl-show-trace (node)
  "Show the trace buffer of NODE, where each signal to and from it is logged.
Interactively, read NODE, offering those with a trace buffer."
  (interactive
   (list (let ((nodes (delete-dups
                       (append (derl--trace-buffer-nodes)
                               (mapcar #'symbol-name (derl-nodes))))))
           (intern (completing-read
                    (format-prompt "Trace of node" (derl-default-node))
                    nodes nil nil nil 'derl-node-history
                    (let ((default (derl-default-node)))
                      (and default (symbol-name default))))))))
  (derl-trace-flush)
  (let ((name (format "*trace %s*" node)))
    (pop-to-buffer (or (get-buffer name)
                       (with-current-buffer (derl-trace-node-buffer node)
                         (let ((inhibit-read-only t))
                           (insert (format "No signals to or from %s yet.\n"
                                           node)))
                         (current-buffer))))))

;;;###autoload
(defun derl-toggle-trace (&optional arg)
  "Turn the trace buffers on or off (see `derl-use-trace-buffer').
With ARG, turn them on if ARG is positive, off otherwise."
  (interactive "P")
  (setq derl-use-trace-buffer
        (if arg (> (prefix-numeric-value arg) 0) (not derl-use-trace-buffer)))
  (when (called-interactively-p 'interactive)
    (message "Trace buffers %s" (if derl-use-trace-buffer "on" "off")))
  derl-use-trace-buffer)

(provide 'derl-commands)

;;; derl-commands.el ends here

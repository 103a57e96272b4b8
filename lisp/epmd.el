;;; epmd.el --- Ask the Erlang Port Mapper Daemon  -*- lexical-binding: t; -*-

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

;; EPMD queries, made by the derl module's I/O thread so that Emacs
;; never blocks on the network: `epmd-port-please' (asynchronous, with
;; Distel's signature), `epmd-names' and `M-x epmd-show-names'.

;;; Code:

(require 'derl-options)
(require 'derl-conn)
(require 'derl-events)
(require 'derl-connect)

(declare-function derl--module-epmd-port-please "derl-module"
                  (host port alive timeout-ms))
(declare-function derl--module-epmd-names "derl-module"
                  (host port timeout-ms))

(defun epmd--timeout-ms ()
  "The EPMD query timeout in milliseconds.
Signal `derl-epmd-error' first if `derl-epmd-port' is no port."
  (derl--check-epmd-port)
  (round (* 1000 derl-connect-timeout)))

(defun epmd-port-please (node host cont fail-cont)
  "Ask EPMD on HOST for the port of NODE (its name before the @).
Call CONT with the port when EPMD knows it; call FAIL-CONT with no
arguments when it does not, or EPMD cannot be reached."
  (derl--ensure-started)
  (let ((id (derl--module-epmd-port-please
             host derl-epmd-port (format "%s" node) (epmd--timeout-ms))))
    (puthash id (cons (lambda (port _version) (funcall cont port))
                      (lambda (_kind reason)
                        (message "epmd: %s" reason)
                        (funcall fail-cont)))
             derl--event-handlers)
    id))

(defun epmd-names (&optional host)
  "Return the nodes EPMD on HOST knows, as a list of (NAME . PORT).
HOST defaults to localhost.  Signal `derl-epmd-error' when EPMD
cannot be reached."
  (derl--ensure-started)
  (let* ((host (or host "localhost"))
         (result nil)
         (id (derl--module-epmd-names host derl-epmd-port (epmd--timeout-ms))))
    (puthash id (cons (lambda (names) (setq result (list 'ok names)))
                      (lambda (_kind reason) (setq result (list 'error reason))))
             derl--event-handlers)
    (unwind-protect
        (derl--wait (lambda () result) (1+ derl-connect-timeout)
                    (format "asking EPMD on %s" host))
      (remhash id derl--event-handlers))
    (if (eq (car result) 'ok)
        (cadr result)
      (signal 'derl-epmd-error (list (cadr result))))))

;;;###autoload
(defun epmd-show-names (&optional host)
  "Show the nodes registered with EPMD on HOST (default localhost)."
  (interactive (list (read-string "Host (default localhost): " nil nil
                                  "localhost")))
  (let ((names (epmd-names host)))
    (with-current-buffer (get-buffer-create "*epmd names*")
      (let ((inhibit-read-only t))
        (erase-buffer)
        (insert (format "Nodes registered with EPMD on %s:\n\n" host))
        (if names
            (dolist (n names)
              (insert (format "  %-30s port %d\n" (car n) (cdr n))))
          (insert "  (none)\n")))
      (special-mode)
      (display-buffer (current-buffer)))))

(provide 'epmd)

;;; epmd.el ends here

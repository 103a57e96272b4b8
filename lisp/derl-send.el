;;; derl-send.el --- sending messages to processes of other nodes  -*- lexical-binding: t; -*-

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

;; `erl-dist-send' and `erl-dist-reg-send', which erl.el's `erl-send'
;; calls for a remote pid or a {Name, Node} address, and the SEND,
;; SEND_SENDER and REG_SEND that other nodes send to Emacs.

;;; Code:

(require 'erl)
(require 'derl-ops)
(require 'derl-conn)
(require 'derl-events)
(require 'derl-connect)
(require 'derl-deliver)

(defun erl-dist-send (pid msg)
  "Send MSG to PID, a process on a remote node."
  (derl--send-over (derl--connection (erl-pid-node pid)) pid msg))

(defun erl-dist-reg-send (node name msg)
  "Send MSG to the process registered as NAME on NODE."
  (let ((conn (derl--connection node)))
    (derl--request conn (vector derl--dop-reg-send (derl--self)
                                erlext-empty-symbol name)
                   msg)
    (derl--trace-terms conn 'output "REG_SEND:" (derl--self) name msg)))

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

(provide 'derl-send)

;;; derl-send.el ends here

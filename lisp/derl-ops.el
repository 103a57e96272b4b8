;;; derl-ops.el --- distribution operation numbers and capability flags  -*- lexical-binding: t; -*-

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

;; The control messages' operation numbers, under Erlang's DOP_* names,
;; and the capability flags Lisp looks at, under DFLAG_* names: the same
;; numbers as module/dist.h and module/handshake.h, which a test checks.

;;; Code:

;; The control messages' operation numbers, as Erlang's DOP_* names.
(defmacro derl--define-ops (&rest ops)
  "Define the constant derl--dop-NAME for each (NAME . NUMBER) of OPS."
  `(progn
     ,@(mapcar (lambda (op)
                 `(defconst ,(intern (format "derl--dop-%s" (car op)))
                    ,(cdr op)
                    ,(format "The distribution operation DOP_%s."
                             (upcase (string-replace
                                      "-" "_" (symbol-name (car op)))))))
               ops)))

(derl--define-ops
  (link . 1) (send . 2) (exit . 3) (unlink . 4) (reg-send . 6)
  (group-leader . 7) (exit2 . 8) (send-tt . 12) (exit-tt . 13)
  (reg-send-tt . 16) (exit2-tt . 18) (monitor-p . 19) (demonitor-p . 20)
  (monitor-p-exit . 21) (send-sender . 22) (send-sender-tt . 23)
  (payload-exit . 24) (payload-exit-tt . 25) (payload-exit2 . 26)
  (payload-exit2-tt . 27) (payload-monitor-p-exit . 28) (spawn-request . 29)
  (spawn-request-tt . 30) (spawn-reply . 31) (spawn-reply-tt . 32)
  (alias-send . 33) (alias-send-tt . 34) (unlink-id . 35)
  (unlink-id-ack . 36))

;; Capability flags the senders look at.
(defconst derl--flag-send-sender #x80000)
(defconst derl--flag-exit-payload #x400000)
(defconst derl--flag-unlink-id #x2000000)

(provide 'derl-ops)

;;; derl-ops.el ends here

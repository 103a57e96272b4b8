;;; derl-cookie.el --- the cookies derl digests  -*- lexical-binding: t; -*-

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

;; Where the cookie for a node comes from (`derl-node-cookies',
;; `derl-cookie' or ~/.erlang.cookie) and the bytes Erlang digests of it.
;; The cookie is a secret: nothing here prints it.

;;; Code:

(require 'subr-x)
(require 'cl-lib)
(require 'derl-options)

(defun derl--cookie (&optional node)
  "Return the cookie for NODE as bytes.
It comes from `derl-node-cookies', `derl-cookie' or ~/.erlang.cookie.
Those are the bytes Erlang digests: a cookie's characters as
Latin-1, the cookie file's bytes as they are."
  (let ((own (cdr (assq node derl-node-cookies))))
    (cond (own (derl--latin-1-cookie own))
          (derl-cookie (derl--latin-1-cookie derl-cookie))
          (t (derl--cookie-file (expand-file-name "~/.erlang.cookie"))))))

(defun derl--latin-1-cookie (cookie)
  "Return COOKIE, a string, as the Latin-1 bytes of Erlang's digest."
  (unless (stringp cookie)
    (signal 'derl-auth-error (list "`derl-cookie' must be a string or nil")))
  (if (not (multibyte-string-p cookie))
      (copy-sequence cookie)
    (when (cl-find-if (lambda (c) (and (> c 255) (< c #x3fff80))) cookie)
      (signal 'derl-auth-error
              (list "`derl-cookie' has characters beyond Latin-1, \
which an Erlang cookie cannot hold")))
    (encode-coding-string cookie 'latin-1)))

(defun derl--cookie-file (file)
  "The cookie in FILE, as bytes; refused, as Erlang does, unless private."
  (unless (file-readable-p file)
    (signal 'derl-auth-error
            (list (format "No cookie: set `derl-cookie' or create a \
readable %s" file))))
  (unless (zerop (logand (file-modes file) #o077))
    (signal 'derl-auth-error
            (list (format "%s must be accessible by its owner only, as \
Erlang requires: run chmod 400 %s" file file))))
  (with-temp-buffer
    (set-buffer-multibyte nil)
    (insert-file-contents-literally file)
    (string-trim (buffer-string))))

(provide 'derl-cookie)

;;; derl-cookie.el ends here

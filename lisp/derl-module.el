;;; derl-module.el --- load or build derl's dynamic module  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;; Keywords: erlang, languages, processes
;; Package-Requires: ((emacs "28.1"))

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

;; The derl dynamic module (module/derl-module.so, built by `make') does
;; the sockets, the handshake and the term codec.  This file finds it,
;; loads it, and builds it on request.  The functions the module defines,
;; `derl--module-...', are private to derl's Lisp files.

;;; Code:

(defconst derl-module--root
  (file-name-directory
   (directory-file-name
    (file-name-directory (or load-file-name buffer-file-name
                             default-directory))))
  "The derl source tree: the parent of the directory of this file.")

(defcustom derl-module-file
  (expand-file-name "module/derl-module.so" derl-module--root)
  "The derl dynamic module."
  :type 'file
  :group 'derl)

(defun derl-module-compile ()
  "Build the derl module with make, in the derl source tree."
  (interactive)
  (let ((default-directory derl-module--root))
    (unless (zerop (call-process "make" nil "*derl-module-compile*" t
                                 "module"))
      (pop-to-buffer "*derl-module-compile*")
      (error "Building the derl module failed; see *derl-module-compile*"))))

(defun derl-module-load ()
  "Load `derl-module-file' unless loaded, or say clearly what is missing."
  (unless (fboundp 'derl--module-decode)
    (unless module-file-suffix
      (error "This Emacs was built without dynamic module support"))
    (unless (file-exists-p derl-module-file)
      (error "The derl module %s is missing; build it with `make -C %s' \
or M-x derl-module-compile"
             derl-module-file (directory-file-name derl-module--root)))
    (module-load derl-module-file)))

(provide 'derl-module)

;;; derl-module.el ends here

;;; derl-module.el --- load or build derl's dynamic module  -*- lexical-binding: t; -*-

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

;; The derl dynamic module (module/derl-module.so, built by `make') does
;; the sockets, the handshake and the term codec.  This file finds it
;; and loads it.  When it is missing or older than its sources, derl
;; offers to build it, the way vterm does (or builds it without asking
;; when `derl-module-compile-automatically' is set), with the output in
;; a compilation buffer.  The functions the module defines,
;; `derl--module-...', are private to derl's Lisp files.

;;; Code:

(require 'cl-lib)

;; A `derl-error', the root condition erlext.el defines; set by hand,
;; as `define-error' would, because erlext.el loads this file first.
(put 'derl-module-error 'error-conditions
     '(derl-module-error derl-error error))
(put 'derl-module-error 'error-message "The derl module is not available")

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

(defcustom derl-module-compile-automatically nil
  "Non-nil means build the module without asking when it must be built.
That is when it is missing or older than its sources.  When nil,
derl asks first."
  :type 'boolean
  :group 'derl)

(defconst derl-module--compile-buffer "*derl-module-compile*"
  "The buffer that shows the module being built.")

(defconst derl-module--tools
  '(("make" "make") ("cc" "gcc"))
  "Programs the build runs, each with the Debian package that has it.")

(defun derl-module--sources ()
  "The C sources of the module, where the source tree has them."
  (let ((dir (expand-file-name "module" derl-module--root)))
    (and (file-directory-p dir)
         (directory-files dir t "\\.[ch]\\'"))))

(defun derl-module-status (&optional file sources)
  "Whether the module FILE must be built: `missing', `stale' or nil.
It is stale when one of SOURCES is newer.  FILE defaults to
`derl-module-file', SOURCES to the C files of the source tree."
  (let ((file (or file derl-module-file)))
    (cond ((not (file-exists-p file)) 'missing)
          ((cl-some (lambda (source) (file-newer-than-file-p source file))
                    (or sources (derl-module--sources)))
           'stale))))

(defun derl-module--missing-tool ()
  "The first program the build needs and cannot find, with its package."
  (cl-find-if-not (lambda (tool) (executable-find (car tool)))
                  derl-module--tools))

(defun derl-module--missing-packages ()
  "What the build said was missing: its \"run: apt-get install\" line."
  (with-current-buffer derl-module--compile-buffer
    (save-excursion
      (goto-char (point-min))
      (and (re-search-forward "^derl: run: *\\(.*\\)$" nil t)
           (match-string 1)))))

;;;###autoload
(defun derl-module-compile ()
  "Build the derl module with make, showing the output in a buffer.
Signal an error naming what to install when a tool or header is
missing, and when the build fails."
  (interactive)
  (let ((tool (derl-module--missing-tool)))
    (when tool
      (signal 'derl-module-error
              (list (format "Building the derl module needs `%s': install \
the Debian package %s (sudo apt-get install %s)"
                            (car tool) (cadr tool) (cadr tool))))))
  (let ((default-directory derl-module--root)
        (buffer (get-buffer-create derl-module--compile-buffer))
        (was-stale (derl-module-status)))
    (with-current-buffer buffer
      ;; So that compilation-mode finds the files its messages name.
      (setq default-directory derl-module--root)
      (let ((inhibit-read-only t))
        (erase-buffer)
        (insert (format "cd %s && make module\n\n" derl-module--root)))
      (compilation-mode))
    (unless noninteractive
      (display-buffer buffer)
      (redisplay))
    (let ((status (let ((inhibit-read-only t))
                    (call-process "make" nil buffer t "module"))))
      (with-current-buffer buffer
        (let ((inhibit-read-only t))
          (goto-char (point-max))
          (insert (format "\nmake module exited with status %s\n" status))))
      (unless (eql status 0)
        (let ((packages (derl-module--missing-packages)))
          (signal 'derl-module-error
                  (list (if packages
                            (format "Building the derl module needs more \
packages: %s" packages)
                          (format "Building the derl module failed; see %s"
                                  derl-module--compile-buffer))))))
      (message (cond ((not was-stale) "The derl module is up to date")
                     ((fboundp 'derl--module-decode)
                      "The derl module is built; restart Emacs to load it")
                     (t "The derl module is built"))))))

(defun derl-module--may-build (status)
  "Whether to build the module, whose STATUS is `missing' or `stale'."
  (or derl-module-compile-automatically
      (and (not noninteractive)
           (y-or-n-p (format "The derl module %s; build it now? "
                             (if (eq status 'missing)
                                 "is not built yet"
                               "is older than its sources"))))))

(defun derl-module-load ()
  "Load `derl-module-file' unless loaded, offering to build it first.
Say clearly what is missing when it cannot be loaded."
  (unless (fboundp 'derl--module-decode)
    (unless module-file-suffix
      (signal 'derl-module-error
              (list "This Emacs was built without dynamic module support; \
derl needs an Emacs configured --with-modules")))
    (let ((status (and (derl-module--sources) (derl-module-status))))
      (when (and status (derl-module--may-build status))
        (derl-module-compile)))
    (unless (file-exists-p derl-module-file)
      (signal 'derl-module-error
              (list (format "The derl module %s is missing; build it with \
`make -C %s' or M-x derl-module-compile"
                            derl-module-file
                            (directory-file-name derl-module--root)))))
    (module-load derl-module-file)))

(provide 'derl-module)

;;; derl-module.el ends here

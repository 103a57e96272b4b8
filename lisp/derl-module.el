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

;; The derl dynamic module (module/derl-module.so, built by `make
;; module') does the sockets, the handshake and the term codec.  This
;; file finds it, builds it and loads it, at the first call of one of
;; its functions, `derl--module-...' (private to derl's Lisp files):
;; until then each of them is a Lisp function that loads the module
;; and calls its own.  So loading derl costs no module, and byte
;; compiling derl needs none.
;;
;; When the module is missing or older than its sources, that first
;; call offers to build it, the way vterm does (or builds it without
;; asking when `derl-module-compile-automatically' is set): `make
;; module' runs in the background, in a compilation buffer, and the
;; call waits for it with Emacs's display going on; C-g stops the
;; waiting, not the build.
;;
;; The module is built where the sources are: in a clone, the parent
;; of lisp/; in a package made by `make package', the package's own
;; directory, which holds the Lisp, module/ and the Makefile.

;;; Code:

(require 'cl-lib)

(declare-function compilation-start "compile"
                  (command &optional mode name-function highlight-regexp
                           continue))

;; A `derl-error', the root condition erlext.el defines; set by hand,
;; as `define-error' would, because erlext.el loads this file first.
(put 'derl-module-error 'error-conditions
     '(derl-module-error derl-error error))
(put 'derl-module-error 'error-message "The derl module is not available")

;; A quit, not an error: C-g while the module is built for a caller.
(put 'derl-module-wait-stopped 'error-conditions
     '(derl-module-wait-stopped quit))
(put 'derl-module-wait-stopped 'error-message
     "Stopped waiting; the derl module is still being built, in \
*derl-module-compile*")

(defconst derl-module--root
  (let ((lisp (file-name-directory (or load-file-name buffer-file-name
                                       default-directory))))
    (if (file-directory-p (expand-file-name "module" lisp))
        lisp
      (file-name-directory (directory-file-name lisp))))
  "Where the module's sources and its Makefile are.
The directory of this file when it holds module/ (a package made by
`make package'), else its parent (a clone, the Lisp in lisp/).")

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

(defconst derl-module--functions
  '(derl--module-decode derl--module-encode derl--module-start
    derl--module-stop derl--module-connect derl--module-send
    derl--module-close derl--module-stats derl--module-epmd-port-please
    derl--module-epmd-names derl--module-listen derl--module-events
    derl--module-wait-events derl--module-set-stamping derl--module-stamps)
  "The functions the module defines when it is loaded.")

(defvar derl-module--loaded nil
  "The module file loaded into this Emacs, or nil.")

(defvar derl-module--build nil
  "The process of the latest build of the module, or nil.")

(defvar derl-module--declined nil
  "Non-nil when building was declined in the command running now.")

;;;; Is it there?

(defun derl-module--sources ()
  "The C sources of the module, where the source tree has them."
  (let ((dir (expand-file-name "module" derl-module--root)))
    (and (file-directory-p dir)
         (directory-files dir t "\\.[ch]\\'"))))

(defun derl-module--buildable-p ()
  "Return non-nil when `derl-module--root' has the Makefile and C sources."
  (and (file-exists-p (expand-file-name "Makefile" derl-module--root))
       (derl-module--sources)
       t))

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

(defun derl-module--missing-packages (buffer)
  "What the build in BUFFER said was missing: its \"run:\" line."
  (with-current-buffer buffer
    (save-excursion
      (goto-char (point-min))
      (and (re-search-forward "^derl: run: *\\(.*\\)$" nil t)
           (match-string 1)))))

;;;; Building

(defun derl-module--building-p ()
  "Whether a build of the module is under way."
  (and derl-module--build
       (not (process-get derl-module--build 'derl-module-done))))

;;;###autoload
(defun derl-module-compile ()
  "Build the derl module with make, in the buffer *derl-module-compile*.
The build runs in the background, as \\[compile] does; its end is
said in the echo area, and the first call of a module function
waits for it.  In batch, wait here until it ends.  Return the
build's process (the one under way, when there is one).

Signal `derl-module-error' naming what to install when a tool is
missing, and, in batch, when the build fails."
  (interactive)
  (unless (derl-module--buildable-p)
    (signal 'derl-module-error
            (list (format "derl's C sources and Makefile are not in %s: \
install derl from a clone (make) or from the package `make package' writes"
                          (directory-file-name derl-module--root)))))
  (let ((tool (derl-module--missing-tool)))
    (when tool
      (signal 'derl-module-error
              (list (format "Building the derl module needs `%s': install \
the Debian package %s (sudo apt-get install %s)"
                            (car tool) (cadr tool) (cadr tool))))))
  (if (derl-module--building-p)
      (when (called-interactively-p 'interactive)
        (message "The derl module is being built already, in %s"
                 derl-module--compile-buffer))
    (require 'compile)
    (let* ((default-directory derl-module--root)
           (was-loaded derl-module--loaded)
           (status (derl-module-status))
           (buffer (compilation-start "make module" nil
                                      (lambda (_mode)
                                        derl-module--compile-buffer)))
           (process (get-buffer-process buffer)))
      (process-put process 'derl-module-was-loaded was-loaded)
      (process-put process 'derl-module-status status)
      (with-current-buffer buffer
        (add-hook 'compilation-finish-functions #'derl-module--finished
                  nil t))
      (setq derl-module--build process)))
  (when noninteractive
    (derl-module--wait derl-module--build))
  derl-module--build)

(defun derl-module--finished (buffer _how)
  "The build in BUFFER ended: note how, in BUFFER and the echo area."
  (let* ((process derl-module--build)
         (status (process-exit-status process))
         (failure
          (unless (and (eq (process-status process) 'exit) (eql status 0))
            (let ((packages (derl-module--missing-packages buffer)))
              (if packages
                  (format "Building the derl module needs more packages: %s"
                          packages)
                (format "Building the derl module failed; see %s"
                        derl-module--compile-buffer))))))
    (with-current-buffer buffer
      (let ((inhibit-read-only t))
        (save-excursion
          (goto-char (point-max))
          (insert (format "\nmake module exited with status %s\n" status)))))
    (process-put process 'derl-module-failure failure)
    (process-put process 'derl-module-done t)
    (message "%s"
             (cond (failure failure)
                   ((not (process-get process 'derl-module-status))
                    "The derl module is up to date")
                   ((process-get process 'derl-module-was-loaded)
                    "The derl module is built; restart Emacs to load it")
                   (t "The derl module is built")))))

(defun derl-module--wait (process)
  "Wait until PROCESS, a build of the module, has ended.
Show that it runs; signal `derl-module-error' if it failed.
\\[keyboard-quit] stops the waiting, not the build, signalling
`derl-module-wait-stopped', a `quit' that says so."
  (unless (process-get process 'derl-module-done)
    (let ((reporter (make-progress-reporter
                     (substitute-command-keys
                      (format "Building the derl module in %s \
\(\\[keyboard-quit] stops waiting, not the build)..."
                              derl-module--compile-buffer)))))
      (condition-case nil
          (while (not (process-get process 'derl-module-done))
            (accept-process-output nil 0.1)
            (unless (or (process-live-p process)
                        (process-get process 'derl-module-done))
              ;; Ended, and its sentinel has had its chance: with its
              ;; buffer killed, nothing says how it ended.
              (accept-process-output nil 0.1)
              (unless (process-get process 'derl-module-done)
                (process-put process 'derl-module-failure
                             (format "The build of the derl module was \
stopped; see %s" derl-module--compile-buffer))
                (process-put process 'derl-module-done t)))
            (progress-reporter-update reporter)
            (unless noninteractive
              (redisplay)))
        (quit (signal 'derl-module-wait-stopped nil)))
      (progress-reporter-done reporter)))
  (let ((failure (process-get process 'derl-module-failure)))
    (when failure
      (signal 'derl-module-error (list failure)))))

(defun derl-module--may-build (status)
  "Whether to build the module, whose STATUS is `missing' or `stale'."
  (or derl-module-compile-automatically
      (and (not noninteractive)
           (y-or-n-p (format "The derl module %s; build it now? "
                             (if (eq status 'missing)
                                 "is not built yet"
                               "is older than its sources"))))))

(defun derl-module--forget-declined ()
  "Ask again in the next command whether to build the module.
Not after a command in the minibuffer: the command that reads there
goes on."
  (when (zerop (recursion-depth))
    (setq derl-module--declined nil)
    (remove-hook 'post-command-hook #'derl-module--forget-declined)))

(defun derl-module--offer-build ()
  "Build the module, asking first, when it is missing or stale.
Return the build's process, or nil when there is none.  A \"no\"
holds for the rest of the command running now."
  (let ((status (and (derl-module--buildable-p) (derl-module-status))))
    (when (and status (not derl-module--declined))
      (if (derl-module--may-build status)
          (derl-module-compile)
        (setq derl-module--declined t)
        (add-hook 'post-command-hook #'derl-module--forget-declined)
        nil))))

;;;; Loading

(defun derl-module-load ()
  "Load `derl-module-file' unless loaded, building it first if need be.
When the module is missing or older than its sources, offer to
build it (see `derl-module-compile-automatically'); wait for a
build under way.  Signal `derl-module-error', saying what to do,
when it cannot be loaded."
  (unless derl-module--loaded
    (unless module-file-suffix
      (signal 'derl-module-error
              (list "This Emacs was built without dynamic module support; \
derl needs an Emacs configured --with-modules")))
    ;; The module takes erlext.el's `erl-tag' when it loads.
    (unless (boundp 'erl-tag)
      (require 'erlext))
    ;; A build under way, or one started now; not one that ended.
    (let ((build (if (derl-module--building-p)
                     derl-module--build
                   (derl-module--offer-build))))
      (when build
        (derl-module--wait build)))
    (unless (file-exists-p derl-module-file)
      (signal 'derl-module-error
              (list (format "The derl module %s is missing; build it with \
M-x derl-module-compile or `make -C %s module'"
                            derl-module-file
                            (directory-file-name derl-module--root)))))
    (module-load derl-module-file)
    (setq derl-module--loaded derl-module-file)
    (dolist (name derl-module--functions)
      (when (eq (symbol-function name) (get name 'derl-module--stub))
        (signal 'derl-module-error
                (list (format "The derl module %s defines no `%s': \
rebuild it with M-x derl-module-compile and restart Emacs"
                              derl-module-file name)))))))

(defun derl-module--stub (name)
  "A function standing for the module's NAME until the module is loaded."
  (let ((stub nil))
    (setq stub (lambda (&rest args)
                 "Load the derl module, then call its function of this name."
                 (derl-module-load)
                 (if (eq (symbol-function name) stub)
                     (signal 'derl-module-error
                             (list (format "The derl module defines no `%s'"
                                           name)))
                   (apply name args))))
    stub))

;; The module's functions, until it is loaded.  Loading it defines
;; them anew, so each stub runs at most once.
(unless derl-module--loaded
  (dolist (name derl-module--functions)
    (let ((stub (derl-module--stub name)))
      (put name 'derl-module--stub stub)
      (defalias name stub))))

(provide 'derl-module)

;;; derl-module.el ends here

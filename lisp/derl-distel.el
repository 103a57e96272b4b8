;;; derl-distel.el --- Run Distel's front end on derl  -*- lexical-binding: t; -*-

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

;; M-x derl-distel-setup makes an unmodified Distel (its elisp/ and
;; src/ directories) run on derl in one step:
;;
;; - it compiles Distel's Erlang backend (src/*.erl) with erlc into
;;   `derl-distel-cache-directory' and points `distel-ebin-directory'
;;   there, so that `erl-ping' can upload it to any node;
;; - it puts derl's lisp/ first on `load-path' and Distel's elisp/
;;   after it, so that derl's erl.el, derl.el, erlext.el, epmd.el and
;;   mcase.el replace Distel's own transport;
;; - it adds Erlang's own erlang-mode to `load-path' when Emacs cannot
;;   find it (Distel requires it);
;; - it loads Distel.  distel.el, loaded from source, would run
;;   `make -C.. all' in the directory of the first erl.el on
;;   `load-path' (to build Distel's beams); with derl first that would
;;   build derl instead, so that compilation is skipped: the beams
;;   come from the step above;
;; - it loads the backend into the nodes connected already.  Distel
;;   uploads it from `erl-nodeup-hook', which ran for those nodes
;;   before Distel was loaded: without this, every command on them
;;   would fail with undef distel:rpc_entry until they reconnect.

;;; Code:

(require 'cl-lib)

(defgroup derl-distel nil
  "Distel's front end on derl."
  :group 'derl
  :prefix "derl-distel-")

(defcustom derl-distel-directory nil
  "Distel's source tree, holding elisp/ and src/; nil to look for it.
When nil, `derl-distel-setup' finds it from where distel.el is on
`load-path', or asks."
  :type '(choice (const :tag "Find it" nil) directory))

(defcustom derl-distel-cache-directory
  (locate-user-emacs-file "derl-distel/")
  "Where `derl-distel-setup' puts Distel's compiled backend."
  :type 'directory)

(defconst derl-distel--lisp-directory
  (file-name-directory (or load-file-name buffer-file-name))
  "Derl's lisp/ directory.")

(defvar distel-ebin-directory)
(defvar distel-inhibit-backend-check)
(defvar erl-nodes)
(declare-function distel-setup "distel" ())
(declare-function derl-call "derl-rpc")
(declare-function erl-binary "erlext")

(defun derl-distel--find ()
  "Return Distel's source tree from `derl-distel-directory' or `load-path'."
  (or derl-distel-directory
      (let ((file (locate-file "distel.el" load-path)))
        (and file (file-name-directory
                   (directory-file-name (file-name-directory file)))))))

(defun derl-distel-compile-backend (directory)
  "Compile Distel's backend in DIRECTORY/src with erlc; return the ebin.
The beams go to a directory under `derl-distel-cache-directory'
named after DIRECTORY, and are rebuilt only when a source is newer."
  (let* ((sources (directory-files (expand-file-name "src" directory) t
                                   "\\.erl\\'"))
         (ebin (expand-file-name
                (concat (md5 (file-truename directory)) "/ebin")
                derl-distel-cache-directory))
         (stale (cl-remove-if
                 (lambda (src)
                   (file-newer-than-file-p
                    (expand-file-name
                     (concat (file-name-base src) ".beam") ebin)
                    src))
                 sources)))
    (unless sources
      (user-error "No Erlang sources in %s/src: is it Distel's tree?"
                  directory))
    (when stale
      (make-directory ebin t)
      (with-current-buffer (get-buffer-create "*derl-distel-erlc*")
        (erase-buffer)
        (unless (zerop (apply #'call-process "erlc" nil t nil "-o" ebin stale))
          (display-buffer (current-buffer))
          (error "Compiling Distel's backend failed; see *derl-distel-erlc*"))))
    ebin))

(defun derl-distel--file-bytes (file)
  "Return the contents of FILE as a unibyte string."
  (with-temp-buffer
    (set-buffer-multibyte nil)
    (insert-file-contents-literally file)
    (buffer-string)))

(defun derl-distel-upload-backend (node ebin)
  "Load Distel's backend, the beams in EBIN, into NODE unless it has it.
As Distel's `erl-check-backend' does when a node comes up, but
waiting for the node's answers: once this returns, Distel's
commands work on NODE.  Return nil, or a string saying what failed."
  (require 'derl-rpc)
  (condition-case err
      (let ((loaded (derl-call node 'code 'ensure_loaded '(distel))))
        (unless (and (vectorp loaded) (eq (aref loaded 0) 'module))
          (dolist (beam (directory-files ebin t "\\.beam\\'"))
            (let* ((module (intern (file-name-base beam)))
                   (result (derl-call node 'code 'load_binary
                                      (list module beam
                                            (erl-binary
                                             (derl-distel--file-bytes beam))))))
              (unless (and (vectorp result) (eq (aref result 0) 'module))
                (error "Loading %s failed: %S" module result)))))
        nil)
    (error (error-message-string err))))

(defun derl-distel--upload-to-connected (ebin)
  "Load Distel's backend from EBIN into every node connected now.
Distel uploads it from `erl-nodeup-hook', which ran for these nodes
before Distel was loaded.  A node that fails is reported, and the
others are still served."
  (unless (bound-and-true-p distel-inhibit-backend-check)
    (dolist (node erl-nodes)
      (let ((failure (derl-distel-upload-backend node ebin)))
        (when failure
          (message "Distel's backend is not loaded into %s: %s"
                   node failure))))))

(defun derl-distel--erlang-mode-directory ()
  "Return the emacs/ directory of Erlang's tools application, or nil."
  (let ((dir (ignore-errors
               (with-temp-buffer
                 (when (zerop (call-process
                               "erl" nil t nil "-noshell" "-eval"
                               "io:format(\"~s\", [code:lib_dir(tools)])"
                               "-s" "init" "stop"))
                   (expand-file-name "emacs" (buffer-string)))))))
    (and dir (file-exists-p (expand-file-name "erlang.el" dir)) dir)))

(defun derl-distel--arrange-load-path (distel-elisp)
  "Put derl's lisp/ first on `load-path' and DISTEL-ELISP after it."
  (let ((ours (directory-file-name derl-distel--lisp-directory))
        (theirs (directory-file-name distel-elisp)))
    (setq load-path (cl-remove-if (lambda (dir)
                                    (member (directory-file-name dir)
                                            (list ours theirs)))
                                  load-path))
    (push theirs load-path)
    (push ours load-path)
    (unless (locate-library "erlang")
      (let ((dir (derl-distel--erlang-mode-directory)))
        (if dir
            (add-to-list 'load-path dir t)
          (user-error "Distel needs erlang-mode (erlang.el): install it"))))))

(defun derl-distel--check-transport ()
  "Signal an error if Distel's own transport is loaded already."
  (when (or (featurep 'net-fsm)
            (and (featurep 'erl) (not (fboundp 'erl--make-local-pid))))
      (user-error "Distel's own erl.el is loaded already; restart Emacs \
and run `derl-distel-setup' before loading Distel")))

;;;###autoload
(defun derl-distel-setup (&optional directory)
  "Make Distel, found in DIRECTORY, run on derl, and load it.
DIRECTORY is Distel's source tree (with elisp/ and src/); by
default `derl-distel-directory', or where distel.el is found on
`load-path'.  Compile Distel's Erlang backend into
`derl-distel-cache-directory' and set `distel-ebin-directory',
put derl's lisp/ before Distel's elisp/ on `load-path', load
Distel, and enable it in `erlang-mode' buffers.  Load the backend
into the nodes connected already, whose `erl-nodeup-hook' ran
before Distel's was there.  Return the directory of the compiled
backend."
  (interactive
   (list (or (derl-distel--find)
             (read-directory-name "Distel's source tree: " nil nil t))))
  (let* ((directory (file-name-as-directory
                     (expand-file-name
                      (or directory (derl-distel--find)
                          (user-error "Where is Distel?  Set \
`derl-distel-directory'")))))
         (elisp (expand-file-name "elisp" directory)))
    (unless (file-exists-p (expand-file-name "distel.el" elisp))
      (user-error "No elisp/distel.el in %s" directory))
    (derl-distel--check-transport)
    (let ((ebin (derl-distel-compile-backend directory)))
      (derl-distel--arrange-load-path elisp)
      (setq distel-ebin-directory ebin)
      ;; Loaded from source, distel.el compiles "its" tree with make
      ;; at load time: skip that, the backend is built.
      (require 'compile)
      (cl-letf (((symbol-function 'compile) #'ignore))
        (require 'distel))
      (setq distel-ebin-directory ebin)
      (distel-setup)
      (derl-distel--upload-to-connected ebin)
      (when (called-interactively-p 'interactive)
        (message "Distel runs on derl; its backend is in %s" ebin))
      ebin)))

(provide 'derl-distel)

;;; derl-distel.el ends here

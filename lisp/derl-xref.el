;;; derl-xref.el --- M-. to definitions, as a live node knows them  -*- lexical-binding: t; -*-

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

;; An xref backend, `derl', whose definitions are where the node says
;; its code comes from: `M-.' on module:function (Module.function in
;; Elixir), a module, or a local call goes to the source file the node
;; knows (the one the module was compiled from, or the src directory
;; beside its ebin, where OTP's sources are installed), at the
;; function's line (from the debug info, the documentation's
;; annotations, or else a search of the file).  M-, comes back.
;;
;; The node's file is opened when this Emacs sees the same file at the
;; same path; otherwise the node's machine is another one, and, with
;; `derl-knowledge-fetch-sources', the node's copy is shown, read-only,
;; saying so.

;;; Code:

(require 'cl-lib)
(require 'subr-x)
(require 'xref)
(require 'derl-node-info)
(require 'derl-complete)

(declare-function derl-knowledge-mode "derl-knowledge" (&optional arg))

(defvar-local derl-xref--origin nil
  "In a node's copy of a source: (NODE . PATH).")

(defcustom derl-knowledge-fetch-sources t
  "Non-nil: `M-.' shows the node's copy of a source this Emacs cannot see.
That is when the node runs on another machine (or in a container or
chroot) and this Emacs has no file at the path the node gives, or a
different one.  The copy is read from the node, read-only.  nil
says where the source is instead."
  :type 'boolean
  :group 'derl)

(defcustom derl-knowledge-max-source-size (* 8 1024 1024)
  "The largest source file, in bytes, that `M-.' reads from a node."
  :type 'natnum
  :group 'derl)

(defun derl-xref-backend ()
  "The `derl' xref backend, for `xref-backend-functions'."
  'derl)

(defun derl-xref--identifier (reference)
  "The xref identifier of REFERENCE, (MODULE FUNCTION ARITY ...)."
  (pcase-let ((`(,module ,function ,arity . ,_) reference))
    (propertize (if module
                    (derl-node-info-reference-text
                     module function arity (derl-knowledge-buffer-language))
                  (format "%s%s" function (if arity (format "/%d" arity) "")))
                'derl-xref (list module function arity))))

(cl-defmethod xref-backend-identifier-at-point ((_backend (eql derl)))
  "The reference at point: module:function/arity, a module, a local call."
  (let ((reference (derl-node-info-reference-at-point)))
    (and reference (derl-xref--identifier reference))))

(cl-defmethod xref-backend-identifier-completion-table ((_backend (eql derl)))
  "The node's modules, then a module's functions."
  (let ((node (derl-knowledge-buffer-node)))
    (if node
        (derl-complete-reference-table node (derl-knowledge-buffer-language))
      nil)))

(cl-defmethod xref-backend-definitions ((_backend (eql derl)) identifier)
  "Where, by the node's answer, IDENTIFIER (module or function) is defined."
  (let* ((node (derl-knowledge-buffer-node t))
         (parsed (or (get-text-property 0 'derl-xref identifier)
                     (derl-node-info-parse-any-reference
                      (string-trim identifier)))))
    (unless parsed
      (user-error "Not a module or function: %s" identifier))
    (pcase-let ((`(,module ,function ,arity) parsed))
      (derl-xref-definitions node module function arity))))

;;;; Where a definition is

(defun derl-xref--details (node module)
  "Return NODE's answer to where MODULE's code is, waiting for it."
  (let ((details (derl-with-progress (format "Asking %s where %s is..." node
                                             module)
                   (derl-node-info-fetch node (cons 'details module)))))
    (derl-node-info-note-missing node details 'debug-info)
    details))

(defun derl-xref--lines (details function arity)
  "The lines of FUNCTION (of ARITY, or any) in DETAILS: ((ARITY LINE)...)."
  (cl-loop for (name a line) in (derl-node-info-details-lines details)
           when (and (equal name function) (or (null arity) (eql a arity))
                     (integerp line) (> line 0))
           collect (list a line)))

(defun derl-xref--definition-regexp (function elixir)
  "A regexp for the definition of FUNCTION (nil: the module), in ELIXIR or not."
  (cond ((and elixir function)
         (format "^[ \t]*\\(?:def\\|defp\\|defmacro\\|defmacrop\\|defdelegate\
\\|defguard\\|defguardp\\)[ \t]+%s\\_>" (regexp-quote function)))
        (elixir "^[ \t]*defmodule[ \t]")
        (function (format "^%s[ \t]*(" (regexp-quote function)))
        (t "^-module(")))

(defun derl-xref--search-line (buffer-or-file regexp)
  "The line of the first match of REGEXP in BUFFER-OR-FILE, or 1."
  (cl-flet ((search ()
              (save-excursion
                (save-restriction
                  (widen)
                  (goto-char (point-min))
                  (let ((case-fold-search nil))
                    (if (re-search-forward regexp nil t)
                        (line-number-at-pos (match-beginning 0))
                      1))))))
    (if (bufferp buffer-or-file)
        (with-current-buffer buffer-or-file (search))
      (with-temp-buffer
        (insert-file-contents buffer-or-file)
        (search)))))

(defconst derl-xref--source-extensions '("erl" "hrl" "ex" "exs" "lfe")
  "The extensions of the files `M-.' opens as sources a node names.")

(defconst derl-xref--modes
  '(("\\.[eh]rl\\'" erlang-mode)
    ("\\.exs?\\'" elixir-ts-mode elixir-mode)
    ("\\.lfe\\'" lfe-mode))
  "The major modes of a node's copy of a source, by its name.")

(defun derl-xref--copy-mode (path)
  "Turn on the major mode of the node's copy of PATH, by its name alone.
Not by its text: that comes from the node."
  (let ((modes (cdr (cl-find-if (lambda (entry) (string-match-p (car entry) path))
                                derl-xref--modes))))
    (funcall (or (cl-find-if #'fboundp modes) #'fundamental-mode))))

(defun derl-xref--same-file-p (path size)
  "Non-nil if this Emacs has the node's file PATH, of SIZE bytes."
  (let ((attributes (file-attributes path)))
    (and attributes (eql (file-attribute-size attributes) size))))

(defun derl-xref--node-copy (node path size)
  "A buffer with NODE's copy of PATH, SIZE bytes, read from the node."
  (when (> size derl-knowledge-max-source-size)
    (user-error "%s on %s is %d bytes, more than derl-knowledge-max-source-size"
                path node size))
  (let* ((name (format "%s (%s)" (file-name-nondirectory path) node))
         (buffer (get-buffer name)))
    (or (and buffer
             (equal (buffer-local-value 'derl-xref--origin buffer)
                    (cons node path))
             buffer)
        (let ((answer (derl-with-progress (format "Reading %s from %s..."
                                                  path node)
                        (derl-call node 'file 'read_file
                                   (list (derl-node-info--binary path))
                                   derl-knowledge-timeout))))
          (pcase answer
            (`[ok ,bytes]
             (with-current-buffer (get-buffer-create name)
               (let ((inhibit-read-only t))
                 (erase-buffer)
                 (insert (decode-coding-string (if (erl-binaryp bytes)
                                                   (erl-binary-string bytes)
                                                 bytes)
                                               'utf-8))
                 (derl-xref--copy-mode path)
                 (setq-local derl-xref--origin (cons node path))
                 (setq-local derl-knowledge-node node)
                 (when (fboundp 'derl-knowledge-mode)
                   (derl-knowledge-mode 1))
                 (setq header-line-format
                       (format "%s's copy of %s (read-only)" node path))
                 (set-buffer-modified-p nil)
                 (setq buffer-read-only t)
                 (goto-char (point-min)))
               (current-buffer)))
            (_ (user-error "%s cannot read %s: %s" node path
                           (derl-term-to-string answer))))))))

(defun derl-xref--loaded-as (details)
  "The source this Emacs has that DETAILS's module was loaded as, or nil.
derl-mode loads what it compiles from a buffer as the buffer's file,
so that the node's code:which names it, whether the node can see that
file or not: a source of this Emacs, visited or on its disk."
  (let ((beam (derl-node-info-details-beam details)))
    (and beam
         (member (file-name-extension beam) derl-xref--source-extensions)
         (or (find-buffer-visiting beam) (file-exists-p beam))
         beam)))

(defun derl-xref--where (node details)
  "Return where DETAILS's source, on NODE, is for this Emacs.
That is a file name or a buffer.
Say so when it is the node's copy; signal `user-error' when there is
none this Emacs can show."
  (let ((source (derl-node-info-details-source details))
        (module (derl-node-info-module-text
                 (derl-node-info-details-name details)
                 (if (derl-node-info-details-elixir details) 'elixir 'erlang)))
        (loaded-as (derl-xref--loaded-as details)))
    (cond
     ;; Compiled by derl-mode from a buffer's text: that buffer or file.
     ((and loaded-as (or (find-buffer-visiting loaded-as)
                         (null source)
                         (not (derl-xref--same-file-p (car source)
                                                      (cdr source)))))
      (or (find-buffer-visiting loaded-as) loaded-as))
     ((null source)
      (user-error "%s has no source of %s%s" node module
                  (let ((from (derl-node-info-details-compiled-from details)))
                    (if from (format ": it was compiled from %s, which is \
not there" from)
                      ""))))
     ((not (member (file-name-extension (car source))
                   derl-xref--source-extensions))
      (user-error "%s names %s as the source of %s: not an Erlang or \
Elixir source, not opened" node (car source) module))
     ((derl-xref--same-file-p (car source) (cdr source))
      (or (find-buffer-visiting (car source)) (car source)))
     ((not derl-knowledge-fetch-sources)
      (user-error "%s is on %s's machine, which is not this one%s"
                  (car source) node
                  (if (file-exists-p (car source))
                      " (the file here differs)" "")))
     (t
      (prog1 (derl-xref--node-copy node (car source) (cdr source))
        (message "%s is on %s's machine, not this one%s: showing the node's copy"
                 (car source) node
                 (if (file-exists-p (car source))
                     " (the file here differs)" "")))))))

(defun derl-xref--location (where line)
  "An xref location at LINE of WHERE, a file name or a buffer."
  (if (bufferp where)
      (xref-make-buffer-location
       where (with-current-buffer where
               (save-restriction
                 (widen)
                 (save-excursion
                   (goto-char (point-min))
                   (forward-line (1- line))
                   (point)))))
    (xref-make-file-location where line 0)))

(defun derl-xref--local-definition (function arity)
  "The definition of FUNCTION/ARITY in the current buffer itself, or nil.
For a local call of a function the node does not have yet."
  (let ((line (derl-xref--search-line
               (current-buffer)
               (derl-xref--definition-regexp
                function (eq (derl-knowledge-buffer-language) 'elixir)))))
    (when (and line (> line 1))
      (list (xref-make (format "%s%s" function (if arity (format "/%d" arity) ""))
                       (derl-xref--location (current-buffer) line))))))

(defun derl-xref--module-has-p (node module function arity)
  "Return non-nil if FUNCTION (of ARITY, or any) is in NODE's MODULE."
  (let ((details (ignore-errors
                   (derl-node-info-fetch node (cons 'details module)))))
    (and details
         (or (derl-xref--lines details function arity)
             (let ((info (ignore-errors
                           (derl-node-info-fetch node (cons 'functions module)))))
               (let ((f (derl-node-info-lookup info function)))
                 (and f (or (null arity)
                            (memq arity (derl-node-info-function-arities f))))))))))

(defun derl-xref-definitions (node module function arity)
  "Xref items for MODULE's FUNCTION/ARITY on NODE; FUNCTION nil: the module.
MODULE nil is a local call of the current buffer: the buffer's own
module, then the modules every such call sees."
  (if (null module)
      (let ((own (derl-node-info-buffer-module))
            (found nil))
        (dolist (candidate (derl-node-info-local-modules node))
          (when (and (not found)
                     (derl-xref--module-has-p node candidate function arity))
            (setq found candidate)))
        (cond (found (derl-xref-definitions node found function arity))
              ((and own (derl-xref--local-definition function arity)))
              (t (user-error "No definition of %s%s found on %s" function
                             (if arity (format "/%d" arity) "") node))))
    (let* ((details (derl-xref--details node module))
           (language (if (derl-node-info-details-elixir details) 'elixir
                       (derl-knowledge-buffer-language))))
      (unless (derl-node-info-details-exists details)
        (user-error "%s has no module %s" node
                    (derl-node-info-module-text module language)))
      (let* ((where (derl-xref--where node details))
             (lines (and function (derl-xref--lines details function arity)))
             (elixir (derl-node-info-details-elixir details)))
        (if lines
            (mapcar (lambda (al)
                      (xref-make (derl-node-info-reference-text
                                  module function (car al) language)
                                 (derl-xref--location where (cadr al))))
                    (cl-remove-duplicates lines :key #'cadr))
          (list (xref-make (derl-node-info-reference-text module function arity
                                                          language)
                           (derl-xref--location
                            where
                            (derl-xref--search-line
                             where (derl-xref--definition-regexp
                                    function elixir))))))))))

(provide 'derl-xref)

;;; derl-xref.el ends here

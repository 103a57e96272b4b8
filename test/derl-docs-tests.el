;;; derl-docs-tests.el --- the file map and the manual keep up with the tree  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; Two documents name things the code defines, and drift when the
;; code changes without them:
;;
;; - doc/design.org's file map ("What each file owns") must list every
;;   file git tracks under module/, lisp/ and test/ (the fuzz seeds
;;   excepted: the map names their directory), and name no file that
;;   is gone;
;; - doc/derl.texi, the manual, must document every user option
;;   (`defcustom'), every autoloaded command, function and macro, and
;;   every public function or macro README.org names, and document
;;   nothing that lisp/ no longer defines.
;;
;; Both read the files as text: nothing is loaded, no node is needed.

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'subr-x)
(require 'derl-ert)

(defun derl-docs--file (name)
  "The text of NAME, a file of the tree."
  (with-temp-buffer
    (insert-file-contents (expand-file-name name derl-test-root))
    (buffer-string)))

;;;; The file map

(defun derl-docs--git-files (&rest paths)
  "The files git tracks under PATHS, relative to the tree's root.
Nil when the tree is not a git work tree (a package, an export)."
  (with-temp-buffer
    (let ((default-directory derl-test-root))
      (when (and (executable-find "git")
                 (eql (call-process "git" nil t nil "rev-parse"
                                    "--is-inside-work-tree")
                      0))
        (erase-buffer)
        (when (eql (apply #'call-process "git" nil t nil "ls-files" "-z" "--"
                          paths)
                   0)
          (split-string (buffer-string) "\0" t))))))

(defconst derl-docs--generated
  "\\(?:\\.elc\\|\\.eln\\|\\.so\\|\\.o\\|-autoloads\\.el\\|\\.info\\)\\'"
  "What the build makes, which the file map does not list.")

(defun derl-docs--map-entries ()
  "The paths doc/design.org's file map names, in order.
They are the =quoted= paths in the first cell of each row of the
table of its section \"What each file owns\"; a path ending in /
stands for the files under it."
  (with-temp-buffer
    (insert (derl-docs--file "doc/design.org"))
    (goto-char (point-min))
    (unless (re-search-forward "^\\*\\* What each file owns$" nil t)
      (error "doc/design.org has no section \"What each file owns\""))
    (let ((end (save-excursion
                 (if (re-search-forward "^\\*+ " nil t)
                     (match-beginning 0)
                   (point-max))))
          (entries nil))
      (while (re-search-forward "^|\\([^-|\n][^|\n]*\\)|" end t)
        (let ((cell (match-string 1))
              (start 0))
          (while (string-match "=\\([^= \t]+\\)=" cell start)
            (push (match-string 1 cell) entries)
            (setq start (match-end 0)))))
      (nreverse entries))))

(defun derl-docs--covered-p (file entries)
  "Non-nil if FILE is one of ENTRIES or under a directory entry of them."
  (cl-some (lambda (entry)
             (if (string-suffix-p "/" entry)
                 (string-prefix-p entry file)
               (equal entry file)))
           entries))

(ert-deftest derl-docs-file-map ()
  "doc/design.org's file map lists every file of module/, lisp/ and test/.
Every file git tracks there is in it (the fuzz seeds by their
directory, what the build makes not at all), and every path it names
is a file git tracks, or a directory holding some."
  (let ((files (derl-docs--git-files "module" "lisp" "test"))
        (all (derl-docs--git-files))
        (entries (derl-docs--map-entries)))
    (skip-unless files)
    (should (> (length entries) 80))
    (should (equal (cl-remove-if
                    (lambda (file)
                      (or (string-prefix-p "test/fuzz/seeds/" file)
                          (string-match-p derl-docs--generated file)
                          (derl-docs--covered-p file entries)))
                    files)
                   nil))
    (should (equal (cl-remove-if
                    (lambda (entry)
                      (if (string-suffix-p "/" entry)
                          (cl-some (lambda (file) (string-prefix-p entry file))
                                   all)
                        (member entry all)))
                    entries)
                   nil))
    ;; One row a file: a file named twice is a map that drifted.
    (should (equal (cl-remove-duplicates
                    (cl-remove-if-not
                     (lambda (e) (member e (cdr (member e entries))))
                     entries)
                    :test #'equal)
                   nil))))

;;;; The manual

(defconst derl-docs--definers
  '("defun" "defmacro" "cl-defun" "cl-defmacro" "defsubst" "cl-defsubst"
    "define-inline" "define-minor-mode" "define-derived-mode" "defalias"
    "defvar" "defvar-local" "defconst" "defcustom"
    "define-obsolete-function-alias" "erl--defprocvar")
  "The forms whose second element names what lisp/ defines.
`erl--defprocvar' is erl.el's: it defines a variable of each process.")

(defun derl-docs--lisp-files ()
  "The Lisp files of lisp/, not the generated autoloads."
  (cl-remove-if (lambda (file) (string-suffix-p "-autoloads.el" file))
                (directory-files (expand-file-name "lisp" derl-test-root) t
                                 "\\.el\\'")))

(defun derl-docs--lisp-definitions ()
  "What lisp/*.el define at the start of a line, as a plist.
:options the `defcustom's, :autoloaded the definitions under an
autoload cookie, :functions the functions and macros, :all every
name defined by one of `derl-docs--definers'."
  (let ((options nil) (autoloaded nil) (functions nil) (all nil)
        (definer (concat "^(" (regexp-opt derl-docs--definers t)
                         "[ \t\n]+'?\\([^ \t\n()]+\\)")))
    (dolist (file (derl-docs--lisp-files))
      (with-temp-buffer
        (insert-file-contents file)
        (goto-char (point-min))
        (while (re-search-forward definer nil t)
          (let ((kind (match-string 1))
                (name (match-string 2)))
            (push name all)
            (when (equal kind "defcustom")
              (push name options))
            (when (member kind '("defun" "defmacro" "cl-defun" "cl-defmacro"
                                 "defsubst" "cl-defsubst" "define-inline"
                                 "define-minor-mode" "define-derived-mode"
                                 "defalias"))
              (push name functions))
            (when (save-excursion
                    (forward-line -1)
                    (looking-at-p ";;;###autoload"))
              (push name autoloaded))))))
    (list :options options :autoloaded autoloaded
          :functions functions :all all)))

(defun derl-docs--manual-entries ()
  "What doc/derl.texi documents, as a plist of name lists.
:functions the names of @deffn, @defun, @defmac and their x forms,
and of @findex; :variables those of @defopt, @defvar and their x
forms, and of @vindex; :options those of @defopt and @defoptx."
  (let ((functions nil) (variables nil) (options nil))
    (with-temp-buffer
      (insert (derl-docs--file "doc/derl.texi"))
      (goto-char (point-min))
      (while (re-search-forward
              (concat "^@\\(def\\(?:fn\\|un\\|mac\\|spec\\|opt\\|var\\)x?"
                      "\\|findex\\|vindex\\)[ \t]+"
                      "\\(?:{[^}\n]*}[ \t]+\\|Command[ \t]+\\)?\\([^ \t\n]+\\)")
              nil t)
        (let ((command (match-string 1))
              (name (match-string 2)))
          (cond ((string-match-p "\\`\\(?:def\\(?:opt\\|var\\)x?\\|vindex\\)\\'"
                                 command)
                 (push name variables)
                 (when (string-match-p "\\`defoptx?\\'" command)
                   (push name options)))
                (t (push name functions))))))
    (list :functions functions :variables variables :options options)))

(defun derl-docs--readme-functions (functions)
  "The public names of FUNCTIONS that README.org names.
A name counts when README writes it as =NAME=, =(NAME ...)= or
M-x NAME; private names (with --) never count."
  (let ((text (derl-docs--file "README.org")))
    (cl-remove-if-not
     (lambda (name)
       (and (not (string-match-p "--" name))
            (string-match-p (concat "\\(?:=(?\\|M-x \\)" (regexp-quote name)
                                    "\\(?:=\\|[ )]\\)")
                            text)))
     functions)))

(ert-deftest derl-docs-manual ()
  "doc/derl.texi documents every option and autoloaded definition.
Every `defcustom' of lisp/ is a @defopt; every definition under an
autoload cookie, and every public function or macro README.org
names, is in the function index; and every function, macro, option
or variable the manual defines is defined in lisp/."
  (let* ((lisp (derl-docs--lisp-definitions))
         (manual (derl-docs--manual-entries))
         (documented (plist-get manual :functions)))
    (should (> (length (plist-get lisp :options)) 40))
    (should (> (length (plist-get lisp :autoloaded)) 15))
    (should (> (length (derl-docs--readme-functions
                        (plist-get lisp :functions)))
               20))
    (should (equal (cl-set-difference (plist-get lisp :options)
                                      (plist-get manual :options)
                                      :test #'equal)
                   nil))
    (should (equal (cl-set-difference (plist-get lisp :autoloaded)
                                      (append documented
                                              (plist-get manual :variables))
                                      :test #'equal)
                   nil))
    (should (equal (cl-set-difference
                    (derl-docs--readme-functions (plist-get lisp :functions))
                    documented :test #'equal)
                   nil))
    (should (equal (cl-set-difference
                    (append documented (plist-get manual :variables))
                    (plist-get lisp :all) :test #'equal)
                   nil))))

(ert-deftest derl-docs-manual-builds ()
  "makeinfo builds doc/derl.texi without an error or a warning."
  (skip-unless (executable-find "makeinfo"))
  (let ((info (derl-test-scratch-file "derl.info")))
    (with-temp-buffer
      (should (equal (list (call-process "makeinfo" nil t nil
                                         "--no-split" "-o" info
                                         (expand-file-name "doc/derl.texi"
                                                           derl-test-root))
                           (buffer-string))
                     '(0 ""))))
    (with-temp-buffer
      (insert-file-contents info)
      ;; C-h i m derl finds it.
      (should (search-forward "* derl: (derl)." nil t)))))

(provide 'derl-docs-tests)

;;; derl-docs-tests.el ends here

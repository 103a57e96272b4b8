;;; derl-lint-tests.el --- the Lisp compiles and documents cleanly  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; Every file in lisp/ byte-compiles (and native-compiles, where this
;; Emacs can) without a warning, and passes `checkdoc' and
;; `package-lint' (Debian's elpa-package-lint); every option is in the
;; group `derl', documented and typed.  Each check runs
;; in a fresh Emacs so that nothing loaded by the tests hides a missing
;; `require'.

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'derl-ert)

(defun derl-lint--lisp-files ()
  "Return the Lisp files of the package, not the generated autoloads."
  (cl-remove-if (lambda (file) (string-suffix-p "-autoloads.el" file))
                (directory-files (expand-file-name "lisp" derl-test-root) t
                                 "\\.el\\'")))

(defun derl-lint--emacs (form)
  "Evaluate FORM in a fresh batch Emacs; return (EXIT-CODE . OUTPUT)."
  (with-temp-buffer
    (let ((code (call-process (expand-file-name invocation-name
                                                invocation-directory)
                              nil t nil "-Q" "--batch"
                              "-L" (expand-file-name "lisp" derl-test-root)
                              "--eval" (prin1-to-string form))))
      (cons code (buffer-string)))))

(ert-deftest derl-lint-byte-compile ()
  "Byte compilation gives no warnings."
  (dolist (file (derl-lint--lisp-files))
    (let ((dest (derl-test-scratch-file
                 (concat (file-name-nondirectory file) "c"))))
      (should (equal (list file
                           (derl-lint--emacs
                            `(progn
                               (setq byte-compile-dest-file-function
                                     (lambda (_) ,dest))
                               (setq byte-compile-error-on-warn t)
                               (unless (byte-compile-file ,file)
                                 (kill-emacs 1)))))
                     (list file '(0 . "")))))))

(ert-deftest derl-lint-native-compile ()
  "Native compilation gives no warnings."
  (skip-unless (and (fboundp 'native-comp-available-p)
                    (native-comp-available-p)))
  (dolist (file (derl-lint--lisp-files))
    (let ((result (derl-lint--emacs
                   `(progn
                      (setq native-compile-target-directory
                            ,(derl-test-scratch-file "eln"))
                      (setq native-comp-async-report-warnings-errors nil)
                      (let ((warning-minimum-log-level :warning))
                        (native-compile ,file))))))
      (should (equal (list file (car result)) (list file 0)))
      (should-not (string-match-p "Warning" (cdr result))))))

(ert-deftest derl-lint-checkdoc ()
  "Checkdoc finds nothing to complain about."
  (dolist (file (derl-lint--lisp-files))
    (should (equal (list file (derl-lint--emacs `(checkdoc-file ,file)))
                   (list file '(0 . ""))))))

(defconst derl-lint--package-lint-exempt
  '(;; Distel's API keeps Distel's names.
    "\"\\(erl\\|epmd\\|mcase\\|with-erl\\|tuple\\)[^\"]*\" doesn't start with package's prefix"
    "`erl-exit/2' contains a non-standard separator"
    "\\`erl\\.el:.*Aliases should start with"    ; erl-term-to-binary...
    ;; package-lint 0.16 knows no Emacs newer than 27.
    "uninstallable in all released Emacs versions")
  "Regexps of package-lint lines, FILE:LINE:COLUMN: KIND: TEXT, to ignore.")

(defun derl-lint--package-lint-directories ()
  "Where package-lint and what it needs are installed, as Debian puts them."
  (let ((dirs (append (file-expand-wildcards
                       "/usr/share/emacs/site-lisp/elpa/package-lint-*")
                      (file-expand-wildcards
                       "/usr/share/emacs/site-lisp/elpa/let-alist-*"))))
    (and (cl-some (lambda (d) (string-match-p "package-lint" d)) dirs)
         dirs)))

;; .ci/run and test/deps.sh install it: never skipped where it can run.
(add-to-list 'derl-ert-must-run '(derl-lint-package-lint . always))

(ert-deftest derl-lint-package-lint ()
  "package-lint finds nothing wrong with the package."
  (let ((dirs (derl-lint--package-lint-directories)))
    (skip-unless dirs)
    (let ((result
           (derl-lint--emacs
            `(progn
               (setq load-path (append ',dirs load-path))
               (require 'package-lint)
               (setq package-lint-main-file
                     ,(expand-file-name "lisp/derl.el" derl-test-root))
               (dolist (file ',(derl-lint--lisp-files))
                 (with-current-buffer (find-file-noselect file)
                   (pcase-dolist (`(,line ,column ,kind ,text)
                                  (package-lint-buffer))
                     (let ((report (format "%s:%d:%d: %s: %s"
                                           (file-name-nondirectory file)
                                           line column kind text)))
                       (unless (cl-some (lambda (re) (string-match-p re report))
                                        ',derl-lint--package-lint-exempt)
                         (princ (concat report "\n")))))))))))
      (should (equal result '(0 . ""))))))

(ert-deftest derl-lint-options ()
  "Every option is in the group `derl', with a docstring and a type."
  (let ((result
         (derl-lint--emacs
          `(progn
             (dolist (file ',(derl-lint--lisp-files))
               (load file nil t))
             (let ((groups '(derl)) (members nil) (checked 0))
               ;; The group derl and its subgroups, with their members.
               (while groups
                 (dolist (member (get (pop groups) 'custom-group))
                   (if (eq (cadr member) 'custom-group)
                       (push (car member) groups)
                     (push (car member) members))))
               (mapatoms
                (lambda (symbol)
                  (let ((file (and (get symbol 'standard-value)
                                   (symbol-file symbol 'defvar))))
                    (when (and file (string-prefix-p
                                     ,(expand-file-name "lisp/" derl-test-root)
                                     file))
                      (setq checked (1+ checked))
                      (unless (memq symbol members)
                        (princ (format "%s: not in the group derl\n" symbol)))
                      (unless (get symbol 'custom-type)
                        (princ (format "%s: no :type\n" symbol)))
                      (unless (documentation-property
                               symbol 'variable-documentation)
                        (princ (format "%s: no docstring\n" symbol)))))))
               (when (< checked 20)
                 (princ (format "only %d options found\n" checked))))))))
    (should (equal result '(0 . "")))))

;; Which files count as source, for the licence check.
(defconst derl-lint--source-globs
  '("Makefile" ".ci/run" "module/*.[ch]" "lisp/*.el" "bench/*.el"
    "bench/*.erl" "bench/*.sh" "test/*.el" "test/*.sh" "test/c/*.c"
    "test/erl/*.erl" "test/elixir/*.exs" "test/fuzz/*.c" "test/fuzz/*.sh"
    "test/fuzz/*.escript" "doc/*.org")
  "Globs, relative to the tree's root, of files that must carry a licence.")

(ert-deftest derl-lint-spdx ()
  "Every source file names its licence with an SPDX line."
  (let ((files (cl-loop for glob in derl-lint--source-globs
                        append (file-expand-wildcards
                                (expand-file-name glob derl-test-root))))
        (missing nil))
    (should (> (length files) 40))
    (dolist (file (cl-remove-if (lambda (file)
                                  (string-suffix-p "-autoloads.el" file))
                                files))
      (with-temp-buffer
        (insert-file-contents file nil 0 4096)
        (unless (search-forward "SPDX-License-Identifier: GPL-3.0-or-later"
                                nil t)
          (push (file-relative-name file derl-test-root) missing))))
    (should (equal missing nil))))

;;;; Numbers shared with the C headers

(defun derl-lint--c-constants (regexp)
  "NAME -> value of every constant matching REGEXP in module/*.h.
REGEXP's first group is the name, its second the number (decimal, or
hexadecimal after 0x)."
  (let ((table (make-hash-table :test 'equal)))
    (dolist (file (file-expand-wildcards
                   (expand-file-name "module/*.h" derl-test-root)))
      (with-temp-buffer
        (insert-file-contents file)
        (while (re-search-forward regexp nil t)
          (let ((number (match-string 2)))
            (puthash (match-string 1)
                     (if (string-prefix-p "0x" number)
                         (string-to-number (substring number 2) 16)
                       (string-to-number number))
                     table)))))
    table))

(ert-deftest derl-lint-ops-and-flags-match-c ()
  "Lisp's operation numbers and capability flags are the C headers' own."
  (require 'derl-ops)
  (let ((ops (derl-lint--c-constants "\\_<DOP_\\([A-Z0-9_]+\\) *= *\\([0-9]+\\)"))
        (flags (derl-lint--c-constants
                "#define +DFLAG_\\([A-Z0-9_]+\\) +\\(0x[0-9a-fA-F]+\\)"))
        (checked 0))
    (should (> (hash-table-count ops) 25))
    (mapatoms
     (lambda (symbol)
       (let ((name (symbol-name symbol)))
         (when (string-match "\\`derl--\\(dop\\|flag\\)-\\(.*\\)\\'" name)
           (let* ((table (if (equal (match-string 1 name) "dop") ops flags))
                  (c-name (upcase (string-replace "-" "_"
                                                  (match-string 2 name)))))
             (cl-incf checked)
             (should (equal (list name (gethash c-name table))
                            (list name (symbol-value symbol)))))))))
    (should (> checked 30))))

(provide 'derl-lint-tests)

;;; derl-lint-tests.el ends here

;;; bench-native.el --- Natively compiled Lisp for the bench  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; An interactive Emacs built with native compilation (Debian's is)
;; compiles derl's Lisp in the background the first time it loads it,
;; and runs the native code from then on.  The bench measures that
;; code: `derl-bench-native-compile' compiles lisp/, test/derl-ert.el
;; and the bench drivers into build/eln before anything is measured,
;; and every bench Emacs loads this file first, so that it loads them
;; and compiles nothing while it measures.  A compiler running beside
;; a measurement would keep a core busy, and on a machine this small a
;; busy core makes the Erlang references several times faster.  An
;; Emacs without native compilation runs the byte code, as its users
;; do; so does every bench Emacs when DERL_BENCH_BYTE_CODE is set.

;;; Code:

(defconst derl-bench-native--root
  (expand-file-name ".." (file-name-directory
                          (or load-file-name buffer-file-name)))
  "The top directory of derl.")

(defconst derl-bench-native-directory
  (expand-file-name "build/eln/" derl-bench-native--root)
  "Where the bench keeps its natively compiled Lisp.")

(defun derl-bench-native-p ()
  "Non-nil if this Emacs can compile Lisp natively."
  (and (fboundp 'native-comp-available-p) (native-comp-available-p)))

(defvar native-comp-eln-load-path)
(declare-function native-compile "comp")

(defun derl-bench-native-wanted-p ()
  "Non-nil unless DERL_BENCH_BYTE_CODE asks for the byte code instead."
  (member (getenv "DERL_BENCH_BYTE_CODE") '(nil "" "0")))

(when (derl-bench-native-p)
  (when (derl-bench-native-wanted-p)
    (push derl-bench-native-directory native-comp-eln-load-path))
  ;; Emacs 29 renamed the variable; the old name is an obsolete alias.
  (set (if (boundp 'native-comp-jit-compilation)
           'native-comp-jit-compilation
         'native-comp-deferred-compilation)
       nil))

(defun derl-bench-native-compile ()
  "Compile derl's Lisp and the bench drivers natively, if this Emacs can."
  (let ((root derl-bench-native--root))
    (cond
     ((not (derl-bench-native-p))
      (message "Lisp: byte-compiled (this Emacs has no native compilation)"))
     ((not (derl-bench-native-wanted-p))
      (message "Lisp: byte-compiled (DERL_BENCH_BYTE_CODE is set)"))
     (t
      (dolist (file (append (directory-files (expand-file-name "lisp" root)
                                             t "\\.el\\'")
                            (list (expand-file-name "test/derl-ert.el" root))
                            (directory-files (expand-file-name "bench" root)
                                             t "\\`bench.*\\.el\\'")))
        (native-compile file))
      (message "Lisp: natively compiled, as an interactive Emacs runs it")))))

(provide 'bench-native)

;;; bench-native.el ends here

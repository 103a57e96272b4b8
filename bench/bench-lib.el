;;; bench-lib.el --- what derl's benchmark drivers share  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; Settings from the environment (quick mode, sizes), medians, the
;; memory figures of this Emacs from /proc, verdicts against targets,
;; and the summary file that bench/run.sh prints at the end.
;;
;; Environment:
;;   BENCH_QUICK=1          smaller and fewer runs, for development
;;   DERL_BENCH_SUMMARY     file each driver appends its summary rows to

;;; Code:

(require 'cl-lib)

(defconst derl-bench-root
  (file-name-directory
   (directory-file-name
    (file-name-directory (or load-file-name buffer-file-name
                             default-directory))))
  "The derl source tree: the parent of the directory of this file.")

;; Emacs 29 and later collect less often in batch mode
;; (`gc-cons-percentage' 1.0): measure under the setting an interactive
;; Emacs has, as users run it.
(setq gc-cons-percentage
      (eval (car (get 'gc-cons-percentage 'standard-value)) t))

(defconst derl-bench-quick
  (let ((env (getenv "BENCH_QUICK")))
    (and env (not (member env '("" "0")))))
  "Non-nil in quick mode (BENCH_QUICK=1): fewer and smaller runs.")

(defun derl-bench-setting (variable full quick)
  "Return the number in environment VARIABLE, else FULL or, quick, QUICK."
  (let ((env (getenv variable)))
    (if (and env (string-match-p "\\`[0-9]+\\'" env))
        (string-to-number env)
      (if derl-bench-quick quick full))))

(defun derl-bench-median (numbers)
  "Return the median of the list NUMBERS (the mean of the middle two if even)."
  (let* ((sorted (sort (copy-sequence numbers) #'<))
         (n (length sorted)))
    (if (cl-oddp n)
        (nth (/ n 2) sorted)
      (/ (+ (nth (1- (/ n 2)) sorted) (nth (/ n 2) sorted)) 2.0))))

(defun derl-bench-verdict (met)
  "Return \"met\" if MET is non-nil, else \"NOT met\"."
  (if met "met" "NOT met"))

;;;; Memory of this Emacs

(defun derl-bench-status-kb (field)
  "Return FIELD of /proc/self/status (such as \"VmHWM\") in KiB, or nil."
  (ignore-errors
    (with-temp-buffer
      (insert-file-contents "/proc/self/status")
      (when (re-search-forward (concat "^" field ":\\s-*\\([0-9]+\\) kB")
                               nil t)
        (string-to-number (match-string 1))))))

(defun derl-bench-reset-peak-rss ()
  "Make the kernel's peak RSS of this Emacs its current RSS.
Return non-nil if that worked (Linux: /proc/self/clear_refs)."
  (and (ignore-errors
         (let ((coding-system-for-write 'binary)
               (write-region-inhibit-fsync t))
           (write-region "5" nil "/proc/self/clear_refs" nil 'silent))
         t)
       (let ((rss (derl-bench-status-kb "VmRSS"))
             (hwm (derl-bench-status-kb "VmHWM")))
         (and rss hwm (<= (- hwm rss) 1024)))))

;;;; The machine

(defun derl-bench-load ()
  "Return the load averages of the machine (1, 5, 15 minutes), a string."
  (or (ignore-errors
        (with-temp-buffer
          (insert-file-contents "/proc/loadavg")
          (mapconcat #'identity
                     (cl-subseq (split-string (buffer-string)) 0 3) " ")))
      "unknown"))

;;;; The summary

(defun derl-bench-summary (section figure value target verdict)
  "Add a row to the summary file named by DERL_BENCH_SUMMARY, if set.
SECTION, FIGURE, VALUE, TARGET and VERDICT are strings; VERDICT is
\"met\", \"NOT met\" or a word saying why there is none."
  (let ((file (getenv "DERL_BENCH_SUMMARY")))
    (when (and file (not (string= file "")))
      (let ((coding-system-for-write 'utf-8-unix))
        (write-region (concat (mapconcat
                               (lambda (s)
                                 (replace-regexp-in-string "[\t\n]" " " s))
                               (list section figure value target verdict)
                               "\t")
                              "\n")
                      nil file t 'silent)))))

(defun derl-bench-say (format-string &rest args)
  "Print FORMAT-STRING with ARGS and a newline to standard output now."
  (princ (concat (apply #'format format-string args) "\n")))

(provide 'bench-lib)

;;; bench-lib.el ends here

;;; bench-tty.el --- round trips in an interactive terminal Emacs  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; Loaded at start-up by an `emacs -nw' that bench-net.el runs under
;; tmux.  The environment variable DERL_BENCH_TTY names a file (private
;; to the user) holding a plist: the nodes, EPMD port, cookie, trace
;; setting, how many round trips and pairs, and where to write the
;; result.  Once Emacs's command loop runs, this connects and then
;; alternates Emacs and Erlang round trips, each step started from a
;; timer and each measurement ending in a process filter, so that
;; Emacs waits as an interactive Emacs does, in its command loop with
;; redisplay, never in `accept-process-output'.  It writes the plist
;; (:emacs SECONDS... :erlang SECONDS...) or (:error TEXT) and exits.

;;; Code:

(require 'cl-lib)
(require 'derl)
(require 'erl)
(require 'bench-rt)

(defvar derl-bench-tty--config nil
  "The plist read from the file DERL_BENCH_TTY names.")

(defun derl-bench-tty--finish (figures)
  "Write FIGURES to the configuration's result file, then exit Emacs."
  (let* ((file (plist-get derl-bench-tty--config :result))
         (partial (concat file ".part")))
    (with-temp-file partial
      (prin1 figures (current-buffer)))
    (rename-file partial file t)
    (kill-emacs 0)))

(defmacro derl-bench-tty--guard (&rest body)
  "Run BODY; on an error, write it as the result and exit."
  (declare (indent 0) (debug t))
  `(condition-case err
       (progn ,@body)
     (error (derl-bench-tty--finish
             (list :error (error-message-string err))))))

(defun derl-bench-tty--later (function &rest args)
  "Call FUNCTION with ARGS from the command loop, through a timer."
  (run-at-time 0 nil (lambda () (derl-bench-tty--guard (apply function args)))))

(defun derl-bench-tty--pair (i emacs erlang)
  "Measure pair I (-1: warm-up) after EMACS and ERLANG, the lists so far."
  (let* ((c derl-bench-tty--config)
         (peer (plist-get c :peer))
         (client (plist-get c :client))
         (n (if (< i 0) 500 (plist-get c :round-trips))))
    (if (>= i (plist-get c :pairs))
        (derl-bench-tty--finish (list :emacs (nreverse emacs)
                                      :erlang (nreverse erlang)
                                      :terminal (terminal-name)))
      (message "derl bench: round trips, pair %d" (1+ i))
      (derl-bench-emacs-round-trips
       peer n
       (lambda (e)
         (derl-bench-tty--later
          #'derl-bench-erlang-round-trips client peer n
          (lambda (r)
            (if (< i 0)
                (derl-bench-tty--later #'derl-bench-tty--pair 0 nil nil)
              (derl-bench-tty--later #'derl-bench-tty--pair (1+ i)
                                     (cons e emacs) (cons r erlang))))))))))

(defun derl-bench-tty--start ()
  "Read the configuration, connect, and start the first pair."
  (derl-bench-tty--guard
    (setq derl-bench-tty--config
          (with-temp-buffer
            (insert-file-contents (getenv "DERL_BENCH_TTY"))
            (read (current-buffer))))
    (when noninteractive
      (error "Not an interactive Emacs"))
    (let ((c derl-bench-tty--config))
      (setq derl-cookie (plist-get c :cookie)
            derl-epmd-port (plist-get c :epmd-port)
            derl-use-trace-buffer (plist-get c :trace))
      (customize-set-variable 'erl-node-name (plist-get c :node-name))
      (derl-connect (plist-get c :peer))
      (derl-bench-tty--later #'derl-bench-tty--pair -1 nil nil))))

(add-hook 'emacs-startup-hook
          (lambda () (run-at-time 0.2 nil #'derl-bench-tty--start)))

(provide 'bench-tty)

;;; bench-tty.el ends here

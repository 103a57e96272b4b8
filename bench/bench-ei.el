;;; bench-ei.el --- OTP's C client as a reference for derl's benchmarks  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; The C client that the stream and the round trip are compared with,
;; besides Erlang itself: build/bench-ei, made by bench/run.sh from
;; bench/bench_ei.c with erlang-dev's erl_interface (`ei'), a hidden
;; node connected to one Erlang node.  Here it is started, driven and
;; stopped from Emacs: `derl-bench-ei-start', `derl-bench-ei-round-trips',
;; `derl-bench-ei-await-stream', `derl-bench-ei-stop'.  When it was not
;; built (no C compiler, no erlang-dev) `derl-bench-ei-start' returns nil
;; and the sections say what they skipped.

;;; Code:

(require 'cl-lib)
(require 'bench-lib)
(require 'derl-ert)
(require 'derl)

(defconst derl-bench-ei-program
  (expand-file-name "build/bench-ei" derl-bench-root)
  "The C client bench/run.sh builds.")

(cl-defstruct (derl-bench-ei (:constructor derl-bench-ei--make)
                             (:copier nil))
  "A running C client."
  (process nil :documentation "Its Emacs process.")
  (node nil :documentation "Its node name, a symbol.")
  (lines nil :documentation "Lines it printed, not yet taken, oldest first."))

(defun derl-bench-ei--filter (ei)
  "Return a process filter: append whole lines of output to EI's lines."
  (let ((partial ""))
    (lambda (_process text)
      (let ((lines (split-string (concat partial text) "\n")))
        (setq partial (car (last lines)))
        (setf (derl-bench-ei-lines ei)
              (append (derl-bench-ei-lines ei) (butlast lines)))))))

(defun derl-bench-ei--take-line (ei prefix what)
  "Wait for a line of EI starting with PREFIX; return the rest of it, split.
WHAT says what is waited for.  Lines before it are dropped."
  (let (found)
    (derl--wait (lambda ()
                  (while (and (not found) (derl-bench-ei-lines ei))
                    (let ((line (pop (derl-bench-ei-lines ei))))
                      (when (string-prefix-p prefix line)
                        ;; Non-nil even when the rest is empty.
                        (setq found (cons t (split-string
                                             (substring line
                                                        (length prefix))))))))
                  (or found
                      (not (process-live-p (derl-bench-ei-process ei)))))
                3600 what)
    (if found
        (cdr found)
      (error "The C client exited while waiting for %s" what))))

(defun derl-bench-ei-start (peer)
  "Start the C client connected to PEER; return it, or nil if not built."
  (when (file-executable-p derl-bench-ei-program)
    (let* ((node (intern (format "eibench%s@localhost"
                                 (derl-test-random-string 6))))
           (process-environment (derl-test-erl-environment))
           (ei (derl-bench-ei--make :node node))
           (process (make-process
                     :name "bench-ei" :connection-type 'pipe
                     :noquery t
                     :command (list derl-bench-ei-program (symbol-name node)
                                    derl-test-cookie (symbol-name peer))
                     :stderr (get-buffer-create " *bench-ei stderr*"))))
      (setf (derl-bench-ei-process ei) process)
      (set-process-filter process (derl-bench-ei--filter ei))
      (derl-bench-ei--take-line ei "ready" "the C client to connect")
      ei)))

(defun derl-bench-ei-stop (ei)
  "Stop the C client EI, if any."
  (when (and ei (process-live-p (derl-bench-ei-process ei)))
    (process-send-eof (derl-bench-ei-process ei))
    (cl-loop repeat 100 while (process-live-p (derl-bench-ei-process ei))
             do (accept-process-output (derl-bench-ei-process ei) 0.05))
    (when (process-live-p (derl-bench-ei-process ei))
      (delete-process (derl-bench-ei-process ei)))))

(defun derl-bench-ei-round-trips (ei n)
  "Seconds for N round trips from the C client EI to its peer's echo."
  (process-send-string (derl-bench-ei-process ei) (format "rt %d\n" n))
  (/ (string-to-number (car (derl-bench-ei--take-line ei "rt " "ei round trips")))
     1e6))

(defun derl-bench-ei-await-stream (ei)
  "Wait for the end of a stream into EI; return (RECEIVED DISORDERED END).
END is when it took `done', in seconds since the epoch."
  (let ((fields (mapcar #'string-to-number
                        (derl-bench-ei--take-line ei "done " "a stream into ei"))))
    (list (nth 0 fields) (nth 1 fields) (/ (nth 2 fields) 1e6))))

(provide 'bench-ei)

;;; bench-ei.el ends here

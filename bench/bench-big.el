;;; bench-big.el --- `make bench': one big binary each way, and Emacs's memory  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; One binary of DERL_BENCH_BIG_BYTES bytes (default 1 GiB; 64 MiB in
;; quick mode) crosses between a real Erlang node and this Emacs, in
;; the direction DERL_BENCH_BIG_DIRECTION says: "in" (Erlang -> Emacs
;; process, with `derl-max-message-size' raised for it) or "out" (an
;; Emacs process sends it as a binary; Erlang replies with its size).
;; bench/run.sh runs each direction in a fresh Emacs, so that the
;; kernel's peak RSS of the process (VmHWM in /proc/self/status) is
;; that of this one transfer.  Reported: that peak over the payload
;; (target <= 2.5x), the growth during the transfer over the payload,
;; and the time.  Settings are the user's defaults but for the message
;; size limit, and the trace buffer as DERL_BENCH_TRACE says ("on",
;; the default, or "off").

;;; Code:

(require 'cl-lib)
(require 'bench-lib)
(require 'bench-rt)
(require 'bench-net)
(require 'derl-ert)
(require 'derl)
(require 'erl)

(defvar derl-bench-big-bytes
  (derl-bench-setting "DERL_BENCH_BIG_BYTES" (* 1024 1024 1024)
                      (* 64 1024 1024))
  "Size of the binary in bytes.")

(defconst derl-bench-big-target 2.5
  "Largest peak RSS of Emacs over the payload that meets the target.")

(defun derl-bench--big-wait (start what)
  "Call START with a function that takes a value; wait for that value.
WHAT says what is waited for.  Return (VALUE . SECONDS)."
  (let* ((t0 (float-time))
         (result (derl-bench--await
                  (lambda (k)
                    (funcall start (lambda (value)
                                     (funcall k (cons value (float-time))))))
                  what)))
    (cons (car result) (- (cdr result) t0))))

(defun derl-bench--big-in (peer bytes)
  "Have PEER send a binary of BYTES bytes to an Emacs process.
Return (CHECK . SECONDS), CHECK being a string saying what arrived."
  (derl-bench--big-wait
   (lambda (k)
     (derl-bench-ask peer (lambda (pid) (vector 'big pid bytes))
                     (lambda (bin)
                       (funcall k (if (and (stringp bin) (= (length bin) bytes))
                                      "arrived whole"
                                    (format "arrived wrong: %S"
                                            (type-of bin)))))))
   "a big binary"))

(defun derl-bench--big-out (peer payload)
  "Send PAYLOAD as a binary to PEER from an Emacs process.
Return (CHECK . SECONDS) as `derl-bench--big-in' does."
  (derl-bench--big-wait
   (lambda (k)
     (derl-bench-ask peer (lambda (pid)
                            (vector 'size pid (erl-binary payload)))
                     (lambda (size)
                       (funcall k (if (eql size (length payload))
                                      "arrived whole"
                                    (format "Erlang got %S" size))))))
   "a big binary to be received"))

(defun derl-bench-big ()
  "Move one big binary in the direction named by DERL_BENCH_BIG_DIRECTION."
  (let* ((in (not (equal (getenv "DERL_BENCH_BIG_DIRECTION") "out")))
         (bytes derl-bench-big-bytes)
         (mb (/ bytes 1048576.0))
         (label (format "%s, %.0f MiB, %s"
                        (if in "Erlang -> Emacs" "Emacs -> Erlang") mb
                        (derl-bench--trace-label)))
         (peer nil))
    (setq derl-cookie derl-test-cookie
          derl-use-trace-buffer derl-bench-trace
          derl-epmd-port (derl-test-epmd-port)
          derl-max-message-size (max derl-max-message-size
                                     (+ bytes (* 1024 1024)))
          ;; What the binary builds in Emacs: the same bytes again.
          derl-max-message-memory (max derl-max-message-memory
                                       (* 2 (+ bytes (* 1024 1024)))))
    (customize-set-variable 'erl-node-name
                            (intern (format "emacsbig%s@localhost"
                                            (derl-test-random-string 4))))
    (unwind-protect
        (condition-case err
            (progn
              (setq peer (derl-bench--start-node))
              (derl-connect peer)
              (let* ((payload (and (not in) (make-string bytes ?x)))
                     (rss (progn (garbage-collect)
                                 (derl-bench-status-kb "VmRSS")))
                     (result (if in (derl-bench--big-in peer bytes)
                               (derl-bench--big-out peer payload)))
                     (peak (/ (derl-bench-status-kb "VmHWM") 1024.0))
                     (ratio (/ peak mb))
                     (growth (/ (- peak (/ rss 1024.0)) mb))
                     (ok (and (equal (car result) "arrived whole")
                              (<= ratio derl-bench-big-target))))
                (derl-bench-say "  %s: %s in %.2f s (%.0f MiB/s)"
                                label (car result) (cdr result)
                                (/ mb (cdr result)))
                (derl-bench-say "    peak RSS of Emacs %.0f MiB = %.2fx the \
payload  target <= %.1fx: %s"
                                peak ratio derl-bench-big-target
                                (derl-bench-verdict ok))
                (derl-bench-say "    growth during the transfer %.2fx the \
payload (from %.0f MiB%s)"
                                growth (/ rss 1024.0)
                                (if in "" ", the payload string included"))
                (derl-bench-summary "big binary" (concat label ": peak RSS / payload")
                                    (format "%.2fx (%.1f s)" ratio (cdr result))
                                    (format "<= %.1fx" derl-bench-big-target)
                                    (derl-bench-verdict ok))))
          (error
           (derl-bench-say "  %s: failed: %s" label (error-message-string err))
           (derl-bench-summary "big binary" (concat label ": peak RSS / payload")
                               "-" (format "<= %.1fx" derl-bench-big-target)
                               "NOT met (failed)")))
      (when peer
        (ignore-errors (derl-bench--disconnect peer))
        (derl-test-stop-node peer)))))

(provide 'bench-big)

;;; bench-big.el ends here

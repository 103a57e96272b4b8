;;; bench-net.el --- `make bench': connections, against Erlang itself  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; Measured in one run against real nodes on this machine:
;;   - round trip Emacs -> Erlang echo -> Emacs process mailbox, against
;;     the same between two Erlang nodes (target ratio <= 1.5);
;;   - a one-way stream of small messages from Erlang into an Emacs
;;     process matched by `erl-receive' (target >= 100,000 a second);
;;   - connection set-up time (EPMD and handshake);
;; each with `derl-use-trace-buffer' off and on.  Timing is reported,
;; never asserted.

;;; Code:

(require 'cl-lib)
(require 'derl-ert)
(require 'derl)
(require 'erl)

(defvar derl-bench-round-trips 10000 "Round trips per measurement.")
(defvar derl-bench-stream 100000 "Messages per stream measurement.")

(defun derl-bench--median (xs)
  "The median of the numbers XS."
  (let ((s (sort (copy-sequence xs) #'<)))
    (nth (/ (length s) 2) s)))

(defun derl-bench--erlang-round-trip (node n)
  "Seconds for N round trips from a fresh Erlang node to NODE's echo."
  (let* ((out (derl-test-erl "-eval"
                             (format "io:format(\"~p~n\", [derl_peer:round_trip('%s', %d)]), halt()."
                                     node n)))
         (micros (string-to-number (car (last (split-string (cdr out) "\n" t))))))
    (/ micros 1e6)))

(defun derl-bench--emacs-round-trip (node n)
  "Seconds for N round trips from an Emacs process to NODE's echo."
  (let* ((done nil)
         (echo (vector 'echo node))
         (start (float-time)))
    (erl-spawn
      (derl-bench--ping echo n (lambda () (setq done (float-time)))))
    (derl--wait (lambda () done) 300 "round trips")
    (- done start)))

(defun derl-bench--ping (echo n finish)
  "Send ping to ECHO and wait for it to come back, N times; then FINISH."
  (if (zerop n)
      (funcall finish)
    (erl-send echo (vector erl-self 'ping))
    (erl-receive (echo n finish)
        (('ping (derl-bench--ping echo (1- n) finish))))))

(defun derl-bench--stream (node n)
  "Messages per second streamed from NODE into an Emacs receive loop."
  (let* ((done nil)
         (pid (erl-spawn (derl-bench--sink (lambda () (setq done (float-time))))))
         (start (float-time)))
    (erl-send (vector 'echo node) (vector 'stream pid n))
    (derl--wait (lambda () done) 300 "a stream")
    (/ n (- done start))))

(defun derl-bench--sink (finish)
  "Receive until `done', then FINISH."
  (erl-receive (finish)
      (('done (funcall finish))
       (_ (derl-bench--sink finish)))))

(defun derl-bench--connect-time (node)
  "Milliseconds to connect to NODE, median of 10 (disconnecting between)."
  (derl-bench--median
   (cl-loop repeat 10
            collect (let ((start (float-time)))
                      (derl-connect node)
                      (prog1 (* 1000 (- (float-time) start))
                        (derl-disconnect node)
                        (derl--wait (lambda () (not (memq node (derl-nodes))))
                                    10 "disconnect"))))))

(defun derl-bench-net ()
  "Run the connection benchmarks and print the results."
  (setq derl-cookie derl-test-cookie
        derl-epmd-port (derl-test-epmd-port))
  (customize-set-variable 'erl-node-name
                          (intern (format "emacsbench%s@localhost"
                                          (derl-test-random-string 4))))
  (let ((node (derl-test-start-node))
        (n derl-bench-round-trips))
    (unwind-protect
        (progn
          (princ "\nConnections (real nodes on this machine)\n")
          (princ "========================================\n")
          (dolist (trace '(nil t))
            (let ((derl-use-trace-buffer trace))
              (derl-connect node)
              ;; Warm up both sides.
              (derl-bench--emacs-round-trip node 500)
              (derl-bench--erlang-round-trip node 500)
              (let* ((emacs (derl-bench--median
                             (cl-loop repeat 3 collect
                                      (derl-bench--emacs-round-trip node n))))
                     (erlang (derl-bench--median
                              (cl-loop repeat 3 collect
                                       (derl-bench--erlang-round-trip node n))))
                     (rate (derl-bench--median
                            (cl-loop repeat 3 collect
                                     (derl-bench--stream node derl-bench-stream))))
                     (setup (progn (derl-disconnect node)
                                   (derl--wait (lambda ()
                                                 (not (memq node (derl-nodes))))
                                               10 "disconnect")
                                   (derl-bench--connect-time node))))
                (princ (format "\ntrace buffer %s:\n" (if trace "on" "off")))
                (princ (format "  round trip Emacs->Erlang->Emacs  %7.1f us\n"
                               (/ (* 1e6 emacs) n)))
                (princ (format "  round trip Erlang->Erlang->Erlang %6.1f us\n"
                               (/ (* 1e6 erlang) n)))
                (princ (format "  ratio                            %7.2f  (target <= 1.5: %s)\n"
                               (/ emacs erlang)
                               (if (<= (/ emacs erlang) 1.5) "met" "NOT met")))
                (princ (format "  stream Erlang->Emacs process   %9.0f msg/s  (target >= 100000: %s)\n"
                               rate (if (>= rate 100000) "met" "NOT met")))
                (princ (format "  connection set-up (EPMD + handshake) %5.1f ms\n"
                               setup)))))
          (princ "\n"))
      (ignore-errors (derl-disconnect node))
      (derl-test-stop-node node))))

(provide 'bench-net)

;;; bench-net.el ends here

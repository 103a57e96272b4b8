;;; bench-tls.el --- `make bench': round trips over TLS, against Erlang's  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; The round trip Emacs -> Erlang echo -> Emacs process over TLS
;; distribution, against the same between two Erlang TLS nodes, in one
;; run (target ratio <= 1.5).  Timing is reported, never asserted.

;;; Code:

(require 'cl-lib)
(require 'derl-ert)
(require 'derl-tls-ert)
(require 'derl)
(require 'derl-tls)
(require 'erl)
(require 'bench-net)

(defvar derl-bench-tls-round-trips 5000 "Round trips per measurement.")

(defun derl-bench-tls--erlang (node optfile n)
  "Seconds for N round trips from a fresh Erlang TLS node to NODE's echo.
OPTFILE configures its TLS."
  (let* ((out (derl-test-erl
               "-proto_dist" "inet_tls" "-ssl_dist_optfile" optfile
               "-eval" (format "io:format(\"~p~n\", \
[derl_peer:round_trip('%s', %d)]), halt()." node n)))
         (micros (string-to-number
                  (car (last (split-string (cdr out) "\n" t))))))
    (when (zerop micros)
      (error "The Erlang TLS node failed: %s" (cdr out)))
    (/ micros 1e6)))

(defun derl-bench-tls ()
  "Measure round trips over TLS and print them with their ratio."
  (setq derl-cookie derl-test-cookie
        derl-epmd-port (derl-test-epmd-port))
  (customize-set-variable 'erl-node-name
                          (intern (format "emacsbench%s@localhost"
                                          (derl-test-random-string 4))))
  (let* ((optfile (derl-tls-test-optfile "node"))
         (node (derl-tls-test-start-node optfile))
         (derl-proto-dist 'tls)
         (derl-tls-certfile (derl-tls-test-file "emacs.pem"))
         (derl-tls-keyfile (derl-tls-test-file "emacs.key"))
         (derl-tls-cacertfile (derl-tls-test-file "ca.pem"))
         (n derl-bench-tls-round-trips))
    (unwind-protect
        (progn
          (princ "\nTLS distribution (real nodes on this machine)\n")
          (princ "=============================================\n")
          (dolist (trace '(nil t))
            (let ((derl-use-trace-buffer trace))
              (derl-connect node)
              (derl-bench--emacs-round-trip node 500)
              (derl-bench-tls--erlang node optfile 500)
              (let ((emacs (derl-bench--median
                            (cl-loop repeat 5 collect
                                     (derl-bench--emacs-round-trip node n))))
                    (erlang (derl-bench--median
                             (cl-loop repeat 5 collect
                                      (derl-bench-tls--erlang
                                       node optfile n)))))
                (princ (format "\ntrace buffer %s:\n" (if trace "on" "off")))
                (princ (format "  TLS round trip Emacs->Erlang->Emacs    %7.1f us\n"
                               (/ (* 1e6 emacs) n)))
                (princ (format "  TLS round trip Erlang->Erlang->Erlang  %7.1f us\n"
                               (/ (* 1e6 erlang) n)))
                (princ (format "  ratio                                  %7.2f  \
(target <= 1.5: %s)\n"
                               (/ emacs erlang)
                               (if (<= (/ emacs erlang) 1.5) "met" "NOT met"))))))
          (princ "\n"))
      (ignore-errors (derl-disconnect node))
      (derl-test-stop-node node))))

;;; bench-tls.el ends here

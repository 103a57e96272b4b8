;;; bench-tls.el --- `make bench': round trips over TLS, against Erlang's  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; The round trip Emacs -> Erlang echo -> Emacs process over TLS
;; distribution, against the same between two Erlang TLS nodes, in one
;; run, as alternating pairs (target ratio <= 1.5 with the trace off).
;; As bench-net.el, with every node started `-proto_dist inet_tls'
;; and Emacs on `derl-proto-dist' `tls', verifying and verified, with
;; the test CA of test/derl-tls-ert.el.  Timing is reported, never
;; asserted.

;;; Code:

(require 'bench-lib)
(require 'bench-net)
(require 'derl-ert)
(require 'derl-tls-ert)
(require 'derl)
(require 'derl-tls)

(defun derl-bench-tls--start-node (optfile)
  "Start a TLS node (OPTFILE) running derl_peer and bench_peer."
  (derl-tls-test-start-node optfile "-pa" derl-bench-ebin
                            "-s" "bench_peer" "start"))

(defun derl-bench-tls ()
  "Measure round trips over TLS and print them with their ratio."
  (setq derl-cookie derl-test-cookie
        derl-epmd-port (derl-test-epmd-port)
        derl-use-trace-buffer derl-bench-trace
        derl-proto-dist 'tls
        derl-tls-certfile (derl-tls-test-file "emacs.pem")
        derl-tls-keyfile (derl-tls-test-file "emacs.key")
        derl-tls-cacertfile (derl-tls-test-file "ca.pem")
        derl-tls-verify-peer t)
  (customize-set-variable 'erl-node-name
                          (intern (format "emacsbench%s@localhost"
                                          (derl-test-random-string 4))))
  (let* ((optfile (derl-tls-test-optfile "node"))
         (peer (derl-bench-tls--start-node optfile))
         (client (derl-bench-tls--start-node optfile)))
    (unwind-protect
        (progn
          (derl-bench-say "\nTLS DISTRIBUTION, %s (real nodes on this machine)%s"
                          (derl-bench--trace-label)
                          (if derl-bench-quick ", quick mode" ""))
          (derl-bench-say "%s" (make-string 78 ?-))
          (derl-connect peer)
          (derl-bench--round-trips peer client "TLS, batch Emacs"))
      (ignore-errors (derl-disconnect peer))
      (derl-test-stop-node client)
      (derl-test-stop-node peer))))

(provide 'bench-tls)

;;; bench-tls.el ends here

;;; bench-rt.el --- round trips and requests for derl's benchmarks  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; Asynchronous building blocks that the batch drivers (bench-net.el,
;; bench-big.el) and the interactive one (bench-tty.el) share: each
;; starts an Emacs process and calls FINISH with its figure once done,
;; so that an interactive Emacs can run them from its command loop.
;; The Erlang side is bench/bench_peer.erl's `bench' process and
;; test/erl/derl_peer.erl's `echo'.

;;; Code:

(require 'erl)

(defun derl-bench-emacs-round-trips (peer n finish)
  "Make N round trips from a new Emacs process to PEER's echo.
Then call FINISH with the seconds they took."
  (let ((echo (vector 'echo peer))
        (start (float-time)))
    (erl-spawn
      (derl-bench--ping echo n
                        (lambda () (funcall finish (- (float-time) start)))))))

(defun derl-bench--ping (echo n finish)
  "Send ping to ECHO and wait for it to come back, N times; then FINISH."
  (if (zerop n)
      (funcall finish)
    (erl-send echo (vector erl-self 'ping))
    (erl-receive ()
        (('ping (derl-bench--ping echo (1- n) finish))))))

(defun derl-bench-ask (node make-request finish)
  "Send (MAKE-REQUEST PID) to `bench' on NODE; call FINISH with the reply.
PID is that of a new Emacs process that waits for the reply, a tuple
{Tag, Value}; FINISH gets Value."
  (erl-spawn
    (erl-send (vector 'bench node) (funcall make-request erl-self))
    (erl-receive ()
        (([_ value] (funcall finish value))))))

(defun derl-bench-erlang-round-trips (client peer n finish)
  "Have a process on CLIENT make N round trips to PEER's echo.
Then call FINISH with the seconds they took, as CLIENT measured them."
  (derl-bench-ask client (lambda (pid) (vector 'rt pid peer n))
                  (lambda (micros) (funcall finish (/ micros 1e6)))))

(provide 'bench-rt)

;;; bench-rt.el ends here

;;; derl-flood-tests.el --- floods of connections that never get in  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; Emacs listens (`derl-start-node') while test/erl/derl_flood.erl
;; opens connection after connection from another loopback address
;; (127.0.0.2), each claiming a node name of its own, none knowing the
;; cookie.  Nothing such a peer sends may make a buffer or a symbol for
;; the name it claims, memory stays bounded, a good node from
;; 127.0.0.1 still gets in at once, and an address that keeps failing
;; is held back.

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'derl-ert)
(require 'derl-tests)
(require 'derl-listen-tests)
(require 'derl)
(require 'derl-node)
(require 'erl)

(defconst derl-flood-source "127.0.0.2"
  "The loopback address the flood comes from; good nodes use 127.0.0.1.")

(defun derl-flood-start (mode seconds &optional workers)
  "Flood Emacs's listener for SECONDS in MODE (\"half\" or \"cookie\").
WORKERS connections at once (default 8).  Return (PROCESS . PREFIX):
every claimed name is PREFIX_N@localhost."
  (let* ((prefix (concat "flood" (derl-test-random-string 8)))
         (buffer (generate-new-buffer " *derl-flood*"))
         (proc (start-process "derl-flood" buffer "erl" "-noshell"
                              "-pa" derl-test-ebin
                              "-run" "derl_flood" "start"
                              (number-to-string (derl-node-port))
                              derl-flood-source mode
                              (number-to-string (or workers 8))
                              (number-to-string seconds) prefix)))
    (set-process-query-on-exit-flag proc nil)
    (push proc derl-listen--procs)
    (cons proc prefix)))

(defun derl-flood-seconds (proc)
  "The flood's seconds so far: a list of (CONNECTS NAMES GUESSES)."
  (with-current-buffer (process-buffer proc)
    (save-excursion
      (goto-char (point-min))
      (let (seconds)
        (while (re-search-forward "^flood second [0-9]+ connects \\([0-9]+\\) \
names \\([0-9]+\\) guesses \\([0-9]+\\)" nil t)
          (push (mapcar (lambda (k) (string-to-number (match-string k)))
                        '(1 2 3))
                seconds))
        (nreverse seconds)))))

(defun derl-flood-rss ()
  "Emacs's resident memory now, in kB, or nil where /proc cannot say."
  (ignore-errors
    (with-temp-buffer
      (insert-file-contents "/proc/self/status")
      (and (re-search-forward "^VmRSS:[ \t]*\\([0-9]+\\) kB" nil t)
           (string-to-number (match-string 1))))))

(defun derl-flood-lisp-heap ()
  "Bytes of live Lisp objects, as `garbage-collect' counts them."
  (cl-loop for (_type size used) in (garbage-collect)
           when (and (integerp size) (integerp used))
           sum (* size used)))

(defun derl-flood-asan-p ()
  "Non-nil when the module runs under AddressSanitizer.
Its quarantine of freed memory makes Emacs's resident memory say
nothing about what derl keeps."
  (string-match-p "/asan-" derl-module-file))

(defmacro derl-flood-watching-rss (peak &rest body)
  "Run BODY, keeping the largest resident memory seen in (car PEAK)."
  (declare (indent 1))
  (let ((timer (make-symbol "timer")))
    `(let ((,timer (run-at-time 0 0.1 (lambda ()
                                        (let ((rss (derl-flood-rss)))
                                          (when (and rss (> rss (car ,peak)))
                                            (setcar ,peak rss)))))))
       (unwind-protect (progn ,@body)
         (cancel-timer ,timer)))))

(defun derl-flood-wait-done (proc)
  "Wait until the flood PROC says it is done; return its totals."
  (mapcar #'string-to-number
          (split-string (derl-listen-output
                         proc "flood done \\([0-9]+ [0-9]+ [0-9]+\\)" 60))))

(defun derl-flood-own-trace ()
  "The text of Emacs's own trace buffer."
  (derl-listen-trace erl-node-name))

(ert-deftest derl-listen-flood-names-allocate-nothing ()
  "Thousands of connections from one address, each claiming another
name and then leaving, or answering the challenge with a wrong digest:
no buffer and no symbol is made for any claimed name, memory stays
bounded, and the refusals are reported together, in Emacs's own trace
and in *Messages*; wrong digests as cookie mismatches."
  ;; Every connection is heard out: none is held back.
  (let ((derl-listen-max-failures 0))
    (derl-listen-with-node
      (unwind-protect
          (let* ((buffers (length (buffer-list)))
                 (heap (derl-flood-lisp-heap))
                 (before (derl-flood-rss))
                 (peak (list (or before 0)))
                 (half (derl-flood-start "half" 4 16))
                 (cookie (derl-flood-start "cookie" 4 8))
                 totals)
            (derl-flood-watching-rss peak
              (setq totals (mapcar (lambda (f) (derl-flood-wait-done (car f)))
                                   (list half cookie)))
              ;; What was still under way is refused and reported.
              (sleep-for 1.5)
              (derl-trace-flush))
            (setq heap (- (derl-flood-lisp-heap) heap))
            (message "flood: %s connections, %s names sent; Emacs's RSS %s kB \
before, at most %s kB during; %d buffers more; Lisp objects %+d bytes"
                     (+ (nth 0 (car totals)) (nth 0 (cadr totals)))
                     (+ (nth 1 (car totals)) (nth 1 (cadr totals)))
                     before (car peak) (- (length (buffer-list)) buffers) heap)
            (should (> (nth 1 (car totals)) 1000))
            (dolist (f (list half cookie))
              (dolist (n '(1 2 3 10 100 500 1000))
                (let ((name (format "%s_%d@localhost" (cdr f) n)))
                  (should-not (intern-soft name))
                  (should-not (get-buffer (format "*trace %s*" name)))
                  (should-not (get-buffer (format " *derl-trace-pending %s*"
                                                  name))))))
            (dolist (f (list half cookie))
              (should-not (cl-some (lambda (b)
                                     (string-search (cdr f) (buffer-name b)))
                                   (buffer-list))))
            ;; At most the floods' two process buffers, Emacs's own
            ;; trace buffers (pending and shown) and a work buffer of
            ;; Emacs's conversions, when no test made them before.
            (should (<= (- (length (buffer-list)) buffers) 5))
            ;; What stays in Lisp is a few trace lines' worth, not a
            ;; thing per connection; Emacs's memory grew by little.
            (should (< heap (* 1024 1024)))
            (when (and before (not (derl-flood-asan-p)))
              (should (< (- (car peak) before) (* 64 1024))))
            ;; A report gives the reason of its last refusal, which
            ;; under the flood's load (ASan, a busy machine) may be
            ;; another than a wrong digest: one connection at a time,
            ;; wrong digests are reported as what they are.
            (derl-flood-wait-done (car (derl-flood-start "cookie" 1 1)))
            (sleep-for 1.5)
            (derl-trace-flush)
            (let ((trace (derl-flood-own-trace)))
              (should (string-match-p "refused [0-9]+ connections from \
127\\.0\\.0\\.2" trace))
              (should (string-match-p "cookie mismatch" trace)))
            (should (string-match-p
                     "derl: refused [0-9]+ connections from 127\\.0\\.0\\.2"
                     (with-current-buffer (messages-buffer) (buffer-string)))))
        (derl-listen-stop-all)))))

(defun derl-flood-good-pings ()
  "Let a good node ping Emacs three times, disconnecting in between.
Return a list of (RESULT MILLISECONDS), RESULT `pong' or `pang'."
  (let ((good (derl-listen-erl
               "[begin
                  T0 = erlang:monotonic_time(millisecond),
                  R = net_adm:ping(EMACS),
                  T = erlang:monotonic_time(millisecond) - T0,
                  io:format(\"ping ~p ~p~n\", [R, T]),
                  erlang:disconnect_node(EMACS),
                  timer:sleep(300)
                end || _ <- [1, 2, 3]],
                io:format(\"pings done~n\"),
                halt().")))
    (derl-listen-output good "pings done" 60)
    (with-current-buffer (process-buffer good)
      (goto-char (point-min))
      (let (pings)
        (while (re-search-forward "^ping \\([a-z]+\\) \\([0-9]+\\)" nil t)
          (push (list (intern (match-string 1))
                      (string-to-number (match-string 2)))
                pings))
        (nreverse pings)))))

(ert-deftest derl-listen-flood-good-node-gets-in ()
  "While a flood of connections that claim names and leave runs from
another address, a good node pings Emacs three times, disconnecting in
between: pong each time, within 2 seconds.  Whether the flood is held
back or every connection of it is heard out."
  (dolist (max-failures '(0 10))
    (let ((derl-listen-max-failures max-failures))
      (derl-listen-with-node
        (unwind-protect
            (let* ((flood (car (derl-flood-start "half" 12 16)))
                   (pings (progn (sleep-for 1) (derl-flood-good-pings)))
                   (seconds (derl-flood-seconds flood)))
              (message "flood (derl-listen-max-failures %d): the good \
node's pings %S, after %d seconds of flood, %d connections"
                       max-failures pings (length seconds)
                       (cl-reduce #'+ (mapcar #'car seconds)))
              ;; The flood was on all along, and fast.
              (should (process-live-p flood))
              (should (< (length seconds) 12))
              (should (> (cl-reduce #'+ (mapcar #'car seconds)) 1000))
              (should (equal (mapcar #'car pings) '(pong pong pong)))
              (should (cl-every (lambda (ms) (< ms 2000))
                                (mapcar #'cadr pings))))
          (derl-listen-stop-all))))))

(ert-deftest derl-listen-flood-slows-repeated-failures ()
  "An address that keeps failing the handshake (here: wrong digests,
as fast as it can) is held back: after its first failures, its
further attempts are closed before a challenge, so it can make
only a few guesses however fast it tries."
  (let ((derl-listen-max-failures 10)
        (derl-listen-failure-window 10)
        (derl-listen-hold-back 1)
        (derl-listen-max-hold-back 60))
    (derl-listen-with-node
      (unwind-protect
          (let* ((flood (car (derl-flood-start "cookie" 6 8)))
                 (totals (derl-flood-wait-done flood))
                 (seconds (derl-flood-seconds flood))
                 (first (nth 2 (car seconds)))
                 (later (cl-reduce #'+ (mapcar (lambda (s) (nth 2 s))
                                               (nthcdr 2 seconds)))))
            (message "flood: guesses a second %S; connections %d"
                     (mapcar (lambda (s) (nth 2 s)) seconds) (car totals))
            (should (= (length seconds) 6))
            ;; It tried fast: thousands of connections.
            (should (> (car totals) 1000))
            ;; Its first guesses were made, ...
            (should (>= first (min 10 derl-listen-max-failures)))
            ;; ... and from the third second on, at most two rounds of
            ;; them (each the failures allowed, and those under way).
            (should (<= later (* 2 (+ derl-listen-max-failures 8))))
            (should (string-match-p "held back" (derl-flood-own-trace))))
        (derl-listen-stop-all)))))

(provide 'derl-flood-tests)

;;; derl-flood-tests.el ends here

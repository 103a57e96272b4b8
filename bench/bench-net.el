;;; bench-net.el --- `make bench': connections, against Erlang itself  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; Measured in one batch Emacs against real nodes on this machine, with
;; the trace buffer as DERL_BENCH_TRACE says ("on", the default, as
;; users have it, or "off"; bench/run.sh runs both, each in a fresh
;; Emacs so that memory figures start clean):
;;   - a long stream of small messages from Erlang into an Emacs
;;     process matched by `erl-receive' (1,000,000 messages), with the
;;     peak growth of this Emacs's RSS while it runs; every message is
;;     counted and its order checked (the stream's rate against Erlang
;;     and OTP's C client is bench-stream.el's);
;;   - round trips Emacs -> Erlang echo -> Emacs process against
;;     Erlang -> Erlang echo -> Erlang and against OTP's C client
;;     (ei -> Erlang echo -> ei, see bench-ei.el), alternating (Emacs,
;;     Erlang, ei, Emacs, ...), medians;
;;   - the same in an interactive terminal Emacs (`emacs -nw' in tmux,
;;     see bench-tty.el), against Erlang -> Erlang;
;;   - `derl-call' against rpc:call between two Erlang nodes, when
;;     `derl-call' exists;
;;   - where one Emacs round trip spends its time, stage by stage, from
;;     stamps taken in Lisp, in the module's C and in Erlang (see
;;     `derl-bench--stage-help');
;;   - connection set-up time (EPMD and handshake).
;; Every rate and ratio is printed beside its target with "met" or
;; "NOT met"; timing is reported, never asserted.
;;
;; Node P runs derl_peer (the `echo' of the tests) and bench_peer; node
;; Q, a second Erlang node, is the Erlang client the ratios compare
;; with: Q's processes do against P what the Emacs process does.

;;; Code:

(require 'cl-lib)
(require 'bench-lib)
(require 'derl-ert)
(require 'derl)
(require 'erl)
(require 'bench-rt)
(require 'bench-ei)

(defvar derl-bench-trace
  (not (equal (getenv "DERL_BENCH_TRACE") "off"))
  "Non-nil means measure with the trace buffer on, its default.")

(defconst derl-bench-sizes
  ;; Full run, then quick mode; an environment variable overrides both.
  `(:round-trips ,(derl-bench-setting "DERL_BENCH_ROUND_TRIPS" 10000 1000)
    :pairs ,(derl-bench-setting "DERL_BENCH_PAIRS" 7 5)
    :stream ,(derl-bench-setting "DERL_BENCH_STREAM" 200000 20000)
    :stream-runs ,(derl-bench-setting "DERL_BENCH_STREAM_RUNS" 3 1)
    :captured ,(derl-bench-setting "DERL_BENCH_CAPTURED" 20000 5000)
    :long-stream ,(derl-bench-setting "DERL_BENCH_LONG_STREAM" 1000000 100000)
    :calls ,(derl-bench-setting "DERL_BENCH_CALLS" 5000 500)
    :stage-trips ,(derl-bench-setting "DERL_BENCH_STAGES" 2000 300))
  "How much to measure, by key.
Round trips per measurement, alternating pairs of round-trip
measurements, messages in each stream of the comparison with Erlang
and ei (bench-stream.el), its interleaved rounds, messages of the
stream's breakdown, messages in the long stream, calls per
`derl-call' and rpc:call measurement, round trips timed stage by
stage.")

(defun derl-bench-size (key)
  "Return the size KEY (such as :pairs) of `derl-bench-sizes'."
  (plist-get derl-bench-sizes key))

(defconst derl-bench-ebin (expand-file-name "build/bench-ebin" derl-bench-root)
  "Where bench/run.sh puts the compiled bench_peer and bench_corpus.")

(defun derl-bench--trace-label ()
  "Return the trace setting, for the summary."
  (if derl-bench-trace "trace on" "trace off"))

;;;; Talking to the nodes

(defun derl-bench--start-node ()
  "Start an Erlang node running derl_peer and bench_peer; return its name."
  (derl-test-start-node "-pa" derl-bench-ebin "-s" "bench_peer" "start"))

(defun derl-bench--await (start what)
  "Call START with a function that takes a value; wait for that value.
WHAT says what is waited for (at most an hour)."
  (let (result)
    (funcall start (lambda (value) (setq result (list value))))
    (derl--wait (lambda () result) 3600 what)
    (car result)))

(defun derl-bench--erlang-round-trip (client peer n)
  "Seconds for N round trips from a process on CLIENT to PEER's echo."
  (derl-bench--await (lambda (k)
                       (derl-bench-erlang-round-trips client peer n k))
                     "Erlang round trips"))

(defun derl-bench--emacs-round-trip (peer n)
  "Seconds for N round trips from an Emacs process to PEER's echo."
  (derl-bench--await (lambda (k) (derl-bench-emacs-round-trips peer n k))
                     "Emacs round trips"))

;;;; Streams

(defun derl-bench--stream (peer n)
  "Stream N messages {seq, I} from PEER into an Emacs process.
Return (RATE RECEIVED DISORDERED): messages a second from the request
to the end marker, how many arrived, and how many came out of order."
  (let* ((count (vector 1 0 0 nil))   ; next expected, received, disordered, end
         (start (float-time)))
    (erl-spawn
      (erl-send (vector 'bench peer) (vector 'stream erl-self n))
      (derl-bench--sink count))
    (derl--wait (lambda () (aref count 3)) 3600 "a stream")
    (list (/ n (- (aref count 3) start)) (aref count 1) (aref count 2))))

(defun derl-bench--sink (count)
  "Receive {seq, I} into COUNT until `done'; see `derl-bench--stream'."
  (erl-receive (count)
      ((['seq i]
        (unless (eql i (aref count 0))
          (aset count 2 (1+ (aref count 2))))
        (aset count 0 (1+ i))
        (aset count 1 (1+ (aref count 1)))
        (derl-bench--sink count))
       ('done (aset count 3 (float-time))))))

(defun derl-bench--streams (peer)
  "Stream from PEER: one long stream, with the memory it takes.
The rates, against Erlang and OTP's C client, are measured in
bench-stream.el."
  (garbage-collect)
  (let* ((reset (derl-bench-reset-peak-rss))
         (rss (derl-bench-status-kb "VmRSS"))
         (n (derl-bench-size :long-stream))
         (long (derl-bench--stream peer n))
         (growth (/ (- (derl-bench-status-kb "VmHWM") rss) 1024.0))
         (lost (- n (nth 1 long)))
         (disordered (nth 2 long)))
    (derl-bench-say "  long stream Erlang -> Emacs process, %d messages: \
%9.0f msg/s (not judged)"
                    n (car long))
    (derl-bench-say "    peak RSS growth of Emacs %7.1f MB  target < 200 MB: %s%s"
                    growth (derl-bench-verdict (< growth 200))
                    (if reset "" "  (peak since start: could not reset)"))
    (derl-bench-say "    messages lost %d, out of order %d  target 0: %s"
                    lost disordered
                    (derl-bench-verdict (and (zerop lost) (zerop disordered))))
    (derl-bench-summary "stream" (format "%s, %d msgs: peak RSS growth"
                                         (derl-bench--trace-label) n)
                        (format "%.1f MB (%.0f msg/s)" growth (car long))
                        "< 200 MB" (derl-bench-verdict (< growth 200)))
    (derl-bench-summary "stream" (format "%s, %d msgs: lost / out of order"
                                         (derl-bench--trace-label) n)
                        (format "%d / %d" lost disordered) "0 / 0"
                        (derl-bench-verdict
                         (and (zerop lost) (zerop disordered))))))

;;;; Round trips

(defun derl-bench--round-trip-target ()
  "The largest Emacs / Erlang round-trip ratio that meets the target."
  (if derl-bench-trace 2.0 1.5))

(defun derl-bench--round-trip-report (label emacs erlang target &optional ei)
  "Print and summarise round trips under LABEL against TARGET.
EMACS and ERLANG are the seconds of each alternating measurement; EI,
if non-nil, those of OTP's C client, measured between them, whose
ratio has the target 1.0."
  (let* ((n (derl-bench-size :round-trips))
         (e (derl-bench-median emacs))
         (r (derl-bench-median erlang))
         (ratio (/ e r))
         (pair-ratios (cl-mapcar #'/ emacs erlang))
         (each (lambda (times)
                 (mapconcat (lambda (s) (format "%.1f" (/ (* 1e6 s) n)))
                            times " "))))
    (derl-bench-say "  %s, median of %d alternating %s of %d:"
                    label (length emacs) (if ei "triples" "pairs") n)
    (derl-bench-say "    Emacs  -> Erlang -> Emacs   %7.1f us   (each: %s)"
                    (/ (* 1e6 e) n) (funcall each emacs))
    (derl-bench-say "    Erlang -> Erlang -> Erlang  %7.1f us   (each: %s)"
                    (/ (* 1e6 r) n) (funcall each erlang))
    (when ei
      (derl-bench-say "    ei     -> Erlang -> ei      %7.1f us   (each: %s)"
                      (/ (* 1e6 (derl-bench-median ei)) n)
                      (funcall each ei)))
    (derl-bench-say "    Emacs / Erlang %.2f  target <= %.1f: %s   (pair ratios: %s)"
                    ratio target (derl-bench-verdict (<= ratio target))
                    (mapconcat (lambda (x) (format "%.2f" x)) pair-ratios " "))
    (derl-bench-summary "round trip"
                        (format "%s, %s, Emacs / Erlang" label
                                (derl-bench--trace-label))
                        (format "%.2f (%.1f / %.1f us)" ratio
                                (/ (* 1e6 e) n) (/ (* 1e6 r) n))
                        (format "<= %.1f%s" target
                                (if (= target 1.5) " (aim 1.2)" ""))
                        (derl-bench-verdict (<= ratio target)))
    (when ei
      (let* ((c (derl-bench-median ei))
             (ei-ratio (/ e c)))
        (derl-bench-say "    Emacs / ei %.2f  target <= 1.0 (hold): %s   \
\(ratios: %s)"
                        ei-ratio (derl-bench-verdict (<= ei-ratio 1.0))
                        (mapconcat (lambda (x) (format "%.2f" x))
                                   (cl-mapcar #'/ emacs ei) " "))
        (derl-bench-summary "round trip"
                            (format "%s, %s, Emacs / ei" label
                                    (derl-bench--trace-label))
                            (format "%.2f (%.1f / %.1f us)" ei-ratio
                                    (/ (* 1e6 e) n) (/ (* 1e6 c) n))
                            "<= 1.0 (hold)"
                            (derl-bench-verdict (<= ei-ratio 1.0)))))))

(defun derl-bench--round-trips (peer client &optional label ei)
  "Alternate Emacs and Erlang round trips to PEER; Erlang's from CLIENT.
LABEL names them in the report (default \"batch Emacs\").  EI, a C
client connected to PEER (see `derl-bench-ei-start'), makes its
round trips after each Erlang measurement; `missing' means it should
have but could not be started, nil that none is compared with."
  (derl-bench--emacs-round-trip peer 500)
  (derl-bench--erlang-round-trip client peer 500)
  (when (eq ei 'missing)
    (setq ei nil)
    (derl-bench-say "  (no C client: build/bench-ei was not built; \
the Emacs / ei ratio is skipped)")
    (derl-bench-summary "round trip"
                        (format "%s, %s, Emacs / ei" (or label "batch Emacs")
                                (derl-bench--trace-label))
                        "-" "<= 1.0 (hold)" "skipped (no bench-ei)"))
  (when ei
    (derl-bench-ei-round-trips ei 500))
  (let ((n (derl-bench-size :round-trips))
        emacs erlang ei-times)
    (dotimes (_ (derl-bench-size :pairs))
      (push (derl-bench--emacs-round-trip peer n) emacs)
      (push (derl-bench--erlang-round-trip client peer n) erlang)
      (when ei
        (push (derl-bench-ei-round-trips ei n) ei-times)))
    (derl-bench--round-trip-report (or label "batch Emacs") (nreverse emacs)
                                   (nreverse erlang)
                                   (derl-bench--round-trip-target)
                                   (nreverse ei-times))))

;;;; The same round trips in an interactive terminal Emacs

(defun derl-bench--tty (peer client)
  "Run the round trips in an `emacs -nw' under tmux; print the ratio.
PEER has the echo, CLIENT is the Erlang client compared with."
  (let ((target 2.5))
    (if (not (executable-find "tmux"))
        (progn
          (derl-bench-say "  terminal Emacs: skipped: tmux is not installed")
          (derl-bench-summary "round trip" (format "emacs -nw (tmux), %s"
                                                   (derl-bench--trace-label))
                              "-" (format "<= %.1f" target)
                              "skipped (no tmux)"))
      (let* ((socket (derl-test-scratch-file
                      (format "tmux-%s" (derl-test-random-string 8))))
             (config (derl-test-scratch-file
                      (format "tty-%s.el" (derl-test-random-string 6))))
             (result (concat config ".result"))
             (process-environment (cons (concat "DERL_BENCH_TTY=" config)
                                        process-environment))
             (emacs (expand-file-name invocation-name invocation-directory))
             (command
              (mapconcat #'shell-quote-argument
                         (list emacs "-nw" "-Q"
                               "-L" (expand-file-name "lisp" derl-bench-root)
                               "-L" (expand-file-name "bench" derl-bench-root)
                               "--eval" "(setq load-prefer-newer t)"
                               "-l" "bench-native" "-l" "bench-tty")
                         " ")))
        (with-file-modes #o600
          (with-temp-file config
            (prin1 (list :peer peer :client client
                       :epmd-port (derl-test-epmd-port)
                       :cookie derl-test-cookie
                       :node-name (intern (format "emacstty%s@localhost"
                                                  (derl-test-random-string 6)))
                       :trace derl-bench-trace
                       :round-trips (derl-bench-size :round-trips)
                       :pairs (derl-bench-size :pairs)
                       :result result)
                   (current-buffer))))
        (unwind-protect
            (progn
              (call-process "tmux" nil nil nil "-S" socket "new-session" "-d"
                            "-s" "bench" "-x" "120" "-y" "40" command)
              (let ((deadline (+ (float-time) 900)))
                (while (and (not (file-exists-p result))
                            (< (float-time) deadline))
                  (sleep-for 0.5)))
              (if (not (file-exists-p result))
                  (progn
                    (derl-bench-say "  terminal Emacs: no result (timed out)")
                    (derl-bench-summary "round trip"
                                        (format "emacs -nw (tmux), %s"
                                                (derl-bench--trace-label))
                                        "-" (format "<= %.1f" target)
                                        "NOT met (no result)"))
                (let ((figures (with-temp-buffer
                                 (insert-file-contents result)
                                 (read (current-buffer)))))
                  (if (plist-get figures :error)
                      (progn
                        (derl-bench-say "  terminal Emacs: failed: %s"
                                        (plist-get figures :error))
                        (derl-bench-summary "round trip"
                                            (format "emacs -nw (tmux), %s"
                                                    (derl-bench--trace-label))
                                            "-" (format "<= %.1f" target)
                                            "NOT met (failed)"))
                    (derl-bench--round-trip-report
                     "emacs -nw (tmux)"
                     (plist-get figures :emacs) (plist-get figures :erlang)
                     target)))))
          (call-process "tmux" nil nil nil "-S" socket "kill-server"))))))

;;;; derl-call against rpc:call

(defun derl-bench--call (node)
  "Call erlang:node() on NODE with `derl-call', which may not exist yet."
  (funcall (intern "derl-call") node 'erlang 'node nil))

(defun derl-bench--load-call ()
  "Load the library in lisp/ with the definition of `derl-call', if any."
  (dolist (file (directory-files (expand-file-name "lisp" derl-bench-root)
                                 t "\\.el\\'"))
    (unless (fboundp 'derl-call)
      (with-temp-buffer
        (insert-file-contents file)
        (when (search-forward "(defun derl-call " nil t)
          (require (intern (file-name-base file))))))))

(defun derl-bench--calls (peer client)
  "Time `derl-call' to PEER against rpc:call from CLIENT to PEER."
  (derl-bench--load-call)
  (let ((label (format "derl-call / rpc:call, %s" (derl-bench--trace-label)))
        ;; The calls' own target, trace on or off.
        (target 1.5))
    (if (not (fboundp 'derl-call))
        (progn
          (derl-bench-say "  derl-call: not available (no `derl-call' in \
lisp/ yet); skipped")
          (derl-bench-summary "derl-call" label "-"
                              (format "<= %.1f" target)
                              "not available"))
      (condition-case err
          (let* ((n (derl-bench-size :calls))
                 (call (lambda ()
                         (let ((t0 (float-time)))
                           (dotimes (_ n)
                             (derl-bench--call peer))
                           (- (float-time) t0))))
                 (rpc (lambda ()
                        (/ (derl-bench--await
                            (lambda (k)
                              (derl-bench-ask client
                                              (lambda (pid)
                                                (vector 'rpc pid peer n))
                                              k))
                            "rpc:call")
                           1e6)))
                 emacs erlang)
            (unless (eq (derl-bench--call peer) peer)
              (error "The call of erlang:node() returned %S"
                     (derl-bench--call peer)))
            (funcall call)
            (funcall rpc)
            (dotimes (_ (max 3 (/ (derl-bench-size :pairs) 2)))
              (push (funcall call) emacs)
              (push (funcall rpc) erlang))
            (let* ((e (derl-bench-median emacs))
                   (r (derl-bench-median erlang))
                   (ratio (/ e r)))
              (derl-bench-say "  derl-call %8.0f calls/s, rpc:call Erlang -> \
Erlang %8.0f calls/s" (/ n e) (/ n r))
              (derl-bench-say "    time ratio %.2f  target <= %.1f: %s"
                              ratio target (derl-bench-verdict (<= ratio target)))
              (derl-bench-summary "derl-call" label
                                  (format "%.2f (%.0f / %.0f calls/s)"
                                          ratio (/ n e) (/ n r))
                                  (format "<= %.1f" target)
                                  (derl-bench-verdict (<= ratio target)))))
        (error
         (derl-bench-say "  derl-call: failed: %s" (error-message-string err))
         (derl-bench-summary "derl-call" label "-"
                             (format "<= %.1f" target)
                             "NOT met (failed)"))))))

;;;; One round trip, stage by stage

(defconst derl-bench--stage-names
  ["process calls `erl-send' with the ping"
   "`derl--module-send' entered"
   "`derl--module-send' returned (encoded; written or queued)"
   "Erlang's echo got the ping"
   "event filter entered (pipe woke Emacs)"
   "`derl--module-events' entered"
   "`derl--module-events' returned (reply decoded)"
   "process resumed (reply matched)"
   "C: recv() completed the reply's frame (I/O or waiting main thread)"
   "C: reply queued as an event"
   "C: Lisp woken (pipe byte, waiting thread signalled, or it read it)"
   "C: decoding the reply started"
   "C: decoding the reply ended"
   "C: send entered the module"
   "C: ping's ETF written into the output buffer"
   "C: ping's last byte handed to send()"]
  "What each stamp of a round trip marks, by slot.")

(defconst derl-bench--stage-help
  "Lisp stamps come from `float-time', C stamps from CLOCK_REALTIME in
the module (`derl--module-set-stamping', read back with
`derl--module-stamps'), Erlang's from os:system_time/1: one clock.
A stamp missing from the list was taken in fewer than half of the
round trips (the event filter is not entered when a wait in the
module takes the reply itself).  Reply woken by: pipe, the I/O thread
wrote Emacs's event pipe; waiter, it signalled the main thread waiting
in the module; self, the waiting main thread read the reply itself."
  "How to read the stage breakdown.")

(defvar derl-bench--cycle nil
  "The stamps of the round trip being timed, a vector, or nil.
Slots: 0 process sends, 1 module send entered, 2 it returned, 3 Erlang
got the ping, 4 filter entered, 5 events call entered, 6 it returned,
7 process resumed, 8 to 15 the module's own stamps (see
`derl-bench--stage-names').")

(defvar derl-bench--woken-by nil
  "How the module woke Lisp for each round trip's reply, as counted.
An alist (HOW . COUNT), HOW being pipe, waiter, self (the waiting
main thread read the reply itself) or nil.")

(defun derl-bench--stamp (slot)
  "Note the time in SLOT of `derl-bench--cycle' unless already noted."
  (when (and derl-bench--cycle (null (aref derl-bench--cycle slot)))
    (aset derl-bench--cycle slot (float-time))))

(defun derl-bench--module-stamps (cycle)
  "Copy the module's stamps of the last frame in and send out into CYCLE."
  (when (fboundp 'derl--module-stamps)
    (let ((stamps (derl--module-stamps)))
      (dotimes (k 8)
        (aset cycle (+ 8 k) (aref stamps k)))
      (let ((cell (assq (aref stamps 8) derl-bench--woken-by)))
        (if cell
            (setcdr cell (1+ (cdr cell)))
          (push (cons (aref stamps 8) 1) derl-bench--woken-by))))))

(defun derl-bench--filter-advice (&rest _)
  "Stamp the event filter's entry."
  (derl-bench--stamp 4))

(defun derl-bench--events-advice (events &rest args)
  "Stamp the call of EVENTS with ARGS and its return."
  (derl-bench--stamp 5)
  (let ((result (apply events args)))
    (if result
        (derl-bench--stamp 6)
      ;; A wake-up with nothing to take: not this round trip's.
      (when derl-bench--cycle
        (aset derl-bench--cycle 4 nil)
        (aset derl-bench--cycle 5 nil)))
    result))

(defun derl-bench--send-advice (send &rest args)
  "Stamp the call of SEND with ARGS and its return."
  (derl-bench--stamp 1)
  (prog1 (apply send args)
    (derl-bench--stamp 2)))

(defconst derl-bench--advised
  '((derl--events-filter :before derl-bench--filter-advice)
    (derl--module-events :around derl-bench--events-advice)
    (derl--module-send :around derl-bench--send-advice))
  "The functions the stage breakdown watches, and how.")

(defun derl-bench--stamp-trips (peer n)
  "Time N round trips to PEER's `stamp' stage by stage; return the stamps."
  (let ((stamp (vector 'stamp peer))
        cycles done)
    (erl-spawn
      (derl-bench--stamp-loop stamp n
                              (lambda (cycle) (push cycle cycles))
                              (lambda () (setq done t))))
    (derl--wait (lambda () done) 600 "round trips by stage")
    cycles))

(defun derl-bench--stamp-loop (stamp n record finish)
  "Ping STAMP N times, passing each cycle's stamps to RECORD; then FINISH."
  (if (zerop n)
      (progn (setq derl-bench--cycle nil) (funcall finish))
    (setq derl-bench--cycle (make-vector 16 nil))
    (aset derl-bench--cycle 0 (float-time))
    (erl-send stamp (vector erl-self 'ping))
    (erl-receive ()
        ((['pong erlang-time]
          (aset derl-bench--cycle 7 (float-time))
          (derl-bench--module-stamps derl-bench--cycle)
          (aset derl-bench--cycle 3 (/ erlang-time 1e6))
          (funcall record derl-bench--cycle)
          (derl-bench--stamp-loop stamp (1- n) record finish))))))

(defun derl-bench--offsets (cycles)
  "Return ((MEDIAN . SLOT)...) for the stamps of CYCLES, in time order.
MEDIAN is the median of the slot's time after the cycle's start, over
the cycles that have it; slots filled in fewer than half of them are
left out."
  (let (offsets)
    (dotimes (slot 16)
      (let ((times (cl-loop for c in cycles
                            when (aref c slot)
                            collect (- (aref c slot) (aref c 0)))))
        (when (>= (* 2 (length times)) (length cycles))
          (push (cons (derl-bench-median times) slot) offsets))))
    (sort offsets (lambda (a b) (< (car a) (car b))))))

(defun derl-bench--floor (offsets)
  "Print Emacs's own share of a round trip from OFFSETS, and the rest.
OFFSETS is what `derl-bench--offsets' returns.  Emacs's share: from
the start to the ping's last byte handed to send(), and from the
reply's frame read to the process resumed; the rest
is the wire and Erlang, the floor no change in Emacs can go under."
  (let ((at (lambda (slot) (car (rassq slot offsets)))))
    (when (and (funcall at 15) (funcall at 8) (funcall at 7))
      (let* ((out (funcall at 15))
             (in (- (funcall at 7) (funcall at 8)))
             (rest (- (funcall at 7) out in)))
        (derl-bench-say "    Emacs's own share %.1f us (sending %.1f, taking the reply %.1f); wire and Erlang %.1f us"
                        (* 1e6 (+ out in)) (* 1e6 out) (* 1e6 in)
                        (* 1e6 rest))))))

(defun derl-bench--stages (peer)
  "Print where one Emacs round trip to PEER spends its time."
  (let ((watched (cl-remove-if-not (lambda (a) (fboundp (car a)))
                                   derl-bench--advised)))
    (dolist (a watched)
      (advice-add (car a) (nth 1 a) (nth 2 a)))
    (setq derl-bench--woken-by nil)
    (when (fboundp 'derl--module-set-stamping)
      (derl--module-set-stamping t))
    (unwind-protect
        (let* ((cycles (prog1 (derl-bench--stamp-trips
                               peer (derl-bench-size :stage-trips))
                         (when (fboundp 'derl--module-set-stamping)
                           (derl--module-set-stamping nil))))
               (previous 0.0))
          (derl-bench-say "  one round trip by stage, %s: median time of each \
stamp after the
  start, over %d round trips, and the step from the stamp before (us; Lisp
  stamps with `float-time', Erlang's with os:system_time/1, one clock):"
                          (derl-bench--trace-label) (length cycles))
          (pcase-dolist (`(,offset . ,slot) (derl-bench--offsets cycles))
            (derl-bench-say "    %7.1f  %+7.1f  %s" (* 1e6 offset)
                            (* 1e6 (- offset previous))
                            (aref derl-bench--stage-names slot))
            (setq previous offset))
          (derl-bench--floor (derl-bench--offsets cycles))
          (dolist (a derl-bench--advised)
            (unless (memq a watched)
              (derl-bench-say "    (%s is not defined: no stamps from it)"
                              (car a))))
          (derl-bench-say "    reply woken by: %s"
                          (mapconcat (lambda (c)
                                       (format "%s %d" (or (car c) "none")
                                               (cdr c)))
                                     derl-bench--woken-by ", "))
          (derl-bench-say "%s" (replace-regexp-in-string
                                "^" "    " derl-bench--stage-help)))
      (when (fboundp 'derl--module-set-stamping)
        (derl--module-set-stamping nil))
      (dolist (a watched)
        (advice-remove (car a) (nth 2 a))))))

;;;; Connection set-up

(defun derl-bench--connect-time (node)
  "Milliseconds to connect to NODE, median of 10 (disconnecting between)."
  (derl-bench-median
   (cl-loop repeat 10
            collect (progn
                      (derl-bench--disconnect node)
                      (let ((start (float-time)))
                        (derl-connect node)
                        (* 1000 (- (float-time) start)))))))

(defun derl-bench--disconnect (node)
  "Disconnect from NODE and wait until the connection is gone."
  (derl-disconnect node)
  (derl--wait (lambda () (not (memq node (derl-nodes)))) 10 "disconnect"))

;;;; The whole

(defun derl-bench-net ()
  "Run the connection benchmarks and print the results."
  (setq derl-cookie derl-test-cookie
        derl-epmd-port (derl-test-epmd-port)
        derl-use-trace-buffer derl-bench-trace)
  (customize-set-variable 'erl-node-name
                          (intern (format "emacsbench%s@localhost"
                                          (derl-test-random-string 4))))
  (let ((peer (derl-bench--start-node))
        (client (derl-bench--start-node))
        (ei nil))
    (unwind-protect
        (progn
          (derl-bench-say "\nCONNECTIONS, %s (real nodes on this machine)%s"
                          (derl-bench--trace-label)
                          (if derl-bench-quick ", quick mode" ""))
          (derl-bench-say "%s" (make-string 78 ?-))
          (derl-connect peer)
          (derl-bench--emacs-round-trip peer 500)
          (derl-bench--streams peer)
          (setq ei (derl-bench-ei-start peer))
          (derl-bench--round-trips peer client nil (or ei 'missing))
          (derl-bench--tty peer client)
          (derl-bench--calls peer client)
          (derl-bench--stages peer)
          (derl-bench-say "  connection set-up (EPMD + handshake) %.1f ms \
\(no target)"
                          (derl-bench--connect-time peer)))
      (derl-bench-ei-stop ei)
      (ignore-errors (derl-bench--disconnect peer))
      (derl-test-stop-node client)
      (derl-test-stop-node peer))))

(provide 'bench-net)

;;; bench-net.el ends here

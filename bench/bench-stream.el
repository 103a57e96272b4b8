;;; bench-stream.el --- `make bench': the stream against Erlang and ei  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; The stream into Emacs against the same stream into Erlang and into
;; OTP's C client, in one Emacs, interleaved, then where an Emacs
;; message's time goes, stage by stage.
;;
;; One Erlang node P (bench_peer's `bench') sends N messages {seq, I},
;; then `done', to a registered name on each receiver in turn:
;;   (a) an Erlang process on a second node Q (bench_peer's sink);
;;   (b) OTP's C client, a hidden node made with erl_interface, its
;;       blocking ei_xreceive_msg loop decoding and counting
;;       (bench/bench_ei.c, see bench-ei.el);
;;   (c) an Emacs process in an `erl-receive' loop, the trace off;
;;   (d) the same with the trace on, derl's default.
;; Rounds of (a b c d), after one warm-up stream each; the figure of
;; each receiver is the median of its rounds.  A stream's rate is N
;; over the time from the request (Emacs's clock) to the receiver
;; taking `done' (its own wall clock: the same clock on one machine).
;; Targets are ratios to Erlang -> Erlang in the same run: 0.75 with the
;; trace off, 0.6 with it on.  Absolute rates are printed, not judged.
;;
;; The breakdown (`derl-bench-stream--breakdown') takes the messages of
;; one stream from the module without handling them (the captured
;; events), then hands them to derl's own Lisp again and again, in
;; batches as big as a real stream's, with one stage after another
;; switched on; see `derl-bench-stream--method'.

;;; Code:

(require 'cl-lib)
(require 'bench-lib)
(require 'bench-net)
(require 'bench-ei)
(require 'derl)
(require 'erl)
(require 'mcase)

(defconst derl-bench-stream-sink 'derl_bench_sink
  "The name each receiver of the stream registers.")

;;;; Streams into each receiver

(defun derl-bench-stream--request (peer dest n)
  "Have PEER's `bench' send N messages {seq, I}, then `done', to DEST."
  (erl-spawn
    (erl-send (vector 'bench peer) (vector 'stream_to dest n))))

(defun derl-bench-stream--erlang (peer client n)
  "Stream N messages from PEER to a sink on CLIENT.
Return (RATE RECEIVED DISORDERED), as all the receivers do."
  (let* ((report nil)
         (reporter (erl-spawn
                     (erl-receive ()
                         ((['sunk value] (setq report value)))))))
    (derl-bench--await (lambda (k)
                         (derl-bench-ask client
                                         (lambda (pid)
                                           (vector 'sink pid reporter
                                                   derl-bench-stream-sink))
                                         k))
                       "the Erlang sink")
    (let ((start (float-time)))
      (derl-bench-stream--request peer (vector derl-bench-stream-sink client)
                                  n)
      (derl--wait (lambda () report) 3600 "a stream into Erlang")
      (list (/ n (- (/ (nth 2 report) 1e6) start))
            (nth 0 report) (nth 1 report)))))

(defun derl-bench-stream--ei (peer ei n)
  "Stream N messages from PEER into the C client EI."
  (let ((start (float-time)))
    (derl-bench-stream--request peer (vector derl-bench-stream-sink
                                             (derl-bench-ei-node ei))
                                n)
    (pcase-let ((`(,received ,disordered ,end) (derl-bench-ei-await-stream ei)))
      (list (/ n (- end start)) received disordered))))

(defun derl-bench-stream--sink (count)
  "Receive {seq, I} into COUNT until `done', as `derl-bench--sink' does.
COUNT is [NEXT-EXPECTED RECEIVED DISORDERED END-TIME]; the name
`derl-bench-stream-sink' is given up at the end."
  (erl-receive (count)
      ((['seq i]
        (unless (eql i (aref count 0))
          (aset count 2 (1+ (aref count 2))))
        (aset count 0 (1+ i))
        (aset count 1 (1+ (aref count 1)))
        (derl-bench-stream--sink count))
       ('done
        (aset count 3 (float-time))
        (erl-unregister derl-bench-stream-sink)))))

(defun derl-bench-stream--emacs (peer n trace)
  "Stream N messages from PEER into an Emacs process; TRACE as the trace."
  (let ((derl-use-trace-buffer trace)
        (count (vector 1 0 0 nil)))
    (erl-spawn
      (erl-register derl-bench-stream-sink)
      (derl-bench-stream--sink count))
    (let ((start (float-time)))
      (derl-bench-stream--request peer (vector derl-bench-stream-sink
                                               erl-node-name)
                                  n)
      (derl--wait (lambda () (aref count 3)) 3600 "a stream into Emacs")
      (list (/ n (- (aref count 3) start)) (aref count 1) (aref count 2)))))

(defun derl-bench-stream--settle ()
  "Let the trace of the last stream be written and collect the garbage.
So that each stream starts as the others do."
  (derl-trace-flush)
  (garbage-collect))

;;;; The comparison

(defconst derl-bench-stream--receivers
  '((erlang "an Erlang process on another node")
    (ei "OTP's C client (ei, blocking receive)")
    (off "an Emacs process, trace off")
    (on "an Emacs process, trace on (default)"))
  "The receivers in the order they are measured, and how they are named.")

(defun derl-bench-stream--run (receiver peer client ei n)
  "Stream N messages from PEER into RECEIVER; return (RATE RECEIVED DISORDERED).
CLIENT is the Erlang node, EI the C client."
  (prog1 (pcase receiver
           ('erlang (derl-bench-stream--erlang peer client n))
           ('ei (derl-bench-stream--ei peer ei n))
           ('off (derl-bench-stream--emacs peer n nil))
           ('on (derl-bench-stream--emacs peer n t)))
    (derl-bench-stream--settle)))

(defun derl-bench-stream--compare (peer client ei)
  "Stream into each receiver in turn, PEER sending; report the rates.
CLIENT is the second Erlang node, EI the C client or nil.  Return the
median rates, an alist (RECEIVER . RATE)."
  (let* ((n (derl-bench-size :stream))
         (runs (derl-bench-size :stream-runs))
         (receivers (cl-remove-if (lambda (r) (and (eq (car r) 'ei) (not ei)))
                                  derl-bench-stream--receivers))
         (results (mapcar (lambda (r) (list (car r))) receivers))
         (load-before (derl-bench-load)))
    (dolist (r receivers)
      (derl-bench-stream--run (car r) peer client ei (min n 20000)))
    (dotimes (_ runs)
      (dolist (r receivers)
        (push (derl-bench-stream--run (car r) peer client ei n)
              (cdr (assq (car r) results)))))
    (let* ((rates (mapcar (lambda (r)
                            (cons (car r) (derl-bench-median
                                           (mapcar #'car (cdr r)))))
                          results))
           (erlang (cdr (assq 'erlang rates)))
           (lost (cl-loop for r in results
                          sum (cl-loop for run in (cdr r)
                                       sum (- n (nth 1 run)))))
           (disordered (cl-loop for r in results
                                sum (cl-loop for run in (cdr r)
                                             sum (nth 2 run)))))
      (derl-bench-say "  %d messages {seq, I} from one node into a registered \
receiver, median of %d
  interleaved rounds (one warm-up stream each first); load %s before, %s after:"
                      n runs load-before (derl-bench-load))
      (derl-bench-say "    %-40s %9s  %s" "receiver" "msgs/s" "/ Erlang   (each run)")
      (dolist (r receivers)
        (let ((rate (cdr (assq (car r) rates))))
          (derl-bench-say "    %-40s %9.0f  %5.2f      (%s)"
                          (nth 1 r) rate (/ rate erlang)
                          (mapconcat (lambda (run) (format "%.0f" (car run)))
                                     (reverse (cdr (assq (car r) results)))
                                     ", "))))
      (pcase-dolist (`(,key ,target ,label) '((off 0.75 "trace off")
                                              (on 0.6 "trace on")))
        (let ((ratio (/ (cdr (assq key rates)) erlang)))
          (derl-bench-say "    Emacs (%s) / Erlang -> Erlang %.2f  target >= %.2f: %s"
                          label ratio target
                          (derl-bench-verdict (>= ratio target)))
          (derl-bench-summary "stream"
                              (format "%s, Emacs / Erlang (median of %d x %d)"
                                      label runs n)
                              (format "%.2f (%.0f / %.0f msgs/s)" ratio
                                      (cdr (assq key rates)) erlang)
                              (format ">= %.2f" target)
                              (derl-bench-verdict (>= ratio target)))))
      (if ei
          (let ((c (cdr (assq 'ei rates))))
            (derl-bench-say "    ei / Erlang %.2f; Emacs / ei %.2f (trace off), \
%.2f (trace on); not judged"
                            (/ c erlang) (/ (cdr (assq 'off rates)) c)
                            (/ (cdr (assq 'on rates)) c))
            (derl-bench-summary "stream" "ei / Erlang, Emacs / ei (off, on)"
                                (format "%.2f; %.2f, %.2f" (/ c erlang)
                                        (/ (cdr (assq 'off rates)) c)
                                        (/ (cdr (assq 'on rates)) c))
                                "-" "not judged"))
        (derl-bench-say "    (no C client: build/bench-ei was not built)"))
      (derl-bench-say "    messages lost %d, out of order %d (all streams)  \
target 0: %s"
                      lost disordered
                      (derl-bench-verdict (and (zerop lost) (zerop disordered))))
      (derl-bench-summary "stream" "lost / out of order (all receivers)"
                          (format "%d / %d" lost disordered) "0 / 0"
                          (derl-bench-verdict
                           (and (zerop lost) (zerop disordered))))
      (derl-bench-summary "stream" "load before, after"
                          (format "%s; %s" load-before (derl-bench-load))
                          "-" "-")
      rates)))

;;;; The breakdown

(defconst derl-bench-stream--method
  "Method: a stream of N messages is taken from the module without
being handled (the event pipe's filter set aside, `derl--module-events'
called directly, timed: stage 1, and again with the trace's text: 2;
medians of three streams each).
Those events are then handed to derl's Lisp as a real stream hands
them, `derl--take-events' with `derl--module-events' giving them back
in the batches the module made, to the same registered
`erl-receive' loop, once per stage with one part more switched on:
3 the batch loop alone (`derl--handle-event' a no-op); 4 with it, up to
the mailbox (`erl--send-local' a no-op); 5 into the mailbox, the
process not run (`erl-maybe-schedule' a no-op); 6 the process run
after each batch (`erl-schedule'); 6a the compiled match of its
patterns alone, on the same messages; 7 the trace on, its lines made
into the pending buffer; 8 `derl-trace-flush' into *trace NODE*.
Each stage is its difference from the one before, a median of
several passes, collections taken out: 9 garbage collection is the
bytes the stages allocate (from `memory-use-counts', about) times what
a collection costs per byte allocated in a real stream.  The last
lines are real streams, their time per message measured whole, and
the part spent outside `derl--take-events' (waits, wake-ups)."
  "How the breakdown is made.")

(defun derl-bench-stream--bytes (before after)
  "About how many bytes were allocated from BEFORE to AFTER.
Both are what `memory-use-counts' returned."
  (let ((sizes '(16 16 8 48 1 56 32)))   ; cons float vector-cell symbol
    (cl-loop for b in before             ; string-char interval string
             for a in after
             for size in sizes
             sum (* size (- a b)))))

(defun derl-bench-stream--measure (thunk)
  "Call THUNK; return (SECONDS BYTES GC-SECONDS), SECONDS without GC."
  (let* ((gc gc-elapsed)
         (memory (memory-use-counts))
         (start (float-time)))
    (funcall thunk)
    (let* ((end (float-time))
           (bytes (derl-bench-stream--bytes memory (memory-use-counts)))
           (collecting (- gc-elapsed gc)))
      (list (- end start collecting) bytes collecting))))

(defun derl-bench-stream--module-args (trace)
  "The arguments `derl--take-events' gives `derl--module-events'; TRACE the trace."
  (list (eq erlext-decode-binaries-as 'erl-binary)
        erlext-max-depth
        (and trace derl-trace-term-length)
        derl-max-message-memory))

(defun derl-bench-stream--messages (event)
  "The messages of the frames EVENT holds, in order.
Frames in a row come as one event: (frames ID CONTROL MESSAGE ...)
or (traced-frames ID TEXTS END CONTROL MESSAGE ...)."
  (pcase event
    (`(frames ,_ . ,items)
     (cl-loop for (_control message) on items by #'cddr collect message))
    (`(traced-frames ,_ ,_ . ,items)
     (cl-loop for (_end _control message) on items by #'cdddr
              collect message))))

(defun derl-bench-stream--without-done (event)
  "EVENT without its frame whose message is `done', or nil if none is left.
That frame is the stream's last: the texts before it keep their places."
  (let* ((traced (eq (car event) 'traced-frames))
         (width (if traced 3 2))
         (head (if traced (cl-subseq event 0 3) (cl-subseq event 0 2)))
         (items (nthcdr (length head) event))
         (kept nil))
    (while items
      (let ((frame (cl-subseq items 0 width)))
        (unless (eq (car (last frame)) 'done)
          (setq kept (append (reverse frame) kept)))
        (setq items (nthcdr width items))))
    (and kept (append head (nreverse kept)))))

(defun derl-bench-stream--capture (peer n trace)
  "Take the N messages of a stream from PEER off the module, unhandled.
TRACE non-nil asks the module for the trace text too.  Return
\(BATCHES SECONDS BYTES GC-SECONDS): the batches of events as the
module made them, holding the frames of the {seq, I} (the closing
`done' left out), and what making them cost."
  (let ((filter (process-filter derl--events-process))
        (args (derl-bench-stream--module-args trace))
        (events nil)
        (seconds 0) (bytes 0) (collecting 0)
        (done nil))
    (set-process-filter derl--events-process #'ignore)
    (unwind-protect
        (progn
          (derl-bench-stream--request peer (vector derl-bench-stream-sink
                                                   erl-node-name)
                                      n)
          ;; Let them come, so that they are taken in batches.
          (sleep-for (max 0.05 (/ n 200000.0)))
          (let ((deadline (+ (float-time) 600)))
            (while (and (not done) (< (float-time) deadline))
              (let* ((batch nil)
                     (cost (derl-bench-stream--measure
                            (lambda ()
                              (setq batch (apply #'derl--module-events args))))))
                (if (null batch)
                    (derl--module-wait-events 10000)
                  (cl-incf seconds (nth 0 cost))
                  (cl-incf bytes (nth 1 cost))
                  (cl-incf collecting (nth 2 cost))
                  ;; The batches as the module made them, but the
                  ;; closing `done'.
                  (when (memq 'done (mapcan #'derl-bench-stream--messages
                                            batch))
                    (setq done t
                          batch (delq nil (mapcar
                                           #'derl-bench-stream--without-done
                                           batch))))
                  (when batch
                    (push batch events)))))))
      (derl--module-wait-events nil)
      (set-process-filter derl--events-process filter))
    (list (nreverse events) seconds bytes collecting)))

(defun derl-bench-stream--captures (peer n trace)
  "Capture N messages from PEER three times, TRACE as the trace.
Return the events of the first time and the median of each cost, as
`derl-bench-stream--capture' does."
  (let* ((first (derl-bench-stream--capture peer n trace))
         (costs (cons (cdr first)
                      (cl-loop repeat 2
                               collect (prog1 (cdr (derl-bench-stream--capture
                                                    peer n trace))
                                         (garbage-collect))))))
    (cons (car first)
          (cl-loop for k below 3
                   collect (derl-bench-median
                            (mapcar (lambda (c) (nth k c)) costs))))))

(defun derl-bench-stream--match (message)
  "Match MESSAGE against the patterns of `derl-bench-stream--sink'.
The match alone, compiled by `mcase' as `erl-receive' compiles it."
  (mcase message
    (['seq i] i)
    ('done 0)))

(defun derl-bench-stream--handle (batches stage)
  "Hand BATCHES of events to derl's Lisp with the parts of STAGE on.
STAGE is `loop', `dispatch', `mailbox' or `run' (see
`derl-bench-stream--method'); the sink process must be registered.
Return (SECONDS BYTES GC-SECONDS), the sums over the batches."
  (let ((seconds 0) (bytes 0) (collecting 0)
        (batch nil))
    (cl-letf (((symbol-function 'derl--module-events)
               (lambda (&rest _) batch))
              ((symbol-function 'derl--handle-event)
               (if (eq stage 'loop) #'ignore
                 (symbol-function 'derl--handle-event)))
              ((symbol-function 'erl--send-local)
               (if (eq stage 'dispatch) (lambda (_pid _message) t)
                 (symbol-function 'erl--send-local)))
              ((symbol-function 'erl-maybe-schedule)
               (if (eq stage 'run) (symbol-function 'erl-maybe-schedule)
                 #'ignore)))
      (dolist (b batches)
        (setq batch b)
        (pcase-let ((`(,s ,m ,g) (derl-bench-stream--measure
                                  #'derl--take-events)))
          (cl-incf seconds s)
          (cl-incf bytes m)
          (cl-incf collecting g))
        (unless (eq stage 'run)
          ;; The mailbox emptied, untimed, for the next batch.
          (erl-schedule))))
    (list seconds bytes collecting)))

(defun derl-bench-stream--real (peer n trace)
  "Stream N messages from PEER into Emacs, TRACE as the trace, watched.
Return (SECONDS BYTES GC-SECONDS BATCHES INSIDE COLLECTIONS): the
whole stream's time, allocation and collection time, how many
batches it was taken in, the seconds spent in `derl--take-events',
and how many collections ran."
  (let* ((batches 0) (inside 0)
         (count-batch (lambda (events &rest args)
                        (let ((result (apply events args)))
                          (when result (cl-incf batches))
                          result)))
         (time-take (lambda (take &rest args)
                      (let ((start (float-time)))
                        (prog1 (apply take args)
                          (cl-incf inside (- (float-time) start))))))
         (result nil)
         (collections gcs-done))
    (advice-add 'derl--module-events :around count-batch)
    (advice-add 'derl--take-events :around time-take)
    (unwind-protect
        (let ((cost (derl-bench-stream--measure
                     (lambda ()
                       (setq result (derl-bench-stream--emacs peer n trace))))))
          (list (/ n (car result)) (nth 1 cost) (nth 2 cost) batches inside
                (- gcs-done collections)))
      (advice-remove 'derl--take-events time-take)
      (advice-remove 'derl--module-events count-batch))))

(defun derl-bench-stream--passes (thunk)
  "Call THUNK several times; return the median of each of its figures."
  (let ((runs (cl-loop repeat (if derl-bench-quick 3 5)
                       collect (prog1 (funcall thunk)
                                 (derl-bench-stream--settle)))))
    (cl-loop for k below (length (car runs))
             collect (derl-bench-median (mapcar (lambda (r) (nth k r)) runs)))))

(defun derl-bench-stream--breakdown (peer)
  "Print where a message of the stream from PEER spends its time."
  (let* ((n (derl-bench-size :captured))
         (load-before (derl-bench-load))
         ;; Real streams first: their batch size, and the cost of a
         ;; collection per byte.
         (real-off (derl-bench-stream--passes
                    (lambda () (derl-bench-stream--real peer n nil))))
         (real-on (derl-bench-stream--passes
                   (lambda () (derl-bench-stream--real peer n t))))
         (batch-size (max 1 (round n (max 1 (nth 3 real-off)))))
         (batch-size-on (max 1 (round n (max 1 (nth 3 real-on)))))
         (ns-per-byte (/ (+ (nth 2 real-off) (nth 2 real-on))
                         (float (max 1 (+ (nth 1 real-off) (nth 1 real-on))))))
         (plain (derl-bench-stream--captures peer n nil))
         (traced (derl-bench-stream--captures peer n t))
         (count (vector 1 0 0 nil))
         (sink nil))
    (setq sink (erl-spawn
                 (erl-register derl-bench-stream-sink)
                 (derl-bench-stream--sink count)))
    (unwind-protect
        (let* ((derl-use-trace-buffer nil)
               (off (car plain))
               (on (car traced))
               (messages (cl-loop for batch in off
                                  append (mapcan #'derl-bench-stream--messages
                                                 batch)))
               (stage (lambda (batches s)
                        (derl-bench-stream--passes
                         (lambda () (derl-bench-stream--handle batches s)))))
               (loop (funcall stage off 'loop))
               (dispatch (funcall stage off 'dispatch))
               (mailbox (funcall stage off 'mailbox))
               (run (funcall stage off 'run))
               (match (derl-bench-stream--passes
                       (lambda ()
                         (derl-bench-stream--measure
                          (lambda ()
                            (dolist (m messages)
                              (derl-bench-stream--match m)))))))
               (traced-run (let ((derl-use-trace-buffer t))
                             (derl-trace-flush)
                             (funcall stage on 'run)))
               (flush (let ((derl-use-trace-buffer t))
                        (derl-bench-stream--passes
                         (lambda ()
                           (derl-bench-stream--handle on 'run)
                           (derl-bench-stream--measure #'derl-trace-flush)))))
               (rows nil))
          (setq rows
                (list
                 (list "1 C: decode, make the events (derl--module-events)"
                       (cdr plain))
                 (list "2 C: the trace line's text (traced events - 1)"
                       (cl-mapcar #'- (cdr traced) (cdr plain)))
                 (list "3 Lisp: batch hand-over (derl--take-events' loop)" loop)
                 (list "4 Lisp: dispatch (handle-event .. REG_SEND handler)"
                       (cl-mapcar #'- dispatch loop))
                 (list "5 Lisp: mailbox delivery (erl--send-local)"
                       (cl-mapcar #'- mailbox dispatch))
                 (list "6 Lisp: the process runs (scheduler, erl-receive)"
                       (cl-mapcar #'- run mailbox))
                 (list "6a  of which the pattern match alone" match)
                 (list "7 Lisp: trace line into the pending buffer"
                       (cl-mapcar #'- traced-run run))
                 (list "8 Lisp: trace flush into *trace NODE*" flush)))
          (derl-bench-say "  one stream message by stage, %d messages, batches \
of %d (trace off) and %d (on)
  as real streams had them; us a message without garbage collection, bytes
  allocated a message, and the collection those bytes cost at %.1f ns a byte:"
                          n batch-size batch-size-on (* 1e9 ns-per-byte))
          (derl-bench-say "    %-52s %7s %7s %7s" "stage" "us" "bytes" "GC us")
          (let ((sum-off 0) (sum-on 0))
            (dolist (row rows)
              (pcase-let* ((`(,label (,s ,m ,_)) row)
                           (us (/ (* 1e6 s) n))
                           (b (let ((b (/ m (float n))))
                                ;; Noise around nothing shows as 0.
                                (if (< (abs b) 0.5) 0.0 b)))
                           (gc (* 1e6 b ns-per-byte)))
                (derl-bench-say "    %-52s %7.2f %7.0f %7.2f" label us b gc)
                (unless (string-prefix-p "6a" label)
                  (unless (string-match-p "\\`[278] " label)
                    (cl-incf sum-off (+ us gc)))
                  (cl-incf sum-on (+ us gc)))))
            (derl-bench-say "    %-52s %7.2f" "sum of the stages, trace off (1, 3-6)"
                            sum-off)
            (derl-bench-say "    %-52s %7.2f" "sum of the stages, trace on (1-8)"
                            sum-on)
            (pcase-dolist (`(,label ,real) `(("trace off" ,real-off)
                                             ("trace on" ,real-on)))
              (pcase-let ((`(,seconds ,bytes ,collecting ,batches ,inside
                               ,collections)
                           real))
                (derl-bench-say "    real stream, %-9s %6.2f us a message \
\(%.0f msgs/s), %.0f bytes, GC %.2f us;"
                                label (/ (* 1e6 seconds) n) (/ n seconds)
                                (/ bytes (float n)) (/ (* 1e6 collecting) n))
                (derl-bench-say "      %.0f collections of %.1f ms \
\(gc-cons-threshold %d, gc-cons-percentage %s)"
                                collections
                                (/ (* 1e3 collecting) (max 1 collections))
                                gc-cons-threshold gc-cons-percentage)
                (derl-bench-say "      %d batches of %.0f; outside \
derl--take-events (waits, wake-ups) %.2f us a message"
                                batches (/ n (float (max 1 batches)))
                                (/ (* 1e6 (- seconds inside)) n)))))
          (derl-bench-say "    load %s before, %s after" load-before
                          (derl-bench-load))
          (derl-bench-say "%s" (replace-regexp-in-string
                                "^" "    " derl-bench-stream--method)))
      ;; The sink ends, giving up its name.
      (erl-send sink 'done))))

;;;; The whole

(defun derl-bench-stream ()
  "Run the stream comparison and the breakdown; print the results."
  (setq derl-cookie derl-test-cookie
        derl-epmd-port (derl-test-epmd-port)
        derl-use-trace-buffer t)
  (customize-set-variable 'erl-node-name
                          (intern (format "emacsbench%s@localhost"
                                          (derl-test-random-string 4))))
  (let ((peer (derl-bench--start-node))
        (client (derl-bench--start-node))
        (ei nil))
    (unwind-protect
        (progn
          (derl-bench-say "\nSTREAM into Emacs, Erlang and ei, interleaved \
\(real nodes on this machine)%s"
                          (if derl-bench-quick ", quick mode" ""))
          (derl-bench-say "%s" (make-string 78 ?-))
          (derl-connect peer)
          (setq ei (derl-bench-ei-start peer))
          (derl-bench-stream--compare peer client ei)
          (derl-bench-stream--breakdown peer))
      (derl-bench-ei-stop ei)
      (ignore-errors (derl-bench--disconnect peer))
      (derl-test-stop-node client)
      (derl-test-stop-node peer))))

(provide 'bench-stream)

;;; bench-stream.el ends here

;;; bench.el --- derl benchmarks: the term codec against native JSON  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;; This file is not part of GNU Emacs.

;;; Commentary:

;; Measures derl's External Term Format codec against Emacs's own C
;; JSON parser and serializer on the same documents.  The targets:
;; decoding a term should take no longer than `json-parse-string' takes
;; on the equivalent JSON, and encoding no longer than `json-serialize'.
;;
;; The corpus (bench/corpus/NAME.etf and NAME.json) is written by
;; bench/bench_corpus.erl; bench/run.sh makes it and then calls
;; `derl-bench-codec' in a batch Emacs with lisp/ on the load path.
;;
;; Headline figures are taken as users run: Emacs's default
;; `gc-cons-threshold' and `gc-cons-percentage', with garbage
;; collection allowed, in repeated use: each function is called
;; `derl-bench-codec-calls' times in a row, each call running while the
;; previous one's result is held, as a caller holds it; only that result
;; is held, and only the documents (and, to encode, the values) besides,
;; since how often Emacs collects depends on how much is live.  A call
;; that allocates less than the threshold pays for a collection only in
;; some of the calls, so a figure is the mean over the calls of a run:
;;   "call"   the call itself, with every collection that Emacs runs
;;            inside it (their number is shown as "n", their time as
;;            "in-gc");
;;   "after"  the collection its garbage causes: the one that Emacs
;;            starts at the first function call after it returned, if
;;            one has come due by then;
;;   "total"  the sum, which the ratios and verdicts use.
;; Those are means over `derl-bench-runs' runs after a warm-up; the
;; functions of one item take turns in each run
;; (derl, JSON, derl, ...) so that load from elsewhere falls on all of
;; them alike.  Beside them, labelled "held", the median ratio of the
;; calls timed with collection held off (`gc-cons-threshold' at
;; `most-positive-fixnum'), which no user has.
;; Timing is reported, never asserted: the bench always exits 0 once it
;; has run.

;;; Code:

(require 'cl-lib)
(require 'erlext)
(require 'bench-lib)

(defgroup derl-bench nil
  "Benchmarks of derl."
  :group 'erlext
  :prefix "derl-bench-")

(defcustom derl-bench-runs (derl-bench-setting "DERL_BENCH_RUNS" 5 3)
  "Number of timed runs per measurement.
The environment variable DERL_BENCH_RUNS overrides the default."
  :type 'natnum)

(defcustom derl-bench-corpus-directory
  (expand-file-name "bench/corpus/" derl-bench-root)
  "Directory holding the corpus that bench/bench_corpus.erl writes."
  :type 'directory)

(defconst derl-bench-items
  '("records" "binary" "tree" "nested" "ints" "strings")
  "Corpus items, each NAME.etf and NAME.json, in the order reported.
The first one, the list of records, is the headline item.")

(defcustom derl-bench-codec-calls
  (derl-bench-setting "DERL_BENCH_CODEC_CALLS" 8 2)
  "Number of calls in a row that make one timed run of a function.
The environment variable DERL_BENCH_CODEC_CALLS overrides the default."
  :type 'natnum)

;;;; Timing

(defvar derl-bench--held nil
  "The result of the last timed call, held as a caller would hold it.")

(defun derl-bench--tick ()
  "Do nothing, as a function call: a point where Emacs collects when due."
  (setq derl-bench--held derl-bench--held))

(defmacro derl-bench--now ()
  "Return (TIME GCS-DONE GC-ELAPSED) without giving Emacs a chance to collect.
A function call may start a collection that has come due;
`gc-cons-threshold' bound this high makes none due (Emacs recomputes
what is due when the variable changes), and leaving the binding puts
back what was due."
  '(let ((gc-cons-threshold most-positive-fixnum))
     (list (float-time) gcs-done gc-elapsed)))

(defun derl-bench--with-gc (fn)
  "Call FN `derl-bench-codec-calls' times in a row under the current settings.
Return the mean cost of a call, as a list (TOTAL CALL N IN-GC AFTER)
in milliseconds but for N: the call with the N collections that ran
inside it, the time those took, and the collection its garbage causes,
the one that Emacs starts at the next function call after it returned,
if one is due by then.  Each call runs while the previous one's result
is held, as in repeated use, and the last one's is held until the
collection after it."
  (setq derl-bench--held nil)
  (derl-bench--tick)                    ; collect what is due before
  (let ((call 0.0) (after 0.0) (gcs 0) (in-gc 0.0))
    (dotimes (_ derl-bench-codec-calls)
      (let* ((start (derl-bench--now))
             (value (funcall fn))
             (returned (derl-bench--now))
             (collected (progn (setq derl-bench--held value)
                               (derl-bench--tick)
                               (derl-bench--now))))
        (cl-incf call (- (nth 0 returned) (nth 0 start)))
        (cl-incf gcs (- (nth 1 returned) (nth 1 start)))
        (cl-incf in-gc (- (nth 2 returned) (nth 2 start)))
        (cl-incf after (- (nth 0 collected) (nth 0 returned)))))
    (setq derl-bench--held nil)
    (let ((ms (/ 1000.0 derl-bench-codec-calls)))
      (list (* ms (+ call after)) (* ms call)
            (/ (float gcs) derl-bench-codec-calls) (* ms in-gc) (* ms after)))))

(defun derl-bench--mean (numbers)
  "Return the mean of the list NUMBERS."
  (/ (float (apply #'+ numbers)) (length numbers)))

(defun derl-bench--held-off (fn)
  "Call FN once with collection held off; return the call's milliseconds."
  (derl-bench--tick)
  (let* ((gc-cons-threshold most-positive-fixnum)
         (gc-cons-percentage 1.0)
         (t0 (float-time)))
    (funcall fn)
    (* 1000.0 (- (float-time) t0))))

(defun derl-bench--time-all (fns)
  "Time each function of the alist FNS `derl-bench-runs' times.
FNS maps keys to functions.  Under default collection the functions
take turns in each run (so that load from elsewhere falls on all
alike); then, in as many runs, with collection held off.  Return an
alist from each key to (TOTAL CALL N IN-GC AFTER HELD-OFF): the means
over the runs, since a call that allocates less than the threshold
pays for a collection only in some runs, and the median of the runs
with collection held off."
  (dolist (f fns) (funcall (cdr f)))    ; warm up
  (let ((samples (mapcar (lambda (f) (list (car f))) fns)))
    (dotimes (_ derl-bench-runs)
      (dolist (f fns)
        (push (derl-bench--with-gc (cdr f))
              (cdr (assq (car f) samples)))))
    (dotimes (_ derl-bench-runs)
      (dolist (f fns)
        (push (derl-bench--held-off (cdr f))
              (cdr (assq (car f) samples)))))
    (garbage-collect)
    (mapcar
     (lambda (s)
       (let ((with-gc (cl-remove-if-not #'consp (cdr s)))
             (held (cl-remove-if-not #'numberp (cdr s))))
         (cons (car s)
               (append (cl-loop for i below 5
                                collect (derl-bench--mean
                                         (mapcar (lambda (r) (nth i r))
                                                 with-gc)))
                       (list (derl-bench-median held))))))
     samples)))

;;;; Reading the corpus

(defun derl-bench--read (file multibyte)
  "Return the contents of FILE in the corpus as a string.
With MULTIBYTE nil, the bytes as a unibyte string; otherwise the text
decoded as UTF-8, as a JSON document arrives from a process or buffer."
  (let ((path (expand-file-name file derl-bench-corpus-directory)))
    (unless (file-readable-p path)
      (error "Corpus file %s is missing; run `sh bench/run.sh'" path))
    (with-temp-buffer
      (if multibyte
          (let ((coding-system-for-read 'utf-8-unix))
            (insert-file-contents path))
        (set-buffer-multibyte nil)
        (insert-file-contents-literally path))
      (buffer-string))))

;;;; Measuring one item

(defun derl-bench--measure (name)
  "Measure corpus item NAME; return a plist of its figures.
Times are lists as `derl-bench--time-all' gives them.  Decoding is
timed while only the documents are live, encoding while the values to
encode are live too: no more than each task needs, since how often
Emacs collects depends on how much is live."
  (let* ((etf (derl-bench--read (concat name ".etf") nil))
         (json (derl-bench--read (concat name ".json") t))
         (decode-times
          (derl-bench--time-all
           `((:decode . ,(lambda () (erlext-binary-to-term etf)))
             (:json-parse . ,(lambda () (json-parse-string json)))
             (:decode-lossless
              . ,(lambda ()
                   (let ((erlext-decode-binaries-as 'erl-binary))
                     (erlext-binary-to-term etf)))))))
         (term (erlext-binary-to-term etf))
         (lossless (let ((erlext-decode-binaries-as 'erl-binary))
                     (erlext-binary-to-term etf)))
         (parsed (json-parse-string json))
         ;; Emacs 30's `json-serialize' refuses nesting past 50 levels.
         (refusal (condition-case err
                      (ignore (json-serialize parsed))
                    (error (error-message-string err))))
         (encode-times
          (derl-bench--time-all
           `((:encode . ,(lambda () (erlext-term-to-binary term)))
             ,@(unless refusal
                 `((:json-serialize . ,(lambda () (json-serialize parsed)))))
             (:encode-lossless
              . ,(lambda () (erlext-term-to-binary lossless)))))))
    (append
     (list :name name
           :etf-bytes (length etf)
           :json-bytes (string-bytes json)
           :json-serialize-refusal refusal
           :same-bytes (string= (erlext-term-to-binary lossless) etf))
     (cl-loop for (key . figures) in (append decode-times encode-times)
              append (list key figures)))))

;;;; Reporting

(defun derl-bench--ratio (ours theirs &optional held-off)
  "Return the ratio of OURS to THEIRS, two lists of figures.
Of the totals under default collection, or, with HELD-OFF, of the
calls with collection held off."
  (let ((i (if held-off 5 0)))
    (/ (nth i ours) (max (nth i theirs) 1e-6))))

(defconst derl-bench--rows
  '(("decode" :decode :json-parse "json-parse-string" 0.5)
    ("decode lossless" :decode-lossless :json-parse "json-parse-string" 0.5)
    ("encode" :encode :json-serialize "json-serialize" 0.6)
    ("encode lossless" :encode-lossless :json-serialize "json-serialize" 0.6))
  "The comparisons: label, derl's key, JSON's key, JSON's function, target.
The target is the largest ratio of derl's time to the JSON function's
that meets it, on every item.")

(defun derl-bench--table (results label ours theirs reference target)
  "Print the table comparing OURS with THEIRS over RESULTS.
LABEL names the comparison, REFERENCE the JSON function, TARGET the
largest ratio that meets the target."
  (let ((rule (make-string 106 ?-)))
    (derl-bench-say "\n%s: derl vs `%s', ms\n%s" (upcase label)
                    reference rule)
    (derl-bench-say "%-8s  %34s  %34s  %18s" ""
                    "-------------- derl --------------"
                    "-------------- JSON --------------"
                    "-- derl / JSON ---")
    (derl-bench-say "%-8s  %7s %7s %4s %6s %6s  %7s %7s %4s %6s %6s  %5s %5s %7s"
                    "" "total" "call" "n" "in-gc" "after"
                    "total" "call" "n" "in-gc" "after" "ratio" "held" "")
    (dolist (r results)
      (let* ((o (plist-get r ours))
             (th (plist-get r theirs))
             (ratio (and th (derl-bench--ratio o th))))
        (if (not th)
            (derl-bench-say
             "%-8s  %7.2f %7.2f %4.1f %6.2f %6.2f  JSON refuses it: %s"
             (plist-get r :name) (nth 0 o) (nth 1 o) (nth 2 o) (nth 3 o)
             (nth 4 o) (plist-get r :json-serialize-refusal))
        (derl-bench-say
         "%-8s  %7.2f %7.2f %4.1f %6.2f %6.2f  %7.2f %7.2f %4.1f %6.2f %6.2f  \
%5.2f %5.2f %7s"
         (plist-get r :name)
         (nth 0 o) (nth 1 o) (nth 2 o) (nth 3 o) (nth 4 o)
         (nth 0 th) (nth 1 th) (nth 2 th) (nth 3 th) (nth 4 th)
         ratio (derl-bench--ratio o th t)
         (derl-bench-verdict (<= ratio target))))))
    (derl-bench-say "%s" rule)))

(defun derl-bench--summarise (results)
  "Add the codec rows of RESULTS to the summary: records and the worst item."
  (dolist (row derl-bench--rows)
    (pcase-let* ((`(,label ,ours ,theirs ,reference ,target) row)
                 (ratios (cl-loop for r in results
                                  when (plist-get r theirs)
                                  collect (cons (plist-get r :name)
                                                (derl-bench--ratio
                                                 (plist-get r ours)
                                                 (plist-get r theirs)))))
                 (worst (car (sort (copy-sequence ratios)
                                   (lambda (a b) (> (cdr a) (cdr b))))))
                 (records (cdr (assoc "records" ratios))))
      (derl-bench-summary
       "codec" (format "%s / %s" label reference)
       (format "records %.2fx, worst %.2fx (%s)"
               records (cdr worst) (car worst))
       (format "<= %.1fx, every item%s" target
               (if (= (length ratios) (length results)) ""
                 " JSON takes"))
       (derl-bench-verdict (<= (cdr worst) target))))))

(defun derl-bench--report (results)
  "Print the tables for RESULTS, a list of `derl-bench--measure' plists."
  (dolist (row derl-bench--rows)
    (apply #'derl-bench--table results row))
  (derl-bench-say "\nCORPUS")
  (dolist (r results)
    (derl-bench-say "%-8s %8.0f KB ETF %8.0f KB JSON   lossless \
re-encoding: %s"
                    (plist-get r :name)
                    (/ (plist-get r :etf-bytes) 1024.0)
                    (/ (plist-get r :json-bytes) 1024.0)
                    (if (plist-get r :same-bytes)
                        "the very bytes Erlang wrote"
                      "different bytes")))
  (princ "
\"total\" = \"call\" + \"after\", the figure ratios and verdicts use; means
of calls made in a row, each while the previous one's result is held.
\"call\": the call, with the \"n\" garbage collections Emacs
ran inside it (default `gc-cons-threshold' and `gc-cons-percentage',
collection allowed), which took \"in-gc\" of it.  \"after\": the
collection its garbage causes, which Emacs starts at the first function
call after it returned if one is due.  \"held\": derl / JSON of the
call alone with collection held off, medians (a setting no user has;
shown beside only).  \"lossless\": `erlext-decode-binaries-as' bound to
`erl-binary' (decode), and encoding that lossless value (encode);
compared with the same JSON function.  The verdict is ratio <= 0.5 to
decode, <= 0.6 to encode.
The binary item's JSON is a string of as many ASCII characters (JSON
holds no raw bytes); in default mode that binary decodes to a unibyte
string, which encodes back as a list of bytes, not a binary.
"))

;;;###autoload
(defun derl-bench-codec ()
  "Benchmark the term codec against native JSON and print the tables.
Meant for batch use; see the Commentary."
  (unless (and (fboundp 'json-parse-string) (json-available-p))
    (error "This Emacs has no native JSON support to compare with"))
  (derl-bench-say "derl codec bench: %s
%d runs of %d calls a figure; gc-cons-threshold %d, gc-cons-percentage %s \
\(Emacs's defaults: %s)
one empty collection here takes %.1f ms; erlext loaded from %s"
                  (car (split-string (emacs-version) "\n"))
                  derl-bench-runs derl-bench-codec-calls
                  gc-cons-threshold gc-cons-percentage
                  (if (and (= gc-cons-threshold 800000)
                           (= gc-cons-percentage 0.1))
                      "yes" "NO")
                  (derl-bench-median
                   (cl-loop repeat 5
                            collect (let ((t0 (float-time)))
                                      (garbage-collect)
                                      (* 1000 (- (float-time) t0)))))
                  (let ((file (symbol-file 'erlext-binary-to-term)))
                    (if file (file-relative-name file derl-bench-root)
                      "an unknown file")))
  (let (results)
    (dolist (name derl-bench-items)
      (message "bench: %s..." name)
      (push (derl-bench--measure name) results))
    (setq results (nreverse results))
    (derl-bench--report results)
    (derl-bench--summarise results)))

(provide 'bench)

;;; bench.el ends here

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
;; Every figure is the median of `derl-bench-runs' timed runs after
;; one warm-up run.  Each timed run starts from a collected heap and
;; runs with automatic garbage collection held off; the collection of
;; what it left behind is then timed separately and added, so that no
;; run pays, at random, for collections that earlier work made due
;; (see `derl-bench--time').  The bytes each call allocates are shown
;; too, since they set how often collections come in real use.
;; Timing is reported, never asserted: the bench always exits 0 once it
;; has run.

;;; Code:

(require 'cl-lib)
(require 'erlext)

(defgroup derl-bench nil
  "Benchmarks of derl."
  :group 'erlext
  :prefix "derl-bench-")

(defcustom derl-bench-runs
  (let ((env (getenv "DERL_BENCH_RUNS")))
    (if (and env (string-match-p "\\`[1-9][0-9]*\\'" env))
        (string-to-number env)
      15))
  "Number of timed runs per measurement; the median is reported.
The environment variable DERL_BENCH_RUNS overrides the default."
  :type 'natnum)

(defconst derl-bench--root
  (file-name-directory
   (directory-file-name
    (file-name-directory (or load-file-name buffer-file-name
                             default-directory))))
  "The derl source tree: the parent of the directory of this file.")

(defcustom derl-bench-corpus-directory
  (expand-file-name "bench/corpus/" derl-bench--root)
  "Directory holding the corpus that bench/bench_corpus.erl writes."
  :type 'directory)

(defconst derl-bench-items
  '("records" "binary" "tree" "nested" "ints" "strings")
  "Corpus items, each NAME.etf and NAME.json, in the order reported.
The first one, the list of records, is the headline item.")

(defconst derl-bench-target-ratio 1.0
  "Largest ratio of derl's time to the JSON function's time that meets the target.")

;;;; Timing

(defun derl-bench--median-value (numbers)
  "Return the median of the list NUMBERS."
  (let* ((sorted (sort (copy-sequence numbers) #'<))
         (n (length sorted)))
    (if (cl-oddp n)
        (nth (/ n 2) sorted)
      (/ (+ (nth (1- (/ n 2)) sorted) (nth (/ n 2) sorted)) 2.0))))

(defun derl-bench--gc-ms ()
  "Return the milliseconds that one `garbage-collect' takes now."
  (let ((t0 (float-time)))
    (garbage-collect)
    (* 1000.0 (- (float-time) t0))))

(defun derl-bench--consed ()
  "Return roughly how many bytes of Lisp objects have been allocated.
Made from `memory-use-counts' with 64-bit object sizes."
  (let ((c (memory-use-counts)))
    (+ (* 16 (nth 0 c))                 ; conses
       (* 16 (nth 1 c))                 ; floats
       (* 8 (nth 2 c))                  ; vector cells
       (* 48 (nth 3 c))                 ; symbols
       (nth 4 c)                        ; string bytes
       (* 56 (nth 5 c))                 ; intervals
       (* 32 (nth 6 c)))))              ; string headers

(defun derl-bench--time (fn)
  "Return the median cost of calling FN.
FN is called once to warm up, then `derl-bench-runs' times.  Each
timed run starts from a collected heap and runs with collection
held off, so the run itself is timed without any garbage collection;
the collection that follows is timed too, less that of an empty
collection just before the run: that difference is the run's
garbage-collection debt, the cost of sweeping what it allocated.

The value is a list (TOTAL RUN GC ALLOC): the medians in milliseconds
of run plus debt, of the run alone and of the debt, and the bytes of
Lisp objects one run allocates (what makes collections come sooner)."
  (funcall fn)
  (let (totals runs gcs allocs)
    (dotimes (_ derl-bench-runs)
      (garbage-collect)
      ;; Everything below runs with automatic collection held off, so
      ;; that the only collections are the two timed ones; one that came
      ;; due during the run would otherwise fire, untimed, at the next
      ;; function call once the binding is undone.
      (let* ((gc-cons-threshold most-positive-fixnum)
             (gc-cons-percentage 1.0)
             (empty (derl-bench--gc-ms))
             (consed (derl-bench--consed))
             (t0 (float-time))
             run gc)
        (funcall fn)
        (setq run (* 1000.0 (- (float-time) t0)))
        (push (- (derl-bench--consed) consed) allocs)
        (setq gc (max 0.0 (- (derl-bench--gc-ms) empty)))
        (push (+ run gc) totals)
        (push run runs)
        (push gc gcs)))
    (list (derl-bench--median-value totals) (derl-bench--median-value runs)
          (derl-bench--median-value gcs) (derl-bench--median-value allocs))))

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
Times are (TOTAL RUN GC) lists as `derl-bench--time' returns them."
  (let* ((etf (derl-bench--read (concat name ".etf") nil))
         (json (derl-bench--read (concat name ".json") t))
         (term (erlext-binary-to-term etf))
         (lossless (let ((erlext-decode-binaries-as 'erl-binary))
                     (erlext-binary-to-term etf)))
         (parsed (json-parse-string json)))
    (list
     :name name
     :etf-bytes (length etf)
     :json-bytes (string-bytes json)
     :same-bytes (string= (erlext-term-to-binary lossless) etf)
     :decode (derl-bench--time (lambda () (erlext-binary-to-term etf)))
     :decode-lossless (derl-bench--time
                       (lambda ()
                         (let ((erlext-decode-binaries-as 'erl-binary))
                           (erlext-binary-to-term etf))))
     :json-parse (derl-bench--time (lambda () (json-parse-string json)))
     :encode (derl-bench--time (lambda () (erlext-term-to-binary term)))
     :encode-lossless (derl-bench--time
                       (lambda () (erlext-term-to-binary lossless)))
     :json-serialize (derl-bench--time (lambda () (json-serialize parsed))))))

;;;; Reporting

(defun derl-bench--ratio (ours theirs &optional run-only)
  "Return the ratio of OURS to THEIRS, two `derl-bench--time' lists.
With RUN-ONLY, of the run times without garbage collection; otherwise
of the totals (run plus garbage-collection debt)."
  (let ((a (if run-only (nth 1 ours) (car ours)))
        (b (if run-only (nth 1 theirs) (car theirs))))
    (/ a (max b 1e-6))))

(defun derl-bench--row (result ours theirs lossless)
  "Return the figures of one table row of RESULT as a string.
OURS, THEIRS and LOSSLESS are the keys of RESULT's times: derl's in
default mode, the JSON function's, and derl's in lossless mode."
  (let ((o (plist-get result ours))
        (th (plist-get result theirs))
        (l (plist-get result lossless)))
    (format "%8.2f %6.2f %6.0f %8.2f  %8.2f %6.2f %6.0f  %5.2f %5.2f %5.2f"
            (nth 0 o) (nth 2 o) (/ (nth 3 o) 1024.0) (car l)
            (nth 0 th) (nth 2 th) (/ (nth 3 th) 1024.0)
            (derl-bench--ratio o th) (derl-bench--ratio l th)
            (/ (float (nth 3 o)) (max 1 (nth 3 th))))))

(defun derl-bench--verdict (ours theirs)
  "Say how OURS compares with THEIRS and whether that meets the target.
OURS and THEIRS are `derl-bench--time' lists."
  (let ((ratio (derl-bench--ratio ours theirs)))
    (format "%.2f  (%.2f without GC)  target <= %.1f: %s"
            ratio (derl-bench--ratio ours theirs t) derl-bench-target-ratio
            (if (<= ratio derl-bench-target-ratio) "met" "NOT MET"))))

(defun derl-bench--report (results)
  "Print the tables for RESULTS, a list of `derl-bench--measure' plists."
  (let ((rule (make-string 90 ?-))
        (head (format "%-8s %8s %6s %6s %8s  %8s %6s %6s  %5s %5s %5s\n"
                      "" "total" "gc" "KB" "lossless" "total" "gc" "KB"
                      "ratio" "lossl" "alloc")))
    (princ (format "\nDECODE  `erlext-binary-to-term' vs `json-parse-string' \
\(objects as hash tables,\narrays as vectors).\n%s\n" rule))
    (princ (format "%-8s %24s %9s  %22s  %17s\n"
                   "" "erlext-binary-to-term" "" "json-parse-string"
                   "derl / json"))
    (princ head)
    (dolist (r results)
      (princ (format "%-8s %s\n" (plist-get r :name)
                     (derl-bench--row r :decode :json-parse
                                      :decode-lossless))))
    (princ (format "%s\n\nENCODE  `erlext-term-to-binary' on the decoded \
value vs `json-serialize' on the\nparsed JSON.\n%s\n" rule rule))
    (princ (format "%-8s %24s %9s  %22s  %17s\n"
                   "" "erlext-term-to-binary" "" "json-serialize"
                   "derl / json"))
    (princ head)
    (dolist (r results)
      (princ (format "%-8s %s\n" (plist-get r :name)
                     (derl-bench--row r :encode :json-serialize
                                      :encode-lossless))))
    (princ (format "%s\n\nCORPUS\n" rule))
    (dolist (r results)
      (princ (format "%-8s %8.0f KB ETF %8.0f KB JSON   lossless \
re-encoding: %s\n"
                     (plist-get r :name)
                     (/ (plist-get r :etf-bytes) 1024.0)
                     (/ (plist-get r :json-bytes) 1024.0)
                     (if (plist-get r :same-bytes)
                         "the very bytes Erlang wrote"
                       "different bytes"))))
    (princ (mapconcat
            #'identity
            '(""
              "Times in ms, medians.  \"total\" is the call itself, timed \
with garbage"
              "collection held off, plus \"gc\": what collecting its \
garbage then costs"
              "(the collection after the call less an empty one).  \"KB\": \
Lisp objects"
              "one call allocates (roughly), which sets how soon the next \
collection"
              "comes.  \"lossless\": derl with `erlext-decode-binaries-as' \
bound to"
              "`erl-binary' (decode), and encoding that lossless value \
(encode)."
              "Ratios are derl over JSON: \"ratio\" of totals, \"lossl\" \
lossless total"
              "over JSON total, \"alloc\" of KB; at most 1.0 meets the \
time target."
              "The binary item's JSON is a string of as many ASCII \
characters (JSON"
              "holds no raw bytes); in default mode that binary decodes to \
a unibyte"
              "string, which encodes back as a list of bytes, not a binary."
              "")
            "\n"))
    (let ((r (car results)))
      (princ (format "\nHEADLINE  %s, derl / JSON:\n  decode %s\n  \
encode %s\n"
                     (plist-get r :name)
                     (derl-bench--verdict (plist-get r :decode)
                                          (plist-get r :json-parse))
                     (derl-bench--verdict (plist-get r :encode)
                                          (plist-get r :json-serialize)))))))

;;;###autoload
(defun derl-bench-codec ()
  "Benchmark the term codec against native JSON and print the tables.
Meant for batch use; see the Commentary."
  (unless (and (fboundp 'json-parse-string) (json-available-p))
    (error "This Emacs has no native JSON support to compare with"))
  (princ (format "derl codec bench: %s, %d runs a figure (median), \
gc-cons-threshold %d\nerlext loaded from %s\n"
                 (car (split-string (emacs-version) "\n"))
                 derl-bench-runs gc-cons-threshold
                 (let ((file (symbol-file 'erlext-binary-to-term)))
                   (if file (file-relative-name file derl-bench--root)
                     "an unknown file"))))
  (let (results)
    (dolist (name derl-bench-items)
      (message "bench: %s..." name)
      (push (derl-bench--measure name) results))
    (derl-bench--report (nreverse results))))

(provide 'bench)

;;; bench.el ends here

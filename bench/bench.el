;;; bench.el --- derl benchmarks: the term codec against native JSON  -*- lexical-binding: t; -*-

;; This file is not part of GNU Emacs.

;;; Commentary:

;; Measures derl's External Term Format codec against Emacs's own C
;; JSON parser and serializer on the same documents, as DESIGN.md's
;; performance targets ask: decoding a term should take no longer than
;; `json-parse-string' takes on the equivalent JSON, and encoding no
;; longer than `json-serialize'.
;;
;; The corpus (bench/corpus/NAME.etf and NAME.json) is written by
;; bench/bench_corpus.erl; bench/run.sh makes it and then runs
;;
;;   emacs -Q --batch -L lisp -l bench/bench.el -f derl-bench-codec
;;
;; Every figure is the median of `derl-bench-runs' timed runs after
;; one warm-up run, each timed run preceded by `garbage-collect' so
;; that collections inside a run are those the run itself causes.
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

(defun derl-bench--median (numbers)
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

(defun derl-bench--time (fn)
  "Return the median cost in milliseconds of calling FN.
FN is called once to warm up, then `derl-bench-runs' times.  Each
timed run starts from a collected heap and runs with collection
held off, so the run itself is timed without any garbage collection;
the collection that follows is timed too, less that of an empty
collection just before the run: that difference is the run's
garbage-collection debt, the cost of what it allocated.

The value is a list (TOTAL RUN GC): the medians of run plus debt, of
the run alone, and of the debt."
  (funcall fn)
  (let (totals runs gcs)
    (dotimes (_ derl-bench-runs)
      (garbage-collect)
      (let ((empty (derl-bench--gc-ms))
            run gc)
        (let ((gc-cons-threshold most-positive-fixnum)
              (gc-cons-percentage 1.0)
              (t0 (float-time)))
          (funcall fn)
          (setq run (* 1000.0 (- (float-time) t0))))
        (setq gc (max 0.0 (- (derl-bench--gc-ms) empty)))
        (push (+ run gc) totals)
        (push run runs)
        (push gc gcs)))
    (list (derl-bench--median totals) (derl-bench--median runs)
          (derl-bench--median gcs))))

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
Times are (MS . GCS) conses as `derl-bench--time' returns them."
  (let* ((etf (derl-bench--read (concat name ".etf") nil))
         (json (derl-bench--read (concat name ".json") t))
         (term (erlext-binary-to-term etf))
         (lossless (let ((erlext-decode-binaries-as 'erl-binary))
                     (erlext-binary-to-term etf)))
         (parsed (json-parse-string json))
         (reencoded (erlext-term-to-binary lossless)))
    (list
     :name name
     :etf-bytes (length etf)
     :json-bytes (string-bytes json)
     :decode (derl-bench--time (lambda () (erlext-binary-to-term etf)))
     :decode-lossless (derl-bench--time
                       (lambda ()
                         (let ((erlext-decode-binaries-as 'erl-binary))
                           (erlext-binary-to-term etf))))
     :json-parse (derl-bench--time (lambda () (json-parse-string json)))
     :encode (derl-bench--time (lambda () (erlext-term-to-binary term)))
     :encode-lossless (derl-bench--time
                       (lambda () (erlext-term-to-binary lossless)))
     :json-serialize (derl-bench--time (lambda () (json-serialize parsed)))
     :same-bytes (string= reencoded etf))))

;;;; Reporting

(defun derl-bench--ms (time)
  "Format TIME, a (MS . GCS) cons, as milliseconds."
  (format "%9.2f" (car time)))

(defun derl-bench--ratio (ours theirs)
  "Format the ratio of OURS to THEIRS, two (MS . GCS) conses."
  (if (> (car theirs) 0)
      (format "%7.2f" (/ (car ours) (car theirs)))
    (format "%7s" "-")))

(defun derl-bench--verdict (ours theirs)
  "Say whether OURS over THEIRS, two (MS . GCS) conses, meets the target."
  (let ((ratio (/ (car ours) (max (car theirs) 1e-9))))
    (format "%.2f (target <= %.1f: %s)" ratio derl-bench-target-ratio
            (if (<= ratio derl-bench-target-ratio) "met" "NOT MET"))))

(defun derl-bench--report (results)
  "Print the tables for RESULTS, a list of `derl-bench--measure' plists."
  (let ((rule (make-string 86 ?-)))
    (princ (format "\nDecode: `erlext-binary-to-term' (default, and lossless \
with binaries as erl-binary)\nagainst `json-parse-string' (objects as \
hash tables, arrays as vectors); median ms.\n%s\n" rule))
    (princ (format "%-8s %9s %9s %9s %9s %9s %7s %7s %4s\n"
                   "item" "ETF KB" "JSON KB" "decode" "lossless"
                   "json" "ratio" "l-ratio" "gcs"))
    (dolist (r results)
      (princ (format "%-8s %9.0f %9.0f %s %s %s %s %s %4s\n"
                     (plist-get r :name)
                     (/ (plist-get r :etf-bytes) 1024.0)
                     (/ (plist-get r :json-bytes) 1024.0)
                     (derl-bench--ms (plist-get r :decode))
                     (derl-bench--ms (plist-get r :decode-lossless))
                     (derl-bench--ms (plist-get r :json-parse))
                     (derl-bench--ratio (plist-get r :decode)
                                        (plist-get r :json-parse))
                     (derl-bench--ratio (plist-get r :decode-lossless)
                                        (plist-get r :json-parse))
                     (format "%s/%s"
                             (cdr (plist-get r :decode))
                             (cdr (plist-get r :json-parse))))))
    (princ (format "%s\n" rule))
    (princ (format "\nEncode: `erlext-term-to-binary' on the decoded value \
(default, and lossless)\nagainst `json-serialize' on the parsed JSON; median \
ms.  \"same\": the lossless value\nre-encodes to the very bytes Erlang wrote.\n%s\n"
                   rule))
    (princ (format "%-8s %9s %9s %9s %7s %7s %4s %5s\n"
                   "item" "encode" "lossless" "json" "ratio" "l-ratio"
                   "gcs" "same"))
    (dolist (r results)
      (princ (format "%-8s %s %s %s %s %s %4s %5s\n"
                     (plist-get r :name)
                     (derl-bench--ms (plist-get r :encode))
                     (derl-bench--ms (plist-get r :encode-lossless))
                     (derl-bench--ms (plist-get r :json-serialize))
                     (derl-bench--ratio (plist-get r :encode)
                                        (plist-get r :json-serialize))
                     (derl-bench--ratio (plist-get r :encode-lossless)
                                        (plist-get r :json-serialize))
                     (format "%s/%s"
                             (cdr (plist-get r :encode))
                             (cdr (plist-get r :json-serialize)))
                     (if (plist-get r :same-bytes) "yes" "no"))))
    (princ (format "%s\n" rule))
    (princ "Ratios are derl / JSON: at most 1.0 is the target.  \"gcs\": \
median garbage\ncollections in one run, ours/JSON.  The binary item's JSON \
is an ASCII string of\nthe same length (JSON holds no raw bytes); in \
default mode that binary decodes to\na unibyte string, which encodes back \
as a list of byte values, not a binary.\n")
    (let ((head (car results)))
      (princ (format "\nHeadline, %s:\n  decode %s\n  encode %s\n"
                     (plist-get head :name)
                     (derl-bench--verdict (plist-get head :decode)
                                          (plist-get head :json-parse))
                     (derl-bench--verdict (plist-get head :encode)
                                          (plist-get head :json-serialize)))))))

;;;###autoload
(defun derl-bench-codec ()
  "Benchmark the term codec against native JSON and print the tables.
Meant for batch use; see the Commentary."
  (unless (and (fboundp 'json-parse-string) (json-available-p))
    (error "This Emacs has no native JSON support to compare with"))
  (princ (format "derl codec bench: %s, %d runs a figure (median), \
gc-cons-threshold %d\n"
                 (car (split-string (emacs-version) "\n"))
                 derl-bench-runs gc-cons-threshold))
  (let (results)
    (dolist (name derl-bench-items)
      (message "bench: %s..." name)
      (push (derl-bench--measure name) results))
    (derl-bench--report (nreverse results))))

(provide 'bench)

;;; bench.el ends here

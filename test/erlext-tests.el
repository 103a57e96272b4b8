;;; erlext-tests.el --- the term codec: mapping, limits, bad input  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; Fixed vectors made by a real Erlang node (the bytes below are what
;; `term_to_binary' printed), Distel's mapping, and every kind of bad
;; input and unencodable object.

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'erlext)
(require 'derl-tests)

(defun erlext-test-bytes (&rest bytes)
  "Return a unibyte string of BYTES."
  (apply #'unibyte-string bytes))

(defmacro erlext-test-decode-error (form)
  "Assert FORM signals `erlext-decode-error'; return the error data."
  `(cdr (should-error ,form :type 'erlext-decode-error)))

;;;; Distel's mapping, from bytes Erlang made

(ert-deftest erlext-decode-fixed-vectors ()
  "Terms encoded by Erlang decode to Distel's Lisp values."
  (dolist (case
           `(((131 100 0 3 102 111 111) foo)
             ((131 109 0 0 0 3 97 98 99) "abc")
             ((131 107 0 3 97 98 99) "abc")
             ((131 104 3 100 0 1 97 97 1 107 0 2 2 3) [a 1 "\2\3"])
             ((131 106) nil)
             ((131 98 255 255 255 251) -5)
             ((131 110 9 0 0 0 0 0 0 0 0 0 64) ,(expt 2 70))
             ((131 110 9 1 0 0 0 0 0 0 0 0 64) ,(- (expt 2 70)))
             ((131 70 63 248 0 0 0 0 0 0) 1.5)
             ((131 108 0 0 0 1 97 1 97 2) (1 . 2))
             ((131 104 0) [])
             ((131 98 0 0 1 44) 300)
             ((131 108 0 0 0 2 98 0 0 3 232 98 0 0 7 208 106) (1000 2000))
             ((131 100 0 4 116 114 117 101) true)))
    (should (equal (erlext-binary-to-term (apply #'erlext-test-bytes
                                                 (car case)))
                   (cadr case)))))

(ert-deftest erlext-decode-pid-shape ()
  "A pid is [erl-tag erl-pid NODE ID SERIAL CREATION], as in Distel."
  (let ((pid (erlext-binary-to-term
              (erlext-test-bytes 131 88 100 0 13 110 111 110 111 100 101 64
                                 110 111 104 111 115 116 0 0 0 42 0 0 0 3
                                 0 0 0 0))))
    (should (equal pid (vector erl-tag 'erl-pid 'nonode@nohost 42 3 0)))
    (should (eq (aref pid 0) erl-tag))
    (should-not (tuplep pid))))

(ert-deftest erlext-decode-pids-again-and-again ()
  "Pids decode right however often they come, and whatever else came.
The decoder shares the vector of a pid it sees again and again;
pids that differ in any part, the node alone included, stay apart."
  (let ((pids nil))
    (dolist (node '(a@host b@host c@other))
      (dolist (id '(0 1 64 65 4096))
        (dolist (serial '(0 2))
          (dolist (creation '(0 1 4294967295))
            (push (vector erl-tag 'erl-pid node id serial creation) pids)))))
    (dotimes (_ 3)
      (dolist (pid pids)
        (dotimes (_ 3)
          (should (equal (erlext-binary-to-term (erlext-term-to-binary pid))
                         pid)))))))

(ert-deftest erlext-decode-map-bitstring-export ()
  "Maps are `equal' hash tables; bitstrings and exports are tagged."
  (let ((map (erlext-binary-to-term
              (erlext-test-bytes 131 116 0 0 0 1 100 0 1 97 97 1))))
    (should (hash-table-p map))
    (should (eq (hash-table-test map) 'equal))
    (should (= (gethash 'a map) 1)))
  (should (equal (erlext-binary-to-term
                  (erlext-test-bytes 131 77 0 0 0 1 3 224))
                 (vector erl-tag 'erl-bitstring "\340" 3)))
  (should (equal (erlext-binary-to-term
                  (erlext-test-bytes 131 113 100 0 5 108 105 115 116 115
                                     100 0 3 109 97 112 97 2))
                 (vector erl-tag 'erl-export 'lists 'map 2))))

(ert-deftest erlext-encode-lists-after-a-big-map ()
  "A list encodes right after a big map that made its depth's vector long.
The encoder reads a short list whole and a long one in chunks,
through one vector a depth; a map of 300 pairs leaves that vector 600
long, and lists of 1, 256, 257 and 1,000 elements come after it."
  (let ((table (make-hash-table :test 'equal)))
    (dotimes (k 300)
      (puthash k (- k) table))
    (dolist (n '(1 256 257 1000))
      (let* ((list (number-sequence 1 n))
             (back (erlext-binary-to-term
                    (erlext-term-to-binary (vector table list)))))
        (should (= (hash-table-count (aref back 0)) 300))
        (should (equal (aref back 1) list))))))

(ert-deftest erlext-decode-maps-of-every-small-size ()
  "Maps small and large decode alike: every pair, in an `equal' table.
Small ones are made in one call into Lisp, larger ones pair by pair;
a key that comes twice (only a peer that lies sends that) keeps its
last value either way."
  (dotimes (n 7)
    (let ((table (make-hash-table :test 'equal)))
      (dotimes (k n)
        (puthash (format "k%d" k) (list k) table))
      (let ((map (erlext-binary-to-term (erlext-term-to-binary table))))
        (should (eq (hash-table-test map) 'equal))
        (should (= (hash-table-count map) n))
        (dotimes (k n)
          (should (equal (gethash (format "k%d" k) map) (list k)))))))
  (dolist (pairs '(2 5))
    (let ((map (erlext-binary-to-term
                (apply #'erlext-test-bytes 131 116 0 0 0 pairs
                       (apply #'append
                              (mapcar (lambda (v) (list 97 1 97 v))
                                      (number-sequence 1 pairs)))))))
      (should (= (hash-table-count map) 1))
      (should (= (gethash 1 map) pairs)))))

(ert-deftest erlext-lossless-binaries ()
  "In lossless mode a binary is [erl-tag erl-binary STRING]."
  (let ((bytes (erlext-test-bytes 131 109 0 0 0 3 97 98 99)))
    (should (equal (erlext-binary-to-term bytes) "abc"))
    (let ((erlext-decode-binaries-as 'erl-binary))
      (let ((v (erlext-binary-to-term bytes)))
        (should (erl-binaryp v))
        (should (equal (erl-binary-string v) "abc"))
        (should (equal (erlext-term-to-binary v) bytes))))))

(ert-deftest erlext-strings-are-unibyte ()
  "Strings and binaries decode to unibyte strings of their bytes."
  (let ((s (erlext-binary-to-term
            (erlext-test-bytes 131 109 0 0 0 2 195 169))))
    (should (equal s "\303\251"))
    (should-not (multibyte-string-p s))))

(ert-deftest erlext-atoms ()
  "UTF-8 and Latin-1 atoms name the same symbols; '' is the empty symbol."
  ;; 'café' as ATOM_EXT (Latin-1) and as SMALL_ATOM_UTF8_EXT.
  (should (eq (erlext-binary-to-term
               (erlext-test-bytes 131 100 0 4 99 97 102 233))
              (intern "café")))
  (should (eq (erlext-binary-to-term
               (erlext-test-bytes 131 119 5 99 97 102 195 169))
              (intern "café")))
  (should (eq (erlext-binary-to-term (erlext-test-bytes 131 119 0))
              erlext-empty-symbol))
  (should (eq (erlext-binary-to-term (erlext-term-to-binary
                                      (intern "日本")))
              (intern "日本"))))

(ert-deftest erlext-encode-fixed-vectors ()
  "Lisp values encode to the bytes Erlang itself would produce."
  (dolist (case
           `((foo (131 119 3 102 111 111))
             (nil (131 106))
             ("abc" (131 107 0 3 97 98 99))
             ([] (131 104 0))
             (-5 (131 98 255 255 255 251))
             (300 (131 98 0 0 1 44))
             (255 (131 97 255))
             (,(expt 2 70) (131 110 9 0 0 0 0 0 0 0 0 0 64))
             (1.5 (131 70 63 248 0 0 0 0 0 0))
             ((1 . 2) (131 108 0 0 0 1 97 1 97 2))
             (,(erl-binary "abc") (131 109 0 0 0 3 97 98 99))))
    (should (equal (erlext-term-to-binary (car case))
                   (apply #'erlext-test-bytes (cadr case))))))

(ert-deftest erlext-round-trips-in-lisp ()
  "Lisp values survive encoding and decoding."
  (dolist (v `(0 -1 ,most-positive-fixnum ,most-negative-fixnum
                 ,(expt 3 400) ,(- (expt 7 300)) 0.0 -0.0 1e300 5e-324
                 foo ,erlext-empty-symbol [] [1 [2 [3]]] (1 2 3) (1 2 . 3)
                 "plain" ,(vector erl-tag 'erl-pid 'a@b 1 2 3)
                 ,(vector erl-tag 'erl-port 'a@b (expt 2 40) 7)
                 ,(vector erl-tag 'erl-new-ref 'a@b 9 "\0\0\0\1\0\0\0\2")
                 ,(vector erl-tag 'erl-export 'm 'f 3)))
    (should (equal (erlext-binary-to-term (erlext-term-to-binary v)) v))))

(ert-deftest erlext-multibyte-strings ()
  "A multibyte string is the list of its code points."
  (should (equal (erlext-binary-to-term (erlext-term-to-binary "héllo"))
                 "h\351llo"))
  (should (equal (erlext-binary-to-term (erlext-term-to-binary "日本"))
                 '(26085 26412))))

(ert-deftest erlext-compression ()
  "Compressed terms decode; COMPRESS makes large terms smaller."
  (let* ((term (make-list 1000 'repeated))
         (plain (erlext-term-to-binary term))
         (packed (erlext-term-to-binary term t)))
    (should (< (length packed) (/ (length plain) 10)))
    (should (= (aref packed 1) 80))
    (should (equal (erlext-binary-to-term packed) term))
    (should (equal (erlext-binary-to-term (erlext-term-to-binary term 9))
                   term))))

(ert-deftest erlext-tuple-api ()
  "Distel's tuple helpers."
  (let ((tup (tuple 'a 'b 'c)))
    (should (equal tup [a b c]))
    (should (tuplep tup))
    (should (tuplep []))
    (should-not (tuplep (vector erl-tag 'erl-pid 'a 1 2 3)))
    (should (equal (tuple-to-list tup) '(a b c)))
    (should (= (tuple-arity tup) 3))
    (should (eq (tuple-elt tup 1) 'a))
    (setf (tuple-elt tup 2) 'x)
    (should (equal tup [a x c]))
    (should-error (tuple-to-list (vector erl-tag 'erl-pid 'a 1 2 3))
                  :type 'wrong-type-argument)
    (should-error (tuple-to-list '(a b)) :type 'wrong-type-argument)
    (should-error (erl-binary-string "abc") :type 'wrong-type-argument)))

;;;; Bad input: errors, never crashes

(ert-deftest erlext-decode-errors-carry-offsets ()
  "Malformed input signals `erlext-decode-error' with reason and offset."
  (let ((data (erlext-test-decode-error
               (erlext-binary-to-term (erlext-test-bytes 131 107 0 9 97)))))
    (should (string-match-p "truncated" (car data)))
    (should (= (cadr data) 4)))
  (erlext-test-decode-error (erlext-binary-to-term ""))
  (erlext-test-decode-error (erlext-binary-to-term "\202a"))
  (erlext-test-decode-error (erlext-binary-to-term (erlext-test-bytes 131 3)))
  ;; Trailing bytes.
  (let ((data (erlext-test-decode-error
               (erlext-binary-to-term (erlext-test-bytes 131 106 106)))))
    (should (string-match-p "trailing" (car data)))
    (should (= (cadr data) 2)))
  ;; NaN as a NEW_FLOAT.
  (erlext-test-decode-error
   (erlext-binary-to-term (erlext-test-bytes 131 70 127 248 0 0 0 0 0 0)))
  ;; Invalid UTF-8 atom.
  (erlext-test-decode-error
   (erlext-binary-to-term (erlext-test-bytes 131 119 1 255))))

(ert-deftest erlext-decode-every-truncation ()
  "Every proper prefix of a rich term is refused cleanly."
  (let ((bytes (erlext-term-to-binary
                (list 1 (expt 2 100) 2.5 'atom "str" [1 2] (erl-binary "b")
                      (vector erl-tag 'erl-pid 'n@h 1 2 3)
                      (let ((h (make-hash-table :test 'equal)))
                        (puthash 'k [v] h)
                        h)))))
    (dotimes (n (length bytes))
      (erlext-test-decode-error (erlext-binary-to-term (substring bytes 0 n))))
    (should (erlext-binary-to-term bytes))))

(ert-deftest erlext-decode-huge-claims-fail-fast ()
  "A 10-byte input claiming a 4-billion-element list fails at once.
Nothing is made of what it claims: a few objects for the errors."
  (let ((start (apply #'+ (memory-use-counts))))
    (erlext-test-decode-error
     (erlext-binary-to-term (erlext-test-bytes 131 108 255 255 255 255
                                               97 1 97 2)))
    (erlext-test-decode-error
     (erlext-binary-to-term (erlext-test-bytes 131 116 255 255 255 255 106)))
    (erlext-test-decode-error
     (erlext-binary-to-term (erlext-test-bytes 131 109 255 255 255 255 1)))
    ;; A compressed term claiming to inflate past the limit.
    (erlext-test-decode-error
     (erlext-binary-to-term (erlext-test-bytes 131 80 255 255 255 255
                                               120 156 3 0 0 0 0 1)))
    (should (< (- (apply #'+ (memory-use-counts)) start) 100000))))

(defun erlext-test-nested (depth open close)
  "Return DEPTH copies of OPEN, then one NIL, then DEPTH copies of CLOSE."
  (concat (erlext-test-bytes 131)
          (apply #'concat (make-list depth open))
          (erlext-test-bytes 106)
          (apply #'concat (make-list depth close))))

(ert-deftest erlext-decode-deep-nesting ()
  "A million-deep list fails cleanly; depth up to the limit decodes."
  (let ((list1 (erlext-test-bytes 108 0 0 0 1))
        (nil1 (erlext-test-bytes 106)))
    (let ((data (erlext-test-decode-error
                 (erlext-binary-to-term
                  (erlext-test-nested 1000000 list1 nil1)))))
      (should (string-match-p "erlext-max-depth" (car data))))
    (let ((v (erlext-binary-to-term
              (erlext-test-nested (1- erlext-max-depth) list1 nil1))))
      (should (consp v))
      (garbage-collect)))
  (let ((tuple1 (erlext-test-bytes 104 1)))
    (erlext-test-decode-error
     (erlext-binary-to-term (erlext-test-nested 1000000 tuple1 "")))
    (let ((v (erlext-binary-to-term
              (erlext-test-nested (1- erlext-max-depth) tuple1 ""))))
      (should (vectorp v))
      (garbage-collect)))
  (let ((erlext-max-depth 10)
        (deep 'x))
    (dotimes (_ 12) (setq deep (list deep)))
    (erlext-test-decode-error
     (erlext-binary-to-term (let ((erlext-max-depth 100))
                              (erlext-term-to-binary deep))))))

;; Random damage to real terms: each decodes or signals
;; `erlext-decode-error', and whatever decodes encodes again.
(defun erlext-test-same-term (a b)
  "Return non-nil if A and B are the same decoded term.
As `equal', but hash tables (maps) compare by their entries, in order."
  (cond ((hash-table-p a)
         (and (hash-table-p b)
              (= (hash-table-count a) (hash-table-count b))
              (let (ea eb)
                (maphash (lambda (k v) (push (cons k v) ea)) a)
                (maphash (lambda (k v) (push (cons k v) eb)) b)
                (erlext-test-same-term ea eb))))
        ((consp a)
         (and (consp b)
              (erlext-test-same-term (car a) (car b))
              (erlext-test-same-term (cdr a) (cdr b))))
        ((and (vectorp a) (not (stringp a)))
         (and (vectorp b) (= (length a) (length b))
              (cl-every #'erlext-test-same-term a b)))
        (t (equal a b))))

(ert-deftest erlext-decode-bitstring-unused-bits ()
  "A bitstring's unused low bits decode cleared, as Erlang ignores them.
<<5:3>> sent with stray low bits compares equal to its clean encoding."
  (let ((dirty (erlext-binary-to-term (unibyte-string 131 77 0 0 0 1 3 182)))
        (clean (erlext-binary-to-term (unibyte-string 131 77 0 0 0 1 3 160))))
    (should (equal dirty (vector erl-tag 'erl-bitstring "\240" 3)))
    (should (equal dirty clean))))

(ert-deftest erlext-decode-mutations ()
  "Randomly damaged terms decode or fail cleanly; what decodes encodes again.
The re-encoding decodes to the same term (binaries kept as binaries).
Up to 100,000 terms, for at most 60 seconds."
  (let* ((state (random "erlext-mutations"))
         (seeds
          (mapcar #'erlext-term-to-binary
                  (list (list 1 (expt 2 100) 2.5 'atom "str" [1 [2 []]]
                              (erl-binary "bin") '(1 . 2)
                              (vector erl-tag 'erl-pid 'n@h 1 2 3)
                              (vector erl-tag 'erl-new-ref 'n@h 9
                                      "\0\0\0\1\0\0\0\2")
                              (vector erl-tag 'erl-bitstring "\377" 3)
                              (vector erl-tag 'erl-export 'm 'f 1))
                        (let ((h (make-hash-table :test 'equal)))
                          (puthash 'k (list "v" 1.0) h)
                          (puthash [t] (intern "日本") h)
                          h)
                        (make-list 50 'repeat))))
         (seeds (append seeds (list (erlext-term-to-binary
                                     (make-list 200 'zz) t))))
         (erlext-decode-binaries-as 'erl-binary)
         (deadline (+ (float-time) 60))
         (tried 0)
         (decoded 0))
    (ignore state)
    (while (and (< tried 100000) (< (float-time) deadline))
      (let* ((bytes (copy-sequence (nth (% tried (length seeds)) seeds)))
             (n (1+ (random 3))))
        (setq tried (1+ tried))
        (dotimes (_ n)
          (pcase (if (zerop (length bytes)) 2 (random 3))
            (0 (aset bytes (random (length bytes)) (random 256)))
            (1 (setq bytes (substring bytes 0 (random (length bytes)))))
            (2 (let ((at (random (1+ (length bytes)))))
                 (setq bytes (concat (substring bytes 0 at)
                                     (unibyte-string (random 256))
                                     (substring bytes at)))))))
        (let ((v (condition-case nil
                     (erlext-binary-to-term bytes)
                   (erlext-decode-error 'erlext-test-undecodable))))
          (unless (eq v 'erlext-test-undecodable)
            (setq decoded (1+ decoded))
            (let ((again (erlext-binary-to-term (erlext-term-to-binary v))))
              (unless (erlext-test-same-term v again)
                (ert-fail (list "Re-encoding changed the term"
                                :bytes bytes :decoded v :again again))))))))
    (message "erlext-decode-mutations: %d of %d damaged terms still decoded"
             decoded tried)
    (should (> tried 1000))
    (should (> decoded 0))))

;;;; Unencodable objects

(defmacro erlext-test-encode-error (form)
  "Assert FORM signals `erlext-encode-error'; return the error data."
  `(cdr (should-error ,form :type 'erlext-encode-error)))

(ert-deftest erlext-encode-errors-name-the-object ()
  "Objects with no Erlang form are refused, naming them."
  (let ((data (erlext-test-encode-error (erlext-term-to-binary 0.0e+NaN))))
    (should (isnan (cadr data))))
  (erlext-test-encode-error (erlext-term-to-binary 1.0e+INF))
  (erlext-test-encode-error (erlext-term-to-binary (list 1 -1.0e+INF)))
  (with-temp-buffer
    (let ((data (erlext-test-encode-error
                 (erlext-term-to-binary (list (point-marker))))))
      (should (markerp (cadr data))))
    (erlext-test-encode-error (erlext-term-to-binary (current-buffer))))
  (erlext-test-encode-error (erlext-term-to-binary (symbol-function 'car)))
  (erlext-test-encode-error (erlext-term-to-binary (make-bool-vector 3 t)))
  (erlext-test-encode-error
   (erlext-term-to-binary (intern (make-string 256 ?a))))
  (should (erlext-term-to-binary (intern (make-string 255 ?é))))
  (erlext-test-encode-error
   (erlext-term-to-binary (vector erl-tag 'erl-unknown)))
  (erlext-test-encode-error
   (erlext-term-to-binary (vector erl-tag 'erl-pid 'n@h -1 0 0)))
  (erlext-test-encode-error
   (erlext-term-to-binary (vector erl-tag 'erl-fun "not a fun"))))

(ert-deftest erlext-encode-circular ()
  "Circular lists and self-containing vectors are refused, not looped on."
  (let ((l (list 1 2 3)))
    (setcdr (cddr l) l)
    (let ((data (erlext-test-encode-error (erlext-term-to-binary l))))
      (should (string-match-p "circular" (car data)))))
  (let ((v (vector 1 nil)))
    (aset v 1 v)
    (erlext-test-encode-error (erlext-term-to-binary v)))
  (let ((l (list 1 2)))
    (setcar l l)
    (erlext-test-encode-error (erlext-term-to-binary l)))
  (let ((l (list 1)))
    (setcdr l l)
    (let ((data (erlext-test-encode-error (erlext-term-to-binary l))))
      (should (string-match-p "circular" (car data))))))

(ert-deftest erlext-encode-deep-nesting ()
  "A million-deep Lisp list is refused cleanly."
  (let ((deep nil))
    (dotimes (_ 1000000) (setq deep (list deep)))
    (erlext-test-encode-error (erlext-term-to-binary deep))
    (let ((erlext-max-depth 2000000))
      (should (> (length (erlext-term-to-binary deep)) 5000000)))))

;;;; Limits

(ert-deftest erlext-limits-come-from-the-options ()
  "Module functions given no limits take them from the Lisp options.
`erlext-max-depth' and `erlext-max-term-size' are the one place the
defaults live."
  (let* ((nested (let ((v 'x)) (dotimes (_ 12 v) (setq v (list v)))))
         (deep (erlext-term-to-binary nested)))
    (should (derl--module-decode deep))
    (let ((erlext-max-depth 5))
      (erlext-test-decode-error (derl--module-decode deep))
      (erlext-test-encode-error (derl--module-encode nested))))
  (let ((big (erlext-term-to-binary (make-string 100000 ?a) t)))
    (should (derl--module-decode big))
    (let ((erlext-max-term-size 1000))
      (erlext-test-decode-error (derl--module-decode big)))))

;;;; Raw bytes in multibyte strings, functions, shortened errors

(defun erlext-test-raw (&rest bytes)
  "Return a multibyte string of the raw-byte characters for BYTES."
  (string-to-multibyte (apply #'unibyte-string bytes)))

(ert-deftest erlext-encode-raw-bytes-in-binaries ()
  "In a binary, a raw-byte character is its byte, other characters UTF-8."
  (let ((s (concat "é" (erlext-test-raw #xe9 #x80) "a")))
    (should (multibyte-string-p s))
    (should (equal (erlext-term-to-binary (erl-binary s))
                   (erlext-test-bytes 131 109 0 0 0 5 195 169 #xe9 #x80 ?a))))
  (should (equal (erlext-term-to-binary (erl-binary (erlext-test-raw 1 255)))
                 (erlext-test-bytes 131 109 0 0 0 2 1 255))))

(ert-deftest erlext-encode-raw-bytes-in-strings ()
  "In a string, a raw-byte character is the code point of its byte."
  ;; [233, 195, 169, 26085]: the raw bytes C3 A9 are two characters.
  (should (equal (erlext-binary-to-term
                  (erlext-term-to-binary
                   (concat (erlext-test-raw #xe9 #xc3 #xa9) "日")))
                 '(233 195 169 26085)))
  (should (equal (erlext-term-to-binary (concat "é" (erlext-test-raw #xe9)))
                 (erlext-test-bytes 131 107 0 2 #xe9 #xe9)))
  ;; Long enough for LIST_EXT.
  (let ((long (concat (make-string 70000 ?a) (erlext-test-raw #xff))))
    (should (equal (last (erlext-binary-to-term (erlext-term-to-binary long)))
                   '(255)))))

(ert-deftest erlext-encode-raw-bytes-in-atoms ()
  "A raw byte in a symbol's name counts as its byte value, as in strings.
A name that is too long says so, whatever it holds."
  (should (eq (erlext-binary-to-term
               (erlext-term-to-binary (intern (concat "a" (erlext-test-raw
                                                           #xe9)))))
              (intern "aé")))
  (should (eq (erlext-binary-to-term (erlext-term-to-binary (intern "a\351")))
              (intern "aé")))
  (should (erlext-term-to-binary
           (intern (apply #'concat (make-list 255 (erlext-test-raw #xe9))))))
  (let ((data (erlext-test-encode-error
               (erlext-term-to-binary
                (intern (apply #'concat
                               (make-list 256 (erlext-test-raw #xe9))))))))
    (should (equal (car data) "atom longer than 255 characters"))))

(ert-deftest erlext-encode-beyond-unicode ()
  "Characters that are neither Unicode nor raw bytes are refused clearly."
  (dolist (term (list (string ?a #x200000)
                      (erl-binary (string #x3fff7f))
                      (intern (string #x110000))))
    (let ((data (erlext-test-encode-error (erlext-term-to-binary term))))
      (should (string-match-p "outside Unicode" (car data))))))

(ert-deftest erlext-encode-functions-refused ()
  "Functions of every kind are refused the same way, naming the function."
  (dolist (fn (list (let ((y 1)) (lambda (x) (+ x y)))
                    (eval '(lambda (x) x) nil)
                    (byte-compile (lambda (x) (1+ x)))
                    (symbol-function 'car)))
    (should (functionp fn))
    (let ((data (erlext-test-encode-error (erlext-term-to-binary (list fn)))))
      (should (equal (car data) "a function has no Erlang form"))
      (should (cadr data))))
  ;; Lists that merely start with those symbols are data.
  (dolist (data '((closure 1 2) (lambda) (lambda . 1) (closure t)))
    (should (equal (erlext-binary-to-term (erlext-term-to-binary data))
                   data))))

(ert-deftest erlext-encode-errors-are-short ()
  "An encode error shows the offending object shortened, never all of it."
  (let* ((big (make-string 11000 ?x))
         (cases (list (string #x200000 ?a ?b)
                      (erl-binary (concat big (string #x200000)))
                      (list big (current-buffer))
                      (vector 1 (list (lambda (x) x) big))
                      (intern (make-string 300 ?y))
                      (number-sequence 1 1000))))
    (setcdr (last (car (last cases))) (make-marker))
    (dolist (term cases)
      (let ((err (should-error (erlext-term-to-binary term)
                               :type 'erlext-encode-error)))
        (should (< (length (error-message-string err)) 500))))))

;;;; Garbage collection while decoding

(defun erlext-test-records (n)
  "A list of N records like a real reply: tuples, binaries, floats, maps."
  (let ((records nil))
    (dotimes (i n)
      (let ((map (make-hash-table :test 'equal)))
        (puthash 'k i map)
        (push (vector 'user i (erl-binary (format "name-%d" i)) '(1 2 3)
                      3.14 map)
              records)))
    (nreverse records)))

(ert-deftest erlext-codec-holds-gc-off ()
  "No garbage collection runs inside a decode or encode, whatever the settings.
A collection inside would mark the half-built term again and again.
`gc-cons-threshold' is the caller's again afterwards, also after an
error."
  (let* ((bytes (erlext-term-to-binary (erlext-test-records 20000)))
         (gc-cons-threshold 100000)
         (gc-cons-percentage 0.0)
         (_ (garbage-collect))
         ;; Read `gcs-done' right before and after: the next function
         ;; call may well collect the garbage the decode made.
         (before gcs-done)
         (term (erlext-binary-to-term bytes))
         (after gcs-done))
    (should (consp term))
    (should (= after before))
    (garbage-collect)
    (let* ((before gcs-done)
           (again (erlext-term-to-binary term))
           (after gcs-done))
      (should (stringp again))
      (should (= after before)))
    (should (= gc-cons-threshold 100000))
    (erlext-test-decode-error
     (erlext-binary-to-term (substring bytes 0 (/ (length bytes) 2))))
    (should (= gc-cons-threshold 100000))))

(ert-deftest erlext-incoming-messages-hold-gc-off ()
  "No garbage collection runs while an incoming message becomes Lisp values.
It is held off for one message at a time: one may run once the
message is made, before the next."
  (let ((derl-use-trace-buffer nil)
        (records (erlext-test-records 20000))
        (collections nil))
    (derl-test-with-node (node)
      (derl-connect node)
      (let ((inbox (derl-test-inbox))
            (events (symbol-function 'derl--module-events)))
        (cl-letf (((symbol-function 'derl--module-events)
                   (lambda (&rest args)
                     (let* ((gc-cons-threshold 100000)
                            (gc-cons-percentage 0.0)
                            (_ (garbage-collect))
                            (before gcs-done)
                            (result (apply events args))
                            (after gcs-done))
                       (push (- after before) collections)
                       result))))
          (erl-send (derl-test-echo node) (vector (car inbox) records))
          (derl-test-await-message inbox #'consp 60))
        (should collections)
        ;; Unheld, the records would see dozens.
        (should (<= (apply #'max collections) 1))))))

;;;; Against a real node

(defun erlext-test-rex (node inbox mfa)
  "Call MFA, a list (MODULE FUNCTION ARGS), on NODE through its rex server.
INBOX is from `derl-test-inbox'; return the result."
  (let ((self (car inbox)))
    (erl-send (vector 'rex node)
              (vector self (vector 'call (nth 0 mfa) (nth 1 mfa) (nth 2 mfa)
                                   self)))
    (let ((reply (derl-test-await-message
                  inbox (lambda (m) (and (vectorp m) (eq (aref m 0) 'rex))))))
      (setcar (cdr inbox) (delq reply (cadr inbox)))
      (aref reply 1))))

(ert-deftest erlext-beam-upload-as-distel-does ()
  "A .beam read with `insert-file-contents' loads on a real node.
Distel reads its beams so, into a multibyte buffer, and sends them
as `erl-binary'; the literal read must work too."
  (let* ((dir (make-temp-file "erlext-beam" t))
         (module (intern (format "erlext_up_%s" (derl-test-random-string 6))))
         (source (expand-file-name (format "%s.erl" module) dir))
         (beam (expand-file-name (format "%s.beam" module) dir)))
    (unwind-protect
        (progn
          (with-temp-file source
            (insert (format "-module(%s).\n-export([hello/0]).\n" module)
                    "hello() -> {hello, <<\"h\\x{e9}llo\"/utf8>>}.\n"))
          (should (zerop (call-process "erlc" nil nil nil "-o" dir source)))
          (derl-test-with-node (node)
            (derl-connect node)
            (let ((inbox (derl-test-inbox)))
              (dolist (read '(insert-file-contents
                              insert-file-contents-literally))
                (let ((code (with-temp-buffer
                              (funcall read beam)
                              (buffer-string))))
                  (when (eq read 'insert-file-contents)
                    (should (multibyte-string-p code))
                    (should (string-match-p erlext--raw-byte-regexp code)))
                  (should (equal (erlext-test-rex
                                  node inbox
                                  (list 'code 'load_binary
                                        (list module beam (erl-binary code))))
                                 (vector 'module module)))
                  (should (equal (erlext-test-rex node inbox
                                                  (list module 'hello nil))
                                 (vector 'hello "h\303\251llo")))
                  (erlext-test-rex node inbox (list 'code 'purge
                                                    (list module)))
                  (erlext-test-rex node inbox (list 'code 'delete
                                                    (list module))))))))
      (delete-directory dir t))))

(ert-deftest erlext-raw-bytes-reach-the-node ()
  "A real node gets raw bytes in strings and atoms as their byte values."
  (derl-test-with-node (node)
    (derl-connect node)
    (let* ((inbox (derl-test-inbox))
           (term (vector (concat "é" (erlext-test-raw #xe9))
                         (intern (concat "a" (erlext-test-raw #xe9))))))
      ;; The node's own encoding of what it got, decoded here.
      (should (equal (erlext-binary-to-term
                      (erlext-test-rex node inbox
                                       (list 'erlang 'term_to_binary
                                             (list term))))
                     (vector "\351\351" (intern "aé")))))))

(ert-deftest erlext-deep-tuple-both-ways ()
  "A message of tuples nested 100,000 deep goes to a node and comes back.
That is the default `erlext-max-depth'; sending honours it and
nests without the C stack."
  (let ((deep [])
        (derl-use-trace-buffer nil))
    ;; With the [PID DEEP] around it: 100,000 tuples, one in the other.
    (dotimes (_ 99998) (setq deep (vector deep)))
    (derl-test-with-node (node)
      (derl-connect node)
      (let ((inbox (derl-test-inbox)))
        (erl-send (derl-test-echo node) (vector (car inbox) deep))
        (let ((back (derl-test-await-message inbox #'vectorp 60))
              (depth 0))
          ;; `equal' would recurse too deep: walk down instead.
          (while (and (vectorp back) (= (length back) 1))
            (setq back (aref back 0) depth (1+ depth)))
          (should (equal back []))
          (should (= depth 99998)))
        ;; A smaller limit refuses it before anything is sent.
        (let ((erlext-max-depth 1000))
          ;; Not in a `should' form: ERT would print DEEP on failure.
          (should (string-match-p
                   "erlext-max-depth"
                   (condition-case err
                       (progn (erl-send (derl-test-echo node)
                                        (vector (car inbox) deep))
                              "sent")
                     (erlext-encode-error (cadr err))))))))))

(ert-deftest erlext-encode-big-unibyte-string ()
  "A unibyte string with high bytes is a list of its bytes, however long.
1.5 MiB crosses the stretch after which the encoder lets C-g in."
  (let* ((n (+ (* 1024 1024) (* 512 1024)))
         (s (let ((v (make-string n 0)))
              (dotimes (i n) (aset v i (% (* i 7) 256)))
              (string-to-unibyte v)))
         (bytes (erlext-term-to-binary s)))
    (should (= (length bytes) (+ 1 5 (* 2 n) 1)))
    (should (equal (substring bytes 0 10) (unibyte-string 131 108 0 24 0 0
                                                          97 0 97 7)))
    (should (equal (erlext-binary-to-term bytes) (append s nil)))))

(ert-deftest erlext-encode-makes-little-garbage ()
  "Encoding long lists and many maps makes no Lisp object for each.
Under Emacs's default collection settings garbage costs more than the
work, so the encoder reuses its vectors: 100,000 integers in a list
and 2,000 maps in lists take a few hundred vector cells and conses in
all, not one or more each."
  (let* ((ints (make-list 100000 7))
         (maps (mapcar (lambda (i)
                         (let ((h (make-hash-table :test 'equal)))
                           (puthash "k" (list i (list i)) h)
                           (puthash 'n i h)
                           h))
                       (number-sequence 1 2000)))
         (value (vector ints maps)))
    (erlext-term-to-binary value)       ; the vectors of the first call
    (let ((before (memory-use-counts)))
      (erlext-term-to-binary value)
      (let ((after (memory-use-counts)))
        (should (< (- (nth 0 after) (nth 0 before)) 1000))     ; conses
        (should (< (- (nth 2 after) (nth 2 before)) 2000)))))) ; vector cells

(ert-deftest erlext-quit-while-encoding-sends-nothing ()
  "A quit that arrives while a message is encoded stops it unsent.
The quit is simulated where the encoder calls into Lisp, as C-g
would set `quit-flag' while C is busy with a big string."
  (let ((derl-use-trace-buffer nil)
        (table (make-hash-table))
        (flatten (symbol-function 'erlext--hash-table-flatten))
        (big (make-string (* 4 1024 1024) ?q)))
    (puthash 1 2 table)
    (derl-test-with-node (node)
      (derl-connect node)
      (let* ((inbox (derl-test-inbox))
             (outcome
              (cl-letf (((symbol-function 'erlext--hash-table-flatten)
                         (lambda (tbl into)
                           (prog1 (funcall flatten tbl into)
                             (let ((inhibit-quit t))
                               (setq quit-flag t))))))
                (condition-case nil
                    (progn
                      (erl-send (derl-test-echo node)
                                (vector (car inbox) (vector 'big big table)))
                      'returned)
                  (quit 'quit)))))
        (should (eq outcome 'quit))
        (erl-send (derl-test-echo node) (vector (car inbox) 'marker))
        (derl-test-await-message inbox (lambda (m) (eq m 'marker)))
        (should (= 0 (cl-count-if #'vectorp (cadr inbox))))))))

(provide 'erlext-tests)

;;; erlext-tests.el ends here

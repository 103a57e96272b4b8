;;; erlext-tests.el --- the term codec: mapping, limits, bad input  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; Fixed vectors made by a real Erlang node (the bytes below are what
;; `term_to_binary' printed), Distel's mapping, and every kind of bad
;; input and unencodable object.

;;; Code:

(require 'ert)
(require 'erlext)

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
    (should (equal tup [a x c]))))

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
  "A 10-byte input claiming a 4-billion-element list fails at once."
  (let ((start (float-time)))
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
    (should (< (- (float-time) start) 1.0))))

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
(defun erlext-test-bitstring-bits (v)
  "The bits of V, a decoded bitstring, as Erlang sees them: (BYTES . BITS).
Erlang ignores the unused low bits of the last byte; the decoder
keeps them as received and the encoder clears them."
  (let ((bytes (copy-sequence (aref v 2)))
        (bits (aref v 3)))
    (when (> (length bytes) 0)
      (aset bytes (1- (length bytes))
            (logand (aref bytes (1- (length bytes)))
                    (logand 255 (ash 255 (- 8 bits))))))
    (cons bytes bits)))

(defun erlext-test-same-term (a b)
  "Return non-nil if A and B are the same decoded term.
As `equal', but hash tables (maps) compare by their entries, in order,
and bitstrings by the bits Erlang sees."
  (cond ((and (vectorp a) (> (length a) 3) (eq (aref a 0) erl-tag)
              (eq (aref a 1) 'erl-bitstring))
         (and (vectorp b) (= (length b) 4) (eq (aref b 1) 'erl-bitstring)
              (equal (erlext-test-bitstring-bits a)
                     (erlext-test-bitstring-bits b))))
        ((hash-table-p a)
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
    (erlext-test-encode-error (erlext-term-to-binary l))))

(ert-deftest erlext-encode-deep-nesting ()
  "A million-deep Lisp list is refused cleanly."
  (let ((deep nil))
    (dotimes (_ 1000000) (setq deep (list deep)))
    (erlext-test-encode-error (erlext-term-to-binary deep))
    (let ((erlext-max-depth 2000000))
      (should (> (length (erlext-term-to-binary deep)) 5000000)))))

(provide 'erlext-tests)

;;; erlext-tests.el ends here

;;; erlext-oracle-tests.el --- Erlang as the oracle for the codec  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; A real `erl' node makes seeded random terms of every type; Emacs
;; decodes each in lossless mode and encodes it again; the node checks
;; binary_to_term(Reencoded) =:= Original for every one.  Then the other
;; way: Lisp values encoded by Emacs are checked on the Erlang side.

;;; Code:

(require 'ert)
(require 'erlext)
(require 'derl-ert)

(defvar erlext-oracle-seed
  (let ((s (getenv "DERL_ORACLE_SEED")))
    (if s (string-to-number s) 20261125))
  "Seed for the random terms; set DERL_ORACLE_SEED to try others.")

(defvar erlext-oracle-count 10000 "How many random terms.")

(ert-deftest erlext-oracle-random-terms ()
  "Random terms from Erlang survive decoding and re-encoding exactly."
  (let* ((orig (derl-test-scratch-file "oracle-orig.bin"))
         (re (derl-test-scratch-file "oracle-re.bin"))
         (gen (derl-test-erl "-run" "derl_oracle" "generate"
                             (number-to-string erlext-oracle-seed)
                             (number-to-string erlext-oracle-count) orig)))
    (should (equal gen (cons 0 (format "generated %d\n" erlext-oracle-count))))
    (let* ((records (derl-test-read-records orig))
           (reencoded
            (let ((erlext-decode-binaries-as 'erl-binary))
              (mapcar (lambda (bytes)
                        (erlext-term-to-binary (erlext-binary-to-term bytes)))
                      records))))
      (should (= (length records) erlext-oracle-count))
      ;; Distel's default mapping decodes them all too.
      (dolist (bytes records)
        (erlext-binary-to-term bytes))
      (derl-test-write-records re reencoded))
    (let ((verdict (derl-test-erl "-run" "derl_oracle" "verify" orig re)))
      (should (equal verdict
                     (cons 0 (format "verified %d, 0 mismatches\n"
                                     erlext-oracle-count)))))))

(defun erlext-oracle-hash (&rest pairs)
  "Return an `equal' hash table of PAIRS, alternating keys and values."
  (let ((h (make-hash-table :test 'equal)))
    (while pairs
      (puthash (pop pairs) (pop pairs) h))
    h))

(defconst erlext-oracle-lisp-cases
  `(("[]" nil)
    ("foo" foo)
    ("'Hello World'" ,(intern "Hello World"))
    ("''" ,erlext-empty-symbol)
    ("t" t)
    ("':key'" :key)
    ("list_to_atom([26085,26412])" ,(intern "日本"))
    ("list_to_atom([99,97,102,233])" ,(intern "café"))
    ("\"abc\"" "abc")
    ("[104,233,108,108,111]" "héllo")
    ("[233]" "\351")
    ("[195,169]" "\303\251")
    ("[26085,26412]" "日本")
    ("[16#1F600]" "\N{GRINNING FACE}")
    ("lists:duplicate(70000, $a)" ,(make-string 70000 ?a))
    ("lists:duplicate(70000, 26085)" ,(make-string 70000 ?日))
    ("<<104,195,169,108,108,111>>" ,(erl-binary "héllo"))
    ("<<255,0>>" ,(erl-binary "\377\0"))
    ("<<>>" ,(erl-binary ""))
    ("0" 0)
    ("-1" -1)
    ("1 bsl 62" ,(expt 2 62))
    ("1 bsl 200" ,(expt 2 200))
    ("-(1 bsl 200) + 1" ,(1+ (- (expt 2 200))))
    ("(1 bsl 64) - 1" ,(1- (expt 2 64)))
    ("-(1 bsl 63)" ,(- (expt 2 63)))
    ("1.5" 1.5)
    ("1.0e300" 1e300)
    ("5.0e-324" 5e-324)
    ;; The bits: before OTP 27, Erlang's -0.0 is the same as 0.0.
    ("fun(X) -> is_float(X) andalso <<X/float>> =:= <<128,0:56>> end" -0.0)
    ("{}" [])
    ("{{1,{2}},{}}" [[1 [2]] []])
    ("{a,[1,2,3],{b,\"s\"}}" [a (1 2 3) [b "s"]])
    ("[1,2|3]" (1 2 . 3))
    ("[a|{b}]" (a . [b]))
    ("[[1],[2,[3]]]" ((1) (2 (3))))
    ;; Lists of other lengths one after another at a depth, short and
    ;; long, proper and dotted (the encoder reads a list that fits the
    ;; vector of its depth in one go, any other in chunks).
    ("[[1],[1,2,3,4],[1,2,3,4,5],[1,2],[1|2],[a,b,c|d],lists:seq(1,300),
       [x,[y,[z]]],[1,2,3,4,5,6,7,8,9],[]]"
     ((1) (1 2 3 4) (1 2 3 4 5) (1 2) (1 . 2) (a b c . d)
      ,(number-sequence 1 300) (x (y (z))) (1 2 3 4 5 6 7 8 9) nil))
    ("#{}" ,(make-hash-table))
    ("#{a => 1, \"k\" => {x}, 2 => #{b => []}}"
     ,(erlext-oracle-hash 'a 1 "k" [x] 2 (erlext-oracle-hash 'b nil)))
    ;; Maps of other sizes one after another at each depth, maps as keys
    ;; (the encoder reuses one vector a depth for their entries).
    ("[#{a => 1, b => 2, c => 3}, #{d => #{e => 1, f => #{g => [#{}]}}},
       #{h => 4}, #{#{k => 1} => #{v => 2, w => 3}}, #{}]"
     (,(erlext-oracle-hash 'a 1 'b 2 'c 3)
      ,(erlext-oracle-hash 'd (erlext-oracle-hash
                               'e 1 'f (erlext-oracle-hash
                                        'g (list (make-hash-table)))))
      ,(erlext-oracle-hash 'h 4)
      ,(erlext-oracle-hash (erlext-oracle-hash 'k 1)
                           (erlext-oracle-hash 'v 2 'w 3))
      ,(make-hash-table)))
    ;; More atoms than the encoder remembers, again and again, and one
    ;; too long to remember.
    ("[a,b,c,d,e,f,g,h,i,j,a,b,c,d,e,f,g,h,i,j,a,j,
       'the_atom_whose_name_is_far_longer_than_sixty_four_bytes_in_all_0123',
       'the_atom_whose_name_is_far_longer_than_sixty_four_bytes_in_all_0123']"
     (a b c d e f g h i j a b c d e f g h i j a j
        the_atom_whose_name_is_far_longer_than_sixty_four_bytes_in_all_0123
        the_atom_whose_name_is_far_longer_than_sixty_four_bytes_in_all_0123))
    ("fun(P) -> is_pid(P) andalso node(P) =:= 'a@b' end"
     ,(vector erl-tag 'erl-pid 'a@b 7 0 3))
    ("fun(P) -> is_port(P) andalso node(P) =:= 'a@b' end"
     ,(vector erl-tag 'erl-port 'a@b 7 1))
    ("fun(R) -> is_reference(R) andalso node(R) =:= 'a@b' end"
     ,(vector erl-tag 'erl-new-ref 'a@b 5 "\0\0\0\1\0\0\0\2\0\0\0\3"))
    ("fun lists:map/2" ,(vector erl-tag 'erl-export 'lists 'map 2))
    ("<<7:3>>" ,(vector erl-tag 'erl-bitstring "\340" 3))
    ("lists:seq(1, 100000)" ,(number-sequence 1 100000)))
  "Pairs of an Erlang expression and a Lisp value that must encode to it.
An expression that is a fun is applied to the decoded value instead.")

(defconst erlext-oracle-v4-cases
  `(("fun(P) -> is_port(P) andalso node(P) =:= 'a@b' end"
     ,(vector erl-tag 'erl-port 'a@b (expt 2 40) 1)))
  "Cases of `erlext-oracle-lisp-cases' for OTP 24 and later.
A port id past 32 bits needs V4_PORT_EXT, which OTP 23 cannot read.")

(ert-deftest erlext-oracle-lisp-values ()
  "Lisp values encode to the Erlang terms they mean."
  (let ((file (derl-test-scratch-file "oracle-values.bin"))
        records)
    (pcase-dolist (`(,expr ,value)
                   (append erlext-oracle-lisp-cases
                           (and (>= (derl-test-otp-release) 24)
                                erlext-oracle-v4-cases)))
      (push (encode-coding-string expr 'utf-8) records)
      (push (erlext-term-to-binary value) records)
      ;; Again inside a compressed list, unless the expression is a test.
      (unless (string-prefix-p "fun(" expr)
        (push (encode-coding-string (format "lists:duplicate(3, %s)" expr)
                                    'utf-8)
              records)
        (push (erlext-term-to-binary (list value value value) t) records)))
    (setq records (nreverse records))
    (derl-test-write-records file records)
    (let ((verdict (derl-test-erl "-run" "derl_oracle" "check_values" file)))
      (should (equal verdict
                     (cons 0 (format "checked %d, 0 failed\n"
                                     (/ (length records) 2))))))))

(provide 'erlext-oracle-tests)

;;; erlext-oracle-tests.el ends here

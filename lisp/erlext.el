;;; erlext.el --- Erlang external term format, in C  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;; Keywords: erlang, languages, processes

;; This file is not part of GNU Emacs.

;; This program is free software: you can redistribute it and/or modify
;; it under the terms of the GNU General Public License as published by
;; the Free Software Foundation, either version 3 of the License, or
;; (at your option) any later version.

;; This program is distributed in the hope that it will be useful,
;; but WITHOUT ANY WARRANTY; without even the implied warranty of
;; MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
;; GNU General Public License for more details.

;; You should have received a copy of the GNU General Public License
;; along with this program.  If not, see <https://www.gnu.org/licenses/>.

;;; Commentary:

;; Encoding and decoding of Erlang's External Term Format, done by the
;; derl dynamic module and exposed with Distel's `erlext' API:
;; `erlext-term-to-binary', `erlext-binary-to-term', `erl-tag', the
;; `tuple' helpers and `erl-binary'.
;;
;; The mapping (see README.org for the whole table):
;;   atom -> symbol, [] -> nil, integer -> integer (bignums too),
;;   float -> float, string -> unibyte string, list -> list (improper
;;   lists as dotted lists), tuple -> vector, binary -> unibyte string
;;   (or [erl-tag erl-binary STRING] in lossless mode), map -> `equal'
;;   hash table, pid -> [erl-tag erl-pid NODE ID SERIAL CREATION], and
;;   so on for ports, references, funs, exports and bitstrings.

;;; Code:

(require 'cl-lib)

(defcustom erlext-decode-binaries-as 'string
  "How `erlext-binary-to-term' decodes Erlang binaries.
`string' (Distel's behaviour) gives a unibyte string, which cannot
be told apart from an Erlang string afterwards.  `erl-binary'
gives [erl-tag erl-binary STRING], so that every term but the atom
nil encodes back to exactly what it was (lossless mode)."
  :type '(choice (const :tag "Unibyte string" string)
                 (const :tag "Tagged [erl-tag erl-binary STRING]" erl-binary))
  :group 'derl)

(defcustom erlext-max-depth 100000
  "Deepest nesting of lists, tuples and maps decoded or encoded.
Deeper terms signal an error instead of risking Emacs's own
recursive functions (garbage collection, `equal', printing)."
  :type 'natnum
  :group 'derl)

(defcustom erlext-max-term-size (* 128 1024 1024)
  "Largest size in bytes a compressed term may inflate to."
  :type 'natnum
  :group 'derl)

(define-error 'derl-error "Distributed Erlang error")
(define-error 'erlext-decode-error "Malformed external term" 'derl-error)
(define-error 'erlext-encode-error "Cannot encode as an Erlang term"
  'derl-error)

;; Reloading this file must keep the very same object: decoded terms and
;; the module hold it.
(defconst erl-tag (if (boundp 'erl-tag) (symbol-value 'erl-tag)
                    (make-symbol "TYPE"))
  "Tag placed in the first element of a vector to indicate a non-tuple type.")

(defconst erlext-empty-symbol (intern "")
  "The zero-length Lisp symbol, Erlang's atom ''.")

(defvar erlext--pairs nil
  "The vector `erlext--hash-table-flatten' is filling.")

(defvar erlext--pairs-index 0
  "Where `erlext--put-pair' puts the next key in `erlext--pairs'.")

(defun erlext--put-pair (key value)
  "Put KEY and VALUE next in `erlext--pairs'."
  (aset erlext--pairs erlext--pairs-index key)
  (aset erlext--pairs (1+ erlext--pairs-index) value)
  (setq erlext--pairs-index (+ erlext--pairs-index 2)))

(defun erlext--hash-table-flatten (table into)
  "Put TABLE's keys and values into the vector INTO: K1 V1 K2 V2 ....
INTO has room for them all (what lies past them is left as it was).
The encoder passes the same vector for every map at a depth, so that
a map makes no garbage: no closure, no vector."
  (let ((erlext--pairs into)
        (erlext--pairs-index 0))
    (maphash #'erlext--put-pair table)))

(defun erlext--small-map (pairs &optional k1 v1 k2 v2 k3 v3 k4 v4)
  "Return an `equal' hash table of PAIRS pairs, keys and values given.
The first pair is K1 and V1, the second K2 and V2, the third K3 and
V3, the fourth K4 and V4.  The decoder makes a map of up to 4 pairs
\(most maps a message holds) in this one call: calls from Lisp cost
less than calls from the module, and optional arguments, unlike a
rest list, make no garbage."
  (let ((table (make-hash-table :test 'equal :size pairs)))
    (when (> pairs 0) (puthash k1 v1 table))
    (when (> pairs 1) (puthash k2 v2 table))
    (when (> pairs 2) (puthash k3 v3 table))
    (when (> pairs 3) (puthash k4 v4 table))
    table))

(defun erlext--list-start (list into count)
  "Copy LIST into the vector INTO if it is proper and at most COUNT long.
Return its length then; return nil, having copied what fits, when
LIST is longer or not a proper list.  Most lists are short, and for
them this one call is all the encoder needs to read one (where
`erlext--list-chunk' leaves their length to another)."
  (let ((i 0))
    (while (and (consp list) (< i count))
      (aset into i (car list))
      (setq list (cdr list)
            i (1+ i)))
    (and (null list) i)))

(defun erlext--list-chunk (list into count)
  "Copy the first COUNT elements of LIST into the vector INTO.
Stop early at LIST's end, proper or dotted.  Return the rest of LIST.
The encoder reads a list so, through a vector it reuses, to make no
garbage a list."
  (let ((i 0))
    (while (and (< i count) (consp list))
      (aset into i (car list))
      (setq list (cdr list)
            i (1+ i)))
    list))

;;;; Helpers the module calls

(defconst erlext--raw-byte-regexp (string ?\[ #x3fff80 ?- #x3fffff ?\])
  "Matches a raw-byte character of a multibyte string.")

(defconst erlext--beyond-unicode-regexp (string ?\[ #x110000 ?- #x3fff7f ?\])
  "Matches a character that is neither Unicode nor a raw byte.")

(defun erlext--unicode-text (string)
  "Return STRING with each raw-byte character made the character of its byte.
A raw byte #xE9 becomes U+00E9, as Distel's encoder read it.  Return
nil when STRING holds characters that are neither Unicode nor raw
bytes: Erlang has no code point for those."
  (unless (string-match-p erlext--beyond-unicode-regexp string)
    (with-temp-buffer
      (insert string)
      (goto-char (point-min))
      (while (re-search-forward erlext--raw-byte-regexp nil t)
        (let ((byte (multibyte-char-to-unibyte (char-before))))
          (delete-char -1)
          (insert byte)))
      (buffer-string))))

(defun erlext--binary-bytes (string)
  "Return the bytes of a binary made from multibyte STRING, as a unibyte string.
Raw-byte characters are the bytes they stand for, other characters
their UTF-8.  Return nil when STRING holds characters that are
neither Unicode nor raw bytes."
  (unless (string-match-p erlext--beyond-unicode-regexp string)
    (encode-coding-string string 'utf-8-unix t)))

(defconst erlext--interpreted-function-heads '(closure lambda)
  "What an interpreted function, a list, starts with.")

(defun erlext--interpreted-function-p (list)
  "Return non-nil if LIST is an interpreted function, not data.
LIST's first element is `closure' or `lambda'.
\(closure ENV ARGS . BODY) or (lambda ARGS . BODY), as Emacs makes
them; any other list starting with those symbols is data."
  (let ((args (if (eq (car list) 'closure) (cddr list) (cdr list))))
    (and (consp args)
         (listp (car args))
         (or (eq (car list) 'lambda)
             (memq (cadr list) '(t nil))
             (consp (cadr list))))))

(defconst erlext--shown-length 8
  "How many elements of a list or vector an error shows.")

(defconst erlext--shown-chars 60
  "How many characters of a string or symbol name an error shows.")

(defun erlext--shorten (object &optional depth)
  "Return OBJECT, or a short stand-in for it, to name it in an error.
Long strings and symbol names are cut, lists and vectors keep their
first few elements to DEPTH levels (default 3), and objects whose
printed form has no bound (functions, hash tables, records) are
described by their type."
  (let ((depth (or depth 3)))
    (cond
     ((stringp object)
      (if (<= (length object) erlext--shown-chars)
          object
        (concat (substring object 0 erlext--shown-chars) "...")))
     ((symbolp object)
      (if (<= (length (symbol-name object)) erlext--shown-chars)
          object
        (format "#<symbol %s...>"
                (substring (symbol-name object) 0 erlext--shown-chars))))
     ((subrp object) object)
     ((or (byte-code-function-p object) (hash-table-p object)
          (recordp object) (char-table-p object) (bool-vector-p object)
          (and (not (consp object)) (functionp object)))
      (format "#<%s>" (type-of object)))
     ((and (or (consp object) (vectorp object)) (<= depth 0))
      (format "#<%s>" (type-of object)))
     ((consp object)
      (let ((shown nil) (tail object) (n 0))
        (while (and (consp tail) (< n erlext--shown-length))
          (push (erlext--shorten (car tail) (1- depth)) shown)
          (setq tail (cdr tail) n (1+ n)))
        (nconc (nreverse shown)
               (cond ((null tail) nil)
                     ((consp tail) '(...))
                     (t (erlext--shorten tail (1- depth)))))))
     ((vectorp object)
      (vconcat (mapcar (lambda (x) (erlext--shorten x (1- depth)))
                       (cl-subseq object 0 (min (length object) erlext--shown-length)))
               (and (> (length object) erlext--shown-length) '(...))))
     (t object))))

;;;; The module

(require 'derl-module)

(declare-function derl--module-decode "derl-module"
                  (string lossless max-depth max-size))
(declare-function derl--module-encode "derl-module"
                  (term compress max-depth))

;; The module loads at the first call of one of its functions (see
;; derl-module.el), and takes `erl-tag', that very object, then.

;;;; Encoding and decoding

(defun erlext-binary-to-term (string)
  "Decode STRING, an Erlang external term, and return its Lisp value.
STRING holds bytes, as `erlext-term-to-binary' returns them.  Signal
`erlext-decode-error' with the reason and byte offset when it is
malformed."
  (derl--module-decode string (eq erlext-decode-binaries-as 'erl-binary)
                       erlext-max-depth erlext-max-term-size))

(defun erlext-term-to-binary (term &optional compress)
  "Encode TERM in Erlang's external term format; return a unibyte string.
With COMPRESS non-nil, compress it with zlib when that makes it
smaller, as Erlang's `term_to_binary(T, [compressed])' does; an
integer COMPRESS from 1 to 9 is the compression level.  Signal
`erlext-encode-error' naming the object that has no Erlang form."
  (derl--module-encode term compress erlext-max-depth))

;;;; Tuples: (tuple X Y Z) => [X Y Z]

(defun tuple (&rest elems)
  "Return a tuple of ELEMS."
  (apply #'vector elems))

(defun tuplep (x)
  "Return non-nil if X is a tuple: a vector not tagged with `erl-tag'."
  (and (vectorp x)
       (or (zerop (length x))
           (not (eq (aref x 0) erl-tag)))))

(defun tuple-to-list (tuple)
  "Return the elements of TUPLE as a list."
  (cl-check-type tuple (satisfies tuplep))
  (append tuple nil))

(defun tuple-arity (tuple)
  "Return the number of elements of TUPLE."
  (length tuple))

(defmacro tuple-elt (tuple index)
  "Return element INDEX of TUPLE, counting from 1, as Erlang's `element'.
A place for `setf'."
  `(aref ,tuple (1- ,index)))

;;;; Binaries

(defun erl-binary (string)
  "Return STRING marked to encode as an Erlang binary.
A multibyte STRING becomes its UTF-8 bytes, except that a raw-byte
character (as `insert-file-contents' makes of bytes that are not
text) becomes the byte it stands for."
  (vector erl-tag 'erl-binary string))

(defun erl-binaryp (x)
  "Return non-nil if X is a tagged Erlang binary made by `erl-binary'."
  (and (vectorp x) (= (length x) 3)
       (eq (aref x 0) erl-tag) (eq (aref x 1) 'erl-binary)))

(defun erl-binary-string (binary)
  "Return the string inside BINARY, a value made by `erl-binary'."
  (cl-check-type binary (satisfies erl-binaryp))
  (aref binary 2))

(provide 'erlext)

;;; erlext.el ends here

;;; derl-trace.el --- Trace buffers of distributed Erlang connections  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;; Keywords: erlang, languages, processes
;; Package-Requires: ((emacs "28.1"))

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

;; The *trace NODE* buffers: one line per signal to and from a node,
;; `>> ' going out and `<< ' coming in, as Distel's derl.el kept them.
;; Terms print as Erlang shows them, shortened to
;; `derl-trace-term-length' characters; a buffer is trimmed when it
;; grows past `derl-trace-max-size'.

;;; Code:

(require 'cl-lib)
(require 'erlext)

(defcustom derl-use-trace-buffer t
  "Non-nil means log each signal to and from a node in *trace NODE*."
  :type 'boolean
  :group 'derl)

(defcustom derl-trace-max-size 500000
  "Trim a trace buffer to half when it grows past this many characters."
  :type 'natnum
  :group 'derl)

(defcustom derl-trace-term-length 300
  "Shorten each term printed in a trace buffer to this many characters."
  :type 'natnum
  :group 'derl)

(defface derl-trace-output-face
  '((t (:inherit font-lock-string-face)))
  "Face for outgoing signals in a trace buffer."
  :group 'derl)

(defface derl-trace-input-face
  '((t (:inherit font-lock-comment-face)))
  "Face for incoming signals in a trace buffer."
  :group 'derl)

;;;; Printing terms

(defun derl-trace-term (term)
  "TERM printed briefly for a trace line.
Pids, ports, references, funs and binaries print in Erlang's style,
as <node.1.0>; deep or long structures are elided."
  (let ((s (or (derl-trace--tagged-text term)
               (if (derl-trace--has-tagged term 0)
                   (derl-trace--print-with-tags term)
                 (derl-trace--print term)))))
    (if (> (length s) derl-trace-term-length)
        (concat (substring s 0 derl-trace-term-length) "...")
      s)))

(defun derl-trace--print (form)
  "FORM printed with the trace's bounds."
  (let ((print-length 12)
        (print-level 5)
        (print-escape-newlines t)
        (print-escape-control-characters t)
        (print-gensym nil))
    (prin1-to-string form)))

(defun derl-trace--tagged-text (term)
  "Erlang's way of showing TERM if it is a tagged vector, else nil."
  (and (vectorp term) (> (length term) 1) (eq (aref term 0) erl-tag)
       (pcase term
         ;; The common case, built without `format'.
         ((and `[,_ erl-pid ,node ,id ,serial ,_]
               (guard (and (symbolp node) (fixnump id) (fixnump serial))))
          (concat "<" (symbol-name node) "." (number-to-string id) "."
                  (number-to-string serial) ">"))
         (`[,_ erl-pid ,node ,id ,serial ,_] (format "<%s.%s.%s>" node id serial))
         (`[,_ erl-port ,node ,id ,_] (format "#Port<%s.%s>" node id))
         (`[,_ ,(or 'erl-new-ref 'erl-ref) ,node ,_ ,_] (format "#Ref<%s>" node))
         (`[,_ erl-binary ,(and (pred stringp) str)]
          (format "<<%s>>" (derl-trace--print (if (> (length str) 40)
                                            (concat (substring str 0 40) "...")
                                          str))))
         (`[,_ erl-export ,m ,fn ,a] (format "fun %s:%s/%s" m fn a))
         (`[,_ erl-fun ,_] "#Fun")
         (`[,_ erl-bitstring ,_ ,_] "#Bits"))))

(defun derl-trace--has-tagged (term depth)
  "Return non-nil if TERM has a tagged vector within the trace's bounds.
DEPTH is how deep TERM already is."
  (cond ((> depth 5) nil)
        ((vectorp term)
         (or (and (> (length term) 1) (eq (aref term 0) erl-tag))
             (cl-loop for i below (min (length term) 13)
                      thereis (derl-trace--has-tagged (aref term i) (1+ depth)))))
        ((consp term)
         (let ((n 0) found)
           (while (and (consp term) (< n 13) (not found))
             (setq found (derl-trace--has-tagged (car term) (1+ depth))
                   term (cdr term)
                   n (1+ n)))
           found))))

(defun derl-trace--print-with-tags (term)
  "TERM printed, its tagged vectors shown as `derl-trace--tagged-text' does."
  (let* ((texts nil)
         (form (derl-trace--form
                term 0 (lambda (text)
                         (push text texts)
                         (make-symbol (format "derl@%d@" (length texts))))))
         (s (derl-trace--print form))
         (n (length texts)))
    (dolist (text texts)
      (setq s (string-replace (format "derl@%d@" n) text s)
            n (1- n)))
    s))

(defun derl-trace--form (term depth placeholder)
  "TERM with its tagged vectors replaced by PLACEHOLDER symbols.
PLACEHOLDER takes the text to show; DEPTH bounds the walk."
  (let ((text (derl-trace--tagged-text term)))
    (cond
     (text (funcall placeholder text))
     ((> depth 5) term)
     ((vectorp term)
      (let ((n (min (length term) 13)))
        (vconcat (cl-loop for i below n
                          collect (derl-trace--form (aref term i) (1+ depth)
                                                    placeholder))
                 (nthcdr n (append term nil)))))
     ((consp term)
      (let ((out nil) (n 0))
        (while (and (consp term) (< n 13))
          (push (derl-trace--form (car term) (1+ depth) placeholder) out)
          (setq term (cdr term) n (1+ n)))
        (nconc (nreverse out) term)))
     (t term))))

;;;; The buffers

(defun derl-trace-line (node direction text)
  "Append TEXT to NODE's trace buffer, marked for DIRECTION.
DIRECTION is `input' or `output'."
  (let ((line (concat (if (eq direction 'input) "<< " ">> ") text "\n")))
    (with-current-buffer (get-buffer-create (format "*trace %s*" node))
      (let ((inhibit-read-only t))
        (save-excursion
          (goto-char (point-max))
          (insert (propertize line 'face
                              (if (eq direction 'input)
                                  'derl-trace-input-face
                                'derl-trace-output-face))))
        (when (> (buffer-size) derl-trace-max-size)
          (save-excursion
            (goto-char (/ (buffer-size) 2))
            (forward-line 1)
            (delete-region (point-min) (point))))))))

(provide 'derl-trace)

;;; derl-trace.el ends here

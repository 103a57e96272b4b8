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

;; A term prints as Erlang shows it, {a,<node.1.0>,#{k => <<"v">>},[1,2]},
;; by a walker of its own rather than `prin1': the walk stops once the
;; text is `derl-trace-term-length' characters long, so its cost is
;; bounded by that length whatever the size or depth of the term, and
;; it cannot fail.

(defconst derl-trace--max-depth 40
  "Nesting below which a term prints as \"...\".")

(defvar derl-trace--parts nil
  "The pieces of the text being printed, last first.")

(defvar derl-trace--left 0
  "How many more characters the text being printed may take.")

(defvar derl-trace--atoms (make-hash-table :test 'eq)
  "Atoms already printed: symbol -> text.")

(defun derl-trace-term (term &optional limit)
  "Return TERM as text for a trace line, printed the way Erlang does.
The text is at most LIMIT characters (default
`derl-trace-term-length'), then \"...\"."
  (let ((limit (or limit derl-trace-term-length)))
    (if (and (symbolp term) term)
        (derl-trace--shorten (derl-trace--atom term) limit)
      (let ((derl-trace--parts nil)
            (derl-trace--left limit))
        (derl-trace--walk term 0)
        (derl-trace--shorten (apply #'concat (nreverse derl-trace--parts))
                             limit)))))

(defun derl-trace--shorten (text limit)
  "TEXT cut to LIMIT characters and marked \"...\" if it was longer."
  (if (> (length text) limit)
      (concat (substring text 0 limit) "...")
    text))

(defsubst derl-trace--put (text)
  "Add TEXT to the text being printed."
  (push text derl-trace--parts)
  (setq derl-trace--left (- derl-trace--left (length text))))

(defun derl-trace--walk (term depth)
  "Print TERM, DEPTH levels down, unless the text is long enough."
  (cond
   ((<= derl-trace--left 0))
   ((null term) (derl-trace--put "[]"))
   ((symbolp term) (derl-trace--put (derl-trace--atom term)))
   ((numberp term) (derl-trace--put (number-to-string term)))
   ((>= depth derl-trace--max-depth) (derl-trace--put "..."))
   ((stringp term) (derl-trace--put (derl-trace--string term)))
   ((vectorp term)
    (if (and (> (length term) 1) (eq (aref term 0) erl-tag))
        (derl-trace--put (derl-trace--tagged term))
      (derl-trace--put "{")
      (let ((i 0) (n (length term)))
        (while (and (< i n) (> derl-trace--left 0))
          (when (> i 0) (derl-trace--put ","))
          (derl-trace--walk (aref term i) (1+ depth))
          (setq i (1+ i))))
      (derl-trace--put "}")))
   ((consp term)
    (derl-trace--put "[")
    (derl-trace--walk (car term) (1+ depth))
    (setq term (cdr term))
    (while (and (consp term) (> derl-trace--left 0))
      (derl-trace--put ",")
      (derl-trace--walk (car term) (1+ depth))
      (setq term (cdr term)))
    (when (and term (> derl-trace--left 0))
      (derl-trace--put "|")
      (derl-trace--walk term (1+ depth)))
    (derl-trace--put "]"))
   ((hash-table-p term)
    (derl-trace--put "#{")
    (let ((first t))
      (catch 'derl-trace--full
        (maphash (lambda (k v)
                   (when (<= derl-trace--left 0)
                     (throw 'derl-trace--full nil))
                   (if first (setq first nil) (derl-trace--put ","))
                   (derl-trace--walk k (1+ depth))
                   (derl-trace--put " => ")
                   (derl-trace--walk v (1+ depth)))
                 term)))
    (derl-trace--put "}"))
   (t (derl-trace--put (format "#<%s>" (type-of term))))))

(defun derl-trace--atom (atom)
  "The text of ATOM, a non-nil symbol, quoted as Erlang quotes it."
  (or (gethash atom derl-trace--atoms)
      (let* ((name (symbol-name atom))
             (case-fold-search nil)
             (text (if (string-match-p "\\`[a-z][A-Za-z0-9_@]*\\'" name)
                       name
                     (concat "'" (replace-regexp-in-string
                                  "['\\\\]" "\\\\\\&"
                                  (derl-trace--shorten name 255))
                             "'"))))
        ;; Peers can send any number of atoms: keep the cache small.
        (when (> (hash-table-count derl-trace--atoms) 10000)
          (clrhash derl-trace--atoms))
        (puthash atom text derl-trace--atoms))))

(defun derl-trace--string (string)
  "STRING printed, at most as long as the text may still grow."
  (let ((print-escape-newlines t)
        (print-escape-control-characters t))
    (prin1-to-string (if (> (length string) derl-trace--left)
                         (substring string 0 (max 0 derl-trace--left))
                       string))))

(defun derl-trace--tagged (term)
  "Return TERM, a vector tagged with `erl-tag', printed the way Erlang does."
  (pcase term
    ((and `[,_ erl-pid ,node ,id ,serial ,_]
          (guard (and (symbolp node) (fixnump id) (fixnump serial))))
     (concat "<" (derl-trace--atom-name node) "." (number-to-string id) "."
             (number-to-string serial) ">"))
    ((and `[,_ erl-port ,node ,id ,_] (guard (symbolp node)))
     (format "#Port<%s.%s>" (derl-trace--atom-name node)
             (derl-trace-term id 30)))
    ((and `[,_ ,(or 'erl-new-ref 'erl-ref) ,node ,_ ,_]
          (guard (symbolp node)))
     (format "#Ref<%s>" (derl-trace--atom-name node)))
    (`[,_ erl-binary ,(and (pred stringp) str)]
     (concat "<<" (derl-trace--string str) ">>"))
    ((and `[,_ erl-export ,m ,f ,a] (guard (and (symbolp m) (symbolp f))))
     (format "fun %s:%s/%s" (derl-trace--atom-name m)
             (derl-trace--atom-name f) (derl-trace-term a 30)))
    (_ (pcase (aref term 1)
         ('erl-fun "#Fun")
         ('erl-bitstring "#Bits")
         (_ "#<tagged>")))))

(defun derl-trace--atom-name (symbol)
  "The name of SYMBOL, shortened for a trace line."
  (derl-trace--shorten (symbol-name symbol) 255))

(defun derl-trace-pid (pid)
  "PID printed in full for a trace line, with its node's creation."
  (if (and (vectorp pid) (= (length pid) 6) (eq (aref pid 1) 'erl-pid))
      (format "%s (creation %s)" (derl-trace--tagged pid)
              (derl-trace-term (aref pid 5) 20))
    (derl-trace-term pid)))

;;;; The buffers

(defvar derl-trace--batch nil
  "Non-nil while trace lines are gathered: a cons whose car holds them.
Each line is (NODE DIRECTION . TEXT), newest first.")

(defun derl-trace-line (node direction text)
  "Append TEXT to NODE's trace buffer, marked for DIRECTION.
DIRECTION is `input' or `output'.  Inside `derl-trace-batch' the
line waits for the end of the batch."
  (if derl-trace--batch
      (push (cons node (cons direction text)) (car derl-trace--batch))
    (derl-trace--insert node (list (cons direction text)))))

(defmacro derl-trace-batch (&rest body)
  "Run BODY; write the trace lines of BODY once, at its end.
A burst of events then costs one insertion per trace buffer."
  (declare (indent 0) (debug (body)))
  `(derl-trace--call-batched (lambda () ,@body)))

(defun derl-trace--call-batched (function)
  "Call FUNCTION, gathering its trace lines and writing them at the end."
  (if derl-trace--batch
      (funcall function)
    (let ((derl-trace--batch (list nil)))
      (unwind-protect (funcall function)
        (derl-trace--flush derl-trace--batch)))))

(defun derl-trace--flush (batch)
  "Write the lines gathered in BATCH, each node's into its buffer."
  (let ((by-node nil))
    (dolist (line (car batch))
      (let ((slot (assq (car line) by-node)))
        (if slot
            (push (cdr line) (cdr slot))
          (push (list (car line) (cdr line)) by-node))))
    (setcar batch nil)
    (dolist (slot by-node)
      (derl-trace--insert (car slot) (cdr slot)))))

(defun derl-trace--keep (lines limit)
  "The newest of LINES, oldest first, that trimming at LIMIT would keep.
LINES are (DIRECTION . TEXT)."
  (let ((total 0))
    (dolist (line lines)
      (setq total (+ total 4 (length (cdr line)))))
    (while (and lines (> total limit) (> total (/ limit 2)))
      (setq total (- total 4 (length (cdr (car lines))))
            lines (cdr lines)))
    lines))

(defun derl-trace--insert (node lines)
  "Append LINES, (DIRECTION . TEXT) oldest first, to NODE's trace buffer."
  (with-current-buffer (get-buffer-create (format "*trace %s*" node))
    (let ((inhibit-read-only t)
          (lines (derl-trace--keep lines derl-trace-max-size)))
      (save-excursion
        (goto-char (point-max))
        ;; Each run of lines in one direction is one insertion.
        (while lines
          (let ((direction (car (car lines)))
                (start (point))
                (parts nil))
            (while (and lines (eq (car (car lines)) direction))
              (push (if (eq direction 'input) "<< " ">> ") parts)
              (push (cdr (car lines)) parts)
              (push "\n" parts)
              (setq lines (cdr lines)))
            (insert (apply #'concat (nreverse parts)))
            (put-text-property start (point) 'face
                               (if (eq direction 'input)
                                   'derl-trace-input-face
                                 'derl-trace-output-face)))))
      (when (> (buffer-size) derl-trace-max-size)
        (save-excursion
          (goto-char (/ (buffer-size) 2))
          (forward-line 1)
          (delete-region (point-min) (point)))))))

(provide 'derl-trace)

;;; derl-trace.el ends here

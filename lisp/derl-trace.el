;;; derl-trace.el --- Trace buffers of distributed Erlang connections  -*- lexical-binding: t; -*-

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
;; it cannot fail.  It writes straight into the current buffer, so a
;; trace line makes next to no garbage.

(defconst derl-trace--max-depth 40
  "Nesting below which a term prints as \"...\".")

(defvar derl-trace--stop 0
  "The buffer position at which the term being printed is long enough.")

(defvar derl-trace--atoms (make-hash-table :test 'eq)
  "Atoms already printed: symbol -> text.")

(defun derl-trace-insert-term (term &optional limit)
  "Insert TERM at point, printed the way Erlang does.
The text is at most LIMIT characters (default
`derl-trace-term-length'), then \"...\"."
  (let ((derl-trace--stop (+ (point) (or limit derl-trace-term-length))))
    (derl-trace--walk term 0)
    (when (> (point) derl-trace--stop)
      (delete-region derl-trace--stop (point))
      (insert "..."))))

(defun derl-trace-term (term &optional limit)
  "Return TERM as text for a trace line, printed the way Erlang does.
The text is at most LIMIT characters (default
`derl-trace-term-length'), then \"...\"."
  (with-current-buffer (get-buffer-create " *derl-trace-print*")
    (erase-buffer)
    (derl-trace-insert-term term limit)
    (buffer-string)))

(defun derl-term-to-string (term &optional limit)
  "Return TERM printed the way Erlang prints it, as ~tp would.
A pid prints as <NODE.ID.SERIAL>, a binary as <<\"...\">>, a map as
#{K => V}.  The text is at most LIMIT characters (default
`derl-trace-term-length'), then \"...\"; terms nested deeper than
40 levels print as \"...\".  This never fails, whatever TERM is."
  (derl-trace-term term limit))

(defun derl-trace--walk (term depth)
  "Insert TERM, DEPTH levels down, unless the text is long enough."
  (cond
   ((>= (point) derl-trace--stop))
   ((null term) (insert "[]"))
   ((symbolp term) (insert (derl-trace--atom term)))
   ((numberp term) (princ term (current-buffer)))
   ((>= depth derl-trace--max-depth) (insert "..."))
   ((stringp term) (derl-trace--string term))
   ((vectorp term)
    (if (and (> (length term) 1) (eq (aref term 0) erl-tag))
        (derl-trace--tagged term)
      (insert "{")
      (let ((i 0) (n (length term)))
        (while (and (< i n) (< (point) derl-trace--stop))
          (when (> i 0) (insert ","))
          (derl-trace--walk (aref term i) (1+ depth))
          (setq i (1+ i))))
      (insert "}")))
   ((consp term)
    (insert "[")
    (derl-trace--walk (car term) (1+ depth))
    (setq term (cdr term))
    (while (and (consp term) (< (point) derl-trace--stop))
      (insert ",")
      (derl-trace--walk (car term) (1+ depth))
      (setq term (cdr term)))
    (when (and term (< (point) derl-trace--stop))
      (insert "|")
      (derl-trace--walk term (1+ depth)))
    (insert "]"))
   ((hash-table-p term)
    (insert "#{")
    (let ((first t))
      (catch 'derl-trace--full
        (maphash (lambda (k v)
                   (when (>= (point) derl-trace--stop)
                     (throw 'derl-trace--full nil))
                   (if first (setq first nil) (insert ","))
                   (derl-trace--walk k (1+ depth))
                   (insert " => ")
                   (derl-trace--walk v (1+ depth)))
                 term)))
    (insert "}"))
   (t (insert "#<" (symbol-name (type-of term)) ">"))))

(defun derl-trace--atom (atom)
  "The text of ATOM, a non-nil symbol, quoted as Erlang quotes it."
  (or (gethash atom derl-trace--atoms)
      (let* ((name (derl-trace--atom-name atom))
             (case-fold-search nil)
             (text (if (string-match-p "\\`[a-z][A-Za-z0-9_@]*\\'" name)
                       name
                     (concat "'" (replace-regexp-in-string
                                  "['\\\\]" "\\\\\\&" name)
                             "'"))))
        ;; Peers can send any number of atoms: keep the cache small.
        (when (> (hash-table-count derl-trace--atoms) 10000)
          (clrhash derl-trace--atoms))
        (puthash atom text derl-trace--atoms))))

(defun derl-trace--shorten (text limit)
  "TEXT cut to LIMIT characters and marked \"...\" if it was longer."
  (if (> (length text) limit)
      (concat (substring text 0 limit) "...")
    text))

(defun derl-trace--unprintable-p (char)
  "Whether Erlang prints a list holding CHAR as integers, not as a string."
  (or (< char 8) (and (> char 13) (< char 32) (/= char 27))
      (and (>= char 127) (< char 160))))

(defun derl-trace--string (string)
  "Insert STRING, at most as long as the text may still grow.
As Erlang does, it is quoted if its characters are printable, and
a list of integers otherwise, such as [1,2,3]."
  (let* ((print-escape-newlines t)
         (print-escape-control-characters t)
         (room (max 0 (- derl-trace--stop (point))))
         (shown (if (> (length string) room) (substring string 0 room)
                  string)))
    (if (not (cl-some #'derl-trace--unprintable-p shown))
        (prin1 shown (current-buffer))
      (insert "[")
      (let ((i 0) (n (length shown)))
        (while (and (< i n) (< (point) derl-trace--stop))
          (when (> i 0) (insert ","))
          (princ (aref shown i) (current-buffer))
          (setq i (1+ i))))
      (insert "]"))))

(defun derl-trace--tagged (term)
  "Insert TERM, a vector tagged with `erl-tag', as Erlang prints it."
  (pcase term
    ((and `[,_ erl-pid ,node ,id ,serial ,_]
          (guard (and (symbolp node) (fixnump id) (fixnump serial))))
     (insert (derl-trace--pid-text node id serial)))
    ((and `[,_ erl-port ,node ,id ,_] (guard (symbolp node)))
     (insert "#Port<" (derl-trace--atom-name node) ".")
     (derl-trace-insert-term id 30)
     (insert ">"))
    ((and `[,_ ,(or 'erl-new-ref 'erl-ref) ,node ,_ ,_]
          (guard (symbolp node)))
     (insert "#Ref<" (derl-trace--atom-name node) ">"))
    (`[,_ erl-binary ,(and (pred stringp) str)]
     (insert "<<")
     (derl-trace--string str)
     (insert ">>"))
    ((and `[,_ erl-export ,m ,f ,a] (guard (and (symbolp m) (symbolp f))))
     (insert "fun " (derl-trace--atom-name m) ":" (derl-trace--atom-name f)
             "/")
     (derl-trace-insert-term a 30))
    (_ (insert (pcase (aref term 1)
                 ('erl-fun "#Fun")
                 ('erl-bitstring "#Bits")
                 (_ "#<tagged>"))))))

(defvar derl-trace--pids (make-hash-table :test 'eq)
  "Pids already printed: node -> id -> text, for pids of serial 0.")

(defun derl-trace--pid-text (node id serial)
  "The text of the pid of NODE numbered ID and SERIAL, as <NODE.ID.SERIAL>.
Texts of pids of serial 0 are kept, so that printing them again
makes no garbage."
  (let ((ids (and (eq serial 0) (gethash node derl-trace--pids))))
    (or (and ids (gethash id ids))
        (let ((text (concat "<" (derl-trace--atom-name node) "."
                            (number-to-string id) "."
                            (number-to-string serial) ">")))
          (when (eq serial 0)
            ;; Peers can make any number of pids: keep the cache small.
            (when (> (hash-table-count derl-trace--pids) 100)
              (clrhash derl-trace--pids))
            (unless ids
              (setq ids (make-hash-table :test 'eql))
              (puthash node ids derl-trace--pids))
            (when (> (hash-table-count ids) 10000)
              (clrhash ids))
            (puthash id text ids))
          text))))

(defun derl-trace--atom-name (symbol)
  "The name of SYMBOL, shortened for a trace line."
  (let ((name (symbol-name symbol)))
    (if (> (length name) 255) (derl-trace--shorten name 255) name)))

(defun derl-trace-pid (pid)
  "PID printed in full for a trace line, with its node's creation."
  (if (and (vectorp pid) (= (length pid) 6) (eq (aref pid 1) 'erl-pid))
      (format "%s (creation %s)" (derl-trace-term pid)
              (derl-trace-term (aref pid 5) 20))
    (derl-trace-term pid)))

;;;; The buffers

(defvar derl-trace--batch nil
  "Non-nil while trace lines are gathered: a cons whose car holds them.
Each line is a vector [NODE DIRECTION TEXT TERMS], newest first.")

(defun derl-trace-line (node direction text &rest terms)
  "Append a line to NODE's trace buffer, marked for DIRECTION.
DIRECTION is `input' or `output'.  The line is TEXT followed by
TERMS, each printed by `derl-trace-insert-term' after a space.
Inside `derl-trace-batch' the line waits for the end of the batch,
and its terms are printed only then."
  (let ((line (vector node direction text terms)))
    (if derl-trace--batch
        (push line (car derl-trace--batch))
      (derl-trace--insert node (list line)))))

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
      (let ((slot (assq (aref line 0) by-node)))
        (if slot
            (push line (cdr slot))
          (push (list (aref line 0) line) by-node))))
    (setcar batch nil)
    (dolist (slot by-node)
      (derl-trace--insert (car slot) (cdr slot)))))

(defun derl-trace--surviving (lines limit)
  "The newest of LINES, oldest first, that trimming at LIMIT could keep.
Once the newer lines surely take LIMIT characters, the older ones
would be trimmed: they are not worth printing."
  (let ((total 0) (n 0) (newest (reverse lines)))
    (while (and newest (< total limit))
      (let ((line (car newest)))
        (setq total (+ total 4 (length (aref line 2))))
        (dolist (term (aref line 3))
          (setq total (+ total 1 (derl-trace--least-length term)))))
      (setq n (1+ n)
            newest (cdr newest)))
    (if newest (last lines n) lines)))

(defun derl-trace--least-length (term)
  "A quick lower bound of the length of TERM printed, at least 1."
  (min (max 1 derl-trace-term-length)
       (cond ((and (vectorp term) (= (length term) 6)
                   (eq (aref term 1) 'erl-pid) (symbolp (aref term 2)))
              (+ 5 (length (symbol-name (aref term 2)))))
             ((and term (symbolp term)) (max 1 (length (symbol-name term))))
             ((stringp term) (+ 2 (length term)))
             ((vectorp term) (1+ (length term)))
             (t 1))))

(defun derl-trace--insert (node lines)
  "Append LINES, oldest first, to NODE's trace buffer.
Lines that trimming would delete at once are not even printed.
They are printed into a scratch buffer first, where text has no
properties and insertions make no garbage, and copied over at once."
  (let ((lines (derl-trace--surviving lines derl-trace-max-size))
        (inhibit-modification-hooks t)
        (runs nil))
    (with-current-buffer (derl-trace-buffer " *derl-trace-lines*")
      (erase-buffer)
      (while lines
        (let ((direction (aref (car lines) 1)))
          (push (cons (point) direction) runs)
          (while (and lines (eq (aref (car lines) 1) direction))
            (let ((line (car lines)))
              (insert (if (eq direction 'input) "<< " ">> ") (aref line 2))
              (dolist (term (aref line 3))
                (insert " ")
                (derl-trace-insert-term term))
              (insert "\n"))
            (setq lines (cdr lines))))))
    (let ((scratch (get-buffer " *derl-trace-lines*")))
      (with-current-buffer (derl-trace-buffer (format "*trace %s*" node))
        (let ((inhibit-read-only t)
              (end (point-max)))
          (save-excursion
            (goto-char end)
            (insert-buffer-substring scratch)
            ;; A face for each run of lines in one direction.
            (let ((run-end (point)))
              (dolist (run runs)
                (put-text-property (+ end (car run) -1) run-end 'face
                                   (if (eq (cdr run) 'input)
                                       'derl-trace-input-face
                                     'derl-trace-output-face))
                (setq run-end (+ end (car run) -1)))))
          (derl-trace-trim derl-trace-max-size))))))

(defun derl-trace-buffer (name)
  "Return the log buffer called NAME, made without undo if it is new.
Undo records would copy every line written and every line trimmed."
  (or (get-buffer name)
      (with-current-buffer (get-buffer-create name)
        (buffer-disable-undo)
        (current-buffer))))

(defun derl-trace-trim (limit)
  "Trim the current buffer to about half of LIMIT once it is past LIMIT.
The oldest lines go, whole."
  (when (> (buffer-size) limit)
    (save-excursion
      (goto-char (- (point-max) (/ limit 2)))
      (forward-line 1)
      (delete-region (point-min) (point)))))

(provide 'derl-trace)

;;; derl-trace.el ends here

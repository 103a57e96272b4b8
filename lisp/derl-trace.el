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
    (let ((inhibit-modification-hooks t))
      (erase-buffer)
      (derl-trace-insert-term term limit)
      (buffer-string))))

(defun derl-term-to-string (term &optional limit)
  "Return TERM printed the way Erlang prints it, as ~tp would.
A pid prints as <NODE.ID.SERIAL>, a binary as <<\"...\">>, a map as
#{K => V}.  The text is at most LIMIT characters (default
`derl-trace-term-length'), then \"...\"; terms nested deeper than
40 levels print as \"...\".  This never fails, whatever TERM is."
  (derl-trace-term term limit))

(defsubst derl-trace--pid-p (term)
  "Whether TERM, a vector tagged with `erl-tag', is a well-formed pid."
  (and (= (length term) 6) (eq (aref term 1) 'erl-pid)
       (symbolp (aref term 2)) (fixnump (aref term 3))
       (fixnump (aref term 4))))

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
        (if (derl-trace--pid-p term)
            ;; The most common tagged term, printed without garbage, in
            ;; one insertion.
            (insert "<" (derl-trace--atom-name (aref term 2)) "."
                    (derl-trace--number (aref term 3)) "."
                    (derl-trace--number (aref term 4)) ">")
          (derl-trace--tagged term))
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

(defvar derl-trace--numbers (make-hash-table :test 'eq)
  "Numbers already printed in pids: fixnum -> text.")

(defun derl-trace--number (n)
  "The text of N, a fixnum, shared with every earlier pid that had it."
  (or (gethash n derl-trace--numbers)
      (progn
        ;; Peers choose their pids: keep the cache small.
        (when (> (hash-table-count derl-trace--numbers) 4096)
          (clrhash derl-trace--numbers))
        (puthash n (number-to-string n) derl-trace--numbers))))

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

(defsubst derl-trace--code (char)
  "The code CHAR is sent as: a raw-byte character is the byte it stands for."
  (if (>= char #x3fff80) (- char #x3fff00) char))

(defun derl-trace--string (string)
  "Insert STRING, at most as long as the text may still grow.
As Erlang does, it is quoted if its characters are printable, and
a list of integers otherwise, such as [1,2,3]."
  (let* ((print-escape-newlines t)
         (print-escape-control-characters t)
         (room (max 0 (- derl-trace--stop (point))))
         (shown (if (> (length string) room) (substring string 0 room)
                  string)))
    (if (not (cl-some (lambda (char)
                        (derl-trace--unprintable-p (derl-trace--code char)))
                      shown))
        (prin1 shown (current-buffer))
      (insert "[")
      (let ((i 0) (n (length shown)))
        (while (and (< i n) (< (point) derl-trace--stop))
          (when (> i 0) (insert ","))
          (princ (derl-trace--code (aref shown i)) (current-buffer))
          (setq i (1+ i))))
      (insert "]"))))

(defun derl-trace--tagged (term)
  "Insert TERM, a vector tagged with `erl-tag', as Erlang prints it."
  (pcase term
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

;; A trace line is printed at once, into a hidden pending buffer of its
;; node: printing is bounded and makes next to no garbage, and what the
;; line's terms hold is not kept alive.  The pending text goes to
;; *trace NODE* in one insertion, `derl-trace-delay' seconds later (or
;; at once with `derl-trace-flush'): a burst of signals costs one
;; insertion.  The faces come from font-lock, so a buffer nobody looks
;; at gets no text properties at all.

(defcustom derl-trace-delay 0.1
  "Seconds a trace line may wait before it appears in its buffer.
Lines are gathered and written together; \\[derl-trace-flush], or
`derl-trace-flush' from Lisp, writes them at once."
  :type 'number
  :group 'derl)

(defvar derl-trace--pending (make-hash-table :test 'eq)
  "Node -> its buffer of trace lines not yet in *trace NODE*.")

(defvar derl-trace--timer nil
  "The timer that writes the pending trace lines, while some wait.")

(defun derl-trace--pending-buffer (node)
  "The buffer of NODE's pending trace lines, made when needed."
  (let ((buffer (gethash node derl-trace--pending)))
    (if (buffer-live-p buffer)
        buffer
      (puthash node
               (derl-trace-buffer (format " *derl-trace-pending %s*" node))
               derl-trace--pending))))

(defmacro derl-trace--in-pending (node &rest body)
  "Run BODY in NODE's pending trace buffer.
When that buffer is current already there is no switch, which costs
more than the line's printing."
  (declare (indent 1) (debug t))
  (let ((buffer (make-symbol "buffer")))
    `(let ((,buffer (derl-trace--pending-buffer ,node)))
       (if (eq ,buffer (current-buffer))
           (progn ,@body)
         (with-current-buffer ,buffer ,@body)))))

(defmacro derl-trace--appending (node direction text &rest body)
  "Append a line to NODE's pending trace: the mark for DIRECTION, TEXT, BODY.
BODY inserts the rest of the line at point."
  (declare (indent 3) (debug t))
  `(progn
     (derl-trace--in-pending ,node
       ;; Nothing watches this buffer; the hooks would cost more than
       ;; the printing.
       (let ((inhibit-modification-hooks t))
         (goto-char (point-max))
         (insert (if (eq ,direction 'input) "<< " ">> ") ,text)
         ,@body
         (insert "\n")
         (derl-trace-trim derl-trace-max-size)))
     (unless derl-trace--timer
       (setq derl-trace--timer
             (run-at-time derl-trace-delay nil #'derl-trace-flush)))))

(defun derl-trace-line (node direction text &rest terms)
  "Append a line to NODE's trace buffer, marked for DIRECTION.
DIRECTION is `input' or `output'.  The line is TEXT followed by
TERMS, each printed by `derl-trace-insert-term' after a space.  It
appears in the buffer within `derl-trace-delay' seconds."
  (derl-trace--appending node direction text
    (dolist (term terms)
      (insert " ")
      (derl-trace-insert-term term))))

(defun derl-trace--span-line (node direction label buffer start end)
  "Append the line LABEL and a text of BUFFER to NODE's trace.
The text, from START to END, is the line's terms as the module
printed them; the line is marked for DIRECTION."
  (derl-trace--appending node direction label
    (insert " ")
    (insert-buffer-substring buffer start end)))

(defun derl-trace--line (node direction text count &optional term1 term2 term3)
  "Append a line as `derl-trace-line' does, its COUNT terms given apart.
NODE, DIRECTION and TEXT are as there; COUNT, from 0 to 3, says how
many of TERM1, TERM2 and TERM3 there are.  It makes no list of the
terms for each line, which the garbage collector would have to take."
  (derl-trace--appending node direction text
    (when (> count 0)
      (insert " ")
      (derl-trace-insert-term term1))
    (when (> count 1)
      (insert " ")
      (derl-trace-insert-term term2))
    (when (> count 2)
      (insert " ")
      (derl-trace-insert-term term3))))

;;;###autoload
(defun derl-trace-flush ()
  "Write the pending trace lines into their *trace NODE* buffers now."
  (interactive)
  (when derl-trace--timer
    (cancel-timer derl-trace--timer)
    (setq derl-trace--timer nil))
  (maphash (lambda (node pending)
             (when (and (buffer-live-p pending)
                        (> (buffer-size pending) 0))
               (with-current-buffer (derl-trace-node-buffer node)
                 (let ((inhibit-read-only t)
                       (inhibit-modification-hooks t))
                   (save-excursion
                     (goto-char (point-max))
                     (insert-buffer-substring pending))
                   (derl-trace-trim derl-trace-max-size)))
               (with-current-buffer pending
                 (erase-buffer))))
           derl-trace--pending))

(defconst derl-trace-font-lock-keywords
  '(("^<< .*" . 'derl-trace-input-face)
    ("^>> .*" . 'derl-trace-output-face))
  "What `derl-trace-mode' highlights: incoming and outgoing lines.")

(define-derived-mode derl-trace-mode special-mode "derl-trace"
  "Major mode of the *trace NODE* buffers.
Each line is a signal to (`>> ') or from (`<< ') the node, its terms
printed as Erlang prints them.  \\<derl-trace-mode-map>\\[revert-buffer] writes the lines
still pending (see `derl-trace-delay').

\\{derl-trace-mode-map}"
  (setq-local font-lock-defaults '(derl-trace-font-lock-keywords t))
  (setq-local revert-buffer-function
              (lambda (&rest _) (derl-trace-flush)))
  (buffer-disable-undo))

(defun derl-trace-node-buffer (node)
  "Return the trace buffer of NODE, *trace NODE*, made when needed."
  (let ((name (format "*trace %s*" node)))
    (or (get-buffer name)
        (with-current-buffer (get-buffer-create name)
          (derl-trace-mode)
          (current-buffer)))))

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

;;; derl-doc.el --- Eldoc and documentation from a live node  -*- lexical-binding: t; -*-

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

;; Documentation asked of the node itself:
;;
;; `derl-doc-eldoc', for `eldoc-documentation-functions': in a call,
;; the function's spec (from the debug info, or the documentation's
;; signatures) and the first sentence of its documentation; the node
;; answers in the background and eldoc shows it when it comes.
;;
;; M-x derl-describe: the whole documentation of a module or a
;; function in the *Help* buffer.  Erlang's own format
;; (application/erlang+html, OTP's) is rendered as text by the node's
;; shell_docs; Markdown (Elixir's) is rendered here, as plain text.
;; References to other functions (lists:seq/3, Enum.reduce/3, seq/3)
;; are buttons.  Where the node has no documentation, the specs and
;; what is known are shown instead.

;;; Code:

(require 'cl-lib)
(require 'subr-x)
(require 'help-mode)
(require 'ansi-color)
(require 'derl-node-info)
(require 'derl-complete)

(defvar derl-doc--history nil
  "References read by `derl-describe'.")

;;;; Eldoc

(defun derl-doc--spec-line (text)
  "TEXT, a spec as the node printed it, on one line."
  (let ((line (string-trim (replace-regexp-in-string "[ \t\n]+" " " text))))
    (setq line (string-remove-prefix "-spec " line))
    (string-remove-suffix "." line)))

(defun derl-doc--resolve (node module function callback)
  "Find the module of FUNCTION on NODE; call CALLBACK with (MODULE . INFO).
MODULE nil is a local call, looked for in `derl-node-info-local-modules'.
INFO is the module's `derl-node-info-module'.  CALLBACK gets nil when
no module has FUNCTION.  Run CALLBACK at once when all is known."
  (let ((candidates (if module (list module)
                      (derl-node-info-local-modules node))))
    (cl-labels ((try (modules)
                  (if (null modules)
                      (funcall callback nil)
                    (derl-doc--with node (cons 'functions (car modules))
                      (lambda (info)
                        (if (and info (derl-node-info-lookup info function))
                            (funcall callback (cons (car modules) info))
                          (try (cdr modules))))))))
      (try candidates))))

(defun derl-doc--with (node key callback)
  "Call CALLBACK with NODE's answer to KEY: at once if known, else when it comes."
  (let ((value (derl-node-info-get node key callback)))
    (when value
      (funcall callback value))))

(defun derl-doc--eldoc-text (node module info function argument details)
  "The eldoc text of FUNCTION of MODULE on NODE, at ARGUMENT.
INFO is the module's `derl-node-info-module', DETAILS its
`derl-node-info-details' or nil."
  (let* ((f (derl-node-info-lookup info function))
         (arities (derl-node-info-function-arities f))
         (elixir (eq (derl-node-info-module-language info) 'elixir))
         (specs (derl-node-info-specs details function))
         (arity (or (and argument
                         (or (cl-find-if (lambda (a) (>= a argument)) arities)
                             (car (last arities))))
                    (and (= (length arities) 1) (car arities))))
         (chosen (if arity
                     (or (cl-remove-if-not (lambda (s) (eql (car s) arity)) specs)
                         specs)
                   specs))
         (lines (delete-dups
                 (mapcar #'derl-doc--spec-line
                         (apply #'append (mapcar #'cdr chosen)))))
         (signatures (derl-node-info-function-signatures f))
         (summary (derl-node-info-function-summary f)))
    (ignore node module)
    (string-join
     (delq nil
           (list
            (cond
             (elixir
              (string-join
               (delq nil (list (and signatures
                                    (string-join (delete-dups
                                                  (copy-sequence signatures))
                                                 " | "))
                               (and lines (string-join lines " | "))))
               "  "))
             (lines (string-join lines " | "))
             (t (format "%s/%s" function
                        (mapconcat #'number-to-string arities ","))))
            (and summary (derl-complete--first-sentence summary))))
     "\n")))

(defun derl-doc-eldoc (callback &rest _)
  "Show the spec and summary of the function called at point, for eldoc.
For `eldoc-documentation-functions': CALLBACK gets the text, at once
when the node's answers are known, else when they come."
  (let ((node (derl-knowledge-buffer-node))
        (call (and (derl-knowledge-buffer-node) (derl-node-info-call-at-point))))
    (when (and node call (nth 1 call))
      (pcase-let ((`(,module ,function ,argument ,_start ,_end) call))
        (let ((buffer (current-buffer))
              (point (point))
              (tick (buffer-chars-modified-tick))
              (language (derl-knowledge-buffer-language))
              (answered nil))
          (derl-doc--resolve
           node module function
           (lambda (found)
             (if (null found)
                 (progn (setq answered t) (funcall callback nil))
               (derl-doc--with
                node (cons 'details (car found))
                (lambda (details)
                  (setq answered t)
                  (if (and (buffer-live-p buffer)
                           (eq buffer (current-buffer))
                           (= point (with-current-buffer buffer (point)))
                           (= tick (with-current-buffer buffer
                                     (buffer-chars-modified-tick))))
                      (progn
                        (derl-node-info-note-missing node (cdr found) 'docs)
                        (funcall callback
                                 (derl-doc--eldoc-text node (car found)
                                                       (cdr found) function
                                                       argument details)
                                 :thing (derl-node-info-reference-text
                                         (car found) function nil language)
                                 :face 'font-lock-function-name-face))
                    (funcall callback nil)))))))
          (ignore answered)
          t)))))

;;;; Markdown as plain text

(defun derl-doc--markdown (text)
  "TEXT, Markdown, rendered as plain text with faces."
  (with-temp-buffer
    (let ((fenced nil))
      (dolist (line (split-string text "\n"))
        (cond
         ((string-match-p "\\`[ \t]*```" line)
          (setq fenced (not fenced)))
         (fenced
          (insert "    " (propertize line 'face 'font-lock-constant-face) "\n"))
         ((string-match "\\`    " line)
          (insert (propertize line 'face 'font-lock-constant-face) "\n"))
         ((string-match "\\`\\(#+\\)[ \t]+\\(.*\\)" line)
          (insert (propertize (match-string 2 line) 'face 'bold) "\n"))
         ((string-match "\\`\\([ \t]*\\)[*+-][ \t]+\\(.*\\)" line)
          (insert (match-string 1 line) "  * "
                  (derl-doc--markdown-inline (match-string 2 line)) "\n"))
         (t (insert (derl-doc--markdown-inline line) "\n")))))
    (buffer-string)))

(defun derl-doc--markdown-inline (line)
  "Give LINE, a line of Markdown, faces for its inline formatting."
  (let ((pos 0)
        (parts nil))
    (while (string-match (concat "`\\([^`]+\\)`"
                                 "\\|\\*\\*\\([^*]+\\)\\*\\*"
                                 "\\|\\[\\([^]]+\\)\\](\\([^)]*\\))")
                         line pos)
      (push (substring line pos (match-beginning 0)) parts)
      (push (cond ((match-beginning 1)
                   (propertize (match-string 1 line)
                               'face 'font-lock-constant-face))
                  ((match-beginning 2)
                   (propertize (match-string 2 line) 'face 'bold))
                  (t (let ((label (match-string 3 line))
                           (target (match-string 4 line)))
                       (if (string-match-p "\\`https?:" target)
                           (propertize label 'derl-doc-url target)
                         label))))
            parts)
      (setq pos (match-end 0)))
    (push (substring line pos) parts)
    (apply #'concat (nreverse parts))))

;;;; References as buttons

(define-button-type 'derl-doc-reference
  :supertype 'help-xref
  'help-function #'derl-doc--show
  'help-echo "mouse-2, RET: describe this function")

(define-button-type 'derl-doc-url
  'action (lambda (button) (browse-url (button-get button 'derl-doc-url)))
  'follow-link t
  'help-echo "mouse-2, RET: browse this address")

(defun derl-doc--buttonize (node module language)
  "Make the references to functions in the buffer buttons.
NODE is the node asked; MODULE, the module described, is where local
references (seq/3) go; LANGUAGE says how references are written."
  (let ((case-fold-search nil)
        (remote (if (eq language 'elixir)
                    (concat "\\(?:\\(" derl-node-info--elixir-alias "\\)\\|:\\("
                            derl-node-info--erlang-atom "\\)\\)\\.\\("
                            derl-node-info--elixir-name "\\)/\\([0-9]+\\)")
                  (concat "\\(?1:\\`\\`\\)?\\(" derl-node-info--erlang-atom
                          "\\):\\(" derl-node-info--erlang-atom
                          "\\)/\\([0-9]+\\)")))
        (local (concat "\\(" (if (eq language 'elixir)
                                 derl-node-info--elixir-name
                               derl-node-info--erlang-atom)
                       "\\)/\\([0-9]+\\)")))
    (goto-char (point-min))
    (while (re-search-forward remote nil t)
      (unless (or (derl-doc--continues-p (match-beginning 0))
                  (button-at (match-beginning 0)))
        (let ((target (if (match-beginning 1)
                          (concat "Elixir." (match-string-no-properties 1))
                        (match-string-no-properties 2))))
          (make-text-button (match-beginning 0) (match-end 0)
                            'type 'derl-doc-reference
                            'help-args (list node target
                                             (match-string-no-properties 3)
                                             (string-to-number
                                              (match-string-no-properties 4)))))))
    (when module
      (goto-char (point-min))
      (while (re-search-forward local nil t)
        (unless (or (derl-doc--continues-p (match-beginning 0))
                    (button-at (match-beginning 0)))
          (make-text-button (match-beginning 0) (match-end 0)
                            'type 'derl-doc-reference
                            'help-args (list node module
                                             (match-string-no-properties 1)
                                             (string-to-number
                                              (match-string-no-properties 2)))))))
    (goto-char (point-min))
    (let ((pos (point-min)))
      (while (setq pos (text-property-not-all pos (point-max) 'derl-doc-url nil))
        (let ((end (or (next-single-property-change pos 'derl-doc-url)
                       (point-max))))
          (make-text-button pos end 'type 'derl-doc-url)
          (setq pos end))))))

(defun derl-doc--continues-p (pos)
  "Non-nil if the text at POS continues a name begun before it."
  (and (> pos (point-min))
       (string-match-p "[A-Za-z0-9_@.:]" (string (char-before pos)))))

;;;; Describing

(defun derl-doc--fetch-doc (node module function arity)
  "Ask NODE for the documentation of MODULE, or of FUNCTION/ARITY in it."
  (derl-node-info-run-sync
   node derl-node-info--doc-program
   (list (cons 'Name (derl-node-info--binary module))
         (cons 'Fun (if function (derl-node-info--binary function) 'none))
         (cons 'Arity (or arity 'none)))))

(defun derl-doc--heading (text)
  "Insert TEXT as a heading."
  (insert (propertize text 'face 'help-for-help-header) "\n\n"))

(defun derl-doc--insert-entry (node module language entry details)
  "Insert ENTRY, a function's Markdown documentation, of MODULE on NODE.
LANGUAGE writes the references; DETAILS gives the specs."
  (pcase entry
    (`[,kind ,name ,arity ,signatures ,doc]
     (let ((name (derl-node-info--string name))
           (signatures (delq nil (mapcar #'derl-node-info--string
                                         (and (listp signatures) signatures)))))
       (ignore node)
       (insert (propertize
                (concat (derl-node-info-module-text module language)
                        (if (eq language 'elixir) "." ":")
                        (if signatures (string-join signatures "\n")
                          (format "%s/%d" name arity))
                        (if (eq kind 'macro) "  (macro)" ""))
                'face 'help-for-help-header)
               "\n")
       (dolist (spec (derl-node-info-specs details name arity))
         (dolist (text (cdr spec))
           (insert "\n  " (propertize (string-trim text)
                                      'face 'font-lock-type-face))))
       (insert "\n\n")
       (let ((text (derl-node-info--string doc)))
         (insert (cond (text (derl-doc--markdown text))
                       ((eq doc 'hidden) "(hidden: not meant to be used)\n")
                       (t "(not documented)\n"))
                 "\n"))))))

(defun derl-doc--insert-functions (node module language)
  "Insert the list of MODULE's functions on NODE, as buttons."
  (let* ((info (ignore-errors (derl-node-info-fetch
                               node (cons 'functions module))))
         (functions (and info (derl-node-info-module-functions info))))
    (when (and functions (> (hash-table-count functions) 0))
      (insert "\n" (propertize "Functions" 'face 'bold) "\n\n")
      (let ((names (sort (hash-table-keys functions) #'string<)))
        (dolist (name names)
          (let ((f (gethash name functions)))
            (dolist (arity (derl-node-info-function-arities f))
              (insert "  ")
              (insert-text-button (format "%s/%d" name arity)
                                  'type 'derl-doc-reference
                                  'help-args (list node module name arity))
              (let ((summary (derl-node-info-function-summary f)))
                (when summary
                  (insert "  " (derl-complete--first-sentence summary))))
              (insert "\n"))))))
    (ignore language)))

(defun derl-doc--insert-missing (node module function arity reason details)
  "Insert what is known of MODULE's FUNCTION/ARITY on NODE without docs.
REASON is why the node has none; DETAILS gives specs."
  (let ((specs (and function (derl-node-info-specs details function arity))))
    (dolist (spec specs)
      (dolist (text (cdr spec))
        (insert (propertize (string-trim text) 'face 'font-lock-type-face)
                "\n\n")))
    (insert (format "%s has no documentation for %s%s (%s).\n"
                    node module (if function (format ":%s" function) "")
                    (pcase reason
                      ('function_missing "no such function documented")
                      ('missing "no doc chunks")
                      ('non_existing "no such module")
                      (_ (derl-term-to-string reason)))))))

(defun derl-doc--render (node module function arity)
  "Insert the documentation of MODULE, or of FUNCTION/ARITY, from NODE."
  (let* ((result (let ((exact (derl-doc--fetch-doc node module function arity)))
                   ;; Elixir documents a function with default arguments
                   ;; once, at its highest arity.
                   (if (and arity (equal exact [missing function_missing]))
                       (derl-doc--fetch-doc node module function nil)
                     exact)))
         (details (ignore-errors
                    (derl-node-info-fetch node (cons 'details module))))
         (language (if (or (and details (derl-node-info-details-elixir details))
                           (string-prefix-p "Elixir." module))
                       'elixir 'erlang))
         (title (derl-node-info-reference-text module function arity language)))
    (derl-doc--heading (format "%s on %s" title node))
    (pcase result
      (`[text ,_ ,text ,_]
       (insert (string-trim-left (ansi-color-filter-apply
                                  (or (derl-node-info--string text) ""))
                                 "\n+")
               "\n"))
      (`[markdown ,_ ,moduledoc ,entries]
       (if function
           (dolist (entry entries)
             (derl-doc--insert-entry node module language entry details))
         (let ((text (derl-node-info--string moduledoc)))
           (insert (if text (derl-doc--markdown text) "(not documented)\n")))))
      (`[missing ,reason]
       (if (and details (not (derl-node-info-details-exists details)))
           (insert (format "%s has no module %s.\n" node
                           (derl-node-info-module-text module language)))
         (derl-doc--insert-missing node module function arity reason
                                   details)))
      (_ (insert (format "Unexpected answer from %s: %s\n" node
                         (derl-term-to-string result)))))
    (unless function
      (derl-doc--insert-functions node module language))
    (derl-doc--buttonize node module language)))

(defun derl-doc--show (node module function arity &optional interactive)
  "Show the documentation of MODULE, or of FUNCTION/ARITY, from NODE in *Help*.
INTERACTIVE non-nil is a user's request, for the help history."
  (help-setup-xref (list #'derl-doc--show node module function arity)
                   interactive)
  (with-help-window (help-buffer)
    (with-current-buffer standard-output
      (derl-doc--render node module function arity))))

(defun derl-doc-buffer (node module function arity)
  "A buffer with the documentation of MODULE's FUNCTION/ARITY from NODE.
For company's documentation popup."
  (let ((buffer (get-buffer-create " *derl-doc*")))
    (with-current-buffer buffer
      (let ((inhibit-read-only t))
        (erase-buffer)
        (derl-doc--render node module function arity)
        (goto-char (point-min))))
    buffer))

(defun derl-doc--reference-default ()
  "The reference at point as the buffer's language writes it, or nil."
  (let ((reference (derl-node-info-reference-at-point)))
    (when reference
      (pcase-let ((`(,module ,function ,arity . ,_) reference))
        (derl-node-info-reference-text
         (or module (derl-doc--local-module function)) function arity
         (derl-knowledge-buffer-language))))))

(defun derl-doc--local-module (function)
  "Return the module where a local call of FUNCTION is, as the node said."
  (let ((node (derl-knowledge-buffer-node))
        (found nil))
    (when node
      (dolist (module (derl-node-info-local-modules node))
        (unless found
          (let ((info (derl-node-info-get node (cons 'functions module))))
            (when (derl-node-info-lookup info function)
              (setq found module))))))
    (or found (car (derl-node-info-local-modules node)) "erlang")))

;;;###autoload
(defun derl-describe (reference &optional node)
  "Show the documentation of REFERENCE, a module or function, from NODE.
REFERENCE is written as the buffer's language writes it: lists,
lists:seq or lists:seq/2 in Erlang; Enum, Enum.map/2 or :lists.seq
in Elixir.  The documentation is the node's own (EEP 48 doc chunks),
shown in *Help*, with references to other functions as buttons;
where the node has none, its specs.  NODE is the buffer's node (see
`derl-knowledge-mode'); interactively, read REFERENCE with the one
at point as default."
  (interactive
   (let* ((node (derl-knowledge-buffer-node t))
          (language (derl-knowledge-buffer-language))
          (default (derl-doc--reference-default)))
     (list (completing-read (format-prompt "Describe on %s" default node)
                            (derl-complete-reference-table node language)
                            nil nil nil 'derl-doc--history default)
           node)))
  (let* ((node (derl--node-symbol (or node (derl-knowledge-buffer-node t))))
         (parsed (derl-node-info-parse-any-reference
                  (string-trim (string-remove-suffix
                                ":" (string-remove-suffix "." reference))))))
    (unless parsed
      (user-error "Not a module or function: %s" reference))
    (pcase-let ((`(,module ,function ,arity) parsed))
      (derl-doc--show node (or module (derl-doc--local-module function))
                      function arity (called-interactively-p 'any)))))

(provide 'derl-doc)

;;; derl-doc.el ends here

;;; derl-complete.el --- Completion of modules and functions from a node  -*- lexical-binding: t; -*-

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

;; `derl-complete-at-point', a function for
;; `completion-at-point-functions' (so the default UI, company and
;; corfu use it alike): the modules a node has, and the functions of
;; a module after `module:' (Erlang), or `Module.' and `:module.' (Elixir),
;; each with its arities and the first sentence of its documentation.
;; What the node says is kept (see derl-node-info.el): the first
;; completion of a module waits for the node at most
;; `derl-knowledge-wait' seconds, less when a key is typed.

;;; Code:

(require 'cl-lib)
(require 'subr-x)
(require 'derl-node-info)

(declare-function derl-doc-buffer "derl-doc" (node module function arity))

(defun derl-complete--back (regexp chars)
  "Where REGEXP matches the text before point, begun as early as it can.
The match begins among the CHARS (as `skip-chars-backward' takes
them) just before point on its line and ends at point; its match
data is kept.  Return where it begins, or nil."
  (let ((end (point))
        (found nil)
        (case-fold-search nil))
    (save-excursion
      (skip-chars-backward chars (line-beginning-position))
      (while (and (not found) (< (point) end))
        (if (and (looking-at regexp) (= (match-end 0) end))
            (setq found (point))
          (forward-char 1))))
    found))

(defun derl-complete--context ()
  "What is being completed at point: (WHAT MODULE START), or nil.
WHAT is `modules', `erlang-modules' or `functions'; MODULE the
module's Erlang name for functions; START where the text completed
begins."
  (if (eq (derl-knowledge-buffer-language) 'elixir)
      (cond
       ((derl-complete--back
         (concat "\\(?:\\(" derl-node-info--elixir-alias "\\)\\|:\\("
                 derl-node-info--erlang-atom "\\)\\)\\.\\("
                 derl-node-info--elixir-name "\\)?")
         "A-Za-z0-9_.:?!")
        (let ((alias (match-string-no-properties 1))
              (erlang (match-string-no-properties 2))
              (start (or (match-beginning 3) (point))))
          (unless (derl-complete--after-word-p (match-beginning 0))
            (list 'functions (if alias (derl-node-info-elixir-module alias)
                               erlang)
                  start))))
       ((derl-complete--back
         (concat ":\\(" derl-node-info--erlang-atom "\\)?") "A-Za-z0-9_@:")
        (let ((start (or (match-beginning 1) (point))))
          (unless (derl-complete--after-word-p (match-beginning 0))
            (list 'erlang-modules nil start))))
       ((derl-complete--back derl-node-info--elixir-alias "A-Za-z0-9_.")
        (unless (derl-complete--after-word-p (match-beginning 0))
          (list 'modules nil (match-beginning 0)))))
    (cond
     ((derl-complete--back
       (concat "\\(" derl-node-info--erlang-atom "\\):\\("
               derl-node-info--erlang-atom "\\)?")
       "A-Za-z0-9_@:")
      (let ((module (match-string-no-properties 1))
            (start (or (match-beginning 2) (point))))
        (unless (derl-complete--after-word-p (match-beginning 0))
          (list 'functions module start))))
     ((derl-complete--back derl-node-info--erlang-atom "A-Za-z0-9_@")
      (unless (or (derl-complete--after-word-p (match-beginning 0))
                  (memq (char-before (match-beginning 0)) '(?? ?# ?' ?:)))
        (list 'modules nil (match-beginning 0)))))))

(defun derl-complete--after-word-p (pos)
  "Non-nil if the text at POS continues a word or name begun before it."
  (and (> pos (point-min))
       (string-match-p "[A-Za-z0-9_@.]" (string (char-before pos)))))

(defun derl-complete--in-text-p ()
  "Non-nil if point is in a string or a comment."
  (let ((state (derl-node-info--parse-state (point))))
    (or (nth 3 state) (nth 4 state))))

(defun derl-complete--module (node module wait)
  "Return NODE's answer about MODULE, waiting at most WAIT seconds for it.
Say once what the node lacks."
  (let ((info (derl-node-info-await node (cons 'functions module) wait)))
    (when info
      (derl-node-info-note-missing node info 'docs))
    info))

(defun derl-complete--first-sentence (text)
  "The first sentence of TEXT, at most 80 characters."
  (let ((sentence (if (string-match "\\.\\(?: \\|\\'\\)" text)
                      (substring text 0 (1+ (match-beginning 0)))
                    text)))
    (truncate-string-to-width sentence 80 nil nil "...")))

(defun derl-complete-annotation (function)
  "The annotation of FUNCTION, a `derl-node-info-function': arities, summary."
  (let ((summary (derl-node-info-function-summary function)))
    (concat "/" (mapconcat #'number-to-string
                           (derl-node-info-function-arities function) ",")
            (if (eq (derl-node-info-function-kind function) 'macro)
                " (macro)" "")
            (if summary
                (concat "  " (derl-complete--first-sentence summary))
              ""))))

(defun derl-complete-functions (node module)
  "The names of MODULE's functions, from what NODE said, or nil."
  (let ((info (derl-node-info-get node (cons 'functions module))))
    (and info (derl-node-info-module-functions info)
         (hash-table-keys (derl-node-info-module-functions info)))))

(defun derl-complete--function-table (node module)
  "A completion table of MODULE's functions on NODE."
  (lambda (string predicate action)
    (if (eq action 'metadata)
        '(metadata (category . derl-function))
      (complete-with-action action (derl-complete-functions node module)
                            string predicate))))

(defun derl-complete--module-table (node names)
  "A completion table of NODE's modules, as NAMES gives them.
NAMES is a function of NODE returning a list of strings."
  (lambda (string predicate action)
    (if (eq action 'metadata)
        '(metadata (category . derl-module))
      (complete-with-action action (funcall names node) string predicate))))

(defun derl-complete--elixir-modules (node)
  "NODE's Elixir modules, as Elixir writes them."
  (cl-remove-if (lambda (m) (string-prefix-p ":" m))
                (derl-node-info-module-names node 'elixir)))

(defun derl-complete--erlang-modules (node)
  "NODE's Erlang modules, as Erlang writes them."
  (derl-node-info-module-names node 'erlang))

(defun derl-complete-at-point ()
  "Complete a module or function at point with what the buffer's node knows.
For `completion-at-point-functions'.  In Erlang: a module, or a
function after module:; in Elixir: a module (String, :lists), or a
function after `String.' or `:lists.'.  Functions are annotated with
their arities and the first sentence of their documentation."
  (let ((node (derl-knowledge-buffer-node)))
    (when node
      (let ((context (derl-complete--context)))
        (when (and context (not (derl-complete--in-text-p)))
          (pcase-let ((`(,what ,module ,start) context))
            (let ((end (save-excursion
                         (skip-chars-forward (if (eq what 'modules)
                                                 "A-Za-z0-9_@."
                                               "A-Za-z0-9_@?!"))
                         (point))))
              (pcase what
                ('functions
                 (derl-complete--module node module derl-knowledge-wait)
                 (derl-complete--function-capf node module start end))
                (_
                 (derl-node-info-await node 'modules derl-knowledge-wait)
                 (list start end
                       (derl-complete--module-table
                        node (if (eq what 'modules)
                                 (if (eq (derl-knowledge-buffer-language)
                                         'elixir)
                                     #'derl-complete--elixir-modules
                                   #'derl-complete--erlang-modules)
                               #'derl-complete--erlang-modules))
                       :exclusive 'no
                       :company-kind (lambda (_) 'module)))))))))))

(defun derl-complete--function-capf (node module start end)
  "The completion of MODULE's functions on NODE from START to END."
  (cl-flet ((function-of (name)
              (derl-node-info-lookup
               (derl-node-info-get node (cons 'functions module)) name)))
    (list start end (derl-complete--function-table node module)
          :exclusive 'no
          :annotation-function
          (lambda (name)
            (let ((f (function-of name)))
              (and f (derl-complete-annotation f))))
          :company-kind
          (lambda (name)
            (let ((f (function-of name)))
              (if (and f (eq (derl-node-info-function-kind f) 'macro))
                  'keyword 'function)))
          :company-docsig
          (lambda (name)
            (let ((f (function-of name)))
              (and f (derl-node-info-function-summary f)
                   (derl-complete--first-sentence
                    (derl-node-info-function-summary f)))))
          :company-doc-buffer
          (lambda (name)
            (ignore-errors (derl-doc-buffer node module name nil))))))

(defun derl-complete-reference-table (node language)
  "A completion table of references on NODE written in LANGUAGE.
Modules, then module:function (Erlang) or Module.function (Elixir),
for reading a reference in the minibuffer."
  (let ((separator (if (eq language 'elixir) "." ":")))
    (lambda (string predicate action)
      (if (eq action 'metadata)
          '(metadata (category . derl-reference))
        (let* ((position (if (eq language 'elixir)
                             (and (string-match "\\.[a-z_][A-Za-z0-9_?!]*\\'\\|\\.\\'"
                                                string)
                                  (match-beginning 0))
                           (string-search ":" string)))
               (parsed (and position
                            (derl-node-info-parse-reference
                             (substring string 0 position) language))))
          (if (and parsed (car parsed) (null (cadr parsed)))
              (let* ((prefix (substring string 0 (1+ position)))
                     (names (progn (derl-node-info-await
                                    node (cons 'functions (car parsed))
                                    derl-knowledge-wait)
                                   (derl-complete-functions node (car parsed)))))
                (if (eq action 'boundaries)
                    nil
                  (complete-with-action
                   action (mapcar (lambda (n) (concat prefix n)) names)
                   string predicate)))
            (derl-node-info-await node 'modules derl-knowledge-wait)
            (complete-with-action
             action
             (mapcar (lambda (m) (concat m separator))
                     (if (eq language 'elixir)
                         (derl-node-info-module-names node 'elixir)
                       (derl-node-info-module-names node 'erlang)))
             string predicate)))))))

(provide 'derl-complete)

;;; derl-complete.el ends here

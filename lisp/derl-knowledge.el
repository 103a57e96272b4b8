;;; derl-knowledge.el --- Completion, eldoc, docs and M-. from a live node  -*- lexical-binding: t; -*-

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

;; `derl-knowledge-mode', a buffer-local minor mode that makes a
;; buffer's completion (`completion-at-point'), eldoc, documentation
;; (C-c C-d d, `derl-describe') and `M-.' (xref) ask the buffer's node,
;; for Erlang and Elixir alike, with nothing uploaded to the node.
;; It follows derl-mode in source buffers, and the node's shell
;; buffers turn it on; any buffer may have it, with
;; `derl-knowledge-node' set or a node given when asked.
;;
;; The parts: derl-node-info.el asks and remembers, derl-complete.el
;; completes, derl-doc.el documents, derl-xref.el finds definitions.

;;; Code:

(require 'eldoc)
(require 'derl-node-info)
(require 'derl-complete)
(require 'derl-doc)
(require 'derl-xref)

(declare-function derl-shell-eof "derl-shell" ())

(defun derl-knowledge--in-shell (command)
  "COMMAND, in a node's shell buffer only: a key's menu-item filter."
  (and (derived-mode-p 'derl-shell-mode) command))

(defvar derl-knowledge-mode-map
  (let ((map (make-sparse-keymap)))
    (define-key map (kbd "C-c C-d d") #'derl-describe)
    ;; erlang-mode has its tags' completion there.
    (define-key map (kbd "C-M-i") #'completion-at-point)
    ;; C-c C-d is this prefix now; end of file moves to C-c C-d C-d
    ;; in the node's shell.
    (define-key map (kbd "C-c C-d C-d")
                '(menu-item "" derl-shell-eof
                            :filter derl-knowledge--in-shell))
    map)
  "Keys of `derl-knowledge-mode'.")

(defconst derl-knowledge--eldoc-strategies
  '(eldoc-documentation-default eldoc-documentation-compose
    eldoc-documentation-compose-eagerly eldoc-documentation-enthusiast)
  "The strategies that run `eldoc-documentation-functions'.")

(defun derl-knowledge--eldoc-strategy (on)
  "Have eldoc run `eldoc-documentation-functions' first if ON, else undo it.
A major mode may set a strategy of its own that runs no such
function: erlang-mode's, with erldoc, for one.  That one stays, tried
when no function of the hook answers."
  (if on
      (when (and (local-variable-p 'eldoc-documentation-strategy)
                 (not (memq eldoc-documentation-strategy
                            derl-knowledge--eldoc-strategies)))
        (add-function :before-until (local 'eldoc-documentation-strategy)
                      #'eldoc-documentation-default))
    (when (local-variable-p 'eldoc-documentation-strategy)
      (remove-function (local 'eldoc-documentation-strategy)
                       #'eldoc-documentation-default))))

(defun derl-knowledge--prefetch ()
  "Ask the buffer's node for its modules now, if it is connected."
  (let ((node (derl-knowledge-buffer-node)))
    (when (and node
               (let ((conn (gethash node derl--connections)))
                 (and conn (eq (derl-connection-state conn) 'up))))
      (derl-node-info-get node 'modules))))

;;;###autoload
(define-minor-mode derl-knowledge-mode
  "Completion, eldoc, documentation and `M-.' from the buffer's live node.
Completion (\\[completion-at-point], or company or corfu) offers the
node's modules, and a module's functions after `module:' (Erlang) or
`Module.' (Elixir), with their arities and documentation; eldoc shows
the spec and documentation of the function called at point;
\\[derl-describe] shows a module's or function's documentation;
\\[xref-find-definitions] goes to a definition, where the node says it
is, and \\[xref-pop-marker-stack] back.
Everything is asked of the node, which runs nothing but its own
functions, and remembered (see `derl-knowledge-refresh').

The node is `derl-knowledge-node', or that of the shell session or
of `derl-mode'.

\\{derl-knowledge-mode-map}"
  :lighter nil
  :keymap derl-knowledge-mode-map
  :group 'derl
  (if derl-knowledge-mode
      (progn
        (add-hook 'completion-at-point-functions #'derl-complete-at-point nil t)
        (add-hook 'eldoc-documentation-functions #'derl-doc-eldoc nil t)
        (derl-knowledge--eldoc-strategy t)
        (add-hook 'xref-backend-functions #'derl-xref-backend nil t)
        (when (and (bound-and-true-p global-eldoc-mode)
                   (not (bound-and-true-p eldoc-mode)))
          (eldoc-mode 1))
        (derl-knowledge--prefetch))
    (remove-hook 'completion-at-point-functions #'derl-complete-at-point t)
    (remove-hook 'eldoc-documentation-functions #'derl-doc-eldoc t)
    (derl-knowledge--eldoc-strategy nil)
    (remove-hook 'xref-backend-functions #'derl-xref-backend t)))

(custom-add-to-group 'derl 'derl-knowledge-mode-hook 'custom-variable)

(defvar derl-mode)

(defun derl-knowledge--follow-derl-mode ()
  "Turn `derl-knowledge-mode' on or off with `derl-mode'."
  (derl-knowledge-mode (if derl-mode 1 -1)))

;; derl-mode's source buffers ask their project's node.
(add-hook 'derl-mode-hook #'derl-knowledge--follow-derl-mode)

(provide 'derl-knowledge)

;;; derl-knowledge.el ends here

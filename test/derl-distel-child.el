;;; derl-distel-child.el --- a fresh Emacs running Distel on derl, for the tests  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; test/derl-distel-tests.el starts a batch Emacs with this file and
;; calls `derl-distel-child-run': it sets up Distel as a user would
;; (`derl-distel-setup'), evaluates the test's forms and prints their
;; value after "DERL-RESULT: ".  A fresh Emacs per test keeps Distel's
;; definitions and hooks out of the other suites, and lets a test
;; restart Emacs under the same node name.

;;; Code:

(require 'cl-lib)

(defvar derl-distel-child-node nil "The node under test.")
(defvar erl-nodename-cache)

(defun derl-distel-child-wait (predicate &optional timeout)
  "Wait up to TIMEOUT seconds (default 30) until PREDICATE returns non-nil.
Return its value, or signal an error naming PREDICATE."
  (let ((deadline (+ (float-time) (or timeout 30)))
        (value nil))
    (while (and (not (setq value (funcall predicate)))
                (< (float-time) deadline))
      (accept-process-output nil 0.05))
    (or value (error "Timed out waiting for %S" predicate))))

(defun derl-distel-child-message-p (regexp)
  "Return the text of the last line of *Messages* matching REGEXP, or nil."
  (with-current-buffer (messages-buffer)
    (save-excursion
      (goto-char (point-max))
      (and (re-search-backward regexp nil t)
           (buffer-substring (line-beginning-position) (line-end-position))))))

(defun derl-distel-child-buffer-text (name)
  "The text of buffer NAME, or nil when there is none."
  (and (get-buffer name)
       (with-current-buffer name (buffer-substring-no-properties
                                  (point-min) (point-max)))))

(defun derl-distel-child-run (settings form)
  "Set up Distel with SETTINGS, evaluate FORM, print its value and exit.
SETTINGS is a plist: :cookie, :epmd-port, :node-name (set with
`setq' when :setq is non-nil), :distel, :cache and :node; :before,
a form evaluated before `derl-distel-setup' runs.  With :setup, a
list of forms (README's set-up, say), those forms set everything up
instead, and only :epmd-port, :node and :before are used."
  (let ((debug-on-error nil)
        (code 0))
    (condition-case err
        (progn
          (require 'derl)
          (require 'derl-rpc)
          (setq derl-epmd-port (plist-get settings :epmd-port)
                erl-popup-on-output nil
                derl-distel-child-node (plist-get settings :node))
          (if (plist-get settings :setup)
              (progn
                (eval (plist-get settings :before) t)
                (dolist (setup-form (plist-get settings :setup))
                  (eval setup-form t)))
            (setq derl-cookie (plist-get settings :cookie))
            (if (plist-get settings :setq)
                ;; As many users do, after derl is loaded.
                (setq erl-node-name (plist-get settings :node-name))
              (customize-set-variable 'erl-node-name
                                      (plist-get settings :node-name)))
            (eval (plist-get settings :before) t)
            (require 'derl-distel)
            (setq derl-distel-cache-directory (plist-get settings :cache))
            (derl-distel-setup (plist-get settings :distel)))
          (setq erl-nodename-cache derl-distel-child-node)
          ;; One line of ASCII, whatever the locale.
          (let ((value (eval form t))
                (print-escape-newlines t)
                (print-escape-multibyte t)
                (print-escape-nonascii t))
            (princ (format "DERL-RESULT: %S\n" value))))
      (error (setq code 1)
             (princ (format "DERL-ERROR: %S\n" err))))
    (kill-emacs code)))

(provide 'derl-distel-child)

;;; derl-distel-child.el ends here

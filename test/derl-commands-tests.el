;;; derl-commands-tests.el --- what the commands say in the first hour  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; The commands as a new user meets them: a misspelled node, a wrong
;; cookie, a stalled EPMD, the node list, Distel's nodeup and nodedown
;; lines.  Each says the real cause at once, in one sentence, and only
;; names that connected are proposed again.

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'derl-ert)
(require 'derl-tests)
(require 'derl-ui-tests)
(require 'derl-listen-tests)
(require 'derl)
(require 'derl-commands)
(require 'derl-eval)
(require 'derl-list)

(defun derl-commands--absent ()
  "A node name nobody registered."
  (intern (format "absent%s@localhost" (derl-test-random-string 6))))

(ert-deftest derl-commands-failed-names-are-not-proposed ()
  "A name that never connected is neither the default nor in the history."
  (derl-test-with-node (node)
    (let ((derl-node-history nil)
          (derl-last-node nil)
          (absent (derl-commands--absent)))
      ;; As `completing-read' leaves them.
      (push (symbol-name node) derl-node-history)
      (should (derl-connect-interactively node))
      (push (symbol-name absent) derl-node-history)
      (should-not (derl-connect-interactively absent))
      (should (eq derl-last-node node))
      (should (eq (derl-default-node) node))
      (should-not (member (symbol-name absent) derl-node-history))
      (should (member (symbol-name node) derl-node-history))
      ;; Evaluating on it: the same.
      (push (symbol-name absent) derl-node-history)
      (derl-eval-expression "1 + 1" absent)
      (should (eq derl-last-node node))
      (should-not (member (symbol-name absent) derl-node-history)))))

(ert-deftest derl-commands-eval-says-the-cause ()
  "Evaluating on a misspelled node says it is not registered, at once."
  (derl-test-configure)
  (let ((absent (derl-commands--absent))
        (start (derl-ui--messages-end)))
    (derl-eval-expression "1 + 1" absent)
    (let ((said (derl-ui--messages-since start)))
      (should (string-match-p
               (format "Cannot evaluate on %s: EPMD error: .*not registered"
                       absent)
               said))
      (should-not (string-match-p "went down during" said)))))

(ert-deftest derl-commands-errors-read-as-one-sentence ()
  "Reasons carry no doubled prefix and no quotes; a cookie error gives the fix."
  (should (equal (derl-error-reason
                  '(derl-connect-error "x@y: the node refused it"))
                 "the node refused it"))
  (should (equal (derl-error-reason '(derl-epmd-error "x@y: not registered"))
                 "EPMD error: not registered"))
  (derl-test-with-node (node)
    (let ((derl-cookie "wrongwrongwrong")
          (derl-node-cookies nil)
          (start (derl-ui--messages-end)))
      (should-not (derl-connect-interactively node))
      (let ((said (derl-ui--messages-since start)))
        (should (string-match-p "C-u M-x erl-connect" said))
        (should-not (string-match-p "\"" said))
        (should-not (string-match-p "wrongwrongwrong" said))))))

(ert-deftest derl-commands-stalled-epmd-says-where ()
  "An EPMD that takes the connection and never answers is named, with its port."
  (derl-test-configure)
  (let* ((server (make-network-process :name "derl-stalled-epmd" :server t
                                       :host 'local :service t
                                       :noquery t :filter #'ignore))
         (port (process-contact server :service))
         (derl-epmd-port port)
         (derl-connect-timeout 1))
    (unwind-protect
        (let ((err (should-error (derl-connect (derl-commands--absent)))))
          (should (eq (car err) 'derl-timeout))
          (should (string-match-p
                   (format "EPMD at localhost port %d did not answer" port)
                   (cadr err))))
      (delete-process server))))

(ert-deftest derl-commands-name-kinds-say-what-works ()
  "Short and long names that cannot mix say which `erl-node-name' would do."
  (let ((erl-node-name 'emacs@localhost))
    (let ((err (should-error (derl--check-name-kinds 'n@host.example.org
                                                     "host.example.org"
                                                     "localhost"))))
      (should (string-match-p "such as emacs@host.example.org" (cadr err))))))

(ert-deftest derl-commands-nodeup-nodedown-messages ()
  "Connecting and disconnecting say nodeup and nodedown, as Distel did."
  (derl-test-with-node (node)
    (let ((start (derl-ui--messages-end)))
      (derl-connect node)
      (derl-disconnect node)
      (derl-test-wait (lambda () (not (gethash node derl--connections))))
      (let ((said (derl-ui--messages-since start)))
        (should (string-match-p (format "^nodeup: %s$" node) said))
        (should (string-match-p (format "^nodedown: %s$" node) said))))
    (let ((start (derl-ui--messages-end))
          (erl-report-nodes nil))
      (derl-connect node)
      (derl-disconnect node)
      (derl-test-wait (lambda () (not (gethash node derl--connections))))
      (should-not (string-match-p "nodeup\\|nodedown"
                                  (derl-ui--messages-since start))))))

(ert-deftest derl-commands-list-shows-incoming-rows ()
  "An incoming connection shows when it came up, and stays \"in\" once down."
  (derl-listen-with-node
    (let ((node nil))
      (should (equal (derl-listen-ping) "pong"))
      (maphash (lambda (n conn)
                 (when (derl-connection-incoming conn)
                   (setq node n)))
               derl-list--known)
      (should node)
      (let ((cells (cadr (assq node (derl-list-entries)))))
        (should (equal (aref cells 2) "in"))
        (should-not (equal (aref cells 8) "-")))
      (derl-test-wait (lambda () (not (memq node (derl-nodes)))))
      (let ((cells (cadr (assq node (derl-list-entries)))))
        (should (equal (aref cells 2) "in"))))))

(ert-deftest derl-commands-list-keys-stay-out-of-m-x ()
  "The node list's own commands are for its buffer only."
  (dolist (command '(derl-list-show-trace derl-list-disconnect derl-list-eval))
    (should (equal (command-modes command) '(derl-list-mode)))))

(provide 'derl-commands-tests)

;;; derl-commands-tests.el ends here

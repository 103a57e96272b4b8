;;; derl-bounds-tests.el --- what one message may cost Emacs, and quits while it is made  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; A message's bytes on the wire say little about what it costs Emacs:
;; an empty map is 5 bytes and a hash table of some 300.  The module
;; estimates what each message will build before it builds anything,
;; and refuses one over `derl-max-message-memory' with a trace line and
;; an entry in *erl-lost-msgs*, the connection staying up.  A quit
;; while the module makes events from messages loses none of them: it
;; hands over what it made and keeps the rest.  Real epmd and erl
;; nodes, as in derl-tests.el.

;;; Code:

(require 'cl-lib)
(require 'derl)
(require 'derl-eval)
(require 'derl-trace)
(require 'erl)
(require 'ert)
(require 'derl-ert)
;; For `derl-test-with-node', `derl-test-inbox' and the waits.
(require 'derl-tests)

(defun derl-bounds--trace (node)
  "The text of NODE's trace buffer, or nil if it has none."
  (derl-trace-flush)
  (let ((buffer (get-buffer (format "*trace %s*" node))))
    (and buffer (with-current-buffer buffer
                  (buffer-substring-no-properties (point-min) (point-max))))))

(defun derl-bounds--lost ()
  "The text of *erl-lost-msgs*."
  (with-current-buffer (get-buffer-create "*erl-lost-msgs*")
    (buffer-substring-no-properties (point-min) (point-max))))

(defun derl-bounds--registered-inbox ()
  "A process keeping every message it gets, under a fresh name.
Return (NAME PID . BOX), as `derl-test-inbox' with the name before."
  (let ((inbox (derl-test-inbox))
        (name (intern (concat "bounds" (derl-test-random-string 8)))))
    (erl-register name (car inbox))
    (cons name inbox)))

(defun derl-bounds--send-from-node (node name &rest terms)
  "Have NODE send each of TERMS, Erlang expressions, to Emacs's NAME."
  (derl-eval node
             (concat (mapconcat (lambda (term)
                                  (format "{'%s', '%s'} ! (%s)" name
                                          erl-node-name term))
                                terms ", ")
                     ", ok")
             60))

(defun derl-bounds--consed ()
  "Conses and vector cells Emacs has allocated so far, in bytes."
  (let ((counts (memory-use-counts)))
    (+ (* 16 (nth 0 counts)) (* 8 (nth 2 counts)))))

(defun derl-bounds--rss ()
  "Emacs's resident memory now, in bytes."
  (with-temp-buffer
    (insert-file-contents "/proc/self/status")
    (if (re-search-forward "^VmRSS:\\s-*\\([0-9]+\\)" nil t)
        (* 1024 (string-to-number (match-string 1)))
      0)))

(ert-deftest derl-bounds-empty-maps-refused ()
  "Messages of empty maps whose Lisp form is over the limit are refused.
600,000 empty maps are 3 MB on the wire and some 160 MB as hash
tables: over a limit of 64 MB, so not built, and said so in the
trace and *erl-lost-msgs*.  2,200,000 are over the default limit
too.  The connection stays up and the next message arrives; what
Emacs allocated meanwhile is a small fraction of the refused."
  (derl-test-with-node (node)
    (let ((derl-use-trace-buffer t))
      (derl-connect node)
      (let* ((inbox (derl-bounds--registered-inbox))
             (name (car inbox))
             (box (cddr inbox))
             (conn (gethash node derl--connections))
             (consed (derl-bounds--consed))
             (rss (derl-bounds--rss)))
        (let ((derl-max-message-memory (* 64 1024 1024)))
          (derl-bounds--send-from-node
           node name "{small, lists:duplicate(600000, #{})}" "after_small")
          (derl-test-await-message (cons nil box)
                                   (lambda (m) (eq m 'after_small))))
        (derl-bounds--send-from-node
         node name "{default, lists:duplicate(2200000, #{})}" "after_default")
        (derl-test-await-message (cons nil box)
                                 (lambda (m) (eq m 'after_default)))
        (let ((consed (- (derl-bounds--consed) consed))
              (rss (- (derl-bounds--rss) rss)))
          (message "derl-bounds: refused 160 MB and 600 MB of maps; \
Emacs allocated %d bytes, its RSS grew by %d" consed rss)
          ;; Built, the two would be 750 MB.
          (should (< consed (* 20 1024 1024))))
        ;; Only the markers arrived; both refusals say so.
        (should (equal (car box) '(after_default after_small)))
        (let ((trace (derl-bounds--trace node))
              (lost (derl-bounds--lost)))
          (should (string-match-p
                   (format "^<< \\*\\* lost a message of ~1[0-9][0-9] MB \
to %s in Emacs (over `derl-max-message-memory'" name)
                   trace))
          (should (string-match-p
                   (format "^<< \\*\\* lost a message of ~[5-6][0-9][0-9] \
MB to %s in Emacs" name)
                   trace))
          (should (string-match-p
                   (format "^to %s: {'too-big',[0-9]+}$" name) lost)))
        (should (eq (derl-connection-state conn) 'up))
        (should (eq (gethash node derl--connections) conn))))))

(ert-deftest derl-bounds-big-messages-under-limit-arrive ()
  "Big messages whose Lisp form is under the limit arrive whole.
A 20 MB binary, and 300,000 small tuples under a limit set a third
above their estimate: the estimate does not refuse what fits."
  (derl-test-with-node (node)
    (derl-connect node)
    (let* ((inbox (derl-bounds--registered-inbox))
           (name (car inbox))
           (box (cddr inbox))
           ;; A cons, a vector of 2 and a string of 1: 104 bytes each.
           (derl-max-message-memory (round (* 1.3 104 300000))))
      (derl-bounds--send-from-node
       node name "{bin, binary:copy(<<\"ab\">>, 10000000)}"
       "{tuples, [{I, <<\"x\">>} || I <- lists:seq(1, 300000)]}")
      (let ((bin (derl-test-await-message
                  (cons nil box) (lambda (m) (eq (aref m 0) 'bin)) 60))
            (tuples (derl-test-await-message
                     (cons nil box) (lambda (m) (eq (aref m 0) 'tuples)) 60)))
        (should (= (length (aref bin 1)) 20000000))
        (should (string-prefix-p "abab" (aref bin 1)))
        (let ((list (aref tuples 1)))
          (should (= (length list) 300000))
          (should (equal (car list) [1 "x"]))
          (should (equal (car (last list)) [300000 "x"])))))))

(defun derl-bounds--take-with-quit (inhibit quit-after)
  "Call `derl--module-events', with `inhibit-quit' bound to INHIBIT.
With QUIT-AFTER a number, `quit-flag' is set (as \\[keyboard-quit]
sets it) when the module makes its QUIT-AFTER-th vector.  Return
\(EVENTS . QUIT): what the call returned, and whether a quit came
out of it or was left in `quit-flag'."
  (let ((calls 0)
        ;; As outside ERT, which enters its debugger on a quit.
        (debug-on-quit nil)
        events quit)
    (cl-flet ((quit-at (&rest _)
                (when (eql (cl-incf calls) quit-after)
                  (setq quit-flag t))))
      (advice-add 'vector :before #'quit-at)
      (unwind-protect
          (let ((inhibit-quit t))
            (condition-case nil
                (setq events (let ((inhibit-quit inhibit))
                               (derl--module-events nil nil nil 0)))
              (quit (setq quit 'signalled)))
            (when quit-flag
              (setq quit 'left
                    quit-flag nil)))
        (advice-remove 'vector #'quit-at)))
    (cons events quit)))

(defun derl-bounds--pending-messages (node count)
  "Have NODE send COUNT messages to Emacs and wait until all are pending.
Message I is {I, [{1, 1}, ..., {3000, 3000}]}.  Nothing takes them
from the module meanwhile: the caller has stopped the event filter."
  (let* ((inbox (derl-bounds--registered-inbox))
         (id (derl-connection-id (gethash node derl--connections)))
         (want nil)
         (deadline (+ (float-time) 20)))
    (derl-eval node (format "spawn(fun () -> timer:sleep(300), \
[{'%s', '%s'} ! {I, [{J, J} || J <- lists:seq(1, 3000)]} \
 || I <- lists:seq(1, %d)] end), ok" (car inbox) erl-node-name count))
    (setq want (+ count (nth 1 (derl--module-stats id))))
    (while (and (< (nth 1 (derl--module-stats id)) want)
                (< (float-time) deadline))
      (accept-process-output nil 0.02))))

(defun derl-bounds--messages (events)
  "The messages of the frames in EVENTS, none of them a `bad-frame'.
The frames come untraced: (frames ID CONTROL MESSAGE ...)."
  (cl-loop for e in events
           do (should-not (eq (car e) 'bad-frame))
           when (eq (car e) 'frames)
           append (cl-loop for (_control message) on (cddr e) by #'cddr
                           collect message)))

(defun derl-bounds--check-whole (messages numbers)
  "MESSAGES are the test messages NUMBERS, in order, each whole."
  (should (equal (mapcar (lambda (m) (aref m 0)) messages) numbers))
  (dolist (m messages)
    (should (= (length (aref m 1)) 3000))
    (should (equal (car (last (aref m 1))) [3000 3000]))))

(defmacro derl-bounds--without-filter (&rest body)
  "Run BODY with the event filter stopped: only BODY takes events."
  (declare (indent 0))
  `(let ((filter (process-filter derl--events-process)))
     (unwind-protect
         (progn (set-process-filter derl--events-process #'ignore)
                ,@body)
       (set-process-filter derl--events-process filter)
       ;; Events left wake Lisp again.
       (derl--module-wait-events nil))))

(ert-deftest derl-bounds-quit-in-filter-keeps-events ()
  "A quit while the module makes events, quits inhibited, loses none.
So the event filter runs.  Four messages of 3,000 tuples wait in the
module; a quit comes while the second is decoded (`quit-flag' set in
the middle, as \\[keyboard-quit] sets it).  `derl--module-events'
stops soon after, hands over the first, and leaves `quit-flag' set
for the caller; the next call gives the other three, whole, and no
`bad-frame'."
  (derl-test-with-node (node)
    (derl-connect node)
    (let (first second)
      (derl-bounds--without-filter
        (derl-bounds--pending-messages node 4)
        (setq first (derl-bounds--take-with-quit t 5000)
              second (derl-bounds--take-with-quit t nil)))
      (should (eq (cdr first) 'left))
      (derl-bounds--check-whole (derl-bounds--messages (car first)) '(1))
      (should-not (cdr second))
      (derl-bounds--check-whole (derl-bounds--messages (car second))
                                '(2 3 4)))))

(ert-deftest derl-bounds-quit-in-wait-keeps-events ()
  "A quit while the module makes events, quits allowed, loses none.
So a wait for a reply calls it.  The quit comes out of
`derl--module-events' as any quit; every message stays pending, and
the next call gives all four, whole, and no `bad-frame'."
  (derl-test-with-node (node)
    (derl-connect node)
    (let (first second)
      (derl-bounds--without-filter
        (derl-bounds--pending-messages node 4)
        (setq first (derl-bounds--take-with-quit nil 5000)
              second (derl-bounds--take-with-quit nil nil)))
      (should (equal first '(nil . signalled)))
      (should-not (cdr second))
      (derl-bounds--check-whole (derl-bounds--messages (car second))
                                '(1 2 3 4)))))

(ert-deftest derl-bounds-term-emacs-cannot-hold ()
  "A message with a term Emacs cannot hold is dropped; the connection stays.
An integer past `integer-width' cannot become a Lisp value: the
module hands over a bad-frame event instead, which says why in the
echo area and the trace, and the next messages come as usual."
  (derl-test-with-node (node)
    (derl-connect node)
    (let ((inbox (derl-test-inbox))
          (derl-use-trace-buffer t)
          (trace (lambda ()
                   (derl-trace-flush)
                   (with-current-buffer (derl-trace-node-buffer node)
                     (buffer-string)))))
      (erl-register 'derl_bounds_test (car inbox))
      (unwind-protect
          (progn
            (derl-eval node (format "{derl_bounds_test, '%s'} ! \
{big, 1 bsl %d}, ok"
                                    erl-node-name (1+ integer-width)))
            (derl-test-wait
             (lambda ()
               (string-match-p "<< \\*\\* dropped a message: integer too large \
for Emacs" (funcall trace))))
            (erl-send (derl-test-echo node) (vector (car inbox) 'after))
            (derl-test-await-message inbox (lambda (m) (eq m 'after)))
            (should (equal (cadr inbox) '(after)))
            (should (memq node (derl-nodes))))
        (erl-unregister 'derl_bounds_test)))))

(provide 'derl-bounds-tests)

;;; derl-bounds-tests.el ends here

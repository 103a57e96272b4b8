;;; derl-hostile-lisp-tests.el --- hostile peers and careless callers, the Lisp side  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; What the Lisp layer must withstand: terms the trace cannot print,
;; messages nobody can take, a fake node (test/erl/derl_liar.erl) that
;; addresses other nodes' processes, failing nodes asked again and
;; again, runaway handlers, bad ports and cookies, and waits given up.
;; Real epmd and erl nodes throughout, as in derl-tests.el.

;;; Code:

(require 'cl-lib)
(require 'derl)
(require 'derl-trace)
(require 'epmd)
(require 'erl)
(require 'ert)
(require 'derl-ert)
;; For `derl-test-configure', `derl-test-with-node' and the inbox.
(require 'derl-tests)

;;;; Helpers

(defun derl-hostile-lisp--nested (depth leaf make)
  "A term DEPTH levels deep around LEAF, each level made by MAKE."
  (let ((term leaf))
    (dotimes (_ depth)
      (setq term (funcall make term)))
    term))

(defun derl-hostile-lisp--map (value)
  "A map with the single key `k' holding VALUE."
  (let ((h (make-hash-table :test 'equal)))
    (puthash 'k value h)
    h))

(defun derl-hostile-lisp--trace (node)
  "The text of NODE's trace buffer, or nil if it has none."
  (derl-trace-flush)
  (let ((buffer (get-buffer (format "*trace %s*" node))))
    (and buffer (with-current-buffer buffer
                  (buffer-substring-no-properties (point-min) (point-max))))))

(defun derl-hostile-lisp--lost ()
  "The text of *erl-lost-msgs*."
  (with-current-buffer (get-buffer-create "*erl-lost-msgs*")
    (buffer-substring-no-properties (point-min) (point-max))))

(defun derl-hostile-lisp--node-output (node)
  "The output buffer of the test node NODE."
  (process-buffer (cl-find node derl-test--nodes
                           :key (lambda (p) (process-get p 'node)))))

(defmacro derl-hostile-lisp--with-liar (var &rest body)
  "Start the fake node derl_liar, bind VAR to its name, run BODY, stop it."
  (declare (indent 1))
  `(let* ((name (concat "liar" (derl-test-random-string 6)))
          (,var (intern (concat name "@localhost")))
          (buffer (generate-new-buffer " *derl-liar*"))
          (process-environment (derl-test-erl-environment))
          (proc (start-process "derl-liar" buffer "erl" "-noshell"
                               "-pa" derl-test-ebin "-run" "derl_liar"
                               "start" name derl-test-cookie)))
     (set-process-query-on-exit-flag proc nil)
     (unwind-protect
         (progn
           (with-current-buffer buffer
             (derl-test-wait (lambda ()
                               (string-match-p "derl_liar ready"
                                               (buffer-string)))))
           ,@body)
       (ignore-errors (derl-disconnect ,var))
       (when (process-live-p proc) (kill-process proc))
       (kill-buffer buffer))))

(defun derl-hostile-lisp--puppet (liar frames)
  "Have LIAR send FRAMES to Emacs: each [CONTROL] or [CONTROL MESSAGE]."
  (erl-send (vector 'puppet liar) (vector 'puppet frames)))

(defun derl-hostile-lisp--pid (node id &optional creation)
  "A pid of NODE numbered ID, with CREATION (default 1)."
  (vector erl-tag 'erl-pid node id 0 (or creation 1)))

;;;; The trace never stands in the way of delivery

(ert-deftest derl-hostile-lisp-deep-terms-traced-and-delivered ()
  "Tuples and maps nested 250 deep cross both ways with the trace on."
  (derl-test-with-node (node)
    (let ((derl-use-trace-buffer t))
      (derl-connect node)
      (let ((inbox (derl-test-inbox))
            (tuple (derl-hostile-lisp--nested 250 'leaf #'vector))
            (map (derl-hostile-lisp--nested 250 'leaf
                                            #'derl-hostile-lisp--map)))
        (erl-send (derl-test-echo node) (vector (car inbox) (vector 't tuple)))
        (erl-send (derl-test-echo node) (vector (car inbox) (vector 'm map)))
        (let ((back-tuple (derl-test-await-message
                           inbox (lambda (m) (and (vectorp m)
                                                  (eq (aref m 0) 't)))))
              (back-map (derl-test-await-message
                         inbox (lambda (m) (and (vectorp m)
                                                (eq (aref m 0) 'm))))))
          ;; `equal' itself gives up at depth 200: walk down instead.
          (let ((x (aref back-tuple 1)))
            (dotimes (_ 250)
              (should (and (vectorp x) (= (length x) 1)))
              (setq x (aref x 0)))
            (should (eq x 'leaf)))
          (let ((m (aref back-map 1)))
            (dotimes (_ 250)
              (should (hash-table-p m))
              (setq m (gethash 'k m)))
            (should (eq m 'leaf))))
        (let ((trace (derl-hostile-lisp--trace node)))
          (should (string-match-p "^>> REG_SEND: .* echo {<.*>,{t,{{{{" trace))
          (should (string-match-p "^<< SEND_SENDER: .* {m,#{k => #{k => "
                                  trace)))))))

(ert-deftest derl-hostile-lisp-trace-printer-is-bounded ()
  "Printing a term costs what the line needs, whatever the term's size."
  (let* ((derl-trace-term-length 300)
         (big (make-string (* 20 1024 1024) ?x))
         (before (nth 5 (memory-use-counts)))
         (text (derl-trace-term (vector 'big big (erl-binary big))))
         (chars (- (nth 5 (memory-use-counts)) before)))
    ;; String characters allocated: a few lines' worth, not 20 MB.
    (should (< chars 100000))
    (should (<= (length text) 303))
    (should (string-prefix-p "{big,\"xxx" text)))
  ;; A pid whose node name is 1 MB, an atom as long.
  (let ((huge (intern (make-string (* 1024 1024) ?n))))
    (should (<= (length (derl-trace-term (vector erl-tag 'erl-pid huge 1 0 1)))
                303))
    (should (<= (length (derl-trace-term (list huge huge))) 303)))
  ;; Circular and self-containing terms end too.
  (let ((circular (list 1 2 3))
        (self (make-vector 2 nil)))
    (setcdr (last circular) circular)
    (aset self 1 self)
    (should (<= (length (derl-trace-term circular)) 303))
    (should (<= (length (derl-trace-term self)) 303))
    (should (string-prefix-p "[1,2,3,1,2,3," (derl-trace-term circular))))
  ;; Erlang's way of writing terms.
  (let ((map (make-hash-table :test 'equal)))
    (puthash 'k (erl-binary "v") map)
    (should (equal (derl-trace-term
                    (vector 'a (vector erl-tag 'erl-pid 'n@h 1 0 7) map
                            '(1 2) nil "s" '(1 . 2) 'Quoted))
                   "{a,<n@h.1.0>,#{k => <<\"v\">>},[1,2],[],\"s\",[1|2],'Quoted'}"))))

;;;; Messages nobody can take are recorded

(ert-deftest derl-hostile-lisp-message-to-dead-process-recorded ()
  "A message from a node to a local process that has exited is recorded.
The trace line names the pid in full, creation included, and the
message lands in *erl-lost-msgs*, as Distel logs messages to the null
process."
  (derl-test-with-node (node)
    (let ((derl-use-trace-buffer t))
      (derl-connect node)
      (let* ((inbox (derl-test-inbox))
             (dead (erl-spawn nil))
             (token (intern (concat "lost-" (derl-test-random-string 8)))))
        (should-not (erl-local-pid-alive-p dead))
        (erl-send (derl-test-echo node) (vector dead token))
        (erl-send (derl-test-echo node) (vector (car inbox) 'marker))
        (derl-test-await-message inbox (lambda (m) (eq m 'marker)))
        (should (string-match-p
                 (format "^<< \\*\\* lost SEND\\(_SENDER\\)?: no process \
<%s\\.%d\\.0> (creation %d): '%s'"
                         (regexp-quote (symbol-name erl-node-name))
                         (erl-pid-id dead) erl-node-creation token)
                 (derl-hostile-lisp--trace node)))
        (should (string-match-p
                 (format "to <[^>]*\\.%d\\.0> (creation %d): '%s'"
                         (erl-pid-id dead) erl-node-creation token)
                 (derl-hostile-lisp--lost)))))))

;;;; Emacs does no peer's bidding

(ert-deftest derl-hostile-lisp-no-relaying ()
  "Signals a fake node addresses to a third node's pid are dropped.
The third node receives nothing and no connection to it is made;
signals claiming to come from its processes are dropped too.  A
message to this Emacs's node name with another creation is lost,
and recorded as such."
  (derl-test-configure)
  (let* ((third (derl-test-start-node "-s" "derl_liar" "witness"))
         (witness
          (with-current-buffer (derl-hostile-lisp--node-output third)
            (goto-char (point-min))
            (re-search-forward "derl_liar witness \\([0-9]+\\) \\([0-9]+\\) \
\\([0-9]+\\)")
            (vector erl-tag 'erl-pid third
                    (string-to-number (match-string 1))
                    (string-to-number (match-string 2))
                    (string-to-number (match-string 3))))))
    (unwind-protect
        (derl-hostile-lisp--with-liar liar
          (let* ((derl-use-trace-buffer t)
                 (box (list nil))
                 (local (erl-spawn (setq erl-trap-exit t)
                                   (derl-test--collect box)))
                 (liar-pid (derl-hostile-lisp--pid liar 40))
                 (stale (copy-sequence local))
                 (ref (erl-make-ref))
                 (empty erlext-empty-symbol))
            (aset stale 5 (logxor erl-node-creation 1))
            (derl-connect liar)
            (derl-hostile-lisp--puppet
             liar
             (list (vector (vector 2 empty witness) 'relayed-send)
                   (vector (vector 22 liar-pid witness) 'relayed-send-sender)
                   (vector (vector 1 liar-pid witness))
                   (vector (vector 1 witness local))
                   (vector (vector 3 liar-pid witness 'relayed-exit))
                   (vector (vector 8 liar-pid witness 'kill))
                   (vector (vector 24 liar-pid witness) 'relayed-payload-exit)
                   (vector (vector 19 witness local ref))
                   (vector (vector 21 liar-pid witness ref 'gone))
                   (vector (vector 31 ref witness 0 'result))
                   (vector (vector 35 1 liar-pid witness))
                   (vector (vector 1 'not-a-pid 42))
                   (vector (vector 2 empty stale) 'to-an-earlier-emacs)
                   (vector (vector 2 empty local) 'liar-done)))
            (derl-test-wait (lambda () (memq 'liar-done (car box))))
            ;; Had the link from the third node's pid been taken, this
            ;; exit would now go there.
            (erl-exit 'kill local)
            (accept-process-output nil 0.5)
            (should (equal (car box) '(liar-done)))
            (should-not (memq third (derl-nodes)))
            (should-not (derl-hostile-lisp--trace third))
            (let ((trace (derl-hostile-lisp--trace liar)))
              (dolist (op '("SEND" "SEND_SENDER" "LINK" "EXIT" "EXIT2"
                            "MONITOR_P" "MONITOR_P_EXIT" "SPAWN_REPLY"
                            "UNLINK_ID"))
                (should (string-match-p (format "^<< \\*\\* dropped %s: " op)
                                        trace)))
              (should (string-match-p "not a process of this Emacs" trace))
              (should (string-match-p (format "the sender <%s\\.[0-9]+\\.0> \
is not a process of %s" third liar)
                                      trace))
              (should (string-match-p
                       (format "lost SEND: no process <[^>]*> (creation %d): \
'to-an-earlier-emacs'" (aref stale 5))
                       trace)))
            (should (string-match-p "to-an-earlier-emacs"
                                    (derl-hostile-lisp--lost)))
            ;; The third node saw nothing but our own connection, now.
            (derl-connect third)
            (let ((inbox (derl-test-inbox)))
              (erl-send (vector 'witness third) (vector 'report (car inbox)))
              (let ((seen (aref (derl-test-await-message
                                 inbox (lambda (m) (and (vectorp m)
                                                        (eq (aref m 0)
                                                            'witness))))
                                1)))
                (should (= (length seen) 1))
                (should (eq (aref (car seen) 0) 'nodeup))
                (should (eq (aref (car seen) 1) erl-node-name))))))
      (ignore-errors (derl-disconnect third))
      (derl-test-stop-node third))))

;;;; Failing nodes are not hammered

(ert-deftest derl-hostile-lisp-reconnect-backoff ()
  "A send from `erl-nodedown-hook' to a node that cannot be reached
makes one attempt, not thousands; meanwhile sends fail at once with
the last error, and the delay doubles with each failure."
  (derl-test-configure)
  (let* ((ghost (intern (format "ghost%s@localhost"
                                (derl-test-random-string 6))))
         (attempts 0)
         (count (lambda (&rest _) (cl-incf attempts)))
         (derl-reconnect-min-delay 0.5)
         (derl-reconnect-max-delay 30)
         (resend (lambda (node)
                   (when (eq node ghost)
                     (ignore-errors (erl-send (vector 'x ghost) 'again)))))
         (erl-nodedown-hook (cons resend erl-nodedown-hook)))
    (advice-add 'derl--module-connect :before count)
    (unwind-protect
        (progn
          (erl-send (vector 'x ghost) 'first)
          (let ((end (+ (float-time) 3)))
            (while (< (float-time) end)
              (accept-process-output nil 0.1)))
          (should (<= 1 attempts 3))
          ;; Within the delay: the last error, at once, no attempt.
          (let ((before attempts)
                (entry (gethash ghost derl--backoff)))
            (should entry)
            (setcar entry (+ (float-time) 60))
            (should-error (erl-send (vector 'x ghost) 'now)
                          :type 'derl-epmd-error)
            (should (= attempts before))
            ;; Past it: one more attempt, and the delay doubles.
            (let ((delay (cadr entry)))
              (setcar entry (float-time))
              (let ((erl-nodedown-hook nil))
                (erl-send (vector 'x ghost) 'later)
                (derl-test-wait (lambda () (not (memq ghost (derl-nodes))))))
              (should (= attempts (1+ before)))
              (should (= (cadr (gethash ghost derl--backoff))
                         (min 30 (* 2 delay)))))))
      (advice-remove 'derl--module-connect count)
      (remhash ghost derl--backoff))))

;;;; C-g stops a runaway handler

(defvar derl-hostile-lisp--spins nil
  "How far the runaway handler got: `started', then `finished'.")

(ert-deftest derl-hostile-lisp-quit-stops-runaway-handler ()
  "A handler that would loop on is stopped by a quit, as C-g does.
Handlers run from the event filter, where Emacs inhibits quitting;
here the handler sets `quit-flag' itself, as C-g would from the
keyboard, and then loops.  The process exits with reason `quit', its
link fires, and derl carries on."
  (derl-test-with-node (node)
    (derl-connect node)
    (setq derl-hostile-lisp--spins nil)
    (let* ((erl-report-exits nil)
           (box (list nil))
           (watcher (erl-spawn (setq erl-trap-exit t)
                               (derl-test--collect box)))
           (runaway (with-erl-process watcher
                      (erl-spawn-link
                        (erl-receive ()
                            (('spin
                              (push 'started derl-hostile-lisp--spins)
                              (let ((n 0))
                                (while (< n 3000000)
                                  (setq n (1+ n))
                                  (when (= n 1000)
                                    (setq quit-flag t))))
                              (push 'finished derl-hostile-lisp--spins))))))))
      (erl-send (derl-test-echo node) (vector runaway 'spin))
      (let ((exit (derl-test-wait
                   (lambda () (cl-find-if (lambda (m) (and (vectorp m)
                                                           (eq (aref m 0)
                                                               'EXIT)))
                                          (car box))))))
        (should (equal exit (vector 'EXIT runaway 'quit))))
      (should (equal derl-hostile-lisp--spins '(started)))
      (should-not quit-flag)
      ;; derl still works.
      (let ((inbox (derl-test-inbox)))
        (erl-send (derl-test-echo node) (vector (car inbox) 'still-here))
        (should (derl-test-await-message inbox
                                         (lambda (m) (eq m 'still-here))))))))

(ert-deftest derl-hostile-lisp-quit-stops-runaway-nodeup-hook ()
  "A function of `erl-nodeup-hook' that would loop on is stopped by a quit.
The hook runs from the event filter here (the wait goes through the
event pipe), where Emacs inhibits quitting; the hook sets `quit-flag'
itself, as C-g would, and then loops.  The quit stops the hook only:
the connection is up and answers."
  (derl-test-with-node (node)
    (let* ((spins nil)
           (erl-nodeup-hook
            (list (lambda (&rest _)
                    (push 'started spins)
                    (let ((n 0))
                      (while (< n 3000000)
                        (setq n (1+ n))
                        (when (= n 1000)
                          (setq quit-flag t))))
                    (push 'finished spins))))
           ;; The wait takes nothing itself: the pipe's filter does.
           (through-pipe (lambda (micros)
                           (accept-process-output nil (/ micros 1e6))
                           nil)))
      (advice-add 'derl--wait-in-module-for :override through-pipe)
      (unwind-protect
          (derl-connect node)
        (advice-remove 'derl--wait-in-module-for through-pipe))
      (should (equal spins '(started)))
      (should-not quit-flag)
      (should (eq (derl-call node 'erlang 'node nil) node)))))

;;;; Careless settings get clear errors

(ert-deftest derl-hostile-lisp-ports-validated ()
  "A port outside 1..65535 is refused with a clear `derl-epmd-error'.
So are the EPMD queries of epmd.el."
  (derl-test-configure)
  (dolist (port '(-5 0 70000 "4369" nil))
    (let ((derl-epmd-port port))
      (let ((err (should-error (derl-connect 'somebody@localhost)
                               :type 'derl-epmd-error)))
        (should (string-match-p "derl-epmd-port' is .*, not a port number \
(1 to 65535)" (cadr err))))
      (should-error (epmd-names "localhost") :type 'derl-epmd-error)
      (should-error (epmd-port-please "somebody" "localhost" #'ignore
                                      #'ignore)
                    :type 'derl-epmd-error))))

(ert-deftest derl-hostile-lisp-latin-1-cookie ()
  "A non-ASCII cookie is digested as Erlang does: as its Latin-1 bytes.
erl decodes its command line as UTF-8 in a UTF-8 locale, so
-setcookie with \"co\\366kie\" in UTF-8 gives a cookie of those 6
code points, which Erlang digests as Latin-1."
  (derl-test-configure)
  (let* ((cookie (concat "co\u00f6kie" (derl-test-random-string 6)))
         (name (derl-test-node-name "latin"))
         (buffer (generate-new-buffer " *derl-test-node*"))
         (process-environment (append '("LANG=C.UTF-8" "LC_ALL=C.UTF-8")
                                      (derl-test-erl-environment)))
         ;; The argument as UTF-8 bytes, whatever Emacs's locale.
         (proc (start-process "derl-test-node" buffer "erl"
                              "-noshell" "-pa" derl-test-ebin
                              "-sname" name "-setcookie"
                              (encode-coding-string cookie 'utf-8)
                              "-s" "derl_peer" "start"))
         (node (derl-test--await-ready proc name)))
    (unwind-protect
        (progn
          (let ((derl-cookie cookie))
            (derl-connect node)
            (let ((inbox (derl-test-inbox)))
              (erl-send (derl-test-echo node) (vector (car inbox) 'latin))
              (should (derl-test-await-message inbox
                                               (lambda (m) (eq m 'latin))))))
          ;; A character Erlang cannot hold in a cookie: said at once.
          (derl-disconnect node)
          (derl-test-wait (lambda () (not (memq node (derl-nodes)))))
          (let* ((derl-cookie "co\u20ackie")
                 (err (should-error (derl-connect node)
                                    :type 'derl-auth-error)))
            (should (string-match-p "beyond Latin-1" (cadr err)))))
      (ignore-errors (derl-disconnect node))
      (derl-test-stop-node node))))

(ert-deftest derl-hostile-lisp-cookie-file-must-be-private ()
  "A ~/.erlang.cookie others can read is refused, as Erlang refuses it."
  (derl-test-with-node (node)
    (let* ((home (derl-test-scratch-file "cookie-home"))
           (file (expand-file-name ".erlang.cookie" home))
           (derl-cookie nil)
           (process-environment (cons (concat "HOME=" home)
                                      process-environment)))
      (make-directory home t)
      (with-temp-file file (insert derl-test-cookie "\n"))
      (set-file-modes file #o644)
      (let ((err (should-error (derl-connect node) :type 'derl-auth-error)))
        (should (string-match-p "accessible by its owner only" (cadr err)))
        (should (string-match-p "chmod 400" (cadr err)))
        (should-not (string-match-p derl-test-cookie (cadr err))))
      (set-file-modes file #o400)
      (should (derl-connect node)))))

(ert-deftest derl-hostile-lisp-aborted-connect-leaves-nothing ()
  "A connect given up by `with-timeout' leaves no attempt to join.
The retry, with the right EPMD port now, connects at once instead of
failing when the stale attempt times out."
  (derl-test-with-node (node)
    ;; An "EPMD" that accepts and never answers.
    (let* ((silent (make-network-process :name "derl-silent-epmd"
                                         :server t :host 'local
                                         :service t :family 'ipv4))
           (derl-connect-timeout 10))
      (unwind-protect
          (progn
            (let ((derl-epmd-port (process-contact silent :service)))
              (should (eq (with-timeout (0.5 'gave-up)
                            (derl-connect node))
                          'gave-up)))
            (should-not (memq node (derl-nodes)))
            (let ((start (float-time)))
              (should (derl-connect node 5))
              (should (< (- (float-time) start) 5))))
        (delete-process silent)))))

;;;; The node name may change after load

(ert-deftest derl-hostile-lisp-setq-node-name-null-pid ()
  "After `setq' of `erl-node-name', an exit from the null pid works.
This is Distel's `k' in *plist*: `erl-exit' from outside any process
to a remote process.  The null pid follows the new name, so the node
takes the signal and keeps the connection."
  (derl-test-configure)
  (dolist (n (derl-nodes)) (derl-disconnect n))
  (derl-test-wait (lambda () (null (derl-nodes))))
  (setq erl-node-name (intern (format "emacs%s@localhost"
                                      (derl-test-random-string 6))))
  (should (eq (erl-pid-node erl-null-pid) erl-node-name))
  (derl-test-with-node (node)
    (let ((downs nil)
          (box (list nil)))
      (let ((erl-nodedown-hook (cons (lambda (n) (push n downs))
                                     erl-nodedown-hook))
            (local (erl-spawn (setq erl-trap-exit t)
                              (derl-test--collect box))))
        (derl-connect node)
        (erl-send (derl-test-echo node) (vector 'spawn_linked local))
        (let ((remote (aref (derl-test-wait
                             (lambda () (cl-find-if #'vectorp (car box))))
                            1)))
          (erl-exit 'kill remote))
        (let ((exit (derl-test-wait
                     (lambda () (cl-find-if (lambda (m) (and (vectorp m)
                                                             (eq (aref m 0)
                                                                 'EXIT)))
                                            (car box))))))
          (should (eq (aref exit 2) 'killed)))
        (should-not downs)
        (let ((inbox (derl-test-inbox)))
          (erl-send (derl-test-echo node) (vector (car inbox) 'still-up))
          (should (derl-test-await-message inbox
                                           (lambda (m) (eq m 'still-up)))))
        (should-not downs)))))

(provide 'derl-hostile-lisp-tests)

;;; derl-hostile-lisp-tests.el ends here

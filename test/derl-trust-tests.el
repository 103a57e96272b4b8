;;; derl-trust-tests.el --- what a peer may make Emacs do  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; The rules of README's Security section that go beyond checking the
;; pids of each signal: answers go back only over the connection the
;; request came on, replies Emacs waits for cannot be forged, exits
;; never dial a node, a quit loses no message, and what peers make
;; Emacs keep is bounded.  The hostile peer is test/erl/derl_liar.erl,
;; the witnesses are real nodes.

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'derl-ert)
(require 'derl-tests)
(require 'derl-hostile-lisp-tests)
(require 'derl)
(require 'derl-rpc)
(require 'derl-io)
(require 'derl-node)

;;;; Helpers

(defun derl-trust--third-node ()
  "Start a real node with a witness; return (NODE . WITNESS-PID)."
  (let ((node (derl-test-start-node "-s" "derl_liar" "witness")))
    (with-current-buffer (derl-hostile-lisp--node-output node)
      (goto-char (point-min))
      (re-search-forward "derl_liar witness \\([0-9]+\\) \\([0-9]+\\) \
\\([0-9]+\\)")
      (cons node (vector erl-tag 'erl-pid node
                         (string-to-number (match-string 1))
                         (string-to-number (match-string 2))
                         (string-to-number (match-string 3)))))))

(defun derl-trust--witness-saw (node)
  "What the witness of NODE saw, oldest first (Emacs connects to ask)."
  (derl-connect node)
  (let ((inbox (derl-test-inbox)))
    (erl-send (vector 'witness node) (vector 'report (car inbox)))
    (aref (derl-test-await-message
           inbox (lambda (m) (and (vectorp m) (eq (aref m 0) 'witness))))
          1)))

(defun derl-trust--count (regexp text)
  "How many times REGEXP matches in TEXT."
  (let ((n 0) (start 0))
    (while (string-match regexp text start)
      (setq n (1+ n) start (match-end 0)))
    n))

(defun derl-trust--settle (seconds)
  "Let events be handled for SECONDS."
  (let ((end (+ (float-time) seconds)))
    (while (< (float-time) end)
      (accept-process-output nil 0.05))))

(defun derl-trust--hold (seconds)
  "Keep Lisp from taking events for SECONDS: they pile up in the module."
  (let ((end (+ (float-time) seconds)))
    (while (< (float-time) end))))

(defun derl-trust--ref (node i)
  "A reference of NODE numbered I, such as its own would be."
  (vector erl-tag 'erl-new-ref node 1
          (unibyte-string 0 0 0 i 0 0 0 7 0 0 0 9)))

(defun derl-trust--liar-pid (liar)
  "A pid of LIAR's node, such as its own processes would have."
  (derl-hostile-lisp--pid liar 40))

;;;; Answers go back where the request came from

(ert-deftest derl-trust-group-leader-answers-only-its-caller ()
  "An io_request naming a third node's pid makes Emacs dial nothing.
A liar sends Emacs's group leader put_chars requests as if from a
process of a third node that Emacs could reach, asking it to run
os:cmd there; nothing reaches the third node, Emacs connects to it
only when the test asks, and the trace says what was dropped."
  (derl-test-configure)
  (let* ((third (derl-trust--third-node))
         (node (car third))
         (witness (cdr third))
         (file (derl-test-scratch-file "touched")))
    (unwind-protect
        (derl-hostile-lisp--with-liar liar
          (let ((derl-use-trace-buffer t)
                (leader (erl--default-group-leader))
                (empty erlext-empty-symbol))
            (derl-connect liar)
            (derl-hostile-lisp--puppet
             liar
             (list (vector (vector 2 empty leader)
                           (vector 'io_request witness 'r1
                                   (vector 'put_chars 'unicode 'os 'cmd
                                           (list (concat "touch " file)))))
                   (vector (vector 2 empty leader)
                           (vector 'io_request witness 'r2
                                   (vector 'put_chars 'unicode "text")))))
            (derl-test-wait (lambda ()
                              (= 2 (derl-trust--count
                                    "dropped an io_request"
                                    (derl-hostile-lisp--trace liar)))))
            (derl-trust--settle 0.5)
            (should-not (file-exists-p file))
            (should-not (memq node (derl-nodes)))
            (should (string-match-p
                     (format "the sender <%s\\.[0-9]+\\.[0-9]+> is not a \
process of %s" node liar)
                     (derl-hostile-lisp--trace liar)))
            ;; The witness saw only the test's own connection.
            (let ((seen (derl-trust--witness-saw node)))
              (should (= (length seen) 1))
              (should (eq (aref (car seen) 0) 'nodeup)))))
      (ignore-errors (derl-disconnect node))
      (derl-test-stop-node node))))

(ert-deftest derl-trust-group-leader-formats-only-io-lib ()
  "The group leader formats io_lib only; other {M, F, A} get {error, request}.
io:format still prints; a put_chars of os:cmd is refused, and runs
nothing on the node."
  (derl-test-with-node (node)
    (derl-connect node)
    (let ((file (derl-test-scratch-file "touched"))
          (erl-popup-on-output nil))
      (with-current-buffer (get-buffer-create "*erl-output*")
        (erase-buffer))
      (should (eq (derl-call node 'io 'format (list "formatted ~p~n" (list 42)))
                  'ok))
      (should (equal (derl-call node 'io 'request
                                (list (erl-group-leader)
                                      (vector 'put_chars 'unicode 'os 'cmd
                                              (list (concat "touch " file)))))
                     [error request]))
      (should-not (file-exists-p file))
      (with-current-buffer "*erl-output*"
        (should (equal (buffer-string) "formatted 42\n"))))))

(ert-deftest derl-trust-net-kernel-answers-only-its-caller ()
  "A net_kernel call from a third node's pid makes Emacs dial nothing.
And a real node's calls other than is_auth get an error at once."
  (derl-test-configure)
  (let* ((third (derl-trust--third-node))
         (node (car third))
         (witness (cdr third)))
    (unwind-protect
        (progn
          (derl-node--start-net-kernel)
          (derl-hostile-lisp--with-liar liar
            (let ((derl-use-trace-buffer t))
              (derl-connect liar)
              (derl-hostile-lisp--puppet
               liar
               (list (vector (vector 6 (derl-trust--liar-pid liar)
                                     erlext-empty-symbol 'net_kernel)
                             (vector '$gen_call (vector witness 'tag)
                                     (vector 'is_auth liar)))))
              (derl-test-wait (lambda ()
                                (string-match-p
                                 "dropped a net_kernel call"
                                 (derl-hostile-lisp--trace liar))))
              (derl-trust--settle 0.3)
              (should-not (memq node (derl-nodes)))))
          ;; A real caller: pong for ping, an error for anything else.
          (derl-connect node)
          (should (eq (derl-call node 'net_adm 'ping (list erl-node-name))
                      'pong))
          (let ((start (float-time)))
            (should (equal (derl-call node 'gen_server 'call
                                      (list (vector 'net_kernel erl-node-name)
                                            'no_such_request 5000))
                           [error notsup]))
            (should (< (- (float-time) start) 4))))
      (ignore-errors (derl-disconnect node))
      (derl-test-stop-node node))))

;;;; Replies cannot be forged

(ert-deftest derl-trust-call-replies-cannot-be-forged ()
  "A liar spraying {rex, forged} at Emacs's pids changes no call's result.
Calls to a real node get that node's answer; a call to the liar itself
gets nothing the liar forged, and what it forged is logged as lost."
  (derl-test-with-node (node)
    (derl-hostile-lisp--with-liar liar
      (let* ((derl-use-trace-buffer t)
             (empty erlext-empty-symbol)
             (next (1+ erl--pid-counter))
             (targets (number-sequence (max 1 (- next 50)) (+ next 50)))
             (forgeries
              (apply #'append
                     (mapcar (lambda (id)
                               (let ((pid (erl--make-local-pid id)))
                                 (list (vector (vector 2 empty pid)
                                               [rex forged]))))
                             targets)))
             result-to-node result-to-liar)
        (derl-connect node)
        (derl-connect liar)
        (derl-call-async node 'timer 'sleep (list 1000)
                         (lambda (r) (setq result-to-node (list r))))
        (derl-call-async liar 'erlang 'node nil
                         (lambda (r) (setq result-to-liar (list r)))
                         :on-error #'ignore :timeout 3)
        (derl-hostile-lisp--puppet liar forgeries)
        (derl-test-wait (lambda () result-to-node) 10)
        (should (equal result-to-node '(ok)))
        (derl-trust--settle 0.5)
        (should-not result-to-liar)
        (should (string-match-p "forged" (derl-hostile-lisp--lost)))))))

(ert-deftest derl-trust-spawn-replies-cannot-be-forged ()
  "A SEND forging a spawn_reply to `derl-spawn''s waiting pid is not taken."
  (derl-test-with-node (node)
    (derl-hostile-lisp--with-liar liar
      (let* ((empty erlext-empty-symbol)
             (next (1+ erl--pid-counter))
             (fake-pid (derl-trust--liar-pid liar))
             (forgeries
              (mapcar (lambda (id)
                        (vector (vector 2 empty (erl--make-local-pid id))
                                (vector 'spawn_reply (erl-make-ref) 'ok
                                        fake-pid)))
                      (number-sequence next (+ next 10)))))
        (derl-connect node)
        (derl-connect liar)
        ;; The forgeries wait in the module for the pid they aim at.
        (derl-hostile-lisp--puppet liar forgeries)
        (derl-trust--hold 0.5)
        (let ((pid (derl-spawn node 'timer 'sleep (list 500))))
          (should (eq (erl-pid-node pid) node)))
        (should (string-match-p "spawn_reply" (derl-hostile-lisp--lost)))))))

;;;; Senders of other nodes

(ert-deftest derl-trust-third-node-senders-dropped ()
  "REG_SEND and SEND_SENDER naming a third node's sender are dropped."
  (derl-test-configure)
  (derl-hostile-lisp--with-liar liar
    (let* ((derl-use-trace-buffer t)
           (box (list nil))
           (name (intern (concat "trusty" (derl-test-random-string 4))))
           (local (erl-spawn (erl-register name) (derl-test--collect box)))
           (third (derl-hostile-lisp--pid 'third@localhost 40))
           (own (derl-trust--liar-pid liar))
           (empty erlext-empty-symbol))
      (derl-connect liar)
      (derl-hostile-lisp--puppet
       liar
       (list (vector (vector 6 third empty name) 'third-reg-send)
             (vector (vector 22 third local) 'third-send-sender)
             (vector (vector 6 own empty name) 'own-reg-send)
             (vector (vector 22 own local) 'own-send-sender)))
      (derl-test-wait (lambda () (= (length (car box)) 2)))
      (derl-trust--settle 0.3)
      (should (equal (sort (copy-sequence (car box)) #'string<)
                     '(own-reg-send own-send-sender)))
      (let ((trace (derl-hostile-lisp--trace liar)))
        (dolist (op '("REG_SEND" "SEND_SENDER"))
          (should (string-match-p
                   (format "dropped %s: the sender <third@localhost\\." op)
                   trace))))
      (erl-exit 'kill local))))

;;;; Exits never dial

(ert-deftest derl-trust-no-exit-to-a-node-gone ()
  "A process linked twice to a node that goes away does not redial it."
  (derl-test-with-node (node)
    (derl-connect node)
    (let* ((inbox (derl-test-inbox))
           (plains nil))
      (dotimes (_ 2)
        (erl-send (derl-test-echo node) (vector 'spawn_plain (car inbox))))
      (derl-test-wait (lambda ()
                        (= 2 (cl-count-if (lambda (m) (and (vectorp m)
                                                           (eq (aref m 0)
                                                               'plain)))
                                          (cadr inbox)))))
      (setq plains (mapcar (lambda (m) (aref m 1))
                           (cl-remove-if-not
                            (lambda (m) (and (vectorp m) (eq (aref m 0) 'plain)))
                            (cadr inbox))))
      (let ((linked (erl-spawn
                      (dolist (p plains) (erl-link p))
                      (erl-receive () ((_ nil))))))
        (derl-trust--settle 0.3)
        (derl-disconnect node)
        (derl-trust--settle 1)
        (should-not (erl-local-pid-alive-p linked))
        (should-not (memq node (derl-nodes)))
        (should-not (gethash node derl--connections))))))

;;;; C-g

(ert-deftest derl-trust-quit-loses-no-message ()
  "A quit that comes while a batch is handled loses none of it.
The quit goes on after every message was delivered, and the process
that got them is not killed by it."
  (derl-test-configure)
  (derl-hostile-lisp--with-liar liar
    (let* ((derl-use-trace-buffer nil)
           (box (list nil))
           (local (erl-spawn (derl-test--collect box)))
           (quitter (derl--make-receiver
                     (lambda (&rest _) (setq quit-flag t) t) nil))
           (empty erlext-empty-symbol)
           (quit nil))
      (unwind-protect
          (progn
            (derl-connect liar)
            (derl-hostile-lisp--puppet
             liar
             (cons (vector (vector 2 empty quitter) 'quit-now)
                   (mapcar (lambda (i) (vector (vector 2 empty local) i))
                           (number-sequence 1 200))))
            ;; Let the frames pile up in the module, untaken.
            (derl-trust--hold 1.0)
            (condition-case nil
                (let ((inhibit-quit nil))
                  (derl--take-events)
                  ;; The quit is pending: it fires at the next chance.
                  (funcall #'ignore))
              (quit (setq quit t)))
            (should quit)
            (derl-test-wait (lambda () (= (length (car box)) 200)) 5)
            (should (erl-local-pid-alive-p local)))
        (setq quit-flag nil)
        (derl--forget-receiver quitter)
        (erl-exit 'kill local)))))

;;;; Bounded

(ert-deftest derl-trust-output-buffer-bounded ()
  "*erl-output* keeps at most `derl-output-max-size' characters."
  (derl-test-with-node (node)
    (derl-connect node)
    (let ((derl-output-max-size 100000)
          (erl-popup-on-output nil))
      (with-current-buffer (get-buffer-create "*erl-output*")
        (erase-buffer))
      (dotimes (i 4)
        (derl-call node 'io 'put_chars
                   (list (erl-group-leader)
                         (erl-binary (concat (make-string 70000 ?a)
                                             (format "%d\n" i))))))
      (derl-call node 'io 'put_chars
                 (list (erl-group-leader)
                       (erl-binary (concat (make-string 300000 ?b) "end\n"))))
      (with-current-buffer "*erl-output*"
        (should (<= (buffer-size) 100000))
        (should (string-suffix-p "bbbend\n" (buffer-string)))))))

(ert-deftest derl-trust-links-and-monitors-capped ()
  "Links and monitors of one node are kept up to their limits, then refused.
Past `derl-max-links' a LINK gets an exit signal `system_limit' back;
past `derl-max-monitors' a MONITOR_P fires at once with it.  Many
links and unlinks in a row leave nothing behind."
  (derl-test-configure)
  (derl-hostile-lisp--with-liar liar
    (let* ((derl-use-trace-buffer t)
           (derl-max-links 50)
           (derl-max-monitors 50)
           (box (list nil))
           (local (erl-spawn (setq erl-trap-exit t) (derl-test--collect box)))
           (empty erlext-empty-symbol)
           (n 3000)
           (pids (mapcar (lambda (i) (derl-hostile-lisp--pid liar (+ 100 i)))
                         (number-sequence 1 n))))
      (derl-connect liar)
      (let ((conn (gethash liar derl--connections)))
        ;; Many links and unlinks: nothing left behind.
        (derl-hostile-lisp--puppet
         liar
         (append (mapcar (lambda (p) (vector (vector 1 p local))) pids)
                 (cl-loop for p in pids for i from 1
                          collect (vector (vector 35 i p local)))
                 (list (vector (vector 2 empty local) 'links-done))))
        (derl-test-wait (lambda () (memq 'links-done (car box))) 30)
        (should (= 0 (hash-table-count (derl-connection-links conn))))
        (with-current-buffer (erl-pid->buffer local)
          (should (null (erl-link-list))))
        ;; Past the limits.
        (derl-hostile-lisp--puppet
         liar
         (append (mapcar (lambda (p) (vector (vector 1 p local)))
                         (cl-subseq pids 0 60))
                 (cl-loop for p in (cl-subseq pids 0 60) for i from 1
                          collect (vector (vector 19 p local
                                                  (derl-trust--ref
                                                   liar i))))
                 (list (vector (vector 2 empty local) 'caps-done))))
        (derl-test-wait (lambda () (memq 'caps-done (car box))) 30)
        (should (= 50 (hash-table-count (derl-connection-links conn))))
        (should (= 50 (hash-table-count (derl-connection-monitors conn))))
        (let ((trace (derl-hostile-lisp--trace liar)))
          (should (string-match-p "refused a link: .* holds 50 already" trace))
          (should (string-match-p "refused a monitor: .* holds 50 already"
                                  trace))
          (should (string-match-p ">> EXIT: .* system_limit" trace))
          (should (string-match-p ">> MONITOR_P_EXIT: .* system_limit" trace)))
        ;; A DEMONITOR_P naming another process's monitor leaves it.
        (derl-hostile-lisp--puppet
         liar
         (list (vector (vector 20 (nth 5 pids) local
                               (derl-trust--ref liar 1)))
               (vector (vector 20 (nth 1 pids) local
                               (derl-trust--ref liar 2)))
               (vector (vector 2 empty local) 'demonitor-done)))
        (derl-test-wait (lambda () (memq 'demonitor-done (car box))))
        (should (= 49 (hash-table-count (derl-connection-monitors conn))))
        (erl-exit 'kill local)
        (derl-trust--settle 0.3)
        (should-not (gethash local derl--monitored))))))

(ert-deftest derl-trust-group-leader-survives-a-full-queue ()
  "A node that reads nothing makes the group leader drop its replies, not die.
Other nodes' requests are still served afterwards."
  (derl-test-with-node (node)
    (derl-hostile-lisp--with-liar liar
      (let* ((derl-use-trace-buffer t)
             (derl-max-send-queue 100000)
             (leader (erl--default-group-leader))
             (empty erlext-empty-symbol)
             (from (derl-trust--liar-pid liar))
             (big (erl-binary (make-string 200000 ?x)))
             (busy nil))
        (derl-connect liar)
        (derl-connect node)
        (derl-hostile-lisp--puppet
         liar
         (append (mapcar (lambda (i)
                           (vector (vector 2 empty leader)
                                   (vector 'io_request from i
                                           (vector 'put_chars 'unicode "."))))
                         (number-sequence 1 20))
                 (list [stall 4000])))
        ;; The requests arrive while Lisp fills the liar's queue.
        (derl-trust--hold 0.5)
        ;; Fill the queue, and keep it full for a while: the I/O thread
        ;; moves what it can into the socket until the kernel holds no
        ;; more; events are not taken meanwhile.
        (let ((erl-self erl-null-pid)
              (until (+ (float-time) 1.5)))
          (while (< (float-time) until)
            (condition-case nil
                (erl-send from big)
              (derl-busy (setq busy t)
                         (derl-trust--hold 0.05))))
          ;; Then up to the last few bytes the limit allows, so that no
          ;; reply fits either.
          (condition-case nil
              (while t (erl-send from 'x))
            (derl-busy nil)))
        (should busy)
        (derl-test-wait (lambda ()
                          (string-match-p "dropped an answer: .*too much"
                                          (derl-hostile-lisp--trace liar))))
        (should (erl-local-pid-alive-p leader))
        (should (eq leader (erl--default-group-leader)))
        (should (eq (derl-call node 'io 'format (list "still ~p~n" (list 1)))
                    'ok))))))

;;;; Errors that name the cause

(ert-deftest derl-trust-clear-errors ()
  "Bad arguments and failed connections signal `derl-error' kinds at once."
  (derl-test-configure)
  (should (eq (car (should-error (erl-send 42 'x)))
              'derl-argument-error))
  (let ((start (float-time)))
    (should (eq (car (should-error (derl-call 'nobody@localhost 'erlang 'node
                                              42)))
                'derl-argument-error))
    (should (< (- (float-time) start) 1)))
  (let* ((node (intern (format "absent%s@localhost"
                               (derl-test-random-string 5))))
         (err (should-error (derl-call node 'erlang 'node nil 5))))
    (should (eq (car err) 'derl-epmd-error))
    (should-not (string-match-p "went down during" (cadr err))))
  ;; The module missing, in an Emacs of its own.
  (let ((out (with-temp-buffer
               (call-process
                (expand-file-name invocation-name invocation-directory)
                nil t nil "-Q" "--batch" "-L" (expand-file-name "lisp" derl-module--root)
                "--eval" "(setq derl-module-file \"/nonexistent/derl-module.so\")"
                "-l" "derl-module"
                "--eval" "(condition-case err (derl-module-load) \
(derl-error (princ (format \"%S\" (car err)))))")
               (buffer-string))))
    (should (string-match-p "derl-module-error" out))))

(provide 'derl-trust-tests)

;;; derl-trust-tests.el ends here

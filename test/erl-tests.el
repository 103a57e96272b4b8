;;; erl-tests.el --- ERT tests for erl.el, the process runtime  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; The process runtime on its own: spawning, mailboxes, selective
;; receive, links and exits, registered names, references, the hooks
;; and entry points the distribution layer uses (stubbed here), and a
;; throughput run.  Assertions are made outside process bodies: an
;; error inside a process ends the process, not the test.

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'erl)

;;;; Helpers

(defvar erl-tests--log nil
  "Events recorded by test processes, newest first.")

(defun erl-tests--log (x)
  "Record X in `erl-tests--log'."
  (push x erl-tests--log))

(defun erl-tests--events ()
  "Return the recorded events, oldest first."
  (reverse erl-tests--log))

(defun erl-tests--kill-all ()
  "Kill every live process but the default group leader."
  (let ((erl-report-exits nil)
        (gl (erl-whereis 'group-leader)))
    (dolist (pid (erl--live-pids))
      (unless (equal pid gl)
        (erl-exit 'kill pid)))))

(defmacro erl-tests--with-clean (&rest body)
  "Run BODY with a fresh event log; kill its leftover processes after."
  (declare (indent 0) (debug (body)))
  `(let ((erl-report-exits nil)
         (erl-popup-on-output nil)
         (erl-tests--log nil))
     (unwind-protect (progn ,@body)
       (erl-tests--kill-all))))

(defmacro erl-tests--with-exits (var &rest body)
  "Run BODY with VAR bound to a function returning the exits so far."
  (declare (indent 1) (debug (symbolp body)))
  (let ((fn (make-symbol "fn")))
    `(let* ((,fn nil)
            (erl-process-exit-functions erl-process-exit-functions)
            (,var (let ((exits nil))
                    (setq ,fn (lambda (pid reason)
                                (push (cons pid reason) exits)))
                    (lambda () (reverse exits)))))
       (add-hook 'erl-process-exit-functions ,fn)
       ,@body)))

(defun erl-tests--reason (exits pid)
  "Return the exit reason of PID in EXITS, or `alive'."
  (let ((cell (assoc pid exits)))
    (if cell (cdr cell) 'alive)))

(defun erl-tests--echo-loop ()
  "Log every message received, forever."
  (erl-receive ()
      ((msg (erl-tests--log msg)
            (erl-tests--echo-loop)))))

(defun erl-tests--remote-pid (&optional id)
  "Return a pid of another node, with number ID."
  (vector erl-tag 'erl-pid 'other@host (or id 7) 0 1))

(defmacro erl-tests--with-dist-stubs (calls &rest body)
  "Run BODY with the erl-dist-* functions stubbed to record each call.
CALLS is a variable that gets the recorded calls, oldest first,
each (FUNCTION SELF . ARGS) where SELF is `erl-self' at the call."
  (declare (indent 1) (debug (symbolp body)))
  (let ((rec (make-symbol "rec")))
    `(let* ((,calls nil)
            (,rec (lambda (name)
                    (lambda (&rest args)
                      (setq ,calls (append ,calls
                                           (list (cl-list* name erl-self
                                                           args))))))))
       (cl-letf (((symbol-function 'erl-dist-send)
                  (funcall ,rec 'erl-dist-send))
                 ((symbol-function 'erl-dist-reg-send)
                  (funcall ,rec 'erl-dist-reg-send))
                 ((symbol-function 'erl-dist-link)
                  (funcall ,rec 'erl-dist-link))
                 ((symbol-function 'erl-dist-unlink)
                  (funcall ,rec 'erl-dist-unlink))
                 ((symbol-function 'erl-dist-exit)
                  (funcall ,rec 'erl-dist-exit))
                 ((symbol-function 'erl-dist-exit2)
                  (funcall ,rec 'erl-dist-exit2)))
         ,@body))))

;;;; Node identity, pids and references

(ert-deftest erl-node-name-default ()
  "The node name is distel_PID@SHORTHOST and the creation a 32-bit number."
  (let ((default (eval (car (get 'erl-node-name 'standard-value)) t)))
    (should (symbolp default))
    (should (string-match-p
             (format "\\`distel_%d@[^.@]+\\'" (emacs-pid))
             (symbol-name default))))
  (should (equal (erl-determine-hostname)
                 (car (split-string (system-name) "\\."))))
  (should (integerp erl-node-creation))
  (should (< 0 erl-node-creation #x100000000)))

(ert-deftest erl-node-name-setq-renames-pids ()
  "Pids made before `erl-node-name' is set with `setq' follow the new name.
So `erl-null-pid' stays a local pid and never names a ghost node."
  (erl-tests--with-clean
    (let ((old erl-node-name)
          (pid (erl-spawn (erl-idle))))
      (unwind-protect
          (progn
            (setq erl-node-name 'renamed@somewhere)
            (should (eq (erl-pid-node erl-null-pid) 'renamed@somewhere))
            (should (eq (erl-pid-node pid) 'renamed@somewhere))
            (should (erl-local-pid-p erl-null-pid))
            (should (erl-local-pid-alive-p pid))
            (with-temp-buffer
              (should (equal erl-self erl-null-pid))))
        (setq erl-node-name old))
      (should (eq (erl-pid-node erl-null-pid) old))
      (should (eq (erl-pid-node pid) old)))))

(ert-deftest erl-pid-structure ()
  "Local pids are [erl-tag erl-pid NODE ID 0 CREATION] with rising ids."
  (erl-tests--with-clean
    (let ((a (erl-spawn (erl-idle)))
          (b (erl-spawn (erl-idle))))
      (dolist (p (list a b))
        (should (erl-pid-p p))
        (should (eq (aref p 0) erl-tag))
        (should (eq (erl-pid-node p) erl-node-name))
        (should (eq (erl-pid-serial p) 0))
        (should (eq (erl-pid-creation p) erl-node-creation))
        (should (erl-local-pid-p p))
        (should-not (erl-remote-pid-p p)))
      (should (< (erl-pid-id a) (erl-pid-id b)))
      (should (equal (erl-pid-to-string a)
                     (format "<0.%d.0>" (erl-pid-id a))))
      (should (equal (erl-pid-to-string (erl-tests--remote-pid 9))
                     "<?.9.0>"))
      (should (erl-remote-pid-p (erl-tests--remote-pid)))
      (should-not (erl-pid-p [a b c d e f]))
      (should-not (erl-pid-p (erl-make-ref))))))

(ert-deftest erl-null-pid ()
  "Outside processes `erl-self' is the null pid; sends to it are logged."
  (should (equal erl-self erl-null-pid))
  (should (erl-null-pid-p erl-null-pid))
  (should (eq (erl-pid-id erl-null-pid) 0))
  (should (eq (erl-pid-node erl-null-pid) erl-node-name))
  (erl-send erl-null-pid 'lost-in-test)
  (with-current-buffer "*erl-lost-msgs*"
    (should (string-match-p "lost-in-test" (buffer-string)))))

(ert-deftest erl-make-ref-unique ()
  "References are well formed, carry the creation, and are unique."
  (let ((refs (make-hash-table :test 'equal)))
    (dotimes (_ 10000)
      (let ((ref (erl-make-ref)))
        (should-not (gethash ref refs))
        (puthash ref t refs)))
    (let ((ref (erl-make-ref)))
      (should (eq (aref ref 0) erl-tag))
      (should (eq (aref ref 1) 'erl-new-ref))
      (should (eq (aref ref 2) erl-node-name))
      (should (eq (aref ref 3) erl-node-creation))
      (should (= (length (aref ref 4)) 12))
      (should-not (multibyte-string-p (aref ref 4)))
      (should (< (aref (aref ref 4) 1) 4))
      (should (= (aref (aref ref 4) 0) 0))
      ;; It survives the term codec.
      (should (equal (erlext-binary-to-term (erlext-term-to-binary ref))
                     ref)))))

;;;; Spawning

(ert-deftest erl-spawn-runs-now ()
  "`erl-spawn' runs the body at once, in the dynamic environment."
  (defvar erl-tests--dynamic)
  (erl-tests--with-clean
    (let* ((erl-tests--dynamic 'outer)
           (pid (erl-spawn
                  (erl-tests--log (list erl-self (current-buffer)
                                        erl-tests--dynamic)))))
      (let ((event (car (erl-tests--events))))
        (should (equal (nth 0 event) pid))
        (should (bufferp (nth 1 event)))
        (should (eq (nth 2 event) 'outer)))
      ;; The body returned without receiving: the process is gone.
      (should-not (erl-local-pid-alive-p pid))
      (should-not (buffer-live-p (nth 1 (car (erl-tests--events))))))))

(ert-deftest erl-spawn-order ()
  "Inside a process, `erl-spawn' runs now and `erl-spawn-async' later."
  (erl-tests--with-clean
    (erl-spawn
      (erl-spawn-async (erl-tests--log 'async-child))
      (erl-spawn (erl-tests--log 'sync-child))
      (erl-tests--log 'parent))
    (should (equal (erl-tests--events) '(sync-child parent async-child)))
    (setq erl-tests--log nil)
    ;; Outside a process, the async body has run when spawn returns.
    (erl-spawn-async (erl-tests--log 'top-async))
    (should (equal (erl-tests--events) '(top-async)))))

(ert-deftest erl-spawn-buffer-and-with-erl-process ()
  "A waiting process keeps its buffer; `with-erl-process' enters it."
  (erl-tests--with-clean
    (let ((pid (erl-spawn
                 (setq-local erl-tests--local 'mine)
                 (erl-receive () (('never nil))))))
      (should (erl-local-pid-alive-p pid))
      (should (buffer-live-p (erl-pid->buffer pid)))
      (erl-send pid 'one)
      (erl-send pid 'two)
      (with-erl-process pid
        (should (equal erl-self pid))
        (should (equal erl-mailbox '(one two)))
        (should (eq (buffer-local-value 'erl-tests--local (current-buffer))
                    'mine)))
      (should-error (erl-pid->buffer (erl-tests--remote-pid))))))

(ert-deftest erl-group-leader-inherited ()
  "A process inherits the spawning buffer's group leader."
  (erl-tests--with-clean
    (let* ((gl (erl-spawn (erl-idle)))
           (child nil))
      (with-temp-buffer
        (setq erl-group-leader gl)
        (erl-spawn
          (setq child (erl-group-leader))
          (erl-spawn (erl-tests--log (erl-group-leader)))))
      (should (equal child gl))
      (should (equal (erl-tests--events) (list gl))))))

(ert-deftest erl-default-group-leader-output ()
  "The default group leader writes put_chars requests to *erl-output*."
  (erl-tests--with-clean
    (let ((gl (erl-group-leader)))
      (should (erl-local-pid-alive-p gl))
      (should (equal (erl-whereis 'group-leader) gl))
      (erl-send gl [put_chars "hello "])
      (let ((me (erl-spawn
                  (erl-send gl (vector 'io_request erl-self 'r1
                                       (vector 'put_chars 'unicode
                                               (erl-binary "w\303\266rld"))))
                  (erl-receive () ((['io_reply 'r1 reply]
                                    (erl-tests--log reply)))))))
        (should-not (erl-local-pid-alive-p me)))
      (should (equal (erl-tests--events) '(ok)))
      (with-current-buffer "*erl-output*"
        (should (string-suffix-p "hello wörld" (buffer-string)))))))

;;;; Sending and receiving

(ert-deftest erl-send-receive-order ()
  "Messages arrive in the order they were sent."
  (erl-tests--with-clean
    (let ((pid (erl-spawn (erl-tests--echo-loop))))
      (dotimes (i 10) (erl-send pid i))
      (should (equal (erl-tests--events) '(0 1 2 3 4 5 6 7 8 9))))))

(ert-deftest erl-send-from-process-is-queued ()
  "A send inside a process runs the receiver only when the sender yields."
  (erl-tests--with-clean
    (let ((echo (erl-spawn (erl-tests--echo-loop))))
      (erl-spawn
        (erl-send echo 'from-process)
        (erl-tests--log 'sender-continues))
      (should (equal (erl-tests--events) '(sender-continues from-process))))))

(ert-deftest erl-selective-receive ()
  "Unmatched messages stay in the mailbox, in order, for later receives."
  (erl-tests--with-clean
    (let ((pid (erl-spawn
                 (erl-receive () ((['wanted x]
                                   (erl-tests--log (list 'got x))
                                   (erl-tests--log (copy-sequence erl-mailbox))
                                   (erl-tests--echo-loop)))))))
      (erl-send pid 'a)
      (erl-send pid '(b))
      (erl-send pid [c])
      (with-erl-process pid
        (should (equal erl-mailbox '(a (b) [c]))))
      (should (null erl-tests--log))
      (erl-send pid [wanted 1])
      (should (equal (erl-tests--events)
                     '((got 1) (a (b) [c]) a (b) [c]))))))

(ert-deftest erl-selective-receive-middle ()
  "A match in the middle of the mailbox leaves the rest in order."
  (erl-tests--with-clean
    (let (pid)
      (setq pid (erl-spawn
                  (erl-receive () (('go
                                    (erl-receive () (('x (erl-tests--log 'x)
                                                      (erl-tests--echo-loop)))))))))
      (dolist (m '(a x b x c)) (erl-send pid m))
      (should (null erl-tests--log))
      (with-erl-process pid (should (equal erl-mailbox '(a x b x c))))
      (erl-send pid 'go)
      (should (equal (erl-tests--events) '(x a b x c))))))

(ert-deftest erl-receive-tests-each-message-once ()
  "A waiting receive tests each newly arrived message once."
  (erl-tests--with-clean
    (let* ((calls 0)
           (advice (lambda (args)
                     (let ((matcher (car args)))
                       (list (lambda (&rest a)
                               (setq calls (1+ calls))
                               (apply matcher a))
                             (cadr args))))))
      (advice-add 'erl--receive :filter-args advice)
      (unwind-protect
          (let ((pid (erl-spawn
                       (erl-receive () (('stop (erl-tests--log 'stopped)))))))
            (dotimes (i 1000) (erl-send pid i))
            (should (= calls 1000))
            (with-erl-process pid
              (should (equal erl-mailbox (number-sequence 0 999))))
            (erl-send pid 'stop)
            (should (= calls 1001))
            (should (equal (erl-tests--events) '(stopped))))
        (advice-remove 'erl--receive advice)))))

(ert-deftest erl-receive-after-forms ()
  "The AFTER forms run after the matching clause's body."
  (erl-tests--with-clean
    (let ((pid (erl-spawn
                 (erl-receive ()
                     ((['a x] (erl-tests--log (list 'a x)))
                      (['b x] (erl-tests--log (list 'b x))))
                   (erl-tests--log 'after)))))
      (erl-send pid [b 2])
      (should (equal (erl-tests--events) '((b 2) after)))
      (should-not (erl-local-pid-alive-p pid)))))

(ert-deftest erl-receive-vars-dynamic-binding ()
  "With dynamic binding, VARS are restored when the clause runs later."
  (erl-tests--with-clean
    (let ((pid (eval '(let ((captured 42))
                        (erl-spawn
                          (erl-receive (captured)
                              ((msg (erl-tests--log (list captured msg)))))))
                     nil)))
      (erl-send pid 'hello)
      (should (equal (erl-tests--events) '((42 hello)))))))

(ert-deftest erl-receive-vars-lexical-binding ()
  "With lexical binding, VARS may be named and closures work anyway."
  (erl-tests--with-clean
    (let* ((a 1) (b 2)
           (pid (erl-spawn
                  (erl-receive (a)
                      ((msg (erl-tests--log (list a b msg))))))))
      (erl-send pid 'm)
      (should (equal (erl-tests--events) '((1 2 m)))))))

(ert-deftest erl-receive-outside-process ()
  "`erl-receive' outside a process is an error."
  (should-error (erl-receive () ((_ nil)))))

(defun erl-tests--count-loop (n acc)
  "Receive N messages [count I], checking they come in order; ACC is next I."
  (erl-receive ()
      ((['count i]
        (unless (= i acc)
          (erl-tests--log (list 'out-of-order i acc)))
        (if (= i n)
            (erl-tests--log (list 'done i))
          (erl-tests--count-loop n (1+ i)))))))

(ert-deftest erl-receive-loop-does-not-grow-stack ()
  "100,000 turns of a receive loop don't grow the Lisp stack."
  (erl-tests--with-clean
    (let* ((max-lisp-eval-depth 200)
           (n 100000)
           (pid (erl-spawn (erl-tests--count-loop n 1))))
      (erl-spawn
        (dotimes (i n) (erl-send pid (vector 'count (1+ i)))))
      (should (equal (erl-tests--events) (list (list 'done n)))))))

(defun erl-tests--reschedule-loop (i)
  "Go round I times with `erl-continue' and `erl-reschedule'."
  (if (zerop i)
      (erl-tests--log 'finished)
    (erl-continue #'erl-tests--reschedule-loop (1- i))
    (erl-reschedule)))

(ert-deftest erl-continue-and-reschedule ()
  "`erl-continue' with `erl-reschedule' loops without growing the stack;
`erl-continue' alone waits for the next message."
  (erl-tests--with-clean
    (let ((max-lisp-eval-depth 200))
      (erl-spawn (erl-tests--reschedule-loop 100000))
      (should (equal (erl-tests--events) '(finished))))
    (setq erl-tests--log nil)
    (let ((pid (erl-spawn
                 (erl-continue (lambda (x)
                                 (erl-tests--log (list 'k x))
                                 (erl-tests--log (copy-sequence erl-mailbox)))
                               'arg))))
      (should (null erl-tests--log))
      (should (erl-local-pid-alive-p pid))
      (erl-send pid 'wake)
      (should (equal (erl-tests--events) '((k arg) (wake))))
      (should-not (erl-local-pid-alive-p pid)))))

(ert-deftest erl-send-to-self ()
  "A process can send to itself and receive it."
  (erl-tests--with-clean
    (erl-spawn
      (erl-send erl-self 'me)
      (erl-tests--log (copy-sequence erl-mailbox))
      (erl-receive () (('me (erl-tests--log 'got-me)))))
    (should (equal (erl-tests--events) '((me) got-me)))))

(ert-deftest erl-mailbox-can-be-emptied ()
  "Setting `erl-mailbox' to nil inside a process drops the waiting messages."
  (erl-tests--with-clean
    (let ((pid (erl-spawn
                 (erl-receive () (('flush
                                   (setq erl-mailbox nil)
                                   (erl-tests--echo-loop)))))))
      (erl-send pid 'old1)
      (erl-send pid 'old2)
      (erl-send pid 'flush)
      (erl-send pid 'new)
      (should (equal (erl-tests--events) '(new))))))

(ert-deftest erl-send-to-dead-pid-is-dropped ()
  "Messages to dead local processes vanish without error."
  (erl-tests--with-clean
    (let ((pid (erl-spawn nil)))
      (should-not (erl-local-pid-alive-p pid))
      (erl-send pid 'nobody-home)
      ;; A pid of an earlier Emacs with the same node name is dead too.
      (let ((old (copy-sequence (erl-spawn (erl-idle)))))
        (aset old 5 (logxor erl-node-creation 1))
        (should-not (erl-local-pid-alive-p old))
        (erl-send old 'stale)))))

(ert-deftest erl-deferred-scheduling ()
  "`erl-with-deferred-scheduling' runs receivers after its body."
  (erl-tests--with-clean
    (let ((pid (erl-spawn (erl-tests--echo-loop))))
      (erl-with-deferred-scheduling
        (erl-send pid 1)
        (erl-send pid 2)
        (erl-tests--log 'body-done))
      (should (equal (erl-tests--events) '(body-done 1 2))))))

;;;; Exits

(ert-deftest erl-normal-exit-and-exit-hook ()
  "A body that returns exits `normal', running `erl-process-exit-functions'."
  (erl-tests--with-clean
    (erl-tests--with-exits exits
      (let ((pid (erl-spawn (erl-tests--log 'ran))))
        (should (equal (funcall exits) (list (cons pid 'normal))))))))

(ert-deftest erl-exit-with-reason ()
  "`erl-exit' ends the current process with its reason at once."
  (erl-tests--with-clean
    (erl-tests--with-exits exits
      (let ((pid (erl-spawn
                   (erl-exit [shutdown why])
                   (erl-tests--log 'not-reached))))
        (should (equal (erl-tests--reason (funcall exits) pid)
                       [shutdown why]))
        (should (null erl-tests--log))))))

(ert-deftest erl-error-in-process ()
  "A Lisp error ends the process with [emacs-error TEXT] and nothing else."
  (erl-tests--with-clean
    (erl-tests--with-exits exits
      (let* ((echo (erl-spawn (erl-tests--echo-loop)))
             (bad (erl-spawn
                    (erl-receive ()
                        ((_ (error "Boom %d" 42)))))))
        (erl-send bad 'trigger)
        (let ((reason (erl-tests--reason (funcall exits) bad)))
          (should (vectorp reason))
          (should (eq (aref reason 0) 'emacs-error))
          (should (string-match-p "Boom 42" (aref reason 1))))
        (should-not (erl-local-pid-alive-p bad))
        ;; The scheduler and other processes carry on.
        (erl-send echo 'still-fine)
        (should (equal (erl-tests--events) '(still-fine)))
        ;; Also when the error happens before the first receive.
        (let ((bad2 (erl-spawn (car 'not-a-list))))
          (should (eq (aref (erl-tests--reason (funcall exits) bad2) 0)
                      'emacs-error)))))))

(ert-deftest erl-mcase-failure-in-process ()
  "An `mcase' without a matching clause exits with `case-clause'."
  (erl-tests--with-clean
    (erl-tests--with-exits exits
      (let ((pid (erl-spawn (mcase 3 (1 'one)))))
        (should (eq (erl-tests--reason (funcall exits) pid) 'case-clause))))))

(ert-deftest erl-link-propagates-exit ()
  "A linked process that doesn't trap exits dies with the same reason."
  (erl-tests--with-clean
    (erl-tests--with-exits exits
      (let* ((child nil)
             (parent (erl-spawn
                       (setq child (erl-spawn-link
                                     (erl-receive ()
                                         (('die (erl-exit 'crashed))))))
                       (erl-idle))))
        (with-erl-process parent (should (erl-linked-p child)))
        (with-erl-process child (should (erl-linked-p parent)))
        (erl-send child 'die)
        (should (eq (erl-tests--reason (funcall exits) child) 'crashed))
        (should (eq (erl-tests--reason (funcall exits) parent) 'crashed))))))

(ert-deftest erl-link-error-propagates ()
  "An error in a linked process kills its linked partner too."
  (erl-tests--with-clean
    (erl-tests--with-exits exits
      (let* ((parent (erl-spawn
                       (erl-spawn-link (error "Linked failure"))
                       (erl-tests--log 'parent-continued)
                       (erl-idle))))
        (let ((reason (erl-tests--reason (funcall exits) parent)))
          (should (vectorp reason))
          (should (eq (aref reason 0) 'emacs-error)))
        ;; The parent stopped as soon as the signal arrived.
        (should (null erl-tests--log))))))

(ert-deftest erl-trap-exit-turns-signals-into-messages ()
  "A process trapping exits gets [EXIT PID REASON] and lives on."
  (erl-tests--with-clean
    (erl-tests--with-exits exits
      (let* ((child nil)
             (parent (erl-spawn
                       (setq erl-trap-exit t)
                       (setq child (erl-spawn-link
                                     (erl-receive () (('die (erl-exit 'oops))))))
                       (erl-tests--echo-loop))))
        (erl-send child 'die)
        (should (equal (erl-tests--events) (list (vector 'EXIT child 'oops))))
        (should (erl-local-pid-alive-p parent))
        (should (eq (erl-tests--reason (funcall exits) parent) 'alive))
        (with-erl-process parent (should-not (erl-linked-p child)))))))

(ert-deftest erl-normal-exit-over-links ()
  "Reason `normal' kills no linked process; trapping ones get a message."
  (erl-tests--with-clean
    (let* ((trapper (erl-spawn (setq erl-trap-exit t) (erl-tests--echo-loop)))
           (plain (erl-spawn (erl-tests--echo-loop)))
           (child (erl-spawn (erl-receive () (('stop nil))))))
      (with-erl-process child
        (erl-link trapper)
        (erl-link plain))
      (erl-send child 'stop)
      (should-not (erl-local-pid-alive-p child))
      (should (erl-local-pid-alive-p plain))
      (should (erl-local-pid-alive-p trapper))
      (should (equal (erl-tests--events) (list (vector 'EXIT child 'normal))))
      (with-erl-process plain (should (null (erl-link-list)))))))

(ert-deftest erl-exit-other-process ()
  "`erl-exit' with a pid sends an exit signal, as Erlang's exit/2."
  (erl-tests--with-clean
    (erl-tests--with-exits exits
      (let ((plain (erl-spawn (erl-tests--echo-loop)))
            (trapper (erl-spawn (setq erl-trap-exit t) (erl-tests--echo-loop)))
            (killer nil))
        ;; normal: ignored by a process that doesn't trap exits
        (erl-exit 'normal plain)
        (should (erl-local-pid-alive-p plain))
        ;; any other reason kills it
        (setq killer (erl-spawn (erl-exit 'go-away plain) (erl-idle)))
        (should (eq (erl-tests--reason (funcall exits) plain) 'go-away))
        ;; a trapping process gets a message instead
        (with-erl-process killer (erl-exit 'please trapper))
        (should (equal (erl-tests--events)
                       (list (vector 'EXIT killer 'please))))
        (should (erl-local-pid-alive-p trapper))
        ;; kill cannot be trapped and becomes killed
        (erl-exit 'kill trapper)
        (should (eq (erl-tests--reason (funcall exits) trapper) 'killed))
        (should (erl-local-pid-alive-p killer))))))

(ert-deftest erl-exit-self-pid ()
  "`erl-exit' on one's own pid ends the process at once."
  (erl-tests--with-clean
    (erl-tests--with-exits exits
      (let ((pid (erl-spawn
                   (erl-exit 'normal erl-self)
                   (erl-tests--log 'not-reached))))
        (should (eq (erl-tests--reason (funcall exits) pid) 'normal))
        (should (null erl-tests--log))))))

(ert-deftest erl-kill-semantics ()
  "Erlang's exit(P, kill) kills with `killed', passed on over links.
A process exiting with reason `kill' itself sends a trappable `kill'."
  (erl-tests--with-clean
    (erl-tests--with-exits exits
      (let* ((victim (erl-spawn (setq erl-trap-exit t) (erl-idle)))
             (watcher (erl-spawn (setq erl-trap-exit t)
                                 (erl-link victim)
                                 (erl-tests--echo-loop)))
             (plain (erl-spawn (erl-link victim) (erl-idle))))
        (erl-exit 'kill victim)
        (should (eq (erl-tests--reason (funcall exits) victim) 'killed))
        (should (eq (erl-tests--reason (funcall exits) plain) 'killed))
        (should (equal (erl-tests--events)
                       (list (vector 'EXIT victim 'killed))))
        (should (erl-local-pid-alive-p watcher)))
      (setq erl-tests--log nil)
      (let* ((suicide (erl-spawn (erl-receive () (('go (erl-exit 'kill))))))
             (trapper (erl-spawn (setq erl-trap-exit t)
                                 (erl-link suicide)
                                 (erl-tests--echo-loop)))
             (plain (erl-spawn (erl-link suicide) (erl-idle))))
        (erl-send suicide 'go)
        (should (eq (erl-tests--reason (funcall exits) suicide) 'kill))
        (should (eq (erl-tests--reason (funcall exits) plain) 'kill))
        (should (equal (erl-tests--events)
                       (list (vector 'EXIT suicide 'kill))))
        (should (erl-local-pid-alive-p trapper))))))

(ert-deftest erl-link-to-dead-process ()
  "Linking with a dead process exits with `noproc', or sends [EXIT P noproc]."
  (erl-tests--with-clean
    (erl-tests--with-exits exits
      (let* ((dead (erl-spawn nil))
             (linker (erl-spawn (erl-link dead) (erl-idle)))
             (trapper (erl-spawn (setq erl-trap-exit t)
                                 (erl-link dead)
                                 (erl-tests--echo-loop))))
        (should (eq (erl-tests--reason (funcall exits) linker) 'noproc))
        (should (erl-local-pid-alive-p trapper))
        (should (equal (erl-tests--events)
                       (list (vector 'EXIT dead 'noproc))))))))

(ert-deftest erl-unlink ()
  "After `erl-unlink' an exit no longer travels."
  (erl-tests--with-clean
    (let* ((a (erl-spawn (erl-idle)))
           (b (erl-spawn (erl-link a) (erl-unlink a) (erl-idle))))
      (with-erl-process a (should (null (erl-link-list))))
      (with-erl-process b (should (null (erl-link-list))))
      (erl-exit 'boom a)
      (should-not (erl-local-pid-alive-p a))
      (should (erl-local-pid-alive-p b)))))

(ert-deftest erl-long-link-chain ()
  "An exit through 3000 links neither recurses deeply nor stops early."
  (erl-tests--with-clean
    (erl-tests--with-exits exits
      (let* ((n 3000)
             (pids (cl-loop repeat n collect (erl-spawn (erl-idle)))))
        (cl-loop for (a b) on pids while b
                 do (with-erl-process a (erl-link b)))
        (let ((max-lisp-eval-depth 300))
          (erl-exit 'chain (car pids)))
        (should (= (length (funcall exits)) n))
        (should (cl-every (lambda (e) (eq (cdr e) 'chain)) (funcall exits)))
        (should-not (cl-some #'erl-local-pid-alive-p pids))))))

(ert-deftest erl-killing-the-buffer-kills-the-process ()
  "Killing a process buffer ends the process with `killed'."
  (erl-tests--with-clean
    (erl-tests--with-exits exits
      (let* ((pid (erl-spawn (erl-idle)))
             (trapper (erl-spawn (setq erl-trap-exit t)
                                 (erl-link pid)
                                 (erl-tests--echo-loop))))
        (kill-buffer (erl-pid->buffer pid))
        (should (eq (erl-tests--reason (funcall exits) pid) 'killed))
        (should (equal (erl-tests--events) (list (vector 'EXIT pid 'killed))))
        (should (erl-local-pid-alive-p trapper))))))

(ert-deftest erl-major-mode-keeps-process ()
  "A major mode started in a process buffer keeps the process's state."
  (erl-tests--with-clean
    (let ((pid (erl-spawn
                 (text-mode)
                 (setq erl-trap-exit t)
                 (fundamental-mode)
                 (erl-tests--echo-loop))))
      (erl-send pid 'still-here)
      (should (equal (erl-tests--events) '(still-here)))
      (with-erl-process pid
        (should (equal erl-self pid))
        (should erl-trap-exit)))))

;;;; Registered names

(ert-deftest erl-registered-names ()
  "Names are registered, looked up, sent to, refused twice, freed on exit."
  (erl-tests--with-clean
    (let ((pid (erl-spawn (erl-register 'erl-tests-server)
                          (erl-tests--echo-loop))))
      (should (equal (erl-whereis 'erl-tests-server) pid))
      (should (string-match-p "erl-tests-server"
                              (buffer-name (erl-pid->buffer pid))))
      (erl-send 'erl-tests-server 'by-name)
      (erl-send (vector 'erl-tests-server erl-node-name) 'by-tuple)
      (should (equal (erl-tests--events) '(by-name by-tuple)))
      ;; taken
      (let ((err (should-error (erl-register 'erl-tests-server
                                             (erl-spawn (erl-idle)))
                               :type 'erl-exit-signal)))
        (should (equal (cdr err)
                       (list [badarg [already-registered erl-tests-server]]))))
      ;; freed on exit
      (erl-exit 'kill pid)
      (should (null (erl-whereis 'erl-tests-server)))
      (let ((err (should-error (erl-send 'erl-tests-server 'x)
                               :type 'erl-exit-signal)))
        (should (equal (cdr err)
                       (list [badarg [not-registered erl-tests-server]]))))
      ;; and can be taken again
      (let ((again (erl-spawn (erl-idle))))
        (erl-register 'erl-tests-server again)
        (should (equal (erl-whereis 'erl-tests-server) again))
        (should (erl-unregister 'erl-tests-server))
        (should (null (erl-whereis 'erl-tests-server)))))))

(ert-deftest erl-register-in-process-failure-exits ()
  "A process registering a taken name exits with the badarg reason."
  (erl-tests--with-clean
    (erl-tests--with-exits exits
      (erl-spawn (erl-register 'erl-tests-taken) (erl-idle))
      (let ((pid (erl-spawn (erl-register 'erl-tests-taken) (erl-idle))))
        (should (equal (erl-tests--reason (funcall exits) pid)
                       [badarg [already-registered erl-tests-taken]]))))))

(ert-deftest erl-send-to-dead-process-logged ()
  "A message to a local process that is not alive is logged, never lost.
Its pid is written in full, with the creation, in *erl-lost-msgs*;
so is a pid of an earlier Emacs with this node name."
  (erl-tests--with-clean
    (let* ((dead (erl-spawn nil))
           (earlier (vector erl-tag 'erl-pid erl-node-name 99999 0
                            (logxor erl-node-creation 1))))
      (erl-send dead 'to-the-dead)
      (erl-send earlier 'to-an-earlier-emacs)
      (with-current-buffer "*erl-lost-msgs*"
        (should (string-match-p
                 (format "to <[^>]*\\.%d\\.0> (creation %d): 'to-the-dead'"
                         (erl-pid-id dead) erl-node-creation)
                 (buffer-string)))
        (should (string-match-p
                 (format "to <[^>]*\\.99999\\.0> (creation %d): \
'to-an-earlier-emacs'" (logxor erl-node-creation 1))
                 (buffer-string)))))))

(defvar erl-tests--spun nil
  "Set by the runaway process when its loop ends.")

(ert-deftest erl-quit-stops-runaway-process ()
  "A quit stops a process's code even where quitting is inhibited.
Event filters run with `inhibit-quit' t; the process sets
`quit-flag' itself, as C-g would, then loops.  It exits with the
reason `quit' and its links fire; the quit goes no further."
  (erl-tests--with-clean
    (setq erl-tests--spun nil)
    (let* ((watcher (erl-spawn (setq erl-trap-exit t) (erl-tests--echo-loop)))
           (runaway (with-erl-process watcher
                      (erl-spawn-link
                        (erl-receive ()
                            (('spin
                              (let ((n 0))
                                (while (< n 3000000)
                                  (setq n (1+ n))
                                  (when (= n 1000)
                                    (setq quit-flag t))))
                              (setq erl-tests--spun t))))))))
      (let ((inhibit-quit t))
        (erl-send runaway 'spin))
      (should-not erl-tests--spun)
      (should-not quit-flag)
      (should-not (erl-local-pid-alive-p runaway))
      (should (equal (erl-tests--events) (list (vector 'EXIT runaway 'quit))))
      (should (erl-local-pid-alive-p watcher)))))

;;;; The distribution layer's side

(ert-deftest erl-remote-destinations-go-to-derl ()
  "Remote pids and names are handed to the erl-dist-* functions."
  (erl-tests--with-clean
    (erl-tests--with-dist-stubs calls
      (let* ((remote (erl-tests--remote-pid 7))
             (pid (erl-spawn
                    (erl-send remote 'hi)
                    (erl-send [rex other@host] 'call)
                    (erl-link remote)
                    (erl-unlink remote)
                    (erl-link remote)
                    (erl-exit 'bye remote)
                    (erl-receive () (('stop (erl-exit 'done)))))))
        (erl-send pid 'stop)
        (should (equal calls
                       `((erl-dist-send ,pid ,remote hi)
                         (erl-dist-reg-send ,pid other@host rex call)
                         (erl-dist-link ,pid ,remote)
                         (erl-dist-unlink ,pid ,remote)
                         (erl-dist-link ,pid ,remote)
                         (erl-dist-exit2 ,pid ,pid ,remote bye)
                         (erl-dist-exit ,pid ,pid ,remote done))))))))

(ert-deftest erl-remote-sends-from-outside-processes ()
  "From outside any process, the sender is the null pid."
  (erl-tests--with-dist-stubs calls
    (let ((remote (erl-tests--remote-pid 3)))
      (erl-send remote 'x)
      (erl-exit 'kill remote)
      (should (equal calls `((erl-dist-send ,erl-null-pid ,remote x)
                             (erl-dist-exit2 ,erl-null-pid ,erl-null-pid
                                             ,remote kill)))))))

(ert-deftest erl-incoming-link-and-exit ()
  "The `erl-add-link' and `erl-send-exit' of derl act as Erlang links."
  (erl-tests--with-clean
    (erl-tests--with-exits exits
      (erl-tests--with-dist-stubs calls
        (let* ((remote (erl-tests--remote-pid 11))
               (plain (erl-spawn (erl-idle)))
               (trapper (erl-spawn (setq erl-trap-exit t)
                                   (erl-tests--echo-loop))))
          (erl-add-link plain remote)
          (erl-add-link trapper remote)
          (with-erl-process plain (should (equal (erl-link-list) (list remote))))
          ;; normal from a linked remote: link gone, process alive
          (erl-send-exit remote plain 'normal)
          (should (erl-local-pid-alive-p plain))
          (with-erl-process plain (should (null (erl-link-list))))
          (erl-add-link plain remote)
          (erl-send-exit remote plain 'noconnection)
          (should (eq (erl-tests--reason (funcall exits) plain) 'noconnection))
          ;; it was the remote's exit: nothing is sent back
          (should (null calls))
          (erl-send-exit remote trapper 'crash)
          (should (equal (erl-tests--events)
                         (list (vector 'EXIT remote 'crash))))
          (should (erl-local-pid-alive-p trapper)))))))

(ert-deftest erl-incoming-unlink ()
  "After `erl-remove-link', a link exit from the remote is ignored."
  (erl-tests--with-clean
    (let* ((remote (erl-tests--remote-pid 12))
           (pid (erl-spawn (erl-idle))))
      (erl-add-link pid remote)
      (erl-remove-link pid remote)
      (with-erl-process pid (should (null (erl-link-list))))
      (erl-send-exit remote pid 'crash 'link)
      (should (erl-local-pid-alive-p pid))
      ;; exit/2 from a remote process does not need a link
      (erl-send-exit remote pid 'crash 'exit2)
      (should-not (erl-local-pid-alive-p pid)))))

(ert-deftest erl-incoming-exit2-kill ()
  "An incoming exit2 `kill' can't be trapped; a link `kill' can."
  (erl-tests--with-clean
    (erl-tests--with-exits exits
      (let* ((remote (erl-tests--remote-pid 13))
             (a (erl-spawn (setq erl-trap-exit t) (erl-tests--echo-loop)))
             (b (erl-spawn (setq erl-trap-exit t) (erl-tests--echo-loop))))
        (erl-add-link a remote)
        (erl-send-exit remote a 'kill 'link)
        (should (erl-local-pid-alive-p a))
        (should (equal (erl-tests--events) (list (vector 'EXIT remote 'kill))))
        (erl-send-exit remote b 'kill 'exit2)
        (should (eq (erl-tests--reason (funcall exits) b) 'killed))))))

(ert-deftest erl-incoming-link-to-dead-process ()
  "A remote link to a dead local process is answered with `noproc'."
  (erl-tests--with-dist-stubs calls
    (let ((remote (erl-tests--remote-pid 14))
          (dead (erl-spawn nil)))
      (erl-add-link dead remote)
      (should (equal calls `((erl-dist-exit ,erl-null-pid ,dead ,remote
                                            noproc)))))))

(ert-deftest erl-exit-hook-errors-are-contained ()
  "An error in `erl-process-exit-functions' doesn't break exits."
  (erl-tests--with-clean
    (erl-tests--with-exits exits
      (let ((erl-process-exit-functions
             (cons (lambda (_pid _reason) (error "Hook failure"))
                   erl-process-exit-functions)))
        (let ((pid (erl-spawn nil)))
          (should-not (erl-local-pid-alive-p pid))
          (should (eq (erl-tests--reason (funcall exits) pid) 'normal)))))))

(ert-deftest erl-nodedown-breaks-links ()
  "When a node goes down, processes linked there get `noconnection'."
  (erl-tests--with-clean
    (erl-tests--with-exits exits
      (let* ((remote (erl-tests--remote-pid 21))
             (elsewhere (vector erl-tag 'erl-pid 'third@host 5 0 1))
             (plain (erl-spawn (erl-idle)))
             (trapper (erl-spawn (setq erl-trap-exit t) (erl-tests--echo-loop)))
             (unrelated (erl-spawn (erl-idle))))
        (erl-add-link plain remote)
        (erl-add-link trapper remote)
        (erl-add-link unrelated elsewhere)
        (run-hook-with-args 'erl-nodedown-hook 'other@host)
        (should (eq (erl-tests--reason (funcall exits) plain) 'noconnection))
        (should (equal (erl-tests--events)
                       (list (vector 'EXIT remote 'noconnection))))
        (with-erl-process trapper (should (null (erl-link-list))))
        (should (erl-local-pid-alive-p unrelated))
        (with-erl-process unrelated
          (should (equal (erl-link-list) (list elsewhere))))))))

(ert-deftest erl-nodes-follow-hooks ()
  "`erl-nodes' follows `erl-nodeup-hook' and `erl-nodedown-hook'."
  (let ((erl-nodes nil))
    (run-hook-with-args 'erl-nodeup-hook 'a@b nil)
    (run-hook-with-args 'erl-nodeup-hook 'a@b nil)
    (should (equal erl-nodes '(a@b)))
    (run-hook-with-args 'erl-nodedown-hook 'a@b)
    (should (null erl-nodes))))

;;;; Throughput

(defvar erl-tests--received 0
  "Messages received by the throughput sink.")

(defvar erl-tests--disorder nil
  "The first message the throughput sink got out of order, if any.")

(defun erl-tests--sink (expected)
  "Receive [msg I] for I = EXPECTED, EXPECTED + 1... in order."
  (erl-receive ()
      ((['msg i]
        (setq erl-tests--received (1+ erl-tests--received))
        (unless (or erl-tests--disorder (= i expected))
          (setq erl-tests--disorder (list i expected)))
        (erl-tests--sink (1+ i))))))

(ert-deftest erl-throughput ()
  "100,000 messages reach a receive loop, all and in order."
  (erl-tests--with-clean
    (let* ((n 100000)
           (erl-tests--received 0)
           (erl-tests--disorder nil)
           (pid (erl-spawn (erl-tests--sink 0)))
           (start (float-time)))
      (dotimes (i n)
        (erl-send pid (vector 'msg i)))
      (let ((elapsed (- (float-time) start)))
        (message "erl-throughput: %d messages in %.3f s, %.0f messages/s%s"
                 n elapsed (/ n elapsed)
                 (if (byte-code-function-p (symbol-function 'erl-send))
                     ""
                   " (erl.el not byte-compiled)")))
      (should (= erl-tests--received n))
      (should (null erl-tests--disorder))
      (with-erl-process pid (should (null erl-mailbox))))))

(provide 'erl-tests)

;;; erl-tests.el ends here

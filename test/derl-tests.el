;;; derl-tests.el --- connections to real Erlang nodes  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; Every test here talks to real `erl' nodes started for it (with a
;; random name and cookie, registered with a private epmd) and stops
;; them afterwards.

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'derl-ert)
(require 'derl)
(require 'epmd)
(require 'erl)

;;;; Set-up shared by the tests

(defun derl-test-configure ()
  "Start from no connections; point derl at the test epmd and cookie.
The first time, give Emacs a fresh node name."
  (derl-test-disconnect-all)
  (setq derl-cookie derl-test-cookie
        derl-epmd-port (derl-test-epmd-port)
        derl-connect-timeout 10)
  (unless (string-prefix-p "emacs" (symbol-name erl-node-name))
    ;; Through the setter, which renames the pids already made.
    (customize-set-variable 'erl-node-name
                            (intern (format "emacs%s@localhost"
                                            (derl-test-random-string 6))))))

(defmacro derl-test-with-node (spec &rest body)
  "Start a node as in SPEC, (VAR ERL-ARGS...), run BODY, stop the node."
  (declare (indent 1))
  (let ((var (car spec)))
    `(progn
       (derl-test-configure)
       (let ((,var (derl-test-start-node ,@(cdr spec))))
         (unwind-protect
             (progn ,@body)
           (ignore-errors (derl-disconnect ,var))
           (derl-test-stop-node ,var))))))

(defun derl-test-wait (predicate &optional timeout)
  "Wait up to TIMEOUT seconds (default 20) for PREDICATE to return non-nil."
  (derl--ensure-started)
  (derl--wait predicate (or timeout 20) "in a test")
  (funcall predicate))

(defun derl-test-inbox ()
  "Spawn a process that keeps every message it gets.
Return (PID . BOX): BOX's car is the list of messages, newest first."
  (let* ((box (list nil))
         (pid (erl-spawn (derl-test--collect box))))
    (cons pid box)))

(defun derl-test--collect (box)
  "Receive forever, pushing each message onto the car of BOX."
  (erl-receive (box)
      ((msg (push msg (car box))
            (derl-test--collect box)))))

(defun derl-test-messages (inbox)
  "The messages INBOX received so far, oldest first."
  (reverse (cadr inbox)))

(defun derl-test-await-message (inbox predicate &optional timeout)
  "Wait until INBOX has a message satisfying PREDICATE; return it."
  (derl-test-wait (lambda () (cl-find-if predicate (cadr inbox))) timeout))

(defun derl-test-watch-death (inbox remote)
  "Have REMOTE's node tell INBOX [dead REMOTE REASON] when REMOTE dies.
Return once the node watches it."
  (erl-send (derl-test-echo (erl-pid-node remote))
            (vector 'after_death remote (car inbox)))
  (derl-test-await-message inbox (lambda (m) (equal m (vector 'watching
                                                                remote)))))

(defun derl-test-echo (node)
  "The registered echo process of NODE, as [NAME NODE]."
  (vector 'echo node))

;;;; Connecting

(ert-deftest derl-connect-and-hooks ()
  "Connecting runs `erl-nodeup-hook', disconnecting `erl-nodedown-hook'."
  (derl-test-with-node (node)
    (let (ups downs)
      (let ((erl-nodeup-hook (list (lambda (n c) (push (list n c) ups))))
            (erl-nodedown-hook (list (lambda (n) (push n downs)))))
        (let ((conn (derl-connect node)))
          (should (derl-connection-p conn))
          (should (eq (derl-connection-state conn) 'up))
          (should (equal ups (list (list node conn))))
          (should (memq node (derl-nodes)))
          (derl-disconnect node)
          (derl-test-wait (lambda () downs))
          (should (equal downs (list node)))
          (should-not (memq node (derl-nodes))))))))

(ert-deftest derl-send-to-registered-name-and-pid ()
  "Send to a registered name and to a pid; get the replies."
  (derl-test-with-node (node)
    (derl-connect node)
    (let ((inbox (derl-test-inbox)))
      ;; To the registered name; echo answers our pid.
      (erl-send (derl-test-echo node) (vector (car inbox) 'hello))
      (should (equal (derl-test-await-message inbox (lambda (m) (eq m 'hello)))
                     'hello))
      ;; Learn a remote pid, then send to it directly.
      (erl-send (derl-test-echo node) (vector 'spawn_linked (car inbox)))
      (let* ((spawned (derl-test-await-message
                       inbox (lambda (m) (and (vectorp m)
                                              (eq (aref m 0) 'spawned)))))
             (remote (aref spawned 1)))
        (should (erl-pid-p remote))
        (should (eq (erl-pid-node remote) node))
        (erl-send (derl-test-echo node) (vector (car inbox) (list 1 "two" 3.0)))
        (should (derl-test-await-message
                 inbox (lambda (m) (equal m '(1 "two" 3.0)))))))))

(ert-deftest derl-lots-of-messages-in-order ()
  "10,000 messages each way arrive complete and in order."
  (derl-test-with-node (node)
    (derl-connect node)
    (let ((inbox (derl-test-inbox)))
      ;; Erlang -> Emacs.
      (erl-send (derl-test-echo node) (vector 'stream (car inbox) 10000))
      (derl-test-await-message inbox (lambda (m) (eq m 'done)) 60)
      (let ((seqs (cl-remove-if-not #'vectorp (derl-test-messages inbox))))
        (should (= (length seqs) 10000))
        (should (equal (mapcar (lambda (m) (aref m 1)) seqs)
                       (number-sequence 1 10000))))
      ;; Emacs -> Erlang: the node counts them in order.
      (erl-send (derl-test-echo node) (vector 'count (car inbox) 10000))
      (dotimes (i 10000)
        (erl-send (derl-test-echo node) (vector 'n (1+ i))))
      (should (equal (derl-test-await-message
                      inbox (lambda (m) (and (vectorp m)
                                             (eq (aref m 0) 'counted)))
                      60)
                     [counted ok])))))

(ert-deftest derl-fifty-megabytes ()
  "A 50 MB message makes the round trip intact."
  (derl-test-with-node (node)
    (derl-connect node)
    (let* ((inbox (derl-test-inbox))
           (big (make-string (* 50 1024 1024) ?x)))
      (aset big 12345 ?y)
      (erl-send (derl-test-echo node)
                (vector (car inbox) (vector 'big (erl-binary big))))
      (let ((reply (derl-test-await-message
                    inbox (lambda (m) (and (vectorp m) (eq (aref m 0) 'big)))
                    120)))
        (should (equal (aref reply 1) big))))))

(ert-deftest derl-round-trips-are-prompt ()
  "1,000 sequential round trips finish well under 20 seconds.
This catches the event pipe made without
`process-adaptive-read-buffering' bound to nil (20 wakes a second,
so 50 seconds); they take a fraction of a second, and the bound
leaves room for a loaded machine."
  (derl-test-with-node (node)
    (derl-connect node)
    (let ((inbox (derl-test-inbox))
          (start (float-time)))
      (dotimes (i 1000)
        (erl-send (derl-test-echo node) (vector (car inbox) i))
        (derl-test-await-message inbox (lambda (m) (eql m i))))
      (should (< (- (float-time) start) 20.0)))))

(ert-deftest derl-two-nodes-at-once ()
  "Two nodes connected at the same time each answer."
  (derl-test-with-node (a)
    (derl-test-with-node (b)
      (derl-connect a)
      (derl-connect b)
      (let ((inbox (derl-test-inbox)))
        (erl-send (derl-test-echo a) (vector (car inbox) 'from-a))
        (erl-send (derl-test-echo b) (vector (car inbox) 'from-b))
        (should (derl-test-await-message inbox (lambda (m) (eq m 'from-a))))
        (should (derl-test-await-message inbox (lambda (m) (eq m 'from-b))))
        (should (equal (sort (derl-nodes) #'string<)
                       (sort (list a b) #'string<)))))))

(ert-deftest derl-reconnect-after-restart ()
  "After the remote node restarts under the same name, messages flow again."
  (derl-test-configure)
  (let* ((node (derl-test-start-node))
         (name (car (split-string (symbol-name node) "@")))
         downs)
    (unwind-protect
        (let ((erl-nodedown-hook (list (lambda (n) (push n downs)))))
          (derl-connect node)
          (derl-test-stop-node node)
          (derl-test-wait (lambda () downs))
          ;; Until EPMD has forgotten it.
          (derl-test-wait (lambda ()
                            (not (assoc name (epmd-names "localhost")))))
          ;; Same name again.
          (progn
            (derl-test-start-named-node (symbol-name node))
            (derl-connect node)
            (let ((inbox (derl-test-inbox)))
              (erl-send (derl-test-echo node) (vector (car inbox) 'again))
              (should (derl-test-await-message inbox
                                               (lambda (m) (eq m 'again)))))))
      (ignore-errors (derl-disconnect node))
      (derl-test-stop-node node))))

(ert-deftest derl-event-pipe-deleted ()
  "Deleting the event pipe by hand loses nothing: it is made anew."
  (derl-test-with-node (node)
    (derl-connect node)
    (let ((inbox (derl-test-inbox)))
      ;; Events arrive while there is no pipe: the I/O thread's wake-up
      ;; write fails (the reader is gone) and nothing breaks.
      (erl-send (derl-test-echo node) (vector 'stream (car inbox) 1000))
      (delete-process derl--events-process)
      (sleep-for 0.3)
      (erl-send (derl-test-echo node) (vector (car inbox) 'after))
      (should (process-live-p derl--events-process))
      (should (derl-test-await-message inbox (lambda (m) (eq m 'after))))
      (should (derl-test-await-message inbox (lambda (m) (eq m 'done))))
      (should (= (cl-count-if #'vectorp (cadr inbox)) 1000)))))

;;;; Links and exits

(ert-deftest derl-links-and-exits-both-ways ()
  "Links carry exits from Erlang to Emacs and from Emacs to Erlang."
  (derl-test-with-node (node)
    (derl-connect node)
    (let ((inbox (derl-test-inbox)))
      (erl-send (derl-test-echo node) (vector 'register_tester (car inbox)))
      ;; Erlang -> Emacs: a remote process linked to a trapping local one.
      (let* ((trapper-box (list nil))
             (trapper (erl-spawn
                        (setq erl-trap-exit t)
                        (derl-test--collect trapper-box))))
        (erl-send (derl-test-echo node) (vector 'spawn_linked trapper))
        (let ((spawned (derl-test-wait
                        (lambda () (cl-find-if #'vectorp (car trapper-box))))))
          (erl-send (aref spawned 1) 'die)
          (let ((exit (derl-test-wait
                       (lambda () (cl-find-if
                                   (lambda (m) (and (vectorp m)
                                                    (eq (aref m 0) 'EXIT)))
                                   (car trapper-box))))))
            (should (equal (aref exit 1) (aref spawned 1)))
            (should (eq (aref exit 2) 'died)))))
      ;; Emacs -> Erlang: the node links to a local process that exits.
      (let ((victim (erl-spawn (erl-receive () ((_ (erl-exit 'goodbye)))))))
        (erl-send (derl-test-echo node) (vector 'link victim))
        (derl-test-await-message inbox (lambda (m) (eq m 'linked)))
        (erl-send victim 'go)
        (should (equal (derl-test-await-message
                        inbox (lambda (m) (and (vectorp m)
                                               (eq (aref m 0) 'linked_exit))))
                       [linked_exit goodbye]))))))

(ert-deftest derl-nodedown-sends-noconnection ()
  "When a node dies, local processes linked to it get `noconnection'."
  (derl-test-with-node (node)
    (derl-connect node)
    (let* ((box (list nil))
           (local (erl-spawn (setq erl-trap-exit t) (derl-test--collect box))))
      (erl-send (derl-test-echo node) (vector 'spawn_linked local))
      (derl-test-wait (lambda () (car box)))
      (derl-test-stop-node node)
      (let ((exit (derl-test-wait
                   (lambda () (cl-find-if
                               (lambda (m) (and (vectorp m)
                                                (eq (aref m 0) 'EXIT)))
                               (car box))))))
        (should (eq (aref exit 2) 'noconnection))))))

(ert-deftest derl-monitor-from-erlang ()
  "An Erlang process monitoring a local one gets its 'DOWN'."
  (derl-test-with-node (node)
    (derl-connect node)
    (let ((inbox (derl-test-inbox))
          (victim (erl-spawn (erl-receive () ((_ (erl-exit 'bye)))))))
      (erl-send (derl-test-echo node) (vector 'register_tester (car inbox)))
      (erl-send (derl-test-echo node) (vector 'monitor victim))
      (derl-test-await-message inbox (lambda (m) (eq m 'monitoring)))
      (erl-send victim 'go)
      (should (equal (derl-test-await-message
                      inbox (lambda (m) (and (vectorp m) (eq (aref m 0) 'down))))
                     [down bye])))))

;; How a process on NODE reports its links, from Erlang's own
;; `process_info': the proof that a link or unlink took effect there.
(defun derl-test-remote-links (inbox remote)
  "Ask REMOTE, a derl_peer plain process, for its links; reply to INBOX."
  (with-erl-process (car inbox)
    (erl-send remote (vector 'links (car inbox))))
  (let ((reply (derl-test-await-message
                inbox (lambda (m) (and (vectorp m) (eq (aref m 0) 'links))))))
    (setcar (cdr inbox) (delq reply (cadr inbox)))
    (aref reply 2)))

(ert-deftest derl-link-then-unlink ()
  "A link from Emacs shows on the node; after UNLINK_ID it is gone.
The remote process then dies, and no exit reaches the local one:
the marker sent once the node has seen it die comes alone."
  (derl-test-with-node (node)
    (derl-connect node)
    (let* ((inbox (derl-test-inbox))
           (local (car inbox))
           (remote (progn
                     (erl-send (derl-test-echo node) (vector 'spawn_plain local))
                     (aref (derl-test-await-message
                            inbox (lambda (m) (and (vectorp m)
                                                   (eq (aref m 0) 'plain))))
                           1))))
      (with-erl-process local (setq erl-trap-exit t))
      (with-erl-process local (erl-link remote))
      ;; Erlang sees the link: signals between two processes keep order.
      (should (equal (derl-test-remote-links inbox remote) (list local)))
      (with-erl-process local (erl-unlink remote))
      (should (equal (derl-test-remote-links inbox remote) nil))
      (with-erl-process local (should-not (erl-link-list)))
      ;; Kill it; a marker comes once the node has seen it die.
      (derl-test-watch-death inbox remote)
      (erl-send remote 'die)
      (should (equal (derl-test-await-message
                      inbox (lambda (m) (and (vectorp m)
                                             (eq (aref m 0) 'dead))))
                     (vector 'dead remote 'died)))
      (should-not (cl-find-if (lambda (m) (and (vectorp m)
                                               (eq (aref m 0) 'EXIT)))
                              (cadr inbox))))))

(ert-deftest derl-exit2-to-a-node ()
  "`erl-exit' on a remote pid (EXIT2): the node's process gets it.
A trapping process receives {'EXIT', From, Reason}; a plain one dies
with Reason."
  (derl-test-with-node (node)
    (derl-connect node)
    (let* ((inbox (derl-test-inbox))
           (local (car inbox))
           (sender (erl-spawn (erl-receive () ((_ nil)))))
           trapper plain)
      (erl-send (derl-test-echo node) (vector 'spawn_trapper local))
      (erl-send (derl-test-echo node) (vector 'spawn_plain local))
      (setq trapper (aref (derl-test-await-message
                           inbox (lambda (m) (and (vectorp m)
                                                  (eq (aref m 0) 'trapper))))
                          1)
            plain (aref (derl-test-await-message
                         inbox (lambda (m) (and (vectorp m)
                                                (eq (aref m 0) 'plain))))
                        1))
      (with-erl-process sender (erl-exit 'bye trapper))
      (should (equal (derl-test-await-message
                      inbox (lambda (m) (and (vectorp m)
                                             (eq (aref m 0) 'trapped))))
                     (vector 'trapped (vector 'EXIT sender 'bye))))
      (derl-test-watch-death inbox plain)
      (with-erl-process sender (erl-exit (list 'shoo 42) plain))
      (should (equal (derl-test-await-message
                      inbox (lambda (m) (and (vectorp m)
                                             (eq (aref m 0) 'dead))))
                     (vector 'dead plain (list 'shoo 42)))))))

(ert-deftest derl-exit2-from-a-node ()
  "`exit(Pid, Reason)' on the node (EXIT2) reaches Emacs processes.
A trapping one gets [EXIT From Reason]; a plain one exits with
Reason; `kill' ends even a trapping one, as `killed'."
  (derl-test-with-node (node)
    (derl-connect node)
    (let* ((box (list nil))
           (trapping (erl-spawn (setq erl-trap-exit t)
                                (derl-test--collect box)))
           (plain (erl-spawn (erl-receive () ((_ nil)))))
           (killed (erl-spawn (setq erl-trap-exit t)
                              (derl-test--collect (list nil))))
           (reasons nil))
      (let ((erl-process-exit-functions
             (cons (lambda (pid reason) (push (cons pid reason) reasons))
                   erl-process-exit-functions)))
        (erl-send (derl-test-echo node) (vector 'exit trapping 'shoo))
        (let ((exit (derl-test-wait
                     (lambda () (cl-find-if
                                 (lambda (m) (and (vectorp m)
                                                  (eq (aref m 0) 'EXIT)))
                                 (car box))))))
          (should (eq (aref exit 2) 'shoo))
          (should (erl-pid-p (aref exit 1)))
          (should (eq (erl-pid-node (aref exit 1)) node)))
        (should (erl-local-pid-alive-p trapping))
        (erl-send (derl-test-echo node) (vector 'exit plain (list 'go 'away)))
        (erl-send (derl-test-echo node) (vector 'exit killed 'kill))
        (derl-test-wait (lambda () (and (assoc plain reasons)
                                        (assoc killed reasons))))
        (should (equal (cdr (assoc plain reasons)) '(go away)))
        (should (eq (cdr (assoc killed reasons)) 'killed))
        (should-not (erl-local-pid-alive-p plain))
        (should-not (erl-local-pid-alive-p killed))))))

(ert-deftest derl-spawn-request-from-a-node ()
  "A node's `erlang:spawn_request' to Emacs gets the answer `notsup'.
Emacs runs no Erlang code: the node sees an error reply, not a hang."
  (derl-test-with-node (node)
    (derl-connect node)
    (let ((inbox (derl-test-inbox)))
      (erl-send (derl-test-echo node)
                (vector 'spawn_request erl-node-name (car inbox)))
      (should (equal (derl-test-await-message
                      inbox (lambda (m) (and (vectorp m)
                                             (eq (aref m 0) 'spawn_reply))))
                     [spawn_reply error notsup])))))

;;;; The trace buffer

(ert-deftest derl-trace-buffer ()
  "The trace buffer has a line per signal, each way."
  (derl-test-with-node (node)
    (let ((derl-use-trace-buffer t))
      (derl-connect node)
      (let ((inbox (derl-test-inbox)))
        (erl-send (derl-test-echo node) (vector (car inbox) 'traced))
        (derl-test-await-message inbox (lambda (m) (eq m 'traced)))
        (derl-trace-flush)
        (with-current-buffer (format "*trace %s*" node)
          (let ((text (buffer-string)))
            (should (string-match-p "^>> REG_SEND: .* echo {.*traced}$" text))
            (should (string-match-p "^<< SEND_SENDER: <.*> <.*> traced$" text))
            (should-not (string-match-p (regexp-quote derl-test-cookie)
                                        text))))))))

(ert-deftest derl-trace-buffer-is-bounded ()
  "A huge message prints short and the buffer stays trimmed."
  (derl-test-with-node (node)
    (let ((derl-use-trace-buffer t)
          (derl-trace-max-size 20000))
      (derl-connect node)
      (let ((inbox (derl-test-inbox)))
        (dotimes (i 200)
          (erl-send (derl-test-echo node)
                    (vector (car inbox) (list i (make-list 5000 'x)))))
        (derl-test-wait (lambda () (= (length (cadr inbox)) 200)))
        (derl-trace-flush)
        (with-current-buffer (format "*trace %s*" node)
          (should (< (buffer-size) 25000))
          (should (cl-every (lambda (line) (< (length line) 700))
                            (split-string (buffer-string) "\n"))))))))

(ert-deftest derl-trace-docstrings-show-keys ()
  "The trace mode's and options' docstrings show keys, not raw escapes."
  ;; The mode's map gets `special-mode-map' as parent once it runs.
  (with-temp-buffer (derl-trace-mode))
  (let ((mode (documentation 'derl-trace-mode))
        (delay (documentation-property 'derl-trace-delay
                                       'variable-documentation)))
    (should-not (string-match-p "{derl-trace-mode-map}\\|\\[revert-buffer\\]"
                                mode))
    (should (string-match-p "\\_<g\\_> writes the lines" mode))
    (should-not (string-match-p "\\[derl-trace-flush\\]" delay))))

(defun derl-test--trace-terms ()
  "Terms of every kind, for the trace printers to print alike."
  (let ((map (make-hash-table :test 'equal)))
    (puthash 'k 1 map)
    (list 'a 'Hello (intern "it's") (intern "a\\b") (intern "") t 'true
          (intern "with space") (intern "été")
          0 -1 123456789 (expt 2 40) (expt 2 70) 3.14 -0.5 1e100
          "abc" "" "a\"b\\c" "tab\there" "line\nnext" (string 1 2 3)
          (unibyte-string 27 65) (unibyte-string 200 201) "été"
          (erl-binary "abc") (erl-binary "") (erl-binary "q\"x\\")
          (erl-binary (unibyte-string 1 2 255)) (erl-binary "new\nline")
          '(a b c) '(1000 2000) '(104 105) '(a . b) '(a b . c) nil []
          [a [b [c {}]]] (vector 'seq 42) erl-null-pid map
          (vector erl-tag 'erl-export 'lists 'map 2)
          (make-string 299 ?x) (make-string 400 ?x)
          (number-sequence 1 200)
          (let ((deep 'bottom))
            (dotimes (_ 31) (setq deep (list deep)))
            deep)
          (let ((deep 'bottom))
            (dotimes (_ 45) (setq deep (vector deep)))
            deep))))

(ert-deftest derl-trace-module-prints-as-lisp-does ()
  "The trace lines the module prints are exactly those Lisp prints.
The same messages come back from a real node twice, printed by the
module where it can, then by Lisp alone; in both decoding modes."
  (derl-test-with-node (node)
    (let ((derl-use-trace-buffer t)
          (derl-trace-max-size 10000000)
          (terms (derl-test--trace-terms))
          (traced 0))
      (derl-connect node)
      (let ((count (lambda (events)
                     ;; (traced-frames ID TEXTS END CONTROL MESSAGE ...)
                     (dolist (e events)
                       (when (eq (car e) 'traced-frames)
                         (cl-loop for (end) on (cdddr e) by #'cdddr
                                  when end do (setq traced (1+ traced)))))
                     events)))
        (advice-add 'derl--module-events :filter-return count)
        (unwind-protect
            (dolist (lossless '(nil t))
              (let ((erlext-decode-binaries-as (if lossless 'erl-binary
                                                 'string))
                    (texts nil)
                    ;; One receiver: its pid is on every line.
                    (inbox (derl-test-inbox)))
                (dolist (in-module '(t nil))
                  ;; Without a term length the module prints nothing,
                  ;; and Lisp prints every line.
                  (let ((lisp-prints (lambda (args)
                                       (if in-module args
                                         (list (nth 0 args) (nth 1 args) nil
                                               (nth 3 args))))))
                    (advice-add 'derl--module-events :filter-args lisp-prints)
                    (unwind-protect
                        (progn
                          (setcar (cdr inbox) nil)
                          (derl-trace-flush)
                          (with-current-buffer (derl-trace-node-buffer node)
                            (let ((inhibit-read-only t))
                              (erase-buffer)))
                          (dolist (term terms)
                            (erl-send (derl-test-echo node)
                                      (vector (car inbox) term)))
                          (derl-test-wait (lambda () (= (length (cadr inbox))
                                                        (length terms))))
                          (derl-trace-flush))
                      (advice-remove 'derl--module-events lisp-prints))
                    (with-current-buffer (derl-trace-node-buffer node)
                      (push (cl-remove-if-not
                             (lambda (line) (string-prefix-p "<< " line))
                             (split-string (buffer-string) "\n"))
                            texts))))
                (should (= (length (car texts)) (length terms)))
                (should (equal (car texts) (cadr texts)))))
          (advice-remove 'derl--module-events count)))
      ;; The simple ones were the module's to print.
      (should (> traced 40)))))

(ert-deftest derl-trace-lines-appear-by-themselves ()
  "Trace lines reach the buffer within `derl-trace-delay' unasked.
Before that they wait, bounded, printed already; the buffer is in
`derl-trace-mode', which highlights them."
  (derl-test-with-node (node)
    (let ((derl-use-trace-buffer t)
          (derl-trace-max-size 20000)
          (derl-trace-delay 0.05))
      (derl-connect node)
      (derl-trace-flush)
      (let ((inbox (derl-test-inbox)))
        (dotimes (i 300)
          (erl-send (derl-test-echo node)
                    (vector (car inbox) (list i (make-list 100 'x)))))
        (derl-test-wait (lambda () (= (length (cadr inbox)) 300)))
        ;; 600 lines of 200-odd characters went by: what waits is
        ;; trimmed as the buffer itself would be.
        (should (<= (buffer-size (gethash node derl-trace--pending)) 20000))
        (let ((deadline (+ (float-time) 10)))
          (while (and (> (buffer-size (gethash node derl-trace--pending)) 0)
                      (< (float-time) deadline))
            (accept-process-output nil 0.02)))
        (with-current-buffer (format "*trace %s*" node)
          (should (eq major-mode 'derl-trace-mode))
          (should buffer-read-only)
          (should (string-match-p "^<< SEND_SENDER: .* \\[299,\\[x,x,"
                                  (buffer-string)))
          (should (< (buffer-size) 25000)))))))

;;;; Staying up while Emacs is busy

(ert-deftest derl-survives-a-busy-emacs ()
  "With net_ticktime 4 on the node, 20 busy seconds don't drop the link."
  :tags '(:slow)
  (derl-test-with-node (node "-kernel" "net_ticktime" "4")
    (let ((derl-net-ticktime 4)
          downs)
      (let ((erl-nodedown-hook (list (lambda (n) (push n downs)))))
        (derl-connect node)
        (let ((end (+ (float-time) 20)))
          (while (< (float-time) end)
            ;; Busy: no input is read, no timers run.
            (dotimes (_ 10000) (sqrt 2.0))))
        (let ((inbox (derl-test-inbox)))
          (erl-send (derl-test-echo node) (vector (car inbox) 'still-here))
          (should (derl-test-await-message inbox
                                           (lambda (m) (eq m 'still-here))))
          (should-not downs))))))

;;;; Errors a user must see clearly

(ert-deftest derl-error-no-epmd ()
  "No EPMD on the host: `derl-epmd-error'."
  (derl-test-configure)
  (let ((derl-epmd-port (derl-test-free-port)))
    (let ((err (should-error (derl-connect 'nobody@localhost)
                             :type 'derl-epmd-error)))
      (should (string-match-p "EPMD" (cadr err))))))

(ert-deftest derl-error-not-registered ()
  "A name EPMD does not know: `derl-epmd-error' saying so."
  (derl-test-configure)
  (let ((err (should-error (derl-connect 'nosuchnode@localhost)
                           :type 'derl-epmd-error)))
    (should (string-match-p "not registered" (cadr err)))))

(ert-deftest derl-error-unknown-host ()
  "A host that does not resolve: `derl-connect-error'."
  (derl-test-configure)
  (let ((err (should-error (derl-connect 'x@nosuchhost-derltest)
                           :type 'derl-connect-error)))
    (should (string-match-p "unknown host" (cadr err)))))

(ert-deftest derl-error-bad-node-name ()
  "A node name that is not name@host is refused at once."
  (derl-test-configure)
  (should-error (erl-connect 'no-at-sign) :type 'derl-connect-error)
  (should-error (erl-connect "two@at@signs") :type 'derl-connect-error)
  ;; Long and short names never connect: say so at once.
  (let ((err (should-error (erl-connect 'x@host.example.com)
                           :type 'derl-connect-error)))
    (should (string-match-p "long name" (cadr err)))))

(ert-deftest derl-error-no-cookie ()
  "No `derl-cookie' and no ~/.erlang.cookie: a clear `derl-auth-error'."
  (derl-test-configure)
  (let ((derl-cookie nil)
        (process-environment (cons (concat "HOME=" (derl-test-scratch-file
                                                    "empty-home"))
                                   process-environment)))
    (make-directory (getenv "HOME") t)
    (let ((err (should-error (derl-connect 'somebody@localhost)
                             :type 'derl-auth-error)))
      (should (string-match-p "No cookie" (cadr err))))))

(ert-deftest derl-error-cookie-mismatch ()
  "A wrong cookie: `derl-auth-error', with no cookie in the message."
  (derl-test-with-node (node)
    (let* ((derl-cookie "not-the-right-cookie")
           (err (should-error (derl-connect node) :type 'derl-auth-error)))
      (should (string-match-p "cookie" (cadr err)))
      (should-not (string-match-p "not-the-right-cookie" (cadr err)))
      (should-not (string-match-p (regexp-quote derl-test-cookie)
                                  (cadr err))))))

(ert-deftest derl-error-connection-refused ()
  "A node registered with EPMD that accepts nothing: `derl-connect-error'."
  (derl-test-configure)
  ;; Register a name with EPMD by hand, pointing at a closed port.
  (let* ((port (derl-test-free-port))
         (name (concat "ghost" (derl-test-random-string 6)))
         (reg (make-network-process :name "derl-ghost" :host "127.0.0.1"
                                    :service (derl-test-epmd-port)
                                    :coding 'binary)))
    (unwind-protect
        (let ((req (concat (unibyte-string 120 (ash port -8) (logand port 255)
                                           77 0 0 6 0 5 0 (length name))
                           name (unibyte-string 0 0))))
          (process-send-string reg (concat (unibyte-string
                                            0 (length req))
                                           req))
          (accept-process-output reg 1)
          (let ((err (should-error (derl-connect
                                    (intern (concat name "@localhost")))
                                   :type 'derl-connect-error)))
            (should (string-match-p "cannot connect" (cadr err)))))
      (delete-process reg))))

(ert-deftest derl-error-node-killed-mid-stream ()
  "A node killed during a stream: nodedown, and Emacs carries on.
Another connection, up all along, still exchanges messages."
  (derl-test-with-node (node)
    (derl-test-with-node (other)
      (derl-connect node)
      (derl-connect other)
      (let ((inbox (derl-test-inbox))
            downs)
        (let ((erl-nodedown-hook (list (lambda (n) (push n downs)))))
          (erl-send (derl-test-echo node) (vector 'stream (car inbox) 100000))
          (derl-test-wait (lambda () (> (length (cadr inbox)) 100)))
          (derl-test-stop-node node)
          (derl-test-wait (lambda () downs))
          (should (equal downs (list node)))
          (should (equal (derl-nodes) (list other)))
          (dotimes (i 3)
            (erl-send (derl-test-echo other) (vector (car inbox) (list 'ok i)))
            (should (derl-test-await-message
                     inbox (lambda (m) (equal m (list 'ok i))))))
          (should (equal downs (list node))))))))

(ert-deftest derl-error-oversized-message ()
  "A message over `derl-max-message-size' closes that connection only."
  (derl-test-with-node (a)
    (derl-test-with-node (b)
      (let ((derl-max-message-size 100000)
            downs)
        (let ((erl-nodedown-hook (list (lambda (n) (push n downs)))))
          (derl-connect a)
          (derl-connect b)
          (let ((inbox (derl-test-inbox)))
            (erl-send (derl-test-echo a) (vector 'big (car inbox) 200000))
            (derl-test-wait (lambda () downs))
            (should (equal downs (list a)))
            (derl-trace-flush)
            (with-current-buffer (format "*trace %s*" a)
              (should (string-match-p "exceeds derl-max-message-size"
                                      (buffer-string))))
            ;; B is unaffected.
            (erl-send (derl-test-echo b) (vector (car inbox) 'fine))
            (should (derl-test-await-message inbox
                                             (lambda (m) (eq m 'fine))))))))))

(ert-deftest derl-error-malformed-frame ()
  "A peer sending a malformed frame loses its connection; others stay."
  (derl-test-with-node (good)
    (derl-connect good)
    (let* ((name (concat "rogue" (derl-test-random-string 6)))
           (node (intern (concat name "@localhost")))
           (buffer (generate-new-buffer " *derl-rogue*"))
           (process-environment (derl-test-erl-environment))
           (proc (start-process "derl-rogue" buffer "erl" "-noshell"
                                "-pa" derl-test-ebin "-run" "derl_rogue"
                                "start" name derl-test-cookie))
           downs)
      (set-process-query-on-exit-flag proc nil)
      (unwind-protect
          (let ((erl-nodedown-hook (list (lambda (n) (push n downs)))))
            (with-current-buffer buffer
              (derl-test-wait (lambda ()
                                (string-match-p "derl_rogue ready"
                                                (buffer-string)))))
            (erl-connect node)
            (derl-test-wait (lambda () downs))
            (should (equal downs (list node)))
            (derl-trace-flush)
        (with-current-buffer (format "*trace %s*" node)
              (should (string-match-p "malformed message" (buffer-string))))
            (let ((inbox (derl-test-inbox)))
              (erl-send (derl-test-echo good) (vector (car inbox) 'ok))
              (should (derl-test-await-message inbox
                                               (lambda (m) (eq m 'ok))))))
        (when (process-live-p proc) (kill-process proc))
        (kill-buffer buffer)))))

;;;; Elixir

(ert-deftest derl-elixir-node ()
  "An Elixir node answers like an Erlang one; its structs are maps."
  (skip-unless (executable-find "elixir"))
  (derl-test-configure)
  (let ((node (derl-test-start-elixir-node)))
    (unwind-protect
        (let ((inbox (derl-test-inbox))
              (term (let ((h (make-hash-table :test 'equal)))
                      (puthash 'name (erl-binary "derl") h)
                      (puthash 'tags (list 'fast 'safe) h)
                      h)))
          (derl-connect node)
          (erl-send (derl-test-echo node) (vector (car inbox) term))
          (let ((reply (derl-test-await-message inbox #'hash-table-p)))
            (should (equal (gethash 'name reply) "derl"))
            (should (equal (gethash 'tags reply) '(fast safe))))
          (erl-send (derl-test-echo node) (vector 'struct (car inbox)))
          (let ((uri (derl-test-await-message
                      inbox (lambda (m) (and (hash-table-p m)
                                             (gethash '__struct__ m))))))
            (should (eq (gethash '__struct__ uri) 'Elixir.URI))
            (should (equal (gethash 'host uri) "example.com"))
            (should (= (gethash 'port uri) 443))))
      (ignore-errors (derl-disconnect node))
      (derl-test-stop-node node))))

;;;; What each release speaks

(ert-deftest derl-connect-release-capabilities ()
  "Each Erlang/OTP release connects with what it offers.
Every node of OTP 23 and later speaks handshake version 6
\(DFLAG_HANDSHAKE_23); OTP 24 added version 4 node containers and
aliases, and OTP 26 made those and the new link protocol (of 23.3,
which Debian 11's 23.2 lacks) mandatory: a node of OTP 26 or later
connected to Emacs, so it took what Emacs offers for them."
  (derl-test-with-node (node)
    (derl-connect node)
    (let* ((flags (derl-connection-flags (derl--connection node)))
           (release (derl-test-otp-release))
           (has (lambda (bit) (/= 0 (logand flags bit)))))
      (should (funcall has #x1000000))            ; HANDSHAKE_23
      (should (eq (>= release 24) (funcall has (ash 1 34)))) ; V4_NC
      (should (eq (>= release 24) (funcall has (ash 1 35)))) ; ALIAS
      (when (>= release 24)
        (should (funcall has #x2000000))))))       ; UNLINK_ID

;;;; EPMD

(ert-deftest derl-epmd-names-and-port-please ()
  "`epmd-names' lists a running node; `epmd-port-please' finds its port."
  (derl-test-with-node (node)
    (let* ((name (car (split-string (symbol-name node) "@")))
           (names (epmd-names "localhost"))
           (entry (assoc name names))
           result)
      (should entry)
      (epmd-port-please name "localhost"
                        (lambda (port) (setq result (list 'port port)))
                        (lambda () (setq result '(failed))))
      (derl-test-wait (lambda () result))
      (should (equal result (list 'port (cdr entry))))
      (setq result nil)
      (epmd-port-please "nosuchname" "localhost"
                        (lambda (port) (setq result (list 'port port)))
                        (lambda () (setq result '(failed))))
      (derl-test-wait (lambda () result))
      (should (equal result '(failed))))))

(provide 'derl-tests)

;;; derl-tests.el ends here

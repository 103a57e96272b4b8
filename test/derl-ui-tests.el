;;; derl-ui-tests.el --- the commands a person uses  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; The non-interactive cores of the commands, against real nodes:
;; connecting with reasons for failure and per-node cookies, EPMD
;; completion, the node list, evaluation, the trace commands, progress,
;; the module build offer; `make demo'; and a terminal Emacs under tmux
;; showing the node list.

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'derl-ert)
(require 'derl-tests)
(require 'derl-commands)
(require 'derl-list)
(require 'derl-eval)

(defun derl-ui--messages-since (start)
  "The text of *Messages* after position START."
  (with-current-buffer (messages-buffer)
    (buffer-substring-no-properties (min start (point-max)) (point-max))))

(defun derl-ui--messages-end ()
  "The end of *Messages* now."
  (with-current-buffer (messages-buffer) (point-max)))

;;;; Terms

(ert-deftest derl-ui-term-to-string ()
  "Terms print as Erlang prints them, bounded in length and depth."
  (let ((map (make-hash-table :test 'equal)))
    (puthash 'k (erl-binary "v") map)
    (should (equal (derl-term-to-string
                    (vector 'hello (vector erl-tag 'erl-pid 'n@h 1 0 7)
                            map '(1 2)))
                   "{hello,<n@h.1.0>,#{k => <<\"v\">>},[1,2]}")))
  (should (equal (derl-term-to-string '(a . b)) "[a|b]"))
  (should (equal (derl-term-to-string 'Up) "'Up'"))
  (should (equal (derl-term-to-string nil) "[]"))
  ;; A string of unprintable characters prints as Erlang prints it.
  (should (equal (derl-term-to-string "\1\2\3") "[1,2,3]"))
  (should (equal (derl-term-to-string "a\nb") "\"a\\nb\""))
  ;; A raw byte of a multibyte string (a .beam read with
  ;; `insert-file-contents') is the byte it stands for, as it is sent.
  (should (equal (derl-term-to-string
                  (erl-binary (string-to-multibyte (unibyte-string 0 201))))
                 "<<[0,201]>>"))
  (should (equal (derl-term-to-string (number-sequence 1 100) 10)
                 "[1,2,3,4,5...")) 
  (let ((deep nil))
    (dotimes (_ 1000) (setq deep (list deep)))
    (should (< (length (derl-term-to-string deep 100000)) 200)))
  ;; Pids print their numbers from a bounded cache of texts: more of
  ;; them than it keeps, and again, print the same; so does a pid
  ;; changed in place (erl.el renames its own).
  (dotimes (pass 2)
    (dotimes (k 5000)
      (let ((id (+ (* k 7) pass)))
        (should (equal (derl-term-to-string
                        (vector erl-tag 'erl-pid 'n@h id (- k) 7))
                       (format "<n@h.%d.%d>" id (- k)))))))
  (let ((pid (vector erl-tag 'erl-pid 'n@h 1 0 7)))
    (should (equal (derl-term-to-string pid) "<n@h.1.0>"))
    (aset pid 2 'm@h)
    (aset pid 3 12)
    (should (equal (derl-term-to-string pid) "<m@h.12.0>"))))

;;;; Connecting

(ert-deftest derl-ui-connect-reports ()
  "Connecting interactively says how it went, with the precise reason."
  (derl-test-with-node (node)
    (let ((start (derl-ui--messages-end)))
      (should (derl-connection-p (derl-connect-interactively node)))
      (should (string-match-p (format "Connected to %s in [0-9]+ ms" node)
                              (derl-ui--messages-since start)))
      (should (eq derl-last-node node)))
    (let* ((absent (intern (format "absent%s@localhost"
                                   (derl-test-random-string 6))))
           (start (derl-ui--messages-end)))
      (should-not (derl-connect-interactively absent))
      (should (string-match-p
               (format "Cannot connect to %s: EPMD error: .*not registered"
                       absent)
               (derl-ui--messages-since start))))))

(ert-deftest derl-ui-node-cookies ()
  "A node's own cookie wins over `derl-cookie'; neither is ever shown."
  (derl-test-with-node (node)
    (let ((derl-cookie "wrongwrongwrong")
          (derl-node-cookies nil)
          (start (derl-ui--messages-end)))
      (should-not (derl-connect-interactively node))
      (let ((said (derl-ui--messages-since start)))
        (should (string-match-p "Authentication failed" said))
        (should-not (string-match-p "wrongwrongwrong" said)))
      (setf (alist-get node derl-node-cookies) derl-test-cookie)
      (remhash node derl--backoff)
      (setq start (derl-ui--messages-end))
      (should (derl-connect-interactively node))
      (should-not (string-match-p (regexp-quote derl-test-cookie)
                                  (derl-ui--messages-since start)))
      (should-not (string-match-p
                   (regexp-quote derl-test-cookie)
                   (progn (derl-trace-flush)
                          (with-current-buffer (format "*trace %s*" node)
                            (buffer-string))))))))

(ert-deftest derl-ui-connect-reads-cookie ()
  "With a prefix argument, `erl-connect' reads a cookie for that node only."
  (derl-test-configure)
  (let ((derl-node-cookies nil))
    (cl-letf (((symbol-function 'completing-read)
               (lambda (&rest _) "someone@localhost"))
              ((symbol-function 'read-passwd) (lambda (&rest _) "secret")))
      (should (equal (derl-read-connect-arguments t) '(someone@localhost)))
      (should (equal derl-node-cookies '((someone@localhost . "secret"))))
      (should (equal (derl-read-connect-arguments nil) '(someone@localhost)))
      (should (equal derl-node-cookies '((someone@localhost . "secret")))))))

(ert-deftest derl-ui-epmd-completion ()
  "Completion offers the nodes EPMD knows; an absent EPMD adds nothing."
  (derl-test-with-node (node)
    (should (member (symbol-name node) (derl-epmd-node-names)))
    (let ((derl-epmd-hosts '("derl-no-such-host.invalid")))
      (should (member (symbol-name node) (derl-epmd-node-names))))))

;;;; The node list

(defun derl-ui--row (node)
  "The node list's row for NODE, as a vector of texts."
  (cadr (assq node (derl-list-entries))))

(ert-deftest derl-ui-list-nodes ()
  "The node list shows each connection's state, counters and errors."
  (derl-test-with-node (node)
    (derl-connect node)
    (derl-call node 'erlang 'node nil)
    (let ((row (derl-ui--row node)))
      (should (equal (aref row 0) (symbol-name node)))
      (should (equal (aref row 1) "up"))
      (should (equal (aref row 2) "out"))
      (should (equal (aref row 3) "tcp"))
      (should (>= (string-to-number (aref row 4)) 1))
      (should (> (string-to-number (aref row 5)) 0))
      (should (>= (string-to-number (aref row 6)) 1))
      (should (> (string-to-number (aref row 7)) 0))
      (should (string-match-p "\\`[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\\'"
                              (aref row 8))))
    (save-window-excursion
      (derl-list-nodes)
      (with-current-buffer "*derl-nodes*"
        (should (derived-mode-p 'tabulated-list-mode))
        (should (string-match-p "RET trace.*d disconnect.*c connect.*\
e evaluate.*g refresh" header-line-format))
        ;; Point starts on a node, not on the column names.
        (should (tabulated-list-get-id))
        (goto-char (point-min))
        (should (search-forward (symbol-name node) nil t))
        (should (eq (tabulated-list-get-id) node))
        (should (eq (lookup-key derl-list-mode-map "d")
                    #'derl-list-disconnect))
        (derl-list-disconnect))
      (derl-test-wait (lambda () (not (memq node (derl-nodes)))))
      (should (string-prefix-p "down" (aref (derl-ui--row node) 1)))
      (with-current-buffer "*derl-nodes*"
        ;; Live refresh: the list follows without being asked.
        (goto-char (point-min))
        (should (re-search-forward (format "^%s +down" node) nil t))
        ;; d on a node that is down drops its row.
        (beginning-of-line)
        (derl-list-disconnect)
        (should-not (derl-ui--row node))
        (goto-char (point-min))
        (should-not (search-forward (symbol-name node) nil t))))
    (kill-buffer "*derl-nodes*")))

(ert-deftest derl-ui-module-stats-arguments ()
  "The module's counters of a connection that is not there are nil."
  (derl-test-configure)
  (derl--ensure-started)
  (should-not (derl--module-stats 987654321))
  (should-not (derl--module-stats -1))
  (should-error (derl--module-stats 'not-an-id) :type 'wrong-type-argument)
  (should-error (derl--module-stats (expt 2 80))))

(ert-deftest derl-ui-list-failed-attempt ()
  "A node that could not be reached is listed as down, with the reason."
  (derl-test-configure)
  (let ((absent (intern (format "gone%s@localhost"
                                (derl-test-random-string 6)))))
    (should-not (derl-connect-interactively absent))
    (let ((row (derl-ui--row absent)))
      (should (string-match-p "\\`down: .*not registered" (aref row 1)))
      (should (string-match-p "not registered" (aref row 9))))
    (remhash absent derl--backoff)))

;;;; Evaluation

(ert-deftest derl-ui-eval ()
  "Expressions evaluate on the node; results print as ~tp does."
  (derl-test-with-node (node)
    (should (equal (derl-eval node "lists:seq(1, 3)") "[1,2,3]"))
    (should (equal (derl-eval node "{ok, <<\"été\"/utf8>>, #{a => 1}}.")
                   "{ok,<<\"été\"/utf8>>,#{a => 1}}"))
    (should (equal (derl-eval node "X = 6, X * 7") "42"))
    ;; As the shell prints them, with Erlang's default printable range.
    (should (equal (derl-eval node "\"été\"") "\"été\""))
    (should (equal (derl-eval node "\"αβ\"") "[945,946]"))
    (should (equal (derl-eval node "node()") (symbol-name node)))
    (let ((err (should-error (derl-eval node "1 + ") :type 'derl-eval-error)))
      (should (string-match-p "\\`Syntax error: 1:[0-9]+: syntax error before"
                              (cadr err))))
    (let ((err (should-error (derl-eval node "1 + a")
                             :type 'derl-eval-error)))
      (should (string-match-p "\\`\\*\\* exception error: .*arithmetic expression\n.*+/2" (cadr err))))
    (let ((err (should-error (derl-eval node "throw(oops)")
                             :type 'derl-eval-error)))
      (should (string-match-p "\\`\\*\\* exception throw: oops" (cadr err))))))

(ert-deftest derl-ui-eval-display ()
  "Short results go to the echo area, long ones to *derl-result*."
  (derl-test-with-node (node)
    (when (get-buffer "*derl-result*")
      (kill-buffer "*derl-result*"))
    (let ((start (derl-ui--messages-end)))
      (save-window-excursion
        (derl-eval-expression "atom_to_list(hello)" node))
      (should (string-match-p "^\"hello\"$" (derl-ui--messages-since start)))
      (should (eq derl-last-node node))
      (should-not (get-buffer "*derl-result*")))
    (save-window-excursion
      (derl-eval-expression "lists:seq(1, 200)" node))
    (with-current-buffer "*derl-result*"
      (should (string-match-p "\\`%% lists:seq(1, 200) on .*\n\\[1,2,3,"
                              (buffer-string)))
      (should (string-match-p "200]\n\\'" (buffer-string)))
      (should buffer-read-only))
    (let ((start (derl-ui--messages-end)))
      (save-window-excursion
        (derl-eval-expression "foo(" node))
      (should (string-match-p "Syntax error"
                              (derl-ui--messages-since start))))))

(ert-deftest derl-ui-default-node ()
  "With no node used through derl's commands yet, a command offers a
connected node, however the connection was made (by Distel, say)."
  (derl-test-with-node (node)
    (let ((derl-last-node nil)
          (offered nil))
      (derl-connect node)
      (cl-letf (((symbol-function 'derl-eval-read-expression)
                 (lambda (_node) "1 + 1."))
                ((symbol-function 'derl-epmd-node-names) #'ignore)
                ;; An empty answer: the default.
                ((symbol-function 'completing-read)
                 (lambda (_prompt _collection &optional _predicate _require
                                  _initial _history default &rest _)
                   (setq offered default))))
        (save-window-excursion
          (call-interactively #'derl-eval-expression)))
      (should (equal offered (symbol-name node)))
      (should (eq derl-last-node node)))))

(ert-deftest derl-ui-eval-output ()
  "What the evaluation prints goes to *erl-output*."
  (derl-test-with-node (node)
    (let ((erl-popup-on-output nil))
      (should (equal (derl-eval node "io:format(\"printed ~p~n\", [42])")
                     "ok"))
      (should (derl-test-wait
               (lambda ()
                 (with-current-buffer (get-buffer-create "*erl-output*")
                   (save-excursion
                     (goto-char (point-min))
                     (search-forward "printed 42" nil t)))))))))

;;;; Trace commands and progress

(ert-deftest derl-ui-trace-commands ()
  "`derl-show-trace' opens a node's trace; `derl-toggle-trace' flips it."
  (derl-test-with-node (node)
    (derl-connect node)
    (save-window-excursion
      (derl-show-trace node)
      (should (equal (buffer-name) (format "*trace %s*" node)))
      (should (string-match-p "nodeup" (buffer-string))))
    (let ((derl-use-trace-buffer t))
      (should-not (derl-toggle-trace))
      (should-not derl-use-trace-buffer)
      (should (derl-toggle-trace))
      (should (derl-toggle-trace 1))
      (should-not (derl-toggle-trace -1)))))

(ert-deftest derl-ui-progress ()
  "Work that takes longer than the delay shows a progress reporter."
  (derl-test-with-node (node)
    (let ((derl-progress-delay 0.2)
          (start (derl-ui--messages-end)))
      (should (equal (derl-with-progress "Waiting for the node..."
                       (derl-eval node "timer:sleep(1000)"))
                     "ok"))
      (should (string-match-p "Waiting for the node...done"
                              (derl-ui--messages-since start))))
    (let ((derl-progress-delay 5)
          (start (derl-ui--messages-end)))
      (derl-with-progress "Quick..." (derl-eval node "ok"))
      (should-not (string-match-p "Quick" (derl-ui--messages-since start))))))

;;;; Building the module

(ert-deftest derl-ui-module-status ()
  "The module must be built when missing or older than a source."
  (let ((module (derl-test-scratch-file "status-module.so"))
        (source (derl-test-scratch-file "status-source.c")))
    (should (eq (derl-module-status module (list source)) 'missing))
    (write-region "" nil source nil 'quiet)
    (write-region "" nil module nil 'quiet)
    (set-file-times source (time-subtract nil 100))
    (should-not (derl-module-status module (list source)))
    (set-file-times source (time-add nil 100))
    (should (eq (derl-module-status module (list source)) 'stale)))
  ;; The module the tests load is up to date.
  (should-not (derl-module-status)))

(ert-deftest derl-ui-module-offer ()
  "Building is offered, or done without asking when so configured."
  (let ((asked nil) (built nil))
    (cl-letf (((symbol-function 'y-or-n-p)
               (lambda (prompt) (setq asked prompt) nil)))
      (let ((noninteractive nil)
            (derl-module-compile-automatically nil))
        (should-not (derl-module--may-build 'missing))
        (should (string-match-p "not built yet" asked))
        (should-not (derl-module--may-build 'stale))
        (should (string-match-p "older than its sources" asked)))
      (setq asked nil)
      (let ((derl-module-compile-automatically t))
        (setq built (derl-module--may-build 'stale)))
      (should built)
      (should-not asked))))

(ert-deftest derl-ui-module-compile ()
  "The build runs in a compilation buffer; missing tools are named."
  (derl-module-compile)
  (with-current-buffer "*derl-module-compile*"
    (should (derived-mode-p 'compilation-mode))
    (should (string-match-p "make module exited with status 0"
                            (buffer-string))))
  (let ((exec-path nil)
        (process-environment (cons "PATH=" process-environment)))
    (should (string-match-p "install the Debian package make"
                            (cadr (should-error (derl-module-compile)))))))

;;;; make demo

(ert-deftest derl-ui-make-demo ()
  "`make demo' runs from start to end and shows what it did."
  (with-temp-buffer
    (let ((default-directory derl-test-root))
      (should (eql (call-process "make" nil t nil "--no-print-directory"
                                 "demo")
                   0)))
    (let ((output (buffer-string)))
      (dolist (expected '("Connected in [0-9.]+ ms"
                          "system_info '(otp_release)):\n  \"[0-9]+\""
                          "=> \\[{1,1},{2,4},{3,9},{4,16}\\]"
                          "=> \\*\\* exception error: .*arithmetic"
                          "received \\[hello,\"from Emacs\",42,"
                          "exit signal: {'EXIT',<peer[^>]*>,died}"
                          "[0-9]+ arrived each time, in order: t; [0-9]+ messages/s"
                          "peer[a-z0-9]+@localhost +up +out +tcp"
                          "<< \\*\\* nodeup"
                          "erl-nodedown-hook ran for"
                          "Stopped the node and epmd"))
        (should (string-match-p expected output)))
      ;; Terms as Erlang writes them, never as Lisp vectors or tables.
      (should-not (string-match-p "erl-pid\\|#s(hash-table\\|\\[TYPE"
                                  output)))))


;;;; A terminal Emacs under tmux

;; .ci/run and test/deps.sh install tmux: never skipped where it can run.
(add-to-list 'derl-ert-must-run '(derl-ui-terminal-node-list . always))

(defun derl-ui--start-terminal (socket &optional forms width files)
  "Start a terminal Emacs with derl in tmux session derl on SOCKET.
It is pointed at the test epmd and cookie under a fresh node name,
then runs FORMS; it is WIDTH columns wide (default 120) and visits
FILES.  Stop it with `derl-ui--tmux' SOCKET \"kill-server\"."
  (let ((init (derl-test-scratch-file
               (format "terminal-init-%s.el" (derl-test-random-string 6)))))
    (with-temp-file init
      (prin1 `(progn
                ;; No native compiler left running, nor files left
                ;; in ~/.emacs.d/eln-cache, by a test.
                (setq native-comp-deferred-compilation nil)
                (setq derl-cookie ,derl-test-cookie
                      derl-epmd-port ,derl-epmd-port
                      erl-node-name ',(intern (format "emacsnw%s@localhost"
                                                      (derl-test-random-string
                                                       4))))
                ,@forms)
             (current-buffer)))
    (set-file-modes init #o600)
    (derl-ui--tmux socket "new-session" "-d" "-s" "derl"
                   "-x" (number-to-string (or width 120)) "-y" "30"
                   (mapconcat
                    #'shell-quote-argument
                    (append (list (expand-file-name invocation-name
                                                    invocation-directory)
                                  "-nw" "-Q" "-L"
                                  (expand-file-name "lisp" derl-test-root)
                                  "-l" init)
                            files)
                    " "))))

(defun derl-ui--tmux (socket &rest args)
  "Run tmux on its server SOCKET with ARGS; return its output."
  (with-temp-buffer
    (apply #'call-process "tmux" nil t nil "-L" socket args)
    (buffer-string)))

(defun derl-ui--screen-shows (socket regexp)
  "Wait up to 30 s for the tmux SOCKET's screen to match REGEXP.
Return the screen."
  (let ((deadline (+ (float-time) 30))
        (screen ""))
    (while (and (not (string-match-p regexp screen))
                (< (float-time) deadline))
      (sleep-for 0.2)
      (setq screen (derl-ui--tmux socket "capture-pane" "-p" "-t" "derl")))
    screen))

(ert-deftest derl-ui-terminal-node-list ()
  "In `emacs -nw', M-x erl-connect then M-x derl-list-nodes shows the node up."
  (skip-unless (executable-find "tmux"))
  (derl-test-with-node (node)
    (let ((socket (format "derl-ui-%s" (derl-test-random-string 6))))
      (unwind-protect
          (progn
            (derl-ui--start-terminal socket '((require 'derl)) 150)
            (should (string-match-p "scratch"
                                    (derl-ui--screen-shows socket "scratch")))
            (derl-ui--tmux socket "send-keys" "-t" "derl"
                           "M-x" "erl-connect" "Enter")
            (derl-ui--screen-shows socket "Connect to node")
            (derl-ui--tmux socket "send-keys" "-t" "derl"
                           (symbol-name node) "Enter")
            (should (string-match-p
                     (format "Connected to %s" node)
                     (derl-ui--screen-shows socket "Connected to")))
            (derl-ui--tmux socket "send-keys" "-t" "derl"
                           "M-x" "derl-list-nodes" "Enter")
            (let ((screen (derl-ui--screen-shows
                           socket (format "%s +up +out +tcp" node))))
              (should (string-match-p (format "%s +up +out +tcp" node)
                                      screen))
              (should (string-match-p "RET trace +d disconnect" screen))
              (should (string-match-p "Node +State +Dir" screen))))
        (derl-ui--tmux socket "kill-server")))))

(provide 'derl-ui-tests)

;;; derl-ui-tests.el ends here

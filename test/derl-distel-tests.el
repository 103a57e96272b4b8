;;; derl-distel-tests.el --- Distel's own front end on derl  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; Distel, as published (../shared/distel, never edited), run on derl
;; as a user would: a copy of it, its backend compiled by
;; `derl-distel-setup', derl's lisp/ first on `load-path'.  Each test
;; runs a fresh batch Emacs (test/derl-distel-child.el) that drives
;; the non-interactive core of a Distel command against a real node.

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'derl-ert)
(require 'derl-tests)
(require 'derl-distel)
(require 'derl-rpc)

(defconst derl-distel-test-source
  (cl-find-if (lambda (dir) (and dir (file-exists-p
                                      (expand-file-name "elisp/distel.el" dir))))
              (list (getenv "DERL_DISTEL_DIR")
                    (expand-file-name "../shared/distel" derl-test-root)
                    (expand-file-name "../../shared/distel" derl-test-root)))
  "Distel as published, or nil when it is not there.")

(defvar derl-distel-test--copy nil "The test's copy of Distel.")
(defvar derl-distel-test--node nil "A node with Distel's backend loaded.")

(defun derl-distel-test--copy ()
  "Return a writable copy of Distel in the scratch directory."
  (or derl-distel-test--copy
      (let ((dir (derl-test-scratch-file "distel")))
        (unless (zerop (call-process "cp" nil nil nil "-R"
                                     derl-distel-test-source dir))
          (error "Cannot copy %s" derl-distel-test-source))
        (call-process "chmod" nil nil nil "-R" "u+w" dir)
        (setq derl-distel-test--copy dir))))

(defun derl-distel-test--cache ()
  "The cache directory for Distel's compiled backend."
  (derl-test-scratch-file "distel-cache/"))

(defun derl-distel-test--ebin ()
  "Compile Distel's backend as `derl-distel-setup' does; return its ebin."
  (let ((derl-distel-cache-directory (derl-distel-test--cache)))
    (derl-distel-compile-backend (derl-distel-test--copy))))

(defun derl-distel-test--shared-node ()
  "A node whose code path has Distel's backend; started once."
  (derl-test-configure)
  (unless (and derl-distel-test--node
               (cl-find derl-distel-test--node derl-test--nodes
                        :key (lambda (p) (process-get p 'node))))
    (setq derl-distel-test--node
          (derl-test-start-node "-pa" (derl-distel-test--ebin))))
  derl-distel-test--node)

(defun derl-distel-test-run (node form &optional node-name use-setq
                                   &rest more)
  "Run FORM in a fresh Emacs with Distel connected to NODE; return its value.
The Emacs is called NODE-NAME (default a fresh name), set with
`setq' when USE-SETQ is non-nil.  MORE are further settings for
`derl-distel-child-run' (:before FORM, :setup FORMS), and :home
DIRECTORY, the HOME the Emacs runs with."
  (let* ((settings (append
                    (list :setq use-setq
                          :cookie derl-test-cookie
                          :epmd-port (derl-test-epmd-port)
                          :node-name (or node-name
                                         (intern (format "distel%s@localhost"
                                                         (derl-test-random-string 6))))
                          :distel (derl-distel-test--copy)
                          :cache (derl-distel-test--cache)
                          :node node)
                    more))
         (process-environment
          (if (plist-get more :home)
              (cons (concat "HOME=" (plist-get more :home))
                    process-environment)
            process-environment))
         (buffer (generate-new-buffer " *derl-distel-child*"))
         (proc (start-process
                "derl-distel-child" buffer
                (expand-file-name invocation-name invocation-directory)
                "-Q" "--batch"
                "-L" (expand-file-name "lisp" derl-test-root)
                "-L" (expand-file-name "test" derl-test-root)
                "-l" "derl-distel-child"
                "--eval" (prin1-to-string
                          `(derl-distel-child-run ',settings ',form)))))
    (set-process-query-on-exit-flag proc nil)
    (unwind-protect
        (progn
          (cl-loop repeat 1200 while (process-live-p proc)
                   do (accept-process-output proc 0.1))
          ;; What it wrote just before it exited may not have been read
          ;; yet when Emacs saw it exit (under load, its result line).
          (cl-loop repeat 100 while (accept-process-output proc 0.05))
          (with-current-buffer buffer
            (goto-char (point-min))
            (cond ((re-search-forward "^DERL-RESULT: \\(.*\\)$" nil t)
                   (car (read-from-string (match-string 1))))
                  (t (error "Distel's Emacs failed (%s %s): %s"
                            (process-status proc) (process-exit-status proc)
                            (buffer-substring
                             (max (point-min) (- (point-max) 3000))
                             (point-max)))))))
      (when (process-live-p proc) (kill-process proc))
      (kill-buffer buffer))))

(defun derl-distel-test-output-matches (node regexp form)
  "Run FORM with Distel connected to NODE; its value must match REGEXP."
  (let ((value (derl-distel-test-run node form)))
    (should (stringp value))
    (should (string-match-p regexp value))))

(defun derl-distel-test-says (node command regexp)
  "Run COMMAND with Distel connected to NODE; it must say REGEXP."
  (should (derl-distel-test-run
           node `(progn ,command
                        (derl-distel-child-wait
                         (lambda () (derl-distel-child-message-p ,regexp)))))))

(defmacro derl-distel-test-with-node (var &rest body)
  "Run BODY with VAR bound to a node that has Distel's backend loaded."
  (declare (indent 1))
  `(progn
     (skip-unless derl-distel-test-source)
     (let ((,var (derl-distel-test--shared-node)))
       ,@body)))

;;;; Set-up

(ert-deftest derl-distel-setup-builds-backend ()
  "`derl-distel-setup' compiles the backend, and arranges the load order."
  (skip-unless derl-distel-test-source)
  (derl-test-configure)
  (let ((result (derl-distel-test-run
                 nil '(list (file-exists-p
                             (expand-file-name "distel.beam"
                                               distel-ebin-directory))
                            (file-name-directory (locate-library "erl"))
                            (file-name-directory (symbol-file 'erl-rpc))
                            (get-buffer "*compilation*")))))
    (should (eq (nth 0 result) t))
    (should (string-prefix-p (expand-file-name "lisp" derl-test-root)
                             (nth 1 result)))
    (should (string-suffix-p "elisp/" (nth 2 result)))
    (should-not (nth 3 result))))

;;;; Set-up while connected

(ert-deftest derl-distel-setup-while-connected ()
  "Set-up with a node connected already: `erl-ping' works at once.
Distel uploads its backend from `erl-nodeup-hook', which ran for
that node before Distel was loaded; without the set-up's own
upload every ping failed with undef distel:rpc_entry until the
node reconnected."
  (skip-unless derl-distel-test-source)
  (derl-test-configure)
  (derl-distel-test--ebin)
  (let ((node (derl-test-start-node)))
    (unwind-protect
        (let ((result
               (derl-distel-test-run
                node
                '(let ((pings nil))
                   (dotimes (_ 2)
                     (erl-ping derl-distel-child-node)
                     (push (derl-distel-child-wait
                            (lambda ()
                              (derl-distel-child-message-p
                               "\\(Successfully\\|Failed to\\) communicate")))
                           pings)
                     (with-current-buffer (messages-buffer)
                       (let ((inhibit-read-only t)) (erase-buffer))))
                   (list (nreverse pings)
                         (derl-call derl-distel-child-node
                                    'code 'is_loaded '(distel))))
                nil nil :before '(derl-connect derl-distel-child-node))))
          (dolist (ping (car result))
            (should (string-match-p "Successfully communicated" ping)))
          (should (vectorp (cadr result))))
      (derl-test-stop-node node))))

;;;; Commands

(ert-deftest derl-distel-erl-ping-uploads-backend ()
  "`erl-ping' on a fresh node uploads Distel's backend, then pings."
  (skip-unless derl-distel-test-source)
  ;; Distel reads each beam into a multibyte buffer: the upload needs
  ;; raw-byte characters to encode as the bytes they stand for.
  (skip-unless (ignore-errors
                 (erlext-term-to-binary (erl-binary (string-to-multibyte
                                                     "\377")))))
  (derl-test-configure)
  (derl-distel-test--ebin)
  (let ((node (derl-test-start-node)))
    (unwind-protect
        (let ((result
               (derl-distel-test-run
                node
                '(progn
                   (erl-ping derl-distel-child-node)
                   (derl-distel-child-wait
                    (lambda () (derl-distel-child-message-p
                                "Successfully uploaded backend")))
                   (erl-ping derl-distel-child-node)
                   (derl-distel-child-wait
                    (lambda () (derl-distel-child-message-p
                                "Successfully communicated")))
                   (list (derl-call derl-distel-child-node
                                    'code 'is_loaded '(distel))
                         (derl-distel-child-message-p "Distel Warning"))))))
          (should (vectorp (car result)))
          (should-not (cadr result)))
      (derl-test-stop-node node))))

(ert-deftest derl-distel-eval-expression ()
  "`erl-eval-expression' shows the value."
  (derl-distel-test-with-node node
    (derl-distel-test-says node '(erl-eval-expression derl-distel-child-node
                                                      "{derl, 12345 * 2}.")
                           "{derl,24690}")))

(defconst derl-distel-test--list-and-kill
  '(let* ((node derl-distel-child-node)
          (victim (derl-call node 'erlang 'spawn
                             '(timer sleep (infinity)))))
     (derl-call node 'erlang 'register (list 'derl_victim victim))
     (erl-process-list node)
     (derl-distel-child-wait
      (lambda () (string-match-p
                  "derl_victim"
                  (or (derl-distel-child-buffer-text
                       (format "*plist %S*" node))
                      ""))))
     (with-current-buffer (format "*plist %S*" node)
       (goto-char (point-min))
       (search-forward "derl_victim")
       (erl-pman-kill-process))
     (derl-distel-child-wait
      (lambda () (eq (derl-call node 'erlang 'is_process_alive
                                (list victim))
                     'false))))
  "List the node's processes and kill one with k in *plist*.")

(ert-deftest derl-distel-process-list-and-kill ()
  "`erl-process-list' lists the node's processes; k kills one."
  (derl-distel-test-with-node node
    (should (eq (derl-distel-test-run node derl-distel-test--list-and-kill)
                t))))

(ert-deftest derl-distel-kill-after-setq-node-name ()
  "k in *plist* works when `erl-node-name' was set with `setq'."
  (derl-distel-test-with-node node
    (should (eq (derl-distel-test-run
                 node derl-distel-test--list-and-kill
                 (intern (format "distel%s@localhost"
                                 (derl-test-random-string 6)))
                 t)
                t))))

(ert-deftest derl-distel-find-source ()
  "Finding the source of lists:seq/2 opens lists.erl at seq."
  (derl-distel-test-with-node node
    ;; Distel opens the file the node names: the node's files must be
    ;; Emacs's (they are not when the node runs in a chroot).
    (skip-unless (file-exists-p
                  (expand-file-name "src/lists.erl"
                                    (derl-call node 'code 'lib_dir '(stdlib)))))
    (derl-distel-test-output-matches
     node "\\`seq(First, Last)"
     '(progn
        (erl-find-source "lists" "seq" 2)
        (let ((buffer (derl-distel-child-wait
                       (lambda ()
                         (cl-find-if
                          (lambda (b) (string-suffix-p
                                       "/lists.erl"
                                       (or (buffer-file-name b) "")))
                          (buffer-list))))))
          (with-current-buffer buffer
            (buffer-substring (point) (line-end-position))))))))

(ert-deftest derl-distel-who-calls ()
  "`erl-who-calls' lists the callers of a function."
  (derl-distel-test-with-node node
    (derl-distel-test-output-matches
     node "derl_distel_debuggee:add/2"
     '(progn
        (erl-find-callers "derl_distel_debuggee" "twice" 1)
        (derl-distel-child-wait
         (lambda () (derl-distel-child-buffer-text "*Erlang Calls*"))
         120)))))

(ert-deftest derl-distel-completion ()
  "Module and function names complete."
  (derl-distel-test-with-node node
    (should
     (equal
      (derl-distel-test-run
       node
       '(let ((node derl-distel-child-node))
          (with-temp-buffer
            (erlang-mode)
            (insert "derl_distel_debug")
            (erl-complete node)
            (derl-distel-child-wait
             (lambda () (string-suffix-p ":" (buffer-string))) 120)
            (insert "tw")
            (erl-complete node)
            (derl-distel-child-wait
             (lambda () (string-match-p "twice(" (buffer-string))) 120)
            (buffer-string))))
      "derl_distel_debuggee:twice("))))

(ert-deftest derl-distel-reload-module ()
  "`erl-reload-module' reloads a module."
  (derl-distel-test-with-node node
    (derl-distel-test-says node '(erl-reload-module derl-distel-child-node
                                                    'derl_distel_debuggee)
                           "load: \\[module derl_distel_debuggee\\]")))

(ert-deftest derl-distel-interactive-session ()
  "A distel-ie session evaluates an expression in-line."
  (derl-distel-test-with-node node
    (derl-distel-test-output-matches
     node "-:-> 42"
     '(with-current-buffer (erl-ie-session derl-distel-child-node)
        (derl-distel-child-wait
         (lambda () (erl-pid-p (derl-call derl-distel-child-node
                                          'erlang 'whereis '(distel_ie)))))
        (goto-char (point-max))
        (insert "\n6 * 7.")
        (erl-ie-eval-expression derl-distel-child-node)
        (derl-distel-child-wait
         (lambda () (string-match-p "-:->" (buffer-string))))
        (buffer-string)))))

(ert-deftest derl-distel-fdoc-describe ()
  "`erl-fdoc-describe' describes a function from its source."
  (derl-distel-test-with-node node
    (derl-distel-test-output-matches
     node "lists:seq/2"
     '(progn
        (cl-letf (((symbol-function 'read-string)
                   (lambda (&rest _) "lists:seq/2")))
          (with-temp-buffer
            (erlang-mode)
            (erl-fdoc-describe derl-distel-child-node nil)))
        (derl-distel-child-wait
         (lambda () (or (derl-distel-child-buffer-text
                         "*Erlang fdoc results*")
                        (derl-distel-child-message-p "lists:seq/2")))
         120)))))

(ert-deftest derl-distel-edb-breakpoint ()
  "An edb breakpoint is hit, and the attached view shows the variables."
  (derl-distel-test-with-node node
    (let ((source (expand-file-name "test/erl/derl_distel_debuggee.erl"
                                    derl-test-root)))
      (derl-distel-test-output-matches
       node "A *= *1"
       `(let ((node derl-distel-child-node))
          ;; Distel starts the monitor and the interpreter with two
          ;; concurrent calls, which race in OTP's dbg_iserver:start
          ;; on a node that never ran the debugger: start the
          ;; monitor first, as a second attempt by hand would.
          (edb-ensure-monitoring node)
          (derl-distel-child-wait (lambda () edb-processes))
          (edb-toggle-interpret node 'derl_distel_debuggee ,source)
          (derl-distel-child-wait
           (lambda () (edb-module-interpreted-p 'derl_distel_debuggee)))
          (edb-toggle-breakpoint node 'derl_distel_debuggee 11)
          (derl-distel-child-wait
           (lambda () (derl-distel-child-message-p "Enabled breakpoint")))
          (derl-call-async node 'derl_distel_debuggee 'add '(1 2) #'ignore)
          (let ((pid (derl-distel-child-wait
                      (lambda ()
                        (cl-loop for p in (derl-call node 'int 'snapshot nil)
                                 when (eq (aref p 2) 'break)
                                 return (aref p 0))))))
            (edb-attach pid)
            (derl-distel-child-wait
             (lambda () (let ((b (get-buffer "*Variables*")))
                          (and b (string-match-p
                                  "A" (derl-distel-child-buffer-text b))
                               (derl-distel-child-buffer-text b)))))))))))

;;;; Output

(defconst derl-distel-test--talk
  '(progn
     (erl-rpc #'ignore nil derl-distel-child-node
              'io 'format (list "caf\351 ~ts~n" (list (erl-binary "wörld ∑"))))
     (derl-distel-child-wait
      (lambda () (string-match-p
                  "\n" (or (derl-distel-child-buffer-text "*erl-output*") ""))))
     (derl-distel-child-buffer-text "*erl-output*"))
  "Print Latin-1 and UTF-8 text through Distel's `erl-rpc'.")

(ert-deftest derl-distel-output-across-restart ()
  "io:format output from `erl-rpc' reaches *erl-output*, after a restart too.
Distel's backend keeps an output proxy per printed group leader
pid; the second Emacs has the same node name and the same printed
pid, so the old proxy forwards to the first Emacs's pid."
  (derl-distel-test-with-node node
    (let ((name (intern (format "distel%s@localhost"
                                (derl-test-random-string 6)))))
      (should (equal (derl-distel-test-run node derl-distel-test--talk name)
                     "café wörld ∑\n"))
      (should (cl-some (lambda (n) (string-prefix-p "distel_gl_for_"
                                                    (symbol-name n)))
                       (derl-call node 'erlang 'registered nil)))
      (should (equal (derl-distel-test-run node derl-distel-test--talk name)
                     "café wörld ∑\n")))))

;;;; Pids of an earlier Emacs

(defconst derl-distel-test--ie-print
  '(let ((node derl-distel-child-node))
     (with-current-buffer (erl-ie-session node)
       (derl-distel-child-wait
        (lambda () (erl-pid-p (derl-call node 'erlang 'whereis '(distel_ie)))))
       (goto-char (point-max))
       (insert "\nio:format(\"derl-ie-~s~n\", [\"printed\"]).")
       (erl-ie-eval-expression node)
       (let ((printed (lambda (text) (and (string-match-p "derl-ie-printed"
                                                          (or text ""))
                                          t))))
         (ignore-errors
           (derl-distel-child-wait
            (lambda ()
              (or (funcall printed (buffer-string))
                  (funcall printed (derl-distel-child-buffer-text
                                    "*erl-output*"))))
            10))
         (list (erl-pid-id erl-group-leader)
               (funcall printed (buffer-string))
               (funcall printed (derl-distel-child-buffer-text
                                 "*erl-output*"))))))
  "Print from a distel-ie session; say where the text went.
The value is (GROUP-LEADER-NUMBER IN-SESSION IN-ERL-OUTPUT).")

(ert-deftest derl-distel-ie-output-across-restart ()
  "distel-ie's output reaches its session after a restart too.
The node's distel_ie process keeps the group leader it was given,
an output proxy that forwards to the session's group leader of the
first Emacs.  The second Emacs, of the same name, makes its session
the same way, under the same number: the output goes there, not to
*erl-output*."
  (derl-distel-test-with-node node
    (let* ((name (intern (format "distel%s@localhost"
                                 (derl-test-random-string 6))))
           (first (derl-distel-test-run node derl-distel-test--ie-print name))
           (second (derl-distel-test-run node derl-distel-test--ie-print
                                         name)))
      (should (equal (cdr first) '(t nil)))
      ;; The same number: the old proxy's pid names it.
      (should (eql (car first) (car second)))
      (should (equal (cdr second) '(t nil))))))

(defun derl-distel-test--stale (pid)
  "PID as an earlier Emacs of the same node name had it."
  (let ((stale (copy-sequence pid)))
    (aset stale 5 (logand (1+ erl-node-creation) #xffffffff))
    stale))

(ert-deftest derl-distel-stale-pid-output-only ()
  "Of what a node sends to a pid of an earlier Emacs, only output arrives.
{put_chars, Chars} reaches the process with that number now;
another message is lost and logged; a link and a monitor from the
node get noproc, as for any pid of an earlier incarnation."
  (derl-test-with-node (node)
    (let* ((inbox (derl-test-inbox))
           (stale (derl-distel-test--stale (car inbox)))
           (tester (derl-test-inbox)))
      (derl-call node 'erlang 'send (list stale [put_chars "to the new one"]))
      (derl-call node 'erlang 'send (list stale 'not-output))
      (derl-test-wait (lambda () (cadr inbox)))
      (accept-process-output nil 0.3)
      (should (equal (cadr inbox) '([put_chars "to the new one"])))
      (with-current-buffer "*erl-lost-msgs*"
        (should (string-match-p
                 (format "to <[^>]*\\.%d\\.0> (creation %d): 'not-output'"
                         (erl-pid-id stale) (erl-pid-creation stale))
                 (buffer-string))))
      (erl-send (vector 'echo node) (vector 'register_tester (car tester)))
      (erl-send (vector 'echo node) (vector 'link stale))
      (erl-send (vector 'echo node) (vector 'monitor stale))
      (derl-test-wait
       (lambda () (and (member [linked_exit noproc] (cadr tester))
                       (member [down noproc] (cadr tester)))))
      (should (erl-local-pid-alive-p (car inbox))))))

;; Where Distel's sources are, none of its tests may skip; but finding
;; OTP's source, which a node in a chroot has where Emacs cannot see it.
(dolist (test (ert-select-tests "\\`derl-distel-" t))
  (unless (eq (ert-test-name test) 'derl-distel-find-source)
    (add-to-list 'derl-ert-must-run
                 (cons (ert-test-name test)
                       (lambda () derl-distel-test-source)))))

(provide 'derl-distel-tests)

;;; derl-distel-tests.el ends here

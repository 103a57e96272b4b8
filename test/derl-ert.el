;;; derl-ert.el --- test harness: real epmd and erl nodes for ERT  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; Loaded by `make test'.  The suites talk to real Erlang: a private
;; epmd on a free port and `erl' nodes with random names and a random
;; cookie, all started here and all stopped when Emacs exits.
;;
;; The nodes are whatever `erl', `erlc' and `elixir' are first in
;; PATH.  `make test-matrix' (test/matrix.sh) puts wrappers there that
;; run another Erlang/OTP in a Debian chroot, and sets DERL_TEST_EBIN
;; to the test modules compiled by that OTP's erlc, since a beam built
;; by a newer OTP may not load in an older one.

;;; Code:

(require 'ert)
(require 'cl-lib)

(defconst derl-test-root
  (file-name-directory
   (directory-file-name
    (file-name-directory (or load-file-name buffer-file-name))))
  "The derl source tree.")

(defconst derl-test-ebin
  (let ((ebin (getenv "DERL_TEST_EBIN")))
    (if (and ebin (not (string= ebin "")))
        (expand-file-name ebin)
      (expand-file-name "build/ebin" derl-test-root)))
  "The compiled Erlang helper modules: build/ebin, where `make' puts them.
The environment variable DERL_TEST_EBIN names another directory.")

(defvar derl-test--epmd nil "The private epmd process.")
(defvar derl-test--epmd-port nil "Its port.")
(defvar derl-test--scratch nil "Scratch directory, removed at exit.")

(defun derl-test-random-string (n)
  "Return N random lowercase letters and digits."
  (let ((chars "abcdefghijklmnopqrstuvwxyz0123456789"))
    (apply #'string (cl-loop repeat n collect
                             (aref chars (random (length chars)))))))

(defvar derl-test-cookie (progn (random t) (derl-test-random-string 20))
  "The cookie every test node gets; never printed.")

(defun derl-test-free-port ()
  "Return a TCP port on the loopback interface that is free right now."
  (let* ((server (make-network-process :name "derl-port-probe" :server t
                                       :host 'local :service t
                                       :family 'ipv4))
         (port (process-contact server :service)))
    (delete-process server)
    port))

(defun derl-test-scratch-file (name)
  "Return the path of NAME in a scratch directory removed at exit."
  (unless derl-test--scratch
    (setq derl-test--scratch (make-temp-file "derl-test-" t)))
  (expand-file-name name derl-test--scratch))

(defun derl-test-epmd-port ()
  "Return the port of a private epmd, starting it the first time."
  (unless (and derl-test--epmd (process-live-p derl-test--epmd))
    (let ((port (derl-test-free-port)))
      (setq derl-test--epmd
            (start-process "derl-test-epmd" nil "epmd" "-port"
                           (number-to-string port)))
      (set-process-query-on-exit-flag derl-test--epmd nil)
      (setq derl-test--epmd-port port)
      ;; Wait until it answers.
      (cl-loop repeat 100
               until (ignore-errors
                       (delete-process
                        (make-network-process :name "derl-epmd-probe"
                                              :host "127.0.0.1"
                                              :service port))
                       t)
               do (sleep-for 0.05))))
  derl-test--epmd-port)

(defun derl-test-erl-environment ()
  "Return `process-environment' for an erl using the private epmd."
  (cons (format "ERL_EPMD_PORT=%d" (derl-test-epmd-port))
        process-environment))

(defun derl-test-node-name (&optional prefix)
  "Return a fresh random short node name at localhost, with PREFIX."
  (format "%s%s@localhost" (or prefix "derltest") (derl-test-random-string 8)))

(defun derl-test-erl (&rest args)
  "Run a distributed erl node with ARGS until it halts.
The node gets a random name and the test cookie, and sees the test
modules.  Return (EXIT-CODE . OUTPUT)."
  (with-temp-buffer
    (let* ((process-environment (derl-test-erl-environment))
           (code (apply #'call-process "erl" nil t nil
                        "-noshell" "-pa" derl-test-ebin
                        "-sname" (derl-test-node-name)
                        "-setcookie" derl-test-cookie
                        args)))
      (cons code (buffer-string)))))

(defvar derl-test--otp-release nil "The major release of the test nodes' OTP.")

(defun derl-test-otp-release ()
  "Return the major Erlang/OTP release the test nodes run, as an integer.
That is the release of the `erl' in PATH, asked once."
  (or derl-test--otp-release
      (setq derl-test--otp-release
            (with-temp-buffer
              (call-process "erl" nil t nil "-noshell" "-eval"
                            (concat "io:format(\"~s\", "
                                    "[erlang:system_info(otp_release)]), "
                                    "halt()."))
              (or (cl-parse-integer (buffer-string) :junk-allowed t)
                  (error "Cannot tell the release of erl: %s"
                         (buffer-string)))))))

(defvar derl-test--nodes nil "Erlang node processes the tests started.")

(defun derl-test--await-ready (proc name)
  "Track PROC, the node NAME, and wait until it prints \"derl_peer ready\".
Return NAME as a symbol."
  (set-process-query-on-exit-flag proc nil)
  (process-put proc 'node (intern name))
  (push proc derl-test--nodes)
  (with-current-buffer (process-buffer proc)
    (cl-loop repeat 300
             until (save-excursion
                     (goto-char (point-min))
                     (search-forward "derl_peer ready" nil t))
             do (accept-process-output proc 0.1))
    (unless (save-excursion (goto-char (point-min))
                            (search-forward "derl_peer ready" nil t))
      (error "Node %s did not start: %s" name (buffer-string))))
  (intern name))

(defun derl-test-start-node (&rest args)
  "Start an Erlang node running derl_peer, with extra erl ARGS.
It gets a random name at localhost and the test cookie.  Wait until
it is ready and return its node name as a symbol."
  (apply #'derl-test-start-named-node (derl-test-node-name "peer") args))

(defun derl-test-start-named-node (name &rest args)
  "Start an Erlang node called NAME running derl_peer, with extra erl ARGS.
Wait until it is ready and return its node name as a symbol."
  (let* ((buffer (generate-new-buffer " *derl-test-node*"))
         (process-environment (derl-test-erl-environment))
         (proc (apply #'start-process "derl-test-node" buffer "erl"
                      "-noshell" "-pa" derl-test-ebin
                      "-sname" name "-setcookie" derl-test-cookie
                      (append args '("-s" "derl_peer" "start")))))
    (derl-test--await-ready proc name)))

(defun derl-test-start-elixir-node ()
  "Start an Elixir node running test/elixir/derl_echo.exs; return its name.
Stop it with `derl-test-stop-node'."
  (let* ((name (derl-test-node-name "elixir"))
         (buffer (generate-new-buffer " *derl-test-elixir*"))
         (process-environment (derl-test-erl-environment))
         (proc (start-process "derl-test-elixir" buffer "elixir"
                              "--sname" name "--cookie" derl-test-cookie
                              (expand-file-name "test/elixir/derl_echo.exs"
                                                derl-test-root))))
    (derl-test--await-ready proc name)))

(defun derl-test-stop-node (node)
  "Kill the Erlang NODE started by `derl-test-start-node' and wait for it."
  (dolist (proc derl-test--nodes)
    (when (eq (process-get proc 'node) node)
      (when (process-live-p proc)
        (kill-process proc)
        (cl-loop repeat 100 while (process-live-p proc)
                 do (accept-process-output proc 0.05)))
      (let ((buffer (process-buffer proc)))
        (when (buffer-live-p buffer)
          (kill-buffer buffer)))))
  (setq derl-test--nodes
        (cl-remove-if (lambda (p) (eq (process-get p 'node) node))
                      derl-test--nodes)))

(defun derl-test--cleanup ()
  "Stop what the tests started."
  (dolist (proc derl-test--nodes)
    (when (process-live-p proc)
      (kill-process proc)))
  (when (and derl-test--epmd (process-live-p derl-test--epmd))
    (delete-process derl-test--epmd))
  (when derl-test--scratch
    (delete-directory derl-test--scratch t)))

(add-hook 'kill-emacs-hook #'derl-test--cleanup)

;;;; A clean slate for connection tests

(declare-function derl-nodes "derl" ())
(declare-function derl-disconnect "derl" (node))

(defun derl-test-disconnect-all ()
  "Close every connection derl has and wait until it knows of none.
Connection tests start with this, so that none depends on how an
earlier one cleaned up."
  (require 'derl)
  (dolist (node (derl-nodes))
    (derl-disconnect node))
  (let ((deadline (+ (float-time) 20)))
    (while (and (derl-nodes) (< (float-time) deadline))
      (accept-process-output nil 0.05)))
  (when (derl-nodes)
    (error "Still connected to %S" (derl-nodes))))

;;;; Files of length-prefixed records, as test/erl/derl_oracle.erl uses.

(defun derl-test-read-records (file)
  "Return the records in FILE: each a 32-bit length, then that many bytes."
  (with-temp-buffer
    (set-buffer-multibyte nil)
    (insert-file-contents-literally file)
    (let ((s (buffer-string)) (i 0) records)
      (while (< i (length s))
        (let ((n (logior (ash (aref s i) 24) (ash (aref s (+ i 1)) 16)
                         (ash (aref s (+ i 2)) 8) (aref s (+ i 3)))))
          (push (substring s (+ i 4) (+ i 4 n)) records)
          (setq i (+ i 4 n))))
      (nreverse records))))

(defun derl-test-write-records (file records)
  "Write RECORDS, unibyte strings, to FILE, each after its 32-bit length."
  (with-temp-buffer
    (set-buffer-multibyte nil)
    (dolist (r records)
      (let ((n (string-bytes r)))
        (insert (logand (ash n -24) 255) (logand (ash n -16) 255)
                (logand (ash n -8) 255) (logand n 255))
        (insert r)))
    (let ((coding-system-for-write 'binary))
      (write-region nil nil file nil 'quiet))))

;;;; Batch runner

(defvar derl-ert-must-run
  '((derl-elixir-node . always)
    (derl-lint-native-compile
     . (lambda () (and (fboundp 'native-comp-available-p)
                       (native-comp-available-p)))))
  "Tests that may not skip, each (NAME . PREDICATE).
A selected test NAME that skips while PREDICATE returns non-nil
counts as failed: what it checks is never left unchecked on a
machine that has what it needs.  Suites add their own entries.")

(defun derl-ert--must-not-skip (stats)
  "Return the tests of STATS that skipped though `derl-ert-must-run' forbids."
  (cl-loop for test across (ert--stats-tests stats)
           for result across (ert--stats-test-results stats)
           for rule = (assq (ert-test-name test) derl-ert-must-run)
           when (and rule (ert-test-skipped-p result) (funcall (cdr rule)))
           collect (ert-test-name test)))

(defun derl-ert-load-suites ()
  "Load every test/*-tests.el once.
Suites `require' one another, and Emacs 29 and later refuse to
define a test twice, so each file is loaded through `require' of
the feature it provides (its name), never a second time."
  (dolist (f (directory-files (expand-file-name "test" derl-test-root) t
                              "-tests\\.el\\'"))
    (require (intern (file-name-base f)) (file-name-sans-extension f))))

(defconst derl-ert--slow-tests
  '((derl-lint-native-compile . 50) (derl-survives-a-busy-emacs . 20)
    (derl-listen-stall-and-garbage . 10) (derl-ui-make-demo . 10)
    (derl-listen-flood-slows-repeated-failures . 6)
    (derl-listen-flood-names-allocate-nothing . 6)
    (derl-package-install . 6) (derl-wait-busy-between-waits-keeps-the-link . 6)
    (derl-tls-ticks-while-busy . 5) (derl-package-terminal-build . 5)
    (derl-listen-flood-good-node-gets-in . 5) (derl-readme-distel-setup . 4)
    (erlext-oracle-random-terms . 4) (derl-lint-byte-compile . 4)
    (derl-hostile-node-send-queue-limit . 4) (derl-lint-checkdoc . 4)
    (derl-shell-terminal . 4) (derl-readme-distel-arglists . 4))
  "About how many seconds the slowest tests take; the others take one.
Shards are balanced with these (see `derl-ert-selector').")

(defun derl-ert--shard (names shard shards)
  "The tests of NAMES that make shard SHARD (from 1) of SHARDS.
Each test goes, slowest first, to the shard with the least time yet,
so that shards run in parallel take about as long."
  (let ((load (make-vector shards 0))
        (mine nil))
    (dolist (name (sort (copy-sequence names)
                        (lambda (a b)
                          (let ((ta (alist-get a derl-ert--slow-tests 1))
                                (tb (alist-get b derl-ert--slow-tests 1)))
                            (if (= ta tb) (string< a b) (> ta tb))))))
      (let ((least (cl-position (cl-reduce #'min load) load)))
        (cl-incf (aref load least) (alist-get name derl-ert--slow-tests 1))
        (when (= least (1- shard))
          (push name mine))))
    (nreverse mine)))

(defun derl-ert-selector ()
  "The tests to run: those DERL_TESTS matches, but not DERL_TESTS_SKIP.
Both are regexps, from the environment; DERL_TESTS defaults to all
tests, DERL_TESTS_SKIP to none.  DERL_TEST_SHARD, K/N, keeps the
Kth of N shards of about equal time, for runs in parallel."
  (let* ((only (getenv "DERL_TESTS"))
         (skip (getenv "DERL_TESTS_SKIP"))
         (shard (getenv "DERL_TEST_SHARD"))
         (selector (progn
                     (setq only (if (and only (not (string= only ""))) only t))
                     (if (and skip (not (string= skip "")))
                         `(and ,only (not ,skip))
                       only))))
    (if (and shard (string-match "\\`\\([0-9]+\\)/\\([0-9]+\\)\\'" shard))
        (let ((k (string-to-number (match-string 1 shard)))
              (n (string-to-number (match-string 2 shard))))
          `(member ,@(derl-ert--shard
                      (mapcar #'ert-test-name (ert-select-tests selector t))
                      k n)))
      selector)))

(defun derl-ert-run-batch ()
  "Load every test/*-tests.el, run them all, print totals and exit.
The selector comes from the environment: see `derl-ert-selector'.
The last line says \"ERT suites: N passed, N failed, N skipped\".  The
exit status is non-zero when a test failed, when a test named in
`derl-ert-must-run' skipped (it counts as failed), or when the
selector matched no test at all."
  (derl-ert-load-suites)
  (let* ((selector (derl-ert-selector))
         (stats (ert-run-tests-batch selector))
         (must-run (derl-ert--must-not-skip stats))
         (failed (+ (ert-stats-completed-unexpected stats) (length must-run)))
         (skipped (- (ert-stats-skipped stats) (length must-run)))
         (passed (ert-stats-completed-expected stats)))
    (dolist (name must-run)
      (princ (format "FAILED: %s skipped, but must run here\n" name)))
    (when (zerop (ert-stats-total stats))
      (princ (format "FAILED: no test matches the selector %S\n" selector)))
    (princ (format "ERT suites: %d passed, %d failed, %d skipped\n"
                   passed failed skipped))
    (kill-emacs (if (and (zerop failed) (> (ert-stats-total stats) 0)) 0 1))))

(provide 'derl-ert)

;;; derl-ert.el ends here

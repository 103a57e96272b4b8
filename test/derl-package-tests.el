;;; derl-package-tests.el --- one entry point, autoloads, package.el  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; How derl gets into an Emacs, each in an Emacs of its own: the
;; autoloads `make' writes (every command and option README names, and
;; nothing heavy loaded); the module loaded at its functions' first
;; call, not with derl; README's Install section followed in a fresh
;; HOME (`make package', `package-install-file', then the module built
;; in the package's directory at first use and a node connected); its
;; use-package recipes; a terminal Emacs under tmux asked to build the
;; module, answering no, then yes; and `make demo''s stream figure.

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'subr-x)
(require 'derl-ert)
(require 'derl-tests)
(require 'derl-demo)

(defconst derl-package--emacs
  (expand-file-name invocation-name invocation-directory)
  "This Emacs's executable, for the Emacs each test starts.")

;;;; Running Emacs and reading README

(defun derl-package--run (environment program &rest args)
  "Run PROGRAM with ARGS and ENVIRONMENT added to the environment.
Return (EXIT-CODE . OUTPUT), OUTPUT holding stdout and stderr."
  (with-temp-buffer
    (let ((process-environment (append environment process-environment)))
      (cons (apply #'call-process program nil t nil args) (buffer-string)))))

(defun derl-package--batch (home form &rest args)
  "Evaluate FORM in a batch Emacs whose home is HOME, nil for this one's.
ARGS come before FORM.  The Emacs compiles nothing natively.
Return (EXIT-CODE . OUTPUT)."
  (apply #'derl-package--run
         (and home (list (concat "HOME=" home)))
         derl-package--emacs
         (append '("-Q" "--batch") args
                 (list "--eval"
                       (prin1-to-string
                        `(progn
                           (setq print-escape-newlines t
                                 native-comp-deferred-compilation nil
                                 native-comp-jit-compilation nil)
                           ,form))))))

(defun derl-package--result (run)
  "The value a batch Emacs printed as \"RESULT: VALUE\" in RUN.
RUN is (EXIT-CODE . OUTPUT); a run without one fails the test."
  (let ((output (cdr run)))
    (unless (string-match "^RESULT: \\(.*\\)$" output)
      (ert-fail (list "No result" run)))
    (car (read-from-string (match-string 1 output)))))

(defun derl-package--readme-section (heading)
  "The text of README.org's section HEADING, up to the next heading."
  (with-temp-buffer
    (insert-file-contents (expand-file-name "README.org" derl-test-root))
    (goto-char (point-min))
    (re-search-forward (concat "^\\*+ " (regexp-quote heading) "$"))
    (buffer-substring (point) (if (re-search-forward "^\\*+ " nil t)
                                  (match-beginning 0)
                                (point-max)))))

(defun derl-package--src-blocks (text language)
  "The bodies of TEXT's source blocks in LANGUAGE, in order."
  (let ((blocks nil) (start 0))
    (while (string-match
            (format "^#\\+begin_src %s\n\\(\\(?:.*\n\\)*?\\)#\\+end_src"
                    language)
            text start)
      (push (match-string 1 text) blocks)
      (setq start (match-end 0)))
    (nreverse blocks)))

(defun derl-package--readme-names ()
  "What README.org names: (COMMANDS . SYMBOLS).
COMMANDS are the names README gives as commands; SYMBOLS every name with one of
derl's prefixes, which may be functions, options or neither."
  (let ((commands nil) (symbols nil))
    (with-temp-buffer
      (insert-file-contents (expand-file-name "README.org" derl-test-root))
      (goto-char (point-min))
      (while (re-search-forward "M-x \\([a-z][a-z0-9-]*[a-z0-9]\\)" nil t)
        (cl-pushnew (intern (match-string 1)) commands))
      (goto-char (point-min))
      (while (re-search-forward "\\(?:^\\|[^a-z0-9-]\\)\\(\\(?:derl\\|erl\\|epmd\
\\|erlext\\|mcase\\)-[a-z0-9-]*[a-z0-9]\\)" nil t)
        (cl-pushnew (intern (match-string 1)) symbols)))
    (cons commands symbols)))

(defun derl-package--home ()
  "A new empty home directory, with ~/src/derl the tree under test."
  (let ((home (derl-test-scratch-file
               (format "home-%s" (derl-test-random-string 8)))))
    (make-directory (expand-file-name "src" home) t)
    (make-symbolic-link (directory-file-name derl-test-root)
                        (expand-file-name "src/derl" home))
    home))

(defun derl-package--copy-home (home)
  "Return a copy of HOME, for a test to change while HOME stays as it was."
  (let ((copy (derl-test-scratch-file
               (format "home-%s" (derl-test-random-string 8)))))
    (should (eql (call-process "cp" nil nil nil "-a" home copy) 0))
    copy))

(defvar derl-package--installed nil
  "(HOME MAKE INSTALL) once derl is installed as README says.
HOME has it installed and its module not built; MAKE and INSTALL are
the (EXIT-CODE . OUTPUT) of README's two steps.")

(defun derl-package--call-locked (function)
  "Call FUNCTION holding the lock on the package tarball; return its value.
The shards of `make test' run at once, and each makes and installs
the one tarball, build/derl-VERSION.tar: one may not install it while
another writes it.  The lock is a directory, which only one process
can make; test/run-tests.sh removes one a killed run left."
  (let ((lock (expand-file-name "build/package.lock" derl-test-root))
        (deadline (+ (float-time) 300)))
    (while (condition-case nil
               (progn (make-directory lock) nil)
             (file-already-exists t))
      (when (> (float-time) deadline)
        (error "%s is still held after 300 s" lock))
      (sleep-for 0.1))
    (unwind-protect (funcall function)
      (delete-directory lock))))

(defun derl-package--install ()
  "Install derl into a new home, following README's Install section.
Once per Emacs: return `derl-package--installed'."
  (or derl-package--installed
      (derl-package--call-locked #'derl-package--install-now)))

(defun derl-package--install-now ()
  "Install derl into a new home: the work of `derl-package--install'."
  (let* ((home (derl-package--home))
         (section (derl-package--readme-section "With package.el"))
         (make (derl-package--run
                (list (concat "HOME=" home))
                "sh" "-c" (car (derl-package--src-blocks section "sh"))))
         (install
          (derl-package--batch
           home
           `(progn
              (package-initialize)
              ,(car (read-from-string
                     (car (derl-package--src-blocks section
                                                    "emacs-lisp"))))
              (princ "\nRESULT: installed\n")))))
    (setq derl-package--installed (list home make install))))

(defun derl-package--package-directory (home)
  "The directory of the derl package installed in HOME."
  (car (file-expand-wildcards
        (expand-file-name ".emacs.d/elpa/derl-[0-9]*" home))))

;;;; Autoloads and loading

(ert-deftest derl-package-autoloads ()
  "Loading lisp/derl-autoloads.el alone makes every command README names.
After it and (require \\='derl) every function and option README names
exists, and the group `derl' (with its subgroups) holds every option;
nothing of derl loads with the autoloads, and the module not with
derl."
  (let ((autoloads (expand-file-name "lisp/derl-autoloads.el" derl-test-root))
        (names (derl-package--readme-names)))
    (should (file-exists-p autoloads))
    (let ((result
           (derl-package--result
            (derl-package--batch
             nil
             `(progn
                (require 'cl-lib)
                (load ,autoloads nil t)
                (let* ((loaded (cl-remove-if-not
                                #'featurep
                                '(derl erl erlext derl-module derl-node
                                       derl-distel derl-commands)))
                       (not-commands (cl-remove-if #'commandp ',(car names)))
                       (module (progn (require 'derl)
                                      (list derl-module--loaded
                                            (module-function-p
                                             (symbol-function
                                              'derl--module-decode)))))
                       (functions (cl-remove-if-not #'fboundp ',(cdr names)))
                       (variables (cl-remove-if-not #'boundp ',(cdr names)))
                       (members
                        (let ((groups '(derl)) (members nil))
                          (custom-load-symbol 'derl)
                          (while groups
                            (dolist (member (get (pop groups) 'custom-group))
                              (if (eq (cadr member) 'custom-group)
                                  (progn (custom-load-symbol (car member))
                                         (push (car member) groups))
                                (push (car member) members))))
                          members))
                       (options nil))
                  ;; Now everything: what README names that exists.
                  (dolist (file (directory-files
                                 ,(expand-file-name "lisp" derl-test-root) t
                                 "\\.el\\'"))
                    (unless (string-suffix-p "-autoloads.el" file)
                      (load file nil t)))
                  (mapatoms
                   (lambda (symbol)
                     (when (and (get symbol 'standard-value)
                                (string-prefix-p
                                 ,(expand-file-name "lisp/" derl-test-root)
                                 (or (symbol-file symbol 'defvar) "")))
                       (push symbol options))))
                  (princ
                   (format
                    "RESULT: %S\n"
                    (list
                     :loaded loaded
                     :not-commands not-commands
                     :module module
                     :missing-functions
                     (cl-remove-if (lambda (f) (memq f functions))
                                   (cl-remove-if-not #'fboundp ',(cdr names)))
                     :missing-variables
                     (cl-remove-if
                      (lambda (v) (memq v variables))
                      (cl-remove-if-not #'custom-variable-p ',(cdr names)))
                     :not-in-group
                     (cl-remove-if (lambda (o) (memq o members)) options)
                     :options (length options))))))))))
      (should (equal (plist-get result :loaded) nil))
      (should (equal (plist-get result :not-commands) nil))
      (should (equal (plist-get result :module) '(nil nil)))
      (should (equal (plist-get result :missing-functions) nil))
      (should (equal (plist-get result :missing-variables) nil))
      (should (equal (plist-get result :not-in-group) nil))
      (should (> (plist-get result :options) 20)))))

(ert-deftest derl-package-module-at-first-use ()
  "Derl loads without its module; the module loads at a function's first call.
A missing module makes that call say how to build it, with every
command defined; the functions that stand for the module's
until then are the very ones it defines."
  (let ((result
         (derl-package--result
          (derl-package--batch
           nil
           '(progn
              (setq derl-module-file "/nonexistent/derl-module.so")
              (require 'derl)
              (require 'derl-node)
              (princ
               (format "RESULT: %S\n"
                       (list :commands (mapcar #'commandp
                                               '(erl-connect derl-start-node
                                                 derl-list-nodes))
                             :error (condition-case err
                                        (erlext-term-to-binary 1)
                                      (derl-module-error (cadr err)))))))
           "-L" (expand-file-name "lisp" derl-test-root)))))
    (should (equal (plist-get result :commands) '(t t t)))
    (should (string-match-p "derl-module\\.so is missing; build it with \
M-x derl-module-compile"
                            (plist-get result :error))))
  (let ((result
         (derl-package--result
          (derl-package--batch
           nil
           '(progn
              (require 'derl)
              (let ((before derl-module--loaded)
                    (term (erlext-term-to-binary '(1 a)))
                    (defined nil))
                (mapatoms (lambda (symbol)
                            (when (and (fboundp symbol)
                                       (module-function-p
                                        (symbol-function symbol)))
                              (push symbol defined))))
                (princ (format "RESULT: %S\n"
                               (list :before before
                                     :term term
                                     :after derl-module--loaded
                                     :extra (cl-set-difference
                                             defined derl-module--functions)
                                     :missing (cl-set-difference
                                               derl-module--functions
                                               defined))))))
           "-L" (expand-file-name "lisp" derl-test-root)))))
    (should (equal (plist-get result :before) nil))
    (should (equal (plist-get result :term) "\203l\0\0\0\2a\1w\1aj"))
    (should (stringp (plist-get result :after)))
    (should (equal (plist-get result :extra) nil))
    (should (equal (plist-get result :missing) nil))))

;;;; package.el

(ert-deftest derl-package-install ()
  "README's package.el steps install derl in a new home, and it works.
The package compiles without a warning and with no module; at its
first use it builds the module in its own directory and connects to
a node."
  (pcase-let ((`(,home ,make ,install) (derl-package--install)))
    (should (equal (car make) 0))
    (should (equal (car install) 0))
    (should (equal (derl-package--result install) 'installed))
    (should-not (let ((case-fold-search nil))
                  (string-match-p "Warning\\|Error\\|missing" (cdr install))))
    (let ((package (derl-package--package-directory home)))
      (should package)
      (dolist (file '("Makefile" "test/deps.sh" "module/derl_module.c"
                      "module/elisp.h" "derl.elc" "derl-module.elc"
                      "derl-autoloads.el"))
        (should (file-exists-p (expand-file-name file package))))
      (should-not (file-exists-p (expand-file-name "module/derl-module.so"
                                                   package))))
    (derl-test-with-node (node)
      (let* ((home (derl-package--copy-home home))
             (result
              (derl-package--result
               (derl-package--batch
                home
                `(progn
                   ;; What Emacs does at start.
                   (package-activate-all)
                   (let ((before (list (featurep 'derl)
                                       (featurep 'derl-module)
                                       (mapcar #'commandp
                                               '(erl-connect derl-start-node
                                                 derl-distel-setup
                                                 derl-module-compile)))))
                     (setq derl-module-compile-automatically t
                           derl-cookie ,derl-test-cookie
                           derl-epmd-port ,derl-epmd-port
                           erl-node-name
                           ',(intern (format "pkg%s@localhost"
                                             (derl-test-random-string 6))))
                     (require 'derl)
                     (let ((answer (derl-call ',node 'erlang 'node nil)))
                       (princ
                        (format "RESULT: %S\n"
                                (list :before before
                                      :answer answer
                                      :module derl-module--loaded
                                      :log (with-current-buffer
                                               "*derl-module-compile*"
                                             (buffer-string))))))))))))
        (should (equal (plist-get result :before) '(nil nil (t t t t))))
        (should (eq (plist-get result :answer) node))
        (should (equal (plist-get result :module)
                       (expand-file-name
                        "module/derl-module.so"
                        (derl-package--package-directory home))))
        (should (string-match-p "make module exited with status 0"
                                (plist-get result :log)))))))

;; use-package is part of Emacs 29 and later: there it always runs.
(add-to-list 'derl-ert-must-run
             '(derl-package-use-package
               . (lambda () (>= emacs-major-version 29))))

(ert-deftest derl-package-use-package ()
  "README's use-package recipes work as written, listing no commands.
Nothing of derl loads when Emacs starts; every command is there; the
options are set once derl loads."
  (skip-unless (or (>= emacs-major-version 29) (locate-library "use-package")))
  (let ((blocks (derl-package--src-blocks
                 (derl-package--readme-section "With use-package")
                 "emacs-lisp")))
    (should (= (length blocks) 2))
    (dolist (block blocks)
      (should (string-prefix-p "(use-package derl" block))
      (should-not (string-match-p ":commands" block)))
    ;; The package's recipe where the package is installed, the
    ;; clone's where there is only the clone (~/src/derl).
    (pcase-dolist (`(,block ,home ,from)
                   (let ((package (derl-package--copy-home
                                   (car (derl-package--install)))))
                     (list (list (nth 0 blocks) package
                                 (expand-file-name ".emacs.d/elpa/" package))
                           (list (nth 1 blocks) (derl-package--home)
                                 (expand-file-name "lisp/" derl-test-root)))))
      (let ((init (expand-file-name ".emacs.d/init.el" home)))
        (make-directory (file-name-directory init) t)
        (with-temp-file init
          (insert block))
        (let ((result
               (derl-package--result
                (derl-package--batch
                 home
                 `(progn
                    ;; What Emacs does at start.
                    (package-activate-all)
                    (require 'use-package)
                    (load ,init nil t)
                    (let ((before (list (featurep 'derl)
                                        (mapcar #'commandp
                                                '(erl-connect derl-start-node
                                                  derl-list-nodes
                                                  derl-distel-setup)))))
                      (require 'derl)
                      (princ (format "RESULT: %S\n"
                                     (list :before before
                                           :automatically
                                           derl-module-compile-automatically
                                           :from (symbol-file 'derl))))))))))
          (should (equal (plist-get result :before) '(nil (t t t t))))
          (should (eq (plist-get result :automatically) t))
          (should (string-prefix-p (file-truename from)
                                   (file-truename (plist-get result :from)))))))))

;;;; A terminal Emacs asked to build the module

;; .ci/run and test/deps.sh install tmux: never skipped where it can run.
(add-to-list 'derl-ert-must-run '(derl-package-terminal-build . always))

(defun derl-package--tmux (socket &rest args)
  "Run tmux on its server SOCKET with ARGS; return its output."
  (with-temp-buffer
    (apply #'call-process "tmux" nil t nil "-L" socket args)
    (buffer-string)))

(defun derl-package--screen (socket regexp &optional seconds)
  "Wait up to SECONDS (default 30) for tmux SOCKET's screen to match REGEXP.
Return the screen, which the caller checks."
  (let ((deadline (+ (float-time) (or seconds 30)))
        (screen ""))
    (while (and (not (string-match-p regexp screen))
                (< (float-time) deadline))
      (sleep-for 0.2)
      (setq screen (derl-package--tmux socket "capture-pane" "-p"
                                       "-t" "derl")))
    screen))

(defun derl-package--keys (socket &rest keys)
  "Type KEYS into tmux SOCKET's Emacs, as tmux send-keys names them."
  (apply #'derl-package--tmux socket "send-keys" "-t" "derl" keys))

(ert-deftest derl-package-terminal-build ()
  "A terminal Emacs with the package asks to build the module at first use.
Loading derl in the init file asks nothing and the rest of the init
file runs.  At `erl-connect', no leaves the module unbuilt, says
how to build it and keeps every command; yes builds it in a
compilation buffer while Emacs stays responsive, \\[keyboard-quit] stopping the
wait and not the build; then the node connects."
  (skip-unless (executable-find "tmux"))
  (derl-test-with-node (node)
    (let* ((home (derl-package--copy-home (car (derl-package--install))))
           (socket (format "derl-pkg-%s" (derl-test-random-string 6)))
           (bin (expand-file-name "bin" home))
           (gate (expand-file-name "gate" home))
           (init-done (expand-file-name "init-done" home))
           (init (expand-file-name ".emacs.d/init.el" home)))
      ;; A cc that compiles once the gate is there, so that the build
      ;; is under way for as long as the test needs (the gate is made
      ;; when the test ends).  The Makefile asks its version at once.
      (make-directory bin)
      (with-temp-file (expand-file-name "cc" bin)
        (insert (format "#!/bin/sh\n[ \"$1\" = --version ] || \
while [ ! -e %s ]; do sleep 0.1; done\nexec %s \"$@\"\n"
                        (shell-quote-argument gate)
                        (shell-quote-argument (executable-find "cc")))))
      (set-file-modes (expand-file-name "cc" bin) #o755)
      (make-directory (file-name-directory init) t)
      (with-temp-file init
        (prin1 `(progn
                  (setq inhibit-startup-screen t
                        native-comp-deferred-compilation nil
                        native-comp-jit-compilation nil)
                  (setq derl-cookie ,derl-test-cookie
                        derl-epmd-port ,derl-epmd-port
                        erl-node-name
                        ',(intern (format "emacsnw%s@localhost"
                                          (derl-test-random-string 4))))
                  (require 'derl)
                  (write-region "" nil ,init-done))
               (current-buffer)))
      (set-file-modes init #o600)
      (unwind-protect
          (progn
            (derl-package--tmux
             socket "new-session" "-d" "-s" "derl" "-x" "160" "-y" "40"
             (mapconcat #'shell-quote-argument
                        (list "env" (concat "HOME=" home)
                              (concat "PATH=" bin ":" (getenv "PATH"))
                              "CC=cc" "CFLAGS=-O0"
                              derl-package--emacs "-nw" "--no-site-file")
                        " "))
            (should (string-match-p "scratch"
                                    (derl-package--screen socket "scratch")))
            ;; The init file ran to its end, and nothing asked.
            (should (file-exists-p init-done))
            ;; No.
            (derl-package--keys socket "M-x" "erl-connect" "Enter")
            (let ((screen (derl-package--screen
                           socket "build it now\\|Connect to node")))
              (when (string-match-p "Connect to node" screen)
                (derl-package--keys socket (symbol-name node) "Enter"))
              (should (string-match-p
                       "The derl module is not built yet; build it now\\?"
                       (derl-package--screen socket "build it now"))))
            (derl-package--keys socket "n")
            (let ((screen (derl-package--screen socket "Connect to node")))
              (when (string-match-p "Connect to node" screen)
                (derl-package--keys socket (symbol-name node) "Enter")))
            (should (string-match-p
                     "is missing; build it with M-x derl-module-compile"
                     (derl-package--screen socket "derl-module-compile")))
            (derl-package--keys socket "M-:"
                                "(list 'defined (commandp 'derl-start-node) \
\(fboundp 'derl-node-port))"
                                "Enter")
            (should (string-match-p "(defined t t)"
                                    (derl-package--screen socket "(defined")))
            ;; Yes: the build starts and Emacs waits for it, showing so.
            (derl-package--keys socket "M-x" "erl-connect" "Enter")
            (should (string-match-p "build it now"
                                    (derl-package--screen socket
                                                          "build it now")))
            (derl-package--keys socket "y")
            (let ((screen (derl-package--screen socket "derl-module\\.so")))
              (should (string-match-p "make module" screen))
              (should (string-match-p "derl-module\\.so" screen))
              (should (string-match-p "\\*derl-module-compile\\*" screen)))
            (should (string-match-p
                     "Building the derl module"
                     (derl-package--screen socket "Building the derl module")))
            ;; C-g stops the waiting, not the build; Emacs answers.
            (derl-package--keys socket "C-g")
            (should (string-match-p
                     "Stopped waiting; the derl module is still being built"
                     (derl-package--screen socket "Stopped waiting")))
            (derl-package--keys socket "M-:"
                                "(list 'building (and (process-live-p \
\(get-buffer-process \"*derl-module-compile*\")) t))"
                                "Enter")
            (should (string-match-p "(building t)"
                                    (derl-package--screen socket
                                                          "(building")))
            ;; Let the compiler go; the end of the build is told.
            (write-region "" nil gate)
            (should (string-match-p
                     "The derl module is built"
                     (derl-package--screen socket "The derl module is built"
                                           300)))
            (should (file-exists-p
                     (expand-file-name "module/derl-module.so"
                                       (derl-package--package-directory
                                        home))))
            (derl-package--keys socket "M-x" "erl-connect" "Enter")
            (derl-package--screen socket "Connect to node")
            (derl-package--keys socket (symbol-name node) "Enter")
            (should (string-match-p
                     (format "Connected to %s" node)
                     (derl-package--screen socket "Connected to"))))
        (derl-package--tmux socket "kill-server")
        (write-region "" nil gate)))))

;;;; make demo

(ert-deftest derl-package-demo-stream ()
  "`make demo' measures its stream as `make bench' does, the trace off."
  (derl-test-with-node (node)
    (derl-connect node)
    (let* ((derl-demo-stream-size 20000)
           (output (with-output-to-string (derl-demo--stream node))))
      (should (string-match-p "the trace off" output))
      (should (string-match-p "measured as `make bench' does" output))
      (should (string-match-p "median of 3" output))
      (should (string-match-p "20000 arrived each time, in order: t; \
[0-9]+ messages/s (the three: [0-9]+, [0-9]+, [0-9]+)"
                              output)))))

(provide 'derl-package-tests)

;;; derl-package-tests.el ends here

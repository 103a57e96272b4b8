;;; derl-readme-tests.el --- README's examples, run against real nodes  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; README.org's emacs-lisp examples, read from README.org itself and
;; run, so that what it shows cannot drift from what derl does.
;;
;; In a block, a comment "; => VALUE" after a form is what the form
;; returns (VALUE is read as Lisp, and the symbol `erl-tag' in it
;; stands for the object `erl-tag'; a VALUE that does not end on its
;; line goes on in the comment lines below it), and "; -| TEXT" is
;; what it prints with `message', at once or soon after.  Every block
;; that shows either is run, form by form, against a real node whose
;; name replaces mynode@myhost (an Elixir node's replaces
;; elixir@myhost), and each value and text is compared.
;;
;; The section "Distel on derl" is checked too: its set-up block runs
;; as it stands in a fresh Emacs against a node started with
;; -setcookie, and each of Distel's broken commands it lists behaves
;; as it says.

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'subr-x)
(require 'derl-ert)
(require 'derl-tests)
(require 'derl-distel-tests)
(require 'derl-rpc)
(require 'derl-eval)

(defconst derl-readme-file (expand-file-name "README.org" derl-test-root)
  "The README whose examples are run.")

;;;; Reading README.org

(defun derl-readme--text ()
  "The text of README.org."
  (with-temp-buffer
    (insert-file-contents derl-readme-file)
    (buffer-string)))

(defun derl-readme-section (heading)
  "The text of README's section whose heading starts with HEADING.
The section runs to the next heading of its level or above."
  (with-temp-buffer
    (insert-file-contents derl-readme-file)
    (goto-char (point-min))
    (unless (re-search-forward (concat "^\\(\\*+\\) " (regexp-quote heading))
                               nil t)
      (error "README.org has no section %s" heading))
    (let ((level (length (match-string 1)))
          (start (line-beginning-position 2)))
      (forward-line 1)
      (if (re-search-forward (format "^\\*\\{1,%d\\} " level) nil t)
          (buffer-substring start (line-beginning-position))
        (buffer-substring start (point-max))))))

(defun derl-readme-blocks (&optional text)
  "The emacs-lisp source blocks of TEXT (default README.org's).
Each is (LINE . CODE), LINE the line of its #+begin_src in TEXT,
CODE its lines without the block's indentation."
  (with-temp-buffer
    (insert (or text (derl-readme--text)))
    (goto-char (point-min))
    (let (blocks)
      (while (re-search-forward
              "^\\([ \t]*\\)#\\+begin_src[ \t]+emacs-lisp.*\n" nil t)
        (let ((indent (length (match-string 1)))
              (line (1- (line-number-at-pos)))
              (start (point)))
          (unless (re-search-forward "^[ \t]*#\\+end_src" nil t)
            (error "README.org: the block at line %d has no end" line))
          (push (cons line
                      (mapconcat
                       (lambda (l)
                         (substring l (min indent
                                           (- (length l)
                                              (length (string-trim-left l))))))
                       (split-string (string-remove-suffix
                                      "\n" (buffer-substring
                                            start (line-beginning-position)))
                                     "\n")
                       "\n"))
                blocks)))
      (nreverse blocks))))

(defun derl-readme-shows-results-p (code)
  "Return non-nil if CODE shows a value (; =>) or printed text (; -|)."
  (string-match-p ";+[ \t]*\\(=>\\|-|\\)" code))

(defun derl-readme--complete-p (text)
  "Return non-nil if TEXT reads as exactly one Lisp object."
  (condition-case nil
      (let ((end (cdr (read-from-string text))))
        (string-match-p "\\`[ \t\n]*\\'" (substring text end)))
    ((end-of-file invalid-read-syntax) nil)))

(defun derl-readme-steps (code)
  "CODE's forms, each (FORM VALUE-TEXT PRINTED LINE).
VALUE-TEXT is the text of the value shown for FORM, or nil; PRINTED
the texts shown as printed; LINE the form's line in CODE."
  (with-temp-buffer
    (emacs-lisp-mode)
    (insert code)
    (goto-char (point-min))
    (let (steps)
      (while (progn (forward-comment (buffer-size)) (not (eobp)))
        (let ((line (line-number-at-pos))
              (form (read (current-buffer)))
              (value nil)
              (printed nil))
          ;; The comments that follow the form, on its last line and
          ;; the lines after it, up to the next form.
          (while (looking-at "[ \t\n]*;+[ \t]*\\(=>\\|-|\\)[ \t]?\\(.*\\)$")
            (let ((kind (match-string 1))
                  (text (match-string 2)))
              (goto-char (match-end 0))
              (if (equal kind "-|")
                  (push text printed)
                (while (and (not (derl-readme--complete-p text))
                            (looking-at "\n[ \t]*;+ ?\\(.*\\)$"))
                  (setq text (concat text "\n" (match-string 1)))
                  (goto-char (match-end 0)))
                (setq value text))))
          (push (list form value (nreverse printed) line) steps)))
      (nreverse steps))))

;;;; Running examples

(defun derl-readme--expected (text)
  "The value TEXT shows, with the symbol `erl-tag' made `erl-tag'."
  (unless (derl-readme--complete-p text)
    (error "Not one Lisp value: %s" text))
  (cl-labels ((fix (x)
                (cond ((eq x 'erl-tag) erl-tag)
                      ((consp x) (cons (fix (car x)) (fix (cdr x))))
                      ((and (vectorp x) (> (length x) 0))
                       (apply #'vector (mapcar #'fix x)))
                      (t x))))
    (fix (car (read-from-string text)))))

(defun derl-readme--substitute (code names)
  "CODE with each placeholder of NAMES, ((PLACEHOLDER . NAME) ...), replaced."
  (dolist (pair names code)
    (setq code (replace-regexp-in-string (regexp-quote (car pair))
                                         (cdr pair) code t t))))

(defvar derl-readme--printed nil
  "What the examples printed with `message', newest first.")

(defun derl-readme--record (format-string &rest args)
  "Record what `message' would show for FORMAT-STRING and ARGS."
  (when format-string
    (push (apply #'format-message format-string args) derl-readme--printed)))

(defun derl-readme-run (code)
  "Run the forms of CODE; return a list of what differs from what it shows.
Each difference is (LINE FORM :shown TEXT :got VALUE-OR-TEXTS)."
  (let ((problems nil))
    (advice-add 'message :before #'derl-readme--record)
    (unwind-protect
        (dolist (step (derl-readme-steps code))
          (cl-destructuring-bind (form value-text printed line) step
            (setq derl-readme--printed nil)
            (let ((value (condition-case err (eval form t)
                           (error (list 'signalled err)))))
              (cond ((and value-text
                          (not (equal value
                                      (derl-readme--expected value-text))))
                     (push (list line form :shown value-text :got value)
                           problems))
                    ((and (consp value) (eq (car value) 'signalled))
                     (push (list line form :got value) problems)))
              (when printed
                (let ((deadline (+ (float-time) 10)))
                  (while (and (cl-notevery (lambda (text)
                                             (member text derl-readme--printed))
                                           printed)
                              (< (float-time) deadline))
                    (accept-process-output nil 0.05)))
                (dolist (text printed)
                  (unless (member text derl-readme--printed)
                    (push (list line form :shown text
                                :got (reverse derl-readme--printed))
                          problems)))))))
      (advice-remove 'message #'derl-readme--record))
    (nreverse problems)))

(defun derl-readme--registered ()
  "The names registered in this Emacs now."
  (hash-table-keys erl--names))

(ert-deftest derl-readme-examples ()
  "Every example of README.org that shows a result gives that result.
They run against a fresh node (its own echo server unregistered:
README's examples make theirs), and an Elixir node when they call
one."
  (derl-test-configure)
  (let* ((blocks (cl-remove-if-not
                  (lambda (b) (derl-readme-shows-results-p (cdr b)))
                  (derl-readme-blocks)))
         (node (derl-test-start-node))
         (elixir nil)
         (names-before (derl-readme--registered))
         (problems nil)
         (erl-popup-on-output nil))
    ;; README's first example, the one with the echo server, and at
    ;; least the RPC, evaluation and lossless ones.
    (should (>= (length blocks) 5))
    (unwind-protect
        (progn
          (derl-call node 'erlang 'unregister '(echo))
          (dolist (block blocks)
            (let ((code (cdr block)))
              (when (and (string-match-p "elixir@myhost" code) (not elixir))
                (setq elixir (derl-test-start-elixir-node)))
              (dolist (problem
                       (derl-readme-run
                        (derl-readme--substitute
                         code
                         `(("mynode@myhost" . ,(symbol-name node))
                           ("elixir@myhost" . ,(if elixir (symbol-name elixir)
                                                 "elixir@myhost"))
                           ("/path/to/derl/lisp"
                            . ,(expand-file-name "lisp" derl-test-root))))))
                ;; The line in README.org.
                (push (cons (+ (car block) (car problem)) (cdr problem))
                      problems))))
          (should-not (nreverse problems)))
      (dolist (name (derl-readme--registered))
        (unless (memq name names-before)
          (erl-exit 'shutdown (erl-whereis name))))
      (dolist (n (list node elixir))
        (when n
          (ignore-errors (derl-disconnect n))
          (derl-test-stop-node n))))))

(ert-deftest derl-readme-example-reader ()
  "Values and printed text are read from the comments after a form."
  (should (equal (derl-readme-steps "(a)   ; => (1 2)
;; A comment.
(b \"x\")
;; => \"two
;;   lines\"
(c)
;; -| printed
;; -| twice
(d)")
                 '(((a) "(1 2)" nil 1)
                   ((b "x") "\"two\n  lines\"" nil 3)
                   ((c) nil ("printed" "twice") 6)
                   ((d) nil nil 9))))
  (should (equal (derl-readme--expected "[erl-tag erl-binary \"ab\"]")
                 (erl-binary "ab")))
  (should (equal (derl-readme-blocks "x\n  #+begin_src emacs-lisp\n  (a)\n  ;; => 1\n  #+end_src\n")
                 '((2 . "(a)\n;; => 1")))))

;;;; Distel on derl

(defun derl-readme--distel-setup (name &optional cookie)
  "README's Distel set-up, for a fresh Emacs called NAME, as forms.
Its cookie is the test nodes', or COOKIE."
  (let ((code (cdar (derl-readme-blocks (derl-readme-section "Set-up")))))
    (car (read-from-string
          (concat "("
                  (derl-readme--substitute
                   code
                   `(("/path/to/derl/lisp"
                      . ,(expand-file-name "lisp" derl-test-root))
                     ("/path/to/distel/"
                      . ,(file-name-as-directory (derl-distel-test--copy)))
                     ("emacs@myhost" . ,name)
                     ("\"my-cookie\""
                      . ,(prin1-to-string (or cookie derl-test-cookie)))))
                  "\n)")))))

(ert-deftest derl-readme-distel-setup ()
  "README's Distel set-up, as it stands, works against a -setcookie node.
It runs in a fresh Emacs with no ~/.erlang.cookie: the cookie must
come from the set-up itself.  Two Emacs in a row get the same,
fixed, node name, which \"Output across an Emacs restart\" needs.
With another cookie, *Messages* says what README says."
  (derl-distel-test-with-node node
    (let* ((name (format "emacs%s@localhost" (derl-test-random-string 6)))
           (home (derl-test-scratch-file
                  (format "home-%s" (derl-test-random-string 6))))
           (form '(progn
                    (erl-ping derl-distel-child-node)
                    (list erl-node-name
                          (derl-distel-child-wait
                           (lambda ()
                             (derl-distel-child-message-p
                              "\\(Successfully\\|Failed to\\) communicate"))))))
           (run (lambda ()
                  (derl-distel-test-run
                   node form nil nil
                   :setup (derl-readme--distel-setup name)
                   :before `(setq derl-distel-cache-directory
                                  ,(derl-distel-test--cache))
                   :home home))))
      (make-directory home t)
      (let ((first (funcall run))
            (second (funcall run)))
        (should (equal (car first) (intern name)))
        (should (equal (car second) (intern name)))
        (should (string-match-p "Successfully communicated" (cadr first)))
        (should (string-match-p "Successfully communicated" (cadr second))))
      ;; With another cookie, what README says.
      (let ((said (replace-regexp-in-string
                   "[ \t\n]+" " " (derl-readme-section "Set-up")))
            (wrong (derl-distel-test-run
                    node '(progn
                            (erl-ping derl-distel-child-node)
                            (derl-distel-child-wait
                             (lambda ()
                               (derl-distel-child-message-p
                                "connection failed: "))))
                    nil nil
                    :setup (derl-readme--distel-setup name "not-the-cookie")
                    :before `(setq derl-distel-cache-directory
                                   ,(derl-distel-test--cache))
                    :home home)))
        (should (string-match-p
                 (regexp-quote
                  (format "derl: %s connection failed: the node rejected our \
cookie (cookie mismatch)" node))
                 wrong))
        (should (string-match-p
                 (regexp-quote "says \"derl: mynode@myhost connection \
failed: the node rejected our cookie (cookie mismatch)\"")
                 said))))))

(defun derl-readme-distel-says (&rest regexps)
  "Check that README's list of Distel's own bugs matches every one of REGEXPS."
  (let ((text (replace-regexp-in-string
               "[ \t\n]+" " " (derl-readme-section "Distel's own known bugs"))))
    (dolist (regexp regexps)
      (should (string-match-p regexp text)))))

(defconst derl-readme--distel-keys
  '(let ((keys nil))
     (with-temp-buffer
       (erlang-mode)
       (dolist (key '("C-c C-d r" "C-c C-d L" "C-c C-d A" "(" "C-c C-d P"
                      "C-c C-d p" "C-c C-d h" "C-c C-d H" "C-c C-d z"
                      "C-c C-d Z" "C-c C-d d"))
         (push (cons key (key-binding (kbd key))) keys)))
     keys)
  "The commands of the keys README names, in an erlang-mode buffer.")

(ert-deftest derl-readme-distel-keys ()
  "The keys README's list of Distel's bugs names run the commands it says."
  (derl-readme-distel-says "C-c C-d r= (=erl-reload-modules"
                           "C-c C-d L= (=erl-reload-module="
                           "C-c C-d A= (=erl-show-arglist="
                           "=(= (=erl-openparen"
                           "C-c C-d P= (=fprof-analyse"
                           "C-c C-d p= (=fprof"
                           "C-c C-d h= and =H= (=erl-find-doc-under-point= and =erl-find-doc=)"
                           "C-c C-d z= and =Z= (=erl-find-sig-under-point= and =erl-find-sig=)"
                           "C-c C-d d= (=erl-fdoc-describe=")
  (derl-distel-test-with-node node
    (should (equal (sort (derl-distel-test-run node derl-readme--distel-keys)
                         (lambda (a b) (string< (car a) (car b))))
                   '(("(" . erl-openparen)
                     ("C-c C-d A" . erl-show-arglist)
                     ("C-c C-d H" . erl-find-doc)
                     ("C-c C-d L" . erl-reload-module)
                     ("C-c C-d P" . fprof-analyse)
                     ("C-c C-d Z" . erl-find-sig)
                     ("C-c C-d d" . erl-fdoc-describe)
                     ("C-c C-d h" . erl-find-doc-under-point)
                     ("C-c C-d p" . fprof)
                     ("C-c C-d r" . erl-reload-modules)
                     ("C-c C-d z" . erl-find-sig-under-point))))))

(defun derl-readme--compile-module (dir version)
  "Compile the module derl_readme_reload, whose v/0 returns VERSION, in DIR."
  (let ((source (expand-file-name "derl_readme_reload.erl" dir)))
    (with-temp-file source
      (insert (format "-module(derl_readme_reload).\n-export([v/0]).\n\
v() -> %d.\n" version)))
    (should (zerop (call-process "erlc" nil nil nil "-o" dir source)))))

(ert-deftest derl-readme-distel-reload-modules ()
  "C-c C-d r reloads nothing, and says \"load: nil\", as README says."
  (derl-readme-distel-says "reloads nothing and says \"load: nil\"")
  (derl-distel-test-with-node node
    (let ((dir (derl-test-scratch-file
                (format "reload-%s" (derl-test-random-string 6)))))
      (make-directory dir t)
      (derl-readme--compile-module dir 1)
      (derl-call node 'code 'add_patha (list dir))
      (unwind-protect
          (progn
            (should (eql (derl-call node 'derl_readme_reload 'v nil) 1))
            ;; A second later, so that the beam file is newer.
            (sleep-for 1.1)
            (derl-readme--compile-module dir 2)
            (should (equal (derl-distel-test-run
                            node '(progn
                                    (erl-reload-modules derl-distel-child-node)
                                    (derl-distel-child-wait
                                     (lambda ()
                                       (derl-distel-child-message-p
                                        "^load: ")))))
                           "load: nil"))
            (should (eql (derl-call node 'derl_readme_reload 'v nil) 1)))
        (derl-call node 'code 'purge '(derl_readme_reload))
        (derl-call node 'code 'delete '(derl_readme_reload))
        (derl-call node 'code 'purge '(derl_readme_reload))
        (derl-call node 'code 'del_path (list dir))))))

(ert-deftest derl-readme-distel-arglists ()
  "Argument lists never show, as README says: the backend answers error."
  (derl-readme-distel-says "Argument lists never show"
                           "answers =error= for every function"
                           "=AtU8= and =Dbgi=")
  (derl-distel-test-with-node node
    (should (eq (derl-call node 'distel 'get_arglists '("lists" "seq")) 'error))
    (should (eq (derl-call node 'distel 'get_arglists
                           '("derl_distel_debuggee" "add"))
                'error))
    (should (equal
             (derl-distel-test-run
              node '(progn
                      (derl-connect derl-distel-child-node)
                      (with-temp-buffer
                        (erlang-mode)
                        (insert "f() -> lists:seq")
                        (erl-show-arglist)
                        (erl-openparen)
                        (sleep-for 2)
                        (list (buffer-string)
                              (derl-distel-child-message-p "seq(")))))
             '("f() -> lists:seq(" nil)))))

(ert-deftest derl-readme-distel-fprof-analyse ()
  "C-c C-d P fails with undef, as README says; C-c C-d p works.
The node profiles in a scratch directory: fprof writes its trace
file to the current directory."
  (derl-readme-distel-says "\"Unexpected reply: \\.\\.\\. undef \\.\\.\\. fprof_analyse\""
                           "=C-c C-d p= (=fprof=, profile an expression) works")
  (derl-distel-test-with-node node
    (let* ((dir (derl-test-scratch-file "fprof"))
           (cwd (progn (make-directory dir t)
                       (aref (derl-call node 'file 'get_cwd nil) 1)))
           (result
            (unwind-protect
                (progn
                  (derl-call node 'file 'set_cwd (list dir))
           (derl-distel-test-run
            node '(progn
                    (fprof-analyse derl-distel-child-node "fprof.analysis")
                    (list (derl-distel-child-wait
                           (lambda () (derl-distel-child-message-p
                                       "^Unexpected reply: ")))
                          (progn
                            (fprof derl-distel-child-node "lists:seq(1, 10).")
                            (derl-distel-child-wait
                             (lambda () (derl-distel-child-buffer-text
                                         "*fprof*"))
                             60))))))
              (derl-call node 'file 'set_cwd (list cwd)))))
      (should (string-match-p "undef .*distel fprof_analyse" (car result)))
      (should (string-match-p "\\`Totals: " (cadr result))))))

(ert-deftest derl-readme-distel-find-doc ()
  "erl-find-doc and erl-find-sig find nothing, as README says.
What they say depends on whether OTP's HTML documentation is
installed; README gives both."
  (derl-readme-distel-says "say \"no html docs installed\""
                           "=erl-find-doc= says \"candidates: nil\""
                           "=erl-find-sig= \"No doc found\\.\"")
  (derl-distel-test-with-node node
    (let ((html (file-exists-p
                 (expand-file-name "doc/man_index.html"
                                   (derl-call node 'code 'root_dir nil))))
          (said (derl-distel-test-run
                 node '(with-temp-buffer
                         (erlang-mode)
                         (cl-letf (((symbol-function 'read-string)
                                    (lambda (&rest _) "lists:seq/2"))
                                   ((symbol-function 'browse-url)
                                    (lambda (url &rest _)
                                      (message "Browsing %s" url))))
                           (let ((said nil)
                                 (answer "^\\(No doc found\\.\\|candidates: .*\
\\|no html docs installed\\|Browsing .*\\|Error: .*\\)$"))
                             (dolist (command '(erl-find-doc erl-find-sig))
                               (with-current-buffer (messages-buffer)
                                 (let ((inhibit-read-only t)) (erase-buffer)))
                               (funcall command)
                               (push (derl-distel-child-wait
                                      (lambda ()
                                        (derl-distel-child-message-p answer))
                                      60)
                                     said))
                             (nreverse said)))))))
      (should (equal said (if html
                              '("candidates: nil" "No doc found.")
                            '("no html docs installed"
                              "no html docs installed")))))))

(provide 'derl-readme-tests)

;;; derl-readme-tests.el ends here

;;; derl-knowledge-tests.el --- completion, eldoc, docs and M-. from a node  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; derl-knowledge-mode against real Erlang and Elixir nodes: completion
;; of modules and functions (lists:spl, String.up, :lists.spl), eldoc
;; in a call (lists:seq(1, ), Enum.map), derl-describe (Enum.map/2,
;; lists:seq/2) and its buttons, M-. and M-, (lists:seq into OTP's
;; lists.erl, a module compiled by the test, with and without debug
;; info, an Elixir module, a local call, the node's copy of a source
;; this Emacs cannot see), the cache filled in the background and
;; forgotten with `derl-knowledge-forget', a node without doc chunks,
;; a node's shell buffer and a derl-mode buffer.  Last, completion and
;; M-. in a terminal Emacs under tmux.  Erlang buffers are in
;; erlang-mode where Debian's erlang-mode package is installed, set up
;; as Debian's site-start does (erlang-start's autoloads, erldoc's
;; eldoc among them).

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'derl-ert)
(require 'derl-tests)
(require 'derl-ui-tests)
(require 'derl)
(require 'derl-knowledge)

(let ((debian "/usr/share/emacs/site-lisp/erlang"))
  (when (file-directory-p debian)
    (add-to-list 'load-path debian t)))
(require 'erlang-start nil t)
(require 'erlang nil t)

;;;; Helpers

(defmacro derl-knowledge-test--with-buffer (spec &rest body)
  "SPEC is (NODE LANGUAGE TEXT): run BODY in a buffer holding TEXT.
The buffer asks NODE, in `derl-knowledge-mode'; point is at the end
of TEXT, or where it has a ¦ (which is taken out).  Erlang buffers
are in erlang-mode when there is one."
  (declare (indent 1))
  (let ((buffer (make-symbol "buffer")))
    `(let ((,buffer (generate-new-buffer "*derl-knowledge-test*")))
       (unwind-protect
           (with-current-buffer ,buffer
             (when (and (eq ,(nth 1 spec) 'erlang) (fboundp 'erlang-mode))
               (erlang-mode))
             (setq-local derl-knowledge-node ,(nth 0 spec))
             (setq-local derl-knowledge-language ,(nth 1 spec))
             (derl-knowledge-mode 1)
             (derl-knowledge-test--insert ,(nth 2 spec))
             ,@body)
         (when (buffer-live-p ,buffer)
           (with-current-buffer ,buffer (set-buffer-modified-p nil))
           (kill-buffer ,buffer))))))

(defun derl-knowledge-test--insert (text)
  "Insert TEXT; leave point where it has a ¦, or at its end."
  (let ((start (point)))
    (insert text)
    (goto-char start)
    (if (search-forward "¦" nil t)
        (delete-char -1)
      (goto-char (point-max)))))

(defun derl-knowledge-test--completions ()
  "The completions at point as (CANDIDATE . ANNOTATION), sorted."
  (let ((capf (run-hook-wrapped 'completion-at-point-functions
                                (lambda (f) (and (functionp f) (funcall f))))))
    (should capf)
    (pcase-let ((`(,start ,end ,table . ,props) capf))
      (let ((annotate (plist-get props :annotation-function)))
        (sort (mapcar (lambda (c) (cons c (and annotate (funcall annotate c))))
                      (all-completions (buffer-substring-no-properties start end)
                                       table))
              (lambda (a b) (string< (car a) (car b))))))))

(defun derl-knowledge-test--eldoc ()
  "The text eldoc shows at point, through eldoc's own strategy, or nil."
  (let ((shown nil))
    (setq-local eldoc-display-functions
                (list (lambda (docs _interactive)
                        (when docs
                          (setq shown (mapconcat #'car docs "\n"))))))
    (if (fboundp 'eldoc--invoke-strategy)
        (funcall 'eldoc--invoke-strategy t)
      (funcall 'eldoc-print-current-documentation))
    (derl-test-wait (lambda () shown) 10)
    shown))

(defun derl-knowledge-test--messages-matching (regexp)
  "How many lines of *Messages* match REGEXP."
  (with-current-buffer (messages-buffer)
    (how-many regexp (point-min) (point-max))))

(defun derl-knowledge-test--find-definition ()
  "M-. at point; return (FILE-OR-BUFFER-NAME LINE TEXT-AT-POINT)."
  (let ((this-command 'xref-find-definitions))
    (call-interactively #'xref-find-definitions))
  (list (or buffer-file-name (buffer-name))
        (line-number-at-pos)
        (buffer-substring-no-properties (point) (line-end-position))))

(defun derl-knowledge-test--go-back ()
  "M-,: back from the definition."
  (if (fboundp 'xref-go-back)
      (funcall 'xref-go-back)
    (with-no-warnings (xref-pop-marker-stack))))

(defun derl-knowledge-test--otp-source-p ()
  "Non-nil if OTP's lists.erl is installed here (Debian's erlang-src)."
  (file-expand-wildcards "/usr/lib/erlang/lib/stdlib-*/src/lists.erl"))

(defun derl-knowledge-test--compile (node file &rest options)
  "Compile the Erlang FILE on NODE with OPTIONS into its directory; load it."
  (let* ((dir (file-name-directory file))
         (result (derl-call node 'compile 'file
                            (list file (append options
                                               (list (vector 'outdir dir)
                                                     'return_errors))))))
    (should (eq (aref result 0) 'ok))
    (let ((module (aref result 1)))
      (derl-call node 'code 'purge (list module))
      (should (equal (derl-call node 'code 'load_abs
                                (list (concat dir (symbol-name module))))
                     (vector 'module module)))
      module)))

(defmacro derl-knowledge-test--with-elixir (var &rest body)
  "Start an Elixir node as VAR, run BODY, stop the node."
  (declare (indent 1))
  `(progn
     (skip-unless (executable-find "elixir"))
     (derl-test-configure)
     (let ((,var (derl-test-start-elixir-node)))
       (unwind-protect (progn ,@body)
         (ignore-errors (derl-disconnect ,var))
         (derl-test-stop-node ,var)))))

(dolist (name '(derl-knowledge-elixir-completion derl-knowledge-elixir-eldoc
                derl-knowledge-elixir-describe derl-knowledge-elixir-xref))
  (add-to-list 'derl-ert-must-run
               (cons name (lambda () (executable-find "elixir")))))

(add-to-list 'derl-ert-must-run
             (cons 'derl-knowledge-xref-otp #'derl-knowledge-test--otp-source-p))

;;;; Completion

(ert-deftest derl-knowledge-erlang-completion ()
  "lists:spl offers split/2 and splitwith/2; lis offers lists; a typed lists:split."
  (derl-test-with-node (node)
    (derl-knowledge-test--with-buffer (node 'erlang "f() -> lists:spl")
      (let ((completions (derl-knowledge-test--completions)))
        (should (equal (mapcar #'car completions) '("split" "splitwith")))
        (should (string-prefix-p "/2" (cdr (assoc "split" completions))))
        (should (string-prefix-p "/2" (cdr (assoc "splitwith" completions)))))
      (erase-buffer)
      (insert "f() -> lis")
      (should (member "lists" (mapcar #'car (derl-knowledge-test--completions))))
      ;; The command, as C-M-i runs it (erlang-mode's own is its tags').
      (should (eq (key-binding (kbd "C-M-i")) 'completion-at-point))
      (should (eq (key-binding (kbd "C-c C-d d")) 'derl-describe))
      (erase-buffer)
      (insert "f() -> lists:splitw")
      (completion-at-point)
      (should (equal (buffer-string) "f() -> lists:splitwith"))
      ;; Nothing in a string or a comment.
      (erase-buffer)
      (insert "f() -> \"lists:spl")
      (should-not (derl-complete-at-point)))))

(ert-deftest derl-knowledge-erlang-completion-annotations ()
  "Annotations carry each arity and the documentation's first sentence."
  (derl-test-with-node (node)
    (derl-knowledge-test--with-buffer (node 'erlang "f() -> lists:se")
      (let* ((completions (derl-knowledge-test--completions))
             (seq (cdr (assoc "seq" completions)))
             (info (derl-node-info-get node '(functions . "lists"))))
        (should (string-prefix-p "/2,3" seq))
        (if (derl-node-info-module-docs info)
            (should (string-match-p "Returns a sequence of integers" seq))
          (should (equal seq "/2,3")))))))

(ert-deftest derl-knowledge-completion-in-background ()
  "Not waiting, completion answers at once and the node's answer fills it later."
  (derl-test-with-node (node)
    (derl-knowledge-test--with-buffer (node 'erlang "f() -> lists:spl")
      (let ((derl-knowledge-wait 0))
        (let ((capf (derl-complete-at-point)))
          ;; Asked, not answered yet: no candidates, others may complete.
          (should (eq (plist-get (nthcdr 3 capf) :exclusive) 'no))
          (derl-test-wait (lambda () (derl-node-info-get
                                      node '(functions . "lists"))))
          (should (member "split" (all-completions "spl" (nth 2 capf)))))))))

(ert-deftest derl-knowledge-forget ()
  "A module recompiled with a new function offers it once forgotten."
  (derl-test-with-node (node)
    (let ((file (derl-test-scratch-file "derl_kn_forget.erl")))
      (with-temp-file file
        (insert "-module(derl_kn_forget).\n-export([alpha/0]).\nalpha() -> 1.\n"))
      (derl-knowledge-test--compile node file)
      (derl-knowledge-test--with-buffer (node 'erlang "f() -> derl_kn_forget:")
        (should (equal (mapcar #'car (derl-knowledge-test--completions))
                       '("alpha" "module_info")))
        (with-temp-file file
          (insert "-module(derl_kn_forget).\n-export([alpha/0, beta/1]).\n"
                  "alpha() -> 1.\nbeta(X) -> X.\n"))
        (derl-knowledge-test--compile node file)
        ;; Still what the node said before.
        (should (equal (mapcar #'car (derl-knowledge-test--completions))
                       '("alpha" "module_info")))
        (derl-knowledge-forget node 'derl_kn_forget)
        (should (equal (mapcar #'car (derl-knowledge-test--completions))
                       '("alpha" "beta" "module_info")))))))

(ert-deftest derl-knowledge-forget-while-asking ()
  "An answer to a question asked before a forget reaches who waits, not the cache."
  (derl-test-with-node (node)
    (derl-knowledge-forget node)
    ;; The forget comes while the question is out for certain: a timer
    ;; might only run once the answer is in, when the wait has no need
    ;; to run timers (the reply read at once, as on Emacs 30 here).
    (let ((info 'none))
      (derl-node-info-get node '(functions . "lists")
                          (lambda (answer) (setq info answer)))
      (derl-knowledge-forget node)
      (derl--wait (lambda () (not (eq info 'none))) 10 "for the answer")
      (should (derl-node-info-lookup info "seq")))
    (let ((table (gethash node derl-node-info--nodes)))
      (should-not (and table (gethash '(functions . "lists") table))))))

(ert-deftest derl-knowledge-elixir-completion ()
  "String.up offers upcase; Str offers String; :lists.spl and :lis complete too."
  (derl-knowledge-test--with-elixir node
    (derl-knowledge-test--with-buffer (node 'elixir "x = String.up")
      (let ((completions (derl-knowledge-test--completions)))
        (should (equal (mapcar #'car completions) '("upcase")))
        (should (string-match-p "\\`/1,2  Converts all characters"
                                (cdr (car completions)))))
      (erase-buffer)
      (insert "x = Str")
      (should (member "String" (mapcar #'car (derl-knowledge-test--completions))))
      (erase-buffer)
      (insert "x = :lists.spl")
      (should (equal (mapcar #'car (derl-knowledge-test--completions))
                     '("split" "splitwith")))
      (erase-buffer)
      (insert "x = :lis")
      (should (member "lists" (mapcar #'car (derl-knowledge-test--completions))))
      ;; Macros are functions to complete, marked so.
      (erase-buffer)
      (insert "Kernel.unles")
      (should (string-match-p "(macro)" (cdr (assoc "unless"
                                                   (derl-knowledge-test--completions))))))))

;;;; Eldoc

(ert-deftest derl-knowledge-eldoc-spec ()
  "In lists:seq(1, eldoc shows seq/2's spec, through eldoc's own strategy."
  (derl-test-with-node (node)
    (derl-knowledge-test--with-buffer (node 'erlang "f() -> lists:seq(1, ¦)")
      (let ((shown (derl-knowledge-test--eldoc)))
        (should (string-match-p
                 "seq(From, To) -> Seq when From :: integer(), To :: integer()"
                 shown))))
    ;; The third argument: seq/3's spec.
    (derl-knowledge-test--with-buffer (node 'erlang "f() -> lists:seq(1, 2, ¦)")
      (should (string-match-p "seq(From, To, Incr) -> Seq"
                              (derl-knowledge-test--eldoc))))
    ;; A local call to an auto-imported function.
    (derl-knowledge-test--with-buffer (node 'erlang "f(L) -> length(¦L)")
      (should (string-match-p "length(List) -> non_neg_integer()"
                              (derl-knowledge-test--eldoc))))))

(ert-deftest derl-knowledge-eldoc-answers-later ()
  "Eldoc's function returns at once; its callback gets the text when it comes."
  (derl-test-with-node (node)
    (derl-knowledge-test--with-buffer (node 'erlang "f() -> lists:seq(¦)")
      (let* ((got nil)
             (returned (derl-doc-eldoc (lambda (&rest args) (setq got args)))))
        (should (eq returned t))
        (should-not got)
        (derl-test-wait (lambda () got))
        (should (string-match-p "seq(From, To)" (car got)))
        (should (equal (plist-get (cdr got) :thing) "lists:seq"))))))

(ert-deftest derl-knowledge-elixir-eldoc ()
  "In Enum.map(list, and after a pipe, eldoc shows map's signature and spec."
  (derl-knowledge-test--with-elixir node
    (derl-knowledge-test--with-buffer (node 'elixir "Enum.map(list, ¦)")
      (let ((shown (derl-knowledge-test--eldoc)))
        (should (string-match-p "map(enumerable, fun)" shown))
        (should (string-match-p "@spec map(t(), (element() -> any())) :: list()"
                                shown))
        (should (string-match-p "Returns a list where each element" shown))))
    (derl-knowledge-test--with-buffer (node 'elixir "[1] |> String.pad_leading(3, ¦)")
      (should (string-match-p "pad_leading(string, count, padding" 
                              (derl-knowledge-test--eldoc))))))

;;;; Describe

(ert-deftest derl-knowledge-elixir-describe ()
  "derl-describe on Enum.map/2 shows its documentation and spec; buttons follow."
  (derl-knowledge-test--with-elixir node
    (derl-knowledge-test--with-buffer (node 'elixir "Enum.map(list, f)")
      (derl-describe "Enum.map/2")
      (with-current-buffer (help-buffer)
        (let ((text (buffer-string)))
          (should (string-match-p "Enum.map(enumerable, fun)" text))
          (should (string-match-p "@spec map(t(), (element() -> any())) :: list()"
                                  text))
          (should (string-match-p "Returns a list where each element is the \
result of invoking\nfun on each corresponding element of enumerable" text))
          ;; Markdown as plain text: no backquotes or heading marks.
          (should-not (string-match-p "`\\|^## " text))))
      ;; The module, and a reference in its documentation followed.
      (derl-describe "Enum")
      (with-current-buffer (help-buffer)
        (goto-char (point-min))
        (should (search-forward "Enum.map/2" nil t))
        (let ((button (button-at (match-beginning 0))))
          (should button)
          (push-button (button-start button)))
        (should (string-match-p "\\`Enum.map/2 on " (buffer-string)))
        (should (string-match-p "Returns a list where each element"
                                (buffer-string)))))))

(ert-deftest derl-knowledge-erlang-describe ()
  "derl-describe on lists:seq/2: its documentation, or its spec without docs."
  (derl-test-with-node (node)
    (derl-knowledge-test--with-buffer (node 'erlang "f() -> lists:seq(1, 3)")
      (goto-char (point-min))
      (search-forward "se")
      ;; The reference at point is the default.
      (should (equal (derl-doc--reference-default) "lists:seq/2"))
      (derl-describe "lists:seq/2")
      (let ((docs (derl-node-info-module-docs
                   (derl-node-info-fetch node '(functions . "lists")))))
        (with-current-buffer (help-buffer)
          (let ((text (buffer-string)))
            (should (string-match-p "\\`lists:seq/2 on " text))
            (should (string-match-p "seq(From, To) -> Seq" text))
            (if docs
                ;; A release whose chunks leave the function out (as
                ;; Debian 13's OTP 27 without erlang-doc) says so.
                (should (string-match-p
                         "Returns a sequence of integers\\|(not documented)"
                         text))
              (should (string-match-p "has no documentation" text)))))))))

;;;; M-. and M-,

(ert-deftest derl-knowledge-xref-otp ()
  "M-. on lists:seq opens lists.erl at seq(; M-, comes back."
  (skip-unless (derl-knowledge-test--otp-source-p))
  (derl-test-with-node (node)
    (derl-knowledge-test--with-buffer (node 'erlang "f() -> lists:se¦q(1, 3).")
      (let ((here (current-buffer)) (point (point)))
        (pcase-let ((`(,file ,_line ,text) (derl-knowledge-test--find-definition)))
          (should (string-match-p "/stdlib-[0-9.]+/src/lists\\.erl\\'" file))
          (should (string-prefix-p "seq(" text))
          (kill-buffer-if-not-modified (current-buffer))
          (derl-knowledge-test--go-back)
          (should (eq (current-buffer) here))
          (should (= (point) point)))))
    ;; A module alone, and a module given in the minibuffer's way.
    (derl-knowledge-test--with-buffer (node 'erlang "f() -> lis¦ts:seq(1, 3).")
      (pcase-let ((`(,file ,line ,_) (derl-knowledge-test--find-definition)))
        (should (string-match-p "/lists\\.erl\\'" file))
        (should (string-prefix-p "-module(lists)"
                                 (buffer-substring (line-beginning-position)
                                                   (line-end-position))))
        (ignore line)
        (kill-buffer-if-not-modified (current-buffer))))))

(ert-deftest derl-knowledge-xref-compiled ()
  "M-. on functions of modules compiled by the test, at their lines.
With debug info the line comes from the node; without, from a search
of the file, said once; a local call goes to the buffer's module."
  (derl-test-with-node (node)
    (let ((with (derl-test-scratch-file "derl_kn_with.erl"))
          (without (derl-test-scratch-file "derl_kn_without.erl")))
      (dolist (spec (list (cons with "derl_kn_with") (cons without "derl_kn_without")))
        (with-temp-file (car spec)
          (insert "-module(" (cdr spec) ").\n"
                  "-export([one/0, two/1]).\n"
                  "\n"
                  "one() ->\n"
                  "    two(1).\n"
                  "\n"
                  "%% two/1 doubles.\n"
                  "two(X) ->\n"
                  "    helper(X) * 2.\n"
                  "\n"
                  "helper(X) -> X.\n")))
      (derl-knowledge-test--compile node with 'debug_info)
      (derl-knowledge-test--compile node without)
      (derl-knowledge-test--with-buffer
          (node 'erlang "f() -> derl_kn_with:tw¦o(3).")
        (pcase-let ((`(,file ,line ,text) (derl-knowledge-test--find-definition)))
          (should (equal file with))
          (should (= line 8))
          (should (string-prefix-p "two(X)" text))
          ;; A local call, in the module's own file.
          (setq-local derl-knowledge-node node)
          (derl-knowledge-mode 1)
          (goto-char (point-min))
          (search-forward "helper(X) * 2")
          (goto-char (match-beginning 0))
          (pcase-let ((`(,file2 ,line2 ,_) (derl-knowledge-test--find-definition)))
            (should (equal file2 with))
            (should (= line2 11)))
          (kill-buffer-if-not-modified (current-buffer))))
      (let ((said (derl-knowledge-test--messages-matching "no debug info")))
        (derl-knowledge-test--with-buffer
            (node 'erlang "f() -> derl_kn_without:tw¦o(3).")
          (pcase-let ((`(,file ,line ,_) (derl-knowledge-test--find-definition)))
            (should (equal file without))
            (should (= line 8))
            (kill-buffer-if-not-modified (current-buffer))))
        (derl-knowledge-test--with-buffer
            (node 'erlang "f() -> derl_kn_without:o¦ne().")
          (pcase-let ((`(,_ ,line ,_) (derl-knowledge-test--find-definition)))
            (should (= line 4))
            (kill-buffer-if-not-modified (current-buffer))))
        ;; Said once, not at each M-.
        (should (= (derl-knowledge-test--messages-matching "no debug info")
                   (1+ said)))))))

(ert-deftest derl-knowledge-elixir-xref ()
  "M-. on a function of an Elixir module compiled by the test, at its line.
And on Enum.map, whose source Debian does not install, it says so."
  (derl-knowledge-test--with-elixir node
    (let* ((dir (file-name-as-directory (derl-test-scratch-file "kn_ex")))
           (file (concat dir "kn_foo.ex")))
      (make-directory dir t)
      (with-temp-file file
        (insert "defmodule KnFoo do\n"
                "  @doc \"Adds one.\"\n"
                "  @spec add_one(integer()) :: integer()\n"
                "  def add_one(x) do\n"
                "    x + 1\n"
                "  end\n"
                "\n"
                "  def twice(x), do: helper(x) * 2\n"
                "\n"
                "  defp helper(x), do: x\n"
                "end\n"))
      (should (eq (aref (derl-call node 'Elixir.Kernel.ParallelCompiler
                                   'compile_to_path
                                   (list (list (derl-node-info--binary file))
                                         (derl-node-info--binary dir)))
                        0)
                  'ok))
      (derl-knowledge-test--with-buffer (node 'elixir "KnFoo.twi¦ce(2)")
        (pcase-let ((`(,found ,line ,text) (derl-knowledge-test--find-definition)))
          (should (equal found file))
          (should (= line 8))
          (should (string-match-p "def twice" text))
          (kill-buffer-if-not-modified (current-buffer))))
      (derl-knowledge-test--with-buffer (node 'elixir "KnFoo.add_one(1)")
        (should (string-match-p "@spec add_one(integer()) :: integer()"
                                (progn (goto-char 8) (derl-knowledge-test--eldoc)))))
      (unless (file-expand-wildcards "/usr/lib/elixir/lib/elixir/lib/enum.ex")
        (derl-knowledge-test--with-buffer (node 'elixir "Enum.ma¦p([], f)")
          (let ((err (should-error (derl-knowledge-test--find-definition)
                                   :type 'user-error)))
            (should (string-match-p "has no source of Enum" (cadr err)))))))))

(ert-deftest derl-knowledge-xref-node-copy ()
  "A source this Emacs does not have as the node has it: the node's copy.
Its major mode comes from its name, not from its text.  Without
`derl-knowledge-fetch-sources', M-. says where it is instead.  A file
that is no Erlang or Elixir source is not opened."
  (derl-test-with-node (node)
    (let* ((file (derl-test-scratch-file "derl_kn_remote.erl"))
           (text (concat "%% -*- mode: text -*-\n-module(derl_kn_remote).\n"
                         "-export([f/0]).\n\nf() -> ok.\n")))
      (with-temp-file file (insert text))
      ;; The node's file, said to be larger than this Emacs's.
      (let ((details (derl-node-info--make-details
                      :name "derl_kn_remote" :exists t :debug-info t
                      :lines '(("f" 0 4))
                      :source (cons file (1+ (length text))))))
        (let ((where (derl-xref--where node details)))
          (should (bufferp where))
          (with-current-buffer where
            (should (equal (buffer-string) text))
            (should buffer-read-only)
            (should (string-match-p "copy of" header-line-format))
            (should (eq derl-knowledge-node node))
            (should (eq major-mode (if (fboundp 'erlang-mode) 'erlang-mode
                                     'fundamental-mode))))
          (kill-buffer where))
        (let ((derl-knowledge-fetch-sources nil))
          (let ((err (should-error (derl-xref--where node details)
                                   :type 'user-error)))
            (should (string-match-p "machine, which is not this one"
                                    (cadr err))))))
      (let* ((other (derl-test-scratch-file "derl_kn_notes.txt"))
             (details (progn
                        (with-temp-file other (insert "notes\n"))
                        (derl-node-info--make-details
                         :name "derl_kn_remote" :exists t
                         :source (cons other 6)))))
        (let ((err (should-error (derl-xref--where node details)
                                 :type 'user-error)))
          (should (string-match-p "not an Erlang or Elixir source, not opened"
                                  (cadr err))))))))

;;;; A node without doc chunks

(defun derl-knowledge-test--root-without-docs ()
  "A directory with an `erl' running OTP without its doc chunks.
Return the directory, for `exec-path'."
  (let* ((dir (derl-test-scratch-file "nodocs"))
         (root (expand-file-name "root" dir))
         (erts (car (file-expand-wildcards "/usr/lib/erlang/erts-*"))))
    (unless (file-directory-p dir)
      (make-directory (expand-file-name "lib" root) t)
      (dolist (entry (directory-files "/usr/lib/erlang" t "\\`[^.]"))
        (unless (equal (file-name-nondirectory entry) "lib")
          (make-symbolic-link entry (expand-file-name
                                     (file-name-nondirectory entry) root))))
      (dolist (app (directory-files "/usr/lib/erlang/lib" t "\\`[^.]"))
        (let ((to (expand-file-name (file-name-nondirectory app)
                                    (expand-file-name "lib" root))))
          (make-directory to)
          (dolist (part (directory-files app t "\\`[^.]"))
            (unless (equal (file-name-nondirectory part) "doc")
              (make-symbolic-link part (expand-file-name
                                        (file-name-nondirectory part) to))))))
      (with-temp-file (expand-file-name "erl" dir)
        (insert "#!/bin/sh\n"
                "ROOTDIR=" (shell-quote-argument root) "\n"
                "BINDIR=" (shell-quote-argument
                           (expand-file-name "bin" erts)) "\n"
                "EMU=beam\nPROGNAME=erl\n"
                "export ROOTDIR BINDIR EMU PROGNAME\n"
                "exec \"$BINDIR/erlexec\" \"$@\"\n"))
      (set-file-modes (expand-file-name "erl" dir) #o755))
    dir))

(ert-deftest derl-knowledge-no-doc-chunks ()
  "On a node without doc chunks, completion and M-. work; that is said once."
  (skip-unless (file-directory-p "/usr/lib/erlang/lib"))
  (let* ((dir (derl-knowledge-test--root-without-docs))
         (exec-path (cons dir exec-path)))
    (derl-test-with-node (node)
      (should (equal (derl-call node 'code 'root_dir nil)
                     (expand-file-name "root" dir)))
      (let ((said (derl-knowledge-test--messages-matching
                   "has no documentation for")))
        (derl-knowledge-test--with-buffer (node 'erlang "f() -> lists:spl")
          (let ((completions (derl-knowledge-test--completions)))
            (should (equal (mapcar #'car completions) '("split" "splitwith")))
            ;; Arities; OTP 27 and later keep docs inside the beams
            ;; themselves, which the copy without doc directories keeps.
            (should (string-prefix-p "/2" (cdr (assoc "split" completions)))))
          (erase-buffer)
          (insert "f() -> lists:seq(1, ")
          (should (string-match-p "seq(From, To) -> Seq"
                                  (derl-knowledge-test--eldoc)))
          (erase-buffer)
          (insert "f() -> lists:spl")
          (derl-knowledge-test--completions)
          (when (derl-knowledge-test--otp-source-p)
            (erase-buffer)
            (insert "f() -> lists:seq(1, 3).")
            (goto-char 15)
            (pcase-let ((`(,file ,_ ,text) (derl-knowledge-test--find-definition)))
              (should (string-match-p "/lists\\.erl\\'" file))
              (should (string-prefix-p "seq(" text))
              (kill-buffer-if-not-modified (current-buffer)))))
        ;; Said once, where the node has none (not OTP 27's, whose
        ;; beams carry theirs): never once a keystroke.
        (should (<= (derl-knowledge-test--messages-matching
                     "has no documentation for")
                    (1+ said)))))))

;;;; The node's shell and derl-mode

(ert-deftest derl-knowledge-shell-buffer ()
  "A node's shell buffer completes from its node; C-c C-d d describes.
C-c C-d C-d sends end of file there."
  (derl-test-with-node (node)
    (let ((buffer (derl-shell node)))
      (unwind-protect
          (with-current-buffer buffer
            (derl-test-wait (lambda () (string-match-p ")1> " (buffer-string))))
            (should derl-knowledge-mode)
            (should (eq (lookup-key (current-active-maps) (kbd "C-c C-d d"))
                        'derl-describe))
            (should (eq (key-binding (kbd "C-c C-d C-d")) 'derl-shell-eof))
            (goto-char (point-max))
            (insert "lists:spl")
            (should (equal (mapcar #'car (derl-knowledge-test--completions))
                           '("split" "splitwith"))))
        (let ((kill-buffer-query-functions nil))
          (kill-buffer buffer))))))

(ert-deftest derl-knowledge-derl-mode-buffer ()
  "derl-mode brings derl-knowledge-mode, which asks the node of the project.
None is asked before the project has one; turning derl-mode off turns
derl-knowledge-mode off."
  (require 'derl-mode)
  (derl-test-with-node (node)
    (let* ((dir (file-name-as-directory (derl-test-scratch-file
                                         (format "kn-project-%s"
                                                 (derl-test-random-string 6)))))
           (buffer (progn (make-directory dir t)
                          (find-file-noselect (concat dir "kn_mode.erl")))))
      (unwind-protect
          (with-current-buffer buffer
            (when (fboundp 'erlang-mode) (erlang-mode))
            (derl-mode 1)
            (should derl-knowledge-mode)
            (insert "f() -> lists:spl")
            ;; No node yet: nothing, and nothing asked of the user.
            (should-not (derl-knowledge-buffer-node))
            (should-not (derl-complete-at-point))
            (derl-mode-set-node node)
            (should (eq (derl-knowledge-buffer-node) node))
            (should (equal (mapcar #'car (derl-knowledge-test--completions))
                           '("split" "splitwith")))
            (derl-mode -1)
            (should-not derl-knowledge-mode)
            (should-not (memq #'derl-complete-at-point
                              completion-at-point-functions)))
        (with-current-buffer buffer (set-buffer-modified-p nil))
        (kill-buffer buffer)))))

(ert-deftest derl-knowledge-xref-derl-mode-compiled ()
  "M-. on a function of a module derl-mode compiled from an unsaved buffer.
It goes to that buffer, at the function, though no file has its text."
  (require 'derl-mode)
  (derl-test-with-node (node)
    (let* ((dir (file-name-as-directory
                 (derl-test-scratch-file (format "kn-unsaved-%s"
                                                 (derl-test-random-string 6)))))
           (file (concat dir "kn_unsaved.erl"))
           (source (progn (make-directory dir t) (find-file-noselect file))))
      (unwind-protect
          (progn
            (with-current-buffer source
              (when (fboundp 'erlang-mode) (erlang-mode))
              (derl-mode 1)
              (derl-mode-set-node node)
              (insert "-module(kn_unsaved).\n-export([one/0, two/1]).\n\n"
                      "one() -> two(1).\n\n%% Two.\ntwo(X) -> X * 2.\n")
              (should (eq (car (derl-mode-compile-buffer)) 'ok)))
            (should-not (file-exists-p file))
            (derl-knowledge-test--with-buffer
                (node 'erlang "f() -> kn_unsaved:tw¦o(3).")
              (pcase-let ((`(,_ ,line ,text) (derl-knowledge-test--find-definition)))
                (should (eq (current-buffer) source))
                (should (= line 7))
                (should (string-prefix-p "two(X)" text)))))
        (with-current-buffer source (set-buffer-modified-p nil))
        (kill-buffer source)))))

;; Compiling through derl-mode refreshes what completion knows.
(ert-deftest derl-knowledge-recompile-refreshes ()
  "A function added and compiled with C-c C-k is offered at once."
  (require 'derl-mode)
  (derl-test-with-node (node)
    (let* ((dir (file-name-as-directory
                 (derl-test-scratch-file (format "kn-recompile-%s"
                                                 (derl-test-random-string 6)))))
           (file (concat dir "kn_again.erl"))
           (source (progn (make-directory dir t) (find-file-noselect file))))
      (unwind-protect
          (progn
            (with-current-buffer source
              (when (fboundp 'erlang-mode) (erlang-mode))
              (derl-mode 1)
              (derl-mode-set-node node)
              (insert "-module(kn_again).\n-export([first/0]).\n"
                      "first() -> 1.\n")
              (should (eq (car (derl-mode-compile-buffer)) 'ok)))
            (derl-knowledge-test--with-buffer (node 'erlang "f() -> kn_again:")
              (should (equal (mapcar #'car (derl-knowledge-test--completions))
                             '("first" "module_info"))))
            (with-current-buffer source
              (erase-buffer)
              (insert "-module(kn_again).\n-export([first/0, fresh/0]).\n"
                      "first() -> 1.\nfresh() -> 2.\n")
              (should (eq (car (derl-mode-compile-buffer)) 'ok)))
            (derl-knowledge-test--with-buffer (node 'erlang "f() -> kn_again:")
              (should (equal (mapcar #'car (derl-knowledge-test--completions))
                             '("first" "fresh" "module_info")))))
        (with-current-buffer source (set-buffer-modified-p nil))
        (kill-buffer source)))))

;;;; In a terminal

(add-to-list 'derl-ert-must-run '(derl-knowledge-terminal . always))

(ert-deftest derl-knowledge-terminal ()
  "In `emacs -nw': the shell completes lists:spl with C-M-i; M-. and M-, work."
  (skip-unless (executable-find "tmux"))
  (derl-test-with-node (node)
    (let ((socket (format "derl-kn-%s" (derl-test-random-string 6))))
      (unwind-protect
          (cl-flet ((keys (&rest keys)
                      (apply #'derl-ui--tmux socket "send-keys" "-t" "derl"
                             keys))
                    (shows (regexp) (derl-ui--screen-shows socket regexp)))
            (derl-ui--start-terminal socket '((require 'derl)))
            (shows "scratch")
            (keys "M-x" "derl-shell" "Enter")
            (shows "Shell on node")
            (keys (symbol-name node) "Enter")
            (should (string-match-p ")1>" (shows ")1>")))
            ;; The first C-M-i completes as far as it can, the second
            ;; lists what is left.
            (keys "lists:spl" "C-M-i")
            (shows "lists:split")
            (keys "C-M-i")
            (let ((screen (shows "splitwith")))
              (should (string-match-p "^split */2 " screen))
              (should (string-match-p "^splitwith */2 " screen)))
            (keys "C-a" "C-k" "lists:seq(1, 3)" "C-a" "M-f" "M-f" "M-.")
            (when (derl-knowledge-test--otp-source-p)
              (should (string-match-p "^seq(First, Last)"
                                      (shows "^seq(First, Last)")))
              (should (string-match-p "lists\\.erl" (shows "lists\\.erl")))
              (keys "M-,")
              (should (string-match-p "derl-shell" (shows "\\*derl-shell")))))
        (derl-ui--tmux socket "kill-server")))))

(provide 'derl-knowledge-tests)

;;; derl-knowledge-tests.el ends here

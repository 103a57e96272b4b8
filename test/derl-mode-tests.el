;;; derl-mode-tests.el --- evaluating and compiling from source buffers  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; derl-mode against real Erlang and Elixir nodes: the expression
;; before point; bindings shared between a source buffer and the
;; node's shell, both ways; compiling a buffer's text on the node, with
;; an error and a warning at their lines, then loading it; an Elixir
;; module and IEx; C-c C-z and the node remembered per project.
;; Erlang buffers are in erlang-mode where Debian's erlang-mode
;; package is installed, in fundamental-mode otherwise.

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'derl-ert)
(require 'derl-tests)
(require 'derl-ui-tests)
(require 'derl)
(require 'derl-mode)

(let ((debian "/usr/share/emacs/site-lisp/erlang"))
  (when (file-directory-p debian)
    (add-to-list 'load-path debian t)))
(require 'erlang nil t)

;;;; Helpers

(defun derl-mode-test--buffer (file text node)
  "A buffer visiting FILE (not written) holding TEXT, in derl-mode for NODE.
Point is at the end.  An Erlang FILE's buffer is in erlang-mode when
there is one."
  (let ((buffer (find-file-noselect file)))
    (with-current-buffer buffer
      (when (and (string-match-p "\\.[eh]rl\\'" file) (fboundp 'erlang-mode))
        (erlang-mode))
      (derl-mode 1)
      (erase-buffer)
      (insert text)
      (when node
        (derl-mode-set-node node)))
    buffer))

(defun derl-mode-test--kill (&rest buffers)
  "Kill BUFFERS without asking."
  (dolist (buffer buffers)
    (when (buffer-live-p buffer)
      (with-current-buffer buffer
        (set-buffer-modified-p nil))
      (let ((kill-buffer-query-functions nil))
        (kill-buffer buffer)))))

(defun derl-mode-test--shell-eval (session text)
  "Feed TEXT to SESSION's shell and return what it printed."
  (let ((out nil))
    (derl-shell-eval session text (lambda (printed) (setq out printed)))
    (derl-test-wait (lambda () out))
    out))

(defun derl-mode-test--overlay-value (buffer)
  "The value shown after the expression in BUFFER, once there is one."
  (derl-test-wait (lambda ()
                    (with-current-buffer buffer
                      (and (overlayp derl-mode--overlay)
                           (overlay-get derl-mode--overlay
                                        'derl-mode-result)))))
  (with-current-buffer buffer
    (prog1 (overlay-get derl-mode--overlay 'derl-mode-result)
      (derl-mode--remove-overlay))))

(defun derl-mode-test--eval-before-point (buffer)
  "Run \\[derl-mode-eval-last-expression] at the end of BUFFER; return the value."
  (with-current-buffer buffer
    (goto-char (point-max))
    (call-interactively #'derl-mode-eval-last-expression))
  (derl-mode-test--overlay-value buffer))

(defun derl-mode-test--eval-region (buffer start-regexp)
  "Evaluate BUFFER's text from START-REGEXP to its end as a region."
  (with-current-buffer buffer
    (goto-char (point-min))
    (re-search-forward start-regexp)
    (derl-mode-eval-region (match-beginning 0) (point-max)))
  (derl-mode-test--overlay-value buffer))

(defun derl-mode-test--lines (diagnostics)
  "DIAGNOSTICS as (SEVERITY LINE) pairs, in order."
  (mapcar (lambda (d) (list (nth 0 d) (nth 2 d))) diagnostics))

;;;; The expression before point

(defun derl-mode-test--before-point (kind text)
  "The expression before ¦ in TEXT (or its end), read as language KIND."
  (with-temp-buffer
    (insert text)
    (cl-letf (((symbol-function 'derl-mode--kind) (lambda () kind)))
      (goto-char (point-min))
      (if (search-forward "¦" nil t)
          (delete-char -1)
        (goto-char (point-max)))
      (let ((bounds (derl-mode--expression-bounds)))
        (and bounds (buffer-substring (car bounds) (cdr bounds)))))))

(ert-deftest derl-mode-expression-before-point ()
  "Where the expression before point starts, in Erlang and Elixir."
  (dolist (case
           '((erlang "X = lists:seq(1, 10)" "X = lists:seq(1, 10)")
             (erlang "f() ->\n    lists:seq(1, 3)¦,\n    ok." "lists:seq(1, 3)")
             (erlang "[1, 2, foo(3)¦]" "foo(3)")
             (erlang "X = case Y of\n  1 -> a;\n  _ -> b\nend"
                     "X = case Y of\n  1 -> a;\n  _ -> b\nend")
             (erlang "f() -> ok.\n\ng(1)" "g(1)")
             (erlang "g(1). % a comment" "g(1)")
             (erlang "X = <<1, 2>>" "X = <<1, 2>>")
             (erlang "F = fun(X) -> X + 1 end" "F = fun(X) -> X + 1 end")
             (erlang "F = fun lists:sum/1" "F = fun lists:sum/1")
             (erlang "R#rec.field" "R#rec.field")
             (erlang "Y = 1,\nio:format(\"a,b ~p~n\", [Y]) % comment\n"
                     "io:format(\"a,b ~p~n\", [Y])")
             (erlang "case X of\n  1 -> g(1)¦" "g(1)")
             (erlang "#{a => g(1)¦}" "g(1)")
             (erlang "A = 2.5" "A = 2.5")
             (erlang "f(X) when X > 0¦ ->" "X > 0")
             (erlang "" nil)
             (elixir "x = Enum.map([1, 2], fn x -> x * 2 end)"
                     "x = Enum.map([1, 2], fn x -> x * 2 end)")
             (elixir "defmodule Foo do\n  def x, do: 1\nend"
                     "defmodule Foo do\n  def x, do: 1\nend")
             (elixir "a = 1\nb = 2" "b = 2")
             (elixir "list\n|> Enum.map(&(&1 + 1))\n|> Enum.sum()"
                     "list\n|> Enum.map(&(&1 + 1))\n|> Enum.sum()")
             (elixir "def foo do\n  bar(1)¦\nend" "bar(1)")
             (elixir "if x do\n  1\nelse\n  2\nend" "if x do\n  1\nelse\n  2\nend")
             (elixir "x = %{a: 1} # comment" "x = %{a: 1}")
             (elixir "x =\n  1 +\n  2" "x =\n  1 +\n  2")))
    (should (equal (cons case (derl-mode-test--before-point (nth 0 case)
                                                            (nth 1 case)))
                   (cons case (nth 2 case))))))

(ert-deftest derl-mode-input-for-the-shell ()
  "Erlang gets a full stop when it has none; Elixir is sent as it is."
  (should (equal (derl-mode--input 'erlang " X + 1 \n") "X + 1."))
  (should (equal (derl-mode--input 'erlang "X = 1.\nX + 1.") "X = 1.\nX + 1."))
  (should (equal (derl-mode--input 'elixir "x + 1\n") "x + 1")))

;;;; Erlang

(ert-deftest derl-mode-erlang-shares-bindings ()
  "A binding made in the shell is the buffer's, and the other way round."
  (derl-test-with-node (node)
    (let* ((dir (derl-test-scratch-file "erlang-bindings/"))
           (source (progn (make-directory dir t)
                          (derl-mode-test--buffer
                           (expand-file-name "scratch.erl" dir) "" node)))
           (session (derl-shell-session node 'erlang))
           (shell (derl-shell--session-buffer session)))
      (unwind-protect
          (progn
            ;; A new shell: its banner and prompts are no part of it.
            (should (equal (derl-mode-test--shell-eval session "X = 21.")
                           "21\n"))
            ;; C-x C-e after X * 2, no full stop: 42, in the same shell.
            (with-current-buffer source
              (should (eq (key-binding (kbd "C-x C-e"))
                          #'derl-mode-eval-last-expression))
              (insert "foo(A) ->\n    X * 2"))
            (should (equal (derl-mode-test--eval-before-point source) "42"))
            (should (string-match-p "> X \\* 2\\.\n42\n"
                                    (with-current-buffer shell
                                      (buffer-string))))
            ;; A region of two expressions binds Y; the shell sees it.
            (with-current-buffer source
              (erase-buffer)
              (insert "Z = X + 1,\nY = Z * 2. % twice\n"))
            (should (equal (derl-mode-test--eval-region source "^Z") "44"))
            (should (equal (derl-mode-test--shell-eval session "Y.") "44\n"))
            ;; An exception is the value shown.
            (with-current-buffer source
              (erase-buffer)
              (insert "element(5, {a})"))
            (should (string-match-p "exception error: bad argument"
                                    (derl-mode-test--eval-before-point source))))
        (derl-mode-test--kill source shell)))))

(ert-deftest derl-mode-erlang-new-shell ()
  "C-x C-e with no shell yet starts one, and types after its first prompt."
  (derl-test-with-node (node)
    (let* ((dir (derl-test-scratch-file "erlang-new-shell/"))
           (source (progn (make-directory dir t)
                          (derl-mode-test--buffer
                           (expand-file-name "scratch.erl" dir) "1 + 1" node)))
           (shell nil))
      (unwind-protect
          (progn
            (should (equal (derl-mode-test--eval-before-point source) "2"))
            (setq shell (derl-shell--session-buffer
                         (derl-shell-session node 'erlang)))
            (should (string-match-p "\\`Eshell V.*\n([^)]+)1> 1 \\+ 1\\.\n2\n"
                                    (with-current-buffer shell
                                      (buffer-string)))))
        (derl-mode-test--kill source shell)))))

(defconst derl-mode-test--erlang-module
  "-module(derl_mode_test).
-export([f/1]).
-include(\"derl_mode_test.hrl\").
f(X) ->
    Y = 1,
    X + ?TWO.

g() -> undefined_fun().
"
  "A module with a warning (an unused variable) on line 5 and an error
\(an undefined function) on line 8, where g is also unused.")

(ert-deftest derl-mode-erlang-compile-and-load ()
  "C-c C-k: an error and a warning at their lines; fixed, the module loads.
The buffer's text is compiled, not the file (there is none), and
the header next to it is found."
  (derl-test-with-node (node)
    (let* ((dir (derl-test-scratch-file "erlang-compile/"))
           ;; The compiler gives columns from OTP 24 on, lines alone before.
           (column (if (>= (derl-test-otp-release) 24) ":8" ""))
           (file (expand-file-name "derl_mode_test.erl" dir))
           (source (progn
                     (make-directory dir t)
                     (with-temp-file (expand-file-name "derl_mode_test.hrl" dir)
                       (insert "-define(TWO, 2).\n"))
                     (derl-mode-test--buffer file derl-mode-test--erlang-module
                                             node))))
      (unwind-protect
          (with-current-buffer source
            (should-not (file-exists-p file))
            (let ((outcome (call-interactively #'derl-mode-compile-buffer)))
              (should (eq (car outcome) 'error))
              (should (equal (derl-mode-test--lines (nth 2 outcome))
                             '((warning 5) (error 8) (warning 8))))
              (should (string-match-p "undefined_fun/0 undefined"
                                      (nth 4 (nth 1 (nth 2 outcome)))))
              (should (string-match-p "variable 'Y' is unused"
                                      (nth 4 (nth 0 (nth 2 outcome))))))
            (should (eq (derl-call node 'code 'is_loaded '(derl_mode_test))
                        'false))
            ;; *derl-compile* names the buffer's file; next-error goes there.
            (with-current-buffer "*derl-compile*"
              (should (string-match-p
                       (regexp-quote (format "%s:8%s: Error: " file column))
                       (buffer-string))))
            (goto-char (point-min))
            (next-error 1 t)
            (should (eq (current-buffer) source))
            (should (= (line-number-at-pos) 5))
            (next-error 1)
            (should (= (line-number-at-pos) 8))
            ;; RET on a line of *derl-compile* visits it too.
            (with-current-buffer "*derl-compile*"
              (goto-char (point-min))
              (search-forward (format ":8%s: Error" column))
              (compile-goto-error))
            (should (eq (current-buffer) source))
            (should (equal (list (line-number-at-pos) (current-column))
                           (if (equal column "") '(8 0) '(8 7))))
            ;; Fixed: it compiles, loads and runs, the warning still there.
            (goto-char (point-min))
            (re-search-forward "^g() .*\n")
            (replace-match "")
            (let ((outcome (derl-mode-compile-buffer)))
              (should (eq (car outcome) 'ok))
              (should (equal (nth 1 outcome) '(derl_mode_test)))
              (should (equal (derl-mode-test--lines (nth 2 outcome))
                             '((warning 5))))
              (should (equal (derl-call node 'derl_mode_test 'f '(40)) 42))
              (should (equal (derl-call node 'code 'which '(derl_mode_test))
                             file)))
            ;; The node's copy of the text is gone.
            (should (equal (derl-call node 'filelib 'wildcard
                                      (list (format "/tmp/derl-%d-*"
                                                    (emacs-pid))))
                           nil)))
        (derl-mode-test--kill source)))))

;;;; Elixir

(add-to-list 'derl-ert-must-run
             '(derl-mode-elixir . (lambda () (executable-find "elixir"))))

(defconst derl-mode-test--elixir-module
  "defmodule DerlModeTest do
  def f(x) do
    y = 1
    x + 2
  end

  def g, do: undefined_fun()
end
"
  "A module with a warning (an unused variable) on line 3 and an error
\(an undefined function) on line 7.")

(ert-deftest derl-mode-elixir ()
  "An .ex file: IEx bindings shared, compile errors and warnings, loading."
  (skip-unless (executable-find "elixir"))
  (derl-test-configure)
  (let* ((node (derl-test-start-elixir-node))
         (dir (derl-test-scratch-file "elixir/"))
         (file (expand-file-name "derl_mode_test.ex" dir))
         (source nil)
         (shell nil))
    (unwind-protect
        (progn
          (make-directory dir t)
          (let ((find-file-hook (cons #'derl-mode-maybe find-file-hook)))
            (setq source (find-file-noselect file)))
          (with-current-buffer source
            (should derl-mode)
            (should (eq (derl-mode--kind) 'elixir))
            (derl-mode-set-node node)
            (insert derl-mode-test--elixir-module))
          ;; The module: an error and a warning at their lines.
          (with-current-buffer source
            (let ((outcome (derl-mode-compile-buffer)))
              (should (eq (car outcome) 'error))
              (should (equal (derl-mode-test--lines (nth 2 outcome))
                             '((warning 3) (error 7))))
              ;; Elixir 1.15 and later give the logged message alone.
              (should (string-match-p "\\`\\(CompileError: \\)?undefined function undefined_fun/0"
                                      (nth 4 (nth 1 (nth 2 outcome))))))
            (goto-char (point-min))
            (re-search-forward "^  def g.*\n")
            (replace-match "")
            ;; Twice: the second is no redefinition warning.
            (dotimes (_ 2)
              (let ((outcome (derl-mode-compile-buffer)))
                (should (eq (car outcome) 'ok))
                (should (equal (nth 1 outcome) '(Elixir.DerlModeTest)))
                (should (equal (derl-mode-test--lines (nth 2 outcome))
                               '((warning 3)))))))
          (should (equal (derl-call node 'Elixir.DerlModeTest 'f '(40)) 42))
          ;; IEx: bindings shared, a multi-line expression, the module.
          (let ((session (derl-shell-session node 'elixir)))
            (setq shell (derl-shell--session-buffer session))
            (should (equal (derl-mode-test--shell-eval session "x = 20")
                           "20\n")))
          (with-current-buffer source
            (goto-char (point-max))
            (insert "\nx * 2 + DerlModeTest.f(1)"))
          (should (equal (derl-mode-test--eval-before-point source) "43"))
          (with-current-buffer source
            (goto-char (point-max))
            (insert "\nEnum.map([1, 2], fn n ->\n  n * x\nend)"))
          (should (equal (derl-mode-test--eval-region source "^Enum")
                         "[20, 40]")))
      (derl-mode-test--kill source shell)
      (derl-test-stop-node node))))

(ert-deftest derl-mode-elixir-on-an-erlang-node ()
  "Compiling Elixir on a node without Elixir says so, at the first line."
  (derl-test-with-node (node)
    (let ((source (derl-mode-test--buffer
                   (derl-test-scratch-file "no-elixir.ex")
                   "defmodule NoElixir do\nend\n" node)))
      (unwind-protect
          (with-current-buffer source
            (should (equal (derl-mode-compile-buffer)
                           '(error nil ((error nil 0 0
                                               "the node runs no Elixir"))))))
        (derl-mode-test--kill source)))))

;;;; Switching, and the node of a project

(ert-deftest derl-mode-switch-and-project-node ()
  "C-c C-z goes to the node's shell and back; a project's node is asked once."
  (derl-test-with-node (node)
    (let* ((dir (derl-test-scratch-file "project/"))
           (other (derl-test-scratch-file "elsewhere/"))
           (asked 0)
           (one nil) (two nil) (three nil) (shell nil))
      (make-directory dir t)
      (make-directory other t)
      ;; Projects of their own, whatever encloses the scratch directory
      ;; (the matrix's lies inside the clone).
      (dolist (d (list dir other))
        (call-process "git" nil nil nil "init" "-q" d))
      (unwind-protect
          (cl-letf (((symbol-function 'derl-read-node)
                     (lambda (&rest _) (cl-incf asked) node)))
            (setq one (derl-mode-test--buffer (expand-file-name "a.erl" dir)
                                              "" nil)
                  two (derl-mode-test--buffer (expand-file-name "b.erl" dir)
                                              "" nil)
                  three (derl-mode-test--buffer
                         (expand-file-name "c.erl" other) "" nil))
            (with-current-buffer one
              (should (eq (derl-mode-node) node))
              (should (= asked 1)))
            (with-current-buffer two
              (should (eq (derl-mode-node) node))
              (should (= asked 1)))
            (with-current-buffer three
              (should (eq (derl-mode-node) node))
              (should (= asked 2)))
            (set-window-buffer (selected-window) two)
            (set-buffer two)
            (should (eq (key-binding (kbd "C-c C-z"))
                        #'derl-mode-switch-to-shell))
            (setq shell (call-interactively #'derl-mode-switch-to-shell))
            (should (eq (window-buffer (selected-window)) shell))
            (should (eq (derl-shell--session-node
                         (buffer-local-value 'derl-shell--current shell))
                        node))
            (set-buffer shell)
            (should (eq (key-binding (kbd "C-c C-z"))
                        #'derl-mode-switch-to-source))
            (call-interactively #'derl-mode-switch-to-source)
            (should (eq (window-buffer (selected-window)) two))
            ;; Going there again finds the same shell.
            (with-current-buffer one
              (should (eq (derl-mode-switch-to-shell) shell)))
            ;; C-u C-c C-z asks again.
            (with-current-buffer one
              (derl-mode-switch-to-shell t)
              (should (= asked 3))))
        (derl-mode-test--kill one two three shell)))))

;;;; In a terminal

(add-to-list 'derl-ert-must-run '(derl-mode-terminal . always))

(ert-deftest derl-mode-terminal ()
  "In `emacs -nw': C-c C-k asks for the node, compiles and loads;
C-x C-e shows the value after the expression; C-c C-z goes to the
shell, which shows what was typed, and back."
  (skip-unless (executable-find "tmux"))
  (derl-test-with-node (node)
    (let* ((socket (format "derl-mode-%s" (derl-test-random-string 6)))
           (dir (derl-test-scratch-file "terminal/"))
           (file (expand-file-name "tdemo.erl" dir)))
      (make-directory dir t)
      (with-temp-file file
        (insert "-module(tdemo).\n-export([f/1]).\n\n"
                "f(X) ->\n    Unused = 1,\n    X + 22.\n"))
      (unwind-protect
          (cl-flet ((keys (&rest keys)
                      (apply #'derl-ui--tmux socket "send-keys" "-t" "derl"
                             keys))
                    (shows (regexp) (derl-ui--screen-shows socket regexp)))
            (derl-ui--start-terminal
             socket
             '((add-to-list 'load-path "/usr/share/emacs/site-lisp/erlang" t)
               (require 'derl)
               (add-hook 'find-file-hook #'derl-mode-maybe))
             nil (list file))
            (should (string-match-p "tdemo.erl .* derl" (shows " derl")))
            (keys "C-c" "C-k")
            (shows "Node for")
            (keys (symbol-name node) "Enter")
            (let ((screen (shows "Loaded tdemo; 0 errors, 1 warning")))
              (should (string-match-p
                       (regexp-quote (format "%s:5:5: Warning: variable 'Unused' is unused"
                                             file))
                       screen)))
            (keys "M->" "tdemo:f(20)" "C-x" "C-e")
            (should (string-match-p "tdemo:f(20) => 42" (shows "=> 42")))
            (keys "C-c" "C-z")
            (should (string-match-p ")1> tdemo:f(20)\\.\n42\n"
                                    (shows ")2>")))
            (keys "C-c" "C-z")
            (should (string-match-p "^tdemo:f(20) *$" (shows "^tdemo:f(20) *$"))))
        (derl-ui--tmux socket "kill-server")))))

(provide 'derl-mode-tests)

;;; derl-mode-tests.el ends here

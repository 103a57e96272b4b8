;;; derl-shell-tests.el --- the node's own shell in a buffer  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; M-x derl-shell against real Erlang and Elixir nodes: the Erlang
;; shell's bindings, multi-line input, output before the prompt,
;; UTF-8, C-c C-c, TAB; IEx; several shells; a killed buffer stops its
;; shell; a node going down; and the input side of the I/O protocol,
;; request by request, driven from the node.  Last, the same in a
;; terminal Emacs under tmux.

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'derl-ert)
(require 'derl-tests)
(require 'derl-ui-tests)
(require 'derl)
(require 'derl-shell)

;;;; Helpers

(defun derl-shell-test--wait-for (buffer regexp &optional timeout)
  "Wait until BUFFER's text matches REGEXP; return the text."
  (derl-test-wait (lambda ()
                    (string-match-p regexp (with-current-buffer buffer
                                             (buffer-string))))
                  (or timeout 20))
  (with-current-buffer buffer (buffer-string)))

(defun derl-shell-test--type (buffer line)
  "Type LINE and RET in the shell BUFFER."
  (with-current-buffer buffer
    (goto-char (point-max))
    (insert line)
    (comint-send-input)))

(defun derl-shell-test--prompts (buffer)
  "How many prompts of the Erlang shell BUFFER shows."
  (with-current-buffer buffer
    (let ((n 0) (start 0) (text (buffer-string)))
      (while (string-match ")[0-9]+> " text start)
        (setq n (1+ n) start (match-end 0)))
      n)))

(defun derl-shell-test--eval (buffer line)
  "Type LINE in the Erlang shell BUFFER and wait for the next prompt.
Return the text printed in between."
  (let ((before (derl-shell-test--prompts buffer))
        (start (with-current-buffer buffer (point-max))))
    (derl-shell-test--type buffer line)
    (derl-test-wait (lambda () (> (derl-shell-test--prompts buffer) before)))
    (with-current-buffer buffer
      (buffer-substring-no-properties start (point-max)))))

(defmacro derl-shell-test--with-shell (spec &rest body)
  "SPEC is (BUFFER NODE): run BODY with a new shell on NODE in BUFFER."
  (declare (indent 1))
  `(let ((,(car spec) (derl-shell ,(cadr spec))))
     (unwind-protect
         (progn
           (derl-shell-test--wait-for ,(car spec) ")1> \\|iex.*> ")
           ,@body)
       (when (buffer-live-p ,(car spec))
         (let ((kill-buffer-query-functions nil))
           (kill-buffer ,(car spec)))))))

(defun derl-shell-test--session (buffer)
  "The session of the shell BUFFER."
  (buffer-local-value 'derl-shell--current buffer))

;;;; The Erlang shell

(ert-deftest derl-shell-erlang-bindings-and-lines ()
  "Bindings, multi-line input, output before the prompt, UTF-8, v(N)."
  (derl-test-with-node (node)
    (derl-shell-test--with-shell (buffer node)
      (should (string-match-p "21" (derl-shell-test--eval buffer "X = 21.")))
      (should (string-match-p "^42$" (derl-shell-test--eval buffer "X * 2.")))
      ;; Two lines: the first asks for more.
      (derl-shell-test--type buffer "io:format(\"é ~p~n\", [X]),")
      (derl-test-wait (lambda ()
                        (string-match-p (regexp-quote
                                         derl-shell-continuation-prompt)
                                        (with-current-buffer buffer
                                          (buffer-string)))))
      (let ((out (derl-shell-test--eval buffer "X + 1.")))
        (should (string-match-p "é 21\n22\n" out)))
      (should (string-match-p "^42$" (derl-shell-test--eval buffer "v(2).")))
      (should (string-match-p "\"ünï\"" (derl-shell-test--eval
                                          buffer "io_lib:format(\"~ts\", [\"ünï\"]).")))
      ;; What is typed reaches the shell as it was: the atom nil too.
      (should (string-match-p "^{nil,\\[\\]}$"
                              (derl-shell-test--eval buffer "{nil, []}.")))
      (should (string-match-p "X = 21" (derl-shell-test--eval buffer "b().")))
      (derl-shell-test--eval buffer "f(X).")
      (should (string-match-p "unbound"
                              (derl-shell-test--eval buffer "X."))))))

(ert-deftest derl-shell-erlang-interrupt-keeps-bindings ()
  "C-c C-c stops timer:sleep(infinity); the bindings stay."
  (derl-test-with-node (node)
    (derl-shell-test--with-shell (buffer node)
      (derl-shell-test--eval buffer "Y = 7.")
      (let ((before (derl-shell-test--prompts buffer)))
        (derl-shell-test--type buffer "timer:sleep(infinity).")
        (accept-process-output nil 0.5)
        (should (= before (derl-shell-test--prompts buffer)))
        (with-current-buffer buffer (derl-shell-interrupt))
        (derl-test-wait (lambda () (> (derl-shell-test--prompts buffer) before))))
      (should (string-match-p "^8$" (derl-shell-test--eval buffer "Y + 1."))))))

(ert-deftest derl-shell-erlang-tab-expands ()
  "TAB on lists:sp completes with the node's expansion."
  (derl-test-with-node (node)
    (derl-shell-test--with-shell (buffer node)
      (with-current-buffer buffer
        (goto-char (point-max))
        (insert "lists:spl")
        (derl-shell-complete)
        (should (string-suffix-p "lists:split"
                                 (buffer-substring-no-properties
                                  (line-beginning-position) (point-max))))
        (derl-shell-complete)
        ;; OTP 25 gives the arity; OTP 26 and later only the name.
        (should (string-match-p "splitwith\\(/2\\)?$"
                                (with-current-buffer "*Completions*"
                                  (buffer-string))))))))

(ert-deftest derl-shell-several-and-killed ()
  "Two shells on one node keep their own bindings; a killed buffer stops its shell."
  (derl-test-with-node (node)
    (derl-shell-test--with-shell (one node)
      (derl-shell-test--with-shell (two node)
        (derl-shell-test--eval one "A = one.")
        (derl-shell-test--eval two "A = two.")
        (should (string-match-p "^one$" (derl-shell-test--eval one "A.")))
        (should (string-match-p "^two$" (derl-shell-test--eval two "A.")))
        (let ((shell (derl-shell--session-shell (derl-shell-test--session two))))
          (should (eq (derl-call node 'erlang 'is_process_alive (list shell))
                      'true))
          (let ((kill-buffer-query-functions nil))
            (kill-buffer two))
          (derl-test-wait (lambda ()
                            (eq (derl-call node 'erlang 'is_process_alive
                                           (list shell))
                                'false))))
        (should (string-match-p "^one$" (derl-shell-test--eval one "A.")))))))

(ert-deftest derl-shell-node-down-says-so ()
  "The node going down prints a line in the shell buffer."
  (derl-test-configure)
  (let ((node (derl-test-start-node)))
    (derl-shell-test--with-shell (buffer node)
      (derl-test-stop-node node)
      (should (string-match-p
               (format "\\*\\*\\* %s went down; RET starts a new shell" node)
               (derl-shell-test--wait-for buffer "went down"))))))

;;;; IEx

(defun derl-shell-test--iex-prompts (buffer)
  "How many prompts of IEx (iex(NODE)N>, not ...(NODE)N>) BUFFER shows."
  (with-current-buffer buffer
    (let ((n 0) (start 0) (text (buffer-string)))
      (while (string-match "^iex([^)\n]*)[0-9]+> " text start)
        (setq n (1+ n) start (match-end 0)))
      n)))

(defun derl-shell-test--iex-eval (buffer line)
  "Type LINE in the IEx BUFFER and wait for its next prompt.
Return the text printed in between."
  (let ((before (derl-shell-test--iex-prompts buffer))
        (start (with-current-buffer buffer (point-max))))
    (derl-shell-test--type buffer line)
    (derl-test-wait (lambda () (> (derl-shell-test--iex-prompts buffer) before)))
    (with-current-buffer buffer
      (ansi-color-filter-apply
       (buffer-substring-no-properties start (point-max))))))

(add-to-list 'derl-ert-must-run
             '(derl-shell-iex . (lambda () (executable-find "elixir"))))

(ert-deftest derl-shell-iex ()
  "IEx on an Elixir node: bindings, two lines, UTF-8, C-c C-c, TAB.
x = 20, then x * 2 + 3 gives 43, whatever the version of Elixir
\(up to 1.14 IEx reads lines; later ones, with get_until, a line or
an expression of IEx's own parser)."
  (skip-unless (executable-find "elixir"))
  (derl-test-configure)
  (let ((node (derl-test-start-elixir-node)))
    (unwind-protect
        (derl-shell-test--with-shell (buffer node)
          (should (eq (derl-shell--session-kind (derl-shell-test--session buffer))
                      'elixir))
          (derl-test-wait (lambda () (= 1 (derl-shell-test--iex-prompts buffer))))
          (should (string-match-p "^20$" (derl-shell-test--iex-eval
                                          buffer "x = 20")))
          (should (string-match-p "^43$" (derl-shell-test--iex-eval
                                          buffer "x * 2 + 3")))
          ;; nil stays nil, a binary a binary.
          (should (string-match-p "^{nil, \"é\", 'a'}$\\|^{nil, \"é\", ~c\"a\"}$"
                                  (derl-shell-test--iex-eval
                                   buffer "{nil, \"é\", 'a'}")))
          ;; Two lines: the first asks for more.
          (derl-shell-test--type buffer "[1,")
          (derl-shell-test--wait-for buffer "^\\(\\.\\.\\.\\|\\.\\. \\).*\\'")
          (should (string-match-p "^\\[1, 2\\]$"
                                  (derl-shell-test--iex-eval buffer "2]")))
          ;; A syntax error is said, and IEx goes on.
          (should (string-match-p "SyntaxError\\|TokenMissingError"
                                  (derl-shell-test--iex-eval buffer "1 + )")))
          (should (string-match-p "^3$" (derl-shell-test--iex-eval buffer "1 + 2")))
          ;; Output before the value, and before the next prompt.
          (should (string-match-p "^hé\n:ok\n"
                                  (derl-shell-test--iex-eval
                                   buffer "IO.puts(\"hé\")")))
          ;; C-c C-c stops an evaluation; IEx goes on.
          (let ((before (derl-shell-test--iex-prompts buffer)))
            (derl-shell-test--type buffer ":timer.sleep(:infinity)")
            (accept-process-output nil 0.5)
            (should (= before (derl-shell-test--iex-prompts buffer)))
            (with-current-buffer buffer (derl-shell-interrupt))
            (derl-test-wait (lambda ()
                              (> (derl-shell-test--iex-prompts buffer) before))))
          (should (string-match-p "^7$" (derl-shell-test--iex-eval buffer "3 + 4")))
          ;; TAB: a function of a module, and a variable of this shell.
          (derl-shell-test--iex-eval buffer "derl_variable = 1")
          (with-current-buffer buffer
            (goto-char (point-max))
            (insert "String.upca")
            (derl-shell-complete)
            (should (string-match-p "String\\.upcase"
                                    (buffer-substring-no-properties
                                     (line-beginning-position) (point-max))))
            (delete-region (process-mark (get-buffer-process buffer))
                           (point-max))
            ;; Variables: IEx.Autocomplete takes the shell from 1.14
            ;; on; before, it knows only the node's own shell.
            (unless (version< (derl-shell--session-elixir
                               (derl-shell-test--session buffer))
                              "1.14")
              (insert "derl_varia")
              (derl-shell-complete)
              (should (string-suffix-p "derl_variable"
                                       (buffer-substring-no-properties
                                        (line-beginning-position) (point-max))))
              (delete-region (process-mark (get-buffer-process buffer))
                             (point-max)))))
      (derl-test-stop-node node))))

;;;; The input side of the I/O protocol, request by request

(ert-deftest derl-shell-io-protocol-input ()
  "get_line, get_chars, get_until, get_password, options and geometry.
The node reads from the shell's group leader as it would from a
terminal; the answers are what was typed."
  (derl-test-with-node (node)
    (derl-shell-test--with-shell (buffer node)
      (let* ((session (derl-shell-test--session buffer))
             (leader (derl-shell--session-leader session))
             (results nil))
        (cl-flet ((read-with (function args)
                    (setq results nil)
                    (derl-call-async node 'io function (cons leader args)
                                     (lambda (r) (push r results)))))
          (read-with 'get_line '("line> "))
          (derl-shell-test--wait-for buffer "line> ")
          (derl-shell-test--type buffer "héllo")
          (derl-test-wait (lambda () results))
          ;; A list of code points, as Distel's mapping gives them.
          (should (equal (decode-coding-string (car results) 'latin-1)
                         "héllo\n"))
          (read-with 'get_chars '("chars> " 3))
          (derl-shell-test--wait-for buffer "chars> ")
          (derl-shell-test--type buffer "abcdef")
          (derl-test-wait (lambda () results))
          (should (equal (car results) "abc"))
          ;; What get_chars left is there for the next read.
          (read-with 'get_line '("rest> "))
          (derl-test-wait (lambda () results))
          (should (equal (car results) "def\n"))
          (read-with 'read '("term> "))
          (derl-shell-test--wait-for buffer "term> ")
          (derl-shell-test--type buffer "{a,")
          (derl-shell-test--type buffer "[1,2]}.")
          (derl-test-wait (lambda () results))
          (should (equal (car results) [ok [a "\1\2"]]))
          ;; The forms without an encoding, which io:request/2 sends.
          (read-with 'request (list [get_chars "old> " 2]))
          (derl-shell-test--wait-for buffer "old> ")
          (derl-shell-test--type buffer "xyz.")
          (derl-test-wait (lambda () results))
          (should (equal (car results) "xy"))
          (read-with 'request (list (vector 'get_until "oldt> " 'erl_scan
                                            'tokens '(1))))
          (derl-shell-test--wait-for buffer "oldt> ")
          (derl-test-wait (lambda () results))
          (should (equal (aref (car results) 1) '([atom 1 z] [dot 1])))
          (should (equal (derl-call node 'io 'getopts (list leader))
                         '([binary false] [encoding unicode] [echo true])))
          (should (eq (derl-call node 'io 'setopts (list leader '(binary)))
                      'ok))
          (read-with 'get_line '("bin> "))
          (derl-shell-test--wait-for buffer "bin> ")
          (derl-shell-test--type buffer "b")
          (derl-test-wait (lambda () results))
          (should (equal (car results) "b\n"))
          (should (eq (derl-call node 'io 'setopts (list leader '(list))) 'ok))
          (should (pcase (derl-call node 'io 'columns (list leader))
                    (`[ok ,n] (integerp n))))
          (should (equal (derl-call node 'io 'put_chars
                                    (list leader "printed\n"))
                         'ok))
          (derl-shell-test--wait-for buffer "^printed$"))))))

;;;; In a terminal

(add-to-list 'derl-ert-must-run '(derl-shell-terminal . always))

(ert-deftest derl-shell-terminal ()
  "In `emacs -nw': X = 21. then X * 2. shows 42, two lines, C-c C-c, TAB.
And IEx on an Elixir node: x = 20, then x * 2 + 3 shows 43."
  (skip-unless (executable-find "tmux"))
  (derl-test-with-node (node)
    (let ((socket (format "derl-shell-%s" (derl-test-random-string 6)))
          (elixir (and (executable-find "elixir")
                       (derl-test-start-elixir-node))))
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
            (keys "X = 21." "Enter")
            (shows ")2>")
            (keys "X * 2." "Enter")
            (should (string-match-p "^42 *$" (shows "^42 *$")))
            (keys "[X," "Enter")
            (shows "^\\.\\.")
            (keys "X + 1]." "Enter")
            (should (string-match-p "\\[21,22\\]" (shows "\\[21,22\\]")))
            (keys "timer:sleep(infinity)." "Enter")
            (sleep-for 0.5)
            (keys "C-c" "C-c")
            (should (string-match-p ")5>" (shows ")5>")))
            (keys "lists:spl" "Tab")
            (should (string-match-p "lists:split" (shows "lists:split")))
            (keys "C-a" "C-k" "X." "Enter")
            (should (string-match-p "^21 *$" (shows "^21 *$")))
            ;; IEx, on an Elixir node.
            (when elixir
              (keys "M-x" "derl-shell" "Enter")
              (shows "Shell on node")
              (keys (symbol-name elixir) "Enter")
              (should (string-match-p "iex(.*)1>" (shows "iex(.*)1>")))
              (keys "x = 20" "Enter")
              (shows "iex(.*)2>")
              (keys "x * 2 + 3" "Enter")
              (should (string-match-p "^43 *$" (shows "^43 *$")))))
        (derl-ui--tmux socket "kill-server")
        (when elixir
          (derl-test-stop-node elixir))))))

(provide 'derl-shell-tests)

;;; derl-shell-tests.el ends here

;;; derl-shell.el --- The node's own shell in an Emacs buffer  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;; Keywords: erlang, languages, processes

;; This file is not part of GNU Emacs.

;; This program is free software: you can redistribute it and/or modify
;; it under the terms of the GNU General Public License as published by
;; the Free Software Foundation, either version 3 of the License, or
;; (at your option) any later version.

;; This program is distributed in the hope that it will be useful,
;; but WITHOUT ANY WARRANTY; without even the implied warranty of
;; MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
;; GNU General Public License for more details.

;; You should have received a copy of the GNU General Public License
;; along with this program.  If not, see <https://www.gnu.org/licenses/>.

;;; Commentary:

;; M-x derl-shell runs a node's own interactive shell, the Erlang
;; shell or IEx, in a comint buffer, over the distribution: no
;; terminal, no `erl -remsh', nothing uploaded to the node.
;;
;; The shell is started on the node (shell:start/0, or
;; 'Elixir.IEx.Server':run/1) with a process of Emacs as its group
;; leader, and that process speaks the input side of Erlang's I/O
;; protocol as OTP's group.erl does for a terminal: get_line,
;; get_chars, get_until, get_password, get_geometry, getopts and
;; setopts, with their prompts; output goes to the buffer.  Typed
;; lines wait until the shell asks for input; a request that needs
;; more (an expression without its full stop) shows a continuation
;; prompt.  Requests are answered over the connection they came on,
;; and only when they come from the shell's node (see `derl--serve').
;;
;; A get_until request is served on the shell's own node: a program
;; run there with erl_eval scans the text typed so far with
;; io_lib:get_until/4, as group.erl does, and when the scanner is
;; done answers the shell itself, so that what it made (erl_scan's
;; tokens for the Erlang shell; for IEx of Elixir 1.15 and later a
;; binary up to 1.18, its parser's {ok, Fun, State} in 1.20) reaches the
;; shell as it is, and never goes through Lisp, where a binary would
;; become a list and the atom nil [].  Emacs learns only whether the
;; scan was done and what text it left.
;;
;; C-c C-c interrupts an evaluation as ^G i does in a terminal (the
;; Erlang shell kills the evaluator and keeps the bindings; IEx starts
;; a new evaluator, as its own interrupt does); TAB completes with the
;; node's own expansion (edlin_expand, or the expand function the shell
;; set; in IEx, IEx.Autocomplete for this shell, whose variables it
;; knows from Elixir 1.14 on).  Killing the buffer stops the shell.
;;
;; For code that evaluates in a shell's session (derl-mode):
;;   (derl-shell-session NODE)                 the session of NODE's shell
;;   (derl-shell-eval SESSION TEXT CALLBACK)   feed TEXT as typed input;
;;       CALLBACK gets what the shell printed until it asked for more

;;; Code:

(require 'cl-lib)
(require 'ansi-color)
(require 'comint)
(require 'subr-x)
(require 'derl-options)
(require 'derl-conn)
(require 'derl-connect)
(require 'derl-deliver)
(require 'derl-rpc)
(require 'derl-io)
(require 'derl-commands)
(require 'derl-eval)

(defcustom derl-shell-continuation-prompt ".. "
  "The prompt shown when the Erlang shell's expression needs more lines."
  :type 'string
  :group 'derl)

(defcustom derl-shell-start-timeout 15
  "Seconds to wait for a node to start its shell."
  :type 'number
  :group 'derl)

(cl-defstruct (derl-shell--session (:constructor derl-shell--make-session)
                                   (:copier nil))
  "A shell of a node, run in a buffer."
  node
  (kind nil :documentation "`erlang' or `elixir'.")
  buffer
  (leader nil :documentation "The shell's group leader, an Emacs process.")
  (shell nil :documentation "The shell's process on the node.")
  (conn nil :documentation "The connection the shell runs over.")
  (input "" :documentation "Typed text not yet read by the shell.")
  (request nil :documentation "The input request waiting for text:
\(FROM REPLY-AS REQUEST), or nil.")
  (scanned "" :documentation "Text a get_until request holds so far.")
  (scanning nil :documentation "While the node scans input: the pid
to which it says how the scan went.")
  (binary nil :documentation "Non-nil when the shell asked for binaries.")
  (expand nil :documentation "The expand function the shell set, or nil.")
  (elixir nil :documentation "The version of the node's Elixir, a string,
when the shell is IEx.")
  (old-expand nil :documentation "Non-nil when the node's edlin_expand
has only expand/1 (OTP 25 and older).")
  (collect nil :documentation "While `derl-shell-eval' waits: (CALLBACK
STATE . TEXTS).  STATE is `fed' until the shell reads the text fed,
`reading' while it does, `read' once it has read all of it; TEXTS is
the output printed since it began to read, newest first.")
  (down nil :documentation "Non-nil once the shell or its node is gone."))

(defvar-local derl-shell--current nil
  "The session of the current shell buffer.")

(defvar derl-shell--sessions nil
  "The live sessions, newest first.")

;;;; Text

(defun derl-shell--chars (term)
  "TERM, chardata from the node, as a string."
  (derl-io--text term 'unicode))

(defun derl-shell--insert (session text &optional prompt)
  "Show TEXT, output of SESSION's shell, before the input being typed.
PROMPT non-nil says TEXT is a prompt, which is no part of what a
`derl-shell-eval' collects."
  (let ((buffer (derl-shell--session-buffer session)))
    (when (and (buffer-live-p buffer) (not (string-empty-p text)))
      (let ((collect (derl-shell--session-collect session)))
        (when (and collect (not prompt) (not (eq (cadr collect) 'fed)))
          (push (ansi-color-filter-apply text) (cddr collect))))
      (with-current-buffer buffer
        (comint-output-filter (get-buffer-process buffer) text)))))

(defun derl-shell--prompt-text (session prompt callback)
  "Call CALLBACK with PROMPT, as SESSION's node would print it, as a string."
  (pcase prompt
    ((or (pred stringp) (pred consp) (pred null) (pred erl-binaryp))
     (funcall callback (condition-case nil (derl-shell--chars prompt)
                         (error ""))))
    ((pred symbolp) (funcall callback (symbol-name prompt)))
    (_ (derl-call-async (derl-shell--session-node session) 'io_lib
                        'format_prompt (list prompt)
                        (lambda (text)
                          (funcall callback (derl-shell--chars text)))
                        :on-error (lambda (_) (funcall callback ""))
                        :timeout 10))))

;;;; The group leader

(defun derl-shell--reply (session from reply-as value)
  "Answer FROM's request REPLY-AS of SESSION with VALUE, over its connection."
  (derl--answer (derl-shell--session-conn session) from
                (vector 'io_reply reply-as value)))

(defun derl-shell--from-node (session message conn)
  "Serve MESSAGE, sent to SESSION's group leader over CONN.
Only the shell's node may use it; see `derl--serve'."
  (pcase message
    (`[io_request ,from ,reply-as ,request]
     (cond ((not (eq (derl-connection-node conn)
                     (derl-shell--session-node session)))
            (derl--drop conn "an io_request"
                        (format "the shell runs on %s"
                                (derl-shell--session-node session))))
           ((derl--check-signal conn "an io_request" from erl-null-pid)
            (derl-shell--request session from reply-as request)))))
  t)

(defun derl-shell--input-request-p (request)
  "Non-nil if REQUEST asks for input."
  (and (vectorp request) (> (length request) 0)
       (memq (aref request 0) '(get_line get_chars get_until get_password))))

(defun derl-shell--request (session from reply-as request)
  "Serve REQUEST of FROM, tagged REPLY-AS, for SESSION's shell."
  (pcase request
    ((pred derl-shell--input-request-p)
     (derl-shell--take-request session from reply-as request))
    ((or `[getopts] 'getopts)
     (derl-shell--reply session from reply-as
                        (list (vector 'binary
                                      (if (derl-shell--session-binary session)
                                          'true 'false))
                              [encoding unicode] [echo true])))
    (`[setopts ,(and (pred proper-list-p) opts)]
     (dolist (opt opts)
       (pcase opt
         ('binary (setf (derl-shell--session-binary session) t))
         ('list (setf (derl-shell--session-binary session) nil))
         (`[binary ,b] (setf (derl-shell--session-binary session)
                             (eq b 'true)))
         (`[expand_fun ,fun] (setf (derl-shell--session-expand session) fun))))
     (derl-shell--reply session from reply-as 'ok))
    (`[get_geometry ,what]
     (derl-shell--reply session from reply-as
                        (let ((window (get-buffer-window
                                       (derl-shell--session-buffer session))))
                          (if (eq what 'rows)
                              (if window (window-body-height window) 24)
                            (if window (window-body-width window) 80)))))
    (_
     (derl-io--serve (derl-shell--session-conn session) request
                     (lambda (value)
                       (derl-shell--reply session from reply-as value))
                     (lambda (text) (derl-shell--insert session text))))))

(defun derl-shell--modern-request (request)
  "REQUEST, an input request, in its form with an encoding.
The forms without one, which io:request/2 passes as they are, read
Latin-1."
  (pcase request
    (`[get_line ,prompt] (vector 'get_line 'latin1 prompt))
    (`[get_chars ,prompt ,n] (vector 'get_chars 'latin1 prompt n))
    (`[get_until ,prompt ,m ,f ,a] (vector 'get_until 'latin1 prompt m f a))
    (`[get_password] [get_password latin1])
    (_ request)))

(defun derl-shell--take-request (session from reply-as request)
  "Keep SESSION's input REQUEST of FROM, tagged REPLY-AS; show its prompt.
Then serve it from what was typed, if there is enough."
  (setq request (derl-shell--modern-request request))
  (setf (derl-shell--session-request session) (list from reply-as request)
        (derl-shell--session-scanned session) "")
  ;; The shell asks for input after it read all that was fed: what it
  ;; printed meanwhile is the answer a `derl-shell-eval' waited for.
  ;; (IEx asks again for each line of an expression.)
  (let ((collect (derl-shell--session-collect session)))
    (when (and collect (eq (cadr collect) 'read))
      (setf (derl-shell--session-collect session) nil)
      (with-demoted-errors "derl-shell-eval's callback: %S"
        (funcall (car collect) (apply #'concat (reverse (cddr collect)))))))
  (let ((prompt (pcase request
                  (`[get_line ,_ ,prompt] prompt)
                  (`[get_chars ,_ ,prompt ,_] prompt)
                  (`[get_until ,_ ,prompt ,_ ,_ ,_] prompt)
                  (_ ""))))
    (derl-shell--prompt-text
     session prompt
     (lambda (text)
       (derl-shell--insert session text t)
       (derl-shell--serve-input session)))))

(defun derl-shell--encode (session text)
  "TEXT as SESSION's shell wants it: a binary of UTF-8, or a list."
  (if (derl-shell--session-binary session)
      (erl-binary (encode-coding-string text 'utf-8-unix))
    text))

(defun derl-shell--consume (session rest)
  "Forget SESSION's input request, which is answered; REST is the input left."
  (setf (derl-shell--session-request session) nil
        (derl-shell--session-input session) rest)
  (let ((collect (derl-shell--session-collect session)))
    (when collect
      (setf (cadr collect) (if (string-empty-p rest) 'read 'reading)))))

(defun derl-shell--answer-input (session value rest)
  "Answer SESSION's input request with VALUE; REST is the input left."
  (pcase-let ((`(,from ,reply-as ,_) (derl-shell--session-request session)))
    (derl-shell--consume session rest)
    (derl-shell--reply session from reply-as value)))

(defun derl-shell--serve-input (session)
  "Answer SESSION's input request from the typed input, if there is enough."
  (let ((pending (derl-shell--session-request session))
        (input (derl-shell--session-input session)))
    (when (and pending (not (derl-shell--session-scanning session)))
      (pcase (nth 2 pending)
        ((pred (lambda (r) (memq (aref r 0) '(get_line get_password))))
         (let ((end (string-search "\n" input)))
           (when end
             (derl-shell--answer-input
              session (derl-shell--encode session (substring input 0 (1+ end)))
              (substring input (1+ end))))))
        (`[get_chars ,_ ,_ ,n]
         (when (and (natnump n) (>= (length input) n))
           (derl-shell--answer-input
            session (derl-shell--encode session (substring input 0 n))
            (substring input n))))
        (`[get_until ,_ ,_ ,_ ,_ ,_]
         (let ((end (string-search "\n" input)))
           (when end
             (derl-shell--scan session
                               (concat (derl-shell--session-scanned session)
                                       (substring input 0 (1+ end)))
                               (substring input (1+ end))))))))))

(defconst derl-shell--scan-program "
(fun() ->
Data = case Binary of
           true -> unicode:characters_to_binary(Text);
           false -> Text
       end,
Outcome = try io_lib:get_until(start, Data, Encoding, {Module, Function, Args}) of
              {stop, Result, eof} -> {done, Result, eof};
              {stop, Result, Left} ->
                  {done, Result, unicode:characters_to_binary(Left, Encoding)};
              _ -> more
          catch
              _:_ -> {done, {error, Function}, <<>>}
          end,
case Outcome of
    {done, Value, Rest} ->
        Scanned ! {done, Rest},
        From ! {io_reply, ReplyAs, Value};
    more ->
        Scanned ! more
end,
ok
end)().
"
  "The program that serves a get_until request as OTP's group.erl does.
Its variables: Text (what was typed), Binary (true when the shell
reads binaries), Encoding, Module, Function and Args (the request's),
From and ReplyAs (the requester), Scanned (a pid of Emacs).  It
scans Text with io_lib:get_until/4; done, it tells Scanned {done,
Rest}, Rest the text left over or eof, then answers the request:
the value goes from the node to the shell, never through Lisp, where
binaries would become lists and the atom nil [].  Otherwise it tells
Scanned more.")

(defun derl-shell--scan (session text rest)
  "Have the node scan TEXT for SESSION's get_until request.
Done, the node answers the request, and what the scanner left over
goes back before REST; otherwise the request waits for another line,
under the continuation prompt.  Each scan starts afresh, with all
the text typed for the request, so that no continuation of the
scanner's goes through Lisp."
  (pcase-let* ((`(,from ,reply-as ,request) (derl-shell--session-request session))
               (`[get_until ,encoding ,_ ,module ,function ,args] request)
               (node (derl-shell--session-node session))
               (scanned (derl--make-receiver #'derl-shell--scanned session)))
    (setf (derl-shell--session-scanning session) scanned
          (derl-shell--session-scanned session) text
          (derl-shell--session-input session) rest)
    (derl-call-async
     node 'erl_eval 'expr
     (list derl-eval--run-program
           ;; An orddict: sorted by variable name.
           (list (vector 'Bindings
                         (list (vector 'Args
                                       ;; A list of small integers
                                       ;; arrives as a string.
                                       (if (stringp args) (append args nil)
                                         args))
                               (vector 'Binary
                                       (if (derl-shell--session-binary session)
                                           'true 'false))
                               (vector 'Encoding encoding)
                               (vector 'From from)
                               (vector 'Function function)
                               (vector 'Module module)
                               (vector 'ReplyAs reply-as)
                               (vector 'Scanned scanned)
                               (vector 'Text text)))
                 (vector 'Program derl-shell--scan-program))
           'none 'none 'value)
     (lambda (_)
       ;; The node said how the scan went before it returned.
       (when (eq (derl-shell--session-scanning session) scanned)
         (derl-shell--scan-failed session "no outcome")))
     :on-error (lambda (condition)
                 (when (eq (derl-shell--session-scanning session) scanned)
                   (derl-shell--scan-failed
                    session (error-message-string condition))))
     :timeout 30)))

(defun derl-shell--scanned (session message conn)
  "Take MESSAGE, how the node's scan for SESSION went, sent over CONN."
  (let ((scanned (derl-shell--session-scanning session)))
    (when (and scanned (eq (derl-connection-node conn)
                           (derl-shell--session-node session)))
      (derl--forget-receiver scanned)
      (setf (derl-shell--session-scanning session) nil)
      (pcase message
        (`[done ,left]
         ;; The node answered the request.
         (derl-shell--consume
          session
          (concat (if (eq left 'eof) ""
                    (condition-case nil (derl-shell--chars left)
                      (error "")))
                  (derl-shell--session-input session))))
        (_ (derl-shell--insert session derl-shell-continuation-prompt t)))
      (derl-shell--serve-input session)
      t)))

(defun derl-shell--scan-failed (session why)
  "Say that the node could not scan SESSION's input, for WHY.
The shell's request gets an error, and what was typed is dropped."
  (let ((scanned (derl-shell--session-scanning session)))
    (when scanned
      (derl--forget-receiver scanned))
    (setf (derl-shell--session-scanning session) nil)
    (derl-shell--insert session (format "*** cannot scan the input: %s\n" why))
    (when (derl-shell--session-request session)
      (derl-shell--answer-input session [error scan] ""))))

(defun derl-shell--leader-loop ()
  "The body of a shell's group leader: messages from Emacs are ignored.
Exit signals from the shell, to which it is linked, end the session."
  (let ((stop nil))
    (erl-receive ()
        ((['EXIT _ reason]
          (let ((session (cl-find erl-self derl-shell--sessions
                                  :key #'derl-shell--session-leader
                                  :test #'equal)))
            (when session
              (derl-shell--gone session
                                (format "the shell exited: %s"
                                        (derl-term-to-string reason))))))
         ('stop (setq stop t))
         (_ nil))
      (unless stop
        (derl-shell--leader-loop)))))

(defun derl-shell--stop-leader (session)
  "End SESSION's group leader, quietly."
  (let ((leader (derl-shell--session-leader session)))
    (when (and leader (erl-local-pid-alive-p leader))
      (erl-send leader 'stop))))

;;;; Starting and stopping

(defun derl-shell--elixir-p (node)
  "Return non-nil if NODE is an Elixir node."
  (pcase (derl-call node 'code 'is_loaded '(Elixir.Kernel))
    (`[file ,_] t)))

(defun derl-shell--elixir-version (node)
  "The version of NODE's Elixir, a string, or nil."
  (let ((version (derl-call node 'Elixir.System 'version nil)))
    (cond ((erl-binaryp version) (erl-binary-string version))
          ((stringp version) version))))

(defun derl-shell--start-remote (session)
  "Start SESSION's shell on its node, with its group leader."
  (let* ((node (derl-shell--session-node session))
         (erl-group-leader (derl-shell--session-leader session))
         (shell (if (eq (derl-shell--session-kind session) 'elixir)
                    (progn
                      (setf (derl-shell--session-elixir session)
                            (derl-shell--elixir-version node))
                      ;; IEx's evaluators register with its broker.
                      (derl-call node 'application 'ensure_all_started
                                 '(iex) derl-shell-start-timeout)
                      ;; At the end of input IEx must stop its evaluator,
                      ;; never halt the node (Elixir 1.15 and later do).
                      (derl-call node 'erlang 'spawn
                                 (list 'Elixir.IEx.Server 'run
                                       (list (list [on_eof stop_evaluator])))
                                 derl-shell-start-timeout))
                  (derl-call node 'shell 'start nil
                             derl-shell-start-timeout))))
    (unless (and (erl-pid-p shell) (eq (erl-pid-node shell) node))
      (error "The node did not start a shell: %s" (derl-term-to-string shell)))
    (setf (derl-shell--session-shell session) shell)
    (let ((erl-self (derl-shell--session-leader session)))
      (erl-link shell))
    shell))

(defun derl-shell--start (session)
  "Connect SESSION to its node, make its group leader, start the shell."
  (let* ((node (derl-shell--session-node session))
         (conn (derl-connect node))
         (leader (erl-spawn (setq erl-trap-exit t)
                            (derl-shell--leader-loop))))
    (when (derl-shell--session-scanning session)
      (derl--forget-receiver (derl-shell--session-scanning session)))
    (setf (derl-shell--session-conn session) conn
          (derl-shell--session-leader session) leader
          (derl-shell--session-input session) ""
          (derl-shell--session-request session) nil
          (derl-shell--session-scanning session) nil
          (derl-shell--session-binary session) nil
          (derl-shell--session-expand session) nil
          (derl-shell--session-down session) nil)
    (derl--serve leader #'derl-shell--from-node session)
    (push session derl-shell--sessions)
    (unless (derl-shell--session-kind session)
      (setf (derl-shell--session-kind session)
            (if (derl-shell--elixir-p node) 'elixir 'erlang)))
    ;; Elixir's standard I/O is in binary mode from the start.
    (setf (derl-shell--session-binary session)
          (eq (derl-shell--session-kind session) 'elixir))
    (derl-shell--start-remote session)
    session))

(defun derl-shell--stop (session)
  "Stop SESSION's shell on the node and its group leader in Emacs."
  (setq derl-shell--sessions (delq session derl-shell--sessions))
  (let ((shell (derl-shell--session-shell session))
        (leader (derl-shell--session-leader session))
        (conn (derl-shell--session-conn session)))
    (when leader
      (when (and shell conn (derl--live-p conn))
        (let ((erl-self leader))
          (erl-unlink shell)
          (ignore-errors (erl-exit 'kill shell))))
      (derl-shell--stop-leader session))
    (setf (derl-shell--session-down session) t)))

(defun derl-shell--gone (session why)
  "Say in SESSION's buffer that its shell is gone, for WHY."
  (unless (derl-shell--session-down session)
    (setq derl-shell--sessions (delq session derl-shell--sessions))
    (setf (derl-shell--session-down session) t
          (derl-shell--session-request session) nil)
    (derl-shell--stop-leader session)
    (derl-shell--insert
     session (format "\n*** %s; RET starts a new shell on %s\n" why
                     (derl-shell--session-node session)))))

(defun derl-shell--nodedown (node &rest _)
  "Tell the shells of NODE, which went down."
  (dolist (session (copy-sequence derl-shell--sessions))
    (when (eq (derl-shell--session-node session) node)
      (derl-shell--gone session (format "%s went down" node)))))

(add-hook 'erl-nodedown-hook #'derl-shell--nodedown)

(defun derl-shell--kill-buffer ()
  "Stop the shell of the buffer being killed."
  (when derl-shell--current
    (derl-shell--stop derl-shell--current)))

;;;; The buffer

(defun derl-shell--send-input (_process text)
  "Hand TEXT, a line typed in the shell buffer, to its shell."
  (let ((session derl-shell--current))
    (if (derl-shell--session-down session)
        (if (y-or-n-p (format "Start a new shell on %s? "
                              (derl-shell--session-node session)))
            (progn (derl-shell--insert session "\n")
                   (derl-shell--start session))
          (message "The shell on %s is gone" (derl-shell--session-node session)))
      (setf (derl-shell--session-input session)
            (concat (derl-shell--session-input session) text "\n"))
      (derl-shell--serve-input session))))

(defun derl-shell-interrupt ()
  "Interrupt the shell's evaluation, as ^G i does in a terminal.
The evaluator is killed, and the shell asks for the next expression:
the Erlang shell keeps its bindings, IEx starts afresh, as its own
interrupt does."
  (interactive nil derl-shell-mode)
  (let* ((session derl-shell--current)
         (shell (derl-shell--session-shell session)))
    (when (and shell (not (derl-shell--session-down session)))
      (let ((erl-self (derl-shell--session-leader session)))
        (erl-exit 'interrupt shell)))))

(defun derl-shell-eof ()
  "Send end of file to the shell's input request."
  (interactive nil derl-shell-mode)
  (let ((session derl-shell--current))
    (when (derl-shell--session-request session)
      (derl-shell--answer-input session 'eof ""))))

(defun derl-shell--fun-arity (fun)
  "The arity of FUN, a fun or an export from the node, or nil."
  (pcase fun
    (`[,_ erl-fun ,(and (pred stringp) bytes)]
     ;; NEW_FUN_EXT: tag, size (4 bytes), then the arity.
     (and (> (length bytes) 5) (aref bytes 5)))
    (`[,_ erl-export ,_ ,_ ,arity] arity)))

(defun derl-shell--expansion (session before)
  "Ask SESSION's node to expand BEFORE, the text before point: (INSERT MATCHES).
As the node's group leader does, an expand function of arity 2
is given no options, which asks OTP 26 and later for sections.
IEx's own expansion is asked for that of its shell (Elixir 1.14 and
later take the shell, whose variables it knows): the function IEx
sets for a group leader of another node, as Emacs is, would expand
for the node's own shell."
  (let* ((node (derl-shell--session-node session))
         (reversed (reverse before))
         (fun (derl-shell--session-expand session))
         (elixir (derl-shell--session-elixir session))
         (result
          (cond ((and (eq (derl-shell--session-kind session) 'elixir)
                      (stringp elixir) (not (version< elixir "1.14")))
                 (derl-call node 'Elixir.IEx.Autocomplete 'expand
                            (list reversed (derl-shell--session-shell session))
                            5))
                ((eq (derl-shell--session-kind session) 'elixir)
                 (derl-call node 'Elixir.IEx.Autocomplete 'expand
                            (list reversed) 5))
                (fun
                 (derl-call node 'erlang 'apply
                            (list fun (if (eql (derl-shell--fun-arity fun) 2)
                                          (list reversed nil)
                                        (list reversed)))
                            5))
                ((derl-shell--session-old-expand session)
                 (derl-call node 'edlin_expand 'expand (list reversed) 5))
                ;; OTP 29's expand/1 gives section titles alone.
                (t (condition-case nil
                       (derl-call node 'edlin_expand 'expand
                                  (list reversed nil) 5)
                     (derl-rpc-error
                      (setf (derl-shell--session-old-expand session) t)
                      (derl-call node 'edlin_expand 'expand
                                 (list reversed) 5)))))))
    (pcase result
      (`[,_ ,insert ,matches]
       (list (condition-case nil (derl-shell--chars insert) (error ""))
             (and (listp matches) (derl-shell--flat-matches matches)))))))

(defun derl-shell--flat-matches (matches)
  "Return MATCHES of an expansion as one list.
OTP 29 groups them in sections, maps whose `elems' hold them."
  (cl-mapcan (lambda (match)
               (if (hash-table-p match)
                   (let ((elems (gethash 'elems match)))
                     (and (listp elems) (derl-shell--flat-matches elems)))
                 (list match)))
             matches))

(defun derl-shell--match-text (match)
  "A completion MATCH from the node as text: name/arity, or the name."
  (pcase match
    ;; OTP 25: {Name, Arity}; OTP 26 and later: {Name, Options}.
    (`[,name ,(and (pred integerp) arity)]
     (format "%s/%s" (derl-shell--chars-or-name name) arity))
    (`[,name ,_] (derl-shell--chars-or-name name))
    (_ (derl-shell--chars-or-name match))))

(defun derl-shell--chars-or-name (term)
  "TERM, a name from the node, as a string."
  (cond ((symbolp term) (symbol-name term))
        (t (condition-case nil (derl-shell--chars term)
             (error (derl-term-to-string term))))))

(defun derl-shell-complete ()
  "Complete the text before point with the node's own expansion.
What can be added is inserted; when there are several candidates
they are listed."
  (interactive nil derl-shell-mode)
  (let* ((session derl-shell--current)
         (mark (process-mark (get-buffer-process (current-buffer))))
         (before (buffer-substring-no-properties
                  (min mark (point)) (point)))
         (answer (derl-shell--expansion session before)))
    (cond ((null answer) (message "No expansion"))
          ((not (string-empty-p (car answer))) (insert (car answer)))
          ((cadr answer)
           (with-output-to-temp-buffer "*Completions*"
             (display-completion-list
              (mapcar #'derl-shell--match-text (cadr answer)))))
          (t (message "No completion")))))

(defvar derl-shell-mode-map
  (let ((map (make-sparse-keymap)))
    (define-key map (kbd "C-c C-c") #'derl-shell-interrupt)
    (define-key map (kbd "C-c C-d") #'derl-shell-eof)
    (define-key map (kbd "TAB") #'derl-shell-complete)
    map)
  "Keys of a node's shell buffer, besides comint's.")

(define-derived-mode derl-shell-mode comint-mode "derl-shell"
  "A node's own shell, run over the distribution.
Lines typed go to the shell when it asks for input; an expression
may take several lines, as in a terminal.

\\{derl-shell-mode-map}"
  (setq-local comint-input-sender #'derl-shell--send-input)
  (setq-local comint-prompt-read-only t)
  (setq-local comint-process-echoes nil)
  ;; IEx colours its values.
  (add-hook 'comint-output-filter-functions #'ansi-color-process-output nil t)
  (setq-local ansi-color-for-comint-mode t)
  (add-hook 'kill-buffer-hook #'derl-shell--kill-buffer nil t)
  (when (fboundp 'derl-knowledge-mode) (derl-knowledge-mode 1)))

(defun derl-shell--make-buffer (node)
  "A new shell buffer for NODE, with the process comint needs."
  (let ((buffer (generate-new-buffer (format "*derl-shell %s*" node))))
    (with-current-buffer buffer
      (derl-shell-mode)
      ;; comint wants a process for its marks; this one carries nothing.
      (let ((process (make-pipe-process :name (buffer-name buffer)
                                        :buffer buffer :noquery t
                                        :coding 'utf-8-unix
                                        :filter #'ignore
                                        :sentinel #'ignore)))
        (set-marker (process-mark process) (point-max))))
    buffer))

;;;; Entry points

(defun derl-shell-session (node &optional kind)
  "The live session of a shell on NODE, started in a buffer if there is none.
KIND, `erlang' or `elixir', chooses the shell of a new session;
by default IEx where the node runs Elixir."
  (setq node (derl--node-symbol node))
  (or (cl-find-if (lambda (s) (and (eq (derl-shell--session-node s) node)
                                   (buffer-live-p (derl-shell--session-buffer s))
                                   (or (null kind)
                                       (eq kind (derl-shell--session-kind s)))))
                  derl-shell--sessions)
      (derl-shell--new node kind)))

(defun derl-shell--new (node kind)
  "Start a new session of a shell of KIND on NODE, in a buffer of its own."
  (let* ((buffer (derl-shell--make-buffer node))
         (session (derl-shell--make-session :node node :kind kind
                                            :buffer buffer)))
    (with-current-buffer buffer
      (setq derl-shell--current session))
    (condition-case err
        (derl-shell--start session)
      (error (kill-buffer buffer)
             (signal (car err) (cdr err))))
    session))

;;;###autoload
(defun derl-shell (node &optional kind)
  "Run NODE's own shell in a buffer: the Erlang shell, or IEx on Elixir nodes.
KIND, `erlang' or `elixir', chooses; by default IEx where the node
runs Elixir.  Interactively, read NODE as the other commands do; with
a prefix argument, also choose KIND.  Each call opens a new
shell, so that several may run at once, to one node or many.
Return the buffer."
  (interactive
   (list (derl-read-node "Shell on node" (derl-default-node))
         (and current-prefix-arg
              (intern (completing-read "Shell: " '("erlang" "elixir") nil t)))))
  (let* ((node (derl--node-symbol node))
         (session (derl-with-progress (format "Starting a shell on %s..." node)
                    (derl-shell--new node kind))))
    (derl-note-node-result node t)
    (when (called-interactively-p 'interactive)
      (pop-to-buffer (derl-shell--session-buffer session)))
    (derl-shell--session-buffer session)))

(defun derl-shell-eval (session text callback)
  "Feed TEXT to SESSION's shell as if typed; CALLBACK gets what it printed.
TEXT is shown in the shell buffer as input; what the shell prints
from when it reads TEXT until it asks for input again, having read
all of it (the values, or the error), goes to CALLBACK as one
string, without its prompts."
  (let ((buffer (derl-shell--session-buffer session)))
    (setf (derl-shell--session-collect session) (list callback 'fed))
    (with-current-buffer buffer
      (let ((process (get-buffer-process buffer)))
        (save-excursion
          (goto-char (process-mark process))
          (insert text)
          (comint-send-input))))))

(provide 'derl-shell)

;;; derl-shell.el ends here

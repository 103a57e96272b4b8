;;; derl-mode.el --- Evaluate and compile from Erlang and Elixir buffers  -*- lexical-binding: t; -*-

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

;; derl-mode is a minor mode for Erlang and Elixir source buffers that
;; works with a live node, as CIDER does for Clojure:
;;
;;   C-x C-e, C-c C-e   evaluate the expression before point
;;   C-c C-r            evaluate the region
;;   C-c C-k            compile the buffer's module on the node and load it
;;   C-c C-z            switch between the buffer and the node's shell
;;
;; Evaluation happens in the session of the node's own shell (see
;; derl-shell.el): the text is typed into the shell buffer, so the
;; shell's bindings are the buffer's, and the other way round.  The
;; value shows in the echo area and after the expression; a long one
;; in *derl-result*.
;;
;; Compiling sends the buffer's text, never a file: the node writes it
;; to a directory of its own under its temporary directory, compiles it
;; with its own compiler (compile:file for Erlang, Elixir's
;; Kernel.ParallelCompiler), loads the result and deletes the copy.
;; Errors and warnings go to *derl-compile*, at the buffer's lines, for
;; `next-error'.
;;
;; The node of a buffer is read the first time (as the other commands
;; read one) and remembered for the buffer's project.
;;
;; Turn it on with
;;   (add-hook 'erlang-mode-hook #'derl-mode)
;;   (add-hook 'elixir-mode-hook #'derl-mode)     ; or elixir-ts-mode-hook
;; or, for every .erl, .hrl, .ex and .exs file whatever its major mode:
;;   (add-hook 'find-file-hook #'derl-mode-maybe)

;;; Code:

(require 'cl-lib)
(require 'subr-x)
(require 'ansi-color)
(require 'compile)
(require 'project)
(require 'derl-options)
(require 'derl-conn)
(require 'derl-events)
(require 'derl-rpc)
(require 'derl-commands)
(require 'derl-eval)
(require 'derl-shell)

(declare-function derl-knowledge-forget "derl-node-info" (node &optional module))

(declare-function erlang-mode "erlang" ())

(defcustom derl-mode-compile-timeout 60
  "Seconds \\[derl-mode-compile-buffer] waits for the node to compile."
  :type 'number
  :group 'derl)

(defcustom derl-mode-result-overlay t
  "Non-nil: show an evaluation's value after the expression, too.
The value stays there until the next command."
  :type 'boolean
  :group 'derl)

(defface derl-mode-result
  '((t :inherit shadow :box (:line-width -1)))
  "Face of a value shown after the expression evaluated."
  :group 'derl)

;;;; Which language, which node

(defun derl-mode--kind ()
  "The language of the current buffer: `erlang' or `elixir'."
  (if (or (derived-mode-p 'elixir-mode 'elixir-ts-mode)
          (and buffer-file-name
               (string-match-p "\\.exs?\\'" buffer-file-name)))
      'elixir
    'erlang))

(defvar derl-mode--nodes (make-hash-table :test 'equal)
  "The node of each project: its root directory to a node name.
A buffer outside any project counts its directory as one.")

(defun derl-mode--project-key ()
  "The key of the current buffer's project in `derl-mode--nodes'."
  (let ((project (project-current nil)))
    (expand-file-name (if project (project-root project) default-directory))))

(defun derl-mode-node (&optional ask)
  "The node of the current buffer's project, read the first time.
With ASK non-nil, read it anyway.  The node is read as the other
commands read one, offering the default node, and remembered for
the project (its root, see `project-current'; outside a project,
the buffer's directory)."
  (let ((key (derl-mode--project-key)))
    (or (and (not ask) (gethash key derl-mode--nodes))
        (puthash key
                 (derl-read-node (format "Node for %s"
                                         (abbreviate-file-name key))
                                 (or (gethash key derl-mode--nodes)
                                     (derl-default-node)))
                 derl-mode--nodes))))

;;;###autoload
(defun derl-mode-set-node (node)
  "Make NODE the node of the current buffer's project.
Interactively, read it as the other commands do."
  (interactive
   (list (derl-read-node "Node for this project"
                         (gethash (derl-mode--project-key) derl-mode--nodes))))
  (puthash (derl-mode--project-key) (derl--node-symbol node) derl-mode--nodes))

(defun derl-mode--session (&optional prompted)
  "The session of the shell on the buffer's node, started if there is none.
The shell is the Erlang shell for an Erlang buffer, IEx for Elixir.
With PROMPTED non-nil, a new shell is waited for until it shows its
first prompt, so that text fed to it comes after its banner."
  (let* ((node (derl-mode-node))
         (kind (derl-mode--kind))
         (before derl-shell--sessions)
         (session
          (derl-with-progress (format "Starting a shell on %s..." node)
            (let ((session (derl-shell-session node kind)))
              (when (and prompted (not (memq session before)))
                (derl--wait (lambda () (derl-mode--prompted-p session))
                            derl-shell-start-timeout
                            (format "for the shell on %s to ask for input"
                                    node)))
              session))))
    (derl-note-node-result node t)
    session))

(defun derl-mode--prompted-p (session)
  "Non-nil if SESSION's shell asks for input and its prompt is shown."
  (and (derl-shell--session-request session)
       (with-current-buffer (derl-shell--session-buffer session)
         (let ((mark (process-mark (get-buffer-process (current-buffer))))
               (inhibit-field-text-motion t)) ; the prompt is a field
           (save-excursion
             (goto-char mark)
             (> mark (line-beginning-position)))))))

;;;; The expression before point

(defconst derl-mode--erlang-syntax-table
  (let ((table (make-syntax-table)))
    (modify-syntax-entry '(0 . 127) "." table)
    (modify-syntax-entry '(?a . ?z) "w" table)
    (modify-syntax-entry '(?A . ?Z) "w" table)
    (modify-syntax-entry '(?0 . ?9) "w" table)
    (modify-syntax-entry '(128 . #x3fffff) "w" table)
    (dolist (c '(?_ ?@)) (modify-syntax-entry c "_" table))
    (dolist (c '(?\s ?\t ?\f ?\r)) (modify-syntax-entry c " " table))
    (modify-syntax-entry ?\n ">" table)
    (modify-syntax-entry ?% "<" table)
    (modify-syntax-entry ?\" "\"" table)
    (modify-syntax-entry ?' "\"" table)
    (modify-syntax-entry ?\\ "\\" table)
    (modify-syntax-entry ?$ "/" table)
    (modify-syntax-entry ?\( "()" table)
    (modify-syntax-entry ?\) ")(" table)
    (modify-syntax-entry ?\[ "(]" table)
    (modify-syntax-entry ?\] ")[" table)
    (modify-syntax-entry ?{ "(}" table)
    (modify-syntax-entry ?} "){" table)
    table)
  "How `derl-mode' reads Erlang to find where an expression starts.")

(defconst derl-mode--elixir-syntax-table
  (let ((table (copy-syntax-table derl-mode--erlang-syntax-table)))
    (modify-syntax-entry ?% "." table)
    (modify-syntax-entry ?# "<" table)
    (modify-syntax-entry ?$ "." table)
    (dolist (c '(?? ?!)) (modify-syntax-entry c "_" table))
    table)
  "How `derl-mode' reads Elixir to find where an expression starts.")

(defconst derl-mode--stops
  '((erlang :runs ("->" "||" "<-" "<=" "|" "=>" ":=" "::")
            :openers ("begin" "case" "if" "receive" "try")
            :middles ("of" "when" "after" "catch"))
    (elixir :runs ("->" "<-" "|" "=>" "\\\\" "::")
            :openers ("do" "fn")
            :middles ("else" "after" "rescue" "catch" "when")))
  "Per language: operators and keywords before which an expression starts.
:runs are operators that separate expressions, like \",\" and \";\";
:openers open a block that \"end\" closes; :middles are the other
keywords of blocks.")

(defconst derl-mode--elixir-continuation
  (concat "\\(?:|>\\|\\.[^.]\\|\\+\\+\\|--\\|<>\\|&&\\|||\\|===?\\|!==?"
          "\\|=~\\|\\(?:and\\|or\\|in\\)\\_>\\)")
  "An Elixir line starting so continues the line before.")

(defun derl-mode--stop (kind what)
  "Return what ends an expression in language KIND, of the sort WHAT.
WHAT is :runs, :openers or :middles, as in `derl-mode--stops'."
  (plist-get (alist-get kind derl-mode--stops) what))

(defun derl-mode--opener-p (kind word)
  "Non-nil if WORD, just after point, opens a block that end closes in KIND."
  (and (member word (derl-mode--stop kind :openers))
       (save-excursion
         (forward-char (length word))
         (pcase kind
           ;; do: and fn(...) of keyword lists and calls are no blocks.
           ('elixir (not (eq (char-after) ?:)))
           (_ t)))))

(defun derl-mode--erlang-fun-p ()
  "Return non-nil if the word fun after point begins a fun ... end."
  (save-excursion
    (forward-char 3)
    (skip-chars-forward " \t\n")
    (eq (char-after) ?\()))

(defun derl-mode--expression-end (&optional limit)
  "Where the expression before point ends: trailing comments left out.
Do not go back before LIMIT."
  (save-excursion
    (with-syntax-table (if (eq (derl-mode--kind) 'elixir)
                           derl-mode--elixir-syntax-table
                         derl-mode--erlang-syntax-table)
      (let* ((parse-sexp-lookup-properties nil)
             (state (parse-partial-sexp (or limit (point-min)) (point))))
        ;; After a comment's start, as at the end of a commented line.
        (when (nth 4 state)
          (goto-char (nth 8 state)))
        (forward-comment (- (point)))
        (max (point) (or limit (point-min)))))))

(defun derl-mode--expression-bounds ()
  "The bounds (START . END) of the expression before point, or nil.
It is the text back from point to where an expression starts: after
an unbalanced bracket, a separator (a comma, a full stop, an
arrow...) or a keyword that begins a part of a block.  Brackets,
strings, binaries and blocks (case ... end, do ... end) are taken
whole; in Elixir, a new line ends an expression unless it continues
with an operator."
  (let* ((kind (derl-mode--kind))
         (end (derl-mode--expression-end))
         (start nil))
    (save-excursion
      (goto-char end)
      ;; Right after a full stop: the expression before it.
      (when (and (eq kind 'erlang) (eq (char-before) ?.)
                 (not (eq (char-before (1- (point))) ?.)))
        (setq end (1- end))
        (goto-char end))
      (with-syntax-table (if (eq kind 'elixir)
                             derl-mode--elixir-syntax-table
                           derl-mode--erlang-syntax-table)
        (let ((parse-sexp-lookup-properties nil)
              (parse-sexp-ignore-comments t)
              (state (list :start end :blocks 0 :binaries 0)))
          (while (derl-mode--scan-step kind state))
          (setq start (plist-get state :start))))
      (goto-char start)
      (skip-chars-forward " \t\n")
      (setq start (min (point) end)))
    (and (< start end) (cons start end))))

(defun derl-mode--scan-step (kind state)
  "Take one step back over the expression before point, in language KIND.
STATE is a plist: :start, where the expression starts so far,
:blocks and :binaries, how many of those the scan is inside.
Return non-nil if the expression goes on before the new :start."
  (let ((after (point)))
    (forward-comment (- (point)))
    (cond
     ((bobp) nil)
     ;; Elixir: a new line at the top ends the expression unless an
     ;; operator carries it on.
     ((and (eq kind 'elixir) (= (plist-get state :blocks) 0)
           (string-search "\n" (buffer-substring (point) after))
           (not (save-excursion
                  (goto-char (plist-get state :start))
                  (looking-at-p derl-mode--elixir-continuation)))
           (not (eq (syntax-class (syntax-after (1- (point)))) 1)))
      nil)
     (t
      (pcase (syntax-class (syntax-after (1- (point))))
        (4 nil)                         ; an unbalanced opening bracket
        (1 (derl-mode--scan-operators kind state))
        (_ (derl-mode--scan-sexp kind state)))))))

(defun derl-mode--scan-operators (kind state)
  "Step back over the operator characters before point; see `derl-mode--scan-step'.
KIND is the language, STATE the scan's."
  (let* ((run-end (point))
         (run (progn (skip-syntax-backward ".")
                     (buffer-substring (point) run-end)))
         (stop (derl-mode--run-stops
                kind run run-end
                (lambda ()
                  (plist-put state :binaries
                             (1+ (plist-get state :binaries))))
                (lambda ()
                  (let ((binaries (plist-get state :binaries)))
                    (if (> binaries 0)
                        (progn (plist-put state :binaries (1- binaries))
                               nil)
                      t)))
                (lambda () (or (> (plist-get state :blocks) 0)
                               (> (plist-get state :binaries) 0))))))
    (unless stop
      (plist-put state :start (point))
      t)))

(defun derl-mode--scan-sexp (kind state)
  "Step back over the word, string or brackets before point.
See `derl-mode--scan-step'; KIND is the language, STATE the scan's."
  (let ((here (point)))
    (condition-case nil
        (progn
          (backward-sexp)
          (let* ((word (buffer-substring (point) here))
                 (blocks (plist-get state :blocks))
                 (go-on
                  (cond
                   ((string= word "end")
                    (plist-put state :blocks (1+ blocks))
                    t)
                   ((or (derl-mode--opener-p kind word)
                        (and (eq kind 'erlang) (string= word "fun")
                             (derl-mode--erlang-fun-p)))
                    (when (> blocks 0)
                      (plist-put state :blocks (1- blocks))
                      t))
                   (t (not (and (= blocks 0)
                                (member word
                                        (derl-mode--stop kind :middles))))))))
            (when go-on
              (plist-put state :start (point))
              t)))
      (scan-error nil))))

(defun derl-mode--run-stops (kind run run-end open close inside)
  "Non-nil if RUN, operator characters ending at RUN-END, stops the scan.
KIND is the language.  OPEN and CLOSE are called for each >> and <<
in RUN, from its end: CLOSE returns non-nil when its << is unbalanced.
INSIDE returns non-nil when the scan is inside a block or binary,
where separators do not stop it."
  (let ((full-stop (and (eq kind 'erlang)
                        (string-suffix-p "." run)
                        (not (string-suffix-p ".." run))
                        (save-excursion
                          (goto-char run-end)
                          (or (eobp) (memq (char-after) '(?\s ?\t ?\n ?%))))))
        (stop nil)
        (i (length run)))
    (when (eq kind 'erlang)
      (while (and (not stop) (>= i 2))
        (let ((pair (substring run (- i 2) i)))
          (cond ((string= pair ">>") (funcall open) (setq i (- i 2)))
                ((string= pair "<<") (setq stop (funcall close)
                                           i (- i 2)))
                (t (setq i (1- i)))))))
    (or full-stop stop
        (and (not (funcall inside))
             (or (string-match-p "[,;]" run)
                 (member run (derl-mode--stop kind :runs)))))))

;;;; Evaluating

(defvar-local derl-mode--overlay nil
  "The overlay that shows the last value, or nil.")

(defun derl-mode--remove-overlay ()
  "Remove the value shown after the expression; run once, before a command."
  (when (overlayp derl-mode--overlay)
    (delete-overlay derl-mode--overlay))
  (setq derl-mode--overlay nil)
  (remove-hook 'pre-command-hook #'derl-mode--remove-overlay t))

(defun derl-mode--show-overlay (buffer position text)
  "Show TEXT, a value, after POSITION in BUFFER until the next command."
  (when (buffer-live-p buffer)
    (with-current-buffer buffer
      (derl-mode--remove-overlay)
      (let* ((line (car (split-string text "\n")))
             (overlay (make-overlay position position nil t)))
        (overlay-put overlay 'derl-mode-result text)
        (overlay-put overlay 'after-string
                     (concat " " (propertize
                                  (concat "=> " line
                                          (if (string-search "\n" text) " ..." ""))
                                  'face 'derl-mode-result)))
        (setq derl-mode--overlay overlay)
        (add-hook 'pre-command-hook #'derl-mode--remove-overlay nil t)))))

(defun derl-mode--show (kind text heading)
  "Show TEXT, a value printed by a shell of KIND, as `derl-eval-show' does.
HEADING is the first line of *derl-result*, as a comment."
  (cond ((eq kind 'erlang) (derl-eval-show text heading))
        ((and (not (string-search "\n" text))
              (<= (length text) derl-eval-max-inline-length))
         (message "%s" text))
        (t
         (with-current-buffer (get-buffer-create "*derl-result*")
           (let ((inhibit-read-only t))
             (erase-buffer)
             (insert "# " heading "\n" text "\n")
             (if (fboundp 'elixir-mode) (funcall 'elixir-mode)
               (fundamental-mode))
             (setq buffer-read-only t)
             (goto-char (point-min)))
           (display-buffer (current-buffer))
           (message "%s  (all of it in *derl-result*)"
                    (car (split-string text "\n")))))))

(defun derl-mode--input (kind text)
  "TEXT as the shell of KIND is to read it: a full stop ends Erlang's."
  (let ((text (string-trim text)))
    (if (and (eq kind 'erlang) (not (string-suffix-p "." text)))
        (concat text ".")
      text)))

(defun derl-mode--result-text (printed)
  "PRINTED, what a shell printed, as a value to show."
  (let ((text (string-trim (ansi-color-filter-apply printed))))
    (if (string-empty-p text) "(nothing printed)" text)))

(defun derl-mode-eval (text &optional position callback)
  "Evaluate TEXT in the session of the buffer's node's shell.
TEXT is typed into the shell buffer (for Erlang, ended by a full
stop if it has none), so it shares the shell's bindings.  The value
is shown in the echo area, and after POSITION in the current buffer
when that is non-nil and `derl-mode-result-overlay' is; long values
go to *derl-result*.  CALLBACK, when non-nil, is called with the
text shown.  Return at once: the value comes when the shell has
printed it."
  (let* ((kind (derl-mode--kind))
         (session (derl-mode--session t))
         (input (derl-mode--input kind text))
         (buffer (current-buffer))
         (where (and position (copy-marker position)))
         (heading (format "%s on %s" (car (split-string input "\n"))
                          (derl-shell--session-node session))))
    (derl-shell-eval
     session input
     (lambda (printed)
       (let ((value (derl-mode--result-text printed)))
         (when (and where derl-mode-result-overlay
                    (marker-buffer where))
           (derl-mode--show-overlay buffer (marker-position where) value))
         (derl-mode--show kind value heading)
         (when callback (funcall callback value)))))
    session))

(defun derl-mode-eval-last-expression ()
  "Evaluate the expression before point in the node's shell session.
The value shows in the echo area and after the expression.  The
expression starts after an unbalanced bracket, a separator (a
comma, a full stop, ->...) or a keyword such as of or do; brackets,
strings and blocks (case ... end, do ... end) are taken whole."
  (interactive nil derl-mode)
  (let ((bounds (or (derl-mode--expression-bounds)
                    (user-error "No expression before point"))))
    (derl-mode-eval (buffer-substring-no-properties (car bounds) (cdr bounds))
                    (cdr bounds))))

(defun derl-mode-eval-region (start end)
  "Evaluate the region from START to END in the node's shell session.
The region may hold several expressions; what the shell printed for
all of them is shown."
  (interactive "r" derl-mode)
  (let ((end (save-excursion (goto-char end)
                             (derl-mode--expression-end start))))
    (when (>= start end)
      (user-error "The region is empty"))
    (derl-mode-eval (buffer-substring-no-properties start end) end)))

;;;; Compiling

(defconst derl-mode--compile-program "
(fun() ->
Text = fun(Chars) ->
           case unicode:characters_to_binary(Chars) of
               B when is_binary(B) -> B;
               _ -> unicode:characters_to_binary(io_lib:format(\"~tp\", [Chars]))
           end
       end,
Env = fun(Var, Else) ->
          case os:getenv(Var) of
              false -> Else;
              \"\" -> Else;
              Value -> Value
          end
      end,
Dir = filename:join(Env(\"TMPDIR\", Env(\"TEMP\", Env(\"TMP\", \"/tmp\"))),
                    \"derl-\" ++ Tag),
File = filename:join(Dir, Name),
Where = fun({L, C}) when is_integer(L), is_integer(C) -> {L, C};
           (L) when is_integer(L) -> {L, 0};
           (_) -> {0, 0}
        end,
Which = fun(F) when is_list(F); is_binary(F) ->
                case filename:absname(unicode:characters_to_list(F))
                    =:= filename:absname(File) of
                    true -> buffer;
                    false -> Text(F)
                end;
           (_) -> buffer
        end,
Format = fun(M, D) ->
             try Text(M:format_error(D))
             catch _:_ -> Text(io_lib:format(\"~tp\", [D]))
             end
         end,
ErlDiags = fun(Severity, List) ->
               [begin {L, C} = Where(Loc),
                      {Severity, Which(F), L, C, Format(M, D)}
                end || {F, Ds} <- List, {Loc, M, D} <- Ds]
           end,
Erlang = fun() ->
    Options = [binary, return_errors, return_warnings | [{i, I} || I <- Includes]],
    case compile:file(File, Options) of
        {ok, Mod, Bin, Ws} ->
            code:purge(Mod),
            case code:load_binary(Mod, LoadAs, Bin) of
                {module, Mod} -> {ok, [Mod], ErlDiags(warning, Ws)};
                {error, Why} ->
                    {error, [Mod],
                     [{error, buffer, 0, 0,
                       Text(io_lib:format(\"cannot load ~w: ~tp\", [Mod, Why]))}
                      | ErlDiags(warning, Ws)]}
            end;
        {error, Es, Ws} -> {error, [], ErlDiags(error, Es) ++ ErlDiags(warning, Ws)};
        error -> {error, [], []}
    end
end,
ExOne = fun(Severity, {F, P, M}) ->
                {L, C} = Where(P),
                {Severity, Which(F), L, C, Text(M)};
           (Severity, #{message := M} = D) ->
                {L, C} = Where(maps:get(position, D, 0)),
                {maps:get(severity, D, Severity), Which(maps:get(file, D, nil)),
                 L, C, Text(M)}
        end,
ExAll = fun(Severity, L) when is_list(L) -> [ExOne(Severity, D) || D <- L];
           (Severity, #{} = Map) ->
                [ExOne(Severity, D) || L <- maps:values(Map), is_list(L), D <- L]
        end,
%% Elixir 1.15 and later log each error, then fail the file with a
%% CompileError of no line that says so: not an error of its own.
ExErrors = fun(Es) ->
                   Own = [E || {_, _, _, _, M} = E <- ExAll(error, Es),
                               binary:match(M, <<\"(errors have been logged)\">>)
                                   =:= nomatch],
                   case Own of
                       [] -> ExAll(error, Es);
                       _ -> Own
                   end
           end,
Elixir = fun() ->
    case code:ensure_loaded('Elixir.Kernel.ParallelCompiler') of
        {module, _} -> ok;
        _ -> throw(no_elixir)
    end,
    Conflict = 'Elixir.Code':get_compiler_option(ignore_module_conflict),
    'Elixir.Code':put_compiler_option(ignore_module_conflict, true),
    try 'Elixir.Kernel.ParallelCompiler':compile([Text(File)]) of
        {ok, Mods, Ws} -> {ok, Mods, ExAll(warning, Ws)};
        {error, Es, Ws} -> {error, [], ExErrors(Es) ++ ExAll(warning, Ws)}
    after
        'Elixir.Code':put_compiler_option(ignore_module_conflict, Conflict)
    end
end,
try
    ok = file:make_dir(Dir),
    _ = file:change_mode(Dir, 8#700),
    try
        ok = file:write_file(File, Source),
        {Status, Modules, Diags} = case Kind of
                                       erlang -> Erlang();
                                       elixir -> Elixir()
                                   end,
        {Status, Modules, Diags, Text(File)}
    after
        _ = file:delete(File),
        _ = file:del_dir(Dir)
    end
catch
    throw:no_elixir ->
        {error, [], [{error, buffer, 0, 0, <<\"the node runs no Elixir\">>}],
         Text(File)};
    Class:Reason ->
        {error, [], [{error, buffer, 0, 0,
                      Text(io_lib:format(\"~w: ~tp\", [Class, Reason]))}],
         Text(File)}
end
end)().
"
  "The program that compiles and loads the buffer's text on the node.
Its variables: Source (the text, a binary), Name (the file name the
node gives it), Includes (include directories), Kind (`erlang' or
`elixir'), LoadAs (what code:which is to say for an Erlang module)
and Tag (a random name for the temporary directory).  It returns
{Status, Modules, Diagnostics, TemporaryFile}: Status ok or error,
each diagnostic {Severity, File or buffer, Line, Column, Text}.")

(defun derl-mode--compile-bindings (kind text name includes load-as)
  "The variables of `derl-mode--compile-program', as an orddict.
KIND, TEXT, NAME, INCLUDES and LOAD-AS are its Kind, Source, Name,
Includes and LoadAs."
  (list (vector 'Includes includes)
        (vector 'Kind kind)
        (vector 'LoadAs load-as)
        (vector 'Name name)
        (vector 'Source (erl-binary (encode-coding-string text 'utf-8-unix)))
        (vector 'Tag (format "%s-%06x" (emacs-pid) (random #xffffff)))))

(defun derl-mode--text (term)
  "TERM, UTF-8 text from the node, as a string."
  (decode-coding-string (if (erl-binaryp term) (erl-binary-string term) term)
                        'utf-8))

(defun derl-mode--message (kind text temporary name)
  "The compiler's TEXT, of KIND, said of NAME rather than TEMPORARY.
Elixir's errors lose their stack trace and their file:line prefix."
  (let ((text (string-trim-right
               (string-replace temporary name (derl-mode--text text)))))
    (if (and (eq kind 'elixir)
             (string-match "\\`\\*\\* (\\([^)]+\\)) \\(?:[^ \n]+:[0-9]+\\(?::[0-9]+\\)?: \\)?\\(.*\\)"
                           text))
        (format "%s: %s" (match-string 1 text) (match-string 2 text))
      text)))

(defun derl-mode-compile (node kind text file &optional includes)
  "Compile TEXT, the source of FILE, on NODE; load its modules.
KIND is `erlang' or `elixir'.  Nothing but TEXT goes to the node:
it writes TEXT to a file of its own under its temporary directory,
compiles it with its compiler, loads the modules and deletes the
file.  INCLUDES are directories, as the node sees them, where
Erlang's -include looks.  Return (STATUS MODULES DIAGNOSTICS):
STATUS `ok' or `error', MODULES those loaded, and each diagnostic
\(SEVERITY FILE LINE COLUMN TEXT): SEVERITY `error' or `warning',
FILE nil for TEXT itself or the file named, COLUMN 0 when not known."
  (let* ((name (file-name-nondirectory file))
         (result (derl-call
                  node 'erl_eval 'expr
                  (list derl-eval--run-program
                        (list (vector 'Bindings
                                      (derl-mode--compile-bindings
                                       kind text name includes
                                       (file-local-name file)))
                              (vector 'Program derl-mode--compile-program)))
                  derl-mode-compile-timeout)))
    (pcase result
      (`[value [value [,status ,modules ,diagnostics ,temporary] ,_] ,_]
       (let ((temporary (derl-mode--text temporary)))
         (list status modules
               (sort
                (mapcar (lambda (d)
                          (pcase-let ((`[,severity ,where ,line ,column ,text] d))
                            (list (if (eq severity 'error) 'error 'warning)
                                  (if (eq where 'buffer) nil
                                    (derl-mode--text where))
                                  line column
                                  (derl-mode--message kind text temporary
                                                      name))))
                        diagnostics)
                (lambda (a b) (< (nth 2 a) (nth 2 b)))))))
      (_ (signal 'derl-error
                 (list (format "Unexpected answer from %s: %s" node
                               (derl-term-to-string result))))))))

(defun derl-mode--includes (file)
  "Return the include directories of FILE: its own and ../include."
  (let ((dir (file-local-name (file-name-directory (expand-file-name file)))))
    (list dir (expand-file-name "../include" dir))))

(defvar-local derl-mode--current-diagnostic nil
  "In *derl-compile*: where the diagnostic last visited begins, or nil.")

(defun derl-mode--report (node source file outcome)
  "Show OUTCOME of compiling SOURCE, a buffer visiting FILE, on NODE.
The report is in *derl-compile*, in `compilation-mode', each
diagnostic on a line FILE:LINE:COLUMN: that \\[next-error] visits
in SOURCE itself, saved or not.  Return the buffer."
  (pcase-let ((`(,status ,modules ,diagnostics) outcome))
    (let ((buffer (get-buffer-create "*derl-compile*"))
          (errors (cl-count 'error diagnostics :key #'car))
          (warnings (cl-count 'warning diagnostics :key #'car)))
      (with-current-buffer buffer
        (let ((inhibit-read-only t))
          (erase-buffer)
          (compilation-mode)
          ;; The diagnostics are visited in SOURCE, whose text may be
          ;; in no file yet: see `derl-mode--next-error'.
          (setq-local next-error-function #'derl-mode--next-error)
          (setq derl-mode--current-diagnostic nil)
          (insert (format "Compiling %s on %s\n\n" file node))
          (dolist (d diagnostics)
            (pcase-let ((`(,severity ,where ,line ,column ,text) d))
              (insert (propertize
                       (format "%s:%d:%s %s: %s"
                               (or where file) line
                               (if (> column 0) (format "%d:" column) "")
                               (if (eq severity 'error) "Error" "Warning")
                               text)
                       'derl-mode-locus
                       (list (if where nil source) (or where file)
                             line column))
                      "\n")))
          (insert "\n"
                  (if (eq status 'ok)
                      (format "Loaded %s" (mapconcat #'symbol-name modules ", "))
                    "Compilation failed")
                  (format "; %d error%s, %d warning%s.\n"
                          errors (if (= errors 1) "" "s")
                          warnings (if (= warnings 1) "" "s")))
          (goto-char (point-min))))
      (setq next-error-last-buffer buffer)
      buffer)))

(defun derl-mode--diagnostics ()
  "Where the diagnostics of the current *derl-compile* begin, in order."
  (let ((positions nil)
        (pos (point-min)))
    (while (setq pos (text-property-not-all pos (point-max)
                                            'derl-mode-locus nil))
      (push pos positions)
      (setq pos (or (next-single-property-change pos 'derl-mode-locus)
                    (point-max))))
    (nreverse positions)))

(defun derl-mode--next-error (n &optional reset)
  "Visit the Nth next diagnostic of *derl-compile*: `next-error-function'.
RESET non-nil starts from the first; N 0 visits the one at point."
  (let* ((positions (or (derl-mode--diagnostics)
                        (user-error "No errors or warnings")))
         (current (and (not reset) derl-mode--current-diagnostic
                       (cl-position derl-mode--current-diagnostic positions)))
         (index (cond ((= n 0)
                       (or (cl-position (line-beginning-position) positions)
                           (user-error "No error or warning here")))
                      (current (+ current n))
                      ((> n 0) (1- n))
                      (t (user-error "No earlier error or warning")))))
    (unless (and (>= index 0) (< index (length positions)))
      (user-error "No more errors or warnings"))
    (let ((pos (nth index positions)))
      (setq derl-mode--current-diagnostic pos)
      (goto-char pos)
      (dolist (window (get-buffer-window-list (current-buffer) nil t))
        (set-window-point window pos))
      (pcase-let ((`(,source ,file ,line ,column)
                   (get-text-property pos 'derl-mode-locus)))
        (let ((buffer (cond ((buffer-live-p source) source)
                            ((file-exists-p file) (find-file-noselect file))
                            (t (user-error "No buffer or file %s" file)))))
          (pop-to-buffer buffer)
          (widen)
          (goto-char (point-min))
          (forward-line (1- line))
          ;; The compilers count characters, a tab as one.
          (when (> column 0)
            (forward-char (min (1- column)
                               (- (line-end-position) (point))))))))))

(defun derl-mode-compile-buffer ()
  "Compile the buffer's module on its node, from the buffer's text, and load it.
The text is compiled as it is, saved or not, with the node's own
compiler, so the node may run on another machine.  Errors and
warnings go to *derl-compile*, at the buffer's lines: \\[next-error]
visits them.  Erlang's -include looks in the file's directory and
../include, as the node sees them.  Return what `derl-mode-compile'
returns."
  (interactive nil derl-mode)
  (let* ((node (derl-mode-node))
         (kind (derl-mode--kind))
         (file (or buffer-file-name
                   (expand-file-name
                    (concat (file-name-sans-extension (buffer-name))
                            (if (eq kind 'elixir) ".ex" ".erl")))))
         (outcome (derl-with-progress (format "Compiling on %s..." node)
                    (derl-mode-compile node kind
                                       (save-restriction
                                         (widen)
                                         (buffer-substring-no-properties
                                          (point-min) (point-max)))
                                       file
                                       (and (eq kind 'erlang)
                                            (derl-mode--includes file)))))
         (buffer (derl-mode--report node (current-buffer) file outcome)))
    (derl-note-node-result node t)
    ;; What completion and M-. know of the modules loaded is stale.
    (when (fboundp 'derl-knowledge-forget)
      (dolist (module (nth 1 outcome))
        (derl-knowledge-forget node module)))
    (when (nth 2 outcome)
      (display-buffer buffer))
    (message "%s" (with-current-buffer buffer
                    (save-excursion
                      (goto-char (point-max))
                      (buffer-substring-no-properties
                       (line-beginning-position 0) (line-end-position 0)))))
    outcome))

;;;; Switching

(defvar-local derl-mode--source-buffer nil
  "In a shell buffer: the source buffer \\[derl-mode-switch-to-shell] came from.")

(defun derl-mode-switch-to-shell (&optional ask)
  "Show the shell of the buffer's node, started if there is none.
With a prefix argument ASK, read the project's node again first.
In the shell, \\[derl-mode-switch-to-source] comes back."
  (interactive "P" derl-mode)
  (when ask
    (derl-mode-node t))
  (let ((source (current-buffer))
        (shell (derl-shell--session-buffer (derl-mode--session))))
    (with-current-buffer shell
      (setq derl-mode--source-buffer source))
    (pop-to-buffer shell)
    (goto-char (point-max))
    shell))

(defun derl-mode-switch-to-source ()
  "Go back to the source buffer that last switched to this shell."
  (interactive nil derl-shell-mode)
  (if (buffer-live-p derl-mode--source-buffer)
      (pop-to-buffer derl-mode--source-buffer)
    (user-error "No source buffer switched to this shell")))

(define-key derl-shell-mode-map (kbd "C-c C-z") #'derl-mode-switch-to-source)

;;;; The mode

(defvar derl-mode-map
  (let ((map (make-sparse-keymap)))
    (define-key map (kbd "C-x C-e") #'derl-mode-eval-last-expression)
    (define-key map (kbd "C-c C-e") #'derl-mode-eval-last-expression)
    (define-key map (kbd "C-c C-r") #'derl-mode-eval-region)
    (define-key map (kbd "C-c C-k") #'derl-mode-compile-buffer)
    (define-key map (kbd "C-c C-z") #'derl-mode-switch-to-shell)
    map)
  "Keys of `derl-mode'.")

;;;###autoload
(define-minor-mode derl-mode
  "Evaluate and compile an Erlang or Elixir buffer on a live node.
Expressions are evaluated in the session of the node's own shell
\(see `derl-shell'), so that the buffer and the shell share their
bindings; the value shows in the echo area and after the
expression, a long one in *derl-result*.  Compiling sends the
buffer's text to the node, which compiles and loads it with its own
compiler; errors and warnings go to *derl-compile*, for
\\[next-error].

The node is read the first time a command needs it and remembered
for the buffer's project; \\[derl-mode-set-node] changes it, and so
does \\[universal-argument] \\[derl-mode-switch-to-shell].

\\{derl-mode-map}"
  :lighter " derl"
  :keymap derl-mode-map
  :group 'derl
  (unless derl-mode
    (derl-mode--remove-overlay)))

;; define-minor-mode makes the hook an option, but of no group.
(custom-add-to-group 'derl 'derl-mode-hook 'custom-variable)

;;;###autoload
(defun derl-mode-maybe ()
  "Turn on `derl-mode' in a buffer visiting an Erlang or Elixir file.
Those are .erl, .hrl, .ex and .exs files, whatever their major mode:
for `find-file-hook'."
  (when (and buffer-file-name
             (string-match-p "\\.\\(?:erl\\|hrl\\|exs?\\)\\'" buffer-file-name))
    (derl-mode 1)))

(provide 'derl-mode)

;;; derl-mode.el ends here

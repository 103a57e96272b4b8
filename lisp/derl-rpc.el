;;; derl-rpc.el --- Remote procedure calls to Erlang nodes  -*- lexical-binding: t; -*-

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

;; Calls to functions on Erlang and Elixir nodes, through the `rex'
;; server every node runs: the request {Self, {call, M, F, A, GL}}
;; gets the reply {rex, Result}, Result being {badrpc, Reason} when the
;; call raised.
;;
;; Distel's API, with Distel's signatures and wire form, for code that
;; runs inside an Erlang-style process:
;;
;;   (erl-rpc K KARGS NODE M F A)    call, then (apply K RESULT KARGS)
;;   (erl-send-rpc NODE M F A)       send the request from `erl-self'
;;   (erl-rpc-receive K KARGS)       receive its reply
;;
;; And for any elisp code, in the manner of `jsonrpc-request':
;;
;;   (derl-call NODE M F ARGS &optional TIMEOUT LOSSLESS)
;;       wait for the result; signal `derl-rpc-error' or `derl-timeout'
;;   (derl-call-async NODE M F ARGS CALLBACK &key ...)
;;       return at once; CALLBACK gets the result later
;;
;; `derl-call' asks rex as `gen_server:call' does: {'$gen_call',
;; {Pid, Ref}, {call, M, F, A, GL}}, answered {Ref, Result}.  Each call
;; gets its own pid to receive the reply (a receiver, no process: see
;; `derl--make-receiver') and a fresh reference, and takes as its reply
;; only a message that carries that reference and came from the node
;; called, as OTP's erpc does: anything else sent to the pid is logged
;; as lost, never taken for a result.  The pid is forgotten once the
;; call is over (answered, failed, timed out or quit): a late reply
;; finds no one and can never be taken for the reply to a later call.

;;; Code:

(require 'cl-lib)
(require 'erlext)
(require 'erl)
(require 'derl-options)
(require 'derl-conn)
(require 'derl-events)
(require 'derl-connect)
(require 'derl-deliver)
(require 'derl-send)

(define-error 'derl-rpc-error "Remote call failed" 'derl-error)

(defcustom derl-call-timeout 30
  "Seconds `derl-call' waits for a reply by default."
  :type 'number
  :group 'derl)

;;;; Distel's API

(defun erl-rpc (k kargs node m f a)
  "Call {M,F,A} on NODE and deliver the result to the function K.
The first argument to K is the result from the RPC, followed by the
elements of KARGS.  K runs inside a process of its own."
  (erl-spawn
   (erl-send-rpc node m f a)
   (erl-rpc-receive k kargs)))

(defun erl-send-rpc (node mod fun args)
  "Send an RPC request on NODE to apply(MOD, FUN, ARGS).
The reply will be sent back as an asynchronous message of the form:
    [rex Result]
On an error, Result will be [badrpc Reason]."
  (erl-send (vector 'rex node)
            (vector erl-self (vector 'call mod fun args (erl-group-leader)))))

(defun erl-rpc-receive (k kargs)
  "Receive the reply to an `erl-rpc' and call K with it and KARGS."
  (erl-receive (k kargs)
	       ((['rex reply] (apply k reply kargs)))))

;;;; Calls for elisp code

;; A call is one record, sent from a receiver pid of its own.
;; `derl-call' waits for the record's outcome; `derl-call-async' hands
;; the outcome to callbacks.  Little else is made per call: a loop of
;; calls makes little garbage for Emacs to collect.

(cl-defstruct (derl-rpc--call (:constructor derl-rpc--make-call
                                            (node module function args
                                                  lossless))
                              (:copier nil))
  "A call waiting for its reply."
  node module function args lossless pid
  (ref nil :documentation "The reference its reply must carry.")
  (conn nil :documentation "The connection it was sent over.")
  (callback nil :documentation "Called with the result; nil in `derl-call'.")
  (on-error nil :documentation "Called with the error condition.")
  timer
  (outcome nil :documentation "Without CALLBACK: (ok . RESULT) or
\(error . CONDITION) once the call is over."))

(defvar derl-rpc--pending (make-hash-table :test 'eq)
  "Calls waiting for their reply, by themselves.")

(defun derl-rpc--composed (outer-module outer-function module function args)
  "A rex request for OUTER-MODULE:OUTER-FUNCTION(apply(MODULE, FUNCTION, ARGS)).
It goes through erl_eval:expr/5, which every node has, with the
call's parts as variable bindings so that they need no abstract form.
The value is the list (MODULE FUNCTION ARGS) rex is to apply."
  (let ((apply `[call 1 [remote 1 [atom 1 erlang] [atom 1 apply]]
                      ([var 1 M] [var 1 F] [var 1 A])]))
    (list 'erl_eval 'expr
          (list (vector 'call 1
                        (vector 'remote 1 (vector 'atom 1 outer-module)
                                (vector 'atom 1 outer-function))
                        (list apply))
                ;; An orddict: sorted by variable name.
                (list (vector 'A args) (vector 'F function)
                      (vector 'M module))
                'none 'none 'value))))

(defun derl-rpc--request (call)
  "The {call, M, F, A, GroupLeader} rex is to run for CALL.
A LOSSLESS call has the node apply M:F(A) inside
`erlang:term_to_binary', through erl_eval, so that the reply is one
binary that Emacs decodes in lossless mode, without changing how any
other message is decoded."
  (let ((module (derl-rpc--call-module call))
        (function (derl-rpc--call-function call))
        (args (derl-rpc--call-args call)))
    (if (derl-rpc--call-lossless call)
        (apply #'vector 'call
               (append (derl-rpc--composed 'erlang 'term_to_binary
                                           module function args)
                       (list (erl-group-leader))))
      (vector 'call module function args (erl-group-leader)))))

(defun derl-rpc--call-text (call)
  "Return CALL's function in Erlang's form module:function/arity."
  (format "%s:%s/%d" (derl-rpc--call-module call)
          (derl-rpc--call-function call)
          (length (derl-rpc--call-args call))))

(defun derl-rpc--error (call reason)
  "The `derl-rpc-error' condition for CALL's badrpc REASON.
Its data is (TEXT REASON STACK): TEXT readable, REASON the remote
reason (the Erlang error, or the exit reason), STACK the remote
stack trace when there is one."
  (let* ((parts (pcase reason
                  (`[EXIT [,why ,(and (pred listp) stack)]] (list why stack))
                  (`[EXIT ,why] (list why nil))
                  (_ (list reason nil))))
         (why (car parts))
         (stack (cadr parts)))
    (list 'derl-rpc-error
          (format "%s on %s: %s%s"
                  (derl-rpc--call-text call)
                  (derl-rpc--call-node call)
                  (derl--term why)
                  (if stack (format " at %s" (derl--term (car stack))) ""))
          why stack)))

(defun derl-rpc--check-arguments (node module function args)
  "Signal `derl-argument-error' unless NODE, MODULE, FUNCTION, ARGS can be a call."
  (unless (and node (or (symbolp node) (stringp node)))
    (signal 'derl-argument-error
            (list (format "The node must be a symbol name@host, not %S" node))))
  (unless (and module (symbolp module) function (symbolp function))
    (signal 'derl-argument-error
            (list (format "The module and function must be symbols (Erlang \
atoms), not %S and %S" module function))))
  (unless (proper-list-p args)
    (signal 'derl-argument-error
            (list (format "ARGS must be the list of arguments, such as \
(list %S), not %S" args args)))))

(defun derl-rpc--start (call)
  "Send CALL's request from a new receiver pid; connect first if needed.
Connecting first makes a bad node name fail the call at once."
  (let ((node (derl-rpc--call-node call)))
    (puthash call t derl-rpc--pending)
    (let* ((conn (derl--connection node))
           (pid (derl--make-receiver #'derl-rpc--receive call))
           (ref (erl-make-ref))
           (erl-self pid))
      (setf (derl-rpc--call-pid call) pid
            (derl-rpc--call-ref call) ref
            (derl-rpc--call-conn call) conn)
      (erl-dist-reg-send node 'rex
                         (vector '$gen_call (vector pid ref)
                                 (derl-rpc--request call))))))

(defun derl-rpc--receive (call message conn)
  "Take MESSAGE, sent to CALL's pid over CONN, if it is CALL's reply.
That is {Ref, Result} with CALL's own reference, from the node called;
return nil for anything else, which is then logged as lost."
  (when (and (eq (derl-connection-node conn) (derl-rpc--call-node call))
             (vectorp message) (= (length message) 2)
             (equal (aref message 0) (derl-rpc--call-ref call)))
    (derl-rpc--reply call (aref message 1))
    t))

(defun derl-rpc--finish (call)
  "Forget CALL: no reply will be taken for it any more.
Return non-nil if it was still pending."
  (when (gethash call derl-rpc--pending)
    (remhash call derl-rpc--pending)
    (when (derl-rpc--call-timer call)
      (cancel-timer (derl-rpc--call-timer call)))
    (when (derl-rpc--call-pid call)
      (derl--forget-receiver (derl-rpc--call-pid call)))
    t))

(defun derl-rpc--settle (call kind value)
  "End CALL, if it is still pending, with KIND and VALUE.
KIND is `ok' with VALUE the result, or `error' with VALUE a
condition (ERROR-SYMBOL . DATA)."
  (when (derl-rpc--finish call)
    (let ((handler (if (eq kind 'ok) (derl-rpc--call-callback call)
                     (derl-rpc--call-on-error call))))
      (if handler
          (funcall handler value)
        (setf (derl-rpc--call-outcome call) (cons kind value))))))

(defun derl-rpc--fail (call condition)
  "End CALL with CONDITION, a list (ERROR-SYMBOL . DATA)."
  (derl-rpc--settle call 'error condition))

(defun derl-rpc--reply (call reply)
  "End CALL with REPLY, the Result of its {rex, Result}."
  (pcase reply
    (`[badrpc ,reason]
     (derl-rpc--settle call 'error (derl-rpc--error call reason)))
    (_
     (derl-rpc--settle
      call 'ok
      (if (derl-rpc--call-lossless call)
          (let ((erlext-decode-binaries-as 'erl-binary))
            (erlext-binary-to-term
             (if (erl-binaryp reply) (erl-binary-string reply) reply)))
        reply)))))

(defun derl-rpc--nodedown (node &rest _)
  "Fail every call waiting for NODE, which went down.
A call whose connection never came up fails with the reason it did
not, as `derl-connect' would signal it."
  (let ((node (derl--node-symbol node))
        (dead nil))
    (maphash (lambda (call _)
               (when (eq (derl-rpc--call-node call) node)
                 (push call dead)))
             derl-rpc--pending)
    (dolist (call dead)
      (let ((conn (derl-rpc--call-conn call)))
        (derl-rpc--fail
         call
         (if (and conn (null (derl-connection-up-since conn))
                  (derl-connection-failure conn))
             (derl--failure-condition conn)
           (list 'derl-connect-error
                 (format "%s went down during %s" node
                         (derl-rpc--call-text call)))))))))

(add-hook 'erl-nodedown-hook #'derl-rpc--nodedown)

(defun derl-rpc--default-on-error (condition)
  "Report CONDITION of a `derl-call-async' that has no error handler."
  (message "derl-call-async: %s" (error-message-string condition)))

(cl-defun derl-call-async (node module function args callback
                                &key on-error timeout lossless)
  "Call MODULE:FUNCTION(ARGS...) on NODE; call CALLBACK with the result.
Return at once, with a handle for `derl-call-cancel'.  NODE is
connected to when needed.  ARGS is the list of arguments.

CALLBACK is called with the result, decoded with Distel's mapping,
or, when LOSSLESS is non-nil, in lossless mode (see
`erlext-decode-binaries-as').  ON-ERROR is called instead with a
condition (ERROR-SYMBOL . DATA) when the call raised (`derl-rpc-error',
see `derl-call'), the node went down or could not be reached
\(`derl-connect-error' and friends), or TIMEOUT seconds passed
\(`derl-timeout'); by default the error is shown as a message.
Either function runs once, from a timer or process filter."
  (derl-rpc--check-arguments node module function args)
  (let ((call (derl-rpc--make-call (derl--node-symbol node)
                                   module function args lossless)))
    (setf (derl-rpc--call-callback call) callback
          (derl-rpc--call-on-error call) (or on-error
                                             #'derl-rpc--default-on-error))
    (when timeout
      (setf (derl-rpc--call-timer call)
            (run-at-time timeout nil #'derl-rpc--fail call
                         (list 'derl-timeout
                               (format "No reply from %s for %s in %s s"
                                       (derl-rpc--call-node call)
                                       (derl-rpc--call-text call)
                                       timeout)))))
    (condition-case err
        (derl-rpc--start call)
      (error (derl-rpc--fail call err)))
    call))

(defun derl-call-cancel (call)
  "Give up CALL, a handle from `derl-call-async': its reply will be dropped."
  (derl-rpc--finish call))

(defvar derl-rpc--waiting nil
  "The call the innermost `derl-call' waits for.
Its wait is then the innermost too, so `derl-rpc--waiting-done-p'
and `derl-rpc--waiting-text' serve every `derl-call' without a
closure made per call.")

(defun derl-rpc--waiting-done-p ()
  "Non-nil when the call `derl-call' waits for is over."
  (derl-rpc--call-outcome derl-rpc--waiting))

(defun derl-rpc--waiting-text ()
  "What `derl-call' waits for, for its timeout error."
  (format "waiting for %s on %s" (derl-rpc--call-text derl-rpc--waiting)
          (derl-rpc--call-node derl-rpc--waiting)))

(defun derl-call (node module function args &optional timeout lossless)
  "Call MODULE:FUNCTION(ARGS...) on NODE and return the result.
ARGS is the list of arguments.  NODE is connected to when needed.
The result is decoded with Distel's mapping, or with LOSSLESS
non-nil in lossless mode (see `erlext-decode-binaries-as').

Wait at most TIMEOUT seconds (default `derl-call-timeout'), then
signal `derl-timeout'.  When the call raises on the node, signal
`derl-rpc-error' with data (TEXT REASON STACK): a readable TEXT,
the remote REASON and the remote STACK trace (nil for exits).
Connection failures signal the errors of `derl-connect'.

While waiting, timers and process output run as usual, and
\\[keyboard-quit] gives up the call; a reply that comes after the
call is over is dropped."
  (derl-rpc--check-arguments node module function args)
  (let* ((call (derl-rpc--make-call (derl--node-symbol node)
                                    module function args lossless))
         (derl-rpc--waiting call))
    (unwind-protect
        (progn
          (derl-rpc--start call)
          ;; Inside a process the scheduler is on the stack: let the
          ;; event filter run the process that takes the reply.
          (let ((erl-in-scheduler-loop nil))
            (unless (derl-rpc--call-outcome call)
              (derl--wait #'derl-rpc--waiting-done-p
                          (or timeout derl-call-timeout)
                          #'derl-rpc--waiting-text))))
      (derl-rpc--finish call))
    (let ((outcome (derl-rpc--call-outcome call)))
      (if (eq (car outcome) 'ok)
          (cdr outcome)
        (signal (cadr outcome) (cddr outcome))))))

(provide 'derl-rpc)

;;; derl-rpc.el ends here

;;; derl-node.el --- Emacs as an Erlang node that others can reach  -*- lexical-binding: t; -*-

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

;; `derl-start-node' makes Emacs a listening node: the derl module's I/O
;; thread listens at `derl-listen-address' (loopback unless you say
;; otherwise) on `derl-listen-port', registers the node's name with
;; EPMD for as long as the node is up, and runs the acceptor's side of
;; the handshake for nodes that connect.  Their connections join the
;; ones Emacs made itself: the same tables, hooks, trust rules and
;; trace buffers.  A local `net_kernel' process answers `is_auth', so
;; `net_adm:ping' from Erlang gets `pong'.  `derl-stop-node' ends it
;; all: EPMD forgets the name, and the connections that came in close.

;;; Code:

(require 'cl-lib)
(require 'derl-options)
(require 'derl-cookie)
(require 'derl-conn)
(require 'derl-events)
(require 'derl-connect)
(require 'derl-deliver)
(require 'erl)

(defcustom derl-listen-port 0
  "The port Emacs listens on as a node; 0 lets the system choose.
Other nodes find it through EPMD either way."
  :type 'natnum
  :group 'derl)

(defcustom derl-listen-address "127.0.0.1"
  "The address Emacs listens on as a node, a numeric IP address.
The default, the loopback address, lets only nodes on this machine
connect.  \"0.0.0.0\" (or \"::\") accepts connections from
anywhere: anyone who knows the cookie can then make Emacs act."
  :type 'string
  :group 'derl)

(defcustom derl-published nil
  "Non-nil makes Emacs a published node rather than a hidden one.
A hidden node (the default, as Distel's) stays out of `nodes()' and
does not make the nodes it meets connect to each other."
  :type 'boolean
  :group 'derl)

(defcustom derl-listen-max-pending 64
  "Most handshakes with connecting nodes under way at once.
A further connection makes a pending one drop: the oldest from the
newcomer's address when it has one under way, else the oldest, so
that a flood of silent connections cannot keep a good node out.  A node
that connects but does not finish its handshake within
`derl-connect-timeout' seconds is dropped too."
  :type 'natnum
  :group 'derl)

(defcustom derl-listen-max-failures 10
  "Failed handshakes from one address before it is held back.
When connections from one address fail the handshake (a wrong
cookie, a bad message, a close, silence until the timeout; not a drop
for too many under way) this many times within
`derl-listen-failure-window' seconds, further connections from it
are closed at once, unheard, for `derl-listen-hold-back' seconds;
each time it fails so again, twice as long, up to
`derl-listen-max-hold-back'.  Nodes on the same machine share an
address: while a local program is held back, so are they.  0 never
holds an address back."
  :type 'natnum
  :group 'derl)

(defcustom derl-listen-failure-window 10
  "Seconds in which `derl-listen-max-failures' failures hold an address back."
  :type 'number
  :group 'derl)

(defcustom derl-listen-hold-back 1
  "Seconds an address is first held back (see `derl-listen-max-failures')."
  :type 'number
  :group 'derl)

(defcustom derl-listen-max-hold-back 60
  "The longest an address is held back, in seconds.
The hold doubles each time the address fails again; once it has not
failed for this long plus `derl-listen-failure-window', it starts
again from `derl-listen-hold-back'."
  :type 'number
  :group 'derl)

(declare-function derl--module-listen "derl-module"
                  (address port alive our-name cookie epmd-port published
                           options))
(declare-function erl--set-node-creation "erl" (creation))

(defvar derl-node--listener nil
  "While Emacs is a node: (LISTENER-ID REGISTRATION-ID PORT).")

(defvar derl-node--state nil
  "Where the node is: nil, `registering', `up', or (failed KIND REASON).")

(defvar derl-node--incoming nil
  "The ids of the connections that came in while Emacs was a node.")

(defvar derl-node--net-kernel nil
  "The pid of the local `net_kernel' process, while the node is up.")

(defvar derl-node--last-refusal-message 0
  "When refused connections were last reported in *Messages*.")

(defvar derl-node--unreported-refusals 0
  "Refused connections not reported in *Messages* since then.")

(defvar derl-node--last-refusal nil
  "The latest report of refused connections: (TEXT . COUNT).")

(defvar derl-node--refusal-timer nil
  "The timer that reports refusals held back from *Messages*.")

;;;###autoload
(defun derl-node-port ()
  "The port Emacs listens on as a node, or nil when it is not one."
  (and (eq derl-node--state 'up) (nth 2 derl-node--listener)))

;;;###autoload
(defun derl-start-node (&optional name)
  "Make Emacs an Erlang node named NAME that other nodes can connect to.
NAME defaults to `erl-node-name'; another name renames Emacs's node.
Listen at `derl-listen-address' on `derl-listen-port', register with
EPMD and wait until it has answered.  From then on local pids carry
the creation EPMD gave.  Signal `derl-epmd-error' when EPMD cannot be
reached or the name is taken, `derl-error' when the port cannot be
listened on.  Return the node name."
  (interactive
   (list (intern (read-string "Node name: " (symbol-name erl-node-name)))))
  (when derl-node--state
    (signal 'derl-error
            (list (format "Emacs is already the node %s; `derl-stop-node' \
first" erl-node-name))))
  (let* ((node (if name (derl--node-symbol name) erl-node-name))
         (old-name erl-node-name))
    (unless (eq node erl-node-name)
      ;; Through the setter, which renames the pids already made.
      (customize-set-variable 'erl-node-name node))
    (condition-case err
        (derl-node--start)
      (error
       (unless (eq old-name erl-node-name)
         (customize-set-variable 'erl-node-name old-name))
       (signal (car err) (cdr err))))
    (when (called-interactively-p 'interactive)
      (message "Emacs is the node %s, listening at %s port %d"
               erl-node-name derl-listen-address (derl-node-port)))
    erl-node-name))

(defun derl-node--start ()
  "Listen and register as `erl-node-name'; wait for EPMD's answer."
  (derl-node--check-port derl-epmd-port 'derl-epmd-port)
  (unless (and (natnump derl-listen-port) (<= derl-listen-port 65535))
    (signal 'derl-error (list (format "`derl-listen-port' must be 0 to \
65535, not %S" derl-listen-port))))
  (let* ((alive (car (derl--split-node erl-node-name)))
         (cookie (derl--cookie)))
    (derl--ensure-started)
    (setq derl-node--listener
          (unwind-protect
              (derl--module-listen
               derl-listen-address derl-listen-port alive
               (symbol-name erl-node-name) cookie derl-epmd-port
               derl-published
               (list :ticktime-ms (round (* 1000 derl-net-ticktime))
                     :timeout-ms (round (* 1000 derl-connect-timeout))
                     :max-message-size derl-max-message-size
                     :max-send-queue derl-max-send-queue
                     :max-pending (max 1 derl-listen-max-pending)
                     :tls (derl-tls--module-options)
                     :hold (derl-node--hold-back)))
            (clear-string cookie))
          derl-node--state 'registering)
    (pcase-let ((`(,listener ,registration ,_) derl-node--listener))
      (puthash registration
               (cons #'ignore #'derl-node--registration-failed)
               derl--event-handlers)
      (puthash listener (cons #'ignore #'derl-node--listener-failed)
               derl--event-handlers))
    (condition-case err
        (derl--wait (lambda () (not (eq derl-node--state 'registering)))
                    (1+ derl-connect-timeout) "registering with EPMD")
      ((derl-timeout quit)
       (derl-node--close)
       (signal (car err) (cdr err))))
    (pcase derl-node--state
      (`(failed ,kind ,reason)
       (derl-node--close)
       (signal (if (memq kind '(epmd name-in-use host timeout))
                   'derl-epmd-error
                 'derl-error)
               (list (format "%s: %s" erl-node-name reason)))))))

(defun derl-node--check-port (port what)
  "Signal `derl-epmd-error' unless PORT, the value of WHAT, is a port."
  (unless (and (integerp port) (<= 1 port 65535))
    (signal 'derl-epmd-error
            (list (format "`%s' is %S, not a port number (1 to 65535)"
                          what port)))))

;;;###autoload
(defun derl-stop-node ()
  "Stop being a node: EPMD forgets the name, incoming connections close.
Connections Emacs made itself stay up."
  (interactive)
  (let ((was derl-node--state))
    (derl-node--close)
    (dolist (id derl-node--incoming)
      (derl--module-close id))
    (setq derl-node--incoming nil)
    (when (and (called-interactively-p 'interactive) was)
      (message "Emacs is no longer a listening node"))))

(defun derl-node--close ()
  "Close the listener (and so the registration); end `net_kernel'."
  (when derl-node--listener
    (pcase-let ((`(,listener ,registration ,_) derl-node--listener))
      (remhash listener derl--event-handlers)
      (remhash registration derl--event-handlers)
      (when (process-live-p derl--events-process)
        (derl--module-close listener))))
  (when (and derl-node--net-kernel
             (erl-local-pid-alive-p derl-node--net-kernel))
    (erl-send-exit erl-null-pid derl-node--net-kernel 'shutdown 'exit2))
  (setq derl-node--listener nil
        derl-node--state nil
        derl-node--net-kernel nil))

(defun derl-node--registration-failed (kind reason)
  "The registration with EPMD ended or failed: KIND and REASON say why."
  (if (eq derl-node--state 'registering)
      (setq derl-node--state (list 'failed kind reason))
    (unless (eq kind 'local)
      (message "derl: %s: %s" erl-node-name reason))))

(defun derl-node--listener-failed (kind reason)
  "The listener ended: KIND and REASON say why."
  (unless (eq kind 'local)
    (message "derl: %s stopped listening: %s" erl-node-name reason)
    (when (eq derl-node--state 'registering)
      (setq derl-node--state (list 'failed kind reason)))))

;;;; Events

(defun derl-node--handle-event (event)
  "Act on EVENT, one of the module's events about listening."
  (pcase event
    (`(listening ,id ,_port ,creation)
     (when (eql id (car derl-node--listener))
       (erl--set-node-creation creation)
       (setq derl-node--state 'up)
       (derl-node--start-net-kernel)))
    (`(accepted ,id ,name ,creation ,flags)
     (derl-node--accepted id (intern name) creation flags))
    (`(refused ,_id ,kind ,address ,reason ,refused ,closed ,hold-ms ,name)
     (derl-node--refused kind address reason refused closed hold-ms name))
    (`(merged ,id ,into)
     (derl-node--merged id into))))

(dolist (kind '(listening accepted refused merged))
  (setf (alist-get kind derl--event-kind-handlers) #'derl-node--handle-event))

(defun derl-node--accepted (id node creation flags)
  "Connection ID from NODE (CREATION, FLAGS) came in and is up.
It may be the one an attempt of ours merged into: that connection
object then comes up."
  (let ((conn (or (gethash id derl--by-id)
                  (derl--make-connection :node node :id id))))
    (setf (derl-connection-state conn) 'up
          (derl-connection-flags conn) flags
          (derl-connection-creation conn) creation
          (derl-connection-up-since conn) (float-time)
          (derl-connection-incoming conn) t)
    (push id derl-node--incoming)
    (remhash node derl--backoff)
    (puthash node conn derl--connections)
    (puthash id conn derl--by-id)
    (derl--trace conn 'input "** nodeup (the node connected to us)")
    (run-hook-with-args 'erl-nodeup-hook node conn)))

(defun derl-node--merged (id into)
  "Our attempt ID met the connection INTO that its node made to us.
The connection object of ID goes on as INTO: up now if INTO is, else
when INTO comes up."
  (let ((conn (gethash id derl--by-id))
        (other (gethash into derl--by-id)))
    (remhash id derl--by-id)
    (when conn
      (derl--trace conn 'input "** the node connected to us at the same time: going on over its connection")
      (setf (derl-connection-id conn) into)
      (if (null other)
          (puthash into conn derl--by-id)
        ;; Up already: holders of CONN now reach the same connection.
        (setf (derl-connection-state conn) (derl-connection-state other)
              (derl-connection-flags conn) (derl-connection-flags other)
              (derl-connection-creation conn)
              (derl-connection-creation other))
        (puthash (derl-connection-node conn) other derl--connections)))))

(defun derl-node--hold-back ()
  "Return how the module is to hold failing addresses back.
A vector [MAX-FAILURES WINDOW-MS HOLD-MS MAX-HOLD-MS], or nil for never."
  (dolist (option '(derl-listen-failure-window derl-listen-hold-back
                    derl-listen-max-hold-back))
    (unless (and (numberp (symbol-value option))
                 (<= 0 (symbol-value option) 86400))
      (signal 'derl-error (list (format "`%s' must be 0 to 86400 seconds, \
not %S" option (symbol-value option))))))
  (unless (natnump derl-listen-max-failures)
    (signal 'derl-error (list (format "`derl-listen-max-failures' must be \
a natural number, not %S" derl-listen-max-failures))))
  (and (> derl-listen-max-failures 0)
       (vector derl-listen-max-failures
               (round (* 1000 derl-listen-failure-window))
               (round (* 1000 derl-listen-hold-back))
               (round (* 1000 (max derl-listen-hold-back
                                   derl-listen-max-hold-back))))))

(defun derl-node--refusal-text (address reason refused closed hold-ms name)
  "The text of a report of refused connections from ADDRESS.
See `derl-node--refused' for REASON, REFUSED, CLOSED, HOLD-MS and NAME."
  (concat
   (cond ((= refused 1) (format "refused a connection from %s" address))
         ((> refused 1) (format "refused %d connections from %s"
                                refused address))
         (t (format "closed %d connections from %s at once, unheard"
                    closed address)))
   (when (> refused 0)
     (concat (if name
                 (format "%s claiming to be %s"
                         (if (= refused 1) "," "; the last") name)
               (if (= refused 1) "" "; the last"))
             ": " reason))
   (when (and (> refused 0) (> closed 0))
     (format "; %d more closed at once, unheard" closed))
   (if (> hold-ms 0)
       (format "; the address is held back for %.1f s more \
\(`derl-listen-max-failures')" (/ (ceiling hold-ms 100) 10.0))
     (when (> closed 0)
       "; the address was held back (`derl-listen-max-failures')"))))

(defun derl-node--refused (kind address reason refused closed hold-ms name)
  "Report connections from ADDRESS that never got in.
The module reports each address at most once a second: since its last
report, REFUSED connections failed the handshake, the last for
REASON, of KIND, claiming to be the node NAME (a string, or nil when
it named none); CLOSED more were closed at once while the address was
held back, which it still is for HOLD-MS milliseconds.  The report
goes into Emacs's own trace buffer, and into *Messages* at most once a
second.  A name no handshake proved makes no symbol and no buffer."
  (unless (eq kind 'local)
    (let ((text (derl-node--refusal-text address reason refused closed
                                         hold-ms name)))
      (when derl-use-trace-buffer
        (derl-trace-line erl-node-name 'input (concat "** " text)))
      (cl-incf derl-node--unreported-refusals (+ refused closed))
      (setq derl-node--last-refusal (cons text (+ refused closed)))
      (let ((wait (- (+ derl-node--last-refusal-message 1) (float-time))))
        (cond ((<= wait 0) (derl-node--refusal-message))
              ((not derl-node--refusal-timer)
               (setq derl-node--refusal-timer
                     (run-at-time wait nil
                                  #'derl-node--refusal-message))))))))

(defun derl-node--refusal-message ()
  "Say in *Messages* what was refused since the last time."
  (setq derl-node--refusal-timer nil)
  (when (> derl-node--unreported-refusals 0)
    (pcase-let ((`(,text . ,count) derl-node--last-refusal))
      (message "derl: %s%s" text
               (if (> derl-node--unreported-refusals count)
                   (format " (%d connections refused or closed in all \
since the last report)" derl-node--unreported-refusals)
                 "")))
    (setq derl-node--last-refusal-message (float-time)
          derl-node--unreported-refusals 0)))

(defun derl-node--forget-incoming (node)
  "Forget closed incoming connections (NODE went down)."
  (ignore node)
  (setq derl-node--incoming
        (cl-remove-if-not (lambda (id) (gethash id derl--by-id))
                          derl-node--incoming)))

(add-hook 'erl-nodedown-hook #'derl-node--forget-incoming)

;;;; net_kernel

(defun derl-node--start-net-kernel ()
  "Spawn the local `net_kernel' process, unless one is registered."
  (unless (erl-whereis 'net_kernel)
    (setq derl-node--net-kernel
          (erl-spawn
            (erl-register 'net_kernel)
            (derl--serve erl-self #'derl-node--net-kernel-call nil)
            (derl-node--net-kernel-loop)))))

(defun derl-node--net-kernel-reply (request)
  "The reply of Emacs's net_kernel to the gen_server call REQUEST.
`is_auth' gets `yes', as from Erlang's net_kernel, so that
`net_adm:ping' gets pong; anything else gets {error, notsup} at once."
  (pcase request
    (`[is_auth ,_] 'yes)
    (_ [error notsup])))

(defun derl-node--net-kernel-call (_argument message conn)
  "Answer MESSAGE, sent to net_kernel over CONN, over CONN only.
A call from a process of another node than CONN's is dropped.
Return non-nil: net_kernel takes every message, as its loop does."
  (pcase message
    (`[$gen_call [,from ,tag] ,request]
     (when (derl--check-signal conn "a net_kernel call" from erl-null-pid)
       (derl--answer conn from (vector tag (derl-node--net-kernel-reply
                                            request))))))
  t)

(defun derl-node--net-kernel-loop ()
  "Serve Emacs's own processes as `net_kernel' does."
  (erl-receive ()
      ((['$gen_call [from tag] request]
        (when (erl-local-pid-p from)
          (erl-send from (vector tag (derl-node--net-kernel-reply request)))))
       (_ nil))
    (derl-node--net-kernel-loop)))

(provide 'derl-node)

;;; derl-node.el ends here

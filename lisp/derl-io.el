;;; derl-io.el --- Emacs's group leader: Erlang's I/O protocol  -*- lexical-binding: t; -*-

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

;; The default group leader of Emacs's processes (see the function
;; `erl-group-leader') is an I/O server: Erlang code called from Emacs
;; prints through it, and the text lands in the buffer *erl-output*.
;;
;; It answers {io_request, From, ReplyAs, Request} with
;; {io_reply, ReplyAs, Reply} for:
;;
;;   put_chars, with or without an encoding, as characters or as
;;     {io_lib, format, [Format, Args]} (what io:format sends; fwrite
;;     too): Emacs cannot run io_lib, so the node of the requesting
;;     process formats the text (unicode:characters_to_binary(
;;     io_lib:format(Format, Args))) through rex, and the reply goes out
;;     once the text is in the buffer.  Any other {M, F, A} is answered
;;     {error, request}: Emacs runs no function a peer names;
;;   get_line, get_chars, get_until, get_password: eof, there is no
;;     input;
;;   getopts, setopts, and requests (a list of requests, in order).
;;
;; Distel's own form, {put_chars, Chars} without a reply, is printed too.
;;
;; A request from another node is served as it arrives, knowing the
;; connection it came over (`derl--serve'): From must be a process of
;; that node, and everything the request leads to, the formatting call
;; and the reply, goes over that connection only.  A pid of any other
;; node never makes Emacs dial, send or call.  A reply that cannot go
;; (the connection is down, or its queue full) is dropped with a trace
;; line; the group leader goes on serving.

;;; Code:

(require 'erl)
(require 'derl-options)
(require 'derl-conn)
(require 'derl-deliver)

(declare-function derl-call-async "derl-rpc")
(declare-function derl-rpc--composed "derl-rpc")

(defconst derl-io--format-timeout 30
  "Seconds to wait for a node to format text for an io_request.")

(defcustom derl-output-max-size 1000000
  "Most characters kept in the buffer *erl-output*.
Past it the oldest lines go, as in the trace buffers, and of one
text longer than this only its end is kept."
  :type 'natnum
  :group 'derl)

;;;; Text

(defun derl-io--bytes-text (bytes encoding)
  "The text of BYTES, a unibyte string, in ENCODING `unicode' or `latin1'.
The decoder gives an Erlang string (code points below 256) and a
binary (UTF-8 when ENCODING is `unicode') the same unibyte form:
read it as UTF-8 when it is valid UTF-8, else as Latin-1."
  (if (eq encoding 'latin1)
      (decode-coding-string bytes 'latin-1)
    (let ((text (decode-coding-string bytes 'utf-8-unix t)))
      (if (string-match-p "[\x3fff80-\x3fffff]" text)
          (decode-coding-string bytes 'latin-1)
        text))))

(defun derl-io--text (data encoding)
  "The text of DATA, Erlang chardata in ENCODING, as a string.
Signal an error when DATA is not chardata."
  (cond ((stringp data)
         (if (multibyte-string-p data)
             data
           (derl-io--bytes-text data encoding)))
        ((characterp data) (string data))
        ((erl-binaryp data)
         (let ((s (erl-binary-string data)))
           (if (multibyte-string-p s) s (derl-io--bytes-text s encoding))))
        ((listp data)
         (let ((parts nil))
           (while (consp data)
             (push (derl-io--text (car data) encoding) parts)
             (setq data (cdr data)))
           (when data
             (push (derl-io--text data encoding) parts))
           (apply #'concat (nreverse parts))))
        (t (error "Not chardata: %S" data))))

(defun derl-io-insert (text)
  "Append TEXT to *erl-output*; show it when `erl-popup-on-output'.
The buffer keeps at most `derl-output-max-size' characters."
  (unless (string= text "")
    (with-current-buffer (get-buffer-create "*erl-output*")
      (save-excursion
        (goto-char (point-max))
        (if (and (natnump derl-output-max-size)
                 (> (length text) derl-output-max-size))
            (progn (erase-buffer)
                   (insert (substring text (- (length text)
                                              derl-output-max-size))))
          (insert text))
        (when (natnump derl-output-max-size)
          (derl-trace-trim derl-output-max-size)))
      (when erl-popup-on-output
        (let ((window (display-buffer (current-buffer))))
          (when window
            (set-window-point window (point-max))))))))

;;;; Requests

(defun derl-io--utf8-binaries (term)
  "TERM with its unibyte strings of non-ASCII UTF-8 made binaries again.
With Distel's mapping a binary decodes like a string; a UTF-8
binary going back to the node must stay one for ~ts to print it."
  (cond ((and (stringp term) (not (multibyte-string-p term))
              (string-match-p "[\x80-\xff]" term)
              (not (string-match-p "[\x3fff80-\x3fffff]"
                                   (decode-coding-string term 'utf-8-unix t))))
         (erl-binary term))
        ((consp term)
         (let ((out nil))
           (while (consp term)
             (push (derl-io--utf8-binaries (car term)) out)
             (setq term (cdr term)))
           (nconc (nreverse out) (derl-io--utf8-binaries term))))
        ((and (vectorp term)
              (not (and (> (length term) 0) (eq (aref term 0) erl-tag))))
         (vconcat (mapcar #'derl-io--utf8-binaries term)))
        (t term)))

(defun derl-io--format (conn module function args reply &optional insert)
  "Have CONN's node format MODULE:FUNCTION(ARGS); insert it, then call REPLY.
REPLY gets the io_reply's value: `ok', or [error REASON].  INSERT,
a function of the text, defaults to `derl-io-insert'.  Only
io_lib's format and fwrite are called, and only over CONN, when it
is still up: Emacs dials no node and runs nothing else for a peer."
  (if (not (and conn (derl--live-p conn)
                (eq module 'io_lib) (memq function '(format fwrite))
                (proper-list-p args) (<= 2 (length args) 3)))
      (funcall reply [error request])
    (require 'derl-rpc)
    (apply #'derl-call-async (derl-connection-node conn)
           (append (derl-rpc--composed 'unicode 'characters_to_binary
                                       module function
                                       (derl-io--utf8-binaries args))
                   (list (lambda (bytes)
                           (if (stringp bytes)
                               (progn
                                 (funcall (or insert #'derl-io-insert)
                                          (decode-coding-string bytes
                                                                'utf-8-unix t))
                                 (funcall reply 'ok))
                             (funcall reply (vector 'error function))))
                         :on-error (lambda (_) (funcall reply
                                                        (vector 'error function)))
                         :timeout derl-io--format-timeout)))))

(defun derl-io--put-chars (encoding chars reply &optional insert)
  "Insert CHARS, chardata in ENCODING, then call REPLY with `ok'.
INSERT, a function of the text, defaults to `derl-io-insert'."
  (funcall (or insert #'derl-io-insert) (derl-io--text chars encoding))
  (funcall reply 'ok))

(defun derl-io--input-request-p (request)
  "Return non-nil if REQUEST asks for input, which Emacs has none of."
  (and (vectorp request) (> (length request) 0)
       (memq (aref request 0) '(get_line get_chars get_until get_password))))

(defun derl-io--serve (conn request reply &optional insert)
  "Serve REQUEST that came over CONN; call REPLY with the io_reply's value.
CONN is nil for a request of a process of Emacs.  REPLY may be
called later, when the text had to be formatted remotely.  Text
goes to INSERT, a function of the text, by default `derl-io-insert'."
  (pcase request
    (`[put_chars ,(and (or 'unicode 'latin1) enc) ,chars]
     (derl-io--put-chars enc chars reply insert))
    (`[put_chars ,(and (or 'unicode 'latin1) _) ,m ,f ,a]
     (derl-io--format conn m f a reply insert))
    (`[put_chars ,chars] (derl-io--put-chars 'latin1 chars reply insert))
    (`[put_chars ,m ,f ,a] (derl-io--format conn m f a reply insert))
    ((pred derl-io--input-request-p) (funcall reply 'eof))
    ((or `[getopts] 'getopts)
     (funcall reply (list [binary false] [encoding unicode] [echo false])))
    (`[setopts ,_] (funcall reply 'ok))
    (`[requests ,(and (pred proper-list-p) requests)]
     (derl-io--serve-all conn requests reply insert))
    (_ (funcall reply [error request]))))

(defun derl-io--serve-all (conn requests reply &optional insert)
  "Serve REQUESTS from CONN in order; REPLY gets the last reply or the error.
INSERT is as for `derl-io--serve'."
  (if (null requests)
      (funcall reply 'ok)
    (derl-io--serve conn (car requests)
                    (lambda (result)
                      (if (or (null (cdr requests))
                              (and (vectorp result) (> (length result) 0)
                                   (eq (aref result 0) 'error)))
                          (funcall reply result)
                        (derl-io--serve-all conn (cdr requests) reply
                                            insert)))
                    insert)))

(defun derl-io--request (conn from reply-as request)
  "Answer FROM's io_request REQUEST, tagged REPLY-AS, which came over CONN.
CONN is nil when FROM is a process of Emacs; otherwise FROM is a
process of CONN's node, and the reply goes over CONN only."
  (let ((reply (if conn
                   (lambda (value)
                     (derl--answer conn from (vector 'io_reply reply-as value)))
                 (lambda (value)
                   (erl-send from (vector 'io_reply reply-as value))))))
    (condition-case-unless-debug err
        (derl-io--serve conn request reply)
      (error
       (message "erl-output: bad io_request from %s: %s"
                (erl-pid-to-string from) (error-message-string err))
       (funcall reply [error request])))))

(defun derl-io--from-node (_argument message conn)
  "Serve MESSAGE, sent to the group leader over CONN by CONN's node.
Return non-nil: the group leader takes every message, as its loop
does.  See `derl--serve'."
  (pcase message
    (`[io_request ,from ,reply-as ,request]
     (when (derl--check-signal conn "an io_request" from erl-null-pid)
       (derl-io--request conn from reply-as request)))
    (`[put_chars ,chars]
     (condition-case-unless-debug err
         (derl-io-insert (derl-io--text chars 'unicode))
       (error (message "erl-output: bad put_chars: %s"
                       (error-message-string err))))))
  t)

(defun derl-io--redirect-stale-output (conn pid message)
  "Print MESSAGE, sent to PID of an earlier Emacs, if it is Distel's output.
Distel's backend keeps one output proxy per printed group-leader
pid, and a printed pid has no creation: after Emacs restarts under
the same node name, the proxy still sends {put_chars, Chars} to the
old Emacs's group leader.  Such a message goes to the process of
this Emacs that has PID's number now, as it would have with
Distel's own runtime, where pids had no creation (the same steps
after a restart make the same group leader again: a distel-ie
session's, or the default one); when no process has that number,
to the default group leader.  Return non-nil then.  A message that
came over CONN from another node reaches the process as any message
from CONN does (a server sees CONN).  Nothing else sent to a pid of
an earlier Emacs is delivered, and links and monitors to one fail
with `noproc', as in Erlang."
  (when (and (erl-pid-p pid)
             (eq (erl-pid-node pid) erl-node-name)
             (not (eql (erl-pid-creation pid) erl-node-creation))
             (vectorp message) (= (length message) 2)
             (eq (aref message 0) 'put_chars))
    (or (and (eql (erl-pid-serial pid) 0)
             (derl-io--to-number conn (erl-pid-id pid) message))
        (progn (erl-send (erl--default-group-leader) message)
               t))))

(defun derl-io--to-number (conn id message)
  "Deliver MESSAGE, which came over CONN, to this Emacs's pid number ID.
Return non-nil if a process or server took it."
  (let* ((pid (erl--make-local-pid id))
         (taken (if conn (derl--to-receiver conn pid message) 'none)))
    (if (eq taken 'none)
        (erl--send-local pid message)
      taken)))

(add-hook 'derl-undeliverable-functions #'derl-io--redirect-stale-output)

(defun derl-io-server ()
  "Run the I/O server loop of a group leader in the current process.
Requests from other nodes are served as they arrive, by
`derl-io--from-node'; the loop serves Emacs's own processes."
  (derl--serve erl-self #'derl-io--from-node nil)
  (derl-io--loop))

(defun derl-io--loop ()
  "Serve the requests of Emacs's processes in the current process."
  (erl-receive ()
      ((['put_chars chars]
        (condition-case-unless-debug err
            (derl-io-insert (derl-io--text chars 'unicode))
          (error (message "erl-output: bad put_chars: %s"
                          (error-message-string err)))))
       (['io_request from reply-as request]
        (when (erl-local-pid-p from)
          (derl-io--request nil from reply-as request)))
       (_ nil))
    (derl-io--loop)))

(provide 'derl-io)

;;; derl-io.el ends here

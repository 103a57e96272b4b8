;;; derl-tls.el --- Distribution over TLS: the user options  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

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

;; With `derl-proto-dist' set to `tls', connections run the Erlang
;; distribution over TLS, as nodes started with `-proto_dist inet_tls'
;; and an `-ssl_dist_optfile' do.  EPMD stays plain; the TLS session
;; runs on the node's port and the usual handshake inside it.  The TLS
;; work happens in the derl module's I/O thread, through OpenSSL.
;;
;; This file holds the options and turns them into what the module
;; takes.  A TLS failure is signalled as `derl-tls-error', a kind of
;; `derl-connect-error'.

;;; Code:

(defcustom derl-proto-dist 'tcp
  "How connections to Erlang nodes travel: plain `tcp' or `tls'.
Use `tls' for nodes started with `-proto_dist inet_tls'; such nodes
and plain ones cannot talk to each other.  See also
`derl-tls-certfile', `derl-tls-keyfile', `derl-tls-cacertfile' and
`derl-tls-verify-peer'.  A connection uses the value in force when it
is made."
  :type '(choice (const :tag "Plain TCP (inet_tcp)" tcp)
                 (const :tag "TLS (inet_tls)" tls))
  :group 'derl)

(defcustom derl-tls-certfile nil
  "PEM file with the certificate Emacs shows nodes, or nil for none.
Nodes that verify their peers (`{verify, verify_peer}' with
`{fail_if_no_peer_cert, true}' in their server options) need one, and
so does Emacs as a TLS node (`derl-start-node').  The file may hold
the chain after the certificate, and the private key when
`derl-tls-keyfile' is nil."
  :type '(choice (const :tag "None" nil) file)
  :group 'derl)

(defcustom derl-tls-keyfile nil
  "PEM file with the private key of `derl-tls-certfile', or nil.
Nil means the key is in `derl-tls-certfile'.  Keys protected by a
pass phrase are not supported.  The key is never shown in messages."
  :type '(choice (const :tag "In the certificate file" nil) file)
  :group 'derl)

(defcustom derl-tls-cacertfile nil
  "PEM file with the CA certificates that node certificates must chain to.
Nil means the system's CA store."
  :type '(choice (const :tag "The system's CAs" nil) file)
  :group 'derl)

(defcustom derl-tls-verify-peer t
  "Non-nil means check the node's certificate and its host name.
The certificate must chain to a CA of `derl-tls-cacertfile' and name
the host part of the node name dialled (node@HOST).  When Emacs is a
node (`derl-start-node'), nodes that connect to it must likewise show
a certificate from such a CA.  Turn this off only for tests and
self-signed set-ups: without it anyone on the path can pose as the
node."
  :type 'boolean
  :group 'derl)

(defun derl-tls--file (variable)
  "The value of VARIABLE, a file name or nil, expanded and checked.
Signal `derl-tls-error' when the file is not readable."
  (let ((file (symbol-value variable)))
    (when file
      (unless (stringp file)
        (signal 'derl-tls-error
                (list (format "`%s' is %S, not a file name" variable file))))
      (let ((expanded (expand-file-name file)))
        (unless (file-readable-p expanded)
          (signal 'derl-tls-error
                  (list (format "`%s': cannot read %s" variable expanded))))
        expanded))))

(defun derl-tls--module-options ()
  "The TLS argument of the module's connect call, from the options.
Nil for plain TCP, else [CERTFILE KEYFILE CACERTFILE VERIFY-PEER].
Signal `derl-tls-error' for a bad setting."
  (pcase derl-proto-dist
    ('tcp nil)
    ('tls (vector (derl-tls--file 'derl-tls-certfile)
                  (derl-tls--file 'derl-tls-keyfile)
                  (derl-tls--file 'derl-tls-cacertfile)
                  (and derl-tls-verify-peer t)))
    (_ (signal 'derl-tls-error
               (list (format "`derl-proto-dist' is %S, not `tcp' or `tls'"
                             derl-proto-dist))))))

(provide 'derl-tls)

;;; derl-tls.el ends here

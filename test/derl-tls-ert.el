;;; derl-tls-ert.el --- test harness: certificates and TLS nodes  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;;; Commentary:

;; For the TLS suite and the TLS benchmark: CAs and certificates made
;; with the `openssl' command in the scratch directory, the nodes'
;; `-ssl_dist_optfile', and `-proto_dist inet_tls' nodes.

;;; Code:

(require 'derl-ert)

;;;; Certificates

(defvar derl-tls-test--pki nil
  "The scratch directory holding the test CAs and certificates.")

(defun derl-tls-test--openssl (&rest args)
  "Run openssl with ARGS in the certificate directory; fail loudly."
  (let ((default-directory derl-tls-test--pki))
    (with-temp-buffer
      (unless (zerop (apply #'call-process "openssl" nil t nil args))
        (error "The openssl command failed: %s" (buffer-string))))))

(defun derl-tls-test--key (name)
  "Make the key NAME.key (an EC P-256 key)."
  (derl-tls-test--openssl "genpkey" "-algorithm" "EC"
                          "-pkeyopt" "ec_paramgen_curve:P-256"
                          "-out" (concat name ".key")))

(defun derl-tls-test--ca (name)
  "Make the CA NAME: NAME.key and the self-signed NAME.pem."
  (derl-tls-test--key name)
  (derl-tls-test--openssl "req" "-x509" "-new" "-key" (concat name ".key")
                          "-out" (concat name ".pem") "-days" "2"
                          "-subj" (concat "/CN=derl test " name)))

(defun derl-tls-test--cert (name ca host)
  "Make NAME.key and NAME.pem for HOST, signed by CA (nil: self-signed)."
  (derl-tls-test--key name)
  (let ((ext (concat name ".ext")))
    (with-temp-file (expand-file-name ext derl-tls-test--pki)
      (insert (format "subjectAltName=DNS:%s\n" host)))
    (if ca
        (progn
          (derl-tls-test--openssl "req" "-new" "-key" (concat name ".key")
                                  "-out" (concat name ".csr")
                                  "-subj" (concat "/CN=" host))
          (derl-tls-test--openssl "x509" "-req" "-in" (concat name ".csr")
                                  "-CA" (concat ca ".pem")
                                  "-CAkey" (concat ca ".key")
                                  "-CAcreateserial" "-days" "2"
                                  "-extfile" ext
                                  "-out" (concat name ".pem")))
      (derl-tls-test--openssl "req" "-x509" "-new" "-key" (concat name ".key")
                              "-out" (concat name ".pem") "-days" "2"
                              "-subj" (concat "/CN=" host)
                              "-addext" (format "subjectAltName=DNS:%s"
                                                host)))))

(defun derl-tls-test-file (name)
  "The path of NAME in the certificate directory, made on first use."
  (unless derl-tls-test--pki
    (setq derl-tls-test--pki (derl-test-scratch-file "pki"))
    (make-directory derl-tls-test--pki t)
    (derl-tls-test--ca "ca")
    (derl-tls-test--ca "otherca")
    (derl-tls-test--cert "node" "ca" "localhost")
    (derl-tls-test--cert "emacs" "ca" "localhost")
    (derl-tls-test--cert "stranger" "otherca" "localhost")
    (derl-tls-test--cert "elsewhere" "ca" "elsewhere.invalid")
    (derl-tls-test--cert "self" nil "localhost"))
  (expand-file-name name derl-tls-test--pki))

;;;; TLS nodes

(defun derl-tls-test-optfile (cert &rest server-options)
  "Write an ssl_dist_optfile for a node with certificate CERT; return it.
The node trusts the test CA, and verifies its clients unless
SERVER-OPTIONS (Erlang terms as text) say otherwise."
  (let ((file (derl-test-scratch-file
               (format "dist-%s.conf" (derl-test-random-string 6))))
        (common (format "{certfile, %S}, {keyfile, %S}, {cacertfile, %S}"
                        (derl-tls-test-file (concat cert ".pem"))
                        (derl-tls-test-file (concat cert ".key"))
                        (derl-tls-test-file "ca.pem"))))
    (with-temp-file file
      (insert (format "[{server, [%s%s]},\n {client, [%s, {verify, verify_peer}]}].\n"
                      common
                      (mapconcat (lambda (o) (concat ", " o))
                                 (or server-options
                                     '("{verify, verify_peer}"
                                       "{fail_if_no_peer_cert, true}"))
                                 "")
                      common)))
    file))

(defun derl-tls-test-start-node (optfile &rest args)
  "Start a `-proto_dist inet_tls' node configured by OPTFILE, with ARGS."
  (apply #'derl-test-start-node "-proto_dist" "inet_tls"
         "-ssl_dist_optfile" optfile args))

(provide 'derl-tls-ert)

;;; derl-tls-ert.el ends here

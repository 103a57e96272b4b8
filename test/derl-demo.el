;;; derl-demo.el --- `make demo': derl at work against a real node  -*- lexical-binding: t; -*-

;;; Commentary:

;; Starts a private epmd and an Erlang node, has the node make terms of
;; many kinds, decodes them in Emacs, prints them, encodes them again,
;; and has the node check that they came back identical.

;;; Code:

(require 'erlext)
(require 'derl-ert)

(defun derl-demo ()
  "Run the codec demo and print what happens."
  (let ((orig (derl-test-scratch-file "demo-orig.bin"))
        (re (derl-test-scratch-file "demo-re.bin"))
        (print-escape-newlines t)
        (print-escape-control-characters t))
    (princ "Starting an Erlang node to make some terms...\n")
    (let ((made (derl-test-erl "-run" "derl_demo" "terms" orig)))
      (unless (zerop (car made))
        (error "The Erlang node failed: %s" (cdr made))))
    (let ((records (derl-test-read-records orig))
          (erlext-decode-binaries-as 'erl-binary))
      (princ (format "\nDecoded in Emacs (lossless mode), %d terms:\n\n"
                     (length records)))
      (dolist (bytes records)
        (let ((term (erlext-binary-to-term bytes)))
          (princ (format "  %3d bytes  =>  %s\n" (length bytes)
                         (prin1-to-string term)))))
      (derl-test-write-records
       re (mapcar (lambda (b) (erlext-term-to-binary (erlext-binary-to-term b)))
                  records)))
    (princ "\nRe-encoded in Emacs and sent back:\n  ")
    (let ((checked (derl-test-erl "-run" "derl_demo" "check" orig re)))
      (princ (cdr checked))
      (unless (zerop (car checked))
        (kill-emacs 1)))))

(derl-demo)

;;; derl-demo.el ends here

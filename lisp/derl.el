;;; derl.el --- Distributed Erlang: talk to Erlang and Elixir nodes  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The derl authors
;; SPDX-License-Identifier: GPL-3.0-or-later

;; Version: 0.1.0
;; URL: https://github.com/derl-el/derl
;; Keywords: erlang, languages, processes
;; Package-Requires: ((emacs "28.1"))

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

;; Connections to Erlang and Elixir nodes, with Distel's API:
;; `erl-connect', `erl-dist-send', `erl-dist-reg-send', `erl-dist-link',
;; `erl-dist-unlink', `erl-dist-exit', `erl-dist-exit2',
;; `erl-nodeup-hook', `erl-nodedown-hook', `derl-cookie',
;; `derl-use-trace-buffer' and the *trace NODE* buffers; remote calls
;; (`derl-call'), monitors, spawn, the node's shell and the commands.
;;
;; The sockets, EPMD, the handshake, framing and ticks live in the derl
;; module's I/O thread, so a connection stays up while Emacs is busy.
;;
;; `derl-connect' is the synchronous variant: it waits until the node is
;; up and signals `derl-epmd-error', `derl-connect-error',
;; `derl-auth-error', `derl-protocol-error' or `derl-timeout' otherwise.
;;
;; This file loads the rest, each file a layer that uses only those
;; before it:
;;
;;   derl-options   user options, hooks, error conditions
;;   derl-cookie    the cookies
;;   derl-ops       operation numbers and capability flags
;;   derl-conn      a connection's record, names, trace lines, sending
;;   derl-events    the I/O thread's events, dispatch, waits
;;   derl-connect   starting, waiting for and closing connections
;;   derl-deliver   who may address whom; mailboxes and receivers
;;   derl-send      messages to other nodes' processes, and from them
;;   derl-links     links, exit signals, monitors on Emacs's processes
;;
;; and then the API built on them (RPC, monitors, spawn, output) and
;; the commands.

;;; Code:

(require 'derl-options)
(require 'derl-cookie)
(require 'derl-ops)
(require 'derl-conn)
(require 'derl-events)
(require 'derl-connect)
(require 'derl-deliver)
(require 'derl-send)
(require 'derl-links)

;; The rest of the API: RPC, monitors, spawn and aliases, output.
(require 'derl-monitor)
(require 'derl-spawn)
(require 'derl-rpc)
(require 'derl-io)
;; The commands, so that loading derl is all a user needs.
(require 'derl-commands)
(require 'derl-list)
(require 'derl-eval)
(require 'derl-node)
(require 'derl-distel)
(require 'derl-shell)
(require 'derl-mode)
(require 'derl-knowledge)

(provide 'derl)

;;; derl.el ends here

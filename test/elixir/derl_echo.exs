# The Elixir side of derl's tests: an `echo' process, as test/erl/derl_peer.
#   {pid, msg}        -> send pid msg
#   {:struct, pid}    -> send pid a struct (a map with __struct__)
#
# Copyright (C) 2026 The derl authors
# SPDX-License-Identifier: GPL-3.0-or-later
defmodule DerlEcho do
  def loop do
    receive do
      {:struct, pid} ->
        send(pid, %URI{scheme: "https", host: "example.com", port: 443})
        loop()

      {pid, msg} when is_pid(pid) ->
        send(pid, msg)
        loop()

      _ ->
        loop()
    end
  end
end

Process.register(spawn(&DerlEcho.loop/0), :echo)
IO.puts("derl_peer ready")
Process.sleep(:infinity)

# Brings up what the application needs, all of it on 127.0.0.1: an epmd of
# our own on $ERL_EPMD_PORT (4369 when unset) unless one answers there
# already, and distribution with long names; then the application. After the
# suite each is stopped again: the application (its supervisor stops the C
# node, by its OS pid, within the child's shutdown time), distribution, and
# epmd, by its OS pid.
defmodule ElixirApp.TestEnv do
  def epmd_port do
    case System.get_env("ERL_EPMD_PORT", "") do
      "" -> 4369
      port -> String.to_integer(port)
    end
  end

  def epmd_answers?(port) do
    case :gen_tcp.connect({127, 0, 0, 1}, port, [], 1000) do
      {:ok, socket} -> :gen_tcp.close(socket) == :ok
      {:error, _} -> false
    end
  end

  # epmd as a port of a process of its own; returns its pid and OS pid.
  def start_epmd(port) do
    parent = self()

    holder =
      spawn(fn ->
        exe = System.find_executable("epmd")

        p =
          Port.open({:spawn_executable, exe}, [
            :exit_status,
            :stderr_to_stdout,
            args: ~w(-port #{port} -address 127.0.0.1)
          ])

        {:os_pid, os_pid} = Port.info(p, :os_pid)
        send(parent, {:epmd, self(), os_pid})

        hold_epmd(p)
      end)

    receive do
      {:epmd, ^holder, os_pid} ->
        wait_until(fn -> epmd_answers?(port) end, 5000) && {holder, os_pid}
    after
      5000 -> raise "epmd did not start"
    end
  end

  # Its output (a line per probe of epmd_answers?/1) is dropped.
  defp hold_epmd(p) do
    receive do
      {^p, {:data, _}} -> hold_epmd(p)
      {^p, {:exit_status, _}} -> :ok
    end
  end

  # SIGTERM, then SIGKILL after 5 s; waits at most 7 s in all.
  def stop_epmd({holder, os_pid}) do
    ref = Process.monitor(holder)
    System.cmd("kill", ["-TERM", "#{os_pid}"], stderr_to_stdout: true)

    receive do
      {:DOWN, ^ref, _, _, _} -> :ok
    after
      5000 ->
        System.cmd("kill", ["-KILL", "#{os_pid}"], stderr_to_stdout: true)

        receive do
          {:DOWN, ^ref, _, _, _} -> :ok
        after
          2000 -> {:still_running, os_pid}
        end
    end
  end

  def wait_until(fun, timeout) do
    deadline = System.monotonic_time(:millisecond) + timeout

    cond do
      fun.() ->
        true

      System.monotonic_time(:millisecond) > deadline ->
        false

      true ->
        Process.sleep(20)
        wait_until(fun, deadline - System.monotonic_time(:millisecond))
    end
  end
end

port = ElixirApp.TestEnv.epmd_port()
epmd = if not ElixirApp.TestEnv.epmd_answers?(port), do: ElixirApp.TestEnv.start_epmd(port)

started_dist =
  if not Node.alive?() do
    {:ok, _} = :net_kernel.start([:"elixir_app_test@127.0.0.1", :longnames])
    true
  end

stop_all = fn ->
  Application.stop(:elixir_app)
  if started_dist, do: :net_kernel.stop()
  if epmd, do: ElixirApp.TestEnv.stop_epmd(epmd)
end

case Application.ensure_all_started(:elixir_app) do
  {:ok, _} ->
    ExUnit.after_suite(fn _ -> stop_all.() end)
    ExUnit.start()

  error ->
    stop_all.()
    raise "elixir_app did not start: #{inspect(error)}"
end

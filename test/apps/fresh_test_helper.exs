# test/test_helper.exs of the project that `mix new fresh --sup` makes in
# tools/run-tests' apps stages (tools/run-apps). Distribution with long
# names, on an epmd of our own on $ERL_EPMD_PORT unless one answers there;
# both stopped after the suite, epmd by its OS pid, within 7 s.
defmodule Fresh.TestEnv do
  def epmd_answers?(port) do
    case :gen_tcp.connect({127, 0, 0, 1}, port, [], 1000) do
      {:ok, socket} -> :gen_tcp.close(socket) == :ok
      {:error, _} -> false
    end
  end

  def start_epmd(port) do
    parent = self()

    holder =
      spawn(fn ->
        p =
          Port.open({:spawn_executable, System.find_executable("epmd")}, [
            :exit_status,
            :stderr_to_stdout,
            args: ~w(-port #{port} -address 127.0.0.1)
          ])

        {:os_pid, os_pid} = Port.info(p, :os_pid)
        send(parent, {:epmd, self(), os_pid})
        hold(p)
      end)

    receive do
      {:epmd, ^holder, os_pid} ->
        Enum.any?(1..250, fn _ -> epmd_answers?(port) or (Process.sleep(20) && false) end) ||
          raise "epmd did not answer"

        {holder, os_pid}
    after
      5000 -> raise "epmd did not start"
    end
  end

  defp hold(p) do
    receive do
      {^p, {:data, _}} -> hold(p)
      {^p, {:exit_status, _}} -> :ok
    end
  end

  def stop_epmd({holder, os_pid}) do
    ref = Process.monitor(holder)
    System.cmd("kill", ["-TERM", "#{os_pid}"])

    receive do
      {:DOWN, ^ref, _, _, _} -> :ok
    after
      5000 ->
        System.cmd("kill", ["-KILL", "#{os_pid}"])

        receive do
          {:DOWN, ^ref, _, _, _} -> :ok
        after
          2000 -> {:still_running, os_pid}
        end
    end
  end
end

port = String.to_integer(System.get_env("ERL_EPMD_PORT", "4369"))
epmd = if not Fresh.TestEnv.epmd_answers?(port), do: Fresh.TestEnv.start_epmd(port)
{:ok, _} = :net_kernel.start([:"fresh_test@127.0.0.1", :longnames])

ExUnit.after_suite(fn _ ->
  :net_kernel.stop()
  if epmd, do: Fresh.TestEnv.stop_epmd(epmd)
end)

ExUnit.start()

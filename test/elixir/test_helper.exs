# test_helper.exs: brings up what the ExUnit tests talk to, all of it real and
# on 127.0.0.1: an epmd of our own on $ERL_EPMD_PORT (unless one answers
# there already), distribution with long names (unless the node was started
# with --name), and one C node started with :gen_cnode.start/1 from the
# executable in $GEN_CNODE_EXE (else priv/gen_cnode). After the suite each is
# stopped by its pid; a C node that does not exit cleanly (status 0, nothing
# from the sanitizers) makes the run exit non-zero.
#
#   ERL_EPMD_PORT=4370 elixir --erl "-start_epmd false" -pa _build/default/lib/gen_cnode/ebin \
#     -r test/elixir/test_helper.exs -r "test/elixir/*_test.exs"
#
# tools/run-tests does this (and picks the free port).

defmodule GenCnodeTest.OsProcess do
  @moduledoc "An OS process owned by a process of its own, stopped by its os pid."

  def start(exe, args) do
    parent = self()
    ref = make_ref()

    holder =
      spawn(fn ->
        port =
          Port.open({:spawn_executable, exe}, [
            :binary,
            :exit_status,
            :stderr_to_stdout,
            args: args
          ])

        {:os_pid, os_pid} = Port.info(port, :os_pid)
        send(parent, {ref, os_pid})
        hold(port, os_pid)
      end)

    receive do
      {^ref, _os_pid} -> holder
    after
      5000 -> raise "#{exe} did not start"
    end
  end

  def stop(holder) do
    ref = Process.monitor(holder)
    send(holder, {:stop, self(), ref})

    receive do
      {^ref, result} ->
        Process.demonitor(ref, [:flush])
        result

      {:DOWN, ^ref, :process, ^holder, why} ->
        {:holder_down, why}
    after
      10_000 -> :timeout
    end
  end

  defp hold(port, os_pid) do
    receive do
      {^port, {:data, _}} ->
        hold(port, os_pid)

      {^port, {:exit_status, status}} ->
        receive do
          {:stop, from, ref} -> send(from, {ref, {:exited, status}})
        end

      {:stop, from, ref} ->
        kill("TERM", os_pid)

        receive do
          {^port, {:exit_status, status}} -> send(from, {ref, {:exit_status, status}})
        after
          5000 ->
            kill("KILL", os_pid)

            receive do
              {^port, {:exit_status, status}} -> send(from, {ref, {:killed, status}})
            after
              2000 -> send(from, {ref, {:no_exit, os_pid}})
            end
        end
    end
  end

  def kill(signal, os_pid) do
    System.cmd("kill", ["-#{signal}", "#{os_pid}"], stderr_to_stdout: true)
  end
end

defmodule GenCnodeTest do
  @moduledoc "What the tests share: the C node, and how to start and check more."
  import ExUnit.Assertions

  def cnode, do: :persistent_term.get({__MODULE__, :cnode})
  def server, do: {:kv, cnode()}
  def log_dir, do: :persistent_term.get({__MODULE__, :log_dir})

  @doc "Starts a C node of the test's own; stopped by pid when the test exits."
  def start_cnode(name, opts \\ %{}) do
    log = Path.join(log_dir(), "#{name}.log")
    node = :"#{name}@127.0.0.1"
    {:ok, owner} = :gen_cnode.start(Map.merge(%{name: node, log: String.to_charlist(log)}, opts))

    ExUnit.Callbacks.on_exit(fn ->
      if Process.alive?(owner), do: :gen_cnode.stop(owner)
    end)

    {owner, node, log}
  end

  @doc "Stops a C node and checks it exited 0 with nothing from the sanitizers."
  def stop_cnode(owner, log) do
    assert {:gen_cnode.stop(owner), sanitizer_reports(log)} == {:ok, []}
  end

  def sanitizer_reports(log) do
    case File.read(log) do
      {:ok, text} ->
        text
        |> String.split("\n")
        |> Enum.filter(
          &String.contains?(&1, [
            "AddressSanitizer",
            "LeakSanitizer",
            "runtime error:",
            "UndefinedBehaviorSanitizer"
          ])
        )

      {:error, _} ->
        []
    end
  end

  @doc "Polls fun until it returns true, for at most timeout ms."
  def wait_until(fun, timeout) do
    deadline = System.monotonic_time(:millisecond) + timeout
    do_wait_until(fun, deadline)
  end

  defp do_wait_until(fun, deadline) do
    cond do
      fun.() ->
        :ok

      System.monotonic_time(:millisecond) > deadline ->
        flunk("condition not met in time")

      true ->
        Process.sleep(20)
        do_wait_until(fun, deadline)
    end
  end

  def epmd_answers?(port) do
    case :gen_tcp.connect({127, 0, 0, 1}, port, [], 1000) do
      {:ok, socket} ->
        :gen_tcp.close(socket)
        true

      {:error, _} ->
        false
    end
  end
end

ExUnit.start(timeout: 120_000)

epmd_port =
  case System.get_env("ERL_EPMD_PORT") do
    nil -> 4369
    "" -> 4369
    port -> String.to_integer(port)
  end

epmd =
  unless GenCnodeTest.epmd_answers?(epmd_port) do
    holder =
      GenCnodeTest.OsProcess.start(System.find_executable("epmd"), [
        "-port",
        "#{epmd_port}",
        "-address",
        "127.0.0.1"
      ])

    GenCnodeTest.wait_until(fn -> GenCnodeTest.epmd_answers?(epmd_port) end, 5000)
    holder
  end

started_dist =
  unless Node.alive?() do
    name = :"ex#{System.otp_release()}@127.0.0.1"
    {:ok, _} = :net_kernel.start([name, :longnames])
    true
  end

log_dir = Path.expand(System.get_env("GEN_CNODE_TEST_LOGS", "logs"))
File.mkdir_p!(log_dir)
:persistent_term.put({GenCnodeTest, :log_dir}, log_dir)

cleanup = fn owner ->
  if owner, do: Process.alive?(owner) and :gen_cnode.stop(owner)
  if started_dist, do: :net_kernel.stop()
  if epmd, do: GenCnodeTest.OsProcess.stop(epmd)
end

name = :"kvex@127.0.0.1"
log = Path.join(log_dir, "kvex.log")
File.rm(log)

owner =
  case :gen_cnode.start(%{name: name, log: String.to_charlist(log)}) do
    {:ok, owner} ->
      owner

    error ->
      cleanup.(nil)
      raise "the C node did not start: #{inspect(error)} (#{System.get_env("GEN_CNODE_EXE")})"
  end

:persistent_term.put({GenCnodeTest, :cnode}, name)
IO.puts("C node #{name}, os pid #{:gen_cnode.os_pid(owner)}, epmd port #{epmd_port}, log #{log}")

ExUnit.after_suite(fn _result ->
  stopped =
    try do
      :gen_cnode.stop(owner)
    catch
      :exit, reason -> {:owner_gone_before_the_end, reason}
    end

  reports = GenCnodeTest.sanitizer_reports(log)
  cleanup.(nil)

  unless stopped == :ok and reports == [] do
    IO.puts(:stderr, """
    gen_cnode: the C node #{name} did not stop cleanly: #{inspect(stopped)}
    #{Enum.join(reports, "\n")}
    (log: #{log})
    """)

    System.at_exit(fn _ -> exit({:shutdown, 3}) end)
  end
end)

# otp_test.exs: OTP process semantics from Elixir, the same tests against two
# targets: an ordinary Elixir GenServer with the KeyValue protocol (KvRef and
# CounterRef below, on this node) and servers the C node starts (its gen_cnode
# starter). GenServer.stop, Process.monitor/demonitor, Process.link/unlink/exit,
# :sys.get_state and :sys.get_status (printed readably with inspect). The C node
# and epmd come from test_helper.exs. The one intentional difference,
# :sys.replace_state, is in GenCnode.OtpTest.differs?/2.
#
# (test/gen_cnode_otp_SUITE.erl is the full conformance suite; this file covers
# what an Elixir user types.)

defmodule GenCnode.OtpTest.KvRef do
  @moduledoc "The C node's kv as an Elixir GenServer: the state is the store, a map."
  # No @impl: format_status/1 is a GenServer callback in Elixir 1.18, not in
  # 1.14, and either release would warn about one way of marking it.
  use GenServer

  def init(arg) do
    opts = if arg == [], do: %{}, else: arg
    if Map.get(opts, :trap_exit, false), do: Process.flag(:trap_exit, true)
    Process.put(:messages, 0)

    case opts do
      %{preload: preload} -> {:ok, %{}, {:continue, {:preload, preload}}}
      _ -> {:ok, %{}}
    end
  end

  def handle_continue({:preload, preload}, store), do: {:noreply, Map.merge(store, preload)}

  def handle_call(req, _from, store) do
    handled()

    case req do
      {:get, k} -> {:reply, Map.get(store, k), store}
      {:fetch, k} -> {:reply, Map.fetch(store, k), store}
      {:put, k, v} -> {:reply, :ok, Map.put(store, k, v)}
      {:delete, k} -> {:reply, :ok, Map.delete(store, k)}
      :size -> {:reply, map_size(store), store}
      :keys -> {:reply, Map.keys(store), store}
      _ -> {:reply, {:error, {:unknown_call, req}}, store}
    end
  end

  def handle_cast(msg, store) do
    handled()

    case msg do
      {:put, k, v} -> {:noreply, Map.put(store, k, v)}
      {:delete, k} -> {:noreply, Map.delete(store, k)}
      _ -> {:noreply, store}
    end
  end

  def handle_info(_msg, store) do
    handled()
    {:noreply, store}
  end

  def format_status(%{state: store} = status) do
    {:memory, bytes} = Process.info(self(), :memory)
    %{status | state: %{entries: map_size(store), memory: bytes, messages: Process.get(:messages)}}
  end

  def format_status(status), do: status

  defp handled, do: Process.put(:messages, Process.get(:messages) + 1)
end

defmodule GenCnode.OtpTest.CounterRef do
  @moduledoc "The C node's counter as an Elixir GenServer ({:wait_for, n} replies later)."
  use GenServer

  @impl true
  def init(_arg), do: {:ok, {0, []}}

  @impl true
  def handle_call(:get, _from, {count, _} = s), do: {:reply, count, s}
  def handle_call(:reset, _from, {_, waiters}), do: {:reply, :ok, {0, waiters}}

  def handle_call({:wait_for, n}, from, {count, waiters}) do
    if count >= n,
      do: {:reply, {:ok, count}, {count, waiters}},
      else: {:noreply, {count, waiters ++ [{n, from}]}}
  end

  def handle_call(req, _from, s), do: {:reply, {:error, {:unknown_call, req}}, s}

  @impl true
  def handle_cast(:incr, s), do: {:noreply, add(1, s)}
  def handle_cast({:add, n}, s), do: {:noreply, add(n, s)}
  def handle_cast(_, s), do: {:noreply, s}

  defp add(n, {count, waiters}) do
    count = count + n
    {ready, waiting} = Enum.split_with(waiters, fn {want, _} -> count >= want end)
    for {_, from} <- ready, do: GenServer.reply(from, {:ok, count})
    {count, waiting}
  end
end

defmodule GenCnode.OtpTest do
  use ExUnit.Case, async: false

  # The Elixir target's servers log their abnormal stops.
  @moduletag :capture_log

  alias GenCnode.OtpTest.{CounterRef, KvRef}

  # The one thing the C node does differently on purpose: it cannot run the
  # fun :sys.replace_state sends, so it replies an error and :sys raises
  # {:not_supported_by_c_node, :replace_state} (README).
  def differs?(:replace_state, :cnode), do: true
  def differs?(_, _), do: false

  # Starting a server: the only other place the targets differ.
  def start(:elixir, how, mod, arg, opts) do
    module = %{kv: KvRef, counter: CounterRef}[mod]
    apply(GenServer, how, [module, arg, opts])
  end

  def start(:cnode, how, mod, arg, opts) do
    GenServer.call({:gen_cnode, GenCnodeTest.cnode()}, {how, mod, arg, opts}, 30_000)
  end

  def node_of(:elixir), do: node()
  def node_of(:cnode), do: GenCnodeTest.cnode()

  # A process linked to server, trapping exits or not, forwarding what it gets.
  def watcher(server, trap) do
    parent = self()

    pid =
      spawn(fn ->
        Process.flag(:trap_exit, trap)
        Process.link(server)
        # A call after the link: signal order puts the link first (any
        # answer will do).
        _ = GenServer.call(server, :size)
        send(parent, {:watching, self()})
        forward(server, parent)
      end)

    assert_receive {:watching, ^pid}, 5000
    pid
  end

  defp forward(server, parent) do
    receive do
      {:do_exit, why} ->
        exit(why)

      {:do_unlink, from} ->
        Process.unlink(server)
        _ = GenServer.call(server, :size)
        send(from, {:unlinked, self()})
        forward(server, parent)

      msg ->
        send(parent, {:watched, self(), msg})
        forward(server, parent)
    end
  end

  for target <- [:elixir, :cnode] do
    describe "#{target}:" do
      @describetag target: target

      setup %{target: target} do
        # What a test started is killed after it, whatever happened.
        {:ok, started} = Agent.start(fn -> [] end)

        on_exit(fn ->
          for pid <- Agent.get(started, & &1), do: Process.exit(pid, :kill)
          Agent.stop(started)
        end)

        start = fn how, mod, arg, opts ->
          result = start(target, how, mod, arg, opts)
          with {:ok, pid} <- result, do: Agent.update(started, &[pid | &1])
          result
        end

        {:ok, start: start, node: node_of(target)}
      end

      test "GenServer.stop: :ok, and monitors see the reason", %{start: start} do
        {:ok, pid} = start.(:start, :kv, [], [])
        ref = Process.monitor(pid)
        assert GenServer.stop(pid, {:shutdown, :bye}) == :ok
        assert_receive {:DOWN, ^ref, :process, ^pid, {:shutdown, :bye}}, 2000

        {:ok, pid2} = start.(:start, :kv, [], [])
        ref2 = Process.monitor(pid2)
        assert GenServer.stop(pid2) == :ok
        assert_receive {:DOWN, ^ref2, :process, ^pid2, :normal}, 2000
        assert {:noproc, {GenServer, :stop, _}} = catch_exit(GenServer.stop(pid2))
      end

      test "GenServer.stop by name, with a timeout", %{start: start, node: node} do
        {:ok, pid} = start.(:start, :kv, [], name: :ex_stopped)
        ref = Process.monitor({:ex_stopped, node})
        assert GenServer.stop({:ex_stopped, node}, :done, 5000) == :ok
        assert_receive {:DOWN, ^ref, :process, {:ex_stopped, ^node}, :done}, 2000
        assert {:noproc, _} = catch_exit(GenServer.call(pid, :size))
      end

      test "Process.monitor: noproc for the dead and the unknown, demonitor honoured",
           %{start: start, node: node} do
        {:ok, pid} = start.(:start, :kv, [], [])
        dropped = Process.monitor(pid)
        assert Process.demonitor(dropped, [:flush])
        kept = Process.monitor(pid)
        assert GenServer.call(pid, :size) == 0
        :ok = GenServer.stop(pid, :gone)
        assert_receive {:DOWN, ^kept, :process, ^pid, :gone}, 2000
        refute_receive {:DOWN, ^dropped, _, _, _}, 300

        ref = Process.monitor(pid)
        assert_receive {:DOWN, ^ref, :process, ^pid, :noproc}, 1000
        ref = Process.monitor({:ex_nobody, node})
        assert_receive {:DOWN, ^ref, :process, {:ex_nobody, ^node}, :noproc}, 1000
      end

      test "Process.exit: :kill gives :killed, :normal is ignored, others stop it",
           %{start: start} do
        {:ok, pid} = start.(:start, :kv, [], [])
        :ok = GenServer.cast(pid, {:put, :k, :v})
        ref = Process.monitor(pid)
        Process.exit(pid, :normal)
        assert GenServer.call(pid, {:get, :k}) == :v
        refute_receive {:DOWN, ^ref, _, _, _}, 300
        trapping = watcher(pid, true)
        Process.exit(pid, :kill)
        assert_receive {:DOWN, ^ref, :process, ^pid, :killed}, 2000
        assert_receive {:watched, ^trapping, {:EXIT, ^pid, :killed}}, 2000

        {:ok, pid2} = start.(:start, :kv, [], [])
        ref2 = Process.monitor(pid2)
        Process.exit(pid2, :other)
        assert_receive {:DOWN, ^ref2, :process, ^pid2, :other}, 2000
      end

      test "Process.link: an abnormal stop reaches links, a linked crash stops the server",
           %{start: start} do
        {:ok, pid} = start.(:start, :kv, [], [])
        trapping = watcher(pid, true)
        plain = watcher(pid, false)
        plain_ref = Process.monitor(plain)
        :ok = GenServer.stop(pid, :boom)
        assert_receive {:watched, ^trapping, {:EXIT, ^pid, :boom}}, 2000
        assert_receive {:DOWN, ^plain_ref, :process, ^plain, :boom}, 2000

        {:ok, pid2} = start.(:start, :kv, [], [])
        ref2 = Process.monitor(pid2)
        w = watcher(pid2, false)
        send(w, {:do_exit, :linked_crash})
        assert_receive {:DOWN, ^ref2, :process, ^pid2, :linked_crash}, 2000
      end

      test "Process.unlink is honoured; a trapping server survives linked crashes",
           %{start: start} do
        {:ok, pid} = start.(:start, :kv, [], [])
        w = watcher(pid, false)
        send(w, {:do_unlink, self()})
        assert_receive {:unlinked, ^w}, 2000
        send(w, {:do_exit, :crash})
        ref = Process.monitor(pid)
        refute_receive {:DOWN, ^ref, _, _, _}, 300
        assert GenServer.call(pid, :size) == 0

        {:ok, trapping} = start.(:start, :kv, %{trap_exit: true}, [])
        w2 = watcher(trapping, false)
        w2_ref = Process.monitor(w2)
        send(w2, {:do_exit, :crash})
        # w2 gone: its exit signal to the server left before the call below.
        assert_receive {:DOWN, ^w2_ref, :process, ^w2, :crash}, 2000
        Process.exit(trapping, :other)
        assert GenServer.call(trapping, :size) == 0
      end

      test "start_link links to the caller", %{start: start} do
        parent = self()

        {caller, caller_ref} =
          spawn_monitor(fn ->
            send(parent, {:started, start.(:start_link, :kv, [], [])})

            receive do
              {:exit, why} -> exit(why)
            end
          end)

        assert_receive {:started, {:ok, pid}}, 5000
        ref = Process.monitor(pid)
        send(caller, {:exit, :parent_crashed})
        assert_receive {:DOWN, ^caller_ref, :process, ^caller, :parent_crashed}, 2000
        assert_receive {:DOWN, ^ref, :process, ^pid, :parent_crashed}, 2000
      end

      test "a deferred reply: GenServer.call waits until the counter gets there",
           %{start: start} do
        {:ok, counter} = start.(:start, :counter, [], [])
        task = Task.async(fn -> GenServer.call(counter, {:wait_for, 3}, :infinity) end)
        refute Task.yield(task, 200)
        for _ <- 1..3, do: GenServer.cast(counter, :incr)
        assert Task.await(task) == {:ok, 3}
        assert GenServer.call(counter, :get) == 3

        assert {:timeout, _} = catch_exit(GenServer.call(counter, {:wait_for, 5}, 100))
        GenServer.cast(counter, {:add, 2})
        assert GenServer.call(counter, :get) == 5
        refute_receive _, 200
      end

      test ":sys.get_state is the store, a map", %{start: start} do
        {:ok, pid} = start.(:start, :kv, %{preload: %{"a" => 1, b: [2]}}, [])
        assert :sys.get_state(pid) == %{"a" => 1, b: [2]}
        GenServer.cast(pid, {:put, {:c}, %{d: 3}})
        assert :sys.get_state(pid) == %{"a" => 1, :b => [2], {:c} => %{d: 3}}
      end

      test ":sys.replace_state", %{start: start, target: target} do
        {:ok, pid} = start.(:start, :kv, %{preload: %{a: 1}}, [])

        if differs?(:replace_state, target) do
          assert catch_error(:sys.replace_state(pid, &Map.put(&1, :b, 2))) ==
                   {:not_supported_by_c_node, :replace_state}
          assert :sys.get_state(pid) == %{a: 1}
        else
          assert :sys.replace_state(pid, &Map.put(&1, :b, 2)) == %{a: 1, b: 2}
          assert :sys.get_state(pid) == %{a: 1, b: 2}
        end
      end

      test ":sys.get_status has gen_server's shape and prints readably",
           %{start: start, node: node} do
        {:ok, pid} = start.(:start, :kv, [], name: :ex_status)
        for i <- 1..3, do: GenServer.cast(pid, {:put, i, i})
        assert GenServer.call(pid, :size) == 3
        status = :sys.get_status({:ex_status, node})

        assert {:status, ^pid, {:module, :gen_server},
                [pdict, :running, parent, [], [header, {:data, data}, {:data, [{~c"State", summary}]}]]} =
                 status

        assert is_list(pdict) and is_pid(parent)
        assert header == {:header, ~c"Status for generic server ex_status"}
        assert data == [{~c"Status", :running}, {~c"Parent", parent}, {~c"Logged events", []}]
        assert %{entries: 3, memory: memory, messages: messages} = summary
        assert is_integer(memory) and memory > 0 and is_integer(messages)

        printed = inspect(status, limit: :infinity, printable_limit: :infinity)
        assert printed =~ ~r/(~c"|')Status for generic server ex_status/
        assert printed =~ ~r/\{(~c"|')Status(\"|'), :running\}/
        assert printed =~ "entries: 3"
        assert printed =~ "{:module, :gen_server}"
        assert printed =~ inspect(pid)

        :ok = :sys.suspend(pid)
        assert {:status, ^pid, _, [_, :suspended | _]} = :sys.get_status(pid)
        :ok = :sys.resume(pid)
        assert GenServer.call(pid, :size) == 3
      end
    end
  end
end

# modules_test.exs: servers written in C against gen_cnode.h and loaded with
# --load, used from Elixir as any GenServer: the README's ticket module
# (compiled from README.md by make, and driven by the README's own Elixir
# lines), the rate limiter on timers and the digest server on the worker
# pool (examples/). Each test starts a C node of its own with the modules,
# found next to the executable (priv/examples/).

defmodule GenCnode.ModulesTest do
  use ExUnit.Case, async: false

  defp examples do
    exe = System.get_env("GEN_CNODE_EXE") || Path.expand("priv/gen_cnode")
    Path.join(Path.dirname(exe), "examples")
  end

  defp start_node(name) do
    loads = for m <- ~w(readme_ticket ratelimit digest), do: Path.join(examples(), m <> ".so")
    GenCnodeTest.start_cnode(name, %{load: loads})
  end

  # The first ```elixir block of README.md after a heading.
  defp readme_lines(heading \\ "## Writing your own server in C") do
    readme = File.read!(System.get_env("GEN_CNODE_README", "README.md"))
    [_, section] = String.split(readme, heading, parts: 2)
    [_, block | _] = String.split(section, "```elixir\n", parts: 2)
    [code | _] = String.split(block, "```", parts: 2)
    code
  end

  # The README's first session: each `iex>` line, with the node's name made
  # the test node's, gives what the README shows under it (read back as an
  # Elixir term), or exits as shown.
  test "the README's iex session, line by line" do
    {owner, node, log} = start_node("iexsession")
    readme = File.read!(System.get_env("GEN_CNODE_README", "README.md"))
    [_, session] = String.split(readme, "$ iex --name", parts: 2)
    [session | _] = String.split(session, "```", parts: 2)
    [_ | steps] = String.split(session, "iex> ")
    assert length(steps) >= 10

    for step <- steps do
      [line | shown] = String.split(String.trim_trailing(step), "\n")
      code = String.replace(line, ~s(:"kv@127.0.0.1"), inspect(node))
      shown = Enum.join(shown, "\n")

      if String.starts_with?(shown, "** (exit)") do
        assert shown =~ "no process"
        assert {:noproc, _} = catch_exit(Code.eval_string(code))
      else
        {got, _} = Code.eval_string(code)
        {want, _} = Code.eval_string(shown)
        assert {line, got} == {line, want}
      end
    end

    GenCnodeTest.stop_cnode(owner, log)
  end

  test "the README's dependency lines: GenCnode under a supervisor, GenCnode.KV" do
    for f <- ["lib/gen_cnode.ex", "lib/gen_cnode/kv.ex"], do: Code.require_file(f)
    node = :"readmedep#{System.unique_integer([:positive])}@127.0.0.1"
    dir = Path.join(System.tmp_dir!(), "gen_cnode-readme-#{System.unique_integer([:positive])}")
    File.mkdir_p!(dir)
    on_exit(fn -> File.rm_rf!(dir) end)
    priv = Path.dirname(examples())
    code =
      readme_lines("## Use it as a dependency")
      |> String.replace(~s(:"kv@127.0.0.1"), inspect(node))
      |> String.replace(~s("/tmp/myapp-kv"), inspect(dir))
      |> String.replace(":code.priv_dir(:gen_cnode)", inspect(priv))
      |> String.replace("{GenCnode, name: node,", "{GenCnode, name: node, log: #{inspect(Path.join(GenCnodeTest.log_dir(), "readmedep.log"))},")
    {_, binding} = Code.eval_string(code)
    refute Process.alive?(binding[:sup])
  end

  test "the README's figures of a node, as it shows them" do
    {owner, node, log} = start_node("watched")
    :ok = GenServer.call({:kv, node}, {:put, :a, 1})
    code = String.replace(readme_lines("## Watching a node"), ~s(:"kv@127.0.0.1"), inspect(node))
    {_, binding} = Code.eval_string(code)
    stats = binding[:stats]
    assert [%{node: me}] = Enum.filter(stats.connections, &(&1.node == node()))
    assert me == node()
    assert {:ok, _} = Map.fetch(stats, :timers)
    assert :sys.get_state({:gen_cnode, node}) |> Map.has_key?(:connections)
    GenCnodeTest.stop_cnode(owner, log)
  end

  test "the README's hidden node, seen come and go" do
    {owner, node, log} = start_node("hidden")
    :ok = GenServer.call({:kv, node}, {:put, :a, 1})
    code = String.replace(readme_lines("### A hidden node"), ~s(:"kv@127.0.0.1"), inspect(node))
    {_, binding} = Code.eval_string(code)
    assert binding[:node] == node
    assert 1 == GenServer.call({:kv, node}, {:get, :a})
    GenCnodeTest.stop_cnode(owner, log)
  end

  test "the README's connecting to other nodes: the C node dials a peer" do
    {owner, node, log} = start_node("connecting")
    name = :"readme_other#{System.unique_integer([:positive])}"

    {:ok, peer, other} =
      :peer.start(%{
        name: name,
        host: ~c"127.0.0.1",
        longnames: true,
        connection: :standard_io,
        args: [~c"-setcookie", Atom.to_charlist(Node.get_cookie())]
      })

    on_exit(fn -> if Process.alive?(peer), do: :peer.stop(peer) end)
    refute node in :peer.call(peer, :erlang, :nodes, [:hidden])

    code =
      readme_lines("### Connecting to other nodes")
      |> String.replace(~s(:"kv@127.0.0.1"), inspect(node))
      |> String.replace(~s(:"b@127.0.0.1"), inspect(other))

    {_, binding} = Code.eval_string(code)
    assert binding[:other] == other
    GenCnodeTest.wait_until(fn -> node in :peer.call(peer, :erlang, :nodes, [:hidden]) end, 5000)
    assert :ok == :peer.call(peer, :gen_server, :call, [{:kv, node}, {:put, :dialed, true}])
    assert {:error, {:cannot_connect, :nonode}} == GenServer.call({:gen_cnode, node}, {:connect, :nonode})
    :peer.stop(peer)
    GenCnodeTest.stop_cnode(owner, log)
  end

  test "the README's process groups: a C server in :pg, seen join and leave" do
    {owner, node, log} = start_node("pgreadme")
    on_exit(fn -> if Process.whereis(:pg), do: GenServer.stop(:pg) end)
    code = String.replace(readme_lines("### Process groups (pg)"), ~s(:"kv@127.0.0.1"), inspect(node))
    {_, binding} = Code.eval_string(code)
    assert node(binding[:pid]) == node
    assert [] == :pg.get_members(:stores)
    GenCnodeTest.stop_cnode(owner, log)
  end

  test "the README's store over several C nodes: GenCnode.Shard over two" do
    Code.require_file("lib/gen_cnode/shard.ex")
    on_exit(fn -> if Process.whereis(:pg), do: GenServer.stop(:pg) end)
    {:ok, _} = :pg.start(:pg)
    opts = %{pg_join: :kvs, args: [~c"--connect", Atom.to_charlist(node())]}
    nodes = for n <- ["sharda", "shardb"], do: GenCnodeTest.start_cnode(n, opts)
    GenCnodeTest.wait_until(fn -> length(GenCnode.Shard.members(:kvs)) == 2 end, 10_000)
    {_, binding} = Code.eval_string(readme_lines("### One store over several C nodes"))
    assert node(binding[:owner]) in Enum.map(nodes, &elem(&1, 1))
    # the keys spread over both
    for i <- 1..200, do: :ok = GenCnode.Shard.put(:kvs, i, i)
    sizes = for {_, n, _} <- nodes, do: GenServer.call({:kv, n}, :size)
    assert Enum.sum(sizes) == 200 and Enum.all?(sizes, &(&1 > 50))
    assert 7 == GenCnode.Shard.get(:kvs, 7)
    for {owner, _, log} <- nodes, do: GenCnodeTest.stop_cnode(owner, log)
    GenCnodeTest.wait_until(fn -> GenCnode.Shard.members(:kvs) == [] end, 5000)
    assert {:error, :no_members} == GenCnode.Shard.put(:kvs, :k, :v)
  end

  test "the README's ticket module, driven by the README's own lines" do
    {owner, node, log} = start_node("readme")
    code = String.replace(readme_lines(), ~s(:"kv@127.0.0.1"), inspect(node))
    {_, binding} = Code.eval_string(code)
    assert is_pid(binding[:pid]) and node(binding[:pid]) == node
    GenCnodeTest.stop_cnode(owner, log)
  end

  test "a rate limiter on timers: calls, :sys, monitors, GenServer.stop" do
    {owner, node, log} = start_node("ratelimit")

    {:ok, rl} =
      GenServer.call({:gen_cnode, node}, {:start, :ratelimit, %{rate: 10, burst: 3}, [name: :rl]})

    assert for(_ <- 1..4, do: GenServer.call({:rl, node}, :take)) ==
             [:ok, :ok, :ok, {:error, :rate_limited}]

    # One token every 100 ms from the first take: three take 300 ms, less
    # what the takes themselves took.
    {us, :ok} = :timer.tc(fn -> GenServer.call({:rl, node}, {:wait, 3}) end)
    assert us >= 200_000
    assert %{burst: 3, rate: 10, waiting: 0} = :sys.get_state(rl)
    assert {:status, ^rl, {:module, :gen_server}, _} = :sys.get_status(rl)

    ref = Process.monitor(rl)
    assert GenServer.stop(rl, :shutdown) == :ok
    assert_receive {:DOWN, ^ref, :process, ^rl, :shutdown}, 5000
    GenCnodeTest.stop_cnode(owner, log)
  end

  test "blocking work on the worker pool while kv keeps answering" do
    {owner, node, log} = start_node("digest")
    {:ok, d} = GenServer.call({:gen_cnode, node}, {:start, :digest, [], [name: :digest]})
    data = :crypto.strong_rand_bytes(300_000)
    assert GenServer.call(d, {:sha256, data}) == {:ok, :crypto.hash(:sha256, data)}

    task = Task.async(fn -> GenServer.call(d, {:sleep, 1000}) end)
    # The job on a worker: the node's stats count it while it runs (1 s).
    GenCnodeTest.wait_until(
      fn -> match?(%{jobs_running: 1}, GenServer.call({:gen_cnode, node}, :stats)) end,
      5000
    )
    {us, nil} = :timer.tc(fn -> GenServer.call({:kv, node}, {:get, :nothing}) end)
    assert us < 500_000
    assert Task.await(task) == :slept
    assert %{running: 0, done: 2} = :sys.get_state(d)
    GenCnodeTest.stop_cnode(owner, log)
  end
end

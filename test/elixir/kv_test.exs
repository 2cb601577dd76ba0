# kv_test.exs: the KeyValue server of the C node, used from Elixir exactly as
# a user would: GenServer.cast/call on {:kv, node}, Elixir terms as keys and
# values, Node.ping, many concurrent Task callers, :noproc for unknown names.
# The C node and epmd come from test_helper.exs.

defmodule GenCnode.KvTest.Point do
  defstruct x: 0, y: 0, label: nil
end

defmodule GenCnode.KvTest do
  use ExUnit.Case, async: false

  alias GenCnode.KvTest.Point

  setup do
    node = GenCnodeTest.cnode()
    {:ok, node: node, server: {:kv, node}}
  end

  test "the iex session: cast a put, then call a get", %{node: node} do
    assert GenServer.cast({:kv, node}, {:put, :foo, "bar"}) == :ok
    assert GenServer.call({:kv, node}, {:get, :foo}) == "bar"
  end

  test "Node.ping answers :pong and the C node is a hidden node", %{node: node} do
    assert Node.ping(node) == :pong
    assert node in Node.list(:hidden)
    refute node in Node.list()
  end

  test "get of an absent key is nil, fetch is :error", %{server: server} do
    assert GenServer.call(server, {:get, {:absent, make_ref()}}) == nil
    assert GenServer.call(server, {:fetch, {:absent, make_ref()}}) == :error
    :ok = GenServer.cast(server, {:put, :fetch_me, 42})
    assert GenServer.call(server, {:fetch, :fetch_me}) == {:ok, 42}
  end

  test "delete by cast; put and delete by call answer :ok", %{server: server} do
    :ok = GenServer.cast(server, {:put, :doomed, 1})
    assert GenServer.call(server, {:get, :doomed}) == 1
    assert GenServer.cast(server, {:delete, :doomed}) == :ok
    assert GenServer.call(server, {:get, :doomed}) == nil
    assert GenServer.call(server, {:put, :by_call, [1, 2]}) == :ok
    assert GenServer.call(server, {:get, :by_call}) == [1, 2]
    assert GenServer.call(server, {:delete, :by_call}) == :ok
    assert GenServer.call(server, {:fetch, :by_call}) == :error
  end

  test "an unknown call gets an error reply and the server keeps serving", %{server: server} do
    :ok = GenServer.cast(server, {:put, :still_here, true})

    assert GenServer.call(server, {:frobnicate, 1}) ==
             {:error, {:unknown_call, {:frobnicate, 1}}}

    assert GenServer.call(server, :size) |> is_integer()
    assert GenServer.call(server, {:get, :still_here}) == true
  end

  test "Elixir terms as keys and values round-trip", %{server: server} do
    terms = [
      %Point{x: 1, y: -2, label: "p"},
      %{a: 1, b: %{"nested" => [1, 2, 3]}},
      ~c"a charlist",
      "a string",
      "ключ 🙂",
      :"ключ",
      :"🙂",
      {:ok, {1, 2.5, [3]}},
      [a: 1, b: 2],
      1..10,
      MapSet.new([1, 2, 3]),
      ~D[2024-02-29],
      DateTime.from_unix!(1_700_000_000),
      123_456_789_012_345_678_901_234_567_890,
      -123_456_789_012_345_678_901_234_567_890,
      3.25,
      nil,
      true,
      <<1, 2, 3>>,
      <<1::size(3)>>,
      self(),
      make_ref(),
      &String.upcase/1,
      [1 | 2]
    ]

    indexed = Enum.with_index(terms)

    for {t, i} <- indexed do
      :ok = GenServer.cast(server, {:put, t, {:key_of, i}})
      :ok = GenServer.cast(server, {:put, {:value_of, i}, t})
    end

    for {t, i} <- indexed do
      assert GenServer.call(server, {:get, t}) === {:key_of, i}
      assert GenServer.call(server, {:get, {:value_of, i}}) === t
    end
  end

  test "1 and 1.0 are different keys", %{server: server} do
    :ok = GenServer.cast(server, {:put, {:num, 1}, :integer})
    :ok = GenServer.cast(server, {:put, {:num, 1.0}, :float})
    assert GenServer.call(server, {:get, {:num, 1}}) == :integer
    assert GenServer.call(server, {:get, {:num, 1.0}}) == :float
  end

  test "many concurrent Task callers all get their own answers", %{server: server} do
    results =
      1..200
      |> Task.async_stream(
        fn i ->
          key = {:task, i}
          :ok = GenServer.cast(server, {:put, key, i * i})
          {i, GenServer.call(server, {:get, key}), GenServer.call(server, {:fetch, key})}
        end,
        max_concurrency: 200,
        timeout: 60_000
      )
      |> Enum.map(fn {:ok, result} -> result end)

    assert length(results) == 200
    assert Enum.reject(results, fn {i, got, fetched} -> got == i * i and fetched == {:ok, i * i} end) == []
  end

  test "a call to an unknown name exits with :noproc at once", %{node: node} do
    {us, result} =
      :timer.tc(fn -> catch_exit(GenServer.call({:nosuch, node}, {:get, :foo}, 5000)) end)

    assert {:noproc, {GenServer, :call, _}} = result
    assert us < 1_000_000, "noproc took #{div(us, 1000)} ms"
    assert Node.ping(node) == :pong
  end

  test "the :gen_cnode_kv client module", %{server: server} do
    size = :gen_cnode_kv.size(server)
    assert :gen_cnode_kv.put(server, "client key", %{v: 1}) == :ok
    assert :gen_cnode_kv.get(server, "client key") == %{v: 1}
    assert :gen_cnode_kv.fetch(server, "client key") == {:ok, %{v: 1}}
    assert "client key" in :gen_cnode_kv.keys(server)
    assert :gen_cnode_kv.size(server) == size + 1
    assert :gen_cnode_kv.delete(server, "client key") == :ok
    assert :gen_cnode_kv.get(server, "client key") == nil
    assert :gen_cnode_kv.size(server) == size
  end
end

defmodule GenCnode.LifecycleTest do
  # Each test starts a C node of its own.
  use ExUnit.Case, async: false

  test "a C node of our own serves, then stops cleanly on SIGTERM and unpublishes" do
    {owner, node, log} = GenCnodeTest.start_cnode("kvlife")
    server = {:kv, node}
    assert GenServer.call(server, :size) == 0
    assert GenServer.call(server, :keys) == []
    for i <- 1..100, do: :ok = GenServer.cast(server, {:put, i, "v#{i}"})
    assert GenServer.call(server, :size) == 100
    assert Enum.sort(GenServer.call(server, :keys)) == Enum.to_list(1..100)
    assert :gen_cnode.node(owner) == node
    GenCnodeTest.stop_cnode(owner, log)
    {:ok, names} = :net_adm.names(~c"127.0.0.1")
    refute List.keymember?(names, ~c"kvlife", 0)
  end

  test "--register names the server" do
    {owner, node, log} = GenCnodeTest.start_cnode("kvstore", %{register: :store})
    :ok = GenServer.cast({:store, node}, {:put, :k, :v})
    assert GenServer.call({:store, node}, {:get, :k}) == :v
    assert {:noproc, _} = catch_exit(GenServer.call({:kv, node}, {:get, :k}, 5000))
    GenCnodeTest.stop_cnode(owner, log)
  end
end

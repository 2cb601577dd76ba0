defmodule ElixirAppTest do
  use ExUnit.Case

  setup do
    %{node: ElixirApp.Application.cnode()}
  end

  test "the supervisor runs the C node", %{node: node} do
    assert [{GenCnode, owner, :worker, _}] = Supervisor.which_children(ElixirApp.Supervisor)
    assert GenCnode.node(owner) == node
    assert Node.ping(node) == :pong
  end

  test "put and get through GenCnode.KV", %{node: node} do
    kv = {:kv, node}
    assert GenCnode.KV.put(kv, :foo, %{any: ["term", 1.0]}) == :ok
    assert GenCnode.KV.get(kv, :foo) == %{any: ["term", 1.0]}
    assert GenCnode.KV.fetch(kv, :foo) == {:ok, %{any: ["term", 1.0]}}
    assert GenCnode.KV.get(kv, :nothing) == nil
    assert GenCnode.KV.fetch(kv, :nothing, 1000) == :error
    assert :foo in GenCnode.KV.keys(kv)
    n = GenCnode.KV.size(kv)
    assert GenCnode.KV.delete(kv, :foo) == :ok
    assert GenCnode.KV.size(kv) == n - 1
  end

  test "the rate limiter hands out its burst, then refills", %{node: node} do
    rl = {:rl, node}
    assert %{rate: 100, burst: 5} = :sys.get_state(rl)
    # Take until refused: the bucket holds 5 and refills one token per 10 ms,
    # far slower than calls come.
    {taken, answer} = take_until_refused(rl, 0)
    assert answer == {:error, :rate_limited}
    assert taken >= 5
    # {:wait, n} answers once n tokens could be taken.
    assert GenServer.call(rl, {:wait, 3}, 5000) == :ok
  end

  defp take_until_refused(rl, taken) do
    case GenServer.call(rl, :take) do
      :ok when taken < 1000 -> take_until_refused(rl, taken + 1)
      answer -> {taken, answer}
    end
  end
end

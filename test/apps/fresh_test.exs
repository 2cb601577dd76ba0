# test/fresh_test.exs of the project that `mix new fresh --sup` makes in
# tools/run-tests' apps stages: a C node under a supervisor, one put, one get.
defmodule FreshTest do
  use ExUnit.Case

  test "a C node under a supervisor stores and returns a value" do
    node = :"fresh_kv@127.0.0.1"
    {:ok, sup} = Supervisor.start_link([{GenCnode, name: node}], strategy: :one_for_one)

    try do
      assert [{GenCnode, owner, :worker, _}] = Supervisor.which_children(sup)
      assert GenCnode.node(owner) == node
      assert File.exists?(Path.join(:code.priv_dir(:gen_cnode), "gen_cnode"))
      assert GenCnode.KV.put({:kv, node}, :greeting, "hello") == :ok
      assert GenCnode.KV.get({:kv, node}, :greeting) == "hello"
    after
      # The owner stops the C node by its OS pid, within its shutdown time.
      Supervisor.stop(sup, :normal, 20_000)
    end
  end
end

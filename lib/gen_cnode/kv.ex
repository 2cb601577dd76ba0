defmodule GenCnode.KV do
  @moduledoc """
  The client API of the KeyValue server a C node hosts: plain
  `GenServer.call/3` and `GenServer.cast/2`, nothing more (the same requests
  work from any node without this module).

  `server` is any `t:GenServer.server/0`: `{:kv, :"kv@127.0.0.1"}` (the
  name given by the `:register` option, `:kv` by default, and the node), or
  the pid of a server started through the node's starter. Keys and values are
  any terms; two keys are the same key exactly when `===` says so (`1` and
  `1.0` are two keys).

      server = {:kv, :"kv@127.0.0.1"}
      :ok = GenCnode.KV.put(server, :foo, %{any: ["term", 1.0]})
      %{any: ["term", 1.0]} = GenCnode.KV.get(server, :foo)
      {:ok, _} = GenCnode.KV.fetch(server, :foo)
      :error = GenCnode.KV.fetch(server, :nothing)
      1 = GenCnode.KV.size(server)
      :ok = GenCnode.KV.delete(server, :foo)

  `put/3` and `delete/2` are casts: they return at once, and a call that
  follows from the same process sees their effect (messages between two
  processes arrive in order).
  """

  @timeout 5000

  @doc "Stores `value` under `key`. A cast: returns `:ok` at once."
  @spec put(GenServer.server(), term(), term()) :: :ok
  def put(server, key, value), do: GenServer.cast(server, {:put, key, value})

  @doc "The value stored under `key`, or `nil` when there is none."
  @spec get(GenServer.server(), term(), timeout()) :: term()
  def get(server, key, timeout \\ @timeout), do: GenServer.call(server, {:get, key}, timeout)

  @doc "`{:ok, value}`, or `:error` when `key` is absent."
  @spec fetch(GenServer.server(), term(), timeout()) :: {:ok, term()} | :error
  def fetch(server, key, timeout \\ @timeout),
    do: GenServer.call(server, {:fetch, key}, timeout)

  @doc "Removes `key`. A cast: returns `:ok` at once."
  @spec delete(GenServer.server(), term()) :: :ok
  def delete(server, key), do: GenServer.cast(server, {:delete, key})

  @doc "The number of keys stored."
  @spec size(GenServer.server(), timeout()) :: non_neg_integer()
  def size(server, timeout \\ @timeout), do: GenServer.call(server, :size, timeout)

  @doc "Every key stored, in no particular order."
  @spec keys(GenServer.server(), timeout()) :: [term()]
  def keys(server, timeout \\ @timeout), do: GenServer.call(server, :keys, timeout)
end

# KvServer: the C node's KeyValue server (README's table) written as an
# ordinary Elixir GenServer, the BEAM side of `make bench`.
#
# Same protocol as c_src/kv.c: cast {:put, k, v} / {:delete, k}; call
# {:get, k} -> v | nil, {:fetch, k} -> {:ok, v} | :error, {:put, k, v} and
# {:delete, k} -> :ok, :size, :keys, anything else ->
# {:error, {:unknown_call, request}}. Unknown casts and plain messages are
# ignored. The state is the store itself, a plain map. Nothing here knows about
# benchmarks: bench/bench_boot.erl starts it on a node of its own.
defmodule KvServer do
  use GenServer

  @doc "Starts the server unlinked, registered as `name`."
  def start(name \\ :kv), do: GenServer.start(__MODULE__, %{}, name: name)

  @impl true
  def init(store), do: {:ok, store}

  @impl true
  def handle_call({:get, k}, _from, store), do: {:reply, Map.get(store, k), store}
  def handle_call({:fetch, k}, _from, store), do: {:reply, Map.fetch(store, k), store}
  def handle_call({:put, k, v}, _from, store), do: {:reply, :ok, Map.put(store, k, v)}
  def handle_call({:delete, k}, _from, store), do: {:reply, :ok, Map.delete(store, k)}
  def handle_call(:size, _from, store), do: {:reply, map_size(store), store}
  def handle_call(:keys, _from, store), do: {:reply, Map.keys(store), store}
  def handle_call(req, _from, store), do: {:reply, {:error, {:unknown_call, req}}, store}

  @impl true
  def handle_cast({:put, k, v}, store), do: {:noreply, Map.put(store, k, v)}
  def handle_cast({:delete, k}, store), do: {:noreply, Map.delete(store, k)}
  def handle_cast(_msg, store), do: {:noreply, store}

  @impl true
  def handle_info(_msg, store), do: {:noreply, store}
end

defmodule GenCnode do
  @moduledoc """
  Starts, supervises and stops a gen_cnode C node from Elixir: a thin face
  over the Erlang module `:gen_cnode`, which does the work.

  Each C node is owned by one process, the pid `start/1` and `start_link/1`
  return. The owner runs `priv/gen_cnode`, returns once the node answers a
  ping, forwards the node's log lines to `Logger`, starts it again if it dies,
  and stops it when told to or when the owner itself goes away. The VM must
  be distributed with long names (`--name`), as the node joins its cluster.

      children = [
        {GenCnode, name: :"kv@127.0.0.1",
                   load: [Path.join(:code.priv_dir(:gen_cnode), "examples/ratelimit.so")],
                   start: ["ratelimit:rl=\#{rate => 100, burst => 5}"]}
      ]
      Supervisor.start_link(children, strategy: :one_for_one)

      :ok = GenCnode.KV.put({:kv, :"kv@127.0.0.1"}, :foo, "bar")
      "bar" = GenCnode.KV.get({:kv, :"kv@127.0.0.1"}, :foo)
      :ok = GenServer.call({:rl, :"kv@127.0.0.1"}, :take)

  ## Options

  A keyword list or a map, with the keys `:gen_cnode` takes (all optional):

    * `:name` - the node name, an atom or string; a bare name gets
      `@127.0.0.1` (`:"kv@127.0.0.1"`); `nil`, `:undefined` and `:""` are
      refused (`{:badopt, {:name, nil}}`)
    * `:cookie` - an atom (this node's cookie)
    * `:register` - the name the KeyValue server registers as (`:kv`; not
      `nil`, `:undefined` or `:""`)
    * `:data_dir` - makes that KeyValue store durable, in this folder
    * `:load` - server modules to load: `["path.so" | "path.so=args"]`
    * `:start` - servers to start at boot: `["module[:name][=arg]"]`, arg in
      Erlang syntax
    * `:workers` - threads for blocking jobs
    * `:pg_join` - `group` or `{scope, group}` (atoms): the KeyValue server
      joins that `:pg` group at boot (as `GenCnode.Shard` wants); a scope
      other than `:pg` is run on the node too (`--pg-scope`)
    * `:log_level` - `:error | :warning | :notice | :info | :debug`
    * `:args` - other command-line strings for the C node
    * `:executable` - the C node's path (default: `$GEN_CNODE_EXE`, else
      `priv/gen_cnode` of this application)
    * `:env` - extra environment, as `Port.open/2`'s `:env`
    * `:start_timeout` - ms to wait for the node to answer a ping (10000; at
      most `0xFFFFFFFF - 10000`)
    * `:log` - a file the node's lines are appended to (default: `Logger`)
    * `:restart` - `%{intensity: 10, period: 60}` (restarts of the C node the
      owner allows within `period` seconds), or `false`
    * `:id` - the child id `child_spec/1` gives (`GenCnode`)

  Strings may be binaries or charlists. Errors from `start/1`:
  `:not_distributed`, `{:needs_long_names, node}`,
  `{:needs_fully_qualified_host, node}` (a host with no dot that is no
  address, such as `localhost`), `{:no_executable, path}`,
  `{:name_taken, node}` (a node of that name held it for the whole
  `:start_timeout`), `{:badopt, {key, value}}` (a key not listed above too),
  `{:exited, status, last_lines}`, `{:start_timeout, last_lines}`,
  among others. The cookie reaches the node in its environment, never on
  its command line.
  """

  @typedoc "Options, as a keyword list or a map (see the module doc)."
  @type opts :: keyword() | map()

  @doc "Starts a C node, unlinked; returns once it answers a ping."
  @spec start(opts()) :: {:ok, pid()} | {:error, term()}
  def start(opts \\ []), do: :gen_cnode.start(to_map(opts))

  @doc "Starts a C node whose owner is linked to the caller; returns once it answers a ping."
  @spec start_link(opts()) :: {:ok, pid()} | {:error, term()}
  def start_link(opts \\ []), do: :gen_cnode.start_link(to_map(opts))

  @doc """
  A child specification: the owner as a permanent worker, with the id
  `opts[:id]` (default `GenCnode`). Give each node under one supervisor its
  own `:id`.
  """
  @spec child_spec(opts()) :: Supervisor.child_spec()
  def child_spec(opts) do
    map = to_map(opts)

    # :gen_cnode.child_spec/1 is newer than :gen_cnode.start_link/1. Its
    # default id is :gen_cnode; from Elixir it is GenCnode, as {GenCnode, opts}
    # suggests.
    if Code.ensure_loaded?(:gen_cnode) and function_exported?(:gen_cnode, :child_spec, 1) do
      :gen_cnode.child_spec(Map.put_new(map, :id, __MODULE__))
    else
      %{
        id: Map.get(map, :id, __MODULE__),
        start: {:gen_cnode, :start_link, [Map.delete(map, :id)]},
        restart: :permanent,
        shutdown: 8_000,
        type: :worker,
        modules: [:gen_cnode]
      }
    end
  end

  @doc """
  Stops the C node and its owner: `:ok` when the node exited with status 0,
  `{:error, {:exit_status, status}}` or `{:error, {:killed, status}}` otherwise.
  The owner exits `:normal`, so a supervisor restarts a permanent one: to
  stop a supervised node, use `Supervisor.terminate_child/2`.
  """
  @spec stop(pid()) :: :ok | {:error, term()}
  def stop(owner), do: :gen_cnode.stop(owner)

  @doc "The C node's node name, such as `:\"kv@127.0.0.1\"`."
  @spec node(pid()) :: node()
  def node(owner), do: :gen_cnode.node(owner)

  @doc "The C node's operating-system process id."
  @spec os_pid(pid()) :: integer()
  def os_pid(owner), do: :gen_cnode.os_pid(owner)

  @doc false
  @spec to_map(opts()) :: map()
  def to_map(opts) when is_map(opts), do: opts
  def to_map(opts) when is_list(opts), do: Map.new(opts)
end

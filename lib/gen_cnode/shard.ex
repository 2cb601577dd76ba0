defmodule GenCnode.Shard do
  @moduledoc """
  One KeyValue store over several C nodes: each key is owned by one member
  of a `:pg` group, chosen by rendezvous hashing over the members' node
  names. The Elixir face of `:gen_cnode_shard` (see that module for what
  happens to keys when nodes come and go).

  Each C node's KeyValue server joins the group at boot (`pg_join: :kvs` in
  `GenCnode`'s options, or `--pg-join kvs`), and this node runs the `:pg`
  scope (`:pg.start_link()` in its supervision tree):

      :ok = GenCnode.Shard.put(:kvs, :foo, "bar")
      "bar" = GenCnode.Shard.get(:kvs, :foo)
      owner = GenCnode.Shard.owner(:kvs, :foo)
      :ok = GenCnode.Shard.delete(:kvs, :foo)

  Every client node must be connected to every member C node, before its
  first call and while it uses the group: each client computes owners from
  the members its own `:pg` scope knows, which holds a C node's members only
  while connected to it, and one that sees fewer C nodes than another picks
  other owners (connected to one of two, it writes every key there, where a
  client connected to both does not look for half of them). Start each C
  node with `--connect` for every client node (`args: ["--connect",
  "app1@host", ...]`), or connect each client to every C node and wait until
  `members/2` lists them all.

  `put/4` and `delete/3` are calls: `:ok` means the owner applied them.
  When the group is empty, `put/4`, `get/3` and `delete/3` return
  `{:error, :no_members}`, `owner/3` returns `:none` and `members/2` `[]`.
  Options: `:scope` (`:pg`) and `:timeout` (5000 ms).
  """

  @spec put(term(), term(), term(), map()) :: :ok | {:error, :no_members}
  def put(group, key, value, opts \\ %{}), do: :gen_cnode_shard.put(group, key, value, opts)

  @doc "The value on the key's owner, or `nil`."
  @spec get(term(), term(), map()) :: term()
  def get(group, key, opts \\ %{}), do: :gen_cnode_shard.get(group, key, opts)

  @spec delete(term(), term(), map()) :: :ok | {:error, :no_members}
  def delete(group, key, opts \\ %{}), do: :gen_cnode_shard.delete(group, key, opts)

  @doc "The member that owns `key` now, or `:none`."
  @spec owner(term(), term(), map()) :: pid() | :none
  def owner(group, key, opts \\ %{}), do: :gen_cnode_shard.owner(group, key, opts)

  @doc "The group's members now, one per node."
  @spec members(term(), map()) :: [pid()]
  def members(group, opts \\ %{}), do: :gen_cnode_shard.members(group, opts)
end

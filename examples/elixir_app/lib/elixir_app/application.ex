defmodule ElixirApp.Application do
  @moduledoc """
  An application whose supervisor runs a gen_cnode C node: the KeyValue store
  (registered as `:kv`) and a rate limiter (`:rl`, examples/ratelimit.c,
  loaded from gen_cnode's priv/). The VM must be distributed with long names
  (`elixir --name app@127.0.0.1 -S mix run --no-halt`).
  """
  use Application

  @node :"app_kv@127.0.0.1"

  @doc "The C node's name."
  def cnode, do: Application.get_env(:elixir_app, :cnode, @node)

  @impl true
  def start(_type, _args) do
    ratelimit = Path.join(:code.priv_dir(:gen_cnode), "examples/ratelimit.so")

    children = [
      {
        GenCnode,
        # The argument is an Erlang term: a map, in Erlang syntax.
        name: cnode(), load: [ratelimit], start: ["ratelimit:rl=\#{rate => 100, burst => 5}"]
      }
    ]

    Supervisor.start_link(children, strategy: :one_for_one, name: ElixirApp.Supervisor)
  end
end

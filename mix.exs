# mix.exs: gen_cnode as a Mix project, so that another project can depend on
# it ({:gen_cnode, path: ...} or {:gen_cnode, git: ...}). Mix compiles the
# Erlang modules in src/ and the Elixir face in lib/; the C node is built by
# `make c` (the compiler lib/mix/tasks/compile.gen_cnode_c.ex) into priv/,
# where :code.priv_dir(:gen_cnode) finds it. No dependencies; rebar3 users
# have rebar.config.

# The compiler must exist before this project compiles (it builds the C node
# first): load it from its source now.
Code.require_file("lib/mix/tasks/compile.gen_cnode_c.ex", __DIR__)

defmodule GenCnode.MixProject do
  use Mix.Project

  @version "0.2.0"

  def project do
    [
      app: :gen_cnode,
      version: @version,
      elixir: "~> 1.14",
      elixirc_paths: ["lib"],
      erlc_paths: ["src"],
      erlc_options: [:debug_info],
      compilers: [:gen_cnode_c] ++ Mix.compilers(),
      # The suites in test/ run under tools/run-tests (make test), not mix test.
      test_paths: [],
      deps: [],
      description: "A C node that hosts gen_servers for Erlang/Elixir clusters",
      package: [licenses: ["Apache-2.0"]]
    ]
  end

  def application do
    [extra_applications: [:logger]]
  end
end

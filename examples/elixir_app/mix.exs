defmodule ElixirApp.MixProject do
  use Mix.Project

  def project do
    [
      app: :elixir_app,
      version: "0.1.0",
      elixir: "~> 1.14",
      start_permanent: Mix.env() == :prod,
      deps: deps(),
      # The application needs distribution, which test/test_helper.exs starts
      # (with its own epmd) before it starts the application.
      aliases: [test: "test --no-start"]
    ]
  end

  def application do
    [extra_applications: [:logger], mod: {ElixirApp.Application, []}]
  end

  defp deps do
    [
      # This checkout; in a project of your own, its path or
      # {:gen_cnode, git: "https://.../gen_cnode.git", branch: "main"}
      {:gen_cnode, path: "../.."}
    ]
  end
end

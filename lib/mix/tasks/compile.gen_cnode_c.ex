# gen_cnode's mix.exs loads this file before the project compiles (the
# compiler builds the C node first, so it must exist by then). When Mix
# compiles lib/ afterwards the module is already there: define it only when
# it is not, rather than redefine it (and warn).
if not Code.ensure_loaded?(Mix.Tasks.Compile.GenCnodeC) do
  defmodule Mix.Tasks.Compile.GenCnodeC do
    @shortdoc "Builds the gen_cnode C node into priv/ (make c)"
    @moduledoc """
    Builds the C side of gen_cnode with `make c` in the gen_cnode project's own
    directory (the dependency's source directory when gen_cnode is a
    dependency): `priv/gen_cnode`, `priv/libgen_cnode.a`,
    `priv/include/gen_cnode.h` and `priv/examples/*.so`.

    It is incremental: it asks `make -q c` first and returns `:noop`, printing
    nothing, when everything is up to date. A failing `make` is a Mix error
    that carries make's output. `mix compile --verbose` prints make's output on
    success too. The `MAKE` environment variable names another make (GNU make
    is needed, `gmake` on the BSDs).

    gen_cnode's `mix.exs` lists it first: `compilers: [:gen_cnode_c] ++ Mix.compilers()`.
    """
    use Mix.Task.Compiler

    @impl true
    def run(args) do
      {opts, _, _} = OptionParser.parse(args, switches: [verbose: :boolean])
      config = Mix.Project.config()
      dir = Path.dirname(Mix.Project.project_file())
      make = make!()

      case System.cmd(make, ["-q", "c"], cd: dir, stderr_to_stdout: true) do
        {_, 0} ->
          {:noop, []}

        {_, _} ->
          build(make, dir, opts)
          # Mix linked (or copied) priv/ into the build directory before the
          # compilers ran: again now, so that :code.priv_dir(:gen_cnode) holds
          # the C node (a copy would be stale; a fresh clone may have had no
          # priv/ to link).
          Mix.Project.build_structure(config)
          {:ok, []}
      end
    end

    defp build(make, dir, opts) do
      case System.cmd(make, ["c"], cd: dir, stderr_to_stdout: true) do
        {out, 0} ->
          if opts[:verbose], do: Mix.shell().info(out)
          Mix.shell().info("Compiled the gen_cnode C node (#{make} c in #{dir})")

        {out, status} ->
          Mix.raise("""
          could not build the gen_cnode C node: `#{make} c` in #{dir} exited with status #{status}:

          #{out}\
          """)
      end
    end

    defp make! do
      make = System.get_env("MAKE", "make")

      System.find_executable(make) ||
        Mix.raise("could not build the gen_cnode C node: #{make} not found (GNU make is needed)")
    end

    @impl true
    def clean, do: :ok
  end
end

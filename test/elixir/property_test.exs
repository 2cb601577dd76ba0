# property_test.exs: the C node's KeyValue server against an Elixir Map, with
# random Elixir terms: structs, keyword lists, charlists, strings, tuples,
# maps, big integers, floats, unicode atoms, bitstrings, improper lists, pids,
# refs, ports, funs and closures, nested up to 6 deep. Random puts and deletes
# (casts and calls) go to the C node and to the Map; every get, fetch and size
# is checked against the Map (===), and so is :sys.get_state at the end.
#
# Seeded: $GEN_CNODE_SEED if set, else ExUnit's seed (printed by ExUnit as
# "Randomized with seed N"); the seed in use is printed, and
# GEN_CNODE_SEED=N reruns with it. Each test starts a C node of its own
# (GenCnodeTest.start_cnode/2, stopped by pid on exit) and checks it stops
# cleanly. Never -0.0: on OTP 25 a Map cannot hold 0.0 and -0.0 apart, while
# the C node does (as OTP 27).

defmodule GenCnode.PropertyTest.Point do
  defstruct x: 0, y: 0, label: nil
end

defmodule GenCnode.PropertyTest.User do
  defstruct name: "", tags: [], meta: %{}
end

defmodule GenCnode.PropertyTest.Gen do
  @moduledoc "Random Elixir terms from the process's :rand state."
  import Bitwise
  alias GenCnode.PropertyTest.{Point, User}

  def terms(n, depth, max_size), do: for(_ <- 1..n, do: term(depth, :rand.uniform(max_size)))

  def term(depth, size) when depth <= 0 or size <= 1, do: leaf()

  def term(depth, size) do
    case :rand.uniform(12) do
      n when n <= 3 -> leaf()
      4 -> List.to_tuple(children(depth, size, :rand.uniform(5) - 1))
      5 -> children(depth, size, :rand.uniform(5) - 1)
      6 -> improper(children(depth, size, :rand.uniform(3)), leaf())
      7 -> Map.new(pairs(depth, size, :rand.uniform(4) - 1))
      8 -> keyword(depth, size)
      9 -> struct_of(depth, size)
      10 -> closure(term(depth - 1, size - 1))
      11 -> %{"string key" => term(depth - 1, div(size, 2)), atom_key: term(depth - 1, div(size, 2))}
      12 -> {:ok, term(depth - 1, size - 1)}
    end
  end

  defp children(_depth, _size, 0), do: []
  defp children(depth, size, n), do: for(_ <- 1..n, do: term(depth - 1, div(size, n)))

  defp pairs(_depth, _size, 0), do: []

  defp pairs(depth, size, n) do
    for _ <- 1..n, do: {term(depth - 1, div(size, 2 * n)), term(depth - 1, div(size, 2 * n))}
  end

  defp improper(elems, tail), do: List.foldr(elems, tail, fn e, acc -> [e | acc] end)

  defp keyword(depth, size) do
    keys = Enum.take(Enum.shuffle([:a, :b, :name, :opts, :"ключ", :"🙂"]), :rand.uniform(3))
    for k <- keys, do: {k, term(depth - 1, div(size, length(keys)))}
  end

  defp struct_of(depth, size) do
    half = div(size, 2)

    case :rand.uniform(5) do
      1 -> %Point{x: :rand.uniform(100), y: term(depth - 1, half), label: leaf()}
      2 -> %User{name: string(), tags: keyword(depth, half), meta: %{seen: term(depth - 1, half)}}
      3 -> MapSet.new(children(depth, size, :rand.uniform(4)))
      4 -> Date.new!(2000 + :rand.uniform(100), :rand.uniform(12), :rand.uniform(28))
      5 -> :rand.uniform(50)..(50 + :rand.uniform(50))
    end
  end

  defp closure(free) do
    case :rand.uniform(3) do
      1 -> fn -> free end
      2 -> fn a -> {a, free} end
      3 -> other = leaf(); fn a, b -> [a, b, free, other] end
    end
  end

  def leaf do
    case :rand.uniform(20) do
      1 -> :rand.uniform(256) - 1
      2 -> :rand.uniform(2_000_000) - 1_000_000
      3 -> pick([134_217_727, -134_217_728, 2_147_483_647, -2_147_483_648, 2_147_483_648])
      4 -> big()
      5 -> float()
      6 -> pick(atoms())
      7 -> string()
      8 -> bits()
      9 -> charlist()
      10 -> pick([self(), :erlang.list_to_pid(~c"<0.0.0>"), external_pid()])
      11 -> pick([make_ref(), external_ref()])
      12 -> pick([a_port(), external_port()])
      13 -> pick([&Enum.reverse/1, &String.upcase/1, &:lists.map/2, fn -> :ok end, fn a -> a end])
      14 -> pick([[], {}, %{}, "", ~c"", [[]], nil, true, false])
      15 -> pick([1, 1.0, 2, 2.0, 0, 0.0, -1, -1.0])
      16 -> random_bytes(:rand.uniform(24) - 1)
      17 -> pick(atoms())
      18 -> [:rand.uniform(255) | :rand.uniform(255)]
      19 -> random_bytes(100 + :rand.uniform(200))
      20 -> {string(), charlist()}
    end
  end

  defp big do
    n = :rand.uniform(1 <<< (:rand.uniform(300) + 60))
    if :rand.uniform(2) == 1, do: n, else: -n
  end

  # Any float but -0.0 (a negative float here is never zero).
  defp float do
    case :rand.uniform(4) do
      1 -> :rand.uniform() * 1000
      2 -> -(:rand.uniform() + 0.001) * :math.pow(10, :rand.uniform(300))
      3 -> :rand.uniform() * :math.pow(10, -:rand.uniform(300))
      4 -> pick([0.0, 1.0, 0.5, 1.0e300, 5.0e-324, 1.7976931348623157e308])
    end
  end

  defp atoms do
    [:a, :ok, :error, nil, true, false, :"", :"hello world", :"ключ", :"🙂", :"x🙂ключ",
     Enum, GenServer, GenCnode.PropertyTest.Point, :put, :get, String.to_atom(String.duplicate("z", 255))]
  end

  defp string, do: pick(["", "a string", "ключ 🙂", "tab\tnewline\n", "é", "\0nul", String.duplicate("x", 70)])
  defp charlist, do: pick([~c"a charlist", [0x1F642, ?a], ~c"", [255, 256, 0]])

  defp bits do
    b = random_bytes(:rand.uniform(10) - 1)
    n = :rand.uniform(7)
    <<b::binary, :rand.uniform(1 <<< n) - 1::size(n)>>
  end

  defp random_bytes(n), do: for(_ <- 1..n//1, into: <<>>, do: <<:rand.uniform(256) - 1>>)

  defp pick(list), do: Enum.at(list, :rand.uniform(length(list)) - 1)

  defp a_port do
    case Port.list() do
      [p | _] -> p
      [] -> raise "no port on this node"
    end
  end

  @node "elsewhere@127.0.0.1"
  def external_pid do
    :erlang.binary_to_term(<<131, 88, 119, byte_size(@node), @node::binary, 77::32, 3::32, 123_456::32>>)
  end

  def external_ref do
    :erlang.binary_to_term(
      <<131, 90, 3::16, 119, byte_size(@node), @node::binary, 123_456::32, 1::32, 2::32, 3::32>>
    )
  end

  def external_port do
    :erlang.binary_to_term(<<131, 89, 119, byte_size(@node), @node::binary, 4711::32, 123_456::32>>)
  end
end

defmodule GenCnode.PropertyTest do
  use ExUnit.Case, async: false

  import Bitwise, warn: false
  alias GenCnode.PropertyTest.{Gen, Point, User}

  @moduletag timeout: 90_000

  setup context do
    seed =
      case System.get_env("GEN_CNODE_SEED") do
        s when is_binary(s) and s != "" -> String.to_integer(s)
        _ -> ExUnit.configuration()[:seed]
      end

    :rand.seed(:exsss, {seed, :erlang.phash2(context.test), 16_001})
    IO.puts("#{inspect(context.test)}: random seed #{seed} (GEN_CNODE_SEED=#{seed} reproduces it)")
    {owner, node, log} = GenCnodeTest.start_cnode("kvpropex")
    {:ok, seed: seed, owner: owner, server: {:kv, node}, log: log}
  end

  test "random operations on random Elixir terms match a Map", ctx do
    %{seed: seed, server: server} = ctx
    pool = List.to_tuple(Gen.terms(2000, 6, 40))
    pick = fn -> elem(pool, :rand.uniform(tuple_size(pool)) - 1) end

    {model, wrong, counts} =
      Enum.reduce(1..5000, {%{}, [], %{}}, fn n, {model, wrong, counts} ->
        key = pick.()
        {op, model, check} = step(server, :rand.uniform(100), key, pick, model)

        wrong =
          case check do
            :ok -> wrong
            {:bad, got, want} when length(wrong) < 20 -> [{n, op, key, got: got, want: want} | wrong]
            _ -> wrong
          end

        {model, wrong, Map.update(counts, op, 1, &(&1 + 1))}
      end)

    IO.puts("seed #{seed}: operations #{inspect(counts)}; the Map holds #{map_size(model)} entries")
    assert {seed, Enum.reverse(wrong)} === {seed, []}

    bad_reads =
      pool
      |> Tuple.to_list()
      |> Enum.map(fn key -> {key, GenServer.call(server, {:fetch, key})} end)
      |> Enum.reject(fn {key, got} -> got === Map.fetch(model, key) end)

    assert {seed, Enum.take(bad_reads, 10)} === {seed, []}
    assert GenServer.call(server, :size) === map_size(model)

    state = :sys.get_state(server, 60_000)

    diff =
      for {k, v} <- model, Map.get(state, k, :"$absent") !== v, do: {k, v, Map.get(state, k, :"$absent")}

    assert {seed, map_size(state), Enum.take(diff, 10)} === {seed, map_size(model), []}
    assert state === model
    GenCnodeTest.stop_cnode(ctx.owner, ctx.log)
  end

  test "Elixir terms as keys and values: reads and :sys.get_state are the Map", ctx do
    %{server: server} = ctx
    x = 42

    terms = [
      %Point{x: 1, y: -2, label: "p"},
      %User{name: "ana", tags: [admin: true, level: 3], meta: %{"k" => [1.5, :v]}},
      [a: 1, b: 2, a: 3],
      [],
      ~c"a charlist",
      ~c"ключ",
      "a string",
      "ключ 🙂",
      {:ok, {1, 2.5, [3]}},
      {},
      %{a: 1, b: %{"nested" => [1, 2, 3]}, c: %{{1, 2} => [x: 1]}},
      %{1 => :int, 1.0 => :float},
      1,
      1.0,
      123_456_789_012_345_678_901_234_567_890,
      -(1 <<< 300),
      :"ключ",
      :"🙂",
      <<1::size(3)>>,
      <<"abc", 5::size(4)>>,
      [1 | 2],
      [:a, :b | :c],
      MapSet.new([1, 2, 3]),
      1..10,
      ~D[2024-02-29],
      self(),
      make_ref(),
      hd(Port.list()),
      Gen.external_pid(),
      Gen.external_ref(),
      Gen.external_port(),
      &Enum.reverse/1,
      &String.upcase/1,
      fn -> :ok end,
      fn y -> {x, y} end
    ]

    indexed = Enum.with_index(terms)

    for {t, i} <- indexed do
      :ok = GenServer.cast(server, {:put, t, {:key, i}})
      assert GenServer.call(server, {:put, {:value, i}, t}) == :ok
    end

    for {t, i} <- indexed do
      assert {i, GenServer.call(server, {:get, t})} === {i, {:key, i}}
      assert {i, GenServer.call(server, {:fetch, {:value, i}})} === {i, {:ok, t}}
    end

    model = Map.new(indexed, fn {t, i} -> {t, {:key, i}} end)
    model = Enum.reduce(indexed, model, fn {t, i}, m -> Map.put(m, {:value, i}, t) end)
    assert GenServer.call(server, :size) === map_size(model)
    assert :sys.get_state(server, 30_000) === model

    keys = GenServer.call(server, :keys)
    assert Enum.reject(terms, fn t -> Enum.any?(keys, &(&1 === t)) end) === []
    GenCnodeTest.stop_cnode(ctx.owner, ctx.log)
  end

  defp step(server, r, k, pick, m) when r <= 25 do
    v = pick.()
    :ok = GenServer.cast(server, {:put, k, v})
    {:cast_put, Map.put(m, k, v), :ok}
  end

  defp step(server, r, k, pick, m) when r <= 40 do
    v = pick.()
    {:call_put, Map.put(m, k, v), expect(GenServer.call(server, {:put, k, v}), :ok)}
  end

  defp step(server, r, k, pick, m) when r <= 45 do
    v = pick.()
    {:call_put_sync, Map.put(m, k, v), expect(GenServer.call(server, {:put_sync, k, v}), :ok)}
  end

  defp step(server, r, k, _pick, m) when r <= 53 do
    :ok = GenServer.cast(server, {:delete, k})
    {:cast_delete, Map.delete(m, k), :ok}
  end

  defp step(server, r, k, _pick, m) when r <= 60 do
    {:call_delete, Map.delete(m, k), expect(GenServer.call(server, {:delete, k}), :ok)}
  end

  defp step(server, r, k, _pick, m) when r <= 80 do
    {:get, m, expect(GenServer.call(server, {:get, k}), Map.get(m, k))}
  end

  defp step(server, r, k, _pick, m) when r <= 97 do
    {:fetch, m, expect(GenServer.call(server, {:fetch, k}), Map.fetch(m, k))}
  end

  defp step(server, _r, _k, _pick, m) do
    {:size, m, expect(GenServer.call(server, :size), map_size(m))}
  end

  defp expect(got, want) when got === want, do: :ok
  defp expect(got, want), do: {:bad, got, want}
end

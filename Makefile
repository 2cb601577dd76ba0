# gen_cnode: a C node that hosts gen_servers for Erlang/Elixir clusters.
#
#   make          build priv/gen_cnode (and the Erlang application)
#   make run      install what is missing, build, start epmd on loopback and the node
#   make test     install what is missing, build, run every test (unit, sanitizers, OTP 25 + OTP 27)
#   make fuzz     build the libFuzzer harnesses (clang) and run each for FUZZ_SECONDS
#   make bench    the side-by-side benchmark against a BEAM node (not part of make test)
#   make bench-durability   compaction pause and recovery time of a durable store
#   make soak     10,000 callers from OTP 25 and 27 nodes for 60 s, peers churning: no
#                 answer lost or wrong, RSS flat (not part of make test)

EI_DIR   = $(lastword $(sort $(wildcard /usr/lib/erlang/lib/erl_interface-*)))
CC      ?= cc
OPT     ?= -O2
CFLAGS   = -std=c11 -D_GNU_SOURCE $(OPT) -g -Wall -Wextra -Werror -pthread \
           -I$(EI_DIR)/include -Ic_src
LDLIBS   = -L$(EI_DIR)/lib -lei -pthread
SAN      = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

SRCS     = $(filter-out c_src/main.c,$(wildcard c_src/*.c))
HDRS     = $(wildcard c_src/*.h)
OBJS     = $(SRCS:c_src/%.c=_build/c/%.o)
SAN_OBJS = $(SRCS:c_src/%.c=_build/san/%.o)
UNIT     = $(wildcard test/unit/*.c)
UNIT_HDRS = $(wildcard test/unit/*.h)

# Fuzzing: clang's libFuzzer with AddressSanitizer and UBSan (test/fuzz/).
FUZZ_CC      = clang
FUZZ_CFLAGS  = -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror -pthread \
               -I$(EI_DIR)/include -Ic_src -Itest/unit \
               -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZERS      = term frame handshake recovery
FUZZ_SUPPORT = test/unit/peer.c test/unit/node_env.c
FUZZ_OBJS    = $(SRCS:c_src/%.c=_build/fuzz/obj/%.o) $(FUZZ_SUPPORT:test/unit/%.c=_build/fuzz/obj/%.o)
FUZZ_BINS    = $(FUZZERS:%=_build/fuzz/fuzz_%)
FUZZ_SECONDS ?= 60

.PHONY: all build erl deps run test unit unit-san integration fuzz fuzz-build fuzz-seeds bench bench-durability soak clean
all build: priv/gen_cnode erl

deps:
	@tools/ensure-deps

priv/gen_cnode: _build/c/main.o $(OBJS)
	@mkdir -p priv
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

_build/c/%.o: c_src/%.c $(HDRS)
	@mkdir -p _build/c
	$(CC) $(CFLAGS) -c -o $@ $<

_build/san/%.o: c_src/%.c $(HDRS)
	@mkdir -p _build/san
	$(CC) $(CFLAGS) $(SAN) -c -o $@ $<

priv/gen_cnode-san: _build/san/main.o $(SAN_OBJS)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)

_build/unit_tests: $(UNIT) $(UNIT_HDRS) $(OBJS) $(HDRS)
	$(CC) $(CFLAGS) -Itest/unit -o $@ $(UNIT) $(OBJS) $(LDLIBS) -lcunit

_build/unit_tests-san: $(UNIT) $(UNIT_HDRS) $(SAN_OBJS) $(HDRS)
	$(CC) $(CFLAGS) $(SAN) -Itest/unit -o $@ $(UNIT) $(SAN_OBJS) $(LDLIBS) -lcunit

_build/fuzz/obj/%.o: c_src/%.c $(HDRS)
	@mkdir -p _build/fuzz/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

_build/fuzz/obj/%.o: test/unit/%.c $(HDRS) $(UNIT_HDRS)
	@mkdir -p _build/fuzz/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

_build/fuzz/fuzz_%: test/fuzz/fuzz_%.c $(FUZZ_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(LDLIBS)

fuzz-build: deps
	@$(MAKE) --no-print-directory $(FUZZ_BINS)

fuzz: fuzz-build
	@tools/run-fuzz $(FUZZ_SECONDS) $(FUZZERS)

# The committed seed corpus (test/fuzz/corpus/), written by Erlang itself.
fuzz-seeds:
	rm -rf test/fuzz/corpus
	escript test/fuzz/make_seeds.escript test/fuzz/corpus

erl:
	@rebar3 compile >/dev/null

run: deps
	@$(MAKE) --no-print-directory build
	@tools/run-node $(ARGS)

test: deps
	@$(MAKE) --no-print-directory build priv/gen_cnode-san _build/unit_tests _build/unit_tests-san $(FUZZ_BINS)
	@tools/run-tests

unit: _build/unit_tests
	_build/unit_tests

bench: deps
	@$(MAKE) --no-print-directory build
	@tools/run-bench

bench-durability: deps
	@$(MAKE) --no-print-directory build
	@tools/run-bench-durability

soak: deps
	@$(MAKE) --no-print-directory build
	@tools/run-soak

clean:
	rm -rf _build priv/gen_cnode priv/gen_cnode-san

# gen_cnode: a C node that hosts gen_servers for Erlang/Elixir clusters.
#
#   make          build priv/gen_cnode (and the Erlang application)
#   make run      install what is missing, build, start epmd on loopback and the node
#   make test     install what is missing, build, run every test (unit, sanitizers, OTP 25 + OTP 27)
#   make bench    the side-by-side benchmark against a BEAM node (not part of make test)
#   make bench-durability   compaction pause and recovery time of a durable store

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

.PHONY: all build erl deps run test unit unit-san integration bench bench-durability clean
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

_build/unit_tests: $(UNIT) $(OBJS) $(HDRS)
	$(CC) $(CFLAGS) -o $@ $(UNIT) $(OBJS) $(LDLIBS) -lcunit

_build/unit_tests-san: $(UNIT) $(SAN_OBJS) $(HDRS)
	$(CC) $(CFLAGS) $(SAN) -o $@ $(UNIT) $(SAN_OBJS) $(LDLIBS) -lcunit

erl:
	@rebar3 compile >/dev/null

run: deps
	@$(MAKE) --no-print-directory build
	@tools/run-node $(ARGS)

test: deps
	@$(MAKE) --no-print-directory build priv/gen_cnode-san _build/unit_tests _build/unit_tests-san
	@tools/run-tests

unit: _build/unit_tests
	_build/unit_tests

bench: deps
	@$(MAKE) --no-print-directory build
	@tools/run-bench

bench-durability: deps
	@$(MAKE) --no-print-directory build
	@tools/run-bench-durability

clean:
	rm -rf _build priv/gen_cnode priv/gen_cnode-san

# gen_cnode: a C node that hosts gen_servers for Erlang/Elixir clusters.
#
#   make          build priv/gen_cnode, priv/libgen_cnode.a, priv/include/gen_cnode.h,
#                 the example modules (priv/examples/) and the Erlang application
#   make install PREFIX=/usr/local   the binary, the library and the header
#   make run      install what is missing, build, start epmd on loopback and the node
#   make test     install what is missing, build, run every test (unit, sanitizers, OTP 25 + OTP 27)
#   make fuzz     build the libFuzzer harnesses (clang) and run each for FUZZ_SECONDS
#   make bench    the side-by-side benchmark against a BEAM node (not part of make test)
#   make bench-durability   compaction pause and recovery time of a durable store
#   make soak     10,000 callers from OTP 25 and 27 nodes for 60 s, peers churning: no
#                 answer lost or wrong, RSS flat (not part of make test)

# erl_interface: Debian's, else the one of the erl on the PATH (kerl, asdf).
EI_DIR  := $(or $(lastword $(sort $(wildcard /usr/lib/erlang/lib/erl_interface-*))),$(shell erl -noshell -eval 'io:put_chars(code:lib_dir(erl_interface)), halt().' 2>/dev/null))
PREFIX  ?= /usr/local
CC      ?= cc
OPT     ?= -O2
# Link-time optimisation for the node (GCC): the small functions of one layer
# (buffers, frames, terms, lookups) inline into the callers of another, about
# a tenth of the instructions of a call (tools/run-callgrind). Fat objects,
# so that priv/libgen_cnode.a and the unit tests link without it too.
LTO     ?= $(if $(shell $(CC) -v 2>&1 | grep '^gcc version'),-flto=auto -ffat-lto-objects)
# c_src/ is grouped by layer; arrows point down this list and never back:
#   app/ (command line, wiring) -> servers/ (kv, counter, starter, net_kernel)
#   -> net/ (loop, node, connections, handshake) -> runtime/ (dist, processes,
#   the gen_server engine) -> store/ (table, log, snapshots) -> base/ (terms,
#   buffers, log, hashing). include/ holds the public header.
C_DIRS   = app servers net runtime store base include
C_INC    = $(C_DIRS:%=-Ic_src/%)
CFLAGS   = -std=c11 -D_GNU_SOURCE $(OPT) -g -Wall -Wextra -Werror -pthread \
           -I$(EI_DIR)/include $(C_INC)
LDLIBS   = -L$(EI_DIR)/lib -lei -pthread -ldl
# The node exports the public API to the modules it loads (--load), and only that.
EXPORT   = -Wl,--export-dynamic-symbol='gcn_*' -Wl,--export-dynamic-symbol=gen_cnode_main
# Sanitizer and fuzzing builds also check every frame dist_memo accepts whole (dist.c).
SAN      = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all -DGEN_CNODE_CHECK_MEMO

SRCS     = $(filter-out c_src/app/main.c,$(wildcard $(C_DIRS:%=c_src/%/*.c)))
HDRS     = $(wildcard $(C_DIRS:%=c_src/%/*.h))
OBJS     = $(patsubst %.c,_build/c/%.o,$(notdir $(SRCS)))
SAN_OBJS = $(patsubst %.c,_build/san/%.o,$(notdir $(SRCS)))
vpath %.c $(C_DIRS:%=c_src/%)
UNIT     = $(wildcard test/unit/*.c)
UNIT_HDRS = $(wildcard test/unit/*.h)
# fdatasync is wrapped in the unit tests, so that test_durable.c can make it
# fail as a failing disk does (no test machine's disk can be made to); fork,
# so that it can count compactions; bytes_map_put, so that test_node.c can
# drop the node's index of connections as running out of memory would.
UNIT_WRAP = -Wl,--wrap=fdatasync -Wl,--wrap=getaddrinfo -Wl,--wrap=fsync -Wl,--wrap=ftruncate -Wl,--wrap=realloc \
            -Wl,--wrap=fork -Wl,--wrap=bytes_map_put

# Fuzzing: clang's libFuzzer with AddressSanitizer and UBSan (test/fuzz/).
FUZZ_CC      = clang
FUZZ_CFLAGS  = -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror -pthread \
               -I$(EI_DIR)/include $(C_INC) -Itest/unit \
               -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
               -DGEN_CNODE_CHECK_MEMO
FUZZERS      = term frame handshake recovery match
FUZZ_SUPPORT = test/unit/peer.c test/unit/node_env.c
# Modules written against the public header, linked into the frame harness's
# node (node_env.c registers them when they are there): timers, sends,
# links and monitors from C meet hostile frames too.
FUZZ_MODULES = examples/ratelimit.c test/modules/watcher.c
FUZZ_OBJS    = $(patsubst %.c,_build/fuzz/obj/%.o,$(notdir $(SRCS))) $(FUZZ_SUPPORT:test/unit/%.c=_build/fuzz/obj/%.o) \
               $(patsubst %.c,_build/fuzz/obj/module_%.o,$(notdir $(FUZZ_MODULES)))
FUZZ_BINS    = $(FUZZERS:%=_build/fuzz/fuzz_%)
FUZZ_SECONDS ?= 60

.PHONY: all build c examples install erl deps run test unit unit-san integration fuzz fuzz-build fuzz-seeds bench bench-durability soak clean
all build: priv/gen_cnode priv/libgen_cnode.a priv/include/gen_cnode.h examples erl

# The C outputs only, without tools/ensure-deps or rebar3: what the mix compiler
# (lib/mix/tasks/compile.gen_cnode_c.ex) and the rebar3 pre_hook run when
# gen_cnode is a dependency. `make -q c` says whether they are up to date.
c: priv/gen_cnode priv/libgen_cnode.a priv/include/gen_cnode.h examples

# ---- the platform: the public header, the library, the example modules ----
# A module is built with one command (README, "Writing a server in C"):
#   cc -std=c11 -shared -fPIC -I priv/include -o ring.so ring.c
# and so, with no -D_GNU_SOURCE: a module that needs POSIX says so itself.
MODULE_CFLAGS = -std=c11 -O2 -g -Wall -Wextra -Werror -shared -fPIC -Ipriv/include
EXAMPLES      = $(patsubst examples/%.c,priv/examples/%.so,$(wildcard examples/*.c)) \
                priv/examples/readme_ticket.so

priv/include/gen_cnode.h: c_src/include/gen_cnode.h
	@mkdir -p priv/include
	cp $< $@

# Everything but main(), and erl_interface's objects with it, so that a binary
# of one's own links this one archive: cc app.c priv/libgen_cnode.a -pthread -ldl
priv/libgen_cnode.a: $(OBJS)
	@mkdir -p priv _build/ei
	rm -f $@ _build/ei/*.o
	cd _build/ei && ar x $(EI_DIR)/lib/libei.a
	ar qc $@ $(OBJS) _build/ei/*.o
	ranlib $@

examples: $(EXAMPLES) priv/examples/ratelimit_node

# Embedding: a static binary with a module of its own linked in (README).
priv/examples/ratelimit_node: examples/embedded/main.c examples/ratelimit.c priv/libgen_cnode.a priv/include/gen_cnode.h
	@mkdir -p priv/examples
	$(CC) -std=c11 -O2 -g -Wall -Wextra -Werror -DGEN_CNODE_STATIC -Ipriv/include -o $@ \
	    examples/embedded/main.c examples/ratelimit.c priv/libgen_cnode.a -pthread -ldl

# Modules that only the tests load (test/modules/), built the same way.
TEST_MODULES = $(patsubst test/modules/%.c,priv/test_modules/%.so,$(wildcard test/modules/*.c))

priv/test_modules/%.so: test/modules/%.c priv/include/gen_cnode.h
	@mkdir -p priv/test_modules
	$(CC) $(MODULE_CFLAGS) -o $@ $<

priv/examples/%.so: examples/%.c priv/include/gen_cnode.h
	@mkdir -p priv/examples
	$(CC) $(MODULE_CFLAGS) -o $@ $<

# The README's example module, compiled as it is shown, so that it cannot rot.
_build/readme/ticket.c: README.md
	@mkdir -p _build/readme
	awk '/^```c/ { on = 1; next } /^```/ { on = 0 } on' README.md >$@
	@test -s $@ || { echo "README.md has no C example"; exit 1; }

priv/examples/readme_ticket.so: _build/readme/ticket.c priv/include/gen_cnode.h
	@mkdir -p priv/examples
	$(CC) $(MODULE_CFLAGS) -o $@ $<

install: build
	install -d $(PREFIX)/bin $(PREFIX)/lib $(PREFIX)/include
	install -m 755 priv/gen_cnode $(PREFIX)/bin/gen_cnode
	install -m 644 priv/libgen_cnode.a $(PREFIX)/lib/libgen_cnode.a
	install -m 644 priv/include/gen_cnode.h $(PREFIX)/include/gen_cnode.h

deps:
	@tools/ensure-deps

priv/gen_cnode: _build/c/main.o $(OBJS)
	@mkdir -p priv
	$(CC) $(CFLAGS) $(LTO) $(EXPORT) -o $@ $^ $(LDLIBS)

_build/c/%.o: %.c $(HDRS)
	@mkdir -p _build/c
	$(CC) $(CFLAGS) $(LTO) -c -o $@ $<

_build/san/%.o: %.c $(HDRS)
	@mkdir -p _build/san
	$(CC) $(CFLAGS) $(SAN) -c -o $@ $<

priv/gen_cnode-san: _build/san/main.o $(SAN_OBJS)
	$(CC) $(CFLAGS) $(SAN) $(EXPORT) -o $@ $^ $(LDLIBS)

_build/unit_tests: $(UNIT) $(UNIT_HDRS) $(OBJS) $(HDRS)
	$(CC) $(CFLAGS) -Itest/unit -o $@ $(UNIT) $(OBJS) $(LDLIBS) $(UNIT_WRAP) -lcunit

_build/unit_tests-san: $(UNIT) $(UNIT_HDRS) $(SAN_OBJS) $(HDRS)
	$(CC) $(CFLAGS) $(SAN) -Itest/unit -o $@ $(UNIT) $(SAN_OBJS) $(LDLIBS) $(UNIT_WRAP) -lcunit

_build/fuzz/obj/%.o: %.c $(HDRS)
	@mkdir -p _build/fuzz/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

_build/fuzz/obj/%.o: test/unit/%.c $(HDRS) $(UNIT_HDRS)
	@mkdir -p _build/fuzz/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

_build/fuzz/obj/module_%.o: examples/%.c c_src/include/gen_cnode.h
	@mkdir -p _build/fuzz/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -DGEN_CNODE_STATIC -fsanitize=fuzzer-no-link -c -o $@ $<

_build/fuzz/obj/module_%.o: test/modules/%.c c_src/include/gen_cnode.h
	@mkdir -p _build/fuzz/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -DGEN_CNODE_STATIC -fsanitize=fuzzer-no-link -c -o $@ $<

_build/fuzz/fuzz_%: test/fuzz/fuzz_%.c $(FUZZ_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(LDLIBS)

fuzz-build: deps
	@$(MAKE) --no-print-directory $(FUZZ_BINS)

fuzz: fuzz-build
	@tools/run-fuzz $(FUZZ_SECONDS) $(FUZZERS)

# The committed seed corpus (test/fuzz/corpus/), written by Erlang itself
# (fuzz_match's own seeds, corpus/match, are not: they stay).
fuzz-seeds:
	rm -rf test/fuzz/corpus/term test/fuzz/corpus/frame test/fuzz/corpus/handshake test/fuzz/corpus/recovery
	escript test/fuzz/make_seeds.escript test/fuzz/corpus

erl:
	@GEN_CNODE_IN_MAKE=1 rebar3 compile >/dev/null

run: deps
	@$(MAKE) --no-print-directory build
	@tools/run-node $(ARGS)

test: deps
	@$(MAKE) --no-print-directory build priv/gen_cnode-san _build/unit_tests _build/unit_tests-san $(FUZZ_BINS) $(TEST_MODULES)
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
	rm -rf _build priv/gen_cnode priv/gen_cnode-san priv/libgen_cnode.a priv/include priv/examples priv/test_modules

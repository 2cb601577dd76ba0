/*
 * main.c: a node of one's own, in one static binary: the standard node
 * (options, kv, counter) with the rate limiter of examples/ratelimit.c linked
 * in rather than loaded. Built by `make` into priv/examples/ratelimit_node:
 *
 *   cc -std=c11 -DGEN_CNODE_STATIC -I priv/include -o ratelimit_node \
 *      examples/embedded/main.c examples/ratelimit.c priv/libgen_cnode.a -pthread -ldl
 *
 * GEN_CNODE_STATIC makes GEN_CNODE_MODULE define only gcn_module_ratelimit,
 * without the entry point a loadable module has, so several modules can be
 * linked into one binary.
 */
#include <gen_cnode.h>

extern const gcn_module gcn_module_ratelimit;

int main(int argc, char **argv)
{
    const gcn_module *mine[] = {&gcn_module_ratelimit};
    return gen_cnode_main(argc, argv, mine, sizeof mine / sizeof mine[0]);
}

/* node_env.c: a node for tests and fuzzers; see node_env.h. */
#include "node_env.h"

#include "counter.h"
#include "gen_server.h"
#include "kv.h"
#include "module_table.h"
#include "net_kernel.h"
#include "starter.h"

/* Modules written against the public header, when the binary links them
 * (the frame fuzzer does: Makefile, FUZZ_MODULES). */
#pragma weak gcn_module_ratelimit
#pragma weak gcn_module_watcher
extern const gcn_module gcn_module_ratelimit, gcn_module_watcher;

static kv_options kvo = {.max_depth = 1000};
static module_table *startable; /* kv and counter, as the node has them; kept for the process's life */

/* The modules the starter of every test node knows. */
static module_table *modules(void)
{
    char err[256];
    if (!startable && (startable = module_table_create()) &&
        (module_table_add(startable, &gcn_module_kv, &kvo, NULL, err, sizeof err) < 0 ||
         module_table_add(startable, &gcn_module_counter, NULL, NULL, err, sizeof err) < 0 ||
         (&gcn_module_ratelimit && module_table_add(startable, &gcn_module_ratelimit, NULL, NULL, err, sizeof err) < 0) ||
         (&gcn_module_watcher && module_table_add(startable, &gcn_module_watcher, NULL, NULL, err, sizeof err) < 0))) {
        module_table_destroy(startable);
        startable = NULL;
    }
    return startable;
}

size_t node_env_max_message = 1 << 20;

node *node_env_start(size_t max_output, uint32_t creation, int listen)
{
    node_config cfg = {.name = NODE_ENV_NAME, .cookie = NODE_ENV_COOKIE, .listen_addr = "127.0.0.1",
                       .ticktime = 60, .max_message = node_env_max_message, .max_depth = 1000,
                       .busy_poll_us = 0, .max_output = max_output, .unpublished = 1,
                       .creation = creation, .no_listen = !listen,
                       .no_dial = 1};
    char err[256];
    node *n = node_create(&cfg, err, sizeof err);
    if (!n)
        return NULL;
    process_table *t = node_processes(n);
    term_view none = {NULL, 0};
    const char *why;
    process *nk = gen_server_start(t, &gcn_module_net_kernel, NULL, none, "net_kernel", &why);
    process *st = modules() ? gen_server_start(t, &gcn_module_gen_cnode, modules(), none, "gen_cnode", &why) : NULL;
    if (!nk || !st || !gen_server_start(t, &gcn_module_kv, &kvo, none, "kv", &why) ||
        !gen_server_start(t, &gcn_module_counter, NULL, none, "counter", &why)) {
        node_destroy(n);
        return NULL;
    }
    process_set_system(nk);
    process_set_system(st);
    return n;
}

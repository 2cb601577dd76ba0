/* node_env.c: a node for tests and fuzzers; see node_env.h. */
#include "node_env.h"

#include "counter.h"
#include "gen_server.h"
#include "kv.h"
#include "net_kernel.h"
#include "starter.h"

static const kv_options kvo = {.max_depth = 1000};
static const starter_module mods[] = {{"kv", &kv_callbacks, &kvo}, {"counter", &counter_callbacks, NULL}};
static const starter_modules startable = {mods, 2};

node *node_env_start(size_t max_output, uint32_t creation, int listen)
{
    node_config cfg = {.name = NODE_ENV_NAME, .cookie = NODE_ENV_COOKIE, .listen_addr = "127.0.0.1",
                       .ticktime = 60, .max_message = 1 << 20, .max_depth = 1000,
                       .busy_poll_us = 0, .max_output = max_output, .unpublished = 1,
                       .creation = creation, .no_listen = !listen};
    char err[256];
    node *n = node_create(&cfg, err, sizeof err);
    if (!n)
        return NULL;
    process_table *t = node_processes(n);
    term_view none = {NULL, 0};
    const char *why;
    process *nk = gen_server_start(t, &net_kernel_callbacks, NULL, none, "net_kernel", &why);
    process *st = gen_server_start(t, &starter_callbacks, &startable, none, "gen_cnode", &why);
    if (!nk || !st || !gen_server_start(t, &kv_callbacks, &kvo, none, "kv", &why) ||
        !gen_server_start(t, &counter_callbacks, NULL, none, "counter", &why)) {
        node_destroy(n);
        return NULL;
    }
    process_set_system(nk);
    process_set_system(st);
    return n;
}

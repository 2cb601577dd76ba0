/*
 * main.c: priv/gen_cnode. Reads the command line, brings the node up,
 * starts its servers (net_kernel, so that pings work; the KeyValue store;
 * the counter; the starter gen_cnode, which starts more of those two on
 * request), serves until told to stop, and tears everything down.
 */
#include <stdio.h>
#include <string.h>

#include "counter.h"
#include "kv.h"
#include "log.h"
#include "net_kernel.h"
#include "node.h"
#include "options.h"
#include "starter.h"

/* net_kernel and the starter: system processes, which peers cannot stop. */
static process *start_system(process_table *t, const gen_server_callbacks *cb, const void *env,
                             const char *name, const char **why)
{
    process *p = gen_server_start(t, cb, env, (term_view){NULL, 0}, name, why);
    if (p)
        process_set_system(p);
    return p;
}

int main(int argc, char **argv)
{
    options o;
    char err[512];
    if (options_parse(argc, argv, &o, err, sizeof err) < 0) {
        fprintf(stderr, "gen_cnode: %s\n", err);
        return 2;
    }
    if (o.help) {
        options_usage(argv[0]);
        return 0;
    }
    log_set_level(o.verbose ? LOG_DEBUG : o.quiet ? LOG_WARNING : LOG_INFO);
    node *n = node_create(&o.node, err, sizeof err);
    if (!n) {
        log_error("%s", err);
        return 1;
    }
    /* The servers started on request are memory-only; the one started here
     * is durable when --data-dir is given. */
    kv_options kvo = {.max_depth = o.node.max_depth, .max_entries = o.max_entries};
    kv_options kvo_main = kvo;
    if (o.data_dir) {
        kvo_main.data_dir = o.data_dir;
        kvo_main.name = o.register_name;
        kvo_main.compact_min = o.compact_min;
        fsync_policy_parse(o.fsync, &kvo_main.fsync);
    }
    const starter_module modules[] = {
        {"kv", &kv_callbacks, &kvo},
        {"counter", &counter_callbacks, NULL},
    };
    starter_modules startable = {modules, sizeof modules / sizeof modules[0]};
    process_table *t = node_processes(n);
    term_view none = {NULL, 0};
    const char *why;
    if (!start_system(t, &net_kernel_callbacks, NULL, "net_kernel", &why) ||
        !start_system(t, &starter_callbacks, &startable, "gen_cnode", &why) ||
        !gen_server_start(t, &kv_callbacks, &kvo_main, none, o.register_name, &why) ||
        (strcmp(o.register_name, "counter") != 0 &&
         !gen_server_start(t, &counter_callbacks, NULL, none, "counter", &why))) {
        log_error("cannot start the servers: %s", why);
        node_destroy(n);
        return 1;
    }
    fprintf(stderr, "gen_cnode: ready name=%s port=%d register=%s\n", o.node.name, node_port(n),
            o.register_name);
    int rc = node_run(n);
    node_destroy(n);
    log_info("stopped");
    return rc == 0 ? 0 : 1;
}

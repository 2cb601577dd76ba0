/*
 * main.c: priv/gen_cnode. Reads the command line, brings the node up,
 * starts its servers (net_kernel, so that pings work, and the KeyValue
 * store), serves until told to stop, and tears everything down.
 */
#include <stdio.h>

#include "kv.h"
#include "log.h"
#include "net_kernel.h"
#include "node.h"
#include "options.h"

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
    kv_options kvo = {o.node.max_depth};
    process_table *t = node_processes(n);
    if (!gen_server_start(t, &net_kernel_callbacks, NULL, "net_kernel") ||
        !gen_server_start(t, &kv_callbacks, &kvo, o.register_name)) {
        log_error("cannot start the servers (out of memory?)");
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

/*
 * gen_cnode_main.c: the node's whole program behind the public
 * gen_cnode_main(): reads the command line, brings the node up, registers
 * the modules (the bundled kv and counter, the caller's, those of --load),
 * starts the node's own servers (net_kernel, so that pings work; the starter
 * gen_cnode) and the boot servers (the KeyValue store, the counter, each
 * --start), serves until told to stop, and tears everything down in order:
 * servers and jobs first, modules last.
 *
 * Exit status: 0 after a clean stop; 1 when the node cannot come up (a port
 * in use, no epmd); 2 for a usage error or a module that cannot be loaded or
 * started at boot, with one line saying which and why.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counter.h"
#include "gen_cnode.h"
#include "gcn_buf.h"
#include "kv.h"
#include "log.h"
#include "module_table.h"
#include "net_kernel.h"
#include "node.h"
#include "options.h"
#include "pg_scope.h"
#include "starter.h"
#include "stdin_watch.h"
#include "term_template.h"

/* net_kernel, the starter and the pg scopes: system processes, which peers cannot stop. */
static process *start_system(process_table *t, const gcn_module *m, void *priv, const char *name,
                             const char **why)
{
    gcn_buf *arg = gcn_buf_new(); /* the name as an atom: what a pg scope takes */
    process *p = NULL;
    if (!arg || gcn_put_atom(arg, name) < 0)
        *why = "badarg";
    else
        p = gen_server_start(t, m, priv, gcn_buf_term(arg), name, why);
    gcn_buf_free(arg);
    if (p)
        process_set_system(p);
    return p;
}

/* --pg-join [SCOPE:]GROUP for the KeyValue server p: 0, or -1 (logged). */
static int join_at_boot(process_table *t, process *p, const char *spec)
{
    char scope[256] = "pg";
    const char *colon = strchr(spec, ':'), *group = colon ? colon + 1 : spec;
    if (colon && (size_t)(colon - spec) >= sizeof scope) {
        log_error("--pg-join %s: scope name too long", spec);
        return -1;
    }
    if (colon)
        snprintf(scope, sizeof scope, "%.*s", (int)(colon - spec), spec);
    gcn_buf *g = gcn_buf_new();
    int rc = -1;
    if (!g || gcn_put_atom(g, group) < 0)
        log_error("--pg-join %s: %s is not an atom", spec, group);
    else if (!pg_scope_running(t, scope))
        log_error("--pg-join %s: no pg scope %s (--pg-scope %s starts one)", spec, scope, scope);
    else
        rc = pg_scope_join(t, scope, gcn_buf_term(g), process_pid(p));
    gcn_buf_free(g);
    return rc;
}

/* --start MODULE[:NAME][=ARG]: 0, or -1 (logged). */
static int start_one(process_table *t, module_table *mods, const char *spec)
{
    char module[256], name[256] = "";
    const char *eq = strchr(spec, '=');
    size_t head = eq ? (size_t)(eq - spec) : strlen(spec);
    const char *colon = memchr(spec, ':', head);
    size_t mlen = colon ? (size_t)(colon - spec) : head;
    size_t nlen = colon ? head - mlen - 1 : 0;
    if (mlen == 0 || mlen >= sizeof module || (colon && (nlen == 0 || nlen >= sizeof name))) {
        log_error("--start %s: expected MODULE[:NAME][=ARG]", spec);
        return -1;
    }
    memcpy(module, spec, mlen);
    module[mlen] = '\0';
    if (colon) {
        memcpy(name, colon + 1, nlen);
        name[nlen] = '\0';
        if (!starter_is_name(name)) {
            log_error("--start %s: %s is " STARTER_NO_NAME, spec, name);
            return -1;
        }
    }
    void *priv;
    const gcn_module *m = module_table_find(mods, module, &priv);
    if (!m) {
        log_error("--start %s: no module named %s (bundled: kv, counter; others need --load)", spec, module);
        return -1;
    }
    gcn_buf arg;
    if (gcn_buf_init(&arg) < 0) {
        log_error("--start %s: out of memory", spec);
        return -1;
    }
    /* ARG is a term in the template syntax of gcn_build, with no holes;
     * tpl_root says what is wrong with one that is not, in one line. */
    char who[300];
    tpl_node root;
    snprintf(who, sizeof who, "--start %s: ARG is not a term", spec);
    if (eq && strchr(eq + 1, '~')) {
        log_error("%s (Erlang syntax: atoms, integers, \"binaries\", {tuples}, [lists], #{maps}; no ~)", who);
        gcn_buf_release(&arg);
        return -1;
    }
    if (eq && (tpl_root(eq + 1, TPL_TEMPLATE, who, &root) < 0 || gcn_build(&arg, eq + 1) < 0 ||
               !gcn_buf_ok_term(&arg, 0))) {
        gcn_buf_release(&arg);
        return -1;
    }
    const char *why;
    process *p = gen_server_start(t, m, priv, eq ? gcn_buf_term(&arg) : (term_view){NULL, 0},
                                  name[0] ? name : NULL, &why);
    gcn_buf_release(&arg);
    if (!p) {
        log_error("--start %s: init failed: %s", spec, why);
        return -1;
    }
    gen_server_continue(p);
    log_info("started %s%s%s", module, name[0] ? " as " : "", name);
    return 0;
}

/* After the jobs' grace, what a stop asked for by stdin's end may take
 * (terminate callbacks, last flushes) before the process exits anyway. */
#define STOP_GRACE_MS 5000

/* The modules go once every server and job is gone; but a job still running
 * after --jobs-grace runs a module's code: then they stay loaded, and
 * reachable (a leak checker at exit does not count them), until the exit. */
static module_table *volatile left_loaded; /* volatile: a store no code reads is kept */

static void unload_unless_running(size_t jobs_running, module_table *mods)
{
    if (jobs_running == 0)
        module_table_destroy(mods);
    else
        left_loaded = mods;
}

int gen_cnode_main(int argc, char **argv, const gcn_module *const *modules, size_t count)
{
    options o;
    char err[4400] = "out of memory";
    int status = 2;
    node *n = NULL;
    module_table *mods = NULL;
    if (options_parse(argc, argv, &o, err, sizeof err) < 0) {
        log_error("%s", err);
        options_free(&o);
        return 2;
    }
    if (o.help) {
        options_usage(argv[0]);
        options_free(&o);
        return 0;
    }
    log_set_level(o.log_level);
    log_set_node(o.node.name);
    /* SIGINT and SIGTERM are the loop's (a signalfd, node_create): blocked
     * before any module's load runs, so that a thread one starts there
     * inherits them blocked and cannot take a stop as its default action,
     * killing the node without its terminate callbacks and last flushes.
     * One that comes meanwhile waits for the loop. */
    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stops, NULL);
    /* stdin is watched by a thread of its own (stdin_watch.h), or, if none
     * can be started, by the loop once the node runs. */
    if (o.node.watch_stdin && stdin_watch_start() == 0)
        o.node.watch_stdin = 0;
    else if (o.node.watch_stdin)
        log_warning("cannot watch stdin on a thread: an owner gone while the node boots, or while a "
                    "callback holds its loop, is seen only once the loop is free");
    /* With --data-dir, the kv registered under --register's name is
     * durable: the one started at boot, or one started again under that
     * name once it stopped (its store reopened). Every other is memory-only. */
    kv_options kvo = {.max_depth = o.node.max_depth, .max_entries = o.max_entries};
    if (o.data_dir) {
        kvo.data_dir = o.data_dir;
        kvo.name = o.register_name;
        kvo.compact_min = o.compact_min;
        fsync_policy_parse(o.fsync, &kvo.fsync);
    }
    mods = module_table_create();
    if (!mods || module_table_add(mods, &gcn_module_kv, &kvo, NULL, err, sizeof err) < 0 ||
        module_table_add(mods, &gcn_module_counter, NULL, NULL, err, sizeof err) < 0)
        goto fail;
    for (size_t i = 0; i < count; i++)
        if (module_table_add(mods, modules[i], NULL, NULL, err, sizeof err) < 0)
            goto fail;
    for (size_t i = 0; i < o.nloads; i++) {
        if (module_table_load(mods, o.loads[i], err, sizeof err) < 0)
            goto fail;
        log_info("loaded module %s from %s", module_table_at(mods, module_table_count(mods) - 1)->name,
                 o.loads[i]);
    }
    n = node_create(&o.node, err, sizeof err);
    if (!n) {
        status = 1;
        goto fail;
    }
    process_table *t = node_processes(n);
    const char *why;
    process *kv = NULL;
    if (!start_system(t, &gcn_module_net_kernel, NULL, "net_kernel", &why) ||
        !start_system(t, &gcn_module_gen_cnode, mods, "gen_cnode", &why) ||
        !start_system(t, &gcn_module_pg_scope, NULL, "pg", &why) ||
        !(kv = gen_server_start(t, &gcn_module_kv, &kvo, (term_view){NULL, 0}, o.register_name, &why)) ||
        (strcmp(o.register_name, "counter") != 0 &&
         !gen_server_start(t, &gcn_module_counter, NULL, (term_view){NULL, 0}, "counter", &why))) {
        snprintf(err, sizeof err, "cannot start the servers: %s", why);
        status = 1;
        goto fail;
    }
    for (size_t i = 0; i < o.npg_scopes; i++)
        if (!start_system(t, &gcn_module_pg_scope, NULL, o.pg_scopes[i], &why)) {
            snprintf(err, sizeof err, "--pg-scope %s: %s", o.pg_scopes[i], why);
            status = 2;
            goto fail;
        }
    if (o.pg_join && join_at_boot(t, kv, o.pg_join) < 0) {
        err[0] = '\0'; /* logged */
        status = 2;
        goto fail;
    }
    for (size_t i = 0; i < o.nstarts; i++)
        if (start_one(t, mods, o.starts[i]) < 0) {
            err[0] = '\0'; /* logged */
            goto fail;
        }
    /* Time for a stop asked for by stdin's end: the jobs' grace, and
     * STOP_GRACE_MS for terminate callbacks and last flushes; none when
     * jobs may run as long as they like (--jobs-grace 0). */
    stdin_watch_running(o.node.jobs_grace_ms ? o.node.jobs_grace_ms + STOP_GRACE_MS : STDIN_WATCH_NO_LIMIT);
    log_notice("ready name=%s port=%d register=%s", o.node.name, node_port(n), o.register_name);
    int rc = node_run(n);
    unload_unless_running(node_destroy(n), mods);
    stdin_watch_stop();
    options_free(&o);
    log_notice("stopped");
    return rc == 0 ? 0 : 1;
fail:
    stdin_watch_stop();
    if (err[0])
        log_error("%s", err);
    unload_unless_running(node_destroy(n), mods);
    options_free(&o);
    return status;
}

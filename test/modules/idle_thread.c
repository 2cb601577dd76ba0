/*
 * idle_thread.c: a module whose load starts a thread of its own, which
 * waits for good, as a library's background thread does (a client's I/O
 * thread, a metrics exporter). The node's stops (SIGTERM, SIGINT) must
 * still reach its loop, not this thread, whose default action would kill
 * the node without its terminate callbacks and last flushes.
 *   ping   pong
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <unistd.h>

#include <gen_cnode.h>

static void *idle(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

static int load(const char *args, void **priv)
{
    (void)args;
    *priv = NULL;
    pthread_t t;
    if (pthread_create(&t, NULL, idle, NULL) != 0)
        return -1;
    pthread_detach(t);
    return 0;
}

static enum gcn_result call(gcn_server *self, void *state, gcn_term req, const gcn_from *from, gcn_buf *reply)
{
    (void)self;
    (void)state;
    (void)from;
    if (gcn_match(req, "ping"))
        gcn_put_atom(reply, "pong");
    else
        gcn_error(reply, "unknown_call", req);
    return GCN_REPLY;
}

GEN_CNODE_MODULE(idle_thread, .load = load, .handle_call = call)

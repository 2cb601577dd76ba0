/*
 * node.h: the C node itself: it listens on a socket, publishes its name to
 * epmd, accepts peers and drives their handshakes, reads their frames and
 * hands them to the distribution layer, routes what processes send to the
 * right connection, ticks, and stops on SIGINT/SIGTERM (or when its stdin
 * closes, if asked). One thread and one event loop serve every peer: a slow
 * or vanished peer only ever holds up itself.
 */
#ifndef GEN_CNODE_NODE_H
#define GEN_CNODE_NODE_H

#include <stddef.h>

#include "process.h"

typedef struct node_config {
    const char *name;        /* alive@host */
    const char *cookie;
    const char *listen_addr; /* IPv4 address to listen on */
    int port;                /* 0: any free port */
    int ticktime;            /* seconds, as net_ticktime */
    size_t max_message;      /* largest frame accepted, in bytes */
    unsigned max_depth;      /* deepest term accepted */
    int busy_poll_us;        /* poll this long after answering before sleeping;
                                -1: 100, or 0 when this process may use one CPU only */
    int watch_stdin;         /* stop when stdin reaches EOF */
} node_config;

typedef struct node node;

/* Listen and publish; NULL with a reason in err on failure. */
node *node_create(const node_config *cfg, char *err, size_t errlen);
process_table *node_processes(node *n);
int node_port(const node *n);
/* Serve until a stop signal; 0 on a clean stop. */
int node_run(node *n);
/* Unpublish, close every connection, destroy every process. */
void node_destroy(node *n);

#endif

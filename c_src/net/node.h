/*
 * node.h: the C node itself: it listens on a socket, publishes its name to
 * epmd, accepts peers and drives their handshakes, reads their frames and
 * hands them to the distribution layer, routes what processes send to the
 * right connection, ticks, and stops on SIGINT/SIGTERM (or when its stdin
 * closes, if asked). One thread and one event loop serve every peer: a slow
 * or vanished peer only ever holds up itself.
 *
 * Outgoing connections: anything a process sends to a node with no
 * connection dials it (as OTP's dist_auto_connect), and so do --connect
 * and process_connect; what is sent meanwhile is held on the attempt and
 * goes out in order once it is up. An attempt that fails is a peer gone:
 * what it held is dropped (logged) and the processes forget the peer (DOWN
 * and EXIT noconnection). A node that could not be reached is not dialed
 * again for a second; sends to it meanwhile are dropped and logged.
 *
 * LIFETIMES (with process.h's, the rule everything on the loop follows):
 * a connection is never closed, and its peer never forgotten, while code up
 * the stack may hold it. Closing only marks it (a peer that stops reading,
 * a write that fails, a bad frame, a tick timeout, a newer connection from
 * the same node); from then on nothing is read from it, and what processes
 * send it is dropped. The node tears marked connections down at its safe
 * point, the end of each loop turn, when no descriptor callback and no
 * process callback is running: there the socket is closed and
 * process_forget_node runs, and the process table settles (stopped
 * processes are torn down, DOWN and EXIT go out). The connection's memory
 * is freed last, after the turn's output is written. Whatever else runs on
 * the loop (timers, the results of worker jobs, outgoing connections) must
 * close and free things the same way, at that safe point and nowhere else.
 * Stopping (node_destroy) keeps the same order: the node leaves epmd and
 * closes its listener, then the servers stop (terminate may still send),
 * while the connections, the dialer and the loop stand; a stopping node
 * dials no one; what they sent is written as far as the sockets take it at
 * once; then the connections and the dialer go.
 */
#ifndef GEN_CNODE_NODE_H
#define GEN_CNODE_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "process.h"

/* --max-processes by default: an empty kv server takes about 1 KB, so a
 * peer starting servers in a loop stops at about 256 MiB of them. */
#define NODE_MAX_PROCESSES 262144

typedef struct node_config {
    const char *name;        /* alive@host */
    const char *cookie;
    const char *listen_addr; /* IPv4 address to listen on */
    int port;                /* 0: any free port */
    int ticktime;            /* seconds, as net_ticktime */
    size_t max_message;      /* largest frame accepted, in bytes */
    unsigned max_depth;      /* deepest term accepted */
    int busy_poll_us;        /* poll this long after answering before sleeping;
                                -1: up to 100 while it measurably pays (busy_poll.h),
                                or 0 when this process may use one CPU only */
    int coalesce_us;         /* under load, sleep this long before reading
                                (loop_coalesce); -1: the default, 0: never */
    int watch_stdin;         /* stop when stdin reaches EOF */
    size_t max_output;       /* bytes queued to a peer before it is dropped as one
                                that does not read (0: 2 * max_message + 16 MiB) */
    int unpublished;         /* do not register with epmd (tests, fuzzing) */
    int no_listen;           /* unpublished: no listening socket either (node_accept) */
    uint32_t creation;       /* unpublished: this creation (0: a random one) */
    int no_auto_connect;     /* a send to an unconnected node does not connect to it (it is
                                dropped, logged), as OTP's -dist_auto_connect never; --connect
                                and process_connect still do (--no-auto-connect) */
    int no_dial;             /* never connect out at all (tests and fuzzing, which must not
                                reach real nodes) */
    int workers;             /* threads for blocking jobs (0: no pool; gcn_submit fails) */
    long jobs_grace_ms;      /* how long a stop waits for running jobs (--jobs-grace;
                                0: no limit) */
    size_t max_processes;    /* most processes at once, as the BEAM's +P (0: no limit) */
    const char **connect;    /* nodes to connect to at boot and keep connected (--connect) */
    size_t nconnect;
} node_config;

typedef struct node node;

/* Listen and publish; NULL with a reason in err on failure. */
node *node_create(const node_config *cfg, char *err, size_t errlen);
process_table *node_processes(node *n);
int node_port(const node *n);
/* Serve until a stop signal; 0 on a clean stop. */
int node_run(node *n);
/* One turn of the loop, waiting at most max_wait_ms for something to do
 * (tests and fuzzing drive the node this way). 0, or -1 if epoll failed. */
int node_run_once(node *n, int max_wait_ms);
/* Take fd as a connection just accepted: its handshake comes first (the
 * listener does this; tests and fuzzers too, with one end of a socket
 * pair). 0, or -1 (fd is then still the caller's). */
int node_accept(node *n, int fd);
/* Take fd as a connection to peer_name whose handshake has already been
 * done (with these flags): for tests and fuzzers that feed the node frames
 * without a handshake each time. Not from inside a loop callback.
 * 0, or -1 (fd is then still the caller's). */
int node_attach(node *n, int fd, const char *peer_name, uint64_t peer_flags);
/* Unpublish, close every connection, destroy every process. Returns how
 * many jobs were still running after the grace (process_table_destroy):
 * then the modules must stay loaded. */
size_t node_destroy(node *n);

#endif

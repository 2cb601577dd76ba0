/*
 * stdin_watch.h: the owner's going, seen as the end of stdin. Under a port
 * owner (--watch-stdin) the node stops when its stdin closes. A thread
 * watches it for the node's whole life, rather than the loop: the loop may
 * be held, by a big store's recovery at boot or by a module's callback that
 * blocks later, and a node whose owner is gone must not stay behind that
 * long, holding its name in epmd, its port and its data folder's lock for a
 * restarted owner to find taken.
 *   While the node boots, stdin's end makes the process exit at once
 *   (status 1, logged), as if killed, which a durable store survives by
 *   design.
 *   Once it runs, the node is asked to stop (SIGTERM, which the loop takes
 *   as any stop: terminate callbacks, last flushes, jobs' grace). If it has
 *   not stopped grace_ms later, its loop is held: the process exits
 *   (status 1, logged).
 * Main thread only.
 */
#ifndef GEN_CNODE_STDIN_WATCH_H
#define GEN_CNODE_STDIN_WATCH_H

#include <limits.h>

/* 0, or -1 when no thread could be started (the caller watches stdin
 * another way). */
int stdin_watch_start(void);
/* The boot is over: from now on stdin's end asks for a stop first, and
 * waits grace_ms for it (STDIN_WATCH_NO_LIMIT: as long as it takes). */
#define STDIN_WATCH_NO_LIMIT LONG_MAX
void stdin_watch_running(long grace_ms);
/* Stop watching (nothing if not started): the node has stopped. */
void stdin_watch_stop(void);

#endif

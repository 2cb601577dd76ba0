/*
 * dial.h: reaching another node's socket. The host's address, the node's
 * port from the epmd on that host (PORT_PLEASE2) and the TCP connect all
 * block, so each attempt runs on a thread of its own, bounded in time, and
 * hands back a connected socket (or why there is none) to the loop thread
 * through a descriptor. What runs on the socket afterwards (the handshake)
 * is the node's business, on the loop.
 *
 * Threads. One mutex guards the slots; an attempt's thread touches only its
 * slot (and the dialer's descriptors, which outlive every thread). The loop
 * thread starts attempts, collects results (joining finished threads) and
 * destroys the dialer, which cancels the attempts in flight through a pipe
 * every thread polls, and waits for them. A host's name is looked up
 * (getaddrinfo, which takes no deadline) on a detached thread of its own,
 * which the attempt stops waiting for at its deadline or when cancelled: a
 * resolver that never answers delays neither the attempt nor destroy.
 */
#ifndef GEN_CNODE_DIAL_H
#define GEN_CNODE_DIAL_H

#include <stdint.h>

#define DIAL_MAX_ATTEMPTS 64 /* at once */

typedef struct dialer dialer;

dialer *dialer_create(void);
/* Cancel what is in flight, wait for its threads, close what they made. */
void dialer_destroy(dialer *d);
/* Readable when results wait (for the loop to watch). */
int dialer_fd(const dialer *d);

/* Start reaching node (alive@host), giving up after timeout_ms: 0, or -1
 * (a bad name, too many attempts at once, no thread to run it). id comes
 * back with the result. */
int dialer_start(dialer *d, const char *node, uint64_t id, int timeout_ms);

typedef struct dial_result {
    uint64_t id;
    int fd;         /* connected, non-blocking, TCP_NODELAY; -1: failed */
    char why[256];  /* when it failed */
} dial_result;

/* The next finished attempt: 1 with *r (its socket is then the caller's),
 * or 0 when none is left. */
int dialer_next(dialer *d, dial_result *r);

#endif

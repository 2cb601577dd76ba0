/*
 * peer.h: for the unit tests and the fuzzers, a distribution peer written
 * from scratch: it connects to a real node (node.h) over TCP on 127.0.0.1,
 * runs the initiating side of the handshake (version 6) with the cookie,
 * then writes and reads frames. Node and peer share one thread: every call
 * that waits for the node runs the node's loop meanwhile (node_run_once).
 */
#ifndef GEN_CNODE_TEST_PEER_H
#define GEN_CNODE_TEST_PEER_H

#include <ei.h>

#include "buffer.h"
#include "node.h"
#include "term.h"

typedef struct peer {
    int fd;
    node *n;             /* the node it talks to: run while the peer waits */
    char name[64];       /* alive@127.0.0.1 */
    uint32_t creation;
    buffer in;
    char pid[96];        /* the pid <name.1.0>, encoded (no version byte) */
    size_t pid_len;
} peer;

/* Connect to n as `name` (alive@host) with cookie, and run the handshake.
 * rcvbuf > 0 sets the socket's receive buffer (a peer that barely reads).
 * 0, or -1 (the node refused, or did not answer in time). */
int peer_connect(peer *p, node *n, const char *name, const char *cookie, int rcvbuf);
/* peer_connect, with midway(arg) called once the node's challenge is in,
 * before it is answered: the node knows the peer's name, and holds what its
 * processes send it meanwhile. */
int peer_connect_midway(peer *p, node *n, const char *name, const char *cookie, int rcvbuf,
                        void (*midway)(void *), void *arg);
/* A peer named `name` on one end of a socket pair whose other end the node
 * takes as a connection already through its handshake (node_attach): no
 * round trips, for fuzzers. 0, or -1. */
int peer_attach(peer *p, node *n, const char *name);
/* A connection the node takes as just accepted (node_accept), on a socket
 * pair: the caller writes what it likes. 0, or -1. */
int peer_stranger(peer *p, node *n);
/* Connect over TCP, and nothing more: the caller writes what it likes. */
int peer_open(peer *p, node *n);
void peer_close(peer *p);

/* Write a frame: 'p', 131, ctrl, then 131, msg when msg.ptr is set
 * (ctrl and msg without version bytes). 0, or -1. */
int peer_send(peer *p, term_view ctrl, term_view msg);
/* Write raw bytes as they are (a frame's length included, or not). While
 * the socket is full, the node runs (it is what empties it). */
int peer_write(peer *p, const void *bytes, size_t len);

/* The next frame from the node that is not a tick, its 4-byte length
 * stripped, valid until the next call; runs the node up to timeout_ms.
 * 1 and *frame, *len; 0 on timeout; -1 once the node closed the connection. */
int peer_recv(peer *p, node *n, int timeout_ms, const char **frame, size_t *len);
/* Read and drop what the node has sent so far, running it until it is idle. */
void peer_drain(peer *p, node *n);
/* Has the node closed this connection? Runs it for up to timeout_ms. */
int peer_closed(peer *p, node *n, int timeout_ms);

/* The frame's op and the index of its message (-1 when none), for ei. */
long peer_frame_op(const char *frame, size_t len, int *msg_index);

/* Run the node for about ms milliseconds. */
void peer_run(node *n, int ms);

#endif

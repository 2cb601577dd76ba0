/*
 * conn.h: one connection to a peer node: its socket, its input and output
 * buffers, and the framing of the distribution protocol (2-byte lengths
 * during the handshake, 4-byte lengths after). Reading takes whatever the
 * socket has in one read and yields whole frames in place, without copying;
 * writing sends everything queued with one write per loop turn. What frames
 * mean is not its business.
 *
 * Once a TCP connection is up, a read peeks: the bytes stay in the socket,
 * unacknowledged, until conn_release takes them out, which the node does at
 * the end of the turn, after that turn's answers were written. Linux
 * acknowledges a read that empties a socket of small segments at once, with
 * a segment of its own; taking them out after the answer lets the answer
 * carry the acknowledgement instead, which takes that segment's cost (a
 * loopback delivery, run by the reader) off the way to every answer
 * (BENCHMARKS.md: 5 segments per call from a BEAM node, now 4 to 4.8).
 * Without an answer, conn_release acknowledges as the read would have, at
 * the end of the same turn.
 */
#ifndef GEN_CNODE_CONN_H
#define GEN_CNODE_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "buffer.h"
#include "dist.h"
#include "handshake.h"

/* HANDSHAKE -> UP -> CLOSING -> DEAD. CLOSING: marked to close (nothing more
 * is read from it), torn down by the node at its next safe point; DEAD:
 * socket closed, freed at the end of the turn (node.h). One the node dials
 * starts as DIALING (no socket yet: a dial thread looks it up and connects,
 * dial.h); one whose attempt lost a simultaneous connect is WAITING, without
 * a socket, for the peer's own connection to come up and take its queue. */
enum conn_state { CONN_HANDSHAKE, CONN_UP, CONN_CLOSING, CONN_DEAD, CONN_DIALING, CONN_WAITING };

typedef struct conn {
    int fd;
    enum conn_state state;
    handshake hs;
    buffer in, out;
    uint64_t flags;          /* the peer's, once up */
    uint32_t serial;         /* tells this connection from a later one to the same node */
    size_t peer_len;         /* strlen(hs.peer_name), once up */
    int otp_release;         /* the peer's OTP release, once its rex said; 0 before */
    uint64_t release_secret; /* in the tag of the question to its rex (node.c, ask_release) */
    long long opened_ms, read_ms, write_ms;
    long long up_ms;         /* when the handshake completed */
    int was_up;              /* the handshake had completed when it was marked to close */
    int close_level;         /* an enum log_level: how its closing is logged */
    char close_reason[256];  /* why it is closing, logged when it closes */
    /* Figures for the stats call: bytes through the socket (handshake
     * included), messages (frames but ticks) in and out once up. */
    uint64_t bytes_in, bytes_out, messages_in, messages_out;
    dist_seen seen;          /* atoms and frame shapes this peer sent that passed the checks (dist.h) */
    size_t drain;            /* bytes of an oversized frame still to be read and dropped */
    /* The node's attempt to reach this peer (dialed, or an accepted one that
     * took a dial's place): what processes send the peer meanwhile is held,
     * in order and framed, and goes out once the handshake is done; if the
     * attempt fails, the peer is forgotten as if it had gone. */
    int pending;
    int superseded;          /* another connection to the peer took its place and queue */
    buffer held;
    unsigned long held_msgs;
    size_t carried;     /* of out, what was held until the connection came up (and
                           the handshake's last packet): not counted against the
                           output limit, and shrinking by what of out is written */
    uint64_t dial_id;        /* DIALING: the dial thread's result names it so */
    uint32_t dial_cause;     /* DIALING: the serial of the connection whose message made
                              * the node dial (0: the node's own sends; node.c, dial) */
    int dial_queued;         /* DIALING: waiting for a dial slot, no thread yet */
    int dirty;               /* queued on the node's flush list */
    signed char peeks;       /* reads once up peek (TCP): 1; they do not: -1; not known yet: 0 */
    size_t unreleased;       /* bytes read by peeking, still in the socket (conn_release);
                              * more than 0: on the node's release list */
    struct conn *next_release;
    int writing;             /* waiting for the socket to become writable */
    void *owner;             /* the node, for the event loop's callbacks */
    struct conn *next;       /* the node's list of connections */
    struct conn *next_dirty; /* the node's flush list */
} conn;

enum conn_io { CONN_IO_OK = 0, CONN_IO_AGAIN = 1, CONN_IO_EOF = 2, CONN_IO_ERROR = -1 };

conn *conn_create(int fd, long long now_ms);
void conn_destroy(conn *c);
const char *conn_peer(const conn *c); /* the peer's node name, or "?" before the handshake said it */

/* One read of what the socket has: room is made for `want` more bytes, or a
 * usual chunk (small during the handshake) if that is more. Once up on TCP,
 * the read peeks and adds what it took to c->unreleased: conn_release must
 * run before the next read, or the next read takes the same bytes again. */
enum conn_io conn_read(conn *c, size_t want);
/* Take the bytes read by peeking out of the socket (acknowledging them if
 * nothing sent since did). CONN_IO_OK, or CONN_IO_ERROR if the socket gave
 * fewer than it had shown (the connection must then close: its next read
 * would not follow on from the last). */
enum conn_io conn_release(conn *c);

/* The next whole frame in the input (header_len 2 or 4, the length itself
 * excluded): 1 and *frame and *len if there is one, 0 if more bytes are needed,
 * -1 if it announces more than max bytes. Call conn_consume after use. */
int conn_frame(const conn *c, int header_len, size_t max, const char **frame, size_t *len);
/* The length the next frame announces (its header is in the input), or 0. */
size_t conn_frame_len(const conn *c, int header_len);
/* Drop what is in the input of the frame being drained (c->drain): 1 when it
 * is all gone, 0 when more is to come. */
int conn_drain(conn *c);
void conn_consume(conn *c, int header_len, size_t len);

/* Write what is queued: CONN_IO_OK when all is out, CONN_IO_AGAIN when the
 * socket is full, CONN_IO_ERROR when the peer is gone. *progress says
 * whether any byte went out. Either buffer is given back (or shrunk) once a
 * large message has gone through it. */
enum conn_io conn_flush(conn *c, int *progress);

#endif

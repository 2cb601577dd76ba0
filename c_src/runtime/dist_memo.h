/*
 * dist_memo.h: the shapes of frames a peer sent before, so that a frame of a
 * shape already checked is not checked again.
 *
 * A BEAM caller sends the same few frames over and over: for every
 * gen_server:call a MONITOR_P, a REG_SEND of {'$gen_call', {Pid, Tag},
 * Request} and a DEMONITOR_P. From one call to the next, and from one caller
 * process to another, they differ only in data bytes (term_shape.h): the ID
 * words of the references, the ID and serial of the pids, the values of
 * integers, the contents of binaries. Checking such a frame again, term by
 * term, finds what it found the first time. So each connection keeps a few
 * frames it accepted, their data bytes masked out, with where each term of
 * the frame begins and ends. A frame of the same length whose shape bytes
 * are equal is accepted as that one was, at the cost of one masked
 * comparison, and its terms lie at the same offsets.
 *
 * Only what the checks decided is reused, never what the frame says: the op,
 * the pids, the message are read from the frame itself (dist.c).
 *
 * A slot learns a shape on the second miss of the same length and op there
 * (a shape seen once is not worth a walk to mark it); one that never saw a
 * hit before it was replaced doubles the misses the slot waits for, up to
 * DIST_MEMO_MAX_WAIT. Frames under DIST_MEMO_MIN_BYTES or over
 * DIST_MEMO_BYTES, or nested deeper than
 * DIST_MEMO_DEPTH, are always checked whole. A zeroed struct is an empty memo.
 */
#ifndef GEN_CNODE_DIST_MEMO_H
#define GEN_CNODE_DIST_MEMO_H

#include <stddef.h>
#include <stdint.h>

#define DIST_MEMO_SLOTS 8      /* a power of two */
#define DIST_MEMO_BYTES 320    /* a gen_server call's REG_SEND with node names of 40 bytes fits */
#define DIST_MEMO_MIN_BYTES 16 /* shorter ones cost little to check */
#define DIST_MEMO_DEPTH 16
#define DIST_MEMO_TERMS 8      /* the control tuple's elements and the message */
#define DIST_MEMO_MAX_WAIT 64

/* Where the terms of an accepted frame lie: offsets into the frame. */
typedef struct dist_memo_terms {
    int n;                     /* elements of the control tuple */
    uint16_t at[DIST_MEMO_TERMS], len[DIST_MEMO_TERMS];
    uint16_t msg_at;           /* the message's first byte (after its 131), 0: none */
} dist_memo_terms;

typedef struct dist_memo_slot {
    uint16_t len;              /* the frame's; 0: empty */
    uint16_t missed_len;       /* the length of the last miss here */
    unsigned char missed_op;
    unsigned char misses;      /* misses of that length and op in a row */
    unsigned char wait;        /* misses before learning (0 counts as 2) */
    unsigned char hit;         /* the learned shape saw a hit */
    dist_memo_terms terms;
    unsigned char bytes[DIST_MEMO_BYTES]; /* the frame, data bytes zeroed */
    unsigned char mask[DIST_MEMO_BYTES];  /* 0xff: a shape byte */
} dist_memo_slot;

typedef struct dist_memo {
    dist_memo_slot slot[DIST_MEMO_SLOTS];
    uint64_t hits, learned;    /* frames accepted by shape; shapes learned */
} dist_memo;

/* The terms of frame f (len bytes, from its 'p' on) if a frame of its shape
 * was learned, else NULL. */
const dist_memo_terms *dist_memo_find(dist_memo *m, const char *f, size_t len);

/* f was accepted whole, with its terms where t says: learn its shape if the
 * misses in its slot say so. */
void dist_memo_learn(dist_memo *m, const char *f, size_t len, const dist_memo_terms *t);

#endif

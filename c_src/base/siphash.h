/*
 * siphash.h: SipHash (Aumasson and Bernstein), a keyed 64-bit hash. With a
 * key drawn at random when the node starts, peers cannot choose keys that all
 * land in one hash bucket.
 *
 * The hash tables use SipHash-1-3 (one compression round per word, three to
 * finish), as Rust's HashMap and CPython's str hash do: it keeps the flooding
 * resistance a hash table needs at about half the rounds of SipHash-2-4. The
 * paper's SipHash-2-4 is here for its reference vectors, which check the
 * code the two share.
 */
#ifndef GEN_CNODE_SIPHASH_H
#define GEN_CNODE_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* The SipHash-1-3 of data[0 .. len) under the 128-bit key. */
uint64_t siphash(const unsigned char key[16], const void *data, size_t len);

/* The SipHash-2-4 of data[0 .. len) under the 128-bit key. */
uint64_t siphash24(const unsigned char key[16], const void *data, size_t len);

#endif

/*
 * siphash.h: SipHash-2-4 (Aumasson and Bernstein), a keyed 64-bit hash. With a
 * key drawn at random when the node starts, peers cannot choose keys that all
 * land in one hash bucket.
 */
#ifndef GEN_CNODE_SIPHASH_H
#define GEN_CNODE_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* The SipHash-2-4 of data[0 .. len) under the 128-bit key. */
uint64_t siphash(const unsigned char key[16], const void *data, size_t len);

#endif

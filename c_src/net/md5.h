/*
 * md5.h: RFC 1321 MD5, for the Erlang distribution handshake digest
 * (MD5 of the cookie followed by the challenge as decimal text). Not for
 * anything that needs collision resistance.
 */
#ifndef GEN_CNODE_MD5_H
#define GEN_CNODE_MD5_H

#include <stddef.h>
#include <stdint.h>

typedef struct md5_ctx {
    uint32_t state[4];        /* A, B, C, D */
    uint64_t length;          /* bytes hashed so far */
    unsigned char block[64];  /* the partial block not yet processed */
    size_t used;              /* bytes of block in use */
} md5_ctx;

void md5_init(md5_ctx *ctx);
void md5_update(md5_ctx *ctx, const void *data, size_t len);
/* Writes the 16-byte digest; the context must be re-initialised before reuse. */
void md5_final(md5_ctx *ctx, unsigned char digest[16]);
/* One-shot: the digest of data[0 .. len). */
void md5(const void *data, size_t len, unsigned char digest[16]);

#endif

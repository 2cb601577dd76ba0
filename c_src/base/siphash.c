/* siphash.c: SipHash-c-d (see siphash.h), from the description in the paper. */
#include "siphash.h"

#include <endian.h>
#include <string.h>

struct sip_state {
    uint64_t v0, v1, v2, v3;
};

static inline uint64_t rotl64(uint64_t x, unsigned n)
{
    return (x << n) | (x >> (64 - n));
}

/* Eight bytes as a little-endian word: one load where the machine allows. */
static inline uint64_t load_le64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return le64toh(v);
}

static inline void sip_round(struct sip_state *s)
{
    s->v0 += s->v1;
    s->v1 = rotl64(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = rotl64(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = rotl64(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = rotl64(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = rotl64(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = rotl64(s->v2, 32);
}

/* Mix one 64-bit message word in with c compression rounds. */
static inline void sip_compress(struct sip_state *s, uint64_t m, int c)
{
    s->v3 ^= m;
    for (int i = 0; i < c; i++)
        sip_round(s);
    s->v0 ^= m;
}

/* SipHash-c-d: c rounds per word, d to finish. */
static inline uint64_t sip(const unsigned char key[16], const void *data, size_t len, int c, int d)
{
    const unsigned char *p = data;
    uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
    struct sip_state s = {
        k0 ^ UINT64_C(0x736f6d6570736575),
        k1 ^ UINT64_C(0x646f72616e646f6d),
        k0 ^ UINT64_C(0x6c7967656e657261),
        k1 ^ UINT64_C(0x7465646279746573),
    };

    size_t whole = len - len % 8;
    for (size_t i = 0; i < whole; i += 8)
        sip_compress(&s, load_le64(p + i), c);

    /* The last word: the remaining 0..7 bytes, and len mod 256 in the top byte. */
    uint64_t last = (uint64_t)(len & 0xff) << 56;
    for (size_t i = 0; i < len % 8; i++)
        last |= (uint64_t)p[whole + i] << (8 * i);
    sip_compress(&s, last, c);

    s.v2 ^= 0xff;
    for (int i = 0; i < d; i++)
        sip_round(&s);
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

uint64_t siphash(const unsigned char key[16], const void *data, size_t len)
{
    return sip(key, data, len, 1, 3);
}

uint64_t siphash24(const unsigned char key[16], const void *data, size_t len)
{
    return sip(key, data, len, 2, 4);
}

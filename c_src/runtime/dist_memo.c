/* dist_memo.c: frames by shape; see dist_memo.h. */
#include "dist_memo.h"

#include <ei.h>
#include <string.h>

#include "term_shape.h"

#define VERSION_MAGIC 131 /* before each term of a frame; ei.h has no name for it */

/* The op byte of a frame whose control tuple starts {SMALL_INTEGER_EXT, as
 * every BEAM sends it (else 0): frames of different ops and the same length
 * should not share a slot. */
static unsigned op_of(const unsigned char *f, size_t len)
{
    return len > 5 && f[4] == ERL_SMALL_INTEGER_EXT ? f[5] : 0;
}

static dist_memo_slot *slot_of(dist_memo *m, size_t len, unsigned op)
{
    uint32_t h = ((uint32_t)len << 8 | op) * 0x9E3779B1u;
    return &m->slot[h >> 29 & (DIST_MEMO_SLOTS - 1)];
}

/* Are f's shape bytes those of the frame in s (of the same length, at least
 * DIST_MEMO_MIN_BYTES)? Sixteen bytes at a time, no branch on the bytes. */
typedef uint64_t u64x2 __attribute__((vector_size(16)));

static int same_shape(const dist_memo_slot *s, const unsigned char *f, size_t len)
{
    u64x2 diff = {0, 0};
    size_t i = 0;
    for (; i + 16 <= len; i += 16) {
        u64x2 a, b, k;
        memcpy(&a, f + i, 16);
        memcpy(&b, s->bytes + i, 16);
        memcpy(&k, s->mask + i, 16);
        diff |= (a ^ b) & k;
    }
    if (i < len) { /* the last 16 bytes, overlapping what was compared */
        u64x2 a, b, k;
        memcpy(&a, f + len - 16, 16);
        memcpy(&b, s->bytes + len - 16, 16);
        memcpy(&k, s->mask + len - 16, 16);
        diff |= (a ^ b) & k;
    }
    return (diff[0] | diff[1]) == 0;
}

const dist_memo_terms *dist_memo_find(dist_memo *m, const char *frame, size_t len)
{
    const unsigned char *f = (const unsigned char *)frame;
    if (len >= DIST_MEMO_MIN_BYTES && len <= DIST_MEMO_BYTES) {
        dist_memo_slot *s = slot_of(m, len, op_of(f, len));
        if (s->len == len && same_shape(s, f, len)) {
            s->hit = 1;
            m->hits++;
            return &s->terms;
        }
    }
    return NULL;
}

/* The mask of frame f: 'p' and 131, the control tuple, and when there is a
 * message its 131 and the message, all the way to the end. 0, or -1 when it
 * cannot be marked (too deep here). */
static int mark_frame(const unsigned char *f, size_t len, const dist_memo_terms *t, unsigned char *mask)
{
    if (len < 2 || f[0] != ERL_PASS_THROUGH || f[1] != VERSION_MAGIC)
        return -1;
    mask[0] = mask[1] = 0xff;
    size_t i = 2;
    if (term_shape((const char *)f, len, &i, mask, DIST_MEMO_DEPTH) < 0)
        return -1;
    if (op_of(f, len)) /* the op is shape: a frame of another op never matches */
        mask[5] = 0xff;
    if (i == len)
        return t->msg_at == 0 ? 0 : -1;
    if (f[i] != VERSION_MAGIC || i + 1 != t->msg_at)
        return -1;
    mask[i++] = 0xff;
    if (term_shape((const char *)f, len, &i, mask, DIST_MEMO_DEPTH) < 0 || i != len)
        return -1;
    return 0;
}

void dist_memo_learn(dist_memo *m, const char *frame, size_t len, const dist_memo_terms *t)
{
    const unsigned char *f = (const unsigned char *)frame;
    if (len > DIST_MEMO_BYTES || len < DIST_MEMO_MIN_BYTES || t->n < 1 || t->n > DIST_MEMO_TERMS)
        return;
    unsigned op = op_of(f, len);
    dist_memo_slot *s = slot_of(m, len, op);
    if (s->missed_len == len && s->missed_op == op) {
        if (s->misses < 255)
            s->misses++;
    } else {
        s->missed_len = (uint16_t)len;
        s->missed_op = (unsigned char)op;
        s->misses = 1;
    }
    unsigned wait = s->wait ? s->wait : 2;
    if (s->misses < wait)
        return;
    unsigned char mask[DIST_MEMO_BYTES];
    if (mark_frame(f, len, t, mask) < 0) {
        s->misses = 0;
        return;
    }
    if (s->len) /* a shape that never hit makes the next wait longer */
        wait = s->hit ? 2 : (wait * 2 < DIST_MEMO_MAX_WAIT ? wait * 2 : DIST_MEMO_MAX_WAIT);
    s->wait = (unsigned char)wait;
    s->len = (uint16_t)len;
    s->hit = 0;
    s->misses = 0;
    s->terms = *t;
    for (size_t i = 0; i < len; i++)
        s->bytes[i] = f[i] & mask[i];
    memcpy(s->mask, mask, len);
    m->learned++;
}

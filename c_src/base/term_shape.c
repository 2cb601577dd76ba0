/* term_shape.c: a term's shape bytes and data bytes; see term_shape.h. */
#include "term_shape.h"

#include <stdint.h>
#include <string.h>

#include "buffer.h"
#include "term.h"

#define REF_MAX_WORDS 5 /* as term.c: the BEAM sends at most five */

struct marker {
    const unsigned char *buf;
    size_t len;
    unsigned char *mask;
};

static int shape_bytes(struct marker *m, size_t *i, size_t n)
{
    if (n > m->len - *i)
        return -1;
    memset(m->mask + *i, 0xff, n);
    *i += n;
    return 0;
}

static int data_bytes(struct marker *m, size_t *i, size_t n)
{
    if (n > m->len - *i)
        return -1;
    memset(m->mask + *i, 0, n);
    *i += n;
    return 0;
}

/* A 32-bit big-endian word whose low `usual` bits are data and the others
 * shape: a pid's or reference's number, whose high bits decide whether the
 * check looks at it (term_sender in term.h). */
static int word_above(struct marker *m, size_t *i, unsigned usual)
{
    if (4 > m->len - *i)
        return -1;
    uint32_t shape = ~(uint32_t)0 << usual;
    for (int k = 0; k < 4; k++)
        m->mask[*i + (size_t)k] = (unsigned char)(shape >> (24 - 8 * k));
    *i += 4;
    return 0;
}

static uint32_t be16(const unsigned char *p) { return get_u16((const char *)p); }
static uint32_t be32(const unsigned char *p) { return get_u32((const char *)p); }

/* An atom, all shape bytes: its tag, its length and its text. */
static int atom(struct marker *m, size_t *i)
{
    if (*i >= m->len)
        return -1;
    switch (m->buf[*i]) {
    case ERL_SMALL_ATOM_EXT: case ERL_SMALL_ATOM_UTF8_EXT:
        return *i + 2 <= m->len ? shape_bytes(m, i, 2 + (size_t)m->buf[*i + 1]) : -1;
    case ERL_ATOM_EXT: case ERL_ATOM_UTF8_EXT:
        return *i + 3 <= m->len ? shape_bytes(m, i, 3 + (size_t)be16(m->buf + *i + 1)) : -1;
    default:
        return -1;
    }
}

static int mark(struct marker *m, size_t *i, unsigned depth, unsigned max_depth)
{
    if (depth > max_depth || *i >= m->len)
        return -1;
    size_t at = *i;
    const unsigned char *p = m->buf + at;
    size_t left = m->len - at;
    switch (p[0]) {
    case ERL_SMALL_INTEGER_EXT: /* Int */
        return shape_bytes(m, i, 1) < 0 ? -1 : data_bytes(m, i, 1);
    case ERL_INTEGER_EXT: /* Int[4] */
        return shape_bytes(m, i, 1) < 0 ? -1 : data_bytes(m, i, 4);
    case ERL_NEW_PID_EXT: /* Node, ID[4], Serial[4], Creation[4] */
        if (shape_bytes(m, i, 1) < 0 || atom(m, i) < 0 || word_above(m, i, TERM_USUAL_PID_ID_BITS) < 0 ||
            word_above(m, i, TERM_USUAL_PID_SERIAL_BITS) < 0)
            return -1;
        return data_bytes(m, i, 4);
    case ERL_NEWER_REFERENCE_EXT: { /* Len[2], Node, Creation[4], ID[4 * Len] */
        if (left < 3)
            return -1;
        size_t words = be16(p + 1);
        if (words < 1 || words > REF_MAX_WORDS || shape_bytes(m, i, 3) < 0 || atom(m, i) < 0 ||
            data_bytes(m, i, 4) < 0 || word_above(m, i, TERM_USUAL_REF_FIRST_BITS) < 0)
            return -1;
        return data_bytes(m, i, 4 * (words - 1));
    }
    case ERL_BINARY_EXT: /* Len[4], Data */
        if (left < 5 || shape_bytes(m, i, 5) < 0)
            return -1;
        return data_bytes(m, i, be32(p + 1));
    case ERL_SMALL_TUPLE_EXT: case ERL_LARGE_TUPLE_EXT: {
        size_t head = p[0] == ERL_SMALL_TUPLE_EXT ? 2 : 5;
        if (left < head)
            return -1;
        size_t arity = p[0] == ERL_SMALL_TUPLE_EXT ? p[1] : be32(p + 1);
        if (arity > left - head || shape_bytes(m, i, head) < 0)
            return -1;
        for (size_t k = 0; k < arity; k++)
            if (mark(m, i, depth + 1, max_depth) < 0)
                return -1;
        return 0;
    }
    case ERL_MAP_EXT: { /* Arity[4], then keys and values */
        if (left < 5)
            return -1;
        size_t pairs = be32(p + 1);
        if (pairs > (left - 5) / 2 || shape_bytes(m, i, 5) < 0)
            return -1;
        for (size_t k = 0; k < pairs; k++) {
            /* A key is all shape: whether two keys repeat (which the check
             * refuses) must not hang on bytes the memo does not compare. */
            size_t end = *i;
            if (depth + 1 > max_depth || term_skip((const char *)m->buf, m->len, &end, max_depth - depth - 1) != TERM_OK ||
                shape_bytes(m, i, end - *i) < 0 || mark(m, i, depth + 1, max_depth) < 0)
                return -1;
        }
        return 0;
    }
    case ERL_LIST_EXT: /* Length[4], Elements, Tail; a tail that is a list goes on in the loop */
        while (*i < m->len && m->buf[*i] == ERL_LIST_EXT) {
            if (m->len - *i < 5)
                return -1;
            size_t n = be32(m->buf + *i + 1);
            if (n > m->len - *i - 5 || shape_bytes(m, i, 5) < 0)
                return -1;
            for (size_t k = 0; k < n; k++)
                if (mark(m, i, depth + 1, max_depth) < 0)
                    return -1;
        }
        return mark(m, i, depth + 1, max_depth);
    case ERL_ATOM_EXT: case ERL_SMALL_ATOM_EXT: case ERL_ATOM_UTF8_EXT: case ERL_SMALL_ATOM_UTF8_EXT:
        return atom(m, i);
    default: { /* every other term: all shape bytes, its end found by term_skip */
        size_t end = at;
        if (term_skip((const char *)m->buf, m->len, &end, max_depth - depth) != TERM_OK)
            return -1;
        return shape_bytes(m, i, end - at);
    }
    }
}

int term_shape(const char *buf, size_t len, size_t *index, unsigned char *mask, unsigned max_depth)
{
    if (!buf || !index || *index > len || !mask)
        return -1;
    struct marker m = {(const unsigned char *)buf, len, mask};
    size_t i = *index;
    if (mark(&m, &i, 0, max_depth) < 0)
        return -1;
    *index = i;
    return 0;
}

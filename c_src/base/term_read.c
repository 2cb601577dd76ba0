/*
 * term_read.c: reading gcn_terms (the "terms" part of gen_cnode.h): their
 * kind, typed getters, iterators over tuples, lists and maps, and gcn_match.
 * Every entry point first checks with term_skip that it was given exactly
 * one well-formed term, whatever the engine checked before, and then reads
 * only within it; element views come from term_skip too. A list's spine may
 * come in segments (a LIST_EXT whose tail is another LIST_EXT or a
 * STRING_EXT), as binary_to_term accepts; a STRING_EXT's bytes are small
 * integers. Matching recurses along the pattern, never along the term.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "buffer.h"
#include "gen_cnode.h"
#include "term.h"
#include "term_template.h"

/* What a gcn_iter walks. */
enum { IT_NONE, IT_TUPLE, IT_MAP, IT_LIST, IT_STRING };

/* The bytes of a STRING_EXT as terms: {SMALL_INTEGER_EXT, byte}, for ever. */
#define SI4(n) {97, (n)}, {97, (n) + 1}, {97, (n) + 2}, {97, (n) + 3}
#define SI16(n) SI4(n), SI4((n) + 4), SI4((n) + 8), SI4((n) + 12)
#define SI64(n) SI16(n), SI16((n) + 16), SI16((n) + 32), SI16((n) + 48)
static const unsigned char small_ints[256][2] = {SI64(0), SI64(64), SI64(128), SI64(192)};

static unsigned tag_of(gcn_term t)
{
    return t.ptr && t.len ? (unsigned char)t.ptr[0] : 0;
}

/* Is t exactly one well-formed term? */
static int whole(gcn_term t)
{
    size_t at = 0;
    return t.ptr && t.len && term_skip(t.ptr, t.len, &at, TERM_NEXT_MAX_DEPTH) == TERM_OK &&
           at == t.len;
}

/* The term at v.ptr[*pos] as a view; moves *pos past it. */
static int next_term(gcn_term v, size_t *pos, gcn_term *out)
{
    size_t at = *pos;
    if (term_skip(v.ptr, v.len, &at, TERM_NEXT_MAX_DEPTH) != TERM_OK)
        return -1;
    *out = (gcn_term){v.ptr + *pos, at - *pos};
    *pos = at;
    return 0;
}

/* ---- scalars ---- */

static int is_atom_tag(unsigned tag)
{
    return tag == ERL_ATOM_EXT || tag == ERL_SMALL_ATOM_EXT || tag == ERL_ATOM_UTF8_EXT ||
           tag == ERL_SMALL_ATOM_UTF8_EXT;
}

/* The integer t as sign and magnitude: 0, or -1 when t is no integer or
 * needs more than 64 bits. */
static int read_integer(gcn_term t, int *neg, uint64_t *mag)
{
    unsigned tag = tag_of(t);
    if (tag != ERL_SMALL_INTEGER_EXT && tag != ERL_INTEGER_EXT && tag != ERL_SMALL_BIG_EXT &&
        tag != ERL_LARGE_BIG_EXT)
        return -1;
    if (!whole(t))
        return -1;
    const unsigned char *p = (const unsigned char *)t.ptr;
    if (tag == ERL_SMALL_INTEGER_EXT) {
        *neg = 0;
        *mag = p[1];
        return 0;
    }
    if (tag == ERL_INTEGER_EXT) {
        uint32_t bits = get_u32(t.ptr + 1);
        *neg = (int)(bits >> 31);
        *mag = *neg ? 0u - bits : bits;
        return 0;
    }
    int small = tag == ERL_SMALL_BIG_EXT;
    size_t n = small ? p[1] : get_u32(t.ptr + 1), hdr = small ? 3 : 6;
    if (n > t.len - hdr)
        return -1;
    uint64_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[hdr + i] && i >= 8)
            return -1;
        if (i < 8)
            m |= (uint64_t)p[hdr + i] << 8 * i;
    }
    *neg = p[hdr - 1] && m;
    *mag = m;
    return 0;
}

int gcn_get_int(gcn_term t, int64_t *out)
{
    int neg;
    uint64_t mag;
    if (read_integer(t, &neg, &mag) < 0 || mag > (uint64_t)INT64_MAX + (neg != 0))
        return -1;
    *out = !neg ? (int64_t)mag : mag > INT64_MAX ? INT64_MIN : -(int64_t)mag;
    return 0;
}

int gcn_get_uint(gcn_term t, uint64_t *out)
{
    int neg;
    uint64_t mag;
    if (read_integer(t, &neg, &mag) < 0 || neg)
        return -1;
    *out = mag;
    return 0;
}

int gcn_get_double(gcn_term t, double *out)
{
    unsigned tag = tag_of(t);
    if (tag == NEW_FLOAT_EXT || tag == ERL_FLOAT_EXT) {
        if (!whole(t))
            return -1;
        if (tag == NEW_FLOAT_EXT) {
            uint64_t bits = get_u64(t.ptr + 1);
            memcpy(out, &bits, sizeof bits);
            return 0;
        }
        char text[32]; /* FLOAT_EXT: 31 bytes of text, term_skip checked its form */
        memcpy(text, t.ptr + 1, 31);
        text[31] = '\0';
        char *comma = strchr(text, ',');
        if (comma)
            *comma = '.';
        *out = term_strtod(text, NULL);
        return 0;
    }
    int neg;
    uint64_t mag;
    if (read_integer(t, &neg, &mag) < 0)
        return -1;
    *out = neg ? -(double)mag : (double)mag;
    return 0;
}

int gcn_get_atom(gcn_term t, char out[GCN_ATOM_MAX])
{
    unsigned tag = tag_of(t);
    int i = 0;
    const char *text;
    size_t len, o = 0;
    if (!is_atom_tag(tag) || !whole(t) ||
        term_atom((term_view){t.ptr, t.len}, &i, &text, &len) < 0)
        return -1;
    int latin1 = tag == ERL_ATOM_EXT || tag == ERL_SMALL_ATOM_EXT;
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)text[k];
        if (c == 0 || o + 3 > GCN_ATOM_MAX)
            return -1;
        if (latin1 && c >= 0x80) {
            out[o++] = (char)(0xC0 | c >> 6);
            out[o++] = (char)(0x80 | (c & 0x3F));
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    return 0;
}

int gcn_is_atom(gcn_term t, const char *name)
{
    char text[GCN_ATOM_MAX];
    return name && gcn_get_atom(t, text) == 0 && strcmp(text, name) == 0;
}

/* BINARY_EXT, or a BIT_BINARY_EXT of whole bytes. */
int gcn_get_binary(gcn_term t, gcn_bin *out)
{
    unsigned tag = tag_of(t);
    if ((tag != ERL_BINARY_EXT && tag != ERL_BIT_BINARY_EXT) || !whole(t))
        return -1;
    size_t n = get_u32(t.ptr + 1), hdr = tag == ERL_BINARY_EXT ? 5 : 6;
    if (tag == ERL_BIT_BINARY_EXT && n > 0 && (unsigned char)t.ptr[5] != 8)
        return -1;
    *out = (gcn_bin){t.ptr + hdr, n};
    return 0;
}

/* ---- lists ---- */

/* The spine of a list at v.ptr[*pos]: 0 for NIL_EXT (the end); 1 for the
 * header of a LIST_EXT or STRING_EXT segment of *n elements (*kind says
 * which); -1 for anything else (an improper tail). *pos moves past what was
 * read. */
static int segment(gcn_term v, size_t *pos, int *kind, size_t *n)
{
    size_t at = *pos, left = v.len - at;
    if (at >= v.len)
        return -1;
    switch ((unsigned char)v.ptr[at]) {
    case ERL_NIL_EXT:
        *pos = at + 1;
        return 0;
    case ERL_STRING_EXT:
        if (left < 3)
            return -1;
        *kind = IT_STRING;
        *n = get_u16(v.ptr + at + 1);
        *pos = at + 3;
        return 1;
    case ERL_LIST_EXT:
        if (left < 5)
            return -1;
        *kind = IT_LIST;
        *n = get_u32(v.ptr + at + 1);
        *pos = at + 5;
        return 1;
    default:
        return -1;
    }
}

/* Walk the spine of t, counting its elements in *n: 1 when it is a proper
 * list, 0 when improper (its tail at t.ptr[*tail]), -1 when no list. */
static int spine(gcn_term t, size_t *n, size_t *tail)
{
    size_t pos = 0, seg;
    int kind;
    *n = *tail = 0;
    for (;;) {
        int r = segment(t, &pos, &kind, &seg);
        if (r == 0)
            return pos == t.len ? 1 : -1;
        if (r < 0) {
            *tail = pos;
            return pos == 0 ? -1 : 0;
        }
        if (kind == IT_STRING) { /* a STRING_EXT is a whole proper list */
            *n += seg;
            return seg == t.len - pos ? 1 : -1;
        }
        for (size_t i = 0; i < seg; i++) {
            gcn_term e;
            if (next_term(t, &pos, &e) < 0)
                return -1;
        }
        *n += seg;
    }
}

static int is_list_tag(unsigned tag)
{
    return tag == ERL_NIL_EXT || tag == ERL_STRING_EXT || tag == ERL_LIST_EXT;
}

/* Is t (checked) a proper list, or []? */
static int is_proper(gcn_term t)
{
    size_t n, tail;
    return is_list_tag(tag_of(t)) && spine(t, &n, &tail) == 1;
}

/* ---- the kind of a term ---- */

int gcn_type(gcn_term t)
{
    if (!whole(t))
        return 0;
    const unsigned char *p = (const unsigned char *)t.ptr;
    gcn_bin bin;
    size_t n, tail;
    switch (p[0]) {
    case ERL_SMALL_INTEGER_EXT: case ERL_INTEGER_EXT: case ERL_SMALL_BIG_EXT:
    case ERL_LARGE_BIG_EXT:
        return GCN_INTEGER;
    case NEW_FLOAT_EXT: case ERL_FLOAT_EXT:
        return GCN_FLOAT;
    case ERL_ATOM_EXT: case ERL_SMALL_ATOM_EXT: case ERL_ATOM_UTF8_EXT:
    case ERL_SMALL_ATOM_UTF8_EXT:
        return GCN_ATOM;
    case ERL_BINARY_EXT:
        return GCN_BINARY;
    case ERL_BIT_BINARY_EXT:
        return gcn_get_binary(t, &bin) == 0 ? GCN_BINARY : GCN_BITSTRING;
    case ERL_SMALL_TUPLE_EXT: case ERL_LARGE_TUPLE_EXT:
        return GCN_TUPLE;
    case ERL_NIL_EXT: case ERL_STRING_EXT: case ERL_LIST_EXT: {
        int r = spine(t, &n, &tail);
        if (n > 0 || r == 1)
            return n > 0 ? GCN_LIST : GCN_NIL;
        /* LIST_EXT of no element: the term is its tail, which is no list */
        return r == 0 ? gcn_type((gcn_term){t.ptr + tail, t.len - tail}) : 0;
    }
    case ERL_MAP_EXT:
        return GCN_MAP;
    case ERL_PID_EXT: case ERL_NEW_PID_EXT:
        return GCN_PID;
    case ERL_PORT_EXT: case ERL_NEW_PORT_EXT: case ERL_V4_PORT_EXT:
        return GCN_PORT;
    case ERL_REFERENCE_EXT: case ERL_NEW_REFERENCE_EXT: case ERL_NEWER_REFERENCE_EXT:
        return GCN_REF;
    case ERL_NEW_FUN_EXT: case ERL_EXPORT_EXT:
        return GCN_FUN;
    default:
        return 0;
    }
}

/* ---- iterators ---- */

/* The iterators over a term already checked (-1 when not of the kind). */
static long tuple_iter(gcn_term t, gcn_iter *it)
{
    unsigned tag = tag_of(t);
    if (tag != ERL_SMALL_TUPLE_EXT && tag != ERL_LARGE_TUPLE_EXT)
        return -1;
    int small = tag == ERL_SMALL_TUPLE_EXT;
    size_t n = small ? (unsigned char)t.ptr[1] : get_u32(t.ptr + 1);
    *it = (gcn_iter){.of = t, .pos = small ? 2 : 5, .left = n, .kind = IT_TUPLE};
    return (long)n;
}

static long map_iter(gcn_term t, gcn_iter *it)
{
    if (tag_of(t) != ERL_MAP_EXT)
        return -1;
    size_t n = get_u32(t.ptr + 1);
    *it = (gcn_iter){.of = t, .pos = 5, .left = 2 * n, .kind = IT_MAP};
    return (long)n;
}

static long list_iter(gcn_term t, gcn_iter *it)
{
    size_t n, tail;
    if (!is_list_tag(tag_of(t)) || spine(t, &n, &tail) != 1)
        return -1;
    /* left 0: gcn_next reads the first segment's header at pos */
    *it = (gcn_iter){.of = t, .pos = 0, .left = 0, .kind = IT_LIST};
    return (long)n;
}

/* Check t whole, then start it (an empty iterator when t is not of the kind). */
static long iter_start(gcn_term t, gcn_iter *it, long (*start)(gcn_term, gcn_iter *))
{
    *it = (gcn_iter){.kind = IT_NONE};
    long n = whole(t) ? start(t, it) : -1;
    if (n < 0)
        *it = (gcn_iter){.kind = IT_NONE};
    return n;
}

long gcn_iter_tuple(gcn_term t, gcn_iter *it) { return iter_start(t, it, tuple_iter); }
long gcn_iter_list(gcn_term t, gcn_iter *it) { return iter_start(t, it, list_iter); }
long gcn_iter_map(gcn_term t, gcn_iter *it) { return iter_start(t, it, map_iter); }

int gcn_next(gcn_iter *it, gcn_term *out)
{
    while (it->left == 0) { /* the end, or a list's next segment */
        size_t n;
        int kind;
        if (it->kind != IT_LIST || segment(it->of, &it->pos, &kind, &n) <= 0)
            goto end;
        it->kind = kind;
        it->left = n;
    }
    if (it->kind == IT_STRING) {
        if (it->pos >= it->of.len)
            goto end;
        *out = (gcn_term){(const char *)small_ints[(unsigned char)it->of.ptr[it->pos++]], 2};
    } else if (next_term(it->of, &it->pos, out) < 0) {
        goto end;
    }
    it->left--;
    return 1;
end:
    it->kind = IT_NONE;
    it->left = 0;
    return 0;
}

/* ---- matching ---- */

static int match(const tpl_node *p, gcn_term t, va_list *ap);

static int match_hole(char hole, gcn_term t, va_list *ap)
{
    gcn_term *capture;
    int ok;
    switch (hole) {
    case 'i': return gcn_get_int(t, va_arg(*ap, int64_t *)) == 0;
    case 'u': return gcn_get_uint(t, va_arg(*ap, uint64_t *)) == 0;
    case 'f': return gcn_get_double(t, va_arg(*ap, double *)) == 0;
    case 'a': return gcn_get_atom(t, va_arg(*ap, char *)) == 0;
    case 'b': return gcn_get_binary(t, va_arg(*ap, gcn_bin *)) == 0;
    case 't': ok = 1; break;
    case 'p': ok = tag_of(t) == ERL_PID_EXT || tag_of(t) == ERL_NEW_PID_EXT; break;
    case 'm': ok = tag_of(t) == ERL_MAP_EXT; break;
    case 'l': ok = is_proper(t); break;
    default: return 0;
    }
    capture = va_arg(*ap, gcn_term *);
    if (ok)
        *capture = t;
    return ok;
}

/* The elements of a tuple or list pattern against those of it, as many. */
static int match_elements(const tpl_node *p, gcn_iter *it, va_list *ap)
{
    const char *cursor;
    tpl_first(p, &cursor);
    for (size_t i = 0; i < p->count; i++) {
        tpl_node child;
        gcn_term e;
        tpl_next(&cursor, &child);
        if (!gcn_next(it, &e) || !match(&child, e, ap))
            return 0;
    }
    return 1;
}

/* Every key of the pattern is in the map t, with a value that matches. A
 * key is a literal: matching it takes no argument. */
static int match_map(const tpl_node *p, gcn_term t, va_list *ap)
{
    gcn_iter it;
    if (map_iter(t, &it) < 0)
        return 0;
    const char *cursor;
    tpl_first(p, &cursor);
    for (size_t i = 0; i < p->count; i++) {
        tpl_node key, value;
        gcn_term k, v;
        int found = 0;
        tpl_next(&cursor, &key);
        tpl_next(&cursor, &value);
        map_iter(t, &it);
        while (!found && gcn_next(&it, &k) && gcn_next(&it, &v))
            found = match(&key, k, ap);
        if (!found || !match(&value, v, ap))
            return 0;
    }
    return 1;
}

/* Does the term t (checked) match the pattern node p? */
static int match(const tpl_node *p, gcn_term t, va_list *ap)
{
    char text[GCN_ATOM_MAX];
    int neg;
    uint64_t mag;
    gcn_bin bin;
    gcn_iter it;
    long n;
    switch (p->kind) {
    case TPL_ANY:
        return 1;
    case TPL_HOLE:
        return match_hole(p->hole, t, ap);
    case TPL_ATOM:
        return gcn_get_atom(t, text) == 0 && tpl_text_is(p, text, strlen(text));
    case TPL_INT:
        return read_integer(t, &neg, &mag) == 0 && neg == p->neg && mag == p->mag;
    case TPL_STRING:
        return gcn_get_binary(t, &bin) == 0 && tpl_text_is(p, bin.ptr, bin.len);
    case TPL_TUPLE:
    case TPL_LIST:
        n = p->kind == TPL_TUPLE ? tuple_iter(t, &it) : list_iter(t, &it);
        return n >= 0 && (size_t)n == p->count && match_elements(p, &it, ap);
    case TPL_MAP:
        return match_map(p, t, ap);
    }
    return 0;
}

int gcn_match(gcn_term t, const char *pattern, ...)
{
    tpl_node root;
    if (tpl_root(pattern, TPL_PATTERN, "gcn_match", &root) < 0 || !whole(t))
        return 0;
    va_list ap;
    va_start(ap, pattern);
    int ok = match(&root, t, &ap);
    va_end(ap);
    return ok;
}

/*
 * fuzz_term.c: the term walker (term_skip) and canonical form
 * (term_canonical) on arbitrary bytes, with erl_interface as the oracle:
 *   - what term_skip accepts, ei_skip_term walks to the same end, without
 *     reading past the bytes (the input sits in a buffer of exactly its
 *     size, so AddressSanitizer sees any overread);
 *   - term_canonical accepts only what term_skip accepts, ending at the
 *     same place, and its output is itself accepted, is its own canonical
 *     form, and decodes with ei_decode_* to the same term: the same
 *     integers, atoms (latin1 or UTF-8), floats, strings (or lists of
 *     bytes), binaries, bitstrings, pids, ports, references, funs, and maps
 *     whatever the order of their pairs.
 *   - term_skip_cached, with a validated-atom cache kept across inputs,
 *     accepts and ends exactly as term_skip does; with a sender whose check
 *     refuses every third node's unusual id, it fails only with the
 *     check asked, and as term_skip does or with TERM_EFOREIGN;
 *   - term_tuple_elements accepts a tuple of up to 8 elements exactly when
 *     term_skip accepts it with one more level, ends at the same place, and
 *     its element views lie end to end over the tuple's bytes;
 *   - term_skip_flat takes what term_skip takes, to the same end, never
 *     fails on depth, and takes nothing term_skip finds malformed but for
 *     what lies inside a fun and a map's repeated key;
 *   - term_atom_is agrees with term_atom;
 *   - a pid or reference term_skip accepts, term_checked_id_len measures to
 *     the same end (and nothing else);
 *   - term_shape marks what term_skip accepts (within its depth) to the same
 *     end, and the term with its data bytes replaced (by bytes of the input
 *     read backwards, then all 0x00, then all 0xff) is accepted alike: the
 *     same end, the same verdict at every smaller depth, and as a tuple the
 *     same element views, and, if the check was not asked about the term,
 *     it is not asked about the other either. That is what lets dist_memo
 *     accept a frame by its shape bytes alone.
 * Any disagreement aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "term.h"
#include "term_shape.h"

#define DEPTH 64

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_term: %s\n", what);
    abort();
}

/* ---- integers as sign and little-endian magnitude, leading zeros stripped ---- */

typedef struct bigint {
    int sign;
    size_t n;
    const unsigned char *mag; /* little-endian digits: in the term, or in small */
    unsigned char small[4];
} bigint;

static int read_int(const char *b, int *i, bigint *out)
{
    unsigned char tag = (unsigned char)b[*i];
    memset(out, 0, sizeof *out);
    out->mag = out->small;
    if (tag == ERL_SMALL_INTEGER_EXT) {
        out->small[0] = (unsigned char)b[*i + 1];
        out->n = 1;
        *i += 2;
    } else if (tag == ERL_INTEGER_EXT) {
        int32_t v = (int32_t)((uint32_t)(unsigned char)b[*i + 1] << 24 | (uint32_t)(unsigned char)b[*i + 2] << 16 |
                              (uint32_t)(unsigned char)b[*i + 3] << 8 | (uint32_t)(unsigned char)b[*i + 4]);
        uint32_t m = v < 0 ? (uint32_t)0 - (uint32_t)v : (uint32_t)v;
        out->sign = v < 0;
        for (int k = 0; k < 4; k++)
            out->small[k] = (unsigned char)(m >> (8 * k));
        out->n = 4;
        *i += 5;
    } else if (tag == ERL_SMALL_BIG_EXT || tag == ERL_LARGE_BIG_EXT) {
        size_t n, at = (size_t)*i + 1;
        if (tag == ERL_SMALL_BIG_EXT) {
            n = (unsigned char)b[at];
            at += 1;
        } else {
            n = (size_t)(unsigned char)b[at] << 24 | (size_t)(unsigned char)b[at + 1] << 16 |
                (size_t)(unsigned char)b[at + 2] << 8 | (unsigned char)b[at + 3];
            at += 4;
        }
        out->sign = b[at] != 0;
        at += 1;
        out->mag = (const unsigned char *)b + at;
        out->n = n;
        *i = (int)(at + n);
    } else {
        return -1;
    }
    while (out->n && out->mag[out->n - 1] == 0)
        out->n--;
    if (out->n == 0)
        out->sign = 0;
    return 0;
}

static int is_int_tag(unsigned char t)
{
    return t == ERL_SMALL_INTEGER_EXT || t == ERL_INTEGER_EXT || t == ERL_SMALL_BIG_EXT || t == ERL_LARGE_BIG_EXT;
}

static int is_atom_tag(unsigned char t)
{
    return t == ERL_ATOM_EXT || t == ERL_SMALL_ATOM_EXT || t == ERL_ATOM_UTF8_EXT || t == ERL_SMALL_ATOM_UTF8_EXT;
}

/* ---- lists and strings as one sequence of elements ----
 * A list may be sent in segments (LIST_EXT whose tail is a STRING_EXT or
 * another LIST_EXT), and the canonical form joins them: walk both sides
 * element by element, whatever the segments. */

enum { AT_ELEMENT, AT_END, AT_TAIL };

typedef struct cursor {
    const char *b;
    int i;            /* the next element of a list segment, or the tail */
    const char *str;  /* the next byte of a string segment */
    size_t left;      /* elements left in this segment */
    int ended;        /* a string segment ends the list */
} cursor;

static int at(cursor *c)
{
    for (;;) {
        if (c->left)
            return AT_ELEMENT;
        if (c->ended)
            return AT_END;
        unsigned char t = (unsigned char)c->b[c->i];
        if (t == ERL_NIL_EXT) {
            c->i += 1;
            c->ended = 1;
        } else if (t == ERL_STRING_EXT) {
            c->left = (size_t)(unsigned char)c->b[c->i + 1] << 8 | (unsigned char)c->b[c->i + 2];
            c->str = c->b + c->i + 3;
            c->i += 3 + (int)c->left;
            c->ended = 1;
        } else if (t == ERL_LIST_EXT) {
            int arity;
            if (ei_decode_list_header(c->b, &c->i, &arity) < 0)
                fail("ei_decode_list_header refused a checked list");
            c->left = (size_t)arity;
            c->str = NULL;
        } else {
            return AT_TAIL;
        }
    }
}

static int equal(const char *a, int *ia, const char *b, int *ib, int depth);

/* The current element of c as (buffer, index): a string's byte becomes the
 * small integer it stands for. */
static const char *element(cursor *c, char one[2], int **index, int *scratch)
{
    if (c->str) {
        one[0] = (char)ERL_SMALL_INTEGER_EXT;
        one[1] = *c->str++;
        *scratch = 0;
        *index = scratch;
        return one;
    }
    *index = &c->i;
    return c->b;
}

static int equal_lists(const char *a, int *ia, const char *b, int *ib, int depth)
{
    cursor x = {a, *ia, NULL, 0, 0}, y = {b, *ib, NULL, 0, 0};
    for (;;) {
        int sx = at(&x), sy = at(&y);
        if (sx == AT_ELEMENT && sy == AT_ELEMENT) {
            char one[2][2];
            int *jx, *jy, kx, ky;
            const char *px = element(&x, one[0], &jx, &kx), *py = element(&y, one[1], &jy, &ky);
            x.left--;
            y.left--;
            if (!equal(px, jx, py, jy, depth))
                return 0;
            continue;
        }
        if (sx != sy)
            return 0;
        int same = sx == AT_END || equal(a, &x.i, b, &y.i, depth); /* improper tails */
        *ia = x.i;
        *ib = y.i;
        return same;
    }
}

static int equal_maps(const char *a, int *ia, const char *b, int *ib, int depth)
{
    int na, nb;
    if (ei_decode_map_header(a, ia, &na) < 0 || ei_decode_map_header(b, ib, &nb) < 0 || na != nb)
        return 0;
    int *keys = malloc(sizeof(int) * 2 * (size_t)(na ? na : 1));
    char *used = calloc((size_t)(na ? na : 1), 1);
    if (!keys || !used)
        fail("out of memory");
    for (int k = 0; k < na; k++) {
        keys[2 * k] = *ia;
        ei_skip_term(a, ia);
        keys[2 * k + 1] = *ia;
        ei_skip_term(a, ia);
    }
    int ok = 1;
    for (int k = 0; k < nb && ok; k++) {
        int key_b = *ib, found = -1;
        for (int m = 0; m < na && found < 0; m++) {
            int x = keys[2 * m], y = key_b;
            if (!used[m] && equal(a, &x, b, &y, depth))
                found = m;
        }
        ei_skip_term(b, ib);
        if (found < 0) {
            ok = 0;
            break;
        }
        used[found] = 1;
        int x = keys[2 * found + 1];
        ok = equal(a, &x, b, ib, depth);
    }
    free(keys);
    free(used);
    return ok;
}

/* ---- atoms as UTF-8 bytes and a length ----
 * ei_decode_atom_as hands back a C string, and an atom may hold a NUL:
 * 'a\0x' and 'a\0y' would compare equal. Read the bytes, latin1 made
 * UTF-8, with their length. */

static void read_atom(const char *b, int *i, char out[MAXATOMLEN_UTF8], size_t *len)
{
    unsigned char tag = (unsigned char)b[*i];
    int small = tag == ERL_SMALL_ATOM_EXT || tag == ERL_SMALL_ATOM_UTF8_EXT;
    size_t n = small ? (unsigned char)b[*i + 1]
                     : (size_t)(unsigned char)b[*i + 1] << 8 | (unsigned char)b[*i + 2];
    const unsigned char *p = (const unsigned char *)b + *i + (small ? 2 : 3);
    int latin1 = tag == ERL_ATOM_EXT || tag == ERL_SMALL_ATOM_EXT;
    size_t o = 0;
    for (size_t k = 0; k < n && o + 2 < MAXATOMLEN_UTF8; k++) {
        if (latin1 && p[k] >= 0x80) {
            out[o++] = (char)(0xC0 | p[k] >> 6);
            out[o++] = (char)(0x80 | (p[k] & 0x3F));
        } else {
            out[o++] = (char)p[k];
        }
    }
    *len = o;
    *i += (small ? 2 : 3) + (int)n;
}

/* ---- pids, ports and references, as the BEAM reads them ----
 * ei masks the old tags' fields to what OTP once used (28-bit port ids,
 * say), while the BEAM keeps all 32 bits: read them directly. */

typedef struct identity {
    char node[MAXATOMLEN_UTF8];
    size_t node_len;
    int kind;          /* 'p'id, p'o'rt, 'r'eference */
    uint32_t creation;
    size_t n;          /* words (trailing zeros of a reference dropped) */
    uint32_t words[6];
} identity;

static uint32_t u32_at(const char *b, int i)
{
    return (uint32_t)(unsigned char)b[i] << 24 | (uint32_t)(unsigned char)b[i + 1] << 16 |
           (uint32_t)(unsigned char)b[i + 2] << 8 | (uint32_t)(unsigned char)b[i + 3];
}

static int read_identity(const char *b, int *i, identity *id)
{
    unsigned char tag = (unsigned char)b[*i];
    int at = *i + 1, words = 0;
    memset(id, 0, sizeof *id);
    if (tag == ERL_NEW_REFERENCE_EXT || tag == ERL_NEWER_REFERENCE_EXT) {
        words = (unsigned char)b[at] << 8 | (unsigned char)b[at + 1];
        at += 2;
    }
    read_atom(b, &at, id->node, &id->node_len);
    switch (tag) {
    case ERL_PID_EXT: case ERL_NEW_PID_EXT:
        id->kind = 'p';
        id->words[0] = u32_at(b, at);
        id->words[1] = u32_at(b, at + 4);
        id->n = 2;
        at += 8;
        id->creation = tag == ERL_PID_EXT ? (unsigned char)b[at] : u32_at(b, at);
        at += tag == ERL_PID_EXT ? 1 : 4;
        break;
    case ERL_PORT_EXT: case ERL_NEW_PORT_EXT: case ERL_V4_PORT_EXT:
        id->kind = 'o';
        if (tag == ERL_V4_PORT_EXT) {
            id->words[0] = u32_at(b, at);
            id->words[1] = u32_at(b, at + 4);
            at += 8;
        } else {
            id->words[1] = u32_at(b, at);
            at += 4;
        }
        id->n = 2;
        id->creation = tag == ERL_PORT_EXT ? (unsigned char)b[at] : u32_at(b, at);
        at += tag == ERL_PORT_EXT ? 1 : 4;
        break;
    default: /* references */
        id->kind = 'r';
        if (tag == ERL_REFERENCE_EXT) {
            id->words[0] = u32_at(b, at);
            words = 1;
            at += 4;
            id->creation = (unsigned char)b[at];
            at += 1;
        } else {
            id->creation = tag == ERL_NEW_REFERENCE_EXT ? (unsigned char)b[at] : u32_at(b, at);
            at += tag == ERL_NEW_REFERENCE_EXT ? 1 : 4;
            if (words < 1 || words > 6)
                return -1;
            for (int k = 0; k < words; k++)
                id->words[k] = u32_at(b, at + 4 * k);
            at += 4 * words;
        }
        id->n = (size_t)words;
        while (id->n > 1 && id->words[id->n - 1] == 0)
            id->n--;
    }
    *i = at;
    return 0;
}

/* ei_decode_double reads a FLOAT_EXT's text with sscanf, past its 31
 * bytes when they hold no NUL (the next bytes can change the number):
 * read the text here, bounded. NEW_FLOAT_EXT through ei. */
static int read_float(const char *b, int *i, double *out)
{
    if ((unsigned char)b[*i] != ERL_FLOAT_EXT)
        return ei_decode_double(b, i, out);
    char text[32];
    memcpy(text, b + *i + 1, 31);
    text[31] = '\0';
    for (char *c = text; *c; c++)
        if (*c == ',')
            *c = '.';
    *out = strtod(text, NULL);
    *i += 32;
    return 0;
}

/* Tags that may encode the same term fall in one category. */
static int category(unsigned char t)
{
    if (is_int_tag(t))
        return 1;
    if (is_atom_tag(t))
        return 2;
    switch (t) {
    case ERL_FLOAT_EXT: case NEW_FLOAT_EXT: return 3;
    case ERL_NIL_EXT: case ERL_STRING_EXT: case ERL_LIST_EXT: return 4;
    case ERL_SMALL_TUPLE_EXT: case ERL_LARGE_TUPLE_EXT: return 5;
    case ERL_MAP_EXT: return 6;
    case ERL_BINARY_EXT: case ERL_BIT_BINARY_EXT: return 7;
    case ERL_PID_EXT: case ERL_NEW_PID_EXT: return 8;
    case ERL_PORT_EXT: case ERL_NEW_PORT_EXT: case ERL_V4_PORT_EXT: return 9;
    case ERL_REFERENCE_EXT: case ERL_NEW_REFERENCE_EXT: case ERL_NEWER_REFERENCE_EXT: return 10;
    case ERL_NEW_FUN_EXT: case ERL_EXPORT_EXT: return 11;
    default: return 100 + t;
    }
}

/* Do a[*ia] and b[*ib] decode to the same term? Both indexes move past it. */
static int equal(const char *a, int *ia, const char *b, int *ib, int depth)
{
    unsigned char ta = (unsigned char)a[*ia], tb = (unsigned char)b[*ib];
    if (depth > DEPTH + 2)
        fail("deeper than the limit the walker was given");
    /* A LIST_EXT of no element is its tail (binary_to_term says so). */
    if (ta == ERL_LIST_EXT && u32_at(a, *ia + 1) == 0) {
        *ia += 5;
        return equal(a, ia, b, ib, depth);
    }
    if (tb == ERL_LIST_EXT && u32_at(b, *ib + 1) == 0) {
        *ib += 5;
        return equal(a, ia, b, ib, depth);
    }
    if (category(ta) != category(tb))
        return 0; /* (maps compare keys of all kinds) */
    if (is_int_tag(ta)) {
        bigint x, y;
        if (read_int(a, ia, &x) < 0 || read_int(b, ib, &y) < 0)
            return 0;
        return x.sign == y.sign && x.n == y.n && memcmp(x.mag, y.mag, x.n) == 0;
    }
    if (is_atom_tag(ta)) {
        char x[MAXATOMLEN_UTF8], y[MAXATOMLEN_UTF8];
        size_t nx, ny;
        read_atom(a, ia, x, &nx);
        read_atom(b, ib, y, &ny);
        return nx == ny && memcmp(x, y, nx) == 0;
    }
    if (ta == ERL_FLOAT_EXT || ta == NEW_FLOAT_EXT) {
        double x, y;
        if (read_float(a, ia, &x) < 0 || read_float(b, ib, &y) < 0)
            return 0;
        return memcmp(&x, &y, sizeof x) == 0;
    }
    int list_a = ta == ERL_NIL_EXT || ta == ERL_STRING_EXT || ta == ERL_LIST_EXT;
    int list_b = tb == ERL_NIL_EXT || tb == ERL_STRING_EXT || tb == ERL_LIST_EXT;
    if (list_a || list_b)
        return list_a && list_b && equal_lists(a, ia, b, ib, depth + 1);
    if (ta == ERL_SMALL_TUPLE_EXT || ta == ERL_LARGE_TUPLE_EXT) {
        int na, nb;
        if (ei_decode_tuple_header(a, ia, &na) < 0 || ei_decode_tuple_header(b, ib, &nb) < 0 || na != nb)
            return 0;
        for (int k = 0; k < na; k++)
            if (!equal(a, ia, b, ib, depth + 1))
                return 0;
        return 1;
    }
    if (ta == ERL_MAP_EXT)
        return tb == ERL_MAP_EXT && equal_maps(a, ia, b, ib, depth + 1);
    if (ta == ERL_BINARY_EXT || ta == ERL_BIT_BINARY_EXT) {
        const char *pa, *pb;
        unsigned int oa, ob;
        size_t bits_a, bits_b;
        if (ei_decode_bitstring(a, ia, &pa, &oa, &bits_a) < 0 ||
            ei_decode_bitstring(b, ib, &pb, &ob, &bits_b) < 0 || bits_a != bits_b || oa || ob)
            return 0;
        size_t whole = bits_a / 8, rest = bits_a % 8;
        if (memcmp(pa, pb, whole) != 0)
            return 0;
        unsigned char mask = (unsigned char)(0xFF << (8 - rest));
        return !rest || (((unsigned char)pa[whole] ^ (unsigned char)pb[whole]) & mask) == 0;
    }
    if (ta == ERL_PID_EXT || ta == ERL_NEW_PID_EXT || ta == ERL_PORT_EXT || ta == ERL_NEW_PORT_EXT ||
        ta == ERL_V4_PORT_EXT || ta == ERL_REFERENCE_EXT || ta == ERL_NEW_REFERENCE_EXT ||
        ta == ERL_NEWER_REFERENCE_EXT) {
        identity x, y;
        return read_identity(a, ia, &x) == 0 && read_identity(b, ib, &y) == 0 &&
               x.node_len == y.node_len && memcmp(x.node, y.node, x.node_len) == 0 &&
               x.kind == y.kind && x.creation == y.creation &&
               x.n == y.n && memcmp(x.words, y.words, sizeof x.words[0] * x.n) == 0;
    }
    if (ta == ERL_NEW_FUN_EXT || ta == ERL_EXPORT_EXT) {
        erlang_fun x, y;
        if (ei_decode_fun(a, ia, &x) < 0 || ei_decode_fun(b, ib, &y) < 0)
            return 0;
        int same = x.type == y.type && x.arity == y.arity && strcmp(x.module, y.module) == 0;
        if (same && x.type == EI_FUN_EXPORT)
            same = strcmp(x.u.exprt.func, y.u.exprt.func) == 0;
        if (same && x.type == EI_FUN_CLOSURE)
            same = x.u.closure.index == y.u.closure.index && x.u.closure.uniq == y.u.closure.uniq &&
                   x.u.closure.n_free_vars == y.u.closure.n_free_vars &&
                   memcmp(x.u.closure.md5, y.u.closure.md5, 16) == 0;
        free_fun(&x);
        free_fun(&y);
        return same;
    }
    /* Anything else: the same bytes. */
    int sa = *ia, sb = *ib;
    if (ei_skip_term(a, ia) < 0 || ei_skip_term(b, ib) < 0)
        return 0;
    return *ia - sa == *ib - sb && memcmp(a + sa, b + sb, (size_t)(*ia - sa)) == 0;
}

/* The tuple at b as term_tuple_elements views it: arity (-1: not such a
 * tuple), and the offsets and lengths of up to 8 elements. */
static int tuple_views(const char *b, size_t size, size_t *offs, size_t *lens)
{
    term_view els[8];
    int arity;
    size_t i = 0;
    if (term_tuple_elements(b, size, &i, DEPTH - 1, NULL, NULL, els, 8, &arity) != TERM_OK)
        return -1;
    for (int k = 0; k < arity; k++) {
        offs[k] = (size_t)(els[k].ptr - b);
        lens[k] = els[k].len;
    }
    return arity;
}

/* A sender whose check refuses every id it is handed (term_sender). */
static int refuse_all(void *ctx, const term_foreign_id *id)
{
    (void)ctx;
    if (!id->node || id->n_words < 1 || id->n_words > 5 || (id->is_ref == 0 && id->n_words != 2))
        fail("the check was handed a malformed id");
    return -1;
}

/* The verdict of term_skip_cached with a refuse-all sender ("peer@h"), and
 * whether the check was asked. */
static int refused_skip(const char *b, size_t size, size_t *end, int *asked)
{
    term_sender s = {.name = "peer@h", .name_len = 6, .check = refuse_all};
    int rc = term_skip_cached(b, size, end, DEPTH, NULL, &s);
    *asked = s.checked > 0;
    if (rc == TERM_EFOREIGN && !*asked)
        fail("TERM_EFOREIGN without asking the check");
    return rc;
}

static void check_shape(const char *buf, size_t size, size_t end)
{
    unsigned char *mask = malloc(size ? size : 1);
    char *other = malloc(size ? size : 1);
    size_t i = 0;
    if (term_shape(buf, size, &i, mask, DEPTH) < 0) {
        free(mask);
        free(other);
        return; /* deeper than DEPTH counts for term_shape: not marked, nothing to hold */
    }
    if (i != end)
        fail("term_shape ends elsewhere than term_skip");
    size_t offs[8], lens[8], ooffs[8], olens[8];
    int arity = tuple_views(buf, size, offs, lens);
    for (int variant = 0; variant < 3; variant++) {
        for (size_t k = 0; k < size; k++) {
            char data = variant == 0 ? buf[size - 1 - k] : variant == 1 ? 0 : (char)0xff;
            /* data bits replaced, shape bits kept (a byte may hold both) */
            other[k] = k < end ? (char)((buf[k] & mask[k]) | (data & ~mask[k])) : buf[k];
        }
        size_t oend = 0;
        if (term_skip(other, size, &oend, DEPTH) != TERM_OK || oend != end)
            fail("a term of the same shape is not accepted alike");
        /* What passed without asking about third nodes' ids passes so in
         * every shape-alike term (dist.c remembers only such frames). */
        size_t e1 = 0, e2 = 0;
        int asked1, asked2;
        int r1 = refused_skip(buf, size, &e1, &asked1), r2 = refused_skip(other, size, &e2, &asked2);
        if (!asked1 && (r1 != TERM_OK || e1 != end || r2 != TERM_OK || e2 != end || asked2))
            fail("a term of the same shape is asked about where the first was not");
        for (unsigned d = 0; d < 4; d++) {
            size_t e1 = 0, e2 = 0;
            if (term_skip(buf, size, &e1, d) != term_skip(other, size, &e2, d))
                fail("a term of the same shape has another verdict at a smaller depth");
        }
        if (tuple_views(other, size, ooffs, olens) != arity)
            fail("a tuple of the same shape has another arity");
        for (int k = 0; k < arity; k++)
            if (ooffs[k] != offs[k] || olens[k] != lens[k])
                fail("a tuple of the same shape has its elements elsewhere");
    }
    free(mask);
    free(other);
}

/* Whether some bytes could be the head of a map of 2 keys or more (116 and
 * an arity of 2 or more): the only place term_skip_flat does not refuse
 * what term_skip does, a repeated key, could lie there. */
static int has_map_of_two(const uint8_t *buf, size_t size)
{
    for (size_t i = 0; i + 5 <= size; i++)
        if (buf[i] == 116 && ((buf[i + 1] | buf[i + 2] | buf[i + 3]) != 0 || buf[i + 4] >= 2))
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1); /* exactly the input: overreads are seen */
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    size_t end = 0;
    int rc = term_skip(buf, size, &end, DEPTH);
    /* The validated-atom cache lives across inputs, as a connection's lives
     * across messages: a cached walk agrees with a plain one, twice over
     * (the second walk meets every atom of this input in the cache). */
    static term_atom_cache atoms;
    for (int pass = 0; pass < 2; pass++) {
        size_t cend = 0;
        int crc = term_skip_cached(buf, size, &cend, DEPTH, &atoms, NULL);
        if (crc != rc || (rc == TERM_OK && cend != end))
            fail("term_skip_cached disagrees with term_skip");
    }
    {
        /* A sender whose check refuses: the verdict is term_skip's, or
         * TERM_EFOREIGN once the check was asked. */
        size_t fend = 0;
        int asked, frc = refused_skip(buf, size, &fend, &asked);
        if (!asked && (frc != rc || (rc == TERM_OK && fend != end)))
            fail("term_skip_cached with a sender disagrees with term_skip");
        if (asked && frc != rc && frc != TERM_EFOREIGN)
            fail("term_skip_cached with a sender fails otherwise than term_skip");
    }
    {
        /* term_skip_flat: whatever term_skip takes, to the same end; never
         * a depth error; and nothing term_skip finds malformed, but for
         * what is inside a fun (passed over by its Size) and a map's
         * repeated key (not compared: what it passes over is never used). */
        size_t flend = 0;
        int flrc = term_skip_flat(buf, size, &flend);
        if (rc == TERM_OK && (flrc != TERM_OK || flend != end))
            fail("term_skip_flat refuses, or ends elsewhere than, what term_skip takes");
        if (flrc == TERM_EDEPTH)
            fail("term_skip_flat minds depth");
        if (flrc == TERM_OK && rc == TERM_EBAD && !memchr(buf, 112, size) && !has_map_of_two((const uint8_t *)buf, size))
            fail("term_skip_flat takes what term_skip finds malformed");
    }
    {
        term_view els[8] = {{NULL, 0}};
        int arity = -1;
        size_t tend = 0, send = 0;
        int trc = term_tuple_elements(buf, size, &tend, DEPTH - 1, &atoms, NULL, els, 8, &arity);
        int src = term_skip(buf, size, &send, DEPTH);
        int small_tuple = size >= 2 && ((unsigned char)buf[0] == 104 ? (unsigned char)buf[1] <= 8
                                        : (unsigned char)buf[0] == 105 && size >= 5 && buf[1] == 0 &&
                                              buf[2] == 0 && buf[3] == 0 && (unsigned char)buf[4] <= 8);
        if ((trc == TERM_OK) != (src == TERM_OK && small_tuple) || (trc == TERM_OK && tend != send))
            fail("term_tuple_elements disagrees with term_skip");
        if (trc == TERM_OK) {
            const char *at = arity > 0 ? els[0].ptr : NULL;
            for (int k = 0; k < arity; k++) {
                if (els[k].ptr != at || els[k].ptr < buf || els[k].ptr + els[k].len > buf + tend)
                    fail("term_tuple_elements' views do not lie end to end");
                at += els[k].len;
            }
            if (arity > 0 && at != buf + tend)
                fail("term_tuple_elements' views do not end with the tuple");
        }
    }
    {
        static const char *names[] = {"$gen_call", "$gen_cast", "alias", "a", ""};
        for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
            int i = 0, j = 0;
            const char *text;
            size_t len;
            int is = term_atom_is((term_view){buf, size}, &i, names[k]);
            int want = term_atom((term_view){buf, size}, &j, &text, &len) == 0 && len == strlen(names[k]) &&
                       memcmp(text, names[k], len) == 0;
            if (is != want || (is && i != j) || (!is && i != 0))
                fail("term_atom_is disagrees with term_atom");
        }
    }
    if (rc == TERM_OK)
        check_shape(buf, size, end);
    if (rc == TERM_OK) {
        size_t q = term_checked_id_len(buf, size);
        const unsigned char *u = (const unsigned char *)buf;
        int id = size > 3 && ((u[0] == ERL_NEW_PID_EXT && u[1] == ERL_SMALL_ATOM_UTF8_EXT) ||
                              (u[0] == ERL_NEWER_REFERENCE_EXT && u[3] == ERL_SMALL_ATOM_UTF8_EXT));
        if (q != (id ? end : 0))
            fail("term_checked_id_len does not measure a checked pid or reference as term_skip does");
    }
    if (rc == TERM_OK) {
        int i = 0;
        if (ei_skip_term(buf, &i) < 0 || (size_t)i != end)
            fail("term_skip accepted what ei_skip_term does not walk the same way");
    }
    ei_x_buff out, again;
    ei_x_new(&out);
    ei_x_new(&again);
    size_t cend = 0;
    int crc = term_canonical(buf, size, &cend, DEPTH, &out);
    if (crc == TERM_OK) {
        if (rc != TERM_OK || cend != end)
            fail("term_canonical accepted what term_skip refuses");
        char *canon = malloc((size_t)out.index + 1);
        memcpy(canon, out.buff, (size_t)out.index);
        size_t k = 0;
        if (term_skip(canon, (size_t)out.index, &k, DEPTH) != TERM_OK || k != (size_t)out.index)
            fail("the canonical form is not a valid term");
        size_t k2 = 0;
        if (term_canonical(canon, (size_t)out.index, &k2, DEPTH, &again) != TERM_OK ||
            again.index != out.index || memcmp(again.buff, canon, (size_t)out.index) != 0)
            fail("the canonical form is not its own canonical form");
        int ia = 0, ib = 0;
        if (!equal(buf, &ia, canon, &ib, 0) || (size_t)ia != end || ib != out.index)
            fail("the canonical form decodes to another term");
        free(canon);
    } else if (crc == TERM_OK && rc != TERM_OK) {
        fail("unreachable");
    }
    ei_x_free(&out);
    ei_x_free(&again);
    free(buf);
    return 0;
}

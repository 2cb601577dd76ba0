/*
 * term.c: the walk over one external-format term behind term_skip and
 * term_canonical (term.h states the rules). A single recursive descent does
 * both jobs: with no output buffer it only checks, with one it also writes the
 * canonical bytes. It recurses once per nested compound term, never once per
 * list element, and never deeper than max_depth.
 *
 * Depth: the top-level term is at depth 0 and every term inside a compound
 * (tuple element, list element or improper tail, map key or value, fun free
 * variable) is one deeper; any term deeper than max_depth is refused. The
 * node atoms of pids, ports and refs and the parts of funs and exports other
 * than free variables are read in place and do not count.
 */
#include "term.h"

#include <limits.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "siphash.h"

/* Tags of the external term format (OTP's erl_ext_dist). */
enum {
    TAG_NEW_FLOAT = 70,
    TAG_BIT_BINARY = 77,
    TAG_COMPRESSED = 80,
    TAG_ATOM_CACHE_REF = 82,
    TAG_NEW_PID = 88,
    TAG_NEW_PORT = 89,
    TAG_NEWER_REFERENCE = 90,
    TAG_SMALL_INTEGER = 97,
    TAG_INTEGER = 98,
    TAG_FLOAT = 99,
    TAG_ATOM = 100,
    TAG_REFERENCE = 101,
    TAG_PORT = 102,
    TAG_PID = 103,
    TAG_SMALL_TUPLE = 104,
    TAG_LARGE_TUPLE = 105,
    TAG_NIL = 106,
    TAG_STRING = 107,
    TAG_LIST = 108,
    TAG_BINARY = 109,
    TAG_SMALL_BIG = 110,
    TAG_LARGE_BIG = 111,
    TAG_NEW_FUN = 112,
    TAG_EXPORT = 113,
    TAG_NEW_REFERENCE = 114,
    TAG_SMALL_ATOM = 115,
    TAG_MAP = 116,
    TAG_FUN = 117,
    TAG_ATOM_UTF8 = 118,
    TAG_SMALL_ATOM_UTF8 = 119,
    TAG_V4_PORT = 120,
    TAG_LOCAL = 121,
};

#define ATOM_MAX_CHARS 255      /* the BEAM refuses longer atoms */
#define REF_MAX_WORDS 5
#define FLOAT_TEXT_LEN 31       /* FLOAT_EXT's NUL-padded "%.20e" text */
#define STRING_MAX_LEN 65535    /* STRING_EXT's 2-byte length */
#define KEY_MAX_DEPTH 2000      /* --max-depth's largest: no stored key is deeper */
/* The most digit bytes the BEAM decodes in a LARGE_BIG_EXT: BIG_ARITY_MAX
 * (big.h) words of 8 bytes, on a 64-bit BEAM (dec_term). */
#define BIG_MAX_BYTES (((1u << 19) - 1) * 8)
#define FUN_FIXED_LEN 25        /* NEW_FUN_EXT: Arity, Uniq[16], Index, NumFree */
/* OTP 25 writes a port as NEW_PORT_EXT only while its number fits 28 bits
 * (ERTS_MAX_V3_PORT_NUMBER) and as V4_PORT_EXT above that; so do we. */
#define PORT_V3_MAX UINT64_C(0x0FFFFFFF)

#define TRY(expr)                   \
    do {                            \
        int try_rc_ = (expr);       \
        if (try_rc_ != TERM_OK)     \
            return try_rc_;         \
    } while (0)

struct walk {
    const unsigned char *buf;
    size_t len;
    size_t pos;
    unsigned max_depth;
    ei_x_buff *out; /* NULL: check only */
    term_atom_cache *atoms; /* NULL: none (check only, see term_skip_cached) */
    int accepted;           /* the bytes passed term_skip before: atoms' text is not checked again (term_next) */
    term_sender *sender;    /* NULL: third nodes' ids pass unasked (check only, see term_sender) */
    unsigned in_key;        /* within a key of a map of 2 keys or more: distinct_keys of that
                               map compares whole keys, maps inside them included */
    size_t sort_budget;     /* bytes map_sort_pairs may still move (SORT_BUDGET) */
    size_t *budget;         /* that of the walk this one serves (distinct_keys), or NULL */
    int fold_zero;          /* writing: -0.0 is written as 0.0 (distinct_keys' second look) */
    int *negative_zero;     /* when not NULL, set when a -0.0 is read */
};

/* Sorting a map's pairs moves every byte of them, maps inside included: a
 * chain of maps nested in keys, each out of order, would move its inner
 * bytes once per level. A walk moves this many bytes at most, else its term
 * counts as too deep (TERM_EDEPTH). */
#define SORT_BUDGET(len) ((size_t)(len) > SIZE_MAX / 32 ? SIZE_MAX : 16 * (size_t)(len) + 65536)

static inline int walk_term(struct walk *w, unsigned depth);

/* ---- reading the input ---- */

static size_t remaining(const struct walk *w)
{
    return w->len - w->pos;
}

static uint32_t load_be16(const unsigned char *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t load_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t load_be64(const unsigned char *p)
{
    return (uint64_t)load_be32(p) << 32 | load_be32(p + 4);
}

/* Consume n bytes, pointing *p at them; EBAD when fewer are present. */
static int take(struct walk *w, size_t n, const unsigned char **p)
{
    if (n > remaining(w))
        return TERM_EBAD;
    *p = w->buf + w->pos;
    w->pos += n;
    return TERM_OK;
}

static int take_u8(struct walk *w, unsigned *v)
{
    const unsigned char *p;
    TRY(take(w, 1, &p));
    *v = p[0];
    return TERM_OK;
}

static int take_u16(struct walk *w, size_t *v)
{
    const unsigned char *p;
    TRY(take(w, 2, &p));
    *v = load_be16(p);
    return TERM_OK;
}

static int take_u32(struct walk *w, uint32_t *v)
{
    const unsigned char *p;
    TRY(take(w, 4, &p));
    *v = load_be32(p);
    return TERM_OK;
}

/* ---- writing the output (all no-ops when only checking) ---- */

/* Make room for n more bytes, growing geometrically. The buffer is the
 * malloc'd one of ei_x_new (ei_malloc is malloc), so realloc may grow it; on
 * failure the old buffer is kept, unlike ei's own x_fix_buff. */
int term_reserve(ei_x_buff *out, size_t n)
{
    size_t used = (size_t)out->index;
    size_t cap = out->buff ? (size_t)out->buffsz : 0;
    if (n > (size_t)INT_MAX - used)
        return TERM_ENOMEM;
    if (used + n <= cap)
        return TERM_OK;
    size_t want = cap < 64 ? 64 : cap;
    while (want < used + n)
        want = want > (size_t)INT_MAX / 2 ? (size_t)INT_MAX : want * 2;
    char *grown = realloc(out->buff, want);
    if (!grown)
        return TERM_ENOMEM;
    out->buff = grown;
    out->buffsz = (int)want;
    return TERM_OK;
}

void term_shrink(ei_x_buff *x, size_t keep)
{
    if (!x->buff || (size_t)x->buffsz <= keep)
        return;
    char *p = realloc(x->buff, keep);
    if (!p)
        return;
    x->buff = p;
    x->buffsz = (int)keep;
    x->index = 0;
}

/* Where the next output byte goes (0 when only checking). */
static size_t out_mark(const struct walk *w)
{
    return w->out ? (size_t)w->out->index : 0;
}

static int emit_bytes(struct walk *w, const void *p, size_t n)
{
    TRY(term_reserve(w->out, n));
    memcpy(w->out->buff + w->out->index, p, n);
    w->out->index += (int)n;
    return TERM_OK;
}

/* Only checking (no output): nothing to do, and cheaply so. */
static inline int emit(struct walk *w, const void *p, size_t n)
{
    return w->out && n ? emit_bytes(w, p, n) : TERM_OK;
}

static inline int emit_u8(struct walk *w, unsigned v)
{
    if (!w->out)
        return TERM_OK;
    unsigned char b = (unsigned char)v;
    return emit_bytes(w, &b, 1);
}

static void store_be16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void store_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static inline int emit_be16(struct walk *w, uint32_t v)
{
    if (!w->out)
        return TERM_OK;
    unsigned char b[2];
    store_be16(b, v);
    return emit_bytes(w, b, sizeof b);
}

static inline int emit_be32(struct walk *w, uint32_t v)
{
    if (!w->out)
        return TERM_OK;
    unsigned char b[4];
    store_be32(b, v);
    return emit_bytes(w, b, sizeof b);
}

static int emit_be64(struct walk *w, uint64_t v)
{
    unsigned char b[8];
    store_be32(b, (uint32_t)(v >> 32));
    store_be32(b + 4, (uint32_t)v);
    return emit(w, b, sizeof b);
}

/* Overwrite already-written output bytes at offset at. */
static void patch_u8(struct walk *w, size_t at, unsigned v)
{
    if (w->out)
        ((unsigned char *)w->out->buff)[at] = (unsigned char)v;
}

static void patch_be16(struct walk *w, size_t at, uint32_t v)
{
    if (w->out)
        store_be16((unsigned char *)w->out->buff + at, v);
}

static void patch_be32(struct walk *w, size_t at, uint32_t v)
{
    if (w->out)
        store_be32((unsigned char *)w->out->buff + at, v);
}

/* ---- atoms ---- */

/* Check one strict UTF-8 character (no overlong forms, no surrogates, at most
 * U+10FFFF) at the start of p[0 .. n); set *used to its length. */
static int utf8_char(const unsigned char *p, size_t n, size_t *used)
{
    unsigned lead = p[0];
    size_t len;
    uint32_t cp, min;
    if (lead < 0x80) {
        *used = 1;
        return TERM_OK;
    } else if (lead >= 0xC0 && lead < 0xE0) {
        len = 2;
        cp = lead & 0x1F;
        min = 0x80;
    } else if (lead >= 0xE0 && lead < 0xF0) {
        len = 3;
        cp = lead & 0x0F;
        min = 0x800;
    } else if (lead >= 0xF0 && lead < 0xF8) {
        len = 4;
        cp = lead & 0x07;
        min = 0x10000;
    } else {
        return TERM_EBAD;
    }
    if (len > n)
        return TERM_EBAD;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return TERM_EBAD;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return TERM_EBAD;
    *used = len;
    return TERM_OK;
}

/* Is p[0 .. n) all ASCII? Eight bytes at a time. */
static inline __attribute__((always_inline)) int all_ascii(const unsigned char *p, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t word;
        memcpy(&word, p + i, 8);
        if (word & 0x8080808080808080ull)
            return 0;
    }
    if (i == n)
        return 1;
    if (n >= 8) { /* the last eight bytes, overlapping what was checked */
        uint64_t word;
        memcpy(&word, p + n - 8, 8);
        return !(word & 0x8080808080808080ull);
    }
    uint32_t acc = 0; /* fewer than eight in all */
    if (n & 4) {
        uint32_t w4;
        memcpy(&w4, p, 4);
        acc = w4;
    }
    if (n & 2) {
        uint16_t w2;
        memcpy(&w2, p + (n & 4), 2);
        acc |= w2;
    }
    if (n & 1)
        acc |= p[n - 1];
    return !(acc & 0x80808080u);
}

/* Check that p[0 .. n) is strict UTF-8 and count its characters. */
static int utf8_count(const unsigned char *p, size_t n, size_t *chars)
{
    size_t count = 0;
    if (all_ascii(p, n)) { /* node names, module names, most atoms */
        *chars = n;
        return TERM_OK;
    }
    for (size_t i = 0; i < n;) {
        size_t used;
        TRY(utf8_char(p + i, n - i, &used));
        i += used;
        count++;
    }
    *chars = count;
    return TERM_OK;
}

/* Write latin1 text p[0 .. n) as UTF-8 (bytes >= 0x80 become two bytes). */
static int emit_latin1_as_utf8(struct walk *w, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] < 0x80) {
            TRY(emit_u8(w, p[i]));
        } else {
            unsigned char two[2] = {(unsigned char)(0xC0 | p[i] >> 6),
                                    (unsigned char)(0x80 | (p[i] & 0x3F))};
            TRY(emit(w, two, sizeof two));
        }
    }
    return TERM_OK;
}

/* The validated-atom cache (term.h): direct-mapped on a hash of the
 * encoding's length and its first and last eight bytes, confirmed by memcmp. */
static unsigned atom_cache_slot(const unsigned char *p, size_t n)
{
    uint64_t a = 0, b = 0;
    memcpy(&a, p, n < 8 ? n : 8);
    memcpy(&b, p + (n > 8 ? n - 8 : 0), n < 8 ? n : 8);
    uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ull) ^ n) * 0xFF51AFD7ED558CCDull;
    return (unsigned)(h >> 58) & (TERM_ATOM_CACHE_SLOTS - 1);
}

static int atom_cache_has(term_atom_cache *c, const unsigned char *p, size_t n)
{
    if (n > TERM_ATOM_CACHE_BYTES)
        return 0;
    unsigned s = atom_cache_slot(p, n);
    if (c->len[s] == n && memcmp(c->bytes[s], p, n) == 0) {
        c->hits++;
        return 1;
    }
    c->misses++;
    return 0;
}

static void atom_cache_put(term_atom_cache *c, const unsigned char *p, size_t n)
{
    if (n > TERM_ATOM_CACHE_BYTES)
        return;
    unsigned s = atom_cache_slot(p, n);
    memcpy(c->bytes[s], p, n);
    c->len[s] = (unsigned char)n;
}

/* The body of an atom whose tag was just read: canonically SMALL_ATOM_UTF8_EXT,
 * or ATOM_UTF8_EXT when the UTF-8 text is over 255 bytes. */
static int walk_atom_body(struct walk *w, unsigned tag)
{
    size_t at = w->pos - 1; /* the tag */
    int latin1 = tag == TAG_ATOM || tag == TAG_SMALL_ATOM;
    size_t n;
    if (tag == TAG_SMALL_ATOM || tag == TAG_SMALL_ATOM_UTF8) {
        unsigned n8;
        TRY(take_u8(w, &n8));
        n = n8;
    } else {
        TRY(take_u16(w, &n));
    }
    const unsigned char *text;
    TRY(take(w, n, &text));

    /* Only checking: an ASCII atom (nearly every atom there is) is checked
     * by its bytes alone, more cheaply than looked up; any other is looked up
     * among those this peer already sent, and checked once. */
    if (!w->out && (w->accepted || (n <= ATOM_MAX_CHARS && all_ascii(text, n))))
        return TERM_OK;
    const unsigned char *whole = w->buf + at; /* tag, length, text */
    size_t whole_len = w->pos - at;
    if (!w->out && w->atoms && atom_cache_has(w->atoms, whole, whole_len))
        return TERM_OK;

    size_t chars = n, utf8_len = n;
    if (latin1) {
        if (w->out)
            for (size_t i = 0; i < n; i++)
                utf8_len += text[i] >= 0x80;
    } else {
        TRY(utf8_count(text, n, &chars));
    }
    if (chars > ATOM_MAX_CHARS)
        return TERM_EBAD;
    if (!w->out && w->atoms)
        atom_cache_put(w->atoms, whole, whole_len);

    if (utf8_len <= 255) {
        TRY(emit_u8(w, TAG_SMALL_ATOM_UTF8));
        TRY(emit_u8(w, (unsigned)utf8_len));
    } else {
        TRY(emit_u8(w, TAG_ATOM_UTF8));
        TRY(emit_be16(w, (uint32_t)utf8_len));
    }
    return latin1 ? emit_latin1_as_utf8(w, text, n) : emit(w, text, n);
}

/* An atom where the format demands one (a node name, a module, a function). */
static int walk_atom(struct walk *w)
{
    unsigned tag;
    TRY(take_u8(w, &tag));
    switch (tag) {
    case TAG_ATOM:
    case TAG_SMALL_ATOM:
    case TAG_ATOM_UTF8:
    case TAG_SMALL_ATOM_UTF8:
        return walk_atom_body(w, tag);
    case TAG_ATOM_CACHE_REF:
        return TERM_EUNSUPPORTED;
    default:
        return TERM_EBAD;
    }
}

/* ---- numbers ---- */

/* Write an integer that fits 32 bits (given as its two's complement bits):
 * SMALL_INTEGER_EXT for 0..255, else INTEGER_EXT. */
static int emit_int32(struct walk *w, uint32_t bits)
{
    if (bits <= 255) {
        TRY(emit_u8(w, TAG_SMALL_INTEGER));
        return emit_u8(w, bits);
    }
    TRY(emit_u8(w, TAG_INTEGER));
    return emit_be32(w, bits);
}

static int walk_small_integer(struct walk *w)
{
    unsigned v;
    TRY(take_u8(w, &v));
    return emit_int32(w, v);
}

static int walk_integer(struct walk *w)
{
    uint32_t bits;
    TRY(take_u32(w, &bits));
    return emit_int32(w, bits);
}

/* A SMALL_INTEGER_EXT or INTEGER_EXT where the format demands one (a fun's
 * OldIndex and OldUniq, an export's arity); *bits gets its 32 bits. */
static int walk_fixnum(struct walk *w, uint32_t *bits)
{
    unsigned tag;
    TRY(take_u8(w, &tag));
    if (tag == TAG_SMALL_INTEGER) {
        unsigned v;
        TRY(take_u8(w, &v));
        *bits = v;
    } else if (tag == TAG_INTEGER) {
        TRY(take_u32(w, bits));
    } else {
        return TERM_EBAD;
    }
    return emit_int32(w, *bits);
}

/* Write a big of magnitude digits[0 .. m) (little-endian, no high zero byte). */
static int emit_big(struct walk *w, unsigned sign, const unsigned char *digits, size_t m)
{
    if (m <= 255) {
        TRY(emit_u8(w, TAG_SMALL_BIG));
        TRY(emit_u8(w, (unsigned)m));
    } else {
        TRY(emit_u8(w, TAG_LARGE_BIG));
        TRY(emit_be32(w, (uint32_t)m));
    }
    TRY(emit_u8(w, sign));
    return emit(w, digits, m);
}

/* SMALL_BIG_EXT / LARGE_BIG_EXT: high zero bytes are dropped, and a value
 * that fits 32 bits (including zero, whatever its sign) becomes a fixnum. */
static int walk_big(struct walk *w, unsigned tag)
{
    size_t n;
    if (tag == TAG_SMALL_BIG) {
        unsigned n8;
        TRY(take_u8(w, &n8));
        n = n8;
    } else {
        uint32_t n32;
        TRY(take_u32(w, &n32));
        n = n32;
        if (n > BIG_MAX_BYTES) /* the BEAM refuses it, zeros at its top or not */
            return TERM_EBAD;
    }
    unsigned sign;
    TRY(take_u8(w, &sign));
    if (sign > 1)
        return TERM_EBAD;
    const unsigned char *digits;
    TRY(take(w, n, &digits));

    size_t m = n;
    while (m > 0 && digits[m - 1] == 0)
        m--;
    if (m <= 4) {
        uint64_t mag = 0;
        for (size_t i = m; i-- > 0;)
            mag = mag << 8 | digits[i];
        if (mag == 0 || (!sign && mag <= INT32_MAX))
            return emit_int32(w, (uint32_t)mag);
        if (sign && mag <= UINT64_C(0x80000000))
            return emit_int32(w, (uint32_t)(UINT64_C(0x100000000) - mag));
    }
    return emit_big(w, sign, digits, m);
}

/* The 8 big-endian IEEE 754 bytes are finite (exponent not all ones). */
static int float_bytes_finite(const unsigned char *p)
{
    return !((p[0] & 0x7F) == 0x7F && (p[1] & 0xF0) == 0xF0);
}

#define NEGATIVE_ZERO UINT64_C(0x8000000000000000)

/* A float's bits as written: -0.0 is noted, and folded into 0.0 when the
 * walk says so (distinct_keys). */
static int emit_float_bits(struct walk *w, uint64_t bits)
{
    if (bits == NEGATIVE_ZERO) {
        if (w->negative_zero)
            *w->negative_zero = 1;
        if (w->fold_zero)
            bits = 0;
    }
    TRY(emit_u8(w, TAG_NEW_FLOAT));
    return emit_be64(w, bits);
}

static int walk_new_float(struct walk *w)
{
    const unsigned char *p;
    TRY(take(w, 8, &p));
    if (!float_bytes_finite(p))
        return TERM_EBAD;
    return emit_float_bits(w, load_be64(p));
}

static size_t count_digits(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    return i;
}

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void make_c_locale(void) { c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

double term_strtod(const char *s, char **end)
{
    pthread_once(&c_locale_once, make_c_locale);
    return c_locale ? strtod_l(s, end, c_locale) : strtod(s, end);
}

/* The FLOAT_EXT text has the form the BEAM accepts:
 * [+-]digits(.|,)digits[(e|E)[+-]digits]. */
static int float_text_ok(const char *s, size_t n)
{
    size_t i = 0, d;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    if ((d = count_digits(s + i, n - i)) == 0)
        return 0;
    i += d;
    if (i == n || (s[i] != '.' && s[i] != ','))
        return 0;
    i++;
    if ((d = count_digits(s + i, n - i)) == 0)
        return 0;
    i += d;
    if (i == n)
        return 1;
    if (s[i] != 'e' && s[i] != 'E')
        return 0;
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    if ((d = count_digits(s + i, n - i)) == 0)
        return 0;
    return i + d == n;
}

/* FLOAT_EXT: 31 bytes of text, up to the first NUL; canonically NEW_FLOAT_EXT. */
static int walk_float_text(struct walk *w)
{
    const unsigned char *p;
    TRY(take(w, FLOAT_TEXT_LEN, &p));
    char text[FLOAT_TEXT_LEN + 1];
    memcpy(text, p, FLOAT_TEXT_LEN);
    text[FLOAT_TEXT_LEN] = '\0';
    size_t n = strlen(text);
    if (!float_text_ok(text, n))
        return TERM_EBAD;
    char *comma = memchr(text, ',', n);
    if (comma)
        *comma = '.';
    char *end;
    double d = term_strtod(text, &end);
    if (end != text + n || !isfinite(d))
        return TERM_EBAD;
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return emit_float_bits(w, bits);
}

/* ---- tuples and maps ---- */

static int walk_tuple(struct walk *w, unsigned tag, unsigned depth)
{
    size_t arity;
    if (tag == TAG_SMALL_TUPLE) {
        unsigned a8;
        TRY(take_u8(w, &a8));
        arity = a8;
    } else {
        uint32_t a32;
        TRY(take_u32(w, &a32));
        arity = a32;
    }
    if (arity > remaining(w)) /* every element takes a byte at least */
        return TERM_EBAD;
    if (arity < 256) {
        TRY(emit_u8(w, TAG_SMALL_TUPLE));
        TRY(emit_u8(w, (unsigned)arity));
    } else {
        TRY(emit_u8(w, TAG_LARGE_TUPLE));
        TRY(emit_be32(w, (uint32_t)arity));
    }
    for (size_t i = 0; i < arity; i++)
        TRY(walk_term(w, depth + 1));
    return TERM_OK;
}

/* One canonical key-value pair in the output: where it starts, how long its
 * key and the whole pair are, and (once the output stops moving) its key. */
struct map_pair {
    size_t start;
    size_t key_len;
    size_t len;
    const unsigned char *key;
};

struct map_pairs {
    struct map_pair *items;
    size_t count;
    size_t cap;
};

static int map_pairs_push(struct map_pairs *pairs, struct map_pair pair)
{
    if (pairs->count == pairs->cap) {
        size_t cap = pairs->cap ? pairs->cap * 2 : 8;
        if (cap > SIZE_MAX / sizeof *pairs->items)
            return TERM_ENOMEM;
        struct map_pair *grown = realloc(pairs->items, cap * sizeof *grown);
        if (!grown)
            return TERM_ENOMEM;
        pairs->items = grown;
        pairs->cap = cap;
    }
    pairs->items[pairs->count++] = pair;
    return TERM_OK;
}

/* Canonical key order: memcmp of the bytes, then the shorter first. */
static int map_pair_cmp(const void *a, const void *b)
{
    const struct map_pair *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c != 0)
        return c;
    return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

/* Reorder the pairs written at out->buff[first ..] by key; EBAD on a
 * repeated key; EDEPTH past the budget (SORT_BUDGET). Pairs in order
 * already are not moved. */
static int map_sort_pairs(ei_x_buff *out, size_t first, struct map_pair *items, size_t count, size_t *budget)
{
    if (count < 2)
        return TERM_OK;
    for (size_t i = 0; i < count; i++)
        items[i].key = (const unsigned char *)out->buff + items[i].start;
    qsort(items, count, sizeof *items, map_pair_cmp);
    int in_order = 1;
    for (size_t i = 1; i < count; i++) {
        if (map_pair_cmp(&items[i - 1], &items[i]) == 0)
            return TERM_EBAD;
        in_order &= items[i - 1].start < items[i].start;
    }
    if (in_order)
        return TERM_OK;

    size_t total = (size_t)out->index - first;
    if (total > *budget)
        return TERM_EDEPTH;
    *budget -= total;
    unsigned char *sorted = malloc(total);
    if (!sorted)
        return TERM_ENOMEM;
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        memcpy(sorted + at, items[i].key, items[i].len);
        at += items[i].len;
    }
    memcpy(out->buff + first, sorted, total);
    free(sorted);
    return TERM_OK;
}

/* Write the arity pairs canonically, then sort them. */
static int map_canonical_pairs(struct walk *w, size_t arity, unsigned depth)
{
    struct map_pairs pairs = {NULL, 0, 0};
    size_t first = out_mark(w);
    int rc = TERM_OK;
    for (size_t i = 0; i < arity && rc == TERM_OK; i++) {
        struct map_pair pair = {out_mark(w), 0, 0, NULL};
        rc = walk_term(w, depth + 1);
        if (rc != TERM_OK)
            break;
        pair.key_len = out_mark(w) - pair.start;
        rc = walk_term(w, depth + 1);
        if (rc != TERM_OK)
            break;
        pair.len = out_mark(w) - pair.start;
        rc = map_pairs_push(&pairs, pair);
    }
    if (rc == TERM_OK)
        rc = map_sort_pairs(w->out, first, pairs.items, pairs.count, w->budget ? w->budget : &w->sort_budget);
    free(pairs.items);
    return rc;
}

static int canonical(const char *buf, size_t len, size_t *index, unsigned max_depth, ei_x_buff *out,
                     size_t *budget, int fold_zero, int *negative_zero);

/* A key (already checked) whose bytes compare as its canonical form's do,
 * and of what kind: an atom in a UTF-8 tag or of ASCII text in a Latin-1
 * one (1: its text), a SMALL_INTEGER_EXT (2: its byte), a BINARY_EXT (3:
 * all of it). Keys of different kinds are never =:=; 0: compare canonical
 * forms (any other encoding, which an equal term may have in another tag). */
static int plain_key(const unsigned char *p, const unsigned char **bytes, size_t *len)
{
    switch (p[0]) {
    case TAG_SMALL_ATOM_UTF8: case TAG_SMALL_ATOM: *bytes = p + 2, *len = p[1]; break;
    case TAG_ATOM_UTF8: case TAG_ATOM: *bytes = p + 3, *len = load_be16(p + 1); break;
    case TAG_SMALL_INTEGER: *bytes = p + 1, *len = 1; return 2;
    case TAG_BINARY: *bytes = p, *len = 5 + (size_t)load_be32(p + 1); return 3;
    default: return 0;
    }
    if (p[0] == TAG_SMALL_ATOM || p[0] == TAG_ATOM)
        for (size_t i = 0; i < *len; i++)
            if ((*bytes)[i] >= 0x80)
                return 0;
    return 1;
}

/* By kind (kept in len), then as map_pair_cmp. */
static int key_cmp(const void *a, const void *b)
{
    const struct map_pair *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return map_pair_cmp(a, b);
}

/* SipHash's key for any_repeated, random per process: a peer cannot aim
 * keys at one slot. */
static unsigned char repeat_seed[16];
static int repeat_seed_ok;
static pthread_once_t repeat_seed_once = PTHREAD_ONCE_INIT;

static void make_repeat_seed(void)
{
    repeat_seed_ok = getrandom(repeat_seed, sizeof repeat_seed, 0) == (ssize_t)sizeof repeat_seed;
}

/* Is any of the n keys (each of one kind, in len) repeated? A few are
 * compared pairwise; more go into a table of their indices, half empty at
 * least, by hash: 8 to 16 bytes a key and linear time, where sorting them
 * took a copy of every record (glibc's merge sort) and n log n compares. */
static int any_repeated(struct map_pair *keys, size_t n)
{
    if (n <= 8) {
        for (size_t a = 0; a < n; a++)
            for (size_t b = a + 1; b < n; b++)
                if (key_cmp(&keys[a], &keys[b]) == 0)
                    return 1;
        return 0;
    }
    pthread_once(&repeat_seed_once, make_repeat_seed);
    size_t cap = 16;
    while (cap < 2 * n)
        cap <<= 1;
    uint32_t *slots = repeat_seed_ok && n < UINT32_MAX ? malloc(cap * sizeof *slots) : NULL;
    if (!slots) { /* no table: sorted instead */
        qsort(keys, n, sizeof *keys, key_cmp);
        for (size_t i = 1; i < n; i++)
            if (key_cmp(&keys[i - 1], &keys[i]) == 0)
                return 1;
        return 0;
    }
    memset(slots, 0xff, cap * sizeof *slots);
    int repeated = 0;
    for (size_t i = 0; i < n && !repeated; i++) {
        uint64_t h = siphash(repeat_seed, keys[i].key, keys[i].key_len) ^ keys[i].len * UINT64_C(0x9E3779B97F4A7C15);
        for (size_t at = (size_t)h & (cap - 1);; at = (at + 1) & (cap - 1)) {
            if (slots[at] == UINT32_MAX) {
                slots[at] = (uint32_t)i;
                break;
            }
            if (key_cmp(&keys[slots[at]], &keys[i]) == 0) {
                repeated = 1;
                break;
            }
        }
    }
    free(slots);
    return repeated;
}

/* The n keys, which begin at w->buf + starts[..], in their canonical forms
 * (-0.0 folded into 0.0 with fold), written to canon, in keys[..] of kind
 * 0. *negative_zero is set when a key holds a -0.0. */
static int canonical_keys(struct walk *w, const size_t *starts, struct map_pair *keys, size_t n,
                          unsigned depth, int fold, int *negative_zero, ei_x_buff *canon)
{
    int rc = ei_x_new(canon) == 0 ? TERM_OK : TERM_ENOMEM;
    for (size_t i = 0; i < n && rc == TERM_OK; i++) {
        size_t pos = starts[i], from = (size_t)canon->index;
        rc = canonical((const char *)w->buf, w->len, &pos, w->max_depth - depth - 1, canon,
                       w->budget ? w->budget : &w->sort_budget, fold, negative_zero);
        keys[i].start = from;
        keys[i].key_len = (size_t)canon->index - from;
        keys[i].len = 0;
    }
    for (size_t i = 0; i < n && rc == TERM_OK; i++)
        keys[i].key = (const unsigned char *)canon->buff + keys[i].start;
    return rc;
}

/* Are the n keys (checked already) that begin at w->buf + keys[..].start
 * distinct, as =:= tells terms apart? The BEAM's decoder refuses a map with
 * a repeated key, and a message it cannot decode takes its connection
 * down: a map this node would store or pass on must not have one. Atoms of
 * plain text are compared by it; any other key set by canonical forms.
 * Keys told apart only by the sign of a zero (0.0 and -0.0, or {0.0} and
 * {-0.0}) are distinct to OTP 27 and the same to OTP 25 and 26, whose
 * decoders refuse the map, and drop the connection that carried it: such
 * a map is TERM_EZEROKEYS, refused on its way in (an OTP 27 sender's call
 * is answered unsupported), never stored nor passed on to a node that
 * cannot read it. The second look at the keys is not charged to the sort
 * budget again: it moves what the first moved. */
static int distinct_keys(struct walk *w, struct map_pair *keys, size_t n, unsigned depth)
{
    size_t i = 0;
    for (; i < n; i++)
        if (!(keys[i].len = (size_t)plain_key(w->buf + keys[i].start, &keys[i].key, &keys[i].key_len)))
            break;
    if (i == n)
        return any_repeated(keys, n) ? TERM_EBAD : TERM_OK;
    /* not all plain: every key in its canonical form, all of one kind (0) */
    size_t small[8], *starts = n <= 8 ? small : malloc(n * sizeof *starts);
    if (!starts)
        return TERM_ENOMEM;
    for (i = 0; i < n; i++)
        starts[i] = keys[i].start;
    ei_x_buff canon = {NULL, 0, 0};
    int negative_zero = 0;
    size_t before = w->budget ? *w->budget : w->sort_budget;
    int rc = canonical_keys(w, starts, keys, n, depth, 0, &negative_zero, &canon);
    if (rc == TERM_OK && any_repeated(keys, n))
        rc = TERM_EBAD;
    if (rc == TERM_OK && negative_zero) {
        ei_x_free(&canon);
        canon = (ei_x_buff){NULL, 0, 0};
        size_t *budget = w->budget ? w->budget : &w->sort_budget, left = *budget;
        *budget = before;
        rc = canonical_keys(w, starts, keys, n, depth, 1, NULL, &canon);
        *budget = left;
        if (rc == TERM_EBAD || (rc == TERM_OK && any_repeated(keys, n)))
            rc = TERM_EZEROKEYS; /* (EBAD: a map inside a key, its keys the same once folded) */
    }
    if (canon.buff)
        ei_x_free(&canon);
    if (starts != small)
        free(starts);
    return rc;
}

/* MAP_EXT. A repeated key is refused, as the BEAM refuses it: term_canonical
 * finds one as it sorts the keys, a check-only walk with distinct_keys. */
static int walk_map(struct walk *w, unsigned depth)
{
    uint32_t arity;
    TRY(take_u32(w, &arity));
    if (arity > remaining(w) / 2) /* every key and value takes a byte at least */
        return TERM_EBAD;
    TRY(emit_u8(w, TAG_MAP));
    TRY(emit_be32(w, arity));
    if (w->out)
        return map_canonical_pairs(w, arity, depth);
    if (arity < 2 || w->accepted || w->in_key) { /* accepted: checked before, repeats included */
        for (size_t i = 0; i < (size_t)arity * 2; i++)
            TRY(walk_term(w, depth + 1));
        return TERM_OK;
    }
    /* where each key begins; then distinct_keys' working array. It grows
     * with the pairs walked, not from the arity a peer declares. */
    struct map_pair small[8], *keys = small;
    size_t cap = 8;
    int rc = TERM_OK;
    for (size_t i = 0; i < arity && rc == TERM_OK; i++) {
        if (i == cap) {
            struct map_pair *more = realloc(keys == small ? NULL : keys, 2 * cap * sizeof *keys);
            if (!more) {
                rc = TERM_ENOMEM;
                break;
            }
            if (keys == small)
                memcpy(more, small, sizeof small);
            keys = more;
            cap *= 2;
        }
        keys[i].start = w->pos;
        w->in_key++; /* maps inside it are compared whole, as part of it, once */
        rc = walk_term(w, depth + 1);
        w->in_key--;
        if (rc == TERM_OK)
            rc = walk_term(w, depth + 1);
    }
    if (rc == TERM_OK)
        rc = distinct_keys(w, keys, arity, depth);
    if (keys != small)
        free(keys);
    return rc;
}

/* ---- lists ---- */

/* A list being written: the spine of LIST_EXT and STRING_EXT segments is
 * flattened into one LIST_EXT, turned into a STRING_EXT at the end if it can. */
struct list_state {
    size_t header;  /* output offset of the LIST_EXT header, once written */
    size_t count;   /* elements so far */
    int all_bytes;  /* every element so far is canonically SMALL_INTEGER_EXT */
};

/* Account for one more element, writing the LIST_EXT header before the first. */
static int list_add_element(struct walk *w, struct list_state *ls)
{
    if (ls->count == 0) {
        ls->header = out_mark(w);
        TRY(emit_u8(w, TAG_LIST));
        TRY(emit_be32(w, 0)); /* patched when the spine ends */
    }
    if (ls->count == UINT32_MAX)
        return TERM_EBAD;
    ls->count++;
    return TERM_OK;
}

/* The elements of a LIST_EXT segment (its tail is left to the caller). */
static int list_segment(struct walk *w, struct list_state *ls, unsigned depth)
{
    uint32_t n;
    TRY(take_u32(w, &n));
    if (n >= remaining(w)) /* n elements and a tail take n + 1 bytes at least */
        return TERM_EBAD;
    for (uint32_t i = 0; i < n; i++) {
        TRY(list_add_element(w, ls));
        size_t at = out_mark(w);
        TRY(walk_term(w, depth + 1));
        if (w->out && (unsigned char)w->out->buff[at] != TAG_SMALL_INTEGER)
            ls->all_bytes = 0;
    }
    return TERM_OK;
}

/* The bytes of a STRING_EXT, each one element (so one level down, as the
 * same list written as LIST_EXT would be). */
static int list_string_segment(struct walk *w, struct list_state *ls, unsigned depth)
{
    size_t n;
    TRY(take_u16(w, &n));
    const unsigned char *bytes;
    TRY(take(w, n, &bytes));
    if (n > 0 && depth >= w->max_depth)
        return TERM_EDEPTH;
    for (size_t i = 0; i < n; i++) {
        TRY(list_add_element(w, ls));
        unsigned char element[2] = {TAG_SMALL_INTEGER, bytes[i]};
        TRY(emit(w, element, sizeof element));
    }
    return TERM_OK;
}

/* Rewrite the LIST_EXT of count SMALL_INTEGER_EXTs at header as a STRING_EXT.
 * Each byte moves to an earlier offset than any not yet read. */
static void list_to_string(ei_x_buff *out, size_t header, size_t count)
{
    unsigned char *b = (unsigned char *)out->buff + header;
    b[0] = TAG_STRING;
    store_be16(b + 1, (uint32_t)count);
    for (size_t i = 0; i < count; i++)
        b[3 + i] = b[5 + 2 * i + 1];
    out->index = (int)(header + 3 + count);
}

/* The spine ended in []: NIL_EXT, STRING_EXT, or LIST_EXT ... NIL_EXT. */
static int list_finish_proper(struct walk *w, const struct list_state *ls)
{
    if (ls->count == 0)
        return emit_u8(w, TAG_NIL);
    if (w->out && ls->all_bytes && ls->count <= STRING_MAX_LEN) {
        list_to_string(w->out, ls->header, ls->count);
        return TERM_OK;
    }
    patch_be32(w, ls->header + 1, (uint32_t)ls->count);
    return emit_u8(w, TAG_NIL);
}

/* The spine ended in something other than a list: that is the tail. With no
 * element before it (LIST_EXT of length 0), the tail alone is the term, at
 * the list's own depth (it is not a list, so this cannot come back here). */
static int list_finish_improper(struct walk *w, const struct list_state *ls, unsigned depth)
{
    TRY(walk_term(w, ls->count > 0 ? depth + 1 : depth));
    if (ls->count > 0)
        patch_be32(w, ls->header + 1, (uint32_t)ls->count);
    return TERM_OK;
}

/* NIL_EXT, STRING_EXT or LIST_EXT, whose tag was just read. The spine is
 * walked in a loop: a tail that is itself a list continues the same list. */
static int walk_list(struct walk *w, unsigned tag, unsigned depth)
{
    struct list_state ls = {0, 0, 1};
    for (;;) {
        if (tag == TAG_NIL)
            return list_finish_proper(w, &ls);
        if (tag == TAG_STRING) {
            TRY(list_string_segment(w, &ls, depth));
            return list_finish_proper(w, &ls);
        }
        TRY(list_segment(w, &ls, depth));
        if (remaining(w) == 0)
            return TERM_EBAD;
        tag = w->buf[w->pos];
        if (tag != TAG_NIL && tag != TAG_STRING && tag != TAG_LIST)
            return list_finish_improper(w, &ls, depth);
        w->pos++;
    }
}

/* ---- binaries ---- */

static int emit_binary(struct walk *w, const unsigned char *data, size_t n)
{
    TRY(emit_u8(w, TAG_BINARY));
    TRY(emit_be32(w, (uint32_t)n));
    return emit(w, data, n);
}

static int walk_binary(struct walk *w)
{
    uint32_t n;
    TRY(take_u32(w, &n));
    const unsigned char *data;
    TRY(take(w, n, &data));
    return emit_binary(w, data, n);
}

/* BIT_BINARY_EXT: Bits (1..8) of the last byte are used; the empty bitstring
 * has Bits 0, as the BEAM requires. Whole bytes become BINARY_EXT, and the
 * unused low bits of the last byte are cleared. */
static int walk_bitstring(struct walk *w)
{
    uint32_t n;
    unsigned bits;
    TRY(take_u32(w, &n));
    TRY(take_u8(w, &bits));
    if (n == 0)
        return bits == 0 ? emit_binary(w, NULL, 0) : TERM_EBAD;
    if (bits < 1 || bits > 8)
        return TERM_EBAD;
    const unsigned char *data;
    TRY(take(w, n, &data));
    if (bits == 8)
        return emit_binary(w, data, n);
    unsigned char last = data[n - 1] & (unsigned char)(0xFFu << (8 - bits));
    TRY(emit_u8(w, TAG_BIT_BINARY));
    TRY(emit_be32(w, n));
    TRY(emit_u8(w, bits));
    TRY(emit(w, data, n - 1));
    return emit_u8(w, last);
}

/* ---- pids, ports, references ---- */

/* A Creation field: one byte in the old tags, four in the new. */
/* The old tags' one-byte creation has two significant bits: the BEAM
 * refuses a term whose creation byte says more (binary_to_term raises
 * badarg), and so does this walker, or it would tell apart pids that ei
 * reads as one. */
static int take_creation(struct walk *w, int old, uint32_t *creation)
{
    if (!old)
        return take_u32(w, creation);
    unsigned c8;
    TRY(take_u8(w, &c8));
    if (c8 > 3)
        return TERM_EBAD;
    *creation = c8;
    return TERM_OK;
}

/* ---- pids and references of third nodes (term_sender in term.h) ---- */

/* Numbers beyond what every release makes (TERM_USUAL_*). */
static inline int unusual_pid(const unsigned char *id_serial)
{
    return (load_be32(id_serial) >> TERM_USUAL_PID_ID_BITS) != 0 ||
           (load_be32(id_serial + 4) >> TERM_USUAL_PID_SERIAL_BITS) != 0;
}

static inline int unusual_ref(const unsigned char *ids, size_t words)
{
    return words > TERM_USUAL_REF_WORDS || (load_be32(ids) >> TERM_USUAL_REF_FIRST_BITS) != 0;
}

/* An unusual pid or reference whose node atom (checked) is at buf[node_at]:
 * passes when it names the sender, else as the sender's check says. */
__attribute__((noinline)) static int check_foreign(struct walk *w, int is_ref, size_t node_at,
                                                   uint32_t creation, const unsigned char *words,
                                                   size_t n_words)
{
    term_sender *s = w->sender;
    const char *node;
    size_t len;
    int at = 0;
    if (term_atom_slow((term_view){(const char *)w->buf + node_at, w->len - node_at}, &at, &node, &len) < 0)
        return TERM_EBAD; /* cannot be: walk_atom took it */
    if (!s->check || (len == s->name_len && memcmp(node, s->name, len) == 0))
        return TERM_OK;
    s->checked++;
    term_foreign_id id = {is_ref, node, len, creation, words, n_words};
    return s->check(s->ctx, &id) == 0 ? TERM_OK : TERM_EFOREIGN;
}

/* PID_EXT / NEW_PID_EXT body: canonically NEW_PID_EXT. */
static int walk_pid_body(struct walk *w, unsigned tag)
{
    TRY(emit_u8(w, TAG_NEW_PID));
    size_t node_at = w->pos;
    TRY(walk_atom(w));
    const unsigned char *id_serial;
    TRY(take(w, 8, &id_serial));
    TRY(emit(w, id_serial, 8));
    uint32_t creation;
    TRY(take_creation(w, tag == TAG_PID, &creation));
    if (w->sender && unusual_pid(id_serial))
        TRY(check_foreign(w, 0, node_at, creation, id_serial, 2));
    return emit_be32(w, creation);
}

/* A pid where the format demands one (a fun's creator). */
static int walk_pid(struct walk *w)
{
    unsigned tag;
    TRY(take_u8(w, &tag));
    if (tag != TAG_PID && tag != TAG_NEW_PID)
        return TERM_EBAD;
    return walk_pid_body(w, tag);
}

/* PORT_EXT / NEW_PORT_EXT / V4_PORT_EXT body: canonically as OTP writes it. */
static int walk_port_body(struct walk *w, unsigned tag)
{
    size_t tag_at = out_mark(w);
    TRY(emit_u8(w, 0)); /* patched once the id is known */
    TRY(walk_atom(w));
    uint64_t id;
    if (tag == TAG_V4_PORT) {
        const unsigned char *p;
        TRY(take(w, 8, &p));
        id = load_be64(p);
    } else {
        uint32_t id32;
        TRY(take_u32(w, &id32));
        id = id32;
    }
    if (id <= PORT_V3_MAX) {
        patch_u8(w, tag_at, TAG_NEW_PORT);
        TRY(emit_be32(w, (uint32_t)id));
    } else {
        patch_u8(w, tag_at, TAG_V4_PORT);
        TRY(emit_be64(w, id));
    }
    uint32_t creation;
    TRY(take_creation(w, tag == TAG_PORT, &creation));
    return emit_be32(w, creation);
}

/* How many of words 32-bit words at ids to keep: the BEAM holds a ref equal
 * to one with extra zero words at the end, so those are dropped (one stays). */
static size_t ref_words_kept(const unsigned char *ids, size_t words)
{
    while (words > 1 && load_be32(ids + 4 * (words - 1)) == 0)
        words--;
    return words;
}

/* REFERENCE_EXT / NEW_REFERENCE_EXT / NEWER_REFERENCE_EXT body: canonically
 * NEWER_REFERENCE_EXT. REFERENCE_EXT has its one id word before Creation, the
 * others their 1..5 words after it. */
static int walk_ref_body(struct walk *w, unsigned tag)
{
    size_t words = 1;
    if (tag != TAG_REFERENCE) {
        TRY(take_u16(w, &words));
        if (words < 1 || words > REF_MAX_WORDS)
            return TERM_EBAD;
    }
    TRY(emit_u8(w, TAG_NEWER_REFERENCE));
    size_t len_at = out_mark(w);
    TRY(emit_be16(w, 0)); /* patched once the words are known */
    size_t node_at = w->pos;
    TRY(walk_atom(w));

    const unsigned char *ids;
    uint32_t creation;
    if (tag == TAG_REFERENCE) {
        TRY(take(w, 4, &ids));
        TRY(take_creation(w, 1, &creation));
    } else {
        TRY(take_creation(w, tag == TAG_NEW_REFERENCE, &creation));
        TRY(take(w, 4 * words, &ids));
    }
    /* The old tags' first word has 18 significant bits: the BEAM refuses more. */
    if (tag != TAG_NEWER_REFERENCE && load_be32(ids) > 0x3FFFF)
        return TERM_EBAD;
    if (w->sender && unusual_ref(ids, words))
        TRY(check_foreign(w, 1, node_at, creation, ids, words));
    size_t kept = ref_words_kept(ids, words);
    patch_be16(w, len_at, (uint32_t)kept);
    TRY(emit_be32(w, creation));
    return emit(w, ids, 4 * kept);
}

/* ---- funs ---- */

/* EXPORT_EXT: Module, Function (atoms), Arity (a small integer 0..255). */
static int walk_export(struct walk *w)
{
    TRY(emit_u8(w, TAG_EXPORT));
    TRY(walk_atom(w));
    TRY(walk_atom(w));
    uint32_t arity;
    TRY(walk_fixnum(w, &arity));
    return arity <= 255 ? TERM_OK : TERM_EBAD;
}

/* NEW_FUN_EXT: Size (counting itself, not the tag), Arity, Uniq, Index,
 * NumFree, Module, OldIndex, OldUniq, Pid, then NumFree free variables. The
 * Size given must match; the canonical one is recomputed. */
static int walk_fun(struct walk *w, unsigned depth)
{
    size_t size_in_at = w->pos;
    uint32_t size;
    TRY(take_u32(w, &size));
    const unsigned char *fixed;
    TRY(take(w, FUN_FIXED_LEN, &fixed));
    uint32_t num_free = load_be32(fixed + 21);

    TRY(emit_u8(w, TAG_NEW_FUN));
    size_t size_out_at = out_mark(w);
    TRY(emit_be32(w, 0)); /* patched at the end */
    TRY(emit(w, fixed, FUN_FIXED_LEN));
    TRY(walk_atom(w));
    uint32_t old_index, old_uniq;
    TRY(walk_fixnum(w, &old_index));
    TRY(walk_fixnum(w, &old_uniq));
    /* The pid is no part of a fun's identity: the BEAM compares funs by
     * their module, indices, uniq and free variables. OTP 25 puts the
     * creating process there (the same fun made by two processes is =:=
     * and encodes apart), OTP 26 and later its own init process (apart on
     * each node, and each restart of it). Canonically it is always
     * nonode@nohost's <0.0.0>. */
    size_t pid_out = out_mark(w);
    TRY(walk_pid(w));
    if (w->out) {
        static const unsigned char no_pid[] = {TAG_NEW_PID, TAG_SMALL_ATOM_UTF8, 13, 'n', 'o', 'n', 'o', 'd', 'e',
                                               '@', 'n', 'o', 'h', 'o', 's', 't', 0, 0, 0, 0, 0, 0, 0, 0,
                                               0, 0, 0, 0};
        w->out->index = (int)pid_out;
        TRY(emit(w, no_pid, sizeof no_pid));
    }
    if (num_free > 255 || num_free > remaining(w)) /* the BEAM takes 255 at most (MAX_ARG) */
        return TERM_EBAD;
    for (uint32_t i = 0; i < num_free; i++)
        TRY(walk_term(w, depth + 1));

    if (w->pos - size_in_at != size)
        return TERM_EBAD;
    size_t size_out = out_mark(w) - size_out_at;
    if (size_out > UINT32_MAX)
        return TERM_EBAD;
    patch_be32(w, size_out_at, (uint32_t)size_out);
    return TERM_OK;
}

/* ---- any term ---- */

/* Where buf[at] starts an ASCII SMALL_ATOM_UTF8 that fits, the offset just
 * past it; else 0. */
static inline size_t ascii_atom_end(const struct walk *w, size_t at)
{
    if (at + 2 > w->len || w->buf[at] != TAG_SMALL_ATOM_UTF8)
        return 0;
    size_t n = w->buf[at + 1];
    if (n > w->len - at - 2 || !all_ascii(w->buf + at + 2, n))
        return 0;
    return at + 2 + n;
}

/* Only checking, the commonest terms inline (their tag just read): an ASCII
 * atom, and a pid or a reference of a node with an ASCII name, as OTP 23 and
 * later send them. 1 when the term was one of these and is well-formed (and
 * skipped); 0 to take the general path, which then says what is wrong. */
__attribute__((always_inline)) static inline int quick_check(struct walk *w, unsigned tag)
{
    size_t end;
    switch (tag) {
    case TAG_SMALL_ATOM_UTF8:
        end = ascii_atom_end(w, w->pos - 1);
        break;
    case TAG_NEW_PID: /* Node, ID, Serial, Creation */
        end = ascii_atom_end(w, w->pos);
        end = end && w->len - end >= 12 ? end + 12 : 0;
        if (end && w->sender && unusual_pid(w->buf + end - 12))
            return 0; /* walk_pid_body asks */
        break;
    case TAG_NEWER_REFERENCE: { /* Len, Node, Creation, ID[Len] */
        if (remaining(w) < 2)
            return 0;
        size_t words = load_be16(w->buf + w->pos);
        if (words < 1 || words > REF_MAX_WORDS)
            return 0;
        end = ascii_atom_end(w, w->pos + 2);
        end = end && w->len - end >= 4 + 4 * words ? end + 4 + 4 * words : 0;
        if (end && w->sender && unusual_ref(w->buf + end - 4 * words, words))
            return 0; /* walk_ref_body asks */
        break;
    }
    default:
        return 0;
    }
    if (!end)
        return 0;
    w->pos = end;
    return 1;
}

/* Every term but those quick_check takes. */
__attribute__((noinline)) static int walk_general(struct walk *w, unsigned tag, unsigned depth)
{
    switch (tag) {
    case TAG_SMALL_INTEGER:
        return walk_small_integer(w);
    case TAG_INTEGER:
        return walk_integer(w);
    case TAG_SMALL_BIG:
    case TAG_LARGE_BIG:
        return walk_big(w, tag);
    case TAG_FLOAT:
        return walk_float_text(w);
    case TAG_NEW_FLOAT:
        return walk_new_float(w);
    case TAG_ATOM:
    case TAG_SMALL_ATOM:
    case TAG_ATOM_UTF8:
    case TAG_SMALL_ATOM_UTF8:
        return walk_atom_body(w, tag);
    case TAG_SMALL_TUPLE:
    case TAG_LARGE_TUPLE:
        return walk_tuple(w, tag, depth);
    case TAG_MAP:
        return walk_map(w, depth);
    case TAG_NIL:
    case TAG_STRING:
    case TAG_LIST:
        return walk_list(w, tag, depth);
    case TAG_BINARY:
        return walk_binary(w);
    case TAG_BIT_BINARY:
        return walk_bitstring(w);
    case TAG_PID:
    case TAG_NEW_PID:
        return walk_pid_body(w, tag);
    case TAG_PORT:
    case TAG_NEW_PORT:
    case TAG_V4_PORT:
        return walk_port_body(w, tag);
    case TAG_REFERENCE:
    case TAG_NEW_REFERENCE:
    case TAG_NEWER_REFERENCE:
        return walk_ref_body(w, tag);
    case TAG_EXPORT:
        return walk_export(w);
    case TAG_NEW_FUN:
        return walk_fun(w, depth);
    case TAG_ATOM_CACHE_REF:
    case TAG_FUN:
    case TAG_LOCAL:
    case TAG_COMPRESSED:
        return TERM_EUNSUPPORTED;
    default:
        return TERM_EBAD;
    }
}

/* The walk of one term: small enough to be inlined where a compound walks
 * its elements, so that the commonest terms cost no call. */
static inline int walk_term(struct walk *w, unsigned depth)
{
    if (depth > w->max_depth)
        return TERM_EDEPTH;
    if (w->pos >= w->len)
        return TERM_EBAD;
    unsigned tag = w->buf[w->pos++];
    if (!w->out && quick_check(w, tag))
        return TERM_OK;
    return walk_general(w, tag, depth);
}

const char *term_strerror(int err)
{
    switch (err) {
    case TERM_OK:
        return "ok";
    case TERM_EBAD:
        return "malformed or truncated term";
    case TERM_EDEPTH:
        return "term nested too deeply";
    case TERM_EUNSUPPORTED:
        return "unsupported term encoding";
    case TERM_ENOMEM:
        return "out of memory";
    case TERM_EFOREIGN:
        return "a pid or reference its own node would refuse";
    case TERM_EZEROKEYS:
        return "a map whose keys only the sign of a zero tells apart (OTP 25 and 26 cannot read it)";
    default:
        return "unknown term error";
    }
}

int term_skip(const char *buf, size_t len, size_t *index, unsigned max_depth)
{
    if (!index || *index > len || (!buf && len > 0))
        return TERM_EBAD;
    struct walk w = {(const unsigned char *)buf, len, *index, max_depth, NULL, NULL, 0, NULL, 0, SORT_BUDGET(len), NULL, 0, NULL};
    TRY(walk_term(&w, 0));
    *index = w.pos;
    return TERM_OK;
}

int term_skip_cached(const char *buf, size_t len, size_t *index, unsigned max_depth,
                     term_atom_cache *atoms, term_sender *sender)
{
    if (!index || *index > len || (!buf && len > 0))
        return TERM_EBAD;
    struct walk w = {(const unsigned char *)buf, len, *index, max_depth, NULL, atoms, 0, sender, 0, SORT_BUDGET(len), NULL, 0, NULL};
    TRY(walk_term(&w, 0));
    *index = w.pos;
    return TERM_OK;
}

/* No recursion here: what is left to pass over is a count of terms, each
 * compound's header adding its elements to it, each scalar walked as
 * term_skip would walk it (a scalar's own nesting, a pid's node atom say,
 * is at most 2 deep). Every term takes at least a byte, so a count over the
 * bytes left is malformed at once. */
int term_skip_flat(const char *buf, size_t len, size_t *index)
{
    if (!index || *index > len || (!buf && len > 0))
        return TERM_EBAD;
    struct walk w = {(const unsigned char *)buf, len, *index, 4, NULL, NULL, 0, NULL, 0, SORT_BUDGET(len), NULL, 0, NULL};
    uint64_t pending = 1;
    while (pending) {
        if (pending > remaining(&w))
            return TERM_EBAD;
        const unsigned char *p = w.buf + w.pos;
        size_t left = remaining(&w);
        switch (p[0]) {
        case TAG_SMALL_TUPLE:
            if (left < 2)
                return TERM_EBAD;
            pending += p[1];
            w.pos += 2;
            break;
        case TAG_LARGE_TUPLE:
        case TAG_LIST:
        case TAG_MAP:
            if (left < 5)
                return TERM_EBAD;
            pending += (uint64_t)load_be32(p + 1) * (p[0] == TAG_MAP ? 2 : 1) + (p[0] == TAG_LIST);
            w.pos += 5;
            break;
        case TAG_NEW_FUN: { /* passed over by its Size, which counts itself but not the tag */
            if (left < 5)
                return TERM_EBAD;
            uint32_t size = load_be32(p + 1);
            if (size < 4 + FUN_FIXED_LEN || size > left - 1)
                return TERM_EBAD;
            w.pos += 1 + (size_t)size;
            break;
        }
        default:
            TRY(walk_term(&w, 0));
        }
        pending--;
    }
    *index = w.pos;
    return TERM_OK;
}

int term_key_today(term_view *key, ei_x_buff *today)
{
    size_t i = 0;
    /* Only a fun, or a compound that may hold one, and whose bytes hold its
     * tag somewhere: most keys (atoms, integers, binaries) cost a byte's look. */
    unsigned tag = key->len ? (unsigned char)key->ptr[0] : 0;
    int compound = tag == TAG_NEW_FUN || tag == TAG_SMALL_TUPLE || tag == TAG_LARGE_TUPLE || tag == TAG_LIST ||
                   tag == TAG_MAP;
    if (!compound || !memchr(key->ptr, TAG_NEW_FUN, key->len) || ei_x_new(today) < 0)
        return 0;
    if (term_canonical(key->ptr, key->len, &i, KEY_MAX_DEPTH, today) != TERM_OK || i != key->len) {
        ei_x_free(today);
        return 0;
    }
    *key = (term_view){today->buff, (size_t)today->index};
    return 1;
}

int term_tuple_elements(const char *buf, size_t len, size_t *index, unsigned max_depth,
                        term_atom_cache *atoms, term_sender *sender, term_view *els, int max_els,
                        int *arity)
{
    if (!index || *index > len || (!buf && len > 0) || max_depth >= UINT_MAX)
        return TERM_EBAD;
    struct walk w = {(const unsigned char *)buf, len, *index, max_depth + 1, NULL, atoms, 0, sender, 0, SORT_BUDGET(len), NULL, 0, NULL};
    size_t n;
    if (w.pos + 2 <= len && w.buf[w.pos] == TAG_SMALL_TUPLE) {
        n = w.buf[w.pos + 1];
        w.pos += 2;
    } else if (w.pos + 5 <= len && w.buf[w.pos] == TAG_LARGE_TUPLE) {
        n = load_be32(w.buf + w.pos + 1);
        w.pos += 5;
    } else {
        return TERM_EBAD;
    }
    if (n > (size_t)max_els)
        return TERM_EBAD;
    for (size_t k = 0; k < n; k++) {
        size_t start = w.pos;
        TRY(walk_term(&w, 1));
        els[k] = (term_view){buf + start, w.pos - start};
    }
    *arity = (int)n;
    *index = w.pos;
    return TERM_OK;
}

/* Where the term at w->pos ends when it is a scalar already in canonical
 * form, as keys mostly are (an ASCII atom as SMALL_ATOM_UTF8_EXT, a
 * SMALL_INTEGER_EXT, an INTEGER_EXT outside 0..255, a BINARY_EXT); else 0. */
static size_t canonical_scalar_end(const struct walk *w)
{
    size_t at = w->pos, left = w->len - at;
    const unsigned char *p = w->buf + at;
    switch (left ? p[0] : 0) {
    case TAG_SMALL_ATOM_UTF8:
        return ascii_atom_end(w, at);
    case TAG_SMALL_INTEGER:
        return left >= 2 ? at + 2 : 0;
    case TAG_INTEGER:
        return left >= 5 && load_be32(p + 1) > 255 ? at + 5 : 0;
    case TAG_BINARY:
        return left >= 5 && load_be32(p + 1) <= left - 5 ? at + 5 + load_be32(p + 1) : 0;
    default:
        return 0;
    }
}

/* term_canonical, moving bytes against budget (NULL: a budget of its own). */
static int canonical(const char *buf, size_t len, size_t *index, unsigned max_depth, ei_x_buff *out,
                     size_t *budget, int fold_zero, int *negative_zero)
{
    if (!index || !out || *index > len || (!buf && len > 0))
        return TERM_EBAD;
    int start = out->index;
    if (start < 0 || start > (out->buff ? out->buffsz : 0))
        return TERM_EBAD;
    struct walk w = {(const unsigned char *)buf, len, *index, max_depth, out, NULL, 0, NULL, 0, SORT_BUDGET(len), budget,
                     fold_zero, negative_zero};
    size_t end = canonical_scalar_end(&w);
    if (end) { /* its bytes are its canonical form */
        TRY(emit(&w, buf + *index, end - *index));
        *index = end;
        return TERM_OK;
    }
    int rc = walk_term(&w, 0);
    if (rc != TERM_OK) {
        out->index = start;
        return rc;
    }
    *index = w.pos;
    return TERM_OK;
}

int term_canonical(const char *buf, size_t len, size_t *index, unsigned max_depth,
                   ei_x_buff *out)
{
    return canonical(buf, len, index, max_depth, out, NULL, 0, NULL);
}

int term_next(term_view v, int *i, term_view *out)
{
    if (*i < 0 || (size_t)*i > v.len || (!v.ptr && v.len > 0))
        return -1;
    /* Structure and bounds are checked again, the atoms' text is not:
     * term_skip accepted it already. */
    struct walk w = {(const unsigned char *)v.ptr, v.len, (size_t)*i, TERM_NEXT_MAX_DEPTH, NULL, NULL, 1, NULL, 0, SORT_BUDGET(v.len), NULL, 0, NULL};
    if (walk_term(&w, 0) != TERM_OK)
        return -1;
    *out = (term_view){v.ptr + *i, w.pos - (size_t)*i};
    *i = (int)w.pos;
    return 0;
}

size_t term_checked_id_len(const char *p, size_t left)
{
    const unsigned char *u = (const unsigned char *)p;
    if (!p || left == 0 || (u[0] != TAG_NEW_PID && u[0] != TAG_NEWER_REFERENCE))
        return 0;
    int pid = u[0] == TAG_NEW_PID;
    size_t node = pid ? 1 : 3; /* a reference's count of IDs comes first */
    if (left < node + 2 || u[node] != TAG_SMALL_ATOM_UTF8)
        return 0;
    size_t len = node + 2 + u[node + 1] + (pid ? 12 : 4 + 4 * (size_t)load_be16(u + 1));
    return len <= left ? len : 0;
}

int term_atom_slow(term_view v, int *i, const char **text, size_t *len)
{
    size_t at = (size_t)*i, hdr;
    if (*i < 0 || at >= v.len)
        return -1;
    switch ((unsigned char)v.ptr[at]) {
    case TAG_SMALL_ATOM: case TAG_SMALL_ATOM_UTF8:
        if (at + 2 > v.len)
            return -1;
        *len = (unsigned char)v.ptr[at + 1];
        hdr = 2;
        break;
    case TAG_ATOM: case TAG_ATOM_UTF8:
        if (at + 3 > v.len)
            return -1;
        *len = (size_t)(unsigned char)v.ptr[at + 1] << 8 | (unsigned char)v.ptr[at + 2];
        hdr = 3;
        break;
    default:
        return -1;
    }
    if (at + hdr + *len > v.len)
        return -1;
    *text = v.ptr + at + hdr;
    *i = (int)(at + hdr + *len);
    return 0;
}

int term_atom_is_slow(term_view v, int *i, const char *name)
{
    int j = *i;
    const char *text;
    size_t len;
    /* name is ASCII: its latin1 and UTF-8 encodings are the same bytes */
    if (term_atom(v, &j, &text, &len) < 0 || len != strlen(name) || memcmp(text, name, len) != 0)
        return 0;
    *i = j;
    return 1;
}

int term_skip_one(term_view t)
{
    size_t i = 0;
    if (!t.ptr || !t.len)
        return TERM_EBAD;
    int rc = term_skip(t.ptr, t.len, &i, TERM_NEXT_MAX_DEPTH);
    return rc != TERM_OK ? rc : i == t.len ? TERM_OK : TERM_EBAD;
}

/*
 * term_write.c: gcn_buf and its writers, gcn_build and gcn_error (the
 * "writing" part of gen_cnode.h). Every term is written in the encoding OTP
 * itself would choose (term_to_binary with minor_version 2), except lists,
 * which are always LIST_EXT: OTP writes a list of small integers as
 * STRING_EXT, which binary_to_term reads as the same list. Values no term
 * can hold (an atom that is not UTF-8 or too long, a float that is not
 * finite, a length beyond 32 bits) fail like an allocation, marking the
 * buffer failed, so that no half-written term ever goes out.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "buffer.h"
#include "gcn_buf.h"
#include "term.h"
#include "term_template.h"

/* ---- the buffer ---- */

int gcn_buf_init(gcn_buf *b)
{
    b->x = (ei_x_buff){.buff = NULL, .buffsz = 0, .index = 0};
    b->base = 0;
    b->bad_value = 0;
    b->failed = b->out_of_memory = term_reserve(&b->x, 64) != TERM_OK;
    return b->failed ? -1 : 0;
}

void gcn_buf_release(gcn_buf *b)
{
    free(b->x.buff); /* ei_x_buff's memory is malloc's (see term_reserve) */
    b->x = (ei_x_buff){.buff = NULL, .buffsz = 0, .index = 0};
    b->failed = 0;
}

gcn_buf *gcn_buf_new(void)
{
    gcn_buf *b = malloc(sizeof *b);
    if (b && gcn_buf_init(b) < 0) {
        gcn_buf_release(b);
        free(b);
        return NULL;
    }
    return b;
}

void gcn_buf_free(gcn_buf *b)
{
    if (b) {
        gcn_buf_release(b);
        free(b);
    }
}

void gcn_buf_reset(gcn_buf *b)
{
    if (!b)
        return;
    if (b->base == 0)
        term_shrink(&b->x, GCN_BUF_KEEP);
    b->x.index = (int)b->base; /* the engine's bytes before base stay */
    b->failed = 0;
}

gcn_term gcn_buf_term(const gcn_buf *b)
{
    if (!b || !b->x.buff)
        return (gcn_term){NULL, 0};
    return (gcn_term){b->x.buff + b->base, b->failed ? 0 : (size_t)b->x.index - b->base};
}

int gcn_buf_ok_term(const gcn_buf *b, size_t from)
{
    size_t at = from, end = (size_t)b->x.index;
    return !b->failed && from < end &&
           term_skip(b->x.buff, end, &at, TERM_NEXT_MAX_DEPTH) == TERM_OK && at == end;
}

/* Room for n more bytes at the end, taken: where they go, or NULL (failed). */
static char *grow(gcn_buf *b, size_t n)
{
    if (!b || b->failed)
        return NULL;
    /* room already there, the usual case, costs no call */
    if ((!b->x.buff || (size_t)b->x.buffsz - (size_t)b->x.index < n) && term_reserve(&b->x, n) != TERM_OK) {
        b->failed = b->out_of_memory = 1;
        return NULL;
    }
    char *p = b->x.buff + b->x.index;
    b->x.index += (int)n;
    return p;
}

/* A value no term can hold (or a write after memory ran out): the buffer
 * fails as if out of memory. */
static int refuse(gcn_buf *b)
{
    if (b) {
        if (!b->failed)
            b->bad_value = 1;
        b->failed = 1;
    }
    return -1;
}

int gcn_buf_append(gcn_buf *b, const void *bytes, size_t len)
{
    if (len == 0)
        return b && !b->failed ? 0 : -1;
    char *p = bytes ? grow(b, len) : NULL;
    if (!p)
        return refuse(b);
    memcpy(p, bytes, len);
    return 0;
}

/* A tag and a length of one byte, or (above 255, or always when small is 0)
 * the long tag and a four-byte length. */
static int put_header(gcn_buf *b, int small, int long_tag, size_t n)
{
    if (n > UINT32_MAX)
        return refuse(b);
    char *p = grow(b, small && n <= 255 ? 2 : 5);
    if (!p)
        return -1;
    if (small && n <= 255) {
        p[0] = (char)small;
        p[1] = (char)n;
    } else {
        p[0] = (char)long_tag;
        put_u32(p + 1, (uint32_t)n);
    }
    return 0;
}

/* ---- scalars ---- */

/* An integer as sign and magnitude, in the smallest encoding. */
static int put_integer(gcn_buf *b, int neg, uint64_t mag)
{
    char *p;
    if (!neg && mag <= 255) {
        if (!(p = grow(b, 2)))
            return -1;
        p[0] = ERL_SMALL_INTEGER_EXT;
        p[1] = (char)mag;
    } else if (neg ? mag <= UINT64_C(0x80000000) : mag <= INT32_MAX) {
        if (!(p = grow(b, 5)))
            return -1;
        p[0] = ERL_INTEGER_EXT;
        put_u32(p + 1, neg ? 0u - (uint32_t)mag : (uint32_t)mag);
    } else {
        size_t n = 0;
        for (uint64_t m = mag; m; m >>= 8)
            n++;
        if (!(p = grow(b, 3 + n)))
            return -1;
        p[0] = ERL_SMALL_BIG_EXT;
        p[1] = (char)n;
        p[2] = (char)neg;
        for (size_t i = 0; i < n; i++)
            p[3 + i] = (char)(mag >> 8 * i);
    }
    return 0;
}

int gcn_put_int(gcn_buf *b, int64_t v)
{
    return v < 0 ? put_integer(b, 1, 0 - (uint64_t)v) : put_integer(b, 0, (uint64_t)v);
}

int gcn_put_uint(gcn_buf *b, uint64_t v)
{
    return put_integer(b, 0, v);
}

int gcn_put_double(gcn_buf *b, double v)
{
    if (!isfinite(v))
        return refuse(b);
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    char *p = grow(b, 9);
    if (!p)
        return -1;
    p[0] = NEW_FLOAT_EXT;
    put_u32(p + 1, (uint32_t)(bits >> 32));
    put_u32(p + 5, (uint32_t)bits);
    return 0;
}

/* An atom whose UTF-8 text is s[0 .. len). */
static int put_atom(gcn_buf *b, const char *s, size_t len)
{
    if (!atom_text_ok(s, len))
        return refuse(b);
    char *p = grow(b, (len <= 255 ? 2 : 3) + len);
    if (!p)
        return -1;
    if (len <= 255) {
        p[0] = ERL_SMALL_ATOM_UTF8_EXT;
        p[1] = (char)len;
        p += 2;
    } else {
        p[0] = ERL_ATOM_UTF8_EXT;
        put_u16(p + 1, (uint32_t)len);
        p += 3;
    }
    memcpy(p, s, len);
    return 0;
}

int gcn_put_atom(gcn_buf *b, const char *utf8)
{
    return utf8 ? put_atom(b, utf8, strlen(utf8)) : refuse(b);
}

int gcn_put_binary(gcn_buf *b, const void *bytes, size_t len)
{
    if (!bytes && len > 0)
        return refuse(b);
    if (put_header(b, 0, ERL_BINARY_EXT, len) < 0)
        return -1;
    return gcn_buf_append(b, bytes, len);
}

int gcn_put_string(gcn_buf *b, const char *utf8)
{
    return utf8 ? gcn_put_binary(b, utf8, strlen(utf8)) : refuse(b);
}

int gcn_put_term(gcn_buf *b, gcn_term t)
{
    if (term_skip_one(t) != TERM_OK) /* not one term: nothing half-made goes out */
        return refuse(b);
    return gcn_buf_append(b, t.ptr, t.len);
}

/* ---- compound headers ---- */

int gcn_put_tuple(gcn_buf *b, size_t arity)
{
    return put_header(b, ERL_SMALL_TUPLE_EXT, ERL_LARGE_TUPLE_EXT, arity);
}

int gcn_put_list(gcn_buf *b, size_t n)
{
    return n == 0 ? gcn_put_nil(b) : put_header(b, 0, ERL_LIST_EXT, n);
}

int gcn_put_nil(gcn_buf *b)
{
    char *p = grow(b, 1);
    if (!p)
        return -1;
    p[0] = ERL_NIL_EXT;
    return 0;
}

int gcn_put_map(gcn_buf *b, size_t pairs)
{
    return put_header(b, 0, ERL_MAP_EXT, pairs);
}

/* ---- templates ---- */

/* The term n of an accepted template, taking its holes' arguments from ap. */
static int build(gcn_buf *b, const tpl_node *n, va_list *ap)
{
    switch (n->kind) {
    case TPL_ATOM: {
        char text[GCN_ATOM_MAX]; /* tpl_root checked it is an atom */
        return put_atom(b, text, tpl_text(n, text));
    }
    case TPL_INT:
        return put_integer(b, n->neg, n->mag);
    case TPL_STRING: {
        char *p;
        if (put_header(b, 0, ERL_BINARY_EXT, 0) < 0 || !(p = grow(b, n->len)))
            return -1;
        size_t len = tpl_text(n, p);
        put_u32(p - 4, (uint32_t)len);
        b->x.index -= (int)(n->len - len);
        return 0;
    }
    case TPL_HOLE:
        switch (n->hole) {
        case 't': return gcn_put_term(b, va_arg(*ap, gcn_term));
        case 'i': return gcn_put_int(b, va_arg(*ap, int64_t));
        case 'u': return gcn_put_uint(b, va_arg(*ap, uint64_t));
        case 'f': return gcn_put_double(b, va_arg(*ap, double));
        case 'a': return gcn_put_atom(b, va_arg(*ap, const char *));
        case 's': return gcn_put_string(b, va_arg(*ap, const char *));
        case 'b': {
            const void *bytes = va_arg(*ap, const void *);
            return gcn_put_binary(b, bytes, va_arg(*ap, size_t));
        }
        }
        return -1;
    case TPL_TUPLE:
    case TPL_LIST:
    case TPL_MAP: {
        int rc = n->kind == TPL_TUPLE ? gcn_put_tuple(b, n->count)
                 : n->kind == TPL_LIST ? gcn_put_list(b, n->count)
                                       : gcn_put_map(b, n->count);
        size_t elements = n->kind == TPL_MAP ? 2 * n->count : n->count;
        const char *cursor;
        tpl_first(n, &cursor);
        for (size_t i = 0; i < elements && rc == 0; i++) {
            tpl_node child;
            tpl_next(&cursor, &child);
            rc = build(b, &child, ap);
        }
        return rc == 0 && n->kind == TPL_LIST && n->count > 0 ? gcn_put_nil(b) : rc;
    }
    case TPL_ANY:
        break;
    }
    return -1;
}

int gcn_build(gcn_buf *b, const char *template_, ...)
{
    tpl_node root;
    if (!b || tpl_root(template_, TPL_TEMPLATE, "gcn_build", &root) < 0)
        return -1;
    int start = b->x.index, was_failed = b->failed;
    va_list ap;
    va_start(ap, template_);
    int rc = build(b, &root, &ap);
    va_end(ap);
    if (rc < 0) { /* no half-written term stays behind: the buffer is as it was */
        b->x.index = start;
        b->failed = was_failed;
    }
    return rc;
}

int gcn_error(gcn_buf *reply, const char *what, gcn_term detail)
{
    if (gcn_put_tuple(reply, 2) < 0 || gcn_put_atom(reply, "error") < 0 ||
        gcn_put_tuple(reply, 2) < 0 || gcn_put_atom(reply, what) < 0)
        return -1;
    return gcn_put_term(reply, detail);
}

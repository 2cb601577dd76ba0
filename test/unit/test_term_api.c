/*
 * test_term_api.c: the terms and writing parts of gen_cnode.h (term_read.c,
 * term_write.c, term_template.c) and gcn_buf.h. The expected bytes marked
 * "OTP" are what OTP 25 gives for term_to_binary(T, [{minor_version, 2}]),
 * less the 131 version byte; terms in other encodings are built by hand.
 * The last test feeds truncated and mutated terms to every reader, each in a
 * buffer of exactly its size, so the sanitizer build catches any read
 * beyond a term.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gcn_buf.h"
#include "gen_cnode.h"
#include "term.h"
#include "unit.h"

static gcn_term term_of(const unsigned char *p, size_t n)
{
    return (gcn_term){(const char *)p, n};
}
/* A term from its bytes, alive to the end of the enclosing block. */
#define BYTES(...) (const unsigned char[]){__VA_ARGS__}
#define TERM(...) term_of(BYTES(__VA_ARGS__), sizeof(BYTES(__VA_ARGS__)))

static void print_hex(const char *what, const void *p, size_t n)
{
    fprintf(stderr, "\n    %s (%zu):", what, n);
    for (size_t i = 0; i < n && i < 64; i++)
        fprintf(stderr, " %u", ((const unsigned char *)p)[i]);
}

/* Does b hold exactly want[0 .. n), one well-formed term? */
static int holds(const gcn_buf *b, const unsigned char *want, size_t n)
{
    gcn_term t = gcn_buf_term(b);
    int ok = t.len == n && memcmp(t.ptr, want, n) == 0 && gcn_buf_ok_term(b, 0);
    if (!ok) {
        print_hex("got", t.ptr, t.len);
        print_hex("want", want, n);
    }
    return ok;
}
#define HOLDS(b, ...) holds(b, BYTES(__VA_ARGS__), sizeof(BYTES(__VA_ARGS__)))
/* Reset b, write with call (which must succeed), and compare. */
#define WRITES(b, call, ...)                     \
    do {                                         \
        gcn_buf_reset(b);                        \
        CU_ASSERT_EQUAL(call, 0);                \
        CU_ASSERT(HOLDS(b, __VA_ARGS__));        \
    } while (0)

/* ---- writers ---- */

static void test_put_scalars(void)
{
    gcn_buf *b = gcn_buf_new();
    CU_ASSERT_FATAL(b != NULL);
    WRITES(b, gcn_put_atom(b, "ok"), 119, 2, 111, 107);                  /* OTP ok */
    WRITES(b, gcn_put_atom(b, "\xC3\xA9"), 119, 2, 195, 169);            /* OTP 'é' */
    WRITES(b, gcn_put_atom(b, "\xE2\x98\xBA"), 119, 3, 226, 152, 186);   /* OTP '☺' */
    WRITES(b, gcn_put_int(b, 0), 97, 0);                                 /* OTP 0 */
    WRITES(b, gcn_put_int(b, 255), 97, 255);                             /* OTP 255 */
    WRITES(b, gcn_put_int(b, 256), 98, 0, 0, 1, 0);                      /* OTP 256 */
    WRITES(b, gcn_put_int(b, -1), 98, 255, 255, 255, 255);               /* OTP -1 */
    WRITES(b, gcn_put_int(b, -256), 98, 255, 255, 255, 0);               /* OTP -256 */
    WRITES(b, gcn_put_int(b, INT32_MAX), 98, 127, 255, 255, 255);        /* OTP 2147483647 */
    WRITES(b, gcn_put_int(b, INT32_MIN), 98, 128, 0, 0, 0);              /* OTP -2147483648 */
    WRITES(b, gcn_put_int(b, 2147483648), 110, 4, 0, 0, 0, 0, 128);      /* OTP 2147483648 */
    WRITES(b, gcn_put_int(b, -2147483649), 110, 4, 1, 1, 0, 0, 128);     /* OTP -2147483649 */
    WRITES(b, gcn_put_int(b, INT64_MAX), 110, 8, 0, 255, 255, 255, 255, 255, 255, 255, 127);
    WRITES(b, gcn_put_int(b, INT64_MIN), 110, 8, 1, 0, 0, 0, 0, 0, 0, 0, 128); /* OTP -(1 bsl 63) */
    WRITES(b, gcn_put_uint(b, 7), 97, 7);
    WRITES(b, gcn_put_uint(b, UINT64_C(1) << 63), 110, 8, 0, 0, 0, 0, 0, 0, 0, 0, 128);
    WRITES(b, gcn_put_uint(b, UINT64_MAX), 110, 8, 0, 255, 255, 255, 255, 255, 255, 255, 255);
    WRITES(b, gcn_put_double(b, 1.5), 70, 63, 248, 0, 0, 0, 0, 0, 0);    /* OTP 1.5 */
    WRITES(b, gcn_put_double(b, -0.0), 70, 128, 0, 0, 0, 0, 0, 0, 0);    /* OTP -0.0 */
    WRITES(b, gcn_put_binary(b, "hi", 2), 109, 0, 0, 0, 2, 104, 105);    /* OTP <<"hi">> */
    WRITES(b, gcn_put_binary(b, NULL, 0), 109, 0, 0, 0, 0);              /* OTP <<>> */
    WRITES(b, gcn_put_string(b, "hi"), 109, 0, 0, 0, 2, 104, 105);
    WRITES(b, gcn_put_nil(b), 106);                                      /* OTP [] */
    WRITES(b, gcn_put_list(b, 0), 106);
    WRITES(b, gcn_put_tuple(b, 0), 104, 0);                              /* OTP {} */
    WRITES(b, gcn_put_map(b, 0), 116, 0, 0, 0, 0);                       /* OTP #{} */
    WRITES(b, gcn_put_term(b, TERM(97, 42)), 97, 42);

    /* 255 characters fit SMALL_ATOM_UTF8; 100 three-byte ones take ATOM_UTF8 */
    char atom[301];
    memset(atom, 'a', 255);
    atom[255] = '\0';
    gcn_buf_reset(b);
    CU_ASSERT_EQUAL(gcn_put_atom(b, atom), 0);
    CU_ASSERT(gcn_buf_term(b).len == 257 && (unsigned char)gcn_buf_term(b).ptr[1] == 255);
    for (int i = 0; i < 100; i++)
        memcpy(atom + 3 * i, "\xE2\x98\xBA", 3);
    atom[300] = '\0';
    gcn_buf_reset(b);
    CU_ASSERT_EQUAL(gcn_put_atom(b, atom), 0);
    /* OTP list_to_atom(lists:duplicate(100, 16#263A)), its first bytes */
    static const unsigned char long_atom[] = {118, 1, 44, 226, 152, 186};
    CU_ASSERT(gcn_buf_term(b).len == 303 && memcmp(gcn_buf_term(b).ptr, long_atom, 6) == 0);
    CU_ASSERT(gcn_buf_ok_term(b, 0));
    gcn_buf_free(b);
}

static void test_put_compounds(void)
{
    gcn_buf *b = gcn_buf_new();
    CU_ASSERT_FATAL(b != NULL);
    /* OTP {ok, 42} */
    WRITES(b, gcn_put_tuple(b, 2) | gcn_put_atom(b, "ok") | gcn_put_int(b, 42),
           104, 2, 119, 2, 111, 107, 97, 42);
    /* OTP [a] */
    WRITES(b, gcn_put_list(b, 1) | gcn_put_atom(b, "a") | gcn_put_nil(b),
           108, 0, 0, 0, 1, 119, 1, 97, 106);
    /* OTP [-1, 3.0] */
    WRITES(b, gcn_put_list(b, 2) | gcn_put_int(b, -1) | gcn_put_double(b, 3.0) | gcn_put_nil(b),
           108, 0, 0, 0, 2, 98, 255, 255, 255, 255, 70, 64, 8, 0, 0, 0, 0, 0, 0, 106);
    /* OTP #{a => 1} */
    WRITES(b, gcn_put_map(b, 1) | gcn_put_atom(b, "a") | gcn_put_int(b, 1),
           116, 0, 0, 0, 1, 119, 1, 97, 97, 1);
    /* OTP {error, {bad, <<"x">>}} */
    WRITES(b, gcn_error(b, "bad", TERM(109, 0, 0, 0, 1, 120)),
           104, 2, 119, 5, 101, 114, 114, 111, 114, 104, 2, 119, 3, 98, 97, 100, 109, 0, 0, 0, 1,
           120);
    /* a tuple of 300: LARGE_TUPLE_EXT */
    gcn_buf_reset(b);
    CU_ASSERT_EQUAL(gcn_put_tuple(b, 300), 0);
    for (int i = 0; i < 300; i++)
        CU_ASSERT_EQUAL(gcn_put_int(b, i), 0);
    static const unsigned char large_tuple[] = {105, 0, 0, 1, 44};
    CU_ASSERT(memcmp(gcn_buf_term(b).ptr, large_tuple, 5) == 0 && gcn_buf_ok_term(b, 0));
    gcn_buf_free(b);
}

/* Every writer's output read back with ei's decoders. */
static void test_put_ei_decodes(void)
{
    gcn_buf *b = gcn_buf_new();
    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_EQUAL(gcn_put_tuple(b, 10) | gcn_put_int(b, INT64_MIN) | gcn_put_uint(b, UINT64_MAX) |
                        gcn_put_int(b, -70000) | gcn_put_double(b, -2.25) |
                        gcn_put_atom(b, "h\xC3\xA9") | gcn_put_binary(b, "\0z", 2) |
                        gcn_put_string(b, "str") | gcn_put_list(b, 1) | gcn_put_nil(b) |
                        gcn_put_nil(b) | gcn_put_map(b, 1) | gcn_put_atom(b, "k") |
                        gcn_put_int(b, 5) | gcn_put_tuple(b, 0),
                    0);
    CU_ASSERT_FATAL(gcn_buf_ok_term(b, 0));
    const char *buf = gcn_buf_term(b).ptr;
    int i = 0, arity, type, size;
    long long ll;
    unsigned long long ull;
    long l, len;
    double d;
    char atom[MAXATOMLEN_UTF8], bin[8];
    CU_ASSERT(ei_decode_tuple_header(buf, &i, &arity) == 0 && arity == 10);
    CU_ASSERT(ei_decode_longlong(buf, &i, &ll) == 0 && ll == INT64_MIN);
    CU_ASSERT(ei_decode_ulonglong(buf, &i, &ull) == 0 && ull == UINT64_MAX);
    CU_ASSERT(ei_decode_long(buf, &i, &l) == 0 && l == -70000);
    CU_ASSERT(ei_decode_double(buf, &i, &d) == 0 && d == -2.25);
    CU_ASSERT(ei_decode_atom_as(buf, &i, atom, sizeof atom, ERLANG_UTF8, NULL, NULL) == 0 &&
              strcmp(atom, "h\xC3\xA9") == 0);
    CU_ASSERT(ei_decode_binary(buf, &i, bin, &len) == 0 && len == 2 && memcmp(bin, "\0z", 2) == 0);
    CU_ASSERT(ei_get_type(buf, &i, &type, &size) == 0 && type == ERL_BINARY_EXT && size == 3);
    CU_ASSERT(ei_decode_binary(buf, &i, bin, &len) == 0 && len == 3 && memcmp(bin, "str", 3) == 0);
    CU_ASSERT(ei_decode_list_header(buf, &i, &arity) == 0 && arity == 1);
    CU_ASSERT(ei_decode_list_header(buf, &i, &arity) == 0 && arity == 0); /* the element: [] */
    CU_ASSERT(ei_decode_list_header(buf, &i, &arity) == 0 && arity == 0); /* the tail */
    CU_ASSERT(ei_decode_map_header(buf, &i, &arity) == 0 && arity == 1);
    CU_ASSERT(ei_decode_atom(buf, &i, atom) == 0 && strcmp(atom, "k") == 0);
    CU_ASSERT(ei_decode_long(buf, &i, &l) == 0 && l == 5);
    CU_ASSERT(ei_decode_tuple_header(buf, &i, &arity) == 0 && arity == 0);
    CU_ASSERT_EQUAL((size_t)i, gcn_buf_term(b).len);
    gcn_buf_free(b);
}

/* Values no term holds fail the buffer, as running out of memory does. */
static void test_put_refused(void)
{
    gcn_buf *b = gcn_buf_new();
    CU_ASSERT_FATAL(b != NULL);
    char atom[257];
    memset(atom, 'a', 256);
    atom[256] = '\0';
    CU_ASSERT_EQUAL(gcn_put_tuple(b, 2), 0);
    CU_ASSERT_EQUAL(gcn_put_atom(b, atom), -1); /* 256 characters */
    CU_ASSERT(b->failed);
    CU_ASSERT_EQUAL(gcn_put_int(b, 1), -1); /* a failed buffer takes nothing more */
    CU_ASSERT_EQUAL(gcn_buf_term(b).len, 0);
    CU_ASSERT(!gcn_buf_ok_term(b, 0));
    gcn_buf_reset(b);
    CU_ASSERT(!b->failed && gcn_buf_term(b).len == 0);

    const char *bad_atoms[] = {"\xC3", "\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xFF", NULL};
    for (size_t k = 0; k < sizeof bad_atoms / sizeof *bad_atoms; k++) {
        gcn_buf_reset(b);
        CU_ASSERT_EQUAL(gcn_put_atom(b, bad_atoms[k]), -1);
        CU_ASSERT(b->failed);
    }
    gcn_buf_reset(b);
    CU_ASSERT(gcn_put_double(b, NAN) == -1 && b->failed);
    gcn_buf_reset(b);
    CU_ASSERT(gcn_put_double(b, INFINITY) == -1 && b->failed);
    gcn_buf_reset(b);
    CU_ASSERT(gcn_put_binary(b, NULL, 3) == -1 && b->failed);
    gcn_buf_reset(b);
    CU_ASSERT(gcn_put_string(b, NULL) == -1 && b->failed);
    gcn_buf_reset(b);
    CU_ASSERT(gcn_error(b, NULL, TERM(106)) == -1 && b->failed);
    CU_ASSERT_EQUAL(gcn_put_nil(NULL), -1);
    gcn_buf_free(NULL);
    gcn_buf_free(b);
}

/* gcn_buf.h: embedding, ei's own writers, growth by doubling, one term. */
static void test_buf_internals(void)
{
    gcn_buf b;
    CU_ASSERT_FATAL(gcn_buf_init(&b) == 0);
    CU_ASSERT(!gcn_buf_ok_term(&b, 0)); /* nothing is not a term */
    CU_ASSERT(ei_x_encode_atom(gcn_buf_ei(&b), "ok") == 0);
    CU_ASSERT(HOLDS(&b, 119, 2, 111, 107));
    CU_ASSERT(gcn_buf_append(&b, BYTES(97, 1), 2) == 0);
    CU_ASSERT(!gcn_buf_ok_term(&b, 0)); /* two terms */
    CU_ASSERT(gcn_buf_ok_term(&b, 4));  /* the second alone */
    CU_ASSERT(!gcn_buf_ok_term(&b, 5)); /* half of it */
    CU_ASSERT(!gcn_buf_ok_term(&b, 6) && !gcn_buf_ok_term(&b, 99));
    gcn_buf_reset(&b);
    CU_ASSERT(gcn_put_tuple(&b, 2) == 0 && gcn_put_nil(&b) == 0);
    CU_ASSERT(!gcn_buf_ok_term(&b, 0)); /* a tuple short of an element */

    /* 100,000 elements: the buffer doubles (64 * 2^k), never creeps (ei's
     * own writers, as above, grow it by 100 bytes or so) */
    gcn_buf_release(&b);
    CU_ASSERT_FATAL(gcn_buf_init(&b) == 0);
    int rc = gcn_put_list(&b, 100000);
    for (int i = 0; i < 100000; i++)
        rc |= gcn_put_int(&b, i);
    CU_ASSERT_EQUAL(rc | gcn_put_nil(&b), 0);
    CU_ASSERT(gcn_buf_ok_term(&b, 0));
    size_t cap = (size_t)gcn_buf_ei(&b)->buffsz;
    CU_ASSERT(cap >= (size_t)gcn_buf_ei(&b)->index && cap % 64 == 0 && ((cap / 64) & (cap / 64 - 1)) == 0);
    gcn_iter it;
    CU_ASSERT_EQUAL(gcn_iter_list(gcn_buf_term(&b), &it), 100000);
    /* reset gives back what is beyond GCN_BUF_KEEP */
    gcn_buf_reset(&b);
    CU_ASSERT(gcn_buf_ei(&b)->buffsz == GCN_BUF_KEEP && gcn_buf_ei(&b)->index == 0);
    gcn_buf_release(&b);
    CU_ASSERT(gcn_buf_ei(&b)->buff == NULL);
}

/* ---- readers ---- */

static void test_type(void)
{
    CU_ASSERT_EQUAL(gcn_type(TERM(97, 1)), GCN_INTEGER);
    CU_ASSERT_EQUAL(gcn_type(TERM(98, 0, 0, 1, 0)), GCN_INTEGER);
    CU_ASSERT_EQUAL(gcn_type(TERM(110, 1, 0, 5)), GCN_INTEGER);
    CU_ASSERT_EQUAL(gcn_type(TERM(111, 0, 0, 0, 1, 1, 5)), GCN_INTEGER);
    CU_ASSERT_EQUAL(gcn_type(TERM(70, 63, 248, 0, 0, 0, 0, 0, 0)), GCN_FLOAT);
    CU_ASSERT_EQUAL(gcn_type(TERM(100, 0, 1, 97)), GCN_ATOM);
    CU_ASSERT_EQUAL(gcn_type(TERM(115, 1, 97)), GCN_ATOM);
    CU_ASSERT_EQUAL(gcn_type(TERM(118, 0, 1, 97)), GCN_ATOM);
    CU_ASSERT_EQUAL(gcn_type(TERM(119, 1, 97)), GCN_ATOM);
    CU_ASSERT_EQUAL(gcn_type(TERM(109, 0, 0, 0, 1, 97)), GCN_BINARY);
    CU_ASSERT_EQUAL(gcn_type(TERM(77, 0, 0, 0, 1, 8, 97)), GCN_BINARY);
    CU_ASSERT_EQUAL(gcn_type(TERM(77, 0, 0, 0, 1, 3, 160)), GCN_BITSTRING); /* OTP <<5:3>> */
    CU_ASSERT_EQUAL(gcn_type(TERM(104, 0)), GCN_TUPLE);
    CU_ASSERT_EQUAL(gcn_type(TERM(105, 0, 0, 0, 1, 106)), GCN_TUPLE);
    CU_ASSERT_EQUAL(gcn_type(TERM(106)), GCN_NIL);
    CU_ASSERT_EQUAL(gcn_type(TERM(107, 0, 0)), GCN_NIL);
    CU_ASSERT_EQUAL(gcn_type(TERM(107, 0, 1, 5)), GCN_LIST);
    CU_ASSERT_EQUAL(gcn_type(TERM(108, 0, 0, 0, 1, 97, 1, 106)), GCN_LIST);
    CU_ASSERT_EQUAL(gcn_type(TERM(108, 0, 0, 0, 1, 97, 1, 97, 2)), GCN_LIST); /* OTP [1|2] */
    CU_ASSERT_EQUAL(gcn_type(TERM(108, 0, 0, 0, 0, 106)), GCN_NIL);
    CU_ASSERT_EQUAL(gcn_type(TERM(108, 0, 0, 0, 0, 97, 7)), GCN_INTEGER); /* [|7] is 7 */
    CU_ASSERT_EQUAL(gcn_type(TERM(116, 0, 0, 0, 0)), GCN_MAP);
    /* OTP pid, port and ref of 'n@h' (from test_term.c), fun m:f/2 */
    CU_ASSERT_EQUAL(gcn_type(TERM(88, 119, 3, 110, 64, 104, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0, 3)),
                    GCN_PID);
    CU_ASSERT_EQUAL(gcn_type(TERM(89, 119, 3, 110, 64, 104, 0, 0, 0, 9, 0, 0, 0, 3)), GCN_PORT);
    CU_ASSERT_EQUAL(gcn_type(TERM(90, 0, 1, 119, 3, 110, 64, 104, 0, 0, 0, 3, 0, 0, 0, 5)),
                    GCN_REF);
    CU_ASSERT_EQUAL(gcn_type(TERM(113, 119, 1, 109, 119, 1, 102, 97, 2)), GCN_FUN);
    /* not one well-formed term */
    CU_ASSERT_EQUAL(gcn_type(TERM(97, 1, 97)), 0);      /* trailing bytes */
    CU_ASSERT_EQUAL(gcn_type(TERM(98, 0, 0)), 0);       /* truncated */
    CU_ASSERT_EQUAL(gcn_type(TERM(104, 2, 106)), 0);    /* arity beyond the bytes */
    CU_ASSERT_EQUAL(gcn_type(TERM(200)), 0);            /* no such tag */
    CU_ASSERT_EQUAL(gcn_type(TERM(82, 0)), 0);          /* atom cache refs are refused */
    CU_ASSERT_EQUAL(gcn_type((gcn_term){NULL, 0}), 0);
    CU_ASSERT_EQUAL(gcn_type((gcn_term){NULL, 5}), 0);
}

static void test_get_integers(void)
{
    int64_t i = 0;
    uint64_t u = 0;
    double d = 0;
    CU_ASSERT(gcn_get_int(TERM(97, 200), &i) == 0 && i == 200);
    CU_ASSERT(gcn_get_int(TERM(98, 255, 255, 255, 0), &i) == 0 && i == -256);
    CU_ASSERT(gcn_get_int(TERM(98, 128, 0, 0, 0), &i) == 0 && i == INT32_MIN);
    CU_ASSERT(gcn_get_int(TERM(110, 4, 1, 1, 0, 0, 128), &i) == 0 && i == -2147483649);
    CU_ASSERT(gcn_get_int(TERM(110, 8, 0, 255, 255, 255, 255, 255, 255, 255, 127), &i) == 0 &&
              i == INT64_MAX);
    CU_ASSERT(gcn_get_int(TERM(110, 8, 1, 0, 0, 0, 0, 0, 0, 0, 128), &i) == 0 && i == INT64_MIN);
    /* LARGE_BIG_EXT, and bigs with zero digits on top (not OTP's, still numbers) */
    CU_ASSERT(gcn_get_int(TERM(111, 0, 0, 0, 2, 1, 0, 1), &i) == 0 && i == -256);
    CU_ASSERT(gcn_get_int(TERM(110, 12, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), &i) == 0 && i == 1);
    CU_ASSERT(gcn_get_int(TERM(110, 1, 1, 0), &i) == 0 && i == 0); /* -0 */
    CU_ASSERT(gcn_get_uint(TERM(110, 1, 1, 0), &u) == 0 && u == 0);
    /* beyond int64: 1 bsl 63, -(1 bsl 63) - 1 (OTP), 1 bsl 64 (OTP) */
    CU_ASSERT_EQUAL(gcn_get_int(TERM(110, 8, 0, 0, 0, 0, 0, 0, 0, 0, 128), &i), -1);
    CU_ASSERT_EQUAL(gcn_get_int(TERM(110, 8, 1, 1, 0, 0, 0, 0, 0, 0, 128), &i), -1);
    CU_ASSERT_EQUAL(gcn_get_int(TERM(110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1), &i), -1);
    CU_ASSERT(gcn_get_uint(TERM(110, 8, 0, 0, 0, 0, 0, 0, 0, 0, 128), &u) == 0 &&
              u == UINT64_C(1) << 63);
    CU_ASSERT(gcn_get_uint(TERM(110, 8, 0, 255, 255, 255, 255, 255, 255, 255, 255), &u) == 0 &&
              u == UINT64_MAX);
    CU_ASSERT_EQUAL(gcn_get_uint(TERM(110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1), &u), -1);
    CU_ASSERT_EQUAL(gcn_get_uint(TERM(98, 255, 255, 255, 255), &u), -1); /* negative */
    CU_ASSERT_EQUAL(gcn_get_uint(TERM(110, 1, 1, 5), &u), -1);
    CU_ASSERT(gcn_get_uint(TERM(97, 9), &u) == 0 && u == 9);
    /* not integers */
    CU_ASSERT_EQUAL(gcn_get_int(TERM(70, 63, 248, 0, 0, 0, 0, 0, 0), &i), -1);
    CU_ASSERT_EQUAL(gcn_get_int(TERM(119, 1, 97), &i), -1);
    CU_ASSERT_EQUAL(gcn_get_int(TERM(97), &i), -1);
    CU_ASSERT_EQUAL(gcn_get_int(TERM(97, 1, 0), &i), -1);

    CU_ASSERT(gcn_get_double(TERM(70, 63, 248, 0, 0, 0, 0, 0, 0), &d) == 0 && d == 1.5);
    /* OTP term_to_binary(1.5, [{minor_version, 0}]): FLOAT_EXT */
    CU_ASSERT(gcn_get_double(TERM(99, 49, 46, 53, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48,
                                  48, 48, 48, 48, 48, 48, 48, 101, 43, 48, 48, 0, 0, 0, 0, 0),
                             &d) == 0 &&
              d == 1.5);
    CU_ASSERT(gcn_get_double(TERM(98, 255, 255, 255, 0), &d) == 0 && d == -256.0);
    CU_ASSERT(gcn_get_double(TERM(110, 8, 0, 0, 0, 0, 0, 0, 0, 0, 128), &d) == 0 &&
              d == 9223372036854775808.0);
    CU_ASSERT_EQUAL(gcn_get_double(TERM(110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1), &d), -1);
    CU_ASSERT_EQUAL(gcn_get_double(TERM(106), &d), -1);
    CU_ASSERT_EQUAL(gcn_get_double(TERM(70, 127, 240, 0, 0, 0, 0, 0, 0), &d), -1); /* inf */
}

static void test_get_atoms_binaries(void)
{
    char a[GCN_ATOM_MAX];
    gcn_bin bin;
    CU_ASSERT(gcn_get_atom(TERM(119, 2, 111, 107), a) == 0 && strcmp(a, "ok") == 0);
    CU_ASSERT(gcn_get_atom(TERM(118, 0, 2, 111, 107), a) == 0 && strcmp(a, "ok") == 0);
    CU_ASSERT(gcn_get_atom(TERM(115, 2, 111, 107), a) == 0 && strcmp(a, "ok") == 0);
    CU_ASSERT(gcn_get_atom(TERM(100, 0, 2, 111, 107), a) == 0 && strcmp(a, "ok") == 0);
    /* OTP 'é' in OTP 25's default encoding: latin1 ATOM_EXT, read as UTF-8 */
    CU_ASSERT(gcn_get_atom(TERM(100, 0, 1, 233), a) == 0 && strcmp(a, "\xC3\xA9") == 0);
    CU_ASSERT(gcn_get_atom(TERM(115, 2, 255, 97), a) == 0 && strcmp(a, "\xC3\xBF" "a") == 0);
    CU_ASSERT(gcn_get_atom(TERM(119, 2, 195, 169), a) == 0 && strcmp(a, "\xC3\xA9") == 0);
    CU_ASSERT_EQUAL(gcn_get_atom(TERM(119, 3, 97, 0, 98), a), -1); /* holds a NUL */
    CU_ASSERT_EQUAL(gcn_get_atom(TERM(100, 0, 1, 0), a), -1);
    CU_ASSERT_EQUAL(gcn_get_atom(TERM(119, 1, 0xFF), a), -1);      /* not UTF-8 */
    CU_ASSERT_EQUAL(gcn_get_atom(TERM(109, 0, 0, 0, 1, 97), a), -1);
    CU_ASSERT_EQUAL(gcn_get_atom(TERM(119, 3, 97), a), -1);

    /* the longest: 255 latin1 characters of two UTF-8 bytes, 255 of four */
    unsigned char latin1[258] = {100, 0, 255}, utf8[3 + 1020] = {118, 1020 >> 8, 1020 & 255};
    memset(latin1 + 3, 0xE9, 255);
    for (int i = 0; i < 255; i++)
        memcpy(utf8 + 3 + 4 * i, "\xF0\x9F\x98\x80", 4);
    CU_ASSERT(gcn_get_atom(term_of(latin1, sizeof latin1), a) == 0 && strlen(a) == 510);
    CU_ASSERT(gcn_get_atom(term_of(utf8, 3 + 1020), a) == 0 && strlen(a) == 1020);

    CU_ASSERT(gcn_is_atom(TERM(100, 0, 1, 233), "\xC3\xA9"));
    CU_ASSERT(gcn_is_atom(TERM(119, 4, 116, 114, 117, 101), "true"));
    CU_ASSERT(!gcn_is_atom(TERM(119, 4, 116, 114, 117, 101), "tru"));
    CU_ASSERT(!gcn_is_atom(TERM(119, 4, 116, 114, 117, 101), NULL));
    CU_ASSERT(!gcn_is_atom(TERM(109, 0, 0, 0, 4, 116, 114, 117, 101), "true"));

    CU_ASSERT(gcn_get_binary(TERM(109, 0, 0, 0, 2, 104, 105), &bin) == 0 && bin.len == 2 &&
              memcmp(bin.ptr, "hi", 2) == 0);
    CU_ASSERT(gcn_get_binary(TERM(109, 0, 0, 0, 0), &bin) == 0 && bin.len == 0);
    CU_ASSERT(gcn_get_binary(TERM(77, 0, 0, 0, 1, 8, 104), &bin) == 0 && bin.len == 1 &&
              bin.ptr[0] == 'h');
    CU_ASSERT(gcn_get_binary(TERM(77, 0, 0, 0, 0, 0), &bin) == 0 && bin.len == 0);
    CU_ASSERT_EQUAL(gcn_get_binary(TERM(77, 0, 0, 0, 1, 3, 160), &bin), -1);
    CU_ASSERT_EQUAL(gcn_get_binary(TERM(109, 0, 0, 0, 3, 104, 105), &bin), -1);
    CU_ASSERT_EQUAL(gcn_get_binary(TERM(107, 0, 2, 104, 105), &bin), -1);
}

/* iter on t gives count, then the integers want[0 .. n), then the end. */
static void walks(long (*iter)(gcn_term, gcn_iter *), gcn_term t, long count, const int *want,
                  size_t n)
{
    gcn_iter it;
    gcn_term e;
    int64_t v;
    CU_ASSERT_EQUAL_FATAL(iter(t, &it), count);
    for (size_t k = 0; k < n; k++) {
        CU_ASSERT_FATAL(gcn_next(&it, &e) == 1);
        CU_ASSERT(gcn_get_int(e, &v) == 0 && v == want[k] && gcn_type(e) == GCN_INTEGER);
    }
    CU_ASSERT_EQUAL(gcn_next(&it, &e), 0);
    CU_ASSERT_EQUAL(gcn_next(&it, &e), 0);
}

static void test_iterators(void)
{
    gcn_iter it;
    gcn_term e;
    static const int one_two[] = {1, 2}, bytes[] = {104, 0, 255}, one_to_four[] = {1, 2, 3, 4};
    walks(gcn_iter_tuple, TERM(104, 2, 97, 1, 97, 2), 2, one_two, 2);
    walks(gcn_iter_tuple, TERM(105, 0, 0, 0, 2, 97, 1, 97, 2), 2, one_two, 2);
    walks(gcn_iter_tuple, TERM(104, 0), 0, NULL, 0);
    walks(gcn_iter_list, TERM(108, 0, 0, 0, 2, 97, 1, 97, 2, 106), 2, one_two, 2);
    walks(gcn_iter_list, TERM(106), 0, NULL, 0);
    /* STRING_EXT: each byte a small integer term */
    walks(gcn_iter_list, TERM(107, 0, 3, 104, 0, 255), 3, bytes, 3);
    walks(gcn_iter_list, TERM(107, 0, 0), 0, NULL, 0);
    /* a spine in segments: [1 | [2 | "\3\4"]] */
    walks(gcn_iter_list, TERM(108, 0, 0, 0, 1, 97, 1, 108, 0, 0, 0, 1, 97, 2, 107, 0, 2, 3, 4), 4,
          one_to_four, 4);
    /* maps: key, value, key, value */
    walks(gcn_iter_map, TERM(116, 0, 0, 0, 2, 97, 1, 97, 2, 97, 3, 97, 4), 2, one_to_four, 4);
    /* not of the kind, improper, malformed: -1 and an empty iterator */
    CU_ASSERT_EQUAL(gcn_iter_list(TERM(108, 0, 0, 0, 1, 97, 1, 97, 2), &it), -1); /* OTP [1|2] */
    CU_ASSERT_EQUAL(gcn_next(&it, &e), 0);
    CU_ASSERT_EQUAL(gcn_iter_list(TERM(108, 0, 0, 0, 0, 97, 2), &it), -1);
    CU_ASSERT_EQUAL(gcn_iter_list(TERM(104, 0), &it), -1);
    CU_ASSERT_EQUAL(gcn_iter_tuple(TERM(106), &it), -1);
    CU_ASSERT_EQUAL(gcn_iter_map(TERM(104, 0), &it), -1);
    CU_ASSERT_EQUAL(gcn_iter_tuple(TERM(104, 2, 97, 1), &it), -1);
    CU_ASSERT_EQUAL(gcn_iter_tuple(TERM(104, 1, 97, 1, 106), &it), -1); /* trailing bytes */
    CU_ASSERT_EQUAL(gcn_next(&it, &e), 0);
    CU_ASSERT_EQUAL(gcn_iter_map(TERM(116, 255, 255, 255, 255, 97, 1), &it), -1);
    CU_ASSERT_EQUAL(gcn_iter_list(TERM(108, 255, 255, 255, 255, 106), &it), -1);
}

/* ---- matching ---- */

/* A pid of 'n@h' (OTP, from test_term.c) */
#define PID_BYTES 88, 119, 3, 110, 64, 104, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0, 3

static void test_match_captures(void)
{
    gcn_term t, p, l, m;
    int64_t i;
    uint64_t u;
    double f;
    char a[GCN_ATOM_MAX];
    gcn_bin bin;
    /* {put, -5, 7, 2.5, 'é', <<"v">>, Pid, [1], #{}, {x}} with a latin1 atom */
    gcn_term req = TERM(104, 10, 119, 3, 112, 117, 116, 98, 255, 255, 255, 251, 97, 7,
                        70, 64, 4, 0, 0, 0, 0, 0, 0, 100, 0, 1, 233, 109, 0, 0, 0, 1, 118,
                        PID_BYTES, 107, 0, 1, 1, 116, 0, 0, 0, 0, 104, 1, 119, 1, 120);
    CU_ASSERT_FATAL(gcn_type(req) == GCN_TUPLE);
    CU_ASSERT(gcn_match(req, "{put, ~i, ~u, ~f, ~a, ~b, ~p, ~l, ~m, ~t}", &i, &u, &f, a, &bin, &p,
                        &l, &m, &t));
    CU_ASSERT(i == -5 && u == 7 && f == 2.5 && strcmp(a, "\xC3\xA9") == 0);
    CU_ASSERT(bin.len == 1 && bin.ptr[0] == 'v');
    CU_ASSERT(gcn_type(p) == GCN_PID && p.len == 18 && p.ptr == req.ptr + 33);
    CU_ASSERT(gcn_type(l) == GCN_LIST && gcn_type(m) == GCN_MAP);
    CU_ASSERT(gcn_match(t, "{x}"));
    CU_ASSERT(t.ptr + t.len == req.ptr + req.len);
    /* integers where a float is asked; _ anywhere */
    CU_ASSERT(gcn_match(req, "{_, ~f, _, _, _, _, _, _, _, _}", &f) && f == -5.0);
    CU_ASSERT(gcn_match(req, "~t", &t) && t.ptr == req.ptr && t.len == req.len);
    CU_ASSERT(gcn_match(req, "_"));
    /* ~l takes [] too; ~t of a "string" element outlives the match */
    CU_ASSERT(gcn_match(TERM(106), "~l", &l) && l.len == 1);
    CU_ASSERT(gcn_match(TERM(107, 0, 2, 7, 9), "[_, ~t]", &t));
    CU_ASSERT(gcn_get_int(t, &i) == 0 && i == 9);
}

static void test_match_refused(void)
{
    gcn_term t;
    int64_t i;
    uint64_t u;
    char a[GCN_ATOM_MAX];
    gcn_bin bin;
    gcn_term ok42 = TERM(104, 2, 119, 2, 111, 107, 97, 42); /* OTP {ok, 42} */
    CU_ASSERT(gcn_match(ok42, "{ok, 42}"));
    CU_ASSERT(gcn_match(ok42, " { ok ,\n42 } "));
    CU_ASSERT(!gcn_match(ok42, "{ok, 42, _}"));     /* wrong arity */
    CU_ASSERT(!gcn_match(ok42, "{ok}"));
    CU_ASSERT(!gcn_match(ok42, "{error, 42}"));     /* wrong atom */
    CU_ASSERT(!gcn_match(ok42, "{ok, 43}"));
    CU_ASSERT(!gcn_match(ok42, "{ok, -42}"));
    CU_ASSERT(!gcn_match(ok42, "[ok, 42]"));
    CU_ASSERT(!gcn_match(ok42, "{'OK', 42}"));
    CU_ASSERT(!gcn_match(ok42, "{\"ok\", 42}"));    /* a binary is no atom */
    CU_ASSERT(!gcn_match(ok42, "{ok, ~a}", a));
    CU_ASSERT(!gcn_match(ok42, "{ok, ~b}", &bin));
    CU_ASSERT(!gcn_match(ok42, "{ok, ~p}", &t));
    CU_ASSERT(!gcn_match(ok42, "{ok, ~m}", &t));
    CU_ASSERT(!gcn_match(ok42, "{ok, ~l}", &t));
    CU_ASSERT(!gcn_match(ok42, "#{}"));
    /* ~i beyond int64, ~u negative */
    CU_ASSERT(!gcn_match(TERM(110, 8, 0, 0, 0, 0, 0, 0, 0, 0, 128), "~i", &i));
    CU_ASSERT(gcn_match(TERM(110, 8, 0, 0, 0, 0, 0, 0, 0, 0, 128), "~u", &u));
    CU_ASSERT(gcn_match(TERM(110, 8, 0, 0, 0, 0, 0, 0, 0, 0, 128), "9223372036854775808"));
    CU_ASSERT(gcn_match(TERM(110, 8, 1, 0, 0, 0, 0, 0, 0, 0, 128), "-9223372036854775808"));
    CU_ASSERT(gcn_match(TERM(110, 8, 0, 255, 255, 255, 255, 255, 255, 255, 255),
                        "18446744073709551615"));
    CU_ASSERT(!gcn_match(TERM(110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1), "~u", &u));
    CU_ASSERT(!gcn_match(TERM(98, 255, 255, 255, 255), "~u", &u));
    CU_ASSERT(gcn_match(TERM(98, 255, 255, 255, 255), "-1"));
    CU_ASSERT(gcn_match(TERM(110, 1, 0, 42), "42")); /* any encoding of 42 */
    CU_ASSERT(!gcn_match(TERM(70, 64, 69, 0, 0, 0, 0, 0, 0), "42")); /* 42.0 is not 42 */
    /* improper lists match no list pattern */
    gcn_term improper = TERM(108, 0, 0, 0, 1, 97, 1, 97, 2); /* OTP [1|2] */
    CU_ASSERT(!gcn_match(improper, "[1]"));
    CU_ASSERT(!gcn_match(improper, "[1, 2]"));
    CU_ASSERT(!gcn_match(improper, "~l", &t));
    CU_ASSERT(gcn_match(improper, "~t", &t));
    /* a bitstring is no binary */
    CU_ASSERT(!gcn_match(TERM(77, 0, 0, 0, 1, 3, 160), "~b", &bin));
    /* nor is anything malformed a term */
    CU_ASSERT(!gcn_match(TERM(104, 2, 97, 1), "_"));
    CU_ASSERT(!gcn_match(TERM(97, 1, 106), "~t", &t));
    CU_ASSERT(!gcn_match((gcn_term){NULL, 0}, "_"));
}

static void test_match_lists_atoms_strings(void)
{
    int64_t x, y;
    gcn_term t;
    /* [A, B] matches a STRING_EXT of two */
    CU_ASSERT(gcn_match(TERM(107, 0, 2, 1, 2), "[~i, ~i]", &x, &y) && x == 1 && y == 2); /* OTP [1,2] */
    CU_ASSERT(gcn_match(TERM(107, 0, 2, 1, 2), "[1, 2]"));
    CU_ASSERT(gcn_match(TERM(108, 0, 0, 0, 2, 97, 1, 97, 2, 106), "[1, 2]"));
    CU_ASSERT(!gcn_match(TERM(107, 0, 2, 1, 2), "[1]"));
    CU_ASSERT(!gcn_match(TERM(107, 0, 2, 1, 2), "[1, 2, 3]"));
    CU_ASSERT(!gcn_match(TERM(107, 0, 2, 1, 2), "[1, 3]"));
    CU_ASSERT(gcn_match(TERM(106), "[]"));
    CU_ASSERT(gcn_match(TERM(107, 0, 0), "[]"));
    CU_ASSERT(gcn_match(TERM(108, 0, 0, 0, 0, 106), "[]"));
    CU_ASSERT(!gcn_match(TERM(107, 0, 1, 1), "[]"));
    CU_ASSERT(gcn_match(TERM(108, 0, 0, 0, 1, 97, 1, 107, 0, 1, 2), "[1, ~t]", &t));
    /* atoms: latin1 against UTF-8 text, quoted, escaped, true and nil */
    CU_ASSERT(gcn_match(TERM(100, 0, 1, 233), "'\xC3\xA9'"));     /* OTP 25 'é' */
    CU_ASSERT(gcn_match(TERM(119, 2, 195, 169), "'\xC3\xA9'"));   /* OTP 'é' */
    CU_ASSERT(gcn_match(TERM(115, 1, 233), "'\xC3\xA9'"));
    CU_ASSERT(!gcn_match(TERM(100, 0, 2, 195, 169), "'\xC3\xA9'")); /* latin1 'Ã©' */
    CU_ASSERT(gcn_match(TERM(119, 5, 72, 105, 32, 39, 92), "'Hi \\'\\\\'"));
    CU_ASSERT(gcn_match(TERM(119, 4, 116, 114, 117, 101), "true"));
    CU_ASSERT(gcn_match(TERM(119, 3, 110, 105, 108), "nil"));
    CU_ASSERT(gcn_match(TERM(119, 5, 97, 95, 66, 64, 49), "a_B@1"));
    CU_ASSERT(!gcn_match(TERM(119, 3, 110, 105, 108), "[]"));
    CU_ASSERT(!gcn_match(TERM(119, 3, 97, 0, 98), "~a", (char[GCN_ATOM_MAX]){0}));
    /* strings are binaries; escapes \" and \\ */
    CU_ASSERT(gcn_match(TERM(109, 0, 0, 0, 5, 97, 34, 98, 92, 99), "\"a\\\"b\\\\c\""));
    CU_ASSERT(!gcn_match(TERM(109, 0, 0, 0, 4, 97, 34, 98, 92), "\"a\\\"b\\\\c\""));
    CU_ASSERT(!gcn_match(TERM(109, 0, 0, 0, 6, 97, 34, 98, 92, 99, 100), "\"a\\\"b\\\\c\""));
    CU_ASSERT(gcn_match(TERM(109, 0, 0, 0, 0), "\"\""));
    CU_ASSERT(!gcn_match(TERM(107, 0, 2, 104, 105), "\"hi\"")); /* a charlist is no binary */
}

static void test_match_maps(void)
{
    gcn_term t;
    int64_t v;
    /* OTP #{a => [], <<"k">> => {1}} */
    gcn_term m = TERM(116, 0, 0, 0, 2, 119, 1, 97, 106, 109, 0, 0, 0, 1, 107, 104, 1, 97, 1);
    CU_ASSERT(gcn_match(m, "#{}"));
    CU_ASSERT(gcn_match(m, "#{a => []}"));
    CU_ASSERT(gcn_match(m, "#{\"k\" => {~i}, a => ~l}", &v, &t) && v == 1 && t.len == 1);
    CU_ASSERT(gcn_match(m, "#{\"k\" => _}"));
    CU_ASSERT(!gcn_match(m, "#{b => _}"));                /* no such key */
    CU_ASSERT(!gcn_match(m, "#{a => [], b => _}"));
    CU_ASSERT(!gcn_match(m, "#{a => {}}"));               /* another value */
    CU_ASSERT(!gcn_match(m, "#{'k' => _}"));              /* the atom k is not <<"k">> */
    CU_ASSERT(!gcn_match(TERM(106), "#{}"));
    /* literal compound keys; keys in other encodings */
    gcn_term tk = TERM(116, 0, 0, 0, 1, 104, 2, 100, 0, 1, 120, 98, 255, 255, 255, 255, 97, 9);
    CU_ASSERT(gcn_match(tk, "#{{x, -1} => ~i}", &v) && v == 9);
    CU_ASSERT(!gcn_match(tk, "#{{x, 1} => ~i}", &v));
    /* in a tuple, nested */
    CU_ASSERT(gcn_match(TERM(104, 2, 119, 1, 114, 116, 0, 0, 0, 1, 97, 1, 116, 0, 0, 0, 1, 97, 2,
                             97, 3),
                        "{r, #{1 => #{2 => ~i}}}", &v) &&
              v == 3);
}

/* Run f with stderr going to a file; return how many lines it logged with `needle`. */
static int logged_lines(void (*f)(void *), void *arg, const char *needle)
{
    FILE *tmp = tmpfile();
    CU_ASSERT_FATAL(tmp != NULL);
    fflush(stderr);
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    f(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, tmp))
        n += strstr(line, needle) != NULL;
    fclose(tmp);
    return n;
}

static const char *const bad_patterns[] = {
    "", "  ", "{a", "{a b}", "{a,}", "{,}", "[1,]", "[1 2]", "}", "{}}", "~", "~x", "~s",
    "_foo", "Foo", "'unterminated", "\"bad\\n\"", "\"open", "99999999999999999999", "-", "- 1",
    "1.5", "#{a}", "#{a => }", "#{~t => 1}", "#{_ => 1}", "#{{a, ~i} => 1}", "#a", "{ok} x",
};
static const char *const bad_templates[] = {
    "_", "~p", "~l", "~m", "{ok, _}", "{ok, ~z}", "#{a => 1,}", "'\xFF'", "[", "<<>>",
};

static void run_bad(void *arg)
{
    int *ok = arg;
    gcn_buf *b = gcn_buf_new();
    int64_t i;
    for (size_t k = 0; k < sizeof bad_patterns / sizeof *bad_patterns; k++)
        *ok &= gcn_match(TERM(97, 1), bad_patterns[k], &i, &i, &i) == 0;
    *ok &= gcn_match(TERM(97, 1), NULL) == 0;
    CU_ASSERT_EQUAL(gcn_put_atom(b, "before"), 0);
    gcn_term before = gcn_buf_term(b);
    for (size_t k = 0; k < sizeof bad_templates / sizeof *bad_templates; k++)
        *ok &= gcn_build(b, bad_templates[k], (int64_t)1, (int64_t)1) == -1;
    *ok &= gcn_build(b, NULL) == -1;
    /* a malformed template writes nothing and fails nothing */
    *ok &= !b->failed && gcn_buf_term(b).len == before.len;
    gcn_buf_free(b);
}

static void test_malformed(void)
{
    int ok = 1;
    int n = logged_lines(run_bad, &ok, "malformed");
    CU_ASSERT(ok);
    CU_ASSERT_EQUAL(n, (int)(sizeof bad_patterns / sizeof *bad_patterns +
                             sizeof bad_templates / sizeof *bad_templates));
}

/* Templates nested to TPL_MAX_DEPTH (100: 101 levels) pass, deeper not. */
static void run_deep(void *arg)
{
    int *ok = arg;
    char pattern[2 * 102 + 1];
    gcn_buf *b = gcn_buf_new();
    for (int levels = 101; levels <= 102; levels++) {
        memset(pattern, '[', (size_t)levels);
        memset(pattern + levels, ']', (size_t)levels);
        pattern[2 * levels] = '\0';
        gcn_buf_reset(b);
        int built = gcn_build(b, pattern) == 0;
        int matched = built && gcn_match(gcn_buf_term(b), pattern);
        *ok &= levels == 101 ? built && matched : !built && !gcn_match(TERM(106), pattern);
    }
    gcn_buf_free(b);
}

static void test_depth(void)
{
    int ok = 1;
    CU_ASSERT_EQUAL(logged_lines(run_deep, &ok, "nested too deeply"), 2);
    CU_ASSERT(ok);
    /* a deep term against a shallow pattern: no recursion along the term */
    enum { DEEP = 1500 };
    unsigned char *deep = malloc(2 * DEEP + 1);
    CU_ASSERT_FATAL(deep != NULL);
    for (int k = 0; k < DEEP; k++) {
        deep[2 * k] = 104;
        deep[2 * k + 1] = 1;
    }
    deep[2 * DEEP] = 106;
    gcn_term t;
    CU_ASSERT(gcn_match(term_of(deep, 2 * DEEP + 1), "{{~t}}", &t) && t.len == 2 * DEEP - 3);
    CU_ASSERT(!gcn_match(term_of(deep, 2 * DEEP + 1), "{{{[]}}}"));
    free(deep);
}

/* ---- building ---- */

static void test_build(void)
{
    gcn_buf *b = gcn_buf_new();
    CU_ASSERT_FATAL(b != NULL);
    /* OTP {ok, 42} */
    WRITES(b, gcn_build(b, "{ok, ~i}", (int64_t)42), 104, 2, 119, 2, 111, 107, 97, 42);
    /* OTP {reply, true, nil} */
    WRITES(b, gcn_build(b, "{reply, true, nil}"), 104, 3, 119, 5, 114, 101, 112, 108, 121, 119,
           4, 116, 114, 117, 101, 119, 3, 110, 105, 108);
    /* OTP {a, [1, <<"b">>], #{k => -3}} */
    WRITES(b, gcn_build(b, "{a, [1, \"b\"], #{k => -3}}"), 104, 3, 119, 1, 97, 108, 0, 0, 0, 2,
           97, 1, 109, 0, 0, 0, 1, 98, 106, 116, 0, 0, 0, 1, 119, 1, 107, 98, 255, 255, 255, 253);
    /* OTP {<<"a\"b\\c">>, -123456789012} */
    WRITES(b, gcn_build(b, "{\"a\\\"b\\\\c\", -123456789012}"), 104, 2, 109, 0, 0, 0, 5, 97, 34,
           98, 92, 99, 110, 5, 1, 20, 26, 153, 190, 28);
    /* OTP #{a => [], <<"k">> => {1}} */
    WRITES(b, gcn_build(b, "#{a => ~t, ~s => {~u}}", TERM(106), "k", (uint64_t)1), 116, 0, 0, 0,
           2, 119, 1, 97, 106, 109, 0, 0, 0, 1, 107, 104, 1, 97, 1);
    /* OTP {error, {bad, <<"x">>}} */
    WRITES(b, gcn_build(b, "{error, {~a, ~b}}", "bad", "x!", (size_t)1), 104, 2, 119, 5, 101,
           114, 114, 111, 114, 104, 2, 119, 3, 98, 97, 100, 109, 0, 0, 0, 1, 120);
    /* OTP [-1, 3.0] */
    WRITES(b, gcn_build(b, "[-1, ~f]", 3.0), 108, 0, 0, 0, 2, 98, 255, 255, 255, 255, 70, 64, 8,
           0, 0, 0, 0, 0, 0, 106);
    WRITES(b, gcn_build(b, "{[], {}, #{}, \"\", ''}"), 104, 5, 106, 104, 0, 116, 0, 0, 0, 0, 109,
           0, 0, 0, 0, 119, 0);
    WRITES(b, gcn_build(b, "'Hi \\'\\\\'"), 119, 5, 72, 105, 32, 39, 92);
    WRITES(b, gcn_build(b, "'\xC3\xA9'"), 119, 2, 195, 169);                /* OTP 'é' */
    WRITES(b, gcn_build(b, "-18446744073709551615"), 110, 8, 1, 255, 255, 255, 255, 255, 255,
           255, 255);
    WRITES(b, gcn_build(b, "-0"), 97, 0);

    /* a build appends: two terms, the second alone is one */
    gcn_buf_reset(b);
    CU_ASSERT(gcn_build(b, "a") == 0 && gcn_build(b, "[b]") == 0);
    CU_ASSERT(!gcn_buf_ok_term(b, 0) && gcn_buf_ok_term(b, 3));

    /* a hole that no term holds: -1, and the buffer as it was (the header's
     * promise): nothing half-written, not failed, still usable */
    gcn_buf_reset(b);
    CU_ASSERT_EQUAL(gcn_build(b, "{ok, [~i, ~a]}", (int64_t)1, (const char *)NULL), -1);
    CU_ASSERT(!b->failed && gcn_buf_ei(b)->index == 0);
    CU_ASSERT(gcn_put_atom(b, "a") == 0);
    CU_ASSERT_EQUAL(gcn_build(b, "{~f}", NAN), -1);
    CU_ASSERT(!b->failed && gcn_buf_ok_term(b, 0));
    /* a buffer that had failed before stays failed */
    gcn_buf_reset(b);
    CU_ASSERT(gcn_put_atom(b, NULL) < 0 && b->failed);
    CU_ASSERT_EQUAL(gcn_build(b, "{~f}", NAN), -1);
    CU_ASSERT(b->failed);
    /* a lent buffer (the engine's {Tag, before the module's part) */
    gcn_buf_reset(b);
    CU_ASSERT(gcn_put_tuple(b, 2) == 0 && gcn_put_atom(b, "tag") == 0);
    gcn_buf_lend(b);
    CU_ASSERT(gcn_put_atom(b, "mine") == 0);
    gcn_term mine = gcn_buf_term(b);
    CU_ASSERT(mine.len == 6 && gcn_is_atom(mine, "mine"));
    gcn_buf_reset(b);
    CU_ASSERT_EQUAL(gcn_buf_term(b).len, 0);
    CU_ASSERT_EQUAL(gcn_buf_ei(b)->index, 7); /* {Tag, is left alone */
    gcn_buf_unlend(b);
    gcn_buf_free(b);
}

/* gcn_build, then gcn_match of what it wrote. */
static void test_round_trip(void)
{
    gcn_buf *b = gcn_buf_new();
    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_EQUAL(gcn_build(b, "{req, ~i, ~u, ~f, ~a, ~s, ~b, ~t, [1, -2, \"x\"], #{k => ~i}}",
                              (int64_t)INT64_MIN, (uint64_t)UINT64_MAX, -0.5, "\xE2\x98\xBA",
                              "text", "\0\1", (size_t)2, TERM(PID_BYTES), (int64_t)-77),
                    0);
    CU_ASSERT_FATAL(gcn_buf_ok_term(b, 0));
    int64_t i, k;
    uint64_t u;
    double f;
    char a[GCN_ATOM_MAX];
    gcn_bin s, bin;
    gcn_term pid;
    CU_ASSERT(gcn_match(gcn_buf_term(b), "{req, ~i, ~u, ~f, ~a, ~b, ~b, ~p, [1, -2, \"x\"], #{k => ~i}}",
                        &i, &u, &f, a, &s, &bin, &pid, &k));
    CU_ASSERT(i == INT64_MIN && u == UINT64_MAX && f == -0.5 && strcmp(a, "\xE2\x98\xBA") == 0);
    CU_ASSERT(s.len == 4 && memcmp(s.ptr, "text", 4) == 0);
    CU_ASSERT(bin.len == 2 && memcmp(bin.ptr, "\0\1", 2) == 0);
    CU_ASSERT(pid.len == 18 && k == -77);
    CU_ASSERT_EQUAL(gcn_type(gcn_buf_term(b)), GCN_TUPLE);
    gcn_buf_free(b);
}

/* ---- no read beyond a term ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* A view that came out of t lies inside it, or is a "string" byte (static). */
static int inside(gcn_term c, gcn_term t)
{
    return (c.ptr >= t.ptr && c.ptr + c.len <= t.ptr + t.len) ||
           (c.len == 2 && (unsigned char)c.ptr[0] == ERL_SMALL_INTEGER_EXT);
}

/* Every reader on t, which is in a buffer of exactly its size: 1 when all
 * that they hand back lies within t. */
static int probe(gcn_term t)
{
    int64_t i;
    uint64_t u;
    double f;
    char a[GCN_ATOM_MAX];
    gcn_bin bin;
    gcn_term c1 = {0}, c2 = {0}, c3 = {0}, e;
    gcn_iter it;
    int ok = 1;
    (void)gcn_type(t);
    (void)gcn_get_int(t, &i);
    (void)gcn_get_uint(t, &u);
    (void)gcn_get_double(t, &f);
    (void)gcn_get_atom(t, a);
    (void)gcn_is_atom(t, "ok");
    if (gcn_get_binary(t, &bin) == 0)
        ok &= bin.ptr >= t.ptr && bin.ptr + bin.len <= t.ptr + t.len;
    long (*iters[])(gcn_term, gcn_iter *) = {gcn_iter_tuple, gcn_iter_list, gcn_iter_map};
    for (size_t k = 0; k < 3; k++) {
        long n = iters[k](t, &it), seen = 0;
        while (gcn_next(&it, &e)) {
            ok &= inside(e, t) && gcn_type(e) != 0;
            seen++;
        }
        ok &= n < 0 ? seen == 0 : seen == (k == 2 ? 2 * n : n);
    }
    if (gcn_match(t, "{~t, ~t}", &c1, &c2))
        ok &= inside(c1, t) && inside(c2, t);
    if (gcn_match(t, "[_, ~t]", &c1))
        ok &= inside(c1, t);
    if (gcn_match(t, "#{a => ~t, 1 => [~i]}", &c1, &i))
        ok &= inside(c1, t);
    if (gcn_match(t, "{ok, [~a, ~b], #{\"k\" => ~l}, ~p, ~m}", a, &bin, &c1, &c2, &c3))
        ok &= inside(c1, t) && inside(c2, t) && inside(c3, t);
    (void)gcn_match(t, "{~i, ~u, ~f, '\xC3\xA9', [], \"ab\", -7, {_, _}}", &i, &u, &f);
    (void)gcn_match(t, "[1, 2]");
    if (gcn_match(t, "~l", &c1))
        ok &= gcn_type(c1) == GCN_LIST || gcn_type(c1) == GCN_NIL;
    return ok;
}

/* Copy p[0 .. n) into a buffer of exactly that size and probe it. */
static int probe_copy(const unsigned char *p, size_t n)
{
    unsigned char *copy = malloc(n ? n : 1);
    if (!copy)
        return 0;
    if (n)
        memcpy(copy, p, n);
    int ok = probe(term_of(copy, n));
    free(copy);
    return ok;
}

static void test_no_overread(void)
{
    /* seeds: what the writers make, and terms in other encodings */
    gcn_buf *b = gcn_buf_new();
    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT(gcn_build(b, "{ok, [~a, ~b], #{\"k\" => [1, {2}], a => ~t, 1 => [3]}, ~t, #{}}",
                        "x", "yz", (size_t)2, TERM(107, 0, 2, 1, 2), TERM(PID_BYTES)) == 0);
    CU_ASSERT(gcn_build(b, "{-5, 18446744073709551615, ~f, '\xC3\xA9', [], \"ab\", -7, {x, y}}",
                        1.5) == 0);
    gcn_term seeds[] = {
        TERM(104, 2, 100, 0, 1, 233, 108, 0, 0, 0, 1, 97, 1, 107, 0, 2, 3, 4),
        TERM(116, 0, 0, 0, 2, 115, 1, 97, 104, 0, 97, 1, 108, 0, 0, 0, 1, 98, 0, 0, 0, 0, 106),
        TERM(108, 0, 0, 0, 2, 97, 1, 97, 2, 106),
        TERM(108, 0, 0, 0, 1, 97, 1, 108, 0, 0, 0, 1, 97, 2, 107, 0, 2, 3, 4),
        TERM(107, 0, 2, 1, 2),
        TERM(111, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1),
        TERM(99, 49, 46, 53, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48,
             48, 48, 101, 43, 48, 48, 0, 0, 0, 0, 0),
        TERM(77, 0, 0, 0, 2, 8, 1, 2),
        {NULL, 0}, {NULL, 0}, /* the two terms gcn_build wrote */
    };
    size_t count = sizeof seeds / sizeof *seeds, first = 0;
    gcn_term built = gcn_buf_term(b);
    CU_ASSERT_FATAL(term_skip(built.ptr, built.len, &first, 100) == TERM_OK);
    seeds[count - 2] = (gcn_term){built.ptr, first};
    seeds[count - 1] = (gcn_term){built.ptr + first, built.len - first};

    unsigned failures = 0;
    for (size_t k = 0; k < count; k++) {
        CU_ASSERT(gcn_type(seeds[k]) != 0);
        for (size_t cut = 0; cut <= seeds[k].len; cut++) /* every truncation, and the whole */
            failures += !probe_copy((const unsigned char *)seeds[k].ptr, cut);
    }
    unsigned char work[256];
    for (int round = 0; round < 20000; round++) { /* bytes changed, and cut */
        gcn_term s = seeds[rng() % count];
        size_t n = s.len;
        memcpy(work, s.ptr, n);
        for (int flips = 1 + (int)(rng() % 3); flips > 0; flips--)
            work[rng() % n] = (unsigned char)(rng() % 4 ? rng() : rng() % 8);
        if (rng() % 4 == 0)
            n = rng() % (n + 1);
        failures += !probe_copy(work, n);
    }
    static const unsigned char tags[] = {97,  98,  99,  70,  100, 104, 105, 106, 107, 108,
                                         109, 110, 111, 115, 116, 118, 119, 77,  88};
    for (int round = 0; round < 5000; round++) { /* random bytes behind a real tag */
        size_t n = 1 + rng() % 24;
        work[0] = tags[rng() % sizeof tags];
        for (size_t j = 1; j < n; j++)
            work[j] = (unsigned char)(rng() % 3 ? rng() % 8 : rng());
        failures += !probe_copy(work, n);
    }
    CU_ASSERT_EQUAL(failures, 0);
    gcn_buf_free(b);
}

void unit_suite_term_api(void)
{
    CU_pSuite suite = CU_add_suite("term_api", NULL, NULL);
    if (!suite)
        return;
    CU_add_test(suite, "writers: scalars as OTP writes them", test_put_scalars);
    CU_add_test(suite, "writers: compounds and gcn_error", test_put_compounds);
    CU_add_test(suite, "writers: ei decodes what they write", test_put_ei_decodes);
    CU_add_test(suite, "writers: values no term holds", test_put_refused);
    CU_add_test(suite, "gcn_buf.h: embedding, growth, one term", test_buf_internals);
    CU_add_test(suite, "gcn_type", test_type);
    CU_add_test(suite, "integers and floats", test_get_integers);
    CU_add_test(suite, "atoms and binaries", test_get_atoms_binaries);
    CU_add_test(suite, "iterators", test_iterators);
    CU_add_test(suite, "match: every capture", test_match_captures);
    CU_add_test(suite, "match: what does not match", test_match_refused);
    CU_add_test(suite, "match: lists, strings, atoms", test_match_lists_atoms_strings);
    CU_add_test(suite, "match: maps", test_match_maps);
    CU_add_test(suite, "malformed patterns and templates", test_malformed);
    CU_add_test(suite, "template depth", test_depth);
    CU_add_test(suite, "gcn_build", test_build);
    CU_add_test(suite, "round trip build -> match", test_round_trip);
    CU_add_test(suite, "no read beyond a term", test_no_overread);
}

/*
 * test_term.c: term_skip and term_canonical. Alternative encodings are built
 * by hand and must canonicalise to the same bytes; the expected bytes marked
 * "OTP" are what OTP 25 gives for term_to_binary(T, [{minor_version, 2}])
 * (the OTP 26+ default, UTF-8 atoms), less the 131 version byte.
 */
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen_cnode.h"
#include "term.h"
#include "unit.h"

#define ARR(a) (a), sizeof(a)

/* ---- expected bytes from OTP 25 ---- */

/* foo */
static const unsigned char otp_foo[] = {119, 3, 102, 111, 111};
/* list_to_atom([233]), the atom 'é' */
static const unsigned char otp_e_acute[] = {119, 2, 195, 169};
/* 1 */
static const unsigned char otp_one[] = {97, 1};
/* -1 */
static const unsigned char otp_minus_one[] = {98, 255, 255, 255, 255};
/* 256 */
static const unsigned char otp_i256[] = {98, 0, 0, 1, 0};
/* -2147483648 */
static const unsigned char otp_int32_min[] = {98, 128, 0, 0, 0};
/* 2147483647 */
static const unsigned char otp_int32_max[] = {98, 127, 255, 255, 255};
/* 2147483648 */
static const unsigned char otp_two_pow_31[] = {110, 4, 0, 0, 0, 0, 128};
/* -2147483649 */
static const unsigned char otp_minus_two_pow_31_minus_1[] = {110, 4, 1, 1, 0, 0, 128};
/* 1 bsl 40 */
static const unsigned char otp_two_pow_40[] = {110, 6, 0, 0, 0, 0, 0, 0, 1};
/* -(1 bsl 40) */
static const unsigned char otp_minus_two_pow_40[] = {110, 6, 1, 0, 0, 0, 0, 0, 1};
/* "abc" */
static const unsigned char otp_abc[] = {107, 0, 3, 97, 98, 99};
/* #{a => 1, b => 2} */
static const unsigned char otp_map_ab[] = {116, 0, 0, 0, 2, 119, 1, 97, 97, 1, 119, 1, 98, 97, 2};
/* binary_to_term of a NEW_PID_EXT: node 'n@h', id 7, serial 2, creation 3 */
static const unsigned char otp_pid[] = {88, 119, 3, 110, 64, 104, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0, 3};
/* a port of 'n@h', id 9, creation 3 */
static const unsigned char otp_port[] = {89, 119, 3, 110, 64, 104, 0, 0, 0, 9, 0, 0, 0, 3};
/* a port of 'n@h', id 1 bsl 28, creation 3: OTP switches to V4_PORT_EXT above 28 bits */
static const unsigned char otp_big_port[] = {120, 119, 3, 110, 64, 104, 0, 0, 0, 0,
                                             16, 0, 0, 0, 0, 0, 0, 3};
/* a ref of 'n@h', creation 3, one id word 5 */
static const unsigned char otp_ref[] = {90, 0, 1, 119, 3, 110, 64, 104, 0, 0, 0, 3, 0, 0, 0, 5};
/* a ref of 'n@h', creation 3, id words 5, 6, 7 */
static const unsigned char otp_ref3[] = {90, 0, 3, 119, 3, 110, 64, 104, 0, 0, 0, 3,
                                         0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0, 7};
/* <<5:3>> */
static const unsigned char otp_bits5_3[] = {77, 0, 0, 0, 1, 3, 160};
/* <<"ab">> */
static const unsigned char otp_bin_ab[] = {109, 0, 0, 0, 2, 97, 98};
/* 1.0 */
static const unsigned char otp_float_one[] = {70, 63, 240, 0, 0, 0, 0, 0, 0};
/* 0.0 */
static const unsigned char otp_zero_f[] = {70, 0, 0, 0, 0, 0, 0, 0, 0};
/* -0.0 */
static const unsigned char otp_neg_zero_f[] = {70, 128, 0, 0, 0, 0, 0, 0, 0};
/* [1|2] */
static const unsigned char otp_improper[] = {108, 0, 0, 0, 1, 97, 1, 97, 2};
/* [1,2] */
static const unsigned char otp_list12[] = {107, 0, 2, 1, 2};
/* {1} */
static const unsigned char otp_tuple1[] = {104, 1, 97, 1};
/* [1] */
static const unsigned char otp_list1[] = {107, 0, 1, 1};
/* <<"a">> */
static const unsigned char otp_bin_a[] = {109, 0, 0, 0, 1, 97};
/* a */
static const unsigned char otp_atom_a[] = {119, 1, 97};
/* [] */
static const unsigned char otp_nil[] = {106};
/* <<>> */
static const unsigned char otp_empty_bin[] = {109, 0, 0, 0, 0};
/* fun m:f/2 */
static const unsigned char otp_export[] = {113, 119, 1, 109, 119, 1, 102, 97, 2};
/* [256] */
static const unsigned char otp_list_256[] = {108, 0, 0, 0, 1, 98, 0, 0, 1, 0, 106};
/* {a, "b", [], <<>>, 3.5} */
static const unsigned char otp_tuple_mixed[] = {104, 5, 119, 1, 97, 107, 0, 1, 98, 106, 109, 0, 0,
                                                0, 0, 70, 64, 12, 0, 0, 0, 0, 0, 0};
/* binary_to_term of the fun fun_old below (module m, index 0, uniq 7, one
 * free variable "ab", pid of 'n@h') re-encoded by term_to_binary */
static const unsigned char otp_fun[] = {
    112, 0, 0, 0, 59, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0, 0, 0, 0, 0, 0,
    0, 1, 119, 1, 109, 97, 0, 97, 7, 88, 119, 3, 110, 64, 104, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0,
    3, 107, 0, 2, 97, 98};

/* ---- helpers ---- */

static void print_hex(const char *what, const unsigned char *p, size_t n)
{
    fprintf(stderr, "\n    %s (%zu):", what, n);
    for (size_t i = 0; i < n && i < 64; i++)
        fprintf(stderr, " %u", p[i]);
    if (n > 64)
        fprintf(stderr, " ...");
}

/* Canonicalise in[0 .. len) into out (fresh); return the rc. On success the
 * whole input must have been consumed. */
static int canon(const unsigned char *in, size_t len, unsigned max_depth, ei_x_buff *out)
{
    size_t index = 0;
    CU_ASSERT_FATAL(ei_x_new(out) == 0);
    int rc = term_canonical((const char *)in, len, &index, max_depth, out);
    if (rc == TERM_OK) {
        CU_ASSERT_EQUAL(index, len);
    } else {
        CU_ASSERT_EQUAL(out->index, 0);
    }
    return rc;
}

static int skip_rc(const unsigned char *in, size_t len, unsigned max_depth)
{
    size_t index = 0;
    int rc = term_skip((const char *)in, len, &index, max_depth);
    if (rc == TERM_OK) {
        CU_ASSERT_EQUAL(index, len);
    }
    return rc;
}

static int canon_rc(const unsigned char *in, size_t len, unsigned max_depth)
{
    ei_x_buff out;
    int rc = canon(in, len, max_depth, &out);
    ei_x_free(&out);
    return rc;
}

/* in canonicalises to exactly want, term_skip accepts it, and want is its
 * own canonical form. */
static void check_canon(const unsigned char *in, size_t len, const unsigned char *want,
                        size_t want_len)
{
    ei_x_buff out;
    int rc = canon(in, len, 64, &out);
    CU_ASSERT_EQUAL(rc, TERM_OK);
    CU_ASSERT_EQUAL(skip_rc(in, len, 64), TERM_OK);
    int same = rc == TERM_OK && (size_t)out.index == want_len &&
               memcmp(out.buff, want, want_len) == 0;
    CU_ASSERT(same);
    if (!same) {
        print_hex("input", in, len);
        print_hex("got", (const unsigned char *)out.buff, (size_t)out.index);
        print_hex("want", want, want_len);
    }
    ei_x_free(&out);

    rc = canon(want, want_len, 64, &out);
    CU_ASSERT(rc == TERM_OK && (size_t)out.index == want_len &&
              memcmp(out.buff, want, want_len) == 0);
    ei_x_free(&out);
}

/* a and b canonicalise fine, to different bytes. */
static void check_distinct(const unsigned char *a, size_t alen, const unsigned char *b,
                           size_t blen)
{
    ei_x_buff x, y;
    CU_ASSERT_EQUAL(canon(a, alen, 64, &x), TERM_OK);
    CU_ASSERT_EQUAL(canon(b, blen, 64, &y), TERM_OK);
    CU_ASSERT(x.index != y.index || memcmp(x.buff, y.buff, (size_t)x.index) != 0);
    ei_x_free(&x);
    ei_x_free(&y);
}

/* ---- atoms ---- */

static void test_atoms(void)
{
    static const unsigned char atom[] = {100, 0, 3, 'f', 'o', 'o'};
    static const unsigned char small_atom[] = {115, 3, 'f', 'o', 'o'};
    static const unsigned char atom_utf8[] = {118, 0, 3, 'f', 'o', 'o'};
    static const unsigned char small_atom_utf8[] = {119, 3, 'f', 'o', 'o'};
    check_canon(ARR(atom), ARR(otp_foo));
    check_canon(ARR(small_atom), ARR(otp_foo));
    check_canon(ARR(atom_utf8), ARR(otp_foo));
    check_canon(ARR(small_atom_utf8), ARR(otp_foo));

    static const unsigned char e_latin1[] = {100, 0, 1, 0xE9};
    static const unsigned char e_small_latin1[] = {115, 1, 0xE9};
    static const unsigned char e_utf8[] = {118, 0, 2, 0xC3, 0xA9};
    check_canon(ARR(e_latin1), ARR(otp_e_acute));
    check_canon(ARR(e_small_latin1), ARR(otp_e_acute));
    check_canon(ARR(e_utf8), ARR(otp_e_acute));

    static const unsigned char empty[] = {100, 0, 0};
    static const unsigned char empty_canon[] = {119, 0};
    check_canon(ARR(empty), ARR(empty_canon));
}

static void test_atom_limits(void)
{
    /* 255 latin1 'é' is 510 bytes of UTF-8: ATOM_UTF8_EXT. */
    unsigned char in[3 + 255], want[3 + 510];
    in[0] = 100, in[1] = 0, in[2] = 255;
    memset(in + 3, 0xE9, 255);
    want[0] = 118, want[1] = 510 >> 8, want[2] = 510 & 0xFF;
    for (int i = 0; i < 255; i++)
        want[3 + 2 * i] = 0xC3, want[4 + 2 * i] = 0xA9;
    check_canon(ARR(in), ARR(want));

    /* 256 characters is more than the BEAM allows. */
    unsigned char too_long[3 + 256];
    too_long[0] = 100, too_long[1] = 1, too_long[2] = 0;
    memset(too_long + 3, 'a', 256);
    CU_ASSERT_EQUAL(canon_rc(ARR(too_long), 64), TERM_EBAD);
    CU_ASSERT_EQUAL(skip_rc(ARR(too_long), 64), TERM_EBAD);

    /* Invalid UTF-8: an overlong 'a', a surrogate, past U+10FFFF, a lone continuation. */
    static const unsigned char overlong[] = {119, 2, 0xC1, 0xA1};
    static const unsigned char surrogate[] = {119, 3, 0xED, 0xA0, 0x80};
    static const unsigned char too_high[] = {119, 4, 0xF4, 0x90, 0x80, 0x80};
    static const unsigned char lone[] = {119, 1, 0x80};
    static const unsigned char cut[] = {119, 2, 0xE2, 0x82};
    CU_ASSERT_EQUAL(canon_rc(ARR(overlong), 64), TERM_EBAD);
    CU_ASSERT_EQUAL(canon_rc(ARR(surrogate), 64), TERM_EBAD);
    CU_ASSERT_EQUAL(canon_rc(ARR(too_high), 64), TERM_EBAD);
    CU_ASSERT_EQUAL(canon_rc(ARR(lone), 64), TERM_EBAD);
    CU_ASSERT_EQUAL(canon_rc(ARR(cut), 64), TERM_EBAD);
    static const unsigned char max_cp[] = {119, 4, 0xF4, 0x8F, 0xBF, 0xBF};
    check_canon(ARR(max_cp), ARR(max_cp));
}

/* ---- integers ---- */

static void test_integers(void)
{
    static const unsigned char one_small[] = {97, 1};
    static const unsigned char one_int[] = {98, 0, 0, 0, 1};
    static const unsigned char one_big[] = {110, 1, 0, 1};
    static const unsigned char one_big_zeros[] = {110, 4, 0, 1, 0, 0, 0};
    static const unsigned char one_large_big[] = {111, 0, 0, 0, 2, 0, 1, 0};
    check_canon(ARR(one_small), ARR(otp_one));
    check_canon(ARR(one_int), ARR(otp_one));
    check_canon(ARR(one_big), ARR(otp_one));
    check_canon(ARR(one_big_zeros), ARR(otp_one));
    check_canon(ARR(one_large_big), ARR(otp_one));

    static const unsigned char m1_int[] = {98, 255, 255, 255, 255};
    static const unsigned char m1_big[] = {110, 1, 1, 1};
    static const unsigned char m1_big_zeros[] = {110, 3, 1, 1, 0, 0};
    check_canon(ARR(m1_int), ARR(otp_minus_one));
    check_canon(ARR(m1_big), ARR(otp_minus_one));
    check_canon(ARR(m1_big_zeros), ARR(otp_minus_one));

    static const unsigned char p40_small[] = {110, 6, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char p40_large[] = {111, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char p40_zeros[] = {111, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 1, 0, 0};
    check_canon(ARR(p40_small), ARR(otp_two_pow_40));
    check_canon(ARR(p40_large), ARR(otp_two_pow_40));
    check_canon(ARR(p40_zeros), ARR(otp_two_pow_40));
    static const unsigned char m40_large[] = {111, 0, 0, 0, 6, 1, 0, 0, 0, 0, 0, 1};
    check_canon(ARR(m40_large), ARR(otp_minus_two_pow_40));

    /* The int32 boundaries. */
    static const unsigned char i256_big[] = {110, 2, 0, 0, 1};
    static const unsigned char max_big[] = {110, 4, 0, 255, 255, 255, 127};
    static const unsigned char min_big[] = {110, 4, 1, 0, 0, 0, 128};
    static const unsigned char p31_big[] = {110, 5, 0, 0, 0, 0, 128, 0};
    static const unsigned char m31m1_big[] = {111, 0, 0, 0, 4, 1, 1, 0, 0, 128};
    check_canon(ARR(otp_i256), ARR(otp_i256));
    check_canon(ARR(i256_big), ARR(otp_i256));
    check_canon(ARR(max_big), ARR(otp_int32_max));
    check_canon(ARR(min_big), ARR(otp_int32_min));
    check_canon(ARR(p31_big), ARR(otp_two_pow_31));
    check_canon(ARR(m31m1_big), ARR(otp_minus_two_pow_31_minus_1));
    static const unsigned char int_255[] = {98, 0, 0, 0, 255};
    static const unsigned char small_255[] = {97, 255};
    check_canon(ARR(int_255), ARR(small_255));

    /* Zero, and negative zero, however written. */
    static const unsigned char zero[] = {97, 0};
    static const unsigned char zero_big[] = {110, 0, 0};
    static const unsigned char neg_zero_big[] = {110, 0, 1};
    static const unsigned char neg_zero_big_digits[] = {110, 2, 1, 0, 0};
    static const unsigned char zero_int[] = {98, 0, 0, 0, 0};
    check_canon(ARR(zero_big), ARR(zero));
    check_canon(ARR(neg_zero_big), ARR(zero));
    check_canon(ARR(neg_zero_big_digits), ARR(zero));
    check_canon(ARR(zero_int), ARR(zero));

    static const unsigned char bad_sign[] = {110, 1, 2, 1};
    static const unsigned char bad_sign_large[] = {111, 0, 0, 0, 1, 7, 1};
    CU_ASSERT_EQUAL(canon_rc(ARR(bad_sign), 64), TERM_EBAD);
    CU_ASSERT_EQUAL(canon_rc(ARR(bad_sign_large), 64), TERM_EBAD);
}

static void test_large_big(void)
{
    /* 1 bsl 2048: 257 digit bytes, so LARGE_BIG_EXT (as OTP writes it). */
    unsigned char want[6 + 257];
    want[0] = 111, want[1] = 0, want[2] = 0, want[3] = 1, want[4] = 1, want[5] = 0;
    memset(want + 6, 0, 257);
    want[6 + 256] = 1;
    unsigned char padded[6 + 300];
    padded[0] = 111, padded[1] = 0, padded[2] = 0, padded[3] = 300 >> 8, padded[4] = 300 & 0xFF;
    padded[5] = 0;
    memset(padded + 6, 0, 300);
    padded[6 + 256] = 1;
    check_canon(ARR(padded), ARR(want));

    /* 255 digit bytes stay a SMALL_BIG_EXT. */
    unsigned char small[3 + 255], large[6 + 255];
    small[0] = 110, small[1] = 255, small[2] = 1;
    large[0] = 111, large[1] = 0, large[2] = 0, large[3] = 0, large[4] = 255, large[5] = 1;
    for (int i = 0; i < 255; i++)
        small[3 + i] = large[6 + i] = (unsigned char)(i + 1);
    check_canon(ARR(large), ARR(small));

    /* The BEAM decodes 4,194,296 digit bytes at most (BIG_ARITY_MAX words),
     * and refuses more even when the top ones are zeros: so does the walk. */
    for (size_t n = 4194295; n <= 4194297; n++) {
        unsigned char *big = calloc(1, 6 + n);
        CU_ASSERT_FATAL(big != NULL);
        big[0] = 111, big[1] = (unsigned char)(n >> 24), big[2] = (unsigned char)(n >> 16);
        big[3] = (unsigned char)(n >> 8), big[4] = (unsigned char)n, big[5] = 0;
        big[6] = 1; /* the value 1, and zeros above it */
        CU_ASSERT_EQUAL(skip_rc(big, 6 + n, 8), n <= 4194296 ? TERM_OK : TERM_EBAD);
        CU_ASSERT_EQUAL(canon_rc(big, 6 + n, 8), n <= 4194296 ? TERM_OK : TERM_EBAD);
        free(big);
    }
}

/* ---- floats ---- */

static void float_text(unsigned char out[32], const char *text)
{
    memset(out, 0, 32);
    out[0] = 99;
    memcpy(out + 1, text, strlen(text));
}

/* A module may call setlocale: FLOAT_EXT's text still reads as the BEAM
 * wrote it. The locale is built for the test (localedef, from the libc's
 * sources), as a fresh machine has none but C. */
static void test_floats_comma_locale(void)
{
    char dir[] = "/tmp/gcn_locale_XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "localedef -i de_DE -f UTF-8 %s/de_DE.UTF-8 >/dev/null 2>&1", dir);
    if (system(cmd) != 0) /* (it exits 1 on mere warnings: the setlocale below decides) */
        fprintf(stderr, "test_term: localedef de_DE.UTF-8 said something (tools/ensure-deps installs locales)\n");
    setenv("LOCPATH", dir, 1);
    const char *set = setlocale(LC_NUMERIC, "de_DE.UTF-8");
    CU_ASSERT_PTR_NOT_NULL(set); /* no comma locale: the test fails, it does not pass unrun */
    if (set) {
        CU_ASSERT_EQUAL(localeconv()->decimal_point[0], ',');
        unsigned char text[32];
        static const unsigned char one_half[] = {70, 0x3F, 0xF8, 0, 0, 0, 0, 0, 0};
        float_text(text, "1.50000000000000000000e+00");
        check_canon(ARR(text), ARR(one_half));
        CU_ASSERT_EQUAL(skip_rc(ARR(text), 64), TERM_OK);
        double d = 0;
        CU_ASSERT_EQUAL(gcn_get_double((gcn_term){(const char *)text, sizeof text}, &d), 0);
        CU_ASSERT_EQUAL(d, 1.5);
    }
    setlocale(LC_NUMERIC, "C");
    unsetenv("LOCPATH");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

static void test_floats(void)
{
    unsigned char text[32];
    float_text(text, "1.00000000000000000000e+00");
    check_canon(ARR(text), ARR(otp_float_one));
    check_canon(ARR(otp_float_one), ARR(otp_float_one));

    float_text(text, "-0.00000000000000000000e+00");
    check_canon(ARR(text), ARR(otp_neg_zero_f));
    float_text(text, "0.0");
    check_canon(ARR(text), ARR(otp_zero_f));
    static const unsigned char one_half[] = {70, 0x3F, 0xF8, 0, 0, 0, 0, 0, 0};
    float_text(text, "1,5");
    check_canon(ARR(text), ARR(one_half));
    float_text(text, "+15.0E-1");
    check_canon(ARR(text), ARR(one_half));

    /* Garbage after the NUL is ignored, as the BEAM does. */
    float_text(text, "1.5");
    text[10] = 'x';
    check_canon(ARR(text), ARR(one_half));

    static const char *const bad[] = {"inf", "nan", "1", "1.", ".5", "1e5", "0x1p0",
                                      " 1.5", "1.5 ", "1.5e", "1e400", "1.0e400", "-", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        float_text(text, bad[i]);
        CU_ASSERT_EQUAL(canon_rc(ARR(text), 64), TERM_EBAD);
        CU_ASSERT_EQUAL(skip_rc(ARR(text), 64), TERM_EBAD);
    }
    /* 31 characters and no NUL at all. */
    memset(text + 1, '1', 31);
    text[2] = '.';
    CU_ASSERT_EQUAL(canon_rc(ARR(text), 64), TERM_OK);

    static const unsigned char inf[] = {70, 0x7F, 0xF0, 0, 0, 0, 0, 0, 0};
    static const unsigned char minus_inf[] = {70, 0xFF, 0xF0, 0, 0, 0, 0, 0, 0};
    static const unsigned char nan[] = {70, 0x7F, 0xF8, 0, 0, 0, 0, 0, 0};
    static const unsigned char nan2[] = {70, 0xFF, 0xFF, 0, 0, 0, 0, 0, 1};
    CU_ASSERT_EQUAL(canon_rc(ARR(inf), 64), TERM_EBAD);
    CU_ASSERT_EQUAL(canon_rc(ARR(minus_inf), 64), TERM_EBAD);
    CU_ASSERT_EQUAL(canon_rc(ARR(nan), 64), TERM_EBAD);
    CU_ASSERT_EQUAL(canon_rc(ARR(nan2), 64), TERM_EBAD);
    CU_ASSERT_EQUAL(skip_rc(ARR(nan), 64), TERM_EBAD);
    static const unsigned char max_finite[] = {70, 0x7F, 0xEF, 255, 255, 255, 255, 255, 255};
    check_canon(ARR(max_finite), ARR(max_finite));
}

/* ---- lists ---- */

static void test_lists(void)
{
    static const unsigned char abc_list[] = {108, 0, 0, 0, 3, 97, 97, 97, 98, 97, 99, 106};
    static const unsigned char abc_nested[] = {108, 0, 0, 0, 1, 97, 97, 107, 0, 2, 98, 99};
    static const unsigned char abc_ints[] = {108, 0, 0, 0, 2, 98, 0, 0, 0, 97, 110, 1, 0, 98,
                                             108, 0, 0, 0, 1, 97, 99, 106};
    /* [a | [ | [b | "c"]]]: an empty LIST_EXT segment inside the spine. */
    static const unsigned char abc_segments[] = {108, 0, 0, 0, 1, 97, 97, 108, 0, 0, 0, 0,
                                                 108, 0, 0, 0, 1, 97, 98, 107, 0, 1, 99};
    check_canon(ARR(otp_abc), ARR(otp_abc));
    check_canon(ARR(abc_list), ARR(otp_abc));
    check_canon(ARR(abc_nested), ARR(otp_abc));
    check_canon(ARR(abc_ints), ARR(otp_abc));
    check_canon(ARR(abc_segments), ARR(otp_abc));

    static const unsigned char empty_string[] = {107, 0, 0};
    static const unsigned char empty_list[] = {108, 0, 0, 0, 0, 106};
    check_canon(ARR(empty_string), ARR(otp_nil));
    check_canon(ARR(empty_list), ARR(otp_nil));
    /* LIST_EXT of no elements is its tail, as binary_to_term has it. */
    static const unsigned char only_tail[] = {108, 0, 0, 0, 0, 100, 0, 1, 'a'};
    check_canon(ARR(only_tail), ARR(otp_atom_a));

    static const unsigned char l256[] = {108, 0, 0, 0, 1, 110, 2, 0, 0, 1, 107, 0, 0};
    check_canon(ARR(l256), ARR(otp_list_256));
    static const unsigned char improper[] = {108, 0, 0, 0, 1, 98, 0, 0, 0, 1, 97, 2};
    check_canon(ARR(improper), ARR(otp_improper));
    /* [1 | [2 | 3]] written as two segments is [1, 2 | 3]. */
    static const unsigned char improper2[] = {108, 0, 0, 0, 1, 97, 1, 108, 0, 0, 0, 1, 97, 2, 97, 3};
    static const unsigned char improper2_canon[] = {108, 0, 0, 0, 2, 97, 1, 97, 2, 97, 3};
    check_canon(ARR(improper2), ARR(improper2_canon));
    /* A list holding a string: the inner one is an element, not the spine. */
    static const unsigned char nested[] = {108, 0, 0, 0, 1, 107, 0, 1, 'x', 106};
    static const unsigned char nested_canon[] = {108, 0, 0, 0, 1, 107, 0, 1, 'x', 106};
    check_canon(ARR(nested), ARR(nested_canon));

    static const unsigned char mixed[] = {104, 5, 100, 0, 1, 'a', 108, 0, 0, 0, 1, 97, 'b', 106,
                                          108, 0, 0, 0, 0, 106, 77, 0, 0, 0, 0, 0,
                                          70, 64, 12, 0, 0, 0, 0, 0, 0};
    check_canon(ARR(mixed), ARR(otp_tuple_mixed));

    static const unsigned char no_tail[] = {108, 0, 0, 0, 1, 97, 1};
    CU_ASSERT_EQUAL(canon_rc(ARR(no_tail), 64), TERM_EBAD);
}

/* A list of n copies of the byte b, as one LIST_EXT of SMALL_INTEGER_EXTs. */
static unsigned char *byte_list(size_t n, unsigned char b, size_t *len)
{
    *len = 5 + 2 * n + 1;
    unsigned char *p = malloc(*len);
    CU_ASSERT_FATAL(p != NULL);
    p[0] = 108, p[1] = (unsigned char)(n >> 24), p[2] = (unsigned char)(n >> 16);
    p[3] = (unsigned char)(n >> 8), p[4] = (unsigned char)n;
    for (size_t i = 0; i < n; i++)
        p[5 + 2 * i] = 97, p[6 + 2 * i] = b;
    p[*len - 1] = 106;
    return p;
}

static void test_string_limit(void)
{
    size_t len;
    ei_x_buff out;
    /* 65535 byte-sized elements: STRING_EXT. */
    unsigned char *in = byte_list(65535, 'z', &len);
    CU_ASSERT_EQUAL(canon(in, len, 1, &out), TERM_OK);
    CU_ASSERT_EQUAL(out.index, 3 + 65535);
    CU_ASSERT((unsigned char)out.buff[0] == 107 && (unsigned char)out.buff[1] == 255 &&
              (unsigned char)out.buff[2] == 255 && out.buff[3 + 65534] == 'z');
    ei_x_free(&out);
    free(in);

    /* 65536: a LIST_EXT again, the same as the input. */
    in = byte_list(65536, 'z', &len);
    CU_ASSERT_EQUAL(canon(in, len, 1, &out), TERM_OK);
    CU_ASSERT((size_t)out.index == len && memcmp(out.buff, in, len) == 0);
    ei_x_free(&out);
    free(in);
}

static void test_flat_list(void)
{
    /* 1,000,000 small integers, max_depth 10. */
    size_t len;
    unsigned char *in = byte_list(1000000, 7, &len);
    ei_x_buff out;
    CU_ASSERT_EQUAL(canon(in, len, 10, &out), TERM_OK);
    CU_ASSERT((size_t)out.index == len && memcmp(out.buff, in, len) == 0);
    CU_ASSERT_EQUAL(skip_rc(in, len, 10), TERM_OK);
    ei_x_free(&out);
    free(in);

    /* The same list as 1,000,000 one-element LIST_EXT segments, each the
     * tail of the one before: the spine must not recurse either. */
    size_t n = 1000000;
    len = 7 * n + 1;
    in = malloc(len);
    CU_ASSERT_FATAL(in != NULL);
    for (size_t i = 0; i < n; i++) {
        unsigned char seg[7] = {108, 0, 0, 0, 1, 97, 7};
        memcpy(in + 7 * i, seg, sizeof seg);
    }
    in[len - 1] = 106;
    size_t flat_len;
    unsigned char *flat = byte_list(n, 7, &flat_len);
    CU_ASSERT_EQUAL(canon(in, len, 10, &out), TERM_OK);
    CU_ASSERT((size_t)out.index == flat_len && memcmp(out.buff, flat, flat_len) == 0);
    CU_ASSERT_EQUAL(skip_rc(in, len, 10), TERM_OK);
    ei_x_free(&out);
    free(flat);
    free(in);
}

/* ---- maps ---- */

static void test_maps(void)
{
    static const unsigned char ab[] = {116, 0, 0, 0, 2, 100, 0, 1, 'a', 97, 1,
                                       100, 0, 1, 'b', 98, 0, 0, 0, 2};
    static const unsigned char ba[] = {116, 0, 0, 0, 2, 115, 1, 'b', 97, 2,
                                       118, 0, 1, 'a', 110, 1, 0, 1};
    check_canon(ARR(ab), ARR(otp_map_ab));
    check_canon(ARR(ba), ARR(otp_map_ab));

    /* The same key twice, in two encodings. */
    static const unsigned char dup[] = {116, 0, 0, 0, 2, 100, 0, 1, 'a', 97, 1,
                                        119, 1, 'a', 97, 2};
    CU_ASSERT_EQUAL(canon_rc(ARR(dup), 64), TERM_EBAD);
    /* 1 and 1.0 are different keys. */
    static const unsigned char int_float[] = {116, 0, 0, 0, 2, 97, 1, 106,
                                              70, 63, 240, 0, 0, 0, 0, 0, 0, 106};
    CU_ASSERT_EQUAL(canon_rc(ARR(int_float), 64), TERM_OK);
    /* A repeated key inside a nested map is found too. */
    static const unsigned char nested_dup[] = {116, 0, 0, 0, 1, 97, 1, 116, 0, 0, 0, 2,
                                               97, 5, 106, 98, 0, 0, 0, 5, 106};
    CU_ASSERT_EQUAL(canon_rc(ARR(nested_dup), 64), TERM_EBAD);

    /* Maps as keys: inner maps are sorted before the outer one. */
    static const unsigned char map_keys[] = {116, 0, 0, 0, 2,
                                             116, 0, 0, 0, 2, 97, 2, 106, 97, 1, 106, 97, 9,
                                             116, 0, 0, 0, 1, 97, 0, 106, 97, 8};
    static const unsigned char map_keys_canon[] = {116, 0, 0, 0, 2,
                                                   116, 0, 0, 0, 1, 97, 0, 106, 97, 8,
                                                   116, 0, 0, 0, 2, 97, 1, 106, 97, 2, 106, 97, 9};
    check_canon(ARR(map_keys), ARR(map_keys_canon));

    static const unsigned char empty[] = {116, 0, 0, 0, 0};
    check_canon(ARR(empty), ARR(empty));
}

/* ---- pids, ports, refs ---- */

static void test_pids(void)
{
    static const unsigned char pid_old[] = {103, 100, 0, 3, 'n', '@', 'h', 0, 0, 0, 7, 0, 0, 0, 2, 3};
    static const unsigned char pid_new[] = {88, 115, 3, 'n', '@', 'h', 0, 0, 0, 7, 0, 0, 0, 2,
                                            0, 0, 0, 3};
    check_canon(ARR(pid_old), ARR(otp_pid));
    check_canon(ARR(pid_new), ARR(otp_pid));
    /* The node must be an atom. */
    static const unsigned char pid_bad_node[] = {88, 97, 1, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0, 3};
    CU_ASSERT_EQUAL(canon_rc(ARR(pid_bad_node), 64), TERM_EBAD);
    static const unsigned char pid_cached_node[] = {88, 82, 0, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0, 3};
    CU_ASSERT_EQUAL(canon_rc(ARR(pid_cached_node), 64), TERM_EUNSUPPORTED);
    /* The old tags' creation byte has two significant bits: binary_to_term
     * refuses more (a fuzzer found the walker keeping all eight). */
    static const unsigned char pid_old_creation_4[] = {103, 100, 0, 3, 'n', '@', 'h', 0, 0, 0, 7, 0, 0, 0, 2, 4};
    static const unsigned char port_old_creation_46[] = {102, 100, 0, 3, 'n', '@', 'h', 0, 0, 0, 9, 46};
    static const unsigned char ref_old_creation_255[] = {101, 100, 0, 3, 'n', '@', 'h', 0, 0, 0, 5, 255};
    CU_ASSERT_EQUAL(canon_rc(ARR(pid_old_creation_4), 64), TERM_EBAD);
    CU_ASSERT_EQUAL(canon_rc(ARR(port_old_creation_46), 64), TERM_EBAD);
    CU_ASSERT_EQUAL(canon_rc(ARR(ref_old_creation_255), 64), TERM_EBAD);
}

static void test_ports(void)
{
    static const unsigned char port_old[] = {102, 100, 0, 3, 'n', '@', 'h', 0, 0, 0, 9, 3};
    static const unsigned char port_new[] = {89, 118, 0, 3, 'n', '@', 'h', 0, 0, 0, 9, 0, 0, 0, 3};
    static const unsigned char port_v4[] = {120, 119, 3, 'n', '@', 'h', 0, 0, 0, 0, 0, 0, 0, 9,
                                            0, 0, 0, 3};
    check_canon(ARR(port_old), ARR(otp_port));
    check_canon(ARR(port_new), ARR(otp_port));
    check_canon(ARR(port_v4), ARR(otp_port));

    static const unsigned char big_new[] = {89, 119, 3, 'n', '@', 'h', 16, 0, 0, 0, 0, 0, 0, 3};
    check_canon(ARR(big_new), ARR(otp_big_port));
    check_canon(ARR(otp_big_port), ARR(otp_big_port));
    /* 2^28 - 1 is the largest NEW_PORT_EXT. */
    static const unsigned char v3_max[] = {120, 119, 3, 'n', '@', 'h', 0, 0, 0, 0, 15, 255, 255, 255,
                                           0, 0, 0, 3};
    static const unsigned char v3_max_canon[] = {89, 119, 3, 'n', '@', 'h', 15, 255, 255, 255,
                                                 0, 0, 0, 3};
    check_canon(ARR(v3_max), ARR(v3_max_canon));
}

static void test_refs(void)
{
    static const unsigned char ref_old[] = {101, 100, 0, 3, 'n', '@', 'h', 0, 0, 0, 5, 3};
    static const unsigned char ref_new[] = {114, 0, 1, 100, 0, 3, 'n', '@', 'h', 3, 0, 0, 0, 5};
    static const unsigned char ref_newer[] = {90, 0, 1, 115, 3, 'n', '@', 'h', 0, 0, 0, 3,
                                              0, 0, 0, 5};
    check_canon(ARR(ref_old), ARR(otp_ref));
    check_canon(ARR(ref_new), ARR(otp_ref));
    check_canon(ARR(ref_newer), ARR(otp_ref));
    /* The BEAM holds a ref with extra zero words at the end =:= the shorter one. */
    static const unsigned char ref_zeros[] = {90, 0, 3, 119, 3, 'n', '@', 'h', 0, 0, 0, 3,
                                              0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0};
    check_canon(ARR(ref_zeros), ARR(otp_ref));
    check_canon(ARR(otp_ref3), ARR(otp_ref3));
    static const unsigned char ref3_old[] = {114, 0, 3, 100, 0, 3, 'n', '@', 'h', 3,
                                             0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0, 7};
    check_canon(ARR(ref3_old), ARR(otp_ref3));

    /* The old tags' first word has 18 significant bits (binary_to_term
     * refuses more); NEWER_REFERENCE_EXT's has 32. */
    static const unsigned char old_word_max[] = {101, 100, 0, 3, 'n', '@', 'h', 0, 3, 255, 255, 3};
    static const unsigned char old_word_over[] = {101, 100, 0, 3, 'n', '@', 'h', 0, 4, 0, 0, 3};
    static const unsigned char new_word_over[] = {114, 0, 1, 100, 0, 3, 'n', '@', 'h', 3, 0, 4, 0, 0};
    static const unsigned char newer_word_big[] = {90, 0, 1, 119, 3, 'n', '@', 'h', 0, 0, 0, 3,
                                                   255, 255, 255, 255};
    CU_ASSERT_EQUAL(canon_rc(ARR(old_word_max), 64), TERM_OK);
    CU_ASSERT_EQUAL(canon_rc(ARR(old_word_over), 64), TERM_EBAD);
    CU_ASSERT_EQUAL(canon_rc(ARR(new_word_over), 64), TERM_EBAD);
    CU_ASSERT_EQUAL(canon_rc(ARR(newer_word_big), 64), TERM_OK);
    static const unsigned char no_words[] = {90, 0, 0, 119, 3, 'n', '@', 'h', 0, 0, 0, 3};
    CU_ASSERT_EQUAL(canon_rc(ARR(no_words), 64), TERM_EBAD);
    unsigned char six_words[12 + 24] = {90, 0, 6, 119, 3, 'n', '@', 'h', 0, 0, 0, 3};
    CU_ASSERT_EQUAL(canon_rc(ARR(six_words), 64), TERM_EBAD);
    unsigned char five_words[12 + 20] = {90, 0, 5, 119, 3, 'n', '@', 'h', 0, 0, 0, 3, 0, 0, 0, 1};
    CU_ASSERT_EQUAL(canon_rc(ARR(five_words), 64), TERM_OK);
}

/* The length of a checked pid or reference, read off its headers: the same
 * end as term_skip's for each count of IDs, 0 for other tags, other atom
 * tags, or what does not fit. */
static void test_checked_id_len(void)
{
    unsigned char ref[3 + 2 + 40 + 4 + 20] = {90, 0, 0, 119, 40};
    unsigned char pid[1 + 2 + 40 + 12] = {88, 119, 40};
    memset(ref + 5, 'a', 40);
    memset(pid + 3, 'a', 40);
    for (unsigned ids = 1; ids <= 5; ids++) {
        ref[2] = (unsigned char)ids;
        size_t end = 0, len = 3 + 2 + 40 + 4 + 4 * ids;
        CU_ASSERT_EQUAL(term_skip((const char *)ref, len, &end, 4), TERM_OK);
        CU_ASSERT_EQUAL(end, len);
        CU_ASSERT_EQUAL(term_checked_id_len((const char *)ref, sizeof ref), len);
        CU_ASSERT_EQUAL(term_checked_id_len((const char *)ref, len), len);
        CU_ASSERT_EQUAL(term_checked_id_len((const char *)ref, len - 1), 0); /* does not fit */
    }
    size_t end = 0;
    CU_ASSERT_EQUAL(term_skip((const char *)pid, sizeof pid, &end, 4), TERM_OK);
    CU_ASSERT_EQUAL(end, sizeof pid);
    CU_ASSERT_EQUAL(term_checked_id_len((const char *)pid, sizeof pid), sizeof pid);
    CU_ASSERT_EQUAL(term_checked_id_len((const char *)pid, sizeof pid - 1), 0);
    pid[1] = 118; /* ATOM_UTF8_EXT: walked instead */
    CU_ASSERT_EQUAL(term_checked_id_len((const char *)pid, sizeof pid), 0);
    static const unsigned char atom[] = {119, 2, 'o', 'k'};
    CU_ASSERT_EQUAL(term_checked_id_len((const char *)atom, sizeof atom), 0);
    CU_ASSERT_EQUAL(term_checked_id_len(NULL, 0), 0);
}

/* ---- binaries ---- */

static void test_binaries(void)
{
    static const unsigned char garbage[] = {77, 0, 0, 0, 1, 3, 0xBF};
    check_canon(ARR(garbage), ARR(otp_bits5_3));
    check_canon(ARR(otp_bits5_3), ARR(otp_bits5_3));
    static const unsigned char whole[] = {77, 0, 0, 0, 2, 8, 'a', 'b'};
    check_canon(ARR(whole), ARR(otp_bin_ab));
    check_canon(ARR(otp_bin_ab), ARR(otp_bin_ab));
    static const unsigned char empty_bits[] = {77, 0, 0, 0, 0, 0};
    check_canon(ARR(empty_bits), ARR(otp_empty_bin));
    check_canon(ARR(otp_empty_bin), ARR(otp_empty_bin));

    static const unsigned char empty_bits8[] = {77, 0, 0, 0, 0, 8};
    static const unsigned char zero_bits[] = {77, 0, 0, 0, 1, 0, 0};
    static const unsigned char nine_bits[] = {77, 0, 0, 0, 1, 9, 0};
    CU_ASSERT_EQUAL(canon_rc(ARR(empty_bits8), 64), TERM_EBAD);
    CU_ASSERT_EQUAL(canon_rc(ARR(zero_bits), 64), TERM_EBAD);
    CU_ASSERT_EQUAL(canon_rc(ARR(nine_bits), 64), TERM_EBAD);
    CU_ASSERT_EQUAL(skip_rc(ARR(empty_bits8), 64), TERM_EBAD);

    /* <<1:1>> with all the unused bits set. */
    static const unsigned char one_bit[] = {77, 0, 0, 0, 2, 1, 0xAA, 0xFF};
    static const unsigned char one_bit_canon[] = {77, 0, 0, 0, 2, 1, 0xAA, 0x80};
    check_canon(ARR(one_bit), ARR(one_bit_canon));
}

/* ---- funs ---- */

/* fun_old: the NEW_FUN_EXT fed to binary_to_term for otp_fun, with latin1
 * atoms, INTEGER_EXT for OldIndex and OldUniq and a PID_EXT. */
static const unsigned char fun_old[] = {
    112, 0, 0, 0, 64, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0, 0, 0, 0, 0, 0,
    0, 1, 100, 0, 1, 109, 98, 0, 0, 0, 0, 98, 0, 0, 0, 7, 103, 100, 0, 3, 110, 64, 104, 0, 0, 0,
    7, 0, 0, 0, 2, 3, 107, 0, 2, 97, 98};

static void test_funs(void)
{
    static const unsigned char export_old[] = {113, 100, 0, 1, 'm', 115, 1, 'f', 98, 0, 0, 0, 2};
    check_canon(ARR(export_old), ARR(otp_export));
    check_canon(ARR(otp_export), ARR(otp_export));
    static const unsigned char export_bad_arity[] = {113, 119, 1, 'm', 119, 1, 'f', 98, 0, 0, 1, 0};
    static const unsigned char export_atom_arity[] = {113, 119, 1, 'm', 119, 1, 'f', 119, 1, 'x'};
    CU_ASSERT_EQUAL(canon_rc(ARR(export_bad_arity), 64), TERM_EBAD);
    CU_ASSERT_EQUAL(canon_rc(ARR(export_atom_arity), 64), TERM_EBAD);

    /* Canonically the creator pid is nonode@nohost's <0.0.0>: it is no
     * part of a fun's identity (two processes' funs are =:=, and OTP 26+
     * puts its init process there), and Size follows. */
    static const unsigned char canon_fun[] = {
        112, 0, 0, 0, 69, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0, 0, 0, 0, 0, 0,
        0, 1, 119, 1, 109, 97, 0, 97, 7, 88, 119, 13, 'n', 'o', 'n', 'o', 'd', 'e', '@', 'n', 'o', 'h',
        'o', 's', 't', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 107, 0, 2, 97, 98};
    check_canon(ARR(fun_old), ARR(canon_fun));
    check_canon(ARR(otp_fun), ARR(canon_fun));
    unsigned char other_creator[sizeof otp_fun];
    memcpy(other_creator, otp_fun, sizeof otp_fun);
    other_creator[40] = 'x'; /* the pid's node: x@h */
    other_creator[46] = 9;   /* its number */
    check_canon(ARR(other_creator), ARR(canon_fun));
    unsigned char other_env[sizeof otp_fun];
    memcpy(other_env, otp_fun, sizeof otp_fun);
    other_env[sizeof otp_fun - 1] = 'c'; /* the free variable: "ac" */
    check_distinct(ARR(otp_fun), ARR(other_env));

    /* A Size that does not match what follows. */
    unsigned char bad_size[sizeof fun_old];
    memcpy(bad_size, fun_old, sizeof fun_old);
    bad_size[4] = 63;
    CU_ASSERT_EQUAL(canon_rc(ARR(bad_size), 64), TERM_EBAD);
    CU_ASSERT_EQUAL(skip_rc(ARR(bad_size), 64), TERM_EBAD);
    bad_size[4] = 65;
    CU_ASSERT_EQUAL(canon_rc(ARR(bad_size), 64), TERM_EBAD);
    /* More free variables claimed than there are. */
    unsigned char bad_free[sizeof fun_old];
    memcpy(bad_free, fun_old, sizeof fun_old);
    bad_free[29] = 2;
    CU_ASSERT_EQUAL(canon_rc(ARR(bad_free), 64), TERM_EBAD);
    /* 255 free variables at most, as the BEAM's decoder takes (MAX_ARG): a
     * fun it would refuse must not be stored and served to it. */
    for (int n = 255; n <= 256; n++) {
        unsigned char many[sizeof otp_fun + 256];
        size_t len = sizeof otp_fun + (size_t)n - 1; /* n - 1 [] after "ab" */
        memcpy(many, otp_fun, sizeof otp_fun);
        memset(many + sizeof otp_fun, 106, (size_t)n - 1);
        uint32_t size = (uint32_t)(len - 1);
        many[1] = (unsigned char)(size >> 24), many[2] = (unsigned char)(size >> 16);
        many[3] = (unsigned char)(size >> 8), many[4] = (unsigned char)size;
        many[26] = 0, many[27] = 0, many[28] = (unsigned char)(n >> 8), many[29] = (unsigned char)n;
        CU_ASSERT_EQUAL(canon_rc(many, len, 64), n == 255 ? TERM_OK : TERM_EBAD);
        CU_ASSERT_EQUAL(skip_rc(many, len, 64), n == 255 ? TERM_OK : TERM_EBAD);
    }
    /* The free variables are one level down, the characters of "ab" two. */
    CU_ASSERT_EQUAL(canon_rc(ARR(fun_old), 0), TERM_EDEPTH);
    CU_ASSERT_EQUAL(canon_rc(ARR(fun_old), 1), TERM_EDEPTH);
    CU_ASSERT_EQUAL(canon_rc(ARR(fun_old), 2), TERM_OK);
}

/* ---- what must stay apart ---- */

static void test_distinct(void)
{
    check_distinct(ARR(otp_one), ARR(otp_float_one));
    check_distinct(ARR(otp_zero_f), ARR(otp_neg_zero_f));
    check_distinct(ARR(otp_atom_a), ARR(otp_bin_a));
    check_distinct(ARR(otp_nil), ARR(otp_empty_bin));
    check_distinct(ARR(otp_tuple1), ARR(otp_list1));
    check_distinct(ARR(otp_improper), ARR(otp_list12));
    check_distinct(ARR(otp_bits5_3), ARR(otp_bin_a));

    static const unsigned char one_small[] = {97, 1};
    static const unsigned char one_float_text[32] = {99, '1', '.', '0'};
    static const unsigned char a_latin1[] = {100, 0, 1, 'a'};
    static const unsigned char a_binary[] = {109, 0, 0, 0, 1, 'a'};
    static const unsigned char empty_string[] = {107, 0, 0};
    static const unsigned char empty_bits[] = {77, 0, 0, 0, 0, 0};
    static const unsigned char tuple1[] = {105, 0, 0, 0, 1, 98, 0, 0, 0, 1};
    static const unsigned char list1[] = {108, 0, 0, 0, 1, 97, 1, 106};
    static const unsigned char improper[] = {108, 0, 0, 0, 1, 97, 1, 97, 2};
    static const unsigned char list12[] = {108, 0, 0, 0, 2, 97, 1, 97, 2, 106};
    check_distinct(ARR(one_small), ARR(one_float_text));
    check_distinct(ARR(a_latin1), ARR(a_binary));
    check_distinct(ARR(empty_string), ARR(empty_bits));
    check_distinct(ARR(tuple1), ARR(list1));
    check_distinct(ARR(improper), ARR(list12));
    check_canon(ARR(tuple1), ARR(otp_tuple1));
    check_canon(ARR(list1), ARR(otp_list1));
    check_canon(ARR(list12), ARR(otp_list12));
}

/* ---- errors ---- */

/* A term that uses most tags, in old encodings: every proper prefix of it
 * must be refused, and no byte past the prefix read (the copy is exact-size,
 * so AddressSanitizer and valgrind see any over-read). */
static const unsigned char nested_term[] = {
    104, 12,
    108, 0, 0, 0, 2, 100, 0, 1, 'a', 107, 0, 2, 'x', 'y', 108, 0, 0, 0, 1, 97, 1, 97, 2,
    116, 0, 0, 0, 2, 115, 1, 'k', 110, 2, 0, 1, 0, 97, 0, 70, 63, 240, 0, 0, 0, 0, 0, 0,
    103, 100, 0, 3, 'n', '@', 'h', 0, 0, 0, 7, 0, 0, 0, 2, 3,
    102, 100, 0, 3, 'n', '@', 'h', 0, 0, 0, 9, 3,
    114, 0, 2, 100, 0, 3, 'n', '@', 'h', 3, 0, 0, 0, 5, 0, 0, 0, 0,
    77, 0, 0, 0, 2, 3, 1, 0xFF,
    111, 0, 0, 0, 6, 1, 0, 0, 0, 0, 0, 1,
    99, '2', '.', '5', 'e', '+', '0', '0', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0,
    113, 100, 0, 1, 'm', 115, 1, 'f', 97, 2,
    105, 0, 0, 0, 2, 106, 109, 0, 0, 0, 1, 'z',
    118, 0, 2, 0xC3, 0xA9,
    112, 0, 0, 0, 64, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0, 0, 0, 0, 0, 0,
    0, 1, 100, 0, 1, 109, 98, 0, 0, 0, 0, 98, 0, 0, 0, 7, 103, 100, 0, 3, 110, 64, 104, 0, 0, 0,
    7, 0, 0, 0, 2, 3, 107, 0, 2, 97, 98};

static void test_truncation(void)
{
    size_t len = sizeof nested_term;
    CU_ASSERT_EQUAL(canon_rc(nested_term, len, 64), TERM_OK);
    CU_ASSERT_EQUAL(skip_rc(nested_term, len, 64), TERM_OK);
    int all_bad = 1;
    for (size_t cut = 0; cut < len; cut++) {
        unsigned char *prefix = malloc(cut ? cut : 1);
        CU_ASSERT_FATAL(prefix != NULL);
        memcpy(prefix, nested_term, cut);
        int skip = skip_rc(prefix, cut, 64);
        int can = canon_rc(prefix, cut, 64);
        if (skip != TERM_EBAD || can != TERM_EBAD) {
            fprintf(stderr, "\n    prefix %zu: skip %d canonical %d", cut, skip, can);
            all_bad = 0;
        }
        free(prefix);
    }
    CU_ASSERT(all_bad);
}

static void test_huge_counts(void)
{
    /* Each claims far more than the bytes present. */
    static const unsigned char list[] = {108, 255, 255, 255, 255, 97, 1};
    static const unsigned char tuple[] = {105, 255, 255, 255, 255, 97, 1};
    static const unsigned char small_tuple[] = {104, 255, 97, 1};
    static const unsigned char map[] = {116, 255, 255, 255, 255, 97, 1};
    static const unsigned char binary[] = {109, 255, 255, 255, 255, 1};
    static const unsigned char bits[] = {77, 255, 255, 255, 255, 3, 1};
    static const unsigned char big[] = {111, 255, 255, 255, 255, 0, 1};
    static const unsigned char string[] = {107, 255, 255, 1};
    static const unsigned char atom[] = {100, 255, 255, 'a'};
    static const unsigned char ref[] = {90, 255, 255, 119, 1, 'n', 0, 0, 0, 0};
    static const unsigned char list_three[] = {108, 255, 255, 255};
    const struct {
        const unsigned char *p;
        size_t n;
    } cases[] = {{ARR(list)}, {ARR(tuple)}, {ARR(small_tuple)}, {ARR(map)}, {ARR(binary)},
                 {ARR(bits)}, {ARR(big)}, {ARR(string)}, {ARR(atom)}, {ARR(ref)},
                 {ARR(list_three)}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CU_ASSERT_EQUAL(skip_rc(cases[i].p, cases[i].n, 64), TERM_EBAD);
        CU_ASSERT_EQUAL(canon_rc(cases[i].p, cases[i].n, 64), TERM_EBAD);
    }
    /* The brief's case: LIST_EXT of 2^32-1 elements with 3 bytes present. */
    static const unsigned char list_claim[] = {108, 255, 255, 255, 255, 97, 1, 106};
    CU_ASSERT_EQUAL(skip_rc(list_claim, 8, 64), TERM_EBAD);
    CU_ASSERT_EQUAL(canon_rc(list_claim, 8, 64), TERM_EBAD);
}

/* depth nested one-element lists ([[[...]]]) or 1-tuples, around a 0. */
static unsigned char *deep_term(size_t depth, int tuples, size_t *len)
{
    size_t open = tuples ? 2 : 5;
    *len = depth * open + 2 + (tuples ? 0 : depth);
    unsigned char *p = malloc(*len);
    CU_ASSERT_FATAL(p != NULL);
    size_t at = 0;
    for (size_t i = 0; i < depth; i++) {
        static const unsigned char list_open[5] = {108, 0, 0, 0, 1};
        static const unsigned char tuple_open[2] = {104, 1};
        memcpy(p + at, tuples ? tuple_open : list_open, open);
        at += open;
    }
    p[at++] = 97;
    p[at++] = 0;
    if (!tuples)
        memset(p + at, 106, depth);
    return p;
}

static void test_depth(void)
{
    size_t len;
    for (int tuples = 0; tuples <= 1; tuples++) {
        unsigned char *deep = deep_term(100000, tuples, &len);
        CU_ASSERT_EQUAL(skip_rc(deep, len, 1000), TERM_EDEPTH);
        CU_ASSERT_EQUAL(canon_rc(deep, len, 1000), TERM_EDEPTH);
        free(deep);

        /* 1000 levels around a leaf: the leaf is at depth 1000. */
        deep = deep_term(1000, tuples, &len);
        CU_ASSERT_EQUAL(skip_rc(deep, len, 1000), TERM_OK);
        CU_ASSERT_EQUAL(canon_rc(deep, len, 1000), TERM_OK);
        CU_ASSERT_EQUAL(skip_rc(deep, len, 999), TERM_EDEPTH);
        CU_ASSERT_EQUAL(canon_rc(deep, len, 999), TERM_EDEPTH);
        free(deep);
    }
    /* max_depth 0: leaves and empty containers only. */
    static const unsigned char empty_tuple[] = {104, 0};
    static const unsigned char tuple1[] = {104, 1, 97, 1};
    static const unsigned char string[] = {107, 0, 1, 'a'};
    CU_ASSERT_EQUAL(canon_rc(ARR(otp_foo), 0), TERM_OK);
    CU_ASSERT_EQUAL(canon_rc(ARR(empty_tuple), 0), TERM_OK);
    CU_ASSERT_EQUAL(canon_rc(ARR(tuple1), 0), TERM_EDEPTH);
    /* A string's characters are elements one level down, as in LIST_EXT. */
    static const unsigned char list[] = {108, 0, 0, 0, 1, 97, 'a', 106};
    static const unsigned char empty_string[] = {107, 0, 0};
    CU_ASSERT_EQUAL(canon_rc(ARR(string), 0), TERM_EDEPTH);
    CU_ASSERT_EQUAL(skip_rc(ARR(string), 0), TERM_EDEPTH);
    CU_ASSERT_EQUAL(canon_rc(ARR(list), 0), TERM_EDEPTH);
    CU_ASSERT_EQUAL(canon_rc(ARR(string), 1), TERM_OK);
    CU_ASSERT_EQUAL(canon_rc(ARR(empty_string), 0), TERM_OK);
    CU_ASSERT_EQUAL(canon_rc(ARR(otp_pid), 0), TERM_OK);
    /* LIST_EXT of no elements is its tail, at the same depth. */
    static const unsigned char only_tail[] = {108, 0, 0, 0, 0, 108, 0, 0, 0, 0, 97, 5};
    static const unsigned char improper[] = {108, 0, 0, 0, 1, 97, 4, 97, 5};
    CU_ASSERT_EQUAL(canon_rc(ARR(only_tail), 0), TERM_OK);
    CU_ASSERT_EQUAL(canon_rc(ARR(improper), 0), TERM_EDEPTH);
    CU_ASSERT_EQUAL(canon_rc(ARR(improper), 1), TERM_OK);
}

static int flat_rc(const unsigned char *in, size_t len)
{
    size_t index = 0;
    int rc = term_skip_flat((const char *)in, len, &index);
    if (rc == TERM_OK) {
        CU_ASSERT_EQUAL(index, len);
    }
    return rc;
}

/* term_skip_flat: any depth, without recursion; framing still checked. */
static void test_skip_flat(void)
{
    size_t len;
    for (int tuples = 0; tuples <= 1; tuples++) {
        unsigned char *deep = deep_term(1000000, tuples, &len);
        CU_ASSERT_EQUAL(flat_rc(deep, len), TERM_OK);
        CU_ASSERT_EQUAL(flat_rc(deep, len - 1), TERM_EBAD);
        free(deep);
    }
    /* A map whose value is 100,000 deep, then a second pair. */
    unsigned char *deep = deep_term(100000, 1, &len);
    unsigned char *map = malloc(len + 9);
    CU_ASSERT_FATAL(map != NULL);
    static const unsigned char head[] = {116, 0, 0, 0, 2, 97, 1};
    memcpy(map, head, sizeof head);
    memcpy(map + sizeof head, deep, len);
    map[sizeof head + len] = 106;
    map[sizeof head + len + 1] = 106;
    CU_ASSERT_EQUAL(flat_rc(map, len + 9), TERM_OK);
    CU_ASSERT_EQUAL(flat_rc(map, len + 8), TERM_EBAD);
    free(map);
    free(deep);
    /* Every tag of nested_term (a fun passed over by its Size), and every
     * truncation of it refused, reading no byte past it. */
    CU_ASSERT_EQUAL(flat_rc(ARR(nested_term)), TERM_OK);
    int all_bad = 1;
    for (size_t cut = 0; cut < sizeof nested_term; cut++) {
        unsigned char *prefix = malloc(cut ? cut : 1);
        CU_ASSERT_FATAL(prefix != NULL);
        memcpy(prefix, nested_term, cut);
        if (flat_rc(prefix, cut) != TERM_EBAD) {
            fprintf(stderr, "\n    prefix %zu passed", cut);
            all_bad = 0;
        }
        free(prefix);
    }
    CU_ASSERT(all_bad);
    /* Counts beyond the bytes present, and scalars checked as term_skip does. */
    static const unsigned char list_claim[] = {108, 255, 255, 255, 255, 97, 1, 106};
    static const unsigned char map_claim[] = {116, 128, 0, 0, 0, 97, 1, 97, 2};
    static const unsigned char bad_atom[] = {104, 1, 119, 2, 0xC3, 0x28};
    static const unsigned char cached[] = {104, 1, 82, 0};
    CU_ASSERT_EQUAL(flat_rc(ARR(list_claim)), TERM_EBAD);
    CU_ASSERT_EQUAL(flat_rc(ARR(map_claim)), TERM_EBAD);
    CU_ASSERT_EQUAL(flat_rc(ARR(bad_atom)), TERM_EBAD);
    CU_ASSERT_EQUAL(flat_rc(ARR(cached)), TERM_EUNSUPPORTED);
    size_t at = 0;
    CU_ASSERT_EQUAL(term_skip_flat(NULL, 0, &at), TERM_EBAD);
}

static void test_unsupported(void)
{
    static const unsigned char cache_ref[] = {82, 0};
    static const unsigned char old_fun[] = {117, 0, 0, 0, 0};
    static const unsigned char local[] = {121, 0};
    static const unsigned char compressed[] = {80, 0, 0, 0, 1, 0x78, 0x9c};
    CU_ASSERT_EQUAL(skip_rc(ARR(cache_ref), 64), TERM_EUNSUPPORTED);
    CU_ASSERT_EQUAL(canon_rc(ARR(cache_ref), 64), TERM_EUNSUPPORTED);
    CU_ASSERT_EQUAL(canon_rc(ARR(old_fun), 64), TERM_EUNSUPPORTED);
    CU_ASSERT_EQUAL(canon_rc(ARR(local), 64), TERM_EUNSUPPORTED);
    CU_ASSERT_EQUAL(canon_rc(ARR(compressed), 64), TERM_EUNSUPPORTED);
    /* Nested inside a tuple. */
    static const unsigned char inner[] = {104, 2, 97, 1, 82, 0};
    CU_ASSERT_EQUAL(canon_rc(ARR(inner), 64), TERM_EUNSUPPORTED);

    static const unsigned char unknown[] = {0, 1, 2, 131, 255, 68, 69, 71};
    for (size_t i = 0; i < sizeof unknown; i++) {
        CU_ASSERT_EQUAL(skip_rc(&unknown[i], 1, 64), TERM_EBAD);
        CU_ASSERT_EQUAL(canon_rc(&unknown[i], 1, 64), TERM_EBAD);
    }
    CU_ASSERT_EQUAL(skip_rc(NULL, 0, 64), TERM_EBAD);
}

/* ---- the API around the walk ---- */

static void test_appends_and_restores(void)
{
    /* Two terms back to back, appended after existing output. */
    static const unsigned char two[] = {100, 0, 3, 'f', 'o', 'o', 97, 1};
    ei_x_buff out = {NULL, 0, 0}; /* even an empty buffer grows */
    size_t index = 0;
    CU_ASSERT_EQUAL(term_canonical((const char *)two, sizeof two, &index, 8, &out), TERM_OK);
    CU_ASSERT_EQUAL(index, 6);
    CU_ASSERT_EQUAL(term_canonical((const char *)two, sizeof two, &index, 8, &out), TERM_OK);
    CU_ASSERT_EQUAL(index, 8);
    static const unsigned char want[] = {119, 3, 'f', 'o', 'o', 97, 1};
    CU_ASSERT(out.index == 7 && memcmp(out.buff, want, 7) == 0);

    /* A failure restores out->index and leaves the earlier bytes alone. */
    static const unsigned char bad[] = {104, 3, 97, 1, 100, 0, 1, 'x', 70, 0x7F, 0xF0, 0, 0, 0, 0,
                                        0, 0};
    index = 0;
    CU_ASSERT_EQUAL(term_canonical((const char *)bad, sizeof bad, &index, 8, &out), TERM_EBAD);
    CU_ASSERT(out.index == 7 && memcmp(out.buff, want, 7) == 0);
    static const unsigned char bad_map[] = {116, 0, 0, 0, 2, 97, 1, 97, 1, 97, 1, 97, 2};
    CU_ASSERT_EQUAL(term_canonical((const char *)bad_map, sizeof bad_map, &index, 8, &out),
                    TERM_EBAD);
    CU_ASSERT(out.index == 7 && memcmp(out.buff, want, 7) == 0);
    ei_x_free(&out);

    /* term_skip moves past exactly one term. */
    index = 0;
    CU_ASSERT_EQUAL(term_skip((const char *)two, sizeof two, &index, 8), TERM_OK);
    CU_ASSERT_EQUAL(index, 6);
    index = sizeof two + 1;
    CU_ASSERT_EQUAL(term_skip((const char *)two, sizeof two, &index, 8), TERM_EBAD);
    /* A repeated map key is refused by term_skip too, as the BEAM refuses it. */
    CU_ASSERT_EQUAL(skip_rc(ARR(bad_map), 8), TERM_EBAD);
}

/* A map's keys repeat when =:= says so, whatever their encodings: the BEAM
 * refuses such a map, so the node must not take one in and pass it on. */
static void test_repeated_map_keys(void)
{
    /* #{a => 1, a => 2}: the second 'a' in Latin-1 */
    static const unsigned char atoms[] = {116, 0, 0, 0, 2, 119, 1, 97, 97, 1, 115, 1, 97, 97, 2};
    /* #{1 => x, 1 => y}: SMALL_INTEGER_EXT and INTEGER_EXT */
    static const unsigned char ints[] = {116, 0, 0, 0, 2, 97, 1, 119, 1, 120, 98, 0, 0, 0, 1, 119, 1, 121};
    /* #{"ab" => 1, [97, 98] => 2}: STRING_EXT and a list */
    static const unsigned char strings[] = {116, 0, 0, 0, 2, 107, 0, 2, 97, 98, 97, 1,
                                            108, 0, 0, 0, 2, 97, 97, 97, 98, 106, 97, 2};
    /* #{a => 1, 'b' => 2} in Latin-1 and UTF-8 tags, and #{1 => x, 2 => y}: all distinct */
    static const unsigned char fine[] = {116, 0, 0, 0, 2, 119, 1, 97, 97, 1, 115, 1, 98, 97, 2};
    static const unsigned char fine_ints[] = {116, 0, 0, 0, 2, 97, 1, 119, 1, 120, 98, 0, 0, 0, 2, 119, 1, 121};
    /* #{'é' => 1, 'é' => 2}: Latin-1 0xE9 and UTF-8 C3 A9 */
    static const unsigned char accent[] = {116, 0, 0, 0, 2, 115, 1, 0xE9, 97, 1, 119, 2, 0xC3, 0xA9, 97, 2};
    /* #{1 => x, 1 => y} and #{<<"a">> => x, <<"a">> => y}, each in one encoding */
    static const unsigned char small_ints[] = {116, 0, 0, 0, 2, 97, 1, 119, 1, 120, 97, 1, 119, 1, 121};
    static const unsigned char bins[] = {116, 0, 0, 0, 2, 109, 0, 0, 0, 1, 97, 119, 1, 120,
                                         109, 0, 0, 0, 1, 97, 119, 1, 121};
    /* #{a => 1, 1 => 2, <<"a">> => 3}: three kinds, none equal */
    static const unsigned char kinds[] = {116, 0, 0, 0, 3, 119, 1, 97, 97, 1, 97, 1, 97, 2,
                                          109, 0, 0, 0, 1, 97, 97, 3};
    /* #{#{a => 1, a => 2} => 1, x => 2}: the repeat inside a key; and
     * #{#{a => 1, a => 2} => 1}: inside the key of a map of one */
    static const unsigned char in_key[] = {116, 0, 0, 0, 2, 116, 0, 0, 0, 2, 119, 1, 97, 97, 1, 119, 1, 97, 97, 2,
                                           97, 1, 119, 1, 120, 97, 2};
    static const unsigned char in_lone_key[] = {116, 0, 0, 0, 1, 116, 0, 0, 0, 2, 119, 1, 97, 97, 1, 119, 1, 97,
                                                97, 2, 97, 1};
    /* #{#{a => 1, b => 2} => 1, x => 2}: fine */
    static const unsigned char key_fine[] = {116, 0, 0, 0, 2, 116, 0, 0, 0, 2, 119, 1, 97, 97, 1, 119, 1, 98, 97, 2,
                                             97, 1, 119, 1, 120, 97, 2};
    /* #{0.0 => 1, -0.0 => 2}: distinct to OTP 27, a repeated key to OTP 25
     * and 26, whose decoders drop the connection that carries it: refused
     * as unsupported. So are #{{0.0} => 1, {-0.0} => 2}, -0.0 as FLOAT_EXT
     * text, and a map of such keys inside a key. #{0.0 => 1, 0.0 => 2} is
     * repeated under any rule; #{-0.0 => 1, 1.0 => 2} is fine. */
#define F0 70, 0, 0, 0, 0, 0, 0, 0, 0
#define FN0 70, 128, 0, 0, 0, 0, 0, 0, 0
#define F1 70, 63, 240, 0, 0, 0, 0, 0, 0
    static const unsigned char zeros[] = {116, 0, 0, 0, 2, F0, 97, 1, FN0, 97, 2};
    static const unsigned char zero_tuples[] = {116, 0, 0, 0, 2, 104, 1, F0, 97, 1, 104, 1, FN0, 97, 2};
    static const unsigned char zero_in_key[] = {116, 0, 0, 0, 2, 116, 0, 0, 0, 2, F0, 97, 1, FN0, 97, 2,
                                                97, 1, 119, 1, 120, 97, 2};
    static const unsigned char same_zero[] = {116, 0, 0, 0, 2, F0, 97, 1, F0, 97, 2};
    static const unsigned char zero_and_one[] = {116, 0, 0, 0, 2, FN0, 97, 1, F1, 97, 2};
    unsigned char text_zero[5 + 32 + 2 + 9 + 2];
    memcpy(text_zero, (const unsigned char[]){116, 0, 0, 0, 2}, 5);
    float_text(text_zero + 5, "-0.00000000000000000000e+00");
    memcpy(text_zero + 5 + 32, (const unsigned char[]){97, 1, F0, 97, 2}, 2 + 9 + 2);
#undef F0
#undef FN0
#undef F1
    const struct { const unsigned char *bytes; size_t len; int rc; } zero_cases[] = {
        {ARR(zeros), TERM_EZEROKEYS}, {ARR(zero_tuples), TERM_EZEROKEYS},
        {ARR(zero_in_key), TERM_EZEROKEYS}, {ARR(text_zero), TERM_EZEROKEYS},
        {ARR(same_zero), TERM_EBAD}, {ARR(zero_and_one), TERM_OK},
    };
    for (size_t k = 0; k < sizeof zero_cases / sizeof zero_cases[0]; k++)
        CU_ASSERT_EQUAL(skip_rc(zero_cases[k].bytes, zero_cases[k].len, 8), zero_cases[k].rc);
    /* #{-0.0 => v, K => v}, K a chain of maps nested in keys, each out of
     * order, around a binary of 1 MiB: as #{0.0 => v, K => v}, not too
     * deep (the second look at the keys, for the zero, is not charged to
     * the sort budget twice, as it first was) */
    for (int zero = 0; zero <= 1; zero++)
        for (int levels = 6; levels <= 16; levels += 5) {
            ei_x_buff m;
            ei_x_new(&m);
            ei_x_encode_map_header(&m, 2);
            ei_x_encode_double(&m, zero ? -0.0 : 0.0);
            ei_x_encode_atom(&m, "v");
            for (int l = 0; l < levels; l++) {
                ei_x_encode_map_header(&m, 2);
                ei_x_encode_atom(&m, "a"); /* first: out of order */
                ei_x_encode_long(&m, 1);
            }
            char *blob = calloc(1, 1 << 20);
            CU_ASSERT_FATAL(blob != NULL);
            ei_x_encode_binary(&m, blob, 1 << 20);
            free(blob);
            for (int l = 0; l < levels; l++)
                ei_x_encode_long(&m, 2);
            ei_x_encode_atom(&m, "v");
            size_t at = 0;
            CU_ASSERT_EQUAL(term_skip(m.buff, (size_t)m.index, &at, 100), TERM_OK);
            ei_x_free(&m);
        }
    /* Maps of more than 8 keys (found by hash): 1,000 integer keys, then
     * the same as 1-tuples (canonical forms), each distinct, or with the
     * last repeating one at any place, in another encoding */
    for (int tuples = 0; tuples <= 1; tuples++)
        for (long repeat = -1; repeat < 1000; repeat += 333) {
            ei_x_buff m;
            ei_x_new(&m);
            ei_x_encode_map_header(&m, 1001);
            for (long k = 0; k <= 1000; k++) {
                long key = (k == 1000 && repeat >= 0 ? repeat : k) * 7919;
                if (tuples)
                    ei_x_encode_tuple_header(&m, 1);
                if (k == 1000) { /* as INTEGER_EXT, whatever its value */
                    char i4[5] = {98, (char)(key >> 24), (char)(key >> 16), (char)(key >> 8), (char)key};
                    ei_x_append_buf(&m, i4, 5);
                } else {
                    ei_x_encode_long(&m, key);
                }
                ei_x_encode_atom(&m, "v");
            }
            int want = repeat >= 0 ? TERM_EBAD : TERM_OK;
            CU_ASSERT_EQUAL(skip_rc((const unsigned char *)m.buff, (size_t)m.index, 8), want);
            ei_x_free(&m);
        }
    const struct { const unsigned char *bytes; size_t len; int rc; } cases[] = {
        {ARR(atoms), TERM_EBAD}, {ARR(ints), TERM_EBAD}, {ARR(strings), TERM_EBAD},
        {ARR(accent), TERM_EBAD}, {ARR(fine), TERM_OK}, {ARR(fine_ints), TERM_OK},
        {ARR(small_ints), TERM_EBAD}, {ARR(bins), TERM_EBAD}, {ARR(kinds), TERM_OK},
        {ARR(in_key), TERM_EBAD}, {ARR(in_lone_key), TERM_EBAD}, {ARR(key_fine), TERM_OK},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        CU_ASSERT_EQUAL(skip_rc(cases[k].bytes, cases[k].len, 8), cases[k].rc);
        CU_ASSERT_EQUAL(canon_rc(cases[k].bytes, cases[k].len, 8), cases[k].rc);
    }
    /* Keys that are chains of maps, each level's pairs out of order, around
     * a 64 KiB binary: sorting moves the binary once per level, and a walk
     * moves 16 times its bytes at most, so a deep chain counts as too deep
     * rather than cost a second of copying; in order, nothing moves. */
    for (int out_of_order = 0; out_of_order <= 1; out_of_order++)
        for (int levels = 4; levels <= 64; levels *= 16) {
            size_t blob = 65536, n = 0;
            unsigned char *chain = malloc(5 + 10 * (size_t)levels + 5 + blob + 2 * (size_t)levels + 8);
            CU_ASSERT_FATAL(chain != NULL);
            chain[n++] = 116, chain[n++] = 0, chain[n++] = 0, chain[n++] = 0, chain[n++] = 2; /* the message's map */
            for (int l = 0; l < levels; l++) {
                chain[n++] = 116, chain[n++] = 0, chain[n++] = 0, chain[n++] = 0, chain[n++] = 2;
                if (out_of_order) /* x => 1 first: after the map key, canonically */
                    chain[n++] = 119, chain[n++] = 1, chain[n++] = 'x', chain[n++] = 97, chain[n++] = 1;
            }
            chain[n++] = 109, chain[n++] = 0, chain[n++] = 1, chain[n++] = 0, chain[n++] = 0;
            memset(chain + n, 7, blob);
            n += blob;
            for (int l = 0; l < levels; l++) {
                chain[n++] = 97, chain[n++] = 1; /* the map key's value */
                if (!out_of_order)
                    chain[n++] = 119, chain[n++] = 1, chain[n++] = 'x', chain[n++] = 97, chain[n++] = 1;
            }
            chain[n++] = 97, chain[n++] = 1, chain[n++] = 119, chain[n++] = 1, chain[n++] = 'y', chain[n++] = 97,
            chain[n++] = 1; /* the message's map: its first value, then y => 1 */
            int want = out_of_order && levels == 64 ? TERM_EDEPTH : TERM_OK;
            CU_ASSERT_EQUAL(skip_rc(chain, n, 200), want);
            CU_ASSERT_EQUAL(canon_rc(chain, n, 200), want);
            free(chain);
        }
    /* 40 integer keys (sorted, not compared pairwise), the last one again or not;
     * and the same map as the value of a key of an outer map */
    for (int repeat = 0; repeat <= 1; repeat++) {
        unsigned char big[8 + 40 * 4];
        size_t n = 0;
        big[n++] = 116, big[n++] = 0, big[n++] = 0, big[n++] = 0, big[n++] = 40;
        for (int i = 0; i < 40; i++) {
            big[n++] = 97, big[n++] = (unsigned char)(repeat && i == 39 ? 7 : i);
            big[n++] = 97, big[n++] = 0;
        }
        CU_ASSERT_EQUAL(skip_rc(big, n, 8), repeat ? TERM_EBAD : TERM_OK);
        unsigned char outer[16 + sizeof big] = {116, 0, 0, 0, 1, 106};
        memcpy(outer + 6, big, n);
        CU_ASSERT_EQUAL(skip_rc(outer, 6 + n, 8), repeat ? TERM_EBAD : TERM_OK);
    }
}

static void test_strerror(void)
{
    const int codes[] = {TERM_OK, TERM_EBAD, TERM_EDEPTH, TERM_EUNSUPPORTED, TERM_ENOMEM, TERM_EFOREIGN,
                         TERM_EZEROKEYS, 42};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = term_strerror(codes[i]);
        CU_ASSERT(s != NULL && s[0] != '\0');
        for (size_t j = 0; j < i; j++)
            CU_ASSERT(strcmp(s, term_strerror(codes[j])) != 0);
    }
}

/* The validated-atom cache: a UTF-8 atom is checked once, then found; what
 * fails the checks is never kept, so it fails every time; ASCII atoms are
 * checked by their bytes and not kept. */
static void test_atom_cache(void)
{
    term_atom_cache atoms;
    memset(&atoms, 0, sizeof atoms);
    static const unsigned char e_acute[] = {119, 2, 0xC3, 0xA9};        /* 'é' */
    static const unsigned char surrogate[] = {119, 3, 0xED, 0xA0, 0x80}; /* U+D800: refused */
    static const unsigned char ascii[] = {119, 3, 'f', 'o', 'o'};
    static const unsigned char pair[] = {104, 2, 119, 2, 0xC3, 0xA9, 119, 2, 0xC3, 0xA9};
    size_t at = 0;
    CU_ASSERT_EQUAL(term_skip_cached((const char *)e_acute, sizeof e_acute, &at, 4, &atoms, NULL), TERM_OK);
    CU_ASSERT_EQUAL(at, sizeof e_acute);
    CU_ASSERT_EQUAL(atoms.hits, 0);
    at = 0; /* {'é', 'é'}: both found */
    CU_ASSERT_EQUAL(term_skip_cached((const char *)pair, sizeof pair, &at, 4, &atoms, NULL), TERM_OK);
    CU_ASSERT_EQUAL(at, sizeof pair);
    CU_ASSERT_EQUAL(atoms.hits, 2);
    for (int k = 0; k < 2; k++) {
        at = 0;
        CU_ASSERT_EQUAL(term_skip_cached((const char *)surrogate, sizeof surrogate, &at, 4, &atoms, NULL), TERM_EBAD);
    }
    unsigned long long misses = atoms.misses;
    at = 0;
    CU_ASSERT_EQUAL(term_skip_cached((const char *)ascii, sizeof ascii, &at, 4, &atoms, NULL), TERM_OK);
    CU_ASSERT_EQUAL(atoms.misses, misses); /* not looked up */
    at = 0; /* a truncated copy of a cached atom is still refused */
    CU_ASSERT_EQUAL(term_skip_cached((const char *)e_acute, sizeof e_acute - 1, &at, 4, &atoms, NULL), TERM_EBAD);
    /* Many distinct UTF-8 atoms, more than the slots: each accepted, twice. */
    for (unsigned v = 0x100; v < 0x100 + 500; v++) {
        unsigned char a[4] = {119, 2, (unsigned char)(0xC0 | v >> 6), (unsigned char)(0x80 | (v & 0x3F))};
        for (int k = 0; k < 2; k++) {
            at = 0;
            CU_ASSERT_EQUAL(term_skip_cached((const char *)a, sizeof a, &at, 4, &atoms, NULL), TERM_OK);
        }
    }
    CU_ASSERT(atoms.hits >= 2 + 400); /* most second looks are found */
}

/* What the sender's check was handed (test_third_node_ids). */
static struct {
    int calls, refuse, is_ref;
    char node[64];
    uint32_t creation, first;
    size_t words;
} asked;

static int ask(void *ctx, const term_foreign_id *id)
{
    CU_ASSERT_PTR_EQUAL(ctx, &asked);
    asked.calls++;
    asked.is_ref = id->is_ref;
    snprintf(asked.node, sizeof asked.node, "%.*s", (int)id->node_len, id->node);
    asked.creation = id->creation;
    asked.first = (uint32_t)id->words[0] << 24 | (uint32_t)id->words[1] << 16 |
                  (uint32_t)id->words[2] << 8 | id->words[3];
    asked.words = id->n_words;
    return asked.refuse ? -1 : 0;
}

/* NEW_PID_EXT or NEWER_REFERENCE_EXT of node (as SMALL_ATOM_UTF8_EXT, or
 * ATOM_EXT when latin1), inside a 1-tuple: its length. */
static size_t id_term(unsigned char *b, int is_ref, const char *node, int latin1, uint32_t creation,
                      const uint32_t *w, size_t words)
{
    size_t n = 0, len = strlen(node);
    b[n++] = 104;
    b[n++] = 1;
    if (is_ref) {
        b[n++] = 90;
        b[n++] = 0;
        b[n++] = (unsigned char)words;
    } else {
        b[n++] = 88;
    }
    if (latin1) {
        b[n++] = 100;
        b[n++] = 0;
    } else {
        b[n++] = 119;
    }
    b[n++] = (unsigned char)len;
    memcpy(b + n, node, len);
    n += len;
    uint32_t be[8];
    size_t k = 0;
    if (is_ref)
        be[k++] = creation;
    for (size_t i = 0; i < words; i++)
        be[k++] = w[i];
    if (!is_ref)
        be[k++] = creation;
    for (size_t i = 0; i < k; i++) {
        b[n++] = (unsigned char)(be[i] >> 24);
        b[n++] = (unsigned char)(be[i] >> 16);
        b[n++] = (unsigned char)(be[i] >> 8);
        b[n++] = (unsigned char)be[i];
    }
    return n;
}

/* Pids and references of third nodes (term_sender): only those with
 * numbers beyond what every release makes, and not of the sender's own
 * node, are handed to the check, whose refusal makes TERM_EFOREIGN; the
 * same in a control tuple (term_tuple_elements). */
static void test_third_node_ids(void)
{
    term_sender sender = {.name = "peer@h", .name_len = 6, .check = ask, .ctx = &asked};
    unsigned char b[128];
    size_t at, n;
    static const uint32_t usual_ref[] = {0x3FFFF, 0xFFFFFFFF, 0xFFFFFFFF};
    static const uint32_t high_ref[] = {0x40000, 1, 2};
    static const uint32_t alias27[] = {5, 1, 2, 3, 0}; /* OTP 27's aliases: 5 words */
    static const uint32_t usual_pid[] = {0x7FFF, 0x1FFF};
    static const uint32_t big_id[] = {0x8000, 0};
    static const uint32_t big_serial[] = {1, 0x2000};
    struct {
        int is_ref;
        const char *node;
        int latin1;
        const uint32_t *w;
        size_t words;
        int asked;
    } cases[] = {
        {1, "third@h", 0, usual_ref, 3, 0},  {1, "third@h", 0, high_ref, 3, 1},
        {1, "third@h", 0, alias27, 5, 1},    {1, "peer@h", 0, high_ref, 3, 0},
        {1, "third@h", 1, high_ref, 3, 1},   {0, "third@h", 0, usual_pid, 2, 0},
        {0, "third@h", 0, big_id, 2, 1},     {0, "third@h", 0, big_serial, 2, 1},
        {0, "peer@h", 0, big_id, 2, 0},      {0, "third@h", 1, big_id, 2, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        n = id_term(b, cases[i].is_ref, cases[i].node, cases[i].latin1, 0xABCD1234, cases[i].w, cases[i].words);
        for (int refuse = 0; refuse <= 1; refuse++) {
            memset(&asked, 0, sizeof asked);
            asked.refuse = refuse;
            sender.checked = 0;
            at = 0;
            int want = cases[i].asked && refuse ? TERM_EFOREIGN : TERM_OK;
            CU_ASSERT_EQUAL(term_skip_cached((const char *)b, n, &at, 4, NULL, &sender), want);
            CU_ASSERT_EQUAL(asked.calls, cases[i].asked);
            CU_ASSERT_EQUAL(sender.checked, (unsigned long long)cases[i].asked);
            if (cases[i].asked) {
                CU_ASSERT_EQUAL(asked.is_ref, cases[i].is_ref);
                CU_ASSERT_STRING_EQUAL(asked.node, "third@h");
                CU_ASSERT_EQUAL(asked.creation, 0xABCD1234);
                CU_ASSERT_EQUAL(asked.first, cases[i].w[0]);
                CU_ASSERT_EQUAL(asked.words, cases[i].words);
            }
            /* Without a sender, or without a check, nothing is asked. */
            memset(&asked, 0, sizeof asked);
            at = 0;
            CU_ASSERT_EQUAL(term_skip_cached((const char *)b, n, &at, 4, NULL, NULL), TERM_OK);
            CU_ASSERT_EQUAL(term_skip((const char *)b, n, &(size_t){0}, 4), TERM_OK);
            CU_ASSERT_EQUAL(asked.calls, 0);
            /* In a control tuple, the same. */
            memset(&asked, 0, sizeof asked);
            asked.refuse = refuse;
            term_view els[2];
            int arity;
            at = 0;
            CU_ASSERT_EQUAL(term_tuple_elements((const char *)b, n, &at, 4, NULL, &sender, els, 2, &arity), want);
            CU_ASSERT_EQUAL(asked.calls, cases[i].asked);
        }
    }
    /* The old tags: a PID_EXT of a third node with a big ID is asked about. */
    static const unsigned char old_pid[] = {103, 100, 0, 7, 't', 'h', 'i', 'r', 'd', '@', 'h',
                                            0, 1, 0, 0, 0, 0, 0, 0, 1};
    memset(&asked, 0, sizeof asked);
    asked.refuse = 1;
    at = 0;
    CU_ASSERT_EQUAL(term_skip_cached((const char *)old_pid, sizeof old_pid, &at, 4, NULL, &sender), TERM_EFOREIGN);
    CU_ASSERT_EQUAL(asked.first, 0x10000);
    CU_ASSERT_EQUAL(asked.creation, 1);
}

/* The ASCII fast path reads atoms' text a word at a time, and a word and
 * what is left at the end: 0xFF (never UTF-8) at every place of atoms of 0
 * to 40 bytes is refused, and the all-ASCII ones accepted, each with and
 * without bytes after the atom. */
static void test_ascii_check(void)
{
    unsigned char a[2 + 40 + 8];
    for (size_t n = 0; n <= 40; n++) {
        for (size_t after = 0; after <= 8; after += 8) {
            a[0] = 119;
            a[1] = (unsigned char)n;
            memset(a + 2, 'x', n + after);
            size_t len = 2 + n + after, at = 0;
            CU_ASSERT_EQUAL(term_skip((const char *)a, len, &at, 4), TERM_OK);
            CU_ASSERT_EQUAL(at, 2 + n);
            for (size_t k = 0; k < n; k++) {
                a[2 + k] = 0xFF;
                at = 0;
                CU_ASSERT_EQUAL(term_skip((const char *)a, len, &at, 4), TERM_EBAD);
                a[2 + k] = 'x';
            }
        }
    }
}

/* A control tuple's elements, in one walk. */
static void test_tuple_elements(void)
{
    /* {6, Pid, '', foo} as a REG_SEND's control */
    unsigned char t[64];
    size_t n = 0;
    t[n++] = 104;
    t[n++] = 4;
    t[n++] = 97;
    t[n++] = 6;
    memcpy(t + n, otp_pid, sizeof otp_pid);
    n += sizeof otp_pid;
    t[n++] = 119;
    t[n++] = 0;
    memcpy(t + n, otp_foo, sizeof otp_foo);
    n += sizeof otp_foo;
    term_view els[4];
    int arity = -1;
    size_t at = 0;
    CU_ASSERT_EQUAL_FATAL(term_tuple_elements((const char *)t, n, &at, 16, NULL, NULL, els, 4, &arity), TERM_OK);
    CU_ASSERT_EQUAL(at, n);
    CU_ASSERT_EQUAL(arity, 4);
    CU_ASSERT(els[0].ptr == (const char *)t + 2 && els[0].len == 2);
    CU_ASSERT(els[1].len == sizeof otp_pid && memcmp(els[1].ptr, otp_pid, sizeof otp_pid) == 0);
    CU_ASSERT(els[2].len == 2);
    CU_ASSERT(els[3].len == sizeof otp_foo && memcmp(els[3].ptr, otp_foo, sizeof otp_foo) == 0);
    /* more elements than room, a truncation anywhere, not a tuple */
    at = 0;
    CU_ASSERT_EQUAL(term_tuple_elements((const char *)t, n, &at, 16, NULL, NULL, els, 3, &arity), TERM_EBAD);
    for (size_t cut = 0; cut < n; cut++) {
        at = 0;
        CU_ASSERT_EQUAL(term_tuple_elements((const char *)t, cut, &at, 16, NULL, NULL, els, 4, &arity), TERM_EBAD);
    }
    at = 0;
    CU_ASSERT_EQUAL(term_tuple_elements((const char *)otp_foo, sizeof otp_foo, &at, 16, NULL, NULL, els, 4, &arity),
                    TERM_EBAD);
    /* the depth counts within each element: {[[x]]} takes max_depth 2 */
    static const unsigned char nested[] = {104, 1, 108, 0, 0, 0, 1, 108, 0, 0, 0, 1, 119, 1, 'x', 106, 106};
    at = 0;
    CU_ASSERT_EQUAL(term_tuple_elements((const char *)nested, sizeof nested, &at, 2, NULL, NULL, els, 4, &arity),
                    TERM_OK);
    at = 0;
    CU_ASSERT_EQUAL(term_tuple_elements((const char *)nested, sizeof nested, &at, 1, NULL, NULL, els, 4, &arity),
                    TERM_EDEPTH);
    /* a large tuple header is taken too, with the same bound */
    static const unsigned char large[] = {105, 0, 0, 0, 1, 97, 7};
    at = 0;
    CU_ASSERT_EQUAL(term_tuple_elements((const char *)large, sizeof large, &at, 2, NULL, NULL, els, 4, &arity), TERM_OK);
    CU_ASSERT_EQUAL(arity, 1);
    static const unsigned char huge[] = {105, 255, 255, 255, 255, 97, 7};
    at = 0;
    CU_ASSERT_EQUAL(term_tuple_elements((const char *)huge, sizeof huge, &at, 2, NULL, NULL, els, 4, &arity), TERM_EBAD);
}

/* term_atom_is in place (SMALL_ATOM_UTF8) and in the other encodings. */
static void test_atom_is(void)
{
    static const unsigned char small_utf8[] = {119, 3, 'f', 'o', 'o'};
    static const unsigned char latin1[] = {100, 0, 3, 'f', 'o', 'o'};
    static const unsigned char small_latin1[] = {115, 3, 'f', 'o', 'o'};
    static const unsigned char longer[] = {119, 4, 'f', 'o', 'o', 'd'};
    static const unsigned char cut[] = {119, 3, 'f', 'o'};
    const unsigned char *yes[] = {small_utf8, latin1, small_latin1};
    size_t yes_len[] = {sizeof small_utf8, sizeof latin1, sizeof small_latin1};
    for (int k = 0; k < 3; k++) {
        int i = 0;
        CU_ASSERT(term_atom_is((term_view){(const char *)yes[k], yes_len[k]}, &i, "foo"));
        CU_ASSERT_EQUAL((size_t)i, yes_len[k]);
        i = 0;
        CU_ASSERT_FALSE(term_atom_is((term_view){(const char *)yes[k], yes_len[k]}, &i, "fo"));
        CU_ASSERT_EQUAL(i, 0);
    }
    int i = 0;
    CU_ASSERT_FALSE(term_atom_is((term_view){(const char *)longer, sizeof longer}, &i, "foo"));
    CU_ASSERT_FALSE(term_atom_is((term_view){(const char *)cut, sizeof cut}, &i, "foo"));
    CU_ASSERT_FALSE(term_atom_is((term_view){(const char *)otp_one, sizeof otp_one}, &i, "foo"));
    CU_ASSERT_EQUAL(i, 0);
}

void unit_suite_term(void)
{
    CU_pSuite suite = CU_add_suite("term", NULL, NULL);
    if (!suite)
        return;
    CU_add_test(suite, "atoms in every tag", test_atoms);
    CU_add_test(suite, "atom length and UTF-8 checks", test_atom_limits);
    CU_add_test(suite, "integers small, 32-bit and big", test_integers);
    CU_add_test(suite, "LARGE_BIG_EXT", test_large_big);
    CU_add_test(suite, "floats", test_floats);
    CU_add_test(suite, "repeated map keys, in any encoding", test_repeated_map_keys);
    CU_add_test(suite, "floats under a locale with a decimal comma", test_floats_comma_locale);
    CU_add_test(suite, "lists and strings", test_lists);
    CU_add_test(suite, "STRING_EXT length limit", test_string_limit);
    CU_add_test(suite, "flat list of 1,000,000", test_flat_list);
    CU_add_test(suite, "maps", test_maps);
    CU_add_test(suite, "pids", test_pids);
    CU_add_test(suite, "ports", test_ports);
    CU_add_test(suite, "refs", test_refs);
    CU_add_test(suite, "a checked pid's or reference's length", test_checked_id_len);
    CU_add_test(suite, "binaries and bitstrings", test_binaries);
    CU_add_test(suite, "exports and funs", test_funs);
    CU_add_test(suite, "distinct terms stay distinct", test_distinct);
    CU_add_test(suite, "every truncation refused", test_truncation);
    CU_add_test(suite, "huge counts refused", test_huge_counts);
    CU_add_test(suite, "nesting depth", test_depth);
    CU_add_test(suite, "term_skip_flat: any depth, no recursion", test_skip_flat);
    CU_add_test(suite, "unsupported and unknown tags", test_unsupported);
    CU_add_test(suite, "appending and restoring out", test_appends_and_restores);
    CU_add_test(suite, "term_strerror", test_strerror);
    CU_add_test(suite, "the validated-atom cache", test_atom_cache);
    CU_add_test(suite, "a byte over 127 anywhere in an atom", test_ascii_check);
    CU_add_test(suite, "term_tuple_elements", test_tuple_elements);
    CU_add_test(suite, "third nodes' pids and references", test_third_node_ids);
    CU_add_test(suite, "term_atom_is", test_atom_is);
}

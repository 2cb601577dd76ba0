/* test_dist_memo.c: which bytes of a term are its shape (term_shape.h), and
 * frames accepted by shape (dist_memo.h), on frames as a BEAM caller sends
 * them. That the memo's verdicts agree with the whole check is also checked
 * on every frame the other suites feed (wire.c) in the sanitizer build, and
 * by the fuzzers. */
#include <ei.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist_memo.h"
#include "term.h"
#include "term_shape.h"
#include "unit.h"

#define PEER_NODE "client@127.0.0.1"

static erlang_pid pid_of(unsigned num, unsigned serial)
{
    erlang_pid p;
    memset(&p, 0, sizeof p);
    strcpy(p.node, PEER_NODE);
    p.num = num;
    p.serial = serial;
    p.creation = 0x5eed;
    return p;
}

static erlang_ref ref_of(unsigned a, unsigned b, unsigned c)
{
    erlang_ref r;
    memset(&r, 0, sizeof r);
    strcpy(r.node, PEER_NODE);
    r.len = 3;
    r.n[0] = a;
    r.n[1] = b;
    r.n[2] = c;
    r.creation = 0x5eed;
    return r;
}

/* The frame of a gen_server:call of {get, Key} from pid (num) with the
 * alias tag [alias | Ref], as OTP 25 sends it: 'p', the REG_SEND control
 * tuple, 131, the message. key: an atom, or NULL for the integer ikey. */
/* A new frame's 'p' and REG_SEND control tuple from p to kv, and the
 * message's 131. */
static void reg_send_head(ei_x_buff *f, const erlang_pid *p)
{
    char pass = 112;
    ei_x_new(f);
    ei_x_append_buf(f, &pass, 1);
    ei_x_encode_version(f);
    ei_x_encode_tuple_header(f, 4);
    ei_x_encode_long(f, 6);
    ei_x_encode_pid(f, p);
    ei_x_encode_atom(f, "");
    ei_x_encode_atom(f, "kv");
    ei_x_encode_version(f);
}

static void call_frame(ei_x_buff *f, unsigned num, unsigned refword, const char *key, long ikey)
{
    erlang_pid p = pid_of(num, 0);
    erlang_ref r = ref_of(refword, refword * 7u, 0x12345u);
    reg_send_head(f, &p);
    ei_x_encode_tuple_header(f, 3);
    ei_x_encode_atom(f, "$gen_call");
    ei_x_encode_tuple_header(f, 2);
    ei_x_encode_pid(f, &p);
    ei_x_encode_list_header(f, 1);
    ei_x_encode_atom(f, "alias");
    ei_x_encode_ref(f, &r);
    ei_x_encode_tuple_header(f, 2);
    ei_x_encode_atom(f, "get");
    if (key)
        ei_x_encode_atom(f, key);
    else
        ei_x_encode_long(f, ikey);
}

/* Where the terms of frame f lie, as dist.c tells the memo: the control
 * tuple's elements and the message. */
static dist_memo_terms terms_of(const ei_x_buff *f)
{
    dist_memo_terms t = {0};
    size_t i = 2;
    term_view el[DIST_MEMO_TERMS];
    int arity = 0;
    CU_ASSERT_EQUAL_FATAL(term_tuple_elements(f->buff, (size_t)f->index, &i, 16, NULL, NULL, el, DIST_MEMO_TERMS,
                                              &arity), TERM_OK);
    t.n = arity;
    for (int k = 0; k < arity; k++) {
        t.at[k] = (uint16_t)(el[k].ptr - f->buff);
        t.len[k] = (uint16_t)el[k].len;
    }
    t.msg_at = (uint16_t)(i + 1);
    return t;
}

/* ---- term_shape ---- */

static void test_shape_of_a_call(void)
{
    ei_x_buff f;
    call_frame(&f, 5, 1, NULL, 42);
    size_t len = (size_t)f.index, at = terms_of(&f).msg_at, i = at;
    unsigned char *mask = malloc(len);
    CU_ASSERT_EQUAL(term_shape(f.buff, len, &i, mask, 16), 0);
    CU_ASSERT_EQUAL(i, len);
    /* data: the pid's Creation (4) and the low bytes of its ID and Serial
     * (1 + 1), the reference's Creation (4), the low two bytes of its first
     * word (2) and its other two words (8), the integer 42 (1); partly data:
     * the bytes holding the ID's bits 8-15, the Serial's 8-15, the first
     * word's 16-23 (the bits above TERM_USUAL_* are shape: term_sender in
     * term.h). */
    size_t data = 0, partly = 0;
    for (size_t k = at; k < len; k++) {
        data += mask[k] == 0;
        partly += mask[k] != 0 && mask[k] != 0xff;
    }
    CU_ASSERT_EQUAL(data, 6 + 14 + 1);
    CU_ASSERT_EQUAL(partly, 3);
    /* the pid: ID and Serial, then Creation (no other pid in the message) */
    erlang_pid p = pid_of(5, 0);
    ei_x_buff pe;
    ei_x_new(&pe);
    ei_x_encode_pid(&pe, &p);
    char *pid_at = memmem(f.buff + at, len - at, pe.buff, (size_t)pe.index);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pid_at);
    const unsigned char *pm = mask + (pid_at - f.buff) + pe.index - 12;
    static const unsigned char pid_mask[12] = {0xff, 0xff, 0x80, 0, 0xff, 0xff, 0xe0, 0, 0, 0, 0, 0};
    CU_ASSERT_EQUAL(memcmp(pm, pid_mask, 12), 0);
    ei_x_free(&pe);
    CU_ASSERT_EQUAL(mask[len - 1], 0);        /* 42 */
    CU_ASSERT_EQUAL(mask[len - 2], 0xff);     /* its tag */
    CU_ASSERT_EQUAL(mask[at], 0xff);          /* the tuple's tag */
    free(mask);
    ei_x_free(&f);
}

static void test_shape_depth_is_bounded(void)
{
    /* 40 nested 1-tuples around an atom: marked within 40, refused within 16 */
    char buf[2 * 40 + 3];
    for (int k = 0; k < 40; k++) {
        buf[2 * k] = 104;
        buf[2 * k + 1] = 1;
    }
    buf[80] = 119;
    buf[81] = 1;
    buf[82] = 'a';
    unsigned char mask[sizeof buf];
    size_t i = 0;
    CU_ASSERT_EQUAL(term_skip(buf, sizeof buf, &i, 100), TERM_OK);
    i = 0;
    CU_ASSERT_EQUAL(term_shape(buf, sizeof buf, &i, mask, 40), 0);
    CU_ASSERT_EQUAL(i, sizeof buf);
    i = 0;
    CU_ASSERT_EQUAL(term_shape(buf, sizeof buf, &i, mask, 16), -1);
}

static void test_shape_of_a_long_list(void)
{
    /* a list's elements are one level down, however many: no recursion per element */
    ei_x_buff x;
    ei_x_new(&x);
    ei_x_encode_list_header(&x, 100000);
    for (long k = 0; k < 100000; k++)
        ei_x_encode_long(&x, k % 200);
    ei_x_encode_empty_list(&x);
    unsigned char *mask = malloc((size_t)x.index);
    size_t i = 0;
    CU_ASSERT_EQUAL(term_shape(x.buff, (size_t)x.index, &i, mask, 2), 0);
    CU_ASSERT_EQUAL(i, (size_t)x.index);
    CU_ASSERT_EQUAL(mask[5], 0xff); /* the first element's tag */
    CU_ASSERT_EQUAL(mask[6], 0);    /* its value */
    free(mask);
    ei_x_free(&x);
}

static void test_shape_of_other_terms_is_all_shape(void)
{
    /* a float and a string: every byte a shape byte */
    ei_x_buff x;
    ei_x_new(&x);
    ei_x_encode_tuple_header(&x, 2);
    ei_x_encode_double(&x, 1.5);
    ei_x_encode_string(&x, "abc");
    unsigned char *mask = malloc((size_t)x.index);
    size_t i = 0;
    CU_ASSERT_EQUAL(term_shape(x.buff, (size_t)x.index, &i, mask, 16), 0);
    for (size_t k = 0; k < (size_t)x.index; k++)
        CU_ASSERT_EQUAL(mask[k], 0xff);
    free(mask);
    ei_x_free(&x);
}

/* ---- dist_memo ---- */

static void test_memo_learns_on_the_second_sight(void)
{
    dist_memo *m = calloc(1, sizeof *m);
    ei_x_buff a, b, c;
    call_frame(&a, 5, 1, NULL, 42);
    call_frame(&b, 6, 2, NULL, 43);
    call_frame(&c, 900, 77, NULL, 7);
    dist_memo_terms ta = terms_of(&a), tb = terms_of(&b);

    CU_ASSERT_PTR_NULL(dist_memo_find(m, a.buff, (size_t)a.index));
    dist_memo_learn(m, a.buff, (size_t)a.index, &ta);
    CU_ASSERT_EQUAL(m->learned, 0);
    CU_ASSERT_PTR_NULL(dist_memo_find(m, b.buff, (size_t)b.index));
    dist_memo_learn(m, b.buff, (size_t)b.index, &tb);
    CU_ASSERT_EQUAL(m->learned, 1);

    /* another caller, another reference, another integer: the same shape */
    const dist_memo_terms *t = dist_memo_find(m, c.buff, (size_t)c.index);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    dist_memo_terms tc = terms_of(&c);
    CU_ASSERT_EQUAL(t->n, tc.n);
    CU_ASSERT_EQUAL(t->msg_at, tc.msg_at);
    for (int k = 0; k < tc.n; k++) {
        CU_ASSERT_EQUAL(t->at[k], tc.at[k]);
        CU_ASSERT_EQUAL(t->len[k], tc.len[k]);
    }
    CU_ASSERT_EQUAL(m->hits, 1);
    ei_x_free(&a);
    ei_x_free(&b);
    ei_x_free(&c);
    free(m);
}

/* A REG_SEND to kv of the map #{K1 => a, K2 => b}. */
static void map_frame(ei_x_buff *f, long k1, long k2)
{
    erlang_pid p = pid_of(5, 0);
    reg_send_head(f, &p);
    ei_x_encode_map_header(f, 2);
    ei_x_encode_long(f, k1);
    ei_x_encode_atom(f, "a");
    ei_x_encode_long(f, k2);
    ei_x_encode_atom(f, "b");
}

/* A map's keys are all shape: a frame whose keys repeat (refused by the
 * check) never matches one learned with distinct keys. */
static void test_memo_compares_map_keys(void)
{
    dist_memo *m = calloc(1, sizeof *m);
    ei_x_buff a, b, same, repeated;
    map_frame(&a, 1, 2);
    map_frame(&b, 1, 2);
    map_frame(&same, 1, 2);
    map_frame(&repeated, 1, 1);
    CU_ASSERT_EQUAL_FATAL(a.index, repeated.index);
    dist_memo_terms ta = terms_of(&a), tb = terms_of(&b);
    dist_memo_learn(m, a.buff, (size_t)a.index, &ta);
    dist_memo_learn(m, b.buff, (size_t)b.index, &tb);
    CU_ASSERT_EQUAL_FATAL(m->learned, 1);
    CU_ASSERT_PTR_NOT_NULL(dist_memo_find(m, same.buff, (size_t)same.index));
    CU_ASSERT_PTR_NULL(dist_memo_find(m, repeated.buff, (size_t)repeated.index));
    size_t i = (size_t)repeated.index - 15; /* the map: 5 + 2 + 3 + 2 + 3 bytes */
    CU_ASSERT_EQUAL((unsigned char)repeated.buff[i], 116);
    CU_ASSERT_EQUAL(term_skip(repeated.buff, (size_t)repeated.index, &i, 16), TERM_EBAD);
    ei_x_free(&a);
    ei_x_free(&b);
    ei_x_free(&same);
    ei_x_free(&repeated);
    free(m);
}

/* A frame of another op never matches a learned one, even where the two
 * share a slot (the slot's hash as dist_memo.c computes it). */
static void test_memo_tells_ops_apart(void)
{
    dist_memo *m = calloc(1, sizeof *m);
    ei_x_buff a, b;
    call_frame(&a, 5, 1, NULL, 42);
    call_frame(&b, 6, 2, NULL, 43);
    dist_memo_terms ta = terms_of(&a), tb = terms_of(&b);
    dist_memo_learn(m, a.buff, (size_t)a.index, &ta);
    dist_memo_learn(m, b.buff, (size_t)b.index, &tb);
    CU_ASSERT_EQUAL_FATAL(m->learned, 1);
    CU_ASSERT_EQUAL_FATAL((unsigned char)b.buff[5], 6); /* REG_SEND */
    uint32_t len = (uint32_t)b.index, same = ((len << 8 | 6u) * 0x9E3779B1u) >> 29 & (DIST_MEMO_SLOTS - 1);
    unsigned other = 0;
    for (unsigned op = 1; op < 128 && !other; op++)
        if (op != 6 && (((len << 8 | op) * 0x9E3779B1u) >> 29 & (DIST_MEMO_SLOTS - 1)) == same)
            other = op;
    CU_ASSERT_FATAL(other != 0);
    b.buff[5] = (char)other;
    CU_ASSERT_PTR_NULL(dist_memo_find(m, b.buff, (size_t)b.index));
    b.buff[5] = 6;
    CU_ASSERT_PTR_NOT_NULL(dist_memo_find(m, b.buff, (size_t)b.index));
    ei_x_free(&a);
    ei_x_free(&b);
    free(m);
}

static void test_memo_tells_shapes_apart(void)
{
    dist_memo *m = calloc(1, sizeof *m);
    ei_x_buff a, b;
    call_frame(&a, 5, 1, "k", 0);
    dist_memo_terms ta = terms_of(&a);
    for (int k = 0; k < 2; k++) {
        CU_ASSERT_PTR_NULL(dist_memo_find(m, a.buff, (size_t)a.index));
        dist_memo_learn(m, a.buff, (size_t)a.index, &ta);
    }
    CU_ASSERT_PTR_NOT_NULL(dist_memo_find(m, a.buff, (size_t)a.index));

    /* the same length, another atom: a shape byte differs */
    call_frame(&b, 5, 1, "j", 0);
    CU_ASSERT_EQUAL(a.index, b.index);
    CU_ASSERT_PTR_NULL(dist_memo_find(m, b.buff, (size_t)b.index));
    /* every single byte changed in a shape byte misses, in a data byte hits */
    size_t len = (size_t)a.index, i = 2;
    unsigned char *mask = malloc(len);
    mask[0] = mask[1] = mask[ta.msg_at - 1] = 0xff; /* 'p' and the two 131s */
    CU_ASSERT_EQUAL_FATAL(term_shape(a.buff, len, &i, mask, 16), 0);
    CU_ASSERT_EQUAL_FATAL(i + 1, ta.msg_at);
    i = ta.msg_at;
    CU_ASSERT_EQUAL_FATAL(term_shape(a.buff, len, &i, mask, 16), 0);
    for (size_t k = 0; k < len; k++) {
        a.buff[k] ^= 0x5a;
        const dist_memo_terms *t = dist_memo_find(m, a.buff, len);
        /* the op (k 5) is a data byte, but it picks the slot: another op looks elsewhere */
        CU_ASSERT((t != NULL) == (k != 5 && (mask[k] & 0x5a) == 0));
        a.buff[k] ^= 0x5a;
    }
    /* a shorter frame never matches a longer one's shape */
    CU_ASSERT_PTR_NULL(dist_memo_find(m, a.buff, len - 1));
    /* Another caller and tag: found. A pid's ID past 15 bits, a reference's
     * first word past 18: not found, and so checked whole (term_sender). */
    struct { unsigned num, refword; int found; } other[] = {
        {9, 2, 1}, {0x7fff, 0x3ffff, 1}, {0x8000, 1, 0}, {5, 0x40000, 0}, {5 | 1u << 27, 1, 0}};
    for (size_t k = 0; k < sizeof other / sizeof other[0]; k++) {
        ei_x_buff c;
        call_frame(&c, other[k].num, other[k].refword, "k", 0);
        CU_ASSERT_EQUAL_FATAL(c.index, a.index);
        CU_ASSERT_EQUAL((dist_memo_find(m, c.buff, (size_t)c.index) != NULL), other[k].found);
        ei_x_free(&c);
    }
    free(mask);
    ei_x_free(&a);
    ei_x_free(&b);
    free(m);
}

static void test_memo_waits_longer_for_shapes_that_never_repeat(void)
{
    /* 400 frames of one length and op, each of another shape (another atom
     * key): the memo learns a few, then waits ever longer */
    dist_memo *m = calloc(1, sizeof *m);
    char key[8];
    for (int k = 0; k < 400; k++) {
        ei_x_buff f;
        snprintf(key, sizeof key, "k%03d", k);
        call_frame(&f, 5, (unsigned)k, key, 0);
        dist_memo_terms t = terms_of(&f);
        CU_ASSERT_PTR_NULL(dist_memo_find(m, f.buff, (size_t)f.index));
        dist_memo_learn(m, f.buff, (size_t)f.index, &t);
        ei_x_free(&f);
    }
    CU_ASSERT(m->learned >= 3 && m->learned <= 12);
    CU_ASSERT_EQUAL(m->hits, 0);
    free(m);
}

static void test_memo_leaves_out_large_frames(void)
{
    /* a key of 400 bytes: over DIST_MEMO_BYTES, checked whole every time */
    dist_memo *m = calloc(1, sizeof *m);
    char key[401];
    memset(key, 'x', 400);
    key[400] = 0;
    ei_x_buff f;
    ei_x_new(&f);
    char pass = 112;
    ei_x_append_buf(&f, &pass, 1);
    ei_x_encode_version(&f);
    ei_x_encode_tuple_header(&f, 2);
    ei_x_encode_long(&f, 2);
    ei_x_encode_binary(&f, key, 400);
    dist_memo_terms t = {.n = 2, .at = {4, 6}, .len = {2, 405}};
    for (int k = 0; k < 4; k++) {
        CU_ASSERT_PTR_NULL(dist_memo_find(m, f.buff, (size_t)f.index));
        dist_memo_learn(m, f.buff, (size_t)f.index, &t);
    }
    CU_ASSERT_EQUAL(m->learned, 0);
    ei_x_free(&f);
    free(m);
}

void unit_suite_dist_memo(void)
{
    CU_pSuite suite = CU_add_suite("dist_memo", NULL, NULL);
    if (!suite)
        return;
    CU_add_test(suite, "the shape of a call", test_shape_of_a_call);
    CU_add_test(suite, "shapes are marked within a depth", test_shape_depth_is_bounded);
    CU_add_test(suite, "a long list is marked without recursion per element", test_shape_of_a_long_list);
    CU_add_test(suite, "floats and strings are all shape", test_shape_of_other_terms_is_all_shape);
    CU_add_test(suite, "a shape is learned on the second sight", test_memo_learns_on_the_second_sight);
    CU_add_test(suite, "shape bytes tell frames apart, data bytes do not", test_memo_tells_shapes_apart);
    CU_add_test(suite, "frames of other ops never match", test_memo_tells_ops_apart);
    CU_add_test(suite, "a map's keys are shape", test_memo_compares_map_keys);
    CU_add_test(suite, "shapes that never repeat make it wait longer",
                test_memo_waits_longer_for_shapes_that_never_repeat);
    CU_add_test(suite, "large frames are checked whole", test_memo_leaves_out_large_frames);
}

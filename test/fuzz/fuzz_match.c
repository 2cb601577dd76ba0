/*
 * fuzz_match.c: the public term readers (gcn_type, gcn_match, gcn_get_*,
 * the iterators) on arbitrary bytes, as a module meets what a peer sends.
 * The input is the term's bytes, in a buffer of exactly their size (so
 * AddressSanitizer sees any overread); every reader is run on it, and on
 * each element an iterator yields, with every kind of capture. Checked:
 *   - nothing reads outside the term, whatever the bytes;
 *   - a reader says yes only to one well-formed term (term_skip agrees);
 *   - what a capture returns agrees with erl_interface's decoders, and a
 *     ~t capture is itself one well-formed term inside the input;
 *   - gcn_build writes back what ~t captured, and gcn_match reads it again.
 * Any disagreement aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen_cnode.h"
#include "log.h"
#include "buffer.h"
#include "term.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_match: %s\n", what);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level(LOG_ERROR);
    return 0;
}

static int one_term(gcn_term t) { return term_skip_one(t) == TERM_OK; }

/* A view must lie inside the input. */
static void inside(gcn_term part, gcn_term whole)
{
    if (part.len && (part.ptr < whole.ptr || part.ptr + part.len > whole.ptr + whole.len))
        fail("a capture points outside the term");
}

static void readers(gcn_term t, int depth);

/* A big integer whose digits are all zero: 0, whatever its sign byte says
 * (binary_to_term reads it as 0; ei refuses the negative one). */
static int zero_big(gcn_term t)
{
    size_t n, at;
    if (t.len >= 3 && (unsigned char)t.ptr[0] == ERL_SMALL_BIG_EXT)
        n = (unsigned char)t.ptr[1], at = 3;
    else if (t.len >= 6 && (unsigned char)t.ptr[0] == ERL_LARGE_BIG_EXT)
        n = get_u32(t.ptr + 1), at = 6;
    else
        return 0;
    if (at + n != t.len)
        return 0;
    for (size_t k = 0; k < n; k++)
        if (t.ptr[at + k])
            return 0;
    return 1;
}

static void captures(gcn_term t)
{
    int64_t i;
    uint64_t u;
    double d;
    char atom[GCN_ATOM_MAX];
    gcn_bin bin;
    gcn_term a, b, c;
    int whole = one_term(t);
    if (gcn_match(t, "~i", &i)) {
        int k = 0;
        long long ll;
        if (!whole || (zero_big(t) ? i != 0 : ei_decode_longlong(t.ptr, &k, &ll) < 0 || ll != i))
            fail("~i disagrees with ei_decode_longlong");
    }
    if (gcn_match(t, "~u", &u)) {
        int k = 0;
        unsigned long long ull;
        if (!whole || (zero_big(t) ? u != 0 : ei_decode_ulonglong(t.ptr, &k, &ull) < 0 || ull != u))
            fail("~u disagrees with ei_decode_ulonglong");
    }
    if (gcn_match(t, "~f", &d) && !whole)
        fail("~f matched what is not one term");
    if (gcn_match(t, "~a", atom)) {
        if (!whole || strlen(atom) >= GCN_ATOM_MAX || !gcn_is_atom(t, atom))
            fail("~a disagrees with gcn_is_atom");
    }
    if (gcn_match(t, "~b", &bin)) {
        if (!whole || gcn_type(t) != GCN_BINARY)
            fail("~b matched a non-binary");
        inside((gcn_term){bin.ptr, bin.len}, t);
    }
    if (gcn_match(t, "{~t, ~t}", &a, &b)) {
        inside(a, t), inside(b, t);
        if (!one_term(a) || !one_term(b))
            fail("a ~t capture is not one term");
        gcn_buf *w = gcn_buf_new();
        gcn_term a2, b2;
        if (w && gcn_build(w, "{~t, ~t}", a, b) == 0) {
            gcn_term back = gcn_buf_term(w);
            if (!gcn_match(back, "{~t, ~t}", &a2, &b2) || a2.len != a.len || b2.len != b.len ||
                memcmp(a2.ptr, a.ptr, a.len) || memcmp(b2.ptr, b.ptr, b.len))
                fail("gcn_build of ~t captures does not read back");
        }
        gcn_buf_free(w);
    }
    if (gcn_match(t, "[~t | _]", &a))
        inside(a, t);
    gcn_match(t, "{put, ~t, ~t}", &a, &b);
    gcn_match(t, "{take, ~i}", &i);
    gcn_match(t, "#{rate => ~i, burst => ~i}", &i, &i);
    gcn_match(t, "[~t, ~t, ~t]", &a, &b, &c);
    gcn_match(t, "{~p, ~l, ~m}", &a, &b, &c);
    gcn_match(t, "[a, \"b\", -1, _]");
    gcn_get_int(t, &i);
    gcn_get_uint(t, &u);
    gcn_get_double(t, &d);
    gcn_get_atom(t, atom);
    gcn_get_binary(t, &bin);
    gcn_is_atom(t, "ok");
}

static void walk(gcn_term t, long (*start)(gcn_term, gcn_iter *), int depth)
{
    gcn_iter it;
    gcn_term e;
    long n = start(t, &it);
    if (n < 0)
        return;
    if (start == gcn_iter_map)
        n *= 2; /* pairs, yielded key, value, key, value, ... */
    if (!one_term(t))
        fail("an iterator accepted what is not one term");
    long seen = 0;
    while (gcn_next(&it, &e)) {
        if (++seen > n)
            fail("an iterator yields more than it said");
        if (e.ptr < t.ptr || e.ptr + e.len > t.ptr + t.len) {
            /* a byte of a "string" list may come from a table of its own */
            if (e.len != 2 || (unsigned char)e.ptr[0] != ERL_SMALL_INTEGER_EXT)
                fail("an element points outside the term");
        }
        if (!one_term(e))
            fail("an element is not one term");
        readers(e, depth + 1);
    }
    if (seen != n)
        fail("an iterator yields fewer than it said");
}

static void readers(gcn_term t, int depth)
{
    int type = gcn_type(t);
    if (type && !one_term(t))
        fail("gcn_type typed what is not one term");
    if (!type && one_term(t))
        fail("gcn_type refused one well-formed term");
    captures(t);
    if (depth >= 4) /* the elements of elements: enough to meet every kind */
        return;
    walk(t, gcn_iter_tuple, depth);
    walk(t, gcn_iter_list, depth);
    walk(t, gcn_iter_map, depth);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    readers((gcn_term){copy, size}, 0);
    free(copy);
    return 0;
}

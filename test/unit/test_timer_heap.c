/* test_timer_heap.c: the timer heap against plain references (a sorted list,
 * a linear scan), FIFO ties, stale ids, memory given back after a burst, and
 * the O(log n) bound counted in comparisons and moves. */
#include <stdint.h>
#include <stdlib.h>

#include "timer_heap.h"
#include "unit.h"

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

static unsigned log2_floor(size_t n)
{
    unsigned l = 0;
    while (n >>= 1)
        l++;
    return l;
}

enum { PENDING, CANCELLED, FIRED };

struct rec {
    uint64_t deadline;
    uint64_t id;
    size_t order; /* index in the order of adding */
    int state;
};

static int by_deadline_then_order(const void *a, const void *b)
{
    const struct rec *x = *(const struct rec *const *)a, *y = *(const struct rec *const *)b;
    if (x->deadline != y->deadline)
        return x->deadline < y->deadline ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* 100k timers added as time moves on, random cancels (of pending and of
 * fired or cancelled ones) and pop_due rounds interleaved. Every answer is
 * checked against the records; at the end the order things fired in must be
 * that of all fired records sorted by (deadline, order of adding). */
static void test_against_sorted_reference(void)
{
    enum { N = 100000 };
    rng_state = 0x9e3779b97f4a7c15u;
    struct rec *recs = calloc(N, sizeof *recs);
    struct rec **fired = calloc(N, sizeof *fired), **sorted = calloc(N, sizeof *sorted);
    timer_heap *h = timer_heap_create();
    CU_ASSERT_FATAL(recs && fired && sorted && h);
    size_t nfired = 0, pending = 0, bad = 0;
    uint64_t now = 1000;
    for (size_t i = 0; i < N; i++) {
        now += rnd() % 3;
        recs[i] = (struct rec){now + rnd() % 1000, 0, i, PENDING};
        recs[i].id = timer_heap_add(h, recs[i].deadline, &recs[i]);
        bad += recs[i].id == 0;
        pending++;
        if (rnd() % 4 == 0) {
            struct rec *r = &recs[rnd() % (i + 1)];
            void *p = NULL;
            int got = timer_heap_cancel(h, r->id, &p);
            if (got != (r->state == PENDING) || (got && p != r))
                bad++;
            if (got) {
                r->state = CANCELLED;
                pending--;
            }
        }
        if (rnd() % 3 == 0) {
            uint64_t id;
            void *p;
            while (timer_heap_pop_due(h, now, &id, &p)) {
                struct rec *r = p;
                if (r->state != PENDING || r->id != id || r->deadline > now)
                    bad++;
                r->state = FIRED;
                fired[nfired++] = r;
                pending--;
            }
            uint64_t next;
            if (timer_heap_next(h, &next) && next <= now)
                bad++;
        }
        if (timer_heap_size(h) != pending)
            bad++;
    }
    uint64_t id;
    void *p;
    while (timer_heap_pop_any(h, &id, &p)) {
        struct rec *r = p;
        if (r->state != PENDING || r->id != id)
            bad++;
        r->state = FIRED;
        fired[nfired++] = r;
        pending--;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(pending, 0);
    CU_ASSERT_EQUAL(timer_heap_size(h), 0);
    CU_ASSERT_FALSE(timer_heap_next(h, NULL));

    size_t nsorted = 0;
    for (size_t i = 0; i < N; i++)
        if (recs[i].state == FIRED)
            sorted[nsorted++] = &recs[i];
    CU_ASSERT_EQUAL(nsorted, nfired);
    CU_ASSERT(nfired > N / 2 && nfired < N); /* both cancels and fires happened */
    qsort(sorted, nsorted, sizeof *sorted, by_deadline_then_order);
    size_t mismatches = 0;
    for (size_t i = 0; i < nfired && i < nsorted; i++)
        mismatches += fired[i] != sorted[i];
    CU_ASSERT_EQUAL(mismatches, 0);
    /* Nothing fired or cancelled can be cancelled any more. */
    size_t cancelled = 0;
    for (size_t i = 0; i < N; i++)
        cancelled += (size_t)timer_heap_cancel(h, recs[i].id, NULL);
    CU_ASSERT_EQUAL(cancelled, 0);
    timer_heap_destroy(h);
    free(recs);
    free(fired);
    free(sorted);
}

/* Random adds, cancels (stale ids too) and pops against a naive reference:
 * the pending records, the earliest found by a linear scan at every pop. */
static void test_against_naive_reference(void)
{
    enum { OPS = 30000 };
    rng_state = 12345;
    struct rec *recs = calloc(OPS, sizeof *recs);
    struct rec **live = calloc(OPS, sizeof *live);
    timer_heap *h = timer_heap_create();
    CU_ASSERT_FATAL(recs && live && h);
    size_t nrecs = 0, nlive = 0, bad = 0, pops = 0, cancels = 0;
    for (size_t op = 0; op < OPS; op++) {
        unsigned what = (unsigned)(rnd() % 10);
        if (what < 5) {
            struct rec *r = &recs[nrecs];
            *r = (struct rec){rnd() % 500, 0, nrecs, PENDING};
            r->id = timer_heap_add(h, r->deadline, r);
            bad += r->id == 0;
            nrecs++;
            live[nlive++] = r;
        } else if (what < 7) {
            if (nrecs == 0)
                continue;
            struct rec *r = &recs[rnd() % nrecs];
            void *p = NULL;
            int got = timer_heap_cancel(h, r->id, &p);
            if (got != (r->state == PENDING) || (got && p != r))
                bad++;
            if (got) {
                r->state = CANCELLED;
                cancels++;
                for (size_t i = 0; i < nlive; i++)
                    if (live[i] == r) {
                        live[i] = live[--nlive];
                        break;
                    }
            }
        } else {
            size_t best = SIZE_MAX;
            for (size_t i = 0; i < nlive; i++)
                if (best == SIZE_MAX || by_deadline_then_order(&live[i], &live[best]) < 0)
                    best = i;
            uint64_t next = 0, id = 0;
            void *p = NULL;
            int has_next = timer_heap_next(h, &next);
            int got = timer_heap_pop_any(h, &id, &p);
            if (best == SIZE_MAX) {
                bad += has_next || got;
                continue;
            }
            struct rec *r = live[best];
            if (!has_next || next != r->deadline || !got || p != r || id != r->id)
                bad++;
            r->state = FIRED;
            pops++;
            live[best] = live[--nlive];
        }
        if (timer_heap_size(h) != nlive)
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(pops > 1000 && cancels > 1000);
    void *p;
    while (timer_heap_pop_any(h, NULL, &p))
        ;
    timer_heap_destroy(h);
    free(recs);
    free(live);
}

/* Equal deadlines fire in the order they were added, whatever was added,
 * cancelled or popped in between. */
static void test_fifo_ties(void)
{
    enum { N = 3000 };
    static struct rec recs[N];
    timer_heap *h = timer_heap_create();
    CU_ASSERT_FATAL(h != NULL);
    rng_state = 777;
    for (size_t i = 0; i < N; i++) {
        recs[i] = (struct rec){rnd() % 4, 0, i, PENDING};
        recs[i].id = timer_heap_add(h, recs[i].deadline, &recs[i]);
        if (i % 7 == 3) { /* cancel an earlier one now and then */
            struct rec *r = &recs[rnd() % (i + 1)];
            if (timer_heap_cancel(h, r->id, NULL))
                r->state = CANCELLED;
        }
    }
    size_t bad = 0, n = 0;
    const struct rec *prev = NULL;
    void *p;
    while (timer_heap_pop_due(h, 3, NULL, &p)) {
        const struct rec *r = p;
        if (r->state != PENDING || (prev && (r->deadline < prev->deadline ||
                                             (r->deadline == prev->deadline && r->order < prev->order))))
            bad++;
        prev = r;
        n++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(n > N / 2);
    CU_ASSERT_EQUAL(timer_heap_size(h), 0);

    /* All at one deadline: exactly the order of adding. */
    for (size_t i = 0; i < 100; i++)
        timer_heap_add(h, 42, &recs[i]);
    bad = 0;
    for (size_t i = 0; i < 100; i++)
        if (!timer_heap_pop_any(h, NULL, &p) || p != &recs[i])
            bad++;
    CU_ASSERT_EQUAL(bad, 0);
    timer_heap_destroy(h);
}

/* An id that fired or was cancelled cannot cancel the newer timer that now
 * uses its slot, nor can an id that never existed. */
static void test_stale_ids(void)
{
    timer_heap *h = timer_heap_create();
    CU_ASSERT_FATAL(h != NULL);
    int a, b, c;
    void *p = NULL;
    uint64_t id_a = timer_heap_add(h, 10, &a), popped = 0;
    CU_ASSERT(id_a != 0);
    CU_ASSERT_TRUE(timer_heap_pop_due(h, 10, &popped, &p));
    CU_ASSERT_EQUAL(popped, id_a);
    CU_ASSERT_PTR_EQUAL(p, &a);
    uint64_t id_b = timer_heap_add(h, 20, &b);
    CU_ASSERT(id_b != 0 && id_b != id_a);
    CU_ASSERT_EQUAL((uint32_t)id_b, (uint32_t)id_a); /* the same slot, reused */
    CU_ASSERT_FALSE(timer_heap_cancel(h, id_a, &p));
    CU_ASSERT_EQUAL(timer_heap_size(h), 1);
    CU_ASSERT_TRUE(timer_heap_cancel(h, id_b, &p));
    CU_ASSERT_PTR_EQUAL(p, &b);
    CU_ASSERT_FALSE(timer_heap_cancel(h, id_b, &p)); /* twice */
    uint64_t id_c = timer_heap_add(h, 30, &c);
    CU_ASSERT_EQUAL((uint32_t)id_c, (uint32_t)id_a);
    CU_ASSERT(id_c != id_a && id_c != id_b);
    CU_ASSERT_FALSE(timer_heap_cancel(h, id_a, NULL));
    CU_ASSERT_FALSE(timer_heap_cancel(h, id_b, NULL));
    CU_ASSERT_FALSE(timer_heap_cancel(h, 0, NULL));
    CU_ASSERT_FALSE(timer_heap_cancel(h, id_c + (UINT64_C(2) << 32), NULL)); /* a generation not given yet */
    CU_ASSERT_FALSE(timer_heap_cancel(h, id_c ^ 1, NULL)); /* a slot never used */
    CU_ASSERT_FALSE(timer_heap_cancel(h, UINT64_MAX, NULL));
    CU_ASSERT_EQUAL(timer_heap_size(h), 1);
    CU_ASSERT_TRUE(timer_heap_cancel(h, id_c, &p));
    CU_ASSERT_PTR_EQUAL(p, &c);

    /* Across the table being cut and halved: 10,000 ids, all cancelled (the
     * table shrinks), then 10,000 new timers in the same slots, none of which
     * an old id can touch. */
    enum { N = 10000 };
    static uint64_t old[N], young[N];
    size_t big = 0;
    for (size_t i = 0; i < N; i++)
        old[i] = timer_heap_add(h, i, NULL);
    big = timer_heap_memory(h);
    for (size_t i = 0; i < N; i++)
        timer_heap_cancel(h, old[i], NULL);
    CU_ASSERT(timer_heap_memory(h) < big / 8);
    size_t reused = 0, bad = 0;
    for (size_t i = 0; i < N; i++) {
        young[i] = timer_heap_add(h, i, NULL);
        reused += (uint32_t)young[i] == (uint32_t)old[i];
        bad += young[i] == old[i];
    }
    CU_ASSERT(reused > N / 2);
    CU_ASSERT_EQUAL(bad, 0);
    size_t cancelled = 0;
    for (size_t i = 0; i < N; i++)
        cancelled += (size_t)timer_heap_cancel(h, old[i], NULL);
    CU_ASSERT_EQUAL(cancelled, 0);
    CU_ASSERT_EQUAL(timer_heap_size(h), N);
    for (size_t i = 0; i < N; i++)
        cancelled += (size_t)timer_heap_cancel(h, young[i], NULL);
    CU_ASSERT_EQUAL(cancelled, N);
    timer_heap_destroy(h);
}

static void test_pop_due_and_next(void)
{
    timer_heap *h = timer_heap_create();
    CU_ASSERT_FATAL(h != NULL);
    uint64_t next = 99, id;
    void *p;
    CU_ASSERT_EQUAL(timer_heap_size(h), 0);
    CU_ASSERT_FALSE(timer_heap_next(h, &next));
    CU_ASSERT_FALSE(timer_heap_pop_due(h, UINT64_MAX, &id, &p));
    CU_ASSERT_FALSE(timer_heap_pop_any(h, &id, &p));
    int x[4];
    uint64_t i30 = timer_heap_add(h, 30, &x[3]);
    uint64_t i10 = timer_heap_add(h, 10, &x[1]);
    uint64_t i20 = timer_heap_add(h, 20, &x[2]);
    uint64_t i0 = timer_heap_add(h, 0, &x[0]);
    CU_ASSERT(i30 && i10 && i20 && i0);
    CU_ASSERT_TRUE(timer_heap_next(h, &next));
    CU_ASSERT_EQUAL(next, 0);
    CU_ASSERT_TRUE(timer_heap_pop_due(h, 0, &id, &p));
    CU_ASSERT_EQUAL(id, i0);
    CU_ASSERT_TRUE(timer_heap_next(h, &next));
    CU_ASSERT_EQUAL(next, 10);
    CU_ASSERT_FALSE(timer_heap_pop_due(h, 9, &id, &p));
    CU_ASSERT_EQUAL(timer_heap_size(h), 3);
    CU_ASSERT_TRUE(timer_heap_pop_due(h, 10, &id, &p));
    CU_ASSERT_EQUAL(id, i10);
    CU_ASSERT_PTR_EQUAL(p, &x[1]);
    CU_ASSERT_TRUE(timer_heap_pop_due(h, 25, &id, &p));
    CU_ASSERT_EQUAL(id, i20);
    CU_ASSERT_FALSE(timer_heap_pop_due(h, 25, &id, &p));
    CU_ASSERT_TRUE(timer_heap_next(h, &next));
    CU_ASSERT_EQUAL(next, 30);
    /* Cancelling the earliest moves next on. */
    uint64_t i5 = timer_heap_add(h, 5, NULL);
    CU_ASSERT_TRUE(timer_heap_next(h, &next));
    CU_ASSERT_EQUAL(next, 5);
    CU_ASSERT_TRUE(timer_heap_cancel(h, i5, NULL));
    CU_ASSERT_TRUE(timer_heap_next(h, &next));
    CU_ASSERT_EQUAL(next, 30);
    CU_ASSERT_TRUE(timer_heap_pop_due(h, UINT64_MAX, NULL, NULL));
    CU_ASSERT_EQUAL(timer_heap_size(h), 0);
    CU_ASSERT_FALSE(timer_heap_next(h, &next));
    timer_heap_destroy(h);
    timer_heap_destroy(NULL);
}

/* After a burst, memory goes back to what the survivors need: when the
 * burst fires, and when its timers are replaced one by one by others. */
static void test_memory_shrinks(void)
{
    enum { BURST = 1 << 17, KEEP = 100 };
    timer_heap *h = timer_heap_create();
    CU_ASSERT_FATAL(h != NULL);
    size_t small = timer_heap_memory(h);
    CU_ASSERT(small < 4096);
    for (size_t i = 0; i < KEEP; i++)
        timer_heap_add(h, 1000000 + i, NULL);
    for (size_t i = 0; i < BURST; i++)
        timer_heap_add(h, i % 5000, NULL);
    size_t big = timer_heap_memory(h);
    CU_ASSERT(big > BURST * 24);
    while (timer_heap_pop_due(h, 999999, NULL, NULL))
        ;
    CU_ASSERT_EQUAL(timer_heap_size(h), KEEP);
    CU_ASSERT(timer_heap_memory(h) <= 16 * 1024);

    /* A burst whose timers do not all fire at once: 1000 of them stay
     * pending at any time, each replaced by a new one when it fires. The
     * pending ones are scattered over the whole slot table at first; the
     * new ones go to its bottom, the top drains and is given back. */
    rng_state = 4242;
    for (size_t i = 0; i < BURST; i++)
        timer_heap_add(h, 2000000 + rnd() % BURST, NULL);
    while (timer_heap_size(h) > KEEP + 1000)
        timer_heap_pop_any(h, NULL, NULL);
    big = timer_heap_memory(h);
    CU_ASSERT(big > BURST * 16);
    uint64_t now = 2000000;
    for (size_t round = 0; round < 20000; round++) {
        now += 1;
        if (timer_heap_pop_any(h, NULL, NULL))
            timer_heap_add(h, now + 1000000 + rnd() % 1000, NULL);
    }
    CU_ASSERT_EQUAL(timer_heap_size(h), KEEP + 1000);
    CU_ASSERT(timer_heap_memory(h) <= 256 * 1024); /* from 4 MB: 1100 pending need 4096 of each */
    while (timer_heap_pop_any(h, NULL, NULL))
        ;
    CU_ASSERT(timer_heap_memory(h) <= small * 2);
    timer_heap_destroy(h);
}

/* 1M adds then 1M cancels in random order: each costs at most
 * 3 * log2(n) + 3 comparisons and moves (the bound of a sift), and the
 * average add of random deadlines stays near constant. */
static void test_log_n_bound(void)
{
    enum { N = 1 << 20 };
    uint64_t *ids = malloc(N * sizeof *ids);
    timer_heap *h = timer_heap_create();
    CU_ASSERT_FATAL(ids && h);
    rng_state = 99;
    uint64_t before, total = 0, bound_total = 0;
    size_t over = 0;
    for (size_t i = 0; i < N; i++) {
        before = timer_heap_steps(h);
        ids[i] = timer_heap_add(h, rnd() % N, NULL);
        uint64_t cost = timer_heap_steps(h) - before, bound = 3 * (log2_floor(i + 1) + 1);
        over += cost > bound;
        total += cost;
        bound_total += bound;
    }
    CU_ASSERT_EQUAL(over, 0);
    CU_ASSERT(total < (uint64_t)N * 8); /* random adds: O(1) on average */
    for (size_t i = N - 1; i > 0; i--) {
        size_t j = (size_t)(rnd() % (i + 1));
        uint64_t t = ids[i];
        ids[i] = ids[j];
        ids[j] = t;
    }
    size_t cancelled = 0;
    total = bound_total = 0;
    for (size_t i = 0; i < N; i++) {
        size_t n = timer_heap_size(h);
        before = timer_heap_steps(h);
        cancelled += (size_t)timer_heap_cancel(h, ids[i], NULL);
        uint64_t cost = timer_heap_steps(h) - before, bound = 3 * (log2_floor(n) + 1);
        over += cost > bound;
        total += cost;
        bound_total += bound;
    }
    CU_ASSERT_EQUAL(cancelled, N);
    CU_ASSERT_EQUAL(over, 0);
    CU_ASSERT(total <= bound_total);
    CU_ASSERT_EQUAL(timer_heap_size(h), 0);
    timer_heap_destroy(h);
    free(ids);
}

void unit_suite_timer_heap(void)
{
    CU_pSuite suite = CU_add_suite("timer_heap", NULL, NULL);
    if (!suite)
        return;
    CU_add_test(suite, "100k timers against a sorted reference", test_against_sorted_reference);
    CU_add_test(suite, "random operations against a naive reference", test_against_naive_reference);
    CU_add_test(suite, "equal deadlines pop in the order added", test_fifo_ties);
    CU_add_test(suite, "stale ids cancel nothing", test_stale_ids);
    CU_add_test(suite, "pop_due respects now; next deadline", test_pop_due_and_next);
    CU_add_test(suite, "memory shrinks after a burst", test_memory_shrinks);
    CU_add_test(suite, "1M adds and cancels within c*log2(n) steps each", test_log_n_bound);
}

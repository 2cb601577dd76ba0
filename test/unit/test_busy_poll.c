/* test_busy_poll.c: the policy that decides whether to poll after an answer,
 * fed with made-up intervals from one answer to the next (the loop's own use
 * is in test_loop.c). */
#include "busy_poll.h"
#include "unit.h"

#define US 1000LL
#define TRIAL (BUSY_POLL_PHASES * BUSY_POLL_PHASE_SAMPLES)

/* Samples as the loop gives them: on_us from an answer after which it
 * polled, off_us from one after which it slept, one every 50 µs from *now. */
static void feed(busy_poll *bp, long long on_us, long long off_us, int samples, long long *now)
{
    for (int i = 0; i < samples; i++) {
        *now += 50 * US;
        busy_poll_sample(bp, (bp->on ? on_us : off_us) * US, bp->on, *now);
    }
}

static void test_polls_where_it_pays(void)
{
    busy_poll bp;
    long long now = 1000000 * US;
    busy_poll_init(&bp, 100, 1);
    CU_ASSERT(bp.on);
    CU_ASSERT_EQUAL(busy_poll_window(&bp), 100 * US);
    feed(&bp, 20, 60, TRIAL, &now);
    CU_ASSERT_EQUAL(bp.trials, 1);
    CU_ASSERT(bp.on);
    CU_ASSERT_EQUAL(bp.polling_ns, 20 * US);
    CU_ASSERT_EQUAL(bp.sleeping_ns, 60 * US);
    CU_ASSERT(bp.verdict);
    /* A later trial polls and sleeps in turn; the verdict stands meanwhile. */
    now += (long long)BUSY_POLL_TRIAL_EVERY_S * 1000000 * US;
    feed(&bp, 20, 60, BUSY_POLL_PHASE_SAMPLES + 1, &now);
    CU_ASSERT(!bp.on && bp.phase == 1 && bp.verdict);
}

static void test_sleeps_where_it_does_not(void)
{
    busy_poll bp;
    long long now = 0;
    busy_poll_init(&bp, 100, 1);
    feed(&bp, 40, 41, TRIAL, &now); /* 1 µs an answer: not worth the CPU */
    /* against polling, the verdict before any trial: a doubt, settled by the
     * trial BUSY_POLL_CONFIRM_S later (a noisy warm-up cannot switch it) */
    CU_ASSERT_EQUAL(bp.trials, 1);
    CU_ASSERT(bp.on && bp.verdict && bp.doubted);
    feed(&bp, 40, 41, TRIAL, &now); /* less than BUSY_POLL_CONFIRM_S later */
    CU_ASSERT_EQUAL(bp.trials, 1);
    now += (long long)BUSY_POLL_CONFIRM_S * 1000000 * US;
    feed(&bp, 40, 41, TRIAL, &now);
    CU_ASSERT_EQUAL(bp.trials, 2);
    CU_ASSERT(!bp.on && !bp.verdict && !bp.doubted);
    CU_ASSERT_EQUAL(busy_poll_window(&bp), 0);
    /* No new trial before BUSY_POLL_TRIAL_EVERY_S... */
    feed(&bp, 10, 60, TRIAL, &now);
    CU_ASSERT_EQUAL(bp.trials, 2);
    CU_ASSERT(!bp.on);
    /* ...then one, which finds that polling pays now: a doubt, which the
     * trial BUSY_POLL_CONFIRM_S later settles. */
    now += (long long)BUSY_POLL_TRIAL_EVERY_S * 1000000 * US;
    feed(&bp, 10, 60, TRIAL, &now);
    CU_ASSERT_EQUAL(bp.trials, 3);
    CU_ASSERT(!bp.on && bp.doubted);
    now += (long long)BUSY_POLL_CONFIRM_S * 1000000 * US;
    feed(&bp, 10, 60, TRIAL, &now);
    CU_ASSERT_EQUAL(bp.trials, 4);
    CU_ASSERT(bp.on && bp.verdict && !bp.doubted);
    CU_ASSERT_EQUAL(bp.every_s, BUSY_POLL_TRIAL_EVERY_S);
}

#define S (1000000 * US)

/* One trial that says otherwise (a noisy minute) does not switch: the one
 * after it, soon, does not agree, and the verdict stands throughout. */
static void test_one_noisy_trial_does_not_switch(void)
{
    busy_poll bp;
    long long now = 0;
    busy_poll_init(&bp, 100, 1);
    feed(&bp, 20, 60, TRIAL, &now);
    CU_ASSERT(bp.verdict && bp.trials == 1);
    now += BUSY_POLL_TRIAL_EVERY_S * S;
    feed(&bp, 60, 60, TRIAL, &now); /* the sleeping phases as quick: noise */
    CU_ASSERT_EQUAL(bp.trials, 2);
    CU_ASSERT(bp.on && bp.verdict && bp.doubted);
    /* No trial before BUSY_POLL_CONFIRM_S, then one that polls again. */
    feed(&bp, 60, 60, TRIAL, &now);
    CU_ASSERT_EQUAL(bp.trials, 2);
    now += BUSY_POLL_CONFIRM_S * S;
    feed(&bp, 20, 60, TRIAL, &now);
    CU_ASSERT_EQUAL(bp.trials, 3);
    CU_ASSERT(bp.on && bp.verdict && !bp.doubted);
    CU_ASSERT_EQUAL(bp.every_s, BUSY_POLL_TRIAL_EVERY_S); /* not later after a doubt */
}

/* Trials that agree come twice as late each time, up to the bound. */
static void test_agreeing_trials_grow_rare(void)
{
    busy_poll bp;
    long long now = 0;
    busy_poll_init(&bp, 100, 1);
    feed(&bp, 20, 60, TRIAL, &now);
    long long every = BUSY_POLL_TRIAL_EVERY_S;
    for (unsigned long t = 2; t <= 8; t++) {
        long long next = every * 2 < BUSY_POLL_TRIAL_MAX_S ? every * 2 : BUSY_POLL_TRIAL_MAX_S;
        now += every * S - S; /* a second early: nothing */
        feed(&bp, 20, 60, TRIAL, &now);
        CU_ASSERT_EQUAL(bp.trials, t - 1);
        now += S;
        feed(&bp, 20, 60, TRIAL, &now);
        CU_ASSERT_EQUAL(bp.trials, t);
        CU_ASSERT(bp.on && !bp.doubted);
        CU_ASSERT_EQUAL(bp.every_s, next);
        every = next;
    }
    CU_ASSERT_EQUAL(bp.every_s, BUSY_POLL_TRIAL_MAX_S);
}

static void test_trial_alternates_and_ignores_thinking(void)
{
    busy_poll bp;
    long long now = 0;
    busy_poll_init(&bp, 100, 1);
    int switches = 0, was = bp.on;
    for (int i = 0; i < TRIAL - 1; i++) {
        now += 50 * US;
        busy_poll_sample(&bp, 30 * US, bp.on, now);
        /* a peer that thought a while: left out, and counts for no phase */
        busy_poll_sample(&bp, (BUSY_POLL_MAX_SAMPLE_US + 1) * US, bp.on, now);
        busy_poll_sample(&bp, -1, bp.on, now);
        switches += bp.on != was;
        was = bp.on;
    }
    CU_ASSERT_EQUAL(bp.trials, 0);
    CU_ASSERT_EQUAL(switches, BUSY_POLL_PHASES - 1);
    CU_ASSERT_EQUAL(bp.count[0] + bp.count[1], TRIAL - 1);
    busy_poll_sample(&bp, 30 * US, bp.on, now);
    CU_ASSERT_EQUAL(bp.trials, 1);
    CU_ASSERT(bp.on && bp.doubted); /* the same either way: no gain, a doubt */
}

/* An interval belongs to the mode in force after the answer it starts
 * from: the one across a phase's change counts for the phase before. */
static void test_interval_counts_for_its_mode(void)
{
    busy_poll bp;
    long long now = 0;
    busy_poll_init(&bp, 100, 1);
    busy_poll_sample(&bp, 30 * US, 1, now += 50 * US); /* starts the trial: polling */
    CU_ASSERT(bp.on && bp.phase == 0);
    busy_poll_sample(&bp, 70 * US, 0, now += 50 * US);
    CU_ASSERT_EQUAL(bp.count[1], 1);
    CU_ASSERT_EQUAL(bp.count[0], 1);
    CU_ASSERT_EQUAL(bp.sum_ns[0], 70 * US);
    /* Polling in every phase (a peer too quick to tell apart): no verdict
     * for polling without a sleeping phase's word. */
    busy_poll_init(&bp, 100, 1);
    for (int i = 0; i < TRIAL; i++)
        busy_poll_sample(&bp, 30 * US, 1, now += 50 * US);
    CU_ASSERT_EQUAL(bp.trials, 1);
    CU_ASSERT(bp.doubted);
}

static void test_fixed_never_changes(void)
{
    busy_poll bp;
    long long now = 0;
    busy_poll_init(&bp, 100, 0);
    feed(&bp, 60, 10, 2 * TRIAL, &now);
    CU_ASSERT(bp.on && bp.trials == 0);
    CU_ASSERT_EQUAL(busy_poll_window(&bp), 100 * US);
    busy_poll_init(&bp, 0, 1); /* automatic with no window: off */
    feed(&bp, 10, 60, 2 * TRIAL, &now);
    CU_ASSERT(!bp.on && !bp.automatic && bp.trials == 0);
    CU_ASSERT_EQUAL(busy_poll_window(&bp), 0);
}

void unit_suite_busy_poll(void)
{
    CU_pSuite suite = CU_add_suite("busy_poll", NULL, NULL);
    if (!suite)
        return;
    CU_add_test(suite, "polls where polling pays", test_polls_where_it_pays);
    CU_add_test(suite, "an interval counts for the mode it started under", test_interval_counts_for_its_mode);
    CU_add_test(suite, "sleeps where it does not, trying again later", test_sleeps_where_it_does_not);
    CU_add_test(suite, "one noisy trial does not switch polling", test_one_noisy_trial_does_not_switch);
    CU_add_test(suite, "trials that agree grow rare", test_agreeing_trials_grow_rare);
    CU_add_test(suite, "a trial alternates, leaving out peers that think", test_trial_alternates_and_ignores_thinking);
    CU_add_test(suite, "--busy-poll given: fixed", test_fixed_never_changes);
}

/*
 * busy_poll.h: whether the event loop keeps polling after an answer, found
 * out on this machine by measuring it rather than guessed.
 *
 * Polling after a turn that answered saves the cost of sleeping in epoll_wait
 * and being woken for the next request. What that is worth differs from one
 * machine to the next by more than the call itself: on some virtual machines
 * waking an idle CPU costs tens of microseconds, elsewhere polling only takes
 * the core from the peer it waits for. So, in automatic mode, the loop feeds
 * this policy one sample per answer: the turnaround, from the turn that
 * answered to the next input. Now and then (at the first answers, then every
 * BUSY_POLL_TRIAL_EVERY_S) a trial alternates polling and sleeping over
 * BUSY_POLL_PHASES phases of BUSY_POLL_PHASE_SAMPLES samples each, and the
 * loop polls from then on only if polling cut the mean turnaround by at least
 * BUSY_POLL_GAIN_PCT per cent. Turnarounds over BUSY_POLL_MAX_SAMPLE_US are
 * the peer thinking, not the machine waking, and are left out.
 * Fixed mode (--busy-poll given) polls for its window, or never, and measures
 * nothing. Plain data: no allocation, no clock of its own (times are given).
 */
#ifndef GEN_CNODE_BUSY_POLL_H
#define GEN_CNODE_BUSY_POLL_H

#define BUSY_POLL_PHASES 8
#define BUSY_POLL_PHASE_SAMPLES 200
#define BUSY_POLL_MAX_SAMPLE_US 2000
#define BUSY_POLL_GAIN_PCT 10
#define BUSY_POLL_TRIAL_EVERY_S 60

typedef struct busy_poll {
    long long window_ns;     /* how long to poll, when polling */
    int automatic;           /* 0: fixed (window_ns, or never when 0) */
    int on;                  /* polling now (during a trial: as its phase says) */
    int verdict;             /* polling outside trials: the last trial's verdict */
    int phase;               /* the trial's phase (even: polling), or -1 between trials */
    int phase_samples;       /* samples in this phase so far */
    long long sum_ns[2];     /* this trial's turnarounds: [0] sleeping, [1] polling */
    long count[2];
    long long next_trial_ns; /* when the next trial starts (at its first sample after) */
    /* The last trial's verdict, for the stats: mean turnarounds (ns). */
    long long polling_ns, sleeping_ns;
    unsigned long trials;
} busy_poll;

/* Fixed: poll window_us after each answer (0: never). Automatic: decide as
 * above, polling window_us while polling; the first trial starts at once. */
void busy_poll_init(busy_poll *bp, int window_us, int automatic);

/* How long to poll after an answer now (ns; 0: sleep at once). */
static inline long long busy_poll_window(const busy_poll *bp)
{
    return bp->on ? bp->window_ns : 0;
}

/* One turnaround: an answer went out turnaround_ns before the next input
 * came in, at now_ns (any monotonic clock, the same for every call). */
void busy_poll_sample(busy_poll *bp, long long turnaround_ns, long long now_ns);

#endif

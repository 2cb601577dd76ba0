/*
 * busy_poll.h: whether the event loop keeps polling after an answer, found
 * out on this machine by measuring it rather than guessed.
 *
 * Polling after a turn that answered saves the cost of sleeping in epoll_wait
 * and being woken for the next request: the node's own wake-up, and the
 * peer's send, which must wake a sleeping CPU. What that is worth differs
 * from one machine to the next by more than the call itself: on some virtual
 * machines waking an idle CPU costs tens of microseconds, elsewhere polling
 * only takes the core from the peer it waits for. So, in automatic mode, the
 * loop feeds this policy one sample per answer: the interval since the
 * answer before, which for a peer making one call at a time is its whole
 * round trip, both sides' wake-ups included. Now and then (at the first
 * answers, then every BUSY_POLL_TRIAL_EVERY_S) a trial alternates polling and
 * sleeping over BUSY_POLL_PHASES phases of BUSY_POLL_PHASE_SAMPLES samples
 * each, and the loop polls from then on only if polling cut the mean
 * interval by at least BUSY_POLL_GAIN_NS. The verdict before any trial is
 * to poll. A trial that disagrees with the standing verdict is a doubt, and
 * a second trial BUSY_POLL_CONFIRM_S later decides (so one noisy minute, a
 * neighbour taking the CPU in the polling phases, say, cannot switch polling
 * off until the next trial: measured, a first trial in the warm-up of a
 * benchmark once did, for its whole latency figure). A trial that agrees doubles the time to
 * the next, up to BUSY_POLL_TRIAL_MAX_S: on a machine that keeps its
 * character, trials, whose sleeping phases cost latency, grow rare.
 * Intervals over
 * BUSY_POLL_MAX_SAMPLE_US are peers thinking, or streams of casts between
 * calls, not the machine waking, and are left out.
 *
 * Measured on a 2-core VM (BENCHMARKS.md, 2026-11-28): until then the sample
 * was the turnaround from an answer to the peer's next input, over phases of
 * 200. From a BEAM caller that next input is its demonitor, not its next
 * call, and phases that short hid most of the gain: fixed polling beat
 * sleeping by 8-9 µs a call, the trials saw 0-10 µs, and their verdict
 * changed from run to run (2 of 4 sequential runs: sleep). Answer to answer
 * over phases of 2,000, they saw 4-11 µs in each of 9 runs.
 *
 * Fixed mode (--busy-poll given) polls for its window, or never, and measures
 * nothing. Plain data: no allocation, no clock of its own (times are given).
 */
#ifndef GEN_CNODE_BUSY_POLL_H
#define GEN_CNODE_BUSY_POLL_H

#define BUSY_POLL_PHASES 8
#define BUSY_POLL_PHASE_SAMPLES 2000
#define BUSY_POLL_MAX_SAMPLE_US 500
#define BUSY_POLL_GAIN_NS 2000
#define BUSY_POLL_TRIAL_EVERY_S 60
#define BUSY_POLL_TRIAL_MAX_S 960
#define BUSY_POLL_CONFIRM_S 5

typedef struct busy_poll {
    long long window_ns;     /* how long to poll, when polling */
    int automatic;           /* 0: fixed (window_ns, or never when 0) */
    int on;                  /* polling now (during a trial: as its phase says) */
    int verdict;             /* polling outside trials: the last trial's verdict */
    int phase;               /* the trial's phase (even: polling), or -1 between trials */
    int phase_samples;       /* samples in this phase so far */
    long long sum_ns[2];     /* this trial's intervals: [0] sleeping, [1] polling */
    long count[2];
    long long next_trial_ns; /* when the next trial starts (at its first sample after) */
    long long every_s;       /* the time from a trial that agreed to the next */
    int doubted;             /* the last trial disagreed: the next one decides */
    /* The last trial's measurements, for the stats: mean intervals (ns). */
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

/* One interval: an answer went out interval_ns after the one before, at
 * now_ns (any monotonic clock, the same for every call); polled says whether
 * the loop was to poll after that one (the mode then in force). */
void busy_poll_sample(busy_poll *bp, long long interval_ns, int polled, long long now_ns);

#endif

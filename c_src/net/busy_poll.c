/* busy_poll.c: polling after an answer only where it measurably pays; see busy_poll.h. */
#include "busy_poll.h"

void busy_poll_init(busy_poll *bp, int window_us, int automatic)
{
    *bp = (busy_poll){0};
    bp->window_ns = window_us > 0 ? (long long)window_us * 1000 : 0;
    bp->automatic = automatic && bp->window_ns > 0;
    bp->on = bp->verdict = bp->window_ns > 0;
    bp->phase = -1; /* next_trial_ns 0: the first trial starts at the first sample */
    bp->every_s = BUSY_POLL_TRIAL_EVERY_S;
}

static void start_trial(busy_poll *bp)
{
    bp->phase = 0;
    bp->phase_samples = 0;
    bp->sum_ns[0] = bp->sum_ns[1] = 0;
    bp->count[0] = bp->count[1] = 0;
    bp->on = 1;
}

static void end_trial(busy_poll *bp, long long now_ns)
{
    bp->sleeping_ns = bp->count[0] ? bp->sum_ns[0] / bp->count[0] : 0;
    bp->polling_ns = bp->count[1] ? bp->sum_ns[1] / bp->count[1] : 0;
    /* Polling costs CPU: keep it only for a clear gain. */
    int said = bp->count[0] > 0 && bp->count[1] > 0 &&
               bp->sleeping_ns - bp->polling_ns >= BUSY_POLL_GAIN_NS;
    long long next_s;
    if (said == bp->verdict) { /* confirmed: try again later */
        if (!bp->doubted && bp->trials > 0) /* twice as late, unless the trial before doubted */
            bp->every_s = bp->every_s * 2 < BUSY_POLL_TRIAL_MAX_S ? bp->every_s * 2 : BUSY_POLL_TRIAL_MAX_S;
        bp->doubted = 0;
        next_s = bp->every_s;
    } else if (!bp->doubted) { /* one trial against: ask again soon */
        bp->doubted = 1;
        next_s = BUSY_POLL_CONFIRM_S;
    } else { /* two in a row against the verdict */
        bp->verdict = said;
        bp->doubted = 0;
        bp->every_s = BUSY_POLL_TRIAL_EVERY_S;
        next_s = bp->every_s;
    }
    bp->on = bp->verdict;
    bp->trials++;
    bp->phase = -1;
    bp->next_trial_ns = now_ns + next_s * 1000000000;
}

void busy_poll_sample(busy_poll *bp, long long interval_ns, int polled, long long now_ns)
{
    if (!bp->automatic || interval_ns < 0 || interval_ns > (long long)BUSY_POLL_MAX_SAMPLE_US * 1000)
        return;
    if (bp->phase < 0) {
        if (now_ns < bp->next_trial_ns)
            return;
        start_trial(bp);
    }
    /* The sample belongs to the mode in force after the answer it starts
     * from: at a phase's change, the last interval of the old one. */
    bp->sum_ns[polled != 0] += interval_ns;
    bp->count[polled != 0]++;
    if (++bp->phase_samples < BUSY_POLL_PHASE_SAMPLES)
        return;
    bp->phase_samples = 0;
    if (++bp->phase == BUSY_POLL_PHASES)
        end_trial(bp, now_ns);
    else
        bp->on = bp->phase % 2 == 0;
}

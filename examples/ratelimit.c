/*
 * ratelimit.c: a token-bucket rate limiter, written only against gen_cnode.h.
 * Shows timers (gcn_send_after), held callers (gcn_hold, gcn_reply_held),
 * the gen_server timeout (gcn_set_timeout) and node_down.
 *
 * Start it with a map: {:start, :ratelimit, %{rate: 50, burst: 10}, [name: :rl]}
 *   rate   tokens added per second (1..1000000)
 *   burst  the most tokens the bucket holds, and what it starts with
 *   idle   optional: stop (reason normal) after this many ms with the
 *          bucket full and no request
 * Calls:
 *   take          :ok, or {:error, :rate_limited} when the bucket is empty
 *   {take, N}     the same for N tokens at once (N <= burst)
 *   {wait, N}     :ok once N tokens could be taken: the caller waits its turn
 *                 (first come, first served) while the bucket refills
 *   tokens        the tokens in the bucket now
 * :sys.get_state shows #{tokens => T, burst => B, rate => R, waiting => W}.
 *
 * Tokens accrue with the time that passed (CLOCK_MONOTONIC), the part of a
 * token not yet earned carried over, so that the rate holds whatever the
 * timer's granularity (whole milliseconds) and lateness. A timer checks the
 * bucket, at most once a millisecond, only while it is not full: a full,
 * idle limiter costs nothing and lets the idle timeout run.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep: plain -std=c11 declares neither */

#include <stdlib.h>
#include <time.h>

#include <gen_cnode.h>

typedef struct waiter {
    struct waiter *next;
    int64_t need;
    gcn_caller *caller;
} waiter;

typedef struct bucket {
    int64_t tokens, burst, rate;
    int64_t since_us;           /* when tokens were last credited */
    int64_t part;               /* a token not yet whole, in millionths */
    int64_t idle_ms;            /* 0: never stop */
    gcn_timer refill;           /* pending refill tick, 0: none (full) */
    waiter *first, **last;      /* FIFO of {wait, N} callers */
    size_t nwaiting;
} bucket;

static const char tick[] = {119, 6, 'r', 'e', 'f', 'i', 'l', 'l'}; /* the atom refill */

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Credit the tokens earned since the last credit; nothing accrues while
 * the bucket is full. */
static void credit(bucket *b)
{
    int64_t now = now_us();
    if (b->tokens < b->burst) {
        b->part += (now - b->since_us) * b->rate;
        int64_t add = b->part / 1000000;
        b->part %= 1000000;
        b->tokens = add >= b->burst - b->tokens ? b->burst : b->tokens + add;
    }
    if (b->tokens == b->burst)
        b->part = 0;
    b->since_us = now;
}

/* Keep ticking while the bucket is not full; when it is, maybe go idle. */
static void schedule(gcn_server *self, bucket *b)
{
    if (b->tokens < b->burst && !b->refill)
        b->refill = gcn_send_after(self, (uint64_t)(1000 / b->rate > 0 ? 1000 / b->rate : 1),
                                   (gcn_term){tick, sizeof tick});
    if (b->tokens == b->burst && !b->first && b->idle_ms)
        gcn_set_timeout(self, (uint64_t)b->idle_ms);
}

/* Answer waiters, in order, while there are tokens for the first. */
static void serve(gcn_server *self, bucket *b)
{
    static const char ok[] = {119, 2, 'o', 'k'};
    while (b->first && b->first->need <= b->tokens) {
        waiter *w = b->first;
        b->tokens -= w->need;
        b->first = w->next;
        if (!b->first)
            b->last = &b->first;
        b->nwaiting--;
        gcn_reply_held(self, w->caller, (gcn_term){ok, sizeof ok});
        free(w);
    }
}

static int rl_init(gcn_server *self, gcn_term arg, gcn_init *out, const char **error)
{
    int64_t rate, burst, idle = 0;
    if (!gcn_match(arg, "#{rate => ~i, burst => ~i}", &rate, &burst) || rate < 1 || rate > 1000000 ||
        burst < 1) {
        *error = "badarg";
        return -1;
    }
    gcn_match(arg, "#{idle => ~i}", &idle);
    bucket *b = calloc(1, sizeof *b);
    if (!b) {
        *error = "out_of_memory";
        return -1;
    }
    b->tokens = b->burst = burst;
    b->rate = rate;
    b->since_us = now_us();
    b->idle_ms = idle > 0 ? idle : 0;
    b->last = &b->first;
    out->state = b;
    schedule(self, b);
    return 0;
}

static enum gcn_result rl_call(gcn_server *self, void *state, gcn_term req, const gcn_from *from,
                               gcn_buf *reply)
{
    bucket *b = state;
    int64_t n = 1;
    credit(b);
    if (gcn_is_atom(req, "tokens")) {
        gcn_put_int(reply, b->tokens);
    } else if (gcn_is_atom(req, "take") || gcn_match(req, "{take, ~i}", &n)) {
        if (n < 1 || n > b->burst) {
            gcn_error(reply, "badarg", req);
        } else if (!b->first && b->tokens >= n) {
            b->tokens -= n;
            gcn_put_atom(reply, "ok");
        } else {
            gcn_build(reply, "{error, rate_limited}");
        }
    } else if (gcn_match(req, "{wait, ~i}", &n) && n >= 1 && n <= b->burst) {
        waiter *w = malloc(sizeof *w);
        if (!w || !(w->caller = gcn_hold(from))) {
            free(w);
            gcn_build(reply, "{error, out_of_memory}");
        } else {
            w->need = n;
            w->next = NULL;
            *b->last = w;
            b->last = &w->next;
            b->nwaiting++;
            serve(self, b);
            schedule(self, b);
            return GCN_NOREPLY; /* answered by serve(), now or after a refill */
        }
    } else {
        gcn_error(reply, "unknown_call", req);
    }
    schedule(self, b);
    return GCN_REPLY;
}

static enum gcn_result rl_info(gcn_server *self, void *state, gcn_term msg)
{
    bucket *b = state;
    if (gcn_is_atom(msg, "refill")) {
        b->refill = 0;
        credit(b);
        serve(self, b);
    } else if (gcn_is_atom(msg, "timeout")) {
        gcn_log(GCN_LOG_INFO, "ratelimit: idle for %lld ms, stopping", (long long)b->idle_ms);
        return GCN_STOP;
    }
    schedule(self, b);
    return GCN_NOREPLY;
}

static void rl_node_down(gcn_server *self, void *state, const char *node, size_t len)
{
    (void)self;
    bucket *b = state;
    b->last = &b->first;
    for (waiter **pw = &b->first; *pw;) {
        waiter *w = *pw;
        if (gcn_caller_on(w->caller, node, len)) {
            *pw = w->next;
            gcn_release(w->caller);
            free(w);
            b->nwaiting--;
        } else {
            pw = &w->next;
            b->last = pw;
        }
    }
}

static int rl_format_state(void *state, gcn_buf *out)
{
    const bucket *b = state;
    return gcn_build(out, "#{tokens => ~i, burst => ~i, rate => ~i, waiting => ~u}", b->tokens,
                     b->burst, b->rate, (uint64_t)b->nwaiting);
}

static void rl_terminate(void *state, gcn_term reason)
{
    (void)reason;
    bucket *b = state;
    while (b->first) {
        waiter *w = b->first;
        b->first = w->next;
        gcn_release(w->caller);
        free(w);
    }
    free(b); /* the refill timer goes with the server */
}

GEN_CNODE_MODULE(ratelimit,
    .init = rl_init,
    .handle_call = rl_call,
    .handle_info = rl_info,
    .node_down = rl_node_down,
    .format_state = rl_format_state,
    .terminate = rl_terminate)

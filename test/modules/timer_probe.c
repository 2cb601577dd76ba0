/*
 * timer_probe.c: a module for the tests of timers (gcn_send_after,
 * gcn_cancel_timer, gcn_set_timeout), written only against gen_cnode.h.
 *   {after, Ms}          replies {fired, Ms, LateUs} once a timer of Ms fired;
 *                        LateUs: how late, by the node's monotonic clock
 *   {cancel, Ms}         sets a timer of Ms and cancels it at once: {cancelled, 1}
 *   {many, N, Ms}        sets N timers of 1..Ms ms; replies {all_fired, N, Early}
 *                        once every one fired (Early: how many fired before time)
 *   {cancel_many, N}     sets N timers of 60 s and cancels them: {cancelled, N}
 *   {timeout, Ms}        ok, and asks for the gen_server timeout: the atom
 *                        timeout arrives Ms later unless another message does
 *   {self_then_timeout, Hops}
 *                        ok; passes {hop, Hops} to itself as mail, Hops
 *                        times, and then sends itself the atom poke and
 *                        asks for a gen_server timeout of 0: poke is in the
 *                        mailbox first, so no timeout may come (OTP's
 *                        `self() ! poke, {noreply, S, 0}`), whichever of
 *                        the node's deliveries of local mail it happens in
 *   pokes                how many pokes arrived
 *   timeouts             how many timeouts arrived
 *   pending              timers of this server not yet fired
 *   job                  job_done, once an empty job ran on a worker thread
 *                        (for the tests of the pool's sharing between modules)
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep: plain -std=c11 declares neither */

#include <stdlib.h>
#include <time.h>

#include <gen_cnode.h>

typedef struct probe {
    gcn_caller *waiting;      /* {after, Ms} or {many, ...} */
    int64_t after_ms;
    uint64_t set_at_us;
    int64_t many_left, many_n, early;
    int64_t timeouts;
    int64_t pokes;
    int64_t pending;
} probe;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int init(gcn_server *self, gcn_term arg, gcn_init *out, const char **error)
{
    (void)self;
    (void)arg;
    out->state = calloc(1, sizeof(probe));
    if (!out->state)
        *error = "out_of_memory";
    return out->state ? 0 : -1;
}

static void empty_run(void *job) { (void)job; }

static enum gcn_result empty_done(gcn_server *self, void *state, void *job)
{
    (void)state;
    gcn_buf *b = gcn_buf_new();
    if (self && b && gcn_put_atom(b, "job_done") == 0)
        gcn_reply_held(self, job, gcn_buf_term(b));
    else
        gcn_release(job);
    gcn_buf_free(b);
    return GCN_NOREPLY;
}

static enum gcn_result call(gcn_server *self, void *state, gcn_term req, const gcn_from *from,
                            gcn_buf *reply)
{
    probe *p = state;
    int64_t ms, n;
    gcn_buf *msg = gcn_buf_new();
    enum gcn_result r = GCN_REPLY;
    if (!msg)
        return gcn_build(reply, "{error, out_of_memory}"), GCN_REPLY;
    if (gcn_match(req, "{after, ~i}", &ms) && ms >= 0 && !p->waiting) {
        gcn_build(msg, "{fired, ~i, ~u}", ms, now_us());
        if (gcn_send_after(self, (uint64_t)ms, gcn_buf_term(msg)) && (p->waiting = gcn_hold(from))) {
            p->pending++;
            r = GCN_NOREPLY;
        } else {
            gcn_build(reply, "{error, no_timer}");
        }
    } else if (gcn_match(req, "{cancel, ~i}", &ms)) {
        gcn_put_atom(msg, "never");
        gcn_timer t = gcn_send_after(self, (uint64_t)ms, gcn_buf_term(msg));
        int first = gcn_cancel_timer(self, t), again = gcn_cancel_timer(self, t);
        gcn_build(reply, "{cancelled, ~i, ~i}", (int64_t)first, (int64_t)again);
    } else if (gcn_match(req, "{many, ~i, ~i}", &n, &ms) && n > 0 && ms > 0 && !p->waiting) {
        uint64_t t0 = now_us();
        int64_t set = 0;
        for (int64_t i = 0; i < n; i++) {
            int64_t d = 1 + (i * 7919) % ms;
            gcn_buf_reset(msg);
            gcn_build(msg, "{one, ~i, ~u}", d, t0);
            set += gcn_send_after(self, (uint64_t)d, gcn_buf_term(msg)) != 0;
        }
        p->many_left = p->many_n = set;
        p->early = 0;
        p->pending += set;
        if (set == n && (p->waiting = gcn_hold(from)))
            r = GCN_NOREPLY;
        else
            gcn_build(reply, "{error, no_timer}");
    } else if (gcn_match(req, "{cancel_many, ~i}", &n) && n > 0) {
        gcn_timer *ts = malloc((size_t)n * sizeof *ts);
        int64_t cancelled = 0;
        gcn_put_atom(msg, "never");
        for (int64_t i = 0; ts && i < n; i++)
            ts[i] = gcn_send_after(self, 60000, gcn_buf_term(msg));
        for (int64_t i = n - 1; ts && i >= 0; i--) /* the newest first: the heap's worst order */
            cancelled += gcn_cancel_timer(self, ts[i]);
        free(ts);
        gcn_build(reply, "{cancelled, ~i}", cancelled);
    } else if (gcn_match(req, "{timeout, ~i}", &ms) && ms >= 0) {
        gcn_set_timeout(self, (uint64_t)ms);
        gcn_put_atom(reply, "ok");
    } else if (gcn_match(req, "{self_then_timeout, ~i}", &n) && n >= 0) {
        gcn_build(msg, "{hop, ~i}", n);
        if (gcn_send(self, gcn_self(self), gcn_buf_term(msg)) == 0)
            gcn_put_atom(reply, "ok");
        else
            gcn_build(reply, "{error, not_sent}");
    } else if (gcn_match(req, "job")) {
        gcn_caller *c = gcn_hold(from);
        if (c && gcn_submit(self, empty_run, empty_done, c) == 0) {
            r = GCN_NOREPLY;
        } else {
            gcn_release(c);
            gcn_build(reply, "{error, not_submitted}");
        }
    } else if (gcn_match(req, "pokes")) {
        gcn_put_int(reply, p->pokes);
    } else if (gcn_match(req, "timeouts")) {
        gcn_put_int(reply, p->timeouts);
    } else if (gcn_match(req, "pending")) {
        gcn_put_int(reply, p->pending);
    } else {
        gcn_error(reply, "unknown_call", req);
    }
    gcn_buf_free(msg);
    return r;
}

static enum gcn_result info(gcn_server *self, void *state, gcn_term msg)
{
    probe *p = state;
    int64_t ms;
    uint64_t at;
    if (gcn_match(msg, "{fired, ~i, ~u}", &ms, &at) && p->waiting) {
        p->pending--;
        int64_t late = (int64_t)(now_us() - at) - ms * 1000;
        gcn_buf *b = gcn_buf_new();
        if (b && gcn_build(b, "{fired, ~i, ~i}", ms, late) == 0)
            gcn_reply_held(self, p->waiting, gcn_buf_term(b));
        else
            gcn_release(p->waiting);
        p->waiting = NULL;
        gcn_buf_free(b);
    } else if (gcn_match(msg, "{one, ~i, ~u}", &ms, &at)) {
        p->pending--;
        p->early += now_us() - at < (uint64_t)ms * 1000;
        if (--p->many_left == 0 && p->waiting) {
            gcn_buf *b = gcn_buf_new();
            if (b && gcn_build(b, "{all_fired, ~i, ~i}", p->many_n, p->early) == 0)
                gcn_reply_held(self, p->waiting, gcn_buf_term(b));
            else
                gcn_release(p->waiting);
            p->waiting = NULL;
            gcn_buf_free(b);
        }
    } else if (gcn_match(msg, "timeout")) {
        p->timeouts++;
    } else if (gcn_match(msg, "poke")) {
        p->pokes++;
    } else if (gcn_match(msg, "{hop, ~i}", &ms)) {
        gcn_buf *b = gcn_buf_new();
        if (b && (ms > 0 ? gcn_build(b, "{hop, ~i}", ms - 1) : gcn_put_atom(b, "poke")) == 0 &&
            gcn_send(self, gcn_self(self), gcn_buf_term(b)) == 0 && ms == 0)
            gcn_set_timeout(self, 0);
        gcn_buf_free(b);
    }
    return GCN_NOREPLY;
}

static int format_state(void *state, gcn_buf *out)
{
    const probe *p = state;
    return gcn_build(out, "#{timeouts => ~i, pending => ~i}", p->timeouts, p->pending);
}

static void terminate(void *state, gcn_term reason)
{
    (void)reason;
    probe *p = state;
    if (p->waiting)
        gcn_release(p->waiting);
    free(p);
}

GEN_CNODE_MODULE(timer_probe, .init = init, .handle_call = call, .handle_info = info,
                 .format_state = format_state, .terminate = terminate)

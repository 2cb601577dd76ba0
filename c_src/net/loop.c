/* loop.c: epoll event loop; see loop.h. */
#include "loop.h"

#include "busy_poll.h"
#include "clock.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define LOOP_BATCH 256

/* Coalescing (loop_coalesce). After a turn that answered no call, a look
 * that does not wait tells whether more input came meanwhile (input_waiting;
 * a turn that answered is not looked after: no syscall per call, and no
 * peer's quick reply to that answer mistaken for load). STREAK_AFTER turns
 * in a row that answered nothing and found input waiting are a one-way
 * stream (casts) that the node keeps catching up with: the next waits sleep
 * on the clock for the window instead of on the descriptors, until a sleep
 * finds nothing. A turn that answered a call ends it, so a call waits one
 * sleep at most, and request-response traffic never starts it: a call from
 * a BEAM node is at most three messages before its answer (monitor, send,
 * demonitor), a few casts before each call a few more, all below
 * STREAK_AFTER. Calls under load are not coalesced: measured, many callers
 * on one client node lost more throughput to the bursts of answers than the
 * node saved (BENCHMARKS.md). */
#define STREAK_AFTER 8

/* Yielding while spinning (loop_spin). Each round of spinning polls once;
 * it used to yield the core first on every round, for the peer it waits for
 * when they share a core. But a yield is a syscall, and it makes the time
 * from a request's arrival to its reading longer. Measured on a 2-core VM
 * (BENCHMARKS.md, A/B of two nodes in the same minutes): polling with no
 * yield at all gave sequential calls 1.5-10 µs less latency, but 64 callers
 * 15-18% fewer calls/s, the client short of a core. So a round yields only
 * if the yield before it came back after YIELD_ALONE_NS or more (something
 * else ran meanwhile) or was YIELD_SKIP rounds ago: where nothing else wants
 * the core, every other round; where something does, every round. That gave
 * 1.5-2.2 µs less latency than yielding every round, and calls/s with 64
 * callers within the noise (0.93-1.02 of it). */
#define YIELD_ALONE_NS 5000
#define YIELD_SKIP 1

struct watch {
    loop_fd_fn *fn;
    void *data;
    int mask;
};

struct loop {
    int epfd;
    int stop;
    struct watch *watches; /* indexed by fd */
    int nwatches;
    loop_timer_fn *timer_fn;
    void *timer_data;
    int timer_ms;
    long long timer_due;
    loop_turn_fn *turn_fn;
    void *turn_data;
    busy_poll bp;      /* whether, and how long, to poll after a turn that answered */
    long long busy_at; /* when the last such turn ended */
    int busy_polling;  /* whether the loop was to poll after it (bp's mode then) */
    int more;          /* the last turn left work: do not wait */
    unsigned long spin_rounds; /* rounds that polled instead of sleeping */
    long long wake_at;         /* µs; 0: none (loop_wake_at) */
    long long coalesce_ns;     /* 0: never (loop_coalesce) */
    long long now_ns;          /* the clock when this turn's wait ended (loop_now_ns) */
    int yield_skip;            /* spinning rounds to poll without a yield (YIELD_SKIP) */
    int streak;                /* turns in a row without an answer that found input waiting */
    unsigned long coalesced;   /* waits that slept on the clock instead */
};

loop *loop_create(void)
{
    loop *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->busy_at = LLONG_MIN / 2; /* long ago: no spinning before a first answer */
    busy_poll_init(&l->bp, 0, 0);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        free(l);
        return NULL;
    }
    return l;
}

void loop_destroy(loop *l)
{
    if (!l)
        return;
    close(l->epfd);
    free(l->watches);
    free(l);
}

static int ensure_slot(loop *l, int fd)
{
    if (fd < l->nwatches)
        return 0;
    int n = l->nwatches ? l->nwatches : 64;
    while (n <= fd)
        n *= 2;
    struct watch *w = realloc(l->watches, (size_t)n * sizeof *w);
    if (!w)
        return -1;
    for (int i = l->nwatches; i < n; i++)
        w[i] = (struct watch){0};
    l->watches = w;
    l->nwatches = n;
    return 0;
}

int loop_watch(loop *l, int fd, int mask, loop_fd_fn *fn, void *data)
{
    if (fd < 0 || ensure_slot(l, fd) < 0)
        return -1;
    struct epoll_event ev = {0};
    ev.events = ((mask & LOOP_READ) ? EPOLLIN : 0) | ((mask & LOOP_WRITE) ? EPOLLOUT : 0);
    ev.data.fd = fd;
    int op = l->watches[fd].fn ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(l->epfd, op, fd, &ev) < 0)
        return -1;
    l->watches[fd] = (struct watch){fn, data, mask};
    return 0;
}

void loop_unwatch(loop *l, int fd)
{
    if (fd < 0 || fd >= l->nwatches || !l->watches[fd].fn)
        return;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    l->watches[fd] = (struct watch){0};
}

void loop_every(loop *l, int interval_ms, loop_timer_fn *fn, void *data)
{
    l->timer_fn = fn;
    l->timer_data = data;
    l->timer_ms = interval_ms;
    l->timer_due = clock_ms() + interval_ms;
}

void loop_after_turn(loop *l, loop_turn_fn *fn, void *data)
{
    l->turn_fn = fn;
    l->turn_data = data;
}

void loop_stop(loop *l) { l->stop = 1; }

void loop_wake_at(loop *l, unsigned long long due_us)
{
    l->wake_at = due_us > (unsigned long long)LLONG_MAX ? LLONG_MAX : (long long)due_us;
}

void loop_spin(loop *l, int usec) { busy_poll_init(&l->bp, usec, 0); }
void loop_spin_auto(loop *l, int usec) { busy_poll_init(&l->bp, usec, 1); }
const busy_poll *loop_busy_poll(const loop *l) { return &l->bp; }
long long loop_now_ns(const loop *l) { return l->now_ns ? l->now_ns : clock_ns(); }
unsigned long loop_spin_rounds(const loop *l) { return l->spin_rounds; }

void loop_coalesce(loop *l, int usec)
{
    l->coalesce_ns = usec > 0 ? (long long)usec * 1000 : 0;
    if (usec > 0) /* the sleep is short: a default 50 µs of slack would double it */
        prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
}
unsigned long loop_coalesced(const loop *l) { return l->coalesced; }
int loop_coalescing(const loop *l)
{
    return l->coalesce_ns && l->streak >= STREAK_AFTER;
}
int loop_coalesce_window_us(const loop *l) { return (int)(l->coalesce_ns / 1000); }

/* After a turn that answered nothing: is more input there already? Events
 * stay ready (level-triggered) for the next wait; only input counts, not a
 * socket that can be written. */
static int input_waiting(loop *l)
{
    struct epoll_event evs[8];
    int m = epoll_wait(l->epfd, evs, 8, 0), waiting = 0;
    for (int i = 0; i < m; i++)
        waiting |= (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0;
    return waiting;
}

static void note_turn(loop *l, int waiting)
{
    l->streak = !waiting ? 0 : l->streak < STREAK_AFTER ? l->streak + 1 : STREAK_AFTER;
}

int loop_once(loop *l, int max_wait_ms)
{
    struct epoll_event evs[LOOP_BATCH];
    int timeout = max_wait_ms;
    long long now = clock_ns(); /* one reading before the wait, one after */
    if (l->timer_fn) {
        long long left = l->timer_due - now / 1000000;
        if (left < 0)
            left = 0;
        if (timeout < 0 || left < timeout)
            timeout = (int)left;
    }
    if (l->wake_at) {
        long long now_us = now / 1000;
        /* no overflow: wake_at >= now_us here, both non-negative */
        long long left_us = l->wake_at > now_us ? l->wake_at - now_us : 0;
        long long left = left_us / 1000 + (left_us % 1000 != 0);
        if (left > INT_MAX)
            left = INT_MAX;
        if (timeout < 0 || left < timeout)
            timeout = (int)left;
    }
    if (l->more)
        timeout = 0;
    int spinning = 0, slept = 0;
    long long spin_ns = busy_poll_window(&l->bp);
    if (timeout != 0 && loop_coalescing(l)) {
        long long ns = l->coalesce_ns;
        if (timeout > 0 && (long long)timeout * 1000000 < ns)
            ns = (long long)timeout * 1000000;
        struct timespec ts = {0, ns};
        clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
        timeout = 0;
        slept = 1;
        l->coalesced++;
    } else if (timeout != 0 && spin_ns && now - l->busy_at < spin_ns) {
        /* Spinning: poll, and let anything else runnable on this core go
         * first (on a small machine that is often the peer we wait for).
         * A yield is a syscall: where one comes back at once, nothing else
         * wanted the core, and the next round polls without one (YIELD_*). */
        timeout = 0;
        spinning = 1;
        l->spin_rounds++;
        if (l->yield_skip > 0) {
            l->yield_skip--;
        } else {
            sched_yield();
            l->yield_skip = clock_ns() - now < YIELD_ALONE_NS ? YIELD_SKIP : 0;
        }
    }
    int n = epoll_wait(l->epfd, evs, LOOP_BATCH, timeout);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    l->now_ns = now = clock_ns();
    if (slept && n == 0) /* caught up: stop */
        l->streak = 0;
    for (int i = 0; i < n; i++) {
        int fd = evs[i].data.fd;
        /* An earlier callback of this turn may have stopped watching fd: look it up afresh. */
        if (fd >= l->nwatches || !l->watches[fd].fn)
            continue;
        struct watch w = l->watches[fd];
        int events = 0;
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
            events |= LOOP_READ;
        if (evs[i].events & EPOLLOUT)
            events |= LOOP_WRITE;
        w.fn(l, fd, events, w.data);
    }
    int timer = l->wake_at && now / 1000 >= l->wake_at;
    if (l->timer_fn && now / 1000000 >= l->timer_due) {
        l->timer_due = now / 1000000 + l->timer_ms;
        l->timer_fn(l, l->timer_data);
        timer = 1;
    }
    /* A round of spinning that found nothing has nothing to finish. */
    if (l->turn_fn && (n > 0 || timer || l->more || !spinning)) {
        int r = l->turn_fn(l, l->turn_data);
        if (r & LOOP_TURN_SENT) /* a call: it ends a stream, and waited one sleep at most */
            l->streak = 0;
        else if (l->coalesce_ns && n > 0 && !slept)
            note_turn(l, input_waiting(l));
        l->more = (r & LOOP_TURN_MORE) != 0;
        if ((r & LOOP_TURN_SENT) && l->bp.window_ns) { /* automatic implies a window */
            long long now = clock_ns();
            /* From one answer to the next: for a peer calling one call at a
             * time, its whole round trip, both sides' wake-ups included. */
            busy_poll_sample(&l->bp, now - l->busy_at, l->busy_polling, now);
            l->busy_at = now;
            l->busy_polling = l->bp.on;
        }
    }
    return 0;
}

int loop_run(loop *l)
{
    while (!l->stop)
        if (loop_once(l, -1) < 0)
            return -1;
    return 0;
}

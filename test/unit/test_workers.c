/* test_workers.c: the worker pool. Every wait is bounded (poll and timed
 * condition waits, a few seconds at most), so a broken pool fails a test
 * rather than hanging the run. CUnit asserts only on the test's thread:
 * jobs record what they saw, the test checks it afterwards. */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "unit.h"
#include "workers.h"

#define WAIT_MS 5000 /* how long a test waits for what should take microseconds */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A deadline for pthread_cond_timedwait (CLOCK_REALTIME), ms from now. */
static struct timespec deadline_in(int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

static int readable(int fd, int timeout_ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {0, (long)ms * 1000000};
    nanosleep(&ts, NULL);
}

/* Wait (bounded) until every submitted job has finished. */
static int wait_idle(workers *w)
{
    for (long long end = now_ms() + WAIT_MS; now_ms() < end; sleep_ms(1))
        if (workers_queued(w) == 0 && workers_running(w) == 0)
            return 1;
    return 0;
}

/* ---- many jobs ---- */

struct square {
    int in;
    long out;
    int runs, dones, ran;
    void *tag;
    int masked; /* SIGINT and SIGTERM were blocked on the worker */
    int order;  /* when it ran / when it was done, for the FIFO test */
};

static void square_run(void *arg)
{
    struct square *s = arg;
    s->out = (long)s->in * s->in;
    s->runs++;
    sigset_t set;
    pthread_sigmask(SIG_BLOCK, NULL, &set);
    s->masked = sigismember(&set, SIGINT) == 1 && sigismember(&set, SIGTERM) == 1;
}

static void square_done(void *arg, void *tag, int ran, void *ctx)
{
    struct square *s = arg;
    s->dones++;
    s->ran = ran;
    s->tag = tag;
    s->order = (*(int *)ctx)++;
}

/* Collect until n jobs came back, driven by poll() on the fd. */
static int collect_all(workers *w, int n, int *count, size_t max)
{
    long long end = now_ms() + WAIT_MS;
    while (*count < n && now_ms() < end)
        if (readable(workers_fd(w), 100))
            workers_collect(w, square_done, count, max);
    return *count;
}

static void test_thousand_jobs(void)
{
    enum { N = 1000 };
    static struct square jobs[N];
    workers *w = workers_create(4);
    CU_ASSERT_FATAL(w != NULL);
    CU_ASSERT_EQUAL(workers_threads(w), 4);
    int fl = fcntl(workers_fd(w), F_GETFL), fd = fcntl(workers_fd(w), F_GETFD);
    CU_ASSERT(fl >= 0 && (fl & O_NONBLOCK));
    CU_ASSERT(fd >= 0 && (fd & FD_CLOEXEC));
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct square){.in = i};
        CU_ASSERT_EQUAL(workers_submit(w, NULL, square_run, &jobs[i], (void *)(uintptr_t)(i + 1)), 0);
    }
    int count = 0;
    CU_ASSERT_EQUAL(collect_all(w, N, &count, 64), N);
    size_t bad = 0;
    for (int i = 0; i < N; i++)
        bad += jobs[i].runs != 1 || jobs[i].dones != 1 || jobs[i].ran != 1 ||
               jobs[i].out != (long)i * i || jobs[i].tag != (void *)(uintptr_t)(i + 1) ||
               !jobs[i].masked;
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(workers_queued(w), 0);
    CU_ASSERT_EQUAL(workers_running(w), 0);
    /* The fd may still read ready (a wake-up for a job an earlier collect
     * took): one collect finds nothing and clears it, for good. */
    CU_ASSERT_EQUAL(workers_collect(w, square_done, &count, 64), 0);
    CU_ASSERT_FALSE(readable(workers_fd(w), 0));
    workers_destroy(w, square_done, &count);
    CU_ASSERT_EQUAL(count, N); /* destroy had nothing left to hand back */
}

/* One thread: jobs run, and come back, in the order submitted. */
struct seq {
    int ran_as;
    int *next_run; /* touched by the one worker only */
};

static void seq_run(void *arg)
{
    struct seq *s = arg;
    s->ran_as = (*s->next_run)++;
}

static void seq_done(void *arg, void *tag, int ran, void *ctx)
{
    (void)arg;
    int *log = ctx;
    if (ran)
        log[log[0]++ + 1] = (int)(uintptr_t)tag;
}

static void test_fifo_one_thread(void)
{
    enum { N = 200 };
    static struct seq jobs[N];
    static int log[N + 1];
    int next_run = 0;
    log[0] = 0;
    workers *w = workers_create(1);
    CU_ASSERT_FATAL(w != NULL);
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct seq){-1, &next_run};
        CU_ASSERT_EQUAL(workers_submit(w, NULL, seq_run, &jobs[i], (void *)(uintptr_t)i), 0);
    }
    for (long long end = now_ms() + WAIT_MS; log[0] < N && now_ms() < end;)
        if (readable(workers_fd(w), 100))
            workers_collect(w, seq_done, log, 7);
    CU_ASSERT_EQUAL(log[0], N);
    size_t bad = 0;
    for (int i = 0; i < N; i++)
        bad += jobs[i].ran_as != i || log[i + 1] != i;
    CU_ASSERT_EQUAL(bad, 0);
    workers_destroy(w, NULL, NULL);
}

/* ---- parallelism: two jobs that each wait for the other ---- */

struct rendezvous {
    pthread_mutex_t m;
    pthread_cond_t c;
    int arrived;
    int met; /* jobs that saw both arrive */
};

static void meet_run(void *arg)
{
    struct rendezvous *r = arg;
    struct timespec end = deadline_in(WAIT_MS);
    pthread_mutex_lock(&r->m);
    r->arrived++;
    pthread_cond_broadcast(&r->c);
    int err = 0;
    while (r->arrived < 2 && err == 0)
        err = pthread_cond_timedwait(&r->c, &r->m, &end);
    if (r->arrived >= 2)
        r->met++;
    pthread_mutex_unlock(&r->m);
}

static void count_done(void *arg, void *tag, int ran, void *ctx)
{
    (void)arg;
    (void)tag;
    *(int *)ctx += ran;
}

static void test_parallel(void)
{
    struct rendezvous r = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    workers *w = workers_create(2);
    CU_ASSERT_FATAL(w != NULL);
    long long start = now_ms();
    CU_ASSERT_EQUAL(workers_submit(w, NULL, meet_run, &r, NULL), 0);
    CU_ASSERT_EQUAL(workers_submit(w, NULL, meet_run, &r, NULL), 0);
    int done = 0;
    for (long long end = now_ms() + 2 * WAIT_MS; done < 2 && now_ms() < end;)
        if (readable(workers_fd(w), 100))
            workers_collect(w, count_done, &done, SIZE_MAX);
    CU_ASSERT_EQUAL(done, 2);
    pthread_mutex_lock(&r.m);
    CU_ASSERT_EQUAL(r.met, 2);
    pthread_mutex_unlock(&r.m);
    CU_ASSERT(now_ms() - start < WAIT_MS); /* they met, neither timed out */
    workers_destroy(w, NULL, NULL);
    pthread_cond_destroy(&r.c);
    pthread_mutex_destroy(&r.m);
}

/* ---- destroy with jobs queued, running and finished ---- */

struct gate {
    pthread_mutex_t m;
    pthread_cond_t c;
    int started;   /* the blocking job is running */
    int released;  /* destroy has begun: the blocking job may return */
    int timed_out; /* it was never released */
};

struct teardown_log {
    workers *w;
    struct gate *g;
    int names[8], ran[8], n;
    int refused; /* submits refused during destroy */
};

struct named {
    int name;
    struct gate *g;
};

static void quick_run(void *arg) { (void)arg; }

static void block_run(void *arg)
{
    struct gate *g = ((struct named *)arg)->g;
    struct timespec end = deadline_in(WAIT_MS);
    pthread_mutex_lock(&g->m);
    g->started = 1;
    pthread_cond_broadcast(&g->c);
    int err = 0;
    while (!g->released && err == 0)
        err = pthread_cond_timedwait(&g->c, &g->m, &end);
    g->timed_out = !g->released;
    pthread_mutex_unlock(&g->m);
}

static void teardown_done(void *arg, void *tag, int ran, void *ctx)
{
    (void)tag;
    struct teardown_log *log = ctx;
    if (log->n < 8) {
        log->names[log->n] = ((struct named *)arg)->name;
        log->ran[log->n] = ran;
    }
    log->n++;
    if (!ran) {
        /* Destroy has begun: no more jobs taken; let the running one go. */
        log->refused += workers_submit(log->w, NULL, quick_run, arg, NULL) == -1;
        pthread_mutex_lock(&log->g->m);
        log->g->released = 1;
        pthread_cond_broadcast(&log->g->c);
        pthread_mutex_unlock(&log->g->m);
    }
}

static void test_destroy_with_jobs(void)
{
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};
    struct named f = {1, &g}, a = {2, &g}, b = {3, &g}, c = {4, &g}, d = {5, &g};
    workers *w = workers_create(1);
    CU_ASSERT_FATAL(w != NULL);
    struct teardown_log log = {.w = w, .g = &g};

    /* F finishes and is left uncollected. */
    CU_ASSERT_EQUAL(workers_submit(w, NULL, quick_run, &f, NULL), 0);
    CU_ASSERT_TRUE(readable(workers_fd(w), WAIT_MS));
    /* A runs and blocks until destroy has begun. */
    CU_ASSERT_EQUAL(workers_submit(w, NULL, block_run, &a, NULL), 0);
    struct timespec end = deadline_in(WAIT_MS);
    pthread_mutex_lock(&g.m);
    int err = 0;
    while (!g.started && err == 0)
        err = pthread_cond_timedwait(&g.c, &g.m, &end);
    int started = g.started;
    pthread_mutex_unlock(&g.m);
    CU_ASSERT_TRUE(started);
    /* B, C, D wait behind it. */
    CU_ASSERT_EQUAL(workers_submit(w, NULL, quick_run, &b, NULL), 0);
    CU_ASSERT_EQUAL(workers_submit(w, NULL, quick_run, &c, NULL), 0);
    CU_ASSERT_EQUAL(workers_submit(w, NULL, quick_run, &d, NULL), 0);
    CU_ASSERT_EQUAL(workers_queued(w), 3);
    CU_ASSERT_EQUAL(workers_running(w), 1);

    long long t0 = now_ms();
    workers_destroy(w, teardown_done, &log);
    CU_ASSERT(now_ms() - t0 < WAIT_MS);
    /* Dropped ones first, in the order submitted, then the finished ones in
     * the order they finished: F, then A once released. */
    CU_ASSERT_EQUAL_FATAL(log.n, 5);
    int names[] = {3, 4, 5, 1, 2}, ran[] = {0, 0, 0, 1, 1};
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(log.names[i], names[i]);
        CU_ASSERT_EQUAL(log.ran[i], ran[i]);
    }
    CU_ASSERT_EQUAL(log.refused, 3);
    CU_ASSERT_FALSE(g.timed_out);
    pthread_cond_destroy(&g.c);
    pthread_mutex_destroy(&g.m);
}

/* ---- a job that does not return; a full queue ---- */

/* Blocks until a byte comes on its pipe (WAIT_MS at most). */
static void pipe_run(void *job)
{
    int *fds = job;
    struct pollfd p = {fds[0], POLLIN, 0};
    if (poll(&p, 1, WAIT_MS) == 1) {
        char c;
        if (read(fds[0], &c, 1) < 0) {
            /* the test sees it in the timing */
        }
    }
}

static void noop_run(void *job) { (void)job; }

struct tally {
    int dropped, ran;
};

static void tally_done(void *job, void *tag, int ran, void *ctx)
{
    (void)job;
    (void)tag;
    struct tally *t = ctx;
    if (ran)
        t->ran++;
    else
        t->dropped++;
}

/* Collect (bounded) until n jobs in all have run. */
static void collect_ran(workers *w, struct tally *t, int n)
{
    for (long long end = now_ms() + WAIT_MS; t->ran < n && now_ms() < end;)
        if (readable(workers_fd(w), 10))
            workers_collect(w, tally_done, t, 10);
}

static void test_stop_with_a_stuck_job(void)
{
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    workers *w = workers_create(1);
    CU_ASSERT_FATAL(w != NULL);
    /* two stuck jobs of two groups: the thread asked for and the spare */
    static const char stuck = 's', groups[5] = "abcd";
    CU_ASSERT_EQUAL(workers_submit(w, NULL, pipe_run, fds, NULL), 0);
    CU_ASSERT_EQUAL(workers_submit(w, &stuck, pipe_run, fds, NULL), 0);
    for (long long end = now_ms() + WAIT_MS; workers_running(w) < 2 && now_ms() < end;)
        sleep_ms(1);
    CU_ASSERT_EQUAL_FATAL(workers_running(w), 1 + WORKERS_SPARE);
    /* four groups more, each stuck on a thread added for it (the thread
     * asked for is all a group may hold): the jobs queued behind wait */
    for (int g = 0; g < 4; g++)
        CU_ASSERT_EQUAL(workers_submit(w, &groups[g], pipe_run, fds, NULL), 0);
    for (long long end = now_ms() + WAIT_MS; workers_running(w) < 6 && now_ms() < end;)
        sleep_ms(1);
    CU_ASSERT_EQUAL_FATAL(workers_running(w), 6);
    CU_ASSERT_EQUAL(workers_alive(w), 6);
    /* the queue takes WORKERS_MAX_QUEUED_GROUP of one group, and
     * WORKERS_MAX_QUEUED in all behind them, and no more */
    int refused = 0;
    for (int i = 0; i < WORKERS_MAX_QUEUED_GROUP; i++)
        refused += workers_submit(w, &groups[0], noop_run, NULL, NULL) != 0;
    CU_ASSERT_EQUAL(refused, 0);
    CU_ASSERT_EQUAL(workers_submit(w, &groups[0], noop_run, NULL, NULL), -1);
    for (int g = 1; g < 4; g++)
        for (int i = 0; i < WORKERS_MAX_QUEUED_GROUP; i++)
            refused += workers_submit(w, &groups[g], noop_run, NULL, NULL) != 0;
    CU_ASSERT_EQUAL(refused, 0);
    CU_ASSERT_EQUAL(workers_submit(w, NULL, noop_run, NULL, NULL), -1);
    CU_ASSERT_EQUAL(workers_queued(w), WORKERS_MAX_QUEUED);

    struct tally t = {0, 0};
    long long t0 = now_ms();
    CU_ASSERT_EQUAL(workers_stop(w, tally_done, &t, 100), 6); /* the stuck ones, after 100 ms */
    long long took = now_ms() - t0;
    CU_ASSERT(took >= 90 && took < WAIT_MS);
    CU_ASSERT_EQUAL(t.dropped, WORKERS_MAX_QUEUED);
    CU_ASSERT_EQUAL(t.ran, 0);
    CU_ASSERT_EQUAL(workers_submit(w, NULL, noop_run, NULL, NULL), -1); /* stopping */
    /* the pool is still whole: released, the jobs end and a second stop frees it all */
    CU_ASSERT_EQUAL(write(fds[1], "xyzuvw", 6), 6);
    CU_ASSERT_EQUAL(workers_stop(w, tally_done, &t, -1), 0);
    CU_ASSERT_EQUAL(t.ran, 6);
    CU_ASSERT_EQUAL(t.dropped, WORKERS_MAX_QUEUED);
    close(fds[0]);
    close(fds[1]);
}

/* A job that finished, uncollected, when the stop finds another still
 * running: it gets its done all the same. */
static void test_stop_finishes_what_finished(void)
{
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    workers *w = workers_create(2);
    CU_ASSERT_FATAL(w != NULL);
    CU_ASSERT_EQUAL(workers_submit(w, NULL, pipe_run, fds, NULL), 0);
    CU_ASSERT_EQUAL(workers_submit(w, NULL, noop_run, NULL, NULL), 0);
    CU_ASSERT_TRUE(readable(workers_fd(w), WAIT_MS)); /* the quick one is done */
    for (long long end = now_ms() + WAIT_MS; workers_running(w) == 0 && now_ms() < end;)
        sleep_ms(1);
    struct tally t = {0, 0};
    CU_ASSERT_EQUAL(workers_stop(w, tally_done, &t, 50), 1);
    CU_ASSERT_EQUAL(t.ran, 1);
    CU_ASSERT_EQUAL(write(fds[1], "x", 1), 1);
    CU_ASSERT_EQUAL(workers_stop(w, tally_done, &t, -1), 0);
    CU_ASSERT_EQUAL(t.ran, 2);
    CU_ASSERT_EQUAL(t.dropped, 0);
    close(fds[0]);
    close(fds[1]);
}

/* One group's jobs, all blocked, hold the threads asked for and no more:
 * another group's job still runs, on the spare thread; the blocked group's
 * next job waits for one of its own to end, and then runs. */
static void test_a_blocked_group_leaves_a_thread(void)
{
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    workers *w = workers_create(2);
    CU_ASSERT_FATAL(w != NULL);
    CU_ASSERT_EQUAL(workers_threads(w), 2);
    static const char a = 'a', b = 'b';
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(workers_submit(w, &a, pipe_run, fds, NULL), 0);
    for (long long end = now_ms() + WAIT_MS; workers_running(w) < 2 && now_ms() < end;)
        sleep_ms(1);
    CU_ASSERT_EQUAL(workers_running(w), 2);
    CU_ASSERT_EQUAL(workers_queued(w), 1); /* the group's third waits: it holds 2 */
    CU_ASSERT_EQUAL(workers_submit(w, &b, noop_run, NULL, NULL), 0);
    struct tally t = {0, 0};
    long long t0 = now_ms();
    CU_ASSERT_TRUE(readable(workers_fd(w), WAIT_MS));
    CU_ASSERT(now_ms() - t0 < WAIT_MS / 2); /* not after a blocked job gave up (WAIT_MS) */
    CU_ASSERT_EQUAL(workers_collect(w, tally_done, &t, 10), 1);
    CU_ASSERT_EQUAL(workers_queued(w), 1);
    CU_ASSERT_EQUAL(write(fds[1], "xyz", 3), 3); /* each blocked job ends; the third runs */
    collect_ran(w, &t, 4);
    CU_ASSERT_EQUAL(t.ran, 4);
    CU_ASSERT_EQUAL(workers_stop(w, tally_done, &t, -1), 0);
    CU_ASSERT_EQUAL(t.dropped, 0);
    close(fds[0]);
    close(fds[1]);
}

/* Within a group, jobs go by turns (workers_submit_fair): each submitter's
 * in its own order, the submitters one job each, and jobs of no submitter
 * (workers_submit) as one more. An earlier submitter's thousands used to go
 * first, and a first attempt at turns (ranks by jobs out) put a server's
 * own jobs out of order and let a stream of others' hold one back for good. */
static void test_turns_order_a_group(void)
{
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    workers *w = workers_create(1);
    CU_ASSERT_FATAL(w != NULL);
    static const char g = 'g';
    CU_ASSERT_EQUAL(workers_submit(w, &g, pipe_run, fds, (void *)(uintptr_t)100), 0);
    for (long long end = now_ms() + WAIT_MS; workers_running(w) < 1 && now_ms() < end;)
        sleep_ms(1);
    CU_ASSERT_EQUAL_FATAL(workers_running(w), 1); /* the group's one thread is held */
    enum { N = 7 };
    workers_turn a = {0, 0}, b = {0, 0}, c = {0, 0};
    workers_turn *by[N] = {&a, &a, &a, &b, &c, &c, NULL};
    static const int expect[N] = {0, 3, 4, 6, 1, 5, 2}; /* the submit numbers, in the order they run */
    static struct seq jobs[N];
    static int log[N + 2];
    int next_run = 0;
    log[0] = 0;
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct seq){-1, &next_run};
        int rc = by[i] ? workers_submit_fair(w, &g, by[i], seq_run, &jobs[i], (void *)(uintptr_t)i)
                       : workers_submit(w, &g, seq_run, &jobs[i], (void *)(uintptr_t)i);
        CU_ASSERT_EQUAL(rc, 0);
    }
    CU_ASSERT_EQUAL(write(fds[1], "x", 1), 1);
    for (long long end = now_ms() + WAIT_MS; log[0] < N + 1 && now_ms() < end;)
        if (readable(workers_fd(w), 100))
            workers_collect(w, seq_done, log, 7);
    CU_ASSERT_EQUAL_FATAL(log[0], N + 1);
    for (int k = 0; k < N; k++)
        CU_ASSERT_EQUAL(jobs[expect[k]].ran_as, k);
    workers_destroy(w, NULL, NULL);
    close(fds[0]);
    close(fds[1]);
}

/* Two submitters that put a job back as soon as theirs is done (a client
 * each, calling in a loop) cannot hold back a third's second job: it runs
 * among the first five. One job runs at a time (one thread), each when the
 * test lets it. */
static int owner_log[32], nowner_log;

static void owner_done(void *job, void *tag, int ran, void *ctx)
{
    (void)job;
    (void)ctx;
    if (ran && nowner_log < 32)
        owner_log[nowner_log++] = (int)(uintptr_t)tag;
}

static void test_turns_starve_no_one(void)
{
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    workers *w = workers_create(1);
    CU_ASSERT_FATAL(w != NULL);
    static const char g = 'g';
    workers_turn t[3] = {{0, 0}, {0, 0}, {0, 0}};
    nowner_log = 0;
    CU_ASSERT_EQUAL(workers_submit_fair(w, &g, &t[0], pipe_run, fds, (void *)(uintptr_t)0), 0);
    CU_ASSERT_EQUAL(workers_submit_fair(w, &g, &t[0], pipe_run, fds, (void *)(uintptr_t)0), 0);
    CU_ASSERT_EQUAL(workers_submit_fair(w, &g, &t[1], pipe_run, fds, (void *)(uintptr_t)1), 0);
    CU_ASSERT_EQUAL(workers_submit_fair(w, &g, &t[2], pipe_run, fds, (void *)(uintptr_t)2), 0);
    int a_done = 0, releases = 0;
    while (a_done < 2 && releases < 12) {
        int before = nowner_log;
        CU_ASSERT_EQUAL_FATAL(write(fds[1], "x", 1), 1);
        releases++;
        for (long long end = now_ms() + WAIT_MS; nowner_log == before && now_ms() < end;)
            if (readable(workers_fd(w), 100))
                workers_collect(w, owner_done, NULL, 1);
        CU_ASSERT_EQUAL_FATAL(nowner_log, before + 1);
        int owner = owner_log[before];
        if (owner == 0) {
            a_done++;
        } else { /* its client calls again at once */
            CU_ASSERT_EQUAL(workers_submit_fair(w, &g, &t[owner], pipe_run, fds, (void *)(uintptr_t)owner), 0);
        }
    }
    CU_ASSERT_EQUAL(a_done, 2);
    CU_ASSERT(releases <= 5);
    CU_ASSERT_EQUAL(write(fds[1], "xx", 2), 2); /* the two still queued */
    workers_destroy(w, NULL, NULL);
    close(fds[0]);
    close(fds[1]);
}

/* Two groups blocked hold the thread asked for and the spare: a third
 * group's job gets a thread added for it, and runs; so does a fourth's
 * (one each, not one per job). Added threads end after their idle time,
 * the spawned ones stay. */
static void test_blocked_groups_leave_room_to_a_third(void)
{
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    workers *w = workers_create(1);
    CU_ASSERT_FATAL(w != NULL);
    CU_ASSERT_EQUAL(workers_alive(w), 1 + WORKERS_SPARE);
    static const char a = 'a', b = 'b', c = 'c', d = 'd';
    CU_ASSERT_EQUAL(workers_submit(w, &a, pipe_run, fds, NULL), 0);
    CU_ASSERT_EQUAL(workers_submit(w, &b, pipe_run, fds, NULL), 0);
    for (long long end = now_ms() + WAIT_MS; workers_running(w) < 2 && now_ms() < end;)
        sleep_ms(1);
    CU_ASSERT_EQUAL_FATAL(workers_running(w), 2);
    struct tally t = {0, 0};
    long long t0 = now_ms();
    CU_ASSERT_EQUAL(workers_submit(w, &c, noop_run, NULL, NULL), 0);
    CU_ASSERT_TRUE(readable(workers_fd(w), WAIT_MS));
    CU_ASSERT(now_ms() - t0 < WAIT_MS / 2); /* not after a blocked job gave up (WAIT_MS) */
    CU_ASSERT_EQUAL(workers_collect(w, tally_done, &t, 10), 1);
    /* c blocked too, and three of d queued: one thread more, for d */
    CU_ASSERT_EQUAL(workers_submit(w, &c, pipe_run, fds, NULL), 0);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(workers_submit(w, &d, noop_run, NULL, NULL), 0);
    collect_ran(w, &t, 4);
    CU_ASSERT_EQUAL(t.ran, 4);
    CU_ASSERT_EQUAL(workers_running(w), 3);
    CU_ASSERT(workers_alive(w) >= 4 && workers_alive(w) <= 5);
    workers_set_idle_ms(w, 20);
    CU_ASSERT_EQUAL(write(fds[1], "xyz", 3), 3);
    for (long long end = now_ms() + WAIT_MS; (t.ran < 7 || workers_alive(w) > 2) && now_ms() < end;)
        if (readable(workers_fd(w), 10))
            workers_collect(w, tally_done, &t, 10);
    CU_ASSERT_EQUAL(t.ran, 7);
    CU_ASSERT_EQUAL(workers_alive(w), 1 + WORKERS_SPARE); /* the added ones ended */
    /* and the pool adds again when it must */
    CU_ASSERT_EQUAL(workers_submit(w, &a, pipe_run, fds, NULL), 0);
    CU_ASSERT_EQUAL(workers_submit(w, &b, pipe_run, fds, NULL), 0);
    CU_ASSERT_EQUAL(workers_submit(w, &c, noop_run, NULL, NULL), 0);
    collect_ran(w, &t, 8);
    CU_ASSERT_EQUAL(t.ran, 8);
    CU_ASSERT_EQUAL(write(fds[1], "xy", 2), 2);
    CU_ASSERT_EQUAL(workers_stop(w, tally_done, &t, -1), 0);
    CU_ASSERT_EQUAL(t.ran, 10);
    CU_ASSERT_EQUAL(t.dropped, 0);
    close(fds[0]);
    close(fds[1]);
}

/* ---- collect's max ---- */

static void test_collect_max(void)
{
    enum { N = 10 };
    static struct seq jobs[N];
    static int log[N + 1];
    int next_run = 0;
    log[0] = 0;
    workers *w = workers_create(1);
    CU_ASSERT_FATAL(w != NULL);
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct seq){-1, &next_run};
        CU_ASSERT_EQUAL(workers_submit(w, NULL, seq_run, &jobs[i], (void *)(uintptr_t)i), 0);
    }
    CU_ASSERT_TRUE_FATAL(wait_idle(w));
    CU_ASSERT_TRUE(readable(workers_fd(w), 0));
    CU_ASSERT_EQUAL(workers_collect(w, seq_done, log, 0), 0);
    CU_ASSERT_TRUE(readable(workers_fd(w), 0)); /* still readable: all ten wait */
    CU_ASSERT_EQUAL(workers_collect(w, seq_done, log, 3), 3);
    CU_ASSERT_TRUE(readable(workers_fd(w), 0));
    CU_ASSERT_EQUAL(workers_collect(w, seq_done, log, 3), 3);
    CU_ASSERT_TRUE(readable(workers_fd(w), 0));
    CU_ASSERT_EQUAL(workers_collect(w, seq_done, log, 3), 3);
    CU_ASSERT_TRUE(readable(workers_fd(w), 0));
    CU_ASSERT_EQUAL(workers_collect(w, seq_done, log, 3), 1);
    CU_ASSERT_FALSE(readable(workers_fd(w), 0));
    CU_ASSERT_EQUAL(workers_collect(w, seq_done, log, 3), 0);
    CU_ASSERT_EQUAL(log[0], N);
    size_t bad = 0;
    for (int i = 0; i < N; i++)
        bad += log[i + 1] != i;
    CU_ASSERT_EQUAL(bad, 0);
    workers_destroy(w, seq_done, log);
    CU_ASSERT_EQUAL(log[0], N);
}

/* ---- sizing ---- */

static void test_default_threads(void)
{
    cpu_set_t set;
    CU_ASSERT_EQUAL_FATAL(sched_getaffinity(0, sizeof set, &set), 0);
    unsigned n = workers_default_threads();
    CU_ASSERT(n >= 1);
    CU_ASSERT(n <= (unsigned)CPU_COUNT(&set));

    CU_ASSERT_EQUAL(workers_cpu_max_limit("max 100000\n"), 0);
    CU_ASSERT_EQUAL(workers_cpu_max_limit("200000 100000\n"), 2);
    CU_ASSERT_EQUAL(workers_cpu_max_limit("150000 100000"), 2);
    CU_ASSERT_EQUAL(workers_cpu_max_limit("50000 100000\n"), 1);
    CU_ASSERT_EQUAL(workers_cpu_max_limit("400000 50000\n"), 8);
    CU_ASSERT_EQUAL(workers_cpu_max_limit(""), 0);
    CU_ASSERT_EQUAL(workers_cpu_max_limit("junk"), 0);
    CU_ASSERT_EQUAL(workers_cpu_max_limit("100000"), 0);
    CU_ASSERT_EQUAL(workers_cpu_max_limit("100000 0"), 0);
    CU_ASSERT_EQUAL(workers_cpu_max_limit("100000 x"), 0);

    CU_ASSERT_PTR_NULL(workers_create(0));
    workers_destroy(NULL, NULL, NULL);
}

void unit_suite_workers(void)
{
    CU_pSuite suite = CU_add_suite("workers", NULL, NULL);
    if (!suite)
        return;
    CU_add_test(suite, "1000 jobs on 4 threads, each done once", test_thousand_jobs);
    CU_add_test(suite, "one thread: FIFO", test_fifo_one_thread);
    CU_add_test(suite, "two jobs run in parallel", test_parallel);
    CU_add_test(suite, "destroy with queued, running and finished jobs", test_destroy_with_jobs);
    CU_add_test(suite, "collect's max; the fd stays readable", test_collect_max);
    CU_add_test(suite, "stop with a stuck job; a full queue", test_stop_with_a_stuck_job);
    CU_add_test(suite, "stop with a stuck job finishes the finished", test_stop_finishes_what_finished);
    CU_add_test(suite, "a blocked group leaves a thread to the others", test_a_blocked_group_leaves_a_thread);
    CU_add_test(suite, "two blocked groups leave room to a third", test_blocked_groups_leave_room_to_a_third);
    CU_add_test(suite, "turns order a group", test_turns_order_a_group);
    CU_add_test(suite, "turns starve no one", test_turns_starve_no_one);
    CU_add_test(suite, "default thread count", test_default_threads);
}

/* test_loop.c: the event loop's busy-poll: it spins after a turn that
 * answered, for as long as asked and no longer, and never after a turn that
 * only took messages in; and its coalescing: it sleeps on the clock while
 * input keeps waiting, stops when a sleep finds none, and never coalesces
 * request-response traffic. */
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "busy_poll.h"
#include "loop.h"
#include "unit.h"

struct probe {
    int fds[2];
    int got;            /* the pipe was read in this turn */
    int answer;         /* what the turn function returns after a read */
    long turns;         /* turns finished after the read */
    long late;          /* those more than 40 ms after it */
    double cpu_s;       /* CPU time the loop took, read included */
    unsigned long spins; /* rounds that polled instead of sleeping */
    struct timespec read_at;
};

static double since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void on_read(loop *l, int fd, int events, void *data)
{
    (void)l;
    (void)events;
    struct probe *p = data;
    char c;
    if (read(fd, &c, 1) == 1) {
        p->got = 1;
        clock_gettime(CLOCK_MONOTONIC, &p->read_at);
    }
}

static int on_turn(loop *l, void *data)
{
    (void)l;
    struct probe *p = data;
    if (p->got) {
        p->got = 0;
        return p->answer;
    }
    if (p->read_at.tv_sec || p->read_at.tv_nsec) {
        p->turns++;
        p->late += since(&p->read_at) > 0.040;
    }
    return 0;
}

static void on_timer(loop *l, void *data)
{
    (void)data;
    loop_stop(l);
}

/* One byte in, the turn function answering or not, the loop stopped by its
 * timer 150 ms later. */
static struct probe run(int spin_us, int answer)
{
    struct probe p = {.answer = answer};
    loop *l = loop_create();
    CU_ASSERT_FATAL(l != NULL);
    CU_ASSERT_FATAL(pipe(p.fds) == 0);
    loop_watch(l, p.fds[0], LOOP_READ, on_read, &p);
    loop_after_turn(l, on_turn, &p);
    loop_spin(l, spin_us);
    loop_every(l, 150, on_timer, &p);
    CU_ASSERT(write(p.fds[1], "x", 1) == 1);
    struct timespec c0, c1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    CU_ASSERT(loop_run(l) == 0);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    p.cpu_s = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
    p.spins = loop_spin_rounds(l);
    loop_destroy(l);
    close(p.fds[0]);
    close(p.fds[1]);
    return p;
}

static void test_spins_after_an_answer_then_sleeps(void)
{
    struct probe p = run(20000, 1); /* 20 ms */
    /* It polled instead of sleeping (yielding the CPU on each round, so
     * how much CPU that took depends on what else runs: a busy machine
     * takes it all; counting rounds does not)... */
    CU_ASSERT(p.spins > 0);
    /* ...and no longer than asked: after the 20 ms the loop slept until its
     * timer at 150 ms, whose turn is the only late one. */
    CU_ASSERT(p.cpu_s < 0.040);
    CU_ASSERT_EQUAL(p.late, 1);
}

static void test_no_spin_after_a_one_way_turn(void)
{
    struct probe p = run(20000, 0);
    CU_ASSERT_EQUAL(p.spins, 0);
    CU_ASSERT_EQUAL(p.turns, p.late); /* the timer's turn, and nothing before it */
    CU_ASSERT(p.turns <= 2);
    CU_ASSERT(p.cpu_s < 0.004);
}

static void test_busy_poll_off_never_spins(void)
{
    struct probe p = run(0, 1);
    CU_ASSERT_EQUAL(p.spins, 0);
    CU_ASSERT_EQUAL(p.turns, p.late);
    CU_ASSERT(p.turns <= 2);
    CU_ASSERT(p.cpu_s < 0.004);
}

/* Automatic busy-poll: every answered turn after another is one interval
 * for the policy, and a trial's worth of them ends a trial. */
struct ping {
    int fds[2];
    int got;
    long answers;
};

static void ping_read(loop *l, int fd, int events, void *data)
{
    (void)l;
    (void)events;
    struct ping *p = data;
    char c;
    p->got = read(fd, &c, 1) == 1;
}

/* Answers until a trial is over. A trial needs BUSY_POLL_PHASES *
 * BUSY_POLL_PHASE_SAMPLES intervals under BUSY_POLL_MAX_SAMPLE_US; on a
 * loaded machine some are longer and left out, so it may take more answers
 * (bounded). */
#define PING_MAX_ANSWERS (10L * BUSY_POLL_PHASES * BUSY_POLL_PHASE_SAMPLES)

static int ping_turn(loop *l, void *data)
{
    struct ping *p = data;
    if (!p->got)
        return 0;
    p->got = 0;
    if (++p->answers > PING_MAX_ANSWERS || loop_busy_poll(l)->trials > 0)
        loop_stop(l);
    else if (write(p->fds[1], "x", 1) != 1) /* the peer's next request, at once */
        loop_stop(l);
    return LOOP_TURN_SENT;
}

static void test_auto_busy_poll_runs_a_trial(void)
{
    struct ping p = {0};
    loop *l = loop_create();
    CU_ASSERT_FATAL(l != NULL);
    CU_ASSERT_FATAL(pipe(p.fds) == 0);
    loop_watch(l, p.fds[0], LOOP_READ, ping_read, &p);
    loop_after_turn(l, ping_turn, &p);
    loop_spin_auto(l, 100);
    CU_ASSERT_EQUAL(loop_busy_poll(l)->trials, 0);
    CU_ASSERT(write(p.fds[1], "x", 1) == 1);
    CU_ASSERT(loop_run(l) == 0);
    const busy_poll *bp = loop_busy_poll(l);
    CU_ASSERT(p.answers > BUSY_POLL_PHASES * BUSY_POLL_PHASE_SAMPLES);
    CU_ASSERT(p.answers <= PING_MAX_ANSWERS);
    CU_ASSERT_EQUAL(bp->trials, 1);
    CU_ASSERT(bp->polling_ns > 0 && bp->sleeping_ns > 0);
    /* polling, the verdict before any trial: a first trial against it is a doubt */
    CU_ASSERT(bp->on);
    CU_ASSERT_EQUAL(bp->doubted, bp->sleeping_ns - bp->polling_ns < BUSY_POLL_GAIN_NS);
    loop_destroy(l);
    close(p.fds[0]);
    close(p.fds[1]);
}

/* ---- coalescing ---- */

#define STREAM_BYTES 64

struct stream {
    int fds[2];
    int answer;            /* what each turn returns */
    int reads;
    int max_pressed_turns; /* turns that ran while coalescing */
};

static void stream_read(loop *l, int fd, int events, void *data)
{
    (void)l;
    (void)events;
    struct stream *p = data;
    char c;
    p->reads += read(fd, &c, 1) == 1; /* one byte a turn: the rest keeps waiting */
}

static int stream_turn(loop *l, void *data)
{
    struct stream *p = data;
    p->max_pressed_turns += loop_coalescing(l);
    if (p->reads == STREAM_BYTES && !loop_coalescing(l))
        loop_stop(l);
    return p->answer;
}

/* STREAM_BYTES bytes waiting at once, read one a turn, each turn answering
 * or not, with a window of window_us; returns the loop's sleeps and sets
 * *secs to how long it ran. */
static unsigned long run_stream(int window_us, int answer, double *secs, struct stream *out)
{
    struct stream p = {.answer = answer};
    loop *l = loop_create();
    CU_ASSERT_FATAL(l != NULL);
    CU_ASSERT_FATAL(pipe(p.fds) == 0);
    char bytes[STREAM_BYTES] = {0};
    CU_ASSERT(write(p.fds[1], bytes, sizeof bytes) == (ssize_t)sizeof bytes);
    loop_watch(l, p.fds[0], LOOP_READ, stream_read, &p);
    loop_after_turn(l, stream_turn, &p);
    loop_coalesce(l, window_us);
    loop_every(l, 5000, on_timer, &p); /* a bound: the run takes far less */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CU_ASSERT(loop_run(l) == 0);
    *secs = since(&t0);
    unsigned long sleeps = loop_coalesced(l);
    CU_ASSERT_FALSE(loop_coalescing(l));
    loop_destroy(l);
    close(p.fds[0]);
    close(p.fds[1]);
    *out = p;
    return sleeps;
}

static void test_coalesces_a_one_way_stream(void)
{
    double secs;
    struct stream p;
    unsigned long sleeps = run_stream(1000, 0, &secs, &p);
    CU_ASSERT_EQUAL(p.reads, STREAM_BYTES);
    /* The first 8 turns without an answer found input waiting and did not
     * sleep; every later byte was read after a sleep, and one more sleep
     * found nothing and ended it. */
    CU_ASSERT(sleeps >= STREAM_BYTES - 8 && sleeps <= STREAM_BYTES - 8 + 2);
    CU_ASSERT(p.max_pressed_turns >= STREAM_BYTES - 8);
    /* Each sleep was the window, 1 ms, at least. */
    CU_ASSERT(secs >= (double)sleeps * 0.001);
}

static void test_calls_never_coalesce(void)
{
    double secs;
    struct stream p;
    /* Every turn answers, with input still waiting: callers ahead of the
     * node are served as they come, never after a sleep. */
    CU_ASSERT_EQUAL(run_stream(1000, LOOP_TURN_SENT, &secs, &p), 0);
    CU_ASSERT_EQUAL(p.reads, STREAM_BYTES);
    CU_ASSERT_EQUAL(p.max_pressed_turns, 0);
}

static void test_coalesce_off_never_sleeps(void)
{
    double secs;
    struct stream p;
    CU_ASSERT_EQUAL(run_stream(0, 0, &secs, &p), 0);
    CU_ASSERT_EQUAL(p.reads, STREAM_BYTES);
    CU_ASSERT_EQUAL(p.max_pressed_turns, 0);
    CU_ASSERT_EQUAL(run_stream(0, LOOP_TURN_SENT, &secs, &p), 0);
}

/* A peer thread that sends a request only once it has read the answer to
 * the one before, as a caller does. */
#define ROUND_TRIPS 2000

struct rr {
    int fds[2]; /* [0]: the loop's end; [1]: the peer's */
    int got;
    int answers;
};

static void *rr_peer(void *arg)
{
    struct rr *p = arg;
    char c = 'q';
    for (int i = 0; i < ROUND_TRIPS; i++)
        if (write(p->fds[1], &c, 1) != 1 || read(p->fds[1], &c, 1) != 1)
            break;
    return NULL;
}

static void rr_read(loop *l, int fd, int events, void *data)
{
    (void)l;
    (void)events;
    struct rr *p = data;
    char c;
    p->got = read(fd, &c, 1) == 1;
}

static int rr_turn(loop *l, void *data)
{
    struct rr *p = data;
    if (!p->got)
        return 0;
    p->got = 0;
    if (write(p->fds[0], "a", 1) != 1 || ++p->answers == ROUND_TRIPS)
        loop_stop(l);
    return LOOP_TURN_SENT;
}

static void request_response(int spin_us)
{
    struct rr p = {0};
    loop *l = loop_create();
    CU_ASSERT_FATAL(l != NULL);
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, p.fds) == 0);
    loop_watch(l, p.fds[0], LOOP_READ, rr_read, &p);
    loop_after_turn(l, rr_turn, &p);
    loop_spin(l, spin_us);
    loop_coalesce(l, 1000);
    loop_every(l, 20000, on_timer, &p); /* a bound */
    pthread_t peer;
    CU_ASSERT_FATAL(pthread_create(&peer, NULL, rr_peer, &p) == 0);
    CU_ASSERT(loop_run(l) == 0);
    CU_ASSERT_EQUAL(p.answers, ROUND_TRIPS);
    CU_ASSERT_EQUAL(loop_coalesced(l), 0);
    shutdown(p.fds[0], SHUT_RDWR); /* the peer is done, or stops now */
    pthread_join(peer, NULL);
    loop_destroy(l);
    close(p.fds[0]);
    close(p.fds[1]);
}

static void test_request_response_never_coalesces(void) { request_response(0); }
static void test_request_response_spinning_never_coalesces(void) { request_response(50); }

void unit_suite_loop(void)
{
    CU_pSuite s = CU_add_suite("loop", NULL, NULL);
    CU_add_test(s, "spins after an answer, then sleeps", test_spins_after_an_answer_then_sleeps);
    CU_add_test(s, "no spin after a one-way turn", test_no_spin_after_a_one_way_turn);
    CU_add_test(s, "--busy-poll 0 never spins", test_busy_poll_off_never_spins);
    CU_add_test(s, "automatic busy-poll runs a trial", test_auto_busy_poll_runs_a_trial);
    CU_add_test(s, "coalesces a one-way stream", test_coalesces_a_one_way_stream);
    CU_add_test(s, "answering turns never coalesce", test_calls_never_coalesce);
    CU_add_test(s, "--coalesce 0 never sleeps", test_coalesce_off_never_sleeps);
    CU_add_test(s, "request-response never coalesces", test_request_response_never_coalesces);
    CU_add_test(s, "request-response with busy-poll never coalesces",
                test_request_response_spinning_never_coalesces);
}

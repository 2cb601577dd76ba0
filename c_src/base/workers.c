/* workers.c: a pool of threads for blocking jobs; see workers.h. */
#include "workers.h"
#include "quiet_thread.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct group;

struct job {
    struct job *next;
    workers_run_fn *run;
    void *job;
    void *tag;
    struct group *group; /* while queued or running */
    uint64_t seq;        /* submit order */
    uint64_t turn;       /* its place in its group's line (workers_submit_fair) */
};

/* The jobs of one group key (workers_submit): those not started yet, a
 * heap by turn (then submit order), and how many run. Start-time fair
 * queuing (workers_submit_fair): a job's turn is one past the later of the
 * group's clock (the turn of the job started last) and its submitter's last
 * turn in the group, so each submitter's jobs go in its order and the
 * submitters take turns. A group exists while it has jobs; gen tells a
 * submitter's turn of an earlier life of the group from one of this. */
struct group {
    const void *key;
    struct job **heap;
    size_t queued, heap_cap, running;
    uint64_t clock, gen;
    workers_turn anonymous; /* the turn of jobs submitted with none (workers_submit) */
    struct group *next;
};

static int job_before(const struct job *a, const struct job *b)
{
    return a->turn < b->turn || (a->turn == b->turn && a->seq < b->seq);
}

/* The job of g to start next, or NULL. */
static struct job *group_first(const struct group *g) { return g->queued ? g->heap[0] : NULL; }

/* Queue j in g: 0, or -1 when out of memory. Under the lock. */
static int heap_push(struct group *g, struct job *j)
{
    if (g->queued == g->heap_cap) {
        size_t cap = g->heap_cap ? g->heap_cap * 2 : 8;
        struct job **h = realloc(g->heap, cap * sizeof *h);
        if (!h)
            return -1;
        g->heap = h;
        g->heap_cap = cap;
    }
    size_t i = g->queued++;
    while (i > 0 && job_before(j, g->heap[(i - 1) / 2])) {
        g->heap[i] = g->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    g->heap[i] = j;
    return 0;
}

/* Take g's first job off its heap (g->queued > 0). Under the lock. */
static struct job *heap_pop(struct group *g)
{
    struct job *top = g->heap[0], *last = g->heap[--g->queued];
    size_t i = 0, n = g->queued;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && job_before(g->heap[c + 1], g->heap[c]))
            c++;
        if (!job_before(g->heap[c], last))
            break;
        g->heap[i] = g->heap[c];
        i = c;
    }
    if (n)
        g->heap[i] = last;
    return top;
}

/* A thread's place: free, taken by a live thread, or left by one that
 * ended (idle too long, beyond the spawned ones) and is still to be joined.
 * The ended thread touches nothing of the pool after it set its state
 * (under the lock), so whoever holds the lock may join it. */
enum slot_state { SLOT_FREE, SLOT_LIVE, SLOT_ENDED };
struct slot {
    pthread_t thread;
    workers *w;
    enum slot_state state;
};

struct workers {
    pthread_mutex_t lock; /* guards every field below but efd, nthreads and spawned */
    pthread_cond_t wake;  /* a job was queued, or the pool is stopping */
    pthread_cond_t idle;  /* stopping, and the last running job finished */
    struct group *groups; /* those with jobs queued or running */
    uint64_t next_seq;
    uint64_t next_gen;    /* of groups made */
    size_t queued;
    size_t running;
    struct job *done_head, *done_tail; /* finished, in the order they finished */
    int stopping;
    int efd;
    unsigned nthreads;    /* as asked: what one group's jobs may hold */
    unsigned spawned;     /* nthreads + WORKERS_SPARE: the threads that always run */
    unsigned alive;       /* threads live: spawned, and extras (grow) */
    unsigned nslots;      /* spawned + WORKERS_MAX_EXTRA */
    long idle_ms;         /* how long an extra thread idles before it ends */
    struct slot *slots;
    struct workers *volatile next_abandoned;
};

/* Pools left running jobs at a stop (workers_stop), till the process exits:
 * reachable from here, so that a leak checker does not count them. */
static workers *volatile abandoned; /* volatile: a store no code reads is kept */
static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;

static void signal_fd(workers *w)
{
    uint64_t one = 1;
    if (write(w->efd, &one, sizeof one) < 0) {
        /* EAGAIN: the counter is full, so the fd is readable anyway */
    }
}

/* A group that has no job queued or running goes; under the lock. */
static void group_forget(workers *w, struct group *g)
{
    if (g->queued || g->running)
        return;
    struct group **at = &w->groups;
    while (*at != g)
        at = &(*at)->next;
    *at = g->next;
    free(g->heap);
    free(g);
}

/* The oldest of the groups' next jobs (a group's next by its turns), of a
 * group holding fewer than max threads, taken off its queue; NULL when
 * there is none. Under the lock. */
static struct job *take_oldest(workers *w, size_t max)
{
    struct group *best = NULL;
    struct job *first = NULL;
    for (struct group *g = w->groups; g; g = g->next) {
        struct job *j = g->running < max ? group_first(g) : NULL;
        if (j && (!first || j->seq < first->seq))
            best = g, first = j;
    }
    if (!best)
        return NULL;
    struct job *j = heap_pop(best);
    best->clock = j->turn;
    w->queued--;
    j->next = NULL;
    return j;
}

/* The job to start next, counted as running; NULL if none may start. The
 * oldest next job of a group running none goes first (every group gets a
 * thread before any gets two); else the oldest of a group holding fewer than
 * nthreads threads, so that one group's jobs, all blocked say, always leave
 * the spare thread to the others. Under the lock. */
static struct job *take_next(workers *w)
{
    struct job *j = take_oldest(w, 1);
    if (!j)
        j = take_oldest(w, w->nthreads);
    if (j) {
        j->group->running++;
        w->running++;
    }
    return j;
}

/* A deadline ms from now on the monotonic clock (the condition variables'). */
static struct timespec monotonic_in(long ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

static void *worker_main(void *arg)
{
    struct slot *self = arg;
    workers *w = self->w;
    pthread_setname_np(pthread_self(), "gcn_worker");
    pthread_mutex_lock(&w->lock);
    for (;;) {
        struct job *j = NULL;
        int timed_out = 0;
        while (!w->stopping && !(j = take_next(w))) {
            /* Threads beyond the spawned ones end after idle_ms with
             * nothing to do (some thread, not necessarily the last grown). */
            if (timed_out && w->alive > w->spawned)
                break;
            struct timespec until = monotonic_in(w->idle_ms);
            timed_out = pthread_cond_timedwait(&w->wake, &w->lock, &until) == ETIMEDOUT;
        }
        if (!j) /* stopping, or idle too long */
            break;
        pthread_mutex_unlock(&w->lock);

        j->run(j->job);
        j->next = NULL;

        pthread_mutex_lock(&w->lock);
        w->running--;
        /* A group held back at its threads now may start one more: this
         * thread may take an older job of another group, so an idle one is
         * woken for it. */
        int held_back = j->group->queued && j->group->running == w->nthreads;
        j->group->running--;
        group_forget(w, j->group);
        j->group = NULL;
        if (held_back)
            pthread_cond_signal(&w->wake);
        if (w->stopping && w->running == 0)
            pthread_cond_broadcast(&w->idle);
        if (w->done_tail) {
            w->done_tail->next = j;
        } else {
            w->done_head = j;
            signal_fd(w); /* empty -> not empty; under the lock, so collect sees it in order */
        }
        w->done_tail = j;
    }
    w->alive--;
    self->state = SLOT_ENDED; /* joined by start_thread, reusing the slot, or by teardown */
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* Start a thread in a free slot (joining one that ended, to reuse it);
 * under the lock. Every signal is blocked in the new thread. -1 when no
 * slot is left or the thread cannot start. */
static int start_thread(workers *w)
{
    struct slot *s = NULL;
    for (unsigned i = 0; i < w->nslots && !s; i++)
        if (w->slots[i].state != SLOT_LIVE)
            s = &w->slots[i];
    if (!s)
        return -1;
    if (s->state == SLOT_ENDED) {
        pthread_join(s->thread, NULL);
        s->state = SLOT_FREE;
    }
    /* A stack of a known size, whatever the libc's default: a job may read a
     * term as deep as --max-depth lets one in (gcn_ readers recurse). */
    pthread_attr_t attr;
    int have_attr = pthread_attr_init(&attr) == 0;
    if (have_attr && pthread_attr_setstacksize(&attr, WORKERS_STACK_BYTES) != 0) {
        pthread_attr_destroy(&attr);
        have_attr = 0;
    }
    s->w = w;
    int err = quiet_thread_create(&s->thread, have_attr ? &attr : NULL, worker_main, s);
    if (have_attr)
        pthread_attr_destroy(&attr);
    if (err != 0) {
        errno = err;
        return -1;
    }
    s->state = SLOT_LIVE;
    w->alive++;
    return 0;
}

/* Every group with jobs queued and none running gets a thread: when there
 * are more of them than threads free to take their jobs (take_next serves
 * them first), threads are added, WORKERS_MAX_EXTRA beyond the spawned ones
 * at most. So groups whose jobs all block (two modules on one dead peer,
 * say) hold up only themselves. Under the lock. */
static void grow(workers *w)
{
    unsigned starved = 0;
    for (struct group *g = w->groups; g; g = g->next)
        starved += g->queued && g->running == 0;
    while (!w->stopping && starved > w->alive - w->running && start_thread(w) == 0)
        ;
}

void workers_quiesce(workers *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

/* Stop and join every thread (no job queued or running), free the rest. */
static void teardown(workers *w)
{
    workers_quiesce(w);
    /* Stopping, no thread starts (grow) so no slot is taken; one may still
     * turn from live to ended, under the lock: both are joined. */
    for (unsigned i = 0; i < w->nslots; i++) {
        pthread_mutex_lock(&w->lock);
        enum slot_state state = w->slots[i].state;
        pthread_mutex_unlock(&w->lock);
        if (state != SLOT_FREE)
            pthread_join(w->slots[i].thread, NULL);
    }
    close(w->efd);
    pthread_cond_destroy(&w->idle);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w->slots);
    free(w);
}

workers *workers_create(unsigned threads)
{
    if (threads == 0 || threads > UINT_MAX - WORKERS_SPARE - WORKERS_MAX_EXTRA) {
        errno = EINVAL;
        return NULL;
    }
    workers *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    unsigned spawn = threads + WORKERS_SPARE;
    w->nslots = spawn + WORKERS_MAX_EXTRA;
    w->slots = calloc(w->nslots, sizeof *w->slots);
    if (!w->slots) {
        free(w);
        return NULL;
    }
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0) {
        free(w->slots);
        free(w);
        return NULL;
    }
    if (pthread_mutex_init(&w->lock, NULL) != 0) {
        close(w->efd);
        free(w->slots);
        free(w);
        return NULL;
    }
    /* Both condition variables wait on the monotonic clock. */
    pthread_condattr_t monotonic;
    int idle_ok = 0, wake_ok = 0;
    if (pthread_condattr_init(&monotonic) == 0) {
        if (pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC) == 0) {
            idle_ok = pthread_cond_init(&w->idle, &monotonic) == 0;
            wake_ok = pthread_cond_init(&w->wake, &monotonic) == 0;
        }
        pthread_condattr_destroy(&monotonic);
    }
    if (!idle_ok || !wake_ok) {
        if (idle_ok)
            pthread_cond_destroy(&w->idle);
        if (wake_ok)
            pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        close(w->efd);
        free(w->slots);
        free(w);
        return NULL;
    }
    w->nthreads = threads; /* read by the threads' take_next */
    w->spawned = spawn;
    w->idle_ms = WORKERS_IDLE_MS;
    pthread_mutex_lock(&w->lock);
    int err = 0;
    for (unsigned i = 0; i < spawn && !err; i++)
        err = start_thread(w) < 0 ? errno : 0;
    pthread_mutex_unlock(&w->lock);
    if (err) {
        teardown(w);
        errno = err;
        return NULL;
    }
    return w;
}

int workers_fd(const workers *w) { return w->efd; }

int workers_submit(workers *w, const void *group, workers_run_fn *run, void *job, void *tag)
{
    return workers_submit_fair(w, group, NULL, run, job, tag);
}

int workers_submit_fair(workers *w, const void *group, workers_turn *turn, workers_run_fn *run, void *job,
                        void *tag)
{
    struct job *j = malloc(sizeof *j);
    if (!j)
        return -1;
    *j = (struct job){NULL, run, job, tag, NULL, 0, 0};
    pthread_mutex_lock(&w->lock);
    struct group *g = w->groups;
    while (g && g->key != group)
        g = g->next;
    if (!g && (g = calloc(1, sizeof *g)) != NULL) {
        g->key = group;
        g->gen = ++w->next_gen;
        g->next = w->groups;
        w->groups = g;
    }
    if (!g || w->stopping || w->queued >= WORKERS_MAX_QUEUED || g->queued >= WORKERS_MAX_QUEUED_GROUP) {
        if (g)
            group_forget(w, g);
        pthread_mutex_unlock(&w->lock);
        free(j);
        return -1;
    }
    if (!turn)
        turn = &g->anonymous;
    if (turn->gen != g->gen) /* a turn of another group, or of this one's earlier life */
        *turn = (workers_turn){0, g->gen};
    j->group = g;
    j->seq = w->next_seq;
    j->turn = (turn->last > g->clock ? turn->last : g->clock) + 1;
    if (heap_push(g, j) < 0) {
        group_forget(w, g);
        pthread_mutex_unlock(&w->lock);
        free(j);
        return -1;
    }
    w->next_seq++;
    turn->last = j->turn;
    w->queued++;
    pthread_cond_signal(&w->wake);
    grow(w);
    pthread_mutex_unlock(&w->lock);
    return 0;
}

/*
 * The fd is read (cleared) before the lock is taken. A job finishing after
 * the read either is taken below or, finding the list empty after the
 * unlock, writes the fd again; jobs left behind because of max get a write
 * here. So the fd never reads empty while a finished job waits (it may read
 * ready with nothing left: then collect returns 0).
 */
size_t workers_collect(workers *w, workers_done_fn *done, void *ctx, size_t max)
{
    uint64_t count;
    if (read(w->efd, &count, sizeof count) < 0) {
        /* EAGAIN: not readable, there may still be jobs (a wake-up already consumed) */
    }
    pthread_mutex_lock(&w->lock);
    struct job *first = w->done_head, *last = NULL;
    size_t n = 0;
    for (struct job *j = first; j && n < max; j = j->next) {
        last = j;
        n++;
    }
    if (n == 0) {
        first = NULL;
    } else {
        w->done_head = last->next;
        if (!w->done_head)
            w->done_tail = NULL;
        last->next = NULL;
    }
    if (w->done_head)
        signal_fd(w);
    pthread_mutex_unlock(&w->lock);

    for (struct job *j = first, *next; j; j = next) {
        next = j->next;
        if (done)
            done(j->job, j->tag, 1, ctx);
        free(j);
    }
    return n;
}

static void finish_list(struct job *j, workers_done_fn *done, void *ctx, int ran)
{
    for (struct job *next; j; j = next) {
        next = j->next;
        if (done)
            done(j->job, j->tag, ran, ctx);
        free(j);
    }
}

/* Until running is 0, or wait_ms have passed (< 0: no limit); under the lock. */
static void wait_idle(workers *w, long wait_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    if (wait_ms >= 0) {
        until.tv_sec += wait_ms / 1000;
        until.tv_nsec += (wait_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
    }
    while (w->running > 0) {
        if (wait_ms < 0)
            pthread_cond_wait(&w->idle, &w->lock);
        else if (pthread_cond_timedwait(&w->idle, &w->lock, &until) == ETIMEDOUT)
            break;
    }
}

size_t workers_stop(workers *w, workers_done_fn *done, void *ctx, long wait_ms)
{
    if (!w)
        return 0;
    workers_quiesce(w);
    pthread_mutex_lock(&w->lock);
    struct job *dropped = NULL, **end = &dropped;
    for (struct job *j; (j = take_oldest(w, SIZE_MAX)) != NULL; end = &j->next) {
        *end = j; /* in the order they would have started */
        group_forget(w, j->group);
        j->group = NULL;
    }
    pthread_mutex_unlock(&w->lock);
    finish_list(dropped, done, ctx, 0);

    /* The jobs that finished by then get their done, whether or not some
     * still run; those get none. */
    pthread_mutex_lock(&w->lock);
    wait_idle(w, wait_ms);
    size_t running = w->running;
    struct job *finished = w->done_head;
    w->done_head = w->done_tail = NULL;
    pthread_mutex_unlock(&w->lock);
    finish_list(finished, done, ctx, 1);
    pthread_mutex_lock(&abandoned_lock);
    workers *volatile *at = &abandoned;
    while (*at && *at != w)
        at = &(*at)->next_abandoned;
    if (running && !*at) { /* the pool stays as it is, its threads may still use it: kept reachable */
        w->next_abandoned = abandoned;
        abandoned = w;
    } else if (!running && *at) { /* abandoned by an earlier call: goes now */
        *at = w->next_abandoned;
    }
    pthread_mutex_unlock(&abandoned_lock);
    if (running)
        return running;
    teardown(w); /* each thread returns at once: no job left to run */
    return 0;
}

void workers_destroy(workers *w, workers_done_fn *done, void *ctx)
{
    (void)workers_stop(w, done, ctx, -1);
}

enum count { QUEUED, RUNNING, ALIVE };

/* One of the counts, read under the lock. */
static size_t count(const workers *w, enum count which)
{
    workers *m = (workers *)w; /* the lock is not part of what const promises */
    pthread_mutex_lock(&m->lock);
    size_t n = which == QUEUED ? m->queued : which == RUNNING ? m->running : m->alive;
    pthread_mutex_unlock(&m->lock);
    return n;
}

size_t workers_queued(const workers *w) { return count(w, QUEUED); }
size_t workers_running(const workers *w) { return count(w, RUNNING); }
unsigned workers_alive(const workers *w) { return (unsigned)count(w, ALIVE); }
unsigned workers_threads(const workers *w) { return w->nthreads; }

void workers_set_idle_ms(workers *w, long ms)
{
    pthread_mutex_lock(&w->lock);
    w->idle_ms = ms > 0 ? ms : 1;
    pthread_cond_broadcast(&w->wake); /* waits under the old deadline take the new one */
    pthread_mutex_unlock(&w->lock);
}

unsigned workers_cpu_max_limit(const char *text)
{
    while (*text == ' ' || *text == '\t')
        text++;
    if (*text < '0' || *text > '9')
        return 0; /* "max", or not understood */
    char *end;
    errno = 0;
    unsigned long long quota = strtoull(text, &end, 10);
    if (errno || (*end != ' ' && *end != '\t'))
        return 0;
    text = end;
    while (*text == ' ' || *text == '\t')
        text++;
    if (*text < '0' || *text > '9')
        return 0;
    unsigned long long period = strtoull(text, &end, 10);
    if (errno || period == 0 || (*end != '\0' && *end != '\n' && *end != ' '))
        return 0;
    unsigned long long cpus = quota / period + (quota % period != 0);
    return cpus > UINT_MAX ? UINT_MAX : (unsigned)cpus;
}

static unsigned read_cpu_max(const char *dir)
{
    char path[4096], text[128];
    if ((size_t)snprintf(path, sizeof path, "%s/cpu.max", dir) >= sizeof path)
        return 0;
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    unsigned limit = fgets(text, sizeof text, f) ? workers_cpu_max_limit(text) : 0;
    fclose(f);
    return limit;
}

/* The lowest cpu.max limit of this process's cgroup (v2) and those above it,
 * 0 for none found. /proc/self/cgroup names the cgroup ("0::/a/b"); in a
 * container the path may not exist under /sys/fs/cgroup (the mount is the
 * container's own cgroup), which is then found going up: the root's cpu.max. */
static unsigned cgroup_cpu_limit(void)
{
    char line[4096], dir[4096 + 32] = "/sys/fs/cgroup";
    const size_t root_len = strlen(dir);
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (f) {
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "0::/", 4) == 0) {
                line[strcspn(line, "\n")] = '\0';
                if (strcmp(line + 3, "/") != 0 && !strstr(line + 3, "/.."))
                    snprintf(dir + root_len, sizeof dir - root_len, "%s", line + 3);
                break;
            }
        }
        fclose(f);
    }
    unsigned best = 0;
    for (;;) {
        unsigned limit = read_cpu_max(dir);
        if (limit && (!best || limit < best))
            best = limit;
        char *slash = strrchr(dir, '/');
        if (strlen(dir) <= root_len || !slash || (size_t)(slash - dir) < root_len)
            break;
        *slash = '\0';
    }
    return best;
}

static unsigned affinity_count(void)
{
    for (int n = 1024; n <= 1 << 20; n *= 2) {
        cpu_set_t *set = CPU_ALLOC(n);
        if (!set)
            break;
        size_t size = CPU_ALLOC_SIZE(n);
        if (sched_getaffinity(0, size, set) == 0) {
            int count = CPU_COUNT_S(size, set);
            CPU_FREE(set);
            return count > 0 ? (unsigned)count : 1;
        }
        CPU_FREE(set);
        if (errno != EINVAL)
            break;
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (unsigned)online : 1;
}

unsigned workers_default_threads(void)
{
    unsigned cpus = affinity_count(), limit = cgroup_cpu_limit();
    if (limit && limit < cpus)
        cpus = limit;
    return cpus ? cpus : 1;
}

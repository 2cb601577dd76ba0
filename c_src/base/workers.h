/*
 * workers.h: a pool of threads for blocking jobs (file I/O, fsync, DNS...),
 * whose results come back to the one event-loop thread. It owns its threads,
 * its queue and its eventfd, and nothing the jobs point to: a job and its tag
 * are the caller's, handed to run on a worker thread, then to done on the
 * loop thread, then forgotten. It never touches the loop: the loop watches
 * workers_fd and calls workers_collect.
 *
 * Threads and locking. One mutex guards everything shared: the queues of
 * jobs not yet started (one per group, see workers_submit), the counts
 * of running ones, the list of finished ones, the threads' slots (threads
 * are added by workers_submit and end when idle, see WORKERS_MAX_EXTRA)
 * and the stopping flag; one condition variable (with that mutex) wakes idle
 * workers. A worker runs a job without the lock; the job's memory passes
 * from the submitting thread to the worker and back to the loop thread
 * through that mutex (queue in, finished list out), which is the
 * happens-before edge a race detector sees. The eventfd carries no data, only
 * the wake-up: it is written when the finished list goes from empty to not
 * empty, and by collect when it leaves jobs behind. Callbacks (run, done) are
 * never called with the lock held, so they may submit more jobs. Workers
 * block every signal (they start with all of them masked), so SIGINT and
 * SIGTERM go to the main thread.
 *
 * Which thread: submit from any thread; collect, destroy and the done
 * callbacks on the loop thread only; the stats from any thread.
 */
#ifndef GEN_CNODE_WORKERS_H
#define GEN_CNODE_WORKERS_H

#include <stddef.h>
#include <stdint.h>

typedef struct workers workers;
/* On a worker thread. */
typedef void workers_run_fn(void *job);
/* On the loop thread. ran is 0 when the job was dropped without running
 * (workers_destroy), 1 when run returned. */
typedef void workers_done_fn(void *job, void *tag, int ran, void *ctx);

/* threads >= 1 (and WORKERS_SPARE more are started; more may be added, see
 * workers_submit). NULL on failure, with nothing left running. */
workers *workers_create(unsigned threads);
/* An eventfd (EFD_NONBLOCK|EFD_CLOEXEC), readable when finished jobs wait
 * to be collected. Owned by the pool: watch it, never read or close it. */
int workers_fd(const workers *w);
/* Jobs waiting to start, at most: a module that submits for every request
 * a peer sends must not grow the queue without end. */
#define WORKERS_MAX_QUEUED 65536
/* Of which one group's (workers_submit): a module whose jobs all block
 * leaves queue room to the others too. */
#define WORKERS_MAX_QUEUED_GROUP (WORKERS_MAX_QUEUED / 4)
/* Each worker thread's stack. */
#define WORKERS_STACK_BYTES (8u << 20)

/* Threads the pool runs beyond those asked for. The jobs of one group
 * (workers_submit) hold at most the threads asked for, so that a group whose
 * jobs all block (on a peer that went away, a resolver that never answers)
 * always leaves this many to the other groups. */
#define WORKERS_SPARE 1
/* And threads it adds when groups with jobs queued and none running
 * outnumber the threads free to take them (two groups blocked would
 * otherwise hold up a third), at most: each ends after WORKERS_IDLE_MS
 * with nothing to do. */
#define WORKERS_MAX_EXTRA 64
#define WORKERS_IDLE_MS 10000

/* Queue run(job) to run on a worker thread; tag comes back with it in done.
 * group is a key the caller chooses (the node: the server module), opaque
 * here: each group's next job (the order submitted, or by turns within
 * the group: workers_submit_fair) starts by its age among the groups' next
 * jobs, but that of a group running none goes first (every group gets a
 * thread before any gets two),
 * a job whose group already runs on as many threads as workers_create was
 * asked for waits, and the next job of another group starts instead. A
 * group with jobs queued and none running never waits for another group's
 * jobs to end: a thread is added for it (WORKERS_MAX_EXTRA). 0, or -1 when out of memory,
 * when WORKERS_MAX_QUEUED jobs wait already (or WORKERS_MAX_QUEUED_GROUP of
 * the group's), or when the pool is being
 * destroyed. */
int workers_submit(workers *w, const void *group, workers_run_fn *run, void *job, void *tag);
/* A submitter's place in line within a group, for workers_submit_fair:
 * its storage is the submitter's (zeroed before its first job), read and
 * written only under the pool's lock, during submits. */
typedef struct workers_turn {
    uint64_t last, gen;
} workers_turn;
/* The same, taking turns: within its group a job starts by fair queuing
 * on turn, not in the order submitted. Each submitter's jobs start in the
 * order it submitted them, and the submitters of a group take turns, one
 * job each: the node gives each server a turn, so the servers of one
 * module (one group) share its threads, and one server's thousands of jobs
 * queued do not hold another's first job behind them; nor can a stream of
 * others' jobs hold one back for good. workers_submit is this with one turn
 * for every job of the group: the order submitted. */
int workers_submit_fair(workers *w, const void *group, workers_turn *turn, workers_run_fn *run, void *job,
                        void *tag);
/* On the loop thread: reads the eventfd and calls done (with ran = 1) for up
 * to max finished jobs, in the order they finished. Returns how many. When
 * more remain, the fd is left readable. */
size_t workers_collect(workers *w, workers_done_fn *done, void *ctx, size_t max);
/* On the loop thread: jobs not yet started are dropped (done with ran = 0,
 * in the order they would have started); jobs running are waited for; then every finished
 * job not yet collected gets done with ran = 1; the threads are joined and
 * everything freed. done may be NULL when the jobs need no freeing. NULL w:
 * nothing. */
void workers_destroy(workers *w, workers_done_fn *done, void *ctx);
/* On the loop thread: no job starts from now on, and none is taken (the
 * queued ones wait for workers_stop to drop them); running ones go on. */
void workers_quiesce(workers *w);
/* workers_destroy, but jobs running are waited for wait_ms at most (< 0:
 * no limit); every job finished by then gets its done (a running one
 * none). Returns 0 when the pool is gone; else how many jobs still run,
 * and the pool is left as it is, stopping, with no job queued: its threads
 * (and whatever code the jobs run) are still in use. Call it again to wait
 * more, or leave them to the process's exit. */
size_t workers_stop(workers *w, workers_done_fn *done, void *ctx, long wait_ms);

/* For stats: jobs waiting, jobs running (each read under the lock). */
size_t workers_queued(const workers *w);
size_t workers_running(const workers *w);
unsigned workers_threads(const workers *w); /* as asked of workers_create */
unsigned workers_alive(const workers *w);   /* threads running now, extras included */
/* How long an added thread idles before it ends (WORKERS_IDLE_MS; for tests). */
void workers_set_idle_ms(workers *w, long ms);

/* The CPUs this process may use: its sched_getaffinity count, capped by the
 * cgroup v2 CPU quota (cpu.max of its cgroup and the ones above, rounded
 * up) where readable; at least 1. */
unsigned workers_default_threads(void);
/* The CPU limit a cgroup v2 cpu.max file's text sets ("200000 100000": 2;
 * "150000 100000": 2, rounded up), or 0 for none ("max 100000") or text not
 * understood. For workers_default_threads and its tests. */
unsigned workers_cpu_max_limit(const char *text);

#endif

/* durable.c: snapshot + logs, recovery and compaction; see durable.h. */
#include "durable.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aof.h"
#include "bg_sync.h"
#include "folder.h"
#include "log.h"
#include "snapshot.h"
#include "term.h"

struct durable {
    char *dir, *name;
    int closing;        /* durable_closing: no compaction starts by itself */
    int lock_fd;        /* NAME.lock, held while open: one node per folder */
    fsync_policy policy;
    uint64_t compact_min;
    store *s;
    aof log;            /* the newest log, appended to */
    uint64_t gen;       /* its generation */
    uint64_t base_gen;  /* the oldest log still needed (the snapshot's generation) */
    pid_t child;        /* a compaction under way, or 0 */
    uint64_t child_gen;
    int unsynced;       /* written since the last fsync */
    int failing;        /* the last write or sync failed: said once, retried */
    /* The generation of a log whose fsync failed, or 0. After a failed
     * fsync the kernel may have dropped that log's unwritten pages and
     * cleared the error, so a retry "succeeds" on data that is gone. It is
     * never trusted again: a compaction starts, and only once its snapshot
     * (written from memory) covers that log are syncs answered ok again. */
    uint64_t sync_lost_gen;
    double compact_after_ms;   /* no compaction starts by itself before this */
    double compact_backoff_ms; /* after a failure: 1 s, doubling to a minute */
    double last_sync_ms;
    /* everysec: the fsync due each second runs on this thread (bg_sync.h),
     * not on the loop; NULL under the other policies, or when no thread
     * could be made (then it runs on the loop). Every sync the loop makes
     * itself of the newest log (a forced one, before a compaction switches
     * logs, at close) first waits for the one in flight and takes its
     * result (collect_sync), so no failure goes unseen. */
    bg_sync *syncer;
    int sync_posted; /* a sync in flight, or done and not yet collected */
    uint64_t snapshot_bytes;
    uint64_t old_log_bytes; /* in logs older than the newest */
    durable_stats stats;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

int fsync_policy_parse(const char *s, fsync_policy *out)
{
    if (strcmp(s, "always") == 0)
        *out = FSYNC_ALWAYS;
    else if (strcmp(s, "everysec") == 0)
        *out = FSYNC_EVERYSEC;
    else if (strcmp(s, "no") == 0)
        *out = FSYNC_NO;
    else
        return -1;
    return 0;
}

/* dir/name.kind (the snapshot, the lock) or dir/name.kind.gen (a log: gen >= 1). */
static void path_of(const durable *d, char *out, size_t len, const char *kind, uint64_t gen)
{
    if (gen)
        snprintf(out, len, "%s/%s.%s.%" PRIu64, d->dir, d->name, kind, gen);
    else
        snprintf(out, len, "%s/%s.%s", d->dir, d->name, kind);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static int apply(void *ctx, enum aof_op op, term_view key, term_view value)
{
    store *s = ctx;
    ei_x_buff today;
    int redone = term_key_today(&key, &today), rc = 0; /* written by an older rule, perhaps */
    if (op == AOF_DELETE)
        store_delete(s, key);
    else
        rc = store_put(s, key, value);
    if (redone)
        ei_x_free(&today);
    return rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The generations of NAME.log.N in the folder, sorted; *n of them. */
static uint64_t *list_logs(const durable *d, size_t *n, char *err, size_t errlen)
{
    DIR *dir = opendir(d->dir);
    size_t cap = 16, prefix = strlen(d->name) + 5;
    uint64_t *gens = malloc(cap * sizeof *gens);
    *n = 0;
    if (!dir || !gens) {
        snprintf(err, errlen, "cannot list %s: %s", d->dir, strerror(errno));
        if (dir)
            closedir(dir);
        free(gens);
        return NULL;
    }
    struct dirent *e;
    int failed = 0;
    for (;;) {
        errno = 0;
        if ((e = readdir(dir)) == NULL) {
            failed = errno;
            break;
        }
        char *end;
        if (strncmp(e->d_name, d->name, prefix - 5) != 0 || strncmp(e->d_name + prefix - 5, ".log.", 5) != 0)
            continue;
        unsigned long long g = strtoull(e->d_name + prefix, &end, 10);
        if (*end || end == e->d_name + prefix || g == 0)
            continue;
        if (*n == cap) {
            uint64_t *more = realloc(gens, (cap *= 2) * sizeof *gens);
            if (!more) {
                failed = ENOMEM;
                break;
            }
            gens = more;
        }
        gens[(*n)++] = g;
    }
    if (failed) { /* a log left out would be taken for one that is not there */
        snprintf(err, errlen, "cannot list %s: %s", d->dir, strerror(failed));
        closedir(dir);
        free(gens);
        return NULL;
    }
    closedir(dir);
    qsort(gens, *n, sizeof *gens, cmp_u64);
    return gens;
}

/* The generations present must be the ones compaction leaves: with a
 * snapshot of generation S (1 <= S <= DURABLE_MAX_GENERATION), logs below S
 * are leftovers it covers, and S, S+1, ... follow each other with no gap,
 * from S itself (compaction creates log S before it writes snapshot S);
 * with no snapshot the logs start at 1. Anything else means a file was lost
 * or damaged: refuse rather than write where recovery would not read. */
static int check_generations(const durable *d, int have_snap, uint64_t snap_gen, const uint64_t *gens,
                             size_t n, char *err, size_t errlen)
{
    if (have_snap && (snap_gen == 0 || snap_gen > DURABLE_MAX_GENERATION)) {
        snprintf(err, errlen, "%s/%s.snap: generation %" PRIu64 " is impossible; refusing to start",
                 d->dir, d->name, snap_gen);
        return -1;
    }
    uint64_t want = have_snap ? snap_gen : 1;
    size_t i = 0;
    while (i < n && gens[i] < want)
        i++;
    if (have_snap && i == n) {
        snprintf(err, errlen, "%s/%s.log.%" PRIu64 " is missing (the snapshot's generation); "
                 "refusing to start", d->dir, d->name, snap_gen);
        return -1;
    }
    for (; i < n; i++, want++)
        if (gens[i] != want || gens[i] > DURABLE_MAX_GENERATION) {
            snprintf(err, errlen, "%s/%s.log.%" PRIu64 " is missing (%s.log.%" PRIu64 " follows); "
                     "refusing to start", d->dir, d->name, want, d->name, gens[i]);
            return -1;
        }
    return 0;
}

static int recover(durable *d, char *err, size_t errlen)
{
    char path[4096];
    double t0 = now_ms();
    uint64_t snap_gen = 0;
    path_of(d, path, sizeof path, "snap", 0);
    int rc = snapshot_read(path, d->s, &snap_gen, err, errlen);
    if (rc < 0)
        return -1;
    d->snapshot_bytes = rc == 0 ? file_size(path) : 0;
    d->stats.recovered_entries = store_size(d->s);
    size_t n;
    uint64_t *gens = list_logs(d, &n, err, errlen);
    if (!gens)
        return -1;
    if (check_generations(d, rc == 0, snap_gen, gens, n, err, errlen) < 0) {
        free(gens);
        return -1;
    }
    d->base_gen = rc == 0 ? snap_gen : 1;
    d->gen = d->base_gen;
    for (size_t i = 0; i < n; i++) {
        path_of(d, path, sizeof path, "log", gens[i]);
        if (gens[i] < d->base_gen) { /* covered by the snapshot: a compaction's leftover */
            unlink(path);
            continue;
        }
        long r = aof_replay(path, i == n - 1, apply, d->s, &d->stats.checked_bytes, err, errlen);
        if (r < 0) {
            free(gens);
            return -1;
        }
        d->stats.replayed_records += (uint64_t)r;
        d->gen = gens[i];
        if (i + 1 < n)
            d->old_log_bytes += file_size(path);
    }
    free(gens);
    d->stats.recovered_entries = store_size(d->s);
    d->stats.recovery_ms = now_ms() - t0;
    path_of(d, path, sizeof path, "log", d->gen);
    return aof_open(&d->log, path, err, errlen);
}

durable *durable_open(const char *dir, const char *name, fsync_policy policy, uint64_t compact_min,
                      store *s, char *err, size_t errlen)
{
    int made = mkdir(dir, 0755) == 0;
    if ((!made && errno != EEXIST) || (made && folder_sync(dir) < 0)) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return NULL;
    }
    durable *d = calloc(1, sizeof *d);
    if (!d || !(d->dir = strdup(dir)) || !(d->name = strdup(name))) {
        snprintf(err, errlen, "out of memory");
        durable_close(d);
        return NULL;
    }
    d->log.fd = -1;
    d->lock_fd = -1;
    d->policy = policy;
    char lock[4096];
    path_of(d, lock, sizeof lock, "lock", 0);
    d->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (d->lock_fd < 0 || flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(err, errlen, errno == EWOULDBLOCK ? "%s is in use by another gen_cnode" : "cannot lock %s: %s",
                 lock, strerror(errno));
        durable_close(d);
        return NULL;
    }
    d->compact_min = compact_min;
    d->s = s;
    d->last_sync_ms = now_ms();
    /* A snapshot a compaction was writing when its node died: never read,
     * and as big as the store (on a disk that may be full). Its child dies
     * with the node (PR_SET_PDEATHSIG), a moment after the lock is free. */
    char tmp[4096 + 8];
    path_of(d, lock, sizeof lock, "snap", 0);
    snprintf(tmp, sizeof tmp, "%s.tmp", lock);
    if (unlink(tmp) == 0)
        log_info("%s/%s: removed %s, left by a compaction that did not finish", dir, name, tmp);
    if (recover(d, err, errlen) < 0) {
        durable_close(d);
        return NULL;
    }
    /* The names of the folder's files are on disk, whatever crash came
     * between making one and syncing the folder. */
    if (folder_sync(tmp) < 0) /* (tmp's folder: this one) */
        log_warning("%s/%s: cannot sync the folder: %s", dir, name, strerror(errno));
    if (policy == FSYNC_EVERYSEC && !(d->syncer = bg_sync_start()))
        log_warning("%s/%s: no thread for the log's fsync: it runs on the loop, each second", dir, name);
    log_notice("%s/%s: recovered %" PRIu64 " entries (%" PRIu64 " log records) in %.1f ms", dir, name,
               d->stats.recovered_entries, d->stats.replayed_records, d->stats.recovery_ms);
    return d;
}

/* Room for a record of about `more` bytes (durable.h: DURABLE_MAX_UNWRITTEN). */
static int room_to_log(const durable *d, size_t more)
{
    return !d->failing || aof_pending(&d->log) + more <= DURABLE_MAX_UNWRITTEN;
}

int durable_put(durable *d, term_view key, term_view value)
{
    if (!room_to_log(d, key.len + value.len))
        return DURABLE_BACKLOG;
    return aof_append(&d->log, AOF_PUT, key, value);
}

int durable_delete(durable *d, term_view key)
{
    if (!room_to_log(d, key.len))
        return DURABLE_BACKLOG;
    return aof_append(&d->log, AOF_DELETE, key, (term_view){NULL, 0});
}

size_t durable_mark(const durable *d) { return aof_pending(&d->log); }

long durable_sync_due_in(const durable *d)
{
    if (d->sync_posted)
        return 5; /* its end is looked for then: the thread cannot wake the loop */
    if (d->policy != FSYNC_EVERYSEC || !d->unsynced || d->sync_lost_gen == d->gen)
        return -1;
    double left = 1000.0 - (now_ms() - d->last_sync_ms);
    return left > 0 ? (long)left + 1 : 1; /* due already: at the next turn, which the timer makes */
}

void durable_unlog(durable *d, size_t mark) { aof_unappend(&d->log, mark); }

/* A compaction that could not start or did not finish: the next one that
 * would start by itself waits, longer each time, up to a minute. */
static void compaction_failed(durable *d)
{
    d->stats.compaction_failures++;
    d->compact_backoff_ms = d->compact_backoff_ms > 0 ? d->compact_backoff_ms * 2 : 1000.0;
    if (d->compact_backoff_ms > 60000.0)
        d->compact_backoff_ms = 60000.0;
    d->compact_after_ms = now_ms() + d->compact_backoff_ms;
}

/* An fsync of the newest log failed: see sync_lost_gen. */
static void sync_lost(durable *d, const char *err)
{
    if (d->sync_lost_gen >= d->gen)
        return;
    d->sync_lost_gen = d->gen;
    log_error("%s/%s: %s; that log is not trusted again: a snapshot from memory replaces it", d->dir,
              d->name, err);
    d->compact_after_ms = 0; /* now, whatever an earlier failure said */
}

/* The background sync posted last, once it is done (or, with wait, waited
 * for): a failure is an fsync of the newest log that failed (a log is never
 * switched while one is in flight: start_compaction collects first). */
static void collect_sync(durable *d, int wait)
{
    int error = 0;
    if (!d->sync_posted || (wait ? bg_sync_wait(d->syncer, &error) : bg_sync_poll(d->syncer, &error)) != 1)
        return;
    d->sync_posted = 0;
    if (error) {
        char err[512];
        snprintf(err, sizeof err, "syncing %s: %s", d->log.path, strerror(error));
        sync_lost(d, err);
    }
}

/* A finished compaction (or, with wait, one waited for): drop the logs its
 * snapshot covers. */
static void reap(durable *d, int wait)
{
    int status = 0;
    if (d->child <= 0)
        return;
    pid_t r;
    do
        r = waitpid(d->child, &status, wait ? 0 : WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == 0 || (r < 0 && errno != ECHILD))
        return;
    d->child = 0;
    char path[4096];
    int ok = r > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (r < 0) {
        /* Reaped by someone else (a module that ignores SIGCHLD, or waits
         * for any child): its status is lost. The snapshot tells: in place
         * with the child's generation, it was renamed whole; its folder is
         * synced here, as the child would have, before a log goes. */
        uint64_t gen;
        path_of(d, path, sizeof path, "snap", 0);
        ok = snapshot_generation(path, &gen) == 0 && gen == d->child_gen && folder_sync(path) == 0;
        log_warning("%s/%s: the compaction's exit status was taken by another waitpid; its snapshot is %s",
                    d->dir, d->name, ok ? "in place" : "not");
    }
    if (!ok) {
        compaction_failed(d);
        log_error("%s/%s: compaction failed; keeping every log, trying again in %.0f s", d->dir, d->name,
                  d->compact_backoff_ms / 1000.0);
        return;
    }
    for (uint64_t g = d->base_gen; g < d->child_gen; g++) {
        path_of(d, path, sizeof path, "log", g);
        unlink(path);
    }
    d->base_gen = d->child_gen;
    d->old_log_bytes = 0;
    d->compact_backoff_ms = 0;
    path_of(d, path, sizeof path, "snap", 0);
    d->snapshot_bytes = file_size(path);
    d->stats.compactions++;
    log_info("%s/%s: compaction finished: snapshot of %" PRIu64 " bytes", d->dir, d->name,
             d->snapshot_bytes);
    if (d->sync_lost_gen && d->sync_lost_gen < d->base_gen) {
        d->sync_lost_gen = 0;
        log_info("%s/%s: the log whose fsync failed is replaced by the snapshot; syncing works again",
                 d->dir, d->name);
    }
}

/* In the compaction's child, before it writes: it keeps nothing of the
 * node's but its memory. It dies with the node (a node killed mid-compaction
 * must not leave it holding the folder's lock, the node's port, its epmd
 * name and its peers' connections, which a restart would find taken), lets
 * the signals the node blocked through, and closes every descriptor but
 * the standard ones and the log's: sockets, every store's lock and log. */
static void child_lets_go(durable *d, pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1); /* the node died before the line above */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (d->lock_fd >= 0)
        close(d->lock_fd);
    int keep = log_fd();
    DIR *fds = opendir("/proc/self/fd");
    if (!fds)
        return;
    for (struct dirent *e; (e = readdir(fds)) != NULL;) {
        int fd = atoi(e->d_name);
        if (fd > 2 && fd != keep && fd != dirfd(fds) && e->d_name[0] != '.')
            close(fd);
    }
    closedir(fds);
}

/* The log is switched to a new generation, the old one synced (the
 * snapshot to come does not cover what is logged after the switch, and until
 * it is in place the old logs are what recovery reads), then a child writes
 * the snapshot. */
static int start_compaction(durable *d, char *err, size_t errlen)
{
    collect_sync(d, 1);
    if (aof_pending(&d->log)) {
        if (aof_write(&d->log, err, errlen) < 0)
            return -1;
        d->unsynced = 1;
    }
    /* The old log is synced before the next exists, whatever the policy:
     * recovery takes a torn tail for one only in the newest log, so a log
     * followed by another must be whole on disk. */
    if (d->sync_lost_gen != d->gen && (d->unsynced || d->policy == FSYNC_NO)) {
        char serr[512];
        if (aof_sync(&d->log, serr, sizeof serr) < 0)
            sync_lost(d, serr); /* this very compaction is the repair */
    }
    char path[4096];
    aof next;
    path_of(d, path, sizeof path, "log", d->gen + 1);
    if (aof_open(&next, path, err, errlen) < 0)
        return -1;
    d->unsynced = 0; /* the new log has nothing yet; the old is synced or lost */
    d->old_log_bytes += d->log.size;
    aof_close(&d->log);
    d->log = next;
    d->gen++;
    double t0 = now_ms();
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) { /* the child: its copy of the store is the state as of the new log's start */
        char cerr[512];
        child_lets_go(d, parent);
        path_of(d, path, sizeof path, "snap", 0);
        if (snapshot_write(path, d->gen, d->s, cerr, sizeof cerr) == 0)
            _exit(0);
        log_forked(LOG_ERROR, "compaction: %s", cerr); /* one write, no lock: a forked child */
        _exit(1);
    }
    d->stats.last_fork_ms = now_ms() - t0;
    if (d->stats.last_fork_ms > d->stats.max_fork_ms)
        d->stats.max_fork_ms = d->stats.last_fork_ms;
    if (pid < 0) {
        snprintf(err, errlen, "cannot fork to compact: %s", strerror(errno));
        return -1;
    }
    d->child = pid;
    d->child_gen = d->gen;
    log_info("%s/%s: compaction started", d->dir, d->name);
    return 0;
}

int durable_compact(durable *d, char *err, size_t errlen)
{
    if (d->child > 0)
        return 1;
    if (start_compaction(d, err, errlen) == 0)
        return 0;
    compaction_failed(d);
    return -1;
}

int durable_flush(durable *d, int force_sync, int *pending, char *err, size_t errlen)
{
    int rc = DURABLE_OK;
    /* First: a repair that finished may clear sync_lost_gen, and what this
     * flush writes must be synced by it, not skipped as if still lost. */
    reap(d, 0);
    if (aof_pending(&d->log)) {
        if (aof_write(&d->log, err, errlen) < 0)
            rc = DURABLE_WRITE_FAILED;
        else
            d->unsynced = 1;
    }
    double now = now_ms();
    /* A sync of everysec's that ended: its failure counts before this
     * flush decides anything; a forced sync waits for it. */
    collect_sync(d, force_sync);
    /* A log newer than the one whose fsync failed is synced as usual
     * while the repair runs; only a forced sync is refused till then. */
    if (rc == DURABLE_OK && d->unsynced && d->policy != FSYNC_NO && d->sync_lost_gen != d->gen &&
        (force_sync || d->policy == FSYNC_ALWAYS || now - d->last_sync_ms >= 1000.0)) {
        /* everysec's, on its thread; when the last one still runs (a slow
         * disk), a later flush posts this one */
        int posted = force_sync || !d->syncer ? -1 : bg_sync_post(d->syncer, d->log.fd);
        if (posted == 0) { /* on its way: what was written so far is covered */
            d->sync_posted = 1;
            d->unsynced = 0;
            d->last_sync_ms = now;
        } else if (posted < 0) {
            if (aof_sync(&d->log, err, errlen) < 0) {
                rc = DURABLE_SYNC_FAILED;
                sync_lost(d, err);
            } else {
                d->unsynced = 0;
            }
            d->last_sync_ms = now;
        }
    }
    if (d->policy == FSYNC_NO)
        d->unsynced = 0;
    if (rc == DURABLE_WRITE_FAILED && !d->failing)
        log_error("%s/%s: %s; the changes are kept and written again once it works", d->dir, d->name, err);
    else if (rc == DURABLE_OK && d->failing)
        log_info("%s/%s: writing the log works again", d->dir, d->name);
    d->failing = rc == DURABLE_WRITE_FAILED;
    uint64_t logs = d->old_log_bytes + d->log.size;
    if (!d->child && !d->closing && now >= d->compact_after_ms &&
        (d->sync_lost_gen || (logs >= d->compact_min && logs >= d->snapshot_bytes))) {
        char cerr[512];
        if (durable_compact(d, cerr, sizeof cerr) < 0)
            log_error("%s/%s: %s; trying again in %.0f s", d->dir, d->name, cerr,
                      d->compact_backoff_ms / 1000.0);
    }
    if (rc == DURABLE_OK && force_sync && d->sync_lost_gen && d->policy != FSYNC_NO) {
        snprintf(err, errlen, "an fsync of %s.log.%" PRIu64 " failed; not on disk until a snapshot "
                 "replaces it (%s)", d->name, d->sync_lost_gen,
                 d->child ? "one is being written" : "none could be written yet");
        rc = DURABLE_SYNC_FAILED;
    }
    *pending = d->unsynced || d->sync_posted || d->child > 0 || aof_pending(&d->log) > 0 || d->sync_lost_gen;
    return rc;
}

void durable_closing(durable *d) { d->closing = 1; }

/* At close, a compaction under way is stopped rather than waited for: with
 * a big store it runs for seconds, and the node's loop, every other server
 * with it, would wait (Redis kills its rewrite child at shutdown likewise).
 * Nothing is lost: the logs it was to replace are all kept, its half
 * snapshot goes, and the next compaction does the work again. One that has
 * finished already is reaped as usual, its work kept. */
static void stop_compaction(durable *d)
{
    reap(d, 0);
    if (d->child <= 0)
        return;
    if (d->sync_lost_gen && d->child_gen > d->sync_lost_gen) {
        /* It is the repair of a failed fsync, which close would only
         * start again and wait for: waited for now instead. */
        reap(d, 1);
        return;
    }
    kill(d->child, SIGKILL);
    pid_t r;
    do
        r = waitpid(d->child, NULL, 0);
    while (r < 0 && errno == EINTR);
    d->child = 0;
    /* Killed after its rename, the snapshot is in place and covers the
     * logs below its generation, which stay until an open removes them:
     * its folder is synced here, as the child would have, before any
     * open counts on it. */
    char path[4096], tmp[4096 + 8];
    uint64_t gen;
    path_of(d, path, sizeof path, "snap", 0);
    if (snapshot_generation(path, &gen) == 0 && gen == d->child_gen && folder_sync(path) < 0)
        log_warning("%s/%s: cannot sync the folder: %s", d->dir, d->name, strerror(errno));
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unlink(tmp);
    log_notice("%s/%s: closing: the compaction under way is stopped; every log is kept", d->dir, d->name);
}

void durable_close(durable *d)
{
    if (!d)
        return;
    char err[512];
    stop_compaction(d);
    collect_sync(d, 1);
    if (d->log.fd >= 0 && aof_write(&d->log, err, sizeof err) < 0)
        log_error("%s/%s: closing: %s; the changes not written are lost", d->dir, d->name, err);
    else if (d->log.fd >= 0 && d->policy != FSYNC_NO && d->sync_lost_gen != d->gen &&
             aof_sync(&d->log, err, sizeof err) < 0)
        sync_lost(d, err);
    if (d->log.fd >= 0 && d->sync_lost_gen && d->policy != FSYNC_NO) {
        /* The last chance to replace a log whose fsync failed (say the
         * compaction that should have failed, and waits out its pause). */
        if (start_compaction(d, err, sizeof err) < 0)
            log_error("%s/%s: closing: %s; the log whose fsync failed is the only copy of its changes",
                      d->dir, d->name, err);
        else
            reap(d, 1);
    }
    bg_sync_stop(d->syncer);
    aof_close(&d->log);
    if (d->lock_fd >= 0)
        close(d->lock_fd);
    free(d->dir);
    free(d->name);
    free(d);
}

const durable_stats *durable_stats_of(durable *d)
{
    d->stats.log_bytes = d->old_log_bytes + d->log.size;
    return &d->stats;
}

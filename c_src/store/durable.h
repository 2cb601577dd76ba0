/*
 * durable.h: what makes a store survive a restart: a snapshot plus the logs
 * of what changed since, in one folder.
 *   NAME.snap           the whole store as of the start of log G (snapshot.h)
 *   NAME.log.G, G+1...  every change since, in order (aof.h)
 *   NAME.lock           held (flock) while a node has the store open
 * Opening recovers the store from them. Changes are logged as they happen and
 * written with one write per batch, before the batch's replies go out; how
 * often the log is fsynced is the policy (always: every batch; everysec: a
 * second later, on a thread of its own, bg_sync.h; no: when the OS likes). Compaction forks: the child
 * writes a new snapshot from its copy of the store while the parent serves
 * on and logs to a new generation; when the child is done, older logs go.
 * Nothing here knows of messages or connections.
 */
#ifndef GEN_CNODE_DURABLE_H
#define GEN_CNODE_DURABLE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef enum { FSYNC_ALWAYS, FSYNC_EVERYSEC, FSYNC_NO } fsync_policy;

/* The largest generation accepted: compaction adds one at a time, so this
 * is never reached, and a file that claims more is damaged. */
#define DURABLE_MAX_GENERATION (UINT64_C(1) << 62)

typedef struct durable_stats {
    uint64_t recovered_entries;
    uint64_t replayed_records;
    uint64_t checked_bytes;           /* checksummed while recovering: linear in the files */
    double recovery_ms;
    double last_fork_ms, max_fork_ms; /* the pause compaction costs the server */
    uint64_t compactions;
    uint64_t compaction_failures;     /* each followed by a pause before the next try */
    uint64_t log_bytes;               /* in every log still kept */
} durable_stats;

typedef struct durable durable;

/* Open dir/name.*, recovering into s (which must be empty). NULL with err on
 * failure: a corrupt file is never skipped, and the generations present must
 * follow each other as compaction leaves them (a missing log, a snapshot
 * whose generation no log matches, are refused). compact_min: the log size (bytes)
 * from which compaction starts by itself (when the logs also outgrow the
 * snapshot). */
durable *durable_open(const char *dir, const char *name, fsync_policy policy, uint64_t compact_min,
                      store *s, char *err, size_t errlen);
/* Write and sync what is logged, and free d. A compaction under way is
 * stopped, not waited for (its logs are kept): closing takes milliseconds,
 * not the seconds a big store's snapshot takes. */
void durable_close(durable *d);
/* The store is about to close: flushes from now on start no compaction by
 * themselves (durable_close would stop it at once, its work wasted). */
void durable_closing(durable *d);

/* While writes fail (a full disk), what waits to be written stays in
 * memory, this much at most: past it changes are refused, rather than grow
 * until the node is killed for its memory and every one of them is lost. */
#define DURABLE_MAX_UNWRITTEN ((size_t)64 << 20)

/* Log a change, before it is applied to the store: 0; -1 when out of
 * memory; DURABLE_BACKLOG when writes fail and DURABLE_MAX_UNWRITTEN bytes
 * wait (then apply nothing). When applying it fails, durable_unlog(d, mark),
 * with the mark durable_mark gave before the change was logged, takes it
 * back: the log never holds what the store does not. */
int durable_put(durable *d, term_view key, term_view value);
int durable_delete(durable *d, term_view key);
size_t durable_mark(const durable *d);
void durable_unlog(durable *d, size_t mark);

enum { DURABLE_OK = 0, DURABLE_WRITE_FAILED = -1, DURABLE_SYNC_FAILED = -2, DURABLE_BACKLOG = -3 };

/* End of a batch: write what was logged, fsync as the policy says (or now,
 * with force_sync, unless the policy is no), look after compaction.
 * Returns DURABLE_OK: written, and synced if asked;
 *   DURABLE_WRITE_FAILED, with err: not written (a full disk): the records
 *     are kept and tried again at the next flush;
 *   DURABLE_SYNC_FAILED, with err: written, but asked to sync, not known to
 *     be on disk: an fsync failed, now or earlier. A failed fsync is never
 *     retried on the same log (the kernel may have dropped its pages and
 *     forgotten the error): a compaction starts at once and, once its
 *     snapshot covers that log, syncs succeed again.
 * A compaction that fails is not tried again by itself for a while (1 s,
 * doubling up to a minute), so a full disk does not fork a child per batch.
 * *pending says whether it wants to be called again soon (data not yet
 * fsynced, a compaction under way). */
int durable_flush(durable *d, int force_sync, int *pending, char *err, size_t errlen);

/* Under everysec, with changes written and not yet synced: in how many ms
 * their sync is due (flush then syncs them; 1 when due already); with a
 * sync on its thread, in how many ms a flush should look for its end (the
 * thread cannot wake the caller); -1 when none waits for a sync. For the
 * caller's timer: a node with nothing else to do must still sync within
 * the second, and hear of a sync that failed. */
long durable_sync_due_in(const durable *d);

/* Start a compaction now: 0, 1 if one is already under way, -1 with err. */
int durable_compact(durable *d, char *err, size_t errlen);
const durable_stats *durable_stats_of(durable *d);
int fsync_policy_parse(const char *s, fsync_policy *out);

#endif

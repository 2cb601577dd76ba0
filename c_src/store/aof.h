/*
 * aof.h: an append-only log of a store's changes. Version 2 (this one
 * writes it): a 13-byte magic, 0 0 0 5 "gcnl" 0 "ogv" 2, then records
 *   [u32 length][u32 crc32c of the payload][u32 crc32c of those 8 bytes][payload]
 *   payload: [u8 op (1 put, 2 delete)][u32 key length][key bytes][value bytes]
 * all big-endian. Version 1 (written before: no magic, records with no
 * header checksum) is read, and appended to in version 1; a log begun now
 * is version 2. A node of version 1 refuses a log of version 2 (its magic
 * reads as a corrupt record) rather than cutting it as torn, and a damaged
 * magic is refused too. Records are gathered in memory and written with one write
 * per batch; if that write fails (a full disk), the file is cut back to its
 * last whole record and the batch kept to try again, so what was on disk
 * stays intact.
 *
 * Reading back: a last record that is cut short or fails its checksum at the
 * very end of the last log is a torn tail from a crash, and is cut off (and
 * said so); anything else that does not check is corruption, and reading
 * stops with the file and offset named, so no data is ever dropped silently.
 * The header's own checksum (version 2) tells a torn write from a damaged
 * length: a record whose header checks is known to end where it says, so
 * one that runs to or past the end of the file is torn, whatever its
 * payload holds (a stored value that is itself a log, say, whose records
 * version 1 took for later ones and so refused to start).
 */
#ifndef GEN_CNODE_AOF_H
#define GEN_CNODE_AOF_H

#include <stddef.h>
#include <stdint.h>

#include "buffer.h"
#include "term.h"

enum aof_op { AOF_PUT = 1, AOF_DELETE = 2 };

typedef struct aof {
    int fd;
    char *path;
    uint64_t size;  /* bytes of whole records on disk */
    buffer pending; /* records not yet written */
    int torn;       /* a failed write left bytes past size that could not be cut off yet */
    int version;    /* the log's format: 2, or 1 for a log begun by an older node */
} aof;

typedef int aof_apply_fn(void *ctx, enum aof_op op, term_view key, term_view value);

/* Open (creating) path for appending. 0, or -1 with err. */
int aof_open(aof *a, const char *path, char *err, size_t errlen);
void aof_close(aof *a);

/* Apply every record of path to fn, in order. last: this is the newest log,
 * whose torn tail may be cut off. Returns the number of records, or -1 with
 * err naming the file and offset of the first bad record (or fn's failure).
 * Adds to *checked the bytes it checksummed: linear in the file's size,
 * whatever its content (telling a torn tail from corruption included). */
long aof_replay(const char *path, int last, aof_apply_fn *fn, void *ctx, uint64_t *checked,
                char *err, size_t errlen);

int aof_append(aof *a, enum aof_op op, term_view key, term_view value);
size_t aof_pending(const aof *a);
/* Take back what was appended since aof_pending said pending_was (nothing
 * was written meanwhile). */
void aof_unappend(aof *a, size_t pending_was);
/* Write what is pending. 0, or -1 with err (the file is cut back, the records kept). */
int aof_write(aof *a, char *err, size_t errlen);
/* fdatasync. 0, or -1 with err. */
int aof_sync(aof *a, char *err, size_t errlen);

#endif

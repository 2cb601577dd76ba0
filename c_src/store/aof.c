/* aof.c: the append-only log; see aof.h. */
#include "aof.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "folder.h"
#include "log.h"

#define RECORD_HEADER 8
#define PAYLOAD_HEADER 5
#define MAX_RECORD (1u << 31)
#define SCAN_WINDOW ((size_t)256 << 20) /* how far past a bad record a good one is looked for */
#define SCAN_BUDGET ((uint64_t)16 << 20) /* checksummed bytes allowed beyond 4x that far */

int aof_open(aof *a, const char *path, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    int created = 1;
    a->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (a->fd < 0 && errno == EEXIST) {
        created = 0;
        a->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    }
    struct stat st;
    /* A new log's name must be on disk before any record in it is called
     * synced: a log that vanished in a power cut would read as "no more
     * records", with no gap to tell (durable.c checks gaps, not ends). */
    const char *failed = a->fd < 0 ? "open" : fstat(a->fd, &st) < 0 ? "stat"
                       : created && folder_sync(path) < 0 ? "sync the folder of" : NULL;
    if (failed) {
        snprintf(err, errlen, "cannot %s %s: %s", failed, path, strerror(errno));
        if (a->fd >= 0)
            close(a->fd);
        if (a->fd >= 0 && created)
            unlink(path); /* not left for a next try to open as if its name were synced */
        a->fd = -1;
        return -1;
    }
    a->path = strdup(path);
    a->size = (uint64_t)st.st_size;
    return a->path ? 0 : -1;
}

void aof_close(aof *a)
{
    if (a->fd >= 0)
        close(a->fd);
    free(a->path);
    buffer_free(&a->pending);
    a->fd = -1;
    a->path = NULL;
}

int aof_append(aof *a, enum aof_op op, term_view key, term_view value)
{
    size_t payload = PAYLOAD_HEADER + key.len + value.len;
    if (payload > MAX_RECORD || buffer_reserve(&a->pending, RECORD_HEADER + payload) < 0)
        return -1;
    char *p = buffer_tail(&a->pending);
    put_u32(p, (uint32_t)payload);
    p[8] = (char)op;
    put_u32(p + 9, (uint32_t)key.len);
    memcpy(p + 13, key.ptr, key.len);
    if (value.len)
        memcpy(p + 13 + key.len, value.ptr, value.len);
    put_u32(p + 4, crc32c(0, p + 8, payload));
    a->pending.end += RECORD_HEADER + payload;
    return 0;
}

size_t aof_pending(const aof *a) { return buffer_len(&a->pending); }

void aof_unappend(aof *a, size_t pending_was)
{
    if (pending_was < buffer_len(&a->pending))
        a->pending.end = a->pending.start + pending_was;
}

int aof_write(aof *a, char *err, size_t errlen)
{
    size_t done = 0, len = buffer_len(&a->pending);
    /* Records never follow a half one: what a failed write left is cut off
     * first, or nothing is written (appended after it, they would make the
     * log refuse to recover). */
    if (a->torn && len) {
        if (ftruncate(a->fd, (off_t)a->size) < 0) {
            snprintf(err, errlen, "cannot cut %s back to %llu bytes: %s", a->path,
                     (unsigned long long)a->size, strerror(errno));
            return -1;
        }
        a->torn = 0;
    }
    while (done < len) {
        ssize_t n = write(a->fd, buffer_head(&a->pending) + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : ENOSPC;
            snprintf(err, errlen, "writing %s: %s", a->path, strerror(e));
            /* Cut back to the last whole record; keep the batch for the next try. */
            if (ftruncate(a->fd, (off_t)a->size) < 0) {
                log_error("cannot cut %s back to %llu bytes: %s; nothing more is written to it until it can be",
                          a->path, (unsigned long long)a->size, strerror(errno));
                a->torn = 1;
            }
            return -1;
        }
        done += (size_t)n;
    }
    a->size += len;
    buffer_consume(&a->pending, len);
    buffer_trim(&a->pending, 1 << 20);
    return 0;
}

int aof_sync(aof *a, char *err, size_t errlen)
{
    if (fdatasync(a->fd) < 0) {
        snprintf(err, errlen, "syncing %s: %s", a->path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Map all of path for reading (an empty file maps to nothing). */
static char *map_file(const char *path, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    *len = (size_t)st.st_size;
    if (*len == 0) {
        close(fd);
        return (char *)"";
    }
    char *p = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "cannot map %s: %s", path, strerror(errno));
        return NULL;
    }
    return p;
}

/* Is there a whole, checking record anywhere in buf[from .. len)? Looked for
 * before a bad record is taken for a torn tail: a crash only ever tears the
 * end, so a good record after the bad one means the bad one is corruption
 * (a damaged length, say), not a torn write.
 * Every position is a candidate, and each candidate's checksum covers its
 * claimed payload, so crafted bytes could make the search quadratic. It
 * checksums at most a budget linear in what is left of the file; past it
 * the answer is yes: the damage counts as corruption, and the node refuses
 * to start rather than cut off anything it has not proven torn. Real torn
 * tails are short and rarely hold a candidate, and stay far inside it. */
static int later_record(const char *buf, size_t len, size_t from, uint64_t *checked)
{
    size_t end = len - from > SCAN_WINDOW ? from + SCAN_WINDOW : len;
    uint64_t budget = 4 * (uint64_t)(end - from) + SCAN_BUDGET, spent = 0;
    for (size_t q = from; q + RECORD_HEADER + PAYLOAD_HEADER <= end; q++) {
        const char *p = buf + q;
        size_t payload = get_u32(p);
        if (payload < PAYLOAD_HEADER || payload > len - q - RECORD_HEADER ||
            (p[8] != AOF_PUT && p[8] != AOF_DELETE) || get_u32(p + 9) > payload - PAYLOAD_HEADER)
            continue;
        if ((spent += payload) > budget)
            return 1;
        *checked += payload;
        if (crc32c(0, p + 8, payload) == get_u32(p + 4))
            return 1;
    }
    return 0;
}

long aof_replay(const char *path, int last, aof_apply_fn *fn, void *ctx, uint64_t *checked,
                char *err, size_t errlen)
{
    size_t len, at = 0;
    long records = 0;
    char *buf = map_file(path, &len, err, errlen);
    if (!buf)
        return -1;
    while (at < len) {
        const char *p = buf + at;
        size_t left = len - at;
        size_t payload = left >= RECORD_HEADER ? get_u32(p) : 0;
        int whole = left >= RECORD_HEADER && payload >= PAYLOAD_HEADER && payload <= left - RECORD_HEADER;
        int good = whole && crc32c(0, p + 8, payload) == get_u32(p + 4);
        if (whole)
            *checked += payload;
        size_t klen = good ? get_u32(p + 9) : 0;
        if (good && (klen > payload - PAYLOAD_HEADER || (p[8] != AOF_PUT && p[8] != AOF_DELETE)))
            good = 0;
        if (!good) {
            int tail = (!whole || at + RECORD_HEADER + payload == len) && !later_record(buf, len, at + 1, checked);
            if (last && tail) {
                log_warning("%s: cutting off a torn last record at offset %zu (%zu bytes): "
                            "a crash interrupted its write", path, at, left);
                if (truncate(path, (off_t)at) < 0) {
                    snprintf(err, errlen, "cannot truncate %s at %zu: %s", path, at, strerror(errno));
                    records = -1;
                }
            } else {
                snprintf(err, errlen,
                         "%s: corrupt record at offset %zu (of %zu bytes); refusing to start rather "
                         "than drop what follows it. Inspect the file; to give up everything from "
                         "that record on, truncate it to %zu bytes.", path, at, len, at);
                records = -1;
            }
            break;
        }
        term_view key = {p + 13, klen};
        term_view value = {p + 13 + klen, payload - PAYLOAD_HEADER - klen};
        if (fn(ctx, (enum aof_op)p[8], key, value) < 0) {
            snprintf(err, errlen, "%s: cannot apply the record at offset %zu (out of memory?)", path, at);
            records = -1;
            break;
        }
        records++;
        at += RECORD_HEADER + payload;
    }
    if (len)
        munmap(buf, len);
    return records;
}

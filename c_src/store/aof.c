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

#define RECORD_HEADER 8    /* version 1: length, payload checksum */
#define RECORD_HEADER_2 12 /* version 2: length, payload checksum, header checksum */
#define PAYLOAD_HEADER 5
/* A log's first bytes (aof.h): read as version 1, they are a whole record
 * of 5 bytes with op 0, which no version 1 log holds (no key is empty), and
 * which a node of version 1 refuses as corrupt, with records after it,
 * rather than cutting the log as torn. */
#define MAGIC_LEN 13
static const char magic[MAGIC_LEN] = {0, 0, 0, 5, 'g', 'c', 'n', 'l', 0, 'o', 'g', 'v', 2};
#define MAGIC_DAMAGED 9 /* of its bytes in place, and not all: a damaged magic */
#define MAX_RECORD (1u << 31)
#define SCAN_WINDOW ((size_t)256 << 20) /* how far past a bad record a good one is looked for */
#define SCAN_BUDGET ((uint64_t)16 << 20) /* checksummed bytes allowed beyond 4x that far */

/* The version of the log whose first bytes are head[0 .. len), len at
 * most MAGIC_LEN: 2 when they are its magic, or a part of it the size of
 * the file (a magic whose write was torn: the log is empty; so is an empty
 * file); 1 for a log of records only, written before version 2 (its first
 * record differs from the magic in most bytes: its length is 6 or more,
 * its op 1 or 2, its key length's top bytes 0); 0 for a damaged magic
 * (MAGIC_DAMAGED of its bytes in place, not all), refused rather than read
 * as version 1 and cut as torn. */
static int version_of(const char *head, size_t len)
{
    size_t same = 0;
    for (size_t i = 0; i < len; i++)
        same += head[i] == magic[i];
    if (same == len)
        return 2;
    return len == MAGIC_LEN && same >= MAGIC_DAMAGED ? 0 : 1;
}

/* A log opened for appending: one holding nothing yet (new, empty, or
 * its magic's write torn) starts with the magic; one of version 1 goes on
 * in version 1. *st is brought up to date. 0, or -1 with errno. */
static int begin(aof *a, const char *path, struct stat *st)
{
    char head[MAGIC_LEN];
    ssize_t got = 0;
    if (st->st_size > 0) {
        int rfd = open(path, O_RDONLY | O_CLOEXEC);
        got = rfd < 0 ? -1 : pread(rfd, head, sizeof head, 0);
        if (rfd >= 0)
            close(rfd);
        if (got < 0)
            return -1;
    }
    a->version = version_of(head, (size_t)got);
    if (a->version == 1 || st->st_size >= MAGIC_LEN)
        return a->version ? 0 : (errno = EINVAL, -1);
    /* Synced at once: a log followed by another must be whole on disk
     * (only the newest may end torn), and one holding only its magic, say
     * between two compactions with no change between, is never synced by
     * a flush. */
    if ((st->st_size > 0 && ftruncate(a->fd, 0) < 0) || write(a->fd, magic, MAGIC_LEN) != MAGIC_LEN ||
        fdatasync(a->fd) < 0)
        return -1;
    st->st_size = MAGIC_LEN;
    return 0;
}

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
                       : begin(a, path, &st) < 0 ? "start"
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
    if (!a->path) {
        snprintf(err, errlen, "cannot open %s: out of memory", path);
        close(a->fd);
        a->fd = -1;
        return -1;
    }
    return 0;
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
    size_t header = a->version == 1 ? RECORD_HEADER : RECORD_HEADER_2;
    if (payload > MAX_RECORD || buffer_reserve(&a->pending, header + payload) < 0)
        return -1;
    char *p = buffer_tail(&a->pending), *body = p + header;
    put_u32(p, (uint32_t)payload);
    body[0] = (char)op;
    put_u32(body + 1, (uint32_t)key.len);
    memcpy(body + PAYLOAD_HEADER, key.ptr, key.len);
    if (value.len)
        memcpy(body + PAYLOAD_HEADER + key.len, value.ptr, value.len);
    put_u32(p + 4, crc32c(0, body, payload));
    if (header == RECORD_HEADER_2)
        put_u32(p + 8, crc32c(0, p, 8));
    a->pending.end += header + payload;
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

/* A record of a log of version `version` at buf[at .. len), read: its
 * header and payload within the file (*whole), checking (*good), and its
 * payload's length. In version 2 the header checks on its own
 * (*header_ok): its length can then be trusted even when its payload
 * does not check or runs past the end of the file. */
struct record {
    size_t header, payload;
    int header_ok, whole, good;
};

static struct record read_record(const char *buf, size_t len, size_t at, int version)
{
    struct record r = {version == 1 ? RECORD_HEADER : RECORD_HEADER_2, 0, 0, 0, 0};
    const char *p = buf + at;
    size_t left = len - at;
    if (left < r.header)
        return r;
    r.payload = get_u32(p);
    r.header_ok = version == 1 || crc32c(0, p, 8) == get_u32(p + 8);
    if (r.payload < PAYLOAD_HEADER || r.payload > MAX_RECORD)
        r.header_ok = 0;
    r.whole = r.header_ok && r.payload <= left - r.header;
    if (!r.whole)
        return r;
    const char *body = p + r.header;
    r.good = (body[0] == AOF_PUT || body[0] == AOF_DELETE) && get_u32(body + 1) <= r.payload - PAYLOAD_HEADER;
    return r;
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
 * tails are short and rarely hold a candidate, and stay far inside it. In
 * version 2 a candidate's header must check first: only a record whose own
 * header was damaged is searched past (a bad payload under a good header
 * is searched past from its end, and never when it runs to the end). */
static int later_record(const char *buf, size_t len, size_t from, int version, uint64_t *checked)
{
    size_t end = len - from > SCAN_WINDOW ? from + SCAN_WINDOW : len;
    uint64_t budget = 4 * (uint64_t)(end - from) + SCAN_BUDGET, spent = 0;
    for (size_t q = from; q < end; q++) {
        struct record r = read_record(buf, len, q, version);
        if (!r.whole || !r.good)
            continue;
        if ((spent += r.payload) > budget)
            return 1;
        *checked += r.payload;
        if (crc32c(0, buf + q + r.header, r.payload) == get_u32(buf + q + 4))
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
    int version = version_of(buf, len < MAGIC_LEN ? len : MAGIC_LEN);
    if (version == 0) {
        snprintf(err, errlen, "%s: its first bytes, the log's format mark, are damaged; refusing "
                 "to start", path);
        records = -1;
    } else if (version == 2) {
        at = len < MAGIC_LEN ? len : MAGIC_LEN; /* a torn magic: an empty log, begun again at open */
    }
    while (records >= 0 && at < len) {
        struct record r = read_record(buf, len, at, version);
        if (r.whole)
            *checked += r.payload;
        int good = r.good && crc32c(0, buf + at + r.header, r.payload) == get_u32(buf + at + 4);
        if (!good) {
            /* Torn: the file ends inside the record, or with it, and no
             * record checks after it. A header that checks tells where the
             * record ends, so only what follows that is searched. */
            size_t end = at + r.header + r.payload;
            int tail;
            if (r.header_ok && version == 2)
                tail = end >= len || !later_record(buf, len, end, version, checked);
            else
                tail = (!r.whole || end == len) && !later_record(buf, len, at + 1, version, checked);
            /* Read as version 1, a log of version 2 whose magic lost more
             * bytes than MAGIC_DAMAGED tells has no first record that
             * checks: a record of version 2 that does, after it, is the
             * proof, and the log is refused, not cut whole. (Past the
             * first record a log is what its first bytes say: a torn tail
             * of version 1 whose value holds records of version 2 is cut.) */
            if (version == 1 && at == 0 && tail && later_record(buf, len, at, 2, checked)) {
                snprintf(err, errlen, "%s: its first bytes, the log's format mark, are damaged (records "
                         "of version 2 follow); refusing to start", path);
                records = -1;
                break;
            }
            if (last && tail) {
                log_warning("%s: cutting off a torn last record at offset %zu (%zu bytes): "
                            "a crash interrupted its write", path, at, len - at);
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
        const char *body = buf + at + r.header;
        size_t klen = get_u32(body + 1);
        term_view key = {body + PAYLOAD_HEADER, klen};
        term_view value = {body + PAYLOAD_HEADER + klen, r.payload - PAYLOAD_HEADER - klen};
        if (fn(ctx, (enum aof_op)body[0], key, value) < 0) {
            snprintf(err, errlen, "%s: cannot apply the record at offset %zu (out of memory?)", path, at);
            records = -1;
            break;
        }
        records++;
        at += r.header + r.payload;
    }
    if (len)
        munmap(buf, len);
    return records;
}

/* snapshot.c: writing and reading a store's snapshot; see snapshot.h. */
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buffer.h"
#include "crc32c.h"
#include "folder.h"
#include "log.h"
#include "term.h"

#define MAGIC "GCNSNAP1"
#define HEADER 24

typedef struct writer {
    FILE *f;
    uint32_t crc;
    int failed;
} writer;

int snapshot_generation(const char *path, uint64_t *generation)
{
    char head[16];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, head, sizeof head);
    close(fd);
    if (n != (ssize_t)sizeof head || memcmp(head, MAGIC, 8) != 0)
        return -1;
    *generation = get_u64(head + 8);
    return 0;
}

static void put(writer *w, const void *p, size_t n)
{
    if (n && fwrite(p, 1, n, w->f) != n)
        w->failed = 1;
    w->crc = crc32c(w->crc, p, n);
}

static void put64(writer *w, uint64_t v)
{
    char b[8];
    put_u32(b, (uint32_t)(v >> 32));
    put_u32(b + 4, (uint32_t)v);
    put(w, b, 8);
}

int snapshot_write(const char *path, uint64_t generation, const store *s, char *err, size_t errlen)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    writer w = {fopen(tmp, "wbe"), 0, 0};
    if (!w.f) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    setvbuf(w.f, NULL, _IOFBF, 1 << 20);
    put(&w, MAGIC, 8);
    put64(&w, generation);
    put64(&w, store_size(s));
    store_iter it;
    term_view k, v;
    store_iter_init(&it);
    while (!w.failed && store_next(s, &it, &k, &v)) {
        char lens[8];
        put_u32(lens, (uint32_t)k.len);
        put_u32(lens + 4, (uint32_t)v.len);
        put(&w, lens, 8);
        put(&w, k.ptr, k.len);
        put(&w, v.ptr, v.len);
    }
    char crc[4];
    put_u32(crc, w.crc);
    if (fwrite(crc, 1, 4, w.f) != 4)
        w.failed = 1;
    if (fflush(w.f) != 0 || fsync(fileno(w.f)) != 0)
        w.failed = 1;
    int e = errno;
    if (fclose(w.f) != 0)
        w.failed = 1;
    if (w.failed || rename(tmp, path) != 0 || folder_sync(path) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(w.failed ? e : errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int snapshot_read(const char *path, store *s, uint64_t *generation, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 1;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t len = (size_t)st.st_size;
    char *p = len >= HEADER + 4 ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "%s: not a snapshot (too short or unreadable)", path);
        return -1;
    }
    int rc = -1;
    if (memcmp(p, MAGIC, 8) != 0 || crc32c(0, p, len - 4) != get_u32(p + len - 4)) {
        snprintf(err, errlen, "%s: corrupt snapshot (bad magic or checksum); refusing to start", path);
        goto done;
    }
    *generation = get_u64(p + 8);
    uint64_t n = get_u64(p + 16);
    size_t at = HEADER, end = len - 4;
    uint64_t merged = 0; /* keys an older rule kept apart (term_key_today) */
    for (uint64_t i = 0; i < n; i++) {
        if (end - at < 8)
            break;
        size_t kl = get_u32(p + at), vl = get_u32(p + at + 4);
        if (kl > end - at - 8 || vl > end - at - 8 - kl)
            break;
        term_view key = {p + at + 8, kl};
        ei_x_buff today;
        int redone = term_key_today(&key, &today);
        size_t before = store_size(s);
        int rc = store_put(s, key, (term_view){p + at + 8 + kl, vl});
        merged += redone && rc == 0 && store_size(s) == before; /* remade onto a key read before */
        if (redone)
            ei_x_free(&today);
        if (rc < 0) {
            snprintf(err, errlen, "%s: out of memory loading entry %llu", path, (unsigned long long)i);
            goto done;
        }
        at += 8 + kl + vl;
    }
    if (merged)
        log_warning("%s: %llu keys holding funs, kept apart by an older release though =:= (made by "
                    "other processes or nodes), are one key each now; of each, the one read last is kept",
                    path, (unsigned long long)merged);
    if (at != end || store_size(s) + merged != n)
        snprintf(err, errlen, "%s: entries do not add up; refusing to start", path);
    else
        rc = 0;
done:
    munmap(p, len);
    return rc;
}

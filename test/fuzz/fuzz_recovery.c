/*
 * fuzz_recovery.c: recovery of a durable store (durable.c, aof.c,
 * snapshot.c) from arbitrary files. The input describes a folder:
 *   [u8 flags] then chunks [u8 file][u16 length][bytes]
 *   file 0: kv.snap; file 1..8: kv.log.<file> (a repeated file is appended to)
 *   flags bit 0: make the snapshot's checksum right;
 *   flags bit 1: make every whole-looking log record's checksums right
 *                (either version of aof.h),
 * so that the fuzzer reaches what lies behind the checksums. Opening may
 * refuse (a clear error is fine); when it succeeds, the store must survive
 * a write and a reopen: everything recovered plus the new key, nothing
 * else, and the second opening must recover the same way.
 * Files go to a folder of this process under /dev/shm (or /tmp).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buffer.h"
#include "crc32c.h"
#include "durable.h"
#include "log.h"
#include "siphash.h"

static char dir[128];
static const unsigned char seed[16] = {1, 2, 3};

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_recovery: %s\n", what);
    abort();
}

static void clear_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level(LOG_ERROR);
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/gen_cnode_fuzz_recovery.%d", base, (int)getpid());
    mkdir(dir, 0700);
    return 0;
}

/* An order-free digest of a store: the number of entries and the sum of the
 * hashes of each key and value. */
typedef struct digest {
    size_t entries;
    uint64_t sum;
} digest;

static digest digest_of(store *s)
{
    digest d = {store_size(s), 0};
    store_iter it;
    term_view k, v;
    store_iter_init(&it);
    while (store_next(s, &it, &k, &v))
        d.sum += siphash(seed, k.ptr, k.len) * 31 + siphash(seed, v.ptr, v.len);
    return d;
}

/* The bytes of each file, then the checksums fixed as the flags say. */
typedef struct file {
    unsigned char *bytes;
    size_t len;
} file;

/* Both versions of aof.h: version 2 after its magic, with the header's own
 * checksum, version 1 without either. */
static void fix_log(file *f)
{
    static const unsigned char magic[13] = {0, 0, 0, 5, 'g', 'c', 'n', 'l', 0, 'o', 'g', 'v', 2};
    int v2 = f->len >= sizeof magic && memcmp(f->bytes, magic, sizeof magic) == 0;
    size_t at = v2 ? sizeof magic : 0, header = v2 ? 12 : 8;
    while (at + header + 5 <= f->len) {
        char *p = (char *)f->bytes + at;
        uint32_t payload = get_u32(p);
        if (payload < 5 || payload > f->len - at - header)
            break;
        put_u32(p + 4, crc32c(0, p + header, payload));
        if (v2)
            put_u32(p + 8, crc32c(0, p, 8));
        at += header + payload;
    }
}

static void fix_snapshot(file *f)
{
    if (f->len >= 28)
        put_u32((char *)f->bytes + f->len - 4, crc32c(0, f->bytes, f->len - 4));
}

static durable *open_store(store **s, char *err, size_t errlen)
{
    *s = store_create(seed);
    durable *d = durable_open(dir, "kv", FSYNC_NO, UINT64_MAX, *s, err, errlen);
    if (!d) {
        store_destroy(*s);
        *s = NULL;
    }
    return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    file files[9] = {{0}};
    if (size < 1)
        return 0;
    unsigned flags = data[0];
    size_t at = 1;
    while (at + 3 <= size) {
        unsigned which = data[at] % 9;
        size_t len = (size_t)data[at + 1] << 8 | data[at + 2];
        at += 3;
        if (len > size - at)
            len = size - at;
        unsigned char *grown = realloc(files[which].bytes, files[which].len + len + 1);
        if (!grown)
            break;
        memcpy(grown + files[which].len, data + at, len);
        files[which].bytes = grown;
        files[which].len += len;
        at += len;
    }
    if (flags & 1)
        fix_snapshot(&files[0]);
    clear_dir();
    for (unsigned k = 0; k < 9; k++) {
        if (!files[k].bytes)
            continue;
        if (k > 0 && (flags & 2))
            fix_log(&files[k]);
        char path[512];
        if (k == 0)
            snprintf(path, sizeof path, "%s/kv.snap", dir);
        else
            snprintf(path, sizeof path, "%s/kv.log.%u", dir, k);
        FILE *f = fopen(path, "wb");
        if (!f)
            fail("cannot write the input's files");
        if (files[k].len && fwrite(files[k].bytes, 1, files[k].len, f) != files[k].len)
            fail("cannot write the input's files");
        fclose(f);
        free(files[k].bytes);
    }
    char err[1024];
    store *s;
    durable *d = open_store(&s, err, sizeof err);
    if (!d) {
        if (!err[0])
            fail("refused without saying why");
        return 0;
    }
    /* A write after recovery must be there after a reopen, with the rest. */
    static const char key[] = {119, 6, 'f', 'u', 'z', 'z', 'e', 'd'}, value[] = {97, 42};
    term_view k = {key, sizeof key}, v = {value, sizeof value};
    if (store_put(s, k, v) < 0 || durable_put(d, k, v) < 0)
        fail("out of memory");
    digest before = digest_of(s);
    int pending;
    if (durable_flush(d, 1, &pending, err, sizeof err) < 0)
        fail(err);
    durable_close(d);
    store_destroy(s);
    d = open_store(&s, err, sizeof err);
    if (!d) {
        fprintf(stderr, "fuzz_recovery: reopening: %s\n", err);
        fail("a store that opened does not open again after a write");
    }
    digest after = digest_of(s);
    if (after.entries != before.entries || after.sum != before.sum)
        fail("the reopened store differs from what was recovered and written");
    durable_close(d);
    store_destroy(s);
    return 0;
}

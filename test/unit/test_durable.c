/* test_durable.c: CRC-32C, the append-only log (round trip, torn tails cut,
 * corruption refused), snapshots, and recovery and compaction of a durable
 * store in a scratch folder. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aof.h"
#include "crc32c.h"
#include "durable.h"
#include "snapshot.h"
#include "term.h"
#include "unit.h"

static char dir[64];
static uint64_t checked; /* bytes aof_replay checksummed */
static const unsigned char seed[16] = {9};

static int setup(void)
{
    strcpy(dir, "/tmp/gen_cnode_unit_XXXXXX");
    return mkdtemp(dir) ? 0 : 1;
}

static int teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}

static term_view v(const char *s) { return (term_view){s, strlen(s)}; }

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

typedef struct seen {
    int n;
    char ops[64];
    char keys[64][16];
} seen;

static int record(void *ctx, enum aof_op op, term_view key, term_view value)
{
    (void)value;
    seen *s = ctx;
    s->ops[s->n] = (char)op;
    snprintf(s->keys[s->n], sizeof s->keys[0], "%.*s", (int)key.len, key.ptr);
    s->n++;
    return 0;
}

#define MAGIC_LEN 13     /* a log's magic (aof.h) */
#define RECORD_HEADER 12 /* a record's header, version 2 */

static void test_crc32c_check_value(void)
{
    CU_ASSERT_EQUAL(crc32c(0, "123456789", 9), 0xE3069283u); /* the standard check value */
    CU_ASSERT_EQUAL(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
}

/* A log of three records: put a, put b, delete a. Returns the path. */
static const char *three_records(const char *name)
{
    static char path[128];
    char err[256];
    aof a;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
    CU_ASSERT_FATAL(aof_open(&a, path, err, sizeof err) == 0);
    aof_append(&a, AOF_PUT, v("a"), v("value of a"));
    aof_append(&a, AOF_PUT, v("b"), v("value of b"));
    aof_append(&a, AOF_DELETE, v("a"), v(""));
    CU_ASSERT(aof_write(&a, err, sizeof err) == 0);
    CU_ASSERT(aof_sync(&a, err, sizeof err) == 0);
    aof_close(&a);
    return path;
}

static void test_log_round_trip(void)
{
    char err[256];
    seen s = {0};
    const char *path = three_records("round.log");
    CU_ASSERT_EQUAL(aof_replay(path, 1, record, &s, &checked, err, sizeof err), 3);
    CU_ASSERT(s.ops[0] == AOF_PUT && strcmp(s.keys[0], "a") == 0);
    CU_ASSERT(s.ops[1] == AOF_PUT && strcmp(s.keys[1], "b") == 0);
    CU_ASSERT(s.ops[2] == AOF_DELETE && strcmp(s.keys[2], "a") == 0);
}

static void test_torn_tail_is_cut_at_every_point(void)
{
    char err[256], cmd[300];
    const char *path = three_records("torn.log");
    long full = file_size(path), last_start = full - (RECORD_HEADER + 5 + 1); /* the delete record */
    snprintf(cmd, sizeof cmd, "cp '%s' '%s.orig'", path, path);
    CU_ASSERT_FATAL(system(cmd) == 0);
    for (long cut = last_start + 1; cut < full; cut++) {
        snprintf(cmd, sizeof cmd, "cp '%s.orig' '%s'", path, path);
        CU_ASSERT_FATAL(system(cmd) == 0);
        CU_ASSERT_FATAL(truncate(path, cut) == 0);
        seen s = {0};
        CU_ASSERT_EQUAL(aof_replay(path, 1, record, &s, &checked, err, sizeof err), 2);
        CU_ASSERT_EQUAL(file_size(path), last_start); /* cut back to the last whole record */
    }
    /* a torn record in a log that is not the newest is corruption */
    snprintf(cmd, sizeof cmd, "cp '%s.orig' '%s'", path, path);
    CU_ASSERT_FATAL(system(cmd) == 0);
    CU_ASSERT_FATAL(truncate(path, full - 2) == 0);
    seen s = {0};
    CU_ASSERT_EQUAL(aof_replay(path, 0, record, &s, &checked, err, sizeof err), -1);
    CU_ASSERT_EQUAL(file_size(path), full - 2);
}

static void test_corrupt_middle_is_refused_with_offset(void)
{
    char err[256];
    const char *path = three_records("corrupt.log");
    long full = file_size(path);
    FILE *f = fopen(path, "r+b");
    CU_ASSERT_FATAL(f != NULL);
    fseek(f, MAGIC_LEN + RECORD_HEADER + 7, SEEK_SET); /* inside the first record's value */
    fputc('X', f);
    fclose(f);
    seen s = {0};
    CU_ASSERT_EQUAL(aof_replay(path, 1, record, &s, &checked, err, sizeof err), -1);
    CU_ASSERT_EQUAL(s.n, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "offset 13 "));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "corrupt.log"));
    CU_ASSERT_EQUAL(file_size(path), full); /* untouched */
}

static void test_damaged_length_is_not_a_torn_tail(void)
{
    char err[256];
    const char *path = three_records("length.log");
    long full = file_size(path);
    FILE *f = fopen(path, "r+b");
    CU_ASSERT_FATAL(f != NULL);
    fseek(f, MAGIC_LEN, SEEK_SET);
    fputc(0x40, f); /* the first record now claims a gigabyte: past the end, like a torn one */
    fclose(f);
    seen s = {0};
    CU_ASSERT_EQUAL(aof_replay(path, 1, record, &s, &checked, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "offset 13 "));
    CU_ASSERT_EQUAL(file_size(path), full); /* whole records follow it: nothing is cut */
}

static void write_file(const char *sub, const char *file, const void *bytes, size_t len);
static durable *try_open(const char *sub, store **s, char *err, size_t errlen);

/* Records of version 1 (aof.h), as a node before version 2 wrote them. */
static size_t v1_record(char *at, enum aof_op op, const char *key, const char *value)
{
    size_t klen = strlen(key), vlen = strlen(value), payload = 5 + klen + vlen;
    put_u32(at, (uint32_t)payload);
    at[8] = (char)op;
    put_u32(at + 9, (uint32_t)klen);
    memcpy(at + 13, key, klen);
    memcpy(at + 13 + klen, value, vlen);
    put_u32(at + 4, crc32c(0, at + 8, payload));
    return 8 + payload;
}

/* A log of version 1 (no magic) is read, and goes on in version 1: what is
 * appended after it is read back with it. */
static void test_a_log_of_version_1_is_read_and_continued(void)
{
    char bytes[256], err[256], path[128];
    size_t len = v1_record(bytes, AOF_PUT, "a", "one");
    len += v1_record(bytes + len, AOF_PUT, "b", "two");
    write_file("v1", "v1.log", bytes, len);
    snprintf(path, sizeof path, "%s/v1/v1.log", dir);
    seen s = {0};
    CU_ASSERT_EQUAL(aof_replay(path, 1, record, &s, &checked, err, sizeof err), 2);
    aof a;
    CU_ASSERT_FATAL(aof_open(&a, path, err, sizeof err) == 0);
    CU_ASSERT_EQUAL(a.version, 1);
    aof_append(&a, AOF_DELETE, v("a"), v(""));
    CU_ASSERT_EQUAL(aof_write(&a, err, sizeof err), 0);
    aof_close(&a);
    CU_ASSERT_EQUAL(file_size(path), (long)len + 8 + 5 + 1);
    seen t = {0};
    CU_ASSERT_EQUAL(aof_replay(path, 1, record, &t, &checked, err, sizeof err), 3);
    CU_ASSERT(t.ops[2] == AOF_DELETE && strcmp(t.keys[2], "a") == 0);
    /* a torn one is cut as ever */
    CU_ASSERT_FATAL(truncate(path, (long)len + 8 + 3) == 0);
    seen u = {0};
    CU_ASSERT_EQUAL(aof_replay(path, 1, record, &u, &checked, err, sizeof err), 2);
    CU_ASSERT_EQUAL(file_size(path), (long)len);
}

/* A torn last record whose value is itself a log (records that check,
 * inside it) is cut: its header checks, so it is known to run past the end
 * of the file, and what its payload holds is never taken for later
 * records. Version 1 refused to start there. The same for a tail of zeros
 * (pages a crash left unwritten) after a record, and for a torn magic. */
static void test_a_torn_record_holding_records_is_cut(void)
{
    char err[256], path[128];
    const char *inner = three_records("inner.log");
    long inner_len = file_size(inner);
    static char value[4096];
    FILE *f = fopen(inner, "rb");
    CU_ASSERT_FATAL(f != NULL && inner_len > 0 && inner_len < (long)sizeof value);
    CU_ASSERT_FATAL(fread(value, 1, (size_t)inner_len, f) == (size_t)inner_len);
    fclose(f);
    snprintf(path, sizeof path, "%s/holding.log", dir);
    unlink(path);
    aof a;
    CU_ASSERT_FATAL(aof_open(&a, path, err, sizeof err) == 0);
    aof_append(&a, AOF_PUT, v("first"), v("1"));
    long first_end = MAGIC_LEN + RECORD_HEADER + 5 + 5 + 1;
    aof_append(&a, AOF_PUT, v("a log"), (term_view){value, (size_t)inner_len});
    CU_ASSERT_FATAL(aof_write(&a, err, sizeof err) == 0);
    aof_close(&a);
    long full = file_size(path);
    CU_ASSERT_FATAL(truncate(path, full - 1) == 0); /* torn after the value's last record */
    seen s = {0};
    CU_ASSERT_EQUAL(aof_replay(path, 1, record, &s, &checked, err, sizeof err), 1);
    CU_ASSERT_EQUAL(file_size(path), first_end);
    /* zeros where the rest of a batch should be */
    static const char zeros[300];
    f = fopen(path, "ab");
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT(fwrite(zeros, 1, sizeof zeros, f) == sizeof zeros);
    fclose(f);
    seen t = {0};
    CU_ASSERT_EQUAL(aof_replay(path, 1, record, &t, &checked, err, sizeof err), 1);
    CU_ASSERT_EQUAL(file_size(path), first_end);
    /* a damaged magic is refused, not read as version 1 and cut */
    f = fopen(path, "r+b");
    CU_ASSERT_FATAL(f != NULL);
    fputc(0x80, f);
    fclose(f);
    seen u = {0};
    CU_ASSERT_EQUAL(aof_replay(path, 1, record, &u, &checked, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "damaged"));
    CU_ASSERT_EQUAL(file_size(path), first_end);
    /* a log whose magic's write was torn is empty, and begun again */
    static const char torn_magic[] = {0, 0, 0, 5, 'g'};
    write_file("torn_magic", "kv.log.1", torn_magic, sizeof torn_magic);
    store *st;
    durable *d = try_open("torn_magic", &st, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(store_size(st), 0);
    CU_ASSERT_EQUAL(durable_put(d, v("k"), v("v")), 0);
    durable_close(d);
    store_destroy(st);
    d = try_open("torn_magic", &st, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(store_size(st), 1);
    durable_close(d);
    store_destroy(st);
}

/* A magic however damaged (its first k bytes overwritten, for every k up to
 * a whole first record) is refused, the file untouched: the records of
 * version 2 after it prove the log was no torn record of version 1. The
 * old code took more than 4 damaged bytes for version 1 and cut the log
 * to nothing. A log holding nothing that checks is still cut. */
static void test_a_magic_damaged_in_many_bytes_is_refused(void)
{
    char err[256], path[128];
    snprintf(path, sizeof path, "%s/damaged_magic.log", dir);
    static char original[1024];
    unlink(path);
    aof a;
    CU_ASSERT_FATAL(aof_open(&a, path, err, sizeof err) == 0);
    for (int i = 0; i < 20; i++)
        aof_append(&a, AOF_PUT, v("key"), v("a value"));
    CU_ASSERT_FATAL(aof_write(&a, err, sizeof err) == 0);
    aof_close(&a);
    long full = file_size(path);
    CU_ASSERT_FATAL(full > 0 && full < (long)sizeof original);
    FILE *f = fopen(path, "rb");
    CU_ASSERT_FATAL(f != NULL && fread(original, 1, (size_t)full, f) == (size_t)full);
    fclose(f);
    long first_end = MAGIC_LEN + 12 + 5 + 3 + 7;
    for (int fill = 0; fill < 2; fill++)
        for (long k = 1; k <= first_end; k++) {
            int changed = 0;
            f = fopen(path, "wb");
            CU_ASSERT_FATAL(f != NULL);
            for (long i = 0; i < full; i++) {
                int c = i < k ? (fill ? 0xff : 0) : (unsigned char)original[i];
                changed |= c != (unsigned char)original[i];
                fputc(c, f);
            }
            fclose(f);
            seen s = {0};
            long r = aof_replay(path, 1, record, &s, &checked, err, sizeof err);
            CU_ASSERT_EQUAL(r, changed ? -1 : 20); /* (the magic begins with zeros) */
            if (changed)
                CU_ASSERT_PTR_NOT_NULL(strstr(err, "damaged"));
            CU_ASSERT_EQUAL(file_size(path), full);
        }
    /* nothing that checks, of either version: cut as torn */
    f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    for (long i = 0; i < full; i++)
        fputc(0xff, f);
    fclose(f);
    seen s = {0};
    CU_ASSERT_EQUAL(aof_replay(path, 1, record, &s, &checked, err, sizeof err), 0);
    CU_ASSERT_EQUAL(file_size(path), 0);
}

/* A disk that fills up, played by a file size limit: the failed write is cut
 * back to the last whole record, the batch kept, and written once there is room. */
/* ftruncate, wrapped (--wrap=ftruncate): fails while fail_truncates > 0. */
int __real_ftruncate(int fd, off_t length);
int __wrap_ftruncate(int fd, off_t length);
static int fail_truncates;

int __wrap_ftruncate(int fd, off_t length)
{
    if (fail_truncates > 0) {
        fail_truncates--;
        errno = EIO;
        return -1;
    }
    return __real_ftruncate(fd, length);
}

/* A log at dir/name holding one record of 3,000 bytes (*whole bytes), the
 * file size then limited to 4,096 bytes (*old: the limit to put back), and
 * a second record appended, which the next write has no room for. */
static void full_disk_setup(aof *a, char *path, size_t pathlen, const char *name, long *whole,
                            struct rlimit *old)
{
    char err[256], big[3000];
    struct rlimit small = {4096, 4096};
    memset(big, 'x', sizeof big);
    snprintf(path, pathlen, "%s/%s", dir, name);
    CU_ASSERT_FATAL(aof_open(a, path, err, sizeof err) == 0);
    aof_append(a, AOF_PUT, v("first"), (term_view){big, sizeof big});
    CU_ASSERT_FATAL(aof_write(a, err, sizeof err) == 0);
    *whole = file_size(path);
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, old);
    small.rlim_max = old->rlim_max;
    CU_ASSERT_FATAL(setrlimit(RLIMIT_FSIZE, &small) == 0);
    aof_append(a, AOF_PUT, v("second"), (term_view){big, sizeof big});
}

/* A failed write whose half record cannot be cut off: nothing is appended
 * after it until it is; then the log is whole. */
static void test_a_half_record_not_cut_off_is_never_written_after(void)
{
    char path[128], err[256];
    aof a;
    struct rlimit old;
    long whole;
    full_disk_setup(&a, path, sizeof path, "uncut.log", &whole, &old);
    fail_truncates = 1;
    CU_ASSERT_EQUAL(aof_write(&a, err, sizeof err), -1); /* no room, and the cut fails */
    CU_ASSERT(file_size(path) > whole);                  /* a half record is left */
    setrlimit(RLIMIT_FSIZE, &old);
    fail_truncates = 1;
    CU_ASSERT_EQUAL(aof_write(&a, err, sizeof err), -1); /* room, but the half record stays */
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot cut"));
    CU_ASSERT(file_size(path) > whole && file_size(path) <= 4096);
    CU_ASSERT_EQUAL(aof_write(&a, err, sizeof err), 0);  /* cut, then written */
    aof_close(&a);
    seen s = {0};
    CU_ASSERT_EQUAL(aof_replay(path, 0, record, &s, &checked, err, sizeof err), 2); /* whole: no tail to cut */
    CU_ASSERT(strcmp(s.keys[1], "second") == 0);
}

static void test_full_disk_keeps_earlier_records_and_retries(void)
{
    char path[128], err[256];
    aof a;
    struct rlimit old;
    long whole;
    full_disk_setup(&a, path, sizeof path, "full.log", &whole, &old);
    CU_ASSERT_EQUAL(aof_write(&a, err, sizeof err), -1); /* no room */
    CU_ASSERT_EQUAL(file_size(path), whole);             /* cut back: no half record */
    CU_ASSERT(aof_pending(&a) > 0);                      /* kept for the next try */
    setrlimit(RLIMIT_FSIZE, &old);
    CU_ASSERT_EQUAL(aof_write(&a, err, sizeof err), 0);  /* room again */
    aof_close(&a);
    seen s = {0};
    CU_ASSERT_EQUAL(aof_replay(path, 1, record, &s, &checked, err, sizeof err), 2);
    CU_ASSERT(strcmp(s.keys[1], "second") == 0);
}

static void test_snapshot_round_trip_and_corruption(void)
{
    char path[128], err[256];
    store *s = store_create(seed), *back = store_create(seed);
    char k[16], val[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof k, "k%d", i);
        snprintf(val, sizeof val, "v%d", i * 7);
        store_put(s, v(k), v(val));
    }
    snprintf(path, sizeof path, "%s/t.snap", dir);
    CU_ASSERT_FATAL(snapshot_write(path, 42, s, err, sizeof err) == 0);
    uint64_t gen = 0;
    CU_ASSERT_EQUAL(snapshot_read(path, back, &gen, err, sizeof err), 0);
    CU_ASSERT_EQUAL(gen, 42);
    CU_ASSERT_EQUAL(store_size(back), 1000);
    term_view got;
    CU_ASSERT(store_get(back, v("k999"), &got) && got.len == 5 && memcmp(got.ptr, "v6993", 5) == 0);
    store_destroy(back);
    back = store_create(seed);
    FILE *f = fopen(path, "r+b");
    fseek(f, 100, SEEK_SET);
    fputc('#', f);
    fclose(f);
    CU_ASSERT_EQUAL(snapshot_read(path, back, &gen, err, sizeof err), -1);
    snprintf(path, sizeof path, "%s/none.snap", dir);
    CU_ASSERT_EQUAL(snapshot_read(path, back, &gen, err, sizeof err), 1);
    store_destroy(s);
    store_destroy(back);
}

static durable *open_store_as(const char *sub, store **s, fsync_policy policy)
{
    char path[128], err[512];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    *s = store_create(seed);
    durable *d = durable_open(path, "kv", policy, 1u << 30, *s, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    return d;
}

static durable *open_store(const char *sub, store **s) { return open_store_as(sub, s, FSYNC_ALWAYS); }

/* key = value, in the store and in its log, synced. */
static void put_synced(store *s, durable *d, const char *key, const char *value)
{
    char err[512];
    int pending;
    store_put(s, v(key), v(value));
    durable_put(d, v(key), v(value));
    CU_ASSERT_EQUAL(durable_flush(d, 1, &pending, err, sizeof err), DURABLE_OK);
}

static void flush_until_idle(durable *d)
{
    char err[256];
    int pending = 1;
    for (int i = 0; i < 2000 && pending; i++) {
        CU_ASSERT_EQUAL(durable_flush(d, 0, &pending, err, sizeof err), 0);
        if (pending)
            usleep(5000);
    }
    CU_ASSERT_FALSE(pending);
}

static void test_recovery_and_compaction(void)
{
    store *s;
    durable *d = open_store("db", &s);
    char k[16], err[256], path[128];
    for (int i = 0; i < 500; i++) {
        snprintf(k, sizeof k, "k%d", i);
        store_put(s, v(k), v("first"));
        durable_put(d, v(k), v("first"));
    }
    flush_until_idle(d);
    CU_ASSERT_EQUAL(durable_compact(d, err, sizeof err), 0);
    /* changes while the child writes the snapshot go to the next log */
    store_put(s, v("k1"), v("second"));
    durable_put(d, v("k1"), v("second"));
    store_delete(s, v("k2"));
    durable_delete(d, v("k2"));
    flush_until_idle(d);
    CU_ASSERT_EQUAL(durable_stats_of(d)->compactions, 1);
    durable_close(d);
    store_destroy(s);
    snprintf(path, sizeof path, "%s/db/kv.snap", dir);
    CU_ASSERT(file_size(path) > 0);
    snprintf(path, sizeof path, "%s/db/kv.log.1", dir);
    CU_ASSERT_EQUAL(file_size(path), -1); /* covered by the snapshot: gone */
    d = open_store("db", &s);
    term_view got;
    CU_ASSERT_EQUAL(store_size(s), 499);
    CU_ASSERT(store_get(s, v("k1"), &got) && got.len == 6 && memcmp(got.ptr, "second", 6) == 0);
    CU_ASSERT_FALSE(store_get(s, v("k2"), &got));
    CU_ASSERT(store_get(s, v("k499"), &got) && got.len == 5);
    durable_close(d);
    store_destroy(s);
}

/* fdatasync as the log calls it: the unit tests link with
 * -Wl,--wrap=fdatasync (Makefile), and it fails with EIO while fail_syncs
 * is above zero, as a failing disk makes it fail. While hold_syncs_ms is
 * set, it first waits, that many ms at most, as a slow disk does. Atomic:
 * everysec's syncs run on a thread of their own (bg_sync.h). */
int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);
static atomic_int fail_syncs, real_syncs, hold_syncs_ms, syncs_started;

int __wrap_fdatasync(int fd)
{
    atomic_fetch_add(&syncs_started, 1);
    for (int ms = atomic_load(&hold_syncs_ms); ms > 0 && atomic_load(&hold_syncs_ms); ms--)
        usleep(1000);
    int f = atomic_load(&fail_syncs);
    while (f > 0 && !atomic_compare_exchange_weak(&fail_syncs, &f, f - 1))
        ;
    if (f > 0) {
        errno = EIO;
        return -1;
    }
    real_syncs++;
    return __real_fdatasync(fd);
}

/* Flushes, forcing a sync, until one says ok (for at most ten seconds),
 * each after a change (of the key "probe": s gains one key). An ok must not
 * come before a compaction has replaced the log whose fsync failed
 * (retrying that fsync "succeeds" on pages the kernel dropped), nor without
 * a real fsync of what that flush wrote. */
static int flush_until_synced(durable *d, store *s)
{
    char err[512];
    int pending, rc = DURABLE_SYNC_FAILED;
    for (int i = 0; i < 2000 && rc != DURABLE_OK; i++) {
        int syncs = real_syncs;
        store_put(s, v("probe"), v("x"));
        durable_put(d, v("probe"), v("x"));
        rc = durable_flush(d, 1, &pending, err, sizeof err);
        if (rc == DURABLE_OK) {
            CU_ASSERT_EQUAL(durable_stats_of(d)->compactions, 1);
            CU_ASSERT(real_syncs > syncs);
        } else {
            CU_ASSERT_EQUAL(rc, DURABLE_SYNC_FAILED);
        }
        usleep(5000);
    }
    return rc;
}

static void assert_reopens_with(const char *sub, const char *const *keys, size_t n)
{
    store *s;
    durable *d = open_store(sub, &s);
    term_view got;
    CU_ASSERT_EQUAL(store_size(s), n);
    for (size_t i = 0; i < n; i++)
        CU_ASSERT(store_get(s, v(keys[i]), &got));
    durable_close(d);
    store_destroy(s);
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Under everysec, key = value is written and its sync is due. */
static void put_until_sync_due(store *s, durable *d, const char *key, const char *value)
{
    char err[512];
    int pending;
    store_put(s, v(key), v(value));
    durable_put(d, v(key), v(value));
    CU_ASSERT_EQUAL(durable_flush(d, 0, &pending, err, sizeof err), DURABLE_OK);
    long due = durable_sync_due_in(d);
    CU_ASSERT(pending && due > 0 && due <= 1001);
    usleep((useconds_t)due * 1000);
}

/* Under everysec the sync due each second runs on a thread of its own: a
 * flush does not wait for a slow disk (on the loop, every server of the
 * node waited); the sync's end is looked for soon (durable_sync_due_in)
 * and taken by a later flush. */
static void test_everysec_syncs_off_the_loop(void)
{
    store *s;
    durable *d = open_store_as("everysec_thread", &s, FSYNC_EVERYSEC);
    char err[512];
    int pending;
    put_until_sync_due(s, d, "a", "1");
    store_put(s, v("b"), v("2"));
    durable_put(d, v("b"), v("2"));
    int syncs = real_syncs, started = syncs_started;
    hold_syncs_ms = 2000;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CU_ASSERT_EQUAL(durable_flush(d, 0, &pending, err, sizeof err), DURABLE_OK);
    CU_ASSERT(ms_since(&t0) < 1000); /* the sync holds for 2 s */
    CU_ASSERT(pending);
    long due = durable_sync_due_in(d);
    CU_ASSERT(due > 0 && due <= 10);
    for (int i = 0; i < 1000 && syncs_started == started; i++)
        usleep(1000);
    CU_ASSERT_EQUAL(syncs_started, started + 1); /* on its way, on the thread */
    CU_ASSERT_EQUAL(durable_flush(d, 0, &pending, err, sizeof err), DURABLE_OK);
    CU_ASSERT(pending && real_syncs == syncs); /* still held: not taken for done */
    hold_syncs_ms = 0;
    flush_until_idle(d);
    CU_ASSERT_EQUAL(real_syncs, syncs + 1);
    durable_close(d);
    store_destroy(s);
    assert_reopens_with("everysec_thread", (const char *const[]){"a", "b"}, 2);
}

/* A sync of everysec's that fails on its thread is a failed fsync as any:
 * the log is not trusted again and a compaction replaces it. A forced sync
 * (put_sync, sync) that comes while it runs waits for it and takes its
 * failure, rather than syncing the same file itself: Linux tells a
 * writeback error once, and a second fsync could "succeed". */
static void test_an_everysec_sync_that_fails_on_its_thread(void)
{
    store *s;
    durable *d = open_store_as("everysec_fails", &s, FSYNC_EVERYSEC);
    char err[512];
    int pending;
    put_until_sync_due(s, d, "a", "1");
    fail_syncs = 1;
    hold_syncs_ms = 200;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    store_put(s, v("b"), v("2"));
    durable_put(d, v("b"), v("2"));
    CU_ASSERT_EQUAL(durable_flush(d, 0, &pending, err, sizeof err), DURABLE_OK);
    CU_ASSERT(ms_since(&t0) < 150);
    store_put(s, v("c"), v("3"));
    durable_put(d, v("c"), v("3"));
    CU_ASSERT_EQUAL(durable_flush(d, 1, &pending, err, sizeof err), DURABLE_SYNC_FAILED);
    CU_ASSERT(ms_since(&t0) >= 150); /* it waited for the sync in flight */
    CU_ASSERT_EQUAL(fail_syncs, 0);
    hold_syncs_ms = 0;
    CU_ASSERT_EQUAL(flush_until_synced(d, s), DURABLE_OK);
    durable_close(d);
    store_destroy(s);
    assert_reopens_with("everysec_fails", (const char *const[]){"a", "b", "c", "probe"}, 4);
}

static void test_a_failed_fsync_is_not_retried_but_replaced(void)
{
    store *s;
    durable *d = open_store("fsync_failed", &s);
    char err[512], path[160];
    int pending;
    put_synced(s, d, "a", "1");
    store_put(s, v("b"), v("2"));
    durable_put(d, v("b"), v("2"));
    fail_syncs = 1;
    CU_ASSERT_EQUAL(durable_flush(d, 1, &pending, err, sizeof err), DURABLE_SYNC_FAILED);
    CU_ASSERT(strstr(err, "Input/output error") != NULL);
    int syncs = real_syncs;
    store_put(s, v("c"), v("3"));
    durable_put(d, v("c"), v("3"));
    durable_flush(d, 0, &pending, err, sizeof err);
    CU_ASSERT(real_syncs > syncs); /* the new log is synced (--fsync always) while the repair runs */
    CU_ASSERT_EQUAL(flush_until_synced(d, s), DURABLE_OK);
    snprintf(path, sizeof path, "%s/fsync_failed/kv.log.1", dir);
    CU_ASSERT_EQUAL(file_size(path), -1); /* the log whose fsync failed is gone */
    durable_close(d);
    store_destroy(s);
    assert_reopens_with("fsync_failed", (const char *const[]){"a", "b", "c", "probe"}, 4);
}

/* A compaction's switch to a new log syncs the old one first; when that
 * fails the compaction itself is the repair, and until it is done no sync
 * is called done. When the snapshot cannot be written, the next attempt
 * waits (no fork per batch), and the one after the pause succeeds. */
static void test_a_failed_compaction_waits_and_syncs_wait_for_it(void)
{
    store *s;
    durable *d = open_store("compaction_failed", &s);
    char err[512], path[160];
    int pending;
    store_put(s, v("a"), v("1"));
    durable_put(d, v("a"), v("1"));
    snprintf(path, sizeof path, "%s/compaction_failed/kv.snap.tmp", dir);
    CU_ASSERT_FATAL(mkdir(path, 0755) == 0); /* the snapshot cannot be written */
    fail_syncs = 1;
    CU_ASSERT_EQUAL(durable_compact(d, err, sizeof err), 0);
    for (int i = 0; i < 1000 && durable_stats_of(d)->compaction_failures == 0; i++) {
        CU_ASSERT_EQUAL(durable_flush(d, 1, &pending, err, sizeof err), DURABLE_SYNC_FAILED);
        usleep(5000);
    }
    CU_ASSERT_EQUAL_FATAL(durable_stats_of(d)->compaction_failures, 1);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 60; i++) { /* 300 ms of batches: no second attempt yet */
        CU_ASSERT_EQUAL(durable_flush(d, 1, &pending, err, sizeof err), DURABLE_SYNC_FAILED);
        usleep(5000);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long elapsed_ms = (t1.tv_sec - t0.tv_sec) * 1000L + (t1.tv_nsec - t0.tv_nsec) / 1000000L;
    if (elapsed_ms < 900) /* well within the pause of 1 s (a slow machine may not be) */
        CU_ASSERT_EQUAL(durable_stats_of(d)->compaction_failures, 1);
    CU_ASSERT(pending); /* it asks to be called again: the repair is still due */
    rmdir(path);
    CU_ASSERT_EQUAL(flush_until_synced(d, s), DURABLE_OK); /* after the pause, a second try */
    CU_ASSERT_EQUAL(durable_stats_of(d)->compaction_failures, 1);
    durable_close(d);
    store_destroy(s);
    assert_reopens_with("compaction_failed", (const char *const[]){"a", "probe"}, 2);
}

/* fsync, wrapped (--wrap=fsync): slowed by slow_fsync_ms when set, which
 * a forked child inherits (the snapshot's fsync, in the compaction's child). */
int __real_fsync(int fd);
int __wrap_fsync(int fd);
static volatile int slow_fsync_ms;

int __wrap_fsync(int fd)
{
    if (slow_fsync_ms)
        usleep((useconds_t)slow_fsync_ms * 1000);
    return __real_fsync(fd);
}

/* A child of this process, or 0. */
static pid_t a_child(void)
{
    pid_t me = getpid(), found = 0;
    DIR *proc = opendir("/proc");
    for (struct dirent *e; proc && !found && (e = readdir(proc)) != NULL;) {
        char path[300], text[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = e->d_name[0] >= '1' && e->d_name[0] <= '9' ? fopen(path, "r") : NULL;
        if (!f)
            continue;
        size_t n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[n] = '\0';
        char *close_paren = strrchr(text, ')');
        int ppid = 0;
        if (close_paren && sscanf(close_paren + 1, " %*c %d", &ppid) == 1 && ppid == me)
            found = (pid_t)atoi(e->d_name);
    }
    if (proc)
        closedir(proc);
    return found;
}

/* pid's descriptors that are sockets, or files whose path ends with
 * suffix: how many, or -1 when they cannot be read (it exited). */
static int held_by(pid_t pid, const char *suffix)
{
    char path[64], link[512];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *fds = opendir(path);
    if (!fds)
        return -1;
    int n = 0;
    size_t slen = strlen(suffix);
    for (struct dirent *e; (e = readdir(fds)) != NULL;) {
        char fd_path[400];
        snprintf(fd_path, sizeof fd_path, "%s/%s", path, e->d_name);
        ssize_t len = readlink(fd_path, link, sizeof link - 1);
        if (len <= 0)
            continue;
        link[len] = '\0';
        n += strncmp(link, "socket:", 7) == 0 || ((size_t)len >= slen && strcmp(link + len - slen, suffix) == 0);
    }
    closedir(fds);
    return n;
}

/* The compaction's child keeps no socket of the node's (its port, epmd,
 * its peers: a node killed mid-compaction would leave them held), nor the
 * folder's lock, and lets signals through. */
static void test_the_compaction_child_holds_nothing_of_the_node(void)
{
    store *s;
    durable *d = open_store("child", &s);
    char err[512];
    int sock = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(sock >= 0);
    store_put(s, v("a"), v("1"));
    durable_put(d, v("a"), v("1"));
    slow_fsync_ms = 1000;
    CU_ASSERT_EQUAL(durable_compact(d, err, sizeof err), 0);
    slow_fsync_ms = 0;
    pid_t child = 0;
    for (int i = 0; i < 200 && !(child = a_child()); i++)
        usleep(1000);
    CU_ASSERT_FATAL(child > 0);
    int held = -1;
    for (int i = 0; i < 200 && held != 0; i++) { /* it lets go at its start (it sleeps 1 s after) */
        held = held_by(child, "/child/kv.lock");
        if (held)
            usleep(1000);
    }
    CU_ASSERT_EQUAL(held, 0);
    char path[160];
    snprintf(path, sizeof path, "%s/child/kv.lock", dir);
    int lock = open(path, O_RDWR);
    CU_ASSERT(lock >= 0 && flock(lock, LOCK_EX | LOCK_NB) < 0); /* still the store's (this process's) */
    if (lock >= 0)
        close(lock);
    kill(child, SIGTERM); /* not blocked in the child: the compaction fails, and is tried again later */
    int pending;
    for (int i = 0; i < 400 && durable_stats_of(d)->compaction_failures == 0; i++) {
        durable_flush(d, 0, &pending, err, sizeof err);
        usleep(5000);
    }
    CU_ASSERT_EQUAL(durable_stats_of(d)->compaction_failures, 1);
    close(sock);
    durable_close(d);
    store_destroy(s);
}

/* A store closed while its compaction runs stops it rather than wait for it
 * (with a big store that takes seconds, and the node's loop waits): here
 * the child blocks for good, opening its snapshot, a FIFO nobody reads.
 * Every change is still there when the store opens again. */
static void test_closing_stops_a_compaction_under_way(void)
{
    store *s;
    durable *d = open_store("close_midway", &s);
    char err[512], path[160];
    put_synced(s, d, "a", "1");
    snprintf(path, sizeof path, "%s/close_midway/kv.snap.tmp", dir);
    CU_ASSERT_FATAL(mkfifo(path, 0600) == 0);
    CU_ASSERT_EQUAL(durable_compact(d, err, sizeof err), 0);
    put_synced(s, d, "b", "2"); /* logged after the switch: the new log's */
    pid_t child = 0;
    for (int i = 0; i < 2000 && !(child = a_child()); i++)
        usleep(1000);
    CU_ASSERT_FATAL(child > 0);
    durable_close(d); /* returns: the old code waited here for good */
    store_destroy(s);
    CU_ASSERT_EQUAL(a_child(), 0);
    CU_ASSERT_EQUAL(file_size(path), -1); /* the half snapshot went with it */
    assert_reopens_with("close_midway", (const char *const[]){"a", "b"}, 2);
}

/* While the disk takes nothing, what waits for it stays in memory up to
 * DURABLE_MAX_UNWRITTEN: changes past it are refused (DURABLE_BACKLOG),
 * where the old code kept every one until the node was killed for its
 * memory. Once the disk takes them, they are written and changes are
 * accepted again; every change accepted is there when the store opens. */
static void test_a_full_disk_holds_a_bounded_backlog(void)
{
    store *s;
    durable *d = open_store("backlog", &s);
    char err[512], path[160];
    int pending;
    put_synced(s, d, "a", "1");
    snprintf(path, sizeof path, "%s/backlog/kv.log.1", dir);
    struct rlimit old, small;
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old);
    small.rlim_cur = (rlim_t)file_size(path) + 100;
    small.rlim_max = old.rlim_max;
    CU_ASSERT_FATAL(setrlimit(RLIMIT_FSIZE, &small) == 0);
    size_t big_len = (size_t)1 << 20;
    char *big = malloc(big_len);
    CU_ASSERT_FATAL(big != NULL);
    memset(big, 'v', big_len);
    term_view value = {big, big_len};
    int accepted = 0, rc = 0;
    while (accepted < 1000) {
        rc = durable_put(d, v("hot"), value);
        if (rc != 0)
            break;
        store_put(s, v("hot"), value);
        accepted++;
        CU_ASSERT_EQUAL(durable_flush(d, 0, &pending, err, sizeof err), DURABLE_WRITE_FAILED);
    }
    CU_ASSERT_EQUAL(rc, DURABLE_BACKLOG);
    CU_ASSERT(accepted >= 60 && accepted <= 65); /* 64 MiB, and the first, taken before writes failed */
    CU_ASSERT(durable_mark(d) <= DURABLE_MAX_UNWRITTEN);
    CU_ASSERT_EQUAL(durable_delete(d, value), DURABLE_BACKLOG); /* (a key of 1 MiB) */
    setrlimit(RLIMIT_FSIZE, &old);
    CU_ASSERT_EQUAL(durable_flush(d, 1, &pending, err, sizeof err), DURABLE_OK);
    CU_ASSERT_EQUAL(durable_mark(d), 0);
    CU_ASSERT_EQUAL(durable_put(d, v("b"), v("2")), 0);
    store_put(s, v("b"), v("2"));
    CU_ASSERT_EQUAL(durable_flush(d, 1, &pending, err, sizeof err), DURABLE_OK);
    free(big);
    durable_close(d);
    store_destroy(s);
    assert_reopens_with("backlog", (const char *const[]){"a", "b", "hot"}, 3);
}

/* A change logged and then taken back (applying it failed) is not written;
 * one logged after it is. */
static void test_a_change_taken_back_is_not_logged(void)
{
    store *s;
    durable *d = open_store("unlog", &s);
    char err[512];
    int pending;
    size_t mark = durable_mark(d);
    CU_ASSERT_EQUAL(durable_put(d, v("gone"), v("1")), 0);
    CU_ASSERT(durable_mark(d) > mark);
    durable_unlog(d, mark);
    CU_ASSERT_EQUAL(durable_mark(d), mark);
    store_put(s, v("kept"), v("2"));
    CU_ASSERT_EQUAL(durable_put(d, v("kept"), v("2")), 0);
    CU_ASSERT_EQUAL(durable_flush(d, 1, &pending, err, sizeof err), DURABLE_OK);
    durable_close(d);
    store_destroy(s);
    assert_reopens_with("unlog", (const char *const[]){"kept"}, 1);
}

/* A snapshot a compaction left half written (its node died) is removed
 * when the store opens; the store is what the logs say. */
static void test_a_half_written_snapshot_is_removed(void)
{
    store *s;
    durable *d = open_store("half_snapshot", &s);
    char path[200];
    put_synced(s, d, "a", "1");
    durable_close(d);
    store_destroy(s);
    snprintf(path, sizeof path, "%s/half_snapshot/kv.snap.tmp", dir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("half a snapshot", f);
    fclose(f);
    assert_reopens_with("half_snapshot", (const char *const[]){"a"}, 1);
    CU_ASSERT_EQUAL(file_size(path), -1);
}

/* With SIGCHLD ignored (a loaded module may do that), the kernel reaps the
 * compaction's child and its exit status is lost: the snapshot in place,
 * with the child's generation, says it finished, and the logs it covers go. */
static void test_a_compaction_reaped_by_another_counts_by_its_snapshot(void)
{
    store *s;
    durable *d = open_store("ignored_sigchld", &s);
    char err[512], path[200];
    int pending;
    put_synced(s, d, "a", "1");
    void (*was)(int) = signal(SIGCHLD, SIG_IGN);
    CU_ASSERT_EQUAL(durable_compact(d, err, sizeof err), 0);
    for (int i = 0; i < 1000 && durable_stats_of(d)->compactions + durable_stats_of(d)->compaction_failures == 0; i++) {
        durable_flush(d, 0, &pending, err, sizeof err);
        usleep(5000);
    }
    signal(SIGCHLD, was);
    CU_ASSERT_EQUAL(durable_stats_of(d)->compactions, 1);
    CU_ASSERT_EQUAL(durable_stats_of(d)->compaction_failures, 0);
    snprintf(path, sizeof path, "%s/ignored_sigchld/kv.log.1", dir);
    CU_ASSERT_EQUAL(file_size(path), -1); /* covered by the snapshot: gone */
    durable_close(d);
    store_destroy(s);
    assert_reopens_with("ignored_sigchld", (const char *const[]){"a"}, 1);
}

/* fork, wrapped (--wrap=fork): counted, for the compactions started. */
pid_t __real_fork(void);
pid_t __wrap_fork(void);
static int forks;

pid_t __wrap_fork(void)
{
    forks++;
    return __real_fork();
}

/* A store closed while the repair of a failed fsync runs waits for it, and
 * starts no second one: killed, as a plain compaction is at close, it was
 * started again at once and waited for, twice the time. */
static void test_closing_waits_for_a_repair_under_way(void)
{
    store *s;
    durable *d = open_store("close_while_repairing", &s);
    char err[512];
    int pending;
    put_synced(s, d, "a", "1");
    store_put(s, v("b"), v("2"));
    durable_put(d, v("b"), v("2"));
    fail_syncs = 1;
    slow_fsync_ms = 300; /* the repair's snapshot takes a while */
    int forks_before = forks;
    CU_ASSERT_EQUAL(durable_flush(d, 1, &pending, err, sizeof err), DURABLE_SYNC_FAILED);
    CU_ASSERT_EQUAL(forks - forks_before, 1); /* the repair, started at once */
    slow_fsync_ms = 0;
    durable_close(d);
    store_destroy(s);
    CU_ASSERT_EQUAL(forks - forks_before, 1);
    assert_reopens_with("close_while_repairing", (const char *const[]){"a", "b"}, 2);
}

/* A store closed while the repair of a failed fsync waits out its pause
 * writes the snapshot then, and waits for it. */
static void test_a_failed_fsync_is_replaced_when_the_store_closes(void)
{
    store *s;
    durable *d = open_store("close_repair", &s);
    char err[512], path[160];
    int pending;
    put_synced(s, d, "a", "1");
    snprintf(path, sizeof path, "%s/close_repair/kv.snap.tmp", dir);
    CU_ASSERT_FATAL(mkdir(path, 0755) == 0);
    store_put(s, v("b"), v("2"));
    durable_put(d, v("b"), v("2"));
    fail_syncs = 1;
    CU_ASSERT_EQUAL(durable_flush(d, 1, &pending, err, sizeof err), DURABLE_SYNC_FAILED);
    for (int i = 0; i < 1000 && durable_stats_of(d)->compaction_failures == 0; i++) {
        durable_flush(d, 1, &pending, err, sizeof err);
        usleep(5000);
    }
    CU_ASSERT_EQUAL_FATAL(durable_stats_of(d)->compaction_failures, 1);
    rmdir(path);
    durable_close(d); /* within the pause: no compaction would have started yet */
    store_destroy(s);
    snprintf(path, sizeof path, "%s/close_repair/kv.snap", dir);
    CU_ASSERT(file_size(path) > 0);
    assert_reopens_with("close_repair", (const char *const[]){"a", "b"}, 2);
    snprintf(path, sizeof path, "%s/close_repair/kv.log.1", dir);
    CU_ASSERT_EQUAL(file_size(path), -1); /* covered by the snapshot: removed when reopened */
}

/* Writes len bytes to dir/sub/file. */
static void write_file(const char *sub, const char *file, const void *bytes, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, file);
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT(fwrite(bytes, 1, len, f) == len);
    fclose(f);
}

/* A snapshot of one entry with this generation, as compaction writes it. */
static void write_snapshot(const char *sub, uint64_t gen)
{
    char path[256], err[256];
    store *s = store_create(seed);
    store_put(s, v("snapped"), v("yes"));
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/kv.snap", dir, sub);
    CU_ASSERT_FATAL(snapshot_write(path, gen, s, err, sizeof err) == 0);
    store_destroy(s);
}

static durable *try_open(const char *sub, store **s, char *err, size_t errlen)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    *s = store_create(seed);
    return durable_open(path, "kv", FSYNC_ALWAYS, 1u << 30, *s, err, errlen);
}

/* Generation 0 (checksum valid) once made later writes go to a log recovery
 * never read: a synced write was gone after a reopen. Generations that do
 * not fit the logs present are refused the same way. */
static void test_snapshot_generation_is_checked_against_the_logs(void)
{
    char err[512];
    store *s;
    durable *d;
    static const struct { const char *sub; int snap; uint64_t gen; int logs[4]; int ok; } cases[] = {
        {"g0", 1, 0, {0}, 0},                 /* generation 0 */
        {"gbig", 1, UINT64_MAX, {0}, 0},      /* beyond any compaction */
        {"g3-none", 1, 3, {0}, 0},            /* log 3 missing */
        {"g3-gap", 1, 3, {1, 3, 5}, 0},       /* log 4 missing */
        {"g3-late", 1, 3, {4, 5}, 0},         /* log 3 missing */
        {"nosnap", 0, 0, {2, 3}, 0},          /* logs from 2 but no snapshot */
        {"g3-ok", 1, 3, {1, 3, 4}, 1},        /* 1: a leftover the snapshot covers */
        {"fresh", 0, 0, {0}, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        if (cases[c].snap)
            write_snapshot(cases[c].sub, cases[c].gen);
        for (int k = 0; k < 4 && cases[c].logs[k]; k++) {
            char file[32];
            snprintf(file, sizeof file, "kv.log.%d", cases[c].logs[k]);
            write_file(cases[c].sub, file, "", 0);
        }
        err[0] = '\0';
        d = try_open(cases[c].sub, &s, err, sizeof err);
        CU_ASSERT_EQUAL(d != NULL, cases[c].ok);
        if (!cases[c].ok) {
            CU_ASSERT_PTR_NOT_NULL(strstr(err, "refusing to start"));
            store_destroy(s);
            continue;
        }
        /* what is written now is read back after a reopen */
        store_put(s, v("after"), v("reopen"));
        durable_put(d, v("after"), v("reopen"));
        flush_until_idle(d);
        durable_close(d);
        store_destroy(s);
        d = try_open(cases[c].sub, &s, err, sizeof err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(d);
        term_view got;
        CU_ASSERT(store_get(s, v("after"), &got));
        CU_ASSERT_EQUAL(store_get(s, v("snapped"), &got), cases[c].snap);
        durable_close(d);
        store_destroy(s);
    }
}

/* A fun as a key, as written canonical before 0.2.0 kept its creator pid:
 * fun m/0 with free variable [env, env], created by a process of node c@h. */
static term_view old_fun_key(char node, char env, unsigned char out[60])
{
    static const unsigned char fun[] = {
        112, 0, 0, 0, 59, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0, 0, 0, 0, 0, 0,
        0, 1, 119, 1, 109, 97, 0, 97, 7, 88, 119, 3, 110, 64, 104, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0,
        3, 107, 0, 2, 97, 98};
    memcpy(out, fun, sizeof fun);
    out[40] = (unsigned char)node;
    out[58] = out[59] = (unsigned char)env;
    return (term_view){(const char *)out, sizeof fun};
}

static int get_fun(store *s, char node, char env, const char *want)
{
    unsigned char raw[60];
    term_view key = old_fun_key(node, env, raw), got;
    ei_x_buff today = {0};
    int found = term_key_today(&key, &today) && store_get(s, key, &got) && got.len == strlen(want) &&
                memcmp(got.ptr, want, got.len) == 0;
    ei_x_free(&today);
    return found;
}

/* Keys that hold a fun, in a snapshot and a log written when a fun's
 * creator pid was part of its canonical form, are canonical again once
 * read back: found by the funs peers send now, and two that were kept
 * apart (made by two processes, =:= all the same) are one entry. */
static void test_keys_of_an_older_canonical_form_are_found(void)
{
    char err[512], path[256];
    unsigned char a[60], b[60], c[60];
    store *s = store_create(seed);
    store_put(s, old_fun_key('n', 'a', a), v("one"));
    store_put(s, old_fun_key('x', 'a', b), v("one"));
    store_put(s, v("plain"), v("kept"));
    snprintf(path, sizeof path, "%s/funs", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/funs/kv.snap", dir);
    CU_ASSERT_FATAL(snapshot_write(path, 1, s, err, sizeof err) == 0);
    store_destroy(s);
    write_file("funs", "kv.log.1", "", 0);
    err[0] = '\0';
    durable *d = try_open("funs", &s, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(store_size(s), 2);
    CU_ASSERT(get_fun(s, 'y', 'a', "one"));
    durable_put(d, old_fun_key('n', 'z', c), v("two"));
    durable_put(d, old_fun_key('x', 'z', c), v("three"));
    flush_until_idle(d);
    durable_close(d);
    store_destroy(s);
    d = try_open("funs", &s, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(store_size(s), 3);
    CU_ASSERT(get_fun(s, 'q', 'a', "one"));
    CU_ASSERT(get_fun(s, 'q', 'z', "three"));
    term_view got;
    CU_ASSERT(store_get(s, v("plain"), &got));
    durable_close(d);
    store_destroy(s);
}

/* A log whose damaged first length claims more than the file, followed by
 * bytes where one position in five looks like the start of a 263 KB record:
 * telling a torn tail from corruption used to checksum each candidate,
 * about 50 GB for this 1 MB. Now the work is linear, and the damage, not
 * proven torn, is refused. */
static void test_recovery_is_linear_on_crafted_logs(void)
{
    enum { SIZE = 1 << 20 };
    static char bytes[SIZE];
    memset(bytes, 0xFF, 4);
    bytes[0] = 0x7F; /* a log of version 1: its first length claims 2 GB */
    for (size_t i = 4; i < SIZE; i++)
        bytes[i] = (char)((const char[]){0, 0, 4, 4, 2})[i % 5];
    write_file("crafted", "kv.log.1", bytes, SIZE);
    char err[512];
    store *s;
    checked = 0;
    char path[128];
    snprintf(path, sizeof path, "%s/crafted/kv.log.1", dir);
    seen seen_records = {0};
    CU_ASSERT_EQUAL(aof_replay(path, 1, record, &seen_records, &checked, err, sizeof err), -1);
    CU_ASSERT(checked <= 5 * (uint64_t)SIZE + (16u << 20));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "offset 0"));
    CU_ASSERT_EQUAL(file_size(path), SIZE); /* nothing cut */
    durable *d = try_open("crafted", &s, err, sizeof err);
    CU_ASSERT_PTR_NULL(d);
    store_destroy(s);
}

void unit_suite_durable(void)
{
    CU_pSuite s = CU_add_suite("durable", setup, teardown);
    CU_add_test(s, "crc32c check value", test_crc32c_check_value);
    CU_add_test(s, "log round trip", test_log_round_trip);
    CU_add_test(s, "a torn tail is cut, at every point", test_torn_tail_is_cut_at_every_point);
    CU_add_test(s, "a corrupt middle is refused, with its offset", test_corrupt_middle_is_refused_with_offset);
    CU_add_test(s, "a damaged length is not a torn tail", test_damaged_length_is_not_a_torn_tail);
    CU_add_test(s, "a log of version 1 is read and continued", test_a_log_of_version_1_is_read_and_continued);
    CU_add_test(s, "a torn record holding records is cut", test_a_torn_record_holding_records_is_cut);
    CU_add_test(s, "a magic damaged in many bytes is refused", test_a_magic_damaged_in_many_bytes_is_refused);
    CU_add_test(s, "a full disk keeps earlier records and retries", test_full_disk_keeps_earlier_records_and_retries);
    CU_add_test(s, "a half record not cut off is never written after",
                test_a_half_record_not_cut_off_is_never_written_after);
    CU_add_test(s, "snapshot round trip and corruption", test_snapshot_round_trip_and_corruption);
    CU_add_test(s, "recovery and compaction", test_recovery_and_compaction);
    CU_add_test(s, "a failed fsync is not retried but replaced", test_a_failed_fsync_is_not_retried_but_replaced);
    CU_add_test(s, "a failed compaction waits, and syncs wait for it",
                test_a_failed_compaction_waits_and_syncs_wait_for_it);
    CU_add_test(s, "a failed fsync is replaced when the store closes",
                test_a_failed_fsync_is_replaced_when_the_store_closes);
    CU_add_test(s, "a snapshot's generation is checked against the logs",
                test_snapshot_generation_is_checked_against_the_logs);
    CU_add_test(s, "recovery is linear on crafted logs", test_recovery_is_linear_on_crafted_logs);
    CU_add_test(s, "a change taken back is not logged", test_a_change_taken_back_is_not_logged);
    CU_add_test(s, "a compaction reaped by another counts by its snapshot",
                test_a_compaction_reaped_by_another_counts_by_its_snapshot);
    CU_add_test(s, "a half-written snapshot is removed", test_a_half_written_snapshot_is_removed);
    CU_add_test(s, "the compaction's child holds nothing of the node's",
                test_the_compaction_child_holds_nothing_of_the_node);
    CU_add_test(s, "keys of an older canonical form are found", test_keys_of_an_older_canonical_form_are_found);
    CU_add_test(s, "closing stops a compaction under way", test_closing_stops_a_compaction_under_way);
    CU_add_test(s, "closing waits for a repair under way", test_closing_waits_for_a_repair_under_way);
    CU_add_test(s, "a full disk holds a bounded backlog", test_a_full_disk_holds_a_bounded_backlog);
    CU_add_test(s, "everysec syncs off the loop", test_everysec_syncs_off_the_loop);
    CU_add_test(s, "an everysec sync that fails on its thread", test_an_everysec_sync_that_fails_on_its_thread);
}

/*
 * digest.c: blocking work on the worker pool, written only against
 * gen_cnode.h. A call hands its work to a job (gcn_submit), keeps its caller
 * (gcn_hold), and is answered from the job's done function, on the node's
 * thread, while every other server and peer is served meanwhile.
 *
 * Start it: {:start, :digest, [], [name: :digest]}
 * Calls:
 *   {sha256, Binary}   {ok, <<Digest:32/binary>>}, computed on a worker
 *   {sleep, Ms}        slept, after Ms ms of sleeping on a worker (0..60000):
 *                      a stand-in for any call that blocks (I/O, a solver)
 *   jobs               {Running, Done}: jobs handed out and not yet back,
 *                      and jobs answered so far
 * A job outliving its caller's timeout is harmless: the reply goes to a
 * caller that has stopped waiting, and is dropped there, as in OTP.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep: plain -std=c11 declares neither */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gen_cnode.h>

typedef struct digest {
    uint64_t running, done;
} digest;

/* One job: everything run touches is in here, and nothing else. */
typedef struct job {
    gcn_caller *caller; /* the node thread's: run never touches it */
    int64_t sleep_ms;   /* a sleep job, or */
    size_t len;         /* the bytes to hash */
    unsigned char sum[32];
    unsigned char data[];
} job;

/* ---- SHA-256 (FIPS 180-4), small and plain ---- */

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t ror(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void block(uint32_t h[8], const unsigned char *p)
{
    uint32_t w[64], a, b, c, d, e, f, g, k;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++)
        w[i] = w[i - 16] + (ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3)) + w[i - 7] +
               (ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10));
    a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

static void sha256(const unsigned char *data, size_t len, unsigned char out[32])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    unsigned char tail[128] = {0};
    size_t full = len / 64 * 64, rest = len - full;
    for (size_t i = 0; i < full; i += 64)
        block(h, data + i);
    memcpy(tail, data + full, rest);
    tail[rest] = 0x80;
    size_t tlen = rest < 56 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tlen - 1 - i] = (unsigned char)(bits >> (8 * i));
    block(h, tail);
    if (tlen == 128)
        block(h, tail + 64);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++)
            out[4 * i + j] = (unsigned char)(h[i] >> (24 - 8 * j));
}

/* ---- the job: on a worker thread ---- */

static void run(void *arg)
{
    job *j = arg;
    if (j->sleep_ms) {
        struct timespec ts = {j->sleep_ms / 1000, (long)(j->sleep_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0)
            ;
    } else {
        sha256(j->data, j->len, j->sum);
    }
}

/* ---- back on the node's thread ---- */

static enum gcn_result done(gcn_server *self, void *state, void *arg)
{
    job *j = arg;
    if (self) { /* NULL: the server stopped meanwhile; only free the job */
        digest *d = state;
        gcn_buf *b = gcn_buf_new();
        if (b && (j->sleep_ms ? gcn_put_atom(b, "slept") : gcn_build(b, "{ok, ~b}", j->sum, sizeof j->sum)) == 0)
            gcn_reply_held(self, j->caller, gcn_buf_term(b));
        else
            gcn_release(j->caller);
        gcn_buf_free(b);
        d->running--;
        d->done++;
    } else {
        gcn_release(j->caller);
    }
    free(j);
    return GCN_NOREPLY;
}

static int dg_init(gcn_server *self, gcn_term arg, gcn_init *out, const char **error)
{
    (void)self;
    (void)arg;
    if (!(out->state = calloc(1, sizeof(digest)))) {
        *error = "out_of_memory";
        return -1;
    }
    return 0;
}

static enum gcn_result dg_call(gcn_server *self, void *state, gcn_term req, const gcn_from *from,
                               gcn_buf *reply)
{
    digest *d = state;
    gcn_bin bin = {NULL, 0};
    int64_t ms = 0;
    if (gcn_is_atom(req, "jobs"))
        return gcn_build(reply, "{~u, ~u}", d->running, d->done), GCN_REPLY;
    int hash = gcn_match(req, "{sha256, ~b}", &bin);
    if (!hash && !(gcn_match(req, "{sleep, ~i}", &ms) && ms >= 0 && ms <= 60000)) {
        gcn_error(reply, "unknown_call", req);
        return GCN_REPLY;
    }
    job *j = malloc(sizeof *j + bin.len);
    if (!j || !(j->caller = gcn_hold(from))) {
        free(j);
        gcn_build(reply, "{error, out_of_memory}");
        return GCN_REPLY;
    }
    j->sleep_ms = hash ? 0 : (ms ? ms : 1);
    j->len = bin.len;
    if (bin.len)
        memcpy(j->data, bin.ptr, bin.len); /* the request is borrowed: the job gets a copy */
    if (gcn_submit(self, run, done, j) < 0) {
        gcn_release(j->caller);
        free(j);
        gcn_build(reply, "{error, no_workers}");
        return GCN_REPLY;
    }
    d->running++;
    return GCN_NOREPLY; /* answered from done() */
}

static int dg_format_state(void *state, gcn_buf *out)
{
    const digest *d = state;
    return gcn_build(out, "#{running => ~u, done => ~u}", d->running, d->done);
}

static void dg_terminate(void *state, gcn_term reason)
{
    (void)reason;
    free(state); /* jobs still out come back to done() with a NULL server */
}

GEN_CNODE_MODULE(digest,
    .init = dg_init,
    .handle_call = dg_call,
    .format_state = dg_format_state,
    .terminate = dg_terminate)

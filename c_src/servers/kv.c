/* kv.c: the KeyValue callbacks; see kv.h. Knows the store and the engine's
 * callback contract, nothing of connections or frames. */
#define GEN_CNODE_STATIC /* linked into the node: no loadable entry point */
#include "kv.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "buffer.h"
#include "log.h"
#include "store.h"

/* A caller answered at the end of the batch, once the log says how it went:
 * a plain put or delete once written, a put_sync or sync once fsynced. */
typedef struct waiting {
    struct waiting *next;
    gcn_caller *caller;
    int sync;
} waiting;

typedef struct kv {
    store *store;
    durable *durable;   /* NULL: memory only */
    waiting *syncing, **syncing_tail; /* callers waiting for their changes to reach the
                                         disk, in the order they asked */
    size_t nsync;       /* how many of them wait for an fsync */
    size_t max_entries;
    ei_x_buff key;      /* canonical bytes of the key at hand, reused */
    unsigned max_depth;
    char *preload;      /* a map to load in handle_continue, or NULL */
    size_t preload_len;
    int sync_armed;     /* a sync_due timer is set (everysec: changes wait for their sync) */
    unsigned long long sync_secret; /* in that timer's message: a peer cannot send one */
} kv;

/* The message of kv's own timer for an everysec sync (flush then syncs):
 * {'$kv_sync_due', Secret}, into buf (64 bytes). Its length. */
static int sync_due(const kv *k, char *buf)
{
    int i = 0;
    ei_encode_tuple_header(buf, &i, 2);
    ei_encode_atom(buf, &i, "$kv_sync_due");
    ei_encode_ulonglong(buf, &i, k->sync_secret);
    return i;
}

enum kv_op { KV_UNKNOWN, KV_GET, KV_FETCH, KV_PUT, KV_PUT_SYNC, KV_DELETE, KV_SIZE, KV_KEYS,
             KV_SYNC, KV_COMPACT };

typedef struct kv_request {
    enum kv_op op;
    term_view key, value;
} kv_request;

/* The start argument: [] (or none), or #{preload => Map, trap_exit => Bool}. */
static int parse_arg(kv *k, term_view arg, gcn_init *out, const char **error)
{
    int i = 0, arity, type, size;
    char atom[MAXATOMLEN_UTF8];
    if (arg.len == 0 || (ei_get_type(arg.ptr, &i, &type, &size) == 0 && type == ERL_NIL_EXT))
        return 0;
    if (ei_decode_map_header(arg.ptr, &i, &arity) < 0) {
        *error = "badarg";
        return -1;
    }
    for (int n = 0; n < arity; n++) {
        term_view value;
        if (ei_decode_atom(arg.ptr, &i, atom) < 0 || term_next(arg, &i, &value) < 0) {
            *error = "badarg";
            return -1;
        }
        int j = 0, vtype, vsize;
        ei_get_type(value.ptr, &j, &vtype, &vsize);
        if (strcmp(atom, "preload") == 0 && vtype == ERL_MAP_EXT) {
            free(k->preload); /* a map whose key came twice (hand-made: the term checks allow it) */
            k->preload = malloc(value.len);
            if (!k->preload) {
                *error = "out_of_memory";
                return -1;
            }
            memcpy(k->preload, value.ptr, value.len);
            k->preload_len = value.len;
            out->want_continue = 1;
        } else if (strcmp(atom, "trap_exit") == 0) {
            char b[MAXATOMLEN_UTF8];
            out->trap_exit = ei_decode_atom(value.ptr, &j, b) == 0 && strcmp(b, "true") == 0;
        } else {
            *error = "badarg";
            return -1;
        }
    }
    return 0;
}

static void kv_terminate(void *state, term_view reason);

static int kv_init(gcn_server *self, term_view arg, gcn_init *out, const char **error)
{
    const kv_options *opts = gcn_priv(self);
    unsigned char seed[16];
    *error = "out_of_memory";
    if (getrandom(seed, sizeof seed, 0) != (ssize_t)sizeof seed)
        return -1;
    kv *k = calloc(1, sizeof *k);
    if (!k)
        return -1;
    k->max_depth = opts ? opts->max_depth : 1000;
    k->max_entries = opts ? opts->max_entries : 0;
    if (getrandom(&k->sync_secret, sizeof k->sync_secret, 0) != (ssize_t)sizeof k->sync_secret) {
        free(k);
        return -1;
    }
    k->syncing_tail = &k->syncing;
    k->store = store_create(seed);
    if (!k->store || ei_x_new(&k->key) < 0 || parse_arg(k, arg, out, error) < 0) {
        kv_terminate(k, (term_view){NULL, 0});
        return -1;
    }
    /* Durable: the server registered under the store's name, at boot or
     * started again under it after it stopped; any other is memory only. */
    if (opts && opts->data_dir && gcn_name(self) && strcmp(gcn_name(self), opts->name) == 0) {
        char why[1024];
        k->durable = durable_open(opts->data_dir, opts->name, opts->fsync, opts->compact_min,
                                  k->store, why, sizeof why);
        if (!k->durable) {
            log_error("kv: %s", why);
            *error = "data_dir_unavailable"; /* why: logged just above */
            kv_terminate(k, (term_view){NULL, 0});
            return -1;
        }
    }
    out->state = k;
    return 0;
}

static void kv_terminate(void *state, term_view reason)
{
    (void)reason;
    kv *k = state;
    durable_close(k->durable); /* writes and syncs what is pending */
    while (k->syncing) {
        waiting *w = k->syncing;
        k->syncing = w->next;
        gcn_release(w->caller);
        free(w);
    }
    k->syncing_tail = &k->syncing;
    store_destroy(k->store);
    ei_x_free(&k->key);
    free(k->preload);
    free(k);
}


/* Recognise a request; anything unrecognised is KV_UNKNOWN. */
static kv_request parse(term_view req)
{
    static const struct { const char *name; enum kv_op op; int arity; } ops[] = {
        {"get", KV_GET, 2},        {"put", KV_PUT, 3},   {"delete", KV_DELETE, 2},
        {"fetch", KV_FETCH, 2},    {"put_sync", KV_PUT_SYNC, 3},
        {"size", KV_SIZE, 0},      {"keys", KV_KEYS, 0}, {"sync", KV_SYNC, 0},
        {"compact", KV_COMPACT, 0},
    };
    kv_request r = {KV_UNKNOWN, {0}, {0}};
    int i = 0, arity = 0;
    if (ei_decode_tuple_header(req.ptr, &i, &arity) < 0)
        i = 0; /* a bare atom: arity 0 */
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        int j = i;
        if (ops[k].arity != arity || !term_atom_is(req, &j, ops[k].name))
            continue;
        /* req is exactly one term, so its last element runs to its end */
        if (arity == 3 && term_next(req, &j, &r.key) < 0)
            return r;
        term_view last = {req.ptr + j, req.len - (size_t)j};
        if (arity == 2)
            r.key = last;
        else if (arity == 3)
            r.value = last;
        r.op = ops[k].op;
        return r;
    }
    return r;
}

/* The canonical bytes of r->key, in k->key; the error code of term_canonical otherwise. */
static int canonical_key(kv *k, term_view key, term_view *out)
{
    size_t i = 0;
    term_shrink(&k->key, 4096); /* after a large key */
    k->key.index = 0;
    int rc = term_canonical(key.ptr, key.len, &i, k->max_depth, &k->key);
    if (rc == TERM_OK)
        *out = (term_view){k->key.buff, (size_t)k->key.index};
    return rc;
}

static void encode_error(ei_x_buff *reply, const char *what, const char *detail)
{
    ei_x_encode_tuple_header(reply, 2);
    ei_x_encode_atom(reply, "error");
    ei_x_encode_tuple_header(reply, 2);
    ei_x_encode_atom(reply, what);
    ei_x_encode_atom(reply, detail);
}

enum { PUT_OK = 0, PUT_FULL = -1, PUT_NOMEM = -2, PUT_BACKLOG = -3 };
#define BACKLOG_WHY "the log cannot be written, and as much as may wait for it in memory waits already"

/* What a change the log did not take (durable_put, durable_delete) answers. */
static int not_logged(int logged)
{
    return logged == DURABLE_BACKLOG ? PUT_BACKLOG : PUT_NOMEM;
}

/* Log and store a change (the log is written at the end of the batch), or
 * neither: what a caller is told failed is not on disk, nor in memory. */
static int put(gen_server *self, kv *k, term_view key, term_view value)
{
    term_view old;
    if (k->max_entries && store_size(k->store) >= k->max_entries && !store_get(k->store, key, &old))
        return PUT_FULL;
    size_t mark = k->durable ? durable_mark(k->durable) : 0;
    int logged = k->durable ? durable_put(k->durable, key, value) : 0;
    if (logged < 0)
        return not_logged(logged);
    if (store_put(k->store, key, value) < 0) {
        if (k->durable)
            durable_unlog(k->durable, mark);
        return PUT_NOMEM;
    }
    if (k->durable)
        gcn_want_flush(self);
    return PUT_OK;
}

/* Log and remove: PUT_OK, or PUT_NOMEM or PUT_BACKLOG when the delete
 * could not be logged (the key stays, in memory as on disk). */
static int delete(gen_server *self, kv *k, term_view key)
{
    term_view old;
    if (k->durable && store_get(k->store, key, &old)) {
        int logged = durable_delete(k->durable, key);
        if (logged < 0)
            return not_logged(logged);
        gcn_want_flush(self);
    }
    store_delete(k->store, key);
    return PUT_OK;
}

/* Keep a caller until the next flush has written its changes (and synced
 * them, if sync). */
static waiting *waiter(const gcn_from *from, int sync)
{
    waiting *w = malloc(sizeof *w);
    if (!w || !(w->caller = gcn_hold(from))) {
        free(w);
        return NULL;
    }
    w->sync = sync;
    return w;
}

static void waiter_free(waiting *w)
{
    if (w) {
        gcn_release(w->caller);
        free(w);
    }
}

/* w (made before the change, so that running out of memory leaves the
 * change undone) waits for the next flush. */
static void wait_for_disk(gen_server *self, kv *k, waiting *w)
{
    k->nsync += w->sync != 0;
    w->next = NULL;
    *k->syncing_tail = w;
    k->syncing_tail = &w->next;
    gcn_want_flush(self);
}

static void encode_put_result(ei_x_buff *reply, int rc)
{
    if (rc == PUT_OK) {
        ei_x_encode_atom(reply, "ok");
        return;
    }
    ei_x_encode_tuple_header(reply, 2);
    ei_x_encode_atom(reply, "error");
    if (rc == PUT_BACKLOG) { /* the shape of the other disk errors: {disk, Why} */
        ei_x_encode_tuple_header(reply, 2);
        ei_x_encode_atom(reply, "disk");
        ei_x_encode_binary(reply, BACKLOG_WHY, (long)strlen(BACKLOG_WHY));
        return;
    }
    ei_x_encode_atom(reply, rc == PUT_FULL ? "store_full" : "out_of_memory");
}

/* Every key, in one list: {error, {keys, too_large}} when they pass what
 * one reply can hold (2 GiB). Written with gcn_buf_append, which marks the
 * buffer when memory runs out: the engine then answers {error,
 * out_of_memory}, and the server goes on. */
static void encode_keys(kv *k, gcn_buf *reply_buf)
{
    store_iter it;
    term_view key, value;
    size_t n = store_size(k->store), bytes = 16;
    store_iter_init(&it);
    while (store_next(k->store, &it, &key, &value))
        bytes += key.len;
    if (bytes > (size_t)INT_MAX - (size_t)gcn_buf_ei(reply_buf)->index) {
        encode_error(gcn_buf_ei(reply_buf), "keys", "too_large");
        return;
    }
    char head[5] = {ERL_LIST_EXT}, nil = ERL_NIL_EXT;
    put_u32(head + 1, (uint32_t)n);
    if (n && gcn_buf_append(reply_buf, head, sizeof head) < 0)
        return;
    store_iter_init(&it);
    while (store_next(k->store, &it, &key, &value))
        if (gcn_buf_append(reply_buf, key.ptr, key.len) < 0)
            return;
    gcn_buf_append(reply_buf, &nil, 1);
}

static enum gcn_result kv_handle_call(gen_server *self, void *state, term_view req,
                                             const gcn_from *from, gcn_buf *reply_buf)
{
    ei_x_buff *reply = gcn_buf_ei(reply_buf);
    kv *k = state;
    kv_request r = parse(req);
    term_view key, value;
    int rc = TERM_OK;
    if (r.op != KV_UNKNOWN && r.key.ptr && (rc = canonical_key(k, r.key, &key)) != TERM_OK) {
        encode_error(reply, "bad_key", term_strerror(rc));
        return GCN_REPLY;
    }
    switch (r.op) {
    /* A value written with gcn_buf_append: out of memory, the buffer is
     * marked, and the engine answers {error, out_of_memory}. */
    case KV_GET:
        if (store_get(k->store, key, &value))
            gcn_buf_append(reply_buf, value.ptr, value.len);
        else
            ei_x_encode_atom(reply, "nil");
        break;
    case KV_FETCH:
        if (store_get(k->store, key, &value)) {
            ei_x_encode_tuple_header(reply, 2);
            ei_x_encode_atom(reply, "ok");
            gcn_buf_append(reply_buf, value.ptr, value.len);
        } else {
            ei_x_encode_atom(reply, "error");
        }
        break;
    case KV_PUT:
    case KV_PUT_SYNC: {
        waiting *w = k->durable ? waiter(from, r.op == KV_PUT_SYNC) : NULL;
        int rc = k->durable && !w ? PUT_NOMEM : put(self, k, key, r.value);
        if (rc != PUT_OK || !k->durable) {
            waiter_free(w);
            encode_put_result(reply, rc);
            break;
        }
        wait_for_disk(self, k, w);
        return GCN_NOREPLY; /* answered by kv_flush, once written */
    }
    case KV_SYNC: {
        waiting *w = k->durable ? waiter(from, 1) : NULL;
        if (!k->durable) {
            ei_x_encode_atom(reply, "ok");
        } else if (!w) {
            encode_put_result(reply, PUT_NOMEM);
        } else {
            wait_for_disk(self, k, w);
            return GCN_NOREPLY;
        }
        break;
    }
    case KV_COMPACT: {
        char why[256];
        int rc = k->durable ? durable_compact(k->durable, why, sizeof why) : -1;
        if (rc == 0)
            ei_x_encode_atom(reply, "ok");
        else
            encode_error(reply, "compact", !k->durable ? "not_durable" : rc > 0 ? "already_running" : "failed");
        if (k->durable)
            gcn_want_flush(self);
        break;
    }
    case KV_DELETE: {
        waiting *w = k->durable ? waiter(from, 0) : NULL;
        int rc = k->durable && !w ? PUT_NOMEM : delete(self, k, key);
        if (rc != PUT_OK) {
            waiter_free(w);
            encode_put_result(reply, rc);
        } else if (!k->durable) {
            ei_x_encode_atom(reply, "ok");
        } else {
            wait_for_disk(self, k, w);
            return GCN_NOREPLY;
        }
        break;
    }
    case KV_SIZE:
        ei_x_encode_ulong(reply, store_size(k->store));
        break;
    case KV_KEYS:
        encode_keys(k, reply_buf);
        break;
    case KV_UNKNOWN:
        gcn_error(reply_buf, "unknown_call", req);
        break;
    }
    return GCN_REPLY;
}

static enum gcn_result kv_handle_cast(gen_server *self, void *state, term_view req)
{
    kv *k = state;
    kv_request r = parse(req);
    term_view key;
    int rc;
    if (r.op != KV_PUT && r.op != KV_DELETE) {
        log_warning("kv: ignoring an unknown cast (expected {put, K, V} or {delete, K})");
        return GCN_NOREPLY;
    }
    if ((rc = canonical_key(k, r.key, &key)) != TERM_OK) {
        log_warning("kv: ignoring a cast with a bad key: %s", term_strerror(rc));
        return GCN_NOREPLY;
    }
    rc = r.op == KV_DELETE ? delete(self, k, key) : put(self, k, key, r.value);
    const char *what = r.op == KV_DELETE ? "delete" : "put";
    if (rc == PUT_FULL)
        log_warning("kv: store full (--max-entries %zu): a cast put of a new key was dropped", k->max_entries);
    else if (rc == PUT_NOMEM)
        log_error("kv: out of memory storing a cast %s; dropped", what);
    else if (rc == PUT_BACKLOG)
        log_error("kv: a cast %s was dropped: %s", what, BACKLOG_WHY);
    return GCN_NOREPLY;
}

static enum gcn_result kv_handle_info(gen_server *self, void *state, term_view msg)
{
    kv *k = state;
    char due[64];
    int due_len = sync_due(k, due);
    if (msg.len == (size_t)due_len && memcmp(msg.ptr, due, msg.len) == 0) {
        k->sync_armed = 0;
        if (k->durable)
            gcn_want_flush(self); /* the sync is due: flush makes it */
        return GCN_NOREPLY;
    }
    log_warning("kv: ignoring a plain message of %zu bytes (not a call or a cast)", msg.len);
    return GCN_NOREPLY;
}

static int kv_format_state(void *state, gcn_buf *out_buf)
{
    ei_x_buff *out = gcn_buf_ei(out_buf);
    kv *k = state;
    store_iter it;
    term_view key, value;
    if (term_reserve(out, store_bytes(k->store)) != TERM_OK ||
        ei_x_encode_map_header(out, (long)store_size(k->store)) < 0)
        return -1;
    store_iter_init(&it);
    while (store_next(k->store, &it, &key, &value))
        if (ei_x_append_buf(out, key.ptr, (int)key.len) < 0 ||
            ei_x_append_buf(out, value.ptr, (int)value.len) < 0)
            return -1;
    return 0;
}

/* The preload map of the start argument, entry by entry. */
static void kv_handle_continue(gen_server *self, void *state)
{
    kv *k = state;
    term_view map = {k->preload, k->preload_len}, key, value, canon;
    int i = 0, arity;
    if (k->preload && ei_decode_map_header(map.ptr, &i, &arity) == 0)
        for (int n = 0; n < arity; n++) {
            if (term_next(map, &i, &key) < 0 || term_next(map, &i, &value) < 0)
                break;
            if (canonical_key(k, key, &canon) != TERM_OK || put(self, k, canon, value) != PUT_OK)
                log_warning("kv: preload skipped an entry it could not store");
        }
    free(k->preload);
    k->preload = NULL;
}

/* End of a batch: the log written (and synced as the policy says, or now if
 * somebody waits for that), then the waiting callers answered: ok, or
 * {error, {disk, Why}} when their change is not known to be written (or
 * synced). It stays in memory, is written by a later flush, and may still
 * survive: an error says "not known", as a timeout would. */
static void kv_flush(gen_server *self, void *state)
{
    kv *k = state;
    char why[512];
    if (!k->durable)
        return;
    if (process_exiting(gen_server_process(self))) /* the flush before terminate */
        durable_closing(k->durable);
    int pending, rc = durable_flush(k->durable, k->nsync > 0, &pending, why, sizeof why);
    k->nsync = 0;
    while (k->syncing) {
        waiting *w = k->syncing;
        char reply[600];
        int i = 0;
        k->syncing = w->next;
        if (w->sync ? rc == DURABLE_OK : rc != DURABLE_WRITE_FAILED) {
            ei_encode_atom(reply, &i, "ok");
        } else {
            ei_encode_tuple_header(reply, &i, 2);
            ei_encode_atom(reply, &i, "error");
            ei_encode_tuple_header(reply, &i, 2);
            ei_encode_atom(reply, &i, "disk");
            ei_encode_binary(reply, &i, why, (long)strnlen(why, 500));
        }
        gcn_reply_held(self, w->caller, (term_view){reply, (size_t)i});
        free(w);
    }
    k->syncing_tail = &k->syncing;
    if (pending || rc < 0)
        gcn_want_flush(self);
    long due = durable_sync_due_in(k->durable);
    char msg[64];
    if (due > 0 && !k->sync_armed && gcn_send_after(self, (uint64_t)due, (term_view){msg, (size_t)sync_due(k, msg)}) != 0)
        k->sync_armed = 1;
}

/* #{entries => N, memory => Bytes, messages => Handled}: what :sys.get_status shows. */
static int kv_format_status(gen_server *self, void *state, gcn_buf *out_buf)
{
    ei_x_buff *out = gcn_buf_ei(out_buf);
    kv *k = state;
    ei_x_encode_map_header(out, k->durable ? 8 : 3);
    if (k->durable) {
        const durable_stats *st = durable_stats_of(k->durable);
        ei_x_encode_atom(out, "log_bytes");
        ei_x_encode_ulonglong(out, st->log_bytes);
        ei_x_encode_atom(out, "compactions");
        ei_x_encode_ulonglong(out, st->compactions);
        ei_x_encode_atom(out, "compaction_failures");
        ei_x_encode_ulonglong(out, st->compaction_failures);
        ei_x_encode_atom(out, "max_compaction_pause_ms");
        ei_x_encode_double(out, st->max_fork_ms);
        ei_x_encode_atom(out, "recovery_ms");
        ei_x_encode_double(out, st->recovery_ms);
    }
    ei_x_encode_atom(out, "entries");
    ei_x_encode_ulong(out, store_size(k->store));
    ei_x_encode_atom(out, "memory");
    ei_x_encode_ulong(out, store_bytes(k->store));
    ei_x_encode_atom(out, "messages");
    ei_x_encode_ulonglong(out, gen_server_handled(gen_server_process(self)));
    return 0;
}

GEN_CNODE_MODULE(kv,
    .init = kv_init,
    .handle_continue = kv_handle_continue,
    .handle_call = kv_handle_call,
    .handle_cast = kv_handle_cast,
    .handle_info = kv_handle_info,
    .format_state = kv_format_state,
    .format_status = kv_format_status,
    .flush = kv_flush,
    .terminate = kv_terminate)

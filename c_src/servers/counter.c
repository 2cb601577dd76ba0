/* counter.c: the counter server; see counter.h. Uses gen_cnode.h only. */
#define GEN_CNODE_STATIC /* linked into the node: no loadable entry point */
#include "counter.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Waiters kept at most, and bytes of their From (a peer chooses the tag):
 * a waiter stays until the count gets there, its caller stops or its node
 * goes, so peers could otherwise pile up memory without end. */
#define MAX_WAITERS 65536
#define MAX_WAITER_BYTES (64u << 20)

/* A caller waiting for the count to reach until. Each is monitored (the
 * reference in ref), so that one whose caller stopped (a call that timed
 * out in a process that then exited, say) goes, as the BEAM reference's
 * do; it is found by its reference in the index. */
typedef struct waiter {
    int64_t until;
    uint64_t seq;      /* order of arrival: equal targets are answered in it */
    size_t at;         /* its place in the heap */
    size_t bytes;
    gcn_caller *caller;
    size_t ref_len;    /* 0: not monitored (out of memory): it waits for its node's going */
    char ref[];
} waiter;

/* Waiters in a binary min-heap by (until, seq), so that an increment looks
 * only at those it wakes; and an open-addressing index of the monitored ones
 * by reference (the node's own references: no peer chooses them), so that a
 * DOWN finds its waiter at once. */
typedef struct counter {
    int64_t count;
    waiter **heap;
    size_t nwaiting, heap_cap, waiting_bytes;
    uint64_t next_seq;
    waiter **index;    /* NULL slots are free; TOMB ones were taken out */
    size_t index_cap;  /* a power of two */
    size_t index_used, index_live; /* slots taken: live and tombstones; live */
} counter;

static waiter tomb_mark;
#define TOMB (&tomb_mark)

static uint64_t ref_hash(const char *p, size_t len)
{
    uint64_t h = 14695981039346656037u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211u;
    return h;
}

static int same_ref(const waiter *w, const char *ref, size_t len)
{
    return w != TOMB && w->ref_len == len && memcmp(w->ref, ref, len) == 0;
}

/* The index slot holding ref's waiter, or NULL. */
static waiter **index_find(counter *c, const char *ref, size_t len)
{
    if (!c->index_cap)
        return NULL;
    size_t mask = c->index_cap - 1;
    for (size_t i = ref_hash(ref, len) & mask;; i = (i + 1) & mask) {
        if (!c->index[i])
            return NULL;
        if (same_ref(c->index[i], ref, len))
            return &c->index[i];
    }
}

static void index_put_slot(waiter **slots, size_t cap, waiter *w)
{
    size_t mask = cap - 1, i = ref_hash(w->ref, w->ref_len) & mask;
    while (slots[i] && slots[i] != TOMB)
        i = (i + 1) & mask;
    slots[i] = w;
}

/* Add w to the index. Past half full (tombstones counted) it is made again
 * without them, a quarter full at most: a rebuild comes only after as many
 * adds as there are live entries, so it costs each add O(1), however
 * waiters come and go. */
static int index_add(counter *c, waiter *w)
{
    if ((c->index_used + 1) * 2 > c->index_cap) {
        size_t cap = 64;
        while ((c->index_live + 1) * 4 > cap)
            cap *= 2;
        waiter **slots = calloc(cap, sizeof *slots);
        if (!slots)
            return -1;
        size_t used = 0;
        for (size_t i = 0; i < c->index_cap; i++)
            if (c->index[i] && c->index[i] != TOMB) {
                index_put_slot(slots, cap, c->index[i]);
                used++;
            }
        free(c->index);
        c->index = slots;
        c->index_cap = cap;
        c->index_used = used;
    }
    index_put_slot(c->index, c->index_cap, w);
    c->index_used++;
    c->index_live++;
    return 0;
}

static int before(const waiter *a, const waiter *b)
{
    return a->until < b->until || (a->until == b->until && a->seq < b->seq);
}

static void heap_set(counter *c, size_t at, waiter *w)
{
    c->heap[at] = w;
    w->at = at;
}

static void sift_up(counter *c, size_t at)
{
    waiter *w = c->heap[at];
    while (at > 0 && before(w, c->heap[(at - 1) / 2])) {
        heap_set(c, at, c->heap[(at - 1) / 2]);
        at = (at - 1) / 2;
    }
    heap_set(c, at, w);
}

static void sift_down(counter *c, size_t at)
{
    waiter *w = c->heap[at];
    for (;;) {
        size_t child = 2 * at + 1;
        if (child >= c->nwaiting)
            break;
        if (child + 1 < c->nwaiting && before(c->heap[child + 1], c->heap[child]))
            child++;
        if (!before(c->heap[child], w))
            break;
        heap_set(c, at, c->heap[child]);
        at = child;
    }
    heap_set(c, at, w);
}

static int counter_init(gcn_server *self, gcn_term arg, gcn_init *out, const char **error)
{
    (void)self;
    (void)arg;
    counter *c = calloc(1, sizeof *c);
    if (!c) {
        *error = "out_of_memory";
        return -1;
    }
    out->state = c;
    return 0;
}

/* Take w out of the index, its monitor off (self NULL: the server is
 * going, and its monitors with it), and free it; the heap is the caller's. */
static void forget(gcn_server *self, counter *c, waiter *w)
{
    if (w->ref_len) {
        waiter **slot = index_find(c, w->ref, w->ref_len);
        if (slot) {
            *slot = TOMB;
            c->index_live--;
        }
        if (self) /* (after its DOWN, it is off already: this sends nothing) */
            gcn_demonitor(self, (gcn_term){w->ref, w->ref_len});
    }
    gcn_release(w->caller);
    c->waiting_bytes -= w->bytes;
    free(w);
}

/* w out of the heap, then forgotten. */
static void drop(gcn_server *self, counter *c, waiter *w)
{
    size_t at = w->at;
    c->nwaiting--;
    if (at < c->nwaiting) {
        heap_set(c, at, c->heap[c->nwaiting]);
        sift_down(c, at);
        sift_up(c, at);
    }
    forget(self, c, w);
}

/* Answer every waiter whose target the count has reached, lowest target
 * first, and among equal ones in the order they came. */
static void wake(gcn_server *self, counter *c)
{
    gcn_buf *b = NULL;
    while (c->nwaiting && c->heap[0]->until <= c->count) {
        waiter *w = c->heap[0];
        if (!b && !(b = gcn_buf_new()))
            return; /* out of memory: they wait for the next change */
        gcn_buf_reset(b);
        if (gcn_build(b, "{ok, ~i}", c->count) == 0) {
            gcn_reply_held(self, w->caller, gcn_buf_term(b));
            w->caller = NULL; /* released by gcn_reply_held */
        }
        drop(self, c, w);
    }
    gcn_buf_free(b);
}

static enum gcn_result wait_for(gcn_server *self, counter *c, int64_t n, const gcn_from *from,
                                gcn_buf *reply)
{
    size_t bytes = from->pid.len + from->tag.len;
    if (c->nwaiting >= MAX_WAITERS || c->waiting_bytes + bytes > MAX_WAITER_BYTES) {
        gcn_build(reply, "{error, too_many_waiters}");
        return GCN_REPLY;
    }
    gcn_buf *ref = gcn_buf_new();
    if (c->nwaiting == c->heap_cap) {
        size_t cap = c->heap_cap ? c->heap_cap * 2 : 16;
        waiter **heap = realloc(c->heap, cap * sizeof *heap);
        if (heap) {
            c->heap = heap;
            c->heap_cap = cap;
        }
    }
    /* Monitored before it waits; a caller whose monitor cannot be set (out
     * of memory) still waits, and goes with its node. */
    gcn_term r = ref && gcn_monitor(self, from->pid, ref) == 0 ? gcn_buf_term(ref) : (gcn_term){NULL, 0};
    waiter *w = c->nwaiting < c->heap_cap ? malloc(sizeof *w + r.len) : NULL;
    if (w)
        w->caller = gcn_hold(from);
    if (!w || !w->caller) {
        if (r.len)
            gcn_demonitor(self, r);
        gcn_buf_free(ref);
        free(w);
        gcn_build(reply, "{error, out_of_memory}");
        return GCN_REPLY;
    }
    if (r.len)
        memcpy(w->ref, r.ptr, r.len);
    gcn_buf_free(ref);
    w->until = n;
    w->seq = c->next_seq++;
    w->bytes = bytes;
    w->ref_len = r.len;
    if (w->ref_len && index_add(c, w) < 0) {
        gcn_demonitor(self, (gcn_term){w->ref, w->ref_len}); /* not found by a DOWN: off */
        w->ref_len = 0;
    }
    c->heap[c->nwaiting++] = w;
    sift_up(c, c->nwaiting - 1);
    c->waiting_bytes += bytes;
    return GCN_NOREPLY; /* answered by wake() */
}

static enum gcn_result counter_call(gcn_server *self, void *state, gcn_term req, const gcn_from *from,
                                    gcn_buf *reply)
{
    counter *c = state;
    int64_t n;
    if (gcn_is_atom(req, "get")) {
        gcn_put_int(reply, c->count);
    } else if (gcn_is_atom(req, "reset")) {
        c->count = 0;
        gcn_put_atom(reply, "ok");
    } else if (gcn_match(req, "{wait_for, ~i}", &n)) {
        if (c->count >= n) {
            gcn_build(reply, "{ok, ~i}", c->count);
            return GCN_REPLY;
        }
        return wait_for(self, c, n, from, reply);
    } else {
        gcn_error(reply, "unknown_call", req);
    }
    return GCN_REPLY;
}

static enum gcn_result counter_cast(gcn_server *self, void *state, gcn_term req)
{
    counter *c = state;
    int64_t n, sum;
    if (gcn_is_atom(req, "incr")) {
        n = 1;
    } else if (!gcn_match(req, "{add, ~i}", &n)) {
        gcn_log(GCN_LOG_WARNING, "counter: ignoring an unknown cast");
        return GCN_NOREPLY;
    }
    if (__builtin_add_overflow(c->count, n, &sum)) {
        gcn_log(GCN_LOG_WARNING, "counter: ignoring an add that would overflow a 64-bit count");
        return GCN_NOREPLY;
    }
    c->count = sum;
    wake(self, c);
    return GCN_NOREPLY;
}

/* {'DOWN', Ref, process, Pid, Reason}: a waiting caller stopped. Its
 * monitor is taken off all the same: the DOWN may be a plain message its
 * node sent, which took nothing off. */
static enum gcn_result counter_info(gcn_server *self, void *state, gcn_term msg)
{
    counter *c = state;
    gcn_term ref, pid, reason;
    waiter **slot;
    if (gcn_match(msg, "{'DOWN', ~t, process, ~t, ~t}", &ref, &pid, &reason) &&
        (slot = index_find(c, ref.ptr, ref.len)) != NULL)
        drop(self, c, *slot);
    return GCN_NOREPLY;
}

/* The node's waiters go: the others are kept, and made a heap again. */
static void counter_node_down(gcn_server *self, void *state, const char *node, size_t len)
{
    counter *c = state;
    size_t kept = 0;
    for (size_t i = 0; i < c->nwaiting; i++) {
        waiter *w = c->heap[i];
        if (gcn_caller_on(w->caller, node, len))
            forget(self, c, w);
        else
            heap_set(c, kept++, w);
    }
    c->nwaiting = kept;
    for (size_t i = kept / 2; i-- > 0;)
        sift_down(c, i);
}

static int counter_format_state(void *state, gcn_buf *out)
{
    const counter *c = state;
    return gcn_put_int(out, c->count);
}

static int counter_format_status(gcn_server *self, void *state, gcn_buf *out)
{
    (void)self;
    const counter *c = state;
    return gcn_build(out, "#{count => ~i, waiting => ~u}", c->count, (uint64_t)c->nwaiting);
}

static void counter_terminate(void *state, gcn_term reason)
{
    (void)reason;
    counter *c = state;
    while (c->nwaiting)
        drop(NULL, c, c->heap[c->nwaiting - 1]);
    free(c->heap);
    free(c->index);
    free(c);
}

GEN_CNODE_MODULE(counter,
    .init = counter_init,
    .handle_call = counter_call,
    .handle_cast = counter_cast,
    .handle_info = counter_info,
    .format_state = counter_format_state,
    .format_status = counter_format_status,
    .node_down = counter_node_down,
    .terminate = counter_terminate)

/* store.c: hash table with incremental rehashing; see store.h. */
#include "store.h"

#include <stdlib.h>
#include <string.h>

#include "siphash.h"

#define STORE_MIN_BUCKETS 16
#define REHASH_STEPS 4 /* buckets moved per operation while rehashing */

typedef struct entry {
    struct entry *next;
    uint64_t hash;
    uint32_t klen, vlen;
    char data[]; /* key bytes, then value bytes */
} entry;

typedef struct table {
    entry **buckets;
    size_t size; /* a power of two, or 0 */
    size_t used;
} table;

struct store {
    table t[2];       /* t[1] is the new table while rehashing */
    long rehash_idx;  /* next bucket of t[0] to move, or -1 */
    size_t bytes;
    unsigned char seed[16];
};

store *store_create(const unsigned char seed[16])
{
    store *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    memcpy(s->seed, seed, sizeof s->seed);
    s->rehash_idx = -1;
    return s;
}

static void free_table(table *t)
{
    for (size_t i = 0; i < t->size; i++) {
        entry *e = t->buckets[i];
        while (e) {
            entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(t->buckets);
    *t = (table){0};
}

void store_destroy(store *s)
{
    if (!s)
        return;
    free_table(&s->t[0]);
    free_table(&s->t[1]);
    free(s);
}

size_t store_size(const store *s) { return s->t[0].used + s->t[1].used; }
size_t store_bytes(const store *s)
{
    return s->bytes + (s->t[0].size + s->t[1].size) * sizeof(entry *) + sizeof *s;
}

static size_t entry_bytes(const entry *e) { return sizeof *e + e->klen + e->vlen; }

static void rehash_step(store *s)
{
    if (s->rehash_idx < 0)
        return;
    table *from = &s->t[0], *to = &s->t[1];
    int empty_visits = REHASH_STEPS * 10;
    for (int n = 0; n < REHASH_STEPS && from->used > 0;) {
        entry *e = from->buckets[s->rehash_idx];
        if (!e) {
            s->rehash_idx++;
            if (--empty_visits == 0)
                return;
            continue;
        }
        while (e) {
            entry *next = e->next;
            size_t b = e->hash & (to->size - 1);
            e->next = to->buckets[b];
            to->buckets[b] = e;
            from->used--;
            to->used++;
            e = next;
        }
        from->buckets[s->rehash_idx++] = NULL;
        n++;
    }
    if (from->used == 0) {
        free(from->buckets);
        s->t[0] = s->t[1];
        s->t[1] = (table){0};
        s->rehash_idx = -1;
    }
}

static int start_rehash(store *s, size_t size)
{
    entry **b = calloc(size, sizeof *b);
    if (!b)
        return -1;
    if (s->t[0].size == 0) {
        s->t[0] = (table){b, size, 0};
        return 0;
    }
    s->t[1] = (table){b, size, 0};
    s->rehash_idx = 0;
    return 0;
}

/* Grow at load factor 1, shrink below 1/8; never while a rehash is under way. */
static void maybe_resize(store *s)
{
    if (s->rehash_idx >= 0)
        return;
    size_t used = s->t[0].used, size = s->t[0].size;
    if (size == 0)
        start_rehash(s, STORE_MIN_BUCKETS);
    else if (used >= size)
        start_rehash(s, size * 2);
    else if (size > STORE_MIN_BUCKETS && used < size / 8)
        start_rehash(s, size / 2);
}

static entry **find(store *s, term_view key, uint64_t h, table **in)
{
    for (int i = 0; i < 2; i++) {
        table *t = &s->t[i];
        if (t->size == 0)
            continue;
        for (entry **pe = &t->buckets[h & (t->size - 1)]; *pe; pe = &(*pe)->next) {
            entry *e = *pe;
            if (e->hash == h && e->klen == key.len && memcmp(e->data, key.ptr, key.len) == 0) {
                *in = t;
                return pe;
            }
        }
        if (s->rehash_idx < 0)
            break;
    }
    return NULL;
}

int store_put(store *s, term_view key, term_view value)
{
    if (key.len > UINT32_MAX || value.len > UINT32_MAX)
        return -1;
    rehash_step(s);
    uint64_t h = siphash(s->seed, key.ptr, key.len);
    table *t;
    entry **pe = find(s, key, h, &t);
    if (pe) {
        entry *old = *pe;
        if (old->vlen != value.len) {
            entry *e = realloc(old, sizeof *e + key.len + value.len);
            if (!e)
                return -1;
            s->bytes = s->bytes - entry_bytes(e) + sizeof *e + key.len + value.len;
            e->vlen = (uint32_t)value.len;
            *pe = e;
            old = e;
        }
        memcpy(old->data + old->klen, value.ptr, value.len);
        return 0;
    }
    maybe_resize(s);
    entry *e = malloc(sizeof *e + key.len + value.len);
    if (!e)
        return -1;
    e->hash = h;
    e->klen = (uint32_t)key.len;
    e->vlen = (uint32_t)value.len;
    memcpy(e->data, key.ptr, key.len);
    memcpy(e->data + key.len, value.ptr, value.len);
    t = s->rehash_idx >= 0 ? &s->t[1] : &s->t[0];
    if (t->size == 0) { /* a failed first allocation of buckets */
        free(e);
        return -1;
    }
    size_t b = h & (t->size - 1);
    e->next = t->buckets[b];
    t->buckets[b] = e;
    t->used++;
    s->bytes += entry_bytes(e);
    return 0;
}

int store_get(store *s, term_view key, term_view *value)
{
    rehash_step(s);
    table *t;
    entry **pe = find(s, key, siphash(s->seed, key.ptr, key.len), &t);
    if (!pe)
        return 0;
    *value = (term_view){(*pe)->data + (*pe)->klen, (*pe)->vlen};
    return 1;
}

int store_delete(store *s, term_view key)
{
    rehash_step(s);
    table *t;
    entry **pe = find(s, key, siphash(s->seed, key.ptr, key.len), &t);
    if (!pe)
        return 0;
    entry *e = *pe;
    *pe = e->next;
    t->used--;
    s->bytes -= entry_bytes(e);
    free(e);
    maybe_resize(s);
    return 1;
}

void store_iter_init(store_iter *it) { *it = (store_iter){0, 0, NULL}; }

int store_next(const store *s, store_iter *it, term_view *key, term_view *value)
{
    entry *e = it->entry ? ((entry *)it->entry)->next : NULL;
    if (!e && it->entry)
        it->bucket++;
    while (!e) {
        if (it->table >= 2)
            return 0;
        const table *t = &s->t[it->table];
        if (it->bucket >= t->size) {
            it->table++;
            it->bucket = 0;
            continue;
        }
        e = t->buckets[it->bucket];
        if (!e)
            it->bucket++;
    }
    it->entry = e;
    *key = (term_view){e->data, e->klen};
    *value = (term_view){e->data + e->klen, e->vlen};
    return 1;
}

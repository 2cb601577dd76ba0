/* monitor_link.c: monitors and links, indexed and listed; see monitor_link.h. */
#include "monitor_link.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "siphash.h"

#define ML_INLINE 160          /* bytes of parts kept inside the record */
#define ML_MIN_BUCKETS 64
#define ML_MAX_FREE 4096       /* records kept for reuse */

struct ml_record {
    ml_record *chain;          /* the next in its hash bucket */
    ml_record *prev, *next;    /* its owner's list */
    ml_group *group;           /* the group it is in, or NULL */
    ml_record *gprev, *gnext;  /* that group's list */
    uint64_t hash;
    uint32_t owner;
    uint8_t kind, nparts, fired;
    uint32_t len[ML_MAX_PARTS];
    char *bytes;               /* the parts, one after another */
    char inline_bytes[ML_INLINE];
};

struct ml_index {
    ml_record **buckets;
    size_t nbuckets;           /* a power of two */
    size_t count;
    unsigned char key[16];
    ml_record *free;
    size_t nfree;
    uint64_t probes;
};

ml_index *ml_index_create(void)
{
    ml_index *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->nbuckets = ML_MIN_BUCKETS;
    x->buckets = calloc(x->nbuckets, sizeof *x->buckets);
    if (!x->buckets || getrandom(x->key, sizeof x->key, 0) != (ssize_t)sizeof x->key) {
        free(x->buckets);
        free(x);
        return NULL;
    }
    return x;
}

static void free_record(ml_record *r)
{
    if (r->bytes != r->inline_bytes)
        free(r->bytes);
    free(r);
}

void ml_index_destroy(ml_index *x)
{
    if (!x)
        return;
    for (size_t b = 0; b < x->nbuckets; b++)
        while (x->buckets[b]) {
            ml_record *r = x->buckets[b];
            x->buckets[b] = r->chain;
            free_record(r);
        }
    while (x->free) {
        ml_record *r = x->free;
        x->free = r->chain;
        free_record(r);
    }
    free(x->buckets);
    free(x);
}

size_t ml_index_count(const ml_index *x) { return x->count; }
uint64_t ml_index_probes(const ml_index *x) { return x->probes; }

/* SipHash of the key, then owner and kind mixed into every bit (the
 * finaliser of MurmurHash3, a bijection): the same key on many processes
 * spreads over the whole table too. */
static uint64_t hash_of(const ml_index *x, uint32_t owner, enum ml_kind kind, term_view key)
{
    uint64_t h = siphash(x->key, key.ptr, key.len) ^ ((uint64_t)owner << 8 | (uint64_t)kind);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

static void resize(ml_index *x, size_t n);

static int same_key(const ml_record *r, uint32_t owner, enum ml_kind kind, term_view key)
{
    return r->owner == owner && r->kind == kind && r->len[0] == key.len &&
           memcmp(r->bytes, key.ptr, key.len) == 0;
}

static int same(const ml_record *r, uint64_t h, uint32_t owner, enum ml_kind kind, term_view key)
{
    return r->hash == h && same_key(r, owner, kind, key);
}

static void insert(ml_index *x, ml_record *r)
{
    if (x->count > x->nbuckets)
        resize(x, x->nbuckets * 2);
    ml_record **bucket = &x->buckets[r->hash & (x->nbuckets - 1)];
    r->chain = *bucket;
    *bucket = r;
}

/* Put list's unhashed record into the table: a second record joins the
 * list. It cannot be a duplicate: it came to an empty list, and none came
 * after it unhashed. */
static void hash_unhashed(ml_index *x, ml_list *list)
{
    ml_record *r = list->unhashed;
    list->unhashed = NULL;
    r->hash = hash_of(x, r->owner, (enum ml_kind)r->kind, (term_view){r->bytes, r->len[0]});
    insert(x, r);
}

/* Move every record into a table of n buckets (at once: amortised O(1) per
 * record, as the table only doubles or quarters). */
static void resize(ml_index *x, size_t n)
{
    ml_record **b = calloc(n, sizeof *b);
    if (!b)
        return; /* keep the old table: slower, still correct */
    for (size_t i = 0; i < x->nbuckets; i++)
        while (x->buckets[i]) {
            ml_record *r = x->buckets[i];
            x->buckets[i] = r->chain;
            r->chain = b[r->hash & (n - 1)];
            b[r->hash & (n - 1)] = r;
        }
    free(x->buckets);
    x->buckets = b;
    x->nbuckets = n;
}

ml_record *ml_add(ml_index *x, ml_list *list, uint32_t owner, enum ml_kind kind, int nparts,
                  const term_view *parts, int *added)
{
    size_t need = 0;
    uint64_t h = 0;
    *added = 0;
    if (nparts < 1 || nparts > ML_MAX_PARTS)
        return NULL;
    if (list->unhashed) {
        if (same_key(list->unhashed, owner, kind, parts[0]))
            return list->unhashed;
        hash_unhashed(x, list);
    }
    int defer = list->head == NULL; /* nothing to be a duplicate of */
    if (!defer) {
        h = hash_of(x, owner, kind, parts[0]);
        for (ml_record *r = x->buckets[h & (x->nbuckets - 1)]; r; r = r->chain) {
            x->probes++;
            if (same(r, h, owner, kind, parts[0]))
                return r; /* one record a key: a duplicate cannot make a chain long */
        }
    }
    for (int i = 0; i < nparts; i++) {
        if (parts[i].len > UINT32_MAX || need > SIZE_MAX - parts[i].len)
            return NULL;
        need += parts[i].len;
    }
    ml_record *r = x->free;
    if (r) {
        x->free = r->chain;
        x->nfree--;
    } else if (!(r = malloc(sizeof *r))) {
        return NULL;
    }
    r->bytes = need <= ML_INLINE ? r->inline_bytes : malloc(need);
    if (!r->bytes) {
        free(r);
        return NULL;
    }
    size_t at = 0;
    for (int i = 0; i < nparts; i++) {
        if (parts[i].len)
            memcpy(r->bytes + at, parts[i].ptr, parts[i].len);
        r->len[i] = (uint32_t)parts[i].len;
        at += parts[i].len;
    }
    r->nparts = (uint8_t)nparts;
    r->owner = owner;
    r->kind = (uint8_t)kind;
    r->fired = 0;
    r->group = NULL;
    r->hash = h;
    *added = 1;
    x->count++;
    if (defer) {
        r->chain = NULL;
        list->unhashed = r;
    } else {
        insert(x, r);
    }
    r->prev = NULL;
    r->next = list->head;
    if (list->head)
        list->head->prev = r;
    list->head = r;
    list->count++;
    return r;
}

ml_record *ml_find(ml_index *x, const ml_list *list, uint32_t owner, enum ml_kind kind,
                   term_view key)
{
    if (!list->head)
        return NULL;
    if (same_key(list->head, owner, kind, key))
        return list->head;
    if (list->count == 1)
        return NULL; /* the head was the only one (an unhashed record always is) */
    uint64_t h = hash_of(x, owner, kind, key);
    for (ml_record *r = x->buckets[h & (x->nbuckets - 1)]; r; r = r->chain) {
        x->probes++;
        if (same(r, h, owner, kind, key))
            return r;
    }
    return NULL;
}

void ml_remove(ml_index *x, ml_list *list, ml_record *r)
{
    if (r == list->unhashed) /* not in the table */
        list->unhashed = NULL;
    else
        for (ml_record **p = &x->buckets[r->hash & (x->nbuckets - 1)]; *p; p = &(*p)->chain) {
            x->probes++;
            if (*p == r) {
                *p = r->chain;
                break;
            }
        }
    x->count--;
    ml_group_leave(r);
    if (r->prev)
        r->prev->next = r->next;
    else
        list->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    list->count--;
    if (r->bytes != r->inline_bytes)
        free(r->bytes);
    r->bytes = r->inline_bytes;
    if (x->nfree < ML_MAX_FREE) {
        r->chain = x->free;
        x->free = r;
        x->nfree++;
    } else {
        free(r);
    }
    if (x->nbuckets > ML_MIN_BUCKETS && x->count < x->nbuckets / 8)
        resize(x, x->nbuckets / 4);
}

int ml_fired(const ml_record *r) { return r->fired; }
void ml_set_fired(ml_record *r) { r->fired = 1; }

term_view ml_part(const ml_record *r, int i)
{
    size_t at = 0;
    if (i < 0 || i >= r->nparts)
        return (term_view){NULL, 0};
    for (int k = 0; k < i; k++)
        at += r->len[k];
    return (term_view){r->bytes + at, r->len[i]};
}

ml_record *ml_next(const ml_record *r) { return r->next; }

void ml_group_join(ml_group *g, ml_record *r)
{
    r->group = g;
    r->gprev = NULL;
    r->gnext = g->head;
    if (g->head)
        g->head->gprev = r;
    g->head = r;
    g->count++;
}

void ml_group_leave(ml_record *r)
{
    if (!r->group)
        return;
    if (r->gprev)
        r->gprev->gnext = r->gnext;
    else
        r->group->head = r->gnext;
    if (r->gnext)
        r->gnext->gprev = r->gprev;
    r->group->count--;
    r->group = NULL;
}

ml_record *ml_group_next(const ml_record *r) { return r->gnext; }
ml_record *ml_group_prev(const ml_record *r) { return r->gprev; }

enum ml_kind ml_kind_of(const ml_record *r) { return (enum ml_kind)r->kind; }

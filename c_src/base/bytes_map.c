/* bytes_map.c: chained hashing under SipHash; see bytes_map.h. */
#include "bytes_map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "siphash.h"

typedef struct entry {
    struct entry *next;
    uint64_t hash;
    void *value;
    size_t len;
    unsigned char key[]; /* len bytes */
} entry;

struct bytes_map {
    entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
    unsigned char seed[16];
};

#define FIRST_BUCKETS 16

bytes_map *bytes_map_create(void)
{
    bytes_map *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->nbuckets = FIRST_BUCKETS;
    m->buckets = calloc(m->nbuckets, sizeof *m->buckets);
    if (!m->buckets || getrandom(m->seed, sizeof m->seed, 0) != (ssize_t)sizeof m->seed) {
        free(m->buckets);
        free(m);
        return NULL;
    }
    return m;
}

void bytes_map_destroy(bytes_map *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nbuckets; i++)
        for (entry *e = m->buckets[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    free(m->buckets);
    free(m);
}

size_t bytes_map_count(const bytes_map *m) { return m->count; }

/* The link that points at key's entry, or at the NULL ending its chain. */
static entry **slot(const bytes_map *m, const void *key, size_t len, uint64_t h)
{
    entry **at = &m->buckets[h & (m->nbuckets - 1)];
    while (*at && !((*at)->hash == h && (*at)->len == len && memcmp((*at)->key, key, len) == 0))
        at = &(*at)->next;
    return at;
}

void *bytes_map_get(const bytes_map *m, const void *key, size_t len)
{
    entry *e = *slot(m, key, len, siphash(m->seed, key, len));
    return e ? e->value : NULL;
}

void **bytes_map_at(bytes_map *m, const void *key, size_t len)
{
    entry *e = *slot(m, key, len, siphash(m->seed, key, len));
    return e ? &e->value : NULL;
}

/* Twice the buckets; left as it is when out of memory (chains grow longer). */
static void grow(bytes_map *m)
{
    if (m->nbuckets > SIZE_MAX / 2 / sizeof *m->buckets)
        return;
    size_t n = m->nbuckets * 2;
    entry **b = calloc(n, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < m->nbuckets; i++)
        for (entry *e = m->buckets[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

int bytes_map_put(bytes_map *m, const void *key, size_t len, void *value)
{
    if (len > SIZE_MAX - sizeof(entry))
        return -1;
    entry *e = malloc(sizeof *e + len);
    if (!e)
        return -1;
    e->hash = siphash(m->seed, key, len);
    e->value = value;
    e->len = len;
    if (len)
        memcpy(e->key, key, len);
    if (m->count >= m->nbuckets)
        grow(m);
    entry **at = &m->buckets[e->hash & (m->nbuckets - 1)];
    e->next = *at;
    *at = e;
    m->count++;
    return 0;
}

void *bytes_map_remove(bytes_map *m, const void *key, size_t len)
{
    entry **at = slot(m, key, len, siphash(m->seed, key, len));
    entry *e = *at;
    if (!e)
        return NULL;
    *at = e->next;
    void *value = e->value;
    free(e);
    m->count--;
    return value;
}

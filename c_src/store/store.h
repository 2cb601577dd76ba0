/*
 * store.h: the table behind the KeyValue server. Keys are canonical term
 * bytes (term.h), so byte equality is Erlang's =:=; values are encoded terms
 * kept exactly as the peer sent them. Hashing is SipHash with a per-start
 * random key, so a peer cannot choose keys that all collide. The table grows
 * and shrinks incrementally (a few buckets move on every operation, as in
 * Redis's dict.c), so no single put stalls while it doubles. One allocation
 * per entry holds key and value together.
 *
 * This file knows nothing of the network, processes or gen_server.
 */
#ifndef GEN_CNODE_STORE_H
#define GEN_CNODE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "term.h"

typedef struct store store;

typedef struct store_iter {
    int table;
    size_t bucket;
    void *entry;
} store_iter;

store *store_create(const unsigned char seed[16]);
void store_destroy(store *s);

/* Insert or replace; key and value are copied. 0, or -1 when out of memory
 * (the old value, if any, is then kept). */
int store_put(store *s, term_view key, term_view value);
/* 1 and *value (valid until the next change to the store) if present, else 0. */
int store_get(store *s, term_view key, term_view *value);
/* 1 if key was there and is now gone, else 0. */
int store_delete(store *s, term_view key);
size_t store_size(const store *s);
/* Bytes held by entries and buckets (what malloc was asked for). */
size_t store_bytes(const store *s);

/* Walk every entry: start with store_iter_init, then store_next until it
 * returns 0. The store must not change during the walk. */
void store_iter_init(store_iter *it);
int store_next(const store *s, store_iter *it, term_view *key, term_view *value);

#endif

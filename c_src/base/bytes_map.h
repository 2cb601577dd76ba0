/*
 * bytes_map.h: a hash table from byte strings to pointers, for tables whose
 * keys a peer chooses (a pg scope's groups and members, say). Keys are
 * copied in; values are the caller's, never freed here. Lookups, inserts and
 * removals take expected O(1): the table doubles as it fills, and SipHash
 * under a key drawn at random when the table is made keeps a peer from
 * aiming keys at one bucket. One thread.
 */
#ifndef GEN_CNODE_BYTES_MAP_H
#define GEN_CNODE_BYTES_MAP_H

#include <stddef.h>

typedef struct bytes_map bytes_map;

/* NULL when out of memory (or no random key). */
bytes_map *bytes_map_create(void);
/* Frees the table and its copies of the keys, not the values. NULL: nothing. */
void bytes_map_destroy(bytes_map *m);
size_t bytes_map_count(const bytes_map *m);

/* The value under key, or NULL. */
void *bytes_map_get(const bytes_map *m, const void *key, size_t len);
/* Where the value under key is, to change it in place (not to NULL); NULL
 * when key is not in the table. Valid until the table changes. */
void **bytes_map_at(bytes_map *m, const void *key, size_t len);
/* Put value (not NULL) under key, which must not be in the table: 0, or -1
 * when out of memory (the table is as it was). */
int bytes_map_put(bytes_map *m, const void *key, size_t len, void *value);
/* Take key out: its value, or NULL when it was not in the table. */
void *bytes_map_remove(bytes_map *m, const void *key, size_t len);

#endif

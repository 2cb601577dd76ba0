/*
 * monitor_link.h: the monitors and links held by this node's processes, as
 * ERTS keeps them beside its processes (erl_monitor_link.c). Each record
 * belongs to one process (its number), has a kind and a key, and carries a
 * few encoded terms:
 *   a monitor of process P: key the monitor's reference; then the watcher's
 *                           pid and how the watcher named P (pid or atom);
 *   a link of process P:    key the linked process's pid;
 *   a watch by process P:   key the reference of a monitor P set on another
 *                           process (gcn_monitor); then that process's pid.
 * Records are found by (process, kind, key) in one hash table in expected
 * O(1), however many a peer sets up, and each process lists its own records
 * (for DOWN and EXIT when it stops, and for a node that goes away).
 * Hashing is SipHash under a random key, so a peer cannot aim keys at one
 * bucket.
 *
 * A record added to an empty list is not hashed at once: no other record of
 * its (process, kind) exists, so it cannot be a duplicate, and it is found
 * through its list. It is hashed into the table when a second record joins
 * that list. So the monitor of a gen_server:call, set and removed while its
 * server has no other, costs no hash at all.
 *
 * It knows encoded bytes only: nothing of processes beyond their numbers,
 * nor of nodes or connections.
 */
#ifndef GEN_CNODE_MONITOR_LINK_H
#define GEN_CNODE_MONITOR_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "term.h"

enum ml_kind { ML_MONITOR = 1, ML_LINK = 2, ML_WATCH = 3 };

#define ML_MAX_PARTS 3

typedef struct ml_record ml_record;

/* A process's records of one kind, newest first: every record of one
 * (owner, kind) is in one list, and every call below that takes a list and
 * an owner and kind takes that one. */
typedef struct ml_list {
    ml_record *head;
    size_t count;
    ml_record *unhashed; /* the list's only record, not in the table yet (above) */
} ml_list;

typedef struct ml_index ml_index;

ml_index *ml_index_create(void);
/* Frees x. Its records go first, through their lists (ml_remove): it can
 * free only those in the table. */
void ml_index_destroy(ml_index *x);
size_t ml_index_count(const ml_index *x);

/* The record of (owner, kind, parts[0]): the one there is (*added 0), or a
 * new one added to list with the parts copied (*added 1). One record a key,
 * so that no key, however often a peer repeats it, makes a chain long.
 * NULL when out of memory. */
ml_record *ml_add(ml_index *x, ml_list *list, uint32_t owner, enum ml_kind kind, int nparts,
                  const term_view *parts, int *added);
/* The record of (owner, kind, key), or NULL. The newest of list is
 * compared first, without hashing (a caller's demonitor follows its
 * monitor, one call later). */
ml_record *ml_find(ml_index *x, const ml_list *list, uint32_t owner, enum ml_kind kind,
                   term_view key);
/* Take r out of the index and of list, and free it. */
void ml_remove(ml_index *x, ml_list *list, ml_record *r);

/* Part i of r (0 is the key). */
term_view ml_part(const ml_record *r, int i);
/* A mark the owner may set on a record: a watch whose DOWN is on its way
 * (process.c). A new record is not marked. */
int ml_fired(const ml_record *r);
void ml_set_fired(ml_record *r);
/* The next record in r's list, or NULL. */
ml_record *ml_next(const ml_record *r);

/* A group of records of any kinds and owners, beside their lists (process.c
 * groups a process's records by node: what a node's going concerns is
 * found without walking the rest). A record is in one group at most, and
 * leaves it when it is removed; a group is its first record and a count.
 * The group must outlive its records' membership (its address is kept). */
typedef struct ml_group {
    ml_record *head;
    size_t count;
} ml_group;

/* r, in no group, joins g, as its first. */
void ml_group_join(ml_group *g, ml_record *r);
/* r leaves its group, if it is in one. */
void ml_group_leave(ml_record *r);
/* The record after r in its group (older), or before it (newer); NULL at
 * either end. */
ml_record *ml_group_next(const ml_record *r);
ml_record *ml_group_prev(const ml_record *r);
enum ml_kind ml_kind_of(const ml_record *r);

/* Records looked at in hash chains (adding, finding, removing) since the
 * index was created: the work these cost, for tests that hold it to O(1). */
uint64_t ml_index_probes(const ml_index *x);

#endif

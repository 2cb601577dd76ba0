/*
 * timer_heap.h: the pending timers of the event loop, as a binary min-heap
 * on (deadline, order of adding), with a slot table that maps a timer's id to
 * its place in the heap. It owns its arrays and nothing else: the payloads
 * are the caller's, handed back when a timer pops or is cancelled, never
 * looked at or freed here. It knows no clock: deadlines are plain numbers
 * (milliseconds in the names below, but any unit on any clock the caller
 * keeps) and "now" is passed in. Not thread-safe: one thread, the loop's.
 *
 * An id packs a slot index (low 32 bits) and that slot's generation (high 32
 * bits, odd while the timer is pending). A slot is reused for later timers
 * with a new generation, so an id once fired or cancelled never names
 * another timer: cancelling it is a harmless 0. Costs: add, cancel and pop
 * O(log n) comparisons; id to heap position O(1). Memory grows by doubling
 * and shrinks back by halving once a quarter or less is in use, so a burst of
 * a million timers is given back after it has gone. (The slot table shrinks
 * down to its highest slot still pending: the lower half of the table is
 * reused first, so that its upper half drains as timers come and go; a timer
 * that stays pending pins its slot, 16 bytes a slot below it.)
 */
#ifndef GEN_CNODE_TIMER_HEAP_H
#define GEN_CNODE_TIMER_HEAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct timer_heap timer_heap;

/* NULL when out of memory. */
timer_heap *timer_heap_create(void);
/* Payloads are the caller's: pop or cancel them first, or use timer_heap_pop_any. */
void timer_heap_destroy(timer_heap *h);

/* A timer due at deadline. Returns its id (nonzero), or 0 when out of
 * memory (or out of ids: 2^31 timers through one slot, never in practice). */
uint64_t timer_heap_add(timer_heap *h, uint64_t deadline, void *payload);
/* 1 and its payload (if payload is not NULL) when the timer is pending, now
 * removed; 0 when it already fired, was cancelled or never existed. */
int timer_heap_cancel(timer_heap *h, uint64_t id, void **payload);
/* The payload of a pending timer, NULL when the id names none (or the
 * payload is NULL): a look without cancelling. */
void *timer_heap_payload(const timer_heap *h, uint64_t id);
/* 1 and the earliest deadline, 0 when no timer is pending. */
int timer_heap_next(const timer_heap *h, uint64_t *deadline);
/* 1, and the earliest timer removed, when its deadline is <= now; else 0.
 * Equal deadlines pop in the order they were added. id and payload may be NULL. */
int timer_heap_pop_due(timer_heap *h, uint64_t now, uint64_t *id, void **payload);
/* 1 and the earliest timer whatever its deadline, 0 when empty: for teardown. */
int timer_heap_pop_any(timer_heap *h, uint64_t *id, void **payload);
size_t timer_heap_size(const timer_heap *h);

/* For tests and stats: bytes held (the struct and both arrays), and the
 * comparisons plus moves of heap entries made since creation. */
size_t timer_heap_memory(const timer_heap *h);
uint64_t timer_heap_steps(const timer_heap *h);

#endif

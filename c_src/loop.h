/*
 * loop.h: the event loop. One thread, one epoll set, callbacks per file
 * descriptor, and one periodic timer. It knows nothing of what runs on it
 * (after Redis's ae.c).
 */
#ifndef GEN_CNODE_LOOP_H
#define GEN_CNODE_LOOP_H

#define LOOP_READ  1
#define LOOP_WRITE 2

typedef struct loop loop;
typedef void loop_fd_fn(loop *l, int fd, int events, void *data);
typedef void loop_timer_fn(loop *l, void *data);
/* Returns nonzero when the turn sent something a peer is likely to answer at
 * once (a reply to a call, say): the cue to busy-poll, see loop_spin. */
typedef int loop_turn_fn(loop *l, void *data);

loop *loop_create(void);
void loop_destroy(loop *l);

/* Watch fd for the events in mask (LOOP_READ|LOOP_WRITE); replaces any earlier watch. */
int loop_watch(loop *l, int fd, int mask, loop_fd_fn *fn, void *data);
void loop_unwatch(loop *l, int fd);

/* Call fn every interval_ms (roughly: it runs between turns). */
void loop_every(loop *l, int interval_ms, loop_timer_fn *fn, void *data);

/* Call fn at the end of every turn, after all ready descriptors were served:
 * the place to flush what the turn produced, with one write per connection. */
void loop_after_turn(loop *l, loop_turn_fn *fn, void *data);

/* Run until loop_stop is called. Returns 0, or -1 if epoll failed. */
int loop_run(loop *l);
void loop_stop(loop *l);

/* After a turn whose turn function returned nonzero, keep polling without
 * sleeping for usec microseconds before blocking, yielding the core to
 * anything else runnable on each round (0: never spin). A peer that sends one
 * request at a time is then read without the cost of sleeping and waking;
 * one-way streams (casts) are not spun on, so their sender keeps the CPU. */
void loop_spin(loop *l, int usec);

#endif

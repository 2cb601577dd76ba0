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
typedef void loop_turn_fn(loop *l, void *data);

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

#endif

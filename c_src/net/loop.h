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
/* What a turn function returns: LOOP_TURN_SENT when the turn sent something a
 * peer is likely to answer at once (a reply to a call, say): the cue to
 * busy-poll, see loop_spin; LOOP_TURN_MORE when work is left for the next
 * turn, which then does not wait. */
#define LOOP_TURN_SENT 1
#define LOOP_TURN_MORE 2
typedef int loop_turn_fn(loop *l, void *data);

loop *loop_create(void);
void loop_destroy(loop *l);

/* Watch fd for the events in mask (LOOP_READ|LOOP_WRITE); replaces any earlier watch. */
int loop_watch(loop *l, int fd, int mask, loop_fd_fn *fn, void *data);
void loop_unwatch(loop *l, int fd);

/* Call fn every interval_ms (roughly: it runs between turns). */
void loop_every(loop *l, int interval_ms, loop_timer_fn *fn, void *data);

/* Wake up by this time (CLOCK_MONOTONIC, µs) even if no descriptor is
 * ready, so the turn function can run what is due (0: no such time). The
 * turn function sets it anew each turn; a wait is rounded up to whole ms,
 * never down, so nothing is run early. */
void loop_wake_at(loop *l, unsigned long long due_us);

/* Call fn at the end of every turn, after all ready descriptors and the
 * timer were served: the place to finish what the turn started (teardown
 * included: no descriptor callback is on the stack then) and to flush what
 * it produced, with one write per connection. */
void loop_after_turn(loop *l, loop_turn_fn *fn, void *data);

/* One turn: wait at most max_wait_ms (-1: as long as nothing is due) for
 * descriptors, serve them, the timer if due, then the turn function.
 * Returns 0, or -1 if epoll failed. */
int loop_once(loop *l, int max_wait_ms);
/* The clock (CLOCK_MONOTONIC, ns) when this turn's wait ended: what the
 * turn's callbacks count from, rather than reading the clock each (a turn is
 * microseconds long; timers and timeouts are rounded to more than that).
 * Before the first turn, the clock now. */
long long loop_now_ns(const loop *l);
/* Run turns until loop_stop is called. Returns 0, or -1 if epoll failed. */
int loop_run(loop *l);
void loop_stop(loop *l);

/* After a turn whose turn function returned nonzero, keep polling without
 * sleeping for usec microseconds before blocking, yielding the core to
 * anything else runnable (every round while something else wants the core,
 * every other round while nothing does; 0: never spin). A peer that sends one
 * request at a time is then read without the cost of sleeping and waking;
 * one-way streams (casts) are not spun on, so their sender keeps the CPU. */
void loop_spin(loop *l, int usec);
/* The same, but polling only while it measurably shortens the time from an
 * answer to the next request (busy_poll.h), usec being the window then. */
void loop_spin_auto(loop *l, int usec);
/* While a one-way stream (casts) keeps input waiting turn after turn, sleep
 * on the clock for usec microseconds before each look for input instead of
 * waiting on the descriptors (0: never). What arrives meanwhile is then read
 * and served together: one read for many messages, and a sender whose sends
 * wake nobody. It ends with the first sleep that finds nothing, or a turn
 * that answers a call; a message waits at most about usec longer than it
 * would have, and request-response traffic never coalesces (loop.c).
 * Sleeping replaces busy-polling while it lasts. */
void loop_coalesce(loop *l, int usec);
/* Waits so far that slept on the clock (loop_coalesce), and whether the loop
 * coalesces now. */
unsigned long loop_coalesced(const loop *l);
int loop_coalescing(const loop *l);
int loop_coalesce_window_us(const loop *l);
struct busy_poll;
const struct busy_poll *loop_busy_poll(const loop *l);
/* Rounds so far that polled instead of sleeping (busy-polling at work). */
unsigned long loop_spin_rounds(const loop *l);

#endif

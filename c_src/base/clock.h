/*
 * clock.h: the node's one clock, CLOCK_MONOTONIC, in the units its parts
 * count in (the loop in ns, timers in µs, ticks in ms). Nothing else.
 */
#ifndef GEN_CNODE_CLOCK_H
#define GEN_CNODE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline long long clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline uint64_t clock_us(void) { return (uint64_t)clock_ns() / 1000; }
static inline long long clock_ms(void) { return clock_ns() / 1000000; }

#endif

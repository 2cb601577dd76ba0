/*
 * counter.h: a second, small server on the same engine, written only against
 * the public header gen_cnode.h, as any loadable module is: a counter whose {wait_for, N} call is answered later, when the
 * count reaches N (the GenServer.reply/2 pattern).
 *   cast incr | {add, N}    add 1 or N (an add past a 64-bit count is refused, logged)
 *   call get                the count
 *   call {wait_for, N}      {ok, Count} once Count >= N; {error, too_many_waiters}
 *                           past 65,536 waiting (or 64 MiB of their From terms).
 *                           The caller is monitored: its waiter goes when it stops.
 *   call reset              ok; the count is 0 (waiters keep waiting)
 * :sys.get_state shows the count.
 */
#ifndef GEN_CNODE_COUNTER_H
#define GEN_CNODE_COUNTER_H

#include "gen_cnode.h"

extern const gcn_module gcn_module_counter;

#endif

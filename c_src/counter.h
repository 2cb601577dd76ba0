/*
 * counter.h: a second, small server on the same engine, written only against
 * gen_server.h: a counter whose {wait_for, N} call is answered later, when the
 * count reaches N (the GenServer.reply/2 pattern).
 *   cast incr | {add, N}    add 1 or N (an add past a 64-bit count is refused, logged)
 *   call get                the count
 *   call {wait_for, N}      {ok, Count} once Count >= N
 *   call reset              ok; the count is 0 (waiters keep waiting)
 * :sys.get_state shows the count.
 */
#ifndef GEN_CNODE_COUNTER_H
#define GEN_CNODE_COUNTER_H

#include "gen_server.h"

extern const gen_server_callbacks counter_callbacks;

#endif

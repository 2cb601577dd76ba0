/*
 * kv.h: the KeyValue server's callbacks for the gen_server engine. The only
 * file that knows put and get. Requests (keys and values are any terms; keys
 * are the same key exactly when =:= says so):
 *   cast {put, K, V}        store V under K
 *   cast {delete, K}        remove K
 *   call {get, K}           V, or nil when absent
 *   call {fetch, K}         {ok, V} | error
 *   call {put, K, V}        ok (the call form of the cast)
 *   call {delete, K}        ok
 *   call size               number of entries
 *   call keys               list of keys, in no particular order
 *   anything else (call)    {error, {unknown_call, Request}}
 * :sys.get_state shows the store as an ordinary map. Started by the node's
 * starter, it takes [] or #{preload => Map, trap_exit => Bool}: preload is
 * stored in handle_continue, before any message is handled.
 */
#ifndef GEN_CNODE_KV_H
#define GEN_CNODE_KV_H

#include "gen_server.h"

typedef struct kv_options {
    unsigned max_depth; /* deepest key accepted for canonicalisation */
} kv_options;

extern const gen_server_callbacks kv_callbacks;

#endif

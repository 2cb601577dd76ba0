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
 *   call keys               list of keys, in no particular order ({error,
 *                           {keys, too_large}} past 2 GiB of keys)
 *   call {put_sync, K, V}   ok once the change is on disk (fsynced unless the
 *                           policy is no); ok at once without --data-dir
 *   call sync               ok once every change so far is on disk
 *   call compact            ok: a compaction has started (or {error, {compact,
 *                           already_running | not_durable | failed}})
 * A put of a new key when the store holds max_entries is refused: a call gets
 * {error, store_full}, a cast is logged and dropped. So is a change while
 * the disk takes nothing and DURABLE_MAX_UNWRITTEN bytes wait for it: a
 * call gets {error, {disk, Why}}.
 *   anything else (call)    {error, {unknown_call, Request}}
 * Callers waiting for the disk are answered in the order they asked, and a
 * reply that runs out of memory is {error, out_of_memory} (the server goes
 * on). :sys.get_state shows the store as an ordinary map. Started by the node's
 * starter, it takes [] or #{preload => Map, trap_exit => Bool}: preload is
 * stored in handle_continue, before any message is handled. With
 * --data-dir, the one registered under --register's name is durable (the
 * one started at boot, or one started again under that name after it
 * stopped: the store is reopened); every other is memory only.
 */
#ifndef GEN_CNODE_KV_H
#define GEN_CNODE_KV_H

#include "durable.h"
#include "gen_server.h"

typedef struct kv_options {
    unsigned max_depth;     /* deepest key accepted for canonicalisation */
    size_t max_entries;     /* 0: no limit; a put of a new key beyond it is refused */
    const char *data_dir;   /* NULL: memory only; else the server registered as
                               name is durable (durable.h), every other memory only */
    const char *name;       /* the files' name in data_dir */
    fsync_policy fsync;
    uint64_t compact_min;   /* log bytes from which compaction starts by itself */
} kv_options;

extern const gcn_module gcn_module_kv;

#endif

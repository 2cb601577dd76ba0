/*
 * module_table.h: the server modules a node knows by name, as the starter
 * starts them: the bundled ones (kv, counter), those linked into a binary of
 * one's own (gen_cnode_main) and those loaded from shared objects (--load).
 * All go through module_table_add, so a bundled module has no path of its own.
 *
 * Loading a shared object: dlopen it, find gen_cnode_module() (what
 * GEN_CNODE_MODULE defines), check the API major version (the first fields of
 * gcn_module never move, so any version can be read), refuse a name already
 * known, run the module's load. Any failure is one message in err and
 * nothing kept. Modules are unloaded (unload, then dlclose) only by
 * module_table_destroy, once every server and job of the node is gone.
 */
#ifndef GEN_CNODE_MODULE_TABLE_H
#define GEN_CNODE_MODULE_TABLE_H

#include <stddef.h>

#include "gen_cnode.h"

typedef struct module_table module_table;

module_table *module_table_create(void);
/* Add a module linked into the binary. priv is what its servers' gcn_priv
 * gives when it has no load function; with one, load(args, &priv) decides.
 * 0, or -1 with a reason in err. */
int module_table_add(module_table *mt, const gcn_module *m, void *priv, const char *args, char *err,
                     size_t errlen);
/* Load a shared object: spec is PATH or PATH=ARGS (ARGS go to its load).
 * 0, or -1 with a reason in err. */
int module_table_load(module_table *mt, const char *spec, char *err, size_t errlen);
/* The module named name (UTF-8), and its priv; NULL when none. */
const gcn_module *module_table_find(const module_table *mt, const char *name, void **priv);
size_t module_table_count(const module_table *mt);
const gcn_module *module_table_at(const module_table *mt, size_t i);
/* Unload every module (unload, then dlclose) and free the table. */
void module_table_destroy(module_table *mt);

#endif

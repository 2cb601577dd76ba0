/* module_table.c: the server modules a node knows; see module_table.h. */
#include "module_table.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    const gcn_module *m;
    void *priv;
    void *handle; /* dlopen's, or NULL for a module linked in */
} entry;

struct module_table {
    entry *e;
    size_t n, cap;
};

module_table *module_table_create(void) { return calloc(1, sizeof(module_table)); }

static int valid_name(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    return len > 0 && len <= 255;
}

static int add(module_table *mt, const gcn_module *m, void *priv, void *handle, const char *args,
               const char *where, char *err, size_t errlen)
{
    if (m->api_major != GEN_CNODE_API_MAJOR) {
        snprintf(err, errlen, "%s: built against API %d.%d, this node serves API %d.x: rebuild it against this gen_cnode.h",
                 where, m->api_major, m->api_minor, GEN_CNODE_API_MAJOR);
        return -1;
    }
    if (m->api_minor > GEN_CNODE_API_MINOR) {
        snprintf(err, errlen, "%s: built against API %d.%d, newer than this node's %d.%d: upgrade gen_cnode",
                 where, m->api_major, m->api_minor, GEN_CNODE_API_MAJOR, GEN_CNODE_API_MINOR);
        return -1;
    }
    if (!valid_name(m->name) || !m->handle_call) {
        snprintf(err, errlen, "%s: a module needs a name (1 to 255 bytes) and handle_call", where);
        return -1;
    }
    if (module_table_find(mt, m->name, NULL)) {
        snprintf(err, errlen, "%s: a module named %s is already loaded", where, m->name);
        return -1;
    }
    if (mt->n == mt->cap) {
        size_t cap = mt->cap ? mt->cap * 2 : 8;
        entry *e = realloc(mt->e, cap * sizeof *e);
        if (!e) {
            snprintf(err, errlen, "%s: out of memory", where);
            return -1;
        }
        mt->e = e;
        mt->cap = cap;
    }
    if (m->load && m->load(args, &priv) != 0) {
        snprintf(err, errlen, "%s: its load function failed%s%s", where, args ? " with arguments " : "",
                 args ? args : "");
        return -1;
    }
    mt->e[mt->n++] = (entry){m, priv, handle};
    return 0;
}

int module_table_add(module_table *mt, const gcn_module *m, void *priv, const char *args, char *err,
                     size_t errlen)
{
    char where[300];
    snprintf(where, sizeof where, "module %s", m->name ? m->name : "(unnamed)");
    return add(mt, m, priv, NULL, args, where, err, errlen);
}

int module_table_load(module_table *mt, const char *spec, char *err, size_t errlen)
{
    char path[4096];
    const char *eq = strchr(spec, '=');
    size_t len = eq ? (size_t)(eq - spec) : strlen(spec);
    if (len == 0 || len >= sizeof path) {
        snprintf(err, errlen, "--load: expected PATH or PATH=ARGS, got '%s'", spec);
        return -1;
    }
    memcpy(path, spec, len);
    path[len] = '\0';
    /* dlopen looks a bare name up in the library path: a file is meant. */
    char file[4096 + 2];
    snprintf(file, sizeof file, "%s%s", strchr(path, '/') ? "" : "./", path);
    void *handle = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        snprintf(err, errlen, "--load %s: %s", path, dlerror());
        return -1;
    }
    const gcn_module *(*entry_point)(void);
    *(void **)&entry_point = dlsym(handle, "gen_cnode_module");
    const gcn_module *m = entry_point ? entry_point() : NULL;
    if (!m) {
        snprintf(err, errlen, "--load %s: no gen_cnode_module() in it: does the file end with GEN_CNODE_MODULE(name, ...)?",
                 path);
        dlclose(handle);
        return -1;
    }
    /* The module must be the file's own, defined there by GEN_CNODE_MODULE
     * (whose symbol is hidden: one named as one of the node's, kv say, can
     * bind to nothing else), not another library's. Checked before it is
     * read. */
    Dl_info info;
    void *own = dladdr(m, &info) && info.dli_fname ? dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD) : NULL;
    if (own)
        dlclose(own);
    if (own != handle) {
        snprintf(err, errlen, "--load %s: its gen_cnode_module() returns a module that is not in the file "
                 "(a module is the file's own: GEN_CNODE_MODULE(name, ...) at its end)", path);
        dlclose(handle);
        return -1;
    }
    char where[4200];
    snprintf(where, sizeof where, "--load %s", path);
    if (add(mt, m, NULL, handle, eq ? eq + 1 : NULL, where, err, errlen) < 0) {
        dlclose(handle);
        return -1;
    }
    return 0;
}

const gcn_module *module_table_find(const module_table *mt, const char *name, void **priv)
{
    for (size_t i = 0; i < mt->n; i++)
        if (strcmp(mt->e[i].m->name, name) == 0) {
            if (priv)
                *priv = mt->e[i].priv;
            return mt->e[i].m;
        }
    return NULL;
}

size_t module_table_count(const module_table *mt) { return mt->n; }
const gcn_module *module_table_at(const module_table *mt, size_t i) { return i < mt->n ? mt->e[i].m : NULL; }

void module_table_destroy(module_table *mt)
{
    if (!mt)
        return;
    for (size_t i = mt->n; i-- > 0;) {
        if (mt->e[i].m->unload)
            mt->e[i].m->unload(mt->e[i].priv);
        if (mt->e[i].handle)
            dlclose(mt->e[i].handle);
    }
    free(mt->e);
    free(mt);
}

/*
 * options.h: the command line of priv/gen_cnode, parsed into a node
 * configuration and the servers to start. Knows nothing of sockets.
 */
#ifndef GEN_CNODE_OPTIONS_H
#define GEN_CNODE_OPTIONS_H

#include <stddef.h>

#include "log.h"
#include "node.h"

typedef struct options {
    node_config node;
    const char *register_name; /* the KeyValue server's registered name */
    const char *data_dir;      /* NULL: memory only */
    const char *fsync;         /* always | everysec | no */
    size_t max_entries;        /* 0: no limit */
    unsigned long long compact_min;
    const char **loads;        /* --load PATH[=ARGS], in order */
    size_t nloads;
    const char **starts;       /* --start MODULE[:NAME][=ARG], in order */
    size_t nstarts;
    const char **pg_scopes;    /* --pg-scope NAME: scopes besides pg */
    size_t npg_scopes;
    const char *pg_join;       /* --pg-join [SCOPE:]GROUP for the KeyValue server, or NULL */
    enum log_level log_level;  /* --log-level, --verbose (debug), --quiet (warning); the last wins */
    int help;
    char name_buf[512];
    char cookie_buf[1024];
} options;

/* 0 on success; -1 with a message in err (for a usage error: exit 2). The
 * loads and starts arrays are the caller's to free (options_free). */
int options_parse(int argc, char **argv, options *o, char *err, size_t errlen);
void options_free(options *o);
void options_usage(const char *prog);

#endif

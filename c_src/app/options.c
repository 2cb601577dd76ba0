/* options.c: the command line; see options.h. */
#include "options.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cookie.h"
#include "starter.h"
#include "workers.h"

void options_usage(const char *prog)
{
    printf("Usage: %s [options]\n"
           "A C node that hosts gen_servers written in C (a KeyValue store, a counter and\n"
           "the modules it loads) for Erlang/Elixir clusters.\n\n"
           "  --name NAME[@HOST]    node name (default kv@127.0.0.1; a bare NAME gets @127.0.0.1)\n"
           "  --cookie COOKIE       magic cookie (default: ~/.erlang.cookie, created if missing)\n"
           "  --register NAME       registered name of the KeyValue server (default kv)\n"
           "  --listen ADDR         IPv4 address to listen on (default 127.0.0.1)\n"
           "  --port N              port to listen on (default 0: any free port)\n"
           "  --ticktime SECONDS    drop a peer silent this long (default 60, as net_ticktime)\n"
           "  --max-message BYTES   largest message accepted; a larger one is dropped and a\n"
           "                        call answered {error, {bad_request, too_large}}\n"
           "                        (default 67108864)\n"
           "  --max-depth N         deepest term nesting accepted (default 1000, at most 2000)\n"
           "  --max-entries N       most entries the store holds (default 0: no limit)\n"
           "  --max-processes N     most servers at once, the node's own included; a start\n"
           "                        beyond gets {error, system_limit} (default 262144)\n"
           "  --data-dir DIR        make the store durable: a log and snapshots in DIR\n"
           "                        (default: memory only)\n"
           "  --fsync POLICY        always | everysec | no: how often the log is fsynced\n"
           "                        (default everysec)\n"
           "  --compact-min BYTES   log size from which compaction starts by itself\n"
           "                        (default 67108864)\n"
           "  --busy-poll USEC      after serving, keep polling this long before sleeping:\n"
           "                        lower latency for some CPU, as the BEAM's busy-wait\n"
           "                        (default: up to 100 while measured to pay, 0 with\n"
           "                        less than 2 CPUs; 0: off)\n"
           "  --coalesce USEC       while a stream of casts keeps the node busy, sleep this\n"
           "                        long before each read, so that one read serves many:\n"
           "                        at most that much added to a message's wait, never\n"
           "                        to request-response traffic (default 40; 0: off)\n"
           "  --load PATH[=ARGS]    load a server module (a .so built against gen_cnode.h);\n"
           "                        ARGS go to its load function (repeatable)\n"
           "  --start MOD[:NAME][=ARG]  start a server of module MOD at boot, registered as\n"
           "                        NAME, with ARG (a term as Erlang writes it, \"text\" a binary;\n"
           "                        no floats, bitstrings or pids; default []) (repeatable)\n"
           "  --workers N           threads for blocking worker jobs (default: the CPUs usable;\n"
           "                        0: none)\n"
           "  --jobs-grace MS       at stop, how long jobs still running are waited for; one\n"
           "                        running longer is left to the exit (default 4000; 0: no limit)\n"
           "  --connect NODE        connect to NODE at boot, and again whenever the connection\n"
           "                        is lost (repeatable; other nodes are dialed on first send)\n"
           "  --no-auto-connect     do not connect to a node because something is sent to it\n"
           "                        (it is dropped, logged); --connect and connect requests still do\n"
           "  --pg-scope NAME       run a pg scope NAME besides the default one, pg (repeatable)\n"
           "  --pg-join [SCOPE:]GROUP  the KeyValue server joins GROUP (an atom) in the pg\n"
           "                        scope SCOPE (default pg) at boot\n"
           "  --watch-stdin         stop when stdin closes (for a supervising port owner); while\n"
           "                        booting, exit at once (status 1); a stop that has not\n"
           "                        ended 5 s past --jobs-grace exits anyway (status 1)\n"
           "  --log-level LEVEL     error | warning | notice | info | debug: log lines of\n"
           "                        LEVEL and more severe ones (stderr; default info)\n"
           "  --verbose, --quiet    the same as --log-level debug, --log-level warning\n"
           "  --help                this text\n\n"
           "Without --cookie, the cookie is $GEN_CNODE_COOKIE, else ~/.erlang.cookie's\n"
           "(a command line is any local user's to read: prefer the variable).\n"
           "The node publishes itself to epmd on 127.0.0.1 ($ERL_EPMD_PORT, default 4369)\n"
           "and stops cleanly on SIGINT or SIGTERM.\n",
           prog);
}

static int number(const char *opt, const char *s, long long lo, long long hi, long long *out,
                  char *err, size_t errlen)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        snprintf(err, errlen, "%s: expected a whole number from %lld to %lld, got '%s'", opt, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int set_name(options *o, const char *arg, char *err, size_t errlen)
{
    const char *at = strchr(arg, '@');
    size_t alive = at ? (size_t)(at - arg) : strlen(arg);
    if (alive == 0 || alive > 255 || (at && !at[1]) || (at && strchr(at + 1, '@'))) {
        snprintf(err, errlen, "--name: expected NAME or NAME@HOST, got '%s'", arg);
        return -1;
    }
    for (size_t i = 0; i < alive; i++)
        if (!(arg[i] == '_' || arg[i] == '-' || (arg[i] >= '0' && arg[i] <= '9') ||
              (arg[i] >= 'a' && arg[i] <= 'z') || (arg[i] >= 'A' && arg[i] <= 'Z'))) {
            snprintf(err, errlen, "--name: '%.*s' may hold only letters, digits, _ and -", (int)alive, arg);
            return -1;
        }
    if (arg[0] == '-') { /* an option to every tool that takes the name (erl -name, epmd) */
        snprintf(err, errlen, "--name: '%s' starts with -", arg);
        return -1;
    }
    int n = snprintf(o->name_buf, sizeof o->name_buf, at ? "%s" : "%s@127.0.0.1", arg);
    if (n < 0 || (size_t)n >= sizeof o->name_buf || strlen(o->name_buf) > 255) {
        snprintf(err, errlen, "--name: too long");
        return -1;
    }
    o->node.name = o->name_buf;
    return 0;
}

int options_parse(int argc, char **argv, options *o, char *err, size_t errlen)
{
    enum { O_NAME = 256, O_COOKIE, O_REGISTER, O_LISTEN, O_PORT, O_TICKTIME, O_MAXMSG,
           O_MAXDEPTH, O_WATCH, O_VERBOSE, O_QUIET, O_HELP, O_MAXENTRIES, O_DATADIR, O_FSYNC,
           O_COMPACTMIN, O_BUSYPOLL, O_COALESCE, O_LOAD, O_START, O_WORKERS, O_JOBS_GRACE, O_LOGLEVEL, O_CONNECT, O_PGSCOPE, O_PGJOIN, O_NOAUTO,
           O_MAXPROCS };
    static const struct option longopts[] = {
        {"name", required_argument, 0, O_NAME},         {"cookie", required_argument, 0, O_COOKIE},
        {"register", required_argument, 0, O_REGISTER}, {"listen", required_argument, 0, O_LISTEN},
        {"port", required_argument, 0, O_PORT},         {"ticktime", required_argument, 0, O_TICKTIME},
        {"max-message", required_argument, 0, O_MAXMSG}, {"max-depth", required_argument, 0, O_MAXDEPTH},
        {"watch-stdin", no_argument, 0, O_WATCH},       {"verbose", no_argument, 0, O_VERBOSE},
        {"quiet", no_argument, 0, O_QUIET},             {"help", no_argument, 0, O_HELP},
        {"max-entries", required_argument, 0, O_MAXENTRIES},
        {"data-dir", required_argument, 0, O_DATADIR},  {"fsync", required_argument, 0, O_FSYNC},
        {"compact-min", required_argument, 0, O_COMPACTMIN},
        {"busy-poll", required_argument, 0, O_BUSYPOLL},
        {"coalesce", required_argument, 0, O_COALESCE},
        {"load", required_argument, 0, O_LOAD},         {"start", required_argument, 0, O_START},
        {"workers", required_argument, 0, O_WORKERS},     {"jobs-grace", required_argument, 0, O_JOBS_GRACE},
        {"log-level", required_argument, 0, O_LOGLEVEL},
        {"connect", required_argument, 0, O_CONNECT},
        {"pg-scope", required_argument, 0, O_PGSCOPE},
        {"pg-join", required_argument, 0, O_PGJOIN},
        {"no-auto-connect", no_argument, 0, O_NOAUTO},
        {"max-processes", required_argument, 0, O_MAXPROCS},
        {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->node.name = "kv@127.0.0.1";
    o->node.listen_addr = "127.0.0.1";
    o->node.ticktime = 60;
    o->node.max_message = 64u << 20;
    o->node.max_depth = 1000;
    o->node.busy_poll_us = -1; /* the node's default: see node.h */
    o->node.coalesce_us = -1;
    o->register_name = "kv";
    o->fsync = "everysec";
    o->compact_min = 64ull << 20;
    o->node.workers = (int)workers_default_threads();
    o->node.jobs_grace_ms = 4000; /* under the 5 s an owner gives before its SIGKILL */
    o->node.max_processes = NODE_MAX_PROCESSES;
    o->log_level = LOG_INFO;
    optind = 1;
    opterr = 0;
    int c, at = 0;
    long long v;
    while ((c = getopt_long(argc, argv, "", longopts, &at)) != -1) {
        /* An option that takes a value takes the next argument, whatever it
         * is: one that is an option (--register --watch-stdin) is refused,
         * not taken for a name, a folder or a cookie. A value given in the
         * option's own argument (--cookie=--x) is meant as it is. */
        if (c >= O_NAME && optarg && strncmp(optarg, "--", 2) == 0 && optind > 1 && optarg == argv[optind - 1]) {
            snprintf(err, errlen, "--%s: expected a value, got the option '%s'", longopts[at].name, optarg);
            return -1;
        }
        switch (c) {
        case O_NAME:
            if (set_name(o, optarg, err, errlen) < 0)
                return -1;
            break;
        case O_COOKIE:
            if (!*optarg || strlen(optarg) >= sizeof o->cookie_buf) {
                snprintf(err, errlen, "--cookie: must be 1 to %zu characters", sizeof o->cookie_buf - 1);
                return -1;
            }
            o->node.cookie = optarg;
            break;
        case O_REGISTER:
            if (!*optarg || strlen(optarg) > 255) {
                snprintf(err, errlen, "--register: must be 1 to 255 characters");
                return -1;
            }
            if (!starter_is_name(optarg)) {
                snprintf(err, errlen, "--register %s: " STARTER_NO_NAME, optarg);
                return -1;
            }
            o->register_name = optarg;
            break;
        case O_LISTEN:
            /* (node_create checks it too, for its other callers: a usage
             * error is found here, exit 2, not as a node that cannot come up) */
            if (inet_pton(AF_INET, optarg, &(struct in_addr){0}) != 1) {
                snprintf(err, errlen, "--listen %s: not an IPv4 address", optarg);
                return -1;
            }
            o->node.listen_addr = optarg;
            break;
        case O_PORT:
            if (number("--port", optarg, 0, 65535, &v, err, errlen) < 0)
                return -1;
            o->node.port = (int)v;
            break;
        case O_TICKTIME:
            if (number("--ticktime", optarg, 1, 3600, &v, err, errlen) < 0)
                return -1;
            o->node.ticktime = (int)v;
            break;
        case O_MAXMSG:
            if (number("--max-message", optarg, 1024, 1LL << 31, &v, err, errlen) < 0)
                return -1;
            o->node.max_message = (size_t)v;
            break;
        case O_MAXDEPTH:
            if (number("--max-depth", optarg, 2, 2000, &v, err, errlen) < 0)
                return -1;
            o->node.max_depth = (unsigned)v;
            break;
        case O_MAXENTRIES:
            if (number("--max-entries", optarg, 0, 1LL << 40, &v, err, errlen) < 0)
                return -1;
            o->max_entries = (size_t)v;
            break;
        case O_DATADIR:
            if (!*optarg) {
                snprintf(err, errlen, "--data-dir: give a folder");
                return -1;
            }
            o->data_dir = optarg;
            break;
        case O_FSYNC:
            if (strcmp(optarg, "always") && strcmp(optarg, "everysec") && strcmp(optarg, "no")) {
                snprintf(err, errlen, "--fsync: expected always, everysec or no, got '%s'", optarg);
                return -1;
            }
            o->fsync = optarg;
            break;
        case O_COMPACTMIN:
            if (number("--compact-min", optarg, 0, 1LL << 50, &v, err, errlen) < 0)
                return -1;
            o->compact_min = (unsigned long long)v;
            break;
        case O_BUSYPOLL:
            if (number("--busy-poll", optarg, 0, 1000000, &v, err, errlen) < 0)
                return -1;
            o->node.busy_poll_us = (int)v;
            break;
        case O_COALESCE:
            if (number("--coalesce", optarg, 0, 1000, &v, err, errlen) < 0)
                return -1;
            o->node.coalesce_us = (int)v;
            break;
        case O_LOAD:
        case O_START:
        case O_CONNECT:
        case O_PGSCOPE: {
            const char *what = c == O_LOAD ? "--load" : c == O_START ? "--start" : c == O_CONNECT ? "--connect"
                                                                                          : "--pg-scope";
            const char ***list = c == O_LOAD ? &o->loads : c == O_START ? &o->starts
                                 : c == O_CONNECT ? &o->node.connect : &o->pg_scopes;
            size_t *n = c == O_LOAD ? &o->nloads : c == O_START ? &o->nstarts
                        : c == O_CONNECT ? &o->node.nconnect : &o->npg_scopes;
            if (!*optarg) {
                snprintf(err, errlen, "%s: give a value", what);
                return -1;
            }
            if (c == O_CONNECT && (!strchr(optarg, '@') || strchr(optarg, '@') == optarg || optarg[0] == '-')) {
                snprintf(err, errlen, "--connect %s: expected a node name, name@host", optarg);
                return -1;
            }
            const char **grown = realloc(*list, (*n + 1) * sizeof *grown);
            if (!grown) {
                snprintf(err, errlen, "%s: out of memory", what);
                return -1;
            }
            grown[(*n)++] = optarg;
            *list = grown;
            break;
        }
        case O_MAXPROCS:
            if (number("--max-processes", optarg, 16, 1LL << 27, &v, err, errlen) < 0)
                return -1;
            o->node.max_processes = (size_t)v;
            break;
        case O_WORKERS:
            if (number("--workers", optarg, 0, 1024, &v, err, errlen) < 0)
                return -1;
            o->node.workers = (int)v;
            break;
        case O_JOBS_GRACE:
            if (number("--jobs-grace", optarg, 0, 86400000, &v, err, errlen) < 0)
                return -1;
            o->node.jobs_grace_ms = (long)v;
            break;
        case O_PGJOIN:
            if (!*optarg || optarg[strlen(optarg) - 1] == ':' || optarg[0] == ':') {
                snprintf(err, errlen, "--pg-join: expected [SCOPE:]GROUP, got '%s'", optarg);
                return -1;
            }
            o->pg_join = optarg;
            break;
        case O_WATCH: o->node.watch_stdin = 1; break;
        case O_NOAUTO: o->node.no_auto_connect = 1; break;
        case O_LOGLEVEL:
            if (log_level_parse(optarg, &o->log_level) < 0) {
                snprintf(err, errlen, "--log-level: expected error, warning, notice, info or debug, got '%s'",
                         optarg);
                return -1;
            }
            break;
        case O_VERBOSE: o->log_level = LOG_DEBUG; break;
        case O_QUIET: o->log_level = LOG_WARNING; break;
        case O_HELP: o->help = 1; return 0;
        default:
            snprintf(err, errlen, "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
        return -1;
    }
    /* Else $GEN_CNODE_COOKIE, which a supervising owner sets: a command line
     * is any local user's to read (ps), a process's environment only its
     * owner's. Taken out of the environment once read. */
    const char *env = getenv("GEN_CNODE_COOKIE");
    if (!o->node.cookie && env) {
        if (!*env || strlen(env) >= sizeof o->cookie_buf) {
            snprintf(err, errlen, "$GEN_CNODE_COOKIE: must be 1 to %zu characters", sizeof o->cookie_buf - 1);
            return -1;
        }
        memcpy(o->cookie_buf, env, strlen(env) + 1);
        o->node.cookie = o->cookie_buf;
    }
    unsetenv("GEN_CNODE_COOKIE");
    if (!o->node.cookie) {
        if (cookie_default(o->cookie_buf, sizeof o->cookie_buf, err, errlen) < 0)
            return -1;
        o->node.cookie = o->cookie_buf;
    }
    return 0;
}

void options_free(options *o)
{
    free(o->loads);
    free(o->starts);
    free(o->node.connect);
    free(o->pg_scopes);
    o->loads = o->starts = o->node.connect = o->pg_scopes = NULL;
    o->nloads = o->nstarts = o->node.nconnect = o->npg_scopes = 0;
}

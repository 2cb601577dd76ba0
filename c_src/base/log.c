/* log.c: stderr logging with a per-second cap; see log.h. Worker threads
 * may log too (a module's job, a term reader's malformed pattern): one lock
 * keeps the cap's counters, the node name and each line whole. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_NODE "gen_cnode"
#define LINE_MAX_STACK 4096
#define PREFIX_MAX 320 /* a timestamp, a node name of up to 255 bytes, a level */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static enum log_level current = LOG_INFO;
static char node[256] = DEFAULT_NODE;
static FILE *sink;             /* NULL: stderr */
static void (*clock_fn)(struct timespec *);
static time_t window;          /* the second the current burst belongs to */
static unsigned in_window;     /* lines logged in that second */
static unsigned long dropped;  /* lines held back since the last report */

enum log_level log_level_of_public(int level)
{
    switch (level) {
    case 0: return LOG_ERROR;   /* GCN_LOG_ERROR */
    case 1: return LOG_WARNING; /* GCN_LOG_WARNING */
    case 2: return LOG_INFO;    /* GCN_LOG_INFO */
    case 3: return LOG_DEBUG;   /* GCN_LOG_DEBUG */
    default: return level < LOG_ERROR ? LOG_DEBUG : (enum log_level)level;
    }
}

static const struct {
    enum log_level level;
    const char *name;
} names[] = {{LOG_ERROR, "error"}, {LOG_WARNING, "warning"}, {LOG_NOTICE, "notice"},
             {LOG_INFO, "info"},   {LOG_DEBUG, "debug"}};

int log_level_parse(const char *name, enum log_level *level)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0) {
            *level = names[i].level;
            return 0;
        }
    return -1;
}

const char *log_level_name(enum log_level level)
{
    level = log_level_of_public((int)level);
    const char *name = names[0].name;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].level <= level)
            name = names[i].name; /* one between two levels: the more severe one's name */
    return name;
}

void log_set_level(enum log_level level) { current = log_level_of_public((int)level); }
enum log_level log_get_level(void) { return current; }

int log_enabled(enum log_level level) { return log_level_of_public((int)level) <= current; }

void log_set_node(const char *name)
{
    pthread_mutex_lock(&lock);
    snprintf(node, sizeof node, "%s", name && *name ? name : DEFAULT_NODE);
    pthread_mutex_unlock(&lock);
}

void log_set_sink(FILE *f)
{
    pthread_mutex_lock(&lock);
    sink = f;
    pthread_mutex_unlock(&lock);
}

void log_set_clock(void (*now)(struct timespec *ts))
{
    pthread_mutex_lock(&lock);
    clock_fn = now;
    window = 0;
    in_window = 0;
    dropped = 0;
    pthread_mutex_unlock(&lock);
}

static void now(struct timespec *ts)
{
    if (clock_fn)
        clock_fn(ts);
    else
        clock_gettime(CLOCK_REALTIME, ts);
}

/* "2026-11-27T19:05:01.123Z node level: " into buf (PREFIX_MAX bytes);
 * returns its length. The date is worked out here (days to civil date, as
 * in Howard Hinnant's algorithms), not by gmtime_r: no lock is taken, so a
 * forked child may call it too. */
static int prefix(char *buf, const struct timespec *ts, enum log_level level)
{
    int64_t secs = ts->tv_sec;
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    int64_t rem = secs - days * 86400;
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    int n = snprintf(buf, PREFIX_MAX, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03ldZ %s %s: ",
                     (long long)y, (long long)m, (long long)d, (long long)(rem / 3600),
                     (long long)(rem / 60 % 60), (long long)(rem % 60), ts->tv_nsec / 1000000, node,
                     log_level_name(level));
    return n < 0 ? 0 : n >= PREFIX_MAX ? PREFIX_MAX - 1 : n;
}

/* A line stays one line, whatever its message holds (a node name or a
 * status a peer chose, say): control bytes become '?', so that nothing a
 * peer sends can start a line of its own in the log, or end one. */
static void one_line(char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
            s[i] = '?';
}

/* One whole line: prefix, message, newline, in one write. Lock held. */
static void write_line(FILE *f, const struct timespec *ts, enum log_level level, const char *fmt,
                       va_list ap)
{
    char stack[LINE_MAX_STACK];
    char *line = stack;
    int head = prefix(stack, ts, level);
    va_list again;
    va_copy(again, ap);
    int body = vsnprintf(stack + head, sizeof stack - (size_t)head, fmt, ap);
    if (body < 0)
        body = 0;
    size_t len = (size_t)head + (size_t)body;
    if (len + 1 >= sizeof stack) { /* a long one: on the heap, or cut if there is no room */
        char *big = malloc(len + 2);
        if (big) {
            memcpy(big, stack, (size_t)head);
            vsnprintf(big + head, (size_t)body + 1, fmt, again);
            line = big;
        } else {
            len = sizeof stack - 2;
        }
    }
    va_end(again);
    one_line(line + head, len - (size_t)head);
    line[len] = '\n';
    fwrite(line, 1, len + 1, f);
    fflush(f);
    if (line != stack)
        free(line);
}

static void write_fmt(FILE *f, const struct timespec *ts, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void write_fmt(FILE *f, const struct timespec *ts, enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    write_line(f, ts, level, fmt, ap);
    va_end(ap);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    level = log_level_of_public((int)level);
    if (!log_enabled(level))
        return;
    struct timespec ts;
    pthread_mutex_lock(&lock);
    now(&ts);
    FILE *f = sink ? sink : stderr;
    if (ts.tv_sec != window) {
        if (dropped)
            write_fmt(f, &ts, LOG_WARNING, "%lu log lines suppressed (more than %d a second)", dropped,
                      LOG_BURST);
        window = ts.tv_sec;
        in_window = 0;
        dropped = 0;
    }
    if (level != LOG_ERROR && ++in_window > LOG_BURST) {
        dropped++;
        pthread_mutex_unlock(&lock);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    write_line(f, &ts, level, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&lock);
}

int log_fd(void) { return fileno(sink ? sink : stderr); }

void log_forked(enum log_level level, const char *fmt, ...)
{
    level = log_level_of_public((int)level);
    if (!log_enabled(level))
        return;
    struct timespec ts;
    now(&ts);
    char line[LINE_MAX_STACK];
    int head = prefix(line, &ts, level);
    va_list ap;
    va_start(ap, fmt);
    int body = vsnprintf(line + head, sizeof line - (size_t)head - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)head + (body < 0 ? 0 : (size_t)body);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    one_line(line + head, len - (size_t)head);
    line[len++] = '\n';
    int fd = fileno(sink ? sink : stderr);
    for (size_t done = 0; fd >= 0 && done < len;) {
        ssize_t w = write(fd, line + done, len - done);
        if (w <= 0)
            break;
        done += (size_t)w;
    }
}

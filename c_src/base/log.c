/* log.c: stderr logging with a per-second cap; see log.h. Worker threads
 * may log too (a module's job, a term reader's malformed pattern): one lock
 * keeps the cap's counters and each line whole. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static enum log_level current = LOG_INFO;
static time_t window;          /* the second the current burst belongs to */
static unsigned in_window;     /* lines logged in that second */
static unsigned long dropped;  /* lines held back since the last report */

void log_set_level(enum log_level level) { current = level; }

int log_enabled(enum log_level level) { return level <= current; }

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    if (!log_enabled(level))
        return;
    time_t now = time(NULL);
    pthread_mutex_lock(&lock);
    if (now != window) {
        if (dropped)
            fprintf(stderr, "gen_cnode: warning: %lu log lines suppressed (more than %d a second)\n",
                    dropped, LOG_BURST);
        window = now;
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
    fprintf(stderr, "gen_cnode: %s: ", names[level]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    pthread_mutex_unlock(&lock);
}

/* stdin_watch.c: stdin's end, for the node's whole life; see stdin_watch.h. */
#include "stdin_watch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#include "log.h"
#include "quiet_thread.h"

static pthread_t watcher, main_thread;
static int stop_pipe[2] = {-1, -1}; /* the write end is closed to stop the watcher */
static atomic_long grace = -1;      /* -1: booting */

/* stdin has ended: while booting, exit at once; else ask for a stop, and
 * exit if none has come grace ms later. Returns when the watch is stopped. */
static void owner_gone(void)
{
    long ms = atomic_load(&grace);
    if (ms < 0) {
        log_forked(LOG_ERROR, "stdin closed while booting (the owner is gone): exiting at once");
        _exit(1);
    }
    log_notice("stopping: stdin closed (the owner is gone)");
    pthread_kill(main_thread, SIGTERM); /* taken by the loop's signalfd, as any stop */
    struct pollfd p = {.fd = stop_pipe[0], .events = POLLIN};
    int r;
    do /* (a limit past poll's int: none) */
        r = poll(&p, 1, ms > INT_MAX ? -1 : (int)ms);
    while (r < 0 && errno == EINTR);
    if (r > 0)
        return; /* stopped in time */
    /* One write(2) and no lock, no stdio (log_forked): whatever holds the
     * loop may hold the log's lock, or stderr's, and this exit must not
     * wait for it. */
    log_forked(LOG_ERROR, "stdin closed %ld ms ago and the node has not stopped (a callback holds its "
               "loop?): exiting", ms);
    _exit(1);
}

static void *watch(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = 0, .events = POLLIN}, {.fd = stop_pipe[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        if (p[1].revents)
            return NULL;
        if (!p[0].revents)
            continue;
        char buf[256];
        ssize_t r = read(0, buf, sizeof buf); /* what an owner writes is not read by the node */
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
            owner_gone();
            return NULL;
        }
    }
}

int stdin_watch_start(void)
{
    /* stdin not open: nothing to watch (and the pipe would take fd 0) */
    if (fcntl(0, F_GETFD) < 0 || pipe2(stop_pipe, O_CLOEXEC) < 0)
        return -1;
    main_thread = pthread_self();
    if (quiet_thread_create(&watcher, NULL, watch, NULL) != 0) { /* SIGINT and SIGTERM stay the main thread's */
        close(stop_pipe[0]);
        close(stop_pipe[1]);
        stop_pipe[0] = stop_pipe[1] = -1;
        return -1;
    }
    return 0;
}

void stdin_watch_running(long grace_ms) { atomic_store(&grace, grace_ms < 0 ? 0 : grace_ms); }

void stdin_watch_stop(void)
{
    if (stop_pipe[1] < 0)
        return;
    close(stop_pipe[1]);
    pthread_join(watcher, NULL);
    close(stop_pipe[0]);
    stop_pipe[0] = stop_pipe[1] = -1;
}

/* bg_sync.c: an fdatasync on a thread of its own; see bg_sync.h. */
#include "bg_sync.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "quiet_thread.h"

struct bg_sync {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t work, done_cond; /* the thread waits on work, callers on done_cond */
    /* Under lock: the descriptor to sync (the thread's own duplicate), or -1;
     * posted from post to collection; done once the sync ended, with error. */
    int fd;
    int posted, done, error, stop;
};

static void *run(void *arg)
{
    bg_sync *b = arg;
    pthread_mutex_lock(&b->lock);
    for (;;) {
        while (b->fd < 0 && !b->stop)
            pthread_cond_wait(&b->work, &b->lock);
        if (b->fd < 0) /* stop, and nothing left to sync */
            break;
        int fd = b->fd;
        pthread_mutex_unlock(&b->lock);
        int error = fdatasync(fd) < 0 ? errno : 0;
        close(fd);
        pthread_mutex_lock(&b->lock);
        b->fd = -1;
        b->error = error;
        b->done = 1;
        pthread_cond_broadcast(&b->done_cond);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

bg_sync *bg_sync_start(void)
{
    bg_sync *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->fd = -1;
    if (pthread_mutex_init(&b->lock, NULL) != 0) {
        free(b);
        return NULL;
    }
    pthread_cond_init(&b->work, NULL);
    pthread_cond_init(&b->done_cond, NULL);
    if (quiet_thread_create(&b->thread, NULL, run, b) != 0) {
        pthread_cond_destroy(&b->work);
        pthread_cond_destroy(&b->done_cond);
        pthread_mutex_destroy(&b->lock);
        free(b);
        return NULL;
    }
    return b;
}

int bg_sync_post(bg_sync *b, int fd)
{
    pthread_mutex_lock(&b->lock);
    int busy = b->posted;
    pthread_mutex_unlock(&b->lock);
    if (busy)
        return 1;
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0)
        return -1;
    pthread_mutex_lock(&b->lock);
    b->fd = copy;
    b->posted = 1;
    b->done = 0;
    pthread_cond_signal(&b->work);
    pthread_mutex_unlock(&b->lock);
    return 0;
}

static int collect(bg_sync *b, int wait, int *error)
{
    pthread_mutex_lock(&b->lock);
    int r = -1;
    if (b->posted) {
        while (wait && !b->done)
            pthread_cond_wait(&b->done_cond, &b->lock);
        r = b->done;
        if (r) {
            *error = b->error;
            b->posted = 0;
            b->done = 0;
        }
    }
    pthread_mutex_unlock(&b->lock);
    return r;
}

int bg_sync_poll(bg_sync *b, int *error) { return collect(b, 0, error); }
int bg_sync_wait(bg_sync *b, int *error) { return collect(b, 1, error); }

void bg_sync_stop(bg_sync *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    b->stop = 1;
    pthread_cond_signal(&b->work);
    pthread_mutex_unlock(&b->lock);
    pthread_join(b->thread, NULL); /* after the sync in flight, if any */
    pthread_cond_destroy(&b->work);
    pthread_cond_destroy(&b->done_cond);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

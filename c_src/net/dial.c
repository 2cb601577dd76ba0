/* dial.c: epmd lookups and connects on threads of their own; see dial.h. */
#include "dial.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "epmd.h"
#include "handshake.h"
#include "quiet_thread.h"

enum slot_state { SLOT_FREE, SLOT_RUNNING, SLOT_DONE };

typedef struct attempt {
    struct dialer *d;
    pthread_t thread;
    enum slot_state state; /* under d->lock */
    uint64_t id;
    int timeout_ms;
    char node[HANDSHAKE_MAX_NAME + 1];
    int fd;
    char why[256];
} attempt;

struct dialer {
    pthread_mutex_t lock;
    int event_fd;
    int stop[2]; /* the write end is closed to cancel every attempt */
    attempt slots[DIAL_MAX_ATTEMPTS];
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on fd until deadline: 1 ready, 0 timed out, -1 cancelled. */
static int wait_for(attempt *a, int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = a->d->stop[0], .events = POLLIN}};
        int r = poll(p, 2, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || p[1].revents)
            return -1;
        if (r > 0)
            return 1;
    }
}

/* A non-blocking socket connected to sa, or -1 with why. */
static int connect_to(attempt *a, const struct sockaddr_in *sa, long long deadline, const char *what)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(a->why, sizeof a->why, "socket: %s", strerror(errno));
        return -1;
    }
    char addr[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa->sin_addr, addr, sizeof addr);
    int err = 0;
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0) {
        if (errno != EINPROGRESS) {
            err = errno;
        } else {
            int w = wait_for(a, fd, POLLOUT, deadline);
            socklen_t len = sizeof err;
            if (w <= 0)
                err = w == 0 ? ETIMEDOUT : ECANCELED;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
        }
    }
    if (err) {
        snprintf(a->why, sizeof a->why, "cannot reach %s on %s:%d (%s)", what, addr,
                 ntohs(sa->sin_port), strerror(err));
        close(fd);
        return -1;
    }
    return fd;
}

/* The node's port, from the epmd on its host; -1 with why. */
static int port_please(attempt *a, struct sockaddr_in sa, const char *alive, long long deadline)
{
    unsigned char req[3 + 255], resp[64];
    int reqlen = epmd_port_please_request(alive, req, sizeof req);
    if (reqlen < 0) {
        snprintf(a->why, sizeof a->why, "bad node name");
        return -1;
    }
    sa.sin_port = htons((uint16_t)epmd_port());
    int fd = connect_to(a, &sa, deadline, "epmd");
    if (fd < 0)
        return -1;
    int port = -1, r = 0;
    size_t got = 0;
    if (write(fd, req, (size_t)reqlen) != reqlen) { /* a fresh socket takes a few bytes at once */
        snprintf(a->why, sizeof a->why, "epmd: write failed (%s)", strerror(errno));
        goto out;
    }
    while ((r = epmd_port_please_parse(resp, got, &port, a->why, sizeof a->why)) == 0) {
        int w = wait_for(a, fd, POLLIN, deadline);
        if (w <= 0) {
            snprintf(a->why, sizeof a->why, w == 0 ? "epmd did not answer in time" : "cancelled");
            goto out;
        }
        ssize_t n = read(fd, resp + got, sizeof resp - got);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0) {
            snprintf(a->why, sizeof a->why, "epmd closed the connection before answering");
            goto out;
        }
        got += (size_t)n;
    }
out:
    close(fd);
    return r == 1 ? port : -1;
}

/* ---- name lookups ----
 * getaddrinfo cannot be given a deadline or cancelled, and a resolver that
 * does not answer holds it for its timeouts times its attempts times its
 * servers (30 s and more). So it runs on a detached thread of its own, and
 * the attempt waits for its answer as for a socket: until its deadline, or
 * until the dialer is destroyed. A lookup given up on finishes alone and
 * frees itself; it touches nothing but its own struct lookup, which the
 * last of its two users (lookup_done) frees. */

/* Lookups given up on run on until the resolver answers (30 s and more):
 * a peer naming made-up hosts under a domain whose DNS never answers could
 * otherwise keep hundreds of threads (and their eventfds) alive. */
#define LOOKUPS_MAX DIAL_MAX_ATTEMPTS
#define LOOKUP_STACK_BYTES (512u << 10)
static atomic_int lookups_live;

struct lookup {
    pthread_mutex_t lock; /* guards refs, gai and addr */
    int refs;             /* the attempt's and the lookup thread's */
    int ready;            /* eventfd: written once the answer is in */
    int gai;
    struct sockaddr_in addr;
    char host[HANDSHAKE_MAX_NAME + 1];
};

static void lookup_done(struct lookup *l)
{
    pthread_mutex_lock(&l->lock);
    int last = --l->refs == 0;
    pthread_mutex_unlock(&l->lock);
    if (!last)
        return;
    close(l->ready);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

static void *lookup_run(void *arg)
{
    struct lookup *l = arg;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int gai = getaddrinfo(l->host, NULL, &hints, &res);
    pthread_mutex_lock(&l->lock);
    l->gai = gai != 0 ? gai : res ? 0 : EAI_NONAME;
    if (l->gai == 0)
        memcpy(&l->addr, res->ai_addr, sizeof l->addr);
    pthread_mutex_unlock(&l->lock);
    if (res)
        freeaddrinfo(res);
    uint64_t one = 1;
    if (write(l->ready, &one, sizeof one) < 0) {
        /* cannot fail on a fresh eventfd written once */
    }
    lookup_done(l);
    atomic_fetch_sub(&lookups_live, 1);
    return NULL;
}

/* host's IPv4 address into *sa (an address in text needs no lookup): 0, or
 * -1 with why. */
static int resolve(attempt *a, const char *host, struct sockaddr_in *sa, long long deadline)
{
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    if (inet_pton(AF_INET, host, &sa->sin_addr) == 1)
        return 0;
    if (atomic_fetch_add(&lookups_live, 1) >= LOOKUPS_MAX) {
        atomic_fetch_sub(&lookups_live, 1);
        snprintf(a->why, sizeof a->why, "cannot resolve host %s: %d name lookups still under way", host,
                 LOOKUPS_MAX);
        return -1;
    }
    struct lookup *l = calloc(1, sizeof *l);
    if (!l || (l->ready = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 || pthread_mutex_init(&l->lock, NULL) != 0) {
        if (l && l->ready >= 0)
            close(l->ready);
        free(l);
        atomic_fetch_sub(&lookups_live, 1);
        snprintf(a->why, sizeof a->why, "cannot resolve host %s: out of resources", host);
        return -1;
    }
    l->refs = 2;
    snprintf(l->host, sizeof l->host, "%s", host);
    pthread_attr_t attr;
    pthread_t t;
    int started = pthread_attr_init(&attr) == 0;
    if (started) {
        started = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
                  pthread_attr_setstacksize(&attr, LOOKUP_STACK_BYTES) == 0 &&
                  pthread_create(&t, &attr, lookup_run, l) == 0; /* every signal blocked, as this thread */
        pthread_attr_destroy(&attr);
    }
    if (!started) {
        l->refs = 1;
        lookup_done(l);
        atomic_fetch_sub(&lookups_live, 1);
        snprintf(a->why, sizeof a->why, "cannot resolve host %s: no thread to look it up", host);
        return -1;
    }
    int w = wait_for(a, l->ready, POLLIN, deadline);
    int rc = -1;
    if (w <= 0) {
        snprintf(a->why, sizeof a->why, w == 0 ? "cannot resolve host %s: no answer in time" : "cancelled", host);
    } else {
        pthread_mutex_lock(&l->lock);
        if (l->gai == 0) {
            sa->sin_addr = l->addr.sin_addr;
            rc = 0;
        } else {
            snprintf(a->why, sizeof a->why, "cannot resolve host %s: %s", host, gai_strerror(l->gai));
        }
        pthread_mutex_unlock(&l->lock);
    }
    lookup_done(l);
    return rc;
}

static void dial(attempt *a)
{
    long long deadline = now_ms() + a->timeout_ms;
    char *at = strchr(a->node, '@');
    *at = '\0'; /* alive, then host */
    const char *alive = a->node, *host = at + 1;
    struct sockaddr_in sa;
    if (resolve(a, host, &sa, deadline) < 0) {
        *at = '@';
        return;
    }
    int port = port_please(a, sa, alive, deadline);
    *at = '@';
    if (port < 0)
        return;
    sa.sin_port = htons((uint16_t)port);
    a->fd = connect_to(a, &sa, deadline, "the node");
    if (a->fd >= 0) {
        int one = 1;
        setsockopt(a->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
}

static void *run(void *arg)
{
    attempt *a = arg;
    dial(a);
    pthread_mutex_lock(&a->d->lock);
    a->state = SLOT_DONE;
    pthread_mutex_unlock(&a->d->lock);
    uint64_t one = 1;
    if (write(a->d->event_fd, &one, sizeof one) < 0) {
        /* the counter cannot overflow in practice; the loop scans all slots anyway */
    }
    return NULL;
}

dialer *dialer_create(void)
{
    dialer *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (d->event_fd < 0 || pipe2(d->stop, O_CLOEXEC) < 0 || pthread_mutex_init(&d->lock, NULL) != 0) {
        if (d->event_fd >= 0)
            close(d->event_fd);
        free(d);
        return NULL;
    }
    return d;
}

int dialer_fd(const dialer *d) { return d->event_fd; }

int dialer_start(dialer *d, const char *node, uint64_t id, int timeout_ms)
{
    size_t len = strlen(node);
    if (!handshake_name_ok(node, len))
        return -1;
    attempt *a = NULL;
    pthread_mutex_lock(&d->lock);
    for (int i = 0; i < DIAL_MAX_ATTEMPTS && !a; i++)
        if (d->slots[i].state == SLOT_FREE)
            a = &d->slots[i];
    if (a)
        a->state = SLOT_RUNNING;
    pthread_mutex_unlock(&d->lock);
    if (!a)
        return -1;
    a->d = d;
    a->id = id;
    a->timeout_ms = timeout_ms;
    a->fd = -1;
    a->why[0] = '\0';
    memcpy(a->node, node, len + 1);
    if (quiet_thread_create(&a->thread, NULL, run, a) != 0) { /* SIGINT and SIGTERM stay the loop's */
        pthread_mutex_lock(&d->lock);
        a->state = SLOT_FREE;
        pthread_mutex_unlock(&d->lock);
        return -1;
    }
    return 0;
}

int dialer_next(dialer *d, dial_result *r)
{
    uint64_t count;
    if (read(d->event_fd, &count, sizeof count) < 0) {
        /* nothing signalled since the last call: the slots are scanned anyway */
    }
    attempt *a = NULL;
    pthread_mutex_lock(&d->lock);
    for (int i = 0; i < DIAL_MAX_ATTEMPTS && !a; i++)
        if (d->slots[i].state == SLOT_DONE)
            a = &d->slots[i];
    pthread_mutex_unlock(&d->lock);
    if (!a)
        return 0;
    pthread_join(a->thread, NULL);
    r->id = a->id;
    r->fd = a->fd;
    snprintf(r->why, sizeof r->why, "%s", a->why);
    pthread_mutex_lock(&d->lock);
    a->state = SLOT_FREE;
    pthread_mutex_unlock(&d->lock);
    return 1;
}

void dialer_destroy(dialer *d)
{
    if (!d)
        return;
    close(d->stop[1]); /* every poll in flight sees it */
    for (int i = 0; i < DIAL_MAX_ATTEMPTS; i++) {
        attempt *a = &d->slots[i];
        pthread_mutex_lock(&d->lock);
        enum slot_state s = a->state;
        pthread_mutex_unlock(&d->lock);
        if (s == SLOT_FREE)
            continue;
        pthread_join(a->thread, NULL);
        if (a->fd >= 0)
            close(a->fd);
    }
    close(d->stop[0]);
    close(d->event_fd);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

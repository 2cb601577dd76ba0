/* test_dial.c: the dialer's name lookups. getaddrinfo is wrapped (the unit
 * binary links with --wrap=getaddrinfo): a host under .slow.test takes
 * SLOW_MS to answer, as a resolver that does not answer would, and every
 * other name goes to the real one. Every wait is bounded. */
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dial.h"
#include "unit.h"

#define SLOW_MS 1500
#define WAIT_MS 5000 /* for what should take microseconds */

static atomic_int lookups, slow_started, slow_finished;

int __real_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res);
int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res);

int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res)
{
    atomic_fetch_add(&lookups, 1);
    size_t len = node ? strlen(node) : 0;
    if (len >= 10 && strcmp(node + len - 10, ".slow.test") == 0) {
        atomic_fetch_add(&slow_started, 1);
        struct timespec ts = {SLOW_MS / 1000, (SLOW_MS % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0)
            ;
        atomic_fetch_add(&slow_finished, 1);
        *res = NULL;
        return EAI_AGAIN;
    }
    return __real_getaddrinfo(node, service, hints, res);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int readable(int fd, int timeout_ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, timeout_ms) == 1;
}

/* The slow lookups still sleeping finish (they outlive what gave up on them). */
static void slow_lookups_end(void)
{
    for (long long end = now_ms() + 2 * SLOW_MS; atomic_load(&slow_finished) < atomic_load(&slow_started) &&
                                                 now_ms() < end;)
        usleep(10000);
    CU_ASSERT_EQUAL(atomic_load(&slow_finished), atomic_load(&slow_started));
    usleep(20000); /* their threads return, and free what they shared */
}

/* A lookup that does not answer fails the attempt at its deadline, not when
 * the resolver gives up. */
static void test_a_slow_lookup_fails_at_the_deadline(void)
{
    dialer *d = dialer_create();
    CU_ASSERT_FATAL(d != NULL);
    long long t0 = now_ms();
    CU_ASSERT_EQUAL(dialer_start(d, "a@x.slow.test", 7, 200), 0);
    CU_ASSERT_TRUE(readable(dialer_fd(d), SLOW_MS));
    long long took = now_ms() - t0;
    CU_ASSERT(took >= 150 && took < SLOW_MS - 300);
    dial_result r;
    CU_ASSERT_EQUAL_FATAL(dialer_next(d, &r), 1);
    CU_ASSERT_EQUAL(r.id, 7);
    CU_ASSERT_EQUAL(r.fd, -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.why, "cannot resolve host x.slow.test: no answer in time"));
    dialer_destroy(d);
    slow_lookups_end();
}

/* Destroying the dialer does not wait for a lookup under way. */
static void test_destroy_does_not_wait_for_a_lookup(void)
{
    dialer *d = dialer_create();
    CU_ASSERT_FATAL(d != NULL);
    int before = atomic_load(&slow_started);
    CU_ASSERT_EQUAL(dialer_start(d, "b@y.slow.test", 1, 7000), 0);
    for (long long end = now_ms() + 1000; atomic_load(&slow_started) == before && now_ms() < end;)
        usleep(1000);
    CU_ASSERT_EQUAL(atomic_load(&slow_started), before + 1);
    long long t0 = now_ms();
    dialer_destroy(d);
    CU_ASSERT(now_ms() - t0 < SLOW_MS / 3);
    slow_lookups_end();
}

/* A port nothing listens on (bound, then closed). */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(sa.sin_port);
}

/* ERL_EPMD_PORT while the suite runs: a port nothing listens on (set and
 * restored around the suite, not around a case: a lookup given up on may
 * still read the environment). */
static char *saved_epmd_port;
static int epmd_port_set;

static int suite_init(void)
{
    int port = closed_port();
    const char *was = getenv("ERL_EPMD_PORT");
    char text[16];
    if (port <= 0)
        return -1;
    saved_epmd_port = was ? strdup(was) : NULL;
    snprintf(text, sizeof text, "%d", port);
    epmd_port_set = setenv("ERL_EPMD_PORT", text, 1) == 0;
    return epmd_port_set ? 0 : -1;
}

static int suite_cleanup(void)
{
    if (saved_epmd_port)
        setenv("ERL_EPMD_PORT", saved_epmd_port, 1);
    else if (epmd_port_set)
        unsetenv("ERL_EPMD_PORT");
    free(saved_epmd_port);
    saved_epmd_port = NULL;
    return 0;
}

/* The result of reaching node with epmd's port closed: its why. */
static void dial_closed_epmd(const char *node, char *why, size_t n)
{
    dialer *d = dialer_create();
    CU_ASSERT_FATAL(d != NULL);
    CU_ASSERT_EQUAL(dialer_start(d, node, 3, 2000), 0);
    CU_ASSERT_TRUE(readable(dialer_fd(d), 3000));
    dial_result r = {0};
    CU_ASSERT_EQUAL(dialer_next(d, &r), 1);
    CU_ASSERT_EQUAL(r.fd, -1);
    snprintf(why, n, "%s", r.why);
    dialer_destroy(d);
}

/* A name is looked up (on its thread) and its address used; an address in
 * text is not looked up at all. */
static void test_names_and_addresses(void)
{
    char why[512];
    int before = atomic_load(&lookups);
    dial_closed_epmd("a@127.0.0.1", why, sizeof why);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "cannot reach epmd on 127.0.0.1:"));
    CU_ASSERT_EQUAL(atomic_load(&lookups), before);
    dial_closed_epmd("a@localhost", why, sizeof why);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "cannot reach epmd on 127.0.0.1:"));
    CU_ASSERT_EQUAL(atomic_load(&lookups), before + 1);
    dial_closed_epmd("a@no-such-host.invalid", why, sizeof why);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "cannot resolve host no-such-host.invalid"));
}

/* Lookups given up on still run: past DIAL_MAX_ATTEMPTS of them, a new one
 * fails at once rather than start one more thread. */
static void test_lookups_given_up_on_are_bounded(void)
{
    dialer *d = dialer_create();
    CU_ASSERT_FATAL(d != NULL);
    char node[64];
    for (int i = 0; i < DIAL_MAX_ATTEMPTS; i++) {
        snprintf(node, sizeof node, "a@h%d.slow.test", i);
        CU_ASSERT_EQUAL(dialer_start(d, node, (uint64_t)i + 1, 100), 0);
    }
    dial_result r;
    int failed = 0;
    for (long long end = now_ms() + SLOW_MS; failed < DIAL_MAX_ATTEMPTS && now_ms() < end;)
        if (readable(dialer_fd(d), 50))
            while (dialer_next(d, &r) == 1)
                failed += r.fd < 0;
    CU_ASSERT_EQUAL(failed, DIAL_MAX_ATTEMPTS); /* each at its 100 ms; the lookups run on */
    long long t0 = now_ms();
    CU_ASSERT_EQUAL(dialer_start(d, "a@one-more.slow.test", 99, 1000), 0);
    CU_ASSERT_TRUE(readable(dialer_fd(d), 500));
    CU_ASSERT(now_ms() - t0 < 500);
    CU_ASSERT_EQUAL_FATAL(dialer_next(d, &r), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.why, "name lookups still under way"));
    dialer_destroy(d);
    slow_lookups_end();
    /* and once they are over (their threads return just after), lookups
     * run again */
    d = dialer_create();
    CU_ASSERT_FATAL(d != NULL);
    r.why[0] = '\0';
    for (long long end = now_ms() + WAIT_MS; !strstr(r.why, "no answer in time") && now_ms() < end;) {
        CU_ASSERT_EQUAL(dialer_start(d, "a@again.slow.test", 100, 100), 0);
        CU_ASSERT_TRUE(readable(dialer_fd(d), 1000));
        CU_ASSERT_EQUAL_FATAL(dialer_next(d, &r), 1);
        if (!strstr(r.why, "no answer in time"))
            usleep(20000);
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(r.why, "no answer in time"));
    dialer_destroy(d);
    slow_lookups_end();
}

void unit_suite_dial(void)
{
    CU_pSuite suite = CU_add_suite("dial", suite_init, suite_cleanup);
    CU_add_test(suite, "a slow lookup fails at the deadline", test_a_slow_lookup_fails_at_the_deadline);
    CU_add_test(suite, "destroy does not wait for a lookup", test_destroy_does_not_wait_for_a_lookup);
    CU_add_test(suite, "names are looked up, addresses not", test_names_and_addresses);
    CU_add_test(suite, "lookups given up on are bounded", test_lookups_given_up_on_are_bounded);
}

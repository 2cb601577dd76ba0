/* peer.c: a distribution peer for tests and fuzzers; see peer.h. */
#include "peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "handshake.h"

#define OUR_CHALLENGE 42u

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void peer_run(node *n, int ms)
{
    long long end = now_ms() + ms;
    do
        node_run_once(n, 1);
    while (now_ms() < end);
}

/* Let the node take a turn: at once while it may have work, and after a
 * few idle rounds with a short wait (a timer, a peer on its way). */
static void pump(node *n, int *idle)
{
    node_run_once(n, ++*idle > 20 ? 1 : 0);
}

int peer_write(peer *p, const void *bytes, size_t len)
{
    const char *b = bytes;
    long long end = now_ms() + 2000;
    int idle = 0;
    while (len) {
        ssize_t w = send(p->fd, b, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EINTR || errno == EAGAIN)) {
            if (now_ms() >= end)
                return -1;
            pump(p->n, &idle); /* the node reads, making room */
            continue;
        }
        if (w <= 0)
            return -1;
        b += w;
        len -= (size_t)w;
        idle = 0;
    }
    return 0;
}

/* Read what the socket has: 1 if something came, 0 if nothing, -1 at EOF or error. */
static int fill(peer *p)
{
    if (buffer_reserve(&p->in, 65536) < 0)
        return -1;
    ssize_t r = recv(p->fd, buffer_tail(&p->in), p->in.cap - p->in.end, MSG_DONTWAIT);
    if (r > 0) {
        p->in.end += (size_t)r;
        return 1;
    }
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    return -1;
}

/* The next packet with a `hdr`-byte length, running the node meanwhile. */
static int next_packet(peer *p, node *n, int hdr, int timeout_ms, const char **pkt, size_t *len)
{
    long long end = now_ms() + timeout_ms;
    int idle = 0;
    for (;;) {
        size_t have = buffer_len(&p->in);
        if (have >= (size_t)hdr) {
            const char *h = buffer_head(&p->in);
            size_t l = hdr == 2 ? get_u16(h) : get_u32(h);
            if (have - (size_t)hdr >= l) {
                *pkt = h + hdr;
                *len = l;
                buffer_consume(&p->in, (size_t)hdr + l);
                return 1; /* the bytes stay in place until the next fill */
            }
        }
        int r = fill(p);
        if (r < 0)
            return -1;
        if (r == 0) {
            if (now_ms() >= end)
                return 0;
            pump(n, &idle);
        } else {
            idle = 0;
        }
    }
}

static int send_packet16(peer *p, const char *body, size_t len)
{
    char h[2];
    put_u16(h, (uint32_t)len);
    return peer_write(p, h, 2) < 0 || peer_write(p, body, len) < 0 ? -1 : 0;
}

static int open_socket(peer *p, node *n, int rcvbuf)
{
    memset(p, 0, sizeof *p);
    p->n = n;
    p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p->fd < 0)
        return -1;
    if (rcvbuf > 0)
        setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)node_port(n));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    /* Without blocking: with its accept queue full (the node not running),
     * a blocking connect waits for SYN retries, a minute and more. */
    fcntl(p->fd, F_SETFL, fcntl(p->fd, F_GETFL) | O_NONBLOCK);
    int rc = connect(p->fd, (struct sockaddr *)&sa, sizeof sa);
    long long end = now_ms() + 2000;
    int idle = 0;
    while (rc < 0 && errno == EINPROGRESS) {
        struct pollfd pf = {p->fd, POLLOUT, 0};
        if (poll(&pf, 1, 0) == 1) {
            int err = 0;
            socklen_t el = sizeof err;
            getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &el);
            rc = err ? -1 : 0;
            break;
        }
        if (now_ms() >= end)
            break;
        pump(n, &idle); /* the node accepts, making room */
    }
    if (rc < 0) {
        close(p->fd);
        p->fd = -1;
        return -1;
    }
    setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

int peer_open(peer *p, node *n)
{
    return open_socket(p, n, 0);
}

/* <name.1.0>: NEW_PID_EXT, SMALL_ATOM_UTF8_EXT node, id, serial, creation */
static void set_identity(peer *p, const char *name)
{
    size_t nlen = strlen(name);
    memcpy(p->name, name, nlen + 1);
    p->creation = 0x1234567u;
    char *b = p->pid;
    b[0] = 88;
    b[1] = 119;
    b[2] = (char)nlen;
    memcpy(b + 3, name, nlen);
    put_u32(b + 3 + nlen, 1);
    put_u32(b + 7 + nlen, 0);
    put_u32(b + 11 + nlen, p->creation);
    p->pid_len = 15 + nlen;
}

int peer_attach(peer *p, node *n, const char *name)
{
    int fds[2];
    memset(p, 0, sizeof *p);
    p->fd = -1;
    if (strlen(name) >= sizeof p->name || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
        return -1;
    if (node_attach(n, fds[0], name, HANDSHAKE_OUR_FLAGS | DFLAG_PUBLISHED) < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    p->fd = fds[1];
    p->n = n;
    set_identity(p, name);
    return 0;
}

int peer_stranger(peer *p, node *n)
{
    int fds[2];
    memset(p, 0, sizeof *p);
    p->fd = -1;
    p->n = n;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
        return -1;
    if (node_accept(n, fds[0]) < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    p->fd = fds[1];
    return 0;
}

int peer_connect(peer *p, node *n, const char *name, const char *cookie, int rcvbuf)
{
    return peer_connect_midway(p, n, name, cookie, rcvbuf, NULL, NULL);
}

int peer_connect_midway(peer *p, node *n, const char *name, const char *cookie, int rcvbuf,
                        void (*midway)(void *), void *arg)
{
    if (open_socket(p, n, rcvbuf) < 0)
        return -1;
    size_t nlen = strlen(name);
    if (nlen >= sizeof p->name || nlen > 255)
        return -1;
    set_identity(p, name);
    /* 'N', flags, creation, name */
    char pkt[1 + 8 + 4 + 2 + 256];
    uint64_t flags = HANDSHAKE_OUR_FLAGS | DFLAG_PUBLISHED;
    pkt[0] = 'N';
    put_u32(pkt + 1, (uint32_t)(flags >> 32));
    put_u32(pkt + 5, (uint32_t)flags);
    put_u32(pkt + 9, p->creation);
    put_u16(pkt + 13, (uint32_t)nlen);
    memcpy(pkt + 15, name, nlen);
    const char *in;
    size_t len;
    if (send_packet16(p, pkt, 15 + nlen) < 0 || next_packet(p, n, 2, 2000, &in, &len) != 1 ||
        len < 3 || memcmp(in, "sok", 3) != 0 || next_packet(p, n, 2, 2000, &in, &len) != 1 ||
        len < 19 || in[0] != 'N')
        return -1;
    uint32_t challenge = get_u32(in + 9);
    if (midway)
        midway(arg);
    char reply[21];
    reply[0] = 'r';
    put_u32(reply + 1, OUR_CHALLENGE);
    handshake_digest(cookie, challenge, (unsigned char *)reply + 5);
    unsigned char expect[16];
    handshake_digest(cookie, OUR_CHALLENGE, expect);
    if (send_packet16(p, reply, sizeof reply) < 0 || next_packet(p, n, 2, 2000, &in, &len) != 1 ||
        len != 17 || in[0] != 'a' || memcmp(in + 1, expect, 16) != 0)
        return -1;
    return 0;
}

void peer_close(peer *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    buffer_free(&p->in);
}

int peer_send(peer *p, term_view ctrl, term_view msg)
{
    size_t len = 2 + ctrl.len + (msg.ptr ? 1 + msg.len : 0);
    char head[6] = {0, 0, 0, 0, 112, (char)131};
    put_u32(head, (uint32_t)len);
    char v = (char)131;
    if (peer_write(p, head, sizeof head) < 0 || peer_write(p, ctrl.ptr, ctrl.len) < 0)
        return -1;
    if (msg.ptr && (peer_write(p, &v, 1) < 0 || peer_write(p, msg.ptr, msg.len) < 0))
        return -1;
    return 0;
}

int peer_recv(peer *p, node *n, int timeout_ms, const char **frame, size_t *len)
{
    for (;;) {
        int r = next_packet(p, n, 4, timeout_ms, frame, len);
        if (r != 1 || *len > 0)
            return r;
    }
}

void peer_drain(peer *p, node *n)
{
    for (int idle = 0; idle < 2;) {
        buffer_consume(&p->in, buffer_len(&p->in));
        int r = fill(p);
        if (r < 0)
            return;
        node_run_once(n, 0);
        idle = r ? 0 : idle + 1;
    }
}

int peer_closed(peer *p, node *n, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    int idle = 0;
    for (;;) {
        buffer_consume(&p->in, buffer_len(&p->in));
        if (fill(p) < 0)
            return 1;
        if (now_ms() >= end)
            return 0;
        pump(n, &idle);
    }
}

long peer_frame_op(const char *frame, size_t len, int *msg_index)
{
    int i = 2, arity;
    long op;
    *msg_index = -1;
    if (len < 2 || ei_decode_tuple_header(frame, &i, &arity) < 0 || ei_decode_long(frame, &i, &op) < 0)
        return -1;
    for (int k = 1; k < arity; k++)
        if (ei_skip_term(frame, &i) < 0)
            return -1;
    if ((size_t)i < len)
        *msg_index = i + 1;
    return op;
}

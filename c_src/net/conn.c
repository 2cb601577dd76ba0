/* conn.c: a connection's socket, buffers and framing; see conn.h. */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK (64 * 1024)
#define HANDSHAKE_CHUNK 2048      /* handshake packets are small: idle peers cost little */
#define KEEP_BUFFER (1024 * 1024) /* memory kept between frames */

static int is_tcp(int fd)
{
    int domain = 0;
    socklen_t len = sizeof domain;
    return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
           (domain == AF_INET || domain == AF_INET6);
}

conn *conn_create(int fd, long long now_ms)
{
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    c->state = CONN_HANDSHAKE;
    c->opened_ms = c->read_ms = c->write_ms = now_ms;
    return c;
}

void conn_destroy(conn *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    buffer_free(&c->in);
    buffer_free(&c->out);
    buffer_free(&c->held);
    free(c);
}

const char *conn_peer(const conn *c) { return c->hs.peer_name[0] ? c->hs.peer_name : "?"; }

enum conn_io conn_read(conn *c, size_t want)
{
    size_t chunk = c->state == CONN_HANDSHAKE ? HANDSHAKE_CHUNK : READ_CHUNK;
    if (want < chunk)
        want = chunk;
    if (buffer_reserve(&c->in, want) < 0)
        return CONN_IO_ERROR;
    if (c->state == CONN_UP && !c->peeks)
        c->peeks = is_tcp(c->fd) ? 1 : -1;
    int peek = c->state == CONN_UP && c->peeks > 0;
    ssize_t n = recv(c->fd, buffer_tail(&c->in), c->in.cap - c->in.end, peek ? MSG_PEEK : 0);
    if (n > 0) {
        if (peek)
            c->unreleased += (size_t)n;
        c->in.end += (size_t)n;
        c->bytes_in += (uint64_t)n;
        return CONN_IO_OK;
    }
    if (n == 0)
        return CONN_IO_EOF;
    return errno == EAGAIN || errno == EINTR ? CONN_IO_AGAIN : CONN_IO_ERROR;
}

enum conn_io conn_release(conn *c)
{
    /* MSG_TRUNC: TCP drops the bytes without copying them. The buffer is
     * there for the syscall's checks (and valgrind's) only; peeks are TCP's
     * alone (is_tcp), since a Unix socket would copy. */
    char spare[256];
    while (c->unreleased > 0) {
        char *into = c->in.cap >= sizeof spare ? c->in.data : spare;
        size_t room = c->in.cap >= sizeof spare ? c->in.cap : sizeof spare;
        size_t want = c->unreleased < room ? c->unreleased : room;
        ssize_t n = recv(c->fd, into, want, MSG_TRUNC | MSG_DONTWAIT);
        if (n > 0 && (size_t)n <= want) {
            c->unreleased -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        c->unreleased = 0;
        return CONN_IO_ERROR;
    }
    return CONN_IO_OK;
}

int conn_frame(const conn *c, int header_len, size_t max, const char **frame, size_t *len)
{
    size_t have = buffer_len(&c->in);
    if (have < (size_t)header_len)
        return 0;
    const char *p = buffer_head(&c->in);
    size_t n = header_len == 2 ? get_u16(p) : get_u32(p);
    if (n > max)
        return -1;
    if (have - (size_t)header_len < n)
        return 0;
    *frame = p + header_len;
    *len = n;
    return 1;
}

size_t conn_frame_len(const conn *c, int header_len)
{
    if (buffer_len(&c->in) < (size_t)header_len)
        return 0;
    const char *p = buffer_head(&c->in);
    return header_len == 2 ? get_u16(p) : get_u32(p);
}

int conn_drain(conn *c)
{
    size_t n = buffer_len(&c->in) < c->drain ? buffer_len(&c->in) : c->drain;
    buffer_consume(&c->in, n);
    buffer_shrink(&c->in, KEEP_BUFFER);
    c->drain -= n;
    return c->drain == 0;
}

void conn_consume(conn *c, int header_len, size_t len)
{
    buffer_consume(&c->in, (size_t)header_len + len);
    buffer_shrink(&c->in, KEEP_BUFFER);
}

enum conn_io conn_flush(conn *c, int *progress)
{
    enum conn_io r = CONN_IO_OK;
    *progress = 0;
    while (buffer_len(&c->out) > 0) {
        ssize_t n = send(c->fd, buffer_head(&c->out), buffer_len(&c->out), MSG_NOSIGNAL);
        if (n > 0) {
            buffer_consume(&c->out, (size_t)n);
            c->bytes_out += (uint64_t)n;
            *progress = 1;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        r = n < 0 && errno == EAGAIN ? CONN_IO_AGAIN : CONN_IO_ERROR;
        break;
    }
    buffer_shrink(&c->out, KEEP_BUFFER);
    return r;
}

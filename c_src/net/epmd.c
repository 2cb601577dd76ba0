/* epmd.c: ALIVE2 registration with epmd on 127.0.0.1, and PORT_PLEASE2; see epmd.h. */
#include "epmd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define EPMD_ALIVE2_REQ    120
#define EPMD_ALIVE2_RESP   121
#define EPMD_ALIVE2_X_RESP 118
#define EPMD_PORT_PLEASE2_REQ 122
#define EPMD_PORT2_RESP    119
#define EPMD_HIDDEN_NODE   72
#define EPMD_PROTO_TCP     0
#define DIST_VERSION_HIGH  6
#define DIST_VERSION_LOW   5

int epmd_port(void)
{
    const char *s = getenv("ERL_EPMD_PORT");
    if (s && *s) {
        char *end;
        long p = strtol(s, &end, 10);
        if (*end == '\0' && p > 0 && p < 65536)
            return (int)p;
    }
    return 4369;
}

static int read_full(int fd, unsigned char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

int epmd_publish(const char *alive, int listen_port, uint32_t *creation, char *err, size_t errlen)
{
    size_t nlen = strlen(alive);
    if (nlen == 0 || nlen > 255) {
        snprintf(err, errlen, "bad node name '%s'", alive);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)epmd_port());
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        snprintf(err, errlen, "cannot reach epmd on 127.0.0.1:%d (%s); start it with `epmd -daemon`",
                 epmd_port(), strerror(errno));
        close(fd);
        return -1;
    }
    unsigned char req[2 + 13 + 255];
    size_t body = 13 + nlen, i = 0;
    req[i++] = (unsigned char)(body >> 8);
    req[i++] = (unsigned char)body;
    req[i++] = EPMD_ALIVE2_REQ;
    req[i++] = (unsigned char)(listen_port >> 8);
    req[i++] = (unsigned char)listen_port;
    req[i++] = EPMD_HIDDEN_NODE;
    req[i++] = EPMD_PROTO_TCP;
    req[i++] = 0; req[i++] = DIST_VERSION_HIGH;
    req[i++] = 0; req[i++] = DIST_VERSION_LOW;
    req[i++] = (unsigned char)(nlen >> 8);
    req[i++] = (unsigned char)nlen;
    memcpy(req + i, alive, nlen);
    i += nlen;
    req[i++] = 0; req[i++] = 0; /* no extra */
    if (write(fd, req, i) != (ssize_t)i) {
        snprintf(err, errlen, "epmd: write failed");
        close(fd);
        return -1;
    }
    unsigned char resp[6];
    if (read_full(fd, resp, 2) < 0) {
        snprintf(err, errlen, "epmd closed the connection (is the name '%s' taken?)", alive);
        close(fd);
        return -1;
    }
    if ((resp[0] != EPMD_ALIVE2_X_RESP && resp[0] != EPMD_ALIVE2_RESP) || resp[1] != 0) {
        snprintf(err, errlen, "epmd refused the name '%s' (already registered?)", alive);
        close(fd);
        return -1;
    }
    size_t clen = resp[0] == EPMD_ALIVE2_X_RESP ? 4 : 2;
    if (read_full(fd, resp + 2, clen) < 0) {
        snprintf(err, errlen, "epmd: short answer");
        close(fd);
        return -1;
    }
    uint32_t c = 0;
    for (size_t k = 0; k < clen; k++)
        c = (c << 8) | resp[2 + k];
    *creation = c;
    struct timeval none = {0, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
    return fd;
}

int epmd_port_please_request(const char *alive, unsigned char *req, size_t cap)
{
    size_t nlen = strlen(alive);
    if (nlen == 0 || nlen > 255 || cap < 3 + nlen)
        return -1;
    req[0] = (unsigned char)((nlen + 1) >> 8);
    req[1] = (unsigned char)(nlen + 1);
    req[2] = EPMD_PORT_PLEASE2_REQ;
    memcpy(req + 3, alive, nlen);
    return (int)(3 + nlen);
}

int epmd_port_please_parse(const unsigned char *resp, size_t len, int *port, char *why, size_t whylen)
{
    /* 'w', result, then on success: port:16, node type, protocol,
     * highest:16, lowest:16, name length:16, name, extra length:16, extra. */
    if (len >= 1 && resp[0] != EPMD_PORT2_RESP) {
        snprintf(why, whylen, "epmd sent something other than a port answer");
        return -1;
    }
    if (len < 2)
        return 0;
    if (resp[1] != 0) {
        snprintf(why, whylen, "epmd does not know it (not started, or gone)");
        return -1;
    }
    if (len < 10)
        return 0;
    int highest = resp[6] << 8 | resp[7], lowest = resp[8] << 8 | resp[9];
    if (resp[5] != EPMD_PROTO_TCP || highest < DIST_VERSION_HIGH || lowest > DIST_VERSION_HIGH) {
        snprintf(why, whylen, "it speaks distribution versions %d to %d over protocol %d, not 6 over TCP",
                 lowest, highest, resp[5]);
        return -1;
    }
    *port = resp[2] << 8 | resp[3];
    return 1;
}

/* handshake.c: both sides of the distribution handshake; see handshake.h. */
#include "handshake.h"

#include <stdio.h>
#include <string.h>

#include "md5.h"
#include "term_template.h"

void handshake_init(handshake *hs, const char *our_name, const char *cookie,
                    uint32_t our_creation, uint32_t challenge)
{
    memset(hs, 0, sizeof *hs);
    hs->state = HS_AWAIT_NAME;
    hs->our_name = our_name;
    hs->cookie = cookie;
    hs->our_creation = our_creation;
    hs->our_challenge = challenge;
}

void handshake_digest(const char *cookie, uint32_t challenge, unsigned char out[16])
{
    char num[16];
    int n = snprintf(num, sizeof num, "%u", challenge);
    md5_ctx ctx;
    md5_init(&ctx);
    md5_update(&ctx, cookie, strlen(cookie));
    md5_update(&ctx, num, (size_t)n);
    md5_final(&ctx, out);
}

static enum handshake_state fail(handshake *hs, char *why, size_t whylen, const char *reason)
{
    snprintf(why, whylen, "%s", reason);
    hs->state = HS_FAILED;
    return HS_FAILED;
}

static int send_packet(buffer *out, const char *p, size_t n)
{
    char len[2];
    put_u16(len, (uint32_t)n);
    return buffer_append(out, len, 2) < 0 || buffer_append(out, p, n) < 0 ? -1 : 0;
}

int handshake_name_ok(const char *name, size_t n)
{
    if (n == 0 || n > HANDSHAKE_MAX_NAME || !memchr(name, '@', n) || name[0] == '@' || name[n - 1] == '@')
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return 0;
    return atom_text_ok(name, n);
}

static int set_peer_name(handshake *hs, const char *name, size_t n)
{
    if (!handshake_name_ok(name, n))
        return -1;
    memcpy(hs->peer_name, name, n);
    hs->peer_name[n] = '\0';
    return 0;
}

/* 's' and the status (ok, ok_simultaneous), then our 'N' challenge. */
static int send_status_and_challenge(handshake *hs, const char *status, buffer *out)
{
    size_t nlen = strlen(hs->our_name);
    char pkt[1 + 8 + 4 + 4 + 2 + HANDSHAKE_MAX_NAME];
    uint64_t flags = HANDSHAKE_OUR_FLAGS;
    if (send_packet(out, status, strlen(status)) < 0)
        return -1;
    pkt[0] = 'N';
    put_u32(pkt + 1, (uint32_t)(flags >> 32));
    put_u32(pkt + 5, (uint32_t)flags);
    put_u32(pkt + 9, hs->our_challenge);
    put_u32(pkt + 13, hs->our_creation);
    put_u16(pkt + 17, (uint32_t)nlen);
    memcpy(pkt + 19, hs->our_name, nlen);
    return send_packet(out, pkt, 19 + nlen);
}

static enum handshake_state on_name(handshake *hs, const char *p, size_t len, buffer *out,
                                    char *why, size_t whylen)
{
    if (len >= 15 && p[0] == 'N') {
        hs->peer_flags = get_u64(p + 1);
        hs->peer_creation = get_u32(p + 9);
        size_t nlen = get_u16(p + 13);
        if (15 + nlen > len || set_peer_name(hs, p + 15, nlen) < 0)
            return fail(hs, why, whylen, "bad node name in handshake");
        hs->state = HS_AWAIT_REPLY;
    } else if (len >= 7 && p[0] == 'n') {
        hs->peer_flags = get_u32(p + 3);
        if (set_peer_name(hs, p + 7, len - 7) < 0)
            return fail(hs, why, whylen, "bad node name in handshake");
        hs->state = HS_AWAIT_COMPLEMENT;
    } else {
        return fail(hs, why, whylen, "not a distribution handshake");
    }
    /* A peer that says it is this node would pass as the owner of this
     * node's own pids (the peer-origin checks of dist.c). */
    if (strcmp(hs->peer_name, hs->our_name) == 0)
        return fail(hs, why, whylen, "peer claims this node's own name");
    if ((hs->peer_flags & HANDSHAKE_REQUIRED_FLAGS) != HANDSHAKE_REQUIRED_FLAGS &&
        hs->state == HS_AWAIT_REPLY)
        return fail(hs, why, whylen, "peer lacks flags mandatory since OTP 25");
    if (hs->state == HS_AWAIT_COMPLEMENT && !(hs->peer_flags & DFLAG_HANDSHAKE_23))
        return fail(hs, why, whylen, "peer is older than OTP 23");
    /* A simultaneous connect: settled by the names, as OTP does. */
    int dialing = hs->dialing ? hs->dialing(hs->dialing_ctx, hs->peer_name) : HS_NOT_DIALING;
    if (dialing == HS_DIALING && strcmp(hs->our_name, hs->peer_name) > 0) {
        hs->nok = 1;
        send_packet(out, "snok", 4);
        return fail(hs, why, whylen, "simultaneous connect: this node's own attempt goes on");
    }
    hs->simultaneous = dialing != HS_NOT_DIALING;
    if (send_status_and_challenge(hs, hs->simultaneous ? "sok_simultaneous" : "sok", out) < 0)
        return fail(hs, why, whylen, "out of memory");
    return hs->state;
}

static enum handshake_state on_complement(handshake *hs, const char *p, size_t len,
                                          char *why, size_t whylen)
{
    if (len != 9 || p[0] != 'c')
        return fail(hs, why, whylen, "bad handshake complement");
    hs->peer_flags |= (uint64_t)get_u32(p + 1) << 32;
    hs->peer_creation = get_u32(p + 5);
    if ((hs->peer_flags & HANDSHAKE_REQUIRED_FLAGS) != HANDSHAKE_REQUIRED_FLAGS)
        return fail(hs, why, whylen, "peer lacks flags mandatory since OTP 25");
    hs->state = HS_AWAIT_REPLY;
    return hs->state;
}

static enum handshake_state on_reply(handshake *hs, const char *p, size_t len, buffer *out,
                                     char *why, size_t whylen)
{
    unsigned char expect[16], ack[17];
    if (len != 21 || p[0] != 'r')
        return fail(hs, why, whylen, "bad challenge reply");
    handshake_digest(hs->cookie, hs->our_challenge, expect);
    if (memcmp(expect, p + 5, 16) != 0)
        return fail(hs, why, whylen, "wrong cookie (challenge digest mismatch)");
    ack[0] = 'a';
    handshake_digest(hs->cookie, get_u32(p + 1), ack + 1);
    if (send_packet(out, (const char *)ack, sizeof ack) < 0)
        return fail(hs, why, whylen, "out of memory");
    hs->state = HS_UP;
    return hs->state;
}

/* ---- the initiating side ---- */

int handshake_init_initiator(handshake *hs, const char *our_name, const char *cookie,
                             uint32_t our_creation, uint32_t challenge, const char *peer_name,
                             buffer *out)
{
    handshake_init(hs, our_name, cookie, our_creation, challenge);
    size_t nlen = strlen(our_name), plen = strlen(peer_name);
    if (nlen > HANDSHAKE_MAX_NAME || plen == 0 || plen > HANDSHAKE_MAX_NAME)
        return -1;
    memcpy(hs->peer_name, peer_name, plen + 1);
    char pkt[1 + 8 + 4 + 2 + HANDSHAKE_MAX_NAME];
    uint64_t flags = HANDSHAKE_OUR_FLAGS;
    pkt[0] = 'N';
    put_u32(pkt + 1, (uint32_t)(flags >> 32));
    put_u32(pkt + 5, (uint32_t)flags);
    put_u32(pkt + 9, our_creation);
    put_u16(pkt + 13, (uint32_t)nlen);
    memcpy(pkt + 15, our_name, nlen);
    hs->state = HS_AWAIT_STATUS;
    return send_packet(out, pkt, 15 + nlen);
}

static int status_is(const char *p, size_t len, const char *status)
{
    return len == 1 + strlen(status) && memcmp(p + 1, status, len - 1) == 0;
}

static enum handshake_state on_status(handshake *hs, const char *p, size_t len, buffer *out,
                                      char *why, size_t whylen)
{
    if (len < 1 || p[0] != 's')
        return fail(hs, why, whylen, "bad handshake status");
    if (status_is(p, len, "ok") || status_is(p, len, "ok_simultaneous")) {
        hs->state = HS_AWAIT_CHALLENGE;
    } else if (status_is(p, len, "alive")) {
        /* The peer still holds a connection to this node's name that this
         * node does not have (an earlier run, or one gone unnoticed): tell it
         * to drop that one for this attempt, as OTP does while it dials. */
        if (send_packet(out, "strue", 5) < 0)
            return fail(hs, why, whylen, "out of memory");
        hs->state = HS_AWAIT_CHALLENGE;
    } else if (status_is(p, len, "nok")) {
        hs->nok = 1;
        return fail(hs, why, whylen, "simultaneous connect: the peer's own attempt goes on");
    } else if (status_is(p, len, "not_allowed")) {
        return fail(hs, why, whylen, "the peer does not allow this node (net_kernel:allow/1)");
    } else {
        snprintf(why, whylen, "the peer refused the connection (status \"%.*s\")",
                 (int)(len - 1 < 40 ? len - 1 : 40), p + 1);
        hs->state = HS_FAILED;
    }
    return hs->state;
}

static enum handshake_state on_challenge(handshake *hs, const char *p, size_t len, buffer *out,
                                         char *why, size_t whylen)
{
    if (len < 19 || p[0] != 'N')
        return fail(hs, why, whylen, "bad handshake challenge");
    size_t nlen = get_u16(p + 17);
    if (19 + nlen != len)
        return fail(hs, why, whylen, "bad handshake challenge");
    if (nlen != strlen(hs->peer_name) || memcmp(p + 19, hs->peer_name, nlen) != 0) {
        snprintf(why, whylen, "reached a node named %.*s instead", (int)(nlen < 200 ? nlen : 200), p + 19);
        hs->state = HS_FAILED;
        return HS_FAILED;
    }
    hs->peer_flags = get_u64(p + 1);
    hs->peer_creation = get_u32(p + 13);
    if ((hs->peer_flags & HANDSHAKE_REQUIRED_FLAGS) != HANDSHAKE_REQUIRED_FLAGS)
        return fail(hs, why, whylen, "peer lacks flags mandatory since OTP 25");
    unsigned char reply[1 + 4 + 16];
    reply[0] = 'r';
    put_u32((char *)reply + 1, hs->our_challenge);
    handshake_digest(hs->cookie, get_u32(p + 9), reply + 5);
    if (send_packet(out, (const char *)reply, sizeof reply) < 0)
        return fail(hs, why, whylen, "out of memory");
    hs->state = HS_AWAIT_ACK;
    return hs->state;
}

static enum handshake_state on_ack(handshake *hs, const char *p, size_t len, char *why, size_t whylen)
{
    unsigned char expect[16];
    if (len != 17 || p[0] != 'a')
        return fail(hs, why, whylen, "bad challenge ack");
    handshake_digest(hs->cookie, hs->our_challenge, expect);
    if (memcmp(expect, p + 1, 16) != 0)
        return fail(hs, why, whylen, "wrong cookie (the peer's ack does not match)");
    hs->state = HS_UP;
    return hs->state;
}

enum handshake_state handshake_packet(handshake *hs, const char *pkt, size_t len,
                                      buffer *out, char *why, size_t whylen)
{
    switch (hs->state) {
    case HS_AWAIT_NAME:
        return on_name(hs, pkt, len, out, why, whylen);
    case HS_AWAIT_COMPLEMENT:
        return on_complement(hs, pkt, len, why, whylen);
    case HS_AWAIT_REPLY:
        return on_reply(hs, pkt, len, out, why, whylen);
    case HS_AWAIT_STATUS:
        return on_status(hs, pkt, len, out, why, whylen);
    case HS_AWAIT_CHALLENGE:
        return on_challenge(hs, pkt, len, out, why, whylen);
    case HS_AWAIT_ACK:
        return on_ack(hs, pkt, len, why, whylen);
    default:
        return fail(hs, why, whylen, "handshake already over");
    }
}

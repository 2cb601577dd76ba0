/* handshake.c: the accepting side of the distribution handshake; see handshake.h. */
#include "handshake.h"

#include <stdio.h>
#include <string.h>

#include "md5.h"

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

static int set_peer_name(handshake *hs, const char *name, size_t n)
{
    if (n == 0 || n > HANDSHAKE_MAX_NAME || !memchr(name, '@', n) || memchr(name, '\0', n))
        return -1;
    memcpy(hs->peer_name, name, n);
    hs->peer_name[n] = '\0';
    return 0;
}

/* 's' "ok" then our 'N' challenge. */
static int send_status_and_challenge(handshake *hs, buffer *out)
{
    size_t nlen = strlen(hs->our_name);
    char pkt[1 + 8 + 4 + 4 + 2 + HANDSHAKE_MAX_NAME];
    uint64_t flags = HANDSHAKE_OUR_FLAGS;
    if (send_packet(out, "sok", 3) < 0)
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
    if (send_status_and_challenge(hs, out) < 0)
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
    default:
        return fail(hs, why, whylen, "handshake already over");
    }
}

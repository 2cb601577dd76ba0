/*
 * fuzz_handshake.c: either side of the distribution handshake (handshake.c)
 * fed arbitrary packets. The input's first byte chooses: bit 0, whether a
 * packet that carries the digest of our challenge (a challenge reply 'r'
 * when accepting, an ack 'a' when initiating) has it made right, so that
 * the fuzzer also gets past the cookie; bit 1, the initiating side; bits
 * 2-3, what the accepting side's node says of its own attempt to reach the
 * peer (not dialing, dialing, yielded: a simultaneous connect). Then a
 * sequence of packets, each [u16 length][bytes]. Checked:
 *   - the state only moves forward, and ends in HS_UP or HS_FAILED for good;
 *   - what the handshake writes is whole 2-byte-length packets;
 *   - HS_UP only after a digest of our challenge with our cookie, with a
 *     peer name that is a NUL-terminated name@host (the one dialed, when
 *     initiating) and the mandatory flags.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handshake.h"

#define COOKIE "fuzz-cookie"
#define CHALLENGE 0x12345678u

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_handshake: %s\n", what);
    abort();
}

#define DIALED "p@127.0.0.1"

static int dialing_answer;
static int dialing(void *ctx, const char *peer)
{
    (void)ctx;
    if (!strchr(peer, '@'))
        fail("asked about a malformed peer name");
    return dialing_answer;
}

static void check_output(const buffer *out)
{
    size_t at = 0, len = buffer_len(out);
    const char *p = buffer_head(out);
    while (at < len) {
        if (len - at < 2 || len - at - 2 < get_u16(p + at))
            fail("the handshake wrote a packet cut short");
        at += 2 + get_u16(p + at);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    handshake hs;
    buffer out = {0};
    char why[256] = "";
    int fix_digest = size > 0 && (data[0] & 1);
    int initiator = size > 0 && (data[0] & 2);
    dialing_answer = size > 0 ? (data[0] >> 2) % 3 : 0;
    size_t at = size > 0 ? 1 : 0;
    int digest_right = 0;
    char digest_tag = initiator ? 'a' : 'r';
    size_t digest_len = initiator ? 17 : 21, digest_at = initiator ? 1 : 5;
    if (initiator) {
        if (handshake_init_initiator(&hs, "kv@127.0.0.1", COOKIE, 7, CHALLENGE, DIALED, &out) < 0)
            fail("cannot start initiating");
        check_output(&out);
    } else {
        handshake_init(&hs, "kv@127.0.0.1", COOKIE, 7, CHALLENGE);
        hs.dialing = dialing;
    }
    enum handshake_state last = hs.state;
    while (at + 2 <= size) {
        size_t len = get_u16((const char *)data + at);
        at += 2;
        if (len > size - at)
            len = size - at;
        char *pkt = malloc(len ? len : 1); /* exactly the packet: overreads are seen */
        memcpy(pkt, data + at, len);
        at += len;
        if (fix_digest && len == digest_len && pkt[0] == digest_tag)
            handshake_digest(COOKIE, CHALLENGE, (unsigned char *)pkt + digest_at);
        unsigned char expect[16];
        handshake_digest(COOKIE, CHALLENGE, expect);
        digest_right = len == digest_len && pkt[0] == digest_tag && memcmp(pkt + digest_at, expect, 16) == 0;
        enum handshake_state s = handshake_packet(&hs, pkt, len, &out, why, sizeof why);
        free(pkt);
        check_output(&out);
        if (s != hs.state)
            fail("the returned state is not the handshake's");
        if (s == HS_FAILED) {
            if (!why[0])
                fail("failed without saying why");
            break;
        }
        if (s < last)
            fail("the state went backwards");
        if (s == HS_UP) {
            if (!digest_right)
                fail("up without our digest");
            if (!memchr(hs.peer_name, '\0', sizeof hs.peer_name) || !strchr(hs.peer_name, '@'))
                fail("up with a malformed peer name");
            if (initiator && strcmp(hs.peer_name, DIALED) != 0)
                fail("up with a node other than the one dialed");
            if ((hs.peer_flags & HANDSHAKE_REQUIRED_FLAGS) != HANDSHAKE_REQUIRED_FLAGS)
                fail("up without the mandatory flags");
            char again[8];
            if (handshake_packet(&hs, again, 0, &out, why, sizeof why) != HS_FAILED)
                fail("a packet after the end was taken");
            break;
        }
        last = s;
        why[0] = '\0';
    }
    buffer_free(&out);
    return 0;
}

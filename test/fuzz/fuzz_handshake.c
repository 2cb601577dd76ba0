/*
 * fuzz_handshake.c: the accepting side of the distribution handshake
 * (handshake.c) fed arbitrary packets. The input is a sequence of packets,
 * each [u16 length][bytes]; a packet that starts with 'r' and is as long as
 * a challenge reply may have its digest made right (when the input's first
 * byte is odd), so that the fuzzer also gets past the cookie. Checked:
 *   - the state only moves forward, and ends in HS_UP or HS_FAILED for good;
 *   - what the handshake writes is whole 2-byte-length packets;
 *   - HS_UP only after a digest of our challenge with our cookie, with a
 *     peer name that is a NUL-terminated name@host and the mandatory flags.
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
    size_t at = size > 0 ? 1 : 0;
    int digest_right = 0;
    handshake_init(&hs, "kv@127.0.0.1", COOKIE, 7, CHALLENGE);
    enum handshake_state last = hs.state;
    while (at + 2 <= size) {
        size_t len = get_u16((const char *)data + at);
        at += 2;
        if (len > size - at)
            len = size - at;
        char *pkt = malloc(len ? len : 1); /* exactly the packet: overreads are seen */
        memcpy(pkt, data + at, len);
        at += len;
        if (fix_digest && len == 21 && pkt[0] == 'r')
            handshake_digest(COOKIE, CHALLENGE, (unsigned char *)pkt + 5);
        unsigned char expect[16];
        handshake_digest(COOKIE, CHALLENGE, expect);
        digest_right = len == 21 && pkt[0] == 'r' && memcmp(pkt + 5, expect, 16) == 0;
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

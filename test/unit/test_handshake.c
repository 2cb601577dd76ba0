/* test_handshake.c: the accepting side of the handshake, driven byte by byte
 * as an OTP 25+ initiator would drive it. */
#include <string.h>

#include "handshake.h"
#include "unit.h"

#define COOKIE "sekrit"
#define PEER "t@127.0.0.1"
#define PEER_FLAGS (HANDSHAKE_REQUIRED_FLAGS | DFLAG_DIST_MONITOR | DFLAG_DIST_MONITOR_NAME | \
                    DFLAG_UNLINK_ID | DFLAG_V4_NC | DFLAG_ALIAS | DFLAG_PUBLISHED)

static size_t name_packet(char *p, uint64_t flags, const char *name)
{
    size_t n = strlen(name);
    p[0] = 'N';
    put_u32(p + 1, (uint32_t)(flags >> 32));
    put_u32(p + 5, (uint32_t)flags);
    put_u32(p + 9, 77);
    put_u16(p + 13, (uint32_t)n);
    memcpy(p + 15, name, n);
    return 15 + n;
}

static void test_digest_matches_otp(void)
{
    /* erlang:md5("sekrit" ++ integer_to_list(3735928559)) on OTP 25 */
    static const unsigned char otp[16] = {78, 26, 153, 157, 169, 36, 70, 187,
                                          174, 9, 84, 241, 179, 44, 65, 176};
    unsigned char d[16];
    handshake_digest(COOKIE, 3735928559u, d);
    CU_ASSERT_EQUAL(memcmp(d, otp, 16), 0);
}

/* Feed the name packet; check status and challenge; return our challenge. */
static uint32_t start(handshake *hs, buffer *out, uint64_t flags)
{
    char pkt[64], why[128];
    handshake_init(hs, "kv@127.0.0.1", COOKIE, 0x01020304, 0xDEADBEEF);
    CU_ASSERT_EQUAL(handshake_packet(hs, pkt, name_packet(pkt, flags, PEER), out, why, sizeof why),
                    HS_AWAIT_REPLY);
    const char *o = buffer_head(out);
    CU_ASSERT_EQUAL(get_u16(o), 3);
    CU_ASSERT_EQUAL(memcmp(o + 2, "sok", 3), 0);
    o += 5;
    CU_ASSERT_EQUAL(get_u16(o), 19 + strlen("kv@127.0.0.1"));
    CU_ASSERT_EQUAL(o[2], 'N');
    uint64_t ours = get_u64(o + 3);
    CU_ASSERT(ours & DFLAG_DIST_MONITOR_NAME);
    CU_ASSERT(ours & DFLAG_DIST_MONITOR);
    CU_ASSERT_FALSE(ours & DFLAG_PUBLISHED); /* hidden */
    CU_ASSERT_EQUAL(get_u32(o + 15), 0x01020304); /* creation */
    CU_ASSERT_STRING_EQUAL(hs->peer_name, PEER);
    CU_ASSERT_EQUAL(hs->peer_creation, 77);
    return get_u32(o + 11);
}

static void test_accepts_right_cookie(void)
{
    handshake hs;
    buffer out = {0};
    char why[128], reply[21];
    uint32_t ours = start(&hs, &out, PEER_FLAGS);
    CU_ASSERT_EQUAL(ours, 0xDEADBEEF);
    buffer_consume(&out, buffer_len(&out));
    reply[0] = 'r';
    put_u32(reply + 1, 42);
    handshake_digest(COOKIE, ours, (unsigned char *)reply + 5);
    CU_ASSERT_EQUAL(handshake_packet(&hs, reply, sizeof reply, &out, why, sizeof why), HS_UP);
    unsigned char ack[16];
    handshake_digest(COOKIE, 42, ack);
    CU_ASSERT_EQUAL(get_u16(buffer_head(&out)), 17);
    CU_ASSERT_EQUAL(buffer_head(&out)[2], 'a');
    CU_ASSERT_EQUAL(memcmp(buffer_head(&out) + 3, ack, 16), 0);
    buffer_free(&out);
}

static void test_refuses_wrong_cookie(void)
{
    handshake hs;
    buffer out = {0};
    char why[128], reply[21];
    uint32_t ours = start(&hs, &out, PEER_FLAGS);
    size_t before = buffer_len(&out);
    reply[0] = 'r';
    put_u32(reply + 1, 42);
    handshake_digest("other", ours, (unsigned char *)reply + 5);
    CU_ASSERT_EQUAL(handshake_packet(&hs, reply, sizeof reply, &out, why, sizeof why), HS_FAILED);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "cookie"));
    CU_ASSERT_EQUAL(buffer_len(&out), before); /* no ack */
    buffer_free(&out);
}

static void test_refuses_old_and_malformed_peers(void)
{
    handshake hs;
    buffer out = {0};
    char pkt[64], why[128];
    handshake_init(&hs, "kv@127.0.0.1", COOKIE, 1, 2);
    CU_ASSERT_EQUAL(handshake_packet(&hs, pkt, name_packet(pkt, DFLAG_EXTENDED_REFERENCES, PEER),
                                     &out, why, sizeof why), HS_FAILED);
    handshake_init(&hs, "kv@127.0.0.1", COOKIE, 1, 2);
    CU_ASSERT_EQUAL(handshake_packet(&hs, pkt, name_packet(pkt, PEER_FLAGS, "no-at-sign"), &out,
                                     why, sizeof why), HS_FAILED);
    handshake_init(&hs, "kv@127.0.0.1", COOKIE, 1, 2);
    size_t n = name_packet(pkt, PEER_FLAGS, PEER);
    put_u16(pkt + 13, 200); /* name length past the packet */
    CU_ASSERT_EQUAL(handshake_packet(&hs, pkt, n, &out, why, sizeof why), HS_FAILED);
    handshake_init(&hs, "kv@127.0.0.1", COOKIE, 1, 2);
    CU_ASSERT_EQUAL(handshake_packet(&hs, "GET / HTTP/1.1", 14, &out, why, sizeof why), HS_FAILED);
    CU_ASSERT_EQUAL(buffer_len(&out), 0);
    buffer_free(&out);
}

static void test_old_name_packet_with_complement(void)
{
    handshake hs;
    buffer out = {0};
    char pkt[64], why[128], reply[21];
    handshake_init(&hs, "kv@127.0.0.1", COOKIE, 1, 99);
    pkt[0] = 'n';
    put_u16(pkt + 1, 5);
    put_u32(pkt + 3, (uint32_t)PEER_FLAGS);
    memcpy(pkt + 7, PEER, strlen(PEER));
    CU_ASSERT_EQUAL(handshake_packet(&hs, pkt, 7 + strlen(PEER), &out, why, sizeof why),
                    HS_AWAIT_COMPLEMENT);
    pkt[0] = 'c';
    put_u32(pkt + 1, (uint32_t)(PEER_FLAGS >> 32));
    put_u32(pkt + 5, 1234);
    CU_ASSERT_EQUAL(handshake_packet(&hs, pkt, 9, &out, why, sizeof why), HS_AWAIT_REPLY);
    CU_ASSERT_EQUAL(hs.peer_flags, PEER_FLAGS);
    CU_ASSERT_EQUAL(hs.peer_creation, 1234);
    reply[0] = 'r';
    put_u32(reply + 1, 7);
    handshake_digest(COOKIE, 99, (unsigned char *)reply + 5);
    CU_ASSERT_EQUAL(handshake_packet(&hs, reply, sizeof reply, &out, why, sizeof why), HS_UP);
    buffer_free(&out);
}

void unit_suite_handshake(void)
{
    CU_pSuite s = CU_add_suite("handshake", NULL, NULL);
    CU_add_test(s, "digest matches OTP's", test_digest_matches_otp);
    CU_add_test(s, "accepts the right cookie", test_accepts_right_cookie);
    CU_add_test(s, "refuses a wrong cookie", test_refuses_wrong_cookie);
    CU_add_test(s, "refuses old and malformed peers", test_refuses_old_and_malformed_peers);
    CU_add_test(s, "old name packet with complement", test_old_name_packet_with_complement);
}

/* test_handshake.c: both sides of the handshake, driven byte by byte as an
 * OTP 25+ peer would drive them; simultaneous connects; epmd's port answer. */
#include <string.h>

#include "epmd.h"
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
    /* control characters (a newline would forge a line of the log) */
    const char *bad_names[] = {"x@127.0.0.1\n2026 kv@127.0.0.1 notice: forged", "x\t@h", "x@h\x7f"};
    for (size_t k = 0; k < sizeof bad_names / sizeof *bad_names; k++) {
        handshake_init(&hs, "kv@127.0.0.1", COOKIE, 1, 2);
        CU_ASSERT_EQUAL(handshake_packet(&hs, pkt, name_packet(pkt, PEER_FLAGS, bad_names[k]), &out,
                                         why, sizeof why), HS_FAILED);
    }
    handshake_init(&hs, "kv@127.0.0.1", COOKIE, 1, 2);
    CU_ASSERT_NOT_EQUAL(handshake_packet(&hs, pkt, name_packet(pkt, PEER_FLAGS, "caf\xc3\xa9@h"), &out,
                                         why, sizeof why), HS_FAILED);
    buffer_free(&out);
    out = (buffer){0};
    /* No atom: past 255 characters (a BEAM could name no such node, and
     * its nodeup, stats and links could not be written), or not UTF-8. */
    char big[400], longest[300 * 4];
    memset(big, 'a', 256);
    strcpy(big + 256, "@h");
    for (size_t k = 0; k < 253 / 2 * 2; k += 2) /* 126 two-byte characters */
        longest[k] = (char)0xc3, longest[k + 1] = (char)0xa9;
    size_t at = 253 / 2 * 2;
    for (int k = 0; k < 127; k++) /* 126 + 127 + "@h": 255 characters, 381 bytes */
        longest[at++] = 'b';
    strcpy(longest + at, "@h");
    const char *no_atom[] = {big, "x\xc3@h", "x\xff@h"};
    for (size_t k = 0; k < sizeof no_atom / sizeof *no_atom; k++) {
        char p2[1024];
        handshake_init(&hs, "kv@127.0.0.1", COOKIE, 1, 2);
        CU_ASSERT_EQUAL(handshake_packet(&hs, p2, name_packet(p2, PEER_FLAGS, no_atom[k]), &out, why,
                                         sizeof why), HS_FAILED);
    }
    char p3[1024];
    handshake_init(&hs, "kv@127.0.0.1", COOKIE, 1, 2);
    CU_ASSERT_NOT_EQUAL(handshake_packet(&hs, p3, name_packet(p3, PEER_FLAGS, longest), &out, why,
                                         sizeof why), HS_FAILED);
    buffer_free(&out);
    out = (buffer){0};
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

/* ---- the initiating side ---- */

/* The peer's 'N' challenge packet (no length). */
static size_t challenge_packet(char *p, uint64_t flags, uint32_t challenge, const char *name)
{
    size_t n = strlen(name);
    p[0] = 'N';
    put_u32(p + 1, (uint32_t)(flags >> 32));
    put_u32(p + 5, (uint32_t)flags);
    put_u32(p + 9, challenge);
    put_u32(p + 13, 555);
    put_u16(p + 17, (uint32_t)n);
    memcpy(p + 19, name, n);
    return 19 + n;
}

/* Start an initiator towards PEER: its name packet is checked. */
static void start_initiator(handshake *hs, buffer *out)
{
    buffer_consume(out, buffer_len(out));
    CU_ASSERT_EQUAL(handshake_init_initiator(hs, "kv@127.0.0.1", COOKIE, 0x0A0B0C0D, 0xCAFE, PEER, out), 0);
    CU_ASSERT_EQUAL(hs->state, HS_AWAIT_STATUS);
    const char *o = buffer_head(out);
    CU_ASSERT_EQUAL(get_u16(o), 15 + strlen("kv@127.0.0.1"));
    CU_ASSERT_EQUAL(o[2], 'N');
    uint64_t flags = get_u64(o + 3);
    CU_ASSERT_EQUAL(flags, HANDSHAKE_OUR_FLAGS);
    CU_ASSERT_FALSE(flags & DFLAG_PUBLISHED); /* hidden, as when accepting */
    CU_ASSERT_EQUAL(get_u32(o + 11), 0x0A0B0C0D);
    CU_ASSERT_EQUAL(memcmp(o + 17, "kv@127.0.0.1", strlen("kv@127.0.0.1")), 0);
    buffer_consume(out, buffer_len(out));
}

static void test_initiates_to_the_end(void)
{
    handshake hs;
    buffer out = {0};
    char why[128], pkt[64];
    const char *statuses[] = {"sok", "sok_simultaneous"};
    for (int k = 0; k < 2; k++) {
        start_initiator(&hs, &out);
        CU_ASSERT_EQUAL(handshake_packet(&hs, statuses[k], strlen(statuses[k]), &out, why, sizeof why),
                        HS_AWAIT_CHALLENGE);
        CU_ASSERT_EQUAL(buffer_len(&out), 0);
        CU_ASSERT_EQUAL(handshake_packet(&hs, pkt, challenge_packet(pkt, PEER_FLAGS, 31337, PEER), &out,
                                         why, sizeof why), HS_AWAIT_ACK);
        CU_ASSERT_EQUAL(hs.peer_flags, PEER_FLAGS);
        CU_ASSERT_EQUAL(hs.peer_creation, 555);
        /* 'r', our challenge, the digest of theirs */
        const char *o = buffer_head(&out);
        unsigned char digest[16];
        handshake_digest(COOKIE, 31337, digest);
        CU_ASSERT_EQUAL(get_u16(o), 21);
        CU_ASSERT_EQUAL(o[2], 'r');
        CU_ASSERT_EQUAL(get_u32(o + 3), 0xCAFE);
        CU_ASSERT_EQUAL(memcmp(o + 7, digest, 16), 0);
        buffer_consume(&out, buffer_len(&out));
        pkt[0] = 'a';
        handshake_digest(COOKIE, 0xCAFE, (unsigned char *)pkt + 1);
        CU_ASSERT_EQUAL(handshake_packet(&hs, pkt, 17, &out, why, sizeof why), HS_UP);
    }
    buffer_free(&out);
}

static void test_initiator_refuses_what_is_wrong(void)
{
    handshake hs;
    buffer out = {0};
    char why[128], pkt[64];
    /* a wrong ack (another cookie) */
    start_initiator(&hs, &out);
    handshake_packet(&hs, "sok", 3, &out, why, sizeof why);
    handshake_packet(&hs, pkt, challenge_packet(pkt, PEER_FLAGS, 1, PEER), &out, why, sizeof why);
    pkt[0] = 'a';
    handshake_digest("other", 0xCAFE, (unsigned char *)pkt + 1);
    CU_ASSERT_EQUAL(handshake_packet(&hs, pkt, 17, &out, why, sizeof why), HS_FAILED);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "cookie"));
    /* a node of another name answered */
    start_initiator(&hs, &out);
    handshake_packet(&hs, "sok", 3, &out, why, sizeof why);
    CU_ASSERT_EQUAL(handshake_packet(&hs, pkt, challenge_packet(pkt, PEER_FLAGS, 1, "x@127.0.0.1"), &out,
                                     why, sizeof why), HS_FAILED);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "x@127.0.0.1"));
    /* a peer without OTP 25's mandatory flags */
    start_initiator(&hs, &out);
    handshake_packet(&hs, "sok", 3, &out, why, sizeof why);
    CU_ASSERT_EQUAL(handshake_packet(&hs, pkt, challenge_packet(pkt, DFLAG_EXTENDED_REFERENCES, 1, PEER),
                                     &out, why, sizeof why), HS_FAILED);
    /* statuses that end it */
    const char *ends[] = {"snot_allowed", "snok", "sbogus", "x", ""};
    for (size_t k = 0; k < sizeof ends / sizeof *ends; k++) {
        start_initiator(&hs, &out);
        CU_ASSERT_EQUAL(handshake_packet(&hs, ends[k], strlen(ends[k]), &out, why, sizeof why), HS_FAILED);
        CU_ASSERT_EQUAL(hs.nok, k == 1); /* nok: the peer's own attempt goes on */
    }
    /* a truncated challenge */
    start_initiator(&hs, &out);
    handshake_packet(&hs, "sok", 3, &out, why, sizeof why);
    size_t len = challenge_packet(pkt, PEER_FLAGS, 1, PEER);
    CU_ASSERT_EQUAL(handshake_packet(&hs, pkt, len - 1, &out, why, sizeof why), HS_FAILED);
    buffer_free(&out);
}

/* "alive": the peer still has a connection to our name; we say true and go on. */
static void test_initiator_answers_alive(void)
{
    handshake hs;
    buffer out = {0};
    char why[128];
    start_initiator(&hs, &out);
    CU_ASSERT_EQUAL(handshake_packet(&hs, "salive", 6, &out, why, sizeof why), HS_AWAIT_CHALLENGE);
    CU_ASSERT_EQUAL(get_u16(buffer_head(&out)), 5);
    CU_ASSERT_EQUAL(memcmp(buffer_head(&out) + 2, "strue", 5), 0);
    buffer_free(&out);
}

/* ---- simultaneous connects, on the accepting side ---- */

static int answer;
static int dialing_says(void *ctx, const char *peer)
{
    (void)ctx;
    CU_ASSERT_STRING_EQUAL(peer, PEER);
    return answer;
}

/* The status an accepting kv@127.0.0.1 or a@127.0.0.1 gives PEER (t@...). */
static enum handshake_state accept_with(const char *ours, int dialing, buffer *out, handshake *hs)
{
    char pkt[64], why[128];
    handshake_init(hs, ours, COOKIE, 1, 2);
    hs->dialing = dialing_says;
    answer = dialing;
    buffer_consume(out, buffer_len(out));
    return handshake_packet(hs, pkt, name_packet(pkt, PEER_FLAGS, PEER), out, why, sizeof why);
}

static int status_is(const buffer *out, const char *status)
{
    size_t n = strlen(status);
    return buffer_len(out) >= 2 + n && get_u16(buffer_head(out)) == n &&
           memcmp(buffer_head(out) + 2, status, n) == 0;
}

static void test_simultaneous_connect_goes_by_names(void)
{
    handshake hs;
    buffer out = {0};
    /* not dialing: ok */
    CU_ASSERT_EQUAL(accept_with("kv@127.0.0.1", HS_NOT_DIALING, &out, &hs), HS_AWAIT_REPLY);
    CU_ASSERT(status_is(&out, "sok"));
    CU_ASSERT_FALSE(hs.simultaneous);
    /* dialing, and our name is smaller ("kv" < "t"): we yield, ok_simultaneous */
    CU_ASSERT_EQUAL(accept_with("kv@127.0.0.1", HS_DIALING, &out, &hs), HS_AWAIT_REPLY);
    CU_ASSERT(status_is(&out, "sok_simultaneous"));
    CU_ASSERT(hs.simultaneous);
    /* dialing, and our name is greater ("z" > "t"): nok, ours goes on */
    CU_ASSERT_EQUAL(accept_with("z@127.0.0.1", HS_DIALING, &out, &hs), HS_FAILED);
    CU_ASSERT(status_is(&out, "snok"));
    CU_ASSERT(hs.nok);
    /* greater, but our attempt already yielded to theirs: ok_simultaneous */
    CU_ASSERT_EQUAL(accept_with("z@127.0.0.1", HS_YIELDED, &out, &hs), HS_AWAIT_REPLY);
    CU_ASSERT(status_is(&out, "sok_simultaneous"));
    buffer_free(&out);
}

/* ---- epmd's answer to PORT_PLEASE2 ---- */

static void test_epmd_port_please(void)
{
    unsigned char req[300], resp[64];
    char why[128];
    int port = 0;
    CU_ASSERT_EQUAL(epmd_port_please_request("far", req, sizeof req), 6);
    CU_ASSERT_EQUAL(memcmp(req, "\0\004zfar", 6), 0);
    CU_ASSERT_EQUAL(epmd_port_please_request("", req, sizeof req), -1);
    /* w, 0, port 0x1234, hidden, tcp, 6, 5, name "far", no extra */
    static const unsigned char ok[] = {119, 0, 0x12, 0x34, 72, 0, 0, 6, 0, 5, 0, 3, 'f', 'a', 'r', 0, 0};
    for (size_t n = 0; n < 10; n++)
        CU_ASSERT_EQUAL(epmd_port_please_parse(ok, n, &port, why, sizeof why), 0);
    CU_ASSERT_EQUAL(epmd_port_please_parse(ok, sizeof ok, &port, why, sizeof why), 1);
    CU_ASSERT_EQUAL(port, 0x1234);
    static const unsigned char unknown[] = {119, 1};
    CU_ASSERT_EQUAL(epmd_port_please_parse(unknown, 2, &port, why, sizeof why), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "does not know"));
    memcpy(resp, ok, sizeof ok);
    resp[7] = 5; /* highest version 5: older than OTP 23 */
    CU_ASSERT_EQUAL(epmd_port_please_parse(resp, sizeof ok, &port, why, sizeof why), -1);
    resp[0] = 'x';
    CU_ASSERT_EQUAL(epmd_port_please_parse(resp, 1, &port, why, sizeof why), -1);
}

void unit_suite_handshake(void)
{
    CU_pSuite s = CU_add_suite("handshake", NULL, NULL);
    CU_add_test(s, "digest matches OTP's", test_digest_matches_otp);
    CU_add_test(s, "accepts the right cookie", test_accepts_right_cookie);
    CU_add_test(s, "refuses a wrong cookie", test_refuses_wrong_cookie);
    CU_add_test(s, "refuses old and malformed peers", test_refuses_old_and_malformed_peers);
    CU_add_test(s, "old name packet with complement", test_old_name_packet_with_complement);
    CU_add_test(s, "initiates to the end", test_initiates_to_the_end);
    CU_add_test(s, "initiator refuses what is wrong", test_initiator_refuses_what_is_wrong);
    CU_add_test(s, "initiator answers alive", test_initiator_answers_alive);
    CU_add_test(s, "simultaneous connect goes by names", test_simultaneous_connect_goes_by_names);
    CU_add_test(s, "epmd port please", test_epmd_port_please);
}

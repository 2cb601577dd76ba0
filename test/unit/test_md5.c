/* test_md5.c: MD5 against the RFC 1321 appendix A.5 test suite. */
#include <string.h>

#include "md5.h"
#include "unit.h"

static const struct {
    const char *message;
    const char *hex;
} rfc1321[] = {
    {"", "d41d8cd98f00b204e9800998ecf8427e"},
    {"a", "0cc175b9c0f1b6a831c399e269772661"},
    {"abc", "900150983cd24fb0d6963f7d28e17f72"},
    {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
    {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
    {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
     "d174ab98d277d9f5a5611c2c9f419d9f"},
    {"1234567890" "1234567890" "1234567890" "1234567890"
     "1234567890" "1234567890" "1234567890" "1234567890",
     "57edf4a22be3c955ac49da2e2107b67a"},
};

static void to_hex(const unsigned char digest[16], char hex[33])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[32] = '\0';
}

static void test_rfc1321_vectors(void)
{
    for (size_t i = 0; i < sizeof rfc1321 / sizeof rfc1321[0]; i++) {
        unsigned char digest[16];
        char hex[33];
        md5(rfc1321[i].message, strlen(rfc1321[i].message), digest);
        to_hex(digest, hex);
        CU_ASSERT_STRING_EQUAL(hex, rfc1321[i].hex);
    }
}

/* Fed in pieces of every size, the digest is the same as in one go. */
static void test_incremental(void)
{
    const char *message = rfc1321[6].message;
    size_t len = strlen(message);
    for (size_t piece = 1; piece <= len; piece++) {
        md5_ctx ctx;
        md5_init(&ctx);
        for (size_t at = 0; at < len; at += piece)
            md5_update(&ctx, message + at, at + piece <= len ? piece : len - at);
        unsigned char digest[16];
        char hex[33];
        md5_final(&ctx, digest);
        to_hex(digest, hex);
        CU_ASSERT_STRING_EQUAL(hex, rfc1321[6].hex);
    }
}

/* Lengths around the 56- and 64-byte padding edges (md5sum of 'a' * n). */
static void test_padding_edges(void)
{
    static const struct {
        size_t n;
        const char *hex;
    } cases[] = {
        {55, "ef1772b6dff9a122358552954ad0df65"},
        {56, "3b0c8ac703f828b04c6c197006d17218"},
        {57, "652b906d60af96844ebd21b674f35e93"},
        {63, "b06521f39153d618550606be297466d5"},
        {64, "014842d480b571495a4a0363793f7367"},
        {65, "c743a45e0d2e6a95cb859adae0248435"},
    };
    unsigned char a[65];
    memset(a, 'a', sizeof a);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char digest[16];
        char hex[33];
        md5(a, cases[i].n, digest);
        to_hex(digest, hex);
        CU_ASSERT_STRING_EQUAL(hex, cases[i].hex);
    }
}

void unit_suite_md5(void)
{
    CU_pSuite suite = CU_add_suite("md5", NULL, NULL);
    if (!suite)
        return;
    CU_add_test(suite, "RFC 1321 test suite", test_rfc1321_vectors);
    CU_add_test(suite, "incremental updates", test_incremental);
    CU_add_test(suite, "padding edges", test_padding_edges);
}

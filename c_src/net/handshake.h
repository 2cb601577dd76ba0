/*
 * handshake.h: both sides of the Erlang distribution handshake (protocol
 * version 6, OTP 23+; on the accepting side the old 'n' name packet with
 * its 'c' complement is accepted too). Pure: it turns the peer's packets
 * into our packets and a verdict, and touches no socket, so that it can be
 * tested byte by byte. Owning the handshake is what lets the node advertise
 * DFLAG_DIST_MONITOR_NAME and so receive monitor requests (PROTOCOL.md).
 *
 * Simultaneous connects are settled as OTP settles them (net_kernel's
 * accept_pending): when a node that is itself connecting to the peer
 * accepts a connection from it, the node whose name compares greater keeps
 * its own attempt (the other is told `nok`), and the smaller gives its own
 * attempt up for the one it accepts (`ok_simultaneous`).
 */
#ifndef GEN_CNODE_HANDSHAKE_H
#define GEN_CNODE_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "buffer.h"

#define DFLAG_PUBLISHED           0x01ULL
#define DFLAG_EXTENDED_REFERENCES 0x04ULL
#define DFLAG_DIST_MONITOR        0x08ULL
#define DFLAG_FUN_TAGS            0x10ULL
#define DFLAG_DIST_MONITOR_NAME   0x20ULL
#define DFLAG_NEW_FUN_TAGS        0x80ULL
#define DFLAG_EXTENDED_PIDS_PORTS 0x100ULL
#define DFLAG_EXPORT_PTR_TAG      0x200ULL
#define DFLAG_BIT_BINARIES        0x400ULL
#define DFLAG_NEW_FLOATS          0x800ULL
#define DFLAG_UTF8_ATOMS          0x10000ULL
#define DFLAG_MAP_TAG             0x20000ULL
#define DFLAG_BIG_CREATION        0x40000ULL
#define DFLAG_HANDSHAKE_23        0x1000000ULL
#define DFLAG_UNLINK_ID           0x2000000ULL
#define DFLAG_MANDATORY_25_DIGEST 0x4000000ULL
#define DFLAG_V4_NC               (0x4ULL << 32)
#define DFLAG_ALIAS               (0x8ULL << 32)

/* What every peer must support (OTP 25's mandatory set). */
#define HANDSHAKE_REQUIRED_FLAGS                                                          \
    (DFLAG_EXTENDED_REFERENCES | DFLAG_FUN_TAGS | DFLAG_EXTENDED_PIDS_PORTS |             \
     DFLAG_UTF8_ATOMS | DFLAG_NEW_FUN_TAGS | DFLAG_BIG_CREATION | DFLAG_NEW_FLOATS |      \
     DFLAG_MAP_TAG | DFLAG_EXPORT_PTR_TAG | DFLAG_BIT_BINARIES | DFLAG_HANDSHAKE_23)

/* What we offer: OTP 26's mandatory set, monitors (by pid and by name) and aliases.
 * Not PUBLISHED (a hidden node), no atom cache, no fragments, no exit payloads. */
#define HANDSHAKE_OUR_FLAGS                                                               \
    (HANDSHAKE_REQUIRED_FLAGS | DFLAG_UNLINK_ID | DFLAG_V4_NC | DFLAG_DIST_MONITOR |      \
     DFLAG_DIST_MONITOR_NAME | DFLAG_ALIAS | DFLAG_MANDATORY_25_DIGEST)

#define HANDSHAKE_MAX_NAME 1023

/* Is name[0 .. n) a node name: alive@host, an atom's text (UTF-8 of 255
 * characters at most: a BEAM names no other node, and no nodeup, pid or
 * stat of it could be written), with no control character (it is logged,
 * and a newline in it would forge a log line before any cookie was
 * checked)? */
int handshake_name_ok(const char *name, size_t n);

/* Accepting: AWAIT_NAME -> (AWAIT_COMPLEMENT ->) AWAIT_REPLY -> UP.
 * Initiating: AWAIT_STATUS -> AWAIT_CHALLENGE -> AWAIT_ACK -> UP. */
enum handshake_state {
    HS_AWAIT_NAME, HS_AWAIT_COMPLEMENT, HS_AWAIT_REPLY,
    HS_AWAIT_STATUS, HS_AWAIT_CHALLENGE, HS_AWAIT_ACK,
    HS_UP, HS_FAILED
};

/* The accepting side asks whether its node is itself connecting to the
 * peer just named: HS_NOT_DIALING, HS_DIALING (still trying), or
 * HS_YIELDED (its attempt was told nok: it waits for this one). */
enum { HS_NOT_DIALING = 0, HS_DIALING = 1, HS_YIELDED = 2 };
typedef int handshake_dialing_fn(void *ctx, const char *peer_name);

typedef struct handshake {
    enum handshake_state state;
    const char *our_name;   /* not owned */
    const char *cookie;     /* not owned */
    uint32_t our_creation;
    uint32_t our_challenge;
    uint64_t peer_flags;
    uint32_t peer_creation;
    char peer_name[HANDSHAKE_MAX_NAME + 1];
    handshake_dialing_fn *dialing; /* accepting side; NULL: never dialing */
    void *dialing_ctx;
    int simultaneous; /* accepted with ok_simultaneous: the node gives its own attempt up */
    int nok;          /* a simultaneous connect settled for the peer's attempt: this one ended */
} handshake;

void handshake_init(handshake *hs, const char *our_name, const char *cookie,
                    uint32_t our_creation, uint32_t challenge);

/* The initiating side, towards peer_name: its name packet goes into out
 * (with its 2-byte length). -1 when out of memory or the name is too long. */
int handshake_init_initiator(handshake *hs, const char *our_name, const char *cookie,
                             uint32_t our_creation, uint32_t challenge, const char *peer_name,
                             buffer *out);

/* Feed one packet (its 2-byte length already stripped). Packets to send,
 * each with its 2-byte length, are appended to out. Returns the new state;
 * on HS_FAILED `why` says what went wrong, in words fit for a log line. */
enum handshake_state handshake_packet(handshake *hs, const char *pkt, size_t len,
                                      buffer *out, char *why, size_t whylen);

/* The digest of a challenge: MD5(cookie ++ decimal(challenge)). */
void handshake_digest(const char *cookie, uint32_t challenge, unsigned char out[16]);

#endif

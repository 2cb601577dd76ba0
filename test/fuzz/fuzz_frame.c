/*
 * fuzz_frame.c: frames through the whole node, as a hostile peer sends
 * them: a real node (node_env.h: net_kernel, the starter, kv, counter) on
 * 127.0.0.1, peers that did the real handshake (peer.h), and the input as a
 * script of what the peers do:
 *   op % 8 == 0, 1: peer a / b sends a frame: [u16 length][bytes from 'p' on]
 *             2: the node runs 1 to 4 turns
 *             3: peer a reads what it was sent
 *             4: peer b goes away
 *             5: peer b connects (again: the new connection replaces the old)
 *             6: peer a sends raw bytes, length prefix its own: [u16 length][bytes]
 *             7: a stranger connects and sends handshake bytes: [u16 length][bytes]
 * Peers talk to the node over socket pairs: a and b attached with their
 * handshake done (node_attach), so that each input costs no round trips;
 * the stranger taken as just accepted (node_accept), to meet the real
 * handshake. The node's output limit per peer is small (2 KiB), so that
 * replies often close their peer in the middle of a send; its --max-message
 * is small too (1 KiB), so that frames over it, whole or cut, are drained. The node's
 * creation is fixed (0x5eed), so frames can name its pids: <kv@127.0.0.1.N.0>.
 * After the script, a new, well-behaved peer must be answered by net_kernel.
 * The sanitizers watch everything else.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "log.h"
#include "node_env.h"
#include "peer.h"

#define CREATION 0x5eed
#define MAX_OUTPUT 2048
#define MAX_MESSAGE 1024 /* frames over it are drained (node.c, oversized) */

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_frame: %s\n", what);
    abort();
}

/* ASan's default fill of each new block (4 KiB of 0xbe) was a fifth of the
 * time: every connection reserves 64 KiB buffers. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "max_malloc_fill_size=0"; }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level(LOG_ERROR);
    return 0;
}

/* {'$gen_call', {Pid, 1}, {is_auth, Name}} to net_kernel answers yes. */
static int served(peer *p, node *n)
{
    ei_x_buff c, m;
    ei_x_new(&c);
    ei_x_encode_tuple_header(&c, 4);
    ei_x_encode_long(&c, DOP_REG_SEND);
    ei_x_append_buf(&c, p->pid, (int)p->pid_len);
    ei_x_encode_atom(&c, "");
    ei_x_encode_atom(&c, "net_kernel");
    ei_x_new(&m);
    ei_x_encode_tuple_header(&m, 3);
    ei_x_encode_atom(&m, "$gen_call");
    ei_x_encode_tuple_header(&m, 2);
    ei_x_append_buf(&m, p->pid, (int)p->pid_len);
    ei_x_encode_long(&m, 424242);
    ei_x_encode_tuple_header(&m, 2);
    ei_x_encode_atom(&m, "is_auth");
    ei_x_encode_atom(&m, p->name);
    int ok = peer_send(p, (term_view){c.buff, (size_t)c.index}, (term_view){m.buff, (size_t)m.index}) == 0;
    ei_x_free(&c);
    ei_x_free(&m);
    const char *f;
    size_t len;
    while (ok && peer_recv(p, n, 2000, &f, &len) == 1) {
        int i, arity;
        long tag;
        char yes[MAXATOMLEN_UTF8];
        if (peer_frame_op(f, len, &i) == DOP_SEND && i > 0 && ei_decode_tuple_header(f, &i, &arity) == 0 &&
            arity == 2 && ei_decode_long(f, &i, &tag) == 0 && tag == 424242)
            return ei_decode_atom(f, &i, yes) == 0 && strcmp(yes, "yes") == 0;
    }
    return 0;
}

static void send_frame(peer *p, const uint8_t *bytes, size_t len)
{
    char head[4];
    put_u32(head, (uint32_t)len);
    if (p->fd >= 0 && peer_write(p, head, 4) == 0)
        peer_write(p, bytes, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    node_env_max_message = MAX_MESSAGE;
    node *n = node_env_start(MAX_OUTPUT, CREATION, 0);
    if (!n)
        fail("the node does not start");
    peer a, b, stranger;
    if (peer_attach(&a, n, "a@127.0.0.1") < 0)
        fail("peer a cannot attach");
    b.fd = stranger.fd = -1;
    b.n = stranger.n = n;
    memset(&b.in, 0, sizeof b.in);
    memset(&stranger.in, 0, sizeof stranger.in);
    size_t at = 0;
    while (at < size) {
        unsigned op = data[at++] % 8;
        size_t len = 0;
        if (op == 0 || op == 1 || op == 6 || op == 7) {
            if (at + 2 > size)
                break;
            len = (size_t)data[at] << 8 | data[at + 1];
            at += 2;
            if (len > size - at)
                len = size - at;
        }
        switch (op) {
        case 0:
            send_frame(&a, data + at, len);
            break;
        case 1:
            send_frame(&b, data + at, len);
            break;
        case 2: {
            int turns = 1 + (at < size ? data[at++] % 4 : 0);
            while (turns--)
                node_run_once(n, 0);
            break;
        }
        case 3:
            peer_drain(&a, n);
            break;
        case 4:
            peer_close(&b);
            break;
        case 5: {
            peer again;
            if (peer_attach(&again, n, "b@127.0.0.1") == 0) {
                peer_close(&b);
                b = again;
            }
            break;
        }
        case 6:
            if (a.fd >= 0)
                peer_write(&a, data + at, len);
            break;
        case 7:
            peer_close(&stranger);
            if (peer_stranger(&stranger, n) == 0)
                peer_write(&stranger, data + at, len);
            break;
        }
        at += len;
    }
    for (int k = 0; k < 4; k++)
        node_run_once(n, 0);
    peer_close(&a);
    peer_close(&b);
    peer_close(&stranger);
    peer c;
    if (peer_attach(&c, n, "c@127.0.0.1") < 0 || !served(&c, n))
        fail("a well-behaved peer is not served after the script");
    peer_close(&c);
    node_destroy(n);
    return 0;
}

/*
 * epmd.h: the node's two dealings with epmd. Publishing itself to the local
 * epmd (ALIVE2): the returned socket must stay open for as long as the node
 * is published; closing it unpublishes. epmd answers with the node's
 * creation, fresh for every registration, so pids of one run never alias
 * those of the last. And asking the epmd on another node's host for that
 * node's port (PORT_PLEASE2), before dialing it: only the request and the
 * reading of the answer live here, pure, so that they can be tested byte by
 * byte; the socket work is dial.c's, off the loop.
 */
#ifndef GEN_CNODE_EPMD_H
#define GEN_CNODE_EPMD_H

#include <stddef.h>
#include <stdint.h>

/* The epmd port: $ERL_EPMD_PORT, else 4369. */
int epmd_port(void);

/* Register alive name `alive` (the part before '@') as listening on
 * listen_port, as a hidden node. Returns the socket (keep it open) and sets
 * *creation, or returns -1 with a reason in err. */
int epmd_publish(const char *alive, int listen_port, uint32_t *creation, char *err, size_t errlen);

/* The PORT_PLEASE2 request for alive name `alive`, with its 2-byte length,
 * written into req (room for 3 + 255 bytes). Its length, or -1 for a name
 * epmd cannot hold. */
int epmd_port_please_request(const char *alive, unsigned char *req, size_t cap);

/* Read PORT2_RESP, what epmd sent so far (it closes after the answer):
 * 1 with *port when the node is there and speaks distribution version 6;
 * 0 when more bytes are needed; -1 with a reason in why (not registered,
 * too old, not an answer). */
int epmd_port_please_parse(const unsigned char *resp, size_t len, int *port, char *why, size_t whylen);

#endif

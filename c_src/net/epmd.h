/*
 * epmd.h: publishing the node to the local epmd (the ALIVE2 request of the
 * distribution protocol). The returned socket must stay open for as long as
 * the node is published; closing it unpublishes. epmd answers with the
 * node's creation, fresh for every registration, so pids of one run never
 * alias those of the last.
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

#endif

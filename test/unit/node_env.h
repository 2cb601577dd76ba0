/*
 * node_env.h: for the unit tests and the fuzzers, a node as main.c makes
 * it (net_kernel and the starter as system processes, kv and counter
 * registered), but unpublished: peers (peer.h) reach it on its port.
 */
#ifndef GEN_CNODE_TEST_NODE_ENV_H
#define GEN_CNODE_TEST_NODE_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "node.h"

#define NODE_ENV_NAME "kv@127.0.0.1"
#define NODE_ENV_COOKIE "unit-cookie"

/* max_output: the per-peer output limit (0: the default); creation: the
 * node's creation (0: a random one); listen: a TCP listener on 127.0.0.1
 * (or peers only through node_accept and node_attach). NULL when it cannot
 * start. */
node *node_env_start(size_t max_output, uint32_t creation, int listen);
/* --max-message of the nodes node_env_start makes from now on (1 MiB). */
extern size_t node_env_max_message;

#endif

/*
 * net_kernel.h: the node's net_kernel, as far as peers need one: Node.ping
 * (net_adm:ping) calls {net_kernel, Node} with {is_auth, Caller} and wants
 * yes. Written as a gen_server callback module like any other server.
 */
#ifndef GEN_CNODE_NET_KERNEL_H
#define GEN_CNODE_NET_KERNEL_H

#include "gen_server.h"

extern const gcn_module gcn_module_net_kernel;

#endif

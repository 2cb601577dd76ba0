/*
 * main.c: priv/gen_cnode, the node with its bundled servers (kv, counter)
 * and whatever --load brings. A binary with servers of one's own is these
 * lines with a module list: see gen_cnode_main in gen_cnode.h.
 */
#include "gen_cnode.h"

int main(int argc, char **argv) { return gen_cnode_main(argc, argv, NULL, 0); }

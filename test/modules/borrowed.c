/* borrowed.c: a shared object whose gen_cnode_module() returns something
 * that is not in the file (here: libc's stdout), as one could whose module
 * is another library's: the node refuses it before reading it. */
#include <stdio.h>

#include <gen_cnode.h>

__attribute__((visibility("default"))) const gcn_module *gen_cnode_module(void);
const gcn_module *gen_cnode_module(void) { return (const gcn_module *)(const void *)&stdout; }

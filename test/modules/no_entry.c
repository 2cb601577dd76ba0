/* no_entry.c: a shared object without gen_cnode_module(): not a module. */
int no_entry_here(void);
int no_entry_here(void) { return 1; }

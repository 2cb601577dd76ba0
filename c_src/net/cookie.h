/*
 * cookie.h: the magic cookie, found as erl finds it: ~/.erlang.cookie, which
 * is created (20 random capital letters, mode 0400) when it does not exist.
 */
#ifndef GEN_CNODE_COOKIE_H
#define GEN_CNODE_COOKIE_H

#include <stddef.h>

/* Fill out (NUL-terminated) with the default cookie; 0, or -1 with err set. */
int cookie_default(char *out, size_t outlen, char *err, size_t errlen);

#endif

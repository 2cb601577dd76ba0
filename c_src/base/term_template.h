/*
 * term_template.h: the little language of gcn_match patterns and gcn_build
 * templates (gen_cnode.h documents it): Erlang term syntax, with ~ holes
 * where arguments go. tpl_root checks a whole pattern or template before any
 * of it is used, so a malformed one is refused (and logged) before anything
 * is matched or written; the matcher and the builder then walk it node by
 * node with tpl_first and tpl_next, trusting it. Only the template is
 * recursed into (it is the programmer's), never the term it meets.
 */
#ifndef GEN_CNODE_TERM_TEMPLATE_H
#define GEN_CNODE_TERM_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

enum tpl_kind {
    TPL_ATOM = 1, /* foo, 'Quoted' */
    TPL_INT,      /* 42, -7 */
    TPL_STRING,   /* "text": a binary */
    TPL_ANY,      /* _ (patterns only) */
    TPL_HOLE,     /* ~t, ~i, ... */
    TPL_TUPLE,    /* {...} */
    TPL_LIST,     /* [...] */
    TPL_MAP,      /* #{K => V, ...} */
};

/* Patterns take the holes tiufabplm and `_`, and only literals as map keys;
 * templates take the holes tiufasb. */
enum tpl_mode { TPL_PATTERN, TPL_TEMPLATE };

#define TPL_MAX_DEPTH 100 /* nesting of a template; deeper is malformed */

typedef struct tpl_node {
    enum tpl_kind kind;
    const char *text; /* atom, string: the source text (inside the quotes, escapes kept) */
    size_t len;
    int neg;          /* integer: sign and magnitude (-0 is 0) */
    uint64_t mag;
    char hole;        /* hole: its letter */
    size_t count;     /* tuple, list: elements; map: pairs */
    const char *body; /* tuple, list, map: just inside the opening bracket */
} tpl_node;

/* Check that all of src is one well-formed term for mode and describe it in
 * *root. 0, or -1 after logging what is wrong and where, on behalf of who. */
int tpl_root(const char *src, enum tpl_mode mode, const char *who, tpl_node *root);

/* The elements of a compound tpl_root accepted, in order (a map's key, value,
 * key, value, ...): tpl_first sets the cursor, each tpl_next reads one. */
void tpl_first(const tpl_node *compound, const char **cursor);
void tpl_next(const char **cursor, tpl_node *out);

/* An atom's or string's text without its escapes: written to out (room for
 * n->len bytes), its length returned. */
size_t tpl_text(const tpl_node *n, char *out);
/* Is that text exactly s[0 .. len)? */
int tpl_text_is(const tpl_node *n, const char *s, size_t len);

/* Is utf8[0 .. len) an atom's text the BEAM accepts: strict UTF-8 of at most
 * 255 characters? */
int atom_text_ok(const char *utf8, size_t len);

#endif

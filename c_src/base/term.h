/*
 * term.h: one encoded Erlang term (external term format, without the 131
 * version byte), checked against the bytes present, and its canonical bytes.
 *
 * Two terms are the same key exactly when Erlang's =:= says so; term_canonical
 * gives such terms identical bytes whatever encoding the peer chose (atoms in
 * any atom tag, integers small/32-bit/big, strings as STRING_EXT or lists,
 * map pairs in any order, old or new pid/port/ref tags), and different bytes
 * otherwise (1 and 1.0 stay apart; 0.0 and -0.0 stay apart, deliberately: that
 * is OTP 27's =:=, while OTP 25 says they are equal). Canonical bytes equal
 * OTP's term_to_binary(T, [{minor_version, 2}]) for terms without maps or
 * funs; map pairs are ordered by their canonical key bytes, and a fun's
 * creator pid, no part of its identity, is always nonode@nohost's <0.0.0>.
 *
 * Depth: the top-level term is depth 0, each element of a compound one
 * deeper (a STRING_EXT's characters too, as for the equivalent list); node
 * atoms inside pids, ports and refs do not count.
 *
 * Nothing here trusts a length or an arity from the peer: every one is checked
 * against the bytes that are there, and nesting deeper than max_depth is refused
 * rather than recursed into. This file knows nothing of the network, of
 * processes or of stores; it is the bottom of the house.
 */
#ifndef GEN_CNODE_TERM_H
#define GEN_CNODE_TERM_H

#include <stddef.h>
#include <ei.h>

#include "gen_cnode.h"

/* One encoded term (no version byte) inside somebody else's buffer: a view,
 * not a copy. The public header's gcn_term, under the name the engine uses. */
typedef gcn_term term_view;

enum term_error {
    TERM_OK = 0,
    TERM_EBAD = -1,         /* malformed or truncated */
    TERM_EDEPTH = -2,       /* nested deeper than max_depth */
    TERM_EUNSUPPORTED = -3, /* a tag we refuse (atom cache refs, LOCAL_EXT, old FUN_EXT, compressed) */
    TERM_ENOMEM = -4,
    TERM_EFOREIGN = -5,     /* a pid or reference another node would refuse as its own (term_sender) */
    TERM_EZEROKEYS = -6     /* a map whose keys only the sign of a zero tells apart (0.0 and -0.0):
                               distinct to OTP 27, a repeated key to OTP 25 and 26, whose decoders
                               drop the connection that carries it; a whole term, refused as
                               unsupported */
};

/* strtod in the C locale, whatever setlocale a loaded module called: the
 * text of FLOAT_EXT has a '.' (a ',' too, which callers turn into '.'). */
double term_strtod(const char *s, char **end);

/* A short human-readable name for a term_error, for logs and error replies. */
const char *term_strerror(int err);

/* Check that buf[*index .. len) begins with one well-formed term; on success
 * advance *index past it and return TERM_OK, else return a negative
 * term_error and leave *index unspecified. A term validated here is safe to
 * hand to ei's decode functions, which do not check bounds themselves.
 * A map with a repeated key is refused (TERM_EBAD), as the BEAM refuses it. */
int term_skip(const char *buf, size_t len, size_t *index, unsigned max_depth);

/* The atoms one peer already sent that passed term_skip_cached's checks, so
 * that an atom sent again is not checked again (one per connection; the
 * distribution atom cache, which would make the peer send each atom once, is
 * not negotiated). ASCII atoms are not kept: checking their bytes costs less
 * than looking them up. A zeroed struct is an empty cache. */
#define TERM_ATOM_CACHE_SLOTS 64 /* a power of two */
#define TERM_ATOM_CACHE_BYTES 64 /* longer encodings are checked every time */
typedef struct term_atom_cache {
    unsigned char len[TERM_ATOM_CACHE_SLOTS]; /* 0: empty */
    unsigned char bytes[TERM_ATOM_CACHE_SLOTS][TERM_ATOM_CACHE_BYTES]; /* tag, length, text */
    unsigned long long hits, misses;
} term_atom_cache;

/* Pids and references a peer passes on from a third node.
 *
 * The node that a pid or a reference names, when the creation is its own,
 * decodes it as one of its own, and refuses one it could not have made: a
 * reference whose first word has more than 18 bits (every release), a pid
 * whose ID has more than 15 bits or Serial more than 13 (OTP 25; OTP 27
 * allows IDs of 28 bits), a reference of more than 3 words (OTP 25; OTP 27
 * makes aliases of 5). It then takes the whole frame for a corrupted term
 * and drops the connection it came on. So a peer that sends this node a
 * forged pid or reference of a third node, in a call's From or alias or
 * anywhere in a message, would have this node's reply, or what it stores
 * and later hands out, cut this node off from that third node.
 *
 * term_skip_cached therefore looks at each pid and reference whose numbers
 * go beyond what every release makes (TERM_USUAL_*: nearly none do) and
 * that names another node than the sender: those it hands to check, which
 * knows the nodes connected now, with their creations and releases. What
 * check refuses makes the term TERM_EFOREIGN, and costs the sender its
 * frame. Ids of the sender's own node are not handed over: sent back, they
 * cost the sender only. A node not connected now cannot be asked; an id of
 * it passes (the README's limits). */
#define TERM_USUAL_PID_ID_BITS 15     /* a pid's ID */
#define TERM_USUAL_PID_SERIAL_BITS 13 /* a pid's Serial */
#define TERM_USUAL_REF_FIRST_BITS 18  /* a reference's first word */
#define TERM_USUAL_REF_WORDS 3

typedef struct term_foreign_id {
    int is_ref;                  /* else a pid */
    const char *node;            /* the node's name as sent (not NUL-terminated) */
    size_t node_len;
    uint32_t creation;
    const unsigned char *words;  /* big-endian: a pid's ID and Serial, a reference's ID words */
    size_t n_words;
} term_foreign_id;

typedef struct term_sender {
    const char *name;            /* the sending node's name */
    size_t name_len;
    int (*check)(void *ctx, const term_foreign_id *id); /* 0: pass; else TERM_EFOREIGN. NULL: all pass */
    void *ctx;
    unsigned long long checked;  /* ids handed to check: a frame with any is not remembered (dist_memo.h) */
} term_sender;

/* term_skip, with atoms looked up in (and added to) atoms, and third
 * nodes' unusual pids and references handed to sender's check (either may
 * be NULL). */
int term_skip_cached(const char *buf, size_t len, size_t *index, unsigned max_depth,
                     term_atom_cache *atoms, term_sender *sender);

/* The term at buf[*index], of any depth, checked for its framing only: each
 * tag, length and arity against the bytes present, each scalar as term_skip
 * checks it, a fun passed over by its Size; a map's keys are not compared
 * for repeats. For a term that is passed over
 * and never used (the node stands in for an exit reason nested deeper than
 * --max-depth): it walks without recursion, in constant memory. TERM_OK
 * with *index past the term, or a negative term_error. */
int term_skip_flat(const char *buf, size_t len, size_t *index);

/* A key read back from disk, written canonical by an older rule, perhaps:
 * until 0.2.0 a fun's creator pid was kept (term.h's head). If it may hold
 * a fun, its canonical form today is made in *today (freed with ei_x_free)
 * and *key points there: 1. Otherwise, or if it cannot be, *key stays: 0. */
int term_key_today(term_view *key, ei_x_buff *today);

/* The tuple at buf[*index], checked as term_skip_cached would check it, in
 * one walk: its elements (each at most max_depth deep within itself) viewed
 * in els, *arity set; *index moves past it. A tuple of more than max_els
 * elements, or anything else, is TERM_EBAD. */
int term_tuple_elements(const char *buf, size_t len, size_t *index, unsigned max_depth,
                        term_atom_cache *atoms, term_sender *sender, term_view *els, int max_els,
                        int *arity);

/* The length of the pid (NEW_PID_EXT) or reference (NEWER_REFERENCE_EXT)
 * at p (left bytes there) of a term already checked (term_skip), read off
 * its headers without a walk, when its node is a SMALL_ATOM_UTF8_EXT as OTP
 * 23 and later send it; else 0 (walk it with term_next). Nothing is checked:
 * for bytes not checked before, its length means nothing. */
size_t term_checked_id_len(const char *p, size_t left);

/* Is t exactly one well-formed term, with nothing after it (within
 * TERM_NEXT_MAX_DEPTH)? TERM_OK, or a negative term_error. For what callers
 * of the public API hand in. */
int term_skip_one(term_view t);

/* The term at v.ptr[*i] as a view; advances *i (an int, as ei's indexes
 * are). Only for parts of a term term_skip already accepted: it checks the
 * structure and every bound again (to a depth no accepted term exceeds), so
 * no input can make it read out of v, but not the text of atoms, which
 * term_skip did. */
#define TERM_NEXT_MAX_DEPTH 2000 /* the most --max-depth allows: recursion stays within the stack, also under ASan */
int term_next(term_view v, int *i, term_view *out);

/* Room for n more bytes in x, growing it by doubling (ei's own appends grow
 * it a little at a time, which makes many appends quadratic). */
int term_reserve(ei_x_buff *x, size_t n);
/* Give memory back from a buffer that a large term went through: one
 * allocated beyond keep bytes is cut to keep, and emptied (index 0). */
void term_shrink(ei_x_buff *x, size_t keep);

/* The atom at v.ptr[*i], in any atom encoding: its text (latin1 or UTF-8 as
 * sent) and length; advances *i. -1 when it is no atom (or runs past v). */
int term_atom_slow(term_view v, int *i, const char **text, size_t *len);
static inline int term_atom(term_view v, int *i, const char **text, size_t *len)
{
    /* SMALL_ATOM_UTF8_EXT, as OTP 23 and later send atoms, read in place */
    if (*i >= 0 && (size_t)*i + 2 <= v.len && (unsigned char)v.ptr[*i] == 119 &&
        (size_t)*i + 2 + (unsigned char)v.ptr[*i + 1] <= v.len) {
        *len = (unsigned char)v.ptr[*i + 1];
        *text = v.ptr + *i + 2;
        *i += (int)(2 + *len);
        return 0;
    }
    return term_atom_slow(v, i, text, len);
}
/* Is the term at v.ptr[*i] the atom `name` (ASCII)? Advances *i past it if so. */
int term_atom_is_slow(term_view v, int *i, const char *name);
static inline int term_atom_is(term_view v, int *i, const char *name)
{
    /* OTP 23 and later send SMALL_ATOM_UTF8_EXT: compared in place (with a
     * literal name, strlen and memcmp fold into a few instructions) */
    size_t n = __builtin_strlen(name);
    if (*i < 0 || n > 255)
        return term_atom_is_slow(v, i, name);
    const unsigned char *p = (const unsigned char *)v.ptr + *i;
    if ((size_t)*i + 2 + n > v.len || p[0] != 119)
        return term_atom_is_slow(v, i, name);
    if (p[1] != n || __builtin_memcmp(p + 2, name, n) != 0)
        return 0;
    *i += (int)(2 + n);
    return 1;
}

/* Append to out the canonical encoding (no version byte) of the term at
 * buf[*index .. len), advancing *index past it. The input need not have been
 * validated first: this checks as it goes. On error out->index is restored. */
int term_canonical(const char *buf, size_t len, size_t *index, unsigned max_depth,
                   ei_x_buff *out);

#endif

/*
 * gcn_buf.h: what a gcn_buf of the public API is inside, for the engine. It
 * is an ei_x_buff (the engine may write into it with ei's own functions, and
 * sends its bytes) and a failed flag: a writer that could not write (out of
 * memory, or a value no term can hold) sets it, every later write then
 * fails, and the engine refuses what the buffer holds. Writers grow it by
 * doubling (term_reserve). The engine embeds gcn_bufs in its own structs
 * with gcn_buf_init and gcn_buf_release; modules get theirs from gcn_buf_new.
 */
#ifndef GEN_CNODE_GCN_BUF_H
#define GEN_CNODE_GCN_BUF_H

#include <stddef.h>
#include <ei.h>

#include "gen_cnode.h"

struct gcn_buf {
    ei_x_buff x; /* x.buff[0 .. x.index): the terms written, no version byte */
    int failed;
    /* Since the buffer was lent (or made): did a write run out of memory, or
     * refuse a value no term can hold? Unlike failed, gcn_build's undoing
     * and gcn_buf_reset leave these, so that the engine can tell a reply
     * left empty by a failed write from one never written (gen_server.c). */
    int out_of_memory, bad_value;
    size_t base; /* where what the module writes begins: a buffer the engine hands
                    a callback may hold the engine's own bytes before it (the
                    {Tag, of a reply), which gcn_buf_term and gcn_buf_reset leave
                    out and alone */
};

/* Memory kept by gcn_buf_reset; a buffer grown beyond it gives the rest back. */
#define GCN_BUF_KEEP 65536

static inline ei_x_buff *gcn_buf_ei(gcn_buf *b) { return &b->x; }

/* Make b an empty buffer: 0, or -1 when out of memory (b is then empty and
 * failed; gcn_buf_release is still right for it). */
int gcn_buf_init(gcn_buf *b);
/* Give back what b holds; b must be initialised again before any use. */
void gcn_buf_release(gcn_buf *b);
/* Append bytes as they are (an encoded term or part of one): 0, or -1. */
int gcn_buf_append(gcn_buf *b, const void *bytes, size_t len);
/* Hand b to a module's callback from its current end on, and take it back. */
static inline void gcn_buf_lend(gcn_buf *b)
{
    b->base = (size_t)b->x.index;
    b->out_of_memory = b->bad_value = 0;
}
static inline void gcn_buf_unlend(gcn_buf *b) { b->base = 0; }

/* Do the bytes [from, x.index) of b make exactly one well-formed term (to
 * TERM_NEXT_MAX_DEPTH), and did no write fail? */
int gcn_buf_ok_term(const gcn_buf *b, size_t from);

#endif

/*
 * term_shape.h: which bytes of an encoded term decide how it is checked.
 *
 * term_skip (term.h) reads some bytes of a term to decide: tags, lengths,
 * arities, atom text, the creation byte of the old pid tags. The others it
 * only steps over, and any value there is as good as any other:
 *   - a NEW_PID_EXT's Creation, and the low bits of its ID and Serial;
 *   - a NEWER_REFERENCE_EXT's Creation, the low bits of its first ID word
 *     and its other words;
 *   - the value of a SMALL_INTEGER_EXT (1 byte) or an INTEGER_EXT (4);
 *   - the contents of a BINARY_EXT.
 * (The high bits of pid and reference numbers, beyond TERM_USUAL_* in
 * term.h, decide whether a third node is asked about them: shape bits.)
 * Those are its data bytes (bits); every other byte is a shape byte. Two encodings
 * of the same length whose shape bytes are equal are checked alike: the same
 * verdict, the same walk, every term ending at the same offset. So a term of
 * a shape already checked need not be checked again: comparing its shape
 * bytes is enough (dist_memo.h does so for whole frames).
 *
 * Every other tag (floats, bigs, strings, funs, ports, the old pid and
 * reference tags, bitstrings) is all shape bytes: its values are checked, or
 * rare. So is a map's every key, whatever its tags: term_skip compares the
 * keys of a map (a repeated one is refused). Like term.c, this file knows
 * nothing of the network.
 */
#ifndef GEN_CNODE_TERM_SHAPE_H
#define GEN_CNODE_TERM_SHAPE_H

#include <stddef.h>

/* Mark the term at buf[*index], which term_skip accepted, in the parallel
 * array mask (mask[k] describes buf[k]): 0xff for a shape byte, 0 for a data
 * byte, the shape bits set for a byte that has both (a pid's or a reference's
 * number). Advances *index past it and returns 0; returns -1 when the term is
 * nested deeper than max_depth here (the recursion stays within it) or is not
 * well-formed, and then mask says nothing. */
int term_shape(const char *buf, size_t len, size_t *index, unsigned char *mask, unsigned max_depth);

#endif

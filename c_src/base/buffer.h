/*
 * buffer.h: a growable byte buffer with a read position, for socket input
 * (bytes arrive at the end, whole frames are consumed from the front) and
 * output (frames are appended, the socket drains the front). Memory is
 * reused from one message to the next; it is given back by buffer_shrink
 * once an unusually large message has gone through.
 */
#ifndef GEN_CNODE_BUFFER_H
#define GEN_CNODE_BUFFER_H

#include <stddef.h>
#include <stdint.h>

typedef struct buffer {
    char *data;
    size_t start; /* first unconsumed byte */
    size_t end;   /* one past the last byte */
    size_t cap;
} buffer;

static inline size_t buffer_len(const buffer *b) { return b->end - b->start; }
/* (No arithmetic on a buffer never allocated: NULL + 0 is undefined in C.) */
static inline char *buffer_head(const buffer *b) { return b->data ? b->data + b->start : NULL; }
static inline char *buffer_tail(const buffer *b) { return b->data ? b->data + b->end : NULL; }

/* Make room for at least `extra` more bytes at the end (moving unconsumed
 * bytes to the front first). Returns 0, or -1 when out of memory. */
int buffer_reserve(buffer *b, size_t extra);
int buffer_append(buffer *b, const void *p, size_t n);
static inline void buffer_consume(buffer *b, size_t n)
{
    b->start += n;
    if (b->start >= b->end)
        b->start = b->end = 0;
}
/* Give memory back when the buffer is empty and has grown beyond `keep` bytes. */
void buffer_trim(buffer *b, size_t keep);
/* Give most of it back when it has grown beyond `keep` bytes and holds at most
 * a quarter of its capacity: what it holds moves to a smaller block. Called
 * after every frame: the test is inline, the move is not. */
void buffer_shrink_now(buffer *b, size_t keep);
static inline void buffer_shrink(buffer *b, size_t keep)
{
    if (b->cap > keep && buffer_len(b) <= b->cap / 4)
        buffer_shrink_now(b, keep);
}
void buffer_free(buffer *b);

/* Big-endian stores and loads, byte by byte (no alignment assumed). */
static inline void put_u16(char *p, uint32_t v) { p[0] = (char)(v >> 8); p[1] = (char)v; }
static inline void put_u32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24); p[1] = (char)(v >> 16); p[2] = (char)(v >> 8); p[3] = (char)v;
}
static inline uint32_t get_u16(const char *p)
{
    return (uint32_t)(unsigned char)p[0] << 8 | (unsigned char)p[1];
}
static inline uint32_t get_u32(const char *p)
{
    return (uint32_t)(unsigned char)p[0] << 24 | (uint32_t)(unsigned char)p[1] << 16 |
           (uint32_t)(unsigned char)p[2] << 8 | (unsigned char)p[3];
}
static inline uint64_t get_u64(const char *p) { return (uint64_t)get_u32(p) << 32 | get_u32(p + 4); }

#endif

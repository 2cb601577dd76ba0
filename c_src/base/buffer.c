/* buffer.c: growable byte buffer; see buffer.h. */
#include "buffer.h"

#include <stdlib.h>
#include <string.h>

int buffer_reserve(buffer *b, size_t extra)
{
    if (b->cap - b->end >= extra)
        return 0;
    size_t len = buffer_len(b);
    if (b->start > 0) {
        memmove(b->data, b->data + b->start, len);
        b->start = 0;
        b->end = len;
        if (b->cap - b->end >= extra)
            return 0;
    }
    if (extra > SIZE_MAX / 2 - len)
        return -1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - len < extra)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int buffer_append(buffer *b, const void *p, size_t n)
{
    if (buffer_reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->data + b->end, p, n);
    b->end += n;
    return 0;
}

void buffer_trim(buffer *b, size_t keep)
{
    if (buffer_len(b) == 0 && b->cap > keep) {
        free(b->data);
        *b = (buffer){0};
    }
}

void buffer_shrink_now(buffer *b, size_t keep)
{
    size_t len = buffer_len(b);
    if (b->cap <= keep || len > b->cap / 4)
        return;
    if (len == 0) {
        buffer_free(b);
        return;
    }
    size_t cap = keep > 4096 ? keep : 4096;
    while (cap < 2 * len)
        cap *= 2;
    char *p = malloc(cap);
    if (!p)
        return; /* keep the big one: still correct */
    memcpy(p, b->data + b->start, len);
    free(b->data);
    *b = (buffer){p, 0, len, cap};
}

void buffer_free(buffer *b)
{
    free(b->data);
    *b = (buffer){0};
}

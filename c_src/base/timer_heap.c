/* timer_heap.c: binary min-heap of timers with an id -> position slot table; see timer_heap.h. */
#include "timer_heap.h"

#include <stdlib.h>

#define MIN_CAP 64          /* neither array shrinks below this many entries */
#define NIL UINT32_MAX      /* end of the free list */
#define MAX_ENTRIES (UINT32_MAX - 1) /* slot indices and heap positions fit 32 bits, NIL apart */

struct entry {
    uint64_t deadline;
    uint64_t seq;  /* order of adding: the tie breaker */
    uint32_t slot;
};

/* A slot's generation is odd while its timer is pending (link is then the
 * timer's heap position) and even while the slot is free (link is then the
 * next on the free list). A slot whose generation would wrap is retired:
 * generation 0, never on the free list, never reused. */
struct slot {
    void *payload;
    uint32_t gen;
    uint32_t link;
};

/*
 * Slots in use are [0, nslots). When the top one is freed, the table is cut
 * down to the highest slot still pending (or retired), and halved while it is
 * a quarter full or less. The free list is taken from its head; a slot freed
 * in the upper half of the table goes to its tail, one in the lower half to
 * its head, so the lower slots are reused first and the upper ones drain, to
 * be cut off. A cut leaves the cut slots on the free list (stale: index >=
 * nslots); they are skipped when they come up. New slots past nslots are only
 * made once the free list is empty, and the list is rebuilt whenever the
 * table's block is made smaller, so a stale entry's memory is always there.
 * The cut slots' generations are remembered in gen_floor: a slot made anew
 * starts above every id it ever gave.
 */
struct timer_heap {
    struct entry *heap;
    size_t size, cap;
    struct slot *slots;
    size_t nslots, slots_cap;
    uint32_t free_head, free_tail;
    uint32_t gen_floor; /* even */
    uint64_t next_seq;
    uint64_t steps;
};

static int is_pending(const struct slot *s) { return s->gen & 1; }
static int is_free(const struct slot *s) { return !(s->gen & 1) && s->gen != 0; }

timer_heap *timer_heap_create(void)
{
    timer_heap *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->heap = malloc(MIN_CAP * sizeof *h->heap);
    h->slots = malloc(MIN_CAP * sizeof *h->slots);
    if (!h->heap || !h->slots) {
        timer_heap_destroy(h);
        return NULL;
    }
    h->cap = h->slots_cap = MIN_CAP;
    h->free_head = h->free_tail = NIL;
    h->gen_floor = 2; /* generation 0 marks a retired slot */
    return h;
}

void timer_heap_destroy(timer_heap *h)
{
    if (!h)
        return;
    free(h->heap);
    free(h->slots);
    free(h);
}

static int less(const struct entry *a, const struct entry *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void place(timer_heap *h, size_t pos, struct entry e)
{
    h->heap[pos] = e;
    h->slots[e.slot].link = (uint32_t)pos;
}

static void sift_up(timer_heap *h, size_t pos)
{
    struct entry e = h->heap[pos];
    while (pos > 0) {
        size_t parent = (pos - 1) / 2;
        h->steps++;
        if (!less(&e, &h->heap[parent]))
            break;
        place(h, pos, h->heap[parent]);
        h->steps++;
        pos = parent;
    }
    place(h, pos, e);
}

static void sift_down(timer_heap *h, size_t pos)
{
    struct entry e = h->heap[pos];
    for (;;) {
        size_t child = 2 * pos + 1;
        if (child >= h->size)
            break;
        if (child + 1 < h->size) {
            h->steps++;
            if (less(&h->heap[child + 1], &h->heap[child]))
                child++;
        }
        h->steps++;
        if (!less(&h->heap[child], &e))
            break;
        place(h, pos, h->heap[child]);
        h->steps++;
        pos = child;
    }
    place(h, pos, e);
}

static void push_head(timer_heap *h, uint32_t idx)
{
    h->slots[idx].link = h->free_head;
    h->free_head = idx;
    if (h->free_tail == NIL)
        h->free_tail = idx;
}

static void push_tail(timer_heap *h, uint32_t idx)
{
    h->slots[idx].link = NIL;
    if (h->free_tail == NIL)
        h->free_head = idx;
    else
        h->slots[h->free_tail].link = idx;
    h->free_tail = idx;
}

/* A free slot (not a stale one) off the free list, or NIL. Each stale entry
 * is skipped once, paid for by the free that put it there: O(1) amortized. */
static uint32_t pop_free(timer_heap *h)
{
    while (h->free_head != NIL) {
        uint32_t idx = h->free_head;
        h->free_head = h->slots[idx].link;
        if (h->free_head == NIL)
            h->free_tail = NIL;
        if (idx < h->nslots)
            return idx;
    }
    return NIL;
}

/* The top slot was just freed: cut the free top off the table, and give
 * memory back when a quarter or less of the block is in use. Cutting is paid
 * for by the adds that made those slots; halving (O(nslots) to rebuild the
 * list) by the adds that filled the block before: amortized O(1). */
static void cut_slots(timer_heap *h)
{
    while (h->nslots > 0 && is_free(&h->slots[h->nslots - 1])) {
        uint32_t gen = h->slots[--h->nslots].gen;
        if (gen > h->gen_floor)
            h->gen_floor = gen;
    }
    if (h->slots_cap <= MIN_CAP || h->nslots > h->slots_cap / 4)
        return;
    size_t cap = h->slots_cap;
    while (cap / 2 >= MIN_CAP && h->nslots <= cap / 4)
        cap /= 2;
    struct slot *s = realloc(h->slots, cap * sizeof *s);
    if (!s)
        return; /* keep the bigger block: still correct */
    h->slots = s;
    h->slots_cap = cap;
    h->free_head = h->free_tail = NIL;
    for (size_t i = h->nslots; i-- > 0;)
        if (is_free(&h->slots[i]))
            push_head(h, (uint32_t)i);
}

/* Take the entry at pos out of the heap, then free its slot. */
static void remove_at(timer_heap *h, size_t pos, uint64_t *id, void **payload)
{
    uint32_t idx = h->heap[pos].slot;
    struct entry last = h->heap[--h->size];
    if (pos < h->size) {
        place(h, pos, last);
        h->steps += 2;
        if (pos > 0 && less(&last, &h->heap[(pos - 1) / 2]))
            sift_up(h, pos);
        else
            sift_down(h, pos);
    }
    if (h->cap > MIN_CAP && h->size <= h->cap / 4) {
        struct entry *e = realloc(h->heap, h->cap / 2 * sizeof *e);
        if (e) { /* else keep the bigger block: still correct */
            h->heap = e;
            h->cap /= 2;
        }
    }

    struct slot *s = &h->slots[idx];
    if (id)
        *id = (uint64_t)s->gen << 32 | idx;
    if (payload)
        *payload = s->payload;
    s->payload = NULL;
    if (s->gen == UINT32_MAX) {
        s->gen = 0; /* retired */
    } else {
        s->gen++;
        if (idx == h->nslots - 1)
            cut_slots(h);
        else if (idx >= h->nslots / 2)
            push_tail(h, idx);
        else
            push_head(h, idx);
    }
}

uint64_t timer_heap_add(timer_heap *h, uint64_t deadline, void *payload)
{
    if (h->size == h->cap) {
        if (h->cap >= MAX_ENTRIES / 2)
            return 0;
        struct entry *e = realloc(h->heap, 2 * h->cap * sizeof *e);
        if (!e)
            return 0;
        h->heap = e;
        h->cap *= 2;
    }
    uint32_t idx = pop_free(h);
    if (idx == NIL) {
        if (h->nslots == h->slots_cap) {
            if (h->slots_cap >= MAX_ENTRIES / 2)
                return 0;
            struct slot *s = realloc(h->slots, 2 * h->slots_cap * sizeof *s);
            if (!s)
                return 0;
            h->slots = s;
            h->slots_cap *= 2;
        }
        idx = (uint32_t)h->nslots++;
        h->slots[idx].gen = h->gen_floor;
    }
    struct slot *s = &h->slots[idx];
    s->gen++; /* odd: pending */
    s->payload = payload;
    h->heap[h->size] = (struct entry){deadline, h->next_seq++, idx};
    s->link = (uint32_t)h->size;
    h->size++;
    sift_up(h, h->size - 1);
    return (uint64_t)s->gen << 32 | idx;
}

int timer_heap_cancel(timer_heap *h, uint64_t id, void **payload)
{
    uint32_t idx = (uint32_t)id, gen = (uint32_t)(id >> 32);
    if (idx >= h->nslots || !is_pending(&h->slots[idx]) || h->slots[idx].gen != gen)
        return 0;
    remove_at(h, h->slots[idx].link, NULL, payload);
    return 1;
}

void *timer_heap_payload(const timer_heap *h, uint64_t id)
{
    uint32_t idx = (uint32_t)id, gen = (uint32_t)(id >> 32);
    if (idx >= h->nslots || !is_pending(&h->slots[idx]) || h->slots[idx].gen != gen)
        return NULL;
    return h->slots[idx].payload;
}

int timer_heap_next(const timer_heap *h, uint64_t *deadline)
{
    if (h->size == 0)
        return 0;
    if (deadline)
        *deadline = h->heap[0].deadline;
    return 1;
}

int timer_heap_pop_due(timer_heap *h, uint64_t now, uint64_t *id, void **payload)
{
    if (h->size == 0 || h->heap[0].deadline > now)
        return 0;
    remove_at(h, 0, id, payload);
    return 1;
}

int timer_heap_pop_any(timer_heap *h, uint64_t *id, void **payload)
{
    if (h->size == 0)
        return 0;
    remove_at(h, 0, id, payload);
    return 1;
}

size_t timer_heap_size(const timer_heap *h) { return h->size; }

size_t timer_heap_memory(const timer_heap *h)
{
    return sizeof *h + h->cap * sizeof *h->heap + h->slots_cap * sizeof *h->slots;
}

uint64_t timer_heap_steps(const timer_heap *h) { return h->steps; }

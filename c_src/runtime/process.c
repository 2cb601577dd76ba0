/* process.c: pids, registered names, monitors, links and the lifetimes of
 * the node's processes; see process.h. */
#include "process.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "buffer.h"
#include "bytes_map.h"
#include "log.h"
#include "monitor_link.h"
#include "siphash.h"
#include "term_template.h"
#include "timer_heap.h"
#include "workers.h"

/* A monitor record's parts: the key (the reference), then the watcher and
 * how it named the target. A link's only part is the linked pid. */
enum { MON_REF = 0, MON_WATCHER = 1, MON_WATCHED = 2 };

/* A message one process of this node sent another, waiting for the settle. */
typedef struct mail {
    struct mail *next;
    uint32_t to;
    uint16_t down_ref_len; /* a DOWN of a monitor `to` set: its reference's length; else 0 */
    size_t len;
    char msg[];
} mail;

/* A process's records of one node: its monitors by that node's processes,
 * its links to them, its watches of them. A node's going walks its group
 * only: a process holding a million records of one node and one of
 * another pays one record for that other's going, not a million. A record
 * is sorted into its group lazily, at the first node's going that finds
 * it (sort_records): until then it waits in the process's ungrouped, which
 * costs a call's monitor, set and taken off between two goings, a few
 * pointers rather than reading its node. Each record is sorted once. */
typedef struct node_group {
    ml_group records;
    size_t len;
    char node[];
} node_group;

struct process {
    process_table *table;
    uint32_t num;
    char *pid;
    size_t pid_len;
    char *name;
    size_t name_len;
    const process_behaviour *behaviour;
    void *state;
    ml_list monitors;    /* monitors of this process, by remote watchers */
    ml_list links;       /* links to remote processes */
    ml_list watches;     /* monitors this process set on others (process_watch) */
    int trap_exit;
    int system;          /* the node's own: exit signals are ignored */
    int want_flush;
    char *exit_reason;   /* set once the process is stopping */
    size_t exit_len;
    struct process *next_dying;
    uint64_t serial;     /* unique among all processes the table ever had */
    struct ptimer **timers; /* pending timers, each knowing its slot here */
    size_t ntimers, timers_cap;
    size_t jobs_out;     /* its jobs submitted and not yet back (PROCESS_MAX_JOBS) */
    size_t interest;     /* its place in the table's interested, plus one; 0: not there */
    size_t unsorted;     /* its place in the table's unsorted, plus one; 0: not there */
    size_t downer;       /* its place in the table's downers, plus one; 0: not there */
    int wants_node_down; /* process_want_node_down */
    node_group **groups; /* its records by node; a group left empty is freed lazily */
    size_t ngroups, groups_cap;
    ml_group ungrouped;  /* its records not sorted into groups yet */
    struct pjob *late_jobs; /* ended while it was stopping: done after its terminate */
    workers_turn job_turn;  /* its place in its module's line for the workers */
};

/* A pending timer: what to deliver to whom; freed when it fires, is
 * cancelled, or its process goes. */
typedef struct ptimer {
    uint64_t id;
    uint32_t owner;
    size_t slot; /* in the owner's timers */
    size_t len;
    char msg[];
} ptimer;

/* A job handed to the worker pool, and whom to tell when it is done. */
typedef struct pjob {
    process_job_run *run;
    process_job_done *done;
    void *job;
    uint32_t owner;
    uint64_t serial; /* the owner's, so that a number reused meanwhile is not taken for it */
    int ran;
    struct pjob *next; /* in its owner's late_jobs */
} pjob;

struct process_table {
    char *node;
    size_t node_len;
    uint32_t creation;
    process_router router;
    process **procs;           /* live processes, sorted by number: found by binary search */
    size_t nprocs, cap;
    size_t max_procs;          /* most processes at once (--max-processes); 0: no limit */
    int full_logged;           /* a spawn was refused at max_procs, and none stopped since */
    process **named;           /* the registered ones, sorted by name */
    size_t nnamed, named_cap;
    process *last_named;       /* the one process_whereis found last (a name is
                                  asked for over and over: kv, one per call) */
    uint32_t next_num;
    ml_index *ml;              /* every monitor and link */
    process *dying, **dying_tail; /* stopped, torn down at the next settle */
    mail *mail, **mail_tail;   /* sent between local processes, delivered at the next settle */
    uint32_t *flush, *flushing; /* numbers of processes that asked to flush */
    size_t nflush, flush_cap;
    /* The processes a node's going may concern: each that ever had a
     * monitor, link or watch since the last forget (it may still), and each
     * that wants node_down, live or dying. process_forget_node walks these
     * only, and drops those with nothing left: a node's going costs what
     * was set up since, not every process. Room for every process there is
     * (allocated), so adding one never fails. */
    process **interested;
    size_t ninterested, interested_cap, allocated;
    /* Processes that got records into their ungrouped since those were last
     * sorted, and processes that want node_down: with node_groups (node
     * name -> how many processes have a group of it, NULL when it could
     * not be kept), a node's going that no process holds a record of costs
     * the node_down watchers only, not every interested process (a peer
     * makes calls from made-up nodes, each a failed dial). */
    process **unsorted, **downers;
    size_t nunsorted, unsorted_cap, ndowners, downers_cap;
    bytes_map *node_groups;
    process **walk;            /* a copy of interested, for process_forget_node */
    size_t walk_cap;
    uint64_t forget_visits;    /* processes process_forget_node looked at */
    uint64_t forget_records;   /* and records (monitors, links, watches) */
    buffer gone;               /* pids of links to a node that went away */
    timer_heap *timers;        /* every process's pending timers */
    struct workers *workers;   /* the node's pool for blocking jobs */
    long jobs_grace_ms;        /* how long a stop waits for running jobs (< 0: no limit) */
    uint64_t unlink_ids;       /* the last UNLINK_ID sent */
    uint64_t refs;             /* references made so far (process_watch) */
    /* What makes those references unguessable: a peer that saw some (a
     * monitor set on its process carries one) must not make up another,
     * say to send a scope a 'DOWN' it would take for a member's. */
    uint32_t ref_salt;         /* random, xored into the second word */
    unsigned char ref_key[16]; /* random, the key of the third word's hash */
    const char *sender_node;   /* whose connection brought the message being delivered, or NULL */
    size_t sender_len;
    uint64_t spawned;          /* processes spawned so far (their serials) */
    process_stats_fn *stats;   /* the node's part of the stats map */
    void *stats_ctx;
    uint32_t *node_watchers;   /* numbers of processes told of new connections */
    size_t nnode_watchers;
};

static const char killed_atom[] = {119, 6, 'k', 'i', 'l', 'l', 'e', 'd'};
static const char noconnection_atom[] = {119, 12, 'n', 'o', 'c', 'o', 'n', 'n', 'e', 'c', 't', 'i', 'o', 'n'};
static const char noproc_atom[] = {119, 6, 'n', 'o', 'p', 'r', 'o', 'c'};
static const char shutdown_atom[] = {119, 8, 's', 'h', 'u', 't', 'd', 'o', 'w', 'n'};

/* ---- reading atoms, pids and friends from encoded bytes ---- */

static int read_atom(term_view v, size_t *i, const char **s, size_t *n)
{
    int j = (int)*i;
    if (term_atom(v, &j, s, n) < 0)
        return -1;
    *i = (size_t)j;
    return 0;
}

int process_term_node(term_view t, const char **node, size_t *len)
{
    size_t i = 1;
    if (t.len < 1)
        return -1;
    switch ((unsigned char)t.ptr[0]) {
    case 103: case 88:            /* PID_EXT, NEW_PID_EXT */
    case 102: case 89: case 120:  /* PORT_EXT, NEW_PORT_EXT, V4_PORT_EXT */
    case 101:                     /* REFERENCE_EXT */
        break;
    case 114: case 90:            /* NEW_REFERENCE_EXT, NEWER_REFERENCE_EXT: Len first */
        i = 3;
        break;
    default:
        return -1;
    }
    return read_atom(t, &i, node, len);
}

struct pid_parts {
    const char *node;
    size_t node_len;
    uint32_t id, serial, creation;
};

static int parse_pid(term_view v, struct pid_parts *p)
{
    size_t i = 1;
    if (v.len < 1 || ((unsigned char)v.ptr[0] != 103 && (unsigned char)v.ptr[0] != 88))
        return -1;
    int wide = (unsigned char)v.ptr[0] == 88;
    if (read_atom(v, &i, &p->node, &p->node_len) < 0 || i + 8 + (wide ? 4 : 1) > v.len)
        return -1;
    p->id = get_u32(v.ptr + i);
    p->serial = get_u32(v.ptr + i + 4);
    p->creation = wide ? get_u32(v.ptr + i + 8) : (unsigned char)v.ptr[i + 8];
    return 0;
}

/* ---- the table ---- */

process_table *process_table_create(const char *node, uint32_t creation,
                                    const process_router *router)
{
    process_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->node = strdup(node);
    t->ml = ml_index_create();
    t->timers = timer_heap_create();
    if (!t->node || !t->ml || !t->timers) {
        free(t->node);
        ml_index_destroy(t->ml);
        timer_heap_destroy(t->timers);
        free(t);
        return NULL;
    }
    t->node_len = strlen(node);
    t->creation = creation;
    t->router = *router;
    t->next_num = 1;
    if (getrandom(&t->ref_salt, sizeof t->ref_salt, 0) != (ssize_t)sizeof t->ref_salt ||
        getrandom(t->ref_key, sizeof t->ref_key, 0) != (ssize_t)sizeof t->ref_key) {
        log_error("getrandom failed: this node's references can be guessed by a peer");
        t->ref_salt = (uint32_t)(uintptr_t)t ^ creation;
    }
    t->dying_tail = &t->dying;
    t->mail_tail = &t->mail;
    t->node_groups = bytes_map_create(); /* NULL: every node's going looks at every interested process */
    return t;
}

/* ---- the index: processes by number, registered ones by name ---- */

/* Where the process numbered num is, or would go, in t->procs. */
static size_t num_slot(const process_table *t, uint32_t num)
{
    size_t lo = 0, hi = t->nprocs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->procs[mid]->num < num)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static process *by_num(process_table *t, uint32_t num)
{
    size_t i = num_slot(t, num);
    return i < t->nprocs && t->procs[i]->num == num ? t->procs[i] : NULL;
}

static int name_cmp(const process *p, const char *name, size_t len)
{
    if (p->name_len != len)
        return p->name_len < len ? -1 : 1;
    return memcmp(p->name, name, len);
}

/* Where the process registered as name is, or would go, in t->named. */
static size_t name_slot(const process_table *t, const char *name, size_t len)
{
    size_t lo = 0, hi = t->nnamed;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (name_cmp(t->named[mid], name, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void unindex(process_table *t, process *p)
{
    size_t i = num_slot(t, p->num);
    if (i < t->nprocs && t->procs[i] == p) {
        memmove(t->procs + i, t->procs + i + 1, (t->nprocs - i - 1) * sizeof *t->procs);
        t->nprocs--;
        t->full_logged = 0;
    }
    if (t->last_named == p)
        t->last_named = NULL;
    if (p->name) {
        i = name_slot(t, p->name, p->name_len);
        if (i < t->nnamed && t->named[i] == p) {
            memmove(t->named + i, t->named + i + 1, (t->nnamed - i - 1) * sizeof *t->named);
            t->nnamed--;
        }
    }
}

/* The table's lists of processes (interested, unsorted, downers) whose
 * members know their place in them (plus one; 0: not there), at offset
 * `place` of struct process, so that one leaves in constant time (the
 * last takes its place). Room for every process is made at spawn. */
#define PLACE(field) offsetof(struct process, field)
static inline size_t *place_of(process *p, size_t place) { return (size_t *)(void *)((char *)p + place); }

static inline void list_add(process **list, size_t *n, process *p, size_t place)
{
    if (!*place_of(p, place)) {
        list[(*n)++] = p;
        *place_of(p, place) = *n;
    }
}

static void list_remove(process **list, size_t *n, process *p, size_t place)
{
    size_t at = *place_of(p, place);
    if (at) {
        process *last = list[--*n];
        list[at - 1] = last;
        *place_of(last, place) = at;
        *place_of(p, place) = 0;
    }
}

/* p may be concerned by a node's going (see interested). */
static inline void interest(process_table *t, process *p) { list_add(t->interested, &t->ninterested, p, PLACE(interest)); }
static void disinterest(process_table *t, process *p) { list_remove(t->interested, &t->ninterested, p, PLACE(interest)); }
/* p has records in its ungrouped. */
static inline void unsorted(process_table *t, process *p) { list_add(t->unsorted, &t->nunsorted, p, PLACE(unsorted)); }
static void sorted(process_table *t, process *p) { list_remove(t->unsorted, &t->nunsorted, p, PLACE(unsorted)); }
static void undown(process_table *t, process *p) { list_remove(t->downers, &t->ndowners, p, PLACE(downer)); }

/* A group of node made (+1) or freed (-1) by some process: its count, in
 * place (a new node's only is put; a count is the value itself). When one
 * cannot be kept, node_groups goes, and it is counted again at the next
 * going that walks them all (count_all_groups); till then every going
 * walks them all. */
static void count_group(process_table *t, const char *node, size_t len, int delta)
{
    if (!t->node_groups)
        return;
    void **at = bytes_map_at(t->node_groups, node, len);
    uintptr_t n = at ? (uintptr_t)*at : 0;
    if (delta < 0 && n <= 1) {
        if (at)
            bytes_map_remove(t->node_groups, node, len);
    } else if (at) {
        *at = (void *)(delta > 0 ? n + 1 : n - 1);
    } else if (delta > 0 && bytes_map_put(t->node_groups, node, len, (void *)(uintptr_t)1) < 0) {
        bytes_map_destroy(t->node_groups);
        t->node_groups = NULL;
    }
}

/* node_groups made again, of every process's groups (still none when out of memory). */
static void count_all_groups(process_table *t)
{
    if (t->node_groups || !(t->node_groups = bytes_map_create()))
        return;
    for (size_t i = 0; i < t->nprocs && t->node_groups; i++)
        for (size_t j = 0; j < t->procs[i]->ngroups && t->node_groups; j++)
            count_group(t, t->procs[i]->groups[j]->node, t->procs[i]->groups[j]->len, +1);
    for (process *p = t->dying; p && t->node_groups; p = p->next_dying)
        for (size_t j = 0; j < p->ngroups && t->node_groups; j++)
            count_group(t, p->groups[j]->node, p->groups[j]->len, +1);
}

/* Free p and whatever it still holds, without telling anyone. */
/* The jobs that ended while p was stopping get their done with no process
 * now, after p's terminate (free_process comes after it on every path): a
 * terminate may still reach them (a cancel flag), and their done frees them. */
static void late_jobs_done(process *p)
{
    pjob *oldest = NULL;
    while (p->late_jobs) {
        pjob *j = p->late_jobs;
        p->late_jobs = j->next;
        j->next = oldest;
        oldest = j;
    }
    while (oldest) {
        pjob *j = oldest;
        oldest = j->next;
        j->done(NULL, j->job, j->ran);
        free(j);
    }
}

static void free_process(process_table *t, process *p)
{
    late_jobs_done(p);
    for (size_t i = 0; i < p->ntimers; i++) {
        void *payload;
        timer_heap_cancel(t->timers, p->timers[i]->id, &payload); /* 0 if it just fired */
        free(p->timers[i]);
    }
    free(p->timers);
    while (p->monitors.head)
        ml_remove(t->ml, &p->monitors, p->monitors.head);
    while (p->links.head)
        ml_remove(t->ml, &p->links, p->links.head);
    while (p->watches.head)
        ml_remove(t->ml, &p->watches, p->watches.head);
    for (size_t i = 0; i < p->ngroups; i++) {
        count_group(t, p->groups[i]->node, p->groups[i]->len, -1);
        free(p->groups[i]);
    }
    free(p->groups);
    disinterest(t, p);
    sorted(t, p);
    undown(t, p);
    t->allocated--;
    free(p->pid);
    free(p->name);
    if (p->exit_reason != killed_atom && p->exit_reason != shutdown_atom)
        free(p->exit_reason);
    free(p);
}

static size_t stop_workers(process_table *t);
static void last_flush(process *p);

size_t process_table_destroy(process_table *t)
{
    if (!t)
        return 0;
    term_view shutdown = {shutdown_atom, sizeof shutdown_atom};
    /* No job starts while the servers stop: a queued one would only run
     * after its server's terminate said it was no longer wanted. */
    workers_quiesce(t->workers);
    while (t->nprocs) {
        process *p = t->procs[t->nprocs - 1];
        unindex(t, p);
        /* Marked stopping first: a terminate that stops its own server (or
         * another) must not queue it for a settle that will not come. */
        p->exit_reason = (char *)shutdown_atom;
        p->exit_len = sizeof shutdown_atom;
        last_flush(p);
        if (p->behaviour->destroy)
            p->behaviour->destroy(p, shutdown);
        free_process(t, p);
    }
    while (t->dying) {
        process *p = t->dying;
        t->dying = p->next_dying;
        last_flush(p);
        if (p->behaviour->destroy)
            p->behaviour->destroy(p, (term_view){p->exit_reason, p->exit_len});
        free_process(t, p);
    }
    /* After every terminate, as when a server stops alone: a terminate may
     * still reach its jobs (a cancel flag), whose done then frees them. */
    size_t stuck = stop_workers(t);
    while (t->mail) {
        mail *m = t->mail;
        t->mail = m->next;
        free(m);
    }
    ml_index_destroy(t->ml);
    timer_heap_destroy(t->timers); /* every payload went with its process */
    free(t->procs);
    free(t->named);
    free(t->flush);
    free(t->flushing);
    free(t->interested);
    free(t->unsorted);
    free(t->downers);
    bytes_map_destroy(t->node_groups);
    free(t->walk);
    free(t->node_watchers);
    buffer_free(&t->gone);
    free(t->node);
    free(t);
    return stuck;
}

const char *process_table_node(const process_table *t) { return t->node; }
size_t process_count(const process_table *t) { return t->nprocs; }
void process_table_set_limit(process_table *t, size_t max) { t->max_procs = max; }
int process_table_full(const process_table *t) { return t->max_procs && t->nprocs >= t->max_procs; }
uint64_t process_table_probes(const process_table *t) { return ml_index_probes(t->ml); }
uint64_t process_table_forget_visits(const process_table *t) { return t->forget_visits; }
uint64_t process_table_forget_records(const process_table *t) { return t->forget_records; }

static int dying_num(const process_table *t, uint32_t num)
{
    for (const process *p = t->dying; p; p = p->next_dying)
        if (p->num == num)
            return 1;
    return 0;
}

/* Room in *array (*cap places, n taken) for one more: 0, or -1. */
static int room_for_one(process ***array, size_t n, size_t *cap)
{
    if (n < *cap)
        return 0;
    size_t grown = *cap ? *cap * 2 : 8;
    process **a = realloc(*array, grown * sizeof *a);
    if (!a)
        return -1;
    *array = a;
    *cap = grown;
    return 0;
}

process *process_spawn(process_table *t, const process_behaviour *behaviour, void *state)
{
    if (t->node_len > 255)
        return NULL;
    if (process_table_full(t)) {
        if (!t->full_logged)
            log_warning("%zu processes, as many as --max-processes allows: a new one is refused, "
                        "and so is every other until one stops (logged once until then)", t->nprocs);
        t->full_logged = 1;
        return NULL;
    }
    if (room_for_one(&t->procs, t->nprocs, &t->cap) < 0 ||
        room_for_one(&t->interested, t->allocated, &t->interested_cap) < 0 ||
        room_for_one(&t->unsorted, t->allocated, &t->unsorted_cap) < 0 ||
        room_for_one(&t->downers, t->allocated, &t->downers_cap) < 0)
        return NULL;
    process *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->pid_len = 1 + 2 + t->node_len + 12;
    p->pid = malloc(p->pid_len);
    if (!p->pid) {
        free(p);
        return NULL;
    }
    p->table = t;
    t->allocated++;
    /* Skip numbers in use (only once the numbers have wrapped), and 0; a
     * dying process's too: its timers and mail, due at this turn's settle,
     * are addressed by number. */
    while (t->next_num == 0 || by_num(t, t->next_num) ||
           (t->spawned >= UINT32_MAX && dying_num(t, t->next_num)))
        t->next_num++;
    p->num = t->next_num++;
    p->serial = ++t->spawned;
    p->behaviour = behaviour;
    p->state = state;
    /* NEW_PID_EXT, node as SMALL_ATOM_UTF8_EXT, id, serial 0, creation */
    char *b = p->pid;
    b[0] = (char)88;
    b[1] = (char)119;
    b[2] = (char)t->node_len;
    memcpy(b + 3, t->node, t->node_len);
    put_u32(b + 3 + t->node_len, p->num);
    put_u32(b + 7 + t->node_len, 0);
    put_u32(b + 11 + t->node_len, t->creation);
    size_t i = num_slot(t, p->num); /* the end, but for numbers that wrapped */
    memmove(t->procs + i + 1, t->procs + i, (t->nprocs - i) * sizeof *t->procs);
    t->procs[i] = p;
    t->nprocs++;
    return p;
}

int process_register(process *p, const char *name)
{
    process_table *t = p->table;
    size_t len = strlen(name);
    if (p->name || p->exit_reason || !atom_text_ok(name, len))
        return -1;
    size_t i = name_slot(t, name, len);
    if (i < t->nnamed && name_cmp(t->named[i], name, len) == 0)
        return -1; /* taken */
    if (t->nnamed == t->named_cap) {
        size_t cap = t->named_cap ? t->named_cap * 2 : 8;
        process **named = realloc(t->named, cap * sizeof *named);
        if (!named)
            return -1;
        t->named = named;
        t->named_cap = cap;
    }
    if (!(p->name = strdup(name)))
        return -1;
    p->name_len = len;
    memmove(t->named + i + 1, t->named + i, (t->nnamed - i) * sizeof *t->named);
    t->named[i] = p;
    t->nnamed++;
    return 0;
}

process *process_whereis(process_table *t, const char *name, size_t len)
{
    process *p = t->last_named;
    if (p && p->name_len == len && memcmp(p->name, name, len) == 0)
        return p;
    size_t i = name_slot(t, name, len);
    if (i < t->nnamed && name_cmp(t->named[i], name, len) == 0)
        return t->last_named = t->named[i];
    return NULL;
}

int process_name_releasing(const process_table *t, const char *name, size_t len)
{
    for (const process *p = t->dying; p; p = p->next_dying)
        if (p->name && p->name_len == len && memcmp(p->name, name, len) == 0)
            return 1;
    return 0;
}

process *process_lookup(process_table *t, term_view pid)
{
    struct pid_parts pp;
    if (parse_pid(pid, &pp) < 0 || pp.node_len != t->node_len ||
        memcmp(pp.node, t->node, pp.node_len) != 0 || pp.creation != t->creation || pp.serial != 0)
        return NULL;
    return by_num(t, pp.id);
}

process *process_resolve(process_table *t, term_view pid_or_name)
{
    size_t i = 0;
    const char *s;
    size_t n;
    if (read_atom(pid_or_name, &i, &s, &n) == 0)
        return process_whereis(t, s, n);
    return process_lookup(t, pid_or_name);
}

term_view process_pid(const process *p) { return (term_view){p->pid, p->pid_len}; }
uint32_t process_number(const process *p) { return p->num; }
const char *process_name(const process *p) { return p->name; }
process_table *process_table_of(const process *p) { return p->table; }
void *process_state(const process *p) { return p->state; }
size_t process_monitor_count(const process *p) { return p->monitors.count; }
size_t process_link_count(const process *p) { return p->links.count; }

/* ---- messages ---- */

void process_deliver(process *p, term_view msg)
{
    if (!p->exit_reason)
        p->behaviour->message(p, msg);
}

static _Thread_local uint32_t current_cause;

uint32_t process_cause(void) { return current_cause; }

uint32_t process_set_cause(uint32_t cause)
{
    uint32_t was = current_cause;
    current_cause = cause;
    return was;
}

void process_deliver_from(process *p, term_view msg, const char *node, size_t len)
{
    process_table *t = p->table;
    const char *was = t->sender_node;
    size_t was_len = t->sender_len;
    t->sender_node = node;
    t->sender_len = len;
    process_deliver(p, msg);
    t->sender_node = was;
    t->sender_len = was_len;
}

const char *process_sender_node(const process *p, size_t *len)
{
    *len = p->table->sender_len;
    return p->table->sender_node;
}

/* The mail queued last (t->mail is not empty). */
static mail *last_mail(process_table *t)
{
    return (mail *)((char *)t->mail_tail - offsetof(mail, next));
}

/* Queue msg for process number `to`, delivered at the next settle. */
static int queue_mail(process_table *t, uint32_t to, term_view msg)
{
    mail *m = malloc(sizeof *m + msg.len);
    if (!m)
        return -1;
    m->next = NULL;
    m->to = to;
    m->down_ref_len = 0;
    m->len = msg.len;
    memcpy(m->msg, msg.ptr, msg.len);
    *t->mail_tail = m;
    t->mail_tail = &m->next;
    return 0;
}

int process_send(process *from, term_view to_pid, term_view msg)
{
    process_table *t = from->table;
    process *local = process_lookup(t, to_pid);
    if (!local)
        return t->router.send(t->router.ctx, process_pid(from), to_pid, msg);
    return queue_mail(t, local->num, msg);
}

int process_send_alias(process *from, term_view alias, term_view msg)
{
    process_table *t = from->table;
    return t->router.send_alias(t->router.ctx, process_pid(from), alias, msg);
}

int process_send_registered(process *from, term_view name, term_view node, term_view msg)
{
    process_table *t = from->table;
    return t->router.reg_send(t->router.ctx, process_pid(from), name, node, msg);
}

/* ---- monitors ---- */

/* p's group of node, or NULL. */
static node_group *find_group(const process *p, const char *node, size_t len)
{
    for (size_t i = 0; i < p->ngroups; i++)
        if (p->groups[i]->len == len && memcmp(p->groups[i]->node, node, len) == 0)
            return p->groups[i];
    return NULL;
}

/* The pid a record is of: the watcher of a monitor, the linked process,
 * the watched one. */
static term_view pid_of(ml_record *r)
{
    enum ml_kind k = ml_kind_of(r);
    return ml_part(r, k == ML_MONITOR ? MON_WATCHER : k == ML_LINK ? 0 : 1);
}

/* p's group of the node of the pid `of`, made if need be; NULL when out
 * of memory, or when `of` names no node. */
static node_group *group_of(process *p, term_view of)
{
    const char *node;
    size_t len;
    if (process_term_node(of, &node, &len) != 0)
        return NULL;
    node_group *g = find_group(p, node, len);
    if (!g) {
        if (p->ngroups == p->groups_cap) { /* those left empty go first (a peer naming node after node) */
            size_t kept = 0;
            for (size_t i = 0; i < p->ngroups; i++)
                if (p->groups[i]->records.count) {
                    p->groups[kept++] = p->groups[i];
                } else {
                    count_group(p->table, p->groups[i]->node, p->groups[i]->len, -1);
                    free(p->groups[i]);
                }
            p->ngroups = kept;
        }
        if (p->ngroups == p->groups_cap) {
            size_t cap = p->groups_cap ? 2 * p->groups_cap : 2;
            node_group **more = realloc(p->groups, cap * sizeof *more);
            if (!more)
                return NULL;
            p->groups = more;
            p->groups_cap = cap;
        }
        if (!(g = malloc(sizeof *g + len)))
            return NULL;
        g->records = (ml_group){NULL, 0};
        g->len = len;
        memcpy(g->node, node, len);
        p->groups[p->ngroups++] = g;
        count_group(p->table, node, len, +1);
    }
    return g;
}

/* p's ungrouped records into their groups, oldest first: each joins its
 * group as its newest, and every ungrouped record is newer than every
 * grouped one, so a group stays newest first, the order the lists keep
 * (and DOWNs and EXITs went in, before there were groups). One that
 * cannot be sorted (out of memory, or a pid whose node cannot be read)
 * stays, and a node's going looks at what stays (forget_node_quietly,
 * process_forget_node), as every record was looked at before groups. */
static void sort_records(process *p)
{
    ml_record *r = p->ungrouped.head;
    while (r && ml_group_next(r))
        r = ml_group_next(r);
    for (ml_record *newer; r; r = newer) {
        newer = ml_group_prev(r);
        node_group *g = group_of(p, pid_of(r));
        if (g) {
            ml_group_leave(r);
            ml_group_join(&g->records, r);
        }
    }
}

int process_monitor(process *target, term_view watcher, term_view ref, term_view watched)
{
    term_view parts[3];
    int added;
    parts[MON_REF] = ref;
    parts[MON_WATCHER] = watcher;
    parts[MON_WATCHED] = watched;
    /* A reference is unique: a second monitor with the same one (a broken
     * or hostile peer) is the first, and one with another watcher's
     * reference is refused. */
    ml_record *r = ml_add(target->table->ml, &target->monitors, target->num, ML_MONITOR, 3, parts, &added);
    if (!r)
        return -1;
    if (added)
        ml_group_join(&target->ungrouped, r);
    unsorted(target->table, target);
    interest(target->table, target);
    term_view w = ml_part(r, MON_WATCHER);
    return added || (w.len == watcher.len && memcmp(w.ptr, watcher.ptr, w.len) == 0) ? 0 : -1;
}

void process_demonitor(process *target, term_view watcher, term_view ref)
{
    ml_record *r = ml_find(target->table->ml, &target->monitors, target->num, ML_MONITOR, ref);
    term_view w = r ? ml_part(r, MON_WATCHER) : (term_view){NULL, 0};
    if (r && w.len == watcher.len && memcmp(w.ptr, watcher.ptr, w.len) == 0)
        ml_remove(target->table->ml, &target->monitors, r);
}

int process_monitor_noproc(process_table *t, term_view watched, term_view watcher, term_view ref)
{
    term_view reason = {noproc_atom, sizeof noproc_atom};
    return t->router.monitor_exit(t->router.ctx, watched, watcher, ref, reason);
}

static int on_node(term_view pid, const char *node, size_t len)
{
    const char *n;
    size_t nlen;
    return process_term_node(pid, &n, &nlen) == 0 && nlen == len && memcmp(n, node, len) == 0;
}

static int is_atom_named(term_view v, const char *name)
{
    size_t i = 0, n, want = strlen(name);
    const char *s;
    return read_atom(v, &i, &s, &n) == 0 && i == v.len && n == want && memcmp(s, name, n) == 0;
}

/* ---- stopping ---- */

void process_exit(process *p, term_view reason)
{
    process_table *t = p->table;
    if (p->exit_reason)
        return; /* the first reason stands */
    p->exit_reason = malloc(reason.len ? reason.len : 1);
    if (p->exit_reason) {
        memcpy(p->exit_reason, reason.ptr, reason.len);
        p->exit_len = reason.len;
    } else { /* no memory even for the reason: stop all the same, as killed */
        p->exit_reason = (char *)killed_atom;
        p->exit_len = sizeof killed_atom;
    }
    unindex(t, p); /* gone for everyone at once; torn down at the next settle */
    p->next_dying = NULL;
    *t->dying_tail = p;
    t->dying_tail = &p->next_dying;
}

int process_exiting(const process *p) { return p->exit_reason != NULL; }
term_view process_exit_reason(const process *p) { return (term_view){p->exit_reason, p->exit_reason ? p->exit_len : 0}; }

/* {'DOWN', Ref, process, Watched, Reason} queued for watcher, whose watch
 * record goes with it. */
/* {'DOWN', : how every DOWN mail starts (queue_down, deliver_down) */
static const char down_head[] = {104, 5, 119, 4, 'D', 'O', 'W', 'N'};

static void queue_down(process_table *t, process *watcher, term_view ref, term_view watched,
                       term_view reason)
{
    static const char process_atom[] = {119, 7, 'p', 'r', 'o', 'c', 'e', 's', 's'};
    ml_record *r = ml_find(t->ml, &watcher->watches, watcher->num, ML_WATCH, ref);
    if (!r || ml_fired(r))
        return; /* taken off meanwhile (no DOWN, as demonitor promises), or fired already */
    size_t len = sizeof down_head + ref.len + sizeof process_atom + watched.len + reason.len;
    char *m = malloc(len);
    if (m) {
        char *at = m;
        memcpy(at, down_head, sizeof down_head), at += sizeof down_head;
        memcpy(at, ref.ptr, ref.len), at += ref.len;
        memcpy(at, process_atom, sizeof process_atom), at += sizeof process_atom;
        memcpy(at, watched.ptr, watched.len), at += watched.len;
        memcpy(at, reason.ptr, reason.len);
        if (queue_mail(t, watcher->num, (term_view){m, len}) == 0) {
            /* The record stays, marked, until the DOWN is delivered: a
             * demonitor meanwhile takes it off, and the DOWN is not
             * delivered (deliver_down), as demonitor(Ref, [flush]). */
            last_mail(t)->down_ref_len = (uint16_t)ref.len;
            ml_set_fired(r);
            free(m);
            return;
        }
        free(m);
    }
    log_error("out of memory: a DOWN for process %u is lost", watcher->num);
    ml_remove(t->ml, &watcher->watches, r);
}

/* A DOWN mail for p: delivered if its monitor is still on (marked fired),
 * which it then leaves; else p took the monitor off since (process_unwatch),
 * and it is dropped. Constant time, whatever p monitors. */
static void deliver_down(process_table *t, process *p, const mail *m)
{
    term_view ref = {m->msg + sizeof down_head, m->down_ref_len};
    ml_record *r = ml_find(t->ml, &p->watches, p->num, ML_WATCH, ref);
    if (!r || !ml_fired(r))
        return;
    ml_remove(t->ml, &p->watches, r);
    process_deliver(p, (term_view){m->msg, m->len});
}

/* A flush p asked for in the batch it stopped in runs before it goes (a
 * group commit holds callers whose changes are written: their answers). */
static void last_flush(process *p)
{
    if (p->want_flush && p->behaviour->flush) {
        p->want_flush = 0;
        p->behaviour->flush(p);
    }
}

/* Tear p down: behaviour first (a flush it asked for, its terminate), then
 * DOWN to monitors and EXIT to links, then free it. Only at a settle. */
static void finish(process_table *t, process *p)
{
    term_view reason = {p->exit_reason, p->exit_len};
    last_flush(p);
    if (p->behaviour->destroy)
        p->behaviour->destroy(p, reason);
    for (ml_record *r = p->monitors.head; r; r = ml_next(r)) {
        process *local = process_lookup(t, ml_part(r, MON_WATCHER));
        if (local)
            queue_down(t, local, ml_part(r, MON_REF), ml_part(r, MON_WATCHED), reason);
        else
            t->router.monitor_exit(t->router.ctx, ml_part(r, MON_WATCHED), ml_part(r, MON_WATCHER),
                                   ml_part(r, MON_REF), reason);
    }
    while (p->watches.head) /* what p monitored need not tell it any more */
        process_unwatch(p, ml_part(p->watches.head, 0));
    for (ml_record *r = p->links.head; r; r = ml_next(r))
        t->router.exit(t->router.ctx, process_pid(p), ml_part(r, 0), reason);
    free_process(t, p);
}

int process_table_has_mail(const process_table *t) { return t->mail != NULL; }

int process_table_settle(process_table *t)
{
    /* What was sent before this settle; what these deliveries send waits. */
    mail *batch = t->mail;
    t->mail = NULL;
    t->mail_tail = &t->mail;
    while (batch) {
        mail *m = batch;
        batch = m->next;
        process *p = by_num(t, m->to);
        if (p && m->down_ref_len)
            deliver_down(t, p, m);
        else if (p)
            process_deliver(p, (term_view){m->msg, m->len});
        free(m);
    }
    while (t->dying) { /* a finish may stop more: they join the end of the list */
        process *p = t->dying;
        t->dying = p->next_dying;
        if (!t->dying)
            t->dying_tail = &t->dying;
        finish(t, p);
    }
    return t->mail != NULL;
}

/* ---- exit signals and links ---- */

void process_set_trap_exit(process *p, int on) { p->trap_exit = on != 0; }
int process_trap_exit(const process *p) { return p->trap_exit; }
void process_set_system(process *p) { p->system = 1; }
int process_is_system(const process *p) { return p->system; }

/* A link asked for to a pid whose node cannot be reached: as OTP's
 * link/1, the linker gets the exit signal noconnection at once (queued as
 * a message when it traps exits, so no behaviour runs under the caller). */
static void link_unreachable(process *p, term_view other)
{
    term_view noconnection = {noconnection_atom, sizeof noconnection_atom};
    if (p->system)
        return;
    if (!p->trap_exit) {
        process_exit(p, noconnection);
        return;
    }
    size_t len = 2 + 6 + other.len + noconnection.len;
    char *m = malloc(len);
    if (m) {
        m[0] = 104; m[1] = 3;
        m[2] = 119; m[3] = 4; memcpy(m + 4, "EXIT", 4);
        memcpy(m + 8, other.ptr, other.len);
        memcpy(m + 8 + other.len, noconnection.ptr, noconnection.len);
    }
    if (!m || queue_mail(p->table, p->num, (term_view){m, len}) < 0)
        process_exit(p, (term_view){killed_atom, sizeof killed_atom});
    free(m);
}

int process_link(process *p, term_view other, int notify)
{
    int added;
    ml_record *r = ml_add(p->table->ml, &p->links, p->num, ML_LINK, 1, &other, &added);
    if (!r)
        return -1;
    if (added)
        ml_group_join(&p->ungrouped, r);
    unsorted(p->table, p);
    interest(p->table, p);
    if (notify && p->table->router.link(p->table->router.ctx, process_pid(p), other) < 0 && added) {
        ml_remove(p->table->ml, &p->links, r); /* the other side never heard of it */
        link_unreachable(p, other);
    }
    return 0;
}

int process_monitor_nodes(process *p)
{
    process_table *t = p->table;
    uint32_t *w = realloc(t->node_watchers, (t->nnode_watchers + 1) * sizeof *w);
    if (!w)
        return -1;
    w[t->nnode_watchers++] = p->num;
    t->node_watchers = w;
    return 0;
}

void process_table_node_up(process_table *t, const char *node, size_t len)
{
    /* {nodeup, Node}: the node atom as SMALL_ATOM_UTF8_EXT or ATOM_UTF8_EXT */
    char head[2 + 6 + 3];
    size_t h = 0;
    head[h++] = 104, head[h++] = 2;
    head[h++] = 119, head[h++] = 6;
    memcpy(head + h, "nodeup", 6), h += 6;
    if (len > 1020) { /* 255 characters of 4 bytes: the handshake lets no longer name in */
        log_error("a node name over 1020 bytes: no nodeup for it");
        return;
    }
    char msg[sizeof head + 3 + 1020];
    memcpy(msg, head, h);
    if (len > 255) { /* ATOM_UTF8_EXT: up to 255 characters of several bytes */
        msg[h++] = 118;
        msg[h++] = (char)(len >> 8);
        msg[h++] = (char)(len & 0xff);
    } else {
        msg[h++] = 119;
        msg[h++] = (char)len;
    }
    memcpy(msg + h, node, len);
    size_t kept = 0;
    for (size_t i = 0; i < t->nnode_watchers; i++) {
        if (!by_num(t, t->node_watchers[i]))
            continue; /* gone: forgotten here */
        t->node_watchers[kept++] = t->node_watchers[i];
        if (queue_mail(t, t->node_watchers[i], (term_view){msg, h + len}) < 0)
            log_error("out of memory: a nodeup for process %u is lost", t->node_watchers[i]);
    }
    t->nnode_watchers = kept;
}

int process_connect(process_table *t, const char *node, size_t len)
{
    return t->router.connect ? t->router.connect(t->router.ctx, node, len) : -1;
}

int process_connected(process_table *t, const char *node, size_t len)
{
    return t->router.connected ? t->router.connected(t->router.ctx, node, len) != 0 : 0;
}

/* Remove the link to other; 1 if there was one. */
static int unlink_one(process *p, term_view other)
{
    ml_record *r = ml_find(p->table->ml, &p->links, p->num, ML_LINK, other);
    if (r)
        ml_remove(p->table->ml, &p->links, r);
    return r != NULL;
}

void process_unlink(process *p, term_view other) { (void)unlink_one(p, other); }

int process_unlink_remote(process *p, term_view other)
{
    process_table *t = p->table;
    char id[16];
    int i = 0;
    if (!unlink_one(p, other))
        return 0;
    ei_encode_ulonglong(id, &i, ++t->unlink_ids);
    return t->router.unlink(t->router.ctx, (term_view){id, (size_t)i}, process_pid(p), other);
}

/* {'EXIT', From, Reason} handed to a process that traps exits. */
static void deliver_exit_message(process *p, term_view from, term_view reason)
{
    size_t len = 2 + 6 + from.len + reason.len;
    char *m = malloc(len);
    if (!m) {
        process_exit(p, (term_view){killed_atom, sizeof killed_atom});
        return;
    }
    m[0] = 104; m[1] = 3;
    m[2] = 119; m[3] = 4; memcpy(m + 4, "EXIT", 4);
    memcpy(m + 8, from.ptr, from.len);
    memcpy(m + 8 + from.len, reason.ptr, reason.len);
    process_deliver(p, (term_view){m, len});
    free(m);
}

/* An exit signal that got past the link check. */
static void exit_signal(process *p, term_view from, term_view reason, int kill)
{
    if (p->system) {
        log_warning("ignoring an exit signal to %s <%s.%u.0>: it is one of the node's own processes",
                    p->name ? p->name : "the release probe", p->table->node, p->num);
        return;
    }
    if (kill)
        process_exit(p, (term_view){killed_atom, sizeof killed_atom});
    else if (p->trap_exit)
        deliver_exit_message(p, from, reason);
    else if (!is_atom_named(reason, "normal"))
        process_exit(p, reason);
}

void process_exit_signal(process *p, term_view from, term_view reason, int via_link)
{
    if (via_link && !unlink_one(p, from))
        return; /* an EXIT from a process we are not linked to is dropped */
    exit_signal(p, from, reason, !via_link && is_atom_named(reason, "kill"));
}

void process_want_node_down(process *p)
{
    p->wants_node_down = 1;
    interest(p->table, p);
    list_add(p->table->downers, &p->table->ndowners, p, PLACE(downer));
}

/* A stopping process's records of a node that went away go without a
 * word: its DOWNs and EXITs to that node would have nowhere to go (and
 * sent at its end, they would dial the node again), and what it watched
 * there need not tell it any more. */
static ml_list *list_of(process *p, ml_record *r)
{
    enum ml_kind k = ml_kind_of(r);
    return k == ML_MONITOR ? &p->monitors : k == ML_LINK ? &p->links : &p->watches;
}

static void forget_node_quietly(process_table *t, process *p, node_group *g, const char *node, size_t len)
{
    while (g && g->records.head)
        ml_remove(t->ml, list_of(p, g->records.head), g->records.head);
    for (ml_record *r = p->ungrouped.head, *next; r; r = next) { /* what could not be sorted */
        next = ml_group_next(r);
        if (on_node(pid_of(r), node, len))
            ml_remove(t->ml, list_of(p, r), r);
    }
}

/* One record of p concerning the node that went (process_forget_node): a
 * monitor goes, a watch gets its DOWN (queued), a link goes, its pid kept
 * in t->gone for the exit signal. -1 when out of memory: a link is then
 * left as it was (and t->gone too), and the rest go on. */
static int forget_one(process_table *t, process *p, ml_record *r)
{
    term_view noconnection = {noconnection_atom, sizeof noconnection_atom};
    t->forget_records++;
    switch (ml_kind_of(r)) {
    case ML_MONITOR:
        ml_remove(t->ml, &p->monitors, r);
        break;
    case ML_WATCH:
        queue_down(t, p, ml_part(r, 0), ml_part(r, 1), noconnection);
        break;
    case ML_LINK: {
        term_view other = ml_part(r, 0);
        uint32_t n32 = (uint32_t)other.len;
        size_t end = t->gone.end;
        if (buffer_append(&t->gone, &n32, sizeof n32) < 0 || buffer_append(&t->gone, other.ptr, other.len) < 0) {
            t->gone.end = end; /* no length without its pid */
            return -1;
        }
        ml_remove(t->ml, &p->links, r);
        break;
    }
    }
    return 0;
}

/* p's group g, left empty by a node's going: freed now, so that the
 * node's next goings (failed dials to it, say) take the fast way. A watch's
 * record stays till its DOWN is delivered: its group goes at a later going. */
static void drop_if_empty(process_table *t, process *p, node_group *g)
{
    if (!g || g->records.count)
        return;
    for (size_t i = 0; i < p->ngroups; i++)
        if (p->groups[i] == g) {
            p->groups[i] = p->groups[--p->ngroups];
            count_group(t, g->node, g->len, -1);
            free(g);
            return;
        }
}

void process_forget_node(process_table *t, const char *node, size_t len)
{
    term_view noconnection = {noconnection_atom, sizeof noconnection_atom};
    /* Behaviours run below (node_down, trapped EXITs): processes may stop,
     * and become or stop being of interest, meanwhile, so the walk is over
     * a copy. None is freed: that happens at a settle only, never under
     * this call. */
    if (t->ninterested > t->walk_cap) {
        process **w = realloc(t->walk, t->ninterested * sizeof *w);
        if (!w) {
            log_error("out of memory forgetting node %.*s", (int)len, node);
            return;
        }
        t->walk = w;
        t->walk_cap = t->ninterested;
    }
    /* Records into their groups first (those that cannot be sorted stay:
     * then every interested process is looked at, as below). */
    int leftover = 0;
    for (size_t i = t->nunsorted; i > 0; i--) {
        process *p = t->unsorted[i - 1];
        sort_records(p);
        if (p->ungrouped.head)
            leftover = 1;
        else
            sorted(t, p); /* the last takes its place: seen already */
    }
    size_t n;
    if (!leftover && t->node_groups && !bytes_map_get(t->node_groups, node, len)) {
        /* No process holds a record of node (a node that never answered,
         * say): only the node_down watchers hear of it. */
        n = t->ndowners;
        if (n)
            memcpy(t->walk, t->downers, n * sizeof *t->walk);
        t->forget_visits += n;
        for (size_t i = 0; i < n; i++) {
            process *p = t->walk[i];
            if (!p->exit_reason && p->behaviour->node_down)
                p->behaviour->node_down(p, node, len);
        }
        return;
    }
    if (!t->node_groups)
        count_all_groups(t); /* dropped for want of memory: counted again, for the goings to come */
    n = t->ninterested;
    if (n) /* (memcpy of NULL, even for 0 bytes, is undefined) */
        memcpy(t->walk, t->interested, n * sizeof *t->walk);
    t->forget_visits += n;
    for (size_t i = 0; i < n; i++) {
        process *p = t->walk[i];
        sort_records(p);
        node_group *g = find_group(p, node, len); /* its records of that node, and no other */
        if (p->exit_reason) {
            forget_node_quietly(t, p, g, node, len);
            drop_if_empty(t, p, g);
            continue;
        }
        /* Monitors by that node's processes go; watches of its processes
         * get their DOWN (queued: no behaviour runs here, so the group is
         * walked whole). The links to that node come out too, their pids
         * copied: the exit signals run behaviours (a trapped EXIT), which
         * may link and unlink as they please, and so may node_down, which
         * is told once its monitors and links of that node are gone (a
         * link it made again to that node would otherwise be taken out
         * with them, and its peer, reconnected, would keep it). */
        t->gone.start = t->gone.end = 0;
        int failed = 0;
        for (ml_record *r = g ? g->records.head : NULL, *next; r; r = next) {
            next = ml_group_next(r);
            failed |= forget_one(t, p, r) < 0;
        }
        for (ml_record *r = p->ungrouped.head, *next; r; r = next) { /* what could not be sorted */
            next = ml_group_next(r);
            if (on_node(pid_of(r), node, len))
                failed |= forget_one(t, p, r) < 0;
        }
        if (failed)
            log_error("out of memory forgetting node %.*s", (int)len, node);
        drop_if_empty(t, p, g);
        if (p->wants_node_down && p->behaviour->node_down)
            p->behaviour->node_down(p, node, len);
        for (size_t at = 0; at < buffer_len(&t->gone) && !p->exit_reason;) {
            uint32_t n32;
            memcpy(&n32, t->gone.data + at, sizeof n32);
            exit_signal(p, (term_view){t->gone.data + at + sizeof n32, n32}, noconnection, 0);
            at += sizeof n32 + n32;
        }
    }
    /* Those left with nothing a node's going concerns drop out. */
    for (size_t i = 0; i < t->ninterested;) {
        process *p = t->interested[i];
        if (!p->wants_node_down && !p->monitors.head && !p->links.head && !p->watches.head)
            disinterest(t, p); /* the last one takes its place */
        else
            i++;
    }
}

int process_release_of(process_table *t, term_view pid)
{
    return t->router.release ? t->router.release(t->router.ctx, pid) : 0;
}

int process_unlink_ack(process_table *t, term_view id, term_view from, term_view to)
{
    return t->router.unlink_ack(t->router.ctx, id, from, to);
}

int process_exit_remote(process_table *t, term_view from, term_view to, term_view reason)
{
    return t->router.exit(t->router.ctx, from, to, reason);
}

/* ---- batches ---- */

void process_want_flush(process *p)
{
    process_table *t = p->table;
    if (p->want_flush || p->exit_reason || !p->behaviour->flush)
        return;
    if (t->nflush == t->flush_cap) {
        size_t cap = t->flush_cap ? t->flush_cap * 2 : 16;
        uint32_t *a = realloc(t->flush, cap * sizeof *a), *b = realloc(t->flushing, cap * sizeof *b);
        if (a)
            t->flush = a;
        if (b)
            t->flushing = b;
        if (!a || !b)
            return;
        t->flush_cap = cap;
    }
    t->flush[t->nflush++] = p->num;
    p->want_flush = 1;
}

void process_table_flush(process_table *t)
{
    size_t n = t->nflush;
    uint32_t *now = t->flush;
    t->flush = t->flushing; /* asked for during these flushes: the next turn's */
    t->flushing = now;
    t->nflush = 0;
    for (size_t i = 0; i < n; i++) {
        /* through t->flushing, not `now`: a flush that asks again may grow
         * (and so move) both arrays */
        process *p = by_num(t, t->flushing[i]);
        if (!p)
            continue;
        p->want_flush = 0;
        p->behaviour->flush(p);
    }
}

void process_refuse(process *p, term_view raw, const char *why)
{
    if (p->behaviour->refused && !p->exit_reason)
        p->behaviour->refused(p, raw, why);
}

/* ---- timers ---- */

static void untrack_timer(process *p, ptimer *pt)
{
    ptimer *last = p->timers[--p->ntimers];
    p->timers[pt->slot] = last;
    last->slot = pt->slot;
    if (p->timers_cap > 16 && p->ntimers < p->timers_cap / 4) {
        ptimer **smaller = realloc(p->timers, p->timers_cap / 2 * sizeof *smaller);
        if (smaller) {
            p->timers = smaller;
            p->timers_cap /= 2;
        }
    }
}

uint64_t process_send_after(process *p, uint64_t due_us, term_view msg)
{
    if (p->ntimers == p->timers_cap) {
        size_t cap = p->timers_cap ? p->timers_cap * 2 : 4;
        ptimer **timers = realloc(p->timers, cap * sizeof *timers);
        if (!timers)
            return 0;
        p->timers = timers;
        p->timers_cap = cap;
    }
    ptimer *pt = malloc(sizeof *pt + msg.len);
    if (!pt)
        return 0;
    pt->owner = p->num;
    pt->len = msg.len;
    memcpy(pt->msg, msg.ptr, msg.len);
    pt->id = timer_heap_add(p->table->timers, due_us, pt);
    if (!pt->id) {
        free(pt);
        return 0;
    }
    pt->slot = p->ntimers;
    p->timers[p->ntimers++] = pt;
    return pt->id;
}

int process_cancel_timer(process *p, uint64_t id)
{
    ptimer *pt = timer_heap_payload(p->table->timers, id);
    if (!pt || pt->owner != p->num || pt->slot >= p->ntimers || p->timers[pt->slot] != pt)
        return 0;
    void *payload;
    timer_heap_cancel(p->table->timers, id, &payload);
    untrack_timer(p, pt);
    free(pt);
    return 1;
}

int process_table_next_timer(const process_table *t, uint64_t *due_us)
{
    return timer_heap_next(t->timers, due_us);
}

size_t process_table_run_timers(process_table *t, uint64_t now_us)
{
    size_t fired = 0, popped = 0;
    uint64_t id;
    void *payload;
    while (popped++ < PROCESS_TIMERS_PER_TURN && timer_heap_pop_due(t->timers, now_us, &id, &payload)) {
        ptimer *pt = payload;
        /* A process that is stopping is found no more; its timers are freed
         * with it, this one included. */
        process *p = by_num(t, pt->owner);
        if (!p)
            continue;
        untrack_timer(p, pt);
        process_deliver(p, (term_view){pt->msg, pt->len});
        free(pt);
        fired++;
    }
    return fired;
}

/* ---- worker jobs ---- */

void process_table_set_workers(process_table *t, struct workers *w, long grace_ms)
{
    t->workers = w;
    t->jobs_grace_ms = grace_ms;
}

static void job_run(void *arg)
{
    pjob *j = arg;
    j->run(j->job);
}

int process_submit(process *p, const void *group, process_job_run *run, process_job_done *done, void *job)
{
    process_table *t = p->table;
    pjob *j = malloc(sizeof *j);
    if (!t->workers || !j) {
        free(j);
        return -1;
    }
    *j = (pjob){run, done, job, p->num, p->serial, 0, NULL};
    /* p's own turn in its module's line: a module's servers take turns (workers.h). */
    if (p->jobs_out >= PROCESS_MAX_JOBS || workers_submit_fair(t->workers, group, &p->job_turn, job_run, j, t) < 0) {
        free(j);
        return -1;
    }
    p->jobs_out++;
    return 0;
}

static void job_finished(void *arg, void *tag, int ran, void *ctx)
{
    (void)ctx;
    pjob *j = arg;
    process_table *t = tag;
    process *p = ran && t ? by_num(t, j->owner) : NULL;
    if (p && p->serial != j->serial)
        p = NULL;
    if (p) {
        p->jobs_out--;
    } else if (t) {
        /* Its owner stopped and waits for its teardown: done comes after
         * the owner's terminate, as the header promises (late_jobs_done),
         * in the order the jobs ended. */
        for (process *d = t->dying; d; d = d->next_dying)
            if (d->num == j->owner && d->serial == j->serial) {
                j->ran = ran;
                j->next = d->late_jobs; /* newest first: late_jobs_done turns it round */
                d->late_jobs = j;
                return;
            }
    }
    j->done(p, j->job, ran);
    free(j);
}

size_t process_table_collect_jobs(process_table *t, size_t max)
{
    return t->workers ? workers_collect(t->workers, job_finished, NULL, max) : 0;
}

static void job_abandoned(void *arg, void *tag, int ran, void *ctx)
{
    (void)tag;
    (void)ctx;
    pjob *j = arg;
    j->done(NULL, j->job, ran);
    free(j);
}

/* Stop the pool: drop queued jobs, wait for running ones (for the grace at
 * most), finish them all. How many still run after the grace: a job stuck
 * in a call that never returns must not keep the node from stopping. */
static size_t stop_workers(process_table *t)
{
    size_t stuck = workers_stop(t->workers, job_abandoned, NULL, t->jobs_grace_ms);
    if (stuck)
        log_error("stopping: %zu job%s still running after %ld ms, left to the exit", stuck,
                  stuck == 1 ? "" : "s", t->jobs_grace_ms);
    t->workers = NULL;
    return stuck;
}

/* ---- monitors this node's processes set ---- */

int process_watch(process *p, term_view target, char *ref)
{
    process_table *t = p->table;
    static const char noproc[] = {119, 6, 'n', 'o', 'p', 'r', 'o', 'c'};
    const char *tnode;
    size_t tlen;
    if (target.len < 1 || ((unsigned char)target.ptr[0] != 103 && (unsigned char)target.ptr[0] != 88) ||
        process_term_node(target, &tnode, &tlen) < 0)
        return -1;
    /* NEWER_REFERENCE_EXT: this node, its creation, three words no other
     * reference of this node has (the first two are a bijection of n), the
     * third a keyed hash of n that no peer can compute. */
    uint64_t n = ++t->refs;
    size_t len = 3 + 2 + t->node_len + 4 + 12;
    ref[0] = (char)90;
    ref[1] = 0;
    ref[2] = 3;
    ref[3] = (char)119;
    ref[4] = (char)t->node_len;
    memcpy(ref + 5, t->node, t->node_len);
    char *w = ref + 5 + t->node_len;
    put_u32(w, t->creation);
    put_u32(w + 4, (uint32_t)n & 0x3ffff);            /* 18 bits, as the BEAM's own */
    put_u32(w + 8, (uint32_t)(n >> 18) ^ t->ref_salt);
    put_u32(w + 12, (uint32_t)siphash(t->ref_key, &n, sizeof n));
    term_view r = {ref, len};
    term_view parts[2] = {r, target};
    int added;
    ml_record *rec = ml_add(t->ml, &p->watches, p->num, ML_WATCH, 2, parts, &added);
    if (!rec)
        return -1;
    if (added)
        ml_group_join(&p->ungrouped, rec);
    unsorted(t, p);
    interest(t, p);
    if (tlen == t->node_len && memcmp(tnode, t->node, tlen) == 0) {
        process *local = process_lookup(t, target);
        if (!local || process_monitor(local, process_pid(p), r, target) < 0)
            queue_down(t, p, r, target, (term_view){noproc, sizeof noproc});
    } else if (t->router.monitor(t->router.ctx, process_pid(p), target, r) < 0) {
        queue_down(t, p, r, target, (term_view){noconnection_atom, sizeof noconnection_atom});
    }
    return (int)len;
}

int process_unwatch(process *p, term_view ref)
{
    process_table *t = p->table;
    ml_record *r = ml_find(t->ml, &p->watches, p->num, ML_WATCH, ref);
    if (!r)
        return 0;
    if (ml_fired(r)) { /* its DOWN is on its way: it will not be delivered */
        ml_remove(t->ml, &p->watches, r);
        return 0;
    }
    term_view target = ml_part(r, 1);
    process *local = process_lookup(t, target);
    if (local)
        process_demonitor(local, process_pid(p), ref);
    else if (!on_node(target, t->node, t->node_len))
        t->router.demonitor(t->router.ctx, process_pid(p), target, ref);
    ml_remove(t->ml, &p->watches, r);
    return 1;
}

void process_watch_fired(process *p, term_view ref, term_view target, term_view reason)
{
    /* Only the node of the process p monitors can say it went, and only of
     * that process: a peer cannot fake a DOWN for a monitor of another's. */
    ml_record *r = ml_find(p->table->ml, &p->watches, p->num, ML_WATCH, ref);
    if (!r)
        return;
    term_view watched = ml_part(r, 1);
    if (watched.len != target.len || memcmp(watched.ptr, target.ptr, target.len) != 0) {
        log_warning("a MONITOR_P_EXIT for a monitor of another process ignored");
        return;
    }
    queue_down(p->table, p, ref, watched, reason);
}

/* ---- figures ---- */

void process_table_set_stats(process_table *t, process_stats_fn *fn, void *ctx)
{
    t->stats = fn;
    t->stats_ctx = ctx;
}

size_t process_table_timer_count(const process_table *t) { return timer_heap_size(t->timers); }

const process_behaviour *process_behaviour_of(const process *p) { return p->behaviour; }

size_t process_table_count_behaviour(const process_table *t, const process_behaviour *b)
{
    size_t n = 0;
    for (size_t i = 0; i < t->nprocs; i++)
        n += t->procs[i]->behaviour == b;
    return n;
}

static int stat_pair(ei_x_buff *x, const char *key, unsigned long long value)
{
    return ei_x_encode_atom(x, key) < 0 || ei_x_encode_ulonglong(x, value) < 0 ? -1 : 0;
}

int process_table_encode_stats(process_table *t, ei_x_buff *out)
{
    struct workers *w = t->workers;
    size_t timers = 0; /* of the servers: the node's own (a pg scope's discovery) are its business */
    for (size_t i = 0; i < t->nprocs; i++)
        timers += t->procs[i]->system ? 0 : t->procs[i]->ntimers;
    if (stat_pair(out, "processes", t->nprocs) < 0 ||
        stat_pair(out, "timers", timers) < 0 ||
        stat_pair(out, "jobs_queued", w ? workers_queued(w) : 0) < 0 ||
        stat_pair(out, "jobs_running", w ? workers_running(w) : 0) < 0 ||
        stat_pair(out, "workers", w ? workers_threads(w) : 0) < 0)
        return -1;
    int more = t->stats ? t->stats(t->stats_ctx, out) : 0;
    return more < 0 ? -1 : 5 + more;
}

/* pg_scope.c: a pg scope for this node's servers; see pg_scope.h. */
#define GEN_CNODE_STATIC /* linked into the node: no loadable entry point */
#include "pg_scope.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bytes_map.h"
#include "log.h"

#define REDISCOVER_MS 3000 /* a connected node whose scope has not answered is asked again */
#define REDISCOVER_TRIES 20 /* then not until it connects again */
#define MAX_GROUP_DEPTH 100
#define MAX_PEERS 4096 /* scopes a scope keeps: more discovers are ignored (logged) */
#define MAX_REF 300 /* a reference's canonical bytes: a node name of 255, five words */
#define MAX_PEERS_PER_NODE 4 /* a node runs one scope of a name: a restarted one may overlap the old */
/* Joins a scope keeps: one pid's, and all (memory). pg has no such bound;
 * a join_local past them is refused. */
#define MAX_JOINS_PER_MEMBER 65536
#define MAX_JOINS (1u << 20)
/* A group's name (canonical bytes), and all groups' names together: a join
 * past them is refused too (names are kept twice, in the group and its
 * index, and go out in every sync). pg has no such bound either. */
#define MAX_GROUP_NAME (64u << 10)
#define MAX_GROUP_BYTES (32u << 20)
#define LEAVE_MSG_BYTES (1u << 20) /* of group names in one leave message */

/* A term's canonical bytes (term.h), owned. */
typedef struct blob {
    char *ptr;
    size_t len;
} blob;

/* Membership, found by hash both ways, so that no operation walks every
 * join (a peer's discover costs a sync of them all, and a node may hold a
 * group per server): a group lists its members, a member its groups, one
 * entry per join (a pid may join a group twice, as in pg), in no order (pg
 * promises none). Each entry knows where its twin in the other list is, so
 * a join is taken out of both in constant time (the last entry takes its
 * place): a member that stops leaves its k groups in O(k).
 * A member is a local pid with joins, monitored: ref as made (to
 * demonitor), cref its canonical bytes (to match a 'DOWN'). */
typedef struct pg_group pg_group;
typedef struct member member;
struct member {
    blob pid, ref, cref;
    struct { pg_group *g; size_t at; } *groups; /* at: the twin's index in g->pids */
    size_t ngroups, groups_cap;
    size_t at; /* its index in the scope's members */
    uint64_t mark; size_t count, taken; /* one leave's tally (scratch: valid while mark is its epoch) */
};
struct pg_group {
    blob name; /* canonical */
    struct { member *m; size_t at; } *pids; /* at: the twin's index in m->groups */
    size_t npids, pids_cap;
    size_t at; /* its index in the scope's groups */
    uint64_t mark; size_t count; /* one member_down's tally, the same way */
};
typedef struct peer {
    blob pid, ref, cref; /* pid canonical; ref and cref as a member's */
    int asked; /* it sent a discover: it knows this scope, and got its sync */
} peer;                                                     /* a scope that discovered this one, monitored */
typedef struct known_node { char *name; int tries; } known_node; /* connected, for discovery */

typedef struct pg_scope {
    gen_server *self;
    char name[GCN_ATOM_MAX];
    bytes_map *group_index;  /* canonical group -> its pg_group */
    bytes_map *member_index; /* canonical pid -> member */
    pg_group **groups;       /* in no order: a group gone is replaced by the last */
    size_t ngroups, groups_cap;
    member **members;        /* the same */
    size_t nmembers, members_cap;
    peer *peers;
    size_t npeers, peers_cap;
    known_node *nodes;
    size_t nnodes, nodes_cap;
    gcn_timer rediscover;
    size_t njoins;     /* every member's, for MAX_JOINS */
    size_t group_bytes; /* every group's name, for MAX_GROUP_BYTES */
    uint64_t epoch;    /* of the last tally (member and group marks) */
    unsigned warned_peers; /* discovers ignored past MAX_PEERS or MAX_PEERS_PER_NODE */
    unsigned warned_nodeup; /* {nodeup, Node} ignored: Node not connected (a peer's forgery) */
    unsigned warned_foreign; /* a discover or sync naming another node's scope than its sender's */
    unsigned warned_forged;  /* a nodeup or pg_rediscover from another node */
    unsigned warned_down;    /* a 'DOWN' that matches no monitor of the scope's */
    ei_x_buff canon; /* scratch for canonical bytes */
    gcn_buf *msg;    /* scratch for messages */
    gcn_buf *ref;    /* scratch for monitor references */
} pg_scope;

/* ---- small owned things ---- */

static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, c * size);
    if (!p)
        return -1;
    *arr = p;
    *cap = c;
    return 0;
}

static int blob_set(blob *b, const char *p, size_t len)
{
    b->ptr = malloc(len ? len : 1);
    if (!b->ptr)
        return -1;
    memcpy(b->ptr, p, len);
    b->len = len;
    return 0;
}

static int blob_is(blob b, const char *p, size_t len) { return b.len == len && memcmp(b.ptr, p, len) == 0; }
static term_view view(blob b) { return (term_view){b.ptr, b.len}; }

/* The canonical bytes of t in s->canon (so that one group or pid compares
 * equal however a peer encoded its atoms): 0, or -1. */
static int canonical(pg_scope *s, term_view t)
{
    size_t i = 0;
    s->canon.index = 0;
    return term_canonical(t.ptr, t.len, &i, MAX_GROUP_DEPTH, &s->canon) < 0 || i != t.len ? -1 : 0;
}

/* b = t's canonical bytes (a monitor's reference, compared with a 'DOWN's
 * however that peer encoded it): 0, or -1. Uses s->canon. */
static int blob_canonical(pg_scope *s, blob *b, term_view t)
{
    return canonical(s, t) < 0 ? -1 : blob_set(b, s->canon.buff, (size_t)s->canon.index);
}

/* Is pid (or reference) of node (len bytes)? */
static int on_node(term_view pid, const char *node, size_t len)
{
    const char *its;
    size_t its_len;
    return node && process_term_node(pid, &its, &its_len) == 0 && its_len == len && memcmp(its, node, len) == 0;
}

static int is_local_pid(pg_scope *s, term_view t)
{
    const char *me = gcn_node(s->self);
    return gcn_type(t) == GCN_PID && on_node(t, me, strlen(me));
}

/* ---- talking to the other scopes ---- */

static process_table *table_of(pg_scope *s) { return process_table_of(gen_server_process(s->self)); }

/* Send what s->msg holds to every known peer scope, as pg's broadcast:
 * [noconnect], so that a peer whose node has just gone (its 'DOWN' not
 * handled yet) does not have that node dialed again. */
static void broadcast(pg_scope *s)
{
    for (size_t i = 0; i < s->npeers; i++) {
        const char *node;
        size_t len;
        term_view to = view(s->peers[i].pid);
        if (process_term_node(to, &node, &len) == 0 && process_connected(table_of(s), node, len))
            gcn_send(s->self, to, gcn_buf_term(s->msg));
    }
}

static void send_discover(pg_scope *s, gcn_term to)
{
    gcn_buf_reset(s->msg);
    if (gcn_build(s->msg, "{discover, ~t}", gcn_self(s->self)) == 0)
        gcn_send(s->self, to, gcn_buf_term(s->msg));
}

static void discover_node(pg_scope *s, const char *node)
{
    gcn_buf *to = gcn_buf_new();
    if (to && gcn_build(to, "{~a, ~a}", s->name, node) == 0)
        send_discover(s, gcn_buf_term(to));
    gcn_buf_free(to);
}

/* The members of group g (canonical), a pid as often as it joined: [Pid]. */
static void put_members(const pg_scope *s, gcn_buf *b, term_view g)
{
    const pg_group *gr = bytes_map_get(s->group_index, g.ptr, g.len);
    size_t n = gr ? gr->npids : 0;
    gcn_put_list(b, n);
    for (size_t k = 0; k < n; k++)
        gcn_put_term(b, view(gr->pids[k].m->pid));
    if (n)
        gcn_put_nil(b);
}

/* Every group with a member: [{Group, [Pid]}] (as_map: #{Group => [Pid]};
 * groups_only: [Group]). */
enum groups_shape { AS_PAIRS, AS_MAP, GROUPS_ONLY };
static void put_groups(const pg_scope *s, gcn_buf *b, enum groups_shape shape)
{
    size_t n = s->ngroups;
    if (shape == AS_MAP)
        gcn_put_map(b, n);
    else
        gcn_put_list(b, n);
    for (size_t i = 0; i < n; i++) {
        const pg_group *g = s->groups[i];
        if (shape == AS_PAIRS)
            gcn_put_tuple(b, 2);
        gcn_put_term(b, view(g->name));
        if (shape != GROUPS_ONLY) {
            gcn_put_list(b, g->npids); /* never empty: a group goes with its last member */
            for (size_t k = 0; k < g->npids; k++)
                gcn_put_term(b, view(g->pids[k].m->pid));
            gcn_put_nil(b);
        }
    }
    if (n && shape != AS_MAP)
        gcn_put_nil(b);
}

/* {'$gen_cast', {sync, Self, [{Group, [Pid]}]}}: every group with a member,
 * each with its members, as pg's all_local_pids. */
static void send_sync(pg_scope *s, gcn_term to)
{
    gcn_buf *b = s->msg;
    gcn_buf_reset(b);
    gcn_put_tuple(b, 2);
    gcn_put_atom(b, "$gen_cast");
    gcn_put_tuple(b, 3);
    gcn_put_atom(b, "sync");
    gcn_put_term(b, gcn_self(s->self));
    put_groups(s, b, AS_PAIRS);
    gcn_send(s->self, to, gcn_buf_term(b));
}

static peer *find_peer(pg_scope *s, term_view pid)
{
    for (size_t i = 0; i < s->npeers; i++)
        if (blob_is(s->peers[i].pid, pid.ptr, pid.len))
            return &s->peers[i];
    return NULL;
}

/* Did pid's own node send the message at hand? pg sends discover and sync
 * with its own pid (self()), from its node over its own connection; a peer
 * naming another node's pids in them would have this scope watch, and take
 * for that node's scope, whatever it likes. Not from this node either: no
 * scope of ours sends them, and a peer can have a local server send what it
 * shapes (a stored value as the reply to a call whose From it made up). */
static int from_its_node(pg_scope *s, term_view pid)
{
    size_t len;
    const char *from = process_sender_node(gen_server_process(s->self), &len);
    if (on_node(pid, from, len))
        return 1;
    if (!s->warned_foreign++)
        log_warning("pg scope %s: ignoring a discover or sync from %.*s naming a scope of another node",
                    s->name, from ? (int)len : 10, from ? from : "this node");
    return 0;
}

/* Peers on pid's node: one node cannot crowd out the others' scopes. */
static size_t peers_on_node_of(pg_scope *s, term_view pid)
{
    const char *node;
    size_t len, n = 0;
    if (process_term_node(pid, &node, &len) < 0)
        return 0;
    for (size_t i = 0; i < s->npeers; i++)
        n += on_node(view(s->peers[i].pid), node, len);
    return n;
}

/* The peer scope pid: found, or monitored and kept from now on (*added);
 * NULL when it cannot be kept. */
static peer *add_peer(pg_scope *s, term_view pid, int *added)
{
    *added = 0;
    if (canonical(s, pid) < 0)
        return NULL;
    peer *p = find_peer(s, (term_view){s->canon.buff, (size_t)s->canon.index});
    if (p)
        return p;
    if (s->npeers >= MAX_PEERS || peers_on_node_of(s, pid) >= MAX_PEERS_PER_NODE) {
        if (!s->warned_peers++)
            log_warning("pg scope %s: more than %d peer scopes, or %d on one node; discovers from "
                        "more are ignored", s->name, MAX_PEERS, MAX_PEERS_PER_NODE);
        return NULL;
    }
    gcn_buf_reset(s->ref);
    if (grow((void **)&s->peers, &s->peers_cap, s->npeers, sizeof *s->peers) < 0 ||
        gcn_monitor(s->self, pid, s->ref) < 0)
        return NULL;
    p = &s->peers[s->npeers];
    gcn_term r = gcn_buf_term(s->ref);
    p->ref.ptr = NULL;
    if (blob_set(&p->pid, s->canon.buff, (size_t)s->canon.index) < 0 || blob_set(&p->ref, r.ptr, r.len) < 0 ||
        blob_canonical(s, &p->cref, r) < 0) {
        free(p->pid.ptr);
        free(p->ref.ptr);
        gcn_demonitor(s->self, r); /* not kept: not watched */
        return NULL;
    }
    p->asked = 0;
    s->npeers++;
    *added = 1;
    log_debug("pg scope %s: discovered by a scope on another node", s->name);
    return p;
}

/* pg's handle_discover: our groups back, and a discover of our own to a
 * peer new to us. Only to a peer kept: one refused (too many) would have our
 * groups and never hear of a change to them. */
static void discovered(pg_scope *s, gcn_term peer_pid)
{
    int added;
    peer *p = add_peer(s, peer_pid, &added);
    if (!p)
        return;
    p->asked = 1;
    send_sync(s, peer_pid);
    if (added)
        send_discover(s, peer_pid);
}

/* ---- local members ---- */

static member *find_member(pg_scope *s, term_view pid)
{
    return bytes_map_get(s->member_index, pid.ptr, pid.len);
}

/* Entry k of g's list goes; the last takes its place (and its twin in its
 * member's list is told). */
static void group_take(pg_group *g, size_t k)
{
    size_t last = --g->npids;
    if (k != last) {
        g->pids[k] = g->pids[last];
        g->pids[k].m->groups[g->pids[k].at].at = k;
    }
}

/* Entry i of m's list goes, the same way. */
static void member_take(member *m, size_t i)
{
    size_t last = --m->ngroups;
    if (i != last) {
        m->groups[i] = m->groups[last];
        m->groups[i].g->pids[m->groups[i].at].at = i;
    }
}

static void free_group(pg_group *g)
{
    free(g->name.ptr);
    free(g->pids);
    free(g);
}

/* A group with no member left goes. */
static void forget_group_if_empty(pg_scope *s, pg_group *g)
{
    if (g->npids)
        return;
    bytes_map_remove(s->group_index, g->name.ptr, g->name.len);
    s->group_bytes -= g->name.len;
    s->groups[g->at] = s->groups[--s->ngroups];
    s->groups[g->at]->at = g->at;
    free_group(g);
}

static void free_member(member *m)
{
    free(m->pid.ptr);
    free(m->ref.ptr);
    free(m->cref.ptr);
    free(m->groups);
    free(m);
}

/* A member with no join left is no longer watched. */
static void forget_member_if_done(pg_scope *s, member *m, int demonitor)
{
    if (m->ngroups)
        return;
    if (demonitor)
        gcn_demonitor(s->self, view(m->ref));
    bytes_map_remove(s->member_index, m->pid.ptr, m->pid.len);
    s->members[m->at] = s->members[--s->nmembers];
    s->members[m->at]->at = m->at;
    free_member(m);
}

/* The member pid (canonical; it may be s->canon's): found, or monitored and
 * kept from now on. NULL when out of memory. */
static member *member_of(pg_scope *s, term_view pid)
{
    member *m = find_member(s, pid);
    if (m)
        return m;
    if (grow((void **)&s->members, &s->members_cap, s->nmembers, sizeof *s->members) < 0 ||
        !(m = calloc(1, sizeof *m)))
        return NULL;
    if (blob_set(&m->pid, pid.ptr, pid.len) < 0) { /* before s->canon is reused below */
        free(m);
        return NULL;
    }
    gcn_buf_reset(s->ref);
    if (gcn_monitor(s->self, view(m->pid), s->ref) < 0) {
        free_member(m);
        return NULL;
    }
    gcn_term r = gcn_buf_term(s->ref);
    if (blob_set(&m->ref, r.ptr, r.len) < 0 || blob_canonical(s, &m->cref, r) < 0 ||
        bytes_map_put(s->member_index, m->pid.ptr, m->pid.len, m) < 0) {
        gcn_demonitor(s->self, r);
        free_member(m);
        return NULL;
    }
    m->at = s->nmembers;
    s->members[s->nmembers++] = m;
    return m;
}

/* The group g (canonical): found, or made (with no member yet). NULL when
 * out of memory. */
static pg_group *group_of(pg_scope *s, term_view g)
{
    pg_group *gr = bytes_map_get(s->group_index, g.ptr, g.len);
    if (gr)
        return gr;
    if (grow((void **)&s->groups, &s->groups_cap, s->ngroups, sizeof *s->groups) < 0 ||
        !(gr = calloc(1, sizeof *gr)))
        return NULL;
    if (blob_set(&gr->name, g.ptr, g.len) < 0 || bytes_map_put(s->group_index, g.ptr, g.len, gr) < 0) {
        free_group(gr);
        return NULL;
    }
    s->group_bytes += g.len;
    gr->at = s->ngroups;
    s->groups[s->ngroups++] = gr;
    return gr;
}

/* pid (canonical; it may be s->canon's) joins g, monitored from its first
 * join. g is left as it is when this fails (the caller forgets it if empty). */
static int add_join(pg_scope *s, pg_group *g, term_view pid)
{
    member *m = member_of(s, pid);
    if (!m)
        return -1;
    if (grow((void **)&g->pids, &g->pids_cap, g->npids, sizeof *g->pids) < 0 ||
        grow((void **)&m->groups, &m->groups_cap, m->ngroups, sizeof *m->groups) < 0) {
        forget_member_if_done(s, m, 1); /* a member just added, with no join: not kept */
        return -1;
    }
    g->pids[g->npids].m = m;
    g->pids[g->npids].at = m->ngroups;
    m->groups[m->ngroups].g = g;
    m->groups[m->ngroups].at = g->npids;
    g->npids++;
    m->ngroups++;
    s->njoins++;
    return 0;
}

/* Up to most joins of m to g undone, the latest first, in one walk of the
 * shorter of the two lists from its end (an entry taken out is replaced by
 * the last, which the walk has seen): how many. m and g stay, even with no
 * join left (the caller forgets them). */
static size_t drop_joins(pg_scope *s, member *m, pg_group *g, size_t most)
{
    size_t dropped = 0;
    if (m->ngroups <= g->npids) {
        for (size_t i = m->ngroups; i > 0 && dropped < most; i--)
            if (m->groups[i - 1].g == g) {
                group_take(g, m->groups[i - 1].at);
                member_take(m, i - 1);
                dropped++;
            }
    } else {
        for (size_t k = g->npids; k > 0 && dropped < most; k--)
            if (g->pids[k - 1].m == m) {
                member_take(m, g->pids[k - 1].at);
                group_take(g, k - 1);
                dropped++;
            }
    }
    s->njoins -= dropped;
    return dropped;
}

/* PidOrPids, one pid after another (a list's elements, or the pid). */
typedef struct pid_iter {
    gcn_term single;
    gcn_iter it;
    int list, done;
} pid_iter;

/* Start on pids: 0, or -1 when it is neither a pid nor a list. */
static int pids_begin(pid_iter *pi, gcn_term pids)
{
    memset(pi, 0, sizeof *pi);
    pi->single = pids;
    pi->list = gcn_type(pids) != GCN_PID;
    return pi->list && gcn_iter_list(pids, &pi->it) < 0 ? -1 : 0;
}

static int pids_next(pid_iter *pi, gcn_term *out)
{
    if (pi->list)
        return gcn_next(&pi->it, out);
    if (pi->done)
        return 0;
    pi->done = 1;
    *out = pi->single;
    return 1;
}

/* Are pids a pid of this node or a list of them? 0, or -1 with *bad. */
static int check_pids(pg_scope *s, gcn_term pids, gcn_term *bad)
{
    pid_iter pi;
    gcn_term p;
    if (pids_begin(&pi, pids) < 0) {
        *bad = pids;
        return -1;
    }
    while (pids_next(&pi, &p))
        if (!is_local_pid(s, p) || canonical(s, p) < 0) {
            *bad = p;
            return -1;
        }
    return 0;
}

/* Does the canonical term at buf[*i] hold the float -0.0? An OTP 25 or 26
 * peer's pg takes it for 0.0 (0.0 =:= -0.0 there), so groups 0.0 and -0.0
 * would be two here and one there, and a leave of the one it dropped
 * crashes its scope (maps:get in leave_remote). A fun's environment is not
 * looked into. Depth: MAX_GROUP_DEPTH at most (canonical checked it). */
static int has_negative_zero(const char *buf, int *i)
{
    int type, size, n;
    double d;
    if (ei_get_type(buf, i, &type, &size) < 0)
        return 0;
    switch (type) {
    case ERL_FLOAT_EXT:
    case NEW_FLOAT_EXT:
        return ei_decode_double(buf, i, &d) == 0 && d == 0.0 && signbit(d);
    case ERL_SMALL_TUPLE_EXT:
    case ERL_LARGE_TUPLE_EXT:
        if (ei_decode_tuple_header(buf, i, &n) < 0)
            return 0;
        break;
    case ERL_MAP_EXT:
        if (ei_decode_map_header(buf, i, &n) < 0)
            return 0;
        n *= 2;
        break;
    case ERL_LIST_EXT:
        if (ei_decode_list_header(buf, i, &n) < 0)
            return 0;
        n++; /* the tail */
        break;
    default:
        return ei_skip_term(buf, i) < 0; /* not one this ei knows: refused, as if it held one */
    }
    while (n-- > 0)
        if (has_negative_zero(buf, i))
            return 1;
    return 0;
}

/* join_local / pg_scope_join: 0; 1 for a pid not of this node (*bad); 2 for
 * a group it does not take (*bad: deeper than MAX_GROUP_DEPTH, or holding
 * -0.0); 3 past MAX_JOINS_PER_MEMBER or MAX_JOINS; -1 when out of memory
 * (nothing joined in those last two cases). A pid of this node
 * that is gone already is passed over: pg would have it join, then leave
 * at its noproc DOWN; here peers hear neither. */
static int join(pg_scope *s, gcn_term group, gcn_term pids, gcn_term *bad)
{
    int at = 0;
    if (canonical(s, group) < 0 || has_negative_zero(s->canon.buff, &at)) {
        *bad = group;
        return 2;
    }
    if ((size_t)s->canon.index > MAX_GROUP_NAME) {
        *bad = group;
        return 2;
    }
    blob g;
    if (blob_set(&g, s->canon.buff, (size_t)s->canon.index) < 0)
        return -1;
    if (check_pids(s, pids, bad) != 0) {
        free(g.ptr);
        return 1;
    }
    /* The group looked up (or made) once: its name may be big, and the
     * pids many. */
    pg_group *gr = bytes_map_get(s->group_index, g.ptr, g.len);
    if (!gr && s->group_bytes + g.len > MAX_GROUP_BYTES) {
        free(g.ptr);
        return 3;
    }
    if (!gr && !(gr = group_of(s, view(g)))) {
        free(g.ptr);
        return -1;
    }
    pid_iter pi;
    gcn_term p;
    size_t added = 0;
    int rc = 0;
    pids_begin(&pi, pids);
    while (pids_next(&pi, &p)) {
        if (!process_lookup(table_of(s), p))
            continue;
        if (canonical(s, p) < 0) {
            rc = -1;
            break;
        }
        term_view cp = {s->canon.buff, (size_t)s->canon.index};
        member *m = find_member(s, cp);
        if ((m && m->ngroups >= MAX_JOINS_PER_MEMBER) || s->njoins >= MAX_JOINS) {
            rc = 3;
            break;
        }
        if (add_join(s, gr, cp) < 0) {
            rc = -1;
            break;
        }
        added++;
    }
    size_t joined = added;
    pids_begin(&pi, pids);
    gcn_buf *b = s->msg;
    gcn_buf_reset(b);
    if (rc == 0 && added) {
        gcn_put_tuple(b, 4);
        gcn_put_atom(b, "join");
        gcn_put_term(b, gcn_self(s->self));
        gcn_put_term(b, view(g));
        gcn_put_list(b, added);
    }
    while (joined && pids_next(&pi, &p)) {
        if (!process_lookup(table_of(s), p))
            continue;
        joined--;
        if (rc == 0) {
            gcn_put_term(b, p);
        } else if (canonical(s, p) == 0) { /* refused or out of memory: the joins made are undone */
            member *m = find_member(s, (term_view){s->canon.buff, (size_t)s->canon.index});
            if (m && drop_joins(s, m, gr, 1))
                forget_member_if_done(s, m, 1);
        }
    }
    forget_group_if_empty(s, gr); /* made for nothing, or undone */
    if (rc == 0 && added && gcn_put_nil(b) == 0)
        broadcast(s);
    free(g.ptr);
    return rc;
}

/* leave_local: 0 when some pid left, 1 when none was joined, -1 on a bad
 * argument, -2 out of memory. The group is looked up once, each member's
 * joins to leave are counted first and taken out in one walk of the shorter
 * of its list and the group's, or in one walk of the group's list for them
 * all when that is shorter than their walks together (a list may name a
 * pid any number of times, and members of no join to the group: a leave
 * costs the group's joins at most), and the peers hear only what left,
 * each pid as often as it left (pg's leave_remote takes Pids -- Left). */
static int leave(pg_scope *s, gcn_term group, gcn_term pids)
{
    gcn_term bad;
    if (canonical(s, group) < 0)
        return -1;
    pg_group *gr = bytes_map_get(s->group_index, s->canon.buff, (size_t)s->canon.index);
    if (check_pids(s, pids, &bad) != 0)
        return -1;
    if (!gr)
        return 1;
    uint64_t epoch = ++s->epoch;
    member **touched = NULL;
    size_t ntouched = 0, cap = 0, left = 0;
    pid_iter pi;
    gcn_term p;
    int rc = 1;
    pids_begin(&pi, pids);
    while (pids_next(&pi, &p)) {
        if (canonical(s, p) < 0)
            continue;
        member *m = find_member(s, (term_view){s->canon.buff, (size_t)s->canon.index});
        if (!m)
            continue;
        if (m->mark != epoch) {
            if (grow((void **)&touched, &cap, ntouched, sizeof *touched) < 0) {
                free(touched);
                return -2; /* nothing taken out yet */
            }
            touched[ntouched++] = m;
            m->mark = epoch;
            m->count = m->taken = 0;
        }
        m->count++;
    }
    size_t walks = 0;
    for (size_t i = 0; i < ntouched && walks <= gr->npids; i++)
        walks += touched[i]->ngroups < gr->npids ? touched[i]->ngroups : gr->npids;
    if (walks > gr->npids) { /* the group's list once, from its end (see drop_joins) */
        for (size_t k = gr->npids; k > 0; k--) {
            member *m = gr->pids[k - 1].m;
            if (m->mark == epoch && m->taken < m->count) {
                member_take(m, gr->pids[k - 1].at);
                group_take(gr, k - 1);
                m->taken++;
                s->njoins--;
            }
        }
        for (size_t i = 0; i < ntouched; i++)
            left += touched[i]->count = touched[i]->taken;
    } else {
        for (size_t i = 0; i < ntouched; i++)
            left += touched[i]->count = drop_joins(s, touched[i], gr, touched[i]->count);
    }
    if (left) {
        rc = 0;
        gcn_buf *b = s->msg;
        gcn_buf_reset(b);
        if (s->npeers) { /* {leave, Self, [Pid, ...], [Group]} */
            gcn_put_tuple(b, 4);
            gcn_put_atom(b, "leave");
            gcn_put_term(b, gcn_self(s->self));
            gcn_put_list(b, left);
            for (size_t i = 0; i < ntouched; i++)
                for (size_t k = 0; k < touched[i]->count; k++)
                    gcn_put_term(b, view(touched[i]->pid));
            gcn_put_nil(b);
            gcn_put_list(b, 1);
            gcn_put_term(b, view(gr->name));
            if (gcn_put_nil(b) == 0)
                broadcast(s);
        }
    }
    forget_group_if_empty(s, gr);
    for (size_t i = 0; i < ntouched; i++)
        forget_member_if_done(s, touched[i], 1);
    free(touched);
    return rc;
}

/* A member stopped: it leaves every group it joined, and the peers hear
 * it: {leave, Self, Pid, Groups} for the groups it joined once, in messages
 * of LEAVE_MSG_BYTES of names at most, and {leave, Self, [Pid x k], [G]}
 * for a group it joined k > 1 times (pg's leave_remote takes Pids -- Left
 * per group): each name goes out once, however often it was joined. m goes. */
static void member_down(pg_scope *s, member *m)
{
    uint64_t epoch = ++s->epoch;
    pg_group **distinct = NULL;
    size_t ndistinct = 0, cap = 0;
    int tally = s->npeers > 0; /* no message to build for no peer */
    for (size_t i = 0; tally && i < m->ngroups; i++) {
        pg_group *g = m->groups[i].g;
        if (g->mark != epoch) {
            if (grow((void **)&distinct, &cap, ndistinct, sizeof *distinct) < 0) {
                log_error("pg scope %s: out of memory telling peers a member left: they keep it", s->name);
                tally = 0;
                break;
            }
            distinct[ndistinct++] = g;
            g->mark = epoch;
            g->count = 0;
        }
        g->count++;
    }
    gcn_buf *b = s->msg;
    for (size_t i = 0; tally && i < ndistinct; i++) {
        if (distinct[i]->count == 1)
            continue;
        gcn_buf_reset(b);
        gcn_put_tuple(b, 4);
        gcn_put_atom(b, "leave");
        gcn_put_term(b, gcn_self(s->self));
        gcn_put_list(b, distinct[i]->count);
        for (size_t k = 0; k < distinct[i]->count; k++)
            gcn_put_term(b, view(m->pid));
        gcn_put_nil(b);
        gcn_put_list(b, 1);
        gcn_put_term(b, view(distinct[i]->name));
        if (gcn_put_nil(b) == 0)
            broadcast(s);
    }
    for (size_t from = 0; tally && from < ndistinct;) {
        size_t to = from, n = 0, bytes = 0; /* the groups joined once, from here */
        while (to < ndistinct && (n == 0 || bytes + distinct[to]->name.len <= LEAVE_MSG_BYTES)) {
            if (distinct[to]->count == 1)
                bytes += distinct[to]->name.len, n++;
            to++;
        }
        if (n) {
            gcn_buf_reset(b);
            gcn_put_tuple(b, 4);
            gcn_put_atom(b, "leave");
            gcn_put_term(b, gcn_self(s->self));
            gcn_put_term(b, view(m->pid));
            gcn_put_list(b, n);
            for (size_t i = from; i < to; i++)
                if (distinct[i]->count == 1)
                    gcn_put_term(b, view(distinct[i]->name));
            if (gcn_put_nil(b) == 0)
                broadcast(s);
        }
        from = to;
    }
    free(distinct);
    while (m->ngroups) { /* the last join first: nothing moves in m's list */
        size_t i = m->ngroups - 1;
        pg_group *g = m->groups[i].g;
        group_take(g, m->groups[i].at);
        m->ngroups--;
        s->njoins--;
        forget_group_if_empty(s, g);
    }
    forget_member_if_done(s, m, 0); /* the monitor fired: nothing to take off */
}

/* ---- the server ---- */

static int pg_init(gcn_server *self, gcn_term arg, gcn_init *out, const char **error)
{
    pg_scope *s = calloc(1, sizeof *s);
    *error = "out_of_memory";
    if (!s)
        return -1;
    s->self = self;
    s->msg = gcn_buf_new();
    s->ref = gcn_buf_new();
    s->group_index = bytes_map_create();
    s->member_index = bytes_map_create();
    if (!s->msg || !s->ref || !s->group_index || !s->member_index || ei_x_new(&s->canon) < 0 ||
        gcn_get_atom(arg, s->name) < 0 || process_monitor_nodes(gen_server_process(self)) < 0) {
        *error = gcn_get_atom(arg, s->name) < 0 ? "badarg" : "out_of_memory";
        gcn_buf_free(s->msg);
        gcn_buf_free(s->ref);
        bytes_map_destroy(s->group_index);
        bytes_map_destroy(s->member_index);
        if (s->canon.buff)
            ei_x_free(&s->canon);
        free(s);
        return -1;
    }
    out->state = s;
    return 0;
}

static void pg_terminate(void *state, gcn_term reason)
{
    (void)reason;
    pg_scope *s = state;
    for (size_t i = 0; i < s->ngroups; i++)
        free_group(s->groups[i]);
    for (size_t i = 0; i < s->nmembers; i++)
        free_member(s->members[i]);
    bytes_map_destroy(s->group_index);
    bytes_map_destroy(s->member_index);
    for (size_t i = 0; i < s->npeers; i++)
        free(s->peers[i].pid.ptr), free(s->peers[i].ref.ptr), free(s->peers[i].cref.ptr);
    for (size_t i = 0; i < s->nnodes; i++)
        free(s->nodes[i].name);
    free(s->groups);
    free(s->members);
    free(s->peers);
    free(s->nodes);
    gcn_buf_free(s->msg);
    gcn_buf_free(s->ref);
    ei_x_free(&s->canon);
    free(s);
}

static enum gcn_result pg_call(gcn_server *self, void *state, gcn_term req, const gcn_from *from,
                               gcn_buf *reply)
{
    (void)self;
    (void)from;
    pg_scope *s = state;
    gcn_term group, pids, bad = {NULL, 0};
    if (gcn_match(req, "{join_local, ~t, ~t}", &group, &pids)) {
        int rc = join(s, group, pids, &bad);
        if (rc == 0)
            gcn_build(reply, "ok");
        else if (rc == 1)
            gcn_build(reply, "{error, {nolocal, ~t}}", bad);
        else if (rc == 2)
            gcn_build(reply, "{error, {badarg, ~t}}", bad);
        else if (rc == 3)
            gcn_build(reply, "{error, too_many_joins}");
        else
            gcn_build(reply, "{error, out_of_memory}");
    } else if (gcn_match(req, "{leave_local, ~t, ~t}", &group, &pids)) {
        int rc = leave(s, group, pids);
        if (rc == -2)
            gcn_build(reply, "{error, out_of_memory}");
        else if (rc < 0)
            gcn_error(reply, "badarg", req);
        else
            gcn_build(reply, rc == 0 ? "ok" : "not_joined");
    } else if (gcn_match(req, "{get_local_members, ~t}", &group)) {
        if (canonical(s, group) < 0)
            gcn_error(reply, "badarg", req);
        else
            put_members(s, reply, (term_view){s->canon.buff, (size_t)s->canon.index});
    } else if (gcn_is_atom(req, "which_local_groups")) {
        put_groups(s, reply, GROUPS_ONLY);
    } else {
        gcn_error(reply, "unknown_call", req);
    }
    return GCN_REPLY;
}

static enum gcn_result pg_cast(gcn_server *self, void *state, gcn_term req)
{
    (void)self;
    gcn_term peer_pid;
    /* A peer's groups: not kept (pg_scope.h); but it is a peer now, as in
     * pg's handle_sync, and hears of every change from now on. So it gets
     * our groups first: a peer that synced before it asked (its discover
     * still on its way) holds us with no groups, and OTP's pg crashes on a
     * leave of a group it does not hold (leave_remote's maps:get). */
    int added;
    if (gcn_match(req, "{sync, ~p, _}", &peer_pid) && from_its_node(state, peer_pid) &&
        add_peer(state, peer_pid, &added) && added)
        send_sync(state, peer_pid);
    return GCN_NOREPLY;
}

/* Ask each connected node whose scope has not answered yet; again later
 * while some have not. Answered means it sent a discover of its own, not
 * only a sync: pg answers a discover with a sync, and asks back only a
 * scope it does not know. Seen from OTP 27 nodes after this node was
 * killed and restarted (gen_cnode_shard_SUITE, about one run in three):
 * they synced, never asked, and never learned this node's members. Asked
 * again, they do. */
static void rediscover(pg_scope *s)
{
    int waiting = 0;
    for (size_t i = 0; i < s->nnodes; i++) {
        known_node *k = &s->nodes[i];
        size_t len = strlen(k->name);
        int answered = 0;
        for (size_t j = 0; j < s->npeers && !answered; j++)
            answered = s->peers[j].asked && on_node(view(s->peers[j].pid), k->name, len);
        if (answered || k->tries >= REDISCOVER_TRIES)
            continue;
        k->tries++;
        discover_node(s, k->name);
        waiting = 1;
    }
    gcn_buf_reset(s->msg);
    if (s->rediscover)
        gcn_cancel_timer(s->self, s->rediscover); /* one round pending at a time */
    s->rediscover = 0;
    if (waiting && gcn_build(s->msg, "pg_rediscover") == 0)
        s->rediscover = gcn_send_after(s->self, REDISCOVER_MS, gcn_buf_term(s->msg));
}

/* A peer scope stopped while its node stays connected (a pg restarted by
 * its supervisor, say): the new one asks only the nodes() it sees, and this
 * hidden node is not among them. So its node is asked again, as when it
 * came up. */
static void peer_gone(pg_scope *s, term_view pid)
{
    const char *node;
    size_t len;
    if (process_term_node(pid, &node, &len) < 0 || !process_connected(table_of(s), node, len))
        return;
    for (size_t i = 0; i < s->nnodes; i++)
        if (strlen(s->nodes[i].name) == len && memcmp(s->nodes[i].name, node, len) == 0)
            s->nodes[i].tries = 0;
}

static void node_up(pg_scope *s, const char *node)
{
    if (!process_connected(table_of(s), node, strlen(node))) {
        if (!s->warned_nodeup++)
            log_warning("pg scope %s: ignoring {nodeup, '%s'}: that node is not connected (any more; "
                        "or a peer sent it)", s->name, node);
        return;
    }
    size_t i = 0;
    while (i < s->nnodes && strcmp(s->nodes[i].name, node) != 0)
        i++;
    if (i == s->nnodes) {
        char *name = strdup(node);
        if (!name || grow((void **)&s->nodes, &s->nodes_cap, s->nnodes, sizeof *s->nodes) < 0) {
            free(name);
            return;
        }
        s->nodes[s->nnodes++] = (known_node){name, 0};
    }
    s->nodes[i].tries = 0;
    if (!s->rediscover)
        rediscover(s);
    else
        discover_node(s, node);
}

static enum gcn_result pg_info(gcn_server *self, void *state, gcn_term msg)
{
    (void)self;
    pg_scope *s = state;
    gcn_term peer_pid, ref, pid;
    char node[GCN_ATOM_MAX] = "";
    if (gcn_match(msg, "{discover, ~p}", &peer_pid) || gcn_match(msg, "{discover, ~p, _}", &peer_pid)) {
        if (from_its_node(s, peer_pid))
            discovered(s, peer_pid);
    } else if (gcn_match(msg, "{'DOWN', ~t, process, ~p, _}", &ref, &pid)) {
        /* As pg: the reference and the pid must both be the monitor's. A
         * peer can send a 'DOWN' too, and knows the pids; this node's
         * references it cannot make up (process.c). */
        char cref[MAX_REF];
        size_t cref_len = (size_t)s->canon.index;
        if (canonical(s, ref) < 0 || (cref_len = (size_t)s->canon.index) > sizeof cref)
            return GCN_NOREPLY;
        memcpy(cref, s->canon.buff, cref_len);
        if (canonical(s, pid) < 0)
            return GCN_NOREPLY;
        term_view cpid = {s->canon.buff, (size_t)s->canon.index};
        member *m = find_member(s, cpid);
        if (m && blob_is(m->cref, cref, cref_len)) {
            member_down(s, m);
            return GCN_NOREPLY;
        }
        for (size_t i = 0; i < s->npeers; i++)
            if (blob_is(s->peers[i].cref, cref, cref_len) && blob_is(s->peers[i].pid, cpid.ptr, cpid.len)) {
                /* A peer may send this 'DOWN' of its own process while it
                 * lives (it saw the reference in the monitor): the monitor
                 * goes too, or such rounds would pile monitors up. */
                gcn_demonitor(s->self, view(s->peers[i].ref));
                peer_gone(s, view(s->peers[i].pid));
                free(s->peers[i].pid.ptr);
                free(s->peers[i].ref.ptr);
                free(s->peers[i].cref.ptr);
                memmove(&s->peers[i], &s->peers[i + 1], (s->npeers - i - 1) * sizeof *s->peers);
                if (s->npeers-- == MAX_PEERS) /* a place again: nodes given up on are asked anew */
                    for (size_t k = 0; k < s->nnodes; k++)
                        s->nodes[k].tries = 0;
                if (!s->rediscover)
                    rediscover(s);
                return GCN_NOREPLY;
            }
        /* Matches no monitor: one already taken off (a member that left,
         * its DOWN on its way), or a peer's forgery. Said once. */
        size_t len = 0;
        const char *from = process_sender_node(gen_server_process(s->self), &len);
        if (!s->warned_down++)
            log_warning("pg scope %s: ignoring a 'DOWN' that matches none of its monitors (from %.*s); "
                        "more are not logged", s->name, from ? (int)len : 4, from ? from : "here");
    } else if (gcn_match(msg, "{nodeup, ~a}", node) || gcn_is_atom(msg, "pg_rediscover")) {
        /* the node's own notice and this scope's own timer: from a peer, a
         * forgery that would have this scope discover (and a node sync back
         * to it) at the peer's bidding */
        size_t len;
        const char *from = process_sender_node(gen_server_process(s->self), &len);
        if (from) {
            if (!s->warned_forged++)
                log_warning("pg scope %s: ignoring %s%s%s sent by %.*s (only this node sends those)",
                            s->name, *node ? "{nodeup, '" : "pg_rediscover", node, *node ? "'}" : "",
                            (int)len, from);
        } else if (gcn_is_atom(msg, "pg_rediscover")) {
            s->rediscover = 0; /* this one fired */
            rediscover(s);
        } else {
            node_up(s, node);
        }
    }
    /* {join, ...} and {leave, ...} of other nodes' members: not kept (pg_scope.h) */
    return GCN_NOREPLY;
}

static void pg_node_down(gcn_server *self, void *state, const char *node, size_t len)
{
    (void)self;
    pg_scope *s = state;
    /* A connection replaced by a newer one from the same node goes after
     * that one's nodeup: the node is connected, and stays one to ask. */
    if (process_connected(table_of(s), node, len))
        return;
    for (size_t i = 0; i < s->nnodes; i++)
        if (strlen(s->nodes[i].name) == len && memcmp(s->nodes[i].name, node, len) == 0) {
            free(s->nodes[i].name);
            s->nodes[i] = s->nodes[--s->nnodes];
            return;
        }
}

static int pg_format_state(void *state, gcn_buf *out)
{
    pg_scope *s = state;
    gcn_put_map(out, 3);
    gcn_put_atom(out, "scope");
    gcn_put_atom(out, s->name);
    gcn_put_atom(out, "groups");
    put_groups(s, out, AS_MAP);
    gcn_put_atom(out, "peers");
    gcn_put_list(out, s->npeers);
    for (size_t i = 0; i < s->npeers; i++)
        gcn_put_term(out, view(s->peers[i].pid));
    return s->npeers ? gcn_put_nil(out) : 0;
}

int pg_scope_running(process_table *t, const char *scope)
{
    return gen_server_state_of(process_whereis(t, scope, strlen(scope)), &gcn_module_pg_scope, NULL) != NULL;
}

int pg_scope_join(process_table *t, const char *scope, term_view group, term_view pid)
{
    process *p = process_whereis(t, scope, strlen(scope));
    pg_scope *s = gen_server_state_of(p, &gcn_module_pg_scope, NULL);
    gcn_term bad = {NULL, 0};
    if (!s) {
        log_warning("no pg scope %s on this node (--pg-scope %s starts one)", scope, scope);
        return -1;
    }
    if (join(s, group, pid, &bad) != 0) {
        log_warning("pg scope %s: cannot join (a group deeper than %d, holding -0.0 or over %u KiB; %d "
                    "joins of the server or %u in all already, or %u MiB of group names; or out of memory)",
                    scope, MAX_GROUP_DEPTH, MAX_GROUP_NAME >> 10, MAX_JOINS_PER_MEMBER, MAX_JOINS,
                    MAX_GROUP_BYTES >> 20);
        return -1;
    }
    return 0;
}

int gcn_pg_join(gcn_server *self, const char *scope, gcn_term group)
{
    if (gcn_type(group) == 0)
        return -1;
    return pg_scope_join(process_table_of(gen_server_process(self)), scope ? scope : "pg", group,
                         gcn_self(self));
}

int gcn_pg_leave(gcn_server *self, const char *scope, gcn_term group)
{
    process *p = process_whereis(process_table_of(gen_server_process(self)), scope ? scope : "pg",
                                 strlen(scope ? scope : "pg"));
    pg_scope *s = gen_server_state_of(p, &gcn_module_pg_scope, NULL);
    return s && gcn_type(group) && leave(s, group, gcn_self(self)) == 0 ? 0 : -1;
}

GEN_CNODE_MODULE(pg_scope, .init = pg_init, .handle_call = pg_call, .handle_cast = pg_cast,
                 .handle_info = pg_info, .node_down = pg_node_down,
                 .format_state = pg_format_state, .terminate = pg_terminate)

/* node.c: listening, publishing, connections, routing and ticks; see node.h. */
#include "node.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "dist.h"
#include "dial.h"
#include "epmd.h"
#include "log.h"
#include "busy_poll.h"
#include "bytes_map.h"
#include "loop.h"
#include "workers.h"

#define HANDSHAKE_TIMEOUT_MS 10000
#define MAX_ACCEPTED_HANDSHAKES 1024 /* beyond, a new one drops the oldest (node_accept) */
/* Connections accepted in one turn, at most (accept_ready). */
#define ACCEPTS_PER_TURN 64
#define TIMER_MS 1000
#define PEER_NOTES 16           /* nodes remembered for dropped sends and failed attempts */
#define REACH_LOG_PER_S 10      /* warnings about unreachable nodes, at most, whatever the nodes */
#define DROP_LOG_EVERY_MS 10000 /* at most one line per node this often */
#define DIAL_TIMEOUT_MS 7000    /* reaching a node's socket (OTP's net_setuptime) */
#define DIAL_RETRY_MS 1000      /* a node that could not be reached is not dialed again sooner */
#define DIAL_SHARE (DIAL_MAX_ATTEMPTS * 3 / 4) /* dial slots the sends one peer causes may hold */
#define DIAL_MAX_QUEUED 1024    /* attempts waiting for a dial slot, all peers */
#define DIAL_QUEUED_SHARE (DIAL_MAX_QUEUED / 4) /* of which one peer's sends */
#define CONNECT_RETRY_MS 5000   /* --connect nodes: dialed again this long after losing them */
#define OVERSIZED_HEAD (64 * 1024)      /* what is read of a frame over --max-message */
#define OVERSIZED_MAX ((size_t)1 << 31) /* a frame announcing this much is not trusted */
#define DEFAULT_COALESCE_US 40 /* --coalesce */
#define DEFAULT_BUSY_POLL_US 100 /* the window while polling pays (--busy-poll) */
#define MAX_HANDSHAKE_PACKET 2048
#define JOBS_PER_TURN 256 /* finished jobs handed back per turn; more wait for the next */

struct node {
    node_config cfg;
    int sent; /* processes sent something this turn */
    loop *loop;
    int listen_fd, epmd_fd, signal_fd;
    int port;
    uint32_t creation;
    process_table *procs;
    conn *conns;
    /* The established connections by peer name (NULL, out of memory: the
     * list is walked): finding one must not cost every connection, half
     * handshakes included, since a message may name millions of ids of
     * other nodes (third_party_id) and every send names its node. */
    bytes_map *up;
    conn *last_up; /* the one found last: a call's reply goes where it came from */
    conn *dirty;
    conn *releases;     /* connections with bytes read by peeking (conn_release) */
    uint32_t next_serial;
    int closing;        /* some connection is marked to close */
    int stopping;       /* node_destroy runs: nothing dials any more */
    size_t max_output;  /* bytes queued to a peer beyond which it is dropped */
    int spare_fd;       /* given up to refuse a connection when out of descriptors */
    int listen_paused;  /* out of descriptors and no spare: listening again at the next tick */
    int nconns;
    process *probe;     /* asks each new peer's rex for its OTP release (a system process) */
    long long started_ms; /* for the stats' uptime */
    dialer *dialer;
    uint64_t next_dial;
    struct dial_slot {  /* the dialer's slots in use (id 0: free), by whose sends caused them */
        uint64_t id;
        uint32_t cause;
    } dialing[DIAL_MAX_ATTEMPTS];
    unsigned dials_queued; /* attempts waiting for a slot (dial_queued), closed ones until reaped */
    struct peer_note {    /* nodes sends to were dropped for, or that could not be reached */
        char node[HANDSHAKE_MAX_NAME + 1];
        long long logged_ms;
        unsigned long since; /* dropped since that was logged */
        long long failed_ms; /* the last attempt to reach it failed then */
        long long fail_logged_ms;   /* a failed attempt was last logged then */
        unsigned long fails_since;  /* failed attempts since */
    } notes[PEER_NOTES];
    struct wanted {       /* --connect: kept connected */
        char *node;
        long long lost_ms;   /* when it was last found unconnected */
    } *wanted;
    size_t nwanted;
    long long reach_log_second; /* the second the warnings below were counted in */
    unsigned reach_logged;      /* warnings about unreachable nodes in that second */
    unsigned long reach_suppressed; /* and those left out since the last one logged */
    char why[256];
};

/* ---- connection lifecycle ----
 * Teardown happens only at safe points (see node.h, LIFETIMES): conn_close
 * marks, close_marked closes and makes the processes forget the peer, reap
 * frees. Nothing a callback or a send holds is ever freed under it. */

static void conn_io_ready(loop *l, int fd, int events, void *data);
static struct peer_note *note_for(node *n, const char *name, size_t len);
static int reach_log_allowed(node *n);

/* Mark c to close at the next safe point; nothing more is read from it or
 * queued to it. Safe anywhere, inside a send or a callback included. level:
 * how the closing of an established connection is logged (info when the
 * peer went, warning when it is dropped for what it did or did not do; an
 * attempt that never completed its handshake is a refused peer: warning). */
static void conn_close(node *n, conn *c, enum log_level level, const char *reason)
{
    if (c->state == CONN_CLOSING || c->state == CONN_DEAD)
        return;
    c->was_up = c->state == CONN_UP;
    if (c->was_up && n->up && bytes_map_get(n->up, c->hs.peer_name, c->peer_len) == c)
        bytes_map_remove(n->up, c->hs.peer_name, c->peer_len);
    if (n->last_up == c)
        n->last_up = NULL;
    c->close_level = level;
    snprintf(c->close_reason, sizeof c->close_reason, "%s", reason);
    c->state = CONN_CLOSING;
    n->closing = 1;
}

/* Close the marked connections: their sockets, then what the node's
 * processes kept for their peers (which may mark more: the caller repeats
 * while this returns 1). Safe points only. */
static int close_marked(node *n)
{
    if (!n->closing)
        return 0;
    n->closing = 0;
    for (conn *c = n->conns; c; c = c->next) {
        if (c->state != CONN_CLOSING)
            continue;
        if (c->fd >= 0) {
            loop_unwatch(n->loop, c->fd);
            if (!c->was_up && buffer_len(&c->out)) {
                /* What the handshake said last: the nok that tells a peer
                 * that lost a simultaneous connect to wait for this node's
                 * own attempt (OTP's dist_util waits on nok, and gives up
                 * on a closed socket). One try: the socket never blocks. */
                int progress;
                conn_flush(c, &progress);
            }
            close(c->fd);
            c->fd = -1;
        }
        if (c->pending && !c->superseded && c->hs.nok) {
            /* Lost a simultaneous connect: the peer's attempt comes up and
             * takes the queue (handshake_done), or the wait times out. */
            log_debug("connecting to %s: %s", conn_peer(c), c->close_reason);
            c->state = CONN_WAITING;
            c->opened_ms = clock_ms();
            continue;
        }
        c->state = CONN_DEAD;
        if (c->was_up) {
            log_msg((enum log_level)c->close_level, "connection to %s closed: %s", conn_peer(c),
                    c->close_reason);
            process_forget_node(n->procs, c->hs.peer_name, strlen(c->hs.peer_name));
        } else if (c->superseded || c->hs.nok) {
            log_debug("connection with %s given up: %s", conn_peer(c), c->close_reason);
        } else if (c->pending) {
            /* The peer could not be reached: what was held for it is
             * dropped, and it is forgotten as if it had gone (DOWN and EXIT
             * noconnection, held callers released). */
            struct peer_note *note = note_for(n, c->hs.peer_name, strlen(c->hs.peer_name));
            long long now = clock_ms();
            if ((!note->fail_logged_ms || now - note->fail_logged_ms >= DROP_LOG_EVERY_MS) &&
                reach_log_allowed(n)) {
                log_warning("cannot connect to %s: %s%s%s", conn_peer(c), c->close_reason,
                            c->held_msgs ? "; what was queued for it is dropped" : "",
                            note->fails_since ? "; more attempts failed, since the last such line" : "");
                note->fail_logged_ms = now;
                note->fails_since = 0;
            } else {
                log_debug("cannot connect to %s: %s", conn_peer(c), c->close_reason);
                note->fails_since++;
            }
            note->failed_ms = now;
            process_forget_node(n->procs, c->hs.peer_name, strlen(c->hs.peer_name));
        } else if (c->close_level == LOG_INFO) { /* it went away before it was up */
            log_info("connection attempt from %s ended: %s", conn_peer(c), c->close_reason);
        } else {
            log_warning("connection attempt from %s refused: %s", conn_peer(c), c->close_reason);
        }
    }
    return 1;
}

/* Deliver what processes sent each other, tear down stopped processes and
 * marked connections, until nothing is left to tear down. Returns nonzero
 * when messages wait for the next turn. */
static int settle(node *n)
{
    int more;
    do
        more = process_table_settle(n->procs);
    while (close_marked(n));
    return more;
}

/* Free dead connections; at the end of a turn, when nothing points into them. */
static void reap(node *n)
{
    for (conn **pc = &n->conns; *pc;) {
        conn *c = *pc;
        if (c->state == CONN_DEAD && !c->dirty) {
            *pc = c->next;
            n->dials_queued -= c->dial_queued != 0; /* closed before a slot came free */
            conn_destroy(c);
        } else {
            pc = &c->next;
        }
    }
}

static void mark_dirty(node *n, conn *c)
{
    if (c->dirty)
        return;
    c->dirty = 1;
    c->next_dirty = n->dirty;
    n->dirty = c;
}

static void flush(node *n, conn *c)
{
    if ((c->state != CONN_UP && c->state != CONN_HANDSHAKE) || c->fd < 0)
        return;
    int progress;
    size_t before = buffer_len(&c->out);
    enum conn_io r = conn_flush(c, &progress);
    if (r == CONN_IO_ERROR) {
        conn_close(n, c, LOG_INFO, "write failed (peer gone)");
        return;
    }
    if (progress)
        c->write_ms = loop_now_ns(n->loop) / 1000000;
    if (c->carried) { /* what was carried is written first: it shrinks by what was written */
        size_t written = before - buffer_len(&c->out);
        c->carried -= written < c->carried ? written : c->carried;
    }
    int want_write = r == CONN_IO_AGAIN;
    if (want_write != c->writing) {
        c->writing = want_write;
        loop_watch(n->loop, c->fd, LOOP_READ | (want_write ? LOOP_WRITE : 0), conn_io_ready, c);
    }
}

/* Take what this turn's reads peeked out of the sockets (conn.h): after the
 * answers were written, so that they carry the acknowledgements. Before any
 * next read, so every turn does it. */
static void release_reads(node *n)
{
    while (n->releases) {
        conn *c = n->releases;
        n->releases = c->next_release;
        c->next_release = NULL;
        if (c->state != CONN_UP || c->fd < 0) { /* closing: its socket goes with it */
            c->unreleased = 0;
            continue;
        }
        if (conn_release(c) != CONN_IO_OK)
            conn_close(n, c, LOG_WARNING, "its socket lost bytes it had shown");
    }
}

/* The end of every turn, the node's safe point: teardown, group commits,
 * then this turn's output, one write per connection, then what this turn
 * read taken out of the sockets, then dead connections freed. Says whether
 * processes sent anything (replies, mostly; not ticks or handshakes), so
 * that the loop busy-polls for what comes back (--busy-poll), and whether
 * work is left for the next turn. */
static int after_turn(loop *l, void *data)
{
    node *n = data;
    uint64_t due;
    /* Mail the last turn's last settle left goes first: a gen_server
     * timeout armed beside it (0 ms, say) must not overtake mail sent before
     * it was armed, as it cannot in an OTP mailbox. Then the timers, at the
     * top like frames (see LIFETIMES), by the turn's clock, read when its
     * wait ended. */
    if (process_table_has_mail(n->procs))
        settle(n);
    /* Due strictly before the turn's clock: a timer armed in this very turn
     * (by the settle above, beside the mail it sent) is due at that clock
     * at the earliest, within the same microsecond on a fast machine, and
     * must not fire before that mail is delivered. One due at the clock
     * exactly fires a turn later. */
    uint64_t turn_us = (uint64_t)loop_now_ns(l) / 1000;
    if (turn_us > 0)
        process_table_run_timers(n->procs, turn_us - 1);
    int more = settle(n);
    process_table_flush(n->procs); /* group commits, before this turn's replies leave */
    more |= settle(n);
    for (;;) {
        while (n->dirty) {
            conn *c = n->dirty;
            n->dirty = c->next_dirty;
            c->dirty = 0;
            flush(n, c);
        }
        release_reads(n);
        if (!n->closing)
            break;
        more |= settle(n); /* writes that failed: their DOWNs and EXITs go out too */
    }
    reap(n);
    loop_wake_at(l, process_table_next_timer(n->procs, &due) ? due : 0);
    int r = (n->sent ? LOOP_TURN_SENT : 0) | (more ? LOOP_TURN_MORE : 0);
    n->sent = 0;
    return r;
}

/* ---- routing what processes send ----
 * A send to a node with no connection dials it (OTP's dist_auto_connect):
 * the message, and whatever follows it, is held on the attempt in order
 * and goes out once the handshake is done. What cannot go out at all is
 * dropped and logged, never silently (undeliverable). */

static int dial(node *n, const char *name, size_t len, int force, conn **out);

/* What a pid's, reference's or node atom's node is remembered for: sends
 * dropped lately (logged once per DROP_LOG_EVERY_MS) and the last failed
 * attempt to reach it (not retried for DIAL_RETRY_MS). */
static struct peer_note *find_note(node *n, const char *name, size_t len)
{
    for (int i = 0; i < PEER_NOTES; i++)
        if (strlen(n->notes[i].node) == len && memcmp(n->notes[i].node, name, len) == 0)
            return &n->notes[i];
    return NULL;
}

/* The same, made if there is none (the least recently used gives way). */
static struct peer_note *note_for(node *n, const char *name, size_t len)
{
    struct peer_note *slot = find_note(n, name, len);
    if (slot)
        return slot;
    slot = &n->notes[0];
    for (int i = 0; i < PEER_NOTES; i++) {
        struct peer_note *d = &n->notes[i];
        long long used = d->logged_ms > d->failed_ms ? d->logged_ms : d->failed_ms;
        long long slot_used = slot->logged_ms > slot->failed_ms ? slot->logged_ms : slot->failed_ms;
        if (used < slot_used)
            slot = d; /* the least recently used gives way */
    }
    memset(slot, 0, sizeof *slot);
    snprintf(slot->node, sizeof slot->node, "%.*s", (int)len, name);
    return slot;
}

/* Warnings about nodes that cannot be reached are also limited overall, to
 * REACH_LOG_PER_S a second: a peer that names thousands of made-up nodes
 * (as pids it sends) must not flood the log. Whether one may be logged now;
 * the first after a pause says how many were left out. */
static int reach_log_allowed(node *n)
{
    long long second = clock_ms() / 1000;
    if (second != n->reach_log_second) {
        n->reach_log_second = second;
        n->reach_logged = 0;
    }
    if (n->reach_logged >= REACH_LOG_PER_S) {
        n->reach_suppressed++;
        return 0;
    }
    n->reach_logged++;
    if (n->reach_suppressed) {
        log_warning("%lu more warnings about nodes that cannot be reached were left out (at most %d a second)",
                    n->reach_suppressed, REACH_LOG_PER_S);
        n->reach_suppressed = 0;
    }
    return 1;
}

/* What a process sent that cannot go out: dropped, never silently. One
 * warning per node per DROP_LOG_EVERY_MS names the node, what was dropped,
 * why, and whether more were since the last line (a node that went away
 * would otherwise log once per reply it misses). Returns -1 for the router. */
static int undeliverable(node *n, const char *what, const char *dest, size_t len, const char *why)
{
    long long now = clock_ms();
    struct peer_note *slot = note_for(n, dest, len);
    slot->since++;
    if ((slot->logged_ms && now - slot->logged_ms < DROP_LOG_EVERY_MS) || !reach_log_allowed(n))
        return -1;
    log_warning("%s dropped: %.*s %s%s", what, (int)len, dest, why,
                slot->since > 1 ? "; more were, since the last such line" : "");
    slot->logged_ms = now;
    slot->since = 0;
    return -1;
}

/* Where frames to c go: its output once it is up, else what it holds. */
static buffer *outbox(conn *c) { return c->state == CONN_UP ? &c->out : &c->held; }

static int names(const conn *c, const char *name, size_t len)
{
    /* strncmp stops at the first difference: a peer that named itself with
     * 1,000 bytes costs a send no more than one with 20 (conn_for walks
     * every connection, those still shaking hands included) */
    return len <= HANDSHAKE_MAX_NAME && strncmp(c->hs.peer_name, name, len) == 0 && c->hs.peer_name[len] == '\0';
}

/* Still trying to reach its peer: dialing, shaking hands, or waiting for
 * the peer's own attempt after a simultaneous connect (also while that
 * last is only marked: see close_marked). */
static int trying(const conn *c)
{
    return c->pending && !c->superseded &&
           (c->state == CONN_DIALING || c->state == CONN_HANDSHAKE || c->state == CONN_WAITING ||
            (c->state == CONN_CLOSING && c->hs.nok));
}

/* An accepted connection whose peer has named itself and that is still
 * shaking hands: what is sent to that peer can wait on it (which makes it
 * the node's attempt to reach the peer) rather than dial a second one. */
static int named_handshake(const conn *c)
{
    return c->state == CONN_HANDSHAKE && !c->superseded && !c->dial_id &&
           (c->hs.state == HS_AWAIT_COMPLEMENT || c->hs.state == HS_AWAIT_REPLY);
}

/* c came up: into the index (the one it replaces was taken out when it
 * was marked to close). An index dropped for want of memory is made again
 * here, of every established connection; till then the list is walked. */
static void index_up(node *n, conn *c)
{
    if (n->up) {
        bytes_map_remove(n->up, c->hs.peer_name, c->peer_len);
        if (bytes_map_put(n->up, c->hs.peer_name, c->peer_len, c) == 0)
            return;
        bytes_map_destroy(n->up);
        n->up = NULL;
        log_error("out of memory indexing connections: they are walked till the next one comes up");
        return;
    }
    if (!(n->up = bytes_map_create()))
        return;
    for (conn *o = n->conns; o; o = o->next)
        if (o->state == CONN_UP && bytes_map_put(n->up, o->hs.peer_name, o->peer_len, o) < 0) {
            bytes_map_destroy(n->up);
            n->up = NULL;
            return;
        }
}

/* The established connection to node name, or NULL: by its index. */
static conn *conn_up(node *n, const char *name, size_t len)
{
    conn *c = n->last_up;
    if (c && c->peer_len == len && memcmp(c->hs.peer_name, name, len) == 0)
        return c;
    if (n->up) {
        if ((c = bytes_map_get(n->up, name, len)) != NULL)
            n->last_up = c;
        return c;
    }
    for (conn *o = n->conns; o; o = o->next)
        if (o->state == CONN_UP && o->peer_len == len && memcmp(o->hs.peer_name, name, len) == 0)
            return o;
    return NULL;
}

/* The connection to node name: the established one, else the attempt to
 * reach it, else one that was up and is closing (what is sent to it goes
 * with it, as OTP drops what is sent while a connection goes down) or an
 * attempt that failed in this turn (what is sent is dropped too: a new
 * attempt started now would carry it while close_marked forgets the node,
 * DOWN and EXIT noconnection on this side, and the link or monitor it
 * carries set up on the other); NULL if there is none. */
static conn *conn_for(node *n, const char *name, size_t len)
{
    conn *attempt = NULL, *closing = NULL;
    if (memchr(name, '\0', len)) /* an atom may hold one; no node's name does (names() would stop at it) */
        return NULL;
    conn *up = conn_up(n, name, len);
    if (up)
        return up;
    for (conn *c = n->conns; c; c = c->next) {
        if (c->state == CONN_UP && c->peer_len == len && memcmp(c->hs.peer_name, name, len) == 0)
            return c;
        if (!attempt && (trying(c) || named_handshake(c)) && names(c, name, len))
            attempt = c;
        else if (c->state == CONN_CLOSING && (c->was_up || c->pending) && names(c, name, len))
            closing = c;
    }
    return attempt ? attempt : closing;
}

/* Bytes held on every attempt under way: what a peer can make the node hold
 * for nodes it names (each reply to a made-up caller waits on an attempt) is
 * bounded by the output limit altogether, not per attempt. Walks the
 * connections, but only for what goes to one that is not up. */
static size_t held_total(const node *n)
{
    size_t total = 0;
    for (const conn *c = n->conns; c; c = c->next)
        total += buffer_len(&c->held);
    return total;
}

/* Where what goes to the node of a pid, reference or node atom is queued:
 * its connection, or the attempt to reach it, started here if need be and
 * may_dial. NULL when it cannot go out, logged as `what` (NULL: not logged;
 * the caller has OTP's answer, DOWN or EXIT noconnection, or the signal
 * went with the node). */
static conn *route_to_node(node *n, const char *name, size_t len, int may_dial, const char *what)
{
    conn *c = conn_for(n, name, len);
    if (!c && strlen(n->cfg.name) == len && memcmp(n->cfg.name, name, len) == 0) {
        /* A process of this node that has gone (or never was: a peer's
         * made-up pid or alias of this node): dropped, as the BEAM drops a
         * send to a dead local pid, without trying to reach itself. (No
         * connection ever names this node: the handshake refuses it.) */
        log_debug("%s for a process of this node that is gone: dropped", what ? what : "a signal");
        return NULL;
    }
    if (!c && !may_dial) {
        return NULL;
    } else if (c && c->state == CONN_CLOSING && !trying(c)) {
        if (what && may_dial)
            undeliverable(n, what, name, len, c->was_up ? "is being disconnected" : "could not be reached");
        return NULL;
    } else if (!c && dial(n, name, len, 0, &c) < 0) {
        if (what)
            undeliverable(n, what, name, len, n->why);
        return NULL;
    } else if (c->state != CONN_UP && held_total(n) > n->max_output) {
        if (what)
            undeliverable(n, what, name, len, "is being connected to, and too much is queued for it meanwhile");
        return NULL;
    }
    if (c->state != CONN_UP)
        c->pending = 1; /* it carries what waits for the peer now */
    return c;
}

static conn *route_to(node *n, term_view pid_or_ref, int may_dial, const char *what)
{
    const char *name;
    size_t len;
    if (process_term_node(pid_or_ref, &name, &len) < 0)
        return NULL;
    return route_to_node(n, name, len, may_dial, what);
}

/* A frame was (rc 0) or could not be (-1) appended to c's output, or to
 * what it holds until it is up. A peer whose output passes the limit is
 * marked to close, never closed here: this runs inside a process's send. */
static int queued(node *n, conn *c, int rc)
{
    if (c->state != CONN_UP) {
        if (rc < 0) {
            log_error("out of memory: a message to %s dropped", conn_peer(c));
            return -1;
        }
        c->held_msgs++;
        return 0;
    }
    if (rc < 0 || buffer_len(&c->out) > n->max_output + c->carried) {
        if (rc < 0)
            conn_close(n, c, LOG_ERROR, "out of memory");
        else
            conn_close(n, c, LOG_WARNING, "peer does not read what it is sent");
        return -1;
    }
    c->messages_out++;
    mark_dirty(n, c);
    n->sent = 1;
    return 0;
}

static int route_send(void *ctx, term_view from, term_view to, term_view msg)
{
    (void)from;
    node *n = ctx;
    conn *c = route_to(n, to, 1, "a message");
    return c ? queued(n, c, dist_encode_send(outbox(c), to, msg)) : -1;
}

static int route_send_alias(void *ctx, term_view from, term_view alias, term_view msg)
{
    node *n = ctx;
    conn *c = route_to(n, alias, 1, "a reply");
    if (!c)
        return -1;
    if (c->state == CONN_UP && !(c->flags & DFLAG_ALIAS)) { /* the reply goes nowhere it is awaited */
        log_warning("a reply to an alias dropped: %s does not take aliases", conn_peer(c));
        return -1;
    }
    return queued(n, c, dist_encode_alias_send(outbox(c), from, alias, msg));
}

static int route_monitor_exit(void *ctx, term_view watched, term_view watcher, term_view ref,
                              term_view reason)
{
    node *n = ctx;
    conn *c = route_to(n, watcher, 1, "a DOWN message");
    return c ? queued(n, c, dist_encode_monitor_exit(outbox(c), watched, watcher, ref, reason)) : -1;
}

static int route_link(void *ctx, term_view from, term_view to)
{
    node *n = ctx;
    conn *c = route_to(n, to, 1, NULL); /* failing: the linker gets noconnection (process.c) */
    return c ? queued(n, c, dist_encode_link(outbox(c), from, to)) : -1;
}

static int route_exit(void *ctx, term_view from, term_view to, term_view reason)
{
    node *n = ctx;
    conn *c = route_to(n, to, 1, "an exit signal");
    return c ? queued(n, c, dist_encode_exit(outbox(c), from, to, reason)) : -1;
}

static int route_unlink_ack(void *ctx, term_view id, term_view from, term_view to)
{
    node *n = ctx;
    conn *c = route_to(n, to, 0, NULL); /* none: it went with the node */
    return c ? queued(n, c, dist_encode_unlink_ack(outbox(c), id, from, to)) : -1;
}

static int route_reg_send(void *ctx, term_view from, term_view name, term_view node_atom, term_view msg)
{
    node *n = ctx;
    const char *nd, *nm = "?";
    size_t len, nmlen = 1;
    int i = 0;
    if (term_atom(node_atom, &i, &nd, &len) < 0)
        return -1;
    char what[300];
    i = 0;
    term_atom(name, &i, &nm, &nmlen);
    snprintf(what, sizeof what, "a message to %.*s", (int)(nmlen < 255 ? nmlen : 255), nm);
    conn *c = route_to_node(n, nd, len, 1, what);
    return c ? queued(n, c, dist_encode_reg_send(outbox(c), from, name, msg)) : -1;
}

static int route_unlink(void *ctx, term_view id, term_view from, term_view to)
{
    node *n = ctx;
    conn *c = route_to(n, to, 0, NULL); /* none: the link went with the node */
    return c ? queued(n, c, dist_encode_unlink_id(outbox(c), id, from, to)) : -1;
}

static int route_monitor(void *ctx, term_view from, term_view to, term_view ref)
{
    node *n = ctx;
    conn *c = route_to(n, to, 1, NULL); /* failing: DOWN noconnection (process.c) */
    return c ? queued(n, c, dist_encode_monitor(outbox(c), from, to, ref)) : -1;
}

static int route_demonitor(void *ctx, term_view from, term_view to, term_view ref)
{
    node *n = ctx;
    conn *c = route_to(n, to, 0, NULL); /* none: the monitor went with the node */
    return c ? queued(n, c, dist_encode_demonitor(outbox(c), from, to, ref)) : -1;
}

static int route_release(void *ctx, term_view pid)
{
    const char *name;
    size_t len;
    if (process_term_node(pid, &name, &len) < 0)
        return 0;
    conn *c = conn_for(ctx, name, len);
    return c && c->state == CONN_UP ? c->otp_release : 0;
}

static int route_connect(void *ctx, const char *name, size_t len)
{
    node *n = ctx;
    conn *c = conn_for(n, name, len);
    if (c && c->state != CONN_CLOSING)
        return 0;
    if (dial(n, name, len, 1, &c) < 0) {
        log_warning("cannot connect to %.*s: %s", (int)len, name, n->why);
        return -1;
    }
    return 0;
}

static int route_connected(void *ctx, const char *name, size_t len)
{
    conn *c = conn_for(ctx, name, len);
    return c && c->state == CONN_UP;
}

/* ---- the peer's release ----
 * Reply shapes of sys differ between OTP releases, and the handshake does not
 * tell them apart, so right after a handshake the probe process calls the
 * peer's rex for erlang:system_info(otp_release), tagged with the
 * connection's serial and a random secret; the answer {{Serial, Secret},
 * "27"} comes back to the probe. Only that peer sees the secret: any peer
 * can send the probe a message (it learns the probe's pid from its own
 * question), and without it one could set another connection's release,
 * and with it the rules the forged-id check applies to that node. */

static void ask_release(node *n, conn *c)
{
    char msg[512];
    int i = 0;
    static const char rex[] = {119, 3, 'r', 'e', 'x'};
    term_view probe = process_pid(n->probe);
    ei_encode_tuple_header(msg, &i, 3);
    ei_encode_atom(msg, &i, "$gen_call");
    ei_encode_tuple_header(msg, &i, 2);
    memcpy(msg + i, probe.ptr, probe.len); /* a pid of this node: under 300 bytes */
    i += (int)probe.len;
    if (getrandom(&c->release_secret, sizeof c->release_secret, 0) != sizeof c->release_secret)
        return; /* no question, no answer: the release stays unknown (OTP 27's rules) */
    ei_encode_tuple_header(msg, &i, 2);
    ei_encode_ulong(msg, &i, c->serial);
    ei_encode_ulonglong(msg, &i, c->release_secret);
    ei_encode_tuple_header(msg, &i, 5);
    ei_encode_atom(msg, &i, "call");
    ei_encode_atom(msg, &i, "erlang");
    ei_encode_atom(msg, &i, "system_info");
    ei_encode_list_header(msg, &i, 1);
    ei_encode_atom(msg, &i, "otp_release");
    ei_encode_empty_list(msg, &i);
    ei_encode_atom(msg, &i, "user");
    queued(n, c, dist_encode_reg_send(&c->out, probe, (term_view){rex, sizeof rex},
                                      (term_view){msg, (size_t)i}));
}

static void probe_message(process *self, term_view msg)
{
    node *n = process_state(self);
    int i = 0, arity, tag_arity, type, size;
    unsigned long serial;
    unsigned long long secret;
    char release[16];
    if (ei_decode_tuple_header(msg.ptr, &i, &arity) < 0 || arity != 2 ||
        ei_decode_tuple_header(msg.ptr, &i, &tag_arity) < 0 || tag_arity != 2 ||
        ei_decode_ulong(msg.ptr, &i, &serial) < 0 || ei_decode_ulonglong(msg.ptr, &i, &secret) < 0 ||
        ei_get_type(msg.ptr, &i, &type, &size) < 0 ||
        type != ERL_STRING_EXT || size >= (int)sizeof release || ei_decode_string(msg.ptr, &i, release) < 0)
        return;
    for (conn *c = n->conns; c; c = c->next)
        if (c->serial == serial && c->state == CONN_UP && c->release_secret == secret && secret) {
            c->otp_release = atoi(release);
            log_debug("%s runs OTP %d", c->hs.peer_name, c->otp_release);
        }
}

static const process_behaviour probe_behaviour = {.message = probe_message};

/* ---- dialing out ----
 * A node is dialed when something is sent to it with no connection up
 * (route_to_node), when --connect names it, or on request (process_connect).
 * The dial thread finds its port and connects (dial.h); the handshake then
 * runs here, on the loop, as on an accepted connection. The attempt is a
 * conn from the start, so that what is sent meanwhile is held on it, in
 * order; it fails, closing and forgetting the peer, only at a safe point
 * (node.h, LIFETIMES). */

/* c takes over the attempt o: o's queue goes after c's own, and o is given
 * up quietly (its dial thread's socket, if one comes, is closed). */
static void take_over(node *n, conn *c, conn *o, const char *why)
{
    if (buffer_len(&o->held) && buffer_append(&c->held, buffer_head(&o->held), buffer_len(&o->held)) < 0)
        log_error("out of memory: what was queued for %s is dropped", conn_peer(o));
    else
        c->held_msgs += o->held_msgs;
    buffer_free(&o->held);
    o->held_msgs = 0;
    c->pending = 1;
    o->superseded = 1;
    conn_close(n, o, LOG_DEBUG, why); /* one without a socket is only marked dead there */
}

/* The accepting side of a handshake asks whether this node is reaching the
 * peer too (handshake.h). When it yields (the handshake answers
 * ok_simultaneous), the accepted connection takes its attempt's place. */
static int dialing(void *ctx, const char *peer)
{
    conn *c = ctx;
    node *n = c->owner;
    size_t len = strlen(peer);
    for (conn *o = n->conns; o; o = o->next) {
        if (o == c || !trying(o) || !names(o, peer, len))
            continue;
        if (o->state == CONN_DIALING && o->dial_queued) {
            /* still waiting for a dial slot: the peer never saw it, so this
             * is no simultaneous connect; the accepted one takes its place */
            take_over(n, c, o, "the peer connected while our attempt waited for a dial slot");
            return HS_NOT_DIALING;
        }
        int yielded = o->state == CONN_WAITING || o->state == CONN_CLOSING;
        if (yielded || strcmp(n->cfg.name, peer) < 0) /* this one goes on: ok_simultaneous */
            take_over(n, c, o, "simultaneous connect: the peer's attempt goes on");
        return yielded ? HS_YIELDED : HS_DIALING;
    }
    return HS_NOT_DIALING;
}

/* The dialer's slots (DIAL_MAX_ATTEMPTS threads) are shared out by whose
 * sends caused the attempts (process_cause): the peer whose frame was being
 * handled (its connection's serial), also for a reply to a caller a server
 * held (gcn_reply_held), or the node itself (0: --connect, a timer's send,
 * one process's send to another). One cause holds DIAL_SHARE slots at most,
 * so a peer naming made-up nodes on a host that never answers (each attempt
 * then waits its DIAL_TIMEOUT_MS out) leaves slots to everyone else. An
 * attempt past the slots, or past its cause's share, waits for one, with
 * what is sent to its node held on it as on any attempt; it is never dropped
 * for that. A slot that comes free goes to the waiting attempt whose cause
 * holds the fewest, the oldest first (start_queued). Waiting is bounded in
 * number (DIAL_MAX_QUEUED, a quarter of it per cause) and in time (an
 * attempt not started within DIAL_TIMEOUT_MS fails). Slots are counted as
 * the dialer holds them, from start to result: an attempt given up meanwhile
 * (superseded by the peer's own connection) still holds its slot. */

/* Slots held by cause's attempts; *total: all those in use. */
static int slots_held(const node *n, uint32_t cause, int *total)
{
    int held = 0, used = 0;
    for (int i = 0; i < DIAL_MAX_ATTEMPTS; i++)
        if (n->dialing[i].id) {
            used++;
            held += n->dialing[i].cause == cause;
        }
    *total = used;
    return held;
}

/* Attempts of cause waiting for a slot (a walk of the connections, only
 * once that many wait at all). */
static unsigned queued_by(const node *n, uint32_t cause)
{
    unsigned queued = 0;
    if (n->dials_queued < DIAL_QUEUED_SHARE)
        return 0;
    for (const conn *c = n->conns; c; c = c->next)
        queued += c->dial_queued && c->dial_cause == cause;
    return queued;
}

/* Give c's attempt a dial thread (a slot is free): 0, or -1 (no thread). */
static int start_attempt(node *n, conn *c)
{
    int slot = 0;
    while (n->dialing[slot].id)
        slot++; /* the caller saw fewer than DIAL_MAX_ATTEMPTS in use */
    if (dialer_start(n->dialer, c->hs.peer_name, c->dial_id, DIAL_TIMEOUT_MS) < 0)
        return -1;
    n->dialing[slot].id = c->dial_id;
    n->dialing[slot].cause = c->dial_cause;
    return 0;
}

/* Slots came free: start the waiting attempts they can take, the attempt
 * of the cause holding the fewest slots first, then the oldest. */
static void start_queued(node *n)
{
    while (n->dials_queued && !n->stopping) {
        struct cause_held {
            uint32_t cause;
            int held;
        } causes[DIAL_MAX_ATTEMPTS];
        int ncauses = 0, used = 0;
        for (int i = 0; i < DIAL_MAX_ATTEMPTS; i++) {
            if (!n->dialing[i].id)
                continue;
            used++;
            int k = 0;
            while (k < ncauses && causes[k].cause != n->dialing[i].cause)
                k++;
            if (k == ncauses)
                causes[ncauses++] = (struct cause_held){n->dialing[i].cause, 0};
            causes[k].held++;
        }
        if (used >= DIAL_MAX_ATTEMPTS)
            return;
        conn *best = NULL;
        int best_held = 0;
        for (conn *c = n->conns; c; c = c->next) {
            if (!c->dial_queued || c->state != CONN_DIALING)
                continue;
            int held = 0;
            for (int k = 0; k < ncauses; k++)
                if (causes[k].cause == c->dial_cause)
                    held = causes[k].held;
            if (held < DIAL_SHARE && (!best || held < best_held || (held == best_held && c->dial_id < best->dial_id))) {
                best = c;
                best_held = held;
            }
        }
        if (!best)
            return;
        best->dial_queued = 0;
        n->dials_queued--;
        if (start_attempt(n, best) < 0) {
            conn_close(n, best, LOG_WARNING, "no thread could be started to connect");
            continue;
        }
        log_debug("connecting to %s (it waited %lld ms for a dial slot)", best->hs.peer_name,
                  clock_ms() - best->opened_ms);
    }
}

/* No control byte (NUL included): the rule the handshake has for the names
 * peers give (handshake.c, set_peer_name), for the names sends give. */
static int printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* Start an attempt to reach node name, unless one failed in the last
 * DIAL_RETRY_MS (force: regardless). 0 with *out, or -1 with n->why. */
static int dial(node *n, const char *name, size_t len, int force, conn **out)
{
    long long now = clock_ms();
    if (len == 0 || len > HANDSHAKE_MAX_NAME || !memchr(name, '@', len) || !printable(name, len) ||
        name[0] == '@' || name[len - 1] == '@') {
        snprintf(n->why, sizeof n->why, "is not a node name this node can reach");
        return -1;
    }
    if (strlen(n->cfg.name) == len && memcmp(n->cfg.name, name, len) == 0) {
        snprintf(n->why, sizeof n->why, "is this node");
        return -1;
    }
    if (n->stopping) {
        snprintf(n->why, sizeof n->why, "is not connected (this node is stopping)");
        return -1;
    }
    if (n->cfg.no_dial || (n->cfg.no_auto_connect && !force)) {
        snprintf(n->why, sizeof n->why, "is not connected (%s)",
                 n->cfg.no_dial ? "this node is set not to connect out"
                                : "--no-auto-connect: only --connect and connect requests dial");
        return -1;
    }
    struct peer_note *note = find_note(n, name, len);
    if (!force && note && note->failed_ms && now - note->failed_ms < DIAL_RETRY_MS) {
        snprintf(n->why, sizeof n->why, "could not be reached %lld ms ago (tried again after %d ms)",
                 now - note->failed_ms, DIAL_RETRY_MS);
        return -1;
    }
    char peer[HANDSHAKE_MAX_NAME + 1];
    memcpy(peer, name, len);
    peer[len] = '\0';
    uint32_t challenge;
    conn *c = conn_create(-1, now);
    if (!c || getrandom(&challenge, sizeof challenge, 0) != sizeof challenge ||
        handshake_init_initiator(&c->hs, n->cfg.name, n->cfg.cookie, n->creation, challenge, peer,
                                 &c->out) < 0) {
        conn_destroy(c);
        snprintf(n->why, sizeof n->why, "out of memory");
        return -1;
    }
    c->owner = n;
    c->state = CONN_DIALING;
    c->pending = 1;
    c->dial_id = ++n->next_dial;
    c->dial_cause = process_cause();
    int total, held = slots_held(n, c->dial_cause, &total);
    if (total < DIAL_MAX_ATTEMPTS && held < DIAL_SHARE) {
        if (start_attempt(n, c) < 0) {
            conn_destroy(c);
            snprintf(n->why, sizeof n->why, "is not connected, and no thread could be started to connect");
            return -1;
        }
        log_debug("connecting to %s", peer);
    } else if (n->dials_queued >= DIAL_MAX_QUEUED || queued_by(n, c->dial_cause) >= DIAL_QUEUED_SHARE) {
        conn_destroy(c);
        snprintf(n->why, sizeof n->why,
                 "is not connected, and too many attempts to connect wait already (%u)", n->dials_queued);
        return -1;
    } else {
        c->dial_queued = 1;
        n->dials_queued++;
        log_debug("connecting to %s: waiting for one of %d attempts under way to end", peer, total);
    }
    c->next = n->conns;
    n->conns = c;
    *out = c;
    return 0;
}

/* Dial threads finished: their sockets start their handshakes, their
 * failures close their attempts (at the safe point, as every close). */
static void dials_ready(loop *l, int fd, int events, void *data)
{
    (void)fd;
    (void)events;
    node *n = data;
    dial_result r;
    while (dialer_next(n->dialer, &r)) {
        for (int i = 0; i < DIAL_MAX_ATTEMPTS; i++)
            if (n->dialing[i].id == r.id)
                n->dialing[i].id = 0; /* its slot is free again */
        conn *c = n->conns;
        while (c && !(c->state == CONN_DIALING && c->dial_id == r.id))
            c = c->next;
        if (!c) { /* given up meanwhile */
            if (r.fd >= 0)
                close(r.fd);
            continue;
        }
        if (r.fd < 0) {
            conn_close(n, c, LOG_WARNING, r.why);
            continue;
        }
        if (loop_watch(l, r.fd, LOOP_READ, conn_io_ready, c) < 0) {
            close(r.fd);
            conn_close(n, c, LOG_WARNING, "cannot watch its socket");
            continue;
        }
        c->fd = r.fd;
        c->state = CONN_HANDSHAKE;
        c->opened_ms = c->read_ms = c->write_ms = clock_ms();
        mark_dirty(n, c); /* its name packet */
    }
    start_queued(n);
}

/* ---- reading ---- */

/* A peer passed on a pid or reference of another node, with numbers beyond
 * what every release makes (term_sender in term.h): refused when that node
 * is connected, the creation is its own, and it would take the id for a
 * corrupted term of its own (and drop this node's connection with it). A
 * release not known yet (its rex has not said) is held to OTP 27's rules,
 * the looser: an id is refused only when no release could have made it. */
static int third_party_id(void *ctx, const term_foreign_id *id)
{
    const conn *o = conn_up(ctx, id->node, id->node_len);
    if (!o || o->hs.peer_creation != id->creation)
        return 0; /* not connected, or an earlier incarnation: it would not decode it as its own */
    int otp25 = o->otp_release && o->otp_release <= 25;
    uint32_t first = get_u32((const char *)id->words);
    if (id->is_ref)
        return first >> 18 || (otp25 && id->n_words > 3) ? -1 : 0;
    uint32_t serial = get_u32((const char *)id->words + 4);
    return (otp25 ? first >> 15 || serial >> 13 : first >> 28) ? -1 : 0;
}

static void handshake_done(node *n, conn *c)
{
    /* The old connection is torn down (and its peer forgotten) at the end of
     * this turn, before anything is read on the new one: the peer sends
     * nothing before our ack, which leaves at the end of this turn too. */
    for (conn *o = n->conns; o; o = o->next) {
        if (o == c || strcmp(o->hs.peer_name, c->hs.peer_name) != 0)
            continue;
        if (o->state == CONN_UP)
            conn_close(n, o, LOG_INFO, "replaced by a new connection from the same node");
        else if (trying(o) || (o->pending && !o->superseded && o->state == CONN_CLOSING))
            /* The second case: our attempt failed in this very turn, and
             * is only marked. Taken over, it is not taken for a node that
             * cannot be reached (close_marked would forget the peer, now
             * up), and what it held goes out first, in order. */
            take_over(n, c, o, "the peer's own connection came up");
    }
    /* What was held for the peer goes out first, in the order it was sent,
     * right after the handshake's last packet. */
    if (buffer_len(&c->held)) {
        if (buffer_append(&c->out, buffer_head(&c->held), buffer_len(&c->held)) < 0) {
            conn_close(n, c, LOG_ERROR, "out of memory");
            return;
        }
        c->messages_out += c->held_msgs;
        mark_dirty(n, c);
        n->sent = 1;
    }
    buffer_free(&c->held);
    c->held_msgs = 0;
    /* Held under the limit of what may wait for a peer not yet up: written
     * out with the first frames after it, it would otherwise count against
     * the limit of a peer that does not read, and the first send (the
     * release probe below) drop the connection it waited for. */
    c->carried = buffer_len(&c->out);
    c->pending = 0;
    c->state = CONN_UP;
    c->flags = c->hs.peer_flags & HANDSHAKE_OUR_FLAGS;
    c->serial = ++n->next_serial;
    c->peer_len = strlen(c->hs.peer_name);
    index_up(n, c);
    c->seen.sender = (term_sender){.name = c->hs.peer_name, .name_len = c->peer_len,
                                   .check = third_party_id, .ctx = n};
    c->up_ms = clock_ms();
    log_info("connected to %s%s", c->hs.peer_name, c->dial_id ? " (dialed)" : "");
    ask_release(n, c);
    process_table_node_up(n->procs, c->hs.peer_name, c->peer_len); /* pg scopes discover it */
}

/* A frame over --max-message costs one message, not the connection: once
 * its first OVERSIZED_HEAD bytes (or all of it) are in, its control message
 * is read from them, its recipient told (a call is answered {error,
 * {bad_request, too_large}}), and the rest is read and dropped as it comes,
 * never buffered whole. Only a frame that cannot be trusted closes the
 * connection: one announcing OVERSIZED_MAX bytes or more, or one whose
 * control message is not whole and well-formed within its head.
 * 1: handled (c->drain set); 0: its head is not all in yet; -1: closed. */
static int oversized(node *n, conn *c, size_t len)
{
    if (len >= OVERSIZED_MAX) {
        snprintf(n->why, sizeof n->why, "a frame announcing %zu bytes (over 2 GiB: not to be trusted)", len);
        conn_close(n, c, LOG_WARNING, n->why);
        return -1;
    }
    size_t have = buffer_len(&c->in) - 4;
    size_t head = len < OVERSIZED_HEAD ? len : OVERSIZED_HEAD;
    if (have < head)
        return 0;
    c->messages_in++;
    enum dist_result r = dist_refuse_oversized(n->procs, buffer_head(&c->in) + 4, head, len,
                                               n->cfg.max_message, &c->seen, n->why, sizeof n->why);
    if (r == DIST_EPROTO) {
        conn_close(n, c, LOG_WARNING, n->why);
        return -1;
    }
    log_warning("from %s: %s", conn_peer(c), n->why);
    size_t here = have < len ? have : len;
    conn_consume(c, 4, here);
    c->drain = len - here;
    return 1;
}

/* Handle every whole frame in c's input. */
static void frames_of(node *n, conn *c)
{
    const char *f;
    size_t len;
    while (c->state == CONN_HANDSHAKE || c->state == CONN_UP) {
        if (c->drain && !conn_drain(c))
            return;
        int hdr = c->state == CONN_HANDSHAKE ? 2 : 4;
        size_t max = c->state == CONN_HANDSHAKE ? MAX_HANDSHAKE_PACKET : n->cfg.max_message;
        int r = conn_frame(c, hdr, max, &f, &len);
        if (r == 0)
            return;
        if (r < 0 && c->state == CONN_UP) {
            if (oversized(n, c, conn_frame_len(c, hdr)) <= 0)
                return;
            continue;
        }
        if (r < 0) {
            snprintf(n->why, sizeof n->why, "a handshake packet over %zu bytes", max);
            conn_close(n, c, LOG_WARNING, n->why);
            return;
        }
        if (c->state == CONN_HANDSHAKE) {
            enum handshake_state s = handshake_packet(&c->hs, f, len, &c->out, n->why, sizeof n->why);
            conn_consume(c, hdr, len);
            mark_dirty(n, c);
            if (s == HS_FAILED)
                conn_close(n, c, LOG_WARNING, n->why);
            else if (s == HS_UP) {
                handshake_done(n, c);
                process_set_cause(c->serial); /* its frames read in this same call: the peer's doing */
            }
            continue;
        }
        if (len == 0) { /* a tick: answer it, as a hidden node must */
            if (buffer_len(&c->out) == 0 && dist_encode_tick(&c->out) == 0)
                mark_dirty(n, c);
        } else {
            c->messages_in++;
            enum dist_result r2 = dist_receive(n->procs, c->hs.peer_name, c->peer_len, f, len,
                                               n->cfg.max_depth, &c->seen, n->why, sizeof n->why);
            if (r2 == DIST_EPROTO) {
                conn_close(n, c, LOG_WARNING, n->why);
                return;
            }
            if (r2 == DIST_DROPPED || r2 == DIST_ALTERED)
                log_warning("from %s: %s", conn_peer(c), n->why);
        }
        conn_consume(c, hdr, len);
    }
}

/* The same, with c named as the cause of what its frames make the node's
 * processes send (process_cause): the dial slots are shared out by it. */
static void frames(node *n, conn *c)
{
    process_set_cause(c->serial);
    frames_of(n, c);
    process_set_cause(0);
}

/* How many more bytes complete the frame being received (for one big read). */
static size_t still_needed(const conn *c)
{
    size_t have = buffer_len(&c->in);
    if (c->state != CONN_UP || have < 4 || c->drain)
        return 0;
    size_t n = get_u32(buffer_head(&c->in));
    return n + 4 > have ? n + 4 - have : 0;
}

static void conn_io_ready(loop *l, int fd, int events, void *data)
{
    (void)l;
    (void)fd;
    conn *c = data;
    node *n = c->owner;
    if (events & LOOP_WRITE)
        flush(n, c);
    if (!(events & LOOP_READ) || (c->state != CONN_HANDSHAKE && c->state != CONN_UP))
        return;
    size_t unreleased_before = c->unreleased; /* not 0: on the release list already */
    enum conn_io r = conn_read(c, still_needed(c) > n->cfg.max_message ? 0 : still_needed(c));
    if (r == CONN_IO_EOF || r == CONN_IO_ERROR) {
        const char *why = r == CONN_IO_EOF ? "peer closed the connection" : "read failed";
        if (c->hs.state == HS_AWAIT_ACK) /* an OTP node closes on a digest that does not match */
            why = "the peer closed the connection after our challenge reply (a wrong cookie?)";
        conn_close(n, c, LOG_INFO, why);
        return;
    }
    if (r == CONN_IO_OK) {
        if (c->unreleased && !unreleased_before) {
            c->next_release = n->releases;
            n->releases = c;
        }
        c->read_ms = loop_now_ns(n->loop) / 1000000;
        frames(n, c);
    }
}

/* ---- accepting ---- */

/* At most ACCEPTS_PER_TURN, then the turn goes on (the listener, level
 * triggered, is ready again at the next): a flood of connections, which
 * needs no cookie, would otherwise keep the loop here for as long as it
 * lasts, no peer read, no tick sent, and the handshakes it drops (marked,
 * closed at the end of the turn) piling up as descriptors past their cap. */
static void accept_ready(loop *l, int fd, int events, void *data)
{
    (void)events;
    node *n = data;
    for (int taken = 0; taken < ACCEPTS_PER_TURN; taken++) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0 && (errno == EMFILE || errno == ENFILE)) {
            /* Out of descriptors: the peer waiting in the backlog would keep
             * the listener ready, and the loop spinning. Give up the spare
             * descriptor to take it and close it at once. */
            log_warning("refusing a connection: out of file descriptors (%d peers connected)",
                        n->nconns);
            if (n->spare_fd < 0) {
                loop_unwatch(l, fd); /* watched again by the next tick */
                n->listen_paused = 1;
                return;
            }
            close(n->spare_fd);
            cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
            if (cfd >= 0)
                close(cfd);
            n->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            continue;
        }
        if (cfd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                log_warning("accept: %s", strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (node_accept(n, cfd) < 0) {
            log_error("cannot take a new connection: out of resources");
            close(cfd);
        }
    }
}

/* Connections accepted and still shaking hands are at most
 * MAX_ACCEPTED_HANDSHAKES: a peer with no cookie could open them faster
 * than the handshake timeout ends them, and each costs memory and a place
 * in every send's walk (conn_for). A new one drops the oldest, which a
 * real peer, done within milliseconds, hardly ever is; refusing the new
 * one instead would let an attacker who holds every place keep real peers
 * out. Only marked here (a safe point closes it). */
static void make_room_for_a_handshake(node *n)
{
    size_t waiting = 0;
    conn *oldest = NULL;
    for (conn *c = n->conns; c; c = c->next)
        if (c->state == CONN_HANDSHAKE && !c->dial_id) {
            waiting++;
            /* not one that carries what was sent to its peer meanwhile */
            if (!c->pending && (!oldest || c->opened_ms <= oldest->opened_ms))
                oldest = c;
        }
    if (waiting >= MAX_ACCEPTED_HANDSHAKES && oldest)
        conn_close(n, oldest, LOG_WARNING, "handshake not finished, and the most connections that may "
                   "wait for theirs are waiting: the oldest is dropped");
}

int node_accept(node *n, int fd)
{
    make_room_for_a_handshake(n);
    conn *c = conn_create(fd, clock_ms());
    uint32_t challenge;
    if (!c)
        return -1;
    c->owner = n;
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
        getrandom(&challenge, sizeof challenge, 0) != sizeof challenge ||
        loop_watch(n->loop, fd, LOOP_READ, conn_io_ready, c) < 0) {
        c->fd = -1; /* the caller's, still */
        conn_destroy(c);
        return -1;
    }
    handshake_init(&c->hs, n->cfg.name, n->cfg.cookie, n->creation, challenge);
    c->hs.dialing = dialing;
    c->hs.dialing_ctx = c;
    c->next = n->conns;
    n->conns = c;
    return 0;
}

int node_attach(node *n, int fd, const char *peer_name, uint64_t peer_flags)
{
    size_t len = strlen(peer_name);
    if (len == 0 || len > HANDSHAKE_MAX_NAME || !strchr(peer_name, '@'))
        return -1;
    conn *c = conn_create(fd, clock_ms());
    if (!c)
        return -1;
    c->owner = n;
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
        loop_watch(n->loop, fd, LOOP_READ, conn_io_ready, c) < 0) {
        c->fd = -1; /* the caller's, still */
        conn_destroy(c);
        return -1;
    }
    handshake_init(&c->hs, n->cfg.name, n->cfg.cookie, n->creation, 0);
    memcpy(c->hs.peer_name, peer_name, len + 1);
    c->hs.peer_flags = peer_flags;
    c->next = n->conns;
    n->conns = c;
    handshake_done(n, c);
    settle(n); /* a connection it replaces goes now: nothing runs under this call */
    return 0;
}

/* ---- ticks, signals, stdin ---- */

static void every_second(loop *l, void *data)
{
    (void)l;
    node *n = data;
    long long now = clock_ms();
    long long tick_ms = (long long)n->cfg.ticktime * 1000;
    if (n->listen_paused && loop_watch(l, n->listen_fd, LOOP_READ, accept_ready, n) == 0)
        n->listen_paused = 0;
    if (n->spare_fd < 0)
        n->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    n->nconns = 0;
    for (conn *c = n->conns; c; c = c->next) {
        n->nconns += c->state != CONN_DEAD;
        if (c->state == CONN_HANDSHAKE && now - c->opened_ms > HANDSHAKE_TIMEOUT_MS) {
            conn_close(n, c, LOG_WARNING, "handshake timed out");
        } else if (c->state == CONN_DIALING && c->dial_queued && now - c->opened_ms > DIAL_TIMEOUT_MS) {
            int total;
            slots_held(n, 0, &total);
            snprintf(n->why, sizeof n->why, "no dial slot came free in %d ms (%d attempts under way)",
                     DIAL_TIMEOUT_MS, total);
            conn_close(n, c, LOG_WARNING, n->why);
        } else if (c->state == CONN_WAITING && now - c->opened_ms > HANDSHAKE_TIMEOUT_MS) {
            c->hs.nok = 0; /* a failure now, not a wait */
            conn_close(n, c, LOG_WARNING, "simultaneous connect: the peer's own attempt never came up");
        } else if (c->state == CONN_UP && now - c->read_ms > tick_ms) {
            snprintf(n->why, sizeof n->why, "peer silent for %d s (net_ticktime)", n->cfg.ticktime);
            conn_close(n, c, LOG_WARNING, n->why);
        } else if (c->state == CONN_UP && buffer_len(&c->out) > 0 && now - c->write_ms > tick_ms) {
            snprintf(n->why, sizeof n->why, "peer read nothing for %d s (net_ticktime)", n->cfg.ticktime);
            conn_close(n, c, LOG_WARNING, n->why);
        } else if (c->state == CONN_UP && now - c->write_ms > tick_ms / 4 &&
                   buffer_len(&c->out) == 0 && dist_encode_tick(&c->out) == 0) {
            mark_dirty(n, c);
        }
    }
    if (n->reach_suppressed)
        reach_log_allowed(n); /* says how many were left out, once there is room again */
    for (size_t i = 0; i < n->nwanted; i++) {
        struct wanted *w = &n->wanted[i];
        conn *c;
        if (conn_for(n, w->node, strlen(w->node)))
            w->lost_ms = 0;
        else if (!w->lost_ms)
            w->lost_ms = now;
        else if (now - w->lost_ms >= CONNECT_RETRY_MS && dial(n, w->node, strlen(w->node), 1, &c) == 0)
            w->lost_ms = 0;
    }
}

/* Worker jobs finished: their done functions run here, on the node's
 * thread, at the top of the loop as frames are handled. */
static void jobs_ready(loop *l, int fd, int events, void *data)
{
    (void)l;
    (void)fd;
    (void)events;
    node *n = data;
    process_table_collect_jobs(n->procs, JOBS_PER_TURN);
}

static void signal_ready(loop *l, int fd, int events, void *data)
{
    (void)events;
    (void)data;
    struct signalfd_siginfo si;
    if (read(fd, &si, sizeof si) == (ssize_t)sizeof si)
        log_notice("stopping on signal %u", si.ssi_signo);
    loop_stop(l);
}

static void stdin_ready(loop *l, int fd, int events, void *data)
{
    (void)events;
    (void)data;
    char buf[256];
    ssize_t r = read(fd, buf, sizeof buf);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        log_notice("stopping: stdin closed");
        loop_unwatch(l, fd);
        loop_stop(l);
    }
}

/* ---- figures ----
 * The node's part of the starter's stats map (process.h, process_stats_fn):
 * node, uptime_ms and connections, one map per established connection. */

/* A node name as an atom: as the peer sent it (UTF-8), or read as Latin-1
 * when it is not valid UTF-8. */
static int encode_node_atom(ei_x_buff *x, const char *name)
{
    int len = (int)strlen(name);
    int at = x->index;
    if (ei_x_encode_atom_len_as(x, name, len, ERLANG_UTF8, ERLANG_UTF8) == 0)
        return 0;
    x->index = at;
    return ei_x_encode_atom_len_as(x, name, len, ERLANG_LATIN1, ERLANG_UTF8);
}

static int encode_conn(ei_x_buff *x, const conn *c, long long now)
{
    return ei_x_encode_map_header(x, 8) < 0 ||
           ei_x_encode_atom(x, "node") < 0 || encode_node_atom(x, c->hs.peer_name) < 0 ||
           ei_x_encode_atom(x, "since_ms") < 0 || ei_x_encode_longlong(x, now - c->up_ms) < 0 ||
           ei_x_encode_atom(x, "bytes_in") < 0 || ei_x_encode_ulonglong(x, c->bytes_in) < 0 ||
           ei_x_encode_atom(x, "bytes_out") < 0 || ei_x_encode_ulonglong(x, c->bytes_out) < 0 ||
           ei_x_encode_atom(x, "messages_in") < 0 || ei_x_encode_ulonglong(x, c->messages_in) < 0 ||
           ei_x_encode_atom(x, "messages_out") < 0 || ei_x_encode_ulonglong(x, c->messages_out) < 0 ||
           ei_x_encode_atom(x, "messages_by_shape") < 0 || ei_x_encode_ulonglong(x, c->seen.frames.hits) < 0 ||
           ei_x_encode_atom(x, "otp_release") < 0 ||
           (c->otp_release ? ei_x_encode_long(x, c->otp_release) : ei_x_encode_atom(x, "undefined")) < 0
               ? -1
               : 0;
}

/* How the loop polls after answering, and what the last trial measured. */
static int encode_busy_poll(ei_x_buff *x, const busy_poll *bp)
{
    return ei_x_encode_map_header(x, 8) < 0 ||
           ei_x_encode_atom(x, "mode") < 0 || ei_x_encode_atom(x, bp->automatic ? "auto" : "fixed") < 0 ||
           ei_x_encode_atom(x, "polling") < 0 || ei_x_encode_boolean(x, bp->verdict) < 0 ||
           ei_x_encode_atom(x, "in_trial") < 0 || ei_x_encode_boolean(x, bp->phase >= 0) < 0 ||
           ei_x_encode_atom(x, "confirming") < 0 || ei_x_encode_boolean(x, bp->doubted) < 0 ||
           ei_x_encode_atom(x, "window_us") < 0 || ei_x_encode_longlong(x, bp->window_ns / 1000) < 0 ||
           ei_x_encode_atom(x, "trials") < 0 || ei_x_encode_ulong(x, bp->trials) < 0 ||
           ei_x_encode_atom(x, "polling_turnaround_us") < 0 ||
           ei_x_encode_double(x, (double)bp->polling_ns / 1000) < 0 ||
           ei_x_encode_atom(x, "sleeping_turnaround_us") < 0 ||
           ei_x_encode_double(x, (double)bp->sleeping_ns / 1000) < 0
               ? -1
               : 0;
}

static int node_stats(void *ctx, ei_x_buff *x)
{
    node *n = ctx;
    long long now = clock_ms();
    int up = 0;
    for (conn *c = n->conns; c; c = c->next)
        up += c->state == CONN_UP;
    if (ei_x_encode_atom(x, "node") < 0 || encode_node_atom(x, n->cfg.name) < 0 ||
        ei_x_encode_atom(x, "uptime_ms") < 0 || ei_x_encode_longlong(x, now - n->started_ms) < 0 ||
        ei_x_encode_atom(x, "connections") < 0 || ei_x_encode_list_header(x, up) < 0)
        return -1;
    for (conn *c = n->conns; c; c = c->next)
        if (c->state == CONN_UP && encode_conn(x, c, now) < 0)
            return -1;
    if (up && ei_x_encode_empty_list(x) < 0)
        return -1;
    if (ei_x_encode_atom(x, "busy_poll") < 0 || encode_busy_poll(x, loop_busy_poll(n->loop)) < 0)
        return -1;
    if (ei_x_encode_atom(x, "coalesce") < 0 || ei_x_encode_map_header(x, 3) < 0 ||
        ei_x_encode_atom(x, "window_us") < 0 || ei_x_encode_long(x, loop_coalesce_window_us(n->loop)) < 0 ||
        ei_x_encode_atom(x, "now") < 0 || ei_x_encode_boolean(x, loop_coalescing(n->loop)) < 0 ||
        ei_x_encode_atom(x, "sleeps") < 0 || ei_x_encode_ulong(x, loop_coalesced(n->loop)) < 0)
        return -1;
    return 5;
}

/* ---- setup ---- */

static int listen_on(const char *addr, int port, int *bound, char *err, size_t errlen)
{
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "--listen %s: not an IPv4 address", addr);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 128) < 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", addr, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    *bound = ntohs(sa.sin_port);
    return fd;
}

/* The CPU quota of cgroup v2 file path (QUOTA PERIOD, or "max"), or 0. */
static double cgroup_quota(const char *path)
{
    double cpus = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        long long quota, period;
        if (fscanf(f, "%lld %lld", &quota, &period) == 2 && quota > 0 && period > 0)
            cpus = (double)quota / (double)period;
        fclose(f);
    }
    return cpus;
}

/* CPUs this process may use: its affinity, lowered by the cgroup v2 quota of
 * its own cgroup if there is one (a container given --cpus=1 sees every core
 * but gets one). */
static double usable_cpus(void)
{
    double cpus = 1e9;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        cpus = CPU_COUNT(&set);
    char line[512], path[600];
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (f) {
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "0::", 3) != 0)
                continue;
            line[strcspn(line, "\n")] = '\0';
            snprintf(path, sizeof path, "/sys/fs/cgroup%s/cpu.max", strcmp(line + 3, "/") ? line + 3 : "");
            double q = cgroup_quota(path);
            if (q > 0 && q < cpus)
                cpus = q;
        }
        fclose(f);
    }
    return cpus;
}

/* Busy-polling can pay off only when the peer runs on another core
 * meanwhile; with less than two CPUs it only takes time from the peer (or the
 * quota). With two or more, whether it pays is measured (busy_poll.h). */
static void set_busy_poll(loop *l, const node_config *cfg)
{
    if (cfg->busy_poll_us >= 0) {
        log_debug("busy-polling for %d us after each answer", cfg->busy_poll_us);
        loop_spin(l, cfg->busy_poll_us);
        return;
    }
    double cpus = usable_cpus();
    if (cpus < 2) {
        log_info("%.2g CPU usable: busy-polling off", cpus);
        loop_spin(l, 0);
        return;
    }
    log_debug("busy-polling for up to %d us after each answer while it pays", DEFAULT_BUSY_POLL_US);
    loop_spin_auto(l, DEFAULT_BUSY_POLL_US);
}

node *node_create(const node_config *cfg, char *err, size_t errlen)
{
    node *n = calloc(1, sizeof *n);
    if (!n) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    n->cfg = *cfg;
    n->started_ms = clock_ms();
    n->up = bytes_map_create(); /* NULL: the list is walked */
    n->listen_fd = n->epmd_fd = n->signal_fd = -1;
    n->max_output = cfg->max_output ? cfg->max_output : 2 * cfg->max_message + (16u << 20);
    /* As many peers as the system lets this process have (the BEAM does the same). */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    n->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a file size limit fails the write (and is handled), not the node */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    n->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    n->loop = loop_create();
    if (n->signal_fd < 0 || !n->loop) {
        snprintf(err, errlen, "cannot set up the event loop: %s", strerror(errno));
        goto fail;
    }
    if (!cfg->no_listen && (n->listen_fd = listen_on(cfg->listen_addr, cfg->port, &n->port, err, errlen)) < 0)
        goto fail;
    if (cfg->unpublished) {
        n->creation = cfg->creation;
        if (!n->creation && getrandom(&n->creation, sizeof n->creation, 0) != sizeof n->creation)
            n->creation = (uint32_t)time(NULL);
        n->creation |= 4; /* never 0..3: what old creations look like */
    } else {
        char alive[256];
        snprintf(alive, sizeof alive, "%.*s", (int)strcspn(cfg->name, "@"), cfg->name);
        n->epmd_fd = epmd_publish(alive, n->port, &n->creation, err, errlen);
        if (n->epmd_fd < 0)
            goto fail;
    }
    process_router router = {.ctx = n, .send = route_send, .send_alias = route_send_alias,
                             .monitor_exit = route_monitor_exit, .link = route_link,
                             .exit = route_exit, .unlink_ack = route_unlink_ack,
                             .release = route_release, .reg_send = route_reg_send,
                             .unlink = route_unlink, .monitor = route_monitor,
                             .demonitor = route_demonitor, .connect = route_connect,
                             .connected = route_connected};
    n->procs = process_table_create(cfg->name, n->creation, &router);
    if (!n->procs || !(n->probe = process_spawn(n->procs, &probe_behaviour, n))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    process_set_system(n->probe); /* n->probe stays valid: nothing can stop it */
    process_table_set_limit(n->procs, cfg->max_processes);
    process_table_set_stats(n->procs, node_stats, n);
    unsigned threads = cfg->workers > 0 ? (unsigned)cfg->workers : 0;
    workers *pool = threads ? workers_create(threads) : NULL;
    if (threads && !pool) {
        snprintf(err, errlen, "cannot start %u worker threads", threads);
        goto fail;
    }
    if (pool) {
        process_table_set_workers(n->procs, pool, cfg->jobs_grace_ms > 0 ? cfg->jobs_grace_ms : -1);
        if (loop_watch(n->loop, workers_fd(pool), LOOP_READ, jobs_ready, n) < 0) {
            snprintf(err, errlen, "cannot watch the worker pool: %s", strerror(errno));
            goto fail;
        }
        log_debug("%u worker threads for blocking jobs", threads);
    }
    if ((n->listen_fd >= 0 && loop_watch(n->loop, n->listen_fd, LOOP_READ, accept_ready, n) < 0) ||
        loop_watch(n->loop, n->signal_fd, LOOP_READ, signal_ready, n) < 0 ||
        (cfg->watch_stdin && loop_watch(n->loop, 0, LOOP_READ, stdin_ready, n) < 0)) {
        snprintf(err, errlen, "cannot watch descriptors: %s", strerror(errno));
        goto fail;
    }
    n->dialer = dialer_create();
    if (!n->dialer || loop_watch(n->loop, dialer_fd(n->dialer), LOOP_READ, dials_ready, n) < 0) {
        snprintf(err, errlen, "cannot set up dialing out: %s", strerror(errno));
        goto fail;
    }
    if (cfg->nconnect && !(n->wanted = calloc(cfg->nconnect, sizeof *n->wanted))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < cfg->nconnect; i++) {
        conn *c;
        if (!(n->wanted[i].node = strdup(cfg->connect[i]))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        n->nwanted++;
        if (!conn_for(n, cfg->connect[i], strlen(cfg->connect[i])) &&
            dial(n, cfg->connect[i], strlen(cfg->connect[i]), 1, &c) < 0)
            log_warning("--connect %s: %s", cfg->connect[i], n->why);
    }
    loop_every(n->loop, TIMER_MS, every_second, n);
    loop_after_turn(n->loop, after_turn, n);
    set_busy_poll(n->loop, cfg);
    loop_coalesce(n->loop, cfg->coalesce_us >= 0 ? cfg->coalesce_us : DEFAULT_COALESCE_US);
    return n;
fail:
    node_destroy(n);
    return NULL;
}

process_table *node_processes(node *n) { return n->procs; }
int node_port(const node *n) { return n->port; }

int node_run(node *n) { return loop_run(n->loop); }
int node_run_once(node *n, int max_wait_ms) { return loop_once(n->loop, max_wait_ms); }

/* Stopping, in the order of the lifetimes above: the node unpublishes
 * itself and stops listening, then the servers go,
 * while everything they may reach in their terminate still stands (the
 * connections, the dialer, the loop). What a terminate sends to a connected
 * node goes out below, as far as its socket takes it at once (no waiting:
 * a peer that does not read holds up no stop); a node not connected is not
 * dialed any more (dial refuses), and the message is dropped and logged, as
 * for any node that cannot be reached. */
size_t node_destroy(node *n)
{
    if (!n)
        return 0;
    n->stopping = 1;
    /* Unpublished and deaf first: a node that is stopping takes no new
     * peer, and a node started again under the same name (a supervisor's
     * restart) can publish it while the terminates and jobs below, or a
     * dial attempt's name lookup, still run. */
    if (n->epmd_fd >= 0)
        close(n->epmd_fd);
    if (n->listen_fd >= 0)
        close(n->listen_fd);
    n->epmd_fd = n->listen_fd = -1;
    size_t stuck = process_table_destroy(n->procs); /* every terminate, then the jobs: queued
                                                       ones dropped, running ones waited for */
    n->procs = NULL;
    for (conn *c = n->conns; c; c = c->next)
        if (c->state == CONN_UP && c->fd >= 0 && buffer_len(&c->out) > 0) {
            int progress;
            conn_flush(c, &progress);
        }
    bytes_map_destroy(n->up); /* before what it points to */
    n->up = NULL;
    n->last_up = NULL;
    while (n->conns) {
        conn *c = n->conns;
        n->conns = c->next;
        conn_destroy(c);
    }
    dialer_destroy(n->dialer); /* attempts in flight cancelled, their threads waited for */
    for (size_t i = 0; i < n->nwanted; i++)
        free(n->wanted[i].node);
    free(n->wanted);
    if (n->signal_fd >= 0)
        close(n->signal_fd);
    if (n->spare_fd >= 0)
        close(n->spare_fd);
    loop_destroy(n->loop);
    free(n);
    return stuck;
}

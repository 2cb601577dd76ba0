/* dist.c: control messages in and out; see dist.h. */
#include "dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define PASS_THROUGH 112
#define VERSION_MAGIC 131
#define CONTROL_MAX_ELEMENTS 6

/* The control tuple's elements, as views. */
typedef struct control {
    long op;
    int n;
    term_view el[CONTROL_MAX_ELEMENTS];
} control;

/* The op of a control tuple, read in place from its first element (a
 * checked term): 0 and *op set for a SMALL_INTEGER_EXT or an INTEGER_EXT,
 * else -1. */
static int read_op(term_view el, long *op)
{
    const unsigned char *p = (const unsigned char *)el.ptr;
    if (p[0] == ERL_SMALL_INTEGER_EXT)
        *op = p[1];
    else if (p[0] == ERL_INTEGER_EXT)
        *op = (long)(int32_t)get_u32(el.ptr + 1);
    else
        return -1;
    return 0;
}

/* The control tuple at buf[*i]: checked in one walk (seen: the peer's, or
 * NULL), each element to max_depth (--max-depth: exit reasons travel here,
 * as the node does not take DFLAG_EXIT_PAYLOAD, and a crash's reason holds
 * the state it crashed with), its elements viewed (in el too, op first:
 * *arity of them), the op read in place; *i moves past the tuple. 0, or a
 * term_error (TERM_EBAD when it is no control tuple). */
/* The control message of a frame over --max-message: a send's (what else
 * would be that large is refused whole anyway). */
#define CONTROL_OVERSIZED_DEPTH 16

static int decode_control(const char *buf, size_t len, size_t *i, control *c, dist_seen *seen,
                          unsigned max_depth, term_view el[CONTROL_MAX_ELEMENTS + 1], int *arity)
{
    int rc = term_tuple_elements(buf, len, i, max_depth, seen ? &seen->atoms : NULL, seen ? &seen->sender : NULL,
                                 el, CONTROL_MAX_ELEMENTS + 1, arity);
    if (rc != TERM_OK)
        return rc;
    if (*arity < 1 || read_op(el[0], &c->op) < 0)
        return TERM_EBAD;
    c->n = *arity - 1;
    memcpy(c->el, el + 1, (size_t)c->n * sizeof *el);
    return 0;
}

/* An exit signal's or a DOWN's reason travels as the last element of its
 * control tuple, and a crash's reason holds the state it crashed with,
 * which may be nested deeper than --max-depth. Such a reason is passed over
 * without recursion (term_skip_flat) and too_deep stands in for it: the
 * signal still does what it would (the recipient exits, or is told), and
 * the connection, which carries everyone else's traffic, stays. The other
 * elements are checked as decode_control checks them. 0 with *c filled in
 * and *i past the tuple; TERM_EDEPTH when it is no such signal; or the
 * term_error of another element. */
static const char too_deep_atom[] = {119, 8, 't', 'o', 'o', '_', 'd', 'e', 'e', 'p'};

static int decode_deep_reason(const char *buf, size_t len, size_t *i, control *c, dist_seen *seen,
                              unsigned max_depth)
{
    size_t at = *i;
    if (at + 2 > len || (unsigned char)buf[at] != 104)
        return TERM_EDEPTH;
    int n = (unsigned char)buf[at + 1];
    if (n < 4 || n > CONTROL_MAX_ELEMENTS + 1)
        return TERM_EDEPTH;
    at += 2;
    term_view el[CONTROL_MAX_ELEMENTS + 1];
    for (int k = 0; k < n - 1; k++) {
        size_t start = at;
        int rc = term_skip_cached(buf, len, &at, max_depth, seen ? &seen->atoms : NULL,
                                  seen ? &seen->sender : NULL);
        if (rc != TERM_OK)
            return rc;
        el[k] = (term_view){buf + start, at - start};
    }
    if (read_op(el[0], &c->op) < 0)
        return TERM_EDEPTH;
    int reason_last = ((c->op == DOP_EXIT || c->op == DOP_EXIT2) && n == 4) ||
                      ((c->op == DOP_EXIT_TT || c->op == DOP_EXIT2_TT || c->op == DOP_MONITOR_P_EXIT) && n == 5);
    if (!reason_last || term_skip_flat(buf, len, &at) != TERM_OK)
        return TERM_EDEPTH;
    el[n - 1] = (term_view){too_deep_atom, sizeof too_deep_atom};
    c->n = n - 1;
    memcpy(c->el, el + 1, (size_t)c->n * sizeof *el);
    *i = at;
    return 0;
}

/* why: a control message that is malformed, or names a third node's pid
 * or reference that node would refuse (term_sender in term.h). */
static void bad_control(char *why, size_t whylen, int rc)
{
    if (rc == TERM_EFOREIGN)
        snprintf(why, whylen, "control message passing on %s", term_strerror(rc));
    else
        snprintf(why, whylen, "malformed control message");
}

static int is_atom(term_view v)
{
    unsigned char tag = v.len ? (unsigned char)v.ptr[0] : 0;
    return tag == 100 || tag == 115 || tag == 118 || tag == 119;
}

static int is_pid(term_view v)
{
    return v.len && ((unsigned char)v.ptr[0] == 103 || (unsigned char)v.ptr[0] == 88);
}

static enum dist_result dropped(char *why, size_t whylen, const char *fmt, long op)
{
    snprintf(why, whylen, fmt, op);
    return DIST_DROPPED;
}

static enum dist_result deliver(process *p, term_view msg, const char *peer, size_t peer_len, char *why,
                                size_t whylen, long op)
{
    if (!p)
        return dropped(why, whylen, "message (op %ld) to no such process", op);
    if (!msg.ptr)
        return dropped(why, whylen, "send (op %ld) without a message", op);
    process_deliver_from(p, msg, peer, peer_len);
    return DIST_OK;
}

/* The process a SEND-like control message is for, or NULL. */
static process *recipient(process_table *t, const control *c)
{
    switch (c->op) {
    case DOP_SEND: case DOP_SEND_TT: case DOP_SEND_SENDER: case DOP_SEND_SENDER_TT:
        return c->n >= 2 && is_pid(c->el[1]) ? process_lookup(t, c->el[1]) : NULL;
    case DOP_REG_SEND: case DOP_REG_SEND_TT:
        return c->n >= 3 && is_atom(c->el[2]) ? process_resolve(t, c->el[2]) : NULL;
    default:
        return NULL;
    }
}

/* Is pid a process of the peer's own node? Links, monitors and exit signals
 * must come from the peer's processes, as ERTS requires (invalid_message
 * otherwise): what names another node would never be forgotten when the
 * peer goes, since it is the peer's name that its going forgets. */
/* Is t a pid (ref 0) or a reference (ref 1) of the peer's node? The usual
 * encodings, NEW_PID_EXT and NEWER_REFERENCE_EXT with the node as
 * SMALL_ATOM_UTF8_EXT, are compared in place. */
static inline __attribute__((always_inline)) int made_by_peer(term_view t, int ref, const char *peer, size_t peer_len)
{
    const char *node;
    size_t len, at = ref ? 3 : 1; /* the node's atom: after the tag (and a reference's Len) */
    unsigned char tag = t.len ? (unsigned char)t.ptr[0] : 0;
    if (t.len > at + 2 + peer_len && tag == (ref ? 90 : 88) && (unsigned char)t.ptr[at] == 119 &&
        (unsigned char)t.ptr[at + 1] == peer_len)
        return memcmp(t.ptr + at + 2, peer, peer_len) == 0;
    int kind_ok = ref ? tag == 90 || tag == 114 || tag == 101 : is_pid(t);
    return kind_ok && process_term_node(t, &node, &len) == 0 && len == peer_len && memcmp(node, peer, len) == 0;
}

static int of_peer(term_view pid, const char *peer, size_t peer_len)
{
    return made_by_peer(pid, 0, peer, peer_len);
}

/* A monitor's reference is made by the node that monitors: one of another
 * node's, a peer could only have predicted, to take that node's monitor in
 * advance (the first one with a reference stands, monitor_link.h). */
static int ref_of_peer(term_view ref, const char *peer, size_t peer_len)
{
    return made_by_peer(ref, 1, peer, peer_len);
}

/* Inlined where the common path calls it (dist_receive), as it was when
 * it had no other caller. */
static inline __attribute__((always_inline)) enum dist_result
apply(process_table *t, const char *peer, size_t peer_len, const control *c, term_view msg, char *why,
      size_t whylen)
{
#define NEED(count, cond) if (c->n < (count) || !(cond)) return DIST_EPROTO
#define FROM_PEER(i) of_peer(c->el[i], peer, peer_len)
    switch (c->op) {
    case DOP_SEND: case DOP_SEND_TT:               /* {2, Unused, To} */
    case DOP_SEND_SENDER: case DOP_SEND_SENDER_TT: /* {22, From, To} */
        NEED(2, is_pid(c->el[1]));
        return deliver(recipient(t, c), msg, peer, peer_len, why, whylen, c->op);
    case DOP_REG_SEND: case DOP_REG_SEND_TT:       /* {6, From, Unused, ToName} */
        NEED(3, is_atom(c->el[2]));
        return deliver(recipient(t, c), msg, peer, peer_len, why, whylen, c->op);
    case DOP_MONITOR_P: { /* {19, From, ToProc, Ref} */
        NEED(3, FROM_PEER(0));
        if (!ref_of_peer(c->el[2], peer, peer_len))
            return dropped(why, whylen, "a monitor (op %ld) with a reference of another node than the "
                           "sender's: refused", c->op);
        process *p = process_resolve(t, c->el[1]);
        if (!p)
            return process_monitor_noproc(t, c->el[1], c->el[0], c->el[2]) == 0
                       ? DIST_OK : dropped(why, whylen, "cannot answer monitor (op %ld)", c->op);
        if (process_monitor(p, c->el[0], c->el[2], c->el[1]) < 0)
            return dropped(why, whylen, "a monitor (op %ld) refused: its reference is another watcher's "
                           "monitor's already, or memory ran out", c->op);
        return DIST_OK;
    }
    case DOP_LINK: { /* {1, From, To} */
        NEED(2, FROM_PEER(0) && is_pid(c->el[1]));
        process *p = process_lookup(t, c->el[1]);
        if (!p) { /* linking to a process that is gone: it answers noproc at once */
            static const char noproc[] = {119, 6, 'n', 'o', 'p', 'r', 'o', 'c'};
            process_exit_remote(t, c->el[1], c->el[0], (term_view){noproc, sizeof noproc});
            return DIST_OK;
        }
        return process_link(p, c->el[0], 0) == 0 ? DIST_OK
                                                  : dropped(why, whylen, "out of memory for a link (op %ld)", c->op);
    }
    case DOP_UNLINK: { /* {4, From, To}: before OTP 26 */
        NEED(2, FROM_PEER(0));
        process *p = process_lookup(t, c->el[1]);
        if (p)
            process_unlink(p, c->el[0]);
        return DIST_OK;
    }
    case DOP_UNLINK_ID: { /* {35, Id, From, To}, acknowledged with {36, Id, To, From} */
        NEED(3, FROM_PEER(1));
        process *p = process_lookup(t, c->el[2]);
        if (p)
            process_unlink(p, c->el[1]);
        process_unlink_ack(t, c->el[0], c->el[2], c->el[1]);
        return DIST_OK;
    }
    case DOP_EXIT: case DOP_EXIT2: { /* {3 | 8, From, To, Reason} */
        NEED(3, FROM_PEER(0));
        process *p = process_lookup(t, c->el[1]);
        if (p)
            process_exit_signal(p, c->el[0], c->el[2], c->op == DOP_EXIT);
        return DIST_OK;
    }
    case DOP_EXIT_TT: case DOP_EXIT2_TT: { /* {13 | 18, From, To, Token, Reason} */
        NEED(4, FROM_PEER(0));
        process *p = process_lookup(t, c->el[1]);
        if (p)
            process_exit_signal(p, c->el[0], c->el[3], c->op == DOP_EXIT_TT);
        return DIST_OK;
    }
    case DOP_UNLINK_ID_ACK:
        return DIST_OK;
    case DOP_MONITOR_P_EXIT: { /* {21, FromProc, ToPid, Ref, Reason}: a monitor of ours fired */
        NEED(4, FROM_PEER(0) && is_pid(c->el[1]));
        process *p = process_lookup(t, c->el[1]);
        if (p)
            process_watch_fired(p, c->el[2], c->el[0], c->el[3]);
        return DIST_OK;
    }
    case DOP_DEMONITOR_P: { /* {20, From, ToProc, Ref} */
        NEED(3, FROM_PEER(0));
        process *p = process_resolve(t, c->el[1]);
        if (p)
            process_demonitor(p, c->el[0], c->el[2]);
        return DIST_OK;
    }
    default:
        return dropped(why, whylen, "control message op %ld is not handled", c->op);
    }
#undef FROM_PEER
#undef NEED
}

/* The control tuple and the message of a frame of a shape already accepted
 * (dist_memo.h): where the terms lie comes from the memo, what they say from
 * the frame. */
static int recall(const char *frame, size_t len, const dist_memo_terms *t, control *c, term_view *msg)
{
    if (read_op((term_view){frame + t->at[0], t->len[0]}, &c->op) < 0)
        return -1; /* cannot be: the op's tag is a shape byte */
    c->n = t->n - 1;
    for (int k = 1; k < t->n; k++)
        c->el[k - 1] = (term_view){frame + t->at[k], t->len[k]};
    if (t->msg_at)
        *msg = (term_view){frame + t->msg_at, len - t->msg_at};
    return 0;
}

#ifdef GEN_CNODE_CHECK_MEMO
/* Sanitizer and fuzzing builds (the Makefile defines GEN_CNODE_CHECK_MEMO):
 * a frame the memo accepts is checked whole as well, and must come out the
 * same, or the process aborts for the sanitizers and the fuzzers to see. */
static void check_recalled(const char *frame, size_t len, unsigned max_depth, const control *c,
                           term_view msg)
{
    size_t i = 2;
    control full;
    term_view el[CONTROL_MAX_ELEMENTS + 1];
    int arity, ok = decode_control(frame, len, &i, &full, NULL, max_depth, el, &arity) == 0 && full.op == c->op &&
                    full.n == c->n;
    for (int k = 0; ok && k < c->n; k++)
        ok = full.el[k].ptr == c->el[k].ptr && full.el[k].len == c->el[k].len;
    if (ok && i < len) {
        size_t start = i + 1;
        i = start;
        ok = (unsigned char)frame[start - 1] == VERSION_MAGIC && term_skip(frame, len, &i, max_depth) == TERM_OK &&
             i == len && msg.ptr == frame + start && msg.len == len - start;
    } else if (ok) {
        ok = msg.ptr == NULL;
    }
    if (!ok) {
        log_error("dist_memo accepted a frame of %zu bytes that the whole check does not", len);
        abort();
    }
}
#endif

/* What the memo keeps of an accepted frame: where its terms lie. */
static void remember(dist_memo *m, const char *frame, size_t len, const term_view *el, int n,
                     const term_view *msg)
{
    if (len > DIST_MEMO_BYTES || n > DIST_MEMO_TERMS)
        return;
    dist_memo_terms t = {.n = n, .msg_at = (uint16_t)(msg->ptr ? msg->ptr - frame : 0)};
    for (int k = 0; k < n; k++) {
        t.at[k] = (uint16_t)(el[k].ptr - frame);
        t.len[k] = (uint16_t)el[k].len;
    }
    dist_memo_learn(m, frame, len, &t);
}

/* A frame whose control message is nested deeper than max_depth: one
 * signal whose reason is (decode_deep_reason) is applied with too_deep for
 * it, anything else is malformed. Off the common path, and never
 * remembered (dist_memo): its views are not all in the frame. */
__attribute__((noinline, cold)) static enum dist_result
receive_deep_reason(process_table *t, const char *peer, size_t peer_len, const char *frame, size_t len,
                    unsigned max_depth, dist_seen *seen, char *why, size_t whylen)
{
    control c;
    size_t i = 2;
    int rc = decode_deep_reason(frame, len, &i, &c, seen, max_depth);
    if (rc != 0 || i != len) { /* these signals carry no message */
        bad_control(why, whylen, rc ? rc : TERM_EBAD);
        return DIST_EPROTO;
    }
    enum dist_result r = apply(t, peer, peer_len, &c, (term_view){NULL, 0}, why, whylen);
    if (r == DIST_EPROTO)
        snprintf(why, whylen, "malformed control message (op %ld)", c.op);
    else if (r == DIST_OK) {
        snprintf(why, whylen, "an exit signal or DOWN (op %ld) whose reason is nested deeper than "
                 "--max-depth (%u): taken with the reason too_deep", c.op, max_depth);
        r = DIST_ALTERED;
    }
    return r;
}

enum dist_result dist_receive(process_table *t, const char *peer, size_t peer_len, const char *frame,
                              size_t len, unsigned max_depth, dist_seen *seen, char *why,
                              size_t whylen)
{
    if (len < 2 || (unsigned char)frame[0] != PASS_THROUGH || (unsigned char)frame[1] != VERSION_MAGIC) {
        snprintf(why, whylen, "unexpected frame (type %u)", len ? (unsigned char)frame[0] : 0);
        return DIST_EPROTO;
    }
    control c;
    term_view msg = {NULL, 0};
    const dist_memo_terms *known = seen ? dist_memo_find(&seen->frames, frame, len) : NULL;
    if (known) {
        if (recall(frame, len, known, &c, &msg) < 0) {
            snprintf(why, whylen, "malformed control message");
            return DIST_EPROTO;
        }
#ifdef GEN_CNODE_CHECK_MEMO
        check_recalled(frame, len, max_depth, &c, msg);
#endif
    } else {
        size_t i = 2;
        unsigned long long asked = seen ? seen->sender.checked : 0;
        term_view el[CONTROL_MAX_ELEMENTS + 1];
        int arity, rc = decode_control(frame, len, &i, &c, seen, max_depth, el, &arity);
        if (rc == TERM_EDEPTH)
            return receive_deep_reason(t, peer, peer_len, frame, len, max_depth, seen, why, whylen);
        if (rc != 0) {
            bad_control(why, whylen, rc);
            return DIST_EPROTO;
        }
        if (i < len) {
            if ((unsigned char)frame[i] != VERSION_MAGIC) {
                snprintf(why, whylen, "message without version byte");
                return DIST_EPROTO;
            }
            size_t start = ++i;
            rc = term_skip_cached(frame, len, &i, max_depth, seen ? &seen->atoms : NULL,
                                  seen ? &seen->sender : NULL);
            if (rc == TERM_EDEPTH || rc == TERM_EUNSUPPORTED || rc == TERM_EZEROKEYS) {
                /* Well-framed, but not one we take: it costs itself only. The
                 * recipient answers it if it is a call; the node logs it. The
                 * answer goes to the From in it, whose ids are checked first,
                 * as dist_refuse_oversized checks them: the walk above may
                 * have stopped before them. */
                process *p = recipient(t, &c);
                size_t j = start;
                if (p && term_skip_cached(frame, len, &j, 16, seen ? &seen->atoms : NULL,
                                          seen ? &seen->sender : NULL) == TERM_EFOREIGN) {
                    snprintf(why, whylen, "message (op %ld) passing on %s", c.op, term_strerror(TERM_EFOREIGN));
                    return DIST_EPROTO;
                }
                if (p)
                    process_refuse(p, (term_view){frame + start, len - start},
                                   rc == TERM_EDEPTH ? "too_deep" : "unsupported");
                snprintf(why, whylen, "a message of %zu bytes (op %ld) %s: %s", len, c.op,
                         p ? "refused" : "to no such process dropped", term_strerror(rc));
                return DIST_DROPPED;
            }
            if (rc == TERM_EFOREIGN) {
                snprintf(why, whylen, "message (op %ld) passing on %s", c.op, term_strerror(rc));
                return DIST_EPROTO;
            }
            if (rc != TERM_OK || i != len) {
                snprintf(why, whylen, "malformed message: %s", rc ? term_strerror(rc) : "trailing bytes");
                return DIST_EPROTO;
            }
            msg = (term_view){frame + start, len - start};
        }
        /* A frame whose ids a third node was asked about is not remembered:
         * the answer depends on who is connected, which changes. */
        if (seen && seen->sender.checked == asked)
            remember(&seen->frames, frame, len, el, arity, &msg);
    }
    enum dist_result r = apply(t, peer, peer_len, &c, msg, why, whylen);
    if (r == DIST_EPROTO)
        snprintf(why, whylen, "malformed control message (op %ld)", c.op);
    return r;
}

enum dist_result dist_refuse_oversized(process_table *t, const char *head, size_t have, size_t len,
                                       size_t max, dist_seen *seen, char *why, size_t whylen)
{
    if (have < 2 || (unsigned char)head[0] != PASS_THROUGH || (unsigned char)head[1] != VERSION_MAGIC) {
        snprintf(why, whylen, "a frame of %zu bytes over the %zu-byte limit (--max-message) that is "
                 "not a message (type %u)", len, max, have ? (unsigned char)head[0] : 0);
        return DIST_EPROTO;
    }
    size_t i = 2;
    control c;
    term_view el[CONTROL_MAX_ELEMENTS + 1];
    int arity;
    if (decode_control(head, have, &i, &c, seen, CONTROL_OVERSIZED_DEPTH, el, &arity) != 0) {
        snprintf(why, whylen, "a frame of %zu bytes over the %zu-byte limit (--max-message) whose "
                 "control message is not whole and well-formed in its first %zu bytes", len, max, have);
        return DIST_EPROTO;
    }
    process *p = recipient(t, &c);
    if (p && i < have && (unsigned char)head[i] == VERSION_MAGIC) {
        /* The answer goes to the From in these bytes: its ids are checked
         * as a whole message's would be (a forged pid of a third node there
         * would have the answer cut this node off from that node). The
         * walk ends where the bytes do; a From deeper than 16 goes
         * unanswered (gen_server.c reads one of at most 8). */
        size_t j = i + 1;
        if (term_skip_cached(head, have, &j, 16, seen ? &seen->atoms : NULL, seen ? &seen->sender : NULL) ==
            TERM_EFOREIGN) {
            snprintf(why, whylen, "a message of %zu bytes (op %ld) over the %zu-byte limit (--max-message) "
                     "passing on %s", len, c.op, max, term_strerror(TERM_EFOREIGN));
            return DIST_EPROTO;
        }
        process_refuse(p, (term_view){head + i + 1, have - i - 1}, "too_large");
    }
    snprintf(why, whylen, "a message of %zu bytes (op %ld) over the %zu-byte limit (--max-message) %s",
             len, c.op, max, p ? "refused" : "dropped");
    return DIST_DROPPED;
}

/* ---- out ---- */

/* Start a frame: room for its length, 'p', 131, and a control tuple header of
 * `arity` with the op. Returns the frame's offset in out, or -1. */
static long begin(buffer *out, int arity, int op, size_t extra)
{
    if (buffer_reserve(out, 4 + 2 + 2 + 2 + extra) < 0)
        return -1;
    long at = (long)out->end;
    char *p = buffer_tail(out);
    p[4] = (char)PASS_THROUGH;
    p[5] = (char)VERSION_MAGIC;
    p[6] = 104;
    p[7] = (char)arity;
    p[8] = 97;
    p[9] = (char)op;
    out->end += 10;
    return at;
}

static void put_view(buffer *out, term_view v)
{
    memcpy(buffer_tail(out), v.ptr, v.len);
    out->end += v.len;
}

static void put_msg(buffer *out, term_view msg)
{
    *buffer_tail(out) = (char)VERSION_MAGIC;
    out->end++;
    put_view(out, msg);
}

static int finish(buffer *out, long at)
{
    size_t n = out->end - (size_t)at - 4;
    if (n > UINT32_MAX) {
        out->end = (size_t)at;
        return -1;
    }
    put_u32(out->data + at, (uint32_t)n);
    return 0;
}

/* A whole frame: {op, parts...}, then msg when msg.ptr is set. */
static int encode(buffer *out, int op, int n, const term_view *parts, term_view msg)
{
    size_t len = msg.ptr ? 1 + msg.len : 0;
    for (int i = 0; i < n; i++)
        len += parts[i].len;
    long at = begin(out, n + 1, op, len);
    if (at < 0)
        return -1;
    for (int i = 0; i < n; i++)
        put_view(out, parts[i]);
    if (msg.ptr)
        put_msg(out, msg);
    return finish(out, at);
}

static const char no_cookie[] = {119, 0};
#define NO_MSG ((term_view){NULL, 0})
#define PARTS(...) (int)(sizeof((term_view[]){__VA_ARGS__}) / sizeof(term_view)), (term_view[]){__VA_ARGS__}

int dist_encode_send(buffer *out, term_view to_pid, term_view msg)
{
    return encode(out, DOP_SEND, PARTS({no_cookie, sizeof no_cookie}, to_pid), msg);
}

int dist_encode_reg_send(buffer *out, term_view from, term_view name, term_view msg)
{
    return encode(out, DOP_REG_SEND, PARTS(from, {no_cookie, sizeof no_cookie}, name), msg);
}

int dist_encode_alias_send(buffer *out, term_view from, term_view alias, term_view msg)
{
    return encode(out, DOP_ALIAS_SEND, PARTS(from, alias), msg);
}

int dist_encode_monitor_exit(buffer *out, term_view watched, term_view watcher, term_view ref,
                             term_view reason)
{
    return encode(out, DOP_MONITOR_P_EXIT, PARTS(watched, watcher, ref, reason), NO_MSG);
}

int dist_encode_link(buffer *out, term_view from, term_view to)
{
    return encode(out, DOP_LINK, PARTS(from, to), NO_MSG);
}

int dist_encode_exit(buffer *out, term_view from, term_view to, term_view reason)
{
    return encode(out, DOP_EXIT, PARTS(from, to, reason), NO_MSG);
}

int dist_encode_unlink_ack(buffer *out, term_view id, term_view from, term_view to)
{
    return encode(out, DOP_UNLINK_ID_ACK, PARTS(id, from, to), NO_MSG);
}

int dist_encode_unlink_id(buffer *out, term_view id, term_view from, term_view to)
{
    return encode(out, DOP_UNLINK_ID, PARTS(id, from, to), NO_MSG);
}

int dist_encode_monitor(buffer *out, term_view from, term_view to, term_view ref)
{
    return encode(out, DOP_MONITOR_P, PARTS(from, to, ref), NO_MSG);
}

int dist_encode_demonitor(buffer *out, term_view from, term_view to, term_view ref)
{
    return encode(out, DOP_DEMONITOR_P, PARTS(from, to, ref), NO_MSG);
}

int dist_encode_tick(buffer *out)
{
    static const char tick[4] = {0, 0, 0, 0};
    return buffer_append(out, tick, sizeof tick);
}

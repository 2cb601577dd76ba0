/*
 * dist.h: the distribution protocol's control messages, in and out.
 * In: one frame from a connected peer (after its 4-byte length) is checked
 * (every term against the bytes present and the depth limit) and applied to
 * the process table: messages delivered (SEND, REG_SEND and their variants),
 * monitors set and removed (MONITOR_P, DEMONITOR_P; a monitor of nothing is
 * answered with DOWN noproc at once), links made and undone (LINK, UNLINK_ID,
 * acknowledged), exit signals passed on (EXIT, EXIT2 and their _TT forms). Out: frames appended to a connection's
 * output buffer, encoded in place, without intermediate copies.
 *
 * It knows processes (process.h) and terms; of connections it knows only
 * the buffer it is given.
 */
#ifndef GEN_CNODE_DIST_H
#define GEN_CNODE_DIST_H

#include "buffer.h"
#include "dist_memo.h"
#include "process.h"
#include "term.h"

enum dist_op {
    DOP_LINK = 1, DOP_SEND = 2, DOP_EXIT = 3, DOP_UNLINK = 4, DOP_REG_SEND = 6,
    DOP_GROUP_LEADER = 7, DOP_EXIT2 = 8, DOP_SEND_TT = 12, DOP_EXIT_TT = 13,
    DOP_REG_SEND_TT = 16, DOP_EXIT2_TT = 18, DOP_MONITOR_P = 19, DOP_DEMONITOR_P = 20,
    DOP_MONITOR_P_EXIT = 21, DOP_SEND_SENDER = 22, DOP_SEND_SENDER_TT = 23,
    DOP_ALIAS_SEND = 33, DOP_ALIAS_SEND_TT = 34, DOP_UNLINK_ID = 35, DOP_UNLINK_ID_ACK = 36
};

enum dist_result {
    DIST_OK = 0,
    DIST_DROPPED = 1,  /* well-formed, but not acted on (reason in why) */
    DIST_ALTERED = 2,  /* acted on, but not quite as sent (what changed in why) */
    DIST_EPROTO = -1,  /* malformed: the connection should be closed */
};

/* What one connection remembers of the frames its peer sent, so as to check
 * less: the atoms that passed (term.h) and the shapes of whole frames that
 * did (dist_memo.h); and who the peer is, with whom to ask about the pids
 * and references of third nodes it passes on (term_sender in term.h; the
 * connection layer fills it in). A zeroed struct remembers nothing and asks
 * nobody. */
typedef struct dist_seen {
    term_atom_cache atoms;
    dist_memo frames;
    term_sender sender;
} dist_seen;

/* Apply one frame from the node named peer (peer_len bytes). A link,
 * unlink, monitor, demonitor or exit signal whose sender is not a process
 * of that node is malformed (ERTS closes the connection too), as is one
 * with a third node's pid or reference that seen->sender's check refuses.
 * A message deeper than max_depth is refused (a call answered too_deep);
 * an exit signal or DOWN whose reason is deeper is taken with the reason
 * too_deep (DIST_ALTERED). seen: the connection's memory of its peer's
 * frames, or NULL. */
enum dist_result dist_receive(process_table *t, const char *peer, size_t peer_len, const char *frame,
                              size_t len, unsigned max_depth, dist_seen *seen, char *why,
                              size_t whylen);

/* A frame of len bytes, over the limit max, of which the first have bytes
 * (head) are here and the rest will be drained unread: decode its control
 * message from head and tell the recipient, if any, that its message is
 * too_large (a call is answered). DIST_DROPPED with why saying so, or
 * DIST_EPROTO when head is not a message whose control message is whole
 * and well-formed (the stream can no longer be trusted), or when what it
 * has of the message passes on a forged id of a third node (term.h). */
enum dist_result dist_refuse_oversized(process_table *t, const char *head, size_t have, size_t len,
                                       size_t max, dist_seen *seen, char *why, size_t whylen);

/* Append a whole frame (length included) to out; 0, or -1 when out of memory. */
int dist_encode_send(buffer *out, term_view to_pid, term_view msg);
int dist_encode_alias_send(buffer *out, term_view from, term_view alias, term_view msg);
int dist_encode_monitor_exit(buffer *out, term_view watched, term_view watcher, term_view ref,
                             term_view reason);
int dist_encode_reg_send(buffer *out, term_view from, term_view name, term_view msg);
int dist_encode_link(buffer *out, term_view from, term_view to);
int dist_encode_exit(buffer *out, term_view from, term_view to, term_view reason);
int dist_encode_unlink_ack(buffer *out, term_view id, term_view from, term_view to);
int dist_encode_unlink_id(buffer *out, term_view id, term_view from, term_view to);
int dist_encode_monitor(buffer *out, term_view from, term_view to, term_view ref);
int dist_encode_demonitor(buffer *out, term_view from, term_view to, term_view ref);
/* An empty frame: the tick that keeps a connection alive. */
int dist_encode_tick(buffer *out);

#endif

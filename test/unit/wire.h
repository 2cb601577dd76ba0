/*
 * wire.h: for the unit tests, a process router that writes what processes
 * send as the frames the node would put on the wire, and helpers to read
 * those frames back and to build the frames a BEAM node sends.
 */
#ifndef GEN_CNODE_TEST_WIRE_H
#define GEN_CNODE_TEST_WIRE_H

#include <ei.h>

#include "dist.h"

#define NODE "kv@127.0.0.1"
#define CREATION 4242
#define PEER "t@127.0.0.1" /* the node the frames come from, and its callers' pids */

extern buffer wire;                      /* frames written, oldest first */
extern const process_router wire_router; /* every peer runs OTP 25 */

/* The oldest frame: its op; *ctrl the index of the control tuple's second
 * element in *buf, *msg the index of the message (-1 when none). */
long next_frame(const char **buf, int *ctrl, int *msg);
void drop_frame(void);
void wire_reset(void);

erlang_pid caller(unsigned num);
erlang_ref ref(unsigned n);
/* Feed 'p', ctrl, msg (msg may be NULL) to dist_receive, then settle the
 * table, as the node's loop turn does. */
enum dist_result feed(process_table *t, ei_x_buff *ctrl, ei_x_buff *msg);

#endif

/* Deliver msg (an ei_x_buff with version byte) from `from` to the registered
 * name `to_name`, or (to_name NULL) to the pid to_pid, as REG_SEND or SEND. */
enum dist_result wire_send(process_table *t, const erlang_pid *from, const char *to_name,
                           term_view to_pid, ei_x_buff *msg);
/* {Label, {From, Tag}, Req} for label "$gen_call" or "system", tag a plain ref(n). */
void wire_request(ei_x_buff *m, const char *label, const erlang_pid *from, unsigned tag);
/* A control message {Op, A, B, C...} of pids/refs/terms already encoded in parts. */
enum dist_result wire_control(process_table *t, long op, int n, const term_view *parts);
/* The reply {Tag, Reply} at the head of the wire: Reply's index, after checking Tag is ref(n). */
int wire_reply(unsigned tag, const char **buf);

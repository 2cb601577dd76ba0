/*
 * process.h: the node's processes. A process has a pid of this node, may
 * have a registered name, is watched by monitors (tracked by their
 * reference), may be linked to remote processes, and has a behaviour that
 * receives its messages (gen_server is one). Processes reach other nodes
 * only through the process_router the node hands in: this file knows no
 * sockets, frames or control messages.
 *
 * Exit signals follow OTP: a process that traps exits gets them as
 * {'EXIT', From, Reason} messages; one that does not ignores `normal` from
 * others and stops with any other reason (`kill` stops even a trapping process,
 * with reason `killed`). A stopping process sends DOWN to its monitors and EXIT
 * to its links. System processes (the node's own: net_kernel, the starter,
 * the release probe) ignore exit signals from peers, `kill` included: a peer
 * cannot take away what every other peer needs.
 *
 * LIFETIMES: nothing is freed while code up the stack may still hold it.
 * This is the rule timers, worker jobs and outgoing connections build on.
 *   - process_exit only marks a process. From then on it is found neither
 *     by pid nor by name and receives nothing, but its memory, its
 *     behaviour's state, its monitors and its links stay until
 *     process_table_settle, which the node calls between loop turns when no
 *     callback is running. There the behaviour is destroyed (terminate runs),
 *     DOWN and EXIT go out, and the process is freed.
 *   - A message from a process to a process of this node is queued, never
 *     handed over inside the sender's callback; process_table_settle
 *     delivers it. No behaviour is ever re-entered.
 *   - So a process pointer is good until the next settle. Across turns keep
 *     a pid (or number) and look it up again.
 *   - The router may fail a send but never tears anything down inside one:
 *     a connection that must close is only marked by the node, and closed,
 *     with process_forget_node, at its next safe point.
 *
 * The table keeps its processes sorted by number and its registered ones by
 * name, so a message finds its process by binary search however many run;
 * monitors and links are hashed (monitor_link.h).
 *
 * Every term here is a term_view: encoded bytes without the version byte.
 * Views passed in are only borrowed for the call; what must outlive it is
 * copied.
 */
#ifndef GEN_CNODE_PROCESS_H
#define GEN_CNODE_PROCESS_H

#include <stddef.h>
#include <stdint.h>

#include <ei.h>

#include "term.h"

typedef struct process process;
typedef struct process_table process_table;

/* How processes reach other nodes; implemented by the node. Each returns 0,
 * or -1 when the message cannot go out (no connection to that node, or one
 * that is closing): it is dropped, as a BEAM node drops a message to a node
 * it cannot reach. None of them may free a process or run a behaviour. */
typedef struct process_router {
    void *ctx;
    int (*send)(void *ctx, term_view from, term_view to_pid, term_view msg);
    int (*send_alias)(void *ctx, term_view from, term_view alias, term_view msg);
    /* {'DOWN', Ref, process, Watched, Reason} for watcher. */
    int (*monitor_exit)(void *ctx, term_view watched, term_view watcher, term_view ref,
                        term_view reason);
    /* Link signals to a remote process: LINK, EXIT, UNLINK_ID_ACK. */
    int (*link)(void *ctx, term_view from, term_view to);
    int (*exit)(void *ctx, term_view from, term_view to, term_view reason);
    int (*unlink_ack)(void *ctx, term_view id, term_view from, term_view to);
    /* The OTP release (25, 27, ...) of the node of pid, or 0 when unknown. */
    int (*release)(void *ctx, term_view pid);
    /* msg to the process registered as name (an atom) on node (an atom). */
    int (*reg_send)(void *ctx, term_view from, term_view name, term_view node, term_view msg);
    /* UNLINK_ID (id: an integer) for a link this side removes. */
    int (*unlink)(void *ctx, term_view id, term_view from, term_view to);
    /* MONITOR_P and DEMONITOR_P for a monitor a process of ours sets on a
     * remote one (process_watch). */
    int (*monitor)(void *ctx, term_view from, term_view to, term_view ref);
    int (*demonitor)(void *ctx, term_view from, term_view to, term_view ref);
    /* Start connecting to node (name, len bytes of UTF-8) if it is not
     * connected or being connected to: 0, or -1 (logged). Optional. */
    int (*connect)(void *ctx, const char *node, size_t len);
    /* Is node connected (its handshake done, not closing)? Optional. */
    int (*connected)(void *ctx, const char *node, size_t len);
} process_router;

/* What a process does with what it receives. */
typedef struct process_behaviour {
    /* One message, already checked to be exactly one well-formed term. */
    void (*message)(process *self, term_view msg);
    /* The process is going away with reason: release the behaviour's state. */
    void (*destroy)(process *self, term_view reason);
    /* Optional: a connected node went away (its monitors and links are
     * already gone); called only for processes that asked for it
     * (process_want_node_down). */
    void (*node_down)(process *self, const char *node, size_t len);
    /* Optional: the batch of messages that arrived together has been handled,
     * and its replies are about to go out (see process_want_flush). */
    void (*flush)(process *self);
    /* A message for p that could not be accepted: why is an atom's text,
     * too_deep (nested deeper than --max-depth) or too_large (over
     * --max-message: raw is then only its first bytes). If it is a call,
     * answer {error, {bad_request, why}}; the node has logged it already.
     * raw is NOT checked: read it only through term_skip. */
    void (*refused)(process *self, term_view raw, const char *why);
} process_behaviour;

process_table *process_table_create(const char *node, uint32_t creation,
                                    const process_router *router);
/* Destroys every process (without DOWN messages: the node is going away;
 * no queued job starts meanwhile), then the worker pool: queued jobs dropped, running ones waited for (for
 * the grace process_table_set_workers gave), and every job's done run with
 * a NULL process, after every terminate. Returns how many jobs were still
 * running after the grace: their threads are left to the process's exit,
 * and the code they run must stay loaded. */
size_t process_table_destroy(process_table *t);
const char *process_table_node(const process_table *t);

process *process_spawn(process_table *t, const process_behaviour *behaviour, void *state);
/* Register name (UTF-8) for p; -1 if the name is taken or p already has one. */
int process_register(process *p, const char *name);
/* The process stops with reason (see LIFETIMES: it is marked now, torn down
 * at the next settle, where its behaviour is destroyed, every monitor gets
 * DOWN and every link EXIT with reason). The first reason stands. */
void process_exit(process *p, term_view reason);
int process_exiting(const process *p);
/* Why it stops (a term), once it is stopping; else an empty view. */
term_view process_exit_reason(const process *p);

/* Deliver what processes sent each other, then tear down the processes that
 * stopped (and those their going stops in turn). Called by the node at its
 * safe points. Returns nonzero when messages sent during this settle wait for
 * the next one (the loop should not sleep). */
int process_table_settle(process_table *t);
/* Whether messages wait for a settle. */
int process_table_has_mail(const process_table *t);

/* Exit signals as they arrive from other processes. */
void process_set_trap_exit(process *p, int on);
int process_trap_exit(const process *p);
/* Make p a system process: exit signals to it are logged and ignored. */
void process_set_system(process *p);
int process_is_system(const process *p);
/* An EXIT2 (exit/2 from `from`), or, with via_link, an EXIT from a linked process. */
void process_exit_signal(process *p, term_view from, term_view reason, int via_link);

/* Links with remote processes. process_link also tells the other side when
 * notify is set (a link this side asked for); when that side's node cannot
 * be reached, no link is kept and p gets the exit signal noconnection, as
 * OTP's link/1 gives it. 0, or -1 when out of memory. */
int process_link(process *p, term_view other, int notify);
/* Connect to node (the router's connect): 0, or -1. */
int process_connect(process_table *t, const char *node, size_t len);
/* Is node connected now (the router's connected)? 1 or 0. A {nodeup, Node}
 * message may be a peer's forgery: this is what a watcher asks. */
int process_connected(process_table *t, const char *node, size_t len);
/* Have p's behaviour told when a node goes away (its node_down), for as
 * long as p lives. A node's going walks only the processes that asked so,
 * and those with monitors, links or watches set up since the last one. */
void process_want_node_down(process *p);
/* Have p told {nodeup, Node} (a message, delivered at the next settle)
 * whenever a connection to a node comes up, for as long as it lives, as
 * net_kernel:monitor_nodes/1 does (nodedown is what process_behaviour's
 * node_down says). 0, or -1 when out of memory. */
int process_monitor_nodes(process *p);
/* A connection to node came up (the node calls this; safe anywhere: it
 * only queues). */
void process_table_node_up(process_table *t, const char *node, size_t len);
void process_unlink(process *p, term_view other);
/* Remove p's link to other and tell the other side (UNLINK_ID). */
int process_unlink_remote(process *p, term_view other);
size_t process_link_count(const process *p);

process *process_whereis(process_table *t, const char *name, size_t len);
/* Was a process registered as name stopped, and not yet torn down (its
 * terminate runs at the next settle)? Its name is free already, as in OTP
 * once a process is gone; what it holds (a folder's lock, say) is not. */
int process_name_releasing(const process_table *t, const char *name, size_t len);
/* The live process of this node that `pid` names, or NULL. */
process *process_lookup(process_table *t, term_view pid);
/* pid_or_name: a pid, or a registered name as an atom. */
process *process_resolve(process_table *t, term_view pid_or_name);

term_view process_pid(const process *p);
uint32_t process_number(const process *p); /* the pid's id: <node.N.0> */
const char *process_name(const process *p); /* NULL when not registered */
process_table *process_table_of(const process *p);
void *process_state(const process *p);
size_t process_count(const process_table *t);
/* At most max processes at once (0: no limit); process_spawn refuses more. */
void process_table_set_limit(process_table *t, size_t max);
int process_table_full(const process_table *t);

/* Have p's behaviour flush at the end of this batch (once, however often asked). */
void process_want_flush(process *p);
/* Run the flushes asked for; the node calls this once per loop turn, before
 * that turn's replies are written. Those asking again run at the next one. */
void process_table_flush(process_table *t);

/* Tell p's behaviour of a message it cannot be given (see refused). */
void process_refuse(process *p, term_view raw, const char *why);

/* Hand msg (exactly one checked term, nothing after it: behaviours take the
 * last element of a tuple to run to msg's end) to p's behaviour now. Only for the node's own
 * top level (a frame from a peer): processes send with process_send. */
void process_deliver(process *p, term_view msg);
/* The same for a message a peer's connection brought: while p handles it,
 * process_sender_node says node (len bytes). */
void process_deliver_from(process *p, term_view msg, const char *node, size_t len);
/* The node whose connection brought the message p is handling (*len bytes),
 * or NULL when it came from this node (a local send, a timer, the node's
 * own notices). Whatever pids a message names, this is where it came from:
 * the only node a peer cannot forge. (A gen_server that was suspended
 * handles its queued messages while it handles the resume: they read as
 * the resume's sender. The pg scopes cannot be suspended.) */
const char *process_sender_node(const process *p, size_t *len);

/* Whose doing what runs now sends is: a number the router shares its own
 * scarce resources by (the node's dial slots), opaque here. The node sets
 * it to the serial of the connection whose frame it handles, and to 0 (its
 * own doing) between frames; a reply to a held caller is the doing of the
 * connection that brought the call (gen_server's gcn_hold keeps it). One
 * per thread: the loop's is the one that counts. process_set_cause returns
 * the cause it replaces. */
uint32_t process_cause(void);
uint32_t process_set_cause(uint32_t cause);

/* Send msg from `from`: to a process of this node it is queued (delivered at
 * the next settle), to a remote one it goes through the router. */
int process_send(process *from, term_view to_pid, term_view msg);
int process_send_alias(process *from, term_view alias, term_view msg);
/* Send msg to the process registered as name on another node (both atoms). */
int process_send_registered(process *from, term_view name, term_view node, term_view msg);

/* A remote watcher monitors target; `watched` is how it named the target
 * (pid or name atom), echoed in the DOWN. */
int process_monitor(process *target, term_view watcher, term_view ref, term_view watched);
/* Remove the monitor with this reference that watcher set; a no-op when
 * there is none (or another watcher's: a reference names one monitor). O(1). */
void process_demonitor(process *target, term_view watcher, term_view ref);
size_t process_monitor_count(const process *p);
/* Answer a monitor of something that does not exist: DOWN with noproc at once. */
int process_monitor_noproc(process_table *t, term_view watched, term_view watcher, term_view ref);
/* Key comparisons made finding monitors and links so far (for tests of their cost). */
uint64_t process_table_probes(const process_table *t);
/* Processes looked at by process_forget_node so far: for tests that hold a
 * node's going to what concerns it. */
uint64_t process_table_forget_visits(const process_table *t);
/* Records (monitors, links, watches) process_forget_node looked at: those
 * of the node that went only, for tests that hold it to that. */
uint64_t process_table_forget_records(const process_table *t);

/* p monitors target (a pid, of this node or another): the reference is
 * written to ref (room for PROCESS_REF_MAX bytes) and its length returned,
 * or -1 (out of memory, or target no pid). When target stops, p gets
 * {'DOWN', Ref, process, Target, Reason}; when its node goes, or is not
 * connected, Reason is noconnection (delivered at the next settle); a
 * target of this node that does not exist gives noproc. */
#define PROCESS_REF_MAX 280
int process_watch(process *p, term_view target, char *ref);
/* Take a monitor of p's off (its target is told). 1 if it was on; 0 if
 * there was none, or if it had fired and its DOWN waits to be delivered:
 * that DOWN is then not delivered. */
int process_unwatch(process *p, term_view ref);
/* A monitor p set fired (MONITOR_P_EXIT from the target's node). */
void process_watch_fired(process *p, term_view ref, term_view target, term_view reason);

/* A node went away: forget every monitor its processes held; every link to
 * one of them becomes an exit signal `noconnection`; behaviours are told.
 * For the node's safe points only (see LIFETIMES). */
void process_forget_node(process_table *t, const char *node, size_t len);

/* The release of the node of pid, as the router knows it (0: unknown). */
int process_release_of(process_table *t, term_view pid);
/* An exit signal from `from` (maybe no longer a process) to a remote process. */
int process_exit_remote(process_table *t, term_view from, term_view to, term_view reason);
/* Send an UNLINK_ID_ACK. */
int process_unlink_ack(process_table *t, term_view id, term_view from, term_view to);

/* ---- timers and worker jobs (see LIFETIMES: both arrive at the node's top
 * level, never inside a callback) ---- */

/* Deliver msg (copied) to p as a message once the clock (CLOCK_MONOTONIC,
 * in microseconds) reaches due_us. Returns the timer's id (never 0), or 0 when out of memory.
 * A process's timers go with it when it stops. */
uint64_t process_send_after(process *p, uint64_t due_us, term_view msg);
/* Cancel one of p's timers: 1 if it was pending, else 0 (fired, cancelled,
 * another process's, or no timer at all). */
int process_cancel_timer(process *p, uint64_t id);
/* The earliest due timer of any process: 1 and its time, or 0 when none. */
int process_table_next_timer(const process_table *t, uint64_t *due_us);
/* Deliver the timers due by now_us, PROCESS_TIMERS_PER_TURN at most (the
 * rest stay due, and the next turn's wait is 0: sockets are served between
 * batches of a million timers due at once); returns how many. The node
 * calls this at the start of its safe point. */
#define PROCESS_TIMERS_PER_TURN 4096
size_t process_table_run_timers(process_table *t, uint64_t now_us);

/* Jobs for the worker pool the node hands in (workers.h; the table owns it
 * from then on). done runs on the
 * node's thread, from process_table_collect_jobs, with the process that
 * submitted the job, or NULL when it has stopped since (ran is 0 when the
 * job was dropped unrun: the node is stopping). */
struct workers;
typedef void process_job_run(void *job);
typedef void process_job_done(process *p, void *job, int ran);
/* grace_ms: how long a stopping node waits for running jobs (< 0: no limit). */
void process_table_set_workers(process_table *t, struct workers *w, long grace_ms);
/* 0, or -1 (no pool; PROCESS_MAX_JOBS of p's own not back yet; the pool's
 * queue full or stopping; out of memory: the job is not taken). One
 * server's jobs take a quarter of the pool's queue at most, so that one that
 * submits for every request a peer sends leaves room to the others. */
#define PROCESS_MAX_JOBS 4096
/* group: whose jobs share the pool's threads as one (workers_submit; the
 * servers of one module, for gen_server). */
int process_submit(process *p, const void *group, process_job_run *run, process_job_done *done, void *job);
/* Hand finished jobs to their done functions (at most max); returns how many. */
size_t process_table_collect_jobs(process_table *t, size_t max);

/* ---- figures, for the starter's stats call ----
 * The node hands in a function that writes its own part of the stats map as
 * key-value pairs, with no map header (node, uptime, connections), and
 * returns how many pairs it wrote, or -1 (out of memory). */
typedef int process_stats_fn(void *ctx, ei_x_buff *out);
void process_table_set_stats(process_table *t, process_stats_fn *fn, void *ctx);
/* Writes the table's pairs (processes, timers, jobs_queued, jobs_running,
 * workers), then the node's: returns how many pairs, or -1. The caller
 * writes the map header (and its own pairs). */
int process_table_encode_stats(process_table *t, ei_x_buff *out);
/* How many live processes have behaviour b (the gen_servers, say). */
size_t process_table_count_behaviour(const process_table *t, const process_behaviour *b);
const process_behaviour *process_behaviour_of(const process *p);
/* Timers pending, of every process. */
size_t process_table_timer_count(const process_table *t);

/* The node atom inside a pid, port or reference, as bytes; -1 if t is none of those. */
int process_term_node(term_view t, const char **node, size_t *len);

#endif

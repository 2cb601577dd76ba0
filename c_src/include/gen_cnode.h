/*
 * gen_cnode.h: the whole public API of gen_cnode, for writing servers in C
 * that Erlang and Elixir nodes reach with GenServer.call, cast, send,
 * :sys.get_state, monitors and links. It is all a server module includes;
 * every other header of the project is internal and may change at any time.
 *
 * A module is one C file that ends with GEN_CNODE_MODULE(name, callbacks...),
 * built into a shared object and loaded with `gen_cnode --load mod.so`, or
 * linked into a binary of your own with priv/libgen_cnode.a and
 * gen_cnode_main(). Either way the node's starter can start it from any node:
 *     GenServer.call({:gen_cnode, node}, {:start, :name, arg, [name: :reg]})
 * and `--start name[:reg][=arg]` starts it at boot.
 *
 * THREADS. Every callback runs on the node's one thread, between messages:
 * callbacks never run concurrently and need no locks. Every function here
 * must be called on that thread, from a callback, except the gcn_term
 * readers and gcn_buf writers, which touch only what they are given. A
 * worker job's run function runs on a pool thread and may touch nothing but
 * its own job (see gcn_submit). A callback that blocks holds up every server
 * and peer of the node: hand blocking work to a job.
 *
 * LIFETIMES. A gcn_term passed to a callback is borrowed for that callback:
 * copy what must outlive it (gcn_hold keeps a caller). A gcn_server pointer
 * is good until the server stops; to reach a server later, keep its pid.
 * The engine frees nothing under a running callback: a server that stops
 * (GCN_STOP, gcn_stop, an exit signal) is torn down after the callback
 * returns, and so is a connection that closes during a send.
 *
 * VERSIONING. GEN_CNODE_API_MAJOR changes when a module built against an
 * older header could misbehave; the node refuses to load such a module, with
 * a clear message. MINOR grows with additions a module may rely on. The first
 * three fields of gcn_module never move, so any version can be checked.
 */
#ifndef GEN_CNODE_H
#define GEN_CNODE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GEN_CNODE_API_MAJOR 1
#define GEN_CNODE_API_MINOR 1

/* ------------------------------------------------------------------ terms */

/* One encoded Erlang term (external term format, without the 131 version
 * byte). Terms handed to callbacks were checked to be well formed. */
typedef struct gcn_term {
    const char *ptr;
    size_t len;
} gcn_term;

/* A binary's bytes, inside the term it was read from. */
typedef struct gcn_bin {
    const char *ptr;
    size_t len;
} gcn_bin;

/* Room for any atom's text as UTF-8, with its terminating NUL. */
#define GCN_ATOM_MAX 1024

enum gcn_type {
    GCN_ATOM = 1, GCN_INTEGER, GCN_FLOAT, GCN_BINARY, GCN_BITSTRING, GCN_TUPLE,
    GCN_LIST,      /* a non-empty list (proper or not) */
    GCN_NIL,       /* [] */
    GCN_MAP, GCN_PID, GCN_PORT, GCN_REF, GCN_FUN,
};
/* The kind of t, or 0 when t is not one well-formed term. */
int gcn_type(gcn_term t);

/* Match t against a pattern and fill the captures; 1 on a match, else 0
 * (the captures are then unspecified). A pattern is Erlang term syntax:
 *   {P, ...}  a tuple of exactly these elements   [P, ...]  a proper list
 *   atom, 'Quoted atom', true, nil                 that atom
 *   42, -7                                         that integer
 *   "text"                                         that binary (<<"text">>)
 *   _                                              anything
 * and captures, each taking a pointer argument in order:
 *   ~t  gcn_term *  any term       ~i  int64_t *   an integer that fits
 *   ~u  uint64_t *  a non-negative integer that fits
 *   ~f  double *    a float or an integer          ~b  gcn_bin *  a binary
 *   ~a  char [GCN_ATOM_MAX]  an atom's text (atoms holding NUL do not match)
 *   ~p  gcn_term *  a pid          ~l  gcn_term *  a proper list (or [])
 *   ~m  gcn_term *  a map
 * Example: if (gcn_match(req, "{put, ~t, ~t}", &key, &value)) ...
 * A malformed pattern matches nothing and is logged. */
int gcn_match(gcn_term t, const char *pattern, ...);

/* Typed readers: 0 when t is of that kind (and fits), else -1. */
int gcn_get_int(gcn_term t, int64_t *out);
int gcn_get_uint(gcn_term t, uint64_t *out);
int gcn_get_double(gcn_term t, double *out); /* a float, or an integer */
int gcn_get_atom(gcn_term t, char out[GCN_ATOM_MAX]);
int gcn_get_binary(gcn_term t, gcn_bin *out);
/* Is t the atom name? */
int gcn_is_atom(gcn_term t, const char *name);

/* Walking a tuple's elements, a proper list's elements or a map's keys and
 * values (key, value, key, value, ...). gcn_iter_* return the count (arity,
 * length, pairs), or -1 when t is not of that kind. */
typedef struct gcn_iter {
    gcn_term of;
    size_t pos, left;
    int kind;
} gcn_iter;
long gcn_iter_tuple(gcn_term t, gcn_iter *it);
long gcn_iter_list(gcn_term t, gcn_iter *it);
long gcn_iter_map(gcn_term t, gcn_iter *it);
/* The next element in *out: 1, or 0 at the end. */
int gcn_next(gcn_iter *it, gcn_term *out);

/* ---------------------------------------------------------------- writing */

/* A growing buffer that holds encoded terms: a reply (the engine hands one to
 * handle_call), a message to send, a state for :sys.get_state. Writers
 * return 0, or -1 when out of memory or given a value no term can hold (an
 * atom that is not UTF-8 or longer than 255 characters, a NULL string, a NaN
 * or infinite double, a length over 2^32 - 1); the buffer is then marked
 * failed, gcn_buf_term gives an empty view, and the engine refuses what it
 * holds. Compound terms are written as a header followed by their elements,
 * in order. */
typedef struct gcn_buf gcn_buf;

gcn_buf *gcn_buf_new(void);
void gcn_buf_free(gcn_buf *b);
void gcn_buf_reset(gcn_buf *b);
/* What b holds so far, as one term (when one term was written). */
gcn_term gcn_buf_term(const gcn_buf *b);

int gcn_put_atom(gcn_buf *b, const char *utf8);
int gcn_put_int(gcn_buf *b, int64_t v);
int gcn_put_uint(gcn_buf *b, uint64_t v);
int gcn_put_double(gcn_buf *b, double v);
int gcn_put_binary(gcn_buf *b, const void *bytes, size_t len);
int gcn_put_string(gcn_buf *b, const char *utf8); /* as a binary, an Elixir string */
int gcn_put_tuple(gcn_buf *b, size_t arity);      /* then arity elements */
int gcn_put_list(gcn_buf *b, size_t n);           /* then n elements and a tail (gcn_put_nil);
                                                     n == 0 writes [] and takes no tail */
int gcn_put_nil(gcn_buf *b);
int gcn_put_map(gcn_buf *b, size_t pairs);        /* then key, value, key, value, ... */
int gcn_put_term(gcn_buf *b, gcn_term t);         /* an encoded term, as it is (checked: one term) */

/* Write a term from a template in the syntax of gcn_match, with these
 * arguments in place of the ~ holes, of exactly these types (varargs are
 * not converted: pass an int as (int64_t)n):
 *   ~t gcn_term   ~i int64_t   ~u uint64_t   ~f double
 *   ~a const char * (an atom)  ~s const char * (a binary, as an Elixir string)
 *   ~b const void *, size_t (a binary)
 * Literal maps are written #{K => V, ...}. Example:
 *   gcn_build(reply, "{ok, ~i}", (int64_t)count)
 * 0, or -1 on a malformed template (logged) or a value no term can hold;
 * the buffer is then as it was before the call. */
int gcn_build(gcn_buf *b, const char *template_, ...);

/* --------------------------------------------------------------- servers */

typedef struct gcn_server gcn_server;

/* What a callback tells the engine. */
enum gcn_result {
    GCN_REPLY,   /* handle_call: reply now with what was written into reply */
    GCN_NOREPLY, /* no reply now (casts, infos, a call held for later) */
    GCN_STOP,    /* stop with reason normal (a call's reply is sent first) */
};

/* Who called: valid during the callback only; gcn_hold keeps it. */
typedef struct gcn_from {
    gcn_term pid;
    gcn_term tag;
} gcn_from;

/* What init tells the engine. */
typedef struct gcn_init {
    void *state;       /* passed to every callback; must not be NULL */
    int trap_exit;     /* exit signals arrive as {'EXIT', From, Reason} infos (from when init
                          sets it: a gcn_link init makes after is covered) */
    int want_continue; /* run handle_continue before any message */
} gcn_init;

/* A server module: its name (the atom the starter knows it by) and its
 * callbacks. Only handle_call is required; see doc/writing-a-server.md for
 * the lifecycle. Write it with GEN_CNODE_MODULE. */
typedef struct gcn_module {
    int api_major, api_minor; /* GEN_CNODE_API_*: filled in by GEN_CNODE_MODULE */
    const char *name;
    /* Once, when the node loads the module: args is the text after '=' in
     * --load path.so=args (NULL: none); *priv is what gcn_priv returns to
     * this module's servers. Return 0, or -1 to refuse to load (optional). */
    int (*load)(const char *args, void **priv);
    /* Once, when the node stops, after every server of the module (optional). */
    void (*unload)(void *priv);
    /* Make the state. arg is the start argument ([] at boot without '=').
     * Return 0, or -1 with an atom naming the error in *error: the start
     * then fails with {error, Error}, and the server exits with Error (a
     * link init made is told it). A gcn_stop in init fails the start too:
     * {error, Reason} (init_stopped if Reason is no atom); terminate runs. */
    int (*init)(gcn_server *self, gcn_term arg, gcn_init *out, const char **error);
    /* Post-init work, when init asked for it: after the starter has replied. */
    void (*handle_continue)(gcn_server *self, void *state);
    /* A GenServer.call. Write exactly one term into reply and return
     * GCN_REPLY; or keep the caller (gcn_hold), return GCN_NOREPLY and reply
     * later with gcn_reply. A reply the node ran out of memory writing is
     * sent as {error, out_of_memory}, one that held a value no term can hold
     * (see gcn_buf) as {error, bad_reply}, logged, and the server goes on;
     * so is a reply left empty because a gcn_build failed so. */
    enum gcn_result (*handle_call)(gcn_server *self, void *state, gcn_term request,
                                   const gcn_from *from, gcn_buf *reply);
    enum gcn_result (*handle_cast)(gcn_server *self, void *state, gcn_term request);
    /* Any other message: plain sends, timers (gcn_send_after), the atom
     * timeout (gcn_set_timeout), {'EXIT', From, Reason} when trapping exits,
     * {'DOWN', Ref, process, Pid, Reason} of gcn_monitor. */
    enum gcn_result (*handle_info)(gcn_server *self, void *state, gcn_term msg);
    /* Write the state as one term, as :sys.get_state shows it (optional). */
    int (*format_state)(void *state, gcn_buf *out);
    /* A short summary for :sys.get_status (optional; format_state otherwise). */
    int (*format_status)(gcn_server *self, void *state, gcn_buf *out);
    /* A node went away: drop what is kept for its callers (optional). The
     * server's links and monitors of that node are gone by then; the DOWNs
     * and trapped EXITs they give arrive as messages. While the server is
     * suspended (:sys.suspend), it waits with the messages for the resume. */
    void (*node_down)(gcn_server *self, void *state, const char *node, size_t len);
    /* The messages that arrived together were handled and their replies are
     * about to go out: the place to group-commit (optional; after gcn_want_flush). */
    void (*flush)(gcn_server *self, void *state);
    /* Release the state; reason is why the server stops (optional). Timers
     * are cancelled; jobs still queued or running run to their end and are
     * given to their done function with a NULL server (a job that should
     * end early watches a flag of its own that terminate sets: an atomic
     * one, C11 <stdatomic.h>, as the job reads it on a worker thread).
     * When the node stops, reason is shutdown,
     * and what terminate sends to a connected node still goes out, as far
     * as its socket takes it at once; a stopping node connects to no one.
     * It runs for every stop, since the state must be freed: also for
     * killed (exit(Pid, kill)) and for an exit signal the server does not
     * trap, where OTP's gen_server runs no terminate/2. A module ported
     * from Erlang that does more than free there (sends, replies) checks
     * the reason first. */
    void (*terminate)(void *state, gcn_term reason);
    /* Later minor versions add fields here, at the end only; the node reads
     * a field only when the module's api_minor says it has it. */
} gcn_module;

/* Ends a module's source file: GEN_CNODE_MODULE(ring, .init = ring_init,
 * .handle_call = ring_call). It defines `const gcn_module gcn_module_ring`
 * and, unless GEN_CNODE_STATIC is defined (a module linked into a binary of
 * your own, see gen_cnode_main), the entry point the loader looks for. */
#define GEN_CNODE_MODULE(NAME, ...)                                                              \
    __attribute__((visibility("hidden"))) const gcn_module gcn_module_##NAME = {                 \
        .api_major = GEN_CNODE_API_MAJOR, .api_minor = GEN_CNODE_API_MINOR, .name = #NAME,        \
        __VA_ARGS__};                                                                            \
    GCN_MODULE_ENTRY_(NAME)
#ifdef GEN_CNODE_STATIC
#define GCN_MODULE_ENTRY_(NAME)
#else
#define GCN_MODULE_ENTRY_(NAME)                                                                  \
    __attribute__((visibility("default"))) const gcn_module *gen_cnode_module(void);            \
    const gcn_module *gen_cnode_module(void) { return &gcn_module_##NAME; }
#endif

/* This server's pid, registered name (NULL: none; registered before init
 * runs, as in OTP), node name, and the module's priv (see load). */
gcn_term gcn_self(const gcn_server *self);
const char *gcn_name(const gcn_server *self);
const char *gcn_node(const gcn_server *self);
void *gcn_priv(const gcn_server *self);

/* Stop after this callback with reason (copied). GCN_STOP is gcn_stop
 * with `normal`. Monitors get DOWN and links EXIT with the reason. A reason
 * that is not one term (a failed buffer's empty view, say) is logged and
 * replaced by bad_stop_reason. */
void gcn_stop(gcn_server *self, gcn_term reason);

/* Have flush run at the end of this batch of messages. */
void gcn_want_flush(gcn_server *self);

/* -------------------------------------------------------------- replies */

typedef struct gcn_caller gcn_caller;

/* Keep a caller for a later reply (GenServer.reply/2); NULL when out of memory. */
gcn_caller *gcn_hold(const gcn_from *from);
gcn_from gcn_caller_from(const gcn_caller *c);
/* Is this caller on node? (for node_down) */
int gcn_caller_on(const gcn_caller *c, const char *node, size_t len);
void gcn_release(gcn_caller *c);
/* Reply to a caller now or later; reply is one term. A caller on a node
 * not connected to this one is connected to first (as gcn_send). 0, or -1
 * when it cannot go out (its node could not be reached a moment ago: it is
 * dropped, as OTP drops it, and logged; or reply is not one term, logged). */
int gcn_reply(gcn_server *self, const gcn_from *to, gcn_term reply);
/* gcn_reply to a held caller, then gcn_release it. Prefer it to gcn_reply
 * with gcn_caller_from: a reply that must connect to the caller's node
 * counts as the doing of the peer the call came from, as one sent during
 * the call would, and the node shares its connection attempts out by peer
 * (README, Limits); gcn_reply later counts as the node's own doing. */
int gcn_reply_held(gcn_server *self, gcn_caller *c, gcn_term reply);
/* Write {error, {What, Detail}}, the usual error reply. */
int gcn_error(gcn_buf *reply, const char *what, gcn_term detail);

/* -------------------------------------------------------------- sending */

/* Send msg to `to`: a pid, a registered name (an atom: a server of this
 * node), or {Name, Node}. A node with no connection is connected to first,
 * as OTP does (the message waits, in order, while it is). 0, or -1 when it
 * cannot be delivered: no such local name, or a node that could not be
 * reached a moment ago. Undeliverable messages are dropped, as OTP's send
 * drops them, and logged once; so are those queued for a node that then
 * cannot be reached. */
int gcn_send(gcn_server *self, gcn_term to, gcn_term msg);
/* Link to a pid of another node (connecting to it if need be): when either
 * side stops, the other gets the exit signal (as {'EXIT', Pid, Reason}
 * when trapping exits); if its node cannot be reached, or goes, the exit
 * signal is noconnection. 0, or -1 (not a pid, or a pid of this node:
 * links between two servers of one node are not kept). */
int gcn_link(gcn_server *self, gcn_term pid);
int gcn_unlink(gcn_server *self, gcn_term pid);
/* Monitor a pid, of this node or another: {'DOWN', Ref, process, Pid,
 * Reason} arrives at handle_info when it stops; Reason is noproc for a pid
 * of this node that is not alive, noconnection when its node goes away or
 * cannot be reached (a node not connected is connected to first, as OTP
 * does). The reference is
 * appended to ref (may be NULL), for gcn_demonitor. 0, or -1 (not a pid, or
 * out of memory). */
int gcn_monitor(gcn_server *self, gcn_term pid, gcn_buf *ref);
/* Take a monitor off: no DOWN for it will arrive (one that was sent already,
 * the monitor having fired, is taken out before it is handled, as OTP's
 * demonitor(Ref, [flush]); but not one a suspended server holds in its queue
 * already: that one still comes after the resume). 1 if it was on, else 0. */
int gcn_demonitor(gcn_server *self, gcn_term ref);

/* Connect to node (name@host) if it is not connected or being connected to,
 * as net_kernel:connect_node/1 but without waiting: sends to it wait for
 * the connection meanwhile. 0 when connected or under way, -1 for a name
 * that is not a node's, this node's own, or a node that could not be
 * reached a moment ago (logged). [since 1.1] */
int gcn_connect(gcn_server *self, const char *node);

/* Join this server to group (any term) in the pg scope named scope (NULL:
 * pg, the default scope; others run with --pg-scope NAME), so that
 * :pg.get_members(scope, group) on the BEAM nodes connected to this one
 * lists it, as :pg.join does for an Erlang process. It leaves when it
 * stops, or with gcn_pg_leave; BEAM nodes drop it when this node goes.
 * Joining twice makes it a member twice, as in pg. 0, or -1 (no such
 * scope on this node, group not one term, or out of memory). [since 1.1] */
int gcn_pg_join(gcn_server *self, const char *scope, gcn_term group);
/* Leave group once: 0, or -1 (not a member, or no such scope). [since 1.1] */
int gcn_pg_leave(gcn_server *self, const char *scope, gcn_term group);

/* --------------------------------------------------------------- timers */

/* A timer's handle; 0 is never one. */
typedef uint64_t gcn_timer;

/* Deliver msg (copied) to this server's handle_info after ms milliseconds
 * (at most 2^40: longer delays are cut to that), as erlang:send_after(Ms,
 * self(), Msg). 0 when out of memory or msg is not one term. */
gcn_timer gcn_send_after(gcn_server *self, uint64_t ms, gcn_term msg);
/* Cancel a timer of this server: 1 if it had not fired yet, else 0. */
int gcn_cancel_timer(gcn_server *self, gcn_timer t);
/* The gen_server timeout ({noreply, State, Ms}): if no message arrives in
 * ms after the current callback returns, handle_info gets the atom timeout.
 * As in OTP: any message, timers included, cancels it; a system message
 * (:sys.get_state, ...) starts it again from the full Ms; it does not run
 * while the server is suspended. Asked for in init, handle_continue, a
 * call, cast, info, a job's done, node_down or flush. */
void gcn_set_timeout(gcn_server *self, uint64_t ms);

/* ---------------------------------------------------------- worker jobs */

/* Runs on a worker thread: it may touch only its job (and what the job
 * owns), never the server, its state, terms handed to callbacks, or any
 * gcn_ function but the term readers and gcn_buf writers. */
typedef void gcn_job_run(void *job);
/* Runs on the node's thread once run has returned, or once the job was
 * dropped unrun at node stop (not for a run still going at the end of
 * --jobs-grace: see gcn_submit). self and state are NULL when the server
 * stopped meanwhile, and in both cases at node stop: only release the job
 * then (and whatever run would have released: a job that owns a resource
 * records in itself whether run took care of it). Its result counts as a
 * callback's (GCN_STOP stops the server). */
typedef enum gcn_result gcn_job_done(gcn_server *self, void *state, void *job);

/* Hand job to the worker pool (--workers N). A caller kept with gcn_hold can
 * be answered from done. 0, or -1 (no pool: --workers 0; 4,096 jobs of this
 * server's not back yet, or 16,384 of its module's waiting to start, so
 * that one server leaves room to the others of its module, and a module
 * to the other modules; 65,536 jobs of the node's waiting to start; the
 * node stopping; or out of memory: the job is not taken). A module's
 * servers take turns at its threads: a server's first job does not wait
 * behind another's thousands.
 * When the node stops, no queued job starts any more; every server's
 * terminate runs, as when one stops alone; then queued jobs are dropped (done with a NULL server) and
 * the node waits for the running ones to return (done with a NULL server),
 * for --jobs-grace at most (4 s): a run still going then is left to the
 * process's exit, with no done. */
int gcn_submit(gcn_server *self, gcn_job_run *run, gcn_job_done *done, void *job);

/* -------------------------------------------------------------- logging */

enum gcn_log_level { GCN_LOG_ERROR = 0, GCN_LOG_WARNING, GCN_LOG_INFO, GCN_LOG_DEBUG };
/* One line on the node's log (stderr, or the owner's Logger). */
void gcn_log(enum gcn_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------ embedding */

/* The node's whole program: parse the standard options, start the node with
 * the bundled modules (kv, counter) and these, serve until stopped. Returns
 * the process exit status (2: a usage or load error). A binary of your own:
 *     #define GEN_CNODE_STATIC
 *     #include <gen_cnode.h>
 *     ... GEN_CNODE_MODULE(ring, ...)
 *     int main(int argc, char **argv) {
 *         const gcn_module *mods[] = {&gcn_module_ring};
 *         return gen_cnode_main(argc, argv, mods, 1);
 *     }
 * linked with priv/libgen_cnode.a (see doc/writing-a-server.md). */
int gen_cnode_main(int argc, char **argv, const gcn_module *const *modules, size_t count);

#ifdef __cplusplus
}
#endif

#endif

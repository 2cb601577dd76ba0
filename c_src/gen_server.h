/*
 * gen_server.h: the generic server behaviour, as OTP's gen_server.erl is for
 * Erlang. The engine receives what BEAM nodes send a gen_server
 * ({'$gen_call', {Pid, Tag}, Request}, {'$gen_cast', Request}, system
 * messages from sys and proc_lib, anything else as info), calls the callback
 * module, and sends {Tag, Reply} back: to the caller's alias when the tag
 * carries one ([alias | Ref], OTP 24+), else to its pid. The tag is opaque:
 * it is copied back byte for byte.
 *
 * System messages are the engine's alone: sys:get_state (the reply shaped for
 * the caller's OTP release), sys:get_status, sys:suspend / sys:resume (other
 * messages wait, in order, while suspended), sys:terminate and GenServer.stop
 * (reply ok, run terminate, DOWN and EXIT with the reason), sys:replace_state
 * (refused: a C node cannot run an Erlang fun).
 *
 * Writing a server: fill a gen_server_callbacks with your functions and call
 * gen_server_start. Requests arrive as term_views (encoded terms, already
 * checked to be well formed, so ei's decode functions are safe on them).
 * handle_call encodes exactly one term, its reply, into `reply` with ei's
 * ei_x_encode_* functions (or ei_x_append_buf for bytes you keep) and returns
 * GEN_SERVER_REPLY; or it keeps the caller with gen_server_hold, returns
 * GEN_SERVER_NOREPLY and answers later with gen_server_reply (the
 * GenServer.reply/2 pattern). Returning GEN_SERVER_STOP stops the server
 * (after sending the reply, for a call) with reason `normal`.
 *
 * The engine knows nothing of any callback module's messages; callback
 * modules know nothing of connections or frames.
 */
#ifndef GEN_CNODE_GEN_SERVER_H
#define GEN_CNODE_GEN_SERVER_H

#include <ei.h>

#include "process.h"
#include "term.h"

typedef struct gen_server gen_server;

enum gen_server_result {
    GEN_SERVER_REPLY,   /* handle_call: reply now with what was encoded */
    GEN_SERVER_NOREPLY, /* no reply now (casts, infos; a call answered later) */
    GEN_SERVER_STOP,    /* stop with reason normal (a call's reply is sent first) */
};

/* Who called: views valid only during the callback (gen_server_hold keeps one). */
typedef struct gen_server_from {
    term_view pid;
    term_view tag;
} gen_server_from;

/* A caller kept for a later reply. */
typedef struct gen_server_caller gen_server_caller;

/* What init tells the engine. */
typedef struct gen_server_init {
    void *state;       /* the server's state, passed to every callback */
    int trap_exit;     /* exit signals arrive as {'EXIT', From, Reason} infos */
    int want_continue; /* run handle_continue before any message */
} gen_server_init;

typedef struct gen_server_callbacks {
    const char *module; /* the name sys:get_status shows */
    /* Make the state. env is what the server was registered with (see
     * gen_server_start); arg the start argument as an encoded term (len 0:
     * none). Return 0, or -1 with an atom naming the error in *error. */
    int (*init)(const void *env, term_view arg, gen_server_init *out, const char **error);
    /* Post-init work, when init asked for it (optional). */
    void (*handle_continue)(gen_server *self, void *state);
    enum gen_server_result (*handle_call)(gen_server *self, void *state, term_view request,
                                          const gen_server_from *from, ei_x_buff *reply);
    enum gen_server_result (*handle_cast)(gen_server *self, void *state, term_view request);
    enum gen_server_result (*handle_info)(gen_server *self, void *state, term_view msg);
    /* Encode the state as one term, as :sys.get_state shows it (optional). */
    int (*format_state)(void *state, ei_x_buff *out);
    /* Encode a short summary for :sys.get_status (optional; format_state otherwise). */
    int (*format_status)(gen_server *self, void *state, ei_x_buff *out);
    /* A connected node went away: drop what is kept for its callers (optional). */
    void (*node_down)(gen_server *self, void *state, const char *node, size_t len);
    /* The messages that arrived together have been handled and their replies
     * are about to go out: the place to group-commit (optional; called after
     * gen_server_want_flush). */
    void (*flush)(gen_server *self, void *state);
    /* Release the state; reason is why the server stops (optional). */
    void (*terminate)(void *state, term_view reason);
} gen_server_callbacks;

/* Start a server: run init(env, arg), then register it under name (NULL:
 * none). A pending handle_continue runs at gen_server_continue, so a starter
 * can reply first. Returns the process, or NULL with an atom in *error. */
process *gen_server_start(process_table *t, const gen_server_callbacks *cb, const void *env,
                          term_view arg, const char *name, const char **error);
/* Run the handle_continue init asked for, if any. */
void gen_server_continue(process *p);

/* Keep a caller for a later reply; NULL when out of memory. */
gen_server_caller *gen_server_hold(const gen_server_from *from);
gen_server_from gen_server_caller_from(const gen_server_caller *c);
/* Reply to a caller (now or later): reply is one encoded term. */
int gen_server_reply(gen_server *self, const gen_server_from *to, term_view reply);
void gen_server_release(gen_server_caller *c);
/* The node name of a caller, for node_down. */
int gen_server_caller_on(const gen_server_caller *c, const char *node, size_t len);

/* Encode {error, {What, Detail}}, the usual error reply; detail is one encoded term. */
void gen_server_error(ei_x_buff *reply, const char *what, term_view detail);

/* Have the flush callback run at the end of this batch. */
void gen_server_want_flush(gen_server *self);

process *gen_server_process(gen_server *self);
/* The parent sys:get_status shows (start_link's caller); the server itself by default. */
void gen_server_set_parent(process *p, term_view parent);
/* How many messages the server has handled (calls, casts, infos, system). */
unsigned long long gen_server_handled(const process *p);

#endif

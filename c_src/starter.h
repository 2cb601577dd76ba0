/*
 * starter.h: the node's starter, registered as gen_cnode: it starts servers of
 * the modules it was given, on request from any node, as GenServer.start does:
 *   call {start, Module, Arg}              {ok, Pid} once Module's init has run
 *   call {start_link, Module, Arg}         the same, linked to the caller
 *   call {start | start_link, Module, Arg, [{name, Name}]}   also registers Name
 * Errors: {error, {unknown_module, M}}, {error, {already_started, Pid}},
 * {error, Reason} from init. The new server's handle_continue, if it asked for
 * one, runs after the reply is on its way and before its first message.
 * It knows servers only by their gen_server_callbacks.
 */
#ifndef GEN_CNODE_STARTER_H
#define GEN_CNODE_STARTER_H

#include "gen_server.h"

typedef struct starter_module {
    const char *name;                 /* the Module atom */
    const gen_server_callbacks *callbacks;
    const void *env;                  /* handed to init */
} starter_module;

typedef struct starter_modules {
    const starter_module *modules;
    size_t count;
} starter_modules;

/* Start it with gen_server_start(t, &starter_callbacks, &modules, none, "gen_cnode", &err). */
extern const gen_server_callbacks starter_callbacks;

#endif

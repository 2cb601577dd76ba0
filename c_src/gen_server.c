/* gen_server.c: the generic server behaviour; see gen_server.h. */
#include "gen_server.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

typedef struct gen_server {
    const gen_server_callbacks *cb;
    void *state;
    ei_x_buff out; /* reused for every reply: no allocation per call */
    unsigned long long handled;
} gen_server;

/* Is the term at v.ptr[*i] the atom `name`? (Any atom encoding.) Advances *i past it if so. */
static int atom_is(term_view v, int *i, const char *name)
{
    char atom[MAXATOMLEN_UTF8];
    int j = *i;
    erlang_char_encoding enc;
    if (ei_decode_atom_as(v.ptr, &j, atom, sizeof atom, ERLANG_UTF8, &enc, NULL) < 0 ||
        strcmp(atom, name) != 0)
        return 0;
    *i = j;
    return 1;
}


/* The Ref of a tag that is exactly [alias | Ref]. */
static int alias_ref(term_view tag, term_view *alias)
{
    int i = 0, arity, type, size;
    if (ei_decode_list_header(tag.ptr, &i, &arity) < 0 || arity != 1 || !atom_is(tag, &i, "alias") ||
        ei_get_type(tag.ptr, &i, &type, &size) < 0 ||
        (type != ERL_NEW_REFERENCE_EXT && type != ERL_NEWER_REFERENCE_EXT))
        return 0;
    *alias = (term_view){tag.ptr + i, tag.len - (size_t)i};
    return 1;
}

/* Where gen:reply sends: to the alias of a tag [alias | Ref] (OTP 24+ calls)
 * or [[alias | Ref] | _] (OTP 27 multi_call); otherwise (0) to the caller's pid. */
static int alias_of(term_view tag, term_view *alias)
{
    int i = 0, arity;
    term_view head;
    if (alias_ref(tag, alias))
        return 1;
    return ei_decode_list_header(tag.ptr, &i, &arity) == 0 && arity == 1 &&
           term_next(tag, &i, &head) == 0 && alias_ref(head, alias);
}

static void reply(process *self, gen_server *gs, const gen_server_from *from)
{
    term_view msg = {gs->out.buff, (size_t)gs->out.index};
    term_view alias;
    if (alias_of(from->tag, &alias))
        process_send_alias(self, alias, msg);
    else
        process_send(self, from->pid, msg);
}

static void handle_call(process *self, gen_server *gs, term_view msg, int i)
{
    int arity;
    gen_server_from from;
    term_view request;
    if (ei_decode_tuple_header(msg.ptr, &i, &arity) < 0 || arity != 2 ||
        term_next(msg, &i, &from.pid) < 0 || term_next(msg, &i, &from.tag) < 0 ||
        (from.pid.ptr[0] != ERL_PID_EXT && from.pid.ptr[0] != ERL_NEW_PID_EXT) ||
        term_next(msg, &i, &request) < 0) {
        log_warning("%s: ignoring a '$gen_call' whose From is not {Pid, Tag}", gs->cb->module);
        return;
    }
    /* {Tag, Reply}: header and tag first, then the callback appends its reply. */
    gs->out.index = 0;
    ei_x_encode_tuple_header(&gs->out, 2);
    ei_x_append_buf(&gs->out, from.tag.ptr, (int)from.tag.len);
    int before = gs->out.index;
    if (gs->cb->handle_call(gs->state, request, &from, &gs->out) == GEN_SERVER_REPLY) {
        if (gs->out.index == before) {
            log_error("%s: handle_call encoded no reply", gs->cb->module);
            ei_x_encode_atom(&gs->out, "error");
        }
        reply(self, gs, &from);
    }
}

static void message(process *self, term_view msg)
{
    gen_server *gs = process_state(self);
    int i = 0, arity;
    term_view request;
    gs->handled++;
    if (ei_decode_tuple_header(msg.ptr, &i, &arity) == 0) {
        if (arity == 3 && atom_is(msg, &i, "$gen_call")) {
            handle_call(self, gs, msg, i);
            return;
        }
        if (arity == 2 && atom_is(msg, &i, "$gen_cast") && term_next(msg, &i, &request) == 0) {
            if (gs->cb->handle_cast)
                gs->cb->handle_cast(gs->state, request);
            return;
        }
    }
    if (gs->cb->handle_info)
        gs->cb->handle_info(gs->state, msg);
}

static void free_server(gen_server *gs)
{
    if (gs->cb->terminate)
        gs->cb->terminate(gs->state);
    ei_x_free(&gs->out);
    free(gs);
}

static void destroy(process *self) { free_server(process_state(self)); }

static const process_behaviour gen_server_behaviour = {message, destroy};

process *gen_server_start(process_table *t, const gen_server_callbacks *cb, const void *arg,
                          const char *name)
{
    gen_server *gs = calloc(1, sizeof *gs);
    if (!gs)
        return NULL;
    gs->cb = cb;
    if (ei_x_new(&gs->out) < 0) {
        free(gs);
        return NULL;
    }
    if (cb->init && cb->init(arg, &gs->state) != 0) {
        ei_x_free(&gs->out);
        free(gs);
        return NULL;
    }
    process *p = process_spawn(t, &gen_server_behaviour, gs);
    if (!p) {
        free_server(gs);
        return NULL;
    }
    if (name && process_register(p, name) < 0) {
        static const char normal[] = {119, 6, 'n', 'o', 'r', 'm', 'a', 'l'};
        process_exit(p, (term_view){normal, sizeof normal});
        return NULL;
    }
    return p;
}

unsigned long long gen_server_handled(const process *p)
{
    const gen_server *gs = process_state(p);
    return gs->handled;
}

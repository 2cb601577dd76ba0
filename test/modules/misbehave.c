/*
 * misbehave.c: a module that breaks the callback contract on request, for
 * the tests of what the engine does then (the server stops with
 * {bad_return_value, Callback}, logged; the node and its other servers carry
 * on). Start argument null_state: init returns no state.
 *   half_reply     writes a tuple header and no elements: not one term
 *   two_replies    writes two terms
 *   bad_result     returns a value that is no gcn_result
 *   no_reply       returns GCN_REPLY having written nothing
 *   bad_state      ok; :sys.get_state then gets a broken format_state
 *   crash          dereferences NULL: the whole node dies (SIGSEGV)
 *   ping           pong
 *   second_thoughts   writes junk, resets its reply buffer, answers fine
 */
#include <stddef.h>

#include <gen_cnode.h>

static int broken_state;

static int init(gcn_server *self, gcn_term arg, gcn_init *out, const char **error)
{
    (void)self;
    (void)error;
    out->state = gcn_match(arg, "null_state") ? NULL : &broken_state;
    return 0;
}

static enum gcn_result call(gcn_server *self, void *state, gcn_term req, const gcn_from *from,
                            gcn_buf *reply)
{
    (void)self;
    (void)from;
    if (gcn_match(req, "half_reply")) {
        gcn_put_tuple(reply, 2);
    } else if (gcn_match(req, "two_replies")) {
        gcn_put_atom(reply, "one");
        gcn_put_atom(reply, "two");
    } else if (gcn_match(req, "bad_result")) {
        gcn_put_atom(reply, "ok");
        return (enum gcn_result)42;
    } else if (gcn_match(req, "no_reply")) {
        return GCN_REPLY;
    } else if (gcn_match(req, "bad_state")) {
        *(int *)state = 1;
        gcn_put_atom(reply, "ok");
    } else if (gcn_match(req, "crash")) {
        volatile int *nowhere = NULL;
        *nowhere = 1;
    } else if (gcn_match(req, "ping")) {
        gcn_put_atom(reply, "pong");
    } else if (gcn_match(req, "second_thoughts")) { /* the reply buffer is the module's to redo */
        gcn_put_atom(reply, "junk");
        if (!gcn_is_atom(gcn_buf_term(reply), "junk"))
            return (enum gcn_result)42;
        gcn_buf_reset(reply);
        gcn_put_atom(reply, "fine");
    } else {
        gcn_error(reply, "unknown_call", req);
    }
    return GCN_REPLY;
}

static int format_state(void *state, gcn_buf *out)
{
    if (*(int *)state)
        return gcn_put_list(out, 3); /* a list header and nothing after it */
    return gcn_put_atom(out, "fine");
}

GEN_CNODE_MODULE(misbehave, .init = init, .handle_call = call, .format_state = format_state)

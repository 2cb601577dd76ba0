/*
 * misbehave.c: a module that breaks the callback contract on request, for
 * the tests of what the engine does then (the server stops with
 * {bad_return_value, Callback}, logged; the node and its other servers carry
 * on). Start argument null_state: init returns no state; name_in_init: init
 * fails with no_name unless the server is registered already;
 * {link_then_fail, Pid}: init links to Pid, then fails (refused_in_init);
 * {link_then_null_state, Pid}: init links to Pid, then returns no state;
 * {stop_in_init, Reason}: init calls gcn_stop(Reason), then returns 0;
 * {sleep_in_init, Ms}: init sleeps Ms first (a boot that takes long).
 *   half_reply     writes a tuple header and no elements: not one term
 *   two_replies    writes two terms
 *   bad_result     returns a value that is no gcn_result
 *   no_reply       returns GCN_REPLY having written nothing
 *   bad_state      ok; :sys.get_state then gets a broken format_state
 *   crash          dereferences NULL: the whole node dies (SIGSEGV)
 *   ping           pong
 *   second_thoughts   writes junk, resets its reply buffer, answers fine
 *   {atom_of, Bin}    answers {ok, Atom} with gcn_build, whatever Bin holds,
 *                     ignoring a failure (the engine answers bad_reply)
 *   nan               writes a NaN (the engine answers bad_reply)
 *   zeros             answers #{0.0 => a, -0.0 => b}, which OTP 25 and 26
 *                     cannot read (the engine answers {error, unsupported})
 *   bad_stop          answers ok and stops with a reason that is no term
 *                     (the engine stops it with bad_stop_reason)
 *   {chatter, N}      writes N lines to stderr, as fast as it can, then ok
 *   {sleep_job, Ms}   a worker job that sleeps Ms (a job that blocks), then slept
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep: plain -std=c11 does not declare it */

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gen_cnode.h>

static int broken_state;

static int init(gcn_server *self, gcn_term arg, gcn_init *out, const char **error)
{
    gcn_term t;
    if (gcn_match(arg, "name_in_init") && !gcn_name(self)) {
        *error = "no_name";
        return -1;
    }
    if (gcn_match(arg, "{link_then_fail, ~t}", &t)) {
        gcn_link(self, t);
        *error = "refused_in_init";
        return -1;
    }
    if (gcn_match(arg, "{stop_in_init, ~t}", &t))
        gcn_stop(self, t);
    int64_t ms;
    if (gcn_match(arg, "{sleep_in_init, ~i}", &ms) && ms > 0 && ms <= 60000) {
        fprintf(stderr, "misbehave: sleeping %lld ms in init\n", (long long)ms);
        fflush(stderr);
        struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0)
            ;
    }
    if (gcn_match(arg, "{link_then_null_state, ~t}", &t)) {
        gcn_link(self, t);
        out->state = NULL;
        return 0;
    }
    out->state = gcn_match(arg, "null_state") ? NULL : &broken_state;
    return 0;
}

struct sleep_job {
    gcn_caller *caller;
    int64_t ms;
};

static void sleep_run(void *arg)
{
    struct sleep_job *j = arg;
    struct timespec ts = {(time_t)(j->ms / 1000), (long)(j->ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static enum gcn_result sleep_done(gcn_server *self, void *state, void *arg)
{
    (void)state;
    struct sleep_job *j = arg;
    gcn_buf *b = gcn_buf_new();
    if (self && b && gcn_put_atom(b, "slept") == 0)
        gcn_reply_held(self, j->caller, gcn_buf_term(b));
    else
        gcn_release(j->caller);
    gcn_buf_free(b);
    free(j);
    return GCN_NOREPLY;
}

static enum gcn_result call(gcn_server *self, void *state, gcn_term req, const gcn_from *from,
                            gcn_buf *reply)
{
    int64_t ms;
    gcn_bin bin;
    uint64_t n;
    if (gcn_match(req, "{chatter, ~u}", &n)) {
        char chunk[65536];
        size_t used = 0;
        for (uint64_t i = 0; i < n; i++) {
            used += (size_t)snprintf(chunk + used, sizeof chunk - used, "chatter %llu\n", (unsigned long long)i);
            if (used > sizeof chunk - 64 || i + 1 == n) {
                fwrite(chunk, 1, used, stderr);
                used = 0;
            }
        }
        gcn_put_atom(reply, "ok");
    } else if (gcn_match(req, "{sleep_job, ~i}", &ms) && ms > 0 && ms <= 60000) {
        struct sleep_job *j = malloc(sizeof *j);
        if (j) {
            j->caller = gcn_hold(from);
            j->ms = ms;
            if (j->caller && gcn_submit(self, sleep_run, sleep_done, j) == 0)
                return GCN_NOREPLY;
            gcn_release(j->caller);
            free(j);
        }
        gcn_build(reply, "{error, not_submitted}");
    } else if (gcn_match(req, "half_reply")) {
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
    } else if (gcn_match(req, "bad_stop")) {
        static const char half_tuple[] = {104, 2, 100}; /* a tuple of 2, and 1 byte of an atom */
        gcn_stop(self, (gcn_term){half_tuple, sizeof half_tuple});
        gcn_put_atom(reply, "ok");
    } else if (gcn_match(req, "nan")) {
        gcn_put_double(reply, NAN);
    } else if (gcn_match(req, "zeros")) { /* #{0.0 => a, -0.0 => b}: OTP 25 and 26 cannot read it */
        gcn_build(reply, "#{~f => a, ~f => b}", 0.0, -0.0);
    } else if (gcn_match(req, "{atom_of, ~b}", &bin)) {
        char text[GCN_ATOM_MAX];
        size_t n = bin.len < sizeof text - 1 ? bin.len : sizeof text - 1;
        memcpy(text, bin.ptr, n);
        text[n] = '\0';
        gcn_build(reply, "{ok, ~a}", text);
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

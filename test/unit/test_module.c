/* test_module.c: the module table (module_table.c): what it accepts and
 * refuses, load and unload hooks, and the errors it explains. Loading from
 * shared objects is covered end to end by gen_cnode_module_SUITE. */
#include <string.h>

#include "module_table.h"
#include "unit.h"

static enum gcn_result call(gcn_server *self, void *state, gcn_term req, const gcn_from *from, gcn_buf *reply)
{
    (void)self, (void)state, (void)req, (void)from, (void)reply;
    return GCN_REPLY;
}

static int loads, unloads, last_unloaded;
static int priv_value = 7;

static int load_ok(const char *args, void **priv)
{
    loads++;
    *priv = args && strcmp(args, "seven") == 0 ? &priv_value : NULL;
    return 0;
}

static int load_refuses(const char *args, void **priv)
{
    (void)args, (void)priv;
    return -1;
}

static void unload(void *priv)
{
    unloads++;
    last_unloaded = priv ? *(int *)priv : 0;
}

static void test_accepts_and_finds(void)
{
    char err[256];
    module_table *mt = module_table_create();
    static const gcn_module a = {.api_major = GEN_CNODE_API_MAJOR, .api_minor = GEN_CNODE_API_MINOR, .name = "a", .handle_call = call};
    static const gcn_module b = {.api_major = GEN_CNODE_API_MAJOR, .api_minor = 0, .name = "b", .load = load_ok, .unload = unload,
                                 .handle_call = call};
    int x = 1;
    void *priv = NULL;
    loads = unloads = 0;
    CU_ASSERT_EQUAL(module_table_add(mt, &a, &x, NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(module_table_add(mt, &b, NULL, "seven", err, sizeof err), 0);
    CU_ASSERT_EQUAL(loads, 1);
    CU_ASSERT_PTR_EQUAL(module_table_find(mt, "a", &priv), &a);
    CU_ASSERT_PTR_EQUAL(priv, &x);
    CU_ASSERT_PTR_EQUAL(module_table_find(mt, "b", &priv), &b);
    CU_ASSERT_PTR_EQUAL(priv, &priv_value); /* what load chose */
    CU_ASSERT_PTR_NULL(module_table_find(mt, "c", NULL));
    CU_ASSERT_EQUAL(module_table_count(mt), 2);
    CU_ASSERT_PTR_EQUAL(module_table_at(mt, 1), &b);
    module_table_destroy(mt);
    CU_ASSERT_EQUAL(unloads, 1);
    CU_ASSERT_EQUAL(last_unloaded, 7);
}

static void test_refuses_with_a_reason(void)
{
    char err[256];
    module_table *mt = module_table_create();
    static const gcn_module ok = {.api_major = GEN_CNODE_API_MAJOR, .api_minor = 0, .name = "ok", .handle_call = call};
    static const gcn_module other_major = {.api_major = GEN_CNODE_API_MAJOR + 1, .api_minor = 0, .name = "m", .handle_call = call};
    static const gcn_module newer_minor = {.api_major = GEN_CNODE_API_MAJOR, .api_minor = GEN_CNODE_API_MINOR + 1, .name = "n",
                                           .handle_call = call};
    static const gcn_module no_call = {.api_major = GEN_CNODE_API_MAJOR, .api_minor = 0, .name = "nc"};
    static const gcn_module no_name = {.api_major = GEN_CNODE_API_MAJOR, .api_minor = 0, .name = "", .handle_call = call};
    static const gcn_module refuses = {.api_major = GEN_CNODE_API_MAJOR, .api_minor = 0, .name = "r", .load = load_refuses,
                                       .unload = unload, .handle_call = call};
    unloads = 0;
    CU_ASSERT_EQUAL(module_table_add(mt, &ok, NULL, NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(module_table_add(mt, &ok, NULL, NULL, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "already loaded"));
    CU_ASSERT_EQUAL(module_table_add(mt, &other_major, NULL, NULL, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "rebuild it against this gen_cnode.h"));
    CU_ASSERT_EQUAL(module_table_add(mt, &newer_minor, NULL, NULL, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "upgrade gen_cnode"));
    CU_ASSERT_EQUAL(module_table_add(mt, &no_call, NULL, NULL, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "handle_call"));
    CU_ASSERT_EQUAL(module_table_add(mt, &no_name, NULL, NULL, err, sizeof err), -1);
    CU_ASSERT_EQUAL(module_table_add(mt, &refuses, NULL, "x", err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "its load function failed with arguments x"));
    CU_ASSERT_EQUAL(module_table_count(mt), 1);
    CU_ASSERT_EQUAL(module_table_load(mt, "/nonexistent/x.so", err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/x.so"));
    CU_ASSERT_EQUAL(module_table_load(mt, "=args", err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "PATH"));
    CU_ASSERT_EQUAL(module_table_count(mt), 1);
    module_table_destroy(mt);
    CU_ASSERT_EQUAL(unloads, 0); /* a module refused is never unloaded */
}

void unit_suite_module(void)
{
    CU_pSuite s = CU_add_suite("module", NULL, NULL);
    CU_add_test(s, "a module is accepted, found, loaded and unloaded", test_accepts_and_finds);
    CU_add_test(s, "a module is refused with a reason", test_refuses_with_a_reason);
}

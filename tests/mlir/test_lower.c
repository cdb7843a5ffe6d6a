/* test_lower.c — the loom dialect passes and the artifact cache, on real
 * MLIR: a RAG-shaped plan through every pass (structure checked here, exact
 * text in the golden tests), malformed plans failing with a located
 * diagnostic, the verifier catching broken send/recv pairs, and artifacts
 * served from memory and disk by content address. */
#include "mlir-lowering/artifact.h"
#include "mlir-lowering/lower.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

int loom_test_lower_main(void);

static loom_mlir_t *M;

/* q.embed -> docs.search -> answer.prefill =kv=> answer.decode -> notify */
static loom_lower_node_t rag_nodes[] = {
    {.name = "q.embed", .op = "embed", .step = "q", .model = "bge-small", .device = "cpu0", .pred_ms = 3, .line = 5, .col = 3},
    {.name = "docs.search", .op = "vector.search", .step = "docs", .index = "kb", .topk = 4, .device = "cpu0", .pred_ms = 1, .line = 9, .col = 3},
    {.name = "answer.prefill", .op = "llm.prefill", .step = "answer", .model = "llama-8b", .device = "a100", .pred_ms = 40, .line = 14, .col = 3},
    {.name = "answer.decode", .op = "llm.decode", .step = "answer", .model = "llama-8b", .device = "l4", .pred_ms = 300, .line = 14, .col = 3},
    {.name = "notify.exec", .op = "tool.exec", .step = "notify", .device = "cpu0", .line = 20, .col = 3},
};
static loom_lower_edge_t rag_edges[] = {{0, 1, 0, 0, 0}, {1, 2, 0, 0, 0}, {2, 3, 1, 2.5, 0.001}, {3, 4, 0, 0, 0}};

static loom_lower_wf_t rag(loom_lower_node_t *nodes)
{
    return (loom_lower_wf_t){.name = "rag", .file = "examples/rag.yaml", .sla_ms = 2000, .nnodes = 5,
                             .nedges = 4, .nodes = nodes, .edges = rag_edges};
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_rag_passes(void **state)
{
    (void)state;
    loom_lower_wf_t wf = rag(rag_nodes);
    loom_err_t err = {0};
    loom_buf_t emit = LOOM_BUF_INIT, dec = LOOM_BUF_INIT, part = LOOM_BUF_INIT;
    assert_int_equal(loom_lower_text(M, &wf, 1, LOOM_PASS_EMIT, &emit, &err), 0);
    assert_int_equal(count(emit.data, "\"loom.llm.generate\""), 1); /* prefill+decode as one call */
    assert_int_equal(count(emit.data, "\"loom.llm.prefill\""), 0);
    assert_int_equal(loom_lower_text(M, &wf, 1, LOOM_PASS_DECOMPOSE, &dec, &err), 0);
    assert_int_equal(count(dec.data, "\"loom.llm.generate\""), 0); /* split: a100 vs l4 */
    assert_int_equal(count(dec.data, "\"loom.kv.transfer\""), 1);
    int rc = loom_lower_text(M, &wf, 1, LOOM_PASS_VERIFY, &part, &err);
    if (rc)
        print_error("%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(count(part.data, "func.func @"), 3);
    assert_non_null(strstr(part.data, "@\"rag@a100\""));
    /* Three cross-device edges: search->prefill, kv->decode, decode->tool. */
    assert_int_equal(count(part.data, "\"loom.send\""), 3);
    assert_int_equal(count(part.data, "\"loom.recv\""), 3);
    assert_non_null(strstr(part.data, "channel = \"rag:answer/kv.transfer->l4\""));
    /* Deterministic: the same input prints the same text. */
    loom_buf_t again = LOOM_BUF_INIT;
    assert_int_equal(loom_lower_text(M, &wf, 1, LOOM_PASS_VERIFY, &again, &err), 0);
    assert_string_equal(part.data, again.data);
    /* Same device for prefill and decode: generate stays whole. */
    loom_lower_node_t same[5];
    memcpy(same, rag_nodes, sizeof same);
    same[3].device = "a100";
    wf = rag(same);
    loom_buf_t one = LOOM_BUF_INIT;
    assert_int_equal(loom_lower_text(M, &wf, 1, LOOM_PASS_VERIFY, &one, &err), 0);
    assert_int_equal(count(one.data, "\"loom.llm.generate\""), 1);
    assert_int_equal(count(one.data, "\"loom.kv.transfer\""), 0);
    assert_int_equal(count(one.data, "\"loom.send\""), 2);
    loom_buf_free(&emit), loom_buf_free(&dec), loom_buf_free(&part), loom_buf_free(&again), loom_buf_free(&one);
}

static void test_device_functions_listed(void **state)
{
    (void)state;
    loom_lower_wf_t wf = rag(rag_nodes);
    loom_err_t err = {0};
    loom_lowering_t *l = NULL;
    assert_int_equal(loom_lower_emit(M, &wf, 1, &l, &err), 0);
    assert_int_equal(loom_lower_run(l, LOOM_PASS_VERIFY, &err), 0);
    assert_int_equal(loom_lower_nfuncs(l), 3);
    assert_string_equal(loom_lower_func_device(l, 0), "cpu0");
    assert_string_equal(loom_lower_func_name(l, 1), "rag@a100");
    loom_lower_destroy(&l);
    loom_lower_destroy(&l); /* safe twice */
}

static void test_malformed_plans(void **state)
{
    (void)state;
    loom_err_t err = {0};
    loom_buf_t out = LOOM_BUF_INIT;
    /* Unplaced node: annotate-targets names it, at its step's line. */
    loom_lower_node_t n[5];
    memcpy(n, rag_nodes, sizeof n);
    n[1].device = NULL;
    loom_lower_wf_t wf = rag(n);
    assert_int_equal(loom_lower_text(M, &wf, 1, LOOM_PASS_ANNOTATE, &out, &err), LOOM_EINVAL);
    assert_string_equal(err.file, "examples/rag.yaml");
    assert_int_equal(err.line, 9);
    assert_non_null(strstr(err.msg, "docs.search"));
    /* Unknown op kind. */
    memcpy(n, rag_nodes, sizeof n);
    n[4].op = "teleport";
    wf = rag(n);
    assert_int_equal(loom_lower_text(M, &wf, 1, LOOM_PASS_EMIT, &out, &err), LOOM_EINVAL);
    assert_int_equal(err.line, 20);
    assert_string_equal(err.field, "steps.notify");
    /* A KV cache fed to a tool: the dialect's types reject it, located. */
    memcpy(n, rag_nodes, sizeof n);
    loom_lower_edge_t e[] = {{0, 1, 0, 0, 0}, {1, 2, 0, 0, 0}, {2, 3, 1, 0, 0}, {2, 4, 0, 0, 0}};
    wf = rag(n);
    wf.edges = e;
    assert_int_equal(loom_lower_text(M, &wf, 1, LOOM_PASS_EMIT, &out, &err), LOOM_EINVAL);
    assert_int_equal(err.line, 20);
    assert_non_null(strstr(err.msg, "loom.text"));
    /* A cycle. */
    loom_lower_edge_t cyc[] = {{0, 1, 0, 0, 0}, {1, 0, 0, 0, 0}};
    wf = rag(n);
    wf.edges = cyc, wf.nedges = 2;
    assert_int_equal(loom_lower_text(M, &wf, 1, LOOM_PASS_EMIT, &out, &err), LOOM_EINVAL);
    assert_non_null(strstr(err.msg, "cycle"));
    assert_int_equal(err.line, 5);
    /* Edge out of range, duplicate node names, duplicate workflows. */
    loom_lower_edge_t bad[] = {{0, 7, 0, 0, 0}};
    wf = rag(n);
    wf.edges = bad, wf.nedges = 1;
    assert_int_equal(loom_lower_text(M, &wf, 1, LOOM_PASS_EMIT, &out, &err), LOOM_EINVAL);
    n[1].name = "q.embed";
    wf = rag(n);
    assert_int_equal(loom_lower_text(M, &wf, 1, LOOM_PASS_EMIT, &out, &err), LOOM_EINVAL);
    assert_non_null(strstr(err.msg, "twice"));
    loom_lower_wf_t two[2] = {rag(rag_nodes), rag(rag_nodes)};
    assert_int_equal(loom_lower_text(M, two, 2, LOOM_PASS_EMIT, &out, &err), LOOM_EINVAL);
    loom_buf_free(&out);
}

static void test_two_workflows_one_module(void **state)
{
    (void)state;
    loom_lower_wf_t two[2] = {rag(rag_nodes), rag(rag_nodes)};
    two[1].name = "rag2";
    loom_err_t err = {0};
    loom_buf_t out = LOOM_BUF_INIT;
    assert_int_equal(loom_lower_text(M, two, 2, LOOM_PASS_EMIT, &out, &err), 0);
    assert_int_equal(count(out.data, "func.func @"), 2);
    loom_buf_free(&out);
    assert_int_equal(loom_lower_text(M, two, 2, LOOM_PASS_VERIFY, &out, &err), 0);
    assert_int_equal(count(out.data, "func.func @"), 6);
    loom_buf_free(&out);
}

static void test_verify_catches_broken_channels(void **state)
{
    (void)state;
    loom_err_t err = {0};
    /* A recv with no matching send, on line 4. */
    static const char lone[] =
        "func.func @\"w@a\"(%in: !loom.text) -> !loom.text attributes {loom.device = \"a\", loom.workflow = \"w\"} {\n"
        "  return %in : !loom.text\n}\n"
        "func.func @\"w@b\"(%in: !loom.text) -> !loom.text attributes {loom.device = \"b\", loom.workflow = \"w\"} {\n"
        "  %0 = \"loom.recv\"() {channel = \"c\", from = \"a\", target = \"b\"} : () -> !loom.text\n"
        "  return %0 : !loom.text\n}\n";
    assert_int_equal(loom_lower_verify_text(M, lone, strlen(lone), "w.mlir", &err), LOOM_EINVAL);
    assert_int_equal(err.line, 5);
    assert_non_null(strstr(err.msg, "0 send(s)"));
    /* An op in the wrong device's function. */
    static const char wrong[] =
        "func.func @\"w@a\"(%in: !loom.text) -> !loom.text attributes {loom.device = \"a\", loom.workflow = \"w\"} {\n"
        "  %0 = \"loom.tool\"(%in) {kind = \"exec\", step = \"s\", target = \"b\", budget_ms = 0.0, pred_ms = 0.0, pred_cost = 0.0} : (!loom.text) -> !loom.text\n"
        "  return %0 : !loom.text\n}\n";
    assert_int_equal(loom_lower_verify_text(M, wrong, strlen(wrong), "w.mlir", &err), LOOM_EINVAL);
    assert_int_equal(err.line, 2);
    /* A good partitioned module from the passes verifies from its text too. */
    loom_lower_wf_t wf = rag(rag_nodes);
    loom_buf_t out = LOOM_BUF_INIT;
    assert_int_equal(loom_lower_text(M, &wf, 1, LOOM_PASS_VERIFY, &out, &err), 0);
    assert_int_equal(loom_lower_verify_text(M, out.data, out.len, "rag.mlir", &err), 0);
    /* A refusal about one node is located at the op that runs it. */
    const char *at = strstr(out.data, "node = \"q.embed\"");
    assert_non_null(at);
    int line = 1;
    for (const char *c = out.data; c < at; c++)
        line += *c == '\n';
    loom_err_set(&err, LOOM_EINVAL, "refused");
    assert_int_equal(loom_lower_locate_node_text(M, out.data, out.len, "rag.mlir", "q.embed", &err), 0);
    assert_string_equal(err.file, "rag.mlir");
    assert_int_equal(err.line, line);
    assert_string_equal(err.msg, "refused");
    assert_int_equal(loom_lower_locate_node_text(M, out.data, out.len, "rag.mlir", "nowhere", &err), LOOM_ENOTFOUND);
    loom_buf_free(&out);
}

static int count_node(void *ud, const char *wf, const char *node, const char *dev)
{
    (void)wf;
    char *seen = ud; /* "node@dev " */
    size_t len = strlen(seen);
    snprintf(seen + len, 1024 - len, "%s@%s ", node, dev);
    return 0;
}

/* A loop (markers r.begin/r.end) whose body spans two devices, a when:
 * step in it, and a foreach step after it: control-regions makes them
 * loom.loop (one per device), loom.when and loom.foreach regions; the
 * module verifies from its text, and the loop's markers are no tasks. */
static void test_control_regions(void **state)
{
    (void)state;
    loom_lower_node_t nodes[] = {
        {.name = "r.begin", .op = "noop", .step = "r", .device = "a", .loop_marker = 1, .until = "${steps.t.output} == 1", .max_iterations = 5},
        {.name = "r.t", .op = "tool.exec", .step = "t", .device = "a"},
        {.name = "r.u", .op = "tool.exec", .step = "u", .device = "b", .when = "${steps.t.output} != 1"},
        {.name = "r.end", .op = "noop", .step = "r", .device = "a", .loop_marker = 2},
        {.name = "f", .op = "tool.exec", .step = "f", .device = "b", .foreach = "${steps.r.output.t}"},
    };
    loom_lower_edge_t edges[] = {{0, 1, 0, 0, 0}, {1, 2, 0, 0, 0}, {2, 3, 0, 0, 0}, {3, 4, 0, 0, 0}};
    loom_lower_wf_t wf = {.name = "c", .nnodes = 5, .nedges = 4, .nodes = nodes, .edges = edges};
    loom_err_t err = {0};
    loom_buf_t out = LOOM_BUF_INIT;
    assert_int_equal(loom_lower_text(M, &wf, 1, LOOM_PASS_VERIFY, &out, &err), 0);
    assert_int_equal(count(out.data, "\"loom.loop\""), 2); /* its share of the body on a and on b */
    assert_int_equal(count(out.data, "max_iterations = 5"), 2);
    assert_int_equal(count(out.data, "\"loom.when\""), 1);
    assert_int_equal(count(out.data, "\"loom.foreach\""), 1);
    assert_int_equal(count(out.data, "r.begin"), 0); /* the markers became the loop's operands and yield */
    assert_int_equal(count(out.data, "r.end"), 0);
    assert_int_equal(count(out.data, "gpu.yield"), 4);
    char seen[1024] = "";
    assert_int_equal(loom_lower_placements_text(M, out.data, out.len, "c.mlir", count_node, seen, &err), 0);
    assert_string_equal(seen, "r.t@a r.u@b f@b ");
    loom_buf_free(&out);
}

static void test_artifact_cache(void **state)
{
    (void)state;
    char dir[] = "/tmp/loom-art-XXXXXX";
    assert_non_null(mkdtemp(dir));
    loom_err_t err = {0};
    loom_artifact_cache_t *c = loom_artifact_cache_new(M, dir, &err);
    assert_non_null(c);
    loom_kernel_spec_t s = {.kind = LOOM_KERNEL_SOFTMAX, .m = 2, .n = 8, .k = 1};
    loom_buf_t src = LOOM_BUF_INIT;
    loom_kernel_sig_t sig;
    assert_int_equal(loom_kernel_source(&s, 0, &src, &sig, &err), 0);
    const loom_artifact_t *a = NULL, *b = NULL;
    int hit = -1;
    assert_int_equal(loom_artifact_compile(c, src.data, src.len, "softmax", LOOM_TARGET_CPU, NULL, &sig, &a, &hit, &err), 0);
    assert_int_equal(hit, 0);
    assert_int_equal(loom_artifact_compile(c, src.data, src.len, "softmax", LOOM_TARGET_CPU, NULL, &sig, &b, &hit, &err), 0);
    assert_int_equal(hit, 1);
    assert_ptr_equal(a, b);
    /* Other target or arch: other address. */
    const loom_artifact_t *g80, *g90;
    assert_int_equal(loom_artifact_compile(c, src.data, src.len, "softmax", LOOM_TARGET_GPU, "sm_80", &sig, &g80, &hit, &err), 0);
    assert_int_equal(loom_artifact_compile(c, src.data, src.len, "softmax", LOOM_TARGET_GPU, "sm_90", &sig, &g90, &hit, &err), 0);
    assert_string_not_equal(g80->hash, g90->hash);
    assert_string_not_equal(a->hash, g80->hash);
    assert_non_null(strstr(g90->payload, ".target sm_90"));
    char key[LOOM_SHA256_HEX_LEN];
    assert_int_equal(loom_artifact_key(src.data, src.len, LOOM_TARGET_CPU, NULL, key), 0);
    assert_string_equal(key, a->hash);
    /* The JIT from the artifact runs. */
    loom_jit_t *j = NULL;
    assert_int_equal(loom_artifact_jit(c, a, &j, &err), 0);
    float x[16], y[16], mx[2], sm[2];
    for (int i = 0; i < 16; i++)
        x[i] = (float)i;
    void *bufs[] = {x, y, mx, sm};
    assert_int_equal(loom_jit_call(j, &a->sig, bufs, &err), 0);
    assert_true(y[7] > y[6] && y[7] < 1.0f);
    assert_int_equal(loom_artifact_jit(c, g90, &j, &err), LOOM_EINVAL);
    /* A second cache on the same directory finds it on disk. */
    char hash[LOOM_SHA256_HEX_LEN];
    snprintf(hash, sizeof hash, "%s", a->hash);
    loom_artifact_cache_t *c2 = loom_artifact_cache_new(NULL, dir, &err);
    assert_int_equal(loom_artifact_compile(c2, src.data, src.len, "softmax", LOOM_TARGET_CPU, NULL, &sig, &b, &hit, &err), 0);
    assert_int_equal(hit, 2);
    assert_int_equal(b->sig.nargs, 4);
    assert_int_equal(b->sig.args[1].is_input, 0);
    /* Shipping: encode on one side, put on the other. */
    loom_buf_t enc = LOOM_BUF_INIT;
    assert_int_equal(loom_artifact_encode(g80, &enc), 0);
    loom_artifact_cache_t *w = loom_artifact_cache_new(NULL, NULL, &err);
    const loom_artifact_t *got;
    assert_int_equal(loom_artifact_put(w, enc.data, enc.len, &got, &err), 0);
    assert_string_equal(got->hash, g80->hash);
    assert_int_equal(got->len, g80->len);
    assert_memory_equal(got->payload, g80->payload, got->len);
    assert_int_equal(loom_artifact_get(w, g80->hash, &got, &err), 0);
    assert_int_equal(loom_artifact_get(w, a->hash, &got, &err), LOOM_ENOTFOUND);
    /* Garbage and truncations are refused. */
    assert_int_equal(loom_artifact_put(w, "junk", 4, &got, &err), LOOM_EPARSE);
    for (size_t cut = 1; cut < enc.len; cut += enc.len / 37 + 1)
        assert_int_not_equal(loom_artifact_put(w, enc.data, cut, &got, &err), 0);
    /* A kernel that does not verify is not cached and names its line. */
    static const char badk[] = "func.func @k(%a: memref<4xf32>) {\n  %x = arith.addf %a, %a : f32\n  return\n}\n";
    assert_int_equal(loom_artifact_compile(c, badk, strlen(badk), "k.mlir", LOOM_TARGET_CPU, NULL, NULL, &a, &hit, &err), LOOM_EPARSE);
    assert_int_equal(err.line, 2);
    unsigned long comp, mem, disk;
    loom_artifact_stats(c, &comp, &mem, &disk);
    assert_int_equal(comp, 3);
    assert_int_equal(mem, 1);
    loom_artifact_cache_destroy(&w);
    loom_artifact_cache_destroy(&c2);
    loom_artifact_cache_destroy(&c);
    loom_buf_free(&enc);
    loom_buf_free(&src);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
    (void)state;
    loom_err_t err = {0};
    M = loom_mlir_new(&err);
    return M ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    loom_mlir_destroy(&M);
    return 0;
}

int loom_test_lower_main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rag_passes),
        cmocka_unit_test(test_device_functions_listed),
        cmocka_unit_test(test_malformed_plans),
        cmocka_unit_test(test_two_workflows_one_module),
        cmocka_unit_test(test_verify_catches_broken_channels),
        cmocka_unit_test(test_control_regions),
        cmocka_unit_test(test_artifact_cache),
    };
    return cmocka_run_group_tests_name("lower", tests, setup, teardown);
}

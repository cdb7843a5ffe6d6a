/* test_llm_prefix.c — prefix reuse (llm_prefix.h) on generated models: a
 * four-turn conversation whose prompt grows by the previous answer and a
 * new user message, generated with a fresh CPU context per turn (as the
 * worker ops do), once without and once with the prefix cache: the tokens
 * are the same (greedy and seeded sampling), every turn after the first
 * reuses exactly the KV of the previous prompt and answer, and only the new
 * tokens are evaluated. Also: the byte bound evicts, another model never
 * matches, a prompt shorter than two tokens reuses nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "llm/llm_engine.h"
#include <jansson.h>

#include "llm/llm_prefix.h"
#include "protocol/prefix_key.h"

#define TURNS 4
#define GEN 8

static char dir[] = "/tmp/loom-prefix-test-XXXXXX";
static loom_llm_model_t *models[2];
static loom_llm_pool_t *pool;

static int setup(void **state) {
    (void)state;
    if (!mkdtemp(dir)) return -1;
    const char *types[2] = {"Q8_0", "F32"};
    for (int i = 0; i < 2; i++) {
        char path[256], cmd[512];
        snprintf(path, sizeof path, "%s/m%d.gguf", dir, i);
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/llm/gen_gguf.py --arch llama --type %s --ctx 512 -o %s", types[i], path);
        loom_err_t e = {0};
        if (system(cmd) || loom_llm_model_load(path, &models[i], &e)) {
            fprintf(stderr, "setup: %s %s\n", cmd, e.msg);
            return -1;
        }
    }
    return (pool = loom_llm_pool_new(0)) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    for (int i = 0; i < 2; i++) loom_llm_model_destroy(&models[i]);
    loom_llm_pool_destroy(&pool);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) ? -1 : 0;
}

/* One generation on a fresh context; the generated ids go to out. */
static void generate(const loom_llm_model_t *m, loom_llm_prefix_cache_t *c, const int32_t *ids, size_t n,
                     float temperature, int32_t *out, int *n_out, int *reused) {
    loom_llm_cpu_t *cpu;
    loom_err_t e = {0};
    assert_int_equal(loom_llm_cpu_new(m, pool, (int)n + GEN + 1, &cpu, &e), 0);
    loom_llm_backend_t b;
    loom_llm_backend_cpu(cpu, &b);
    loom_llm_gen_params_t p = {.max_tokens = GEN, .prefix = c,
                               .sampling = {.temperature = temperature, .seed = 42}};
    loom_llm_gen_result_t r;
    loom_buf_t text = LOOM_BUF_INIT;
    assert_int_equal(loom_llm_generate(m, &b, ids, n, &p, &text, &r, &e), 0);
    memcpy(out, r.tokens, (size_t)r.n_generated * sizeof *out);
    *n_out = r.n_generated;
    *reused = r.n_reused;
    free(r.tokens);
    loom_buf_free(&text);
    loom_llm_cpu_destroy(&cpu);
}

/* The conversation: turn t's prompt is turn t-1's prompt, its answer and a
 * new user message of a few ids. */
static void conversation(const loom_llm_model_t *m, float temperature) {
    loom_llm_prefix_cache_t *c = loom_llm_prefix_cache_new(64u << 20);
    int32_t plain[400], cached[400];
    size_t n = 0;
    for (int i = 0; i < 40; i++) plain[n++] = 1 + (i * 7) % 300; /* "system prompt" */
    memcpy(cached, plain, n * sizeof *plain);
    size_t prev = 0;
    int prev_gen = 0;
    for (int t = 0; t < TURNS; t++) {
        for (int i = 0; i < 12; i++) plain[n + (size_t)i] = cached[n + (size_t)i] = 2 + (t * 31 + i * 5) % 350;
        n += 12;
        int32_t a[GEN], b[GEN];
        int na, nb, ra, rb;
        generate(m, NULL, plain, n, temperature, a, &na, &ra);
        generate(m, c, cached, n, temperature, b, &nb, &rb);
        assert_int_equal(ra, 0);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, (size_t)na * sizeof *a); /* reuse changes nothing */
        /* the previous prompt and all of its answer but the last token
         * (which was sampled, not run) */
        assert_int_equal(rb, t == 0 ? 0 : (int)prev + prev_gen - 1);
        memcpy(plain + n, a, (size_t)na * sizeof *a);
        memcpy(cached + n, a, (size_t)na * sizeof *a);
        prev = n;
        prev_gen = na;
        n += (size_t)na;
    }
    assert_int_equal(loom_llm_prefix_cache_entries(c), 1); /* each turn's entry replaced the one it extends */
    loom_llm_prefix_cache_destroy(&c);
}

static void test_greedy_q8(void **state) { (void)state; conversation(models[0], 0.0f); }
static void test_seeded_f32(void **state) { (void)state; conversation(models[1], 0.9f); }

static void test_bounds(void **state) {
    (void)state;
    const loom_llm_model_t *m = models[0];
    size_t per_token = (size_t)m->n_kv_heads * (size_t)m->head_dim * 4 * 2 * (size_t)m->n_layers;
    /* room for about 100 tokens: a second unrelated prompt evicts the first */
    loom_llm_prefix_cache_t *c = loom_llm_prefix_cache_new(per_token * 100);
    int32_t x[60], y[60], out[GEN];
    for (int i = 0; i < 60; i++) x[i] = 3 + i, y[i] = 200 + i;
    int no, r;
    generate(m, c, x, 60, 0.0f, out, &no, &r);
    assert_int_equal(loom_llm_prefix_cache_entries(c), 1);
    generate(m, c, y, 60, 0.0f, out, &no, &r);
    assert_int_equal(r, 0);
    assert_int_equal(loom_llm_prefix_cache_entries(c), 1);
    assert_true(loom_llm_prefix_cache_bytes(c) <= per_token * 100);
    generate(m, c, x, 60, 0.0f, out, &no, &r);
    assert_int_equal(r, 0); /* x was evicted (and is now back) */
    generate(m, c, x, 60, 0.0f, out, &no, &r);
    assert_int_equal(r, 59); /* all but the last prompt token */
    /* the same ids on another model never match */
    generate(models[1], c, x, 60, 0.0f, out, &no, &r);
    assert_int_equal(r, 0);
    generate(m, c, x, 1, 0.0f, out, &no, &r);
    assert_int_equal(r, 0); /* one token: nothing to reuse, it must run */
    loom_llm_prefix_cache_destroy(&c);
    /* a zero budget keeps nothing */
    c = loom_llm_prefix_cache_new(0);
    generate(m, c, x, 60, 0.0f, out, &no, &r);
    assert_int_equal(loom_llm_prefix_cache_entries(c), 0);
    loom_llm_prefix_cache_destroy(&c);
}

/* Names (protocol/prefix_key.h): the entry a generation saved is named by
 * its input and answer; the next turn's input, which starts with them,
 * shares every full block; the list is bounded, and an evicted entry's
 * names go with it. */
static void test_names(void **state) {
    (void)state;
    const loom_llm_model_t *m = models[0];
    loom_llm_prefix_cache_t *c = loom_llm_prefix_cache_new(64u << 20);
    int32_t x[60], out[GEN];
    for (int i = 0; i < 60; i++) x[i] = 3 + i;
    int no, r;
    uint64_t keys[64], next[64], held[64];
    uint32_t toks[64];
    assert_int_equal(loom_llm_prefix_cache_keys(c, held, toks, 64), 0);
    generate(m, c, x, 60, 0.0f, out, &no, &r);
    char sys[700];
    memset(sys, 's', sizeof sys - 1);
    sys[sizeof sys - 1] = 0;
    json_t *in = json_pack("{s:{s:s, s:s}, s:[{s:s, s:s}, {s:s, s:s}]}", "model_resource", "name", "chat", "path",
                           "chat.gguf", "messages", "role", "system", "content", sys, "role", "user", "content", "hi");
    size_t tl = 0, nk = loom_prefix_keys(in, "an answer", keys, 64, &tl);
    assert_int_equal(nk, tl / LOOM_PREFIX_BLOCK);
    assert_true(nk >= 2);
    assert_int_equal(loom_llm_prefix_tag(c, m, keys, nk, tl), 0);
    size_t nh = loom_llm_prefix_cache_keys(c, held, toks, 64);
    assert_int_equal(nh, nk);
    assert_true(held[0] == keys[nk - 1]); /* longest first */
    assert_true(toks[0] > toks[nh - 1] && toks[0] <= 60 + GEN);
    assert_int_equal(loom_llm_prefix_cache_keys(c, held, toks, 1), 1); /* bounded */
    /* the next turn: the same messages, the answer, a new question */
    json_t *msgs = json_object_get(in, "messages");
    json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "assistant", "content", "an answer"));
    json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user", "content", "and then?"));
    size_t nn = loom_prefix_keys(in, NULL, next, 64, NULL);
    assert_true(nn >= nk);
    assert_memory_equal(next, keys, nk * sizeof *keys);
    /* another model: another seed */
    json_object_set_new(json_object_get(in, "model_resource"), "path", json_string("other.gguf"));
    assert_int_equal(loom_prefix_keys(in, NULL, next, 64, NULL), nn);
    assert_true(next[0] != keys[0]);
    /* no prompt, no messages: no names */
    json_t *bad = json_pack("{s:i}", "prompt", 3);
    assert_int_equal(loom_prefix_keys(bad, NULL, next, 64, NULL), 0);
    json_decref(bad);
    json_decref(in);
    loom_llm_prefix_cache_destroy(&c);
    /* evicted with its entry */
    c = loom_llm_prefix_cache_new(0);
    generate(m, c, x, 60, 0.0f, out, &no, &r);
    assert_int_equal(loom_llm_prefix_tag(c, m, keys, nk, tl), 0);
    assert_int_equal(loom_llm_prefix_cache_keys(c, held, toks, 64), 0);
    loom_llm_prefix_cache_destroy(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_greedy_q8),
        cmocka_unit_test(test_seeded_f32),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* prefix_bench.c — part of `make bench-kv`: a multi-turn agent on the LLM
 * engine with prefix reuse (llm/llm_prefix.h) against without, in the same
 * run, alternating. Each turn is what the worker's llm.generate does: a fresh
 * backend context, the whole conversation so far as the prompt (system
 * prompt, then per turn a user message and the model's answer), greedy
 * generation. Prints, per side, the median (range) end-to-end time of the
 * whole conversation and the prompt tokens actually evaluated, and checks
 * that both sides generated the same tokens.
 * Usage: bench-kv-prefix MODEL [ROUNDS] [TURNS] [SYSTEM] [USER] [ANSWER]
 *        (default 3 rounds, 10 turns, 200-token system prompt, 60-token user
 *        messages, 32-token answers). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "llm/llm_engine.h"
#include "llm/llm_prefix.h"

static double now(void) { return (double)loom_clock_ns() * 1e-9; } /* seconds, monotonic */

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    int turns, sys, user, answer;
} shape_t;

/* One conversation; returns its wall time, adds the tokens evaluated in
 * prefills to *prefilled and writes every answer's ids to out. */
static double conversation(const loom_llm_model_t *m, loom_llm_pool_t *pool, const shape_t *s,
                           loom_llm_prefix_cache_t *cache, long *prefilled, int32_t *out) {
    size_t cap = (size_t)s->sys + (size_t)s->turns * (size_t)(s->user + s->answer) + 1;
    int32_t *ids = malloc(cap * sizeof *ids);
    size_t n = 0, o = 0;
    uint32_t x = 12345;
    for (int i = 0; i < s->sys; i++) ids[n++] = 1 + (int32_t)((x = x * 1664525u + 1013904223u) >> 8) % (m->n_vocab - 1);
    double t0 = now();
    for (int t = 0; t < s->turns; t++) {
        for (int i = 0; i < s->user; i++) ids[n++] = 1 + (int32_t)((x = x * 1664525u + 1013904223u) >> 8) % (m->n_vocab - 1);
        loom_llm_cpu_t *cpu;
        loom_err_t e = {0};
        if (loom_llm_cpu_new(m, pool, (int)(n + (size_t)s->answer + 1), &cpu, &e)) {
            fprintf(stderr, "bench-kv-prefix: %s\n", e.msg);
            exit(1);
        }
        loom_llm_backend_t b;
        loom_llm_backend_cpu(cpu, &b);
        loom_llm_gen_params_t p = {.max_tokens = s->answer, .prefix = cache};
        loom_llm_gen_result_t r;
        loom_buf_t text = LOOM_BUF_INIT;
        if (loom_llm_generate(m, &b, ids, n, &p, &text, &r, &e)) {
            fprintf(stderr, "bench-kv-prefix: %s\n", e.msg);
            exit(1);
        }
        *prefilled += r.n_prompt - r.n_reused;
        for (int i = 0; i < s->answer; i++) out[o++] = i < r.n_generated ? r.tokens[i] : -1;
        memcpy(ids + n, r.tokens, (size_t)r.n_generated * sizeof *ids); /* the answer joins the context */
        n += (size_t)r.n_generated;
        free(r.tokens);
        loom_buf_free(&text);
        loom_llm_cpu_destroy(&cpu);
    }
    double dt = now() - t0;
    free(ids);
    return dt;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help")) {
        printf("usage: bench-kv-prefix MODEL [ROUNDS] [TURNS] [SYSTEM] [USER] [ANSWER]\n"
               "A multi-turn conversation on the LLM engine with prefix reuse against without.\n");
        return argc < 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    shape_t s = {argc > 3 ? atoi(argv[3]) : 10, argc > 4 ? atoi(argv[4]) : 200, argc > 5 ? atoi(argv[5]) : 60,
                 argc > 6 ? atoi(argv[6]) : 32};
    if (rounds < 1 || s.turns < 1 || s.sys < 1 || s.user < 1 || s.answer < 1) {
        fprintf(stderr, "bench-kv-prefix: counts must be positive\n");
        return 2;
    }
    loom_llm_model_t *m;
    loom_err_t e = {0};
    if (loom_llm_model_load(argv[1], &m, &e)) {
        fprintf(stderr, "bench-kv-prefix: %s\n", e.msg);
        return 1;
    }
    size_t total = (size_t)s.sys + (size_t)s.turns * (size_t)(s.user + s.answer);
    if (total >= (size_t)m->n_ctx) {
        fprintf(stderr, "bench-kv-prefix: %zu tokens do not fit the model's context (%d)\n", total, m->n_ctx);
        return 2;
    }
    loom_llm_pool_t *pool = loom_llm_pool_new(0);
    size_t per = (size_t)s.turns * (size_t)s.answer;
    int32_t *a = malloc(per * sizeof *a), *b = malloc(per * sizeof *b);
    double *ta = malloc((size_t)rounds * sizeof *ta), *tb = malloc((size_t)rounds * sizeof *tb);
    long pa = 0, pb = 0;
    int same = 1;
    printf("bench-kv-prefix: %s (%d layers, dim %d), %d turns: %d-token system prompt, %d-token user messages,\n"
           "  %d-token greedy answers (final context %zu tokens); a fresh context per turn; %d rounds alternating\n",
           argv[1], m->n_layers, m->dim, s.turns, s.sys, s.user, s.answer, total, rounds);
    for (int r = 0; r < rounds; r++) {
        long p = 0;
        ta[r] = conversation(m, pool, &s, NULL, &p, a);
        pa = p;
        loom_llm_prefix_cache_t *c = loom_llm_prefix_cache_new(4ull << 30);
        p = 0;
        tb[r] = conversation(m, pool, &s, c, &p, b);
        pb = p;
        loom_llm_prefix_cache_destroy(&c);
        same &= !memcmp(a, b, per * sizeof *a);
        printf("  round %d: without %.2f s, with %.2f s\n", r + 1, ta[r], tb[r]);
    }
    qsort(ta, (size_t)rounds, sizeof *ta, cmp);
    qsort(tb, (size_t)rounds, sizeof *tb, cmp);
    printf("  without reuse: %.2f s (%.2f-%.2f), %ld prompt tokens prefilled\n", ta[rounds / 2], ta[0], ta[rounds - 1], pa);
    printf("  with reuse:    %.2f s (%.2f-%.2f), %ld prompt tokens prefilled\n", tb[rounds / 2], tb[0], tb[rounds - 1], pb);
    printf("  speed-up %.2fx, prefill tokens %.1f%% of without; same answers: %s\n", ta[rounds / 2] / tb[rounds / 2],
           100.0 * (double)pb / (double)pa, same ? "yes" : "NO");
    free(a), free(b), free(ta), free(tb);
    loom_llm_pool_destroy(&pool);
    loom_llm_model_destroy(&m);
    return same ? 0 : 1;
}

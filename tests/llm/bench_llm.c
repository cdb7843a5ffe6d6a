/* bench_llm.c — prefill and decode tokens/s of the CPU backend on a model
 * file, next to this machine's memory read bandwidth measured in the same
 * run (all threads streaming a buffer far larger than the caches).
 * Decode reads every weight once per token, so
 *   efficiency = decode tok/s x bytes read per token / measured bandwidth.
 * With a CUDA device visible the GPU backend is measured too, against the
 * device's copy bandwidth.
 * Then constrained decoding (llm/llm_grammar.h, react-agent's schema)
 * against plain greedy decoding, alternating, on the same context: the
 * ratio of median per-token decode times is the constraint's cost, next to
 * the same ratio from the measured token-picking time alone.
 * usage: bench_llm MODEL.gguf [threads] [prompt_tokens] [decode_tokens] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llm/llm_engine.h"
#include "llm/llm_grammar.h"
#include "llm/cuda/llm_cuda.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

typedef long long v2 __attribute__((vector_size(16)));
typedef struct rd { const v2 *p; size_t n; int parts; long long sums[256]; } rd_t;

/* Streams its share of the buffer with 16-byte loads into 4 accumulators:
 * far cheaper per byte than any dot product, so it is bound by memory. */
static void rd_task(void *ctx, int i) {
    rd_t *r = ctx;
    size_t a = r->n / r->parts * i, b = i == r->parts - 1 ? r->n : r->n / r->parts * (i + 1);
    v2 s0 = {0, 0}, s1 = {0, 0}, s2 = {0, 0}, s3 = {0, 0};
    for (size_t k = a; k + 4 <= b; k += 4) { s0 += r->p[k]; s1 += r->p[k + 1]; s2 += r->p[k + 2]; s3 += r->p[k + 3]; }
    v2 s = s0 + s1 + s2 + s3;
    r->sums[i] = s[0] + s[1];
}

/* Best of 5 passes over 1 GiB (all threads), GB/s. */
static double read_bandwidth(loom_llm_pool_t *pool) {
    size_t bytes = (size_t)1 << 30;
    v2 *buf = aligned_alloc(64, bytes);
    if (!buf) return 0;
    memset(buf, 1, bytes);
    rd_t r = {buf, bytes / sizeof(v2), loom_llm_pool_size(pool), {0}};
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        loom_llm_pool_run(pool, r.parts, rd_task, &r);
        double gbps = bytes / (now() - t0) / 1e9;
        if (gbps > best) best = gbps;
    }
    volatile long long sink = r.sums[0];
    (void)sink;
    free(buf);
    return best;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double measure_bw(void *ctx);

/* gbps: measured before the run; bw(ctx) measures again after it and the
 * higher figure is used, so a busy machine cannot inflate the efficiency. */
static int bench(const char *label, const loom_llm_model_t *m, loom_llm_backend_t *b, int np, int nd, double gbps,
                 double (*bw)(void *), void *bw_ctx) {
    loom_err_t e = {0};
    int32_t *ids = malloc((size_t)(np + nd) * sizeof *ids);
    float *logits = malloc((size_t)m->n_vocab * sizeof *logits);
    for (int i = 0; i < np; i++) ids[i] = 1 + (i * 7919) % (m->n_vocab - 1);
    if (b->eval(b->ctx, ids, 8, 0, logits, &e)) { printf("error: %s\n", e.msg); return 1; } /* warm-up */
    double t0 = now();
    if (b->eval(b->ctx, ids, np, 0, logits, &e)) { printf("error: %s\n", e.msg); return 1; }
    double tp = now() - t0;
    double *dt = malloc((size_t)nd * sizeof *dt), td = 0;
    for (int i = 0; i < nd; i++) {
        int32_t t = loom_llm_argmax(logits, m->n_vocab);
        t0 = now();
        if (b->eval(b->ctx, &t, 1, np + i, logits, &e)) { printf("error: %s\n", e.msg); return 1; }
        dt[i] = now() - t0;
        td += dt[i];
    }
    qsort(dt, (size_t)nd, sizeof *dt, cmp_d);
    double med = dt[nd / 2], best = dt[0];
    free(dt);
    double after = bw ? bw(bw_ctx) : 0;
    if (after > gbps) gbps = after;
    double bpt = (double)loom_llm_model_bytes_per_token(m);
    double dec = 1.0 / med, eff = dec * bpt / (gbps * 1e9);
    printf("%-5s %-5s prefill %7.1f tok/s (%d tokens, %.2f s)  decode %6.2f tok/s median, %.2f best, %.2f mean "
           "(%d tokens)  %.3f GB/token  bandwidth %.1f GB/s (best of before/after)  efficiency %.0f%% (best token %.0f%%)\n",
           label, loom_ggml_type_name(m->wtype), np / tp, np, tp, dec, 1.0 / best, nd / td, nd, bpt / 1e9, gbps,
           eff * 100, bpt / best / (gbps * 1e9) * 100);
    printf("{\"bench\":\"llm\",\"backend\":\"%s\",\"model\":\"%s\",\"type\":\"%s\",\"prefill_tok_s\":%.2f,"
           "\"decode_tok_s\":%.3f,\"decode_best_tok_s\":%.3f,\"bytes_per_token\":%.0f,\"bandwidth_gbps\":%.2f,"
           "\"efficiency\":%.3f}\n",
           label, m->name, loom_ggml_type_name(m->wtype), np / tp, dec, 1.0 / best, bpt, gbps, eff);
    free(ids);
    free(logits);
    return 0;
}

static double measure_bw(void *ctx) { return read_bandwidth(ctx); }

/* One decode run of nd tokens after the same np-token prompt, with the
 * grammar (constrained) or greedy alone: appends each step's seconds
 * (sample + eval) to steps[*n_steps] and adds the picking time to *pick_s.
 * Returns the run's median step. */
static double decode_run(const loom_llm_model_t *m, loom_llm_backend_t *b, int np, int nd, int constrained,
                         double *steps, int *n_steps, double *pick_s) {
    static const char *schema_text =
        "{\"type\":\"object\",\"properties\":{\"thought\":{\"type\":\"string\",\"maxLength\":200},"
        "\"action\":{\"enum\":[\"search_docs\",\"calculator\",\"finish\"]},\"input\":{\"type\":\"string\","
        "\"maxLength\":120}},\"required\":[\"thought\",\"action\",\"input\"]}";
    loom_err_t e = {0};
    int32_t *ids = malloc((size_t)np * sizeof *ids);
    float *logits = malloc((size_t)m->n_vocab * sizeof *logits);
    double *dt = malloc((size_t)nd * sizeof *dt);
    for (int i = 0; i < np; i++) ids[i] = 1 + (i * 7919) % (m->n_vocab - 1);
    loom_llm_sampling_t sp = {0};
    loom_llm_sampler_t *s = loom_llm_sampler_new(&sp, m->n_vocab);
    json_t *schema = json_loads(schema_text, 0, NULL);
    loom_llm_grammar_t *g = NULL;
    if (constrained && loom_llm_grammar_new(m, schema, &g, &e)) { printf("error: %s\n", e.msg); exit(1); }
    if (b->eval(b->ctx, ids, np, 0, logits, &e)) { printf("error: %s\n", e.msg); exit(1); }
    int n = 0;
    for (; n < nd; n++) {
        double t0 = now();
        int32_t t = g ? loom_llm_grammar_sample(g, s, logits, nd - n + 256) : loom_llm_sample(s, logits);
        *pick_s += now() - t0;
        if (loom_tokenizer_is_eog(m->tok, t)) break;
        if (b->eval(b->ctx, &t, 1, np + n, logits, &e)) { printf("error: %s\n", e.msg); exit(1); }
        dt[n] = now() - t0;
        steps[(*n_steps)++] = dt[n];
    }
    qsort(dt, (size_t)n, sizeof *dt, cmp_d);
    double med = n ? dt[n / 2] : 0;
    loom_llm_grammar_destroy(&g);
    json_decref(schema);
    loom_llm_sampler_destroy(&s);
    free(ids);
    free(logits);
    free(dt);
    return med;
}

/* Alternates plain and constrained runs (RUNS each) and prints the ratio
 * of their decode rates, from the median step over all tokens of each
 * side. Both sides evaluate the same model at the same positions, so the
 * difference is the constraint's token picking plus noise; the picking
 * time is also measured alone and gives the same ratio without the noise
 * of a shared machine. */
#define RUNS 5
static void bench_constrained(const loom_llm_model_t *m, loom_llm_backend_t *b, int np, int nd) {
    double runp[RUNS], runc[RUNS], pick_plain = 0, pick_cons = 0;
    double *sp = malloc((size_t)RUNS * nd * sizeof *sp), *sc = malloc((size_t)RUNS * nd * sizeof *sc);
    int np_ = 0, nc = 0;
    if (!sp || !sc) { printf("error: out of memory\n"); exit(1); }
    for (int r = 0; r < RUNS; r++) {
        runp[r] = decode_run(m, b, np, nd, 0, sp, &np_, &pick_plain);
        runc[r] = decode_run(m, b, np, nd, 1, sc, &nc, &pick_cons);
    }
    qsort(sp, (size_t)np_, sizeof *sp, cmp_d);
    qsort(sc, (size_t)nc, sizeof *sc, cmp_d);
    qsort(runp, RUNS, sizeof *runp, cmp_d);
    qsort(runc, RUNS, sizeof *runc, cmp_d);
    double plain = np_ ? sp[np_ / 2] : 0, cons = nc ? sc[nc / 2] : 0, ratio = cons > 0 ? plain / cons : 0;
    printf("constrained decoding (react-agent schema): %.2f tok/s vs plain greedy %.2f tok/s (median step over %d/%d "
           "tokens of %d alternating runs each; run medians %.2f-%.2f vs %.2f-%.2f tok/s): measured ratio %.3f, "
           "cost %.1f%% (target < 10%%)\n",
           1 / cons, 1 / plain, nc, np_, RUNS, 1 / runc[RUNS - 1], 1 / runc[0], 1 / runp[RUNS - 1], 1 / runp[0], ratio,
           (1 - ratio) * 100);
    /* The constraint's own CPU time per token (picking the token), next to
     * the step it rides on: robust to a noisy machine. */
    double pc = nc ? pick_cons / nc : 0, pp = np_ ? pick_plain / np_ : 0, extra = pc - pp;
    double pick_ratio = plain / (plain + (extra > 0 ? extra : 0));
    printf("token pick: %.3f ms constrained vs %.3f ms plain per token; extra %.3f ms = %.2f%% of a %.1f ms decode "
           "step: ratio from the pick time %.4f, cost %.2f%% (target < 10%%)\n",
           pc * 1e3, pp * 1e3, extra * 1e3, extra / plain * 100, plain * 1e3, pick_ratio, (1 - pick_ratio) * 100);
    printf("{\"bench\":\"llm-constrained\",\"model\":\"%s\",\"plain_tok_s\":%.3f,\"constrained_tok_s\":%.3f,"
           "\"ratio\":%.4f,\"pick_extra_ms\":%.4f,\"pick_ratio\":%.5f}\n", m->name, 1 / plain, 1 / cons, ratio, extra * 1e3,
           pick_ratio);
    free(sp);
    free(sc);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help")) {
        fprintf(stderr, "usage: bench_llm MODEL.gguf [threads] [prompt_tokens] [decode_tokens]\n");
        return argc < 2 ? 2 : 0;
    }
    int threads = argc > 2 ? atoi(argv[2]) : 0, np = argc > 3 ? atoi(argv[3]) : 64, nd = argc > 4 ? atoi(argv[4]) : 16;
    loom_err_t e = {0};
    loom_llm_model_t *m;
    if (loom_llm_model_load(argv[1], &m, &e)) { fprintf(stderr, "bench_llm: %s\n", e.msg); return 1; }
    loom_llm_pool_t *pool = loom_llm_pool_new(threads);
    double gbps = read_bandwidth(pool);
    double load[3] = {0};
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) { if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1; fclose(la); }
    printf("cpu: %d threads, simd %s, measured read bandwidth %.1f GB/s, load average %.1f (figures are noisy when the "
           "machine is shared)\n", loom_llm_pool_size(pool), loom_llm_simd_name(), gbps, load[0]);
    loom_llm_cpu_t *cpu;
    if (loom_llm_cpu_new(m, pool, np + nd + 8, &cpu, &e)) { fprintf(stderr, "bench_llm: %s\n", e.msg); return 1; }
    loom_llm_backend_t b;
    loom_llm_backend_cpu(cpu, &b);
    int rc = bench("cpu", m, &b, np, nd, gbps, measure_bw, pool);
    if (!rc)
        bench_constrained(m, &b, np, nd);
    loom_llm_cpu_destroy(&cpu);
    loom_cuda_info_t info;
    if (loom_llm_cuda_probe(0, &info, &e) == 0) {
        double g = loom_llm_cuda_measure_gbps();
        printf("gpu: %s (%s), measured copy bandwidth %.0f GB/s (peak %.0f)\n", info.name, info.arch, g, info.peak_gbps);
        loom_llm_cuda_t *gc;
        if (loom_llm_cuda_new(m, np + nd + 8, &gc, &e) == 0) {
            loom_llm_backend_cuda(gc, &b);
            rc |= bench("cuda", m, &b, np * 8, nd * 8, g, NULL, NULL);
            loom_llm_cuda_destroy(&gc);
        } else printf("gpu: %s\n", e.msg);
    } else {
        printf("gpu: not measured (%s)\n", e.msg);
    }
    loom_llm_pool_destroy(&pool);
    loom_llm_model_destroy(&m);
    return rc;
}

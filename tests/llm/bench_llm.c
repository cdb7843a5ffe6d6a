/* bench_llm.c — prefill and decode tokens/s of the CPU backend on a model
 * file, next to this machine's memory read bandwidth and, when a llama.cpp
 * llama-bench is given (--llama-bench PATH or LLAMA_BENCH=PATH; see
 * bench/llama_cpp_peer.sh), llama.cpp on the same file in the same run.
 *
 * Each round runs both engines, alternating which goes first: Loom prefills
 * P tokens, then decodes D tokens greedily after them; llama-bench runs its
 * pp P and tg D tests once (-r 1). Decode is counted as llama.cpp counts it:
 * D tokens over the total time of the D steps (the first step included);
 * the median step is printed beside it. Medians and ranges over the rounds.
 * Decode reads every weight once per token, so
 *   efficiency = decode tok/s x bytes read per token / measured bandwidth.
 * With a CUDA device visible the GPU backend is measured too, against the
 * device's copy bandwidth.
 * --constrained: then constrained decoding (llm/llm_grammar.h, react-agent's
 * schema) against plain greedy decoding, alternating, on the same context:
 * the ratio of median per-token decode times is the constraint's cost, next
 * to the same ratio from the measured token-picking time alone.
 * --busy: another process spins on the last CPU of the set for the whole
 * run (both engines), the case of a shared machine where one core is taken.
 * usage: bench_llm [--rounds N] [--llama-bench PATH] [--constrained] [--busy] MODEL.gguf [threads]
 *        [prompt_tokens] [decode_tokens] */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <jansson.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "llm/llm_engine.h"
#include "llm/llm_grammar.h"
#include "llm/cuda/llm_cuda.h"

extern char **environ;

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
static double median(const double *v, int n) {
    double *s = malloc((size_t)n * sizeof *s);
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_d);
    double m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    free(s);
    return m;
}
static void range(const double *v, int n, double *lo, double *hi) {
    *lo = *hi = v[0];
    for (int i = 1; i < n; i++) { if (v[i] < *lo) *lo = v[i]; if (v[i] > *hi) *hi = v[i]; }
}

/* One measurement of an engine: prefill tok/s, decode tok/s over the total
 * time, decode tok/s of the median step, the first step's time over the
 * median step's. */
typedef struct run { double pp, tg, tg_med, first; } run_t;

static int loom_round(const loom_llm_model_t *m, loom_llm_backend_t *b, int np, int nd, int32_t *ids, float *logits,
                      double *dt, run_t *out) {
    loom_err_t e = {0};
    double t0 = now();
    if (b->eval(b->ctx, ids, np, 0, logits, &e)) { fprintf(stderr, "bench_llm: %s\n", e.msg); return 1; }
    out->pp = np / (now() - t0);
    double td = 0;
    for (int i = 0; i < nd; i++) {
        int32_t t = loom_llm_argmax(logits, m->n_vocab);
        t0 = now();
        if (b->eval(b->ctx, &t, 1, np + i, logits, &e)) { fprintf(stderr, "bench_llm: %s\n", e.msg); return 1; }
        dt[i] = now() - t0;
        td += dt[i];
    }
    double med = median(dt, nd);
    out->tg = nd / td;
    out->tg_med = 1.0 / med;
    out->first = dt[0] / med;
    return 0;
}

/* llama-bench -o json: its pp and tg tests, once each. */
static int llama_round(const char *exe, const char *model, int threads, int np, int nd, run_t *out) {
    char sp[16], sn[16], st[16];
    snprintf(sp, sizeof sp, "%d", np);
    snprintf(sn, sizeof sn, "%d", nd);
    snprintf(st, sizeof st, "%d", threads);
    char *argv[] = {(char *)exe, "-m", (char *)model, "-p", sp, "-n", sn, "-t", st, "-r", "1", "-o", "json", NULL};
    int fd[2];
    if (pipe(fd)) return 1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, exe, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    if (rc) { close(fd[0]); fprintf(stderr, "bench_llm: cannot run %s\n", exe); return 1; }
    FILE *f = fdopen(fd[0], "r");
    json_error_t je;
    json_t *j = json_loadf(f, 0, &je);
    fclose(f);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!j || !json_is_array(j) || !WIFEXITED(status) || WEXITSTATUS(status)) {
        fprintf(stderr, "bench_llm: %s failed (exit %d)%s%s\n", exe, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                j ? "" : ": ", j ? "" : je.text);
        json_decref(j);
        return 1;
    }
    out->pp = out->tg = 0;
    size_t i;
    json_t *t;
    static int said;
    json_array_foreach(j, i, t) {
        if (!said++)
            printf("  llama.cpp: llama-bench build %s, %d threads, load mode %s, KV %s, flash attention %d (-1 auto)\n",
                   json_string_value(json_object_get(t, "build_commit")) ?: "?",
                   (int)json_integer_value(json_object_get(t, "n_threads")),
                   json_string_value(json_object_get(t, "load_mode")) ?: "?",
                   json_string_value(json_object_get(t, "type_k")) ?: "?",
                   (int)json_integer_value(json_object_get(t, "flash_attn")));
        double ts = json_real_value(json_object_get(t, "avg_ts"));
        if (json_integer_value(json_object_get(t, "n_gen")) > 0) out->tg = ts;
        else out->pp = ts;
    }
    out->tg_med = out->tg; /* llama-bench reports tokens over total time only */
    out->first = 0;
    json_decref(j);
    return out->pp > 0 && out->tg > 0 ? 0 : 1;
}

static void row(const char *what, const double *a, const double *b, int n) {
    double alo, ahi, blo, bhi;
    range(a, n, &alo, &ahi);
    printf("  %-28s %8.2f [%7.2f %7.2f]", what, median(a, n), alo, ahi);
    if (!b) { printf("\n"); return; }
    double *r = malloc((size_t)n * sizeof *r), rlo, rhi;
    for (int i = 0; i < n; i++) r[i] = a[i] / b[i];
    range(b, n, &blo, &bhi);
    range(r, n, &rlo, &rhi);
    printf("   %8.2f [%7.2f %7.2f]   %5.2fx [%4.2f %4.2f]\n", median(b, n), blo, bhi, median(a, n) / median(b, n), rlo,
           rhi);
    free(r);
}

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

static int bench_cpu(const char *path, const loom_llm_model_t *m, loom_llm_pool_t *pool, int threads, int np, int nd,
                     int rounds, const char *llama, double gbps, int constrained) {
    loom_err_t e = {0};
    loom_llm_cpu_t *cpu;
    if (loom_llm_cpu_new(m, pool, np + nd + 8, &cpu, &e)) { fprintf(stderr, "bench_llm: %s\n", e.msg); return 1; }
    loom_llm_backend_t b;
    loom_llm_backend_cpu(cpu, &b);
    int32_t *ids = malloc((size_t)np * sizeof *ids);
    float *logits = malloc((size_t)m->n_vocab * sizeof *logits);
    double *dt = malloc((size_t)nd * sizeof *dt);
    run_t *L = calloc((size_t)rounds, sizeof *L), *P = calloc((size_t)rounds, sizeof *P);
    for (int i = 0; i < np; i++) ids[i] = 1 + (i * 7919) % (m->n_vocab - 1);
    int rc = b.eval(b.ctx, ids, 8, 0, logits, &e); /* warm-up, as llama-bench does */
    if (rc) fprintf(stderr, "bench_llm: %s\n", e.msg);
    for (int r = 0; r < rounds && !rc; r++) {
        /* alternate which engine goes first */
        for (int k = 0; k < 2 && !rc; k++) {
            if ((k == 0) == (r % 2 == 0)) rc = loom_round(m, &b, np, nd, ids, logits, dt, &L[r]);
            else if (llama) rc = llama_round(llama, path, threads, np, nd, &P[r]);
        }
        if (rc) break;
        printf("  round %d: Loom prefill %.1f decode %.2f (median step %.2f, first step %.1fx the median)", r + 1, L[r].pp,
               L[r].tg, L[r].tg_med, L[r].first);
        if (llama) printf(" | llama.cpp prefill %.1f decode %.2f", P[r].pp, P[r].tg);
        printf("\n");
        fflush(stdout);
    }
    if (!rc) {
        double *v[7];
        for (int k = 0; k < 7; k++) v[k] = malloc((size_t)rounds * sizeof(double));
        for (int r = 0; r < rounds; r++) {
            v[0][r] = L[r].pp; v[1][r] = L[r].tg; v[2][r] = L[r].tg_med; v[3][r] = L[r].first;
            v[4][r] = P[r].pp; v[5][r] = P[r].tg;
        }
        char a[64], d[64];
        snprintf(a, sizeof a, "prefill %d tok/s", np);
        snprintf(d, sizeof d, "decode %d tok/s (total time)", nd);
        printf("  %d rounds, medians [min max]:   Loom%s\n", rounds,
               llama ? "                      llama.cpp              Loom/llama.cpp [per round]" : "");
        row(a, v[0], llama ? v[4] : NULL, rounds);
        row(d, v[1], llama ? v[5] : NULL, rounds);
        row("decode tok/s (median step)", v[2], NULL, rounds);
        row("first step / median step", v[3], NULL, rounds);
        double bpt = (double)loom_llm_model_bytes_per_token(m), tg = median(v[1], rounds);
        printf("  %.3f GB/token; bandwidth efficiency at the decode median: Loom %.0f%%", bpt / 1e9,
               tg * bpt / (gbps * 1e9) * 100);
        if (llama) printf(", llama.cpp %.0f%%", median(v[5], rounds) * bpt / (gbps * 1e9) * 100);
        printf(" of %.1f GB/s\n", gbps);
        printf("{\"bench\":\"llm\",\"backend\":\"cpu\",\"model\":\"%s\",\"type\":\"%s\",\"threads\":%d,\"rounds\":%d,"
               "\"prefill_tok_s\":%.2f,\"decode_tok_s\":%.3f,\"decode_median_step_tok_s\":%.3f,\"bytes_per_token\":%.0f,"
               "\"bandwidth_gbps\":%.2f,\"efficiency\":%.3f",
               m->name, loom_ggml_type_name(m->wtype), loom_llm_pool_size(pool), rounds, median(v[0], rounds), tg,
               median(v[2], rounds), bpt, gbps, tg * bpt / (gbps * 1e9));
        if (llama)
            printf(",\"llama_prefill_tok_s\":%.2f,\"llama_decode_tok_s\":%.3f,\"prefill_ratio\":%.3f,\"decode_ratio\":%.3f",
                   median(v[4], rounds), median(v[5], rounds), median(v[0], rounds) / median(v[4], rounds),
                   tg / median(v[5], rounds));
        printf("}\n");
        for (int k = 0; k < 7; k++) free(v[k]);
    }
    if (!rc && constrained) bench_constrained(m, &b, np, nd);
    free(L); free(P); free(ids); free(logits); free(dt);
    loom_llm_cpu_destroy(&cpu);
    return rc;
}

static int bench_cuda(const loom_llm_model_t *m, int np, int nd) {
    loom_err_t e = {0};
    loom_cuda_info_t info;
    if (loom_llm_cuda_probe(0, &info, &e)) { printf("gpu: not measured (%s)\n", e.msg); return 0; }
    double g = loom_llm_cuda_measure_gbps();
    printf("gpu: %s (%s), measured copy bandwidth %.0f GB/s (peak %.0f)\n", info.name, info.arch, g, info.peak_gbps);
    loom_llm_cuda_t *gc;
    if (loom_llm_cuda_new(m, np + nd + 8, &gc, &e)) { printf("gpu: %s\n", e.msg); return 1; }
    loom_llm_backend_t b;
    loom_llm_backend_cuda(gc, &b);
    int32_t *ids = malloc((size_t)np * sizeof *ids);
    float *logits = malloc((size_t)m->n_vocab * sizeof *logits);
    double *dt = malloc((size_t)nd * sizeof *dt);
    for (int i = 0; i < np; i++) ids[i] = 1 + (i * 7919) % (m->n_vocab - 1);
    run_t r;
    int rc = b.eval(b.ctx, ids, 8, 0, logits, &e) || loom_round(m, &b, np, nd, ids, logits, dt, &r);
    if (!rc) {
        double bpt = (double)loom_llm_model_bytes_per_token(m);
        printf("cuda  prefill %.1f tok/s (%d tokens)  decode %.2f tok/s total time, %.2f median step (%d tokens)  "
               "efficiency %.0f%%\n", r.pp, np, r.tg, r.tg_med, nd, r.tg * bpt / (g * 1e9) * 100);
        printf("{\"bench\":\"llm\",\"backend\":\"cuda\",\"model\":\"%s\",\"type\":\"%s\",\"prefill_tok_s\":%.2f,"
               "\"decode_tok_s\":%.3f,\"decode_median_step_tok_s\":%.3f,\"bandwidth_gbps\":%.2f,\"efficiency\":%.3f}\n",
               m->name, loom_ggml_type_name(m->wtype), r.pp, r.tg, r.tg_med, g, r.tg * bpt / (g * 1e9));
    }
    free(ids); free(logits); free(dt);
    loom_llm_cuda_destroy(&gc);
    return rc;
}

/* A child spinning on the last CPU of this process's set until killed (or
 * this process exits); its pid, or -1. */
static pid_t start_busy(int *cpu_out) {
    cpu_set_t all, one;
    if (sched_getaffinity(0, sizeof all, &all)) return -1;
    int cpu = -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &all)) cpu = c;
    pid_t pid = fork();
    if (pid != 0) {
        *cpu_out = cpu;
        return pid;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    sched_setaffinity(0, sizeof one, &one);
    for (volatile unsigned long x = 0;; x++) {}
}

int main(int argc, char **argv) {
    const char *llama = getenv("LLAMA_BENCH");
    int rounds = 5, a = 1, constrained = 0, busy = 0;
    for (; a < argc && argv[a][0] == '-'; a++) {
        if (!strcmp(argv[a], "--rounds") && a + 1 < argc) rounds = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--llama-bench") && a + 1 < argc) llama = argv[++a];
        else if (!strcmp(argv[a], "--constrained")) constrained = 1;
        else if (!strcmp(argv[a], "--busy")) busy = 1;
        else if (!strcmp(argv[a], "--version")) { printf("bench_llm (loom)\n"); return 0; }
        else {
            fprintf(stderr, "usage: bench_llm [--rounds N] [--llama-bench PATH] [--constrained] [--busy] MODEL.gguf [threads] "
                            "[prompt_tokens] [decode_tokens]\n  LLAMA_BENCH=PATH also names llama-bench (bench/llama_cpp_peer.sh builds it)\n");
            return strcmp(argv[a], "--help") ? 2 : 0;
        }
    }
    if (a >= argc || rounds < 1) {
        fprintf(stderr, "usage: bench_llm [--rounds N] [--llama-bench PATH] [--constrained] [--busy] MODEL.gguf [threads] "
                        "[prompt_tokens] [decode_tokens]\n");
        return 2;
    }
    if (llama && !*llama) llama = NULL;
    if (llama && access(llama, X_OK)) { fprintf(stderr, "bench_llm: %s is not an executable llama-bench\n", llama); return 2; }
    const char *path = argv[a];
    int threads = a + 1 < argc ? atoi(argv[a + 1]) : 0, np = a + 2 < argc ? atoi(argv[a + 2]) : 64,
        nd = a + 3 < argc ? atoi(argv[a + 3]) : 16;
    if (np < 8 || nd < 1) { fprintf(stderr, "bench_llm: need at least 8 prompt tokens and 1 decode token\n"); return 2; }
    loom_err_t e = {0};
    loom_llm_model_t *m;
    if (loom_llm_model_load_resident(path, &m, &e)) { fprintf(stderr, "bench_llm: %s\n", e.msg); return 1; }
    loom_llm_pool_t *pool = loom_llm_pool_new(threads);
    double gbps = read_bandwidth(pool);
    double load[3] = {0};
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) { if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1; fclose(la); }
    printf("%s (%s): cpu %d threads, simd %s, measured read bandwidth %.1f GB/s, load average %.1f (a shared machine "
           "makes every figure noisy: compare within a run)\n", m->name, loom_ggml_type_name(m->wtype),
           loom_llm_pool_size(pool), loom_llm_simd_name(), gbps, load[0]);
    if (!llama) printf("  llama.cpp: not measured (set LLAMA_BENCH=path to llama-bench; bench/llama_cpp_peer.sh builds one)\n");
    int busy_cpu = -1;
    pid_t busy_pid = busy ? start_busy(&busy_cpu) : 0;
    if (busy_pid < 0) { fprintf(stderr, "bench_llm: --busy: cannot start the spinning process\n"); return 1; }
    if (busy) printf("  busy: another process spins on CPU %d for the whole run (both engines)\n", busy_cpu);
    int rc = bench_cpu(path, m, pool, loom_llm_pool_size(pool), np, nd, rounds, llama, gbps, constrained);
    if (busy) { kill(busy_pid, SIGKILL); waitpid(busy_pid, NULL, 0); }
    rc |= bench_cuda(m, np * 8, nd * 8);
    loom_llm_pool_destroy(&pool);
    loom_llm_model_destroy(&m);
    return rc;
}

/* test_llm_gpu.c — the CUDA backend against the CPU backend on generated
 * models: logits after prefill and after every decode step (every tensor
 * type), and split execution in both directions (GPU prefill -> CPU decode,
 * CPU prefill -> GPU decode) equal to the unsplit runs token for token.
 * Skips (exit 77) when no CUDA device is visible. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "llm/kvcache.h"
#include "llm/llm_engine.h"
#include "llm/cuda/llm_cuda.h"

static int failures;
#define CHECK(c, ...) do { if (!(c)) { printf("FAIL: " __VA_ARGS__); printf("\n"); failures++; } } while (0)

static double rel_err(const float *a, const float *b, int n) {
    double mx = 0, ref = 0;
    for (int i = 0; i < n; i++) {
        mx = fmax(mx, fabs((double)a[i] - b[i]));
        ref = fmax(ref, fabs((double)b[i]));
    }
    return ref > 0 ? mx / ref : mx;
}

static void die(const char *what, const loom_err_t *e) {
    printf("FAIL: %s: %s %s\n", what, e->msg, e->detail);
    exit(1);
}

/* Greedy tokens of prefill on pa + decode on pb through a serialised cache. */
static void split_run(const loom_llm_model_t *m, loom_llm_backend_t *pa, loom_llm_backend_t *pb, const int32_t *ids,
                      int n, int32_t *out, int want) {
    loom_err_t e = {0};
    loom_kvcache_t *kv, *kv2;
    loom_buf_t bin = LOOM_BUF_INIT, text = LOOM_BUF_INIT;
    if (loom_llm_prefill(m, pa, ids, (size_t)n, &kv, NULL, &e) || loom_kvcache_serialize(kv, &bin, &e) ||
        loom_kvcache_parse(bin.data, bin.len, &kv2, &e))
        die("prefill", &e);
    loom_llm_gen_params_t p = {.max_tokens = want};
    loom_llm_gen_result_t r;
    if (loom_llm_decode(m, pb, kv2, &p, &text, &r, &e)) die("decode", &e);
    memset(out, -1, (size_t)want * sizeof *out);
    memcpy(out, r.tokens, (size_t)r.n_generated * sizeof *out);
    free(r.tokens);
    loom_kvcache_destroy(&kv);
    loom_kvcache_destroy(&kv2);
    loom_buf_free(&bin);
    loom_buf_free(&text);
}

static void gen_run(const loom_llm_model_t *m, loom_llm_backend_t *b, const int32_t *ids, int n, int32_t *out, int want) {
    loom_err_t e = {0};
    loom_buf_t text = LOOM_BUF_INIT;
    loom_llm_gen_params_t p = {.max_tokens = want};
    loom_llm_gen_result_t r;
    if (loom_llm_generate(m, b, ids, (size_t)n, &p, &text, &r, &e)) die("generate", &e);
    memset(out, -1, (size_t)want * sizeof *out);
    memcpy(out, r.tokens, (size_t)r.n_generated * sizeof *out);
    free(r.tokens);
    loom_buf_free(&text);
}

int main(void) {
    loom_cuda_info_t info;
    loom_err_t e = {0};
    if (loom_llm_cuda_probe(0, &info, &e)) {
        printf("skip: no CUDA device visible (%s: %s)\n", e.msg, e.detail);
        return 77;
    }
    printf("device: %s (%s, %d SMs, %.1f GiB)\n", info.name, info.arch, info.sms, info.memory_bytes / 1073741824.0);
    char dir[] = "/tmp/loom-gpu-test-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    const char *types[] = {"F32", "F16", "BF16", "Q8_0", "Q4_0"};
    const int32_t ids[] = {1, 20, 30, 40, 50, 60, 7, 300, 200, 100, 33, 44};
    const int n = 12;
    loom_llm_pool_t *pool = loom_llm_pool_new(0);
    for (int ti = 0; ti < 6; ti++) {
        char path[256], cmd[768];
        const char *ty = ti < 5 ? types[ti] : "F32";
        snprintf(path, sizeof path, "%s/m%d.gguf", dir, ti);
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/llm/gen_gguf.py --arch llama --type %s %s -o %s", ty,
                 ti == 5 ? "--bias --tied" : "", path);
        if (system(cmd)) { printf("FAIL: %s\n", cmd); return 1; }
        loom_llm_model_t *m;
        loom_llm_cpu_t *cpu;
        loom_llm_cuda_t *gpu;
        if (loom_llm_model_load(path, &m, &e) || loom_llm_cpu_new(m, pool, 0, &cpu, &e) ||
            loom_llm_cuda_new(m, 0, &gpu, &e))
            die(path, &e);
        float *lc = malloc((size_t)m->n_vocab * 4), *lg = malloc((size_t)m->n_vocab * 4);
        if (loom_llm_cpu_eval(cpu, ids, n, 0, lc, NULL, &e) || loom_llm_cuda_eval(gpu, ids, n, 0, lg, &e)) die("eval", &e);
        double worst = rel_err(lg, lc, m->n_vocab);
        int pos = n;
        for (int step = 0; step < 8; step++) { /* decode path: matvec kernels */
            int32_t t = loom_llm_argmax(lc, m->n_vocab);
            if (loom_llm_cpu_eval(cpu, &t, 1, pos, lc, NULL, &e) || loom_llm_cuda_eval(gpu, &t, 1, pos, lg, &e)) die("step", &e);
            worst = fmax(worst, rel_err(lg, lc, m->n_vocab));
            CHECK(loom_llm_argmax(lg, m->n_vocab) == loom_llm_argmax(lc, m->n_vocab), "%s: argmax differs at step %d", ty, step);
            pos++;
        }
        CHECK(worst <= 1e-3, "%s%s: GPU logits differ from CPU by %.3g (tolerance 1e-3)", ty, ti == 5 ? " bias+tied" : "", worst);
        printf("%s%s: GPU vs CPU logits max relative error %.3g\n", ty, ti == 5 ? " bias+tied" : "", worst);
        loom_llm_backend_t bc, bg;
        loom_llm_backend_cpu(cpu, &bc);
        loom_llm_backend_cuda(gpu, &bg);
        int32_t a[16], b[16], c[16], d[16];
        gen_run(m, &bc, ids, n, a, 16);
        gen_run(m, &bg, ids, n, b, 16);
        split_run(m, &bg, &bc, ids, n, c, 16);
        split_run(m, &bc, &bg, ids, n, d, 16);
        CHECK(!memcmp(a, c, sizeof a), "%s: GPU prefill -> CPU decode differs from the CPU run", ty);
        CHECK(!memcmp(b, d, sizeof b), "%s: CPU prefill -> GPU decode differs from the GPU run", ty);
        CHECK(!memcmp(a, b, sizeof a), "%s: GPU greedy tokens differ from CPU", ty);
        free(lc);
        free(lg);
        loom_llm_cuda_destroy(&gpu);
        loom_llm_cpu_destroy(&cpu);
        loom_llm_model_destroy(&m);
        remove(path);
    }
    loom_llm_pool_destroy(&pool);
    rmdir(dir);
    printf("%s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}

/* llm_cuda.c — host side of the CUDA backend: upload, scratch, the layer
 * loop, cuBLAS for prefill, KV cache transfers. */
#include "llm/cuda/llm_cuda.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/map.h"
#include "llm/cuda/llm_kernels.cuh"
#include "llm/llm_backend.h"

#define BATCH 512

typedef struct dw {
    int type, rows, cols;
    size_t row_bytes;
    const void *d;
} dw_t;

typedef struct dlayer {
    dw_t wq, wk, wv, wo, w_gate, w_up, w_down;
    float *attn_norm, *ffn_norm, *bq, *bk, *bv, *bo;
} dlayer_t;

struct loom_llm_cuda {
    const loom_llm_model_t *m;
    int n_ctx, kvw, cap;
    uint8_t *wbuf;
    size_t wbytes, wused;
    dw_t tok_embd, output;
    float *output_norm, *inv_freq;
    dlayer_t *L;
    float *kc, *vc;
    float *x, *xb, *q, *k, *v, *att, *hb, *hb2, *tmp, *logits, *scores, *deq;
    cublasHandle_t blas;
    cudaStream_t st;
};

static int cuda_fail(loom_err_t *e, cudaError_t r, const char *what) {
    if (r == cudaErrorMemoryAllocation) {
        loom_err_set(e, LOOM_ENOMEM, "out of GPU memory (%s)", what);
        loom_err_hint(e, "use a smaller model, a shorter context, or a GPU with more memory");
        return LOOM_ENOMEM;
    }
    loom_err_set(e, LOOM_EDEVICE, "CUDA error in %s: %s", what, cudaGetErrorString(r));
    return LOOM_EDEVICE;
}
#define CK(call, what) do { cudaError_t r_ = (call); if (r_ != cudaSuccess) return cuda_fail(e, r_, what); } while (0)

int loom_llm_cuda_probe(int dev, loom_cuda_info_t *info, loom_err_t *e) {
    memset(info, 0, sizeof *info);
    int n = 0;
    cudaError_t r = cudaGetDeviceCount(&n);
    if (r != cudaSuccess || n == 0) {
        loom_err_set(e, LOOM_EUNAVAIL, "no CUDA device visible");
        loom_err_detail(e, "%s", r != cudaSuccess ? cudaGetErrorString(r) : "the driver reports 0 devices");
        loom_err_hint(e, "run on a machine with an NVIDIA GPU and driver, or check CUDA_VISIBLE_DEVICES");
        return LOOM_EUNAVAIL;
    }
    if (dev < 0 || dev >= n) return loom_err_set(e, LOOM_EINVAL, "no CUDA device %d (%d visible)", dev, n);
    struct cudaDeviceProp p;
    CK(cudaGetDeviceProperties(&p, dev), "cudaGetDeviceProperties");
    snprintf(info->name, sizeof info->name, "%s", p.name);
    int memclk = 0, bus = 0, clk = 0;
    cudaDeviceGetAttribute(&info->cc_major, cudaDevAttrComputeCapabilityMajor, dev);
    cudaDeviceGetAttribute(&info->cc_minor, cudaDevAttrComputeCapabilityMinor, dev);
    cudaDeviceGetAttribute(&info->sms, cudaDevAttrMultiProcessorCount, dev);
    cudaDeviceGetAttribute(&memclk, cudaDevAttrMemoryClockRate, dev); /* kHz */
    cudaDeviceGetAttribute(&bus, cudaDevAttrGlobalMemoryBusWidth, dev); /* bits */
    cudaDeviceGetAttribute(&clk, cudaDevAttrClockRate, dev);            /* kHz */
    snprintf(info->arch, sizeof info->arch, "sm_%d%d", info->cc_major, info->cc_minor);
    info->memory_bytes = p.totalGlobalMem;
    info->peak_gbps = 2.0 * memclk * 1e3 * (bus / 8.0) / 1e9;
    int cores = info->cc_major >= 8 && !(info->cc_major == 8 && info->cc_minor == 0) ? 128 : 64;
    info->peak_gflops = (double)info->sms * cores * 2.0 * clk * 1e3 / 1e9;
    size_t fr = 0, tot = 0;
    if (cudaSetDevice(dev) == cudaSuccess && cudaMemGetInfo(&fr, &tot) == cudaSuccess) info->free_bytes = fr;
    cudaDriverGetVersion(&info->driver_version);
    cudaRuntimeGetVersion(&info->runtime_version);
    return 0;
}

double loom_llm_cuda_measure_gbps(void) {
    size_t n = 256u << 20;
    void *a = NULL, *b = NULL;
    cudaEvent_t t0, t1;
    double gbps = 0;
    if (cudaMalloc(&a, n) != cudaSuccess || cudaMalloc(&b, n) != cudaSuccess) goto out;
    cudaMemset(a, 1, n);
    cudaMemset(b, 2, n);
    cudaEventCreate(&t0);
    cudaEventCreate(&t1);
    cudaMemcpy(b, a, n, cudaMemcpyDeviceToDevice); /* warm-up */
    cudaEventRecord(t0, 0);
    const int reps = 20;
    for (int i = 0; i < reps; i++) cudaMemcpy(i & 1 ? a : b, i & 1 ? b : a, n, cudaMemcpyDeviceToDevice);
    cudaEventRecord(t1, 0);
    cudaEventSynchronize(t1);
    float ms = 0;
    cudaEventElapsedTime(&ms, t0, t1);
    if (ms > 0) gbps = 2.0 * (double)n * reps / (ms / 1e3) / 1e9;
    cudaEventDestroy(t0);
    cudaEventDestroy(t1);
out:
    cudaFree(a);
    cudaFree(b);
    return gbps;
}

/* ---- upload ---- */
static size_t al(size_t n) { return (n + 255) & ~(size_t)255; }

static int up_bytes(loom_llm_cuda_t *c, const void *src, size_t n, const void **dst, loom_err_t *e) {
    if (c->wused + al(n) > c->wbytes) return loom_err_set(e, LOOM_EINTERNAL, "weight buffer overflow");
    CK(cudaMemcpy(c->wbuf + c->wused, src, n, cudaMemcpyHostToDevice), "uploading weights");
    *dst = c->wbuf + c->wused;
    c->wused += al(n);
    return 0;
}
static int up_w(loom_llm_cuda_t *c, const loom_llm_weight_t *w, dw_t *d, loom_err_t *e) {
    d->type = w->type; d->rows = w->rows; d->cols = w->cols; d->row_bytes = w->row_bytes; d->d = NULL;
    if (!w->data) return 0;
    return up_bytes(c, w->data, w->row_bytes * (size_t)w->rows, &d->d, e);
}
static int up_v(loom_llm_cuda_t *c, const float *v, int n, float **d, loom_err_t *e) {
    *d = NULL;
    if (!v) return 0;
    const void *p = NULL;
    int rc = up_bytes(c, v, (size_t)n * 4, &p, e);
    *d = (float *)p;
    return rc;
}

static size_t wsize(const loom_llm_weight_t *w) { return w->data ? al(w->row_bytes * (size_t)w->rows) : 0; }

int loom_llm_cuda_new(const loom_llm_model_t *m, int n_ctx, loom_llm_cuda_t **out, loom_err_t *e) {
    *out = NULL;
    if (m->arch != LOOM_LLM_ARCH_LLAMA)
        return loom_err_set(e, LOOM_EINVAL, "the CUDA backend runs llama-family models; %s runs on the CPU", m->name);
    loom_cuda_info_t info;
    int rc = loom_llm_cuda_probe(0, &info, e);
    if (rc) return rc;
    loom_llm_cuda_t *c = calloc(1, sizeof *c);
    if (!c) return loom_err_set(e, LOOM_ENOMEM, "out of memory");
    c->m = m;
    c->n_ctx = n_ctx > 0 && n_ctx < m->n_ctx ? n_ctx : m->n_ctx;
    c->kvw = m->n_kv_heads * m->head_dim;
    c->cap = c->n_ctx < BATCH ? c->n_ctx : BATCH;
    c->L = calloc((size_t)m->n_layers, sizeof *c->L);
    if (!c->L) { free(c); return loom_err_set(e, LOOM_ENOMEM, "out of memory"); }
    *out = c; /* from here on, loom_llm_cuda_destroy cleans up */
    int dim = m->dim, qd = m->n_heads * m->head_dim;
    size_t total = wsize(&m->tok_embd) + (m->tied ? 0 : wsize(&m->output)) + al((size_t)dim * 4) +
                   al((size_t)(m->n_rot / 2 + 1) * 4);
    size_t maxmat = (size_t)m->n_vocab * dim;
    for (int l = 0; l < m->n_layers; l++) {
        const loom_llm_layer_t *L = &m->layers[l];
        const loom_llm_weight_t *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++) {
            total += wsize(ws[i]);
            if ((size_t)ws[i]->rows * ws[i]->cols > maxmat) maxmat = (size_t)ws[i]->rows * ws[i]->cols;
        }
        total += 2 * al((size_t)dim * 4) + 2 * al((size_t)qd * 4) + 2 * al((size_t)c->kvw * 4);
    }
    c->wbytes = total;
    CK(cudaMalloc((void **)&c->wbuf, total), "allocating weights");
    if ((rc = up_w(c, &m->tok_embd, &c->tok_embd, e))) goto fail;
    if (m->tied) c->output = c->tok_embd;
    else if ((rc = up_w(c, &m->output, &c->output, e))) goto fail;
    if ((rc = up_v(c, m->output_norm, dim, &c->output_norm, e))) goto fail;
    float *inv = malloc((size_t)(m->n_rot / 2 + 1) * 4);
    if (!inv) { rc = loom_err_set(e, LOOM_ENOMEM, "out of memory"); goto fail; }
    for (int i = 0; i < m->n_rot / 2; i++) { /* same float values as the CPU backend */
        double f = pow((double)m->rope_base, -2.0 * i / m->n_rot);
        if (m->rope_freqs) f /= m->rope_freqs[i];
        inv[i] = (float)f;
    }
    rc = up_v(c, inv, m->n_rot / 2 + 1, &c->inv_freq, e);
    free(inv);
    if (rc) goto fail;
    for (int l = 0; l < m->n_layers; l++) {
        const loom_llm_layer_t *L = &m->layers[l];
        dlayer_t *D = &c->L[l];
        if ((rc = up_w(c, &L->wq, &D->wq, e)) || (rc = up_w(c, &L->wk, &D->wk, e)) || (rc = up_w(c, &L->wv, &D->wv, e)) ||
            (rc = up_w(c, &L->wo, &D->wo, e)) || (rc = up_w(c, &L->w_gate, &D->w_gate, e)) ||
            (rc = up_w(c, &L->w_up, &D->w_up, e)) || (rc = up_w(c, &L->w_down, &D->w_down, e)) ||
            (rc = up_v(c, L->attn_norm, dim, &D->attn_norm, e)) || (rc = up_v(c, L->ffn_norm, dim, &D->ffn_norm, e)) ||
            (rc = up_v(c, L->bq, qd, &D->bq, e)) || (rc = up_v(c, L->bk, c->kvw, &D->bk, e)) ||
            (rc = up_v(c, L->bv, c->kvw, &D->bv, e)) || (rc = up_v(c, L->bo, dim, &D->bo, e)))
            goto fail;
    }
    size_t kvn = (size_t)m->n_layers * c->n_ctx * c->kvw, T = (size_t)c->cap;
    size_t big = (size_t)(m->ffn > qd ? m->ffn : qd);
    if (big < (size_t)dim) big = (size_t)dim;
    struct { float **p; size_t n; } bufs[] = {
        {&c->kc, kvn}, {&c->vc, kvn}, {&c->x, T * dim}, {&c->xb, T * dim}, {&c->q, T * qd},
        {&c->k, T * c->kvw}, {&c->v, T * c->kvw}, {&c->att, T * qd}, {&c->hb, T * m->ffn}, {&c->hb2, T * m->ffn},
        {&c->tmp, T * big}, {&c->logits, (size_t)m->n_vocab}, {&c->scores, T * m->n_heads * (size_t)c->n_ctx},
        {&c->deq, maxmat}};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) {
        cudaError_t r = cudaMalloc((void **)bufs[i].p, bufs[i].n * sizeof(float) + 16);
        if (r != cudaSuccess) { rc = cuda_fail(e, r, "allocating the KV cache and scratch"); goto fail; }
    }
    if (cublasCreate(&c->blas) != CUBLAS_STATUS_SUCCESS) { rc = loom_err_set(e, LOOM_EDEVICE, "cuBLAS initialisation failed"); goto fail; }
    if (cudaStreamCreate(&c->st) != cudaSuccess) { rc = loom_err_set(e, LOOM_EDEVICE, "cudaStreamCreate failed"); goto fail; }
    cublasSetStream(c->blas, c->st);
    cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH); /* no TF32: logits must match the CPU */
    return 0;
fail:
    loom_llm_cuda_destroy(out);
    return rc;
}

void loom_llm_cuda_destroy(loom_llm_cuda_t **pc) {
    if (!pc || !*pc) return;
    loom_llm_cuda_t *c = *pc;
    float *bufs[] = {c->kc, c->vc, c->x, c->xb, c->q, c->k, c->v, c->att, c->hb, c->hb2, c->tmp, c->logits,
                     c->scores, c->deq};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) cudaFree(bufs[i]);
    cudaFree(c->wbuf);
    if (c->blas) cublasDestroy(c->blas);
    if (c->st) cudaStreamDestroy(c->st);
    free(c->L);
    free(c);
    *pc = NULL;
}

static int is_quant(int t) { return t == LOOM_GGML_Q8_0 || t == LOOM_GGML_Q4_0; }

/* Y[T][rows] = X[T][cols] W^T (+ bias). */
static int mm(loom_llm_cuda_t *c, const dw_t *W, const float *X, int T, float *Y, const float *bias, loom_err_t *e) {
    const float *in = X;
    if (is_quant(W->type)) {
        CK(cudaMemcpyAsync(c->tmp, X, (size_t)T * W->cols * 4, cudaMemcpyDeviceToDevice, c->st), "copy");
        CK(loom_cu_q8_roundtrip(c->tmp, T * W->cols, c->st), "q8 round trip");
        in = c->tmp;
    }
    if (T == 1) {
        CK(loom_cu_matvec(W->type, W->d, W->row_bytes, W->rows, W->cols, in, bias, Y, c->st), "matvec");
        return 0;
    }
    const float *A = W->d;
    if (W->type != LOOM_GGML_F32) {
        CK(loom_cu_dequant(W->type, W->d, W->row_bytes, W->rows, W->cols, c->deq, c->st), "dequant");
        A = c->deq;
    }
    const float one = 1.0f, zero = 0.0f;
    /* column-major view: Y^T (rows x T) = W (rows x cols) . X^T (cols x T) */
    if (cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, W->rows, T, W->cols, &one, A, W->cols, in, W->cols, &zero, Y,
                    W->rows) != CUBLAS_STATUS_SUCCESS)
        return loom_err_set(e, LOOM_EDEVICE, "cublasSgemm failed (%d x %d x %d)", W->rows, T, W->cols);
    if (bias) CK(loom_cu_add_bias(Y, bias, W->rows, T, c->st), "bias");
    return 0;
}

static int eval_batch(loom_llm_cuda_t *c, const int32_t *tok, int T, int pos0, loom_err_t *e) {
    const loom_llm_model_t *m = c->m;
    int dim = m->dim, qd = m->n_heads * m->head_dim, kvw = c->kvw, rc;
    for (int t = 0; t < T; t++)
        CK(loom_cu_dequant(c->tok_embd.type, (const uint8_t *)c->tok_embd.d + (size_t)tok[t] * c->tok_embd.row_bytes,
                           c->tok_embd.row_bytes, 1, dim, c->x + (size_t)t * dim, c->st), "embedding");
    for (int l = 0; l < m->n_layers; l++) {
        const dlayer_t *L = &c->L[l];
        float *Kc = c->kc + (size_t)l * c->n_ctx * kvw, *Vc = c->vc + (size_t)l * c->n_ctx * kvw;
        CK(loom_cu_rmsnorm(c->x, L->attn_norm, c->xb, T, dim, m->eps, c->st), "rmsnorm");
        if ((rc = mm(c, &L->wq, c->xb, T, c->q, L->bq, e)) || (rc = mm(c, &L->wk, c->xb, T, c->k, L->bk, e)) ||
            (rc = mm(c, &L->wv, c->xb, T, c->v, L->bv, e)))
            return rc;
        CK(loom_cu_rope(c->q, T, qd, m->n_heads, m->head_dim, m->n_rot, m->rope_neox, pos0, m->rope_freq_scale,
                        c->inv_freq, c->st), "rope");
        CK(loom_cu_rope(c->k, T, kvw, m->n_kv_heads, m->head_dim, m->n_rot, m->rope_neox, pos0, m->rope_freq_scale,
                        c->inv_freq, c->st), "rope");
        CK(cudaMemcpyAsync(Kc + (size_t)pos0 * kvw, c->k, (size_t)T * kvw * 4, cudaMemcpyDeviceToDevice, c->st), "kv");
        CK(cudaMemcpyAsync(Vc + (size_t)pos0 * kvw, c->v, (size_t)T * kvw * 4, cudaMemcpyDeviceToDevice, c->st), "kv");
        CK(loom_cu_attention(c->q, Kc, Vc, c->att, c->scores, T, pos0, m->n_heads, m->n_kv_heads, m->head_dim,
                             c->n_ctx, c->st), "attention");
        if ((rc = mm(c, &L->wo, c->att, T, c->xb, L->bo, e))) return rc;
        CK(loom_cu_add(c->x, c->xb, (size_t)T * dim, c->st), "add");
        CK(loom_cu_rmsnorm(c->x, L->ffn_norm, c->xb, T, dim, m->eps, c->st), "rmsnorm");
        if ((rc = mm(c, &L->w_gate, c->xb, T, c->hb, NULL, e)) || (rc = mm(c, &L->w_up, c->xb, T, c->hb2, NULL, e)))
            return rc;
        CK(loom_cu_silu_mul(c->hb, c->hb2, (size_t)T * m->ffn, c->st), "silu_mul");
        if ((rc = mm(c, &L->w_down, c->hb, T, c->xb, NULL, e))) return rc;
        CK(loom_cu_add(c->x, c->xb, (size_t)T * dim, c->st), "add");
    }
    return 0;
}

int loom_llm_cuda_eval(loom_llm_cuda_t *c, const int32_t *tok, int n, int pos0, float *logits, loom_err_t *e) {
    const loom_llm_model_t *m = c->m;
    if (n <= 0) return loom_err_set(e, LOOM_EINVAL, "nothing to evaluate (0 tokens)");
    if (pos0 < 0 || n > c->n_ctx - pos0) {
        loom_err_set(e, LOOM_ETOOBIG, "sequence of %d tokens exceeds the context of %d", pos0 + n, c->n_ctx);
        return LOOM_ETOOBIG;
    }
    for (int i = 0; i < n; i++)
        if (tok[i] < 0 || tok[i] >= m->n_vocab) return loom_err_set(e, LOOM_EINVAL, "token id %d is outside the vocabulary", tok[i]);
    int rc, T = 0;
    for (int b = 0; b < n; b += c->cap) {
        T = n - b < c->cap ? n - b : c->cap;
        if ((rc = eval_batch(c, tok + b, T, pos0 + b, e))) return rc;
    }
    if (logits) {
        CK(loom_cu_rmsnorm(c->x + (size_t)(T - 1) * m->dim, c->output_norm, c->xb, 1, m->dim, m->eps, c->st), "rmsnorm");
        if ((rc = mm(c, &c->output, c->xb, 1, c->logits, NULL, e))) return rc;
        CK(cudaMemcpyAsync(logits, c->logits, (size_t)m->n_vocab * 4, cudaMemcpyDeviceToHost, c->st), "logits");
    }
    CK(cudaStreamSynchronize(c->st), "forward");
    return 0;
}

static int kv_copy(loom_llm_cuda_t *c, int layer, int n, float *k, float *v, int to_dev, loom_err_t *e) {
    if (layer < 0 || layer >= c->m->n_layers) return loom_err_set(e, LOOM_EINVAL, "no KV cache layer %d", layer);
    if (n < 0 || n > c->n_ctx) return loom_err_set(e, LOOM_ETOOBIG, "KV cache of %d tokens exceeds the context of %d", n, c->n_ctx);
    size_t off = (size_t)layer * c->n_ctx * c->kvw, bytes = (size_t)n * c->kvw * 4;
    if (to_dev) {
        CK(cudaMemcpy(c->kc + off, k, bytes, cudaMemcpyHostToDevice), "KV upload");
        CK(cudaMemcpy(c->vc + off, v, bytes, cudaMemcpyHostToDevice), "KV upload");
    } else {
        CK(cudaMemcpy(k, c->kc + off, bytes, cudaMemcpyDeviceToHost), "KV download");
        CK(cudaMemcpy(v, c->vc + off, bytes, cudaMemcpyDeviceToHost), "KV download");
    }
    return 0;
}

static int b_eval(void *ctx, const int32_t *tok, int n, int pos0, float *logits, loom_err_t *e) {
    return loom_llm_cuda_eval(ctx, tok, n, pos0, logits, e);
}
static int b_read(void *ctx, int layer, int n, float *k, float *v, loom_err_t *e) { return kv_copy(ctx, layer, n, k, v, 0, e); }
static int b_write(void *ctx, int layer, int n, const float *k, const float *v, loom_err_t *e) {
    return kv_copy(ctx, layer, n, (float *)k, (float *)v, 1, e);
}

void loom_llm_backend_cuda(loom_llm_cuda_t *c, loom_llm_backend_t *b) {
    b->name = "cuda";
    b->ctx = c;
    b->n_ctx = c->n_ctx;
    b->eval = b_eval;
    b->kv_read = b_read;
    b->kv_write = b_write;
    b->set_layer_fn = NULL; /* no layer hook: a streamed prefill sends after the fact */
}

/* The backend table's CUDA entry (llm_backend.h): one device context per
 * model on device 0, made on first use and kept, since uploading the
 * weights is the expensive part. Callers serialise tasks (the ops' compute
 * lock); the map has its own lock for the table's other users. */
static pthread_mutex_t fmu = PTHREAD_MUTEX_INITIALIZER;
static loom_map_t *fctx; /* model path -> loom_llm_cuda_t */

static void free_ctx(void *p) {
    loom_llm_cuda_t *c = p;
    loom_llm_cuda_destroy(&c);
}

static int factory_create(void *ud, const loom_llm_model_t *m, int n_ctx, loom_llm_backend_t *b, void **handle,
                          loom_err_t *e) {
    (void)ud;
    pthread_mutex_lock(&fmu);
    if (!fctx) fctx = loom_map_new(free_ctx);
    loom_llm_cuda_t *c = fctx ? loom_map_get(fctx, m->path) : NULL;
    int rc = 0;
    if (!fctx) rc = loom_err_set(e, LOOM_ENOMEM, "out of memory");
    else if (!c) {
        int ctx = m->n_ctx > 32768 ? 32768 : m->n_ctx;
        if (!(rc = loom_llm_cuda_new(m, ctx, &c, e))) {
            if (loom_map_put(fctx, m->path, c)) { loom_llm_cuda_destroy(&c); rc = loom_err_set(e, LOOM_ENOMEM, "out of memory"); }
            else LOOM_INFO("llm", "msg=\"model on device\" name=\"%s\" context=%d", m->name, ctx);
        }
    }
    pthread_mutex_unlock(&fmu);
    if (rc) return rc;
    loom_llm_backend_cuda(c, b);
    if (n_ctx > b->n_ctx)
        return loom_err_set(e, LOOM_ETOOBIG, "sequence of %d tokens exceeds the device context of %d", n_ctx, b->n_ctx);
    *handle = c;
    return 0;
}
static void factory_destroy(void *ud, void *handle) { (void)ud; (void)handle; } /* kept for the next task */

const loom_llm_factory_t loom_llm_cuda_factory = {"cuda", factory_create, factory_destroy, NULL};

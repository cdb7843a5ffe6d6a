/* llm_cuda.h — the CUDA backend of the LLM engine: the llama forward with
 * weights (uploaded once, in their GGUF block layout) and the KV cache on
 * the device. Prefill runs cuBLAS SGEMMs on dequantised weights; decode runs
 * the hand-written per-type matrix-vector kernels (the .cu files here).
 * Quantised (Q8_0/Q4_0) products see their activation rounded through
 * Q8_0 exactly as the CPU backend's integer dot products do, so GPU and CPU
 * logits agree to float rounding and a KV cache moves between them.
 * Host code in C over cudart + cuBLAS; one context per sequence, not
 * thread-safe. Encoders (bert) are not offloaded: embed runs on the CPU. */
#ifndef LOOM_LLM_CUDA_H
#define LOOM_LLM_CUDA_H

#include <stdint.h>

#include "common/err.h"
#include "llm/llm_engine.h"
#include "llm/llm_model.h"

typedef struct loom_cuda_info {
    char name[256];       /* "NVIDIA H200" */
    char arch[16];        /* "sm_90" */
    int cc_major, cc_minor, sms;
    uint64_t memory_bytes, free_bytes;
    double peak_gbps;     /* memory clock x bus width (datasheet-style) */
    double peak_gflops;   /* FP32: SMs x cores/SM x 2 x clock */
    int driver_version, runtime_version;
} loom_cuda_info_t;

/* Device `dev`'s description. LOOM_EUNAVAIL (message says why: no driver,
 * no device) when there is none. */
int loom_llm_cuda_probe(int dev, loom_cuda_info_t *info, loom_err_t *e);
/* Device-to-device copy bandwidth (read + write), GB/s, ~0.2 s; 0 on error. */
double loom_llm_cuda_measure_gbps(void);

typedef struct loom_llm_cuda loom_llm_cuda_t;

/* Uploads m's weights and allocates a KV cache of n_ctx positions (<= 0:
 * the model's context). LOOM_ENOMEM when the device is too small. */
int loom_llm_cuda_new(const loom_llm_model_t *m, int n_ctx, loom_llm_cuda_t **out, loom_err_t *e);
void loom_llm_cuda_destroy(loom_llm_cuda_t **pc);
int loom_llm_cuda_eval(loom_llm_cuda_t *c, const int32_t *tok, int n, int pos0, float *logits, loom_err_t *e);
/* Fills b for c (borrowed). */
void loom_llm_backend_cuda(loom_llm_cuda_t *c, loom_llm_backend_t *b);

#endif

/* llm_kernels_isa.h — the table one instruction-set level fills in, private
 * to llm_kernels*.c. llm_kernels.c owns the portable level and the dispatch;
 * each ISA has its own file (llm_kernels_avx2.c, llm_kernels_avx512.c)
 * compiled with per-function target attributes, so the build needs no
 * global -m flags and the binary runs on any x86-64.
 *
 * A level may leave entries NULL: the level below supplies them. */
#ifndef LOOM_LLM_KERNELS_ISA_H
#define LOOM_LLM_KERNELS_ISA_H

#include <stddef.h>
#include <stdint.h>

#include "llm/cpu/llm_kernels.h"

#define LOOM_LLM_NTYPES 31 /* LOOM_GGML_* ids used as indexes */

/* How a weight type wants its activation row: */
enum {
    LOOM_LLM_ACT_F32 = 0, /* the float row as is */
    LOOM_LLM_ACT_Q8_0,    /* Q8_0 blocks (fp16 scale + 32 int8), as ggml */
    LOOM_LLM_ACT_Q8X,     /* AVX-512: per 64 values, 64 bytes q+128 then 16
                             float scales (8 x block scale, twice); see
                             llm_kernels_avx512.c */
    LOOM_LLM_ACT_BF16X2,  /* AVX-512 BF16: per 32 values, 32 bfloat16 (x
                             rounded) then 32 bfloat16 (the remainder): two
                             VDPBF16PS keep ~16 bits of the activation */
    LOOM_LLM_ACT_KINDS
};

/* Bytes of one converted activation row of n values. */
size_t loom_llm_act_bytes(int kind, int n);

/* One weight row . one activation row (in the type's activation kind). */
typedef float (*loom_llm_dot_fn)(const uint8_t *w, const void *x, int n);
/* Four activation rows against one weight row (row loaded once). */
typedef void (*loom_llm_dot4_fn)(const uint8_t *w, const void *const x[4], int n, float out[4]);
/* Rows [r0, r1) of W times T activation rows (xstride bytes apart):
 * Y[t * ldy + r] = W_r . x_t. Blocked over rows and tokens so each weight
 * panel is unpacked once and reused from cache for every token. */
typedef void (*loom_llm_gemm_fn)(const loom_llm_weight_t *W, int r0, int r1, const uint8_t *x, size_t xstride,
                                 int T, float *Y, size_t ldy);
/* Rows [r0, r1) of W times T activations given transposed in groups of 16
 * tokens, xt[(g * K + k) * 16 + l] = x[16 g + l][k] (tokens past T zero):
 * Y[t * ldy + r] = W_r . x_t. For batches of at least 16 tokens. */
typedef void (*loom_llm_gemmt_fn)(const loom_llm_weight_t *W, int r0, int r1, const float *xt, int T, float *Y,
                                  size_t ldy);
/* Activation row conversion for a kind (n % 32 == 0). */
typedef void (*loom_llm_act_fn)(const float *x, void *dst, int n);

/* y += a x (attention's weighted sum of values). */
typedef void (*loom_llm_axpy_fn)(float *y, float a, const float *x, int n);
/* g = silu(g) * u, silu(v) = v / (1 + e^-v) (the SwiGLU of the FFN). */
typedef void (*loom_llm_swiglu_fn)(float *g, const float *u, int n);
/* Group g of 16 tokens of X (T x K floats) transposed for gemmt:
 * xt[(g * K + k) * 16 + l] = X[16 g + l][k], tokens past T zero. */
typedef void (*loom_llm_xt_fn)(const float *X, float *xt, int T, int K, int g);

typedef struct loom_llm_isa {
    const char *name;
    int act[LOOM_LLM_NTYPES];           /* activation kind per weight type */
    loom_llm_dot_fn dot[LOOM_LLM_NTYPES];
    loom_llm_dot4_fn dot4[LOOM_LLM_NTYPES];
    loom_llm_gemm_fn gemm[LOOM_LLM_NTYPES];
    int gemm_rows;                      /* row granularity of gemm */
    loom_llm_gemmt_fn gemmt[LOOM_LLM_NTYPES];
    int gemmt_rows;                     /* row granularity of gemmt */
    loom_llm_xt_fn xt;                  /* the activations gemmt takes */
    loom_llm_axpy_fn axpy;
    loom_llm_swiglu_fn swiglu;
    loom_llm_act_fn convert[LOOM_LLM_ACT_KINDS];
} loom_llm_isa_t;

/* Fill the entries this CPU can run at that level; return 0 when the CPU
 * lacks the level (t untouched). */
int loom_llm_isa_avx2(loom_llm_isa_t *t);
int loom_llm_isa_avx512(loom_llm_isa_t *t);

#endif

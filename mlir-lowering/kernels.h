/* kernels.h — the built-in compute kernels, written in linalg/arith/math
 * (plus scf for top-k), generated as MLIR text for a given shape. Shapes are
 * static so that every target gets fully specialised code and the GPU path
 * can pass plain pointers (bare-pointer memref calling convention).
 *
 * Each kernel is one func.func named "loom_<kind>" whose arguments are
 * memrefs, inputs first, then outputs and scratch buffers; the signature
 * (loom_kernel_sig_t) tells a caller what to allocate. */
#ifndef LOOM_MLIR_KERNELS_H
#define LOOM_MLIR_KERNELS_H

#include "common/buf.h"
#include "common/err.h"

typedef enum {
    LOOM_KERNEL_MATMUL = 1, /* C[m,n] = A[m,k] * B[k,n], f32 */
    LOOM_KERNEL_SOFTMAX,    /* Y[m,n] = row-wise softmax of X[m,n] */
    LOOM_KERNEL_RMSNORM,    /* Y[m,n] = X / sqrt(mean(X^2, row) + eps) * W[n] */
    LOOM_KERNEL_VSEARCH,    /* scores[n] = D[n,k] . q[k]; top-k (index, score) */
    LOOM_KERNEL_QMATMUL,    /* NPU int8: quantise A,B per tensor (scales sa, sb are
                               inputs), i32 matmul, dequantise; the int8 operands
                               and i32 accumulators are outputs too */
} loom_kernel_kind_t;

typedef struct {
    loom_kernel_kind_t kind;
    int m, n, k;         /* see the kinds above; all >= 1 */
    int topk;            /* VSEARCH: results wanted (>= 1) */
    float eps;           /* RMSNORM */
    int scores_only;     /* VSEARCH: omit top-k (the GPU variant: scoring only) */
    int gpu_warps;       /* SOFTMAX, RMSNORM: the GPU variant, written as one
                            gpu.launch with a warp (32 lanes) per row: lane-
                            strided loops, butterfly shuffle reductions */
} loom_kernel_spec_t;

typedef enum { LOOM_ELEM_F32 = 1, LOOM_ELEM_I32, LOOM_ELEM_I8 } loom_elem_t;

#define LOOM_KERNEL_MAX_ARGS 10
typedef struct {
    char name[16];     /* "a", "b", "c", "scores", ... */
    loom_elem_t elem;
    int rank;          /* 1 or 2 */
    long shape[2];
    int is_input;      /* 1: read by the kernel; 0: written (output or scratch) */
} loom_kernel_arg_t;

typedef struct {
    char func[32];     /* "loom_matmul", ... */
    int nargs;
    loom_kernel_arg_t args[LOOM_KERNEL_MAX_ARGS];
} loom_kernel_sig_t;

/* Kernel names as used by workflows and the CLI: "matmul", "softmax",
 * "rmsnorm", "vector.search", "qmatmul". Returns 0 or LOOM_ENOTFOUND. */
int loom_kernel_kind_parse(const char *name, loom_kernel_kind_t *out);
const char *loom_kernel_kind_name(loom_kernel_kind_t kind);

/* Appends the kernel's MLIR text to src and fills sig. emit_c_interface
 * tags the function for the CPU JIT's packed calling convention.
 * LOOM_EINVAL on a bad spec (err names the field). */
int loom_kernel_source(const loom_kernel_spec_t *spec, int emit_c_interface, loom_buf_t *src,
                       loom_kernel_sig_t *sig, loom_err_t *err);

/* Bytes of one argument's buffer. */
size_t loom_kernel_arg_bytes(const loom_kernel_arg_t *a);

#endif

/* runner.h — runs compute and vector.search tasks from compiled units: the
 * JSON-level entry the workers' op handlers call (workers/cpu/op_kernel.c,
 * workers/npu/). Kernels are compiled through the artifact cache (once per
 * shape and target) and executed by the CPU JIT; the NPU target runs the
 * int8-quantised matmul on the same JIT as its software reference backend.
 *
 * compute input:  {"kernel": NAME | "path/k.mlir", "args": {...}}
 *   built-ins take their buffers by name, 2-D ones as nested arrays (the
 *   shape is read from them): matmul {a, b}; softmax {x}; rmsnorm {x, w,
 *   eps?}; vector.search {d, q, topk?}. A .mlir kernel takes "argN" (or
 *   "inputs": [buf0, buf1, ...]) for its memref arguments, missing ones
 *   are zero. Relative paths resolve against "workflow_dir" when given.
 * compute output: the kernel's result buffers by name (a .mlir kernel: all
 *   of its arguments), plus "artifact" (the content address) and "target".
 * vector.search input: {"query": [f...] | {"embedding": [...]},
 *   "documents": [[f...], ...], "k": K, "ids": [...]?}, or instead of
 *   documents/ids the workflow's "index_resource" whose path is a JSON file
 *   {"ids": [...], "vectors": [[...], ...]} (binary .vindex files: not yet)
 * vector.search output: {"hits": [{"index", "score", "id"?}...], "artifact"}
 *
 * Not thread-safe (one MLIR context): register the ops LOOM_OP_SERIAL. */
#ifndef LOOM_MLIR_RUNNER_H
#define LOOM_MLIR_RUNNER_H

#include "common/err.h"
#include "mlir-lowering/codegen.h"

#include <jansson.h>

typedef struct loom_kernel_runner loom_kernel_runner_t;

/* target: LOOM_TARGET_CPU or LOOM_TARGET_NPU. cache_dir: on-disk artifact
 * cache (NULL: memory only). */
loom_kernel_runner_t *loom_kernel_runner_new(loom_target_kind_t target, const char *cache_dir,
                                             loom_err_t *err);

/* Runs a compiled GPU unit: uploads bufs (bytes each), launches, downloads
 * the buffers with is_output set. The GPU worker passes its CUDA driver
 * handle (workers/gpu/cudrv.h) as ud. */
typedef int (*loom_gpu_exec_fn)(void *ud, const loom_gpu_unit_t *u, void *const *bufs, const size_t *bytes,
                                const int *is_output, int n, loom_err_t *err);

/* GPU target: kernels are compiled to PTX for arch ("sm_90") and run by
 * exec; vector.search scores on the GPU and selects the top k on the host. */
loom_kernel_runner_t *loom_kernel_runner_new_gpu(const char *arch, loom_gpu_exec_fn exec, void *ud,
                                                 const char *cache_dir, loom_err_t *err);
void loom_kernel_runner_destroy(loom_kernel_runner_t **pr);

/* *out: caller owns. Bad input is LOOM_EINVAL naming the field; a kernel
 * that does not verify is LOOM_EPARSE with its file:line:col. */
int loom_kernel_runner_compute(loom_kernel_runner_t *r, const json_t *input, json_t **out,
                               loom_err_t *err);
int loom_kernel_runner_vsearch(loom_kernel_runner_t *r, const json_t *input, json_t **out,
                               loom_err_t *err);

/* Compiles done and cache hits so far (for logs and tests). */
void loom_kernel_runner_stats(const loom_kernel_runner_t *r, unsigned long *compiles,
                              unsigned long *hits);

#endif

/* codegen.h — lowering kernels (linalg/arith/math/scf on memrefs with
 * static shapes) to code per target, and running CPU code in-process:
 *   CPU  linalg -> loops -> LLVM dialect; JIT with the ExecutionEngine, or
 *        an object file for ahead-of-time use.
 *   GPU  linalg -> parallel loops -> gpu -> NVVM -> PTX for one sm_XX,
 *        no GPU needed (a loom_gpu_unit_t with the launch plan).
 *   NPU  the int8-quantised kernel (kernels.h QMATMUL) lowered like CPU and
 *        run by the NPU worker's software reference backend.
 * Pipelines are fixed strings, part of every artifact's hash. */
#ifndef LOOM_MLIR_CODEGEN_H
#define LOOM_MLIR_CODEGEN_H

#include "common/buf.h"
#include "common/err.h"
#include "mlir-lowering/ctx.h"
#include "mlir-lowering/gpu_unit.h"
#include "mlir-lowering/kernels.h"

typedef enum { LOOM_TARGET_CPU = 1, LOOM_TARGET_GPU, LOOM_TARGET_NPU } loom_target_kind_t;

/* "cpu", "gpu", "npu" <-> kind. parse returns 0 or LOOM_ENOTFOUND. */
const char *loom_target_name(loom_target_kind_t t);
int loom_target_parse(const char *s, loom_target_kind_t *out);

/* The pass pipeline text for a target (arch: "sm_90" for GPU, else
 * ignored). Writes into buf; returns buf. */
const char *loom_codegen_pipeline(loom_target_kind_t t, const char *arch, char *buf, size_t n);

/* The transform-dialect script run before the CPU/NPU pipeline (register-
 * blocked, vectorised matmul sized for this host's vector width; "" for
 * GPU). Part of an artifact's cache key. Writes into buf; returns buf. */
const char *loom_codegen_transform(loom_target_kind_t t, char *buf, size_t n);

/* Reads the signature of the first func.func in src (memref arguments with
 * static shapes and f32/i32/i8 elements). A kernel that does not parse or
 * verify is LOOM_EPARSE with MLIR's diagnostic located in `filename`. */
int loom_codegen_signature(loom_mlir_t *m, const char *src, size_t n, const char *filename,
                           loom_kernel_sig_t *sig, loom_err_t *err);

/* CPU / NPU: lowers src to LLVM-dialect MLIR text (appended to out). */
int loom_codegen_llvm(loom_mlir_t *m, const char *src, size_t n, const char *filename,
                      loom_buf_t *out, loom_err_t *err);

/* GPU: lowers src to PTX for arch ("sm_70".."sm_90"); fills u (caller
 * frees with loom_gpu_unit_free). */
int loom_codegen_ptx(loom_mlir_t *m, const char *src, size_t n, const char *filename,
                     const char *arch, loom_gpu_unit_t *u, loom_err_t *err);

/* ---- CPU JIT --------------------------------------------------------- */

typedef struct loom_jit loom_jit_t;

/* JIT-compiles LLVM-dialect text (from loom_codegen_llvm). Caller owns *out.
 * The context m must outlive the JIT. */
int loom_jit_new(loom_mlir_t *m, const char *llvm_text, size_t n, loom_jit_t **out,
                 loom_err_t *err);
void loom_jit_destroy(loom_jit_t **pj);

/* Calls sig->func with buffers[i] as the data of argument i (sized by
 * loom_kernel_arg_bytes). */
int loom_jit_call(loom_jit_t *j, const loom_kernel_sig_t *sig, void *const *buffers,
                  loom_err_t *err);

/* Writes the JIT's machine code as an ELF object file (ahead-of-time use). */
int loom_jit_write_object(loom_jit_t *j, const char *path, loom_err_t *err);

#endif

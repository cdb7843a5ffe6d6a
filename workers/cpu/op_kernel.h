/* op_kernel.h — `compute` and `vector.search` ops run from compiled units
 * (mlir-lowering/runner.h: kernels compiled once per shape into
 * content-addressed artifacts, executed by the MLIR JIT). Used by
 * loom-worker-cpu (target cpu) and loom-worker-npu (target npu: the int8
 * reference backend). */
#ifndef LOOM_WORKERS_CPU_OP_KERNEL_H
#define LOOM_WORKERS_CPU_OP_KERNEL_H

#include "common/err.h"
#include "mlir-lowering/codegen.h"
#include "workers/common/backend.h"

/* Registers compute and vector.search (serial: one MLIR context). The
 * runner lives until the process exits. Artifacts are cached on disk in
 * $LOOM_ARTIFACT_DIR when set. A vector.search registered before (the LLM
 * engine's, for .vindex files) keeps serving indexes other than inline
 * documents and JSON index files. Call once per process. */
int loom_kernel_ops_add(loom_ops_t *ops, loom_target_kind_t target, loom_err_t *err);

#endif

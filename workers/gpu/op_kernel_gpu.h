/* op_kernel_gpu.h — the `compute` op of loom-worker-gpu: kernels (built-in
 * or user .mlir) compiled to PTX for this GPU's architecture through the
 * artifact cache (mlir-lowering/runner.h) and launched with the CUDA driver
 * API (cudrv.h). */
#ifndef LOOM_WORKERS_GPU_OP_KERNEL_GPU_H
#define LOOM_WORKERS_GPU_OP_KERNEL_GPU_H

#include "common/err.h"
#include "workers/common/backend.h"

/* Opens GPU `ordinal` through the driver and registers compute (serial).
 * Without a usable driver/device it registers nothing and returns 0 (the
 * worker then simply does not offer compute). Call once per process. */
int loom_gpu_kernel_ops_add(loom_ops_t *ops, int ordinal, loom_err_t *err);

#endif

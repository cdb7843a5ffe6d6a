/* kernel_check.h — a compute step's .mlir kernel checked the way a worker
 * will build it, for `loom validate` and `loom plan --emit mlir`. */
#ifndef LOOM_CLI_KERNEL_CHECK_H
#define LOOM_CLI_KERNEL_CHECK_H

#include "common/err.h"
#include "mlir-lowering/ctx.h"
#include "planner/workflow.h"

/* Reads the kernel file step `step_id` of wf names (`kernel`, given at
 * line:col of the workflow; a relative path resolves against the workflow's
 * directory) and compiles it for the CPU: verified, lowered to the LLVM
 * dialect and JIT-linked (mlir-lowering/codegen.h). Returns 0 when it
 * compiles or `kernel` is not a .mlir file (a built-in kernel); else the
 * error, located at the kernel's file:line:col (or at the step when the
 * file cannot be read), with field steps.<id>.kernel. *m is the MLIR
 * context, made on first use (the caller destroys it). */
int loom_cli_check_kernel(loom_mlir_t **m, const loom_workflow_t *wf, const char *step_id, const char *kernel,
                          int line, int col, loom_err_t *err);

#endif

/* mlir_internal.h — helpers shared by the files of mlir-lowering/ that talk
 * to the MLIR C API. Not for use outside this folder (DESIGN.md: only
 * mlir-lowering includes the mlir-c headers). */
#ifndef LOOM_MLIR_INTERNAL_H
#define LOOM_MLIR_INTERNAL_H

#include "mlir-lowering/ctx.h"

#include <mlir-c/IR.h>
#include <mlir-c/Support.h>

MlirContext loom_mlir_context(loom_mlir_t *m);

/* Diagnostics: the context's handler records every error (with its notes)
 * emitted since the last loom_mlir_diag_begin. loom_mlir_diag_fail turns
 * them into err: msg = "<what>: <first error>", file/line/col from the first
 * error's location (a location in buffer "-" is reported as `filename`),
 * detail = the remaining diagnostics. Returns code. */
void loom_mlir_diag_begin(loom_mlir_t *m);
int loom_mlir_diag_fail(loom_mlir_t *m, loom_err_t *err, int code, const char *what,
                        const char *filename);

/* Parses text into a module and verifies it. Caller owns *out
 * (mlirModuleDestroy). LOOM_EPARSE with a located diagnostic on failure. */
int loom_mlir_parse(loom_mlir_t *m, const char *text, size_t n, const char *filename,
                    MlirModule *out, loom_err_t *err);

/* Runs a textual pass pipeline ("builtin.module(...)") on the module parsed
 * from `filename`. LOOM_EINTERNAL with MLIR's diagnostic, located in
 * filename, when a pass fails. */
int loom_mlir_run_pipeline(loom_mlir_t *m, MlirModule mod, const char *pipeline,
                           const char *what, const char *filename, loom_err_t *err);

/* Appends the textual form of op to out. Returns 0 or LOOM_ENOMEM. */
int loom_mlir_print(MlirOperation op, loom_buf_t *out);

/* StringRef from a C string. */
static inline MlirStringRef loom_sr(const char *s) { return mlirStringRefCreateFromCString(s); }

/* Whether op is named `name` ("memref.load", ...) (lower.c). */
int loom_op_is(MlirOperation op, const char *name);

/* Views that keep the base pointer (expand/collapse_shape, subview,
 * reinterpret_cast, cast): operand 0 is the viewed buffer (codegen.c). */
int loom_op_is_view(MlirOperation op);

/* The kernel argument or allocation behind v (v with views stripped). */
MlirValue loom_base_buffer(MlirValue v);

#endif

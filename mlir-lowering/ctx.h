/* ctx.h — one MLIR context with every upstream dialect, pass and LLVM
 * translation registered and the `loom` dialect loaded from IRDL text
 * (loom.irdl.mlir, embedded at build time).
 *
 * This public header does not include the mlir-c headers: only mlir-lowering/ does
 * (see mlir_internal.h). A context is not thread-safe; use one per thread. */
#ifndef LOOM_MLIR_CTX_H
#define LOOM_MLIR_CTX_H

#include "common/buf.h"
#include "common/err.h"

typedef struct loom_mlir loom_mlir_t;

/* Creates the context and loads the loom dialect. NULL on failure (err set). */
loom_mlir_t *loom_mlir_new(loom_err_t *err);
/* Safe on NULL and twice; sets *pm = NULL. */
void loom_mlir_destroy(loom_mlir_t **pm);

/* The IRDL source of the loom dialect (static storage, NUL-terminated). */
const char *loom_mlir_irdl_text(void);

/* Parses and verifies MLIR text (any registered dialect, loom included) and
 * prints it back in canonical form into out (appended). filename names the
 * text in diagnostics. A text that does not parse or verify returns
 * LOOM_EPARSE with MLIR's diagnostic in err->msg and its location in
 * err->file/line/col. */
int loom_mlir_check_text(loom_mlir_t *m, const char *text, size_t n, const char *filename,
                         loom_buf_t *out, loom_err_t *err);

#endif

/* kernel_check.c — see kernel_check.h. */
#include "cli/kernel_check.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "mlir-lowering/codegen.h"

int loom_cli_check_kernel(loom_mlir_t **m, const loom_workflow_t *wf, const char *step_id, const char *kernel,
                          int line, int col, loom_err_t *err)
{
    size_t len = kernel ? strlen(kernel) : 0;
    if (len < 5 || strcmp(kernel + len - 5, ".mlir") != 0)
        return 0;
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", kernel[0] == '/' ? "" : wf->dir, kernel[0] == '/' ? "" : "/", kernel);
    loom_buf_t src = LOOM_BUF_INIT, out = LOOM_BUF_INIT;
    int rc;
    if (loom_buf_read_file(&src, path) != 0) {
        rc = loom_err_set(err, LOOM_ENOTFOUND, "kernel file %s cannot be read: %s", path, strerror(errno));
        loom_err_at(err, wf->file, line, col);
    } else if (!*m && !(*m = loom_mlir_new(err))) {
        rc = err->code ? err->code : LOOM_EINTERNAL;
    } else {
        rc = loom_codegen_llvm(*m, src.data, src.len, path, &out, err);
    }
    loom_buf_free(&src);
    loom_buf_free(&out);
    if (rc)
        loom_err_field(err, "steps.%s.kernel", step_id);
    return rc;
}

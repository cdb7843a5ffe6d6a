/* op_kernel.c — compute / vector.search op handlers over the kernel runner
 * (see op_kernel.h). Input errors are permanent (a retry cannot help). */
#include "workers/cpu/op_kernel.h"

#include "mlir-lowering/runner.h"

#include <stdlib.h>

static int permanent(int rc)
{
    return rc == LOOM_EINVAL || rc == LOOM_EPARSE || rc == LOOM_ENOTFOUND || rc == LOOM_ETOOBIG;
}

static int op_compute(void *ud, loom_op_ctx_t *ctx, const json_t *input, loom_op_output_t *out, loom_err_t *err)
{
    (void)ctx;
    json_t *res = NULL;
    int rc = loom_kernel_runner_compute(ud, input, &res, err);
    if (rc) {
        out->permanent = permanent(rc);
        return rc;
    }
    out->json = res;
    return 0;
}

static int op_vsearch(void *ud, loom_op_ctx_t *ctx, const json_t *input, loom_op_output_t *out, loom_err_t *err)
{
    (void)ctx;
    json_t *res = NULL;
    int rc = loom_kernel_runner_vsearch(ud, input, &res, err);
    if (rc) {
        out->permanent = permanent(rc);
        return rc;
    }
    out->json = res;
    return 0;
}

int loom_kernel_ops_add(loom_ops_t *ops, loom_target_kind_t target, loom_err_t *err)
{
    loom_kernel_runner_t *r = loom_kernel_runner_new(target, getenv("LOOM_ARTIFACT_DIR"), err);
    if (!r)
        return err ? err->code : LOOM_EINTERNAL;
    int rc = loom_ops_add(ops, "compute", op_compute, r, LOOM_OP_SERIAL);
    if (!rc)
        rc = loom_ops_add(ops, "vector.search", op_vsearch, r, LOOM_OP_SERIAL);
    if (rc) {
        loom_kernel_runner_destroy(&r);
        return loom_err_set(err, rc, "registering compute/vector.search failed");
    }
    return 0;
}

/* op_kernel_gpu.c — compute on the GPU from compiled units (see
 * op_kernel_gpu.h). PTX is generated for the newest Loom target the device
 * runs (sm_90, sm_89, sm_80 or sm_70); the driver JIT-compiles it for the
 * actual GPU. */
#include "workers/gpu/op_kernel_gpu.h"

#include "common/log.h"
#include "mlir-lowering/runner.h"
#include "workers/gpu/cudrv.h"

#include <stdlib.h>

static int exec_unit(void *ud, const loom_gpu_unit_t *u, void *const *bufs, const size_t *bytes,
                     const int *is_output, int n, loom_err_t *err)
{
    return loom_cudrv_run_unit(ud, u, bufs, bytes, is_output, n, err);
}

static int op_compute(void *ud, loom_op_ctx_t *ctx, const json_t *input, loom_op_output_t *out, loom_err_t *err)
{
    (void)ctx;
    json_t *res = NULL;
    int rc = loom_kernel_runner_compute(ud, input, &res, err);
    if (rc) {
        out->permanent = rc == LOOM_EINVAL || rc == LOOM_EPARSE || rc == LOOM_ENOTFOUND || rc == LOOM_ETOOBIG;
        return rc;
    }
    out->json = res;
    return 0;
}

int loom_gpu_kernel_ops_add(loom_ops_t *ops, int ordinal, loom_err_t *err)
{
    loom_cudrv_t *d = NULL;
    loom_err_t e = {0};
    if (loom_cudrv_open(ordinal, &d, &e) != 0) {
        LOOM_WARN("gpu", "msg=\"compute op not offered\" reason=\"%s\"", e.msg);
        return 0;
    }
    const loom_cudrv_device_t *dev = loom_cudrv_device(d);
    int cc = dev->cc_major * 10 + dev->cc_minor;
    const char *arch = cc >= 90 ? "sm_90" : cc >= 89 ? "sm_89" : cc >= 80 ? "sm_80" : "sm_70";
    loom_kernel_runner_t *r = loom_kernel_runner_new_gpu(arch, exec_unit, d, getenv("LOOM_ARTIFACT_DIR"), err);
    if (!r) {
        loom_cudrv_close(&d);
        return err ? err->code : LOOM_EINTERNAL;
    }
    int rc = loom_ops_add(ops, "compute", op_compute, r, LOOM_OP_SERIAL);
    if (rc) {
        loom_kernel_runner_destroy(&r);
        loom_cudrv_close(&d);
        return loom_err_set(err, rc, "registering compute failed");
    }
    LOOM_INFO("gpu", "msg=\"compute on GPU\" device=\"%s\" ptx=%s", dev->name, arch);
    return 0; /* runner and driver handle live until the process exits */
}

/* op_kernel.c — compute / vector.search op handlers over the kernel runner
 * (see op_kernel.h). Input errors are permanent (a retry cannot help). */
#include "workers/cpu/op_kernel.h"

#include "mlir-lowering/runner.h"

#include <stdlib.h>
#include <string.h>

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

/* What vector.search runs on: the runner, and the op registered before
 * (the LLM engine's, which reads .vindex files) for indexes it cannot read. */
typedef struct {
    loom_kernel_runner_t *runner;
    loom_op_fn prev;
    void *prev_ud;
} vsearch_t;

static int jit_can_search(const json_t *input)
{
    if (json_object_get(input, "documents"))
        return 1;
    const char *path = json_string_value(json_object_get(json_object_get(input, "index_resource"), "path"));
    size_t n = path ? strlen(path) : 0;
    return n >= 5 && strcmp(path + n - 5, ".json") == 0;
}

static int op_vsearch(void *ud, loom_op_ctx_t *ctx, const json_t *input, loom_op_output_t *out, loom_err_t *err)
{
    vsearch_t *v = ud;
    if (!jit_can_search(input) && v->prev)
        return v->prev(v->prev_ud, ctx, input, out, err);
    json_t *res = NULL;
    int rc = loom_kernel_runner_vsearch(v->runner, input, &res, err);
    if (rc) {
        out->permanent = permanent(rc);
        return rc;
    }
    out->json = res;
    return 0;
}

int loom_kernel_ops_add(loom_ops_t *ops, loom_target_kind_t target, loom_err_t *err)
{
    static vsearch_t vs; /* one registration per process */
    loom_kernel_runner_t *r = loom_kernel_runner_new(target, getenv("LOOM_ARTIFACT_DIR"), err);
    if (!r)
        return err ? err->code : LOOM_EINTERNAL;
    int flags;
    vs.runner = r;
    if (loom_ops_find(ops, "vector.search", &vs.prev, &vs.prev_ud, &flags) != 0)
        vs.prev = NULL, vs.prev_ud = NULL;
    int rc = loom_ops_add(ops, "compute", op_compute, r, LOOM_OP_SERIAL);
    if (!rc)
        rc = loom_ops_add(ops, "vector.search", op_vsearch, &vs, LOOM_OP_SERIAL);
    if (rc) {
        loom_kernel_runner_destroy(&r);
        return loom_err_set(err, rc, "registering compute/vector.search failed");
    }
    return 0;
}

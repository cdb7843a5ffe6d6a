/* plan_mlir.c — `loom plan FILE --emit mlir [--after PASS]`: lowers the plan
 * to the loom MLIR dialect (mlir-lowering/) and prints the module after the
 * given pass (default: the last, verify). */
#include "cli/cli.h"
#include "cli/kernel_check.h"
#include "cli/plan_common.h"
#include "common/arena.h"
#include "common/buf.h"
#include "mlir-lowering/codegen.h"
#include "mlir-lowering/from_plan.h"
#include "mlir-lowering/lower.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every compute step's .mlir kernel must compile as a worker will build
 * it: a broken kernel fails here with MLIR's diagnostic at the kernel
 * file's line and column. */
static int check_kernels(loom_mlir_t *m, const loom_workflow_t *wf, const loom_lower_wf_t *in, loom_err_t *err)
{
    for (size_t i = 0; i < in->nnodes; i++) {
        const loom_lower_node_t *n = &in->nodes[i];
        int rc = strcmp(n->op, "compute") != 0 ? 0
                 : loom_cli_check_kernel(&m, wf, n->step, n->kernel, n->line, n->col, err);
        if (rc)
            return rc;
    }
    return 0;
}

int loom_cli_plan_emit_mlir(const loom_cli_planned_t *P, const char *after, int json);

int loom_cli_plan_emit_mlir(const loom_cli_planned_t *P, const char *after, int json)
{
    loom_pass_t last = LOOM_PASS_VERIFY;
    if (after && loom_pass_parse(after, &last) != 0) {
        fprintf(stderr, "loom plan: --after: unknown pass '%s' (emit, decompose-llm, annotate-targets, "
                        "partition-devices, control-regions, verify)\n", after);
        return LOOM_EXIT_USAGE;
    }
    loom_err_t err = {0};
    loom_arena_t *arena = loom_arena_new(0);
    loom_mlir_t *m = arena ? loom_mlir_new(&err) : NULL;
    loom_buf_t out = LOOM_BUF_INIT;
    loom_lower_wf_t in;
    int rc = LOOM_EXIT_SYSTEM;
    if (!m) {
        loom_cli_print_err("plan", &err);
        goto done;
    }
    rc = LOOM_EXIT_FAIL;
    if (loom_lower_from_plan(P->wf, P->g, P->cost, P->plan, arena, &in, &err) != 0 ||
        check_kernels(m, P->wf, &in, &err) != 0 || loom_lower_text(m, &in, 1, last, &out, &err) != 0) {
        loom_cli_print_err("plan", &err);
        goto done;
    }
    if (json) {
        json_t *j = json_pack("{s:s, s:s, s:s}", "workflow", P->wf->name, "after", loom_pass_name(last),
                              "mlir", out.data ? out.data : "");
        char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
        if (s)
            puts(s);
        free(s);
        json_decref(j);
    } else {
        fputs(out.data ? out.data : "", stdout);
    }
    rc = LOOM_EXIT_OK;
done:
    loom_buf_free(&out);
    loom_mlir_destroy(&m);
    loom_arena_destroy(&arena);
    return rc;
}

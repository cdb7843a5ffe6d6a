/* ops_basic.c — ops every worker has, for tests and benchmarks:
 *   noop   → output null (inline: no thread hand-off)
 *   echo   → output = the input's "value" (null without one; inline)
 *   sleep  → {"ms": N} waits N ms (cancellable), output {"slept_ms": N}
 *            optional "fail": "message" makes it fail after the wait. */
#include "workers/common/backend.h"

#include "common/clock.h"

static int op_noop(void *ud, loom_op_ctx_t *ctx, const json_t *input, loom_op_output_t *out,
                   loom_err_t *err)
{
    (void)ud, (void)ctx, (void)input, (void)err;
    out->json = json_null();
    return 0;
}

static int op_echo(void *ud, loom_op_ctx_t *ctx, const json_t *input, loom_op_output_t *out,
                   loom_err_t *err)
{
    (void)ud, (void)ctx, (void)err;
    json_t *v = json_is_object(input) ? json_object_get(input, "value") : NULL;
    out->json = v ? json_deep_copy(v) : json_null();
    return out->json ? 0 : loom_err_set(err, LOOM_ENOMEM, "out of memory");
}

static int op_sleep(void *ud, loom_op_ctx_t *ctx, const json_t *input, loom_op_output_t *out,
                    loom_err_t *err)
{
    (void)ud;
    json_t *ms = json_is_object(input) ? json_object_get(input, "ms") : NULL;
    if (!json_is_integer(ms) || json_integer_value(ms) < 0) {
        out->permanent = 1;
        loom_err_set(err, LOOM_EINVAL, "sleep: input needs \"ms\": a non-negative integer");
        loom_err_field(err, "ms");
        return LOOM_EINVAL;
    }
    json_int_t want = json_integer_value(ms);
    /* at least `ms` (whole milliseconds of a coarser clock could end it
     * up to 1 ms early) */
    uint64_t end = loom_clock_ns() + (uint64_t)want * 1000000u;
    for (;;) {
        if (loom_op_cancelled(ctx))
            return loom_err_set(err, LOOM_ECANCELLED, "sleep cancelled");
        uint64_t now = loom_clock_ns();
        if (now >= end)
            break;
        uint64_t left_ms = (end - now + 999999u) / 1000000u;
        loom_sleep_ms(left_ms < 5 ? left_ms : 5);
    }
    json_t *fail = json_object_get(input, "fail");
    if (json_is_string(fail))
        return loom_err_set(err, LOOM_EIO, "%s", json_string_value(fail));
    out->json = json_pack("{sI}", "slept_ms", want);
    return 0;
}

int loom_ops_add_basic(loom_ops_t *ops)
{
    int rc = loom_ops_add(ops, "noop", op_noop, NULL, LOOM_OP_INLINE);
    if (!rc)
        rc = loom_ops_add(ops, "echo", op_echo, NULL, LOOM_OP_INLINE);
    if (!rc)
        rc = loom_ops_add(ops, "sleep", op_sleep, NULL, 0);
    return rc;
}

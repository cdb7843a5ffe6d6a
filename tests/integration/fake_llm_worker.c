/* fake_llm_worker.c — a FAKE llm.generate for the example-workflow tests.
 *
 * The example workflows need instruction-following models that cannot be
 * downloaded here; the LLM engine itself is tested against a NumPy
 * reference elsewhere (tests/llm). This worker runs on the real worker
 * skeleton (workers/common) and answers llm.generate deterministically from
 * the prompt, the way a well-behaved model would, so the orchestration of
 * the examples (loops, `when`, `loop.prev`, fan-out, stitching, tools,
 * compute) is exercised end to end through real loomd and real workers:
 *
 *   ReAct agent   no observation yet → {"action": "calculator", "input": <arithmetic from the task>}
 *                 an observation     → {"action": "finish", "input": "<the observation>"}
 *   research plan → {"questions": [N questions about the topic]}
 *   answer        → {"answer": ..., "confidence": 0.55..0.95 from the passages}
 *   other prompts → a text summary naming the prompt's size. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workers/common/worker.h"

static const char *str(const json_t *in, const char *k)
{
    const char *s = json_string_value(json_object_get(in, k));
    return s ? s : "";
}

/* The text after `key` up to the end of its line (copied into buf). */
static const char *line_after(const char *text, const char *key, char *buf, size_t n)
{
    const char *p = strstr(text, key);
    if (!p)
        return NULL;
    p += strlen(key);
    size_t len = strcspn(p, "\n");
    snprintf(buf, n, "%.*s", (int)len, p);
    return buf;
}

static int fake_generate(void *ud, loom_op_ctx_t *ctx, const json_t *in, loom_op_output_t *out,
                         loom_err_t *err)
{
    (void)ud, (void)ctx;
    const char *system = str(in, "system"), *prompt = str(in, "prompt");
    char buf[4096];
    if (strstr(system, "ReAct")) {
        const char *obs = line_after(prompt, "Observation: ", buf, sizeof buf);
        if (obs && strcmp(obs, "null") != 0 && *obs) {
            json_t *o = json_loads(obs, 0, NULL);
            json_t *v = o ? json_object_get(o, "observation") : NULL;
            char *ans = v ? json_dumps(v, JSON_ENCODE_ANY) : strdup(obs);
            out->json = json_pack("{ssssss}", "thought", "the observation answers the task",
                                  "action", "finish", "input", ans ? ans : "");
            free(ans);
            json_decref(o);
            return 0;
        }
        char expr[256] = "";
        const char *task = line_after(prompt, "Task: ", buf, sizeof buf);
        size_t k = 0;
        for (const char *p = task ? task : ""; *p && k < sizeof expr - 1; p++)
            if (isdigit((unsigned char)*p) || strchr("+-*/(). ", *p))
                expr[k++] = *p;
        while (k && expr[k - 1] == ' ')
            k--;
        expr[k] = 0;
        char *e0 = expr;
        while (*e0 == ' ')
            e0++;
        memmove(expr, e0, strlen(e0) + 1);
        out->json = json_pack("{ssssss}", "thought", "compute it", "action", "calculator", "input",
                              expr);
        return 0;
    }
    if (strstr(system, "plan research")) {
        int n = 4;
        const char *q = strstr(prompt, "\" into ");
        if (q)
            n = atoi(q + 7);
        if (n < 1 || n > 16)
            return loom_err_set(err, LOOM_EINVAL, "fake llm: cannot read the question count");
        static const char *const qs[] = {"What limits LLM decode speed?",
                                         "How large is the KV cache?",
                                         "When is prefill compute-bound?",
                                         "Are older GPUs cheaper per token?",
                                         "What can edge NPUs run?",
                                         "Can server CPUs decode small models?"};
        json_t *arr = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(arr, json_string(qs[i % 6]));
        out->json = json_pack("{so}", "questions", arr);
        return 0;
    }
    if (strstr(system, "Answer the question")) {
        const char *q = line_after(prompt, "Question: ", buf, sizeof buf);
        double conf = 0.55 + (double)(strlen(q ? q : "") % 5) / 10.0;
        char ans[512];
        snprintf(ans, sizeof ans, "From the passages: %s", q ? q : "?");
        out->json = json_pack("{sssf}", "answer", ans, "confidence", conf);
        return 0;
    }
    snprintf(buf, sizeof buf, "Summary written from a %zu-byte prompt.", strlen(prompt));
    out->json = json_string(buf);
    return 0;
}

static int fake_init(void **self, int argc, char **argv, loom_err_t *err)
{
    (void)argv;
    *self = NULL;
    return argc > 1 ? loom_err_set(err, LOOM_EINVAL, "no options besides the worker's") : 0;
}

static int fake_profile(void *self, loom_device_profile_t *p, loom_err_t *err)
{
    (void)self, (void)err;
    *p = (loom_device_profile_t){.kind = "cpu", .model = "fake LLM (tests only)", .arch = "fake",
                                 .cores = 1, .slots = 2};
    return 0;
}

static int fake_add_ops(void *self, loom_ops_t *ops, loom_err_t *err)
{
    (void)self;
    int rc = loom_ops_add(ops, "llm.generate", fake_generate, NULL, 0);
    return rc ? loom_err_set(err, rc, "cannot register llm.generate") : 0;
}

static const loom_backend_t fake_backend = {
    .name = "fake-llm", .init = fake_init, .profile = fake_profile, .add_ops = fake_add_ops};

int main(int argc, char **argv)
{
    return loom_worker_main(&fake_backend, argc, argv);
}

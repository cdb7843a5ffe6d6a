/* workflow_bench — `make bench-workflow`: how fast the workflow loader is
 * against its own floor, measured in the same run on the same bytes:
 *   libyaml   yaml_parser_parse over every event (nothing built): the peer
 *   tree      loom_value_parse_yaml (events -> arena value tree)
 *   workflow  loom_workflow_parse (tree + validation + templates + graph)
 * for the three example workflows and a generated 2000-step workflow
 * (each step references two earlier ones and has a when: expression).
 * Also: template rendering and when: evaluation through a resolver.
 * Prints MB/s, microseconds per load and the ratio to libyaml. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "common/buf.h"
#include "common/clock.h"
#include "planner/workflow.h"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    loom_buf_t b = LOOM_BUF_INIT;
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        loom_buf_append(&b, tmp, n);
    fclose(f);
    return loom_buf_detach(&b, len);
}

static char *generate(size_t steps, size_t *len)
{
    loom_buf_t b = LOOM_BUF_INIT;
    loom_buf_puts(&b, "version: 1\nname: generated\ninputs:\n  q: string\n  k: {type: int, default: 3}\nsteps:\n");
    for (size_t i = 0; i < steps; i++) {
        loom_buf_printf(&b, "  s%zu:\n    op: echo\n", i);
        if (i < 2) {
            loom_buf_printf(&b, "    value:\n      text: \"step %zu of ${inputs.q}: start\"\n      ok: true\n", i);
            continue;
        }
        loom_buf_printf(&b, "    when: ${steps.s%zu.output.ok} == true && ${inputs.k} > 1\n", i - 1);
        loom_buf_printf(&b, "    value:\n      text: \"step %zu of ${inputs.q}: ${steps.s%zu.output.text}\"\n"
                            "      ok: true\n", i, i - 2);
    }
    loom_buf_puts(&b, "outputs:\n  last: ${steps.s1.output}\n");
    return loom_buf_detach(&b, len);
}

static int libyaml_events(const char *text, size_t len)
{
    yaml_parser_t p;
    yaml_event_t ev;
    int n = 0, done = 0;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    while (!done) {
        if (!yaml_parser_parse(&p, &ev))
            break;
        done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
        n++;
    }
    yaml_parser_delete(&p);
    return n;
}

static int tree_only(const char *text, size_t len)
{
    loom_arena_t *a = loom_arena_new(0);
    const loom_value_t *root = NULL;
    int rc = loom_value_parse_yaml(a, "b.yaml", text, len, &root, NULL);
    loom_arena_destroy(&a);
    return rc;
}

static int full(const char *text, size_t len)
{
    loom_workflow_t *wf = NULL;
    int rc = loom_workflow_parse("b.yaml", text, len, &wf, NULL);
    loom_workflow_destroy(&wf);
    return rc;
}

/* Runs fn until ~0.3 s have passed; returns ns per call. */
static double time_it(int (*fn)(const char *, size_t), const char *text, size_t len)
{
    uint64_t t0 = loom_clock_ns(), t;
    long iters = 0;
    do {
        for (int i = 0; i < 4; i++)
            fn(text, len);
        iters += 4;
        t = loom_clock_ns();
    } while (t - t0 < 300000000ull);
    return (double)(t - t0) / (double)iters;
}

static json_t *resolver(void *ctx, const loom_ref_t *r, loom_err_t *err)
{
    (void)err;
    json_t *env = ctx;
    if (r->kind == LOOM_REF_INPUT)
        return json_incref(json_object_get(json_object_get(env, "inputs"), r->name));
    return json_incref(json_object_get(env, "step"));
}

static void bench_eval(const char *text, size_t len)
{
    loom_workflow_t *wf = NULL;
    if (loom_workflow_parse("g.yaml", text, len, &wf, NULL) != 0)
        return;
    json_t *env = json_pack("{s:{s:s, s:i}, s:{s:b, s:s}}", "inputs", "q", "why", "k", 3, "step", "ok", 1, "text",
                            "previous text");
    const loom_wf_step_t *s = &wf->graph.steps[10];
    loom_err_t err;
    long n = 0;
    uint64_t t0 = loom_clock_ns(), t;
    do {
        for (int i = 0; i < 64; i++) {
            bool truth;
            loom_expr_eval_bool(s->when, resolver, env, &truth, &err);
        }
        n += 64;
        t = loom_clock_ns();
    } while (t - t0 < 200000000ull);
    double eval_ns = (double)(t - t0) / (double)n;
    n = 0;
    t0 = loom_clock_ns();
    do {
        for (int i = 0; i < 64; i++) {
            json_t *out = NULL;
            loom_value_render(s->node, resolver, env, &out, &err);
            json_decref(out);
        }
        n += 64;
        t = loom_clock_ns();
    } while (t - t0 < 200000000ull);
    double render_ns = (double)(t - t0) / (double)n;
    /* peer for rendering: building the same JSON object by hand with jansson */
    n = 0;
    t0 = loom_clock_ns();
    do {
        for (int i = 0; i < 64; i++) {
            json_t *o = json_pack("{s:s, s:s, s:{s:s, s:b}}", "op", "echo", "when", "x", "value", "text",
                                  "step 10 of why: previous text", "ok", 1);
            json_decref(o);
        }
        n += 64;
        t = loom_clock_ns();
    } while (t - t0 < 200000000ull);
    double pack_ns = (double)(t - t0) / (double)n;
    printf("when: evaluation      %8.0f ns per expression (2 references, 2 comparisons)\n", eval_ns);
    printf("step render to JSON   %8.0f ns per step; json_pack of the same object %6.0f ns (ratio %.1fx)\n",
           render_ns, pack_ns, render_ns / pack_ns);
    json_decref(env);
    loom_workflow_destroy(&wf);
}

int main(void)
{
    const char *files[] = {"examples/support-rag.yaml", "examples/react-agent.yaml", "examples/research-fanout.yaml"};
    printf("%-28s %8s %12s %12s %12s %10s %9s\n", "input", "bytes", "libyaml us", "tree us", "workflow us",
           "wf MB/s", "wf/libyaml");
    for (size_t i = 0; i < 4; i++) {
        size_t len = 0;
        char *text = i < 3 ? read_file(files[i], &len) : generate(2000, &len);
        if (!text) {
            fprintf(stderr, "bench-workflow: cannot read %s (run from the repository root)\n", files[i]);
            return 1;
        }
        if (full(text, len) != 0) {
            fprintf(stderr, "bench-workflow: %s does not validate\n", i < 3 ? files[i] : "generated");
            return 1;
        }
        double y = time_it(libyaml_events, text, len), tr = time_it(tree_only, text, len),
               w = time_it(full, text, len);
        printf("%-28s %8zu %12.1f %12.1f %12.1f %10.1f %8.2fx\n", i < 3 ? files[i] + 9 : "generated (2000 steps)",
               len, y / 1e3, tr / 1e3, w / 1e3, (double)len / (w / 1e9) / 1e6, w / y);
        if (i == 3)
            bench_eval(text, len);
        free(text);
    }
    return 0;
}

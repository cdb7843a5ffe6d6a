/* Unit tests for planner/workflow.c, planner/value.c (YAML tree) and the
 * structure of parsed workflows: sections, steps, dependencies, loops,
 * foreach, order, errors (collected, located, sorted), hostile inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "planner/workflow.h"

static loom_workflow_t *parse_ok(const char *text)
{
    loom_diags_t d = LOOM_DIAGS_INIT;
    loom_workflow_t *wf = NULL;
    int rc = loom_workflow_parse("t.yaml", text, strlen(text), &wf, &d);
    if (rc != 0) {
        char buf[1024];
        for (size_t i = 0; i < d.len; i++) {
            loom_err_format_long(&d.items[i], buf, sizeof buf);
            fprintf(stderr, "unexpected: %s\n", buf);
        }
    }
    assert_int_equal(rc, 0);
    assert_non_null(wf);
    assert_int_equal(d.len, 0);
    loom_diags_free(&d);
    return wf;
}

/* Parses text expecting failure; returns the one-line errors joined by '\n'. */
static char *parse_errors(const char *text)
{
    loom_diags_t d = LOOM_DIAGS_INIT;
    loom_workflow_t *wf = NULL;
    int rc = loom_workflow_parse("t.yaml", text, strlen(text), &wf, &d);
    assert_int_not_equal(rc, 0);
    assert_null(wf);
    assert_true(d.len > 0);
    size_t cap = 4096, len = 0;
    char *out = calloc(1, cap);
    for (size_t i = 0; i < d.len; i++) {
        char line[1024];
        loom_err_format(&d.items[i], line, sizeof line);
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? "\n" : "", line);
        assert_true(len < cap);
        assert_string_equal(d.items[i].file, "t.yaml");
    }
    loom_diags_free(&d);
    return out;
}

static void expect_error(const char *text, const char *want)
{
    char *got = parse_errors(text);
    if (!strstr(got, want))
        fail_msg("want error containing:\n  %s\ngot:\n  %s", want, got);
    free(got);
}

/* ---- the examples ------------------------------------------------------------ */

static void support_rag_example_parses_into_dag(void **state)
{
    (void)state;
    loom_diags_t d = LOOM_DIAGS_INIT;
    loom_workflow_t *wf = NULL;
    assert_int_equal(loom_workflow_load("examples/support-rag.yaml", &wf, &d), 0);
    assert_string_equal(wf->name, "support-rag");
    assert_int_equal(wf->version, 1);
    assert_string_equal(wf->dir, "examples");
    assert_int_equal(strlen(wf->sha256), 64);
    assert_true(wf->sla.set);
    assert_int_equal(wf->sla.latency_ms, 2500);
    assert_true(wf->sla.percentile == 95);
    assert_int_equal(wf->sla.objective, LOOM_WF_OBJECTIVE_COST);
    /* inputs: shorthand, typed with default */
    const loom_wf_input_t *q = loom_workflow_input(wf, "question"), *k = loom_workflow_input(wf, "top_k");
    assert_non_null(q);
    assert_int_equal(q->type, LOOM_WF_TYPE_STRING);
    assert_true(q->required);
    assert_int_equal(k->type, LOOM_WF_TYPE_INT);
    assert_false(k->required);
    assert_int_equal(k->default_value->i, 4);
    /* resources: explicit and derived shape fields */
    const loom_wf_model_t *qwen = loom_workflow_model(wf, "qwen"), *minilm = loom_workflow_model(wf, "minilm");
    assert_int_equal(qwen->kv_heads, 2);
    assert_int_equal(qwen->head_dim, 128);
    assert_int_equal(qwen->params, 1540000000LL);
    assert_int_equal(minilm->kv_heads, 12);              /* defaults to heads */
    assert_int_equal(minilm->head_dim, 384 / 12);        /* hidden / heads */
    assert_int_equal(minilm->params, 12LL * 6 * 384 * 384 + 30522LL * 384); /* estimated */
    assert_string_equal(loom_workflow_index(wf, "kb")->model, "minilm");
    /* steps and edges */
    const loom_wf_step_t *ans = loom_workflow_step(wf, "answer"), *ret = loom_workflow_step(wf, "retrieve");
    assert_int_equal(ans->op, LOOM_OP_LLM_GENERATE);
    assert_string_equal(ans->model, "qwen");
    assert_int_equal(ans->n_deps, 4); /* needs: escalate + three references */
    assert_int_equal(ans->level, 2);
    assert_string_equal(ret->index_name, "kb");
    assert_int_equal(ret->n_deps, 1);
    assert_string_equal(wf->graph.steps[ret->deps[0].step].id, "embed_question");
    assert_string_equal(ret->deps[0].field, "steps.retrieve.query");
    const loom_wf_step_t *esc = loom_workflow_step(wf, "escalate");
    assert_non_null(esc->when);
    assert_true(esc->expect.probability == 0.1);
    assert_int_equal(loom_workflow_step(wf, "lookup_ticket")->retries, 2);
    assert_int_equal(loom_workflow_step(wf, "lookup_ticket")->timeout_ms, 20000);
    /* the order is topological and stable */
    size_t pos[16];
    for (size_t i = 0; i < wf->graph.n_steps; i++)
        pos[wf->graph.order[i]] = i;
    for (size_t i = 0; i < wf->graph.n_steps; i++)
        for (size_t j = 0; j < wf->graph.steps[i].n_deps; j++)
            assert_true(pos[wf->graph.steps[i].deps[j].step] < pos[i]);
    assert_int_equal(wf->graph.n_levels, 3);
    assert_int_equal(wf->n_outputs, 3);
    loom_workflow_destroy(&wf);
    loom_workflow_destroy(&wf); /* safe twice */
    assert_null(wf);
    loom_diags_free(&d);
}

static void react_example_has_bounded_loop(void **state)
{
    (void)state;
    loom_diags_t d = LOOM_DIAGS_INIT;
    loom_workflow_t *wf = NULL;
    assert_int_equal(loom_workflow_load("examples/react-agent.yaml", &wf, &d), 0);
    const loom_wf_step_t *loop = loom_workflow_step(wf, "react");
    assert_int_equal(loop->op, LOOM_OP_LOOP);
    assert_int_equal(loop->max_iterations, 6);
    assert_non_null(loop->until);
    assert_true(loop->expect.iterations == 3);
    assert_non_null(loop->body);
    assert_ptr_equal(loop->body->owner, loop);
    assert_int_equal(loop->body->n_steps, 2);
    const loom_wf_step_t *act = loom_wf_graph_find(loop->body, "act");
    assert_int_equal(act->n_deps, 1);
    assert_string_equal(loop->body->steps[act->deps[0].step].id, "think");
    /* body steps are not top-level steps */
    assert_null(loom_workflow_step(wf, "think"));
    assert_null(loom_wf_graph_find(loop->body, "report"));
    assert_int_equal(loom_workflow_step(wf, "report")->n_deps, 1);
    /* the workflow-wide index finds steps at any depth */
    assert_ptr_equal(loom_workflow_find_step(wf, "act"), act);
    assert_ptr_equal(loom_workflow_find_step(wf, "report"), loom_workflow_step(wf, "report"));
    assert_null(loom_workflow_find_step(wf, "nosuchstep"));
    loom_workflow_destroy(&wf);
    loom_diags_free(&d);
}

static void fanout_example_has_foreach(void **state)
{
    (void)state;
    loom_diags_t d = LOOM_DIAGS_INIT;
    loom_workflow_t *wf = NULL;
    assert_int_equal(loom_workflow_load("examples/research-fanout.yaml", &wf, &d), 0);
    const loom_wf_step_t *s = loom_workflow_step(wf, "search");
    assert_non_null(s->foreach);
    assert_non_null(s->foreach->tpl);
    const loom_ref_t *r = loom_template_single_ref(s->foreach->tpl);
    assert_int_equal(r->kind, LOOM_REF_STEP);
    assert_string_equal(r->name, "plan");
    assert_true(s->expect.items == 4);
    assert_int_equal(loom_workflow_step(wf, "weights")->op, LOOM_OP_COMPUTE);
    assert_int_equal(wf->sla.objective, LOOM_WF_OBJECTIVE_LATENCY);
    loom_workflow_destroy(&wf);
    loom_diags_free(&d);
}

/* ---- value tree ----------------------------------------------------------------- */

static void scalars_follow_yaml_core_schema(void **state)
{
    (void)state;
    const char *text = "version: 1\nname: s\nsteps:\n  e:\n    op: echo\n    value:\n"
                       "      a: ~\n      b: true\n      c: -42\n      d: 1.5e3\n      e: \"7\"\n"
                       "      f: 0x1F\n      g: yes\n      h: ''\n      i: [1, two]\n      j: .inf\n";
    loom_workflow_t *wf = parse_ok(text);
    const loom_value_t *v = loom_wf_step_field(loom_workflow_step(wf, "e"), "value");
    assert_int_equal(v->kind, LOOM_VALUE_MAP);
    assert_int_equal(loom_value_get(v, "a")->kind, LOOM_VALUE_NULL);
    assert_int_equal(loom_value_get(v, "b")->kind, LOOM_VALUE_BOOL);
    assert_int_equal(loom_value_get(v, "c")->i, -42);
    assert_true(loom_value_get(v, "d")->f == 1500.0);
    assert_int_equal(loom_value_get(v, "e")->kind, LOOM_VALUE_STRING); /* quoted stays a string */
    assert_int_equal(loom_value_get(v, "f")->i, 31);
    assert_int_equal(loom_value_get(v, "g")->kind, LOOM_VALUE_STRING); /* YAML 1.2: not a bool */
    assert_int_equal(loom_value_get(v, "h")->kind, LOOM_VALUE_STRING);
    assert_int_equal(loom_value_get(v, "i")->len, 2);
    assert_int_equal(loom_value_get(v, "i")->items[1]->kind, LOOM_VALUE_STRING);
    assert_int_equal(loom_value_get(v, "j")->kind, LOOM_VALUE_FLOAT);
    assert_int_equal(loom_value_get(v, "c")->line, 9);
    assert_int_equal(loom_value_get(v, "c")->col, 10);
    json_t *j = loom_value_to_json(v);
    assert_int_equal(json_integer_value(json_object_get(j, "c")), -42);
    assert_string_equal(json_string_value(json_object_get(j, "e")), "7");
    assert_true(json_is_null(json_object_get(j, "j"))); /* inf has no JSON form */
    json_decref(j);
    loom_workflow_destroy(&wf);
}

static void yaml_level_errors(void **state)
{
    (void)state;
    expect_error("version: 1\nname: x\nsteps: {a: {op: noop}}\nsteps: {}\n",
                 "t.yaml:4:1: duplicate key 'steps' (first defined at line 3)");
    expect_error("version: 1\nname: x\nbase: &b {op: noop}\nsteps:\n  a: *b\n",
                 "t.yaml:5:6: steps.a: YAML aliases (*b) are not supported");
    expect_error("version: 1\nname: x\nsteps: {a: {op: noop}}\n---\nversion: 1\n",
                 "t.yaml:4:1: more than one YAML document in the file");
    expect_error("version: 1\nname: x\nsteps:\n  a: {op: noop\n", "t.yaml:5:1: invalid YAML");
    expect_error("", "t.yaml:1:1: file is empty");
    expect_error("- 1\n- 2\n", "t.yaml:1:1: a workflow must be a mapping");
    expect_error("version: 1\nname: x\nsteps: {a: {op: noop}}\n? [1, 2]\n: 3\n",
                 "t.yaml:4:3: mapping keys must be plain strings");
    /* large mappings switch to a hashed duplicate check */
    loom_buf_t big = LOOM_BUF_INIT;
    loom_buf_puts(&big, "version: 1\nname: x\nsteps:\n");
    for (int i = 0; i < 50; i++)
        loom_buf_printf(&big, "  s%d: {op: noop}\n", i);
    loom_buf_puts(&big, "  s40: {op: noop}\n  s3: {op: noop}\n");
    char *got = parse_errors(big.data);
    assert_string_equal(got, "t.yaml:54:3: steps: duplicate key 's40' (first defined at line 44)\n"
                             "t.yaml:55:3: steps: duplicate key 's3' (first defined at line 7)");
    free(got);
    loom_buf_free(&big);
    /* nesting is bounded (the builder recurses) */
    char deep[400] = "version: 1\nname: x\nsteps: {a: {op: echo, value: ";
    size_t n = strlen(deep);
    for (int i = 0; i < 100; i++)
        deep[n++] = '[';
    deep[n] = 0;
    expect_error(deep, "nesting deeper than 64 levels");
}

static void errors_are_collected_located_and_sorted(void **state)
{
    (void)state;
    const char *text = "version: 3\n"
                       "name: x\n"
                       "steps:\n"
                       "  b:\n"
                       "    op: sleep\n"
                       "    ms: soon\n"
                       "  a:\n"
                       "    op: echo\n"
                       "    value: ${steps.nope.output} ${inputs.nothing}\n";
    char *got = parse_errors(text);
    assert_string_equal(got, "t.yaml:1:10: version: unsupported version 3 (this Loom reads version 1)\n"
                             "t.yaml:6:9: steps.b.ms: expected a non-negative integer, got string 'soon'\n"
                             "t.yaml:9:20: steps.a.value: unknown step 'nope'\n"
                             "t.yaml:9:42: steps.a.value: unknown input 'nothing'");
    free(got);
}

static void step_validation_messages(void **state)
{
    (void)state;
    const char *pre = "version: 1\nname: x\n";
    char buf[2048];
#define CASE(body, want)                                   \
    do {                                                   \
        snprintf(buf, sizeof buf, "%s%s", pre, body);      \
        expect_error(buf, want);                           \
    } while (0)
    CASE("steps:\n  a: {op: echo}\n", "t.yaml:4:3: steps.a: missing required field 'value' for op echo");
    CASE("steps:\n  a: {op: echo, value: 1, needs: a}\n", "steps.a.needs: expected a list of step ids");
    CASE("steps:\n  a: {op: echo, value: 1, retries: -1}\n", "steps.a.retries: must be between 0 and 100, got -1");
    CASE("steps:\n  a: {op: echo, value: 1, timeout_ms: 0}\n", "steps.a.timeout_ms: must be a positive integer");
    CASE("steps:\n  a: {op: echo, value: 1, expect: {latency: 3}}\n",
         "unknown field 'latency' (did you mean 'latency_ms'?)");
    CASE("steps:\n  a: {op: echo, value: 1, expect: {probability: 0.5}}\n",
         "a branch probability needs a when: condition");
    CASE("steps:\n  a: {op: tool.exec, argv: []}\n", "argv must name at least the program to run");
    CASE("steps:\n  a: {op: tool.exec, argv: [ls, [x]]}\n", "steps.a.argv[1]: expected a string, got a list");
    CASE("steps:\n  a: {op: tool.exec, argv: [ls], env: {A: [1]}}\n", "steps.a.env.A: expected a string");
    CASE("steps:\n  a: {op: tool.http}\n", "missing required field 'url' for op tool.http");
    CASE("steps:\n  a: {op: tool.http, url: http://h/, expect_status: [200, 6xx]}\n",
         "steps.a.expect_status[1]: expected a status code (100-599) or a class like \"2xx\"");
    CASE("steps:\n  a: {op: tool.http, url: http://h/, expect_status: 99}\n",
         "steps.a.expect_status: expected a status code (100-599)");
    CASE("steps:\n  a: {op: tool.http, url: http://h/, method: FETCH}\n", "steps.a.method:");
    CASE("steps:\n  a: {op: compute, kernel: lib/k.cu}\n", "kernel file 'lib/k.cu' must end in .mlir");
    CASE("steps:\n  a: {op: loop, max_iterations: 0, body: {b: {op: noop}}}\n",
         "steps.a.max_iterations: must be a positive integer, got 0");
    CASE("inputs: {n: int}\nsteps:\n  a: {op: loop, max_iterations: \"${inputs.n}\", body: {b: {op: noop}}}\n",
         "steps.a.max_iterations: expected a positive integer, got string '${inputs.n}'");
    CASE("steps:\n  a: {op: loop, max_iterations: 2, body: []}\n", "steps.a.body: expected a mapping from step ids");
    CASE("steps:\n  a: {op: loop, max_iterations: 2, body: {b: {op: noop}}, expect: {iterations: 5}}\n",
         "expected iterations (5) exceed max_iterations (2)");
    CASE("steps:\n  a: {op: echo, value: 1, foreach: 3}\n", "foreach needs a list, got int 3");
    CASE("steps:\n  a: {op: echo, value: 1, foreach: \"x ${inputs.l}\"}\n", "foreach needs a list or a single");
    CASE("steps:\n  a: {op: echo, value: \"${loop.iteration}\"}\n", "'loop.iteration' is only defined inside a loop");
    CASE("steps:\n  a: {op: echo, value: \"${steps.a.output}\"}\n", "dependency cycle: a needs a");
    CASE("steps:\n  - a: {op: noop}\n", "t.yaml:4:3: steps: expected a mapping from step ids to steps, got a list");
    CASE("steps: {}\n", "steps: needs at least one step");
    CASE("steps:\n  1abc: {op: noop}\n", "invalid step id '1abc'");
    CASE("steps:\n  a: {op: llm.generate, model: m, prompt: p, messages: [{role: user, content: c}]}\n",
         "unknown model 'm'");
    CASE("steps:\n  a: {op: echo, value: \"${steps.a.output\"}\n", "t.yaml:4:25: steps.a.value: unterminated '${'");
    CASE("steps:\n  a: {op: echo, value: 1, when: \"${inputs.x} >\"}\n", "expression ends too early");
    CASE("inputs: {n: {type: int, default: abc}}\nsteps:\n  a: {op: noop}\n",
         "inputs.n.default: default does not match type int: got string 'abc'");
    CASE("inputs: {n: integer}\nsteps:\n  a: {op: noop}\n", "t.yaml:3:13: inputs.n: unknown type 'integer'");
    CASE("sla: {percentile: 99}\nsteps:\n  a: {op: noop}\n", "t.yaml:3:1: sla: missing required field 'latency_ms'");
    CASE("resources: {models: {m: {path: p, arch: a, layers: 1, hidden: 8, heads: 3, kv_heads: 2, vocab: 4, "
         "context: 8, dtype: f16}}}\nsteps:\n  a: {op: noop}\n",
         "heads (3) must be a multiple of kv_heads (2)");
    CASE("resources: {models: {m: {arch: llama}}}\nsteps:\n  a: {op: noop}\n",
         "resources.models.m: a model needs path (a GGUF file) or endpoint");
    CASE("resources: {models: {m: {endpoint: 'ftp://h/v1'}}}\nsteps:\n  a: {op: noop}\n",
         "resources.models.m.endpoint: endpoint must be an http:// or https:// URL");
    CASE("resources: {models: {m: {path: p, api_key_secret: K}}}\nsteps:\n  a: {op: noop}\n",
         "resources.models.m.api_key_secret: api_key_secret is for endpoint models");
    CASE("resources: {tools: {t: {command: x, url: 'http://h/mcp'}}}\nsteps:\n  a: {op: noop}\n",
         "resources.tools.t: an MCP server needs exactly one of command (stdio) or url (HTTP)");
    CASE("resources: {tools: {t: {command: x, args: [a, [b]]}}}\nsteps:\n  a: {op: noop}\n",
         "resources.tools.t.args[1]: expected a string");
    CASE("steps:\n  a: {op: tool.mcp, server: s}\n", "missing required field 'tool' for op tool.mcp");
    CASE("steps:\n  l:\n    op: loop\n    max_iterations: 2\n    body:\n      b: {op: echo, value: \"${loop.prev.c.output}\"}\n",
         "unknown step 'c' in loop 'l'");
    CASE("steps:\n  l:\n    op: loop\n    max_iterations: 2\n    body:\n      b: {op: noop}\n  l2:\n    op: loop\n"
         "    max_iterations: 2\n    body:\n      b: {op: noop}\n",
         "duplicate step id 'b' (first defined at line 8)");
#undef CASE
}

static void loop_scoping_and_hoisting(void **state)
{
    (void)state;
    const char *text = "version: 1\nname: x\ninputs: {topic: string}\nsteps:\n"
                       "  seed: {op: echo, value: start}\n"
                       "  other: {op: noop}\n"
                       "  refine:\n"
                       "    op: loop\n"
                       "    max_iterations: 4\n"
                       "    until: ${steps.check.output.done} || loop.iteration >= 2\n"
                       "    body:\n"
                       "      draft: {op: echo, value: \"${steps.seed.output} ${loop.prev.draft.output} ${inputs.topic}\"}\n"
                       "      check: {op: echo, value: {done: true}, needs: [draft, other]}\n"
                       "  after: {op: echo, value: \"${steps.refine.output.draft}\"}\n";
    loom_workflow_t *wf = parse_ok(text);
    const loom_wf_step_t *loop = loom_workflow_step(wf, "refine");
    /* body reads of outer steps become the loop step's dependencies */
    assert_int_equal(loop->n_deps, 2);
    assert_string_equal(wf->graph.steps[loop->deps[0].step].id, "seed");
    assert_string_equal(wf->graph.steps[loop->deps[1].step].id, "other");
    const loom_wf_step_t *check = loom_wf_graph_find(loop->body, "check");
    assert_int_equal(check->n_deps, 1); /* 'other' was hoisted */
    assert_int_equal(loom_wf_graph_find(loop->body, "draft")->n_deps, 0);
    assert_int_equal(loom_expr_n_refs(loop->until), 2);
    assert_int_equal(loom_workflow_step(wf, "after")->level, 2);
    loom_workflow_destroy(&wf);
}

static void foreach_and_item(void **state)
{
    (void)state;
    loom_workflow_t *wf = parse_ok("version: 1\nname: x\ninputs: {qs: list, any_in: any}\nsteps:\n"
                                   "  a: {op: echo, foreach: \"${inputs.qs}\", value: \"q=${item.text}\"}\n"
                                   "  b: {op: echo, foreach: [1, 2, \"${inputs.any_in}\"], value: \"${item}\"}\n"
                                   "  c: {op: echo, foreach: \"${steps.a.output}\", value: \"${item}\"}\n");
    assert_int_equal(loom_workflow_step(wf, "a")->foreach->kind, LOOM_VALUE_STRING);
    assert_int_equal(loom_workflow_step(wf, "b")->foreach->kind, LOOM_VALUE_SEQ);
    assert_int_equal(loom_workflow_step(wf, "c")->n_deps, 1);
    loom_workflow_destroy(&wf);
    expect_error("version: 1\nname: x\nsteps:\n  a: {op: echo, foreach: \"${item}\", value: 1}\n",
                 "'item' is only defined in a step with foreach:");
}

static void garbage_never_crashes(void **state)
{
    (void)state;
    /* Mutations of a real workflow: every outcome must be a clean result or
     * a located error list (ASan/UBSan builds check memory). */
    FILE *f = fopen("examples/research-fanout.yaml", "rb");
    assert_non_null(f);
    char src[8192];
    size_t n = fread(src, 1, sizeof src, f);
    fclose(f);
    uint32_t seed = 12345;
    static const char noise[] = "${}[]{}:-#&*!|>'\"\n\t ?,%@`\\0x";
    int failed = 0;
    for (int iter = 0; iter < 400; iter++) {
        char buf[8192];
        memcpy(buf, src, n);
        size_t len = n;
        for (int k = 0; k < 1 + iter % 8; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = (seed >> 8) % len;
            seed = seed * 1103515245u + 12345u;
            switch (seed % 3) {
            case 0: buf[pos] = noise[(seed >> 8) % (sizeof noise - 1)]; break;
            case 1: len = pos + 1; break;
            default: buf[pos] = (char)(seed >> 16); break;
            }
        }
        loom_diags_t d = LOOM_DIAGS_INIT;
        loom_workflow_t *wf = NULL;
        int rc = loom_workflow_parse("fuzz.yaml", buf, len, &wf, &d);
        if (rc) {
            assert_null(wf);
            assert_true(d.len > 0);
            failed++;
        } else {
            assert_non_null(wf->graph.order);
        }
        loom_workflow_destroy(&wf);
        loom_diags_free(&d);
    }
    assert_true(failed > 100); /* the mutations do break things */
}

static void load_reports_missing_file(void **state)
{
    (void)state;
    loom_diags_t d = LOOM_DIAGS_INIT;
    loom_workflow_t *wf = NULL;
    assert_int_equal(loom_workflow_load("no/such/file.yaml", &wf, &d), LOOM_EIO);
    assert_int_equal(d.len, 1);
    assert_string_equal(d.items[0].file, "no/such/file.yaml");
    assert_non_null(strstr(d.items[0].msg, "No such file"));
    loom_diags_free(&d);
}

static void diags_are_bounded(void **state)
{
    (void)state;
    loom_buf_t b = LOOM_BUF_INIT;
    loom_buf_puts(&b, "version: 1\nname: x\nsteps:\n");
    for (int i = 0; i < 300; i++)
        loom_buf_printf(&b, "  s%d: {op: bogus}\n", i);
    loom_diags_t d = LOOM_DIAGS_INIT;
    loom_workflow_t *wf = NULL;
    assert_int_equal(loom_workflow_parse("t.yaml", b.data, b.len, &wf, &d), LOOM_EPARSE);
    assert_int_equal(d.len, LOOM_DIAGS_MAX);
    assert_int_equal(d.dropped, 300 - LOOM_DIAGS_MAX);
    for (size_t i = 1; i < d.len; i++)
        assert_true(d.items[i - 1].line <= d.items[i].line);
    loom_diags_free(&d);
    loom_buf_free(&b);
}

static void names_and_distance(void **state)
{
    (void)state;
    for (int k = 0; k < LOOM_OP__COUNT; k++)
        assert_int_equal(loom_op_kind_parse(loom_op_kind_name((loom_op_kind_t)k)), k);
    assert_int_equal(loom_op_kind_parse("llm"), -1);
    assert_string_equal(loom_op_kind_name(LOOM_OP__COUNT), "?");
    assert_int_equal(loom_edit_distance("retreive", "retrieve"), 2);
    assert_int_equal(loom_edit_distance("", "abc"), 3);
    assert_int_equal(loom_edit_distance("same", "same"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(support_rag_example_parses_into_dag),
        cmocka_unit_test(react_example_has_bounded_loop),
        cmocka_unit_test(fanout_example_has_foreach),
        cmocka_unit_test(scalars_follow_yaml_core_schema),
        cmocka_unit_test(yaml_level_errors),
        cmocka_unit_test(errors_are_collected_located_and_sorted),
        cmocka_unit_test(step_validation_messages),
        cmocka_unit_test(loop_scoping_and_hoisting),
        cmocka_unit_test(foreach_and_item),
        cmocka_unit_test(garbage_never_crashes),
        cmocka_unit_test(load_reports_missing_file),
        cmocka_unit_test(diags_are_bounded),
        cmocka_unit_test(names_and_distance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

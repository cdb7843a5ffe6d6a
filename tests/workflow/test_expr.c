/* Unit tests for planner/expr.c: references, templates (parse + render),
 * the when:/until: expression language (parse errors with offsets,
 * evaluation through a resolver), and loom_value_render. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner/expr.h"
#include "planner/workflow.h"

/* A resolver over one JSON document:
 *   {"inputs": {...}, "steps": {id: output}, "prev": {id: output}, "iteration": n, "item": v} */
static json_t *resolve(void *ctx, const loom_ref_t *r, loom_err_t *err)
{
    json_t *env = ctx, *v = NULL;
    switch (r->kind) {
    case LOOM_REF_INPUT: v = json_object_get(json_object_get(env, "inputs"), r->name); break;
    case LOOM_REF_STEP: v = json_object_get(json_object_get(env, "steps"), r->name); break;
    case LOOM_REF_LOOP_PREV: v = json_object_get(json_object_get(env, "prev"), r->name); break;
    case LOOM_REF_LOOP_ITERATION: v = json_object_get(env, "iteration"); break;
    case LOOM_REF_ITEM: v = json_object_get(env, "item"); break;
    case LOOM_REF_SECRET: v = json_object_get(json_object_get(env, "secrets"), r->name); break;
    }
    if (!v) {
        loom_err_set(err, LOOM_ENOTFOUND, "test resolver: '%s' not set", r->name ? r->name : "?");
        return NULL;
    }
    return json_incref(v);
}

static json_t *env_new(void)
{
    json_error_t je;
    json_t *env = json_loads("{\"inputs\": {\"q\": \"why?\", \"k\": 3, \"tags\": [\"a\", \"b\"]},"
                             " \"steps\": {\"cls\": {\"label\": \"bug\", \"score\": 0.75, \"hits\": [{\"id\": 7}]},"
                             "            \"txt\": \"a bug report\", \"n\": 0},"
                             " \"prev\": {\"think\": {\"action\": \"search\"}},"
                             " \"iteration\": 2, \"item\": {\"text\": \"sub-q\"}}",
                             0, &je);
    assert_non_null(env);
    return env;
}

/* ---- references & templates ------------------------------------------------------ */

static void template_refs_are_parsed(void **state)
{
    (void)state;
    loom_arena_t *a = loom_arena_new(0);
    loom_template_t *t = NULL;
    loom_expr_error_t pe;
    const char *s = "Q: ${inputs.q} / ${ steps.cls.output.hits[0].id } / ${loop.prev.think.output} $${x}";
    assert_int_equal(loom_template_parse(a, s, strlen(s), &t, &pe), 0);
    assert_int_equal(loom_template_n_refs(t), 3);
    const loom_ref_t *r0 = loom_template_ref(t, 0), *r1 = loom_template_ref(t, 1), *r2 = loom_template_ref(t, 2);
    assert_int_equal(r0->kind, LOOM_REF_INPUT);
    assert_string_equal(r0->name, "q");
    assert_int_equal(r0->off, 3);
    assert_int_equal(r0->name_off, 12);
    assert_int_equal(r1->kind, LOOM_REF_STEP);
    assert_string_equal(r1->name, "cls");
    assert_int_equal(r1->n_path, 3);
    assert_string_equal(r1->path[0].key, "hits");
    assert_null(r1->path[1].key);
    assert_int_equal(r1->path[1].index, 0);
    assert_string_equal(r1->path[2].key, "id");
    char buf[128];
    loom_ref_format(r1, buf, sizeof buf);
    assert_string_equal(buf, "steps.cls.output.hits[0].id");
    assert_int_equal(r2->kind, LOOM_REF_LOOP_PREV);
    assert_string_equal(r2->name, "think");
    assert_null(loom_template_single_ref(t));
    /* ${secrets.NAME}: a name and nothing after it */
    assert_int_equal(loom_template_parse(a, "Bearer ${secrets.tok}", 21, &t, &pe), 0);
    assert_int_equal(loom_template_ref(t, 0)->kind, LOOM_REF_SECRET);
    assert_string_equal(loom_template_ref(t, 0)->name, "tok");
    loom_ref_format(loom_template_ref(t, 0), buf, sizeof buf);
    assert_string_equal(buf, "secrets.tok");
    /* no ${ at all: no template */
    assert_int_equal(loom_template_parse(a, "plain $ text {x}", 16, &t, &pe), 0);
    assert_null(t);
    loom_arena_destroy(&a);
}

static void template_parse_errors_have_offsets(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t off;
        const char *msg;
    } cases[] = {
        {"x ${inputs.q", 2, "unterminated '${'"},
        {"${}", 2, "empty reference"},
        {"${foo.bar}", 2, "unknown reference 'foo'"},
        {"${steps.a}", 9, "expected '.output' after the step id"},
        {"${steps.a.outputs}", 10, "(did you mean 'output'?)"},
        {"${inputs}", 8, "expected an input name"},
        {"${steps.a.output.x[}", 19, "expected an index"},
        {"${steps.a.output.x[1}", 20, "expected ']'"},
        {"${steps.a.output..x}", 17, "unexpected '.'"},
        {"${loop.iter}", 7, "expected loop.iteration"},
        {"${inputs.a b}", 10, "unexpected ' ' in reference"},
        {"${secrets}", 9, "expected ${secrets.<name>}"},
        {"${secrets.a.b}", 12, "no path after it"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        loom_arena_t *a = loom_arena_new(0);
        loom_template_t *t = NULL;
        loom_expr_error_t pe = {0};
        int rc = loom_template_parse(a, cases[i].text, strlen(cases[i].text), &t, &pe);
        if (rc != LOOM_EPARSE || pe.off != cases[i].off || !strstr(pe.msg, cases[i].msg))
            fail_msg("%s: rc=%d off=%zu msg=%s", cases[i].text, rc, pe.off, pe.msg);
        loom_arena_destroy(&a);
    }
}

static void templates_render(void **state)
{
    (void)state;
    json_t *env = env_new();
    loom_arena_t *a = loom_arena_new(0);
    loom_err_t err;
    struct {
        const char *text, *want; /* want: JSON of the result */
    } cases[] = {
        {"${inputs.k}", "3"}, /* a single reference keeps its type */
        {"${steps.cls.output}", "{\"label\": \"bug\", \"score\": 0.75, \"hits\": [{\"id\": 7}]}"},
        {"${steps.cls.output.hits[0]}", "{\"id\": 7}"},
        {"${steps.cls.output.hits.0.id}", "7"},
        {"k=${inputs.k} q=${inputs.q}", "\"k=3 q=why?\""},
        {"tags ${inputs.tags}", "\"tags [\\\"a\\\",\\\"b\\\"]\""}, /* non-strings splice as JSON */
        {"it=${loop.iteration} item=${item.text}", "\"it=2 item=sub-q\""},
        {"$${literal} ${inputs.k}", "\"${literal} 3\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        loom_template_t *t = NULL;
        loom_expr_error_t pe;
        assert_int_equal(loom_template_parse(a, cases[i].text, strlen(cases[i].text), &t, &pe), 0);
        json_t *out = NULL, *want = json_loads(cases[i].want, JSON_DECODE_ANY, NULL);
        loom_err_clear(&err);
        assert_int_equal(loom_template_render(t, resolve, env, &out, &err), 0);
        if (!json_equal(out, want)) {
            char *s = json_dumps(out, JSON_ENCODE_ANY);
            fail_msg("%s rendered %s, want %s", cases[i].text, s, cases[i].want);
        }
        json_decref(out);
        json_decref(want);
    }
    /* a missing field or value is an error when rendering */
    loom_template_t *t = NULL;
    loom_expr_error_t pe;
    json_t *out = NULL;
    assert_int_equal(loom_template_parse(a, "x ${steps.cls.output.nope}", 26, &t, &pe), 0);
    loom_err_clear(&err);
    assert_int_equal(loom_template_render(t, resolve, env, &out, &err), LOOM_ENOTFOUND);
    assert_string_equal(err.msg, "steps.cls.output.nope: no such field in the value");
    assert_null(out);
    assert_int_equal(loom_template_parse(a, "${steps.gone.output}", 20, &t, &pe), 0);
    loom_err_clear(&err);
    assert_int_equal(loom_template_render(t, resolve, env, &out, &err), LOOM_ENOTFOUND);
    assert_string_equal(err.msg, "test resolver: 'gone' not set");
    loom_arena_destroy(&a);
    json_decref(env);
}

/* ---- expressions -------------------------------------------------------------------- */

static int eval_str(json_t *env, const char *text, json_t **out, loom_err_t *err)
{
    loom_arena_t *a = loom_arena_new(0);
    loom_expr_t *e = NULL;
    loom_expr_error_t pe = {0};
    int rc = loom_expr_parse(a, text, strlen(text), &e, &pe);
    if (rc)
        fail_msg("parse %s: %s at %zu", text, pe.msg, pe.off);
    rc = loom_expr_eval(e, resolve, env, out, err);
    loom_arena_destroy(&a);
    return rc;
}

static void expressions_evaluate(void **state)
{
    (void)state;
    json_t *env = env_new();
    static const struct {
        const char *text;
        int truth;
    } cases[] = {
        {"true", 1},
        {"false", 0},
        {"${steps.cls.output.label} == \"bug\"", 1},
        {"steps.cls.output.label == 'bug'", 1}, /* bare references */
        {"${steps.cls.output.label} != 'bug'", 0},
        {"${steps.cls.output.score} > 0.5 && ${inputs.k} >= 3", 1},
        {"${steps.cls.output.score} < 0.5 || ${inputs.k} <= 2", 0},
        {"!(${inputs.k} == 3)", 0},
        {"not ${steps.n.output}", 1},
        {"${inputs.k} == 3.0", 1},
        {"'abc' < 'abd'", 1},
        {"${steps.txt.output} contains 'bug'", 1},
        {"${inputs.tags} contains 'b'", 1},
        {"${inputs.tags} contains 'z'", 0},
        {"${steps.cls.output} contains 'score'", 1},
        {"${steps.cls.output.missing} contains 'x'", 0}, /* missing path is null */
        {"${steps.cls.output.missing} == null", 1},
        {"${steps.cls.output.missing}", 0},
        {"${loop.iteration} >= 2 and ${loop.prev.think.output.action} == \"search\"", 1},
        {"${item.text} == 'sub-q'", 1},
        {"-1 < 0", 1},
        {"false || true && false", 0}, /* && binds tighter */
        {"(false || true) && true", 1},
        {"${inputs.q}", 1},
        {"''", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        loom_arena_t *a = loom_arena_new(0);
        loom_expr_t *e = NULL;
        loom_expr_error_t pe = {0};
        loom_err_t err;
        loom_err_clear(&err);
        if (loom_expr_parse(a, cases[i].text, strlen(cases[i].text), &e, &pe))
            fail_msg("parse %s: %s at %zu", cases[i].text, pe.msg, pe.off);
        bool truth = false;
        if (loom_expr_eval_bool(e, resolve, env, &truth, &err))
            fail_msg("eval %s: %s", cases[i].text, err.msg);
        if (truth != (cases[i].truth != 0))
            fail_msg("%s: got %d, want %d", cases[i].text, truth, cases[i].truth);
        loom_arena_destroy(&a);
    }
    json_decref(env);
}

static void expression_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t off;
        const char *msg;
    } cases[] = {
        {"", 0, "empty expression"},
        {"a = 1", 0, "unknown reference 'a'"},
        {"${inputs.x} = 1", 12, "use '=='"},
        {"${inputs.x} == ", 15, "expression ends too early"},
        {"(${inputs.x} == 1", 17, "expected ')'"},
        {"1 == 1 == 1", 7, "comparisons do not chain"},
        {"'abc", 0, "unterminated string"},
        {"1 2", 2, "unexpected text after the expression"},
        {"${inputs.x} & 1", 12, "use '&&'"},
        {"@", 0, "unexpected character '@'"},
        {"1.2.3 > 1", 0, "bad number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        loom_arena_t *a = loom_arena_new(0);
        loom_expr_t *e = NULL;
        loom_expr_error_t pe = {0};
        int rc = loom_expr_parse(a, cases[i].text, strlen(cases[i].text), &e, &pe);
        if (rc != LOOM_EPARSE || pe.off != cases[i].off || !strstr(pe.msg, cases[i].msg))
            fail_msg("'%s': rc=%d off=%zu msg=%s", cases[i].text, rc, pe.off, pe.msg);
        loom_arena_destroy(&a);
    }
    /* nesting is bounded */
    char deep[300];
    memset(deep, '(', 200);
    strcpy(deep + 200, "1");
    loom_arena_t *a = loom_arena_new(0);
    loom_expr_t *e = NULL;
    loom_expr_error_t pe = {0};
    assert_int_equal(loom_expr_parse(a, deep, strlen(deep), &e, &pe), LOOM_EPARSE);
    assert_non_null(strstr(pe.msg, "nested too deeply"));
    memset(deep, '!', 200);
    assert_int_equal(loom_expr_parse(a, deep, strlen(deep), &e, &pe), LOOM_EPARSE);
    loom_arena_destroy(&a);
    /* type errors at evaluation */
    json_t *env = env_new(), *out = NULL;
    loom_err_t err;
    loom_err_clear(&err);
    assert_int_equal(eval_str(env, "${inputs.q} < 3", &out, &err), LOOM_EINVAL);
    assert_non_null(strstr(err.msg, "cannot apply '<' to string and number"));
    loom_err_clear(&err);
    assert_int_equal(eval_str(env, "3 contains 1", &out, &err), LOOM_EINVAL);
    loom_err_clear(&err);
    assert_int_equal(eval_str(env, "${steps.gone.output} == 1", &out, &err), LOOM_ENOTFOUND);
    json_decref(env);
}

static void value_render_uses_templates(void **state)
{
    (void)state;
    const char *text = "version: 1\nname: r\ninputs: {q: string, k: int}\nsteps:\n"
                       "  s:\n    op: tool.http\n    method: POST\n    url: http://h/${inputs.q}\n"
                       "    body: {question: \"${inputs.q}\", k: \"${inputs.k}\", list: [1, \"${inputs.k}x\"], lit: 5}\n";
    loom_diags_t d = LOOM_DIAGS_INIT;
    loom_workflow_t *wf = NULL;
    assert_int_equal(loom_workflow_parse("r.yaml", text, strlen(text), &wf, &d), 0);
    json_t *env = env_new(), *out = NULL;
    loom_err_t err;
    loom_err_clear(&err);
    assert_int_equal(loom_value_render(loom_workflow_step(wf, "s")->node, resolve, env, &out, &err), 0);
    json_t *want = json_loads("{\"op\": \"tool.http\", \"method\": \"POST\", \"url\": \"http://h/why?\","
                              " \"body\": {\"question\": \"why?\", \"k\": 3, \"list\": [1, \"3x\"], \"lit\": 5}}",
                              0, NULL);
    assert_true(json_equal(out, want));
    json_decref(out);
    json_decref(want);
    json_decref(env);
    loom_workflow_destroy(&wf);
    loom_diags_free(&d);
}

static void truthiness(void **state)
{
    (void)state;
    json_t *vals[] = {json_null(), json_false(), json_integer(0), json_real(0.0), json_string(""), json_array(),
                      json_object(), json_true(), json_integer(2), json_string("x")};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        assert_int_equal(loom_json_truthy(vals[i]), i >= 7);
        json_decref(vals[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(template_refs_are_parsed),
        cmocka_unit_test(template_parse_errors_have_offsets),
        cmocka_unit_test(templates_render),
        cmocka_unit_test(expressions_evaluate),
        cmocka_unit_test(expression_errors),
        cmocka_unit_test(value_render_uses_templates),
        cmocka_unit_test(truthiness),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

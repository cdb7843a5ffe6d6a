/* expr.h — workflow references, string templates and the small expression
 * language of `when:` / `until:` (see docs/WORKFLOWS.md for the grammar).
 *
 * References:  ${inputs.x}  ${steps.<id>.output}  ${steps.<id>.output.a.b[2]}
 *              ${loop.iteration}  ${loop.prev.<id>.output...}  ${item...}
 * Templates:   any string; each ${...} is replaced by the referenced value.
 *              A string that is exactly one ${...} renders to that JSON value
 *              itself (keeps its type); otherwise values are spliced in as
 *              text (strings as-is, other values as compact JSON).
 *              "$${" is a literal "${".
 * Expressions: == != < <= > >= && || ! ( ) contains, string ('..' or "..")
 *              number, true/false/null literals, and references written as
 *              ${...} or bare (steps.x.output.ok).
 *
 * Parsing happens once at load time (planner/workflow.c) into an arena; all
 * parsed objects are read-only afterwards and owned by that arena.
 * Rendering and evaluation take a resolver callback that returns jansson
 * values, so the orchestrator decides where outputs come from. */
#ifndef LOOM_PLANNER_EXPR_H
#define LOOM_PLANNER_EXPR_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/arena.h"
#include "common/err.h"

typedef enum {
    LOOM_REF_INPUT = 0,     /* inputs.<name> */
    LOOM_REF_STEP,          /* steps.<id>.output */
    LOOM_REF_LOOP_ITERATION,/* loop.iteration (0-based) */
    LOOM_REF_LOOP_PREV,     /* loop.prev.<id>.output: previous iteration's output, null on iteration 0 */
    LOOM_REF_ITEM,          /* item: the current foreach element */
} loom_ref_kind_t;

/* One step of a JSON path: .key or [index]. */
typedef struct loom_path_seg {
    const char *key; /* NULL for an index segment */
    size_t index;
} loom_path_seg_t;

typedef struct loom_ref {
    loom_ref_kind_t kind;
    const char *name;     /* input name or step id; NULL for iteration/item */
    size_t name_off;      /* byte offset of name (or of the reference) in the source text */
    const loom_path_seg_t *path; /* applied to the root value the resolver returns */
    size_t n_path;
    size_t off, len;      /* the whole reference (with ${ } when written so) in the source */
} loom_ref_t;

typedef struct loom_template loom_template_t; /* read-only after parse */
typedef struct loom_expr loom_expr_t;         /* read-only after parse */

/* Where a parse error is: byte offset into the parsed text. */
typedef struct loom_expr_error {
    size_t off;
    char msg[200];
} loom_expr_error_t;

/* Returns the value of a reference's root (the path is applied by the
 * caller of the resolver): for LOOM_REF_INPUT the input's value, for
 * LOOM_REF_STEP / LOOM_REF_LOOP_PREV the step's output, for
 * LOOM_REF_LOOP_ITERATION an integer, for LOOM_REF_ITEM the element.
 * Returns a NEW reference (the caller json_decref()s it), or NULL with err
 * set when the value is not available. */
typedef json_t *(*loom_expr_resolver_fn)(void *ctx, const loom_ref_t *ref, loom_err_t *err);

/* ---- templates --------------------------------------------------------- */

/* Parses text[0..len). On success *out is allocated in arena (NULL when
 * the text holds no reference, so callers can treat it as a literal).
 * Returns 0, LOOM_EPARSE (with *perr filled) or LOOM_ENOMEM. */
int loom_template_parse(loom_arena_t *arena, const char *text, size_t len,
                        loom_template_t **out, loom_expr_error_t *perr);
size_t loom_template_n_refs(const loom_template_t *t);
const loom_ref_t *loom_template_ref(const loom_template_t *t, size_t i);
/* The reference when the template is exactly one ${...}; else NULL. */
const loom_ref_t *loom_template_single_ref(const loom_template_t *t);

/* Renders into a NEW json_t (caller json_decref()s): the referenced value
 * itself for a single-reference template, else a JSON string. Returns 0 or
 * a negative LOOM_E* with err filled (unresolvable reference, missing path). */
int loom_template_render(const loom_template_t *t, loom_expr_resolver_fn resolve, void *ctx,
                         json_t **out, loom_err_t *err);

/* ---- expressions ------------------------------------------------------- */

int loom_expr_parse(loom_arena_t *arena, const char *text, size_t len,
                    loom_expr_t **out, loom_expr_error_t *perr);
size_t loom_expr_n_refs(const loom_expr_t *e);
const loom_ref_t *loom_expr_ref(const loom_expr_t *e, size_t i);

/* Evaluates to a NEW json_t. A path that does not exist in a resolved value
 * yields null (so `when: ${steps.x.output.flag}` is simply false). Type
 * errors (e.g. "a" < 1) return LOOM_EINVAL with err set. */
int loom_expr_eval(const loom_expr_t *e, loom_expr_resolver_fn resolve, void *ctx,
                   json_t **out, loom_err_t *err);
/* Evaluates and applies truthiness: false for null, false, 0, "", [] and {}. */
int loom_expr_eval_bool(const loom_expr_t *e, loom_expr_resolver_fn resolve, void *ctx,
                        bool *truth, loom_err_t *err);

/* ---- helpers ----------------------------------------------------------- */

/* Follows path inside root. Returns a BORROWED pointer into root or NULL
 * when a key/index is missing or a segment does not fit the value's type. */
json_t *loom_ref_apply_path(json_t *root, const loom_path_seg_t *path, size_t n_path);
/* Writes the canonical text of ref ("steps.a.output.x[0]") into buf
 * (snprintf semantics). */
size_t loom_ref_format(const loom_ref_t *ref, char *buf, size_t n);
bool loom_json_truthy(const json_t *v);

#endif

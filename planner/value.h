/* value.h — the generic YAML value tree (loom_value_t) that workflows are
 * parsed into, built from libyaml events in one arena, and a small list
 * of diagnostics (every error of a load, not just the first).
 *
 * The tree is read-only for callers; it keeps every node's line and
 * column so validators can point at the exact spot, and the orchestrator
 * can render op fields (templates included) straight to JSON from it. */
#ifndef LOOM_PLANNER_VALUE_H
#define LOOM_PLANNER_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/arena.h"
#include "common/err.h"
#include "planner/expr.h"

/* ---- diagnostics list ------------------------------------------------- */

#define LOOM_DIAGS_MAX 100 /* later errors are counted in `dropped` */

typedef struct loom_diags {
    loom_err_t *items; /* owned; sorted by (line, col) after a load */
    size_t len, cap;
    size_t dropped;    /* errors not stored because LOOM_DIAGS_MAX was reached */
} loom_diags_t;

#define LOOM_DIAGS_INIT {NULL, 0, 0, 0}

void loom_diags_init(loom_diags_t *d);
void loom_diags_free(loom_diags_t *d); /* reusable afterwards */
/* Appends a cleared record and returns it (NULL when full or OOM: the
 * error is then counted in `dropped`). */
loom_err_t *loom_diags_add(loom_diags_t *d);
/* Stable sort by file order (line, col). */
void loom_diags_sort(loom_diags_t *d);

/* ---- generic value tree (YAML nodes) ----------------------------------- */

typedef enum {
    LOOM_VALUE_NULL = 0,
    LOOM_VALUE_BOOL,
    LOOM_VALUE_INT,
    LOOM_VALUE_FLOAT,
    LOOM_VALUE_STRING,
    LOOM_VALUE_SEQ,
    LOOM_VALUE_MAP,
} loom_value_kind_t;

typedef struct loom_value loom_value_t;

typedef struct loom_value_entry {
    const char *key;
    int line, col; /* of the key */
    const loom_value_t *value;
} loom_value_entry_t;

/* Plain YAML scalars are typed by the YAML 1.2 core schema (null, ~, true,
 * false, integers, floats); quoted scalars are strings. */
struct loom_value {
    loom_value_kind_t kind;
    int line, col;      /* 1-based position of the node (its quote, if any) */
    const char *str;    /* scalars: the text as written (decoded); NULL otherwise */
    size_t str_len;
    bool b;             /* LOOM_VALUE_BOOL */
    int64_t i;          /* LOOM_VALUE_INT */
    double f;           /* LOOM_VALUE_FLOAT (and INT, converted) */
    size_t len;         /* SEQ: items, MAP: entries */
    const loom_value_t *const *items;  /* SEQ */
    const loom_value_entry_t *entries; /* MAP, in file order, keys unique */
    /* STRING containing ${...}: the parsed template, else NULL. */
    const loom_template_t *tpl;
    /* Column of str[0] when a byte offset into str maps 1:1 to a column
     * on `line` (single-line scalar without escapes); 0 otherwise. */
    int text_col;
};

const char *loom_value_kind_name(loom_value_kind_t k);
/* MAP lookup; NULL when v is not a map or key is absent. */
const loom_value_t *loom_value_get(const loom_value_t *v, const char *key);
/* Converts to a NEW json_t verbatim (templates are NOT rendered). */
json_t *loom_value_to_json(const loom_value_t *v);
/* Converts to a NEW json_t rendering every templated string through
 * resolve (see expr.h). Returns 0 or a negative LOOM_E* with err set. */
int loom_value_render(const loom_value_t *v, loom_expr_resolver_fn resolve, void *ctx,
                      json_t **out, loom_err_t *err);

/* Parses one YAML document (text[0..len)) into *root, allocated in arena.
 * file names the input in messages. YAML syntax errors, duplicate keys,
 * aliases, non-scalar keys, more than one document and nesting deeper than
 * 64 levels are reported into diags (NULL allowed). Returns 0 (with *root
 * NULL for an empty document), LOOM_EPARSE or LOOM_ENOMEM. A duplicate key
 * keeps the first entry, reports the second and still returns LOOM_EPARSE
 * with *root set, so callers can go on validating to find more errors. */
int loom_value_parse_yaml(loom_arena_t *arena, const char *file, const char *text, size_t len,
                          const loom_value_t **root, loom_diags_t *diags);

#endif

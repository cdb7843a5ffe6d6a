/* wf_check.h — PRIVATE to planner/workflow.c and planner/wf_steps.c: the
 * validation context shared by the two halves of the workflow loader
 * (workflow.c: document sections and entry points; wf_steps.c: steps, op
 * fields, references and the dependency graph). Not for other modules. */
#ifndef LOOM_PLANNER_WF_CHECK_H
#define LOOM_PLANNER_WF_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "common/map.h"
#include "planner/workflow.h"

#define MAX_LOOP_NESTING 8
#define MAX_ITERATIONS 100000
#define MAX_RETRIES 100
#define MAX_FRAMES (MAX_LOOP_NESTING + 4)


typedef struct stepinfo {
    loom_wf_step_t *step;
    loom_wf_graph_t *graph;
    bool op_ok;
} wf_stepinfo_t;

typedef struct depvec {
    loom_wf_dep_t *v;
    size_t n, cap;
} wf_depvec_t;

/* A scope being validated: the step whose fields are read (NULL for the
 * workflow's outputs and for a loop's `until:`) in its graph. */
typedef struct frame {
    loom_wf_step_t *step;
    loom_wf_graph_t *graph;
    wf_depvec_t deps;
    bool foreach;      /* the step has foreach: ${item} is defined */
    bool in_foreach;   /* validating the foreach field itself */
} wf_frame_t;

typedef struct ctx {
    loom_workflow_t *wf;
    loom_arena_t *a;
    loom_diags_t *d;
    const char *file;
    int errors;
    bool check_files;
    loom_map_t *ids;         /* step id -> wf_stepinfo_t (borrowed) */
    const char **all_ids;    /* for suggestions */
    size_t n_ids, cap_ids;
    wf_frame_t frames[MAX_FRAMES];
    int nframes;
} wf_ctx_t;

extern const char *const wf_op_names[LOOM_OP__COUNT];

/* Appends an error at line:col with a field path; returns the record (NULL
 * when the list is full) so callers can add a hint. Counts every error. */
loom_err_t *wf_report(wf_ctx_t *C, int line, int col, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
const char *wf_join(wf_ctx_t *C, const char *path, const char *key); /* "path.key" */
const char *wf_idx(wf_ctx_t *C, const char *path, size_t i);         /* "path[i]" */
const char *wf_describe(wf_ctx_t *C, const loom_value_t *v);         /* "string 'x'", "a list" */
void wf_bad_type(wf_ctx_t *C, const loom_value_t *v, const char *field, const char *want);
/* Reports an unknown key with a suggestion; returns the suggestion or NULL. */
const char *wf_unknown_field(wf_ctx_t *C, const loom_value_entry_t *e, const char *path, const char *what,
                             const char *const *known, size_t n);
const char *wf_suggest(const char *word, const char *const *cands, size_t n);
bool wf_is_ident(const char *s);
bool wf_get_string(wf_ctx_t *C, const loom_value_t *v, const char *field, const char **out);
bool wf_get_int(wf_ctx_t *C, const loom_value_t *v, const char *field, int64_t lo, int64_t hi, int64_t *out);
bool wf_get_number(wf_ctx_t *C, const loom_value_t *v, const char *field, double lo, double hi, double *out);
int wf_get_enum(wf_ctx_t *C, const loom_value_t *v, const char *field, const char *const *words, const char *what);

/* wf_steps.c: pass 1 (ids and ops, recursing into loop bodies) and
 * passes 2+3 (fields, references, order) over one graph. */
void wf_collect_graph(wf_ctx_t *C, const loom_value_t *map, const char *prefix, loom_wf_graph_t *g,
                      const loom_wf_step_t *owner, int nest);
void wf_check_graph(wf_ctx_t *C, loom_wf_graph_t *g, const char *prefix);
/* Checks every template inside v against the current scope (outputs use it). */
void wf_check_templates(wf_ctx_t *C, const loom_value_t *v, const char *field);

#endif

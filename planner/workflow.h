/* workflow.h — Loom workflow YAML (version 1): parse, validate, and expose
 * the workflow as a read-only tree (see docs/WORKFLOWS.md for the format).
 *
 * A parsed workflow lives in one arena. Its structs are transparent and
 * READ-ONLY for callers (like PostgreSQL parse nodes): walk them freely,
 * never modify or free them; everything is released by
 * loom_workflow_destroy(). Loading collects *all* errors it finds into a
 * loom_diags_t, each with file, line, column, field path and message, e.g.
 *   support.yaml:14:9: steps.answer.needs[1]: unknown step 'retreive' (did you mean 'retrieve'?)
 */
#ifndef LOOM_PLANNER_WORKFLOW_H
#define LOOM_PLANNER_WORKFLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/arena.h"
#include "common/err.h"
#include "common/sha.h"
#include "planner/expr.h"
#include "planner/value.h"

/* ---- op kinds ----------------------------------------------------------- */

typedef enum {
    LOOM_OP_LLM_GENERATE = 0,
    LOOM_OP_LLM_PREFILL,   /* granular: normally produced by the planner */
    LOOM_OP_LLM_DECODE,    /* granular: normally produced by the planner */
    LOOM_OP_EMBED,
    LOOM_OP_VECTOR_SEARCH,
    LOOM_OP_TOOL_EXEC,
    LOOM_OP_TOOL_HTTP,
    LOOM_OP_COMPUTE,
    LOOM_OP_NOOP,
    LOOM_OP_SLEEP,
    LOOM_OP_ECHO,
    LOOM_OP_LOOP,
    LOOM_OP_TOOL_MCP,
    LOOM_OP__COUNT
} loom_op_kind_t;

/* "llm.generate", ...; "?" when out of range. Static storage. */
const char *loom_op_kind_name(loom_op_kind_t op);
/* Returns the kind or -1 when unknown. */
int loom_op_kind_parse(const char *name);

/* ---- workflow ------------------------------------------------------------ */

typedef enum {
    LOOM_WF_TYPE_ANY = 0,
    LOOM_WF_TYPE_STRING,
    LOOM_WF_TYPE_INT,
    LOOM_WF_TYPE_NUMBER,
    LOOM_WF_TYPE_BOOL,
    LOOM_WF_TYPE_LIST,
    LOOM_WF_TYPE_OBJECT,
} loom_wf_type_t;

const char *loom_wf_type_name(loom_wf_type_t t);

typedef enum {
    LOOM_WF_OBJECTIVE_COST = 0,
    LOOM_WF_OBJECTIVE_LATENCY,
} loom_wf_objective_t;

typedef struct loom_wf_sla {
    bool set;                 /* false when the file has no `sla:` */
    int64_t latency_ms;       /* end-to-end deadline */
    double percentile;        /* default 95 */
    loom_wf_objective_t objective; /* default cost */
} loom_wf_sla_t;

typedef struct loom_wf_input {
    const char *name;
    loom_wf_type_t type;
    const loom_value_t *default_value; /* NULL when none */
    bool required;            /* true unless a default is given or required: false */
    const char *description;  /* NULL when none */
    bool secret;              /* secret: true — never stored or shown (orchestrator/secret_inputs.h) */
    int line, col;
} loom_wf_input_t;

typedef struct loom_wf_output {
    const char *name;
    const loom_value_t *value; /* usually a template such as ${steps.x.output} */
    int line, col;
} loom_wf_output_t;

typedef struct loom_wf_model {
    const char *name, *path, *arch, *dtype;
    /* An OpenAI-compatible endpoint instead of (or besides) a file: base
     * URL, the server's model name (default: name), the secret holding its
     * API key; limits (0 / -1 when not given). */
    const char *endpoint, *remote_model, *api_key_secret;
    int64_t max_concurrency, timeout_ms, retries;
    int64_t params;           /* estimated from the shape when not given */
    int64_t layers, hidden, heads, kv_heads, head_dim, vocab, context;
    int line, col;
} loom_wf_model_t;

/* An MCP server under resources.tools: {command, args, env, cwd} (stdio) or
 * {url, headers} (Streamable HTTP); node is that mapping, validated. */
typedef struct loom_wf_tool {
    const char *name;
    const loom_value_t *node;
    int line, col;
} loom_wf_tool_t;

typedef struct loom_wf_index {
    const char *name, *path;
    int64_t dim;
    const char *model;        /* embedding model name (in models), or NULL */
    const char *metric;       /* "cosine" (default), "l2" or "dot" */
    int line, col;
} loom_wf_index_t;

/* Planner hints from `expect:`; a field is < 0 when not given. */
typedef struct loom_wf_expect {
    double latency_ms, p95_ms;
    double prompt_tokens, output_tokens;
    double probability;       /* for `when:`: chance the step runs */
    double iterations;        /* loops: expected iterations */
    double items;             /* foreach: expected fan-out */
} loom_wf_expect_t;

typedef struct loom_wf_step loom_wf_step_t;

/* A dependency: the step it points to, and where it was introduced. */
typedef struct loom_wf_dep {
    size_t step;              /* index into the same graph's steps */
    int line, col;
    const char *field;        /* e.g. "steps.answer.needs[1]" or "steps.answer.prompt" */
} loom_wf_dep_t;

/* The steps of the workflow, or of one loop's body. */
typedef struct loom_wf_graph {
    size_t n_steps;
    loom_wf_step_t *steps;    /* in file order; steps[i].index == i */
    const size_t *order;      /* a topological order (indices), stable by file order */
    int n_levels;             /* 1 + the highest step level */
    const loom_wf_step_t *owner; /* the loop step owning this body; NULL at top level */
    const struct loom_map *by_id; /* the workflow's step index (ids are unique across
                                   * bodies): lookups are O(1); NULL = linear search */
} loom_wf_graph_t;

struct loom_wf_step {
    const char *id;
    size_t index;
    loom_op_kind_t op;
    int line, col;            /* of the step's id */
    const loom_value_t *node; /* the step mapping: every field, op-specific ones included */
    const loom_wf_dep_t *deps;/* unique, from needs: and from references */
    size_t n_deps;
    int level;                /* 0 for steps without deps, else 1 + max(dep levels) */
    const loom_expr_t *when;  /* NULL when absent */
    const loom_value_t *foreach; /* NULL, a list literal, or a string of one reference */
    int retries;              /* default 0 */
    int64_t timeout_ms;       /* 0 = none */
    loom_wf_expect_t expect;
    const char *model;        /* llm.* / embed: resource name (in models) */
    const char *index_name;   /* vector.search: resource name (in indexes) */
    /* loop only */
    loom_wf_graph_t *body;
    const loom_expr_t *until; /* NULL: run max_iterations times */
    int max_iterations;
};

typedef struct loom_workflow {
    const char *file;         /* as given to load/parse */
    const char *dir;          /* directory of file ("." when none): base for relative paths */
    const char *name;
    const char *description;  /* NULL when none */
    int version;
    char sha256[LOOM_SHA256_HEX_LEN]; /* of the source bytes */
    loom_wf_sla_t sla;
    size_t n_inputs;
    loom_wf_input_t *inputs;
    loom_wf_graph_t graph;    /* top-level steps */
    size_t n_outputs;
    loom_wf_output_t *outputs;
    size_t n_models;
    loom_wf_model_t *models;
    size_t n_indexes;
    loom_wf_index_t *indexes;
    size_t n_secrets;         /* secrets: names the worker resolves (${secrets.NAME}) */
    const char **secrets;
    size_t n_tools;
    loom_wf_tool_t *tools;
    const loom_value_t *root; /* the whole document */
    struct loom_map *step_index; /* every step, loop bodies included: id -> step */
    loom_arena_t *arena;      /* owns everything above */
} loom_workflow_t;

/* Reads and parses path. Returns 0 with *out set (caller owns; free with
 * loom_workflow_destroy), or LOOM_EIO / LOOM_EPARSE / LOOM_ENOMEM with
 * *out = NULL and every error appended to diags (which may be NULL). */
int loom_workflow_load(const char *path, loom_workflow_t **out, loom_diags_t *diags);
/* Same for text in memory; name is used as the file in messages. */
int loom_workflow_parse(const char *name, const char *text, size_t len,
                        loom_workflow_t **out, loom_diags_t *diags);
/* Safe on NULL and twice; sets *pwf = NULL. */
void loom_workflow_destroy(loom_workflow_t **pwf);

/* Lookups (borrowed pointers, valid until destroy). NULL when absent.
 * loom_wf_graph_find: a step of g itself; loom_workflow_step: a top-level
 * step; loom_workflow_find_step: a step anywhere, loop bodies included.
 * Step lookups are O(1) (a run of a 10,000-step chain does one per step). */
const loom_wf_step_t *loom_wf_graph_find(const loom_wf_graph_t *g, const char *id);
const loom_wf_step_t *loom_workflow_step(const loom_workflow_t *wf, const char *id);
const loom_wf_step_t *loom_workflow_find_step(const loom_workflow_t *wf, const char *id);
const loom_wf_input_t *loom_workflow_input(const loom_workflow_t *wf, const char *name);
const loom_wf_model_t *loom_workflow_model(const loom_workflow_t *wf, const char *name);
const loom_wf_index_t *loom_workflow_index(const loom_workflow_t *wf, const char *name);
const loom_wf_tool_t *loom_workflow_tool(const loom_workflow_t *wf, const char *name);
/* An op-specific field of a step (loom_value_get on step->node). */
const loom_value_t *loom_wf_step_field(const loom_wf_step_t *s, const char *key);

/* Levenshtein distance (bytes), capped at 255; used for suggestions. */
int loom_edit_distance(const char *a, const char *b);

#endif

/* decompose.h — turns a parsed workflow into the granular op graph:
 *   llm.generate  -> <id>.prefill --kv--> <id>.decode
 *                    (KV bytes = 2 x layers x kv_heads x head_dim x
 *                     bytes(dtype) x prompt tokens, from the model's shape)
 *   embed, vector.search, tool.exec, tool.http, compute -> one node each
 *   noop/sleep/echo -> a noop node (fixed latency)
 *   loop          -> <id>.begin, its body's nodes (iterations from
 *                    expect.iterations, bounded by max_iterations), <id>.end
 * Branches (`when:`) give the node its expect.probability (0.5 when not
 * given). Token counts come from expect.prompt_tokens / output_tokens
 * (else max_tokens, else defaults); tool latencies from expect.latency_ms
 * and p95_ms (a lognormal whose median is latency_ms). Every assumption
 * the decomposition had to make is reported as a note. */
#ifndef LOOM_PLANNER_DECOMPOSE_H
#define LOOM_PLANNER_DECOMPOSE_H

#include "common/err.h"
#include "planner/graph.h"
#include "planner/workflow.h"

/* Notes about defaults the decomposition assumed (caller frees with
 * loom_decompose_notes_free). */
typedef struct loom_decompose_notes {
    char **items;
    size_t len;
} loom_decompose_notes_t;

/* Model shape used for sizing (from `resources.models`). */
typedef struct loom_model_shape {
    double params, layers, hidden, heads, kv_heads, head_dim;
    loom_prec_t prec;   /* precision the model computes in */
    double dtype_bytes; /* bytes per weight (0.56 for Q4_0, 1.06 for Q8_0, 2 for bf16) */
    double kv_bytes;    /* bytes per KV-cache element (quantised weights keep an f16 cache) */
} loom_model_shape_t;

/* Builds the graph (caller owns; topo order computed). notes may be NULL. */
int loom_decompose(const loom_workflow_t *wf, loom_graph_t **out, loom_decompose_notes_t *notes,
                   loom_err_t *err);
void loom_decompose_notes_free(loom_decompose_notes_t *n);

/* Fills s from wf's model `name` (resources.models; the workflow validator
 * requires layers, hidden and heads there, so no model file is read);
 * returns 0, or LOOM_ENOTFOUND. Defaults are noted when notes is not NULL. */
int loom_decompose_model(const loom_workflow_t *wf, const char *name, loom_model_shape_t *s,
                         loom_decompose_notes_t *notes);

#endif

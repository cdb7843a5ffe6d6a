/* from_plan.h — the lowering's input (lower.h) from the planner's output:
 * the parsed workflow (names, SLA, where each step is in the file), its
 * granular graph, the cost table (device names, predicted latency and cost
 * per op and per transfer) and the placement. */
#ifndef LOOM_MLIR_FROM_PLAN_H
#define LOOM_MLIR_FROM_PLAN_H

#include "common/arena.h"
#include "common/err.h"
#include "mlir-lowering/lower.h"
#include "planner/cost.h"
#include "planner/graph.h"
#include "planner/place.h"
#include "planner/workflow.h"

/* Fills *out (strings and arrays in arena, which must outlive *out). plan
 * may be NULL: nodes are then left unplaced (emit works, annotate-targets
 * reports the first unplaced node). The SLA budget of each op is its
 * predicted latency scaled so that the plan's mean critical path equals
 * the SLA. */
int loom_lower_from_plan(const loom_workflow_t *wf, const loom_graph_t *g, const loom_cost_t *c,
                         const loom_plan_t *plan, loom_arena_t *arena, loom_lower_wf_t *out,
                         loom_err_t *err);

#endif

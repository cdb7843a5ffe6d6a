/* plan_lower.h — loomd's lowering of each planned run: the plan (granular
 * graph + placement + predictions) goes through emit and every pass to the
 * verified per-device module, cached by the plan's content hash so a
 * re-plan that lands on the same placement, or another run of the same
 * workflow on the same fleet, is not lowered twice. */
#ifndef LOOM_MLIR_PLAN_LOWER_H
#define LOOM_MLIR_PLAN_LOWER_H

#include "common/err.h"
#include "planner/cost.h"
#include "planner/graph.h"
#include "planner/place.h"
#include "planner/workflow.h"

#include <stddef.h>

/* Lowers the plan of run `run_id` and writes a one-line summary into
 * summary ("lowered to 3 device functions, 2 send/recv pairs, module
 * 1a2b3c4d5e6f (cached)"). Keeps one MLIR context and the cache for the
 * process; not thread-safe (loomd calls it from its event loop). Returns 0
 * or a negative LOOM_E* with err; callers treat a failure as "not lowered"
 * and carry on. */
int loom_plan_lower(const char *run_id, const loom_workflow_t *wf, const loom_graph_t *g, const loom_cost_t *c,
                    const loom_plan_t *plan, char *summary, size_t n, loom_err_t *err);

/* The module of the plan loom_plan_lower lowered last (borrowed until the
 * next loom_plan_lower call) and where it runs each granular node: *placements
 * (may be NULL) receives a new map node -> device (the caller's; free with
 * loom_map_destroy). loomd dispatches each task to the device its op's
 * function names. *channels (may be NULL) receives its send/recv pairs as
 * a new map "<producer node>\x1f<consumer node>" -> "<channel>\x1f<from
 * device>\x1f<to device>" (loom_lower_channels): how a task's input from
 * another device reaches it. Returns 0, or LOOM_ENOTFOUND when nothing was
 * lowered. */
int loom_plan_last_module(const char **module, struct loom_map **placements, struct loom_map **channels);

/* Verifies a partitioned module given as text (e.g. `loom run --plan
 * FILE.mlir`, a module edited by hand) and returns where it runs each
 * granular node (*placements: node -> device, the caller's) and, when
 * channels is not NULL, its send/recv pairs as loom_plan_last_module's.
 * LOOM_EPARSE / LOOM_EINVAL with MLIR's diagnostic located in filename
 * when it does not verify. */
int loom_plan_module_placements(const char *text, size_t n, const char *filename, struct loom_map **placements,
                                struct loom_map **channels, loom_err_t *err);

/* Locates err (message kept) at the op of module text that runs granular
 * node `node` (loom_lower_locate_node_text): a refusal of a --plan module
 * about one node points into the module. 0 or LOOM_ENOTFOUND. */
int loom_plan_module_locate(const char *text, size_t n, const char *filename, const char *node, loom_err_t *err);

/* The verified module text of a lowered plan by its hash prefix as printed
 * in the summary (borrowed; NULL when unknown). */
const char *loom_plan_lowered_module(const char *hash_prefix);

#endif

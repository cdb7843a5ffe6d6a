/* plan_common.h — shared by `loom plan`, `loom tco` and `loom simulate`:
 * loading a fleet (or a whole catalog as a fleet), and planning one
 * workflow file end to end (parse -> decompose -> cost -> place). */
#ifndef LOOM_CLI_PLAN_COMMON_H
#define LOOM_CLI_PLAN_COMMON_H

#include <stdio.h>

#include <jansson.h>

#include "common/err.h"
#include "planner/catalog.h"
#include "planner/cost.h"
#include "planner/decompose.h"
#include "planner/fleet.h"
#include "planner/graph.h"
#include "planner/place.h"
#include "planner/profile.h"
#include "planner/workflow.h"
#include "planner/workload.h"

/* The default catalog when neither --fleet nor --catalog is given:
 * share/loom/catalog.yaml of the installed tree, or examples/catalog.yaml
 * of the source tree the binary was built in (common/paths.h), wherever the
 * command runs from. */
#define LOOM_DEFAULT_CATALOG_HELP "share/loom/catalog.yaml of the install, or examples/catalog.yaml"
const char *loom_cli_default_catalog(void);

/* Loads the fleet: fleet_path (its catalog: key, or catalog_path when
 * given) or, without a fleet, every class of catalog_path (one rented
 * device each). *cat_out is the catalog to free (may be NULL when the fleet
 * owns it). Returns 0 or a negative LOOM_E*. */
int loom_cli_load_fleet(const char *fleet_path, const char *catalog_path, loom_catalog_t **cat_out,
                        loom_fleet_t **fleet_out, loom_err_t *err);

/* One planned workflow. */
typedef struct loom_cli_planned {
    loom_workflow_t *wf;
    loom_graph_t *g;
    loom_cost_t *cost;
    loom_plan_t *plan;
    loom_place_opts_t opts;
    loom_decompose_notes_t notes;
} loom_cli_planned_t;

/* Parses, decomposes and places path on fleet. sla_ms > 0 overrides the
 * workflow's SLA; percentile > 0 overrides its percentile (0..1). Prints
 * workflow diagnostics to errf. Returns 0 or a negative LOOM_E*. */
int loom_cli_plan_file(const char *path, const loom_fleet_t *fleet, const loom_profile_t *prof,
                       double sla_ms, double percentile, loom_place_method_t method,
                       loom_cli_planned_t *out, FILE *errf, loom_err_t *err);
/* Plans an already-decomposed graph on another fleet with the same options. */
void loom_cli_planned_free(loom_cli_planned_t *p);

/* Prints err in the long form to stderr, prefixed by "loom CMD: ". */
void loom_cli_print_err(const char *cmd, const loom_err_t *err);

/* Loads the workload file path for `loom CMD`. On failure prints why,
 * sets *exit_code (LOOM_EXIT_SYSTEM on I/O errors, else LOOM_EXIT_FAIL) and
 * returns NULL; on success *exit_code is untouched. Caller owns the result
 * (loom_workload_destroy). */
loom_workload_t *loom_cli_load_workload(const char *cmd, const char *path, int *exit_code);

/* Prints j to stdout as indented JSON (reals with 10 digits) and drops the
 * caller's reference to j. */
void loom_cli_print_json(json_t *j);

#endif

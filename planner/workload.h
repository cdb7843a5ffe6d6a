/* workload.h — a workload: workflows with request rates and SLAs, the
 * input of `loom tco` and `loom simulate`.
 *
 * File format (examples/workloads/<name>.yaml):
 *   version: 1
 *   catalog: ../catalog.yaml      # optional, relative to this file
 *   utilization: 0.7              # optional: max busy fraction per device (queueing headroom)
 *   workflows:
 *     - file: ../support-rag.yaml # relative to this file
 *       rate_per_s: 20            # mean arrival rate (Poisson)
 *       sla_ms: 2500              # optional: overrides the workflow's sla.latency_ms
 *       percentile: 95            # optional: overrides sla.percentile */
#ifndef LOOM_PLANNER_WORKLOAD_H
#define LOOM_PLANNER_WORKLOAD_H

#include <stddef.h>

#include "common/err.h"

typedef struct loom_workload_item {
    char *file;        /* resolved path (owned by the workload) */
    double rate_per_s;
    double sla_ms;     /* 0 = the workflow's own */
    double percentile; /* 0 = the workflow's own; else a fraction (0.95) */
    int line;
} loom_workload_item_t;

typedef struct loom_workload {
    char *path;
    char *catalog;     /* resolved path or NULL */
    double utilization;
    loom_workload_item_t *items;
    size_t n;
} loom_workload_t;

/* Caller owns the result (loom_workload_destroy). */
loom_workload_t *loom_workload_load(const char *path, loom_err_t *err);
/* Same from memory; relative paths resolve against name's directory. */
loom_workload_t *loom_workload_parse(const char *name, const char *text, size_t len, loom_err_t *err);
void loom_workload_destroy(loom_workload_t **pw);

#endif

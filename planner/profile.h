/* profile.h — measured calibration: latency and cost of an op on a device
 * class, and of an edge between two classes, as measured on real hardware
 * (a worker's registration or a profile.yaml). The cost model uses a
 * profile entry instead of (or scaled against) its analytic estimate.
 *
 * File format:
 *   version: 1
 *   ops:
 *     - {op: llm.prefill, device: HP, latency_ms: 80, cost_usd: 0.08}
 *     - {op: llm.decode, device: CO, step: answer, latency_ms: 30}  # step optional
 *     - {op: embed, device: L4, scale: 1.3}     # multiply the analytic latency
 *   transfers:
 *     - {edge: kv, from: HP, to: CO, latency_ms: 10, cost_usd: 0.005}
 * Entries with a step beat entries without one. cost_usd absent -> the cost
 * is derived from the latency and the device price. */
#ifndef LOOM_PLANNER_PROFILE_H
#define LOOM_PLANNER_PROFILE_H

#include <stddef.h>

#include "common/err.h"
#include "planner/graph.h"

typedef struct loom_profile loom_profile_t;

/* A measured figure. Negative fields are "not given". */
typedef struct loom_measure {
    double latency_ms;
    double cost_usd;
    double scale;        /* multiplies the analytic latency when latency_ms < 0 */
    double cv;           /* measured coefficient of variation, < 0 = unknown */
} loom_measure_t;

loom_profile_t *loom_profile_load(const char *path, loom_err_t *err);
/* Same from memory; name is used as the file in messages. */
loom_profile_t *loom_profile_parse(const char *name, const char *text, size_t len, loom_err_t *err);
loom_profile_t *loom_profile_new(void);
void loom_profile_destroy(loom_profile_t **pp);

/* step may be NULL (applies to every step). Strings copied. */
int loom_profile_add_op(loom_profile_t *p, loom_gop_t op, const char *device, const char *step,
                        const loom_measure_t *m, loom_err_t *err);
int loom_profile_add_transfer(loom_profile_t *p, loom_gedge_kind_t kind, const char *from,
                              const char *to, const loom_measure_t *m, loom_err_t *err);

/* Lookups return a borrowed pointer or NULL. */
const loom_measure_t *loom_profile_op(const loom_profile_t *p, loom_gop_t op, const char *device,
                                      const char *step);
const loom_measure_t *loom_profile_transfer(const loom_profile_t *p, loom_gedge_kind_t kind,
                                            const char *from, const char *to);
/* Number of entries, for reports. */
int loom_profile_size(const loom_profile_t *p);

struct loom_catalog;
/* Checks that every entry can match something, so a misspelt name is an
 * error rather than an entry silently never used: devices (op entries,
 * transfers' from/to) must be classes of cat, and an op entry with a step
 * must name a step of one of the graphs that has a node of that op.
 * Returns 0, or LOOM_EINVAL with err naming the profile's file, the
 * entry's line and field (ops[i] / transfers[i]). */
int loom_profile_check(const loom_profile_t *p, const struct loom_catalog *cat, const loom_graph_t *const *graphs,
                       size_t n_graphs, loom_err_t *err);

#endif

/* fleet.h — the devices actually present: per catalog class, how many and
 * whether they are owned (sunk cost: only their energy counts) or rented
 * (their hourly price counts).
 *
 * File format (examples/fleets/<name>.yaml):
 *   version: 1
 *   catalog: ../catalog.yaml        # optional, relative to this file
 *   batch: 8                        # optional: concurrent requests per LLM device
 *   devices:
 *     - {class: H100-SXM, count: 2, ownership: rented}
 *     - {class: EPYC-9654, count: 8, ownership: owned}
 *     - {class: L4, count: 4, ownership: rented, hourly_usd: 0.7}   # price override */
#ifndef LOOM_PLANNER_FLEET_H
#define LOOM_PLANNER_FLEET_H

#include <stddef.h>

#include "common/err.h"
#include "planner/catalog.h"

typedef struct loom_fleet_entry {
    int cls;            /* catalog class index */
    int count;          /* devices present, >= 1 */
    int owned;          /* 1 = owned (marginal = energy), 0 = rented */
    double hourly_usd;  /* price per device-hour used for this entry */
} loom_fleet_entry_t;

typedef struct loom_fleet loom_fleet_t;

/* Loads a fleet file. When cat is NULL the file's `catalog:` key is loaded
 * (and owned by the fleet); otherwise cat is borrowed and must outlive the
 * fleet. Caller owns the result. */
loom_fleet_t *loom_fleet_load(const char *path, const loom_catalog_t *cat, loom_err_t *err);
/* Same from memory (a relative catalog: key resolves against name's directory). */
loom_fleet_t *loom_fleet_parse(const char *name, const char *text, size_t len, const loom_catalog_t *cat,
                               loom_err_t *err);
/* An empty fleet over a borrowed catalog. */
loom_fleet_t *loom_fleet_new(const loom_catalog_t *cat);
/* Every class of the catalog, `count` rented devices each (for --catalog). */
loom_fleet_t *loom_fleet_all(const loom_catalog_t *cat, int count);
void loom_fleet_destroy(loom_fleet_t **pf);

/* Adds count devices of class cls; hourly_usd < 0 means the catalog price.
 * Returns the entry index or a negative LOOM_E*. */
int loom_fleet_add(loom_fleet_t *f, int cls, int count, int owned, double hourly_usd, loom_err_t *err);

const loom_catalog_t *loom_fleet_catalog(const loom_fleet_t *f);
size_t loom_fleet_entries(const loom_fleet_t *f);
const loom_fleet_entry_t *loom_fleet_entry(const loom_fleet_t *f, int i); /* borrowed */
int loom_fleet_find(const loom_fleet_t *f, const char *class_name); /* entry or -1 */
size_t loom_fleet_devices(const loom_fleet_t *f); /* total device count */
double loom_fleet_batch(const loom_fleet_t *f);    /* default 8 */
void loom_fleet_set_batch(loom_fleet_t *f, double batch);
/* Marginal $ per device-second of entry i while busy: hourly/3600 when
 * rented, power x energy price when owned. */
double loom_fleet_usd_per_s(const loom_fleet_t *f, int i);

#endif

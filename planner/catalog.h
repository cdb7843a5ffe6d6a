/* catalog.h — the hardware catalog: device classes (memory, bandwidth,
 * dense TFLOP/s per precision, network link, power, purchase and hourly
 * price, each with its source) and the links devices talk over.
 *
 * File format (examples/catalog.yaml):
 *   version: 1
 *   energy_usd_per_kwh: 0.12          # marginal cost of owned hardware
 *   links:
 *     - {name: eth100, gbps: 100, latency_us: 10, usd_per_gb: 0}
 *   devices:
 *     - name: H100-SXM
 *       vendor: NVIDIA
 *       kind: gpu                     # gpu | cpu | npu | accel
 *       mem_gb: 80
 *       mem_bw_gbs: 3350
 *       tflops: {fp32: 67, fp16: 989, fp8: 1979, int8: 1979}
 *       link: eth400
 *       power_w: 700
 *       purchase_usd: 30000
 *       hourly_usd: 3.0
 *       launch_us: 10                 # optional, per-op dispatch overhead
 *       efficiency: {compute: 0.6, memory: 0.8}   # optional, achievable fraction
 *       source: {mem_bw_gbs: "...", tflops: "...", ...}   # one per figure
 *
 * A missing tflops precision means "not supported" (0).
 *
 * A rented model API (an OpenAI-compatible endpoint) is a class of kind
 * `endpoint`, priced per token with a measured latency profile instead of
 * memory, FLOP/s and hourly figures:
 *     - name: api-qwen-7b
 *       vendor: Together
 *       kind: endpoint
 *       serves: [chat]                # workflow model names it can serve
 *       usd_per_mtok_in: 0.30         # per million prompt tokens
 *       usd_per_mtok_out: 0.30        # per million output tokens
 *       ttft_ms: 350                  # time to first token (short prompt)
 *       prefill_tok_per_s: 4000       # prompt tokens/s past the first token
 *       tok_per_s: 80                 # output tokens/s per request
 *       link: eth10
 *       source: {...}                 # one per figure, as for devices
 * It runs only llm/embed ops of models it serves (listed in `serves`, or
 * declared with an `endpoint` in the workflow); a prefill there cannot
 * hand its KV cache to another device. */
#ifndef LOOM_PLANNER_CATALOG_H
#define LOOM_PLANNER_CATALOG_H

#include <stddef.h>

#include "common/err.h"
#include "planner/graph.h"

typedef struct loom_link {
    const char *name;
    double gbps;        /* line rate, gigabits per second */
    double latency_us;  /* one-way latency */
    double usd_per_gb;  /* transfer price (egress), 0 on owned networks */
} loom_link_t;

typedef struct loom_devclass {
    const char *name;
    const char *vendor;
    const char *kind;            /* "gpu", "cpu", "npu", "accel" */
    double mem_gb;               /* device memory (GB = 1e9 bytes) */
    double mem_bw_gbs;           /* memory bandwidth, GB/s */
    double tflops[LOOM_PREC__COUNT]; /* dense TFLOP/s (TOPS for int8); 0 = unsupported */
    int link;                    /* index into the catalog's links */
    double power_w;              /* board / socket power at load */
    double purchase_usd;
    double hourly_usd;           /* on-demand rental price per device-hour */
    double launch_us;            /* fixed dispatch overhead per op */
    double eff_compute;          /* achievable fraction of peak compute (0,1] */
    double eff_memory;           /* achievable fraction of peak bandwidth (0,1] */
    int line;                    /* line in the catalog file (for messages) */
    /* kind "endpoint" only (0 otherwise): per-token prices and latency */
    double usd_per_mtok_in, usd_per_mtok_out;
    double ttft_ms, prefill_tok_per_s, tok_per_s;
    const char *serves;          /* comma-separated model names; NULL: only endpoint models */
} loom_devclass_t;

/* 1 when d is a rented model API (kind "endpoint"). */
int loom_devclass_is_endpoint(const loom_devclass_t *d);
/* 1 when endpoint class d lists model (by workflow model name) in serves. */
int loom_devclass_serves(const loom_devclass_t *d, const char *model);

typedef struct loom_catalog loom_catalog_t;

/* Loads and validates a catalog file. Caller owns the result. Errors name
 * file:line:col and the field (e.g. devices[3].tflops.fp16). Every numeric
 * figure must have a source entry. */
loom_catalog_t *loom_catalog_load(const char *path, loom_err_t *err);
/* Same from memory; name is used as the file in messages. */
loom_catalog_t *loom_catalog_parse(const char *name, const char *text, size_t len, loom_err_t *err);
/* An empty catalog to fill programmatically (tests, benchmarks). */
loom_catalog_t *loom_catalog_new(void);
void loom_catalog_destroy(loom_catalog_t **pc);

/* Adds a class (strings copied; link must be a valid index or -1 for the
 * default link). Returns its index or a negative LOOM_E*. */
int loom_catalog_add_class(loom_catalog_t *c, const loom_devclass_t *d, loom_err_t *err);
int loom_catalog_add_link(loom_catalog_t *c, const loom_link_t *l, loom_err_t *err);

size_t loom_catalog_classes(const loom_catalog_t *c);
/* Borrowed until destroy / next add. */
const loom_devclass_t *loom_catalog_class(const loom_catalog_t *c, int idx);
int loom_catalog_find(const loom_catalog_t *c, const char *name); /* -1 if absent */
size_t loom_catalog_links(const loom_catalog_t *c);
const loom_link_t *loom_catalog_link(const loom_catalog_t *c, int idx);
/* Source text for a figure ("mem_bw_gbs", "tflops", ...) or NULL. */
const char *loom_catalog_source(const loom_catalog_t *c, int idx, const char *figure);
double loom_catalog_energy_usd_per_kwh(const loom_catalog_t *c);
const char *loom_catalog_path(const loom_catalog_t *c); /* NULL when built in memory */

#endif

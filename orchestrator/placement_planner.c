/* placement_planner.c — the planner's placement policy for loomd (see
 * placement.h). A run is planned on the first dispatch of one of its
 * tasks: the live registry becomes a fleet (one device class per ready
 * worker, from its measured profile and price), the workflow is decomposed
 * and placed (planner/place.h) with the run's SLA, and each workflow step
 * is sent to the worker its granular ops were placed on (llm.generate: the
 * decode's). The run is re-planned, with a REPLANNED event saying why,
 * when a planned worker is gone, or when the run falls behind its plan at
 * a step by more than a tenth of its SLA (the re-plan then gets the SLA
 * minus the lag). Steps without a plan go to the least-loaded worker.
 *
 * Plan cache: runs of the same workflow (its exact text and file name),
 * with the same SLA, on the same fleet (every ready worker's id, kind,
 * model, measured figures, price, profile and ops, in registry order) and
 * the same calibration in use borrow one plan: the graph, cost model,
 * placement, lowered module, PLANNED message and Plan are made once and
 * shared (refcounted); admission reuses its verdict. Any change of the
 * fleet, or of a calibration figure the plan uses (calib_t.used, which
 * moves only when the measured ratio leaves its band), gives a different
 * signature: the next run plans afresh and replaces the entry. A re-plan
 * (lag, lost worker) and a run with its own module (--plan) never borrow. */
#include "orchestrator/placement.h"
#include "orchestrator/plan_codec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/map.h"
#include "planner/catalog.h"
#include "planner/cost.h"
#include "planner/decompose.h"
#include "planner/fleet.h"
#include "planner/graph.h"
#include "planner/place.h"
#include "planner/profile.h"
#include "planner/workflow.h"
#include "mlir-lowering/plan_lower.h"
#include "protocol/prefix_key.h"
#include "loom/v1/rpc.pb-c.h"

#define COMP "placement"
#define MAX_PLANS 4096 /* plans kept for runs that never reported run_done */
#define MAX_CACHED_PLANS 256 /* plan cache entries (one per workflow text and SLA) */
#define RUNNER_UP_MAX_OPS 64 /* runner-ups in task reasons only for graphs up to this size */

typedef struct rplan {
    char run_id[32];
    const loom_workflow_t *wf;
    loom_graph_t *g;
    loom_catalog_t *cat;
    loom_fleet_t *fleet;
    loom_cost_t *cost;
    loom_plan_t *plan;
    loom_profile_t *prof; /* calibration the plan was made with (NULL = none) */
    unsigned version;
    double sla_ms;       /* SLA the current plan was made for */
    int lag_replans;
    double lag_base;     /* lag already absorbed by the current plan (ms) */
    uint64_t created;
    int announced;       /* the PLANNED event was published */
    /* The plan lowered to the loom dialect (mlir-lowering/plan_lower.h):
     * tasks go where the module's device functions put their ops. */
    char *module;           /* its text for the Plan (NULL: not lowered, or too large) */
    loom_map_t *module_dev; /* granular node -> device (worker id), from the module */
    loom_map_t *forced;     /* loom run --plan: node -> worker id the run must follow */
    /* The module's send/recv pairs ("<producer>\x1f<consumer>" -> "<channel>\x1f<from>\x1f<to>";
     * plan_lower.h): the lowered module's, or the --plan module's (forced_chans). */
    loom_map_t *chans, *forced_chans;
    loom_map_t *ran;        /* node -> the workers its tasks were sent to, "\x1f"-separated */
    /* The cached plan this run borrows (plan cache, above): g, cat, fleet,
     * cost, plan, prof, module, module_dev and chans are its, not the
     * run's; NULL when the run owns them. */
    struct rplan *shared;
    /* Cache entries only (an entry is an rplan_t that owns its parts): */
    unsigned refs;          /* the cache's reference + one per borrowing run */
    char *sig;              /* fleet and calibration signature it was made for */
    double certain;         /* certain_ms() once computed (admission of a plan that misses), else < 0 */
    /* (announced: a borrower announced it, lowering it) */
    char *note_msg;         /* the PLANNED text of its first announcement */
    char *note_again;       /* the same for later runs (a repeated lowering says "(cached)") */
    struct Loom__V1__Plan *pb; /* the Plan of every borrower's PLANNED event */
    char *pb_hex;           /* it encoded as stored (plan_codec.h), with each event as it is */
    loom_map_t *whys;       /* explain()'s answers for its tasks (loom_placement_why_t) */
} rplan_t;

#define MAX_MODULE_TEXT (256 << 10) /* a larger module is not copied into the run's events */
/* One-device plans of more nodes are not lowered: at ~210 bytes a node
 * their module is over MAX_MODULE_TEXT, so nothing would keep it, and
 * dispatch needs no module for one device (dispatched, one_device). */
#define ONE_DEVICE_LOWER_MAX 1200

/* Calibration of one (worker, workflow step) or (worker, op): measured
 * execution time over the uncalibrated model's prediction, smoothed. */
typedef struct {
    double ratio;   /* EWMA of measured / model */
    double used;    /* what plans use: follows ratio only when it moved by more than CALIB_BAND */
    uint64_t n;
} calib_t;

typedef struct {
    loom_map_t *runs;  /* run id -> rplan_t */
    loom_map_t *calib; /* "S\x1fworker\x1fworkflow\x1fstep" or "O\x1fworker\x1fop" -> calib_t */
    /* Calibration generations for the plan cache's signature: ops_gen
     * counts changes of the per-op figures plans use (device ops), and
     * wf_gen (workflow name -> uint64_t) those of each workflow's steps. */
    uint64_t ops_gen;
    loom_map_t *wf_gen;
    loom_map_t *cache; /* "<sha256>\x1f<file>\x1f<sla>" -> rplan_t entry */
    loom_placement_plan_cache_stats_t cstats;
    /* runs planned in this dispatch round, announced (and lowered) once its
     * tasks are sent (dispatched): not on the path to a run's first task */
    char (*pending)[32];
    size_t npending, cappending;
    void (*note_fn)(void *, const char *, int, const char *, const struct Loom__V1__Plan *, const char *);
    void *note_ud;
} policy_t;

#define CALIB_ALPHA 0.3   /* weight of the newest measurement */
/* Plans follow the measured ratio only when it left [used / BAND, used x
 * BAND]: noise then does not change every plan (so repeated runs keep the
 * same plan and hit the lowering cache) while real errors (the 100 ms tool
 * default, a worker 5x slower than its self-benchmark) still correct. */
#define CALIB_BAND 1.5
/* ... and only when that moves the step's prediction by this much (the
 * first measurement too: until then plans take the model as it is): the
 * times of a step of a few microseconds (a noop) swing by more than the
 * band from one run to the next, and re-planning for them changes nothing
 * but every plan (and the plan cache's entry). */
#define CALIB_MIN_MS 1.0
#define MAX_CALIB 65536   /* entries kept (no new keys beyond it) */

static void cplan_unref(void *p);

/* Drops the plan and the fleet it was made on (keeps the graph, unless it
 * was borrowed from the plan cache: then drops that too). */
static void rplan_drop_plan(rplan_t *rp)
{
    if (rp->shared) {
        rp->g = NULL;
        rp->cat = NULL;
        rp->fleet = NULL;
        rp->cost = NULL;
        rp->plan = NULL;
        rp->prof = NULL;
        rp->module = NULL;
        rp->module_dev = rp->chans = NULL;
        cplan_unref(rp->shared);
        rp->shared = NULL;
        return;
    }
    free(rp->module);
    rp->module = NULL;
    loom_map_destroy(&rp->module_dev);
    loom_map_destroy(&rp->chans);
    loom_plan_destroy(&rp->plan);
    loom_cost_destroy(&rp->cost);
    loom_profile_destroy(&rp->prof);
    loom_fleet_destroy(&rp->fleet);
    loom_catalog_destroy(&rp->cat);
}

static void rplan_free_parts(rplan_t *rp)
{
    rplan_drop_plan(rp);
    loom_map_destroy(&rp->forced);
    loom_map_destroy(&rp->forced_chans);
    loom_map_destroy(&rp->ran);
    loom_graph_destroy(&rp->g);
}

static void rplan_free(void *p)
{
    rplan_t *rp = p;
    if (!rp)
        return;
    rplan_free_parts(rp);
    free(rp);
}

/* The op name of workflow step `id` (loop bodies included). */
static const char *step_op(const loom_workflow_t *wf, const char *id)
{
    const loom_wf_step_t *s = loom_workflow_find_step(wf, id);
    return s ? loom_op_kind_name(s->op) : NULL;
}

static double profile_num(const char *json, const char *key)
{
    if (!json)
        return 0;
    json_t *j = json_loads(json, 0, NULL);
    double v = j ? json_number_value(json_object_get(j, key)) : 0;
    json_decref(j);
    return v;
}

/* Catalog + fleet from the ready workers (skipping `exclude`). Returns 0
 * when no worker is ready. */
static int build_fleet(rplan_t *rp, loom_registry_t *reg, const char *exclude)
{
    rp->cat = loom_catalog_new();
    if (!rp->cat)
        return 0;
    loom_link_t l = {.name = "net", .gbps = 10, .latency_us = 50, .usd_per_gb = 0};
    loom_catalog_add_link(rp->cat, &l, NULL);
    for (size_t i = 0, n = loom_registry_count(reg); i < n; i++) {
        loom_worker_rec_t *w = loom_registry_at(reg, i);
        if (w->state != LOOM_WORKER_READY || (exclude && strcmp(w->id, exclude) == 0))
            continue;
        loom_devclass_t d = {0};
        d.name = w->id;
        d.vendor = w->model;
        d.kind = !strcmp(w->kind, "gpu") || !strcmp(w->kind, "npu") ? w->kind : "cpu";
        d.mem_gb = w->memory_bytes > 0 ? w->memory_bytes / 1e9 : 16;
        d.mem_bw_gbs = w->gbps > 0 ? w->gbps : 20;
        double tf = (w->gflops > 0 ? w->gflops : 100) / 1000.0;
        double f16 = profile_num(w->profile_json, "measured_tflops_fp16");
        if (!strcmp(d.kind, "npu")) { /* measured GOP/s are int8 */
            d.tflops[LOOM_PREC_INT8] = tf;
            d.tflops[LOOM_PREC_FP16] = f16 > 0 ? f16 : tf / 2;
        } else {
            d.tflops[LOOM_PREC_FP32] = tf;
            d.tflops[LOOM_PREC_FP16] = f16 > 0 ? f16 : tf;
        }
        d.link = 0;
        d.hourly_usd = w->price_per_hour;
        d.eff_compute = 0.9; /* measured figures are achieved ones */
        d.eff_memory = 0.9;
        loom_catalog_add_class(rp->cat, &d, NULL);
    }
    if (loom_catalog_classes(rp->cat) == 0)
        return 0;
    rp->fleet = loom_fleet_new(rp->cat);
    for (size_t j = 0; rp->fleet && j < loom_catalog_classes(rp->cat); j++)
        loom_fleet_add(rp->fleet, (int)j, 1, 0, -1, NULL);
    return rp->fleet != NULL;
}

/* The granular ops a workflow op becomes (llm.generate: prefill and
 * decode). Returns how many (0..2). */
static int gops_of(const char *op, loom_gop_t out[2])
{
    static const struct { const char *op; int a, b; } m[] = {
        {"llm.generate", LOOM_GOP_PREFILL, LOOM_GOP_DECODE}, {"llm.prefill", LOOM_GOP_PREFILL, -1},
        {"llm.decode", LOOM_GOP_DECODE, -1},  {"embed", LOOM_GOP_EMBED, -1},
        {"vector.search", LOOM_GOP_VSEARCH, -1}, {"tool.exec", LOOM_GOP_TOOL_EXEC, -1},
        {"tool.http", LOOM_GOP_TOOL_HTTP, -1}, {"compute", LOOM_GOP_COMPUTE, -1},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (strcmp(op, m[i].op) == 0) {
            out[0] = (loom_gop_t)m[i].a;
            out[1] = (loom_gop_t)m[i].b;
            return m[i].b >= 0 ? 2 : 1;
        }
    out[0] = LOOM_GOP_NOOP; /* noop, echo, sleep */
    return 1;
}

/* Whether one step's measured/model ratio says something about other
 * steps of the same op on that worker: yes for device ops (the worker's
 * real speed); no for tools (their time is the tool's, not the worker's)
 * and no-ops (sleep's time is its own). Those are calibrated per step. */
static int per_op_calibration(loom_gop_t op)
{
    return !loom_gop_is_external(op) && op != LOOM_GOP_NOOP;
}

/* The calibration as a profile for rp's workflow (scale entries per
 * worker and device op, and per worker and step of this workflow; a
 * step's entry wins over its op's). NULL when there is nothing to calibrate with. */
static loom_profile_t *calib_profile(const policy_t *p, const rplan_t *rp)
{
    if (!p || !p->calib || !loom_map_len(p->calib))
        return NULL;
    loom_profile_t *prof = loom_profile_new();
    size_t it = 0;
    const char *k;
    void *v;
    while (prof && loom_map_next(p->calib, &it, &k, &v)) {
        char key[512];
        snprintf(key, sizeof key, "%s", k);
        char *f[4] = {key, NULL, NULL, NULL};
        for (int i = 1; i < 4 && f[i - 1]; i++) {
            char *sep = strchr(f[i - 1], '\x1f');
            if (sep) {
                *sep = 0;
                f[i] = sep + 1;
            }
        }
        const calib_t *c = v;
        loom_measure_t m = {.latency_ms = -1, .cost_usd = -1, .scale = c->used, .cv = -1};
        if (!(m.scale > 0) || !f[1] || !f[2])
            continue;
        if (key[0] == 'O') {
            loom_gop_t g[2];
            for (int i = 0, n = gops_of(f[2], g); i < n; i++)
                if (per_op_calibration(g[i]))
                    loom_profile_add_op(prof, g[i], f[1], NULL, &m, NULL);
        } else if (key[0] == 'S' && f[3] && strcmp(f[2], rp->wf->name) == 0) {
            const char *step = strrchr(f[3], '/') ? strrchr(f[3], '/') + 1 : f[3];
            for (size_t n = 0; n < loom_graph_nodes(rp->g); n++) {
                const loom_gnode_t *nd = loom_graph_node(rp->g, (int)n);
                if (nd->step && strcmp(nd->step, step) == 0 && !loom_profile_op(prof, nd->op, f[1], step))
                    loom_profile_add_op(prof, nd->op, f[1], step, &m, NULL);
            }
        }
    }
    return prof;
}

/* (Re)plans rp against the registry, with p's calibration (p may be
 * NULL). Returns 0 or a negative LOOM_E*. */
static int plan_run(const policy_t *p, rplan_t *rp, loom_registry_t *reg, const char *exclude, double sla_ms,
                    loom_err_t *err)
{
    rplan_drop_plan(rp);
    if (!rp->g && loom_decompose(rp->wf, &rp->g, NULL, err) < 0)
        return err->code ? err->code : LOOM_EINVAL;
    if (!build_fleet(rp, reg, exclude))
        return loom_err_set(err, LOOM_EUNAVAIL, "no ready worker to plan on");
    rp->prof = calib_profile(p, rp);
    rp->cost = loom_cost_new(rp->g, rp->fleet, rp->prof, err);
    if (!rp->cost)
        return err->code ? err->code : LOOM_ENOMEM;
    /* A worker can only run ops it lists. A loop's own nodes (begin/end:
     * iteration control) run in loomd and fit anywhere. */
    for (size_t v = 0; v < loom_graph_nodes(rp->g); v++) {
        const char *op = step_op(rp->wf, loom_graph_node(rp->g, (int)v)->step);
        if (op && strcmp(op, "loop") == 0)
            continue; /* a loop's begin/end nodes: loomd itself runs loops */
        for (size_t k = 0; k < loom_fleet_entries(rp->fleet); k++) {
            loom_worker_rec_t *w = loom_registry_by_id(reg, loom_cost_device_name(rp->cost, (int)k));
            if (!w || (op && !loom_worker_runs(w, op)))
                loom_cost_forbid(rp->cost, (int)v, (int)k);
        }
    }
    /* loom run --plan: each node may go only to the worker the module names */
    for (size_t v = 0; rp->forced && v < loom_graph_nodes(rp->g); v++) {
        const char *dev = loom_map_get(rp->forced, loom_graph_node(rp->g, (int)v)->name);
        for (size_t k = 0; dev && k < loom_fleet_entries(rp->fleet); k++)
            if (strcmp(loom_cost_device_name(rp->cost, (int)k), dev) != 0)
                loom_cost_forbid(rp->cost, (int)v, (int)k);
    }
    loom_place_opts_t o;
    loom_place_opts_init(&o);
    o.sla_ms = sla_ms;
    o.percentile = rp->wf->sla.set ? rp->wf->sla.percentile / 100 : 0.5;
    o.minimize_latency = rp->wf->sla.set && rp->wf->sla.objective == LOOM_WF_OBJECTIVE_LATENCY;
    int rc = loom_place(rp->g, rp->cost, &o, &rp->plan, err);
    if (rc < 0)
        return rc;
    rp->sla_ms = sla_ms;
    rp->version++;
    return 0;
}

/* Meets the SLA by the model and by its Monte Carlo check (as `loom plan`). */
static int plan_meets_sla(const rplan_t *rp)
{
    return loom_plan_feasible(rp->plan) && !(rp->sla_ms > 0 && loom_plan_mc_target_ms(rp->plan) > rp->sla_ms);
}

/* ---- the plan cache (top of the file) -------------------------------------- */

static void cplan_unref(void *ptr)
{
    rplan_t *e = ptr;
    if (!e || --e->refs)
        return;
    rplan_free_parts(e);
    free(e->sig);
    free(e->note_msg);
    free(e->note_again);
    loom_placement_plan_free(e->pb);
    free(e->pb_hex);
    loom_map_destroy(&e->whys);
    free(e);
}

/* What a plan of wf depends on besides the workflow and its SLA: the
 * calibration generations that concern it and every ready worker's profile,
 * price and ops, in registry order (build_fleet, plan_run's op check).
 * Caller frees; NULL on OOM. */
static char *cache_sig(const policy_t *p, const loom_workflow_t *wf, loom_registry_t *reg)
{
    const uint64_t *wg = p->wf_gen ? loom_map_get(p->wf_gen, wf->name) : NULL;
    loom_buf_t b = LOOM_BUF_INIT;
    loom_buf_printf(&b, "calib %llu %llu", (unsigned long long)p->ops_gen, (unsigned long long)(wg ? *wg : 0));
    for (size_t i = 0, n = loom_registry_count(reg); i < n; i++) {
        const loom_worker_rec_t *w = loom_registry_at(reg, i);
        if (w->state != LOOM_WORKER_READY)
            continue;
        loom_buf_printf(&b, "\x1e%s\x1f%s\x1f%s\x1f%llu\x1f%.17g\x1f%.17g\x1f%.17g\x1f%s", w->id, w->kind, w->model,
                        (unsigned long long)w->memory_bytes, w->gflops, w->gbps, w->price_per_hour,
                        w->profile_json ? w->profile_json : "");
        for (size_t k = 0; k < w->n_ops; k++)
            loom_buf_printf(&b, "\x1f%s", w->ops[k]);
    }
    return loom_buf_detach(&b, NULL);
}

/* rp uses cache entry e's plan from now on (rplan_t.shared). */
static void borrow(rplan_t *rp, rplan_t *e)
{
    rplan_drop_plan(rp);
    loom_graph_destroy(&rp->g);
    e->refs++;
    rp->shared = e;
    rp->g = e->g;
    rp->cat = e->cat;
    rp->fleet = e->fleet;
    rp->cost = e->cost;
    rp->plan = e->plan;
    rp->prof = e->prof;
    rp->module = e->module;
    rp->module_dev = e->module_dev;
    rp->chans = e->chans;
    rp->version = e->version;
    rp->sla_ms = e->sla_ms;
}

/* Drops the entry of m (rplan_t values: runs or cache entries) made first. */
static void drop_oldest(loom_map_t *m)
{
    size_t it = 0;
    const char *k, *oldest = NULL;
    void *v;
    uint64_t t = UINT64_MAX;
    while (loom_map_next(m, &it, &k, &v))
        if (((rplan_t *)v)->created < t) {
            t = ((rplan_t *)v)->created;
            oldest = k;
        }
    char *key = oldest ? strdup(oldest) : NULL;
    if (key)
        loom_map_del(m, key);
    free(key);
}

/* Plans rp as plan_run does for its first plan (no worker excluded), or
 * borrows the cached plan of the same workflow text, SLA, fleet and
 * calibration. A fresh plan becomes the cache's entry for the workflow and
 * SLA (replacing one made for another fleet or calibration). Runs with
 * their own module (forced) are planned apart. 0 or a negative LOOM_E*. */
static int plan_cached(policy_t *p, rplan_t *rp, loom_registry_t *reg, double sla_ms, loom_err_t *err)
{
    if (!p || !p->cache || rp->forced)
        return plan_run(p, rp, reg, NULL, sla_ms, err);
    char key[LOOM_SHA256_HEX_LEN + 300];
    snprintf(key, sizeof key, "%s\x1f%.200s\x1f%.17g", rp->wf->sha256, rp->wf->file ? rp->wf->file : "", sla_ms);
    char *sig = cache_sig(p, rp->wf, reg);
    rplan_t *e = loom_map_get(p->cache, key);
    if (e && sig && strcmp(e->sig, sig) == 0) {
        free(sig);
        borrow(rp, e);
        p->cstats.hits++;
        return 0;
    }
    p->cstats.misses++;
    int rc = plan_run(p, rp, reg, NULL, sla_ms, err);
    if (rc < 0 || !sig) {
        free(sig);
        return rc;
    }
    if (e) { /* made for another fleet or calibration */
        LOOM_DEBUG(COMP, "msg=\"plan cache: entry replaced (fleet or calibration changed)\" workflow=%s run=%s",
                   rp->wf->name, rp->run_id);
        p->cstats.invalidated++;
        loom_map_del(p->cache, key);
    } else if (loom_map_len(p->cache) >= MAX_CACHED_PLANS) {
        drop_oldest(p->cache);
    }
    if (!(e = calloc(1, sizeof *e)) || loom_map_put(p->cache, key, e) != 0) {
        free(e);
        free(sig);
        return 0; /* rp keeps its own plan */
    }
    e->refs = 1; /* the cache's */
    e->sig = sig;
    e->created = loom_clock_ms();
    e->g = rp->g;
    e->cat = rp->cat;
    e->fleet = rp->fleet;
    e->cost = rp->cost;
    e->plan = rp->plan;
    e->prof = rp->prof;
    e->version = rp->version;
    e->sla_ms = rp->sla_ms;
    e->certain = -1;
    e->refs++;
    rp->shared = e;
    return 0;
}

static void summary(const rplan_t *rp, const char *why, char *buf, size_t n)
{
    size_t len = (size_t)snprintf(buf, n, "%s%splan v%u on %zu live workers: ", why ? why : "", why ? "; " : "",
                                  rp->version, loom_fleet_entries(rp->fleet));
    for (size_t v = 0; v < loom_graph_nodes(rp->g) && len < n; v++) {
        const loom_gnode_t *nd = loom_graph_node(rp->g, (int)v);
        len += (size_t)snprintf(buf + len, n - len, "%s%s->%s", v ? ", " : "", nd->name,
                                loom_cost_device_name(rp->cost, loom_plan_device(rp->plan, (int)v)));
    }
    if (len < n && rp->sla_ms > 0)
        snprintf(buf + len, n - len, "; predicted p%g %.0f ms, $%.3g/run, %s SLA %.0f ms (%s)",
                 rp->wf->sla.set ? rp->wf->sla.percentile : 50, loom_plan_target_ms(rp->plan),
                 loom_plan_cost_usd(rp->plan), plan_meets_sla(rp) ? "meets" : "MISSES", rp->sla_ms,
                 loom_plan_method(rp->plan));
    else if (len < n)
        snprintf(buf + len, n - len, "; predicted p50 %.0f ms, $%.3g/run, no SLA (%s)",
                 loom_plan_target_ms(rp->plan), loom_plan_cost_usd(rp->plan), loom_plan_method(rp->plan));
}

/* The granular node that decides where step path `sid` runs. */
static int node_for_step(const rplan_t *rp, const char *sid)
{
    char name[300];
    snprintf(name, sizeof name, "%s", sid);
    for (char *c = name; *c; c++)
        if (*c == '/')
            *c = '.';
    int v = loom_graph_find(rp->g, name);
    if (v < 0) {
        size_t l = strlen(name);
        snprintf(name + l, sizeof name - l, ".decode");
        v = loom_graph_find(rp->g, name);
    }
    return v;
}

static void evict_some(policy_t *p)
{
    if (loom_map_len(p->runs) >= MAX_PLANS)
        drop_oldest(p->runs);
}

static Loom__V1__Plan *plan_pb(const rplan_t *rp, int live, const char *lead, const loom_decompose_notes_t *notes);
void loom_placement_plan_free(struct Loom__V1__Plan *p);

/* loomd links the MLIR lowering (mlir-lowering/plan_lower.c; weak here so
 * other programs using this library need no MLIR, declared by its header so
 * the compiler checks every call): each plan is lowered to per-device
 * functions, cached by the plan's hash, and the PLANNED message says so.
 * Best effort: a plan that does not lower is still followed. */
#pragma weak loom_plan_lower
#pragma weak loom_plan_last_module
#pragma weak loom_plan_module_placements
#pragma weak loom_plan_module_locate

/* Appends the lowering's summary to msg; 1 when lowered. */
static int lowered(const loom_placement_req_t *req, rplan_t *rp, char *msg, size_t n)
{
    char s[256];
    loom_err_t e = {0};
    size_t len = strlen(msg);
    const char *text = NULL;
    if (!loom_plan_lower || !rp->plan)
        return 0;
    if (loom_plan_lower(req->run_id, rp->wf, rp->g, rp->cost, rp->plan, s, sizeof s, &e) != 0) {
        LOOM_WARN(COMP, "msg=\"plan not lowered\" run=%s error=\"%s\"", req->run_id, e.msg);
        return 0;
    }
    snprintf(msg + len, n > len ? n - len : 0, "; %s", s);
    /* dispatch follows the module: where its device functions put each op */
    loom_map_destroy(&rp->module_dev);
    loom_map_destroy(&rp->chans);
    free(rp->module);
    rp->module = NULL;
    if (loom_plan_last_module && loom_plan_last_module(&text, &rp->module_dev, &rp->chans) == 0 && text &&
        strlen(text) <= MAX_MODULE_TEXT)
        rp->module = strdup(text);
    return 1;
}

/* The worker node v runs on: the module's placement when the plan was
 * lowered, else the plan's. */
static const char *node_device(const rplan_t *rp, int v)
{
    const char *dev = rp->module_dev ? loom_map_get(rp->module_dev, loom_graph_node(rp->g, v)->name) : NULL;
    return dev ? dev : loom_cost_device_name(rp->cost, loom_plan_device(rp->plan, v));
}

/* loom run --plan: reads the run's module (verified again) into rp->forced
 * and checks that it places only nodes of this workflow, each on a ready
 * worker that runs its step's op. 0 or LOOM_EINVAL with err located at the
 * module's op (plan.mlir:LINE:COL). */
static int load_forced(rplan_t *rp, const loom_placement_req_t *req, loom_registry_t *reg, loom_err_t *err)
{
    if (!req->plan_mlir || rp->forced)
        return 0;
    if (!loom_plan_module_placements)
        return loom_err_set(err, LOOM_EUNAVAIL, "this loomd was built without the MLIR lowering");
    size_t len = strlen(req->plan_mlir);
    int rc = loom_plan_module_placements(req->plan_mlir, len, "plan.mlir", &rp->forced, &rp->forced_chans, err);
    if (rc)
        return rc;
    if (!rp->g && loom_decompose(rp->wf, &rp->g, NULL, err) < 0)
        return err->code ? err->code : LOOM_EINVAL;
    size_t it = 0;
    const char *node;
    void *dev;
    while (!rc && loom_map_next(rp->forced, &it, &node, &dev)) {
        loom_worker_rec_t *w = loom_registry_by_id(reg, dev);
        int v = loom_graph_find(rp->g, node);
        const char *op = v >= 0 ? step_op(rp->wf, loom_graph_node(rp->g, v)->step) : NULL;
        if (v < 0)
            rc = loom_err_set(err, LOOM_EINVAL, "the plan module places node '%s', which workflow %s does not have",
                              node, rp->wf->name);
        else if (!w || w->state != LOOM_WORKER_READY)
            rc = loom_err_set(err, LOOM_EINVAL, "the plan module places node '%s' on device '%s', which is not a "
                                                "ready worker (devices of a live plan are worker ids: loom workers)",
                              node, (const char *)dev);
        else if (op && strcmp(op, "loop") != 0 && !loom_worker_runs(w, op)) /* loomd runs a loop's own nodes */
            rc = loom_err_set(err, LOOM_EINVAL, "the plan module places node '%s' (%s) on device '%s', which does "
                                                "not run %s",
                              node, op, (const char *)dev, op);
        if (rc == LOOM_EINVAL && w && op && v >= 0 && w->state == LOOM_WORKER_READY)
            loom_err_hint(err, "move the op to a device whose worker lists %s (loom workers)", op);
        if (rc && loom_plan_module_locate)
            loom_plan_module_locate(req->plan_mlir, len, "plan.mlir", node, err);
    }
    if (rc) {
        loom_map_destroy(&rp->forced);
        loom_map_destroy(&rp->forced_chans);
    }
    return rc;
}

static void note(const loom_placement_req_t *req, const rplan_t *rp, int replanned, const char *msg)
{
    if (req->note) {
        const rplan_t *e = !replanned && rp && rp->shared && rp->shared->pb ? rp->shared : NULL;
        Loom__V1__Plan *pb = !e && rp && rp->plan ? plan_pb(rp, 1, NULL, NULL) : NULL;
        req->note(req->note_ud, req->run_id, replanned, msg, e ? e->pb : pb, e ? e->pb_hex : NULL);
        loom_placement_plan_free(pb);
    }
    LOOM_INFO(COMP, "msg=\"%s\" run=%s detail=\"%.300s\"", replanned ? "re-planned" : "planned", req->run_id, msg);
}

/* Publishes rp's plan (PLANNED): its summary, then the lowering's (or
 * `instead`, when not NULL, in place of lowering it). A borrowed plan is
 * summarised, lowered and packed once, by the first run that announces it:
 * later runs get the same text (a repeated lowering says "(cached)", as
 * the lowering's own cache would) and the same Plan, and take the module
 * the first lowered. */
static void announce(const loom_placement_req_t *req, rplan_t *rp, const char *instead)
{
    rplan_t *e = rp->shared;
    char msg[1024];
    if (e && e->announced) {
        rp->module = e->module;
        rp->module_dev = e->module_dev;
        rp->chans = e->chans;
        if (!e->note_msg) /* out of memory when it was first announced */
            summary(rp, NULL, msg, sizeof msg);
        note(req, rp, 0, e->note_msg ? e->note_again : msg);
        return;
    }
    summary(rp, NULL, msg, sizeof msg);
    size_t len = strlen(msg);
    int low = 0;
    if (instead)
        snprintf(msg + len, sizeof msg - len, "%s", instead);
    else
        low = lowered(req, rp, msg, sizeof msg);
    if (e) {
        e->announced = 1;
        e->module = rp->module; /* the entry's from now on */
        e->module_dev = rp->module_dev;
        e->chans = rp->chans;
        size_t n = strlen(msg);
        int again = low && !(n >= 9 && strcmp(msg + n - 9, " (cached)") == 0);
        e->note_msg = strdup(msg);
        if (asprintf(&e->note_again, "%s%s", msg, again ? " (cached)" : "") < 0)
            e->note_again = NULL;
        e->pb = plan_pb(rp, 1, NULL, NULL);
        e->pb_hex = e->pb ? loom_plan_codec_hex(e->pb) : NULL;
        if (!e->note_msg || !e->note_again || !e->pb || !e->pb_hex) { /* OOM: later runs get the summary alone */
            free(e->note_msg);
            e->note_msg = NULL;
            loom_placement_plan_free(e->pb);
            e->pb = NULL;
            free(e->pb_hex);
            e->pb_hex = NULL;
        }
    }
    note(req, rp, 0, msg);
}

/* The other granular node of v's step (llm.generate: the prefill of a
 * decode), or -1. */
static int step_partner(const rplan_t *rp, int v)
{
    const loom_gnode_t *nd = loom_graph_node(rp->g, v);
    size_t l = strlen(nd->name);
    if (nd->op != LOOM_GOP_DECODE || l < 7 || strcmp(nd->name + l - 7, ".decode") != 0)
        return -1;
    char name[300];
    snprintf(name, sizeof name, "%.*s.prefill", (int)(l - 7), nd->name);
    return loom_graph_find(rp->g, name);
}

/* Whether req's task is one part of a split llm.generate step (node v):
 * its llm.prefill or llm.decode (placement.h, split_kv). */
static int kv_part(const rplan_t *rp, int v, const loom_placement_req_t *req)
{
    const char *op = step_op(rp->wf, loom_graph_node(rp->g, v)->step);
    return op && strcmp(op, "llm.generate") == 0 && strcmp(req->op, "llm.generate") != 0;
}

/* Predicted execution time / cost of v's task on fleet entry k: its whole
 * step (an llm.generate's prefill and decode), or v alone for a part. */
static double step_ms(const rplan_t *rp, int v, int k, int part)
{
    int u = part ? -1 : step_partner(rp, v);
    return loom_cost_ms(rp->cost, v, k) + (u >= 0 ? loom_cost_ms(rp->cost, u, k) : 0);
}

static double step_usd(const rplan_t *rp, int v, int k, int part)
{
    int u = part ? -1 : step_partner(rp, v);
    return loom_cost_usd(rp->cost, v, k) + (u >= 0 ? loom_cost_usd(rp->cost, u, k) : 0);
}

/* The worker the plan chose for node v (NULL when gone). */
static loom_worker_rec_t *planned_w(const rplan_t *rp, int v, loom_registry_t *reg)
{
    return loom_registry_by_id(reg, node_device(rp, v));
}

/* Tasks a worker may hold for req (queued beyond its slots: a step's
 * timeout_ms counts from the worker's Started, not while queued there). */
static int capacity_for(const loom_worker_rec_t *w, const loom_placement_req_t *req)
{
    (void)req;
    return w->send_paused ? 0 : w->max_inflight; /* paused: back-pressure, registry.h */
}

/* Predicted finish of v on w (fleet entry k) if sent now: the tasks queued
 * ahead of it there (beyond its slots) run first, at about the same
 * service time, spread over its slots. */
static double finish_ms(const rplan_t *rp, int v, const loom_worker_rec_t *w, int k, int part)
{
    int ahead = w->inflight - w->slots + 1;
    return step_ms(rp, v, k, part) * (1.0 + (ahead > 0 ? (double)ahead / (w->slots > 0 ? w->slots : 1) : 0));
}

/* Load-aware choice for node v: the planned worker while it has a free
 * slot; otherwise the capable worker (one the plan's cost model lets run
 * v) that finishes it soonest, counting its queue, the planned one on a
 * tie. So a fan-out spreads over idle workers instead of queueing behind
 * the cheapest, and no task waits while a capable worker is idle unless
 * that worker is slower than the wait. NULL when every capable worker is
 * full. */
static loom_worker_rec_t *choose(const rplan_t *rp, int v, loom_worker_rec_t *planned,
                                 const loom_placement_req_t *req, loom_registry_t *reg)
{
    if (planned->inflight < planned->slots && !planned->send_paused)
        return planned;
    int part = kv_part(rp, v, req);
    loom_worker_rec_t *best = NULL;
    double best_t = INFINITY;
    int kp = loom_fleet_find(rp->fleet, planned->id);
    if (planned->inflight < capacity_for(planned, req) && kp >= 0) {
        best = planned;
        best_t = finish_ms(rp, v, planned, kp, part);
    }
    for (size_t i = 0, n = loom_registry_count(reg); i < n; i++) {
        loom_worker_rec_t *w = loom_registry_at(reg, i);
        if (w == planned || w->state != LOOM_WORKER_READY || w->inflight >= capacity_for(w, req) ||
            !loom_worker_runs(w, req->op))
            continue;
        int k = loom_fleet_find(rp->fleet, w->id);
        if (k < 0 || !loom_cost_fits(rp->cost, v, k))
            continue;
        double t = finish_ms(rp, v, w, k, part);
        if (t < best_t - 1e-9 || (t <= best_t + 1e-9 && best && best != planned &&
                                  w->price_per_hour < best->price_per_hour)) {
            best = w;
            best_t = t;
        }
    }
    return best;
}

/* Fills why (may be NULL) with the plan's prediction for node v on the
 * worker it chose, and its reason: the chosen worker and its class, and
 * the runner-up with what the run would cost there. */
static void explain_now(const rplan_t *rp, int v, const loom_worker_rec_t *w, loom_placement_why_t *why,
                        int moved, int part)
{
    if (!why)
        return;
    int k = loom_fleet_find(rp->fleet, w->id);
    if (k < 0)
        return;
    why->predicted_ms = step_ms(rp, v, k, part);
    why->predicted_cost = step_usd(rp, v, k, part);
    if (moved) {
        snprintf(why->reason, sizeof why->reason,
                 "load: planned worker %.60s is busy; %.60s (%.60s, $%.4g/h) finishes it sooner, predicted %.1f ms "
                 "$%.3g",
                 loom_cost_device_name(rp->cost, loom_plan_device(rp->plan, v)), w->id,
                 w->model[0] ? w->model : w->kind, w->price_per_hour, why->predicted_ms, why->predicted_cost);
        return;
    }
    double ru_cost = 0, ru_ms = 0;
    int ru_ok = 0;
    /* each runner-up re-evaluates the whole plan per device: only on
     * graphs small enough for that to stay cheap on the dispatch path */
    int ru = loom_graph_nodes(rp->g) <= RUNNER_UP_MAX_OPS ? loom_plan_runner_up(rp->plan, v, &ru_cost, &ru_ms, &ru_ok)
                                                          : -2;
    int n = snprintf(why->reason, sizeof why->reason,
                     "planned: %s worker %s (%s, $%.4g/h), predicted %.1f ms $%.3g; plan $%.3g/run %.0f ms",
                     w->kind, w->id, w->model[0] ? w->model : w->kind, w->price_per_hour, why->predicted_ms,
                     why->predicted_cost, loom_plan_cost_usd(rp->plan), loom_plan_target_ms(rp->plan));
    if (n <= 0 || (size_t)n >= sizeof why->reason)
        return;
    if (ru >= 0)
        snprintf(why->reason + n, sizeof why->reason - (size_t)n, "; runner-up %s: $%.3g/run %.0f ms%s",
                 loom_cost_device_name(rp->cost, ru), ru_cost, ru_ms, ru_ok ? "" : " (misses SLA)");
    else if (ru == -1)
        snprintf(why->reason + n, sizeof why->reason - (size_t)n, "; no runner-up");
}

/* explain(), kept per (node, worker, moved, part) in a borrowed plan's
 * cache entry: the reason depends on nothing else (the worker's model and
 * price are part of the entry's fleet signature), and every run of the
 * workflow gives each task the same. */
static void explain(const rplan_t *rp, int v, const loom_worker_rec_t *w, loom_placement_why_t *why, int moved,
                    int part)
{
    rplan_t *e = rp->shared;
    if (!why || !e) {
        explain_now(rp, v, w, why, moved, part);
        return;
    }
    char key[200];
    snprintf(key, sizeof key, "%d\x1f%d\x1f%d\x1f%.150s", v, moved, part, w->id);
    loom_placement_why_t *c = e->whys ? loom_map_get(e->whys, key) : NULL;
    if (c) {
        *why = *c;
        return;
    }
    explain_now(rp, v, w, why, moved, part);
    if ((e->whys || (e->whys = loom_map_new(free))) && (c = malloc(sizeof *c))) {
        *c = *why;
        if (loom_map_put(e->whys, key, c) != 0)
            free(c);
    }
}

/* Whether "a\x1fb\x1f..." lists w. */
static int lists(const char *list, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = list; p; p = strchr(p, '\x1f') ? strchr(p, '\x1f') + 1 : NULL)
        if (strncmp(p, w, n) == 0 && (p[n] == '\x1f' || !p[n]))
            return 1;
    return 0;
}

/* Notes that node v's task went to w (rp->ran). */
static void note_ran(rplan_t *rp, int v, const loom_worker_rec_t *w)
{
    const char *name = loom_graph_node(rp->g, v)->name;
    const char *had = rp->ran ? loom_map_get(rp->ran, name) : NULL;
    char *list = NULL;
    if (had && lists(had, w->id))
        return;
    if ((!rp->ran && !(rp->ran = loom_map_new(free))) ||
        asprintf(&list, "%s%s%s", had ? had : "", had ? "\x1f" : "", w->id) < 0)
        return;
    if (loom_map_put(rp->ran, name, list) != 0)
        free(list);
}

/* The data a task receives from other devices, as the module routes it
 * (loomd hands each task its inputs): for each node u that the task reads
 * (graph in-edges of v, and of its prefill when the task is a whole
 * llm.generate) whose task went to a worker a other than w, the module's
 * send/recv pair carrying u's value from a to w is appended to why's
 * reason, "; receives U over CHANNEL from A" (the decode of a split
 * generate: the KV cache over its kv.transfer's pair), or "; receives U
 * from A outside the module (no send/recv pair)" when the module has none
 * (a task moved by load). A loop's begin/end markers are skipped: loomd
 * assembles a loop's input and output itself. */
static void note_inputs(const rplan_t *rp, int v, const loom_worker_rec_t *w, int whole, loom_placement_why_t *why)
{
    const loom_map_t *chans = rp->forced ? rp->forced_chans : rp->chans;
    int vs[2] = {v, whole ? step_partner(rp, v) : -1};
    size_t len = strlen(why->reason);
    for (int k = 0; k < 2 && rp->ran; k++) {
        size_t ne = 0;
        const int *in = vs[k] >= 0 ? loom_graph_in(rp->g, vs[k], &ne) : NULL;
        for (size_t j = 0; in && j < ne; j++) {
            int u = loom_graph_edge(rp->g, in[j])->src;
            const loom_gnode_t *un = loom_graph_node(rp->g, u);
            const char *op = step_op(rp->wf, un->step), *ran = loom_map_get(rp->ran, un->name);
            if (u == vs[0] || u == vs[1] || !ran || (op && strcmp(op, "loop") == 0))
                continue;
            for (const char *a = ran; a; a = strchr(a, '\x1f') ? strchr(a, '\x1f') + 1 : NULL) {
                char from[128], key[600], chan[300] = "";
                snprintf(from, sizeof from, "%.*s", (int)strcspn(a, "\x1f"), a);
                if (strcmp(from, w->id) == 0)
                    continue;
                for (int c = 0; c < 2 && !chan[0]; c++) {
                    snprintf(key, sizeof key, "%s\x1f%s", un->name,
                             vs[c] >= 0 ? loom_graph_node(rp->g, vs[c])->name : "");
                    const char *val = chans && vs[c] >= 0 ? loom_map_get(chans, key) : NULL;
                    char want[300];
                    snprintf(want, sizeof want, "\x1f%s\x1f%s", from, w->id);
                    size_t cl = val ? strcspn(val, "\x1f") : 0;
                    if (val && strcmp(val + cl, want) == 0)
                        snprintf(chan, sizeof chan, "%.*s", (int)cl, val);
                }
                int n = chan[0] ? snprintf(why->reason + len, sizeof why->reason - len, "; receives %s over %s from %s",
                                           un->name, chan, from)
                                : snprintf(why->reason + len, sizeof why->reason - len,
                                           "; receives %s from %s outside the module (no send/recv pair)", un->name,
                                           from);
                len = n > 0 && len + (size_t)n < sizeof why->reason ? len + (size_t)n : sizeof why->reason - 1;
            }
        }
    }
}

/* Queue ahead of a task sent to w now (ms): the tasks beyond its slots, at
 * about the same service time (service_ms), spread over its slots. */
static double queue_ms(const loom_worker_rec_t *w, double service_ms)
{
    int ahead = w->inflight - w->slots + 1;
    return ahead > 0 ? service_ms * (double)ahead / (w->slots > 0 ? w->slots : 1) : 0;
}

/* Prefix-aware placement of a whole llm.generate task (node v, its
 * prefill u): when some worker's engine holds the KV of a prefix of its
 * prompt (req->prefix_keys against the prefixes workers report), each
 * capable worker with room is priced by the planner's cost model
 * (loom_cost_prefix): run where the prefix lives, recompute the prefill,
 * or move the KV prefix from its holder. The worker with the soonest
 * predicted finish among what loomd can execute (run there, recompute) is
 * chosen, and the reason gives all three prices. Moving a prefix between
 * workers is priced but not built: when it is the cheapest the reason says
 * so and the next best is run. Returns `chosen` when no worker holds a
 * prefix of the prompt. */
static loom_worker_rec_t *prefix_pick(const rplan_t *rp, int v, loom_worker_rec_t *chosen,
                                      const loom_placement_req_t *req, loom_registry_t *reg)
{
    int u = step_partner(rp, v);
    if (u < 0 || !req->n_prefix_keys)
        return chosen;
    /* the holder of the longest prefix, and the prompt's size in tokens
     * (at the holder's tokens per byte of canonical text) */
    loom_worker_rec_t *holder = NULL;
    double held = 0, prompt = 0;
    size_t n = loom_registry_count(reg);
    for (size_t i = 0; i < n; i++) {
        loom_worker_rec_t *w = loom_registry_at(reg, i);
        size_t blocks = 0;
        uint32_t t = w->state == LOOM_WORKER_READY
                         ? loom_worker_prefix_tokens(w, req->prefix_keys, req->n_prefix_keys, &blocks)
                         : 0;
        if (t > held) {
            held = t, holder = w;
            prompt = (double)t * (double)req->prompt_bytes / (double)(blocks * LOOM_PREFIX_BLOCK);
        }
    }
    if (!holder)
        return chosen;
    int kh = loom_fleet_find(rp->fleet, holder->id);
    if (kh < 0)
        return chosen;
    if (prompt < held)
        prompt = held;
    double svc_h = step_ms(rp, v, kh, 0), wait_h = queue_ms(holder, svc_h);
    loom_worker_rec_t *best = NULL, *best_move = NULL;
    double best_ms = INFINITY, move_ms = INFINITY, there_ms = INFINITY, recompute_ms = INFINITY;
    loom_worker_rec_t *recompute_w = NULL;
    for (size_t i = 0; i < n; i++) {
        loom_worker_rec_t *w = loom_registry_at(reg, i);
        if (w->state != LOOM_WORKER_READY || w->inflight >= capacity_for(w, req) || !loom_worker_runs(w, req->op))
            continue;
        int k = loom_fleet_find(rp->fleet, w->id);
        if (k < 0 || !loom_cost_fits(rp->cost, v, k))
            continue;
        double wait = queue_ms(w, step_ms(rp, v, k, 0));
        loom_prefix_price_t pr;
        if (w == holder) {
            loom_cost_prefix(rp->cost, u, v, prompt, held, kh, kh, wait_h, wait_h, &pr);
            there_ms = pr.there_ms;
            if (pr.there_ms < best_ms)
                best_ms = pr.there_ms, best = w;
        } else {
            loom_cost_prefix(rp->cost, u, v, prompt, held, kh, k, wait_h, wait, &pr);
            if (pr.move_ms < move_ms)
                move_ms = pr.move_ms, best_move = w;
            if (pr.recompute_ms < recompute_ms)
                recompute_ms = pr.recompute_ms, recompute_w = w;
            if (pr.recompute_ms < best_ms)
                best_ms = pr.recompute_ms, best = w;
        }
    }
    if (!best)
        return chosen;
    loom_placement_why_t *why = req->why;
    if (why) {
        int k = loom_fleet_find(rp->fleet, best->id);
        why->predicted_ms = best_ms;
        why->predicted_cost = k >= 0 ? step_usd(rp, v, k, 0) : 0;
        int len = snprintf(why->reason, sizeof why->reason,
                           "prefix: worker %s holds the KV of ~%.0f of ~%.0f prompt tokens; ", holder->id, held, prompt);
        char part[200];
        if (there_ms < INFINITY) {
            snprintf(part, sizeof part, "run there %.1f ms", there_ms);
            len += snprintf(why->reason + len, sizeof why->reason - (size_t)len, "%s", part);
        } else {
            len += snprintf(why->reason + len, sizeof why->reason - (size_t)len, "%s is full", holder->id);
        }
        if (recompute_w)
            len += snprintf(why->reason + len, sizeof why->reason - (size_t)len, ", recompute on %s %.1f ms",
                            recompute_w->id, recompute_ms);
        if (best_move)
            len += snprintf(why->reason + len, sizeof why->reason - (size_t)len, ", move it to %s %.1f ms",
                            best_move->id, move_ms);
        const char *did = best == holder ? loom_prefix_choice_name(LOOM_PREFIX_THERE)
                                         : loom_prefix_choice_name(LOOM_PREFIX_RECOMPUTE);
        len += snprintf(why->reason + len, sizeof why->reason - (size_t)len, "; chose: %s on %s", did, best->id);
        if (move_ms < best_ms)
            len += snprintf(why->reason + len, sizeof why->reason - (size_t)len,
                            " (moving the prefix would be cheapest, but moving a prefix between workers is not built)");
        if (chosen && chosen != best && len > 0 && (size_t)len < sizeof why->reason)
            snprintf(why->reason + len, sizeof why->reason - (size_t)len, "; without the prefix: %s", chosen->id);
    }
    return best;
}

static loom_worker_rec_t *fallback(const loom_placement_req_t *req, loom_registry_t *reg, int *never)
{
    loom_placement_t ll = loom_placement_least_loaded();
    return ll.pick(NULL, req, reg, never);
}

/* A new plan record for req's run (in p->runs), not planned yet; NULL on OOM. */
static rplan_t *rplan_new(policy_t *p, const loom_placement_req_t *req)
{
    evict_some(p);
    rplan_t *rp = calloc(1, sizeof *rp);
    if (!rp || loom_map_put(p->runs, req->run_id, rp) != 0) {
        free(rp);
        return NULL;
    }
    snprintf(rp->run_id, sizeof rp->run_id, "%s", req->run_id);
    rp->wf = req->workflow;
    rp->created = loom_clock_ms();
    return rp;
}


/* The fastest placement's latency at the run's percentile with
 * uncalibrated roofline estimates dropped (loom_cost_drop_estimates): what
 * no placement on these workers can beat. The plan's own estimate when
 * that cannot be computed. */
static double certain_ms(const rplan_t *rp)
{
    double t = loom_plan_target_ms(rp->plan);
    loom_cost_t *c = loom_cost_new(rp->g, rp->fleet, rp->prof, NULL);
    loom_plan_t *fast = NULL;
    if (!c)
        return t;
    loom_cost_drop_estimates(c);
    for (size_t v = 0; v < loom_graph_nodes(rp->g); v++) /* the same workers may run each op */
        for (size_t k = 0; k < loom_cost_devices(c); k++)
            if (!loom_cost_fits(rp->cost, (int)v, (int)k))
                loom_cost_forbid(c, (int)v, (int)k);
    loom_place_opts_t o;
    loom_place_opts_init(&o);
    o.percentile = rp->wf->sla.set ? rp->wf->sla.percentile / 100 : 0.5;
    o.minimize_latency = 1;
    o.mc_samples = -1;
    if (loom_place(rp->g, c, &o, &fast, NULL) == 0)
        t = loom_plan_target_ms(fast);
    loom_plan_destroy(&fast);
    loom_cost_destroy(&c);
    return t;
}

/* Endpoint models are served by whichever worker has the endpoint in its
 * config; loomd's plan of the live workers has no endpoint devices yet
 * (only `loom plan` prices them), so it cannot judge such a run. */
static int uses_endpoint(const loom_workflow_t *wf)
{
    for (size_t i = 0; i < wf->n_models; i++)
        if (wf->models[i].endpoint)
            return 1;
    return 0;
}

/* Admission at submit: the run is planned on the live workers now; a plan
 * that cannot meet the SLA refuses the run (unless allow_miss). The plan is
 * kept and announced (PLANNED) when the run's first task is placed. */
static int admit_planned(void *self, const loom_placement_req_t *req, loom_registry_t *reg, int allow_miss,
                         loom_err_t *err)
{
    policy_t *p = self;
    if (!p || !req->workflow || !req->run_id)
        return 0;
    rplan_t *rp = rplan_new(p, req);
    if (!rp)
        return 0;
    loom_err_t perr = {0};
    int rc = load_forced(rp, req, reg, err);
    if (rc) {
        loom_map_del(p->runs, req->run_id);
        return rc;
    }
    if (plan_cached(p, rp, reg, req->sla_ms, &perr) < 0) {
        loom_map_del(p->runs, req->run_id); /* planned again at the first dispatch */
        if (perr.code != LOOM_EINFEASIBLE || allow_miss || uses_endpoint(req->workflow))
            return 0;
        *err = perr;
        loom_err_hint(err, "pass --allow-sla-miss to queue the run anyway");
        return LOOM_EINFEASIBLE;
    }
    if (allow_miss || plan_meets_sla(rp))
        return 0;
    /* Refuse only what is certain to miss: the plan's latency counting
     * fixed latencies, measured (calibrated) figures and transfers, with
     * uncalibrated roofline estimates (from a worker's quick self-benchmark
     * at registration) taken as 0. A run that misses only by those guesses
     * is admitted; its PLANNED event says it is predicted to miss, and its
     * measured times calibrate the next plans. */
    double certain = rp->shared && rp->shared->certain >= 0 ? rp->shared->certain : certain_ms(rp);
    if (rp->shared)
        rp->shared->certain = certain;
    if (certain <= rp->sla_ms) {
        LOOM_INFO(COMP, "msg=\"admitted: predicted to miss its SLA by uncalibrated estimates only\" run=%s "
                        "predicted_ms=%.0f certain_ms=%.0f sla_ms=%.0f",
                  req->run_id, loom_plan_target_ms(rp->plan), certain, rp->sla_ms);
        return 0;
    }
    char msg[1024];
    double target = loom_plan_mc_target_ms(rp->plan) > loom_plan_target_ms(rp->plan)
                        ? loom_plan_mc_target_ms(rp->plan)
                        : loom_plan_target_ms(rp->plan);
    loom_err_set(err, LOOM_EINFEASIBLE,
                 "no placement on the %zu live workers meets the SLA of %.0f ms: the best predicts p%g %.0f ms "
                 "(%.0f ms from fixed and measured times alone); refused",
                 loom_fleet_entries(rp->fleet), rp->sla_ms, rp->wf->sla.set ? rp->wf->sla.percentile : 50, target,
                 certain);
    summary(rp, NULL, msg, sizeof msg);
    loom_err_detail(err, "%s", msg);
    loom_err_hint(err, "pass --allow-sla-miss to run it anyway, or relax sla.latency_ms");
    loom_map_del(p->runs, req->run_id);
    return LOOM_EINFEASIBLE;
}

/* Whether run rp, lag ms behind its plan at req's step, is to be
 * re-planned for it (why says so; at most 3 times a run, for a new lag of a
 * tenth of its SLA and 50 ms). */
static int lagging(rplan_t *rp, const loom_placement_req_t *req, double lag, char *why, size_t n)
{
    double new_lag = lag - rp->lag_base;
    if (rp->forced || rp->sla_ms <= 0 || new_lag <= 0.1 * rp->sla_ms || new_lag <= 50 || rp->lag_replans >= 3)
        return 0;
    snprintf(why, n, "run is %.0f ms behind its plan at %s", lag, req->step_id);
    rp->lag_replans++;
    return 1;
}

/* Re-plans rp for why (exclude: a worker to leave out, or NULL) with the
 * SLA left after lag, and publishes it (REPLANNED). 0, or -1 when no plan
 * was found (the run goes least-loaded from here; also published). */
static int replan(policy_t *p, rplan_t *rp, const loom_placement_req_t *req, loom_registry_t *reg,
                  const char *exclude, double lag, const char *why)
{
    char msg[1024], ex[128];
    loom_err_t err = {0};
    snprintf(ex, sizeof ex, "%s", exclude ? exclude : "");
    double sla = req->sla_ms > 0 ? req->sla_ms - (lag > 0 ? lag : 0) : 0;
    if (sla < 0)
        sla = 1;
    if (plan_run(p, rp, reg, exclude ? ex : NULL, sla, &err) < 0) {
        snprintf(msg, sizeof msg, "%s; re-plan failed (%s): least-loaded placement", why, err.msg);
        note(req, rp, 1, msg);
        rplan_drop_plan(rp);
        return -1;
    }
    rp->lag_base = lag > 0 ? lag : 0;
    summary(rp, why, msg, sizeof msg);
    lowered(req, rp, msg, sizeof msg);
    note(req, rp, 1, msg);
    return 0;
}

/* Whether rp's plan puts every node on one device: its module is then that
 * device's one function, no transfers, so dispatch needs nothing from it
 * and its lowering can wait until the first tasks are out (dispatched). */
static int one_device(const rplan_t *rp)
{
    if (rp->forced)
        return 0;
    for (size_t v = 1; v < loom_graph_nodes(rp->g); v++)
        if (loom_plan_device(rp->plan, (int)v) != loom_plan_device(rp->plan, 0))
            return 0;
    return 1;
}

static loom_worker_rec_t *pick_planned(void *self, const loom_placement_req_t *req, loom_registry_t *reg,
                                       int *never)
{
    policy_t *p = self;
    *never = 0;
    if (!p || !req->workflow || !req->run_id)
        return fallback(req, reg, never);
    rplan_t *rp = loom_map_get(p->runs, req->run_id);
    char msg[1024];
    loom_err_t err = {0};
    if (!rp) {
        if (!(rp = rplan_new(p, req)))
            return fallback(req, reg, never);
        if (load_forced(rp, req, reg, &err) != 0 || plan_cached(p, rp, reg, req->sla_ms, &err) < 0) {
            snprintf(msg, sizeof msg, "not planned (%s): least-loaded placement", err.msg);
            note(req, rp, 0, msg);
            rp->announced = 1;
            rplan_drop_plan(rp);
        }
    }
    if (rp->plan && !rp->announced && one_device(rp) && req->run_id && strlen(req->run_id) < sizeof *p->pending) {
        if (p->npending == p->cappending) { /* announced in dispatched() */
            size_t ncap = p->cappending ? 2 * p->cappending : 16;
            void *np = realloc(p->pending, ncap * sizeof *p->pending);
            if (np) {
                p->pending = np;
                p->cappending = ncap;
            }
        }
        if (p->npending < p->cappending) {
            snprintf(p->pending[p->npending++], sizeof *p->pending, "%s", req->run_id);
            p->note_fn = req->note;
            p->note_ud = req->note_ud;
            rp->announced = 1;
        }
    }
    if (rp->plan && !rp->announced) {
        announce(req, rp, NULL);
        rp->announced = 1;
    }
    if (!rp->plan)
        return fallback(req, reg, never);
    int v = node_for_step(rp, req->step_id);
    if (v < 0)
        return fallback(req, reg, never);
    if (strcmp(req->op, "llm.prefill") == 0 && step_partner(rp, v) >= 0) /* a split generate's prefill */
        v = step_partner(rp, v);
    const char *wid = node_device(rp, v);
    loom_worker_rec_t *w = loom_registry_by_id(reg, wid);
    char why[256] = "";
    if (!w || w->state != LOOM_WORKER_READY || !loom_worker_runs(w, req->op))
        snprintf(why, sizeof why, "worker %s planned for %s is %s", wid, req->step_id,
                 !w ? "gone" : w->state == LOOM_WORKER_LOST ? "lost" : w->state == LOOM_WORKER_DRAINING ? "draining"
                                                                                         : "unable to run it");
    double lag = req->elapsed_ms - loom_plan_start_ms(rp->plan, v);
    if (!why[0])
        lagging(rp, req, lag, why, sizeof why);
    if (why[0]) {
        if (replan(p, rp, req, reg, w && w->state == LOOM_WORKER_READY ? NULL : wid, lag, why) != 0)
            return fallback(req, reg, never);
        v = node_for_step(rp, req->step_id);
        if (v < 0)
            return fallback(req, reg, never);
        w = planned_w(rp, v, reg);
        if (!w || w->state != LOOM_WORKER_READY || !loom_worker_runs(w, req->op))
            return fallback(req, reg, never);
    }
    w = choose(rp, v, w, req, reg);
    loom_worker_rec_t *pw = req->n_prefix_keys && !kv_part(rp, v, req) ? prefix_pick(rp, v, w, req, reg) : w;
    if (pw && req->why && req->why->reason[0]) { /* placed by prefix */
        note_inputs(rp, v, pw, 1, req->why);
        note_ran(rp, v, pw);
        return pw;
    }
    if (w) {
        int part = kv_part(rp, v, req);
        explain(rp, v, w, req->why, w != planned_w(rp, v, reg), part);
        if (req->why)
            note_inputs(rp, v, w, !part, req->why);
        note_ran(rp, v, w);
    }
    return w; /* NULL: every capable worker is full; the task waits in loomd */
}

/* Worker-side chaining (placement.h, colocated): a successor follows its
 * predecessor onto w when the plan puts both steps on one device, so the
 * data edge between them stays on that worker; w may differ from that
 * device when load moved the predecessor (choose), and then only if the
 * plan's cost model lets the successor run on w. Runs or steps the plan
 * does not cover follow least-loaded's rule: the successor follows. */
static int colocated(void *self, const loom_placement_req_t *req, const char *pred_step_id,
                     const loom_worker_rec_t *w, loom_registry_t *reg)
{
    policy_t *p = self;
    rplan_t *rp = p && req->run_id ? loom_map_get(p->runs, req->run_id) : NULL;
    if (!rp || !rp->plan)
        return 1;
    int v = node_for_step(rp, req->step_id), u = node_for_step(rp, pred_step_id);
    if (v < 0 || u < 0)
        return 1;
    if (strcmp(node_device(rp, v), node_device(rp, u)) != 0)
        return 0;
    int k = loom_fleet_find(rp->fleet, w->id);
    if (k < 0 || !loom_cost_fits(rp->cost, v, k))
        return 0;
    explain(rp, v, w, req->why, w != planned_w(rp, v, reg), 0);
    if (req->why)
        note_inputs(rp, v, w, 1, req->why);
    note_ran(rp, v, w);
    return 1;
}

/* The round's tasks are out (placement.h, dispatched): the one-device
 * plans made for them (one_device) are lowered to their module (MLIR,
 * ~30 us a node) and announced (PLANNED) now, so a long chain's first
 * tasks do not wait for that. */
static void dispatched(void *self)
{
    policy_t *p = self;
    for (size_t i = 0; p && i < p->npending; i++) {
        rplan_t *rp = loom_map_get(p->runs, p->pending[i]);
        if (!rp || !rp->plan)
            continue;
        char instead[256];
        loom_placement_req_t req = {.run_id = p->pending[i], .note = p->note_fn, .note_ud = p->note_ud};
        size_t nodes = loom_graph_nodes(rp->g);
        if (nodes > ONE_DEVICE_LOWER_MAX) /* its module would serve nothing (one_device) */
            snprintf(instead, sizeof instead, "; not lowered: %zu nodes on one device (a module over "
                     "the %d KiB a run's events keep; dispatch needs none for one device)", nodes,
                     MAX_MODULE_TEXT >> 10);
        announce(&req, rp, nodes > ONE_DEVICE_LOWER_MAX ? instead : NULL);
    }
    if (p)
        p->npending = 0;
}

/* A task sent ahead became ready (placement.h, chained_ready): the run's
 * lag is checked as pick checks it, and a run behind its plan re-planned
 * (the task itself already runs where it was sent). */
static void chained_ready(void *self, const loom_placement_req_t *req, loom_registry_t *reg)
{
    policy_t *p = self;
    rplan_t *rp = p && req->run_id ? loom_map_get(p->runs, req->run_id) : NULL;
    int v = rp && rp->plan ? node_for_step(rp, req->step_id) : -1;
    if (v < 0)
        return;
    char why[256];
    double lag = req->elapsed_ms - loom_plan_start_ms(rp->plan, v);
    if (lagging(rp, req, lag, why, sizeof why))
        replan(p, rp, req, reg, NULL, lag, why);
}

/* A calibration figure plans use (calib_t.used) changed: the plan cache's
 * signature of what it concerns moves on (cache_sig). Key "O\x1fworker\x1fop"
 * concerns every workflow when calib_profile uses it (device ops);
 * "S\x1fworker\x1fworkflow\x1fstep" only that workflow's plans. */
static void calib_changed(policy_t *p, const char *key)
{
    const char *f2 = strchr(key, '\x1f');
    f2 = f2 ? strchr(f2 + 1, '\x1f') : NULL;
    if (!f2)
        return;
    f2++;
    if (key[0] == 'O') {
        loom_gop_t g[2];
        for (int i = 0, n = gops_of(f2, g); i < n; i++)
            if (per_op_calibration(g[i])) {
                p->ops_gen++;
                return;
            }
        return;
    }
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(f2, "\x1f"), f2);
    uint64_t *g = loom_map_get(p->wf_gen, name);
    if (!g && (!(g = calloc(1, sizeof *g)) || loom_map_put(p->wf_gen, name, g) != 0)) {
        free(g);
        p->ops_gen++; /* cannot tell this workflow apart: move every signature on */
        return;
    }
    (*g)++;
}

/* Calibration: measured / uncalibrated model, per (worker, step of the
 * workflow) and per (worker, op), smoothed; later plans use it. */
static void calib_update(policy_t *p, const char *key, double ratio, double model_ms)
{
    calib_t *c = loom_map_get(p->calib, key);
    if (!c) {
        if (loom_map_len(p->calib) >= MAX_CALIB)
            return;
        if (!(c = calloc(1, sizeof *c)) || loom_map_put(p->calib, key, c) != 0) {
            free(c);
            return;
        }
    }
    c->ratio = c->n ? (1 - CALIB_ALPHA) * c->ratio + CALIB_ALPHA * ratio : ratio;
    c->n++;
    double used = c->used > 0 ? c->used : 1; /* 0: not used yet, plans take the model as it is */
    if ((c->ratio > used * CALIB_BAND || c->ratio < used / CALIB_BAND) &&
        fabs(c->ratio - used) * model_ms >= CALIB_MIN_MS) {
        c->used = c->ratio;
        calib_changed(p, key);
    }
}

static void observe(void *self, const char *run_id, const char *step_id, const char *op,
                    const loom_worker_rec_t *w, double predicted_ms, double measured_ms)
{
    policy_t *p = self;
    rplan_t *rp = p && run_id ? loom_map_get(p->runs, run_id) : NULL;
    if (!rp || !rp->plan || !(predicted_ms > 0) || !(measured_ms > 0))
        return;
    int v = node_for_step(rp, step_id);
    if (v < 0)
        return;
    /* predicted_ms included the scale this plan used for the step on w */
    const loom_gnode_t *nd = loom_graph_node(rp->g, v);
    const loom_measure_t *m = loom_profile_op(rp->prof, nd->op, w->id, nd->step);
    double model = predicted_ms / (m && m->scale > 0 ? m->scale : 1);
    double ratio = measured_ms / model;
    if (ratio < 1e-4)
        ratio = 1e-4;
    if (ratio > 1e4)
        ratio = 1e4;
    char key[512];
    snprintf(key, sizeof key, "S\x1f%s\x1f%s\x1f%s", w->id, rp->wf->name, step_id);
    calib_update(p, key, ratio, model);
    snprintf(key, sizeof key, "O\x1f%s\x1f%s", w->id, op);
    calib_update(p, key, ratio, model);
}

/* A generate step whose prefill and decode the module (or, before it is
 * lowered, the plan) puts on different workers: decompose-llm made it
 * llm.prefill + loom.kv.transfer + llm.decode. */
static int split_kv(void *self, const char *run_id, const char *step_id)
{
    policy_t *p = self;
    rplan_t *rp = p && run_id ? loom_map_get(p->runs, run_id) : NULL;
    int v = rp && rp->plan ? node_for_step(rp, step_id) : -1;
    int u = v >= 0 ? step_partner(rp, v) : -1;
    return u >= 0 && strcmp(node_device(rp, u), node_device(rp, v)) != 0;
}

static void run_done(void *self, const char *run_id)
{
    policy_t *p = self;
    if (p && run_id)
        loom_map_del(p->runs, run_id);
}

static void destroy(void *self)
{
    policy_t *p = self;
    if (!p)
        return;
    loom_map_destroy(&p->runs);
    loom_map_destroy(&p->cache); /* after the runs: they hold references to its entries */
    loom_map_destroy(&p->calib);
    loom_map_destroy(&p->wf_gen);
    free(p->pending);
    free(p);
}

loom_placement_t loom_placement_planner(void)
{
    policy_t *p = calloc(1, sizeof *p);
    if (p && (!(p->runs = loom_map_new(rplan_free)) || !(p->calib = loom_map_new(free)) ||
              !(p->wf_gen = loom_map_new(free)) || !(p->cache = loom_map_new(cplan_unref)))) {
        loom_map_destroy(&p->runs);
        loom_map_destroy(&p->calib);
        loom_map_destroy(&p->wf_gen);
        free(p);
        p = NULL;
    }
    return (loom_placement_t){.name = "planner", .pick = pick_planned, .destroy = destroy, .run_done = run_done,
                              .admit = admit_planned, .observe = observe, .split_kv = split_kv,
                              .colocated = colocated, .chained_ready = chained_ready,
                              .dispatched = dispatched, .self = p};
}

int loom_placement_plan_cache_stats(const loom_placement_t *pl, loom_placement_plan_cache_stats_t *out)
{
    memset(out, 0, sizeof *out);
    const policy_t *p = pl && pl->destroy == destroy ? pl->self : NULL;
    if (!p)
        return -1;
    *out = p->cstats;
    out->entries = loom_map_len(p->cache);
    return 0;
}

/* ---- the Plan RPC ------------------------------------------------------- */

void loom_placement_plan_free(struct Loom__V1__Plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_placements; i++) {
        Loom__V1__Placement *pl = p->placements[i];
        if (!pl)
            continue;
        free(pl->step_id);
        free(pl->op);
        free(pl->device_model);
        free(pl->worker_id);
        free(pl->target);
        free(pl);
    }
    free(p->placements);
    for (size_t i = 0; i < p->n_notes; i++)
        free(p->notes[i]);
    free(p->notes);
    if (p->module_mlir && p->module_mlir != protobuf_c_empty_string)
        free(p->module_mlir);
    free(p);
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

/* The Plan message for rp (caller frees with loom_placement_plan_free);
 * NULL on OOM. lead starts the first note. */
static Loom__V1__Plan *plan_pb(const rplan_t *rp, int live, const char *lead, const loom_decompose_notes_t *notes)
{
    Loom__V1__Plan *pb = calloc(1, sizeof *pb);
    size_t n = loom_graph_nodes(rp->g);
    if (pb)
        loom__v1__plan__init(pb);
    if (!pb || !(pb->placements = calloc(n + 1, sizeof *pb->placements)) ||
        !(pb->notes = calloc((notes ? notes->len : 0) + 2, sizeof *pb->notes))) {
        loom_placement_plan_free(pb);
        return NULL;
    }
    if (rp->module && !(pb->module_mlir = strdup(rp->module)))
        pb->module_mlir = (char *)protobuf_c_empty_string;
    const loom_catalog_t *cat = loom_fleet_catalog(rp->fleet);
    for (size_t v = 0; v < n; v++) {
        const loom_gnode_t *nd = loom_graph_node(rp->g, (int)v);
        int k = loom_plan_device(rp->plan, (int)v);
        const loom_devclass_t *dc = loom_catalog_class(cat, loom_fleet_entry(rp->fleet, k)->cls);
        Loom__V1__Placement *pl = calloc(1, sizeof *pl);
        if (!pl) {
            loom_placement_plan_free(pb);
            return NULL;
        }
        loom__v1__placement__init(pl);
        pb->placements[pb->n_placements++] = pl;
        pl->step_id = dup_or_empty(nd->name);
        for (char *c = pl->step_id; *c; c++)
            if (*c == '.')
                *c = '/';
        pl->op = dup_or_empty(loom_gop_name(nd->op));
        pl->device_kind = !strcmp(dc->kind, "gpu")   ? LOOM__V1__DEVICE_KIND__DEVICE_KIND_GPU
                          : !strcmp(dc->kind, "npu") ? LOOM__V1__DEVICE_KIND__DEVICE_KIND_NPU
                                                     : LOOM__V1__DEVICE_KIND__DEVICE_KIND_CPU;
        pl->device_model = dup_or_empty(live ? dc->vendor : dc->name);
        pl->worker_id = dup_or_empty(live ? dc->name : "");
        pl->predicted_start_ms = loom_plan_start_ms(rp->plan, (int)v);
        pl->predicted_ms = loom_cost_ms(rp->cost, (int)v, k);
        pl->predicted_cost_usd = nd->prob * nd->iters_mean * loom_cost_usd(rp->cost, (int)v, k);
        pl->on_critical_path = loom_plan_critical(rp->plan, (int)v);
        pl->target = dup_or_empty("");
        if (!pl->step_id || !pl->op || !pl->device_model || !pl->worker_id || !pl->target) {
            loom_placement_plan_free(pb);
            return NULL;
        }
    }
    pb->predicted_latency_ms = loom_plan_target_ms(rp->plan);
    pb->predicted_cost_usd = loom_plan_cost_usd(rp->plan);
    double sla = rp->sla_ms;
    pb->sla_latency_ms = sla;
    pb->meets_sla = plan_meets_sla(rp);
    pb->objective = rp->wf->sla.set && rp->wf->sla.objective == LOOM_WF_OBJECTIVE_LATENCY ? 2 : 1;
    pb->version = rp->version;
    char msg[1024];
    summary(rp, lead, msg, sizeof msg);
    if ((pb->notes[pb->n_notes] = strdup(msg)))
        pb->n_notes++;
    for (size_t i = 0; notes && i < notes->len; i++)
        if ((pb->notes[pb->n_notes] = strdup(notes->items[i])))
            pb->n_notes++;
    return pb;
}

int loom_placement_plan_request(loom_registry_t *reg, const char *yaml, const char *name, double sla_ms,
                                int objective, const char *fleet_yaml, struct Loom__V1__Plan **out,
                                loom_err_t *err)
{
    *out = NULL;
    if (!yaml || !*yaml)
        return loom_err_set(err, LOOM_EINVAL, "workflow_yaml is empty");
    loom_diags_t d = LOOM_DIAGS_INIT;
    loom_workflow_t *wf = NULL;
    int rc = loom_workflow_parse(name && *name ? name : "workflow.yaml", yaml, strlen(yaml), &wf, &d);
    if (rc < 0) {
        if (d.len)
            *err = d.items[0];
        else
            loom_err_set(err, rc, "invalid workflow");
        loom_diags_free(&d);
        return rc < 0 ? rc : LOOM_EPARSE;
    }
    loom_diags_free(&d);
    rplan_t rp = {.wf = wf};
    loom_decompose_notes_t notes = {0};
    int live = !fleet_yaml || !*fleet_yaml;
    double sla = sla_ms > 0 ? sla_ms : wf->sla.set ? (double)wf->sla.latency_ms : 0;
    if ((rc = loom_decompose(wf, &rp.g, &notes, err)) < 0)
        goto done;
    if (live) {
        if ((rc = plan_run(NULL, &rp, reg, NULL, sla, err)) < 0)
            goto done;
    } else {
        rp.fleet = loom_fleet_parse("request-fleet.yaml", fleet_yaml, strlen(fleet_yaml), NULL, err);
        if (!rp.fleet) {
            rc = err->code ? err->code : LOOM_EPARSE;
            goto done;
        }
        rp.cost = loom_cost_new(rp.g, rp.fleet, NULL, err);
        if (!rp.cost) {
            rc = err->code ? err->code : LOOM_ENOMEM;
            goto done;
        }
    }
    if (!rp.plan || objective) {
        loom_place_opts_t o;
        loom_place_opts_init(&o);
        o.sla_ms = sla;
        o.percentile = wf->sla.set ? wf->sla.percentile / 100 : 0.5;
        o.minimize_latency = objective == 2 || (objective == 0 && wf->sla.set &&
                                                 wf->sla.objective == LOOM_WF_OBJECTIVE_LATENCY);
        loom_plan_destroy(&rp.plan);
        if ((rc = loom_place(rp.g, rp.cost, &o, &rp.plan, err)) < 0)
            goto done;
    }
    rp.version = 1;
    rp.sla_ms = sla;
    Loom__V1__Plan *pb = plan_pb(&rp, live, live ? "live workers" : "fleet from the request", &notes);
    if (!pb) {
        rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto done;
    }
    if (objective)
        pb->objective = objective;
    *out = pb;
    rc = 0;
done:
    loom_decompose_notes_free(&notes);
    rplan_free_parts(&rp);
    loom_workflow_destroy(&wf);
    return rc;
}

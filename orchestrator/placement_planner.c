/* placement_planner.c — the planner's placement policy for loomd (see
 * placement.h). A run is planned on the first dispatch of one of its
 * tasks: the live registry becomes a fleet (one device class per ready
 * worker, from its measured profile and price), the workflow is decomposed
 * and placed (planner/place.h) with the run's SLA, and each workflow step
 * is sent to the worker its granular ops were placed on (llm.generate: the
 * decode's). The run is re-planned, with a REPLANNED event saying why,
 * when a planned worker is gone, or when the run falls behind its plan at
 * a step by more than a tenth of its SLA (the re-plan then gets the SLA
 * minus the lag). Steps without a plan go to the least-loaded worker. */
#include "orchestrator/placement.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/map.h"
#include "planner/catalog.h"
#include "planner/cost.h"
#include "planner/decompose.h"
#include "planner/fleet.h"
#include "planner/graph.h"
#include "planner/place.h"
#include "planner/workflow.h"
#include "loom/v1/rpc.pb-c.h"

#define COMP "placement"
#define MAX_PLANS 4096 /* plans kept for runs that never reported run_done */

typedef struct rplan {
    char run_id[32];
    const loom_workflow_t *wf;
    loom_graph_t *g;
    loom_catalog_t *cat;
    loom_fleet_t *fleet;
    loom_cost_t *cost;
    loom_plan_t *plan;
    unsigned version;
    double sla_ms;       /* SLA the current plan was made for */
    int lag_replans;
    double lag_base;     /* lag already absorbed by the current plan (ms) */
    uint64_t created;
} rplan_t;

typedef struct {
    loom_map_t *runs; /* run id -> rplan_t */
} policy_t;

/* Drops the plan and the fleet it was made on (keeps the graph). */
static void rplan_drop_plan(rplan_t *rp)
{
    loom_plan_destroy(&rp->plan);
    loom_cost_destroy(&rp->cost);
    loom_fleet_destroy(&rp->fleet);
    loom_catalog_destroy(&rp->cat);
}

static void rplan_free_parts(rplan_t *rp)
{
    rplan_drop_plan(rp);
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

/* The op name of workflow step `id` (searched in loop bodies too). */
static const char *step_op(const loom_wf_graph_t *g, const char *id)
{
    for (size_t i = 0; i < g->n_steps; i++) {
        const loom_wf_step_t *s = &g->steps[i];
        if (strcmp(s->id, id) == 0)
            return loom_op_kind_name(s->op);
        if (s->body) {
            const char *op = step_op(s->body, id);
            if (op)
                return op;
        }
    }
    return NULL;
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

/* (Re)plans rp against the registry. Returns 0 or a negative LOOM_E*. */
static int plan_run(rplan_t *rp, loom_registry_t *reg, const char *exclude, double sla_ms, loom_err_t *err)
{
    rplan_drop_plan(rp);
    if (!rp->g && loom_decompose(rp->wf, &rp->g, NULL, err) < 0)
        return err->code ? err->code : LOOM_EINVAL;
    if (!build_fleet(rp, reg, exclude))
        return loom_err_set(err, LOOM_EUNAVAIL, "no ready worker to plan on");
    rp->cost = loom_cost_new(rp->g, rp->fleet, NULL, err);
    if (!rp->cost)
        return err->code ? err->code : LOOM_ENOMEM;
    /* A worker can only run ops it lists. A loop's own nodes (begin/end:
     * iteration control) run in loomd and fit anywhere. */
    for (size_t v = 0; v < loom_graph_nodes(rp->g); v++) {
        const char *op = step_op(&rp->wf->graph, loom_graph_node(rp->g, (int)v)->step);
        if (op && strcmp(op, loom_op_kind_name(LOOM_OP_LOOP)) == 0)
            continue;
        for (size_t k = 0; k < loom_fleet_entries(rp->fleet); k++) {
            loom_worker_rec_t *w = loom_registry_by_id(reg, loom_cost_device_name(rp->cost, (int)k));
            if (!w || (op && !loom_worker_runs(w, op)))
                loom_cost_forbid(rp->cost, (int)v, (int)k);
        }
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

static void summary(const rplan_t *rp, const char *why, char *buf, size_t n)
{
    size_t len = (size_t)snprintf(buf, n, "%s%splan v%u on %zu live workers: ", why ? why : "", why ? "; " : "",
                                  rp->version, loom_fleet_entries(rp->fleet));
    for (size_t v = 0; v < loom_graph_nodes(rp->g) && len < n; v++) {
        const loom_gnode_t *nd = loom_graph_node(rp->g, (int)v);
        len += (size_t)snprintf(buf + len, n - len, "%s%s->%s", v ? ", " : "", nd->name,
                                loom_cost_device_name(rp->cost, loom_plan_device(rp->plan, (int)v)));
    }
    if (len < n)
        snprintf(buf + len, n - len, "; predicted p%g %.0f ms, $%.3g/run, %s SLA %.0f ms (%s)",
                 rp->wf->sla.set ? rp->wf->sla.percentile : 50, loom_plan_target_ms(rp->plan),
                 loom_plan_cost_usd(rp->plan), loom_plan_feasible(rp->plan) ? "meets" : "MISSES", rp->sla_ms,
                 loom_plan_method(rp->plan));
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
    if (loom_map_len(p->runs) < MAX_PLANS)
        return;
    size_t it = 0;
    const char *k;
    void *v;
    const char *oldest = NULL;
    uint64_t t = UINT64_MAX;
    while (loom_map_next(p->runs, &it, &k, &v))
        if (((rplan_t *)v)->created < t) {
            t = ((rplan_t *)v)->created;
            oldest = k;
        }
    if (oldest) {
        char key[32];
        snprintf(key, sizeof key, "%s", oldest);
        loom_map_del(p->runs, key);
    }
}

static Loom__V1__Plan *plan_pb(const rplan_t *rp, int live, const char *lead, const loom_decompose_notes_t *notes);
void loom_placement_plan_free(struct Loom__V1__Plan *p);

/* loomd links the MLIR lowering (mlir-lowering/plan_lower.c, weak here so
 * other programs using this library need no MLIR): each plan is lowered to
 * per-device functions, cached by the plan's hash, and the PLANNED message
 * says so. Best effort: a plan that does not lower is still followed. */
int loom_plan_lower(const char *run_id, const loom_workflow_t *wf, const loom_graph_t *g, const loom_cost_t *c,
                    const loom_plan_t *plan, char *summary, size_t n, loom_err_t *err) __attribute__((weak));

static void lowered(const loom_placement_req_t *req, const rplan_t *rp, char *msg, size_t n)
{
    char s[256];
    loom_err_t e = {0};
    size_t len = strlen(msg);
    if (!loom_plan_lower || !rp->plan)
        return;
    if (loom_plan_lower(req->run_id, rp->wf, rp->g, rp->cost, rp->plan, s, sizeof s, &e) == 0)
        snprintf(msg + len, n > len ? n - len : 0, "; %s", s);
    else
        LOOM_WARN(COMP, "msg=\"plan not lowered\" run=%s error=\"%s\"", req->run_id, e.msg);
}

static void note(const loom_placement_req_t *req, const rplan_t *rp, int replanned, const char *msg)
{
    if (req->note) {
        Loom__V1__Plan *pb = rp && rp->plan ? plan_pb(rp, 1, NULL, NULL) : NULL;
        req->note(req->note_ud, req->run_id, replanned, msg, pb);
        loom_placement_plan_free(pb);
    }
    LOOM_INFO(COMP, "msg=\"%s\" run=%s detail=\"%.300s\"", replanned ? "re-planned" : "planned", req->run_id, msg);
}

/* Fills why (may be NULL) with the plan's prediction for node v on the
 * worker it chose, and its reason: the chosen worker and its class, and
 * the runner-up with what the run would cost there. */
static void explain(const rplan_t *rp, int v, const loom_worker_rec_t *w, loom_placement_why_t *why)
{
    if (!why)
        return;
    int k = loom_plan_device(rp->plan, v);
    why->predicted_ms = loom_cost_ms(rp->cost, v, k);
    why->predicted_cost = loom_cost_usd(rp->cost, v, k);
    double ru_cost = 0, ru_ms = 0;
    int ru_ok = 0;
    int ru = loom_plan_runner_up(rp->plan, v, &ru_cost, &ru_ms, &ru_ok);
    int n = snprintf(why->reason, sizeof why->reason,
                     "planned: %s worker %s (%s, $%.4g/h), predicted %.1f ms $%.3g; plan $%.3g/run %.0f ms",
                     w->kind, w->id, w->model[0] ? w->model : w->kind, w->price_per_hour, why->predicted_ms,
                     why->predicted_cost, loom_plan_cost_usd(rp->plan), loom_plan_target_ms(rp->plan));
    if (n <= 0 || (size_t)n >= sizeof why->reason)
        return;
    if (ru >= 0)
        snprintf(why->reason + n, sizeof why->reason - (size_t)n, "; runner-up %s: $%.3g/run %.0f ms%s",
                 loom_cost_device_name(rp->cost, ru), ru_cost, ru_ms, ru_ok ? "" : " (misses SLA)");
    else
        snprintf(why->reason + n, sizeof why->reason - (size_t)n, "; no runner-up");
}

static loom_worker_rec_t *fallback(const loom_placement_req_t *req, loom_registry_t *reg, int *never)
{
    loom_placement_t ll = loom_placement_least_loaded();
    return ll.pick(NULL, req, reg, never);
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
        evict_some(p);
        rp = calloc(1, sizeof *rp);
        if (!rp || loom_map_put(p->runs, req->run_id, rp) != 0) {
            free(rp);
            return fallback(req, reg, never);
        }
        snprintf(rp->run_id, sizeof rp->run_id, "%s", req->run_id);
        rp->wf = req->workflow;
        rp->created = loom_clock_ms();
        if (plan_run(rp, reg, NULL, req->sla_ms, &err) < 0) {
            snprintf(msg, sizeof msg, "not planned (%s): least-loaded placement", err.msg);
            note(req, rp, 0, msg);
            rplan_drop_plan(rp);
        } else {
            summary(rp, NULL, msg, sizeof msg);
            lowered(req, rp, msg, sizeof msg);
            note(req, rp, 0, msg);
        }
    }
    if (!rp->plan)
        return fallback(req, reg, never);
    int v = node_for_step(rp, req->step_id);
    if (v < 0)
        return fallback(req, reg, never);
    const char *wid = loom_cost_device_name(rp->cost, loom_plan_device(rp->plan, v));
    loom_worker_rec_t *w = loom_registry_by_id(reg, wid);
    char why[256] = "";
    if (!w || w->state != LOOM_WORKER_READY || !loom_worker_runs(w, req->op))
        snprintf(why, sizeof why, "worker %s planned for %s is %s", wid, req->step_id,
                 !w ? "gone" : w->state == LOOM_WORKER_LOST ? "lost" : w->state == LOOM_WORKER_DRAINING ? "draining"
                                                                                         : "unable to run it");
    double lag = req->elapsed_ms - loom_plan_start_ms(rp->plan, v);
    double new_lag = lag - rp->lag_base;
    if (!why[0] && rp->sla_ms > 0 && new_lag > 0.1 * rp->sla_ms && new_lag > 50 && rp->lag_replans < 3) {
        snprintf(why, sizeof why, "run is %.0f ms behind its plan at %s", lag, req->step_id);
        rp->lag_replans++;
    }
    if (why[0]) {
        char exclude[128];
        snprintf(exclude, sizeof exclude, "%s", wid);
        double sla = req->sla_ms > 0 ? req->sla_ms - (lag > 0 ? lag : 0) : 0;
        if (sla < 0)
            sla = 1;
        if (plan_run(rp, reg, w && w->state == LOOM_WORKER_READY ? NULL : exclude, sla, &err) < 0) {
            snprintf(msg, sizeof msg, "%s; re-plan failed (%s): least-loaded placement", why, err.msg);
            note(req, rp, 1, msg);
            rplan_drop_plan(rp);
            return fallback(req, reg, never);
        }
        rp->lag_base = lag > 0 ? lag : 0;
        summary(rp, why, msg, sizeof msg);
        lowered(req, rp, msg, sizeof msg);
        note(req, rp, 1, msg);
        v = node_for_step(rp, req->step_id);
        if (v < 0)
            return fallback(req, reg, never);
        w = loom_registry_by_id(reg, loom_cost_device_name(rp->cost, loom_plan_device(rp->plan, v)));
        if (!w || w->state != LOOM_WORKER_READY || !loom_worker_runs(w, req->op))
            return fallback(req, reg, never);
    }
    if (w->inflight >= w->max_inflight)
        return NULL; /* the planned worker is busy: wait for it */
    explain(rp, v, w, req->why);
    return w;
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
    free(p);
}

loom_placement_t loom_placement_planner(void)
{
    policy_t *p = calloc(1, sizeof *p);
    if (p && !(p->runs = loom_map_new(rplan_free))) {
        free(p);
        p = NULL;
    }
    return (loom_placement_t){.name = "planner", .pick = pick_planned, .destroy = destroy, .run_done = run_done,
                              .self = p};
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
    pb->meets_sla = loom_plan_feasible(rp->plan) && !(sla > 0 && loom_plan_mc_target_ms(rp->plan) > sla);
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
        if ((rc = plan_run(&rp, reg, NULL, sla, err)) < 0)
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

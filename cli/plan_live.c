/* plan_live.c — `loom plan FILE --live`: asks loomd to plan the workflow
 * against its live workers (or, with --fleet, a fleet file sent along)
 * through the Plan RPC, without running it; prints the placement. */
#include "cli/cli.h"
#include "cli/runview.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/buf.h"

int loom_cli_plan_live(const char *file, const char *fleet_path, const char *endpoint, double sla_ms, int json);

int loom_cli_plan_live(const char *file, const char *fleet_path, const char *endpoint, double sla_ms, int json)
{
    loom_buf_t wf = LOOM_BUF_INIT, fl = LOOM_BUF_INIT;
    loom_buf_init(&wf, 16u << 20);
    loom_buf_init(&fl, 16u << 20);
    int rc = LOOM_EXIT_FAIL;
    if (loom_buf_read_file(&wf, file) != 0 || (fleet_path && loom_buf_read_file(&fl, fleet_path) != 0)) {
        fprintf(stderr, "loom plan: cannot read %s\n", wf.data ? fleet_path : file);
        goto out;
    }
    endpoint = loom_cli_endpoint(endpoint);
    loom_client_t *c = loom_cli_connect("plan", endpoint);
    if (!c) {
        rc = LOOM_EXIT_SYSTEM;
        goto out;
    }
    Loom__V1__PlanRequest rq = LOOM__V1__PLAN_REQUEST__INIT;
    rq.workflow_yaml = wf.data;
    rq.workflow_name = (char *)file;
    rq.sla_latency_ms = sla_ms;
    rq.fleet_yaml = fleet_path ? fl.data : "";
    Loom__V1__PlanReply *rep = NULL;
    loom_err_t err;
    loom_err_clear(&err);
    int st = loom_client_call(c, LOOM_METHOD_PLAN, (const ProtobufCMessage *)&rq, &loom__v1__plan_reply__descriptor,
                              30000, (ProtobufCMessage **)&rep, &err);
    loom_client_destroy(&c);
    if (st != LOOM_STATUS_OK) {
        rc = loom_cli_rpc_error("plan", endpoint, st, &err);
        goto out;
    }
    const Loom__V1__Plan *p = rep->plan;
    if (!p) {
        fprintf(stderr, "loom plan: loomd sent no plan\n");
        loom_pb_free(rep);
        rc = LOOM_EXIT_SYSTEM;
        goto out;
    }
    if (json) {
        json_t *pl = json_array(), *notes = json_array();
        for (size_t i = 0; i < p->n_placements; i++) {
            const Loom__V1__Placement *x = p->placements[i];
            json_array_append_new(pl, json_pack("{s:s, s:s, s:s, s:s, s:s, s:f, s:f, s:f, s:b}", "step", x->step_id,
                                                "op", x->op, "device_kind", loom_cli_device(x->device_kind),
                                                "device_model", x->device_model, "worker", x->worker_id,
                                                "start_ms", x->predicted_start_ms, "ms", x->predicted_ms, "usd",
                                                x->predicted_cost_usd, "critical", x->on_critical_path));
        }
        for (size_t i = 0; i < p->n_notes; i++)
            json_array_append_new(notes, json_string(p->notes[i]));
        json_t *j = json_pack("{s:s, s:o, s:f, s:f, s:f, s:b, s:o}", "endpoint", endpoint, "placements", pl,
                              "predicted_latency_ms", p->predicted_latency_ms, "predicted_cost_usd",
                              p->predicted_cost_usd, "sla_latency_ms", p->sla_latency_ms, "meets_sla", p->meets_sla,
                              "notes", notes);
        char *s = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
        if (s)
            puts(s);
        free(s);
        json_decref(j);
    } else {
        printf("plan %s on %s by loomd (%s):\n\n  %-28s %-14s %-16s %-5s %10s %10s %12s\n", file,
               fleet_path ? fleet_path : "its live workers", endpoint, "op", "kind", "worker/device", "dev",
               "start ms", "ms", "$");
        for (size_t i = 0; i < p->n_placements; i++) {
            const Loom__V1__Placement *x = p->placements[i];
            printf("  %-28s %-14s %-16s %-5s %10.1f %10.2f %12.4g%s\n", x->step_id, x->op,
                   x->worker_id && *x->worker_id ? x->worker_id : x->device_model, loom_cli_device(x->device_kind),
                   x->predicted_start_ms, x->predicted_ms, x->predicted_cost_usd,
                   x->on_critical_path ? "  critical" : "");
        }
        printf("\npredicted latency %.1f ms, $%.4g per run, SLA %.0f ms: %s\n", p->predicted_latency_ms,
               p->predicted_cost_usd, p->sla_latency_ms, p->meets_sla ? "MEETS SLA" : "MISSES SLA");
        for (size_t i = 0; i < p->n_notes; i++)
            printf("note: %s\n", p->notes[i]);
    }
    rc = p->meets_sla ? LOOM_EXIT_OK : LOOM_EXIT_SLA;
    loom_pb_free(rep);
out:
    loom_buf_free(&wf);
    loom_buf_free(&fl);
    return rc;
}

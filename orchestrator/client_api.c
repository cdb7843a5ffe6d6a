/* client_api.c — loomd's client API (service loom.v1.Loom): Submit, Watch,
 * Get, List, Cancel, ListWorkers, Health. Reads go to the store, so they
 * answer the same for active and finished runs; Submit and Cancel go to
 * the engine. Errors distinguish the caller's problem (INVALID_ARGUMENT,
 * NOT_FOUND) from loomd's (INTERNAL, UNAVAILABLE). */
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/arena.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/sha.h"
#include "common/utf8.h"
#include "common/version.h"
#include "orchestrator/metrics.h"
#include "orchestrator/plan_codec.h"
#include "planner/workflow.h"
#include "orchestrator/server_internal.h"
#include "planner/workflow.h"
#include "mlir-lowering/plan_lower.h"
#include "protocol/methods.h"
#include "protocol/states.h"

#define COMP "loomd"
#define MAX_STEP_OUTPUT (64 * 1024) /* Get truncates step outputs past this */
#define MAX_LABELS 64               /* per run */
#define MAX_LABEL_KEY 63
#define MAX_LABEL_VALUE 1024
#define MAX_LABEL_FILTERS 16

static Loom__V1__DeviceKind device_pb(const char *k)
{
    if (!k)
        return LOOM__V1__DEVICE_KIND__DEVICE_KIND_UNSPECIFIED;
    if (strcmp(k, "gpu") == 0)
        return LOOM__V1__DEVICE_KIND__DEVICE_KIND_GPU;
    if (strcmp(k, "npu") == 0)
        return LOOM__V1__DEVICE_KIND__DEVICE_KIND_NPU;
    return LOOM__V1__DEVICE_KIND__DEVICE_KIND_CPU;
}

static char *adup(loom_arena_t *a, const char *s)
{
    return loom_arena_strdup(a, s ? s : "");
}

/* A store read that failed: the database down or refusing (LOOM_EDB) is
 * UNAVAILABLE and retryable, out of memory RESOURCE_EXHAUSTED; anything
 * else is a fault in loomd: INTERNAL. */
static void reply_store_error(srv_t *s, const loom_origin_t *o, int rc, loom_err_t *err)
{
    err->code = rc == LOOM_EDB || rc == LOOM_ENOMEM ? rc : LOOM_EINTERNAL;
    loom_rpc_reply_err(s->csrv, o, err);
}

/* ---- tenants ---------------------------------------------------------------------------
 * A token's tenant owns the runs it submits; role "user" sees only its
 * tenant's runs, role "admin" (and the static --auth-token) sees all. loomd
 * without tokens has one tenant, "default", and no restriction. */

/* The tenant the caller is restricted to; NULL = every tenant. */
static const char *caller_scope(const loom_msg_t *m)
{
    const loom_principal_t *p = loom_msg_principal(m);
    return p && strcmp(p->role, "admin") != 0 ? p->tenant : NULL;
}

static int on_tenant(void *ud, const loom_store_run_t *r)
{
    snprintf(ud, 65, "%s", r->tenant ? r->tenant : "default");
    return 0;
}

/* Unpacks m as a desc message; on failure answers with the reason and
 * returns NULL. The caller frees the message with loom_pb_free. */
static ProtobufCMessage *request(srv_t *s, loom_msg_t *m, const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *rq = NULL;
    loom_err_t err;
    if (loom_msg_unpack(m, desc, NULL, &rq, &err) == LOOM_STATUS_OK)
        return rq;
    loom_rpc_reply_err(s->csrv, loom_msg_origin(m), &err);
    return NULL;
}

/* 0 when the caller may read or cancel run_id; otherwise answers
 * INVALID_ARGUMENT (empty id: the caller's mistake, not an unknown run),
 * NOT_FOUND or PERMISSION_DENIED (logged) and returns -1. */
static int check_run_access(srv_t *s, const loom_msg_t *m, const char *run_id)
{
    const loom_origin_t *o = loom_msg_origin(m);
    if (!run_id || !run_id[0]) {
        loom_rpc_reply_status(s->csrv, o, LOOM_STATUS_INVALID_ARGUMENT, "run_id is required");
        return -1;
    }
    const char *scope = caller_scope(m);
    if (!scope)
        return 0;
    char tenant[65] = "";
    loom_err_t err;
    int rc = loom_store_run_get(s->store, run_id, on_tenant, NULL, tenant, &err);
    if (rc == LOOM_ENOTFOUND) {
        loom_rpc_reply_status(s->csrv, o, LOOM_STATUS_NOT_FOUND, "no run '%s'", run_id);
        return -1;
    }
    if (rc != 0) {
        reply_store_error(s, o, rc, &err);
        return -1;
    }
    if (strcmp(tenant, scope) == 0)
        return 0;
    const loom_principal_t *p = loom_msg_principal(m);
    LOOM_WARN(COMP, "msg=\"request refused: PERMISSION_DENIED\" method=\"%s\" run=%s subject=%s "
                    "tenant=%s run_tenant=%s",
              loom_msg_method(m), run_id, p->subject, p->tenant, tenant);
    loom_rpc_reply_status(s->csrv, o, LOOM_STATUS_PERMISSION_DENIED,
                          "run '%s' belongs to another tenant", run_id);
    return -1;
}

/* ---- per-tenant op limits (loomd --tenant-ops FILE) ---------------------------------- */

/* Lines "tenant: op, op, ..." ('#' comments): that tenant may only submit
 * workflows whose steps (loop bodies included) use those ops; tenants not
 * named are not limited. */
int server_load_tenant_ops(srv_t *s, const char *path, loom_err_t *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return loom_err_set(err, LOOM_EIO, "cannot read --tenant-ops file %s", path);
    if (!(s->tenant_ops = loom_map_new(free))) {
        fclose(f);
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    }
    char line[4096];
    int ln = 0, rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        ln++;
        char *p = line + strspn(line, " \t");
        p[strcspn(p, "\r\n#")] = '\0';
        if (!*p)
            continue;
        char *colon = strchr(p, ':');
        if (!colon) {
            rc = loom_err_set(err, LOOM_EINVAL, "%s:%d: expected 'tenant: op, op, ...'", path, ln);
            break;
        }
        *colon = '\0';
        p[strcspn(p, " \t")] = '\0';
        char *ops = colon + 1 + strspn(colon + 1, " \t");
        char *copy = strdup(ops);
        if (!copy || loom_map_put(s->tenant_ops, p, copy) != 0) {
            free(copy);
            rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
        }
    }
    fclose(f);
    return rc;
}

static int op_listed(const char *list, const char *op)
{
    size_t n = strlen(op);
    for (const char *p = list; *p;) {
        p += strspn(p, ", \t");
        size_t len = strcspn(p, ", \t");
        if (len == n && strncmp(p, op, n) == 0)
            return 1;
        p += len;
    }
    return 0;
}

static const loom_wf_step_t *first_refused(const loom_wf_graph_t *g, const char *allowed)
{
    for (size_t i = 0; i < g->n_steps; i++) {
        const loom_wf_step_t *st = &g->steps[i];
        if (!op_listed(allowed, loom_op_kind_name(st->op)))
            return st;
        const loom_wf_step_t *in = st->body ? first_refused(st->body, allowed) : NULL;
        if (in)
            return in;
    }
    return NULL;
}

/* 0 when the caller's tenant may run every op of the workflow; else
 * answers PERMISSION_DENIED naming the step, the op and the policy. */
static int check_tenant_ops(srv_t *s, const loom_msg_t *m, const char *tenant,
                            const Loom__V1__SubmitRequest *rq)
{
    const char *allowed = s->tenant_ops ? loom_map_get(s->tenant_ops, tenant) : NULL;
    if (!allowed || !rq->workflow_yaml)
        return 0;
    loom_workflow_t *wf = NULL;
    loom_diags_t d = LOOM_DIAGS_INIT;
    const char *name = rq->workflow_name && *rq->workflow_name ? rq->workflow_name : "workflow.yaml";
    int rc = loom_workflow_parse(name, rq->workflow_yaml, strlen(rq->workflow_yaml), &wf, &d);
    loom_diags_free(&d);
    if (rc != 0)
        return 0; /* the engine reports the parse errors */
    const loom_wf_step_t *st = first_refused(&wf->graph, allowed);
    if (st) {
        LOOM_WARN(COMP, "msg=\"request refused: PERMISSION_DENIED\" method=\"%s\" tenant=%s "
                        "step=%s op=%s policy=tenant-ops",
                  loom_msg_method(m), tenant, st->id, loom_op_kind_name(st->op));
        loom_rpc_reply_status(s->csrv, loom_msg_origin(m), LOOM_STATUS_PERMISSION_DENIED,
                              "%s:%d: step '%s': tenant '%s' may not run op '%s' (loomd "
                              "--tenant-ops allows: %s)",
                              name, st->line, st->id, tenant, loom_op_kind_name(st->op), allowed);
    }
    loom_workflow_destroy(&wf);
    return st ? -1 : 0;
}

/* Like adup for text that may come from tools or models (stderr tails,
 * binary outputs): repaired to valid UTF-8, as proto3 strings must be. */
static char *adup_text(loom_arena_t *a, const char *s, size_t n)
{
    if (!s)
        return "";
    if (loom_utf8_valid(s, n))
        return loom_arena_strndup(a, s, n);
    char *fixed = loom_utf8_repair(s, n, NULL);
    char *r = fixed ? loom_arena_strdup(a, fixed) : "";
    free(fixed);
    return r;
}

/* ---- building Run messages from store records ---------------------------------- */

typedef struct {
    loom_arena_t *a;
    Loom__V1__Run *run;      /* Get: the one run */
    Loom__V1__Run **runs;    /* List */
    size_t n, cap;
    Loom__V1__StepStatus **steps;
    size_t nsteps, capsteps;
    const char *yaml, *file;   /* Get: the run's workflow (arena copies) */
} build_t;

/* A run's stored labels (a JSON object of strings) as Metadata, in the
 * arena, without the key skip (may be NULL). */
static Loom__V1__Metadata **labels_pb(loom_arena_t *a, const char *json, const char *skip,
                                      size_t *n)
{
    *n = 0;
    json_t *o = json ? json_loads(json, 0, NULL) : NULL;
    size_t cap = json_is_object(o) ? json_object_size(o) : 0;
    Loom__V1__Metadata **out = cap ? loom_arena_calloc(a, cap, sizeof *out) : NULL;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        Loom__V1__Metadata *md = out ? loom_arena_calloc(a, 1, sizeof *md) : NULL;
        if (!md || !json_is_string(v) || (skip && strcmp(k, skip) == 0))
            continue;
        loom__v1__metadata__init(md);
        md->key = adup(a, k);
        md->value = adup(a, json_string_value(v));
        out[(*n)++] = md;
    }
    json_decref(o);
    return out;
}

static Loom__V1__Run *run_pb(loom_arena_t *a, const loom_store_run_t *r, int full)
{
    Loom__V1__Run *p = loom_arena_calloc(a, 1, sizeof *p);
    loom__v1__run__init(p);
    p->run_id = adup(a, r->id);
    p->workflow_name = adup(a, r->workflow);
    p->state = loom_store_run_state_pb(r->state);
    p->submitted_unix_ms = r->created_ms;
    p->started_unix_ms = r->started_ms;
    p->finished_unix_ms = r->finished_ms;
    p->sla_latency_ms = r->deadline_ms ? (double)(r->deadline_ms - r->created_ms) : 0;
    int64_t end = r->finished_ms ? r->finished_ms : loom_wall_ms();
    p->elapsed_ms = (double)(end - r->created_ms);
    loom_sla_verdict_t sla = loom_sla_verdict(p->state, p->sla_latency_ms, p->elapsed_ms);
    p->sla_met = sla == LOOM_SLA_MET;
    p->sla = (char *)loom_sla_word(sla);
    p->cost_usd = r->cost;
    p->tenant = adup(a, r->tenant ? r->tenant : "default");
    p->labels = labels_pb(a, r->labels_json, NULL, &p->n_labels);
    if (full) {
        p->inputs_json = adup(a, r->inputs_json);
        p->outputs_json = adup_text(a, r->outputs_json, r->outputs_json ? strlen(r->outputs_json) : 0);
    }
    if (r->error && r->error[0]) {
        Loom__V1__Error *e = loom_arena_calloc(a, 1, sizeof *e);
        loom__v1__error__init(e);
        e->code = r->error_code > 0 ? r->error_code
                  : r->state == LOOM_RUN_CANCELLED ? LOOM__V1__STATUS_CODE__CANCELLED
                                                   : LOOM__V1__STATUS_CODE__UNKNOWN;
        e->message = adup_text(a, r->error, strlen(r->error));
        p->error = e;
    }
    return p;
}

static int on_get_run(void *ud, const loom_store_run_t *r)
{
    build_t *b = ud;
    b->run = run_pb(b->a, r, 1);
    b->yaml = r->workflow_yaml ? loom_arena_strdup(b->a, r->workflow_yaml) : NULL;
    b->file = r->workflow_file ? loom_arena_strdup(b->a, r->workflow_file) : NULL;
    return 0;
}

/* A new StepStatus appended to b->steps (NULL on OOM). */
static Loom__V1__StepStatus *add_step(build_t *b)
{
    if (b->nsteps == b->capsteps) {
        size_t ncap = b->capsteps ? b->capsteps * 2 : 16;
        Loom__V1__StepStatus **n = loom_arena_alloc(b->a, ncap * sizeof *n);
        if (!n)
            return NULL;
        if (b->nsteps)
            memcpy(n, b->steps, b->nsteps * sizeof *n);
        b->steps = n;
        b->capsteps = ncap;
    }
    Loom__V1__StepStatus *s = loom_arena_calloc(b->a, 1, sizeof *s);
    if (!s)
        return NULL;
    loom__v1__step_status__init(s);
    b->steps[b->nsteps++] = s;
    return s;
}

static int on_get_task(void *ud, const loom_store_task_t *t)
{
    build_t *b = ud;
    Loom__V1__StepStatus *s = add_step(b);
    if (!s)
        return 1;
    if (t->index > 0)
        s->step_id = loom_arena_sprintf(b->a, "%s#%d", t->step_id, t->index);
    else
        s->step_id = adup(b->a, t->step_id);
    s->op = adup(b->a, t->op);
    s->state = loom_store_task_state_pb(t->state);
    s->attempt = (uint32_t)t->attempt;
    s->worker_id = adup(b->a, t->worker_id);
    s->device_kind = device_pb(t->device);
    s->started_unix_ms = t->started_ms;
    s->finished_unix_ms = t->finished_ms;
    s->cost_usd = t->cost;
    s->reason = adup(b->a, t->reason);
    s->predicted_ms = t->predicted_ms;
    if (t->started_ms)
        s->elapsed_ms = (double)((t->finished_ms ? t->finished_ms : loom_wall_ms()) - t->started_ms);
    if (t->output_json) {
        size_t len = strlen(t->output_json);
        s->output_truncated = len > MAX_STEP_OUTPUT;
        s->output_json = adup_text(b->a, t->output_json, len > MAX_STEP_OUTPUT ? MAX_STEP_OUTPUT : len);
    } else {
        s->output_json = "";
    }
    if (t->error) {
        Loom__V1__Error *e = loom_arena_calloc(b->a, 1, sizeof *e);
        loom__v1__error__init(e);
        e->code = t->error_code > 0 ? t->error_code
                  : t->state == LOOM_TASK_CANCELLED ? LOOM__V1__STATUS_CODE__CANCELLED
                  : t->state == LOOM_TASK_TIMED_OUT ? LOOM__V1__STATUS_CODE__DEADLINE_EXCEEDED
                                                    : LOOM__V1__STATUS_CODE__UNKNOWN;
        e->message = adup_text(b->a, t->error, strlen(t->error));
        s->error = e;
    }
    return 0;
}

static int step_cmp(const void *a, const void *b)
{
    const Loom__V1__StepStatus *x = *(Loom__V1__StepStatus *const *)a;
    const Loom__V1__StepStatus *y = *(Loom__V1__StepStatus *const *)b;
    int64_t sx = x->started_unix_ms ? x->started_unix_ms : INT64_MAX;
    int64_t sy = y->started_unix_ms ? y->started_unix_ms : INT64_MAX;
    if (sx != sy)
        return sx < sy ? -1 : 1;
    return strcmp(x->step_id, y->step_id);
}

/* Get lists every top-level step: those that never started have no store
 * record, so they come from the workflow (PENDING while the run is active,
 * CANCELLED once it ended without running them). */
static void add_unstarted_steps(srv_t *s, build_t *b)
{
    loom_workflow_t *own = NULL;
    const loom_workflow_t *wf = NULL;
    loom_run_t *r = loom_engine_find_run(s->eng, b->run->run_id);
    if (r)
        wf = loom_run_workflow(r);
    else if (b->yaml && loom_workflow_parse(b->file ? b->file : "workflow", b->yaml,
                                            strlen(b->yaml), &own, NULL) == 0)
        wf = own;
    for (size_t i = 0; wf && i < wf->graph.n_steps; i++) {
        const loom_wf_step_t *st = &wf->graph.steps[i];
        size_t n = strlen(st->id), k = 0;
        while (k < b->nsteps && !(strncmp(b->steps[k]->step_id, st->id, n) == 0 &&
                                  strchr("/#[", b->steps[k]->step_id[n])))
            k++;
        if (k < b->nsteps)
            continue;
        Loom__V1__StepStatus *ss = add_step(b);
        if (!ss)
            break;
        ss->step_id = adup(b->a, st->id);
        ss->op = adup(b->a, loom_op_kind_name(st->op));
        ss->state = r ? LOOM__V1__STEP_STATE__STEP_PENDING : LOOM__V1__STEP_STATE__STEP_CANCELLED;
        ss->output_json = "";
    }
    loom_workflow_destroy(&own);
}

/* A Get reply built from at least this many bytes trims the heap after. */
#define GET_TRIM_BYTES ((size_t)4 << 20)

static void rpc_get(srv_t *s, loom_msg_t *m)
{
    const loom_origin_t *o = loom_msg_origin(m);
    Loom__V1__GetRequest *rq =
        (Loom__V1__GetRequest *)request(s, m, &loom__v1__get_request__descriptor);
    if (!rq)
        return;
    loom_err_t err;
    if (check_run_access(s, m, rq->run_id) != 0) {
        loom_pb_free(rq);
        return;
    }
    build_t b = {.a = loom_arena_new(0)};
    int rc = loom_store_run_get(s->store, rq->run_id, on_get_run, on_get_task, &b, &err);
    if (rc != 0 || !b.run) {
        if (rc == LOOM_ENOTFOUND)
            loom_rpc_reply_status(s->csrv, o, LOOM_STATUS_NOT_FOUND, "no run '%s'", rq->run_id);
        else
            reply_store_error(s, o, rc ? rc : loom_err_set(&err, LOOM_EINTERNAL, "store: run '%s' has no record", rq->run_id), &err);
    } else {
        add_unstarted_steps(s, &b);
        qsort(b.steps, b.nsteps, sizeof *b.steps, step_cmp);
        b.run->n_steps = b.nsteps;
        b.run->steps = b.steps;
        if (b.run->cost_usd <= 0) /* a store without the run's total: its tasks' */
            for (size_t i = 0; i < b.nsteps; i++)
                b.run->cost_usd += b.steps[i]->cost_usd;
        Loom__V1__GetReply rep = LOOM__V1__GET_REPLY__INIT;
        rep.run = b.run;
        loom_rpc_reply(s->csrv, o, (const ProtobufCMessage *)&rep, &err);
    }
    /* The reply of a large run (~40 MB for 100k steps) is freed here in one
     * go, and glibc keeps freed heap resident until trimmed: hand it back,
     * as engine_reap_runs does for a run's tasks, so loomd's RSS follows
     * what is live (orchestrator/README.md, Store). */
    size_t built = loom_arena_used(b.a);
    loom_arena_destroy(&b.a);
    if (built >= GET_TRIM_BYTES)
        malloc_trim(0);
    loom_pb_free(rq);
}

static int on_list_run(void *ud, const loom_store_run_t *r)
{
    build_t *b = ud;
    if (b->n == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 32;
        Loom__V1__Run **n = loom_arena_alloc(b->a, ncap * sizeof *n);
        if (!n)
            return 1;
        if (b->n)
            memcpy(n, b->runs, b->n * sizeof *n);
        b->runs = n;
        b->cap = ncap;
    }
    b->runs[b->n++] = run_pb(b->a, r, 0);
    return 0;
}

/* List's page token: "p1.<hex submitted_unix_ms>.<run id>" of the last run
 * of the previous page. Anything else is refused. */
static int page_token_parse(const char *tok, int64_t *ms, char *id, size_t idn)
{
    if (strncmp(tok, "p1.", 3) != 0)
        return -1;
    const char *p = tok + 3, *dot = strchr(p, '.');
    if (!dot || dot == p || dot - p > 16)
        return -1;
    uint64_t v = 0;
    for (const char *q = p; q < dot; q++) {
        int d = *q >= '0' && *q <= '9' ? *q - '0' : *q >= 'a' && *q <= 'f' ? *q - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + (uint64_t)d;
    }
    const char *rid = dot + 1;
    size_t n = strlen(rid);
    if (!n || n >= idn || v > INT64_MAX)
        return -1;
    for (const char *q = rid; *q; q++)
        if (!(*q == '-' || *q == '_' || *q == '.' || (*q >= '0' && *q <= '9') ||
              (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')))
            return -1;
    *ms = (int64_t)v;
    memcpy(id, rid, n + 1);
    return 0;
}

static void rpc_list(srv_t *s, loom_msg_t *m)
{
    const loom_origin_t *o = loom_msg_origin(m);
    Loom__V1__ListRequest *rq =
        (Loom__V1__ListRequest *)request(s, m, &loom__v1__list_request__descriptor);
    if (!rq)
        return;
    loom_err_t err;
    /* labels filter: "k=v,k=v" (split in place: rq is ours) */
    const char *keys[MAX_LABEL_FILTERS], *vals[MAX_LABEL_FILTERS];
    int nl = 0;
    for (char *p = rq->labels, *next; p && *p; p = next) {
        next = strchr(p, ',');
        if (next)
            *next++ = '\0';
        char *eq = strchr(p, '=');
        if (!eq || eq == p || nl == MAX_LABEL_FILTERS) {
            loom_rpc_reply_status(s->csrv, o, LOOM_STATUS_INVALID_ARGUMENT,
                                  "labels: expected 'key=value[,key=value...]' (at most %d), got '%s'",
                                  MAX_LABEL_FILTERS, p);
            loom_pb_free(rq);
            return;
        }
        *eq = '\0';
        keys[nl] = p;
        vals[nl++] = eq + 1;
    }
    /* tenant filter: a caller restricted to its tenant may only name its own */
    const char *scope = caller_scope(m), *tenant = rq->tenant && *rq->tenant ? rq->tenant : NULL;
    if (scope && tenant && strcmp(scope, tenant) != 0) {
        loom_rpc_reply_status(s->csrv, o, LOOM_STATUS_PERMISSION_DENIED,
                              "tenant '%s': this token sees only tenant '%s'", tenant, scope);
        loom_pb_free(rq);
        return;
    }
    int state = -1;
    switch (rq->state) {
    case LOOM__V1__RUN_STATE__RUN_QUEUED: state = LOOM_RUN_PENDING; break;
    case LOOM__V1__RUN_STATE__RUN_RUNNING: state = LOOM_RUN_RUNNING; break;
    case LOOM__V1__RUN_STATE__RUN_SUCCEEDED: state = LOOM_RUN_SUCCEEDED; break;
    case LOOM__V1__RUN_STATE__RUN_FAILED: state = LOOM_RUN_FAILED; break;
    case LOOM__V1__RUN_STATE__RUN_CANCELLED: state = LOOM_RUN_CANCELLED; break;
    default: break;
    }
    int limit = rq->limit ? (int)(rq->limit > 1000 ? 1000 : rq->limit) : 50;
    loom_store_filter_t f = {.state = state,
                             .workflow = rq->workflow_name && rq->workflow_name[0]
                                             ? rq->workflow_name
                                             : NULL,
                             .tenant = scope ? scope : tenant,
                             .after_ms = rq->submitted_after_unix_ms,
                             .until_ms = rq->submitted_before_unix_ms,
                             .label_keys = keys, .label_values = vals, .n_labels = nl,
                             .limit = limit + 1}; /* one more: is there a next page? */
    char before_id[64];
    if (rq->page_token && rq->page_token[0] &&
        page_token_parse(rq->page_token, &f.before_ms, before_id, sizeof before_id) != 0) {
        loom_rpc_reply_status(s->csrv, o, LOOM_STATUS_INVALID_ARGUMENT,
                              "page_token is not one this server gave out (use ListReply.next_page_token)");
        loom_pb_free(rq);
        return;
    }
    if (rq->page_token && rq->page_token[0])
        f.before_id = before_id;
    build_t b = {.a = loom_arena_new(0)};
    int rc = loom_store_run_list(s->store, &f, on_list_run, &b, &err);
    if (rc != 0) {
        reply_store_error(s, o, rc, &err);
    } else {
        Loom__V1__ListReply rep = LOOM__V1__LIST_REPLY__INIT;
        rep.n_runs = b.n > (size_t)limit ? (size_t)limit : b.n;
        rep.runs = b.runs;
        if (b.n > (size_t)limit) {
            const Loom__V1__Run *last = b.runs[limit - 1];
            rep.next_page_token = loom_arena_sprintf(b.a, "p1.%" PRIx64 ".%s",
                                                     (uint64_t)last->submitted_unix_ms, last->run_id);
        }
        loom_rpc_reply(s->csrv, o, (const ProtobufCMessage *)&rep, &err);
    }
    loom_arena_destroy(&b.a);
    loom_pb_free(rq);
}

/* ---- Submit / Cancel --------------------------------------------------------------- */

static void submit_reply(srv_t *s, const loom_origin_t *o, const char *id)
{
    loom_err_t err;
    Loom__V1__SubmitReply rep = LOOM__V1__SUBMIT_REPLY__INIT;
    rep.run_id = (char *)id;
    loom_run_t *r = loom_engine_find_run(s->eng, id);
    rep.state = r ? LOOM__V1__RUN_STATE__RUN_RUNNING : LOOM__V1__RUN_STATE__RUN_SUCCEEDED;
    if (!r) { /* finished already (e.g. nothing to run): report the real state */
        build_t b = {.a = loom_arena_new(0)};
        if (loom_store_run_get(s->store, id, on_get_run, NULL, &b, &err) == 0 && b.run)
            rep.state = b.run->state;
        loom_arena_destroy(&b.a);
    }
    loom_rpc_reply(s->csrv, o, (const ProtobufCMessage *)&rep, &err);
}

/* The client is acknowledged once the run's row is durable (store.h's
 * when_durable; at once with the in-memory store). */
typedef struct submit_ack {
    srv_t *s;
    loom_origin_t origin;
    char id[32];
} submit_ack_t;

/* A run the database refused for good (its row rejected) is cancelled, so
 * that what the client was told (UNAVAILABLE, retry) is what happened: the
 * run does not go on unstored, and a retry does not run it twice. */
static void on_submit_durable(void *ud, int status)
{
    submit_ack_t *a = ud;
    if (status == 0) {
        submit_reply(a->s, &a->origin, a->id);
    } else {
        loom_err_t err;
        int state = 0;
        int active = loom_engine_cancel(a->s->eng, a->id, "the database refused to store it", &state,
                                        &err) == 0;
        loom_err_set(&err, LOOM_EDB, "run %s could not be stored (the database refused its row); %s",
                     a->id, active ? "it was cancelled" : "it had already ended and is kept only in memory");
        loom_err_hint(&err, "loomd's log names the database error; submit again once it is fixed");
        loom_rpc_reply_err(a->s->csrv, &a->origin, &err);
    }
    free(a);
}

/* loomd links the MLIR lowering (mlir-lowering/plan_lower.h, whose
 * prototype the compiler checks); weak so that programs built on this
 * library without MLIR still link. */
#pragma weak loom_plan_module_placements

/* A run's own plan module (loom run --plan) must verify before it is
 * accepted: 0, or an error carrying MLIR's located diagnostic. */
static int check_plan_module(const char *text, loom_err_t *err)
{
    if (!text || !*text)
        return 0;
    if (!loom_plan_module_placements)
        return loom_err_set(err, LOOM_EUNAVAIL, "this loomd was built without the MLIR lowering: "
                                                "it cannot run a plan module");
    loom_map_t *pl = NULL;
    int rc = loom_plan_module_placements(text, strlen(text), "plan.mlir", &pl, NULL, err);
    loom_map_destroy(&pl);
    if (rc)
        loom_err_hint(err, "the module must verify as `loom plan --emit mlir` or `loom status --mlir` prints it");
    return rc;
}

/* The client's labels as a JSON object (malloc'd; NULL when none), or -1
 * after answering INVALID_ARGUMENT. extra_key/extra_value: one more (Retry's
 * retry_of), replacing a label of that name. */
static int labels_json(srv_t *s, const loom_origin_t *o, Loom__V1__Metadata **labels, size_t n,
                       const char *extra_key, const char *extra_value, char **out)
{
    *out = NULL;
    if (!n && !extra_key)
        return 0;
    const char *why = NULL;
    json_t *obj = json_object();
    for (size_t i = 0; i < n && !why; i++) {
        const char *k = labels[i]->key ? labels[i]->key : "", *v = labels[i]->value ? labels[i]->value : "";
        if (!*k || strlen(k) > MAX_LABEL_KEY || strpbrk(k, "=, \t\r\n"))
            why = "a label key is empty, longer than 63 bytes or holds '=', ',' or blanks";
        else if (strlen(v) > MAX_LABEL_VALUE)
            why = "a label value is longer than 1024 bytes";
        else if (json_object_get(obj, k))
            why = "a label key is given twice";
        else if (n > MAX_LABELS)
            why = "more than 64 labels";
        else
            json_object_set_new(obj, k, json_string(v));
    }
    if (why) {
        json_decref(obj);
        loom_rpc_reply_status(s->csrv, o, LOOM_STATUS_INVALID_ARGUMENT, "labels: %s", why);
        return -1;
    }
    if (extra_key)
        json_object_set_new(obj, extra_key, json_string(extra_value));
    *out = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(obj);
    return 0;
}

/* Submit (rq from the client) and Retry (rq rebuilt from a stored run,
 * tenant = that run's, retry_of = its id). Answers the client. */
static void submit_run(srv_t *s, loom_msg_t *m, const Loom__V1__SubmitRequest *rq,
                       const char *tenant, const char *retry_of)
{
    const loom_origin_t *o = loom_msg_origin(m);
    loom_err_t err;
    loom_err_clear(&err);
    if (loom_engine_active_runs(s->eng) >= (size_t)s->opts.max_active_runs) {
        loom_rpc_reply_status(s->csrv, o, LOOM_STATUS_RESOURCE_EXHAUSTED,
                              "loomd already runs %zu runs (--max-active-runs); retry later",
                              loom_engine_active_runs(s->eng));
        return;
    }
    char *labels = NULL;
    if (labels_json(s, o, rq->labels, rq->n_labels, retry_of ? "retry_of" : NULL, retry_of,
                    &labels) != 0)
        return;
    loom_submit_t sub = {.yaml = rq->workflow_yaml,
                         .yaml_len = rq->workflow_yaml ? strlen(rq->workflow_yaml) : 0,
                         .name = rq->workflow_name, .inputs_json = rq->inputs_json,
                         .sla_latency_ms = rq->sla_latency_ms,
                         .idempotency_key = rq->idempotency_key, .labels_json = labels,
                         .plan_mlir = rq->plan_mlir && *rq->plan_mlir ? rq->plan_mlir : NULL};
    if (check_plan_module(sub.plan_mlir, &err) != 0) {
        if (err.code == LOOM_EPARSE)
            err.code = LOOM_EINVAL;
        loom_rpc_reply_err(s->csrv, o, &err);
        free(labels);
        return;
    }
    for (size_t i = 0; i < rq->n_labels; i++) {
        const char *k = rq->labels[i]->key, *v = rq->labels[i]->value;
        if (k && strcmp(k, "cwd") == 0)
            sub.cwd = v;
        else if (k && strcmp(k, "allow_sla_miss") == 0) /* admission: run even if no placement fits */
            sub.allow_sla_miss = v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
    }
    const loom_principal_t *who = loom_msg_principal(m);
    sub.tenant = tenant ? tenant : who ? who->tenant : "default";
    if (check_tenant_ops(s, m, sub.tenant, rq) != 0) {
        free(labels);
        return;
    }
    char idem[600]; /* idempotency keys are per tenant */
    if (rq->idempotency_key && *rq->idempotency_key) {
        snprintf(idem, sizeof idem, "%s/%s", sub.tenant, rq->idempotency_key);
        sub.idempotency_key = idem;
    }
    char id[32];
    int rc = loom_engine_submit(s->eng, &sub, id, &err);
    free(labels);
    if (rc != 0) {
        if (!err.code)
            err.code = rc;
        if (rc == LOOM_ETOOBIG && s->opts.metrics)
            loom_metrics_submission_refused(s->opts.metrics);
        loom_rpc_reply_err(s->csrv, o, &err);
    } else {
        submit_ack_t *a = malloc(sizeof *a);
        if (a) {
            a->s = s;
            a->origin = *o;
            snprintf(a->id, sizeof a->id, "%s", id);
        }
        if (!a || loom_store_when_run_durable(s->store, id, on_submit_durable, a, &err) != 0) {
            free(a);
            submit_reply(s, o, id);
        }
    }
}

static void rpc_submit(srv_t *s, loom_msg_t *m)
{
    Loom__V1__SubmitRequest *rq =
        (Loom__V1__SubmitRequest *)request(s, m, &loom__v1__submit_request__descriptor);
    if (!rq)
        return;
    submit_run(s, m, rq, NULL, NULL);
    loom_pb_free(rq);
}

/* What Retry needs of the stored run. */
typedef struct {
    loom_arena_t *a;
    char *yaml, *file, *inputs, *labels, *tenant;
    int final;
} retry_src_t;

static int on_retry_run(void *ud, const loom_store_run_t *r)
{
    retry_src_t *x = ud;
    x->yaml = r->workflow_yaml ? loom_arena_strdup(x->a, r->workflow_yaml) : NULL;
    x->file = adup(x->a, r->workflow_file ? r->workflow_file : r->workflow);
    x->inputs = r->inputs_json ? loom_arena_strdup(x->a, r->inputs_json) : NULL;
    x->labels = r->labels_json ? loom_arena_strdup(x->a, r->labels_json) : NULL;
    x->tenant = adup(x->a, r->tenant ? r->tenant : "default");
    x->final = loom_store_run_state_final(r->state);
    return 0;
}

static void rpc_retry(srv_t *s, loom_msg_t *m)
{
    const loom_origin_t *o = loom_msg_origin(m);
    Loom__V1__RetryRequest *rq =
        (Loom__V1__RetryRequest *)request(s, m, &loom__v1__retry_request__descriptor);
    if (!rq)
        return;
    loom_err_t err;
    if (check_run_access(s, m, rq->run_id) != 0) {
        loom_pb_free(rq);
        return;
    }
    retry_src_t x = {.a = loom_arena_new(0)};
    loom_workflow_t *wf = NULL;
    int rc = loom_store_run_get(s->store, rq->run_id, on_retry_run, NULL, &x, &err);
    if (rc == LOOM_ENOTFOUND) {
        loom_rpc_reply_status(s->csrv, o, LOOM_STATUS_NOT_FOUND, "no run '%s'", rq->run_id);
    } else if (rc != 0) {
        reply_store_error(s, o, rc, &err);
    } else if (!x.final || !x.yaml) {
        loom_rpc_reply_status(s->csrv, o, LOOM_STATUS_FAILED_PRECONDITION,
                              x.final ? "run '%s': its workflow was not stored"
                                      : "run '%s' is still active; cancel it first",
                              rq->run_id);
    } else if (loom_workflow_parse(x.file, x.yaml, strlen(x.yaml), &wf, NULL) != 0) {
        loom_rpc_reply_status(s->csrv, o, LOOM_STATUS_FAILED_PRECONDITION,
                              "run '%s': its stored workflow no longer parses", rq->run_id);
    } else {
        int secret = 0;
        for (size_t i = 0; i < wf->n_inputs; i++)
            secret |= wf->inputs[i].secret;
        if (secret) {
            loom_rpc_reply_status(s->csrv, o, LOOM_STATUS_FAILED_PRECONDITION,
                                  "run '%s' has secret inputs, which are never stored: "
                                  "submit it again with them", rq->run_id);
        } else {
            Loom__V1__SubmitRequest sr = LOOM__V1__SUBMIT_REQUEST__INIT;
            sr.workflow_yaml = x.yaml;
            sr.workflow_name = x.file;
            sr.inputs_json = x.inputs ? x.inputs : "";
            sr.idempotency_key = rq->idempotency_key;
            /* the stored labels again (retry_of is set anew by submit_run) */
            sr.labels = labels_pb(x.a, x.labels, "retry_of", &sr.n_labels);
            LOOM_INFO(COMP, "msg=\"run retried by client\" run=%s", rq->run_id);
            submit_run(s, m, &sr, x.tenant, rq->run_id);
        }
    }
    loom_workflow_destroy(&wf);
    loom_arena_destroy(&x.a);
    loom_pb_free(rq);
}

static void rpc_cancel(srv_t *s, loom_msg_t *m)
{
    const loom_origin_t *o = loom_msg_origin(m);
    Loom__V1__CancelRequest *rq =
        (Loom__V1__CancelRequest *)request(s, m, &loom__v1__cancel_request__descriptor);
    if (!rq)
        return;
    loom_err_t err;
    if (check_run_access(s, m, rq->run_id) != 0) {
        loom_pb_free(rq);
        return;
    }
    Loom__V1__CancelReply rep = LOOM__V1__CANCEL_REPLY__INIT;
    int state = 0;
    if (loom_engine_cancel(s->eng, rq->run_id, rq->reason, &state, &err) == 0) {
        rep.state = LOOM__V1__RUN_STATE__RUN_CANCELLED;
        LOOM_INFO(COMP, "msg=\"run cancelled by client\" run=%s", rq->run_id);
        loom_rpc_reply(s->csrv, o, (const ProtobufCMessage *)&rep, &err);
    } else {
        build_t b = {.a = loom_arena_new(0)};
        if (loom_store_run_get(s->store, rq->run_id, on_get_run, NULL, &b, &err) == 0 && b.run) {
            rep.state = b.run->state; /* already final: say which */
            loom_rpc_reply(s->csrv, o, (const ProtobufCMessage *)&rep, &err);
        } else {
            loom_rpc_reply_status(s->csrv, o, LOOM_STATUS_NOT_FOUND, "no run '%s'", rq->run_id);
        }
        loom_arena_destroy(&b.a);
    }
    loom_pb_free(rq);
}

/* ---- Watch ---------------------------------------------------------------------------- */

typedef struct {
    srv_t *s;
    const loom_origin_t *o;
    int run_only;  /* WatchRequest.run_only: skip STEP_* events (before decoding them) */
    int failed;
} replay_t;

static int on_replay(void *ud, const loom_store_event_t *se)
{
    replay_t *rp = ud;
    Loom__V1__RunEvent ev = LOOM__V1__RUN_EVENT__INIT;
    Loom__V1__Error perr = LOOM__V1__ERROR__INIT;
    ev.seq = (uint64_t)se->seq;
    ev.run_id = (char *)se->run_id;
    ev.time_unix_ms = se->ts_ms;
    int kind = loom_event_kind_parse(se->kind);
    if (rp->run_only && loom_step_event_kind(kind))
        return 0;
    ev.kind = kind > 0 ? kind : 0;
    /* Stored progress events are notes (streamed tokens are never stored):
     * replayed like any other event. */
    ev.step_id = (char *)(se->step_id ? se->step_id : "");
    ev.attempt = (uint32_t)se->attempt;
    /* A PLANNED event's Plan (hex, tens of KiB for a long workflow) is cut
     * out before the JSON parse, which would copy and validate it char by
     * char: its key can only be a key (inside a JSON string its quotes
     * would be escaped) and hex needs no escapes. */
    const char *hex = NULL;
    size_t hexlen = 0;
    int z = 1;
    char *rest = NULL;
    static const char kz[] = ",\"" LOOM_PLAN_KEY_Z "\":\"", kp[] = ",\"" LOOM_PLAN_KEY "\":\"";
    const char *pk = se->detail_json ? strstr(se->detail_json, kz) : NULL;
    size_t klen = sizeof kz - 1;
    if (!pk && se->detail_json) {
        pk = strstr(se->detail_json, kp);
        klen = sizeof kp - 1;
        z = 0;
    }
    if (pk) {
        hex = pk + klen;
        hexlen = strspn(hex, "0123456789abcdef");
        size_t head = (size_t)(pk - se->detail_json);
        if (hex[hexlen] == '"' && (rest = malloc(strlen(se->detail_json) + 1))) {
            memcpy(rest, se->detail_json, head);
            strcpy(rest + head, hex + hexlen + 1);
        } else {
            hex = NULL; /* not as emit writes it: the parse below finds it */
        }
    }
    json_t *d = se->detail_json ? json_loads(rest ? rest : se->detail_json, 0, NULL) : NULL;
    free(rest);
    if (!hex) {
        z = json_is_string(json_object_get(d, LOOM_PLAN_KEY_Z));
        hex = json_string_value(json_object_get(d, z ? LOOM_PLAN_KEY_Z : LOOM_PLAN_KEY));
        hexlen = hex ? strlen(hex) : 0;
    }
#define STR(k) (json_string_value(json_object_get(d, k)) ? (char *)json_string_value(json_object_get(d, k)) : "")
    ev.message = STR("message");
    ev.worker_id = STR("worker");
    ev.task_id = STR("task");
    ev.output_json = STR("output_json");
    if (json_object_get(d, "error")) {
        json_int_t code = json_integer_value(json_object_get(d, "error_code"));
        perr.code = code > 0 && code <= 16 ? (Loom__V1__StatusCode)code : LOOM__V1__STATUS_CODE__UNKNOWN;
        perr.message = STR("error");
        ev.error = &perr;
    }
    const char *dev = json_string_value(json_object_get(d, "device"));
    ev.device_kind = dev ? device_pb(dev) : 0;
#undef STR
    ev.run_state = (Loom__V1__RunState)json_integer_value(json_object_get(d, "run_state"));
    ev.step_state = (Loom__V1__StepState)json_integer_value(json_object_get(d, "step_state"));
    ev.elapsed_ms = json_number_value(json_object_get(d, "elapsed_ms"));
    ev.step_ms = json_number_value(json_object_get(d, "step_ms"));
    ev.sla_latency_ms = json_number_value(json_object_get(d, "sla_ms"));
    /* PLANNED / REPLANNED: the stored Plan (hex of its protobuf encoding,
     * packed by loomd itself) goes out as it is: its bytes become the
     * RunEvent's plan field as an unknown field, which protobuf-c packs
     * verbatim (tag, then the length and bytes it is given), so the Plan
     * (tens of KiB for a long workflow) is not unpacked and packed again. */
    ProtobufCMessageUnknownField plan_field;
    uint8_t *bin = NULL;
    size_t n = 0;
    const ProtobufCFieldDescriptor *pf =
        hex ? protobuf_c_message_descriptor_get_field_by_name(&loom__v1__run_event__descriptor, "plan") : NULL;
    if (pf && (bin = loom_plan_codec_bytes(hex, hexlen, z, 10, &n))) {
        uint8_t len[10];
        size_t vl = 0;
        for (size_t v = n; vl == 0 || v; v >>= 7) /* the length, as a varint, right before the bytes */
            len[vl++] = (uint8_t)((v & 0x7f) | (v >> 7 ? 0x80 : 0));
        memcpy(bin + 10 - vl, len, vl);
        plan_field = (ProtobufCMessageUnknownField){.tag = pf->id, .wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED,
                                                   .len = vl + n, .data = bin + 10 - vl};
        ev.base.n_unknown_fields = 1;
        ev.base.unknown_fields = &plan_field;
    }
    loom_err_t err;
    int rc = loom_rpc_stream_send(rp->s->csrv, rp->o, (const ProtobufCMessage *)&ev, &err);
    free(bin);
    json_decref(d);
    if (rc != 0) {
        rp->failed = 1;
        return 1;
    }
    return 0;
}

static void rpc_watch(srv_t *s, loom_msg_t *m)
{
    const loom_origin_t *o = loom_msg_origin(m);
    Loom__V1__WatchRequest *rq =
        (Loom__V1__WatchRequest *)request(s, m, &loom__v1__watch_request__descriptor);
    if (!rq)
        return;
    loom_err_t err;
    if (check_run_access(s, m, rq->run_id) != 0) {
        loom_pb_free(rq);
        return;
    }
    /* the limit is checked before the replay: a refused Watch costs nothing */
    if (loom_engine_find_run(s->eng, rq->run_id) && s->n_watchers >= (size_t)s->opts.max_watchers) {
        loom_rpc_reply_status(s->csrv, o, LOOM_STATUS_RESOURCE_EXHAUSTED,
                              "too many open Watch streams (--max-watchers %d); retry later",
                              s->opts.max_watchers);
        loom_pb_free(rq);
        return;
    }
    replay_t rp = {.s = s, .o = o, .run_only = rq->run_only};
    int rc = loom_store_events(s->store, rq->run_id, (int64_t)rq->after_seq, on_replay, &rp, &err);
    if (rc == LOOM_ENOTFOUND) {
        loom_rpc_reply_status(s->csrv, o, LOOM_STATUS_NOT_FOUND, "no run '%s'", rq->run_id);
    } else if (rc != 0) {
        reply_store_error(s, o, rc, &err);
    } else if (!rp.failed) {
        if (loom_engine_find_run(s->eng, rq->run_id)) {
            watcher_t *w = calloc(1, sizeof *w);
            if (w) {
                snprintf(w->run_id, sizeof w->run_id, "%s", rq->run_id);
                w->origin = *o;
                w->deadline_ms = loom_msg_deadline_ms(m);
                w->include_progress = rq->include_progress;
                w->run_only = rq->run_only;
                w->next = s->watchers;
                s->watchers = w;
                s->n_watchers++;
            } else {
                loom_rpc_stream_end(s->csrv, o, LOOM_STATUS_RESOURCE_EXHAUSTED, "out of memory",
                                    &err);
            }
        } else {
            loom_rpc_stream_end(s->csrv, o, LOOM_STATUS_OK, NULL, &err);
        }
    }
    loom_pb_free(rq);
}

static void watch_cancelled(srv_t *s, const loom_origin_t *o)
{
    for (watcher_t **pp = &s->watchers; *pp; pp = &(*pp)->next) {
        watcher_t *w = *pp;
        if (w->origin.request_id == o->request_id && w->origin.peer_len == o->peer_len &&
            memcmp(w->origin.peer, o->peer, o->peer_len) == 0) {
            loom_err_t err;
            loom_rpc_stream_end(s->csrv, &w->origin, LOOM_STATUS_CANCELLED, "cancelled by client",
                                &err);
            *pp = w->next;
            s->n_watchers--;
            free(w);
            return;
        }
    }
}

/* ---- workers / health ------------------------------------------------------------------- */

static void rpc_list_workers(srv_t *s, loom_msg_t *m)
{
    const loom_origin_t *o = loom_msg_origin(m);
    Loom__V1__ListWorkersRequest *rq =
        (Loom__V1__ListWorkersRequest *)request(s, m, &loom__v1__list_workers_request__descriptor);
    if (!rq)
        return;
    loom_err_t err;
    size_t n = loom_registry_count(s->reg);
    Loom__V1__WorkerInfo *infos = calloc(n ? n : 1, sizeof *infos);
    Loom__V1__WorkerInfo **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    Loom__V1__DeviceProfile *profs = calloc(n ? n : 1, sizeof *profs);
    size_t k = 0;
    for (size_t i = 0; infos && ptrs && profs && i < n; i++) {
        loom_worker_rec_t *w = loom_registry_at(s->reg, i);
        if (w->state == LOOM_WORKER_LOST && !rq->include_lost)
            continue;
        if (rq->kind && device_pb(w->kind) != rq->kind)
            continue;
        Loom__V1__DeviceProfile *p = &profs[k];
        loom__v1__device_profile__init(p);
        p->kind = device_pb(w->kind);
        p->model_name = w->model;
        p->arch = w->arch;
        p->compute_units = (uint32_t)w->cores;
        p->memory_bytes = w->memory_bytes;
        p->measured_gflops = w->gflops;
        p->measured_gbps = w->gbps;
        p->price_per_hour_usd = w->price_per_hour;
        p->task_slots = (uint32_t)w->slots;
        p->n_supported_ops = w->n_ops;
        p->supported_ops = w->ops;
        Loom__V1__WorkerInfo *wi = &infos[k];
        loom__v1__worker_info__init(wi);
        wi->worker_id = w->id;
        wi->profile = p;
        wi->state = w->state == LOOM_WORKER_READY      ? LOOM__V1__WORKER_STATE__WORKER_READY
                    : w->state == LOOM_WORKER_DRAINING ? LOOM__V1__WORKER_STATE__WORKER_DRAINING
                                                       : LOOM__V1__WORKER_STATE__WORKER_LOST;
        wi->registered_unix_ms = w->registered_ms;
        wi->last_heartbeat_unix_ms = w->last_seen_ms;
        int running, queued;
        loom_worker_load(w, &running, &queued);
        wi->running_tasks = (uint32_t)running;
        wi->queued_tasks = (uint32_t)queued;
        wi->free_slots = running < w->slots ? (uint32_t)(w->slots - running) : 0;
        wi->load = w->load;
        wi->tasks_done = w->tasks_done;
        wi->tasks_failed = w->tasks_failed;
        wi->free_memory_bytes = w->free_memory_bytes;
        wi->n_loaded_models = w->n_models;
        wi->loaded_models = w->models;
        ptrs[k++] = wi;
    }
    Loom__V1__ListWorkersReply rep = LOOM__V1__LIST_WORKERS_REPLY__INIT;
    rep.n_workers = k;
    rep.workers = ptrs;
    loom_rpc_reply(s->csrv, o, (const ProtobufCMessage *)&rep, &err);
    free(infos);
    free(ptrs);
    free(profs);
    loom_pb_free(rq);
}

static void rpc_health(srv_t *s, loom_msg_t *m)
{
    Loom__V1__HealthReply rep = LOOM__V1__HEALTH_REPLY__INIT;
    rep.status = "SERVING";
    rep.version = LOOM_VERSION;
    rep.uptime_ms = (uint64_t)(loom_wall_ms() - s->started_ms);
    uint32_t ready = 0;
    for (size_t i = 0; i < loom_registry_count(s->reg); i++)
        ready += loom_registry_at(s->reg, i)->state == LOOM_WORKER_READY;
    rep.workers = ready;
    rep.active_runs = (uint32_t)loom_engine_active_runs(s->eng);
    rep.protocol_version = 1;
    loom_err_t err;
    loom_rpc_reply(s->csrv, loom_msg_origin(m), (const ProtobufCMessage *)&rep, &err);
}

/* Plan: place a workflow on the live workers (or a given fleet) without
 * running it (orchestrator/placement_planner.c). */
static void rpc_plan(srv_t *s, loom_msg_t *m)
{
    const loom_origin_t *o = loom_msg_origin(m);
    Loom__V1__PlanRequest *rq =
        (Loom__V1__PlanRequest *)request(s, m, &loom__v1__plan_request__descriptor);
    if (!rq)
        return;
    loom_err_t err;
    loom_err_clear(&err);
    Loom__V1__Plan *plan = NULL;
    int rc = loom_placement_plan_request(s->reg, rq->workflow_yaml, rq->workflow_name, rq->sla_latency_ms,
                                         (int)rq->objective, rq->fleet_yaml, &plan, &err);
    if (rc != 0) {
        if (!err.code)
            err.code = rc;
        loom_rpc_reply_err(s->csrv, o, &err);
    } else {
        Loom__V1__PlanReply rep = LOOM__V1__PLAN_REPLY__INIT;
        rep.plan = plan;
        loom_rpc_reply(s->csrv, o, (const ProtobufCMessage *)&rep, &err);
        loom_placement_plan_free(plan);
    }
    loom_pb_free(rq);
}

void server_on_client_msg(srv_t *s, loom_msg_t *m)
{
    const loom_origin_t *o = loom_msg_origin(m);
    if (loom_msg_is_cancel(m)) {
        watch_cancelled(s, o);
        return;
    }
    if (loom_msg_is_reply(m))
        return;
    const char *method = loom_msg_method(m);
    if (strcmp(method, LOOM_METHOD_SUBMIT) == 0)
        rpc_submit(s, m);
    else if (strcmp(method, LOOM_METHOD_WATCH) == 0)
        rpc_watch(s, m);
    else if (strcmp(method, LOOM_METHOD_GET) == 0)
        rpc_get(s, m);
    else if (strcmp(method, LOOM_METHOD_LIST) == 0)
        rpc_list(s, m);
    else if (strcmp(method, LOOM_METHOD_CANCEL) == 0)
        rpc_cancel(s, m);
    else if (strcmp(method, LOOM_METHOD_RETRY) == 0)
        rpc_retry(s, m);
    else if (strcmp(method, LOOM_METHOD_LIST_WORKERS) == 0)
        rpc_list_workers(s, m);
    else if (strcmp(method, LOOM_METHOD_HEALTH) == 0)
        rpc_health(s, m);
    else if (strcmp(method, LOOM_METHOD_PLAN) == 0)
        rpc_plan(s, m);
    else if (!(loom_msg_flags(m) & LOOM_FLAG_ONEWAY))
        loom_rpc_reply_status(s->csrv, o, LOOM_STATUS_UNIMPLEMENTED, "no method '%s'", method);
}

/* server.c — see server.h. Client RPCs (client_api.c builds the replies
 * that read the store) and the worker protocol meet the engine here. */
#include "orchestrator/server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include <zmq.h>

#include "common/clock.h"
#include "common/log.h"
#include "loom/v1/worker.pb-c.h"
#include "common/notify.h"
#include "orchestrator/engine.h"
#include "orchestrator/lease_pg.h"
#include "orchestrator/metrics.h"
#include "orchestrator/server_internal.h"
#include "protocol/methods.h"
#include "protocol/zpoll.h"

#define COMP "loomd"

/* ---- watchers (server-streaming Watch) -------------------------------------- */

static void watcher_remove(srv_t *s, watcher_t *w)
{
    watcher_t **pp = &s->watchers;
    while (*pp && *pp != w)
        pp = &(*pp)->next;
    if (*pp)
        *pp = w->next;
    s->n_watchers--;
    free(w);
}

/* Ends the streams whose request deadline passed (DEADLINE_EXCEEDED). */
static void expire_watchers(srv_t *s)
{
    int64_t now = loom_wall_ms();
    for (watcher_t *w = s->watchers, *n; w; w = n) {
        n = w->next;
        if (!w->deadline_ms || now < w->deadline_ms)
            continue;
        loom_err_t err;
        loom_rpc_stream_end(s->csrv, &w->origin, LOOM_STATUS_DEADLINE_EXCEEDED,
                            "the Watch deadline passed before the run finished", &err);
        watcher_remove(s, w);
    }
}

/* Sends ev to the watchers of run id (ending their streams when final). */
static void deliver(srv_t *s, const char *id, const Loom__V1__RunEvent *ev, int final)
{
    for (watcher_t *w = s->watchers, *n; w; w = n) {
        n = w->next;
        if (strcmp(w->run_id, id) != 0)
            continue;
        /* Streamed tokens only when asked; progress notes (a message, no
         * text: loop progress, KV transfer outcomes) always. */
        if (ev->kind == LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_PROGRESS && ev->text && ev->text[0] &&
            !w->include_progress)
            continue;
        if (w->run_only && loom_step_event_kind(ev->kind))
            continue;
        loom_err_t err;
        if (loom_rpc_stream_send(s->csrv, &w->origin, (const ProtobufCMessage *)ev, &err) != 0) {
            watcher_remove(s, w);
            continue;
        }
        if (final) {
            loom_rpc_stream_end(s->csrv, &w->origin, LOOM_STATUS_OK, NULL, &err);
            watcher_remove(s, w);
        }
    }
}

/* A final event waits until the run's final state is durable (store.h's
 * when_durable): watchers are told a run finished only once it is stored. */
typedef struct final_ev {
    srv_t *s;
    char run_id[64];
    size_t len;
    uint8_t buf[];
} final_ev_t;

static void on_final_durable(void *ud, int status)
{
    final_ev_t *f = ud;
    if (status != 0)
        LOOM_WARN(COMP, "msg=\"final state of a run could not be stored\" run=%s", f->run_id);
    Loom__V1__RunEvent *ev = loom__v1__run_event__unpack(NULL, f->len, f->buf);
    if (ev) {
        deliver(f->s, f->run_id, ev, 1);
        loom__v1__run_event__free_unpacked(ev, NULL);
    }
    free(f);
}

static void on_event(void *ud, loom_run_t *run, const Loom__V1__RunEvent *ev, int final)
{
    srv_t *s = ud;
    if (s->opts.metrics) {
        if (ev->kind == LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_SLA_MISSED)
            loom_metrics_sla_missed(s->opts.metrics);
        if (final) {
            const char *state =
                ev->kind == LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_RUN_FINISHED    ? "succeeded"
                : ev->kind == LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_RUN_CANCELLED ? "cancelled"
                                                                                : "failed";
            loom_metrics_run_finished(s->opts.metrics, state);
            loom_metrics_run_done(s->opts.metrics, loom_run_workflow_name(run), state,
                                  ev->elapsed_ms / 1000.0, ev->sla_latency_ms / 1000.0);
        }
    }
    if (!s->n_watchers)
        return;
    const char *id = loom_run_id(run);
    if (final && loom_store_poll_fd(s->store) >= 0) {
        size_t len = loom__v1__run_event__get_packed_size(ev);
        final_ev_t *f = malloc(sizeof *f + len);
        loom_err_t err;
        if (f) {
            f->s = s;
            snprintf(f->run_id, sizeof f->run_id, "%s", id);
            f->len = loom__v1__run_event__pack(ev, f->buf);
            if (loom_store_when_durable(s->store, on_final_durable, f, &err) == 0)
                return;
            free(f);
        }
    }
    deliver(s, id, ev, final);
}

/* ---- engine callbacks: tasks to workers ------------------------------------------ */

/* 0 when sent; -1 when not (out of memory, or the socket refused: the
 * worker's send queue is full or its connection is gone), and the engine
 * takes the tasks back (engine.h). */
static int send_tasks(void *ud, loom_worker_rec_t *w, loom_task_t **tasks, size_t n)
{
    srv_t *s = ud;
    Loom__V1__AssignRequest *reqs = calloc(n, sizeof *reqs);
    Loom__V1__AssignRequest **ptrs = calloc(n, sizeof *ptrs);
    char (*sids)[256] = calloc(n, sizeof *sids);
    char (*keys)[400] = calloc(n, sizeof *keys);
    if (!reqs || !ptrs || !sids || !keys) {
        free(reqs), free(ptrs), free(sids), free(keys);
        return -1;
    }
    int64_t now = loom_wall_ms();
    for (size_t i = 0; i < n; i++) {
        loom_task_t *t = tasks[i];
        if (s->opts.metrics)
            loom_metrics_task_dispatched(s->opts.metrics,
                                         t->ready_ms ? (double)(now - t->ready_ms) / 1000.0 : 0);
        loom__v1__assign_request__init(&reqs[i]);
        loom_task_step_path(t, sids[i], sizeof sids[i]);
        reqs[i].task_id = t->id;
        reqs[i].run_id = (char *)loom_run_id(t->run);
        reqs[i].step_id = sids[i];
        loom_task_key(t, keys[i], sizeof keys[i]);
        reqs[i].task_key = keys[i];
        reqs[i].op = (char *)t->op;
        reqs[i].input_json = t->input ? t->input : "";
        reqs[i].attempt = (uint32_t)t->attempt;
        /* counted from when the worker starts it, not from now */
        reqs[i].timeout_ms = t->timeout_ms > 0 ? (uint32_t)t->timeout_ms : 0;
        const char *model = loom_task_model(t);
        reqs[i].model = (char *)(model ? model : "");
        if (t->ahead && t->after) { /* chained: runs behind its predecessor (earlier in this batch) */
            reqs[i].after_task_id = (char *)t->after->id;
            reqs[i].n_after_output_at = t->n_after_at;
            reqs[i].after_output_at = t->after_at;
        }
        ptrs[i] = &reqs[i];
    }
    Loom__V1__AssignBatchRequest b = LOOM__V1__ASSIGN_BATCH_REQUEST__INIT;
    b.n_tasks = n;
    b.tasks = ptrs;
    loom_err_t err;
    uint64_t rid;
    int rc = loom_rpc_call_peer(s->wsrv, w->peer, w->peer_len, LOOM_METHOD_ASSIGN_BATCH,
                                (const ProtobufCMessage *)&b, 0, LOOM_FLAG_ONEWAY, &rid, &err);
    if (rc != 0)
        LOOM_DEBUG(COMP, "msg=\"tasks not sent\" worker=%s err=\"%s\"", w->id, err.msg);
    free(reqs);
    free(ptrs);
    free(sids);
    free(keys);
    return rc ? -1 : 0;
}

static void cancel_task(void *ud, loom_worker_rec_t *w, const loom_task_t *t, const char *reason)
{
    srv_t *s = ud;
    if (w->state == LOOM_WORKER_LOST)
        return;
    Loom__V1__CancelTaskRequest c = LOOM__V1__CANCEL_TASK_REQUEST__INIT;
    c.task_id = (char *)t->id;
    c.attempt = (uint32_t)t->attempt;
    c.reason = (char *)reason;
    loom_err_t err;
    uint64_t rid;
    loom_rpc_call_peer(s->wsrv, w->peer, w->peer_len, LOOM_METHOD_CANCEL_TASK,
                       (const ProtobufCMessage *)&c, 0, LOOM_FLAG_ONEWAY, &rid, &err);
}

/* ---- worker protocol ------------------------------------------------------------------ */

static void store_worker(srv_t *s, loom_worker_rec_t *w)
{
    loom_store_worker_t rec = {.id = w->id, .kind = w->kind, .model = w->model,
                               .state = loom_worker_state_name(w->state),
                               .profile_json = w->profile_json, .slots = w->slots,
                               .busy = w->inflight, .ts_ms = loom_wall_ms(),
                               .tasks_done = w->tasks_done, .tasks_failed = w->tasks_failed};
    loom_err_t err;
    loom_store_worker_put(s->store, &rec, &err);
}

static const char *kind_name(Loom__V1__DeviceKind k)
{
    switch (k) {
    case LOOM__V1__DEVICE_KIND__DEVICE_KIND_GPU: return "gpu";
    case LOOM__V1__DEVICE_KIND__DEVICE_KIND_NPU: return "npu";
    default: return "cpu";
    }
}

static void worker_lost(void *ud, loom_worker_rec_t *w);

/* CURVE mode: a worker id belongs to the key that first registered it (a
 * restarted worker with the same key gets its id back; another key is
 * refused while the bound key is still admitted — once the operator removed
 * it, the next admitted key takes the id over: re-keying a host), and the
 * key must still be on the allow-list. Bindings go to the store (PostgreSQL
 * keeps them across loomd restarts). Returns 0 to go on, -1 after refusing. */
/* worker id -> key in loomd's map (a copy); 0 or LOOM_ENOMEM. */
static int bind_key(srv_t *s, const char *id, const char *key)
{
    char *copy = strdup(key);
    if (!copy || loom_map_put(s->worker_keys, id, copy) != 0) {
        free(copy);
        return LOOM_ENOMEM;
    }
    return 0;
}

static int admit_worker(srv_t *s, const loom_origin_t *o, const char *id, const char *key)
{
    char name[64];
    if (!key[0] || !loom_zap_admitted(s->zap, LOOM_ZAP_WORKERS, key, name)) {
        LOOM_WARN(COMP, "msg=\"worker refused: key not admitted\" id=%s key=%s", id, key[0] ? key : "-");
        loom_rpc_reply_status(s->wsrv, o, LOOM_STATUS_PERMISSION_DENIED,
                              "this worker's CURVE key is not on loomd's allow-list");
        return -1;
    }
    const char *bound = loom_map_get(s->worker_keys, id);
    if (bound && strcmp(bound, key) == 0)
        return 0;
    if (bound && loom_zap_admitted(s->zap, LOOM_ZAP_WORKERS, bound, NULL)) {
        LOOM_WARN(COMP, "msg=\"worker refused: id bound to another key\" id=%s key=%s bound_key=%s",
                  id, key, bound);
        loom_rpc_reply_status(s->wsrv, o, LOOM_STATUS_PERMISSION_DENIED,
                              "worker id '%s' is bound to another key", id);
        return -1;
    }
    if (bind_key(s, id, key) != 0) {
        loom_rpc_reply_status(s->wsrv, o, LOOM_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return -1;
    }
    if (bound)
        LOOM_WARN(COMP, "msg=\"worker id rebound: its old key is no longer admitted\" id=%s key=%s "
                        "name=%s", id, key, name);
    else
        LOOM_INFO(COMP, "msg=\"worker id bound to key\" id=%s key=%s name=%s", id, key, name);
    loom_err_t err;
    if (loom_store_worker_key_put(s->store, id, key, &err) != 0)
        LOOM_ERROR(COMP, "msg=\"cannot store the worker key binding\" id=%s error=\"%s\"", id,
                   err.msg);
    return 0;
}

/* A stored worker id -> key binding, at start. */
static int load_worker_key(void *ud, const char *id, const char *key)
{
    return bind_key(ud, id, key);
}

/* CURVE mode, after the allow-lists were re-read: workers whose key left
 * the list are dropped (their tasks go elsewhere) and ignored from now on. */
static void revoke_workers(srv_t *s)
{
    for (size_t i = 0; i < loom_registry_count(s->reg); i++) {
        loom_worker_rec_t *w = loom_registry_at(s->reg, i);
        if (w->revoked || !w->key[0] || loom_zap_admitted(s->zap, LOOM_ZAP_WORKERS, w->key, NULL))
            continue;
        LOOM_WARN(COMP, "msg=\"worker key revoked; dropping the worker\" id=%s key=%s", w->id, w->key);
        w->revoked = 1;
        if (w->state != LOOM_WORKER_LOST) {
            w->state = LOOM_WORKER_LOST;
            worker_lost(s, w);
        }
    }
}

/* The tasks a registering worker still holds: what loomd keeps, wants
 * again or drops (loom_engine_reconcile); fills rep's id lists (the
 * arrays are the caller's to free, the strings stay in rq). */
static int reconcile(srv_t *s, loom_worker_rec_t *w, const Loom__V1__RegisterRequest *rq,
                     Loom__V1__RegisterReply *rep)
{
    size_t n = rq->n_held_tasks;
    loom_held_task_t *held = calloc(n ? n : 1, sizeof *held);
    loom_adopt_t *dec = calloc(n ? n : 1, sizeof *dec);
    rep->resend_task_ids = calloc(n ? n : 1, sizeof *rep->resend_task_ids);
    rep->drop_task_ids = calloc(n ? n : 1, sizeof *rep->drop_task_ids);
    if (!held || !dec || !rep->resend_task_ids || !rep->drop_task_ids) {
        free(held), free(dec), free(rep->resend_task_ids), free(rep->drop_task_ids);
        rep->resend_task_ids = rep->drop_task_ids = NULL;
        return LOOM_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const Loom__V1__HeldTask *h = rq->held_tasks[i];
        held[i] = (loom_held_task_t){.task_id = h->task_id, .task_key = h->task_key,
                                     .attempt = h->attempt,
                                     .state = h->state == LOOM__V1__HELD_STATE__HELD_FINISHED
                                                  ? LOOM_HELD_FINISHED
                                              : h->state == LOOM__V1__HELD_STATE__HELD_RUNNING
                                                  ? LOOM_HELD_RUNNING
                                                  : LOOM_HELD_QUEUED};
    }
    loom_engine_reconcile(s->eng, w, held, n, dec);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (dec[i] == LOOM_ADOPT_RESEND)
            rep->resend_task_ids[rep->n_resend_task_ids++] = rq->held_tasks[i]->task_id;
        else if (dec[i] == LOOM_ADOPT_DROP && held[i].state != LOOM_HELD_FINISHED)
            rep->drop_task_ids[rep->n_drop_task_ids++] = rq->held_tasks[i]->task_id;
        else if (dec[i] == LOOM_ADOPT_KEEP)
            kept++;
    }
    if (n)
        LOOM_INFO(COMP, "msg=\"worker reconciled\" id=%s held=%zu kept=%zu resend=%zu drop=%zu", w->id,
                  n, kept, rep->n_resend_task_ids, rep->n_drop_task_ids);
    free(held);
    free(dec);
    return 0;
}

static void on_register(srv_t *s, loom_msg_t *m)
{
    const loom_origin_t *o = loom_msg_origin(m);
    Loom__V1__RegisterRequest *rq = NULL;
    loom_err_t err;
    if (loom_msg_unpack(m, &loom__v1__register_request__descriptor, NULL,
                        (ProtobufCMessage **)&rq, &err) != LOOM_STATUS_OK) {
        loom_rpc_reply_status(s->wsrv, o, LOOM_STATUS_INVALID_ARGUMENT, "Register: %s", err.msg);
        return;
    }
    Loom__V1__DeviceProfile *p = rq->profile;
    if (!p || p->task_slots == 0 || p->task_slots > 4096) {
        loom_rpc_reply_status(s->wsrv, o, LOOM_STATUS_INVALID_ARGUMENT,
                              "Register: profile with task_slots between 1 and 4096 required");
        loom_pb_free(rq);
        return;
    }
    char id[128];
    if (rq->worker_id && rq->worker_id[0] && strlen(rq->worker_id) < sizeof id)
        snprintf(id, sizeof id, "%s", rq->worker_id);
    else
        snprintf(id, sizeof id, "w-%" PRIu64, ++s->next_worker);
    const char *key = loom_msg_peer_key(m);
    if (s->zap && admit_worker(s, o, id, key) != 0) {
        loom_pb_free(rq);
        return;
    }
    json_t *pj = json_pack("{sssssssisIsfsfsfsi}", "kind", kind_name(p->kind), "model",
                           p->model_name ? p->model_name : "", "arch", p->arch ? p->arch : "",
                           "compute_units", (int)p->compute_units, "memory_bytes",
                           (json_int_t)p->memory_bytes, "gflops", p->measured_gflops, "gbps",
                           p->measured_gbps, "price_per_hour", p->price_per_hour_usd,
                           "task_slots", (int)p->task_slots);
    json_t *ops = json_array();
    for (size_t i = 0; i < p->n_supported_ops; i++)
        json_array_append_new(ops, json_string(p->supported_ops[i]));
    json_object_set_new(pj, "ops", ops);
    json_object_set_new(pj, "hostname", json_string(p->hostname ? p->hostname : ""));
    char *pjs = json_dumps(pj, JSON_COMPACT);
    json_decref(pj);
    int known = 0;
    loom_worker_rec_t *w = loom_registry_register(
        s->reg, id, o->peer, o->peer_len, kind_name(p->kind), p->model_name, p->arch,
        (int)p->compute_units, p->memory_bytes, p->measured_gflops, p->measured_gbps,
        p->price_per_hour_usd, (int)p->task_slots, (const char *const *)p->supported_ops,
        p->n_supported_ops, pjs, &known);
    free(pjs);
    if (!w) {
        loom_rpc_reply_status(s->wsrv, o, LOOM_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        loom_pb_free(rq);
        return;
    }
    snprintf(w->key, sizeof w->key, "%s", key);
    w->revoked = 0;
    w->keeps_tools = rq->keeps_tools;
    LOOM_INFO(COMP, "msg=\"worker registered\" id=%s kind=%s model=\"%s\" slots=%d ops=%zu gflops=%.1f gbps=%.1f held=%zu key=%s",
              w->id, w->kind, w->model, w->slots, w->n_ops, w->gflops, w->gbps, rq->n_held_tasks,
              key[0] ? key : "-");
    Loom__V1__RegisterReply rep = LOOM__V1__REGISTER_REPLY__INIT;
    rep.worker_id = w->id;
    rep.heartbeat_interval_ms = (uint32_t)s->opts.heartbeat_ms;
    rep.heartbeat_timeout_ms = (uint32_t)s->opts.heartbeat_timeout_ms;
    rep.epoch = s->epoch;
    rep.lease_ms = (uint32_t)(s->opts.heartbeat_timeout_ms / 2);
    if (reconcile(s, w, rq, &rep) != 0) {
        loom_rpc_reply_status(s->wsrv, o, LOOM_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        loom_pb_free(rq);
        return;
    }
    loom_rpc_reply(s->wsrv, o, (const ProtobufCMessage *)&rep, &err);
    free(rep.resend_task_ids);
    free(rep.drop_task_ids);
    store_worker(s, w);
    loom_engine_workers_changed(s->eng);
    loom_pb_free(rq);
}

static void on_heartbeat(srv_t *s, loom_msg_t *m, loom_worker_rec_t *w)
{
    const loom_origin_t *o = loom_msg_origin(m);
    Loom__V1__HeartbeatRequest *h = NULL;
    loom_err_t err;
    if (loom_msg_unpack(m, &loom__v1__heartbeat_request__descriptor, NULL,
                        (ProtobufCMessage **)&h, &err) != LOOM_STATUS_OK) {
        loom_rpc_reply_status(s->wsrv, o, LOOM_STATUS_INVALID_ARGUMENT, "Heartbeat: %s", err.msg);
        return;
    }
    Loom__V1__HeartbeatReply rep = LOOM__V1__HEARTBEAT_REPLY__INIT;
    rep.known = w != NULL;
    rep.epoch = s->epoch;
    if (w) {
        w->load = h->load;
        w->free_memory_bytes = h->free_memory_bytes;
        loom_registry_set_models(w, h->loaded_models, h->n_loaded_models > 64 ? 64 : h->n_loaded_models);
        { /* the prompt prefixes its engine holds now (prefix-aware placement) */
            size_t np = h->n_prefixes > LOOM_WORKER_MAX_PREFIXES / 2 ? LOOM_WORKER_MAX_PREFIXES / 2 : h->n_prefixes;
            uint64_t pk[LOOM_WORKER_MAX_PREFIXES / 2];
            uint32_t pt[LOOM_WORKER_MAX_PREFIXES / 2];
            size_t k = 0;
            for (size_t i = 0; i < np; i++)
                if (h->prefixes[i]) {
                    pk[k] = h->prefixes[i]->key;
                    pt[k++] = h->prefixes[i]->tokens;
                }
            if (k || w->n_prefixes)
                loom_worker_set_prefixes(w, pk, pt, k, 1);
        }
        if (h->draining && w->state == LOOM_WORKER_READY)
            w->state = LOOM_WORKER_DRAINING;
        if (++w->beats % 10 == 1)
            store_worker(s, w);
    }
    /* object releases queued for it (engine_objects.c), up to 1024 a reply */
    Loom__V1__ObjectRelease rel[1024], *relp[1024];
    size_t nrel = 0;
    int reply = !(loom_msg_flags(m) & LOOM_FLAG_ONEWAY);
    for (; reply && w && nrel < w->n_releases && nrel < 1024; nrel++) {
        loom__v1__object_release__init(&rel[nrel]);
        rel[nrel].run_id = w->releases[nrel].run;
        rel[nrel].object_id = w->releases[nrel].id;
        rel[nrel].forget = w->releases[nrel].forget;
        relp[nrel] = &rel[nrel];
    }
    rep.n_released_objects = nrel;
    rep.released_objects = relp;
    if (reply && loom_rpc_reply(s->wsrv, o, (const ProtobufCMessage *)&rep, &err) == 0 && nrel)
        loom_worker_releases_sent(w, nrel);
    loom_pb_free(h);
}

static void one_result(srv_t *s, loom_worker_rec_t *w, const Loom__V1__ResultRequest *r)
{
    loom_err_t err;
    loom_err_clear(&err);
    const char *out = r->output_json;
    size_t len = out ? strlen(out) : 0;
    if (!len && r->output.len) { /* binary output: keep it as text for references */
        out = (const char *)r->output.data;
        len = r->output.len;
    }
    double ms = r->timings ? r->timings->compute_ms : 0;
    if (s->opts.metrics && r->timings && (r->timings->tokens_in || r->timings->tokens_out))
        loom_metrics_llm_tokens(s->opts.metrics, w->id, r->timings->tokens_in,
                                r->timings->tokens_out, ms / 1000.0);
    int rc;
    /* FAILED_PRECONDITION: the worker did not run it (draining) */
    if (!r->ok && r->error && r->error->code == LOOM__V1__STATUS_CODE__FAILED_PRECONDITION)
        rc = loom_engine_refused(s->eng, w, r->task_id, r->attempt, r->error->message, &err);
    else if (!r->ok && r->lost_input && r->lost_input[0]) /* re-run what made the lost input */
        rc = loom_engine_input_lost(s->eng, w, r->task_id, r->attempt, r->lost_input,
                                    r->error && r->error->message ? r->error->message : NULL, &err);
    else
        rc = loom_engine_result(s->eng, w, r->task_id, r->attempt, r->ok, out, len,
                                r->error && r->error->message ? r->error->message : NULL,
                                r->error ? r->error->retryable : 1, r->error ? (int)r->error->code : 0,
                                ms, &err);
    if (rc == LOOM_EPROTO)
        LOOM_WARN(COMP, "msg=\"result rejected\" worker=%s task=%s reason=\"%s\"", w->id,
                  r->task_id ? r->task_id : "", err.msg);
    else if (rc != 0)
        LOOM_DEBUG(COMP, "msg=\"result ignored\" worker=%s reason=\"%s\"", w->id, err.msg);
}

static void on_results(srv_t *s, loom_msg_t *m, loom_worker_rec_t *w, int batch)
{
    const loom_origin_t *o = loom_msg_origin(m);
    loom_err_t err;
    if (!w) /* declared lost, but its results may still be the first */
        w = loom_registry_by_peer_any(s->reg, o->peer, o->peer_len);
    if (!w) {
        LOOM_WARN(COMP, "msg=\"result from an unregistered peer ignored\"");
        if (!(loom_msg_flags(m) & LOOM_FLAG_ONEWAY))
            loom_rpc_reply_status(s->wsrv, o, LOOM_STATUS_FAILED_PRECONDITION,
                                  "register before sending results");
        return;
    }
    if (batch) {
        Loom__V1__ResultBatchRequest *b = NULL;
        if (loom_msg_unpack(m, &loom__v1__result_batch_request__descriptor, NULL,
                            (ProtobufCMessage **)&b, &err) != LOOM_STATUS_OK) {
            LOOM_WARN(COMP, "msg=\"undecodable ResultBatch\" worker=%s err=\"%s\"", w->id, err.msg);
            return;
        }
        for (size_t i = 0; i < b->n_results; i++)
            one_result(s, w, b->results[i]);
        loom_pb_free(b);
        return;
    }
    Loom__V1__ResultRequest *r = NULL;
    if (loom_msg_unpack(m, &loom__v1__result_request__descriptor, NULL, (ProtobufCMessage **)&r,
                        &err) != LOOM_STATUS_OK) {
        loom_rpc_reply_status(s->wsrv, o, LOOM_STATUS_INVALID_ARGUMENT, "Result: %s", err.msg);
        return;
    }
    uint64_t before = 0;
    loom_engine_stats_t st;
    loom_engine_stats(s->eng, &st);
    before = st.results_rejected;
    one_result(s, w, r);
    loom_engine_stats(s->eng, &st);
    Loom__V1__ResultReply rep = LOOM__V1__RESULT_REPLY__INIT;
    rep.accepted = st.results_rejected == before;
    if (!(loom_msg_flags(m) & LOOM_FLAG_ONEWAY))
        loom_rpc_reply(s->wsrv, o, (const ProtobufCMessage *)&rep, &err);
    loom_pb_free(r);
}

static void on_progress(srv_t *s, loom_msg_t *m, loom_worker_rec_t *w)
{
    Loom__V1__ProgressRequest *p = NULL;
    loom_err_t err;
    if (!w || loom_msg_unpack(m, &loom__v1__progress_request__descriptor, NULL,
                              (ProtobufCMessage **)&p, &err) != LOOM_STATUS_OK)
        return;
    if (p->text && p->text[0])
        loom_engine_progress(s->eng, w, p->task_id, p->attempt, p->text);
    else if (p->message && p->message[0])
        loom_engine_progress_note(s->eng, w, p->task_id, p->attempt, p->message);
    else if (p->early_output && p->early_output[0])
        loom_engine_early_output(s->eng, w, p->task_id, p->attempt, p->early_output);
    if (!(loom_msg_flags(m) & LOOM_FLAG_ONEWAY)) {
        Loom__V1__ProgressReply rep = LOOM__V1__PROGRESS_REPLY__INIT;
        loom_rpc_reply(s->wsrv, loom_msg_origin(m), (const ProtobufCMessage *)&rep, &err);
    }
    loom_pb_free(p);
}

static void on_started(srv_t *s, loom_msg_t *m, loom_worker_rec_t *w)
{
    Loom__V1__StartedRequest *p = NULL;
    loom_err_t err;
    if (!w || loom_msg_unpack(m, &loom__v1__started_request__descriptor, NULL,
                              (ProtobufCMessage **)&p, &err) != LOOM_STATUS_OK)
        return;
    for (size_t i = 0; i < p->n_tasks; i++)
        loom_engine_started(s->eng, w, p->tasks[i]->task_id, p->tasks[i]->attempt);
    if (!(loom_msg_flags(m) & LOOM_FLAG_ONEWAY)) {
        Loom__V1__StartedReply rep = LOOM__V1__STARTED_REPLY__INIT;
        loom_rpc_reply(s->wsrv, loom_msg_origin(m), (const ProtobufCMessage *)&rep, &err);
    }
    loom_pb_free(p);
}

static void on_worker_msg(srv_t *s, loom_msg_t *m)
{
    const loom_origin_t *o = loom_msg_origin(m);
    loom_worker_rec_t *w = loom_registry_by_peer(s->reg, o->peer, o->peer_len);
    if (w)
        loom_registry_touch(s->reg, w);
    if (s->zap) {
        loom_worker_rec_t *any = w ? w : loom_registry_by_peer_any(s->reg, o->peer, o->peer_len);
        if (any && any->revoked && strcmp(loom_msg_method(m), LOOM_METHOD_REGISTER) != 0)
            return; /* its key was revoked: it must register again (and is refused) */
    }
    if (loom_msg_is_reply(m) || loom_msg_is_cancel(m))
        return; /* acks of our one-way calls, if a worker sends them */
    const char *method = loom_msg_method(m);
    if (strcmp(method, LOOM_METHOD_RESULT_BATCH) == 0)
        on_results(s, m, w, 1);
    else if (strcmp(method, LOOM_METHOD_HEARTBEAT) == 0)
        on_heartbeat(s, m, w);
    else if (strcmp(method, LOOM_METHOD_REGISTER) == 0)
        on_register(s, m);
    else if (strcmp(method, LOOM_METHOD_RESULT) == 0)
        on_results(s, m, w, 0);
    else if (strcmp(method, LOOM_METHOD_PROGRESS) == 0)
        on_progress(s, m, w);
    else if (strcmp(method, LOOM_METHOD_STARTED) == 0)
        on_started(s, m, w);
    else if (!(loom_msg_flags(m) & LOOM_FLAG_ONEWAY))
        loom_rpc_reply_status(s->wsrv, o, LOOM_STATUS_UNIMPLEMENTED,
                              "loomd's worker endpoint has no method '%s'", method);
}

static void worker_lost(void *ud, loom_worker_rec_t *w)
{
    srv_t *s = ud;
    store_worker(s, w);
    loom_engine_worker_lost(s->eng, w);
}

/* ---- metrics (store engineer) -------------------------------------------- */

static void server_sync_metrics(srv_t *s)
{
    loom_engine_stats_t st;
    loom_engine_stats(s->eng, &st);
    loom_metrics_sync_engine(s->opts.metrics, st.runs_submitted, st.tasks_succeeded,
                             st.tasks_failed, (int64_t)st.ready,
                             (int64_t)loom_engine_active_runs(s->eng));
    int64_t n[3] = {0, 0, 0};
    loom_metrics_workers_begin(s->opts.metrics);
    for (size_t i = 0; i < loom_registry_count(s->reg); i++) {
        loom_worker_rec_t *w = loom_registry_at(s->reg, i);
        int up = w->state != LOOM_WORKER_LOST;
        int busy, queued; /* executing vs sent and not started (as ListWorkers) */
        loom_worker_load(w, &busy, &queued);
        loom_metrics_worker(s->opts.metrics,
                            &(loom_metrics_worker_t){.id = w->id, .device_class = w->kind,
                                                     .up = up, .slots = w->slots, .busy = busy,
                                                     .queued = queued,
                                                     .done = w->tasks_done,
                                                     .failed = w->tasks_failed,
                                                     .free_memory_bytes = w->free_memory_bytes});
        if (!up)
            continue;
        n[strcmp(w->kind, "gpu") == 0 ? 1 : strcmp(w->kind, "npu") == 0 ? 2 : 0]++;
    }
    loom_metrics_workers_end(s->opts.metrics);
    loom_metrics_set_workers(s->opts.metrics, "cpu", n[0]);
    loom_metrics_set_workers(s->opts.metrics, "gpu", n[1]);
    loom_metrics_set_workers(s->opts.metrics, "npu", n[2]);
}

/* 1 for endpoints only this host can reach (loopback, ipc, inproc). */
static int endpoint_is_local(const char *ep)
{
    if (strncmp(ep, "ipc://", 6) == 0 || strncmp(ep, "inproc://", 9) == 0)
        return 1;
    if (strncmp(ep, "tcp://", 6) != 0)
        return 0;
    const char *h = ep + 6;
    return strncmp(h, "127.", 4) == 0 || strncmp(h, "localhost:", 10) == 0 ||
           strncmp(h, "[::1]:", 6) == 0;
}

/* ---- failover: standing by (lease_pg.h) ---------------------------------------------- */

/* ep with a wildcard host (0.0.0.0, *, [::]) replaced by host: what
 * another loomd can tell clients and workers to dial. */
static void advertised(const char *ep, const char *host, char *out, size_t n)
{
    const char *h = strstr(ep, "://");
    const char *port = h ? strrchr(h + 3, ':') : NULL;
    int wild = h && port &&
               (strncmp(h + 3, "0.0.0.0:", 8) == 0 || strncmp(h + 3, "*:", 2) == 0 ||
                strncmp(h + 3, "[::]:", 5) == 0);
    if (!wild) {
        snprintf(out, n, "%s", ep);
        return;
    }
    char name[256] = "localhost";
    if (host && *host)
        snprintf(name, sizeof name, "%s", host);
    else
        gethostname(name, sizeof name - 1);
    snprintf(out, n, "%.*s://%s%s", (int)(h - ep), ep, name, port);
}

/* A standby's answer to every request: UNAVAILABLE, the leader's endpoint
 * for this socket in the detail as "standby; leader=URL" (clients and workers with
 * a list of endpoints go there; protocol/README.md). One-way messages,
 * replies and cancels are dropped: a worker offers its results again when
 * it registers with the leader. */
static void standby_reply(srv_t *s, loom_rpc_server_t *srv, loom_msg_t *m, int is_worker)
{
    if (loom_msg_is_reply(m) || loom_msg_is_cancel(m) || (loom_msg_flags(m) & LOOM_FLAG_ONEWAY))
        return;
    char cep[256], wep[256];
    loom_lease_leader(s->opts.lease, cep, sizeof cep, wep, sizeof wep);
    const char *lead = is_worker ? wep : cep;
    const char *self = loom_rpc_server_endpoint(srv);
    loom_err_t e;
    loom_err_set(&e, LOOM_EUNAVAIL, "this loomd is a standby; it serves once the leader is gone");
    if (lead[0] && strcmp(lead, self) != 0)
        loom_err_detail(&e, "standby; leader=%s", lead);
    else
        loom_err_detail(&e, "standby; no leader yet (one is taking over)");
    loom_err_hint(&e, "give clients and workers every loomd endpoint, comma-separated; they follow "
                      "the leader");
    loom_rpc_reply_err(srv, loom_msg_origin(m), &e);
}

/* Stands by until this loomd leads (1) or is told to stop (0). */
static int stand_by(srv_t *s, volatile int *stop)
{
    if (s->opts.metrics)
        loom_metrics_set_role(s->opts.metrics, LOOM_METRICS_STANDBY);
    loom_notify("READY=1\nSTATUS=standby: clients on %s, workers on %s; waiting to lead",
                loom_rpc_server_endpoint(s->csrv), loom_rpc_server_endpoint(s->wsrv));
    int announced = 0;
    while (!*stop) {
        int64_t epoch;
        loom_lease_alive(s->opts.lease, loom_clock_ms());
        loom_lease_role_t role = loom_lease_role(s->opts.lease, &epoch);
        if (role == LOOM_LEASE_LEADER) {
            if (s->opts.metrics)
                loom_metrics_set_role(s->opts.metrics, LOOM_METRICS_LEADER);
            return 1;
        }
        if (!announced++)
            LOOM_INFO(COMP, "msg=\"standing by until this loomd holds the leader lease\" clients=%s workers=%s",
                      loom_rpc_server_endpoint(s->csrv), loom_rpc_server_endpoint(s->wsrv));
        zmq_pollitem_t items[4] = {{loom_rpc_server_socket(s->wsrv), 0, ZMQ_POLLIN, 0},
                                   {loom_rpc_server_socket(s->csrv), 0, ZMQ_POLLIN, 0},
                                   {NULL, loom_lease_fd(s->opts.lease), ZMQ_POLLIN, 0},
                                   {s->zap ? loom_zap_socket(s->zap) : NULL, -1, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, s->zap ? 4 : 3, 100) < 0 && zmq_errno() != EINTR)
            return 0;
        for (int i = 0; i < 2; i++) {
            loom_rpc_server_t *srv = i ? s->csrv : s->wsrv;
            loom_msg_t *m = NULL;
            loom_err_t err;
            for (int n = 0; n < 1000 && loom_rpc_server_recv(srv, &m, &err) == 1; n++) {
                standby_reply(s, srv, m, i == 0);
                loom_msg_destroy(&m);
            }
        }
        if (s->zap)
            loom_zap_handle(s->zap);
    }
    return 0;
}

/* ---- the loop ----------------------------------------------------------------------- */

static void drain_socket(srv_t *s, loom_rpc_server_t *srv, int is_worker)
{
    for (int n = 0; n < 10000; n++) {
        loom_msg_t *m = NULL;
        loom_err_t err;
        int rc = loom_rpc_server_recv(srv, &m, &err);
        if (rc != 1)
            break;
        if (is_worker)
            on_worker_msg(s, m);
        else
            server_on_client_msg(s, m);
        loom_msg_destroy(&m);
        /* the first result's successors go out at once, before the receive
         * that finds the socket empty (a chained step's round trip); then
         * dispatch keeps flowing every 64 messages of a burst */
        if (is_worker && (n == 0 || (n & 63) == 63))
            loom_engine_dispatch(s->eng);
    }
}

int loom_server_run(const loom_server_opts_t *opts, volatile int *stop, loom_err_t *err)
{
    srv_t *s = calloc(1, sizeof *s);
    if (!s)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    int rc = 0;
    s->opts = *opts;
    if (!s->opts.client_endpoint)
        s->opts.client_endpoint = "tcp://127.0.0.1:7400";
    if (!s->opts.worker_endpoint)
        s->opts.worker_endpoint = "tcp://127.0.0.1:7401";
    if (s->opts.heartbeat_ms <= 0)
        s->opts.heartbeat_ms = 1000;
    if (s->opts.heartbeat_timeout_ms <= 0)
        s->opts.heartbeat_timeout_ms = 3 * s->opts.heartbeat_ms;
    if (s->opts.depth <= 0)
        s->opts.depth = 16;
    if (s->opts.max_active_runs <= 0)
        s->opts.max_active_runs = 10000;
    if (s->opts.max_watchers <= 0)
        s->opts.max_watchers = 10000;
    s->store = opts->store;
    if (!s->store) {
        s->own_store = loom_store_mem_new(opts->max_finished_runs, 0, opts->max_finished_bytes);
        s->store = s->own_store;
    }
    s->reg = loom_registry_new(s->opts.depth);
    s->zctx = zmq_ctx_new();
    if (!s->store || !s->reg || !s->zctx) {
        rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto out;
    }
    if (opts->curve_secret_key) {
        char self[41];
        s->zap = loom_zap_new(s->zctx, opts->workers_keys_dir, opts->clients_keys_dir,
                              zmq_curve_public(self, opts->curve_secret_key) == 0 ? self : NULL,
                              err);
        s->worker_keys = loom_map_new(free);
        if (!s->zap || !s->worker_keys) {
            rc = err->code ? err->code : LOOM_ENOMEM;
            goto out;
        }
        if (loom_store_worker_keys_load(s->store, load_worker_key, s, err) != 0) {
            rc = err->code ? err->code : LOOM_EDB;
            goto out;
        }
        if (loom_store_keeps_worker_keys(s->store))
            LOOM_INFO(COMP, "msg=\"worker key bindings loaded\" store=%s bindings=%zu",
                      loom_store_name(s->store), loom_map_len(s->worker_keys));
    }
    if (opts->tenant_ops && server_load_tenant_ops(s, opts->tenant_ops, err) != 0) {
        rc = err->code ? err->code : LOOM_EINVAL;
        goto out;
    }
    loom_rpc_server_opts_t co = {.auth_token = opts->auth_token, .sndhwm = 100000,
                                 .auth = opts->auth_keyring ? loom_auth_check : NULL,
                                 .auth_ud = (void *)opts->auth_keyring,
                                 .curve_secret_key = opts->curve_secret_key,
                                 .zap_domain = s->zap ? LOOM_ZAP_CLIENTS : NULL};
    loom_rpc_server_opts_t wo = {.sndhwm = opts->worker_send_queue > 0 ? opts->worker_send_queue : 1000000,
                                 .curve_secret_key = opts->curve_secret_key,
                                 .zap_domain = s->zap ? LOOM_ZAP_WORKERS : NULL};
    s->csrv = loom_rpc_server_new(s->zctx, s->opts.client_endpoint, &co, err);
    if (!s->csrv) {
        rc = err->code ? err->code : LOOM_EIO;
        goto out;
    }
    s->wsrv = loom_rpc_server_new(s->zctx, s->opts.worker_endpoint, &wo, err);
    if (!s->wsrv) {
        rc = err->code ? err->code : LOOM_EIO;
        goto out;
    }
    int use_planner = !opts->placement || strcmp(opts->placement, "planner") == 0; /* the default */
    if (opts->placement && !use_planner && strcmp(opts->placement, "least-loaded") != 0) {
        rc = loom_err_set(err, LOOM_EINVAL, "unknown placement policy '%s' (planner or least-loaded)",
                          opts->placement);
        goto out;
    }
    loom_engine_cfg_t ec = {.store = s->store, .reg = s->reg,
                            .placement = use_planner ? loom_placement_planner() : loom_placement_least_loaded(),
                            .send_tasks = send_tasks, .cancel_task = cancel_task,
                            .on_event = on_event, .ud = s,
                            .placement_timeout_ms = opts->placement_timeout_ms,
                            .inline_ops = opts->inline_ops,
                            .output_ref_bytes = opts->output_ref_bytes,
                            .chain_depth = opts->chain_depth < 0 ? 0 : opts->chain_depth ? opts->chain_depth : 32,
                            .object_retention_ms = opts->object_retention_ms,
                            .prefix_placement_off = opts->prefix_placement_off,
                            /* workers re-register at their next heartbeat */
                            .adopt_grace_ms = s->opts.heartbeat_timeout_ms};
    s->eng = loom_engine_new(&ec);
    if (!s->eng) {
        rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(s->epoch, sizeof s->epoch, "%08x", loom_engine_epoch(s->eng));
    if (opts->lease) {
        char cep[256], wep[256];
        advertised(loom_rpc_server_endpoint(s->csrv), opts->advertise, cep, sizeof cep);
        advertised(loom_rpc_server_endpoint(s->wsrv), opts->advertise, wep, sizeof wep);
        if ((rc = loom_lease_start(opts->lease, cep, wep, err)) != 0)
            goto out;
        if (!stand_by(s, stop))
            goto out; /* stopped while standing by */
        uint64_t took = loom_clock_ms();
        int64_t epoch = 0;
        loom_lease_role(opts->lease, &epoch);
        LOOM_INFO(COMP, "msg=\"leading: recovering unfinished runs\" lease_epoch=%lld",
                  (long long)epoch);
        s->took_lead_ms = took;
        /* worker key bindings the previous leader made while this one stood by */
        if (s->zap && loom_store_worker_keys_load(s->store, load_worker_key, s, err) != 0) {
            rc = err->code ? err->code : LOOM_EDB;
            goto out;
        }
    }
    int recovered = 0;
    if (loom_engine_recover(s->eng, &recovered, err) != 0)
        LOOM_WARN(COMP, "msg=\"recovering unfinished runs failed\" err=\"%s\"", err->msg);
    else if (recovered)
        LOOM_INFO(COMP, "msg=\"unfinished runs recovered\" runs=%d ms=%llu", recovered,
                  (unsigned long long)(opts->lease ? loom_clock_ms() - s->took_lead_ms : 0));
    loom_err_clear(err);
    s->started_ms = loom_wall_ms();
    LOOM_INFO(COMP, "msg=\"loomd serving\" clients=%s workers=%s store=%s heartbeat_ms=%d epoch=%s security=%s",
              loom_rpc_server_endpoint(s->csrv), loom_rpc_server_endpoint(s->wsrv),
              loom_store_name(s->store), s->opts.heartbeat_ms, s->epoch,
              s->zap ? "curve" : "plain");
    if (opts->auth_keyring)
        LOOM_INFO(COMP, "msg=\"clients need signed tokens\" secrets=%d", opts->auth_keyring->n);
    if (!s->zap)
        for (int i = 0; i < 2; i++) {
            const char *ep = loom_rpc_server_endpoint(i ? s->wsrv : s->csrv);
            if (!endpoint_is_local(ep))
                LOOM_WARN(COMP, "msg=\"listening on a non-loopback address without CURVE: anyone "
                                "who reaches it can %s; start loomd with --keys DIR (docs/SECURITY.md)\" "
                                "endpoint=%s",
                          i ? "register a worker and receive task inputs" : "submit and read runs", ep);
        }
    if (opts->on_ready)
        opts->on_ready(opts->ud, loom_rpc_server_endpoint(s->csrv),
                       loom_rpc_server_endpoint(s->wsrv));
    uint64_t next_reap = 0, next_metrics = 0, next_watch_check = 0;
    int deposed = 0;
    while (!*stop) {
        int64_t wait = loom_engine_tick(s->eng);
        /* 0 workers, 1 clients, then the optional ones */
        zmq_pollitem_t items[5] = {{loom_rpc_server_socket(s->wsrv), 0, ZMQ_POLLIN, 0},
                                   {loom_rpc_server_socket(s->csrv), 0, ZMQ_POLLIN, 0}};
        int nitems = 2, i_store = -1, i_lease = -1;
        if (loom_store_poll_fd(s->store) >= 0) {
            i_store = nitems;
            items[nitems++] = (zmq_pollitem_t){NULL, loom_store_poll_fd(s->store), ZMQ_POLLIN, 0};
        }
        if (opts->lease) {
            i_lease = nitems;
            items[nitems++] = (zmq_pollitem_t){NULL, loom_lease_fd(opts->lease), ZMQ_POLLIN, 0};
        }
        if (s->zap)
            items[nitems++] = (zmq_pollitem_t){loom_zap_socket(s->zap), -1, ZMQ_POLLIN, 0};
        if (wait > 100)
            wait = 100;
        /* as zmq_poll, with fewer system calls (protocol/zpoll.h) */
        if (loom_zpoll(items, nitems, (long)wait) < 0) {
            rc = loom_err_set(err, LOOM_EIO, "poll: %s", zmq_strerror(zmq_errno()));
            break;
        }
        if (i_lease >= 0 && (items[i_lease].revents & ZMQ_POLLIN) &&
            loom_lease_role(opts->lease, NULL) != LOOM_LEASE_LEADER) {
            deposed = 1; /* another loomd leads: dispatch nothing more */
            rc = loom_err_set(err, LOOM_EUNAVAIL, "another loomd took the lead; stopping");
            loom_err_hint(err, "restarted, this loomd stands by");
            break;
        }
        if (items[0].revents & ZMQ_POLLIN)
            drain_socket(s, s->wsrv, 1);
        if (items[1].revents & ZMQ_POLLIN)
            drain_socket(s, s->csrv, 0);
        if (i_store >= 0 && (items[i_store].revents & ZMQ_POLLIN))
            loom_store_poll(s->store); /* durability callbacks: acks, final events */
        if (s->zap)
            loom_zap_handle(s->zap); /* CURVE handshakes waiting for a verdict */
        loom_engine_dispatch(s->eng);
        uint64_t now = loom_clock_ms();
        if (opts->lease)
            loom_lease_alive(opts->lease, now); /* the lease is renewed while the loop turns */
        if (now >= next_reap) {
            next_reap = now + (uint64_t)(s->opts.heartbeat_ms / 4 + 1);
            if (s->zap) {
                if (s->opts.reload && *s->opts.reload) {
                    *s->opts.reload = 0;
                    loom_zap_reload(s->zap);
                }
                if (loom_zap_refresh(s->zap))
                    revoke_workers(s);
            }
            if (loom_registry_reap(s->reg, (uint64_t)s->opts.heartbeat_timeout_ms, worker_lost,
                                   s) > 0)
                loom_engine_dispatch(s->eng);
            loom_registry_forget_lost(s->reg, 600000);
        }
        if (s->watchers && now >= next_watch_check) {
            next_watch_check = now + 50;
            expire_watchers(s);
        }
        if (s->opts.metrics && now >= next_metrics) {
            next_metrics = now + 200;
            server_sync_metrics(s);
        }
    }
    LOOM_INFO(COMP, "msg=\"loomd stopping\" active_runs=%zu", loom_engine_active_runs(s->eng));
    if (!deposed) {
        /* Run what waits on durability while the server is still alive. */
        loom_store_flush(s->store, err);
        loom_store_poll(s->store);
        loom_err_clear(err);
    }
out:
    while (s->watchers)
        watcher_remove(s, s->watchers);
    loom_engine_destroy(&s->eng);
    loom_rpc_server_destroy(&s->csrv);
    loom_rpc_server_destroy(&s->wsrv);
    loom_registry_destroy(&s->reg);
    loom_zap_destroy(&s->zap);
    loom_map_destroy(&s->worker_keys);
    loom_map_destroy(&s->tenant_ops);
    if (s->zctx)
        zmq_ctx_term(s->zctx);
    loom_store_destroy(&s->own_store);
    free(s);
    return rc;
}

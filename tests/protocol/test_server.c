/* test_server.c — loom-test-server: a real Loom RPC server for the protocol
 * tests (C and Python). It is built on protocol/rpc_server.h exactly as
 * loomd is, but serves canned, deterministic answers derived from each
 * request so that tests can check every field survived the round trip.
 *
 *   loom-test-server [--endpoint EP] [--token T] [--secret S] [--max-payload N]
 *
 * Prints "endpoint <bound endpoint>" on stdout once it listens, then serves
 * until SIGTERM/SIGINT. Behaviour (see tests/protocol/README.md):
 *   Health, Submit, Plan, Get, List, Cancel, ListWorkers: echo-derived replies;
 *   Get run_id "missing" -> NOT_FOUND; "slow:<ms>" -> replies after <ms>;
 *   Watch run_id "count:<n>" -> n events then OK; "forever" -> an event every
 *   20 ms until the client cancels (counted) or the deadline passes;
 *   WorkerHub/Register -> reply, then Assign, CancelTask, Drain to the worker;
 *   loom.test.Test/Stats -> a Run whose labels hold the server's counters. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/sha.h"
#include "protocol/auth.h"
#include "protocol/client.h"
#include "protocol/methods.h"
#include "protocol/rpc_server.h"

#define MAX_PENDING 64

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

/* A delayed unary reply or an open Watch stream. */
typedef struct pending {
    int used;
    int is_stream;
    loom_origin_t to;
    uint64_t due_ms;   /* next action (monotonic) */
    int64_t deadline;  /* wall ms, 0 = none */
    int left;          /* stream events left; -1 = forever */
    uint64_t seq;
    char run_id[64];
} pending_t;

static pending_t pend[MAX_PENDING];
static struct {
    uint64_t cancels, streams_done, progress, heartbeats, results_ok, flow_steps;
    char last_result[512], worker_flow[256], last_progress[256];
} st;
static uint8_t worker_peer[LOOM_MAX_ROUTING_ID];
static size_t worker_peer_len;
static uint64_t assign_id, cancel_task_id, drain_id;
static uint64_t started_ms;

static pending_t *pend_new(void)
{
    for (int i = 0; i < MAX_PENDING; i++)
        if (!pend[i].used) {
            memset(&pend[i], 0, sizeof pend[i]);
            pend[i].used = 1;
            return &pend[i];
        }
    return NULL;
}

static void send_event(loom_rpc_server_t *srv, pending_t *p)
{
    Loom__V1__RunEvent ev = LOOM__V1__RUN_EVENT__INIT;
    char msg[64];
    ev.seq = ++p->seq;
    ev.run_id = p->run_id;
    ev.time_unix_ms = loom_wall_ms();
    ev.kind = p->seq == 1 ? LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_QUEUED
                          : LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_FINISHED;
    ev.step_id = "step";
    ev.attempt = (uint32_t)p->seq;
    ev.run_state = LOOM__V1__RUN_STATE__RUN_RUNNING;
    snprintf(msg, sizeof msg, "event %llu", (unsigned long long)p->seq);
    ev.message = msg;
    ev.elapsed_ms = (double)p->seq * 1.5;
    if (loom_rpc_stream_send(srv, &p->to, &ev.base, NULL) != 0)
        p->used = 0; /* client gone */
}

static void tick(loom_rpc_server_t *srv)
{
    uint64_t now = loom_clock_ms();
    for (int i = 0; i < MAX_PENDING; i++) {
        pending_t *p = &pend[i];
        if (!p->used || now < p->due_ms)
            continue;
        if (!p->is_stream) {
            Loom__V1__GetReply rep = LOOM__V1__GET_REPLY__INIT;
            Loom__V1__Run run = LOOM__V1__RUN__INIT;
            run.run_id = p->run_id;
            rep.run = &run;
            loom_rpc_reply(srv, &p->to, &rep.base, NULL);
            p->used = 0;
            continue;
        }
        if (p->deadline && loom_wall_ms() >= p->deadline) {
            loom_rpc_stream_end(srv, &p->to, LOOM_STATUS_DEADLINE_EXCEEDED, "deadline passed", NULL);
            p->used = 0;
            continue;
        }
        if (p->left == 0) {
            loom_rpc_stream_end(srv, &p->to, LOOM_STATUS_OK, "run finished", NULL);
            st.streams_done++;
            p->used = 0;
            continue;
        }
        send_event(srv, p);
        if (p->left > 0)
            p->left--;
        p->due_ms = now + 20;
    }
}

#define UNPACK(T, desc, var)                                                        \
    T *var = NULL;                                                                  \
    do {                                                                            \
        loom_err_t ue;                                                              \
        int us = loom_msg_unpack(m, &desc, loom_rpc_server_limits(srv),             \
                                 (ProtobufCMessage **)&var, &ue);                   \
        if (us != LOOM_STATUS_OK) {                                                 \
            loom_rpc_reply_status(srv, to, us, "%s", ue.msg);                       \
            return;                                                                 \
        }                                                                           \
    } while (0)

static void handle_loom(loom_rpc_server_t *srv, loom_msg_t *m, const loom_origin_t *to)
{
    const char *meth = loom_msg_method(m);
    if (strcmp(meth, LOOM_METHOD_HEALTH) == 0) {
        UNPACK(Loom__V1__HealthRequest, loom__v1__health_request__descriptor, rq);
        Loom__V1__HealthReply rep = LOOM__V1__HEALTH_REPLY__INIT;
        rep.status = "SERVING";
        rep.version = "test-server";
        rep.uptime_ms = loom_clock_ms() - started_ms;
        rep.workers = worker_peer_len ? 1 : 0;
        rep.protocol_version = LOOM_PROTOCOL_VERSION;
        loom_rpc_reply(srv, to, &rep.base, NULL);
        loom_pb_free(rq);
    } else if (strcmp(meth, LOOM_METHOD_SUBMIT) == 0) {
        UNPACK(Loom__V1__SubmitRequest, loom__v1__submit_request__descriptor, rq);
        char hex[LOOM_SHA256_HEX_LEN], run_id[32];
        loom_sha256_hex(rq->workflow_yaml, strlen(rq->workflow_yaml), hex);
        snprintf(run_id, sizeof run_id, "run-%.12s", hex);
        Loom__V1__SubmitReply rep = LOOM__V1__SUBMIT_REPLY__INIT;
        Loom__V1__Plan plan = LOOM__V1__PLAN__INIT;
        Loom__V1__Placement pl[8], *plp[8];
        char *notes[3] = {rq->workflow_name, rq->inputs_json, rq->idempotency_key};
        size_t n = rq->n_labels < 8 ? rq->n_labels : 8;
        for (size_t i = 0; i < n; i++) {
            loom__v1__placement__init(&pl[i]);
            pl[i].step_id = rq->labels[i]->key;
            pl[i].op = rq->labels[i]->value;
            pl[i].device_kind = LOOM__V1__DEVICE_KIND__DEVICE_KIND_GPU;
            pl[i].predicted_ms = 10.0 * (double)(i + 1);
            plp[i] = &pl[i];
        }
        plan.placements = plp;
        plan.n_placements = n;
        plan.notes = notes;
        plan.n_notes = 3;
        plan.sla_latency_ms = rq->sla_latency_ms;
        plan.objective = rq->objective;
        plan.meets_sla = 1;
        plan.version = 1;
        rep.run_id = run_id;
        rep.plan = &plan;
        rep.state = LOOM__V1__RUN_STATE__RUN_QUEUED;
        loom_rpc_reply(srv, to, &rep.base, NULL);
        loom_pb_free(rq);
    } else if (strcmp(meth, LOOM_METHOD_PLAN) == 0) {
        UNPACK(Loom__V1__PlanRequest, loom__v1__plan_request__descriptor, rq);
        Loom__V1__PlanReply rep = LOOM__V1__PLAN_REPLY__INIT;
        Loom__V1__Plan plan = LOOM__V1__PLAN__INIT;
        char *notes[2] = {rq->workflow_name, rq->fleet_yaml};
        plan.notes = notes;
        plan.n_notes = 2;
        plan.sla_latency_ms = rq->sla_latency_ms;
        plan.predicted_latency_ms = rq->sla_latency_ms / 2;
        plan.objective = rq->objective;
        plan.meets_sla = 1;
        rep.plan = &plan;
        loom_rpc_reply(srv, to, &rep.base, NULL);
        loom_pb_free(rq);
    } else if (strcmp(meth, LOOM_METHOD_GET) == 0) {
        UNPACK(Loom__V1__GetRequest, loom__v1__get_request__descriptor, rq);
        if (strcmp(rq->run_id, "missing") == 0) {
            loom_rpc_reply_status(srv, to, LOOM_STATUS_NOT_FOUND, "run '%s' not found", rq->run_id);
        } else if (strncmp(rq->run_id, "slow:", 5) == 0) {
            pending_t *p = pend_new();
            if (p) {
                p->to = *to;
                p->due_ms = loom_clock_ms() + strtoull(rq->run_id + 5, NULL, 10);
                snprintf(p->run_id, sizeof p->run_id, "%s", rq->run_id);
            }
        } else {
            Loom__V1__GetReply rep = LOOM__V1__GET_REPLY__INIT;
            Loom__V1__Run run = LOOM__V1__RUN__INIT;
            Loom__V1__StepStatus ss = LOOM__V1__STEP_STATUS__INIT, *ssp = &ss;
            Loom__V1__Error er = LOOM__V1__ERROR__INIT;
            run.run_id = rq->run_id;
            run.workflow_name = "support";
            run.state = LOOM__V1__RUN_STATE__RUN_FAILED;
            run.sla_latency_ms = 2000;
            run.elapsed_ms = 2500.5;
            run.cost_usd = 0.0123;
            ss.step_id = "answer";
            ss.op = "llm.generate";
            ss.state = LOOM__V1__STEP_STATE__STEP_FAILED;
            ss.attempt = 3;
            er.code = LOOM__V1__STATUS_CODE__UNAVAILABLE;
            er.message = "worker lost";
            er.retryable = 1;
            ss.error = &er;
            run.steps = &ssp;
            run.n_steps = 1;
            rep.run = &run;
            loom_rpc_reply(srv, to, &rep.base, NULL);
        }
        loom_pb_free(rq);
    } else if (strcmp(meth, LOOM_METHOD_LIST) == 0) {
        UNPACK(Loom__V1__ListRequest, loom__v1__list_request__descriptor, rq);
        Loom__V1__ListReply rep = LOOM__V1__LIST_REPLY__INIT;
        Loom__V1__Run runs[16], *rp[16];
        char ids[16][32];
        size_t n = rq->limit < 16 ? rq->limit : 16;
        for (size_t i = 0; i < n; i++) {
            loom__v1__run__init(&runs[i]);
            snprintf(ids[i], sizeof ids[i], "%s-%zu", rq->workflow_name, i);
            runs[i].run_id = ids[i];
            runs[i].state = rq->state;
            rp[i] = &runs[i];
        }
        rep.runs = rp;
        rep.n_runs = n;
        rep.next_page_token = rq->page_token[0] ? "" : "page-2";
        loom_rpc_reply(srv, to, &rep.base, NULL);
        loom_pb_free(rq);
    } else if (strcmp(meth, LOOM_METHOD_CANCEL) == 0) {
        UNPACK(Loom__V1__CancelRequest, loom__v1__cancel_request__descriptor, rq);
        Loom__V1__CancelReply rep = LOOM__V1__CANCEL_REPLY__INIT;
        rep.state = strcmp(rq->reason, "done") == 0 ? LOOM__V1__RUN_STATE__RUN_SUCCEEDED
                                                     : LOOM__V1__RUN_STATE__RUN_CANCELLED;
        loom_rpc_reply(srv, to, &rep.base, NULL);
        loom_pb_free(rq);
    } else if (strcmp(meth, LOOM_METHOD_LIST_WORKERS) == 0) {
        UNPACK(Loom__V1__ListWorkersRequest, loom__v1__list_workers_request__descriptor, rq);
        Loom__V1__ListWorkersReply rep = LOOM__V1__LIST_WORKERS_REPLY__INIT;
        Loom__V1__WorkerInfo wi = LOOM__V1__WORKER_INFO__INIT, *wip = &wi;
        Loom__V1__DeviceProfile dp = LOOM__V1__DEVICE_PROFILE__INIT;
        char *models[] = {"llama-3-8b-q4"};
        dp.kind = rq->kind ? rq->kind : LOOM__V1__DEVICE_KIND__DEVICE_KIND_CPU;
        dp.model_name = "H100-SXM";
        dp.arch = "sm_90";
        dp.compute_units = 132;
        dp.memory_bytes = 80ull << 30;
        dp.measured_gflops = 51000.5;
        dp.measured_gbps = 3350.25;
        dp.price_per_hour_usd = 4.5;
        dp.task_slots = 4;
        dp.emulated = 1;
        dp.loaded_models = models;
        dp.n_loaded_models = 1;
        wi.worker_id = "w-gpu0";
        wi.profile = &dp;
        wi.state = rq->include_lost ? LOOM__V1__WORKER_STATE__WORKER_LOST
                                    : LOOM__V1__WORKER_STATE__WORKER_READY;
        rep.workers = &wip;
        rep.n_workers = 1;
        loom_rpc_reply(srv, to, &rep.base, NULL);
        loom_pb_free(rq);
    } else if (strcmp(meth, LOOM_METHOD_WATCH) == 0) {
        UNPACK(Loom__V1__WatchRequest, loom__v1__watch_request__descriptor, rq);
        pending_t *p = pend_new();
        if (!p) {
            loom_rpc_stream_end(srv, to, LOOM_STATUS_RESOURCE_EXHAUSTED, "too many streams", NULL);
        } else {
            p->is_stream = 1;
            p->to = *to;
            p->deadline = loom_msg_deadline_ms(m);
            snprintf(p->run_id, sizeof p->run_id, "%s", rq->run_id);
            p->left = strcmp(rq->run_id, "forever") == 0 ? -1
                      : strncmp(rq->run_id, "count:", 6) == 0 ? atoi(rq->run_id + 6)
                                                              : 3;
            p->seq = rq->after_seq;
            p->due_ms = 0;
        }
        loom_pb_free(rq);
    } else {
        loom_rpc_reply_status(srv, to, LOOM_STATUS_UNIMPLEMENTED, "unknown method '%s'", meth);
    }
}

static void send_to_worker(loom_rpc_server_t *srv, const char *method, const ProtobufCMessage *rq,
                           uint64_t *id)
{
    loom_rpc_call_peer(srv, worker_peer, worker_peer_len, method, rq, loom_wall_ms() + 5000, 0, id,
                       NULL);
}

static void handle_worker(loom_rpc_server_t *srv, loom_msg_t *m, const loom_origin_t *to)
{
    const char *meth = loom_msg_method(m);
    if (strcmp(meth, LOOM_METHOD_REGISTER) == 0) {
        UNPACK(Loom__V1__RegisterRequest, loom__v1__register_request__descriptor, rq);
        char id[160];
        const Loom__V1__DeviceProfile *p = rq->profile;
        snprintf(id, sizeof id, "%s/%s/%s/%u/%llu", rq->worker_id, p ? p->model_name : "-",
                 p ? p->arch : "-", p ? p->compute_units : 0,
                 p ? (unsigned long long)p->memory_bytes : 0ull);
        Loom__V1__RegisterReply rep = LOOM__V1__REGISTER_REPLY__INIT;
        rep.worker_id = id;
        rep.heartbeat_interval_ms = 1000;
        rep.heartbeat_timeout_ms = p ? (uint32_t)(p->measured_gflops + p->measured_gbps) : 0;
        loom_rpc_reply(srv, to, &rep.base, NULL);
        memcpy(worker_peer, to->peer, to->peer_len);
        worker_peer_len = to->peer_len;
        /* loomd -> worker: an assignment. */
        Loom__V1__AssignRequest as = LOOM__V1__ASSIGN_REQUEST__INIT;
        Loom__V1__ArtifactRef ar = LOOM__V1__ARTIFACT_REF__INIT, *arp = &ar;
        as.task_id = "t1";
        as.run_id = "run-1";
        as.step_id = "answer/decode";
        as.op = "llm.decode";
        as.input_json = "{\"prompt\":\"hi\"}";
        as.attempt = 1;
        as.deadline_unix_ms = 1767225600000;
        ar.sha256 = "ab12";
        ar.kind = "ptx";
        ar.target = "sm_90";
        ar.size_bytes = 4096;
        as.artifacts = &arp;
        as.n_artifacts = 1;
        as.model = "llama-3-8b-q4";
        as.stream_progress = 1;
        send_to_worker(srv, LOOM_METHOD_ASSIGN, &as.base, &assign_id);
        loom_pb_free(rq);
    } else if (strcmp(meth, LOOM_METHOD_HEARTBEAT) == 0) {
        UNPACK(Loom__V1__HeartbeatRequest, loom__v1__heartbeat_request__descriptor, rq);
        st.heartbeats++;
        Loom__V1__HeartbeatReply rep = LOOM__V1__HEARTBEAT_REPLY__INIT;
        rep.known = worker_peer_len && rq->free_memory_bytes == (1ull << 33) && rq->n_running_task_ids == 1;
        if (!(loom_msg_flags(m) & LOOM_FLAG_ONEWAY))
            loom_rpc_reply(srv, to, &rep.base, NULL);
        loom_pb_free(rq);
    } else if (strcmp(meth, LOOM_METHOD_RESULT) == 0) {
        UNPACK(Loom__V1__ResultRequest, loom__v1__result_request__descriptor, rq);
        snprintf(st.last_result, sizeof st.last_result, "%s/%u/%s/%s/%zu/%llu/%.1f", rq->task_id,
                 rq->attempt, rq->ok ? "ok" : "err", rq->output_json, rq->output.len,
                 rq->timings ? (unsigned long long)rq->timings->tokens_out : 0ull,
                 rq->timings ? rq->timings->compute_ms : 0.0);
        Loom__V1__ResultReply rep = LOOM__V1__RESULT_REPLY__INIT;
        rep.accepted = strcmp(rq->task_id, "t1") == 0 && rq->attempt == 1;
        st.results_ok += rep.accepted;
        loom_rpc_reply(srv, to, &rep.base, NULL);
        loom_pb_free(rq);
    } else if (strcmp(meth, LOOM_METHOD_PROGRESS) == 0) {
        UNPACK(Loom__V1__ProgressRequest, loom__v1__progress_request__descriptor, rq);
        st.progress++;
        snprintf(st.last_progress, sizeof st.last_progress, "%s/%llu/%s/%u", rq->task_id,
                 (unsigned long long)rq->seq, rq->text, rq->tokens);
        if (!(loom_msg_flags(m) & LOOM_FLAG_ONEWAY)) {
            Loom__V1__ProgressReply rep = LOOM__V1__PROGRESS_REPLY__INIT;
            loom_rpc_reply(srv, to, &rep.base, NULL);
        }
        loom_pb_free(rq);
    } else {
        loom_rpc_reply_status(srv, to, LOOM_STATUS_UNIMPLEMENTED, "unknown method '%s'", meth);
    }
}

/* Replies from the worker to our Assign / CancelTask / Drain. */
static void handle_worker_reply(loom_rpc_server_t *srv, loom_msg_t *m)
{
    uint64_t id = loom_msg_request_id(m);
    char buf[128] = "";
    if (loom_msg_reply_status(m) != LOOM_STATUS_OK) {
        snprintf(buf, sizeof buf, "error:%s ", loom_status_name(loom_msg_reply_status(m)));
    } else if (id == assign_id) {
        Loom__V1__AssignReply *r = NULL;
        if (loom_msg_unpack(m, &loom__v1__assign_reply__descriptor, NULL, (ProtobufCMessage **)&r, NULL) == 0) {
            snprintf(buf, sizeof buf, "assign:%s ", r->accepted ? "accepted" : r->reason);
            loom_pb_free(r);
        }
        Loom__V1__CancelTaskRequest ct = LOOM__V1__CANCEL_TASK_REQUEST__INIT;
        ct.task_id = "t0";
        ct.attempt = 2;
        ct.reason = "retried elsewhere";
        send_to_worker(srv, LOOM_METHOD_CANCEL_TASK, &ct.base, &cancel_task_id);
    } else if (id == cancel_task_id) {
        Loom__V1__CancelTaskReply *r = NULL;
        if (loom_msg_unpack(m, &loom__v1__cancel_task_reply__descriptor, NULL, (ProtobufCMessage **)&r, NULL) == 0) {
            snprintf(buf, sizeof buf, "cancel_task:%s ", r->found ? "found" : "not_found");
            loom_pb_free(r);
        }
        Loom__V1__DrainRequest dr = LOOM__V1__DRAIN_REQUEST__INIT;
        dr.reason = "maintenance";
        dr.deadline_unix_ms = 42;
        send_to_worker(srv, LOOM_METHOD_DRAIN, &dr.base, &drain_id);
    } else if (id == drain_id) {
        Loom__V1__DrainReply *r = NULL;
        if (loom_msg_unpack(m, &loom__v1__drain_reply__descriptor, NULL, (ProtobufCMessage **)&r, NULL) == 0) {
            snprintf(buf, sizeof buf, "drain:%u", r->running_tasks);
            loom_pb_free(r);
        }
    }
    size_t l = strlen(st.worker_flow);
    snprintf(st.worker_flow + l, sizeof st.worker_flow - l, "%s", buf);
    (void)srv;
}

static void handle_stats(loom_rpc_server_t *srv, const loom_origin_t *to)
{
    const loom_rpc_server_stats_t *s = loom_rpc_server_stats(srv);
    char v[12][64];
    const char *k[12] = {"received", "malformed", "expired", "unauthenticated", "cancels",
                         "streams_done", "progress", "heartbeats", "results_ok", "last_result",
                         "worker_flow", "last_progress"};
    snprintf(v[0], 64, "%llu", (unsigned long long)s->received);
    snprintf(v[1], 64, "%llu", (unsigned long long)s->malformed);
    snprintf(v[2], 64, "%llu", (unsigned long long)s->expired);
    snprintf(v[3], 64, "%llu", (unsigned long long)s->unauthenticated);
    snprintf(v[4], 64, "%llu", (unsigned long long)st.cancels);
    snprintf(v[5], 64, "%llu", (unsigned long long)st.streams_done);
    snprintf(v[6], 64, "%llu", (unsigned long long)st.progress);
    snprintf(v[7], 64, "%llu", (unsigned long long)st.heartbeats);
    snprintf(v[8], 64, "%llu", (unsigned long long)st.results_ok);
    Loom__V1__Metadata md[12], *mdp[12];
    for (int i = 0; i < 12; i++) {
        loom__v1__metadata__init(&md[i]);
        md[i].key = (char *)k[i];
        md[i].value = i == 9 ? st.last_result : i == 10 ? st.worker_flow : i == 11 ? st.last_progress : v[i];
        mdp[i] = &md[i];
    }
    Loom__V1__Run run = LOOM__V1__RUN__INIT;
    run.run_id = "stats";
    run.labels = mdp;
    run.n_labels = 12;
    loom_rpc_reply(srv, to, &run.base, NULL);
}

static void handle(loom_rpc_server_t *srv, loom_msg_t *m)
{
    loom_origin_t to = *loom_msg_origin(m);
    if (loom_msg_is_cancel(m)) {
        for (int i = 0; i < MAX_PENDING; i++)
            if (pend[i].used && pend[i].to.request_id == to.request_id &&
                pend[i].to.peer_len == to.peer_len &&
                memcmp(pend[i].to.peer, to.peer, to.peer_len) == 0) {
                st.cancels++;
                if (pend[i].is_stream)
                    loom_rpc_stream_end(srv, &pend[i].to, LOOM_STATUS_CANCELLED, "cancelled", NULL);
                pend[i].used = 0;
            }
        return;
    }
    if (loom_msg_is_reply(m)) {
        handle_worker_reply(srv, m);
        return;
    }
    const char *meth = loom_msg_method(m);
    if (strncmp(meth, "loom.v1.Loom/", 13) == 0)
        handle_loom(srv, m, &to);
    else if (strncmp(meth, "loom.v1.WorkerHub/", 18) == 0)
        handle_worker(srv, m, &to);
    else if (strcmp(meth, "loom.test.Test/Stats") == 0)
        handle_stats(srv, &to);
    else
        loom_rpc_reply_status(srv, &to, LOOM_STATUS_UNIMPLEMENTED, "unknown method '%s'", meth);
}

int main(int argc, char **argv)
{
    const char *endpoint = "tcp://127.0.0.1:*", *token = NULL, *secret = NULL;
    loom_rpc_server_opts_t opts = {0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            printf("usage: loom-test-server [--endpoint EP] [--token T] [--secret S] [--curve-secret Z85] [--max-payload N]\n"
                   "A Loom RPC server with canned answers, for the protocol tests.\n");
            return 0;
        } else if (strcmp(argv[i], "--endpoint") == 0 && i + 1 < argc) {
            endpoint = argv[++i];
        } else if (strcmp(argv[i], "--token") == 0 && i + 1 < argc) {
            token = argv[++i];
        } else if (strcmp(argv[i], "--secret") == 0 && i + 1 < argc) {
            secret = argv[++i];
        } else if (strcmp(argv[i], "--curve-secret") == 0 && i + 1 < argc) {
            opts.curve_secret_key = argv[++i];
        } else if (strcmp(argv[i], "--max-payload") == 0 && i + 1 < argc) {
            opts.limits.max_payload = strtoull(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "loom-test-server: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    loom_auth_keyring_t ring = {0};
    opts.auth_token = token;
    if (secret) {
        ring.keys[0].key = (const uint8_t *)secret;
        ring.keys[0].len = strlen(secret);
        ring.n = 1;
        opts.auth = loom_auth_check;
        opts.auth_ud = &ring;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    started_ms = loom_clock_ms();
    void *ctx = zmq_ctx_new();
    loom_err_t err;
    loom_rpc_server_t *srv = loom_rpc_server_new(ctx, endpoint, &opts, &err);
    if (!srv) {
        char buf[1024];
        loom_err_format_long(&err, buf, sizeof buf);
        fprintf(stderr, "loom-test-server: %s\n", buf);
        return 1;
    }
    printf("endpoint %s\n", loom_rpc_server_endpoint(srv));
    fflush(stdout);
    while (!stop) {
        zmq_pollitem_t it = {loom_rpc_server_socket(srv), 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 5);
        loom_msg_t *m;
        while (loom_rpc_server_recv(srv, &m, &err) == 1) {
            handle(srv, m);
            loom_msg_destroy(&m);
        }
        tick(srv);
    }
    loom_rpc_server_destroy(&srv);
    zmq_ctx_term(ctx);
    return 0;
}

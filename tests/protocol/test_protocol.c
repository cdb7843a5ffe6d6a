/* test_protocol.c — protocol/ end to end: status codes, envelope decoding
 * of valid and malformed frames, and every RPC of rpc.proto and
 * worker.proto round-tripped through libloom_client against a real
 * loom-test-server process on a free loopback port (streaming, cancel,
 * deadlines, auth, CURVE, malformed frames on the wire). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "common/clock.h"
#include "common/sha.h"
#include "protocol/auth.h"
#include "protocol/failover.h"
#include "protocol/client.h"
#include "protocol/keys.h"
#include "protocol/envelope.h"
#include "protocol/status.h"

/* ---- a server process ------------------------------------------------------- */

typedef struct server {
    pid_t pid;
    char endpoint[128];
} server_t;

static char server_bin[512];

static int server_start(server_t *s, const char *const *extra)
{
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
    const char *argv[16] = {server_bin};
    int n = 1;
    for (; extra && *extra && n < 15; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    s->pid = fork();
    if (s->pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        execv(server_bin, (char *const *)argv);
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    char line[256] = "";
    if (!fgets(line, sizeof line, f) || sscanf(line, "endpoint %127s", s->endpoint) != 1) {
        fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

static void server_stop(server_t *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

static server_t plain; /* no auth */

static int setup_all(void **state)
{
    (void)state;
    const char *b = getenv("BUILD");
    snprintf(server_bin, sizeof server_bin, "%s/tests/loom-test-server", b ? b : "build");
    return server_start(&plain, NULL);
}

static int teardown_all(void **state)
{
    (void)state;
    server_stop(&plain);
    return 0;
}

static loom_client_t *connect_to(const server_t *s, const char *token)
{
    loom_client_opts_t o = {.auth_token = token, .client_name = "test_protocol"};
    loom_err_t err;
    loom_client_t *c = loom_client_new(s->endpoint, &o, &err);
    assert_non_null(c);
    return c;
}

/* Server counters via loom.test.Test/Stats. */
static long long stat_of(loom_client_t *c, const char *key, char *text, size_t n)
{
    Loom__V1__Run *run = NULL;
    loom_err_t err;
    int st = loom_client_call(c, "loom.test.Test/Stats", NULL, &loom__v1__run__descriptor, 5000,
                              (ProtobufCMessage **)&run, &err);
    assert_int_equal(st, LOOM_STATUS_OK);
    long long v = -1;
    for (size_t i = 0; i < run->n_labels; i++)
        if (strcmp(run->labels[i]->key, key) == 0) {
            v = atoll(run->labels[i]->value);
            if (text)
                snprintf(text, n, "%s", run->labels[i]->value);
        }
    loom_pb_free(run);
    return v;
}

static void assert_healthy(loom_client_t *c)
{
    Loom__V1__HealthRequest rq = LOOM__V1__HEALTH_REQUEST__INIT;
    Loom__V1__HealthReply *rp = NULL;
    loom_err_t err;
    assert_int_equal(loom_client_health(c, &rq, 5000, &rp, &err), LOOM_STATUS_OK);
    assert_string_equal(rp->status, "SERVING");
    assert_int_equal(rp->protocol_version, 1);
    loom_pb_free(rp);
}

/* ---- status codes ------------------------------------------------------------- */

static void status_names_match_grpc(void **state)
{
    (void)state;
    assert_string_equal(loom_status_name(0), "OK");
    assert_string_equal(loom_status_name(4), "DEADLINE_EXCEEDED");
    assert_string_equal(loom_status_name(16), "UNAUTHENTICATED");
    assert_string_equal(loom_status_name(17), "UNKNOWN_STATUS");
    assert_string_equal(loom_status_name(-1), "UNKNOWN_STATUS");
    for (int i = 0; i <= LOOM_STATUS_MAX; i++) {
        assert_int_equal(loom_status_parse(loom_status_name(i)), i);
        /* the .proto enum has the same numbering */
        const ProtobufCEnumValue *v =
            protobuf_c_enum_descriptor_get_value(&loom__v1__status_code__descriptor, i);
        assert_non_null(v);
        assert_string_equal(v->name, loom_status_name(i));
    }
    assert_int_equal(loom_status_from_err(LOOM_ENOTFOUND), LOOM_STATUS_NOT_FOUND);
    assert_int_equal(loom_status_from_err(LOOM_ETIMEDOUT), LOOM_STATUS_DEADLINE_EXCEEDED);
    assert_int_equal(loom_status_from_err(LOOM_EPARSE), LOOM_STATUS_INVALID_ARGUMENT);
    assert_int_equal(loom_status_from_err(LOOM_ETOOBIG), LOOM_STATUS_RESOURCE_EXHAUSTED);
    assert_int_equal(loom_err_from_status(LOOM_STATUS_UNAVAILABLE), LOOM_EUNAVAIL);
    assert_int_equal(loom_err_from_status(LOOM_STATUS_OK), 0);
}

/* ---- envelope decoding --------------------------------------------------------- */

static int decode_bytes(const void *hdr, size_t hl, const void *pl, size_t pll, int n,
                        loom_msg_t **m)
{
    loom_frame_t f[4] = {{"peer", 4}, {hdr, hl}, {pl, pll}, {"x", 1}};
    loom_err_t err;
    return loom_msg_decode(f, (size_t)n, 1, NULL, m, &err);
}

static void envelope_valid_roundtrip(void **state)
{
    (void)state;
    Loom__V1__GetRequest rq = LOOM__V1__GET_REQUEST__INIT;
    rq.run_id = "run-7";
    const char *k[] = {"authorization", "x-client"}, *v[] = {"tok", "t"};
    loom_send_t s = {.request_id = 99, .method = "loom.v1.Loom/Get", .deadline_ms = 123456,
                     .flags = LOOM_FLAG_ONEWAY, .meta_keys = k, .meta_values = v, .n_meta = 2,
                     .payload = &rq.base};
    uint8_t *h, *p;
    size_t hl, pl;
    assert_int_equal(loom_msg_encode(&s, &h, &hl, &p, &pl), 0);
    loom_msg_t *m;
    assert_int_equal(decode_bytes(h, hl, p, pl, 3, &m), LOOM_STATUS_OK);
    assert_int_equal(loom_msg_request_id(m), 99);
    assert_string_equal(loom_msg_method(m), "loom.v1.Loom/Get");
    assert_int_equal(loom_msg_deadline_ms(m), 123456);
    assert_int_equal(loom_msg_flags(m), LOOM_FLAG_ONEWAY);
    assert_string_equal(loom_msg_meta(m, "authorization"), "tok");
    assert_null(loom_msg_meta(m, "nope"));
    assert_int_equal(loom_msg_origin(m)->peer_len, 4);
    Loom__V1__GetRequest *back;
    assert_int_equal(loom_msg_unpack(m, &loom__v1__get_request__descriptor, NULL,
                                     (ProtobufCMessage **)&back, NULL), LOOM_STATUS_OK);
    assert_string_equal(back->run_id, "run-7");
    loom_pb_free(back);
    loom_msg_destroy(&m);
    loom_msg_destroy(&m); /* safe twice */
    free(h);
    free(p);
}

static void envelope_rejects_malformed(void **state)
{
    (void)state;
    loom_send_t s = {.request_id = 5, .method = "loom.v1.Loom/Health"};
    uint8_t *h, *p;
    size_t hl, pl;
    assert_int_equal(loom_msg_encode(&s, &h, &hl, &p, &pl), 0);
    loom_msg_t *m;
    /* empty message; routing id only */
    loom_err_t err;
    assert_int_equal(loom_msg_decode(NULL, 0, 1, NULL, &m, &err), LOOM_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(loom_msg_error(m), "empty message"));
    loom_msg_destroy(&m);
    assert_int_equal(decode_bytes(h, hl, NULL, 0, 1, &m), LOOM_STATUS_INVALID_ARGUMENT);
    loom_msg_destroy(&m);
    /* truncated header */
    assert_int_equal(decode_bytes(h, hl - 3, NULL, 0, 2, &m), LOOM_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(loom_msg_error(m), "truncated or garbage"));
    loom_msg_destroy(&m);
    /* garbage */
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x13, 0x37, 0x00};
    assert_int_equal(decode_bytes(garbage, sizeof garbage, NULL, 0, 2, &m), LOOM_STATUS_INVALID_ARGUMENT);
    loom_msg_destroy(&m);
    /* a header whose method field claims 1 GiB: refused, nothing allocated */
    static const uint8_t gib[] = {0x08, 0x01, 0x1a, 0x80, 0x80, 0x80, 0x80, 0x04, 'x'};
    assert_int_equal(decode_bytes(gib, sizeof gib, NULL, 0, 2, &m), LOOM_STATUS_INVALID_ARGUMENT);
    loom_msg_destroy(&m);
    /* wrong version (keeps the request id so the reply can be addressed) */
    static const uint8_t v7[] = {0x08, 0x07, 0x10, 0x2a};
    assert_int_equal(decode_bytes(v7, sizeof v7, NULL, 0, 2, &m), LOOM_STATUS_FAILED_PRECONDITION);
    assert_int_equal(loom_msg_request_id(m), 42);
    assert_non_null(strstr(loom_msg_error(m), "version 7"));
    loom_msg_destroy(&m);
    /* too many frames */
    assert_int_equal(decode_bytes(h, hl, "a", 1, 4, &m), LOOM_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(loom_msg_error(m), "too many frames"));
    loom_msg_destroy(&m);
    /* oversized payload and header against small limits */
    loom_limits_t lim = {.max_header = 8, .max_payload = 4, .max_decoded = 1024};
    loom_frame_t f[3] = {{"peer", 4}, {h, hl}, {"12345", 5}};
    assert_int_equal(loom_msg_decode(f, 3, 1, &lim, &m, &err), LOOM_STATUS_RESOURCE_EXHAUSTED);
    assert_int_equal(err.code, LOOM_ETOOBIG);
    loom_msg_destroy(&m);
    lim.max_header = 1024;
    assert_int_equal(loom_msg_decode(f, 3, 1, &lim, &m, &err), LOOM_STATUS_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(err.msg, "payload frame of 5 bytes"));
    loom_msg_destroy(&m);
    free(h);
    free(p);
}

static void decoded_size_is_bounded(void **state)
{
    (void)state;
    /* 4000 empty StepStatus entries: 2 bytes each on the wire, far more
     * once decoded. A 16 KiB budget must refuse it. */
    size_t n = 4000;
    uint8_t *buf = malloc(2 * n);
    for (size_t i = 0; i < n; i++) {
        buf[2 * i] = (13 << 3) | 2; /* Run.steps, length-delimited */
        buf[2 * i + 1] = 0;
    }
    ProtobufCMessage *out;
    loom_err_t err;
    assert_int_equal(loom_pb_unpack(&loom__v1__run__descriptor, buf, 2 * n, 16 * 1024, &out, &err),
                     LOOM_STATUS_RESOURCE_EXHAUSTED);
    assert_null(out);
    assert_int_equal(loom_pb_unpack(&loom__v1__run__descriptor, buf, 2 * n, 0, &out, &err),
                     LOOM_STATUS_OK);
    assert_int_equal(((Loom__V1__Run *)out)->n_steps, n);
    loom_pb_free(out);
    free(buf);
}

static void auth_tokens(void **state)
{
    (void)state;
    const uint8_t key[] = "s3cret";
    char tok[LOOM_AUTH_TOKEN_MAX], subj[LOOM_AUTH_MAX_SUBJECT + 1];
    loom_err_t err;
    assert_int_equal(loom_auth_token_make(key, 6, "cli", 2000000000, tok, sizeof tok, &err), 0);
    assert_int_equal(loom_auth_token_verify(key, 6, tok, 1700000000, subj, &err), 0);
    assert_string_equal(subj, "cli");
    assert_int_equal(loom_auth_token_verify(key, 6, tok, 2100000000, NULL, &err), LOOM_ETIMEDOUT);
    assert_int_equal(loom_auth_token_verify((const uint8_t *)"other", 5, tok, 0, NULL, &err), LOOM_EPROTO);
    tok[strlen(tok) - 1] ^= 1;
    assert_int_equal(loom_auth_token_verify(key, 6, tok, 0, NULL, &err), LOOM_EPROTO);
    assert_int_equal(loom_auth_token_verify(key, 6, "loom1.x", 0, NULL, &err), LOOM_EINVAL);
    assert_int_equal(loom_auth_token_verify(key, 6, "garbage", 0, NULL, &err), LOOM_EINVAL);
    assert_int_equal(loom_auth_token_make(key, 6, "bad subject", 0, tok, sizeof tok, &err), LOOM_EINVAL);
}

/* loom2 tokens carry tenant and role, all under the signature; garbage
 * is malformed, never accepted; a keyring of two secrets (rotation)
 * accepts tokens of either and nothing else. */
static void auth_tokens_tenant_role_rotation(void **state)
{
    (void)state;
    const uint8_t key[] = "s3cret";
    char tok[LOOM_AUTH_TOKEN_MAX];
    loom_principal_t who;
    loom_err_t err;
    assert_int_equal(loom_auth_token_mint(key, 6, "alice", "team-a", "admin", 2000000000, tok,
                                          sizeof tok, &err), 0);
    assert_int_equal(loom_auth_token_check(key, 6, tok, 1700000000, &who, &err), 0);
    assert_string_equal(who.subject, "alice");
    assert_string_equal(who.tenant, "team-a");
    assert_string_equal(who.role, "admin");
    assert_int_equal(who.expiry_unix_s, 2000000000);
    char forged[LOOM_AUTH_TOKEN_MAX];
    strcpy(forged, tok);
    strstr(forged, "team-a")[5] = 'b'; /* another tenant, same signature */
    assert_int_equal(loom_auth_token_check(key, 6, forged, 0, &who, &err), LOOM_EPROTO);
    strcpy(forged, tok);
    memcpy(strstr(forged, "admin"), "user.", 5); /* shifts the fields: malformed or forged */
    assert_int_not_equal(loom_auth_token_check(key, 6, forged, 0, &who, &err), 0);
    assert_int_equal(loom_auth_token_mint(key, 6, "a", "t", "root", 0, tok, sizeof tok, &err), LOOM_EINVAL);
    assert_int_equal(loom_auth_token_mint(key, 6, "a", "t.x", "user", 0, tok, sizeof tok, &err), LOOM_EINVAL);
    char big[1200];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    memcpy(big, "loom2.", 6);
    const char *garbage[] = {"loom2.", "loom2.a.b.user.0.", "loom2.a.b.root.0.00",
                             "loom2.a.b.user.x.0000000000000000000000000000000000000000000000000000000000000000",
                             "loom2.a.b.user.0.0000000000000000000000000000000000000000000000000000000000000000.x",
                             "loom2..b.user.0.0000000000000000000000000000000000000000000000000000000000000000",
                             "", "....", big, NULL};
    for (int i = 0; garbage[i]; i++)
        assert_int_equal(loom_auth_token_check(key, 6, garbage[i], 0, &who, &err), LOOM_EINVAL);
    assert_int_equal(loom_auth_token_check(key, 6, NULL, 0, &who, &err), LOOM_EINVAL);
    /* rotation: the file holds the old and the new secret */
    char path[] = "/tmp/loom-ring-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "# current, then next\nold-secret\n\nnew-secret\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    loom_auth_keyring_t ring;
    assert_int_equal(loom_auth_keyring_load(&ring, path, &err), 0);
    assert_int_equal(ring.n, 2);
    const char *secrets[] = {"old-secret", "new-secret", "third"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(loom_auth_token_mint((const uint8_t *)secrets[i], strlen(secrets[i]), "bob",
                                              NULL, NULL, 0, tok, sizeof tok, &err), 0);
        int rc = loom_auth_check(&ring, tok, NULL, &who, &err);
        assert_int_equal(rc, i < 2 ? 0 : LOOM_EPROTO);
        if (i < 2)
            assert_string_equal(who.tenant, "default");
    }
    FILE *f = fopen(path, "a");
    fputs("third\n", f);
    fclose(f);
    assert_int_equal(loom_auth_keyring_load(&ring, path, &err), LOOM_EINVAL); /* three secrets */
    f = fopen(path, "w");
    fclose(f);
    assert_int_equal(loom_auth_keyring_load(&ring, path, &err), LOOM_EINVAL); /* none */
    unlink(path);
    assert_int_equal(loom_auth_keyring_load(&ring, path, &err), LOOM_EIO);
}

/* ---- every RPC of rpc.proto through the client ---------------------------------- */

static void loom_rpcs_roundtrip(void **state)
{
    (void)state;
    loom_client_t *c = connect_to(&plain, NULL);
    loom_err_t err;
    assert_healthy(c);

    Loom__V1__SubmitRequest sr = LOOM__V1__SUBMIT_REQUEST__INIT;
    Loom__V1__Metadata l1 = LOOM__V1__METADATA__INIT, l2 = LOOM__V1__METADATA__INIT;
    Loom__V1__Metadata *labels[] = {&l1, &l2};
    l1.key = "retrieve";
    l1.value = "vector.search";
    l2.key = "answer";
    l2.value = "llm.generate";
    sr.workflow_yaml = "version: 1\nname: support\n";
    sr.workflow_name = "support.yaml";
    sr.inputs_json = "{\"question\":\"why\"}";
    sr.idempotency_key = "k-1";
    sr.sla_latency_ms = 1500;
    sr.objective = LOOM__V1__OBJECTIVE__OBJECTIVE_COST;
    sr.labels = labels;
    sr.n_labels = 2;
    Loom__V1__SubmitReply *srp = NULL;
    assert_int_equal(loom_client_submit(c, &sr, 5000, &srp, &err), LOOM_STATUS_OK);
    char hex[LOOM_SHA256_HEX_LEN], want[32];
    loom_sha256_hex(sr.workflow_yaml, strlen(sr.workflow_yaml), hex);
    snprintf(want, sizeof want, "run-%.12s", hex);
    assert_string_equal(srp->run_id, want);
    assert_int_equal(srp->state, LOOM__V1__RUN_STATE__RUN_QUEUED);
    assert_int_equal(srp->plan->n_placements, 2);
    assert_string_equal(srp->plan->placements[1]->step_id, "answer");
    assert_string_equal(srp->plan->placements[1]->op, "llm.generate");
    assert_int_equal(srp->plan->placements[1]->device_kind, LOOM__V1__DEVICE_KIND__DEVICE_KIND_GPU);
    assert_true(srp->plan->placements[1]->predicted_ms == 20.0);
    assert_string_equal(srp->plan->notes[0], "support.yaml");
    assert_string_equal(srp->plan->notes[1], "{\"question\":\"why\"}");
    assert_string_equal(srp->plan->notes[2], "k-1");
    assert_true(srp->plan->sla_latency_ms == 1500);
    assert_int_equal(srp->plan->objective, LOOM__V1__OBJECTIVE__OBJECTIVE_COST);
    loom_pb_free(srp);

    Loom__V1__PlanRequest pr = LOOM__V1__PLAN_REQUEST__INIT;
    pr.workflow_name = "rag.yaml";
    pr.fleet_yaml = "gpus: 2";
    pr.sla_latency_ms = 800;
    pr.objective = LOOM__V1__OBJECTIVE__OBJECTIVE_LATENCY;
    Loom__V1__PlanReply *prp = NULL;
    assert_int_equal(loom_client_plan(c, &pr, 5000, &prp, &err), LOOM_STATUS_OK);
    assert_true(prp->plan->predicted_latency_ms == 400);
    assert_string_equal(prp->plan->notes[1], "gpus: 2");
    assert_int_equal(prp->plan->objective, LOOM__V1__OBJECTIVE__OBJECTIVE_LATENCY);
    loom_pb_free(prp);

    Loom__V1__GetRequest gr = LOOM__V1__GET_REQUEST__INIT;
    gr.run_id = "run-42";
    Loom__V1__GetReply *grp = NULL;
    assert_int_equal(loom_client_get(c, &gr, 5000, &grp, &err), LOOM_STATUS_OK);
    assert_string_equal(grp->run->run_id, "run-42");
    assert_int_equal(grp->run->state, LOOM__V1__RUN_STATE__RUN_FAILED);
    assert_true(grp->run->elapsed_ms == 2500.5);
    assert_int_equal(grp->run->n_steps, 1);
    assert_int_equal(grp->run->steps[0]->attempt, 3);
    assert_int_equal(grp->run->steps[0]->error->code, LOOM__V1__STATUS_CODE__UNAVAILABLE);
    assert_true(grp->run->steps[0]->error->retryable);
    loom_pb_free(grp);

    gr.run_id = "missing";
    grp = NULL;
    assert_int_equal(loom_client_get(c, &gr, 5000, &grp, &err), LOOM_STATUS_NOT_FOUND);
    assert_null(grp);
    assert_int_equal(err.code, LOOM_ENOTFOUND);
    assert_non_null(strstr(err.msg, "run 'missing' not found"));

    Loom__V1__ListRequest lr = LOOM__V1__LIST_REQUEST__INIT;
    lr.limit = 3;
    lr.workflow_name = "rag";
    lr.state = LOOM__V1__RUN_STATE__RUN_SUCCEEDED;
    Loom__V1__ListReply *lrp = NULL;
    assert_int_equal(loom_client_list(c, &lr, 5000, &lrp, &err), LOOM_STATUS_OK);
    assert_int_equal(lrp->n_runs, 3);
    assert_string_equal(lrp->runs[2]->run_id, "rag-2");
    assert_int_equal(lrp->runs[2]->state, LOOM__V1__RUN_STATE__RUN_SUCCEEDED);
    assert_string_equal(lrp->next_page_token, "page-2");
    loom_pb_free(lrp);

    Loom__V1__CancelRequest cr = LOOM__V1__CANCEL_REQUEST__INIT;
    cr.run_id = "run-1";
    cr.reason = "user";
    Loom__V1__CancelReply *crp = NULL;
    assert_int_equal(loom_client_cancel(c, &cr, 5000, &crp, &err), LOOM_STATUS_OK);
    assert_int_equal(crp->state, LOOM__V1__RUN_STATE__RUN_CANCELLED);
    loom_pb_free(crp);

    Loom__V1__ListWorkersRequest wr = LOOM__V1__LIST_WORKERS_REQUEST__INIT;
    wr.kind = LOOM__V1__DEVICE_KIND__DEVICE_KIND_NPU;
    Loom__V1__ListWorkersReply *wrp = NULL;
    assert_int_equal(loom_client_list_workers(c, &wr, 5000, &wrp, &err), LOOM_STATUS_OK);
    assert_int_equal(wrp->n_workers, 1);
    const Loom__V1__DeviceProfile *dp = wrp->workers[0]->profile;
    assert_int_equal(dp->kind, LOOM__V1__DEVICE_KIND__DEVICE_KIND_NPU);
    assert_string_equal(dp->arch, "sm_90");
    assert_int_equal(dp->memory_bytes, 80ull << 30);
    assert_true(dp->measured_gbps == 3350.25);
    assert_true(dp->emulated);
    assert_string_equal(dp->loaded_models[0], "llama-3-8b-q4");
    loom_pb_free(wrp);

    /* unknown method */
    ProtobufCMessage *any = NULL;
    assert_int_equal(loom_client_call(c, "loom.v1.Loom/Nope", NULL, &loom__v1__health_reply__descriptor,
                                      5000, &any, &err), LOOM_STATUS_UNIMPLEMENTED);
    loom_client_destroy(&c);
    loom_client_destroy(&c);
}

/* A reply over the client's own payload limit fails with a status, not a crash or a hang. */
static void oversized_reply_is_refused_by_client(void **state)
{
    (void)state;
    loom_client_opts_t o = {.limits = {.max_header = 4096, .max_payload = 16, .max_decoded = 4096}};
    loom_err_t err;
    loom_client_t *c = loom_client_new(plain.endpoint, &o, &err);
    assert_non_null(c);
    Loom__V1__GetRequest gr = LOOM__V1__GET_REQUEST__INIT;
    gr.run_id = "run-big";
    Loom__V1__GetReply *grp = NULL;
    assert_int_equal(loom_client_get(c, &gr, 5000, &grp, &err), LOOM_STATUS_RESOURCE_EXHAUSTED);
    assert_null(grp);
    assert_non_null(strstr(err.msg, "exceeds the limit of 16"));
    loom_client_destroy(&c);
}

/* ---- streaming, cancel, deadlines -------------------------------------------------- */

static void watch_streams_until_end(void **state)
{
    (void)state;
    loom_client_t *c = connect_to(&plain, NULL);
    loom_err_t err;
    Loom__V1__WatchRequest wr = LOOM__V1__WATCH_REQUEST__INIT;
    wr.run_id = "count:5";
    wr.after_seq = 10;
    loom_stream_t *s;
    assert_int_equal(loom_client_watch(c, &wr, 10000, &s, &err), LOOM_STATUS_OK);
    Loom__V1__RunEvent *ev;
    int n = 0, rc;
    while ((rc = loom_stream_next(s, -1, (ProtobufCMessage **)&ev, &err)) == LOOM_STREAM_ITEM) {
        n++;
        assert_int_equal(ev->seq, 10 + n);
        assert_string_equal(ev->run_id, "count:5");
        loom_pb_free(ev);
    }
    assert_int_equal(rc, LOOM_STREAM_END);
    assert_int_equal(n, 5);
    assert_int_equal(loom_stream_status(s), LOOM_STATUS_OK);
    assert_string_equal(loom_stream_message(s), "run finished");
    loom_stream_destroy(&s);
    loom_client_destroy(&c);
}

static void watch_cancel_reaches_server(void **state)
{
    (void)state;
    loom_client_t *c = connect_to(&plain, NULL);
    loom_err_t err;
    long long before = stat_of(c, "cancels", NULL, 0);
    Loom__V1__WatchRequest wr = LOOM__V1__WATCH_REQUEST__INIT;
    wr.run_id = "forever";
    loom_stream_t *s;
    assert_int_equal(loom_client_watch(c, &wr, 0, &s, &err), LOOM_STATUS_OK);
    Loom__V1__RunEvent *ev;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(loom_stream_next(s, 5000, (ProtobufCMessage **)&ev, &err), LOOM_STREAM_ITEM);
        loom_pb_free(ev);
    }
    /* A unary call while the stream is open: its items are queued meanwhile. */
    assert_healthy(c);
    assert_int_equal(loom_stream_next(s, 5000, (ProtobufCMessage **)&ev, &err), LOOM_STREAM_ITEM);
    loom_pb_free(ev);
    loom_stream_cancel(s);
    assert_int_equal(loom_stream_status(s), LOOM_STATUS_CANCELLED);
    assert_int_equal(loom_stream_next(s, 10, (ProtobufCMessage **)&ev, &err), LOOM_STREAM_END);
    loom_stream_destroy(&s);
    /* The server saw the cancel frame (Stats is answered after it, in order). */
    assert_int_equal(stat_of(c, "cancels", NULL, 0), before + 1);
    loom_client_destroy(&c);
}

static void deadlines_are_honoured(void **state)
{
    (void)state;
    loom_client_t *c = connect_to(&plain, NULL);
    loom_err_t err;
    Loom__V1__GetRequest gr = LOOM__V1__GET_REQUEST__INIT;
    gr.run_id = "slow:600";
    Loom__V1__GetReply *grp = NULL;
    uint64_t t0 = loom_clock_ms();
    assert_int_equal(loom_client_get(c, &gr, 150, &grp, &err), LOOM_STATUS_DEADLINE_EXCEEDED);
    assert_true(loom_clock_ms() - t0 < 600); /* returned at the deadline, not at the reply */
    assert_int_equal(err.code, LOOM_ETIMEDOUT);
    /* the late reply is dropped; the client keeps working */
    gr.run_id = "slow:1";
    assert_int_equal(loom_client_get(c, &gr, 5000, &grp, &err), LOOM_STATUS_OK);
    assert_string_equal(grp->run->run_id, "slow:1");
    loom_pb_free(grp);

    /* a stream's deadline */
    Loom__V1__WatchRequest wr = LOOM__V1__WATCH_REQUEST__INIT;
    wr.run_id = "forever";
    loom_stream_t *s;
    assert_int_equal(loom_client_watch(c, &wr, 200, &s, &err), LOOM_STATUS_OK);
    Loom__V1__RunEvent *ev;
    int rc;
    while ((rc = loom_stream_next(s, -1, (ProtobufCMessage **)&ev, &err)) == LOOM_STREAM_ITEM)
        loom_pb_free(ev);
    assert_int_equal(rc, LOOM_STREAM_END);
    assert_int_equal(loom_stream_status(s), LOOM_STATUS_DEADLINE_EXCEEDED);
    loom_stream_destroy(&s);

    /* a request whose deadline already passed is refused by the server */
    void *ctx = zmq_ctx_new(), *d = zmq_socket(ctx, ZMQ_DEALER);
    zmq_connect(d, plain.endpoint);
    loom_send_t snd = {.request_id = 77, .method = LOOM_METHOD_HEALTH, .deadline_ms = loom_wall_ms() - 1000};
    assert_int_equal(loom_msg_send(d, &snd, 0, &err), 0);
    loom_msg_t *m;
    assert_int_equal(loom_msg_recv(d, 0, NULL, 0, &m, &err), 1);
    assert_int_equal(loom_msg_request_id(m), 77);
    assert_int_equal(loom_msg_reply_status(m), LOOM_STATUS_DEADLINE_EXCEEDED);
    loom_msg_destroy(&m);
    zmq_close(d);
    zmq_ctx_term(ctx);
    loom_client_destroy(&c);
}

/* ---- worker.proto: Register/Heartbeat/Result/Progress + Assign/CancelTask/Drain ---- */

static void worker_protocol_roundtrip(void **state)
{
    (void)state;
    loom_client_t *w = connect_to(&plain, NULL);
    loom_err_t err;
    Loom__V1__RegisterRequest rr = LOOM__V1__REGISTER_REQUEST__INIT;
    Loom__V1__DeviceProfile dp = LOOM__V1__DEVICE_PROFILE__INIT;
    char *ops[] = {"llm.prefill", "llm.decode"};
    dp.kind = LOOM__V1__DEVICE_KIND__DEVICE_KIND_GPU;
    dp.model_name = "A100";
    dp.arch = "sm_80";
    dp.compute_units = 108;
    dp.memory_bytes = 40ull << 30;
    dp.measured_gflops = 19000;
    dp.measured_gbps = 1500;
    dp.supported_ops = ops;
    dp.n_supported_ops = 2;
    rr.worker_id = "gpu0";
    rr.profile = &dp;
    Loom__V1__RegisterReply *rrp = NULL;
    assert_int_equal(loom_client_register(w, &rr, 5000, &rrp, &err), LOOM_STATUS_OK);
    assert_string_equal(rrp->worker_id, "gpu0/A100/sm_80/108/42949672960");
    assert_int_equal(rrp->heartbeat_timeout_ms, 20500);
    loom_pb_free(rrp);

    /* loomd -> worker: Assign, CancelTask, Drain, answered in turn */
    const char *expect[] = {LOOM_METHOD_ASSIGN, LOOM_METHOD_CANCEL_TASK, LOOM_METHOD_DRAIN};
    for (int i = 0; i < 3; i++) {
        loom_msg_t *m = NULL;
        assert_int_equal(loom_client_serve_next(w, 5000, &m, &err), 1);
        assert_string_equal(loom_msg_method(m), expect[i]);
        assert_false(loom_msg_is_reply(m));
        if (i == 0) {
            Loom__V1__AssignRequest *a;
            assert_int_equal(loom_msg_unpack(m, &loom__v1__assign_request__descriptor, NULL,
                                             (ProtobufCMessage **)&a, &err), LOOM_STATUS_OK);
            assert_string_equal(a->task_id, "t1");
            assert_string_equal(a->op, "llm.decode");
            assert_string_equal(a->input_json, "{\"prompt\":\"hi\"}");
            assert_int_equal(a->deadline_unix_ms, 1767225600000);
            assert_string_equal(a->artifacts[0]->target, "sm_90");
            assert_int_equal(a->artifacts[0]->size_bytes, 4096);
            assert_true(a->stream_progress);
            loom_pb_free(a);
            Loom__V1__AssignReply ar = LOOM__V1__ASSIGN_REPLY__INIT;
            ar.accepted = 1;
            assert_int_equal(loom_client_respond(w, m, LOOM_STATUS_OK, NULL, &ar.base, &err), 0);
        } else if (i == 1) {
            Loom__V1__CancelTaskRequest *ct;
            assert_int_equal(loom_msg_unpack(m, &loom__v1__cancel_task_request__descriptor, NULL,
                                             (ProtobufCMessage **)&ct, &err), LOOM_STATUS_OK);
            assert_string_equal(ct->task_id, "t0");
            assert_int_equal(ct->attempt, 2);
            loom_pb_free(ct);
            Loom__V1__CancelTaskReply cr = LOOM__V1__CANCEL_TASK_REPLY__INIT;
            assert_int_equal(loom_client_respond(w, m, LOOM_STATUS_OK, NULL, &cr.base, &err), 0);
        } else {
            Loom__V1__DrainRequest *dr;
            assert_int_equal(loom_msg_unpack(m, &loom__v1__drain_request__descriptor, NULL,
                                             (ProtobufCMessage **)&dr, &err), LOOM_STATUS_OK);
            assert_string_equal(dr->reason, "maintenance");
            loom_pb_free(dr);
            Loom__V1__DrainReply drp = LOOM__V1__DRAIN_REPLY__INIT;
            drp.running_tasks = 1;
            assert_int_equal(loom_client_respond(w, m, LOOM_STATUS_OK, NULL, &drp.base, &err), 0);
        }
        loom_msg_destroy(&m);
    }

    /* worker -> loomd: Progress (one-way), Heartbeat, Result */
    Loom__V1__ProgressRequest pg = LOOM__V1__PROGRESS_REQUEST__INIT;
    pg.task_id = "t1";
    pg.seq = 1;
    pg.text = "Hello";
    pg.tokens = 2;
    assert_int_equal(loom_client_send_oneway(w, LOOM_METHOD_PROGRESS, &pg.base, &err), 0);
    Loom__V1__HeartbeatRequest hb = LOOM__V1__HEARTBEAT_REQUEST__INIT;
    char *running[] = {"t1"};
    hb.free_memory_bytes = 1ull << 33;
    hb.running_task_ids = running;
    hb.n_running_task_ids = 1;
    Loom__V1__HeartbeatReply *hbr = NULL;
    assert_int_equal(loom_client_heartbeat(w, &hb, 5000, &hbr, &err), LOOM_STATUS_OK);
    assert_true(hbr->known);
    loom_pb_free(hbr);
    Loom__V1__ResultRequest rs = LOOM__V1__RESULT_REQUEST__INIT;
    Loom__V1__Timings tm = LOOM__V1__TIMINGS__INIT;
    uint8_t kv[3000];
    memset(kv, 7, sizeof kv);
    rs.task_id = "t1";
    rs.attempt = 1;
    rs.ok = 1;
    rs.output_json = "{\"text\":\"Hello world\"}";
    rs.output.data = kv;
    rs.output.len = sizeof kv;
    tm.tokens_out = 17;
    tm.compute_ms = 12.5;
    rs.timings = &tm;
    Loom__V1__ResultReply *rsr = NULL;
    assert_int_equal(loom_client_result(w, &rs, 5000, &rsr, &err), LOOM_STATUS_OK);
    assert_true(rsr->accepted);
    loom_pb_free(rsr);

    char text[256];
    stat_of(w, "last_result", text, sizeof text);
    assert_string_equal(text, "t1/1/ok/{\"text\":\"Hello world\"}/3000/17/12.5");
    stat_of(w, "last_progress", text, sizeof text);
    assert_string_equal(text, "t1/1/Hello/2");
    stat_of(w, "worker_flow", text, sizeof text);
    assert_string_equal(text, "assign:accepted cancel_task:not_found drain:1");
    loom_client_destroy(&w);
}

/* ---- malformed frames on the wire ---------------------------------------------------- */

/* Sends raw frames on a DEALER and returns the status of the reply. */
static int raw_status(void *d, const loom_frame_t *f, size_t n, uint64_t *req_id, char *msg, size_t ml)
{
    for (size_t i = 0; i < n; i++)
        zmq_send(d, f[i].data, f[i].len, i + 1 < n ? ZMQ_SNDMORE : 0);
    zmq_pollitem_t it = {d, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, 5000) != 1)
        return -1;
    loom_msg_t *m;
    loom_err_t err;
    assert_int_equal(loom_msg_recv(d, 0, NULL, 0, &m, &err), 1);
    assert_int_equal(loom_msg_status(m), LOOM_STATUS_OK);
    assert_true(loom_msg_is_reply(m));
    int st = loom_msg_reply_status(m);
    if (req_id)
        *req_id = loom_msg_request_id(m);
    if (msg)
        snprintf(msg, ml, "%s", loom_msg_reply_message(m));
    loom_msg_destroy(&m);
    return st;
}

static void malformed_frames_get_a_status(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new(), *d = zmq_socket(ctx, ZMQ_DEALER);
    int64_t big = 64 << 20;
    zmq_setsockopt(d, ZMQ_MAXMSGSIZE, &big, sizeof big);
    assert_int_equal(zmq_connect(d, plain.endpoint), 0);
    loom_send_t s = {.request_id = 31, .method = LOOM_METHOD_HEALTH};
    uint8_t *h, *p;
    size_t hl, pl;
    assert_int_equal(loom_msg_encode(&s, &h, &hl, &p, &pl), 0);
    char msg[512];
    uint64_t id = 0;

    static const uint8_t garbage[] = {0xde, 0xad, 0xbe, 0xef, 0xff, 0xff};
    loom_frame_t g[] = {{garbage, sizeof garbage}};
    assert_int_equal(raw_status(d, g, 1, NULL, msg, sizeof msg), LOOM_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(msg, "does not decode"));

    loom_frame_t t[] = {{h, hl - 2}};
    assert_int_equal(raw_status(d, t, 1, NULL, msg, sizeof msg), LOOM_STATUS_INVALID_ARGUMENT);

    static const uint8_t v2[] = {0x08, 0x02, 0x10, 0x09};
    loom_frame_t v[] = {{v2, sizeof v2}};
    assert_int_equal(raw_status(d, v, 1, &id, msg, sizeof msg), LOOM_STATUS_FAILED_PRECONDITION);
    assert_int_equal(id, 9);
    assert_non_null(strstr(msg, "protocol version 2 not supported"));

    static const uint8_t gib[] = {0x08, 0x01, 0x1a, 0x80, 0x80, 0x80, 0x80, 0x04, 'x'};
    loom_frame_t gb[] = {{gib, sizeof gib}};
    assert_int_equal(raw_status(d, gb, 1, NULL, msg, sizeof msg), LOOM_STATUS_INVALID_ARGUMENT);

    loom_frame_t many[] = {{h, hl}, {"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}, {"e", 1}};
    assert_int_equal(raw_status(d, many, 6, &id, msg, sizeof msg), LOOM_STATUS_INVALID_ARGUMENT);
    assert_int_equal(id, 31);
    assert_non_null(strstr(msg, "too many frames: 6"));

    loom_frame_t empty[] = {{"", 0}};
    assert_int_equal(raw_status(d, empty, 1, NULL, msg, sizeof msg), LOOM_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(msg, "empty header"));

    /* a payload over the 16 MiB limit (but under libzmq's hard cap) */
    size_t n = (16u << 20) + 1;
    char *huge = calloc(1, n);
    loom_frame_t hg[] = {{h, hl}, {huge, n}};
    assert_int_equal(raw_status(d, hg, 2, NULL, msg, sizeof msg), LOOM_STATUS_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(msg, "exceeds the limit"));
    free(huge);

    /* a request without a method */
    loom_send_t nm = {.request_id = 3};
    uint8_t *h2, *p2;
    size_t hl2, pl2;
    loom_msg_encode(&nm, &h2, &hl2, &p2, &pl2);
    loom_frame_t nmf[] = {{h2, hl2}};
    assert_int_equal(raw_status(d, nmf, 1, NULL, msg, sizeof msg), LOOM_STATUS_INVALID_ARGUMENT);
    free(h2);

    /* and the server keeps serving, on this socket too */
    loom_frame_t ok[] = {{h, hl}};
    assert_int_equal(raw_status(d, ok, 1, &id, msg, sizeof msg), LOOM_STATUS_OK);
    assert_int_equal(id, 31);
    free(h);
    free(p);
    zmq_close(d);
    zmq_ctx_term(ctx);
    loom_client_t *c = connect_to(&plain, NULL);
    assert_healthy(c);
    assert_true(stat_of(c, "malformed", NULL, 0) >= 8);
    loom_client_destroy(&c);
}

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

/* A raw ZMTP 3.0 peer that announces a 1 GiB frame: libzmq must drop it
 * before allocating (ZMQ_MAXMSGSIZE from loom_socket_setup). */
static void zmtp_frame_claiming_1gib_is_refused(void **state)
{
    (void)state;
    int port = 0;
    assert_int_equal(sscanf(strrchr(plain.endpoint, ':') + 1, "%d", &port), 1);
    long before = rss_kib(plain.pid);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    uint8_t greet[64] = {0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0, 'N', 'U', 'L', 'L'};
    assert_int_equal(write(fd, greet, 64), 64);
    uint8_t peer_greet[64];
    size_t got = 0;
    while (got < 64) {
        ssize_t r = read(fd, peer_greet + got, 64 - got);
        assert_true(r > 0);
        got += (size_t)r;
    }
    /* READY command with Socket-Type=DEALER */
    uint8_t ready[] = {0x04, 28, 5, 'R', 'E', 'A', 'D', 'Y', 11, 'S', 'o', 'c', 'k', 'e', 't',
                       '-', 'T', 'y', 'p', 'e', 0, 0, 0, 6, 'D', 'E', 'A', 'L', 'E', 'R'};
    assert_int_equal(write(fd, ready, sizeof ready), (ssize_t)sizeof ready);
    /* a long frame header claiming 1 GiB, then a little data */
    uint8_t hdr[9] = {0x02, 0, 0, 0, 0, 0x40, 0, 0, 0};
    assert_int_equal(write(fd, hdr, sizeof hdr), 9);
    char junk[4096] = {0};
    (void)!write(fd, junk, sizeof junk);
    /* the server closes the connection */
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[512];
    ssize_t r;
    int closed = 0;
    for (int i = 0; i < 50; i++) {
        r = read(fd, buf, sizeof buf);
        if (r <= 0) {
            closed = r == 0 || errno == ECONNRESET; /* not a timeout (EAGAIN) */
            break;
        }
    }
    close(fd);
    assert_true(closed);
    long after = rss_kib(plain.pid);
    assert_true(after - before < 100 * 1024); /* nowhere near 1 GiB */
    loom_client_t *c = connect_to(&plain, NULL);
    assert_healthy(c);
    loom_client_destroy(&c);
}

/* ---- auth and CURVE ---------------------------------------------------------------- */

static void static_token_is_checked(void **state)
{
    (void)state;
    server_t s;
    const char *args[] = {"--token", "sesame", NULL};
    assert_int_equal(server_start(&s, args), 0);
    loom_client_t *none = connect_to(&s, NULL), *bad = connect_to(&s, "wrong"),
                  *good = connect_to(&s, "sesame");
    Loom__V1__HealthRequest rq = LOOM__V1__HEALTH_REQUEST__INIT;
    Loom__V1__HealthReply *rp = NULL;
    loom_err_t err;
    assert_int_equal(loom_client_health(none, &rq, 5000, &rp, &err), LOOM_STATUS_UNAUTHENTICATED);
    assert_non_null(strstr(err.msg, "missing auth token"));
    assert_int_equal(loom_client_health(bad, &rq, 5000, &rp, &err), LOOM_STATUS_UNAUTHENTICATED);
    assert_non_null(strstr(err.msg, "invalid auth token"));
    assert_healthy(good);
    loom_client_destroy(&none);
    loom_client_destroy(&bad);
    loom_client_destroy(&good);
    server_stop(&s);
}

static void hmac_token_is_checked(void **state)
{
    (void)state;
    server_t s;
    const char *args[] = {"--secret", "k3y", NULL};
    assert_int_equal(server_start(&s, args), 0);
    char tok[LOOM_AUTH_TOKEN_MAX], old[LOOM_AUTH_TOKEN_MAX];
    loom_err_t err;
    assert_int_equal(loom_auth_token_make((const uint8_t *)"k3y", 3, "cli", time(NULL) + 3600, tok, sizeof tok, &err), 0);
    assert_int_equal(loom_auth_token_make((const uint8_t *)"k3y", 3, "cli", 1000, old, sizeof old, &err), 0);
    loom_client_t *good = connect_to(&s, tok), *expired = connect_to(&s, old);
    assert_healthy(good);
    Loom__V1__HealthRequest rq = LOOM__V1__HEALTH_REQUEST__INIT;
    Loom__V1__HealthReply *rp = NULL;
    assert_int_equal(loom_client_health(expired, &rq, 5000, &rp, &err), LOOM_STATUS_UNAUTHENTICATED);
    assert_non_null(strstr(err.msg, "expired"));
    loom_client_destroy(&good);
    loom_client_destroy(&expired);
    server_stop(&s);
}

static void curve_encryption(void **state)
{
    (void)state;
    if (!zmq_has("curve")) {
        print_message("skip: libzmq without CURVE\n");
        return;
    }
    char pub[41], sec[41];
    assert_int_equal(zmq_curve_keypair(pub, sec), 0);
    server_t s;
    const char *args[] = {"--curve-secret", sec, NULL};
    assert_int_equal(server_start(&s, args), 0);
    loom_client_opts_t o = {.server_public_key = pub};
    loom_err_t err;
    loom_client_t *c = loom_client_new(s.endpoint, &o, &err);
    assert_non_null(c);
    assert_healthy(c);
    loom_client_destroy(&c);
    /* a plaintext client gets no answer (the handshake fails) */
    c = connect_to(&s, NULL);
    Loom__V1__HealthRequest rq = LOOM__V1__HEALTH_REQUEST__INIT;
    Loom__V1__HealthReply *rp = NULL;
    assert_int_equal(loom_client_health(c, &rq, 300, &rp, &err), LOOM_STATUS_DEADLINE_EXCEEDED);
    loom_client_destroy(&c);
    server_stop(&s);
}

/* A key file is read even when its path is itself 40 Z85 characters (as
 * /tmp/tmp.XXXXXXXXXX/keys/workers/sw1.pub is): taking such a path for
 * the key locked admitted workers out of bench-dispatch's secure loomd. */
static void key_file_with_z85_looking_path(void **state)
{
    (void)state;
    char dir[] = "/tmp/lk.XXXXXX", path[64], pub[41], sec[41], got[41];
    assert_non_null(mkdtemp(dir));
    /* "/tmp/lk.XXXXXX" (14) + "/" + 21 + ".pub" = 40 characters */
    snprintf(path, sizeof path, "%s/abcdefghijklmnopqrstu.pub", dir);
    assert_int_equal(strlen(path), 40);
    assert_true(loom_key_is_z85(path));
    assert_int_equal(zmq_curve_keypair(pub, sec), 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", pub);
    fclose(f);
    loom_err_t err;
    assert_int_equal(loom_key_read_public(path, got, &err), 0);
    assert_string_equal(got, pub);
    assert_int_equal(loom_key_read_public(pub, got, &err), 0); /* Z85 text still works */
    assert_string_equal(got, pub);
    unlink(path);
    rmdir(dir);
}

/* Failover endpoint lists (protocol/failover.h): what a user types and
 * what a standby sends in its error detail, garbage included. */
static void failover_endpoint_lists(void **st)
{
    (void)st;
    loom_endpoints_t e;
    loom_err_t err = {0};
    assert_int_equal(loom_endpoints_parse(&e, " tcp://a:1 ,tcp://b:2,, ", &err), 0);
    assert_int_equal(e.n, 2);
    assert_string_equal(loom_endpoints_current(&e), "tcp://a:1");
    /* a standby names the leader: in the list, outside it, or nobody */
    assert_string_equal(loom_endpoints_advance(&e, "standby; leader=tcp://b:2"), "tcp://b:2");
    assert_string_equal(loom_endpoints_advance(&e, "standby; leader=tcp://c:3"), "tcp://c:3");
    assert_string_equal(loom_endpoints_advance(&e, "standby; no leader yet"), "tcp://a:1");
    assert_string_equal(loom_endpoints_advance(&e, NULL), "tcp://b:2");
    assert_string_equal(loom_endpoints_advance(&e, "leader=tcp://b:2"), "tcp://a:1"); /* itself: next */
    loom_endpoints_free(&e);
    char out[32];
    const char *junk[] = {"", "leader=", "leader=x", "leader=tcp:/x", "standby; leader= tcp://a:1",
                          "leader=tcp://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:1"};
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++)
        assert_int_equal(loom_failover_leader(junk[i], out, sizeof out), 0);
    assert_int_equal(loom_failover_leader("standby; leader=tcp://h:9 more", out, sizeof out), 1);
    assert_string_equal(out, "tcp://h:9");
    /* bad lists are refused, naming the entry */
    assert_int_equal(loom_endpoints_parse(&e, "", &err), LOOM_EINVAL);
    assert_int_equal(loom_endpoints_parse(&e, " , ,", &err), LOOM_EINVAL);
    assert_int_equal(loom_endpoints_parse(&e, "tcp://a:1,nonsense", &err), LOOM_EINVAL);
    assert_non_null(strstr(err.msg, "'nonsense'"));
    char many[2000] = "";
    for (int i = 0; i <= LOOM_FAILOVER_MAX; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "tcp://h:%d,", 1000 + i);
    assert_int_equal(loom_endpoints_parse(&e, many, &err), LOOM_EINVAL);
    /* the client library takes a list, and refuses a bad one */
    assert_null(loom_client_new("tcp://127.0.0.1:1,bogus", NULL, &err));
    loom_client_t *c = loom_client_new("tcp://127.0.0.1:1, tcp://127.0.0.1:2", NULL, &err);
    assert_non_null(c);
    assert_string_equal(loom_client_endpoint(c), "tcp://127.0.0.1:1");
    loom_client_destroy(&c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_names_match_grpc),
        cmocka_unit_test(failover_endpoint_lists),
        cmocka_unit_test(envelope_valid_roundtrip),
        cmocka_unit_test(envelope_rejects_malformed),
        cmocka_unit_test(decoded_size_is_bounded),
        cmocka_unit_test(auth_tokens),
        cmocka_unit_test(auth_tokens_tenant_role_rotation),
        cmocka_unit_test(loom_rpcs_roundtrip),
        cmocka_unit_test(oversized_reply_is_refused_by_client),
        cmocka_unit_test(watch_streams_until_end),
        cmocka_unit_test(watch_cancel_reaches_server),
        cmocka_unit_test(deadlines_are_honoured),
        cmocka_unit_test(worker_protocol_roundtrip),
        cmocka_unit_test(malformed_frames_get_a_status),
        cmocka_unit_test(zmtp_frame_claiming_1gib_is_refused),
        cmocka_unit_test(static_token_is_checked),
        cmocka_unit_test(hmac_token_is_checked),
        cmocka_unit_test(curve_encryption),
        cmocka_unit_test(key_file_with_z85_looking_path),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}

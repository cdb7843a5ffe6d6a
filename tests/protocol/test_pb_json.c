/* test_pb_json.c — protobuf-c messages to and from JSON (protocol/pb_json.h):
 * a round trip through every field kind used by rpc.proto (strings, 64-bit
 * integers as strings, enums by name, doubles, bools, nested and repeated
 * messages, bytes), the accepted alternative spellings, errors that name
 * the field, and garbage (random JSON edits) that must never crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "loom/v1/rpc.pb-c.h"
#include "loom/v1/worker.pb-c.h"
#include "protocol/pb_json.h"

static char *dump(const ProtobufCMessage *m) {
    json_t *j = loom_pb_to_json(m);
    assert_non_null(j);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return s;
}

static ProtobufCMessage *parse(const ProtobufCMessageDescriptor *d, const char *text,
                               loom_err_t *err) {
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    assert_non_null(j);
    ProtobufCMessage *m = loom_pb_from_json(d, j, 0, err);
    json_decref(j);
    return m;
}

static void test_round_trip(void **st) {
    (void)st;
    Loom__V1__RunEvent ev = LOOM__V1__RUN_EVENT__INIT;
    Loom__V1__Plan plan = LOOM__V1__PLAN__INIT;
    Loom__V1__Placement p1 = LOOM__V1__PLACEMENT__INIT, *ps[1] = {&p1};
    char *notes[2] = {"a \"quoted\" note", "ünïcode"};
    ev.seq = UINT64_MAX;
    ev.run_id = "r-1";
    ev.time_unix_ms = -5;
    ev.kind = LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_FINISHED;
    ev.elapsed_ms = 12.5;
    ev.plan = &plan;
    plan.n_placements = 1;
    plan.placements = ps;
    plan.n_notes = 2;
    plan.notes = notes;
    plan.meets_sla = 1;
    p1.step_id = "answer/decode";
    p1.device_kind = LOOM__V1__DEVICE_KIND__DEVICE_KIND_GPU;
    char *s = dump(&ev.base);
    assert_non_null(strstr(s, "\"seq\":\"18446744073709551615\""));
    assert_non_null(strstr(s, "\"time_unix_ms\":\"-5\""));
    assert_non_null(strstr(s, "\"kind\":\"RUN_EVENT_STEP_FINISHED\""));
    assert_non_null(strstr(s, "\"device_kind\":\"DEVICE_KIND_GPU\""));
    assert_non_null(strstr(s, "\"attempt\":0")); /* defaults are written */
    assert_null(strstr(s, "\"error\""));           /* unset messages are not */
    loom_err_t err = {0};
    ProtobufCMessage *back = parse(&loom__v1__run_event__descriptor, s, &err);
    assert_non_null(back);
    char *again = dump(back);
    assert_string_equal(s, again); /* the same message */
    free(again);
    free(s);
    loom_pb_json_free(back);

    Loom__V1__ResultRequest rr = LOOM__V1__RESULT_REQUEST__INIT; /* bytes */
    uint8_t raw[5] = {0, 1, 2, 0xfe, 0xff};
    rr.output.data = raw;
    rr.output.len = 5;
    s = dump(&rr.base);
    assert_non_null(strstr(s, "\"output\":\"AAEC/v8=\""));
    back = parse(&loom__v1__result_request__descriptor, s, &err);
    assert_non_null(back);
    Loom__V1__ResultRequest *rb = (Loom__V1__ResultRequest *)back;
    assert_int_equal(rb->output.len, 5);
    assert_memory_equal(rb->output.data, raw, 5);
    loom_pb_json_free(back);
    free(s);
}

static void test_spellings(void **st) {
    (void)st;
    loom_err_t err = {0};
    ProtobufCMessage *m = parse(&loom__v1__list_request__descriptor,
                                "{\"pageToken\":\"t\",\"limit\":\"7\",\"state\":2}", &err);
    assert_non_null(m);
    Loom__V1__ListRequest *lr = (Loom__V1__ListRequest *)m;
    assert_string_equal(lr->page_token, "t");
    assert_int_equal(lr->limit, 7);
    assert_int_equal(lr->state, LOOM__V1__RUN_STATE__RUN_RUNNING);
    loom_pb_json_free(m);
    /* lenient: "true" for bools (query strings) */
    json_t *j = json_pack("{s:s}", "include_lost", "true");
    m = loom_pb_from_json(&loom__v1__list_workers_request__descriptor, j, 1, &err);
    assert_non_null(m);
    assert_true(((Loom__V1__ListWorkersRequest *)m)->include_lost);
    loom_pb_json_free(m);
    assert_null(loom_pb_from_json(&loom__v1__list_workers_request__descriptor, j, 0, &err));
    json_decref(j);
}

static void expect_error(const ProtobufCMessageDescriptor *d, const char *text, const char *msg) {
    loom_err_t err = {0};
    ProtobufCMessage *m = parse(d, text, &err);
    if (m || !strstr(err.msg, msg))
        fail_msg("%s: want error containing '%s', got '%s'", text, msg, m ? "(parsed)" : err.msg);
}

static void test_errors(void **st) {
    (void)st;
    const ProtobufCMessageDescriptor *sub = &loom__v1__submit_request__descriptor;
    expect_error(sub, "{\"workflow_yml\":\"x\"}", "workflow_yml: unknown field of SubmitRequest");
    expect_error(sub, "{\"workflow_yaml\":1}", "workflow_yaml: expected a string");
    expect_error(sub, "{\"labels\":[{\"key\":\"a\"},{\"key\":2}]}", "labels[1].key: expected a string");
    expect_error(sub, "{\"labels\":{}}", "labels: expected an array");
    expect_error(sub, "{\"objective\":\"FASTEST\"}", "objective: unknown Objective 'FASTEST'");
    expect_error(sub, "{\"objective\":99}", "objective: unknown enum number");
    expect_error(sub, "{\"sla_latency_ms\":\"fast\"}", "sla_latency_ms: expected a number");
    expect_error(sub, "{\"workflow_yaml\":\"a\",\"workflowYaml\":\"b\"}", "given twice");
    expect_error(sub, "[]", "body: expected an object");
    const ProtobufCMessageDescriptor *ls = &loom__v1__list_request__descriptor;
    expect_error(ls, "{\"limit\":-1}", "limit: value out of range");
    expect_error(ls, "{\"limit\":4294967296}", "limit: value out of range");
    expect_error(ls, "{\"limit\":1.5}", "limit: not an integer");
    expect_error(ls, "{\"limit\":\"12abc\"}", "limit: expected a non-negative integer");
    expect_error(&loom__v1__watch_request__descriptor, "{\"after_seq\":\"-1\"}", "after_seq");
    expect_error(&loom__v1__result_request__descriptor, "{\"output\":\"###\"}", "expected base64");
}

/* Random edits of a valid document: parsing either succeeds or fails with
 * a message; nothing leaks or crashes (run under ASan by make asan). */
static void test_garbage(void **st) {
    (void)st;
    const char *seed =
        "{\"workflow_yaml\":\"v\",\"inputs_json\":\"{}\",\"sla_latency_ms\":5,\"objective\":"
        "\"OBJECTIVE_COST\",\"labels\":[{\"key\":\"k\",\"value\":\"v\"}]}";
    const char alphabet[] = "{}[]\":,0123456789-.eE truefalsnul\\ax";
    srand(17);
    int parsed = 0, refused = 0;
    for (int i = 0; i < 5000; i++) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", seed);
        size_t n = strlen(buf);
        for (int k = rand() % 4 + 1; k > 0; k--)
            buf[rand() % n] = alphabet[rand() % (sizeof alphabet - 1)];
        json_t *j = json_loads(buf, 0, NULL);
        if (!j) continue;
        loom_err_t err = {0};
        ProtobufCMessage *m = loom_pb_from_json(&loom__v1__submit_request__descriptor, j, 1, &err);
        if (m) {
            parsed++;
            json_t *out = loom_pb_to_json(m);
            assert_non_null(out);
            json_decref(out);
            loom_pb_json_free(m);
        } else {
            refused++;
            assert_true(err.msg[0] != 0);
        }
        json_decref(j);
    }
    assert_true(parsed > 0 && refused > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_spellings),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_states.c — protocol/states.h: the words come from rpc.proto's enum
 * names, parse back, and the SLA verdict follows docs/STATES.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "loom/v1/rpc.pb-c.h"
#include "protocol/states.h"

static void test_words(void **st) {
    (void)st;
    const char *runs[] = {"unknown", "queued", "running", "succeeded", "failed", "cancelled"};
    for (int i = 0; i < 6; i++) assert_string_equal(loom_run_state_word(i), runs[i]);
    const char *steps[] = {"unknown", "pending", "ready", "running", "succeeded",
                           "failed", "skipped", "cancelled"};
    for (int i = 0; i < 8; i++) assert_string_equal(loom_step_state_word(i), steps[i]);
    assert_string_equal(loom_run_state_word(99), "unknown");
    assert_string_equal(loom_run_state_word(-1), "unknown");
    for (int i = 1; i < 6; i++) assert_int_equal(loom_run_state_from_word(runs[i]), i);
    assert_int_equal(loom_run_state_from_word("RUN_FAILED"), LOOM__V1__RUN_STATE__RUN_FAILED);
    assert_int_equal(loom_run_state_from_word("FAILED"), LOOM__V1__RUN_STATE__RUN_FAILED);
    assert_int_equal(loom_run_state_from_word("timed_out"), 0);
    assert_int_equal(loom_run_state_from_word(""), 0);
    assert_int_equal(loom_run_state_from_word(NULL), 0);
}

static void test_sla(void **st) {
    (void)st;
    enum { Q = LOOM__V1__RUN_STATE__RUN_QUEUED, R = LOOM__V1__RUN_STATE__RUN_RUNNING,
           S = LOOM__V1__RUN_STATE__RUN_SUCCEEDED, F = LOOM__V1__RUN_STATE__RUN_FAILED,
           C = LOOM__V1__RUN_STATE__RUN_CANCELLED };
    assert_int_equal(loom_sla_verdict(S, 0, 10), LOOM_SLA_NONE);       /* no SLA */
    assert_int_equal(loom_sla_verdict(F, 0, 10), LOOM_SLA_NONE);
    assert_int_equal(loom_sla_verdict(S, 5000, 4999), LOOM_SLA_MET);
    assert_int_equal(loom_sla_verdict(S, 5000, 5000), LOOM_SLA_MET);
    assert_int_equal(loom_sla_verdict(S, 5000, 5002), LOOM_SLA_MISSED);
    assert_int_equal(loom_sla_verdict(F, 5000, 12), LOOM_SLA_MISSED);  /* delivered nothing */
    assert_int_equal(loom_sla_verdict(F, 5000, 5002), LOOM_SLA_MISSED);
    assert_int_equal(loom_sla_verdict(C, 5000, 12), LOOM_SLA_MISSED);
    assert_int_equal(loom_sla_verdict(R, 5000, 12), LOOM_SLA_NONE);    /* not yet */
    assert_int_equal(loom_sla_verdict(Q, 5000, 6000), LOOM_SLA_MISSED);
    assert_string_equal(loom_sla_word(LOOM_SLA_MET), "met");
    assert_string_equal(loom_sla_word(LOOM_SLA_MISSED), "missed");
    assert_string_equal(loom_sla_word(LOOM_SLA_NONE), "");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words),
        cmocka_unit_test(test_sla),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

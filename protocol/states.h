/* states.h — Loom's one vocabulary of states, as people and scripts read
 * them: the CLI, the dashboard, the HTTP/JSON API and the metrics' labels
 * all say these words (docs/STATES.md).
 *
 * The words come from the enums of protocol/loom/v1/rpc.proto: the value's
 * name without its prefix, in lower case (RUN_SUCCEEDED -> "succeeded",
 * STEP_SKIPPED -> "skipped"). The dashboard applies the same rule to the
 * enum names the /v1 API sends, so nothing lists the words twice.
 *
 *   runs:  queued running succeeded failed cancelled
 *   steps: pending ready running succeeded failed skipped cancelled
 *   SLA:   met missed (final runs with an SLA), "" (no SLA, or running
 *          and not yet past it)
 *
 * A step that ran past its timeout_ms is "failed" (its error's code says
 * DEADLINE_EXCEEDED); a run is never "timed out". */
#ifndef LOOM_PROTOCOL_STATES_H
#define LOOM_PROTOCOL_STATES_H

/* Loom__V1__RunState / Loom__V1__StepState -> word; "unknown" outside the
 * enum. Static storage. */
const char *loom_run_state_word(int run_state);
const char *loom_step_state_word(int step_state);
/* The word back to the enum value; 0 (UNSPECIFIED) when unknown. Accepts
 * the enum name too ("RUN_FAILED"). */
int loom_run_state_from_word(const char *word);

/* The SLA verdict of a run: LOOM_SLA_MET when it succeeded within its SLA,
 * LOOM_SLA_MISSED when it ended otherwise (failed or cancelled runs did not
 * deliver within it) or is still running past it, LOOM_SLA_NONE when it has
 * no SLA (sla_ms <= 0) or is running within it. run_state: Loom__V1__RunState. */
typedef enum { LOOM_SLA_NONE = 0, LOOM_SLA_MET = 1, LOOM_SLA_MISSED = 2 } loom_sla_verdict_t;
loom_sla_verdict_t loom_sla_verdict(int run_state, double sla_ms, double elapsed_ms);
/* "", "met", "missed". */
const char *loom_sla_word(loom_sla_verdict_t v);

#endif

/* secret_inputs.h — secret inputs (`inputs: {api_key: {type: string, secret:
 * true}}`) stay in loomd's memory: task inputs sent to workers carry them
 * (encrypted in secure mode), but what loomd writes — the stored run
 * inputs, step outputs, errors, progress, events, hence PostgreSQL, the
 * dashboard and `loom status` — shows "***" in their place. */
#ifndef LOOM_ORCHESTRATOR_SECRET_INPUTS_H
#define LOOM_ORCHESTRATOR_SECRET_INPUTS_H

#include <stddef.h>

#include <jansson.h>

#include "common/redact.h"
#include "planner/workflow.h"

/* The values of wf's secret inputs in inputs, as text to search for
 * (strings as they are, other values as compact JSON). Returns a malloc'd
 * array of malloc'd strings (*n entries; NULL when none). */
char **loom_redact_collect(const loom_workflow_t *wf, const json_t *inputs, size_t *n);
void loom_redact_free(char **secrets, size_t n);

/* The inputs as JSON text with secret inputs replaced by "***" (malloc'd). */
char *loom_redact_inputs_json(const loom_workflow_t *wf, const json_t *inputs);

#endif

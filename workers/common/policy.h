/* policy.h — what this worker lets tools do, set once at start from its
 * flags and read (never changed) by the tool ops on slot threads:
 *
 *   --allow-exec LIST   tool.exec may run only these programs: a bare name
 *                       (e.g. "python3") is looked up in the worker's own
 *                       PATH, never the step's env, and the resolved file
 *                       runs; a path ("/usr/bin/jq") must match exactly
 *   --allow-hosts LIST  tool.http may reach only these hosts: "api.example.com"
 *                       exactly, ".example.com" that domain and its subdomains
 *
 * Without a flag that op is unrestricted. A refused step fails at once
 * (not retried) with an error naming the flag. */
#ifndef LOOM_WORKERS_POLICY_H
#define LOOM_WORKERS_POLICY_H

#include <stddef.h>

#include "common/err.h"

/* Either list may be NULL (unrestricted). Returns 0 or LOOM_EINVAL. */
int loom_policy_set(const char *allow_exec, const char *allow_hosts, loom_err_t *err);

/* 0 when argv0 may run; then resolved (n bytes) holds the file to execute
 * (argv0 itself without an allow-list). Otherwise LOOM_EINVAL with err
 * naming the policy. */
int loom_policy_check_exec(const char *argv0, char *resolved, size_t n, loom_err_t *err);

/* 0 when url's host may be reached, else LOOM_EINVAL naming the policy. */
int loom_policy_check_url(const char *url, loom_err_t *err);

#endif

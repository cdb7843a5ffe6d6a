/* mcp_spec.h — the CLI's view of MCP servers: turning the SERVER a user
 * names into a server spec (mcp.h), and checking a workflow's tool.mcp
 * steps against the servers' tool lists (`loom validate`). */
#ifndef LOOM_CLI_MCP_SPEC_H
#define LOOM_CLI_MCP_SPEC_H

#include <jansson.h>

#include "common/err.h"
#include "planner/value.h"
#include "planner/workflow.h"

/* A new spec for server: an http(s):// URL, else a name in the workflow at
 * wf_path's resources.tools (NULL: none), else in $LOOM_MCP_CONFIG.
 * Relative stdio cwd resolves against the workflow's directory, as loomd
 * does. 0, LOOM_ENOTFOUND or a load error. */
int loom_cli_mcp_spec(const char *server, const char *wf_path, json_t **spec, loom_err_t *err);

/* Same for a name in an already loaded workflow (NULL when unknown). */
json_t *loom_cli_mcp_spec_in(const loom_workflow_t *wf, const char *name);

/* For every tool.mcp step of wf (loop bodies included): starts or connects
 * to its server (timeout_ms per request) and checks that the tool exists
 * and that the step's literal arguments satisfy its input schema (values
 * with ${...} are checked at run time by the server). Violations go into
 * diags as errors at the step's field; a server that cannot be reached is
 * a warning printed to stderr (unless quiet). Returns the number of errors
 * added. */
int loom_cli_mcp_check(const loom_workflow_t *wf, long timeout_ms, int quiet, loom_diags_t *diags);

#endif

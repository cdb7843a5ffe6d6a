/* ops.h — op handlers shared by every worker kind (see backend.h for the
 * handler contract). Each is thread-safe and polls loom_op_cancelled(). */
#ifndef LOOM_WORKERS_OPS_H
#define LOOM_WORKERS_OPS_H

#include "workers/common/backend.h"

/* tool.exec: run a program (argv, never a shell); see op_exec.c. */
int loom_op_tool_exec(void *ud, loom_op_ctx_t *ctx, const json_t *input, loom_op_output_t *out,
                      loom_err_t *err);
/* tool.exec of an earlier worker process with this id, found in the spool
 * (running or finished): waits for it and makes its result. */
int loom_op_tool_exec_resume(void *ud, loom_op_ctx_t *ctx, const json_t *input,
                             loom_op_output_t *out, loom_err_t *err);
/* tool.http: an HTTP request through libcurl; see op_http.c. */
int loom_op_tool_http(void *ud, loom_op_ctx_t *ctx, const json_t *input, loom_op_output_t *out,
                      loom_err_t *err);
/* tool.mcp: a tool call on an MCP server; see op_mcp.c. */
int loom_op_tool_mcp(void *ud, loom_op_ctx_t *ctx, const json_t *input, loom_op_output_t *out,
                     loom_err_t *err);
/* Registers tool.exec, tool.http and tool.mcp. */
int loom_ops_add_tools(loom_ops_t *ops);
/* Wraps llm.generate and embed (registered before, or not at all) so that
 * tasks for models with an `endpoint` go to that OpenAI-compatible server;
 * see op_endpoint.c. */
int loom_ops_add_endpoints(loom_ops_t *ops);

#endif

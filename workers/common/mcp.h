/* mcp.h — a Model Context Protocol client (JSON-RPC 2.0), for tool.mcp and
 * `loom tools list`.
 *
 * Two transports, chosen by the server spec (a JSON object, the shape of
 * the common `mcpServers` configuration entries):
 *   {"command": "npx", "args": [...], "env": {...}, "cwd": "..."}
 *       stdio: the server is a child process (spawn.h) speaking
 *       newline-delimited JSON-RPC on its stdin/stdout; its stderr goes to
 *       ours (the worker's log).
 *   {"url": "http://host/mcp", "headers": {...}}
 *       Streamable HTTP: every message is a POST accepting both
 *       application/json and text/event-stream; the Mcp-Session-Id that
 *       `initialize` returns goes on later requests; an expired session
 *       (404) is re-initialised once.
 * loom_mcp_open() runs the `initialize` handshake. Messages that are not
 * the awaited answer are handled in passing: notifications are dropped,
 * `ping` requests answered, other server requests refused (-32601).
 *
 * Thread-safety: none; callers serialise use of one connection (op_mcp.c
 * keeps one per server behind a mutex). */
#ifndef LOOM_WORKERS_MCP_H
#define LOOM_WORKERS_MCP_H

#include <stdint.h>

#include <jansson.h>

#include "common/err.h"

typedef struct loom_mcp loom_mcp_t;

/* Polled while waiting for an answer; non-zero abandons the request (a
 * notifications/cancelled is sent) with LOOM_ECANCELLED. */
typedef int (*loom_mcp_cancel_fn)(void *ud);

/* Starts or connects to the server in spec (borrowed) and initialises it
 * within timeout_ms. *out is the caller's. Errors: LOOM_EINVAL (bad spec),
 * LOOM_ENOTFOUND (command not found), LOOM_EUNAVAIL (cannot connect, server
 * exited), LOOM_ETIMEDOUT, LOOM_EPROTO (not MCP). */
int loom_mcp_open(const json_t *spec, int64_t timeout_ms, loom_mcp_t **out, loom_err_t *err);
/* Stops a stdio server (SIGTERM, then SIGKILL) or ends an HTTP session. */
void loom_mcp_destroy(loom_mcp_t **pm);

/* 0 once the connection cannot be used again (the stdio server exited,
 * also between calls: its exit status is collected here). */
int loom_mcp_usable(loom_mcp_t *m);
/* The server's serverInfo.name and version from initialize (borrowed). */
const char *loom_mcp_server_name(const loom_mcp_t *m);

/* Sends request `method` with params (borrowed; NULL for none) and waits up
 * to timeout_ms for its result (*result is the caller's). A JSON-RPC error
 * answer is LOOM_EIO with the server's message. */
int loom_mcp_request(loom_mcp_t *m, const char *method, const json_t *params, int64_t timeout_ms,
                     loom_mcp_cancel_fn cancelled, void *cud, json_t **result, loom_err_t *err);

/* tools/list, all pages: *tools is a new array of tool objects (name,
 * description, inputSchema, ...). */
int loom_mcp_list_tools(loom_mcp_t *m, int64_t timeout_ms, json_t **tools, loom_err_t *err);

/* The step output of a tools/call result: structuredContent when present,
 * else the text of the text items (joined by newlines), else the content
 * list itself. isError results are LOOM_EIO with the server's text. */
int loom_mcp_tool_output(const json_t *result, const char *tool, json_t **out, loom_err_t *err);

#endif

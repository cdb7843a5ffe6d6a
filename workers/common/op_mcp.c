/* op_mcp.c — the tool.mcp op: call a tool on an MCP server (mcp.h).
 *
 * Input (rendered by loomd):
 *   server      string       required: a server name
 *   server_spec object       the workflow's resources.tools entry for it
 *                            (loomd adds it); without one the worker's own
 *                            configuration must name the server
 *   tool        string       required: the tool's name (tools/list)
 *   arguments   object       the tool's arguments (default {})
 * The task's deadline (the step's timeout_ms) bounds the call; without one
 * 60 s. Output: the tool's structuredContent, else its text, else its
 * content list (loom_mcp_tool_output). A result with isError fails the step
 * with the server's message (not retried); an unreachable server or a
 * timeout is retryable.
 *
 * Servers are kept: the first call to a server starts it (stdio) or opens
 * a session (HTTP), later calls reuse it; a server that died is started
 * again on the next call. Calls to one server are serialised (one
 * connection, one request at a time); different servers run in parallel.
 *
 * The worker's own servers come from the JSON file named by
 * $LOOM_MCP_CONFIG: {"mcpServers": {"name": {command, args, env} | {url,
 * headers}}} (the format MCP clients share; the bare inner mapping works
 * too). A name configured there wins over the workflow's spec: the
 * operator decides what runs on the machine. */
#include "workers/common/ops.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "workers/common/mcp.h"

#define COMP "mcp"
#define DEFAULT_TIMEOUT_MS 60000

typedef struct server {
    pthread_mutex_t mu; /* one request at a time on conn */
    loom_mcp_t *conn;   /* NULL until first use or after the server died */
    struct server *next;
    char key[];         /* the spec as canonical JSON */
} server_t;

static struct {
    pthread_mutex_t mu;
    server_t *servers;
    json_t *config; /* $LOOM_MCP_CONFIG's servers, or an empty object */
} G = {.mu = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t config_once = PTHREAD_ONCE_INIT;

static void load_config(void)
{
    const char *path = getenv("LOOM_MCP_CONFIG");
    json_t *c = NULL;
    if (path && *path) {
        json_error_t je;
        c = json_load_file(path, 0, &je);
        if (!c)
            loom_log(LOOM_LOG_ERROR, COMP, "msg=\"cannot read LOOM_MCP_CONFIG\" path=%s error=\"%s\" line=%d", path, je.text,
                     je.line);
        json_t *inner = json_object_get(c, "mcpServers");
        if (inner) {
            json_incref(inner);
            json_decref(c);
            c = inner;
        }
        if (c && !json_is_object(c)) {
            loom_log(LOOM_LOG_ERROR, COMP, "msg=\"LOOM_MCP_CONFIG is not an object of servers\" path=%s", path);
            json_decref(c);
            c = NULL;
        }
    }
    G.config = c ? c : json_object();
}

static json_t *worker_servers(void)
{
    pthread_once(&config_once, load_config);
    return G.config;
}

static server_t *server_for(const json_t *spec)
{
    char *key = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
    if (!key)
        return NULL;
    pthread_mutex_lock(&G.mu);
    server_t *s = G.servers;
    while (s && strcmp(s->key, key) != 0)
        s = s->next;
    if (!s && (s = calloc(1, sizeof *s + strlen(key) + 1))) {
        pthread_mutex_init(&s->mu, NULL);
        strcpy(s->key, key);
        s->next = G.servers;
        G.servers = s;
    }
    pthread_mutex_unlock(&G.mu);
    free(key);
    return s;
}

static int op_cancelled(void *ud)
{
    return loom_op_cancelled(ud);
}

static int64_t time_left(const loom_op_ctx_t *ctx)
{
    int64_t left = loom_op_remaining_ms(ctx);
    return left == INT64_MAX ? DEFAULT_TIMEOUT_MS : left;
}

static int bad(loom_op_output_t *out, loom_err_t *err, const char *field, const char *msg)
{
    out->permanent = 1;
    loom_err_set(err, LOOM_EINVAL, "tool.mcp: %s", msg);
    loom_err_field(err, "%s", field);
    return LOOM_EINVAL;
}

int loom_op_tool_mcp(void *ud, loom_op_ctx_t *ctx, const json_t *in, loom_op_output_t *out,
                     loom_err_t *err)
{
    (void)ud;
    const char *name = json_string_value(json_object_get(in, "server"));
    const char *tool = json_string_value(json_object_get(in, "tool"));
    json_t *args = json_object_get(in, "arguments");
    if (!name)
        return bad(out, err, "server", "server must name an MCP server");
    if (!tool || !*tool)
        return bad(out, err, "tool", "tool must name a tool of the server");
    if (args && !json_is_object(args) && !json_is_null(args))
        return bad(out, err, "arguments", "arguments must be an object");
    const json_t *spec = json_object_get(worker_servers(), name);
    if (!spec)
        spec = json_object_get(in, "server_spec");
    if (!spec) {
        out->permanent = 1;
        return loom_err_set(err, LOOM_ENOTFOUND,
                            "tool.mcp: unknown MCP server '%s' (not in the workflow's resources.tools nor in "
                            "this worker's LOOM_MCP_CONFIG)", name);
    }
    server_t *s = server_for(spec);
    if (!s)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (s->conn && !loom_mcp_usable(s->conn)) {
        loom_log(LOOM_LOG_WARN, COMP, "msg=\"MCP server gone; starting it again\" server=%s", name);
        loom_mcp_destroy(&s->conn);
    }
    if (!s->conn) {
        rc = loom_mcp_open(spec, time_left(ctx), &s->conn, err);
        if (!rc)
            loom_log(LOOM_LOG_INFO, COMP, "msg=\"MCP server ready\" server=%s info=\"%s\"", name, loom_mcp_server_name(s->conn));
        else if (rc == LOOM_EINVAL || rc == LOOM_ENOTFOUND)
            out->permanent = 1;
    }
    json_t *result = NULL;
    if (!rc) {
        json_t *params = json_pack("{ssso}", "name", tool, "arguments",
                                   json_is_object(args) ? json_incref(args) : json_object());
        rc = params ? loom_mcp_request(s->conn, "tools/call", params, time_left(ctx), op_cancelled, ctx,
                                       &result, err)
                    : loom_err_set(err, LOOM_ENOMEM, "out of memory");
        json_decref(params);
        /* A JSON-RPC error (unknown tool, bad arguments) will not change on a retry. */
        if (rc == LOOM_EIO)
            out->permanent = 1;
    }
    pthread_mutex_unlock(&s->mu);
    if (!rc) {
        rc = loom_mcp_tool_output(result, tool, &out->json, err);
        if (rc)
            out->permanent = 1;
    }
    json_decref(result);
    if (rc && !strstr(err->msg, "tool.mcp")) {
        char m[sizeof err->msg];
        memcpy(m, err->msg, sizeof m);
        int n = snprintf(err->msg, sizeof err->msg, "tool.mcp %.40s/%.60s: ", name, tool);
        if (n > 0 && (size_t)n < sizeof err->msg)
            memcpy(err->msg + n, m, sizeof err->msg - (size_t)n - 1);
        err->msg[sizeof err->msg - 1] = 0;
    }
    return rc;
}

/* cmd_tools.c — `loom tools list|call SERVER ...`: talk to an MCP server
 * directly (workers/common/mcp.h), to see what a tool.mcp step can call.
 *
 * SERVER is an http(s):// URL (Streamable HTTP), a name from a workflow's
 * resources.tools (-f FILE) or from $LOOM_MCP_CONFIG, or, after `--`, the
 * command line of a stdio server. */
#include "cli/cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/mcp_spec.h"
#include "planner/workflow.h"
#include "workers/common/mcp.h"

static const char usage_text[] =
    "usage: loom tools list SERVER [--json] [-f WORKFLOW] [--timeout MS]\n"
    "       loom tools call SERVER TOOL [ARGS_JSON] [--json] [-f WORKFLOW] [--timeout MS]\n"
    "Lists an MCP server's tools with their input schemas, or calls one tool.\n"
    "\n"
    "SERVER is one of\n"
    "  http://host:port/mcp      a Streamable HTTP server\n"
    "  NAME                      a server in WORKFLOW's resources.tools (-f) or in\n"
    "                            the JSON file named by $LOOM_MCP_CONFIG\n"
    "  -- COMMAND [ARG...]       a stdio server started for this command (last)\n"
    "\n"
    "  --json         machine-readable output (tools/list's tools, or the call's output)\n"
    "  --timeout MS   per request (default 30000)\n"
    "Exit 0 on success, 1 when the tool call fails, 3 when the server cannot be reached.\n";

static void print_tools(const json_t *tools)
{
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        const char *name = json_string_value(json_object_get(t, "name"));
        const char *desc = json_string_value(json_object_get(t, "description"));
        printf("%s\n", name ? name : "?");
        if (desc) {
            const char *nl = strchr(desc, '\n');
            printf("    %.*s\n", nl ? (int)(nl - desc) : (int)strlen(desc), desc);
        }
        json_t *schema = json_object_get(t, "inputSchema");
        json_t *props = json_object_get(schema, "properties"), *req = json_object_get(schema, "required");
        const char *k;
        json_t *p;
        json_object_foreach(props, k, p) {
            int required = 0;
            size_t j;
            json_t *r;
            json_array_foreach(req, j, r) required |= json_is_string(r) && !strcmp(json_string_value(r), k);
            json_t *type = json_object_get(p, "type");
            char *ts = type ? json_dumps(type, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
            json_t *en = json_object_get(p, "enum");
            char *es = en ? json_dumps(en, JSON_COMPACT) : NULL;
            printf("    %-24s %-10s%s%s%s\n", k, ts ? ts : "any", required ? " required" : "",
                   es ? " one of " : "", es ? es : "");
            free(ts);
            free(es);
        }
    }
}

int loom_cmd_tools(int argc, char **argv)
{
    if (loom_cli_wants_help(argc, argv, usage_text))
        return LOOM_EXIT_OK;
    signal(SIGPIPE, SIG_IGN); /* a stdio server that dies must not kill us */
    const char *verb = argc > 1 ? argv[1] : NULL, *server = NULL, *tool = NULL, *args_text = NULL,
               *wf_path = NULL;
    int json_out = 0, cmd_at = -1;
    long timeout = 30000;
    if (!verb || (strcmp(verb, "list") && strcmp(verb, "call"))) {
        fprintf(stderr, "loom tools: expected 'list' or 'call' (see --help)\n");
        return LOOM_EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            cmd_at = i + 1;
            break;
        } else if (!strcmp(argv[i], "--json"))
            json_out = 1;
        else if (!strcmp(argv[i], "-f") && i + 1 < argc)
            wf_path = argv[++i];
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            timeout = strtol(argv[++i], NULL, 10);
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "loom tools: unknown option '%s' (see --help)\n", argv[i]);
            return LOOM_EXIT_USAGE;
        } else if (!server)
            server = argv[i];
        else if (!strcmp(verb, "call") && !tool)
            tool = argv[i];
        else if (!strcmp(verb, "call") && !args_text)
            args_text = argv[i];
        else {
            fprintf(stderr, "loom tools: unexpected argument '%s' (see --help)\n", argv[i]);
            return LOOM_EXIT_USAGE;
        }
    }
    /* With `--`, the words before it are TOOL [ARGS] for call. */
    if (cmd_at >= 0 && server && !strcmp(verb, "call")) {
        args_text = tool;
        tool = server;
        server = NULL;
    }
    if ((cmd_at < 0) == !server || (cmd_at >= 0 && cmd_at >= argc) || timeout <= 0 ||
        (!strcmp(verb, "call") && !tool)) {
        fprintf(stderr, "loom tools: name one SERVER (a URL, a name, or -- COMMAND ...)%s (see --help)\n",
                !strcmp(verb, "call") ? " and a TOOL" : "");
        return LOOM_EXIT_USAGE;
    }
    json_t *args = NULL;
    if (args_text) {
        json_error_t je;
        args = json_loads(args_text, 0, &je);
        if (!json_is_object(args)) {
            fprintf(stderr, "loom tools: ARGS_JSON must be a JSON object: %s\n", args ? "not an object" : je.text);
            json_decref(args);
            return LOOM_EXIT_USAGE;
        }
    }
    loom_err_t err = {0};
    json_t *spec = NULL;
    if (cmd_at >= 0) {
        spec = json_pack("{sss[]}", "command", argv[cmd_at], "args");
        for (int i = cmd_at + 1; i < argc; i++)
            json_array_append_new(json_object_get(spec, "args"), json_string(argv[i]));
    } else if (loom_cli_mcp_spec(server, wf_path, &spec, &err) != 0) {
        fprintf(stderr, "loom tools: %s\n", err.msg);
        json_decref(args);
        return LOOM_EXIT_USAGE;
    }
    loom_mcp_t *m = NULL;
    int rc = loom_mcp_open(spec, timeout, &m, &err), code = LOOM_EXIT_OK;
    json_decref(spec);
    if (rc) {
        fprintf(stderr, "loom tools: %s\n", err.msg);
        json_decref(args);
        return LOOM_EXIT_SYSTEM;
    }
    if (!strcmp(verb, "list")) {
        json_t *tools = NULL;
        if (loom_mcp_list_tools(m, timeout, &tools, &err) != 0) {
            fprintf(stderr, "loom tools: %s\n", err.msg);
            code = LOOM_EXIT_SYSTEM;
        } else if (json_out) {
            char *s = json_dumps(tools, JSON_INDENT(2));
            printf("%s\n", s ? s : "[]");
            free(s);
        } else {
            printf("# %s: %zu tools\n", loom_mcp_server_name(m), json_array_size(tools));
            print_tools(tools);
        }
        json_decref(tools);
    } else {
        json_t *params = json_pack("{ssso}", "name", tool, "arguments", args ? json_incref(args) : json_object());
        json_t *result = NULL, *out = NULL;
        if (loom_mcp_request(m, "tools/call", params, timeout, NULL, NULL, &result, &err) != 0 ||
            loom_mcp_tool_output(result, tool, &out, &err) != 0) {
            fprintf(stderr, "loom tools: %s\n", err.msg);
            code = err.code == LOOM_EIO ? LOOM_EXIT_FAIL : LOOM_EXIT_SYSTEM;
        } else if (json_is_string(out) && !json_out) {
            printf("%s\n", json_string_value(out));
        } else {
            char *s = json_dumps(out, JSON_INDENT(2) | JSON_ENCODE_ANY);
            printf("%s\n", s ? s : "null");
            free(s);
        }
        json_decref(params);
        json_decref(result);
        json_decref(out);
    }
    json_decref(args);
    loom_mcp_destroy(&m);
    return code;
}

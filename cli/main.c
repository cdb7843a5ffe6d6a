/* main.c — `loom` entry point: dispatches to the subcommand table. */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/runview.h"
#include "common/version.h"

/* Each subcommand lives in cli/cmd_<name>.c. Keep this table sorted by
 * the order users meet them. */
int loom_cmd_validate(int argc, char **argv);
int loom_cmd_keygen(int argc, char **argv);
int loom_cmd_plan(int argc, char **argv);
int loom_cmd_run(int argc, char **argv);
int loom_cmd_status(int argc, char **argv);
int loom_cmd_watch(int argc, char **argv);
int loom_cmd_logs(int argc, char **argv);
int loom_cmd_runs(int argc, char **argv);
int loom_cmd_workers(int argc, char **argv);
int loom_cmd_cancel(int argc, char **argv);
int loom_cmd_retry(int argc, char **argv);
int loom_cmd_tco(int argc, char **argv);
int loom_cmd_simulate(int argc, char **argv);
int loom_cmd_kernel(int argc, char **argv);
int loom_cmd_llm(int argc, char **argv);
int loom_cmd_index(int argc, char **argv);
int loom_cmd_tools(int argc, char **argv);

static const loom_cli_cmd_t commands[] = {
    {"validate", "check workflow files and print their DAG", loom_cmd_validate},
    {"plan", "place a workflow's ops on a fleet at least cost within its SLA", loom_cmd_plan},
    {"run", "run a workflow on loomd and wait for its outputs", loom_cmd_run},
    {"status", "show a run and its per-step timeline", loom_cmd_status},
    {"watch", "follow a run to its end (e.g. one started with --no-wait)", loom_cmd_watch},
    {"logs", "one step of a run: output, error, attempts; --follow streams its tokens", loom_cmd_logs},
    {"runs", "list runs", loom_cmd_runs},
    {"workers", "list the workers registered with loomd", loom_cmd_workers},
    {"cancel", "cancel a run", loom_cmd_cancel},
    {"retry", "run a finished run again (same workflow, inputs, labels)", loom_cmd_retry},
    {"tco", "cheapest fleet (device counts) that serves a workload within its SLAs", loom_cmd_tco},
    {"simulate", "discrete-event simulation of a fleet serving a workload", loom_cmd_simulate},
    {"kernel", "compile a compute kernel for cpu, gpu (PTX) or npu and show the artifact", loom_cmd_kernel},
    {"llm", "run a GGUF model locally (info, generate, embed, prefill/decode)", loom_cmd_llm},
    {"index", "build or inspect a vector index for vector.search steps", loom_cmd_index},
    {"tools", "list an MCP server's tools or call one (what tool.mcp steps can use)", loom_cmd_tools},
    {"keygen", "new auth secret and CURVE keys; mint or verify auth tokens", loom_cmd_keygen},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: loom <command> [options]\n\n"
               "Loom plans and runs AI-agent workflows on mixed hardware.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'loom <command> --help' for a command's options, 'loom --version' for the\n"
               "version.\n");
}

int loom_cli_parse_sla_ms(const char *cmd, const char *flag, const char *text, double *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < 1 || v > 1000000000LL) {
        fprintf(stderr, "loom %s: %s takes a whole number of milliseconds >= 1 (like sla.latency_ms), not '%s'\n",
                cmd, flag, text);
        return -1;
    }
    *out = (double)v;
    return 0;
}

int loom_cli_wants_help(int argc, char **argv, const char *text)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(text, stdout);
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return LOOM_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        fputs(LOOM_VERSION_LINE("loom"), stdout);
        return LOOM_EXIT_OK;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return LOOM_EXIT_OK;
    }
    for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--json") == 0)
            loom_cli_json_errors = 1; /* errors as JSON too (cli/runview.h) */
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "loom: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return LOOM_EXIT_USAGE;
}

/* cmd_watch.c — `loom watch RUN`: reattach to a run (e.g. one started
 * with `loom run --no-wait`) and follow it to its end exactly as `loom run`
 * does: progress lines, streamed LLM tokens, outputs, timeline, exit code. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/follow.h"
#include "cli/runview.h"

static const char usage_text[] =
    "usage: loom watch RUN [options]\n"
    "Follows a run to its end (events already past are replayed first).\n\n"
    "  --json               print the finished run as JSON (no progress lines)\n"
    "  --quiet              no progress lines\n"
    "  --stream, --no-stream  show LLM tokens as they are generated (default: when\n"
    "                       stderr is a terminal)\n"
    "  --timeout-ms N       stop following after N ms (the run continues; exit 3)\n"
    "  --endpoint URL       loomd's client endpoint (default $LOOM_ENDPOINT or\n"
    "                       tcp://127.0.0.1:7400)\n\n"
    "exit status: as loom run: 0 succeeded, 1 failed or cancelled, 4 missed its\n"
    "SLA, 3 Loom system error or timeout\n";

int loom_cmd_watch(int argc, char **argv)
{
    if (loom_cli_wants_help(argc, argv, usage_text))
        return LOOM_EXIT_OK;
    const char *run = NULL, *endpoint = NULL;
    loom_cli_follow_opts_t o = {.tokens = -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0)
            o.json = 1;
        else if (strcmp(a, "--quiet") == 0)
            o.quiet = 1;
        else if (strcmp(a, "--stream") == 0)
            o.tokens = 1;
        else if (strcmp(a, "--no-stream") == 0)
            o.tokens = 0;
        else if (strcmp(a, "--timeout-ms") == 0 && i + 1 < argc)
            o.timeout_ms = atol(argv[++i]);
        else if (strcmp(a, "--endpoint") == 0 && i + 1 < argc)
            endpoint = argv[++i];
        else if (a[0] == '-') {
            fprintf(stderr, "loom watch: unknown option '%s' (see loom watch --help)\n", a);
            return LOOM_EXIT_USAGE;
        } else if (!run) {
            run = a;
        } else {
            fprintf(stderr, "loom watch: one run at a time ('%s' is extra)\n", a);
            return LOOM_EXIT_USAGE;
        }
    }
    if (!run) {
        fprintf(stderr, "usage: loom watch RUN [--json] [--quiet] [--timeout-ms N]\n");
        return LOOM_EXIT_USAGE;
    }
    if (o.tokens < 0)
        o.tokens = isatty(2);
    endpoint = loom_cli_endpoint(endpoint);
    loom_client_t *c = loom_cli_connect("watch", endpoint);
    if (!c)
        return LOOM_EXIT_SYSTEM;
    int rc = loom_cli_follow(c, "watch", endpoint, run, &o);
    loom_client_destroy(&c);
    return rc;
}

/* cmd_runs.c — `loom runs [--state S] [--workflow W] [--limit N] [--json]`. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "cli/runview.h"
#include "protocol/states.h"

static const char usage_text[] =
    "usage: loom runs [--state queued|running|succeeded|failed|cancelled]\n"
    "                 [--workflow NAME] [--label KEY=VALUE]... [--tenant T]\n"
    "                 [--limit N] [--json] [--endpoint URL]\n"
    "Lists runs, newest first (--label: runs carrying every label given).\n";

int loom_cmd_runs(int argc, char **argv)
{
    if (loom_cli_wants_help(argc, argv, usage_text))
        return LOOM_EXIT_OK;
    const char *endpoint = NULL;
    int json_out = 0;
    Loom__V1__ListRequest rq = LOOM__V1__LIST_REQUEST__INIT;
    char labels[1024] = "";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0)
            json_out = 1;
        else if (strcmp(a, "--endpoint") == 0 && v)
            endpoint = v, i++;
        else if (strcmp(a, "--limit") == 0 && v)
            rq.limit = (uint32_t)atoi(v), i++;
        else if (strcmp(a, "--workflow") == 0 && v)
            rq.workflow_name = (char *)v, i++;
        else if (strcmp(a, "--tenant") == 0 && v)
            rq.tenant = (char *)v, i++;
        else if (strcmp(a, "--label") == 0 && v) {
            if (!strchr(v, '=') || strchr(v, ',') || (labels[0] && strlen(labels) + strlen(v) + 2 > sizeof labels)) {
                fprintf(stderr, "loom runs: --label wants KEY=VALUE (no commas), got '%s'\n", v);
                return LOOM_EXIT_USAGE;
            }
            snprintf(labels + strlen(labels), sizeof labels - strlen(labels), "%s%s",
                     labels[0] ? "," : "", v);
            rq.labels = labels;
            i++;
        } else if (strcmp(a, "--state") == 0 && v) {
            int s = loom_run_state_from_word(v);
            if (s <= 0) {
                fprintf(stderr, "loom runs: unknown state '%s'\n", v);
                return LOOM_EXIT_USAGE;
            }
            rq.state = s;
            i++;
        } else {
            fprintf(stderr, "loom runs: unknown argument '%s' (see --help)\n", a);
            return LOOM_EXIT_USAGE;
        }
    }
    endpoint = loom_cli_endpoint(endpoint);
    loom_client_t *c = loom_cli_connect("runs", endpoint);
    if (!c)
        return LOOM_EXIT_SYSTEM;
    Loom__V1__ListReply *rep = NULL;
    loom_err_t err;
    loom_err_clear(&err);
    int st = loom_client_list(c, &rq, 10000, &rep, &err);
    loom_client_destroy(&c);
    if (st != LOOM_STATUS_OK)
        return loom_cli_rpc_error("runs", endpoint, st, &err);
    if (json_out) {
        json_t *arr = json_array();
        for (size_t i = 0; i < rep->n_runs; i++)
            json_array_append_new(arr, loom_cli_run_json(rep->runs[i]));
        char *s = json_dumps(arr, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
        json_decref(arr);
    } else {
        printf("%-20s %-20s %-10s %10s  %s\n", "run", "workflow", "state", "ms", "sla");
        for (size_t i = 0; i < rep->n_runs; i++) {
            const Loom__V1__Run *r = rep->runs[i];
            printf("%-20s %-20s %-10s %10.0f  %s\n", r->run_id, r->workflow_name,
                   loom_cli_run_state(r->state), r->elapsed_ms,
                   r->sla && r->sla[0] ? r->sla : "-");
        }
    }
    loom_pb_free(rep);
    return LOOM_EXIT_OK;
}

/* cmd_status.c — `loom status RUN [--json]`: one run with its steps. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "cli/runview.h"

static const char usage_text[] =
    "usage: loom status RUN [--json] [--endpoint URL]\n"
    "Shows a run: state, SLA, outputs and the per-step timeline.\n"
    "Exit 0 when found, 1 when loomd does not know the run, 3 on a system error.\n";

int loom_cmd_status(int argc, char **argv)
{
    if (loom_cli_wants_help(argc, argv, usage_text))
        return LOOM_EXIT_OK;
    loom_cli_run_args_t a = {0};
    int rc = loom_cli_parse_run_args("status", argc, argv, NULL, 1, "usage: loom status RUN [--json]", &a);
    if (rc != LOOM_EXIT_OK)
        return rc;
    const char *run = a.run, *endpoint = a.endpoint;
    int json_out = a.json;
    loom_client_t *c = loom_cli_connect("status", endpoint);
    if (!c)
        return LOOM_EXIT_SYSTEM;
    Loom__V1__GetRequest rq = LOOM__V1__GET_REQUEST__INIT;
    rq.run_id = (char *)run;
    Loom__V1__GetReply *rep = NULL;
    loom_err_t err;
    loom_err_clear(&err);
    int st = loom_client_get(c, &rq, 10000, &rep, &err);
    loom_client_destroy(&c);
    if (st != LOOM_STATUS_OK)
        return loom_cli_rpc_error("status", endpoint, st, &err);
    if (json_out) {
        json_t *j = loom_cli_run_json(rep->run);
        char *s = json_dumps(j, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
        json_decref(j);
    } else {
        loom_cli_print_run(stdout, rep->run, 1);
        if (rep->run->outputs_json && *rep->run->outputs_json)
            printf("  outputs: %s\n", rep->run->outputs_json);
    }
    loom_pb_free(rep);
    return LOOM_EXIT_OK;
}

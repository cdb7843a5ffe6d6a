/* cmd_cancel.c — `loom cancel RUN [--reason TEXT] [--json]`. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "cli/runview.h"

static const char usage_text[] =
    "usage: loom cancel RUN [--reason TEXT] [--json] [--endpoint URL]\n"
    "Cancels a run; its running tasks are told to stop. A run that already\n"
    "finished keeps its state (printed). Exit 1 when loomd does not know the run.\n";

int loom_cmd_cancel(int argc, char **argv)
{
    if (loom_cli_wants_help(argc, argv, usage_text))
        return LOOM_EXIT_OK;
    loom_cli_run_args_t a = {.opt_val = "cancelled with loom cancel"};
    int rc = loom_cli_parse_run_args("cancel", argc, argv, "--reason", 0, "usage: loom cancel RUN", &a);
    if (rc != LOOM_EXIT_OK)
        return rc;
    const char *run = a.run, *endpoint = a.endpoint, *reason = a.opt_val;
    int json_out = a.json;
    loom_client_t *c = loom_cli_connect("cancel", endpoint);
    if (!c)
        return LOOM_EXIT_SYSTEM;
    Loom__V1__CancelRequest rq = LOOM__V1__CANCEL_REQUEST__INIT;
    rq.run_id = (char *)run;
    rq.reason = (char *)reason;
    Loom__V1__CancelReply *rep = NULL;
    loom_err_t err;
    loom_err_clear(&err);
    int st = loom_client_cancel(c, &rq, 10000, &rep, &err);
    loom_client_destroy(&c);
    if (st != LOOM_STATUS_OK)
        return loom_cli_rpc_error("cancel", endpoint, st, &err);
    if (json_out)
        printf("{\"run_id\": \"%s\", \"state\": \"%s\"}\n", run, loom_cli_run_state(rep->state));
    else
        printf("%s %s\n", run, loom_cli_run_state(rep->state));
    loom_pb_free(rep);
    return LOOM_EXIT_OK;
}

/* cmd_retry.c — `loom retry RUN [--idempotency-key K] [--json]`. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "cli/runview.h"

static const char usage_text[] =
    "usage: loom retry RUN [--idempotency-key K] [--json] [--endpoint URL]\n"
    "Runs a finished run's workflow again, with the same inputs and labels\n"
    "plus retry_of=RUN, and prints the new run's id (follow it with loom watch).\n"
    "Exit 1 when loomd does not know the run, it is still active, or it has\n"
    "secret inputs (never stored: submit it again with loom run).\n";

int loom_cmd_retry(int argc, char **argv)
{
    if (loom_cli_wants_help(argc, argv, usage_text))
        return LOOM_EXIT_OK;
    loom_cli_run_args_t a = {0};
    int rc = loom_cli_parse_run_args("retry", argc, argv, "--idempotency-key", 0,
                                     "usage: loom retry RUN", &a);
    if (rc != LOOM_EXIT_OK)
        return rc;
    loom_client_t *c = loom_cli_connect("retry", a.endpoint);
    if (!c)
        return LOOM_EXIT_SYSTEM;
    Loom__V1__RetryRequest rq = LOOM__V1__RETRY_REQUEST__INIT;
    rq.run_id = (char *)a.run;
    rq.idempotency_key = (char *)(a.opt_val ? a.opt_val : "");
    Loom__V1__SubmitReply *rep = NULL;
    loom_err_t err;
    loom_err_clear(&err);
    int st = loom_client_retry(c, &rq, 10000, &rep, &err);
    loom_client_destroy(&c);
    if (st != LOOM_STATUS_OK)
        return loom_cli_rpc_error("retry", a.endpoint, st, &err);
    if (a.json)
        printf("{\"run_id\": \"%s\", \"retry_of\": \"%s\", \"state\": \"%s\"}\n", rep->run_id, a.run,
               loom_cli_run_state(rep->state));
    else
        printf("%s\n", rep->run_id);
    loom_pb_free(rep);
    return LOOM_EXIT_OK;
}

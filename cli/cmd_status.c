/* cmd_status.c — `loom status RUN [--json] [--mlir]`: one run with its
 * steps, or the partitioned MLIR module its tasks were dispatched from. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "cli/runview.h"

static const char usage_text[] =
    "usage: loom status RUN [--json] [--mlir] [--endpoint URL]\n"
    "Shows a run: state, SLA, outputs and the per-step timeline.\n"
    "  --mlir   print the run's plan lowered to the loom dialect instead: one function\n"
    "           per device (worker id), each op a task there, send/recv pairs the\n"
    "           transfers; loomd dispatched the run from it (edit it and pass it to\n"
    "           `loom run --plan FILE.mlir` to run the workflow that way)\n"
    "Exit 0 when found, 1 when loomd does not know the run, 3 on a system error.\n";

/* Prints the module of the run's latest PLANNED / REPLANNED event (the
 * events are replayed at once when the Watch opens; a quiet second ends
 * the replay of a run still going). */
static int print_module(loom_client_t *c, const char *endpoint, const char *run)
{
    Loom__V1__WatchRequest wr = LOOM__V1__WATCH_REQUEST__INIT;
    wr.run_id = (char *)run;
    loom_stream_t *s = NULL;
    loom_err_t err;
    loom_err_clear(&err);
    int st = loom_client_watch(c, &wr, 0, &s, &err);
    if (st != LOOM_STATUS_OK)
        return loom_cli_rpc_error("status", endpoint, st, &err);
    char *module = NULL;
    int planned = 0;
    ProtobufCMessage *item = NULL;
    while (loom_stream_next(s, 1000, &item, &err) == LOOM_STREAM_ITEM) {
        const Loom__V1__RunEvent *ev = (const Loom__V1__RunEvent *)item;
        if (ev->plan && (ev->kind == LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_PLANNED ||
                         ev->kind == LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_REPLANNED)) {
            planned = 1;
            free(module);
            module = ev->plan->module_mlir && *ev->plan->module_mlir ? strdup(ev->plan->module_mlir) : NULL;
        }
        loom_pb_free(item);
    }
    loom_stream_destroy(&s);
    if (!module) {
        fprintf(stderr, "loom status: run %s has %s\n", run,
                planned ? "no stored module (its plan was not lowered, or the module is over 256 KiB; "
                          "`loom plan FILE --live --emit mlir` prints one)"
                        : "no plan yet (planned when its first task is placed)");
        return LOOM_EXIT_FAIL;
    }
    fputs(module, stdout);
    free(module);
    return LOOM_EXIT_OK;
}

int loom_cmd_status(int argc, char **argv)
{
    if (loom_cli_wants_help(argc, argv, usage_text))
        return LOOM_EXIT_OK;
    int mlir = 0, n = 0;
    for (int i = 0; i < argc; i++) /* --mlir is ours; the rest are the common run args */
        if (strcmp(argv[i], "--mlir") == 0)
            mlir = 1;
        else
            argv[n++] = argv[i];
    argc = n;
    loom_cli_run_args_t a = {0};
    int rc = loom_cli_parse_run_args("status", argc, argv, NULL, 1, "usage: loom status RUN [--json]", &a);
    if (rc != LOOM_EXIT_OK)
        return rc;
    const char *run = a.run, *endpoint = a.endpoint;
    int json_out = a.json;
    loom_client_t *c = loom_cli_connect("status", endpoint);
    if (!c)
        return LOOM_EXIT_SYSTEM;
    if (mlir) {
        rc = print_module(c, endpoint, run);
        loom_client_destroy(&c);
        return rc;
    }
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

/* runview.h — what the loomd-facing subcommands (run, status, runs,
 * workers, cancel) share: connecting (--endpoint / $LOOM_ENDPOINT), telling
 * the user's mistakes from the system's in RPC failures, and printing runs
 * as text or JSON. */
#ifndef LOOM_CLI_RUNVIEW_H
#define LOOM_CLI_RUNVIEW_H

#include <stdio.h>

#include <jansson.h>

#include "protocol/client.h"

#define LOOM_DEFAULT_ENDPOINT "tcp://127.0.0.1:7400"

/* Endpoint from the flag, else $LOOM_ENDPOINT, else the default. */
const char *loom_cli_endpoint(const char *flag);
/* Connects (auth token from $LOOM_AUTH_TOKEN; CURVE with $LOOM_SERVER_KEY and
 * $LOOM_CLIENT_KEY, see docs/SECURITY.md). NULL after printing why. */
loom_client_t *loom_cli_connect(const char *cmd, const char *endpoint);
/* Set when the command line has --json: failures are printed as JSON on
 * stdout ({"error": {...}}) instead of text on stderr. */
extern int loom_cli_json_errors;
/* Prints an RPC failure as the user's problem or the system's and returns
 * the exit code (LOOM_EXIT_FAIL or LOOM_EXIT_SYSTEM). */
int loom_cli_rpc_error(const char *cmd, const char *endpoint, int status, const loom_err_t *err);

/* The arguments of `loom CMD RUN [--json] [--endpoint URL] [OPT VALUE]`.
 * Pointers point into argv (borrowed). */
typedef struct {
    const char *run;      /* the RUN argument */
    const char *endpoint; /* resolved with loom_cli_endpoint() */
    const char *opt_val;  /* value of the extra option, untouched when absent */
    int json;             /* --json given */
} loom_cli_run_args_t;
/* Parses argv[1..] for cmd. opt is one extra option taking a value (NULL
 * for none); one_run rejects a second RUN (else later ones are ignored).
 * Returns LOOM_EXIT_OK, or LOOM_EXIT_USAGE after printing why; usage is
 * the line printed when RUN is missing. */
int loom_cli_parse_run_args(const char *cmd, int argc, char **argv, const char *opt, int one_run,
                            const char *usage, loom_cli_run_args_t *out);

const char *loom_cli_run_state(int s);   /* "running", "succeeded", ... */
const char *loom_cli_step_state(int s);
const char *loom_cli_device(int k);
/* A run (with its steps when present) as a new JSON object. */
json_t *loom_cli_run_json(const Loom__V1__Run *r);
/* Human-readable summary; with steps, a per-step timeline. */
void loom_cli_print_run(FILE *f, const Loom__V1__Run *r, int steps);

#endif

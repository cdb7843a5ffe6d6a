/* follow.h — following a run on loomd until it ends, shared by `loom run`
 * (after submitting) and `loom watch RUN` (reattaching to a --no-wait run):
 * one progress line per step change on stderr, LLM tokens streamed as they
 * are generated when stderr is a terminal, then the outputs and the
 * per-step timeline (or the run as JSON), and the exit code. */
#ifndef LOOM_CLI_FOLLOW_H
#define LOOM_CLI_FOLLOW_H

#include "protocol/client.h"

typedef struct {
    int json;         /* print the finished run as JSON on stdout */
    int quiet;        /* no progress lines */
    int explain;      /* print each plan's placements */
    int tokens;       /* stream LLM tokens (default: when stderr is a terminal) */
    long timeout_ms;  /* stop following after this (the run continues); 0 = none */
} loom_cli_follow_opts_t;

/* Follows run_id on c and returns the exit code: 0 succeeded, 1 failed or
 * cancelled, 4 succeeded but missed its SLA, 3 system error / timeout. */
int loom_cli_follow(loom_client_t *c, const char *cmd, const char *endpoint, const char *run_id,
                    const loom_cli_follow_opts_t *o);

#endif

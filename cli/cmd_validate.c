/* cmd_validate.c — `loom validate FILE...`: placeholder until the workflow
 * parser lands in planner/workflow.c (issue 2, part 6). */
#include "cli/cli.h"

#include <stdio.h>

static const char usage_text[] =
    "usage: loom validate [--json] FILE...\n"
    "Checks workflow files; prints 'ok' or each error as file:line:col: field: message.\n";

int loom_cmd_validate(int argc, char **argv)
{
    if (loom_cli_wants_help(argc, argv, usage_text))
        return LOOM_EXIT_OK;
    fprintf(stderr, "loom validate: the workflow parser is not built yet\n");
    return LOOM_EXIT_SYSTEM;
}

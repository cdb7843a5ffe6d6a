/* cli.h — the `loom` command-line tool: one table of subcommands, each in
 * its own cmd_<name>.c. Subcommands get argv starting at their own name
 * (argv[0] = "validate") and return the process exit code. */
#ifndef LOOM_CLI_H
#define LOOM_CLI_H

typedef struct {
    const char *name;
    const char *summary; /* one line for `loom --help` */
    int (*run)(int argc, char **argv);
} loom_cli_cmd_t;

/* Exit codes shared by all subcommands. */
enum {
    LOOM_EXIT_OK = 0,
    LOOM_EXIT_FAIL = 1,     /* the user's input or run failed (validation error, run failed) */
    LOOM_EXIT_USAGE = 2,    /* bad command line */
    LOOM_EXIT_SYSTEM = 3,   /* Loom itself or its environment failed (daemon down, I/O) */
    LOOM_EXIT_SLA = 4,      /* run succeeded but missed its SLA */
};

/* Parses an SLA in milliseconds given on the command line: a positive
 * integer, as sla.latency_ms is in a workflow. Prints "loom CMD: FLAG ..."
 * and returns -1 otherwise. */
int loom_cli_parse_sla_ms(const char *cmd, const char *flag, const char *text, double *out);

/* True when --help or -h appears in argv; prints usage to stdout then. */
int loom_cli_wants_help(int argc, char **argv, const char *usage);

#endif

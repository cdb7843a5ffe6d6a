/* spawn.h — starting tool processes (tool.exec, stdio MCP servers): an argv
 * vector, an environment built from an allow-list of the worker's own
 * variables plus explicit ones, and fork+exec of a child that leads its
 * own process group and dies with the worker. */
#ifndef LOOM_WORKERS_SPAWN_H
#define LOOM_WORKERS_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "common/err.h"

/* A NULL-terminated vector of malloc'd strings (argv, envp). */
typedef struct loom_strv {
    char **v;
    size_t n, cap;
} loom_strv_t;

/* Appends str (taken over; freed on failure). 0 or LOOM_ENOMEM (also when
 * str is NULL, so a failed strdup/asprintf can be passed straight in). */
int loom_strv_push(loom_strv_t *s, char *str);
void loom_strv_free(loom_strv_t *s);

/* Appends NAME=value for each entry of set (an object of strings, numbers
 * or booleans; NULL for none), then the worker's own value of every name in
 * allow (a list of names; NULL = PATH HOME LANG LC_ALL TZ TMPDIR) that
 * set did not give. Messages start with `who` ("tool.exec"). Returns 0,
 * LOOM_EINVAL (err->field "env" or "env_allow") or LOOM_ENOMEM. */
int loom_spawn_env(const char *who, const json_t *set, const json_t *allow, loom_strv_t *env,
                   loom_err_t *err);

/* fork + exec argv[0] (looked up in PATH) with envp, in cwd (NULL: the
 * worker's), stdin/stdout/stderr from the given fds. The child leads its own
 * process group and gets SIGKILL when the thread that started it exits
 * (PR_SET_PDEATHSIG). Returns 0 and the pid, or the errno of the failed
 * exec (the child is reaped). */
int loom_spawn(char **argv, char **envp, const char *cwd, int in, int out, int err, pid_t *ppid);

#endif

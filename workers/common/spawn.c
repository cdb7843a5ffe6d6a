/* spawn.c — see spawn.h. */
#include "workers/common/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const default_allow[] = {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"};

int loom_strv_push(loom_strv_t *s, char *str)
{
    if (!str)
        return LOOM_ENOMEM;
    if (s->n + 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16;
        char **n = realloc(s->v, ncap * sizeof *n);
        if (!n) {
            free(str);
            return LOOM_ENOMEM;
        }
        s->v = n;
        s->cap = ncap;
    }
    s->v[s->n++] = str;
    s->v[s->n] = NULL;
    return 0;
}

void loom_strv_free(loom_strv_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int env_has(const loom_strv_t *env, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < env->n; i++)
        if (strncmp(env->v[i], name, n) == 0 && env->v[i][n] == '=')
            return 1;
    return 0;
}

static int bad(loom_err_t *err, const char *who, const char *field, const char *msg)
{
    loom_err_set(err, LOOM_EINVAL, "%s: %s", who, msg);
    loom_err_field(err, "%s", field);
    return LOOM_EINVAL;
}

int loom_spawn_env(const char *who, const json_t *set, const json_t *allow, loom_strv_t *env,
                   loom_err_t *err)
{
    if (set && !json_is_object(set))
        return bad(err, who, "env", "env must be an object of strings");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)set, k, v) {
        char *s = NULL;
        if (strchr(k, '=') || !*k)
            return bad(err, who, "env", "bad variable name in env");
        if (json_is_string(v)) {
            if (asprintf(&s, "%s=%s", k, json_string_value(v)) < 0)
                s = NULL;
        } else if (json_is_number(v) || json_is_boolean(v)) {
            char *t = json_dumps(v, JSON_ENCODE_ANY);
            if (t && asprintf(&s, "%s=%s", k, t) < 0)
                s = NULL;
            free(t);
        } else
            return bad(err, who, "env", "env values must be strings");
        if (loom_strv_push(env, s) != 0)
            return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    }
    if (allow && !json_is_array(allow))
        return bad(err, who, "env_allow", "env_allow must be a list of names");
    size_t n = allow ? json_array_size(allow) : sizeof default_allow / sizeof *default_allow;
    for (size_t i = 0; i < n; i++) {
        const char *name = allow ? json_string_value(json_array_get(allow, i)) : default_allow[i];
        if (!name)
            return bad(err, who, "env_allow", "env_allow must be a list of names");
        const char *val = getenv(name);
        if (!val || env_has(env, name))
            continue;
        char *s = NULL;
        if (asprintf(&s, "%s=%s", name, val) < 0)
            s = NULL;
        if (loom_strv_push(env, s) != 0)
            return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    }
    return 0;
}

/* fork + exec (not posix_spawn: the child needs prctl). Only
 * async-signal-safe calls between fork and exec. */
int loom_spawn(char **argv, char **envp, const char *cwd, int in, int out, int err, pid_t *ppid)
{
    int ep[2];
    if (pipe2(ep, O_CLOEXEC) != 0)
        return errno;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(ep[0]);
        close(ep[1]);
        return e;
    }
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0 || (cwd && chdir(cwd) != 0)) {
            int e = errno;
            ssize_t w = write(ep[1], &e, sizeof e);
            (void)w;
            _exit(127);
        }
        execvpe(argv[0], argv, envp);
        int e = errno;
        ssize_t w = write(ep[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    close(ep[1]);
    int e = 0;
    ssize_t n;
    while ((n = read(ep[0], &e, sizeof e)) < 0 && errno == EINTR)
        ;
    close(ep[0]);
    if (n == (ssize_t)sizeof e) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return e ? e : EIO;
    }
    *ppid = pid;
    return 0;
}

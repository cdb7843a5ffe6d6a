/* op_exec.c — the tool.exec op: run a program, never through a shell.
 *
 * Input (rendered by loomd):
 *   argv        [string, ...]   required; argv[0] is looked up in PATH;
 *                               non-string items are passed as compact JSON
 *   stdin       string or any JSON value (serialised), optional
 *   env         {NAME: value}   variables to set (LOOM_TASK_KEY is always set:
 *                               the step instance's idempotency key, the same
 *                               on every attempt; see worker.proto task_key)
 *   env_allow   [NAME, ...]     worker variables passed through (default:
 *                               PATH HOME LANG LC_ALL TZ TMPDIR)
 *   cwd         string          working directory (loomd fills in the submitting
 *                               client's directory unless the step sets one)
 *   timeout_ms  int             kill the process group after this long
 *   max_output_bytes int        stdout cap (default 16 MiB); past it the
 *                               process group is killed and the task fails
 *   parse       "auto"|"json"|"text"   how stdout becomes the output
 *                               (auto: JSON when it parses, else text)
 * Output: stdout parsed as JSON (auto/json), or the text with one trailing
 * newline removed. A non-zero exit or a signal fails the task with the
 * tail of stderr in the message. */
#include "workers/common/ops.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "workers/common/spawn.h"


#define DEFAULT_CAP (16u << 20)
#define TAIL 2048

static int bad(loom_op_output_t *out, loom_err_t *err, const char *field, const char *msg)
{
    out->permanent = 1;
    loom_err_set(err, LOOM_EINVAL, "tool.exec: %s", msg);
    loom_err_field(err, "%s", field);
    return LOOM_EINVAL;
}

static void kill_group(pid_t pid)
{
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
}

/* Appends to a fixed-size tail buffer, keeping the last TAIL bytes. */
static void tail_add(char *tail, size_t *tlen, const char *d, size_t n)
{
    if (n >= TAIL) {
        memcpy(tail, d + n - TAIL, TAIL);
        *tlen = TAIL;
        return;
    }
    if (*tlen + n > TAIL) {
        size_t drop = *tlen + n - TAIL;
        memmove(tail, tail + drop, *tlen - drop);
        *tlen -= drop;
    }
    memcpy(tail + *tlen, d, n);
    *tlen += n;
}

int loom_op_tool_exec(void *ud, loom_op_ctx_t *ctx, const json_t *in, loom_op_output_t *out,
                      loom_err_t *err)
{
    (void)ud;
    if (!json_is_object(in))
        return bad(out, err, "", "input must be an object");
    json_t *jargv = json_object_get(in, "argv");
    if (!json_is_array(jargv) || json_array_size(jargv) == 0)
        return bad(out, err, "argv", "argv must be a non-empty list of strings");
    loom_strv_t argv = {0}, env = {0};
    int rc = 0;
    char *stdin_data = NULL;
    size_t stdin_len = 0;
    for (size_t i = 0; i < json_array_size(jargv); i++) {
        json_t *a = json_array_get(jargv, i);
        /* Strings go as they are; other values (numbers, objects from
         * upstream outputs, null) as compact JSON text. */
        char *s = json_is_string(a) ? strdup(json_string_value(a))
                                    : json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!s) {
            rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
            goto done;
        }
        if ((rc = loom_strv_push(&argv, s)) != 0)
            goto done;
    }
    /* the step instance's idempotency key, the same for every attempt */
    char *key = NULL;
    if (asprintf(&key, "LOOM_TASK_KEY=%s", loom_op_task_key(ctx)) < 0 ||
        (rc = loom_strv_push(&env, key)) != 0) {
        rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto done;
    }
    rc = loom_spawn_env("tool.exec", json_object_get(in, "env"), json_object_get(in, "env_allow"),
                        &env, err);
    if (rc != 0) {
        out->permanent = rc == LOOM_EINVAL;
        goto done;
    }
    json_t *jstdin = json_object_get(in, "stdin");
    if (json_is_string(jstdin)) {
        stdin_len = json_string_length(jstdin);
        stdin_data = malloc(stdin_len + 1);
        if (stdin_data)
            memcpy(stdin_data, json_string_value(jstdin), stdin_len);
    } else if (jstdin && !json_is_null(jstdin)) {
        stdin_data = json_dumps(jstdin, JSON_COMPACT | JSON_ENCODE_ANY);
        stdin_len = stdin_data ? strlen(stdin_data) : 0;
    }
    json_t *jcwd = json_object_get(in, "cwd");
    if (jcwd && !json_is_string(jcwd)) {
        rc = bad(out, err, "cwd", "cwd must be a string");
        goto done;
    }
    json_t *jto = json_object_get(in, "timeout_ms");
    int64_t timeout_ms = json_is_integer(jto) ? json_integer_value(jto) : 0;
    json_t *jcap = json_object_get(in, "max_output_bytes");
    size_t cap = json_is_integer(jcap) && json_integer_value(jcap) > 0
                     ? (size_t)json_integer_value(jcap)
                     : DEFAULT_CAP;
    const char *parse = json_string_value(json_object_get(in, "parse"));
    if (!parse)
        parse = "auto";

    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC)) {
        rc = loom_err_set(err, LOOM_EIO, "tool.exec: pipe: %s", strerror(errno));
        goto close_pipes;
    }
    pid_t pid = -1;
    int serr = loom_spawn(argv.v, env.v ? env.v : (char *[]){NULL},
                     jcwd ? json_string_value(jcwd) : NULL, pin[0], pout[1], perr[1], &pid);
    close(pin[0]), pin[0] = -1;
    close(pout[1]), pout[1] = -1;
    close(perr[1]), perr[1] = -1;
    if (serr != 0) {
        out->permanent = 1;
        rc = loom_err_set(err, LOOM_ENOTFOUND, "tool.exec: cannot run '%s': %s", argv.v[0],
                          strerror(serr));
        if (jcwd)
            loom_err_detail(err, "cwd: %s", json_string_value(jcwd));
        goto close_pipes;
    }
    fcntl(pin[1], F_SETFL, O_NONBLOCK);
    loom_buf_t sout;
    loom_buf_init(&sout, 0);
    char tail[TAIL];
    size_t tlen = 0, wrote = 0;
    if (stdin_len == 0)
        close(pin[1]), pin[1] = -1;
    uint64_t start = loom_clock_ms();
    int killed = 0; /* 1 timeout, 2 cancel, 3 output cap */
    while (pout[0] >= 0 || perr[0] >= 0) {
        struct pollfd p[3];
        int np = 0, io = -1, ie = -1, ii = -1;
        if (pout[0] >= 0)
            io = np, p[np++] = (struct pollfd){pout[0], POLLIN, 0};
        if (perr[0] >= 0)
            ie = np, p[np++] = (struct pollfd){perr[0], POLLIN, 0};
        if (pin[1] >= 0)
            ii = np, p[np++] = (struct pollfd){pin[1], POLLOUT, 0};
        int pr = poll(p, (nfds_t)np, 50);
        if (pr < 0 && errno != EINTR)
            break;
        char buf[65536];
        if (io >= 0 && p[io].revents) {
            ssize_t n = read(pout[0], buf, sizeof buf);
            if (n > 0) {
                if (sout.len + (size_t)n > cap) {
                    killed = 3;
                    kill_group(pid);
                    close(pout[0]), pout[0] = -1;
                } else if (loom_buf_append(&sout, buf, (size_t)n) != 0) {
                    killed = 3;
                    kill_group(pid);
                }
            } else if (n == 0 || errno != EINTR)
                close(pout[0]), pout[0] = -1;
        }
        if (ie >= 0 && p[ie].revents) {
            ssize_t n = read(perr[0], buf, sizeof buf);
            if (n > 0)
                tail_add(tail, &tlen, buf, (size_t)n);
            else if (n == 0 || errno != EINTR)
                close(perr[0]), perr[0] = -1;
        }
        if (ii >= 0 && p[ii].revents) {
            ssize_t n = write(pin[1], stdin_data + wrote, stdin_len - wrote);
            if (n > 0)
                wrote += (size_t)n;
            if ((n < 0 && errno != EAGAIN && errno != EINTR) || wrote >= stdin_len)
                close(pin[1]), pin[1] = -1;
        }
        if (!killed && timeout_ms > 0 && loom_clock_ms() - start >= (uint64_t)timeout_ms) {
            killed = 1;
            kill_group(pid);
        }
        if (!killed && loom_op_cancelled(ctx)) {
            killed = 2;
            kill_group(pid);
        }
        if (killed == 3)
            break;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (killed == 3) {
        kill_group(pid);
        out->permanent = 1;
        rc = loom_err_set(err, LOOM_ETOOBIG,
                          "tool.exec: '%s' wrote more than %zu bytes to stdout; killed",
                          argv.v[0], cap);
        loom_err_hint(err, "raise max_output_bytes or make the tool print less");
    } else if (killed == 1) {
        rc = loom_err_set(err, LOOM_ETIMEDOUT, "tool.exec: '%s' timed out after %lld ms; killed",
                          argv.v[0], (long long)timeout_ms);
    } else if (killed == 2) {
        rc = loom_err_set(err, loom_op_remaining_ms(ctx) == 0 ? LOOM_ETIMEDOUT : LOOM_ECANCELLED,
                          "tool.exec: '%s' %s; killed", argv.v[0],
                          loom_op_remaining_ms(ctx) == 0 ? "passed the task deadline"
                                                         : "cancelled");
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        while (tlen && (tail[tlen - 1] == '\n' || tail[tlen - 1] == '\r'))
            tlen--;
        const char *t = tail;
        size_t tl = tlen;
        if (tl > 400) /* the last lines are what people need */
            t += tl - 400, tl = 400;
        if (WIFEXITED(status))
            rc = loom_err_set(err, LOOM_EIO, "tool.exec: '%s' exited with status %d%s%.*s",
                              argv.v[0], WEXITSTATUS(status), tl ? ": " : "", (int)tl, t);
        else
            rc = loom_err_set(err, LOOM_EIO, "tool.exec: '%s' killed by signal %d%s%.*s",
                              argv.v[0], WTERMSIG(status), tl ? ": " : "", (int)tl, t);
    } else {
        json_error_t je;
        json_t *j = NULL;
        if (strcmp(parse, "text") != 0 && sout.len)
            j = json_loadb(sout.data, sout.len, JSON_DECODE_ANY, &je);
        if (j) {
            out->json = j;
        } else if (strcmp(parse, "json") == 0) {
            rc = loom_err_set(err, LOOM_EPARSE, "tool.exec: '%s' printed invalid JSON: %s",
                              argv.v[0], sout.len ? je.text : "empty output");
        } else {
            size_t n = sout.len;
            if (n && sout.data[n - 1] == '\n')
                n--;
            out->json = json_stringn(sout.data ? sout.data : "", n);
            if (!out->json) /* not UTF-8: keep the bytes as a lossy string */
                out->json = json_string("<binary output>");
        }
    }
    loom_buf_free(&sout);
close_pipes:
    for (int i = 0; i < 2; i++) {
        if (pin[i] >= 0)
            close(pin[i]);
        if (pout[i] >= 0)
            close(pout[i]);
        if (perr[i] >= 0)
            close(perr[i]);
    }
done:
    free(stdin_data);
    loom_strv_free(&argv);
    loom_strv_free(&env);
    return rc;
}

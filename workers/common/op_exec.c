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
 * tail of stderr in the message.
 *
 * The program runs under a keeper process with its stdin, stdout, stderr
 * and exit status in a spool entry (spool.h), so a result survives the
 * worker being killed: a restarted worker with the same id hands it to
 * loomd (loom_op_tool_exec_resume) instead of the step running again. */
#include "workers/common/ops.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <limits.h>
#include <unistd.h>

#include "common/clock.h"
#include "workers/common/policy.h"
#include "workers/common/spawn.h"
#include "workers/common/spool.h"


#define DEFAULT_CAP (16u << 20)

static int bad(loom_op_output_t *out, loom_err_t *err, const char *field, const char *msg)
{
    out->permanent = 1;
    loom_err_set(err, LOOM_EINVAL, "tool.exec: %s", msg);
    loom_err_field(err, "%s", field);
    return LOOM_EINVAL;
}

/* Reads up to max bytes of entry/name from offset off (negative: the last
 * -off bytes) into b. Returns the file's size, or -1 when it cannot be read. */
static long long read_part(const char *entry, const char *name, long long off, size_t max,
                           loom_buf_t *b)
{
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/%s", entry, name);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (off < 0)
        off = st.st_size + off > 0 ? st.st_size + off : 0;
    char buf[65536];
    while (b->len < max) {
        size_t want = max - b->len < sizeof buf ? max - b->len : sizeof buf;
        ssize_t n = pread(fd, buf, want, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || loom_buf_append(b, buf, (size_t)n) != 0)
            break;
        off += n;
    }
    close(fd);
    return (long long)st.st_size;
}

/* The result of a tool that ended (killed: why the worker ended it, 0 when
 * it exited by itself) from its spool entry: stdout as the output, or the
 * exit status with the tail of stderr as the error. */
static int finish(const char *entry, int killed, const char *argv0, const char *parse, size_t cap,
                  int64_t timeout_ms, loom_op_ctx_t *ctx, loom_op_output_t *out, loom_err_t *err)
{
    int status = 0;
    if (killed == 3) {
        out->permanent = 1;
        loom_err_set(err, LOOM_ETOOBIG, "tool.exec: '%s' wrote more than %zu bytes to stdout; killed",
                     argv0, cap);
        loom_err_hint(err, "raise max_output_bytes or make the tool print less");
        return LOOM_ETOOBIG;
    }
    if (killed == 1)
        return timeout_ms > 0
                   ? loom_err_set(err, LOOM_ETIMEDOUT, "tool.exec: '%s' timed out after %lld ms; killed",
                                  argv0, (long long)timeout_ms)
                   : loom_err_set(err, LOOM_ETIMEDOUT, "tool.exec: '%s' timed out (task deadline); killed",
                                  argv0);
    if (killed == 2)
        return loom_err_set(err, LOOM_ECANCELLED, "tool.exec: '%s' cancelled; killed", argv0);
    if (loom_spool_status(entry, &status, NULL) != 0)
        return loom_err_set(err, LOOM_EIO, "tool.exec: '%s': its keeper process died before it "
                                           "exited (killed with the worker?)", argv0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        loom_buf_t tb;
        loom_buf_init(&tb, 0);
        read_part(entry, "stderr", -400, 400, &tb); /* the last lines are what people need */
        size_t tl = tb.len;
        while (tl && (tb.data[tl - 1] == '\n' || tb.data[tl - 1] == '\r'))
            tl--;
        int rc;
        if (WIFEXITED(status))
            rc = loom_err_set(err, LOOM_EIO, "tool.exec: '%s' exited with status %d%s%.*s", argv0,
                              WEXITSTATUS(status), tl ? ": " : "", (int)tl, tb.data ? tb.data : "");
        else
            rc = loom_err_set(err, LOOM_EIO, "tool.exec: '%s' killed by signal %d%s%.*s", argv0,
                              WTERMSIG(status), tl ? ": " : "", (int)tl, tb.data ? tb.data : "");
        loom_buf_free(&tb);
        return rc;
    }
    loom_buf_t sout;
    loom_buf_init(&sout, 0);
    int rc = 0;
    long long size = read_part(entry, "stdout", 0, cap + 1, &sout);
    if (size < 0) {
        rc = loom_err_set(err, LOOM_EIO, "tool.exec: '%s': its output file is gone", argv0);
    } else if ((unsigned long long)size > cap) {
        rc = finish(entry, 3, argv0, parse, cap, timeout_ms, ctx, out, err);
    } else {
        json_error_t je;
        json_t *j = NULL;
        if (strcmp(parse, "text") != 0 && sout.len)
            j = json_loadb(sout.data, sout.len, JSON_DECODE_ANY, &je);
        if (j) {
            out->json = j;
        } else if (strcmp(parse, "json") == 0) {
            rc = loom_err_set(err, LOOM_EPARSE, "tool.exec: '%s' printed invalid JSON: %s", argv0,
                              sout.len ? je.text : "empty output");
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
    return rc;
}

static int write_file(const char *entry, const char *name, const char *data, size_t n)
{
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/%s", entry, name);
    FILE *f = fopen(p, "we");
    if (!f)
        return -1;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    return fclose(f) == 0 && w == n ? 0 : -1;
}

/* meta (what a restarted worker needs to turn the files into a result) and
 * stdin. */
static int write_entry(const char *entry, loom_op_ctx_t *ctx, const char *argv0, const char *parse,
                       size_t cap, int64_t timeout_ms, int64_t kill_at, const char *in, size_t in_len,
                       loom_err_t *err)
{
    json_t *m = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:I, s:I, s:I}", "op", "tool.exec",
                          "task_id", loom_op_task_id(ctx), "attempt", (json_int_t)loom_op_attempt(ctx),
                          "task_key", loom_op_task_key(ctx), "argv0", argv0, "parse", parse,
                          "max_output_bytes", (json_int_t)cap, "timeout_ms", (json_int_t)timeout_ms,
                          "kill_at_ms", (json_int_t)kill_at);
    char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    int bad = !text || write_file(entry, "meta", text, strlen(text)) != 0 ||
              write_file(entry, "stdin", in ? in : "", in_len) != 0;
    free(text);
    return bad ? loom_err_set(err, LOOM_EIO, "tool.exec: cannot write spool entry %s: %s", entry,
                              strerror(errno))
               : 0;
}

/* A tool.exec that a killed worker started and a new worker process with the
 * same id found still running or finished in its spool (worker.c): waits for
 * its keeper (killing the tool on cancel or when its time is up), then
 * makes the result as loom_op_tool_exec would have. */
int loom_op_tool_exec_resume(void *ud, loom_op_ctx_t *ctx, const json_t *in,
                             loom_op_output_t *out, loom_err_t *err)
{
    (void)ud;
    (void)in;
    const char *entry = loom_op_spool_entry(ctx);
    char mp[PATH_MAX + 16];
    snprintf(mp, sizeof mp, "%s/meta", entry ? entry : "");
    json_error_t je;
    json_t *m = entry ? json_load_file(mp, 0, &je) : NULL;
    if (!m)
        return loom_err_set(err, LOOM_EIO, "tool.exec: spool entry %s has no readable meta",
                            entry ? entry : "?");
    const char *argv0 = json_string_value(json_object_get(m, "argv0"));
    const char *parse = json_string_value(json_object_get(m, "parse"));
    json_int_t cap = json_integer_value(json_object_get(m, "max_output_bytes"));
    int64_t timeout_ms = json_integer_value(json_object_get(m, "timeout_ms"));
    int64_t kill_at = json_integer_value(json_object_get(m, "kill_at_ms"));
    pid_t tool = loom_spool_tool_pid(entry);
    int claim = loom_spool_claim(entry), killed = 0;
    while (loom_spool_keeper_alive(entry)) {
        if (!killed && kill_at && loom_wall_ms() >= kill_at)
            killed = 1;
        else if (!killed && loom_op_cancelled(ctx))
            killed = 2;
        if (killed)
            loom_kept_kill(tool);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (claim >= 0)
        close(claim);
    int rc = finish(entry, killed, argv0 ? argv0 : "?", parse ? parse : "auto",
                    cap > 0 ? (size_t)cap : DEFAULT_CAP, timeout_ms, ctx, out, err);
    if (killed)
        loom_op_spool_discard(ctx);
    json_decref(m);
    return rc;
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
    char exe[4096]; /* the worker's --allow-exec policy (policy.h) */
    if ((rc = loom_policy_check_exec(argv.v[0], exe, sizeof exe, err)) != 0) {
        out->permanent = 1;
        goto done;
    }
    if (strcmp(exe, argv.v[0]) != 0) {
        free(argv.v[0]);
        if (!(argv.v[0] = strdup(exe))) {
            rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
            goto done;
        }
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

    const char *entry = loom_op_spool_begin(ctx, err);
    if (!entry) {
        rc = err->code ? err->code : LOOM_EIO;
        goto done;
    }
    int64_t started = loom_wall_ms(), left = loom_op_remaining_ms(ctx);
    int64_t kill_at = timeout_ms > 0 ? started + timeout_ms : 0;
    if (left != INT64_MAX && (!kill_at || started + left < kill_at))
        kill_at = started + left;
    if ((rc = write_entry(entry, ctx, argv.v[0], parse, cap, timeout_ms, kill_at, stdin_data,
                          stdin_len, err)) != 0) {
        loom_op_spool_discard(ctx);
        goto done;
    }
    loom_kept_t k;
    int serr = loom_kept_start(entry, argv.v, env.v ? env.v : (char *[]){NULL},
                               jcwd ? json_string_value(jcwd) : NULL, &k);
    if (serr != 0) {
        loom_op_spool_discard(ctx);
        out->permanent = 1;
        rc = loom_err_set(err, LOOM_ENOTFOUND, "tool.exec: cannot run '%s': %s", argv.v[0],
                          strerror(serr));
        if (jcwd)
            loom_err_detail(err, "cwd: %s", json_string_value(jcwd));
        goto done;
    }
    char opath[PATH_MAX + 16];
    snprintf(opath, sizeof opath, "%s/stdout", entry);
    int killed = 0; /* 1 timeout, 2 cancel, 3 output cap */
    while (!loom_kept_wait(&k, 50)) {
        struct stat st;
        if (!killed && ((timeout_ms > 0 && loom_wall_ms() - started >= timeout_ms) ||
                        (loom_op_cancelled(ctx) && loom_op_remaining_ms(ctx) == 0)))
            killed = 1; /* its timeout_ms (counted by the worker from the task's start) */
        else if (!killed && loom_op_cancelled(ctx))
            killed = 2;
        else if (!killed && stat(opath, &st) == 0 && (size_t)st.st_size > cap)
            killed = 3;
        if (killed)
            loom_kept_kill(k.tool);
    }
    rc = finish(entry, killed, argv.v[0], parse, cap, timeout_ms, ctx, out, err);
    if (killed) /* the worker ended it: no result to keep for a restart */
        loom_op_spool_discard(ctx);
done:
    free(stdin_data);
    loom_strv_free(&argv);
    loom_strv_free(&env);
    return rc;
}

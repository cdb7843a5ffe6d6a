/* mcp.c — see mcp.h. Protocol revision 2025-06-18 (the server may answer
 * with an older one; we send what it chose on later HTTP requests). */
#include "workers/common/mcp.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "workers/common/spawn.h"
#include "workers/common/sse.h"

#define COMP "mcp"
#define PROTOCOL_VERSION "2025-06-18"
#define MAX_MESSAGE (64u << 20) /* one JSON-RPC message, either transport */

enum { STDIO, HTTP };

struct loom_mcp {
    int kind;
    int usable;
    int64_t next_id;
    char *name; /* "serverInfo.name version" */
    char *what; /* command or URL, for messages */
    /* stdio */
    pid_t pid;
    int to_fd, from_fd;
    loom_buf_t rbuf; /* bytes read, not yet a whole line */
    /* http */
    char *url;
    json_t *headers; /* the spec's extra headers */
    char *session;
    char proto[32];
};

/* ---- messages ---------------------------------------------------------------- */

static int is_answer(const json_t *msg, int64_t id)
{
    json_t *jid = json_object_get(msg, "id");
    return json_is_integer(jid) && json_integer_value(jid) == id && !json_object_get(msg, "method");
}

/* What to send back for a request the server made while we waited (NULL
 * for notifications and answers). */
static json_t *reply_to_server(const json_t *msg)
{
    const char *method = json_string_value(json_object_get(msg, "method"));
    json_t *id = json_object_get(msg, "id");
    if (!method || !id)
        return NULL;
    if (strcmp(method, "ping") == 0)
        return json_pack("{sssOs{}}", "jsonrpc", "2.0", "id", id, "result");
    return json_pack("{sssOs{sisS}}", "jsonrpc", "2.0", "id", id, "error", "code", -32601, "message",
                     "method not supported by this client");
}

/* A JSON-RPC answer → result (new reference) or an error. */
static int take_answer(loom_mcp_t *m, const char *method, json_t *msg, json_t **result,
                       loom_err_t *err)
{
    json_t *e = json_object_get(msg, "error");
    if (e) {
        const char *text = json_string_value(json_object_get(e, "message"));
        return loom_err_set(err, LOOM_EIO, "MCP server %s: %s failed: %s (code %lld)", m->what,
                            method, text ? text : "no message",
                            (long long)json_integer_value(json_object_get(e, "code")));
    }
    json_t *r = json_object_get(msg, "result");
    if (!r)
        return loom_err_set(err, LOOM_EPROTO, "MCP server %s: answer to %s has neither result nor error",
                            m->what, method);
    *result = json_incref(r);
    return 0;
}

/* ---- stdio ------------------------------------------------------------------- */

static int stdio_send(loom_mcp_t *m, const json_t *msg, loom_err_t *err)
{
    char *s = json_dumps(msg, JSON_COMPACT);
    if (!s)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    size_t n = strlen(s), off = 0;
    s[n] = '\n'; /* json_dumps leaves room for the NUL we overwrite */
    int rc = 0;
    while (off < n + 1) {
        ssize_t w = write(m->to_fd, s + off, n + 1 - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd p = {m->to_fd, POLLOUT, 0};
            poll(&p, 1, 100);
            continue;
        }
        if (w <= 0) {
            m->usable = 0;
            rc = loom_err_set(err, LOOM_EUNAVAIL, "MCP server %s: cannot write to it: %s", m->what,
                              strerror(errno));
            break;
        }
        off += (size_t)w;
    }
    free(s);
    return rc;
}

/* Next whole line from the server as JSON, waiting up to wait_ms. Returns
 * 1 with *msg, 0 when nothing arrived in time, or a negative error. */
static int stdio_next(loom_mcp_t *m, int wait_ms, json_t **msg, loom_err_t *err)
{
    for (;;) {
        char *nl = m->rbuf.len ? memchr(m->rbuf.data, '\n', m->rbuf.len) : NULL;
        if (nl) {
            size_t len = (size_t)(nl - m->rbuf.data);
            json_error_t je;
            json_t *j = len ? json_loadb(m->rbuf.data, len, 0, &je) : NULL;
            if (!j && len)
                loom_log(LOOM_LOG_WARN, COMP, "msg=\"MCP server wrote a line that is not JSON\" server=%s line=\"%.80s\"",
                         m->what, m->rbuf.data);
            memmove(m->rbuf.data, nl + 1, m->rbuf.len - len - 1);
            m->rbuf.len -= len + 1;
            if (j) {
                *msg = j;
                return 1;
            }
            continue;
        }
        if (m->rbuf.len > MAX_MESSAGE) {
            m->usable = 0;
            return loom_err_set(err, LOOM_ETOOBIG, "MCP server %s sent a message over %u bytes",
                                m->what, MAX_MESSAGE);
        }
        struct pollfd p = {m->from_fd, POLLIN, 0};
        int pr = poll(&p, 1, wait_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return 0;
        char buf[65536];
        ssize_t n = read(m->from_fd, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            m->usable = 0;
            int st = 0;
            pid_t w = waitpid(m->pid, &st, WNOHANG);
            if (w == m->pid) {
                m->pid = -1;
                if (WIFEXITED(st))
                    return loom_err_set(err, LOOM_EUNAVAIL, "MCP server %s exited with status %d",
                                        m->what, WEXITSTATUS(st));
                return loom_err_set(err, LOOM_EUNAVAIL, "MCP server %s killed by signal %d", m->what,
                                    WTERMSIG(st));
            }
            return loom_err_set(err, LOOM_EUNAVAIL, "MCP server %s closed its stdout", m->what);
        }
        if (loom_buf_append(&m->rbuf, buf, (size_t)n) != 0)
            return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    }
}

static int stdio_request(loom_mcp_t *m, const char *method, const json_t *req, int64_t id,
                         int64_t timeout_ms, loom_mcp_cancel_fn cancelled, void *cud,
                         json_t **result, loom_err_t *err)
{
    int rc = stdio_send(m, req, err);
    if (rc)
        return rc;
    if (id < 0)
        return 0; /* a notification */
    uint64_t start = loom_clock_ms();
    for (;;) {
        json_t *msg = NULL;
        rc = stdio_next(m, 100, &msg, err);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            if (is_answer(msg, id)) {
                rc = take_answer(m, method, msg, result, err);
                json_decref(msg);
                return rc;
            }
            json_t *reply = reply_to_server(msg);
            json_decref(msg);
            if (reply) {
                rc = stdio_send(m, reply, err);
                json_decref(reply);
                if (rc)
                    return rc;
            }
            continue;
        }
        int stop = cancelled && cancelled(cud);
        if (stop || (int64_t)(loom_clock_ms() - start) >= timeout_ms) {
            json_t *note = json_pack("{sss{sIss}}", "jsonrpc", "2.0", "method", "notifications/cancelled",
                                     "params", "requestId", (json_int_t)id, "reason",
                                     stop ? "cancelled" : "timed out");
            if (note)
                stdio_send(m, note, &(loom_err_t){0});
            json_decref(note);
            if (stop)
                return loom_err_set(err, LOOM_ECANCELLED, "MCP %s on %s cancelled", method, m->what);
            return loom_err_set(err, LOOM_ETIMEDOUT, "MCP server %s did not answer %s within %lld ms",
                                m->what, method, (long long)timeout_ms);
        }
    }
}

static int stdio_open(loom_mcp_t *m, const json_t *spec, loom_err_t *err)
{
    const char *cmd = json_string_value(json_object_get(spec, "command"));
    json_t *args = json_object_get(spec, "args"), *cwd = json_object_get(spec, "cwd");
    if (args && !json_is_array(args))
        return loom_err_set(err, LOOM_EINVAL, "MCP server spec: args must be a list of strings");
    if (cwd && !json_is_string(cwd))
        return loom_err_set(err, LOOM_EINVAL, "MCP server spec: cwd must be a string");
    loom_strv_t argv = {0}, env = {0};
    int rc = loom_strv_push(&argv, strdup(cmd));
    for (size_t i = 0; !rc && i < json_array_size(args); i++) {
        const char *a = json_string_value(json_array_get(args, i));
        rc = a ? loom_strv_push(&argv, strdup(a))
               : loom_err_set(err, LOOM_EINVAL, "MCP server spec: args must be a list of strings");
    }
    if (!rc)
        rc = loom_spawn_env("MCP server spec", json_object_get(spec, "env"), json_object_get(spec, "env_allow"),
                            &env, err);
    int pin[2] = {-1, -1}, pout[2] = {-1, -1};
    if (!rc && (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC)))
        rc = loom_err_set(err, LOOM_EIO, "pipe: %s", strerror(errno));
    if (!rc) {
        int e = loom_spawn(argv.v, env.v ? env.v : (char *[]){NULL}, cwd ? json_string_value(cwd) : NULL,
                           pin[0], pout[1], 2, &m->pid);
        if (e)
            rc = loom_err_set(err, LOOM_ENOTFOUND, "cannot start MCP server '%s': %s", cmd, strerror(e));
    }
    if (pin[0] >= 0)
        close(pin[0]);
    if (pout[1] >= 0)
        close(pout[1]);
    if (rc) {
        if (pin[1] >= 0)
            close(pin[1]);
        if (pout[0] >= 0)
            close(pout[0]);
    } else {
        m->to_fd = pin[1];
        m->from_fd = pout[0];
        fcntl(m->to_fd, F_SETFL, O_NONBLOCK);
    }
    loom_strv_free(&argv);
    loom_strv_free(&env);
    return rc;
}

static void stdio_close(loom_mcp_t *m)
{
    if (m->to_fd >= 0)
        close(m->to_fd); /* the spec's shutdown: close stdin, wait, then signal */
    if (m->from_fd >= 0)
        close(m->from_fd);
    if (m->pid <= 0)
        return;
    static const int sigs[] = {0, SIGTERM, SIGKILL};
    for (int s = 0; s < 3; s++) {
        if (sigs[s]) {
            kill(-m->pid, sigs[s]);
            kill(m->pid, sigs[s]);
        }
        for (int i = 0; i < (sigs[s] == SIGKILL ? 200 : 20); i++) {
            if (waitpid(m->pid, NULL, WNOHANG) == m->pid)
                return;
            usleep(10000);
        }
    }
}

/* ---- Streamable HTTP ---------------------------------------------------------- */

typedef struct {
    loom_mcp_t *m;
    int64_t id;
    loom_buf_t body;   /* a JSON body */
    loom_sse_t sse_in; /* an event-stream body */
    int sse;           /* Content-Type: text/event-stream */
    json_t *answer;    /* the message answering id */
    json_t *replies;   /* answers we owe the server for its requests */
    char ctype[128];
    char session[256];
    int too_big;
    loom_mcp_cancel_fn cancelled;
    void *cud;
} http_call_t;

static void http_consider(http_call_t *c, json_t *msg)
{
    if (json_is_array(msg)) {
        size_t i;
        json_t *x;
        json_array_foreach(msg, i, x) http_consider(c, x);
        return;
    }
    if (!c->answer && is_answer(msg, c->id)) {
        c->answer = json_incref(msg);
        return;
    }
    json_t *reply = reply_to_server(msg);
    if (reply)
        json_array_append_new(c->replies, reply);
}

static int on_sse_event(void *ud, const char *data, size_t len)
{
    http_call_t *c = ud;
    json_error_t je;
    json_t *msg = json_loadb(data, len, 0, &je);
    if (msg)
        http_consider(c, msg);
    json_decref(msg);
    return c->answer != NULL; /* stop at the answer */
}

static size_t http_on_body(char *p, size_t sz, size_t n, void *ud)
{
    http_call_t *c = ud;
    size_t len = sz * n;
    int rc = c->sse ? loom_sse_feed(&c->sse_in, p, len, on_sse_event, c) : loom_buf_append(&c->body, p, len);
    c->too_big |= rc == LOOM_ETOOBIG;
    /* At the answer we are done: the server may keep the stream open. */
    return rc ? 0 : len;
}

static size_t http_on_header(char *p, size_t sz, size_t n, void *ud)
{
    http_call_t *c = ud;
    size_t len = sz * n, kl;
    const char *colon = memchr(p, ':', len);
    if (!colon)
        return len;
    kl = (size_t)(colon - p);
    const char *v = colon + 1, *end = p + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    size_t vl = (size_t)(end - v);
    if (kl == 12 && !strncasecmp(p, "content-type", 12)) {
        snprintf(c->ctype, sizeof c->ctype, "%.*s", (int)vl, v);
        c->sse = strncasecmp(c->ctype, "text/event-stream", 17) == 0;
    } else if (kl == 14 && !strncasecmp(p, "mcp-session-id", 14) && vl < sizeof c->session) {
        snprintf(c->session, sizeof c->session, "%.*s", (int)vl, v);
    }
    return len;
}

static int http_on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t x, curl_off_t y)
{
    (void)a, (void)b, (void)x, (void)y;
    http_call_t *c = ud;
    return c->cancelled && c->cancelled(c->cud);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* One POST of msg (id < 0: a notification or reply, no answer awaited).
 * *status is the HTTP status (0 when none arrived). */
static int http_post(loom_mcp_t *m, const char *method, const json_t *msg, int64_t id,
                     int64_t timeout_ms, loom_mcp_cancel_fn cancelled, void *cud, json_t **answer,
                     long *status, loom_err_t *err)
{
    pthread_once(&curl_once, curl_init_once);
    http_call_t c = {.m = m, .id = id, .replies = json_array(), .cancelled = cancelled, .cud = cud};
    loom_buf_init(&c.body, MAX_MESSAGE);
    loom_sse_init(&c.sse_in, MAX_MESSAGE);
    char *payload = json_dumps(msg, JSON_COMPACT);
    struct curl_slist *h = NULL;
    char line[1024];
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Accept: application/json, text/event-stream");
    if (m->session) {
        snprintf(line, sizeof line, "Mcp-Session-Id: %s", m->session);
        h = curl_slist_append(h, line);
    }
    if (m->proto[0]) {
        snprintf(line, sizeof line, "MCP-Protocol-Version: %s", m->proto);
        h = curl_slist_append(h, line);
    }
    const char *k;
    json_t *v;
    json_object_foreach(m->headers, k, v) {
        snprintf(line, sizeof line, "%s: %s", k, json_string_value(v) ? json_string_value(v) : "");
        h = curl_slist_append(h, line);
    }
    CURL *cu = curl_easy_init();
    int rc = 0;
    *status = 0;
    if (!cu || !payload || !c.replies) {
        rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto done;
    }
    curl_easy_setopt(cu, CURLOPT_URL, m->url);
    curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 1));
    curl_easy_setopt(cu, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(cu, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, http_on_body);
    curl_easy_setopt(cu, CURLOPT_WRITEDATA, &c);
    curl_easy_setopt(cu, CURLOPT_HEADERFUNCTION, http_on_header);
    curl_easy_setopt(cu, CURLOPT_HEADERDATA, &c);
    curl_easy_setopt(cu, CURLOPT_XFERINFOFUNCTION, http_on_progress);
    curl_easy_setopt(cu, CURLOPT_XFERINFODATA, &c);
    curl_easy_setopt(cu, CURLOPT_NOPROGRESS, 0L);
    CURLcode cc = curl_easy_perform(cu);
    curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, status);
    if (c.session[0] && (!m->session || strcmp(m->session, c.session) != 0)) {
        free(m->session);
        m->session = strdup(c.session);
    }
    if (!c.sse && c.body.len && *status >= 200 && *status < 300) {
        json_error_t je;
        json_t *j = json_loadb(c.body.data, c.body.len, 0, &je);
        if (j)
            http_consider(&c, j);
        else if (id >= 0)
            rc = loom_err_set(err, LOOM_EPROTO, "MCP server %s answered %s with %s that is not JSON-RPC",
                              m->url, method, c.ctype[0] ? c.ctype : "a body");
        json_decref(j);
    }
    if (rc)
        goto done;
    if (c.answer && (cc == CURLE_OK || cc == CURLE_WRITE_ERROR || cc == CURLE_PARTIAL_FILE)) {
        rc = take_answer(m, method, c.answer, answer, err);
    } else if (c.too_big) {
        rc = loom_err_set(err, LOOM_ETOOBIG, "MCP server %s sent a message over %u bytes", m->url,
                          MAX_MESSAGE);
    } else if (cc == CURLE_ABORTED_BY_CALLBACK) {
        rc = loom_err_set(err, LOOM_ECANCELLED, "MCP %s on %s cancelled", method, m->url);
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        rc = loom_err_set(err, LOOM_ETIMEDOUT, "MCP server %s did not answer %s within %lld ms", m->url,
                          method, (long long)timeout_ms);
    } else if (cc != CURLE_OK) {
        rc = loom_err_set(err, LOOM_EUNAVAIL, "MCP server %s: %s: %s", m->url, method,
                          curl_easy_strerror(cc));
    } else if (*status < 200 || *status >= 300) {
        if (c.body.len > 200)
            c.body.len = 200;
        loom_buf_putc(&c.body, 0);
        rc = loom_err_set(err, *status == 404 ? LOOM_ENOTFOUND : LOOM_EUNAVAIL,
                          "MCP server %s answered %s with HTTP %ld: %s", m->url, method, *status,
                          c.body.data ? c.body.data : "");
    } else if (id >= 0) {
        rc = loom_err_set(err, LOOM_EPROTO, "MCP server %s ended its answer to %s without a result",
                          m->url, method);
    }
done:
    if (cu)
        curl_easy_cleanup(cu);
    curl_slist_free_all(h);
    free(payload);
    loom_buf_free(&c.body);
    loom_sse_free(&c.sse_in);
    json_decref(c.answer);
    /* Requests the server made meanwhile (ping, ...) get their answer. */
    size_t i;
    json_array_foreach(c.replies, i, v) {
        long st;
        json_t *ignored = NULL;
        http_post(m, "reply", v, -1, 2000, NULL, NULL, &ignored, &st, &(loom_err_t){0});
    }
    json_decref(c.replies);
    return rc;
}

/* ---- both ---------------------------------------------------------------------- */

static int send_message(loom_mcp_t *m, const char *method, const json_t *params, int64_t id,
                        int64_t timeout_ms, loom_mcp_cancel_fn cancelled, void *cud, json_t **result,
                        loom_err_t *err)
{
    json_t *msg = id >= 0 ? json_pack("{sssIss}", "jsonrpc", "2.0", "id", (json_int_t)id, "method", method)
                          : json_pack("{ssss}", "jsonrpc", "2.0", "method", method);
    if (!msg)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    if (params)
        json_object_set(msg, "params", (json_t *)params);
    int rc;
    if (m->kind == STDIO) {
        rc = stdio_request(m, method, msg, id, timeout_ms, cancelled, cud, result, err);
    } else {
        long status = 0;
        rc = http_post(m, method, msg, id, timeout_ms, cancelled, cud, result, &status, err);
        if (rc == LOOM_ENOTFOUND && m->session && strcmp(method, "initialize") != 0) {
            /* The session expired (404): start a new one and retry once. */
            free(m->session);
            m->session = NULL;
            json_t *init = json_pack("{sss{}s{ssss}}", "protocolVersion", PROTOCOL_VERSION,
                                     "capabilities", "clientInfo", "name", "loom", "version", "1");
            json_t *r = NULL;
            loom_err_t e2 = {0};
            long st;
            json_t *imsg = json_pack("{sssIsssO}", "jsonrpc", "2.0", "id", (json_int_t)m->next_id++,
                                     "method", "initialize", "params", init);
            if (imsg && http_post(m, "initialize", imsg, json_integer_value(json_object_get(imsg, "id")),
                                  timeout_ms, cancelled, cud, &r, &st, &e2) == 0) {
                json_t *note = json_pack("{ssss}", "jsonrpc", "2.0", "method", "notifications/initialized");
                json_t *ig = NULL;
                http_post(m, "notifications/initialized", note, -1, timeout_ms, NULL, NULL, &ig, &st, &e2);
                json_decref(note);
                loom_err_clear(err);
                rc = http_post(m, method, msg, id, timeout_ms, cancelled, cud, result, &status, err);
            }
            json_decref(r);
            json_decref(imsg);
            json_decref(init);
        }
    }
    json_decref(msg);
    return rc;
}

int loom_mcp_request(loom_mcp_t *m, const char *method, const json_t *params, int64_t timeout_ms,
                     loom_mcp_cancel_fn cancelled, void *cud, json_t **result, loom_err_t *err)
{
    *result = NULL;
    if (!m->usable)
        return loom_err_set(err, LOOM_EUNAVAIL, "MCP server %s is gone", m->what);
    return send_message(m, method, params, m->next_id++, timeout_ms, cancelled, cud, result, err);
}

int loom_mcp_open(const json_t *spec, int64_t timeout_ms, loom_mcp_t **out, loom_err_t *err)
{
    *out = NULL;
    if (!json_is_object(spec))
        return loom_err_set(err, LOOM_EINVAL, "an MCP server is {command, args, env} or {url, headers}");
    const char *cmd = json_string_value(json_object_get(spec, "command"));
    const char *url = json_string_value(json_object_get(spec, "url"));
    json_t *headers = json_object_get(spec, "headers");
    if (!cmd == !url)
        return loom_err_set(err, LOOM_EINVAL, "an MCP server needs exactly one of command or url");
    if (url && strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return loom_err_set(err, LOOM_EINVAL, "MCP server url must be http:// or https://, got '%s'", url);
    if (headers && !json_is_object(headers))
        return loom_err_set(err, LOOM_EINVAL, "MCP server headers must be an object of strings");
    loom_mcp_t *m = calloc(1, sizeof *m);
    if (!m)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    m->to_fd = m->from_fd = -1;
    m->pid = -1;
    m->next_id = 1;
    m->usable = 1;
    loom_buf_init(&m->rbuf, 0);
    m->kind = cmd ? STDIO : HTTP;
    m->what = strdup(cmd ? cmd : url);
    int rc = 0;
    if (cmd) {
        rc = stdio_open(m, spec, err);
    } else {
        m->url = strdup(url);
        m->headers = headers ? json_incref(headers) : json_object();
    }
    json_t *params = json_pack("{sss{}s{ssss}}", "protocolVersion", PROTOCOL_VERSION, "capabilities",
                               "clientInfo", "name", "loom", "version", "1");
    json_t *r = NULL;
    if (!rc)
        rc = loom_mcp_request(m, "initialize", params, timeout_ms, NULL, NULL, &r, err);
    json_decref(params);
    if (!rc && !json_is_object(r))
        rc = loom_err_set(err, LOOM_EPROTO, "MCP server %s: initialize answered without a result object",
                          m->what);
    if (!rc) {
        const char *pv = json_string_value(json_object_get(r, "protocolVersion"));
        snprintf(m->proto, sizeof m->proto, "%s", pv ? pv : PROTOCOL_VERSION);
        json_t *info = json_object_get(r, "serverInfo");
        const char *n = json_string_value(json_object_get(info, "name"));
        const char *v = json_string_value(json_object_get(info, "version"));
        if (asprintf(&m->name, "%s %s", n ? n : "?", v ? v : "?") < 0)
            m->name = NULL;
        rc = send_message(m, "notifications/initialized", NULL, -1, timeout_ms, NULL, NULL, NULL, err);
    }
    json_decref(r);
    if (rc) {
        loom_mcp_destroy(&m);
        return rc;
    }
    *out = m;
    return 0;
}

void loom_mcp_destroy(loom_mcp_t **pm)
{
    loom_mcp_t *m = pm ? *pm : NULL;
    if (!m)
        return;
    if (m->kind == STDIO) {
        stdio_close(m);
    } else if (m->session) {
        /* End the session (best effort). */
        CURL *cu = curl_easy_init();
        if (cu) {
            char line[512];
            snprintf(line, sizeof line, "Mcp-Session-Id: %s", m->session);
            struct curl_slist *h = curl_slist_append(NULL, line);
            curl_easy_setopt(cu, CURLOPT_URL, m->url);
            curl_easy_setopt(cu, CURLOPT_CUSTOMREQUEST, "DELETE");
            curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, 1000L);
            curl_easy_setopt(cu, CURLOPT_HTTPHEADER, h);
            curl_easy_setopt(cu, CURLOPT_NOBODY, 1L);
            curl_easy_perform(cu);
            curl_easy_cleanup(cu);
            curl_slist_free_all(h);
        }
    }
    loom_buf_free(&m->rbuf);
    free(m->url);
    free(m->session);
    free(m->name);
    free(m->what);
    json_decref(m->headers);
    free(m);
    *pm = NULL;
}

int loom_mcp_usable(loom_mcp_t *m)
{
    if (m && m->usable && m->kind == STDIO && m->pid > 0 && waitpid(m->pid, NULL, WNOHANG) == m->pid) {
        m->pid = -1; /* exited since the last call (and is now reaped) */
        m->usable = 0;
    }
    return m && m->usable;
}

const char *loom_mcp_server_name(const loom_mcp_t *m)
{
    return m->name ? m->name : "?";
}

int loom_mcp_list_tools(loom_mcp_t *m, int64_t timeout_ms, json_t **tools, loom_err_t *err)
{
    json_t *all = json_array();
    char *cursor = NULL;
    int rc = all ? 0 : loom_err_set(err, LOOM_ENOMEM, "out of memory");
    for (int page = 0; !rc && page < 1000; page++) {
        json_t *params = cursor ? json_pack("{ss}", "cursor", cursor) : NULL, *r = NULL;
        rc = loom_mcp_request(m, "tools/list", params, timeout_ms, NULL, NULL, &r, err);
        json_decref(params);
        free(cursor);
        cursor = NULL;
        if (rc)
            break;
        json_t *list = json_object_get(r, "tools");
        if (!json_is_array(list))
            rc = loom_err_set(err, LOOM_EPROTO, "MCP server %s: tools/list answered without a tools list",
                              m->what);
        else
            json_array_extend(all, list);
        const char *next = json_string_value(json_object_get(r, "nextCursor"));
        if (next && *next)
            cursor = strdup(next);
        json_decref(r);
        if (!cursor)
            break;
    }
    free(cursor);
    if (rc) {
        json_decref(all);
        return rc;
    }
    *tools = all;
    return 0;
}

int loom_mcp_tool_output(const json_t *result, const char *tool, json_t **out, loom_err_t *err)
{
    json_t *content = json_object_get(result, "content");
    loom_buf_t text;
    loom_buf_init(&text, 0);
    int all_text = json_array_size(content) > 0;
    size_t i;
    json_t *item;
    json_array_foreach(content, i, item) {
        const char *t = json_string_value(json_object_get(item, "text"));
        const char *type = json_string_value(json_object_get(item, "type"));
        if (!t || !type || strcmp(type, "text") != 0) {
            all_text = 0;
            continue;
        }
        if (text.len)
            loom_buf_putc(&text, '\n');
        loom_buf_puts(&text, t);
    }
    int rc = 0;
    if (json_is_true(json_object_get(result, "isError"))) {
        rc = loom_err_set(err, LOOM_EIO, "MCP tool '%s' failed: %.*s", tool, (int)(text.len < 200 ? text.len : 200),
                          text.len ? text.data : "no message");
    } else if (json_object_get(result, "structuredContent")) {
        *out = json_incref(json_object_get(result, "structuredContent"));
    } else if (all_text) {
        *out = json_stringn(text.data, text.len);
        if (!*out)
            *out = json_string("<text that is not UTF-8>");
    } else {
        *out = content ? json_incref(content) : json_array();
    }
    loom_buf_free(&text);
    return rc;
}

/* op_http.c — the tool.http op, through libcurl.
 *
 * Input (rendered by loomd):
 *   url         string              required (http/https only)
 *   method      string              default GET (POST when body is set)
 *   headers     {Name: value}       optional; an Idempotency-Key header (the
 *                                   step instance's task key, the same on every
 *                                   attempt) is added unless one is given
 *   body        string or JSON      a string is sent as is (text/plain
 *                                   unless headers set Content-Type), any
 *                                   other value as JSON (application/json)
 *   timeout_ms  int                 whole-request limit; the task's own
 *                                   deadline (the step's timeout_ms) caps
 *                                   it; default 30000
 *   max_output_bytes int            response cap (default 16 MiB)
 *   expect_status [200, "2xx", ...] statuses that succeed; any other fails
 *   fail_on     "4xx5xx"|"5xx"|"never"   without expect_status: which
 *                                   statuses fail (default "4xx5xx")
 *                                   A failing 5xx or 429 is retryable,
 *                                   anything else is not.
 *   parse       "auto"|"json"|"text"   auto: JSON when the body parses;
 *                                   json: a body that is not JSON fails
 * Output: {"status": N, "headers": {...}, "body": <JSON or text>}; a HEAD
 * answer has body null. */
#include "workers/common/ops.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_CAP (16u << 20)

typedef struct {
    loom_buf_t body;
    size_t cap;
    int over;
    json_t *headers;
    loom_op_ctx_t *ctx;
} resp_t;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    resp_t *r = ud;
    size_t len = sz * n;
    if (r->body.len + len > r->cap) {
        r->over = 1;
        return 0; /* aborts the transfer */
    }
    return loom_buf_append(&r->body, p, len) == 0 ? len : 0;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    resp_t *r = ud;
    size_t len = sz * n;
    const char *colon = memchr(p, ':', len);
    if (colon && colon > p) {
        const char *v = colon + 1, *end = p + len;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
            end--;
        char key[128];
        size_t kl = (size_t)(colon - p) < sizeof key - 1 ? (size_t)(colon - p) : sizeof key - 1;
        for (size_t i = 0; i < kl; i++)
            key[i] = (char)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]);
        key[kl] = 0;
        json_t *val = json_stringn_nocheck(v, (size_t)(end - v));
        if (val)
            json_object_set_new(r->headers, key, val);
    }
    return len;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    return loom_op_cancelled(((resp_t *)ud)->ctx);
}

static int bad(loom_op_output_t *out, loom_err_t *err, const char *field, const char *msg)
{
    out->permanent = 1;
    loom_err_set(err, LOOM_EINVAL, "tool.http: %s", msg);
    loom_err_field(err, "%s", field);
    return LOOM_EINVAL;
}

/* Does status match one entry of expect_status (an integer code or a class
 * like "2xx")? */
static int status_expected(const json_t *want, long status)
{
    size_t i;
    json_t *w;
    json_array_foreach(want, i, w) {
        if (json_is_integer(w) && json_integer_value(w) == status)
            return 1;
        const char *c = json_string_value(w);
        if (c && strlen(c) == 3 && c[0] == '0' + status / 100 && (c[1] == 'x' || c[1] == 'X'))
            return 1;
    }
    return 0;
}

static int check_expect_status(const json_t *want)
{
    size_t i;
    json_t *w;
    if (!json_is_array(want) || json_array_size(want) == 0)
        return 0;
    json_array_foreach(want, i, w) {
        const char *c = json_string_value(w);
        if (json_is_integer(w) && json_integer_value(w) >= 100 && json_integer_value(w) <= 599)
            continue;
        if (c && strlen(c) == 3 && c[0] >= '1' && c[0] <= '5' && strcasecmp(c + 1, "xx") == 0)
            continue;
        return 0;
    }
    return 1;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

int loom_op_tool_http(void *ud, loom_op_ctx_t *ctx, const json_t *in, loom_op_output_t *out,
                      loom_err_t *err)
{
    (void)ud;
    pthread_once(&curl_once, curl_init_once);
    if (!json_is_object(in))
        return bad(out, err, "", "input must be an object");
    const char *url = json_string_value(json_object_get(in, "url"));
    if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        return bad(out, err, "url", "url must be an http:// or https:// URL");
    json_t *jbody = json_object_get(in, "body");
    const char *method = json_string_value(json_object_get(in, "method"));
    if (!method)
        method = jbody && !json_is_null(jbody) ? "POST" : "GET";
    json_t *jto = json_object_get(in, "timeout_ms");
    int64_t left = loom_op_remaining_ms(ctx);
    long timeout_ms = json_is_integer(jto) && json_integer_value(jto) > 0
                          ? (long)json_integer_value(jto)
                          : left < INT64_MAX ? (long)(left > 0 ? left : 1) : 30000;
    if (left < timeout_ms)
        timeout_ms = (long)(left > 0 ? left : 1);
    json_t *want = json_object_get(in, "expect_status");
    if (json_is_integer(want) || json_is_string(want))
        want = json_pack("[O]", want);
    else
        json_incref(want);
    const char *parse = json_string_value(json_object_get(in, "parse"));
    if (!parse)
        parse = "auto";
    json_t *jcap = json_object_get(in, "max_output_bytes");
    const char *fail_on = json_string_value(json_object_get(in, "fail_on"));
    if (!fail_on)
        fail_on = "4xx5xx";
    resp_t r = {.cap = json_is_integer(jcap) && json_integer_value(jcap) > 0
                           ? (size_t)json_integer_value(jcap)
                           : DEFAULT_CAP,
                .headers = json_object(),
                .ctx = ctx};
    loom_buf_init(&r.body, 0);
    char *body = NULL;
    struct curl_slist *hdrs = NULL;
    int rc = 0, json_body = 0, head = strcasecmp(method, "HEAD") == 0;
    if (want && !check_expect_status(want)) {
        rc = bad(out, err, "expect_status",
                 "expect_status must be a status code (100-599), a class like \"2xx\", or a list of them");
        goto done;
    }
    if (strcmp(parse, "auto") != 0 && strcmp(parse, "json") != 0 && strcmp(parse, "text") != 0) {
        rc = bad(out, err, "parse", "parse must be auto, json or text");
        goto done;
    }
    if (head && jbody && !json_is_null(jbody)) {
        rc = bad(out, err, "body", "a HEAD request has no body");
        goto done;
    }
    if (json_is_string(jbody))
        body = strdup(json_string_value(jbody));
    else if (jbody && !json_is_null(jbody)) {
        body = json_dumps(jbody, JSON_COMPACT | JSON_ENCODE_ANY);
        json_body = 1;
    }
    json_t *jh = json_object_get(in, "headers");
    if (jh && !json_is_object(jh)) {
        rc = bad(out, err, "headers", "headers must be an object of strings");
        goto done;
    }
    const char *k;
    json_t *v;
    int has_ct = 0, has_key = 0;
    json_object_foreach(jh, k, v) {
        if (!json_is_string(v)) {
            rc = bad(out, err, "headers", "header values must be strings");
            goto done;
        }
        char line[2048];
        snprintf(line, sizeof line, "%s: %s", k, json_string_value(v));
        hdrs = curl_slist_append(hdrs, line);
        if (strcasecmp(k, "content-type") == 0)
            has_ct = 1;
        if (strcasecmp(k, "idempotency-key") == 0)
            has_key = 1;
    }
    if (!has_key) { /* the same on every attempt: a cooperating server applies it once */
        char line[600];
        snprintf(line, sizeof line, "Idempotency-Key: %s", loom_op_task_key(ctx));
        hdrs = curl_slist_append(hdrs, line);
    }
    if (body && !has_ct)
        hdrs = curl_slist_append(hdrs, json_body ? "Content-Type: application/json"
                                                 : "Content-Type: text/plain; charset=utf-8");
    CURL *c = curl_easy_init();
    if (!c) {
        rc = loom_err_set(err, LOOM_ENOMEM, "tool.http: curl_easy_init failed");
        goto done;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &r);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    if (head)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (r.over) {
        out->permanent = 1;
        rc = loom_err_set(err, LOOM_ETOOBIG, "tool.http: response from %s larger than %zu bytes",
                          url, r.cap);
    } else if (cc == CURLE_ABORTED_BY_CALLBACK) {
        rc = loom_err_set(err, LOOM_ECANCELLED, "tool.http: %s %s cancelled", method, url);
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        rc = loom_err_set(err, LOOM_ETIMEDOUT, "tool.http: %s %s timed out after %ld ms", method,
                          url, timeout_ms);
    } else if (cc != CURLE_OK) {
        rc = loom_err_set(err, LOOM_EUNAVAIL, "tool.http: %s %s: %s", method, url,
                          curl_easy_strerror(cc));
    } else if (want ? !status_expected(want, status)
                    : (status >= 500 && strcmp(fail_on, "never") != 0) ||
                          (status >= 400 && status < 500 && strcmp(fail_on, "4xx5xx") == 0)) {
        out->permanent = !(status >= 500 || status == 429);
        rc = loom_err_set(err, LOOM_EIO, "tool.http: %s %s answered %ld%s: %.200s", method, url,
                          status, want ? " (not in expect_status)" : "",
                          r.body.data ? r.body.data : "");
    } else {
        json_error_t je;
        json_t *b = head ? json_null()
                    : r.body.len && strcmp(parse, "text") != 0
                        ? json_loadb(r.body.data, r.body.len, JSON_DECODE_ANY, &je)
                        : NULL;
        if (!b && strcmp(parse, "json") == 0) {
            out->permanent = 1;
            rc = loom_err_set(err, LOOM_EPARSE,
                              "tool.http: %s %s answered %ld with a body that is not JSON (%s at byte %d)",
                              method, url, status, r.body.len ? je.text : "empty body",
                              r.body.len ? je.position : 0);
            goto done;
        }
        if (!b)
            b = json_stringn(r.body.data ? r.body.data : "", r.body.len);
        if (!b)
            b = json_string("<binary body>");
        out->json = json_pack("{sIsOso}", "status", (json_int_t)status, "headers", r.headers,
                              "body", b);
    }
done:
    json_decref(want);
    curl_slist_free_all(hdrs);
    free(body);
    loom_buf_free(&r.body);
    json_decref(r.headers);
    return rc;
}

int loom_ops_add_tools(loom_ops_t *ops)
{
    int rc = loom_ops_add(ops, "tool.exec", loom_op_tool_exec, NULL, 0);
    if (!rc)
        rc = loom_ops_add(ops, "tool.http", loom_op_tool_http, NULL, 0);
    if (!rc)
        rc = loom_ops_add(ops, "tool.mcp", loom_op_tool_mcp, NULL, 0);
    return rc;
}

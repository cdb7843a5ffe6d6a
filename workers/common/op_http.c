/* op_http.c — the tool.http op, through libcurl.
 *
 * Input (rendered by loomd):
 *   url         string              required (http/https only)
 *   method      string              default GET (POST when body is set)
 *   headers     {Name: value}       optional; an Idempotency-Key header (the
 *                                   step instance's task key, the same on every
 *                                   attempt) is added unless one is given
 *   body        string or JSON      a JSON value is sent as JSON
 *   timeout_ms  int                 whole-request timeout (default 30000)
 *   max_output_bytes int            response cap (default 16 MiB)
 *   fail_on     "4xx5xx"|"5xx"|"never"   which statuses fail the task
 *                                   (default "4xx5xx"; 5xx and 429 are
 *                                   retryable, other 4xx are not)
 * Output: {"status": N, "headers": {...}, "body": <JSON when the response
 * parses as JSON, else the text>}. */
#include "workers/common/ops.h"

#include <curl/curl.h>
#include <pthread.h>
#include <string.h>

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
    long timeout_ms = json_is_integer(jto) ? (long)json_integer_value(jto) : 30000;
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
    int rc = 0, json_body = 0;
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
    if (json_body && !has_ct)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
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
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
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
    } else if ((status >= 500 && strcmp(fail_on, "never") != 0) ||
               (status >= 400 && status < 500 && strcmp(fail_on, "4xx5xx") == 0)) {
        out->permanent = status >= 400 && status < 500 && status != 429;
        rc = loom_err_set(err, LOOM_EIO, "tool.http: %s %s answered %ld: %.200s", method, url,
                          status, r.body.data ? r.body.data : "");
    } else {
        json_error_t je;
        json_t *b = r.body.len ? json_loadb(r.body.data, r.body.len, JSON_DECODE_ANY, &je) : NULL;
        if (!b)
            b = json_stringn(r.body.data ? r.body.data : "", r.body.len);
        if (!b)
            b = json_string("<binary body>");
        out->json = json_pack("{sIsOso}", "status", (json_int_t)status, "headers", r.headers,
                              "body", b);
    }
done:
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
    return rc;
}

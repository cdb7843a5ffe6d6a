/* endpoint.c — see endpoint.h. */
#include "workers/common/endpoint.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/buf.h"
#include "common/clock.h"
#include "workers/common/sse.h"

#define MAX_BODY (64u << 20)

typedef struct {
    loom_buf_t body;       /* a JSON answer, or an error body */
    loom_sse_t sse;
    int is_sse;
    long retry_after_ms;
    loom_buf_t text;       /* streamed content so far */
    json_t *stream_error;  /* an error event inside a 200 stream */
    char finish[32];
    int prompt_tokens, completion_tokens;
    int stopped;           /* on_piece asked to stop */
    loom_endpoint_piece_fn on_piece;
    void *pud;
    loom_endpoint_cancel_fn cancelled;
    void *cud;
} call_t;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void take_usage(call_t *c, const json_t *msg)
{
    json_t *u = json_object_get(msg, "usage");
    if (json_is_integer(json_object_get(u, "prompt_tokens")))
        c->prompt_tokens = (int)json_integer_value(json_object_get(u, "prompt_tokens"));
    if (json_is_integer(json_object_get(u, "completion_tokens")))
        c->completion_tokens = (int)json_integer_value(json_object_get(u, "completion_tokens"));
}

/* One streamed chunk: {"choices": [{"delta": {"content": "..."}, "finish_reason": ...}]}
 * or {"error": ...}; "[DONE]" ends the stream. */
static int on_event(void *ud, const char *data, size_t len)
{
    call_t *c = ud;
    if (len == 6 && !memcmp(data, "[DONE]", 6))
        return 0;
    json_error_t je;
    json_t *msg = json_loadb(data, len, 0, &je);
    if (!msg)
        return 0; /* a keep-alive or a line we do not know */
    json_t *e = json_object_get(msg, "error");
    if (e && !json_is_null(e)) {
        c->stream_error = json_incref(e);
        json_decref(msg);
        return 1;
    }
    json_t *ch = json_array_get(json_object_get(msg, "choices"), 0);
    json_t *delta = json_object_get(ch, "delta");
    const char *piece = json_string_value(json_object_get(delta, "content")); /* may be null */
    if (!piece)
        piece = json_string_value(json_object_get(ch, "text")); /* completions-style servers */
    if (piece && *piece) {
        size_t n = strlen(piece);
        loom_buf_append(&c->text, piece, n);
        if (c->on_piece && c->on_piece(c->pud, piece, n))
            c->stopped = 1;
    }
    const char *fr = json_string_value(json_object_get(ch, "finish_reason"));
    if (fr)
        snprintf(c->finish, sizeof c->finish, "%s", fr);
    take_usage(c, msg);
    json_decref(msg);
    return c->stopped;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    call_t *c = ud;
    size_t len = sz * n;
    int rc = c->is_sse ? loom_sse_feed(&c->sse, p, len, on_event, c) : loom_buf_append(&c->body, p, len);
    return rc ? 0 : len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    call_t *c = ud;
    size_t len = sz * n;
    if (len > 13 && !strncasecmp(p, "content-type:", 13)) {
        const char *v = p + 13;
        while (*v == ' ')
            v++;
        c->is_sse = !strncasecmp(v, "text/event-stream", 17);
    } else if (len > 12 && !strncasecmp(p, "retry-after:", 12)) {
        long s = strtol(p + 12, NULL, 10);
        if (s > 0)
            c->retry_after_ms = s * 1000;
    }
    return len;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t x, curl_off_t y)
{
    (void)a, (void)b, (void)x, (void)y;
    call_t *c = ud;
    return c->cancelled && c->cancelled(c->cud);
}

/* The server's message from an error body ({"error": {"message"}} or
 * {"error": "..."} or text), into out. */
static void server_message(const char *body, size_t len, const json_t *err_obj, char *out, size_t n)
{
    json_error_t je;
    json_t *j = err_obj ? json_incref((json_t *)err_obj) : body && len ? json_loadb(body, len, 0, &je) : NULL;
    json_t *e = err_obj ? j : json_object_get(j, "error");
    const char *m = json_string_value(json_object_get(e, "message"));
    if (!m)
        m = json_string_value(e);
    if (!m)
        m = json_string_value(json_object_get(j, "message"));
    if (m)
        snprintf(out, n, "%s", m);
    else
        snprintf(out, n, "%.*s", (int)(len < 200 ? len : 200), body ? body : "");
    for (char *c = out; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    json_decref(j);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* POST path with body to the endpoint, retrying what may pass. On success
 * c holds the answer (body or streamed text). */
static int post(const loom_endpoint_cfg_t *cfg, const char *path, const char *payload, call_t *c,
                loom_endpoint_info_t *info, loom_err_t *err)
{
    pthread_once(&curl_once, curl_init_once);
    char url[2048], auth[1024];
    size_t bl = strlen(cfg->base_url);
    while (bl && cfg->base_url[bl - 1] == '/')
        bl--;
    snprintf(url, sizeof url, "%.*s%s", (int)bl, cfg->base_url, path);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Accept: application/json, text/event-stream");
    if (cfg->api_key && *cfg->api_key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", cfg->api_key);
        h = curl_slist_append(h, auth);
    }
    uint64_t start = loom_clock_ms();
    int64_t backoff = cfg->backoff_ms > 0 ? cfg->backoff_ms : 200;
    int rc = 0;
    for (int attempt = 0;; attempt++) {
        int64_t left = cfg->timeout_ms - (int64_t)(loom_clock_ms() - start);
        if (left <= 0) {
            rc = loom_err_set(err, LOOM_ETIMEDOUT, "model endpoint %s timed out after %lld ms", url,
                              (long long)cfg->timeout_ms);
            break;
        }
        loom_buf_reset(&c->body);
        loom_buf_reset(&c->text);
        loom_sse_free(&c->sse);
        loom_sse_init(&c->sse, MAX_BODY);
        c->is_sse = 0;
        c->retry_after_ms = 0;
        CURL *cu = curl_easy_init();
        if (!cu) {
            rc = loom_err_set(err, LOOM_ENOMEM, "curl_easy_init failed");
            break;
        }
        curl_easy_setopt(cu, CURLOPT_URL, url);
        curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, (long)left);
        curl_easy_setopt(cu, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(cu, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(cu, CURLOPT_WRITEDATA, c);
        curl_easy_setopt(cu, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(cu, CURLOPT_HEADERDATA, c);
        curl_easy_setopt(cu, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(cu, CURLOPT_XFERINFODATA, c);
        curl_easy_setopt(cu, CURLOPT_NOPROGRESS, 0L);
        CURLcode cc = curl_easy_perform(cu);
        long status = 0;
        curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(cu);
        info->http_status = status;
        info->attempts = attempt + 1;
        char msg[256];
        int retry = 0;
        if (c->stream_error) {
            server_message(NULL, 0, c->stream_error, msg, sizeof msg);
            rc = loom_err_set(err, LOOM_EUNAVAIL, "model endpoint %s: HTTP %ld, then an error in the stream: %s",
                              url, status, msg);
            json_decref(c->stream_error);
            c->stream_error = NULL;
            retry = c->text.len == 0; /* nothing was streamed yet: safe to ask again */
        } else if (c->stopped || cc == CURLE_ABORTED_BY_CALLBACK) {
            rc = loom_err_set(err, LOOM_ECANCELLED, "model endpoint %s: cancelled", url);
            break;
        } else if (cc == CURLE_OPERATION_TIMEDOUT) {
            rc = loom_err_set(err, LOOM_ETIMEDOUT, "model endpoint %s timed out after %lld ms (HTTP %ld)", url,
                              (long long)cfg->timeout_ms, status);
            break;
        } else if (cc != CURLE_OK) {
            rc = loom_err_set(err, LOOM_EUNAVAIL, "model endpoint %s: %s", url, curl_easy_strerror(cc));
            retry = status == 0 || cc == CURLE_GOT_NOTHING || cc == CURLE_RECV_ERROR;
        } else if (status == 429 || status >= 500) {
            server_message(c->body.data, c->body.len, NULL, msg, sizeof msg);
            rc = loom_err_set(err, LOOM_EUNAVAIL, "model endpoint %s answered HTTP %ld: %s", url, status, msg);
            retry = 1;
        } else if (status < 200 || status >= 300) {
            server_message(c->body.data, c->body.len, NULL, msg, sizeof msg);
            rc = loom_err_set(err, LOOM_EINVAL, "model endpoint %s answered HTTP %ld: %s", url, status, msg);
            break;
        } else {
            rc = 0;
            break;
        }
        if (!retry || attempt >= cfg->retries)
            break;
        int64_t wait = c->retry_after_ms > 0 ? c->retry_after_ms : backoff;
        backoff *= 2;
        if ((int64_t)(loom_clock_ms() - start) + wait >= cfg->timeout_ms)
            break; /* no time for another attempt: keep the error */
        for (int64_t waited = 0; waited < wait; waited += 50) {
            if (c->cancelled && c->cancelled(c->cud)) {
                curl_slist_free_all(h);
                return loom_err_set(err, LOOM_ECANCELLED, "model endpoint %s: cancelled", url);
            }
            sleep_ms(wait - waited < 50 ? wait - waited : 50);
        }
        loom_err_clear(err);
    }
    curl_slist_free_all(h);
    return rc;
}

static void call_init(call_t *c, loom_endpoint_cancel_fn cancelled, void *cud)
{
    memset(c, 0, sizeof *c);
    loom_buf_init(&c->body, MAX_BODY);
    loom_buf_init(&c->text, MAX_BODY);
    loom_sse_init(&c->sse, MAX_BODY);
    c->prompt_tokens = c->completion_tokens = -1;
    c->cancelled = cancelled;
    c->cud = cud;
}

static void call_free(call_t *c, loom_endpoint_info_t *info)
{
    info->prompt_tokens = c->prompt_tokens;
    info->completion_tokens = c->completion_tokens;
    snprintf(info->finish_reason, sizeof info->finish_reason, "%s", c->finish);
    loom_buf_free(&c->body);
    loom_buf_free(&c->text);
    loom_sse_free(&c->sse);
    json_decref(c->stream_error);
}

int loom_endpoint_chat(const loom_endpoint_cfg_t *cfg, const json_t *req, loom_endpoint_piece_fn on_piece,
                       void *pud, loom_endpoint_cancel_fn cancelled, void *cud, char **text,
                       loom_endpoint_info_t *info, loom_err_t *err)
{
    *text = NULL;
    memset(info, 0, sizeof *info);
    json_t *body = json_deep_copy(req);
    if (!body)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    if (cfg->model)
        json_object_set_new(body, "model", json_string(cfg->model));
    json_object_set_new(body, "stream", json_true());
    /* Ask for usage in the last chunk (servers that do not know it ignore it). */
    json_object_set_new(body, "stream_options", json_pack("{sb}", "include_usage", 1));
    char *payload = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!payload)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    call_t c;
    call_init(&c, cancelled, cud);
    c.on_piece = on_piece;
    c.pud = pud;
    int rc = post(cfg, "/chat/completions", payload, &c, info, err);
    if (!rc && !c.is_sse) {
        /* A server that ignores stream: true answers with one JSON object. */
        json_error_t je;
        json_t *j = json_loadb(c.body.data ? c.body.data : "", c.body.len, 0, &je);
        json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
        const char *content = json_string_value(json_object_get(json_object_get(ch, "message"), "content"));
        if (!content)
            content = json_string_value(json_object_get(ch, "text"));
        if (!content) {
            rc = loom_err_set(err, LOOM_EPROTO, "model endpoint %s answered without choices[0].message.content",
                              cfg->base_url);
        } else {
            loom_buf_puts(&c.text, content);
            if (on_piece)
                on_piece(pud, content, strlen(content));
            const char *fr = json_string_value(json_object_get(ch, "finish_reason"));
            snprintf(c.finish, sizeof c.finish, "%s", fr ? fr : "");
            take_usage(&c, j);
        }
        json_decref(j);
    }
    if (!rc) {
        *text = c.text.data ? loom_buf_detach(&c.text, NULL) : strdup("");
        if (!*text)
            rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
    }
    free(payload);
    call_free(&c, info);
    return rc;
}

int loom_endpoint_embed(const loom_endpoint_cfg_t *cfg, const json_t *input, loom_endpoint_cancel_fn cancelled,
                        void *cud, json_t **vectors, loom_endpoint_info_t *info, loom_err_t *err)
{
    *vectors = NULL;
    memset(info, 0, sizeof *info);
    json_t *body = json_pack("{sO}", "input", input);
    if (body && cfg->model)
        json_object_set_new(body, "model", json_string(cfg->model));
    char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!payload)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    call_t c;
    call_init(&c, cancelled, cud);
    int rc = post(cfg, "/embeddings", payload, &c, info, err);
    size_t want = json_is_array(input) ? json_array_size(input) : 1;
    if (!rc) {
        json_error_t je;
        json_t *j = json_loadb(c.body.data ? c.body.data : "", c.body.len, 0, &je);
        json_t *data = json_object_get(j, "data"), *out = json_array();
        size_t i;
        json_t *d;
        for (i = 0; out && i < want; i++)
            json_array_append_new(out, json_null());
        json_array_foreach(data, i, d) {
            json_t *idx = json_object_get(d, "index"), *emb = json_object_get(d, "embedding");
            size_t at = json_is_integer(idx) ? (size_t)json_integer_value(idx) : i;
            if (json_is_array(emb) && at < want)
                json_array_set(out, at, emb);
        }
        for (i = 0; out && i < want; i++)
            if (!json_is_array(json_array_get(out, i)))
                break;
        if (!out || i < want) {
            rc = loom_err_set(err, LOOM_EPROTO, "model endpoint %s/embeddings answered %zu of %zu embeddings",
                              cfg->base_url, json_array_size(data), want);
            json_decref(out);
        } else {
            *vectors = out;
        }
        take_usage(&c, j);
        json_decref(j);
    }
    free(payload);
    call_free(&c, info);
    return rc;
}

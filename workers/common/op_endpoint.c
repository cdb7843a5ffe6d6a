/* op_endpoint.c — llm.generate and embed on OpenAI-compatible model
 * endpoints (endpoint.h).
 *
 * loom_ops_add_endpoints() wraps the llm.generate and embed handlers
 * registered before it (the built-in GGUF engine, when linked in): a task
 * whose model resource (loomd's `model_resource`, from the workflow's
 * resources.models) has an `endpoint` goes to that server; every other task
 * to the wrapped handler. A worker without the engine still serves
 * endpoint models.
 *
 * Model resource fields used here:
 *   endpoint        base URL, e.g. http://host:8000/v1           required
 *   model           the server's model name (default: the resource's name)
 *   api_key_secret  name of the secret holding the API key; read from
 *                   the worker's environment (a secret store can replace
 *                   this lookup without changing workflows)
 *   max_concurrency calls in flight to this endpoint from this worker
 *                   (default 4); more wait their turn
 *   retries         extra attempts on 429/5xx/connection errors (default 3)
 *   timeout_ms      per call when the step sets none (default 120000)
 * Step fields: messages | system + prompt, max_tokens, temperature, top_p,
 * stop, seed; format: json → response_format json_object; schema: →
 * response_format json_schema (strict). Tokens stream as Progress events. */
#include "workers/common/ops.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "workers/common/endpoint.h"

#define COMP "endpoint"

typedef struct {
    loom_op_fn fn;
    void *ud;
} inner_t;

static inner_t inner_generate, inner_embed;

/* Per-endpoint admission: at most `max` calls in flight. */
typedef struct gate {
    struct gate *next;
    int busy;
    pthread_cond_t cv;
    char key[];
} gate_t;

static struct {
    pthread_mutex_t mu;
    gate_t *gates;
} G = {.mu = PTHREAD_MUTEX_INITIALIZER};

static gate_t *gate_enter(const char *key, int max, loom_op_ctx_t *ctx)
{
    pthread_mutex_lock(&G.mu);
    gate_t *g = G.gates;
    while (g && strcmp(g->key, key) != 0)
        g = g->next;
    if (!g && (g = calloc(1, sizeof *g + strlen(key) + 1))) {
        pthread_cond_init(&g->cv, NULL);
        strcpy(g->key, key);
        g->next = G.gates;
        G.gates = g;
    }
    while (g && g->busy >= max && !loom_op_cancelled(ctx)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L)
            ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&g->cv, &G.mu, &ts);
    }
    if (g && !loom_op_cancelled(ctx))
        g->busy++;
    else
        g = NULL;
    pthread_mutex_unlock(&G.mu);
    return g;
}

static void gate_leave(gate_t *g)
{
    pthread_mutex_lock(&G.mu);
    g->busy--;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&G.mu);
}

static int cancelled(void *ud)
{
    return loom_op_cancelled(ud);
}

typedef struct {
    loom_op_ctx_t *ctx;
    int pieces;
} stream_t;

static int piece(void *ud, const char *text, size_t n)
{
    stream_t *s = ud;
    s->pieces++;
    loom_op_progress(s->ctx, text, n);
    return loom_op_cancelled(s->ctx);
}

static int64_t int_field(const json_t *o, const char *k, int64_t dflt)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? json_integer_value(v) : dflt;
}

/* The endpoint of the task's model, or 0 when the task is not for one. */
static int endpoint_of(const json_t *in, loom_endpoint_cfg_t *cfg, int *max, loom_op_ctx_t *ctx,
                       loom_op_output_t *out, loom_err_t *err)
{
    const json_t *mr = json_object_get(in, "model_resource");
    const char *url = json_string_value(json_object_get(mr, "endpoint"));
    if (!url)
        return 0;
    memset(cfg, 0, sizeof *cfg);
    cfg->base_url = url;
    cfg->model = json_string_value(json_object_get(mr, "model"));
    if (!cfg->model)
        cfg->model = json_string_value(json_object_get(mr, "name"));
    const char *secret = json_string_value(json_object_get(mr, "api_key_secret"));
    if (secret) {
        cfg->api_key = getenv(secret);
        if (!cfg->api_key) {
            out->permanent = 1;
            loom_err_set(err, LOOM_ENOTFOUND, "secret '%s' (api_key_secret of model '%s') is not set on this worker",
                         secret, json_string_value(json_object_get(mr, "name")));
            loom_err_hint(err, "start the worker with %s in its environment", secret);
            return LOOM_ENOTFOUND;
        }
    }
    int64_t left = loom_op_remaining_ms(ctx);
    cfg->timeout_ms = left != INT64_MAX ? left : int_field(mr, "timeout_ms", 120000);
    cfg->retries = (int)int_field(mr, "retries", 3);
    cfg->backoff_ms = 200;
    *max = (int)int_field(mr, "max_concurrency", 4);
    if (*max < 1)
        *max = 1;
    return 1;
}

static void copy_field(json_t *dst, const json_t *in, const char *k, const char *as)
{
    json_t *v = json_object_get(in, k);
    if (v && !json_is_null(v))
        json_object_set(dst, as ? as : k, v);
}

static json_t *chat_request(const json_t *in)
{
    json_t *req = json_object(), *msgs = json_object_get(in, "messages");
    if (!req)
        return NULL;
    if (json_is_array(msgs)) {
        json_object_set(req, "messages", msgs);
    } else {
        json_t *m = json_array();
        const char *sys = json_string_value(json_object_get(in, "system"));
        json_t *prompt = json_object_get(in, "prompt");
        if (sys)
            json_array_append_new(m, json_pack("{ssss}", "role", "system", "content", sys));
        json_array_append_new(m, json_pack("{sssO}", "role", "user", "content",
                                           json_is_string(prompt) ? prompt : json_string("")));
        json_object_set_new(req, "messages", m);
    }
    copy_field(req, in, "max_tokens", NULL);
    copy_field(req, in, "temperature", NULL);
    copy_field(req, in, "top_p", NULL);
    copy_field(req, in, "seed", NULL);
    copy_field(req, in, "stop", NULL);
    json_t *schema = json_object_get(in, "schema");
    const char *format = json_string_value(json_object_get(in, "format"));
    if (json_is_object(schema))
        json_object_set_new(req, "response_format",
                            json_pack("{sss{sssOsb}}", "type", "json_schema", "json_schema", "name", "output",
                                      "schema", schema, "strict", 1));
    else if (format && !strcmp(format, "json"))
        json_object_set_new(req, "response_format", json_pack("{ss}", "type", "json_object"));
    return req;
}

static int op_generate(void *ud, loom_op_ctx_t *ctx, const json_t *in, loom_op_output_t *out, loom_err_t *err)
{
    loom_endpoint_cfg_t cfg;
    int max = 0, rc = endpoint_of(in, &cfg, &max, ctx, out, err);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        if (inner_generate.fn)
            return inner_generate.fn(inner_generate.ud, ctx, in, out, err);
        out->permanent = 1;
        return loom_err_set(err, LOOM_EINVAL, "llm.generate: this worker has no built-in engine and the model has no endpoint");
    }
    (void)ud;
    json_t *req = chat_request(in);
    if (!req)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    char key[1024];
    snprintf(key, sizeof key, "%s|%s", cfg.base_url, cfg.model ? cfg.model : "");
    gate_t *g = gate_enter(key, max, ctx);
    if (!g) {
        json_decref(req);
        return loom_err_set(err, LOOM_ECANCELLED, "cancelled while waiting for a free slot on %s", cfg.base_url);
    }
    char *text = NULL;
    loom_endpoint_info_t info;
    stream_t st = {ctx, 0};
    rc = loom_endpoint_chat(&cfg, req, piece, &st, cancelled, ctx, &text, &info, err);
    gate_leave(g);
    json_decref(req);
    out->permanent = rc == LOOM_EINVAL;
    if (!rc) {
        loom_log(LOOM_LOG_INFO, COMP,
                 "msg=\"generated\" task=%s endpoint=%s model=%s prompt_tokens=%d tokens=%d finish=%s attempts=%d "
                 "streamed=%d",
                 loom_op_task_id(ctx), cfg.base_url, cfg.model ? cfg.model : "", info.prompt_tokens,
                 info.completion_tokens, info.finish_reason, info.attempts, st.pieces);
        out->json = json_string(text);
        if (!out->json)
            out->json = json_string("<answer that is not UTF-8>");
    }
    free(text);
    return rc;
}

static int op_embed(void *ud, loom_op_ctx_t *ctx, const json_t *in, loom_op_output_t *out, loom_err_t *err)
{
    loom_endpoint_cfg_t cfg;
    int max = 0, rc = endpoint_of(in, &cfg, &max, ctx, out, err);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        if (inner_embed.fn)
            return inner_embed.fn(inner_embed.ud, ctx, in, out, err);
        out->permanent = 1;
        return loom_err_set(err, LOOM_EINVAL, "embed: this worker has no built-in engine and the model has no endpoint");
    }
    (void)ud;
    json_t *input = json_object_get(in, "input");
    if (!json_is_string(input) && !json_is_array(input)) {
        out->permanent = 1;
        loom_err_set(err, LOOM_EINVAL, "embed: input must be a string or a list of strings");
        loom_err_field(err, "input");
        return LOOM_EINVAL;
    }
    char key[1024];
    snprintf(key, sizeof key, "%s|%s", cfg.base_url, cfg.model ? cfg.model : "");
    gate_t *g = gate_enter(key, max, ctx);
    if (!g)
        return loom_err_set(err, LOOM_ECANCELLED, "cancelled while waiting for a free slot on %s", cfg.base_url);
    json_t *vecs = NULL;
    loom_endpoint_info_t info;
    rc = loom_endpoint_embed(&cfg, input, cancelled, ctx, &vecs, &info, err);
    gate_leave(g);
    out->permanent = rc == LOOM_EINVAL;
    if (!rc) {
        out->json = json_is_string(input) ? json_incref(json_array_get(vecs, 0)) : json_incref(vecs);
        json_decref(vecs);
    }
    return rc;
}

int loom_ops_add_endpoints(loom_ops_t *ops)
{
    int flags = 0;
    if (loom_ops_find(ops, "llm.generate", &inner_generate.fn, &inner_generate.ud, &flags) == 0 && flags)
        loom_log(LOOM_LOG_WARN, COMP, "msg=\"llm.generate registered with flags; endpoint calls ignore them\" flags=%d", flags);
    loom_ops_find(ops, "embed", &inner_embed.fn, &inner_embed.ud, &flags);
    int rc = loom_ops_add(ops, "llm.generate", op_generate, NULL, 0);
    if (!rc)
        rc = loom_ops_add(ops, "embed", op_embed, NULL, 0);
    return rc;
}

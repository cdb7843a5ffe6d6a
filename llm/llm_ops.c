/* llm_ops.c — the LLM worker ops: llm.generate, llm.prefill, llm.decode,
 * embed and vector.search, on the backend a worker picks from the table
 * (llm_backend.h): loom-worker-cpu the CPU one, loom-worker-gpu CUDA.
 *
 * Models are loaded on first use and kept (mapped) for the worker's life;
 * so are vector indexes. A task names its model by
 *   model_path: FILE.gguf                          explicit path, or
 *   model: NAME  resolved through the worker's LOOM_MODELS="NAME=PATH,..."
 *                environment, the workflow's resources.models.NAME.path
 *                (loomd forwards it as model_resource), or taken as a path
 *                when it contains '/' or ends in .gguf.
 * Indexes likewise (index_path / index / LOOM_INDEXES / index_resource).
 * Relative paths are relative to the workflow's directory when loomd sends
 * workflow_dir, else to the worker's working directory. One compute lock serialises
 * model work: a forward already uses every core through the thread pool. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/log.h"
#include "common/map.h"
#include "common/sha.h"
#include "workers/common/backend.h"
#include "llm/kvcache.h"
#include "workers/common/vindex.h"
#include "llm/llm_grammar.h"
#include "llm/llm_kvref.h"
#include "llm/llm_prefix.h"
#include "protocol/prefix_key.h"
#include "llm/llm_ops.h"
#include "workers/common/objstore.h"

static struct {
    pthread_mutex_t mu;       /* the maps */
    pthread_mutex_t compute;  /* the pool */
    loom_map_t *models;       /* path -> loom_llm_model_t */
    loom_map_t *indexes;      /* path -> loom_vindex_t */
    const loom_llm_factory_t *f;
    loom_llm_prefix_cache_t *prefix; /* KV prefixes of llm.generate calls (all models) */
} G = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, NULL, NULL, NULL, NULL};

/* The loaded models' names, kept apart from G.mu: heartbeats read them from
 * the worker's I/O thread, which must not wait while G.mu is held for a
 * model load (seconds for a large model: loomd would declare the worker
 * lost). Written with G.mu held, after each load. */
static pthread_mutex_t names_mu = PTHREAD_MUTEX_INITIALIZER;
static char names_str[2048];

static void refresh_names(void) {
    char buf[sizeof names_str];
    size_t it = 0, used = 0;
    const char *k;
    void *v;
    buf[0] = 0;
    while (G.models && loom_map_next(G.models, &it, &k, &v)) {
        const loom_llm_model_t *m = v;
        int w = snprintf(buf + used, sizeof buf - used, "%s%s", used ? "," : "", m->name);
        if (w < 0 || (size_t)w >= sizeof buf - used) { buf[used] = 0; break; }
        used += (size_t)w;
    }
    pthread_mutex_lock(&names_mu);
    memcpy(names_str, buf, sizeof buf);
    pthread_mutex_unlock(&names_mu);
}

/* The prompt prefixes the prefix cache holds (heartbeats). */
static size_t held_prefixes(uint64_t *keys, uint32_t *tokens, size_t max) {
    return G.prefix ? loom_llm_prefix_cache_keys(G.prefix, keys, tokens, max) : 0;
}

void loom_llm_loaded_models(char *out, size_t n) {
    if (!out || !n) return;
    pthread_mutex_lock(&names_mu);
    size_t l = strnlen(names_str, sizeof names_str);
    if (l >= n) l = n - 1; /* truncated: heartbeats carry what fits */
    memcpy(out, names_str, l);
    out[l] = 0;
    pthread_mutex_unlock(&names_mu);
}

static void free_model(void *p) { loom_llm_model_t *m = p; loom_llm_model_destroy(&m); }
static void free_index(void *p) { loom_vindex_t *v = p; loom_vindex_destroy(&v); }

/* NAME=PATH,NAME=PATH lookup in an environment variable. */
static int env_lookup(const char *var, const char *name, char *out, size_t n) {
    const char *s = getenv(var);
    size_t nl = strlen(name);
    while (s && *s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (len > nl && !strncmp(s, name, nl) && s[nl] == '=') {
            snprintf(out, n, "%.*s", (int)(len - nl - 1), s + nl + 1);
            return 1;
        }
        s = end ? end + 1 : NULL;
    }
    return 0;
}

/* Relative paths in a workflow are relative to its directory when loomd
 * says where that is (workflow_dir), else to the worker's. */
static void set_path(const json_t *in, const char *p, char *out, size_t n) {
    const char *wd = json_string_value(json_object_get(in, "workflow_dir"));
    if (p[0] != '/' && wd && *wd) snprintf(out, n, "%s/%s", wd, p);
    else snprintf(out, n, "%s", p);
}

/* Resolves a model or index: an explicit path, then the worker's own
 * name -> file map (LOOM_MODELS / LOOM_INDEXES: the operator's word wins),
 * then the workflow's resources.<kind>.<name>.path as loomd forwards it
 * (model_resource / index_resource), then the name itself when it looks
 * like a path. */
static int resolve(const json_t *in, const char *kind, const char *pathkey, const char *namekey, const char *envvar,
                   const char *ext, char *out, size_t n, loom_err_t *e) {
    const char *p = json_string_value(json_object_get(in, pathkey));
    if (p) { set_path(in, p, out, n); return 0; }
    const char *name = json_string_value(json_object_get(in, namekey));
    if (!name) {
        loom_err_set(e, LOOM_EINVAL, "task input needs \"%s\" (a name) or \"%s\"", namekey, pathkey);
        loom_err_field(e, "%s", namekey);
        return LOOM_EINVAL;
    }
    if (env_lookup(envvar, name, out, n)) return 0;
    const char *fwd = !strcmp(kind, "models") ? "model_resource" : "index_resource";
    const char *rp = json_string_value(json_object_get(json_object_get(in, fwd), "path"));
    if (!rp) rp = json_string_value(json_object_get(json_object_get(json_object_get(json_object_get(in, "resources"), kind), name), "path"));
    if (rp) { set_path(in, rp, out, n); return 0; }
    size_t l = strlen(name), el = strlen(ext);
    if (strchr(name, '/') || (l > el && !strcmp(name + l - el, ext))) { set_path(in, name, out, n); return 0; }
    loom_err_set(e, LOOM_ENOTFOUND, "unknown %s \"%s\"", !strcmp(kind, "models") ? "model" : "index", name);
    loom_err_field(e, "%s", namekey);
    loom_err_hint(e, "declare it with a path under resources.%s, give %s, or start the worker with %s=%s=/path/to/file%s",
                  kind, pathkey, envvar, name, ext);
    return LOOM_ENOTFOUND;
}

static int get_model(const json_t *in, loom_llm_model_t **out, loom_err_t *e) {
    char path[4096];
    int rc = resolve(in, "models", "model_path", "model", "LOOM_MODELS", ".gguf", path, sizeof path, e);
    if (rc) return rc;
    pthread_mutex_lock(&G.mu);
    loom_llm_model_t *m = loom_map_get(G.models, path);
    if (!m) {
        rc = loom_llm_model_load_resident(path, &m, e);
        if (!rc && (rc = loom_map_put(G.models, path, m))) { loom_llm_model_destroy(&m); loom_err_set(e, rc, "out of memory"); }
        if (!rc) refresh_names();
        if (!rc) LOOM_INFO("llm", "msg=\"model loaded\" path=%s name=\"%s\" weights=%s layers=%d", path, m->name,
                           loom_ggml_type_name(m->wtype), m->n_layers);
    }
    pthread_mutex_unlock(&G.mu);
    *out = m;
    return rc;
}

static int get_index(const json_t *in, loom_vindex_t **out, loom_err_t *e) {
    char path[4096];
    int rc = resolve(in, "indexes", "index_path", "index", "LOOM_INDEXES", ".index", path, sizeof path, e);
    if (rc) return rc;
    pthread_mutex_lock(&G.mu);
    loom_vindex_t *v = loom_map_get(G.indexes, path);
    if (!v) {
        rc = loom_vindex_open(path, &v, e);
        if (!rc && (rc = loom_map_put(G.indexes, path, v))) { loom_vindex_destroy(&v); loom_err_set(e, rc, "out of memory"); }
    }
    pthread_mutex_unlock(&G.mu);
    *out = v;
    return rc;
}

static int num(const json_t *in, const char *k, double dflt, double lo, double hi, double *out, loom_err_t *e) {
    json_t *v = json_object_get(in, k);
    if (!v || json_is_null(v)) { *out = dflt; return 0; }
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi) {
        loom_err_set(e, LOOM_EINVAL, "\"%s\" must be a number in [%g, %g]", k, lo, hi);
        loom_err_field(e, "%s", k);
        return LOOM_EINVAL;
    }
    *out = json_number_value(v);
    return 0;
}

typedef struct gen_in {
    loom_llm_gen_params_t p;
    const char *stop[16];
    loom_llm_grammar_t *grammar; /* format: json / schema: (caller destroys) */
} gen_in_t;

/* format: json or schema: constrain decoding to JSON (of the schema). */
static int constrain(const json_t *in, const loom_llm_model_t *m, gen_in_t *g, loom_err_t *e) {
    const json_t *schema = json_object_get(in, "schema");
    const char *format = json_string_value(json_object_get(in, "format"));
    if (!json_is_object(schema) && !(format && !strcmp(format, "json"))) return 0;
    int rc = loom_llm_grammar_new(m, json_is_object(schema) ? schema : NULL, &g->grammar, e);
    if (rc) { loom_err_field(e, "schema"); return rc; }
    g->p.constrain = loom_llm_grammar_sample;
    g->p.constrain_ud = g->grammar;
    return 0;
}

static int parse_gen(const json_t *in, gen_in_t *g, loom_err_t *e) {
    double mt, t, k, tp, seed;
    memset(g, 0, sizeof *g);
    int rc;
    if ((rc = num(in, "max_tokens", 128, 1, 1 << 20, &mt, e)) || (rc = num(in, "temperature", 0, 0, 100, &t, e)) ||
        (rc = num(in, "top_k", 0, 0, 1 << 20, &k, e)) || (rc = num(in, "top_p", 1, 0, 1, &tp, e)) ||
        (rc = num(in, "seed", 0, 0, 9007199254740991.0, &seed, e)))
        return rc;
    g->p.max_tokens = (int)mt;
    g->p.sampling = (loom_llm_sampling_t){(float)t, (int)k, (float)tp, (uint64_t)seed};
    json_t *st = json_object_get(in, "stop");
    if (json_is_string(st)) g->stop[g->p.n_stop++] = json_string_value(st);
    else if (json_is_array(st)) {
        size_t i;
        json_t *v;
        json_array_foreach(st, i, v) {
            if (!json_is_string(v) || g->p.n_stop == 16) {
                loom_err_set(e, LOOM_EINVAL, "\"stop\" must be up to 16 strings");
                loom_err_field(e, "stop[%zu]", i);
                return LOOM_EINVAL;
            }
            g->stop[g->p.n_stop++] = json_string_value(v);
        }
    }
    g->p.stop = g->stop;
    return 0;
}

/* "messages": [{role, content}, ...] in the model's chat format. */
static int format_messages(const loom_llm_model_t *m, const json_t *msgs, loom_buf_t *b, loom_err_t *e) {
    size_t n = json_array_size(msgs), i;
    const char **roles = calloc(n + 1, sizeof *roles), **contents = calloc(n + 1, sizeof *contents);
    int rc = 0;
    json_t *v;
    if (!roles || !contents) rc = loom_err_set(e, LOOM_ENOMEM, "out of memory");
    json_array_foreach(msgs, i, v) {
        if (rc) break;
        roles[i] = json_string_value(json_object_get(v, "role"));
        contents[i] = json_string_value(json_object_get(v, "content"));
        if (!roles[i] || !contents[i]) {
            rc = loom_err_set(e, LOOM_EINVAL, "messages[%zu] needs string \"role\" and \"content\"", i);
            loom_err_field(e, "messages[%zu]", i);
        }
    }
    if (!rc) rc = loom_llm_chat_format_msgs(m, roles, contents, n, b);
    free(roles);
    free(contents);
    return rc;
}

/* Prompt ids: chat-formatted messages, or system + prompt, unless raw. */
static int prompt_ids(const loom_llm_model_t *m, const json_t *in, int32_t **ids, size_t *n, loom_err_t *e) {
    const char *prompt = json_string_value(json_object_get(in, "prompt"));
    json_t *msgs = json_object_get(in, "messages");
    if (!prompt && !(json_is_array(msgs) && json_array_size(msgs) > 0)) {
        loom_err_set(e, LOOM_EINVAL, "task input needs \"prompt\" (a string) or \"messages\"");
        loom_err_field(e, "prompt");
        return LOOM_EINVAL;
    }
    loom_buf_t b = LOOM_BUF_INIT;
    if (!prompt) {
        int rc = format_messages(m, msgs, &b, e);
        if (rc) { loom_buf_free(&b); return rc; }
    } else if (json_is_true(json_object_get(in, "raw"))) loom_buf_puts(&b, prompt);
    else loom_llm_chat_format(m, json_string_value(json_object_get(in, "system")), prompt, &b);
    int rc = loom_llm_tokenize(m, b.data ? b.data : "", ids, n, e);
    LOOM_DEBUG("llm", "msg=\"prompt\" tokens=%zu text=%.*s", *n, (int)(b.len > 2000 ? 2000 : b.len), b.data ? b.data : "");
    loom_buf_free(&b);
    if (!rc && *n >= (size_t)m->n_ctx) {
        loom_err_set(e, LOOM_ETOOBIG, "prompt of %zu tokens does not fit the context of model %s (%d tokens)", *n,
                     m->name, m->n_ctx);
        loom_err_field(e, "prompt");
        free(*ids);
        *ids = NULL;
        return LOOM_ETOOBIG;
    }
    return rc;
}

static int stream(void *ctx, const char *piece, size_t len, int32_t tok) {
    (void)tok;
    loom_op_ctx_t *c = ctx;
    loom_op_progress(c, piece, len);
    return loom_op_cancelled(c);
}

static int ctx_len(const loom_llm_model_t *m, size_t n, int max_tokens) {
    size_t want = n + (size_t)max_tokens + 1;
    return want < (size_t)m->n_ctx ? (int)want : m->n_ctx;
}

static int finish_text(loom_buf_t *text, const loom_llm_gen_result_t *r, const loom_llm_model_t *m,
                       loom_op_ctx_t *ctx, loom_op_output_t *out, loom_err_t *e) {
    loom_llm_utf8_sanitize(text);
    LOOM_INFO("llm", "msg=\"generated\" task=%s model=\"%s\" prompt_tokens=%d reused_tokens=%d tokens=%d finish=%s prefill_s=%.3f decode_s=%.3f",
              loom_op_task_id(ctx), m->name, r->n_prompt, r->n_reused, r->n_generated, r->finish_reason, r->prefill_s,
              r->decode_s);
    if (r->n_reused > 0)
        loom_op_note(ctx, "reused the KV of %d of %d prompt tokens from this worker's prefix cache", r->n_reused,
                     r->n_prompt);
    if (!strcmp(r->finish_reason, "cancelled")) return loom_err_set(e, LOOM_ECANCELLED, "cancelled");
    out->tokens_in = r->n_prompt > 0 ? (uint64_t)r->n_prompt : 0;
    out->tokens_out = r->n_generated > 0 ? (uint64_t)r->n_generated : 0;
    out->json = json_stringn(text->data ? text->data : "", text->len);
    return out->json ? 0 : loom_err_set(e, LOOM_ENOMEM, "out of memory");
}

/* A constrained output that is not a complete JSON value (max_tokens too
 * small for the schema) fails the task: the step never gets broken JSON. */
static int check_json(const gen_in_t *g, loom_op_output_t *out, loom_err_t *e) {
    const char *why = g->grammar ? loom_llm_grammar_failure(g->grammar) : NULL;
    if (!why) return 0;
    out->permanent = 1;
    loom_err_set(e, LOOM_EINVAL, "format: json: %s (max_tokens %d)", why, g->p.max_tokens);
    loom_err_field(e, "max_tokens");
    loom_err_hint(e, "raise max_tokens, or lower the schema's maxLength/maxItems");
    return LOOM_EINVAL;
}

static int op_generate(void *ud, loom_op_ctx_t *ctx, const json_t *in, loom_op_output_t *out, loom_err_t *e) {
    (void)ud;
    loom_llm_model_t *m;
    gen_in_t g = {0}; /* (g.grammar is destroyed on every early failure) */
    int32_t *ids = NULL;
    size_t n;
    int rc;
    if ((rc = get_model(in, &m, e)) || (rc = parse_gen(in, &g, e)) || (rc = constrain(in, m, &g, e)) ||
        (rc = prompt_ids(m, in, &ids, &n, e))) {
        loom_llm_grammar_destroy(&g.grammar);
        out->permanent = rc != LOOM_ENOMEM;
        return rc;
    }
    g.p.on_token = stream;
    g.p.cb_ctx = ctx;
    g.p.prefix = G.prefix;
    loom_buf_t text = LOOM_BUF_INIT;
    loom_llm_gen_result_t r = {0};
    pthread_mutex_lock(&G.compute);
    void *h = NULL;
    loom_llm_backend_t b;
    rc = G.f->create(G.f->ud, m, ctx_len(m, n, g.p.max_tokens), &b, &h, e);
    if (!rc) {
        rc = loom_llm_generate(m, &b, ids, n, &g.p, &text, &r, e);
        G.f->destroy(G.f->ud, h);
    }
    if (!rc && G.prefix) { /* name what the cache now holds, for loomd's placement (heartbeats) */
        uint64_t keys[LOOM_PREFIX_MAX_KEYS];
        size_t tl = 0;
        char *answer = strndup(text.data ? text.data : "", text.len);
        size_t nk = answer ? loom_prefix_keys(in, answer, keys, LOOM_PREFIX_MAX_KEYS, &tl) : 0;
        if (nk) loom_llm_prefix_tag(G.prefix, m, keys, nk, tl);
        LOOM_DEBUG("llm", "msg=\"prefix named\" task=%s keys=%zu text_bytes=%zu entries=%zu", loom_op_task_id(ctx), nk,
                   tl, loom_llm_prefix_cache_entries(G.prefix));
        free(answer);
    }
    pthread_mutex_unlock(&G.compute);
    if (!rc) rc = finish_text(&text, &r, m, ctx, out, e);
    if (!rc && (rc = check_json(&g, out, e))) { json_decref(out->json); out->json = NULL; }
    loom_llm_grammar_destroy(&g.grammar);
    free(r.tokens);
    free(ids);
    loom_buf_free(&text);
    return rc;
}

/* The prefill's output before the cache itself is known. */
static json_t *prefill_json(const loom_llm_model_t *m, size_t n, double secs) {
    char hex[65];
    loom_hex(m->hash, 32, hex);
    return json_pack("{s:s, s:i, s:s, s:f, s:s}", "format", "loom-kv-v1", "prompt_tokens", (int)n, "model_hash", hex,
                     "prefill_s", secs, "backend", G.f->name);
}

static json_t *ids_json(const int32_t *ids, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) json_array_append_new(a, json_integer(ids[i]));
    return a;
}

/* A fetch of a stream waits while its producer computes: stop when the
 * task is cancelled or past its deadline. */
static int fetch_cancelled(void *ud, uint64_t got, uint64_t size) {
    (void)got; (void)size;
    return loom_op_cancelled(ud);
}

/* kv_stream: publishes the KV stream's reference before computing (and
 * announces it, so loomd can start the decode now), then writes each
 * layer's rows of each batch into it as the backend computes them
 * (llm_kvref.h). 1 when the object store cannot take the stream (the
 * caller prefills the usual way); else 0 or the error. */
static int prefill_streamed(loom_op_ctx_t *ctx, loom_llm_model_t *m, const int32_t *ids, size_t n, int dtype,
                            loom_op_output_t *out, loom_err_t *e) {
    pthread_mutex_lock(&G.compute);
    void *h = NULL;
    loom_llm_backend_t b;
    int rc = G.f->create(G.f->ud, m, ctx_len(m, n, 1), &b, &h, e);
    if (rc) {
        pthread_mutex_unlock(&G.compute);
        return rc;
    }
    loom_llm_kv_stream_t *s = NULL;
    loom_llm_kv_sink_t sink;
    json_t *ref = NULL, *o = prefill_json(m, n, 0);
    loom_err_t se = {0};
    char run[40];
    loom_op_run_id(ctx, run, sizeof run);
    if (!o || loom_llm_kv_stream_open(m, ids, n, dtype, LOOM_LLM_CPU_BATCH, loom_op_worker_id(ctx), run, &s, &sink, &ref,
                                      &se)) {
        G.f->destroy(G.f->ud, h);
        pthread_mutex_unlock(&G.compute);
        LOOM_WARN("llm", "msg=\"cannot stream the KV cache; publishing it whole\" task=%s error=\"%s\"", loom_op_task_id(ctx),
                  o ? se.msg : "out of memory");
        json_decref(o);
        return 1;
    }
    json_object_set_new(o, "kv", ref);
    json_object_set_new(o, "tokens", ids_json(ids, n));
    json_object_set_new(o, "kv_dtype", json_string(loom_kvcache_dtype_name(dtype)));
    json_object_set_new(o, "kv_layout", json_string(LOOM_KV_STREAM_LAYOUT));
    loom_op_announce(ctx, o);
    double secs = 0;
    rc = loom_llm_prefill_stream(m, &b, ids, n, LOOM_LLM_CPU_BATCH, &sink, &secs, e);
    G.f->destroy(G.f->ud, h);
    pthread_mutex_unlock(&G.compute);
    int crc = loom_llm_kv_stream_close(s, !rc, rc ? NULL : e);
    if (!rc) rc = crc;
    LOOM_INFO("llm", "msg=\"prefilled\" task=%s model=\"%s\" prompt_tokens=%zu prefill_s=%.3f streamed=%s", loom_op_task_id(ctx),
              m->name, n, secs, rc ? "abandoned" : "yes");
    if (rc) {
        json_decref(o);
        return rc;
    }
    json_object_set_new(o, "prefill_s", json_real(secs));
    out->json = o;
    return 0;
}

static int op_prefill(void *ud, loom_op_ctx_t *ctx, const json_t *in, loom_op_output_t *out, loom_err_t *e) {
    (void)ud;
    loom_llm_model_t *m;
    int32_t *ids = NULL;
    size_t n;
    int rc;
    if ((rc = get_model(in, &m, e)) || (rc = prompt_ids(m, in, &ids, &n, e))) { out->permanent = 1; return rc; }
    const json_t *stream = json_object_get(in, "kv_stream");
    if (stream && !json_is_boolean(stream)) {
        free(ids);
        out->permanent = 1;
        loom_err_set(e, LOOM_EINVAL, "\"kv_stream\" must be true or false");
        loom_err_field(e, "kv_stream");
        return LOOM_EINVAL;
    }
    const char *dtn = json_string_value(json_object_get(in, "kv_dtype"));
    int sdt = loom_kvcache_dtype_from_name(dtn ? dtn : "f32");
    if (json_is_true(stream) && sdt >= 0 && !json_object_get(in, "kv_path") && !json_object_get(in, "kv_transfer") &&
        (rc = prefill_streamed(ctx, m, ids, n, sdt, out, e)) != 1) {
        free(ids);
        return rc;
    }
    loom_kvcache_t *kv = NULL;
    double secs = 0;
    pthread_mutex_lock(&G.compute);
    void *h = NULL;
    loom_llm_backend_t b;
    rc = G.f->create(G.f->ud, m, ctx_len(m, n, 1), &b, &h, e);
    if (!rc) {
        rc = loom_llm_prefill(m, &b, ids, n, &kv, &secs, e);
        G.f->destroy(G.f->ud, h);
    }
    pthread_mutex_unlock(&G.compute);
    if (rc) { free(ids); return rc; }
    json_t *o = prefill_json(m, n, secs);
    const char *kv_path = json_string_value(json_object_get(in, "kv_path"));
    const char *transfer = json_string_value(json_object_get(in, "kv_transfer"));
    const char *dtname = json_string_value(json_object_get(in, "kv_dtype"));
    int dtype = loom_kvcache_dtype_from_name(dtname ? dtname : "f32");
    if (dtype < 0 || (transfer && strcmp(transfer, "reference") && strcmp(transfer, "inline"))) {
        rc = loom_err_set(e, LOOM_EINVAL, dtype < 0 ? "\"kv_dtype\" must be \"f32\", \"f16\" or \"q8_0\""
                                                    : "\"kv_transfer\" must be \"reference\" or \"inline\"");
        loom_err_field(e, dtype < 0 ? "kv_dtype" : "kv_transfer");
        out->permanent = 1;
    } else if (kv_path) {
        rc = loom_kvcache_save(kv, kv_path, e);
        json_object_set_new(o, "kv_path", json_string(kv_path));
    } else if (!transfer || !strcmp(transfer, "reference")) {
        /* By reference (the default): the bytes stay here and the decode
         * worker fetches them; the prompt's ids ride along so it can
         * re-run the prefill if the transfer fails. */
        json_t *ref = NULL, *toks = NULL;
        loom_err_t pe = {0};
        char run[40];
        loom_op_run_id(ctx, run, sizeof run);
        if (loom_llm_kv_publish(kv, dtype, loom_op_worker_id(ctx), run, &ref, &pe)) {
            /* No object store here (e.g. no /dev/shm): inline, as before. */
            LOOM_WARN("llm", "msg=\"cannot keep the KV cache here; sending it inline\" task=%s error=\"%s\"",
                      loom_op_task_id(ctx), pe.msg);
            loom_op_note(ctx, "KV cache sent inline through loomd: %s", pe.msg);
            transfer = "inline";
        } else {
            toks = ids_json(ids, n);
            json_object_set_new(o, "kv", ref);
            json_object_set_new(o, "tokens", toks);
            json_object_set_new(o, "kv_dtype", json_string(loom_kvcache_dtype_name(dtype)));
            json_object_set_new(o, "kv_layout", json_string(LOOM_KV_LAYOUT));
        }
    }
    if (!rc && !kv_path && transfer && !strcmp(transfer, "inline")) {
        loom_buf_t bin = LOOM_BUF_INIT;
        rc = loom_kvcache_serialize(kv, &bin, e);
        char *b64 = rc ? NULL : malloc(4 * ((bin.len + 2) / 3) + 1);
        if (!rc && !b64) rc = loom_err_set(e, LOOM_ENOMEM, "out of memory encoding the KV cache");
        if (!rc) {
            EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)bin.data, (int)bin.len);
            json_object_set_new(o, "kv", json_string(b64));
        }
        free(b64);
        loom_buf_free(&bin);
    }
    loom_kvcache_destroy(&kv);
    free(ids);
    LOOM_INFO("llm", "msg=\"prefilled\" task=%s model=\"%s\" prompt_tokens=%zu prefill_s=%.3f", loom_op_task_id(ctx),
              m->name, n, secs);
    if (rc) { json_decref(o); return rc; }
    out->json = o;
    return 0;
}

/* The KV cache of a decode task: a file, inline base64, or a reference to
 * fetch. For a reference *kv stays NULL and *ref / *pre are set (borrowed
 * from in): the caller fetches, and falls back on pre's "tokens". */
static int kv_from_input(const json_t *in, loom_kvcache_t **kv, const json_t **ref, const json_t **pre_out,
                         loom_err_t *e) {
    *ref = *pre_out = NULL;
    const char *p = json_string_value(json_object_get(in, "kv_path"));
    if (p) return loom_kvcache_load(p, kv, e);
    json_t *kvj = json_object_get(in, "kv");
    json_t *pre = json_object_get(in, "prefill"); /* the workflow names the prefill step */
    if (!kvj && json_is_object(pre)) kvj = pre;
    if (!kvj && json_is_string(pre)) {
        loom_err_set(e, LOOM_EINVAL, "llm.decode got the step name \"%s\" instead of its KV cache", json_string_value(pre));
        loom_err_field(e, "prefill");
        loom_err_hint(e, "loomd must pass the prefill step's output (an object with \"kv\" or \"kv_path\")");
        return LOOM_EINVAL;
    }
    if (json_is_object(kvj) && !loom_objref_is(kvj)) { /* the whole llm.prefill output */
        p = json_string_value(json_object_get(kvj, "kv_path"));
        if (p) return loom_kvcache_load(p, kv, e);
        *pre_out = kvj;
        kvj = json_object_get(kvj, "kv");
    }
    if (loom_objref_is(kvj)) {
        *ref = kvj;
        if (!*pre_out) *pre_out = in;
        return 0;
    }
    const char *b64 = json_string_value(kvj);
    if (!b64) {
        loom_err_set(e, LOOM_EINVAL, "task input needs \"kv\" (llm.prefill's output) or \"kv_path\"");
        loom_err_field(e, "kv");
        return LOOM_EINVAL;
    }
    size_t l = strlen(b64);
    if (l % 4 || l > (size_t)1 << 34) return loom_err_set(e, LOOM_EPARSE, "\"kv\" is not valid base64");
    unsigned char *bin = malloc(l / 4 * 3 + 1);
    if (!bin) return loom_err_set(e, LOOM_ENOMEM, "out of memory decoding the KV cache");
    int n = EVP_DecodeBlock(bin, (const unsigned char *)b64, (int)l);
    if (n < 0) { free(bin); return loom_err_set(e, LOOM_EPARSE, "\"kv\" is not valid base64"); }
    if (l >= 1 && b64[l - 1] == '=') n--;
    if (l >= 2 && b64[l - 2] == '=') n--;
    int rc = loom_kvcache_parse(bin, (size_t)n, kv, e);
    free(bin);
    return rc;
}

/* The prompt ids a prefill output carries for the fallback ("tokens"). */
static int fallback_ids(const json_t *pre, const loom_llm_model_t *m, int32_t **ids, size_t *n, loom_err_t *e) {
    const json_t *t = json_object_get(pre, "tokens");
    size_t len = json_array_size(t), i;
    if (!json_is_array(t) || !len || len >= (size_t)m->n_ctx) {
        loom_err_set(e, LOOM_EINVAL, "the prefill output has no usable \"tokens\" to recompute the KV cache from");
        loom_err_field(e, "prefill.tokens");
        return LOOM_EINVAL;
    }
    if (!(*ids = malloc(len * sizeof **ids))) return loom_err_set(e, LOOM_ENOMEM, "out of memory");
    const json_t *v;
    json_array_foreach(t, i, v) {
        json_int_t x = json_integer_value(v);
        if (!json_is_integer(v) || x < 0 || x >= m->n_vocab) {
            free(*ids);
            *ids = NULL;
            loom_err_set(e, LOOM_EINVAL, "prefill.tokens[%zu] is not a token id of model %s", i, m->name);
            loom_err_field(e, "prefill.tokens[%zu]", i);
            return LOOM_EINVAL;
        }
        (*ids)[i] = (int32_t)x;
    }
    *n = len;
    return 0;
}

/* Fetches a referenced KV cache; on any failure prepares the fallback
 * (re-running the prefill here from the prompt ids), and records either
 * outcome as a note (an event in the run's history). */
static int fetch_kv(loom_op_ctx_t *ctx, const loom_llm_model_t *m, const json_t *ref, const json_t *pre,
                    loom_kvcache_t **kv, int32_t **ids, size_t *n, loom_err_t *e) {
    loom_objfetch_stats_t st = {0};
    loom_err_t fe = {0};
    const char *from = json_string_value(json_object_get(json_object_get(ref, "$object"), "worker"));
    from = from && *from ? from : "?";
    loom_objfetch_opts_t o;
    loom_objfetch_opts_default(&o);
    o.on_chunk = fetch_cancelled;
    o.ud = ctx;
    int streamed = json_is_true(json_object_get(json_object_get(ref, "$object"), "stream"));
    if (streamed)
        LOOM_INFO("llm", "msg=\"kv stream: fetching while the producer computes\" task=%s from=%s", loom_op_task_id(ctx), from);
    if (!loom_llm_kv_fetch(ref, &o, kv, &st, &fe)) {
        json_int_t size = json_integer_value(json_object_get(json_object_get(ref, "$object"), "size"));
        LOOM_INFO("llm", "msg=\"kv received\" task=%s from=%s path=%s bytes=%lld ms=%.1f streamed=%d", loom_op_task_id(ctx),
                  from, st.path, (long long)size, st.seconds * 1e3, streamed);
        loom_op_note(ctx, "KV cache from worker %s (%s path%s): %lld bytes in %.1f ms, %s", from, st.path,
                     streamed ? ", streamed layer by layer while its prefill ran" : "", (long long)size, st.seconds * 1e3,
                     streamed ? "every segment's checksum verified" : "checksum verified");
        return 0;
    }
    int rc = fallback_ids(pre, m, ids, n, e);
    if (rc) {
        loom_err_detail(e, "KV transfer from worker %s failed: %s", from, fe.msg);
        return rc;
    }
    LOOM_WARN("llm", "msg=\"kv transfer failed; re-running the prefill here\" task=%s from=%s error=\"%s\" tokens=%zu",
              loom_op_task_id(ctx), from, fe.msg, *n);
    loom_op_note(ctx, "KV transfer from worker %s failed (%s); re-ran the prefill of %zu tokens here", from, fe.msg, *n);
    return 0;
}

static int op_decode(void *ud, loom_op_ctx_t *ctx, const json_t *in, loom_op_output_t *out, loom_err_t *e) {
    (void)ud;
    loom_llm_model_t *m;
    gen_in_t g = {0}; /* (g.grammar is destroyed on every early failure) */
    loom_kvcache_t *kv = NULL;
    const json_t *ref = NULL, *pre = NULL;
    int32_t *ids = NULL; /* set when the KV cache must be recomputed here */
    size_t n = 0;
    int rc;
    if ((rc = get_model(in, &m, e)) || (rc = parse_gen(in, &g, e)) || (rc = constrain(in, m, &g, e)) ||
        (rc = kv_from_input(in, &kv, &ref, &pre, e)) || (ref && (rc = fetch_kv(ctx, m, ref, pre, &kv, &ids, &n, e)))) {
        loom_llm_grammar_destroy(&g.grammar);
        loom_kvcache_destroy(&kv);
        out->permanent = 1;
        return rc;
    }
    g.p.on_token = stream;
    g.p.cb_ctx = ctx;
    loom_buf_t text = LOOM_BUF_INIT;
    loom_llm_gen_result_t r = {0};
    pthread_mutex_lock(&G.compute);
    void *h = NULL;
    loom_llm_backend_t b;
    size_t have = kv ? (size_t)loom_kvcache_n_tokens(kv) : n;
    rc = G.f->create(G.f->ud, m, ctx_len(m, have, g.p.max_tokens), &b, &h, e);
    if (!rc) {
        double secs;
        if (!kv) rc = loom_llm_prefill(m, &b, ids, n, &kv, &secs, e); /* the fallback */
        if (!rc) rc = loom_llm_decode(m, &b, kv, &g.p, &text, &r, e);
        G.f->destroy(G.f->ud, h);
    }
    pthread_mutex_unlock(&G.compute);
    free(ids);
    loom_kvcache_destroy(&kv);
    if (!rc) rc = finish_text(&text, &r, m, ctx, out, e);
    if (!rc && (rc = check_json(&g, out, e))) { json_decref(out->json); out->json = NULL; }
    loom_llm_grammar_destroy(&g.grammar);
    free(r.tokens);
    loom_buf_free(&text);
    return rc;
}

static json_t *vec_json(const float *v, int n) {
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++) json_array_append_new(a, json_real(v[i]));
    return a;
}

static int op_embed(void *ud, loom_op_ctx_t *ctx, const json_t *in, loom_op_output_t *out, loom_err_t *e) {
    (void)ud; (void)ctx;
    loom_llm_model_t *m;
    int rc = get_model(in, &m, e);
    if (rc) { out->permanent = 1; return rc; }
    if (m->arch != LOOM_LLM_ARCH_BERT) {
        loom_err_set(e, LOOM_EINVAL, "model %s is not an embedding (bert) model", m->name);
        loom_err_field(e, "model");
        out->permanent = 1;
        return LOOM_EINVAL;
    }
    json_t *x = json_object_get(in, "input");
    if (!json_is_string(x) && !json_is_array(x)) {
        loom_err_set(e, LOOM_EINVAL, "task input needs \"input\": a string or an array of strings");
        loom_err_field(e, "input");
        out->permanent = 1;
        return LOOM_EINVAL;
    }
    int truncate = json_is_true(json_object_get(in, "truncate"));
    float *v = malloc((size_t)m->dim * sizeof *v);
    if (!v) return loom_err_set(e, LOOM_ENOMEM, "out of memory");
    json_t *res = NULL;
    pthread_mutex_lock(&G.compute);
    loom_llm_cpu_t *c = NULL;
    rc = loom_llm_cpu_new(m, loom_llm_backend_cpu_pool(), 0, &c, e);
    if (!rc && json_is_string(x)) {
        rc = loom_llm_embed_text(m, c, json_string_value(x), truncate, v, e);
        if (!rc) res = vec_json(v, m->dim);
    } else if (!rc) {
        size_t i;
        json_t *s;
        res = json_array();
        json_array_foreach(x, i, s) {
            if (!json_is_string(s)) { rc = loom_err_set(e, LOOM_EINVAL, "input[%zu] is not a string", i); break; }
            if ((rc = loom_llm_embed_text(m, c, json_string_value(s), truncate, v, e))) break;
            json_array_append_new(res, vec_json(v, m->dim));
        }
    }
    loom_llm_cpu_destroy(&c);
    pthread_mutex_unlock(&G.compute);
    free(v);
    if (rc) { json_decref(res); out->permanent = rc != LOOM_ENOMEM; return rc; }
    out->json = res;
    return 0;
}

static int op_search(void *ud, loom_op_ctx_t *ctx, const json_t *in, loom_op_output_t *out, loom_err_t *e) {
    (void)ud; (void)ctx;
    loom_vindex_t *v;
    double k;
    int rc;
    if ((rc = get_index(in, &v, e)) || (rc = num(in, "k", 4, 1, 10000, &k, e))) { out->permanent = 1; return rc; }
    json_t *q = json_object_get(in, "query");
    if (!json_is_array(q) || json_array_size(q) == 0) {
        loom_err_set(e, LOOM_EINVAL, "\"query\" must be a vector (an embed step's output)");
        loom_err_field(e, "query");
        out->permanent = 1;
        return LOOM_EINVAL;
    }
    int dim = (int)json_array_size(q);
    float *qv = malloc((size_t)dim * sizeof *qv);
    loom_vindex_hit_t *hits = malloc((size_t)k * sizeof *hits);
    if (!qv || !hits) { free(qv); free(hits); return loom_err_set(e, LOOM_ENOMEM, "out of memory"); }
    for (int i = 0; i < dim; i++) qv[i] = (float)json_number_value(json_array_get(q, (size_t)i));
    int n = loom_vindex_search(v, qv, dim, (int)k, hits, e);
    free(qv);
    if (n < 0) { free(hits); out->permanent = 1; return n; }
    json_t *res = json_array();
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *p = loom_vindex_payload(v, hits[i].id, &len);
        json_t *doc = json_loadb(p, len, JSON_DECODE_ANY, NULL);
        if (!doc) doc = json_stringn(p, len);
        json_array_append_new(res, json_pack("{s:I, s:f, s:o}", "id", (json_int_t)hits[i].id, "score",
                                             (double)hits[i].score, "doc", doc));
    }
    free(hits);
    out->json = res;
    return 0;
}

int loom_llm_add_ops(loom_ops_t *ops, const loom_llm_factory_t *f, loom_err_t *err) {
    pthread_mutex_lock(&G.mu);
    G.f = f ? f : loom_llm_backend_find("cpu");
    if (!G.models) G.models = loom_map_new(free_model);
    if (!G.indexes) G.indexes = loom_map_new(free_index);
    if (!G.prefix) { /* $LOOM_LLM_PREFIX_CACHE_BYTES, default 1 GiB; 0 turns prefix reuse off */
        const char *pb = getenv("LOOM_LLM_PREFIX_CACHE_BYTES");
        G.prefix = loom_llm_prefix_cache_new(pb && *pb ? strtoull(pb, NULL, 10) : (1ull << 30));
    }
    pthread_mutex_unlock(&G.mu);
    if (!G.models || !G.indexes || !loom_llm_backend_cpu_pool()) return loom_err_set(err, LOOM_ENOMEM, "out of memory starting the LLM engine");
    int rc;
    if ((rc = loom_ops_add(ops, "llm.generate", op_generate, NULL, 0)) ||
        (rc = loom_ops_add(ops, "llm.prefill", op_prefill, NULL, 0)) ||
        (rc = loom_ops_add(ops, "llm.decode", op_decode, NULL, 0)) ||
        (rc = loom_ops_add(ops, "embed", op_embed, NULL, 0)) ||
        (rc = loom_ops_add(ops, "vector.search", op_search, NULL, 0)))
        return loom_err_set(err, rc, "registering LLM ops failed");
    loom_ops_set_models_fn(ops, loom_llm_loaded_models); /* advertised in heartbeats */
    loom_ops_set_prefixes_fn(ops, held_prefixes);       /* likewise */
    /* Preload the models the worker was told about, so the first task does
     * not pay for mapping them and bad paths show up at start. */
    const char *s = getenv("LOOM_MODELS");
    while (s && *s) {
        const char *end = strchr(s, ','), *eq = strchr(s, '=');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (eq && eq < s + len) {
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)(eq - s), s);
            json_t *in = json_pack("{s:s}", "model", name);
            loom_llm_model_t *m;
            loom_err_t e = {0};
            if (get_model(in, &m, &e)) LOOM_WARN("llm", "msg=\"cannot preload model\" name=%s error=\"%s\"", name, e.msg);
            json_decref(in);
        }
        s = end ? end + 1 : NULL;
    }
    char names[512];
    loom_llm_loaded_models(names, sizeof names);
    LOOM_INFO("llm", "msg=\"LLM ops ready\" backend=%s simd=%s threads=%d models=\"%s\"", G.f->name,
              loom_llm_simd_name(), loom_llm_pool_size(loom_llm_backend_cpu_pool()), names);
    return 0;
}

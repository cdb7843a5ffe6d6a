/* llm_kvref.c — publish / fetch KV caches through the object store. */
#include "llm/llm_kvref.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "workers/common/objstore.h"

int loom_llm_kv_publish(const loom_kvcache_t *kv, int dtype, const char *worker, const char *run, json_t **ref,
                        loom_err_t *e) {
    *ref = NULL;
    loom_buf_t bin = LOOM_BUF_INIT;
    int rc = loom_kvcache_serialize_as(kv, dtype, &bin, e);
    char media[64];
    snprintf(media, sizeof media, "%s/%s", LOOM_KV_LAYOUT, loom_kvcache_dtype_name(dtype));
    loom_objref_t r;
    if (!rc) rc = loom_objstore_put_run(bin.data, bin.len, worker, media, run, &r, e);
    loom_buf_free(&bin);
    if (rc) return rc;
    if (!(*ref = loom_objref_to_json(&r))) return loom_err_set(e, LOOM_ENOMEM, "out of memory");
    return 0;
}

static int fetch_stream(const loom_objref_t *r, const loom_objfetch_opts_t *opts, loom_kvcache_t **kv,
                        loom_objfetch_stats_t *stats, loom_err_t *e);

int loom_llm_kv_fetch(const json_t *ref, const loom_objfetch_opts_t *opts, loom_kvcache_t **kv,
                      loom_objfetch_stats_t *stats, loom_err_t *e) {
    *kv = NULL;
    loom_objref_t r;
    int rc = loom_objref_from_json(ref, &r, e);
    if (rc) return rc;
    if (!r.stream && strncmp(r.media, LOOM_KV_LAYOUT "/", strlen(LOOM_KV_LAYOUT) + 1))
        return loom_err_set(e, LOOM_EINVAL, "object %.16s… is \"%s\", not a %s KV cache", r.id, r.media, LOOM_KV_LAYOUT);
    if (r.stream) return fetch_stream(&r, opts, kv, stats, e);
    void *data;
    size_t n;
    if ((rc = loom_objfetch(&r, opts, &data, &n, stats, e))) return rc;
    rc = loom_kvcache_parse(data, n, kv, e);
    free(data);
    return rc;
}

/* ---- layer-wise streams ------------------------------------------------------ */

struct loom_llm_kv_stream {
    loom_objstream_t *obj;
    int n_layers, rows, dtype, n_vocab;
    size_t width, n;            /* KV width, prompt tokens */
    uint64_t next;              /* index of the next segment */
    uint8_t *scratch;           /* one batch's K and V in the dtype (f16, q8_0) */
};

static size_t batch_tokens(size_t n, int rows, uint64_t b) {
    size_t p = (size_t)b * (size_t)rows;
    return n - p < (size_t)rows ? n - p : (size_t)rows;
}

static uint64_t n_batches(size_t n, int rows) { return (n + (size_t)rows - 1) / (size_t)rows; }

/* The stream's bytes for this shape (segments and their frames). */
static uint64_t stream_bytes(const loom_kvcache_shape_t *sh) {
    size_t w = (size_t)sh->n_kv_heads * sh->head_dim, n = (size_t)sh->n_tokens;
    uint64_t size = LOOM_KVCACHE_HEADER + n * 4 + LOOM_OBJSTREAM_FRAME + (uint64_t)sh->n_vocab * 4 + LOOM_OBJSTREAM_FRAME;
    for (uint64_t b = 0; b < n_batches(n, (int)sh->rows); b++)
        size += (uint64_t)sh->n_layers *
                (2 * loom_kvcache_dtype_bytes(batch_tokens(n, (int)sh->rows, b) * w, sh->dtype) + LOOM_OBJSTREAM_FRAME);
    return size;
}

static int stream_rows(void *ud, int layer, int pos0, int n, const float *k, const float *v, loom_err_t *e) {
    loom_llm_kv_stream_t *s = ud;
    uint64_t i = s->next - 1, b = i / (uint64_t)s->n_layers;
    if (!s->next || b >= n_batches(s->n, s->rows) || layer != (int)(i % (uint64_t)s->n_layers) ||
        (size_t)pos0 != b * (size_t)s->rows || (size_t)n != batch_tokens(s->n, s->rows, b))
        return loom_err_set(e, LOOM_EINVAL, "KV stream: rows of layer %d at position %d out of order", layer, pos0);
    size_t cnt = (size_t)n * s->width, bytes = loom_kvcache_dtype_bytes(cnt, s->dtype);
    loom_objstream_piece_t p[2] = {{k, bytes}, {v, bytes}};
    if (s->dtype != LOOM_KV_F32) { /* f32 goes as computed; others are encoded first */
        loom_kvcache_encode(k, cnt, s->dtype, s->scratch);
        loom_kvcache_encode(v, cnt, s->dtype, s->scratch + bytes);
        p[0].data = s->scratch;
        p[1].data = s->scratch + bytes;
    }
    int rc = loom_objstore_stream_segment(s->obj, p, 2, e);
    if (!rc) s->next++;
    return rc;
}

static int stream_logits(void *ud, const float *logits, loom_err_t *e) {
    loom_llm_kv_stream_t *s = ud;
    if (s->next != 1 + n_batches(s->n, s->rows) * (uint64_t)s->n_layers)
        return loom_err_set(e, LOOM_EINVAL, "KV stream: logits before the last layer");
    loom_objstream_piece_t p = {logits, (size_t)s->n_vocab * 4};
    int rc = loom_objstore_stream_segment(s->obj, &p, 1, e);
    if (!rc) s->next++;
    return rc;
}

int loom_llm_kv_stream_open(const loom_llm_model_t *m, const int32_t *prompt, size_t n, int dtype, int rows,
                            const char *worker, const char *run, loom_llm_kv_stream_t **out, loom_llm_kv_sink_t *sink,
                            json_t **ref, loom_err_t *e) {
    *out = NULL;
    *ref = NULL;
    size_t w = (size_t)m->n_kv_heads * m->head_dim;
    if (dtype != LOOM_KV_F32 && dtype != LOOM_KV_F16 && dtype != LOOM_KV_Q8_0)
        return loom_err_set(e, LOOM_EINVAL, "unknown KV dtype %d", dtype);
    if (dtype == LOOM_KV_Q8_0 && w % 32)
        return loom_err_set(e, LOOM_EINVAL, "a q8_0 KV cache needs kv_heads x head_dim (%zu) to be a multiple of 32", w);
    if (!n || rows <= 0) return loom_err_set(e, LOOM_EINVAL, "nothing to stream");
    loom_kvcache_shape_t sh = {.dtype = dtype, .n_layers = m->n_layers, .n_kv_heads = m->n_kv_heads,
                               .head_dim = m->head_dim, .n_tokens = (int)n, .n_vocab = m->n_vocab, .rows = (uint32_t)rows};
    memcpy(sh.hash, m->hash, 32);
    uint8_t hdr[LOOM_KVCACHE_HEADER];
    loom_kvcache_header(&sh, hdr);
    uint64_t size = stream_bytes(&sh);
    loom_llm_kv_stream_t *s = calloc(1, sizeof *s);
    if (!s || !(s->scratch = malloc(2 * loom_kvcache_dtype_bytes((size_t)rows * w, dtype) + 1))) {
        free(s);
        return loom_err_set(e, LOOM_ENOMEM, "out of memory");
    }
    s->n_layers = m->n_layers;
    s->rows = rows;
    s->dtype = dtype;
    s->n_vocab = m->n_vocab;
    s->width = w;
    s->n = n;
    char media[64];
    snprintf(media, sizeof media, "%s/%s", LOOM_KV_STREAM_LAYOUT, loom_kvcache_dtype_name(dtype));
    loom_objref_t r;
    loom_objstream_piece_t p[2] = {{hdr, sizeof hdr}, {prompt, n * 4}};
    int rc = loom_objstore_stream_open(size, worker, media, run, &s->obj, &r, e);
    if (!rc && (rc = loom_objstore_stream_segment(s->obj, p, 2, e))) loom_objstore_stream_close(s->obj, 0, NULL);
    if (!rc && !(*ref = loom_objref_to_json(&r))) {
        loom_objstore_stream_close(s->obj, 0, NULL);
        rc = loom_err_set(e, LOOM_ENOMEM, "out of memory");
    }
    if (rc) {
        free(s->scratch);
        free(s);
        return rc;
    }
    s->next = 1;
    *sink = (loom_llm_kv_sink_t){stream_rows, stream_logits, s};
    *out = s;
    return 0;
}

int loom_llm_kv_stream_close(loom_llm_kv_stream_t *s, int ok, loom_err_t *e) {
    if (!s) return 0;
    int rc = loom_objstore_stream_close(s->obj, ok, e);
    free(s->scratch);
    free(s);
    return rc;
}

/* The consumer: rebuilds the cache segment by segment as they land. */
typedef struct assemble {
    loom_kvcache_t *kv;
    loom_kvcache_shape_t sh;
    size_t width;
    uint64_t batches, last; /* the logits' segment index */
    uint64_t size;          /* the object's, from its reference */
} assemble_t;

static int assemble_segment(void *ud, uint64_t i, const uint8_t *d, size_t n, loom_err_t *e) {
    assemble_t *a = ud;
    if (i == 0) {
        int rc = loom_kvcache_header_parse(d, n, &a->sh, e);
        if (rc) return rc;
        if (!a->sh.rows || a->sh.rows > (1u << 20) || a->sh.n_tokens <= 0 ||
            n != LOOM_KVCACHE_HEADER + (size_t)a->sh.n_tokens * 4 || stream_bytes(&a->sh) != a->size)
            return loom_err_set(e, LOOM_EPARSE, "KV stream: bad first segment (%zu bytes, %d tokens, %u rows, object of %llu bytes)",
                                n, a->sh.n_tokens, a->sh.rows, (unsigned long long)a->size);
        if ((rc = loom_kvcache_new(a->sh.hash, a->sh.n_layers, a->sh.n_kv_heads, a->sh.head_dim, a->sh.n_tokens,
                                   a->sh.n_vocab, &a->kv, e)))
            return rc;
        int32_t *t = loom_kvcache_tokens(a->kv);
        memcpy(t, d + LOOM_KVCACHE_HEADER, (size_t)a->sh.n_tokens * 4);
        for (int k = 0; k < a->sh.n_tokens; k++)
            if (t[k] < 0 || t[k] >= a->sh.n_vocab) return loom_err_set(e, LOOM_EPARSE, "KV stream: token id out of range");
        a->width = (size_t)a->sh.n_kv_heads * a->sh.head_dim;
        a->batches = n_batches((size_t)a->sh.n_tokens, (int)a->sh.rows);
        a->last = 1 + a->batches * (uint64_t)a->sh.n_layers;
        return 0;
    }
    if (i < a->last) {
        uint64_t b = (i - 1) / (uint64_t)a->sh.n_layers;
        int l = (int)((i - 1) % (uint64_t)a->sh.n_layers);
        size_t cnt = batch_tokens((size_t)a->sh.n_tokens, (int)a->sh.rows, b) * a->width,
               bytes = loom_kvcache_dtype_bytes(cnt, a->sh.dtype), at = (size_t)b * a->sh.rows * a->width;
        if (n != 2 * bytes) return loom_err_set(e, LOOM_EPARSE, "KV stream: segment %llu has %zu bytes, not %zu", (unsigned long long)i, n, 2 * bytes);
        loom_kvcache_decode(d, cnt, a->sh.dtype, loom_kvcache_k(a->kv, l) + at);
        loom_kvcache_decode(d + bytes, cnt, a->sh.dtype, loom_kvcache_v(a->kv, l) + at);
        return 0;
    }
    if (i == a->last && n == (size_t)a->sh.n_vocab * 4) {
        memcpy(loom_kvcache_logits(a->kv), d, n);
        a->last = UINT64_MAX - 1; /* done: any further segment is an error */
        return 0;
    }
    return loom_err_set(e, LOOM_EPARSE, "KV stream: unexpected segment %llu (%zu bytes)", (unsigned long long)i, n);
}

static int fetch_stream(const loom_objref_t *r, const loom_objfetch_opts_t *opts, loom_kvcache_t **kv,
                        loom_objfetch_stats_t *stats, loom_err_t *e) {
    if (strncmp(r->media, LOOM_KV_STREAM_LAYOUT "/", strlen(LOOM_KV_STREAM_LAYOUT) + 1))
        return loom_err_set(e, LOOM_EINVAL, "streamed object %.16s… is \"%s\", not a %s KV stream", r->id, r->media,
                            LOOM_KV_STREAM_LAYOUT);
    loom_objfetch_opts_t o;
    if (opts) o = *opts;
    else loom_objfetch_opts_default(&o);
    assemble_t a = {0};
    a.last = UINT64_MAX;
    a.size = r->size;
    o.on_segment = assemble_segment;
    o.seg_ud = &a;
    void *data;
    size_t n;
    int rc = loom_objfetch(r, &o, &data, &n, stats, e);
    if (!rc) free(data);
    if (!rc && a.last != UINT64_MAX - 1) rc = loom_err_set(e, LOOM_EPARSE, "KV stream %.16s… ended without its logits", r->id);
    if (rc) loom_kvcache_destroy(&a.kv);
    else *kv = a.kv;
    return rc;
}

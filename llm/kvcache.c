/* kvcache.c — one allocation: header fields, then tokens, logits, K/V. */
#include "llm/kvcache.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sha.h"
#include "llm/gguf.h"

#define HDR 72
static const char MAGIC[8] = {'L', 'O', 'O', 'M', 'K', 'V', 0, 0};

struct loom_kvcache {
    uint8_t hash[32];
    int n_layers, n_kv_heads, head_dim, n_tokens, n_vocab;
    int32_t *tokens;
    float *logits;
    float *kv;   /* layers x {K, V} x n_tokens x width */
};

static size_t width(const loom_kvcache_t *k) { return (size_t)k->n_kv_heads * k->head_dim; }

#define Q8_BLOCK 32 /* ggml's Q8_0: an f16 scale and 32 int8 per block */

/* Bytes of n K/V elements in dtype (n a multiple of Q8_BLOCK for Q8_0). */
static uint64_t kv_bytes(uint64_t n, int dtype) {
    return dtype == LOOM_KV_Q8_0 ? n / Q8_BLOCK * (2 + Q8_BLOCK) : n * (dtype == LOOM_KV_F16 ? 2 : 4);
}

int loom_kvcache_dtype_from_name(const char *name) {
    if (!name) return -1;
    if (!strcmp(name, "f32")) return LOOM_KV_F32;
    if (!strcmp(name, "f16")) return LOOM_KV_F16;
    if (!strcmp(name, "q8_0")) return LOOM_KV_Q8_0;
    return -1;
}

const char *loom_kvcache_dtype_name(int dtype) {
    return dtype == LOOM_KV_F16 ? "f16" : dtype == LOOM_KV_Q8_0 ? "q8_0" : "f32";
}

/* Payload bytes after the header with K/V in dtype; 0 on overflow or an
 * out-of-range shape (Q8_0: rows of kv_heads x head_dim must be whole
 * blocks). */
static size_t payload_as(uint64_t layers, uint64_t kvh, uint64_t hd, uint64_t nt, uint64_t nv, int dtype) {
    if (layers > 4096 || kvh > 4096 || hd > 4096 || nt > (1u << 24) || nv > (1u << 24)) return 0;
    if (dtype == LOOM_KV_Q8_0 && (kvh * hd) % Q8_BLOCK) return 0;
    uint64_t kvn = layers * 2 * kvh * hd;
    if (kvn && nt > (UINT64_MAX / 8) / kvn) return 0;
    uint64_t n = nt * 4 + nv * 4 + kv_bytes(kvn * nt, dtype);
    if (n > ((uint64_t)1 << 40)) return 0;
    return (size_t)n;
}

static size_t payload(uint64_t layers, uint64_t kvh, uint64_t hd, uint64_t nt, uint64_t nv) {
    return payload_as(layers, kvh, hd, nt, nv, LOOM_KV_F32);
}

/* ggml's Q8_0 rounding of one block: scale = max |x| / 127. */
static void q8_block(const float *x, uint8_t *out) {
    float amax = 0;
    for (int i = 0; i < Q8_BLOCK; i++) amax = fmaxf(amax, fabsf(x[i]));
    float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
    uint16_t h = loom_fp32_to_fp16(d);
    memcpy(out, &h, 2);
    for (int i = 0; i < Q8_BLOCK; i++) out[2 + i] = (uint8_t)(int8_t)lrintf(x[i] * id);
}

size_t loom_kvcache_dtype_bytes(size_t n, int dtype) { return (size_t)kv_bytes(n, dtype); }

void loom_kvcache_encode(const float *src, size_t n, int dtype, void *dst) {
    if (dtype == LOOM_KV_F32) {
        memcpy(dst, src, n * 4);
    } else if (dtype == LOOM_KV_F16) {
        uint8_t *d = dst;
        for (size_t i = 0; i < n; i++) {
            uint16_t v = loom_fp32_to_fp16(src[i]);
            memcpy(d + 2 * i, &v, 2);
        }
    } else {
        uint8_t *d = dst;
        for (size_t b = 0; b < n / Q8_BLOCK; b++) q8_block(src + b * Q8_BLOCK, d + b * (2 + Q8_BLOCK));
    }
}

void loom_kvcache_decode(const void *src, size_t n, int dtype, float *dst) {
    const uint8_t *q = src;
    if (dtype == LOOM_KV_F32) {
        memcpy(dst, q, n * 4);
    } else if (dtype == LOOM_KV_F16) { /* layout translation: f16 on the wire, f32 in memory */
        for (size_t i = 0; i < n; i++) {
            uint16_t v;
            memcpy(&v, q + 2 * i, 2);
            dst[i] = loom_fp16_to_fp32(v);
        }
    } else { /* Q8_0 on the wire: scale x int8 per block */
        for (size_t b = 0; b < n / Q8_BLOCK; b++) {
            const uint8_t *blk = q + b * (2 + Q8_BLOCK);
            uint16_t h;
            memcpy(&h, blk, 2);
            float d = loom_fp16_to_fp32(h);
            for (int i = 0; i < Q8_BLOCK; i++) dst[b * Q8_BLOCK + (size_t)i] = d * (float)(int8_t)blk[2 + i];
        }
    }
}

int loom_kvcache_new(const uint8_t hash[32], int n_layers, int n_kv_heads, int head_dim, int n_tokens,
                     int n_vocab, loom_kvcache_t **out, loom_err_t *e) {
    *out = NULL;
    if (n_layers <= 0 || n_kv_heads <= 0 || head_dim <= 0 || n_tokens < 0 || n_vocab <= 0 ||
        !payload((uint64_t)n_layers, (uint64_t)n_kv_heads, (uint64_t)head_dim, (uint64_t)n_tokens, (uint64_t)n_vocab))
        return loom_err_set(e, LOOM_EINVAL, "invalid KV cache shape");
    loom_kvcache_t *k = calloc(1, sizeof *k);
    if (!k) return loom_err_set(e, LOOM_ENOMEM, "out of memory");
    memcpy(k->hash, hash, 32);
    k->n_layers = n_layers; k->n_kv_heads = n_kv_heads; k->head_dim = head_dim;
    k->n_tokens = n_tokens; k->n_vocab = n_vocab;
    k->tokens = calloc((size_t)n_tokens + 1, sizeof *k->tokens);
    k->logits = calloc((size_t)n_vocab, sizeof *k->logits);
    k->kv = calloc((size_t)n_layers * 2 * width(k) * (size_t)n_tokens + 1, sizeof *k->kv);
    if (!k->tokens || !k->logits || !k->kv) {
        loom_kvcache_destroy(&k);
        return loom_err_set(e, LOOM_ENOMEM, "out of memory for a KV cache of %d tokens", n_tokens);
    }
    *out = k;
    return 0;
}

void loom_kvcache_destroy(loom_kvcache_t **pk) {
    if (!pk || !*pk) return;
    free((*pk)->tokens); free((*pk)->logits); free((*pk)->kv);
    free(*pk);
    *pk = NULL;
}

int loom_kvcache_n_layers(const loom_kvcache_t *k) { return k->n_layers; }
int loom_kvcache_n_kv_heads(const loom_kvcache_t *k) { return k->n_kv_heads; }
int loom_kvcache_head_dim(const loom_kvcache_t *k) { return k->head_dim; }
int loom_kvcache_n_tokens(const loom_kvcache_t *k) { return k->n_tokens; }
int loom_kvcache_n_vocab(const loom_kvcache_t *k) { return k->n_vocab; }
const uint8_t *loom_kvcache_hash(const loom_kvcache_t *k) { return k->hash; }
int32_t *loom_kvcache_tokens(loom_kvcache_t *k) { return k->tokens; }
float *loom_kvcache_logits(loom_kvcache_t *k) { return k->logits; }
float *loom_kvcache_k(loom_kvcache_t *k, int l) { return k->kv + (size_t)l * 2 * width(k) * k->n_tokens; }
float *loom_kvcache_v(loom_kvcache_t *k, int l) { return loom_kvcache_k(k, l) + width(k) * k->n_tokens; }

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

int loom_kvcache_serialize(const loom_kvcache_t *k, loom_buf_t *out, loom_err_t *e) {
    return loom_kvcache_serialize_as(k, LOOM_KV_F32, out, e);
}

int loom_kvcache_serialize_as(const loom_kvcache_t *k, int dtype, loom_buf_t *out, loom_err_t *e) {
    if (dtype != LOOM_KV_F32 && dtype != LOOM_KV_F16 && dtype != LOOM_KV_Q8_0)
        return loom_err_set(e, LOOM_EINVAL, "unknown KV dtype %d", dtype);
    if (dtype == LOOM_KV_Q8_0 && width(k) % Q8_BLOCK)
        return loom_err_set(e, LOOM_EINVAL, "a q8_0 KV cache needs kv_heads x head_dim (%zu) to be a multiple of %d",
                            width(k), Q8_BLOCK);
    uint8_t h[HDR];
    loom_kvcache_shape_t sh = {.dtype = dtype, .n_layers = k->n_layers, .n_kv_heads = k->n_kv_heads,
                               .head_dim = k->head_dim, .n_tokens = k->n_tokens, .n_vocab = k->n_vocab};
    memcpy(sh.hash, k->hash, 32);
    loom_kvcache_header(&sh, h);
    size_t start = out->len;
    size_t nkv = (size_t)k->n_layers * 2 * width(k) * k->n_tokens, kvbytes = (size_t)kv_bytes(nkv, dtype);
    if (loom_buf_reserve(out, HDR + (size_t)k->n_tokens * 4 + (size_t)k->n_vocab * 4 + kvbytes + 32) ||
        loom_buf_append(out, h, HDR) || loom_buf_append(out, k->tokens, (size_t)k->n_tokens * 4) ||
        loom_buf_append(out, k->logits, (size_t)k->n_vocab * 4))
        return loom_err_set(e, LOOM_ENOMEM, "out of memory serialising the KV cache");
    /* reserved above: encode in place at the end of out */
    loom_kvcache_encode(k->kv, nkv, dtype, out->data + out->len);
    out->len += kvbytes;
    out->data[out->len] = 0;
    uint8_t sum[32];
    loom_sha256(out->data + start, out->len - start, sum);
    if (loom_buf_append(out, sum, 32)) return loom_err_set(e, LOOM_ENOMEM, "out of memory serialising the KV cache");
    return 0;
}

static int bad(loom_err_t *e, const char *what) {
    loom_err_set(e, LOOM_EPARSE, "invalid KV cache object: %s", what);
    return LOOM_EPARSE;
}

void loom_kvcache_header(const loom_kvcache_shape_t *s, uint8_t out[LOOM_KVCACHE_HEADER]) {
    memset(out, 0, HDR);
    memcpy(out, MAGIC, 8);
    put32(out + 8, LOOM_KVCACHE_VERSION);
    put32(out + 12, (uint32_t)s->dtype);
    memcpy(out + 16, s->hash, 32);
    put32(out + 48, (uint32_t)s->n_layers); put32(out + 52, (uint32_t)s->n_kv_heads);
    put32(out + 56, (uint32_t)s->head_dim); put32(out + 60, (uint32_t)s->n_tokens);
    put32(out + 64, (uint32_t)s->n_vocab); put32(out + 68, s->rows);
}

int loom_kvcache_header_parse(const void *data, size_t n, loom_kvcache_shape_t *s, loom_err_t *e) {
    const uint8_t *p = data;
    memset(s, 0, sizeof *s);
    if (n < HDR) return bad(e, "truncated header");
    if (memcmp(p, MAGIC, 8)) return bad(e, "bad magic (not a Loom KV cache)");
    if (get32(p + 8) != LOOM_KVCACHE_VERSION) {
        loom_err_set(e, LOOM_EPARSE, "unsupported KV cache version %u (this build reads %d)", get32(p + 8), LOOM_KVCACHE_VERSION);
        return LOOM_EPARSE;
    }
    uint32_t dt = get32(p + 12);
    if (dt != LOOM_KV_F32 && dt != LOOM_KV_F16 && dt != LOOM_KV_Q8_0) return bad(e, "unknown dtype");
    uint32_t L = get32(p + 48), H = get32(p + 52), D = get32(p + 56), T = get32(p + 60), V = get32(p + 64);
    if (!L || !H || !D || !V || !payload_as(L, H, D, T, V, (int)dt)) return bad(e, "shape out of range");
    memcpy(s->hash, p + 16, 32);
    s->dtype = (int)dt;
    s->n_layers = (int)L; s->n_kv_heads = (int)H; s->head_dim = (int)D; s->n_tokens = (int)T; s->n_vocab = (int)V;
    s->rows = get32(p + 68);
    return 0;
}

int loom_kvcache_parse(const void *data, size_t n, loom_kvcache_t **out, loom_err_t *e) {
    const uint8_t *p = data;
    *out = NULL;
    if (n < HDR + 32) return bad(e, "truncated header");
    loom_kvcache_shape_t sh;
    int rc = loom_kvcache_header_parse(p, HDR, &sh, e);
    if (rc) return rc;
    uint32_t dt = (uint32_t)sh.dtype, L = (uint32_t)sh.n_layers, H = (uint32_t)sh.n_kv_heads, D = (uint32_t)sh.head_dim,
             T = (uint32_t)sh.n_tokens, V = (uint32_t)sh.n_vocab;
    size_t pl = payload_as(L, H, D, T, V, (int)dt);
    if (n != HDR + pl + 32) return bad(e, "size does not match the header (truncated or padded)");
    uint8_t sum[32];
    loom_sha256(p, n - 32, sum);
    if (!loom_digest_equal(sum, p + n - 32, 32)) return bad(e, "checksum mismatch (corrupted in transit?)");
    loom_kvcache_t *k;
    rc = loom_kvcache_new(p + 16, (int)L, (int)H, (int)D, (int)T, (int)V, &k, e);
    if (rc) return rc;
    const uint8_t *q = p + HDR;
    memcpy(k->tokens, q, (size_t)T * 4); q += (size_t)T * 4;
    memcpy(k->logits, q, (size_t)V * 4); q += (size_t)V * 4;
    loom_kvcache_decode(q, (size_t)L * 2 * H * D * T, (int)dt, k->kv);
    for (uint32_t i = 0; i < T; i++)
        if (k->tokens[i] < 0 || (uint32_t)k->tokens[i] >= V) { loom_kvcache_destroy(&k); return bad(e, "token id out of range"); }
    *out = k;
    return 0;
}

int loom_kvcache_check(const loom_kvcache_t *k, const uint8_t hash[32], int n_layers, int n_kv_heads, int head_dim,
                       int n_vocab, loom_err_t *e) {
    if (memcmp(k->hash, hash, 32)) {
        char a[65], b[65];
        loom_hex(k->hash, 32, a);
        loom_hex(hash, 32, b);
        loom_err_set(e, LOOM_EINVAL, "KV cache belongs to a different model");
        loom_err_detail(e, "cache model hash %.16s..., loaded model %.16s...", a, b);
        loom_err_hint(e, "decode with the same GGUF file the prefill used");
        return LOOM_EINVAL;
    }
    if (k->n_layers != n_layers || k->n_kv_heads != n_kv_heads || k->head_dim != head_dim || k->n_vocab != n_vocab) {
        loom_err_set(e, LOOM_EINVAL, "KV cache shape %dx%dx%d does not match the model (%dx%dx%d)", k->n_layers,
                     k->n_kv_heads, k->head_dim, n_layers, n_kv_heads, head_dim);
        return LOOM_EINVAL;
    }
    return 0;
}

int loom_kvcache_save(const loom_kvcache_t *k, const char *path, loom_err_t *e) {
    loom_buf_t b = LOOM_BUF_INIT;
    int rc = loom_kvcache_serialize(k, &b, e);
    if (rc) return rc;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f || fwrite(b.data, 1, b.len, f) != b.len || fclose(f)) {
        if (f) fclose(f);
        loom_buf_free(&b);
        loom_err_set(e, LOOM_EIO, "cannot write KV cache %s: %s", path, strerror(errno));
        return LOOM_EIO;
    }
    loom_buf_free(&b);
    if (rename(tmp, path)) return loom_err_set(e, LOOM_EIO, "cannot rename %s: %s", tmp, strerror(errno));
    return 0;
}

int loom_kvcache_load(const char *path, loom_kvcache_t **out, loom_err_t *e) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        loom_err_set(e, errno == ENOENT ? LOOM_ENOTFOUND : LOOM_EIO, "cannot open KV cache %s: %s", path, strerror(errno));
        return e ? e->code : LOOM_EIO;
    }
    loom_buf_t b = LOOM_BUF_INIT;
    char chunk[65536];
    size_t r;
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (loom_buf_append(&b, chunk, r)) { fclose(f); loom_buf_free(&b); return loom_err_set(e, LOOM_ENOMEM, "out of memory"); }
    fclose(f);
    int rc = loom_kvcache_parse(b.data ? b.data : "", b.len, out, e);
    if (rc) loom_err_at(e, path, 0, 0);
    loom_buf_free(&b);
    return rc;
}

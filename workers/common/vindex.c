/* vindex.c — read whole, validate, score with a plain C loop (the MLIR
 * kernels may replace the scoring behind the same op later). */
#include "workers/common/vindex.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sha.h"

#define HDR 72
static const char MAGIC[8] = {'L', 'O', 'O', 'M', 'V', 'I', 'X', 0};

struct loom_vindex {
    uint8_t *buf;
    size_t size;
    int dim;
    uint64_t count, payload_bytes;
    const float *vec;       /* aligned copy */
    float *vec_owned;
    const uint8_t *offs;    /* u64 array, unaligned */
    const char *payload;
};

static void normalise(float *v, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)v[i] * v[i];
    if (s <= 0) return;
    float inv = (float)(1.0 / sqrt(s));
    for (int i = 0; i < n; i++) v[i] *= inv;
}

int loom_vindex_write(const char *path, int dim, uint64_t count, const float *vectors, const char *const *payloads,
                      const size_t *lens, const uint8_t model_hash[32], loom_err_t *e) {
    if (dim <= 0 || dim > 65536) return loom_err_set(e, LOOM_EINVAL, "invalid index dimension %d", dim);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return loom_err_set(e, LOOM_EIO, "cannot write %s: %s", tmp, strerror(errno));
    loom_sha256_t *sha = loom_sha256_new();
    uint64_t pb = 0;
    for (uint64_t i = 0; i < count; i++) pb += lens[i];
    uint8_t h[HDR] = {0};
    uint32_t u;
    memcpy(h, MAGIC, 8);
    u = LOOM_VINDEX_VERSION; memcpy(h + 8, &u, 4);
    u = 0; memcpy(h + 12, &u, 4);
    u = (uint32_t)dim; memcpy(h + 16, &u, 4);
    u = 1; memcpy(h + 20, &u, 4);
    memcpy(h + 24, &count, 8);
    memcpy(h + 32, &pb, 8);
    memcpy(h + 40, model_hash, 32);
    int ok = sha && fwrite(h, 1, HDR, f) == HDR;
    loom_sha256_update(sha, h, HDR);
    float *row = malloc((size_t)dim * sizeof *row);
    ok = ok && row;
    for (uint64_t i = 0; ok && i < count; i++) {
        memcpy(row, vectors + i * (size_t)dim, (size_t)dim * 4);
        normalise(row, dim);
        ok = fwrite(row, 4, (size_t)dim, f) == (size_t)dim;
        loom_sha256_update(sha, row, (size_t)dim * 4);
    }
    free(row);
    uint64_t off = 0;
    for (uint64_t i = 0; ok && i <= count; i++) {
        ok = fwrite(&off, 8, 1, f) == 1;
        loom_sha256_update(sha, &off, 8);
        if (i < count) off += lens[i];
    }
    for (uint64_t i = 0; ok && i < count; i++) {
        ok = fwrite(payloads[i], 1, lens[i], f) == lens[i];
        loom_sha256_update(sha, payloads[i], lens[i]);
    }
    uint8_t sum[32];
    if (ok) { loom_sha256_final(sha, sum); ok = fwrite(sum, 1, 32, f) == 32; }
    loom_sha256_destroy(&sha);
    if (fclose(f) || !ok) { remove(tmp); return loom_err_set(e, LOOM_EIO, "cannot write %s: %s", tmp, strerror(errno)); }
    if (rename(tmp, path)) return loom_err_set(e, LOOM_EIO, "cannot rename %s: %s", tmp, strerror(errno));
    return 0;
}

static int bad(loom_err_t *e, const char *name, const char *what) {
    loom_err_set(e, LOOM_EPARSE, "invalid vector index: %s", what);
    loom_err_at(e, name, 0, 0);
    loom_err_hint(e, "rebuild it with `loom index build`");
    return LOOM_EPARSE;
}

static int parse(loom_vindex_t *v, const char *name, loom_err_t *e) {
    const uint8_t *p = v->buf;
    if (v->size < HDR + 32) return bad(e, name, "truncated header");
    if (memcmp(p, MAGIC, 8)) return bad(e, name, "bad magic (not a Loom vector index)");
    uint32_t ver, dtype, dim;
    memcpy(&ver, p + 8, 4); memcpy(&dtype, p + 12, 4); memcpy(&dim, p + 16, 4);
    if (ver != LOOM_VINDEX_VERSION) {
        loom_err_set(e, LOOM_EPARSE, "unsupported vector index version %u (this build reads %d)", ver, LOOM_VINDEX_VERSION);
        loom_err_at(e, name, 0, 0);
        return LOOM_EPARSE;
    }
    if (dtype != 0) return bad(e, name, "unknown dtype");
    if (dim == 0 || dim > 65536) return bad(e, name, "dimension out of range");
    memcpy(&v->count, p + 24, 8); memcpy(&v->payload_bytes, p + 32, 8);
    uint64_t avail = v->size - HDR - 32;
    if (v->count > avail / ((uint64_t)dim * 4 + 8)) return bad(e, name, "count does not fit the file (truncated?)");
    uint64_t need = v->count * dim * 4 + (v->count + 1) * 8;
    if (need > avail || v->payload_bytes != avail - need) return bad(e, name, "sizes do not match the file (truncated?)");
    uint8_t sum[32];
    loom_sha256(p, v->size - 32, sum);
    if (!loom_digest_equal(sum, p + v->size - 32, 32)) return bad(e, name, "checksum mismatch (corrupted file)");
    v->dim = (int)dim;
    v->vec_owned = malloc(v->count * dim * 4 + 4);
    if (!v->vec_owned) return loom_err_set(e, LOOM_ENOMEM, "out of memory loading the index");
    memcpy(v->vec_owned, p + HDR, v->count * dim * 4);
    v->vec = v->vec_owned;
    v->offs = p + HDR + v->count * dim * 4;
    v->payload = (const char *)v->offs + (v->count + 1) * 8;
    uint64_t prev = 0;
    for (uint64_t i = 0; i <= v->count; i++) {
        uint64_t o;
        memcpy(&o, v->offs + i * 8, 8);
        if (o < prev || o > v->payload_bytes || (i == 0 && o) || (i == v->count && o != v->payload_bytes))
            return bad(e, name, "payload offsets out of order or out of range");
        prev = o;
    }
    return 0;
}

int loom_vindex_open_mem(const void *data, size_t n, const char *name, loom_vindex_t **out, loom_err_t *e) {
    *out = NULL;
    loom_vindex_t *v = calloc(1, sizeof *v);
    if (!v || !(v->buf = malloc(n ? n : 1))) { free(v); return loom_err_set(e, LOOM_ENOMEM, "out of memory"); }
    memcpy(v->buf, data, n);
    v->size = n;
    int rc = parse(v, name, e);
    if (rc) { loom_vindex_destroy(&v); return rc; }
    *out = v;
    return 0;
}

int loom_vindex_open(const char *path, loom_vindex_t **out, loom_err_t *e) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        loom_err_set(e, errno == ENOENT ? LOOM_ENOTFOUND : LOOM_EIO, "cannot open vector index %s: %s", path, strerror(errno));
        loom_err_at(e, path, 0, 0);
        return e ? e->code : LOOM_EIO;
    }
    loom_vindex_t *v = calloc(1, sizeof *v);
    if (!v) { fclose(f); return loom_err_set(e, LOOM_ENOMEM, "out of memory"); }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (sz < 0 || !(v->buf = malloc((size_t)sz + 1)) || fread(v->buf, 1, (size_t)sz, f) != (size_t)sz) {
        fclose(f);
        loom_vindex_destroy(&v);
        return loom_err_set(e, LOOM_EIO, "cannot read vector index %s", path);
    }
    fclose(f);
    v->size = (size_t)sz;
    int rc = parse(v, path, e);
    if (rc) { loom_vindex_destroy(&v); return rc; }
    *out = v;
    return 0;
}

void loom_vindex_destroy(loom_vindex_t **pv) {
    if (!pv || !*pv) return;
    free((*pv)->buf);
    free((*pv)->vec_owned);
    free(*pv);
    *pv = NULL;
}

int loom_vindex_dim(const loom_vindex_t *v) { return v->dim; }
uint64_t loom_vindex_count(const loom_vindex_t *v) { return v->count; }
const uint8_t *loom_vindex_model_hash(const loom_vindex_t *v) { return v->buf + 40; }

const char *loom_vindex_payload(const loom_vindex_t *v, uint64_t i, size_t *len) {
    if (i >= v->count) { *len = 0; return NULL; }
    uint64_t a, b;
    memcpy(&a, v->offs + i * 8, 8);
    memcpy(&b, v->offs + (i + 1) * 8, 8);
    *len = (size_t)(b - a);
    return v->payload + a;
}

int loom_vindex_search(const loom_vindex_t *v, const float *query, int dim, int k, loom_vindex_hit_t *hits,
                       loom_err_t *e) {
    if (dim != v->dim) {
        loom_err_set(e, LOOM_EINVAL, "query has %d dimensions, the index %d", dim, v->dim);
        loom_err_hint(e, "embed the query with the model the index was built with");
        return LOOM_EINVAL;
    }
    if (k <= 0) return 0;
    float *q = malloc((size_t)dim * sizeof *q);
    if (!q) return loom_err_set(e, LOOM_ENOMEM, "out of memory");
    memcpy(q, query, (size_t)dim * sizeof *q);
    normalise(q, dim);
    int n = 0;
    for (uint64_t i = 0; i < v->count; i++) {
        const float *r = v->vec + i * (size_t)dim;
        float s = 0;
        for (int j = 0; j < dim; j++) s += r[j] * q[j];
        if (n < k || s > hits[n - 1].score) { /* insertion into the sorted top k */
            int j = n < k ? n++ : k - 1;
            while (j > 0 && hits[j - 1].score < s) { hits[j] = hits[j - 1]; j--; }
            hits[j].id = i;
            hits[j].score = s;
        }
    }
    free(q);
    return n;
}

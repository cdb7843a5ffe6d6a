/* gguf.c — GGUF v3 reader: bounds-checked parse over an mmap'd file.
 * Layout: magic "GGUF", u32 version, u64 tensor count, u64 kv count,
 * kv pairs (string key, u32 type, value), tensor infos (name, u32 n_dims,
 * u64 ne[n_dims], u32 type, u64 offset), padding to general.alignment, data. */
#include "llm/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sha.h"
#include "llm/llm_mem.h"

#define GGUF_MAGIC 0x46554747u
#define MAX_COUNT (1u << 24)   /* kv pairs / tensors: far above any real model */
#define MAX_ARRAY_DEPTH 4

typedef struct kv {
    char *key;            /* owned, NUL-terminated */
    int type;
    union { uint64_t u; int64_t i; double f; } num;
    const char *str;      /* STRING: into the mapping */
    uint64_t len;         /* STRING length / ARRAY count */
    int etype;            /* ARRAY element type */
    const uint8_t *raw;   /* ARRAY: first element */
    const char **strs;    /* ARRAY of STRING: owned table of pointers */
    uint64_t *slens;
} kv_t;

struct loom_gguf {
    char *name;
    const uint8_t *base;
    size_t size;
    int mapped;
    loom_llm_mem_t mem;   /* the file read into huge pages (open_resident) */
    size_t header_len;    /* bytes before the data section */
    kv_t *kv;
    size_t n_kv;
    loom_gguf_tensor_t *t;
    size_t n_t;
};

typedef struct cur {
    const uint8_t *p;
    size_t pos, size;
    const char *file;
    loom_err_t *e;
} cur_t;

static int fail(cur_t *c, const char *field, const char *fmt, const char *what) {
    loom_err_set(c->e, LOOM_EPARSE, fmt, what);
    loom_err_at(c->e, c->file, 0, 0);
    if (field) loom_err_field(c->e, "%s", field);
    loom_err_detail(c->e, "at byte offset %zu of %zu", c->pos, c->size);
    return LOOM_EPARSE;
}

static int need(cur_t *c, size_t n, const char *field) {
    if (n > c->size - c->pos) return fail(c, field, "file is truncated while reading %s", field);
    return 0;
}

static int rd(cur_t *c, void *out, size_t n, const char *field) {
    int rc = need(c, n, field);
    if (rc) return rc;
    memcpy(out, c->p + c->pos, n);
    c->pos += n;
    return 0;
}

static int rd_str(cur_t *c, const char **s, uint64_t *len, const char *field) {
    uint64_t n;
    int rc = rd(c, &n, 8, field);
    if (rc) return rc;
    if (n > c->size - c->pos) return fail(c, field, "string length runs past the end of the file in %s", field);
    *s = (const char *)c->p + c->pos;
    *len = n;
    c->pos += n;
    return 0;
}

static size_t scalar_size(int t) {
    switch (t) {
    case LOOM_GGUF_U8: case LOOM_GGUF_I8: case LOOM_GGUF_BOOL: return 1;
    case LOOM_GGUF_U16: case LOOM_GGUF_I16: return 2;
    case LOOM_GGUF_U32: case LOOM_GGUF_I32: case LOOM_GGUF_F32: return 4;
    case LOOM_GGUF_U64: case LOOM_GGUF_I64: case LOOM_GGUF_F64: return 8;
    default: return 0;
    }
}

static void read_num(kv_t *v, const uint8_t *p) {
    switch (v->type) {
    case LOOM_GGUF_U8: v->num.u = p[0]; break;
    case LOOM_GGUF_BOOL: v->num.u = p[0] != 0; break;
    case LOOM_GGUF_I8: v->num.i = (int8_t)p[0]; break;
    case LOOM_GGUF_U16: { uint16_t x; memcpy(&x, p, 2); v->num.u = x; break; }
    case LOOM_GGUF_I16: { int16_t x; memcpy(&x, p, 2); v->num.i = x; break; }
    case LOOM_GGUF_U32: { uint32_t x; memcpy(&x, p, 4); v->num.u = x; break; }
    case LOOM_GGUF_I32: { int32_t x; memcpy(&x, p, 4); v->num.i = x; break; }
    case LOOM_GGUF_U64: memcpy(&v->num.u, p, 8); break;
    case LOOM_GGUF_I64: memcpy(&v->num.i, p, 8); break;
    case LOOM_GGUF_F32: { float x; memcpy(&x, p, 4); v->num.f = x; break; }
    case LOOM_GGUF_F64: memcpy(&v->num.f, p, 8); break;
    }
}

/* Skips an array body of etype with n elements (validating nested ones). */
static int skip_array(cur_t *c, int etype, uint64_t n, int depth, const char *field) {
    size_t es = scalar_size(etype);
    if (es) {
        if (n > (c->size - c->pos) / es) return fail(c, field, "array runs past the end of the file in %s", field);
        c->pos += n * es;
        return 0;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (etype == LOOM_GGUF_STRING) {
            const char *s; uint64_t l;
            int rc = rd_str(c, &s, &l, field);
            if (rc) return rc;
        } else if (etype == LOOM_GGUF_ARRAY) {
            uint32_t et; uint64_t m;
            if (depth >= MAX_ARRAY_DEPTH) return fail(c, field, "arrays nested too deeply in %s", field);
            int rc = rd(c, &et, 4, field);
            if (!rc) rc = rd(c, &m, 8, field);
            if (!rc) rc = skip_array(c, (int)et, m, depth + 1, field);
            if (rc) return rc;
        } else {
            return fail(c, field, "unknown array element type in %s", field);
        }
    }
    return 0;
}

static int parse_kv(cur_t *c, kv_t *v) {
    const char *ks; uint64_t kl; uint32_t t;
    char field[300];
    int rc = rd_str(c, &ks, &kl, "metadata key");
    if (rc) return rc;
    if (kl == 0 || kl > 4096 || memchr(ks, 0, kl)) return fail(c, "metadata key", "invalid %s (empty, NUL or too long)", "metadata key");
    if (!(v->key = strndup(ks, kl))) return loom_err_set(c->e, LOOM_ENOMEM, "out of memory");
    snprintf(field, sizeof field, "%s", v->key);
    if ((rc = rd(c, &t, 4, field))) return rc;
    v->type = (int)t;
    if (t == LOOM_GGUF_STRING) return rd_str(c, &v->str, &v->len, field);
    if (t == LOOM_GGUF_ARRAY) {
        uint32_t et;
        if ((rc = rd(c, &et, 4, field)) || (rc = rd(c, &v->len, 8, field))) return rc;
        v->etype = (int)et;
        v->raw = c->p + c->pos;
        if (et == LOOM_GGUF_STRING) {
            if (v->len > (c->size - c->pos) / 8) return fail(c, field, "array runs past the end of the file in %s", field);
            v->strs = calloc(v->len ? v->len : 1, sizeof *v->strs);
            v->slens = calloc(v->len ? v->len : 1, sizeof *v->slens);
            if (!v->strs || !v->slens) return loom_err_set(c->e, LOOM_ENOMEM, "out of memory");
            for (uint64_t i = 0; i < v->len; i++)
                if ((rc = rd_str(c, &v->strs[i], &v->slens[i], field))) return rc;
            return 0;
        }
        return skip_array(c, v->etype, v->len, 1, field);
    }
    size_t es = scalar_size((int)t);
    if (!es) {
        c->pos -= 4;
        return fail(c, field, "unknown metadata value type in %s", field);
    }
    if ((rc = need(c, es, field))) return rc;
    read_num(v, c->p + c->pos);
    c->pos += es;
    return 0;
}

static size_t blck(int type) { return (type == LOOM_GGML_Q8_0 || type == LOOM_GGML_Q4_0) ? LOOM_QK : 1; }

int loom_ggml_type_known(int type) {
    return type == LOOM_GGML_F32 || type == LOOM_GGML_F16 || type == LOOM_GGML_BF16 ||
           type == LOOM_GGML_Q8_0 || type == LOOM_GGML_Q4_0;
}

const char *loom_ggml_type_name(int type) {
    switch (type) {
    case LOOM_GGML_F32: return "F32";
    case LOOM_GGML_F16: return "F16";
    case LOOM_GGML_BF16: return "BF16";
    case LOOM_GGML_Q8_0: return "Q8_0";
    case LOOM_GGML_Q4_0: return "Q4_0";
    default: return NULL;
    }
}

size_t loom_ggml_row_size(int type, uint64_t n) {
    switch (type) {
    case LOOM_GGML_F32: return n * 4;
    case LOOM_GGML_F16: case LOOM_GGML_BF16: return n * 2;
    case LOOM_GGML_Q8_0: return n / 32 * 34;
    case LOOM_GGML_Q4_0: return n / 32 * 18;
    default: return 0;
    }
}

static int parse_tensor(cur_t *c, loom_gguf_tensor_t *t, uint64_t *offset, size_t idx) {
    const char *s; uint64_t l; uint32_t nd, type;
    char field[320];
    snprintf(field, sizeof field, "tensors[%zu]", idx);
    int rc = rd_str(c, &s, &l, field);
    if (rc) return rc;
    if (l == 0 || l > 1024 || memchr(s, 0, l)) return fail(c, field, "invalid tensor name in %s", field);
    if (!(t->name = strndup(s, l))) return loom_err_set(c->e, LOOM_ENOMEM, "out of memory");
    snprintf(field, sizeof field, "tensors[%zu] (%s)", idx, t->name);
    if ((rc = rd(c, &nd, 4, field))) return rc;
    if (nd == 0 || nd > LOOM_GGUF_MAX_DIMS) return fail(c, field, "tensor has an unsupported number of dimensions in %s", field);
    t->n_dims = nd;
    uint64_t n = 1;
    for (uint32_t d = 0; d < LOOM_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < nd; d++) {
        if ((rc = rd(c, &t->ne[d], 8, field))) return rc;
        if (t->ne[d] == 0 || t->ne[d] > (1ull << 40) || n > UINT64_MAX / t->ne[d])
            return fail(c, field, "tensor shape is zero or overflows in %s", field);
        n *= t->ne[d];
    }
    if (n > (1ull << 40)) return fail(c, field, "tensor has too many elements in %s", field);
    t->n_elements = n;
    if ((rc = rd(c, &type, 4, field))) return rc;
    if (!loom_ggml_type_known((int)type)) {
        c->pos -= 4;
        loom_err_set(c->e, LOOM_EPARSE, "unknown or unsupported tensor type %u in %s", type, field);
        loom_err_at(c->e, c->file, 0, 0);
        loom_err_field(c->e, "%s.type", field);
        loom_err_hint(c->e, "supported types: F32, F16, BF16, Q8_0, Q4_0");
        return LOOM_EPARSE;
    }
    t->type = (int)type;
    if (t->ne[0] % blck(t->type)) return fail(c, field, "row length is not a multiple of the block size in %s", field);
    t->nbytes = loom_ggml_row_size(t->type, t->ne[0]) * (n / t->ne[0]);
    return rd(c, offset, 8, field);
}

static void free_all(loom_gguf_t *g) {
    for (size_t i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].strs);
        free(g->kv[i].slens);
    }
    free(g->kv);
    for (size_t i = 0; i < g->n_t; i++) free((char *)g->t[i].name);
    free(g->t);
    if (g->mapped && g->base) munmap((void *)g->base, g->size);
    loom_llm_mem_unmap(&g->mem);
    free(g->name);
    free(g);
}

static int cmp_off(const void *a, const void *b) {
    const loom_gguf_tensor_t *x = *(loom_gguf_tensor_t *const *)a, *y = *(loom_gguf_tensor_t *const *)b;
    return (x->data > y->data) - (x->data < y->data);
}

static int parse(loom_gguf_t *g, loom_err_t *e) {
    cur_t c = {g->base, 0, g->size, g->name, e};
    uint32_t magic, version;
    uint64_t nt, nkv;
    int rc;
    if (g->size < 4) return fail(&c, "header", "file is truncated while reading %s (shorter than the magic)", "header");
    memcpy(&magic, g->base, 4);
    if (magic != GGUF_MAGIC) {
        loom_err_set(e, LOOM_EPARSE, "not a GGUF file (bad magic)");
        loom_err_at(e, g->name, 0, 0);
        loom_err_detail(e, "the first 4 bytes are %02x %02x %02x %02x, expected \"GGUF\"",
                        g->base[0], g->base[1], g->base[2], g->base[3]);
        return LOOM_EPARSE;
    }
    c.pos = 4;
    if ((rc = rd(&c, &version, 4, "version"))) return rc;
    if (version != 3) {
        loom_err_set(e, LOOM_EPARSE, "unsupported GGUF version %u", version);
        loom_err_at(e, g->name, 0, 0);
        loom_err_hint(e, "only GGUF v3 is supported; re-convert the model with a current llama.cpp");
        return LOOM_EPARSE;
    }
    if ((rc = rd(&c, &nt, 8, "tensor_count")) || (rc = rd(&c, &nkv, 8, "metadata_kv_count"))) return rc;
    if (nt > MAX_COUNT || nkv > MAX_COUNT) return fail(&c, "header", "implausible tensor or metadata count in %s", "header");
    if (!(g->kv = calloc(nkv ? nkv : 1, sizeof *g->kv)) || !(g->t = calloc(nt ? nt : 1, sizeof *g->t)))
        return loom_err_set(e, LOOM_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < nkv; i++) {
        g->n_kv = i + 1;
        if ((rc = parse_kv(&c, &g->kv[i]))) return rc;
        for (uint64_t j = 0; j < i; j++)
            if (!strcmp(g->kv[j].key, g->kv[i].key))
                return fail(&c, g->kv[i].key, "duplicate metadata key %s", g->kv[i].key);
    }
    uint64_t align = 32;
    long ai = loom_gguf_find(g, "general.alignment");
    if (ai >= 0) {
        kv_t *v = &g->kv[ai];
        if (v->type != LOOM_GGUF_U32 || v->num.u == 0 || (v->num.u & (v->num.u - 1)) || v->num.u > 65536)
            return fail(&c, "general.alignment", "invalid %s (must be a power of two as u32)", "general.alignment");
        align = v->num.u;
    }
    uint64_t *offs = calloc(nt ? nt : 1, sizeof *offs);
    if (!offs) return loom_err_set(e, LOOM_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < nt; i++) {
        g->n_t = i + 1;
        if ((rc = parse_tensor(&c, &g->t[i], &offs[i], i))) { free(offs); return rc; }
    }
    size_t data_start = (c.pos + align - 1) / align * align;
    g->header_len = c.pos;
    if (data_start > g->size && nt) { free(offs); return fail(&c, "data", "file is truncated before the %s section", "data"); }
    for (uint64_t i = 0; i < nt; i++) {
        loom_gguf_tensor_t *t = &g->t[i];
        char field[320];
        snprintf(field, sizeof field, "tensors[%zu] (%s).offset", (size_t)i, t->name);
        uint64_t off = offs[i];
        if (off % align) { free(offs); return fail(&c, field, "tensor offset is not aligned in %s", field); }
        if (off > g->size - data_start || t->nbytes > g->size - data_start - off) {
            free(offs);
            loom_err_set(e, LOOM_EPARSE, "tensor data lies outside the file (truncated?) in %s", field);
            loom_err_at(e, g->name, 0, 0);
            loom_err_field(e, "%s", field);
            loom_err_detail(e, "data at %zu + %llu, %zu bytes; file has %zu bytes", data_start,
                            (unsigned long long)off, t->nbytes, g->size);
            return LOOM_EPARSE;
        }
        t->data = g->base + data_start + off;
        for (uint64_t j = 0; j < i; j++)
            if (!strcmp(g->t[j].name, t->name)) { free(offs); return fail(&c, field, "duplicate tensor name in %s", field); }
    }
    free(offs);
    /* Tensors must not overlap (a crafted file could alias weights). */
    loom_gguf_tensor_t **ord = malloc((nt ? nt : 1) * sizeof *ord);
    if (!ord) return loom_err_set(e, LOOM_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < nt; i++) ord[i] = &g->t[i];
    qsort(ord, nt, sizeof *ord, cmp_off);
    for (uint64_t i = 1; i < nt; i++)
        if ((const uint8_t *)ord[i - 1]->data + ord[i - 1]->nbytes > (const uint8_t *)ord[i]->data) {
            char field[320];
            snprintf(field, sizeof field, "tensors (%s)", ord[i]->name);
            free(ord);
            return fail(&c, field, "tensor data overlaps another tensor in %s", field);
        }
    free(ord);
    return 0;
}

static int finish(loom_gguf_t *g, loom_gguf_t **out, loom_err_t *e) {
    int rc = parse(g, e);
    if (rc) { free_all(g); return rc; }
    *out = g;
    return 0;
}

int loom_gguf_open_mem(const void *data, size_t n, const char *name, loom_gguf_t **out, loom_err_t *e) {
    *out = NULL;
    loom_gguf_t *g = calloc(1, sizeof *g);
    if (!g || !(g->name = strdup(name ? name : "<memory>"))) { free(g); return loom_err_set(e, LOOM_ENOMEM, "out of memory"); }
    g->base = data;
    g->size = n;
    return finish(g, out, e);
}

/* resident: the weights are about to be used (a model load), so no page of
 * them should fault later: read into huge pages, or (LOOM_LLM_MMAP=1)
 * mapped with every page populated now. Otherwise mapped lazily. */
static int open_file(const char *path, int resident, loom_gguf_t **out, loom_err_t *e) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        loom_err_set(e, errno == ENOENT ? LOOM_ENOTFOUND : LOOM_EIO, "cannot open model file %s", path);
        loom_err_at(e, path, 0, 0);
        loom_err_detail(e, "%s", strerror(errno));
        return e ? e->code : LOOM_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        loom_err_set(e, LOOM_EIO, "model path %s is not a regular file", path);
        return LOOM_EIO;
    }
    loom_gguf_t *g = calloc(1, sizeof *g);
    if (!g || !(g->name = strdup(path))) { free(g); close(fd); return loom_err_set(e, LOOM_ENOMEM, "out of memory"); }
    g->size = (size_t)st.st_size;
    const char *mm = getenv("LOOM_LLM_MMAP");
    int map = !resident || (mm && !strcmp(mm, "1"));
    if (g->size && !map) {
        g->base = loom_llm_mem_read_file(fd, g->size, &g->mem);
        if (!g->base) {
            int err = errno;
            close(fd);
            free(g->name); free(g);
            loom_err_set(e, err == ENOMEM ? LOOM_ENOMEM : LOOM_EIO, "cannot read model file %s into memory", path);
            loom_err_detail(e, "%s", strerror(err));
            return e ? e->code : LOOM_EIO;
        }
    } else if (g->size) {
        void *m = mmap(NULL, g->size, PROT_READ, MAP_PRIVATE | (resident ? MAP_POPULATE : 0), fd, 0);
        if (m == MAP_FAILED) {
            close(fd);
            free(g->name); free(g);
            loom_err_set(e, LOOM_EIO, "cannot map model file %s", path);
            loom_err_detail(e, "%s", strerror(errno));
            return LOOM_EIO;
        }
        g->base = m;
        g->mapped = 1;
    } else {
        g->base = (const uint8_t *)"";
    }
    close(fd);
    return finish(g, out, e);
}

int loom_gguf_open(const char *path, loom_gguf_t **out, loom_err_t *e) { return open_file(path, 0, out, e); }
int loom_gguf_open_resident(const char *path, loom_gguf_t **out, loom_err_t *e) { return open_file(path, 1, out, e); }

void loom_gguf_destroy(loom_gguf_t **pg) {
    if (!pg || !*pg) return;
    free_all(*pg);
    *pg = NULL;
}

const char *loom_gguf_path(const loom_gguf_t *g) { return g->name; }
size_t loom_gguf_file_size(const loom_gguf_t *g) { return g->size; }

void loom_gguf_model_hash(const loom_gguf_t *g, uint8_t out[32]) {
    loom_sha256_t *c = loom_sha256_new();
    uint64_t sz = g->size;
    memset(out, 0, 32);
    if (!c) return;
    loom_sha256_update(c, g->base, g->header_len);
    loom_sha256_update(c, &sz, sizeof sz);
    loom_sha256_final(c, out);
    loom_sha256_destroy(&c);
}

size_t loom_gguf_n_kv(const loom_gguf_t *g) { return g->n_kv; }
const char *loom_gguf_kv_key(const loom_gguf_t *g, size_t i) { return i < g->n_kv ? g->kv[i].key : NULL; }
int loom_gguf_kv_type(const loom_gguf_t *g, size_t i) { return i < g->n_kv ? g->kv[i].type : -1; }

long loom_gguf_find(const loom_gguf_t *g, const char *key) {
    for (size_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key)) return (long)i;
    return -1;
}

static int bad_type(loom_gguf_t const *g, const char *key, const char *want, loom_err_t *e) {
    loom_err_set(e, LOOM_EINVAL, "metadata %s has the wrong type (want %s)", key, want);
    loom_err_at(e, g->name, 0, 0);
    loom_err_field(e, "%s", key);
    return LOOM_EINVAL;
}

static int is_int(int t) {
    return t == LOOM_GGUF_U8 || t == LOOM_GGUF_I8 || t == LOOM_GGUF_U16 || t == LOOM_GGUF_I16 ||
           t == LOOM_GGUF_U32 || t == LOOM_GGUF_I32 || t == LOOM_GGUF_U64 || t == LOOM_GGUF_I64;
}
static int is_signed(int t) { return t == LOOM_GGUF_I8 || t == LOOM_GGUF_I16 || t == LOOM_GGUF_I32 || t == LOOM_GGUF_I64; }

int loom_gguf_get_u32(const loom_gguf_t *g, const char *key, uint32_t *out, loom_err_t *e) {
    long i = loom_gguf_find(g, key);
    if (i < 0) return LOOM_ENOTFOUND;
    const kv_t *v = &g->kv[i];
    if (!is_int(v->type)) return bad_type(g, key, "integer", e);
    if (is_signed(v->type) ? (v->num.i < 0 || v->num.i > (int64_t)UINT32_MAX) : v->num.u > UINT32_MAX)
        return bad_type(g, key, "integer in 0..2^32-1", e);
    *out = is_signed(v->type) ? (uint32_t)v->num.i : (uint32_t)v->num.u;
    return 0;
}

int loom_gguf_get_f32(const loom_gguf_t *g, const char *key, float *out, loom_err_t *e) {
    long i = loom_gguf_find(g, key);
    if (i < 0) return LOOM_ENOTFOUND;
    const kv_t *v = &g->kv[i];
    if (v->type != LOOM_GGUF_F32 && v->type != LOOM_GGUF_F64) return bad_type(g, key, "float", e);
    if (!isfinite(v->num.f)) return bad_type(g, key, "finite float", e);
    *out = (float)v->num.f;
    return 0;
}

int loom_gguf_get_bool(const loom_gguf_t *g, const char *key, int *out, loom_err_t *e) {
    long i = loom_gguf_find(g, key);
    if (i < 0) return LOOM_ENOTFOUND;
    if (g->kv[i].type != LOOM_GGUF_BOOL) return bad_type(g, key, "bool", e);
    *out = (int)g->kv[i].num.u;
    return 0;
}

int loom_gguf_get_str(const loom_gguf_t *g, const char *key, const char **s, size_t *len, loom_err_t *e) {
    long i = loom_gguf_find(g, key);
    if (i < 0) return LOOM_ENOTFOUND;
    if (g->kv[i].type != LOOM_GGUF_STRING) return bad_type(g, key, "string", e);
    *s = g->kv[i].str;
    *len = g->kv[i].len;
    return 0;
}

int loom_gguf_get_arr(const loom_gguf_t *g, const char *key, int *etype, uint64_t *n, const void **raw,
                      loom_err_t *e) {
    long i = loom_gguf_find(g, key);
    if (i < 0) return LOOM_ENOTFOUND;
    if (g->kv[i].type != LOOM_GGUF_ARRAY) return bad_type(g, key, "array", e);
    *etype = g->kv[i].etype;
    *n = g->kv[i].len;
    *raw = g->kv[i].raw;
    return 0;
}

int loom_gguf_arr_str(const loom_gguf_t *g, const char *key, uint64_t idx, const char **s, size_t *len) {
    long i = loom_gguf_find(g, key);
    if (i < 0) return LOOM_ENOTFOUND;
    const kv_t *v = &g->kv[i];
    if (v->type != LOOM_GGUF_ARRAY || v->etype != LOOM_GGUF_STRING) return LOOM_EINVAL;
    if (idx >= v->len) return LOOM_EINVAL;
    *s = v->strs[idx];
    *len = v->slens[idx];
    return 0;
}

size_t loom_gguf_n_tensors(const loom_gguf_t *g) { return g->n_t; }
const loom_gguf_tensor_t *loom_gguf_tensor(const loom_gguf_t *g, size_t i) { return i < g->n_t ? &g->t[i] : NULL; }

const loom_gguf_tensor_t *loom_gguf_find_tensor(const loom_gguf_t *g, const char *name) {
    for (size_t i = 0; i < g->n_t; i++)
        if (!strcmp(g->t[i].name, name)) return &g->t[i];
    return NULL;
}

/* ---- number formats ---- */
float loom_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t loom_fp32_to_fp16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t man = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = sign | ((uint32_t)exp << 10) | (man >> 13), rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* may carry into the exponent: correct */
    return (uint16_t)h;
}

float loom_bf16_to_fp32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void loom_ggml_dequant_row(int type, const void *src, float *dst, size_t n) {
    const uint8_t *p = src;
    switch (type) {
    case LOOM_GGML_F32: memcpy(dst, src, n * 4); break;
    case LOOM_GGML_F16:
        for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); dst[i] = loom_fp16_to_fp32(h); }
        break;
    case LOOM_GGML_BF16:
        for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); dst[i] = loom_bf16_to_fp32(h); }
        break;
    case LOOM_GGML_Q8_0:
        for (size_t b = 0; b < n / 32; b++, p += 34) {
            uint16_t h; memcpy(&h, p, 2);
            float d = loom_fp16_to_fp32(h);
            for (int j = 0; j < 32; j++) dst[b * 32 + j] = (float)(int8_t)p[2 + j] * d;
        }
        break;
    case LOOM_GGML_Q4_0:
        for (size_t b = 0; b < n / 32; b++, p += 18) {
            uint16_t h; memcpy(&h, p, 2);
            float d = loom_fp16_to_fp32(h);
            for (int j = 0; j < 16; j++) {
                dst[b * 32 + j] = (float)((p[2 + j] & 15) - 8) * d;
                dst[b * 32 + j + 16] = (float)((p[2 + j] >> 4) - 8) * d;
            }
        }
        break;
    default: memset(dst, 0, n * 4);
    }
}

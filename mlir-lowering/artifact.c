/* artifact.c — content-addressed cache of compiled units (see artifact.h).
 *
 * Encoded form: one header line, then the payload bytes:
 *   loom-artifact 1 <hash> <target> <arch|-> <func> <nargs> <len>
 *        <arg>... where <arg> is elem:rank:d0xd1:in|out (e.g. f32:2:4x8:in)
 *   <payload: len bytes>
 */
#include "mlir-lowering/artifact.h"

#include "common/map.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FORMAT "loom-artifact-v1"

typedef struct {
    loom_artifact_t a;
    char *payload;        /* owned */
    loom_jit_t *jit;      /* CPU/NPU, made on first use */
} entry_t;

struct loom_artifact_cache {
    loom_mlir_t *m;
    char *dir;
    loom_map_t *mem;      /* hash -> entry_t* */
    unsigned long compiles, mem_hits, disk_hits;
};

static void entry_free(void *p)
{
    entry_t *e = p;
    if (!e)
        return;
    loom_jit_destroy(&e->jit);
    free(e->payload);
    free(e);
}

loom_artifact_cache_t *loom_artifact_cache_new(loom_mlir_t *m, const char *dir, loom_err_t *err)
{
    loom_artifact_cache_t *c = calloc(1, sizeof *c);
    if (!c || !(c->mem = loom_map_new(entry_free))) {
        free(c);
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        return NULL;
    }
    c->m = m;
    if (dir) {
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            loom_err_set(err, LOOM_EIO, "artifact cache %s: %s", dir, strerror(errno));
            loom_artifact_cache_destroy(&c);
            return NULL;
        }
        c->dir = strdup(dir);
    }
    return c;
}

void loom_artifact_cache_destroy(loom_artifact_cache_t **pc)
{
    if (!pc || !*pc)
        return;
    loom_map_destroy(&(*pc)->mem);
    free((*pc)->dir);
    free(*pc);
    *pc = NULL;
}

void loom_artifact_stats(const loom_artifact_cache_t *c, unsigned long *compiles,
                         unsigned long *mem_hits, unsigned long *disk_hits)
{
    if (compiles)
        *compiles = c->compiles;
    if (mem_hits)
        *mem_hits = c->mem_hits;
    if (disk_hits)
        *disk_hits = c->disk_hits;
}

int loom_artifact_key(const char *src, size_t n, loom_target_kind_t t, const char *arch,
                      char out[LOOM_SHA256_HEX_LEN])
{
    char pipe[1024];
    const char *tn = loom_target_name(t);
    const char *ar = t == LOOM_TARGET_GPU && arch ? arch : "";
    char script[16384];
    loom_codegen_pipeline(t, ar, pipe, sizeof pipe);
    loom_codegen_transform(t, script, sizeof script);
    loom_sha256_t *h = loom_sha256_new();
    uint8_t d[LOOM_SHA256_LEN];
    if (!h)
        return LOOM_ENOMEM;
    int rc = loom_sha256_update(h, FORMAT, sizeof FORMAT);
    rc = rc ? rc : loom_sha256_update(h, tn, strlen(tn) + 1);
    rc = rc ? rc : loom_sha256_update(h, ar, strlen(ar) + 1);
    rc = rc ? rc : loom_sha256_update(h, pipe, strlen(pipe) + 1);
    rc = rc ? rc : loom_sha256_update(h, script, strlen(script) + 1);
    rc = rc ? rc : loom_sha256_update(h, src, n);
    rc = rc ? rc : loom_sha256_final(h, d);
    loom_sha256_destroy(&h);
    if (!rc)
        loom_hex(d, sizeof d, out);
    return rc;
}

static const char *elem_str(loom_elem_t e)
{
    return e == LOOM_ELEM_F32 ? "f32" : e == LOOM_ELEM_I32 ? "i32" : "i8";
}

int loom_artifact_encode(const loom_artifact_t *a, loom_buf_t *out)
{
    int rc = loom_buf_printf(out, "loom-artifact 1 %s %s %s %s %d %zu", a->hash, loom_target_name(a->target),
                             a->arch[0] ? a->arch : "-", a->sig.func, a->sig.nargs, a->len);
    for (int i = 0; i < a->sig.nargs && !rc; i++) {
        const loom_kernel_arg_t *g = &a->sig.args[i];
        rc = loom_buf_printf(out, " %s:%d:%ldx%ld:%s", elem_str(g->elem), g->rank, g->shape[0],
                             g->rank == 2 ? g->shape[1] : 0L, g->is_input ? "in" : "out");
    }
    if (!rc)
        rc = loom_buf_putc(out, '\n');
    if (!rc)
        rc = loom_buf_append(out, a->payload, a->len);
    return rc;
}

/* Parses the encoded form into a new entry (caller frees with entry_free). */
static int decode(const char *data, size_t n, entry_t **out, loom_err_t *err)
{
    const char *nl = memchr(data, '\n', n < 4096 ? n : 4096);
    char line[4096], tname[8], arch[16], func[32], hash[LOOM_SHA256_HEX_LEN];
    int nargs, off = 0;
    size_t len;
    if (!nl)
        return loom_err_set(err, LOOM_EPARSE, "artifact: no header line");
    memcpy(line, data, (size_t)(nl - data));
    line[nl - data] = '\0';
    if (sscanf(line, "loom-artifact 1 %64s %7s %15s %31s %d %zu%n", hash, tname, arch, func, &nargs,
               &len, &off) != 6 ||
        strlen(hash) != 64 || nargs < 0 || nargs > LOOM_KERNEL_MAX_ARGS)
        return loom_err_set(err, LOOM_EPARSE, "artifact: malformed header");
    size_t body = (size_t)(nl + 1 - data);
    if (len != n - body)
        return loom_err_set(err, LOOM_EPARSE, "artifact: payload is %zu bytes, header says %zu", n - body, len);
    entry_t *e = calloc(1, sizeof *e);
    if (!e)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    if (loom_target_parse(tname, &e->a.target)) {
        entry_free(e);
        return loom_err_set(err, LOOM_EPARSE, "artifact: unknown target '%s'", tname);
    }
    snprintf(e->a.hash, sizeof e->a.hash, "%s", hash);
    snprintf(e->a.arch, sizeof e->a.arch, "%s", strcmp(arch, "-") == 0 ? "" : arch);
    snprintf(e->a.sig.func, sizeof e->a.sig.func, "%s", func);
    const char *p = line + off;
    for (int i = 0; i < nargs; i++) {
        loom_kernel_arg_t *g = &e->a.sig.args[i];
        char el[8], io[4];
        int used = 0;
        if (sscanf(p, " %7[a-z0-9]:%d:%ldx%ld:%3[a-z]%n", el, &g->rank, &g->shape[0], &g->shape[1], io,
                   &used) != 5 ||
            g->rank < 1 || g->rank > 2 || g->shape[0] < 1 || (g->rank == 2 && g->shape[1] < 1) ||
            g->shape[0] > (1L << 30) || g->shape[1] > (1L << 30)) {
            entry_free(e);
            return loom_err_set(err, LOOM_EPARSE, "artifact: malformed argument %d", i);
        }
        g->elem = strcmp(el, "f32") == 0 ? LOOM_ELEM_F32 : strcmp(el, "i32") == 0 ? LOOM_ELEM_I32
                : strcmp(el, "i8") == 0  ? LOOM_ELEM_I8 : 0;
        if (!g->elem) {
            entry_free(e);
            return loom_err_set(err, LOOM_EPARSE, "artifact: argument %d has element type '%s'", i, el);
        }
        g->is_input = strcmp(io, "in") == 0;
        snprintf(g->name, sizeof g->name, "arg%d", i);
        p += used;
    }
    e->a.sig.nargs = nargs;
    e->payload = malloc(len + 1);
    if (!e->payload) {
        entry_free(e);
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    }
    memcpy(e->payload, data + body, len);
    e->payload[len] = '\0';
    e->a.payload = e->payload;
    e->a.len = len;
    *out = e;
    return 0;
}

static int write_disk(loom_artifact_cache_t *c, const loom_artifact_t *a)
{
    if (!c->dir)
        return 0;
    loom_buf_t b = LOOM_BUF_INIT;
    char path[4096], tmp[4200];
    int rc = loom_artifact_encode(a, &b);
    snprintf(path, sizeof path, "%s/%s.art", c->dir, a->hash);
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    FILE *f = rc ? NULL : fopen(tmp, "wb");
    if (!f || fwrite(b.data, 1, b.len, f) != b.len) {
        rc = LOOM_EIO;
    }
    if (f && fclose(f) != 0)
        rc = LOOM_EIO;
    if (!rc && rename(tmp, path) != 0)
        rc = LOOM_EIO;
    if (rc)
        unlink(tmp);
    loom_buf_free(&b);
    return rc;
}

static int read_disk(loom_artifact_cache_t *c, const char *hash, entry_t **out, loom_err_t *err)
{
    char path[4096];
    if (!c->dir)
        return LOOM_ENOTFOUND;
    snprintf(path, sizeof path, "%s/%s.art", c->dir, hash);
    loom_buf_t b = LOOM_BUF_INIT;
    if (loom_buf_read_file(&b, path) != 0) {
        loom_buf_free(&b);
        return LOOM_ENOTFOUND;
    }
    int rc = 0;
    if (!rc)
        rc = decode(b.data ? b.data : "", b.len, out, err);
    if (!rc && strcmp((*out)->a.hash, hash) != 0) { /* renamed or corrupted file */
        entry_free(*out);
        rc = loom_err_set(err, LOOM_EPARSE, "%s: hash in file does not match its name", path);
    }
    loom_buf_free(&b);
    return rc;
}

static int remember(loom_artifact_cache_t *c, entry_t *e, loom_err_t *err)
{
    if (loom_map_put(c->mem, e->a.hash, e)) {
        entry_free(e);
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    }
    return 0;
}

int loom_artifact_get(loom_artifact_cache_t *c, const char *hash, const loom_artifact_t **out,
                      loom_err_t *err)
{
    entry_t *e = loom_map_get(c->mem, hash);
    if (e) {
        c->mem_hits++;
        *out = &e->a;
        return 0;
    }
    int rc = read_disk(c, hash, &e, err);
    if (rc)
        return rc == LOOM_ENOTFOUND ? loom_err_set(err, LOOM_ENOTFOUND, "no artifact %s", hash) : rc;
    if ((rc = remember(c, e, err)))
        return rc;
    c->disk_hits++;
    *out = &e->a;
    return 0;
}

int loom_artifact_compile(loom_artifact_cache_t *c, const char *src, size_t n, const char *filename,
                          loom_target_kind_t t, const char *arch, const loom_kernel_sig_t *sig,
                          const loom_artifact_t **out, int *hit, loom_err_t *err)
{
    char hash[LOOM_SHA256_HEX_LEN];
    int rc = loom_artifact_key(src, n, t, arch, hash);
    if (rc)
        return loom_err_set(err, rc, "hashing the kernel failed");
    entry_t *e = loom_map_get(c->mem, hash);
    if (e) {
        c->mem_hits++;
        *out = &e->a;
        if (hit)
            *hit = 1;
        return 0;
    }
    if (read_disk(c, hash, &e, NULL) == 0) {
        if ((rc = remember(c, e, err)))
            return rc;
        c->disk_hits++;
        *out = &e->a;
        if (hit)
            *hit = 2;
        return 0;
    }
    if (!c->m)
        return loom_err_set(err, LOOM_EUNAVAIL, "this artifact cache cannot compile (no MLIR context)");
    e = calloc(1, sizeof *e);
    if (!e)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    snprintf(e->a.hash, sizeof e->a.hash, "%s", hash);
    e->a.target = t;
    loom_buf_t payload = LOOM_BUF_INIT;
    rc = loom_codegen_signature(c->m, src, n, filename, &e->a.sig, err);
    if (!rc && sig) {
        if (sig->nargs != e->a.sig.nargs || strcmp(sig->func, e->a.sig.func) != 0)
            rc = loom_err_set(err, LOOM_EINVAL, "%s: kernel @%s does not match the given signature",
                              filename, e->a.sig.func);
        else
            e->a.sig = *sig;
    }
    if (!rc && t == LOOM_TARGET_GPU) {
        loom_gpu_unit_t u;
        snprintf(e->a.arch, sizeof e->a.arch, "%s", arch ? arch : "");
        rc = loom_codegen_ptx(c->m, src, n, filename, arch, &u, err);
        if (!rc) {
            if (loom_gpu_unit_write(&u, &payload))
                rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
            loom_gpu_unit_free(&u);
        }
    } else if (!rc) {
        rc = loom_codegen_llvm(c->m, src, n, filename, &payload, err);
    }
    if (rc) {
        loom_buf_free(&payload);
        entry_free(e);
        return rc;
    }
    e->a.payload = e->payload = loom_buf_detach(&payload, &e->a.len);
    c->compiles++;
    write_disk(c, &e->a); /* best effort: the memory copy serves either way */
    if ((rc = remember(c, e, err)))
        return rc;
    *out = &e->a;
    if (hit)
        *hit = 0;
    return 0;
}

int loom_artifact_put(loom_artifact_cache_t *c, const char *data, size_t n,
                      const loom_artifact_t **out, loom_err_t *err)
{
    entry_t *e = NULL;
    int rc = decode(data, n, &e, err);
    if (rc)
        return rc;
    entry_t *have = loom_map_get(c->mem, e->a.hash);
    if (have) {
        entry_free(e);
        if (out)
            *out = &have->a;
        return 0;
    }
    write_disk(c, &e->a);
    if ((rc = remember(c, e, err)))
        return rc;
    if (out)
        *out = &e->a;
    return 0;
}

int loom_artifact_jit(loom_artifact_cache_t *c, const loom_artifact_t *a, loom_jit_t **out,
                      loom_err_t *err)
{
    entry_t *e = loom_map_get(c->mem, a->hash);
    if (!e)
        return loom_err_set(err, LOOM_ENOTFOUND, "artifact %s is not in this cache", a->hash);
    if (a->target == LOOM_TARGET_GPU)
        return loom_err_set(err, LOOM_EINVAL, "artifact %s is GPU code; it is launched, not JIT-compiled",
                            a->hash);
    if (!c->m)
        return loom_err_set(err, LOOM_EUNAVAIL, "this artifact cache has no MLIR context for the JIT");
    if (!e->jit) {
        int rc = loom_jit_new(c->m, e->payload, e->a.len, &e->jit, err);
        if (rc)
            return rc;
    }
    *out = e->jit;
    return 0;
}

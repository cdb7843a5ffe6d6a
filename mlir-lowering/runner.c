/* runner.c — compute / vector.search tasks on compiled kernels (runner.h). */
#include "mlir-lowering/runner.h"

#include "common/buf.h"
#include "mlir-lowering/artifact.h"
#include "mlir-lowering/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ELEMS (16L << 20) /* per buffer: bounds memory a task can ask for */

struct loom_kernel_runner {
    loom_target_kind_t target;
    loom_mlir_t *m;
    loom_artifact_cache_t *cache;
    char arch[16];           /* GPU */
    loom_gpu_exec_fn exec;   /* GPU */
    void *exec_ud;
};

loom_kernel_runner_t *loom_kernel_runner_new(loom_target_kind_t target, const char *cache_dir,
                                             loom_err_t *err)
{
    loom_kernel_runner_t *r = calloc(1, sizeof *r);
    if (!r) {
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        return NULL;
    }
    r->target = target == LOOM_TARGET_NPU ? LOOM_TARGET_NPU : LOOM_TARGET_CPU;
    if (!(r->m = loom_mlir_new(err)) || !(r->cache = loom_artifact_cache_new(r->m, cache_dir, err))) {
        loom_kernel_runner_destroy(&r);
        return NULL;
    }
    return r;
}

loom_kernel_runner_t *loom_kernel_runner_new_gpu(const char *arch, loom_gpu_exec_fn exec, void *ud,
                                                 const char *cache_dir, loom_err_t *err)
{
    if (!arch || strncmp(arch, "sm_", 3) != 0 || strlen(arch) >= 16 || !exec) {
        loom_err_set(err, LOOM_EINVAL, "GPU runner needs an sm_XX arch and an executor");
        return NULL;
    }
    loom_kernel_runner_t *r = loom_kernel_runner_new(LOOM_TARGET_CPU, cache_dir, err);
    if (r) {
        r->target = LOOM_TARGET_GPU;
        snprintf(r->arch, sizeof r->arch, "%s", arch);
        r->exec = exec;
        r->exec_ud = ud;
    }
    return r;
}

void loom_kernel_runner_destroy(loom_kernel_runner_t **pr)
{
    if (!pr || !*pr)
        return;
    loom_artifact_cache_destroy(&(*pr)->cache);
    loom_mlir_destroy(&(*pr)->m);
    free(*pr);
    *pr = NULL;
}

void loom_kernel_runner_stats(const loom_kernel_runner_t *r, unsigned long *compiles, unsigned long *hits)
{
    unsigned long c = 0, mh = 0, dh = 0;
    loom_artifact_stats(r->cache, &c, &mh, &dh);
    if (compiles)
        *compiles = c;
    if (hits)
        *hits = mh + dh;
}

/* ---- JSON buffers ------------------------------------------------------ */

/* Shape of a JSON number array (1-D) or array of equal-length arrays (2-D). */
static int json_shape(const json_t *v, long shape[2], int *rank)
{
    if (!json_is_array(v) || json_array_size(v) == 0)
        return -1;
    json_t *first = json_array_get(v, 0);
    if (json_is_number(first)) {
        *rank = 1, shape[0] = (long)json_array_size(v), shape[1] = 0;
        return 0;
    }
    if (!json_is_array(first) || json_array_size(first) == 0)
        return -1;
    *rank = 2, shape[0] = (long)json_array_size(v), shape[1] = (long)json_array_size(first);
    return 0;
}

/* Copies JSON numbers (flat or nested, row-major) into a buffer of arg a. */
static int json_fill(const json_t *v, const loom_kernel_arg_t *a, void *buf, const char *field, loom_err_t *err)
{
    size_t want = loom_kernel_arg_bytes(a) / (a->elem == LOOM_ELEM_I8 ? 1 : 4), k = 0;
    size_t rows = json_array_size(v);
    for (size_t i = 0; i < rows; i++) {
        json_t *row = json_array_get(v, i);
        size_t cols = json_is_array(row) ? json_array_size(row) : 1;
        for (size_t j = 0; j < cols; j++) {
            json_t *x = json_is_array(row) ? json_array_get(row, j) : row;
            if (!json_is_number(x))
                return loom_err_set(err, LOOM_EINVAL, "%s: element %zu is not a number", field, k);
            if (k >= want)
                return loom_err_set(err, LOOM_EINVAL, "%s: more than the %zu elements the kernel takes", field, want);
            double d = json_number_value(x);
            if (a->elem == LOOM_ELEM_F32)
                ((float *)buf)[k] = (float)d;
            else if (a->elem == LOOM_ELEM_I32)
                ((int32_t *)buf)[k] = (int32_t)d;
            else
                ((int8_t *)buf)[k] = (int8_t)d;
            k++;
        }
    }
    if (k != want)
        return loom_err_set(err, LOOM_EINVAL, "%s: %zu elements, the kernel takes %zu", field, k, want);
    return 0;
}

static json_t *json_from(const loom_kernel_arg_t *a, const void *buf)
{
    long rows = a->rank == 2 ? a->shape[0] : 1, cols = a->rank == 2 ? a->shape[1] : a->shape[0];
    json_t *out = json_array();
    for (long i = 0; i < rows && out; i++) {
        json_t *row = a->rank == 2 ? json_array() : out;
        for (long j = 0; j < cols; j++) {
            long k = i * cols + j;
            json_t *x = a->elem == LOOM_ELEM_F32 ? json_real(((const float *)buf)[k])
                      : a->elem == LOOM_ELEM_I32 ? json_integer(((const int32_t *)buf)[k])
                                                 : json_integer(((const int8_t *)buf)[k]);
            json_array_append_new(row, x);
        }
        if (a->rank == 2)
            json_array_append_new(out, row);
    }
    return out;
}

/* ---- compiled call --------------------------------------------------------- */

/* Compiles (or finds) src and calls it with bufs. */
static int call_gpu(loom_kernel_runner_t *r, const loom_artifact_t *a, void **bufs, loom_err_t *err)
{
    loom_gpu_unit_t u;
    size_t bytes[LOOM_KERNEL_MAX_ARGS];
    int out[LOOM_KERNEL_MAX_ARGS];
    int rc = loom_gpu_unit_read(a->payload, a->len, &u, err);
    if (rc)
        return rc;
    for (int i = 0; i < a->sig.nargs; i++) {
        bytes[i] = loom_kernel_arg_bytes(&a->sig.args[i]);
        /* A user kernel may write any argument (its signature marks all as
         * inputs): bring every buffer back; built-ins skip their inputs. */
        out[i] = !a->sig.args[i].is_input || strncmp(a->sig.args[i].name, "arg", 3) == 0;
    }
    rc = r->exec(r->exec_ud, &u, (void *const *)bufs, bytes, out, a->sig.nargs, err);
    loom_gpu_unit_free(&u);
    return rc;
}

static int call(loom_kernel_runner_t *r, const char *src, size_t n, const char *name,
                const loom_kernel_sig_t *sig, void **bufs, const loom_artifact_t **art, loom_err_t *err)
{
    int hit;
    loom_jit_t *j;
    int rc = loom_artifact_compile(r->cache, src, n, name, r->target, r->arch, sig, art, &hit, err);
    if (!rc && r->target == LOOM_TARGET_GPU)
        return call_gpu(r, *art, bufs, err);
    if (!rc)
        rc = loom_artifact_jit(r->cache, *art, &j, err);
    if (!rc)
        rc = loom_jit_call(j, &(*art)->sig, bufs, err);
    return rc;
}

static void free_bufs(void **bufs, int n)
{
    for (int i = 0; i < n; i++)
        free(bufs[i]);
}

static int alloc_bufs(const loom_kernel_sig_t *sig, void **bufs, loom_err_t *err)
{
    for (int i = 0; i < sig->nargs; i++) {
        size_t nb = loom_kernel_arg_bytes(&sig->args[i]);
        if (nb / 4 > (size_t)MAX_ELEMS || !(bufs[i] = calloc(1, nb ? nb : 1))) {
            free_bufs(bufs, i);
            return loom_err_set(err, LOOM_ETOOBIG, "kernel buffer %s is too large", sig->args[i].name);
        }
    }
    return 0;
}

static int arg_index(const loom_kernel_sig_t *sig, const char *name)
{
    for (int i = 0; i < sig->nargs; i++)
        if (strcmp(sig->args[i].name, name) == 0)
            return i;
    return -1;
}

/* Per-tensor symmetric int8 scale: max |x| / 127 (1 when all zero). */
static float q_scale(const float *x, size_t n)
{
    float mx = 0;
    for (size_t i = 0; i < n; i++)
        mx = fmaxf(mx, fabsf(x[i]));
    return mx > 0 ? mx / 127.0f : 1.0f;
}

/* GPU vector.search: the kernel scored; pick the top k here, with the
 * CPU kernel's rule (best first, ties to the lower index). Appends the idx
 * and top buffers to sig/bufs. */
static int host_topk(loom_kernel_sig_t *sig, void **bufs, int k, loom_err_t *err)
{
    const float *sc = bufs[2];
    long n = sig->args[2].shape[0];
    int32_t *idx = calloc((size_t)k, sizeof *idx);
    float *top = calloc((size_t)k, sizeof *top);
    if (!idx || !top || sig->nargs + 2 > LOOM_KERNEL_MAX_ARGS) {
        free(idx), free(top);
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    }
    for (int t = 0; t < k; t++) {
        float best = -INFINITY;
        int32_t bi = -1;
        for (long i = 0; i < n; i++) {
            int taken = 0;
            for (int u = 0; u < t && !taken; u++)
                taken = idx[u] == (int32_t)i;
            if (!taken && sc[i] > best)
                best = sc[i], bi = (int32_t)i;
        }
        idx[t] = bi, top[t] = best;
    }
    loom_kernel_arg_t a = {.elem = LOOM_ELEM_I32, .rank = 1, .shape = {k, 0}};
    snprintf(a.name, sizeof a.name, "idx");
    sig->args[sig->nargs] = a;
    bufs[sig->nargs++] = idx;
    a.elem = LOOM_ELEM_F32;
    snprintf(a.name, sizeof a.name, "top");
    sig->args[sig->nargs] = a;
    bufs[sig->nargs++] = top;
    return 0;
}

static int shape_of(const json_t *args, const char *name, int want_rank, long shape[2], loom_err_t *err)
{
    int rank;
    const json_t *v = json_object_get(args, name);
    if (!v)
        return loom_err_set(err, LOOM_EINVAL, "args.%s is missing", name);
    if (json_shape(v, shape, &rank) != 0 || rank != want_rank)
        return loom_err_set(err, LOOM_EINVAL, "args.%s must be a %s of numbers", name,
                            want_rank == 2 ? "non-empty list of equal-length lists" : "non-empty list");
    if (shape[0] > MAX_ELEMS || shape[1] > MAX_ELEMS)
        return loom_err_set(err, LOOM_ETOOBIG, "args.%s is too large", name);
    return 0;
}

/* The m x n shape of softmax/rmsnorm's x: a list of rows, or a flat list
 * (row-major) whose shape is args.m x args.n, or one row when m and n are
 * absent. *flat tells the caller to return y flat too (same shape as x). */
static int shape_rows(const json_t *args, long shape[2], int *flat, loom_err_t *err)
{
    int rank;
    const json_t *v = json_object_get(args, "x"), *jm = json_object_get(args, "m"), *jn = json_object_get(args, "n");
    if (!v)
        return loom_err_set(err, LOOM_EINVAL, "args.x is missing");
    if (json_shape(v, shape, &rank) != 0)
        return loom_err_set(err, LOOM_EINVAL,
                            "args.x must be a non-empty list of numbers or of equal-length lists of numbers");
    *flat = rank == 1;
    long count = rank == 1 ? shape[0] : shape[0] * shape[1];
    if (jm || jn) {
        if (!json_is_integer(jm) || !json_is_integer(jn) || json_integer_value(jm) < 1 ||
            json_integer_value(jn) < 1)
            return loom_err_set(err, LOOM_EINVAL, "args.m and args.n (the shape of args.x) must both be positive integers");
        long m = (long)json_integer_value(jm), n = (long)json_integer_value(jn);
        if (m > MAX_ELEMS || n > MAX_ELEMS || m * n > MAX_ELEMS)
            return loom_err_set(err, LOOM_ETOOBIG, "args.m x args.n (%ldx%ld) is too large", m, n);
        if (count != m * n || (rank == 2 && (shape[0] != m || shape[1] != n)))
            return loom_err_set(err, LOOM_EINVAL, "args.x has %ld elements (%s) but args.m x args.n is %ldx%ld", count,
                                rank == 1 ? "flat" : "rows", m, n);
        shape[0] = m, shape[1] = n;
    } else if (rank == 1) {
        shape[1] = shape[0], shape[0] = 1;
    }
    if (shape[0] > MAX_ELEMS || shape[1] > MAX_ELEMS || count > MAX_ELEMS)
        return loom_err_set(err, LOOM_ETOOBIG, "args.x is too large");
    return 0;
}

/* [[...], ...] -> [...] (row-major); takes ownership of rows. */
static json_t *json_flatten(json_t *rows)
{
    json_t *out = json_array(), *row, *x;
    size_t i, j;
    json_array_foreach(rows, i, row) json_array_foreach(row, j, x) json_array_append(out, x);
    json_decref(rows);
    return out;
}

static int builtin(loom_kernel_runner_t *r, loom_kernel_kind_t kind, const json_t *args, json_t **out,
                   loom_err_t *err)
{
    loom_kernel_spec_t s = {.kind = kind, .k = 1, .topk = 4, .eps = 1e-5f};
    long sa[2], sb[2];
    int rc = 0, flat = 0;
    static const char *outs[][4] = {
        [LOOM_KERNEL_MATMUL] = {"c"}, [LOOM_KERNEL_SOFTMAX] = {"y"}, [LOOM_KERNEL_RMSNORM] = {"y"},
        [LOOM_KERNEL_VSEARCH] = {"scores", "idx", "top"}, [LOOM_KERNEL_QMATMUL] = {"c", "acc"},
    };
    switch (kind) {
    case LOOM_KERNEL_MATMUL:
        if ((rc = shape_of(args, "a", 2, sa, err)) || (rc = shape_of(args, "b", 2, sb, err)))
            return rc;
        if (sa[1] != sb[0])
            return loom_err_set(err, LOOM_EINVAL, "matmul: a is %ldx%ld but b is %ldx%ld", sa[0], sa[1], sb[0], sb[1]);
        s.m = (int)sa[0], s.k = (int)sa[1], s.n = (int)sb[1];
        if (r->target == LOOM_TARGET_NPU)
            s.kind = LOOM_KERNEL_QMATMUL; /* the NPU computes in int8 */
        break;
    case LOOM_KERNEL_SOFTMAX:
    case LOOM_KERNEL_RMSNORM:
        if ((rc = shape_rows(args, sa, &flat, err)))
            return rc;
        s.m = (int)sa[0], s.n = (int)sa[1];
        if (json_is_number(json_object_get(args, "eps")))
            s.eps = (float)json_number_value(json_object_get(args, "eps"));
        s.gpu_warps = r->target == LOOM_TARGET_GPU; /* a warp per row */
        break;
    case LOOM_KERNEL_VSEARCH:
        if ((rc = shape_of(args, "d", 2, sa, err)))
            return rc;
        s.m = 1, s.n = (int)sa[0], s.k = (int)sa[1];
        if (json_is_integer(json_object_get(args, "topk")))
            s.topk = (int)json_integer_value(json_object_get(args, "topk"));
        s.scores_only = r->target == LOOM_TARGET_GPU; /* top-k is selected on the host */
        break;
    default:
        return loom_err_set(err, LOOM_EINVAL, "kernel %s cannot be called directly", loom_kernel_kind_name(kind));
    }
    loom_buf_t src = LOOM_BUF_INIT;
    loom_kernel_sig_t sig;
    void *bufs[LOOM_KERNEL_MAX_ARGS] = {0};
    const loom_artifact_t *art;
    if ((rc = loom_kernel_source(&s, 0, &src, &sig, err)) || (rc = alloc_bufs(&sig, bufs, err))) {
        loom_buf_free(&src);
        return rc;
    }
    for (int i = 0; i < sig.nargs && !rc; i++) {
        const loom_kernel_arg_t *a = &sig.args[i];
        if (!a->is_input || !strcmp(a->name, "sa") || !strcmp(a->name, "sb"))
            continue;
        const json_t *v = json_object_get(args, a->name);
        char field[48];
        snprintf(field, sizeof field, "args.%s", a->name);
        rc = v ? json_fill(v, a, bufs[i], field, err) : loom_err_set(err, LOOM_EINVAL, "%s is missing", field);
    }
    if (!rc && s.kind == LOOM_KERNEL_QMATMUL) {
        *(float *)bufs[arg_index(&sig, "sa")] = q_scale(bufs[0], (size_t)s.m * (size_t)s.k);
        *(float *)bufs[arg_index(&sig, "sb")] = q_scale(bufs[1], (size_t)s.k * (size_t)s.n);
    }
    if (!rc)
        rc = call(r, src.data, src.len, loom_kernel_kind_name(s.kind), &sig, bufs, &art, err);
    if (!rc && s.kind == LOOM_KERNEL_VSEARCH && s.scores_only)
        rc = host_topk(&sig, bufs, s.topk, err);
    if (!rc) {
        json_t *o = json_object();
        const char *const *names = outs[s.kind];
        for (int k = 0; k < 4 && names[k]; k++) {
            int i = arg_index(&sig, names[k]);
            if (i >= 0)
                json_object_set_new(o, sig.args[i].name, flat && !strcmp(names[k], "y")
                                                              ? json_flatten(json_from(&sig.args[i], bufs[i]))
                                                              : json_from(&sig.args[i], bufs[i]));
        }
        if (s.kind == LOOM_KERNEL_QMATMUL) {
            json_object_set_new(o, "scale_a", json_real(*(float *)bufs[arg_index(&sig, "sa")]));
            json_object_set_new(o, "scale_b", json_real(*(float *)bufs[arg_index(&sig, "sb")]));
            json_object_set_new(o, "precision", json_string("int8"));
        }
        json_object_set_new(o, "kernel", json_string(loom_kernel_kind_name(s.kind)));
        json_object_set_new(o, "artifact", json_string(art->hash));
        json_object_set_new(o, "target", json_string(loom_target_name(r->target)));
        *out = o;
    }
    free_bufs(bufs, sig.nargs);
    loom_buf_free(&src);
    return rc;
}

static int user_kernel(loom_kernel_runner_t *r, const char *path, const json_t *input, const json_t *args,
                       json_t **out, loom_err_t *err)
{
    char full[4096];
    const char *dir = json_string_value(json_object_get(input, "workflow_dir"));
    if (path[0] != '/' && dir)
        snprintf(full, sizeof full, "%s/%s", dir, path);
    else
        snprintf(full, sizeof full, "%s", path);
    FILE *f = fopen(full, "rb");
    if (!f)
        return loom_err_set(err, LOOM_ENOTFOUND, "kernel file %s cannot be read", full);
    loom_buf_t src = LOOM_BUF_INIT;
    char chunk[16384];
    size_t k;
    int rc = 0;
    while (!rc && (k = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = loom_buf_append(&src, chunk, k);
    fclose(f);
    if (rc || src.len > (1u << 20)) {
        loom_buf_free(&src);
        return loom_err_set(err, LOOM_ETOOBIG, "kernel file %s is larger than 1 MiB", full);
    }
    loom_kernel_sig_t sig;
    void *bufs[LOOM_KERNEL_MAX_ARGS] = {0};
    const loom_artifact_t *art;
    if ((rc = loom_codegen_signature(r->m, src.data, src.len, path, &sig, err)) ||
        (rc = alloc_bufs(&sig, bufs, err))) {
        loom_buf_free(&src);
        return rc;
    }
    const json_t *inputs = json_object_get(args, "inputs");
    for (int i = 0; i < sig.nargs && !rc; i++) {
        char field[48];
        const json_t *v = json_object_get(args, sig.args[i].name);
        if (!v && json_is_array(inputs))
            v = json_array_get(inputs, (size_t)i);
        snprintf(field, sizeof field, "args.%s", sig.args[i].name);
        if (v && !json_is_null(v))
            rc = json_fill(v, &sig.args[i], bufs[i], field, err);
    }
    if (!rc)
        rc = call(r, src.data, src.len, path, NULL, bufs, &art, err);
    if (!rc) {
        json_t *o = json_object();
        for (int i = 0; i < sig.nargs; i++)
            json_object_set_new(o, sig.args[i].name, json_from(&sig.args[i], bufs[i]));
        json_object_set_new(o, "kernel", json_string(path));
        json_object_set_new(o, "artifact", json_string(art->hash));
        json_object_set_new(o, "target", json_string(loom_target_name(r->target)));
        *out = o;
    }
    free_bufs(bufs, sig.nargs);
    loom_buf_free(&src);
    return rc;
}

int loom_kernel_runner_compute(loom_kernel_runner_t *r, const json_t *input, json_t **out, loom_err_t *err)
{
    const char *kernel = json_string_value(json_object_get(input, "kernel"));
    const json_t *args = json_object_get(input, "args");
    loom_kernel_kind_t kind;
    if (!kernel)
        return loom_err_set(err, LOOM_EINVAL, "compute: 'kernel' (a built-in name or .mlir path) is missing");
    if (args && !json_is_object(args))
        return loom_err_set(err, LOOM_EINVAL, "compute: 'args' must be an object");
    json_t *empty = args ? NULL : json_object();
    int rc;
    if (loom_kernel_kind_parse(kernel, &kind) == 0 && kind != LOOM_KERNEL_QMATMUL)
        rc = builtin(r, kind, args ? args : empty, out, err);
    else if (strlen(kernel) > 5 && strcmp(kernel + strlen(kernel) - 5, ".mlir") == 0)
        rc = user_kernel(r, kernel, input, args ? args : empty, out, err);
    else
        rc = loom_err_set(err, LOOM_ENOTFOUND,
                          "compute: unknown kernel '%s' (built-ins: matmul, softmax, rmsnorm, vector.search; "
                          "or a .mlir file)", kernel);
    json_decref(empty);
    return rc;
}

/* An index given as a JSON file {"ids": [...], "vectors": [[...], ...]}
 * (the workflow's index resource path, relative to its directory). */
static json_t *load_json_index(const json_t *input, loom_err_t *err)
{
    const json_t *res = json_object_get(input, "index_resource");
    const char *path = json_string_value(json_object_get(res, "path"));
    const char *dir = json_string_value(json_object_get(input, "workflow_dir"));
    char full[4096];
    if (!path) {
        loom_err_set(err, LOOM_EINVAL, "vector.search: neither 'documents' nor an index resource path given");
        return NULL;
    }
    size_t n = strlen(path);
    if (n < 5 || strcmp(path + n - 5, ".json") != 0) {
        loom_err_set(err, LOOM_EINVAL, "vector.search: index %s: only JSON indexes ({ids, vectors}) are read here",
                     path);
        return NULL;
    }
    snprintf(full, sizeof full, "%s%s%s", path[0] != '/' && dir ? dir : "", path[0] != '/' && dir ? "/" : "", path);
    json_error_t je;
    json_t *ix = json_load_file(full, 0, &je);
    if (!ix) {
        loom_err_set(err, LOOM_EPARSE, "vector.search: index %s: %s", full, je.text);
        loom_err_at(err, full, je.line, je.column);
    } else if (!json_is_array(json_object_get(ix, "vectors"))) {
        loom_err_set(err, LOOM_EPARSE, "vector.search: index %s has no 'vectors' list", full);
        json_decref(ix);
        ix = NULL;
    }
    return ix;
}

int loom_kernel_runner_vsearch(loom_kernel_runner_t *r, const json_t *input, json_t **out, loom_err_t *err)
{
    const json_t *q = json_object_get(input, "query"), *docs = json_object_get(input, "documents");
    const json_t *ids = json_object_get(input, "ids");
    if (json_is_object(q))
        q = json_object_get(q, "embedding") ? json_object_get(q, "embedding") : json_object_get(q, "vector");
    json_t *ix = NULL;
    if (!docs) {
        if (!(ix = load_json_index(input, err)))
            return err ? err->code : LOOM_EINVAL;
        docs = json_object_get(ix, "vectors");
        ids = json_object_get(ix, "ids");
    }
    int rc = 0;
    json_t *res = NULL, *args = NULL;
    long sd[2], sq[2];
    int rd, rq;
    json_int_t k = json_is_integer(json_object_get(input, "k")) ? json_integer_value(json_object_get(input, "k")) : 4;
    if (json_shape(docs, sd, &rd) != 0 || rd != 2)
        rc = loom_err_set(err, LOOM_EINVAL, "vector.search: 'documents' must be a list of equal-length vectors");
    else if (!q || json_shape(q, sq, &rq) != 0 || rq != 1)
        rc = loom_err_set(err, LOOM_EINVAL, "vector.search: 'query' must be a list of numbers (or {embedding: [...]})");
    else if (sq[0] != sd[1])
        rc = loom_err_set(err, LOOM_EINVAL, "vector.search: query has %ld dimensions, documents have %ld", sq[0], sd[1]);
    else if (k < 1 || k > 4096)
        rc = loom_err_set(err, LOOM_EINVAL, "vector.search: k=%lld must be 1..4096", (long long)k);
    else if (!(args = json_pack("{s:O, s:O, s:I}", "d", docs, "q", q, "topk", k)))
        rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
    if (!rc)
        rc = builtin(r, LOOM_KERNEL_VSEARCH, args, &res, err);
    json_decref(args);
    if (rc) {
        json_decref(ix);
        return rc;
    }
    const json_t *idx = json_object_get(res, "idx"), *top = json_object_get(res, "top");
    json_t *hits = json_array();
    for (size_t i = 0; i < json_array_size(idx); i++) {
        json_int_t at = json_integer_value(json_array_get(idx, i));
        if (at < 0)
            break; /* fewer documents than k */
        json_t *h = json_pack("{s:I, s:O}", "index", at, "score", json_array_get(top, i));
        if (json_is_array(ids) && (size_t)at < json_array_size(ids))
            json_object_set(h, "id", json_array_get(ids, (size_t)at));
        json_array_append_new(hits, h);
    }
    *out = json_pack("{s:o, s:O, s:s}", "hits", hits, "artifact", json_object_get(res, "artifact"), "target",
                     loom_target_name(r->target));
    json_decref(res);
    json_decref(ix);
    return 0;
}

/* cmd_kernel.c — `loom kernel`: compiles a compute kernel (a built-in or a
 * user .mlir file) for a target through mlir-lowering/ and prints the
 * artifact: its content address, entry and buffers, and on request the
 * generated code (LLVM dialect, PTX) or an object file. */
#include "cli/cli.h"
#include "common/buf.h"
#include "mlir-lowering/artifact.h"
#include "mlir-lowering/kernels.h"
#include "mlir-lowering/runner.h"

#include <jansson.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int loom_cmd_kernel(int argc, char **argv);

static const char usage_text[] =
    "usage: loom kernel KERNEL [--target cpu|gpu|npu] [--arch sm_XX] [--shape M,N,K]\n"
    "                   [--topk K] [--eps E] [--cache DIR] [--emit code|source] [--object FILE] [--json]\n"
    "       loom kernel KERNEL --run ARGS.json [--target cpu|npu] [--cache DIR]\n"
    "Compiles a compute kernel and prints its artifact (SHA-256 content address,\n"
    "entry function, buffers). KERNEL is a built-in (matmul, softmax, rmsnorm,\n"
    "vector.search, qmatmul) or a .mlir file with one func.func on static memrefs.\n"
    "\n"
    "  --target T      cpu (LLVM, JIT-able; default), gpu (PTX), npu (int8 matmul: built-in\n"
    "                  matmul is quantised, run by the NPU worker's reference backend)\n"
    "  --arch sm_XX    GPU architecture (default sm_90)\n"
    "  --shape M,N,K   built-in kernel shape (default 4,64,64)\n"
    "  --topk K        vector.search results (default 4); --eps E: rmsnorm epsilon\n"
    "  --cache DIR     on-disk artifact cache (default: memory only)\n"
    "  --emit code     print the generated code; --emit source: the kernel's MLIR\n"
    "  --object FILE   CPU/NPU: also write an ELF object file (ahead-of-time use)\n"
    "  --json          machine-readable output\n"
    "  --run ARGS      compile and run the kernel here on the buffers in the JSON file ARGS\n"
    "                  ('-': stdin; the `args` of a compute step: matmul {a, b}, softmax {x},\n"
    "                  rmsnorm {x, w, eps?}, a .mlir kernel {arg0, arg1, ...}); prints the\n"
    "                  result buffers as JSON (CPU or NPU target; GPU kernels run in loom-worker-gpu)\n"
    "Exit: 0 compiled, 1 the kernel does not verify or lower (file:line:col: message), 2 usage.\n";

static void print_err(const loom_err_t *e)
{
    char buf[4096];
    loom_err_format_long(e, buf, sizeof buf);
    fprintf(stderr, "loom kernel: %s\n", buf);
}

static const char *elem_name(loom_elem_t e)
{
    return e == LOOM_ELEM_F32 ? "f32" : e == LOOM_ELEM_I32 ? "i32" : "i8";
}

/* --run: the same path a worker's compute op takes (mlir-lowering/runner.c),
 * on buffers from a JSON file. */
static int run_kernel(const char *kernel, loom_target_kind_t t, const char *args_path, const char *cache_dir)
{
    if (t == LOOM_TARGET_GPU) {
        fprintf(stderr, "loom kernel: --run needs --target cpu or npu (GPU kernels run in loom-worker-gpu)\n");
        return LOOM_EXIT_USAGE;
    }
    json_error_t je;
    json_t *args = !strcmp(args_path, "-") ? json_loadf(stdin, 0, &je) : json_load_file(args_path, 0, &je);
    if (!args) {
        fprintf(stderr, "loom kernel: %s:%d:%d: %s\n", args_path, je.line, je.column, je.text);
        return LOOM_EXIT_USAGE;
    }
    if (!json_is_object(args)) {
        fprintf(stderr, "loom kernel: %s: the arguments must be a JSON object of buffers\n", args_path);
        json_decref(args);
        return LOOM_EXIT_USAGE;
    }
    loom_err_t err = {0};
    json_t *out = NULL, *in = json_pack("{s:s, s:o}", "kernel", kernel, "args", args);
    loom_kernel_runner_t *r = loom_kernel_runner_new(t, cache_dir, &err);
    int rc = LOOM_EXIT_OK;
    if (!r || loom_kernel_runner_compute(r, in, &out, &err) != 0) {
        print_err(&err);
        rc = r ? LOOM_EXIT_FAIL : LOOM_EXIT_SYSTEM;
    } else {
        char *s = json_dumps(out, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
        if (s)
            puts(s);
        free(s);
    }
    json_decref(out);
    json_decref(in);
    loom_kernel_runner_destroy(&r);
    return rc;
}

int loom_cmd_kernel(int argc, char **argv)
{
    if (loom_cli_wants_help(argc, argv, usage_text))
        return LOOM_EXIT_OK;
    const char *kernel = NULL, *tname = "cpu", *arch = "sm_90", *cache_dir = NULL, *emit = NULL, *obj = NULL,
               *run = NULL;
    int json = 0, m = 4, n = 64, k = 64, topk = 4;
    double eps = 1e-5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--json"))
            json = 1;
        else if (!strcmp(a, "--target") && has)
            tname = argv[++i];
        else if (!strcmp(a, "--arch") && has)
            arch = argv[++i];
        else if (!strcmp(a, "--cache") && has)
            cache_dir = argv[++i];
        else if (!strcmp(a, "--emit") && has)
            emit = argv[++i];
        else if (!strcmp(a, "--object") && has)
            obj = argv[++i];
        else if (!strcmp(a, "--run") && has)
            run = argv[++i];
        else if (!strcmp(a, "--topk") && has)
            topk = atoi(argv[++i]);
        else if (!strcmp(a, "--eps") && has)
            eps = atof(argv[++i]);
        else if (!strcmp(a, "--shape") && has) {
            if (sscanf(argv[++i], "%d,%d,%d", &m, &n, &k) != 3) {
                fprintf(stderr, "loom kernel: --shape wants M,N,K\n");
                return LOOM_EXIT_USAGE;
            }
        } else if (a[0] == '-' || kernel) {
            fprintf(stderr, "loom kernel: unexpected argument '%s'\n%s", a, usage_text);
            return LOOM_EXIT_USAGE;
        } else
            kernel = a;
    }
    loom_target_kind_t t;
    if (!kernel || loom_target_parse(tname, &t) != 0 || (emit && strcmp(emit, "code") && strcmp(emit, "source"))) {
        fprintf(stderr, "loom kernel: %s\n%s", !kernel ? "no kernel given" : "bad --target or --emit", usage_text);
        return LOOM_EXIT_USAGE;
    }
    if (run)
        return run_kernel(kernel, t, run, cache_dir);
    loom_err_t err = {0};
    loom_buf_t src = LOOM_BUF_INIT;
    loom_kernel_sig_t sig, *sigp = NULL;
    const char *srcname = kernel;
    char *text = NULL;
    size_t len = 0;
    loom_kernel_kind_t kind;
    int rc = LOOM_EXIT_FAIL;
    if (loom_kernel_kind_parse(kernel, &kind) == 0) {
        loom_kernel_spec_t s = {.kind = kind, .m = m, .n = n, .k = k, .topk = topk, .eps = (float)eps};
        if (t == LOOM_TARGET_NPU && kind == LOOM_KERNEL_MATMUL)
            s.kind = LOOM_KERNEL_QMATMUL; /* the NPU computes in int8 */
        if (t == LOOM_TARGET_GPU && kind == LOOM_KERNEL_VSEARCH)
            s.scores_only = 1; /* top-k selection runs on the host */
        s.gpu_warps = t == LOOM_TARGET_GPU; /* row reductions: a warp per row */
        if (loom_kernel_source(&s, 0, &src, &sig, &err) != 0) {
            print_err(&err);
            return LOOM_EXIT_USAGE;
        }
        text = loom_buf_detach(&src, &len);
        sigp = &sig;
        srcname = "builtin";
    } else if (loom_buf_read_file(&src, kernel) != 0) {
        fprintf(stderr, "loom kernel: cannot read %s: %s (not a built-in kernel name either)\n", kernel,
                strerror(errno));
        loom_buf_free(&src);
        return LOOM_EXIT_FAIL;
    } else {
        text = loom_buf_detach(&src, &len);
    }
    loom_mlir_t *mctx = loom_mlir_new(&err);
    loom_artifact_cache_t *cache = mctx ? loom_artifact_cache_new(mctx, cache_dir, &err) : NULL;
    const loom_artifact_t *a = NULL;
    int hit = 0;
    if (!cache) {
        print_err(&err);
        rc = LOOM_EXIT_SYSTEM;
        goto out;
    }
    if (loom_artifact_compile(cache, text, len, srcname, t, arch, sigp, &a, &hit, &err) != 0) {
        print_err(&err);
        goto out;
    }
    if (obj && t != LOOM_TARGET_GPU) {
        loom_jit_t *j;
        if (loom_artifact_jit(cache, a, &j, &err) != 0 || loom_jit_write_object(j, obj, &err) != 0) {
            print_err(&err);
            goto out;
        }
    }
    if (json) {
        json_t *args = json_array();
        for (int i = 0; i < a->sig.nargs; i++) {
            const loom_kernel_arg_t *g = &a->sig.args[i];
            json_t *shape = json_array();
            for (int d = 0; d < g->rank; d++)
                json_array_append_new(shape, json_integer(g->shape[d]));
            json_array_append_new(args, json_pack("{s:s, s:s, s:o, s:b}", "name", g->name, "type",
                                                  elem_name(g->elem), "shape", shape, "input", g->is_input));
        }
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:s}", "hash", a->hash, "target",
                              loom_target_name(a->target), "arch", a->arch, "entry", a->sig.func, "args",
                              args, "bytes", (json_int_t)a->len, "cache",
                              hit == 0 ? "compiled" : hit == 1 ? "memory" : "disk");
        if (emit)
            json_object_set_new(j, emit, json_string(!strcmp(emit, "code") ? a->payload : text));
        char *s = json_dumps(j, JSON_INDENT(2));
        if (s)
            puts(s);
        free(s);
        json_decref(j);
    } else if (emit) {
        fputs(!strcmp(emit, "code") ? a->payload : text, stdout);
    } else {
        printf("%s  %s%s%s  @%s  %zu bytes  (%s)\n", a->hash, loom_target_name(a->target), a->arch[0] ? " " : "",
               a->arch, a->sig.func, a->len, hit == 0 ? "compiled" : hit == 1 ? "memory cache" : "disk cache");
        for (int i = 0; i < a->sig.nargs; i++) {
            const loom_kernel_arg_t *g = &a->sig.args[i];
            printf("  %-8s %s[%ld%s%.0ld] %s\n", g->name, elem_name(g->elem), g->shape[0], g->rank == 2 ? "x" : "",
                   g->rank == 2 ? g->shape[1] : 0L, g->is_input ? "in" : "out");
        }
    }
    rc = LOOM_EXIT_OK;
out:
    loom_artifact_cache_destroy(&cache);
    loom_mlir_destroy(&mctx);
    free(text);
    return rc;
}

/* kernels.c — MLIR text of the built-in kernels (see kernels.h). Float
 * constants are printed as their bit patterns so the IR, and so the
 * artifact hash, is exact and stable. */
#include "mlir-lowering/kernels.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    loom_kernel_kind_t kind;
} kinds[] = {
    {"matmul", LOOM_KERNEL_MATMUL},   {"softmax", LOOM_KERNEL_SOFTMAX},
    {"rmsnorm", LOOM_KERNEL_RMSNORM}, {"vector.search", LOOM_KERNEL_VSEARCH},
    {"qmatmul", LOOM_KERNEL_QMATMUL},
};

int loom_kernel_kind_parse(const char *name, loom_kernel_kind_t *out)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (name && strcmp(name, kinds[i].name) == 0) {
            *out = kinds[i].kind;
            return 0;
        }
    return LOOM_ENOTFOUND;
}

const char *loom_kernel_kind_name(loom_kernel_kind_t kind)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (kinds[i].kind == kind)
            return kinds[i].name;
    return "?";
}

size_t loom_kernel_arg_bytes(const loom_kernel_arg_t *a)
{
    size_t n = 1;
    for (int i = 0; i < a->rank; i++)
        n *= (size_t)a->shape[i];
    return n * (a->elem == LOOM_ELEM_I8 ? 1 : 4);
}

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static void add_arg(loom_kernel_sig_t *s, const char *name, loom_elem_t e, int is_input,
                    long d0, long d1)
{
    loom_kernel_arg_t *a = &s->args[s->nargs++];
    memset(a, 0, sizeof *a);
    strncpy(a->name, name, sizeof a->name - 1);
    a->elem = e;
    a->is_input = is_input;
    a->rank = d1 > 0 ? 2 : 1;
    a->shape[0] = d0;
    a->shape[1] = d1 > 0 ? d1 : 0;
}

static const char *elem_name(loom_elem_t e)
{
    return e == LOOM_ELEM_F32 ? "f32" : e == LOOM_ELEM_I32 ? "i32" : "i8";
}

/* "memref<4x8xf32>" for argument i. */
static void memref_ty(const loom_kernel_arg_t *a, char *out, size_t n)
{
    if (a->rank == 2)
        snprintf(out, n, "memref<%ldx%ldx%s>", a->shape[0], a->shape[1], elem_name(a->elem));
    else
        snprintf(out, n, "memref<%ldx%s>", a->shape[0], elem_name(a->elem));
}

static int check_spec(const loom_kernel_spec_t *s, loom_err_t *err)
{
    if (s->m < 1 || s->n < 1 || s->k < 1)
        return loom_err_set(err, LOOM_EINVAL, "kernel %s: shape m=%d n=%d k=%d must be >= 1",
                            loom_kernel_kind_name(s->kind), s->m, s->n, s->k);
    if (s->m > 1 << 20 || s->n > 1 << 20 || s->k > 1 << 20)
        return loom_err_set(err, LOOM_ETOOBIG, "kernel %s: a dimension exceeds 2^20",
                            loom_kernel_kind_name(s->kind));
    if (s->kind == LOOM_KERNEL_VSEARCH && !s->scores_only && (s->topk < 1 || s->topk > 4096))
        return loom_err_set(err, LOOM_EINVAL, "kernel vector.search: topk=%d must be 1..4096",
                            s->topk);
    if (s->kind == LOOM_KERNEL_RMSNORM && !(s->eps >= 0))
        return loom_err_set(err, LOOM_EINVAL, "kernel rmsnorm: eps must be >= 0");
    return 0;
}

/* Writes "func.func @name(%a: T, ...) attributes {...} {" */
static void header(loom_buf_t *b, const loom_kernel_sig_t *s, int ciface)
{
    char ty[64];
    loom_buf_printf(b, "func.func @%s(", s->func);
    for (int i = 0; i < s->nargs; i++) {
        memref_ty(&s->args[i], ty, sizeof ty);
        loom_buf_printf(b, "%s%%%s: %s", i ? ", " : "", s->args[i].name, ty);
    }
    loom_buf_printf(b, ")%s {\n", ciface ? " attributes {llvm.emit_c_interface}" : "");
}

#define MAP2 "affine_map<(i, j) -> (i, j)>"
#define ROW "affine_map<(i, j) -> (i)>"
#define COL "affine_map<(i, j) -> (j)>"

static void gen_matmul(loom_buf_t *b, const loom_kernel_spec_t *s)
{
    loom_buf_printf(b,
        "  %%zero = arith.constant 0.0 : f32\n"
        "  linalg.fill ins(%%zero : f32) outs(%%c : memref<%dx%dxf32>)\n"
        "  linalg.matmul ins(%%a, %%b : memref<%dx%dxf32>, memref<%dx%dxf32>)\n"
        "                outs(%%c : memref<%dx%dxf32>)\n",
        s->m, s->n, s->m, s->k, s->k, s->n, s->m, s->n);
}

static void gen_softmax(loom_buf_t *b, const loom_kernel_spec_t *s)
{
    int m = s->m, n = s->n;
    loom_buf_printf(b,
        "  %%ninf = arith.constant 0xFF800000 : f32\n"
        "  %%zero = arith.constant 0.0 : f32\n"
        "  linalg.fill ins(%%ninf : f32) outs(%%rowmax : memref<%dxf32>)\n"
        "  linalg.generic {indexing_maps = [" MAP2 ", " ROW "],\n"
        "                  iterator_types = [\"parallel\", \"reduction\"]}\n"
        "      ins(%%x : memref<%dx%dxf32>) outs(%%rowmax : memref<%dxf32>) {\n"
        "    ^bb0(%%v: f32, %%acc: f32):\n"
        "      %%r = arith.maximumf %%v, %%acc : f32\n"
        "      linalg.yield %%r : f32\n"
        "  }\n"
        "  linalg.fill ins(%%zero : f32) outs(%%rowsum : memref<%dxf32>)\n"
        "  linalg.generic {indexing_maps = [" MAP2 ", " ROW ", " MAP2 ", " ROW "],\n"
        "                  iterator_types = [\"parallel\", \"reduction\"]}\n"
        "      ins(%%x, %%rowmax : memref<%dx%dxf32>, memref<%dxf32>)\n"
        "      outs(%%y, %%rowsum : memref<%dx%dxf32>, memref<%dxf32>) {\n"
        "    ^bb0(%%v: f32, %%mx: f32, %%o: f32, %%acc: f32):\n"
        "      %%d = arith.subf %%v, %%mx : f32\n"
        "      %%e = math.exp %%d : f32\n"
        "      %%sum = arith.addf %%acc, %%e : f32\n"
        "      linalg.yield %%e, %%sum : f32, f32\n"
        "  }\n"
        "  linalg.generic {indexing_maps = [" ROW ", " MAP2 "],\n"
        "                  iterator_types = [\"parallel\", \"parallel\"]}\n"
        "      ins(%%rowsum : memref<%dxf32>) outs(%%y : memref<%dx%dxf32>) {\n"
        "    ^bb0(%%sum: f32, %%o: f32):\n"
        "      %%r = arith.divf %%o, %%sum : f32\n"
        "      linalg.yield %%r : f32\n"
        "  }\n",
        m, m, n, m, m, m, n, m, m, n, m, m, m, n);
}

static void gen_rmsnorm(loom_buf_t *b, const loom_kernel_spec_t *s)
{
    int m = s->m, n = s->n;
    loom_buf_printf(b,
        "  %%zero = arith.constant 0.0 : f32\n"
        "  %%nf = arith.constant 0x%08X : f32\n"
        "  %%eps = arith.constant 0x%08X : f32\n"
        "  linalg.fill ins(%%zero : f32) outs(%%sumsq : memref<%dxf32>)\n"
        "  linalg.generic {indexing_maps = [" MAP2 ", " ROW "],\n"
        "                  iterator_types = [\"parallel\", \"reduction\"]}\n"
        "      ins(%%x : memref<%dx%dxf32>) outs(%%sumsq : memref<%dxf32>) {\n"
        "    ^bb0(%%v: f32, %%acc: f32):\n"
        "      %%sq = arith.mulf %%v, %%v : f32\n"
        "      %%r = arith.addf %%acc, %%sq : f32\n"
        "      linalg.yield %%r : f32\n"
        "  }\n"
        "  linalg.generic {indexing_maps = [" MAP2 ", " ROW ", " COL ", " MAP2 "],\n"
        "                  iterator_types = [\"parallel\", \"parallel\"]}\n"
        "      ins(%%x, %%sumsq, %%w : memref<%dx%dxf32>, memref<%dxf32>, memref<%dxf32>)\n"
        "      outs(%%y : memref<%dx%dxf32>) {\n"
        "    ^bb0(%%v: f32, %%ss: f32, %%wt: f32, %%o: f32):\n"
        "      %%mean = arith.divf %%ss, %%nf : f32\n"
        "      %%t = arith.addf %%mean, %%eps : f32\n"
        "      %%inv = math.rsqrt %%t : f32\n"
        "      %%xn = arith.mulf %%v, %%inv : f32\n"
        "      %%r = arith.mulf %%xn, %%wt : f32\n"
        "      linalg.yield %%r : f32\n"
        "  }\n",
        fbits((float)n), fbits(s->eps), m, m, n, m, m, n, m, n, m, n);
}

/* ---- GPU: one warp per row ------------------------------------------------ */

/* Appends a butterfly reduction of `in` over the 32 lanes of a warp with
 * `op` (arith.addf / arith.maximumf): after it every lane holds the
 * reduction, named %<out>. */
static void warp_reduce(loom_buf_t *b, const char *op, const char *in, const char *out)
{
    char prev[32], next[32];
    snprintf(prev, sizeof prev, "%s", in);
    for (int off = 16, k = 0; off >= 1; off /= 2, k++) {
        if (off == 1)
            snprintf(next, sizeof next, "%s", out);
        else
            snprintf(next, sizeof next, "%s_%d", out, k);
        loom_buf_printf(b,
            "    %%%s_o%d = arith.constant %d : i32\n"
            "    %%%s_s%d, %%%s_v%d = gpu.shuffle xor %%%s, %%%s_o%d, %%width : f32\n"
            "    %%%s = %s %%%s, %%%s_s%d : f32\n",
            out, k, off, out, k, out, k, prev, out, k, next, op, prev, out, k);
        snprintf(prev, sizeof prev, "%s", next);
    }
}

/* Opens the launch: block = row, 32 threads = the lanes of one warp. */
static void warp_launch_open(loom_buf_t *b, int m, int n)
{
    loom_buf_printf(b,
        "  %%c1 = arith.constant 1 : index\n"
        "  %%cm = arith.constant %d : index\n"
        "  %%c32 = arith.constant 32 : index\n"
        "  gpu.launch blocks(%%row, %%by, %%bz) in (%%gx = %%cm, %%gy = %%c1, %%gz = %%c1)\n"
        "             threads(%%lane, %%ty, %%tz) in (%%sx = %%c32, %%sy = %%c1, %%sz = %%c1) {\n"
        "    %%c0 = arith.constant 0 : index\n"
        "    %%step = arith.constant 32 : index\n"
        "    %%cn = arith.constant %d : index\n"
        "    %%width = arith.constant 32 : i32\n"
        "    %%zero = arith.constant 0.0 : f32\n",
        m, n);
}

static void gen_softmax_warps(loom_buf_t *b, const loom_kernel_spec_t *s)
{
    int m = s->m, n = s->n;
    warp_launch_open(b, m, n);
    loom_buf_printf(b,
        "    %%ninf = arith.constant 0xFF800000 : f32\n"
        "    %%pmax = scf.for %%j = %%lane to %%cn step %%step iter_args(%%a = %%ninf) -> (f32) {\n"
        "      %%v = memref.load %%x[%%row, %%j] : memref<%dx%dxf32>\n"
        "      %%r = arith.maximumf %%a, %%v : f32\n"
        "      scf.yield %%r : f32\n"
        "    }\n",
        m, n);
    warp_reduce(b, "arith.maximumf", "pmax", "mx");
    loom_buf_printf(b,
        "    %%psum = scf.for %%j = %%lane to %%cn step %%step iter_args(%%a = %%zero) -> (f32) {\n"
        "      %%v = memref.load %%x[%%row, %%j] : memref<%dx%dxf32>\n"
        "      %%d = arith.subf %%v, %%mx : f32\n"
        "      %%e = math.exp %%d : f32\n"
        "      memref.store %%e, %%y[%%row, %%j] : memref<%dx%dxf32>\n"
        "      %%r = arith.addf %%a, %%e : f32\n"
        "      scf.yield %%r : f32\n"
        "    }\n",
        m, n, m, n);
    warp_reduce(b, "arith.addf", "psum", "sum");
    loom_buf_printf(b,
        "    scf.for %%j = %%lane to %%cn step %%step {\n" /* each lane rereads only what it wrote */
        "      %%e = memref.load %%y[%%row, %%j] : memref<%dx%dxf32>\n"
        "      %%r = arith.divf %%e, %%sum : f32\n"
        "      memref.store %%r, %%y[%%row, %%j] : memref<%dx%dxf32>\n"
        "    }\n"
        "    %%first = arith.cmpi eq, %%lane, %%c0 : index\n"
        "    scf.if %%first {\n"
        "      memref.store %%mx, %%rowmax[%%row] : memref<%dxf32>\n"
        "      memref.store %%sum, %%rowsum[%%row] : memref<%dxf32>\n"
        "    }\n"
        "    gpu.terminator\n"
        "  }\n",
        m, n, m, n, m, m);
}

static void gen_rmsnorm_warps(loom_buf_t *b, const loom_kernel_spec_t *s)
{
    int m = s->m, n = s->n;
    warp_launch_open(b, m, n);
    loom_buf_printf(b,
        "    %%nf = arith.constant 0x%08X : f32\n"
        "    %%eps = arith.constant 0x%08X : f32\n"
        "    %%pss = scf.for %%j = %%lane to %%cn step %%step iter_args(%%a = %%zero) -> (f32) {\n"
        "      %%v = memref.load %%x[%%row, %%j] : memref<%dx%dxf32>\n"
        "      %%sq = arith.mulf %%v, %%v : f32\n"
        "      %%r = arith.addf %%a, %%sq : f32\n"
        "      scf.yield %%r : f32\n"
        "    }\n",
        fbits((float)n), fbits(s->eps), m, n);
    warp_reduce(b, "arith.addf", "pss", "ss");
    loom_buf_printf(b,
        "    %%mean = arith.divf %%ss, %%nf : f32\n"
        "    %%t = arith.addf %%mean, %%eps : f32\n"
        "    %%inv = math.rsqrt %%t : f32\n"
        "    scf.for %%j = %%lane to %%cn step %%step {\n"
        "      %%v = memref.load %%x[%%row, %%j] : memref<%dx%dxf32>\n"
        "      %%wt = memref.load %%w[%%j] : memref<%dxf32>\n"
        "      %%xn = arith.mulf %%v, %%inv : f32\n"
        "      %%r = arith.mulf %%xn, %%wt : f32\n"
        "      memref.store %%r, %%y[%%row, %%j] : memref<%dx%dxf32>\n"
        "    }\n"
        "    %%first = arith.cmpi eq, %%lane, %%c0 : index\n"
        "    scf.if %%first {\n"
        "      memref.store %%ss, %%sumsq[%%row] : memref<%dxf32>\n"
        "    }\n"
        "    gpu.terminator\n"
        "  }\n",
        m, n, n, m, n, m);
}

static void gen_vsearch(loom_buf_t *b, const loom_kernel_spec_t *s)
{
    int n = s->n, k = s->k, t = s->topk;
    loom_buf_printf(b,
        "  %%zero = arith.constant 0.0 : f32\n"
        "  linalg.fill ins(%%zero : f32) outs(%%scores : memref<%dxf32>)\n"
        "  linalg.matvec ins(%%d, %%q : memref<%dx%dxf32>, memref<%dxf32>)\n"
        "                outs(%%scores : memref<%dxf32>)\n",
        n, n, k, k, n);
    if (s->scores_only)
        return;
    /* Top-k by repeated selection of the best score not taken yet; ties go
     * to the lower index. O(k^2 n): k is small for retrieval. */
    loom_buf_printf(b,
        "  %%c0 = arith.constant 0 : index\n"
        "  %%c1 = arith.constant 1 : index\n"
        "  %%cn = arith.constant %d : index\n"
        "  %%ct = arith.constant %d : index\n"
        "  %%ninf = arith.constant 0xFF800000 : f32\n"
        "  %%none = arith.constant -1 : i32\n"
        "  %%false = arith.constant false\n"
        "  %%true = arith.constant true\n"
        "  scf.for %%t = %%c0 to %%ct step %%c1 {\n"
        "    %%best:2 = scf.for %%i = %%c0 to %%cn step %%c1\n"
        "        iter_args(%%bs = %%ninf, %%bi = %%none) -> (f32, i32) {\n"
        "      %%sc = memref.load %%scores[%%i] : memref<%dxf32>\n"
        "      %%ii = arith.index_cast %%i : index to i32\n"
        "      %%taken = scf.for %%u = %%c0 to %%t step %%c1 iter_args(%%tk = %%false) -> (i1) {\n"
        "        %%prev = memref.load %%idx[%%u] : memref<%dxi32>\n"
        "        %%eq = arith.cmpi eq, %%prev, %%ii : i32\n"
        "        %%o = arith.ori %%tk, %%eq : i1\n"
        "        scf.yield %%o : i1\n"
        "      }\n"
        "      %%gt = arith.cmpf ogt, %%sc, %%bs : f32\n"
        "      %%free = arith.xori %%taken, %%true : i1\n"
        "      %%take = arith.andi %%gt, %%free : i1\n"
        "      %%nb = arith.select %%take, %%sc, %%bs : f32\n"
        "      %%ni = arith.select %%take, %%ii, %%bi : i32\n"
        "      scf.yield %%nb, %%ni : f32, i32\n"
        "    }\n"
        "    memref.store %%best#1, %%idx[%%t] : memref<%dxi32>\n"
        "    memref.store %%best#0, %%top[%%t] : memref<%dxf32>\n"
        "  }\n",
        n, t, n, t, t, t);
}

static void gen_qmatmul(loom_buf_t *b, const loom_kernel_spec_t *s)
{
    int m = s->m, n = s->n, k = s->k;
    /* q = clamp(roundeven(x / scale), -127, 127) as i8: symmetric per-tensor
     * quantisation with the scale a run-time input (memref<1xf32>), so one
     * compiled kernel serves any data; the integer matmul sign-extends i8
     * into i32; dequantisation multiplies by scale_a * scale_b. */
    static const char quant[] =
        "  linalg.generic {indexing_maps = [" MAP2 ", affine_map<(i, j) -> (0)>, " MAP2 "],\n"
        "                  iterator_types = [\"parallel\", \"parallel\"]}\n"
        "      ins(%%%s, %%%s : memref<%dx%dxf32>, memref<1xf32>) outs(%%%s : memref<%dx%dxi8>) {\n"
        "    ^bb0(%%v: f32, %%sc: f32, %%o: i8):\n"
        "      %%lo = arith.constant -127.0 : f32\n"
        "      %%hi = arith.constant 127.0 : f32\n"
        "      %%d = arith.divf %%v, %%sc : f32\n"
        "      %%r = math.roundeven %%d : f32\n"
        "      %%c1 = arith.maximumf %%r, %%lo : f32\n"
        "      %%c2 = arith.minimumf %%c1, %%hi : f32\n"
        "      %%q = arith.fptosi %%c2 : f32 to i8\n"
        "      linalg.yield %%q : i8\n"
        "  }\n";
    loom_buf_printf(b, quant, "a", "sa", m, k, "qa", m, k);
    loom_buf_printf(b, quant, "b", "sb", k, n, "qb", k, n);
    loom_buf_printf(b,
        "  %%zero = arith.constant 0 : i32\n"
        "  linalg.fill ins(%%zero : i32) outs(%%acc : memref<%dx%dxi32>)\n"
        "  linalg.matmul ins(%%qa, %%qb : memref<%dx%dxi8>, memref<%dx%dxi8>)\n"
        "                outs(%%acc : memref<%dx%dxi32>)\n"
        "  linalg.generic {indexing_maps = [" MAP2 ", affine_map<(i, j) -> (0)>, affine_map<(i, j) -> (0)>, " MAP2 "],\n"
        "                  iterator_types = [\"parallel\", \"parallel\"]}\n"
        "      ins(%%acc, %%sa, %%sb : memref<%dx%dxi32>, memref<1xf32>, memref<1xf32>)\n"
        "      outs(%%c : memref<%dx%dxf32>) {\n"
        "    ^bb0(%%v: i32, %%x: f32, %%y: f32, %%o: f32):\n"
        "      %%s = arith.mulf %%x, %%y : f32\n"
        "      %%f = arith.sitofp %%v : i32 to f32\n"
        "      %%r = arith.mulf %%f, %%s : f32\n"
        "      linalg.yield %%r : f32\n"
        "  }\n",
        m, n, m, k, k, n, m, n, m, n, m, n);
}

int loom_kernel_source(const loom_kernel_spec_t *spec, int emit_c_interface, loom_buf_t *src,
                       loom_kernel_sig_t *sig, loom_err_t *err)
{
    int rc = check_spec(spec, err);
    if (rc)
        return rc;
    loom_kernel_spec_t s = *spec;
    memset(sig, 0, sizeof *sig);
    switch (s.kind) {
    case LOOM_KERNEL_MATMUL:
        add_arg(sig, "a", LOOM_ELEM_F32, 1, s.m, s.k);
        add_arg(sig, "b", LOOM_ELEM_F32, 1, s.k, s.n);
        add_arg(sig, "c", LOOM_ELEM_F32, 0, s.m, s.n);
        break;
    case LOOM_KERNEL_SOFTMAX:
        add_arg(sig, "x", LOOM_ELEM_F32, 1, s.m, s.n);
        add_arg(sig, "y", LOOM_ELEM_F32, 0, s.m, s.n);
        add_arg(sig, "rowmax", LOOM_ELEM_F32, 0, s.m, 0);
        add_arg(sig, "rowsum", LOOM_ELEM_F32, 0, s.m, 0);
        break;
    case LOOM_KERNEL_RMSNORM:
        add_arg(sig, "x", LOOM_ELEM_F32, 1, s.m, s.n);
        add_arg(sig, "w", LOOM_ELEM_F32, 1, s.n, 0);
        add_arg(sig, "y", LOOM_ELEM_F32, 0, s.m, s.n);
        add_arg(sig, "sumsq", LOOM_ELEM_F32, 0, s.m, 0);
        break;
    case LOOM_KERNEL_VSEARCH:
        add_arg(sig, "d", LOOM_ELEM_F32, 1, s.n, s.k);
        add_arg(sig, "q", LOOM_ELEM_F32, 1, s.k, 0);
        add_arg(sig, "scores", LOOM_ELEM_F32, 0, s.n, 0);
        if (!s.scores_only) {
            add_arg(sig, "idx", LOOM_ELEM_I32, 0, s.topk, 0);
            add_arg(sig, "top", LOOM_ELEM_F32, 0, s.topk, 0);
        }
        break;
    case LOOM_KERNEL_QMATMUL:
        add_arg(sig, "a", LOOM_ELEM_F32, 1, s.m, s.k);
        add_arg(sig, "b", LOOM_ELEM_F32, 1, s.k, s.n);
        add_arg(sig, "sa", LOOM_ELEM_F32, 1, 1, 0);
        add_arg(sig, "sb", LOOM_ELEM_F32, 1, 1, 0);
        add_arg(sig, "qa", LOOM_ELEM_I8, 0, s.m, s.k);
        add_arg(sig, "qb", LOOM_ELEM_I8, 0, s.k, s.n);
        add_arg(sig, "acc", LOOM_ELEM_I32, 0, s.m, s.n);
        add_arg(sig, "c", LOOM_ELEM_F32, 0, s.m, s.n);
        break;
    default:
        return loom_err_set(err, LOOM_EINVAL, "unknown kernel kind %d", (int)s.kind);
    }
    snprintf(sig->func, sizeof sig->func, "loom_%s",
             s.kind == LOOM_KERNEL_VSEARCH ? "vsearch" : loom_kernel_kind_name(s.kind));
    header(src, sig, emit_c_interface);
    switch (s.kind) {
    case LOOM_KERNEL_MATMUL: gen_matmul(src, &s); break;
    case LOOM_KERNEL_SOFTMAX: (s.gpu_warps ? gen_softmax_warps : gen_softmax)(src, &s); break;
    case LOOM_KERNEL_RMSNORM: (s.gpu_warps ? gen_rmsnorm_warps : gen_rmsnorm)(src, &s); break;
    case LOOM_KERNEL_VSEARCH: gen_vsearch(src, &s); break;
    case LOOM_KERNEL_QMATMUL: gen_qmatmul(src, &s); break;
    }
    if (loom_buf_puts(src, "  return\n}\n"))
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    return 0;
}

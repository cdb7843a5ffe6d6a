/* codegen.c — per-target lowering pipelines, the CPU JIT, and reading the
 * launch plan and PTX back out of a lowered GPU module (see codegen.h). */
#include "mlir-lowering/codegen.h"

#include "mlir-lowering/loop_fusion.h"
#include "mlir-lowering/mlir_internal.h"

#include <mlir-c/AffineMap.h>
#include <mlir-c/BuiltinAttributes.h>
#include <mlir-c/BuiltinTypes.h>
#include <mlir-c/Diagnostics.h>
#include <mlir-c/Dialect/GPU.h>
#include <mlir-c/Dialect/Transform/Interpreter.h>
#include <mlir-c/ExecutionEngine.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *loom_target_name(loom_target_kind_t t)
{
    return t == LOOM_TARGET_CPU ? "cpu" : t == LOOM_TARGET_GPU ? "gpu" : t == LOOM_TARGET_NPU ? "npu" : "?";
}

int loom_target_parse(const char *s, loom_target_kind_t *out)
{
    static const loom_target_kind_t all[] = {LOOM_TARGET_CPU, LOOM_TARGET_GPU, LOOM_TARGET_NPU};
    for (size_t i = 0; i < 3; i++)
        if (s && strcmp(s, loom_target_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    return LOOM_ENOTFOUND;
}

int loom_op_is_view(MlirOperation op)
{
    static const char *const views[] = {"memref.expand_shape", "memref.collapse_shape", "memref.subview",
                                        "memref.reinterpret_cast", "memref.cast"};
    for (size_t i = 0; i < sizeof views / sizeof *views; i++)
        if (loom_op_is(op, views[i]))
            return 1;
    return 0;
}

MlirValue loom_base_buffer(MlirValue v)
{
    while (mlirValueIsAOpResult(v) && loom_op_is_view(mlirOpResultGetOwner(v)))
        v = mlirOperationGetOperand(mlirOpResultGetOwner(v), 0);
    return v;
}

/* Loops, then everything to the LLVM dialect. The NPU reference backend runs
 * the same host pipeline on its int8 kernels. Math ops with an LLVM intrinsic
 * (exp, log, sqrt, fma, ...) become intrinsics; the rest (tanh, erf, atan,
 * cbrt, ...) become calls to libm, which the JIT resolves in the worker's
 * process and an object file links against. */
#define CPU_PIPELINE                                                                          \
    "builtin.module(func.func(convert-linalg-to-loops),convert-vector-to-scf,lower-affine,"   \
    "convert-scf-to-cf,convert-math-to-llvm,convert-math-to-libm,"                            \
    "convert-vector-to-llvm{reassociate-fp-reductions=1},expand-strided-metadata,"            \
    "finalize-memref-to-llvm,"                                                                \
    "convert-arith-to-llvm,convert-index-to-llvm,convert-func-to-llvm,convert-cf-to-llvm,"    \
    "reconcile-unrealized-casts)"

/* GPU: linalg to parallel loops; then adjacent loops over the same
 * iteration space are fused (loop_fusion.c: an elementwise chain becomes
 * one launch); then parallel loops tiled 16x16 (fixed bounds + in-bounds
 * guards, so that any shape maps to blocks x threads), outlined into
 * gpu.modules, NVVM, PTX. Bare-pointer memrefs: each buffer argument is one
 * device pointer. */
#define GPU_LOOPS_PIPELINE "builtin.module(func.func(convert-linalg-to-parallel-loops))"
#define GPU_FUSION_STEP "loom-fuse-parallel-loops"
#define GPU_PIPELINE_FMT                                                                      \
    "builtin.module(func.func("                                                               \
    "scf-parallel-loop-tiling{parallel-loop-tile-sizes=16,16 no-min-max-bounds=1},"           \
    "gpu-map-parallel-loops,convert-parallel-loops-to-gpu),gpu-kernel-outlining,"             \
    "canonicalize,lower-affine,convert-scf-to-cf,nvvm-attach-target{chip=%s},"                \
    "gpu.module(convert-gpu-to-nvvm{use-bare-ptr-memref-call-conv=1}),"                       \
    "reconcile-unrealized-casts,gpu-module-to-binary{format=isa})"

/* Register-blocked matmul for the CPU/NPU targets, as a transform-dialect
 * script run before the pipeline: every linalg.matmul is tiled into
 * TM x TN blocks of C, each block's K loop vectorised one k at a time, the
 * C block hoisted out of the
 * K loop into registers (accumulator promotion; subviews folded first so the
 * hoisting can prove the block is not otherwise touched), and the
 * contraction lowered to broadcast-FMA outer products: one row of B loaded
 * per k, TM broadcasts of A, TM vector FMAs. TM x TN fits the vector
 * register file of the host: 8 x 32 floats with AVX-512 (16 zmm
 * accumulators), 4 x 16 with AVX2 (8 ymm), halved until they divide every
 * matmul's M and N (masked vectorisation of ragged edges made the pattern
 * rewrites run for minutes in MLIR 19); a matmul whose N is not a multiple
 * of 8 keeps the plain loops. */
#define MATMUL_TRANSFORM_FMT                                                                  \
    "module attributes {transform.with_named_sequence} {\n"                                   \
    "transform.named_sequence @__transform_main(%%root: !transform.any_op {transform.readonly}) {\n" \
    "  %%mm = transform.structured.match ops{[\"linalg.matmul\"]} in %%root"                   \
    " : (!transform.any_op) -> !transform.any_op\n"                                           \
    "  %%t, %%l0, %%l1 = transform.structured.tile_using_for %%mm tile_sizes [%d, %d, 0]"      \
    " : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op)\n"   \
    "  %%tk, %%l2 = transform.structured.tile_using_for %%t tile_sizes [0, 0, 1]"              \
    " : (!transform.any_op) -> (!transform.any_op, !transform.any_op)\n"                      \
    "  transform.structured.vectorize %%tk : !transform.any_op\n"                              \
    "  %%f = transform.structured.match ops{[\"func.func\"]} in %%root"                       \
    " : (!transform.any_op) -> !transform.any_op\n"                                           \
    "  transform.apply_patterns to %%f {\n"                                                    \
    "    transform.apply_patterns.vector.reduction_to_contract\n"                              \
    "    transform.apply_patterns.vector.transfer_permutation_patterns\n"                      \
    "    transform.apply_patterns.memref.fold_memref_alias_ops\n"                              \
    "    transform.apply_patterns.canonicalization\n"                                          \
    "  } : !transform.any_op\n"                                                                \
    "  transform.apply_cse to %%f : !transform.any_op\n"                                       \
    "  %%h = transform.structured.hoist_redundant_vector_transfers %%f"                         \
    " : (!transform.any_op) -> !transform.any_op\n"                                           \
    "  transform.apply_patterns to %%h {\n"                                                    \
    "    transform.apply_patterns.vector.lower_contraction lowering_strategy = \"outerproduct\"\n" \
    "    transform.apply_patterns.vector.lower_outerproduct\n"                                 \
    "    transform.apply_patterns.vector.transfer_permutation_patterns\n"                      \
    "    transform.apply_patterns.vector.lower_transfer max_transfer_rank = 1\n"               \
    "    transform.apply_patterns.vector.lower_broadcast\n"                                    \
    "    transform.apply_patterns.vector.lower_shape_cast\n"                                   \
    "    transform.apply_patterns.canonicalization\n"                                          \
    "  } : !transform.any_op\n"                                                                \
    "  transform.yield\n"                                                                      \
    "}\n}\n"

/* Elementwise ops and reductions (every other linalg.generic that
 * qualifies, see vector_candidate): tiled to one vector of the innermost
 * loop (16 floats with AVX-512, 8 with AVX2, halved until it divides the
 * loop, at least 4) and 1 on the outer loops, vectorised (a reduction
 * becomes a vector.reduction per vector, reassociated by LLVM into a tree),
 * the reduction's accumulator hoisted out of the loop into a register, unit
 * dimensions dropped so loads and stores are plain vector loads. One
 * TILE block per distinct tiling, matched by the loom.vec attribute that
 * vector_candidate sets. */
#define GENERIC_TRANSFORM_HEAD                                                                \
    "module attributes {transform.with_named_sequence} {\n"                                   \
    "transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {\n"
#define GENERIC_TRANSFORM_TILE_FMT                                                            \
    "  %%g%d = transform.structured.match ops{[\"linalg.generic\"]} attributes{loom.vec = \"%s\"}" \
    " in %%root : (!transform.any_op) -> !transform.any_op\n"                                  \
    "  transform.foreach %%g%d : !transform.any_op {\n"                                         \
    "  ^bb0(%%op: !transform.any_op):\n"                                                       \
    "    %%t%s = transform.structured.tile_using_for %%op tile_sizes [%s]"                      \
    " : (!transform.any_op) -> (!transform.any_op%s)\n"                                        \
    "    transform.structured.vectorize %%t : !transform.any_op\n"                              \
    "  }\n"
#define GENERIC_TRANSFORM_TAIL                                                                \
    "  %f = transform.structured.match ops{[\"func.func\"]} in %root"                         \
    " : (!transform.any_op) -> !transform.any_op\n"                                            \
    "  transform.apply_patterns to %f {\n"                                                     \
    "    transform.apply_patterns.vector.transfer_permutation_patterns\n"                      \
    "    transform.apply_patterns.memref.fold_memref_alias_ops\n"                              \
    "    transform.apply_patterns.canonicalization\n"                                          \
    "  } : !transform.any_op\n"                                                                \
    "  transform.apply_cse to %f : !transform.any_op\n"                                        \
    "  %h = transform.structured.hoist_redundant_vector_transfers %f"                          \
    " : (!transform.any_op) -> !transform.any_op\n"                                            \
    "  transform.apply_patterns to %h {\n"                                                     \
    "    transform.apply_patterns.vector.lower_multi_reduction lowering_strategy = \"innerreduction\"\n" \
    "    transform.apply_patterns.vector.cast_away_vector_leading_one_dim\n"                   \
    "    transform.apply_patterns.vector.lower_transfer max_transfer_rank = 1\n"               \
    "    transform.apply_patterns.vector.transfer_permutation_patterns\n"                      \
    "    transform.apply_patterns.vector.lower_broadcast\n"                                    \
    "  } : !transform.any_op\n"                                                                \
    "  transform.yield\n"                                                                      \
    "}\n}\n"

/* exp on a vector of N floats without libm: Cephes' expf. x clamped to
 * [-87.3, 88.7]: results below about 2^-125 are 0 (no denormals), x above
 * 88.7 (+inf included) gives exp(88.7) ~ 3.3e38 rather than +inf, NaN
 * stays NaN; n = floor(x log2 e + 1/2), r = x - n ln 2 in two parts, a degree-6
 * polynomial in r (within about 1 ulp), times 2^(n-1) built in the exponent
 * bits and 2. LLVM has no vector exp on x86 (llvm.exp on a vector becomes
 * one libm call per lane), and softmax spends its time there. */
#define VEXP_FMT                                                                              \
    "func.func private @__loom_vexp%1$d(%%x: vector<%1$dxf32>) -> vector<%1$dxf32> {\n"            \
    "  %%hi = arith.constant dense<88.7> : vector<%1$dxf32>\n"                                 \
    "  %%lo = arith.constant dense<-87.3> : vector<%1$dxf32>\n"                                \
    "  %%log2e = arith.constant dense<1.44269504088896341> : vector<%1$dxf32>\n"               \
    "  %%half = arith.constant dense<0.5> : vector<%1$dxf32>\n"                                \
    "  %%one = arith.constant dense<1.0> : vector<%1$dxf32>\n"                                 \
    "  %%two = arith.constant dense<2.0> : vector<%1$dxf32>\n"                                 \
    "  %%c1 = arith.constant dense<0.693359375> : vector<%1$dxf32>\n"                          \
    "  %%c2 = arith.constant dense<-2.12194440e-4> : vector<%1$dxf32>\n"                       \
    "  %%p0 = arith.constant dense<1.9875691500e-4> : vector<%1$dxf32>\n"                      \
    "  %%p1 = arith.constant dense<1.3981999507e-3> : vector<%1$dxf32>\n"                      \
    "  %%p2 = arith.constant dense<8.3334519073e-3> : vector<%1$dxf32>\n"                      \
    "  %%p3 = arith.constant dense<4.1665795894e-2> : vector<%1$dxf32>\n"                      \
    "  %%p4 = arith.constant dense<1.6666665459e-1> : vector<%1$dxf32>\n"                      \
    "  %%p5 = arith.constant dense<5.0000001201e-1> : vector<%1$dxf32>\n"                      \
    "  %%bias = arith.constant dense<126> : vector<%1$dxi32>\n"                                \
    "  %%shift = arith.constant dense<23> : vector<%1$dxi32>\n"                                \
    "  %%a = arith.minimumf %%x, %%hi : vector<%1$dxf32>\n"                                    \
    "  %%xc = arith.maximumf %%a, %%lo : vector<%1$dxf32>\n"                                   \
    "  %%t = math.fma %%xc, %%log2e, %%half : vector<%1$dxf32>\n"                              \
    "  %%fl = math.floor %%t : vector<%1$dxf32>\n"                                             \
    "  %%u = arith.mulf %%fl, %%c1 : vector<%1$dxf32>\n"                                       \
    "  %%r0 = arith.subf %%xc, %%u : vector<%1$dxf32>\n"                                       \
    "  %%v = arith.mulf %%fl, %%c2 : vector<%1$dxf32>\n"                                       \
    "  %%r = arith.subf %%r0, %%v : vector<%1$dxf32>\n"                                        \
    "  %%z = arith.mulf %%r, %%r : vector<%1$dxf32>\n"                                         \
    "  %%y0 = math.fma %%p0, %%r, %%p1 : vector<%1$dxf32>\n"                                   \
    "  %%y1 = math.fma %%y0, %%r, %%p2 : vector<%1$dxf32>\n"                                   \
    "  %%y2 = math.fma %%y1, %%r, %%p3 : vector<%1$dxf32>\n"                                   \
    "  %%y3 = math.fma %%y2, %%r, %%p4 : vector<%1$dxf32>\n"                                   \
    "  %%y4 = math.fma %%y3, %%r, %%p5 : vector<%1$dxf32>\n"                                   \
    "  %%y5 = math.fma %%y4, %%z, %%r : vector<%1$dxf32>\n"                                    \
    "  %%y = arith.addf %%y5, %%one : vector<%1$dxf32>\n"                                      \
    "  %%n = arith.fptosi %%fl : vector<%1$dxf32> to vector<%1$dxi32>\n"                         \
    "  %%nb = arith.addi %%n, %%bias : vector<%1$dxi32>\n"                                     \
    "  %%bits = arith.shli %%nb, %%shift : vector<%1$dxi32>\n"                                 \
    "  %%p = arith.bitcast %%bits : vector<%1$dxi32> to vector<%1$dxf32>\n"                      \
    "  %%e = arith.mulf %%y, %%p : vector<%1$dxf32>\n"                                         \
    "  %%res = arith.mulf %%e, %%two : vector<%1$dxf32>\n"                                     \
    "  return %%res : vector<%1$dxf32>\n"                                                      \
    "}\n"

static int host_vector_floats(void)
{
    return __builtin_cpu_supports("avx512f") ? 16 : 8;
}

const char *loom_codegen_transform(loom_target_kind_t t, char *buf, size_t n)
{
    if (t == LOOM_TARGET_GPU) {
        snprintf(buf, n, "%s", "");
        return buf;
    }
    int avx512 = __builtin_cpu_supports("avx512f");
    int k = snprintf(buf, n, MATMUL_TRANSFORM_FMT, avx512 ? 8 : 4, avx512 ? 32 : 16);
    if (k > 0 && (size_t)k < n)
        snprintf(buf + k, n - (size_t)k, "%d\n%s%s%s%s", host_vector_floats(), GENERIC_TRANSFORM_HEAD,
                 GENERIC_TRANSFORM_TILE_FMT, GENERIC_TRANSFORM_TAIL, VEXP_FMT);
    return buf;
}

typedef struct {
    int count, tm, tn; /* matmuls seen; tile sizes that divide all of them */
} matmul_walk_t;

static MlirWalkResult size_matmul_tiles(MlirOperation op, void *user)
{
    matmul_walk_t *w = user;
    if (!loom_op_is(op, "linalg.matmul") || mlirOperationGetNumOperands(op) != 3)
        return MlirWalkResultAdvance;
    MlirType c = mlirValueGetType(mlirOperationGetOperand(op, 2));
    w->count++;
    if (!mlirTypeIsAMemRef(c) || !mlirShapedTypeHasStaticShape(c) || mlirShapedTypeGetRank(c) != 2) {
        w->tn = 0;
        return MlirWalkResultInterrupt;
    }
    int64_t rows = mlirShapedTypeGetDimSize(c, 0), cols = mlirShapedTypeGetDimSize(c, 1);
    while (w->tm > 1 && rows % w->tm)
        w->tm /= 2;
    while (w->tn >= 8 && cols % w->tn)
        w->tn /= 2;
    if (w->tn < 8)
        w->tn = 0;
    return w->tn ? MlirWalkResultAdvance : MlirWalkResultInterrupt;
}

/* Applies the CPU transform script to the kernel's module when it has a
 * linalg.matmul (the interpreter costs milliseconds). */
static int apply_cpu_transform(loom_mlir_t *m, MlirModule mod, const char *filename, loom_err_t *err)
{
    int avx512 = __builtin_cpu_supports("avx512f");
    matmul_walk_t w = {0, avx512 ? 8 : 4, avx512 ? 32 : 16};
    mlirOperationWalk(mlirModuleGetOperation(mod), size_matmul_tiles, &w, MlirWalkPreOrder);
    if (!w.count || !w.tn)
        return 0;
    char script[4096];
    snprintf(script, sizeof script, MATMUL_TRANSFORM_FMT, w.tm, w.tn);
    MlirModule tmod;
    int rc = loom_mlir_parse(m, script, strlen(script), "<matmul transform>", &tmod, err);
    if (rc)
        return rc;
    MlirOperation entry = mlirBlockGetFirstOperation(mlirModuleGetBody(tmod));
    MlirTransformOptions opts = mlirTransformOptionsCreate();
    loom_mlir_diag_begin(m);
    if (mlirLogicalResultIsFailure(mlirTransformApplyNamedSequence(
            mlirModuleGetOperation(mod), entry, mlirModuleGetOperation(tmod), opts)))
        rc = loom_mlir_diag_fail(m, err, LOOM_EINTERNAL, "tiling and vectorising a matmul", filename);
    mlirTransformOptionsDestroy(opts);
    mlirModuleDestroy(tmod);
    return rc;
}

#define MAX_TILINGS 8
typedef struct {
    MlirContext ctx;
    int vec;                       /* floats per host vector register */
    int ntilings;
    char tilings[MAX_TILINGS][32]; /* "1, 16", ... */
} generic_walk_t;


/* A linalg.generic the vector transform handles: 1 to 3 loops on static
 * memrefs; a body of arith/math ops only; an operand with the identity map
 * giving the loop sizes, the innermost one a multiple of a vector of >= 4
 * lanes; no buffer both read and written (the accumulator hoisting assumes
 * inputs and outputs are distinct). Writes the tile sizes into tile. */
static int vector_candidate(MlirOperation op, int vec, char *tile, size_t n)
{
    MlirAttribute iters = mlirOperationGetAttributeByName(op, loom_sr("iterator_types"));
    MlirAttribute maps = mlirOperationGetAttributeByName(op, loom_sr("indexing_maps"));
    MlirAttribute seg = mlirOperationGetAttributeByName(op, loom_sr("operandSegmentSizes"));
    if (mlirAttributeIsNull(iters) || mlirAttributeIsNull(maps) || mlirAttributeIsNull(seg) ||
        mlirDenseArrayGetNumElements(seg) != 2)
        return 0;
    intptr_t loops = mlirArrayAttrGetNumElements(iters), nops = mlirOperationGetNumOperands(op);
    int32_t nins = mlirDenseI32ArrayGetElement(seg, 0);
    if (loops < 1 || loops > 3 || mlirArrayAttrGetNumElements(maps) != nops)
        return 0;
    int64_t inner = 0;
    for (intptr_t i = 0; i < nops; i++) {
        MlirValue v = mlirOperationGetOperand(op, i);
        MlirType t = mlirValueGetType(v);
        if (!mlirTypeIsAMemRef(t) || !mlirShapedTypeHasStaticShape(t))
            return 0;
        if (mlirShapedTypeGetRank(t) == loops &&
            mlirAffineMapIsIdentity(mlirAffineMapAttrGetValue(mlirArrayAttrGetElement(maps, i))))
            inner = mlirShapedTypeGetDimSize(t, loops - 1);
        for (intptr_t o = nins; i < nins && o < nops; o++)
            if (mlirValueEqual(loom_base_buffer(v), loom_base_buffer(mlirOperationGetOperand(op, o))))
                return 0;
    }
    MlirBlock body = mlirRegionGetFirstBlock(mlirOperationGetRegion(op, 0));
    for (MlirOperation b = mlirBlockGetFirstOperation(body); !mlirOperationIsNull(b);
         b = mlirOperationGetNextInBlock(b)) {
        MlirStringRef name = mlirIdentifierStr(mlirOperationGetName(b));
        if (!(name.length > 6 && memcmp(name.data, "arith.", 6) == 0) &&
            !(name.length > 5 && memcmp(name.data, "math.", 5) == 0) && !loom_op_is(b, "linalg.yield"))
            return 0;
    }
    while (vec >= 4 && (inner <= 0 || inner % vec))
        vec /= 2;
    if (vec < 4)
        return 0;
    int k = 0;
    for (intptr_t d = 0; d + 1 < loops; d++)
        k += snprintf(tile + k, n - (size_t)k, "1, ");
    snprintf(tile + k, n - (size_t)k, "%d", vec);
    return 1;
}

static MlirWalkResult mark_vector_candidates(MlirOperation op, void *user)
{
    generic_walk_t *w = user;
    char tile[32];
    if (!loom_op_is(op, "linalg.generic") || !vector_candidate(op, w->vec, tile, sizeof tile))
        return MlirWalkResultAdvance;
    int i = 0;
    while (i < w->ntilings && strcmp(w->tilings[i], tile) != 0)
        i++;
    if (i == MAX_TILINGS)
        return MlirWalkResultAdvance;
    if (i == w->ntilings)
        snprintf(w->tilings[w->ntilings++], sizeof w->tilings[0], "%s", tile);
    mlirOperationSetDiscardableAttributeByName(op, loom_sr("loom.vec"),
                                               mlirStringAttrGet(w->ctx, loom_sr(tile)));
    return MlirWalkResultAdvance;
}

/* Vectorises the kernel's elementwise ops and reductions on a copy of the
 * module (*applied = 1 when it did); if MLIR cannot (a body it does not
 * vectorise), the kernel keeps the plain loops: this is an optimisation,
 * never a new way to fail (loom_codegen_llvm also retries without it when
 * the vectorised module does not lower). */
static int apply_generic_transform(loom_mlir_t *m, MlirModule *mod, int *applied, loom_err_t *err)
{
    *applied = 0;
    generic_walk_t w = {.ctx = loom_mlir_context(m), .vec = host_vector_floats()};
    MlirOperation copy = mlirOperationClone(mlirModuleGetOperation(*mod));
    mlirOperationWalk(copy, mark_vector_candidates, &w, MlirWalkPreOrder);
    if (!w.ntilings) {
        mlirOperationDestroy(copy);
        return 0;
    }
    loom_buf_t script = LOOM_BUF_INIT;
    loom_buf_puts(&script, GENERIC_TRANSFORM_HEAD);
    for (int i = 0; i < w.ntilings; i++) {
        /* tile_using_for yields the tiled op and one loop per tile size. */
        char results[64] = "", types[128] = "";
        int loops = 1;
        for (const char *p = w.tilings[i]; *p; p++)
            loops += *p == ',';
        for (int l = 0; l < loops; l++) {
            size_t r = strlen(results), t = strlen(types);
            snprintf(results + r, sizeof results - r, ", %%l%d", l);
            snprintf(types + t, sizeof types - t, ", !transform.any_op");
        }
        loom_buf_printf(&script, GENERIC_TRANSFORM_TILE_FMT, i, w.tilings[i], i, results, w.tilings[i], types);
    }
    loom_buf_puts(&script, GENERIC_TRANSFORM_TAIL);
    MlirModule tmod;
    int rc = script.data ? loom_mlir_parse(m, script.data, script.len, "<vector transform>", &tmod, err)
                         : loom_err_set(err, LOOM_ENOMEM, "out of memory");
    loom_buf_free(&script);
    if (rc) {
        mlirOperationDestroy(copy);
        return rc;
    }
    MlirTransformOptions opts = mlirTransformOptionsCreate();
    loom_mlir_diag_begin(m);
    if (mlirLogicalResultIsSuccess(mlirTransformApplyNamedSequence(
            copy, mlirBlockGetFirstOperation(mlirModuleGetBody(tmod)), mlirModuleGetOperation(tmod), opts))) {
        mlirModuleDestroy(*mod);
        *mod = mlirModuleFromOperation(copy);
        *applied = 1;
    } else {
        mlirOperationDestroy(copy);
    }
    loom_mlir_diag_begin(m); /* a refused vectorisation is not the kernel's error */
    mlirTransformOptionsDestroy(opts);
    mlirModuleDestroy(tmod);
    return 0;
}

#define MAX_VEXP 64
typedef struct {
    MlirOperation ops[MAX_VEXP];
    int n, overflow;
} vexp_walk_t;

static MlirWalkResult find_vector_exp(MlirOperation op, void *user)
{
    vexp_walk_t *w = user;
    if (!loom_op_is(op, "math.exp"))
        return MlirWalkResultAdvance;
    MlirType t = mlirValueGetType(mlirOperationGetResult(op, 0));
    if (!mlirTypeIsAVector(t) || mlirShapedTypeGetRank(t) != 1 || !mlirTypeIsAF32(mlirShapedTypeGetElementType(t)))
        return MlirWalkResultAdvance;
    if (w->n == MAX_VEXP)
        w->overflow = 1;
    else
        w->ops[w->n++] = op;
    return MlirWalkResultAdvance;
}

/* Replaces every math.exp on a 1-D f32 vector by a call to the polynomial
 * (one private function per vector length, inlined by LLVM). */
static int vector_exp_to_polynomial(loom_mlir_t *m, MlirModule mod, loom_err_t *err)
{
    vexp_walk_t w = {0};
    mlirOperationWalk(mlirModuleGetOperation(mod), find_vector_exp, &w, MlirWalkPreOrder);
    if (w.overflow)
        return 0;
    int lens[MAX_VEXP], nlens = 0;
    MlirContext ctx = loom_mlir_context(m);
    for (int i = 0; i < w.n; i++) {
        MlirValue x = mlirOperationGetOperand(w.ops[i], 0);
        MlirType t = mlirValueGetType(x);
        int len = (int)mlirShapedTypeGetDimSize(t, 0), k = 0;
        while (k < nlens && lens[k] != len)
            k++;
        char name[32];
        snprintf(name, sizeof name, "__loom_vexp%d", len);
        if (k == nlens) {
            lens[nlens++] = len;
            loom_buf_t src = LOOM_BUF_INIT;
            loom_buf_printf(&src, VEXP_FMT, len);
            MlirModule helper;
            int rc = src.data ? loom_mlir_parse(m, src.data, src.len, "<vector exp>", &helper, err)
                              : loom_err_set(err, LOOM_ENOMEM, "out of memory");
            loom_buf_free(&src);
            if (rc)
                return rc;
            MlirOperation fn = mlirBlockGetFirstOperation(mlirModuleGetBody(helper));
            mlirOperationRemoveFromParent(fn);
            mlirBlockAppendOwnedOperation(mlirModuleGetBody(mod), fn);
            mlirModuleDestroy(helper);
        }
        MlirOperationState st = mlirOperationStateGet(loom_sr("func.call"), mlirOperationGetLocation(w.ops[i]));
        MlirNamedAttribute callee = mlirNamedAttributeGet(mlirIdentifierGet(ctx, loom_sr("callee")),
                                                          mlirFlatSymbolRefAttrGet(ctx, loom_sr(name)));
        mlirOperationStateAddOperands(&st, 1, &x);
        mlirOperationStateAddResults(&st, 1, &t);
        mlirOperationStateAddAttributes(&st, 1, &callee);
        MlirOperation call = mlirOperationCreate(&st);
        mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(w.ops[i]), w.ops[i], call);
        mlirValueReplaceAllUsesOfWith(mlirOperationGetResult(w.ops[i], 0), mlirOperationGetResult(call, 0));
        mlirOperationDestroy(w.ops[i]);
    }
    return 0;
}

const char *loom_codegen_pipeline(loom_target_kind_t t, const char *arch, char *buf, size_t n)
{
    if (t == LOOM_TARGET_GPU) {
        /* The three steps loom_codegen_ptx runs, as one text for the key. */
        int k = snprintf(buf, n, "%s %s ", GPU_LOOPS_PIPELINE, GPU_FUSION_STEP);
        if (k > 0 && (size_t)k < n)
            snprintf(buf + k, n - (size_t)k, GPU_PIPELINE_FMT, arch ? arch : "sm_90");
    } else
        snprintf(buf, n, "%s", CPU_PIPELINE);
    return buf;
}

/* ---- module inspection ------------------------------------------------ */

static MlirOperation first_func(MlirModule mod)
{
    MlirOperation op = mlirBlockGetFirstOperation(mlirModuleGetBody(mod));
    while (!mlirOperationIsNull(op) && !loom_op_is(op, "func.func"))
        op = mlirOperationGetNextInBlock(op);
    return op;
}

static void copy_sr(MlirStringRef s, char *out, size_t n)
{
    size_t k = s.length < n - 1 ? s.length : n - 1;
    memcpy(out, s.data, k);
    out[k] = '\0';
}

static int sig_from_func(MlirOperation fn, loom_kernel_sig_t *sig, const char *filename,
                         loom_err_t *err)
{
    memset(sig, 0, sizeof *sig);
    copy_sr(mlirStringAttrGetValue(mlirOperationGetAttributeByName(fn, loom_sr("sym_name"))),
            sig->func, sizeof sig->func);
    MlirType ft = mlirTypeAttrGetValue(mlirOperationGetAttributeByName(fn, loom_sr("function_type")));
    intptr_t nin = mlirFunctionTypeGetNumInputs(ft);
    if (nin > LOOM_KERNEL_MAX_ARGS)
        return loom_err_set(err, LOOM_EINVAL, "%s: kernel @%s has %ld arguments (at most %d)",
                            filename, sig->func, (long)nin, LOOM_KERNEL_MAX_ARGS);
    if (mlirFunctionTypeGetNumResults(ft) != 0)
        return loom_err_set(err, LOOM_EINVAL,
                            "%s: kernel @%s returns values; write results into memref arguments",
                            filename, sig->func);
    for (intptr_t i = 0; i < nin; i++) {
        MlirType t = mlirFunctionTypeGetInput(ft, i);
        loom_kernel_arg_t *a = &sig->args[sig->nargs++];
        snprintf(a->name, sizeof a->name, "arg%d", (int)i);
        if (!mlirTypeIsAMemRef(t) || !mlirShapedTypeHasStaticShape(t) ||
            mlirShapedTypeGetRank(t) < 1 || mlirShapedTypeGetRank(t) > 2)
            return loom_err_set(err, LOOM_EINVAL,
                                "%s: kernel @%s argument %ld must be a static 1-D or 2-D memref",
                                filename, sig->func, (long)i);
        MlirType et = mlirShapedTypeGetElementType(t);
        if (mlirTypeIsAF32(et))
            a->elem = LOOM_ELEM_F32;
        else if (mlirTypeIsAInteger(et) && mlirIntegerTypeGetWidth(et) == 32)
            a->elem = LOOM_ELEM_I32;
        else if (mlirTypeIsAInteger(et) && mlirIntegerTypeGetWidth(et) == 8)
            a->elem = LOOM_ELEM_I8;
        else
            return loom_err_set(err, LOOM_EINVAL,
                                "%s: kernel @%s argument %ld: element type must be f32, i32 or i8",
                                filename, sig->func, (long)i);
        a->rank = (int)mlirShapedTypeGetRank(t);
        for (int d = 0; d < a->rank; d++)
            a->shape[d] = (long)mlirShapedTypeGetDimSize(t, d);
        a->is_input = 1; /* unknown for user kernels: the caller's data is passed in */
    }
    return 0;
}

static int parse_kernel(loom_mlir_t *m, const char *src, size_t n, const char *filename,
                        MlirModule *mod, MlirOperation *fn, loom_err_t *err)
{
    int rc = loom_mlir_parse(m, src, n, filename, mod, err);
    if (rc)
        return rc;
    *fn = first_func(*mod);
    if (mlirOperationIsNull(*fn)) {
        mlirModuleDestroy(*mod);
        return loom_err_set(err, LOOM_EINVAL, "%s: no func.func kernel in the module", filename);
    }
    return 0;
}

int loom_codegen_signature(loom_mlir_t *m, const char *src, size_t n, const char *filename,
                           loom_kernel_sig_t *sig, loom_err_t *err)
{
    MlirModule mod;
    MlirOperation fn;
    int rc = parse_kernel(m, src, n, filename, &mod, &fn, err);
    if (rc)
        return rc;
    rc = sig_from_func(fn, sig, filename, err);
    mlirModuleDestroy(mod);
    return rc;
}

/* ---- CPU / NPU -------------------------------------------------------- */

/* Partial conversions leave what they cannot lower in place. Anything not in
 * the LLVM dialect after the pipeline would only fail later, at JIT time, in
 * a worker; refuse it now at the op's location in the user's file. */
static MlirWalkResult find_non_llvm(MlirOperation op, void *user)
{
    MlirOperation *bad = user;
    MlirStringRef name = mlirIdentifierStr(mlirOperationGetName(op));
    if ((name.length > 5 && memcmp(name.data, "llvm.", 5) == 0) || loom_op_is(op, "builtin.module"))
        return MlirWalkResultAdvance;
    *bad = op;
    return MlirWalkResultInterrupt;
}

static int check_all_llvm(loom_mlir_t *m, MlirModule mod, const char *filename, loom_err_t *err)
{
    MlirOperation bad = {NULL};
    mlirOperationWalk(mlirModuleGetOperation(mod), find_non_llvm, &bad, MlirWalkPreOrder);
    if (mlirOperationIsNull(bad))
        return 0;
    MlirStringRef name = mlirIdentifierStr(mlirOperationGetName(bad));
    char msg[256];
    snprintf(msg, sizeof msg, "'%.*s' has no lowering for the CPU/NPU targets", (int)name.length,
             name.data);
    loom_mlir_diag_begin(m);
    mlirEmitError(mlirOperationGetLocation(bad), msg);
    return loom_mlir_diag_fail(m, err, LOOM_EINVAL, "lowering to LLVM", filename);
}

/* JIT-compiles the kernel once and resolves its entry point, so an external
 * symbol that does not exist (a libm function the process lacks) is an error
 * of `loom kernel` / `loom validate`, not of the first task that runs it. */
static int check_jit_links(loom_mlir_t *m, MlirModule mod, const char *fn, const char *filename,
                           loom_err_t *err)
{
    loom_mlir_diag_begin(m);
    MlirExecutionEngine e = mlirExecutionEngineCreate(mod, 2, 0, NULL, false);
    if (mlirExecutionEngineIsNull(e))
        return loom_mlir_diag_fail(m, err, LOOM_EINTERNAL, "JIT check", filename);
    void *entry = mlirExecutionEngineLookupPacked(e, loom_sr(fn));
    mlirExecutionEngineDestroy(e);
    if (!entry)
        return loom_err_set(err, LOOM_EINVAL,
                            "%s: JIT check: kernel @%s does not link (an external function it "
                            "calls does not exist in this process)",
                            filename, fn);
    return 0;
}

/* Parse, transforms (the generic vectorisation when vectorise is set;
 * *vectorised says whether it applied), pipeline, checks, print. */
static int lower_cpu(loom_mlir_t *m, const char *src, size_t n, const char *filename, int vectorise,
                     int *vectorised, loom_buf_t *out, loom_err_t *err)
{
    MlirModule mod;
    MlirOperation fn;
    *vectorised = 0;
    int rc = parse_kernel(m, src, n, filename, &mod, &fn, err);
    if (rc)
        return rc;
    char fn_name[sizeof ((loom_kernel_sig_t *)0)->func];
    copy_sr(mlirStringAttrGetValue(mlirOperationGetAttributeByName(fn, loom_sr("sym_name"))), fn_name,
            sizeof fn_name);
    /* Every function gets the C interface the JIT's packed call uses. */
    MlirAttribute unit = mlirUnitAttrGet(loom_mlir_context(m));
    for (MlirOperation op = mlirBlockGetFirstOperation(mlirModuleGetBody(mod));
         !mlirOperationIsNull(op); op = mlirOperationGetNextInBlock(op))
        if (loom_op_is(op, "func.func"))
            mlirOperationSetDiscardableAttributeByName(op, loom_sr("llvm.emit_c_interface"), unit);
    char pipe[1024];
    rc = apply_cpu_transform(m, mod, filename, err);
    if (!rc && vectorise)
        rc = apply_generic_transform(m, &mod, vectorised, err);
    if (!rc && *vectorised)
        rc = vector_exp_to_polynomial(m, mod, err);
    if (!rc)
        rc = loom_mlir_run_pipeline(m, mod, loom_codegen_pipeline(LOOM_TARGET_CPU, NULL, pipe, sizeof pipe),
                                    "lowering to LLVM", filename, err);
    if (!rc)
        rc = check_all_llvm(m, mod, filename, err);
    if (!rc)
        rc = check_jit_links(m, mod, fn_name, filename, err);
    if (!rc && loom_mlir_print(mlirModuleGetOperation(mod), out))
        rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
    mlirModuleDestroy(mod);
    return rc;
}

int loom_codegen_llvm(loom_mlir_t *m, const char *src, size_t n, const char *filename,
                      loom_buf_t *out, loom_err_t *err)
{
    int vectorised;
    size_t len = out->len;
    int rc = lower_cpu(m, src, n, filename, 1, &vectorised, out, err);
    if (rc && vectorised) { /* the plain loops, and their error if any */
        out->len = len;
        memset(err, 0, sizeof *err);
        rc = lower_cpu(m, src, n, filename, 0, &vectorised, out, err);
    }
    return rc;
}

/* ---- GPU ---------------------------------------------------------------- */

typedef struct {
    loom_mlir_t *m;
    const char *filename;
    loom_gpu_unit_t *u;
    char names[LOOM_GPU_MAX_LAUNCHES][64]; /* gpu.binary symbol per module */
    int rc;
    loom_err_t *err;
} gpu_walk_t;

static int module_index(gpu_walk_t *w, MlirStringRef name)
{
    for (int i = 0; i < w->u->nmodules; i++)
        if (strlen(w->names[i]) == name.length && memcmp(w->names[i], name.data, name.length) == 0)
            return i;
    return -1;
}

/* A launch operand: a constant, or a kernel buffer. Views keep the base
 * pointer: with the bare-pointer convention a kernel receives the base
 * buffer's pointer and rebuilds the view from its static type (shape,
 * strides, static offset), so a launch operand that is a view of a kernel
 * argument is that argument's buffer. */
static int const_value(MlirValue v, loom_karg_t *k)
{
    while (!mlirValueIsABlockArgument(v) && loom_op_is_view(mlirOpResultGetOwner(v)))
        v = mlirOperationGetOperand(mlirOpResultGetOwner(v), 0);
    if (mlirValueIsABlockArgument(v)) {
        k->kind = LOOM_KARG_BUFFER;
        k->index = mlirBlockArgumentGetArgNumber(v);
        return 0;
    }
    MlirOperation def = mlirOpResultGetOwner(v);
    if (!loom_op_is(def, "arith.constant"))
        return -1;
    MlirAttribute a = mlirOperationGetAttributeByName(def, loom_sr("value"));
    if (mlirAttributeIsAInteger(a)) {
        k->kind = LOOM_KARG_I64;
        k->index = mlirIntegerAttrGetValueInt(a);
        return 0;
    }
    if (mlirAttributeIsAFloat(a)) {
        float f = (float)mlirFloatAttrGetValueDouble(a);
        k->kind = LOOM_KARG_F32;
        memcpy(&k->f32bits, &f, sizeof f);
        return 0;
    }
    return -1;
}

static MlirWalkResult collect_binaries(MlirOperation op, void *user)
{
    gpu_walk_t *w = user;
    if (!loom_op_is(op, "gpu.binary") || w->rc)
        return MlirWalkResultAdvance;
    loom_gpu_unit_t *u = w->u;
    if (u->nmodules == LOOM_GPU_MAX_LAUNCHES) {
        w->rc = loom_err_set(w->err, LOOM_ETOOBIG, "more than %d GPU modules", LOOM_GPU_MAX_LAUNCHES);
        return MlirWalkResultInterrupt;
    }
    copy_sr(mlirStringAttrGetValue(mlirOperationGetAttributeByName(op, loom_sr("sym_name"))),
            w->names[u->nmodules], sizeof w->names[0]);
    MlirAttribute objs = mlirOperationGetAttributeByName(op, loom_sr("objects"));
    MlirAttribute obj = mlirArrayAttrGetElement(objs, 0);
    if (!mlirAttributeIsAGPUObjectAttr(obj)) {
        w->rc = loom_err_set(w->err, LOOM_EINTERNAL, "gpu.binary without an object");
        return MlirWalkResultInterrupt;
    }
    MlirStringRef ptx = mlirGPUObjectAttrGetObject(obj);
    size_t len = ptx.length;
    while (len && ptx.data[len - 1] == '\0') /* the PTX string carries a trailing NUL */
        len--;
    u->ptx[u->nmodules] = malloc(len + 1);
    if (!u->ptx[u->nmodules]) {
        w->rc = loom_err_set(w->err, LOOM_ENOMEM, "out of memory");
        return MlirWalkResultInterrupt;
    }
    memcpy(u->ptx[u->nmodules], ptx.data, len);
    u->ptx[u->nmodules][len] = '\0';
    u->nmodules++;
    return MlirWalkResultAdvance;
}

static MlirWalkResult collect_launches(MlirOperation op, void *user)
{
    gpu_walk_t *w = user;
    if (!loom_op_is(op, "gpu.launch_func") || w->rc)
        return MlirWalkResultAdvance;
    loom_gpu_unit_t *u = w->u;
    if (u->nlaunches == LOOM_GPU_MAX_LAUNCHES) {
        w->rc = loom_err_set(w->err, LOOM_ETOOBIG, "more than %d GPU launches", LOOM_GPU_MAX_LAUNCHES);
        return MlirWalkResultInterrupt;
    }
    loom_gpu_launch_t *l = &u->launches[u->nlaunches];
    memset(l, 0, sizeof *l);
    MlirAttribute kern = mlirOperationGetAttributeByName(op, loom_sr("kernel"));
    l->module = module_index(w, mlirSymbolRefAttrGetRootReference(kern));
    copy_sr(mlirSymbolRefAttrGetLeafReference(kern), l->kernel, sizeof l->kernel);
    /* Operand segments: async deps, grid xyz, block xyz, cluster xyz,
     * dynamic shared memory, kernel operands, async object. */
    MlirAttribute seg = mlirOperationGetAttributeByName(op, loom_sr("operandSegmentSizes"));
    int32_t sz[13] = {0};
    if (l->module < 0 || mlirAttributeIsNull(seg) || mlirDenseArrayGetNumElements(seg) != 13)
        goto bad;
    for (int i = 0; i < 13; i++)
        sz[i] = mlirDenseI32ArrayGetElement(seg, i);
    intptr_t pos = sz[0];
    for (int d = 0; d < 6; d++) {
        loom_karg_t k;
        if (sz[1 + d] != 1 || const_value(mlirOperationGetOperand(op, pos++), &k) ||
            k.kind != LOOM_KARG_I64)
            goto bad;
        (d < 3 ? l->grid : l->block)[d % 3] = (unsigned)k.index;
    }
    if (sz[7] || sz[8] || sz[9] || sz[10] || sz[11] > LOOM_GPU_MAX_KARGS)
        goto bad;
    pos += sz[7] + sz[8] + sz[9] + sz[10];
    for (int a = 0; a < sz[11]; a++)
        if (const_value(mlirOperationGetOperand(op, pos + a), &l->args[a]))
            goto bad;
    l->nargs = sz[11];
    u->nlaunches++;
    return MlirWalkResultAdvance;
bad:
    /* Located at the launch, i.e. at the user's op it was made from. */
    loom_mlir_diag_begin(w->m);
    mlirEmitError(mlirOperationGetLocation(op),
                  "GPU lowering produced a launch Loom cannot describe (a grid size, or an "
                  "argument that is neither a constant nor a view of a kernel buffer with a "
                  "static offset)");
    w->rc = loom_mlir_diag_fail(w->m, w->err, LOOM_EINVAL, "lowering to PTX", w->filename);
    return MlirWalkResultInterrupt;
}

int loom_codegen_ptx(loom_mlir_t *m, const char *src, size_t n, const char *filename,
                     const char *arch, loom_gpu_unit_t *u, loom_err_t *err)
{
    MlirModule mod;
    MlirOperation fn;
    memset(u, 0, sizeof *u);
    if (!arch || strncmp(arch, "sm_", 3) != 0 || strlen(arch) > 8)
        return loom_err_set(err, LOOM_EINVAL, "GPU arch '%s' is not of the form sm_XX",
                            arch ? arch : "");
    int rc = parse_kernel(m, src, n, filename, &mod, &fn, err);
    if (rc)
        return rc;
    char pipe[1024];
    snprintf(pipe, sizeof pipe, GPU_PIPELINE_FMT, arch);
    rc = loom_mlir_run_pipeline(m, mod, GPU_LOOPS_PIPELINE, "lowering to parallel loops", filename, err);
    if (!rc) {
        loom_fuse_parallel_loops(mlirModuleGetOperation(mod));
        rc = loom_mlir_run_pipeline(m, mod, pipe, "lowering to PTX", filename, err);
    }
    if (!rc) {
        gpu_walk_t w = {.m = m, .filename = filename, .u = u, .err = err};
        snprintf(u->arch, sizeof u->arch, "%s", arch);
        mlirOperationWalk(mlirModuleGetOperation(mod), collect_binaries, &w, MlirWalkPreOrder);
        if (!w.rc)
            mlirOperationWalk(mlirModuleGetOperation(mod), collect_launches, &w, MlirWalkPreOrder);
        if (!w.rc && u->nlaunches == 0)
            w.rc = loom_err_set(err, LOOM_EINVAL, "%s: kernel has no parallel work to map to the GPU",
                                filename);
        rc = w.rc;
        if (rc)
            loom_gpu_unit_free(u);
    }
    mlirModuleDestroy(mod);
    return rc;
}

/* ---- JIT ---------------------------------------------------------------- */

struct loom_jit {
    MlirExecutionEngine engine;
};

int loom_jit_new(loom_mlir_t *m, const char *llvm_text, size_t n, loom_jit_t **out,
                 loom_err_t *err)
{
    MlirModule mod;
    int rc = loom_mlir_parse(m, llvm_text, n, "<llvm>", &mod, err);
    if (rc)
        return rc;
    loom_jit_t *j = calloc(1, sizeof *j);
    if (!j) {
        mlirModuleDestroy(mod);
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    }
    loom_mlir_diag_begin(m);
    j->engine = mlirExecutionEngineCreate(mod, 2, 0, NULL, true);
    mlirModuleDestroy(mod);
    if (mlirExecutionEngineIsNull(j->engine)) {
        free(j);
        return loom_mlir_diag_fail(m, err, LOOM_EINTERNAL, "JIT compilation", NULL);
    }
    *out = j;
    return 0;
}

void loom_jit_destroy(loom_jit_t **pj)
{
    if (!pj || !*pj)
        return;
    mlirExecutionEngineDestroy((*pj)->engine);
    free(*pj);
    *pj = NULL;
}

int loom_jit_call(loom_jit_t *j, const loom_kernel_sig_t *sig, void *const *buffers,
                  loom_err_t *err)
{
    /* Strided memref descriptors {alloc, aligned, offset, sizes[r], strides[r]}
     * passed by pointer (the llvm.emit_c_interface convention). */
    int64_t desc[LOOM_KERNEL_MAX_ARGS][7];
    void *dptr[LOOM_KERNEL_MAX_ARGS];
    void *args[LOOM_KERNEL_MAX_ARGS];
    if (sig->nargs > LOOM_KERNEL_MAX_ARGS)
        return loom_err_set(err, LOOM_EINVAL, "too many kernel arguments");
    for (int i = 0; i < sig->nargs; i++) {
        const loom_kernel_arg_t *a = &sig->args[i];
        if (!buffers[i])
            return loom_err_set(err, LOOM_EINVAL, "kernel %s: buffer %d is NULL", sig->func, i);
        memcpy(&desc[i][0], &buffers[i], sizeof(void *));
        memcpy(&desc[i][1], &buffers[i], sizeof(void *));
        desc[i][2] = 0;
        if (a->rank == 2) {
            desc[i][3] = a->shape[0], desc[i][4] = a->shape[1];
            desc[i][5] = a->shape[1], desc[i][6] = 1;
        } else {
            desc[i][3] = a->shape[0], desc[i][4] = 1;
        }
        dptr[i] = desc[i];
        args[i] = &dptr[i];
    }
    if (mlirLogicalResultIsFailure(mlirExecutionEngineInvokePacked(j->engine, loom_sr(sig->func), args)))
        return loom_err_set(err, LOOM_ENOTFOUND, "JIT: no function @%s", sig->func);
    return 0;
}

int loom_jit_write_object(loom_jit_t *j, const char *path, loom_err_t *err)
{
    unlink(path);
    mlirExecutionEngineDumpToObjectFile(j->engine, loom_sr(path));
    if (access(path, R_OK) != 0)
        return loom_err_set(err, LOOM_EIO, "%s: object file was not written", path);
    return 0;
}

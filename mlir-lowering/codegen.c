/* codegen.c — per-target lowering pipelines, the CPU JIT, and reading the
 * launch plan and PTX back out of a lowered GPU module (see codegen.h). */
#include "mlir-lowering/codegen.h"

#include "mlir-lowering/mlir_internal.h"

#include <mlir-c/BuiltinAttributes.h>
#include <mlir-c/BuiltinTypes.h>
#include <mlir-c/Diagnostics.h>
#include <mlir-c/Dialect/GPU.h>
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

/* Loops, then everything to the LLVM dialect. The NPU reference backend runs
 * the same host pipeline on its int8 kernels. Math ops with an LLVM intrinsic
 * (exp, log, sqrt, fma, ...) become intrinsics; the rest (tanh, erf, atan,
 * cbrt, ...) become calls to libm, which the JIT resolves in the worker's
 * process and an object file links against. */
#define CPU_PIPELINE                                                                          \
    "builtin.module(func.func(convert-linalg-to-loops),lower-affine,convert-scf-to-cf,"       \
    "convert-math-to-llvm,convert-math-to-libm,expand-strided-metadata,"                      \
    "finalize-memref-to-llvm,"                                                                \
    "convert-arith-to-llvm,convert-index-to-llvm,convert-func-to-llvm,convert-cf-to-llvm,"    \
    "reconcile-unrealized-casts)"

/* Parallel loops tiled 16x16 (fixed bounds + in-bounds guards, so that any
 * shape maps to blocks x threads), outlined into gpu.modules, NVVM, PTX.
 * Bare-pointer memrefs: each buffer argument is one device pointer. */
#define GPU_PIPELINE_FMT                                                                      \
    "builtin.module(func.func(convert-linalg-to-parallel-loops,"                              \
    "scf-parallel-loop-tiling{parallel-loop-tile-sizes=16,16 no-min-max-bounds=1},"           \
    "gpu-map-parallel-loops,convert-parallel-loops-to-gpu),gpu-kernel-outlining,"             \
    "canonicalize,lower-affine,convert-scf-to-cf,nvvm-attach-target{chip=%s},"                \
    "gpu.module(convert-gpu-to-nvvm{use-bare-ptr-memref-call-conv=1}),"                       \
    "reconcile-unrealized-casts,gpu-module-to-binary{format=isa})"

const char *loom_codegen_pipeline(loom_target_kind_t t, const char *arch, char *buf, size_t n)
{
    if (t == LOOM_TARGET_GPU)
        snprintf(buf, n, GPU_PIPELINE_FMT, arch ? arch : "sm_90");
    else
        snprintf(buf, n, "%s", CPU_PIPELINE);
    return buf;
}

/* ---- module inspection ------------------------------------------------ */

static int op_is(MlirOperation op, const char *name)
{
    MlirStringRef s = mlirIdentifierStr(mlirOperationGetName(op));
    return s.length == strlen(name) && memcmp(s.data, name, s.length) == 0;
}

static MlirOperation first_func(MlirModule mod)
{
    MlirOperation op = mlirBlockGetFirstOperation(mlirModuleGetBody(mod));
    while (!mlirOperationIsNull(op) && !op_is(op, "func.func"))
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
    if ((name.length > 5 && memcmp(name.data, "llvm.", 5) == 0) || op_is(op, "builtin.module"))
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

int loom_codegen_llvm(loom_mlir_t *m, const char *src, size_t n, const char *filename,
                      loom_buf_t *out, loom_err_t *err)
{
    MlirModule mod;
    MlirOperation fn;
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
        if (op_is(op, "func.func"))
            mlirOperationSetDiscardableAttributeByName(op, loom_sr("llvm.emit_c_interface"), unit);
    char pipe[1024];
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

/* ---- GPU ---------------------------------------------------------------- */

typedef struct {
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

static int const_value(MlirValue v, loom_karg_t *k)
{
    if (mlirValueIsABlockArgument(v)) {
        k->kind = LOOM_KARG_BUFFER;
        k->index = mlirBlockArgumentGetArgNumber(v);
        return 0;
    }
    MlirOperation def = mlirOpResultGetOwner(v);
    if (!op_is(def, "arith.constant"))
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
    if (!op_is(op, "gpu.binary") || w->rc)
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
    if (!op_is(op, "gpu.launch_func") || w->rc)
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
    w->rc = loom_err_set(w->err, LOOM_EINTERNAL,
                         "GPU lowering produced a launch Loom cannot describe (non-constant "
                         "grid or argument)");
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
    rc = loom_mlir_run_pipeline(m, mod, loom_codegen_pipeline(LOOM_TARGET_GPU, arch, pipe, sizeof pipe),
                                "lowering to PTX", filename, err);
    if (!rc) {
        gpu_walk_t w = {.u = u, .err = err};
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

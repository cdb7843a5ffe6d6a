/* passes.c — the loom passes, in C on the MLIR C API (see lower.h):
 * decompose-llm, annotate-targets, partition-devices, verify. Each walks the
 * module's functions in order and builds new ops with generic op states, so
 * the output is deterministic. */
#include "mlir-lowering/lower_internal.h"
#include "common/grow.h"

#include <mlir-c/BuiltinAttributes.h>
#include <mlir-c/BuiltinTypes.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The ops of a block, in order, in a fresh array (the passes mutate the
 * body while they go). Caller frees. */
static MlirOperation *block_ops(MlirBlock b, size_t *n)
{
    size_t cap = 16, k = 0;
    MlirOperation *v = malloc(cap * sizeof *v);
    for (MlirOperation op = mlirBlockGetFirstOperation(b); v && !mlirOperationIsNull(op);
         op = mlirOperationGetNextInBlock(op)) {
        if (k == cap) {
            MlirOperation *nv = realloc(v, (cap *= 2) * sizeof *v);
            if (!nv) {
                free(v);
                return NULL;
            }
            v = nv;
        }
        v[k++] = op;
    }
    *n = k;
    return v;
}

/* The ops of a function's body (block_ops). */
static MlirOperation *body_ops(MlirOperation fn, size_t *n)
{
    return block_ops(mlirRegionGetFirstBlock(mlirOperationGetRegion(fn, 0)), n);
}

static MlirOperation *module_funcs(loom_lowering_t *l, size_t *n)
{
    size_t cap = 8, k = 0;
    MlirOperation *v = malloc(cap * sizeof *v);
    for (MlirOperation op = mlirBlockGetFirstOperation(mlirModuleGetBody(l->mod));
         v && !mlirOperationIsNull(op); op = mlirOperationGetNextInBlock(op)) {
        if (!loom_op_is(op, "func.func"))
            continue;
        if (k == cap) {
            MlirOperation *nv = realloc(v, (cap *= 2) * sizeof *v);
            if (!nv) {
                free(v);
                return NULL;
            }
            v = nv;
        }
        v[k++] = op;
    }
    *n = k;
    return v;
}

static const loom_lower_wf_t *find_wf(loom_lowering_t *l, const char *name)
{
    for (size_t w = 0; w < l->nwf; w++)
        if (strcmp(l->wfs[w].name, name) == 0)
            return &l->wfs[w];
    return NULL;
}

/* ---- decompose-llm ---------------------------------------------------- */

static int decompose_one(loom_lowering_t *l, const char *wfname, MlirOperation g, loom_err_t *err)
{
    const loom_lower_node_t *p = loom_lower_node(l, wfname, g, "prefill");
    const loom_lower_node_t *d = loom_lower_node(l, wfname, g, "decode");
    if (!p || !d)
        return loom_op_error(g, err, LOOM_EINVAL,
                             "llm.generate does not name its plan's prefill and decode nodes");
    if (!p->device || !d->device || strcmp(p->device, d->device) == 0)
        return 0; /* one device runs the whole call */
    const loom_lower_wf_t *wf = find_wf(l, wfname);
    double xms = 0, xcost = 0;
    for (size_t e = 0; wf && e < wf->nedges; e++)
        if (wf->edges[e].kv && &wf->nodes[wf->edges[e].src] == p && &wf->nodes[wf->edges[e].dst] == d)
            xms = wf->edges[e].pred_ms, xcost = wf->edges[e].pred_cost;

    char step[256], model[256];
    loom_op_str(g, "step", step, sizeof step);
    loom_op_str(g, "model", model, sizeof model);
    MlirLocation loc = mlirOperationGetLocation(g);
    MlirBlock block = mlirOperationGetBlock(g);
    intptr_t nops = mlirOperationGetNumOperands(g);
    MlirValue *ops = malloc((size_t)(nops ? nops : 1) * sizeof *ops);
    if (!ops)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    for (intptr_t i = 0; i < nops; i++)
        ops[i] = mlirOperationGetOperand(g, i);
    MlirType kv = loom_type(l, "!loom.kv"), text = loom_type(l, "!loom.text");

    MlirNamedAttribute pa[] = {
        loom_attr_str(l, "model", model),          loom_attr_str(l, "node", p->name),
        loom_attr_f64(l, "budget_ms", p->budget_ms), loom_attr_f64(l, "pred_ms", p->pred_ms),
        loom_attr_f64(l, "pred_cost", p->pred_cost), loom_attr_str(l, "step", step),
        loom_attr_str(l, "target", ""),
    };
    MlirOperation pre = loom_op_create(l, "loom.llm.prefill", loc, nops, ops, 1, &kv, 7, pa);
    mlirBlockInsertOwnedOperationBefore(block, g, pre);
    MlirValue kvv = mlirOperationGetResult(pre, 0);

    MlirNamedAttribute ta[] = {
        loom_attr_str(l, "node", p->name), loom_attr_str(l, "to", d->device),
        loom_attr_f64(l, "budget_ms", xms), loom_attr_f64(l, "pred_ms", xms),
        loom_attr_f64(l, "pred_cost", xcost), loom_attr_str(l, "step", step),
        loom_attr_str(l, "target", ""),
    };
    MlirOperation xfer = loom_op_create(l, "loom.kv.transfer", loc, 1, &kvv, 1, &kv, 7, ta);
    mlirBlockInsertOwnedOperationBefore(block, g, xfer);
    MlirValue moved = mlirOperationGetResult(xfer, 0);

    MlirNamedAttribute da[] = {
        loom_attr_str(l, "model", model),          loom_attr_str(l, "node", d->name),
        loom_attr_f64(l, "budget_ms", d->budget_ms), loom_attr_f64(l, "pred_ms", d->pred_ms),
        loom_attr_f64(l, "pred_cost", d->pred_cost), loom_attr_str(l, "step", step),
        loom_attr_str(l, "target", ""),
    };
    MlirOperation dec = loom_op_create(l, "loom.llm.decode", loc, 1, &moved, 1, &text, 7, da);
    mlirBlockInsertOwnedOperationBefore(block, g, dec);
    mlirValueReplaceAllUsesOfWith(mlirOperationGetResult(g, 0), mlirOperationGetResult(dec, 0));
    mlirOperationDestroy(g);
    free(ops);
    return 0;
}

/* The function an op is visited in: its workflow and device ("" in a
 * workflow's function before partition-devices). */
typedef struct {
    char wf[256], dev[256];
} fn_info_t;

/* Calls visit(l, f, op, ud, err) for each op of each function's body, in
 * order, until one returns non-zero. The op list of a function is taken
 * before its first visit, so a visitor may replace the op it is given.
 * The one walker of the passes, the verifier and the readers of a
 * partitioned module. */
typedef int (*op_visit_fn)(loom_lowering_t *l, const fn_info_t *f, MlirOperation op, void *ud, loom_err_t *err);

/* The ops nested in op's regions (a loom.loop's body, ...) first, then op. */
static int visit_nested(loom_lowering_t *l, const fn_info_t *f, MlirOperation op, op_visit_fn visit, void *ud,
                        loom_err_t *err)
{
    int rc = 0;
    for (intptr_t r = 0; r < mlirOperationGetNumRegions(op) && !rc; r++) {
        for (MlirBlock b = mlirRegionGetFirstBlock(mlirOperationGetRegion(op, r)); !mlirBlockIsNull(b) && !rc;
             b = mlirBlockGetNextInRegion(b)) {
            size_t n = 0;
            MlirOperation *inner = block_ops(b, &n);
            if (!inner)
                return loom_err_set(err, LOOM_ENOMEM, "out of memory");
            for (size_t i = 0; i < n && !rc; i++)
                rc = visit_nested(l, f, inner[i], visit, ud, err);
            free(inner);
        }
    }
    return rc ? rc : visit(l, f, op, ud, err);
}

static int each_op(loom_lowering_t *l, op_visit_fn visit, void *ud, loom_err_t *err)
{
    size_t nf = 0;
    int rc = 0;
    MlirOperation *fns = module_funcs(l, &nf);
    if (!fns)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    for (size_t f = 0; f < nf && !rc; f++) {
        fn_info_t fi;
        loom_op_str(fns[f], "loom.workflow", fi.wf, sizeof fi.wf);
        loom_op_str(fns[f], "loom.device", fi.dev, sizeof fi.dev);
        size_t n = 0;
        MlirOperation *ops = body_ops(fns[f], &n);
        if (!ops) {
            rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
            break;
        }
        for (size_t i = 0; i < n && !rc; i++)
            rc = visit_nested(l, &fi, ops[i], visit, ud, err);
        free(ops);
    }
    free(fns);
    return rc;
}

static int decompose_visit(loom_lowering_t *l, const fn_info_t *f, MlirOperation op, void *ud, loom_err_t *err)
{
    (void)ud;
    return loom_op_is(op, "loom.llm.generate") ? decompose_one(l, f->wf, op, err) : 0;
}

int loom_pass_decompose(loom_lowering_t *l, loom_err_t *err)
{
    return each_op(l, decompose_visit, NULL, err);
}

/* ---- annotate-targets ---------------------------------------------------- */

static int annotate_visit(loom_lowering_t *l, const fn_info_t *f, MlirOperation op, void *ud, loom_err_t *err)
{
    (void)ud;
    const char *wf = f->wf;
    if (!loom_op_is_loom(op) || loom_op_is(op, "loom.send") || loom_op_is(op, "loom.recv"))
        return 0;
    const char *attr = loom_op_is(op, "loom.llm.generate") ? "decode" : "node";
    const loom_lower_node_t *node = loom_lower_node(l, wf, op, attr);
    if (!node)
        return loom_op_error(op, err, LOOM_EINVAL, "op has no node of the plan (attribute '%s')", attr);
    if (!node->device || !node->device[0]) {
        int rc = loom_op_error(op, err, LOOM_EINVAL, "node '%s' has no device in the plan", node->name);
        loom_err_hint(err, "run the placement first (loom plan) or pin the step to a device");
        return rc;
    }
    loom_op_set_str(l, op, "target", node->device);
    return 0;
}

int loom_pass_annotate(loom_lowering_t *l, loom_err_t *err)
{
    return each_op(l, annotate_visit, NULL, err);
}

/* ---- partition-devices ------------------------------------------------------ */

typedef struct {
    size_t ndev;
    char **dev;               /* device names, order of first appearance */
    MlirBlock *block;         /* one body per device */
    size_t nops;
    MlirOperation *ops;       /* the workflow function's ops */
    MlirValue *map;           /* [op * ndev + dev] value of op's result on dev */
    MlirValue *arg;           /* [dev] the %inputs argument on dev */
} part_t;

static int dev_index(const part_t *p, const char *name)
{
    for (size_t i = 0; i < p->ndev; i++)
        if (strcmp(p->dev[i], name) == 0)
            return (int)i;
    return -1;
}

static int op_index(const part_t *p, MlirOperation op)
{
    for (size_t i = 0; i < p->nops; i++)
        if (p->ops[i].ptr == op.ptr)
            return (int)i;
    return -1;
}

static void op_target(MlirOperation op, char *out, size_t n) { loom_op_str(op, "target", out, n); }

/* Value of v on device d; -1 op index means the %inputs argument. */
static MlirValue mapped(const part_t *p, MlirValue v, int d)
{
    if (mlirValueIsABlockArgument(v))
        return p->arg[d];
    int i = op_index(p, mlirOpResultGetOwner(v));
    return i < 0 ? (MlirValue){NULL} : p->map[(size_t)i * p->ndev + (size_t)d];
}

static int partition_func(loom_lowering_t *l, MlirOperation fn, loom_err_t *err)
{
    part_t p = {0};
    int rc = 0;
    char wf[256], t[256];
    loom_op_str(fn, "loom.workflow", wf, sizeof wf);
    double sla = loom_op_f64(fn, "loom.sla_ms");
    p.ops = body_ops(fn, &p.nops);
    if (!p.ops)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    p.dev = calloc(p.nops + 1, sizeof *p.dev);
    if (!p.dev) {
        rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < p.nops; i++) {
        if (!loom_op_is_loom(p.ops[i]))
            continue;
        op_target(p.ops[i], t, sizeof t);
        if (!t[0]) {
            rc = loom_op_error(p.ops[i], err, LOOM_EINVAL, "op has no target: run annotate-targets first");
            goto out;
        }
        if (dev_index(&p, t) < 0 && !(p.dev[p.ndev++] = strdup(t))) {
            rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
            goto out;
        }
    }
    p.block = calloc(p.ndev + 1, sizeof *p.block);
    p.arg = calloc(p.ndev + 1, sizeof *p.arg);
    p.map = calloc(p.nops * p.ndev + 1, sizeof *p.map);
    if (!p.block || !p.arg || !p.map) {
        rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto out;
    }
    MlirType text = loom_type(l, "!loom.text");
    MlirLocation floc = mlirOperationGetLocation(fn);
    for (size_t d = 0; d < p.ndev; d++) {
        p.block[d] = mlirBlockCreate(1, &text, &floc);
        p.arg[d] = mlirBlockGetArgument(p.block[d], 0);
    }
    MlirOperation ret = {NULL};
    for (size_t i = 0; i < p.nops; i++) {
        MlirOperation op = p.ops[i];
        if (loom_op_is(op, "func.return")) {
            ret = op;
            continue;
        }
        if (!loom_op_is_loom(op)) {
            rc = loom_op_error(op, err, LOOM_EINVAL, "only loom ops can be partitioned");
            goto out;
        }
        op_target(op, t, sizeof t);
        int d = dev_index(&p, t);
        MlirOperation c = mlirOperationClone(op);
        for (intptr_t k = 0; k < mlirOperationGetNumOperands(op); k++) {
            MlirValue v = mapped(&p, mlirOperationGetOperand(op, k), d);
            if (mlirValueIsNull(v)) { /* cannot happen: producers come first */
                mlirOperationDestroy(c);
                rc = loom_op_error(op, err, LOOM_EINTERNAL, "operand %ld has no value on %s", (long)k, t);
                goto out;
            }
            mlirOperationSetOperand(c, k, v);
        }
        mlirBlockAppendOwnedOperation(p.block[d], c);
        MlirValue r = mlirOperationGetResult(c, 0);
        p.map[i * p.ndev + (size_t)d] = r;
        /* Devices that consume the result elsewhere, in device order. */
        char *needs = calloc(p.ndev + 1, 1);
        if (!needs) {
            rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
            goto out;
        }
        MlirValue orig = mlirOperationGetResult(op, 0);
        for (MlirOpOperand u = mlirValueGetFirstUse(orig); !mlirOpOperandIsNull(u);
             u = mlirOpOperandGetNextUse(u)) {
            MlirOperation user = mlirOpOperandGetOwner(u);
            if (!loom_op_is_loom(user))
                continue;
            char ut[256];
            op_target(user, ut, sizeof ut);
            int ud = dev_index(&p, ut);
            if (ud >= 0 && ud != d)
                needs[ud] = 1;
        }
        char step[256], chan[640];
        loom_op_str(op, "step", step, sizeof step);
        MlirStringRef opname = mlirIdentifierStr(mlirOperationGetName(op));
        for (size_t e = 0; e < p.ndev; e++) {
            if (!needs[e])
                continue;
            snprintf(chan, sizeof chan, "%s:%s/%.*s->%s", wf, step, (int)opname.length - 5,
                     opname.data + 5, p.dev[e]);
            MlirLocation loc = mlirOperationGetLocation(op);
            MlirNamedAttribute sa[] = {loom_attr_str(l, "channel", chan), loom_attr_str(l, "target", t),
                                       loom_attr_str(l, "to", p.dev[e])};
            mlirBlockAppendOwnedOperation(p.block[d], loom_op_create(l, "loom.send", loc, 1, &r, 0, NULL, 3, sa));
            MlirNamedAttribute ra[] = {loom_attr_str(l, "channel", chan), loom_attr_str(l, "from", t),
                                       loom_attr_str(l, "target", p.dev[e])};
            MlirType rt = mlirValueGetType(r);
            MlirOperation recv = loom_op_create(l, "loom.recv", loc, 0, NULL, 1, &rt, 3, ra);
            mlirBlockAppendOwnedOperation(p.block[e], recv);
            p.map[i * p.ndev + e] = mlirOperationGetResult(recv, 0);
        }
        free(needs);
    }
    /* Each device function returns the workflow outputs it produces. */
    MlirBlock modbody = mlirModuleGetBody(l->mod);
    for (size_t d = 0; d < p.ndev; d++) {
        intptr_t nret = 0, nr = mlirOperationIsNull(ret) ? 0 : mlirOperationGetNumOperands(ret);
        MlirValue *rv = calloc((size_t)nr + 1, sizeof *rv);
        MlirType *rtys = calloc((size_t)nr + 1, sizeof *rtys);
        if (!rv || !rtys) {
            free(rv), free(rtys);
            rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
            goto out;
        }
        for (intptr_t k = 0; k < nr; k++) {
            MlirValue v = mlirOperationGetOperand(ret, k);
            if (mlirValueIsABlockArgument(v))
                continue;
            op_target(mlirOpResultGetOwner(v), t, sizeof t);
            if (dev_index(&p, t) == (int)d) {
                rv[nret] = mapped(&p, v, (int)d);
                rtys[nret] = mlirValueGetType(rv[nret]);
                nret++;
            }
        }
        mlirBlockAppendOwnedOperation(p.block[d], loom_op_create(l, "func.return", floc, nret, rv, 0, NULL, 0, NULL));
        MlirRegion region = mlirRegionCreate();
        mlirRegionAppendOwnedBlock(region, p.block[d]);
        p.block[d] = (MlirBlock){NULL}; /* owned by the region now */
        char name[600];
        snprintf(name, sizeof name, "%s@%s", wf, p.dev[d]);
        MlirType fty = mlirFunctionTypeGet(l->ctx, 1, &text, nret, rtys);
        MlirNamedAttribute fa[] = {
            loom_attr_str(l, "sym_name", name),
            mlirNamedAttributeGet(mlirIdentifierGet(l->ctx, loom_sr("function_type")), mlirTypeAttrGet(fty)),
            loom_attr_str(l, "loom.workflow", wf),
            loom_attr_str(l, "loom.device", p.dev[d]),
            loom_attr_f64(l, "loom.sla_ms", sla),
        };
        MlirOperationState st = mlirOperationStateGet(loom_sr("func.func"), floc);
        mlirOperationStateAddAttributes(&st, 5, fa);
        mlirOperationStateAddOwnedRegions(&st, 1, &region);
        mlirBlockInsertOwnedOperationBefore(modbody, fn, mlirOperationCreate(&st));
        free(rv), free(rtys);
        if (l->nfuncs == l->capfuncs) {
            size_t cap = l->capfuncs ? 2 * l->capfuncs : 8;
            char **a = realloc(l->func_names, cap * sizeof *a), **b;
            if (a)
                l->func_names = a;
            b = a ? realloc(l->func_devices, cap * sizeof *b) : NULL;
            if (!a || !b) {
                rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
                goto out;
            }
            l->func_devices = b;
            l->capfuncs = cap;
        }
        l->func_names[l->nfuncs] = strdup(name);
        l->func_devices[l->nfuncs++] = strdup(p.dev[d]);
    }
    mlirOperationDestroy(fn);
out:
    for (size_t d = 0; p.block && d < p.ndev; d++)
        if (!mlirBlockIsNull(p.block[d]))
            mlirBlockDestroy(p.block[d]);
    for (size_t d = 0; p.dev && d < p.ndev; d++)
        free(p.dev[d]);
    free(p.dev), free(p.block), free(p.arg), free(p.map), free(p.ops);
    return rc;
}

int loom_pass_partition(loom_lowering_t *l, loom_err_t *err)
{
    size_t nf = 0;
    int rc = 0;
    MlirOperation *fns = module_funcs(l, &nf);
    if (!fns)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    for (size_t f = 0; f < nf && !rc; f++)
        rc = partition_func(l, fns[f], err);
    free(fns);
    return rc;
}

/* ---- control-regions ---------------------------------------------------------- */

/* The plan node an op runs ("node"; an llm.generate's "decode"), "" if none. */
static void op_node_name(MlirOperation op, char *out, size_t n)
{
    loom_op_str(op, "node", out, n);
    if (!out[0])
        loom_op_str(op, "decode", out, n);
}

static MlirNamedAttribute attr_i64(loom_lowering_t *l, const char *name, long long v)
{
    return mlirNamedAttributeGet(mlirIdentifierGet(l->ctx, loom_sr(name)),
                                 mlirIntegerAttrGet(mlirIntegerTypeGet(l->ctx, 64), v));
}

/* op's operands in a fresh array (*n of them; none for a null op); NULL on OOM. */
static MlirValue *operands_of(MlirOperation op, intptr_t *n)
{
    *n = mlirOperationIsNull(op) ? 0 : mlirOperationGetNumOperands(op);
    MlirValue *v = calloc((size_t)*n + 1, sizeof *v);
    for (intptr_t k = 0; v && k < *n; k++)
        v[k] = mlirOperationGetOperand(op, k);
    return v;
}

/* A region op `name` with one block of nargs !loom.text arguments, before
 * `at` in its block, with the given operands, results and attributes. */
static MlirOperation region_op(loom_lowering_t *l, const char *name, MlirOperation at, intptr_t nargs,
                               intptr_t nops, const MlirValue *ops, intptr_t nres, const MlirType *res,
                               intptr_t nattr, const MlirNamedAttribute *attrs, MlirBlock *body)
{
    MlirLocation loc = mlirOperationGetLocation(at);
    MlirType text = loom_type(l, "!loom.text");
    *body = mlirBlockCreate(nargs, &text, &loc);
    MlirRegion region = mlirRegionCreate();
    mlirRegionAppendOwnedBlock(region, *body);
    MlirOperationState st = mlirOperationStateGet(loom_sr(name), loc);
    if (nops)
        mlirOperationStateAddOperands(&st, nops, ops);
    if (nres)
        mlirOperationStateAddResults(&st, nres, res);
    mlirOperationStateAddAttributes(&st, nattr, attrs);
    mlirOperationStateAddOwnedRegions(&st, 1, &region);
    MlirOperation r = mlirOperationCreate(&st);
    mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(at), at, r);
    return r;
}

/* Wraps op in a loom.foreach (a region over the list `over`; the op gets
 * the item, the region's argument, as its first operand) or a loom.when
 * (a region guarded by `cond`): the region yields op's result and op's
 * users read the region op's instead. Returns the region op. */
static MlirOperation wrap_op(loom_lowering_t *l, MlirOperation op, const char *name, const char *key,
                             const char *expr, const char *dev)
{
    char step[256], node[256];
    loom_op_str(op, "step", step, sizeof step);
    op_node_name(op, node, sizeof node);
    MlirValue res = mlirOperationGetResult(op, 0);
    MlirType rt = mlirValueGetType(res);
    MlirNamedAttribute a[] = {loom_attr_str(l, key, expr), loom_attr_str(l, "node", node),
                              loom_attr_str(l, "step", step), loom_attr_str(l, "target", dev)};
    int foreach = strcmp(name, "loom.foreach") == 0;
    MlirBlock body;
    MlirOperation w = region_op(l, name, op, foreach, 0, NULL, 1, &rt, 4, a, &body);
    mlirValueReplaceAllUsesOfWith(res, mlirOperationGetResult(w, 0));
    MlirOperation y = loom_op_create(l, "gpu.yield", mlirOperationGetLocation(op), 1, &res, 0, NULL, 0, NULL);
    mlirBlockAppendOwnedOperation(body, y);
    mlirOperationMoveBefore(op, y);
    if (foreach && !loom_op_is(op, "loom.llm.decode") && !loom_op_is(op, "loom.kv.transfer")) {
        intptr_t n;
        MlirValue *v = operands_of(op, &n);
        if (v) { /* the item first: one spare slot at the end moves up */
            memmove(v + 1, v, (size_t)n * sizeof *v);
            v[0] = mlirBlockGetArgument(body, 0);
            mlirOperationSetOperands(op, n + 1, v);
            free(v);
        }
    }
    return w;
}

static int wrap_visit(loom_lowering_t *l, const fn_info_t *f, MlirOperation op, void *ud, loom_err_t *err)
{
    (void)ud, (void)err;
    if (!f->dev[0] || !loom_op_is_loom(op) || loom_op_is(op, "loom.send") || loom_op_is(op, "loom.recv") ||
        mlirOperationGetNumRegions(op) > 0)
        return 0;
    char node[256];
    op_node_name(op, node, sizeof node);
    char key[600];
    snprintf(key, sizeof key, "%s/%s", f->wf, node);
    const loom_lower_node_t *n = loom_map_get(l->nodes, key);
    if (!n)
        return 0;
    if (n->foreach)
        op = wrap_op(l, op, "loom.foreach", "over", n->foreach, f->dev);
    if (n->when)
        wrap_op(l, op, "loom.when", "cond", n->when, f->dev);
    return 0;
}

/* The op of block b that holds op (op itself, or the region op it is nested in). */
static MlirOperation top_in(MlirBlock b, MlirOperation op)
{
    while (!mlirOperationIsNull(op) && !mlirBlockEqual(mlirOperationGetBlock(op), b))
        op = mlirOperationGetParentOperation(op);
    return op;
}

static int index_of(MlirOperation *ops, size_t n, MlirOperation op)
{
    for (size_t i = 0; i < n; i++)
        if (mlirOperationEqual(ops[i], op))
            return (int)i;
    return -1;
}

/* In device function fn: the ops of loop `m` (its begin marker; body nodes
 * "<loop>.") become one loom.loop after the last of them. Its region's
 * argument is the loop's input (what the begin marker passed on), it
 * yields what the end marker gathered, which its result replaces; sends of
 * body values and recvs into body ops move in with them (once per
 * iteration). */
static int wrap_loop(loom_lowering_t *l, MlirOperation fn, const fn_info_t *f, const loom_lower_node_t *m,
                     loom_err_t *err)
{
    char loop[256], prefix[260], begin[270], end[270];
    snprintf(loop, sizeof loop, "%.*s", (int)(strlen(m->name) - 6), m->name);
    snprintf(prefix, sizeof prefix, "%s.", loop);
    snprintf(begin, sizeof begin, "%s.begin", loop);
    snprintf(end, sizeof end, "%s.end", loop);
    MlirBlock b = mlirRegionGetFirstBlock(mlirOperationGetRegion(fn, 0));
    size_t n = 0;
    MlirOperation *ops = block_ops(b, &n);
    char *in = calloc(n + 1, 1);
    if (!ops || !in) {
        free(ops), free(in);
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    }
    int ib = -1, ie = -1, last = -1;
    for (size_t i = 0; i < n; i++) {
        char node[256];
        if (!loom_op_is_loom(ops[i]) || loom_op_is(ops[i], "loom.send") || loom_op_is(ops[i], "loom.recv"))
            continue;
        op_node_name(ops[i], node, sizeof node);
        if (strncmp(node, prefix, strlen(prefix)) == 0) {
            in[i] = 1;
            ib = strcmp(node, begin) == 0 ? (int)i : ib;
            ie = strcmp(node, end) == 0 ? (int)i : ie;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (loom_op_is(ops[i], "loom.send")) { /* a body value, not the loop's result */
            MlirValue v = mlirOperationGetOperand(ops[i], 0);
            int o = mlirValueIsAOpResult(v) ? index_of(ops, n, mlirOpResultGetOwner(v)) : -1;
            in[i] = o >= 0 && in[o] && o != ie;
        } else if (loom_op_is(ops[i], "loom.recv")) { /* into a body op */
            for (MlirOpOperand u = mlirValueGetFirstUse(mlirOperationGetResult(ops[i], 0));
                 !mlirOpOperandIsNull(u); u = mlirOpOperandGetNextUse(u)) {
                int o = index_of(ops, n, top_in(b, mlirOpOperandGetOwner(u)));
                if (o >= 0 && in[o])
                    in[i] = 1;
            }
        }
        if (in[i])
            last = (int)i;
    }
    if (last < 0) {
        free(ops), free(in);
        return 0;
    }
    MlirType text = loom_type(l, "!loom.text");
    MlirOperation none = {NULL};
    intptr_t nops, ny;
    MlirValue *operands = operands_of(ib >= 0 ? ops[ib] : none, &nops);
    MlirValue *yv = operands_of(ie >= 0 ? ops[ie] : none, &ny);
    if (!operands || !yv) {
        free(ops), free(in), free(operands), free(yv);
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    }
    MlirNamedAttribute a[6];
    int na = 0;
    a[na++] = attr_i64(l, "max_iterations", m->max_iterations);
    a[na++] = loom_attr_str(l, "node", loop);
    a[na++] = loom_attr_str(l, "step", m->step ? m->step : loop);
    a[na++] = loom_attr_str(l, "target", f->dev);
    if (m->until)
        a[na++] = loom_attr_str(l, "until", m->until);
    MlirBlock body;
    MlirOperation next = mlirOperationGetNextInBlock(ops[last]);
    MlirOperation lp = region_op(l, "loom.loop", next, 1, nops, operands, ie >= 0, &text, na, a, &body);
    free(operands);
    if (ie >= 0)
        mlirValueReplaceAllUsesOfWith(mlirOperationGetResult(ops[ie], 0), mlirOperationGetResult(lp, 0));
    if (ib >= 0)
        mlirValueReplaceAllUsesOfWith(mlirOperationGetResult(ops[ib], 0), mlirBlockGetArgument(body, 0));
    MlirOperation y = loom_op_create(l, "gpu.yield", mlirOperationGetLocation(lp), ny, yv, 0, NULL, 0, NULL);
    free(yv);
    mlirBlockAppendOwnedOperation(body, y);
    for (size_t i = 0; i < n; i++)
        if (in[i] && (int)i != ib && (int)i != ie)
            mlirOperationMoveBefore(ops[i], y);
    if (ie >= 0)
        mlirOperationDestroy(ops[ie]);
    if (ib >= 0)
        mlirOperationDestroy(ops[ib]);
    free(ops), free(in);
    return 0;
}

static size_t depth(const char *name)
{
    size_t d = 0;
    for (; *name; name++)
        d += *name == '.';
    return d;
}

int loom_pass_control(loom_lowering_t *l, loom_err_t *err)
{
    int rc = each_op(l, wrap_visit, NULL, err);
    size_t nf = 0;
    MlirOperation *fns = rc ? NULL : module_funcs(l, &nf);
    if (!rc && !fns)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    for (size_t f = 0; f < nf && !rc; f++) {
        fn_info_t fi;
        loom_op_str(fns[f], "loom.workflow", fi.wf, sizeof fi.wf);
        loom_op_str(fns[f], "loom.device", fi.dev, sizeof fi.dev);
        const loom_lower_wf_t *wf = find_wf(l, fi.wf);
        if (!fi.dev[0] || !wf)
            continue;
        /* innermost loops first: an inner loop is one op of its outer loop's body */
        size_t maxd = 0;
        for (size_t i = 0; i < wf->nnodes; i++)
            if (wf->nodes[i].loop_marker == 1 && depth(wf->nodes[i].name) > maxd)
                maxd = depth(wf->nodes[i].name);
        for (size_t d = maxd + 1; d-- > 0 && !rc;)
            for (size_t i = 0; i < wf->nnodes && !rc; i++)
                if (wf->nodes[i].loop_marker == 1 && depth(wf->nodes[i].name) == d)
                    rc = wrap_loop(l, fns[f], &fi, &wf->nodes[i], err);
    }
    free(fns);
    return rc;
}

/* ---- verify ------------------------------------------------------------------- */

typedef struct {
    char name[256];
    MlirOperation send, recv;
    int nsend, nrecv;
} chan_t;

static int check_channels(chan_t *ch, size_t n, loom_err_t *err)
{
    for (size_t i = 0; i < n; i++) {
        chan_t *c = &ch[i];
        MlirOperation at = c->nsend ? c->send : c->recv;
        if (c->nsend != 1 || c->nrecv != 1)
            return loom_op_error(at, err, LOOM_EINVAL, "channel '%s' has %d send(s) and %d recv(s); want 1 and 1",
                                 c->name, c->nsend, c->nrecv);
        char to[256], from[256], st[256], rt[256];
        loom_op_str(c->send, "to", to, sizeof to);
        loom_op_str(c->send, "target", st, sizeof st);
        loom_op_str(c->recv, "from", from, sizeof from);
        loom_op_str(c->recv, "target", rt, sizeof rt);
        if (strcmp(to, rt) != 0 || strcmp(from, st) != 0)
            return loom_op_error(c->recv, err, LOOM_EINVAL,
                                 "channel '%s': send %s->%s does not match recv %s->%s", c->name, st, to,
                                 from, rt);
        if (strcmp(st, rt) == 0)
            return loom_op_error(c->send, err, LOOM_EINVAL, "channel '%s' does not cross devices", c->name);
        if (!mlirTypeEqual(mlirValueGetType(mlirOperationGetOperand(c->send, 0)),
                           mlirValueGetType(mlirOperationGetResult(c->recv, 0))))
            return loom_op_error(c->recv, err, LOOM_EINVAL, "channel '%s': recv type differs from send type",
                                 c->name);
    }
    return 0;
}

typedef struct {
    chan_t *ch;
    size_t n, cap;
    loom_map_t *index; /* channel name -> its index + 1 (modules with many pairs) */
} chans_t;

/* The entry of channel `name` (NULL when new and out of memory). */
static chan_t *chan_entry(chans_t *cs, const char *name)
{
    if (!cs->index && !(cs->index = loom_map_new(NULL)))
        return NULL;
    uintptr_t at = (uintptr_t)loom_map_get(cs->index, name);
    if (at)
        return &cs->ch[at - 1];
    if (LOOM_GROW(cs->ch, cs->cap, cs->n + 1) != 0)
            return NULL;
    chan_t *c = &cs->ch[cs->n];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    if (loom_map_put(cs->index, c->name, (void *)(uintptr_t)(cs->n + 1)) != 0)
        return NULL;
    cs->n++;
    return c;
}

static void chans_free(chans_t *cs)
{
    free(cs->ch);
    loom_map_destroy(&cs->index);
}

/* Loom's rules on one op: a target, the function of its device; send and
 * recv only in device functions, collected by channel. */
static int verify_visit(loom_lowering_t *l, const fn_info_t *f, MlirOperation op, void *ud, loom_err_t *err)
{
    (void)l;
    chans_t *cs = ud;
    if (!loom_op_is_loom(op))
        return 0;
    char t[256];
    loom_op_str(op, "target", t, sizeof t);
    if (!t[0])
        return loom_op_error(op, err, LOOM_EINVAL, "op has no target device");
    if (f->dev[0] && strcmp(t, f->dev) != 0)
        return loom_op_error(op, err, LOOM_EINVAL, "op targets '%s' but is in the function of device '%s'", t,
                             f->dev);
    int is_send = loom_op_is(op, "loom.send");
    if (!is_send && !loom_op_is(op, "loom.recv"))
        return 0;
    if (!f->dev[0])
        return loom_op_error(op, err, LOOM_EINVAL, "send/recv outside a device function");
    char name[256]; /* channels are unique across the module */
    loom_op_str(op, "channel", name, sizeof name);
    chan_t *c = chan_entry(cs, name);
    if (!c)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    if (is_send)
        c->send = op, c->nsend++;
    else
        c->recv = op, c->nrecv++;
    return 0;
}

int loom_pass_verify(loom_lowering_t *l, loom_err_t *err)
{
    loom_mlir_diag_begin(l->m);
    if (!mlirOperationVerify(mlirModuleGetOperation(l->mod)))
        return loom_mlir_diag_fail(l->m, err, LOOM_EINVAL, "module does not verify", NULL);
    chans_t cs = {0};
    int rc = each_op(l, verify_visit, &cs, err);
    if (!rc)
        rc = check_channels(cs.ch, cs.n, err);
    chans_free(&cs);
    return rc;
}

/* ---- reading a partitioned module back ------------------------------------------------ */

/* Calls fn(ud, workflow, node, device, op, err) for each granular node an
 * op of a device function runs (an llm.generate names two), until fn
 * returns non-zero. */
typedef struct {
    int (*fn)(void *ud, const char *wf, const char *node, const char *dev, MlirOperation op, loom_err_t *err);
    void *ud;
} node_walk_t;

static int node_visit(loom_lowering_t *l, const fn_info_t *f, MlirOperation op, void *ud, loom_err_t *err)
{
    (void)l;
    node_walk_t *w = ud;
    /* transfers run where their producer ran: not a task of their own */
    if (!f->dev[0] || !loom_op_is_loom(op) || loom_op_is(op, "loom.send") || loom_op_is(op, "loom.recv") ||
        loom_op_is(op, "loom.kv.transfer") || mlirOperationGetNumRegions(op) > 0) /* control: loomd's */
        return 0;
    static const char *const node_attrs[] = {"node", "prefill", "decode"};
    int rc = 0;
    for (size_t a = 0; a < 3 && !rc; a++) {
        char node[256];
        loom_op_str(op, node_attrs[a], node, sizeof node);
        if (node[0])
            rc = w->fn(w->ud, f->wf, node, f->dev, op, err);
    }
    return rc;
}

typedef struct {
    loom_placement_fn fn;
    void *ud;
} placements_t;

static int placement_node(void *ud, const char *wf, const char *node, const char *dev, MlirOperation op,
                          loom_err_t *err)
{
    placements_t *p = ud;
    return p->fn(p->ud, wf, node, dev) != 0
               ? loom_op_error(op, err, LOOM_EINVAL, "node '%s' is placed twice in the module", node)
               : 0;
}

int loom_lower_placements(loom_lowering_t *l, loom_placement_fn fn, void *ud, loom_err_t *err)
{
    placements_t p = {fn, ud};
    node_walk_t w = {placement_node, &p};
    return each_op(l, node_visit, &w, err);
}

/* Stops the walk (1) at the op that runs node ud, with err located there. */
static int locate_node(void *ud, const char *wf, const char *node, const char *dev, MlirOperation op,
                       loom_err_t *err)
{
    (void)wf, (void)dev;
    if (strcmp(node, ud) != 0)
        return 0;
    loom_op_locate(op, err);
    return 1;
}

int loom_lower_locate_node(loom_lowering_t *l, const char *node, loom_err_t *err)
{
    node_walk_t w = {locate_node, (void *)node};
    int rc = each_op(l, node_visit, &w, err);
    return rc == 1 ? 0 : rc ? rc : LOOM_ENOTFOUND;
}

/* ---- the send/recv pairs of a partitioned module ------------------------------------------ */

typedef struct {
    chans_t sends;                 /* by channel: the send op */
    loom_channel_fn fn;
    void *ud;
} chan_walk_t;

static int send_visit(loom_lowering_t *l, const fn_info_t *f, MlirOperation op, void *ud, loom_err_t *err)
{
    (void)l;
    chan_walk_t *w = ud;
    return loom_op_is(op, "loom.send") ? verify_visit(l, f, op, &w->sends, err) : 0;
}

/* Each recv, once per node of each op that reads its value. */
static int recv_visit(loom_lowering_t *l, const fn_info_t *f, MlirOperation op, void *ud, loom_err_t *err)
{
    (void)l;
    chan_walk_t *w = ud;
    if (!f->dev[0] || !loom_op_is(op, "loom.recv"))
        return 0;
    char chan[256], from[256], producer[256] = "";
    loom_op_str(op, "channel", chan, sizeof chan);
    loom_op_str(op, "from", from, sizeof from);
    uintptr_t at = w->sends.index ? (uintptr_t)loom_map_get(w->sends.index, chan) : 0;
    if (at) {
        MlirValue v = mlirOperationGetOperand(w->sends.ch[at - 1].send, 0);
        if (mlirValueIsAOpResult(v))
            op_node_name(mlirOpResultGetOwner(v), producer, sizeof producer);
    }
    for (MlirOpOperand u = mlirValueGetFirstUse(mlirOperationGetResult(op, 0)); !mlirOpOperandIsNull(u);
         u = mlirOpOperandGetNextUse(u)) {
        MlirOperation user = mlirOpOperandGetOwner(u);
        static const char *const node_attrs[] = {"node", "prefill", "decode"};
        for (size_t a = 0; a < 3; a++) {
            char consumer[256];
            loom_op_str(user, node_attrs[a], consumer, sizeof consumer);
            int rc = consumer[0] ? w->fn(w->ud, f->wf, chan, from, f->dev, producer, consumer) : 0;
            if (rc)
                return loom_op_error(op, err, rc < 0 ? LOOM_ENOMEM : LOOM_EINVAL,
                                     "channel '%s' is read twice by node '%s'", chan, consumer);
        }
    }
    return 0;
}

int loom_lower_channels(loom_lowering_t *l, loom_channel_fn fn, void *ud, loom_err_t *err)
{
    chan_walk_t w = {.fn = fn, .ud = ud};
    int rc = each_op(l, send_visit, &w, err);
    if (!rc)
        rc = each_op(l, recv_visit, &w, err);
    chans_free(&w.sends);
    return rc;
}

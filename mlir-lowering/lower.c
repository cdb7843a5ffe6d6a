/* lower.c — emission of the loom dialect from a placed granular graph, the
 * pass driver, and the small op helpers the passes share (see lower.h). */
#include "mlir-lowering/lower_internal.h"

#include <mlir-c/BuiltinAttributes.h>
#include <mlir-c/BuiltinTypes.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *pass_names[LOOM_PASS__COUNT] = {
    "emit", "decompose-llm", "annotate-targets", "partition-devices", "control-regions", "verify",
};

const char *loom_pass_name(loom_pass_t p)
{
    return (unsigned)p < LOOM_PASS__COUNT ? pass_names[p] : "?";
}

int loom_pass_parse(const char *name, loom_pass_t *out)
{
    for (int i = 0; i < LOOM_PASS__COUNT; i++)
        if (name && strcmp(name, pass_names[i]) == 0) {
            *out = (loom_pass_t)i;
            return 0;
        }
    return LOOM_ENOTFOUND;
}

/* ---- op helpers ----------------------------------------------------------- */

int loom_op_is(MlirOperation op, const char *name)
{
    MlirStringRef s = mlirIdentifierStr(mlirOperationGetName(op));
    return s.length == strlen(name) && memcmp(s.data, name, s.length) == 0;
}

int loom_op_is_loom(MlirOperation op)
{
    MlirStringRef s = mlirIdentifierStr(mlirOperationGetName(op));
    return s.length > 5 && memcmp(s.data, "loom.", 5) == 0;
}

void loom_op_str(MlirOperation op, const char *attr, char *out, size_t n)
{
    MlirAttribute a = mlirOperationGetAttributeByName(op, loom_sr(attr));
    out[0] = '\0';
    if (mlirAttributeIsNull(a) || !mlirAttributeIsAString(a))
        return;
    MlirStringRef s = mlirStringAttrGetValue(a);
    size_t k = s.length < n - 1 ? s.length : n - 1;
    memcpy(out, s.data, k);
    out[k] = '\0';
}

double loom_op_f64(MlirOperation op, const char *attr)
{
    MlirAttribute a = mlirOperationGetAttributeByName(op, loom_sr(attr));
    return !mlirAttributeIsNull(a) && mlirAttributeIsAFloat(a) ? mlirFloatAttrGetValueDouble(a) : 0.0;
}

MlirNamedAttribute loom_attr_str(loom_lowering_t *l, const char *name, const char *v)
{
    return mlirNamedAttributeGet(mlirIdentifierGet(l->ctx, loom_sr(name)),
                                 mlirStringAttrGet(l->ctx, loom_sr(v ? v : "")));
}

MlirNamedAttribute loom_attr_f64(loom_lowering_t *l, const char *name, double v)
{
    return mlirNamedAttributeGet(mlirIdentifierGet(l->ctx, loom_sr(name)),
                                 mlirFloatAttrDoubleGet(l->ctx, mlirF64TypeGet(l->ctx), v));
}

void loom_op_set_str(loom_lowering_t *l, MlirOperation op, const char *attr, const char *v)
{
    mlirOperationSetAttributeByName(op, loom_sr(attr), mlirStringAttrGet(l->ctx, loom_sr(v ? v : "")));
}

void loom_op_set_f64(loom_lowering_t *l, MlirOperation op, const char *attr, double v)
{
    mlirOperationSetAttributeByName(op, loom_sr(attr),
                                    mlirFloatAttrDoubleGet(l->ctx, mlirF64TypeGet(l->ctx), v));
}

MlirType loom_type(loom_lowering_t *l, const char *name)
{
    return mlirTypeParseGet(l->ctx, loom_sr(name));
}

MlirOperation loom_op_create(loom_lowering_t *l, const char *name, MlirLocation loc,
                             intptr_t nops, const MlirValue *ops, intptr_t nres,
                             const MlirType *res, intptr_t nattr, const MlirNamedAttribute *attrs)
{
    (void)l;
    MlirOperationState st = mlirOperationStateGet(loom_sr(name), loc);
    if (nops)
        mlirOperationStateAddOperands(&st, nops, ops);
    if (nres)
        mlirOperationStateAddResults(&st, nres, res);
    if (nattr)
        mlirOperationStateAddAttributes(&st, nattr, attrs);
    return mlirOperationCreate(&st);
}

static void to_fixed(MlirStringRef s, void *user)
{
    char *dst = user; /* 512 bytes */
    size_t have = strlen(dst), room = 511 - have;
    size_t n = s.length < room ? s.length : room;
    memcpy(dst + have, s.data, n);
    dst[have + n] = '\0';
}

void loom_op_locate(MlirOperation op, loom_err_t *err)
{
    char loc[512] = "", file[256] = "";
    int line = 0, col = 0;
    mlirLocationPrint(mlirOperationGetLocation(op), to_fixed, loc);
    const char *q = strstr(loc, "loc(\"");
    if (!q || !err)
        return;
    q += 5;
    const char *e = strchr(q, '"');
    if (e && (size_t)(e - q) < sizeof file) {
        memcpy(file, q, (size_t)(e - q));
        file[e - q] = '\0';
        if (sscanf(e + 1, ":%d:%d", &line, &col) != 2)
            line = col = 0;
        loom_err_at(err, file, line, col);
    }
}

int loom_op_error(MlirOperation op, loom_err_t *err, int code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    loom_err_set(err, code, "%s", msg);
    loom_op_locate(op, err);
    return code;
}

const loom_lower_node_t *loom_lower_node(loom_lowering_t *l, const char *wf, MlirOperation op,
                                         const char *attr)
{
    char name[256], key[512];
    loom_op_str(op, attr, name, sizeof name);
    if (!name[0])
        return NULL;
    snprintf(key, sizeof key, "%s/%s", wf, name);
    return loom_map_get(l->nodes, key);
}

/* ---- input copy and checks ----------------------------------------------- */

static const char *dup(loom_lowering_t *l, const char *s)
{
    return s ? loom_arena_strdup(l->arena, s) : NULL;
}

static int copy_input(loom_lowering_t *l, const loom_lower_wf_t *wfs, size_t nwf, loom_err_t *err)
{
    l->wfs = loom_arena_calloc(l->arena, nwf ? nwf : 1, sizeof *l->wfs);
    if (!l->wfs)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    l->nwf = nwf;
    for (size_t w = 0; w < nwf; w++) {
        const loom_lower_wf_t *src = &wfs[w];
        loom_lower_wf_t *d = &l->wfs[w];
        if (!src->name || !src->name[0])
            return loom_err_set(err, LOOM_EINVAL, "workflow %zu has no name", w);
        for (size_t v = 0; v < w; v++)
            if (strcmp(l->wfs[v].name, src->name) == 0)
                return loom_err_set(err, LOOM_EINVAL, "workflow '%s' appears twice", src->name);
        *d = *src;
        d->name = dup(l, src->name);
        d->file = dup(l, src->file);
        loom_lower_node_t *nodes = loom_arena_calloc(l->arena, src->nnodes + 1, sizeof *nodes);
        loom_lower_edge_t *edges = loom_arena_calloc(l->arena, src->nedges + 1, sizeof *edges);
        if (!nodes || !edges)
            return loom_err_set(err, LOOM_ENOMEM, "out of memory");
        for (size_t i = 0; i < src->nnodes; i++) {
            const loom_lower_node_t *s = &src->nodes[i];
            nodes[i] = *s;
            nodes[i].name = dup(l, s->name);
            nodes[i].op = dup(l, s->op);
            nodes[i].step = dup(l, s->step);
            nodes[i].model = dup(l, s->model);
            nodes[i].device = dup(l, s->device);
            nodes[i].kernel = dup(l, s->kernel);
            nodes[i].index = dup(l, s->index);
            nodes[i].when = dup(l, s->when);
            nodes[i].foreach = dup(l, s->foreach);
            nodes[i].until = dup(l, s->until);
            if (!s->name || !s->name[0] || !s->op) {
                loom_err_set(err, LOOM_EINVAL, "workflow '%s': node %zu has no name or op", d->name, i);
                if (s->line)
                    loom_err_at(err, d->file, s->line, s->col);
                return LOOM_EINVAL;
            }
            char key[512];
            snprintf(key, sizeof key, "%s/%s", d->name, s->name);
            if (loom_map_has(l->nodes, key)) {
                loom_err_set(err, LOOM_EINVAL, "workflow '%s': node name '%s' is used twice",
                             d->name, s->name);
                if (s->line)
                    loom_err_at(err, d->file, s->line, s->col);
                return LOOM_EINVAL;
            }
            if (loom_map_put(l->nodes, key, &nodes[i]))
                return loom_err_set(err, LOOM_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < src->nedges; i++) {
            edges[i] = src->edges[i];
            if (edges[i].src < 0 || (size_t)edges[i].src >= src->nnodes || edges[i].dst < 0 ||
                (size_t)edges[i].dst >= src->nnodes || edges[i].src == edges[i].dst)
                return loom_err_set(err, LOOM_EINVAL,
                                    "workflow '%s': edge %zu (%d -> %d) does not join two nodes",
                                    d->name, i, edges[i].src, edges[i].dst);
        }
        d->nodes = nodes;
        d->edges = edges;
    }
    return 0;
}

/* ---- emission ---------------------------------------------------------------- */

typedef struct {
    const char *gop;   /* granular op */
    const char *op;    /* loom op */
    const char *kind;  /* loom.tool kind */
} opmap_t;

static const opmap_t opmap[] = {
    {"llm.prefill", "loom.llm.prefill", NULL}, {"llm.decode", "loom.llm.decode", NULL},
    {"embed", "loom.embed", NULL},             {"vector.search", "loom.vector.search", NULL},
    {"tool.exec", "loom.tool", "exec"},        {"tool.http", "loom.tool", "http"},
    {"compute", "loom.compute", NULL},         {"noop", "loom.tool", "noop"},
};

static const opmap_t *find_op(const char *gop)
{
    for (size_t i = 0; i < sizeof opmap / sizeof opmap[0]; i++)
        if (strcmp(opmap[i].gop, gop) == 0)
            return &opmap[i];
    return NULL;
}

static MlirLocation node_loc(loom_lowering_t *l, const loom_lower_wf_t *wf, const loom_lower_node_t *n)
{
    if (n->line > 0)
        return mlirLocationFileLineColGet(l->ctx, loom_sr(wf->file ? wf->file : wf->name),
                                          (unsigned)n->line, (unsigned)(n->col > 0 ? n->col : 1));
    return mlirLocationNameGet(l->ctx, loom_sr(n->name), mlirLocationUnknownGet(l->ctx));
}

static int node_err(loom_err_t *err, const loom_lower_wf_t *wf, const loom_lower_node_t *n, int code,
                    const char *what)
{
    loom_err_set(err, code, "workflow '%s', node '%s': %s", wf->name, n->name, what);
    if (n->line > 0)
        loom_err_at(err, wf->file, n->line, n->col);
    loom_err_field(err, "steps.%s", n->step ? n->step : n->name);
    return code;
}

/* Kahn's algorithm, always taking the lowest-index ready node: stable. */
/* Edges grouped by destination (by_dst) or source, each group in edge
 * order (CSR): group v is idx[at[v] .. at[v + 1]). Free both. */
static int edge_index(const loom_lower_wf_t *wf, int by_dst, size_t **pat, size_t **pidx)
{
    size_t n = wf->nnodes, *at = calloc(n + 2, sizeof *at), *idx = malloc((wf->nedges + 1) * sizeof *idx);
    *pat = at, *pidx = idx;
    if (!at || !idx)
        return LOOM_ENOMEM;
#define END(e) (by_dst ? wf->edges[e].dst : wf->edges[e].src)
    for (size_t e = 0; e < wf->nedges; e++)
        at[END(e) + 2]++;
    for (size_t i = 2; i < n + 2; i++)
        at[i] += at[i - 1];
    for (size_t e = 0; e < wf->nedges; e++) /* at[v + 1]: next free slot of v */
        idx[at[END(e) + 1]++] = e;
#undef END
    return 0;
}

/* Min-heap of node indices (topo_order's ready set). */
static void heap_push(int *h, size_t *n, int v)
{
    size_t i = (*n)++;
    for (; i > 0 && h[(i - 1) / 2] > v; i = (i - 1) / 2)
        h[i] = h[(i - 1) / 2];
    h[i] = v;
}

static int heap_pop(int *h, size_t *n)
{
    int top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && h[c + 1] < h[c])
            c++;
        if (h[c] >= last)
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n)
        h[i] = last;
    return top;
}

/* A topological order that always takes the lowest-numbered ready node
 * (so the module's text, and its cache key, depend only on the graph), in
 * O(edges log nodes). */
static int topo_order(const loom_lower_wf_t *wf, int *order, loom_err_t *err)
{
    size_t n = wf->nnodes, k = 0, nready = 0;
    int *indeg = calloc(n + 1, sizeof *indeg), *ready = malloc((n + 1) * sizeof *ready);
    size_t *out_at, *out_edge;
    int rc = edge_index(wf, 0, &out_at, &out_edge);
    if (rc || !indeg || !ready) {
        rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t e = 0; e < wf->nedges; e++)
        indeg[wf->edges[e].dst]++;
    for (size_t i = 0; i < n; i++)
        if (!indeg[i])
            heap_push(ready, &nready, (int)i);
    while (nready) {
        int i = heap_pop(ready, &nready);
        order[k++] = i;
        for (size_t j = out_at[i]; j < out_at[i + 1]; j++)
            if (--indeg[wf->edges[out_edge[j]].dst] == 0)
                heap_push(ready, &nready, wf->edges[out_edge[j]].dst);
    }
    if (k < n) {
        size_t i;
        for (i = 0; i < n && indeg[i] == 0; i++)
            ;
        rc = node_err(err, wf, &wf->nodes[i < n ? i : 0], LOOM_EINVAL, "is on a dependency cycle");
    }
out:
    free(indeg), free(ready), free(out_at), free(out_edge);
    return rc;
}

static MlirNamedAttribute attr_i64(loom_lowering_t *l, const char *name, long long v)
{
    return mlirNamedAttributeGet(mlirIdentifierGet(l->ctx, loom_sr(name)),
                                 mlirIntegerAttrGet(mlirIntegerTypeGet(l->ctx, 64), v));
}

/* Emits the ops of node i (or of the merged generate when i is a decode
 * merged with its prefill `pre`). */
static MlirOperation emit_node(loom_lowering_t *l, const loom_lower_wf_t *wf, int i, int pre,
                               const MlirValue *operands, intptr_t nops, loom_err_t *err)
{
    const loom_lower_node_t *n = &wf->nodes[i];
    const loom_lower_node_t *p = pre >= 0 ? &wf->nodes[pre] : NULL;
    MlirNamedAttribute a[12];
    int na = 0;
    const char *opname;
    MlirType rt = loom_type(l, "!loom.text");
    if (p) {
        opname = "loom.llm.generate";
        a[na++] = loom_attr_str(l, "model", n->model ? n->model : p->model);
        a[na++] = loom_attr_str(l, "prefill", p->name);
        a[na++] = loom_attr_str(l, "decode", n->name);
        a[na++] = loom_attr_f64(l, "budget_ms", p->budget_ms + n->budget_ms);
        a[na++] = loom_attr_f64(l, "pred_ms", p->pred_ms + n->pred_ms);
        a[na++] = loom_attr_f64(l, "pred_cost", p->pred_cost + n->pred_cost);
    } else {
        const opmap_t *m = find_op(n->op);
        if (!m) {
            node_err(err, wf, n, LOOM_EINVAL, "unknown op kind");
            loom_err_detail(err, "op '%s'", n->op);
            return (MlirOperation){NULL};
        }
        opname = m->op;
        if (strcmp(n->op, "llm.prefill") == 0)
            rt = loom_type(l, "!loom.kv");
        if (m->kind)
            a[na++] = loom_attr_str(l, "kind", m->kind);
        if (strcmp(n->op, "llm.prefill") == 0 || strcmp(n->op, "llm.decode") == 0 ||
            strcmp(n->op, "embed") == 0)
            a[na++] = loom_attr_str(l, "model", n->model);
        if (strcmp(n->op, "vector.search") == 0) {
            a[na++] = loom_attr_str(l, "index", n->index);
            a[na++] = attr_i64(l, "k", n->topk > 0 ? n->topk : 0); /* 0: set at run time */
        }
        if (strcmp(n->op, "compute") == 0)
            a[na++] = loom_attr_str(l, "kernel", n->kernel);
        a[na++] = loom_attr_str(l, "node", n->name);
        a[na++] = loom_attr_f64(l, "budget_ms", n->budget_ms);
        a[na++] = loom_attr_f64(l, "pred_ms", n->pred_ms);
        a[na++] = loom_attr_f64(l, "pred_cost", n->pred_cost);
    }
    a[na++] = loom_attr_str(l, "step", n->step ? n->step : n->name);
    a[na++] = loom_attr_str(l, "target", "");
    return loom_op_create(l, opname, node_loc(l, wf, n), nops, operands, 1, &rt, na, a);
}

static int emit_workflow(loom_lowering_t *l, const loom_lower_wf_t *wf, loom_err_t *err)
{
    size_t n = wf->nnodes;
    int rc = 0;
    int *order = calloc(n + 1, sizeof *order);
    int *merged = malloc((n + 1) * sizeof *merged); /* decode -> its prefill, else -1 */
    int *outdeg = calloc(n + 1, sizeof *outdeg);
    MlirValue *val = calloc(n + 1, sizeof *val);
    MlirValue *ops = calloc(n + 1, sizeof *ops);
    MlirValue *rets = calloc(n + 1, sizeof *rets);
    MlirType *rtypes = calloc(n + 1, sizeof *rtypes);
    char *is_mp = calloc(n + 1, 1); /* prefill merged into a generate */
    size_t *in_at, *in_edge; /* in-edges by destination: operands in O(edges) */
    int no_index = edge_index(wf, 1, &in_at, &in_edge);
    if (no_index || !is_mp || !order || !merged || !outdeg || !val || !ops || !rets || !rtypes) {
        rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = topo_order(wf, order, err)))
        goto out;
    for (size_t i = 0; i < n; i++)
        merged[i] = -1;
    for (size_t e = 0; e < wf->nedges; e++)
        outdeg[wf->edges[e].src]++;
    /* A prefill whose only consumer is its step's decode (through the KV
     * edge) is emitted with it as one llm.generate. */
    for (size_t e = 0; e < wf->nedges; e++) {
        const loom_lower_edge_t *ed = &wf->edges[e];
        const loom_lower_node_t *p = &wf->nodes[ed->src], *d = &wf->nodes[ed->dst];
        if (ed->kv && strcmp(p->op, "llm.prefill") == 0 && strcmp(d->op, "llm.decode") == 0 &&
            outdeg[ed->src] == 1 && p->step && d->step && strcmp(p->step, d->step) == 0)
            merged[ed->dst] = ed->src, is_mp[ed->src] = 1;
    }

    MlirType text = loom_type(l, "!loom.text");
    MlirLocation floc = wf->file ? mlirLocationFileLineColGet(l->ctx, loom_sr(wf->file), 1, 1)
                                 : mlirLocationUnknownGet(l->ctx);
    MlirBlock body = mlirBlockCreate(1, &text, &floc);
    MlirValue inputs = mlirBlockGetArgument(body, 0);
    for (size_t k = 0; k < n; k++) {
        int i = order[k];
        if (is_mp[i])
            continue; /* emitted with its decode */
        /* Operands: producers of the node's in-edges (and of its merged
         * prefill's), in edge order; none -> the run's inputs. */
        intptr_t nops = 0;
        for (int pass = 0; pass < 2; pass++) {
            int who = pass == 0 ? (merged[i] >= 0 ? merged[i] : -1) : i;
            if (who < 0)
                continue;
            for (size_t k2 = in_at[who]; k2 < in_at[who + 1]; k2++) {
                const loom_lower_edge_t *ed = &wf->edges[in_edge[k2]];
                if (!(merged[i] >= 0 && ed->src == merged[i]))
                    ops[nops++] = val[ed->src];
            }
        }
        if (nops == 0)
            ops[nops++] = inputs;
        MlirOperation op = emit_node(l, wf, i, merged[i], ops, nops, err);
        if (mlirOperationIsNull(op)) {
            rc = err ? err->code : LOOM_EINVAL;
            mlirBlockDestroy(body);
            goto out;
        }
        mlirBlockAppendOwnedOperation(body, op);
        val[i] = mlirOperationGetResult(op, 0);
    }
    /* Sinks are the workflow's outputs, in node order. */
    intptr_t nret = 0;
    for (size_t i = 0; i < n; i++) {
        if ((outdeg[i] == 0 || wf->nodes[i].output) && !is_mp[i]) {
            rets[nret] = val[i];
            rtypes[nret++] = mlirValueGetType(val[i]);
        }
    }
    mlirBlockAppendOwnedOperation(body, loom_op_create(l, "func.return", floc, nret, rets, 0, NULL, 0, NULL));

    MlirRegion region = mlirRegionCreate();
    mlirRegionAppendOwnedBlock(region, body);
    MlirType fty = mlirFunctionTypeGet(l->ctx, 1, &text, nret, rtypes);
    MlirNamedAttribute fa[4] = {
        loom_attr_str(l, "sym_name", wf->name),
        mlirNamedAttributeGet(mlirIdentifierGet(l->ctx, loom_sr("function_type")), mlirTypeAttrGet(fty)),
        loom_attr_str(l, "loom.workflow", wf->name),
        loom_attr_f64(l, "loom.sla_ms", wf->sla_ms),
    };
    MlirOperationState st = mlirOperationStateGet(loom_sr("func.func"), floc);
    mlirOperationStateAddAttributes(&st, 4, fa);
    mlirOperationStateAddOwnedRegions(&st, 1, &region);
    mlirBlockAppendOwnedOperation(mlirModuleGetBody(l->mod), mlirOperationCreate(&st));
out:
    free(is_mp), free(order), free(merged), free(outdeg), free(val), free(ops), free(rets), free(rtypes);
    free(in_at), free(in_edge);
    return rc;
}

/* Verification right after emission turns a malformed graph (wrong value
 * types into an op) into a located diagnostic. */
int loom_lower_emit(loom_mlir_t *m, const loom_lower_wf_t *wfs, size_t nwf,
                    loom_lowering_t **out, loom_err_t *err)
{
    loom_lowering_t *l = calloc(1, sizeof *l);
    int rc;
    if (!l)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    l->m = m;
    l->ctx = loom_mlir_context(m);
    l->arena = loom_arena_new(0);
    l->nodes = loom_map_new(NULL);
    l->mod = mlirModuleCreateEmpty(mlirLocationUnknownGet(l->ctx));
    if (!l->arena || !l->nodes) {
        rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = copy_input(l, wfs, nwf, err)))
        goto fail;
    for (size_t w = 0; w < l->nwf; w++)
        if ((rc = emit_workflow(l, &l->wfs[w], err)))
            goto fail;
    loom_mlir_diag_begin(m);
    if (!mlirOperationVerify(mlirModuleGetOperation(l->mod))) {
        rc = loom_mlir_diag_fail(m, err, LOOM_EINVAL, "the plan does not lower to valid IR", NULL);
        goto fail;
    }
    l->done = LOOM_PASS_EMIT;
    *out = l;
    return 0;
fail:
    loom_lower_destroy(&l);
    return rc;
}

int loom_lower_run(loom_lowering_t *l, loom_pass_t last, loom_err_t *err)
{
    static int (*const passes[LOOM_PASS__COUNT])(loom_lowering_t *, loom_err_t *) = {
        NULL, loom_pass_decompose, loom_pass_annotate, loom_pass_partition, loom_pass_control, loom_pass_verify,
    };
    if ((unsigned)last >= LOOM_PASS__COUNT)
        return loom_err_set(err, LOOM_EINVAL, "unknown pass %d", (int)last);
    while (l->done < last) {
        int rc = passes[l->done + 1](l, err);
        if (rc)
            return rc;
        l->done++;
    }
    return 0;
}

int loom_lower_print(loom_lowering_t *l, loom_buf_t *out)
{
    return loom_mlir_print(mlirModuleGetOperation(l->mod), out);
}

size_t loom_lower_nfuncs(const loom_lowering_t *l) { return l->nfuncs; }
const char *loom_lower_func_name(const loom_lowering_t *l, size_t i)
{
    return i < l->nfuncs ? l->func_names[i] : NULL;
}
const char *loom_lower_func_device(const loom_lowering_t *l, size_t i)
{
    return i < l->nfuncs ? l->func_devices[i] : NULL;
}

void loom_lower_destroy(loom_lowering_t **pl)
{
    if (!pl || !*pl)
        return;
    loom_lowering_t *l = *pl;
    if (!mlirModuleIsNull(l->mod))
        mlirModuleDestroy(l->mod);
    for (size_t i = 0; i < l->nfuncs; i++)
        free(l->func_names[i]), free(l->func_devices[i]);
    free(l->func_names);
    free(l->func_devices);
    loom_map_destroy(&l->nodes);
    loom_arena_destroy(&l->arena);
    free(l);
    *pl = NULL;
}

int loom_lower_text(loom_mlir_t *m, const loom_lower_wf_t *wfs, size_t nwf, loom_pass_t last,
                    loom_buf_t *out, loom_err_t *err)
{
    loom_lowering_t *l = NULL;
    int rc = loom_lower_emit(m, wfs, nwf, &l, err);
    if (!rc)
        rc = loom_lower_run(l, last, err);
    if (!rc && loom_lower_print(l, out))
        rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
    loom_lower_destroy(&l);
    return rc;
}

int loom_lower_verify_text(loom_mlir_t *m, const char *text, size_t n, const char *filename,
                           loom_err_t *err)
{
    return loom_lower_placements_text(m, text, n, filename, NULL, NULL, err);
}

/* Parses and verifies a partitioned module given as text into a lowering
 * (caller destroys), with the parse buffer's name in err replaced by
 * filename. */
static int parse_verified(loom_mlir_t *m, const char *text, size_t n, const char *filename, loom_lowering_t **out,
                          loom_err_t *err)
{
    loom_lowering_t *l = calloc(1, sizeof *l);
    *out = l;
    if (!l)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    l->m = m;
    l->ctx = loom_mlir_context(m);
    int rc = loom_mlir_parse(m, text, n, filename, &l->mod, err);
    return rc ? rc : loom_pass_verify(l, err);
}

/* "-" is the parsed buffer's name in MLIR's locations: the caller's file name instead. */
static void name_buffer(loom_err_t *err, const char *filename)
{
    if (err && filename && strcmp(err->file, "-") == 0)
        loom_err_at(err, filename, err->line, err->col);
}

int loom_lower_placements_text(loom_mlir_t *m, const char *text, size_t n, const char *filename,
                               loom_placement_fn fn, void *ud, loom_err_t *err)
{
    return loom_lower_read_text(m, text, n, filename, fn, ud, NULL, NULL, err);
}

int loom_lower_read_text(loom_mlir_t *m, const char *text, size_t n, const char *filename, loom_placement_fn pf,
                         void *pud, loom_channel_fn cf, void *cud, loom_err_t *err)
{
    loom_lowering_t *l = NULL;
    int rc = parse_verified(m, text, n, filename, &l, err);
    if (!rc && pf)
        rc = loom_lower_placements(l, pf, pud, err);
    if (!rc && cf)
        rc = loom_lower_channels(l, cf, cud, err);
    if (rc)
        name_buffer(err, filename);
    loom_lower_destroy(&l);
    return rc;
}

int loom_lower_locate_node_text(loom_mlir_t *m, const char *text, size_t n, const char *filename, const char *node,
                                loom_err_t *err)
{
    loom_lowering_t *l = NULL;
    loom_err_t perr = {0};
    int rc = parse_verified(m, text, n, filename, &l, &perr);
    if (!rc && (rc = loom_lower_locate_node(l, node, err)) == 0)
        name_buffer(err, filename);
    loom_lower_destroy(&l);
    return rc;
}

/* profile.c — see profile.h. A handful of entries: linear lookup. */
#include "planner/profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "planner/catalog.h"
#include "planner/yfile.h"
#include "common/grow.h"

typedef struct {
    int kind;            /* op kind or edge kind */
    const char *a, *b;   /* device (op) / from, to (transfer) */
    const char *step;    /* NULL = any */
    loom_measure_t m;
    int line, col;       /* where the entry is in its file; 0 = added in code */
} entry_t;

struct loom_profile {
    loom_arena_t *arena;
    const char *file;    /* for messages; NULL = built in code */
    entry_t *ops, *xfers;
    size_t nops, nx, capops, capx;
};

loom_profile_t *loom_profile_new(void)
{
    loom_profile_t *p = calloc(1, sizeof *p);
    if (p && !(p->arena = loom_arena_new(0))) {
        free(p);
        p = NULL;
    }
    return p;
}

void loom_profile_destroy(loom_profile_t **pp)
{
    if (!pp || !*pp)
        return;
    loom_arena_destroy(&(*pp)->arena);
    free((*pp)->ops);
    free((*pp)->xfers);
    free(*pp);
    *pp = NULL;
}

static int push(loom_profile_t *p, entry_t **arr, size_t *n, size_t *cap, const entry_t *e, loom_err_t *err)
{
    if (LOOM_GROW(*arr, *cap, *n + 1) != 0)
            return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    entry_t *o = &(*arr)[(*n)++];
    *o = *e;
    o->a = loom_arena_strdup(p->arena, e->a);
    o->b = e->b ? loom_arena_strdup(p->arena, e->b) : NULL;
    o->step = e->step ? loom_arena_strdup(p->arena, e->step) : NULL;
    return 0;
}

static int check_measure(const loom_measure_t *m, loom_err_t *err)
{
    if (m->latency_ms < 0 && m->scale < 0)
        return loom_err_set(err, LOOM_EINVAL, "a measurement needs latency_ms or scale");
    if (m->scale == 0)
        return loom_err_set(err, LOOM_EINVAL, "scale must be > 0");
    return 0;
}

int loom_profile_add_op(loom_profile_t *p, loom_gop_t op, const char *device, const char *step,
                        const loom_measure_t *m, loom_err_t *err)
{
    if (!device || check_measure(m, err))
        return err && err->code ? err->code : loom_err_set(err, LOOM_EINVAL, "profile op without device");
    entry_t e = {.kind = (int)op, .a = device, .step = step, .m = *m};
    return push(p, &p->ops, &p->nops, &p->capops, &e, err);
}

int loom_profile_add_transfer(loom_profile_t *p, loom_gedge_kind_t kind, const char *from,
                              const char *to, const loom_measure_t *m, loom_err_t *err)
{
    if (!from || !to || check_measure(m, err))
        return err && err->code ? err->code : loom_err_set(err, LOOM_EINVAL, "profile transfer without from/to");
    entry_t e = {.kind = (int)kind, .a = from, .b = to, .m = *m};
    return push(p, &p->xfers, &p->nx, &p->capx, &e, err);
}

const loom_measure_t *loom_profile_op(const loom_profile_t *p, loom_gop_t op, const char *device,
                                      const char *step)
{
    const loom_measure_t *any = NULL;
    for (size_t i = 0; p && i < p->nops; i++) {
        const entry_t *e = &p->ops[i];
        if (e->kind != (int)op || strcmp(e->a, device) != 0)
            continue;
        if (e->step && step && strcmp(e->step, step) == 0)
            return &e->m;
        if (!e->step && !any)
            any = &e->m;
    }
    return any;
}

const loom_measure_t *loom_profile_transfer(const loom_profile_t *p, loom_gedge_kind_t kind,
                                            const char *from, const char *to)
{
    for (size_t i = 0; p && i < p->nx; i++) {
        const entry_t *e = &p->xfers[i];
        if (e->kind == (int)kind && strcmp(e->a, from) == 0 && strcmp(e->b, to) == 0)
            return &e->m;
    }
    return NULL;
}

int loom_profile_size(const loom_profile_t *p) { return p ? (int)(p->nops + p->nx) : 0; }

static int entry_error(const loom_profile_t *p, const entry_t *e, const char *list, size_t i, loom_err_t *err,
                       const char *what, const char *name)
{
    loom_err_set(err, LOOM_EINVAL, "%s '%s' matches nothing", what, name);
    loom_err_at(err, p->file, e->line, e->col);
    loom_err_field(err, "%s[%zu]", list, i);
    return LOOM_EINVAL;
}

int loom_profile_check(const loom_profile_t *p, const loom_catalog_t *cat, const loom_graph_t *const *graphs,
                       size_t n_graphs, loom_err_t *err)
{
    for (size_t i = 0; p && i < p->nops; i++) {
        const entry_t *e = &p->ops[i];
        if (loom_catalog_find(cat, e->a) < 0)
            return entry_error(p, e, "ops", i, err, "device", e->a);
        if (!e->step)
            continue;
        int found = 0;
        for (size_t gi = 0; gi < n_graphs && !found; gi++)
            for (size_t v = 0; v < loom_graph_nodes(graphs[gi]) && !found; v++) {
                const loom_gnode_t *nd = loom_graph_node(graphs[gi], (int)v);
                found = nd->op == (loom_gop_t)e->kind && nd->step && strcmp(nd->step, e->step) == 0;
            }
        if (!found) {
            entry_error(p, e, "ops", i, err, "step", e->step);
            loom_err_hint(err, "no %s op of a step with that id in the workflow(s) planned",
                          loom_gop_name((loom_gop_t)e->kind));
            return LOOM_EINVAL;
        }
    }
    for (size_t i = 0; p && i < p->nx; i++) {
        const entry_t *e = &p->xfers[i];
        if (loom_catalog_find(cat, e->a) < 0)
            return entry_error(p, e, "transfers", i, err, "device", e->a);
        if (loom_catalog_find(cat, e->b) < 0)
            return entry_error(p, e, "transfers", i, err, "device", e->b);
    }
    return 0;
}

static int read_measure(loom_yfile_t *y, int m, const char *f, loom_measure_t *out, loom_err_t *err)
{
    *out = (loom_measure_t){.latency_ms = -1, .cost_usd = -1, .scale = -1, .cv = -1};
    if (loom_yfile_num(y, m, "latency_ms", f, 0, &out->latency_ms, err) ||
        loom_yfile_num(y, m, "cost_usd", f, 0, &out->cost_usd, err) ||
        loom_yfile_num(y, m, "scale", f, 0, &out->scale, err) ||
        loom_yfile_num(y, m, "cv", f, 0, &out->cv, err))
        return LOOM_EPARSE;
    if (out->latency_ms < 0 && out->scale <= 0)
        return loom_yfile_error(y, err, m, f, "needs latency_ms >= 0 or scale > 0");
    if (loom_yfile_get(y, m, "cost_usd") && out->cost_usd < 0)
        return loom_yfile_error(y, err, loom_yfile_get(y, m, "cost_usd"), f, "cost_usd must be >= 0");
    return 0;
}

/* Builds the object from a parsed document; always destroys y. */
static loom_profile_t *from_yfile(loom_yfile_t *y, const char *path, loom_err_t *err)
{
    (void)path; /* messages take the name from y */
    loom_profile_t *p = loom_profile_new();
    int root = loom_yfile_root(y);
    char f[64];
    if (!p) {
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto fail;
    }
    if (!loom_yfile_is_map(y, root)) {
        loom_yfile_error(y, err, root, NULL, "a profile is a mapping with ops: and transfers:");
        goto fail;
    }
    int ops = loom_yfile_get(y, root, "ops"), xs = loom_yfile_get(y, root, "transfers");
    if (ops && !loom_yfile_is_seq(y, ops)) {
        loom_yfile_error(y, err, ops, "ops", "expected a list");
        goto fail;
    }
    if (xs && !loom_yfile_is_seq(y, xs)) {
        loom_yfile_error(y, err, xs, "transfers", "expected a list");
        goto fail;
    }
    for (size_t i = 0; i < loom_yfile_len(y, ops); i++) {
        int m = loom_yfile_item(y, ops, i);
        snprintf(f, sizeof f, "ops[%zu]", i);
        const char *op = NULL, *dev = NULL, *step = NULL;
        loom_measure_t me;
        if (!loom_yfile_is_map(y, m)) {
            loom_yfile_error(y, err, m, f, "expected a mapping");
            goto fail;
        }
        if (loom_yfile_text(y, m, "op", f, 1, &op, err) || loom_yfile_text(y, m, "device", f, 1, &dev, err) ||
            loom_yfile_text(y, m, "step", f, 0, &step, err) || read_measure(y, m, f, &me, err))
            goto fail;
        int k = loom_gop_parse(op);
        if (k < 0) {
            loom_yfile_error(y, err, loom_yfile_get(y, m, "op"), f, "unknown granular op '%s'", op);
            goto fail;
        }
        if (loom_profile_add_op(p, (loom_gop_t)k, dev, step, &me, err))
            goto fail;
        p->ops[p->nops - 1].line = loom_yfile_line(y, m);
        p->ops[p->nops - 1].col = loom_yfile_col(y, m);
    }
    for (size_t i = 0; i < loom_yfile_len(y, xs); i++) {
        int m = loom_yfile_item(y, xs, i);
        snprintf(f, sizeof f, "transfers[%zu]", i);
        const char *edge = "kv", *from = NULL, *to = NULL;
        loom_measure_t me;
        if (!loom_yfile_is_map(y, m)) {
            loom_yfile_error(y, err, m, f, "expected a mapping");
            goto fail;
        }
        if (loom_yfile_text(y, m, "edge", f, 0, &edge, err) || loom_yfile_text(y, m, "from", f, 1, &from, err) ||
            loom_yfile_text(y, m, "to", f, 1, &to, err) || read_measure(y, m, f, &me, err))
            goto fail;
        int kind = strcmp(edge, "kv") == 0 ? LOOM_GEDGE_KV : strcmp(edge, "data") == 0 ? LOOM_GEDGE_DATA : -1;
        if (kind < 0) {
            loom_yfile_error(y, err, loom_yfile_get(y, m, "edge"), f, "edge must be kv or data");
            goto fail;
        }
        if (loom_profile_add_transfer(p, (loom_gedge_kind_t)kind, from, to, &me, err))
            goto fail;
        p->xfers[p->nx - 1].line = loom_yfile_line(y, m);
        p->xfers[p->nx - 1].col = loom_yfile_col(y, m);
    }
    p->file = loom_arena_strdup(p->arena, loom_yfile_path(y));
    loom_yfile_destroy(&y);
    return p;
fail:
    loom_profile_destroy(&p);
    loom_yfile_destroy(&y);
    return NULL;
}

loom_profile_t *loom_profile_load(const char *path, loom_err_t *err)
{
    loom_yfile_t *y = loom_yfile_load(path, err);
    return y ? from_yfile(y, path, err) : NULL;
}

loom_profile_t *loom_profile_parse(const char *name, const char *text, size_t len, loom_err_t *err)
{
    loom_yfile_t *y = loom_yfile_parse(name, text, len, err);
    return y ? from_yfile(y, name, err) : NULL;
}

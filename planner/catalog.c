/* catalog.c — see catalog.h. Classes and links are kept in arrays; strings
 * (names, sources) in an arena owned by the catalog. */
#include "planner/catalog.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "planner/yfile.h"
#include "common/grow.h"

#define MAX_FIG 16

typedef struct {
    const char *fig[MAX_FIG];
    const char *text[MAX_FIG];
    int n;
} sources_t;

struct loom_catalog {
    loom_arena_t *arena;
    loom_devclass_t *cls;
    sources_t *src;
    size_t n, cap;
    loom_link_t *links;
    size_t nl, lcap;
    double energy;
    char *path;
};

/* Figures that must carry a source line. */
static const char *const figures[] = {"mem_gb", "mem_bw_gbs", "tflops", "power_w",
                                      "purchase_usd", "hourly_usd", "link"};
static const char *const ep_figures[] = {"usd_per_mtok_in", "usd_per_mtok_out", "ttft_ms",
                                         "prefill_tok_per_s", "tok_per_s"};

int loom_devclass_is_endpoint(const loom_devclass_t *d)
{
    return d && d->kind && strcmp(d->kind, "endpoint") == 0;
}

int loom_devclass_serves(const loom_devclass_t *d, const char *model)
{
    size_t n = model ? strlen(model) : 0;
    for (const char *p = d->serves; p && n && *p;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        if (l == n && !strncmp(p, model, n))
            return 1;
        p = c ? c + 1 : p + l;
    }
    return 0;
}

loom_catalog_t *loom_catalog_new(void)
{
    loom_catalog_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->arena = loom_arena_new(0);
    if (!c->arena) {
        free(c);
        return NULL;
    }
    c->energy = 0.12;
    return c;
}

void loom_catalog_destroy(loom_catalog_t **pc)
{
    if (!pc || !*pc)
        return;
    loom_arena_destroy(&(*pc)->arena);
    free((*pc)->cls);
    free((*pc)->src);
    free((*pc)->links);
    free((*pc)->path);
    free(*pc);
    *pc = NULL;
}

int loom_catalog_add_link(loom_catalog_t *c, const loom_link_t *l, loom_err_t *err)
{
    if (!l->name || !(l->gbps > 0) || l->latency_us < 0 || l->usd_per_gb < 0)
        return loom_err_set(err, LOOM_EINVAL, "link needs a name, gbps > 0, latency_us >= 0");
    if (LOOM_GROW(c->links, c->lcap, c->nl + 1) != 0)
            return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    c->links[c->nl] = *l;
    c->links[c->nl].name = loom_arena_strdup(c->arena, l->name);
    return (int)c->nl++;
}

int loom_catalog_add_class(loom_catalog_t *c, const loom_devclass_t *d, loom_err_t *err)
{
    if (!d->name || !*d->name)
        return loom_err_set(err, LOOM_EINVAL, "device class without a name");
    if (loom_catalog_find(c, d->name) >= 0)
        return loom_err_set(err, LOOM_EEXIST, "duplicate device class %s", d->name);
    if (((!(d->mem_gb > 0) || !(d->mem_bw_gbs > 0)) && !loom_devclass_is_endpoint(d)) || d->power_w < 0 || d->hourly_usd < 0 ||
        d->purchase_usd < 0)
        return loom_err_set(err, LOOM_EINVAL, "device class %s: mem_gb and mem_bw_gbs must be > 0, "
                            "prices and power >= 0", d->name);
    if (d->link >= (int)c->nl)
        return loom_err_set(err, LOOM_EINVAL, "device class %s: bad link index", d->name);
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 16;
        loom_devclass_t *ncls = realloc(c->cls, nc * sizeof *ncls);
        if (!ncls)
            return loom_err_set(err, LOOM_ENOMEM, "out of memory");
        c->cls = ncls;
        sources_t *ns = realloc(c->src, nc * sizeof *ns);
        if (!ns)
            return loom_err_set(err, LOOM_ENOMEM, "out of memory");
        c->src = ns;
        c->cap = nc;
    }
    loom_devclass_t *o = &c->cls[c->n];
    *o = *d;
    o->name = loom_arena_strdup(c->arena, d->name);
    o->vendor = loom_arena_strdup(c->arena, d->vendor ? d->vendor : "");
    o->kind = loom_arena_strdup(c->arena, d->kind ? d->kind : "gpu");
    o->serves = d->serves ? loom_arena_strdup(c->arena, d->serves) : NULL;
    if (o->eff_compute <= 0 || o->eff_compute > 1)
        o->eff_compute = 0.6;
    if (o->eff_memory <= 0 || o->eff_memory > 1)
        o->eff_memory = 0.8;
    if (o->launch_us <= 0)
        o->launch_us = strcmp(o->kind, "cpu") == 0 ? 2 : 10;
    memset(&c->src[c->n], 0, sizeof c->src[c->n]);
    return (int)c->n++;
}

size_t loom_catalog_classes(const loom_catalog_t *c) { return c->n; }
const loom_devclass_t *loom_catalog_class(const loom_catalog_t *c, int i)
{
    return i >= 0 && (size_t)i < c->n ? &c->cls[i] : NULL;
}

int loom_catalog_find(const loom_catalog_t *c, const char *name)
{
    for (size_t i = 0; name && i < c->n; i++)
        if (strcmp(c->cls[i].name, name) == 0)
            return (int)i;
    return -1;
}

size_t loom_catalog_links(const loom_catalog_t *c) { return c->nl; }
const loom_link_t *loom_catalog_link(const loom_catalog_t *c, int i)
{
    return i >= 0 && (size_t)i < c->nl ? &c->links[i] : NULL;
}

const char *loom_catalog_source(const loom_catalog_t *c, int idx, const char *figure)
{
    if (idx < 0 || (size_t)idx >= c->n)
        return NULL;
    const sources_t *s = &c->src[idx];
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->fig[i], figure) == 0)
            return s->text[i];
    return NULL;
}

double loom_catalog_energy_usd_per_kwh(const loom_catalog_t *c) { return c->energy; }
const char *loom_catalog_path(const loom_catalog_t *c) { return c->path; }

static int find_link(const loom_catalog_t *c, const char *name)
{
    for (size_t i = 0; i < c->nl; i++)
        if (strcmp(c->links[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int load_links(loom_catalog_t *c, loom_yfile_t *y, int seq, loom_err_t *err)
{
    char f[96];
    if (!seq)
        return 0;
    if (!loom_yfile_is_seq(y, seq))
        return loom_yfile_error(y, err, seq, "links", "expected a list of links");
    for (size_t i = 0; i < loom_yfile_len(y, seq); i++) {
        int m = loom_yfile_item(y, seq, i);
        if (!loom_yfile_is_map(y, m))
            return loom_yfile_error(y, err, m, "links", "expected a mapping");
        loom_link_t l = {0};
        snprintf(f, sizeof f, "links[%zu]", i);
        if (loom_yfile_text(y, m, "name", f, 1, &l.name, err) ||
            loom_yfile_num(y, m, "gbps", f, 1, &l.gbps, err) ||
            loom_yfile_num(y, m, "latency_us", f, 0, &l.latency_us, err) ||
            loom_yfile_num(y, m, "usd_per_gb", f, 0, &l.usd_per_gb, err))
            return LOOM_EPARSE;
        if (find_link(c, l.name) >= 0)
            return loom_yfile_error(y, err, m, f, "duplicate link '%s'", l.name);
        if (loom_catalog_add_link(c, &l, err) < 0)
            return loom_yfile_error(y, err, m, f, "%s", err ? err->msg : "bad link");
    }
    return 0;
}

/* Every figure of class idx needs an entry in the device's source: map. */
static int load_sources(loom_catalog_t *c, loom_yfile_t *y, int m, int idx, const char *f,
                        const char *const *figs, size_t nfigs, loom_err_t *err)
{
    char f2[128];
    int src = loom_yfile_get(y, m, "source");
    snprintf(f2, sizeof f2, "%s.source", f);
    if (!loom_yfile_is_map(y, src))
        return loom_yfile_error(y, err, src ? src : m, f2,
                                "every device needs a source: mapping (figure -> where it comes from)");
    sources_t *s = &c->src[idx];
    for (size_t k = 0; k < loom_yfile_len(y, src) && s->n < MAX_FIG; k++) {
        const char *fig = loom_yfile_str(y, loom_yfile_key(y, src, k));
        const char *txt = loom_yfile_str(y, loom_yfile_val(y, src, k));
        if (!fig || !txt || !*txt)
            return loom_yfile_error(y, err, loom_yfile_key(y, src, k), f2, "source entries are figure: text");
        s->fig[s->n] = loom_arena_strdup(c->arena, fig);
        s->text[s->n] = loom_arena_strdup(c->arena, txt);
        s->n++;
    }
    for (size_t k = 0; k < nfigs; k++)
        if (!loom_catalog_source(c, idx, figs[k]))
            return loom_yfile_error(y, err, src, f2, "no source for figure '%s'", figs[k]);
    return 0;
}

/* A rented model API: per-token prices and a latency profile. */
static int load_endpoint(loom_catalog_t *c, loom_yfile_t *y, int m, const char *f, loom_err_t *err)
{
    char f2[128], serves[1024] = "";
    loom_devclass_t d = {0};
    const char *link = NULL;
    loom_yfile_text(y, m, "name", f, 1, &d.name, err);
    d.kind = "endpoint";
#define NUM(key, dst, req)                                                                    \
    (snprintf(f2, sizeof f2, "%s.%s", f, key), loom_yfile_num(y, m, key, f2, req, dst, err))
    if (loom_yfile_text(y, m, "vendor", f, 1, &d.vendor, err) || NUM("usd_per_mtok_in", &d.usd_per_mtok_in, 1) ||
        NUM("usd_per_mtok_out", &d.usd_per_mtok_out, 1) || NUM("ttft_ms", &d.ttft_ms, 1) ||
        NUM("prefill_tok_per_s", &d.prefill_tok_per_s, 1) || NUM("tok_per_s", &d.tok_per_s, 1) ||
        loom_yfile_text(y, m, "link", f, 1, &link, err))
        return LOOM_EPARSE;
#undef NUM
    if (d.usd_per_mtok_in < 0 || d.usd_per_mtok_out < 0 || d.ttft_ms < 0 || d.prefill_tok_per_s <= 0 ||
        d.tok_per_s <= 0)
        return loom_yfile_error(y, err, m, f, "prices and ttft_ms must be >= 0, token rates > 0");
    d.link = find_link(c, link);
    if (d.link < 0)
        return loom_yfile_error(y, err, loom_yfile_get(y, m, "link"), f,
                                "unknown link '%s' (define it under links:)", link);
    int sv = loom_yfile_get(y, m, "serves");
    if (sv && !loom_yfile_is_seq(y, sv))
        return loom_yfile_error(y, err, sv, f, "serves must be a list of workflow model names");
    for (size_t k = 0; sv && k < loom_yfile_len(y, sv); k++) {
        const char *name = loom_yfile_str(y, loom_yfile_item(y, sv, k));
        if (!name || strchr(name, ','))
            return loom_yfile_error(y, err, loom_yfile_item(y, sv, k), f, "serves: model names without commas");
        snprintf(serves + strlen(serves), sizeof serves - strlen(serves), "%s%s", k ? "," : "", name);
    }
    d.serves = serves[0] ? serves : NULL;
    d.eff_compute = d.eff_memory = 1;
    d.launch_us = 1;
    d.line = loom_yfile_line(y, m);
    loom_err_t e2 = {0};
    int idx = loom_catalog_add_class(c, &d, &e2);
    if (idx < 0)
        return loom_yfile_error(y, err, m, f, "%s", e2.msg);
    return load_sources(c, y, m, idx, f, ep_figures, sizeof ep_figures / sizeof ep_figures[0], err);
}

static int load_device(loom_catalog_t *c, loom_yfile_t *y, int m, size_t i, loom_err_t *err)
{
    char f[96], f2[128];
    snprintf(f, sizeof f, "devices[%zu]", i);
    if (!loom_yfile_is_map(y, m))
        return loom_yfile_error(y, err, m, f, "expected a mapping");
    loom_devclass_t d = {0};
    const char *link = NULL;
    if (loom_yfile_text(y, m, "name", f, 1, &d.name, err))
        return LOOM_EPARSE;
    snprintf(f, sizeof f, "devices[%s]", d.name);
#define NUM(key, dst, req)                                                                    \
    (snprintf(f2, sizeof f2, "%s.%s", f, key), loom_yfile_num(y, m, key, f2, req, dst, err))
    const char *kind = NULL;
    if (loom_yfile_text(y, m, "kind", f, 1, &kind, err))
        return LOOM_EPARSE;
    if (!strcmp(kind, "endpoint"))
        return load_endpoint(c, y, m, f, err);
    if (loom_yfile_text(y, m, "vendor", f, 1, &d.vendor, err) ||
        loom_yfile_text(y, m, "kind", f, 1, &d.kind, err) || NUM("mem_gb", &d.mem_gb, 1) ||
        NUM("mem_bw_gbs", &d.mem_bw_gbs, 1) || NUM("power_w", &d.power_w, 1) ||
        NUM("purchase_usd", &d.purchase_usd, 1) || NUM("hourly_usd", &d.hourly_usd, 1) ||
        NUM("launch_us", &d.launch_us, 0) || loom_yfile_text(y, m, "link", f, 1, &link, err))
        return LOOM_EPARSE;
#undef NUM
    static const char *const kinds[] = {"gpu", "cpu", "npu", "accel"};
    int kind_ok = 0;
    for (size_t k = 0; k < 4; k++)
        kind_ok |= strcmp(d.kind, kinds[k]) == 0;
    if (!kind_ok)
        return loom_yfile_error(y, err, loom_yfile_get(y, m, "kind"), f,
                                "kind must be gpu, cpu, npu, accel or endpoint, not '%s'", d.kind);
    d.link = find_link(c, link);
    if (d.link < 0)
        return loom_yfile_error(y, err, loom_yfile_get(y, m, "link"), f,
                                "unknown link '%s' (define it under links:)", link);
    int tf = loom_yfile_get(y, m, "tflops");
    if (!loom_yfile_is_map(y, tf))
        return loom_yfile_error(y, err, tf ? tf : m, f, "tflops must be a mapping of precision -> dense TFLOP/s");
    for (size_t k = 0; k < loom_yfile_len(y, tf); k++) {
        const char *pn = loom_yfile_str(y, loom_yfile_key(y, tf, k));
        int p = loom_prec_parse(pn);
        snprintf(f2, sizeof f2, "%s.tflops.%s", f, pn ? pn : "?");
        if (p < 0)
            return loom_yfile_error(y, err, loom_yfile_key(y, tf, k), f2,
                                    "unknown precision (use fp32, fp16, bf16, fp8, int8)");
        if (loom_yfile_num(y, tf, pn, f2, 1, &d.tflops[p], err))
            return LOOM_EPARSE;
        if (d.tflops[p] < 0)
            return loom_yfile_error(y, err, loom_yfile_val(y, tf, k), f2, "must be >= 0");
    }
    int eff = loom_yfile_get(y, m, "efficiency");
    if (eff) {
        snprintf(f2, sizeof f2, "%s.efficiency", f);
        if (loom_yfile_num(y, eff, "compute", f2, 0, &d.eff_compute, err) ||
            loom_yfile_num(y, eff, "memory", f2, 0, &d.eff_memory, err))
            return LOOM_EPARSE;
        if (d.eff_compute < 0 || d.eff_compute > 1 || d.eff_memory < 0 || d.eff_memory > 1)
            return loom_yfile_error(y, err, eff, f2, "efficiencies are fractions in (0, 1]");
    }
    d.line = loom_yfile_line(y, m);
    loom_err_t e2 = {0};
    int idx = loom_catalog_add_class(c, &d, &e2);
    if (idx < 0)
        return loom_yfile_error(y, err, m, f, "%s", e2.msg);
    return load_sources(c, y, m, idx, f, figures, sizeof figures / sizeof figures[0], err);
}

/* Builds the object from a parsed document; always destroys y. */
static loom_catalog_t *from_yfile(loom_yfile_t *y, const char *path, loom_err_t *err)
{
    loom_catalog_t *c = loom_catalog_new();
    int root = loom_yfile_root(y);
    if (!c) {
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto fail;
    }
    c->path = strdup(path);
    if (!loom_yfile_is_map(y, root)) {
        loom_yfile_error(y, err, root, NULL, "a catalog is a mapping with links: and devices:");
        goto fail;
    }
    double version = 1;
    if (loom_yfile_num(y, root, "version", "version", 0, &version, err) ||
        loom_yfile_num(y, root, "energy_usd_per_kwh", "energy_usd_per_kwh", 0, &c->energy, err))
        goto fail;
    if (version != 1) {
        loom_yfile_error(y, err, loom_yfile_get(y, root, "version"), "version", "unsupported version");
        goto fail;
    }
    if (c->energy < 0) {
        loom_yfile_error(y, err, loom_yfile_get(y, root, "energy_usd_per_kwh"), "energy_usd_per_kwh",
                         "must be >= 0");
        goto fail;
    }
    if (load_links(c, y, loom_yfile_get(y, root, "links"), err))
        goto fail;
    int devs = loom_yfile_get(y, root, "devices");
    if (!loom_yfile_is_seq(y, devs) || loom_yfile_len(y, devs) == 0) {
        loom_yfile_error(y, err, devs ? devs : root, "devices", "expected a non-empty list of devices");
        goto fail;
    }
    for (size_t i = 0; i < loom_yfile_len(y, devs); i++)
        if (load_device(c, y, loom_yfile_item(y, devs, i), i, err))
            goto fail;
    loom_yfile_destroy(&y);
    return c;
fail:
    loom_catalog_destroy(&c);
    loom_yfile_destroy(&y);
    return NULL;
}

loom_catalog_t *loom_catalog_load(const char *path, loom_err_t *err)
{
    loom_yfile_t *y = loom_yfile_load(path, err);
    return y ? from_yfile(y, path, err) : NULL;
}

loom_catalog_t *loom_catalog_parse(const char *name, const char *text, size_t len, loom_err_t *err)
{
    loom_yfile_t *y = loom_yfile_parse(name, text, len, err);
    return y ? from_yfile(y, name, err) : NULL;
}

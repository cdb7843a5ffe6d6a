/* fleet.c — see fleet.h. */
#include "planner/fleet.h"

#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner/yfile.h"
#include "common/grow.h"

struct loom_fleet {
    const loom_catalog_t *cat;
    loom_catalog_t *owned_cat; /* loaded from the fleet's catalog: key */
    loom_fleet_entry_t *e;
    size_t n, cap;
    double batch;
};

loom_fleet_t *loom_fleet_new(const loom_catalog_t *cat)
{
    loom_fleet_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->cat = cat;
    f->batch = 8;
    return f;
}

void loom_fleet_destroy(loom_fleet_t **pf)
{
    if (!pf || !*pf)
        return;
    loom_catalog_destroy(&(*pf)->owned_cat);
    free((*pf)->e);
    free(*pf);
    *pf = NULL;
}

int loom_fleet_add(loom_fleet_t *f, int cls, int count, int owned, double hourly_usd, loom_err_t *err)
{
    const loom_devclass_t *d = loom_catalog_class(f->cat, cls);
    if (!d)
        return loom_err_set(err, LOOM_EINVAL, "fleet: no device class %d", cls);
    if (count < 1)
        return loom_err_set(err, LOOM_EINVAL, "fleet: %s count must be >= 1", d->name);
    if (LOOM_GROW(f->e, f->cap, f->n + 1) != 0)
            return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    f->e[f->n] = (loom_fleet_entry_t){
        .cls = cls, .count = count, .owned = owned != 0,
        .hourly_usd = hourly_usd >= 0 ? hourly_usd : d->hourly_usd,
    };
    return (int)f->n++;
}

loom_fleet_t *loom_fleet_all(const loom_catalog_t *cat, int count)
{
    loom_fleet_t *f = loom_fleet_new(cat);
    for (size_t i = 0; f && i < loom_catalog_classes(cat); i++)
        if (loom_fleet_add(f, (int)i, count, 0, -1, NULL) < 0)
            loom_fleet_destroy(&f);
    return f;
}

const loom_catalog_t *loom_fleet_catalog(const loom_fleet_t *f) { return f->cat; }
size_t loom_fleet_entries(const loom_fleet_t *f) { return f->n; }
const loom_fleet_entry_t *loom_fleet_entry(const loom_fleet_t *f, int i)
{
    return i >= 0 && (size_t)i < f->n ? &f->e[i] : NULL;
}

int loom_fleet_find(const loom_fleet_t *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(loom_catalog_class(f->cat, f->e[i].cls)->name, name) == 0)
            return (int)i;
    return -1;
}

size_t loom_fleet_devices(const loom_fleet_t *f)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n; i++)
        n += (size_t)f->e[i].count;
    return n;
}

double loom_fleet_batch(const loom_fleet_t *f) { return f->batch; }
void loom_fleet_set_batch(loom_fleet_t *f, double b) { f->batch = b >= 1 ? b : 1; }

double loom_fleet_usd_per_s(const loom_fleet_t *f, int i)
{
    const loom_fleet_entry_t *e = &f->e[i];
    if (!e->owned)
        return e->hourly_usd / 3600.0;
    const loom_devclass_t *d = loom_catalog_class(f->cat, e->cls);
    return d->power_w / 1000.0 * loom_catalog_energy_usd_per_kwh(f->cat) / 3600.0;
}

/* Resolves `rel` against the directory of `base` into out. */
static void resolve(const char *base, const char *rel, char *out, size_t n)
{
    if (rel[0] == '/') {
        snprintf(out, n, "%s", rel);
        return;
    }
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", base);
    snprintf(out, n, "%s/%s", dirname(tmp), rel);
}

/* Builds the object from a parsed document; always destroys y. */
static loom_fleet_t *from_yfile(loom_yfile_t *y, const char *path, const loom_catalog_t *cat, loom_err_t *err)
{
    loom_fleet_t *f = NULL;
    int root = loom_yfile_root(y);
    if (!loom_yfile_is_map(y, root)) {
        loom_yfile_error(y, err, root, NULL, "a fleet is a mapping with devices:");
        goto fail;
    }
    const char *catpath = NULL;
    if (loom_yfile_text(y, root, "catalog", "catalog", 0, &catpath, err))
        goto fail;
    loom_catalog_t *own = NULL;
    if (!cat) {
        if (!catpath) {
            loom_yfile_error(y, err, root, "catalog", "no catalog: key and no --catalog given");
            goto fail;
        }
        char full[PATH_MAX + 256];
        resolve(path, catpath, full, sizeof full);
        own = loom_catalog_load(full, err);
        if (!own)
            goto fail;
        cat = own;
    }
    f = loom_fleet_new(cat);
    if (!f) {
        loom_catalog_destroy(&own);
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto fail;
    }
    f->owned_cat = own;
    double batch = 8;
    if (loom_yfile_num(y, root, "batch", "batch", 0, &batch, err))
        goto fail;
    if (batch < 1 || batch > 4096) {
        loom_yfile_error(y, err, loom_yfile_get(y, root, "batch"), "batch", "batch must be in 1..4096");
        goto fail;
    }
    f->batch = batch;
    int devs = loom_yfile_get(y, root, "devices");
    if (!loom_yfile_is_seq(y, devs) || loom_yfile_len(y, devs) == 0) {
        loom_yfile_error(y, err, devs ? devs : root, "devices", "expected a non-empty list of devices");
        goto fail;
    }
    for (size_t i = 0; i < loom_yfile_len(y, devs); i++) {
        int m = loom_yfile_item(y, devs, i);
        char fld[64];
        snprintf(fld, sizeof fld, "devices[%zu]", i);
        if (!loom_yfile_is_map(y, m)) {
            loom_yfile_error(y, err, m, fld, "expected a mapping {class, count, ownership}");
            goto fail;
        }
        const char *cls = NULL, *own_s = "rented";
        double count = 0, hourly = -1;
        if (loom_yfile_text(y, m, "class", fld, 1, &cls, err) ||
            loom_yfile_num(y, m, "count", fld, 1, &count, err) ||
            loom_yfile_text(y, m, "ownership", fld, 0, &own_s, err) ||
            loom_yfile_num(y, m, "hourly_usd", fld, 0, &hourly, err))
            goto fail;
        int ci = loom_catalog_find(cat, cls);
        if (ci < 0) {
            loom_yfile_error(y, err, loom_yfile_get(y, m, "class"), fld,
                             "unknown device class '%s' (not in the catalog)", cls);
            goto fail;
        }
        if (count < 1 || count > 1e6 || count != floor(count)) {
            loom_yfile_error(y, err, loom_yfile_get(y, m, "count"), fld, "count must be an integer in 1..1000000");
            goto fail;
        }
        int owned = strcmp(own_s, "owned") == 0;
        if (!owned && strcmp(own_s, "rented") != 0) {
            loom_yfile_error(y, err, loom_yfile_get(y, m, "ownership"), fld,
                             "ownership must be owned or rented, not '%s'", own_s);
            goto fail;
        }
        if (loom_fleet_find(f, cls) >= 0 &&
            f->e[loom_fleet_find(f, cls)].owned == owned) {
            loom_yfile_error(y, err, m, fld, "class '%s' listed twice with the same ownership", cls);
            goto fail;
        }
        loom_err_t e2 = {0};
        if (loom_fleet_add(f, ci, (int)count, owned, hourly, &e2) < 0) {
            loom_yfile_error(y, err, m, fld, "%s", e2.msg);
            goto fail;
        }
    }
    loom_yfile_destroy(&y);
    return f;
fail:
    loom_fleet_destroy(&f);
    loom_yfile_destroy(&y);
    return NULL;
}

loom_fleet_t *loom_fleet_load(const char *path, const loom_catalog_t *cat, loom_err_t *err)
{
    loom_yfile_t *y = loom_yfile_load(path, err);
    return y ? from_yfile(y, path, cat, err) : NULL;
}

loom_fleet_t *loom_fleet_parse(const char *name, const char *text, size_t len, const loom_catalog_t *cat, loom_err_t *err)
{
    loom_yfile_t *y = loom_yfile_parse(name, text, len, err);
    return y ? from_yfile(y, name, cat, err) : NULL;
}

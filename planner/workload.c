/* workload.c — see workload.h. */
#include "planner/workload.h"

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner/yfile.h"

static char *resolve(const char *base, const char *rel)
{
    if (rel[0] == '/')
        return strdup(rel);
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", base);
    const char *dir = dirname(tmp);
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", dir, rel);
    return out;
}

void loom_workload_destroy(loom_workload_t **pw)
{
    if (!pw || !*pw)
        return;
    loom_workload_t *w = *pw;
    for (size_t i = 0; i < w->n; i++)
        free(w->items[i].file);
    free(w->items);
    free(w->path);
    free(w->catalog);
    free(w);
    *pw = NULL;
}

/* Builds the object from a parsed document; always destroys y. */
static loom_workload_t *from_yfile(loom_yfile_t *y, const char *path, loom_err_t *err)
{
    loom_workload_t *w = calloc(1, sizeof *w);
    int root = loom_yfile_root(y);
    if (!w || !(w->path = strdup(path))) {
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto fail;
    }
    w->utilization = 0.7;
    if (!loom_yfile_is_map(y, root)) {
        loom_yfile_error(y, err, root, NULL, "a workload is a mapping with workflows:");
        goto fail;
    }
    const char *cat = NULL;
    if (loom_yfile_text(y, root, "catalog", "catalog", 0, &cat, err) ||
        loom_yfile_num(y, root, "utilization", "utilization", 0, &w->utilization, err))
        goto fail;
    if (!(w->utilization > 0 && w->utilization <= 1)) {
        loom_yfile_error(y, err, loom_yfile_get(y, root, "utilization"), "utilization", "must be in (0, 1]");
        goto fail;
    }
    if (cat && !(w->catalog = resolve(path, cat))) {
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto fail;
    }
    int wfs = loom_yfile_get(y, root, "workflows");
    size_t n = loom_yfile_len(y, wfs);
    if (!loom_yfile_is_seq(y, wfs) || n == 0) {
        loom_yfile_error(y, err, wfs ? wfs : root, "workflows", "expected a non-empty list of workflows");
        goto fail;
    }
    w->items = calloc(n, sizeof *w->items);
    if (!w->items) {
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        int m = loom_yfile_item(y, wfs, i);
        char f[64];
        snprintf(f, sizeof f, "workflows[%zu]", i);
        if (!loom_yfile_is_map(y, m)) {
            loom_yfile_error(y, err, m, f, "expected a mapping {file, rate_per_s}");
            goto fail;
        }
        loom_workload_item_t *it = &w->items[w->n];
        const char *file = NULL;
        if (loom_yfile_text(y, m, "file", f, 1, &file, err) ||
            loom_yfile_num(y, m, "rate_per_s", f, 1, &it->rate_per_s, err) ||
            loom_yfile_num(y, m, "sla_ms", f, 0, &it->sla_ms, err) ||
            loom_yfile_num(y, m, "percentile", f, 0, &it->percentile, err))
            goto fail;
        if (!(it->rate_per_s > 0 && it->rate_per_s <= 1e7)) {
            loom_yfile_error(y, err, loom_yfile_get(y, m, "rate_per_s"), f, "rate_per_s must be in (0, 1e7]");
            goto fail;
        }
        if (it->sla_ms < 0 || it->percentile < 0 || it->percentile >= 100) {
            loom_yfile_error(y, err, m, f, "sla_ms must be >= 0 and percentile in [0, 100)");
            goto fail;
        }
        if (it->percentile > 1)
            it->percentile /= 100;
        it->line = loom_yfile_line(y, m);
        if (!(it->file = resolve(path, file))) {
            loom_err_set(err, LOOM_ENOMEM, "out of memory");
            goto fail;
        }
        w->n++;
    }
    loom_yfile_destroy(&y);
    return w;
fail:
    loom_workload_destroy(&w);
    loom_yfile_destroy(&y);
    return NULL;
}

loom_workload_t *loom_workload_load(const char *path, loom_err_t *err)
{
    loom_yfile_t *y = loom_yfile_load(path, err);
    return y ? from_yfile(y, path, err) : NULL;
}

loom_workload_t *loom_workload_parse(const char *name, const char *text, size_t len, loom_err_t *err)
{
    loom_yfile_t *y = loom_yfile_parse(name, text, len, err);
    return y ? from_yfile(y, name, err) : NULL;
}

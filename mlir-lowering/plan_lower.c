/* plan_lower.c — loomd's cached lowering of planned runs (plan_lower.h). */
#include "mlir-lowering/plan_lower.h"

#include "common/arena.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/map.h"
#include "common/sha.h"
#include "mlir-lowering/from_plan.h"
#include "mlir-lowering/lower.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CACHED 256 /* plans kept; the cache is emptied past this */

typedef struct {
    char *module;   /* verified module text */
    loom_map_t *placements; /* node -> device, read back from module */
    loom_map_t *channels;   /* "producer\x1fconsumer" -> "channel\x1ffrom\x1fto" */
    char summary[192];
} lowered_t;

static loom_mlir_t *ctx;
static loom_map_t *cache; /* plan hash (hex) -> lowered_t */
static char last_hash[LOOM_SHA256_HEX_LEN]; /* of the plan lowered last */

static void lowered_free(void *p)
{
    lowered_t *l = p;
    if (l) {
        free(l->module);
        loom_map_destroy(&l->placements);
        loom_map_destroy(&l->channels);
    }
    free(l);
}

static int put_placement(void *ud, const char *workflow, const char *node, const char *device)
{
    (void)workflow;
    loom_map_t *m = ud;
    if (loom_map_get(m, node))
        return 1;
    char *d = strdup(device);
    if (!d || loom_map_put(m, node, d) != 0) {
        free(d);
        return -1;
    }
    return 0;
}

static int put_channel(void *ud, const char *workflow, const char *channel, const char *from, const char *to,
                       const char *producer, const char *consumer)
{
    (void)workflow;
    loom_map_t *m = ud;
    char key[600], *val = NULL;
    snprintf(key, sizeof key, "%s\x1f%s", producer, consumer);
    if (loom_map_get(m, key))
        return 1;
    if (asprintf(&val, "%s\x1f%s\x1f%s", channel, from, to) < 0)
        return -1;
    if (loom_map_put(m, key, val) != 0) {
        free(val);
        return -1;
    }
    return 0;
}

/* A copy of a map of strings (NULL on OOM). */
static loom_map_t *copy_strings(const loom_map_t *from)
{
    loom_map_t *m = loom_map_new(free);
    size_t it = 0;
    const char *k;
    void *v;
    while (m && loom_map_next(from, &it, &k, &v)) {
        char *d = strdup(v);
        if (!d || loom_map_put(m, k, d) != 0) {
            free(d);
            loom_map_destroy(&m);
        }
    }
    return m;
}

static int ensure_ctx(loom_err_t *err)
{
    if (!ctx && !(ctx = loom_mlir_new(err)))
        return err && err->code ? err->code : LOOM_EINTERNAL;
    return 0;
}

int loom_plan_module_placements(const char *text, size_t n, const char *filename, loom_map_t **placements,
                                loom_map_t **channels, loom_err_t *err)
{
    int rc = ensure_ctx(err);
    loom_map_t *m = rc ? NULL : loom_map_new(free), *c = rc || !channels ? NULL : loom_map_new(free);
    if (!rc && (!m || (channels && !c)))
        rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
    if (!rc)
        rc = loom_lower_read_text(ctx, text, n, filename, put_placement, m, c ? put_channel : NULL, c, err);
    if (rc) {
        loom_map_destroy(&m);
        loom_map_destroy(&c);
    }
    *placements = m;
    if (channels)
        *channels = c;
    return rc;
}

int loom_plan_module_locate(const char *text, size_t n, const char *filename, const char *node, loom_err_t *err)
{
    loom_err_t cerr = {0};
    return ensure_ctx(&cerr) ? cerr.code : loom_lower_locate_node_text(ctx, text, n, filename, node, err);
}

int loom_plan_last_module(const char **module, loom_map_t **placements, loom_map_t **channels)
{
    lowered_t *l = cache && last_hash[0] ? loom_map_get(cache, last_hash) : NULL;
    if (!l)
        return LOOM_ENOTFOUND;
    if (module)
        *module = l->module;
    if (placements && !(*placements = copy_strings(l->placements)))
        return LOOM_ENOMEM;
    if (channels && !(*channels = copy_strings(l->channels))) {
        if (placements)
            loom_map_destroy(placements);
        return LOOM_ENOMEM;
    }
    return 0;
}

/* The plan's content: every node's op, step, model and device, every edge,
 * the predicted figures; the same plan hashes the same in any process. */
static int plan_hash(const loom_lower_wf_t *in, char out[LOOM_SHA256_HEX_LEN])
{
    loom_buf_t b = LOOM_BUF_INIT;
    int rc = loom_buf_printf(&b, "%s\n%s\n%.17g\n", in->name, in->file ? in->file : "", in->sla_ms);
    for (size_t i = 0; i < in->nnodes && !rc; i++) {
        const loom_lower_node_t *n = &in->nodes[i];
        rc = loom_buf_printf(&b, "n %s|%s|%s|%s|%s|%s|%s|%d|%.17g|%.17g|%.17g|%d|%d|%d|%s|%s|%d|%s|%d\n", n->name,
                             n->op, n->step ? n->step : "", n->model ? n->model : "", n->device ? n->device : "",
                             n->kernel ? n->kernel : "", n->index ? n->index : "", n->topk, n->budget_ms,
                             n->pred_ms, n->pred_cost, n->line, n->col, n->output, n->when ? n->when : "",
                             n->foreach ? n->foreach : "", n->loop_marker, n->until ? n->until : "",
                             n->max_iterations);
    }
    for (size_t e = 0; e < in->nedges && !rc; e++)
        rc = loom_buf_printf(&b, "e %d %d %d %.17g %.17g\n", in->edges[e].src, in->edges[e].dst, in->edges[e].kv,
                             in->edges[e].pred_ms, in->edges[e].pred_cost);
    if (!rc)
        rc = loom_sha256_hex(b.data, b.len, out);
    loom_buf_free(&b);
    return rc;
}

static size_t count(const char *hay, const char *needle)
{
    size_t k = 0;
    for (const char *p = hay; p && (p = strstr(p, needle)); p += strlen(needle))
        k++;
    return k;
}

int loom_plan_lower(const char *run_id, const loom_workflow_t *wf, const loom_graph_t *g, const loom_cost_t *c,
                    const loom_plan_t *plan, char *summary, size_t n, loom_err_t *err)
{
    last_hash[0] = 0;
    if (ensure_ctx(err) != 0)
        return err ? err->code : LOOM_EINTERNAL;
    if (!cache && !(cache = loom_map_new(lowered_free)))
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    loom_arena_t *arena = loom_arena_new(0);
    loom_lower_wf_t in;
    char hash[LOOM_SHA256_HEX_LEN];
    int rc = arena ? loom_lower_from_plan(wf, g, c, plan, arena, &in, err) : loom_err_set(err, LOOM_ENOMEM, "out of memory");
    if (!rc && plan_hash(&in, hash) != 0)
        rc = loom_err_set(err, LOOM_EINTERNAL, "hashing the plan failed");
    if (rc) {
        loom_arena_destroy(&arena);
        return rc;
    }
    lowered_t *l = loom_map_get(cache, hash);
    int hit = l != NULL;
    if (!l) {
        /* lower, print, and read where the module puts each node (from
         * the module itself, as `loom run --plan` reads an edited one) */
        loom_buf_t out = LOOM_BUF_INIT;
        loom_lowering_t *low = NULL;
        rc = loom_lower_emit(ctx, &in, 1, &low, err);
        if (!rc)
            rc = loom_lower_run(low, LOOM_PASS_VERIFY, err);
        if (!rc && loom_lower_print(low, &out))
            rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
        if (!rc && (!(l = calloc(1, sizeof *l)) || !(l->placements = loom_map_new(free)) ||
                    !(l->channels = loom_map_new(free))))
            rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
        if (!rc)
            rc = loom_lower_placements(low, put_placement, l->placements, err);
        if (!rc)
            rc = loom_lower_channels(low, put_channel, l->channels, err);
        loom_lower_destroy(&low);
        if (rc) {
            lowered_free(l);
            loom_buf_free(&out);
            loom_arena_destroy(&arena);
            return rc;
        }
        l->module = loom_buf_detach(&out, NULL);
        snprintf(l->summary, sizeof l->summary, "lowered to %zu device functions, %zu send/recv pairs, module %.12s",
                 count(l->module, "func.func @"), count(l->module, "\"loom.send\""), hash);
        if (loom_map_len(cache) >= MAX_CACHED) {
            loom_map_destroy(&cache);
            cache = loom_map_new(lowered_free);
        }
        if (!cache || loom_map_put(cache, hash, l) != 0) {
            lowered_free(l);
            loom_arena_destroy(&arena);
            return loom_err_set(err, LOOM_ENOMEM, "out of memory");
        }
    }
    snprintf(summary, n, "%s%s", l->summary, hit ? " (cached)" : "");
    memcpy(last_hash, hash, sizeof last_hash);
    LOOM_INFO("mlir", "msg=\"plan lowered\" run=%s workflow=%s detail=\"%s\"", run_id ? run_id : "-", wf->name, summary);
    loom_arena_destroy(&arena);
    return 0;
}

const char *loom_plan_lowered_module(const char *hash_prefix)
{
    size_t it = 0, n = hash_prefix ? strlen(hash_prefix) : 0;
    const char *key;
    void *v;
    while (cache && n && loom_map_next(cache, &it, &key, &v))
        if (strncmp(key, hash_prefix, n) == 0)
            return ((lowered_t *)v)->module;
    return NULL;
}

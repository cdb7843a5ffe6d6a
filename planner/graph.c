/* graph.c — see graph.h. Nodes and edges live in growable arrays; strings
 * in an arena that lives as long as the graph. */
#include "planner/graph.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/arena.h"
#include "common/map.h"
#include "common/grow.h"

struct loom_graph {
    char *name;
    loom_arena_t *arena;
    loom_map_t *by_name;   /* name -> (id + 1) cast to pointer */
    loom_gnode_t *nodes;
    size_t n, ncap;
    loom_gedge_t *edges;
    size_t ne, ecap;
    /* adjacency in CSR form, rebuilt by loom_graph_topo */
    int *in_off, *in_idx, *out_off, *out_idx, *topo;
    int adj_valid;
};

static const char *const gop_names[LOOM_GOP__COUNT] = {
    "llm.prefill", "llm.decode", "embed", "vector.search", "tool.exec", "tool.http", "compute", "noop",
};

const char *loom_gop_name(loom_gop_t op)
{
    return (unsigned)op < LOOM_GOP__COUNT ? gop_names[op] : "?";
}

int loom_gop_parse(const char *name)
{
    for (int i = 0; name && i < LOOM_GOP__COUNT; i++)
        if (strcmp(name, gop_names[i]) == 0)
            return i;
    return -1;
}

int loom_gop_is_external(loom_gop_t op)
{
    return op == LOOM_GOP_TOOL_EXEC || op == LOOM_GOP_TOOL_HTTP || op == LOOM_GOP_NOOP;
}

const char *loom_prec_name(loom_prec_t p)
{
    static const char *const n[] = {"fp32", "fp16", "fp8", "int8"};
    return (unsigned)p < LOOM_PREC__COUNT ? n[p] : "?";
}

int loom_prec_parse(const char *s)
{
    static const struct { const char *n; int p; } t[] = {
        {"fp32", LOOM_PREC_FP32}, {"f32", LOOM_PREC_FP32}, {"float32", LOOM_PREC_FP32},
        {"fp16", LOOM_PREC_FP16}, {"bf16", LOOM_PREC_FP16}, {"f16", LOOM_PREC_FP16},
        {"float16", LOOM_PREC_FP16}, {"bfloat16", LOOM_PREC_FP16}, {"fp8", LOOM_PREC_FP8},
        {"f8", LOOM_PREC_FP8}, {"int8", LOOM_PREC_INT8}, {"i8", LOOM_PREC_INT8},
        {"q8_0", LOOM_PREC_INT8},
    };
    for (size_t i = 0; s && i < sizeof t / sizeof t[0]; i++)
        if (strcasecmp(s, t[i].n) == 0)
            return t[i].p;
    return -1;
}

double loom_prec_bytes(loom_prec_t p)
{
    switch (p) {
    case LOOM_PREC_FP32: return 4;
    case LOOM_PREC_FP16: return 2;
    default: return 1;
    }
}

double loom_kv_bytes(int layers, int kv_heads, int head_dim, double dtype_bytes, double tokens)
{
    return 2.0 * layers * kv_heads * head_dim * dtype_bytes * tokens;
}

loom_graph_t *loom_graph_new(const char *name)
{
    loom_graph_t *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->arena = loom_arena_new(0);
    g->by_name = loom_map_new(NULL);
    g->name = strdup(name ? name : "graph");
    if (!g->arena || !g->by_name || !g->name) {
        loom_graph_destroy(&g);
        return NULL;
    }
    return g;
}

static void free_adj(loom_graph_t *g)
{
    free(g->in_off);
    free(g->in_idx);
    free(g->out_off);
    free(g->out_idx);
    free(g->topo);
    g->in_off = g->in_idx = g->out_off = g->out_idx = g->topo = NULL;
    g->adj_valid = 0;
}

void loom_graph_destroy(loom_graph_t **pg)
{
    if (!pg || !*pg)
        return;
    loom_graph_t *g = *pg;
    free_adj(g);
    free(g->nodes);
    free(g->edges);
    loom_map_destroy(&g->by_name);
    loom_arena_destroy(&g->arena);
    free(g->name);
    free(g);
    *pg = NULL;
}

void loom_gnode_init(loom_gnode_t *n, loom_gop_t op, const char *name)
{
    memset(n, 0, sizeof *n);
    n->op = op;
    n->name = name;
    n->prec = LOOM_PREC_FP16;
    n->prob = 1;
    n->iters_mean = 1;
    n->iters_max = 1;
    n->pinned_class = -1;
}

int loom_graph_add_node(loom_graph_t *g, const loom_gnode_t *proto, loom_err_t *err)
{
    if (!proto->name || !*proto->name)
        return loom_err_set(err, LOOM_EINVAL, "graph node without a name");
    if ((unsigned)proto->op >= LOOM_GOP__COUNT)
        return loom_err_set(err, LOOM_EINVAL, "node %s: unknown op kind %d", proto->name, proto->op);
    if (loom_map_has(g->by_name, proto->name))
        return loom_err_set(err, LOOM_EEXIST, "duplicate graph node %s", proto->name);
    if (!(proto->prob > 0 && proto->prob <= 1) || proto->flops < 0 || proto->bytes < 0 ||
        proto->mem_bytes < 0 || proto->fixed_ms < 0 || proto->fixed_cv < 0)
        return loom_err_set(err, LOOM_EINVAL, "node %s: negative or out-of-range figure", proto->name);
    if (LOOM_GROW(g->nodes, g->ncap, g->n + 1) != 0)
            return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    loom_gnode_t *n = &g->nodes[g->n];
    *n = *proto;
    n->id = (int)g->n;
    n->name = loom_arena_strdup(g->arena, proto->name);
    n->step = proto->step ? loom_arena_strdup(g->arena, proto->step) : n->name;
    n->model = proto->model ? loom_arena_strdup(g->arena, proto->model) : NULL;
    if (n->iters_mean < 1)
        n->iters_mean = 1;
    if (n->iters_max < n->iters_mean)
        n->iters_max = n->iters_mean;
    if (!n->name || !n->step || (proto->model && !n->model) ||
        loom_map_put(g->by_name, n->name, (void *)(uintptr_t)(n->id + 1)) != 0)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    g->n++;
    free_adj(g);
    return n->id;
}

int loom_graph_add_edge(loom_graph_t *g, int src, int dst, loom_gedge_kind_t kind, double bytes,
                        loom_err_t *err)
{
    if (src < 0 || dst < 0 || (size_t)src >= g->n || (size_t)dst >= g->n || src == dst)
        return loom_err_set(err, LOOM_EINVAL, "bad edge %d -> %d", src, dst);
    if (bytes < 0)
        return loom_err_set(err, LOOM_EINVAL, "edge %d -> %d: negative bytes", src, dst);
    if (LOOM_GROW(g->edges, g->ecap, g->ne + 1) != 0)
            return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    g->edges[g->ne] = (loom_gedge_t){.src = src, .dst = dst, .kind = kind, .bytes = bytes};
    free_adj(g);
    return (int)g->ne++;
}

const char *loom_graph_name(const loom_graph_t *g) { return g->name; }
size_t loom_graph_nodes(const loom_graph_t *g) { return g->n; }
size_t loom_graph_edges(const loom_graph_t *g) { return g->ne; }

const loom_gnode_t *loom_graph_node(const loom_graph_t *g, int id)
{
    return id >= 0 && (size_t)id < g->n ? &g->nodes[id] : NULL;
}

const loom_gedge_t *loom_graph_edge(const loom_graph_t *g, int idx)
{
    return idx >= 0 && (size_t)idx < g->ne ? &g->edges[idx] : NULL;
}

int loom_graph_find(const loom_graph_t *g, const char *name)
{
    void *v = loom_map_get(g->by_name, name);
    return v ? (int)(uintptr_t)v - 1 : -1;
}

const int *loom_graph_in(const loom_graph_t *g, int id, size_t *n)
{
    if (!g->adj_valid || id < 0 || (size_t)id >= g->n) {
        *n = 0;
        return NULL;
    }
    *n = (size_t)(g->in_off[id + 1] - g->in_off[id]);
    return g->in_idx + g->in_off[id];
}

const int *loom_graph_out(const loom_graph_t *g, int id, size_t *n)
{
    if (!g->adj_valid || id < 0 || (size_t)id >= g->n) {
        *n = 0;
        return NULL;
    }
    *n = (size_t)(g->out_off[id + 1] - g->out_off[id]);
    return g->out_idx + g->out_off[id];
}

const int *loom_graph_topo(loom_graph_t *g, loom_err_t *err)
{
    if (g->adj_valid)
        return g->topo;
    free_adj(g);
    size_t n = g->n, ne = g->ne;
    g->in_off = calloc(n + 1, sizeof(int));
    g->out_off = calloc(n + 1, sizeof(int));
    g->in_idx = malloc((ne ? ne : 1) * sizeof(int));
    g->out_idx = malloc((ne ? ne : 1) * sizeof(int));
    g->topo = malloc((n ? n : 1) * sizeof(int));
    int *fill = calloc(n + 1, sizeof(int));
    int *indeg = calloc(n + 1, sizeof(int));
    if (!g->in_off || !g->out_off || !g->in_idx || !g->out_idx || !g->topo || !fill || !indeg) {
        free(fill);
        free(indeg);
        free_adj(g);
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t e = 0; e < ne; e++) {
        g->in_off[g->edges[e].dst + 1]++;
        g->out_off[g->edges[e].src + 1]++;
    }
    for (size_t i = 0; i < n; i++) {
        g->in_off[i + 1] += g->in_off[i];
        g->out_off[i + 1] += g->out_off[i];
    }
    for (size_t e = 0; e < ne; e++) {
        int d = g->edges[e].dst;
        g->in_idx[g->in_off[d] + fill[d]++] = (int)e;
    }
    memset(fill, 0, (n + 1) * sizeof(int));
    for (size_t e = 0; e < ne; e++) {
        int s = g->edges[e].src;
        g->out_idx[g->out_off[s] + fill[s]++] = (int)e;
    }
    /* Kahn's algorithm; the queue is the topo array itself. */
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < n; i++) {
        indeg[i] = g->in_off[i + 1] - g->in_off[i];
        if (indeg[i] == 0)
            g->topo[tail++] = (int)i;
    }
    while (head < tail) {
        int v = g->topo[head++];
        for (int k = g->out_off[v]; k < g->out_off[v + 1]; k++) {
            int w = g->edges[g->out_idx[k]].dst;
            if (--indeg[w] == 0)
                g->topo[tail++] = w;
        }
    }
    free(fill);
    free(indeg);
    if (tail != n) {
        free_adj(g);
        loom_err_set(err, LOOM_EINVAL, "graph %s has a cycle", g->name);
        return NULL;
    }
    g->adj_valid = 1;
    return g->topo;
}

const int *loom_graph_order(const loom_graph_t *g)
{
    return g->adj_valid ? g->topo : NULL;
}

/* graph.h — the granular op graph the planner places and the MLIR lowering
 * emits: one node per granular op (a workflow step becomes one or more
 * nodes, e.g. llm.generate -> llm.prefill + kv edge + llm.decode), one edge
 * per data dependency with the bytes that cross it.
 *
 * Nodes and edges are plain read-only records (loom_gnode_t, loom_gedge_t)
 * owned by the graph; the graph itself is opaque. Node ids are dense
 * indices 0..n-1 in insertion order. Edges may join any two nodes;
 * loom_graph_topo() gives an order and rejects cycles (a loop is not a
 * cycle here: its body is a node with an iteration count, see `iters_*`).
 *
 * Units: FLOPs and bytes are totals for one execution of the node (one
 * iteration of a loop); latencies are milliseconds. */
#ifndef LOOM_PLANNER_GRAPH_H
#define LOOM_PLANNER_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Granular op kinds. Stable numbering: the MLIR lowering maps each kind to
 * a `loom` dialect op (loom.prefill, loom.decode, ...). */
typedef enum {
    LOOM_GOP_PREFILL = 0, /* llm.prefill: prompt tokens -> KV cache + first logits */
    LOOM_GOP_DECODE,      /* llm.decode: KV cache -> output tokens */
    LOOM_GOP_EMBED,       /* embed: text -> vector */
    LOOM_GOP_VSEARCH,     /* vector.search: vector -> top-k ids */
    LOOM_GOP_TOOL_EXEC,   /* tool.exec: external process (latency, not FLOPs) */
    LOOM_GOP_TOOL_HTTP,   /* tool.http: external HTTP call */
    LOOM_GOP_COMPUTE,     /* compute: user MLIR kernel */
    LOOM_GOP_NOOP,        /* anything else (echo, sleep, ...): fixed latency only */
    LOOM_GOP__COUNT
} loom_gop_t;

/* "llm.prefill", "llm.decode", "embed", "vector.search", "tool.exec",
 * "tool.http", "compute", "noop". Static storage. */
const char *loom_gop_name(loom_gop_t op);
/* Inverse of loom_gop_name; returns -1 when unknown. */
int loom_gop_parse(const char *name);
/* True for ops that do not use an accelerator (tools, noop): they can run
 * on any device and cost only the host time they hold. */
int loom_gop_is_external(loom_gop_t op);

/* Numeric precision an op computes in (picks the catalog's TFLOP/s row). */
typedef enum {
    LOOM_PREC_FP32 = 0,
    LOOM_PREC_FP16, /* fp16 or bf16 */
    LOOM_PREC_FP8,
    LOOM_PREC_INT8,
    LOOM_PREC__COUNT
} loom_prec_t;

const char *loom_prec_name(loom_prec_t p); /* "fp32", "fp16", "fp8", "int8" */
/* Accepts fp32|f32|float32, fp16|bf16|f16|float16, fp8, int8|q8_0|i8; -1 otherwise. */
int loom_prec_parse(const char *name);
/* Bytes per element: 4, 2, 1, 1. */
double loom_prec_bytes(loom_prec_t p);

typedef enum {
    LOOM_GEDGE_DATA = 0, /* a step output consumed by another step */
    LOOM_GEDGE_KV,       /* the KV cache from prefill to decode */
} loom_gedge_kind_t;

/* One granular op. All fields are filled by the producer (decomposition,
 * tests, benchmarks); the planner only reads them. */
typedef struct loom_gnode {
    int id;                /* index in the graph */
    loom_gop_t op;
    const char *name;      /* unique, e.g. "answer.prefill"; owned by the graph */
    const char *step;      /* workflow step id it came from (owned by the graph) */
    const char *model;     /* model name for llm/embed ops, else NULL */
    loom_prec_t prec;

    double flops;          /* floating-point (or int) operations per execution */
    double bytes;          /* bytes read+written from device memory per execution */
    double shared_bytes;   /* part of `bytes` shared by a batch (model weights): read
                              once per batch step, not once per request */
    double mem_bytes;      /* resident footprint that must fit (weights + KV + buffers) */
    double tokens;         /* tokens processed (prefill: prompt, decode: output), else 0 */
    double fixed_ms;       /* latency independent of the device (tool wall time, RTT) */
    double fixed_cv;       /* coefficient of variation of fixed_ms (spread of tools), >= 0 */
    double prob;           /* probability the node runs at all (when: branches), (0,1] */
    double iters_mean;     /* mean iterations (loops: until/max_iterations), >= 1 */
    double iters_max;      /* upper bound of iterations, >= iters_mean */
    int pinned_class;      /* catalog class index it must run on, or -1 */
    /* llm/embed ops: where the model is available. Both 0 (graphs built by
     * hand) means a local file only. */
    int model_local;       /* a GGUF file: owned devices can run it */
    int model_endpoint;    /* an endpoint: endpoint classes can run it */
} loom_gnode_t;

typedef struct loom_gedge {
    int src, dst;          /* node ids */
    loom_gedge_kind_t kind;
    double bytes;          /* bytes that cross the edge per execution */
} loom_gedge_t;

typedef struct loom_graph loom_graph_t;

/* Returns NULL on OOM. name is copied (may be NULL). */
loom_graph_t *loom_graph_new(const char *name);
void loom_graph_destroy(loom_graph_t **pg);

/* Adds a node; copies *proto (its id is ignored, name/step/model strings are
 * copied). Defaults the caller may leave 0: prob -> 1, iters_mean/max -> 1,
 * pinned_class 0 is a real class, so set -1 explicitly (loom_gnode_init does).
 * Returns the new id (>= 0) or a negative LOOM_E*. */
int loom_graph_add_node(loom_graph_t *g, const loom_gnode_t *proto, loom_err_t *err);
/* Fills n with defaults: prob 1, iters 1, pinned_class -1, fp16, rest 0. */
void loom_gnode_init(loom_gnode_t *n, loom_gop_t op, const char *name);
/* Adds an edge src -> dst; returns its index or a negative LOOM_E*. */
int loom_graph_add_edge(loom_graph_t *g, int src, int dst, loom_gedge_kind_t kind,
                        double bytes, loom_err_t *err);

const char *loom_graph_name(const loom_graph_t *g);
size_t loom_graph_nodes(const loom_graph_t *g);
size_t loom_graph_edges(const loom_graph_t *g);
/* Borrowed until the next add or destroy. NULL when out of range. */
const loom_gnode_t *loom_graph_node(const loom_graph_t *g, int id);
const loom_gedge_t *loom_graph_edge(const loom_graph_t *g, int idx);
/* Node id by name, or -1. */
int loom_graph_find(const loom_graph_t *g, const char *name);

/* Adjacency (valid after loom_graph_topo): edge indices into and out of a
 * node. Borrowed until the next add or destroy. */
const int *loom_graph_in(const loom_graph_t *g, int id, size_t *n);
const int *loom_graph_out(const loom_graph_t *g, int id, size_t *n);

/* Computes adjacency and a topological order. Returns the order (borrowed,
 * loom_graph_nodes() entries) or NULL with LOOM_EINVAL when there is a cycle. */
const int *loom_graph_topo(loom_graph_t *g, loom_err_t *err);
/* The order computed by the last successful loom_graph_topo, or NULL when
 * the graph changed since (borrowed). */
const int *loom_graph_order(const loom_graph_t *g);

/* KV-cache bytes for `tokens` tokens of a model:
 *   2 (K and V) x layers x kv_heads x head_dim x bytes(dtype) x tokens. */
double loom_kv_bytes(int layers, int kv_heads, int head_dim, double dtype_bytes, double tokens);

#endif

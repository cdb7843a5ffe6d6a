/* lower.h — lowering a placed granular graph to the `loom` dialect and the
 * passes on it, written in C on the MLIR C API:
 *
 *   emit               one func.func per workflow: an op per granular node
 *                      (a prefill + decode pair of one step is emitted as one
 *                      loom.llm.generate), one SSA edge per data edge; the
 *                      run's input is the argument %inputs, nodes without a
 *                      producer read it; outputs and nodes without a
 *                      consumer are returned
 *   decompose-llm      llm.generate -> llm.prefill + kv.transfer + llm.decode
 *                      where the plan puts prefill and decode on different
 *                      devices (same device: kept whole)
 *   annotate-targets   sets every op's `target` to the plan's device
 *   partition-devices  one func.func per (workflow, device) holding that
 *                      device's ops; every cross-device edge becomes a
 *                      loom.send in the producer's function and a loom.recv
 *                      in the consumer's, paired by channel name
 *                      "<workflow>:<step>/<op>-><consumer device>"
 *   control-regions    in each device function, a loop's body becomes a
 *                      loom.loop region (until, max_iterations; the
 *                      begin/end markers become its operands and yield), a
 *                      foreach step's op a loom.foreach region over the
 *                      list, a when step's op a loom.when guarded region
 *   verify             MLIR's verifier + Loom's rules (targets set, each
 *                      device function only holds its device's ops, every
 *                      send has exactly one recv of the same type)
 *
 * The input is a plain description (loom_lower_wf_t), filled from the
 * planner's graph + plan by loom_lower_from_plan (from_plan.h) or by hand.
 * Output text is deterministic (golden-tested). Errors about the input are
 * located at the step's place in the workflow file when it is known. */
#ifndef LOOM_MLIR_LOWER_H
#define LOOM_MLIR_LOWER_H

#include "common/buf.h"
#include "common/err.h"
#include "mlir-lowering/ctx.h"

#include <stddef.h>

typedef struct {
    const char *name;     /* unique node name, e.g. "answer.prefill" */
    const char *op;       /* granular op: llm.prefill, llm.decode, embed, vector.search,
                             tool.exec, tool.http, compute, noop */
    const char *step;     /* workflow step id */
    const char *model;    /* llm/embed model, else NULL */
    const char *device;   /* device the plan chose (NULL: not placed) */
    const char *kernel;   /* compute: built-in kernel name or .mlir path */
    const char *index;    /* vector.search: index name */
    int topk;             /* vector.search: k */
    double budget_ms, pred_ms, pred_cost;
    int line, col;        /* the step in the workflow file; 0 = unknown */
    int output;           /* 1: a workflow output (returned even when consumed) */
    /* Dynamic control (control-regions pass), as written in the workflow: */
    const char *when;     /* the step's when: expression (guarded region), else NULL */
    const char *foreach;  /* the step's foreach: list (region over it), else NULL */
    int loop_marker;      /* 1/2: the begin/end node of a loop whose body nodes are
                             named "<this name minus .begin/.end>." */
    const char *until;    /* loop begin node: until: (NULL = max_iterations runs) */
    int max_iterations;   /* loop begin node */
} loom_lower_node_t;

typedef struct {
    int src, dst;         /* node indices */
    int kv;               /* 1: the KV cache from prefill to decode */
    double pred_ms, pred_cost; /* predicted transfer time/cost across devices */
} loom_lower_edge_t;

typedef struct {
    const char *name;     /* workflow name; the function is @<name> */
    const char *file;     /* workflow file for locations (may be NULL) */
    double sla_ms;
    size_t nnodes, nedges;
    const loom_lower_node_t *nodes;
    const loom_lower_edge_t *edges;
} loom_lower_wf_t;

typedef enum {
    LOOM_PASS_EMIT = 0,
    LOOM_PASS_DECOMPOSE,
    LOOM_PASS_ANNOTATE,
    LOOM_PASS_PARTITION,
    LOOM_PASS_CONTROL,
    LOOM_PASS_VERIFY,
    LOOM_PASS__COUNT
} loom_pass_t;

/* "emit", "decompose-llm", "annotate-targets", "partition-devices",
 * "control-regions", "verify". */
const char *loom_pass_name(loom_pass_t p);
/* Returns 0 or LOOM_ENOTFOUND. */
int loom_pass_parse(const char *name, loom_pass_t *out);

typedef struct loom_lowering loom_lowering_t;

/* Emits the module for nwf workflows (the inputs are copied). Caller owns
 * *out; m must outlive it. A malformed graph (bad op, edge out of range,
 * cycle, wrong value types) is LOOM_EINVAL/LOOM_EPARSE with the location. */
int loom_lower_emit(loom_mlir_t *m, const loom_lower_wf_t *wfs, size_t nwf,
                    loom_lowering_t **out, loom_err_t *err);
/* Runs the passes after emit in order, up to and including `last`. */
int loom_lower_run(loom_lowering_t *l, loom_pass_t last, loom_err_t *err);
/* Appends the module's text. */
int loom_lower_print(loom_lowering_t *l, loom_buf_t *out);
void loom_lower_destroy(loom_lowering_t **pl);

/* After partition-devices: the device functions, "<workflow>@<device>". */
size_t loom_lower_nfuncs(const loom_lowering_t *l);
const char *loom_lower_func_name(const loom_lowering_t *l, size_t i); /* borrowed */
const char *loom_lower_func_device(const loom_lowering_t *l, size_t i); /* borrowed */

/* Runs the verify pass on a module given as text (e.g. a saved or
 * hand-edited partitioned module). LOOM_EPARSE / LOOM_EINVAL with a located
 * diagnostic when it does not hold. */
int loom_lower_verify_text(loom_mlir_t *m, const char *text, size_t n, const char *filename,
                           loom_err_t *err);

/* Where a partitioned module runs each granular node: after parsing and
 * verifying text as loom_lower_verify_text does, calls fn(ud, workflow,
 * node, device) for every node an op of a device function runs (an
 * llm.generate names its prefill and decode nodes). fn returns nonzero when
 * it already had the node (an error located at the op). Send, recv and
 * kv.transfer ops are the transfers between them, not nodes. */
typedef int (*loom_placement_fn)(void *ud, const char *workflow, const char *node, const char *device);
int loom_lower_placements_text(loom_mlir_t *m, const char *text, size_t n, const char *filename,
                               loom_placement_fn fn, void *ud, loom_err_t *err);
/* The same for a lowering that ran through partition-devices (passes.c). */
int loom_lower_placements(loom_lowering_t *l, loom_placement_fn fn, void *ud, loom_err_t *err);

/* The send/recv pairs of a partitioned module, as the data between tasks:
 * calls fn(ud, workflow, channel, from, to, producer, consumer) for each
 * recv and each granular node of an op reading its value (producer: the
 * node of the op whose value the matching send sends; "" for a loop's own
 * input; a loop op's node is its loop). fn returns 0, < 0 on OOM, > 0 when
 * it already had the (producer, consumer) pair. */
typedef int (*loom_channel_fn)(void *ud, const char *workflow, const char *channel, const char *from,
                               const char *to, const char *producer, const char *consumer);
int loom_lower_channels(loom_lowering_t *l, loom_channel_fn fn, void *ud, loom_err_t *err);

/* Both readers on a module given as text (parsed and verified once);
 * either fn may be NULL. */
int loom_lower_read_text(loom_mlir_t *m, const char *text, size_t n, const char *filename, loom_placement_fn pf,
                         void *pud, loom_channel_fn cf, void *cud, loom_err_t *err);

/* Locates err (file, line, col; the message is kept) at the op of a
 * partitioned module that runs granular node `node`, so a refusal about a
 * node (its device cannot run it, ...) points into the module. 0, or
 * LOOM_ENOTFOUND when no op runs it (err untouched). The _text form parses
 * and verifies text first (its locations name filename). */
int loom_lower_locate_node(loom_lowering_t *l, const char *node, loom_err_t *err);
int loom_lower_locate_node_text(loom_mlir_t *m, const char *text, size_t n, const char *filename, const char *node,
                                loom_err_t *err);

/* One call: emit, run up to `last`, print into out. */
int loom_lower_text(loom_mlir_t *m, const loom_lower_wf_t *wfs, size_t nwf, loom_pass_t last,
                    loom_buf_t *out, loom_err_t *err);

#endif

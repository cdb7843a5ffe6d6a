/* lower_internal.h — state shared by lower.c (emission, driver) and
 * passes.c (the passes). Private to mlir-lowering/. */
#ifndef LOOM_MLIR_LOWER_INTERNAL_H
#define LOOM_MLIR_LOWER_INTERNAL_H

#include "common/arena.h"
#include "common/map.h"
#include "mlir-lowering/lower.h"
#include "mlir-lowering/mlir_internal.h"

struct loom_lowering {
    loom_mlir_t *m;
    MlirContext ctx;
    MlirModule mod;
    loom_arena_t *arena;       /* copies of the input */
    loom_lower_wf_t *wfs;
    size_t nwf;
    loom_map_t *nodes;         /* "<workflow>/<node name>" -> loom_lower_node_t* */
    loom_pass_t done;          /* the last pass run */
    /* Device functions made by partition-devices. */
    size_t nfuncs, capfuncs;
    char **func_names, **func_devices;
};

/* The node named by op's attribute `attr` in workflow `wf` (NULL if none). */
const loom_lower_node_t *loom_lower_node(loom_lowering_t *l, const char *wf, MlirOperation op,
                                         const char *attr);

/* Op helpers (and loom_op_is, mlir_internal.h). */
int loom_op_is_loom(MlirOperation op);
/* String attribute value copied into out ("" when absent). */
void loom_op_str(MlirOperation op, const char *attr, char *out, size_t n);
void loom_op_set_str(loom_lowering_t *l, MlirOperation op, const char *attr, const char *v);
void loom_op_set_f64(loom_lowering_t *l, MlirOperation op, const char *attr, double v);
double loom_op_f64(MlirOperation op, const char *attr);
/* Sets err's file, line and col from op's location (when it has one). */
void loom_op_locate(MlirOperation op, loom_err_t *err);
/* Fills err with a message located at op's location. Returns code. */
int loom_op_error(MlirOperation op, loom_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Creates a generic op. */
MlirOperation loom_op_create(loom_lowering_t *l, const char *name, MlirLocation loc,
                             intptr_t nops, const MlirValue *ops, intptr_t nres,
                             const MlirType *res, intptr_t nattr, const MlirNamedAttribute *attrs);
MlirNamedAttribute loom_attr_str(loom_lowering_t *l, const char *name, const char *v);
MlirNamedAttribute loom_attr_f64(loom_lowering_t *l, const char *name, double v);
MlirType loom_type(loom_lowering_t *l, const char *name); /* "!loom.text" */

/* Passes (passes.c). */
int loom_pass_decompose(loom_lowering_t *l, loom_err_t *err);
int loom_pass_annotate(loom_lowering_t *l, loom_err_t *err);
int loom_pass_partition(loom_lowering_t *l, loom_err_t *err);
int loom_pass_control(loom_lowering_t *l, loom_err_t *err);
int loom_pass_verify(loom_lowering_t *l, loom_err_t *err);

#endif

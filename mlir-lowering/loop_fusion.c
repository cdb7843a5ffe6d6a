/* loop_fusion.c — see loop_fusion.h. */
#include "mlir-lowering/loop_fusion.h"

#include "mlir-lowering/mlir_internal.h"

#include <mlir-c/BuiltinAttributes.h>
#include <mlir-c/BuiltinTypes.h>

#include <stdlib.h>
#include <string.h>

#define MAX_ACCESSES 256 /* per loop; a loop with more is left alone */

typedef struct {
    MlirValue base;   /* the kernel argument or allocation behind the access */
    MlirValue memref; /* the value accessed (the base or a view of it) */
    int write;
    int identity;     /* load/store at exactly the loop's induction variables */
} access_t;

typedef struct {
    MlirBlock body;
    access_t acc[MAX_ACCESSES];
    int n, overflow;
} loop_t;

static void add_access(loop_t *l, MlirValue memref, int write, int identity)
{
    if (l->n == MAX_ACCESSES) {
        l->overflow = 1;
        return;
    }
    l->acc[l->n++] = (access_t){loom_base_buffer(memref), memref, write, identity};
}

/* Indices operands [first, first + count) are the loop's induction
 * variables in order. */
static int at_induction_vars(MlirOperation op, intptr_t first, loop_t *l)
{
    intptr_t n = mlirOperationGetNumOperands(op) - first;
    if (n != mlirBlockGetNumArguments(l->body))
        return 0;
    for (intptr_t i = 0; i < n; i++)
        if (!mlirValueEqual(mlirOperationGetOperand(op, first + i), mlirBlockGetArgument(l->body, i)))
            return 0;
    return 1;
}

static MlirWalkResult collect(MlirOperation op, void *user)
{
    loop_t *l = user;
    if (loom_op_is(op, "memref.load")) {
        add_access(l, mlirOperationGetOperand(op, 0), 0, at_induction_vars(op, 1, l));
        return MlirWalkResultAdvance;
    }
    if (loom_op_is(op, "memref.store")) {
        add_access(l, mlirOperationGetOperand(op, 1), 1, at_induction_vars(op, 2, l));
        return MlirWalkResultAdvance;
    }
    /* Any other use of a buffer (a view, a copy, a call) counts as a write
     * at unknown indices. */
    for (intptr_t i = 0; i < mlirOperationGetNumOperands(op); i++) {
        MlirValue v = mlirOperationGetOperand(op, i);
        if (mlirTypeIsAMemRef(mlirValueGetType(v)))
            add_access(l, v, 1, 0);
    }
    return MlirWalkResultAdvance;
}

static int loop_info(MlirOperation ploop, loop_t *l)
{
    memset(l, 0, sizeof *l);
    if (mlirOperationGetNumResults(ploop) != 0) /* a loop with scf.reduce results */
        return -1;
    l->body = mlirRegionGetFirstBlock(mlirOperationGetRegion(ploop, 0));
    for (MlirOperation op = mlirBlockGetFirstOperation(l->body); !mlirOperationIsNull(op);
         op = mlirOperationGetNextInBlock(op))
        mlirOperationWalk(op, collect, l, MlirWalkPreOrder);
    return l->overflow ? -1 : 0;
}

static int const_index(MlirValue v, int64_t *out)
{
    if (!mlirValueIsAOpResult(v) || !loom_op_is(mlirOpResultGetOwner(v), "arith.constant"))
        return -1;
    MlirAttribute a = mlirOperationGetAttributeByName(mlirOpResultGetOwner(v), loom_sr("value"));
    if (!mlirAttributeIsAInteger(a))
        return -1;
    *out = mlirIntegerAttrGetValueInt(a);
    return 0;
}

/* Same lower bounds, upper bounds and steps (the same values, or constants
 * of the same value). */
static int same_space(MlirOperation a, MlirOperation b)
{
    intptr_t n = mlirOperationGetNumOperands(a);
    if (n != mlirOperationGetNumOperands(b))
        return 0;
    for (intptr_t i = 0; i < n; i++) {
        MlirValue x = mlirOperationGetOperand(a, i), y = mlirOperationGetOperand(b, i);
        int64_t cx, cy;
        if (!mlirValueEqual(x, y) && (const_index(x, &cx) || const_index(y, &cy) || cx != cy))
            return 0;
    }
    return 1;
}

static int conflict(const access_t *a, const access_t *b)
{
    if (!mlirValueEqual(a->base, b->base) || (!a->write && !b->write))
        return 0;
    return !(a->identity && b->identity && mlirValueEqual(a->memref, b->memref));
}

static int fusable(MlirOperation first, MlirOperation second)
{
    if (!same_space(first, second))
        return 0;
    loop_t *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    int ok = a && b && loop_info(first, a) == 0 && loop_info(second, b) == 0;
    for (int i = 0; ok && i < a->n; i++)
        for (int j = 0; ok && j < b->n; j++)
            ok = !conflict(&a->acc[i], &b->acc[j]);
    free(a);
    free(b);
    return ok;
}

/* Moves the body of first (its induction variables replaced by second's)
 * to the start of second's body and erases first. */
static void fuse(MlirOperation first, MlirOperation second)
{
    MlirBlock b1 = mlirRegionGetFirstBlock(mlirOperationGetRegion(first, 0));
    MlirBlock b2 = mlirRegionGetFirstBlock(mlirOperationGetRegion(second, 0));
    for (intptr_t i = 0; i < mlirBlockGetNumArguments(b1); i++)
        mlirValueReplaceAllUsesOfWith(mlirBlockGetArgument(b1, i), mlirBlockGetArgument(b2, i));
    MlirOperation at = mlirBlockGetFirstOperation(b2), term = mlirBlockGetTerminator(b1);
    for (MlirOperation op = mlirBlockGetFirstOperation(b1), next; !mlirOperationEqual(op, term); op = next) {
        next = mlirOperationGetNextInBlock(op);
        mlirOperationMoveBefore(op, at);
    }
    mlirOperationDestroy(first);
}

static int fuse_block(MlirBlock block)
{
    int fused = 0;
    MlirOperation prev = {NULL};
    for (MlirOperation op = mlirBlockGetFirstOperation(block); !mlirOperationIsNull(op);
         op = mlirOperationGetNextInBlock(op)) {
        if (loom_op_is(op, "scf.parallel")) {
            if (!mlirOperationIsNull(prev) && fusable(prev, op)) {
                fuse(prev, op);
                fused++;
            }
            prev = op;
        } else if (!loom_op_is(op, "arith.constant")) {
            prev = (MlirOperation){NULL};
        }
    }
    return fused;
}

int loom_fuse_parallel_loops(MlirOperation root)
{
    int fused = 0;
    MlirBlock top = mlirRegionGetFirstBlock(mlirOperationGetRegion(root, 0));
    for (MlirOperation op = mlirBlockGetFirstOperation(top); !mlirOperationIsNull(op);
         op = mlirOperationGetNextInBlock(op))
        if (loom_op_is(op, "func.func"))
            for (MlirBlock b = mlirRegionGetFirstBlock(mlirOperationGetRegion(op, 0)); !mlirBlockIsNull(b);
                 b = mlirBlockGetNextInRegion(b))
                fused += fuse_block(b);
    return fused;
}

/* loop_fusion.h — fuses adjacent scf.parallel loops over the same iteration
 * space into one loop, so that a chain of elementwise linalg ops (and the
 * fills and row reductions of a kernel that share its rows) becomes one GPU
 * launch instead of one launch per op. Internal to mlir-lowering/ (takes
 * MLIR C API handles).
 *
 * MLIR's own scf-parallel-loop-fusion refuses any loop pair that touches
 * two different function arguments, because two arguments may alias. Loom's
 * kernel buffers never do: every argument of a compiled kernel is its own
 * allocation (the GPU runner allocates one device buffer per argument), so
 * here two buffers alias only when they are views of the same argument or
 * allocation. Two loops fuse when nothing but constants sits between them,
 * their bounds and steps are equal, and every buffer one of them writes and
 * the other touches is accessed by both only through memref.load/store at
 * exactly the loop's induction variables, through the same memref value
 * (iteration i of the second loop reads only what iteration i of the first
 * wrote). Anything else (a reduction reading across the written buffer, a
 * view or another op taking the buffer) keeps the loops apart. */
#ifndef LOOM_MLIR_LOOP_FUSION_H
#define LOOM_MLIR_LOOP_FUSION_H

#include <mlir-c/IR.h>

/* Fuses within the body of every func.func directly under root (a module).
 * Returns the number of loops fused away. */
int loom_fuse_parallel_loops(MlirOperation root);

#endif

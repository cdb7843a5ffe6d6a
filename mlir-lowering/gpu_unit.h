/* gpu_unit.h — a compiled GPU unit: PTX modules plus the ordered list of
 * kernel launches (grid, block, arguments) that run one kernel function.
 * This is the payload of a GPU artifact; it has a small text form so it can
 * be cached on disk and shipped to workers. Pure C: no MLIR needed to read
 * it (the GPU worker links this file alone). */
#ifndef LOOM_MLIR_GPU_UNIT_H
#define LOOM_MLIR_GPU_UNIT_H

#include "common/buf.h"
#include "common/err.h"

#include <stddef.h>

#define LOOM_GPU_MAX_LAUNCHES 16
#define LOOM_GPU_MAX_KARGS 24

typedef enum {
    LOOM_KARG_BUFFER = 1, /* the kernel function's argument number `index` (a device pointer) */
    LOOM_KARG_I64,        /* an index/integer constant */
    LOOM_KARG_F32,        /* a float constant (bits in `f32bits`) */
} loom_karg_kind_t;

typedef struct {
    loom_karg_kind_t kind;
    long long index;      /* BUFFER: argument number; I64: the value */
    unsigned f32bits;     /* F32 */
} loom_karg_t;

typedef struct {
    char kernel[64];      /* PTX .entry name */
    int module;           /* index into the unit's PTX modules */
    unsigned grid[3], block[3];
    int nargs;
    loom_karg_t args[LOOM_GPU_MAX_KARGS];
} loom_gpu_launch_t;

typedef struct loom_gpu_unit {
    char arch[16];        /* "sm_90" */
    int nmodules;
    char *ptx[LOOM_GPU_MAX_LAUNCHES];      /* owned, NUL-terminated */
    int nlaunches;
    loom_gpu_launch_t launches[LOOM_GPU_MAX_LAUNCHES];
} loom_gpu_unit_t;

/* Appends the text form of u to out. */
int loom_gpu_unit_write(const loom_gpu_unit_t *u, loom_buf_t *out);
/* Parses the text form; on success the caller frees with
 * loom_gpu_unit_free. Malformed input -> LOOM_EPARSE naming the line. */
int loom_gpu_unit_read(const char *text, size_t n, loom_gpu_unit_t *u, loom_err_t *err);
void loom_gpu_unit_free(loom_gpu_unit_t *u);

#endif

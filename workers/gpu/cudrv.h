/* cudrv.h — the CUDA driver API, loaded at run time with
 * dlopen("libcuda.so.1"), so the GPU worker and tests build and start on
 * machines without a driver (they then report "no device" instead of
 * failing to link). Covers what running Loom's compiled GPU units needs:
 * init, device query, PTX module load (the driver JITs PTX for the actual
 * GPU), buffers, launches. One context (the device's primary context) per
 * handle; not thread-safe: one handle per thread or a lock around it. */
#ifndef LOOM_WORKERS_GPU_CUDRV_H
#define LOOM_WORKERS_GPU_CUDRV_H

#include "common/err.h"
#include "mlir-lowering/gpu_unit.h"

#include <stddef.h>
#include <stdint.h>

typedef struct loom_cudrv loom_cudrv_t;

typedef struct {
    char name[128];        /* "NVIDIA H200" */
    int cc_major, cc_minor;/* compute capability, e.g. 9.0 */
    int sms;               /* streaming multiprocessors */
    uint64_t memory_bytes;
    char arch[16];         /* "sm_90": the PTX target to compile for */
} loom_cudrv_device_t;

/* Loads the driver, initialises it and makes device `ordinal` current.
 * LOOM_EUNAVAIL with a message saying why when there is no driver library
 * or no device (callers skip GPU work then); LOOM_EDEVICE on other driver
 * failures. */
int loom_cudrv_open(int ordinal, loom_cudrv_t **out, loom_err_t *err);
void loom_cudrv_close(loom_cudrv_t **pd);

/* Number of visible devices (0 when the driver is missing). */
int loom_cudrv_device_count(void);
const loom_cudrv_device_t *loom_cudrv_device(const loom_cudrv_t *d); /* borrowed */

/* Runs a compiled unit: copies the kernel's buffers in (host[i], bytes[i]),
 * loads its PTX modules, launches every kernel in order, waits, and copies
 * the buffers with is_output[i] back into host[i]. A unit for a newer
 * architecture than the device is refused (LOOM_EINVAL). */
int loom_cudrv_run_unit(loom_cudrv_t *d, const loom_gpu_unit_t *u, void *const *host,
                        const size_t *bytes, const int *is_output, int nbufs, loom_err_t *err);

#endif

/* cudrv.c — CUDA driver API through dlopen (see cudrv.h). The few types and
 * constants used are declared here so no CUDA header is needed to build. */
#include "workers/gpu/cudrv.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult; /* CUDA_SUCCESS = 0 */
typedef int CUdevice;
typedef void *CUcontext;
typedef void *CUmodule;
typedef void *CUfunction;
typedef void *CUstream;
typedef unsigned long long CUdeviceptr;

enum {
    CU_ATTR_SM_COUNT = 16,     /* CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT */
    CU_ATTR_CC_MAJOR = 75,     /* CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR */
    CU_ATTR_CC_MINOR = 76,     /* CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR */
    CUDA_ERROR_NO_DEVICE = 100,
};

typedef struct {
    CUresult (*Init)(unsigned);
    CUresult (*DeviceGetCount)(int *);
    CUresult (*DeviceGet)(CUdevice *, int);
    CUresult (*DeviceGetName)(char *, int, CUdevice);
    CUresult (*DeviceGetAttribute)(int *, int, CUdevice);
    CUresult (*DeviceTotalMem)(size_t *, CUdevice);
    CUresult (*DevicePrimaryCtxRetain)(CUcontext *, CUdevice);
    CUresult (*DevicePrimaryCtxRelease)(CUdevice);
    CUresult (*CtxSetCurrent)(CUcontext);
    CUresult (*CtxSynchronize)(void);
    CUresult (*ModuleLoadData)(CUmodule *, const void *);
    CUresult (*ModuleUnload)(CUmodule);
    CUresult (*ModuleGetFunction)(CUfunction *, CUmodule, const char *);
    CUresult (*MemAlloc)(CUdeviceptr *, size_t);
    CUresult (*MemFree)(CUdeviceptr);
    CUresult (*MemcpyHtoD)(CUdeviceptr, const void *, size_t);
    CUresult (*MemcpyDtoH)(void *, CUdeviceptr, size_t);
    CUresult (*LaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                             unsigned, CUstream, void **, void **);
    CUresult (*GetErrorString)(CUresult, const char **);
} api_t;

struct loom_cudrv {
    void *lib;
    api_t cu;
    CUdevice dev;
    CUcontext ctx;
    loom_cudrv_device_t info;
};

static int load_api(void *lib, api_t *a)
{
#define SYM(field, name)                                  \
    do {                                                  \
        *(void **)(&a->field) = dlsym(lib, name);         \
        if (!a->field)                                    \
            return -1;                                    \
    } while (0)
    SYM(Init, "cuInit");
    SYM(DeviceGetCount, "cuDeviceGetCount");
    SYM(DeviceGet, "cuDeviceGet");
    SYM(DeviceGetName, "cuDeviceGetName");
    SYM(DeviceGetAttribute, "cuDeviceGetAttribute");
    SYM(DeviceTotalMem, "cuDeviceTotalMem_v2");
    SYM(DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    SYM(DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
    SYM(CtxSetCurrent, "cuCtxSetCurrent");
    SYM(CtxSynchronize, "cuCtxSynchronize");
    SYM(ModuleLoadData, "cuModuleLoadData");
    SYM(ModuleUnload, "cuModuleUnload");
    SYM(ModuleGetFunction, "cuModuleGetFunction");
    SYM(MemAlloc, "cuMemAlloc_v2");
    SYM(MemFree, "cuMemFree_v2");
    SYM(MemcpyHtoD, "cuMemcpyHtoD_v2");
    SYM(MemcpyDtoH, "cuMemcpyDtoH_v2");
    SYM(LaunchKernel, "cuLaunchKernel");
    SYM(GetErrorString, "cuGetErrorString");
#undef SYM
    return 0;
}

static int cu_fail(const loom_cudrv_t *d, loom_err_t *err, CUresult r, const char *what)
{
    const char *s = NULL;
    if (d && d->cu.GetErrorString)
        d->cu.GetErrorString(r, &s);
    return loom_err_set(err, LOOM_EDEVICE, "CUDA %s failed: %s (%d)", what, s ? s : "unknown error", r);
}

int loom_cudrv_device_count(void)
{
    loom_cudrv_t *d = NULL;
    loom_err_t e;
    if (loom_cudrv_open(-1, &d, &e) != 0)
        return 0;
    int n = 0;
    d->cu.DeviceGetCount(&n);
    loom_cudrv_close(&d);
    return n;
}

/* ordinal < 0: load and init only (for device_count). */
int loom_cudrv_open(int ordinal, loom_cudrv_t **out, loom_err_t *err)
{
    loom_cudrv_t *d = calloc(1, sizeof *d);
    CUresult r;
    int n = 0;
    if (!d)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    d->lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!d->lib) {
        free(d);
        return loom_err_set(err, LOOM_EUNAVAIL, "no CUDA driver (libcuda.so.1 not found)");
    }
    if (load_api(d->lib, &d->cu) != 0) {
        loom_cudrv_close(&d);
        return loom_err_set(err, LOOM_EUNAVAIL, "libcuda.so.1 lacks a driver API symbol (driver too old)");
    }
    if ((r = d->cu.Init(0)) != 0) {
        int rc = r == CUDA_ERROR_NO_DEVICE ? loom_err_set(err, LOOM_EUNAVAIL, "no CUDA device visible")
                                           : cu_fail(d, err, r, "cuInit");
        loom_cudrv_close(&d);
        return rc;
    }
    if (ordinal >= 0) {
        if (d->cu.DeviceGetCount(&n) != 0 || n == 0) {
            loom_cudrv_close(&d);
            return loom_err_set(err, LOOM_EUNAVAIL, "no CUDA device visible");
        }
        if (ordinal >= n) {
            loom_cudrv_close(&d);
            return loom_err_set(err, LOOM_EINVAL, "CUDA device %d does not exist (%d visible)", ordinal, n);
        }
        size_t mem = 0;
        if ((r = d->cu.DeviceGet(&d->dev, ordinal)) != 0 ||
            (r = d->cu.DeviceGetName(d->info.name, sizeof d->info.name, d->dev)) != 0 ||
            (r = d->cu.DeviceGetAttribute(&d->info.cc_major, CU_ATTR_CC_MAJOR, d->dev)) != 0 ||
            (r = d->cu.DeviceGetAttribute(&d->info.cc_minor, CU_ATTR_CC_MINOR, d->dev)) != 0 ||
            (r = d->cu.DeviceGetAttribute(&d->info.sms, CU_ATTR_SM_COUNT, d->dev)) != 0 ||
            (r = d->cu.DeviceTotalMem(&mem, d->dev)) != 0 ||
            (r = d->cu.DevicePrimaryCtxRetain(&d->ctx, d->dev)) != 0 || (r = d->cu.CtxSetCurrent(d->ctx)) != 0) {
            int rc = cu_fail(d, err, r, "device setup");
            loom_cudrv_close(&d);
            return rc;
        }
        d->info.memory_bytes = mem;
        snprintf(d->info.arch, sizeof d->info.arch, "sm_%d%d", d->info.cc_major, d->info.cc_minor);
    }
    *out = d;
    return 0;
}

void loom_cudrv_close(loom_cudrv_t **pd)
{
    if (!pd || !*pd)
        return;
    loom_cudrv_t *d = *pd;
    if (d->ctx && d->cu.DevicePrimaryCtxRelease)
        d->cu.DevicePrimaryCtxRelease(d->dev);
    if (d->lib)
        dlclose(d->lib);
    free(d);
    *pd = NULL;
}

const loom_cudrv_device_t *loom_cudrv_device(const loom_cudrv_t *d) { return &d->info; }

static int arch_num(const char *arch)
{
    int v = 0;
    return sscanf(arch, "sm_%d", &v) == 1 ? v : -1;
}

int loom_cudrv_run_unit(loom_cudrv_t *d, const loom_gpu_unit_t *u, void *const *host,
                        const size_t *bytes, const int *is_output, int nbufs, loom_err_t *err)
{
    int rc = 0;
    CUresult r;
    CUdeviceptr *dev = calloc((size_t)nbufs + 1, sizeof *dev);
    CUmodule mods[LOOM_GPU_MAX_LAUNCHES] = {0};
    if (!dev)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    if (!d->ctx) {
        rc = loom_err_set(err, LOOM_EINVAL, "CUDA handle has no device");
        goto out;
    }
    if (arch_num(u->arch) > d->info.cc_major * 10 + d->info.cc_minor) {
        rc = loom_err_set(err, LOOM_EINVAL, "unit compiled for %s cannot run on %s (%s)", u->arch, d->info.name,
                          d->info.arch);
        goto out;
    }
    for (int i = 0; i < nbufs; i++) {
        if ((r = d->cu.MemAlloc(&dev[i], bytes[i] ? bytes[i] : 1)) != 0 ||
            (r = d->cu.MemcpyHtoD(dev[i], host[i], bytes[i])) != 0) {
            rc = cu_fail(d, err, r, "buffer upload");
            goto out;
        }
    }
    for (int m = 0; m < u->nmodules; m++)
        if ((r = d->cu.ModuleLoadData(&mods[m], u->ptx[m])) != 0) {
            rc = cu_fail(d, err, r, "PTX module load");
            goto out;
        }
    for (int l = 0; l < u->nlaunches; l++) {
        const loom_gpu_launch_t *L = &u->launches[l];
        CUfunction fn;
        union {
            CUdeviceptr p;
            long long i;
            float f;
        } vals[LOOM_GPU_MAX_KARGS];
        void *params[LOOM_GPU_MAX_KARGS];
        if ((r = d->cu.ModuleGetFunction(&fn, mods[L->module], L->kernel)) != 0) {
            rc = cu_fail(d, err, r, "kernel lookup");
            goto out;
        }
        for (int a = 0; a < L->nargs; a++) {
            const loom_karg_t *k = &L->args[a];
            if (k->kind == LOOM_KARG_BUFFER) {
                if (k->index < 0 || k->index >= nbufs) {
                    rc = loom_err_set(err, LOOM_EINVAL, "launch %d refers to buffer %lld of %d", l, k->index, nbufs);
                    goto out;
                }
                vals[a].p = dev[k->index];
            } else if (k->kind == LOOM_KARG_I64) {
                vals[a].i = k->index;
            } else {
                memcpy(&vals[a].f, &k->f32bits, sizeof(float));
            }
            params[a] = &vals[a];
        }
        if ((r = d->cu.LaunchKernel(fn, L->grid[0], L->grid[1], L->grid[2], L->block[0], L->block[1],
                                    L->block[2], 0, NULL, params, NULL)) != 0) {
            rc = cu_fail(d, err, r, "kernel launch");
            goto out;
        }
    }
    if ((r = d->cu.CtxSynchronize()) != 0) {
        rc = cu_fail(d, err, r, "synchronize");
        goto out;
    }
    for (int i = 0; i < nbufs; i++)
        if (is_output[i] && (r = d->cu.MemcpyDtoH(host[i], dev[i], bytes[i])) != 0) {
            rc = cu_fail(d, err, r, "buffer download");
            goto out;
        }
out:
    for (int m = 0; m < u->nmodules; m++)
        if (mods[m])
            d->cu.ModuleUnload(mods[m]);
    for (int i = 0; i < nbufs; i++)
        if (dev[i])
            d->cu.MemFree(dev[i]);
    free(dev);
    return rc;
}

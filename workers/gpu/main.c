/* main.c — loom-worker-gpu: the GPU worker. At start it finds its CUDA
 * device (name, sm_XX, memory, measured bandwidth) and registers the LLM ops
 * on the CUDA backend of the engine's table (llm/llm_backend.h); with no
 * device it exits with a clear message.
 * `loom-worker-gpu --probe [--json]` only prints the device and exits (0 when
 * one is visible, 3 when not). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "workers/common/worker.h"
#include "llm/llm_ops.h"
#include "llm/cuda/llm_cuda.h"
#include "workers/gpu/op_kernel_gpu.h"

typedef struct gpu {
    loom_cuda_info_t info;
    char model[300];
    double gbps;
} gpu_t;

static int gpu_init(void **self, int argc, char **argv, loom_err_t *err) {
    for (int i = 1; i < argc; i++)
        return loom_err_set(err, LOOM_EINVAL, "unknown option '%s' (see --help)", argv[i]);
    gpu_t *g = calloc(1, sizeof *g);
    if (!g) return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    int rc = loom_llm_cuda_probe(0, &g->info, err);
    if (rc) { free(g); return rc; }
    g->gbps = loom_llm_cuda_measure_gbps();
    snprintf(g->model, sizeof g->model, "%s", g->info.name);
    *self = g;
    return 0;
}

static int gpu_profile(void *self, loom_device_profile_t *p, loom_err_t *err) {
    (void)err;
    gpu_t *g = self;
    *p = (loom_device_profile_t){
        .kind = "gpu",
        .model = g->model,
        .arch = g->info.arch,
        .cores = g->info.sms,
        .memory_bytes = g->info.memory_bytes,
        .gflops = g->info.peak_gflops,
        .gbps = g->gbps > 0 ? g->gbps : g->info.peak_gbps,
        .slots = 1,
    };
    return 0;
}

static int gpu_add_ops(void *self, loom_ops_t *ops, loom_err_t *err) {
    (void)self;
    int rc = loom_ops_add_basic(ops);
    if (rc) return loom_err_set(err, rc, "registering basic ops failed");
    if ((rc = loom_llm_add_ops(ops, loom_llm_backend_find("cuda"), err))) return rc;
    return loom_gpu_kernel_ops_add(ops, 0, err); /* compute: PTX from mlir-lowering, driver API */
}

static void gpu_destroy(void *self) {
    gpu_t *g = self;
    if (!g) return;
    free(g);
}

static const loom_backend_t GPU = {"gpu", gpu_init, gpu_profile, gpu_add_ops, gpu_destroy};

static int probe(int json) {
    loom_cuda_info_t i;
    loom_err_t e = {0};
    if (loom_llm_cuda_probe(0, &i, &e)) {
        char buf[1024];
        loom_err_format_long(&e, buf, sizeof buf);
        if (json) printf("{\"device\":null,\"error\":\"%s\"}\n", e.msg);
        fprintf(stderr, "loom-worker-gpu: %s\n", buf);
        return 3;
    }
    double gbps = loom_llm_cuda_measure_gbps();
    if (json)
        printf("{\"device\":\"%s\",\"arch\":\"%s\",\"sms\":%d,\"memory_bytes\":%llu,\"free_bytes\":%llu,"
               "\"peak_gbps\":%.1f,\"measured_gbps\":%.1f,\"peak_gflops\":%.0f}\n",
               i.name, i.arch, i.sms, (unsigned long long)i.memory_bytes, (unsigned long long)i.free_bytes,
               i.peak_gbps, gbps, i.peak_gflops);
    else
        printf("%s  %s  %d SMs  %.1f GiB (%.1f free)  peak %.0f GB/s, measured %.0f GB/s  %.0f GFLOP/s fp32\n", i.name,
               i.arch, i.sms, i.memory_bytes / 1073741824.0, i.free_bytes / 1073741824.0, i.peak_gbps, gbps,
               i.peak_gflops);
    return 0;
}

int main(int argc, char **argv) {
    int json = 0, pr = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--probe")) pr = 1;
        if (!strcmp(argv[i], "--json")) json = 1;
    }
    if (pr) return probe(json);
    return loom_worker_main(&GPU, argc, argv);
}

/* main.c — loom-worker-cpu: the CPU backend over the worker skeleton.
 *
 * At start it measures the machine (cores, memory, a ~0.2 s calibration of
 * GFLOP/s and memory GB/s) so the planner's cost model sees this host's
 * real figures, then serves noop/echo/sleep, tool.exec and tool.http, and
 * the LLM ops on the LLM engine's CPU backend (llm/). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "common/clock.h"
#include "llm/llm_ops.h"
#include "workers/common/ops.h"
#include "workers/common/worker.h"
#include "workers/cpu/op_kernel.h"

typedef struct {
    char model[256];
    char arch[64];
    loom_device_profile_t p;
} cpu_t;

static void cpu_model(char *out, size_t n)
{
    snprintf(out, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ')
                    c++;
                c[strcspn(c, "\n")] = 0;
                snprintf(out, n, "%s", c);
            }
            break;
        }
    }
    fclose(f);
}

/* Single-core FMA throughput over ~100 ms, times the core count. */
static double measure_gflops(int cores)
{
    double a[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    const double m = 1.0000001, c = 1e-9;
    uint64_t start = loom_clock_ns(), iters = 0;
    while (loom_clock_ns() - start < 100000000ull) {
        for (int r = 0; r < 10000; r++)
            for (int k = 0; k < 8; k++)
                a[k] = a[k] * m + c;
        iters += 10000;
    }
    double secs = (double)(loom_clock_ns() - start) / 1e9;
    volatile double sink = a[0] + a[7];
    (void)sink;
    return (double)iters * 8 * 2 / secs / 1e9 * cores;
}

/* memcpy bandwidth over a 32 MiB buffer (read + write), ~100 ms. */
static double measure_gbps(void)
{
    size_t n = 32u << 20;
    char *a = malloc(n), *b = malloc(n);
    if (!a || !b) {
        free(a);
        free(b);
        return 0;
    }
    memset(a, 1, n);
    memset(b, 2, n);
    uint64_t start = loom_clock_ns();
    int reps = 0;
    while (loom_clock_ns() - start < 100000000ull) {
        memcpy(reps & 1 ? a : b, reps & 1 ? b : a, n);
        reps++;
    }
    double secs = (double)(loom_clock_ns() - start) / 1e9;
    free(a);
    free(b);
    return (double)n * 2 * reps / secs / 1e9;
}

static int cpu_init(void **self, int argc, char **argv, loom_err_t *err)
{
    for (int i = 1; i < argc; i++)
        return loom_err_set(err, LOOM_EINVAL, "unknown option '%s' (see --help)", argv[i]);
    cpu_t *c = calloc(1, sizeof *c);
    if (!c)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    *self = c;
    return 0;
}

static int cpu_profile(void *self, loom_device_profile_t *p, loom_err_t *err)
{
    (void)err;
    cpu_t *c = self;
    cpu_model(c->model, sizeof c->model);
    int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        cores = 1;
    snprintf(c->arch, sizeof c->arch, "%s",
#if defined(__x86_64__)
             __builtin_cpu_supports("avx512f") ? "x86_64-avx512"
             : __builtin_cpu_supports("avx2") ? "x86_64-avx2"
                                              : "x86_64"
#elif defined(__aarch64__)
             "aarch64"
#else
             "unknown"
#endif
    );
    struct sysinfo si;
    uint64_t mem = sysinfo(&si) == 0 ? (uint64_t)si.totalram * si.mem_unit : 0;
    c->p = (loom_device_profile_t){
        .kind = "cpu",
        .model = c->model,
        .arch = c->arch,
        .cores = cores,
        .memory_bytes = mem,
        .gflops = measure_gflops(cores),
        .gbps = measure_gbps(),
        .slots = cores,
    };
    *p = c->p;
    return 0;
}

static int cpu_add_ops(void *self, loom_ops_t *ops, loom_err_t *err)
{
    (void)self;
    int rc = loom_ops_add_tools(ops);
    if (rc)
        return loom_err_set(err, rc, "registering tool ops failed");
    if ((rc = loom_llm_add_ops(ops, loom_llm_backend_find("cpu"), err)) != 0)
        return rc;
    if ((rc = loom_ops_add_endpoints(ops)) != 0)
        return loom_err_set(err, rc, "registering model endpoint ops failed");
    /* compute and vector.search on JIT-compiled kernels (last: a search on
     * a .vindex file is handed on to the LLM engine's vector.search). */
    return loom_kernel_ops_add(ops, LOOM_TARGET_CPU, err);
}

static void cpu_destroy(void *self)
{
    free(self);
}

static const loom_backend_t cpu_backend = {
    .name = "cpu",
    .init = cpu_init,
    .profile = cpu_profile,
    .add_ops = cpu_add_ops,
    .destroy = cpu_destroy,
};

int main(int argc, char **argv)
{
    return loom_worker_main(&cpu_backend, argc, argv);
}

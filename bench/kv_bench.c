/* kv_bench.c — `make bench-kv`: moving a KV cache of the TinyLlama-1.1B
 * shape (22 layers, 4 KV heads x 64, f32: 44 KiB per token) between two
 * processes on this machine, next to the limits measured in the same run:
 *
 *   network    loom_objfetch over the producer's object socket (chunked
 *              ZeroMQ, credit window, XXH3-128 verified)
 *   raw zmq    the same bytes, same chunk size, PUSH -> PULL between the
 *              same two processes with nothing else (the link's limit):
 *              the producer sends straight from its buffer
 *              (zmq_msg_init_data, as the object server sends from its
 *              mapping), the consumer zmq_recv()s into place
 *   same-host  loom_objfetch from the producer's shared-memory file
 *              (read + XXH3-128)
 *   memcpy     one memcpy of the same size in the consumer (the limit of
 *              the same-host path)
 *
 * Every side writes into the same buffer, touched before: on this VM the
 * first touch of fresh memory costs far more than the copy (the host backs
 * guest pages lazily), so that cost is measured once per size and printed
 * apart, and so are the page faults each transfer costs the two processes
 * (median, from getrusage and /proc/PID/stat). Both processes run with the
 * heap policy of loom_objfetch_init (objfetch.h), the raw side as well.
 * For each size the four are run in turn, REPS times, alternating; medians
 * and ranges are printed. Usage: kv_bench [REPS] [TOKENS...] (default 5 x
 * 512 4096 32768). */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "common/clock.h"
#include "common/buf.h"
#include "llm/kvcache.h"
#include "workers/common/objfetch.h"
#include "workers/common/objstore.h"

#define LAYERS 22
#define KVH 4
#define HD 64
#define VOCAB 32000
#define CHUNK (1u << 20)

static double now(void) { return (double)loom_clock_ns() * 1e-9; } /* seconds, monotonic */

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Minor page faults so far: of this process, or (pid > 0) of another. */
static long faults(pid_t pid) {
    if (pid <= 0) {
        struct rusage u;
        getrusage(RUSAGE_SELF, &u);
        return u.ru_minflt;
    }
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = 0;
    char *p = strrchr(line, ')'); /* field 10, minflt, counted after the command name */
    long v = 0;
    if (p) sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %lu", &v);
    return v;
}

/* A serialised cache of n tokens with non-trivial contents. */
static int make_kv(int n, loom_buf_t *out) {
    uint8_t h[32] = {0};
    loom_kvcache_t *k;
    loom_err_t e = {0};
    if (loom_kvcache_new(h, LAYERS, KVH, HD, n, VOCAB, &k, &e)) return -1;
    uint32_t x = 1;
    for (int l = 0; l < LAYERS; l++) {
        float *kk = loom_kvcache_k(k, l), *vv = loom_kvcache_v(k, l);
        for (size_t i = 0; i < (size_t)n * KVH * HD; i++) {
            x = x * 1664525u + 1013904223u;
            kk[i] = (float)(x >> 8) * 1e-7f;
            vv[i] = -kk[i];
        }
    }
    for (int i = 0; i < n; i++) loom_kvcache_tokens(k)[i] = i % VOCAB;
    int rc = loom_kvcache_serialize(k, out, &e);
    loom_kvcache_destroy(&k);
    return rc;
}

/* Producer: stores the object, answers raw-ZeroMQ requests ("go" on its
 * PULL -> it PUSHes the object in CHUNK frames), until killed. */
static void producer(int n, int fd) {
    loom_buf_t b = LOOM_BUF_INIT;
    loom_objref_t ref;
    loom_err_t e = {0};
    if (make_kv(n, &b) || loom_objstore_put(b.data, b.len, "producer", "loom-kv-v1/f32", &ref, &e)) _exit(1);
    void *ctx = zmq_ctx_new(), *push = zmq_socket(ctx, ZMQ_PUSH), *ctl = zmq_socket(ctx, ZMQ_PULL);
    char ep[2][256];
    size_t l = sizeof ep[0];
    zmq_bind(push, "tcp://127.0.0.1:*");
    zmq_getsockopt(push, ZMQ_LAST_ENDPOINT, ep[0], &l);
    l = sizeof ep[1];
    zmq_bind(ctl, "tcp://127.0.0.1:*");
    zmq_getsockopt(ctl, ZMQ_LAST_ENDPOINT, ep[1], &l);
    if (write(fd, &ref, sizeof ref) != (ssize_t)sizeof ref || write(fd, ep, sizeof ep) != (ssize_t)sizeof ep) _exit(1);
    for (;;) {
        char go[8];
        if (zmq_recv(ctl, go, sizeof go, 0) < 0) continue;
        for (size_t off = 0; off < b.len; off += CHUNK) {
            zmq_msg_t m; /* no copy: b lives as long as this process */
            zmq_msg_init_data(&m, b.data + off, b.len - off < CHUNK ? b.len - off : CHUNK, NULL, NULL);
            if (zmq_msg_send(&m, push, 0) < 0) zmq_msg_close(&m);
        }
    }
}

static void report(const char *name, const double *x, int reps, size_t bytes, double limit_gbs, const char *vs) {
    double v[64];
    memcpy(v, x, sizeof(double) * (size_t)reps);
    qsort(v, (size_t)reps, sizeof *v, cmp);
    double med = v[reps / 2], gbs = (double)bytes / med / 1e9;
    printf("  %-10s %8.1f ms  (%.1f-%.1f)  %6.2f GB/s", name, med * 1e3, v[0] * 1e3, v[reps - 1] * 1e3, gbs);
    if (limit_gbs > 0) printf("  = %.2f x %s", gbs / limit_gbs, vs);
    printf("\n");
}

static double median(const double *x, int reps) {
    double v[64];
    memcpy(v, x, sizeof(double) * (size_t)reps);
    qsort(v, (size_t)reps, sizeof *v, cmp);
    return v[reps / 2];
}

static int bench(int n, int reps) {
    int p[2];
    if (pipe(p)) return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        producer(n, p[1]);
    }
    close(p[1]);
    loom_objref_t ref;
    char ep[2][256];
    if (read(p[0], &ref, sizeof ref) != (ssize_t)sizeof ref || read(p[0], ep, sizeof ep) != (ssize_t)sizeof ep) {
        fprintf(stderr, "kv_bench: the producer failed (out of memory or /dev/shm full?)\n");
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return 1;
    }
    close(p[0]);
    size_t size = ref.size;
    void *ctx = zmq_ctx_new(), *pull = zmq_socket(ctx, ZMQ_PULL), *ctl = zmq_socket(ctx, ZMQ_PUSH);
    zmq_connect(pull, ep[0]);
    zmq_connect(ctl, ep[1]);
    uint8_t *dst = malloc(size), *src = malloc(size);
    memset(src, 1, size);
    memset(dst, 3, size); /* not 0: malloc + memset 0 may become calloc, leaving it untouched */
    double net[64], raw[64], shm[64], mc[64];
    double fault_raw[2][64], fault_net[2][64]; /* [consumer, producer][round] */
    loom_objfetch_opts_t o;
    loom_objfetch_opts_default(&o);
    o.timeout_ms = 60000;
    for (int r = 0; r < reps; r++) {
        /* raw ZeroMQ: the same chunks, no protocol, no checksum */
        long fc = faults(0), fp = faults(pid);
        double t0 = now();
        zmq_send(ctl, "go", 2, 0);
        for (size_t off = 0; off < size; off += CHUNK) zmq_recv(pull, dst + off, CHUNK, 0);
        raw[r] = now() - t0;
        fault_raw[0][r] = (double)(faults(0) - fc);
        fault_raw[1][r] = (double)(faults(pid) - fp);
        loom_err_t e = {0};
        loom_objfetch_stats_t st;
        o.same_host = 0;
        fc = faults(0), fp = faults(pid);
        if (loom_objfetch_into(&ref, &o, dst, &st, &e)) { fprintf(stderr, "network fetch: %s\n", e.msg); return 1; }
        net[r] = st.seconds;
        fault_net[0][r] = (double)(faults(0) - fc);
        fault_net[1][r] = (double)(faults(pid) - fp);
        o.same_host = 1;
        if (loom_objfetch_into(&ref, &o, dst, &st, &e) || strcmp(st.path, "same-host")) {
            fprintf(stderr, "same-host fetch: %s\n", e.msg);
            return 1;
        }
        shm[r] = st.seconds;
        t0 = now();
        memcpy(dst, src, size);
        mc[r] = now() - t0;
        src[r] ^= dst[size - 1 - (size_t)r]; /* keep the copy observable */
    }
    double t0 = now();
    uint8_t *fresh = malloc(size);
    memset(fresh, 2, size);
    double first_touch = now() - t0;
    free(fresh);
    printf("%d tokens: %.1f MiB (f32, TinyLlama shape); first touch of a fresh buffer this size: %.1f ms\n", n,
           (double)size / 1048576.0, first_touch * 1e3);
    double raw_gbs = (double)size / median(raw, reps) / 1e9, mc_gbs = (double)size / median(mc, reps) / 1e9;
    report("raw zmq", raw, reps, size, 0, "");
    report("network", net, reps, size, raw_gbs, "raw zmq");
    printf("  page faults per transfer (median; the object is %zu pages): raw zmq %.0f consumer + %.0f producer, "
           "network %.0f + %.0f\n", size / 4096, median(fault_raw[0], reps), median(fault_raw[1], reps),
           median(fault_net[0], reps), median(fault_net[1], reps));
    report("memcpy", mc, reps, size, 0, "");
    report("same-host", shm, reps, size, mc_gbs, "memcpy");
    free(dst);
    free(src);
    zmq_close(pull);
    zmq_close(ctl);
    zmq_ctx_term(ctx);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return 0;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    if (reps < 1 || reps > 64) {
        fprintf(stderr, "usage: kv_bench [REPS 1-64] [TOKENS...]\n");
        return 2;
    }
    int sizes[16] = {512, 4096, 32768}, ns = 3;
    if (argc > 2) {
        ns = 0;
        for (int i = 2; i < argc && ns < 16; i++) sizes[ns++] = atoi(argv[i]);
    }
    loom_objfetch_init(); /* before the fork: both processes, both sides */
    char dir[] = "/dev/shm/loom-kvbench.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    setenv("LOOM_OBJECT_DIR", dir, 1);
    setenv("LOOM_OBJECT_CACHE_BYTES", "8589934592", 1);
    printf("bench-kv: %ld cores; medians (ranges) of %d alternating runs\n", sysconf(_SC_NPROCESSORS_ONLN), reps);
    int rc = 0;
    for (int i = 0; i < ns && !rc; i++) rc = bench(sizes[i], reps);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) rc = 1;
    return rc;
}

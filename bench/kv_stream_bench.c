/* kv_stream_bench.c — part of `make bench-kv`: layer-wise KV streaming
 * (issue 15, item 2) against the whole-cache hand-off, on the real CPU
 * engine, between two processes on this machine, as a split generate runs:
 *
 *   producer   a forked process with the model loaded (resident) runs the
 *              prefill of a prompt of N tokens (the CPU backend, its thread
 *              pool on every core)
 *   streamed   it publishes the KV stream's reference before computing
 *              (loom_llm_kv_stream_open) and writes each layer's rows as
 *              they are computed (loom_llm_prefill_stream); the consumer
 *              (this process) fetches while it computes
 *   whole      it prefills (loom_llm_prefill), publishes the whole cache
 *              (loom_llm_kv_publish), then hands over the reference; the
 *              consumer fetches after
 *
 * For each, the time from "go" until the consumer holds the whole cache
 * (the moment the decode can start: split end to end minus the decode,
 * which is the same either way), the producer's own prefill time (the
 * bound: a transfer hidden entirely costs nothing past it) and, for whole,
 * the fetch alone (transfer, checksum, parse with the cache's SHA-256) and
 * the publish (the rest: serialise, SHA-256 id, write to the store).
 * Streamed has neither whole-object hash: its segments carry XXH3-128s.
 * Both the same-host path and the network path; streamed and whole
 * alternate, REPS rounds; medians (ranges).
 * Usage: bench-kv-stream MODEL [REPS] [TOKENS...] (default 3 x 512 2048). */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "llm/llm_backend.h"
#include "llm/llm_kvref.h"

static double now(void) { return (double)loom_clock_ns() * 1e-9; } /* seconds, monotonic */

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what, const loom_err_t *e) {
    fprintf(stderr, "bench-kv-stream: %s: %s\n", what, e ? e->msg : "");
    exit(1);
}

static int full_write(int fd, const void *p, size_t n) {
    for (size_t k = 0; k < n;) {
        ssize_t w = write(fd, (const char *)p + k, n - k);
        if (w <= 0) return -1;
        k += (size_t)w;
    }
    return 0;
}

static int full_read(int fd, void *p, size_t n) {
    for (size_t k = 0; k < n;) {
        ssize_t r = read(fd, (char *)p + k, n - k);
        if (r <= 0) return -1;
        k += (size_t)r;
    }
    return 0;
}

static void prompt(int32_t *ids, int n, int vocab) {
    uint32_t x = 777;
    for (int i = 0; i < n; i++) ids[i] = 1 + (int32_t)((x = x * 1664525u + 1013904223u) >> 8) % (vocab - 1);
}

/* The producer: per command {streamed, tokens} from `in`, sends the
 * reference (length + JSON) to `out` as soon as it has one, then the
 * prefill's seconds. */
static void producer(const char *path, int in, int out) {
    loom_llm_model_t *m;
    loom_err_t e = {0};
    if (loom_llm_model_load_resident(path, &m, &e)) die("model", &e);
    const loom_llm_factory_t *f = loom_llm_backend_find("cpu");
    int cmd[2];
    while (!full_read(in, cmd, sizeof cmd)) {
        int n = cmd[1];
        int32_t *ids = malloc((size_t)n * sizeof *ids);
        prompt(ids, n, m->n_vocab);
        loom_llm_backend_t b;
        void *h;
        if (f->create(f->ud, m, n + 1, &b, &h, &e)) die("backend", &e);
        json_t *ref = NULL;
        double secs = 0;
        char *text;
        uint32_t len;
        if (cmd[0]) {
            loom_llm_kv_stream_t *s;
            loom_llm_kv_sink_t sink;
            if (loom_llm_kv_stream_open(m, ids, (size_t)n, LOOM_KV_F32, LOOM_LLM_CPU_BATCH, "producer", NULL, &s, &sink,
                                        &ref, &e))
                die("stream", &e);
            text = json_dumps(ref, JSON_COMPACT);
            len = (uint32_t)strlen(text);
            if (full_write(out, &len, 4) || full_write(out, text, len)) exit(1);
            if (loom_llm_prefill_stream(m, &b, ids, (size_t)n, LOOM_LLM_CPU_BATCH, &sink, &secs, &e) ||
                loom_llm_kv_stream_close(s, 1, &e))
                die("streamed prefill", &e);
        } else {
            loom_kvcache_t *kv;
            if (loom_llm_prefill(m, &b, ids, (size_t)n, &kv, &secs, &e) ||
                loom_llm_kv_publish(kv, LOOM_KV_F32, "producer", NULL, &ref, &e))
                die("prefill", &e);
            loom_kvcache_destroy(&kv);
            text = json_dumps(ref, JSON_COMPACT);
            len = (uint32_t)strlen(text);
            if (full_write(out, &len, 4) || full_write(out, text, len)) exit(1);
        }
        f->destroy(f->ud, h);
        if (full_write(out, &secs, sizeof secs)) exit(1);
        free(text);
        json_decref(ref);
        free(ids);
    }
    exit(0);
}

typedef struct {
    double e2e, prefill, fetch;
} sample_t;

/* One round: go, take the reference, fetch; the consumer's view. */
static sample_t round_trip(int to, int from, int streamed, int tokens, int same_host) {
    int cmd[2] = {streamed, tokens};
    double t0 = now();
    if (full_write(to, cmd, sizeof cmd)) die("producer gone", NULL);
    uint32_t len;
    if (full_read(from, &len, 4)) die("producer gone", NULL);
    char *text = malloc(len + 1);
    if (full_read(from, text, len)) die("producer gone", NULL);
    text[len] = 0;
    json_t *ref = json_loads(text, 0, NULL);
    loom_objfetch_opts_t o;
    loom_objfetch_opts_default(&o);
    o.same_host = same_host;
    loom_kvcache_t *kv;
    loom_err_t e = {0};
    double f0 = now();
    if (loom_llm_kv_fetch(ref, &o, &kv, NULL, &e)) die("fetch", &e);
    sample_t s = {.e2e = now() - t0, .fetch = now() - f0};
    if (full_read(from, &s.prefill, sizeof s.prefill)) die("producer gone", NULL);
    loom_kvcache_destroy(&kv);
    json_decref(ref);
    free(text);
    return s;
}

static void stats(double *v, int n, double *med, double *lo, double *hi) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    *med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    *lo = v[0];
    *hi = v[n - 1];
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help")) {
        printf("usage: bench-kv-stream MODEL [REPS] [TOKENS...]\n"
               "Split prefill -> decode hand-off: the KV cache streamed layer by layer against whole.\n");
        return argc < 2;
    }
    int reps = argc > 2 ? atoi(argv[2]) : 3;
    int sizes[8] = {512, 2048}, nsizes = 2;
    if (argc > 3) {
        nsizes = 0;
        for (int i = 3; i < argc && nsizes < 8; i++) sizes[nsizes++] = atoi(argv[i]);
    }
    if (reps < 1 || reps > 64) {
        fprintf(stderr, "usage: bench-kv-stream MODEL [REPS 1-64] [TOKENS...]\n");
        return 2;
    }
    int down[2], up[2];
    if (pipe(down) || pipe(up)) return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(down[1]);
        close(up[0]);
        producer(argv[1], down[0], up[1]);
    }
    close(down[0]);
    close(up[1]);
    printf("bench-kv-stream: %ld cores; %s; medians (ranges) of %d alternating rounds; times from go until the\n"
           "consumer holds the whole cache (the decode may start), next to the producer's prefill alone\n",
           sysconf(_SC_NPROCESSORS_ONLN), argv[1], reps);
    round_trip(down[1], up[0], 1, 64, 1); /* warm up: first touches, thread pool */
    for (int z = 0; z < nsizes; z++)
        for (int same = 1; same >= 0; same--) {
            double e2e[2][64], pre[2][64], fetch[64], tail[64];
            for (int r = 0; r < reps; r++)
                for (int k = 0; k < 2; k++) { /* alternate: streamed, whole */
                    int streamed = (r + k) % 2 == 0;
                    sample_t s = round_trip(down[1], up[0], streamed, sizes[z], same);
                    e2e[streamed][r] = s.e2e;
                    pre[streamed][r] = s.prefill;
                    if (!streamed) fetch[r] = s.fetch;
                    else tail[r] = s.e2e - s.prefill;
                }
            double m[2], lo[2], hi[2], pm[2], pl[2], ph[2], fm, fl, fh, tm, tl, th;
            for (int k = 0; k < 2; k++) {
                stats(e2e[k], reps, &m[k], &lo[k], &hi[k]);
                stats(pre[k], reps, &pm[k], &pl[k], &ph[k]);
            }
            stats(fetch, reps, &fm, &fl, &fh);
            stats(tail, reps, &tm, &tl, &th);
            printf("\n%d tokens, %s path:\n", sizes[z], same ? "same-host" : "network");
            printf("  whole     end to end %.3f s (%.3f-%.3f) = prefill %.3f s (%.3f-%.3f) + publish %.1f ms + fetch %.1f ms "
                   "(%.1f-%.1f)\n",
                   m[0], lo[0], hi[0], pm[0], pl[0], ph[0], (m[0] - pm[0] - fm) * 1e3, fm * 1e3, fl * 1e3, fh * 1e3);
            printf("  streamed  end to end %.3f s (%.3f-%.3f); prefill %.3f s (%.3f-%.3f); past the prefill %.1f ms (%.1f-%.1f)\n",
                   m[1], lo[1], hi[1], pm[1], pl[1], ph[1], tm * 1e3, tl * 1e3, th * 1e3);
            printf("  streaming saves %.1f ms end to end (%.2f %% of whole's); whole's fetch is %.2f %% of its prefill, "
                   "streamed leaves %.1f ms past the prefill\n",
                   (m[0] - m[1]) * 1e3, 100 * (m[0] - m[1]) / m[0], 100 * fm / pm[0], tm * 1e3);
        }
    close(down[1]);
    waitpid(pid, NULL, 0);
    return 0;
}

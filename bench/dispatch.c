/* dispatch.c — the loomd side of `make bench-dispatch` (bench/dispatch.sh
 * starts loomd and two CPU workers, then runs this, then the Dask peer).
 *
 * Shapes (noop tasks, so only orchestration is measured):
 *   independent, one run   : foreach over N items            (N = 100,000)
 *   independent, many runs : N/100 runs of a 100-item foreach, all in flight
 *   chain, one run         : M steps, each needing the previous (M = 10,000)
 *   chain, many runs       : M/100 runs of a 100-step chain, all in flight
 *   chained step latency   : 7 chains of M/10 steps, one at a time: each
 *                            chain's wall time per step (median, range)
 *   memory                 : 1,000,000 tasks as 10,000 runs of 100, loomd's
 *                            RSS sampled every 100,000 tasks
 * Throughput is tasks / wall time from the first submit to the last run's
 * end. Per-task latency (ready in loomd → result back in loomd) comes from
 * each run's final event ("p50 X us, p99 Y us"); for many runs the median
 * of the runs' p50 and p99 is shown. Prints one "RESULT key=value" line per
 * figure for the script.
 *
 * N_CHAIN 0 runs only the independent shapes; $LOOM_SERVER_KEY and
 * $LOOM_AUTH_TOKEN talk to a loomd in secure mode (CURVE + tokens), which
 * bench/dispatch.sh compares with plain mode in the same run.
 *
 * CLIENTS (6th argument, default 1): the many-runs shapes submit and watch
 * each wave from that many threads, each with its own client (a client is
 * not thread-safe). bench/dispatch_pg.sh uses 8 for both of its loomd runs
 * (in-memory and --db), so the comparison stays fair: with one blocking
 * client every Submit waits for its own commit in series, whereas real
 * deployments have many concurrent clients whose submits loomd's database
 * writer commits together in one transaction (group commit). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "protocol/client.h"
#include "protocol/keys.h"

#define STEP_RUNS 7 /* chains timed for the chained step latency */

static loom_client_t *cli;   /* the main thread's client */
static const char *endpoint; /* for the many-runs threads' own clients */
static int nclients = 1;

static void die(const char *what, const loom_err_t *err)
{
    fprintf(stderr, "bench-dispatch: %s: %s\n", what, err ? err->msg : "");
    exit(1);
}

/* Secure mode (docs/SECURITY.md): $LOOM_SERVER_KEY (loomd.pub) turns
 * CURVE on, $LOOM_AUTH_TOKEN is sent with every call. */
static loom_client_t *connect_to(const char *ep, loom_err_t *err)
{
    loom_client_opts_t o = {.auth_token = getenv("LOOM_AUTH_TOKEN")};
    const char *sk = getenv("LOOM_SERVER_KEY");
    char server[41];
    if (sk && *sk) {
        if (loom_key_read_public(sk, server, err) != 0)
            return NULL;
        o.server_public_key = server;
    }
    return loom_client_new(ep, &o, err);
}

static char *fan_yaml(void)
{
    return strdup("version: 1\nname: bench-fan\ninputs:\n  items: list\nsteps:\n"
                  "  t:\n    op: noop\n    foreach: ${inputs.items}\n"
                  "outputs:\n  n: ${steps.t.output}\n");
}

static char *chain_yaml(int m)
{
    loom_buf_t b = LOOM_BUF_INIT;
    loom_buf_printf(&b, "version: 1\nname: bench-chain-%d\nsteps:\n", m);
    for (int i = 0; i < m; i++) {
        loom_buf_printf(&b, "  s%d:\n    op: noop\n", i);
        if (i)
            loom_buf_printf(&b, "    needs: [s%d]\n", i - 1);
    }
    loom_buf_printf(&b, "outputs:\n  last: ${steps.s%d.output}\n", m - 1);
    return loom_buf_detach(&b, NULL);
}

static char *items_json(int n)
{
    loom_buf_t b = LOOM_BUF_INIT;
    loom_buf_puts(&b, "{\"items\":[");
    for (int i = 0; i < n; i++)
        loom_buf_printf(&b, "%s%d", i ? "," : "", i);
    loom_buf_puts(&b, "]}");
    return loom_buf_detach(&b, NULL);
}

static void submit_on(loom_client_t *c, const char *yaml, const char *inputs, char *id, size_t n)
{
    Loom__V1__SubmitRequest rq = LOOM__V1__SUBMIT_REQUEST__INIT;
    rq.workflow_yaml = (char *)yaml;
    rq.workflow_name = "bench.yaml";
    rq.inputs_json = (char *)(inputs ? inputs : "{}");
    Loom__V1__SubmitReply *rep = NULL;
    loom_err_t err;
    if (loom_client_submit(c, &rq, 30000, &rep, &err) != LOOM_STATUS_OK)
        die("submit", &err);
    snprintf(id, n, "%s", rep->run_id);
    loom_pb_free(rep);
}

/* Follows a run to its end; returns its p50/p99 (us) from the final event. */
static void wait_run_on(loom_client_t *c, const char *id, double *p50, double *p99)
{
    Loom__V1__WatchRequest wr = LOOM__V1__WATCH_REQUEST__INIT;
    wr.run_id = (char *)id;
    wr.run_only = 1; /* the outcome only, as Dask's gather: no event per step */
    loom_stream_t *s = NULL;
    loom_err_t err;
    if (loom_client_watch(c, &wr, 600000, &s, &err) != LOOM_STATUS_OK)
        die("watch", &err);
    *p50 = *p99 = 0;
    for (;;) {
        ProtobufCMessage *it = NULL;
        int k = loom_stream_next(s, -1, &it, &err);
        if (k == LOOM_STREAM_END) {
            if (loom_stream_status(s) != LOOM_STATUS_OK) { /* e.g. the watch's deadline */
                fprintf(stderr, "bench-dispatch: watching run %s ended with status %d: %s\n", id,
                        loom_stream_status(s), loom_stream_message(s));
                exit(1);
            }
            break;
        }
        if (k != LOOM_STREAM_ITEM)
            continue;
        const Loom__V1__RunEvent *ev = (const Loom__V1__RunEvent *)it;
        if (ev->kind == LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_RUN_FINISHED) {
            const char *m = strstr(ev->message, "p50 ");
            if (m)
                sscanf(m, "p50 %lf us, p99 %lf us", p50, p99);
        } else if (ev->kind == LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_RUN_FAILED ||
                   ev->kind == LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_RUN_CANCELLED) {
            fprintf(stderr, "bench-dispatch: run %s failed: %s\n", id, ev->message);
            exit(1);
        }
        loom_pb_free(it);
    }
    loom_stream_destroy(&s);
}

static void submit(const char *yaml, const char *inputs, char *id, size_t n)
{
    submit_on(cli, yaml, inputs, id, n);
}

static void wait_run(const char *id, double *p50, double *p99)
{
    wait_run_on(cli, id, p50, p99);
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmpd);
    return n ? v[n / 2] : 0;
}

static long rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static void report(const char *key, const char *label, long tasks, double secs, double p50,
                   double p99)
{
    printf("  %-28s %9ld tasks %8.3f s %10.0f tasks/s   p50 %7.0f us  p99 %8.0f us\n", label,
           tasks, secs, tasks / secs, p50, p99);
    printf("RESULT %s_rate=%.0f\nRESULT %s_p50_us=%.0f\nRESULT %s_p99_us=%.0f\n", key,
           tasks / secs, key, p50, key, p99);
    fflush(stdout);
}

/* One thread's share of a wave: runs first, first + step, ... < end. */
typedef struct share {
    loom_client_t *c;
    const char *yaml, *inputs;
    int first, end, step;
    char (*ids)[64];
    double *p50, *p99;
} share_t;

static void *share_main(void *arg)
{
    share_t *sh = arg;
    for (int i = sh->first; i < sh->end; i += sh->step)
        submit_on(sh->c, sh->yaml, sh->inputs, sh->ids[i], sizeof sh->ids[i]);
    for (int i = sh->first; i < sh->end; i += sh->step)
        wait_run_on(sh->c, sh->ids[i], &sh->p50[i], &sh->p99[i]);
    return NULL;
}

/* runs copies of (yaml, inputs) with at most `wave` in flight at once; each
 * wave is submitted and watched by nclients threads (own clients) */
static void many(const char *yaml, const char *inputs, int runs, int per_run, int wave,
                 const char *key, const char *label)
{
    char (*ids)[64] = calloc((size_t)runs, sizeof *ids);
    double *p50 = calloc((size_t)runs, sizeof *p50), *p99 = calloc((size_t)runs, sizeof *p99);
    loom_client_t **cs = calloc((size_t)nclients, sizeof *cs);
    share_t *sh = calloc((size_t)nclients, sizeof *sh);
    pthread_t *th = calloc((size_t)nclients, sizeof *th);
    if (!ids || !p50 || !p99 || !cs || !sh || !th)
        die("out of memory", NULL);
    for (int k = 0; k < nclients; k++) {
        loom_err_t err;
        cs[k] = k == 0 ? cli : connect_to(endpoint, &err);
        if (!cs[k])
            die("connect", &err);
    }
    uint64_t t0 = loom_clock_ns();
    for (int done = 0; done < runs;) {
        int n = runs - done < wave ? runs - done : wave;
        for (int k = 0; k < nclients; k++) {
            sh[k] = (share_t){cs[k], yaml, inputs, done + k, done + n, nclients, ids, p50, p99};
            if (pthread_create(&th[k], NULL, share_main, &sh[k]) != 0)
                die("cannot start a client thread", NULL);
        }
        for (int k = 0; k < nclients; k++)
            pthread_join(th[k], NULL);
        done += n;
    }
    double secs = (double)(loom_clock_ns() - t0) / 1e9;
    report(key, label, (long)runs * per_run, secs, median(p50, runs), median(p99, runs));
    for (int k = 1; k < nclients; k++)
        loom_client_destroy(&cs[k]);
    free(cs);
    free(sh);
    free(th);
    free(ids);
    free(p50);
    free(p99);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench-dispatch ENDPOINT LOOMD_PID [N_INDEPENDENT] [N_CHAIN] [N_MEMORY] [CLIENTS]\n");
        return 2;
    }
    int pid = atoi(argv[2]);
    int n = argc > 3 ? atoi(argv[3]) : 100000;
    int m = argc > 4 ? atoi(argv[4]) : 10000;
    long mem = argc > 5 ? atol(argv[5]) : 1000000;
    nclients = argc > 6 ? atoi(argv[6]) : 1;
    if (nclients < 1 || nclients > 64) {
        fprintf(stderr, "bench-dispatch: CLIENTS must be 1..64, got %s\n", argv[6]);
        return 2;
    }
    endpoint = argv[1];
    loom_err_t err;
    cli = connect_to(argv[1], &err);
    if (!cli)
        die("connect", &err);
    char id[64];
    double p50, p99;
    char *fan = fan_yaml(), *items = items_json(n), *items100 = items_json(100);
    char *chain = chain_yaml(m), *chain100 = chain_yaml(100);

    /* warm-up: connections, allocator, page cache */
    submit(fan, items100, id, sizeof id);
    wait_run(id, &p50, &p99);

    uint64_t t0 = loom_clock_ns();
    submit(fan, items, id, sizeof id);
    wait_run(id, &p50, &p99);
    report("ind_one", "independent, 1 run", n, (double)(loom_clock_ns() - t0) / 1e9, p50, p99);

    many(fan, items100, n / 100, 100, 500, "ind_many", "independent, runs of 100");

    if (m > 0) { /* N_CHAIN 0: only the independent shapes */
        t0 = loom_clock_ns();
        submit(chain, NULL, id, sizeof id);
        wait_run(id, &p50, &p99);
        report("chain_one", "chain, 1 run", m, (double)(loom_clock_ns() - t0) / 1e9, p50, p99);

        /* Chained step latency: what a step of a chain costs from its
         * predecessor's end to its own, everything included (loomd, the
         * worker, the round trips that worker-side chaining leaves). It is
         * each chain's wall time (submit to end) over its steps, for
         * STEP_RUNS chains of m/10 steps run one at a time: the median and
         * the range over the chains. */
        int sm = m / 10 > 0 ? m / 10 : 1;
        char *chain_s = chain_yaml(sm);
        double per[STEP_RUNS];
        submit(chain_s, NULL, id, sizeof id); /* warm: its plan is made and cached */
        wait_run(id, &p50, &p99);
        for (int k = 0; k < STEP_RUNS; k++) {
            t0 = loom_clock_ns();
            submit(chain_s, NULL, id, sizeof id);
            wait_run(id, &p50, &p99);
            per[k] = (double)(loom_clock_ns() - t0) / 1e3 / sm;
        }
        free(chain_s);
        double lo = per[0], hi = per[0];
        for (int k = 1; k < STEP_RUNS; k++)
            lo = per[k] < lo ? per[k] : lo, hi = per[k] > hi ? per[k] : hi;
        double med = median(per, STEP_RUNS);
        printf("  %-28s %9d steps: %.1f us per step, median of %d chains run one at a time (range %.1f-%.1f)\n",
               "chained step latency", sm, med, STEP_RUNS, lo, hi);
        printf("RESULT chain_step_p50_us=%.2f\nRESULT chain_step_min_us=%.2f\nRESULT chain_step_max_us=%.2f\n", med, lo,
               hi);
        fflush(stdout);

        many(chain100, NULL, m / 100, 100, 100, "chain_many", "chains of 100, concurrent");
    }

    if (mem > 0 && pid > 0) {
        long base = rss_kb(pid), peak = base, samples = 0;
        printf("  memory over %ld tasks (runs of 100): loomd RSS", mem);
        long per_sample = mem / 10, next = per_sample;
        char (*ids)[64] = calloc(500, sizeof *ids);
        uint64_t tm = loom_clock_ns();
        for (long done = 0; done < mem;) {
            int k = 0;
            for (; k < 500 && done + (long)k * 100 < mem; k++)
                submit(fan, items100, ids[k], sizeof ids[k]);
            for (int i = 0; i < k; i++)
                wait_run(ids[i], &p50, &p99);
            done += (long)k * 100;
            if (done >= next) {
                long kb = rss_kb(pid);
                if (kb > peak)
                    peak = kb;
                printf(" %ld", kb / 1024);
                fflush(stdout);
                next += per_sample;
                samples++;
            }
        }
        double secs = (double)(loom_clock_ns() - tm) / 1e9;
        printf(" MiB\n  (%.0f tasks/s; RSS before %ld MiB, peak %ld MiB, after %ld MiB)\n",
               mem / secs, base / 1024, peak / 1024, rss_kb(pid) / 1024);
        printf("RESULT mem_tasks=%ld\nRESULT rss_before_kb=%ld\nRESULT rss_peak_kb=%ld\nRESULT rss_after_kb=%ld\n",
               mem, base, peak, rss_kb(pid));
        free(ids);
    }
    free(fan), free(items), free(items100), free(chain), free(chain100);
    loom_client_destroy(&cli);
    return 0;
}

/* sim.c — see sim.h. One binary heap of events; one FIFO per (device
 * class, slot kind); run state recycled through per-workflow free lists. */
#include "planner/sim.h"
#include "common/grow.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { EV_ARRIVE = 0, EV_READY, EV_DONE };

typedef struct {
    double t;
    uint32_t kind, wf;
    struct run *run;
    int node;
} ev_t;

typedef struct run {
    struct run *next_free;
    double arrive;
    int remaining;      /* nodes not yet finished */
    int *pending;       /* per node: unfinished predecessors */
    double *ready;      /* per node: time all inputs arrive */
    unsigned char *ran; /* per node: it executed (branch taken) */
    double *qstart;     /* per node: time it joined a queue */
} run_t;

typedef struct {
    run_t *run;
    int node;
    uint32_t wf;
    double dur;
} job_t;

typedef struct {
    job_t *q;
    size_t head, len, cap;
    long free_slots;
    double busy;        /* slot-seconds */
    double per_slot;    /* device share of one slot: 1/batch or 1 */
} pool_t;

typedef struct {
    const loom_sim_workflow_t *w;
    run_t *free_list;
    double *lat;        /* per completed run */
    size_t nlat, caplat;
    uint64_t ok;
} wstate_t;

typedef struct {
    ev_t *h;
    size_t n, cap;
} heap_t;

static int heap_push(heap_t *h, ev_t e)
{
    if (LOOM_GROW(h->h, h->cap, h->n + 1) != 0)
            return -1;
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->h[p].t <= e.t)
            break;
        h->h[i] = h->h[p];
        i = p;
    }
    h->h[i] = e;
    return 0;
}

static ev_t heap_pop(heap_t *h)
{
    ev_t top = h->h[0], last = h->h[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        double mt = last.t;
        if (l < h->n && h->h[l].t < mt) {
            m = l;
            mt = h->h[l].t;
        }
        if (r < h->n && h->h[r].t < mt)
            m = r;
        if (m == i)
            break;
        h->h[i] = h->h[m];
        i = m;
    }
    if (h->n)
        h->h[i] = last;
    return top;
}

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static double unit(uint64_t *s) { return ((rnd(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
static double gauss(uint64_t *s) { return sqrt(-2 * log(unit(s))) * cos(6.283185307179586 * unit(s)); }

static int job_push(pool_t *p, job_t j)
{
    if (p->len == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 256;
        job_t *nq = malloc(nc * sizeof *nq);
        if (!nq)
            return -1;
        for (size_t i = 0; i < p->len; i++)
            nq[i] = p->q[(p->head + i) % p->cap];
        free(p->q);
        p->q = nq;
        p->head = 0;
        p->cap = nc;
    }
    p->q[(p->head + p->len++) % p->cap] = j;
    return 0;
}

static job_t job_pop(pool_t *p)
{
    job_t j = p->q[p->head];
    p->head = (p->head + 1) % p->cap;
    p->len--;
    return j;
}

static int uses_batch(loom_gop_t op) { return op == LOOM_GOP_DECODE || op == LOOM_GOP_EMBED; }

static run_t *run_get(wstate_t *ws)
{
    size_t n = loom_graph_nodes(ws->w->g);
    run_t *r = ws->free_list;
    if (r)
        ws->free_list = r->next_free;
    else {
        r = calloc(1, sizeof *r);
        if (!r)
            return NULL;
        r->pending = malloc((n + 1) * sizeof(int));
        r->ready = malloc((n + 1) * sizeof(double));
        r->ran = malloc(n + 1);
        r->qstart = malloc((n + 1) * sizeof(double));
        if (!r->pending || !r->ready || !r->ran || !r->qstart) {
            free(r->pending);
            free(r->ready);
            free(r->ran);
            free(r->qstart);
            free(r);
            return NULL;
        }
    }
    for (size_t v = 0; v < n; v++) {
        size_t ni;
        loom_graph_in(ws->w->g, (int)v, &ni);
        r->pending[v] = (int)ni;
        r->ready[v] = 0;
        r->ran[v] = 0;
    }
    r->remaining = (int)n;
    return r;
}

static void run_free_all(run_t *r)
{
    while (r) {
        run_t *nx = r->next_free;
        free(r->pending);
        free(r->ready);
        free(r->ran);
        free(r->qstart);
        free(r);
        r = nx;
    }
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void stats(double *lat, size_t n, uint64_t ok, loom_sim_stats_t *s)
{
    memset(s, 0, sizeof *s);
    s->runs = n;
    if (!n)
        return;
    qsort(lat, n, sizeof(double), dbl_cmp);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += lat[i];
    s->mean_ms = sum / n;
    s->p50_ms = lat[(size_t)(0.50 * (n - 1))];
    s->p95_ms = lat[(size_t)(0.95 * (n - 1))];
    s->p99_ms = lat[(size_t)(0.99 * (n - 1))];
    s->attain = (double)ok / n;
}

void loom_sim_result_destroy(loom_sim_result_t **pr)
{
    if (!pr || !*pr)
        return;
    free((*pr)->wf);
    free((*pr)->dev);
    free(*pr);
    *pr = NULL;
}

typedef struct {
    heap_t heap;
    pool_t *pools;      /* 2 per fleet entry: [2k] single, [2k+1] batched */
    double *wait_sum;
    uint64_t *wait_n;
    uint64_t seed;
    double now;
    size_t K;
} sim_t;

/* Service time of node v of run r on its device (sampled). */
static double service(sim_t *S, const loom_sim_workflow_t *w, int v)
{
    const loom_gnode_t *nd = loom_graph_node(w->g, v);
    int k = w->assign[v];
    double m = loom_cost_ms(w->cost, v, k) / 1000.0, sd = loom_cost_sd_ms(w->cost, v, k) / 1000.0;
    int iters = 1;
    if (nd->iters_max > 1 && nd->iters_mean > 1) {
        double q = (nd->iters_mean - 1) / (nd->iters_max - 1);
        for (int i = 1; i < (int)nd->iters_max; i++)
            iters += unit(&S->seed) < q;
    }
    double cv = m > 0 ? sd / m : 0, s2 = log(1 + cv * cv), s = sqrt(s2), t = 0;
    for (int i = 0; i < iters; i++)
        t += s > 0 ? m * exp(s * gauss(&S->seed) - s2 / 2) : m;
    return t;
}

static int start_or_queue(sim_t *S, uint32_t wi, const loom_sim_workflow_t *w, run_t *r, int v)
{
    const loom_gnode_t *nd = loom_graph_node(w->g, v);
    r->ran[v] = unit(&S->seed) < nd->prob;
    if (!r->ran[v]) /* branch not taken: done at once */
        return heap_push(&S->heap, (ev_t){S->now, EV_DONE, wi, r, v});
    double dur = service(S, w, v);
    if (loom_gop_is_external(nd->op)) /* tools hold no device */
        return heap_push(&S->heap, (ev_t){S->now + dur, EV_DONE, wi, r, v});
    int k = w->assign[v];
    pool_t *p = &S->pools[2 * k + uses_batch(nd->op)];
    if (p->free_slots > 0) {
        p->free_slots--;
        p->busy += dur * p->per_slot;
        S->wait_n[k]++;
        return heap_push(&S->heap, (ev_t){S->now + dur, EV_DONE, wi, r, v});
    }
    r->qstart[v] = S->now;
    return job_push(p, (job_t){r, v, wi, dur});
}

int loom_sim_run(const loom_fleet_t *f, const loom_sim_workflow_t *w, size_t nw, const loom_sim_opts_t *o,
                 loom_sim_result_t **out, loom_err_t *err)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    *out = NULL;
    double horizon = o && o->seconds > 0 ? o->seconds : 60;
    uint64_t max_runs = o && o->max_runs ? o->max_runs : UINT64_MAX;
    size_t K = loom_fleet_entries(f);
    double B = loom_fleet_batch(f);
    sim_t S = {.seed = o && o->seed ? o->seed : 1, .K = K};
    wstate_t *ws = calloc(nw + 1, sizeof *ws);
    S.pools = calloc(2 * K + 1, sizeof *S.pools);
    S.wait_sum = calloc(K + 1, sizeof(double));
    S.wait_n = calloc(K + 1, sizeof(uint64_t));
    loom_sim_result_t *res = calloc(1, sizeof *res);
    double *all = NULL;
    int rc = 0;
    if (!ws || !S.pools || !S.wait_sum || !S.wait_n || !res) {
        rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < K; k++) {
        const loom_fleet_entry_t *e = loom_fleet_entry(f, (int)k);
        S.pools[2 * k].free_slots = e->count;
        S.pools[2 * k].per_slot = 1;
        S.pools[2 * k + 1].free_slots = (long)(e->count * B);
        S.pools[2 * k + 1].per_slot = 1 / B;
    }
    for (size_t i = 0; i < nw; i++) {
        ws[i].w = &w[i];
        if (!loom_graph_order(w[i].g) || !(w[i].rate_per_s > 0)) {
            rc = loom_err_set(err, LOOM_EINVAL, "workflow %s: no topological order or rate <= 0", w[i].name);
            goto done;
        }
        for (size_t v = 0; v < loom_graph_nodes(w[i].g); v++)
            if (w[i].assign[v] < 0 || (size_t)w[i].assign[v] >= K || !loom_cost_fits(w[i].cost, (int)v, w[i].assign[v])) {
                rc = loom_err_set(err, LOOM_EINVAL, "workflow %s: op %s has no valid device", w[i].name,
                                  loom_graph_node(w[i].g, (int)v)->name);
                goto done;
            }
        heap_push(&S.heap, (ev_t){-log(unit(&S.seed)) / w[i].rate_per_s, EV_ARRIVE, (uint32_t)i, NULL, 0});
    }
    uint64_t arrivals = 0;
    while (S.heap.n) {
        ev_t e = heap_pop(&S.heap);
        S.now = e.t;
        res->events++;
        wstate_t *W = &ws[e.wf];
        const loom_sim_workflow_t *wf = W->w;
        if (e.kind == EV_ARRIVE) {
            if (S.now > horizon || arrivals >= max_runs)
                continue; /* arrivals stop; the rest drains */
            arrivals++;
            run_t *r = run_get(W);
            if (!r) {
                rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
                goto done;
            }
            r->arrive = S.now;
            size_t n = loom_graph_nodes(wf->g);
            for (size_t v = 0; v < n; v++)
                if (r->pending[v] == 0 && start_or_queue(&S, e.wf, wf, r, (int)v) < 0) {
                    rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
                    goto done;
                }
            heap_push(&S.heap, (ev_t){S.now - log(unit(&S.seed)) / wf->rate_per_s, EV_ARRIVE, e.wf, NULL, 0});
        } else if (e.kind == EV_READY) {
            if (start_or_queue(&S, e.wf, wf, e.run, e.node) < 0) {
                rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
                goto done;
            }
        } else { /* EV_DONE */
            run_t *r = e.run;
            int v = e.node, k = wf->assign[v];
            const loom_gnode_t *nd = loom_graph_node(wf->g, v);
            if (r->ran[v] && !loom_gop_is_external(nd->op)) {
                pool_t *p = &S.pools[2 * k + uses_batch(nd->op)];
                if (p->len) { /* hand the slot to the next queued op */
                    job_t j = job_pop(p);
                    p->busy += j.dur * p->per_slot;
                    S.wait_sum[k] += S.now - j.run->qstart[j.node];
                    S.wait_n[k]++;
                    heap_push(&S.heap, (ev_t){S.now + j.dur, EV_DONE, j.wf, j.run, j.node});
                } else
                    p->free_slots++;
            }
            size_t no;
            const int *outs = loom_graph_out(wf->g, v, &no);
            for (size_t i = 0; i < no; i++) {
                const loom_gedge_t *ed = loom_graph_edge(wf->g, outs[i]);
                double arr = S.now + (r->ran[v] ? loom_cost_xfer_ms(wf->cost, outs[i], k, wf->assign[ed->dst]) / 1000.0 : 0);
                if (arr > r->ready[ed->dst])
                    r->ready[ed->dst] = arr;
                if (--r->pending[ed->dst] == 0)
                    heap_push(&S.heap, (ev_t){r->ready[ed->dst], EV_READY, e.wf, r, ed->dst});
            }
            if (--r->remaining == 0) {
                double lat = (S.now - r->arrive) * 1000.0;
                if (LOOM_GROW(W->lat, W->caplat, W->nlat + 1) != 0) {
                        rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
                        goto done;
                    }
                W->lat[W->nlat++] = lat;
                W->ok += wf->sla_ms <= 0 || lat <= wf->sla_ms;
                r->next_free = W->free_list;
                W->free_list = r;
            }
        }
    }
    res->sim_seconds = S.now;
    res->nwf = nw;
    res->ndev = K;
    res->wf = calloc(nw + 1, sizeof *res->wf);
    res->dev = calloc(K + 1, sizeof *res->dev);
    size_t total = 0;
    uint64_t ok = 0;
    for (size_t i = 0; i < nw; i++)
        total += ws[i].nlat;
    all = malloc((total + 1) * sizeof(double));
    if (!res->wf || !res->dev || !all) {
        rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto done;
    }
    size_t at = 0;
    for (size_t i = 0; i < nw; i++) {
        memcpy(all + at, ws[i].lat, ws[i].nlat * sizeof(double));
        at += ws[i].nlat;
        ok += ws[i].ok;
        stats(ws[i].lat, ws[i].nlat, ws[i].ok, &res->wf[i]);
    }
    stats(all, total, ok, &res->all);
    const loom_catalog_t *cat = loom_fleet_catalog(f);
    double T = S.now > 0 ? S.now : 1;
    for (size_t k = 0; k < K; k++) {
        const loom_fleet_entry_t *e = loom_fleet_entry(f, (int)k);
        const loom_devclass_t *d = loom_catalog_class(cat, e->cls);
        loom_sim_device_t *dv = &res->dev[k];
        dv->name = d->name;
        dv->count = e->count;
        dv->owned = e->owned;
        double busy = S.pools[2 * k].busy + S.pools[2 * k + 1].busy; /* device-seconds */
        dv->utilisation = busy / (e->count * T);
        dv->ops = S.wait_n[k];
        dv->wait_ms = S.wait_n[k] ? S.wait_sum[k] / S.wait_n[k] * 1000.0 : 0;
        /* Rented: every device is paid for the whole time; owned: energy while busy. */
        res->usd += e->owned ? busy * d->power_w / 1000.0 * loom_catalog_energy_usd_per_kwh(cat) / 3600.0
                             : e->count * e->hourly_usd * T / 3600.0;
    }
    res->usd_per_1k_runs = total ? res->usd / total * 1000.0 : 0;
done:
    free(all);
    for (size_t i = 0; ws && i < nw; i++) {
        free(ws[i].lat);
        run_free_all(ws[i].free_list);
    }
    free(ws);
    for (size_t k = 0; S.pools && k < 2 * K; k++)
        free(S.pools[k].q);
    free(S.pools);
    free(S.wait_sum);
    free(S.wait_n);
    free(S.heap.h);
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc < 0) {
        loom_sim_result_destroy(&res);
        return rc;
    }
    res->wall_ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    *out = res;
    return 0;
}

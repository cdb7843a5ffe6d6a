/* cost.c — see cost.h. The table is dense: n nodes x K devices. Edge
 * figures are computed on demand from per-device-pair link tables. */
#include "planner/cost.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A host runs many external ops (tool calls waiting on I/O) at once; each
 * holds this fraction of the device. */
#define HOST_SLOTS 64.0
/* Default spread of device op latency when not measured. */
#define DEFAULT_CV 0.05
/* Fraction of device memory usable for weights + KV. */
#define MEM_USABLE 0.9

struct loom_cost {
    const loom_graph_t *g;
    const loom_fleet_t *f;
    size_t n, K;
    double *ms, *sd, *usd, *busy;
    unsigned char *src, *bound;
    /* K x K pair tables */
    double *bw_Bps, *lat_ms, *usd_gb, *rate_s;
    /* profile transfer overrides: [kind][ka][kb], latency < 0 = none */
    double *px_ms, *px_usd;
    unsigned char *endpoint; /* per device: a rented model API */
};

static const char *const bound_names[] = {"compute", "memory", "fixed", "profile", "no-fit", "per-token"};
enum { B_COMPUTE, B_MEMORY, B_FIXED, B_PROFILE, B_NOFIT, B_TOKENS };

/* Can node nd run on class d at all, as far as where its model lives goes?
 * Endpoint classes run only llm/embed ops of models they serve; owned
 * devices do not run models that exist only behind an endpoint. */
static int model_runs_on(const loom_gnode_t *nd, const loom_devclass_t *d)
{
    int llm = nd->op == LOOM_GOP_PREFILL || nd->op == LOOM_GOP_DECODE || nd->op == LOOM_GOP_EMBED;
    if (loom_devclass_is_endpoint(d))
        return llm && (nd->model_endpoint || loom_devclass_serves(d, nd->model));
    return !llm || nd->model_local || !nd->model_endpoint;
}

/* A rented model API: time from its latency profile, price per token. */
static void per_token(const loom_gnode_t *nd, const loom_devclass_t *d, double *ms, double *busy_s,
                      double *usd)
{
    double t = nd->tokens > 0 ? nd->tokens : 1;
    if (nd->op == LOOM_GOP_DECODE) {
        *ms = t / d->tok_per_s * 1000.0;
        *usd = t * d->usd_per_mtok_out / 1e6;
    } else { /* prefill, embed: the first token's wait, then the prompt's rate */
        *ms = d->ttft_ms + t / d->prefill_tok_per_s * 1000.0;
        *usd = t * d->usd_per_mtok_in / 1e6;
    }
    *ms += nd->fixed_ms;
    *busy_s = *ms / 1000.0;
}

static double batch_for(const loom_gnode_t *nd, double B)
{
    /* Decode steps and embeddings are batched across concurrent requests;
     * prefill is compute-bound and is run one request at a time. */
    return (nd->op == LOOM_GOP_DECODE || nd->op == LOOM_GOP_EMBED) ? B : 1;
}

static void analytic(const loom_gnode_t *nd, const loom_devclass_t *d, double rate_s, double B,
                     double *ms, double *busy_s, int *bound)
{
    if (loom_gop_is_external(nd->op)) {
        *ms = nd->fixed_ms;
        *busy_s = nd->fixed_ms / 1000.0 / HOST_SLOTS;
        *bound = B_FIXED;
        (void)rate_s;
        return;
    }
    /* Unsupported precision: fall back to the next wider one the device has. */
    int p = nd->prec;
    while (p > 0 && d->tflops[p] <= 0)
        p = p == LOOM_PREC_INT8 ? LOOM_PREC_FP16 : p - 1;
    double tf = d->tflops[p];
    if (tf <= 0) /* no path at all (e.g. fp32 on an NPU): emulate at 1/4 of its best rate */
        for (int q = 0; q < LOOM_PREC__COUNT; q++)
            if (d->tflops[q] / 4 > tf)
                tf = d->tflops[q] / 4;
    double peak = tf * 1e12 * d->eff_compute;
    double bw = d->mem_bw_gbs * 1e9 * d->eff_memory;
    double b = batch_for(nd, B);
    double tc = peak > 0 ? b * nd->flops / peak : (nd->flops > 0 ? INFINITY : 0);
    double priv = nd->bytes > nd->shared_bytes ? nd->bytes - nd->shared_bytes : 0;
    double tm = (nd->shared_bytes + b * priv) / bw;
    double launches = nd->op == LOOM_GOP_DECODE && nd->tokens > 1 ? nd->tokens : 1;
    double t = (tc > tm ? tc : tm) + launches * d->launch_us * 1e-6;
    *bound = tc > tm ? B_COMPUTE : B_MEMORY;
    *ms = t * 1000.0 + nd->fixed_ms;
    *busy_s = t / b;
}

loom_cost_t *loom_cost_new(const loom_graph_t *g, const loom_fleet_t *f, const loom_profile_t *prof,
                           loom_err_t *err)
{
    loom_cost_t *c = calloc(1, sizeof *c);
    if (!c) {
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        return NULL;
    }
    c->g = g;
    c->f = f;
    c->n = loom_graph_nodes(g);
    c->K = loom_fleet_entries(f);
    size_t nk = c->n * c->K + 1, kk = c->K * c->K + 1;
    c->ms = malloc(nk * sizeof(double));
    c->sd = malloc(nk * sizeof(double));
    c->usd = malloc(nk * sizeof(double));
    c->busy = malloc(nk * sizeof(double));
    c->src = malloc(nk);
    c->bound = malloc(nk);
    c->bw_Bps = malloc(kk * sizeof(double));
    c->lat_ms = malloc(kk * sizeof(double));
    c->usd_gb = malloc(kk * sizeof(double));
    c->rate_s = malloc(kk * sizeof(double));
    c->px_ms = malloc(2 * kk * sizeof(double));
    c->px_usd = malloc(2 * kk * sizeof(double));
    c->endpoint = calloc(c->K + 1, 1);
    if (!c->endpoint || !c->ms || !c->sd || !c->usd || !c->busy || !c->src || !c->bound || !c->bw_Bps || !c->lat_ms ||
        !c->usd_gb || !c->rate_s || !c->px_ms || !c->px_usd) {
        loom_cost_destroy(&c);
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        return NULL;
    }
    if (c->K == 0) {
        loom_cost_destroy(&c);
        loom_err_set(err, LOOM_EINVAL, "the fleet has no devices");
        return NULL;
    }
    const loom_catalog_t *cat = loom_fleet_catalog(f);
    double B = loom_fleet_batch(f);
    for (size_t k = 0; k < c->K; k++) {
        const loom_fleet_entry_t *ek = loom_fleet_entry(f, (int)k);
        const loom_devclass_t *dk = loom_catalog_class(cat, ek->cls);
        const loom_link_t *lk = loom_catalog_link(cat, dk->link);
        c->endpoint[k] = (unsigned char)loom_devclass_is_endpoint(dk);
        for (size_t j = 0; j < c->K; j++) {
            const loom_fleet_entry_t *ej = loom_fleet_entry(f, (int)j);
            const loom_devclass_t *dj = loom_catalog_class(cat, ej->cls);
            const loom_link_t *lj = loom_catalog_link(cat, dj->link);
            double gk = lk ? lk->gbps : 10, gj = lj ? lj->gbps : 10;
            double ak = lk ? lk->latency_us : 50, aj = lj ? lj->latency_us : 50;
            double uk = lk ? lk->usd_per_gb : 0, uj = lj ? lj->usd_per_gb : 0;
            size_t x = k * c->K + j;
            c->bw_Bps[x] = (gk < gj ? gk : gj) * 1e9 / 8;
            c->lat_ms[x] = (ak > aj ? ak : aj) / 1000.0;
            c->usd_gb[x] = uk > uj ? uk : uj;
            c->rate_s[x] = loom_fleet_usd_per_s(f, (int)k) + loom_fleet_usd_per_s(f, (int)j);
            for (int kind = 0; kind < 2; kind++) {
                const loom_measure_t *m = loom_profile_transfer(prof, (loom_gedge_kind_t)kind, dk->name, dj->name);
                c->px_ms[kind * kk + x] = m && m->latency_ms >= 0 ? m->latency_ms : -1;
                c->px_usd[kind * kk + x] = m ? m->cost_usd : -1;
            }
        }
    }
    for (size_t i = 0; i < c->n; i++) {
        const loom_gnode_t *nd = loom_graph_node(g, (int)i);
        for (size_t k = 0; k < c->K; k++) {
            const loom_fleet_entry_t *ek = loom_fleet_entry(f, (int)k);
            const loom_devclass_t *d = loom_catalog_class(cat, ek->cls);
            double rate = loom_fleet_usd_per_s(f, (int)k);
            size_t x = i * c->K + k;
            double ms, busy, usd = -1;
            int bound;
            if (c->endpoint[k]) {
                per_token(nd, d, &ms, &busy, &usd);
                bound = B_TOKENS;
            } else {
                analytic(nd, d, rate, B, &ms, &busy, &bound);
            }
            double cv = loom_gop_is_external(nd->op) ? nd->fixed_cv : DEFAULT_CV;
            c->src[x] = LOOM_COST_ROOFLINE;
            const loom_measure_t *m = loom_profile_op(prof, nd->op, d->name, nd->step);
            if (m && m->latency_ms >= 0) {
                double b = loom_gop_is_external(nd->op) ? HOST_SLOTS : batch_for(nd, B);
                ms = m->latency_ms;
                busy = ms / 1000.0 / b;
                usd = m->cost_usd;
                bound = B_PROFILE;
                c->src[x] = LOOM_COST_PROFILE;
            } else if (m && m->scale > 0) {
                ms *= m->scale;
                busy *= m->scale;
                usd = m->cost_usd;
                c->src[x] = LOOM_COST_PROFILE_SCALED;
            }
            if (m && m->cv >= 0)
                cv = m->cv;
            int fits = loom_gop_is_external(nd->op) || c->endpoint[k] || nd->mem_bytes <= d->mem_gb * 1e9 * MEM_USABLE;
            if (!model_runs_on(nd, d))
                fits = 0;
            if (nd->pinned_class >= 0 && nd->pinned_class != ek->cls)
                fits = 0;
            if (!fits || !isfinite(ms)) {
                ms = INFINITY;
                bound = B_NOFIT;
            }
            c->ms[x] = ms;
            c->sd[x] = isfinite(ms) ? ms * cv : 0;
            c->busy[x] = busy;
            c->usd[x] = isfinite(ms) ? (usd >= 0 ? usd : busy * rate) : INFINITY;
            c->bound[x] = (unsigned char)bound;
        }
    }
    return c;
}

void loom_cost_destroy(loom_cost_t **pc)
{
    if (!pc || !*pc)
        return;
    loom_cost_t *c = *pc;
    free(c->ms);
    free(c->sd);
    free(c->usd);
    free(c->busy);
    free(c->src);
    free(c->bound);
    free(c->bw_Bps);
    free(c->lat_ms);
    free(c->usd_gb);
    free(c->rate_s);
    free(c->px_ms);
    free(c->px_usd);
    free(c->endpoint);
    free(c);
    *pc = NULL;
}

size_t loom_cost_devices(const loom_cost_t *c) { return c->K; }
const loom_fleet_t *loom_cost_fleet(const loom_cost_t *c) { return c->f; }
const loom_graph_t *loom_cost_graph(const loom_cost_t *c) { return c->g; }

const char *loom_cost_device_name(const loom_cost_t *c, int k)
{
    const loom_fleet_entry_t *e = loom_fleet_entry(c->f, k);
    return e ? loom_catalog_class(loom_fleet_catalog(c->f), e->cls)->name : "?";
}

void loom_cost_forbid(loom_cost_t *c, int i, int k)
{
    if (i < 0 || (size_t)i >= c->n || k < 0 || (size_t)k >= c->K)
        return;
    size_t x = (size_t)i * c->K + k;
    c->ms[x] = INFINITY;
    c->usd[x] = INFINITY;
    c->sd[x] = 0;
    c->bound[x] = B_NOFIT;
}

void loom_cost_drop_estimates(loom_cost_t *c)
{
    for (size_t x = 0; x < c->n * c->K; x++)
        if (c->src[x] == LOOM_COST_ROOFLINE && (c->bound[x] == B_COMPUTE || c->bound[x] == B_MEMORY)) {
            c->ms[x] = 0;
            c->sd[x] = 0;
        }
}

int loom_cost_fits(const loom_cost_t *c, int i, int k) { return isfinite(c->ms[(size_t)i * c->K + k]); }
double loom_cost_ms(const loom_cost_t *c, int i, int k) { return c->ms[(size_t)i * c->K + k]; }
double loom_cost_sd_ms(const loom_cost_t *c, int i, int k) { return c->sd[(size_t)i * c->K + k]; }
double loom_cost_usd(const loom_cost_t *c, int i, int k) { return c->usd[(size_t)i * c->K + k]; }
double loom_cost_busy_s(const loom_cost_t *c, int i, int k) { return c->busy[(size_t)i * c->K + k]; }
loom_cost_src_t loom_cost_source(const loom_cost_t *c, int i, int k)
{
    return (loom_cost_src_t)c->src[(size_t)i * c->K + k];
}
const char *loom_cost_bound(const loom_cost_t *c, int i, int k)
{
    return bound_names[c->bound[(size_t)i * c->K + k]];
}

double loom_cost_xfer_ms(const loom_cost_t *c, int edge, int ka, int kb)
{
    if (ka == kb)
        return 0;
    const loom_gedge_t *e = loom_graph_edge(c->g, edge);
    if (e->kind == LOOM_GEDGE_KV && (c->endpoint[ka] || c->endpoint[kb]))
        return INFINITY; /* an API keeps its KV cache to itself */
    size_t x = (size_t)ka * c->K + kb, kk = c->K * c->K + 1;
    double p = c->px_ms[e->kind * kk + x];
    if (p >= 0)
        return p;
    return e->bytes / c->bw_Bps[x] * 1000.0 + c->lat_ms[x];
}

double loom_cost_xfer_usd(const loom_cost_t *c, int edge, int ka, int kb)
{
    if (ka == kb)
        return 0;
    const loom_gedge_t *e = loom_graph_edge(c->g, edge);
    if (e->kind == LOOM_GEDGE_KV && (c->endpoint[ka] || c->endpoint[kb]))
        return INFINITY;
    size_t x = (size_t)ka * c->K + kb, kk = c->K * c->K + 1;
    double p = c->px_usd[e->kind * kk + x];
    if (p >= 0)
        return p;
    double t_s = loom_cost_xfer_ms(c, edge, ka, kb) / 1000.0;
    /* Both ends hold the transfer; batched LLM devices share that time. */
    return e->bytes / 1e9 * c->usd_gb[x] + t_s * c->rate_s[x] / loom_fleet_batch(c->f);
}

/* ---- prefix reuse --------------------------------------------------------- */

const char *loom_prefix_choice_name(loom_prefix_choice_t x)
{
    return x == LOOM_PREFIX_THERE ? "run where the prefix lives" : x == LOOM_PREFIX_MOVE ? "move the KV prefix"
                                                                                         : "recompute the prefill";
}

void loom_cost_prefix(const loom_cost_t *c, int prefill, int decode, double prompt, double prefix, int h, int k,
                      double wait_h, double wait_k, loom_prefix_price_t *out)
{
    const loom_graph_t *g = loom_cost_graph(c);
    double planned = loom_graph_node(g, prefill)->tokens;
    if (planned <= 0)
        planned = 1;
    if (prefix > prompt)
        prefix = prompt;
    double rest = prompt - prefix;
    double pf_h = loom_cost_ms(c, prefill, h) / planned, pf_k = loom_cost_ms(c, prefill, k) / planned;
    double dec_h = decode >= 0 ? loom_cost_ms(c, decode, h) : 0, dec_k = decode >= 0 ? loom_cost_ms(c, decode, k) : 0;
    double xfer = 0; /* the KV edge prefill -> decode carries the planned prompt's KV */
    size_t ne = 0;
    const int *oe = loom_graph_out(g, prefill, &ne);
    for (size_t i = 0; oe && i < ne; i++)
        if (loom_graph_edge(g, oe[i])->kind == LOOM_GEDGE_KV)
            xfer = loom_cost_xfer_ms(c, oe[i], h, k) / planned;
    out->there_ms = wait_h + pf_h * rest + dec_h;
    out->recompute_ms = wait_k + pf_k * prompt + dec_k;
    out->move_ms = h == k ? out->there_ms : wait_k + xfer * prefix + pf_k * rest + dec_k;
    if (h == k)
        out->best = out->there_ms <= out->recompute_ms ? LOOM_PREFIX_THERE : LOOM_PREFIX_RECOMPUTE;
    else
        out->best = out->move_ms < out->recompute_ms ? LOOM_PREFIX_MOVE : LOOM_PREFIX_RECOMPUTE;
}

/* tco.c — see tco.h. Candidate placements per workflow, then one GLPK MIP. */
#include "planner/tco.h"

#include <glpk.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "planner/cost.h"

typedef struct {
    int w;            /* workflow */
    int set[2], nset; /* classes it may use (nset 0 = all) */
    double *b;        /* busy device-seconds per run, per catalog class */
    double usd_run;
} cand_t;

static double wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void loom_tco_result_destroy(loom_tco_result_t **pr)
{
    if (!pr || !*pr)
        return;
    loom_tco_result_t *r = *pr;
    for (size_t i = 0; r->mix && i < r->nworkflows; i++)
        free(r->mix[i]);
    free(r->mix);
    free(r->classes);
    free(r);
    *pr = NULL;
}

static int owned_count(const loom_fleet_t *owned, int cls)
{
    int n = 0;
    for (size_t i = 0; owned && i < loom_fleet_entries(owned); i++) {
        const loom_fleet_entry_t *e = loom_fleet_entry(owned, (int)i);
        if (e->cls == cls && e->owned)
            n += e->count;
    }
    return n;
}

/* Plans workflow w on the classes in set (all when nset == 0). Returns 1
 * and fills c->b when the plan meets the SLA. */
static int plan_candidate(const loom_catalog_t *cat, const loom_fleet_t *owned, const loom_tco_workflow_t *w,
                          const int *set, int nset, double batch, cand_t *c, loom_err_t *err)
{
    size_t C = loom_catalog_classes(cat);
    loom_fleet_t *f = loom_fleet_new(cat);
    if (!f)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    loom_fleet_set_batch(f, batch);
    for (size_t j = 0; j < C; j++) {
        int in = nset == 0;
        for (int s = 0; s < nset; s++)
            in |= set[s] == (int)j;
        if (in) {
            int o = owned_count(owned, (int)j);
            loom_fleet_add(f, (int)j, o > 0 ? o : 1, o > 0, -1, NULL);
        }
    }
    int ok = 0;
    loom_cost_t *cost = loom_cost_new(w->g, f, NULL, err);
    loom_plan_t *p = NULL;
    loom_place_opts_t o = w->opts;
    if (o.mc_samples == 0)
        o.mc_samples = 500; /* hundreds of candidates: a coarser calibration */
    if (cost && loom_place(w->g, cost, &o, &p, NULL) == 0 && loom_plan_feasible(p) &&
        !(o.sla_ms > 0 && loom_plan_mc_target_ms(p) > o.sla_ms)) {
        for (size_t v = 0; v < loom_graph_nodes(w->g); v++) {
            const loom_gnode_t *nd = loom_graph_node(w->g, (int)v);
            int k = loom_plan_device(p, (int)v);
            c->b[loom_fleet_entry(f, k)->cls] += nd->prob * nd->iters_mean * loom_cost_busy_s(cost, (int)v, k);
        }
        c->usd_run = loom_plan_cost_usd(p);
        ok = 1;
    }
    loom_plan_destroy(&p);
    loom_cost_destroy(&cost);
    loom_fleet_destroy(&f);
    return ok;
}

int loom_tco_solve(const loom_catalog_t *cat, const loom_fleet_t *owned, const loom_tco_workflow_t *w, size_t nw,
                   const loom_tco_opts_t *opts, loom_tco_result_t **out, loom_err_t *err)
{
    double t0 = wall_ms();
    *out = NULL;
    size_t C = loom_catalog_classes(cat);
    double U = opts && opts->utilization > 0 ? opts->utilization : 0.7;
    int pairs = !(opts && opts->no_pairs);
    double batch = owned ? loom_fleet_batch(owned) : 8;
    loom_tco_result_t *r = calloc(1, sizeof *r);
    size_t maxc = nw * (C + 1 + (pairs ? C * (C - 1) / 2 : 0));
    cand_t *cand = calloc(maxc + 1, sizeof *cand);
    double *bpool = calloc((maxc + 1) * C, sizeof(double));
    int *ncand_w = calloc(nw + 1, sizeof(int));
    glp_prob *lp = NULL;
    int rc = 0;
    if (!r || !cand || !bpool || !ncand_w) {
        rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto fail;
    }
    r->nclasses = C;
    r->nworkflows = nw;
    r->classes = calloc(C, sizeof *r->classes);
    r->mix = calloc(nw + 1, sizeof(char *));
    if (!r->classes || !r->mix) {
        rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto fail;
    }
    size_t nc = 0;
    for (size_t wi = 0; wi < nw; wi++) {
        r->runs_per_s += w[wi].rate_per_s;
        /* singles, all, pairs */
        size_t first = nc;
        for (size_t j = 0; j <= C; j++) {
            cand_t *c = &cand[nc];
            c->w = (int)wi;
            c->b = bpool + nc * C;
            c->nset = j < C ? 1 : 0;
            c->set[0] = (int)j;
            r->candidates++;
            if (plan_candidate(cat, owned, &w[wi], c->set, c->nset, batch, c, err) > 0)
                nc++;
            else
                memset(c->b, 0, C * sizeof(double));
        }
        for (size_t i = 0; pairs && i < C; i++)
            for (size_t j = i + 1; j < C; j++) {
                cand_t *c = &cand[nc];
                c->w = (int)wi;
                c->b = bpool + nc * C;
                c->nset = 2;
                c->set[0] = (int)i;
                c->set[1] = (int)j;
                r->candidates++;
                if (plan_candidate(cat, owned, &w[wi], c->set, 2, batch, c, err) <= 0) {
                    memset(c->b, 0, C * sizeof(double));
                    continue;
                }
                /* drop duplicates of an earlier candidate (e.g. a pair that uses one class) */
                int dup = 0;
                for (size_t q = first; q < nc && !dup; q++)
                    dup = memcmp(cand[q].b, c->b, C * sizeof(double)) == 0;
                if (dup)
                    memset(c->b, 0, C * sizeof(double));
                else
                    nc++;
            }
        ncand_w[wi] = (int)(nc - first);
        if (ncand_w[wi] == 0 && !r->infeasible_why[0])
            snprintf(r->infeasible_why, sizeof r->infeasible_why,
                     "workflow %s misses its SLA on every device class and pair", w[wi].name);
    }
    /* Homogeneous fleets. */
    const double energy = loom_catalog_energy_usd_per_kwh(cat);
    for (size_t j = 0; j < C; j++) {
        loom_tco_class_t *cl = &r->classes[j];
        const loom_devclass_t *d = loom_catalog_class(cat, (int)j);
        cl->name = d->name;
        cl->owned = owned_count(owned, (int)j);
        double busy = 0;
        int ok = 1;
        for (size_t wi = 0; wi < nw && ok; wi++) {
            int found = 0;
            for (size_t q = 0; q < nc; q++)
                if (cand[q].w == (int)wi && cand[q].nset == 1 && cand[q].set[0] == (int)j) {
                    busy += w[wi].rate_per_s * cand[q].b[j];
                    found = 1;
                    break;
                }
            ok = found;
        }
        cl->homo_ok = ok;
        if (ok) {
            int cnt = (int)ceil(busy / U - 1e-9);
            if (cnt < 1)
                cnt = 1;
            cl->homo_count = cnt;
            int rent = cnt > cl->owned ? cnt - cl->owned : 0;
            /* rented devices take load first (already paid for); owned ones
             * pay energy only for what is left */
            double owned_busy = busy - U * rent > 0 ? busy - U * rent : 0;
            cl->homo_usd_per_hour = rent * d->hourly_usd + owned_busy * d->power_w / 1000.0 * energy;
        }
    }
    if (r->infeasible_why[0])
        goto done;
    /* MIP: columns r_j (1..C), y_q (C+1..C+nc), then o_j (C+nc+1..): the
     * busy device-seconds per second served by owned devices of class j,
     * 0 <= o_j <= U x owned_j. Rented devices cost their hourly price
     * (energy included, as in the cloud price and in plan and simulate);
     * owned ones cost only the energy of o_j. */
    double tilp = wall_ms();
    lp = glp_create_prob();
    glp_set_obj_dir(lp, GLP_MIN);
    glp_add_cols(lp, (int)(C + nc + C));
    for (size_t j = 0; j < C; j++) {
        const loom_devclass_t *d = loom_catalog_class(cat, (int)j);
        glp_set_col_kind(lp, (int)j + 1, GLP_IV);
        glp_set_col_bnds(lp, (int)j + 1, GLP_LO, 0, 0);
        glp_set_obj_coef(lp, (int)j + 1, d->hourly_usd);
        int oc = (int)(C + nc + j) + 1;
        double cap = U * r->classes[j].owned;
        glp_set_col_bnds(lp, oc, cap > 0 ? GLP_DB : GLP_FX, 0, cap);
        glp_set_obj_coef(lp, oc, d->power_w / 1000.0 * energy);
    }
    for (size_t q = 0; q < nc; q++)
        glp_set_col_bnds(lp, (int)(C + q) + 1, GLP_DB, 0, 1);
    glp_add_rows(lp, (int)(nw + C));
    size_t nz = nc + C * (nc + 2) + 1;
    int *ia = malloc((nz + 1) * sizeof(int)), *ja = malloc((nz + 1) * sizeof(int));
    double *ar = malloc((nz + 1) * sizeof(double));
    if (!ia || !ja || !ar) {
        free(ia);
        free(ja);
        free(ar);
        rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto fail;
    }
    int k = 0;
    for (size_t wi = 0; wi < nw; wi++)
        glp_set_row_bnds(lp, (int)wi + 1, GLP_FX, 1, 1);
    for (size_t q = 0; q < nc; q++) {
        ++k;
        ia[k] = cand[q].w + 1;
        ja[k] = (int)(C + q) + 1;
        ar[k] = 1;
    }
    for (size_t j = 0; j < C; j++) {
        int row = (int)(nw + j) + 1;
        /* busy_j - o_j - U x r_j <= 0 */
        glp_set_row_bnds(lp, row, GLP_UP, 0, 0);
        ++k;
        ia[k] = row;
        ja[k] = (int)j + 1;
        ar[k] = -U;
        ++k;
        ia[k] = row;
        ja[k] = (int)(C + nc + j) + 1;
        ar[k] = -1;
        for (size_t q = 0; q < nc; q++)
            if (cand[q].b[j] > 0) {
                ++k;
                ia[k] = row;
                ja[k] = (int)(C + q) + 1;
                ar[k] = w[cand[q].w].rate_per_s * cand[q].b[j];
            }
    }
    glp_load_matrix(lp, k, ia, ja, ar);
    free(ia);
    free(ja);
    free(ar);
    glp_iocp parm;
    glp_init_iocp(&parm);
    parm.presolve = GLP_ON;
    parm.msg_lev = GLP_MSG_OFF;
    parm.tm_lim = 30000;
    int grc = glp_intopt(lp, &parm);
    int st = glp_mip_status(lp);
    r->ilp_ms = wall_ms() - tilp;
    if (grc != 0 || (st != GLP_OPT && st != GLP_FEAS)) {
        snprintf(r->infeasible_why, sizeof r->infeasible_why, "GLPK found no integer solution (rc %d, status %d)",
                 grc, st);
        goto done;
    }
    r->feasible = 1;
    for (size_t j = 0; j < C; j++) {
        loom_tco_class_t *cl = &r->classes[j];
        const loom_devclass_t *d = loom_catalog_class(cat, (int)j);
        cl->rented = (int)lround(glp_mip_col_val(lp, (int)j + 1));
        for (size_t q = 0; q < nc; q++)
            cl->busy += w[cand[q].w].rate_per_s * cand[q].b[j] * glp_mip_col_val(lp, (int)(C + q) + 1);
        cl->usd_per_hour = cl->rented * d->hourly_usd +
                           glp_mip_col_val(lp, (int)(C + nc + j) + 1) * d->power_w / 1000.0 * energy;
        r->usd_per_hour += cl->usd_per_hour;
    }
    r->usd_per_1k_runs = r->runs_per_s > 0 ? r->usd_per_hour / (r->runs_per_s * 3.6) : 0;
    for (size_t wi = 0; wi < nw; wi++) {
        char buf[1024] = "";
        size_t len = 0;
        for (size_t q = 0; q < nc; q++) {
            double y = glp_mip_col_val(lp, (int)(C + q) + 1);
            if (cand[q].w != (int)wi || y < 0.005)
                continue;
            char cls[256] = "";
            for (size_t j = 0; j < C; j++)
                if (cand[q].b[j] > 0)
                    snprintf(cls + strlen(cls), sizeof cls - strlen(cls), "%s%s", cls[0] ? "+" : "",
                             loom_catalog_class(cat, (int)j)->name);
            len += (size_t)snprintf(buf + len, len < sizeof buf ? sizeof buf - len : 0, "%s%s %.0f%%",
                                    len ? ", " : "", cls, y * 100);
            if (len >= sizeof buf)
                len = sizeof buf - 1;
        }
        r->mix[wi] = strdup(buf);
    }
done:
    r->solve_ms = wall_ms() - t0;
    if (lp)
        glp_delete_prob(lp);
    free(cand);
    free(bpool);
    free(ncand_w);
    *out = r;
    return 0;
fail:
    if (lp)
        glp_delete_prob(lp);
    free(cand);
    free(bpool);
    free(ncand_w);
    loom_tco_result_destroy(&r);
    return rc;
}

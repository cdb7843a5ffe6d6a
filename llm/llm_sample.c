/* llm_sample.c — sort candidates once, then temperature, top-k, top-p and a
 * splitmix64 draw: the same seed gives the same tokens on every backend. */
#include "llm/llm_sample.h"

#include <math.h>
#include <stdlib.h>

typedef struct cand { float logit; int32_t id; } cand_t;

struct loom_llm_sampler {
    loom_llm_sampling_t p;
    int n;
    uint64_t state;
    cand_t *c;
};

loom_llm_sampler_t *loom_llm_sampler_new(const loom_llm_sampling_t *p, int n_vocab) {
    loom_llm_sampler_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->p = *p;
    s->n = n_vocab;
    s->state = p->seed ^ 0x9e3779b97f4a7c15ull;
    if (!(s->c = malloc((size_t)n_vocab * sizeof *s->c))) { free(s); return NULL; }
    return s;
}

void loom_llm_sampler_destroy(loom_llm_sampler_t **ps) {
    if (!ps || !*ps) return;
    free((*ps)->c);
    free(*ps);
    *ps = NULL;
}

int32_t loom_llm_argmax(const float *l, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[best]) best = i;
    return best;
}

static uint64_t next(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int cmp(const void *a, const void *b) {
    const cand_t *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

int32_t loom_llm_sample(loom_llm_sampler_t *s, const float *logits) {
    if (s->p.temperature <= 0 || s->p.top_k == 1) return loom_llm_argmax(logits, s->n);
    for (int i = 0; i < s->n; i++) { s->c[i].logit = logits[i]; s->c[i].id = i; }
    qsort(s->c, (size_t)s->n, sizeof *s->c, cmp);
    int k = s->p.top_k > 0 && s->p.top_k < s->n ? s->p.top_k : s->n;
    double sum = 0, mx = s->c[0].logit;
    double *pr = malloc((size_t)k * sizeof *pr);
    if (!pr) return s->c[0].id;
    for (int i = 0; i < k; i++) { pr[i] = exp((s->c[i].logit - mx) / s->p.temperature); sum += pr[i]; }
    if (s->p.top_p > 0 && s->p.top_p < 1) {
        double acc = 0;
        for (int i = 0; i < k; i++) {
            acc += pr[i] / sum;
            if (acc >= s->p.top_p) { k = i + 1; break; }
        }
        sum = 0;
        for (int i = 0; i < k; i++) sum += pr[i];
    }
    double r = (double)(next(&s->state) >> 11) / (double)(1ull << 53) * sum;
    int32_t id = s->c[k - 1].id;
    for (int i = 0; i < k; i++) {
        r -= pr[i];
        if (r < 0) { id = s->c[i].id; break; }
    }
    free(pr);
    return id;
}

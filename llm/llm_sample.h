/* llm_sample.h — picks the next token from logits: greedy, or temperature
 * with top-k and top-p (nucleus) filtering, reproducible from a seed. */
#ifndef LOOM_LLM_SAMPLE_H
#define LOOM_LLM_SAMPLE_H

#include <stdint.h>

typedef struct loom_llm_sampling {
    float temperature; /* <= 0: greedy (argmax, lowest id on ties) */
    int top_k;         /* <= 0: no limit */
    float top_p;       /* >= 1 or <= 0: no limit */
    uint64_t seed;
} loom_llm_sampling_t;

typedef struct loom_llm_sampler loom_llm_sampler_t;

/* NULL on OOM. */
loom_llm_sampler_t *loom_llm_sampler_new(const loom_llm_sampling_t *p, int n_vocab);
void loom_llm_sampler_destroy(loom_llm_sampler_t **ps);
int32_t loom_llm_sample(loom_llm_sampler_t *s, const float *logits);
int32_t loom_llm_argmax(const float *logits, int n);

#endif

/* llm_grammar.h — grammar-constrained decoding: `format: json` and
 * `schema:` (a JSON Schema subset: object, properties, required, array,
 * items, string, number, integer, boolean, enum/const, null) enforced
 * while sampling, so the model's output is always a valid JSON value of
 * the schema.
 *
 * The schema compiles to a pushdown automaton over characters (a stack of
 * frames: object, array, string, number, literal). At each step the
 * tokens whose first byte the automaton refuses are masked (one pass over
 * the vocabulary grouped by first byte), then a token is sampled as usual
 * and kept only when its bytes keep the output a valid prefix; a rejected
 * token is masked and the sampler asked again; after a few rejections
 * every remaining token is checked once and the sample is drawn from the
 * allowed ones. An end-of-generation token is allowed only when the value
 * is complete.
 *
 * Output budget: strings default to at most 48 characters (maxLength
 * overrides), arrays to 8 items (maxItems), free-form JSON to depth 6.
 * A token is allowed only when the characters still needed to complete
 * the value after it fit in the tokens left after it, so the value is
 * complete by max_tokens (or the context's end). When that cannot hold
 * (max_tokens below the schema's shortest value, or a vocabulary without
 * a needed character) generation ends early and
 * loom_llm_grammar_failure() says why: callers fail the request rather
 * than return text that is not JSON. */
#ifndef LOOM_WORKERS_LLM_GRAMMAR_H
#define LOOM_WORKERS_LLM_GRAMMAR_H

#include <jansson.h>

#include "common/err.h"
#include "llm/llm_model.h"
#include "llm/llm_sample.h"

typedef struct loom_llm_grammar loom_llm_grammar_t;

/* schema NULL: any JSON value (format: json). Unsupported keywords are
 * ignored; a schema that admits no value (an empty enum) is LOOM_EINVAL.
 * The model is borrowed for the grammar's life. */
int loom_llm_grammar_new(const loom_llm_model_t *m, const json_t *schema, loom_llm_grammar_t **out,
                         loom_err_t *e);
void loom_llm_grammar_destroy(loom_llm_grammar_t **pg);

/* Picks the next token (logits may be modified) among those that keep the
 * output a valid prefix, and advances the automaton past it. Returns an
 * end-of-generation token once the value is complete. tokens_left counts
 * this one. Matches loom_llm_constraint_t's sample. */
int32_t loom_llm_grammar_sample(void *g, loom_llm_sampler_t *s, float *logits, int tokens_left);

/* 1 when the text so far is a complete value. */
int loom_llm_grammar_complete(const loom_llm_grammar_t *g);
/* NULL when the text so far is a complete value, else why not (static or
 * the grammar's own text, valid for its life). */
const char *loom_llm_grammar_failure(const loom_llm_grammar_t *g);
/* Feeds text (bytes) as if generated; 0 or -1 when it leaves the grammar
 * (tests). */
int loom_llm_grammar_feed(loom_llm_grammar_t *g, const char *text, size_t n);

#endif

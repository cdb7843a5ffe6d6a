/* llm_prefix.h — prefix reuse (issue 15): a bounded cache of KV prefixes per
 * model, so an LLM call whose prompt starts like an earlier one (the same
 * system prompt, retrieved context, the previous turns of a conversation)
 * prefills only what is new.
 *
 * After a generation the engine saves the KV rows of prompt + generated
 * tokens; the next generation on the same model restores the rows of the
 * longest common token prefix with any entry into its backend context
 * (kv_write) and evaluates only the rest. An entry that is a prefix of a new
 * one is replaced by it. Bounded in bytes (K/V f32), least recently used
 * first out. Thread-safe. Works on every backend through the backend's
 * kv_read / kv_write. */
#ifndef LOOM_LLM_PREFIX_H
#define LOOM_LLM_PREFIX_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "llm/llm_model.h"

struct loom_llm_backend;
typedef struct loom_llm_prefix_cache loom_llm_prefix_cache_t;

/* max_bytes: the K/V bytes kept (0: nothing is kept). */
loom_llm_prefix_cache_t *loom_llm_prefix_cache_new(size_t max_bytes);
void loom_llm_prefix_cache_destroy(loom_llm_prefix_cache_t **pc);

/* Writes the cached rows of the longest common prefix of prompt[0..n) (at
 * most n - 1 tokens: the last one is evaluated for its logits) into b's
 * context; *reused = that length (0 when nothing matched). */
int loom_llm_prefix_restore(loom_llm_prefix_cache_t *c, const loom_llm_model_t *m, struct loom_llm_backend *b,
                            const int32_t *prompt, size_t n, size_t *reused, loom_err_t *e);

/* Saves rows [0, n) of b's context as the KV of tokens[0..n). */
int loom_llm_prefix_save(loom_llm_prefix_cache_t *c, const loom_llm_model_t *m, struct loom_llm_backend *b,
                         const int32_t *tokens, size_t n, loom_err_t *e);

/* Names the entry the last save made (the most recent, if of model m and
 * not named yet) with the prefix keys of its canonical text
 * (protocol/prefix_key.h: the call's input and answer; text_len bytes), so
 * the worker can tell loomd what it holds. 0 or LOOM_ENOMEM. */
int loom_llm_prefix_tag(loom_llm_prefix_cache_t *c, const loom_llm_model_t *m, const uint64_t *keys, size_t n,
                        size_t text_len);
/* The keys of the named entries, most recently used entry first (each
 * entry's longest key first), with about how many tokens of KV each
 * covers; at most max. Returns how many. */
size_t loom_llm_prefix_cache_keys(loom_llm_prefix_cache_t *c, uint64_t *keys, uint32_t *tokens, size_t max);

/* Entries and K/V bytes held (tests, logs). */
size_t loom_llm_prefix_cache_entries(loom_llm_prefix_cache_t *c);
size_t loom_llm_prefix_cache_bytes(loom_llm_prefix_cache_t *c);

#endif

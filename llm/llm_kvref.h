/* llm_kvref.h — KV caches by reference: the prefill worker publishes the
 * serialised cache in its object store (workers/common/objstore.h) and
 * returns a small reference; the decode worker fetches it directly from the
 * producer (objfetch.h: same-host shared memory or chunked ZeroMQ, XXH3-128
 * verified) and widens it to its in-memory layout. loomd and the store only
 * ever see the reference.
 *
 * The reference carries the dtype and layout of the bytes (layout
 * "loom-kv-v1": per layer K then V, tokens x kv_heads*head_dim, RoPE applied;
 * dtype f32 or f16), so a consumer whose layout differs converts on receipt
 * (loom_kvcache_parse widens f16 to f32).
 *
 * Layer-wise streaming (issue 15, item 2): loom_llm_kv_stream_open
 * publishes a streamed object (objstore.h) before the prefill runs and
 * loom_llm_prefill_stream writes each layer's rows of each batch into it as
 * soon as they are computed, so a consumer that holds the reference fetches
 * while the producer computes. Layout "loom-kv-stream-v1", one segment
 * (own XXH3-128) each:
 *   0                 the kvcache.h header (rows = tokens per batch, S) and
 *                     the prompt's token ids (i32)
 *   1 + b*L + l       batch b, layer l: K rows [b*S, b*S+T_b) then V rows,
 *                     in the dtype (f32/f16/q8_0), positions x KV width
 *   1 + B*L           the last token's logits (f32): the stream is complete
 * loom_llm_kv_fetch takes either layout. */
#ifndef LOOM_LLM_KVREF_H
#define LOOM_LLM_KVREF_H

#include <jansson.h>

#include "common/err.h"
#include "llm/kvcache.h"
#include "llm/llm_engine.h"
#include "workers/common/objfetch.h"

#define LOOM_KV_LAYOUT "loom-kv-v1"
#define LOOM_KV_STREAM_LAYOUT "loom-kv-stream-v1"

/* Serialises kv with K/V in dtype (LOOM_KV_F32/F16), stores it and returns
 * {"$object": {...}} in *ref (caller owns), held for run (objstore.h; NULL:
 * for none). worker may be NULL. */
int loom_llm_kv_publish(const loom_kvcache_t *kv, int dtype, const char *worker, const char *run, json_t **ref,
                        loom_err_t *e);

/* Opens the stream of a prompt of n tokens of model m in dtype, batches of
 * `rows` tokens, held for run (objstore.h; NULL: none), and returns its
 * reference in *ref (caller owns) to hand out at once; sink (filled here)
 * goes to loom_llm_prefill_stream. */
typedef struct loom_llm_kv_stream loom_llm_kv_stream_t;
int loom_llm_kv_stream_open(const loom_llm_model_t *m, const int32_t *prompt, size_t n, int dtype, int rows,
                            const char *worker, const char *run, loom_llm_kv_stream_t **s, loom_llm_kv_sink_t *sink,
                            json_t **ref, loom_err_t *e);
/* ok: the prefill finished (every segment must be there); !ok: abandon it
 * (waiting consumers fail and fall back). Frees s. */
int loom_llm_kv_stream_close(loom_llm_kv_stream_t *s, int ok, loom_err_t *e);

/* Fetches and parses the cache ref names (opts NULL: defaults). stats may
 * be NULL. Any failure (producer gone, evicted, checksum, timeout, bad
 * object) is an error with the reason in e; the caller falls back. */
int loom_llm_kv_fetch(const json_t *ref, const loom_objfetch_opts_t *opts, loom_kvcache_t **kv,
                      loom_objfetch_stats_t *stats, loom_err_t *e);

#endif

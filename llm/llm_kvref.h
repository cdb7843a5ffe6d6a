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
 * (loom_kvcache_parse widens f16 to f32). */
#ifndef LOOM_LLM_KVREF_H
#define LOOM_LLM_KVREF_H

#include <jansson.h>

#include "common/err.h"
#include "llm/kvcache.h"
#include "workers/common/objfetch.h"

#define LOOM_KV_LAYOUT "loom-kv-v1"

/* Serialises kv with K/V in dtype (LOOM_KV_F32/F16), stores it and returns
 * {"$object": {...}} in *ref (caller owns), held for run (objstore.h; NULL:
 * for none). worker may be NULL. */
int loom_llm_kv_publish(const loom_kvcache_t *kv, int dtype, const char *worker, const char *run, json_t **ref,
                        loom_err_t *e);

/* Fetches and parses the cache ref names (opts NULL: defaults). stats may
 * be NULL. Any failure (producer gone, evicted, checksum, timeout, bad
 * object) is an error with the reason in e; the caller falls back. */
int loom_llm_kv_fetch(const json_t *ref, const loom_objfetch_opts_t *opts, loom_kvcache_t **kv,
                      loom_objfetch_stats_t *stats, loom_err_t *e);

#endif

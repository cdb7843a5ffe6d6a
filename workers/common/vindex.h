/* vindex.h — the vector index file that `loom index build` writes and
 * `vector.search` steps read (resources.indexes.<name>.path).
 *
 * Layout v1 (little-endian):
 *   0  "LOOMVIX\0"        8-byte magic
 *   8  u32 version (1)     12 u32 dtype (0 = f32)
 *  16  u32 dim             20 u32 flags (bit 0: vectors are L2-normalised)
 *  24  u64 count           32 u64 payload_bytes
 *  40  u8[32] model hash   (the embedding model's loom_gguf_model_hash)
 *  72  f32 vectors[count][dim]
 *      u64 payload_offsets[count + 1]   (into the payload area, ascending)
 *      u8  payload[payload_bytes]       (one UTF-8 JSON document per vector)
 * end  u8[32] SHA-256 of every byte before it
 * Opening validates everything (sizes, offsets, checksum) so a corrupt or
 * truncated file is a clear error, never a bad read. */
#ifndef LOOM_WORKERS_VINDEX_H
#define LOOM_WORKERS_VINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define LOOM_VINDEX_VERSION 1

typedef struct loom_vindex loom_vindex_t;

typedef struct loom_vindex_hit {
    uint64_t id;  /* row number */
    float score;  /* dot product = cosine for normalised vectors */
} loom_vindex_hit_t;

/* Writes a file atomically (tmp + rename). vectors: count x dim floats
 * (normalised by this call), payloads[i] of lens[i] bytes. */
int loom_vindex_write(const char *path, int dim, uint64_t count, const float *vectors, const char *const *payloads,
                      const size_t *lens, const uint8_t model_hash[32], loom_err_t *e);

/* Reads and validates path. *out is the caller's. */
int loom_vindex_open(const char *path, loom_vindex_t **out, loom_err_t *e);
/* Same over a buffer (copied). */
int loom_vindex_open_mem(const void *data, size_t n, const char *name, loom_vindex_t **out, loom_err_t *e);
void loom_vindex_destroy(loom_vindex_t **pv);

int loom_vindex_dim(const loom_vindex_t *v);
uint64_t loom_vindex_count(const loom_vindex_t *v);
const uint8_t *loom_vindex_model_hash(const loom_vindex_t *v);
/* Payload i (borrowed, not NUL-terminated). */
const char *loom_vindex_payload(const loom_vindex_t *v, uint64_t i, size_t *len);

/* Top k rows by dot product with query (dim floats; normalised first),
 * best first. hits must hold k entries; returns how many were written. */
int loom_vindex_search(const loom_vindex_t *v, const float *query, int dim, int k, loom_vindex_hit_t *hits,
                       loom_err_t *e);

#endif

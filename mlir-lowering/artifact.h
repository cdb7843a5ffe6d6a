/* artifact.h — compiled units, content-addressed: the key is the SHA-256 of
 * (format version, target, arch, pass pipeline, input IR), so the same
 * kernel compiled the same way is compiled once. Kept in memory and, when a
 * directory is given, on disk (<dir>/<hash>.art, written atomically), so a
 * process restart or another process finds them. Workers that receive an
 * artifact store it by the same hash (loom_artifact_put).
 *
 * Payloads: CPU and NPU — LLVM-dialect MLIR text, ready for the JIT (and an
 * object file on request); GPU — a loom_gpu_unit_t in its text form (PTX +
 * launch plan). Not thread-safe: one cache per thread or a lock around it. */
#ifndef LOOM_MLIR_ARTIFACT_H
#define LOOM_MLIR_ARTIFACT_H

#include "common/err.h"
#include "common/sha.h"
#include "mlir-lowering/codegen.h"
#include "mlir-lowering/kernels.h"

#include <stddef.h>

typedef struct {
    char hash[LOOM_SHA256_HEX_LEN];
    loom_target_kind_t target;
    char arch[16];            /* GPU: "sm_90"; else "" */
    loom_kernel_sig_t sig;    /* entry function and its buffers */
    const char *payload;      /* see above; NUL-terminated */
    size_t len;
} loom_artifact_t;

typedef struct loom_artifact_cache loom_artifact_cache_t;

/* m: the MLIR context used for compiling and JIT (borrowed; may be NULL for
 * a cache that only stores and serves artifacts). dir: on-disk cache
 * directory, created if missing; NULL = memory only. */
loom_artifact_cache_t *loom_artifact_cache_new(loom_mlir_t *m, const char *dir, loom_err_t *err);
void loom_artifact_cache_destroy(loom_artifact_cache_t **pc);

/* The content address of a compile (hex into out[65]). */
int loom_artifact_key(const char *src, size_t n, loom_target_kind_t t, const char *arch,
                      char out[LOOM_SHA256_HEX_LEN]);

/* Compiles src for target t (arch for GPU) unless the cache has it. *out is
 * borrowed until the cache is destroyed; *hit says where it came from
 * (0 compiled, 1 memory, 2 disk). Kernel errors are located in filename.
 * sig: the kernel's signature when the caller knows it (built-in kernels,
 * with input/output roles); NULL reads it from the IR (every argument is
 * then marked as an input the caller provides). */
int loom_artifact_compile(loom_artifact_cache_t *c, const char *src, size_t n, const char *filename,
                          loom_target_kind_t t, const char *arch, const loom_kernel_sig_t *sig,
                          const loom_artifact_t **out, int *hit, loom_err_t *err);

/* Looks an artifact up by hash (memory, then disk). LOOM_ENOTFOUND if absent. */
int loom_artifact_get(loom_artifact_cache_t *c, const char *hash, const loom_artifact_t **out,
                      loom_err_t *err);

/* Serialised form (header line + payload) for shipping to workers. */
int loom_artifact_encode(const loom_artifact_t *a, loom_buf_t *out);
/* Stores an encoded artifact received from elsewhere under its hash.
 * Malformed data is LOOM_EPARSE. */
int loom_artifact_put(loom_artifact_cache_t *c, const char *data, size_t n,
                      const loom_artifact_t **out, loom_err_t *err);

/* CPU/NPU artifacts: the JIT for it, compiled once per artifact and kept
 * in the cache (borrowed). Needs a cache made with an MLIR context. */
int loom_artifact_jit(loom_artifact_cache_t *c, const loom_artifact_t *a, loom_jit_t **out,
                      loom_err_t *err);

/* Counters: compiles done, memory hits, disk hits. */
void loom_artifact_stats(const loom_artifact_cache_t *c, unsigned long *compiles,
                         unsigned long *mem_hits, unsigned long *disk_hits);

#endif

/* objfetch.h — the consumer side of worker-to-worker object transfer
 * (objstore.h is the producer side).
 *
 * Given a reference, it takes the same-host path when the reference's host
 * is this host and its file is readable (one read of shared memory), else
 * fetches the object from the producer's endpoint over ZeroMQ in chunks,
 * keeping at most `window` requests in flight (credit-based flow control:
 * the producer never queues more than window x chunk bytes for us). Either
 * way the XXH3-128 of the bytes must equal the reference's checksum. A producer
 * that died, evicted the object, sent a bad chunk or stayed silent past the
 * timeout fails the fetch with a clear message; the caller decides the
 * fallback (for a KV cache: re-run the prefill).
 *
 * A streamed reference (objstore.h) may be fetched while its producer
 * still writes it: the network path's requests wait at the producer (which
 * says PENDING about every second, so a live but slow producer is not
 * silence); the same-host path reads the file as it grows (inotify), and
 * fails at once when the producer's process is gone or it abandoned the
 * stream. Each segment is verified as it lands and handed to on_segment. */
#ifndef LOOM_WORKERS_OBJFETCH_H
#define LOOM_WORKERS_OBJFETCH_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "workers/common/objstore.h"

#define LOOM_OBJFETCH_MAX_WINDOW 64

typedef struct loom_objfetch_opts {
    int timeout_ms;       /* silence allowed between chunks; <= 0: 10000 */
    size_t chunk;         /* bytes per request; 0: 1 MiB */
    int window;           /* requests in flight; <= 0: 8; at most LOOM_OBJFETCH_MAX_WINDOW */
    int same_host;        /* 1: try the shared-memory path first; 0: network only */
    /* Called after each chunk lands and, for a stream, while waiting for
     * one (may be NULL); non-zero stops the fetch (LOOM_ECANCELLED). Tests
     * use it to kill the producer mid-transfer; ops to honour a cancel. */
    int (*on_chunk)(void *ud, uint64_t got, uint64_t size);
    void *ud;
    /* A stream's segments, each verified, in order (may be NULL); non-zero
     * (an error code, e filled) stops the fetch with that error. */
    int (*on_segment)(void *ud, uint64_t index, const uint8_t *data, size_t n, loom_err_t *e);
    void *seg_ud;
    /* The CURVE pair this side presents to a producer whose reference has a
     * key (Z85; NULL: the object store's, loom_objstore_set_curve, else a
     * fresh one that only producers admitting any key accept). */
    const char *curve_public, *curve_secret;
} loom_objfetch_opts_t;

/* Sets up the fetching side once per process (the first network fetch does
 * it too): its ZeroMQ context, and the process's heap policy for receiving
 * large objects: glibc keeps freed blocks of up to 32 MiB in the heap and
 * up to 64 MiB free at the heap's top (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD)
 * instead of returning them to the kernel, so the chunks ZeroMQ allocates
 * reuse warm memory; first-touched pages are slow on some VMs. */
void loom_objfetch_init(void);

/* Defaults above; same_host from $LOOM_OBJECT_SAME_HOST (default 1),
 * timeout from $LOOM_OBJECT_TIMEOUT_MS. */
void loom_objfetch_opts_default(loom_objfetch_opts_t *o);

typedef struct loom_objfetch_stats {
    const char *path;     /* static: "same-host" or "network" */
    double seconds;       /* wall time of the transfer incl. verification */
    uint64_t chunks;
} loom_objfetch_stats_t;

/* Fetches ref's bytes into *data (malloc'd, caller frees; *n = ref->size).
 * stats may be NULL. LOOM_EUNAVAIL (producer gone / not answering),
 * LOOM_ENOTFOUND (evicted), LOOM_EPROTO (bad chunk), LOOM_EPARSE (checksum
 * mismatch), LOOM_ETIMEDOUT, LOOM_ECANCELLED. */
int loom_objfetch(const loom_objref_t *ref, const loom_objfetch_opts_t *o, void **data, size_t *n,
                  loom_objfetch_stats_t *stats, loom_err_t *e);
/* The same into the caller's buffer of ref->size bytes (reused buffers:
 * fresh memory is slow to touch on some VMs; bench-kv uses it). */
int loom_objfetch_into(const loom_objref_t *ref, const loom_objfetch_opts_t *o, void *dst,
                       loom_objfetch_stats_t *stats, loom_err_t *e);

#endif

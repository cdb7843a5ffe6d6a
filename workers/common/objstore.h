/* objstore.h — the worker's object store: large payloads (KV caches, big
 * step outputs) stay on the worker that made them and travel by reference.
 *
 * Objects are content-addressed (id = lowercase hex SHA-256 of the bytes)
 * and kept as files under a cache directory, by default in shared memory:
 *   $LOOM_OBJECT_DIR/<pid>/<id>       (default /dev/shm/loom-objects-<uid>)
 * so a consumer on the same host reads the file directly (the same-host
 * path) and one elsewhere fetches it over ZeroMQ from the object endpoint a
 * server thread binds ($LOOM_OBJECT_ENDPOINT, default tcp://127.0.0.1:*;
 * with a wildcard address such as tcp://0.0.0.0 the reference names this
 * host).
 * Lifetime (issue 15): an object stored for a run (put_run) is *needed*
 * (pinned) until loomd says that run's consumers of it are done
 * (loom_objstore_release, from the release list in HeartbeatReply); then
 * it is kept only as a cache for `loom logs`, until evicted or until loomd
 * says the run's data is no longer retained (forget). A pin loomd never
 * releases lapses after $LOOM_OBJECT_PIN_MS (default 24 h).
 * Two bounded tiers: memory ($LOOM_OBJECT_CACHE_BYTES, default 4 GiB, in
 * the object directory) and a spill directory on disk
 * ($LOOM_OBJECT_SPILL_DIR/<pid>, default $TMPDIR or /var/tmp
 * /loom-spill-<uid>; $LOOM_OBJECT_SPILL_BYTES, default 16 GiB, 0 = none).
 * Storing past the memory bound first drops objects no run needs (oldest
 * first), then moves needed ones to the spill tier (dropping unneeded
 * spilled ones to make room); when both tiers hold only needed objects the
 * put fails with LOOM_ETOOBIG naming the object and its run. A consumer
 * that asks for a dropped object gets NOT_FOUND and falls back. The
 * directories go when the process exits normally; those of dead processes
 * are swept at start.
 *
 * One store per process, started on first use; thread-safe. The wire
 * protocol is protocol/loom/v1/objects.proto; the consumer side is
 * objfetch.h. */
#ifndef LOOM_WORKERS_OBJSTORE_H
#define LOOM_WORKERS_OBJSTORE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <xxhash.h>

#include "common/err.h"

/* A reference to an object: what loomd and the store see instead of the
 * bytes. In task JSON: {"$object": {"id", "size", "checksum", "worker",
 * "endpoint", "host", "path", "media", "key"}}. The id names the content (SHA-256,
 * computed once by the producer); the consumer verifies the much cheaper
 * XXH3-128 checksum at link speed. It catches corruption, not forgery: peers
 * are to be authenticated by the channel (CURVE, as the worker port). */
typedef struct loom_objref {
    char id[65];          /* hex SHA-256 of the bytes (content address) */
    char checksum[33];    /* hex XXH3-128 of the bytes: what a consumer verifies */
    uint64_t size;
    char worker[128];     /* producing worker's id ("" when unknown) */
    char endpoint[256];   /* its object endpoint, tcp://host:port */
    char host[64];        /* its host identity (boot id): same-host test */
    char path[512];       /* the file on that host */
    char media[64];       /* what the bytes are, e.g. "loom-kv-v1" */
    char key[41];         /* the producer's CURVE public key (Z85); "" = plain */
    int stream;           /* 1: a streamed object (segments, below); checksum "" */
} loom_objref_t;

/* Stores n bytes (copied) and fills ref. worker and media may be NULL.
 * LOOM_ETOOBIG when n exceeds the whole budget; LOOM_EIO when the
 * directory or the endpoint cannot be set up (message says which). */
int loom_objstore_put(const void *data, size_t n, const char *worker, const char *media, loom_objref_t *ref,
                      loom_err_t *e);
/* CURVE on the object endpoint (a worker in secure mode calls it with its
 * own key pair before the first put): the socket encrypts, references carry
 * the public key so consumers authenticate the producer, and consumers must
 * present a CURVE key listed as a NAME.pub file in peers_dir (NULL or "":
 * any CURVE key, with a warning). The same pair is what this process
 * presents when it fetches (loom_objstore_curve_pair). */
int loom_objstore_set_curve(const char *public_z85, const char *secret_z85, const char *peers_dir, loom_err_t *e);
/* 1 and the pair when CURVE was set, else 0. */
int loom_objstore_curve_pair(char pub[41], char sec[41]);

/* loom_objstore_put for run: the object is needed (pinned) until
 * loom_objstore_release(run, id, 0). run NULL or "": not needed by anyone
 * (evictable at once, as loom_objstore_put). When neither tier has room:
 * LOOM_ETOOBIG, the message naming the object, the run and both bounds. */
int loom_objstore_put_run(const void *data, size_t n, const char *worker, const char *media, const char *run,
                          loom_objref_t *ref, loom_err_t *e);

/* Streamed objects: a producer publishes a reference before the bytes
 * exist (a KV cache while its prefill runs) and appends them in segments;
 * a consumer's fetch of a range waits until it is written (objfetch.h).
 * The size is fixed when the stream opens. The bytes are segments
 *   [u64 length, little-endian][payload][XXH3-128 of the payload, canonical]
 * so each is verified as it lands (there is no whole-object checksum when
 * the reference is handed out); the id is random, not the content's hash.
 * A stream lives in the memory tier, held for run like put_run, and is
 * never evicted or spilled while open. Closing it unfinished (the
 * producer failed) drops it: waiting consumers get NOT_FOUND. */
#define LOOM_OBJSTREAM_FRAME 24u  /* bytes a segment adds to its payload */
typedef struct loom_objstream loom_objstream_t;
int loom_objstore_stream_open(uint64_t size, const char *worker, const char *media, const char *run,
                              loom_objstream_t **s, loom_objref_t *ref, loom_err_t *e);
/* Appends one segment made of the n pieces (a header and rows, say);
 * LOOM_EINVAL past the declared size. */
typedef struct loom_objstream_piece {
    const void *data;
    size_t len;
} loom_objstream_piece_t;
int loom_objstore_stream_segment(loom_objstream_t *s, const loom_objstream_piece_t *p, int n, loom_err_t *e);
/* ok: every byte written (else LOOM_EINVAL and the stream is dropped);
 * !ok: abandon it. Frees s. */
int loom_objstore_stream_close(loom_objstream_t *s, int ok, loom_err_t *e);

/* Drops an object now; 0 or LOOM_ENOTFOUND. */
int loom_objstore_drop(const char *id);
/* loomd's word about run's objects (id NULL or "": all of them). forget 0:
 * the run's consumers of it are done (unpinned: kept as cache while room
 * lasts); 1: the run's data is no longer retained (the run lets go of it;
 * an object no other run holds is dropped). Returns the objects touched. */
size_t loom_objstore_release(const char *run, const char *id, int forget);

typedef struct loom_objstore_stats {
    uint64_t bytes, budget;             /* memory tier: held, bound */
    uint64_t spill_bytes, spill_budget; /* spill tier */
    size_t objects, pinned, spilled;    /* now: all, needed by a run, in the spill tier */
    uint64_t spilled_total, evicted_total; /* since start: moved to disk, dropped for room */
} loom_objstore_stats_t;
void loom_objstore_stats(loom_objstore_stats_t *st);
/* The spill tier's directory ("" before the first put or without one). */
const char *loom_objstore_spill_dir(void);
/* The object endpoint ("" before the first put) and the bytes stored. */
const char *loom_objstore_endpoint(void);
uint64_t loom_objstore_bytes(void);

/* Hex form of an XXH3-128 checksum (objfetch verifies with it). */
void loom_objstore_checksum_hex(XXH128_hash_t h, char out[33]);

/* 1 when path names an object file under this process's object root or
 * spill root ($LOOM_OBJECT_DIR / $LOOM_OBJECT_SPILL_DIR or the defaults:
 * ROOT/<pid>/<64 hex>): the only files the same-host path reads, whatever
 * a reference says. */
int loom_objstore_path_ok(const char *path);

/* This host's identity (kernel boot id), "" when unknown. Borrowed. */
const char *loom_objstore_host_id(void);

/* {"$object": {...}} for ref (new reference; a stream adds "stream": true
 * and has no "checksum") / back. A JSON value is a
 * reference exactly when loom_objref_is(j). from_json validates every
 * field (bad input: LOOM_EINVAL naming the field). */
json_t *loom_objref_to_json(const loom_objref_t *ref);
int loom_objref_is(const json_t *j);
int loom_objref_from_json(const json_t *j, loom_objref_t *ref, loom_err_t *e);

#endif

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
 * The store is bounded ($LOOM_OBJECT_CACHE_BYTES, default 4 GiB): storing
 * past it evicts the oldest objects first; a consumer that then asks for
 * one gets NOT_FOUND and falls back. The directory goes when the process
 * exits normally; directories of dead processes are swept at start.
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

/* Streamed objects: a producer publishes a reference before the bytes
 * exist (a KV cache while its prefill runs) and appends them in segments;
 * a consumer's fetch of a range waits until it is written (objfetch.h).
 * The size is fixed when the stream opens. The bytes are segments
 *   [u64 length, little-endian][payload][XXH3-128 of the payload, canonical]
 * so each is verified as it lands (there is no whole-object checksum when
 * the reference is handed out); the id is random, not the content's hash.
 * A stream is never evicted while open. Closing it unfinished (the
 * producer failed) drops it: waiting consumers get NOT_FOUND. */
#define LOOM_OBJSTREAM_FRAME 24u  /* bytes a segment adds to its payload */
typedef struct loom_objstream loom_objstream_t;
int loom_objstore_stream_open(uint64_t size, const char *worker, const char *media, loom_objstream_t **s,
                              loom_objref_t *ref, loom_err_t *e);
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

/* Drops an object (e.g. when its consumers are done); 0 or LOOM_ENOTFOUND. */
int loom_objstore_drop(const char *id);
/* The object endpoint ("" before the first put) and the bytes stored. */
const char *loom_objstore_endpoint(void);
uint64_t loom_objstore_bytes(void);

/* Hex form of an XXH3-128 checksum (objfetch verifies with it). */
void loom_objstore_checksum_hex(XXH128_hash_t h, char out[33]);

/* 1 when path names an object file under this process's object root
 * ($LOOM_OBJECT_DIR or the default: ROOT/<pid>/<64 hex>): the only files
 * the same-host path reads, whatever a reference says. */
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

/* outref.h — step outputs by reference (issue 15): a large part of a task's
 * output stays in the producing worker's object store (objstore.h) and
 * travels as {"$object": {...}, media "application/json"}; a worker whose
 * task input holds such references fetches them (objfetch.h) before its
 * handler runs, so ops never see a reference. loomd and its store keep only
 * the reference (id = SHA-256, size, XXH3-128 checksum, producer).
 *
 * loomd decides which outputs may go by reference: it puts
 * "$by_reference_over": N (bytes) in a task's input when the step's output
 * is only consumed by other steps' inputs (not by the run's outputs, a
 * `when:`/`foreach:`/`until:` expression or a model-output check), and the
 * worker drops the key before the handler sees the input. */
#ifndef LOOM_WORKERS_OUTREF_H
#define LOOM_WORKERS_OUTREF_H

#include <stddef.h>

#include <jansson.h>

#include "common/err.h"
#include "workers/common/objfetch.h"

#define LOOM_OUTREF_KEY "$by_reference_over"
#define LOOM_OUTREF_MEDIA "application/json"

/* Moves the parts of *v whose compact JSON exceeds `over` bytes into the
 * object store, replacing each with its reference: bottom-up, so small
 * fields stay addressable (`${steps.x.output.exit_code}`) and only a large
 * leaf (a string) or a container that is large as a whole goes; *v itself
 * may become a reference. The objects are held for run (the producing
 * task's; objstore.h: needed until loomd releases them). *moved gets the
 * bytes stored (may be NULL). LOOM_EIO when the object store cannot start,
 * LOOM_ETOOBIG when it is full of needed objects (objstore.h). */
int loom_outref_offload(json_t **v, size_t over, const char *worker, const char *run, size_t *moved,
                        loom_err_t *e);

/* Replaces every "application/json" reference in *v (also inside fetched
 * values) by the value it names; other references (KV caches) are left for
 * the op. opts NULL: defaults. *fetched gets the bytes fetched (may be
 * NULL). Fails with objfetch's reason (producer gone, checksum, timeout)
 * or LOOM_EPARSE when the bytes are not JSON; then `lost` (may be NULL)
 * holds the failed reference's object id, so loomd can re-run the step
 * that made it (worker.proto ResultRequest.lost_input). */
int loom_outref_resolve(json_t **v, const loom_objfetch_opts_t *opts, size_t *fetched, char lost[65], loom_err_t *e);

/* 1 when v holds an "application/json" reference (NULL: 0). */
int loom_outref_has(const json_t *v);

#endif

/* plan_codec.h — how a Plan travels in a stored event's detail (the
 * PLANNED / REPLANNED events, orchestrator/stitch.c), so that Watch can
 * send it again (client_api.c): its protobuf encoding, compressed with
 * zlib (a 100-step plan's ~27 KiB, most of it the lowered module's text,
 * become ~3 KiB), in hex, under the key "plan_pbz". Events stored before
 * (and by older loomd) carry the uncompressed encoding under "plan_pb";
 * both are read. The plan cache (placement_planner.c) encodes a shared plan
 * once. */
#ifndef LOOM_ORCHESTRATOR_PLAN_CODEC_H
#define LOOM_ORCHESTRATOR_PLAN_CODEC_H

#include <stddef.h>
#include <stdint.h>

struct Loom__V1__Plan;

#define LOOM_PLAN_KEY_Z "plan_pbz" /* zlib-compressed encoding, hex */
#define LOOM_PLAN_KEY "plan_pb"    /* plain encoding, hex (older events) */

/* The hex text of p's compressed encoding (caller frees); NULL on OOM. */
char *loom_plan_codec_hex(const struct Loom__V1__Plan *p);

/* The Plan's encoding from a stored value: hex (hexlen digits), compressed
 * when z. Returns a malloc'd buffer with `room` bytes free at its start
 * (for a caller's prefix) and the encoding after them, *n its length; NULL
 * when the value is not what loom_plan_codec_hex writes (or on OOM). */
uint8_t *loom_plan_codec_bytes(const char *hex, size_t hexlen, int z, size_t room, size_t *n);

#endif

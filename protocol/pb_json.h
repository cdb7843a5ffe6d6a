/* pb_json.h — any protobuf-c message to and from JSON, by walking its
 * descriptor (protobuf-c has no JSON support of its own). Used by loomd's
 * HTTP/JSON gateway (orchestrator/http_api.c), so REST bodies are the
 * proto3 JSON form of the messages in loom/v1/ (rpc.proto, ...):
 *
 *   - field names as in the .proto (snake_case); parsing also accepts the
 *     lowerCamelCase names of the proto3 JSON mapping;
 *   - enums as their names ("RUN_SUCCEEDED"); parsing also accepts numbers;
 *   - 64-bit integers as decimal strings, other numbers as JSON numbers;
 *     parsing accepts both forms for every numeric field (as proto3 does);
 *   - bytes as base64; NaN/Infinity as the strings "NaN", "Infinity";
 *   - every scalar, enum and repeated field is written, defaults included
 *     (so a client never has to know proto3's omission rule); a sub-message
 *     that is not set is left out.
 *
 * Parsing is strict: an unknown field, a wrong type or a value out of range
 * is an error naming the field path (e.g. "labels[1].key"). */
#ifndef LOOM_PROTOCOL_PB_JSON_H
#define LOOM_PROTOCOL_PB_JSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "common/err.h"

/* A new JSON object for m (NULL only when out of memory). */
json_t *loom_pb_to_json(const ProtobufCMessage *m);

/* A new message of type desc from the JSON object j, or NULL with err set
 * (LOOM_EINVAL, field path in err->field). Free with loom_pb_json_free.
 * lenient: also take "true"/"false" strings for bools (query strings). */
ProtobufCMessage *loom_pb_from_json(const ProtobufCMessageDescriptor *desc, const json_t *j,
                                    int lenient, loom_err_t *err);

/* Frees a message from loom_pb_from_json; safe on NULL. */
void loom_pb_json_free(ProtobufCMessage *m);

#endif

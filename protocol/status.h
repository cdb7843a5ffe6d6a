/* status.h — RPC status codes, named and numbered exactly like gRPC's
 * (the StatusCode enum of protocol/loom/v1/envelope.proto), and the mapping
 * to and from the project's LOOM_E* error codes. */
#ifndef LOOM_PROTOCOL_STATUS_H
#define LOOM_PROTOCOL_STATUS_H

typedef enum {
    LOOM_STATUS_OK = 0,
    LOOM_STATUS_CANCELLED = 1,
    LOOM_STATUS_UNKNOWN = 2,
    LOOM_STATUS_INVALID_ARGUMENT = 3,
    LOOM_STATUS_DEADLINE_EXCEEDED = 4,
    LOOM_STATUS_NOT_FOUND = 5,
    LOOM_STATUS_ALREADY_EXISTS = 6,
    LOOM_STATUS_PERMISSION_DENIED = 7,
    LOOM_STATUS_RESOURCE_EXHAUSTED = 8,
    LOOM_STATUS_FAILED_PRECONDITION = 9,
    LOOM_STATUS_ABORTED = 10,
    LOOM_STATUS_OUT_OF_RANGE = 11,
    LOOM_STATUS_UNIMPLEMENTED = 12,
    LOOM_STATUS_INTERNAL = 13,
    LOOM_STATUS_UNAVAILABLE = 14,
    LOOM_STATUS_DATA_LOSS = 15,
    LOOM_STATUS_UNAUTHENTICATED = 16,
} loom_status_t;

#define LOOM_STATUS_MAX 16

/* "OK", "CANCELLED", ... "UNAUTHENTICATED"; "UNKNOWN_STATUS" for values
 * outside 0..16. Static storage. */
const char *loom_status_name(int status);

/* Parses a name as printed by loom_status_name; returns -1 when unknown. */
int loom_status_parse(const char *name);

/* The status a server reports for a failure with LOOM_E* code err
 * (0 -> OK, LOOM_EINVAL/EPARSE -> INVALID_ARGUMENT, LOOM_ENOTFOUND ->
 * NOT_FOUND, LOOM_ETIMEDOUT -> DEADLINE_EXCEEDED, LOOM_ETOOBIG ->
 * RESOURCE_EXHAUSTED, LOOM_EPROTO -> FAILED_PRECONDITION, ...). */
loom_status_t loom_status_from_err(int err);

/* The LOOM_E* code a client reports for a status (OK -> 0). */
int loom_err_from_status(int status);

#endif

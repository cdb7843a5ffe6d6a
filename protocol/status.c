/* status.c — gRPC-compatible status names and LOOM_E* mapping. */
#include "protocol/status.h"

#include <string.h>

#include "common/err.h"

static const char *const names[LOOM_STATUS_MAX + 1] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
    "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
};

const char *loom_status_name(int status)
{
    if (status < 0 || status > LOOM_STATUS_MAX)
        return "UNKNOWN_STATUS";
    return names[status];
}

int loom_status_parse(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i <= LOOM_STATUS_MAX; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

loom_status_t loom_status_from_err(int err)
{
    switch (err) {
    case LOOM_OK: return LOOM_STATUS_OK;
    case LOOM_EINVAL:
    case LOOM_EPARSE: return LOOM_STATUS_INVALID_ARGUMENT;
    case LOOM_ENOMEM: return LOOM_STATUS_RESOURCE_EXHAUSTED;
    case LOOM_EIO: return LOOM_STATUS_UNAVAILABLE;
    case LOOM_ENOTFOUND: return LOOM_STATUS_NOT_FOUND;
    case LOOM_EEXIST: return LOOM_STATUS_ALREADY_EXISTS;
    case LOOM_ETIMEDOUT: return LOOM_STATUS_DEADLINE_EXCEEDED;
    case LOOM_EPROTO: return LOOM_STATUS_FAILED_PRECONDITION;
    case LOOM_ETOOBIG: return LOOM_STATUS_RESOURCE_EXHAUSTED;
    case LOOM_EUNAVAIL: return LOOM_STATUS_UNAVAILABLE;
    case LOOM_ECANCELLED: return LOOM_STATUS_CANCELLED;
    case LOOM_EDEVICE: return LOOM_STATUS_UNAVAILABLE;
    case LOOM_EDB: return LOOM_STATUS_UNAVAILABLE;
    case LOOM_EINFEASIBLE: return LOOM_STATUS_FAILED_PRECONDITION;
    case LOOM_EINTERNAL: return LOOM_STATUS_INTERNAL;
    default: return LOOM_STATUS_UNKNOWN;
    }
}

int loom_err_from_status(int status)
{
    switch (status) {
    case LOOM_STATUS_OK: return LOOM_OK;
    case LOOM_STATUS_CANCELLED: return LOOM_ECANCELLED;
    case LOOM_STATUS_INVALID_ARGUMENT:
    case LOOM_STATUS_OUT_OF_RANGE: return LOOM_EINVAL;
    case LOOM_STATUS_DEADLINE_EXCEEDED: return LOOM_ETIMEDOUT;
    case LOOM_STATUS_NOT_FOUND: return LOOM_ENOTFOUND;
    case LOOM_STATUS_ALREADY_EXISTS: return LOOM_EEXIST;
    case LOOM_STATUS_RESOURCE_EXHAUSTED: return LOOM_ETOOBIG;
    case LOOM_STATUS_FAILED_PRECONDITION:
    case LOOM_STATUS_UNIMPLEMENTED:
    case LOOM_STATUS_PERMISSION_DENIED:
    case LOOM_STATUS_UNAUTHENTICATED: return LOOM_EPROTO;
    case LOOM_STATUS_UNAVAILABLE: return LOOM_EUNAVAIL;
    case LOOM_STATUS_INTERNAL:
    case LOOM_STATUS_DATA_LOSS: return LOOM_EINTERNAL;
    default: return LOOM_EINTERNAL;
    }
}

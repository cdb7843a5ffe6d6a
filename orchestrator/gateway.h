/* gateway.h — the RPC side of loomd's HTTP/JSON gateway: one thread that
 * carries calls from the HTTP threads to loomd's own client endpoint over a
 * single ZeroMQ DEALER socket, exactly as any other client would (so REST
 * calls get the RPC's authentication, validation and limits, and the event
 * loop needs no locks), and hands the answers back through callbacks.
 *
 * Many calls are in flight at once (unary calls and Watch streams are
 * matched by request id), so an HTTP thread never blocks on loomd: it
 * submits, suspends its connection and is resumed from the callback.
 *
 *   thread-safe:  loom_gateway_call, loom_gateway_cancel, set_endpoint
 *   gateway thread: every callback (keep them short; they must not call
 *                   loom_gateway_* except cancel)
 *
 * Every call ends with exactly one done() — the reply, the stream's final
 * status, a deadline (DEADLINE_EXCEEDED), a cancel (CANCELLED) or the
 * gateway stopping (UNAVAILABLE) — after which the gateway forgets ud. */
#ifndef LOOM_ORCHESTRATOR_GATEWAY_H
#define LOOM_ORCHESTRATOR_GATEWAY_H

#include <stdint.h>

#include "common/err.h"
#include "loom/v1/envelope.pb-c.h"
#include "protocol/envelope.h"

typedef struct loom_gateway loom_gateway_t;

/* reply: on OK, the unary reply (the callee frees it with loom_pb_free);
 * NULL for streams and failures. error: the server's structured error when
 * it sent one (borrowed for the call). */
typedef void (*loom_gateway_done_fn)(void *ud, int status, const char *message,
                                     const Loom__V1__Error *error, ProtobufCMessage *reply);
/* One stream item (the callee frees it with loom_pb_free). */
typedef void (*loom_gateway_item_fn)(void *ud, ProtobufCMessage *item);

typedef struct loom_gateway_call {
    const char *method;                       /* "loom.v1.Loom/Get" */
    ProtobufCMessage *request;                /* taken; freed with loom_pb_json_free */
    const ProtobufCMessageDescriptor *answer; /* reply type, or item type of a stream */
    int stream;                               /* server-streaming (Watch) */
    const char *auth_token;                   /* copied; NULL = none */
    int64_t timeout_ms;                       /* <= 0 = none */
    loom_gateway_done_fn done;
    loom_gateway_item_fn item;                /* streams */
    void *ud;
} loom_gateway_call_t;

/* Starts the thread. tick (may be NULL) runs on it about once a second. */
loom_gateway_t *loom_gateway_new(void (*tick)(void *ud), void *tick_ud, loom_err_t *err);
/* Where loomd's client endpoint is (known once loomd has bound it); until
 * then calls end with UNAVAILABLE. A wildcard host ("*" or 0.0.0.0) is
 * reached through 127.0.0.1. */
void loom_gateway_set_endpoint(loom_gateway_t *g, const char *endpoint);
/* Secure mode (loomd --keys): connect with CURVE as loomd itself — its
 * secret key (Z85), whose public half is both the server key and this
 * client's key (orchestrator/zap.c admits it). Call before set_endpoint.
 * Returns 0 or LOOM_EINVAL for a malformed key. */
int loom_gateway_set_curve(loom_gateway_t *g, const char *secret_key);
/* Submits a call; returns its id (never 0). When the gateway is stopped
 * the call ends at once with UNAVAILABLE (done runs on the caller's thread
 * then, and 0 is returned). */
uint64_t loom_gateway_call(loom_gateway_t *g, const loom_gateway_call_t *call);
/* Cancels a call (a no-op once it ended); its done() follows with CANCELLED. */
void loom_gateway_cancel(loom_gateway_t *g, uint64_t id);
/* Ends every call (UNAVAILABLE) and joins the thread; the object stays
 * valid (later calls end at once) until destroy. */
void loom_gateway_stop(loom_gateway_t *g);
void loom_gateway_destroy(loom_gateway_t **pg);

/* Calls in flight, for /metrics. */
uint64_t loom_gateway_in_flight(const loom_gateway_t *g);

#endif

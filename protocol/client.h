/* client.h — libloom_client: calls loomd (or any Loom RPC server) over a
 * ZeroMQ DEALER socket.
 *
 *   loom_client_opts_t o = {.auth_token = tok};
 *   loom_client_t *c = loom_client_new("tcp://127.0.0.1:7400", &o, &err);
 *   Loom__V1__GetRequest rq = LOOM__V1__GET_REQUEST__INIT; rq.run_id = "r1";
 *   Loom__V1__GetReply *rp;
 *   if (loom_client_get(c, &rq, 5000, &rp, &err) == LOOM_STATUS_OK) { ...; loom_pb_free(rp); }
 *
 * Calls return a gRPC-style status (protocol/status.h): LOOM_STATUS_OK (0)
 * or the failure, with err filled (err->code is the matching LOOM_E*,
 * err->msg the server's message; detail/hint when the server sent them).
 * This departs from the LOOM_E* return convention on purpose: callers of
 * an RPC need the status the server chose (NOT_FOUND vs UNAVAILABLE...).
 *
 * A client is not thread-safe; use one per thread. Several streams and
 * unary calls may be open on one client: replies are matched by request id,
 * and messages for a stream that arrive during another call are queued.
 * The same object serves the worker side (requests from loomd such as
 * Assign arrive through loom_client_serve_next). */
#ifndef LOOM_PROTOCOL_CLIENT_H
#define LOOM_PROTOCOL_CLIENT_H

#include <stdint.h>

#include "common/err.h"
#include "loom/v1/rpc.pb-c.h"
#include "loom/v1/worker.pb-c.h"
#include "protocol/envelope.h"
#include "protocol/methods.h"

typedef struct loom_client loom_client_t;
typedef struct loom_stream loom_stream_t;

typedef struct loom_client_opts {
    const char *auth_token;        /* sent as metadata "authorization"; NULL = none */
    const char *server_public_key; /* Z85 CURVE public key of the server (40 chars): encrypt */
    const char *client_public_key; /* Z85 key pair of this client (for a server with a client */
    const char *client_secret_key; /* allow-list); NULL = a fresh pair per connection */
    loom_limits_t limits;          /* all-zero = defaults */
    void *zctx;                    /* a zmq context to share; NULL = the client owns one */
    const char *client_name;       /* sent as metadata "x-client" (e.g. "loom-cli/0.1"); may be NULL */
} loom_client_opts_t;

/* Connects (lazily: a server that is not up yet is waited for until each
 * call's deadline). opts may be NULL. Returns NULL with err set.
 *
 * endpoint may list several loomd, comma-separated (failover, see
 * protocol/failover.h): the client talks to one at a time and moves on
 * when a standby answers UNAVAILABLE (to the leader it names) or the
 * connection is lost or refused; a unary call is then sent again to the
 * next loomd within its deadline (a Submit may so create a second run if
 * the lost loomd had stored the first: send an idempotency key), and open
 * streams end UNAVAILABLE (open them again). A single endpoint that turns
 * out to be a standby is followed to the leader too. */
loom_client_t *loom_client_new(const char *endpoint, const loom_client_opts_t *opts,
                               loom_err_t *err);
/* The endpoint in use (after failover, the one that answered). Borrowed. */
const char *loom_client_endpoint(const loom_client_t *c);
/* Closes the socket (open streams are cancelled first); safe on NULL/twice. */
void loom_client_destroy(loom_client_t **pc);

/* The DEALER socket, e.g. for a worker's zmq_poll loop. Borrowed. */
void *loom_client_socket(loom_client_t *c);

/* Blocking unary call. method: "loom.v1.Loom/Get". req: any protobuf-c
 * message (NULL = empty payload). reply_desc: the reply's type; *reply
 * (caller frees with loom_pb_free) is set only on OK. timeout_ms: the
 * deadline, sent to the server too; <= 0 = none. When the deadline passes
 * the call sends a cancel and returns LOOM_STATUS_DEADLINE_EXCEEDED. */
int loom_client_call(loom_client_t *c, const char *method, const ProtobufCMessage *req,
                     const ProtobufCMessageDescriptor *reply_desc, int64_t timeout_ms,
                     ProtobufCMessage **reply, loom_err_t *err);

/* Sends a request with FLAG_ONEWAY (no reply), e.g. Progress. */
int loom_client_send_oneway(loom_client_t *c, const char *method, const ProtobufCMessage *req,
                            loom_err_t *err);

/* Opens a server-streaming call; items are of type item_desc. timeout_ms
 * bounds the whole stream (<= 0 = none). Returns OK with *out set (caller
 * destroys), or a failure status. */
int loom_client_stream(loom_client_t *c, const char *method, const ProtobufCMessage *req,
                       const ProtobufCMessageDescriptor *item_desc, int64_t timeout_ms,
                       loom_stream_t **out, loom_err_t *err);

enum {
    LOOM_STREAM_END = 0,  /* the stream is over: loom_stream_status() says how */
    LOOM_STREAM_ITEM = 1, /* *item holds the next item (caller frees with loom_pb_free) */
    LOOM_STREAM_IDLE = 2, /* nothing arrived within wait_ms; the stream is still open */
};

/* Waits up to wait_ms (< 0 = until the stream's deadline) for the next
 * item. Returns LOOM_STREAM_ITEM, LOOM_STREAM_IDLE or LOOM_STREAM_END. */
int loom_stream_next(loom_stream_t *s, int64_t wait_ms, ProtobufCMessage **item, loom_err_t *err);
/* Final status once ended (OK, CANCELLED, DEADLINE_EXCEEDED, the server's
 * status...); -1 while open. */
int loom_stream_status(const loom_stream_t *s);
/* The final status message ("" when none). Borrowed from s. */
const char *loom_stream_message(const loom_stream_t *s);
/* Sends a cancel frame for the stream (the server sees loom_msg_is_cancel)
 * and ends it locally with CANCELLED; later items are dropped. */
void loom_stream_cancel(loom_stream_t *s);
/* Cancels when still open, then frees; safe on NULL/twice. Must be called
 * before the client is destroyed. */
void loom_stream_destroy(loom_stream_t **ps);

/* Worker side: waits up to wait_ms (< 0 = forever) for a request from the
 * server (e.g. "loom.v1.Worker/Assign") or a cancel of one. Returns 1 with
 * *req set (caller destroys; decode with loom_msg_unpack), 0 on timeout,
 * negative LOOM_E* on a socket failure. */
int loom_client_serve_next(loom_client_t *c, int64_t wait_ms, loom_msg_t **req, loom_err_t *err);
/* Answers a request from loom_client_serve_next (status OK with reply, or
 * an error status with message). Skips one-way requests. */
int loom_client_respond(loom_client_t *c, const loom_msg_t *req, int status, const char *message,
                        const ProtobufCMessage *reply, loom_err_t *err);

/* ---- typed wrappers: method names of rpc.proto / worker.proto ----------- */
#define LOOM_CLIENT_UNARY(fn, Req, Rep)                                                  \
    int loom_client_##fn(loom_client_t *c, const Req *req, int64_t timeout_ms, Rep **reply, \
                         loom_err_t *err);
LOOM_CLIENT_UNARY(submit, Loom__V1__SubmitRequest, Loom__V1__SubmitReply)
LOOM_CLIENT_UNARY(plan, Loom__V1__PlanRequest, Loom__V1__PlanReply)
LOOM_CLIENT_UNARY(get, Loom__V1__GetRequest, Loom__V1__GetReply)
LOOM_CLIENT_UNARY(list, Loom__V1__ListRequest, Loom__V1__ListReply)
LOOM_CLIENT_UNARY(cancel, Loom__V1__CancelRequest, Loom__V1__CancelReply)
LOOM_CLIENT_UNARY(retry, Loom__V1__RetryRequest, Loom__V1__SubmitReply)
LOOM_CLIENT_UNARY(list_workers, Loom__V1__ListWorkersRequest, Loom__V1__ListWorkersReply)
LOOM_CLIENT_UNARY(health, Loom__V1__HealthRequest, Loom__V1__HealthReply)
LOOM_CLIENT_UNARY(register, Loom__V1__RegisterRequest, Loom__V1__RegisterReply)
LOOM_CLIENT_UNARY(heartbeat, Loom__V1__HeartbeatRequest, Loom__V1__HeartbeatReply)
LOOM_CLIENT_UNARY(result, Loom__V1__ResultRequest, Loom__V1__ResultReply)
LOOM_CLIENT_UNARY(progress, Loom__V1__ProgressRequest, Loom__V1__ProgressReply)
#undef LOOM_CLIENT_UNARY

/* Watch: items are Loom__V1__RunEvent. */
int loom_client_watch(loom_client_t *c, const Loom__V1__WatchRequest *req, int64_t timeout_ms,
                      loom_stream_t **out, loom_err_t *err);

#endif

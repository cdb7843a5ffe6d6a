/* rpc_server.h — server side of Loom's RPC over a bound ZeroMQ ROUTER
 * socket, for loomd's zmq_poll loop (nothing here blocks).
 *
 * Typical loop:
 *
 *   loom_rpc_server_t *srv = loom_rpc_server_new(ctx, "tcp://127.0.0.1:7400", &opts, &err);
 *   zmq_pollitem_t it = {loom_rpc_server_socket(srv), 0, ZMQ_POLLIN, 0};
 *   for (;;) {
 *       zmq_poll(&it, 1, timeout_ms);
 *       loom_msg_t *m;
 *       while (loom_rpc_server_recv(srv, &m, &err) == 1) {
 *           if (loom_msg_is_cancel(m))      ... stop the stream (origin, request id)
 *           else if (loom_msg_is_reply(m))  ... a worker answered our call
 *           else                            ... dispatch on loom_msg_method(m)
 *           loom_msg_destroy(&m);
 *       }
 *   }
 *
 * loom_rpc_server_recv answers the malformed (bad frames, wrong version,
 * oversized), the expired (deadline passed) and the unauthenticated itself,
 * so the application only sees well-formed, authorised, live messages.
 * Replies address a loom_origin_t: copy it out of the request to keep
 * streaming after the request message is destroyed.
 *
 * Cancels and replies are not authenticated (only requests carry a
 * token): match them on the peer's routing id AND the request id, so that
 * a peer can only cancel or answer what concerns it. */
#ifndef LOOM_PROTOCOL_RPC_SERVER_H
#define LOOM_PROTOCOL_RPC_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "protocol/envelope.h"

typedef struct loom_rpc_server loom_rpc_server_t;

/* Verifies a request's "authorization" metadata value (NULL when absent).
 * Returns 0 to accept and fills who (attached to the message:
 * loom_msg_principal); otherwise fill err (its message is sent back with
 * UNAUTHENTICATED). */
typedef int (*loom_rpc_auth_fn)(void *ud, const char *token, const loom_msg_t *m,
                                loom_principal_t *who, loom_err_t *err);

typedef struct loom_rpc_server_opts {
    loom_limits_t limits;          /* all-zero = defaults (envelope.h) */
    const char *auth_token;        /* if set: this token is accepted (as tenant "default",
                                    * role "admin": the operator's shared token) */
    loom_rpc_auth_fn auth;         /* if set: called for requests without auth_token */
    void *auth_ud;
    const char *curve_secret_key;  /* Z85 server secret key (40 chars): enable CURVE encryption */
    const char *zap_domain;        /* ZAP domain of this socket (the handler tells sockets apart) */
    int sndhwm;                    /* 0 = libzmq default (1000 messages per peer) */
} loom_rpc_server_opts_t;

/* Counters for /metrics and tests. */
typedef struct loom_rpc_server_stats {
    uint64_t received;       /* messages read, well formed or not */
    uint64_t malformed;      /* rejected by the decoder */
    uint64_t expired;        /* deadline passed on arrival */
    uint64_t unauthenticated;
    uint64_t send_failed;    /* replies that could not be queued (peer gone, HWM) */
} loom_rpc_server_stats_t;

/* Binds a new ROUTER socket on endpoint (e.g. "tcp://127.0.0.1:*" picks a
 * free port; see loom_rpc_server_endpoint). zctx is a zmq context the
 * caller owns and keeps alive. opts may be NULL. Returns NULL with err set. */
loom_rpc_server_t *loom_rpc_server_new(void *zctx, const char *endpoint,
                                       const loom_rpc_server_opts_t *opts, loom_err_t *err);
void loom_rpc_server_destroy(loom_rpc_server_t **ps);

/* The ROUTER socket, for zmq_poll. Borrowed; do not close it. */
void *loom_rpc_server_socket(loom_rpc_server_t *s);
/* The endpoint actually bound (port resolved). Borrowed. */
const char *loom_rpc_server_endpoint(const loom_rpc_server_t *s);
const loom_rpc_server_stats_t *loom_rpc_server_stats(const loom_rpc_server_t *s);
const loom_limits_t *loom_rpc_server_limits(const loom_rpc_server_t *s);

/* Reads pending messages without blocking. Returns 1 with *out (caller
 * destroys) for a request, a cancel or a reply; 0 when nothing is pending
 * (after answering any rejected ones); LOOM_EIO on a socket failure. */
int loom_rpc_server_recv(loom_rpc_server_t *s, loom_msg_t **out, loom_err_t *err);

/* Unary reply with status OK and payload (NULL = empty payload). */
int loom_rpc_reply(loom_rpc_server_t *s, const loom_origin_t *to, const ProtobufCMessage *reply,
                   loom_err_t *err);
/* Unary reply with a non-OK status and message (printf format). */
int loom_rpc_reply_status(loom_rpc_server_t *s, const loom_origin_t *to, int status,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Unary reply for a failure described by e (status from e->code, message,
 * detail, hint and file:line:col: field as a structured Error). */
int loom_rpc_reply_err(loom_rpc_server_t *s, const loom_origin_t *to, const loom_err_t *e);

/* One item of a server stream (status OK, FLAG_STREAM). LOOM_EUNAVAIL means
 * the client is gone or not reading: drop the stream. */
int loom_rpc_stream_send(loom_rpc_server_t *s, const loom_origin_t *to,
                         const ProtobufCMessage *item, loom_err_t *err);
/* Ends a stream with a final status (OK when it completed, CANCELLED after
 * a client cancel, DEADLINE_EXCEEDED, ...). message may be NULL. */
int loom_rpc_stream_end(loom_rpc_server_t *s, const loom_origin_t *to, int status,
                        const char *message, loom_err_t *err);

/* Server-initiated request to a connected peer (loomd -> worker, e.g.
 * "loom.v1.Worker/Assign"). peer is the routing id from one of the peer's
 * messages (loom_msg_origin(m)->peer). Sets *request_id (unique per server)
 * so that the reply (loom_msg_is_reply, same request id) can be matched.
 * flags: 0 or LOOM_FLAG_ONEWAY. deadline_ms: unix ms or 0. */
int loom_rpc_call_peer(loom_rpc_server_t *s, const uint8_t *peer, size_t peer_len,
                       const char *method, const ProtobufCMessage *req, int64_t deadline_ms,
                       uint32_t flags, uint64_t *request_id, loom_err_t *err);

/* Sends one reply-side message on any socket (ROUTER or DEALER): what the
 * functions above and the worker side of libloom_client use. flags get
 * LOOM_FLAG_REPLY added. error may be NULL. */
int loom_rpc_send_reply(void *sock, const loom_origin_t *to, uint32_t flags, int status,
                        const char *message, const ProtobufCMessage *payload,
                        const Loom__V1__Error *error, loom_err_t *err);

#endif

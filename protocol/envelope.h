/* envelope.h — Loom's ZeroMQ framing: one multipart message per request,
 * reply, stream item or cancel.
 *
 *   [routing id]  only on a ROUTER socket (exactly one frame: loomd's
 *                 sockets are bound ROUTERs, peers connect DEALERs)
 *   [header]      a serialized loom.v1.Envelope (protocol/loom/v1/envelope.proto)
 *   [payload]     optional, at most one frame: the serialized message named by
 *                 the method (request, reply or stream item)
 *
 * Decoding never trusts the peer: frame counts and sizes are checked
 * against loom_limits_t before anything is decoded, and protobuf decoding
 * goes through a bounded allocator, so no input makes the process allocate
 * more than the limits allow. Anything malformed yields a status (gRPC
 * numbering, protocol/status.h) and a message; nothing aborts.
 *
 * Sockets should be prepared with loom_socket_setup() so that libzmq itself
 * refuses frames far above the limit (ZMQ_MAXMSGSIZE) before allocating
 * them; frames between the limit and that hard cap get a clear
 * RESOURCE_EXHAUSTED status instead. See protocol/README.md. */
#ifndef LOOM_PROTOCOL_ENVELOPE_H
#define LOOM_PROTOCOL_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "common/err.h"
#include "loom/v1/envelope.pb-c.h"
#include "protocol/status.h"

#define LOOM_PROTOCOL_VERSION 1

/* Envelope.flags bits (same values as the Flag enum of envelope.proto). */
enum {
    LOOM_FLAG_STREAM = 1,        /* a stream item (with REPLY) */
    LOOM_FLAG_END_OF_STREAM = 2, /* last message of a stream; carries the final status */
    LOOM_FLAG_CANCEL = 4,        /* cancel the request request_id; no payload */
    LOOM_FLAG_ONEWAY = 8,        /* a request that expects no reply */
    LOOM_FLAG_REPLY = 16,        /* answers the peer's request request_id */
};

#define LOOM_DEFAULT_MAX_HEADER (64u * 1024)         /* 64 KiB */
#define LOOM_DEFAULT_MAX_PAYLOAD (16u * 1024 * 1024) /* 16 MiB */
#define LOOM_DEFAULT_MAX_DECODED (64u * 1024 * 1024) /* 64 MiB */
#define LOOM_MAX_ROUTING_ID 255 /* libzmq's own bound on routing ids */
#define LOOM_MAX_METHOD 127

/* Bounds applied to every received message. */
typedef struct loom_limits {
    size_t max_header;  /* header frame bytes; default 64 KiB */
    size_t max_payload; /* payload frame bytes; default 16 MiB */
    size_t max_decoded; /* memory one decoded protobuf message may use; default 64 MiB */
} loom_limits_t;

/* Fills l with the defaults above. */
void loom_limits_default(loom_limits_t *l);

/* Who sent a message and which request it belongs to: what a reply needs.
 * A plain value type: copy it to keep answering a stream after the
 * request message is gone. */
typedef struct loom_origin {
    uint8_t peer[LOOM_MAX_ROUTING_ID]; /* routing id (ROUTER side only) */
    size_t peer_len;                   /* 0 on a DEALER */
    uint64_t request_id;
    char method[LOOM_MAX_METHOD + 1];  /* "" when unknown */
} loom_origin_t;

/* One frame for loom_msg_decode (borrowed bytes). */
typedef struct loom_frame {
    const void *data;
    size_t len;
} loom_frame_t;

/* A received, decoded message. Opaque; owns its header and payload. */
typedef struct loom_msg loom_msg_t;

/* Decodes a message from its frames (no sockets; this is what the fuzzer
 * drives). routed: frames[0] is a routing id. Always sets *out (NULL only
 * on OOM); returns LOOM_STATUS_OK when the message is well formed, else
 * the status to answer with (INVALID_ARGUMENT: empty, garbage, truncated,
 * too many frames; FAILED_PRECONDITION: wrong version; RESOURCE_EXHAUSTED:
 * frame over the limit) and the reason in err. A malformed message still
 * carries whatever origin could be recovered (peer, request id). */
int loom_msg_decode(const loom_frame_t *frames, size_t n, int routed,
                    const loom_limits_t *lim, loom_msg_t **out, loom_err_t *err);

/* Reads one multipart message from a ZeroMQ socket (all its parts, even
 * when there are too many or they are too big: extra parts are dropped
 * without being copied). zmq_flags: 0 or ZMQ_DONTWAIT.
 * Returns 1 with *out set (check loom_msg_status()), 0 when nothing was
 * ready (EAGAIN/EINTR), or LOOM_EIO on a socket failure. */
int loom_msg_recv(void *sock, int routed, const loom_limits_t *lim, int zmq_flags,
                  loom_msg_t **out, loom_err_t *err);

void loom_msg_destroy(loom_msg_t **pm);

/* Decode outcome: LOOM_STATUS_OK for a well-formed message. */
int loom_msg_status(const loom_msg_t *m);
/* Why it is malformed ("" when OK). Borrowed from m. */
const char *loom_msg_error(const loom_msg_t *m);

/* Who a request comes from, once the server authenticated it (auth.h):
 * the token's subject, tenant and role ("admin" sees every tenant). */
typedef struct loom_principal {
    char subject[65];
    char tenant[65];
    char role[16];
    int64_t expiry_unix_s; /* 0 = never */
} loom_principal_t;

/* The authenticated principal of a request; NULL when the server checks
 * no tokens. Borrowed from m. */
const loom_principal_t *loom_msg_principal(const loom_msg_t *m);
void loom_msg_set_principal(loom_msg_t *m, const loom_principal_t *p);

/* The sender's CURVE public key (Z85) as loomd's ZAP handler admitted it;
 * "" on plain sockets. Borrowed from m. */
const char *loom_msg_peer_key(const loom_msg_t *m);
/* Who sent it. Borrowed from m. */
const loom_origin_t *loom_msg_origin(const loom_msg_t *m);
/* The decoded header (NULL when the header did not decode). Borrowed from m. */
const Loom__V1__Envelope *loom_msg_envelope(const loom_msg_t *m);
const char *loom_msg_method(const loom_msg_t *m);  /* "" when none */
uint64_t loom_msg_request_id(const loom_msg_t *m);
uint32_t loom_msg_flags(const loom_msg_t *m);
int64_t loom_msg_deadline_ms(const loom_msg_t *m); /* unix ms; 0 = none */
/* First metadata value for key, or NULL. Borrowed from m. */
const char *loom_msg_meta(const loom_msg_t *m, const char *key);
/* Reply status carried in the header (replies/stream ends). */
int loom_msg_reply_status(const loom_msg_t *m);
const char *loom_msg_reply_message(const loom_msg_t *m); /* "" when none */
/* Payload bytes (NULL, 0 when none). Borrowed from m. */
const uint8_t *loom_msg_payload(const loom_msg_t *m, size_t *len);
/* Convenience predicates on flags. */
int loom_msg_is_reply(const loom_msg_t *m);
int loom_msg_is_cancel(const loom_msg_t *m);

/* Decodes the payload as a message of type desc with the bounded
 * allocator (limit lim->max_decoded, or the default when lim is NULL).
 * A missing payload decodes as the empty message. On success *out is a new
 * message the caller frees with loom_pb_free(). Returns LOOM_STATUS_OK,
 * INVALID_ARGUMENT (does not decode) or RESOURCE_EXHAUSTED. */
int loom_msg_unpack(const loom_msg_t *m, const ProtobufCMessageDescriptor *desc,
                    const loom_limits_t *lim, ProtobufCMessage **out, loom_err_t *err);

/* Same on raw bytes. */
int loom_pb_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                   size_t max_decoded, ProtobufCMessage **out, loom_err_t *err);

/* Frees a message from loom_msg_unpack/loom_pb_unpack (or any protobuf-c
 * message unpacked with the system allocator); safe on NULL. */
void loom_pb_free(void *msg);

/* What one outgoing message contains. Strings are borrowed. */
typedef struct loom_send {
    const uint8_t *peer;   /* routing id for a ROUTER socket; NULL on a DEALER */
    size_t peer_len;
    uint64_t request_id;
    const char *method;    /* may be NULL */
    int64_t deadline_ms;   /* unix ms, 0 = none */
    uint32_t flags;        /* LOOM_FLAG_* */
    int status;            /* replies: a loom_status_t */
    const char *status_message;
    const char *const *meta_keys; /* n_meta pairs */
    const char *const *meta_values;
    size_t n_meta;
    const ProtobufCMessage *payload; /* NULL = no payload frame */
    const Loom__V1__Error *error;    /* optional structured error on replies */
} loom_send_t;

/* Encodes and sends one message. zmq_flags: 0 or ZMQ_DONTWAIT.
 * Returns 0, LOOM_EUNAVAIL (peer unknown/gone or queue full: EHOSTUNREACH,
 * EAGAIN), LOOM_ENOMEM or LOOM_EIO. */
int loom_msg_send(void *sock, const loom_send_t *s, int zmq_flags, loom_err_t *err);

/* Serializes the header + payload frames into malloc'd buffers (for tests
 * and the fuzz corpus). *hdr and *pl are caller-owned (free()). */
int loom_msg_encode(const loom_send_t *s, uint8_t **hdr, size_t *hdr_len,
                    uint8_t **pl, size_t *pl_len);

/* Prepares a socket for Loom traffic: linger 0, ZMQ_MAXMSGSIZE = twice the
 * largest limit (libzmq drops a peer announcing a bigger frame before
 * allocating it), and on ROUTER sockets ZMQ_ROUTER_MANDATORY so that
 * sending to a vanished peer fails instead of vanishing silently. */
int loom_socket_setup(void *sock, const loom_limits_t *lim, loom_err_t *err);

#endif

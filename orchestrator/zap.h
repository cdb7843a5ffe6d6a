/* zap.h — loomd's ZAP handler (ZeroMQ RFC 27): decides which CURVE keys
 * may connect to its two ROUTER sockets.
 *
 * libzmq asks the handler bound at inproc://zeromq.zap.01 in the socket's
 * context about every CURVE handshake; the handler answers 200 (with the
 * peer's Z85 public key as User-Id, which messages then carry as metadata:
 * see loom_msg_peer_key) or 400. loomd polls the handler's socket in its
 * own loop, so the allow-lists need no locks.
 *
 * Domains: LOOM_ZAP_WORKERS admits the keys in the workers directory (one
 * NAME.pub per key, protocol/keys.h); LOOM_ZAP_CLIENTS admits the keys in
 * the clients directory, or any key when there is none (the traffic is
 * still encrypted; tokens then say who the client is). A directory is
 * re-read when its modification time changes (checked at each handshake)
 * or after loom_zap_reload (SIGHUP): keys are added and revoked without a
 * restart. Established connections stay until loomd drops them. */
#ifndef LOOM_ORCHESTRATOR_ZAP_H
#define LOOM_ORCHESTRATOR_ZAP_H

#include "common/err.h"

#define LOOM_ZAP_WORKERS "loom-workers"
#define LOOM_ZAP_CLIENTS "loom-clients"

typedef struct loom_zap loom_zap_t;

/* Binds the handler in zctx; call before binding the CURVE sockets.
 * workers_dir must exist; clients_dir may be NULL (any client key).
 * self_key (Z85, may be NULL): loomd's own public key, always an admitted
 * client (its HTTP gateway connects with it). Returns NULL with err set. */
loom_zap_t *loom_zap_new(void *zctx, const char *workers_dir, const char *clients_dir,
                         const char *self_key, loom_err_t *err);
void loom_zap_destroy(loom_zap_t **pz);

/* The handler's socket, for zmq_poll (ZMQ_POLLIN). */
void *loom_zap_socket(loom_zap_t *z);
/* Answers every pending request without blocking. */
void loom_zap_handle(loom_zap_t *z);
/* Re-reads both directories at the next refresh (SIGHUP). */
void loom_zap_reload(loom_zap_t *z);
/* Re-reads a directory whose modification time changed (or all after
 * loom_zap_reload). Returns 1 when an allow-list was re-read, so the
 * caller can drop peers whose key was revoked; 0 otherwise. */
int loom_zap_refresh(loom_zap_t *z);
/* 1 while key (Z85) is in the domain's allow-list (clients without a
 * directory: always 1). name (64 bytes, may be NULL) gets the file name. */
int loom_zap_admitted(loom_zap_t *z, const char *domain, const char *key, char *name);

#endif
